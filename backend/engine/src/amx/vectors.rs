//! The AVX-512 BF16 kernel of [`super`]: the packed bf16 weights through `VDPBF16PS` where the CPU
//! has no AMX tiles (AMD Zen 4 and later, Intel Cooper Lake).

use std::arch::x86_64::{__m512, __m512bh, _mm512_dpbf16_ps, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_ps};

use super::{PackedBf16, TILE_ELEMENTS, TILE_K, TILE_N, TILE_ROWS};

/// Activation rows per register block: 12 rows × 2 weight tiles = 24 accumulators of the 32
/// registers, the rest for the two weight rows and the broadcast pair.
const BLOCK_ROWS: usize = 12;

pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
}

/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16 ([`available`]); `activations` must hold `m`
/// rows of `weight.padded_k()` bf16 values and `output` `m · n` floats.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn multiply(
    output: &mut [f32],
    accumulate: bool,
    activations: &[u16],
    m: usize,
    weight: &PackedBf16,
) {
    assert!(activations.len() >= m * weight.padded_k() && output.len() >= m * weight.n);
    // Weight blocks outermost, as on the tiles: 32 columns × all of k stay in cache.
    for column_tile in (0..weight.column_tiles).step_by(2) {
        let mut first_row = 0;
        while first_row < m {
            let rows = (m - first_row).min(BLOCK_ROWS);
            let at = Block { first_row, column_tile };
            // SAFETY: the caller's guarantees; `rows` rows from `first_row` lie within `m`.
            unsafe {
                match rows {
                    12 => block::<12>(output, accumulate, activations, at, weight),
                    11 => block::<11>(output, accumulate, activations, at, weight),
                    10 => block::<10>(output, accumulate, activations, at, weight),
                    9 => block::<9>(output, accumulate, activations, at, weight),
                    8 => block::<8>(output, accumulate, activations, at, weight),
                    7 => block::<7>(output, accumulate, activations, at, weight),
                    6 => block::<6>(output, accumulate, activations, at, weight),
                    5 => block::<5>(output, accumulate, activations, at, weight),
                    4 => block::<4>(output, accumulate, activations, at, weight),
                    3 => block::<3>(output, accumulate, activations, at, weight),
                    2 => block::<2>(output, accumulate, activations, at, weight),
                    _ => block::<1>(output, accumulate, activations, at, weight),
                }
            }
            first_row += rows;
        }
    }
}

#[derive(Clone, Copy)]
struct Block {
    first_row: usize,
    column_tile: usize,
}

/// `R` activation rows × 32 output columns over all of k. A tile row (64 bytes) is the 16
/// columns' pairs for two reduction steps, exactly one `VDPBF16PS` operand; each activation
/// pair is broadcast to all 16 lanes.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block<const R: usize>(
    output: &mut [f32],
    accumulate: bool,
    activations: &[u16],
    at: Block,
    weight: &PackedBf16,
) {
    let padded_k = weight.padded_k();
    let mut sums: [[__m512; 2]; R] = [[_mm512_setzero_ps(); 2]; R];
    let rows = activations[at.first_row * padded_k..(at.first_row + R) * padded_k].as_ptr();
    for k_tile in 0..weight.k_tiles {
        let w0 = weight.data[(at.column_tile * weight.k_tiles + k_tile) * TILE_ELEMENTS..][..TILE_ELEMENTS].as_ptr();
        let w1 =
            weight.data[((at.column_tile + 1) * weight.k_tiles + k_tile) * TILE_ELEMENTS..][..TILE_ELEMENTS].as_ptr();
        for step in 0..TILE_ROWS {
            // SAFETY: each tile holds 16 rows of 32 bf16 values (checked slices above); the
            // activation slice holds R rows of padded_k values and k_tile·32 + 2·step + 1 < padded_k.
            unsafe {
                let b0 = w0.add(step * TILE_K).cast::<__m512bh>().read_unaligned();
                let b1 = w1.add(step * TILE_K).cast::<__m512bh>().read_unaligned();
                let pair = k_tile * TILE_K + step * 2;
                for (r, sum) in sums.iter_mut().enumerate() {
                    let a = rows.add(r * padded_k + pair).cast::<i32>().read_unaligned();
                    let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(a));
                    sum[0] = _mm512_dpbf16_ps(sum[0], a, b0);
                    sum[1] = _mm512_dpbf16_ps(sum[1], a, b1);
                }
            }
        }
    }
    let first_column = at.column_tile * TILE_N;
    let columns = (weight.n - first_column).min(2 * TILE_N);
    let mut values = [0.0f32; 2 * TILE_N];
    for (r, sum) in sums.iter().enumerate() {
        // SAFETY: `values` holds 32 floats, two stores of 16.
        unsafe {
            _mm512_storeu_ps(values.as_mut_ptr(), sum[0]);
            _mm512_storeu_ps(values.as_mut_ptr().add(TILE_N), sum[1]);
        }
        let target = &mut output[(at.first_row + r) * weight.n + first_column..][..columns];
        if accumulate {
            target.iter_mut().zip(&values).for_each(|(t, s)| *t += s);
        } else {
            target.copy_from_slice(&values[..columns]);
        }
    }
}
