//! The forward pass on the CPU in f32 with the fused kernels of [`super::cpu_kernels`]: weights
//! are read in place, activations live in a few buffers per pass, projections are single GEMMs
//! with the residual add fused in, and attention runs on the packed rows without padding or masks.

use std::ops::Range;

use candle_core::{CpuStorage, Device, Storage, StorageRef, Tensor};

use super::cpu_kernels::{
    add_bias, attention, matmul_transposed, rms_norm, rope_in_place, swiglu, AttentionShape, SharedPast,
};
use super::error::{EngineError, Result};
use super::model::{ForwardOutput, KvCache, LlamaModel, Packing};

/// A contiguous f32 CPU tensor's data, borrowed for the duration of a pass.
struct HostSlice<'a> {
    storage: StorageRef<'a>,
    range: Range<usize>,
}

impl<'a> HostSlice<'a> {
    fn of(tensor: &'a Tensor, what: &str) -> Result<Self> {
        let (storage, layout) = tensor.storage_and_layout();
        let (start, end) =
            layout.contiguous_offsets().ok_or_else(|| EngineError::KernelInput(format!("{what} is not contiguous")))?;
        if !matches!(&*storage, Storage::Cpu(CpuStorage::F32(_))) {
            return Err(EngineError::KernelInput(format!("{what} is not f32 on the CPU")));
        }
        Ok(HostSlice { storage, range: start..end })
    }

    fn data(&self) -> &[f32] {
        match &*self.storage {
            Storage::Cpu(CpuStorage::F32(data)) => &data[self.range.clone()],
            // `of` admits f32 CPU storage only.
            _ => &[],
        }
    }
}

impl LlamaModel {
    pub(super) fn forward_cpu(
        &self,
        past: Option<&KvCache>,
        packing: &Packing,
        keep_cache: bool,
    ) -> Result<ForwardOutput> {
        let config = &self.config;
        let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
        let shape =
            AttentionShape { heads: config.num_heads, kv_heads: config.num_kv_heads, head_dim: config.head_dim };
        let q_width = shape.heads * shape.head_dim;
        let kv_width = shape.kv_heads * shape.head_dim;
        let qkv_width = q_width + 2 * kv_width;
        let eps = config.rms_norm_eps as f32;
        let rows = packing.tokens.len();
        let output_rows: Vec<usize> = packing.output_rows.iter().map(|&r| r as usize).collect();

        let embeddings = HostSlice::of(&self.embeddings, "the embeddings")?;
        let mut residual = vec![0.0f32; rows * hidden];
        for (row, &token) in residual.chunks_exact_mut(hidden).zip(&packing.tokens) {
            let token = token as usize;
            row.copy_from_slice(&embeddings.data()[token * hidden..(token + 1) * hidden]);
        }
        let cos = HostSlice::of(&self.rotary.cos, "the RoPE cosines")?;
        let sin = HostSlice::of(&self.rotary.sin, "the RoPE sines")?;

        let mut normed = vec![0.0f32; rows * hidden];
        let mut qkv = vec![0.0f32; rows * qkv_width];
        let mut attended = vec![0.0f32; rows * q_width];
        let mut gate_up = vec![0.0f32; rows * 2 * intermediate];
        let mut activated = vec![0.0f32; rows * intermediate];
        let mut new_layers = Vec::with_capacity(if keep_cache { self.blocks.len() } else { 0 });
        let mut live_rows = rows;
        for (index, block) in self.blocks.iter().enumerate() {
            rms_norm(&residual, HostSlice::of(&block.attention_norm, "a norm")?.data(), eps, &mut normed);
            matmul_transposed(&mut qkv, false, &normed, HostSlice::of(&block.qkv.weight, "qkv")?.data(), hidden)?;
            if let Some(bias) = &block.qkv.bias {
                add_bias(&mut qkv, HostSlice::of(bias, "the qkv bias")?.data());
            }
            rope_in_place(
                &mut qkv,
                qkv_width,
                shape.heads + shape.kv_heads,
                shape.head_dim,
                &packing.positions,
                cos.data(),
                sin.data(),
            );
            let past_layer = past.map(|cache| &cache.layers[index]);
            let past_keys = past_layer.map(|(keys, _)| HostSlice::of(keys, "cached keys")).transpose()?;
            let past_values = past_layer.map(|(_, values)| HostSlice::of(values, "cached values")).transpose()?;
            let shared_past = match (&past_keys, &past_values, past) {
                (Some(keys), Some(values), Some(cache)) => {
                    Some(SharedPast { keys: keys.data(), values: values.data(), len: cache.len })
                }
                _ => None,
            };
            attention(&qkv, shape, shared_past, &packing.spans, &mut attended);
            if keep_cache {
                new_layers.push(extend_cache(past_layer, &qkv, rows, shape)?);
            }

            // The last layer's MLP runs only for the rows whose distribution is wanted.
            if index + 1 == self.blocks.len() {
                residual = gather_rows(&residual, hidden, &output_rows);
                attended = gather_rows(&attended, q_width, &output_rows);
                live_rows = output_rows.len();
            }
            let normed = &mut normed[..live_rows * hidden];
            let gate_up = &mut gate_up[..live_rows * 2 * intermediate];
            let activated = &mut activated[..live_rows * intermediate];
            let output_weight = HostSlice::of(&block.attention_output.weight, "the attention output")?;
            matmul_transposed(&mut residual, true, &attended, output_weight.data(), q_width)?;
            rms_norm(&residual, HostSlice::of(&block.mlp_norm, "a norm")?.data(), eps, normed);
            matmul_transposed(gate_up, false, normed, HostSlice::of(&block.gate_up.weight, "gate/up")?.data(), hidden)?;
            swiglu(gate_up, intermediate, activated);
            matmul_transposed(
                &mut residual,
                true,
                activated,
                HostSlice::of(&block.down.weight, "down")?.data(),
                intermediate,
            )?;
        }
        let mut final_hidden = vec![0.0f32; live_rows * hidden];
        rms_norm(&residual, HostSlice::of(&self.final_norm, "the final norm")?.data(), eps, &mut final_hidden);
        let hidden_states = Tensor::from_vec(final_hidden, (live_rows, hidden), &Device::Cpu)?;
        let cache = keep_cache.then(|| KvCache { layers: new_layers, len: past.map_or(0, KvCache::len) + rows });
        Ok(ForwardOutput { hidden: hidden_states, cache })
    }
}

fn gather_rows(data: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    let mut gathered = Vec::with_capacity(rows.len() * width);
    for &row in rows {
        gathered.extend_from_slice(&data[row * width..(row + 1) * width]);
    }
    gathered
}

/// The layer's cache after appending this pass's (rotated) keys and values, `[kv_heads, len, head_dim]`.
fn extend_cache(
    past: Option<&(Tensor, Tensor)>,
    qkv: &[f32],
    rows: usize,
    shape: AttentionShape,
) -> Result<(Tensor, Tensor)> {
    let AttentionShape { heads, kv_heads, head_dim } = shape;
    let row_width = (heads + 2 * kv_heads) * head_dim;
    let split = |first_head: usize| -> Result<Tensor> {
        let mut data = Vec::with_capacity(kv_heads * rows * head_dim);
        for kv_head in 0..kv_heads {
            for row in qkv.chunks_exact(row_width) {
                let start = (first_head + kv_head) * head_dim;
                data.extend_from_slice(&row[start..start + head_dim]);
            }
        }
        Ok(Tensor::from_vec(data, (kv_heads, rows, head_dim), &Device::Cpu)?)
    };
    let (keys, values) = (split(heads)?, split(heads + kv_heads)?);
    Ok(match past {
        Some((past_keys, past_values)) => {
            (Tensor::cat(&[past_keys, &keys], 1)?, Tensor::cat(&[past_values, &values], 1)?)
        }
        None => (keys, values),
    })
}
