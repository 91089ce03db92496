//! Train: LoRA adapters from the run's instances, on the engine thread — one culture-joint adapter,
//! or one per culture trained one after another — under `<data dir>/runs/<id>/adapters/<joint |
//! country code>/` in PEFT's layout. The loss of every optimizer step is stored and streamed; a
//! killed training resumes from its last checkpoint, and a finished adapter is not trained again.

use std::path::{Path, PathBuf};

use shared::{Run, RunEvent, Stage, TrainingConfig, TrainingMode};

use super::{Runner, RunnerError};
use crate::curation::export::{export_run, ExportFormat, ExportMode, ExportOptions};
use crate::engine::lora::LoraSettings;
use crate::engine::train::{parse_sft_text, SftRecord};
use crate::engine::{TrainingRequest, TrainingSettings};

/// The adapter folder name of culture-joint training.
pub const JOINT_ADAPTER: &str = "joint";

/// Where a run's adapters go.
pub fn adapters_dir(runner: &Runner, run_id: i64) -> Result<PathBuf, RunnerError> {
    let data_dir = runner.store.data_dir().ok_or_else(|| RunnerError::Config {
        run_id,
        message: "training needs an on-disk store (a data directory)".into(),
    })?;
    Ok(data_dir.join("runs").join(run_id.to_string()).join("adapters"))
}

/// The trainer's settings from a run's configuration (the run's seed seeds the adapter and the
/// example order).
pub fn training_settings(config: &TrainingConfig, seed: u64) -> TrainingSettings {
    TrainingSettings {
        lora: LoraSettings {
            rank: config.rank as usize,
            alpha: config.alpha,
            dropout: config.dropout,
            ..LoraSettings::default()
        },
        learning_rate: config.learning_rate,
        epochs: config.epochs as usize,
        batch_size: config.batch_size as usize,
        micro_batch_size: config.micro_batch_size as usize,
        max_steps: config.max_steps.map(|steps| steps as usize),
        seed,
        ..TrainingSettings::default()
    }
}

/// The adapters a run trains: `(name, SFT records)`, joint or per culture with instances.
async fn training_sets(runner: &Runner, run: &Run) -> Result<Vec<(String, Vec<SftRecord>)>, RunnerError> {
    let training = &run.config.training;
    let mode = match training.mode {
        TrainingMode::Joint => ExportMode::Joint,
        TrainingMode::Specific => ExportMode::Specific,
    };
    let options = ExportOptions {
        run_id: run.run_id,
        format: ExportFormat::Alpaca,
        mode,
        accepted_only: training.accepted_only,
        country_code: None,
    };
    let files = export_run(&runner.store, &runner.survey, &options).await?;
    let mut sets = Vec::new();
    for file in files.into_iter().filter(|file| file.records > 0) {
        let name = file.country_code.clone().unwrap_or_else(|| JOINT_ADAPTER.to_string());
        let records = parse_sft_text(&file.contents, Path::new(&file.file_name))?;
        sets.push((name, records));
    }
    Ok(sets)
}

pub(super) async fn train_stage(runner: &Runner, run: &Run) -> Result<(), RunnerError> {
    let run_id = run.run_id;
    let root = adapters_dir(runner, run_id)?;
    let settings = training_settings(&run.config.training, run.config.seed);
    let sets = training_sets(runner, run).await?;
    if sets.is_empty() {
        let which = if run.config.training.accepted_only { "accepted instances" } else { "instances" };
        return Err(RunnerError::Config { run_id, message: format!("the run has no {which} to train on") });
    }
    let total: usize = sets.iter().map(|(_, records)| settings.total_steps(records.len())).sum();
    runner.emit(run_id, RunEvent::StageStarted { stage: Stage::Train, total: total as u64 }).await?;
    // Steps whose loss is already stored (a resumed stage): not reported twice.
    let reported = runner
        .store
        .events(run_id, 0)
        .await?
        .into_iter()
        .filter_map(|(_, event)| match event {
            RunEvent::Loss { step, .. } => Some(step),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut offset = 0u64;
    for (name, records) in sets {
        let examples = records.len();
        let out_dir = root.join(&name);
        let (sender, mut steps) = tokio::sync::mpsc::unbounded_channel();
        let request = TrainingRequest { records, settings: settings.clone(), out_dir: out_dir.clone() };
        let job = runner.engine.local("training")?.train(request, runner.cancel.clone(), move |progress| {
            let _ = sender.send(progress);
        })?;
        let outcome = tokio::task::spawn_blocking(move || job.wait());
        // The channel closes when the job ends and drops its progress callback.
        while let Some(progress) = steps.recv().await {
            let step = offset + progress.step as u64;
            if step > reported {
                runner.emit(run_id, RunEvent::Loss { step, loss: progress.loss }).await?;
                runner
                    .emit(run_id, RunEvent::Progress { stage: Stage::Train, done: step, total: total as u64 })
                    .await?;
            }
        }
        let outcome = outcome.await??;
        offset += outcome.state.total_steps as u64;
        let final_loss = outcome.state.losses.last().map_or(f64::NAN, |(_, loss)| *loss);
        let message = format!(
            "adapter {name}: {} steps on {examples} instances, last loss {final_loss:.4}, {:.0} tokens/s, in {}",
            outcome.state.step,
            outcome.state.tokens_per_second(),
            runner.store.shown_path(&out_dir)
        );
        runner.emit(run_id, RunEvent::Log { message }).await?;
    }
    runner.emit(run_id, RunEvent::StageFinished { stage: Stage::Train }).await
}
