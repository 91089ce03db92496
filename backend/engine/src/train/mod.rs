//! LoRA fine-tuning: frozen base weights, the adapter's `A`/`B` as the only trained values, loss on
//! the answer tokens only, AdamW with a cosine schedule and linear warmup (Hugging Face's
//! `get_cosine_schedule_with_warmup`), gradient accumulation to an effective batch, global
//! gradient-norm clipping, and checkpoints from which a killed training resumes to the same bits.
//!
//! Gradients come from one of two paths that compute the same function: on the CPU with the fused
//! kernels, [`fused`]'s forward pass that keeps what its hand-written backward pass needs (packed
//! sequences, both cores); elsewhere candle's autograd through [`loss::answer_loss`].

mod data;
pub mod fused;
mod fused_parts;
mod kernels;
mod loss;
mod optimizer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::error::{EngineError, InvalidSetting, Result};
use super::lora::{write_atomically, LoraAdapter, LoraSettings, TrainableAdapter, ADAPTER_WEIGHTS_FILE};
use super::model::LlamaModel;
use super::rng::SeededRng;

pub use data::{parse_sft_text, prepare_example, prepare_examples, read_sft_file, SftRecord, TrainingExample};
pub use loss::answer_loss;
pub use optimizer::AdamW;

/// The trainer's state file, in the output folder (final) and in each checkpoint.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const CHECKPOINTS_DIR: &str = "checkpoints";

/// How to train (the paper's: rank 8, alpha 16, dropout 0, lr 1e-4, cosine, warmup 0.1, one
/// epoch, effective batch 128).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSettings {
    pub lora: LoraSettings,
    pub learning_rate: f64,
    pub warmup_ratio: f64,
    pub epochs: usize,
    /// Examples per optimizer step (the effective batch).
    pub batch_size: usize,
    /// Examples per forward/backward pass; gradients accumulate over a step's micro-batches.
    pub micro_batch_size: usize,
    /// Stops after this many optimizer steps (the schedule then spans them, as in Hugging Face).
    pub max_steps: Option<usize>,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (Hugging Face's default 1.0); `None` disables.
    pub max_grad_norm: Option<f64>,
    /// Write a checkpoint every this many optimizer steps.
    pub checkpoint_every: usize,
    pub seed: u64,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        TrainingSettings {
            lora: LoraSettings::default(),
            learning_rate: 1e-4,
            warmup_ratio: 0.1,
            epochs: 1,
            batch_size: 128,
            micro_batch_size: 4,
            max_steps: None,
            weight_decay: 0.0,
            max_grad_norm: Some(1.0),
            checkpoint_every: 10,
            seed: 42,
        }
    }
}

impl TrainingSettings {
    /// The settings' ranges (the adapter's too), naming the field that is out of its range.
    pub fn check(&self) -> std::result::Result<(), InvalidSetting> {
        self.lora.check()?;
        let invalid = |field, reason: String| Err(InvalidSetting::new(field, reason));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid("learning_rate", format!("{} is not a positive number", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return invalid("warmup_ratio", format!("{} is not in [0, 1)", self.warmup_ratio));
        }
        for (field, value) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("micro_batch_size", self.micro_batch_size),
            ("checkpoint_every", self.checkpoint_every),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        if self.max_steps == Some(0) {
            return invalid("max_steps", "must be at least 1".into());
        }
        if let Some(norm) = self.max_grad_norm.filter(|norm| !(norm.is_finite() && *norm > 0.0)) {
            return invalid("max_grad_norm", format!("{norm} is not a positive number"));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|error| EngineError::InvalidTraining(error.to_string()))
    }

    /// Optimizer steps for `examples` examples.
    pub fn total_steps(&self, examples: usize) -> usize {
        let per_epoch = examples.div_ceil(self.batch_size);
        let all = per_epoch * self.epochs;
        self.max_steps.map_or(all, |max| max.min(all))
    }

    /// The learning rate of optimizer step `step` (0-based) of `total`: linear warmup from 0, then
    /// a half cosine to 0.
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let warmup = (total as f64 * self.warmup_ratio).ceil() as usize;
        if step < warmup {
            return self.learning_rate * step as f64 / warmup.max(1) as f64;
        }
        let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
        self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// Progress after each optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProgress {
    pub step: usize,
    pub total_steps: usize,
    /// Mean cross-entropy per answer token over the step's examples.
    pub loss: f64,
    pub learning_rate: f64,
    pub tokens_processed: usize,
    pub seconds: f64,
}

/// What the trainer writes next to the adapter (and into each checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub step: usize,
    pub total_steps: usize,
    pub examples: usize,
    pub settings: TrainingSettings,
    /// A hash of the examples' tokens: a checkpoint resumes only on the same data.
    pub data_fingerprint: String,
    /// `(step, loss)` per optimizer step, 1-based steps.
    pub losses: Vec<(usize, f64)>,
    /// Tokens through forward + backward in this training (all sessions), and their seconds.
    pub tokens_processed: usize,
    pub seconds: f64,
    pub complete: bool,
}

impl TrainerState {
    pub fn tokens_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.tokens_processed as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The result of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingOutcome {
    pub state: TrainerState,
    /// The step a checkpoint resumed from, if any.
    pub resumed_from: Option<usize>,
    /// The adapter folder (PEFT layout).
    pub out_dir: PathBuf,
}

/// A hash (FNV-1a, 64 bits) of the examples' tokens, in order.
pub fn data_fingerprint(examples: &[TrainingExample]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |value: u64| {
        for byte in value.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for example in examples {
        feed(example.prompt_tokens.len() as u64);
        example.prompt_tokens.iter().for_each(|&t| feed(u64::from(t)));
        feed(example.target_tokens.len() as u64);
        example.target_tokens.iter().for_each(|&t| feed(u64::from(t)));
    }
    format!("{hash:016x}")
}

/// The example order of `epoch`: a seeded shuffle (Fisher–Yates).
fn epoch_order(examples: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = SeededRng::new(seed ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut order: Vec<usize> = (0..examples).collect();
    for i in (1..examples).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The examples of optimizer step `step`.
fn step_examples(settings: &TrainingSettings, examples: usize, step: usize) -> Vec<usize> {
    let per_epoch = examples.div_ceil(settings.batch_size);
    let (epoch, index) = (step / per_epoch, step % per_epoch);
    let order = epoch_order(examples, settings.seed, epoch);
    let start = index * settings.batch_size;
    order[start..(start + settings.batch_size).min(examples)].to_vec()
}

/// Trains an adapter for `model` on `examples` and writes it into `out_dir` in PEFT's layout with
/// [`TRAINER_STATE_FILE`]. Checkpoints go to `out_dir/checkpoints/step-N/`; a call on the same
/// folder, settings and data continues from the newest one (and returns at once if the adapter
/// is complete). `on_step` runs after each optimizer step; `cancelled` is checked between
/// micro-batches (a cancelled training keeps its last checkpoint).
pub fn train(
    model: &LlamaModel,
    examples: &[TrainingExample],
    settings: &TrainingSettings,
    out_dir: &Path,
    base_model: Option<String>,
    mut on_step: impl FnMut(&TrainingProgress),
    cancelled: impl Fn() -> bool,
) -> Result<TrainingOutcome> {
    settings.validate()?;
    if examples.is_empty() {
        return Err(EngineError::InvalidTraining("the training set is empty".into()));
    }
    let fingerprint = data_fingerprint(examples);
    let total_steps = settings.total_steps(examples.len());
    let num_layers = model.config().num_layers;
    let matches = |state: &TrainerState| state.settings == *settings && state.data_fingerprint == fingerprint;

    // A finished adapter for the same settings and data: nothing to do.
    if let Some(state) = read_state(&out_dir.join(TRAINER_STATE_FILE))? {
        if state.complete && matches(&state) && out_dir.join(ADAPTER_WEIGHTS_FILE).exists() {
            return Ok(TrainingOutcome { state, resumed_from: None, out_dir: out_dir.to_path_buf() });
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| EngineError::io(out_dir, e))?;
    let checkpoints = out_dir.join(CHECKPOINTS_DIR);
    let (adapter, mut optimizer, mut state, resumed_from) = match latest_checkpoint(&checkpoints)? {
        Some(dir) => {
            let state = read_state(&dir.join(TRAINER_STATE_FILE))?.ok_or_else(|| {
                EngineError::InvalidTraining(format!("checkpoint {} has no {TRAINER_STATE_FILE}", dir.display()))
            })?;
            if !matches(&state) {
                return Err(EngineError::InvalidTraining(format!(
                    "the checkpoint in {} was made with other settings or data; remove {} or train into another folder",
                    dir.display(),
                    checkpoints.display()
                )));
            }
            let saved = LoraAdapter::load(&dir, model.device())?;
            saved.check_fits(model.config(), Some(&dir))?;
            let adapter = TrainableAdapter::from_adapter(&saved)?;
            let optimizer = load_optimizer(&dir.join(OPTIMIZER_FILE), &adapter, &state, settings)?;
            let step = state.step;
            (adapter, optimizer, state, Some(step))
        }
        None => {
            let adapter = TrainableAdapter::init(model.config(), model.device(), settings.lora.clone(), settings.seed)?;
            let optimizer = AdamW::new(&parameters(&adapter), settings.weight_decay)?;
            let state = TrainerState {
                step: 0,
                total_steps,
                examples: examples.len(),
                settings: settings.clone(),
                data_fingerprint: fingerprint.clone(),
                losses: Vec::new(),
                tokens_processed: 0,
                seconds: 0.0,
                complete: false,
            };
            (adapter, optimizer, state, None)
        }
    };
    let variables: Vec<candle_core::Var> =
        adapter.vars.iter().flat_map(|(_, _, a, b)| [a.clone(), b.clone()]).collect();
    let session_start = Instant::now();
    let seconds_before = state.seconds;
    let fused_path = model.uses_cpu_kernels();

    for step in state.step..total_steps {
        let mut chosen = step_examples(settings, examples.len(), step);
        // Similar lengths share a micro-batch: less padding; the step's gradient is the same sum.
        chosen.sort_by_key(|&i| (examples[i].prompt_tokens.len() + examples[i].target_tokens.len(), i));
        let step_tokens: usize = chosen.iter().map(|&i| examples[i].target_tokens.len()).sum();
        let mut accumulated: Option<Vec<Tensor>> = None;
        let mut loss_sum = 0.0;
        for (micro_index, micro) in chosen.chunks(settings.micro_batch_size).enumerate() {
            if cancelled() {
                return Err(EngineError::Cancelled);
            }
            let batch: Vec<&TrainingExample> = micro.iter().map(|&i| &examples[i]).collect();
            // Dropout masks are drawn from a seed of (run seed, step, micro-batch): reproducible on resume.
            let dropout_seed = settings.seed ^ ((step as u64) << 20) ^ micro_index as u64;
            let (loss, grads) =
                micro_batch_gradients(model, &adapter, &variables, &batch, step_tokens, dropout_seed, fused_path)?;
            loss_sum += loss;
            accumulated = Some(match accumulated {
                None => grads,
                Some(sums) => sums.iter().zip(&grads).map(|(s, g)| Ok(s.add(g)?)).collect::<Result<_>>()?,
            });
            state.tokens_processed +=
                batch.iter().map(|e| e.prompt_tokens.len() + e.target_tokens.len() - 1).sum::<usize>();
        }
        let mut grads = accumulated.unwrap_or_default();
        if let Some(max_norm) = settings.max_grad_norm {
            let squared: f64 = grads
                .iter()
                .map(|g| Ok(g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?))
                .collect::<Result<Vec<f64>>>()?
                .iter()
                .sum();
            let norm = squared.sqrt();
            if norm > max_norm {
                let factor = max_norm / (norm + 1e-6);
                grads = grads.iter().map(|g| Ok((g * factor)?)).collect::<Result<_>>()?;
            }
        }
        let learning_rate = settings.learning_rate_at(step, total_steps);
        optimizer.update(&variables, &grads, learning_rate)?;
        state.step = step + 1;
        state.losses.push((step + 1, loss_sum));
        state.seconds = seconds_before + session_start.elapsed().as_secs_f64();
        on_step(&TrainingProgress {
            step: step + 1,
            total_steps,
            loss: loss_sum,
            learning_rate,
            tokens_processed: state.tokens_processed,
            seconds: state.seconds,
        });
        if state.step % settings.checkpoint_every == 0 && state.step < total_steps {
            save_checkpoint(&checkpoints, &adapter, &optimizer, &state, num_layers, base_model.clone())?;
        }
    }

    state.complete = true;
    state.seconds = seconds_before + session_start.elapsed().as_secs_f64();
    adapter.snapshot(num_layers, base_model)?.save(out_dir)?;
    write_state(&out_dir.join(TRAINER_STATE_FILE), &state)?;
    if checkpoints.exists() {
        std::fs::remove_dir_all(&checkpoints).map_err(|e| EngineError::io(&checkpoints, e))?;
    }
    Ok(TrainingOutcome { state, resumed_from, out_dir: out_dir.to_path_buf() })
}

/// The loss of a micro-batch over the step's answer tokens and its gradients (in `variables`'
/// order): through the fused CPU pass, or candle's autograd.
fn micro_batch_gradients(
    model: &LlamaModel,
    adapter: &TrainableAdapter,
    variables: &[candle_core::Var],
    batch: &[&TrainingExample],
    step_tokens: usize,
    dropout_seed: u64,
    fused_path: bool,
) -> Result<(f64, Vec<Tensor>)> {
    if fused_path {
        let pass = fused::loss_and_gradients(model, adapter, batch, 1.0 / step_tokens as f64, Some(dropout_seed))?;
        return Ok((pass.loss, pass.gradients));
    }
    let adapted = model.with_adapter_and_dropout(&adapter.as_adapter(model.config().num_layers), Some(dropout_seed))?;
    let (loss, _) = answer_loss(&adapted, batch)?;
    let loss = (loss / step_tokens as f64)?;
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let gradients = loss.backward()?;
    let grads = variables
        .iter()
        .map(|var| match gradients.get(var.as_tensor()) {
            Some(grad) => Ok(grad.clone()),
            None => Ok(var.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((value, grads))
}

fn parameters(adapter: &TrainableAdapter) -> Vec<Tensor> {
    adapter.vars.iter().flat_map(|(_, _, a, b)| [a.as_tensor().clone(), b.as_tensor().clone()]).collect()
}

fn read_state(path: &Path) -> Result<Option<TrainerState>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let state = serde_json::from_str(&text).map_err(|e| EngineError::InvalidTrainingData {
        path: path.to_path_buf(),
        line: e.line(),
        reason: format!("not a trainer state: {e}"),
    })?;
    Ok(Some(state))
}

fn write_state(path: &Path, state: &TrainerState) -> Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(|e| EngineError::InvalidTraining(e.to_string()))?;
    write_atomically(path, text.as_bytes())
}

/// The newest complete checkpoint folder (`step-N`, highest N).
fn latest_checkpoint(checkpoints: &Path) -> Result<Option<PathBuf>> {
    if !checkpoints.exists() {
        return Ok(None);
    }
    let entries = std::fs::read_dir(checkpoints).map_err(|e| EngineError::io(checkpoints, e))?;
    let mut best: Option<(usize, PathBuf)> = None;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(checkpoints, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok()) {
            if best.as_ref().is_none_or(|(b, _)| step > *b) {
                best = Some((step, entry.path()));
            }
        }
    }
    Ok(best.map(|(_, path)| path))
}

/// Writes a checkpoint into a temporary folder, renames it to `step-N`, then drops older ones.
fn save_checkpoint(
    checkpoints: &Path,
    adapter: &TrainableAdapter,
    optimizer: &AdamW,
    state: &TrainerState,
    num_layers: usize,
    base_model: Option<String>,
) -> Result<()> {
    let partial = checkpoints.join(format!(".step-{}.partial", state.step));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| EngineError::io(&partial, e))?;
    }
    adapter.snapshot(num_layers, base_model)?.save(&partial)?;
    let mut tensors = std::collections::HashMap::new();
    for (index, (m, v)) in optimizer.first_moments.iter().zip(&optimizer.second_moments).enumerate() {
        tensors.insert(format!("m.{index}"), m.clone());
        tensors.insert(format!("v.{index}"), v.clone());
    }
    candle_core::safetensors::save(&tensors, partial.join(OPTIMIZER_FILE))?;
    write_state(&partial.join(TRAINER_STATE_FILE), state)?;
    let finished = checkpoints.join(format!("step-{}", state.step));
    std::fs::rename(&partial, &finished).map_err(|e| EngineError::io(&finished, e))?;
    let entries = std::fs::read_dir(checkpoints).map_err(|e| EngineError::io(checkpoints, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path != finished && entry.file_name().to_string_lossy().starts_with("step-") {
            std::fs::remove_dir_all(&path).map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(())
}

fn load_optimizer(
    path: &Path,
    adapter: &TrainableAdapter,
    state: &TrainerState,
    settings: &TrainingSettings,
) -> Result<AdamW> {
    let parameters = parameters(adapter);
    let mut optimizer = AdamW::new(&parameters, settings.weight_decay)?;
    let device = parameters.first().map(|t| t.device().clone()).unwrap_or(candle_core::Device::Cpu);
    let tensors = candle_core::safetensors::load(path, &device).map_err(|e| EngineError::InvalidTrainingData {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("unreadable optimizer state: {e}"),
    })?;
    for index in 0..parameters.len() {
        let get = |name: String| {
            tensors.get(&name).cloned().ok_or_else(|| EngineError::InvalidTrainingData {
                path: path.to_path_buf(),
                line: 0,
                reason: format!("missing optimizer tensor {name}"),
            })
        };
        optimizer.first_moments[index] = get(format!("m.{index}"))?;
        optimizer.second_moments[index] = get(format!("v.{index}"))?;
    }
    optimizer.step = state.step;
    Ok(optimizer)
}
