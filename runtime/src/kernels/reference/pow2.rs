//! Conv and FullyConnected over power-of-two weights (`0` or `±2^e`, 4-bit
//! codes, [`Pow2Rows`]): each product is a shift.
//!
//! `(x − zp) · (±2^e)` is `±((x − zp) << e)` exactly (`|x − zp| <= 255` and
//! `e <= 6` stay far inside `i32`), so these kernels are bit-exact with
//! [`conv_s8`](super::conv_s8) and
//! [`fully_connected_s8`](super::fully_connected_s8) on the decoded weights.
//! What they save is storage (4 bits a weight) and, on cores whose multiply
//! is slow, the multiplier.

use super::conv::{conv_weight_count, preconditions_hold};
use super::{act_ok, mul3, Taps};
use crate::kernels::{ConvParams, FullyConnectedParams};
use crate::numerics::requantize_to_i8;
use crate::pow2::Pow2Rows;

/// `v · decode(code)` as a shift: code `s·8 + c` is 0 for `c = 0`, else
/// `(−1)^s · 2^(c−1)`.
#[inline(always)]
fn shifted(v: i32, code: u8) -> i32 {
    let c = code & 7;
    if c == 0 {
        return 0;
    }
    let t = v << (c - 1);
    if code & 8 != 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

/// [`conv_s8`](super::conv_s8) with `weights` as [`Pow2Rows`] of
/// `out_channels` rows of `in_channels/groups · kernel_h · kernel_w`, in the
/// dense kernel's order.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `conv_s8`, or when `weights` does not have that shape or is not well
/// formed ([`Pow2Rows::is_well_formed`]).
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
        && weights.is_well_formed();
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
    let w_plane = p.kernel_h * p.kernel_w;
    let zp = p.input_zero_point;

    let per_oc = output
        .chunks_exact_mut(out_plane)
        .zip(bias.iter().zip(multiplier).zip(shift));
    for (oc, (out_oc, ((&b, &m), &s))) in per_oc.enumerate() {
        let s = i32::from(s);
        let codes = weights.row(oc);
        let in_group = input.get((oc / cout_g) * cin_g * in_plane..).unwrap_or(&[]);
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for (ox, y) in out_row.iter_mut().enumerate() {
                let tx = Taps::new(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
                let mut acc = b;
                for icg in 0..cin_g {
                    for (j, ky) in (ty.lo..ty.hi).enumerate() {
                        let iy = ty.first + j * p.dilation_h;
                        let in_start = icg * in_plane + iy * p.in_w + tx.first;
                        let k_start = icg * w_plane + ky * p.kernel_w;
                        let xs = in_group.get(in_start..).unwrap_or(&[]);
                        let ks = k_start + tx.lo..k_start + tx.hi;
                        for (&x, k) in xs.iter().step_by(p.dilation_w).zip(ks) {
                            let code = Pow2Rows::code(codes, k);
                            acc = acc.wrapping_add(shifted(i32::from(x) - zp, code));
                        }
                    }
                }
                *y = requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
            }
        }
    }
}

/// [`fully_connected_s8`](super::fully_connected_s8) with `weights` as
/// [`Pow2Rows`] of `out_features` rows of `in_features`: each code byte
/// gives two terms.
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// `fully_connected_s8`, or when `weights` does not have that shape or is
/// not well formed.
pub fn fully_connected_pow2_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &Pow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = p.rows.checked_mul(p.in_features) == Some(input.len())
        && weights.rows == p.out_features
        && weights.row_len == p.in_features
        && weights.is_well_formed()
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
        let per_n = out_row
            .iter_mut()
            .zip(bias.iter().zip(multiplier).zip(shift));
        for (n, (y, ((&b, &m), &s))) in per_n.enumerate() {
            let codes = weights.row(n);
            // An odd row's last byte pairs its weight with the 0 padding code,
            // and `chunks` gives that last input alone.
            let acc = x_row.chunks(2).zip(codes).fold(b, |acc, (xs, &byte)| {
                let lo = xs
                    .first()
                    .map_or(0, |&x| shifted(i32::from(x) - zp, byte & 0x0f));
                let hi = xs
                    .get(1)
                    .map_or(0, |&x| shifted(i32::from(x) - zp, byte >> 4));
                acc.wrapping_add(lo).wrapping_add(hi)
            });
            let s = i32::from(s);
            *y = requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_are_the_products() {
        for code in 0u8..16 {
            if code == 8 {
                continue; // not a code
            }
            let w = i32::from(crate::pow2::decode(code));
            for v in -255..=255 {
                assert_eq!(shifted(v, code), v * w, "v {v} code {code}");
            }
        }
    }
}
