//! LoRA adapters for the llama-family decoder, in PEFT's layout: `adapter_config.json` plus
//! `adapter_model.safetensors` whose tensors are named like
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (`[rank, in]`) and
//! `...lora_B.weight` (`[out, rank]`); the update of a module is `(alpha / rank) · B A`
//! (`alpha / sqrt(rank)` with rsLoRA).
//!
//! This module is the adapter's files and its trainable form, in terms of the model's shapes
//! ([`ModelConfig`]) only. An adapter is applied to a model either unmerged (the low-rank products
//! run beside the frozen weights, [`crate::LlamaModel::with_adapter`]) or merged into a copy of the
//! weights ([`crate::LlamaModel::merged_with`], which keeps the fast fused CPU kernels); each
//! projection does that itself ([`crate::projection::Projection`]) with what
//! [`LoraAdapter::projection_adapter`] and [`LoraAdapter::projection_delta`] give it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::error::{EngineError, InvalidSetting, Result};
use super::projection::{LoraDropout, LowRankUpdate, ProjectionAdapter};
use super::rng::SeededRng;

/// The seven linear modules of a decoder layer, in PEFT's names.
pub const ALL_MODULES: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The model card written beside an adapter.
pub const MODEL_CARD_FILE: &str = "README.md";

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
    pub fn init(config: &ModelConfig, device: &Device, settings: LoraSettings, seed: u64) -> Result<Self> {
        Self::init_in(config, device, settings, seed, DType::F32)
    }

    /// As [`TrainableAdapter::init`], with variables of `dtype` (f64 for gradient checks).
    pub fn init_in(
        config: &ModelConfig,
        device: &Device,
        settings: LoraSettings,
        seed: u64,
        dtype: DType,
    ) -> Result<Self> {
        settings.validate()?;
        let mut rng = SeededRng::new(seed);
        let mut vars = Vec::new();
        for layer in 0..config.num_layers {
            for module in ALL_MODULES.iter().filter(|m| settings.target_modules.iter().any(|t| t == *m)) {
                let (input, output) = config.module_shape(module);
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
    /// [`crate::LlamaModel::with_adapter`] records gradients for them.
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
    /// Checks that the adapter fits a model of `config`: layer count, module shapes, rank.
    pub fn check_fits(&self, config: &ModelConfig, path: Option<&Path>) -> Result<()> {
        let invalid = |reason: String| EngineError::InvalidAdapter { path: path.map(Path::to_path_buf), reason };
        let layers = config.num_layers;
        if self.layers.len() != layers {
            return Err(invalid(format!("it has {} layers, the model has {layers}", self.layers.len())));
        }
        for (layer, modules) in self.layers.iter().enumerate() {
            for (module, pair) in ALL_MODULES.iter().filter_map(|m| modules.get(*m).map(|pair| (*m, pair))) {
                let (input, output) = config.module_shape(module);
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

    /// The unmerged updates of the projection that stacks `modules` (in row order) in `layer`, for
    /// a model of `config`; `None` when the adapter has none of them. The q rows of the fused
    /// weight are stored pre-scaled ([`ModelConfig::query_prescale`]), and so is their update.
    pub(crate) fn projection_adapter(
        &self,
        config: &ModelConfig,
        layer: usize,
        modules: &[&str],
        dropout: Option<&LoraDropout>,
    ) -> Option<ProjectionAdapter> {
        let pairs = self.layers.get(layer)?;
        let scale = self.settings.scale();
        let parts: Vec<(usize, Option<LowRankUpdate>)> = modules
            .iter()
            .map(|module| {
                let update = pairs.get(*module).map(|pair| LowRankUpdate {
                    a: pair.a.clone(),
                    b: pair.b.clone(),
                    scale: scale * module_factor(config, module),
                    dropout: dropout.cloned(),
                });
                (config.module_shape(module).1, update)
            })
            .collect();
        parts.iter().any(|(_, update)| update.is_some()).then_some(ProjectionAdapter { parts })
    }

    /// The dense update `scale · B A` (f32, `[out, in]`) of the projection that stacks `modules`
    /// in `layer`: zeros for a module the adapter leaves alone.
    pub(crate) fn projection_delta(
        &self,
        config: &ModelConfig,
        layer: usize,
        modules: &[&str],
        device: &Device,
    ) -> Result<Tensor> {
        let scale = self.settings.scale();
        let mut deltas = Vec::with_capacity(modules.len());
        for module in modules {
            let delta = match self.layers.get(layer).and_then(|pairs| pairs.get(*module)) {
                Some(pair) => {
                    (pair.b.to_dtype(DType::F32)?.matmul(&pair.a.to_dtype(DType::F32)?)?
                        * (scale * module_factor(config, module)))?
                }
                None => {
                    let (input, output) = config.module_shape(module);
                    Tensor::zeros((output, input), DType::F32, device)?
                }
            };
            deltas.push(delta);
        }
        Ok(if deltas.len() == 1 { deltas.remove(0) } else { Tensor::cat(&deltas, 0)? })
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
        write_atomically(&dir.join(ADAPTER_CONFIG_FILE), text.as_bytes())?;
        write_atomically(&dir.join(MODEL_CARD_FILE), self.model_card(&modules).as_bytes())
    }

    /// The README beside the weights (the Hugging Face model card: front matter that PEFT and the
    /// hub read, then what the adapter is and how to load it).
    fn model_card(&self, modules: &[&str]) -> String {
        let base = self.base_model.as_deref().unwrap_or("unknown");
        let settings = &self.settings;
        format!(
            "---\nlibrary_name: peft\nbase_model: {base}\ntags:\n- lora\n- culturespa\n- culture-alignment\n---\n\n\
             # A CultureSPA LoRA adapter for {base}\n\n\
             Trained by CultureSPA Studio on the model's own culture-related instances (questions on the 13 World \
             Values Survey topics whose culture-aware answer differs from the culture-unaware one), as in \
             *Self-Pluralising Culture Alignment for Large Language Models* (Xu et al., 2024).\n\n\
             - rank {rank}, alpha {alpha}, dropout {dropout}{rslora}\n\
             - modules: {modules} in {layers} layers\n\n\
             ## Use\n\n\
             ```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM\n\n\
             base = AutoModelForCausalLM.from_pretrained(\"{base}\")\nmodel = PeftModel.from_pretrained(base, \"path/to/this/folder\")\n```\n\n\
             The human answers it is measured against come from the World Values Survey wave 7 (academic, \
             non-commercial use); cite the WVS and the paper.\n",
            rank = settings.rank,
            alpha = settings.alpha,
            dropout = settings.dropout,
            rslora = if settings.use_rslora { ", rsLoRA scaling" } else { "" },
            modules = modules.join(", "),
            layers = self.layers.len(),
        )
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

/// The factor of a module's update beyond the adapter's scale: the query rows carry the model's
/// pre-scaling.
fn module_factor(config: &ModelConfig, module: &str) -> f64 {
    if module == "q_proj" {
        config.query_prescale()
    } else {
        1.0
    }
}

/// A dropout for the updates of one forward pass, masks drawn from `seed` (training).
pub(crate) fn lora_dropout(settings: &LoraSettings, seed: Option<u64>) -> Option<LoraDropout> {
    match seed {
        Some(seed) if settings.dropout > 0.0 => {
            Some(LoraDropout { probability: settings.dropout, rng: Arc::new(Mutex::new(SeededRng::new(seed))) })
        }
        _ => None,
    }
}
