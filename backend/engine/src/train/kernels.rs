//! CPU kernels of the fused training pass, generic over f32 (training) and f64 (gradient checks
//! against finite differences): strided GEMMs, and the forward and backward passes of RMS
//! normalisation, rotary embeddings, SwiGLU, causal grouped-query attention and cross-entropy.
//! Row-wise kernels run in parallel over rows, attention over (sequence, key/value head) pairs.

use rayon::prelude::*;

use crate::cpu_kernels::SequenceSpan;
use crate::error::{EngineError, Result};

/// The element types the training kernels run in.
pub trait Real: candle_core::WithDType + num_traits::Float + std::iter::Sum {}

impl Real for f32 {}
impl Real for f64 {}

/// `value` in `T`.
#[inline(always)]
pub fn real<T: Real>(value: f64) -> T {
    <T as candle_core::WithDType>::from_f64(value)
}

#[inline(always)]
fn to_f64<T: Real>(value: T) -> f64 {
    <T as candle_core::WithDType>::to_f64(value)
}

/// Rows per rayon task for row-wise kernels.
const ROWS_PER_TASK: usize = 8;

/// A read-only matrix inside a slice: element (r, c) at `offset + r·row_stride + c·col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a, T> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows × cols` matrix filling `data` from its start.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, offset: 0, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// `rows × cols` starting at `offset`, rows `row_stride` apart (a column block of a wider matrix).
    pub fn block(data: &'a [T], offset: usize, rows: usize, cols: usize, row_stride: usize) -> Self {
        Mat { data, offset, rows, cols, row_stride, col_stride: 1 }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// A writable matrix inside a slice (see [`Mat`]).
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a, T> MatMut<'a, T> {
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        MatMut { data, offset: 0, rows, cols, row_stride: cols }
    }

    pub fn block(data: &'a mut [T], offset: usize, rows: usize, cols: usize, row_stride: usize) -> Self {
        MatMut { data, offset, rows, cols, row_stride }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.offset + (self.rows - 1) * self.row_stride + self.cols <= self.data.len()
    }
}

/// `dst = (accumulate ? dst : 0) + scale · lhs · rhs`; on all compute threads when `parallel`.
pub fn gemm<T: Real>(
    dst: MatMut<T>,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    scale: T,
    parallel: bool,
) -> Result<()> {
    if lhs.rows != dst.rows || rhs.cols != dst.cols || lhs.cols != rhs.rows || !dst.fits() || !lhs.fits() || !rhs.fits()
    {
        return Err(EngineError::KernelInput(format!(
            "gemm of {}×{} by {}×{} into {}×{} (or a matrix outside its buffer)",
            lhs.rows, lhs.cols, rhs.rows, rhs.cols, dst.rows, dst.cols
        )));
    }
    if dst.rows == 0 || dst.cols == 0 {
        return Ok(());
    }
    if lhs.cols == 0 {
        if !accumulate {
            for r in 0..dst.rows {
                let start = dst.offset + r * dst.row_stride;
                dst.data[start..start + dst.cols].fill(T::zero());
            }
        }
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: `fits` checked that every element each matrix addresses lies inside its slice, the
    // shapes agree, and `dst` is borrowed mutably while `lhs`/`rhs` are shared borrows, so they
    // cannot overlap.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr().add(dst.offset),
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::one(),
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// `output = input / rms(input) · weight` per row; `inverse_rms` keeps 1 / rms of each row.
pub fn rms_norm_forward<T: Real>(input: &[T], weight: &[T], eps: f64, output: &mut [T], inverse_rms: &mut [T]) {
    let width = weight.len();
    output
        .par_chunks_mut(width * ROWS_PER_TASK)
        .zip(input.par_chunks(width * ROWS_PER_TASK))
        .zip(inverse_rms.par_chunks_mut(ROWS_PER_TASK))
        .for_each(|((out, inp), inv)| {
            for ((out_row, in_row), inv) in out.chunks_exact_mut(width).zip(inp.chunks_exact(width)).zip(inv) {
                let mean_square = in_row.iter().map(|&x| x * x).sum::<T>() / real(width as f64);
                *inv = T::one() / (mean_square + real(eps)).sqrt();
                for ((o, &x), &w) in out_row.iter_mut().zip(in_row).zip(weight) {
                    *o = x * *inv * w;
                }
            }
        });
}

/// The input gradient of [`rms_norm_forward`] added to `input_grad`:
/// `dx = r·g − x·r³·(g·x)/n` with `g = dy ⊙ weight`, `r` = 1 / rms.
pub fn rms_norm_backward<T: Real>(
    input: &[T],
    inverse_rms: &[T],
    weight: &[T],
    output_grad: &[T],
    input_grad: &mut [T],
) {
    let width = weight.len();
    input_grad
        .par_chunks_mut(width * ROWS_PER_TASK)
        .zip(input.par_chunks(width * ROWS_PER_TASK))
        .zip(output_grad.par_chunks(width * ROWS_PER_TASK))
        .zip(inverse_rms.par_chunks(ROWS_PER_TASK))
        .for_each(|(((dx, x), dy), inv)| {
            for (((dx_row, x_row), dy_row), &r) in
                dx.chunks_exact_mut(width).zip(x.chunks_exact(width)).zip(dy.chunks_exact(width)).zip(inv)
            {
                let dot: T = x_row.iter().zip(dy_row).zip(weight).map(|((&x, &dy), &w)| dy * w * x).sum();
                let correction = r * r * r * dot / real(width as f64);
                for (((d, &x), &dy), &w) in dx_row.iter_mut().zip(x_row).zip(dy_row).zip(weight) {
                    *d += r * dy * w - x * correction;
                }
            }
        });
}

/// Each row's position and the cosine/sine tables (`[position, head_dim / 2]`) of the rotation.
#[derive(Clone, Copy)]
pub struct Rotation<'a, T> {
    pub positions: &'a [u32],
    pub cos: &'a [T],
    pub sin: &'a [T],
}

/// Rotary embeddings (Hugging Face layout: dimension i pairs with i + d/2) on the first `heads`
/// head vectors of every row, in place; `inverse` rotates back (the backward pass).
pub fn rope<T: Real>(
    rows: &mut [T],
    row_width: usize,
    heads: usize,
    head_dim: usize,
    rotation: Rotation<'_, T>,
    inverse: bool,
) {
    let Rotation { positions, cos, sin } = rotation;
    let half = head_dim / 2;
    rows.par_chunks_mut(row_width * ROWS_PER_TASK).zip(positions.par_chunks(ROWS_PER_TASK)).for_each(|(chunk, pos)| {
        for (row, &position) in chunk.chunks_exact_mut(row_width).zip(pos) {
            let table = position as usize * half;
            let (cos, sin) = (&cos[table..table + half], &sin[table..table + half]);
            for head in row[..heads * head_dim].chunks_exact_mut(head_dim) {
                let (first, second) = head.split_at_mut(half);
                for (((a, b), &c), &s) in first.iter_mut().zip(second.iter_mut()).zip(cos).zip(sin) {
                    let (x1, x2) = (*a, *b);
                    let s = if inverse { -s } else { s };
                    *a = x1 * c - x2 * s;
                    *b = x2 * c + x1 * s;
                }
            }
        }
    });
}

#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// `silu(gate) · up` from rows `[gate | up]` of width `2 · intermediate`.
pub fn swiglu_forward<T: Real>(gate_up: &[T], intermediate: usize, output: &mut [T]) {
    output
        .par_chunks_mut(intermediate * ROWS_PER_TASK)
        .zip(gate_up.par_chunks(2 * intermediate * ROWS_PER_TASK))
        .for_each(|(out, inp)| {
            for (out_row, in_row) in out.chunks_exact_mut(intermediate).zip(inp.chunks_exact(2 * intermediate)) {
                let (gate, up) = in_row.split_at(intermediate);
                for ((o, &g), &u) in out_row.iter_mut().zip(gate).zip(up) {
                    *o = g * sigmoid(g) * u;
                }
            }
        });
}

/// The gradient of [`swiglu_forward`] with respect to `[gate | up]`.
pub fn swiglu_backward<T: Real>(gate_up: &[T], output_grad: &[T], intermediate: usize, gate_up_grad: &mut [T]) {
    gate_up_grad
        .par_chunks_mut(2 * intermediate * ROWS_PER_TASK)
        .zip(gate_up.par_chunks(2 * intermediate * ROWS_PER_TASK))
        .zip(output_grad.par_chunks(intermediate * ROWS_PER_TASK))
        .for_each(|((grad, inp), dy)| {
            for ((grad_row, in_row), dy_row) in grad
                .chunks_exact_mut(2 * intermediate)
                .zip(inp.chunks_exact(2 * intermediate))
                .zip(dy.chunks_exact(intermediate))
            {
                let (gate, up) = in_row.split_at(intermediate);
                let (gate_grad, up_grad) = grad_row.split_at_mut(intermediate);
                for ((((dg, du), &g), &u), &dy) in
                    gate_grad.iter_mut().zip(up_grad.iter_mut()).zip(gate).zip(up).zip(dy_row)
                {
                    let s = sigmoid(g);
                    *du = dy * g * s;
                    *dg = dy * u * s * (T::one() + g * (T::one() - s));
                }
            }
        });
}

/// Attention shapes: `qkv` rows are `[q heads | k heads | v heads]`, q pre-scaled and rotated.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    pub fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }

    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// The softmax weights of every (sequence, key/value head) task, `[group heads][t][t]`.
pub type AttentionProbs<T> = Vec<Vec<T>>;

/// Causal attention of each sequence over itself; `output` rows are `[heads × head_dim]`. Returns
/// the weights the backward pass needs.
pub fn attention_forward<T: Real>(
    qkv: &[T],
    shape: Heads,
    spans: &[SequenceSpan],
    output: &mut [T],
) -> Result<AttentionProbs<T>> {
    let (d, group, qkv_width) = (shape.head_dim, shape.group(), shape.qkv_width());
    let tasks: Vec<(usize, usize)> = (0..spans.len()).flat_map(|s| (0..shape.kv_heads).map(move |g| (s, g))).collect();
    let results: Vec<Result<(Vec<T>, Vec<T>)>> = tasks
        .par_iter()
        .map(|&(s, g)| {
            let span = spans[s];
            let t = span.len();
            let base = span.start * qkv_width;
            let keys = Mat::block(qkv, base + (shape.heads + g) * d, t, d, qkv_width);
            let values = Mat::block(qkv, base + (shape.heads + shape.kv_heads + g) * d, t, d, qkv_width);
            let mut probs = vec![T::zero(); group * t * t];
            let mut out = vec![T::zero(); t * group * d];
            for j in 0..group {
                let head = g * group + j;
                let queries = Mat::block(qkv, base + head * d, t, d, qkv_width);
                let scores = &mut probs[j * t * t..(j + 1) * t * t];
                gemm(MatMut::new(scores, t, t), false, queries, keys.t(), T::one(), false)?;
                for (i, row) in scores.chunks_exact_mut(t).enumerate() {
                    let max = row[..=i].iter().copied().fold(T::neg_infinity(), num_traits::Float::max);
                    let mut total = T::zero();
                    for s in row[..=i].iter_mut() {
                        *s = (*s - max).exp();
                        total += *s;
                    }
                    let inverse = T::one() / total;
                    row[..=i].iter_mut().for_each(|s| *s *= inverse);
                    row[i + 1..].fill(T::zero());
                }
                let scores = &probs[j * t * t..(j + 1) * t * t];
                gemm(
                    MatMut::block(&mut out, j * d, t, d, group * d),
                    false,
                    Mat::new(scores, t, t),
                    values,
                    T::one(),
                    false,
                )?;
            }
            Ok((probs, out))
        })
        .collect();
    let width = shape.q_width();
    let mut all_probs = Vec::with_capacity(tasks.len());
    for (&(s, g), result) in tasks.iter().zip(results) {
        let (probs, out) = result?;
        let span = spans[s];
        for (i, row) in out.chunks_exact(group * d).enumerate() {
            let start = (span.start + i) * width + g * group * d;
            output[start..start + group * d].copy_from_slice(row);
        }
        all_probs.push(probs);
    }
    Ok(all_probs)
}

/// One (span, kv head) task's query, key and value gradients.
type SpanGradients<T> = (Vec<T>, Vec<T>, Vec<T>);

/// The gradient of [`attention_forward`] with respect to `qkv` (rotated q, k and v), written
/// into `qkv_grad` (every q, k and v column of every row of the spans).
pub fn attention_backward<T: Real>(
    qkv: &[T],
    probs: &AttentionProbs<T>,
    output_grad: &[T],
    shape: Heads,
    spans: &[SequenceSpan],
    qkv_grad: &mut [T],
) -> Result<()> {
    let (d, group, qkv_width, q_width) = (shape.head_dim, shape.group(), shape.qkv_width(), shape.q_width());
    let tasks: Vec<(usize, usize)> = (0..spans.len()).flat_map(|s| (0..shape.kv_heads).map(move |g| (s, g))).collect();
    let results: Vec<Result<SpanGradients<T>>> = tasks
        .par_iter()
        .zip(probs)
        .map(|(&(s, g), probs)| {
            let span = spans[s];
            let t = span.len();
            let base = span.start * qkv_width;
            let keys = Mat::block(qkv, base + (shape.heads + g) * d, t, d, qkv_width);
            let values = Mat::block(qkv, base + (shape.heads + shape.kv_heads + g) * d, t, d, qkv_width);
            let mut query_grad = vec![T::zero(); t * group * d];
            let mut key_grad = vec![T::zero(); t * d];
            let mut value_grad = vec![T::zero(); t * d];
            let mut score_grad = vec![T::zero(); t * t];
            for j in 0..group {
                let head = g * group + j;
                let weights = Mat::new(&probs[j * t * t..(j + 1) * t * t], t, t);
                let out_grad = Mat::block(output_grad, span.start * q_width + head * d, t, d, q_width);
                // dP = dO · Vᵀ, dV += Pᵀ · dO
                gemm(MatMut::new(&mut score_grad, t, t), false, out_grad, values.t(), T::one(), false)?;
                gemm(MatMut::new(&mut value_grad, t, d), j > 0, weights.t(), out_grad, T::one(), false)?;
                // dS = P ⊙ (dP − Σ_j dP·P) per row (masked weights are 0, so are their gradients).
                let p = &probs[j * t * t..(j + 1) * t * t];
                for (row_grad, row) in score_grad.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
                    let dot: T = row_grad.iter().zip(row).map(|(&dp, &w)| dp * w).sum();
                    for (dp, &w) in row_grad.iter_mut().zip(row) {
                        *dp = w * (*dp - dot);
                    }
                }
                let queries = Mat::block(qkv, base + head * d, t, d, qkv_width);
                let scores_grad = Mat::new(&score_grad, t, t);
                // dQ = dS · K, dK += dSᵀ · Q
                gemm(
                    MatMut::block(&mut query_grad, j * d, t, d, group * d),
                    false,
                    scores_grad,
                    keys,
                    T::one(),
                    false,
                )?;
                gemm(MatMut::new(&mut key_grad, t, d), j > 0, scores_grad.t(), queries, T::one(), false)?;
            }
            Ok((query_grad, key_grad, value_grad))
        })
        .collect();
    for (&(s, g), result) in tasks.iter().zip(results) {
        let (query_grad, key_grad, value_grad) = result?;
        let span = spans[s];
        for i in 0..span.len() {
            let row = &mut qkv_grad[(span.start + i) * qkv_width..(span.start + i + 1) * qkv_width];
            row[g * group * d..(g + 1) * group * d].copy_from_slice(&query_grad[i * group * d..(i + 1) * group * d]);
            let k = (shape.heads + g) * d;
            row[k..k + d].copy_from_slice(&key_grad[i * d..(i + 1) * d]);
            let v = (shape.heads + shape.kv_heads + g) * d;
            row[v..v + d].copy_from_slice(&value_grad[i * d..(i + 1) * d]);
        }
    }
    Ok(())
}

/// Cross-entropy of each row of `logits` (`[rows, vocab]`) against its label: returns
/// `scale · Σ −log softmax(row)[label]` and overwrites `logits` with its gradient,
/// `scale · (softmax(row) − onehot(label))`.
pub fn cross_entropy<T: Real>(logits: &mut [T], labels: &[u32], vocab: usize, scale: f64) -> Result<f64> {
    if logits.len() != labels.len() * vocab {
        return Err(EngineError::KernelInput(format!("{} logits for {} labels", logits.len(), labels.len())));
    }
    if let Some(label) = labels.iter().find(|&&l| l as usize >= vocab) {
        return Err(EngineError::KernelInput(format!("label {label} is outside the vocabulary of {vocab}")));
    }
    let losses: Vec<f64> = logits
        .par_chunks_mut(vocab)
        .zip(labels.par_iter())
        .map(|(row, &label)| {
            let max = row.iter().copied().fold(T::neg_infinity(), num_traits::Float::max);
            let total: f64 = row.iter().map(|&x| to_f64(x - max).exp()).sum();
            let log_total = total.ln();
            let loss = log_total - to_f64(row[label as usize] - max);
            for x in row.iter_mut() {
                *x = real::<T>((to_f64(*x - max) - log_total).exp() * scale);
            }
            row[label as usize] -= real(scale);
            loss * scale
        })
        .collect();
    Ok(losses.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gemm_matches_a_plain_triple_loop() {
        // lhs: a 3×4 block of a 3×6 buffer; rhs: the transpose of a 5×4 matrix; dst: columns 2..7 of 3×8.
        let lhs_data: Vec<f64> = (0..18).map(|i| i as f64 * 0.5 - 3.0).collect();
        let rhs_data: Vec<f64> = (0..20).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut dst = vec![1.0f64; 24];
        let lhs = Mat::block(&lhs_data, 1, 3, 4, 6);
        let rhs = Mat::new(&rhs_data, 5, 4).t();
        gemm(MatMut::block(&mut dst, 2, 3, 5, 8), true, lhs, rhs, 2.0, false).unwrap();
        for r in 0..3 {
            for c in 0..8 {
                let expected = if (2..7).contains(&c) {
                    1.0 + 2.0 * (0..4).map(|k| lhs_data[1 + r * 6 + k] * rhs_data[(c - 2) * 4 + k]).sum::<f64>()
                } else {
                    1.0
                };
                assert!((dst[r * 8 + c] - expected).abs() < 1e-12, "({r}, {c})");
            }
        }
        let error = gemm(MatMut::new(&mut dst, 3, 9), false, lhs, rhs, 1.0, false).unwrap_err();
        assert!(error.to_string().contains("gemm of 3×4 by 4×5 into 3×9"), "{error}");
    }

    #[test]
    fn cross_entropy_is_the_negative_log_probability_and_its_gradient_sums_to_zero() {
        let mut logits = vec![0.5f64, -1.0, 2.0, 0.0, 0.0, 0.0];
        let loss = cross_entropy(&mut logits, &[2, 0], 3, 0.5).unwrap();
        let log_total = (0.5f64.exp() + (-1.0f64).exp() + 2.0f64.exp()).ln();
        let expected = 0.5 * ((log_total - 2.0) + 3.0f64.ln());
        assert!((loss - expected).abs() < 1e-12);
        assert!(logits[..3].iter().sum::<f64>().abs() < 1e-12 && logits[3..].iter().sum::<f64>().abs() < 1e-12);
        assert!((logits[3] - 0.5 * (1.0 / 3.0 - 1.0)).abs() < 1e-12);
    }
}
