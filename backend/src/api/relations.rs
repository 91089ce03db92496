//! `GET /api/relations?source=human|run:ID|difference:ID`: the culture × culture similarity matrix,
//! its clustering, the correlation with the human one, and each culture's nearest and farthest.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::analysis::Relations;

use super::scores::{parse_run_id, personas, run_variant};
use super::{AppError, AppState};
use crate::analysis::{human_relations, run_relations, RunMatrix};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelationQuery {
    /// `human` (default), `run:ID` or `difference:ID`.
    source: Option<String>,
    /// The run's variant; P1 by default.
    variant: Option<String>,
}

const SOURCE_HELP: &str = "`source` is human, run:ID or difference:ID";

#[utoipa::path(
    get,
    path = "/api/relations",
    tag = "relations",
    params(RelationQuery),
    responses(
        (status = 200, body = Relations),
        shared::api::RequestErrors,
    )
)]
pub async fn relations(
    State(state): State<AppState>,
    Query(query): Query<RelationQuery>,
) -> Result<Json<Relations>, AppError> {
    let source = query.source.as_deref().unwrap_or("human").trim();
    if source == "human" {
        return Ok(Json(human_relations(&state.survey)));
    }
    let (kind, run_text) =
        source.split_once(':').ok_or_else(|| AppError::BadRequest(format!("{SOURCE_HELP}, not '{source}'")))?;
    let wanted = match kind {
        "run" => RunMatrix::Similarity,
        "difference" => RunMatrix::DifferenceToHuman,
        _ => return Err(AppError::BadRequest(format!("{SOURCE_HELP}, not '{source}'"))),
    };
    let selected = run_variant(&state, parse_run_id("source", run_text)?, query.variant.as_deref()).await?;
    let personas = personas(&state, selected.run.run_id, selected.variant).await?;
    if personas.iter().all(|persona| persona.country_code.is_none()) {
        return Err(AppError::NotFound(format!(
            "culture-specific {} answers of run {}",
            selected.variant.label(),
            selected.run.run_id
        )));
    }
    Ok(Json(run_relations(&state.survey, &selected.run, &personas, wanted)?))
}
