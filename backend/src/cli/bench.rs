//! `culturespa bench score` and `culturespa bench train`: the engine measured, as JSON.

use std::path::PathBuf;

use culturespa::engine::batch::{BatchLimits, DEFAULT_MAX_BATCH_SEQUENCES, DEFAULT_MAX_BATCH_TOKENS};
use culturespa::engine::bench::{
    run_score_bench, run_train_bench, set_compute_threads, ScoreBenchOptions, TrainBenchOptions, DEFAULT_CEILING_ROWS,
};
use culturespa::engine::{DeviceKind, TrainingSettings};
use culturespa::load_bench::{run_api_bench, ApiBenchOptions};
use culturespa::server;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The instance list under load: a store of its own filled with --instances instances
    /// (copies of the released run), served on loopback, --clients clients at once; latencies as
    /// one JSON line on stdout.
    Api {
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
        instances: u32,
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
        clients: u64,
        #[arg(long, default_value_t = 12_800, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        requests: u64,
        /// Where the bench's store goes (a folder of its own, removed afterwards).
        #[arg(long, default_value_os_t = std::env::temp_dir())]
        work_dir: PathBuf,
    },
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

pub async fn run(globals: &Globals, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Api { instances, clients, requests, work_dir } => {
            let options =
                ApiBenchOptions { instances, clients: clients as usize, requests: requests as usize, seed: 7 };
            let summary = run_api_bench(&options, &work_dir, globals.model_source(server::DEFAULT_MODEL)?).await?;
            println!("{}", serde_json::to_string(&summary)?);
        }
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
