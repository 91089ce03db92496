//! `culturespa run` and the stage subcommands: create or resume a run, execute it with progress
//! bars, stop cleanly on Ctrl-C (the run resumes later with `--resume`).

use std::path::PathBuf;
use std::sync::Arc;

use shared::{RunStatus, Stage};
use tokio::sync::broadcast;

use super::{RunError, RunService, UPDATE_BUFFER};
use crate::pipeline::runner::show_progress;

/// Which run to execute.
#[derive(Debug, Clone)]
pub enum RunTarget {
    /// A new run from a configuration file.
    Config(PathBuf),
    /// A stored run, resumed where it stopped.
    Resume(i64),
}

/// Creates or loads the run, loads its model, executes it in the foreground (all stages, or
/// `only`), and returns the run's id and how it ended.
pub async fn run_command(
    service: &Arc<RunService>,
    target: RunTarget,
    only: Option<Stage>,
) -> Result<(i64, RunStatus), RunError> {
    let run = match target {
        RunTarget::Config(file) => {
            let run = service.create_from_file(&file).await?;
            eprintln!("created run {} ({})", run.run_id, run.config.name);
            run
        }
        RunTarget::Resume(run_id) => service.resumable(run_id).await?,
    };
    let cancel = crate::engine::CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            // Cancelled before it is said, so whoever reads the line knows the run will stop.
            on_interrupt.cancel();
            eprintln!("stopping after the current chunk; resume with `culturespa run --resume ID`");
        }
    });
    // A channel of this execution's own: it closes when the execution ends, and so do the bars,
    // even when no Finished event came (a single stage of a run with more).
    let (updates, receiver) = broadcast::channel(UPDATE_BUFFER);
    let progress = show_progress(run.run_id, receiver);
    let outcome = service.execute(run.run_id, only, cancel, updates).await;
    let _ = progress.await;
    Ok((run.run_id, outcome?))
}
