//! `GET /api/scores`: the paper's metric for a stored run, per culture and per topic;
//! `GET /api/scores/released`: every released setting of the paper. Also the run and variant
//! lookups the other analysis endpoints share.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::analysis::{ReleasedScores, RunScores};
use shared::PromptVariant;

use super::{AppError, AppState};
use crate::analysis::{
    score_released, select_run_variant, stored_personas, stored_run_scores, PersonaPredictions, ReleasedSet, RunVariant,
};

/// A run id from the query: a JSON 400 for text that is not one (axum's own rejection is plain text).
pub(super) fn parse_run_id(parameter: &str, text: &str) -> Result<i64, AppError> {
    text.trim().parse().map_err(|_| AppError::BadRequest(format!("`{parameter}` must be a run id, not '{text}'")))
}

/// Looks up the run and the asked variant (P1 by default): 404 for what does not exist.
pub(super) async fn run_variant(state: &AppState, run_id: i64, variant: Option<&str>) -> Result<RunVariant, AppError> {
    Ok(select_run_variant(&state.store, run_id, variant).await?)
}

/// The run's answers of one variant, read as the paper reads them, grouped by persona.
pub(super) async fn personas(
    state: &AppState,
    run_id: i64,
    variant: PromptVariant,
) -> Result<Vec<PersonaPredictions>, AppError> {
    Ok(stored_personas(&state.store, &state.survey, run_id, variant).await?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScoreQuery {
    run: Option<String>,
    /// `unaware`, `P1`, `P1+P3`, ...; P1 by default.
    variant: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/scores",
    tag = "scores",
    params(ScoreQuery),
    responses(
        (status = 200, body = RunScores),
        shared::api::RequestErrors,
    )
)]
pub async fn run_scores(
    State(state): State<AppState>,
    Query(query): Query<ScoreQuery>,
) -> Result<Json<RunScores>, AppError> {
    let run_text = query
        .run
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("`run` is required: /api/scores?run=ID".to_string()))?;
    let selected = run_variant(&state, parse_run_id("run", run_text)?, query.variant.as_deref()).await?;
    Ok(Json(stored_run_scores(&state.store, &state.survey, selected).await?))
}

/// The paper's released Llama-3-8B settings, scored as `culturespa score-released` does.
#[utoipa::path(
    get,
    path = "/api/scores/released",
    tag = "scores",
    responses(
        (status = 200, body = ReleasedScores),
        shared::api::RequestErrors,
    )
)]
pub async fn released(State(state): State<AppState>) -> Result<Json<ReleasedScores>, AppError> {
    let released = ReleasedSet::embedded(&state.survey)?;
    Ok(Json(score_released(&state.survey, &released)))
}
