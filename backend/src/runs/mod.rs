//! The run service: what a run is and what can be done with one. It validates every run through
//! one validator ([`validate_run`]) whatever its origin (a run file, `POST /api/runs`, the CLI),
//! creates it, launches it on the engine pool (one run at a time: the model is the scarce
//! resource), cancels and resumes it, and tells followers its events. The API handlers and the CLI
//! commands are thin callers; the stages themselves are [`crate::pipeline::runner`]'s.

mod command;
mod engines;
mod run_lock;
pub mod sensitivity;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shared::{Run, RunConfig, RunEvent, RunOrigin, RunStatus, Stage};
use tokio::sync::broadcast;

use crate::engine::CancelToken;
use crate::models::ModelSource;
use crate::pipeline::run_file::{self, RunFileError};
use crate::pipeline::runner::{RunEngine, RunUpdate, Runner, RunnerError};
use crate::remote::RemoteEngine;
use crate::store::{Store, StoreError};
use crate::survey::SurveyData;

pub use command::{run_command, RunTarget};
pub use engines::EnginePool;
pub use run_lock::RunLock;
pub use validate::{validate_run, InvalidRun, MAX_ATTEMPTS_LIMIT};

/// Events buffered for slow followers; a follower that lags further re-reads the store.
pub const UPDATE_BUFFER: usize = 1024;
/// Runs queued or running at once from requests; more wait for a place (the model does one at a
/// time, so a longer queue only holds work hostage).
pub const MAX_QUEUED_RUNS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Invalid(#[from] InvalidRun),
    #[error("{}: {invalid}", file.display())]
    InvalidFile { file: PathBuf, invalid: InvalidRun },
    #[error(transparent)]
    RunFile(#[from] RunFileError),
    #[error("model: '{0}' is not an installed model (GET /api/models lists them)")]
    ModelNotInstalled(String),
    #[error("run {run_id} is not running (it is {status:?})")]
    NotRunning { run_id: i64, status: RunStatus },
    #[error("run {0} is already completed")]
    Completed(i64),
    #[error("run {0} was imported; there is nothing to resume")]
    Imported(i64),
    #[error("run {0} is already queued or running")]
    Active(i64),
    #[error(
        "run {0} is being executed by another process (a `culturespa run` on this data folder); resume it when that \
         has stopped"
    )]
    ExecutedElsewhere(i64),
    #[error("the lock file of run {run_id}: {source}")]
    LockFile { run_id: i64, source: std::io::Error },
    #[error("{0} runs are queued or running already; try again when one has finished")]
    QueueFull(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// Reads a run file and validates it: the run it describes, or an error naming file and field.
pub fn load_run_file(file: &Path, survey: &SurveyData) -> Result<RunConfig, RunError> {
    let config = run_file::read_run_file(file)?;
    validate_run(config, survey).map_err(|invalid| RunError::InvalidFile { file: file.into(), invalid })
}

/// As [`load_run_file`], from the file's text.
pub fn parse_run_file(file: &Path, text: &str, survey: &SurveyData) -> Result<RunConfig, RunError> {
    let config = run_file::parse_run_file(file, text)?;
    validate_run(config, survey).map_err(|invalid| RunError::InvalidFile { file: file.into(), invalid })
}

pub struct RunService {
    store: Store,
    survey: Arc<SurveyData>,
    engines: EnginePool,
    /// The runs queued or executing here, with their cancel flags.
    active: Mutex<HashMap<i64, CancelToken>>,
    /// Held while a run executes: runs queue behind each other.
    turn: tokio::sync::Mutex<()>,
    updates: broadcast::Sender<RunUpdate>,
}

impl RunService {
    pub fn new(store: Store, survey: Arc<SurveyData>, models: ModelSource) -> Arc<Self> {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Arc::new(RunService {
            store,
            survey,
            engines: EnginePool::new(models),
            active: Mutex::new(HashMap::new()),
            turn: tokio::sync::Mutex::new(()),
            updates,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn survey(&self) -> &SurveyData {
        &self.survey
    }

    pub fn models(&self) -> &ModelSource {
        self.engines.models()
    }

    /// Validates and stores a run from a request. A request names an installed model by its name,
    /// never a path on the server.
    pub async fn create_from_request(&self, config: RunConfig) -> Result<Run, RunError> {
        let mut config = validate_run(config, &self.survey)?;
        if let Some(adapter) = &mut config.adapter {
            adapter.path = self.trained_adapter(&adapter.path)?;
        }
        // A request never sends the server to an address (or a file) of its choosing.
        if let Some(engine) = &config.engine {
            if !self.models().remote_engines.iter().any(|offered| offered.engine == *engine) {
                let message = "not one of the server's engines (GET /api/engines lists them)";
                return Err(RunError::Invalid(InvalidRun::new("engine", message)));
            }
        }
        let queued = self.active.lock().map(|active| active.len()).unwrap_or(MAX_QUEUED_RUNS);
        if queued >= MAX_QUEUED_RUNS {
            return Err(RunError::QueueFull(queued));
        }
        if let Some(model) = &config.model {
            let installed =
                self.models().registry.list().into_iter().any(|listing| listing.installed && listing.name == *model);
            if !installed {
                return Err(RunError::ModelNotInstalled(model.clone()));
            }
        }
        Ok(self.store.create_run(&config, &RunOrigin::Local).await?)
    }

    /// The engine of a model (`None`: the default), from the pool runs use.
    pub async fn engine_for(&self, model: Option<&str>) -> Result<Arc<crate::engine::Engine>, RunError> {
        Ok(self.engines.engine_for(model, None).await?)
    }

    /// The folder of an adapter a run of this server trained, named as `runs/RUN_ID/adapters/NAME`
    /// under the data folder: resolved (symlinks too) and kept inside `runs/`. Whatever is wrong
    /// with the name, the error is the same, so a request learns nothing of the disk.
    pub fn trained_adapter(&self, requested: &str) -> Result<String, RunError> {
        let refused = || {
            let message = "not an adapter this server trained (name it as runs/RUN_ID/adapters/NAME)";
            RunError::Invalid(InvalidRun::new("adapter.path", message))
        };
        let requested = Path::new(requested);
        let plain = requested.components().all(|part| matches!(part, std::path::Component::Normal(_)));
        let data_dir = self.store.data_dir().filter(|_| plain).ok_or_else(refused)?;
        let root = data_dir.join("runs").canonicalize().map_err(|_| refused())?;
        let path = data_dir.join(requested).canonicalize().map_err(|_| refused())?;
        if !path.starts_with(&root) || !path.join(crate::engine::lora::ADAPTER_CONFIG_FILE).is_file() {
            return Err(refused());
        }
        Ok(path.display().to_string())
    }

    /// Reads, validates and stores the run of a run file (the CLI's; it may name a model by path).
    pub async fn create_from_file(&self, file: &Path) -> Result<Run, RunError> {
        let config = load_run_file(file, &self.survey)?;
        Ok(self.store.create_run(&config, &RunOrigin::Local).await?)
    }

    /// The stored run, if it can be resumed: not completed, not imported, not active here.
    pub async fn resumable(&self, run_id: i64) -> Result<Run, RunError> {
        let run = self.store.run(run_id).await?;
        if run.status == RunStatus::Completed {
            return Err(RunError::Completed(run_id));
        }
        if matches!(run.origin, RunOrigin::Imported { .. }) {
            return Err(RunError::Imported(run_id));
        }
        if self.is_active(run_id) {
            return Err(RunError::Active(run_id));
        }
        if self.executed_elsewhere(run_id)? {
            return Err(RunError::ExecutedElsewhere(run_id));
        }
        Ok(run)
    }

    /// Whether another process holds the run's lock (it is not active here).
    fn executed_elsewhere(&self, run_id: i64) -> Result<bool, RunError> {
        RunLock::is_held(self.store.data_dir(), run_id).map_err(|source| RunError::LockFile { run_id, source })
    }

    /// Queues a stopped run again; it continues where it stopped.
    pub async fn resume(self: &Arc<Self>, run_id: i64) -> Result<Run, RunError> {
        let run = self.resumable(run_id).await?;
        // Stored before the run is queued: followers see it is no longer finished.
        self.emit(run_id, RunEvent::Log { message: "queued to resume".into() }).await?;
        self.launch(run_id);
        Ok(run)
    }

    /// Queues again every run that was in flight when the server stopped (killed, or stopped
    /// with the run going): each continues where it stopped. Called once at start, before any
    /// run is launched here. Returns the runs queued.
    pub async fn resume_interrupted(self: &Arc<Self>) -> Result<Vec<i64>, RunError> {
        let mut resumed = Vec::new();
        for run_id in self.store.runs_in_flight().await? {
            let run = self.store.run(run_id).await?;
            if matches!(run.origin, RunOrigin::Imported { .. }) || self.is_active(run_id) {
                continue;
            }
            if self.executed_elsewhere(run_id)? {
                tracing::info!(run_id, "another process executes this run; not resumed here");
                continue;
            }
            let message = "the server stopped while this run was in flight; it resumes where it stopped".to_string();
            self.emit(run_id, RunEvent::Log { message }).await?;
            if self.launch(run_id) {
                resumed.push(run_id);
            }
        }
        Ok(resumed)
    }

    /// Asks a queued or running run to stop after its current chunk.
    pub async fn cancel(&self, run_id: i64) -> Result<Run, RunError> {
        let run = self.store.run(run_id).await?;
        let token = self.active.lock().ok().and_then(|active| active.get(&run_id).cloned());
        match token {
            Some(token) => {
                token.cancel();
                Ok(run)
            }
            None => Err(RunError::NotRunning { run_id, status: run.status }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.updates.subscribe()
    }

    /// Whether the run is queued or executing here.
    pub fn is_active(&self, run_id: i64) -> bool {
        self.active.lock().map(|active| active.contains_key(&run_id)).unwrap_or(false)
    }

    /// Queues the run (a new one, or one to resume) and returns at once; `false` when it is
    /// already queued.
    pub fn launch(self: &Arc<Self>, run_id: i64) -> bool {
        let cancel = CancelToken::new();
        {
            let Ok(mut active) = self.active.lock() else { return false };
            if active.contains_key(&run_id) {
                return false;
            }
            active.insert(run_id, cancel.clone());
        }
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = service.execute(run_id, None, cancel, service.updates.clone()).await;
            if let Err(error) = &outcome {
                tracing::error!(run_id, error = %error, "run failed");
            }
            if let Ok(mut active) = service.active.lock() {
                active.remove(&run_id);
            }
        });
        true
    }

    /// Executes the run now, one at a time with the others, telling `updates` its events (the
    /// CLI calls it directly; [`RunService::launch`] queues it).
    pub async fn execute(
        &self,
        run_id: i64,
        only: Option<Stage>,
        cancel: CancelToken,
        updates: broadcast::Sender<RunUpdate>,
    ) -> Result<RunStatus, RunError> {
        let _turn = self.turn.lock().await;
        // The run is this process's while it executes; another process may have taken it.
        let _lock = RunLock::try_acquire(self.store.data_dir(), run_id)
            .map_err(|source| RunError::LockFile { run_id, source })?
            .ok_or(RunError::ExecutedElsewhere(run_id))?;
        if cancel.is_cancelled() {
            self.emit_on(&updates, run_id, RunEvent::Finished { status: RunStatus::Cancelled }).await?;
            return Ok(RunStatus::Cancelled);
        }
        let run = self.store.run(run_id).await?;
        if let Some(remote) = &run.config.engine {
            let engine = match RemoteEngine::connect(remote) {
                Ok(engine) => RunEngine::Remote(Arc::new(engine)),
                Err(error) => {
                    let message = format!("the remote engine of {} is not ready: {error}", remote.model);
                    self.emit_on(&updates, run_id, RunEvent::Log { message }).await?;
                    self.emit_on(&updates, run_id, RunEvent::Finished { status: RunStatus::Failed }).await?;
                    return Err(RunnerError::Remote(error).into());
                }
            };
            let runner =
                Runner { store: self.store.clone(), survey: Arc::clone(&self.survey), engine, cancel, updates };
            return Ok(runner.execute_stages(run_id, only).await?);
        }
        // The validator wrote the device as the engine reads it.
        let device = run.config.device.as_deref().and_then(|device| device.parse().ok());
        let engine = match self.engines.engine_for(run.config.model.as_deref(), device).await {
            Ok(engine) => engine,
            Err(error) => {
                let spec = run.config.model.as_deref().unwrap_or(&self.models().default).to_string();
                let on = device.unwrap_or(self.models().device);
                let message = format!("cannot load the model {spec} on {on}: {error}");
                self.emit_on(&updates, run_id, RunEvent::Log { message }).await?;
                self.emit_on(&updates, run_id, RunEvent::Finished { status: RunStatus::Failed }).await?;
                return Err(error.into());
            }
        };
        let on = device.unwrap_or(self.models().device);
        let model = run.config.model.as_deref().unwrap_or(&self.models().default);
        // The file's name, never the server's folders (run events are public).
        let model = Path::new(model).file_name().map_or(model.into(), |name| name.to_string_lossy());
        let message = format!("engine: {model} on {on}, projections {}", self.models().projections(on));
        self.emit_on(&updates, run_id, RunEvent::Log { message }).await?;
        let survey = Arc::clone(&self.survey);
        let runner = Runner { store: self.store.clone(), survey, engine: engine.into(), cancel, updates };
        Ok(runner.execute_stages(run_id, only).await?)
    }

    /// Stores an event and tells the followers.
    pub async fn emit(&self, run_id: i64, event: RunEvent) -> Result<(), RunError> {
        self.emit_on(&self.updates, run_id, event).await
    }

    async fn emit_on(
        &self,
        updates: &broadcast::Sender<RunUpdate>,
        run_id: i64,
        event: RunEvent,
    ) -> Result<(), RunError> {
        let event_id = self.store.append_event(run_id, &event).await?;
        // No follower is fine: the event is stored either way.
        let _ = updates.send(RunUpdate { run_id, event_id, event });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
