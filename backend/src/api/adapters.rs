//! A run's trained adapters: `GET /api/runs/{id}/adapters` lists them, `GET
//! /api/runs/{id}/adapters/{name}/download` gives one as a tar of its PEFT folder (weights, config,
//! model card), ready for `PeftModel.from_pretrained`.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{AppError, AppState};
use crate::engine::lora::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, MODEL_CARD_FILE};

/// The files of an adapter folder a download carries, in this order.
const ADAPTER_FILES: [&str; 3] = [MODEL_CARD_FILE, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdapterListing {
    pub name: String,
    /// Bytes of its files together.
    pub bytes: u64,
}

/// `DATA_DIR/runs/RUN_ID/adapters`, for a run that exists.
async fn adapters_root(state: &AppState, run_id: i64) -> Result<PathBuf, AppError> {
    state.store.run(run_id).await?;
    let data_dir = state.store.data_dir().ok_or_else(|| AppError::NotFound(format!("adapters of run {run_id}")))?;
    Ok(data_dir.join("runs").join(run_id.to_string()).join("adapters"))
}

fn folder_bytes(folder: &std::path::Path) -> u64 {
    ADAPTER_FILES.iter().filter_map(|file| std::fs::metadata(folder.join(file)).ok()).map(|meta| meta.len()).sum()
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/adapters",
    tag = "adapters",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = Vec<AdapterListing>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
) -> Result<Json<Vec<AdapterListing>>, AppError> {
    let root = adapters_root(&state, run_id).await?;
    let mut adapters: Vec<AdapterListing> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join(ADAPTER_CONFIG_FILE).is_file())
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            Some(AdapterListing { bytes: folder_bytes(&entry.path()), name })
        })
        .collect();
    adapters.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(adapters))
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/adapters/{name}/download",
    tag = "adapters",
    params(("run_id" = i64, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn download(
    State(state): State<AppState>,
    Path((run_id, name)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound(format!("adapter '{name}' of run {run_id}"));
    // A name is one plain folder name: no separators, no `..`, no hidden files.
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if !plain {
        return Err(not_found());
    }
    let folder = adapters_root(&state, run_id).await?.join(&name);
    if !folder.join(ADAPTER_CONFIG_FILE).is_file() || folder.symlink_metadata().is_ok_and(|meta| meta.is_symlink()) {
        return Err(not_found());
    }
    let archive_name = format!("culturespa_run{run_id}_{name}");
    let prefix = archive_name.clone();
    let archive = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        for file in ADAPTER_FILES {
            let path = folder.join(file);
            if path.is_file() {
                builder.append_path_with_name(&path, format!("{prefix}/{file}"))?;
            }
        }
        builder.into_inner()
    })
    .await
    .map_err(|error| AppError::Internal(format!("packing the adapter: {error}")))?
    .map_err(|error| AppError::Internal(format!("packing the adapter: {error}")))?;
    let disposition = format!("attachment; filename=\"{archive_name}.tar\"");
    Ok(([(CONTENT_TYPE, "application/x-tar".to_string()), (CONTENT_DISPOSITION, disposition)], archive).into_response())
}
