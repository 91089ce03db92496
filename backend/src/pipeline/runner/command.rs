//! `culturespa run` and the stage subcommands: create or resume a run, execute it with progress
//! bars, stop cleanly on Ctrl-C (the run resumes later with `--resume`).

use std::path::PathBuf;
use std::sync::Arc;

use shared::{RunOrigin, RunStatus, Stage};
use tokio::sync::broadcast;

use super::{show_progress, Runner, RunnerError};
use crate::engine::{CancelToken, Engine};
use crate::models::ModelSource;
use crate::pipeline::run_file::load_run_file;
use crate::store::Store;
use crate::survey::SurveyData;

/// Which run to execute.
#[derive(Debug, Clone)]
pub enum RunTarget {
    /// A new run from a configuration file.
    Config(PathBuf),
    /// A stored run, resumed where it stopped.
    Resume(i64),
}

/// Creates or loads the run, loads its model, executes it (all stages, or `only`), and returns
/// the run's id and how it ended.
pub async fn run_command(
    store: &Store,
    survey: Arc<SurveyData>,
    models: &ModelSource,
    target: RunTarget,
    only: Option<Stage>,
) -> Result<(i64, RunStatus), RunnerError> {
    let run = match target {
        RunTarget::Config(file) => {
            let config = load_run_file(&file, &survey)?;
            let run = store.create_run(&config, &RunOrigin::Local).await?;
            eprintln!("created run {} ({})", run.run_id, run.config.name);
            run
        }
        RunTarget::Resume(run_id) => store.run(run_id).await?,
    };
    let model = models.path_for(run.config.model.as_deref())?;
    eprintln!("loading {}", model.display());
    let options = models.engine_options(&model);
    let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::start(options)).await??);

    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the current chunk; resume with `culturespa run --resume ID`");
            on_interrupt.cancel();
        }
    });
    let (updates, receiver) = broadcast::channel(super::manager::UPDATE_BUFFER);
    let progress = show_progress(run.run_id, receiver);
    let runner = Runner { store: store.clone(), survey, engine, cancel, updates };
    let outcome = runner.execute_stages(run.run_id, only).await;
    drop(runner); // closes the channel, so the bars end even when no Finished event came
    let _ = progress.await;
    Ok((run.run_id, outcome?))
}
