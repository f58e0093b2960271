//! Conv and FullyConnected over pruned weights stored sparse: per row, a
//! bitmap of the non-zero weights, and the non-zero values packed (a byte
//! each, or a 4- or 3-bit power-of-two code each: one generic walk over the
//! bitmap serves them all, behind a function per storage).
//!
//! A zero weight adds nothing to an accumulator, and wrapping `i32` sums do
//! not depend on their order, so skipping the zeros is bit-exact with
//! [`conv_s8`](super::conv_s8) and
//! [`fully_connected_s8`](super::fully_connected_s8) on the dense weights.

use super::conv::{conv_weight_count, preconditions_hold};
use super::{act_ok, mul3, Taps};
use crate::kernels::{ConvParams, FullyConnectedParams};
use crate::numerics::requantize_to_i8;
use crate::sparse::{NonZeros, SparsePow2Rows, SparsePow2x3Rows, SparseRows, SparseRowsOf};

/// Outputs that share one decoded list of taps.
const TILE: usize = 32;
/// Taps decoded at a time (a row with more is walked in parts, per tile).
const LIST: usize = 96;

/// [`conv_s8`](super::conv_s8) with `weights` as [`SparseRows`] of
/// `out_channels` rows of `in_channels/groups · kernel_h · kernel_w`.
///
/// For each output channel and output row it decodes the channel's non-zero
/// weights whose kernel row lands inside the input into a list of
/// (input offset, weight), once, and runs every output of the row over that
/// list: a zero weight costs one bit test per output row, a non-zero one a
/// load, a load and a multiply-add per output. Outputs whose window lies
/// inside the input (all but the padded edges) need no bounds test per tap.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `conv_s8`, or when `weights` does not have that shape.
pub fn conv_sparse_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &SparseRows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, ReferenceParts>(p, input, weights, bias, multiplier, shift, output)
}

/// [`conv_sparse_s8`] with the non-zero weights stored as 4-bit
/// power-of-two codes ([`SparsePow2Rows`]).
pub fn conv_sparse_pow2_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &SparsePow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, ReferenceParts>(p, input, weights, bias, multiplier, shift, output)
}

/// [`conv_sparse_s8`] with the non-zero weights stored as 3-bit
/// power-of-two codes ([`SparsePow2x3Rows`]).
pub fn conv_sparse_pow2x3_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &SparsePow2x3Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, ReferenceParts>(p, input, weights, bias, multiplier, shift, output)
}

/// How a sparse conv turns an output channel's accumulators into outputs:
/// `requantize_to_i8` ([`Requantize`], the definition), or an optimized
/// kernel's form of it that gives the same bytes (the Cortex-M DSP
/// kernels' shortcut, exact where it applies).
pub(crate) trait OutputRequant: Copy {
    /// The requantization by `multiplier` and `shift`.
    fn of(multiplier: i32, shift: i32) -> Self;
    /// `requantize_to_i8(acc, multiplier, shift, zp, lo, hi)`.
    fn apply(self, acc: i32, zp: i32, lo: i32, hi: i32) -> i8;
}

/// [`requantize_to_i8`] itself.
#[derive(Clone, Copy)]
pub(crate) struct Requantize {
    multiplier: i32,
    shift: i32,
}

impl OutputRequant for Requantize {
    fn of(multiplier: i32, shift: i32) -> Self {
        Requantize { multiplier, shift }
    }

    #[inline(always)]
    fn apply(self, acc: i32, zp: i32, lo: i32, hi: i32) -> i8 {
        requantize_to_i8(acc, self.multiplier, self.shift, zp, lo, hi)
    }
}

/// The parts of the sparse conv an optimized kernel replaces (as
/// `GateProducts` is for the recurrent ops): the requantization, and the
/// multiply-accumulates of the outputs whose taps all lie inside the input.
/// Both must give the reference's results exactly.
pub(crate) trait SparseConvParts {
    /// The requantization.
    type Requant: OutputRequant;

    /// `acc[j] += Σ_taps x[base + j·stride + offset]·weight − zp_sum`
    /// (wrapping) for every `j < acc.len()`, a multiple of [`QUAD`].
    ///
    /// # Safety
    ///
    /// `base + (acc.len() − 1)·stride + offset + 1 ≤ in_group.len()` for
    /// every tap (the outputs are interior; see [`interior_sum`]), and every
    /// weight is in `i8` range.
    #[inline(always)]
    unsafe fn interior_quads(
        in_group: &[i8],
        base: usize,
        stride: usize,
        taps: &[Tap],
        zp_sum: i32,
        acc: &mut [i32],
    ) {
        // SAFETY: the caller's guarantee, which is `interior_quads`'s.
        unsafe {
            if stride == 1 {
                interior_quads::<1>(in_group, base, 1, taps, zp_sum, acc)
            } else {
                interior_quads::<0>(in_group, base, stride, taps, zp_sum, acc)
            }
        }
    }
}

/// The definition: [`Requantize`] and the portable loops.
pub(crate) struct ReferenceParts;

impl SparseConvParts for ReferenceParts {
    type Requant = Requantize;
}

/// The conv of every sparse storage, with the parts `K`.
#[inline(always)]
pub(crate) fn conv_sparse_with<V: NonZeros, K: SparseConvParts>(
    p: &ConvParams,
    input: &[i8],
    weights: &SparseRowsOf<'_, V>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    // `SparseRows::parse` checked the rest: whole rows, no bit past a
    // row's end, as many values as set bits.
    let shape_ok = weights.rows() == p.out_channels
        && conv_weight_count(p) == weights.rows().checked_mul(weights.row_len());
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
    let row_len = weights.row_len();
    let mut first_value = 0;
    let mut list = TapList::EMPTY;

    for (oc, out_oc) in output.chunks_exact_mut(out_plane).enumerate() {
        let bitmap = weights.row_bitmap(oc);
        let row_first_value = first_value;
        first_value += bitmap
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>();
        let group = (oc / cout_g) * cin_g * in_plane;
        let Some(in_group) = input.get(group..group + cin_g * in_plane) else {
            return; // cannot happen: the input length was checked
        };
        let (b, rq) = (
            bias[oc],
            K::Requant::of(multiplier[oc], i32::from(shift[oc])),
        );
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            let row = RowTaps {
                p,
                weights,
                bitmap,
                first_value: row_first_value,
                ty,
                cin_g,
            };
            let mut walk = TapWalk::START;
            row.fill(&mut walk, &mut list);
            let whole = walk.done(row_len);
            for (t, out_tile) in out_row.chunks_mut(TILE).enumerate() {
                let mut acc = [b; TILE];
                let acc = acc.get_mut(..out_tile.len()).unwrap_or(&mut []);
                if whole {
                    list.accumulate::<K>(p, in_group, t * TILE, acc);
                } else {
                    // More taps than a list holds: walk the row in parts.
                    let mut walk = TapWalk::START;
                    while !walk.done(row_len) {
                        row.fill(&mut walk, &mut list);
                        list.accumulate::<K>(p, in_group, t * TILE, acc);
                    }
                }
                for (y, &a) in out_tile.iter_mut().zip(acc.iter()) {
                    *y = rq.apply(a, p.output_zero_point, p.act_min, p.act_max);
                }
            }
        }
    }
}

/// The weights of one output channel, seen from one output row.
struct RowTaps<'a, 'p, V: NonZeros> {
    p: &'p ConvParams,
    weights: &'p SparseRowsOf<'a, V>,
    bitmap: &'a [u8],
    /// The index of the channel's first non-zero value.
    first_value: usize,
    /// The kernel rows that land inside the input for this output row.
    ty: Taps,
    cin_g: usize,
}

/// Where a walk over a row's weights stands: weight `k` of the row, and
/// the index (among the row's non-zero values) of the next set bit's value.
#[derive(Clone, Copy)]
struct TapWalk {
    k: usize,
    value: usize,
}

impl TapWalk {
    const START: TapWalk = TapWalk { k: 0, value: 0 };

    fn done(&self, row_len: usize) -> bool {
        self.k >= row_len
    }
}

impl<V: NonZeros> RowTaps<'_, '_, V> {
    /// Replaces `list` with the next valid taps from `walk` on, at most
    /// [`LIST`]; advances `walk` past them. It visits the set bits only (a
    /// byte of zeros costs one test), and places each weight `k` of the row
    /// by division: input channel `k / (kH·kW)`, kernel row and column from
    /// the rest.
    fn fill(&self, walk: &mut TapWalk, list: &mut TapList) {
        let p = self.p;
        let taps_per_channel = p.kernel_h * p.kernel_w;
        let row_len = self.cin_g * taps_per_channel;
        list.len = 0;
        list.weight_sum = 0;
        while !walk.done(row_len) && list.len < LIST {
            let Some(&byte) = self.bitmap.get(walk.k / 8) else {
                walk.k = row_len; // cannot happen: the bitmap covers the row
                break;
            };
            let bits = byte >> (walk.k % 8);
            if bits == 0 {
                walk.k = (walk.k / 8 + 1) * 8;
                continue;
            }
            let k = walk.k + bits.trailing_zeros() as usize;
            walk.k = k + 1;
            if k >= row_len {
                break; // cannot happen: no bit is set past the row's end
            }
            let w = self
                .weights
                .stored_value(self.first_value + walk.value)
                .unwrap_or(0);
            walk.value += 1;
            let (icg, in_channel) = (k / taps_per_channel, k % taps_per_channel);
            let (ky, kx) = (in_channel / p.kernel_w, in_channel % p.kernel_w);
            if ky >= self.ty.lo && ky < self.ty.hi {
                let iy = self.ty.first + (ky - self.ty.lo) * p.dilation_h;
                let kx = kx * p.dilation_w;
                let n = list.len;
                list.taps[n] = Tap {
                    offset: icg * p.in_h * p.in_w + iy * p.in_w + kx,
                    weight: i32::from(w),
                };
                list.kx[n] = kx;
                list.weight_sum = list.weight_sum.wrapping_add(i32::from(w));
                list.len += 1;
            }
        }
    }
}

/// One decoded tap: the input offset of output column 0 without its
/// padding (`icg·H·W + iy·W + kx·dilation`) and the weight, side by side so
/// that the interior loop reads both with one load.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Tap {
    pub offset: usize,
    pub weight: i32,
}

/// Decoded taps, and for each `kx·dilation` (for the padded edges).
struct TapList {
    taps: [Tap; LIST],
    kx: [usize; LIST],
    len: usize,
    weight_sum: i32,
}

impl TapList {
    const EMPTY: TapList = TapList {
        taps: [Tap {
            offset: 0,
            weight: 0,
        }; LIST],
        kx: [0; LIST],
        len: 0,
        weight_sum: 0,
    };

    /// Adds the listed taps' terms to the outputs `ox0 ..` of a row.
    fn accumulate<K: SparseConvParts>(
        &self,
        p: &ConvParams,
        in_group: &[i8],
        ox0: usize,
        acc: &mut [i32],
    ) {
        let n = self.len.min(LIST);
        let (taps, kx) = (&self.taps[..n], &self.kx[..n]);
        let zp = p.input_zero_point;
        let stride = p.stride_w.max(1);
        // The interior, where every tap lies inside the input: outputs `ox`
        // with `pad_left ≤ ox·stride` and `ox·stride − pad_left + span < W`.
        let span = (p.kernel_w - 1) * p.dilation_w;
        let first = p
            .pad_left
            .div_ceil(stride)
            .saturating_sub(ox0)
            .min(acc.len());
        let end = match (p.in_w + p.pad_left).checked_sub(span + 1) {
            Some(last_start) => (last_start / stride + 1).saturating_sub(ox0),
            None => 0,
        }
        .clamp(first, acc.len());
        // Σ (x − zp)·w = Σ x·w − zp·Σw there.
        let zp_sum = zp.wrapping_mul(self.weight_sum);
        let (head, rest) = acc.split_at_mut(first);
        let (interior, tail) = rest.split_at_mut(end - first);
        let base = (ox0 + first) * stride - p.pad_left.min((ox0 + first) * stride);
        let quads = interior.len() / QUAD * QUAD;
        let (blocks, singles) = interior.split_at_mut(quads);
        // SAFETY: `blocks` are interior outputs (`first..end` above), whose
        // every listed tap lies inside `in_group` (see `interior_sum`); the
        // weights are `i8` values.
        unsafe { K::interior_quads(in_group, base, stride, taps, zp_sum, blocks) };
        for (j, a) in singles.iter_mut().enumerate() {
            let sum = interior_sum(in_group, base + (quads + j) * stride, taps);
            *a = a.wrapping_add(sum).wrapping_sub(zp_sum);
        }
        let edges = head
            .iter_mut()
            .enumerate()
            .chain(tail.iter_mut().enumerate().map(|(j, a)| (end + j, a)));
        for (j, a) in edges {
            let start = (ox0 + j) * stride;
            for (t, &kx) in taps.iter().zip(kx) {
                let at = start + kx;
                if at < p.pad_left || at - p.pad_left >= p.in_w {
                    continue;
                }
                let x = in_group
                    .get(at - p.pad_left + t.offset - kx)
                    .copied()
                    .unwrap_or(0);
                *a = a.wrapping_add(i32::from(x).wrapping_sub(zp).wrapping_mul(t.weight));
            }
        }
    }
}

/// Interior outputs summed together per tap.
pub(crate) const QUAD: usize = 4;

/// `acc[j] += Σ x[base + j·stride + offset]·w − zp_sum` for interior
/// outputs in blocks of [`QUAD`]: each tap's offset and weight are loaded
/// once for the four outputs. Kept out of line, so that on a Cortex-M4 the
/// four sums, the tap pointer and the input base stay in registers (about
/// 3 instructions a multiply-add; inlined into the kernel they spilled, at
/// 5.5). `UNIT` 1 says `stride` is 1, so the four inputs sit at fixed
/// distances.
///
/// # Safety
///
/// [`SparseConvParts::interior_quads`]'s.
#[inline(never)]
unsafe fn interior_quads<const UNIT: usize>(
    in_group: &[i8],
    base: usize,
    stride: usize,
    taps: &[Tap],
    zp_sum: i32,
    acc: &mut [i32],
) {
    let stride = if UNIT == 1 { 1 } else { stride };
    for (q, block) in acc.chunks_exact_mut(QUAD).enumerate() {
        let at0 = base + q * QUAD * stride;
        let mut sums = [0i32; QUAD];
        for t in taps {
            let at = at0 + t.offset;
            debug_assert!(at + (QUAD - 1) * stride < in_group.len());
            for (k, sum) in sums.iter_mut().enumerate() {
                // SAFETY: the caller's guarantee, for `k < QUAD`.
                let x = unsafe { *in_group.get_unchecked(at + k * stride) };
                *sum = sum.wrapping_add(i32::from(x).wrapping_mul(t.weight));
            }
        }
        for (a, s) in block.iter_mut().zip(sums) {
            *a = a.wrapping_add(s).wrapping_sub(zp_sum);
        }
    }
}

/// `Σ x[base + offset]·w` over taps that all lie inside `in_group`.
///
/// The caller guarantees `base + offset < in_group.len()` for every tap:
/// `in_group` is `cin_g` whole input planes, a listed tap has
/// `offset = icg·H·W + iy·W + kx·dilation` with `icg < cin_g` and `iy < H`,
/// and an interior output has `base + kx·dilation < W`. (Pairing taps for
/// `SMLAD` was measured slower on the Cortex-M4: packing two gathered inputs
/// costs more than the multiply it saves.)
#[inline(always)]
fn interior_sum(in_group: &[i8], base: usize, taps: &[Tap]) -> i32 {
    taps.iter().fold(0i32, |sum, t| {
        debug_assert!(base + t.offset < in_group.len());
        // SAFETY: the caller's guarantee above. The bounds test this saves
        // is a third of the loop on a Cortex-M4.
        let x = unsafe { *in_group.get_unchecked(base + t.offset) };
        sum.wrapping_add(i32::from(x).wrapping_mul(t.weight))
    })
}

/// [`fully_connected_s8`](super::fully_connected_s8) with `weights` as
/// [`SparseRows`] of `out_features` rows of `in_features`: each output walks
/// its row's set bits, 32 at a time, so a run of zeros costs a fraction of
/// an instruction per weight and a non-zero weight about ten (on a
/// Cortex-M4).
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `fully_connected_s8`, or when `weights` does not have that shape.
pub fn fully_connected_sparse_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &SparseRows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    fully_connected_sparse(p, input, weights, bias, multiplier, shift, output)
}

/// [`fully_connected_sparse_s8`] with the non-zero weights stored as 4-bit
/// power-of-two codes ([`SparsePow2Rows`]).
pub fn fully_connected_sparse_pow2_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &SparsePow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    fully_connected_sparse(p, input, weights, bias, multiplier, shift, output)
}

/// [`fully_connected_sparse_s8`] with the non-zero weights stored as 3-bit
/// power-of-two codes ([`SparsePow2x3Rows`]).
pub fn fully_connected_sparse_pow2x3_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &SparsePow2x3Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    fully_connected_sparse(p, input, weights, bias, multiplier, shift, output)
}

/// The FullyConnected of every sparse storage.
#[inline(always)]
fn fully_connected_sparse<V: NonZeros>(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &SparseRowsOf<'_, V>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = weights.rows() == p.out_features
        && weights.row_len() == p.in_features
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len());
    if !lens_ok || !act_ok(p.act_min, p.act_max) || output.is_empty() {
        return;
    }
    let k = p.in_features;
    let zp = p.input_zero_point;
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let Some(x_row) = input.get(r * k..(r + 1) * k) else {
            return; // cannot happen: the input length was checked
        };
        let mut values = weights.cursor(0);
        for (n, y) in out_row.iter_mut().enumerate() {
            let mut dot = SparseDot::<V> {
                values: &mut values,
                sum: 0,
                weight_sum: 0,
            };
            let bitmap = weights.row_bitmap(n);
            let (words, tail) = bitmap.as_chunks::<4>();
            for (word, x) in words.iter().zip(x_row.chunks(32)) {
                dot.add(u32::from_le_bytes(*word), x);
            }
            let x_tail = x_row.get(words.len() * 32..).unwrap_or(&[]);
            for (&byte, x) in tail.iter().zip(x_tail.chunks(8)) {
                dot.add(u32::from(byte), x);
            }
            // Σ (x − zp)·w = Σ x·w − zp·Σw.
            let acc = bias[n]
                .wrapping_add(dot.sum)
                .wrapping_sub(zp.wrapping_mul(dot.weight_sum));
            let s = i32::from(shift[n]);
            *y = requantize_to_i8(
                acc,
                multiplier[n],
                s,
                p.output_zero_point,
                p.act_min,
                p.act_max,
            );
        }
    }
}

/// A dot product over one input row and the non-zero weights of a
/// [`SparseRowsOf`] made by `parse`, taken in order from `values`.
struct SparseDot<'a, 'v, V: NonZeros> {
    values: &'v mut V::Cursor<'a>,
    sum: i32,
    weight_sum: i32,
}

impl<V: NonZeros> SparseDot<'_, '_, V> {
    /// Adds the terms of the weights whose bits are set in `bits`, bit `j`
    /// standing for the weight of input `x[j]`.
    #[inline(always)]
    fn add(&mut self, mut bits: u32, x: &[i8]) {
        while bits != 0 {
            let at = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            debug_assert!(at < x.len());
            // SAFETY: `SparseRows::parse` made the weights: no bit is set
            // past a row's `k` weights, so bit `at` of the word (or byte)
            // for inputs `x` has `at < x.len()` (the caller checked
            // `row_len == k` and passes each word with its 32 inputs, the
            // last ones fewer), and the set bits number the values, so
            // each set bit walked has a value left at the cursor (the caller
            // starts one at value 0 for every input row), as `take` requires.
            let (x, w) = unsafe { (*x.get_unchecked(at), V::take(self.values)) };
            self.sum = self
                .sum
                .wrapping_add(i32::from(x).wrapping_mul(i32::from(w)));
            self.weight_sum = self.weight_sum.wrapping_add(i32::from(w));
        }
    }
}
