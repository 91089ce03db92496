use axum::extract::{Path, Query, State};
use axum::Json;
use shared::api::{Health, Page};
use shared::{Culture, Topic};

use super::{AppError, AppState, Paging};

pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_string(), version: env!("CARGO_PKG_VERSION").to_string() })
}

pub async fn cultures(State(state): State<AppState>, Query(paging): Query<Paging>) -> Json<Page<Culture>> {
    Json(paging.slice(&state.survey.cultures))
}

pub async fn culture(
    State(state): State<AppState>,
    Path(country_code): Path<String>,
) -> Result<Json<Culture>, AppError> {
    state
        .survey
        .culture(&country_code.to_ascii_uppercase())
        .cloned()
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("culture '{country_code}'")))
}

pub async fn topics(State(state): State<AppState>, Query(paging): Query<Paging>) -> Json<Page<Topic>> {
    Json(paging.slice(&state.survey.topics))
}

pub async fn topic(State(state): State<AppState>, Path(topic): Path<String>) -> Result<Json<Topic>, AppError> {
    state.survey.topic(&topic).cloned().map(Json).ok_or_else(|| AppError::NotFound(format!("topic '{topic}'")))
}
