//! Export: the run's instances as SFT files, both formats (alpaca for LLaMA-Factory, `messages`
//! for TRL/axolotl), culture-joint and culture-specific, under `<data dir>/runs/<id>/sft/`.

use std::path::PathBuf;

use shared::{Run, RunEvent, Stage};

use super::{Runner, RunnerError};
use crate::curation::export::{export_run, write_export, ExportFormat, ExportMode, ExportOptions};

const EXPORTS: [(ExportFormat, ExportMode); 4] = [
    (ExportFormat::Alpaca, ExportMode::Joint),
    (ExportFormat::Alpaca, ExportMode::Specific),
    (ExportFormat::Messages, ExportMode::Joint),
    (ExportFormat::Messages, ExportMode::Specific),
];

/// Where a run's SFT files go.
pub fn sft_dir(runner: &Runner, run_id: i64) -> Result<PathBuf, RunnerError> {
    let data_dir = runner.store.data_dir().ok_or_else(|| RunnerError::Config {
        run_id,
        message: "exporting needs an on-disk store (a data directory)".into(),
    })?;
    Ok(data_dir.join("runs").join(run_id.to_string()).join("sft"))
}

pub(super) async fn export_stage(runner: &Runner, run: &Run) -> Result<(), RunnerError> {
    let run_id = run.run_id;
    let root = sft_dir(runner, run_id)?;
    let total = EXPORTS.len() as u64;
    runner.emit(run_id, RunEvent::StageStarted { stage: Stage::Export, total }).await?;
    for (done, (format, mode)) in EXPORTS.into_iter().enumerate() {
        let options = ExportOptions { run_id, format, mode, accepted_only: false, country_code: None };
        let files = export_run(&runner.store, &runner.survey, &options).await?;
        let records: u64 = files.iter().map(|file| file.records).sum();
        let dir = root.join(format!("{format:?}").to_lowercase()).join(format!("{mode:?}").to_lowercase());
        let written = tokio::task::spawn_blocking(move || write_export(&dir, &files, format).map(|paths| (dir, paths)));
        let (dir, paths) = written.await??;
        let message =
            format!("exported {records} records in {} file(s) to {}", paths.len(), runner.store.shown_path(&dir));
        runner.emit(run_id, RunEvent::Log { message }).await?;
        runner.emit(run_id, RunEvent::Progress { stage: Stage::Export, done: done as u64 + 1, total }).await?;
    }
    runner.emit(run_id, RunEvent::StageFinished { stage: Stage::Export }).await
}
