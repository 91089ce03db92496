//! The one place that decides whether a run configuration is a run: run files, `POST /api/runs`
//! and the CLI all come through [`validate_run`]. It normalises culture codes (`usa` → `USA`) the
//! same way for all of them and names the field of the first problem it finds.

use shared::{AnswerMode, Calibration, GenerationSettings, PromptVariant, RunConfig, ScoringFormulation, Stage};

use crate::engine::SamplingParams;
use crate::pipeline::runner::{training_settings, AVAILABLE_STAGES};
use crate::survey::SurveyData;

/// A run configuration refused, naming the field (`cultures[2]`, `training.rank`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidRun {
    pub field: String,
    pub message: String,
}

impl InvalidRun {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidRun { field: field.into(), message: message.into() }
    }
}

/// More generation attempts than this per question is a typo, not a plan.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// Checks a run configuration and returns it normalised: culture codes as the survey writes them.
pub fn validate_run(mut config: RunConfig, survey: &SurveyData) -> Result<RunConfig, InvalidRun> {
    if config.name.trim().is_empty() {
        return Err(InvalidRun::new("name", "must not be empty"));
    }
    for (position, code) in config.cultures.iter_mut().enumerate() {
        let culture = survey
            .culture(&code.trim().to_ascii_uppercase())
            .ok_or_else(|| InvalidRun::new(format!("cultures[{position}]"), format!("unknown culture '{code}'")))?;
        *code = culture.country_code.clone();
    }
    if let Some((position, topic)) =
        config.topics.iter().enumerate().find(|(_, topic)| usize::from(**topic) >= survey.topics.len())
    {
        let message = format!("unknown topic {topic} (topics are 0–{})", survey.topics.len() - 1);
        return Err(InvalidRun::new(format!("topics[{position}]"), message));
    }
    check_stages(&config)?;
    check_levers(&config)?;
    if config.stages.contains(&Stage::Generate) {
        check_generation(&config.generation)?;
    }
    if config.stages.contains(&Stage::Train) {
        check_training(&config)?;
    }
    if let Some(adapter) = &config.adapter {
        if adapter.path.trim().is_empty() {
            return Err(InvalidRun::new("adapter.path", "must name an adapter folder"));
        }
        if config.stages.contains(&Stage::Train) {
            return Err(InvalidRun::new("adapter", "a run that trains answers with its own adapters"));
        }
    }
    Ok(config)
}

/// The stages, the variants and the question set go together.
fn check_stages(config: &RunConfig) -> Result<(), InvalidRun> {
    if config.stages.is_empty() {
        return Err(InvalidRun::new("stages", "name at least one stage"));
    }
    if let Some(stage) = config.stages.iter().find(|stage| !AVAILABLE_STAGES.contains(stage)) {
        return Err(InvalidRun::new("stages", format!("the {stage:?} stage is not available yet")));
    }
    if config.variants.is_empty() {
        return Err(InvalidRun::new("variants", "name at least one prompt variant"));
    }
    let answers = config.stages.contains(&Stage::Answer);
    if answers && !config.variants.contains(&PromptVariant::Unaware) && config.stages.contains(&Stage::Collect) {
        return Err(InvalidRun::new("variants", "collecting instances needs the unaware variant"));
    }
    if config.stages.contains(&Stage::Generate) && config.question_set.is_some() {
        return Err(InvalidRun::new("question_set", "a run that generates questions answers its own set"));
    }
    if config.stages.contains(&Stage::Generate) && config.questions_per_topic == 0 {
        return Err(InvalidRun::new("questions_per_topic", "generation needs a number of questions per topic"));
    }
    Ok(())
}

/// The scoring levers apply to scoring mode; instances come from a culture-aware variant answered.
fn check_levers(config: &RunConfig) -> Result<(), InvalidRun> {
    if config.answer_mode == AnswerMode::Sampling {
        if config.scoring != ScoringFormulation::Digits {
            return Err(InvalidRun::new("scoring", "the scoring formulation applies to scoring mode only"));
        }
        if config.calibration != Calibration::None {
            return Err(InvalidRun::new("calibration", "calibration applies to scoring mode only"));
        }
    }
    if let Some(variant) = config.collect_from {
        if !variant.is_culture_specific() {
            return Err(InvalidRun::new("collect_from", "instances are collected from a culture-aware variant"));
        }
        if !config.variants.contains(&variant) {
            let message = format!("the run does not answer the {} variant", variant.label());
            return Err(InvalidRun::new("collect_from", message));
        }
    }
    Ok(())
}

/// The trainer's own range checks, named as the run file names them, and instances to train on.
fn check_training(config: &RunConfig) -> Result<(), InvalidRun> {
    training_settings(&config.training, config.seed)
        .check()
        .map_err(|error| InvalidRun::new(format!("training.{}", error.field), error.reason))?;
    if !config.stages.contains(&Stage::Collect) {
        let message = "training needs the Collect stage (its instances are the training data)";
        return Err(InvalidRun::new("stages", message));
    }
    Ok(())
}

/// The sampler's own range checks, and a bounded number of attempts.
fn check_generation(settings: &GenerationSettings) -> Result<(), InvalidRun> {
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&settings.max_attempts) {
        let message = format!("{} is not in 1–{MAX_ATTEMPTS_LIMIT}", settings.max_attempts);
        return Err(InvalidRun::new("generation.max_attempts", message));
    }
    let sampling = SamplingParams {
        temperature: settings.temperature,
        top_p: settings.top_p,
        max_new_tokens: settings.max_new_tokens as usize,
        ..SamplingParams::greedy(1)
    };
    sampling.check().map_err(|error| InvalidRun::new(format!("generation.{}", error.field), error.reason))
}
