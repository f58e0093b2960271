//! The convolution entry point, and its general fallback: a tiled im2col
//! GEMM, `C[oc, pos] = Σ_k W[oc, k] · X[k, pos]` with `k = (ic, ky, kx)` in
//! the weight layout and `pos` the flattened output plane.
//!
//! Most convolutions take the sliding path ([`depthwise`](super::depthwise),
//! one input channel per group) or the direct path ([`direct`](super::direct));
//! the GEMM runs what neither fits: reductions of more than 640
//! channel-pair taps, or input rows too long for the direct path's band.
//! There a tile of [`TILE`] output positions is gathered (im2col) into a
//! buffer of `i16` pairs, `x − zp` for taps `2j` and `2j + 1` side by side,
//! so that one `vpmaddwd` of 8 positions' pairs with a broadcast weight pair
//! adds two taps to 8 accumulators. The weight rows are widened [`MR`] at a
//! time from the file's `[C_out, C_in/groups·kH·kW]` layout; a register
//! tile of `MR` channels × 24 positions then shares every load. Reductions
//! longer than [`KC`] taps run in chunks, the partial sums parked in a
//! buffer.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::depthwise::{sliding_conv, SlidingPlan};
use super::direct::{DirectRun, PairsI16};
use super::need_avx2;
use super::requant::{pack16, Requant};
use crate::kernels::reference::{self, act_ok, axis_ok};
use crate::kernels::tile::{tile_runs, Run};
use crate::kernels::ConvParams;

/// Output channels per register tile.
pub(super) const MR: usize = 4;
/// Vectors of 8 positions per register tile.
const NR: usize = 3;
/// Output positions per tile.
pub(super) const TILE: usize = 8 * NR;
/// Taps per reduction chunk (even).
const KC: usize = 512;
pub(super) const KC_PAIRS: usize = KC / 2;
/// Output channels per pass when the reduction is chunked (their partial
/// sums wait in a buffer between chunks).
pub(super) const OC_CHUNK: usize = 64;
/// A gathered tap row: the tile plus room for a 16-lane store at its end.
pub(super) const ROW_LEN: usize = TILE + 16;
/// A widened weight row chunk, with the same room.
pub(super) const W_ROW: usize = KC + 16;

/// Stack taken by [`conv_s8_avx2`]'s buffers (the sliding path's are smaller).
pub(super) const SCRATCH_BYTES: usize =
    KC_PAIRS * TILE * 4 + OC_CHUNK * TILE * 4 + MR * W_ROW * 2 + 2 * ROW_LEN * 2;

/// [`reference::conv_s8`], bit for bit, on AVX2.
///
/// Same arguments, layout and preconditions; 1-D and 2-D, any stride,
/// dilation, padding and groups. One input channel per group (a
/// single-channel input such as an ECG lead, or depthwise) runs on the
/// sliding path of [`depthwise_conv_s8_avx2`](super::depthwise_conv_s8_avx2)
/// when its plan fits; other shapes on the direct path (input channels
/// paired in a widened band, no im2col) when the reduction has at most 640
/// channel-pair taps and one output row's band fits 32 KiB, or (one group)
/// in tiles of the output plane whose bands do; the rest as the tiled GEMM
/// of the module docs, one group at a time.
///
/// Calls the reference kernel instead (which returns early on a failed
/// precondition) when AVX2 is missing, a precondition fails, or
/// [`conv_avx2_takes`] refuses the shape.
pub fn conv_s8_avx2(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let ops = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    if conv_avx2_takes(p).is_err() || !conv_args_ok(p, &ops, output) || output.is_empty() {
        reference::conv_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    if p.in_channels / p.groups == 1 {
        if let Some(plan) = SlidingPlan::new(p) {
            // SAFETY: `conv_avx2_takes` checked that the CPU runs AVX2.
            unsafe { sliding_conv(p, &plan, &ops, output) };
            return;
        }
    }
    if let Some(run) = DirectRun::new::<PairsI16>(p) {
        // SAFETY: as above (AVX2 is all that `PairsI16` needs).
        unsafe { run.run::<PairsI16>(p, &ops, output) };
        return;
    }
    // SAFETY: as above.
    unsafe { conv_gemm(p, &ops, output) };
}

/// `Ok` when [`conv_s8_avx2`] runs `p` itself: AVX2 is available, the
/// input zero point is in `i8` (so `x − zp` fits `i16`), and the reduction
/// `C_in/groups · kH · kW` is not empty.
pub fn conv_avx2_takes(p: &ConvParams) -> Result<(), &'static str> {
    need_avx2()?;
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    if p.groups == 0 || !p.in_channels.is_multiple_of(p.groups) {
        return Err("groups do not divide the input channels");
    }
    if p.in_channels == 0 || p.kernel_h == 0 || p.kernel_w == 0 {
        return Err("empty reduction");
    }
    Ok(())
}

/// The read-only operands of a convolution.
#[derive(Clone, Copy)]
pub(super) struct Operands<'a, X = i8, W = i8> {
    pub input: &'a [X],
    pub weights: &'a [W],
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i8],
}

/// The reference kernel's preconditions (so both refuse alike).
pub(super) fn conv_args_ok(p: &ConvParams, ops: &Operands<'_>, output: &[i8]) -> bool {
    let groups_ok = p.groups != 0
        && p.in_channels.is_multiple_of(p.groups)
        && p.out_channels.is_multiple_of(p.groups);
    if !groups_ok
        || !act_ok(p.act_min, p.act_max)
        || !axis_ok(
            p.out_h,
            p.stride_h,
            p.kernel_h,
            p.dilation_h,
            p.pad_top,
            p.in_h,
        )
        || !axis_ok(
            p.out_w,
            p.stride_w,
            p.kernel_w,
            p.dilation_w,
            p.pad_left,
            p.in_w,
        )
    {
        return false;
    }
    let cin_g = p.in_channels / p.groups;
    let mul3 = |a: usize, b: usize, c: usize| a.checked_mul(b)?.checked_mul(c);
    let lens = (
        mul3(p.in_channels, p.in_h, p.in_w),
        mul3(p.out_channels, cin_g, p.kernel_h).and_then(|n| n.checked_mul(p.kernel_w)),
        mul3(p.out_channels, p.out_h, p.out_w),
    );
    lens == (
        Some(ops.input.len()),
        Some(ops.weights.len()),
        Some(output.len()),
    ) && ops.bias.len() == p.out_channels
        && ops.multiplier.len() == p.out_channels
        && ops.shift.len() == p.out_channels
}

/// Sizes of one group's GEMM.
pub(super) struct Gemm {
    pub cin_g: usize,
    pub cout_g: usize,
    pub in_plane: usize,
    pub out_plane: usize,
    /// Reduction length `cin_g · kH · kW`.
    pub k: usize,
    pub zp: i32,
}

impl Gemm {
    pub(super) fn new(p: &ConvParams) -> Gemm {
        let cin_g = p.in_channels / p.groups.max(1);
        Gemm {
            cin_g,
            cout_g: p.out_channels / p.groups.max(1),
            in_plane: p.in_h * p.in_w,
            out_plane: p.out_h * p.out_w,
            k: cin_g * p.kernel_h * p.kernel_w,
            zp: p.input_zero_point,
        }
    }

    /// The operands of group `grp`: its input channels, and its output
    /// channels' weights and quantization.
    pub(super) fn group<'a, X, W>(
        &self,
        ops: &Operands<'a, X, W>,
        grp: usize,
    ) -> Operands<'a, X, W> {
        let oc = grp * self.cout_g..(grp + 1) * self.cout_g;
        Operands {
            input: ops
                .input
                .get(grp * self.cin_g * self.in_plane..)
                .unwrap_or(&[]),
            weights: ops.weights.get(oc.start * self.k..).unwrap_or(&[]),
            bias: ops.bias.get(oc.clone()).unwrap_or(&[]),
            multiplier: ops.multiplier.get(oc.clone()).unwrap_or(&[]),
            shift: ops.shift.get(oc).unwrap_or(&[]),
        }
    }
}

/// The scratch buffers of one call.
pub(super) struct Scratch<'a> {
    /// `[pair j][position]` → `(x[2j] − zp) | (x[2j+1] − zp) << 16`.
    pub packed: &'a mut [i32],
    /// Partial sums between reduction chunks, `[channel][position]`.
    pub partial: &'a mut [i32],
    /// `MR` widened weight rows of `W_ROW` lanes.
    pub wide: &'a mut [i16],
    pub row_a: [i16; ROW_LEN],
    pub row_b: [i16; ROW_LEN],
}

/// The tiled GEMM, group by group. Preconditions hold; `output` is not empty.
#[target_feature(enable = "avx2")]
fn conv_gemm(p: &ConvParams, ops: &Operands<'_>, output: &mut [i8]) {
    let g = Gemm::new(p);
    let chunks = g.k.div_ceil(KC);
    let mut packed_buf = MaybeUninit::<[i32; KC_PAIRS * TILE]>::uninit();
    let mut partial_buf = MaybeUninit::<[i32; OC_CHUNK * TILE]>::uninit();
    let mut wide_buf = MaybeUninit::<[i16; MR * W_ROW]>::uninit();
    let pairs = g.k.min(KC).div_ceil(2);
    let mut s = Scratch {
        packed: zeroed_prefix(&mut packed_buf, pairs * TILE),
        partial: zeroed_prefix(
            &mut partial_buf,
            if chunks > 1 { OC_CHUNK * TILE } else { 0 },
        ),
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
            gemm_tile(p, &g, &group_ops, &mut s, pos, len, out_group);
            pos += len;
        }
    }
}

/// All output channels of one group for positions `pos..pos + len`.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gemm_tile(
    p: &ConvParams,
    g: &Gemm,
    ops: &Operands<'_>,
    s: &mut Scratch<'_>,
    pos: usize,
    len: usize,
    out: &mut [i8],
) {
    let mut runs = [Run::default(); TILE];
    let n_runs = tile_runs(pos, len, p.out_w, &mut runs);
    let runs = runs.get(..n_runs).unwrap_or(&[]);
    let chunks = g.k.div_ceil(KC);
    let oc_step = if chunks > 1 { OC_CHUNK } else { g.cout_g };
    let mut oc_start = 0;
    while oc_start < g.cout_g {
        let oc_end = (oc_start + oc_step).min(g.cout_g);
        for chunk in 0..chunks {
            let k0 = chunk * KC;
            let kc = (g.k - k0).min(KC);
            pack_tile(p, g, ops.input, runs, k0, kc, s);
            let stage = Stage {
                kc,
                first: chunk == 0,
                last: chunk + 1 == chunks,
                oc_start,
                pos,
                len,
            };
            for oc0 in (oc_start..oc_end).step_by(MR) {
                let rows = (oc_end - oc0).min(MR);
                widen_weights(ops.weights, g.k, oc0, rows, k0, kc, s.wide);
                match len.div_ceil(8) {
                    3 => block::<3>(p, g, ops, s, &stage, oc0, rows, out),
                    2 => block::<2>(p, g, ops, s, &stage, oc0, rows, out),
                    _ => block::<1>(p, g, ops, s, &stage, oc0, rows, out),
                }
            }
        }
        oc_start = oc_end;
    }
}

/// Where a block is in the chunked reduction.
struct Stage {
    kc: usize,
    first: bool,
    last: bool,
    /// First channel of the current pass (its partial sums start the buffer).
    oc_start: usize,
    pos: usize,
    len: usize,
}

/// One register tile: channels `oc0..oc0 + rows` (`rows ≤ MR`; the widened
/// rows past it are 0) by `8·N` positions, over one reduction chunk.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn block<const N: usize>(
    p: &ConvParams,
    g: &Gemm,
    ops: &Operands<'_>,
    s: &mut Scratch<'_>,
    st: &Stage,
    oc0: usize,
    rows: usize,
    out: &mut [i8],
) {
    let zero = _mm256_setzero_si256();
    let mut acc = [[zero; N]; MR];
    let parked = (oc0 - st.oc_start) * TILE;
    for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
        if st.first {
            let b = ops.bias.get(oc0 + r).copied().unwrap_or(0);
            *acc_r = [_mm256_set1_epi32(b); N];
        } else {
            let at = parked + r * TILE;
            for (v, a) in acc_r.iter_mut().enumerate() {
                *a = load_i32x8(s.partial, at + 8 * v);
            }
        }
    }
    let acc = micro::<N>(s.packed, s.wide, st.kc.div_ceil(2), acc);
    if !st.last {
        for (r, acc_r) in acc.iter().enumerate().take(rows) {
            let at = parked + r * TILE;
            for (v, &a) in acc_r.iter().enumerate() {
                store_i32x8(s.partial, at + 8 * v, a);
            }
        }
        return;
    }
    let lo = _mm_set1_epi8(p.act_min as i8);
    let hi = _mm_set1_epi8(p.act_max as i8);
    for (r, acc_r) in acc.iter().enumerate().take(rows) {
        let oc = oc0 + r;
        let m = ops.multiplier.get(oc).copied().unwrap_or(0);
        let sh = ops.shift.get(oc).map_or(0, |&v| i32::from(v));
        let rq = Requant::splat(m, sh, p.output_zero_point);
        let mut bytes = [0i8; 32];
        let mut y = [_mm256_setzero_si256(); N];
        for (o, &a) in y.iter_mut().zip(acc_r) {
            *o = rq.apply(a);
        }
        let first = pack16(y[0], y[N.min(2) - 1], lo, hi);
        store_i8x16(&mut bytes, 0, first);
        if N == 3 {
            store_i8x16(&mut bytes, 16, pack16(y[2], y[2], lo, hi));
        }
        let at = oc * g.out_plane + st.pos;
        if let Some(dst) = out.get_mut(at..at + st.len) {
            dst.copy_from_slice(bytes.get(..st.len).unwrap_or(&[]));
        }
    }
}

/// `acc[r][v] += Σ_j madd(packed[j][8v..8v+8], (wide[r][2j], wide[r][2j+1]))`
/// over `pairs` pairs.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn micro<const N: usize>(
    packed: &[i32],
    wide: &[i16],
    pairs: usize,
    mut acc: [[__m256i; N]; MR],
) -> [[__m256i; N]; MR] {
    if packed.len() < pairs * TILE || wide.len() < (MR - 1) * W_ROW + 2 * pairs || N * 8 > TILE {
        return acc;
    }
    let x = packed.as_ptr();
    let w = wide.as_ptr();
    for j in 0..pairs {
        let mut xs = [_mm256_setzero_si256(); N];
        for (v, xv) in xs.iter_mut().enumerate() {
            // SAFETY: `j·TILE + 8v + 8 ≤ pairs·TILE ≤ packed.len()` (checked
            // above, `8·N ≤ TILE`); unaligned loads are allowed.
            *xv = unsafe { _mm256_loadu_si256(x.add(j * TILE + 8 * v).cast()) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: `r·W_ROW + 2j + 2 ≤ (MR−1)·W_ROW + 2·pairs ≤ wide.len()`.
            let pair = unsafe { w.add(r * W_ROW + 2 * j).cast::<i32>().read_unaligned() };
            let b = _mm256_set1_epi32(pair);
            for (a, &xv) in acc_r.iter_mut().zip(&xs) {
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, b));
            }
        }
    }
    acc
}

/// Gathers taps `k0..k0 + kc` of the tile into `s.packed` as pairs.
#[target_feature(enable = "avx2")]
pub(super) fn pack_tile<X: GatherLane>(
    p: &ConvParams,
    g: &Gemm,
    input: &[X],
    runs: &[Run],
    k0: usize,
    kc: usize,
    s: &mut Scratch<'_>,
) {
    let mut tap = Tap::at(p, k0);
    for j in 0..kc.div_ceil(2) {
        fill_tap_row(p, g, input, runs, tap, &mut s.row_a);
        tap = tap.next(p);
        if 2 * j + 1 < kc {
            fill_tap_row(p, g, input, runs, tap, &mut s.row_b);
            tap = tap.next(p);
        } else {
            s.row_b = [0; ROW_LEN];
        }
        let Some(dst) = s.packed.get_mut(j * TILE..(j + 1) * TILE) else {
            return;
        };
        interleave(&s.row_a, &s.row_b, dst);
    }
}

/// `dst[p] = a[p] | b[p] << 16` for the `TILE` positions.
#[target_feature(enable = "avx2")]
#[inline]
fn interleave(a: &[i16; ROW_LEN], b: &[i16; ROW_LEN], dst: &mut [i32]) {
    for c in 0..TILE / 8 {
        let (Some(a8), Some(b8)) = (a.get(8 * c..8 * c + 8), b.get(8 * c..8 * c + 8)) else {
            return;
        };
        let Some(d8) = dst.get_mut(8 * c..8 * c + 8) else {
            return;
        };
        // SAFETY: `a8`, `b8` hold 8 `i16` (16 bytes) and `d8` 8 `i32` (32
        // bytes); the loads and stores are unaligned.
        unsafe {
            let va = _mm_loadu_si128(a8.as_ptr().cast());
            let vb = _mm_loadu_si128(b8.as_ptr().cast());
            _mm_storeu_si128(d8.as_mut_ptr().cast(), _mm_unpacklo_epi16(va, vb));
            _mm_storeu_si128(d8.as_mut_ptr().add(4).cast(), _mm_unpackhi_epi16(va, vb));
        }
    }
}

/// A reduction index as `(ic, ky, kx)`.
#[derive(Clone, Copy)]
struct Tap {
    ic: usize,
    ky: usize,
    kx: usize,
}

impl Tap {
    fn at(p: &ConvParams, k: usize) -> Tap {
        let plane = p.kernel_h * p.kernel_w;
        Tap {
            ic: k / plane,
            ky: (k % plane) / p.kernel_w,
            kx: k % p.kernel_w,
        }
    }

    fn next(self, p: &ConvParams) -> Tap {
        let mut t = self;
        t.kx += 1;
        if t.kx == p.kernel_w {
            t.kx = 0;
            t.ky += 1;
            if t.ky == p.kernel_h {
                t.ky = 0;
                t.ic += 1;
            }
        }
        t
    }
}

/// `row[at + i] = x[ic, iy, ix] − zp` (0 in the padding) for tap `t` at
/// every position of every run.
#[target_feature(enable = "avx2")]
fn fill_tap_row<X: GatherLane>(
    p: &ConvParams,
    g: &Gemm,
    input: &[X],
    runs: &[Run],
    t: Tap,
    row: &mut [i16; ROW_LEN],
) {
    for run in runs {
        let iy_padded = run.oy * p.stride_h + t.ky * p.dilation_h;
        let Some(dst) = row.get_mut(run.at..run.at + run.len) else {
            return;
        };
        if iy_padded < p.pad_top || iy_padded - p.pad_top >= p.in_h {
            dst.fill(0);
            continue;
        }
        let (a, b) = valid_span(p, t.kx * p.dilation_w, run.ox, run.len);
        dst.get_mut(..a).unwrap_or(&mut []).fill(0);
        if a < b {
            // Input column of position `run.ox + a`.
            let ix = (run.ox + a) * p.stride_w + t.kx * p.dilation_w - p.pad_left;
            let start = t.ic * g.in_plane + (iy_padded - p.pad_top) * p.in_w + ix;
            let src = input.get(start..).unwrap_or(&[]);
            // SAFETY: this function runs only where AVX2 is (its own
            // `target_feature`, which its callers checked).
            unsafe { X::widen_run(src, p.stride_w, g.zp, row, run.at + a, b - a) };
        }
        // After the widening, which may have written past `b`.
        let tail = row.get_mut(run.at + b..run.at + run.len).unwrap_or(&mut []);
        tail.fill(0);
    }
}

/// The positions `a..b` of `ox0..ox0 + len` (relative to `ox0`) whose tap at
/// padded offset `off` (`kx · dilation`) lands inside the input row.
fn valid_span(p: &ConvParams, off: usize, ox0: usize, len: usize) -> (usize, usize) {
    let s = p.stride_w;
    // First output whose tap is at or after the left pad: ox·s + off ≥ pad;
    // first output whose tap is past the input: ox·s + off ≥ pad + in_w.
    // (Stride 1, the common case, without a division.)
    let before = p.pad_left.saturating_sub(off);
    let past = (p.pad_left + p.in_w).saturating_sub(off);
    let (lo, hi) = if s == 1 {
        (before, past)
    } else {
        (before.div_ceil(s), past.div_ceil(s))
    };
    let a = lo.clamp(ox0, ox0 + len) - ox0;
    let b = hi.clamp(ox0, ox0 + len) - ox0;
    (a, b.max(a))
}

/// An input lane the GEMM gathers as `i16` `x − zp`: `i8`, less a zero
/// point that `conv_avx2_takes` holds in `i8`, or `i16` (zero point 0), so
/// the difference fits `i16` either way.
pub(super) trait GatherLane: Copy + Into<i32> {
    /// `row[at + i] = src[i · stride] − zp` for `i < n`; lanes past `at + n`
    /// may be written too (the later runs or the tile's end overwrite or
    /// ignore them).
    ///
    /// # Safety
    /// The CPU runs AVX2.
    unsafe fn widen_run(
        src: &[Self],
        stride: usize,
        zp: i32,
        row: &mut [i16; ROW_LEN],
        at: usize,
        n: usize,
    );
}

impl GatherLane for i8 {
    /// 16 at a time when the stride is 1 and the bytes are there.
    #[target_feature(enable = "avx2")]
    unsafe fn widen_run(
        src: &[i8],
        stride: usize,
        zp: i32,
        row: &mut [i16; ROW_LEN],
        at: usize,
        n: usize,
    ) {
        let mut i = 0;
        if stride == 1 {
            let zp16 = _mm256_set1_epi16(zp as i16);
            while i < n {
                let (Some(s16), Some(d16)) = (src.get(i..i + 16), row.get_mut(at + i..at + i + 16))
                else {
                    break;
                };
                // SAFETY: `s16` has 16 bytes to load, `d16` 16 `i16` to store.
                unsafe {
                    let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(s16.as_ptr().cast()));
                    _mm256_storeu_si256(d16.as_mut_ptr().cast(), _mm256_sub_epi16(v, zp16));
                }
                i += 16;
            }
        }
        let dst = row.get_mut(at..at + n).unwrap_or(&mut []);
        for (j, d) in dst.iter_mut().enumerate().skip(i) {
            let x = src.get(j * stride).copied().unwrap_or(0);
            *d = (i32::from(x) - zp) as i16;
        }
    }
}

impl GatherLane for i16 {
    /// A copy (the zero point is 0), which the compiler vectorizes when the
    /// stride is 1.
    #[target_feature(enable = "avx2")]
    unsafe fn widen_run(
        src: &[i16],
        stride: usize,
        zp: i32,
        row: &mut [i16; ROW_LEN],
        at: usize,
        n: usize,
    ) {
        let dst = row.get_mut(at..at + n).unwrap_or(&mut []);
        let widen = |x: i16| (i32::from(x) - zp) as i16;
        if stride == 1 {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = widen(x);
            }
        } else {
            for (d, &x) in dst.iter_mut().zip(src.iter().step_by(stride)) {
                *d = widen(x);
            }
        }
    }
}

/// Widens weight rows `oc0..oc0 + rows` (of `k` taps), taps `k0..k0 + kc`,
/// into the `MR` rows of `wide`; missing rows and the odd lane past `kc`
/// are 0.
#[target_feature(enable = "avx2")]
pub(super) fn widen_weights(
    weights: &[i8],
    k: usize,
    oc0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
    wide: &mut [i16],
) {
    let rows_at = WeightRows {
        k,
        oc0,
        rows,
        k0,
        kc,
    };
    // SAFETY: 16 bytes to load (the slice's length); AVX2 runs here.
    let sixteen = |s: &[i8]| unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(s.as_ptr().cast())) };
    widen_weight_rows(weights, rows_at, wide, sixteen, i16::from);
}

/// Which weight rows and taps a widening takes (see [`widen_weights`]).
#[derive(Clone, Copy)]
pub(super) struct WeightRows {
    pub k: usize,
    pub oc0: usize,
    pub rows: usize,
    pub k0: usize,
    pub kc: usize,
}

/// The row loop of [`widen_weights`] for weights of type `T`: `sixteen`
/// widens 16 weights (a slice of exactly 16) into 16 `i16` lanes, `one` a
/// single weight of the row's tail.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn widen_weight_rows<T: Copy>(
    weights: &[T],
    at: WeightRows,
    wide: &mut [i16],
    sixteen: impl Fn(&[T]) -> __m256i,
    one: impl Fn(T) -> i16,
) {
    let lanes = at.kc.next_multiple_of(2);
    for (r, dst) in wide.chunks_exact_mut(W_ROW).enumerate().take(MR) {
        let Some(dst) = dst.get_mut(..lanes + 16) else {
            return;
        };
        if r >= at.rows {
            dst.fill(0);
            continue;
        }
        let start = (at.oc0 + r) * at.k + at.k0;
        let src = weights.get(start..start + at.kc).unwrap_or(&[]);
        let mut i = 0;
        while i + 16 <= at.kc {
            let (Some(s16), Some(d16)) = (src.get(i..i + 16), dst.get_mut(i..i + 16)) else {
                break;
            };
            // SAFETY: 16 `i16` to store; the store is unaligned.
            unsafe { _mm256_storeu_si256(d16.as_mut_ptr().cast(), sixteen(s16)) };
            i += 16;
        }
        for (j, d) in dst.iter_mut().enumerate().take(lanes).skip(i) {
            *d = src.get(j).map_or(0, |&w| one(w));
        }
    }
}

/// 8 `i32` at `buf[at..at + 8]` (zeros if out of range).
#[target_feature(enable = "avx2")]
#[inline]
fn load_i32x8(buf: &[i32], at: usize) -> __m256i {
    match buf.get(at..at + 8) {
        // SAFETY: 8 `i32` (32 bytes) to load.
        Some(s) => unsafe { _mm256_loadu_si256(s.as_ptr().cast()) },
        None => _mm256_setzero_si256(),
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn store_i32x8(buf: &mut [i32], at: usize, v: __m256i) {
    if let Some(d) = buf.get_mut(at..at + 8) {
        // SAFETY: room for 8 `i32` (32 bytes).
        unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) };
    }
}

#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn store_i8x16(buf: &mut [i8], at: usize, v: __m128i) {
    if let Some(d) = buf.get_mut(at..at + 16) {
        // SAFETY: room for 16 bytes.
        unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), v) };
    }
}

/// The first `len` (at most `N`) elements of `buf`, zeroed: a call zeroes
/// only as much of its stack buffers as its shape uses.
pub(super) fn zeroed_prefix<T: bytemuck::Zeroable, const N: usize>(
    buf: &mut MaybeUninit<[T; N]>,
    len: usize,
) -> &mut [T] {
    let len = len.min(N);
    let first = buf.as_mut_ptr().cast::<T>();
    // SAFETY: `first` points to `N >= len` properly aligned `T`s inside
    // `buf`, borrowed exclusively for the returned lifetime; the first `len`
    // are written (all-zero bytes are a valid `T`, `Zeroable`) before the
    // slice over exactly those is formed.
    unsafe {
        first.write_bytes(0, len);
        core::slice::from_raw_parts_mut(first, len)
    }
}
