//! `culturespa bench score`: the scoring workload of `shared/bench/make_prompts.py`, with the
//! output formats of the llama.cpp peer (`shared/bench/llamacpp_score.py`); `culturespa bench
//! train`: LoRA training throughput beside the prefill throughput of the same sequences.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::batch::BatchLimits;
use super::error::{EngineError, Result};
use super::loader::DeviceKind;
use super::model::SequenceInput;
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
}

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

/// The summary line, as the peer writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchSummary {
    pub engine: String,
    pub prompts: usize,
    pub tokens_evaluated: usize,
    pub seconds: f64,
    pub prompts_per_s: f64,
    pub tokens_per_s: f64,
    pub threads: usize,
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
    let engine = Engine::start(EngineOptions {
        model_path: options.model.clone(),
        device: options.device,
        batch_limits: options.batch_limits,
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
    Ok(BenchSummary {
        engine: "culturespa".into(),
        prompts: count,
        tokens_evaluated: outcome.counters.tokens_evaluated,
        seconds: round_to(seconds, 3),
        prompts_per_s: round_to(count as f64 / seconds, 3),
        tokens_per_s: round_to(outcome.counters.tokens_evaluated as f64 / seconds, 1),
        threads: options.threads,
    })
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
    pub threads: usize,
    pub device: DeviceKind,
    pub settings: TrainingSettings,
}

/// Training throughput next to the engine's prefill throughput on the same token sequences, in
/// one process: a forward plus backward pass costs about three forwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainBenchSummary {
    pub examples: usize,
    pub steps: usize,
    /// Tokens through forward + backward.
    pub train_tokens: usize,
    pub train_seconds: f64,
    pub train_tokens_per_s: f64,
    /// The same sequences through the inference forward pass (the fused CPU kernels in release
    /// builds), eight per pass, without prefix sharing.
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub train_to_prefill: f64,
    pub threads: usize,
}

/// Runs `steps` optimizer steps on the first examples of the data, after timing the inference
/// forward pass over the same sequences. The adapter goes to a temporary folder, removed after.
pub fn run_train_bench(options: &TrainBenchOptions) -> Result<TrainBenchSummary> {
    let loaded = super::loader::load_model(&options.model, options.device)?;
    let mut records = read_sft_file(&options.data)?;
    records.truncate(options.steps * options.settings.batch_size);
    let examples = prepare_examples(&records, &loaded)?;
    let settings = TrainingSettings { max_steps: Some(options.steps), epochs: 1, ..options.settings.clone() };

    let started = Instant::now();
    let mut prefill_tokens = 0;
    let order: Vec<usize> = (0..examples.len()).collect();
    // The engine's own batching of prompts for scoring: several sequences per forward pass.
    const PREFILL_SEQUENCES: usize = 8;
    for micro in order.chunks(PREFILL_SEQUENCES) {
        let sequences: Vec<Vec<u32>> = micro
            .iter()
            .map(|&i| {
                let mut tokens = examples[i].prompt_tokens.clone();
                tokens.extend_from_slice(&examples[i].target_tokens);
                tokens.pop();
                tokens
            })
            .collect();
        let inputs: Vec<SequenceInput> =
            sequences.iter().map(|tokens| SequenceInput { tokens, branch_tokens: &[] }).collect();
        loaded.model.forward(None, &inputs, false)?;
        prefill_tokens += sequences.iter().map(Vec::len).sum::<usize>();
    }
    let prefill_seconds = started.elapsed().as_secs_f64();

    let out_dir = std::env::temp_dir().join(format!("culturespa-train-bench-{}", std::process::id()));
    let outcome = train(&loaded.model, &examples, &settings, &out_dir, None, |_| {}, || false);
    let _ = std::fs::remove_dir_all(&out_dir);
    let state = outcome?.state;
    let train_tokens_per_s = state.tokens_per_second();
    let prefill_tokens_per_s = prefill_tokens as f64 / prefill_seconds;
    Ok(TrainBenchSummary {
        examples: examples.len(),
        steps: state.step,
        train_tokens: state.tokens_processed,
        train_seconds: round_to(state.seconds, 3),
        train_tokens_per_s: round_to(train_tokens_per_s, 1),
        prefill_tokens,
        prefill_seconds: round_to(prefill_seconds, 3),
        prefill_tokens_per_s: round_to(prefill_tokens_per_s, 1),
        train_to_prefill: round_to(train_tokens_per_s / prefill_tokens_per_s, 3),
        threads: options.threads,
    })
}
