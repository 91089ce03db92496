//! The engine pool: the one place a model's engine is started. One engine per model file, however
//! the path to it is spelled, kept for later runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::{Engine, EngineError};
use crate::models::ModelSource;
use crate::pipeline::runner::RunnerError;

pub struct EnginePool {
    models: ModelSource,
    engines: tokio::sync::Mutex<HashMap<PathBuf, Arc<Engine>>>,
}

impl EnginePool {
    pub fn new(models: ModelSource) -> Self {
        EnginePool { models, engines: tokio::sync::Mutex::new(HashMap::new()) }
    }

    pub fn models(&self) -> &ModelSource {
        &self.models
    }

    /// The engine of a run's model (`None`: the default model), started on first use.
    pub async fn engine_for(&self, model: Option<&str>) -> Result<Arc<Engine>, RunnerError> {
        let path = self.models.path_for(model)?;
        let path = path.canonicalize().map_err(|_| EngineError::ModelNotFound(path.clone()))?;
        let mut engines = self.engines.lock().await;
        if let Some(engine) = engines.get(&path) {
            return Ok(Arc::clone(engine));
        }
        tracing::info!(model = %path.display(), "loading");
        let options = self.models.engine_options(&path);
        let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::start(options)).await??);
        engines.insert(path, Arc::clone(&engine));
        Ok(engine)
    }
}
