//! Hugging Face model folders: `config.json`, `*.safetensors`, `tokenizer.json` and the chat
//! template in `tokenizer_config.json`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::config::{Architecture, ModelConfig};
use super::error::{EngineError, Result};

const CONFIG_FILE: &str = "config.json";
const TOKENIZER_FILE: &str = "tokenizer.json";
const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// Where newer Hugging Face exports keep the chat template when tokenizer_config.json has none.
const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
const DEFAULT_ROPE_THETA: f64 = 10_000.0;
const DEFAULT_RMS_NORM_EPS: f64 = 1e-6;

#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<RopeScaling>,
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    use_sliding_window: bool,
}

#[derive(Debug, Deserialize)]
struct RopeScaling {
    #[serde(alias = "type")]
    rope_type: String,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<f64>,
}

/// A special token in `tokenizer_config.json`: a string or an object with `content`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SpecialToken {
    Text(String),
    Object { content: String },
}

impl SpecialToken {
    fn into_text(self) -> String {
        match self {
            SpecialToken::Text(text) | SpecialToken::Object { content: text } => text,
        }
    }
}

/// `chat_template`: one template, or named templates of which "default" is used.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatTemplateField {
    Single(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Debug, Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

#[derive(Debug, Default, Deserialize)]
struct TokenizerConfig {
    chat_template: Option<ChatTemplateField>,
    bos_token: Option<SpecialToken>,
    eos_token: Option<SpecialToken>,
}

/// What a model folder holds, read but not yet loaded.
#[derive(Debug)]
pub struct HfFolder {
    pub path: PathBuf,
    pub config: ModelConfig,
    pub weight_files: Vec<PathBuf>,
    pub tokenizer_file: PathBuf,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
}

impl HfFolder {
    pub fn open(path: &Path) -> Result<Self> {
        let invalid = |reason: String| EngineError::InvalidModelFolder { path: path.to_path_buf(), reason };
        let config_text = read(&path.join(CONFIG_FILE))?;
        let hf: HfConfig = serde_json::from_str(&config_text).map_err(|e| invalid(format!("{CONFIG_FILE}: {e}")))?;
        let config = model_config(hf)?;
        let mut weight_files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| EngineError::io(path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "safetensors"))
            .collect();
        weight_files.sort();
        if weight_files.is_empty() {
            return Err(invalid("no *.safetensors weight files".into()));
        }
        let tokenizer_file = path.join(TOKENIZER_FILE);
        if !tokenizer_file.exists() {
            return Err(invalid(format!("no {TOKENIZER_FILE}")));
        }
        let tokenizer_config_path = path.join(TOKENIZER_CONFIG_FILE);
        let tokenizer_config: TokenizerConfig = if tokenizer_config_path.exists() {
            serde_json::from_str(&read(&tokenizer_config_path)?)
                .map_err(|e| invalid(format!("{TOKENIZER_CONFIG_FILE}: {e}")))?
        } else {
            TokenizerConfig::default()
        };
        let chat_template = match tokenizer_config.chat_template {
            Some(ChatTemplateField::Single(template)) => Some(template),
            Some(ChatTemplateField::Named(templates)) => {
                templates.into_iter().find(|t| t.name == "default").map(|t| t.template)
            }
            // Newer exports keep the template in a file of its own.
            None => {
                let file = path.join(CHAT_TEMPLATE_FILE);
                if file.is_file() {
                    Some(read(&file)?)
                } else {
                    None
                }
            }
        };
        Ok(HfFolder {
            path: path.to_path_buf(),
            config,
            weight_files,
            tokenizer_file,
            chat_template,
            bos_token: tokenizer_config.bos_token.map(SpecialToken::into_text),
            eos_token: tokenizer_config.eos_token.map(SpecialToken::into_text),
        })
    }

    /// The weights, memory-mapped, converted to `dtype` as they are read.
    pub fn weights(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: the weight files are opened read-only and nothing in this process writes to them.
        let weights = unsafe { VarBuilder::from_mmaped_safetensors(&self.weight_files, dtype, device) }?;
        Ok(weights)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))
}

fn model_config(hf: HfConfig) -> Result<ModelConfig> {
    let architecture = Architecture::from_name(&hf.model_type)?;
    if architecture == Architecture::Llama && hf.attention_bias {
        return Err(EngineError::UnsupportedArchitecture("llama with attention biases".into()));
    }
    if hf.use_sliding_window {
        return Err(EngineError::UnsupportedArchitecture(format!("{} with sliding-window attention", hf.model_type)));
    }
    let head_dim = hf.head_dim.unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1));
    let rope_theta = hf.rope_theta.unwrap_or(DEFAULT_ROPE_THETA);
    let rope_freq_factors = match hf.rope_scaling {
        None => None,
        Some(scaling) if scaling.rope_type == "default" => None,
        Some(scaling) if scaling.rope_type == "llama3" => {
            Some(llama3_frequency_factors(&scaling, rope_theta, head_dim)?)
        }
        Some(scaling) => {
            return Err(EngineError::UnsupportedArchitecture(format!("RoPE scaling {:?}", scaling.rope_type)));
        }
    };
    let config = ModelConfig {
        architecture,
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        intermediate_size: hf.intermediate_size,
        num_layers: hf.num_hidden_layers,
        num_heads: hf.num_attention_heads,
        num_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        head_dim,
        rms_norm_eps: hf.rms_norm_eps.unwrap_or(DEFAULT_RMS_NORM_EPS),
        rope_theta,
        rope_freq_factors,
        context_length: ModelConfig::usable_context(hf.max_position_embeddings),
        tie_word_embeddings: hf.tie_word_embeddings,
    };
    config.validate()?;
    Ok(config)
}

/// Llama 3.1's RoPE scaling as per-frequency divisors: long wavelengths slowed by `factor`,
/// short ones kept, a smooth blend in between.
fn llama3_frequency_factors(scaling: &RopeScaling, rope_theta: f64, head_dim: usize) -> Result<Vec<f32>> {
    let missing = |field: &str| EngineError::InvalidMetadata {
        key: format!("rope_scaling.{field}"),
        reason: "required for llama3 RoPE scaling".into(),
    };
    let factor = scaling.factor.ok_or_else(|| missing("factor"))?;
    let low = scaling.low_freq_factor.ok_or_else(|| missing("low_freq_factor"))?;
    let high = scaling.high_freq_factor.ok_or_else(|| missing("high_freq_factor"))?;
    let original =
        scaling.original_max_position_embeddings.ok_or_else(|| missing("original_max_position_embeddings"))?;
    let low_wavelength = original / low;
    let high_wavelength = original / high;
    Ok((0..head_dim / 2)
        .map(|i| {
            let frequency = 1.0 / rope_theta.powf(2.0 * i as f64 / head_dim as f64);
            let wavelength = 2.0 * std::f64::consts::PI / frequency;
            let divisor = if wavelength < high_wavelength {
                1.0
            } else if wavelength > low_wavelength {
                factor
            } else {
                let smooth = (original / wavelength - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            divisor as f32
        })
        .collect())
}
