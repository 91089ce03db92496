use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use shared::api::Page;
use shared::{Run, RunEvent};

use super::{AppError, AppState, Paging};

pub async fn list(State(state): State<AppState>, Query(paging): Query<Paging>) -> Result<Json<Page<Run>>, AppError> {
    let (total, items) = state.store.runs(paging.limit(), paging.offset()).await?;
    Ok(Json(Page { total, items }))
}

pub async fn detail(State(state): State<AppState>, Path(run_id): Path<i64>) -> Result<Json<Run>, AppError> {
    Ok(Json(state.store.run(run_id).await?))
}

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    /// Only events after this id.
    after: Option<i64>,
}

pub async fn events(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
    Query(query): Query<EventQuery>,
) -> Result<Json<Page<(i64, RunEvent)>>, AppError> {
    state.store.run(run_id).await?;
    let items = state.store.events(run_id, query.after.unwrap_or(0)).await?;
    Ok(Json(Page { total: items.len() as u64, items }))
}
