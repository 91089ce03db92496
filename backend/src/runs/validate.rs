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

/// Upper bounds on what a run may ask for: every number and list a request sets has one, so that
/// no request can make the server allocate or work without end. Each is far above the paper's
/// setting (rank 8, 3 epochs, 13,000 generated questions, 256 new tokens).
pub mod limits {
    pub const NAME_CHARS: usize = 200;
    pub const PATH_CHARS: usize = 1_000;
    /// 1,000 per topic is the paper's generation; the 259 WVS questions fit many times over.
    pub const QUESTIONS_PER_TOPIC: u32 = 10_000;
    pub const RANK: u32 = 256;
    pub const EPOCHS: u32 = 100;
    pub const BATCH_SIZE: u32 = 4_096;
    pub const MAX_STEPS: u32 = 1_000_000;
    pub const MAX_NEW_TOKENS: u32 = 4_096;
    pub const TEMPERATURE: f64 = 10.0;
    pub const ALPHA: f64 = 10_000.0;
    pub const LEARNING_RATE: f64 = 1.0;
}

/// Checks a run configuration and returns it normalised: culture codes as the survey writes them.
pub fn validate_run(mut config: RunConfig, survey: &SurveyData) -> Result<RunConfig, InvalidRun> {
    if config.name.trim().is_empty() {
        return Err(InvalidRun::new("name", "must not be empty"));
    }
    check_bounds(&config)?;
    for (position, code) in config.cultures.iter_mut().enumerate() {
        let culture = survey
            .culture(&code.trim().to_ascii_uppercase())
            .ok_or_else(|| InvalidRun::new(format!("cultures[{position}]"), format!("unknown culture '{code}'")))?;
        *code = culture.country_code.clone();
    }
    if let Some(position) = first_repeat(&config.cultures) {
        let message = format!("'{}' is named twice", config.cultures[position]);
        return Err(InvalidRun::new(format!("cultures[{position}]"), message));
    }
    if let Some(position) = first_repeat(&config.topics) {
        return Err(InvalidRun::new(
            format!("topics[{position}]"),
            format!("topic {} is named twice", config.topics[position]),
        ));
    }
    if let Some(position) = first_repeat(&config.variants) {
        let message = format!("{} is named twice", config.variants[position].label());
        return Err(InvalidRun::new(format!("variants[{position}]"), message));
    }
    if let Some(position) = first_repeat(&config.stages) {
        return Err(InvalidRun::new(
            format!("stages[{position}]"),
            format!("{:?} is named twice", config.stages[position]),
        ));
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
    if let Some(engine) = &config.engine {
        check_remote_engine(&config, engine)?;
    }
    if let Some(device) = &mut config.device {
        // Written as the engine writes it (`cuda` → `cuda:0`), so equal devices compare equal.
        *device =
            device.parse::<crate::engine::DeviceKind>().map_err(|error| InvalidRun::new("device", error))?.to_string();
    }
    Ok(config)
}

/// A remote engine answers and generates; what needs the model's weights stays in process.
fn check_remote_engine(config: &RunConfig, engine: &shared::RemoteEngineConfig) -> Result<(), InvalidRun> {
    crate::remote::checked_base_url(&engine.url).map_err(|error| match error {
        crate::remote::RemoteError::Url { reason, .. } => InvalidRun::new("engine.url", reason),
        other => InvalidRun::new("engine.url", other.to_string()),
    })?;
    if engine.model.trim().is_empty() {
        return Err(InvalidRun::new("engine.model", "name the model the server serves"));
    }
    if let Some(in_flight) = engine.max_in_flight {
        if !(1..=crate::remote::MAX_IN_FLIGHT).contains(&in_flight) {
            let message = format!("1 to {} requests in flight", crate::remote::MAX_IN_FLIGHT);
            return Err(InvalidRun::new("engine.max_in_flight", message));
        }
    }
    if let Some(variable) = &engine.api_key_env {
        let plain = !variable.is_empty() && variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(InvalidRun::new("engine.api_key_env", "the name of an environment variable (A-Z, 0-9, _)"));
        }
    }
    if config.stages.contains(&Stage::Train) {
        return Err(InvalidRun::new("engine", "training needs the in-process engine: train in another run"));
    }
    if config.adapter.is_some() {
        return Err(InvalidRun::new(
            "adapter",
            "a remote engine answers with the model it serves (serve the adapter there)",
        ));
    }
    if config.scoring == ScoringFormulation::Cloze {
        return Err(InvalidRun::new("scoring", "cloze scoring needs the in-process engine (digits work remotely)"));
    }
    if config.device.is_some() {
        return Err(InvalidRun::new("device", "the remote server decides where its model runs"));
    }
    if config.model.is_some() {
        return Err(InvalidRun::new("model", "a run with a remote engine names its model in engine.model"));
    }
    Ok(())
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

/// The position of the first item named before, if any.
fn first_repeat<T: PartialEq>(items: &[T]) -> Option<usize> {
    (1..items.len()).find(|&index| items[..index].contains(&items[index]))
}

/// The upper bounds of [`limits`], checked before anything else so that nothing works on a
/// request that asks for too much.
fn check_bounds(config: &RunConfig) -> Result<(), InvalidRun> {
    use limits::*;
    let too_long = |field: &str, text: &str, most: usize| {
        (text.chars().count() > most).then(|| InvalidRun::new(field, format!("longer than {most} characters")))
    };
    let texts = [
        ("name", Some(config.name.as_str()), NAME_CHARS),
        ("model", config.model.as_deref(), NAME_CHARS.max(PATH_CHARS)),
        ("question_set", config.question_set.as_deref(), NAME_CHARS),
        ("adapter.path", config.adapter.as_ref().map(|adapter| adapter.path.as_str()), PATH_CHARS),
    ];
    for (field, text, most) in texts {
        if let Some(error) = text.and_then(|text| too_long(field, text, most)) {
            return Err(error);
        }
    }
    // Each list can hold each of its values once; more is a repeat, reported as such later.
    let lists = [
        ("cultures", config.cultures.len(), crate::survey::CULTURES.len()),
        ("topics", config.topics.len(), crate::survey::TOPICS.len()),
        ("variants", config.variants.len(), PromptVariant::ALL.len()),
        ("stages", config.stages.len(), Stage::ALL.len()),
    ];
    for (field, len, most) in lists {
        if len > most {
            return Err(InvalidRun::new(field, format!("{len} entries; at most {most}")));
        }
    }
    let training = &config.training;
    let numbers = [
        ("questions_per_topic", u64::from(config.questions_per_topic), u64::from(QUESTIONS_PER_TOPIC)),
        ("training.rank", u64::from(training.rank), u64::from(RANK)),
        ("training.epochs", u64::from(training.epochs), u64::from(EPOCHS)),
        ("training.batch_size", u64::from(training.batch_size), u64::from(BATCH_SIZE)),
        ("training.micro_batch_size", u64::from(training.micro_batch_size), u64::from(BATCH_SIZE)),
        ("training.max_steps", u64::from(training.max_steps.unwrap_or(0)), u64::from(MAX_STEPS)),
        ("generation.max_new_tokens", u64::from(config.generation.max_new_tokens), u64::from(MAX_NEW_TOKENS)),
    ];
    for (field, value, most) in numbers {
        if value > most {
            return Err(InvalidRun::new(field, format!("{value} is above the limit of {most}")));
        }
    }
    let reals = [
        ("training.alpha", training.alpha, ALPHA),
        ("training.learning_rate", training.learning_rate, LEARNING_RATE),
        ("generation.temperature", config.generation.temperature, TEMPERATURE),
    ];
    for (field, value, most) in reals {
        if value > most {
            return Err(InvalidRun::new(field, format!("{value} is above the limit of {most}")));
        }
    }
    Ok(())
}
