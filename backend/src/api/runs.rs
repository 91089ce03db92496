use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use shared::api::Page;
use shared::{Run, RunEvent};

use super::{AppError, AppState, Paging};
use crate::store::Store;

#[utoipa::path(
    get,
    path = "/api/runs",
    tag = "runs",
    params(Paging),
    responses(
        (status = 200, body = Page<Run>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(State(state): State<AppState>, Query(paging): Query<Paging>) -> Result<Json<Page<Run>>, AppError> {
    let (total, items) = state.store.runs(paging.limit(), paging.offset()).await?;
    let items = items.into_iter().map(|run| shown(&state.store, run)).collect();
    Ok(Json(Page { total, items }))
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}",
    tag = "runs",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = Run),
        shared::api::RequestErrors,
    )
)]
pub async fn detail(State(state): State<AppState>, Path(run_id): Path<i64>) -> Result<Json<Run>, AppError> {
    Ok(Json(shown(&state.store, state.store.run(run_id).await?)))
}

/// A run as the API shows it: a model or adapter named by a path (a run file's, from the command
/// line) shows as the store shows paths, never where the server keeps its files; a remote
/// engine by its model alone.
pub fn shown(store: &Store, mut run: Run) -> Run {
    if let Some(model) = &mut run.config.model {
        if model.contains(std::path::MAIN_SEPARATOR) || std::path::Path::new(model.as_str()).is_absolute() {
            *model = store.shown_path(std::path::Path::new(model.as_str()));
        }
    }
    if let Some(adapter) = &mut run.config.adapter {
        adapter.path = store.shown_path(std::path::Path::new(&adapter.path));
    }
    // A remote engine shows its model, not where the team's server is or how it is reached.
    if let Some(engine) = &mut run.config.engine {
        engine.url = "(a remote engine)".to_string();
        engine.api_key_env = None;
        engine.template = engine.template.as_deref().map(|path| store.shown_path(std::path::Path::new(path)));
    }
    run
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events after this id.
    after: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/events",
    tag = "runs",
    params(("run_id" = i64, Path), EventQuery),
    responses(
        (status = 200, description = "a Page of the run's events after `after`, each as [event_id, RunEvent]"),
        shared::api::RequestErrors,
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
    Query(query): Query<EventQuery>,
) -> Result<Json<Page<(i64, RunEvent)>>, AppError> {
    state.store.run(run_id).await?;
    let items = state.store.events(run_id, query.after.unwrap_or(0)).await?;
    Ok(Json(Page { total: items.len() as u64, items }))
}
