//! f32 CPU kernels for the forward pass, on plain slices: fused where candle would make several
//! passes (and allocations), written so that the compiler vectorizes them (`-C target-cpu=native`
//! gives AVX-512), and parallel over rows or sequences with rayon.

use rayon::prelude::*;

use super::error::{EngineError, Result};

/// Floats per accumulator array: one AVX-512 register.
const LANES: usize = 16;
/// Rows per rayon task for row-wise kernels: enough work to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// `a · b + c`, one fused instruction where the target has FMA (Rust never contracts `a * b + c`
/// itself); without FMA, `mul_add` would be a slow library call, so it stays two operations.
#[inline(always)]
fn multiply_add(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(target_feature = "fma") {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` to about 2 ulp, written to vectorize (Cephes' polynomial on a range reduced by ln 2).
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5·2²³ rounds to the nearest integer in plain float arithmetic.
    const ROUNDING: f32 = 12_582_912.0;
    // Beyond these, exp over/underflows f32; clamping keeps 2^k a normal number.
    const MAX_INPUT: f32 = 88.37;
    const MIN_INPUT: f32 = -87.33;
    const EXPONENT_BIAS: u32 = 127;
    const MANTISSA_BITS: u32 = 23;
    let x = x.clamp(MIN_INPUT, MAX_INPUT);
    let shifted = x * LOG2E + ROUNDING;
    let k = shifted - ROUNDING;
    // The integer k sits in the low mantissa bits of `shifted`; integer ops keep this vectorized
    // where an `as i32` cast (saturating) would not be.
    let k_bits = shifted.to_bits().wrapping_sub(ROUNDING.to_bits());
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = multiply_add(p, r, 1.398_199_9e-3);
    p = multiply_add(p, r, 8.333_452e-3);
    p = multiply_add(p, r, 4.166_579_6e-2);
    p = multiply_add(p, r, 1.666_666_5e-1);
    p = multiply_add(p, r, 0.5);
    let exp_r = multiply_add(p * r, r, r + 1.0);
    let scale = f32::from_bits(k_bits.wrapping_add(EXPONENT_BIAS) << MANTISSA_BITS);
    exp_r * scale
}

/// Sum of squares with lane-wise accumulators (a plain fold would not vectorize).
#[inline(always)]
fn sum_of_squares(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = multiply_add(*v, *v, *lane);
        }
    }
    lanes.iter().sum::<f32>() + tail.iter().map(|v| v * v).sum::<f32>()
}

#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn lane_max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(*v);
        }
    }
    lanes.iter().copied().fold(tail, f32::max)
}

/// `output[r] = input[r] / rms(input[r]) * weight` for every row of width `weight.len()`.
pub fn rms_norm(input: &[f32], weight: &[f32], eps: f32, output: &mut [f32]) {
    let width = weight.len();
    output.par_chunks_mut(width * ROWS_PER_TASK).zip(input.par_chunks(width * ROWS_PER_TASK)).for_each(|(out, inp)| {
        for (out_row, in_row) in out.chunks_exact_mut(width).zip(inp.chunks_exact(width)) {
            let inverse_rms = 1.0 / (sum_of_squares(in_row) / width as f32 + eps).sqrt();
            for ((o, x), w) in out_row.iter_mut().zip(in_row).zip(weight) {
                *o = x * inverse_rms * w;
            }
        }
    });
}

/// SwiGLU on rows `[gate | up]` of width `2 * intermediate`: `silu(gate) * up`, rows of `intermediate`.
pub fn swiglu(gate_up: &[f32], intermediate: usize, output: &mut [f32]) {
    output
        .par_chunks_mut(intermediate * ROWS_PER_TASK)
        .zip(gate_up.par_chunks(2 * intermediate * ROWS_PER_TASK))
        .for_each(|(out, inp)| {
            for (out_row, in_row) in out.chunks_exact_mut(intermediate).zip(inp.chunks_exact(2 * intermediate)) {
                let (gate, up) = in_row.split_at(intermediate);
                for ((o, g), u) in out_row.iter_mut().zip(gate).zip(up) {
                    *o = g / (1.0 + fast_exp(-g)) * u;
                }
            }
        });
}

/// Adds `bias` to every row.
pub fn add_bias(rows: &mut [f32], bias: &[f32]) {
    rows.par_chunks_mut(bias.len() * ROWS_PER_TASK).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(bias.len()) {
            for (x, b) in row.iter_mut().zip(bias) {
                *x += b;
            }
        }
    });
}

/// `output[m, n] = input[m, k] · weight[n, k]ᵀ`, or `+=` when `accumulate` (a fused residual add).
pub fn matmul_transposed(output: &mut [f32], accumulate: bool, input: &[f32], weight: &[f32], k: usize) -> Result<()> {
    let n = weight.len().checked_div(k).unwrap_or(0);
    let m = input.len().checked_div(k).unwrap_or(0);
    if input.len() != m * k || weight.len() != n * k || output.len() != m * n {
        return Err(EngineError::KernelInput(format!(
            "matmul of {} inputs and {} weights over k = {k} into {} outputs",
            input.len(),
            weight.len(),
            output.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the three buffers hold exactly m·k, n·k and m·n floats (checked above) and the
    // strides describe row-major input/output and the transposed row-major weight within them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            output.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            input.as_ptr(),
            1,
            k as isize,
            weight.as_ptr(),
            k as isize,
            1,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Rotary embeddings (Hugging Face layout: dimension i pairs with i + d/2) applied in place to
/// `heads` consecutive head vectors at the start of every row of `rows` (row width `row_width`).
pub fn rope_in_place(
    rows: &mut [f32],
    row_width: usize,
    heads: usize,
    head_dim: usize,
    positions: &[u32],
    cos: &[f32],
    sin: &[f32],
) {
    let half = head_dim / 2;
    rows.par_chunks_mut(row_width * ROWS_PER_TASK).zip(positions.par_chunks(ROWS_PER_TASK)).for_each(|(chunk, pos)| {
        for (row, &position) in chunk.chunks_exact_mut(row_width).zip(pos) {
            let table = position as usize * half;
            let (cos, sin) = (&cos[table..table + half], &sin[table..table + half]);
            for head in row[..heads * head_dim].chunks_exact_mut(head_dim) {
                let (first, second) = head.split_at_mut(half);
                for (((a, b), c), s) in first.iter_mut().zip(second.iter_mut()).zip(cos).zip(sin) {
                    let (x1, x2) = (*a, *b);
                    *a = x1 * c - x2 * s;
                    *b = x2 * c + x1 * s;
                }
            }
        }
    });
}

/// Where one sequence's rows are in the packed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceSpan {
    pub start: usize,
    /// Causal tokens.
    pub main_len: usize,
    /// Branch tokens after them: each sees the main tokens and itself.
    pub branch_len: usize,
}

impl SequenceSpan {
    pub fn len(&self) -> usize {
        self.main_len + self.branch_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Attention shapes.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The keys and values before the batch, shared by every sequence: `[kv_heads, len, head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct SharedPast<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub len: usize,
}

/// Attention of every packed row over the shared past and its own sequence (causal, branches
/// see the main tokens and themselves). `qkv` rows are `[q heads | k heads | v heads]` with q
/// pre-scaled and q, k rotated; `output` rows are `[heads × head_dim]`.
pub fn attention(
    qkv: &[f32],
    shape: AttentionShape,
    past: Option<SharedPast>,
    spans: &[SequenceSpan],
    output: &mut [f32],
) {
    let out_width = shape.heads * shape.head_dim;
    let mut chunks = Vec::with_capacity(spans.len());
    let mut rest = output;
    for span in spans {
        let (chunk, tail) = rest.split_at_mut(span.len() * out_width);
        chunks.push(chunk);
        rest = tail;
    }
    // The past's keys and values in kernel layout once per pass, not once per sequence.
    let past_lanes: Vec<PastLanes> = (0..shape.kv_heads).map(|kv_head| PastLanes::new(past, shape, kv_head)).collect();
    chunks.into_par_iter().zip(spans.par_iter()).for_each(|(out, span)| {
        for (kv_head, past) in past_lanes.iter().enumerate() {
            attend_one_kv_head(qkv, shape, past, *span, kv_head, out);
        }
    });
}

type Lane = [f32; LANES];

/// One key/value head of the shared past in kernel layout: keys as `[key chunk][dimension]`
/// lanes of 16 keys, values as `[key][dimension chunk]` lanes of 16 dimensions, zero padded.
struct PastLanes {
    len: usize,
    keys_t: Vec<Lane>,
    values: Vec<Lane>,
}

impl PastLanes {
    fn new(past: Option<SharedPast>, shape: AttentionShape, kv_head: usize) -> Self {
        let head_dim = shape.head_dim;
        let len = past.map_or(0, |p| p.len);
        let value_chunks = head_dim.div_ceil(LANES);
        let mut keys_t = vec![[0.0f32; LANES]; len.div_ceil(LANES) * head_dim];
        let mut values = vec![[0.0f32; LANES]; len * value_chunks];
        if let Some(past) = past {
            let range = kv_head * len * head_dim..(kv_head + 1) * len * head_dim;
            for (c, key) in past.keys[range.clone()].chunks_exact(head_dim).enumerate() {
                scatter_key(&mut keys_t, head_dim, c, key);
            }
            for (c, value) in past.values[range].chunks_exact(head_dim).enumerate() {
                gather_value(&mut values[c * value_chunks..(c + 1) * value_chunks], value);
            }
        }
        PastLanes { len, keys_t, values }
    }
}

#[inline(always)]
fn scatter_key(keys_t: &mut [Lane], head_dim: usize, c: usize, key: &[f32]) {
    let (chunk, lane) = (c / LANES, c % LANES);
    for (slot, k) in keys_t[chunk * head_dim..(chunk + 1) * head_dim].iter_mut().zip(key) {
        slot[lane] = *k;
    }
}

#[inline(always)]
fn gather_value(lanes: &mut [Lane], value: &[f32]) {
    for (lane, part) in lanes.iter_mut().zip(value.chunks(LANES)) {
        lane[..part.len()].copy_from_slice(part);
    }
}

/// Query rows scored together: their key loads are shared, and the accumulators fit in registers.
const QUERY_BLOCK: usize = 6;

fn attend_one_kv_head(
    qkv: &[f32],
    shape: AttentionShape,
    past: &PastLanes,
    span: SequenceSpan,
    kv_head: usize,
    out: &mut [f32],
) {
    let AttentionShape { heads, kv_heads, head_dim } = shape;
    let row_width = (heads + 2 * kv_heads) * head_dim;
    let group = heads / kv_heads;
    let past_len = past.len;
    let key_count = past_len + span.len();
    let key_chunks = key_count.div_ceil(LANES);
    let key_stride = key_chunks * LANES;
    let value_chunks = head_dim.div_ceil(LANES);
    let key_offset = (heads + kv_head) * head_dim;
    let value_offset = (heads + kv_heads + kv_head) * head_dim;
    let own_row = |t: usize| &qkv[(span.start + t) * row_width..(span.start + t + 1) * row_width];

    // The past's lanes copied whole, then this sequence's own keys and values added.
    let mut keys_t = vec![[0.0f32; LANES]; key_chunks * head_dim];
    keys_t[..past.keys_t.len()].copy_from_slice(&past.keys_t);
    let mut values = vec![[0.0f32; LANES]; key_count * value_chunks];
    values[..past.values.len()].copy_from_slice(&past.values);
    for t in 0..span.len() {
        let row = own_row(t);
        let c = past_len + t;
        scatter_key(&mut keys_t, head_dim, c, &row[key_offset..key_offset + head_dim]);
        gather_value(
            &mut values[c * value_chunks..(c + 1) * value_chunks],
            &row[value_offset..value_offset + head_dim],
        );
    }

    let query_rows = span.len() * group;
    let mut queries_t = vec![[0.0f32; QUERY_BLOCK]; head_dim];
    let mut scores = vec![0.0f32; QUERY_BLOCK * key_stride];
    let mut block_out = vec![[0.0f32; LANES]; QUERY_BLOCK * value_chunks];
    for first_row in (0..query_rows).step_by(QUERY_BLOCK) {
        let rows = QUERY_BLOCK.min(query_rows - first_row);
        // Rows in (position, head) order; missing rows of the last block stay zero.
        let row_of = |r: usize| ((first_row + r) / group, kv_head * group + (first_row + r) % group);
        for slot in queries_t.iter_mut() {
            *slot = [0.0; QUERY_BLOCK];
        }
        for r in 0..rows {
            let (t, head) = row_of(r);
            for (slot, q) in queries_t.iter_mut().zip(&own_row(t)[head * head_dim..(head + 1) * head_dim]) {
                slot[r] = *q;
            }
        }
        let last_position = (first_row + rows - 1) / group;
        let scored = past_len + last_position + 1;
        let scored_chunks = scored.div_ceil(LANES);
        score_block(&queries_t, &keys_t[..scored_chunks * head_dim], key_stride, &mut scores);

        let mut inverse_totals = [0.0f32; QUERY_BLOCK];
        for (r, inverse_total) in inverse_totals.iter_mut().enumerate() {
            let row_scores = &mut scores[r * key_stride..r * key_stride + scored];
            if r < rows {
                *inverse_total = exponentiate_visible(row_scores, past_len, span, row_of(r).0);
            } else {
                row_scores.fill(0.0);
            }
        }
        weigh_values(&scores, key_stride, scored, &values, value_chunks, &mut block_out);
        for r in 0..rows {
            let (t, head) = row_of(r);
            let destination = &mut out[t * heads * head_dim + head * head_dim..][..head_dim];
            let lanes = block_out[r * value_chunks..(r + 1) * value_chunks].iter().flatten();
            for (d, v) in destination.iter_mut().zip(lanes) {
                *d = v * inverse_totals[r];
            }
        }
    }
}

/// Unnormalised softmax weights of one row over its visible keys (the past, own keys up to `t`;
/// branches see the main tokens and themselves), invisible ones 0; returns 1 / their sum.
#[inline(always)]
fn exponentiate_visible(row_scores: &mut [f32], past_len: usize, span: SequenceSpan, t: usize) -> f32 {
    let is_branch = t >= span.main_len;
    let contiguous = past_len + if is_branch { span.main_len } else { t + 1 };
    let own_branch = is_branch.then_some(past_len + t);
    let branch_score = own_branch.map(|c| row_scores[c]);
    let mut max = lane_max(&row_scores[..contiguous]);
    if let Some(score) = branch_score {
        max = max.max(score);
    }
    let (visible, hidden) = row_scores.split_at_mut(contiguous);
    for s in visible.iter_mut() {
        *s = fast_exp(*s - max);
    }
    hidden.fill(0.0);
    let mut total = lane_sum(visible);
    if let (Some(c), Some(score)) = (own_branch, branch_score) {
        let weight = fast_exp(score - max);
        row_scores[c] = weight;
        total += weight;
    }
    1.0 / total
}

/// `scores[r, c] = queries[r] · keys[c]` for a block of query rows (`queries_t[dimension][row]`)
/// and key chunks (`keys_t[chunk][dimension]`).
#[inline(always)]
fn score_block(queries_t: &[[f32; QUERY_BLOCK]], keys_t: &[Lane], key_stride: usize, scores: &mut [f32]) {
    let head_dim = queries_t.len();
    for (chunk, chunk_keys) in keys_t.chunks_exact(head_dim).enumerate() {
        let mut accumulators = [[0.0f32; LANES]; QUERY_BLOCK];
        for (keys, queries) in chunk_keys.iter().zip(queries_t) {
            for (accumulator, q) in accumulators.iter_mut().zip(queries) {
                for (a, k) in accumulator.iter_mut().zip(keys) {
                    *a = multiply_add(*q, *k, *a);
                }
            }
        }
        for (r, accumulator) in accumulators.iter().enumerate() {
            scores[r * key_stride + chunk * LANES..][..LANES].copy_from_slice(accumulator);
        }
    }
}

/// `output[r] = Σ_c weights[r, c] · values[c]` for a block of rows (weights row-major with
/// `key_stride`), values as `[key][dimension chunk]`.
#[inline(always)]
fn weigh_values(
    weights: &[f32],
    key_stride: usize,
    keys: usize,
    values: &[Lane],
    value_chunks: usize,
    output: &mut [Lane],
) {
    let rows: [&[f32]; QUERY_BLOCK] = std::array::from_fn(|r| &weights[r * key_stride..r * key_stride + keys]);
    for column in 0..value_chunks {
        let mut accumulators = [[0.0f32; LANES]; QUERY_BLOCK];
        for (c, key_values) in values.chunks_exact(value_chunks).take(keys).enumerate() {
            let value = &key_values[column];
            for (accumulator, row) in accumulators.iter_mut().zip(&rows) {
                let w = row[c];
                for (a, v) in accumulator.iter_mut().zip(value) {
                    *a = multiply_add(w, *v, *a);
                }
            }
        }
        for (r, accumulator) in accumulators.iter().enumerate() {
            output[r * value_chunks + column] = *accumulator;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_over_the_softmax_range() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = (x as f64).exp();
            worst = worst.max(((fast_exp(x) as f64 - exact) / exact).abs());
            x += 0.013;
        }
        assert!(worst < 1e-6, "relative error {worst}");
        assert!(fast_exp(-1000.0) < 1e-37 && fast_exp(-1000.0) >= 0.0);
    }

    #[test]
    fn sum_of_squares_handles_tails() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let squares: f32 = a.iter().map(|x| x * x).sum();
        assert!((sum_of_squares(&a) - squares).abs() < 1e-2);
    }
}
