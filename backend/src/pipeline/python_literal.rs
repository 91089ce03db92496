//! Python's `repr` of a list of strings, byte for byte as CPython writes it (the paper put
//! `str(option_list)` into its generation prompts), and the inverse parser that reads such a list
//! back from a released prompt.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

/// The general categories CPython's `str.isprintable` rejects (`Zs` except the ASCII space, which
/// never reaches this check): such characters are escaped in a `repr`.
const NON_PRINTABLE_PATTERN: &str = r"\A[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]\z";

static NON_PRINTABLE: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern, compiled by every repr in the tests: failing here is a bug in this file.
    Regex::new(NON_PRINTABLE_PATTERN).unwrap_or_else(|error| unreachable!("{NON_PRINTABLE_PATTERN}: {error}"))
});

const ASCII_DELETE: char = '\u{7f}';
const LATIN1_LAST: u32 = 0xff;
const BMP_LAST: u32 = 0xffff;

/// `repr(text)` as CPython writes it: single quotes, or double quotes when the text holds a `'`
/// and no `"`; `\\`, `\n`, `\r`, `\t` and the quote escaped; other non-printable characters as
/// `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn python_repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut repr = String::with_capacity(text.len() + 2);
    repr.push(quote);
    for ch in text.chars() {
        match ch {
            '\\' => repr.push_str("\\\\"),
            '\n' => repr.push_str("\\n"),
            '\r' => repr.push_str("\\r"),
            '\t' => repr.push_str("\\t"),
            _ if ch == quote => {
                repr.push('\\');
                repr.push(ch);
            }
            _ if ch < ' ' || ch == ASCII_DELETE => push_hex_escape(&mut repr, ch),
            _ if ch.is_ascii() || is_printable_non_ascii(ch) => repr.push(ch),
            _ => push_hex_escape(&mut repr, ch),
        }
    }
    repr.push(quote);
    repr
}

/// `repr(list_of_strings)` as CPython writes it: `['a', "b's"]`, `[]` when empty.
pub fn python_repr_str_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut repr = String::from("[");
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            repr.push_str(", ");
        }
        repr.push_str(&python_repr_str(item.as_ref()));
    }
    repr.push(']');
    repr
}

fn is_printable_non_ascii(ch: char) -> bool {
    let mut buffer = [0u8; 4];
    !NON_PRINTABLE.is_match(ch.encode_utf8(&mut buffer))
}

fn push_hex_escape(repr: &mut String, ch: char) {
    let code = u32::from(ch);
    // Writing to a String cannot fail.
    let _ = if code <= LATIN1_LAST {
        write!(repr, "\\x{code:02x}")
    } else if code <= BMP_LAST {
        write!(repr, "\\u{code:04x}")
    } else {
        write!(repr, "\\U{code:08x}")
    };
}

/// A Python list-of-strings literal that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Python list literal, byte {position}: {message}")]
pub struct PythonLiteralError {
    /// Byte offset into the text given to the parser.
    pub position: usize,
    pub message: &'static str,
}

/// Parses a Python list of string literals at the start of `text` (`['a', "b"]`, as `repr` or a
/// person writes it) and returns the strings and the text after the closing `]`.
pub fn parse_python_str_list(text: &str) -> Result<(Vec<String>, &str), PythonLiteralError> {
    let mut cursor = Cursor { text, position: 0 };
    cursor.expect('[', "expected `[`")?;
    let mut items = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            Some(']') => {
                cursor.position += 1;
                return Ok((items, &text[cursor.position..]));
            }
            Some('\'' | '"') => items.push(cursor.string_literal()?),
            _ => return Err(cursor.error("expected a string literal or `]`")),
        }
        cursor.skip_whitespace();
        match cursor.peek() {
            Some(',') => cursor.position += 1,
            Some(']') => {}
            _ => return Err(cursor.error("expected `,` or `]`")),
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.position..].chars().next()
    }

    fn next_char(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.position += ch.len_utf8();
        Some(ch)
    }

    fn error(&self, message: &'static str) -> PythonLiteralError {
        PythonLiteralError { position: self.position, message }
    }

    fn expect(&mut self, wanted: char, message: &'static str) -> Result<(), PythonLiteralError> {
        match self.peek() {
            Some(ch) if ch == wanted => {
                self.position += ch.len_utf8();
                Ok(())
            }
            _ => Err(self.error(message)),
        }
    }

    fn skip_whitespace(&mut self) {
        // Whitespace may be wider than a byte (a no-break or an ideographic space).
        while let Some(ch) = self.peek().filter(|ch| ch.is_whitespace()) {
            self.position += ch.len_utf8();
        }
    }

    /// A single-line `'…'` or `"…"` literal with Python's escapes.
    fn string_literal(&mut self) -> Result<String, PythonLiteralError> {
        let quote = self.next_char().ok_or_else(|| self.error("expected a quote"))?;
        let mut value = String::new();
        loop {
            match self.next_char() {
                None | Some('\n') => return Err(self.error("unterminated string literal")),
                Some(ch) if ch == quote => return Ok(value),
                Some('\\') => self.escape(&mut value)?,
                Some(ch) => value.push(ch),
            }
        }
    }

    fn escape(&mut self, value: &mut String) -> Result<(), PythonLiteralError> {
        let ch = self.next_char().ok_or_else(|| self.error("unterminated escape"))?;
        match ch {
            '\n' => {} // a line continuation
            '\\' | '\'' | '"' => value.push(ch),
            'a' => value.push('\u{07}'),
            'b' => value.push('\u{08}'),
            'f' => value.push('\u{0c}'),
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            'v' => value.push('\u{0b}'),
            'x' => value.push(self.hex_digits(2)?),
            'u' => value.push(self.hex_digits(4)?),
            'U' => value.push(self.hex_digits(8)?),
            '0'..='7' => {
                let mut code = ch.to_digit(8).unwrap_or_default();
                for _ in 1..3 {
                    match self.peek().and_then(|next| next.to_digit(8)) {
                        Some(digit) => {
                            code = code * 8 + digit;
                            self.position += 1;
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code).ok_or_else(|| self.error("octal escape out of range"))?);
            }
            'N' => return Err(self.error("\\N{…} escapes are not supported")),
            // Python keeps an unknown escape as written.
            other => {
                value.push('\\');
                value.push(other);
            }
        }
        Ok(())
    }

    fn hex_digits(&mut self, count: usize) -> Result<char, PythonLiteralError> {
        let digits = self.text.get(self.position..self.position + count).ok_or_else(|| self.error("short escape"))?;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(self.error("escape needs hexadecimal digits"));
        }
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("escape needs hexadecimal digits"))?;
        self.position += count;
        char::from_u32(code).ok_or_else(|| self.error("escape is not a Unicode scalar value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what CPython 3.11 prints for `repr(...)`.
    #[test]
    fn quotes_follow_cpython() {
        assert_eq!(python_repr_str("Very important"), "'Very important'");
        assert_eq!(python_repr_str(""), "''");
        assert_eq!(python_repr_str("Don't know"), "\"Don't know\"");
        assert_eq!(python_repr_str("say \"no\""), "'say \"no\"'");
        // Both kinds: single quotes, the single one escaped.
        assert_eq!(python_repr_str("it's \"x\""), "'it\\'s \"x\"'");
    }

    #[test]
    fn escapes_follow_cpython() {
        assert_eq!(python_repr_str("a\\b"), "'a\\\\b'");
        assert_eq!(python_repr_str("a\nb\rc\td"), "'a\\nb\\rc\\td'");
        assert_eq!(python_repr_str("\u{0}\u{1b}\u{7f}"), "'\\x00\\x1b\\x7f'");
        // Latin-1 controls and the no-break space are escaped; printable non-ASCII is kept.
        assert_eq!(python_repr_str("\u{85}\u{a0}é"), "'\\x85\\xa0é'");
        assert_eq!(python_repr_str("\u{ad}"), "'\\xad'");
        assert_eq!(python_repr_str("a\u{200b}b\u{2028}\u{3000}"), "'a\\u200bb\\u2028\\u3000'");
        assert_eq!(python_repr_str("\u{feff}"), "'\\ufeff'");
        assert_eq!(python_repr_str("\u{e000}"), "'\\ue000'");
        assert_eq!(python_repr_str("\u{10ffff}"), "'\\U0010ffff'");
        assert_eq!(python_repr_str("\u{e0001}"), "'\\U000e0001'");
        // Printable astral and CJK characters stay as they are.
        assert_eq!(python_repr_str("😀 中文 – ‘x’"), "'😀 中文 – ‘x’'");
    }

    #[test]
    fn lists_follow_cpython() {
        let empty: [&str; 0] = [];
        assert_eq!(python_repr_str_list(&empty), "[]");
        assert_eq!(python_repr_str_list(&["1", "2"]), "['1', '2']");
        assert_eq!(
            python_repr_str_list(&["Yes, I'd like to", "No", "it's \"both\"", "back\\slash"]),
            "[\"Yes, I'd like to\", 'No', 'it\\'s \"both\"', 'back\\\\slash']"
        );
    }

    #[test]
    fn the_parser_inverts_repr() {
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec!["Very good".into(), "Don't know".into()],
            vec!["it's \"x\"".into(), "a\\b\n\t\r".into(), "\u{0}\u{a0}\u{200b}😀\u{10ffff}é".into()],
        ];
        for items in cases {
            let repr = python_repr_str_list(&items);
            let text = format!("{repr}\nrest");
            let (parsed, rest) = parse_python_str_list(&text).unwrap();
            assert_eq!(parsed, items, "{repr}");
            assert_eq!(rest, "\nrest");
        }
    }

    #[test]
    fn whitespace_wider_than_a_byte_is_skipped_whole() {
        // Found by the fuzzer: an ideographic space between items cut a character in two.
        let (items, rest) = parse_python_str_list("[\u{3000}'a',\u{a0}'b'\u{2003}] x").unwrap();
        assert_eq!((items, rest), (vec!["a".to_string(), "b".to_string()], " x"));
    }

    #[test]
    fn the_parser_reads_what_people_write() {
        let (items, rest) = parse_python_str_list("[ 'a' ,\"b\\x41\\u00e9\\101\\q\",]x").unwrap();
        assert_eq!(items, ["a", "bAéA\\q"]);
        assert_eq!(rest, "x");
        assert!(parse_python_str_list("['a'").is_err());
        assert!(parse_python_str_list("['a' 'b']").is_err());
        assert!(parse_python_str_list("[1, 2]").is_err());
        assert!(parse_python_str_list("['\\xZZ']").is_err());
        assert!(parse_python_str_list("('a',)").is_err());
    }
}
