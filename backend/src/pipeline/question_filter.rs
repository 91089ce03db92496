//! The paper's filters after generation, exactly as its notebook applied them (13,000 → 12,891
//! → 12,860 → 12,847 on the released questions):
//! 1. drop a question whose text equals an earlier one's (all 291 WVS records first, then the
//!    generated ones in topic order and file order);
//! 2. of the questions whose every option starts with a digit, drop those whose options are all
//!    digits unless the text names the scale;
//! 3. strip number prefixes from such options, or turn numbered end options into a
//!    "Using this card…" question, or drop the question.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use shared::{Question, QuestionOption, QuestionSource};

use super::generated_files::GeneratedRecord;
use crate::survey::{WvsRecord, TOPICS};

/// The notebook's "number prefix": digits, then a dash or dot, or an opening parenthesis.
pub const NUMBER_PREFIX_PATTERN: &str = r"^(\d+)(\s*[-.]\s*|\s*\(\s*|\s*\.\s*)";
const STARTS_WITH_DIGIT_PATTERN: &str = r"^\d";
const ALL_DIGITS_PATTERN: &str = r"^\d+$";

/// Digit-only options survive when the question says what the numbers mean.
const SCALE_PHRASES: [&str; 4] = ["on a scale", "with 1 being", "where 1 means", "which 1 means"];
/// A card question whose end option mentions refusing is dropped.
const REFUSAL_WORD: &str = "refuse";

/// The one question the authors exempted by hand (topic 1, `Q1879` in their merged file).
const HAND_EXEMPT_QUESTION: &str = "On a scale of 1-10, how satisfied are you with your life's pace and rhythm?";
const HAND_EXEMPT_OPTIONS: [&str; 4] = ["1-3: Too slow", "4-6: Just right", "7-8: Too fast", "9-10: Extremely fast"];

fn constant_regex(pattern: &'static str) -> Regex {
    // Constant patterns that the unit tests compile: failing here is a bug in this file.
    Regex::new(pattern).unwrap_or_else(|error| unreachable!("{pattern}: {error}"))
}

static NUMBER_PREFIX: LazyLock<Regex> = LazyLock::new(|| constant_regex(NUMBER_PREFIX_PATTERN));
static STARTS_WITH_DIGIT: LazyLock<Regex> = LazyLock::new(|| constant_regex(STARTS_WITH_DIGIT_PATTERN));
static ALL_DIGITS: LazyLock<Regex> = LazyLock::new(|| constant_regex(ALL_DIGITS_PATTERN));

/// What the option rules (filters 2–4) do to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionRuleOutcome {
    /// Some option does not start with a digit: the rules leave the question alone.
    NotAllNumbered,
    /// Digit-only options and a question that names the scale: kept as it is.
    ScaleNamed,
    /// Digit-only options and no scale named: dropped.
    DroppedDigitOnly,
    /// The hand-exempted question: kept as it is.
    HandExempt,
    /// Every option had a number prefix: these are the options without it.
    PrefixesRemoved { options: Vec<String> },
    /// Numbered first and last options only: the card question and its options.
    CardRewritten { question: String, options: Vec<String> },
    /// An end option mentions refusing, or the numbering fits no rule: dropped.
    DroppedNumbering,
}

impl OptionRuleOutcome {
    pub fn is_dropped(&self) -> bool {
        matches!(self, OptionRuleOutcome::DroppedDigitOnly | OptionRuleOutcome::DroppedNumbering)
    }
}

/// Applies filters 2–4 to one question.
pub fn apply_option_rules(question: &str, options: &[String]) -> OptionRuleOutcome {
    if !options.iter().all(|option| STARTS_WITH_DIGIT.is_match(option)) {
        return OptionRuleOutcome::NotAllNumbered;
    }
    if ALL_DIGITS.is_match(&options.concat()) {
        let lowercase = question.to_lowercase();
        return if SCALE_PHRASES.iter().any(|phrase| lowercase.contains(phrase)) {
            OptionRuleOutcome::ScaleNamed
        } else {
            OptionRuleOutcome::DroppedDigitOnly
        };
    }
    if question == HAND_EXEMPT_QUESTION && options.iter().map(String::as_str).eq(HAND_EXEMPT_OPTIONS) {
        return OptionRuleOutcome::HandExempt;
    }
    let prefixes: Vec<Option<&str>> = options.iter().map(|option| number_prefix(option)).collect();
    if prefixes.iter().all(Option::is_some) {
        return OptionRuleOutcome::PrefixesRemoved {
            options: options.iter().map(|option| strip_number_prefix(option)).collect(),
        };
    }
    card_rewrite(question, options, &prefixes).unwrap_or(OptionRuleOutcome::DroppedNumbering)
}

/// `"1 - Strongly disagree", "2", …, "10 - Strongly agree"` → options `"1", "2", …, "10"` and
/// ` Using this card on which 1 means 'Strongly disagree' and 10 means 'Strongly agree'`.
fn card_rewrite(question: &str, options: &[String], prefixes: &[Option<&str>]) -> Option<OptionRuleOutcome> {
    let (first, middle, last) = match prefixes {
        [Some(first), middle @ .., Some(last)] if middle.iter().all(Option::is_none) => (*first, middle.len(), *last),
        _ => return None,
    };
    let (start_text, end_text) = (strip_number_prefix(&options[0]), strip_number_prefix(&options[options.len() - 1]));
    let mentions_refusal = |text: &str| text.to_lowercase().contains(REFUSAL_WORD);
    if mentions_refusal(&start_text) || mentions_refusal(&end_text) {
        return None;
    }
    let mut rewritten_options = Vec::with_capacity(options.len());
    rewritten_options.push(first.to_string());
    rewritten_options.extend(options[1..=middle].iter().cloned());
    rewritten_options.push(last.to_string());
    Some(OptionRuleOutcome::CardRewritten {
        question: format!(
            "{question} Using this card on which {first} means '{start_text}' and {last} means '{end_text}'"
        ),
        options: rewritten_options,
    })
}

/// The digits of the option's number prefix, if it has one.
pub fn number_prefix(option: &str) -> Option<&str> {
    NUMBER_PREFIX.captures(option).and_then(|captures| captures.get(1)).map(|digits| digits.as_str())
}

/// The option without its number prefix, trimmed, and without a trailing `)` that has no `(`:
/// `"1 (Rarely)"` → `"Rarely"`, `"1-2 times a year"` → `"2 times a year"`.
pub fn strip_number_prefix(option: &str) -> String {
    let rest = NUMBER_PREFIX.find(option).map_or(option, |prefix| &option[prefix.end()..]);
    let trimmed = rest.trim();
    match trimmed.strip_suffix(')') {
        Some(without) if !trimmed.contains('(') => without.to_string(),
        _ => trimmed.to_string(),
    }
}

/// The counts the command prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSummary {
    pub input: usize,
    pub after_dedup: usize,
    pub after_digit_filter: usize,
    pub kept: usize,
    /// Kept questions per topic name (every topic in the input, even with none kept).
    pub per_topic: BTreeMap<String, usize>,
}

/// How many questions each rule touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub duplicates: usize,
    pub digit_only_dropped: usize,
    pub prefixes_removed: usize,
    pub card_rewritten: usize,
    pub numbering_dropped: usize,
    pub hand_exempt: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilterOutcome {
    /// The kept questions in topic order, then file order.
    pub questions: Vec<Question>,
    pub summary: FilterSummary,
    pub rule_counts: RuleCounts,
    /// What the filters did to each record, in the order the records were given.
    pub verdicts: Vec<FilterVerdict>,
}

/// What the filters did to one generated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterVerdict {
    /// Kept as it was, as the question with this id.
    Kept { question_id: String },
    /// Kept with its number prefixes removed or as a card question.
    Rewritten { question_id: String },
    /// Its text equals an earlier question's (a WVS one or an earlier generated one).
    Duplicate,
    /// Digit-only options and no scale named.
    DroppedDigitOnly,
    /// Numbered options that fit no rule, or a card end that mentions refusing.
    DroppedNumbering,
}

impl FilterVerdict {
    /// A short name to store and show: `kept`, `rewritten`, `duplicate`, `digit_only`, `numbering`.
    pub fn label(&self) -> &'static str {
        match self {
            FilterVerdict::Kept { .. } => "kept",
            FilterVerdict::Rewritten { .. } => "rewritten",
            FilterVerdict::Duplicate => "duplicate",
            FilterVerdict::DroppedDigitOnly => "digit_only",
            FilterVerdict::DroppedNumbering => "numbering",
        }
    }

    /// The id of the kept question, if the record was kept.
    pub fn question_id(&self) -> Option<&str> {
        match self {
            FilterVerdict::Kept { question_id } | FilterVerdict::Rewritten { question_id } => Some(question_id),
            _ => None,
        }
    }
}

/// Filters generated records against the WVS records (all 291, as released). Records are taken
/// in topic order, file order within a topic; a kept question's id is `Q{n}` with n its position
/// in that order, as in the paper's merged file.
pub fn filter_generated(wvs_records: &[WvsRecord], records: &[GeneratedRecord], question_set: &str) -> FilterOutcome {
    let mut ordered: Vec<(usize, &GeneratedRecord)> = records.iter().enumerate().collect();
    ordered.sort_by_key(|(_, record)| record.topic); // stable: file order within a topic
    let mut verdicts = vec![FilterVerdict::Duplicate; records.len()];
    let mut seen_texts: HashSet<&str> = wvs_records.iter().map(|record| record.question.as_str()).collect();
    let mut per_topic = BTreeMap::new();
    let mut rule_counts = RuleCounts::default();
    let (mut after_dedup, mut after_digit_filter) = (0, 0);
    let mut questions = Vec::new();
    for (position, (input_index, record)) in ordered.iter().enumerate() {
        let topic_count = per_topic.entry(topic_name(record.topic)).or_insert(0);
        if !seen_texts.insert(record.question.as_str()) {
            rule_counts.duplicates += 1;
            continue; // the verdict stays `Duplicate`
        }
        after_dedup += 1;
        let outcome = apply_option_rules(&record.question, &record.options);
        if outcome == OptionRuleOutcome::DroppedDigitOnly {
            rule_counts.digit_only_dropped += 1;
            verdicts[*input_index] = FilterVerdict::DroppedDigitOnly;
            continue;
        }
        after_digit_filter += 1;
        let question_id = format!("Q{position}");
        let (text, options, verdict) = match outcome {
            OptionRuleOutcome::DroppedDigitOnly | OptionRuleOutcome::DroppedNumbering => {
                rule_counts.numbering_dropped += 1;
                verdicts[*input_index] = FilterVerdict::DroppedNumbering;
                continue;
            }
            OptionRuleOutcome::PrefixesRemoved { options } => {
                rule_counts.prefixes_removed += 1;
                (record.question.clone(), options, FilterVerdict::Rewritten { question_id: question_id.clone() })
            }
            OptionRuleOutcome::CardRewritten { question, options } => {
                rule_counts.card_rewritten += 1;
                (question, options, FilterVerdict::Rewritten { question_id: question_id.clone() })
            }
            OptionRuleOutcome::HandExempt => {
                rule_counts.hand_exempt += 1;
                (
                    record.question.clone(),
                    record.options.clone(),
                    FilterVerdict::Kept { question_id: question_id.clone() },
                )
            }
            OptionRuleOutcome::NotAllNumbered | OptionRuleOutcome::ScaleNamed => (
                record.question.clone(),
                record.options.clone(),
                FilterVerdict::Kept { question_id: question_id.clone() },
            ),
        };
        verdicts[*input_index] = verdict;
        *topic_count += 1;
        questions.push(Question {
            question_id,
            text,
            options: numbered_options(options),
            topic: record.topic,
            source: QuestionSource::Generated { question_set: question_set.to_string() },
        });
    }
    let summary =
        FilterSummary { input: records.len(), after_dedup, after_digit_filter, kept: questions.len(), per_topic };
    FilterOutcome { questions, summary, rule_counts, verdicts }
}

fn topic_name(topic: u8) -> String {
    TOPICS.get(usize::from(topic)).map_or_else(|| format!("topic {topic}"), |spec| spec.name.to_string())
}

/// Codes as the paper numbered generated questions: from 0 when the first option is the number
/// 0, else from 1.
fn numbered_options(options: Vec<String>) -> Vec<QuestionOption> {
    let first_is_zero =
        options.first().is_some_and(|first| !first.is_empty() && first.bytes().all(|byte| byte == b'0'));
    let first_code = u32::from(!first_is_zero);
    (first_code..).zip(options).map(|(code, text)| QuestionOption { code, text }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn the_patterns_compile() {
        for pattern in [NUMBER_PREFIX_PATTERN, STARTS_WITH_DIGIT_PATTERN, ALL_DIGITS_PATTERN] {
            assert!(Regex::new(pattern).is_ok(), "{pattern}");
        }
    }

    #[test]
    fn number_prefixes_are_stripped_as_the_notebook_did() {
        assert_eq!(strip_number_prefix("1 (Rarely or never)"), "Rarely or never");
        assert_eq!(strip_number_prefix("1-2 times a year"), "2 times a year");
        assert_eq!(strip_number_prefix("3. Agree"), "Agree");
        assert_eq!(strip_number_prefix("4 - Strongly agree (always)"), "Strongly agree (always)");
        assert_eq!(strip_number_prefix("5 ( Often ) "), "Often ");
        assert_eq!(strip_number_prefix("10"), "10");
        assert_eq!(number_prefix("10 - Strongly agree"), Some("10"));
        assert_eq!(number_prefix("10"), None);
        assert_eq!(number_prefix("1: Too slow"), None);
    }

    #[test]
    fn digit_only_options_need_a_named_scale() {
        let digits = strings(&["1", "2", "3", "4", "5"]);
        assert_eq!(apply_option_rules("How much?", &digits), OptionRuleOutcome::DroppedDigitOnly);
        assert_eq!(apply_option_rules("On a Scale from 1 to 5, how much?", &digits), OptionRuleOutcome::ScaleNamed);
        assert_eq!(apply_option_rules("Rate it, with 1 being low", &digits), OptionRuleOutcome::ScaleNamed);
        assert_eq!(apply_option_rules("How much?", &strings(&["Low", "2"])), OptionRuleOutcome::NotAllNumbered);
    }

    #[test]
    fn numbered_options_lose_their_prefix() {
        let outcome = apply_option_rules("How often?", &strings(&["1 (Never)", "2. Sometimes", "3 - Often)"]));
        assert_eq!(outcome, OptionRuleOutcome::PrefixesRemoved { options: strings(&["Never", "Sometimes", "Often"]) });
    }

    #[test]
    fn numbered_end_options_become_a_card_question() {
        let options = strings(&["1 - Strongly disagree", "2", "3", "4 - Strongly agree"]);
        assert_eq!(
            apply_option_rules("Do you agree?", &options),
            OptionRuleOutcome::CardRewritten {
                question:
                    "Do you agree? Using this card on which 1 means 'Strongly disagree' and 4 means 'Strongly agree'"
                        .to_string(),
                options: strings(&["1", "2", "3", "4"]),
            }
        );
        let refusing = strings(&["1 - Agree", "2", "3 - Refused to answer"]);
        assert_eq!(apply_option_rules("Do you agree?", &refusing), OptionRuleOutcome::DroppedNumbering);
        let ranges = strings(&["0-2", "3-5", "6-7", "8-9", "10"]);
        assert_eq!(apply_option_rules("How much?", &ranges), OptionRuleOutcome::DroppedNumbering);
    }

    #[test]
    fn only_the_exact_hand_exempted_question_is_exempt() {
        let options = strings(&HAND_EXEMPT_OPTIONS);
        assert_eq!(apply_option_rules(HAND_EXEMPT_QUESTION, &options), OptionRuleOutcome::HandExempt);
        // Any other question with these options would lose the first number of each range.
        assert_eq!(
            apply_option_rules("Another question?", &options),
            OptionRuleOutcome::PrefixesRemoved {
                options: strings(&["3: Too slow", "6: Just right", "8: Too fast", "10: Extremely fast"])
            }
        );
    }

    #[test]
    fn generated_codes_start_at_zero_only_after_a_zero() {
        let codes = |options: &[&str]| numbered_options(strings(options)).iter().map(|o| o.code).collect::<Vec<_>>();
        assert_eq!(codes(&["0", "1", "2"]), [0, 1, 2]);
        assert_eq!(codes(&["1", "2"]), [1, 2]);
        assert_eq!(codes(&["0-2 hours", "3+"]), [1, 2]);
        assert_eq!(codes(&["Yes", "No"]), [1, 2]);
    }
}
