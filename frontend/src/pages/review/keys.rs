//! The review page's keyboard: which key does what, as a pure function of the key, the digits
//! typed so far and the question's option codes (so it is tested without a browser).
//!
//! Option codes are typed as numbers. A code that is the start of a longer one (`1` when the
//! question has a `10` or `11`) waits for the next digit or Enter; any other code is chosen at
//! once. So all options of the 1–10 and 0–10 scales can be chosen, and `1` meant as the start of
//! `10` never records "change to 1".

/// What a key press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    Accept,
    Reject,
    FlagStereotype,
    Edit,
    Skip,
    Undo,
    /// Change the answer to this option code.
    ChangeAnswer(u32),
    /// Digits typed that may still become a longer code: shown, waiting for a digit or Enter.
    Typing(String),
    /// Digits that are no option of the question.
    NotAnOption(String),
    /// Typed digits dropped (Escape).
    Cleared,
    /// Not a review key: the browser does what it would.
    Ignored,
}

/// The action of `key` with `typed` digits pending, for a question with option `codes`. The
/// caller keeps the pending digits: they are those of [`KeyAction::Typing`], none otherwise.
pub fn key_action(key: &str, typed: &str, codes: &[u32]) -> KeyAction {
    if let Some(digit) = single_digit(key) {
        return digit_action(&format!("{typed}{digit}"), codes)
            // A digit that cannot continue what was typed starts a new code.
            .or_else(|| (!typed.is_empty()).then(|| digit_action(&digit.to_string(), codes)).flatten())
            .unwrap_or_else(|| KeyAction::NotAnOption(format!("{typed}{digit}")));
    }
    if !typed.is_empty() {
        return match key {
            "Enter" => match typed.parse::<u32>() {
                Ok(code) if codes.contains(&code) => KeyAction::ChangeAnswer(code),
                _ => KeyAction::NotAnOption(typed.to_string()),
            },
            "Escape" | "Backspace" => KeyAction::Cleared,
            _ => letter_action(key),
        };
    }
    letter_action(key)
}

/// The action of typed digits, if they are an option code or the start of one.
fn digit_action(digits: &str, codes: &[u32]) -> Option<KeyAction> {
    let longer = codes.iter().any(|code| {
        let code = code.to_string();
        code.len() > digits.len() && code.starts_with(digits)
    });
    let exact = digits.parse::<u32>().ok().filter(|code| codes.contains(code) && code.to_string() == digits);
    match (exact, longer) {
        (Some(code), false) => Some(KeyAction::ChangeAnswer(code)),
        (_, true) => Some(KeyAction::Typing(digits.to_string())),
        (None, false) => None,
    }
}

fn single_digit(key: &str) -> Option<u32> {
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => c.to_digit(10),
        _ => None,
    }
}

fn letter_action(key: &str) -> KeyAction {
    match key {
        "a" => KeyAction::Accept,
        "x" => KeyAction::Reject,
        "f" => KeyAction::FlagStereotype,
        "e" => KeyAction::Edit,
        " " => KeyAction::Skip,
        "Backspace" => KeyAction::Undo,
        _ => KeyAction::Ignored,
    }
}

/// Whether the page handles `key` when `target_tag` (upper case, as the DOM writes it) has the
/// focus: never while typing in a field, and space / Enter on a focused control press it.
pub fn page_handles(key: &str, target_tag: &str) -> bool {
    match target_tag {
        "INPUT" | "TEXTAREA" | "SELECT" => false,
        "BUTTON" | "A" | "SUMMARY" => !matches!(key, " " | "Enter"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds keys one after the other, as the page does, and returns the actions.
    fn press(keys: &[&str], codes: &[u32]) -> Vec<KeyAction> {
        let mut typed = String::new();
        keys.iter()
            .map(|key| {
                let action = key_action(key, &typed, codes);
                typed = match &action {
                    KeyAction::Typing(digits) => digits.clone(),
                    _ => String::new(),
                };
                action
            })
            .collect()
    }

    const FOUR: [u32; 4] = [1, 2, 3, 4];

    #[test]
    fn a_four_option_question_changes_the_answer_at_once() {
        assert_eq!(press(&["3"], &FOUR), [KeyAction::ChangeAnswer(3)]);
        assert_eq!(press(&["7"], &FOUR), [KeyAction::NotAnOption("7".into())]);
        assert_eq!(press(&["0"], &FOUR), [KeyAction::NotAnOption("0".into())]);
    }

    #[test]
    fn options_ten_and_eleven_can_be_chosen_and_one_waits_for_them() {
        let one_to_ten: Vec<u32> = (1..=10).collect();
        assert_eq!(press(&["1", "0"], &one_to_ten), [KeyAction::Typing("1".into()), KeyAction::ChangeAnswer(10)]);
        assert_eq!(press(&["1", "Enter"], &one_to_ten), [KeyAction::Typing("1".into()), KeyAction::ChangeAnswer(1)]);
        assert_eq!(press(&["9"], &one_to_ten), [KeyAction::ChangeAnswer(9)]);
        // Eleven options (a 0–10 scale, coded 1–11 by position).
        let eleven: Vec<u32> = (1..=11).collect();
        assert_eq!(press(&["1", "1"], &eleven), [KeyAction::Typing("1".into()), KeyAction::ChangeAnswer(11)]);
        assert_eq!(press(&["1", "0"], &eleven), [KeyAction::Typing("1".into()), KeyAction::ChangeAnswer(10)]);
        // A digit that cannot continue "1" starts a code of its own.
        assert_eq!(press(&["1", "5"], &eleven), [KeyAction::Typing("1".into()), KeyAction::ChangeAnswer(5)]);
        assert_eq!(press(&["1", "2"], &one_to_ten)[1], KeyAction::ChangeAnswer(2));
    }

    #[test]
    fn escape_drops_typed_digits_and_letters_keep_their_meaning() {
        let one_to_ten: Vec<u32> = (1..=10).collect();
        assert_eq!(press(&["1", "Escape", "a"], &one_to_ten)[1..], [KeyAction::Cleared, KeyAction::Accept]);
        assert_eq!(press(&["1", "Backspace"], &one_to_ten)[1], KeyAction::Cleared);
        assert_eq!(press(&["Backspace"], &one_to_ten), [KeyAction::Undo]);
        assert_eq!(
            press(&["a", "x", "f", "e", " ", "q"], &FOUR),
            [
                KeyAction::Accept,
                KeyAction::Reject,
                KeyAction::FlagStereotype,
                KeyAction::Edit,
                KeyAction::Skip,
                KeyAction::Ignored
            ]
        );
        assert_eq!(press(&["Enter"], &FOUR), [KeyAction::Ignored]);
    }

    #[test]
    fn space_on_a_focused_button_presses_it() {
        assert!(!page_handles(" ", "BUTTON"));
        assert!(!page_handles("Enter", "A"));
        assert!(page_handles("a", "BUTTON"));
        assert!(page_handles(" ", "BODY"));
        assert!(!page_handles("a", "INPUT"));
        assert!(!page_handles("1", "TEXTAREA"));
    }
}
