//! The decoder's pieces, shared by the model's two forward paths (the generic tensor path in
//! [`crate::model`] and the fused CPU kernels in [`crate::cpu_forward`]): the layers, the rotary
//! tables, the KV cache, and how a batch of sequences is laid out.

use candle_core::{DType, Device, Tensor};

use super::config::ModelConfig;
use super::cpu_kernels::SequenceSpan;
use super::error::{EngineError, Result};
use super::projection::Projection;

/// Keys and values of every layer for a run of tokens, `[kv_heads, tokens, head_dim]` each.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<(Tensor, Tensor)>,
    pub(crate) len: usize,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cache of the first `len` tokens; keys of a token depend only on the tokens before it.
    pub fn truncated(&self, len: usize) -> Result<Option<KvCache>> {
        if len == 0 {
            return Ok(None);
        }
        let len = len.min(self.len);
        let layers = self
            .layers
            .iter()
            .map(|(keys, values)| Ok((keys.narrow(1, 0, len)?.contiguous()?, values.narrow(1, 0, len)?.contiguous()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(KvCache { layers, len }))
    }
}

/// One sequence of a batch: the tokens after the shared past, and optional branch tokens that
/// each continue the whole sequence on their own (siblings that do not see each other).
#[derive(Debug, Clone, Copy)]
pub struct SequenceInput<'a> {
    pub tokens: &'a [u32],
    pub branch_tokens: &'a [u32],
}

/// The final hidden states (after the last norm) of the output rows: per sequence, its last
/// token then its branch tokens, in order.
#[derive(Debug)]
pub struct ForwardOutput {
    pub hidden: Tensor,
    /// The past extended with the new tokens; only for a single sequence without branches.
    pub cache: Option<KvCache>,
}

#[derive(Debug, Clone)]
pub(crate) struct DecoderBlock {
    pub(crate) attention_norm: Tensor,
    /// q, k and v stacked row-wise (one GEMM); q rows pre-scaled by 1/sqrt(head_dim).
    pub(crate) qkv: Projection,
    pub(crate) attention_output: Projection,
    pub(crate) mlp_norm: Tensor,
    /// gate and up stacked row-wise (one GEMM).
    pub(crate) gate_up: Projection,
    pub(crate) down: Projection,
}

/// The PEFT modules each fused projection stacks, in row order.
pub(crate) const QKV_MODULES: [&str; 3] = ["q_proj", "k_proj", "v_proj"];
pub(crate) const GATE_UP_MODULES: [&str; 2] = ["gate_proj", "up_proj"];

impl DecoderBlock {
    /// The block's projections with the PEFT modules each stacks.
    pub(crate) fn projections_mut(&mut self) -> [(&mut Projection, &'static [&'static str]); 4] {
        [
            (&mut self.qkv, &QKV_MODULES),
            (&mut self.attention_output, &["o_proj"]),
            (&mut self.gate_up, &GATE_UP_MODULES),
            (&mut self.down, &["down_proj"]),
        ]
    }
}

/// Cosine and sine of the rotary angles per position, `[positions, head_dim / 2]`.
#[derive(Debug, Clone)]
pub(crate) struct RotaryTables {
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
}

impl RotaryTables {
    pub(crate) fn new(config: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let half = config.head_dim / 2;
        let inverse_frequencies: Vec<f64> = (0..half)
            .map(|i| {
                let base = 1.0 / config.rope_theta.powf(2.0 * i as f64 / config.head_dim as f64);
                match &config.rope_freq_factors {
                    Some(factors) => base / f64::from(factors[i]),
                    None => base,
                }
            })
            .collect();
        let positions = config.context_length;
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for position in 0..positions {
            for frequency in &inverse_frequencies {
                let angle = position as f64 * frequency;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table = |values: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(values, (positions, half), &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
        };
        Ok(RotaryTables { cos: table(cos)?, sin: table(sin)? })
    }
}

/// The rows of one batch laid end to end: tokens, their positions, where each sequence is, and
/// which rows' hidden states are returned.
pub(crate) struct Packing {
    pub(crate) tokens: Vec<u32>,
    pub(crate) positions: Vec<u32>,
    pub(crate) spans: Vec<SequenceSpan>,
    pub(crate) output_rows: Vec<u32>,
}

impl Packing {
    pub(crate) fn new(past_len: usize, sequences: &[SequenceInput], config: &ModelConfig) -> Result<Self> {
        if sequences.is_empty() || sequences.iter().any(|s| s.tokens.is_empty()) {
            return Err(EngineError::InvalidBatch("every sequence needs at least one token".into()));
        }
        let mut packing =
            Packing { tokens: Vec::new(), positions: Vec::new(), spans: Vec::new(), output_rows: Vec::new() };
        for sequence in sequences {
            let main_len = sequence.tokens.len();
            let start = packing.tokens.len();
            let branch_position = past_len + main_len;
            let furthest = branch_position + usize::from(!sequence.branch_tokens.is_empty());
            if furthest > config.context_length {
                return Err(EngineError::InvalidBatch(format!(
                    "{furthest} tokens do not fit the context of {}",
                    config.context_length
                )));
            }
            if let Some(id) =
                sequence.tokens.iter().chain(sequence.branch_tokens).find(|&&id| id as usize >= config.vocab_size)
            {
                return Err(EngineError::InvalidBatch(format!("token id {id} is outside the vocabulary")));
            }
            packing.tokens.extend_from_slice(sequence.tokens);
            packing.tokens.extend_from_slice(sequence.branch_tokens);
            packing.positions.extend((past_len..branch_position).map(|p| p as u32));
            packing.positions.extend(sequence.branch_tokens.iter().map(|_| branch_position as u32));
            let span = SequenceSpan { start, main_len, branch_len: sequence.branch_tokens.len() };
            packing.output_rows.push((start + main_len - 1) as u32);
            packing.output_rows.extend((start + main_len..start + span.len()).map(|row| row as u32));
            packing.spans.push(span);
        }
        Ok(packing)
    }
}

/// The weights a forward pass reads, borrowed from the model.
#[derive(Clone, Copy)]
pub(crate) struct DecoderWeights<'a> {
    pub config: &'a ModelConfig,
    pub embeddings: &'a Tensor,
    pub blocks: &'a [DecoderBlock],
    pub final_norm: &'a Tensor,
    pub rotary: &'a RotaryTables,
}
