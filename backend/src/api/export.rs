//! `GET /api/runs/{id}/export?format=alpaca|messages&mode=joint|specific&accepted_only=&culture=`:
//! the SFT records as a download, JSON lines, or a tar of one file per culture in specific mode.
//! `GET /api/runs/{id}/reviews/export?format=csv|json`: every review of the run, raw.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Viewer;
use super::{AppError, AppState};
use crate::curation::review_export::{render_reviews, ReviewExportFormat};
use crate::curation::{export_run, tar_archive, ExportError, ExportFormat, ExportMode, ExportOptions};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    format: Option<ExportFormat>,
    mode: Option<ExportMode>,
    #[serde(default)]
    accepted_only: bool,
    culture: Option<String>,
}

impl From<ExportError> for AppError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Store(error) => error.into(),
            ExportError::UnknownCulture(code) => AppError::NotFound(format!("culture '{code}'")),
            other => AppError::Internal(other.to_string()),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/export",
    tag = "export",
    params(("run_id" = i64, Path), ExportQuery),
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, AppError> {
    // Training data with the reviewers' edits: a collaborator's download.
    viewer.require_collaborator()?;
    let format = query.format.unwrap_or(ExportFormat::Alpaca);
    let mode = query.mode.unwrap_or(ExportMode::Joint);
    let country_code = query.culture.map(|code| code.to_ascii_uppercase()).filter(|code| !code.is_empty());
    let single_culture = country_code.is_some();
    let options = ExportOptions { run_id, format, mode, accepted_only: query.accepted_only, country_code };
    let files = export_run(&state.store, &state.survey, &options).await?;
    let reviewed = if query.accepted_only { "_accepted" } else { "" };
    match (mode, single_culture) {
        (ExportMode::Specific, false) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
            let format_name = if format == ExportFormat::Alpaca { "alpaca" } else { "messages" };
            let file_name = format!("culturespa_run{run_id}_{format_name}_specific{reviewed}.tar");
            Ok(attachment("application/x-tar", &file_name, tar_archive(&files, format, now)))
        }
        _ => {
            let (file_name, contents) = match files.into_iter().next() {
                Some(file) => (file.file_name, file.contents),
                None => (format!("culturespa_run{run_id}_empty.jsonl"), String::new()),
            };
            let file_name = file_name.replace(".jsonl", &format!("{reviewed}.jsonl"));
            Ok(attachment("application/x-ndjson", &file_name, contents.into_bytes()))
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewExportQuery {
    format: Option<ReviewExportFormat>,
}

/// Every review of the run (reviewer, decision, edits, notes, time; superseded ones too).
#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/reviews/export",
    tag = "export",
    params(("run_id" = i64, Path), ReviewExportQuery),
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn reviews(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
    Query(query): Query<ReviewExportQuery>,
) -> Result<Response, AppError> {
    // Names and notes of the reviewers: for collaborators, as the SFT export is.
    viewer.require_collaborator()?;
    let format = query.format.unwrap_or_default();
    let records = state.store.review_records(run_id).await?;
    let body = render_reviews(&records, format).map_err(|error| AppError::Internal(error.to_string()))?;
    let file_name = format!("culturespa_run{run_id}_reviews.{}", format.extension());
    Ok(attachment(format.media_type(), &file_name, body))
}

fn attachment(content_type: &'static str, file_name: &str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    ([(CONTENT_TYPE, content_type.to_string()), (CONTENT_DISPOSITION, disposition)], body).into_response()
}
