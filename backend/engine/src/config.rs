//! The shape of a llama-family decoder: what the forward pass needs to know about a model.

use super::error::{EngineError, Result};

/// The decoder families the engine runs; they differ only in details of the attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama, SmolLM, Mistral-style dense decoders: no attention biases.
    Llama,
    /// Qwen2: biases on the q, k and v projections.
    Qwen2,
}

impl Architecture {
    /// The architecture named by GGUF `general.architecture` or HF `model_type`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "llama" | "mistral" | "smollm" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            other => Err(EngineError::UnsupportedArchitecture(other.to_string())),
        }
    }

    pub fn has_qkv_bias(self) -> bool {
        matches!(self, Architecture::Qwen2)
    }
}

/// Dimensions and constants of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// Per-frequency divisors of the rotary angles (llama 3.1 style scaling); None = plain RoPE.
    pub rope_freq_factors: Option<Vec<f32>>,
    /// The longest sequence (prompt + reply) the model was trained for.
    pub context_length: usize,
    pub tie_word_embeddings: bool,
}

/// The most positions the engine keeps rotary tables for: a model trained for a longer context
/// is used up to this length (prompts and replies here are a few thousand tokens at most), and a
/// damaged header cannot make the tables fill the memory.
pub const MAX_CONTEXT_POSITIONS: usize = 131_072;
/// The largest width of one attention head any supported model has is 256; beyond this a header
/// is damaged.
pub const MAX_HEAD_DIM: usize = 1024;
/// A bound on every other dimension (layers, heads, widths, vocabulary), so that their products
/// cannot overflow.
pub const MAX_DIMENSION: usize = 1 << 24;

impl ModelConfig {
    /// The context the engine uses for a model that declares `declared` positions.
    pub fn usable_context(declared: usize) -> usize {
        declared.min(MAX_CONTEXT_POSITIONS)
    }

    /// The factor the query rows of the fused qkv weight are stored multiplied by, 1/sqrt(head
    /// dim): attention then needs no scaling, and an adapter's q update carries it too.
    pub fn query_prescale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }

    /// Input and output widths of a decoder module (PEFT's names: `q_proj` ... `down_proj`).
    pub fn module_shape(&self, module: &str) -> (usize, usize) {
        let (hidden, intermediate) = (self.hidden_size, self.intermediate_size);
        let q_rows = self.num_heads * self.head_dim;
        let kv_rows = self.num_kv_heads * self.head_dim;
        match module {
            "q_proj" => (hidden, q_rows),
            "k_proj" | "v_proj" => (hidden, kv_rows),
            "o_proj" => (q_rows, hidden),
            "gate_proj" | "up_proj" => (hidden, intermediate),
            _ => (intermediate, hidden), // down_proj
        }
    }

    /// Checks the relations the forward pass relies on, and bounds a damaged header's numbers.
    pub fn validate(&self) -> Result<()> {
        let invalid = |key: &str, reason: String| Err(EngineError::InvalidMetadata { key: key.to_string(), reason });
        let dimensions = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
        ];
        if let Some((key, value)) = dimensions.into_iter().find(|(_, value)| *value > MAX_DIMENSION) {
            return invalid(key, format!("{value} is beyond any model (at most {MAX_DIMENSION})"));
        }
        if self.head_dim > MAX_HEAD_DIM {
            return invalid("head_dim", format!("{} is beyond any model (at most {MAX_HEAD_DIM})", self.head_dim));
        }
        if self.context_length > MAX_CONTEXT_POSITIONS {
            return invalid(
                "context_length",
                format!(
                    "{} positions: use ModelConfig::usable_context (at most {MAX_CONTEXT_POSITIONS})",
                    self.context_length
                ),
            );
        }
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.num_layers == 0 {
            return invalid("heads/layers", "must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return invalid(
                "num_kv_heads",
                format!("{} query heads are not a multiple of {} key/value heads", self.num_heads, self.num_kv_heads),
            );
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return invalid("head_dim", format!("{} is not a positive even number", self.head_dim));
        }
        if let Some(factors) = &self.rope_freq_factors {
            if factors.len() != self.head_dim / 2 {
                return invalid(
                    "rope_freq_factors",
                    format!("{} factors for head_dim {}", factors.len(), self.head_dim),
                );
            }
        }
        if self.context_length == 0 || self.vocab_size == 0 || self.hidden_size == 0 {
            return invalid("context/vocab/hidden", "must be positive".into());
        }
        Ok(())
    }

    /// Query heads that share one key/value head.
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }
}
