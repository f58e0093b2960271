//! 2-D convolution (grouped and depthwise included; 1-D is `H = 1`).

use super::{act_ok, axis_ok, mul3, Taps};
#[cfg(feature = "int16-activations")]
use super::{lanes_ok, requantize_to_lane, Lane, WeightLane};
use crate::kernels::ConvParams;
use crate::numerics::requantize_to_i8;

/// Quantized convolution, NCHW, batch 1.
///
/// `input` is `[in_channels, in_h, in_w]`, `weights` `[out_channels,
/// in_channels/groups, kernel_h, kernel_w]` (symmetric, zero point 0),
/// `bias`, `multiplier` and `shift` have `out_channels` entries, `output` is
/// `[out_channels, out_h, out_w]`. Output channel `oc` of group
/// `g = oc / (out_channels/groups)` reads input channels
/// `g·in_channels/groups ..`.
///
/// `acc = bias[oc] + Σ (x − input_zero_point) · w` over the window taps that
/// fall inside the input (padding contributes nothing), in wrapping `i32`;
/// `y = requantize_to_i8(acc, multiplier[oc], shift[oc], output_zero_point, act_min, act_max)`.
///
/// Returns early, leaving `output` unchanged, unless: every slice has exactly
/// the length above; `groups >= 1` divides both channel counts; kernel,
/// stride and dilation are non-zero; window positions fit in `usize`; and
/// `-128 <= act_min <= act_max <= 127`.
pub fn conv_s8(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let weights_ok = conv_weight_count(p) == Some(weights.len());
    if !weights_ok
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
    let w_per_oc = cin_g * w_plane;
    let zp = p.input_zero_point;

    // `output` is non-empty, so `out_plane` and `out_w` are non-zero.
    let per_oc = output
        .chunks_exact_mut(out_plane)
        .zip(bias.iter().zip(multiplier).zip(shift));
    for (oc, (out_oc, ((&b, &m), &s))) in per_oc.enumerate() {
        let s = i32::from(s);
        let w_oc = weights.get(oc * w_per_oc..).unwrap_or(&[]);
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
                        let w_start = icg * w_plane + ky * p.kernel_w;
                        let xs = in_group.get(in_start..).unwrap_or(&[]);
                        let ws = weights_row(w_oc, w_start, tx);
                        for (&x, &w) in xs.iter().step_by(p.dilation_w).zip(ws) {
                            let term = i32::from(x).wrapping_sub(zp).wrapping_mul(i32::from(w));
                            acc = acc.wrapping_add(term);
                        }
                    }
                }
                *y = requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
            }
        }
    }
}

/// The weights of the valid taps `tx` in the kernel row starting at `start`.
#[inline]
fn weights_row(w_oc: &[i8], start: usize, tx: Taps) -> &[i8] {
    w_oc.get(start + tx.lo..start + tx.hi).unwrap_or(&[])
}

/// `out_channels · in_channels/groups · kernel_h · kernel_w`, the dense
/// weight count (`None` on overflow or zero groups).
pub(super) fn conv_weight_count(p: &ConvParams) -> Option<usize> {
    let cin_g = p.in_channels.checked_div(p.groups)?;
    mul3(p.out_channels, cin_g, p.kernel_h).and_then(|n| n.checked_mul(p.kernel_w))
}

/// The geometry, activation range and per-channel vectors are valid, and
/// `input` has its length (the weights and output are the callers' checks).
pub(super) fn preconditions_hold(
    p: &ConvParams,
    input: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
) -> bool {
    act_ok(p.act_min, p.act_max) && shape_holds(p, input.len(), bias, multiplier, shift)
}

/// [`preconditions_hold`] without the activation range, which depends on
/// the output type.
fn shape_holds(
    p: &ConvParams,
    input_len: usize,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
) -> bool {
    let groups_ok = p.groups != 0
        && p.in_channels.is_multiple_of(p.groups)
        && p.out_channels.is_multiple_of(p.groups);
    groups_ok
        && axis_ok(
            p.out_h,
            p.stride_h,
            p.kernel_h,
            p.dilation_h,
            p.pad_top,
            p.in_h,
        )
        && axis_ok(
            p.out_w,
            p.stride_w,
            p.kernel_w,
            p.dilation_w,
            p.pad_left,
            p.in_w,
        )
        && mul3(p.in_channels, p.in_h, p.in_w) == Some(input_len)
        && bias.len() == p.out_channels
        && multiplier.len() == p.out_channels
        && shift.len() == p.out_channels
}

/// Quantized convolution with int16 activations and int8 weights (TFLite's
/// 16x8 scheme), NCHW, batch 1: the operands and geometry of [`conv_s8`],
/// with symmetric `i16` input and output (zero points 0).
///
/// `acc = bias[oc] + Σ x · w` over the window taps inside the input, in
/// `i64` (exact: a tap adds less than 2^22); `y = clamp(requantize_i64(acc,
/// multiplier[oc], shift[oc]), act_min, act_max)`.
///
/// Returns early, leaving `output` unchanged, on the conditions of
/// [`conv_s8`] with `-32768 <= act_min <= act_max <= 32767` in place of the
/// `i8` window, and unless both zero points are 0.
#[cfg(feature = "int16-activations")]
pub fn conv_s16(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`conv_s16`] reading an int8 input (asymmetric): the first layer of an
/// int16 run. `acc = bias[oc] + Σ (x − input_zero_point) · w` in `i64`.
/// Also returns early unless the input zero point is within `i16` (the
/// loader admits int8 ones only), which keeps each product inside `i32`.
#[cfg(feature = "int16-activations")]
pub fn conv_s8_s16(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`conv_s16`] writing an int8 output: the layer after an int16 run.
/// `y = clamp(requantize_i64(acc, multiplier[oc], shift[oc]) +
/// output_zero_point, act_min, act_max)` with `-128 <= act_min <= act_max <= 127`.
#[cfg(feature = "int16-activations")]
pub fn conv_s16_s8(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`conv_s16`] with int16 weights (16x16): `acc = bias[oc] + Σ x · w` in
/// `i64`, each term exact in `i32` (below 2^30.01). For the few layers whose
/// int8 weights limit a model; the reference is the kernel on every target.
#[cfg(feature = "int16-activations")]
pub fn conv_s16_w16(
    p: &ConvParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`conv_s8_s16`] with int16 weights (see [`conv_s16_w16`]).
#[cfg(feature = "int16-activations")]
pub fn conv_s8_s16_w16(
    p: &ConvParams,
    input: &[i8],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`conv_s16_s8`] with int16 weights (see [`conv_s16_w16`]).
#[cfg(feature = "int16-activations")]
pub fn conv_s16_s8_w16(
    p: &ConvParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// Output positions per pass of [`conv_lanes`]: their `i64` totals and
/// `i32` sums (768 B) live on the stack. 64 rather than 32 spreads each
/// tap's bookkeeping over twice the outputs: 15% fewer instructions on the
/// Cortex-M4's ECG convs.
#[cfg(feature = "int16-activations")]
const ROW_TILE: usize = 64;

/// The one loop of [`conv_s16`], [`conv_s8_s16`] and [`conv_s16_s8`] (and
/// their `_w16` forms), generic in the input, output and weight types.
///
/// Tap-major over a tile of an output row: each weight is loaded once per
/// tile and added into every output of the tile whose tap lies inside the
/// input, so the inner loop is one multiply-add per MAC with no window
/// bookkeeping (a window-major loop spends most of its time on short
/// per-pixel tap loops). The sums are exact in `i64`, so the order does not
/// change the result.
/// The preconditions of the mixed-precision convolutions reading `X` and
/// writing `Y`, given the slice lengths: what every int16 conv kernel
/// (reference or optimized) checks before it writes.
#[cfg(feature = "int16-activations")]
pub(crate) fn lanes_call_ok<X: Lane, Y: Lane>(
    p: &ConvParams,
    input_len: usize,
    weights_len: usize,
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output_len: usize,
) -> bool {
    conv_weight_count(p) == Some(weights_len)
        && shape_holds(p, input_len, bias, multiplier, shift)
        && lanes_ok::<X, Y>(
            p.input_zero_point,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
        && mul3(p.out_channels, p.out_h, p.out_w) == Some(output_len)
        && output_len > 0
        && i16::try_from(p.input_zero_point).is_ok()
}

#[cfg(feature = "int16-activations")]
fn conv_lanes<X: Lane + Into<i32>, Y: Lane, W: WeightLane>(
    p: &ConvParams,
    input: &[X],
    weights: &[W],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [Y],
) {
    if !lanes_call_ok::<X, Y>(
        p,
        input.len(),
        weights.len(),
        (bias, multiplier, shift),
        output.len(),
    ) {
        return;
    }
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let w_plane = p.kernel_h * p.kernel_w;
    let w_per_oc = cin_g * w_plane;
    // Within `i16`, so `(x − zp) · w` is below 2^24 in magnitude.
    let zp = p.input_zero_point;

    // `output` is non-empty, so `out_plane` and `out_w` are non-zero.
    let per_oc = output
        .chunks_exact_mut(out_plane)
        .zip(bias.iter().zip(multiplier).zip(shift));
    for (oc, (out_oc, ((&b, &m), &s))) in per_oc.enumerate() {
        let s = i32::from(s);
        let w_oc = weights.get(oc * w_per_oc..).unwrap_or(&[]);
        let in_group = input.get((oc / cout_g) * cin_g * in_plane..).unwrap_or(&[]);
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for (tile, out_tile) in out_row.chunks_mut(ROW_TILE).enumerate() {
                let ox0 = tile * ROW_TILE;
                let n = out_tile.len();
                let mut totals = [i64::from(b); ROW_TILE];
                let totals = totals.get_mut(..n).unwrap_or(&mut []);
                let mut sums = [0i32; ROW_TILE];
                let sums = sums.get_mut(..n).unwrap_or(&mut []);
                let mut taps = 0;
                // Column taps outermost: which outputs a tap reaches depends
                // on its column only.
                for kx in 0..p.kernel_w {
                    let (lo, hi, first) = tap_outputs(p, kx, ox0, n);
                    for icg in 0..cin_g {
                        for (j, ky) in (ty.lo..ty.hi).enumerate() {
                            let iy = ty.first + j * p.dilation_h;
                            let row = icg * in_plane + iy * p.in_w;
                            let xs = in_group.get(row + first..row + p.in_w).unwrap_or(&[]);
                            let w = w_oc
                                .get(icg * w_plane + ky * p.kernel_w + kx)
                                .map_or(0, |&w| w.into());
                            let lanes = sums.get_mut(lo..hi).unwrap_or(&mut []);
                            match p.stride_w {
                                1 => add_tap(lanes, xs.iter(), zp, w),
                                stride => add_tap(lanes, xs.iter().step_by(stride), zp, w),
                            }
                            taps += 1;
                            if taps == W::I32_EXACT_TERMS {
                                flush(totals, sums);
                                taps = 0;
                            }
                        }
                    }
                }
                flush(totals, sums);
                for (y, &acc) in out_tile.iter_mut().zip(totals.iter()) {
                    *y = requantize_to_lane(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
                }
            }
        }
    }
}

/// `sums[i] += (xs[i] − zp) · w` for each sum, in `i32`: exact within
/// [`WeightLane::I32_EXACT_TERMS`] taps, and a load, a multiply-add and a
/// store per MAC where `i64` sums would take twice that.
#[cfg(feature = "int16-activations")]
#[inline(always)]
fn add_tap<'x, X: Lane + Into<i32> + 'x>(
    sums: &mut [i32],
    xs: impl Iterator<Item = &'x X>,
    zp: i32,
    w: i32,
) {
    for (acc, &x) in sums.iter_mut().zip(xs) {
        *acc = acc.wrapping_add((Into::<i32>::into(x) - zp) * w);
    }
}

/// Adds the `i32` sums into the `i64` totals and clears them.
#[cfg(feature = "int16-activations")]
#[inline(always)]
fn flush(totals: &mut [i64], sums: &mut [i32]) {
    for (t, s) in totals.iter_mut().zip(sums.iter_mut()) {
        // Wrapping only to stay total: 2^40 taps would be needed.
        *t = t.wrapping_add(i64::from(*s));
        *s = 0;
    }
}

/// For column tap `kx` and the `n` outputs from `ox0`: the outputs
/// `ox0 + lo .. ox0 + hi` whose tap lies inside the input row, and the
/// input index of the first. `ix = ox·stride + kx·dilation − pad_left`
/// must lie in `0..in_w`. Total; exact when `axis_ok` holds.
#[cfg(feature = "int16-activations")]
fn tap_outputs(p: &ConvParams, kx: usize, ox0: usize, n: usize) -> (usize, usize, usize) {
    let stride = p.stride_w.max(1);
    let offset = kx.saturating_mul(p.dilation_w);
    let first_out = p.pad_left.saturating_sub(offset).div_ceil(stride);
    let reach = p.in_w.saturating_add(p.pad_left);
    let end_out = reach.saturating_sub(offset).div_ceil(stride);
    let lo = first_out.saturating_sub(ox0).min(n);
    let hi = end_out.saturating_sub(ox0).min(n).max(lo);
    let first = (ox0 + lo)
        .saturating_mul(stride)
        .saturating_add(offset)
        .saturating_sub(p.pad_left);
    (lo, hi, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiplier 1.0 (`m = 2^30, s = 1`) so outputs show the raw accumulator.
    const ONE: (i32, i8) = (1 << 30, 1);

    /// `params([Cin, H, W], [Cout, out_h, out_w], [kH, kW])`, stride and
    /// dilation 1, no pads, one group, zero points 0, no activation.
    fn params(input: [usize; 3], output: [usize; 3], kernel: [usize; 2]) -> ConvParams {
        ConvParams {
            in_channels: input[0],
            in_h: input[1],
            in_w: input[2],
            out_channels: output[0],
            out_h: output[1],
            out_w: output[2],
            kernel_h: kernel[0],
            kernel_w: kernel[1],
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            groups: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn single_channel_3x3_valid() {
        // x = 1..=9 as a 3x3 image, 2x2 kernel [[1, 2], [3, 4]], bias 10.
        // y[0][0] = 10 + 1 + 2·2 + 3·4 + 4·5 = 10 + 1 + 4 + 12 + 20 = 47
        // y[0][1] = 10 + 2 + 2·3 + 3·5 + 4·6 = 10 + 2 + 6 + 15 + 24 = 57
        // y[1][0] = 10 + 4 + 2·5 + 3·7 + 4·8 = 10 + 4 + 10 + 21 + 32 = 77
        // y[1][1] = 10 + 5 + 2·6 + 3·8 + 4·9 = 10 + 5 + 12 + 24 + 36 = 87
        let p = params([1, 3, 3], [1, 2, 2], [2, 2]);
        let x = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let w = [1, 2, 3, 4];
        let mut y = [0i8; 4];
        conv_s8(&p, &x, &w, &[10], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [47, 57, 77, 87]);
    }

    #[test]
    fn input_zero_point_and_padding() {
        // 1x2x2 input with zero point 3: x − zp = [[1, -1], [2, 0]] from x = [[4, 2], [5, 3]].
        // 3x3 kernel of ones, pad 1 all round, out 2x2: each output sums the
        // valid part of its window, and padded taps add nothing (not −zp·w).
        // Every 3x3 window around a 2x2 image covers all 4 pixels: 1 − 1 + 2 + 0 = 2.
        let mut p = params([1, 2, 2], [1, 2, 2], [3, 3]);
        p.pad_top = 1;
        p.pad_left = 1;
        p.input_zero_point = 3;
        let mut y = [0i8; 4];
        conv_s8(&p, &[4, 2, 5, 3], &[1; 9], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [2, 2, 2, 2]);
    }

    #[test]
    fn stride_and_asymmetric_padding() {
        // 1-D in disguise: 1x1x5 input [1, 2, 3, 4, 5], kernel [1, 10, 100],
        // stride 2, pad_left 1 (and 1 implied on the right): out 3.
        // Multiplier 0.25 (m = 2^30, s = -1), rounding halves up.
        // o0 taps at -1, 0, 1: 10·1 + 100·2 = 210 -> 52.5 -> 53
        // o1 taps at 1, 2, 3: 2 + 30 + 400 = 432 -> 108
        // o2 taps at 3, 4, 5: 4 + 50 = 54 -> 13.5 -> 14
        let mut p = params([1, 1, 5], [1, 1, 3], [1, 3]);
        p.stride_w = 2;
        p.pad_left = 1;
        let mut y = [0i8; 3];
        conv_s8(
            &p,
            &[1, 2, 3, 4, 5],
            &[1, 10, 100],
            &[0],
            &[1 << 30],
            &[-1],
            &mut y,
        );
        assert_eq!(y, [53, 108, 14]);
    }

    #[test]
    fn dilation() {
        // 1x1x7 input 0..7, kernel [1, 1, 1] dilated by 3 (span 7), pad 3 on
        // the left only: out_w = (7 + 3 − 7) / 1 + 1 = 4, windows start at -3..=0:
        // o0: -3, 0, 3 -> 0 + 3 = 3
        // o1: -2, 1, 4 -> 1 + 4 = 5
        // o2: -1, 2, 5 -> 2 + 5 = 7
        // o3:  0, 3, 6 -> 0 + 3 + 6 = 9
        let mut p = params([1, 1, 7], [1, 1, 4], [1, 3]);
        p.dilation_w = 3;
        p.pad_left = 3;
        let mut y = [0i8; 4];
        conv_s8(
            &p,
            &[0, 1, 2, 3, 4, 5, 6],
            &[1, 1, 1],
            &[0],
            &[ONE.0],
            &[ONE.1],
            &mut y,
        );
        assert_eq!(y, [3, 5, 7, 9]);
    }

    #[test]
    fn dilation_in_height() {
        // 1x5x1 column 1..=5, 2x1 kernel [1, 2] dilated by 2 in H: rows o, o+2.
        // out_h 3: 1 + 2·3 = 7, 2 + 2·4 = 10, 3 + 2·5 = 13
        let mut p = params([1, 5, 1], [1, 3, 1], [2, 1]);
        p.dilation_h = 2;
        let mut y = [0i8; 3];
        conv_s8(
            &p,
            &[1, 2, 3, 4, 5],
            &[1, 2],
            &[0],
            &[ONE.0],
            &[ONE.1],
            &mut y,
        );
        assert_eq!(y, [7, 10, 13]);
    }

    #[test]
    fn multi_channel_per_channel_requant() {
        // Cin 2 (1x1 images x = [3, -2]), Cout 2, 1x1 kernel.
        // oc0 weights [2, 1]: 6 − 2 = 4, bias 1 -> 5, multiplier 1.0 -> 5
        // oc1 weights [1, -4]: 3 + 8 = 11, bias -1 -> 10, multiplier 0.5 -> 5
        // (oc1 with m = 2^30, s = 0.)
        let p = params([2, 1, 1], [2, 1, 1], [1, 1]);
        let mut y = [0i8; 2];
        conv_s8(
            &p,
            &[3, -2],
            &[2, 1, 1, -4],
            &[1, -1],
            &[1 << 30, 1 << 30],
            &[1, 0],
            &mut y,
        );
        assert_eq!(y, [5, 5]);
    }

    #[test]
    fn grouped() {
        // Cin 4, Cout 2, groups 2: oc0 reads channels 0, 1; oc1 reads 2, 3.
        // 1x1 images x = [1, 2, 3, 4], weights oc0 [1, 1], oc1 [1, -1].
        // oc0 = 1 + 2 = 3; oc1 = 3 − 4 = −1
        let mut p = params([4, 1, 1], [2, 1, 1], [1, 1]);
        p.groups = 2;
        let mut y = [0i8; 2];
        conv_s8(
            &p,
            &[1, 2, 3, 4],
            &[1, 1, 1, -1],
            &[0, 0],
            &[ONE.0; 2],
            &[ONE.1; 2],
            &mut y,
        );
        assert_eq!(y, [3, -1]);
    }

    #[test]
    fn depthwise_with_multiplier() {
        // Depthwise: Cin 2, groups 2, Cout 4 (channel multiplier 2), 1x3 input
        // per channel, 1x2 kernels, out 1x2.
        // ch0 = [1, 2, 3], ch1 = [-1, 0, 5]
        // oc0 (ch0, w [1, 1]):  [3, 5]
        // oc1 (ch0, w [0, 2]):  [4, 6]
        // oc2 (ch1, w [1, 0]):  [-1, 0]
        // oc3 (ch1, w [-1, 1]): [1, 5]
        let mut p = params([2, 1, 3], [4, 1, 2], [1, 2]);
        p.groups = 2;
        let w = [1, 1, 0, 2, 1, 0, -1, 1];
        let mut y = [0i8; 8];
        conv_s8(
            &p,
            &[1, 2, 3, -1, 0, 5],
            &w,
            &[0; 4],
            &[ONE.0; 4],
            &[ONE.1; 4],
            &mut y,
        );
        assert_eq!(y, [3, 5, 4, 6, -1, 0, 1, 5]);
    }

    #[test]
    fn saturation_and_activation_clamp() {
        // x = [127, -128], w = [127, -127] on one 1x1 output per channel pair:
        // acc = 127·127 + (−128)(−127) = 16129 + 16256 = 32385 -> saturates to 127.
        let p = params([2, 1, 1], [1, 1, 1], [1, 1]);
        let mut y = [0i8; 1];
        conv_s8(
            &p,
            &[127, -128],
            &[127, -127],
            &[0],
            &[ONE.0],
            &[ONE.1],
            &mut y,
        );
        assert_eq!(y, [127]);
        // Negated weights: −32385 saturates to −128.
        conv_s8(
            &p,
            &[127, -128],
            &[-127, 127],
            &[0],
            &[ONE.0],
            &[ONE.1],
            &mut y,
        );
        assert_eq!(y, [-128]);
        // Fused ReLU with output zero point −10: acc −50 + zp −10 = −60 -> clamp to −10.
        let mut p = p;
        p.output_zero_point = -10;
        p.act_min = -10;
        conv_s8(&p, &[-50, 0], &[1, 0], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [-10]);
        // ReLU6-style upper clamp at 20: acc 50 − 10 = 40 -> 20.
        p.act_max = 20;
        conv_s8(&p, &[50, 0], &[1, 0], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [20]);
    }

    #[test]
    fn extreme_requant_shifts() {
        // Bias 3, multiplier 2^30 at the top shift (≈ 2^29): 3·2^29 saturates i32,
        // then i8: 127. At the bottom shift (≈ 2^-32): 3 rounds to 0 -> y = zp 7.
        let p = params([1, 1, 1], [1, 1, 1], [1, 1]);
        let mut y = [0i8; 1];
        conv_s8(&p, &[0], &[0], &[3], &[1 << 30], &[30], &mut y);
        assert_eq!(y, [127]);
        let mut p = p;
        p.output_zero_point = 7;
        conv_s8(&p, &[0], &[0], &[3], &[1 << 30], &[-31], &mut y);
        assert_eq!(y, [7]);
    }

    #[test]
    fn window_fully_in_padding_outputs_bias() {
        // 1x1 input, 1x1 kernel, pad 1 on the left: out_w 2 where the first
        // output reads only padding -> acc = bias 5; the second reads x = 2, w 3 -> 11.
        let mut p = params([1, 1, 1], [1, 1, 2], [1, 1]);
        p.pad_left = 1;
        p.input_zero_point = 100;
        let mut y = [0i8; 2];
        // x − zp = 102 − 100 = 2 → 5 + 6 = 11.
        conv_s8(&p, &[102], &[3], &[5], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [5, 11]);
    }

    #[test]
    fn precondition_failures_leave_output_untouched() {
        let p = params([1, 2, 2], [1, 1, 1], [2, 2]);
        let ok = |p: &ConvParams, x: &[i8], y: &mut [i8]| {
            conv_s8(p, x, &[1; 4], &[0], &[ONE.0], &[ONE.1], y)
        };
        let mut y = [99i8; 1];
        ok(&p, &[1; 3], &mut y); // short input
        assert_eq!(y, [99]);
        let mut q = p;
        q.groups = 0;
        ok(&q, &[1; 4], &mut y);
        assert_eq!(y, [99]);
        q = p;
        q.stride_w = 0;
        ok(&q, &[1; 4], &mut y);
        assert_eq!(y, [99]);
        q = p;
        q.act_max = 200;
        ok(&q, &[1; 4], &mut y);
        assert_eq!(y, [99]);
        q = p;
        q.out_w = usize::MAX; // absurd geometry: length check fails, no overflow panic
        ok(&q, &[1; 4], &mut y);
        assert_eq!(y, [99]);
        // Sanity: the valid call writes 4.
        ok(&p, &[1; 4], &mut y);
        assert_eq!(y, [4]);
    }
}
