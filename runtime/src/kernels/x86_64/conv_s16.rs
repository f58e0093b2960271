//! The int16-activation convolutions (TFLite's 16x8 scheme) on AVX2:
//! [`conv_s16_avx2`], [`conv_s16_s8_avx2`] and [`conv_s8_s16_avx2`], bit for
//! bit the reference kernels `conv_s16`, `conv_s16_s8` and `conv_s8_s16`.
//!
//! They run the int8 GEMM of module `conv`: a tile of output positions
//! gathered (im2col) as `i16` pairs, one `vpmaddwd` per pair of taps and 8
//! positions against a broadcast weight pair, in a register tile of
//! [`MR`] channels × 24 positions. What differs is the width of the sums.
//! A pair of `(x − zp) · w` terms is at most 2^23 in magnitude (`|x| ≤
//! 2^15`, `|w| ≤ 2^7`), so a chunk of [`KC_S16`] taps (255 pairs, below
//! 2^31) is exact in `i32`; each chunk's sums are added into `i64` totals
//! that start at the bias, and the reference's `requantize_to_lane` rounds
//! the totals. Every sum is exact, so the order of the additions does not
//! change the result.
//!
//! The int16 weights (16x16) run the same GEMM twice:
//! [`conv_s16_w16_avx2`], [`conv_s8_s16_w16_avx2`] and
//! [`conv_s16_s8_w16_avx2`]. One pair of their terms can reach 2^31, so each
//! weight is split as `w = 256·hi + lo`, `lo` its low byte sign-extended
//! (`[−128, 127]`) and `hi` in `[−128, 128]`: both parts are in the bound
//! above, the first pass adds `256 ×` its chunk sums into the totals and the
//! second its own, and the totals are the reference's exact `Σ x · w`.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::conv::{
    micro, pack_tile, widen_weight_rows, widen_weights, zeroed_prefix, GatherLane, Gemm, Operands,
    Scratch, WeightRows, KC_PAIRS, MR, OC_CHUNK, ROW_LEN, TILE, W_ROW,
};
use super::need_avx2;
use crate::kernels::reference::{self, conv_lanes_call_ok, requantize_to_lane, Lane};
use crate::kernels::select::LayerS16Fn;
use crate::kernels::tile::{tile_runs, Run};
use crate::kernels::weight_parts;
use crate::kernels::ConvParams;

/// Taps per reduction chunk: 255 pairs, each below 2^23 in magnitude, sum
/// to less than 2^31.
const KC_S16: usize = 510;
const _: () = assert!(KC_S16 / 2 <= KC_PAIRS && KC_S16.is_multiple_of(2));

/// [`reference::conv_s16`] (int16 input and output), bit for bit, on AVX2.
///
/// Same arguments, layout and preconditions; 1-D and 2-D, any stride,
/// dilation, padding and groups. Calls the reference kernel instead (which
/// returns early on a failed precondition) when AVX2 is missing or a
/// precondition fails.
pub fn conv_s16_avx2(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s16);
}

/// [`reference::conv_s16_s8`] (an int16 input, an int8 output), bit for
/// bit, on AVX2; the same fallback as [`conv_s16_avx2`].
pub fn conv_s16_s8_avx2(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s16_s8);
}

/// [`reference::conv_s8_s16`] (an int8 input less its zero point, an int16
/// output: the first layer of an int16 run), bit for bit, on AVX2; the same
/// fallback as [`conv_s16_avx2`].
pub fn conv_s8_s16_avx2(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s8_s16);
}

/// [`reference::conv_s16_w16`] (int16 weights, 16x16), bit for bit, on
/// AVX2; the same fallback as [`conv_s16_avx2`].
pub fn conv_s16_w16_avx2(
    p: &ConvParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s16_w16);
}

/// [`reference::conv_s16_s8_w16`], bit for bit, on AVX2; the same fallback
/// as [`conv_s16_avx2`].
pub fn conv_s16_s8_w16_avx2(
    p: &ConvParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s16_s8_w16);
}

/// [`reference::conv_s8_s16_w16`], bit for bit, on AVX2; the same fallback
/// as [`conv_s16_avx2`].
pub fn conv_s8_s16_w16_avx2(
    p: &ConvParams,
    input: &[i8],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    gemm_or_reference(p, input, weights, quant, output, reference::conv_s8_s16_w16);
}

/// How a weight type enters the GEMM: in how many parts, each widened into
/// `i16` rows of values in `[−128, 128]`, and by how many bits each part's
/// sums are shifted into the totals.
pub(super) trait GemmWeights: Copy + 'static {
    /// The shift of each part's sums, in the order the parts run.
    const SHIFTS: &'static [u32];

    /// [`widen_weights`] of part `part` of the rows `at`.
    ///
    /// # Safety
    ///
    /// The CPU runs AVX2.
    unsafe fn widen(weights: &[Self], at: WeightRows, wide: &mut [i16], part: usize);
}

impl GemmWeights for i8 {
    const SHIFTS: &'static [u32] = &[0];

    #[target_feature(enable = "avx2")]
    unsafe fn widen(weights: &[i8], at: WeightRows, wide: &mut [i16], _: usize) {
        let WeightRows {
            k,
            oc0,
            rows,
            k0,
            kc,
        } = at;
        widen_weights(weights, k, oc0, rows, k0, kc, wide);
    }
}

/// Part 0 is `hi`, part 1 `lo`, of `w = 256·hi + lo` (module docs).
impl GemmWeights for i16 {
    const SHIFTS: &'static [u32] = &[8, 0];

    #[target_feature(enable = "avx2")]
    unsafe fn widen(weights: &[i16], at: WeightRows, wide: &mut [i16], part: usize) {
        widen_weight_part(weights, at, wide, part == 0);
    }
}

/// [`widen_weights`] for int16 weights: their `hi` part (`high`) or their
/// `lo` part ([`weight_parts`]), 16 at a time.
#[target_feature(enable = "avx2")]
fn widen_weight_part(weights: &[i16], at: WeightRows, wide: &mut [i16], high: bool) {
    let sixteen = |s: &[i16]| {
        // SAFETY: 16 `i16` to load (the slice's length), unaligned; AVX2
        // runs here.
        unsafe {
            let w = _mm256_loadu_si256(s.as_ptr().cast());
            let lo = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(w));
            match high {
                true => _mm256_sub_epi16(_mm256_srai_epi16::<8>(w), _mm256_srai_epi16::<15>(lo)),
                false => lo,
            }
        }
    };
    let one = |w: i16| {
        let (hi, lo) = weight_parts(w);
        if high {
            hi
        } else {
            lo
        }
    };
    widen_weight_rows(weights, at, wide, sixteen, one);
}

/// `Ok` when the int16 AVX2 convolutions run `p` themselves: AVX2 is
/// available, the input zero point is in `i8` (0 for an int16 input, which
/// the preconditions require), the reduction is not empty, and each group
/// has at least 4 output channels. With fewer (depthwise), a gathered
/// tile would serve one channel, and the reference's tap-major loop, which
/// gathers nothing, is as fast (16x16 depthwise 3×3: 0.33 G MAC/s on the
/// GEMM against 0.37 on the reference).
pub fn conv_s16_avx2_takes(p: &ConvParams) -> Result<(), &'static str> {
    need_avx2()?;
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    if p.in_channels == 0 || p.kernel_h == 0 || p.kernel_w == 0 {
        return Err("empty reduction");
    }
    if p.groups == 0 || p.out_channels / p.groups < MR {
        return Err("fewer than 4 output channels per group");
    }
    Ok(())
}

/// Runs the GEMM when the kernel takes `p` and the reference's
/// preconditions hold, else `reference` (which returns early on a failed
/// precondition).
fn gemm_or_reference<X: Lane + GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    input: &[X],
    weights: &[W],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    reference: LayerS16Fn<ConvParams, X, Y, W>,
) {
    let quant = (bias, multiplier, shift);
    let ok = conv_s16_avx2_takes(p).is_ok()
        && conv_lanes_call_ok::<X, Y>(p, input.len(), weights.len(), quant, output.len());
    if !ok {
        reference(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    let ops = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    // SAFETY: `conv_s16_avx2_takes` checked that the CPU runs AVX2.
    unsafe { conv_gemm(p, &ops, output) };
}

/// The tiled GEMM, group by group. Preconditions hold; `output` is not empty.
#[target_feature(enable = "avx2")]
fn conv_gemm<X: Lane + GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    ops: &Operands<'_, X, W>,
    output: &mut [Y],
) {
    let g = Gemm::new(p);
    let mut packed_buf = MaybeUninit::<[i32; KC_PAIRS * TILE]>::uninit();
    let mut wide_buf = MaybeUninit::<[i16; MR * W_ROW]>::uninit();
    let mut totals = [0i64; OC_CHUNK * TILE];
    let mut s = Scratch {
        packed: zeroed_prefix(&mut packed_buf, g.k.min(KC_S16).div_ceil(2) * TILE),
        partial: &mut [],
        wide: zeroed_prefix(&mut wide_buf, MR * W_ROW),
        row_a: [0; ROW_LEN],
        row_b: [0; ROW_LEN],
    };
    let per_group = output.chunks_exact_mut(g.cout_g * g.out_plane).enumerate();
    for (grp, out_group) in per_group {
        let group_ops = g.group(ops, grp);
        let mut pos = 0;
        while pos < g.out_plane {
            let len = (g.out_plane - pos).min(TILE);
            let tile = Tile { pos, len };
            gemm_tile(p, &g, &group_ops, &mut s, &mut totals, tile, out_group);
            pos += len;
        }
    }
}

/// Output positions `pos..pos + len` of the plane.
#[derive(Clone, Copy)]
struct Tile {
    pos: usize,
    len: usize,
}

/// All output channels of one group for one tile, [`OC_CHUNK`] channels a
/// pass, their `i64` totals in `totals` (`[channel][position]`).
#[target_feature(enable = "avx2")]
fn gemm_tile<X: Lane + GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    g: &Gemm,
    ops: &Operands<'_, X, W>,
    s: &mut Scratch<'_>,
    totals: &mut [i64; OC_CHUNK * TILE],
    tile: Tile,
    out: &mut [Y],
) {
    let mut runs = [Run::default(); TILE];
    let n_runs = tile_runs(tile.pos, tile.len, p.out_w, &mut runs);
    let runs = runs.get(..n_runs).unwrap_or(&[]);
    let mut oc_start = 0;
    while oc_start < g.cout_g {
        let oc_end = (oc_start + OC_CHUNK).min(g.cout_g);
        for (row, oc) in totals.chunks_exact_mut(TILE).zip(oc_start..oc_end) {
            row.fill(ops.bias.get(oc).copied().unwrap_or(0).into());
        }
        let mut k0 = 0;
        while k0 < g.k {
            let kc = (g.k - k0).min(KC_S16);
            pack_tile(p, g, ops.input, runs, k0, kc, s);
            for oc0 in (oc_start..oc_end).step_by(MR) {
                let rows = (oc_end - oc0).min(MR);
                let at = (oc0 - oc_start) * TILE;
                let block = totals.get_mut(at..at + rows * TILE).unwrap_or(&mut []);
                let w_rows = WeightRows {
                    k: g.k,
                    oc0,
                    rows,
                    k0,
                    kc,
                };
                for (part, &by) in W::SHIFTS.iter().enumerate() {
                    // SAFETY: AVX2 runs here (this function's feature).
                    unsafe { W::widen(ops.weights, w_rows, s.wide, part) };
                    match tile.len.div_ceil(8) {
                        3 => add_block::<3>(s, kc, block, by),
                        2 => add_block::<2>(s, kc, block, by),
                        _ => add_block::<1>(s, kc, block, by),
                    }
                }
            }
            k0 += kc;
        }
        for (row, oc) in totals.chunks_exact(TILE).zip(oc_start..oc_end) {
            let m = ops.multiplier.get(oc).copied().unwrap_or(0);
            let sh = ops.shift.get(oc).map_or(0, |&v| i32::from(v));
            let at = oc * g.out_plane + tile.pos;
            let dst = out.get_mut(at..at + tile.len).unwrap_or(&mut []);
            for (y, &acc) in dst.iter_mut().zip(row) {
                *y = requantize_to_lane(acc, m, sh, p.output_zero_point, p.act_min, p.act_max);
            }
        }
        oc_start = oc_end;
    }
}

/// One register tile over one reduction chunk of `kc` taps: the `i32` sums
/// of the widened rows (at most `MR`; `block` holds a `TILE`-long row of
/// totals for each) by `8·N` positions, shifted left by `by` bits and added
/// into `block`.
#[target_feature(enable = "avx2")]
fn add_block<const N: usize>(s: &Scratch<'_>, kc: usize, block: &mut [i64], by: u32) {
    let zero = _mm256_setzero_si256();
    let acc = micro::<N>(s.packed, s.wide, kc.div_ceil(2), [[zero; N]; MR]);
    for (acc_r, totals) in acc.iter().zip(block.chunks_exact_mut(TILE)) {
        let mut sums = [0i32; TILE];
        for (v, &a) in acc_r.iter().enumerate() {
            if let Some(d) = sums.get_mut(8 * v..8 * v + 8) {
                // SAFETY: room for 8 `i32` (32 bytes); the store is unaligned.
                unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), a) };
            }
        }
        for (t, &v) in totals.iter_mut().zip(&sums) {
            // Wrapping only to stay total: 2^32 chunks would be needed.
            *t = t.wrapping_add(i64::from(v) << by);
        }
    }
}
