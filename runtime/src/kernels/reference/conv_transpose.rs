//! Transposed convolution (grouped; 1-D is `H = 1`).

use super::{act_ok, mul3};
use crate::kernels::ConvTransposeParams;
use crate::numerics::requantize_to_i8;

/// Quantized transposed convolution, NCHW, batch 1. Each output is
/// requantized once from one accumulator; the accumulators of a row are
/// summed a tile at a time along contiguous input rows (below).
///
/// `input` is `[in_channels, in_h, in_w]`, `weights` `[out_channels,
/// in_channels/groups, kernel_h, kernel_w]` (symmetric; ONNX's
/// `[in_channels, out_channels/groups, kH, kW]` regrouped by output
/// channel), `bias`, `multiplier` and `shift` have `out_channels` entries,
/// `output` is `[out_channels, out_h, out_w]`. Output channel `oc` of group
/// `g = oc / (out_channels/groups)` reads input channels `g·in_channels/groups ..`.
///
/// `acc = bias[oc] + Σ (x[ic, iy, ix] − input_zero_point) · w[oc, ic, ky, kx]`
/// over the taps with `iy = (oy + pad_top − ky·dilation_h) / stride_h` exact
/// and inside the input (likewise `ix`), in wrapping `i32`;
/// `y = requantize_to_i8(acc, multiplier[oc], shift[oc], output_zero_point, act_min, act_max)`.
///
/// Returns early, leaving `output` unchanged, unless: every slice has exactly
/// the length above; `groups >= 1` divides both channel counts; kernel,
/// stride and dilation are non-zero; and `-128 <= act_min <= act_max <= 127`.
pub fn conv_transpose_s8(
    p: &ConvTransposeParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens = [input.len(), weights.len(), output.len()];
    if !preconditions_hold(p, lens, bias, multiplier, shift) || !act_ok(p.act_min, p.act_max) {
        return;
    }
    let (zy, lo, hi) = (p.output_zero_point, p.act_min, p.act_max);
    sum_rows(
        p,
        input,
        weights,
        (bias, multiplier, shift),
        output,
        |acc: i32, term| acc.wrapping_add(term),
        |acc, m, s| requantize_to_i8(acc, m, s, zy, lo, hi),
    );
}

/// [`conv_transpose_s8`] where the input or the output is an int16
/// activation (symmetric, zero point 0): a decoder's upsampling in an int16
/// run. The sum is exact in `i64` (terms `(x − zx)·w` are below 2^22.01)
/// and requantized by [`requantize_i64`](crate::numerics::requantize_i64);
/// on int8 lanes it is [`conv_transpose_s8`] bit for bit wherever that
/// kernel's `i32` sum does not wrap.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_s16<X, Y>(
    p: &ConvTransposeParams,
    input: &[X],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [Y],
) where
    X: super::Lane + Into<i32>,
    Y: super::Lane,
{
    let lens = [input.len(), weights.len(), output.len()];
    let (zx, zy, lo, hi) = (
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    );
    if !preconditions_hold(p, lens, bias, multiplier, shift)
        || !super::lanes_ok::<X, Y>(zx, zy, lo, hi)
    {
        return;
    }
    sum_rows(
        p,
        input,
        weights,
        (bias, multiplier, shift),
        output,
        |acc: i64, term| acc.wrapping_add(i64::from(term)),
        |acc, m, s| super::requantize_to_lane(acc, m, s, zy, lo, hi),
    );
}

/// Outputs of one row summed at a time: a stack tile of accumulators, so
/// that the taps run along contiguous input rows (no heap).
const TILE: usize = 64;

/// The sum both kernels share, a tile of outputs of one row at a time (64
/// accumulators on the stack: 256 B for int8, 512 B for int16):
/// each output's accumulator starts at its bias and `add`s every tap's
/// `(x − zx)·w` (exact in `i32`), scattered along the input row that reaches
/// it; then it is `write`n with its channel's multiplier and shift. Every
/// output gets the same terms as the per-output formula of the doc comment
/// (`add` wraps or is exact, so their order does not matter).
fn sum_rows<X, Y, A>(
    p: &ConvTransposeParams,
    input: &[X],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    add: impl Fn(A, i32) -> A,
    write: impl Fn(A, i32, i32) -> Y,
) where
    X: Copy + Into<i32>,
    A: Copy + From<i32>,
{
    if output.is_empty() {
        return;
    }
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let w_plane = p.kernel_h * p.kernel_w;
    let out_plane = p.out_h * p.out_w;
    let per_oc = output
        .chunks_exact_mut(out_plane)
        .zip(bias.iter().zip(multiplier).zip(shift));
    for (oc, (out_oc, ((&b, &m), &s))) in per_oc.enumerate() {
        let w_oc = weights.get(oc * cin_g * w_plane..).unwrap_or(&[]);
        let x_group = input.get((oc / cout_g) * cin_g * in_plane..).unwrap_or(&[]);
        for (oy, out_row) in out_oc.chunks_exact_mut(p.out_w).enumerate() {
            for (t, y_tile) in out_row.chunks_mut(TILE).enumerate() {
                let first = t * TILE;
                let mut acc = [A::from(b); TILE];
                let acc = &mut acc[..y_tile.len()];
                for ky in 0..p.kernel_h {
                    let Some(iy) = source(oy, ky, p.stride_h, p.dilation_h, p.pad_top, p.in_h)
                    else {
                        continue;
                    };
                    for ci in 0..cin_g {
                        let x_row = x_group.get(ci * in_plane + iy * p.in_w..).unwrap_or(&[]);
                        let w_row = w_oc
                            .get((ci * p.kernel_h + ky) * p.kernel_w..)
                            .unwrap_or(&[]);
                        for (kx, &w) in w_row.iter().take(p.kernel_w).enumerate() {
                            let (ix, a0) = row_span(p, kx, first, acc.len());
                            let Some(xs) = x_row.get(ix) else {
                                continue;
                            };
                            let w = i32::from(w);
                            match p.stride_w {
                                // Contiguous slots: the common unit stride.
                                1 => {
                                    let slots = acc.iter_mut().skip(a0);
                                    for (&x, a) in xs.iter().zip(slots) {
                                        let term = x.into().wrapping_sub(p.input_zero_point);
                                        *a = add(*a, term.wrapping_mul(w));
                                    }
                                }
                                stride => {
                                    let slots = acc.get_mut(a0..).unwrap_or(&mut []);
                                    for (&x, a) in xs.iter().zip(slots.chunks_mut(stride)) {
                                        let term = x.into().wrapping_sub(p.input_zero_point);
                                        a[0] = add(a[0], term.wrapping_mul(w));
                                    }
                                }
                            }
                        }
                    }
                }
                for (y, &a) in y_tile.iter_mut().zip(acc.iter()) {
                    *y = write(a, m, i32::from(s));
                }
            }
        }
    }
}

/// The inputs `ix` that tap `kx` carries into outputs `first..first + len`
/// of a row (`ox = ix·stride + kx·dilation − pad_left`), and the tile slot
/// of the first of them (the rest follow every `stride` slots).
fn row_span(
    p: &ConvTransposeParams,
    kx: usize,
    first: usize,
    len: usize,
) -> (core::ops::Range<usize>, usize) {
    // Positions in i64: `kx·dilation − pad` may be negative; every factor
    // is a slice length or a small window parameter, far inside i64.
    let offset = (kx * p.dilation_w) as i64 - p.pad_left as i64;
    let stride = p.stride_w as i64;
    // The smallest ix with ix·stride + offset ≥ first, and the first with
    // ix·stride + offset ≥ first + len.
    let lowest = |bound: i64| ((bound - offset).max(0) + stride - 1) / stride;
    let start = lowest(first as i64).min(p.in_w as i64);
    let end = lowest((first + len) as i64).clamp(start, p.in_w as i64);
    let slot = start * stride + offset - first as i64;
    (start as usize..end as usize, slot.max(0) as usize)
}

/// The input position tap `k` of output `o` reads along one axis:
/// `(o + pad − k·dilation) / stride` when exact and inside `0..in_len`.
#[inline]
fn source(
    o: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    in_len: usize,
) -> Option<usize> {
    let t = o.checked_add(pad)?.checked_sub(k.checked_mul(dilation)?)?;
    let i = t.checked_div(stride)?;
    (t % stride == 0 && i < in_len).then_some(i)
}

/// The geometry and slice lengths (`[input, weights, output]`) the doc
/// comment of [`conv_transpose_s8`] requires.
fn preconditions_hold(
    p: &ConvTransposeParams,
    [input, weights, output]: [usize; 3],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
) -> bool {
    let groups_ok = p.groups != 0
        && p.in_channels.is_multiple_of(p.groups)
        && p.out_channels.is_multiple_of(p.groups);
    let geometry_ok = [p.kernel_h, p.kernel_w, p.stride_h, p.stride_w]
        .iter()
        .chain(&[p.dilation_h, p.dilation_w])
        .all(|&v| v != 0);
    if !groups_ok || !geometry_ok {
        return false;
    }
    let cin_g = p.in_channels / p.groups;
    let lens = (
        mul3(p.in_channels, p.in_h, p.in_w),
        mul3(p.out_channels, cin_g, p.kernel_h).and_then(|n| n.checked_mul(p.kernel_w)),
        mul3(p.out_channels, p.out_h, p.out_w),
    );
    lens == (Some(input), Some(weights), Some(output))
        && bias.len() == p.out_channels
        && multiplier.len() == p.out_channels
        && shift.len() == p.out_channels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiplier 1.0 (`m = 2^30, s = 1`) so outputs show the raw accumulator.
    const ONE: (i32, i8) = (1 << 30, 1);

    fn params_1d(
        cin: usize,
        cout: usize,
        in_w: usize,
        out_w: usize,
        k: usize,
    ) -> ConvTransposeParams {
        ConvTransposeParams {
            in_channels: cin,
            in_h: 1,
            in_w,
            out_channels: cout,
            out_h: 1,
            out_w,
            kernel_h: 1,
            kernel_w: k,
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
    fn stride_two_scatters_each_input_over_the_kernel() {
        // x = [1, 2, 3], kernel [1, 10], stride 2: out = (3−1)·2 + 2 = 6.
        // Each x[i] lands at 2i (·1) and 2i+1 (·10): [1, 10, 2, 20, 3, 30].
        let mut p = params_1d(1, 1, 3, 6, 2);
        p.stride_w = 2;
        let mut y = [0i8; 6];
        conv_transpose_s8(&p, &[1, 2, 3], &[1, 10], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [1, 10, 2, 20, 3, 30]);
    }

    #[test]
    fn overlapping_taps_add_and_pads_crop() {
        // x = [1, 2, 3] with zero point 1 → [0, 1, 2]; kernel [1, 1, 1],
        // stride 1, pad 1 both ends: out = 2 + 3 − 2 = 3, bias 5.
        // Full (unpadded) result of [0, 1, 2] ⊛ [1, 1, 1] is [0, 1, 3, 3, 2];
        // cropping one each end leaves [1, 3, 3]; plus bias: [6, 8, 8].
        let mut p = params_1d(1, 1, 3, 3, 3);
        p.pad_left = 1;
        p.input_zero_point = 1;
        let mut y = [0i8; 3];
        conv_transpose_s8(&p, &[1, 2, 3], &[1, 1, 1], &[5], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [6, 8, 8]);
    }

    #[test]
    fn groups_read_their_own_channels() {
        // 2 input channels, 2 groups, 1 output channel per group, kernel 1:
        // oc0 = 2·x0, oc1 = 3·x1. Output padding adds a tail that no tap
        // reaches: out_w 3 for in_w 2, holding just the bias (0 here).
        let mut p = params_1d(2, 2, 2, 3, 1);
        p.groups = 2;
        let mut y = [9i8; 6];
        let x = [1, 2, 3, 4];
        conv_transpose_s8(&p, &x, &[2, 3], &[0, 0], &[ONE.0; 2], &[ONE.1; 2], &mut y);
        assert_eq!(y, [2, 4, 0, 9, 12, 0]);
    }

    #[test]
    fn bad_lengths_leave_the_output_alone() {
        let p = params_1d(1, 1, 3, 3, 1);
        let mut y = [7i8; 3];
        conv_transpose_s8(&p, &[1, 2], &[1], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [7; 3]);
        let mut p = p;
        p.stride_w = 0;
        conv_transpose_s8(&p, &[1, 2, 3], &[1], &[0], &[ONE.0], &[ONE.1], &mut y);
        assert_eq!(y, [7; 3]);
    }
}
