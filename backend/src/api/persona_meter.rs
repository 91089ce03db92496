//! `GET /api/persona-meter?run=ID&variant=P1`: whether the run's culture persona moved its answers
//! and toward whom (see `analysis::persona_meter`).

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::analysis::PersonaMeter;
use shared::PromptVariant;

use super::scores::{parse_run_id, run_variant};
use super::{AppError, AppState};
use crate::analysis::{run_persona_meter, DEFAULT_RESAMPLES, DEFAULT_SEED};

/// The most bootstrap resamples a request may ask for.
pub const MAX_RESAMPLES: u32 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeterQuery {
    run: Option<String>,
    /// A culture-aware variant (`P1`, `P2`, `P3`, ...); P1 by default.
    variant: Option<String>,
    resamples: Option<String>,
    seed: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/persona-meter",
    tag = "persona_meter",
    params(MeterQuery),
    responses(
        (status = 200, body = PersonaMeter),
        shared::api::RequestErrors,
    )
)]
pub async fn persona_meter_of(
    State(state): State<AppState>,
    Query(query): Query<MeterQuery>,
) -> Result<Json<PersonaMeter>, AppError> {
    let run_text = query
        .run
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("`run` is required: /api/persona-meter?run=ID".to_string()))?;
    let resamples = match query.resamples.as_deref() {
        None => DEFAULT_RESAMPLES,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_RESAMPLES).contains(n))
            .ok_or_else(|| AppError::BadRequest(format!("`resamples` must be 1..={MAX_RESAMPLES}, not '{text}'")))?,
    };
    let seed = match query.seed.as_deref() {
        None => DEFAULT_SEED,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| AppError::BadRequest(format!("`seed` must be a whole number, not '{text}'")))?,
    };
    let selected = run_variant(&state, parse_run_id("run", run_text)?, query.variant.as_deref()).await?;
    let run_id = selected.run.run_id;
    if selected.variant == PromptVariant::Unaware {
        return Err(AppError::BadRequest(
            "the meter compares a culture-aware variant with the unaware answers; pick one, e.g. variant=P1".into(),
        ));
    }
    if !selected.available_variants.contains(&PromptVariant::Unaware) {
        return Err(AppError::NotFound(format!("unaware answers of run {run_id} (the meter compares with them)")));
    }
    Ok(Json(run_persona_meter(&state.store, &state.survey, run_id, selected.variant, resamples, seed).await?))
}
