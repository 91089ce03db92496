use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use shared::api::Page;
use shared::{Instance, ReviewStatus, Run, RunEvent};

use super::{AppError, AppState, Paging};
use crate::store::InstanceFilter;

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

#[derive(Debug, Deserialize)]
pub struct InstanceQuery {
    run: Option<i64>,
    culture: Option<String>,
    topic: Option<String>,
    status: Option<ReviewStatus>,
}

pub async fn instances(
    State(state): State<AppState>,
    Query(query): Query<InstanceQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<Instance>>, AppError> {
    let country_code = match &query.culture {
        Some(code) => Some(
            state
                .survey
                .culture(&code.to_ascii_uppercase())
                .ok_or_else(|| AppError::NotFound(format!("culture '{code}'")))?
                .country_code
                .clone(),
        ),
        None => None,
    };
    let topic = match &query.topic {
        Some(topic) => {
            Some(state.survey.topic(topic).ok_or_else(|| AppError::NotFound(format!("topic '{topic}'")))?.index)
        }
        None => None,
    };
    let filter = InstanceFilter { run_id: query.run, country_code, topic, review_status: query.status };
    let (total, items) = state.store.instances(&filter, paging.limit(), paging.offset()).await?;
    Ok(Json(Page { total, items }))
}
