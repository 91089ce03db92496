//! The answer loss and its gradients with respect to a LoRA adapter on the CPU, without autograd:
//! a forward pass over the packed sequences of a micro-batch (no padding, no masks) that keeps
//! what the backward pass needs, and a hand-written backward pass (through frozen weights to
//! the inputs only, into the adapters' `A` and `B`, RMS normalisation, rotary embeddings,
//! causal grouped-query attention and SwiGLU). GEMMs and row-wise work run on all compute
//! threads, attention on (sequence, key/value head) pairs in parallel.
//!
//! It computes what [`super::loss::answer_loss`] + candle's `backward` compute, in the model's
//! precision (f32, or f64 for gradient checks), dropout masks included (drawn in the same order).

use candle_core::{DType, Tensor};

use super::data::TrainingExample;
use super::kernels::{
    attention_backward, attention_forward, cross_entropy, gemm, rms_norm_backward, rms_norm_forward, rope,
    swiglu_backward, swiglu_forward, Heads, Mat, MatMut, Real, Rotation,
};
use crate::cpu_kernels::SequenceSpan;
use crate::error::{EngineError, Result};
use crate::lora::TrainableAdapter;
use crate::model::LlamaModel;
use crate::rng::SeededRng;

use super::fused_parts::*;

/// The summed answer loss of a micro-batch times `loss_scale`, and its gradient with respect to
/// every adapter matrix, in the order of `adapter.vars` (`A` then `B` of each).
#[derive(Debug)]
pub struct LossAndGradients {
    pub loss: f64,
    pub gradients: Vec<Tensor>,
    /// Answer tokens the loss sums over.
    pub tokens: usize,
}

/// Whether [`loss_and_gradients`] can run `model`: on the CPU in f32 or f64.
pub fn supports(model: &LlamaModel) -> bool {
    model.device().is_cpu() && matches!(model.dtype(), DType::F32 | DType::F64)
}

/// The loss of `batch` under `model` with `adapter` (unmerged), scaled by `loss_scale`, and its
/// gradients. Dropout masks (when the adapter has dropout) come from a generator seeded with
/// `dropout_seed`, as in [`LlamaModel::with_adapter_and_dropout`].
pub fn loss_and_gradients(
    model: &LlamaModel,
    adapter: &TrainableAdapter,
    batch: &[&TrainingExample],
    loss_scale: f64,
    dropout_seed: Option<u64>,
) -> Result<LossAndGradients> {
    match model.dtype() {
        DType::F32 if supports(model) => run::<f32>(model, adapter, batch, loss_scale, dropout_seed),
        DType::F64 if supports(model) => run::<f64>(model, adapter, batch, loss_scale, dropout_seed),
        other => Err(EngineError::InvalidTraining(format!(
            "the fused training pass runs on the CPU in f32 or f64, not {other:?} on {:?}",
            model.device()
        ))),
    }
}

fn run<T: Real>(
    model: &LlamaModel,
    adapter: &TrainableAdapter,
    batch: &[&TrainingExample],
    loss_scale: f64,
    dropout_seed: Option<u64>,
) -> Result<LossAndGradients> {
    let config = model.config();
    let dims = Dims {
        hidden: config.hidden_size,
        intermediate: config.intermediate_size,
        heads: Heads { heads: config.num_heads, kv_heads: config.num_kv_heads, head_dim: config.head_dim },
        eps: config.rms_norm_eps,
    };
    if batch.is_empty() {
        return Err(EngineError::InvalidBatch("an empty micro-batch".into()));
    }

    // Packed sequences (prompt + answer without its last token), their positions, the loss rows.
    let mut tokens = Vec::new();
    let mut positions = Vec::new();
    let mut spans = Vec::with_capacity(batch.len());
    let mut loss_rows = Vec::new();
    let mut labels = Vec::new();
    for example in batch {
        let start = tokens.len();
        tokens.extend_from_slice(&example.prompt_tokens);
        tokens.extend_from_slice(&example.target_tokens);
        tokens.pop();
        let len = tokens.len() - start;
        if example.prompt_tokens.is_empty() || example.target_tokens.is_empty() || len > config.context_length {
            return Err(EngineError::InvalidBatch(format!("example {} does not fit a training pass", example.id)));
        }
        positions.extend((0..len).map(|p| p as u32));
        spans.push(SequenceSpan { start, main_len: len, branch_len: 0 });
        let first = start + example.prompt_tokens.len() - 1;
        loss_rows.extend(first..first + example.target_tokens.len());
        labels.extend_from_slice(&example.target_tokens);
    }
    if let Some(id) = tokens.iter().find(|&&id| id as usize >= config.vocab_size) {
        return Err(EngineError::InvalidBatch(format!("token id {id} is outside the vocabulary")));
    }

    // Borrow every weight for the whole pass.
    let hosts = ModelHosts::of(model, adapter)?;
    let layers = hosts.layers::<T>(model, adapter)?;
    let embeddings = hosts.embeddings.data::<T>()?;
    let cos = hosts.cos.data::<T>()?;
    let sin = hosts.sin.data::<T>()?;
    let mut rng = dropout_seed.filter(|_| adapter.settings.dropout > 0.0).map(SeededRng::new);
    let dropout = adapter.settings.dropout;

    let hidden = dims.hidden;
    let mut residual = Vec::with_capacity(tokens.len() * hidden);
    for &token in &tokens {
        let token = token as usize;
        residual.extend_from_slice(&embeddings[token * hidden..(token + 1) * hidden]);
    }
    let mut saved = Vec::with_capacity(layers.len());
    for (index, weights) in layers.iter().enumerate() {
        let last = index + 1 == layers.len();
        let (next, layer_saved) = layer_forward(
            weights,
            dims,
            residual,
            &positions,
            (cos, sin),
            &spans,
            last.then_some(loss_rows.as_slice()),
            &mut rng,
            dropout,
        )?;
        residual = next;
        saved.push(layer_saved);
    }

    // Final norm, the head over the full vocabulary for the loss rows, cross-entropy.
    let rows = loss_rows.len();
    let final_norm = hosts.final_norm.data::<T>()?;
    let head = hosts.head.data::<T>()?;
    let vocab = head.len() / hidden;
    let mut final_normed = vec![T::zero(); rows * hidden];
    let mut final_inverse = vec![T::zero(); rows];
    rms_norm_forward(&residual, final_norm, dims.eps, &mut final_normed, &mut final_inverse);
    let mut logits = vec![T::zero(); rows * vocab];
    gemm(
        MatMut::new(&mut logits, rows, vocab),
        false,
        Mat::new(&final_normed, rows, hidden),
        Mat::new(head, vocab, hidden).t(),
        T::one(),
        true,
    )?;
    let loss = cross_entropy(&mut logits, &labels, vocab, loss_scale)?;
    let mut normed_grad = vec![T::zero(); rows * hidden];
    gemm(
        MatMut::new(&mut normed_grad, rows, hidden),
        false,
        Mat::new(&logits, rows, vocab),
        Mat::new(head, vocab, hidden),
        T::one(),
        true,
    )?;
    drop(logits);
    let mut grad = vec![T::zero(); rows * hidden];
    rms_norm_backward(&residual, &final_inverse, final_norm, &normed_grad, &mut grad);

    let mut gradients: Vec<Vec<T>> = adapter
        .vars
        .iter()
        .flat_map(|(_, _, a, b)| [vec![T::zero(); a.elem_count()], vec![T::zero(); b.elem_count()]])
        .collect();
    for (index, (weights, layer_saved)) in layers.iter().zip(saved).enumerate().rev() {
        let last = index + 1 == layers.len();
        grad = layer_backward(
            weights,
            dims,
            layer_saved,
            grad,
            &positions,
            (cos, sin),
            &spans,
            last.then_some(loss_rows.as_slice()),
            &mut gradients,
        )?;
    }
    let device = model.device();
    let gradients = adapter
        .vars
        .iter()
        .flat_map(|(_, _, a, b)| [a.shape().clone(), b.shape().clone()])
        .zip(gradients)
        .map(|(shape, values)| Ok(Tensor::from_vec(values, shape, device)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(LossAndGradients { loss, gradients, tokens: labels.len() })
}

/// One decoder layer forward; in the last layer (`output_rows` given) the attention output and
/// the MLP run only for those rows, as in the inference pass.
#[allow(clippy::too_many_arguments)]
fn layer_forward<T: Real>(
    weights: &LayerWeights<T>,
    dims: Dims,
    input: Vec<T>,
    positions: &[u32],
    (cos, sin): (&[T], &[T]),
    spans: &[SequenceSpan],
    output_rows: Option<&[usize]>,
    rng: &mut Option<SeededRng>,
    dropout: f64,
) -> Result<(Vec<T>, LayerSaved<T>)> {
    let Dims { hidden, intermediate, heads, eps } = dims;
    let rows = positions.len();
    let (qkv_width, q_width) = (heads.qkv_width(), heads.q_width());
    let kv_width = heads.kv_heads * heads.head_dim;
    let mut lora_saved: Vec<Option<LoraSaved<T>>> = (0..7).map(|_| None).collect();

    let mut normed = vec![T::zero(); rows * hidden];
    let mut inverse_rms = vec![T::zero(); rows];
    rms_norm_forward(&input, weights.attention_norm, eps, &mut normed, &mut inverse_rms);
    let mut qkv = vec![T::zero(); rows * qkv_width];
    project(&mut qkv, false, &normed, weights.qkv, rows, hidden)?;
    if let Some(bias) = weights.qkv_bias {
        for row in qkv.chunks_exact_mut(qkv_width) {
            row.iter_mut().zip(bias).for_each(|(x, &b)| *x += b);
        }
    }
    let qkv_columns = [0..q_width, q_width..q_width + kv_width, q_width + kv_width..qkv_width];
    for (module, columns) in [Q, K, V].into_iter().zip(qkv_columns) {
        if let Some(lora) = &weights.lora[module] {
            lora_saved[module] =
                Some(lora_forward(lora, &normed, rows, hidden, &mut qkv, qkv_width, columns, rng, dropout)?);
        }
    }
    rope(&mut qkv, qkv_width, heads.heads + heads.kv_heads, heads.head_dim, Rotation { positions, cos, sin }, false);
    let mut attended = vec![T::zero(); rows * q_width];
    let probs = attention_forward(&qkv, heads, spans, &mut attended)?;

    let (attended, mut mid) = match output_rows {
        Some(kept) => (gather(&attended, q_width, kept), gather(&input, hidden, kept)),
        None => (attended, input.clone()),
    };
    let live = attended.len() / q_width;
    project(&mut mid, true, &attended, weights.attention_output, live, q_width)?;
    if let Some(lora) = &weights.lora[O] {
        lora_saved[O] = Some(lora_forward(lora, &attended, live, q_width, &mut mid, hidden, 0..hidden, rng, dropout)?);
    }
    let mut mid_normed = vec![T::zero(); live * hidden];
    let mut mid_inverse_rms = vec![T::zero(); live];
    rms_norm_forward(&mid, weights.mlp_norm, eps, &mut mid_normed, &mut mid_inverse_rms);
    let mut gate_up = vec![T::zero(); live * 2 * intermediate];
    project(&mut gate_up, false, &mid_normed, weights.gate_up, live, hidden)?;
    for (module, columns) in [(GATE, 0..intermediate), (UP, intermediate..2 * intermediate)] {
        if let Some(lora) = &weights.lora[module] {
            lora_saved[module] = Some(lora_forward(
                lora,
                &mid_normed,
                live,
                hidden,
                &mut gate_up,
                2 * intermediate,
                columns,
                rng,
                dropout,
            )?);
        }
    }
    let mut activated = vec![T::zero(); live * intermediate];
    swiglu_forward(&gate_up, intermediate, &mut activated);
    let mut output = mid.clone();
    project(&mut output, true, &activated, weights.down, live, intermediate)?;
    if let Some(lora) = &weights.lora[DOWN] {
        lora_saved[DOWN] =
            Some(lora_forward(lora, &activated, live, intermediate, &mut output, hidden, 0..hidden, rng, dropout)?);
    }
    let saved = LayerSaved {
        input,
        normed,
        inverse_rms,
        qkv,
        probs,
        attended,
        mid,
        mid_normed,
        mid_inverse_rms,
        gate_up,
        activated,
        lora: lora_saved,
    };
    Ok((output, saved))
}

/// One decoder layer backward: from the gradient of its output to that of its input, adding
/// the adapter's gradients to `gradients`.
#[allow(clippy::too_many_arguments)]
fn layer_backward<T: Real>(
    weights: &LayerWeights<T>,
    dims: Dims,
    saved: LayerSaved<T>,
    output_grad: Vec<T>,
    positions: &[u32],
    (cos, sin): (&[T], &[T]),
    spans: &[SequenceSpan],
    output_rows: Option<&[usize]>,
    gradients: &mut [Vec<T>],
) -> Result<Vec<T>> {
    let Dims { hidden, intermediate, heads, .. } = dims;
    let rows = positions.len();
    let (qkv_width, q_width) = (heads.qkv_width(), heads.q_width());
    let kv_width = heads.kv_heads * heads.head_dim;
    let live = saved.attended.len() / q_width;
    let lora_part = |module: usize| weights.lora[module].as_ref().zip(saved.lora[module].as_ref());

    // The MLP: output = mid + down(swiglu(gate_up(norm(mid)))).
    let mut activated_grad = vec![T::zero(); live * intermediate];
    project_back(&mut activated_grad, false, &output_grad, weights.down, live, intermediate)?;
    if let Some((lora, lora_saved)) = lora_part(DOWN) {
        lora_backward(
            lora,
            lora_saved,
            &saved.activated,
            live,
            intermediate,
            &output_grad,
            hidden,
            0..hidden,
            &mut activated_grad,
            gradients,
        )?;
    }
    let mut gate_up_grad = vec![T::zero(); live * 2 * intermediate];
    swiglu_backward(&saved.gate_up, &activated_grad, intermediate, &mut gate_up_grad);
    drop(activated_grad);
    let mut mid_normed_grad = vec![T::zero(); live * hidden];
    project_back(&mut mid_normed_grad, false, &gate_up_grad, weights.gate_up, live, hidden)?;
    for (module, columns) in [(GATE, 0..intermediate), (UP, intermediate..2 * intermediate)] {
        if let Some((lora, lora_saved)) = lora_part(module) {
            lora_backward(
                lora,
                lora_saved,
                &saved.mid_normed,
                live,
                hidden,
                &gate_up_grad,
                2 * intermediate,
                columns,
                &mut mid_normed_grad,
                gradients,
            )?;
        }
    }
    drop(gate_up_grad);
    let mut mid_grad = output_grad;
    rms_norm_backward(&saved.mid, &saved.mid_inverse_rms, weights.mlp_norm, &mid_normed_grad, &mut mid_grad);
    drop(mid_normed_grad);

    // Attention: mid = input + o(attention(rope(qkv(norm(input))))).
    let mut attended_grad = vec![T::zero(); live * q_width];
    project_back(&mut attended_grad, false, &mid_grad, weights.attention_output, live, q_width)?;
    if let Some((lora, lora_saved)) = lora_part(O) {
        lora_backward(
            lora,
            lora_saved,
            &saved.attended,
            live,
            q_width,
            &mid_grad,
            hidden,
            0..hidden,
            &mut attended_grad,
            gradients,
        )?;
    }
    let (attended_grad, mut input_grad) = match output_rows {
        Some(kept) => {
            let mut full_attended = vec![T::zero(); rows * q_width];
            let mut full_input = vec![T::zero(); rows * hidden];
            for (i, &row) in kept.iter().enumerate() {
                full_attended[row * q_width..(row + 1) * q_width]
                    .copy_from_slice(&attended_grad[i * q_width..(i + 1) * q_width]);
                full_input[row * hidden..(row + 1) * hidden].copy_from_slice(&mid_grad[i * hidden..(i + 1) * hidden]);
            }
            (full_attended, full_input)
        }
        None => (attended_grad, mid_grad),
    };
    let mut qkv_grad = vec![T::zero(); rows * qkv_width];
    attention_backward(&saved.qkv, &saved.probs, &attended_grad, heads, spans, &mut qkv_grad)?;
    drop(attended_grad);
    rope(
        &mut qkv_grad,
        qkv_width,
        heads.heads + heads.kv_heads,
        heads.head_dim,
        Rotation { positions, cos, sin },
        true,
    );
    let mut normed_grad = vec![T::zero(); rows * hidden];
    project_back(&mut normed_grad, false, &qkv_grad, weights.qkv, rows, hidden)?;
    let qkv_columns = [0..q_width, q_width..q_width + kv_width, q_width + kv_width..qkv_width];
    for (module, columns) in [Q, K, V].into_iter().zip(qkv_columns) {
        if let Some((lora, lora_saved)) = lora_part(module) {
            lora_backward(
                lora,
                lora_saved,
                &saved.normed,
                rows,
                hidden,
                &qkv_grad,
                qkv_width,
                columns,
                &mut normed_grad,
                gradients,
            )?;
        }
    }
    rms_norm_backward(&saved.input, &saved.inverse_rms, weights.attention_norm, &normed_grad, &mut input_grad);
    Ok(input_grad)
}
