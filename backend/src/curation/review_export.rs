//! The raw export of a run's reviews (who decided what, with edits, notes and time) as CSV or
//! JSON, for analysis outside the app. The API (`GET /api/runs/{id}/reviews/export`) and
//! `culturespa runs reviews` write the same bytes.

use serde::{Deserialize, Serialize};
use shared::review::ReviewRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum ReviewExportFormat {
    /// A header row and one row per review (RFC 4180 quoting).
    #[default]
    Csv,
    /// A JSON array of review objects.
    Json,
}

impl ReviewExportFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ReviewExportFormat::Csv => "text/csv; charset=utf-8",
            ReviewExportFormat::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ReviewExportFormat::Csv => "csv",
            ReviewExportFormat::Json => "json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewExportError {
    #[error("writing the reviews as CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the reviews as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The records in `format`.
pub fn render_reviews(records: &[ReviewRecord], format: ReviewExportFormat) -> Result<Vec<u8>, ReviewExportError> {
    match format {
        ReviewExportFormat::Json => Ok(serde_json::to_vec_pretty(records)?),
        ReviewExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            if records.is_empty() {
                // The header alone, so that an empty export still says what its columns are.
                writer.write_record(CSV_COLUMNS)?;
            }
            for record in records {
                writer.serialize(record)?;
            }
            writer.into_inner().map_err(|error| ReviewExportError::Csv(error.into_error().into()))
        }
    }
}

/// The CSV header: the fields of [`ReviewRecord`] in order.
const CSV_COLUMNS: [&str; 12] = [
    "review_id",
    "instance_id",
    "question_id",
    "country_code",
    "reviewer",
    "decision",
    "corrected_code",
    "edited_output",
    "note",
    "created_at",
    "is_current",
    "supersedes",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn record(note: Option<&str>) -> ReviewRecord {
        ReviewRecord {
            review_id: 3,
            instance_id: 9,
            question_id: "Q1".into(),
            country_code: "USA".into(),
            reviewer: "ann".into(),
            decision: "change_answer".into(),
            corrected_code: Some(2),
            edited_output: None,
            note: note.map(str::to_string),
            created_at: "2026-12-07T03:00:00.000Z".into(),
            is_current: true,
            supersedes: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_it_and_keeps_the_columns() {
        let bytes =
            render_reviews(&[record(Some("too \"strong\", I think\nsecond line"))], ReviewExportFormat::Csv).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), CSV_COLUMNS.join(","));
        assert_eq!(
            text.split_once('\n').unwrap().1,
            "3,9,Q1,USA,ann,change_answer,2,,\"too \"\"strong\"\", I think\nsecond line\",2026-12-07T03:00:00.000Z,true,\n"
        );
        let empty = String::from_utf8(render_reviews(&[], ReviewExportFormat::Csv).unwrap()).unwrap();
        assert_eq!(empty.trim_end(), CSV_COLUMNS.join(","));
    }

    #[test]
    fn json_is_an_array_of_the_records() {
        let bytes = render_reviews(&[record(None)], ReviewExportFormat::Json).unwrap();
        let back: Vec<ReviewRecord> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, vec![record(None)]);
    }
}
