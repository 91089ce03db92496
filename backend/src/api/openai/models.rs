//! `GET /v1/models`: the installed models by name, and every adapter the server's runs trained
//! as `runs/RUN_ID/adapters/NAME`.

use axum::extract::State;
use axum::Json;

use super::types::{ModelList, ModelObject};
use crate::api::auth::Viewer;
use crate::api::{AppError, AppState};
use crate::engine::lora::ADAPTER_CONFIG_FILE;

pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Json<ModelList>, AppError> {
    viewer.require_user()?;
    let object =
        |id: String, owned_by: &str| ModelObject { id, object: "model".into(), created: 0, owned_by: owned_by.into() };
    let mut data: Vec<ModelObject> = state
        .models
        .registry
        .list()
        .into_iter()
        .filter(|listing| listing.installed)
        .map(|listing| object(listing.name, "culturespa"))
        .collect();
    if let Some(data_dir) = state.store.data_dir() {
        let runs = std::fs::read_dir(data_dir.join("runs")).into_iter().flatten().filter_map(Result::ok);
        let mut adapters: Vec<String> = runs
            .filter_map(|run| Some((run.file_name().to_str()?.parse::<i64>().ok()?, run.path().join("adapters"))))
            .flat_map(|(run_id, folder)| {
                std::fs::read_dir(folder)
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().join(ADAPTER_CONFIG_FILE).is_file())
                    .filter_map(move |entry| Some(format!("runs/{run_id}/adapters/{}", entry.file_name().to_str()?)))
            })
            .collect();
        adapters.sort();
        data.extend(adapters.into_iter().map(|id| object(id, "culturespa-run")));
    }
    Ok(Json(ModelList { object: "list".into(), data }))
}
