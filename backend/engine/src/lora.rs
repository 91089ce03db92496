//! LoRA adapters for the llama-family decoder, in PEFT's layout: `adapter_config.json` plus
//! `adapter_model.safetensors` whose tensors are named like
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (`[rank, in]`) and
//! `...lora_B.weight` (`[out, rank]`); the update of a module is `(alpha / rank) · B A`
//! (`alpha / sqrt(rank)` with rsLoRA).
//!
//! An adapter is applied to a model either unmerged (the low-rank products run beside the frozen
//! weights, [`LlamaModel::with_adapter`]) or merged into a copy of the weights
//! ([`LlamaModel::merged_with`], which keeps the fast fused CPU kernels).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::error::{EngineError, InvalidSetting, Result};
use super::model::LlamaModel;
use super::rng::SeededRng;

/// The seven linear modules of a decoder layer, in PEFT's names.
pub const ALL_MODULES: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Rank, scaling and targets of an adapter (the paper's defaults: rank 8, alpha 16, dropout 0,
/// all seven linear modules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub target_modules: Vec<String>,
    pub use_rslora: bool,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings {
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: ALL_MODULES.iter().map(|m| m.to_string()).collect(),
            use_rslora: false,
        }
    }
}

impl LoraSettings {
    /// The factor of `B A` in the update.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// The settings' ranges, naming the field that is out of its range.
    pub fn check(&self) -> std::result::Result<(), InvalidSetting> {
        let invalid = |field, reason: String| Err(InvalidSetting::new(field, reason));
        if self.rank == 0 {
            return invalid("rank", "must be at least 1".into());
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return invalid("alpha", format!("{} is not a positive number", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid("dropout", format!("{} is not in [0, 1)", self.dropout));
        }
        if self.target_modules.is_empty() {
            return invalid("target_modules", "name at least one module".into());
        }
        if let Some(unknown) = self.target_modules.iter().find(|m| !ALL_MODULES.contains(&m.as_str())) {
            return invalid(
                "target_modules",
                format!("unknown module {unknown:?} (known: {})", ALL_MODULES.join(", ")),
            );
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|error| EngineError::InvalidAdapter { path: None, reason: error.to_string() })
    }
}

/// PEFT's `adapter_config.json`, the fields we read and write.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeftConfig {
    peft_type: String,
    #[serde(default)]
    task_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: serde_json::Value,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    inference_mode: bool,
    #[serde(default)]
    rank_pattern: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    alpha_pattern: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    layers_to_transform: Option<serde_json::Value>,
}

/// The `A` and `B` matrices of one module of one layer.
#[derive(Debug, Clone)]
pub struct LoraPair {
    pub a: Tensor,
    pub b: Tensor,
}

/// A LoRA adapter: its settings and, per layer, the pairs of its target modules.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    pub settings: LoraSettings,
    /// `layers[layer][module name]`.
    pub layers: Vec<BTreeMap<String, LoraPair>>,
    /// The base model the adapter was trained on, as PEFT records it.
    pub base_model: Option<String>,
}

/// The trainable form of an adapter: the same pairs as variables.
#[derive(Debug, Clone)]
pub struct TrainableAdapter {
    pub settings: LoraSettings,
    /// `(layer, module, A, B)` in a fixed order (layer, then [`ALL_MODULES`] order).
    pub vars: Vec<(usize, String, Var, Var)>,
}

/// Input and output widths of a module in `model`.
fn module_shape(model: &LlamaModel, module: &str) -> (usize, usize) {
    let config = model.config();
    let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
    let q_rows = config.num_heads * config.head_dim;
    let kv_rows = config.num_kv_heads * config.head_dim;
    match module {
        "q_proj" => (hidden, q_rows),
        "k_proj" | "v_proj" => (hidden, kv_rows),
        "o_proj" => (q_rows, hidden),
        "gate_proj" | "up_proj" => (hidden, intermediate),
        _ => (intermediate, hidden), // down_proj
    }
}

fn module_path(module: &str) -> &'static str {
    match module {
        "q_proj" | "k_proj" | "v_proj" | "o_proj" => "self_attn",
        _ => "mlp",
    }
}

/// PEFT's tensor name of a pair's matrix (`which` is `A` or `B`).
pub fn peft_tensor_name(layer: usize, module: &str, which: char) -> String {
    format!("base_model.model.model.layers.{layer}.{}.{module}.lora_{which}.weight", module_path(module))
}

impl TrainableAdapter {
    /// A fresh adapter for `model`: `A` uniform in ±1/sqrt(in) (PEFT's Kaiming init), `B` = 0,
    /// so the adapted model starts equal to the base. Variables are f32 on the model's device.
    pub fn init(model: &LlamaModel, settings: LoraSettings, seed: u64) -> Result<Self> {
        Self::init_in(model, settings, seed, DType::F32)
    }

    /// As [`TrainableAdapter::init`], with variables of `dtype` (f64 for gradient checks).
    pub fn init_in(model: &LlamaModel, settings: LoraSettings, seed: u64, dtype: DType) -> Result<Self> {
        settings.validate()?;
        let mut rng = SeededRng::new(seed);
        let device = model.device();
        let mut vars = Vec::new();
        for layer in 0..model.config().num_layers {
            for module in ALL_MODULES.iter().filter(|m| settings.target_modules.iter().any(|t| t == *m)) {
                let (input, output) = module_shape(model, module);
                let bound = 1.0 / (input as f64).sqrt();
                let values: Vec<f32> =
                    (0..settings.rank * input).map(|_| ((rng.next_unit() * 2.0 - 1.0) * bound) as f32).collect();
                let a = Var::from_tensor(&Tensor::from_vec(values, (settings.rank, input), device)?.to_dtype(dtype)?)?;
                let b = Var::zeros((output, settings.rank), dtype, device)?;
                vars.push((layer, module.to_string(), a, b));
            }
        }
        Ok(TrainableAdapter { settings, vars })
    }

    /// Variables that continue from a saved adapter (a checkpoint).
    pub fn from_adapter(adapter: &LoraAdapter) -> Result<Self> {
        let mut vars = Vec::new();
        for (layer, modules) in adapter.layers.iter().enumerate() {
            for module in ALL_MODULES {
                if let Some(pair) = modules.get(module) {
                    let a = Var::from_tensor(&pair.a.to_dtype(DType::F32)?)?;
                    let b = Var::from_tensor(&pair.b.to_dtype(DType::F32)?)?;
                    vars.push((layer, module.to_string(), a, b));
                }
            }
        }
        Ok(TrainableAdapter { settings: adapter.settings.clone(), vars })
    }

    /// The current values as an adapter (tensors detached from the variables).
    pub fn snapshot(&self, num_layers: usize, base_model: Option<String>) -> Result<LoraAdapter> {
        let mut layers = vec![BTreeMap::new(); num_layers];
        for (layer, module, a, b) in &self.vars {
            let pair = LoraPair { a: a.as_tensor().copy()?.detach(), b: b.as_tensor().copy()?.detach() };
            layers[*layer].insert(module.clone(), pair);
        }
        Ok(LoraAdapter { settings: self.settings.clone(), layers, base_model })
    }

    /// The adapter whose tensors are the variables themselves, so a forward pass through
    /// [`LlamaModel::with_adapter`] records gradients for them.
    pub fn as_adapter(&self, num_layers: usize) -> LoraAdapter {
        let mut layers = vec![BTreeMap::new(); num_layers];
        for (layer, module, a, b) in &self.vars {
            layers[*layer].insert(module.clone(), LoraPair { a: a.as_tensor().clone(), b: b.as_tensor().clone() });
        }
        LoraAdapter { settings: self.settings.clone(), layers, base_model: None }
    }

    pub fn parameter_count(&self) -> usize {
        self.vars.iter().map(|(_, _, a, b)| a.elem_count() + b.elem_count()).sum()
    }
}

impl LoraAdapter {
    /// Checks that the adapter fits `model`: layer count, module shapes, rank.
    pub fn check_fits(&self, model: &LlamaModel, path: Option<&Path>) -> Result<()> {
        let invalid = |reason: String| EngineError::InvalidAdapter { path: path.map(Path::to_path_buf), reason };
        let layers = model.config().num_layers;
        if self.layers.len() != layers {
            return Err(invalid(format!("it has {} layers, the model has {layers}", self.layers.len())));
        }
        for (layer, modules) in self.layers.iter().enumerate() {
            for (module, pair) in ALL_MODULES.iter().filter_map(|m| modules.get(*m).map(|pair| (*m, pair))) {
                let (input, output) = module_shape(model, module);
                let rank = self.settings.rank;
                let a_dims = pair.a.dims();
                let b_dims = pair.b.dims();
                if a_dims != [rank, input] || b_dims != [output, rank] {
                    return Err(invalid(format!(
                        "layer {layer} {module}: lora_A is {a_dims:?} and lora_B {b_dims:?}, the model needs \
                         [{rank}, {input}] and [{output}, {rank}] (rank {rank})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads a PEFT adapter folder (ours or PEFT's own).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(ADAPTER_CONFIG_FILE);
        let weights_path = dir.join(ADAPTER_WEIGHTS_FILE);
        let invalid =
            |path: &Path, reason: String| EngineError::InvalidAdapter { path: Some(path.to_path_buf()), reason };
        let text = std::fs::read_to_string(&config_path).map_err(|e| EngineError::io(&config_path, e))?;
        let config: PeftConfig =
            serde_json::from_str(&text).map_err(|e| invalid(&config_path, format!("line {}: {e}", e.line())))?;
        if config.peft_type != "LORA" {
            return Err(invalid(&config_path, format!("peft_type {:?} is not LORA", config.peft_type)));
        }
        if config.use_dora {
            return Err(invalid(&config_path, "DoRA adapters (use_dora) are not supported".into()));
        }
        if config.fan_in_fan_out {
            return Err(invalid(&config_path, "fan_in_fan_out adapters (Conv1D models) are not supported".into()));
        }
        if !config.rank_pattern.is_empty() || !config.alpha_pattern.is_empty() {
            return Err(invalid(&config_path, "per-module rank_pattern / alpha_pattern is not supported".into()));
        }
        if config.layers_to_transform.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid(&config_path, "layers_to_transform is not supported".into()));
        }
        if config.bias.as_deref().is_some_and(|b| b != "none") {
            return Err(invalid(&config_path, format!("bias {:?} is not supported (only \"none\")", config.bias)));
        }
        let target_modules: Vec<String> = match &config.target_modules {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            serde_json::Value::String(pattern) if pattern == "all-linear" => {
                ALL_MODULES.iter().map(|m| m.to_string()).collect()
            }
            other => {
                return Err(invalid(&config_path, format!("target_modules {other} is not a list of module names")));
            }
        };
        let settings = LoraSettings {
            rank: config.r,
            alpha: config.lora_alpha,
            dropout: config.lora_dropout,
            target_modules,
            use_rslora: config.use_rslora,
        };
        settings.validate().map_err(|e| match e {
            EngineError::InvalidAdapter { reason, .. } => invalid(&config_path, reason),
            other => other,
        })?;
        if !weights_path.exists() {
            return Err(EngineError::ModelNotFound(weights_path));
        }
        let tensors = candle_core::safetensors::load(&weights_path, device)
            .map_err(|e| invalid(&weights_path, format!("not a readable safetensors file: {e}")))?;
        let mut layers: Vec<BTreeMap<String, LoraPair>> = Vec::new();
        let mut halves: HashMap<(usize, String), (Option<Tensor>, Option<Tensor>)> = HashMap::new();
        for (name, tensor) in tensors {
            let (layer, module, which) = parse_peft_name(&name).ok_or_else(|| {
                invalid(&weights_path, format!("unexpected tensor {name:?} (not a LoRA A/B weight of a decoder layer)"))
            })?;
            if !settings.target_modules.iter().any(|t| t == &module) {
                return Err(invalid(&weights_path, format!("tensor {name:?} is for a module outside target_modules")));
            }
            let entry = halves.entry((layer, module)).or_default();
            if which == 'A' {
                entry.0 = Some(tensor);
            } else {
                entry.1 = Some(tensor);
            }
        }
        for ((layer, module), (a, b)) in halves {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(invalid(&weights_path, format!("layer {layer} {module} lacks its lora_A or lora_B")));
            };
            if layers.len() <= layer {
                layers.resize(layer + 1, BTreeMap::new());
            }
            layers[layer].insert(module, LoraPair { a, b });
        }
        if layers.is_empty() {
            return Err(invalid(&weights_path, "no LoRA tensors".into()));
        }
        Ok(LoraAdapter { settings, layers, base_model: config.base_model_name_or_path })
    }

    /// Writes the adapter in PEFT's layout into `dir` (created if needed). Each file is written
    /// to a temporary name and renamed, so a reader never sees half a file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        let mut tensors = HashMap::new();
        let mut modules: Vec<&str> = Vec::new();
        for (layer, pairs) in self.layers.iter().enumerate() {
            for (module, pair) in pairs {
                tensors.insert(peft_tensor_name(layer, module, 'A'), pair.a.to_dtype(DType::F32)?.contiguous()?);
                tensors.insert(peft_tensor_name(layer, module, 'B'), pair.b.to_dtype(DType::F32)?.contiguous()?);
                if !modules.contains(&module.as_str()) {
                    modules.push(module);
                }
            }
        }
        modules.sort_by_key(|m| ALL_MODULES.iter().position(|k| k == m));
        let config = PeftConfig {
            peft_type: "LORA".into(),
            task_type: Some("CAUSAL_LM".into()),
            r: self.settings.rank,
            lora_alpha: self.settings.alpha,
            lora_dropout: self.settings.dropout,
            target_modules: serde_json::json!(modules),
            bias: Some("none".into()),
            fan_in_fan_out: false,
            use_rslora: self.settings.use_rslora,
            use_dora: false,
            base_model_name_or_path: self.base_model.clone(),
            inference_mode: true,
            rank_pattern: Default::default(),
            alpha_pattern: Default::default(),
            layers_to_transform: None,
        };
        let weights_path = dir.join(ADAPTER_WEIGHTS_FILE);
        let temporary = dir.join(format!(".{ADAPTER_WEIGHTS_FILE}.partial"));
        candle_core::safetensors::save(&tensors, &temporary)?;
        std::fs::rename(&temporary, &weights_path).map_err(|e| EngineError::io(&weights_path, e))?;
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| EngineError::InvalidAdapter { path: Some(dir.to_path_buf()), reason: e.to_string() })?;
        write_atomically(&dir.join(ADAPTER_CONFIG_FILE), text.as_bytes())
    }
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary: PathBuf = path.with_file_name(format!(".{file_name}.partial"));
    std::fs::write(&temporary, bytes).map_err(|e| EngineError::io(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| EngineError::io(path, e))
}

/// `base_model.model.model.layers.3.mlp.up_proj.lora_B.weight` → (3, "up_proj", 'B'); PEFT's
/// in-memory names (`...lora_B.default.weight`) are accepted too.
fn parse_peft_name(name: &str) -> Option<(usize, String, char)> {
    let rest = name.strip_prefix("base_model.model.")?;
    let rest = rest.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let rest = rest.strip_prefix("self_attn.").or_else(|| rest.strip_prefix("mlp."))?;
    let (module, rest) = rest.split_once('.')?;
    if !ALL_MODULES.contains(&module) {
        return None;
    }
    let which = match rest {
        "lora_A.weight" | "lora_A.default.weight" => 'A',
        "lora_B.weight" | "lora_B.default.weight" => 'B',
        _ => return None,
    };
    Some((layer, module.to_string(), which))
}

/// The low-rank updates of a (possibly fused) projection: one part per stacked module, in the
/// order of the stacked rows; a module without an update contributes zeros.
#[derive(Debug, Clone)]
pub(super) struct ProjectionLora {
    pub(super) parts: Vec<(usize, Option<LowRankUpdate>)>,
}

/// `Δy = scale · dropout(x) Aᵀ Bᵀ` with `A: [rank, in]`, `B: [out, rank]` (PEFT's lora_A / lora_B).
#[derive(Debug, Clone)]
pub(super) struct LowRankUpdate {
    pub(super) a: Tensor,
    pub(super) b: Tensor,
    pub(super) scale: f64,
    /// Inverted dropout on the input while training; `None` at inference.
    pub(super) dropout: Option<LoraDropout>,
}

/// A dropout probability and the seeded generator its masks come from (shared by the updates of
/// one forward pass, drawn in layer order, so a training step is reproducible).
#[derive(Debug, Clone)]
pub(super) struct LoraDropout {
    pub(super) probability: f64,
    pub(super) rng: std::sync::Arc<std::sync::Mutex<super::rng::SeededRng>>,
}

impl LowRankUpdate {
    fn delta(&self, input: &Tensor) -> Result<Tensor> {
        // The adapter may be kept in f32 while the base runs in bf16 (CUDA).
        let x = input.to_dtype(self.a.dtype())?;
        let x = match &self.dropout {
            Some(dropout) => {
                let keep = 1.0 - dropout.probability;
                let (rows, width) = x.dims2()?;
                let mut rng = dropout.rng.lock().map_err(|_| EngineError::WorkerPanicked)?;
                let mask: Vec<f32> =
                    (0..rows * width).map(|_| if rng.next_unit() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect();
                drop(rng);
                let mask = Tensor::from_vec(mask, (rows, width), x.device())?.to_dtype(x.dtype())?;
                (x * mask)?
            }
            None => x,
        };
        // The scale goes on the narrow [rows, rank] product, not on the wide output.
        let delta = (x.matmul(&self.a.t()?)? * self.scale)?.matmul(&self.b.t()?)?;
        Ok(delta.to_dtype(input.dtype())?)
    }
}

impl ProjectionLora {
    pub(super) fn delta(&self, input: &Tensor) -> Result<Tensor> {
        if self.parts.len() > 1
            && self.parts.iter().all(|(_, update)| update.as_ref().is_none_or(|u| u.dropout.is_none()))
        {
            return self.stacked_delta(input);
        }
        let rows = input.dim(0)?;
        let parts = self
            .parts
            .iter()
            .map(|(width, update)| match update {
                Some(update) => update.delta(input),
                None => Ok(Tensor::zeros((rows, *width), input.dtype(), input.device())?),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(if parts.len() == 1 { parts.into_iter().next().expect("one part") } else { Tensor::cat(&parts, 1)? })
    }

    /// The updates of a fused projection as two GEMMs instead of two per part plus a
    /// concatenation of wide outputs: `x [A₁; A₂; …]ᵀ` then a block-diagonal `[s₁B₁ ⊕ s₂B₂ ⊕ …]ᵀ`
    /// (small matrices; a part without an update is a zero block).
    fn stacked_delta(&self, input: &Tensor) -> Result<Tensor> {
        let updates: Vec<&LowRankUpdate> = self.parts.iter().filter_map(|(_, update)| update.as_ref()).collect();
        let first =
            updates.first().ok_or_else(|| EngineError::InvalidBatch("a LoRA projection without updates".into()))?;
        let (dtype, device) = (first.a.dtype(), first.a.device().clone());
        let total_rank: usize = updates.iter().map(|u| u.a.dim(0)).sum::<candle_core::Result<usize>>()?;
        let stacked_a = Tensor::cat(&updates.iter().map(|u| &u.a).collect::<Vec<_>>(), 0)?;
        let mut blocks = Vec::with_capacity(self.parts.len());
        let mut rank_before = 0;
        for (width, update) in &self.parts {
            let Some(update) = update else {
                blocks.push(Tensor::zeros((*width, total_rank), dtype, &device)?);
                continue;
            };
            let rank = update.a.dim(0)?;
            let mut row = Vec::with_capacity(3);
            if rank_before > 0 {
                row.push(Tensor::zeros((*width, rank_before), dtype, &device)?);
            }
            row.push((&update.b * update.scale)?);
            let rank_after = total_rank - rank_before - rank;
            if rank_after > 0 {
                row.push(Tensor::zeros((*width, rank_after), dtype, &device)?);
            }
            blocks.push(Tensor::cat(&row, 1)?);
            rank_before += rank;
        }
        let stacked_b = Tensor::cat(&blocks, 0)?;
        let x = input.to_dtype(dtype)?;
        let delta = x.matmul(&stacked_a.t()?)?.matmul(&stacked_b.t()?)?;
        Ok(delta.to_dtype(input.dtype())?)
    }
}

impl LlamaModel {
    /// A copy of the model that runs `adapter` beside its frozen weights (unmerged). It uses the
    /// generic tensor path, so gradients reach the adapter's variables when training.
    pub fn with_adapter(&self, adapter: &LoraAdapter) -> Result<LlamaModel> {
        self.with_adapter_and_dropout(adapter, None)
    }

    /// As [`LlamaModel::with_adapter`], with the adapter's dropout on its inputs, masks drawn from
    /// a generator seeded with `dropout_seed` (training); no dropout when `None`.
    pub fn with_adapter_and_dropout(&self, adapter: &LoraAdapter, dropout_seed: Option<u64>) -> Result<LlamaModel> {
        adapter.check_fits(self, None)?;
        let scale = adapter.settings.scale();
        let query_scale = 1.0 / (self.config.head_dim as f64).sqrt();
        let widths = |module: &str| module_shape(self, module).1;
        let dropout = match dropout_seed {
            Some(seed) if adapter.settings.dropout > 0.0 => Some(LoraDropout {
                probability: adapter.settings.dropout,
                rng: Arc::new(Mutex::new(SeededRng::new(seed))),
            }),
            _ => None,
        };
        let update = |pairs: &BTreeMap<String, LoraPair>, module: &str, factor: f64| -> Option<LowRankUpdate> {
            pairs.get(module).map(|pair| LowRankUpdate {
                a: pair.a.clone(),
                b: pair.b.clone(),
                scale: scale * factor,
                dropout: dropout.clone(),
            })
        };
        let mut model = self.clone();
        for (block, pairs) in model.blocks.iter_mut().zip(&adapter.layers) {
            let attach = |parts: Vec<(usize, Option<LowRankUpdate>)>| {
                parts.iter().any(|(_, u)| u.is_some()).then_some(ProjectionLora { parts })
            };
            // q rows of the fused qkv weight are pre-scaled by 1/sqrt(head_dim); so is their update.
            block.qkv.lora = attach(vec![
                (widths("q_proj"), update(pairs, "q_proj", query_scale)),
                (widths("k_proj"), update(pairs, "k_proj", 1.0)),
                (widths("v_proj"), update(pairs, "v_proj", 1.0)),
            ]);
            block.gate_up.lora = attach(vec![
                (widths("gate_proj"), update(pairs, "gate_proj", 1.0)),
                (widths("up_proj"), update(pairs, "up_proj", 1.0)),
            ]);
            block.attention_output.lora = attach(vec![(widths("o_proj"), update(pairs, "o_proj", 1.0))]);
            block.down.lora = attach(vec![(widths("down_proj"), update(pairs, "down_proj", 1.0))]);
        }
        model.set_cpu_kernels(false);
        Ok(model)
    }

    /// A copy of the model with `adapter` merged into its weights (`W + scale · B A`): answers
    /// cost what the base model's do, and the fused CPU kernels still apply.
    pub fn merged_with(&self, adapter: &LoraAdapter) -> Result<LlamaModel> {
        adapter.check_fits(self, None)?;
        let scale = adapter.settings.scale();
        let query_scale = 1.0 / (self.config.head_dim as f64).sqrt();
        let dtype = self.dtype();
        let mut model = self.clone();
        let product =
            |pairs: &BTreeMap<String, LoraPair>, module: &str, factor: f64, reference: &Tensor| -> Result<Tensor> {
                match pairs.get(module) {
                    Some(pair) => {
                        Ok((pair.b.to_dtype(DType::F32)?.matmul(&pair.a.to_dtype(DType::F32)?)? * (scale * factor))?)
                    }
                    None => {
                        let (input, output) = module_shape(self, module);
                        Ok(Tensor::zeros((output, input), DType::F32, reference.device())?)
                    }
                }
            };
        for (block, pairs) in model.blocks.iter_mut().zip(&adapter.layers) {
            let merge = |weight: &Tensor, deltas: Vec<Tensor>| -> Result<Tensor> {
                let delta = if deltas.len() == 1 {
                    deltas.into_iter().next().expect("one delta")
                } else {
                    Tensor::cat(&deltas, 0)?
                };
                Ok((weight.to_dtype(DType::F32)? + delta)?.to_dtype(dtype)?)
            };
            let w = &block.qkv.weight;
            block.qkv.weight = merge(
                w,
                vec![
                    product(pairs, "q_proj", query_scale, w)?,
                    product(pairs, "k_proj", 1.0, w)?,
                    product(pairs, "v_proj", 1.0, w)?,
                ],
            )?;
            let w = &block.gate_up.weight;
            block.gate_up.weight =
                merge(w, vec![product(pairs, "gate_proj", 1.0, w)?, product(pairs, "up_proj", 1.0, w)?])?;
            let w = &block.attention_output.weight;
            block.attention_output.weight = merge(w, vec![product(pairs, "o_proj", 1.0, w)?])?;
            let w = &block.down.weight;
            block.down.weight = merge(w, vec![product(pairs, "down_proj", 1.0, w)?])?;
        }
        if self.uses_bf16() {
            model.pack_bf16()?;
        }
        Ok(model)
    }
}
