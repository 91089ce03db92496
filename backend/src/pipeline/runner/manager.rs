//! Runs launched from the server: one at a time on the engine thread (the model is the scarce
//! resource), each cancellable, their events broadcast to followers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shared::{RunEvent, RunStatus};
use tokio::sync::broadcast;

use super::{RunUpdate, Runner, RunnerError};
use crate::engine::{CancelToken, Engine};
use crate::models::ModelSource;
use crate::store::Store;
use crate::survey::SurveyData;

/// Events buffered for slow followers; a follower that lags further re-reads the store.
pub(super) const UPDATE_BUFFER: usize = 1024;

pub struct RunManager {
    store: Store,
    survey: Arc<SurveyData>,
    models: ModelSource,
    engines: tokio::sync::Mutex<HashMap<PathBuf, Arc<Engine>>>,
    active: Mutex<HashMap<i64, CancelToken>>,
    /// Held while a run executes: runs queue behind each other.
    turn: tokio::sync::Mutex<()>,
    updates: broadcast::Sender<RunUpdate>,
}

impl RunManager {
    pub fn new(store: Store, survey: Arc<SurveyData>, models: ModelSource) -> Arc<Self> {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Arc::new(RunManager {
            store,
            survey,
            models,
            engines: tokio::sync::Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
            turn: tokio::sync::Mutex::new(()),
            updates,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.updates.subscribe()
    }

    /// Whether the run is queued or executing here.
    pub fn is_active(&self, run_id: i64) -> bool {
        self.active.lock().map(|active| active.contains_key(&run_id)).unwrap_or(false)
    }

    /// Queues the run (a new one, or one to resume) and returns at once.
    pub fn launch(self: &Arc<Self>, run_id: i64) -> bool {
        let cancel = CancelToken::new();
        {
            let Ok(mut active) = self.active.lock() else { return false };
            if active.contains_key(&run_id) {
                return false;
            }
            active.insert(run_id, cancel.clone());
        }
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = manager.execute(run_id, cancel).await;
            if let Err(error) = &outcome {
                tracing::error!(run_id, error = %error, "run failed");
            }
            if let Ok(mut active) = manager.active.lock() {
                active.remove(&run_id);
            }
        });
        true
    }

    /// Asks a queued or running run to stop; `false` when it is not active here.
    pub fn cancel(&self, run_id: i64) -> bool {
        let token = self.active.lock().ok().and_then(|active| active.get(&run_id).cloned());
        token.map(|token| token.cancel()).is_some()
    }

    async fn execute(&self, run_id: i64, cancel: CancelToken) -> Result<RunStatus, RunnerError> {
        let _turn = self.turn.lock().await;
        if cancel.is_cancelled() {
            self.emit(run_id, RunEvent::Finished { status: RunStatus::Cancelled }).await?;
            return Ok(RunStatus::Cancelled);
        }
        let run = self.store.run(run_id).await?;
        let spec = run.config.model.as_deref().unwrap_or(&self.models.default).to_string();
        let engine = match self.models.path_for(Some(&spec)).map_err(RunnerError::from) {
            Ok(model) => self.engine(&model).await,
            Err(error) => Err(error),
        };
        let engine = match engine {
            Ok(engine) => engine,
            Err(error) => {
                let message = format!("cannot load the model {spec}: {error}");
                self.emit(run_id, RunEvent::Log { message }).await?;
                self.emit(run_id, RunEvent::Finished { status: RunStatus::Failed }).await?;
                return Err(error);
            }
        };
        let runner = Runner {
            store: self.store.clone(),
            survey: Arc::clone(&self.survey),
            engine,
            cancel,
            updates: self.updates.clone(),
        };
        runner.execute(run_id).await
    }

    /// Stores an event and tells the followers.
    pub async fn emit(&self, run_id: i64, event: RunEvent) -> Result<(), RunnerError> {
        let event_id = self.store.append_event(run_id, &event).await?;
        let _ = self.updates.send(RunUpdate { run_id, event_id, event });
        Ok(())
    }

    /// The engine for a model, started on first use and kept for later runs (one per file,
    /// however the path to it is spelled).
    async fn engine(&self, model: &Path) -> Result<Arc<Engine>, RunnerError> {
        let model =
            &model.canonicalize().map_err(|_| crate::engine::EngineError::ModelNotFound(model.to_path_buf()))?;
        let mut engines = self.engines.lock().await;
        if let Some(engine) = engines.get(model) {
            return Ok(Arc::clone(engine));
        }
        let options = self.models.engine_options(model);
        let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::start(options)).await??);
        engines.insert(model.to_path_buf(), Arc::clone(&engine));
        Ok(engine)
    }
}
