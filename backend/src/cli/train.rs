//! `culturespa train` (a LoRA adapter from an SFT file) and `culturespa probe` (general ability
//! with and without adapters).

use std::path::{Path, PathBuf};

use anyhow::Context;
use culturespa::analysis;
use culturespa::engine::bench::set_compute_threads;
use culturespa::engine::train::{prepare_examples, read_sft_file};
use culturespa::engine::worker::base_model_id;
use culturespa::engine::{DeviceKind, LoraSettings, TrainingSettings};
use culturespa::models::upstream_id_of;
use culturespa::server;

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A GGUF file or a Hugging Face model folder.
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
    /// JSON lines or a JSON array of records.
    #[arg(long)]
    data: PathBuf,
    /// The adapter folder (created; checkpoints go to its checkpoints/ while training).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    training: TrainingArgs,
    /// Compute threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// cpu (f32) or cuda (bf16; needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// The Hugging Face id the adapter records as its base model (`base_model_name_or_path`);
    /// by default the catalogue's id of the model, else the id in the model's own metadata.
    #[arg(long)]
    base_model_id: Option<String>,
}

/// LoRA and optimizer settings (the paper's by default).
#[derive(Debug, clap::Args)]
struct TrainingArgs {
    /// Stop after this many optimizer steps.
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, default_value_t = 8)]
    rank: usize,
    #[arg(long, default_value_t = 16.0)]
    alpha: f64,
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Examples per optimizer step (the effective batch).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Examples per forward/backward pass.
    #[arg(long, default_value_t = 4)]
    micro_batch_size: usize,
    #[arg(long, default_value_t = shared::DEFAULT_SEED)]
    seed: u64,
}

impl TrainingArgs {
    fn settings(&self) -> TrainingSettings {
        TrainingSettings {
            lora: LoraSettings { rank: self.rank, alpha: self.alpha, dropout: self.dropout, ..LoraSettings::default() },
            learning_rate: self.learning_rate,
            epochs: self.epochs,
            batch_size: self.batch_size,
            micro_batch_size: self.micro_batch_size,
            max_steps: self.max_steps,
            seed: self.seed,
            ..TrainingSettings::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
    /// An adapter folder (PEFT layout); repeat for several.
    #[arg(long)]
    adapter: Vec<PathBuf>,
    /// Leave out the base model's row: only the adapters are probed (their base's row is
    /// usually known already).
    #[arg(long, requires = "adapter")]
    no_base: bool,
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
}

/// `culturespa train`: a progress bar per optimizer step, then a JSON summary on stdout.
pub fn train(globals: &Globals, args: TrainArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        set_compute_threads(threads);
    }
    let model = globals.resolve_model(&args.model)?;
    let settings = args.training.settings();
    settings.validate()?;
    let records = read_sft_file(&args.data)?;
    let loaded = culturespa::engine::load_model(&model, args.device)
        .with_context(|| format!("loading the model {}", model.display()))?;
    let examples = prepare_examples(&records, &loaded)?;
    let total = settings.total_steps(examples.len());
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("train {bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let out: &Path = &args.out;
    let outcome = culturespa::engine::train(
        &loaded.model,
        &examples,
        &settings,
        out,
        args.base_model_id.clone().or_else(|| upstream_id_of(&model)).or_else(|| base_model_id(&loaded)),
        |progress| {
            bar.set_position(progress.step as u64);
            bar.set_message(format!("loss {:.4}  lr {:.2e}", progress.loss, progress.learning_rate));
        },
        || false,
    )?;
    bar.finish_and_clear();
    let state = &outcome.state;
    let summary = serde_json::json!({
        "out": out.display().to_string(),
        "examples": examples.len(),
        "steps": state.step,
        "total_steps": state.total_steps,
        "resumed_from": outcome.resumed_from,
        "first_loss": state.losses.first().map(|(_, loss)| loss),
        "last_loss": state.losses.last().map(|(_, loss)| loss),
        "tokens_per_s": (state.tokens_per_second() * 10.0).round() / 10.0,
        "seconds": (state.seconds * 1000.0).round() / 1000.0,
    });
    println!("{summary}");
    Ok(())
}

pub fn probe(globals: &Globals, args: ProbeArgs) -> anyhow::Result<()> {
    for report in
        analysis::probe_model(&globals.resolve_model(&args.model)?, &args.adapter, args.device, !args.no_base)?
    {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
