//! The pieces of the fused LoRA training pass: host views of the weights, the adapter's and the
//! layers' saved activations, and the low-rank and projection kernels both passes use.

use std::ops::Range;

use candle_core::{Storage, StorageRef, Tensor};

use super::kernels::{gemm, real, AttentionProbs, Heads, Mat, MatMut, Real};
use crate::error::{EngineError, Result};
use crate::lora::{TrainableAdapter, ALL_MODULES};
use crate::model::LlamaModel;
use crate::rng::SeededRng;

/// A tensor's elements, borrowed (CPU storage, contiguous).
pub(super) struct Host<'a> {
    pub(super) storage: StorageRef<'a>,
    pub(super) range: Range<usize>,
}

impl<'a> Host<'a> {
    pub(super) fn of(tensor: &'a Tensor) -> Result<Self> {
        let (storage, layout) = tensor.storage_and_layout();
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| EngineError::KernelInput("a training tensor is not contiguous".into()))?;
        Ok(Host { storage, range: start..end })
    }

    pub(super) fn data<T: Real>(&self) -> Result<&[T]> {
        match &*self.storage {
            Storage::Cpu(cpu) => Ok(&T::cpu_storage_as_slice(cpu)?[self.range.clone()]),
            _ => Err(EngineError::KernelInput("a training tensor is not on the CPU".into())),
        }
    }
}

/// One module's adapter in a pass: `Δy = scale · dropout(x) Aᵀ Bᵀ`.
#[derive(Clone, Copy)]
pub(super) struct Lora<'a, T> {
    pub(super) a: &'a [T],
    pub(super) b: &'a [T],
    pub(super) rank: usize,
    pub(super) scale: T,
    /// Index of `A`'s gradient; `B`'s follows it.
    pub(super) gradient: usize,
}

/// What the forward pass of one module's adapter keeps: `u = x̃ Aᵀ` and, with dropout, the
/// dropped input `x̃` and its mask.
pub(super) struct LoraSaved<T> {
    pub(super) u: Vec<T>,
    pub(super) dropped: Option<(Vec<T>, Vec<T>)>,
}

/// What the backward pass of one layer needs.
pub(super) struct LayerSaved<T> {
    pub(super) input: Vec<T>,
    pub(super) normed: Vec<T>,
    pub(super) inverse_rms: Vec<T>,
    pub(super) qkv: Vec<T>,
    pub(super) probs: AttentionProbs<T>,
    /// Rows of the MLP half (all rows, or the loss rows in the last layer).
    pub(super) attended: Vec<T>,
    pub(super) mid: Vec<T>,
    pub(super) mid_normed: Vec<T>,
    pub(super) mid_inverse_rms: Vec<T>,
    pub(super) gate_up: Vec<T>,
    pub(super) activated: Vec<T>,
    /// Per module of [`ALL_MODULES`], when it has an adapter.
    pub(super) lora: Vec<Option<LoraSaved<T>>>,
}

/// The weights of one layer and its adapters.
pub(super) struct LayerWeights<'a, T> {
    pub(super) attention_norm: &'a [T],
    pub(super) qkv: &'a [T],
    pub(super) qkv_bias: Option<&'a [T]>,
    pub(super) attention_output: &'a [T],
    pub(super) mlp_norm: &'a [T],
    pub(super) gate_up: &'a [T],
    pub(super) down: &'a [T],
    /// Per module of [`ALL_MODULES`].
    pub(super) lora: [Option<Lora<'a, T>>; 7],
}

pub(super) const Q: usize = 0;
pub(super) const K: usize = 1;
pub(super) const V: usize = 2;
pub(super) const O: usize = 3;
pub(super) const GATE: usize = 4;
pub(super) const UP: usize = 5;
pub(super) const DOWN: usize = 6;

/// Shapes of the pass.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub(super) hidden: usize,
    pub(super) intermediate: usize,
    pub(super) heads: Heads,
    pub(super) eps: f64,
}

/// The borrowed storage of the model's and the adapter's tensors.
pub(super) struct ModelHosts<'a> {
    pub(super) embeddings: Host<'a>,
    pub(super) final_norm: Host<'a>,
    pub(super) head: Host<'a>,
    pub(super) cos: Host<'a>,
    pub(super) sin: Host<'a>,
    /// Per layer: norms, projections, bias.
    pub(super) blocks: Vec<[Option<Host<'a>>; 7]>,
    /// Per adapter variable: A, B.
    pub(super) adapter: Vec<(Host<'a>, Host<'a>)>,
}

impl<'a> ModelHosts<'a> {
    pub(super) fn of(model: &'a LlamaModel, adapter: &'a TrainableAdapter) -> Result<Self> {
        let blocks = model
            .blocks
            .iter()
            .map(|block| {
                Ok([
                    Some(Host::of(&block.attention_norm)?),
                    Some(Host::of(block.qkv.weight())?),
                    block.qkv.bias().map(Host::of).transpose()?,
                    Some(Host::of(block.attention_output.weight())?),
                    Some(Host::of(&block.mlp_norm)?),
                    Some(Host::of(block.gate_up.weight())?),
                    Some(Host::of(block.down.weight())?),
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let adapter = adapter
            .vars
            .iter()
            .map(|(_, _, a, b)| Ok((Host::of(a.as_tensor())?, Host::of(b.as_tensor())?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelHosts {
            embeddings: Host::of(&model.embeddings)?,
            final_norm: Host::of(&model.final_norm)?,
            head: Host::of(model.head_weight())?,
            cos: Host::of(&model.rotary.cos)?,
            sin: Host::of(&model.rotary.sin)?,
            blocks,
            adapter,
        })
    }

    pub(super) fn layers<T: Real>(
        &self,
        model: &LlamaModel,
        adapter: &TrainableAdapter,
    ) -> Result<Vec<LayerWeights<'_, T>>> {
        let scale = adapter.settings.scale();
        let query_scale = model.config().query_prescale();
        let rank = adapter.settings.rank;
        let mut layers = self
            .blocks
            .iter()
            .map(|hosts| {
                let get = |i: usize| -> Result<&[T]> {
                    hosts[i].as_ref().ok_or_else(|| EngineError::KernelInput("a missing weight".into()))?.data::<T>()
                };
                Ok(LayerWeights {
                    attention_norm: get(0)?,
                    qkv: get(1)?,
                    qkv_bias: hosts[2].as_ref().map(|h| h.data::<T>()).transpose()?,
                    attention_output: get(3)?,
                    mlp_norm: get(4)?,
                    gate_up: get(5)?,
                    down: get(6)?,
                    lora: [None; 7],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for (index, ((layer, module, _, _), (a, b))) in adapter.vars.iter().zip(&self.adapter).enumerate() {
            let slot = ALL_MODULES.iter().position(|m| m == module).ok_or_else(|| EngineError::InvalidAdapter {
                path: None,
                reason: format!("unknown module {module}"),
            })?;
            let target = layers
                .get_mut(*layer)
                .ok_or_else(|| EngineError::InvalidAdapter { path: None, reason: format!("no layer {layer}") })?;
            // q rows of the fused weight are pre-scaled by 1/sqrt(head_dim); so is their update.
            let factor = if slot == Q { query_scale } else { 1.0 };
            target.lora[slot] = Some(Lora {
                a: a.data::<T>()?,
                b: b.data::<T>()?,
                rank,
                scale: real(scale * factor),
                gradient: 2 * index,
            });
        }
        Ok(layers)
    }
}

/// A dropout mask of `len` values (0 or 1 / keep), drawn as the generic path draws it (f32 values).
pub(super) fn dropout_mask<T: Real>(rng: &mut SeededRng, len: usize, probability: f64) -> Vec<T> {
    let keep = 1.0 - probability;
    let kept = real::<T>(f64::from((1.0 / keep) as f32));
    (0..len).map(|_| if rng.next_unit() < keep { kept } else { T::zero() }).collect()
}

/// Adds `scale · x̃ Aᵀ Bᵀ` to the columns `columns` of `output` (`rows × width`).
#[allow(clippy::too_many_arguments)]
pub(super) fn lora_forward<T: Real>(
    lora: &Lora<T>,
    input: &[T],
    rows: usize,
    in_width: usize,
    output: &mut [T],
    width: usize,
    columns: Range<usize>,
    rng: &mut Option<SeededRng>,
    dropout: f64,
) -> Result<LoraSaved<T>> {
    let dropped = match rng {
        Some(rng) => {
            let mask = dropout_mask::<T>(rng, rows * in_width, dropout);
            let values: Vec<T> = input.iter().zip(&mask).map(|(&x, &m)| x * m).collect();
            Some((values, mask))
        }
        None => None,
    };
    let x = dropped.as_ref().map_or(input, |(values, _)| values.as_slice());
    let mut u = vec![T::zero(); rows * lora.rank];
    gemm(
        MatMut::new(&mut u, rows, lora.rank),
        false,
        Mat::new(x, rows, in_width),
        Mat::new(lora.a, lora.rank, in_width).t(),
        T::one(),
        true,
    )?;
    let out_width = columns.len();
    gemm(
        MatMut::block(output, columns.start, rows, out_width, width),
        true,
        Mat::new(&u, rows, lora.rank),
        Mat::new(lora.b, out_width, lora.rank).t(),
        lora.scale,
        true,
    )?;
    Ok(LoraSaved { u, dropped })
}

/// Given `dy` (columns `columns` of `output_grad`, `rows × width`), adds the adapter's gradients
/// to `gradients` and its input gradient to `input_grad` (`rows × in_width`).
#[allow(clippy::too_many_arguments)]
pub(super) fn lora_backward<T: Real>(
    lora: &Lora<T>,
    saved: &LoraSaved<T>,
    input: &[T],
    rows: usize,
    in_width: usize,
    output_grad: &[T],
    width: usize,
    columns: Range<usize>,
    input_grad: &mut [T],
    gradients: &mut [Vec<T>],
) -> Result<()> {
    let out_width = columns.len();
    let dy = Mat::block(output_grad, columns.start, rows, out_width, width);
    let x = saved.dropped.as_ref().map_or(input, |(values, _)| values.as_slice());
    let u = Mat::new(&saved.u, rows, lora.rank);
    // dB += scale · dyᵀ u; du = scale · dy B; dA += duᵀ x̃; dx += (du A) ⊙ mask.
    let (grad_a, grad_b) = gradients[lora.gradient..lora.gradient + 2].split_at_mut(1);
    gemm(MatMut::new(&mut grad_b[0], out_width, lora.rank), true, dy.t(), u, lora.scale, true)?;
    let mut du = vec![T::zero(); rows * lora.rank];
    gemm(MatMut::new(&mut du, rows, lora.rank), false, dy, Mat::new(lora.b, out_width, lora.rank), lora.scale, true)?;
    let du = Mat::new(&du, rows, lora.rank);
    gemm(MatMut::new(&mut grad_a[0], lora.rank, in_width), true, du.t(), Mat::new(x, rows, in_width), T::one(), true)?;
    let a = Mat::new(lora.a, lora.rank, in_width);
    match &saved.dropped {
        None => gemm(MatMut::new(input_grad, rows, in_width), true, du, a, T::one(), true),
        Some((_, mask)) => {
            let mut dx = vec![T::zero(); rows * in_width];
            gemm(MatMut::new(&mut dx, rows, in_width), false, du, a, T::one(), true)?;
            for ((g, d), m) in input_grad.iter_mut().zip(&dx).zip(mask) {
                *g += *d * *m;
            }
            Ok(())
        }
    }
}

/// `output (rows × n) (+)= input (rows × k) · weightᵀ` with `weight: [n, k]`.
pub(super) fn project<T: Real>(
    output: &mut [T],
    accumulate: bool,
    input: &[T],
    weight: &[T],
    rows: usize,
    k: usize,
) -> Result<()> {
    let n = weight.len() / k;
    gemm(MatMut::new(output, rows, n), accumulate, Mat::new(input, rows, k), Mat::new(weight, n, k).t(), T::one(), true)
}

/// `input_grad (rows × k) (+)= output_grad (rows × n) · weight` with `weight: [n, k]`.
pub(super) fn project_back<T: Real>(
    input_grad: &mut [T],
    accumulate: bool,
    output_grad: &[T],
    weight: &[T],
    rows: usize,
    k: usize,
) -> Result<()> {
    let n = weight.len() / k;
    gemm(
        MatMut::new(input_grad, rows, k),
        accumulate,
        Mat::new(output_grad, rows, n),
        Mat::new(weight, n, k),
        T::one(),
        true,
    )
}

pub(super) fn gather<T: Real>(data: &[T], width: usize, rows: &[usize]) -> Vec<T> {
    let mut gathered = Vec::with_capacity(rows.len() * width);
    for &row in rows {
        gathered.extend_from_slice(&data[row * width..(row + 1) * width]);
    }
    gathered
}
