//! `culturespa bench score` and `culturespa bench train`: the engine measured, as JSON.

use std::path::PathBuf;

use culturespa::engine::batch::{BatchLimits, DEFAULT_MAX_BATCH_SEQUENCES, DEFAULT_MAX_BATCH_TOKENS};
use culturespa::engine::bench::{
    run_score_bench, run_train_bench, set_compute_threads, ScoreBenchOptions, TrainBenchOptions, DEFAULT_CEILING_ROWS,
};
use culturespa::engine::{DeviceKind, TrainingSettings};
use culturespa::server;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Score a make_prompts.py JSONL: one {"id","probs","answer"} line per prompt on stdout, a
    /// summary JSON as the last line on stderr (the formats of shared/bench/llamacpp_score.py).
    Score {
        /// A model of the catalogue or the models folder, a GGUF file or a Hugging Face folder.
        #[arg(long)]
        model: String,
        #[arg(long)]
        prompts: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Score the first N prompts only (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// cpu (f32) or cuda (bf16; needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        /// Tokens per forward pass beyond the shared prefix.
        #[arg(long, default_value_t = DEFAULT_MAX_BATCH_TOKENS)]
        batch_tokens: usize,
        /// Prompts per forward pass.
        #[arg(long, default_value_t = DEFAULT_MAX_BATCH_SEQUENCES)]
        batch_prompts: usize,
        /// Skip measuring the f32 GEMM ceiling of the model's projections (done before scoring).
        #[arg(long)]
        no_ceiling: bool,
    },
    /// LoRA training throughput (tokens/s) beside the prefill throughput of the same sequences,
    /// as one JSON line on stdout.
    Train {
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
        /// An SFT file (e.g. from `culturespa export`).
        #[arg(long)]
        data: PathBuf,
        /// Optimizer steps to time.
        #[arg(long, default_value_t = 4)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        #[arg(long, default_value_t = 4)]
        micro_batch_size: usize,
        /// Timed repetitions after one untimed warm-up (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also time the same training through candle's autograd, side by side.
        #[arg(long)]
        with_autograd: bool,
    },
}

pub fn run(globals: &Globals, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Score { model, prompts, threads, limit, device, batch_tokens, batch_prompts, no_ceiling } => {
            set_compute_threads(threads);
            let options = ScoreBenchOptions {
                model: globals.resolve_model(&model)?,
                prompts,
                threads,
                limit,
                device,
                batch_limits: BatchLimits {
                    max_tokens: batch_tokens,
                    max_sequences: batch_prompts,
                    ..BatchLimits::default()
                },
                ceiling_rows: if no_ceiling { Vec::new() } else { DEFAULT_CEILING_ROWS.to_vec() },
                bf16_projections: globals.amx,
            };
            let summary = run_score_bench(&options, std::io::stdout())?;
            eprintln!("{}", serde_json::to_string(&summary)?);
        }
        BenchCommand::Train {
            model,
            data,
            steps,
            threads,
            device,
            batch_size,
            micro_batch_size,
            repeats,
            with_autograd,
        } => {
            set_compute_threads(threads);
            let settings = TrainingSettings { batch_size, micro_batch_size, ..TrainingSettings::default() };
            let summary = run_train_bench(&TrainBenchOptions {
                model: globals.resolve_model(&model)?,
                data,
                steps,
                repeats,
                threads,
                device,
                settings,
                with_autograd,
            })?;
            println!("{}", serde_json::to_string(&summary)?);
        }
    }
    Ok(())
}
