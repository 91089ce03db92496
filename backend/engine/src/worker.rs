//! The engine thread: it owns the model and serves requests from a channel one at a time, so a
//! server stays responsive while it computes; jobs report progress and can be cancelled.

use std::collections::HashMap;
use std::path::PathBuf;

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use super::batch::{BatchLimits, PrefixCache};
use super::chat_template::ChatTemplate;
use super::cloze::{score_cloze, ClozePrompt};
use super::error::{EngineError, Result};
use super::loader::{load_model, LoadedModel};
use super::lora::LoraAdapter;
use super::model::LlamaModel;
use super::sampling::{generate, GenerationPrompt, SamplingParams};
use super::scoring::{ScoreCounters, ScorePrompt, ScoreReport, Scorer};
use super::train::{prepare_examples, train, TrainingOutcome, TrainingProgress};

pub use super::jobs::{
    AdapterChoice, AdapterInfo, CancelToken, EngineOptions, GenerationOutcome, GenerationProgress,
    GenerationProgressFn, Job, ModelInfo, ScoreOutcome, ScoreProgress, ScoreProgressFn, TrainingProgressFn,
    TrainingRequest,
};

enum Request {
    ScoreCloze {
        prompts: Vec<ClozePrompt>,
        adapter: Option<AdapterChoice>,
        on_progress: ScoreProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<ScoreOutcome>>,
    },
    Score {
        prompts: Vec<ScorePrompt>,
        adapter: Option<AdapterChoice>,
        on_progress: ScoreProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<ScoreOutcome>>,
    },
    Generate {
        prompts: Vec<GenerationPrompt>,
        params: SamplingParams,
        adapter: Option<AdapterChoice>,
        on_progress: GenerationProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<GenerationOutcome>>,
    },
    LoadAdapter {
        name: String,
        path: PathBuf,
        reply: mpsc::Sender<Result<AdapterInfo>>,
    },
    Train {
        request: TrainingRequest,
        on_progress: TrainingProgressFn,
        cancel: CancelToken,
        reply: mpsc::Sender<Result<TrainingOutcome>>,
    },
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
                    .and_then(|mut loaded| {
                        if let Some(cpu_kernels) = options.cpu_kernels {
                            loaded.model.set_cpu_kernels(cpu_kernels);
                        }
                        if options.bf16_projections {
                            loaded.model.pack_bf16()?;
                            match crate::amx::kernel() {
                                crate::amx::Bf16Kernel::Portable => tracing::warn!(
                                    "this CPU has neither AMX nor AVX-512 BF16: bf16 projections run a slow portable \
                                     loop; leave --bf16 off for the f32 kernels"
                                ),
                                kernel => tracing::info!(kernel = kernel.name(), "projections in bf16"),
                            }
                        }
                        if let Some(id) = &options.base_model_id {
                            loaded.model_id = Some(id.clone());
                        }
                        Ok(loaded)
                    })
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
        self.score_with_adapter(prompts, None, cancel, on_progress)
    }

    /// As [`Engine::score_cancellable`], answering with a loaded adapter.
    pub fn score_with_adapter(
        &self,
        prompts: Vec<ScorePrompt>,
        adapter: Option<AdapterChoice>,
        cancel: CancelToken,
        on_progress: impl FnMut(ScoreProgress) + Send + 'static,
    ) -> Result<Job<ScoreOutcome>> {
        let (reply, result) = mpsc::channel();
        let on_progress = Box::new(on_progress);
        self.send(Request::Score { prompts, adapter, on_progress, cancel: cancel.clone(), reply })?;
        Ok(Job { result, cancel })
    }

    /// Scores each prompt's options by the likelihood of their text as the reply (cloze; see
    /// [`crate::cloze`]), one prompt after another; `on_progress` runs after every prompt.
    pub fn score_cloze(
        &self,
        prompts: Vec<ClozePrompt>,
        adapter: Option<AdapterChoice>,
        cancel: CancelToken,
        on_progress: impl FnMut(ScoreProgress) + Send + 'static,
    ) -> Result<Job<ScoreOutcome>> {
        let (reply, result) = mpsc::channel();
        let on_progress = Box::new(on_progress);
        self.send(Request::ScoreCloze { prompts, adapter, on_progress, cancel: cancel.clone(), reply })?;
        Ok(Job { result, cancel })
    }

    /// Loads (or reloads) a PEFT adapter folder under `name`; several can be held at once and a
    /// job names the one it answers with. Fails when the adapter does not fit the model.
    pub fn load_adapter(&self, name: impl Into<String>, path: impl Into<PathBuf>) -> Result<AdapterInfo> {
        let (reply, result) = mpsc::channel();
        self.send(Request::LoadAdapter { name: name.into(), path: path.into(), reply })?;
        result.recv().map_err(|_| EngineError::EngineStopped)?
    }

    /// Trains a LoRA adapter on the engine's model (see [`crate::train::train`]); `on_progress`
    /// runs on the engine thread after every optimizer step.
    pub fn train(
        &self,
        request: TrainingRequest,
        cancel: CancelToken,
        on_progress: impl FnMut(TrainingProgress) + Send + 'static,
    ) -> Result<Job<TrainingOutcome>> {
        request.settings.validate()?;
        let (reply, result) = mpsc::channel();
        self.send(Request::Train { request, on_progress: Box::new(on_progress), cancel: cancel.clone(), reply })?;
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
        self.generate_with_adapter(prompts, params, None, cancel, on_progress)
    }

    /// As [`Engine::generate_cancellable`], answering with a loaded adapter.
    pub fn generate_with_adapter(
        &self,
        prompts: Vec<GenerationPrompt>,
        params: SamplingParams,
        adapter: Option<AdapterChoice>,
        cancel: CancelToken,
        on_progress: impl FnMut(GenerationProgress) + Send + 'static,
    ) -> Result<Job<GenerationOutcome>> {
        params.validate()?;
        let (reply, result) = mpsc::channel();
        self.send(Request::Generate {
            prompts,
            params,
            adapter,
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
    adapters: HashMap<String, LoraAdapter>,
    /// The model of the last adapter used (merging costs a copy of the projections, so it is
    /// kept while consecutive jobs use the same adapter).
    adapted: Option<(AdapterChoice, LlamaModel)>,
}

impl Worker {
    fn new(loaded: LoadedModel, limits: BatchLimits) -> Result<(Self, ModelInfo)> {
        let scorer = Scorer::new(&loaded.model, &loaded.tokenizer, limits)?;
        let info = ModelInfo {
            source: loaded.source.clone(),
            config: loaded.model.config().clone(),
            chat_template: loaded.chat_template.clone().map(Arc::new),
            cpu_kernels: loaded.model.uses_cpu_kernels(),
        };
        let worker =
            Worker { loaded, scorer, prefix_cache: PrefixCache::default(), adapters: HashMap::new(), adapted: None };
        Ok((worker, info))
    }

    fn serve(mut self, inbox: mpsc::Receiver<Request>) {
        while let Ok(request) = inbox.recv() {
            match request {
                Request::ScoreCloze { prompts, adapter, on_progress, cancel, reply } => {
                    let result = self
                        .select_adapter(adapter.as_ref())
                        .and_then(|()| self.score_cloze(&prompts, on_progress, &cancel));
                    let _ = reply.send(result);
                }
                Request::Score { prompts, adapter, on_progress, cancel, reply } => {
                    let result =
                        self.select_adapter(adapter.as_ref()).and_then(|()| self.score(&prompts, on_progress, &cancel));
                    let _ = reply.send(result);
                }
                Request::Generate { prompts, params, adapter, on_progress, cancel, reply } => {
                    let result = self
                        .select_adapter(adapter.as_ref())
                        .and_then(|()| self.generate(&prompts, &params, on_progress, &cancel));
                    let _ = reply.send(result);
                }
                Request::LoadAdapter { name, path, reply } => {
                    let _ = reply.send(self.load_adapter(name, &path));
                }
                Request::Train { request, on_progress, cancel, reply } => {
                    let _ = reply.send(self.train(request, on_progress, &cancel));
                }
            }
        }
    }

    /// Makes `adapter` (or the base model) the one the next job runs.
    fn select_adapter(&mut self, adapter: Option<&AdapterChoice>) -> Result<()> {
        let Some(choice) = adapter else {
            self.adapted = None;
            return Ok(());
        };
        if self.adapted.as_ref().is_some_and(|(current, _)| current == choice) {
            return Ok(());
        }
        self.adapted = None; // free the previous copy before building the next
        let weights = self.adapters.get(&choice.name).ok_or_else(|| EngineError::InvalidAdapter {
            path: None,
            reason: format!("no adapter named {:?} is loaded", choice.name),
        })?;
        let model = if choice.merged {
            self.loaded.model.merged_with(weights)?
        } else {
            self.loaded.model.with_adapter(weights)?
        };
        self.adapted = Some((choice.clone(), model));
        Ok(())
    }

    fn load_adapter(&mut self, name: String, path: &std::path::Path) -> Result<AdapterInfo> {
        let adapter = LoraAdapter::load(path, self.loaded.model.device())?;
        adapter.check_fits(self.loaded.model.config(), Some(path))?;
        let info = AdapterInfo {
            name: name.clone(),
            rank: adapter.settings.rank,
            alpha: adapter.settings.alpha,
            target_modules: adapter.settings.target_modules.clone(),
        };
        // A reloaded adapter may have changed on disk: drop the copy built from the old one.
        if self.adapted.as_ref().is_some_and(|(current, _)| current.name == name) {
            self.adapted = None;
        }
        self.adapters.insert(name, adapter);
        Ok(info)
    }

    fn train(
        &mut self,
        request: TrainingRequest,
        mut on_progress: TrainingProgressFn,
        cancel: &CancelToken,
    ) -> Result<TrainingOutcome> {
        self.adapted = None; // the training copies hold their own adapter; free memory first
        let examples = prepare_examples(&request.records, &self.loaded)?;
        let base_model = base_model_id(&self.loaded);
        train(
            &self.loaded.model,
            &examples,
            &request.settings,
            &request.out_dir,
            base_model,
            |progress| on_progress(progress.clone()),
            || cancel.is_cancelled(),
        )
    }

    fn score(
        &mut self,
        prompts: &[ScorePrompt],
        mut on_progress: ScoreProgressFn,
        cancel: &CancelToken,
    ) -> Result<ScoreOutcome> {
        let started = Instant::now();
        // Each job computes its own prefixes, so its results depend on its prompts alone (a
        // resumed run recomputes a chunk to the same bits as the run that was interrupted).
        let context = self.loaded.model.config().context_length;
        let prepared = prompts
            .iter()
            .map(|p| self.scorer.prepare(&self.loaded.tokenizer, context, p))
            .collect::<Result<Vec<_>>>()?;
        let total = prompts.len();
        let mut scores = Vec::with_capacity(total);
        let model = self.adapted.as_ref().map_or(&self.loaded.model, |(_, model)| model);
        let report = self.scorer.score_all(
            model,
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
        let report = report?;
        Ok(ScoreOutcome { scores, counters: report.counters, report, seconds: started.elapsed().as_secs_f64() })
    }

    fn score_cloze(
        &mut self,
        prompts: &[ClozePrompt],
        mut on_progress: ScoreProgressFn,
        cancel: &CancelToken,
    ) -> Result<ScoreOutcome> {
        let started = Instant::now();
        self.prefix_cache.clear(); // a job's results depend on its prompts alone
        let model = self.adapted.as_ref().map_or(&self.loaded.model, |(_, model)| model);
        let mut scores = Vec::with_capacity(prompts.len());
        let mut counters = ScoreCounters::default();
        for (index, prompt) in prompts.iter().enumerate() {
            if cancel.is_cancelled() {
                self.prefix_cache.clear();
                return Err(EngineError::Cancelled);
            }
            let scored = score_cloze(model, &self.loaded.tokenizer, &mut self.prefix_cache, prompt);
            let (score, evaluated) = scored.inspect_err(|_| self.prefix_cache.clear())?;
            counters.prompts += 1;
            counters.tokens_evaluated += evaluated;
            on_progress(ScoreProgress {
                completed: index + 1,
                total: prompts.len(),
                tokens_evaluated: counters.tokens_evaluated,
                first_index: index,
                scores: vec![score.clone()],
            });
            scores.push(score);
        }
        let seconds = started.elapsed().as_secs_f64();
        let report = ScoreReport { counters, ..ScoreReport::default() };
        Ok(ScoreOutcome { scores, counters, report, seconds })
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
            let model = self.adapted.as_ref().map_or(&self.loaded.model, |(_, model)| model);
            let result = generate(model, &self.loaded.tokenizer, &mut self.prefix_cache, tokens, params, || {
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

/// What an adapter trained on `loaded` records as its base model: the model's id, else its file's
/// name (never the path on this machine).
pub fn base_model_id(loaded: &LoadedModel) -> Option<String> {
    loaded.model_id.clone().or_else(|| loaded.source.file_name().map(|name| name.to_string_lossy().into_owned()))
}
