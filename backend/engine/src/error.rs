//! The one error type of the inference engine.

use std::path::PathBuf;

/// A setting outside what the engine accepts, named by its field (`rank`, `top_p`, ...): the one
/// range check of each setting, which callers that read settings from users report as their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidSetting {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidSetting { field, reason: reason.into() }
    }
}

/// Everything that can go wrong while loading a model or answering with it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file or folder not found: {}", .0.display())]
    ModelNotFound(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a valid GGUF file {}: {reason}", path.display())]
    InvalidGguf { path: PathBuf, reason: String },
    #[error(
        "unsupported model architecture {0:?} (supported: llama-family GGUF, llama and qwen2 Hugging Face folders)"
    )]
    UnsupportedArchitecture(String),
    #[error("unsupported tokenizer: {0}")]
    UnsupportedTokenizer(String),
    #[error("missing model metadata {key}")]
    MissingMetadata { key: String },
    #[error("invalid model metadata {key}: {reason}")]
    InvalidMetadata { key: String, reason: String },
    #[error("missing weight tensor {name}")]
    MissingTensor { name: String },
    #[error("invalid Hugging Face model folder {}: {reason}", path.display())]
    InvalidModelFolder { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("the model has no chat template")]
    MissingChatTemplate,
    #[error("prompt {id} has {tokens} tokens, more than the context of {context} tokens")]
    PromptTooLong { id: String, tokens: usize, context: usize },
    #[error("prompt {id} is empty")]
    EmptyPrompt { id: String },
    #[error("prompt {id}: option code {code:?} cannot be scored (scoring supports codes of one or two digits)")]
    UnscorableOption { id: String, code: String },
    #[error("prompt {id} has no options to score")]
    NoOptions { id: String },
    #[error("prompt {id}: option code {code:?} appears twice")]
    DuplicateOption { id: String, code: String },
    #[error("the tokenizer does not encode digit {digit} as a single token")]
    DigitNotSingleToken { digit: u8 },
    #[error("invalid sampling settings: {0}")]
    InvalidSampling(String),
    #[error("{}:{line}: not a prompt line: {reason}", path.display())]
    InvalidPromptFile { path: PathBuf, line: usize, reason: String },
    #[error("a CPU kernel input is unusable: {0}")]
    KernelInput(String),
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    #[error("a batch worker thread panicked")]
    WorkerPanicked,
    #[error("cancelled")]
    Cancelled,
    #[error("the engine thread has stopped")]
    EngineStopped,
    #[error(
        "the CUDA device is unavailable: {0} (it needs a build with --features cuda, an NVIDIA GPU and its driver)"
    )]
    CudaUnavailable(String),
    #[error("invalid LoRA adapter{}: {reason}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    InvalidAdapter { path: Option<PathBuf>, reason: String },
    #[error("{}:{line}: {reason}", path.display())]
    InvalidTrainingData { path: PathBuf, line: usize, reason: String },
    #[error("invalid training settings: {0}")]
    InvalidTraining(String),
    #[error("tensor computation: {0}")]
    Candle(#[from] candle_core::Error),
}

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
