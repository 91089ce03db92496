//! The llama-family decoder (Llama, SmolLM, Qwen2) with a forward pass built for scoring many
//! prompts at once: the prompts of a batch are packed into one token matrix (no padding in the
//! projections), share the key/value cache of their common prefix, and only the rows whose
//! next-token distribution is wanted go through the last layer's MLP and the head.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::ModelConfig;
use super::cpu_forward::{self, HostSlice};
use super::cpu_kernels::SequenceSpan;
use super::decoder::{DecoderBlock, DecoderWeights, Packing, RotaryTables};
use super::error::{EngineError, Result};
use super::lora::{lora_dropout, LoraAdapter};
use super::projection::{frozen_matmul, Projection};

pub use super::decoder::{ForwardOutput, KvCache, SequenceInput};

/// A llama-family decoder with its weights.
#[derive(Debug, Clone)]
pub struct LlamaModel {
    pub(super) config: ModelConfig,
    device: Device,
    dtype: DType,
    pub(super) embeddings: Tensor,
    pub(super) blocks: Vec<DecoderBlock>,
    pub(super) final_norm: Tensor,
    lm_head: Tensor,
    pub(super) rotary: RotaryTables,
    /// Run the fused f32 CPU kernels instead of generic tensor ops (CPU + f32 only).
    cpu_kernels: bool,
}

/// What every layer of one forward pass shares.
#[derive(Clone, Copy)]
struct BlockPass<'a> {
    layout: &'a BatchLayout,
    cos: &'a Tensor,
    sin: &'a Tensor,
    keep_cache: bool,
    /// Use operations that have gradients (training); the fused candle ops have none.
    differentiable: bool,
}

/// Index tensors and the attention mask of one batch, shared by every layer.
struct BatchLayout {
    tokens: Tensor,
    positions: Tensor,
    /// For each padded slot `[sequence * padded_len + t]`, the packed row it reads.
    padded_rows: Tensor,
    /// For each packed row, its padded slot.
    packed_rows: Tensor,
    output_rows: Tensor,
    /// Additive mask `[sequences, 1, padded_len * group, past + padded_len]`: 0 or -inf.
    mask: Tensor,
    sequences: usize,
    padded_len: usize,
    total_rows: usize,
}

impl LlamaModel {
    /// Builds the model from weights in Hugging Face names (`model.layers.N.self_attn.q_proj.weight`, ...).
    pub fn new(config: ModelConfig, weights: VarBuilder) -> Result<Self> {
        config.validate()?;
        let device = weights.device().clone();
        let dtype = weights.dtype();
        let get = |shape: &[usize], name: &str| -> Result<Tensor> {
            if !weights.contains_tensor(name) {
                return Err(EngineError::MissingTensor { name: name.to_string() });
            }
            Ok(weights.get(shape, name)?)
        };
        let (hidden, head_dim) = (config.hidden_size, config.head_dim);
        let q_rows = config.num_heads * head_dim;
        let kv_rows = config.num_kv_heads * head_dim;
        let query_scale = config.query_prescale();
        let embeddings = get(&[config.vocab_size, hidden], "model.embed_tokens.weight")?;
        let mut blocks = Vec::with_capacity(config.num_layers);
        for layer in 0..config.num_layers {
            let name = |suffix: &str| format!("model.layers.{layer}.{suffix}");
            let q = (get(&[q_rows, hidden], &name("self_attn.q_proj.weight"))? * query_scale)?;
            let k = get(&[kv_rows, hidden], &name("self_attn.k_proj.weight"))?;
            let v = get(&[kv_rows, hidden], &name("self_attn.v_proj.weight"))?;
            let qkv_bias = if config.architecture.has_qkv_bias() {
                let q_bias = (get(&[q_rows], &name("self_attn.q_proj.bias"))? * query_scale)?;
                let k_bias = get(&[kv_rows], &name("self_attn.k_proj.bias"))?;
                let v_bias = get(&[kv_rows], &name("self_attn.v_proj.bias"))?;
                Some(Tensor::cat(&[q_bias, k_bias, v_bias], 0)?)
            } else {
                None
            };
            let gate = get(&[config.intermediate_size, hidden], &name("mlp.gate_proj.weight"))?;
            let up = get(&[config.intermediate_size, hidden], &name("mlp.up_proj.weight"))?;
            blocks.push(DecoderBlock {
                attention_norm: get(&[hidden], &name("input_layernorm.weight"))?,
                qkv: Projection::new(Tensor::cat(&[q, k, v], 0)?, qkv_bias),
                attention_output: Projection::new(get(&[hidden, q_rows], &name("self_attn.o_proj.weight"))?, None),
                mlp_norm: get(&[hidden], &name("post_attention_layernorm.weight"))?,
                gate_up: Projection::new(Tensor::cat(&[gate, up], 0)?, None),
                down: Projection::new(get(&[hidden, config.intermediate_size], &name("mlp.down_proj.weight"))?, None),
            });
        }
        let final_norm = get(&[hidden], "model.norm.weight")?;
        let lm_head = if weights.contains_tensor("lm_head.weight") {
            get(&[config.vocab_size, hidden], "lm_head.weight")?
        } else if config.tie_word_embeddings {
            embeddings.clone()
        } else {
            return Err(EngineError::MissingTensor { name: "lm_head.weight".into() });
        };
        let rotary = RotaryTables::new(&config, dtype, &device)?;
        // Unoptimised (debug) builds run the kernels' loops slowly; their tests enable them explicitly.
        let cpu_kernels = cfg!(not(debug_assertions)) && device.is_cpu() && dtype == DType::F32;
        Ok(LlamaModel { config, device, dtype, embeddings, blocks, final_norm, lm_head, rotary, cpu_kernels })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Chooses between the fused CPU kernels (the default for f32 on the CPU in optimised builds)
    /// and generic tensor ops (any device); both compute the same function.
    pub fn set_cpu_kernels(&mut self, enabled: bool) {
        self.cpu_kernels = enabled && self.device.is_cpu() && self.dtype == DType::F32;
    }

    pub fn uses_cpu_kernels(&self) -> bool {
        self.cpu_kernels
    }

    /// Runs the projections of the fused CPU path as bf16 GEMMs (AMX tiles where the CPU has
    /// them; see [`super::amx`]) from weights rounded and packed here, once; attention, norms and
    /// the output head stay f32. The f32 path remains the reference.
    pub fn pack_bf16(&mut self) -> Result<()> {
        if !self.cpu_kernels {
            return Err(EngineError::KernelInput(
                "bf16 projections need the fused f32 CPU path (an optimised build, CPU, f32, no unmerged adapter)"
                    .into(),
            ));
        }
        for block in &mut self.blocks {
            for projection in [&mut block.qkv, &mut block.attention_output, &mut block.gate_up, &mut block.down] {
                projection.pack_bf16()?;
            }
        }
        Ok(())
    }

    /// Whether the projections run in bf16 ([`Self::pack_bf16`]).
    pub fn uses_bf16(&self) -> bool {
        self.blocks.first().is_some_and(|block| block.qkv.bf16().is_some())
    }

    /// A copy of the model that runs `adapter` beside its frozen weights (unmerged). It uses the
    /// generic tensor path, so gradients reach the adapter's variables when training.
    pub fn with_adapter(&self, adapter: &LoraAdapter) -> Result<LlamaModel> {
        self.with_adapter_and_dropout(adapter, None)
    }

    /// As [`LlamaModel::with_adapter`], with the adapter's dropout on its inputs, masks drawn from
    /// a generator seeded with `dropout_seed` (training); no dropout when `None`.
    pub fn with_adapter_and_dropout(&self, adapter: &LoraAdapter, dropout_seed: Option<u64>) -> Result<LlamaModel> {
        adapter.check_fits(&self.config, None)?;
        let dropout = lora_dropout(&adapter.settings, dropout_seed);
        let mut model = self.clone();
        for (layer, block) in model.blocks.iter_mut().enumerate() {
            for (projection, modules) in block.projections_mut() {
                *projection =
                    projection.with_adapter(adapter.projection_adapter(&self.config, layer, modules, dropout.as_ref()));
            }
        }
        model.set_cpu_kernels(false);
        Ok(model)
    }

    /// A copy of the model with `adapter` merged into its weights (`W + scale · B A`): answers
    /// cost what the base model's do, and the fused CPU kernels still apply.
    pub fn merged_with(&self, adapter: &LoraAdapter) -> Result<LlamaModel> {
        adapter.check_fits(&self.config, None)?;
        let mut model = self.clone();
        for (layer, block) in model.blocks.iter_mut().enumerate() {
            for (projection, modules) in block.projections_mut() {
                let delta = adapter.projection_delta(&self.config, layer, modules, &self.device)?;
                *projection = projection.merged(&delta)?;
            }
        }
        Ok(model)
    }

    /// The weights a forward pass reads.
    fn weights(&self) -> DecoderWeights<'_> {
        DecoderWeights {
            config: &self.config,
            embeddings: &self.embeddings,
            blocks: &self.blocks,
            final_norm: &self.final_norm,
            rotary: &self.rotary,
        }
    }

    /// The weights of every projection GEMM of a forward pass with their input widths (for
    /// benchmarks of those shapes).
    pub(crate) fn projection_slices(&self) -> Result<Vec<(HostSlice<'_>, usize)>> {
        cpu_forward::projection_slices(self.weights())
    }

    /// The output head `[vocab, hidden]` (the embeddings when tied).
    pub(crate) fn head_weight(&self) -> &Tensor {
        &self.lm_head
    }

    /// Rows of the output head for `token_ids`, to project hidden states onto those tokens only.
    pub fn head_rows(&self, token_ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_slice(token_ids, token_ids.len(), &self.device)?;
        Ok(self.lm_head.index_select(&ids, 0)?.contiguous()?)
    }

    /// Logits over the whole vocabulary, `[rows, vocab]`, in f32.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden.matmul(&self.lm_head.t()?)?.to_dtype(DType::F32)?)
    }

    /// Logits over the whole vocabulary in the model's own precision (f32 for bf16 models): the
    /// training loss, where f64 models (gradient checks) must stay f64.
    pub fn logits_for_loss(&self, hidden: &Tensor) -> Result<Tensor> {
        let logits = frozen_matmul(hidden, &self.lm_head)?;
        Ok(if self.dtype == DType::F64 { logits } else { logits.to_dtype(DType::F32)? })
    }

    /// Logits over the tokens whose head rows are given, `[rows, tokens]`, in f32.
    pub fn logits_for(&self, hidden: &Tensor, head_rows: &Tensor) -> Result<Tensor> {
        Ok(hidden.matmul(&head_rows.t()?)?.to_dtype(DType::F32)?)
    }

    /// Runs `sequences` after a shared `past` and returns the final hidden states of their last
    /// tokens and branch tokens.
    pub fn forward(
        &self,
        past: Option<&KvCache>,
        sequences: &[SequenceInput],
        keep_cache: bool,
    ) -> Result<ForwardOutput> {
        let past_len = past.map_or(0, KvCache::len);
        if keep_cache && (sequences.len() != 1 || !sequences[0].branch_tokens.is_empty()) {
            return Err(EngineError::InvalidBatch("a cache is kept only for one sequence without branches".into()));
        }
        let packing = Packing::new(past_len, sequences, &self.config)?;
        if self.cpu_kernels {
            return cpu_forward::forward_cpu(self.weights(), past, &packing, keep_cache);
        }
        self.forward_generic(past, &packing, keep_cache, false)
    }

    /// Runs `sequences` (no branches) after a shared `past` and returns the final hidden states
    /// of every row, all sequences' rows in order: the next-token distribution after each token
    /// (cloze scoring of multi-token continuations).
    pub fn forward_every_row(&self, past: Option<&KvCache>, sequences: &[SequenceInput]) -> Result<Tensor> {
        if sequences.iter().any(|s| !s.branch_tokens.is_empty()) {
            return Err(EngineError::InvalidBatch("every-row passes take no branch tokens".into()));
        }
        let past_len = past.map_or(0, KvCache::len);
        let mut packing = Packing::new(past_len, sequences, &self.config)?;
        packing.output_rows = (0..packing.tokens.len() as u32).collect();
        let output = if self.cpu_kernels {
            cpu_forward::forward_cpu(self.weights(), past, &packing, false)?
        } else {
            self.forward_generic(past, &packing, false, false)?
        };
        Ok(output.hidden)
    }

    /// The training forward pass: each sequence from its first token, with operations that
    /// have gradients; returns the final hidden states of the rows at `rows[i]` (positions within
    /// sequence `i`), all sequences' rows in order.
    pub fn forward_rows(&self, sequences: &[&[u32]], rows: &[Vec<usize>]) -> Result<Tensor> {
        if sequences.len() != rows.len() {
            return Err(EngineError::InvalidBatch(format!(
                "{} sequences but rows for {}",
                sequences.len(),
                rows.len()
            )));
        }
        let inputs: Vec<SequenceInput> =
            sequences.iter().map(|tokens| SequenceInput { tokens, branch_tokens: &[] }).collect();
        let mut packing = Packing::new(0, &inputs, &self.config)?;
        let mut output_rows = Vec::new();
        for (span, wanted) in packing.spans.iter().zip(rows) {
            if let Some(row) = wanted.iter().find(|&&row| row >= span.main_len) {
                return Err(EngineError::InvalidBatch(format!(
                    "row {row} is outside a sequence of {} tokens",
                    span.main_len
                )));
            }
            output_rows.extend(wanted.iter().map(|row| (span.start + row) as u32));
        }
        if output_rows.is_empty() {
            return Err(EngineError::InvalidBatch("no output rows".into()));
        }
        packing.output_rows = output_rows;
        Ok(self.forward_generic(None, &packing, false, true)?.hidden)
    }

    fn forward_generic(
        &self,
        past: Option<&KvCache>,
        packing: &Packing,
        keep_cache: bool,
        differentiable: bool,
    ) -> Result<ForwardOutput> {
        let past_len = past.map_or(0, KvCache::len);
        let layout = self.layout(past_len, packing)?;
        let cos = self.rotary.cos.index_select(&layout.positions, 0)?;
        let sin = self.rotary.sin.index_select(&layout.positions, 0)?;
        let mut hidden = self.embeddings.index_select(&layout.tokens, 0)?;
        let mut new_layers = Vec::with_capacity(if keep_cache { self.blocks.len() } else { 0 });
        let pass = BlockPass { layout: &layout, cos: &cos, sin: &sin, keep_cache, differentiable };
        for (index, block) in self.blocks.iter().enumerate() {
            let past_layer = past.map(|cache| &cache.layers[index]);
            let is_last = index + 1 == self.blocks.len();
            let (next, layer_cache) = self.block_forward(block, &hidden, past_layer, &pass, is_last)?;
            hidden = next;
            new_layers.extend(layer_cache);
        }
        let hidden = rms_norm(&hidden, &self.final_norm, self.config.rms_norm_eps as f32, differentiable)?;
        let cache = keep_cache.then(|| KvCache { layers: new_layers, len: past_len + layout.total_rows });
        Ok(ForwardOutput { hidden, cache })
    }

    fn block_forward(
        &self,
        block: &DecoderBlock,
        hidden: &Tensor,
        past: Option<&(Tensor, Tensor)>,
        pass: &BlockPass,
        is_last: bool,
    ) -> Result<(Tensor, Option<(Tensor, Tensor)>)> {
        let BlockPass { layout, cos, sin, keep_cache, differentiable } = *pass;
        let config = &self.config;
        let (heads, kv_heads, head_dim) = (config.num_heads, config.num_kv_heads, config.head_dim);
        let group = config.group_size();
        let (sequences, padded_len, rows) = (layout.sequences, layout.padded_len, layout.total_rows);
        let eps = config.rms_norm_eps as f32;

        let normed = rms_norm(hidden, &block.attention_norm, eps, differentiable)?;
        let qkv = block.qkv.forward(&normed)?;
        let rotate = |start: usize, count: usize| -> Result<Tensor> {
            let part =
                qkv.narrow(1, start * head_dim, count * head_dim)?.contiguous()?.reshape((1, rows, count, head_dim))?;
            Ok(rope_thd(&part, cos, sin, differentiable)?.reshape((rows, count * head_dim))?)
        };
        let queries = rotate(0, heads)?;
        let keys = rotate(heads, kv_heads)?;
        let values = qkv.narrow(1, (heads + kv_heads) * head_dim, kv_heads * head_dim)?.contiguous()?;

        // Padded per sequence; query heads grouped under their key/value head: [seq, kv, t * group, d].
        let queries = queries
            .index_select(&layout.padded_rows, 0)?
            .reshape((sequences, padded_len, kv_heads, group, head_dim))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?
            .reshape((sequences, kv_heads, padded_len * group, head_dim))?;
        let pad_kv = |tensor: &Tensor| -> Result<Tensor> {
            Ok(tensor
                .index_select(&layout.padded_rows, 0)?
                .reshape((sequences, padded_len, kv_heads, head_dim))?
                .transpose(1, 2)?)
        };
        let (new_keys, new_values) = (pad_kv(&keys)?, pad_kv(&values)?);
        let (all_keys, all_values) = match past {
            Some((past_keys, past_values)) => {
                let past_len = past_keys.dim(1)?;
                let shared = |t: &Tensor| t.unsqueeze(0)?.broadcast_as((sequences, kv_heads, past_len, head_dim));
                (
                    Tensor::cat(&[&shared(past_keys)?, &new_keys], 2)?.contiguous()?,
                    Tensor::cat(&[&shared(past_values)?, &new_values], 2)?.contiguous()?,
                )
            }
            None => (new_keys.contiguous()?, new_values.contiguous()?),
        };
        let scores = queries.matmul(&all_keys.t()?)?.broadcast_add(&layout.mask)?;
        let weights = if differentiable {
            candle_nn::ops::softmax(&scores, candle_core::D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let attended = weights
            .matmul(&all_values)?
            .reshape((sequences, kv_heads, padded_len, group, head_dim))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?
            .reshape((sequences * padded_len, heads * head_dim))?
            .index_select(&layout.packed_rows, 0)?;

        // The last layer's MLP runs only for the rows whose distribution is wanted.
        let (attended, residual) = if is_last {
            (attended.index_select(&layout.output_rows, 0)?, hidden.index_select(&layout.output_rows, 0)?)
        } else {
            (attended, hidden.clone())
        };
        let hidden = (residual + block.attention_output.forward(&attended)?)?;
        let normed = rms_norm(&hidden, &block.mlp_norm, eps, differentiable)?;
        let gate_up = block.gate_up.forward(&normed)?;
        let intermediate = config.intermediate_size;
        let activated =
            (gate_up.narrow(1, 0, intermediate)?.silu()? * gate_up.narrow(1, intermediate, intermediate)?)?;
        let hidden = (hidden + block.down.forward(&activated)?)?;
        let layer_cache = if keep_cache { Some((all_keys.squeeze(0)?, all_values.squeeze(0)?)) } else { None };
        Ok((hidden, layer_cache))
    }

    /// Padded per-sequence indices and the attention mask of the generic path.
    fn layout(&self, past_len: usize, packing: &Packing) -> Result<BatchLayout> {
        let group = self.config.group_size();
        let sequences = packing.spans.len();
        let padded_len = packing.spans.iter().map(SequenceSpan::len).max().unwrap_or(1);
        let key_len = past_len + padded_len;
        let mut padded_rows = vec![0u32; sequences * padded_len];
        let mut packed_rows = Vec::with_capacity(packing.tokens.len());
        let mut mask = vec![f32::NEG_INFINITY; sequences * padded_len * group * key_len];
        for (index, span) in packing.spans.iter().enumerate() {
            for t in 0..padded_len {
                let slot = index * padded_len + t;
                let is_real = t < span.len();
                if is_real {
                    padded_rows[slot] = (span.start + t) as u32;
                    packed_rows.push(slot as u32);
                }
                for member in 0..group {
                    let row_start = (slot * group + member) * key_len;
                    let row = &mut mask[row_start..row_start + key_len];
                    if !is_real {
                        // Padding rows attend to one key so that softmax stays finite; they are discarded.
                        row[0] = 0.0;
                        continue;
                    }
                    row[..past_len].fill(0.0);
                    let own = &mut row[past_len..];
                    if t < span.main_len {
                        own[..=t].fill(0.0);
                    } else {
                        own[..span.main_len].fill(0.0);
                        own[t] = 0.0;
                    }
                }
            }
        }
        let device = &self.device;
        let index = |values: &[u32]| -> Result<Tensor> { Ok(Tensor::from_slice(values, values.len(), device)?) };
        let mask = Tensor::from_vec(mask, (sequences, 1, padded_len * group, key_len), &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(device)?;
        Ok(BatchLayout {
            tokens: index(&packing.tokens)?,
            positions: index(&packing.positions)?,
            padded_rows: index(&padded_rows)?,
            packed_rows: index(&packed_rows)?,
            output_rows: index(&packing.output_rows)?,
            mask,
            sequences,
            padded_len,
            total_rows: packing.tokens.len(),
        })
    }
}

/// RMS normalisation; candle's fused op has no gradient, its composed form has.
fn rms_norm(input: &Tensor, weight: &Tensor, eps: f32, differentiable: bool) -> Result<Tensor> {
    Ok(if differentiable {
        candle_nn::ops::rms_norm_slow(input, weight, eps)?
    } else {
        candle_nn::ops::rms_norm(input, weight, eps)?
    })
}

/// Rotary embedding of `[1, rows, heads, head_dim]` (halves rotated, the Hugging Face layout) with
/// per-row tables `[rows, head_dim / 2]`; the composed form has gradients.
fn rope_thd(input: &Tensor, cos: &Tensor, sin: &Tensor, differentiable: bool) -> Result<Tensor> {
    if !differentiable {
        return Ok(candle_nn::rotary_emb::rope_thd(input, cos, sin)?);
    }
    let (_, rows, _, head_dim) = input.dims4()?;
    let half = head_dim / 2;
    let full =
        |table: &Tensor| -> Result<Tensor> { Ok(Tensor::cat(&[table, table], 1)?.reshape((1, rows, 1, head_dim))?) };
    let first = input.narrow(3, 0, half)?;
    let second = input.narrow(3, half, half)?;
    let rotated = Tensor::cat(&[&second.neg()?, &first], 3)?;
    Ok((input.broadcast_mul(&full(cos)?)? + rotated.broadcast_mul(&full(sin)?)?)?)
}

/// Log of the softmax normaliser of each row of `logits` (`[rows, vocab]`), in f64.
pub fn log_normalizers(logits: &Tensor) -> Result<Vec<f64>> {
    let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows.iter().map(|row| log_sum_exp(row)).collect())
}

pub fn log_sum_exp(values: &[f32]) -> f64 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}
