//! Run configuration files (`culturespa run --config run.toml`): TOML → [`RunConfig`], nothing
//! more. Topics may be named; culture codes are read as written. Whether the result is a run is
//! decided in one place for every origin, [`crate::runs::validate_run`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::{
    AdapterConfig, AnswerMode, Calibration, GenerationSettings, PersonaPlacement, PromptVariant, QuestionSelection,
    RemoteEngineConfig, RunConfig, ScoringFormulation, Stage, TrainingConfig,
};

use crate::survey::TOPICS;

#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("{file}: cannot read: {error}")]
    Read { file: PathBuf, error: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: {field}: {message}")]
    UnknownTopic { file: PathBuf, field: String, message: String },
}

/// A topic named by its index (`3`) or its name (`"Economic Values"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TopicRef {
    Index(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    name: String,
    model: Option<String>,
    question_set: Option<String>,
    #[serde(default)]
    cultures: Vec<String>,
    #[serde(default)]
    topics: Vec<TopicRef>,
    #[serde(default)]
    questions_per_topic: u32,
    variants: Option<Vec<PromptVariant>>,
    #[serde(default)]
    answer_mode: AnswerMode,
    #[serde(default)]
    persona: PersonaPlacement,
    #[serde(default)]
    scoring: ScoringFormulation,
    #[serde(default)]
    calibration: Calibration,
    #[serde(default)]
    question_selection: QuestionSelection,
    collect_from: Option<PromptVariant>,
    seed: Option<u64>,
    generation: Option<GenerationTable>,
    #[serde(default)]
    training: TrainingConfig,
    adapter: Option<AdapterConfig>,
    /// `cpu`, `cuda` or `cuda:N`.
    device: Option<String>,
    /// `{ url = "...", model = "...", api_key_env = "..." }`: a remote OpenAI-compatible engine.
    engine: Option<RemoteEngineConfig>,
    stages: Vec<Stage>,
}

/// The `[generation]` table: each field left out keeps the paper's setting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationTable {
    max_attempts: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_new_tokens: Option<u32>,
}

impl GenerationTable {
    fn into_settings(self) -> GenerationSettings {
        let paper = GenerationSettings::default();
        GenerationSettings {
            max_attempts: self.max_attempts.unwrap_or(paper.max_attempts),
            temperature: self.temperature.unwrap_or(paper.temperature),
            top_p: self.top_p.unwrap_or(paper.top_p),
            max_new_tokens: self.max_new_tokens.unwrap_or(paper.max_new_tokens),
        }
    }
}

/// Reads a run file.
pub fn read_run_file(file: &Path) -> Result<RunConfig, RunFileError> {
    let text = std::fs::read_to_string(file).map_err(|error| RunFileError::Read { file: file.into(), error })?;
    parse_run_file(file, &text)
}

/// Parses a run file's text (`file` names it in errors).
pub fn parse_run_file(file: &Path, text: &str) -> Result<RunConfig, RunFileError> {
    let run_file: RunFile =
        toml::from_str(text).map_err(|error| RunFileError::Parse { file: file.into(), message: error.to_string() })?;
    let mut topics = Vec::with_capacity(run_file.topics.len());
    for (position, topic) in run_file.topics.iter().enumerate() {
        // By index (`3` or `"3"`) or by name in any case, as `culturespa questions` takes them.
        let (key, index) = match topic {
            TopicRef::Index(index) => (index.to_string(), usize::try_from(*index).ok()),
            TopicRef::Name(name) => match name.trim().parse::<usize>() {
                Ok(index) => (name.clone(), Some(index)),
                Err(_) => (name.clone(), TOPICS.iter().position(|spec| spec.name.eq_ignore_ascii_case(name.trim()))),
            },
        };
        let index = index.filter(|index| *index < TOPICS.len()).ok_or_else(|| RunFileError::UnknownTopic {
            file: file.into(),
            field: format!("topics[{position}]"),
            message: format!("unknown topic '{key}'"),
        })?;
        topics.push(index as u8);
    }
    Ok(RunConfig {
        name: run_file.name,
        model: run_file.model,
        question_set: run_file.question_set,
        cultures: run_file.cultures,
        topics,
        questions_per_topic: run_file.questions_per_topic,
        variants: run_file.variants.unwrap_or_else(|| vec![PromptVariant::Unaware, PromptVariant::P1]),
        answer_mode: run_file.answer_mode,
        persona: run_file.persona,
        scoring: run_file.scoring,
        calibration: run_file.calibration,
        question_selection: run_file.question_selection,
        collect_from: run_file.collect_from,
        seed: run_file.seed.unwrap_or(shared::DEFAULT_SEED),
        generation: run_file.generation.map(GenerationTable::into_settings).unwrap_or_default(),
        training: run_file.training,
        adapter: run_file.adapter,
        device: run_file.device,
        engine: run_file.engine,
        stages: run_file.stages,
    })
}
