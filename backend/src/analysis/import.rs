//! Importing released answers as a run (`culturespa import-released`, and the paper's Llama-3-8B
//! release on the server's first start), so the browser has real answers and instances.
//!
//! All or nothing: the files are validated before anything is written, and the run with its answers,
//! instances and events is written in one transaction. Idempotent: a completed run from the same
//! source is kept; an unfinished one (written by an older version) is replaced.

use std::collections::HashSet;

use shared::{AnswerMode, PromptVariant, RunConfig, RunEvent, RunOrigin, RunStatus, Stage};

use super::alignment::option_answer_code;
use super::released::{ReleasedFile, ReleasedSet, Target, EMBEDDED_SOURCE};
use super::AnalysisError;
use crate::store::{InstanceFilter, NewAnswer, Store, WVS_SET};
use crate::survey::SurveyData;

/// The paper samples run r with seed 42 − r; the released files are run 0.
const PAPER_SEED: u64 = 42;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub run_id: i64,
    /// `false` when a completed run from the same source already existed (nothing was written).
    pub created: bool,
    pub answers: u64,
    /// (question, culture) pairs with a culture-aware answer.
    pub aware_answers: u64,
    /// Culture-related instances: both answers parse and the aware one differs.
    pub instances: u64,
}

/// Imports the embedded Llama-3-8B release unless a completed run from it exists.
pub async fn import_embedded_release(store: &Store, survey: &SurveyData) -> Result<ImportSummary, AnalysisError> {
    // Checked before parsing the embedded files, so a normal start does not read them.
    let origin = RunOrigin::Imported { source: EMBEDDED_SOURCE.to_string() };
    if let Some(summary) = completed_import(store, &origin).await? {
        return Ok(summary);
    }
    import_released(store, survey, &ReleasedSet::embedded(survey)?, None).await
}

/// Imports the culture-unaware and the P1 answers of a released set as a run named `name` (by
/// default after the model), then collects its instances.
pub async fn import_released(
    store: &Store,
    survey: &SurveyData,
    released: &ReleasedSet,
    name: Option<&str>,
) -> Result<ImportSummary, AnalysisError> {
    let origin = RunOrigin::Imported { source: released.source.clone() };
    if let Some(summary) = completed_import(store, &origin).await? {
        return Ok(summary);
    }
    let plan = ImportPlan::new(survey, released)?;
    store.insert_questions(&survey.questions, crate::server::WVS_PROVENANCE).await?;
    write_run(store, &plan.config(released, name), &origin, &plan).await
}

/// The completed run from `origin`, if any; runs from it that never finished are deleted.
async fn completed_import(store: &Store, origin: &RunOrigin) -> Result<Option<ImportSummary>, AnalysisError> {
    for run in store.runs_with_origin(origin).await? {
        if run.status == RunStatus::Completed {
            let filter = InstanceFilter { run_id: Some(run.run_id), ..InstanceFilter::default() };
            let (instances, _) = store.instances(&filter, 0, 0).await?;
            let (answers, aware_answers) = store.answer_counts(run.run_id).await?;
            return Ok(Some(ImportSummary { run_id: run.run_id, created: false, answers, aware_answers, instances }));
        }
        tracing::warn!(run_id = run.run_id, "replacing an import that did not finish");
        store.delete_run(run.run_id).await?;
    }
    Ok(None)
}

/// The validated answers to write, before anything touches the store.
struct ImportPlan {
    answers: Vec<NewAnswer>,
    aware_answers: u64,
    country_codes: Vec<String>,
}

impl ImportPlan {
    fn new(survey: &SurveyData, released: &ReleasedSet) -> Result<Self, AnalysisError> {
        let error = |message: String| AnalysisError::Import { source_name: released.source.clone(), message };
        let unaware: Vec<&ReleasedFile> =
            released.files.iter().filter(|file| file.kind.variant == PromptVariant::Unaware).collect();
        let aware: Vec<&ReleasedFile> =
            released.files.iter().filter(|file| file.kind.variant == PromptVariant::P1).collect();
        let [unaware] = unaware.as_slice() else {
            return Err(error(format!("needs exactly one culture_unaware file, found {}", unaware.len())));
        };
        if aware.is_empty() {
            return Err(error("no culture_aware (P1) file".to_string()));
        }
        if let Some(other_run) = aware.iter().find(|file| file.kind.run != unaware.kind.run) {
            return Err(error(format!("{} is not from run {}", other_run.file_name, unaware.kind.run)));
        }
        let mut country_codes = Vec::with_capacity(aware.len());
        let mut seen = HashSet::new();
        for file in &aware {
            let Target::Culture(code) = &file.kind.target else {
                return Err(error(format!("{} names no culture", file.file_name)));
            };
            if !seen.insert(code.as_str()) {
                return Err(error(format!("two culture_aware files for {code}")));
            }
            country_codes.push(code.clone());
        }
        // The run's cultures in the paper's order.
        country_codes.sort_by_key(|code| survey.cultures.iter().position(|culture| &culture.country_code == code));

        let mut answers = answers_of(survey, unaware, None, PromptVariant::Unaware)?;
        let mut aware_answers = 0;
        for file in &aware {
            let country_code = match &file.kind.target {
                Target::Culture(code) => Some(code.as_str()),
                Target::AllCultures => None,
            };
            let file_answers = answers_of(survey, file, country_code, PromptVariant::P1)?;
            aware_answers += file_answers.len() as u64;
            answers.extend(file_answers);
        }
        Ok(ImportPlan { answers, aware_answers, country_codes })
    }

    fn config(&self, released: &ReleasedSet, name: Option<&str>) -> RunConfig {
        let model = released.source.rsplit(['/', '\\']).find(|part| !part.is_empty()).unwrap_or(&released.source);
        RunConfig {
            name: name.map_or_else(|| format!("{model} (paper release)"), str::to_string),
            model: Some(model.to_string()),
            question_set: None,
            cultures: self.country_codes.clone(),
            topics: Vec::new(),
            // The whole WVS set, not a per-topic sample.
            questions_per_topic: 0,
            variants: vec![PromptVariant::Unaware, PromptVariant::P1],
            answer_mode: AnswerMode::Sampling,
            persona: Default::default(),
            scoring: Default::default(),
            calibration: Default::default(),
            question_selection: Default::default(),
            collect_from: None,
            seed: PAPER_SEED,
            generation: Default::default(),
            training: Default::default(),
            adapter: None,
            device: None,
            engine: None,
            stages: vec![Stage::Answer, Stage::Collect],
        }
    }
}

fn answers_of(
    survey: &SurveyData,
    file: &ReleasedFile,
    country_code: Option<&str>,
    variant: PromptVariant,
) -> Result<Vec<NewAnswer>, AnalysisError> {
    file.answers
        .iter()
        .map(|answer| {
            // Read files hold kept questions only; this guards a hand-built set.
            let question = survey.question(&answer.question_id).ok_or_else(|| AnalysisError::Invalid {
                file: file.file_name.clone().into(),
                message: format!("{} is not a kept WVS question", answer.question_id),
            })?;
            Ok(NewAnswer {
                question_set: WVS_SET.to_string(),
                question_id: answer.question_id.clone(),
                country_code: country_code.map(str::to_string),
                variant,
                raw_reply: Some(answer.answer.clone()),
                parsed_code: option_answer_code(&answer.answer, question),
                distribution: None,
                raw_distribution: None,
            })
        })
        .collect()
}

/// Writes the run, its answers, instances and events in one transaction: all of it or nothing.
async fn write_run(
    store: &Store,
    config: &RunConfig,
    origin: &RunOrigin,
    plan: &ImportPlan,
) -> Result<ImportSummary, AnalysisError> {
    let mut transaction = store.begin().await?;
    let run_id = transaction.create_run(config, origin).await?;
    let total = plan.answers.len() as u64;
    transaction.append_event(run_id, &RunEvent::StageStarted { stage: Stage::Answer, total }).await?;
    let answers = transaction.insert_answers(run_id, &plan.answers).await?;
    transaction.append_event(run_id, &RunEvent::Progress { stage: Stage::Answer, done: answers, total }).await?;
    transaction.append_event(run_id, &RunEvent::StageFinished { stage: Stage::Answer }).await?;

    let pairs = plan.aware_answers;
    transaction.append_event(run_id, &RunEvent::StageStarted { stage: Stage::Collect, total: pairs }).await?;
    let instances = transaction.collect_instances(run_id, PromptVariant::P1).await?;
    transaction.append_event(run_id, &RunEvent::Progress { stage: Stage::Collect, done: pairs, total: pairs }).await?;
    let message = format!(
        "{instances} culture-related instances: the P1 answer differs from the unaware one in {instances} of {pairs} (question, culture) pairs"
    );
    transaction.append_event(run_id, &RunEvent::Log { message }).await?;
    transaction.append_event(run_id, &RunEvent::StageFinished { stage: Stage::Collect }).await?;
    transaction.append_event(run_id, &RunEvent::Finished { status: RunStatus::Completed }).await?;
    transaction.commit().await?;
    Ok(ImportSummary { run_id, created: true, answers, aware_answers: pairs, instances })
}
