//! The engine thread: it owns the model and serves requests from a channel one at a time, so a
//! server stays responsive while it computes; jobs report progress and can be cancelled.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

use super::batch::{BatchLimits, PrefixCache};
use super::chat_template::ChatTemplate;
use super::config::ModelConfig;
use super::error::{EngineError, Result};
use super::loader::{load_model, DeviceKind, LoadedModel};
use super::sampling::{generate, Generation, GenerationPrompt, SamplingParams};
use super::scoring::{OptionScores, ScoreCounters, ScorePrompt, Scorer};

/// How to start an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model_path: PathBuf,
    pub device: DeviceKind,
    pub batch_limits: BatchLimits,
}

impl EngineOptions {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        EngineOptions { model_path: model_path.into(), device: DeviceKind::Cpu, batch_limits: BatchLimits::default() }
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
pub type GenerationProgressFn = Box<dyn FnMut(GenerationProgress) + Send>;

enum Request {
    Score {
        prompts: Vec<ScorePrompt>,
        on_progress: ScoreProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<ScoreOutcome>>,
    },
    Generate {
        prompts: Vec<GenerationPrompt>,
        params: SamplingParams,
        on_progress: GenerationProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<GenerationOutcome>>,
    },
}

/// A submitted job: wait for its result or cancel it.
#[derive(Debug)]
pub struct Job<T> {
    result: mpsc::Receiver<Result<T>>,
    cancel: CancelToken,
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
}

/// A handle to the engine thread; dropping it stops the thread after the current job.
pub struct Engine {
    requests: Option<mpsc::Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    info: ModelInfo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

impl Engine {
    /// Loads the model on a new thread; returns once it is ready (or failed to load).
    pub fn start(options: EngineOptions) -> Result<Self> {
        let (ready_sender, ready) = mpsc::channel();
        let (requests, inbox) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("culturespa-engine".into())
            .spawn(move || {
                let loaded = load_model(&options.model_path, options.device)
                    .and_then(|loaded| Worker::new(loaded, options.batch_limits));
                match loaded {
                    Ok((worker, info)) => {
                        if ready_sender.send(Ok(info)).is_ok() {
                            worker.serve(inbox);
                        }
                    }
                    Err(error) => {
                        let _ = ready_sender.send(Err(error));
                    }
                }
            })
            .map_err(|e| EngineError::io("engine thread", e))?;
        let info = ready.recv().map_err(|_| EngineError::EngineStopped)??;
        Ok(Engine { requests: Some(requests), worker: Some(worker), info })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's chat template, to turn a system + user exchange into prompt text.
    pub fn chat_template(&self) -> Result<&ChatTemplate> {
        self.info.chat_template.as_deref().ok_or(EngineError::MissingChatTemplate)
    }

    /// Scores prompts; `on_progress` runs on the engine thread after every batch.
    pub fn score(
        &self,
        prompts: Vec<ScorePrompt>,
        on_progress: impl FnMut(ScoreProgress) + Send + 'static,
    ) -> Result<Job<ScoreOutcome>> {
        self.score_cancellable(prompts, CancelToken::new(), on_progress)
    }

    /// As [`Engine::score`], stopped through a token the caller made (and may hand to others).
    pub fn score_cancellable(
        &self,
        prompts: Vec<ScorePrompt>,
        cancel: CancelToken,
        on_progress: impl FnMut(ScoreProgress) + Send + 'static,
    ) -> Result<Job<ScoreOutcome>> {
        let (reply, result) = mpsc::channel();
        self.send(Request::Score { prompts, on_progress: Box::new(on_progress), cancel: cancel.clone(), reply })?;
        Ok(Job { result, cancel })
    }

    /// Samples a reply for each prompt; `on_progress` runs on the engine thread after every reply.
    pub fn generate(
        &self,
        prompts: Vec<GenerationPrompt>,
        params: SamplingParams,
        on_progress: impl FnMut(GenerationProgress) + Send + 'static,
    ) -> Result<Job<GenerationOutcome>> {
        self.generate_cancellable(prompts, params, CancelToken::new(), on_progress)
    }

    /// As [`Engine::generate`], stopped through a token the caller made.
    pub fn generate_cancellable(
        &self,
        prompts: Vec<GenerationPrompt>,
        params: SamplingParams,
        cancel: CancelToken,
        on_progress: impl FnMut(GenerationProgress) + Send + 'static,
    ) -> Result<Job<GenerationOutcome>> {
        params.validate()?;
        let (reply, result) = mpsc::channel();
        self.send(Request::Generate {
            prompts,
            params,
            on_progress: Box::new(on_progress),
            cancel: cancel.clone(),
            reply,
        })?;
        Ok(Job { result, cancel })
    }

    fn send(&self, request: Request) -> Result<()> {
        let requests = self.requests.as_ref().ok_or(EngineError::EngineStopped)?;
        requests.send(request).map_err(|_| EngineError::EngineStopped)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        self.requests.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The state that lives on the engine thread.
struct Worker {
    loaded: LoadedModel,
    scorer: Scorer,
    prefix_cache: PrefixCache,
}

impl Worker {
    fn new(loaded: LoadedModel, limits: BatchLimits) -> Result<(Self, ModelInfo)> {
        let scorer = Scorer::new(&loaded.model, &loaded.tokenizer, limits)?;
        let info = ModelInfo {
            source: loaded.source.clone(),
            config: loaded.model.config().clone(),
            chat_template: loaded.chat_template.clone().map(Arc::new),
        };
        Ok((Worker { loaded, scorer, prefix_cache: PrefixCache::default() }, info))
    }

    fn serve(mut self, inbox: mpsc::Receiver<Request>) {
        while let Ok(request) = inbox.recv() {
            match request {
                Request::Score { prompts, on_progress, cancel, reply } => {
                    let _ = reply.send(self.score(&prompts, on_progress, &cancel));
                }
                Request::Generate { prompts, params, on_progress, cancel, reply } => {
                    let _ = reply.send(self.generate(&prompts, &params, on_progress, &cancel));
                }
            }
        }
    }

    fn score(
        &mut self,
        prompts: &[ScorePrompt],
        mut on_progress: ScoreProgressFn,
        cancel: &CancelToken,
    ) -> Result<ScoreOutcome> {
        let started = Instant::now();
        // Each job starts from an empty cache, so its results depend on its prompts alone (a
        // resumed run recomputes a chunk to the same bits as the run that was interrupted).
        self.prefix_cache.clear();
        let context = self.loaded.model.config().context_length;
        let prepared = prompts
            .iter()
            .map(|p| self.scorer.prepare(&self.loaded.tokenizer, context, p))
            .collect::<Result<Vec<_>>>()?;
        let total = prompts.len();
        let mut scores = Vec::with_capacity(total);
        let counters = self.scorer.score_all(
            &self.loaded.model,
            &mut self.prefix_cache,
            &prepared,
            || cancel.is_cancelled(),
            |first_index, batch, counters| {
                scores.extend(batch.iter().cloned());
                on_progress(ScoreProgress {
                    completed: counters.prompts,
                    total,
                    tokens_evaluated: counters.tokens_evaluated,
                    first_index,
                    scores: batch,
                });
            },
        );
        let counters = counters.inspect_err(|_| self.prefix_cache.clear())?;
        Ok(ScoreOutcome { scores, counters, seconds: started.elapsed().as_secs_f64() })
    }

    fn generate(
        &mut self,
        prompts: &[GenerationPrompt],
        params: &SamplingParams,
        mut on_progress: GenerationProgressFn,
        cancel: &CancelToken,
    ) -> Result<GenerationOutcome> {
        let started = Instant::now();
        self.prefix_cache.clear(); // as for scoring: a job's replies depend on its prompts alone
        let context = self.loaded.model.config().context_length;
        let tokenized = prompts
            .iter()
            .map(|prompt| {
                let tokens = self.loaded.tokenizer.encode(&prompt.text)?;
                if tokens.is_empty() {
                    return Err(EngineError::EmptyPrompt { id: prompt.id.clone() });
                }
                if tokens.len() >= context {
                    return Err(EngineError::PromptTooLong { id: prompt.id.clone(), tokens: tokens.len(), context });
                }
                Ok(tokens)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut generations = Vec::with_capacity(prompts.len());
        let mut tokens_evaluated = 0;
        for (index, tokens) in tokenized.iter().enumerate() {
            let result =
                generate(&self.loaded.model, &self.loaded.tokenizer, &mut self.prefix_cache, tokens, params, || {
                    cancel.is_cancelled()
                });
            let (generation, evaluated) = result.inspect_err(|_| self.prefix_cache.clear())?;
            tokens_evaluated += evaluated;
            on_progress(GenerationProgress {
                completed: index + 1,
                total: prompts.len(),
                index,
                generation: generation.clone(),
            });
            generations.push(generation);
        }
        Ok(GenerationOutcome { generations, tokens_evaluated, seconds: started.elapsed().as_secs_f64() })
    }
}
