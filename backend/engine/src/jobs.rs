//! What callers of the engine send and get back: how to start one, jobs and their cancel flags,
//! progress reports and outcomes, adapter choices. The engine thread itself is [`super::worker`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use serde::Serialize;

use super::batch::BatchLimits;
use super::chat_template::ChatTemplate;
use super::config::ModelConfig;
use super::error::{EngineError, Result};
use super::loader::DeviceKind;
use super::sampling::Generation;
use super::scoring::{OptionScores, ScoreCounters, ScoreReport};
use super::train::{SftRecord, TrainingProgress, TrainingSettings};

/// How to start an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model_path: PathBuf,
    pub device: DeviceKind,
    pub batch_limits: BatchLimits,
    /// Run the projections as bf16 GEMMs (AMX tiles where the CPU has them) instead of f32.
    pub bf16_projections: bool,
    /// The fused f32 CPU kernels on or off; `None` keeps the build's choice (on in release
    /// builds, off in debug builds, where they would be checked line by line).
    pub cpu_kernels: Option<bool>,
    /// What adapters trained here record as `base_model_name_or_path` (a Hugging Face id, e.g.
    /// from the model catalogue); `None`: the id the model's files give, else the file's name.
    pub base_model_id: Option<String>,
}

impl EngineOptions {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        EngineOptions {
            model_path: model_path.into(),
            device: DeviceKind::Cpu,
            batch_limits: BatchLimits::default(),
            bf16_projections: false,
            cpu_kernels: None,
            base_model_id: None,
        }
    }
}

/// A shared flag that asks a running job to stop at its next batch or token.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Progress of a scoring job after each batch, with that batch's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreProgress {
    pub completed: usize,
    pub total: usize,
    pub tokens_evaluated: usize,
    /// Index of the first prompt in `scores`.
    pub first_index: usize,
    pub scores: Vec<OptionScores>,
}

/// Progress of a sampling job after each reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationProgress {
    pub completed: usize,
    pub total: usize,
    pub index: usize,
    pub generation: Generation,
}

/// The result of a scoring job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreOutcome {
    pub scores: Vec<OptionScores>,
    pub counters: ScoreCounters,
    /// How the batches looked and how busy the workers were.
    pub report: ScoreReport,
    pub seconds: f64,
}

/// The result of a sampling job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationOutcome {
    pub generations: Vec<Generation>,
    pub tokens_evaluated: usize,
    pub seconds: f64,
}

pub type ScoreProgressFn = Box<dyn FnMut(ScoreProgress) + Send>;
pub type TrainingProgressFn = Box<dyn FnMut(TrainingProgress) + Send>;

/// Which loaded adapter a job answers with, and how: merged into a copy of the weights (fast,
/// the fused CPU kernels apply) or unmerged beside them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdapterChoice {
    pub name: String,
    pub merged: bool,
}

/// What a loaded adapter is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterInfo {
    pub name: String,
    pub rank: usize,
    pub alpha: f64,
    pub target_modules: Vec<String>,
}

/// A training job: SFT records, how to train, where the adapter goes.
#[derive(Debug, Clone)]
pub struct TrainingRequest {
    pub records: Vec<SftRecord>,
    pub settings: TrainingSettings,
    pub out_dir: PathBuf,
}
pub type GenerationProgressFn = Box<dyn FnMut(GenerationProgress) + Send>;

/// A submitted job: wait for its result or cancel it.
#[derive(Debug)]
pub struct Job<T> {
    pub(crate) result: mpsc::Receiver<Result<T>>,
    pub(crate) cancel: CancelToken,
}

impl<T> Job<T> {
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Blocks until the job ends (use `spawn_blocking` from async code).
    pub fn wait(self) -> Result<T> {
        self.result.recv().map_err(|_| EngineError::EngineStopped)?
    }

    /// The result if the job has ended.
    pub fn try_wait(&self) -> Option<Result<T>> {
        match self.result.try_recv() {
            Ok(result) => Some(result),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(EngineError::EngineStopped)),
        }
    }
}

/// What the engine's model is, for callers that do not hold it.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub source: PathBuf,
    pub config: ModelConfig,
    pub chat_template: Option<Arc<ChatTemplate>>,
    /// Whether the base model runs on the fused CPU kernels (the release path).
    pub cpu_kernels: bool,
}
