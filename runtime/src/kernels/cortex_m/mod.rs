//! Cortex-M kernels on the Arm DSP extension (ARMv7E-M: Cortex-M4/M7/…),
//! CMSIS-NN style: activations are widened once into `i16` with the input
//! zero point already subtracted, weights are unpacked with `SXTB16`, and
//! `SMLAD` does two multiply-accumulates per instruction. The
//! multiply-accumulate loops are hand-written (`dsp`, `dw3`); the rest is
//! Rust. Three kernels:
//!
//! - [`conv_s8_dsp`]: im2col into "column" buffers, one weight row against
//!   four columns (output positions) per pass; one input channel per group
//!   with one kernel row runs single rows of taps instead.
//! - [`depthwise_conv_s8_dsp`]: each channel's plane widened once into
//!   zero-padded rows; 3-row kernels of up to 3 taps pair neighbouring
//!   outputs on shared input words (`SMLAD`/`SMLABT`/`SMLATB`).
//! - [`fully_connected_s8_dsp`]: input rows as columns (two or more rows),
//!   or four weight rows against one column, the reduction in chunks of the
//!   column buffer (any length).
//!
//! Each has a `_takes` function ([`conv_dsp_takes`],
//! [`depthwise_conv_dsp_takes`], [`fully_connected_dsp_takes`]) saying up
//! front whether it computes a shape itself, or why not, for a prepare-time
//! selection (depthwise first, then conv). Given a shape it refuses, or a
//! call that breaks a precondition, a kernel runs the reference kernel: a
//! safety net, which also keeps the "returns early, output unchanged"
//! behaviour identical.
//!
//! Measured on a Cortex-M4 under QEMU (`benches/qemu`, `icount`, exact
//! instruction counts), instructions per MAC against CMSIS-NN's DSP kernels
//! on the same shapes:
//!
//! | layer | medq | CMSIS-NN |
//! |---|---|---|
//! | conv 1-D 16→32, k5, 140 wide | 1.44 | 2.40 |
//! | conv 2-D 32×32×16, 3×3 → 16 | 1.43 | 2.33 |
//! | conv 1×1, 25×5×64 → 64 | 1.45 | 2.09 |
//! | depthwise 3×3, 25×5×64 | 3.16 | 8.33 |
//! | fully connected 640 → 128 | 1.43 | 1.95 |
//!
//! and the ECG model's convolutions 1.50, 1.46 and 1.41 (the first, one
//! input channel with 7 taps, through a single-row asm loop), against
//! 24–33 for the reference.
//!
//! Bit-exact with [`reference`](super::reference) for every input: the sums
//! are the same wrapping `i32` sums in another order (`NUMERICS.md` §2), and
//! requantization is `numerics::requantize` (with shortcuts for the shifts
//! where it provably cannot saturate).
//!
//! With `cfg(medq_dsp)` (the build script sets it on thumbv7em targets)
//! the inner loops are inline `asm!` and `kernels::conv_s8` /
//! `kernels::fully_connected_s8` are [`conv_s8_dsp`] /
//! [`fully_connected_s8_dsp`]. On other targets they still build, on a
//! portable emulation of the instructions, so the tests can compare them
//! with the reference on the host (their `_takes` refuse every shape there).
//!
//! Stack: a call's buffers take at most [`SCRATCH_BYTES`].

mod conv;
mod depthwise;
mod dsp;
mod dw3;
mod fully_connected;
#[cfg(feature = "int16-activations")]
mod int16;
#[cfg(feature = "sparse-weights")]
mod sparse;
#[cfg(test)]
mod testing;

pub use conv::{conv_dsp_takes, conv_s8_dsp};
pub use depthwise::{depthwise_conv_dsp_takes, depthwise_conv_s8_dsp};
pub use dsp::USES_DSP_INSTRUCTIONS;
pub use fully_connected::{fully_connected_dsp_takes, fully_connected_s8_dsp};
#[cfg(feature = "int16-activations")]
pub use int16::{
    conv_s16_dsp, conv_s16_dsp_takes, conv_s16_s8_dsp, conv_s8_s16_dsp, fully_connected_s16_dsp,
    fully_connected_s16_dsp_takes, fully_connected_s16_s8_dsp, fully_connected_s8_s16_dsp,
    fully_connected_s8_s16_dsp_takes, MAX_REDUCTION_S16,
};
#[cfg(feature = "sparse-weights")]
pub use sparse::conv_sparse_s8_dsp;
#[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
pub use sparse::{conv_sparse_pow2_s8_dsp, conv_sparse_pow2x3_s8_dsp};

use core::mem::MaybeUninit;

use crate::numerics::{clamp, requantize};

/// `u32` words in the column buffer: 640 `i16` lanes (four columns of a
/// 3×3 kernel over 16 channels, or one of a 640-input fully connected row).
const COL_WORDS: usize = 320;
/// Most groups of 4 reduction indices in one column (2 words per group).
const MAX_GROUPS_X1: usize = COL_WORDS / 2;
/// Most groups when two columns share the buffer.
const MAX_GROUPS_X2: usize = COL_WORDS / 4;
/// Most groups when four columns share the buffer.
const MAX_GROUPS_X4: usize = COL_WORDS / 8;
/// Longest convolution reduction (`C_in/groups · kH · kW`) [`conv_s8_dsp`]
/// takes, and the chunk in which [`fully_connected_s8_dsp`] takes longer
/// ones. Up to a quarter of it, four output positions (or input rows) share
/// each weight load.
pub const MAX_REDUCTION: usize = 4 * MAX_GROUPS_X1;
/// Words of the second buffer: a window's bytes while the columns are
/// built (plus slack for 8-byte row copies), then a block's accumulators.
const SCRATCH_WORDS: usize = MAX_REDUCTION / 4 + 2;
/// Stack taken by a kernel call for its buffers.
pub const SCRATCH_BYTES: usize = (COL_WORDS + SCRATCH_WORDS) * 4;

/// The read-only arguments of a convolution or fully connected call.
#[derive(Clone, Copy)]
struct Operands<'a> {
    input: &'a [i8],
    weights: &'a [i8],
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

/// Whether a convolution's operands and `output` have the lengths `p`
/// implies, given its reduction `k` (`C_in/groups · kH · kW`) and input
/// and output planes.
fn conv_lens_ok(
    p: &ConvParams,
    io: &Operands<'_>,
    output: &[i8],
    (k, in_plane, out_plane): (usize, usize, usize),
) -> bool {
    let n = p.out_channels;
    p.in_channels.checked_mul(in_plane) == Some(io.input.len())
        && n.checked_mul(k) == Some(io.weights.len())
        && n.checked_mul(out_plane) == Some(output.len())
        && io.bias.len() == n
        && io.multiplier.len() == n
        && io.shift.len() == n
}

/// Requantization of one output channel, with the common case precomputed.
///
/// For shifts `s` in `[-31, -2]`, write `e = −s ≥ 2`: the total right shift
/// is `31 + e` and the rounding constant `2^(30+e)` is a multiple of 2^32,
/// so with `v = x · m`,
/// `(v + 2^(30+e)) >> (31+e) = ((v >> 32) + 2^(e−2)) >> (e−1)`
/// exactly (floor division composes). `v >> 32` is the high word of the
/// product (`SMMUL`); `|v| ≤ 2^62` keeps it and the result within
/// `±2^30`, so `requantize` never saturates here. Other shifts (multipliers
/// of 0.25 and more, or out of range) call `requantize` itself.
#[derive(Clone, Copy)]
pub(crate) struct Requant {
    multiplier: i32,
    shift: i32,
    round: i32,
    high_shift: u32,
    fast: bool,
}

impl Requant {
    #[inline(always)]
    fn new(multiplier: i32, shift: i32) -> Requant {
        // `e − 2` in 0..=29 exactly when the shift is in [-31, -2]; outside
        // that the (masked) shifts below are unused.
        let e_minus_2 = shift.wrapping_neg().wrapping_sub(2) as u32;
        Requant {
            multiplier,
            shift,
            round: 1i32.wrapping_shl(e_minus_2),
            high_shift: e_minus_2.wrapping_add(1) & 31,
            fast: e_minus_2 <= 29,
        }
    }

    /// `requantize(acc, m, s)` when `self.fast` (the caller checks): the
    /// int16 kernels' step before their zero point and clamp.
    #[cfg(feature = "int16-activations")]
    #[inline(always)]
    fn value(self, acc: i32) -> i32 {
        let high = ((i64::from(acc) * i64::from(self.multiplier)) >> 32) as i32;
        high.wrapping_add(self.round) >> self.high_shift
    }

    /// `requantize_to_i8(acc, m, s, zp, lo, hi)`.
    #[inline(always)]
    fn apply(self, acc: i32, zp: i32, lo: i32, hi: i32) -> i8 {
        if self.fast {
            let high = ((i64::from(acc) * i64::from(self.multiplier)) >> 32) as i32;
            // |high| ≤ 2^30 and the shift is at least 1, so neither the
            // rounding add nor the zero point can overflow (the saturating
            // add of `requantize_to_i8` never saturates here).
            let v = high.wrapping_add(self.round) >> self.high_shift;
            clamp(v.wrapping_add(zp), lo, hi) as i8
        } else {
            let v = requantize_cold(acc, self.multiplier, self.shift);
            clamp(v.saturating_add(zp), lo, hi) as i8
        }
    }
}

/// [`Requant`]'s shortcut with the output zero point folded into the
/// rounding constant, for shifts in `[-23, -2]` (`hs = −shift − 1 <= 22`)
/// and an output zero point in `i8`. With `hi` the high word of `acc · m`,
///
/// `((hi + 2^(hs−1)) >> hs) + zp == (hi + 2^(hs−1) + zp·2^hs) >> hs`
///
/// exactly (floor division by `2^hs` commutes with adding a multiple of
/// it), so `SMMLA(acc, m, round) >> hs` is the output before its clamp. No
/// step overflows: `|hi| <= 2^30` and `|2^(hs−1) + zp·2^hs| < 2^30`.
#[derive(Clone, Copy)]
struct Folded {
    multiplier: i32,
    round: i32,
    hs: u32,
}

impl Requant {
    /// The folded form for output zero point `zp`, when it applies.
    #[inline(always)]
    fn folded(self, zp: i32) -> Option<Folded> {
        // `fast && hs <= 22` as one compare: `e − 2 = hs − 1` in `0..=21`.
        let fits = self.shift.wrapping_neg().wrapping_sub(2) as u32 <= 21;
        (fits && (-128..=127).contains(&zp)).then(|| Folded {
            multiplier: self.multiplier,
            round: self.round + (zp << self.high_shift),
            hs: self.high_shift,
        })
    }
}

/// Shifts outside `[-31, -2]` (multipliers of 0.25 and more): out of line, so
/// its set-up does not crowd the common path.
#[cold]
#[inline(never)]
fn requantize_cold(acc: i32, multiplier: i32, shift: i32) -> i32 {
    requantize(acc, multiplier, shift)
}

/// The taps of a sliding window along one axis that land inside the input:
/// tap `k` of output `o` reads input `o·stride + k·dilation − pad`, the valid
/// taps are `lo..hi`, and tap `lo` reads input position `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Taps {
    lo: usize,
    hi: usize,
    first: usize,
}

impl Taps {
    /// Closed form, as the reference computes it. Exact when `axis_ok` holds.
    #[inline]
    fn new(
        o: usize,
        stride: usize,
        dilation: usize,
        pad: usize,
        kernel: usize,
        in_len: usize,
    ) -> Taps {
        let d = dilation.max(1);
        let base = o.saturating_mul(stride);
        // Away from the edges every tap is inside: no divisions.
        let last = base.saturating_add(kernel.saturating_sub(1).saturating_mul(d));
        if base >= pad && last < in_len.saturating_add(pad) && kernel > 0 {
            return Taps {
                lo: 0,
                hi: kernel,
                first: base - pad,
            };
        }
        let lo = if base >= pad {
            0
        } else {
            (pad - base).div_ceil(d)
        }
        .min(kernel);
        let end = in_len.saturating_add(pad);
        let hi = if end > base {
            (end - base).div_ceil(d)
        } else {
            0
        }
        .min(kernel);
        if lo >= hi {
            return Taps {
                lo: 0,
                hi: 0,
                first: 0,
            };
        }
        Taps {
            lo,
            hi,
            first: (base + lo * d) - pad,
        }
    }
}

// The same geometry and clamp checks as the reference kernels, so both refuse alike.
use super::reference::{act_ok, axis_ok};
use super::ConvParams;

/// The reference kernel's checks on a convolution's parameters alone:
/// groups divide both channel counts, both axes' windows are well formed,
/// the clamp is inside `i8`.
fn conv_shape_ok(p: &ConvParams) -> bool {
    let groups_ok = p.groups != 0
        && p.in_channels.is_multiple_of(p.groups)
        && p.out_channels.is_multiple_of(p.groups);
    let h = (
        p.out_h,
        p.stride_h,
        p.kernel_h,
        p.dilation_h,
        p.pad_top,
        p.in_h,
    );
    let w = (
        p.out_w,
        p.stride_w,
        p.kernel_w,
        p.dilation_w,
        p.pad_left,
        p.in_w,
    );
    groups_ok
        && act_ok(p.act_min, p.act_max)
        && axis_ok(h.0, h.1, h.2, h.3, h.4, h.5)
        && axis_ok(w.0, w.1, w.2, w.3, w.4, w.5)
}

/// Widens `src` (`x` bytes, at most `4·groups` of them, the rest taken as
/// `pad`) into column `slot` of `nc` interleaved columns: group `j` goes to
/// words `(j·nc + slot)·2 ..+2`, each lane holding `x − zp` (`offset` is
/// `splat16(−zp)`), so `pad = zp` widens to 0. Out of line: one copy for
/// every caller (flash), at a call per column.
#[inline(never)]
fn widen_into(
    src: &[i8],
    pad: i8,
    offset: u32,
    col: &mut [u32],
    slot: usize,
    nc: usize,
    groups: usize,
) {
    let full = (src.len() / 4).min(groups);
    let dst = col.get_mut(2 * slot..).unwrap_or(&mut []);
    match nc {
        4 => dsp::widen_groups::<4>(src, full, offset, dst),
        2 => dsp::widen_groups::<2>(src, full, offset, dst),
        _ => dsp::widen_groups::<1>(src, full, offset, dst),
    }
    if full < groups {
        // The last, partial group: the missing bytes are padding.
        let mut last = [pad; 4];
        for (l, &x) in last.iter_mut().zip(src.get(4 * full..).unwrap_or(&[])) {
            *l = x;
        }
        if let Some([lo, hi]) = dst.get_mut(2 * nc * full..2 * nc * full + 2) {
            [*lo, *hi] = dsp::widen_offset(dsp::word(last), offset);
        }
    }
}

/// Lanes `0..span` of `col` (two `i16` a word, low first): lane `i` =
/// `row[i − pad] − zp` where that is inside `row`, 0 elsewhere (the
/// padding). Four bytes at a time where they land on whole words.
/// (`offset` = `splat16(−zp)`.)
fn widen_padded(row: &[i8], pad: usize, span: usize, zp: i8, offset: u32, col: &mut [u32]) {
    let zp = i32::from(zp);
    // x − zp fits i16 for a zero point in i8.
    let lane = |x: i8| (i32::from(x) - zp) as i16;
    let pad = pad.min(span);
    let end = (pad + row.len()).min(span);
    let row = row.get(..end - pad).unwrap_or(&[]);
    // An odd start: its first byte alone, so the rest starts on a word.
    let head = (pad % 2).min(row.len());
    let first = pad + head;
    let groups = (row.len() - head) / 4;
    {
        let Ok(lanes) = bytemuck::try_cast_slice_mut::<u32, i16>(col) else {
            return;
        };
        let Some(lanes) = lanes.get_mut(..span) else {
            return;
        };
        let bulk_end = first + 4 * groups;
        // The padding, then the bytes outside whole groups. (Plain loops:
        // `fill` becomes a `memset` call that costs more than these lanes.)
        let (front, rest) = lanes.split_at_mut(pad);
        for l in front
            .iter_mut()
            .chain(rest.get_mut(end - pad..).unwrap_or(&mut []))
        {
            *l = 0;
        }
        let odd = [(pad, first), (bulk_end, end)];
        for (from, to) in odd {
            let src = row.get(from - pad..).unwrap_or(&[]);
            for (l, &x) in lanes
                .get_mut(from..to)
                .unwrap_or(&mut [])
                .iter_mut()
                .zip(src)
            {
                *l = lane(x);
            }
        }
    }
    if groups > 0 {
        let src = row.get(head..).unwrap_or(&[]);
        let dst = col.get_mut(first / 2..).unwrap_or(&mut []);
        dsp::widen_lanes(src, groups, offset, dst);
    }
}

/// Where a block's outputs go: output channel (or feature) `oc`, column `c`
/// lands at `base + oc·oc_stride + c·col_stride`, for the first `valid`
/// columns (a block of 3 runs as 4, its last column discarded).
#[derive(Clone, Copy)]
struct Epilogue {
    zp: i32,
    act_min: i32,
    act_max: i32,
    oc_stride: usize,
    col_stride: usize,
    valid: usize,
}

/// Runs the weight rows of `bias.len()` output channels (rows of `k` at the
/// start of `w`, which runs on to the end of the tensor) over the `NC`
/// columns in `col`, and requantizes into `out`. Accumulators go through
/// `scratch` (free once the columns are built) in chunks: one loop keeps the
/// asm fed, the other requantizes, each with few enough live values to stay
/// in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_block<const NC: usize>(
    col: &[u32],
    w: &[i8],
    k: usize,
    groups4: usize,
    q: (&[i32], &[i32], &[i8]),
    ep: &Epilogue,
    out: &mut [i8],
    base: usize,
    scratch: &mut [u32],
) {
    let Ok(accs) = bytemuck::try_cast_slice_mut::<u32, i32>(scratch) else {
        return;
    };
    let per_chunk = (accs.len() / NC).max(1);
    let (bias, multiplier, shift) = q;
    let chunks = bias
        .chunks(per_chunk)
        .zip(multiplier.chunks(per_chunk))
        .zip(shift.chunks(per_chunk));
    for (i, ((b, m), s)) in chunks.enumerate() {
        let first = i * per_chunk;
        let w_chunk = w.get(first * k..).unwrap_or(&[]);
        accumulate::<NC>(w_chunk, k, groups4, col, b, accs);
        store_block::<NC>(accs, m, s, ep, out, base + first * ep.oc_stride);
    }
}

/// `accs[oc·NC + c] = bias[oc] + Σ_k w[oc·k + k] · column c[k]`.
#[inline(never)]
fn accumulate<const NC: usize>(
    w: &[i8],
    k: usize,
    groups4: usize,
    col: &[u32],
    bias: &[i32],
    accs: &mut [i32],
) {
    let mut w = w;
    if NC == 4 {
        // The rows that can read whole groups in place, `r·k + 4·groups4 <=
        // w.len()` (all but, when `k` is not a multiple of 4, the last one
        // or few of the tensor), in one asm loop.
        let whole = match w.len().checked_sub(4 * groups4) {
            Some(room) => (room / k.max(1) + 1).min(bias.len()),
            None => 0,
        };
        let (head, tail) = bias.split_at_checked(whole).unwrap_or((bias, &[]));
        dsp::mac_rows_1x4(w, k, col, groups4, head, accs);
        w = w.get(whole * k..).unwrap_or(&[]);
        let rest = accs.get_mut(whole * 4..).unwrap_or(&mut []);
        for (&b, acc) in tail.iter().zip(rest.chunks_exact_mut(4)) {
            for (a, v) in acc.iter_mut().zip(dot::<4>(w, col, k, groups4, [b; 4])) {
                *a = v;
            }
            w = w.get(k..).unwrap_or(&[]);
        }
        return;
    }
    for (&b, acc) in bias.iter().zip(accs.chunks_exact_mut(NC)) {
        let sums = dot::<NC>(w, col, k, groups4, [b; NC]);
        for (a, v) in acc.iter_mut().zip(sums) {
            *a = v;
        }
        w = w.get(k..).unwrap_or(&[]);
    }
}

/// `acc[c] + Σ w · column c` over a weight row of `k` taps at the start of
/// `w` (the row and whatever follows it). Whole groups of 4 are read
/// straight from `w` — a last group overlapping the next row is harmless,
/// since the columns are 0 past `k` — except at the very end of the tensor,
/// where the last partial group is a zero-padded copy.
#[inline(always)]
fn dot<const NC: usize>(
    w: &[i8],
    col: &[u32],
    k: usize,
    groups4: usize,
    acc: [i32; NC],
) -> [i32; NC] {
    if w.len() >= 4 * groups4 {
        return dsp::mac::<NC>(w, col, groups4, acc);
    }
    let full = k / 4;
    let acc = dsp::mac::<NC>(w, col, full, acc);
    let mut t = [0i8; 4];
    for (d, &s) in t.iter_mut().zip(w.get(4 * full..k).unwrap_or(&[])) {
        *d = s;
    }
    dsp::mac::<NC>(&t, col.get(full * 2 * NC..).unwrap_or(&[]), 1, acc)
}

/// Requantizes `accs` (`NC` per output channel) into `out`, see [`Epilogue`].
#[inline(never)]
fn store_block<const NC: usize>(
    accs: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    ep: &Epilogue,
    out: &mut [i8],
    base: usize,
) {
    let per_oc = accs.chunks_exact(NC).zip(multiplier.iter().zip(shift));
    if ep.col_stride != 1 {
        // Fully connected over several rows: the columns are output rows.
        for (i, (acc, (&m, &s))) in per_oc.enumerate() {
            let rq = Requant::new(m, i32::from(s));
            let ys = out.get_mut(base + i * ep.oc_stride..).unwrap_or(&mut []);
            for (y, &a) in ys.iter_mut().step_by(ep.col_stride).zip(acc).take(ep.valid) {
                *y = rq.apply(a, ep.zp, ep.act_min, ep.act_max);
            }
        }
        return;
    }
    // The columns are consecutive positions of one output plane. Without a
    // fused activation the clamp bounds are constants (one `SSAT`).
    let (zp, lo, hi) = (ep.zp, ep.act_min, ep.act_max);
    let full_range = lo == -128 && hi == 127;
    if ep.valid < NC {
        // A partial block: only the first `valid` columns are outputs.
        let mut at = base;
        for (acc, (&m, &s)) in per_oc {
            let rq = Requant::new(m, i32::from(s));
            let ys = out.get_mut(at..at + ep.valid).unwrap_or(&mut []);
            for (y, &a) in ys.iter_mut().zip(acc) {
                *y = rq.apply(a, zp, lo, hi);
            }
            at += ep.oc_stride;
        }
        return;
    }
    let mut at = base;
    for (acc, (&m, &s)) in per_oc {
        let ys = out.get_mut(at..at + NC).unwrap_or(&mut []);
        if let (Ok(ys), Ok(acc)) = (<&mut [i8; NC]>::try_from(ys), <&[i32; NC]>::try_from(acc)) {
            let rq = Requant::new(m, i32::from(s));
            if full_range {
                store_n(ys, acc, |a| rq.apply(a, zp, -128, 127));
            } else {
                store_n(ys, acc, |a| rq.apply(a, zp, lo, hi));
            }
        }
        at += ep.oc_stride;
    }
}

/// `ys[c] = f(acc[c])`; blocks of 4 written out (size-optimized builds do
/// not unroll even short loops).
#[inline(always)]
fn store_n<const NC: usize>(ys: &mut [i8; NC], acc: &[i32; NC], f: impl Fn(i32) -> i8) {
    let four = (
        <&mut [i8; 4]>::try_from(ys.as_mut_slice()),
        <&[i32; 4]>::try_from(acc.as_slice()),
    );
    if let (Ok([y0, y1, y2, y3]), Ok(&[a0, a1, a2, a3])) = four {
        *y0 = f(a0);
        *y1 = f(a1);
        *y2 = f(a2);
        *y3 = f(a3);
        return;
    }
    for (y, &a) in ys.iter_mut().zip(acc) {
        *y = f(a);
    }
}

/// The first `len` words (at most `N`) of `buf`, zeroed. A call uses only
/// as much of its stack buffers as its shape needs, and zeroing all of them
/// would cost more than a small layer does.
fn zeroed_prefix<const N: usize>(buf: &mut MaybeUninit<[u32; N]>, len: usize) -> &mut [u32] {
    let len = len.min(N);
    let words = buf.as_mut_ptr().cast::<u32>();
    // SAFETY: `words` points to `N >= len` properly aligned `u32`s inside
    // `buf`, which is borrowed exclusively for the returned lifetime; the
    // first `len` are initialized (to 0) before the slice is formed, and the
    // slice covers only those.
    unsafe {
        words.write_bytes(0, len);
        core::slice::from_raw_parts_mut(words, len)
    }
}

/// The input zero point as the byte that widens to 0: the padding value.
fn zp_byte(zp: i32) -> Option<i8> {
    i8::try_from(zp).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requant_shortcut_matches_numerics() {
        let accs = [
            i32::MIN,
            i32::MIN + 1,
            -1_000_003,
            -65_536,
            -3,
            -1,
            0,
            1,
            2,
            77_777,
            i32::MAX,
        ];
        let mults = [0, 1, 1 << 30, (1 << 30) + 12_345, i32::MAX, i32::MIN, -7];
        for shift in -40..=40 {
            for &m in &mults {
                let r = Requant::new(m, shift);
                for &acc in &accs {
                    for (zp, lo, hi) in [(0, -128, 127), (-100, -100, 127), (50, -3, 9)] {
                        let want = crate::numerics::requantize_to_i8(acc, m, shift, zp, lo, hi);
                        assert_eq!(r.apply(acc, zp, lo, hi), want, "{acc} {m} {shift}");
                    }
                }
            }
        }
    }

    #[test]
    fn taps_match_definition() {
        // Against a per-tap scan of `o·stride + k·dilation − pad ∈ [0, in_len)`.
        for in_len in 1..6 {
            for kernel in 1..5 {
                for stride in 1..4 {
                    for dil in 1..4 {
                        for pad in 0..5 {
                            for o in 0..8 {
                                let inside = |k: usize| {
                                    let pos = (o * stride + k * dil) as isize - pad as isize;
                                    pos >= 0 && (pos as usize) < in_len
                                };
                                let t = Taps::new(o, stride, dil, pad, kernel, in_len);
                                for k in 0..kernel {
                                    assert_eq!((t.lo..t.hi).contains(&k), inside(k));
                                }
                                if t.hi > t.lo {
                                    assert_eq!(t.first, o * stride + t.lo * dil - pad);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
