//! GGUF files (llama.cpp's format): metadata, configuration and weights dequantized to floats.
//!
//! The weights are renamed to Hugging Face names so one model builder serves both formats.

use std::collections::HashMap;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

use super::config::{Architecture, ModelConfig};
use super::error::{EngineError, Result};

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// A GGUF file mapped into memory with its parsed header.
pub struct GgufFile {
    path: PathBuf,
    bytes: memmap2::Mmap,
    content: Content,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(EngineError::ModelNotFound(path.to_path_buf()));
        }
        let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        // SAFETY: the model file is opened read-only and nothing in this process writes to it.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| EngineError::io(path, e))?;
        if bytes.len() < GGUF_MAGIC.len() || &bytes[..GGUF_MAGIC.len()] != GGUF_MAGIC {
            return Err(invalid(path, "the file does not start with the GGUF magic bytes"));
        }
        let content = Content::read(&mut Cursor::new(&bytes[..])).map_err(|e| invalid(path, e.to_string()))?;
        let gguf = GgufFile { path: path.to_path_buf(), bytes, content };
        gguf.check_tensor_extents()?;
        Ok(gguf)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails early, with the tensor's name, when the file is shorter than its header says, or a
    /// tensor has no elements or more than a file can hold (candle reads a tensor's bytes as
    /// blocks of its type: an empty one would be a slice at an unaligned address).
    fn check_tensor_extents(&self) -> Result<()> {
        let file_len = self.bytes.len() as u64;
        for (name, info) in &self.content.tensor_infos {
            let dims = info.shape.dims();
            let elements = dims.iter().try_fold(1u64, |product, &dim| product.checked_mul(dim as u64));
            let byte_len = elements.and_then(|elements| {
                elements.div_ceil(info.ggml_dtype.block_size() as u64).checked_mul(info.ggml_dtype.type_size() as u64)
            });
            let end = byte_len
                .and_then(|byte_len| self.content.tensor_data_offset.checked_add(info.offset)?.checked_add(byte_len));
            match (elements, end) {
                (Some(0), _) => {
                    return Err(invalid(&self.path, format!("tensor {name} has no elements (shape {dims:?})")));
                }
                (Some(_), Some(end)) if end <= file_len => {}
                (Some(_), Some(end)) => {
                    return Err(invalid(
                        &self.path,
                        format!("truncated: tensor {name} ends at byte {end} but the file has {file_len} bytes"),
                    ));
                }
                _ => {
                    return Err(invalid(
                        &self.path,
                        format!("tensor {name} of shape {dims:?} is larger than any file (the header is damaged)"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn required(&self, key: &str) -> Result<&Value> {
        self.metadata(key).ok_or_else(|| EngineError::MissingMetadata { key: key.to_string() })
    }

    pub fn string(&self, key: &str) -> Result<&str> {
        match self.required(key)? {
            Value::String(text) => Ok(text),
            other => Err(wrong_type(key, "a string", other)),
        }
    }

    /// The model's id as its `general.*` metadata names it (llama.cpp's converter writes them from
    /// the Hugging Face repository): `organization/basename-size_label-finetune`, or `general.name`.
    pub fn model_id(&self) -> Option<String> {
        let part = |key: &str| self.optional_string(key).map(str::trim).filter(|text| !text.is_empty());
        let name = match part("general.basename") {
            Some(basename) => [Some(basename), part("general.size_label"), part("general.finetune")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("-"),
            None => part("general.name")?.to_string(),
        };
        Some(match part("general.organization") {
            Some(organization) => format!("{organization}/{name}"),
            None => name,
        })
    }

    pub fn optional_string(&self, key: &str) -> Option<&str> {
        match self.metadata(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        }
    }

    pub fn unsigned(&self, key: &str) -> Result<usize> {
        let value = self.required(key)?;
        as_unsigned(value).ok_or_else(|| wrong_type(key, "a non-negative integer", value))
    }

    pub fn optional_unsigned(&self, key: &str) -> Option<usize> {
        self.metadata(key).and_then(as_unsigned)
    }

    pub fn float(&self, key: &str) -> Result<f64> {
        match self.required(key)? {
            Value::F32(v) => Ok(f64::from(*v)),
            Value::F64(v) => Ok(*v),
            other => Err(wrong_type(key, "a float", other)),
        }
    }

    pub fn optional_bool(&self, key: &str) -> Option<bool> {
        match self.metadata(key) {
            Some(Value::Bool(flag)) => Some(*flag),
            _ => None,
        }
    }

    pub fn string_array(&self, key: &str) -> Result<Vec<&str>> {
        self.array(key)?
            .iter()
            .map(|value| match value {
                Value::String(text) => Ok(text.as_str()),
                other => Err(wrong_type(key, "an array of strings", other)),
            })
            .collect()
    }

    pub fn integer_array(&self, key: &str) -> Result<Vec<i64>> {
        self.array(key)?
            .iter()
            .map(|value| as_signed(value).ok_or_else(|| wrong_type(key, "an array of integers", value)))
            .collect()
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>> {
        match self.required(key)? {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type(key, "an array", other)),
        }
    }

    /// `general.architecture`, checked to be one the engine runs.
    pub fn architecture(&self) -> Result<(String, Architecture)> {
        let name = self.string("general.architecture")?.to_string();
        let architecture = Architecture::from_name(&name)?;
        let experts = self.optional_unsigned(&format!("{name}.expert_count")).unwrap_or(0);
        if experts > 0 {
            return Err(EngineError::UnsupportedArchitecture(format!(
                "{name} with {experts} experts (mixture of experts)"
            )));
        }
        Ok((name, architecture))
    }

    pub fn config(&self) -> Result<ModelConfig> {
        let (arch_name, architecture) = self.architecture()?;
        let key = |suffix: &str| format!("{arch_name}.{suffix}");
        let hidden_size = self.unsigned(&key("embedding_length"))?;
        let num_heads = self.unsigned(&key("attention.head_count"))?;
        let num_kv_heads = self.optional_unsigned(&key("attention.head_count_kv")).unwrap_or(num_heads);
        let head_dim = self.optional_unsigned(&key("attention.key_length")).unwrap_or(hidden_size / num_heads.max(1));
        let rope_dims = self.optional_unsigned(&key("rope.dimension_count")).unwrap_or(head_dim);
        if rope_dims != head_dim {
            return Err(EngineError::UnsupportedArchitecture(format!(
                "{arch_name} with partial rotary embeddings ({rope_dims} of {head_dim} dimensions)"
            )));
        }
        // The embedding's rows, which may exceed the tokenizer's vocabulary (padding).
        let vocab_size = self
            .content
            .tensor_infos
            .get(EMBEDDINGS)
            .and_then(|info| info.shape.dims().first().copied())
            .ok_or_else(|| EngineError::MissingTensor { name: EMBEDDINGS.into() })?;
        let rope_freq_factors = match self.content.tensor_infos.get(ROPE_FREQS) {
            Some(_) => Some(self.dequantized(ROPE_FREQS)?.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        let config = ModelConfig {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size: self.unsigned(&key("feed_forward_length"))?,
            num_layers: self.unsigned(&key("block_count"))?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: self.float(&key("attention.layer_norm_rms_epsilon"))?,
            rope_theta: self.float(&key("rope.freq_base")).unwrap_or(DEFAULT_ROPE_THETA),
            rope_freq_factors,
            context_length: ModelConfig::usable_context(self.unsigned(&key("context_length"))?),
            tie_word_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
        };
        config.validate()?;
        Ok(config)
    }

    fn dequantized(&self, name: &str) -> Result<Tensor> {
        let info =
            self.content.tensor_infos.get(name).ok_or_else(|| EngineError::MissingTensor { name: name.into() })?;
        let quantized = info
            .read(&mut Cursor::new(&self.bytes[..]), self.content.tensor_data_offset, &Device::Cpu)
            .map_err(|e| invalid(&self.path, format!("tensor {name}: {e}")))?;
        Ok(quantized.dequantize(&Device::Cpu)?)
    }

    /// All weights, dequantized, in Hugging Face names and layout, on `device` as `dtype`.
    pub fn load_weights(&self, config: &ModelConfig, dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut weights = HashMap::new();
        for name in self.content.tensor_infos.keys() {
            if name == ROPE_FREQS {
                continue;
            }
            let Some(hf_name) = hugging_face_name(name) else {
                tracing::debug!(tensor = %name, "ignoring an unused GGUF tensor");
                continue;
            };
            let mut tensor = self.dequantized(name)?;
            // llama.cpp permutes llama's q/k rows for its interleaved RoPE; undo it to use one RoPE layout.
            if config.architecture == Architecture::Llama && name.ends_with(".weight") {
                if name.ends_with("attn_q.weight") {
                    tensor = unpermute_rotary_rows(&tensor, config.num_heads, config.head_dim)?;
                } else if name.ends_with("attn_k.weight") {
                    tensor = unpermute_rotary_rows(&tensor, config.num_kv_heads, config.head_dim)?;
                }
            }
            weights.insert(hf_name, tensor.to_dtype(dtype)?.to_device(device)?);
        }
        Ok(weights)
    }
}

const ROPE_FREQS: &str = "rope_freqs.weight";
const EMBEDDINGS: &str = "token_embd.weight";
const DEFAULT_ROPE_THETA: f64 = 10_000.0;

/// Reorders rows from llama.cpp's interleaved pairs (2i, 2i+1) back to halves (i, i + d/2).
fn unpermute_rotary_rows(weight: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (rows, columns) = weight.dims2()?;
    let unpermuted =
        weight.reshape((heads, head_dim / 2, 2, columns))?.transpose(1, 2)?.contiguous()?.reshape((rows, columns))?;
    Ok(unpermuted)
}

fn hugging_face_name(gguf_name: &str) -> Option<String> {
    let global = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = global {
        return Some(name.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, tensor) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf_tensor = match tensor {
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_tensor}"))
}

fn as_unsigned(value: &Value) -> Option<usize> {
    as_signed(value).and_then(|v| usize::try_from(v).ok())
}

fn as_signed(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidGguf { path: path.to_path_buf(), reason: reason.into() }
}

fn wrong_type(key: &str, expected: &str, value: &Value) -> EngineError {
    EngineError::InvalidMetadata {
        key: key.to_string(),
        reason: format!("expected {expected}, found {:?}", value.value_type()),
    }
}
