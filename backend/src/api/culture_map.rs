//! `GET /api/culture-map?run=ID&compare=ID`: the Inglehart–Welzel style map of the human
//! cultures, a run's culture personas on it, and arrows from them to another run's.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::analysis::{CultureMap, MapPersonas};
use shared::PromptVariant;

use super::scores::{parse_run_id, personas, run_variant};
use super::{AppError, AppState};
use crate::analysis::{culture_map, HumanMap};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapQuery {
    /// The run whose personas are placed (the arrows' start).
    run: Option<String>,
    /// The run the arrows go to (same variant).
    compare: Option<String>,
    /// P1 by default.
    variant: Option<String>,
}

async fn placed_personas(
    state: &AppState,
    human: &HumanMap,
    parameter: &str,
    run_text: &str,
    variant: Option<&str>,
) -> Result<MapPersonas, AppError> {
    let selected = run_variant(state, parse_run_id(parameter, run_text)?, variant).await?;
    let mut placed = personas(state, selected.run.run_id, selected.variant).await?;
    // The run's answers without a culture are drawn too, as where the model stands by default.
    let has_unaware = placed.iter().any(|persona| persona.country_code.is_none());
    if !has_unaware && selected.available_variants.contains(&PromptVariant::Unaware) {
        let unaware = personas(state, selected.run.run_id, PromptVariant::Unaware).await?;
        placed.extend(unaware.into_iter().filter(|persona| persona.country_code.is_none()));
    }
    Ok(human.personas(&state.survey, &selected.run, selected.variant, &placed))
}

#[utoipa::path(
    get,
    path = "/api/culture-map",
    tag = "culture_map",
    params(MapQuery),
    responses(
        (status = 200, body = CultureMap),
        shared::api::RequestErrors,
    )
)]
pub async fn culture_map_of(
    State(state): State<AppState>,
    Query(query): Query<MapQuery>,
) -> Result<Json<CultureMap>, AppError> {
    let human = HumanMap::new(&state.survey);
    let variant = query.variant.as_deref();
    let personas = match query.run.as_deref() {
        Some(run) => Some(placed_personas(&state, &human, "run", run, variant).await?),
        None if query.compare.is_some() => {
            return Err(AppError::BadRequest("`compare` needs `run`: the arrows go from run to compare".to_string()))
        }
        None => None,
    };
    // The same variant as `run` (its default may differ in a run without P1).
    let compare_variant = personas.as_ref().map(|placed| placed.variant.label());
    let compare = match query.compare.as_deref() {
        Some(compare) => Some(placed_personas(&state, &human, "compare", compare, compare_variant).await?),
        None => None,
    };
    Ok(Json(culture_map(&human, personas, compare)))
}
