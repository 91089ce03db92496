//! BF16 GEMMs on Intel AMX tiles for the projections of the CPU forward pass, opt-in beside the
//! f32 reference path (`LlamaModel::pack_bf16`; `culturespa --amx run|serve|bench score`).
//!
//! A projection's weight `W: [n, k]` is rounded to bf16 once and packed into 16 × 64-byte tiles
//! in the VNNI layout `TDPBF16PS` reads (tile row r, column c holds `W[c, 2r]` and `W[c, 2r + 1]`
//! of its block); each pass rounds the activations to bf16 and accumulates in f32 on the tiles,
//! 2 × 2 output tiles (32 rows × 32 columns) at a time. Where the CPU or the kernel lacks AMX
//! (checked once: CPUID leaf 7 and Linux's `ARCH_REQ_XCOMP_PERM` for the tile data), the same
//! packed data goes through AVX-512 BF16 vectors (`VDPBF16PS`: one tile row is one 512-bit
//! register; AMD Zen 4 and later, Intel Cooper Lake) or, without those, a portable loop, all with
//! the same rounding, so results never depend on which kernel ran (up to the order of the f32
//! additions). [`kernel`] says which one runs.

use std::sync::OnceLock;

use super::error::{EngineError, Result};

/// Rows of a tile, bf16 values per tile row (64 bytes) and f32 values per output tile row.
const TILE_ROWS: usize = 16;
const TILE_K: usize = 32;
const TILE_N: usize = 16;
/// One packed weight tile: 16 rows of 16 column pairs.
const TILE_ELEMENTS: usize = TILE_ROWS * TILE_K;

/// Whether this CPU and kernel run AMX-BF16 tiles (checked once per process).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

/// Which kernel runs the bf16 projections on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AMX tiles (`TDPBF16PS`).
    AmxTiles,
    /// AVX-512 BF16 vectors (`VDPBF16PS`).
    Avx512,
    /// The portable loop (slow: a reference, not a speed-up).
    Portable,
}

impl Bf16Kernel {
    /// The name benchmarks and logs print (`bf16-amx`, `bf16-avx512`, `bf16-portable`).
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::AmxTiles => "bf16-amx",
            Bf16Kernel::Avx512 => "bf16-avx512",
            Bf16Kernel::Portable => "bf16-portable",
        }
    }
}

/// The fastest bf16 kernel this CPU runs.
pub fn kernel() -> Bf16Kernel {
    if available() {
        Bf16Kernel::AmxTiles
    } else if vectors::available() {
        Bf16Kernel::Avx512
    } else {
        Bf16Kernel::Portable
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID.(EAX=7, ECX=0): EDX bit 24 AMX-TILE, bit 22 AMX-BF16.
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf7.edx & (1 << 24) == 0 || leaf7.edx & (1 << 22) == 0 {
        return false;
    }
    // Linux hands out the 8 KiB tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); without it the first tile instruction faults.
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes the process's permitted xsave features.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// f32 → bf16, rounded to nearest even (NaN stays NaN).
pub fn to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

pub fn from_bf16(value: u16) -> f32 {
    f32::from_bits(u32::from(value) << 16)
}

/// A weight `[n, k]` in bf16, packed into VNNI tiles: `column_tiles` (a multiple of 2) blocks of 16
/// output columns, each `k_tiles` tiles of 32 reduction steps, zero-padded.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    n: usize,
    k: usize,
    column_tiles: usize,
    k_tiles: usize,
    data: Vec<u16>,
}

impl PackedBf16 {
    pub fn pack(weight: &[f32], n: usize, k: usize) -> Result<Self> {
        if weight.len() != n * k || n == 0 || k == 0 {
            return Err(EngineError::KernelInput(format!(
                "packing {} weights as {n} × {k} for the bf16 tiles",
                weight.len()
            )));
        }
        let column_tiles = n.div_ceil(2 * TILE_N) * 2;
        let k_tiles = k.div_ceil(TILE_K);
        let mut data = vec![0u16; column_tiles * k_tiles * TILE_ELEMENTS];
        for column_tile in 0..column_tiles {
            for k_tile in 0..k_tiles {
                let tile = &mut data[(column_tile * k_tiles + k_tile) * TILE_ELEMENTS..][..TILE_ELEMENTS];
                for column in 0..TILE_N {
                    let out = column_tile * TILE_N + column;
                    if out >= n {
                        break;
                    }
                    let row = &weight[out * k..(out + 1) * k];
                    for step in 0..TILE_K {
                        let reduction = k_tile * TILE_K + step;
                        if reduction >= k {
                            break;
                        }
                        tile[(step / 2) * TILE_K + column * 2 + step % 2] = to_bf16(row[reduction]);
                    }
                }
            }
        }
        Ok(PackedBf16 { n, k, column_tiles, k_tiles, data })
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn reduction(&self) -> usize {
        self.k
    }

    fn tile(&self, column_tile: usize, k_tile: usize) -> &[u16] {
        &self.data[(column_tile * self.k_tiles + k_tile) * TILE_ELEMENTS..][..TILE_ELEMENTS]
    }

    fn padded_k(&self) -> usize {
        self.k_tiles * TILE_K
    }
}

/// `output[m, n] = input[m, k] · weightᵀ` (or `+=` when `accumulate`) with bf16 inputs and f32
/// accumulation; on AMX tiles where [`available`], else the portable loop over the same data.
pub fn matmul_transposed_bf16(output: &mut [f32], accumulate: bool, input: &[f32], weight: &PackedBf16) -> Result<()> {
    let (n, k) = (weight.n, weight.k);
    let m = input.len() / k;
    if input.len() != m * k || output.len() != m * n {
        return Err(EngineError::KernelInput(format!(
            "bf16 matmul of {} inputs and a {n} × {k} weight into {} outputs",
            input.len(),
            output.len()
        )));
    }
    if m == 0 {
        return Ok(());
    }
    ACTIVATIONS.with(|cell| {
        let mut activations = cell.take();
        let row_tiles = m.div_ceil(2 * TILE_ROWS) * 2;
        pack_activations(input, m, k, row_tiles * TILE_ROWS, weight.padded_k(), &mut activations);
        match kernel() {
            // SAFETY: AMX is enabled for this process (checked by `available`), the activation
            // buffer holds row_tiles·16 rows of padded_k bf16 values, the weight holds its tiles.
            Bf16Kernel::AmxTiles => unsafe { tiles::multiply(output, accumulate, &activations, row_tiles, m, weight) },
            // SAFETY: the CPU has AVX-512 BF16 (checked by `kernel`); the activations hold m rows.
            Bf16Kernel::Avx512 => unsafe { vectors::multiply(output, accumulate, &activations, m, weight) },
            Bf16Kernel::Portable => portable_multiply(output, accumulate, &activations, m, weight),
        }
        cell.set(activations);
    });
    Ok(())
}

thread_local! {
    static ACTIVATIONS: std::cell::Cell<Vec<u16>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The activations in bf16, row-major with `padded_k` columns and `padded_rows` rows (zeros beyond).
fn pack_activations(input: &[f32], m: usize, k: usize, padded_rows: usize, padded_k: usize, out: &mut Vec<u16>) {
    out.clear();
    out.resize(padded_rows * padded_k, 0);
    for (row, packed) in input.chunks_exact(k).zip(out.chunks_exact_mut(padded_k)).take(m) {
        for (value, slot) in row.iter().zip(packed.iter_mut()) {
            *slot = to_bf16(*value);
        }
    }
}

fn store(output: &mut [f32], accumulate: bool, n: usize, row: usize, column: usize, value: f32) {
    let slot = &mut output[row * n + column];
    *slot = if accumulate { *slot + value } else { value };
}

/// The reference of the tile kernel: the same bf16 operands, products summed in f32.
fn portable_multiply(output: &mut [f32], accumulate: bool, activations: &[u16], m: usize, weight: &PackedBf16) {
    let padded_k = weight.padded_k();
    for row in 0..m {
        let a = &activations[row * padded_k..(row + 1) * padded_k];
        for column in 0..weight.n {
            let (column_tile, lane) = (column / TILE_N, column % TILE_N);
            let mut sum = 0.0f32;
            for k_tile in 0..weight.k_tiles {
                let tile = weight.tile(column_tile, k_tile);
                for step in 0..TILE_K {
                    let b = tile[(step / 2) * TILE_K + lane * 2 + step % 2];
                    sum += from_bf16(a[k_tile * TILE_K + step]) * from_bf16(b);
                }
            }
            store(output, accumulate, weight.n, row, column, sum);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod tiles {
    use std::arch::asm;

    use super::{PackedBf16, TILE_ELEMENTS, TILE_K, TILE_N, TILE_ROWS};

    /// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes (tmm0–3 accumulate
    /// a 32 × 32 f32 block, tmm4–5 hold two activation tiles, tmm6–7 two weight tiles).
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        column_bytes: [u16; 16],
        rows: [u8; 16],
    }

    const CONFIG: TileConfig = {
        let mut column_bytes = [0u16; 16];
        let mut rows = [0u8; 16];
        let mut tile = 0;
        while tile < 8 {
            column_bytes[tile] = 64;
            rows[tile] = TILE_ROWS as u8;
            tile += 1;
        }
        TileConfig { palette: 1, start_row: 0, reserved: [0; 14], column_bytes, rows }
    };

    /// # Safety
    /// AMX-TILE and AMX-BF16 must be usable by this thread (`super::available()`), `activations`
    /// must hold `row_tiles · 16` rows of `weight.padded_k()` bf16 values and `output` `m · n` floats.
    pub(super) unsafe fn multiply(
        output: &mut [f32],
        accumulate: bool,
        activations: &[u16],
        row_tiles: usize,
        m: usize,
        weight: &PackedBf16,
    ) {
        let padded_k = weight.padded_k();
        let activation_stride = padded_k * 2;
        let weight_stride = TILE_K * 2;
        let mut block = [0.0f32; 4 * TILE_ROWS * TILE_N];
        let block_stride = TILE_N * 4 * 2;
        // SAFETY: CONFIG is a valid palette-1 configuration, 64-byte aligned.
        unsafe { asm!("ldtilecfg [{0}]", in(reg) &CONFIG, options(nostack, readonly)) };
        // Weight blocks outermost: 32 columns × all of k stay in cache while every row block uses them.
        for column_tile in (0..weight.column_tiles).step_by(2) {
            for row_tile in (0..row_tiles).step_by(2) {
                // SAFETY: tile instructions on configured tiles; no memory is touched.
                unsafe {
                    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem))
                };
                for k_tile in 0..weight.k_tiles {
                    let a0 = activations[row_tile * TILE_ROWS * padded_k + k_tile * TILE_K..].as_ptr();
                    let a1 = activations[(row_tile + 1) * TILE_ROWS * padded_k + k_tile * TILE_K..].as_ptr();
                    let b0 = weight.data[(column_tile * weight.k_tiles + k_tile) * TILE_ELEMENTS..].as_ptr();
                    let b1 = weight.data[((column_tile + 1) * weight.k_tiles + k_tile) * TILE_ELEMENTS..].as_ptr();
                    // SAFETY: each load reads 16 rows of 64 bytes within the buffers (see above).
                    unsafe {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa} * 1]",
                            "tileloadd tmm5, [{a1} + {sa} * 1]",
                            "tileloadd tmm6, [{b0} + {sb} * 1]",
                            "tileloadd tmm7, [{b1} + {sb} * 1]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a0 = in(reg) a0,
                            a1 = in(reg) a1,
                            b0 = in(reg) b0,
                            b1 = in(reg) b1,
                            sa = in(reg) activation_stride,
                            sb = in(reg) weight_stride,
                            options(nostack, readonly),
                        )
                    };
                }
                let c = block.as_mut_ptr();
                // SAFETY: `block` holds 32 rows of 32 floats; each store writes 16 rows of 64 bytes.
                unsafe {
                    asm!(
                        "tilestored [{c00} + {s} * 1], tmm0",
                        "tilestored [{c01} + {s} * 1], tmm1",
                        "tilestored [{c10} + {s} * 1], tmm2",
                        "tilestored [{c11} + {s} * 1], tmm3",
                        c00 = in(reg) c,
                        c01 = in(reg) c.add(TILE_N),
                        c10 = in(reg) c.add(TILE_ROWS * 2 * TILE_N),
                        c11 = in(reg) c.add(TILE_ROWS * 2 * TILE_N + TILE_N),
                        s = in(reg) block_stride,
                        options(nostack),
                    )
                };
                let rows = (m - (row_tile * TILE_ROWS).min(m)).min(2 * TILE_ROWS);
                let columns = (weight.n - column_tile * TILE_N).min(2 * TILE_N);
                let first_column = column_tile * TILE_N;
                for r in 0..rows {
                    let row = row_tile * TILE_ROWS + r;
                    let target = &mut output[row * weight.n + first_column..][..columns];
                    let source = &block[r * 2 * TILE_N..][..columns];
                    if accumulate {
                        target.iter_mut().zip(source).for_each(|(t, s)| *t += s);
                    } else {
                        target.copy_from_slice(source);
                    }
                }
            }
        }
        // SAFETY: returns the tiles to their initial state (cheaper context switches).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

#[cfg(target_arch = "x86_64")]
mod vectors;

#[cfg(not(target_arch = "x86_64"))]
mod vectors {
    use super::PackedBf16;

    pub(super) fn available() -> bool {
        false
    }

    /// Never called: `available()` is false off x86_64.
    pub(super) unsafe fn multiply(
        output: &mut [f32],
        accumulate: bool,
        activations: &[u16],
        m: usize,
        weight: &PackedBf16,
    ) {
        super::portable_multiply(output, accumulate, activations, m, weight)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tiles {
    use super::PackedBf16;

    /// Never called: `available()` is false off x86_64.
    pub(super) unsafe fn multiply(
        output: &mut [f32],
        accumulate: bool,
        activations: &[u16],
        _row_tiles: usize,
        m: usize,
        weight: &PackedBf16,
    ) {
        super::portable_multiply(output, accumulate, activations, m, weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// The product of the bf16-rounded operands in f64: what both kernels approximate.
    fn reference(input: &[f32], weight: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let round = |x: f32| f64::from(from_bf16(to_bf16(x)));
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| round(input[i * k + p]) * round(weight[j * k + p])).sum();
            }
        }
        out
    }

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1.0).
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }

    /// Shapes off every tile boundary (rows, columns and k not multiples of 16/32), with and
    /// without accumulation; on an AMX machine this runs the tiles, elsewhere the portable loop.
    #[test]
    fn the_bf16_product_matches_the_rounded_operands_product() {
        eprintln!("AMX tiles on this machine: {}", available());
        for &(m, n, k) in &[(1, 16, 32), (37, 70, 100), (64, 96, 576), (5, 33, 31)] {
            let input = pseudo_random(m * k, 7 + m as u32);
            let weight = pseudo_random(n * k, 11 + n as u32);
            let packed = PackedBf16::pack(&weight, n, k).unwrap();
            let expected = reference(&input, &weight, m, n, k);
            let mut output = vec![0.0f32; m * n];
            matmul_transposed_bf16(&mut output, false, &input, &packed).unwrap();
            for (got, want) in output.iter().zip(&expected) {
                assert!((f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()), "{m}×{n}×{k}: {got} vs {want}");
            }
            let mut accumulated = vec![1.0f32; m * n];
            matmul_transposed_bf16(&mut accumulated, true, &input, &packed).unwrap();
            for (got, want) in accumulated.iter().zip(&expected) {
                assert!((f64::from(*got) - (want + 1.0)).abs() < 1e-4 * (2.0 + want.abs()));
            }
        }
    }

    /// The AVX-512 BF16 kernel called directly, whatever [`kernel`] picks here: row counts off its
    /// 12-row blocks, columns off its 32-column blocks, k off the 32-step tiles.
    #[test]
    fn the_vector_kernel_matches_the_rounded_operands_product() {
        if !vectors::available() {
            eprintln!("this CPU has no AVX-512 BF16: the vector kernel is not exercised here");
            return;
        }
        for &(m, n, k) in &[(1, 16, 32), (12, 32, 64), (13, 64, 96), (37, 70, 100), (25, 33, 31)] {
            let input = pseudo_random(m * k, 13 + m as u32);
            let weight = pseudo_random(n * k, 17 + n as u32);
            let packed = PackedBf16::pack(&weight, n, k).unwrap();
            let mut activations = Vec::new();
            pack_activations(&input, m, k, m, packed.padded_k(), &mut activations);
            let expected = reference(&input, &weight, m, n, k);
            for accumulate in [false, true] {
                let start = if accumulate { 1.0 } else { 0.0 };
                let mut output = vec![start; m * n];
                // SAFETY: the CPU has AVX-512 BF16 (checked above); the activations hold m rows.
                unsafe { vectors::multiply(&mut output, accumulate, &activations, m, &packed) };
                for (got, want) in output.iter().zip(&expected) {
                    let want = want + f64::from(start);
                    assert!((f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()), "{m}×{n}×{k}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn the_portable_loop_reads_the_packing_the_tiles_read() {
        let (m, n, k) = (3, 40, 70);
        let input = pseudo_random(m * k, 3);
        let weight = pseudo_random(n * k, 5);
        let packed = PackedBf16::pack(&weight, n, k).unwrap();
        let mut activations = Vec::new();
        pack_activations(&input, m, k, 32, packed.padded_k(), &mut activations);
        let mut output = vec![0.0f32; m * n];
        portable_multiply(&mut output, false, &activations, m, &packed);
        for (got, want) in output.iter().zip(reference(&input, &weight, m, n, k)) {
            assert!((f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()));
        }
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        assert!(PackedBf16::pack(&[0.0; 10], 3, 4).is_err());
        let packed = PackedBf16::pack(&[0.0; 12], 3, 4).unwrap();
        assert!(matmul_transposed_bf16(&mut [0.0; 5], false, &[0.0; 8], &packed).is_err());
    }
}
