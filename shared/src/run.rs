use serde::{Deserialize, Serialize};

use crate::PromptVariant;

/// A stage of the CultureSPA method, in the order a run does them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Generate,
    Answer,
    Collect,
    Export,
    Train,
    Evaluate,
}

impl Stage {
    /// The stage's name as serde writes it (`answer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Generate => "generate",
            Stage::Answer => "answer",
            Stage::Collect => "collect",
            Stage::Export => "export",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
        }
    }

    pub const ALL: [Stage; 6] =
        [Stage::Generate, Stage::Answer, Stage::Collect, Stage::Export, Stage::Train, Stage::Evaluate];
}

/// How the model answers a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnswerMode {
    /// One forward pass; the probability of each option code. The default on CPU.
    #[default]
    Scoring,
    /// The paper's mode: sample a reply, parse its first integer.
    Sampling,
}

/// Where a culture-aware prompt puts the persona (a lever of the persona meter; the paper's is the
/// system turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PersonaPlacement {
    /// The paper's prompts.
    #[default]
    System,
    /// The unaware system prompt; the user turn starts with "Answer as a real person with
    /// {article} {adjective} cultural background would."
    User,
    /// The paper's system prompt and that sentence in the user turn.
    Both,
}

impl PersonaPlacement {
    pub const ALL: [PersonaPlacement; 3] = [PersonaPlacement::System, PersonaPlacement::User, PersonaPlacement::Both];

    /// The placement as serde writes it (`user`).
    pub fn as_str(self) -> &'static str {
        match self {
            PersonaPlacement::System => "system",
            PersonaPlacement::User => "user",
            PersonaPlacement::Both => "both",
        }
    }
}

/// How scoring mode turns the model's next-token distribution into option probabilities (a lever
/// of the persona meter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScoringFormulation {
    /// The paper's: the probability of each option's code as the first token of the reply,
    /// renormalised over the options.
    #[default]
    Digits,
    /// Each option's text scored as the whole reply, log-likelihood per character, softmax over
    /// the options (the formulation OLMES uses for small models; Gu et al. 2024).
    Cloze,
}

impl ScoringFormulation {
    pub const ALL: [ScoringFormulation; 2] = [ScoringFormulation::Digits, ScoringFormulation::Cloze];

    pub fn as_str(self) -> &'static str {
        match self {
            ScoringFormulation::Digits => "digits",
            ScoringFormulation::Cloze => "cloze",
        }
    }
}

/// How scoring mode corrects the option distribution for the model's prior over options. Both
/// the raw and the calibrated distribution are stored; the calibrated one is the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// The model's distribution as it is.
    #[default]
    None,
    /// Content-free (Zhao et al. 2021): q ∝ p / p_cf, where p_cf is the distribution for the same
    /// prompt with the question text replaced by "N/A" (same setting, same options).
    ContentFree,
    /// Permutation prior (PriDe, Zheng et al. 2023): a prior over option positions estimated by
    /// cycling the option texts of a seeded sample of the run's questions, q ∝ p / prior.
    Permutation,
}

impl Calibration {
    pub const ALL: [Calibration; 3] = [Calibration::None, Calibration::ContentFree, Calibration::Permutation];

    pub fn as_str(self) -> &'static str {
        match self {
            Calibration::None => "none",
            Calibration::ContentFree => "content_free",
            Calibration::Permutation => "permutation",
        }
    }
}

/// Which questions of each topic a run takes when it takes `questions_per_topic` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QuestionSelection {
    /// The first ones, in the set's order.
    #[default]
    First,
    /// A sample drawn with the run's seed (kept in the set's order).
    Random,
}

/// A run's stored configuration. Everything a run does follows from it (and its seed). A field
/// it does not know is an error (a typo would otherwise be a setting silently left at its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub name: String,
    /// A GGUF file or a Hugging Face model folder; `None` for the default model.
    pub model: Option<String>,
    /// The question set to answer (`wvs` when `None`); a run that generates answers its own.
    #[serde(default)]
    pub question_set: Option<String>,
    /// Country codes; empty means all 18.
    #[serde(default)]
    pub cultures: Vec<String>,
    /// Topic indexes 0–12; empty means all 13.
    #[serde(default)]
    pub topics: Vec<u8>,
    /// Questions per topic (generated or taken from a question set).
    pub questions_per_topic: u32,
    #[serde(default = "default_variants")]
    pub variants: Vec<PromptVariant>,
    #[serde(default)]
    pub answer_mode: AnswerMode,
    /// Where culture-aware prompts put the persona (the paper: the system turn).
    #[serde(default)]
    pub persona: PersonaPlacement,
    /// Scoring mode: digit labels (the paper) or cloze.
    #[serde(default)]
    pub scoring: ScoringFormulation,
    /// Scoring mode: the calibration of the option distributions.
    #[serde(default)]
    pub calibration: Calibration,
    /// Which questions of each topic the run takes.
    #[serde(default)]
    pub question_selection: QuestionSelection,
    /// The culture-aware variant whose answers, compared with the unaware ones, make the
    /// instances (`None`: P1, else the first of P2, P1 + P3, P2 + P3, P3 the run answers).
    #[serde(default)]
    pub collect_from: Option<PromptVariant>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How the Generate stage samples questions (the paper's settings by default).
    #[serde(default)]
    pub generation: GenerationSettings,
    /// How the Train stage fine-tunes (LoRA; the paper's settings by default).
    #[serde(default)]
    pub training: TrainingConfig,
    /// A PEFT adapter the Answer and Evaluate stages answer with (a run with a Train stage
    /// evaluates with the adapters it trained instead).
    #[serde(default)]
    pub adapter: Option<AdapterConfig>,
    /// Where the in-process engine runs the model: `cpu`, `cuda` or `cuda:N` (`None`: the
    /// server's or the command's `--device`, the CPU by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// An OpenAI-compatible server (vLLM, llama.cpp's server, mistral.rs, TGI, another
    /// CultureSPA) that answers and generates instead of the in-process engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<RemoteEngineConfig>,
    pub stages: Vec<Stage>,
}

/// A remote OpenAI-compatible engine as a run names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteEngineConfig {
    /// The server's OpenAI base URL, e.g. `http://gpu-box:8000/v1`.
    pub url: String,
    /// The model the server serves (its `GET /v1/models` id).
    pub model: String,
    /// The environment variable that holds the API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A local model file or folder whose chat template renders the prompts: scoring then goes
    /// through `/v1/completions` (any server); without it through `/v1/chat/completions`, where a
    /// two-digit option needs the server to continue a final assistant message
    /// (`continue_final_message`, as vLLM and CultureSPA do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Requests in flight at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

/// A remote engine the server offers in the run form (configured by whoever runs the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteEngineListing {
    pub name: String,
    pub engine: RemoteEngineConfig,
}

/// Culture-joint (one adapter from every culture's instances) or culture-specific (one per culture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrainingMode {
    #[default]
    Joint,
    Specific,
}

impl TrainingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingMode::Joint => "joint",
            TrainingMode::Specific => "specific",
        }
    }
}

/// LoRA fine-tuning settings of a run's Train stage. Defaults are the paper's: rank 8, alpha 16,
/// dropout 0, learning rate 1e-4 (cosine, 10 % warmup), one epoch, effective batch 128.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub mode: TrainingMode,
    pub rank: u32,
    pub alpha: f64,
    pub dropout: f64,
    pub learning_rate: f64,
    pub epochs: u32,
    /// Examples per optimizer step (gradients accumulate over micro-batches).
    pub batch_size: u32,
    /// Examples per forward/backward pass.
    pub micro_batch_size: u32,
    /// Stop each adapter's training after this many optimizer steps.
    pub max_steps: Option<u32>,
    /// Train only on instances reviewers accepted (with their edits).
    pub accepted_only: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            mode: TrainingMode::Joint,
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            learning_rate: 1e-4,
            epochs: 1,
            batch_size: 128,
            micro_batch_size: 4,
            max_steps: None,
            accepted_only: false,
        }
    }
}

/// An adapter folder (PEFT layout) and whether to merge it into the weights (faster) or run it
/// beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    pub path: String,
    #[serde(default = "merged_by_default")]
    pub merged: bool,
}

fn merged_by_default() -> bool {
    true
}

/// The Generate stage's sampling: the paper's generation settings by default, and how many
/// replies one question may take before it is given up (a reply that holds no question is
/// recorded as a skip and drawn again with the next attempt's seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct GenerationSettings {
    /// Replies drawn for one question at most (1 = no retry).
    pub max_attempts: u32,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: u32,
}

/// The paper's generation decoding: temperature 0.9, top_p 0.95, at most 256 new tokens.
pub const PAPER_GENERATION_TEMPERATURE: f64 = 0.9;
pub const PAPER_GENERATION_TOP_P: f64 = 0.95;
pub const PAPER_GENERATION_MAX_NEW_TOKENS: u32 = 256;
/// Replies per question before it is given up (the paper retried without a bound).
pub const DEFAULT_GENERATION_ATTEMPTS: u32 = 5;

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            max_attempts: DEFAULT_GENERATION_ATTEMPTS,
            temperature: PAPER_GENERATION_TEMPERATURE,
            top_p: PAPER_GENERATION_TOP_P,
            max_new_tokens: PAPER_GENERATION_MAX_NEW_TOKENS,
        }
    }
}

fn default_variants() -> Vec<PromptVariant> {
    vec![PromptVariant::Unaware, PromptVariant::P1]
}

/// The paper's seed.
pub const DEFAULT_SEED: u64 = 42;

fn default_seed() -> u64 {
    DEFAULT_SEED
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// The status as serde writes it (`completed`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// What a run was imported from or how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunOrigin {
    /// Launched in this installation.
    Local,
    /// Imported from released answer files (e.g. the paper's Llama-3-8B outputs).
    Imported { source: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub run_id: i64,
    pub config: RunConfig,
    pub origin: RunOrigin,
    pub status: RunStatus,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub updated_at: String,
}

/// A progress or log event of a run, stored and streamed to the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RunEvent {
    StageStarted { stage: Stage, total: u64 },
    Progress { stage: Stage, done: u64, total: u64 },
    StageFinished { stage: Stage },
    Log { message: String },
    Loss { step: u64, loss: f64 },
    Finished { status: RunStatus },
}

#[cfg(test)]
mod unknown_field_tests {
    use super::RunConfig;

    #[test]
    fn a_run_configuration_refuses_a_field_it_does_not_know() {
        let known = r#"{"name": "x", "questions_per_topic": 1, "stages": ["answer"]}"#;
        assert!(serde_json::from_str::<RunConfig>(known).is_ok());
        let typo = r#"{"name": "x", "questions_per_topic": 1, "stages": ["answer"], "culture": ["USA"]}"#;
        let error = serde_json::from_str::<RunConfig>(typo).unwrap_err().to_string();
        assert!(error.contains("unknown field `culture`"), "{error}");
    }
}
