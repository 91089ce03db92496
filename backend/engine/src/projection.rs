//! A linear layer of the decoder as one type: the frozen weight (`y = x Wᵀ + b`, with the
//! gradient of the input only), its optional bf16 pack for AMX tiles, and the adapter slot. As in
//! candle-lora, where a `LoraLinear` wraps a frozen linear layer, the projection owns running an
//! adapter beside its weight (unmerged, [`Projection::with_adapter`]) and merging one into it
//! ([`Projection::merged`]); the model never reaches into an adapter's parts, and the adapter
//! files ([`crate::lora`]) never into the model.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor};

use super::amx::PackedBf16;
use super::error::{EngineError, Result};
use super::rng::SeededRng;

/// A linear layer `y = x Wᵀ + b` with `W: [out, in]`, plus an unmerged low-rank update when an
/// adapter is applied.
#[derive(Debug, Clone)]
pub struct Projection {
    weight: Tensor,
    bias: Option<Tensor>,
    adapter: Option<ProjectionAdapter>,
    /// The weight rounded to bf16 in AMX tile order, when the model runs its projections so
    /// ([`crate::LlamaModel::pack_bf16`]).
    bf16: Option<Arc<PackedBf16>>,
}

impl Projection {
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Projection { weight, bias, adapter: None, bf16: None }
    }

    pub(crate) fn pack_bf16(&mut self) -> Result<()> {
        let (n, k) = self.weight.dims2()?;
        let weight = self.weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        self.bf16 = Some(Arc::new(PackedBf16::pack(&weight, n, k)?));
        Ok(())
    }

    pub(crate) fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let output = frozen_matmul(input, &self.weight)?;
        let output = match &self.bias {
            Some(bias) => output.broadcast_add(bias)?,
            None => output,
        };
        match &self.adapter {
            Some(adapter) => Ok((output + adapter.delta(input)?)?),
            None => Ok(output),
        }
    }

    pub(crate) fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    pub(crate) fn bf16(&self) -> Option<&PackedBf16> {
        self.bf16.as_deref()
    }

    /// A copy that runs `adapter` beside the frozen weight (unmerged; none removes it). The bf16
    /// pack stays: it is the frozen weight's.
    pub(crate) fn with_adapter(&self, adapter: Option<ProjectionAdapter>) -> Projection {
        Projection { adapter, ..self.clone() }
    }

    /// A copy with `delta` (`[out, in]`, f32) merged into the weight, `W + Δ`, in the weight's
    /// dtype; repacked for bf16 when the original was packed.
    pub(crate) fn merged(&self, delta: &Tensor) -> Result<Projection> {
        let dtype = self.weight.dtype();
        let weight = (self.weight.to_dtype(DType::F32)? + delta)?.to_dtype(dtype)?;
        let mut merged = Projection { weight, bias: self.bias.clone(), adapter: None, bf16: None };
        if self.bf16.is_some() {
            merged.pack_bf16()?;
        }
        Ok(merged)
    }
}

/// The low-rank updates of a (possibly fused) projection: one part per stacked module, in the
/// order of the stacked rows; a module without an update contributes zeros.
#[derive(Debug, Clone)]
pub struct ProjectionAdapter {
    pub(crate) parts: Vec<(usize, Option<LowRankUpdate>)>,
}

/// `Δy = scale · dropout(x) Aᵀ Bᵀ` with `A: [rank, in]`, `B: [out, rank]` (PEFT's lora_A / lora_B).
#[derive(Debug, Clone)]
pub(crate) struct LowRankUpdate {
    pub(crate) a: Tensor,
    pub(crate) b: Tensor,
    pub(crate) scale: f64,
    /// Inverted dropout on the input while training; `None` at inference.
    pub(crate) dropout: Option<LoraDropout>,
}

/// A dropout probability and the seeded generator its masks come from (shared by the updates of
/// one forward pass, drawn in layer order, so a training step is reproducible).
#[derive(Debug, Clone)]
pub(crate) struct LoraDropout {
    pub(crate) probability: f64,
    pub(crate) rng: Arc<Mutex<SeededRng>>,
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

impl ProjectionAdapter {
    pub(crate) fn delta(&self, input: &Tensor) -> Result<Tensor> {
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

/// `input · weightᵀ` for a frozen weight (`[out, in]`). On the CPU in f32 it is a custom op whose
/// backward pass computes the input's gradient only: candle's matmul backward also computes the
/// weight's (a GEMM as large as the forward and a weight-sized buffer per layer), which LoRA
/// training never uses. Elsewhere it is candle's matmul.
pub(crate) fn frozen_matmul(input: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if !(input.device().is_cpu() && input.dtype() == DType::F32 && weight.dtype() == DType::F32 && input.rank() == 2) {
        return Ok(input.matmul(&weight.t()?)?);
    }
    Ok(input.contiguous()?.apply_op1(FrozenLinear { weight: weight.contiguous()? })?)
}

struct FrozenLinear {
    weight: Tensor,
}

impl candle_core::CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let fail = |what: &str| candle_core::Error::Msg(format!("frozen-linear: {what}"));
        let candle_core::CpuStorage::F32(data) = storage else { return Err(fail("the input is not f32")) };
        let (start, end) = layout.contiguous_offsets().ok_or_else(|| fail("the input is not contiguous"))?;
        let (rows, k) = layout.shape().dims2()?;
        let (weight_storage, weight_layout) = self.weight.storage_and_layout();
        let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(weights)) = &*weight_storage else {
            return Err(fail("the weight is not f32 on the CPU"));
        };
        let (w_start, w_end) =
            weight_layout.contiguous_offsets().ok_or_else(|| fail("the weight is not contiguous"))?;
        let (n, weight_k) = weight_layout.shape().dims2()?;
        if weight_k != k {
            return Err(fail(&format!("input width {k} but weight width {weight_k}")));
        }
        let mut output = vec![0f32; rows * n];
        super::cpu_kernels::matmul_transposed(&mut output, false, &data[start..end], &weights[w_start..w_end], k)
            .map_err(|e| fail(&e.to_string()))?;
        Ok((candle_core::CpuStorage::F32(output), candle_core::Shape::from((rows, n))))
    }

    fn bwd(&self, _input: &Tensor, _output: &Tensor, output_grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(output_grad.matmul(&self.weight)?))
    }
}
