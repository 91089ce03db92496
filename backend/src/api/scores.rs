//! `GET /api/scores`: the paper's metric for a stored run, per culture and per topic;
//! `GET /api/scores/released`: every released setting of the paper. Also the run and variant
//! lookups the other analysis endpoints share.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::analysis::{parse_variant, ReleasedScores, RunScores};
use shared::{PromptVariant, Run};

use super::{AppError, AppState};
use crate::analysis::{
    predictions_from_answers, score_released, score_run, PersonaPredictions, ReleasedSet, RunScoring,
};
use crate::store::WVS_SET;

/// The variant an analysis reads when none is asked for (the paper's culture-aware prompt).
const DEFAULT_VARIANT: PromptVariant = PromptVariant::P1;

/// A run id from the query: a JSON 400 for text that is not one (axum's own rejection is plain text).
pub(super) fn parse_run_id(parameter: &str, text: &str) -> Result<i64, AppError> {
    text.trim().parse().map_err(|_| AppError::BadRequest(format!("`{parameter}` must be a run id, not '{text}'")))
}

/// A stored run and one of the prompt variants it has answers for.
pub(super) struct RunVariant {
    pub run: Run,
    pub variant: PromptVariant,
    pub available_variants: Vec<PromptVariant>,
}

/// Looks up the run and the asked variant: by default P1 when the run has it, else its first.
pub(super) async fn run_variant(state: &AppState, run_id: i64, variant: Option<&str>) -> Result<RunVariant, AppError> {
    let run = state.store.run(run_id).await?;
    let available_variants = state.store.run_variants(run_id, WVS_SET).await?;
    let variant = match variant {
        Some(text) => {
            let variant = parse_variant(text).ok_or_else(|| AppError::NotFound(format!("variant '{text}'")))?;
            if !available_variants.contains(&variant) {
                return Err(AppError::NotFound(format!("variant '{}' in run {run_id}", variant.label())));
            }
            variant
        }
        None if available_variants.contains(&DEFAULT_VARIANT) => DEFAULT_VARIANT,
        None => {
            *available_variants.first().ok_or_else(|| AppError::NotFound(format!("WVS answers of run {run_id}")))?
        }
    };
    Ok(RunVariant { run, variant, available_variants })
}

/// The run's answers of one variant, read as the paper reads them, grouped by persona.
pub(super) async fn personas(
    state: &AppState,
    run_id: i64,
    variant: PromptVariant,
) -> Result<Vec<PersonaPredictions>, AppError> {
    let answers = state.store.run_answers(run_id, WVS_SET, variant).await?;
    Ok(predictions_from_answers(&state.survey, &answers)?)
}

#[derive(Debug, Deserialize)]
pub struct ScoreQuery {
    run: Option<String>,
    /// `unaware`, `P1`, `P1+P3`, ...; P1 by default.
    variant: Option<String>,
}

pub async fn run_scores(
    State(state): State<AppState>,
    Query(query): Query<ScoreQuery>,
) -> Result<Json<RunScores>, AppError> {
    let run_text = query
        .run
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("`run` is required: /api/scores?run=ID".to_string()))?;
    let selected = run_variant(&state, parse_run_id("run", run_text)?, query.variant.as_deref()).await?;
    let personas = personas(&state, selected.run.run_id, selected.variant).await?;
    Ok(Json(score_run(
        &state.survey,
        RunScoring {
            run: &selected.run,
            variant: selected.variant,
            available_variants: selected.available_variants,
            personas: &personas,
        },
    )))
}

/// The paper's released Llama-3-8B settings, scored as `culturespa score-released` does.
pub async fn released(State(state): State<AppState>) -> Result<Json<ReleasedScores>, AppError> {
    let released = ReleasedSet::embedded(&state.survey)?;
    Ok(Json(score_released(&state.survey, &released)))
}
