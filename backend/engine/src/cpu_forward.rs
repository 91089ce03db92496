//! The forward pass on the CPU in f32 with the fused kernels of [`super::cpu_kernels`]: weights
//! are read in place, activations live in a few buffers per pass, projections are single GEMMs
//! with the residual add fused in, and attention runs on the packed rows without padding or masks.

use std::ops::Range;

use candle_core::{CpuStorage, Device, Storage, StorageRef, Tensor};

use super::amx::matmul_transposed_bf16;
use super::cpu_kernels::{
    add_bias, attention, matmul_transposed, rms_norm, rope_in_place, swiglu, AttentionShape, SharedPast,
};
use super::decoder::{DecoderWeights, ForwardOutput, KvCache, Packing};
use super::error::{EngineError, Result};
use super::projection::Projection;

/// A contiguous f32 CPU tensor's data, borrowed for the duration of a pass.
pub(crate) struct HostSlice<'a> {
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

    pub(crate) fn data(&self) -> &[f32] {
        match &*self.storage {
            Storage::Cpu(CpuStorage::F32(data)) => &data[self.range.clone()],
            // `of` admits f32 CPU storage only.
            _ => &[],
        }
    }
}

/// The weights of every projection GEMM of a forward pass (fused q/k/v, o, fused gate/up,
/// down; each `[out, in]`) with their input width, for benchmarks of those shapes.
pub(crate) fn projection_slices(model: DecoderWeights<'_>) -> Result<Vec<(HostSlice<'_>, usize)>> {
    let config = model.config;
    let q_width = config.num_heads * config.head_dim;
    let mut slices = Vec::with_capacity(4 * model.blocks.len());
    for block in model.blocks {
        slices.push((HostSlice::of(block.qkv.weight(), "qkv")?, config.hidden_size));
        slices.push((HostSlice::of(block.attention_output.weight(), "the attention output")?, q_width));
        slices.push((HostSlice::of(block.gate_up.weight(), "gate/up")?, config.hidden_size));
        slices.push((HostSlice::of(block.down.weight(), "down")?, config.intermediate_size));
    }
    Ok(slices)
}

pub(super) fn forward_cpu(
    model: DecoderWeights<'_>,
    past: Option<&KvCache>,
    packing: &Packing,
    keep_cache: bool,
) -> Result<ForwardOutput> {
    let config = model.config;
    let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
    let shape = AttentionShape { heads: config.num_heads, kv_heads: config.num_kv_heads, head_dim: config.head_dim };
    let q_width = shape.heads * shape.head_dim;
    let kv_width = shape.kv_heads * shape.head_dim;
    let qkv_width = q_width + 2 * kv_width;
    let eps = config.rms_norm_eps as f32;
    let rows = packing.tokens.len();
    let output_rows: Vec<usize> = packing.output_rows.iter().map(|&r| r as usize).collect();

    let embeddings = HostSlice::of(model.embeddings, "the embeddings")?;
    let mut residual = vec![0.0f32; rows * hidden];
    for (row, &token) in residual.chunks_exact_mut(hidden).zip(&packing.tokens) {
        let token = token as usize;
        row.copy_from_slice(&embeddings.data()[token * hidden..(token + 1) * hidden]);
    }
    let cos = HostSlice::of(&model.rotary.cos, "the RoPE cosines")?;
    let sin = HostSlice::of(&model.rotary.sin, "the RoPE sines")?;

    // The activations live in this thread's scratch buffers, reused from pass to pass; every
    // kernel below overwrites what it writes, so stale contents never leak into a result.
    let mut scratch = SCRATCH.with(|cell| cell.take());
    let [normed, qkv, attended, gate_up, activated] = &mut scratch.buffers;
    let (normed, qkv, attended, gate_up, activated) = (
        sized(normed, rows * hidden),
        sized(qkv, rows * qkv_width),
        sized(attended, rows * q_width),
        sized(gate_up, rows * 2 * intermediate),
        sized(activated, rows * intermediate),
    );
    let mut new_layers = Vec::with_capacity(if keep_cache { model.blocks.len() } else { 0 });
    let mut live_rows = rows;
    for (index, block) in model.blocks.iter().enumerate() {
        rms_norm(&residual, HostSlice::of(&block.attention_norm, "a norm")?.data(), eps, normed);
        project(qkv, false, normed, &block.qkv, hidden, "qkv")?;
        if let Some(bias) = block.qkv.bias() {
            add_bias(qkv, HostSlice::of(bias, "the qkv bias")?.data());
        }
        rope_in_place(
            qkv,
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
        attention(qkv, shape, shared_past, &packing.spans, attended);
        if keep_cache {
            new_layers.push(extend_cache(past_layer, qkv, rows, shape)?);
        }

        // The last layer's MLP runs only for the rows whose distribution is wanted.
        if index + 1 == model.blocks.len() {
            residual = gather_rows(&residual, hidden, &output_rows);
            let kept = gather_rows(attended, q_width, &output_rows);
            attended[..kept.len()].copy_from_slice(&kept);
            live_rows = output_rows.len();
        }
        let attended = &attended[..live_rows * q_width];
        let normed = &mut normed[..live_rows * hidden];
        let gate_up = &mut gate_up[..live_rows * 2 * intermediate];
        let activated = &mut activated[..live_rows * intermediate];
        project(&mut residual, true, attended, &block.attention_output, q_width, "the attention output")?;
        rms_norm(&residual, HostSlice::of(&block.mlp_norm, "a norm")?.data(), eps, normed);
        project(gate_up, false, normed, &block.gate_up, hidden, "gate/up")?;
        swiglu(gate_up, intermediate, activated);
        project(&mut residual, true, activated, &block.down, intermediate, "down")?;
    }
    SCRATCH.with(|cell| cell.set(scratch));
    let mut final_hidden = vec![0.0f32; live_rows * hidden];
    rms_norm(&residual, HostSlice::of(model.final_norm, "the final norm")?.data(), eps, &mut final_hidden);
    let hidden_states = Tensor::from_vec(final_hidden, (live_rows, hidden), &Device::Cpu)?;
    let cache = keep_cache.then(|| KvCache { layers: new_layers, len: past.map_or(0, KvCache::len) + rows });
    Ok(ForwardOutput { hidden: hidden_states, cache })
}

/// `output = input · Wᵀ` (`+=` when `accumulate`) for a projection: bf16 tiles when it is packed
/// so, else the f32 GEMM on its weight in place.
fn project(
    output: &mut [f32],
    accumulate: bool,
    input: &[f32],
    projection: &Projection,
    k: usize,
    what: &str,
) -> Result<()> {
    match projection.bf16() {
        Some(packed) => matmul_transposed_bf16(output, accumulate, input, packed),
        None => matmul_transposed(output, accumulate, input, HostSlice::of(projection.weight(), what)?.data(), k),
    }
}

/// Activation buffers of the forward pass, kept per thread between passes.
#[derive(Default)]
struct Scratch {
    buffers: [Vec<f32>; 5],
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// The first `len` elements of `buffer`, grown when needed (contents are not cleared).
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
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
