//! The SFT export of a run's instances: alpaca records exactly as LLaMA-Factory reads them
//! (`instruction` = the answer user prompt, `input` = "", `output` = the code, `system` = the P1
//! system prompt), or OpenAI-style `messages` with a `metadata` object; one JSON object per line.
//! Joint: one file for all cultures; specific: one file per culture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::review::InstanceItem;
use shared::{Question, ReviewStatus};

use super::ReviewLabel;
use crate::pipeline::answer_prompt::{answer_user_prompt, aware_system_prompt};
use crate::store::{InstanceFilter, Store, StoreError};
use crate::survey::SurveyData;

/// LLaMA-Factory's index of the dataset files in a folder.
pub const DATASET_INFO_FILE: &str = "dataset_info.json";
const RECORDS_EXTENSION: &str = "jsonl";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum ExportFormat {
    /// `{"instruction", "input", "output", "system"}` (LLaMA-Factory's alpaca format).
    Alpaca,
    /// `{"messages": [system, user, assistant], "metadata": {...}}` (OpenAI chat format).
    Messages,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Alpaca => "alpaca",
            ExportFormat::Messages => "messages",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum ExportMode {
    /// One file for all cultures (one adapter).
    Joint,
    /// One file per culture (one adapter each).
    Specific,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub run_id: i64,
    pub format: ExportFormat,
    pub mode: ExportMode,
    /// Only instances the reviewers accepted, with their changed or edited answers; otherwise every
    /// instance as collected, with the model's culture-aware answer.
    pub accepted_only: bool,
    /// Only this culture.
    pub country_code: Option<String>,
}

/// One exported file, in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub file_name: String,
    /// Set in specific mode.
    pub country_code: Option<String>,
    pub records: u64,
    /// JSON lines, each ending in `\n`.
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown culture {0}")]
    UnknownCulture(String),
    #[error("instance {instance_id} is accepted but its reviews give no answer")]
    NoAcceptedAnswer { instance_id: i64 },
    #[error("serialising an SFT record")]
    Serialize(#[from] serde_json::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

#[derive(Serialize)]
struct AlpacaRecord<'a> {
    instruction: &'a str,
    input: &'a str,
    output: &'a str,
    system: &'a str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct MessagesRecord<'a> {
    messages: [ChatMessage<'a>; 3],
    metadata: RecordMetadata<'a>,
}

#[derive(Serialize)]
struct RecordMetadata<'a> {
    run_id: i64,
    instance_id: i64,
    question_set: &'a str,
    question_id: &'a str,
    culture: &'a str,
    topic: u8,
    topic_name: &'a str,
    unaware_answer: u32,
    aware_answer: u32,
    review_status: ReviewStatus,
}

/// The records of a run's instances, in files as `options.mode` asks; a culture without records
/// gets no file.
pub async fn export_run(
    store: &Store,
    survey: &SurveyData,
    options: &ExportOptions,
) -> Result<Vec<ExportFile>, ExportError> {
    store.run(options.run_id).await?;
    if let Some(code) = &options.country_code {
        survey.culture(code).ok_or_else(|| ExportError::UnknownCulture(code.clone()))?;
    }
    let filter = InstanceFilter {
        run_id: Some(options.run_id),
        country_code: options.country_code.clone(),
        review_status: options.accepted_only.then_some(ReviewStatus::Accepted),
        ..InstanceFilter::default()
    };
    let (_, items) = store.instance_items(&filter, u32::MAX, 0).await?;
    let accepted_outputs =
        if options.accepted_only { accepted_outputs(store, options.run_id).await? } else { HashMap::new() };

    let mut questions: HashMap<(String, String), Question> = HashMap::new();
    // (culture, JSON line) in collection order.
    let mut records: Vec<(String, String)> = Vec::with_capacity(items.len());
    for item in &items {
        let instance = &item.instance;
        let key = (item.question_set.clone(), instance.question_id.clone());
        if !questions.contains_key(&key) {
            let question = store.question(&key.0, &key.1).await?;
            questions.insert(key.clone(), question);
        }
        let output = if options.accepted_only {
            accepted_outputs
                .get(&instance.instance_id)
                .cloned()
                .ok_or(ExportError::NoAcceptedAnswer { instance_id: instance.instance_id })?
        } else {
            instance.aware_code.to_string()
        };
        let line = record_line(survey, options.format, item, &questions[&key], &output)?;
        records.push((instance.country_code.clone(), line));
    }

    let stem = format!("culturespa_run{}_{}", options.run_id, options.format.as_str());
    let file = |file_name: String, country_code: Option<String>, lines: Vec<String>| ExportFile {
        file_name,
        country_code,
        records: lines.len() as u64,
        contents: lines.into_iter().map(|line| line + "\n").collect(),
    };
    Ok(match options.mode {
        ExportMode::Joint => {
            let lines = records.into_iter().map(|(_, line)| line).collect();
            vec![file(format!("{stem}_joint.{RECORDS_EXTENSION}"), None, lines)]
        }
        ExportMode::Specific => survey
            .cultures
            .iter()
            .filter_map(|culture| {
                let code = &culture.country_code;
                let lines: Vec<String> =
                    records.iter().filter(|(of, _)| of == code).map(|(_, line)| line.clone()).collect();
                (!lines.is_empty())
                    .then(|| file(format!("{stem}_{code}.{RECORDS_EXTENSION}"), Some(code.clone()), lines))
            })
            .collect(),
    })
}

/// The answer every current review of each accepted instance agrees on.
async fn accepted_outputs(store: &Store, run_id: i64) -> Result<HashMap<i64, String>, StoreError> {
    let mut outputs = HashMap::new();
    for review in store.review_labels(run_id).await? {
        if let ReviewLabel::Answer(output) = review.label {
            outputs.entry(review.instance_id).or_insert(output);
        }
    }
    Ok(outputs)
}

fn record_line(
    survey: &SurveyData,
    format: ExportFormat,
    item: &InstanceItem,
    question: &Question,
    output: &str,
) -> Result<String, ExportError> {
    let instance = &item.instance;
    let culture = survey
        .culture(&instance.country_code)
        .ok_or_else(|| ExportError::UnknownCulture(instance.country_code.clone()))?;
    let system = aware_system_prompt(culture);
    let user = answer_user_prompt(question);
    let json = match format {
        ExportFormat::Alpaca => {
            serde_json::to_string(&AlpacaRecord { instruction: &user, input: "", output, system: &system })
        }
        ExportFormat::Messages => {
            let topic_name = survey
                .topics
                .iter()
                .find(|topic| topic.index == instance.topic)
                .map_or("", |topic| topic.name.as_str());
            serde_json::to_string(&MessagesRecord {
                messages: [
                    ChatMessage { role: "system", content: &system },
                    ChatMessage { role: "user", content: &user },
                    ChatMessage { role: "assistant", content: output },
                ],
                metadata: RecordMetadata {
                    run_id: instance.run_id,
                    instance_id: instance.instance_id,
                    question_set: &item.question_set,
                    question_id: &instance.question_id,
                    culture: &instance.country_code,
                    topic: instance.topic,
                    topic_name,
                    unaware_answer: instance.unaware_code,
                    aware_answer: instance.aware_code,
                    review_status: instance.review_status,
                },
            })
        }
    };
    Ok(json?)
}

/// LLaMA-Factory's `dataset_info.json` for the exported files: each file a dataset named after it.
pub fn dataset_info(files: &[ExportFile], format: ExportFormat) -> String {
    let mut info = serde_json::Map::new();
    for file in files {
        let name = file.file_name.trim_end_matches(&format!(".{RECORDS_EXTENSION}")).to_string();
        let entry = match format {
            ExportFormat::Alpaca => serde_json::json!({
                "file_name": file.file_name,
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
            }),
            ExportFormat::Messages => serde_json::json!({
                "file_name": file.file_name,
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {
                    "role_tag": "role", "content_tag": "content", "user_tag": "user",
                    "assistant_tag": "assistant", "system_tag": "system"
                }
            }),
        };
        info.insert(name, entry);
    }
    let pretty = serde_json::to_string_pretty(&serde_json::Value::Object(info));
    pretty.unwrap_or_else(|error| unreachable!("serialising dataset_info: {error}")) + "\n"
}

/// Writes the files and their `dataset_info.json` into `dir` (created if missing); returns the
/// paths of the record files.
pub fn write_export(dir: &Path, files: &[ExportFile], format: ExportFormat) -> Result<Vec<PathBuf>, ExportError> {
    let write = |path: PathBuf, contents: &str| {
        std::fs::write(&path, contents).map_err(|source| ExportError::Write { path: path.clone(), source })?;
        Ok::<_, ExportError>(path)
    };
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Write { path: dir.to_path_buf(), source })?;
    let paths = files.iter().map(|file| write(dir.join(&file.file_name), &file.contents)).collect::<Result<_, _>>()?;
    write(dir.join(DATASET_INFO_FILE), &dataset_info(files, format))?;
    Ok(paths)
}

const TAR_BLOCK: usize = 512;
const TAR_FILE_MODE: &[u8] = b"0000644\0";

/// A POSIX ustar archive of the files and their `dataset_info.json` (downloads of specific mode).
pub fn tar_archive(files: &[ExportFile], format: ExportFormat, modified_unix_seconds: u64) -> Vec<u8> {
    let info = dataset_info(files, format);
    let entries = files
        .iter()
        .map(|file| (file.file_name.as_str(), file.contents.as_bytes()))
        .chain(std::iter::once((DATASET_INFO_FILE, info.as_bytes())));
    let mut archive = Vec::new();
    for (name, contents) in entries {
        let mut header = [0u8; TAR_BLOCK];
        let name_bytes = name.as_bytes();
        // Our file names are short ASCII; the name field holds 100 bytes.
        header[..name_bytes.len().min(100)].copy_from_slice(&name_bytes[..name_bytes.len().min(100)]);
        header[100..108].copy_from_slice(TAR_FILE_MODE);
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{:011o}\0", contents.len()).as_bytes());
        header[136..148].copy_from_slice(format!("{modified_unix_seconds:011o}\0").as_bytes());
        header[148..156].copy_from_slice(b"        ");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        let checksum: u32 = header.iter().map(|&byte| u32::from(byte)).sum();
        header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        archive.extend_from_slice(&header);
        archive.extend_from_slice(contents);
        archive.resize(archive.len().next_multiple_of(TAR_BLOCK), 0);
    }
    // Two zero blocks end the archive.
    archive.resize(archive.len() + 2 * TAR_BLOCK, 0);
    archive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_archives_have_ustar_headers_and_padded_contents() {
        let files = vec![ExportFile {
            file_name: "a.jsonl".into(),
            country_code: None,
            records: 1,
            contents: "{\"x\":1}\n".into(),
        }];
        let archive = tar_archive(&files, ExportFormat::Alpaca, 0);
        assert_eq!(archive.len() % TAR_BLOCK, 0);
        assert_eq!(&archive[..7], b"a.jsonl");
        assert_eq!(&archive[257..263], b"ustar\0");
        assert_eq!(&archive[TAR_BLOCK..TAR_BLOCK + 8], b"{\"x\":1}\n");
        // The checksum counts its own field as spaces.
        let mut header = archive[..TAR_BLOCK].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|&byte| u32::from(byte)).sum::<u32>());
        assert_eq!(&archive[2 * TAR_BLOCK..2 * TAR_BLOCK + DATASET_INFO_FILE.len()], DATASET_INFO_FILE.as_bytes());
    }
}
