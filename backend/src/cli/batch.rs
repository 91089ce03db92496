//! `culturespa batch write RUN_ID` and `batch read RUN_ID FILE`: a run's answering stage as an
//! OpenAI batch file for a GPU cluster (`vllm run-batch -i requests.jsonl -o results.jsonl`), and
//! its results stored; `culturespa run resume RUN_ID` then finishes the run.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use culturespa::engine::CancelToken;
use culturespa::pipeline::runner::{read_batch, write_batch, BatchSummary, RunEngine, Runner};
use culturespa::remote::RemoteEngine;
use culturespa::store::Store;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum BatchCommand {
    /// Writes the requests of the run's pending prompts (its Answer or Evaluate stage), one a line.
    Write {
        run_id: i64,
        /// The batch file (standard output when left out).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Stores the answers of a results file (`custom_id`, `response.body`); prompts without a
    /// result stay pending.
    Read {
        run_id: i64,
        results: PathBuf,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

async fn runner(globals: &Globals, data_dir: &std::path::Path, run_id: i64) -> anyhow::Result<Runner> {
    let store = Store::open(data_dir).await?;
    let run = store.run(run_id).await?;
    let engine = run.config.engine.as_ref().with_context(|| {
        format!("run {run_id} has no remote `engine`: batch files name the served model (add engine = {{...}} to the run file)")
    })?;
    // Files only: nothing is sent, so the API key is not needed (the cluster holds its own).
    let remote = RemoteEngine::connect(&shared::RemoteEngineConfig { api_key_env: None, ..engine.clone() })?;
    Ok(Runner {
        store,
        survey: Arc::new(globals.survey()?),
        engine: RunEngine::Remote(Arc::new(remote)),
        cancel: CancelToken::new(),
        updates: tokio::sync::broadcast::channel(16).0,
    })
}

fn report(summary: &BatchSummary) {
    eprintln!(
        "run {} {:?}: {} of {} pending prompts answered and stored{}",
        summary.run_id,
        summary.stage,
        summary.done,
        summary.pending,
        if summary.missing > 0 { format!("; {} have no result yet", summary.missing) } else { String::new() }
    );
    for failure in &summary.failures {
        eprintln!("  failed: {failure}");
    }
}

pub async fn run(globals: &Globals, command: BatchCommand) -> anyhow::Result<()> {
    match command {
        BatchCommand::Write { run_id, out, data_dir } => {
            let runner = runner(globals, &data_dir, run_id).await?;
            let summary = match &out {
                Some(path) => {
                    // Written beside the target and renamed: a failed write leaves no half file.
                    let partial = path.with_extension("jsonl.partial");
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
                    );
                    let summary = write_batch(&runner, run_id, &mut file).await?;
                    file.into_inner().map_err(|error| error.into_error())?.sync_all()?;
                    std::fs::rename(&partial, path)?;
                    summary
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    let summary = write_batch(&runner, run_id, &mut stdout).await?;
                    stdout.flush()?;
                    summary
                }
            };
            eprintln!(
                "run {run_id} {:?}: {} requests for its {} pending prompts",
                summary.stage, summary.done, summary.pending
            );
        }
        BatchCommand::Read { run_id, results, data_dir } => {
            let runner = runner(globals, &data_dir, run_id).await?;
            let summary = read_batch(&runner, run_id, &results).await?;
            report(&summary);
        }
    }
    Ok(())
}
