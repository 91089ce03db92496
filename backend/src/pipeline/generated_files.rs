//! Reading generated-question files in the released format (`generated_questions_topic_{i}_…json`,
//! plain or gzipped): a JSON list of `{"Q_id", "question", "option_lst", "class", "prompt"}`.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde_json::{Map, Value};

use crate::survey::TOPICS;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Where the released file names carry the topic index: `…_topic_{i}_…`.
const TOPIC_IN_FILE_NAME: &str = "topic_";

/// One generated question as released, before the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRecord {
    /// Position of the file in the list that was read.
    pub file_position: usize,
    /// Position of the record in its file.
    pub record_index: usize,
    /// `Q_id` as released (they restart at `Q0` in each topic file).
    pub released_id: Option<String>,
    pub topic: u8,
    pub question: String,
    pub options: Vec<String>,
    /// The generation prompt that produced it, when the file has it.
    pub prompt: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GeneratedFileError {
    #[error("{file}: cannot read: {error}")]
    Read { file: PathBuf, error: std::io::Error },
    #[error("{file}: not JSON (line {line}, column {column}): {message}")]
    Parse { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}: expected a JSON list of question records")]
    NotAList { file: PathBuf },
    #[error("{file}: record {index}: field `{field}`: {message}")]
    Record { file: PathBuf, index: usize, field: &'static str, message: String },
}

/// Reads the files in the order given; their records keep file order.
pub fn read_generated_files(files: &[PathBuf]) -> Result<Vec<GeneratedRecord>, GeneratedFileError> {
    let mut records = Vec::new();
    for (file_position, file) in files.iter().enumerate() {
        records.extend(read_generated_file(file, file_position)?);
    }
    Ok(records)
}

/// Reads one file, gzipped or not (told apart by its first bytes).
pub fn read_generated_file(file: &Path, file_position: usize) -> Result<Vec<GeneratedRecord>, GeneratedFileError> {
    let read_error = |error| GeneratedFileError::Read { file: file.to_path_buf(), error };
    let raw = std::fs::read(file).map_err(read_error)?;
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        let mut unpacked = Vec::new();
        GzDecoder::new(raw.as_slice()).read_to_end(&mut unpacked).map_err(read_error)?;
        unpacked
    } else {
        raw
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|error| GeneratedFileError::Parse {
        file: file.to_path_buf(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    let Value::Array(items) = value else {
        return Err(GeneratedFileError::NotAList { file: file.to_path_buf() });
    };
    let topic_from_name = topic_in_file_name(file);
    items
        .iter()
        .enumerate()
        .map(|(record_index, item)| {
            let invalid = |field, message: &str| GeneratedFileError::Record {
                file: file.to_path_buf(),
                index: record_index,
                field,
                message: message.to_string(),
            };
            let Value::Object(object) = item else {
                return Err(invalid("(record)", "not a JSON object"));
            };
            let question = required_string(object, "question").map_err(|message| invalid("question", message))?;
            let options = string_list(object, "option_lst").map_err(|message| invalid("option_lst", message))?;
            let topic = match object.get("class") {
                Some(Value::String(name)) => TOPICS
                    .iter()
                    .position(|topic| topic.name == name)
                    .map(|index| index as u8)
                    .ok_or_else(|| invalid("class", &format!("{name:?} is not one of the 13 WVS topics")))?,
                Some(_) => return Err(invalid("class", "not a string")),
                None => topic_from_name.ok_or_else(|| {
                    invalid("class", "missing, and the file name has no `topic_{index}` with an index 0–12")
                })?,
            };
            let released_id = optional_string(object, "Q_id").map_err(|message| invalid("Q_id", message))?;
            let prompt = optional_string(object, "prompt").map_err(|message| invalid("prompt", message))?;
            Ok(GeneratedRecord { file_position, record_index, released_id, topic, question, options, prompt })
        })
        .collect()
}

fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, &'static str> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err("not a string"),
        None => Err("missing"),
    }
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, &'static str> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err("not a string"),
    }
}

fn string_list(object: &Map<String, Value>, field: &str) -> Result<Vec<String>, &'static str> {
    match object.get(field) {
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().map(str::to_string).ok_or("not a list of strings")).collect()
        }
        Some(_) => Err("not a list of strings"),
        None => Err("missing"),
    }
}

/// `generated_questions_topic_7_from_all_seed.json.gz` → 7.
fn topic_in_file_name(file: &Path) -> Option<u8> {
    let name = file.file_name()?.to_str()?;
    let (_, after) = name.split_once(TOPIC_IN_FILE_NAME)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u8>().ok().filter(|&index| usize::from(index) < TOPICS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_index_comes_from_the_file_name() {
        assert_eq!(topic_in_file_name(Path::new("d/generated_questions_topic_12_from_all_seed.json.gz")), Some(12));
        assert_eq!(topic_in_file_name(Path::new("generated_questions_topic_0_from_all_seed.json")), Some(0));
        assert_eq!(topic_in_file_name(Path::new("topic_13.json")), None);
        assert_eq!(topic_in_file_name(Path::new("questions.json")), None);
    }
}
