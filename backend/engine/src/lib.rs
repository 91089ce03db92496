//! The inference engine: llama-family models from GGUF files or Hugging Face folders, answering
//! survey prompts by scoring (one forward pass → a distribution over the options) or by sampling
//! (the paper's way), on a dedicated thread.
//!
//! One file per concern: [`gguf`] and [`hf`] read models ([`loader`] picks one), [`tokenizer`] and
//! [`chat_template`] turn conversations into tokens, [`model`] is the forward pass (generic tensor
//! ops, any device) with `cpu_forward` + [`cpu_kernels`] as its fused f32 CPU path, [`batch`]
//! groups prompts that share a prefix, [`scoring`] and [`sampling`] are the two answer modes,
//! [`worker`] is the engine thread and [`bench`](mod@bench) the throughput benchmark.

pub mod amx;
pub mod batch;
pub mod bench;
pub mod chat_template;
pub mod cloze;
pub mod config;
mod cpu_forward;
pub mod cpu_kernels;
pub mod decoder;
pub mod error;
pub mod gguf;
pub mod hf;
mod jobs;
pub mod loader;
pub mod lora;
pub mod model;
pub mod probe;
pub mod projection;
pub mod rng;
pub mod sampling;
pub mod schedule;
pub mod scoring;
pub mod tokenizer;
pub mod train;
pub mod worker;

pub use batch::{BatchLimits, PrefixCache};
pub use candle_core::Device;
pub use chat_template::{ChatMessage, ChatTemplate};
pub use cloze::ClozePrompt;
pub use config::{Architecture, ModelConfig};
pub use error::{EngineError, InvalidSetting};
pub use loader::{load_chat_template, load_model, DeviceKind, LoadedModel};
pub use lora::{LoraAdapter, LoraSettings, TrainableAdapter};
pub use model::{KvCache, LlamaModel, SequenceInput};
pub use sampling::{
    parse_answer, FinishReason, Generation, GenerationPrompt, SamplingParams, TokenLogprob, TokenLogprobs,
    MAX_TOP_LOGPROBS,
};
pub use scoring::{OptionScores, ScorePrompt, Scorer};
pub use tokenizer::TextTokenizer;
pub use train::{train, TrainingExample, TrainingOutcome, TrainingProgress, TrainingSettings};
pub use worker::{
    AdapterChoice, AdapterInfo, CancelToken, Engine, EngineOptions, Job, ModelInfo, ScoreOutcome, ScoreProgress,
    TrainingRequest,
};
