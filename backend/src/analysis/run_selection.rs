//! A stored run and the prompt variant an analysis reads (the API's endpoints and the command line
//! pick them alike), its answers as personas, and its scores.

use shared::analysis::{parse_variant, RunScores};
use shared::{PromptVariant, Run};

use super::{predictions_from_answers, score_run, AnalysisError, PersonaPredictions, RunScoring};
use crate::store::{Store, WVS_SET};
use crate::survey::SurveyData;

/// The variant an analysis reads when none is asked for (the paper's culture-aware prompt).
pub const DEFAULT_VARIANT: PromptVariant = PromptVariant::P1;

/// A stored run and one of the prompt variants it has WVS answers for.
#[derive(Debug, Clone)]
pub struct RunVariant {
    pub run: Run,
    pub variant: PromptVariant,
    pub available_variants: Vec<PromptVariant>,
}

/// Looks up the run and the asked variant: by default P1 when the run has it, else its first.
/// A variant that does not exist or that the run lacks is `AnalysisError::NotFound`.
pub async fn select_run_variant(
    store: &Store,
    run_id: i64,
    variant: Option<&str>,
) -> Result<RunVariant, AnalysisError> {
    let run = store.run(run_id).await?;
    let available_variants = store.run_variants(run_id, WVS_SET).await?;
    let variant = match variant {
        Some(text) => {
            let variant = parse_variant(text).ok_or_else(|| AnalysisError::NotFound(format!("variant '{text}'")))?;
            if !available_variants.contains(&variant) {
                return Err(AnalysisError::NotFound(format!("variant '{}' in run {run_id}", variant.label())));
            }
            variant
        }
        None if available_variants.contains(&DEFAULT_VARIANT) => DEFAULT_VARIANT,
        None => *available_variants
            .first()
            .ok_or_else(|| AnalysisError::NotFound(format!("WVS answers of run {run_id}")))?,
    };
    Ok(RunVariant { run, variant, available_variants })
}

/// The run's answers of one variant, read as the paper reads them, grouped by persona.
pub async fn stored_personas(
    store: &Store,
    survey: &SurveyData,
    run_id: i64,
    variant: PromptVariant,
) -> Result<Vec<PersonaPredictions>, AnalysisError> {
    let answers = store.run_answers(run_id, WVS_SET, variant).await?;
    predictions_from_answers(survey, &answers)
}

/// The paper's metric (and 1 − JSD) of the selected run and variant, per culture and topic.
pub async fn stored_run_scores(
    store: &Store,
    survey: &SurveyData,
    selected: RunVariant,
) -> Result<RunScores, AnalysisError> {
    let personas = stored_personas(store, survey, selected.run.run_id, selected.variant).await?;
    Ok(score_run(
        survey,
        RunScoring {
            run: &selected.run,
            variant: selected.variant,
            available_variants: selected.available_variants,
            personas: &personas,
        },
    ))
}
