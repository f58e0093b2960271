//! The int16-activation convolutions (TFLite's 16x8 scheme) on NEON:
//! [`conv_s16_neon`], [`conv_s16_s8_neon`] and [`conv_s8_s16_neon`], and
//! their 16x16 forms (int16 weights) [`conv_s16_w16_neon`],
//! [`conv_s16_s8_w16_neon`] and [`conv_s8_s16_w16_neon`], bit for bit the
//! reference kernels of the same names.
//!
//! An im2col GEMM. A tile of [`TILE`] output positions of one group is
//! gathered as `i16` columns of `x − zp` (zero where a tap falls in the
//! padding), [`KC`] taps a chunk, and multiplied with [`MR`] output
//! channels' weight rows widened to `i16`: `smlal` by lane, 16 positions ×
//! 4 channels in 16 accumulators. A term is at most 2^22 in magnitude
//! (`|x − zp| ≤ 2^15`, `|w| ≤ 2^7`), so a chunk's sums are exact in `i32`.
//! They are added into `i64` totals that start at the bias, and the
//! reference's `requantize_to_lane` rounds the totals.
//!
//! Int16 weights are split as on x86-64: `w = 256·hi + lo`, `lo` the low
//! byte sign-extended (`[−128, 127]`) and `hi` in `[−128, 128]`. Both parts
//! are within the bound above, the GEMM runs once per part, and the `hi`
//! sums go into the totals shifted left by 8. Every sum is exact, so the
//! order of the additions does not change the result.
//!
//! A group with fewer than [`MR`] output channels (depthwise) is refused: a
//! gathered tile would serve one channel only, and the reference's
//! tap-major loop needs no gather.

use core::arch::aarch64::*;

use super::gemm::{mac_columns, TILE};
use super::requant::Requant;
use crate::kernels::reference::{self, conv_lanes_call_ok, requantize_to_lane, Lane};
use crate::kernels::select::LayerS16Fn;
use crate::kernels::tile::{tile_runs, Run};
use crate::kernels::weight_parts;
use crate::kernels::ConvParams;

/// Output channels per register block.
const MR: usize = 4;
/// Taps per reduction chunk, a multiple of 8: 504 terms below 2^22 in
/// magnitude sum to less than 2^31.
const KC: usize = 504;
const _: () = assert!(KC.is_multiple_of(8) && KC * (1 << 22) < (1 << 31));
/// Output channels whose `i64` totals one pass over a tile keeps.
const OC_CHUNK: usize = 64;

/// `Ok` when the int16 NEON convolutions run `p` themselves: the input
/// zero point is in `i8` (0 for an int16 input, which the preconditions
/// require), the reduction is not empty, and each group has at least 4
/// output channels.
pub fn conv_s16_neon_takes(p: &ConvParams) -> Result<(), &'static str> {
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

/// [`reference::conv_s16`] (int16 input and output), bit for bit, on NEON.
///
/// Same arguments, layout and preconditions; 1-D and 2-D, any stride,
/// dilation, padding and groups. Calls the reference kernel instead (which
/// returns early on a failed precondition) when [`conv_s16_neon_takes`]
/// refuses `p` or a precondition fails.
pub fn conv_s16_neon(
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
/// bit, on NEON; the same fallback as [`conv_s16_neon`].
pub fn conv_s16_s8_neon(
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
/// output), bit for bit, on NEON; the same fallback as [`conv_s16_neon`].
pub fn conv_s8_s16_neon(
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
/// NEON; the same fallback as [`conv_s16_neon`].
pub fn conv_s16_w16_neon(
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

/// [`reference::conv_s16_s8_w16`], bit for bit, on NEON; the same fallback
/// as [`conv_s16_neon`].
pub fn conv_s16_s8_w16_neon(
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

/// [`reference::conv_s8_s16_w16`], bit for bit, on NEON; the same fallback
/// as [`conv_s16_neon`].
pub fn conv_s8_s16_w16_neon(
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

/// How a weight type enters the GEMM: in how many parts, each a value in
/// `[−128, 128]`, and by how many bits each part's sums are shifted into
/// the totals.
pub(super) trait GemmWeights: Copy {
    /// The shift of each part's sums, in the order the parts run.
    const SHIFTS: &'static [u32];
    /// Part `part` of `self`.
    fn part(self, part: usize) -> i16;
}

impl GemmWeights for i8 {
    const SHIFTS: &'static [u32] = &[0];

    #[inline(always)]
    fn part(self, _: usize) -> i16 {
        i16::from(self)
    }
}

/// Part 0 is `hi`, part 1 `lo`, of `w = 256·hi + lo` ([`weight_parts`]).
impl GemmWeights for i16 {
    const SHIFTS: &'static [u32] = &[8, 0];

    #[inline(always)]
    fn part(self, part: usize) -> i16 {
        let (hi, lo) = weight_parts(self);
        if part == 0 {
            hi
        } else {
            lo
        }
    }
}

/// An input lane, read as `i16` `x − zp` (exact: an `i16` input has zero
/// point 0, an `i8` one a zero point in `i8`).
pub(super) trait GatherLane: Lane + Into<i32> {
    /// `dst[j] = src[j · stride] − zp` for the 16 positions of a tile.
    ///
    /// # Safety
    /// `src` holds at least `15 · stride + 1` elements.
    unsafe fn gather16(src: &[Self], stride: usize, zp: i32, dst: &mut [i16]);
}

impl GatherLane for i8 {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn gather16(src: &[i8], stride: usize, zp: i32, dst: &mut [i16]) {
        let Some(dst) = dst.get_mut(..TILE) else {
            return;
        };
        let x = src.as_ptr();
        let lanes = match stride {
            // SAFETY: 16 elements readable (stride 1).
            1 => unsafe { vld1q_s8(x) },
            // SAFETY: 32 elements readable (checked; `vld2q` reads 32).
            2 if src.len() >= 32 => unsafe { vld2q_s8(x).0 },
            _ => {
                let mut d = [0i16; TILE];
                for (j, d) in d.iter_mut().enumerate() {
                    if let Some(&v) = src.get(j * stride) {
                        *d = (i32::from(v) - zp) as i16;
                    }
                }
                dst.copy_from_slice(&d);
                return;
            }
        };
        let z = vdupq_n_s8(zp as i8);
        // SAFETY: `dst` is 16 writable `i16`.
        unsafe {
            vst1q_s16(
                dst.as_mut_ptr(),
                vsubl_s8(vget_low_s8(lanes), vget_low_s8(z)),
            );
            vst1q_s16(dst.as_mut_ptr().add(8), vsubl_high_s8(lanes, z));
        }
    }
}

impl GatherLane for i16 {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn gather16(src: &[i16], stride: usize, _zp: i32, dst: &mut [i16]) {
        // An `i16` input's zero point is 0 (the preconditions).
        let Some(dst) = dst.get_mut(..TILE) else {
            return;
        };
        let (x, y) = (src.as_ptr(), dst.as_mut_ptr());
        match stride {
            // SAFETY: 16 elements readable; `dst` is 16 writable `i16`.
            1 => unsafe {
                vst1q_s16(y, vld1q_s16(x));
                vst1q_s16(y.add(8), vld1q_s16(x.add(8)));
            },
            // SAFETY: 32 elements readable (checked); `dst` as above.
            2 if src.len() >= 32 => unsafe {
                vst1q_s16(y, vld2q_s16(x).0);
                vst1q_s16(y.add(8), vld2q_s16(x.add(16)).0);
            },
            _ => {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = src.get(j * stride).copied().unwrap_or(0);
                }
            }
        }
    }
}

/// Runs the GEMM when the kernel takes `p` and the reference's
/// preconditions hold, else `reference` (which returns early on a failed
/// precondition).
fn gemm_or_reference<X: GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    input: &[X],
    weights: &[W],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    reference: LayerS16Fn<ConvParams, X, Y, W>,
) {
    let quant = (bias, multiplier, shift);
    let ok = conv_s16_neon_takes(p).is_ok()
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
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { conv_gemm(p, &ops, output) };
}

/// The operands of a call, besides the output.
struct Operands<'a, X, W> {
    input: &'a [X],
    weights: &'a [W],
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

/// A group's shape: its channels, the reduction length and the planes.
struct Group {
    cin_g: usize,
    cout_g: usize,
    /// Taps per output: `cin_g · kh · kw`.
    k: usize,
    in_plane: usize,
    out_plane: usize,
}

/// Per-call buffers: the gathered columns (`[tap][position]`), one register
/// block's widened weight rows (`[row][tap]`), and the totals of a pass
/// (`[channel][position]`).
struct Scratch {
    columns: [i16; KC * TILE],
    rows: [i16; MR * KC],
    totals: [i64; OC_CHUNK * TILE],
}

/// The tiled GEMM, group by group. Preconditions hold; `output` is not empty.
#[target_feature(enable = "neon")]
fn conv_gemm<X: GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    ops: &Operands<'_, X, W>,
    output: &mut [Y],
) {
    let g = Group {
        cin_g: p.in_channels / p.groups,
        cout_g: p.out_channels / p.groups,
        k: p.in_channels / p.groups * p.kernel_h * p.kernel_w,
        in_plane: p.in_h * p.in_w,
        out_plane: p.out_h * p.out_w,
    };
    let mut s = Scratch {
        columns: [0; KC * TILE],
        rows: [0; MR * KC],
        totals: [0; OC_CHUNK * TILE],
    };
    let per_group = output.chunks_exact_mut(g.cout_g * g.out_plane).enumerate();
    for (grp, out_group) in per_group {
        let input = ops.input.get(grp * g.cin_g * g.in_plane..).unwrap_or(&[]);
        let oc_first = grp * g.cout_g;
        let mut pos = 0;
        while pos < g.out_plane {
            let len = (g.out_plane - pos).min(TILE);
            let mut runs = [Run::default(); TILE];
            let n_runs = tile_runs(pos, len, p.out_w, &mut runs);
            let runs = runs.get(..n_runs).unwrap_or(&[]);
            gemm_tile(
                p,
                &g,
                ops,
                input,
                oc_first,
                runs,
                (pos, len),
                &mut s,
                out_group,
            );
            pos += len;
        }
    }
}

/// All output channels of one group for the tile `(pos, len)`, [`OC_CHUNK`]
/// channels a pass.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
fn gemm_tile<X: GatherLane, Y: Lane, W: GemmWeights>(
    p: &ConvParams,
    g: &Group,
    ops: &Operands<'_, X, W>,
    input: &[X],
    oc_first: usize,
    runs: &[Run],
    (pos, len): (usize, usize),
    s: &mut Scratch,
    out: &mut [Y],
) {
    let mut oc_start = 0;
    while oc_start < g.cout_g {
        let oc_end = (oc_start + OC_CHUNK).min(g.cout_g);
        for (row, oc) in s.totals.chunks_exact_mut(TILE).zip(oc_start..oc_end) {
            row.fill(ops.bias.get(oc_first + oc).copied().unwrap_or(0).into());
        }
        let mut k0 = 0;
        while k0 < g.k {
            let kc = (g.k - k0).min(KC);
            gather(p, g, input, runs, k0, kc, &mut s.columns);
            let mut oc0 = oc_start;
            while oc0 < oc_end {
                let rows = (oc_end - oc0).min(MR);
                for (part, &by) in W::SHIFTS.iter().enumerate() {
                    let at = (oc_first + oc0) * g.k + k0;
                    widen_rows(ops.weights, g.k, at, rows, kc, part, &mut s.rows);
                    let block = (oc0 - oc_start) * TILE;
                    let totals = s.totals.get_mut(block..).unwrap_or(&mut []);
                    match rows {
                        MR => add_block::<MR>(&s.columns, &s.rows, kc, totals, by),
                        3 => add_block::<3>(&s.columns, &s.rows, kc, totals, by),
                        2 => add_block::<2>(&s.columns, &s.rows, kc, totals, by),
                        _ => add_block::<1>(&s.columns, &s.rows, kc, totals, by),
                    }
                }
                oc0 += rows;
            }
            k0 += kc;
        }
        for (row, oc) in s.totals.chunks_exact(TILE).zip(oc_start..oc_end) {
            let n = oc_first + oc;
            let m = ops.multiplier.get(n).copied().unwrap_or(0);
            let sh = ops.shift.get(n).copied().unwrap_or(0);
            let at = oc * g.out_plane + pos;
            let dst = out.get_mut(at..at + len).unwrap_or(&mut []);
            requantize_row(row, (m, sh), p, dst);
        }
        oc_start = oc_end;
    }
}

/// [`requantize_to_lane`] of a tile's totals for one channel into `dst`:
/// four lanes at a time ([`Requant`], which is `requantize`: equal to
/// `requantize_i64` on totals that fit `i32`) when every total fits, else
/// one at a time.
#[target_feature(enable = "neon")]
fn requantize_row<Y: Lane>(row: &[i64], (m, sh): (i32, i8), p: &ConvParams, dst: &mut [Y]) {
    let mut narrow = [0i32; TILE];
    let mut fits = row.len() == TILE;
    for (n, &t) in narrow.iter_mut().zip(row) {
        *n = t as i32;
        fits &= i64::from(*n) == t;
    }
    if !fits {
        let (zp, lo, hi) = (p.output_zero_point, p.act_min, p.act_max);
        for (y, &acc) in dst.iter_mut().zip(row) {
            *y = requantize_to_lane(acc, m, i32::from(sh), zp, lo, hi);
        }
        return;
    }
    let rq = Requant::splat(m, sh);
    let zp = vdupq_n_s32(p.output_zero_point);
    let (lo, hi) = (vdupq_n_s32(p.act_min), vdupq_n_s32(p.act_max));
    let mut y = [0i32; TILE];
    for (src, out) in narrow.chunks_exact(4).zip(y.chunks_exact_mut(4)) {
        // SAFETY: `src` and `out` are four `i32` each.
        unsafe {
            let v = rq.apply(vld1q_s32(src.as_ptr()));
            let v = vminq_s32(vmaxq_s32(vqaddq_s32(v, zp), lo), hi);
            vst1q_s32(out.as_mut_ptr(), v);
        }
    }
    for (d, &v) in dst.iter_mut().zip(&y) {
        *d = Y::from_clamped(v);
    }
}

/// Gathers taps `k0..k0 + kc` of the tile into `columns` (`[tap][position]`,
/// `x − zp`, zero in the padding and past the tile's positions), and zeroes
/// the taps up to the next multiple of 8.
#[target_feature(enable = "neon")]
fn gather<X: GatherLane>(
    p: &ConvParams,
    g: &Group,
    input: &[X],
    runs: &[Run],
    k0: usize,
    kc: usize,
    columns: &mut [i16; KC * TILE],
) {
    let zp = p.input_zero_point;
    let taps = p.kernel_h * p.kernel_w;
    let padded = kc.next_multiple_of(8);
    let cols = columns.chunks_exact_mut(TILE).take(padded).enumerate();
    for (t, col) in cols {
        col.fill(0);
        if t >= kc {
            continue;
        }
        let tap = k0 + t;
        let (ic, r) = (tap / taps, tap % taps);
        let (ky, kx) = (r / p.kernel_w, r % p.kernel_w);
        let plane = input.get(ic * g.in_plane..).unwrap_or(&[]);
        for run in runs {
            let iy = (run.oy * p.stride_h + ky * p.dilation_h).wrapping_sub(p.pad_top);
            if iy >= p.in_h {
                continue;
            }
            let row = plane.get(iy * p.in_w..(iy + 1) * p.in_w).unwrap_or(&[]);
            let dst = col.get_mut(run.at..run.at + run.len).unwrap_or(&mut []);
            // Input column of the run's first position, plus `pad_left`:
            // position `j` reads `x0 + j·stride − pad_left`, inside the row
            // for `j` in `first..end` (the rest stays 0).
            let (s, pad) = (p.stride_w, p.pad_left);
            let x0 = run.ox * s + kx * p.dilation_w;
            let first = pad.saturating_sub(x0).div_ceil(s);
            let end = (p.in_w + pad).saturating_sub(x0).div_ceil(s).min(run.len);
            let Some(src) = row.get((x0 + first * s).wrapping_sub(pad)..) else {
                continue;
            };
            if first == 0 && end == TILE {
                // SAFETY: position 15 is inside the row (`end`), so `src`
                // holds `15 · s + 1` elements.
                unsafe { X::gather16(src, s, zp, dst) };
                continue;
            }
            let Some(dst) = dst.get_mut(first..end) else {
                continue;
            };
            let widen = |(d, &x): (&mut i16, &X)| *d = (Into::<i32>::into(x) - zp) as i16;
            if s == 1 {
                dst.iter_mut().zip(src).for_each(widen);
            } else {
                dst.iter_mut().zip(src.iter().step_by(s)).for_each(widen);
            }
        }
    }
}

/// Part `part` of `n` weight rows from flat index `at` (rows `k` apart),
/// taps `0..kc` of each, into `rows` (`[row][tap]`, [`KC`] apart), zero up
/// to the next multiple of 8.
fn widen_rows<W: GemmWeights>(
    weights: &[W],
    k: usize,
    at: usize,
    n: usize,
    kc: usize,
    part: usize,
    rows: &mut [i16; MR * KC],
) {
    for (r, dst) in rows.chunks_exact_mut(KC).take(n).enumerate() {
        let src = weights.get(at + r * k..at + r * k + kc).unwrap_or(&[]);
        let (head, tail) = dst.split_at_mut(kc.min(KC));
        for (d, &w) in head.iter_mut().zip(src) {
            *d = w.part(part);
        }
        let pad = kc.next_multiple_of(8) - kc;
        tail.iter_mut().take(pad).for_each(|d| *d = 0);
    }
}

/// One register block over a chunk of `kc` taps: the `i32` sums of `M`
/// widened rows by the tile's positions, shifted left by `by` bits and
/// added into `totals` (a [`TILE`]-long row per channel).
#[target_feature(enable = "neon")]
fn add_block<const M: usize>(
    columns: &[i16; KC * TILE],
    rows: &[i16; MR * KC],
    kc: usize,
    totals: &mut [i64],
    by: u32,
) {
    let steps = kc.div_ceil(8).min(KC / 8);
    // SAFETY: `steps · 8 <= KC` taps are read from each of `M <= MR` rows
    // (`KC` apart) and from the columns (`TILE` per tap), inside the arrays.
    let acc = unsafe { micro::<M>(columns.as_ptr(), rows.as_ptr(), steps) };
    for (acc_r, totals) in acc.iter().zip(totals.chunks_exact_mut(TILE)) {
        let mut sums = [0i32; TILE];
        for (v, a) in sums.chunks_exact_mut(4).zip(acc_r) {
            // SAFETY: `v` is 4 writable `i32`.
            unsafe { vst1q_s32(v.as_mut_ptr(), *a) };
        }
        for (t, &v) in totals.iter_mut().zip(&sums) {
            // Wrapping only to stay total: 2^32 chunks would be needed.
            *t = t.wrapping_add(i64::from(v) << by);
        }
    }
}

/// `Σ_k column[k][q] · rows[m][k]` over `8 · steps` taps, for the tile's 16
/// positions `q` (four vectors) and `M` rows, in `i32`.
///
/// # Safety
/// `columns` is readable for `8 · steps · TILE` `i16`, and `rows` for `M`
/// rows of `8 · steps` `i16` each, [`KC`] apart.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn micro<const M: usize>(
    columns: *const i16,
    rows: *const i16,
    steps: usize,
) -> [[int32x4_t; 4]; M] {
    let mut acc = [[vdupq_n_s32(0); 4]; M];
    for step in 0..steps {
        let mut w = [vdupq_n_s16(0); M];
        for (m, w) in w.iter_mut().enumerate() {
            // SAFETY: taps `8·step..8·step + 8` of row `m` (caller).
            *w = unsafe { vld1q_s16(rows.add(m * KC + 8 * step)) };
        }
        let col = columns.wrapping_add(8 * step * TILE);
        // SAFETY: taps `8·step..8·step + 8` of the columns (caller).
        acc = unsafe { mac_columns::<M, 8>(col, w, acc) };
    }
    acc
}
