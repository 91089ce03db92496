//! The resumable runner: does a run's stages in order, stores every result with the progress event
//! that reports it (one transaction), and resumes a killed run where it stopped. Work already
//! stored is never redone, and scoring and seeded sampling are deterministic, so a resumed run
//! ends with the same answers, byte for byte, as one that was never interrupted.

mod answer;
mod batch;
mod calibrate;
mod collect;
mod export;
mod generate;
mod inference;
mod pause;
mod score;
mod terminal;
mod train;
mod work;

use std::collections::HashSet;
use std::sync::Arc;

use shared::{PromptVariant, Run, RunEvent, RunStatus, Stage};
use tokio::sync::broadcast;

use crate::engine::{CancelToken, EngineError};
use crate::store::{generated_set_name, Store, StoreError, StoreTransaction, WVS_SET};
use crate::survey::SurveyData;

pub use answer::ANSWER_CHUNK;
pub use batch::{read_batch, write_batch, BatchSummary};
pub use export::sft_dir;
pub use generate::{derive_seed, SeedPurpose};
pub use inference::RunEngine;
pub use pause::{PAUSE_AFTER_COMMITS, PAUSE_FILE, SLOW_COMMITS_MS};
pub use terminal::show_progress;
pub use train::{adapters_dir, training_settings, JOINT_ADAPTER};

/// The stages this version can do.
pub const AVAILABLE_STAGES: [Stage; 6] =
    [Stage::Generate, Stage::Answer, Stage::Collect, Stage::Export, Stage::Train, Stage::Evaluate];

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the language model: {0}")]
    Engine(#[from] EngineError),
    #[error("run {run_id}: {message}")]
    Config { run_id: i64, message: String },
    #[error("exporting SFT files: {0}")]
    Export(#[from] crate::curation::export::ExportError),
    #[error("the engine task stopped unexpectedly: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    /// Its messages name the remote engine (its model) themselves.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
}

/// An event as it was stored, for live followers (server-sent events, progress bars).
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    pub run_id: i64,
    pub event_id: i64,
    pub event: RunEvent,
}

/// Everything a run needs: the store, the WVS data, the model, a cancel flag, and followers.
#[derive(Clone)]
pub struct Runner {
    pub store: Store,
    pub survey: Arc<SurveyData>,
    pub engine: RunEngine,
    pub cancel: CancelToken,
    pub updates: broadcast::Sender<RunUpdate>,
}

impl Runner {
    /// Does every stage of the run that has not finished yet; returns how the run ended.
    pub async fn execute(&self, run_id: i64) -> Result<RunStatus, RunnerError> {
        self.execute_stages(run_id, None).await
    }

    /// As [`Runner::execute`], limited to `only` when given (a stage's own subcommand); the run
    /// is completed when all its stages have finished.
    pub async fn execute_stages(&self, run_id: i64, only: Option<Stage>) -> Result<RunStatus, RunnerError> {
        let run = self.store.run(run_id).await?;
        let finished: HashSet<Stage> = self
            .store
            .events(run_id, 0)
            .await?
            .into_iter()
            .filter_map(|(_, event)| match event {
                RunEvent::StageFinished { stage } => Some(stage),
                _ => None,
            })
            .collect();
        if let Some(stage) = only.filter(|stage| !run.config.stages.contains(stage)) {
            return Err(RunnerError::Config { run_id, message: format!("the run has no {stage:?} stage") });
        }
        let mut finished = finished;
        for stage in Stage::ALL.into_iter().filter(|stage| run.config.stages.contains(stage)) {
            if finished.contains(&stage) || only.is_some_and(|only| only != stage) {
                continue;
            }
            let outcome = match stage {
                Stage::Generate => generate::generate_stage(self, &run).await,
                Stage::Answer
                    if run.config.stages.contains(&Stage::Generate) && !finished.contains(&Stage::Generate) =>
                {
                    Err(RunnerError::Config {
                        run_id,
                        message: "the run answers its generated questions: finish its Generate stage first".into(),
                    })
                }
                Stage::Answer => answer::answer_stage(self, &run, Stage::Answer, &run_question_set(&run)).await,
                Stage::Collect => collect::collect_stage(self, &run).await,
                Stage::Export => export::export_stage(self, &run).await,
                Stage::Train => train::train_stage(self, &run).await,
                Stage::Evaluate => answer::answer_stage(self, &run, Stage::Evaluate, WVS_SET).await,
            };
            match outcome {
                Ok(()) => {}
                Err(RunnerError::Engine(EngineError::Cancelled)) => {
                    return self.finish(run_id, RunStatus::Cancelled).await
                }
                Err(error) => {
                    self.emit(run_id, RunEvent::Log { message: format!("{stage:?} failed: {error}") }).await?;
                    self.finish(run_id, RunStatus::Failed).await?;
                    return Err(error);
                }
            }
            finished.insert(stage);
            if self.cancel.is_cancelled() {
                return self.finish(run_id, RunStatus::Cancelled).await;
            }
        }
        if run.config.stages.iter().all(|stage| finished.contains(stage)) {
            self.finish(run_id, RunStatus::Completed).await
        } else {
            Ok(self.store.run(run_id).await?.status)
        }
    }

    async fn finish(&self, run_id: i64, status: RunStatus) -> Result<RunStatus, RunnerError> {
        self.emit(run_id, RunEvent::Finished { status }).await?;
        Ok(status)
    }

    /// Stores an event on its own and tells the followers.
    pub async fn emit(&self, run_id: i64, event: RunEvent) -> Result<(), RunnerError> {
        let event_id = self.store.append_event(run_id, &event).await?;
        self.publish(run_id, event_id, event);
        Ok(())
    }

    /// Stores an event inside `transaction`; followers hear of it once it committed.
    async fn emit_in(
        &self,
        transaction: &mut StoreTransaction,
        run_id: i64,
        event: RunEvent,
    ) -> Result<(i64, RunEvent), RunnerError> {
        let event_id = transaction.append_event(run_id, &event).await?;
        Ok((event_id, event))
    }

    fn publish(&self, run_id: i64, event_id: i64, event: RunEvent) {
        // No follower is fine: the event is stored either way.
        let _ = self.updates.send(RunUpdate { run_id, event_id, event });
    }
}

/// The question set a run answers: the questions it generated when it has a Generate stage, else
/// its configured set, or the WVS questions.
pub fn run_question_set(run: &Run) -> String {
    if run.config.stages.contains(&Stage::Generate) {
        return generated_set_name(run.run_id);
    }
    run.config.question_set.clone().unwrap_or_else(|| WVS_SET.to_string())
}

/// The aware variant whose answers define instances: the run's `collect_from`, else the first of
/// its culture-aware variants, P1 before the others as in the paper.
pub fn instance_variant(config: &shared::RunConfig) -> Option<PromptVariant> {
    const PREFERENCE: [PromptVariant; 5] =
        [PromptVariant::P1, PromptVariant::P2, PromptVariant::P1P3, PromptVariant::P2P3, PromptVariant::P3];
    config.collect_from.or_else(|| PREFERENCE.into_iter().find(|variant| config.variants.contains(variant)))
}
