//! `culturespa run` and the stage commands (`generate`, `answer`, `collect`, `evaluate`): thin
//! callers of the run service.

use std::path::PathBuf;
use std::sync::Arc;

use culturespa::engine::DeviceKind;
use culturespa::runs::{run_command, RunService, RunTarget};
use culturespa::server;
use shared::{RunStatus, Stage};

use super::Globals;

/// Where runs are stored and which model answers by default.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Where the database lives.
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
    /// The model of runs that name none (a catalogue name, a model in --models-dir, or a path).
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
    /// Where the model runs when the run names no device: cpu, cuda or cuda:N (a CUDA device
    /// needs a build with --features cuda).
    #[arg(long, env = "CULTURESPA_DEVICE", default_value = "cpu")]
    device: DeviceKind,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A run file (TOML): name, cultures, topics, questions_per_topic, variants, answer_mode,
    /// seed, stages, and optionally model and question_set.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    config: Option<PathBuf>,
    /// Resume a stored run where it stopped.
    #[arg(long)]
    resume: Option<i64>,
    #[command(flatten)]
    store: StoreArgs,
}

/// A stage command: do (or finish) one stage of a stored run.
#[derive(Debug, clap::Args)]
pub struct StageArgs {
    #[arg(long)]
    run: i64,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(globals: &Globals, args: RunArgs) -> anyhow::Result<()> {
    let target = match (args.config, args.resume) {
        (_, Some(run_id)) => RunTarget::Resume(run_id),
        (Some(file), None) => RunTarget::Config(file),
        (None, None) => anyhow::bail!("give --config FILE or --resume ID"),
    };
    execute(globals, args.store, target, None).await
}

pub async fn stage(globals: &Globals, args: StageArgs, stage: Stage) -> anyhow::Result<()> {
    execute(globals, args.store, RunTarget::Resume(args.run), Some(stage)).await
}

async fn execute(globals: &Globals, store: StoreArgs, target: RunTarget, only: Option<Stage>) -> anyhow::Result<()> {
    let survey = Arc::new(globals.survey()?);
    let database = server::open_store(&store.data_dir, &survey).await?;
    let service = RunService::new(database, survey, globals.model_source(store.model)?.with_device(store.device));
    let (run_id, status) = run_command(&service, target, only).await?;
    eprintln!("run {run_id}: {status:?}");
    match status {
        RunStatus::Failed => anyhow::bail!("run {run_id} failed"),
        // Ctrl-C: not a success, so a script running runs one after another stops here too.
        RunStatus::Cancelled => {
            anyhow::bail!("run {run_id} stopped before it finished; `run --resume {run_id}` continues it")
        }
        _ => Ok(()),
    }
}
