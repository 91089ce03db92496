//! Generated-question files in, filtered questions out: to a JSON file (`questions filter`) or
//! into a stored question set (`questions import`, for users who skip generation).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::Question;

use super::generated_files::{read_generated_files, GeneratedFileError};
use super::question_filter::{filter_generated, FilterOutcome, FilterSummary};
use crate::store::{is_generated_set_name, Store, StoreError, WVS_SET};
use crate::survey::WvsRecord;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Files(#[from] GeneratedFileError),
    #[error("{0:?} cannot name a generated question set (empty, or reserved for the WVS questions or a run's generated questions)")]
    InvalidSetName(String),
    #[error("storing the questions")]
    Store(#[from] StoreError),
    #[error("{file}: cannot write: {error}")]
    Write { file: PathBuf, error: std::io::Error },
}

/// What `questions import` did: the filter counts and how many questions were new to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub question_set: String,
    /// Questions stored by this import (0 when the set was imported before).
    pub inserted: u64,
    #[serde(flatten)]
    pub filter: FilterSummary,
}

/// Reads the files and applies the paper's filters; the kept questions belong to `question_set`.
pub fn filter_generated_files(
    wvs_records: &[WvsRecord],
    files: &[PathBuf],
    question_set: &str,
) -> Result<FilterOutcome, ImportError> {
    if question_set.trim().is_empty() || question_set == WVS_SET || is_generated_set_name(question_set) {
        return Err(ImportError::InvalidSetName(question_set.to_string()));
    }
    let records = read_generated_files(files)?;
    Ok(filter_generated(wvs_records, &records, question_set))
}

/// Filters the files and stores the kept questions as `question_set`, in one transaction.
/// Importing the same files again stores nothing new.
pub async fn import_generated_files(
    store: &Store,
    wvs_records: &[WvsRecord],
    files: &[PathBuf],
    question_set: &str,
) -> Result<ImportSummary, ImportError> {
    let outcome = filter_generated_files(wvs_records, files, question_set)?;
    let file_names: Vec<String> =
        files.iter().map(|file| file.file_name().unwrap_or(file.as_os_str()).to_string_lossy().into_owned()).collect();
    let provenance = format!("questions import (the paper's filters) of {}", file_names.join(", "));
    let inserted = store.insert_questions(&outcome.questions, &provenance).await?;
    Ok(ImportSummary { question_set: question_set.to_string(), inserted, filter: outcome.summary })
}

/// Writes questions as a JSON list of [`shared::Question`].
pub fn write_questions_json(file: &Path, questions: &[Question]) -> Result<(), ImportError> {
    let write_error = |error| ImportError::Write { file: file.to_path_buf(), error };
    let mut writer = std::io::BufWriter::new(std::fs::File::create(file).map_err(write_error)?);
    serde_json::to_writer(&mut writer, questions).map_err(|error| write_error(error.into()))?;
    writer.write_all(b"\n").map_err(write_error)?;
    writer.flush().map_err(write_error)
}
