//! Conv and FullyConnected over pruned weights stored sparse: per row, a
//! bitmap of the non-zero weights, and the non-zero values packed.
//!
//! A zero weight adds nothing to an accumulator, and wrapping `i32` sums do
//! not depend on their order, so skipping the zeros is bit-exact with
//! [`conv_s8`](super::conv_s8) and
//! [`fully_connected_s8`](super::fully_connected_s8) on the dense weights.

use super::conv::{conv_weight_count, preconditions_hold};
use super::{act_ok, mul3, Taps};
use crate::kernels::{ConvParams, FullyConnectedParams};
use crate::numerics::requantize_to_i8;
use crate::sparse::SparseRows;

/// Output positions computed per pass over a row's bitmap: the walk over a
/// row's weights is shared by this many outputs.
const TILE: usize = 32;

/// [`conv_s8`](super::conv_s8) with `weights` as [`SparseRows`] of
/// `out_channels` rows of `in_channels/groups · kernel_h · kernel_w`.
///
/// For each output channel, row and tile of [`TILE`] outputs along W it walks
/// the channel's non-zero weights once, and adds each one's products to the
/// whole tile: the bitmap's cost is shared by the tile, and a zero weight
/// costs one bit test per tile.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `conv_s8`, or when `weights` does not have that shape or its set bits do
/// not count its values.
pub fn conv_sparse_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &SparseRows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let shape_ok = weights.rows == p.out_channels
        && conv_weight_count(p) == weights.rows.checked_mul(weights.row_len)
        && weights.counts_agree();
    if !shape_ok
        || !preconditions_hold(p, input, bias, multiplier, shift)
        || mul3(p.out_channels, p.out_h, p.out_w) != Some(output.len())
        || output.is_empty()
    {
        return;
    }
    let w_plane = p.kernel_h * p.kernel_w;
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let zp = p.input_zero_point;
    let mut values = weights.values;

    for (oc, out_oc) in output.chunks_exact_mut(out_plane).enumerate() {
        let bitmap = weights.row_bitmap(oc);
        let nonzero: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        let (row_values, rest) = values.split_at_checked(nonzero).unwrap_or((&[], &[]));
        values = rest;
        let in_group = input.get((oc / cout_g) * cin_g * in_plane..).unwrap_or(&[]);
        let (b, m) = (bias[oc], multiplier[oc]);
        let s = i32::from(shift[oc]);
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for (t, out_tile) in out_row.chunks_mut(TILE).enumerate() {
                let ox0 = t * TILE;
                let mut acc = [b; TILE];
                let mut next = row_values.iter();
                for k in 0..weights.row_len {
                    if bitmap
                        .get(k / 8)
                        .is_none_or(|&byte| byte & (1 << (k % 8)) == 0)
                    {
                        continue;
                    }
                    let Some(&w) = next.next() else { break };
                    let (icg, ky, kx) = (k / w_plane, k % w_plane / p.kernel_w, k % p.kernel_w);
                    if ky < ty.lo || ky >= ty.hi {
                        continue;
                    }
                    let iy = ty.first + (ky - ty.lo) * p.dilation_h;
                    // The outputs of this tile whose tap `kx` lands inside
                    // the row: the window rule solved for the output.
                    let tx = Taps::new(kx, p.dilation_w, p.stride_w, p.pad_left, p.out_w, p.in_w);
                    let (lo, hi) = (tx.lo.max(ox0), tx.hi.min(ox0 + out_tile.len()));
                    if lo >= hi {
                        continue;
                    }
                    let first = tx.first + (lo - tx.lo) * p.stride_w;
                    let xs = in_group
                        .get(icg * in_plane + iy * p.in_w + first..)
                        .unwrap_or(&[]);
                    let w = i32::from(w);
                    let tile_acc = acc.get_mut(lo - ox0..hi - ox0).unwrap_or(&mut []);
                    for (a, &x) in tile_acc.iter_mut().zip(xs.iter().step_by(p.stride_w)) {
                        *a = a.wrapping_add(i32::from(x).wrapping_sub(zp).wrapping_mul(w));
                    }
                }
                for (y, &a) in out_tile.iter_mut().zip(&acc) {
                    *y = requantize_to_i8(a, m, s, p.output_zero_point, p.act_min, p.act_max);
                }
            }
        }
    }
}

/// [`fully_connected_s8`](super::fully_connected_s8) with `weights` as
/// [`SparseRows`] of `out_features` rows of `in_features`: each output walks
/// its row's set bits, a zero byte of the bitmap skipping eight weights.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `fully_connected_s8`, or when `weights` does not have that shape or its
/// set bits do not count its values.
pub fn fully_connected_sparse_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &SparseRows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = p.rows.checked_mul(p.in_features) == Some(input.len())
        && weights.rows == p.out_features
        && weights.row_len == p.in_features
        && weights.counts_agree()
        && p.rows.checked_mul(p.out_features) == Some(output.len())
        && bias.len() == p.out_features
        && multiplier.len() == p.out_features
        && shift.len() == p.out_features;
    if !lens_ok || !act_ok(p.act_min, p.act_max) || output.is_empty() {
        return;
    }
    let k = p.in_features;
    let zp = p.input_zero_point;
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let x_row = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        let mut values = weights.values.iter();
        for (n, y) in out_row.iter_mut().enumerate() {
            let mut acc = bias[n];
            for (i, &byte) in weights.row_bitmap(n).iter().enumerate() {
                let mut bits = byte;
                while bits != 0 {
                    let at = i * 8 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let (Some(&x), Some(&w)) = (x_row.get(at), values.next()) else {
                        continue;
                    };
                    acc =
                        acc.wrapping_add(i32::from(x).wrapping_sub(zp).wrapping_mul(i32::from(w)));
                }
            }
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
