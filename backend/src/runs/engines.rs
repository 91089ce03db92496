//! The engine pool: the one place a model's engine is started. One engine per model file (however
//! the path to it is spelled) and device, kept for later runs; at most [`MAX_ENGINES`] at once,
//! the least recently used idle one dropped to make room.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::{DeviceKind, Engine, EngineError};
use crate::models::ModelSource;
use crate::pipeline::runner::RunnerError;

/// Models kept loaded at once (each holds its weights in memory).
pub const MAX_ENGINES: usize = 2;

/// A model file (canonical path) on a device.
type EngineKey = (PathBuf, DeviceKind);

pub struct EnginePool {
    models: ModelSource,
    /// Least recently used first.
    engines: tokio::sync::Mutex<Vec<(EngineKey, Arc<Engine>)>>,
}

impl EnginePool {
    pub fn new(models: ModelSource) -> Self {
        EnginePool { models, engines: tokio::sync::Mutex::new(Vec::new()) }
    }

    pub fn models(&self) -> &ModelSource {
        &self.models
    }

    /// The engine of a run's model (`None`: the default model) on a device (`None`: the
    /// server's), started on first use.
    pub async fn engine_for(
        &self,
        model: Option<&str>,
        device: Option<DeviceKind>,
    ) -> Result<Arc<Engine>, RunnerError> {
        let path = self.models.path_for(model)?;
        let path = path.canonicalize().map_err(|_| EngineError::ModelNotFound(path.clone()))?;
        let device = device.unwrap_or(self.models.device);
        let key = (path, device);
        let mut engines = self.engines.lock().await;
        if let Some(position) = engines.iter().position(|(loaded, _)| *loaded == key) {
            let entry = engines.remove(position);
            let engine = Arc::clone(&entry.1);
            engines.push(entry);
            return Ok(engine);
        }
        // Room for one more: drop idle engines (held by the pool alone), least recently used first.
        while engines.len() >= MAX_ENGINES {
            let Some(idle) = engines.iter().position(|(_, engine)| Arc::strong_count(engine) == 1) else { break };
            let ((dropped, on), _) = engines.remove(idle);
            tracing::info!(model = %dropped.display(), device = %on, "unloading an idle model to make room");
        }
        tracing::info!(model = %key.0.display(), device = %device, "loading");
        let options = crate::engine::EngineOptions { device, ..self.models.engine_options(&key.0) };
        let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::start(options)).await??);
        engines.push((key, Arc::clone(&engine)));
        Ok(engine)
    }

    /// How many engines are loaded.
    pub async fn loaded(&self) -> usize {
        self.engines.lock().await.len()
    }
}
