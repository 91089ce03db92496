use axum::extract::{Path, Query, State};
use axum::Json;
use shared::api::{Health, Page};
use shared::{Culture, Topic};

use super::{AppError, AppState, Paging};

#[utoipa::path(
    get,
    path = "/api/health",
    tag = "survey",
    responses(
        (status = 200, body = Health),
    )
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_string(), version: env!("CARGO_PKG_VERSION").to_string() })
}

#[utoipa::path(
    get,
    path = "/api/cultures",
    tag = "survey",
    params(Paging),
    responses(
        (status = 200, body = Page<Culture>),
    )
)]
pub async fn cultures(State(state): State<AppState>, Query(paging): Query<Paging>) -> Json<Page<Culture>> {
    Json(paging.slice(&state.survey.cultures))
}

#[utoipa::path(
    get,
    path = "/api/cultures/{country_code}",
    tag = "survey",
    params(("country_code" = String, Path)),
    responses(
        (status = 200, body = Culture),
        shared::api::RequestErrors,
    )
)]
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

#[utoipa::path(
    get,
    path = "/api/topics",
    tag = "survey",
    params(Paging),
    responses(
        (status = 200, body = Page<Topic>),
    )
)]
pub async fn topics(State(state): State<AppState>, Query(paging): Query<Paging>) -> Json<Page<Topic>> {
    Json(paging.slice(&state.survey.topics))
}

#[utoipa::path(
    get,
    path = "/api/topics/{topic}",
    tag = "survey",
    params(("topic" = String, Path)),
    responses(
        (status = 200, body = Topic),
        shared::api::RequestErrors,
    )
)]
pub async fn topic(State(state): State<AppState>, Path(topic): Path<String>) -> Result<Json<Topic>, AppError> {
    state.survey.topic(&topic).cloned().map(Json).ok_or_else(|| AppError::NotFound(format!("topic '{topic}'")))
}
