//! The engine a run answers and generates with: the in-process engine, or a remote
//! OpenAI-compatible server. Stages ask this for prompts and replies and never care which.

use std::sync::Arc;

use super::work::Prompt;
use super::{Runner, RunnerError};
use crate::engine::{AdapterChoice, Engine, EngineError, GenerationPrompt, SamplingParams};
use crate::remote::{ChatPrompt, RemoteEngine, RemoteError, RemoteSampling};

#[derive(Clone)]
pub enum RunEngine {
    Local(Arc<Engine>),
    Remote(Arc<RemoteEngine>),
}

impl From<Arc<Engine>> for RunEngine {
    fn from(engine: Arc<Engine>) -> Self {
        RunEngine::Local(engine)
    }
}

impl RunEngine {
    /// The in-process engine, for what only it can do (`what`, e.g. "training").
    pub fn local(&self, what: &str) -> Result<&Arc<Engine>, RunnerError> {
        match self {
            RunEngine::Local(engine) => Ok(engine),
            RunEngine::Remote(remote) => Err(RunnerError::Remote(RemoteError::Reply {
                endpoint: format!("the remote engine of {}", remote.config().model),
                message: format!("{what} needs the in-process engine: a run with a remote engine cannot do it"),
            })),
        }
    }

    /// A system + user exchange as this engine takes it.
    pub(super) fn prompt(&self, chat: ChatPrompt) -> Result<Prompt, RunnerError> {
        let text = match self {
            RunEngine::Local(engine) => engine.chat_template()?.render_exchange(&chat.system, &chat.user)?,
            RunEngine::Remote(remote) => remote.prompt_key(&chat).map_err(remote_error)?,
        };
        Ok(Prompt { chat, text })
    }
}

/// A remote engine's error as the runner's; its cancel is the engine's, so the run ends cancelled.
pub(super) fn remote_error(error: RemoteError) -> RunnerError {
    match error {
        RemoteError::Cancelled => EngineError::Cancelled.into(),
        other => RunnerError::Remote(other),
    }
}

/// One sampled reply per prompt (in order), each `(id, prompt)` with the same settings.
pub(super) async fn sample_replies(
    runner: &Runner,
    adapter: Option<AdapterChoice>,
    prompts: Vec<(String, Prompt)>,
    params: SamplingParams,
) -> Result<Vec<String>, RunnerError> {
    match &runner.engine {
        RunEngine::Local(engine) => {
            let prompts =
                prompts.into_iter().map(|(id, prompt)| GenerationPrompt { id, text: prompt.text }).collect::<Vec<_>>();
            let count = prompts.len();
            let job = engine.generate_with_adapter(prompts, params, adapter, runner.cancel.clone(), |_| {})?;
            let outcome = tokio::task::spawn_blocking(move || job.wait()).await??;
            let replies: Vec<String> = outcome.generations.into_iter().map(|generation| generation.text).collect();
            if replies.len() != count {
                return Err(EngineError::EngineStopped.into());
            }
            Ok(replies)
        }
        RunEngine::Remote(remote) => {
            let sampling = RemoteSampling::from(&params);
            let prompts: Vec<_> = prompts.into_iter().map(|(_, prompt)| (prompt.chat, sampling.clone())).collect();
            remote.generate(&prompts, &runner.cancel).await.map_err(remote_error)
        }
    }
}
