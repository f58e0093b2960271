//! Conv and FullyConnected over power-of-two weights (`0` or `±2^e`, 4-bit
//! codes, [`Pow2Rows`]): no product is a multiply.
//!
//! `Σ x·w` over weights `±2^e` is `Σ_e 2^e · (Σ_{w=+2^e} x − Σ_{w=−2^e} x)`,
//! which Horner's rule evaluates with one doubling per exponent:
//! `((S_6·2 + S_5)·2 + …)·2 + S_0`. So each tap is a load and an add or a
//! subtract; the codes are sorted by exponent once per output row (conv) or
//! summed into per-code buckets (fully connected). In wrapping `i32`
//! arithmetic every regrouping of a sum of products is exact (`NUMERICS.md`
//! §2), so these kernels are bit-exact with [`conv_s8`](super::conv_s8) and
//! [`fully_connected_s8`](super::fully_connected_s8) on the decoded weights.
//!
//! Shaped by the Cortex-M0 (`benches/qemu`, bin `pow2`; `muls.sh`), whose
//! builds run the reference kernels, but portable Rust, so every target
//! runs them. Per MAC on the ECG model's layers, in instructions (and
//! multiplies, `MULS`), dense reference → pow2: the convolutions 48–85
//! (2.2–3.7) → 12–39 (0.1–1.0: requantization only), its FC 32→5 16 → 22,
//! an FC 640→128 8.0 (1.0) → 11.5 (0.01). The convolutions' gain is the
//! loop structure (the sparse kernel, a list of taps with a multiply each,
//! takes about as many instructions); the shifts save the multiplies, which
//! pays on a Cortex-M0 with the 32-cycle multiplier (FC 640→128: ~39 cycles
//! per MAC dense, ~12 pow2), not on one with the single-cycle multiplier.
//! On a Cortex-M4 the dense `SMLAD` kernels take 2–20 times fewer
//! instructions.

use super::conv::{conv_weight_count, preconditions_hold};
use super::{act_ok, mul3, Taps};
use crate::kernels::{ConvParams, FullyConnectedParams};
use crate::numerics::requantize_to_i8;
use crate::pow2::{Pow2Rows, MAX_EXPONENT};

/// Exponents `0..=MAX_EXPONENT`: the Horner levels.
const LEVELS: usize = MAX_EXPONENT as usize + 1;
/// Outputs that share one decoded list of taps.
const TILE: usize = 32;
/// Taps decoded at a time (a row with more is walked in parts, per tile).
const LIST: usize = 96;

/// [`conv_s8`](super::conv_s8) with `weights` as [`Pow2Rows`] of
/// `out_channels` rows of `in_channels/groups · kernel_h · kernel_w`, in the
/// dense kernel's order.
///
/// For each output channel and output row it sorts the channel's non-zero
/// weights whose kernel row lands inside the input by exponent and sign, as
/// a list of input offsets, once, and runs every output of the row over that
/// list: a zero weight costs nothing per output, a non-zero one a load and
/// an add or subtract. Outputs whose window lies inside the input (all but
/// the padded edges) need no bounds test per tap.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `conv_s8`, or when `weights` does not have that shape. The codes are
/// not checked further (the loader has, once): each counts as
/// [`decode`](crate::pow2::decode) reads it, a "negative zero" as 0.
pub fn conv_pow2_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &Pow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let shape_ok = weights.rows == p.out_channels
        && conv_weight_count(p) == weights.rows.checked_mul(weights.row_len)
        && weights.has_length();
    if !shape_ok
        || !preconditions_hold(p, input, bias, multiplier, shift)
        || mul3(p.out_channels, p.out_h, p.out_w) != Some(output.len())
        || output.is_empty()
    {
        return;
    }
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let mut list = TapList::EMPTY;

    for (oc, out_oc) in output.chunks_exact_mut(out_plane).enumerate() {
        let group = (oc / cout_g) * cin_g * in_plane;
        let Some(in_group) = input.get(group..group + cin_g * in_plane) else {
            return; // cannot happen: the input length was checked
        };
        let rq = (bias[oc], multiplier[oc], i32::from(shift[oc]));
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            let row = RowTaps {
                p,
                codes: weights.row(oc),
                ty,
                cin_g,
            };
            let mut walk = TapWalk::start(&row);
            row.fill(&mut walk, &mut list);
            let whole = walk.done(cin_g);
            for (t, out_tile) in out_row.chunks_mut(TILE).enumerate() {
                let mut acc = [rq.0; TILE];
                let acc = acc.get_mut(..out_tile.len()).unwrap_or(&mut []);
                if whole {
                    list.accumulate(p, in_group, t * TILE, acc);
                } else {
                    // More taps than a list holds: walk the row in parts.
                    let mut walk = TapWalk::start(&row);
                    while !walk.done(cin_g) {
                        row.fill(&mut walk, &mut list);
                        list.accumulate(p, in_group, t * TILE, acc);
                    }
                }
                for (y, &a) in out_tile.iter_mut().zip(acc.iter()) {
                    *y = requantize_to_i8(a, rq.1, rq.2, p.output_zero_point, p.act_min, p.act_max);
                }
            }
        }
    }
}

/// The weights of one output channel, seen from one output row.
struct RowTaps<'a, 'p> {
    p: &'p ConvParams,
    codes: &'a [u8],
    /// The kernel rows that land inside the input for this output row.
    ty: Taps,
    cin_g: usize,
}

/// Where a walk over a row's weights stands: weight `k` (input channel
/// `icg`, kernel row `ky`, column `kx`), and the input offset of that
/// weight's kernel row for output column 0 without its padding,
/// `icg·H·W + iy·W`, and of its column, `kx·dilation` (kept up to date by
/// additions: no multiply per weight). `iy` is `ty.first + (ky −
/// ty.lo)·dilation`; for kernel rows outside the input the row offset is
/// meaningless (wrapping), and never used.
#[derive(Clone, Copy)]
struct TapWalk {
    k: usize,
    icg: usize,
    ky: usize,
    kx: usize,
    row_offset: usize,
    col: usize,
}

impl TapWalk {
    fn start(row: &RowTaps<'_, '_>) -> TapWalk {
        let p = row.p;
        let rows_above = row.ty.lo * p.dilation_h;
        TapWalk {
            k: 0,
            icg: 0,
            ky: 0,
            kx: 0,
            row_offset: (row.ty.first.wrapping_sub(rows_above)).wrapping_mul(p.in_w),
            col: 0,
        }
    }

    fn done(&self, cin_g: usize) -> bool {
        self.icg >= cin_g
    }
}

impl RowTaps<'_, '_> {
    /// Calls `f(code, offset, col)` for each non-zero weight from `walk` on
    /// whose kernel row lands inside the input (`offset` and `col` as in
    /// [`TapList`]), until `max` of them or the end of the row; leaves
    /// `walk` after the last. Returns how many there were. Kernel rows
    /// outside the input are skipped whole.
    #[inline(always)]
    fn walk_taps(
        &self,
        walk: &mut TapWalk,
        max: usize,
        mut f: impl FnMut(usize, usize, usize),
    ) -> usize {
        let p = self.p;
        let row_step = p.dilation_h * p.in_w;
        let channel_step = (p.in_h * p.in_w).wrapping_sub(p.kernel_h * row_step);
        let mut n = 0;
        while !walk.done(self.cin_g) && n < max {
            if walk.ky >= self.ty.lo && walk.ky < self.ty.hi {
                while walk.kx < p.kernel_w && n < max {
                    // A negative zero (8) is 0, as `decode` reads it.
                    let code = usize::from(Pow2Rows::code(self.codes, walk.k));
                    if code & 7 != 0 {
                        f(code, walk.row_offset.wrapping_add(walk.col), walk.col);
                        n += 1;
                    }
                    walk.k += 1;
                    walk.kx += 1;
                    walk.col += p.dilation_w;
                }
                if walk.kx < p.kernel_w {
                    break; // `max` reached within the kernel row
                }
            } else {
                walk.k += p.kernel_w - walk.kx;
            }
            walk.kx = 0;
            walk.col = 0;
            walk.ky += 1;
            walk.row_offset = walk.row_offset.wrapping_add(row_step);
            if walk.ky == p.kernel_h {
                walk.ky = 0;
                walk.icg += 1;
                walk.row_offset = walk.row_offset.wrapping_add(channel_step);
            }
        }
        n
    }

    /// Replaces `list` with the next valid taps from `walk` on, at most
    /// [`LIST`], sorted for Horner's rule; advances `walk` past them.
    ///
    /// Two walks over the same weights (a counting sort): the first counts
    /// the taps of each code, which places each code's run in the list; the
    /// second writes the offsets there.
    fn fill(&self, walk: &mut TapWalk, list: &mut TapList) {
        let start = *walk;
        let mut count = [0usize; 16];
        let n = self.walk_taps(walk, LIST, |code, _, _| count[code] += 1);
        // Runs by exponent, highest first, each positive then negative.
        let mut next = [0usize; 16];
        let mut at = 0;
        let mut weight_sum = 0i32;
        for (i, ends) in list.end.chunks_exact_mut(2).enumerate() {
            let e = MAX_EXPONENT as usize - i;
            let (pos, neg) = (e + 1, e + 9);
            next[pos] = at;
            next[neg] = at + count[pos];
            at += count[pos] + count[neg];
            ends[0] = next[neg];
            ends[1] = at;
            weight_sum += (count[pos] as i32 - count[neg] as i32) << e;
        }
        debug_assert!(at == n && n <= LIST);
        list.zp_weight_sum = self.p.input_zero_point.wrapping_mul(weight_sum);
        self.walk_taps(&mut { start }, n, |code, offset, col| {
            let slot = next[code];
            next[code] += 1;
            if let (Some(o), Some(c)) = (list.offset.get_mut(slot), list.col.get_mut(slot)) {
                *o = offset;
                *c = col;
            }
        });
    }
}

/// Decoded taps, sorted for Horner's rule: for each, the input offset of
/// output column 0 without its padding (`icg·H·W + iy·W + kx·dilation`) and
/// `kx·dilation`.
struct TapList {
    offset: [usize; LIST],
    col: [usize; LIST],
    /// Where the runs end, two per exponent from the highest: `end[2i]`
    /// ends the taps of weight `+2^(6−i)` (which start at `end[2i − 1]`,
    /// or 0), `end[2i + 1]` those of `−2^(6−i)`. Non-decreasing, at most
    /// [`LIST`]: only [`RowTaps::fill`] writes them.
    end: [usize; 2 * LEVELS],
    /// `input_zero_point · Σw`, what the taps' zero points add up to.
    zp_weight_sum: i32,
}

impl TapList {
    const EMPTY: TapList = TapList {
        offset: [0; LIST],
        col: [0; LIST],
        end: [0; 2 * LEVELS],
        zp_weight_sum: 0,
    };

    /// `Σ x·w` over the listed taps, by Horner's rule, for an output whose
    /// window lies inside the input: `xs` starts at its first input column.
    ///
    /// # Safety
    ///
    /// Every listed offset is less than `xs.len()`.
    #[inline(always)]
    unsafe fn interior_sum(&self, xs: &[i8]) -> i32 {
        let (base, x) = (self.offset.as_ptr(), xs.as_ptr());
        let mut at = base;
        let mut s = 0i32;
        // Pointer loops: on a Cortex-M0 a slice iterator's setup per run
        // (and the unrolling it invites) costs more than the run's taps.
        for ends in self.end.chunks_exact(2) {
            debug_assert!(ends[0] <= ends[1] && ends[1] <= LIST);
            // SAFETY: the ends are at most `LIST` (see `end`), so these are
            // in `offset` or one past it; `at` only moves up to them.
            let (pos_end, neg_end) = unsafe { (base.add(ends[0]), base.add(ends[1])) };
            s = s.wrapping_add(s);
            while at < pos_end {
                // SAFETY: `at` is in `offset` (below an end), and the
                // offset it holds is inside `xs` (the caller's guarantee).
                unsafe {
                    debug_assert!(*at < xs.len());
                    s = s.wrapping_add(i32::from(*x.add(*at)));
                    at = at.add(1);
                }
            }
            while at < neg_end {
                // SAFETY: as above.
                unsafe {
                    debug_assert!(*at < xs.len());
                    s = s.wrapping_sub(i32::from(*x.add(*at)));
                    at = at.add(1);
                }
            }
        }
        s
    }

    /// `Σ (x − zp)·w` over the listed taps that land inside the input, for
    /// an output at padded input column `start`.
    fn edge_sum(&self, p: &ConvParams, in_group: &[i8], start: usize) -> i32 {
        let term = |off: usize, col: usize| {
            let at = start + col;
            if at < p.pad_left || at - p.pad_left >= p.in_w {
                return 0;
            }
            let x = in_group.get(at - p.pad_left + off - col).copied();
            x.map_or(0, |x| i32::from(x) - p.input_zero_point)
        };
        let mut from = 0;
        let mut s = 0i32;
        for ends in self.end.chunks_exact(2) {
            s = s.wrapping_add(s);
            for (j, &end) in ends.iter().enumerate() {
                let offsets = self.offset.get(from..end).unwrap_or(&[]);
                let cols = self.col.get(from..end).unwrap_or(&[]);
                let t = offsets
                    .iter()
                    .zip(cols)
                    .fold(0i32, |t, (&off, &col)| t.wrapping_add(term(off, col)));
                s = if j == 0 {
                    s.wrapping_add(t)
                } else {
                    s.wrapping_sub(t)
                };
                from = end;
            }
        }
        s
    }

    /// Adds the listed taps' terms to the outputs `ox0 ..` of a row.
    fn accumulate(&self, p: &ConvParams, in_group: &[i8], ox0: usize, acc: &mut [i32]) {
        let span = (p.kernel_w - 1) * p.dilation_w;
        for (j, a) in acc.iter_mut().enumerate() {
            let start = (ox0 + j) * p.stride_w;
            let inside = start >= p.pad_left && start - p.pad_left + span < p.in_w;
            if inside {
                // Every tap is inside the input: Σ (x − zp)·w = Σ x·w − zp·Σw.
                let xs = in_group.get(start - p.pad_left..).unwrap_or(&[]);
                // SAFETY: `xs` starts at input column `start − pad_left` of
                // the group's first plane and reaches the end of its last; a
                // listed tap has `offset = icg·H·W + iy·W + col` with
                // `icg < cin_g`, `iy < H` and, the output being interior,
                // `start − pad_left + col < W`. So every offset is inside `xs`.
                let sum = unsafe { self.interior_sum(xs) };
                *a = a.wrapping_add(sum).wrapping_sub(self.zp_weight_sum);
            } else {
                *a = a.wrapping_add(self.edge_sum(p, in_group, start));
            }
        }
    }
}

/// [`fully_connected_s8`](super::fully_connected_s8) with `weights` as
/// [`Pow2Rows`] of `out_features` rows of `in_features`.
///
/// Each output adds `x − zp` into one of 16 buckets per weight, by its
/// code (two per code byte), then combines the buckets by Horner's rule:
/// per weight a load, a subtract and a bucket update, no multiply, no
/// branch on the code.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `fully_connected_s8`, or when `weights` does not have that shape (codes
/// as in [`conv_pow2_s8`]).
pub fn fully_connected_pow2_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &Pow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = weights.rows == p.out_features
        && weights.row_len == p.in_features
        && weights.has_length()
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len());
    if !lens_ok || !act_ok(p.act_min, p.act_max) || output.is_empty() {
        return;
    }
    let k = p.in_features;
    let zp = p.input_zero_point;
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let x_row = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        let per_n = out_row
            .iter_mut()
            .zip(bias.iter().zip(multiplier).zip(shift));
        for (n, (y, ((&b, &m), &s))) in per_n.enumerate() {
            let codes = weights.row(n);
            // Bucket `c` sums the inputs whose weight has code `c`; bucket 0
            // (weight 0) and bucket 8 (no code) are never read.
            let mut bucket = [0i32; 16];
            let pairs = x_row.chunks_exact(2);
            let tail = pairs.remainder();
            for (xs, &byte) in pairs.zip(codes) {
                let (lo, hi) = (usize::from(byte & 0x0f), usize::from(byte >> 4));
                bucket[lo] = bucket[lo].wrapping_add(i32::from(xs[0]) - zp);
                bucket[hi] = bucket[hi].wrapping_add(i32::from(xs[1]) - zp);
            }
            // An odd row's last byte pairs its weight with the 0 padding code.
            if let (Some(&x), Some(&byte)) = (tail.first(), codes.last()) {
                let lo = usize::from(byte & 0x0f);
                bucket[lo] = bucket[lo].wrapping_add(i32::from(x) - zp);
            }
            let mut sum = 0i32;
            for e in (0..LEVELS).rev() {
                sum = (sum << 1)
                    .wrapping_add(bucket[e + 1])
                    .wrapping_sub(bucket[e + 9]);
            }
            let acc = b.wrapping_add(sum);
            let s = i32::from(s);
            *y = requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
        }
    }
}
