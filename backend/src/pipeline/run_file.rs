//! Run configuration files (`culturespa run --config run.toml`): parsed, then checked against the
//! WVS data so that an unknown culture or topic is reported with the file and the field.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::{
    AdapterConfig, AnswerMode, Calibration, GenerationSettings, PersonaPlacement, PromptVariant, QuestionSelection,
    RunConfig, ScoringFormulation, Stage, TrainingConfig,
};

use crate::survey::SurveyData;

#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("{file}: cannot read: {error}")]
    Read { file: PathBuf, error: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid { file: PathBuf, field: String, message: String },
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

/// Reads and validates a run file.
pub fn load_run_file(file: &Path, survey: &SurveyData) -> Result<RunConfig, RunFileError> {
    let text = std::fs::read_to_string(file).map_err(|error| RunFileError::Read { file: file.into(), error })?;
    parse_run_file(file, &text, survey)
}

pub fn parse_run_file(file: &Path, text: &str, survey: &SurveyData) -> Result<RunConfig, RunFileError> {
    let run_file: RunFile =
        toml::from_str(text).map_err(|error| RunFileError::Parse { file: file.into(), message: error.to_string() })?;
    let invalid = |field: String, message: String| RunFileError::Invalid { file: file.into(), field, message };
    let mut cultures = Vec::with_capacity(run_file.cultures.len());
    for (position, code) in run_file.cultures.iter().enumerate() {
        let culture = survey
            .culture(&code.to_ascii_uppercase())
            .ok_or_else(|| invalid(format!("cultures[{position}]"), format!("unknown culture '{code}'")))?;
        cultures.push(culture.country_code.clone());
    }
    let mut topics = Vec::with_capacity(run_file.topics.len());
    for (position, topic) in run_file.topics.iter().enumerate() {
        let key = match topic {
            TopicRef::Index(index) => index.to_string(),
            TopicRef::Name(name) => name.clone(),
        };
        let found = survey
            .topic(&key)
            .ok_or_else(|| invalid(format!("topics[{position}]"), format!("unknown topic '{key}'")))?;
        topics.push(found.index);
    }
    let config = RunConfig {
        name: run_file.name,
        model: run_file.model,
        question_set: run_file.question_set,
        cultures,
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
        stages: run_file.stages,
    };
    validate_config(&config).map_err(|(field, message)| invalid(field, message))?;
    Ok(config)
}

/// Checks what serde cannot: the stages, the variants, the question set. Returns (field, message).
pub fn validate_config(config: &RunConfig) -> Result<(), (String, String)> {
    if config.name.trim().is_empty() {
        return Err(("name".into(), "must not be empty".into()));
    }
    if config.stages.is_empty() {
        return Err(("stages".into(), "name at least one stage".into()));
    }
    if let Some(stage) = config.stages.iter().find(|stage| !super::runner::AVAILABLE_STAGES.contains(stage)) {
        return Err(("stages".into(), format!("the {stage:?} stage is not available yet")));
    }
    if config.variants.is_empty() {
        return Err(("variants".into(), "name at least one prompt variant".into()));
    }
    let answers = config.stages.contains(&Stage::Answer);
    if answers && !config.variants.contains(&PromptVariant::Unaware) && config.stages.contains(&Stage::Collect) {
        return Err(("variants".into(), "collecting instances needs the unaware variant".into()));
    }
    if config.answer_mode == AnswerMode::Sampling {
        if config.scoring != ScoringFormulation::Digits {
            return Err(("scoring".into(), "the scoring formulation applies to scoring mode only".into()));
        }
        if config.calibration != Calibration::None {
            return Err(("calibration".into(), "calibration applies to scoring mode only".into()));
        }
    }
    if let Some(variant) = config.collect_from {
        if !variant.is_culture_specific() {
            return Err(("collect_from".into(), "instances are collected from a culture-aware variant".into()));
        }
        if !config.variants.contains(&variant) {
            return Err(("collect_from".into(), format!("the run does not answer the {} variant", variant.label())));
        }
    }
    if config.stages.contains(&Stage::Generate) && config.question_set.is_some() {
        return Err(("question_set".into(), "a run that generates questions answers its own set".into()));
    }
    if config.stages.contains(&Stage::Generate) && config.questions_per_topic == 0 {
        return Err(("questions_per_topic".into(), "generation needs a number of questions per topic".into()));
    }
    if let Some((position, topic)) =
        config.topics.iter().enumerate().find(|(_, topic)| usize::from(**topic) >= crate::survey::TOPICS.len())
    {
        let message = format!("unknown topic {topic} (topics are 0–{})", crate::survey::TOPICS.len() - 1);
        return Err((format!("topics[{position}]"), message));
    }
    if config.stages.contains(&Stage::Generate) {
        validate_generation(&config.generation)?;
    }
    if config.stages.contains(&Stage::Train) {
        validate_training(config)?;
    }
    if let Some(adapter) = &config.adapter {
        if adapter.path.trim().is_empty() {
            return Err(("adapter.path".into(), "must name an adapter folder".into()));
        }
        if config.stages.contains(&Stage::Train) {
            return Err(("adapter".into(), "a run that trains answers with its own adapters".into()));
        }
    }
    Ok(())
}

/// Training settings the trainer accepts, and a run that has instances to train on.
fn validate_training(config: &RunConfig) -> Result<(), (String, String)> {
    let training = &config.training;
    let invalid = |field: &str, message: String| Err((format!("training.{field}"), message));
    if training.rank == 0 {
        return invalid("rank", "must be at least 1".into());
    }
    if !(training.alpha.is_finite() && training.alpha > 0.0) {
        return invalid("alpha", format!("{} is not a positive number", training.alpha));
    }
    if !(0.0..1.0).contains(&training.dropout) {
        return invalid("dropout", format!("{} is not in [0, 1)", training.dropout));
    }
    if !(training.learning_rate.is_finite() && training.learning_rate > 0.0) {
        return invalid("learning_rate", format!("{} is not a positive number", training.learning_rate));
    }
    for (field, value) in [
        ("epochs", training.epochs),
        ("batch_size", training.batch_size),
        ("micro_batch_size", training.micro_batch_size),
    ] {
        if value == 0 {
            return invalid(field, "must be at least 1".into());
        }
    }
    if training.max_steps == Some(0) {
        return invalid("max_steps", "must be at least 1".into());
    }
    if !config.stages.contains(&Stage::Collect) {
        return Err(("stages".into(), "training needs the Collect stage (its instances are the training data)".into()));
    }
    Ok(())
}

/// The generation settings the engine can sample with, and a bounded number of attempts.
fn validate_generation(settings: &GenerationSettings) -> Result<(), (String, String)> {
    /// More attempts than this per question is a typo, not a plan.
    const MAX_ATTEMPTS_LIMIT: u32 = 100;
    let invalid = |field: &str, message: String| Err((format!("generation.{field}"), message));
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&settings.max_attempts) {
        return invalid("max_attempts", format!("{} is not in 1–{MAX_ATTEMPTS_LIMIT}", settings.max_attempts));
    }
    if !settings.temperature.is_finite() || settings.temperature < 0.0 {
        return invalid("temperature", format!("{} is not a finite number ≥ 0", settings.temperature));
    }
    if !(settings.top_p > 0.0 && settings.top_p <= 1.0) {
        return invalid("top_p", format!("{} is not in (0, 1]", settings.top_p));
    }
    if settings.max_new_tokens == 0 {
        return invalid("max_new_tokens", "must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunConfig, RunFileError> {
        let survey = SurveyData::embedded().unwrap();
        parse_run_file(Path::new("levers.toml"), text, &survey)
    }

    const BASE: &str = "name = \"levers\"\nquestions_per_topic = 2\nstages = [\"answer\", \"collect\"]\n";

    #[test]
    fn the_levers_default_to_the_papers_settings() {
        let config = parse(BASE).unwrap();
        assert_eq!(config.scoring, ScoringFormulation::Digits);
        assert_eq!(config.calibration, Calibration::None);
        assert_eq!(config.question_selection, QuestionSelection::First);
        assert_eq!(config.collect_from, None);
        assert_eq!(config.persona, PersonaPlacement::System);
    }

    #[test]
    fn every_lever_is_read_from_the_run_file() {
        let text = format!(
            "{BASE}variants = [\"unaware\", \"p1\", \"p1_p3\"]\nscoring = \"cloze\"\ncalibration = \"content_free\"\n\
             question_selection = \"random\"\ncollect_from = \"p1_p3\"\npersona = \"both\"\n"
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.scoring, ScoringFormulation::Cloze);
        assert_eq!(config.calibration, Calibration::ContentFree);
        assert_eq!(config.question_selection, QuestionSelection::Random);
        assert_eq!(config.collect_from, Some(PromptVariant::P1P3));
        assert_eq!(config.persona, PersonaPlacement::Both);
        let permutation = parse(&format!("{BASE}calibration = \"permutation\"\n")).unwrap();
        assert_eq!(permutation.calibration, Calibration::Permutation);
    }

    fn invalid_field(text: &str) -> (String, String) {
        match parse(text) {
            Err(RunFileError::Invalid { field, message, .. }) => (field, message),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn levers_that_do_not_apply_are_refused_naming_the_field() {
        let sampling = format!("{BASE}answer_mode = \"sampling\"\n");
        assert_eq!(invalid_field(&format!("{sampling}calibration = \"permutation\"\n")).0, "calibration");
        assert_eq!(invalid_field(&format!("{sampling}scoring = \"cloze\"\n")).0, "scoring");
        let (field, message) = invalid_field(&format!("{BASE}collect_from = \"p2\"\n"));
        assert_eq!(field, "collect_from");
        assert!(message.contains("P2"), "{message}");
        assert_eq!(invalid_field(&format!("{BASE}collect_from = \"unaware\"\n")).0, "collect_from");
    }

    /// The run-file example of the README (its first ```toml block).
    fn readme_example() -> String {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").expect("the README has a run-file example") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the example ends");
        readme[start..end].to_string()
    }

    #[test]
    fn the_readme_run_file_parses_as_it_says_with_each_documented_option() {
        let example = readme_example();
        let config = parse(&example).unwrap_or_else(|error| panic!("the README's run file: {error}"));
        assert_eq!(config.name, "small run");
        assert_eq!(config.cultures, ["USA", "CHN", "NGA"]);
        assert_eq!(config.topics.len(), 2);
        assert_eq!(config.questions_per_topic, 10);
        assert_eq!(config.variants, [PromptVariant::Unaware, PromptVariant::P1]);
        assert_eq!(config.stages, [Stage::Answer, Stage::Collect, Stage::Export]);

        // Every commented option, switched on alone (a table with all of its lines), still parses.
        let lines: Vec<&str> = example.lines().collect();
        let mut options_checked = 0;
        let mut index = 0;
        while index < lines.len() {
            let line = lines[index];
            let Some(commented) = line.strip_prefix("# ") else {
                index += 1;
                continue;
            };
            let option = commented.split("  #").next().unwrap_or(commented).trim_end();
            let (switched_on, next) = if option.starts_with('[') {
                let mut table = vec![option.to_string()];
                let mut next = index + 1;
                while next < lines.len() && lines[next].starts_with("# ") && !lines[next][2..].starts_with('[') {
                    table.push(lines[next][2..].split("  #").next().unwrap_or_default().trim_end().to_string());
                    next += 1;
                }
                (format!("{example}\n{}\n", table.join("\n")), next)
            } else {
                let mut text = String::new();
                for other in &lines {
                    text.push_str(if std::ptr::eq(*other, line) { option } else { other });
                    text.push('\n');
                }
                (text, index + 1)
            };
            if let Err(error) = parse(&switched_on) {
                panic!("the README's `{option}` does not parse: {error}");
            }
            options_checked += 1;
            index = next;
        }
        assert!(options_checked >= 11, "{options_checked} options checked");
        // Each variant the comment lists is a variant, in both spellings.
        for (text, variant) in
            [("p1_p3", PromptVariant::P1P3), ("p1p3", PromptVariant::P1P3), ("p2p3", PromptVariant::P2P3)]
        {
            let config = parse(&format!("{BASE}variants = [\"unaware\", \"{text}\"]\n")).unwrap();
            assert_eq!(config.variants, [PromptVariant::Unaware, variant]);
        }
    }

    #[test]
    fn an_unknown_lever_value_is_a_parse_error_naming_the_file() {
        let error = parse(&format!("{BASE}calibration = \"sideways\"\n")).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, RunFileError::Parse { .. }), "{message}");
        assert!(message.starts_with("levers.toml") && message.contains("sideways"), "{message}");
    }
}
