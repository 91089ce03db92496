//! `culturespa bench score`: the scoring workload of `shared/bench/make_prompts.py`, with the
//! output formats of the llama.cpp peer (`shared/bench/llamacpp_score.py`); `culturespa bench
//! train`: LoRA training throughput beside the prefill throughput of the same sequences.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::amx::{matmul_transposed_bf16, PackedBf16};
use super::batch::{BatchLimits, PlanSummary};
use super::cpu_kernels::matmul_transposed;
use super::error::{EngineError, Result};
use super::loader::DeviceKind;
use super::model::{LlamaModel, SequenceInput};
use super::schedule::single_thread_pools;
use super::scoring::ScorePrompt;
use super::train::{prepare_examples, read_sft_file, train, TrainingSettings};
use super::worker::{Engine, EngineOptions};

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct ScoreBenchOptions {
    pub model: PathBuf,
    pub prompts: PathBuf,
    pub threads: usize,
    /// Keep the first N prompts only (0 = all).
    pub limit: usize,
    pub device: DeviceKind,
    pub batch_limits: BatchLimits,
    /// Rows per GEMM at which to measure the f32 GEMM ceiling (none: not measured).
    pub ceiling_rows: Vec<usize>,
    /// Projections as bf16 GEMMs on AMX tiles ([`super::amx`]) instead of f32.
    pub bf16_projections: bool,
}

/// The GEMM sizes the ceiling is measured at by default: from small batches to twice the
/// default batch token limit (the best is the ceiling; caches make the middle ones fastest).
pub const DEFAULT_CEILING_ROWS: [usize; 6] = [256, 512, 640, 768, 1024, 2048];

/// One line of the prompts file (other fields are ignored).
#[derive(Debug, Deserialize)]
struct PromptLine {
    id: String,
    text: String,
    choices: Vec<String>,
}

/// One output line, as the peer writes it.
#[derive(Debug, Serialize)]
struct ScoreLine<'a> {
    id: &'a str,
    probs: &'a [f64],
    answer: &'a str,
}

/// The summary line, as the peer writes it, with what only this engine can tell: how its
/// batches looked, how busy its workers were, and the f32 GEMM ceiling of the model's own
/// projections on this machine, measured in the same run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchSummary {
    pub engine: String,
    pub prompts: usize,
    pub tokens_evaluated: usize,
    pub seconds: f64,
    pub prompts_per_s: f64,
    pub tokens_per_s: f64,
    pub threads: usize,
    /// How the projections ran: `f32`, `bf16-amx` (tiles), `bf16-avx512` (vectors, no AMX here)
    /// or `bf16-portable` (neither).
    pub projections: String,
    pub plans: PlanSummary,
    pub prefixes: usize,
    /// Worker busy time over wall time × workers while the batches ran.
    pub core_utilisation: f64,
    pub gemm_ceiling: Option<GemmCeiling>,
    /// The same GEMMs in bf16 on AMX tiles, when the projections ran so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bf16_gemm_ceiling: Option<GemmCeiling>,
    /// `tokens_per_s` over the f32 ceiling's tokens/s.
    pub fraction_of_ceiling: Option<f64>,
}

/// The rate of the model's projection GEMMs alone (q/k/v, o, gate/up, down of every layer, the
/// real weights, no attention or element-wise work) with one single-thread worker per thread, as
/// the scorer runs them: the most a prefill of those shapes can reach here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GemmCeiling {
    pub workers: usize,
    /// Rows per GEMM of the best of the sizes tried.
    pub rows: usize,
    pub gflops: f64,
    /// Tokens per second through the projections at that rate.
    pub tokens_per_s: f64,
    /// FLOPs of one token through every projection.
    pub flops_per_token: f64,
    /// GFLOP/s per size tried, `(rows, gflops)`.
    pub by_rows: Vec<(usize, f64)>,
}

/// Sets the worker threads of the tensor library; must run before its first use.
pub fn set_compute_threads(threads: usize) {
    let threads = threads.max(1).to_string();
    // Candle sizes its thread pools from these once, at first use.
    std::env::set_var("RAYON_NUM_THREADS", &threads);
    single_threaded_elementwise();
}

/// Runs candle's element-wise CPU ops on the calling thread (unless `CANDLE_NUM_THREADS` is set):
/// its element-wise pool spin-waits at a barrier, and beside the GEMM's rayon threads on few
/// cores that spinning took the cores the GEMMs needed (LoRA training on 2 cores ran 2.6× slower
/// with it). Call before the first tensor operation.
pub fn single_threaded_elementwise() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

pub fn read_prompts(path: &Path, limit: usize) -> Result<Vec<ScorePrompt>> {
    let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let mut prompts = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        if limit > 0 && prompts.len() >= limit {
            break;
        }
        let line = line.map_err(|e| EngineError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: PromptLine = serde_json::from_str(&line).map_err(|e| EngineError::InvalidPromptFile {
            path: path.to_path_buf(),
            line: index + 1,
            reason: e.to_string(),
        })?;
        prompts.push(ScorePrompt { id: parsed.id, text: parsed.text, choices: parsed.choices });
    }
    Ok(prompts)
}

/// Scores the prompts file, writing one JSON line per prompt to `out` as batches finish, and
/// returns the summary (the caller prints it last on stderr).
pub fn run_score_bench(options: &ScoreBenchOptions, out: impl Write + Send + 'static) -> Result<BenchSummary> {
    let prompts = read_prompts(&options.prompts, options.limit)?;
    let (gemm_ceiling, bf16_gemm_ceiling) = if options.ceiling_rows.is_empty() {
        (None, None)
    } else {
        let loaded = super::loader::load_model(&options.model, options.device)?;
        let workers = options.batch_limits.concurrent_batches.unwrap_or(options.threads).max(1);
        let f32_ceiling = measure_gemm_ceiling(&loaded.model, workers, &options.ceiling_rows, false)?;
        let bf16_ceiling = match options.bf16_projections {
            true => measure_gemm_ceiling(&loaded.model, workers, &options.ceiling_rows, true)?,
            false => None,
        };
        (f32_ceiling, bf16_ceiling)
    };
    let engine = Engine::start(EngineOptions {
        device: options.device,
        batch_limits: options.batch_limits,
        bf16_projections: options.bf16_projections,
        ..EngineOptions::new(options.model.clone())
    })?;
    let ids: Vec<String> = prompts.iter().map(|p| p.id.clone()).collect();
    let count = prompts.len();
    let out = Arc::new(Mutex::new(out));
    let write_error: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let (sink, error_slot) = (Arc::clone(&out), Arc::clone(&write_error));
    let started = Instant::now();
    let job = engine.score(prompts, move |progress| {
        let Ok(mut out) = sink.lock() else { return };
        for (offset, scores) in progress.scores.iter().enumerate() {
            let line =
                ScoreLine { id: &ids[progress.first_index + offset], probs: &scores.probs, answer: &scores.answer };
            let written =
                serde_json::to_string(&line).map_err(std::io::Error::other).and_then(|text| writeln!(out, "{text}"));
            if let Err(error) = written {
                if let Ok(mut slot) = error_slot.lock() {
                    slot.get_or_insert(error);
                }
            }
        }
        let _ = out.flush();
    })?;
    let outcome = job.wait()?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = write_error.lock().ok().and_then(|mut slot| slot.take()) {
        return Err(EngineError::io("standard output", error));
    }
    let tokens_per_s = outcome.counters.tokens_evaluated as f64 / seconds;
    let fraction_of_ceiling = gemm_ceiling.as_ref().map(|ceiling| round_to(tokens_per_s / ceiling.tokens_per_s, 3));
    Ok(BenchSummary {
        engine: "culturespa".into(),
        prompts: count,
        tokens_evaluated: outcome.counters.tokens_evaluated,
        seconds: round_to(seconds, 3),
        prompts_per_s: round_to(count as f64 / seconds, 3),
        tokens_per_s: round_to(tokens_per_s, 1),
        threads: options.threads,
        projections: match options.bf16_projections {
            false => "f32",
            true => super::amx::kernel().name(),
        }
        .into(),
        plans: outcome.report.plans,
        prefixes: outcome.report.prefixes,
        core_utilisation: round_to(outcome.report.schedule.utilisation(), 3),
        gemm_ceiling,
        bf16_gemm_ceiling,
        fraction_of_ceiling,
    })
}

/// Measures [`GemmCeiling`] for `model` at each of `rows_tried`: every worker pushes that many
/// rows through all the projections of all layers at once (after one warm-up pass that pages in
/// the weights).
/// With `bf16`, the same GEMMs as bf16 products on AMX tiles ([`super::amx`]) from weights packed
/// beforehand.
pub fn measure_gemm_ceiling(
    model: &LlamaModel,
    workers: usize,
    rows_tried: &[usize],
    bf16: bool,
) -> Result<Option<GemmCeiling>> {
    let slices = model.projection_slices()?;
    let projections: Vec<(&[f32], usize)> = slices.iter().map(|(slice, k)| (slice.data(), *k)).collect();
    if projections.is_empty() || rows_tried.is_empty() {
        return Ok(None);
    }
    let packed: Vec<PackedBf16> = if bf16 {
        projections.iter().map(|(weight, k)| PackedBf16::pack(weight, weight.len() / k, *k)).collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let flops_per_token: f64 = projections.iter().map(|(weight, _)| 2.0 * weight.len() as f64).sum();
    let widest_in = projections.iter().map(|(_, k)| *k).max().unwrap_or(0);
    let widest_out = projections.iter().map(|(weight, k)| weight.len() / k).max().unwrap_or(0);
    let pools = single_thread_pools(workers)?;
    let mut by_rows = Vec::new();
    for &rows in rows_tried {
        let pass = |pool: &rayon::ThreadPool| -> Result<()> {
            pool.install(|| {
                let input: Vec<f32> = (0..rows * widest_in).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect();
                let mut output = vec![0.0f32; rows * widest_out];
                for (index, (weight, k)) in projections.iter().enumerate() {
                    let (output, input) = (&mut output[..rows * (weight.len() / k)], &input[..rows * k]);
                    match packed.get(index) {
                        Some(packed) => matmul_transposed_bf16(output, false, input, packed)?,
                        None => matmul_transposed(output, false, input, weight, *k)?,
                    }
                }
                Ok(())
            })
        };
        let run_all = || -> Result<f64> {
            let started = Instant::now();
            std::thread::scope(|scope| {
                let handles: Vec<_> = pools.iter().map(|pool| scope.spawn(|| pass(pool))).collect();
                handles.into_iter().try_for_each(|h| h.join().unwrap_or(Err(EngineError::WorkerPanicked)))
            })?;
            Ok(started.elapsed().as_secs_f64())
        };
        if by_rows.is_empty() {
            run_all()?; // warm-up: page in the weights
        }
        let seconds = run_all()?;
        let gflops = workers as f64 * rows as f64 * flops_per_token / seconds / 1e9;
        by_rows.push((rows, round_to(gflops, 1)));
    }
    let (rows, gflops) = by_rows.iter().copied().fold((0, 0.0), |best, next| if next.1 > best.1 { next } else { best });
    Ok(Some(GemmCeiling {
        workers,
        rows,
        gflops,
        tokens_per_s: round_to(gflops * 1e9 / flops_per_token, 1),
        flops_per_token,
        by_rows,
    }))
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Settings of a training benchmark.
#[derive(Debug, Clone)]
pub struct TrainBenchOptions {
    pub model: PathBuf,
    /// An SFT file (alpaca or messages, JSON lines or a JSON array).
    pub data: PathBuf,
    pub steps: usize,
    /// Timed repetitions of each side after one untimed warm-up; the median is reported.
    pub repeats: usize,
    pub threads: usize,
    pub device: DeviceKind,
    pub settings: TrainingSettings,
    /// Also time the same training through candle's autograd (the path before the fused one).
    pub with_autograd: bool,
}

/// Training throughput next to the engine's prefill throughput on the same token sequences, in
/// one process, each after a warm-up and as the median of repeats: forward + backward without
/// weight gradients costs about two forwards, so about 0.45 of the prefill rate is the limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainBenchSummary {
    pub examples: usize,
    pub steps: usize,
    pub repeats: usize,
    /// `fused` (the CPU training pass) or `autograd` (candle's).
    pub gradient_path: String,
    /// Tokens through forward + backward per repeat.
    pub train_tokens: usize,
    pub train_seconds: f64,
    pub train_tokens_per_s: f64,
    /// Every repeat's tokens/s.
    pub train_tokens_per_s_runs: Vec<f64>,
    /// The same sequences through the inference forward pass (the fused CPU kernels in release
    /// builds), eight per pass, without prefix sharing.
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub prefill_tokens_per_s_runs: Vec<f64>,
    pub train_to_prefill: f64,
    /// The same training through candle's autograd, when asked for, and the fused path's speed-up.
    pub autograd_tokens_per_s_runs: Option<Vec<f64>>,
    pub fused_over_autograd: Option<f64>,
    pub threads: usize,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

/// Times `steps` optimizer steps on the first examples of the data and the inference forward
/// pass over the same sequences, alternating, after one untimed round of each. The adapters go
/// to temporary folders, removed after.
pub fn run_train_bench(options: &TrainBenchOptions) -> Result<TrainBenchSummary> {
    let loaded = super::loader::load_model(&options.model, options.device)?;
    let mut records = read_sft_file(&options.data)?;
    records.truncate(options.steps * options.settings.batch_size);
    let examples = prepare_examples(&records, &loaded)?;
    let settings = TrainingSettings { max_steps: Some(options.steps), epochs: 1, ..options.settings.clone() };
    // The engine's own batching of prompts for scoring: several sequences per forward pass.
    const PREFILL_SEQUENCES: usize = 8;
    let sequences: Vec<Vec<u32>> = examples
        .iter()
        .map(|example| {
            let mut tokens = example.prompt_tokens.clone();
            tokens.extend_from_slice(&example.target_tokens);
            tokens.pop();
            tokens
        })
        .collect();
    let prefill_tokens: usize = sequences.iter().map(Vec::len).sum();
    let prefill = || -> Result<f64> {
        let started = Instant::now();
        for group in sequences.chunks(PREFILL_SEQUENCES) {
            let inputs: Vec<SequenceInput> =
                group.iter().map(|tokens| SequenceInput { tokens, branch_tokens: &[] }).collect();
            loaded.model.forward(None, &inputs, false)?;
        }
        Ok(started.elapsed().as_secs_f64())
    };
    let mut autograd_model = loaded.model.clone();
    autograd_model.set_cpu_kernels(false);
    let mut repeat_index = 0;
    let mut training = |model: &LlamaModel| -> Result<(f64, usize, usize)> {
        repeat_index += 1;
        let out_dir =
            std::env::temp_dir().join(format!("culturespa-train-bench-{}-{repeat_index}", std::process::id()));
        let outcome = train(model, &examples, &settings, &out_dir, None, |_| {}, || false);
        let _ = std::fs::remove_dir_all(&out_dir);
        let state = outcome?.state;
        Ok((state.seconds, state.tokens_processed, state.step))
    };
    prefill()?;
    training(&loaded.model)?;
    let repeats = options.repeats.max(1);
    let (mut prefill_runs, mut train_runs, mut autograd_runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut train_tokens, mut steps, mut train_seconds, mut prefill_seconds) = (0, 0, Vec::new(), Vec::new());
    for _ in 0..repeats {
        let seconds = prefill()?;
        prefill_seconds.push(seconds);
        prefill_runs.push(round_to(prefill_tokens as f64 / seconds, 1));
        let (seconds, tokens, step) = training(&loaded.model)?;
        (train_tokens, steps) = (tokens, step);
        train_seconds.push(seconds);
        train_runs.push(round_to(tokens as f64 / seconds, 1));
        if options.with_autograd && loaded.model.uses_cpu_kernels() {
            let (seconds, tokens, _) = training(&autograd_model)?;
            autograd_runs.push(round_to(tokens as f64 / seconds, 1));
        }
    }
    let train_tokens_per_s = median(&train_runs);
    let prefill_tokens_per_s = median(&prefill_runs);
    let gradient_path = if loaded.model.uses_cpu_kernels() { "fused" } else { "autograd" };
    Ok(TrainBenchSummary {
        examples: examples.len(),
        steps,
        repeats,
        gradient_path: gradient_path.into(),
        train_tokens,
        train_seconds: round_to(median(&train_seconds), 3),
        train_tokens_per_s,
        train_tokens_per_s_runs: train_runs,
        prefill_tokens,
        prefill_seconds: round_to(median(&prefill_seconds), 3),
        prefill_tokens_per_s,
        prefill_tokens_per_s_runs: prefill_runs,
        train_to_prefill: round_to(train_tokens_per_s / prefill_tokens_per_s, 3),
        fused_over_autograd: (!autograd_runs.is_empty())
            .then(|| round_to(train_tokens_per_s / median(&autograd_runs), 2)),
        autograd_tokens_per_s_runs: (!autograd_runs.is_empty()).then_some(autograd_runs),
        threads: options.threads,
    })
}
