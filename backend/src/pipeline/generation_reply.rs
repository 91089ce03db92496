//! Reading the generated question out of a model's reply to the generation prompt. The paper
//! parsed the whole reply as JSON and retried on failure; we also take the first JSON object
//! inside extra text or a Markdown code fence.

use serde_json::{Map, Value};

/// A question must offer at least this many options to be answerable.
pub const MIN_OPTIONS: usize = 2;

const QUESTION_KEYS: [&str; 2] = ["Question", "question"];
const OPTIONS_KEYS: [&str; 2] = ["Options", "options"];

/// A generated question as the model wrote it, before the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedQuestion {
    pub question: String,
    pub options: Vec<String>,
}

/// A reply that holds no usable question; the caller counts it and asks again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply holds no JSON object")]
    NoJsonObject,
    #[error("the JSON object has no `{0}` field")]
    MissingField(&'static str),
    #[error("`{field}` is not {expected}")]
    InvalidField { field: &'static str, expected: &'static str },
    #[error("{found} option(s); a question needs at least {MIN_OPTIONS}")]
    TooFewOptions { found: usize },
}

/// Parses a reply such as `{"Question": "…", "Options": ["…", "…"]}` (keys `Question`/`question`
/// and `Options`/`options`, the capitalised one first, as the paper read them). Options that are
/// JSON numbers are kept as their text.
pub fn parse_generation_reply(reply: &str) -> Result<GeneratedQuestion, ReplyError> {
    let mut first_error = None;
    for object in json_objects(reply) {
        match question_from_object(&object) {
            Ok(question) => return Ok(question),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(ReplyError::NoJsonObject))
}

/// The JSON objects in the reply, in order: the whole reply (or the inside of its first code
/// fence) when it is one, else every object that starts at a `{`.
fn json_objects(reply: &str) -> Vec<Map<String, Value>> {
    let body = fenced_body(reply).unwrap_or(reply).trim();
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) {
        return vec![object];
    }
    let mut objects = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = reply[search_from..].find('{') {
        let start = search_from + offset;
        let mut stream = serde_json::Deserializer::from_str(&reply[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Object(object))) => {
                objects.push(object);
                search_from = start + stream.byte_offset();
            }
            _ => search_from = start + 1,
        }
    }
    objects
}

/// The text between the first ```` ``` ```` fence (with or without a language tag) and the next.
fn fenced_body(reply: &str) -> Option<&str> {
    let (_, after_fence) = reply.split_once("```")?;
    let body_start = after_fence.find('\n').map_or(0, |newline| newline + 1);
    let body = &after_fence[body_start..];
    Some(body.split_once("```").map_or(body, |(inside, _)| inside))
}

fn question_from_object(object: &Map<String, Value>) -> Result<GeneratedQuestion, ReplyError> {
    let field =
        |keys: [&'static str; 2]| keys.iter().find_map(|key| object.get(*key)).ok_or(ReplyError::MissingField(keys[0]));
    let question = match field(QUESTION_KEYS)? {
        Value::String(text) if !text.trim().is_empty() => text.clone(),
        _ => return Err(ReplyError::InvalidField { field: QUESTION_KEYS[0], expected: "a non-empty string" }),
    };
    let Value::Array(items) = field(OPTIONS_KEYS)? else {
        return Err(ReplyError::InvalidField { field: OPTIONS_KEYS[0], expected: "a list" });
    };
    let options = items
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            _ => Err(ReplyError::InvalidField { field: OPTIONS_KEYS[0], expected: "a list of strings" }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if options.len() < MIN_OPTIONS {
        return Err(ReplyError::TooFewOptions { found: options.len() });
    }
    Ok(GeneratedQuestion { question, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> GeneratedQuestion {
        GeneratedQuestion { question: "How often do you vote?".into(), options: vec!["Always".into(), "Never".into()] }
    }

    #[test]
    fn a_plain_json_reply_parses() {
        let reply = r#"{"Question": "How often do you vote?", "Options": ["Always", "Never"]}"#;
        assert_eq!(parse_generation_reply(reply), Ok(expected()));
        let lower = r#"  {"question": "How often do you vote?", "options": ["Always", "Never"]}  "#;
        assert_eq!(parse_generation_reply(lower), Ok(expected()));
    }

    #[test]
    fn the_capitalised_key_wins_as_in_the_paper() {
        let reply = r#"{"question": "lower", "Question": "How often do you vote?", "Options": ["Always", "Never"]}"#;
        assert_eq!(parse_generation_reply(reply), Ok(expected()));
    }

    #[test]
    fn a_fenced_or_embedded_object_parses() {
        let fenced = "Here is my question:\n```json\n{\"Question\": \"How often do you vote?\",\n \"Options\": [\"Always\", \"Never\"]}\n```\nThanks!";
        assert_eq!(parse_generation_reply(fenced), Ok(expected()));
        let embedded = r#"Sure! {"note": 1} and then {"Question": "How often do you vote?", "Options": ["Always", "Never"]} done {"#;
        assert_eq!(parse_generation_reply(embedded), Ok(expected()));
        let braces_in_text =
            r#"A {broken} start, {"Question": "How often do you vote?", "Options": ["Always", "Never"]}"#;
        assert_eq!(parse_generation_reply(braces_in_text), Ok(expected()));
    }

    #[test]
    fn numbers_as_options_keep_their_text() {
        let reply = r#"{"Question": "Rate it", "Options": [1, 2, "3"]}"#;
        assert_eq!(parse_generation_reply(reply).unwrap().options, ["1", "2", "3"]);
    }

    #[test]
    fn unusable_replies_are_errors() {
        assert_eq!(parse_generation_reply("I cannot help with that."), Err(ReplyError::NoJsonObject));
        assert_eq!(parse_generation_reply(r#"{"Question": "x", "Options": ["a", "b""#), Err(ReplyError::NoJsonObject));
        assert_eq!(parse_generation_reply(r#"{"Options": ["a", "b"]}"#), Err(ReplyError::MissingField("Question")));
        // The prompt's own example key, `"Question:"`, is not a question key.
        assert_eq!(
            parse_generation_reply(r#"{"Question:": "x", "Options": ["a", "b"]}"#),
            Err(ReplyError::MissingField("Question"))
        );
        assert_eq!(parse_generation_reply(r#"{"Question": "x"}"#), Err(ReplyError::MissingField("Options")));
        assert!(matches!(
            parse_generation_reply(r#"{"Question": "x", "Options": "a, b"}"#),
            Err(ReplyError::InvalidField { field: "Options", .. })
        ));
        assert!(matches!(
            parse_generation_reply(r#"{"Question": "", "Options": ["a", "b"]}"#),
            Err(ReplyError::InvalidField { field: "Question", .. })
        ));
        assert!(matches!(
            parse_generation_reply(r#"{"Question": "x", "Options": ["a", null]}"#),
            Err(ReplyError::InvalidField { field: "Options", .. })
        ));
        assert_eq!(
            parse_generation_reply(r#"{"Question": "x", "Options": ["a"]}"#),
            Err(ReplyError::TooFewOptions { found: 1 })
        );
    }
}
