//! Fully connected layer (Gemm / MatMul with constant weights).

use super::act_ok;
#[cfg(feature = "int16-activations")]
use super::WeightLane;
use crate::kernels::FullyConnectedParams;
use crate::numerics::requantize_to_i8;

/// `y = x · Wᵀ + b` over the last axis, quantized.
///
/// `input` is `[rows, in_features]`, `weights` `[out_features, in_features]`
/// (symmetric, zero point 0), `bias`, `multiplier` and `shift` have
/// `out_features` entries, `output` is `[rows, out_features]`.
///
/// `acc = bias[n] + Σ_k (x[r][k] − input_zero_point) · w[n][k]` in wrapping
/// `i32`; `y[r][n] = requantize_to_i8(acc, multiplier[n], shift[n],
/// output_zero_point, act_min, act_max)`.
///
/// Returns early, leaving `output` unchanged, unless every slice has exactly
/// the length above and `-128 <= act_min <= act_max <= 127`.
pub fn fully_connected_s8(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = p.dense_weights_fit(weights.len())
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len());
    if !lens_ok || !act_ok(p.act_min, p.act_max) || output.is_empty() {
        return;
    }
    // `output` is non-empty, so `out_features` is non-zero; `in_features` may
    // be 0 (then every output is its requantized bias), so rows of the input
    // and weights are sliced rather than chunked.
    let k = p.in_features;
    let zp = p.input_zero_point;
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let x_row = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        let per_n = out_row
            .iter_mut()
            .zip(bias.iter().zip(multiplier).zip(shift));
        for (n, (y, ((&b, &m), &s))) in per_n.enumerate() {
            let w_row = weights.get(n * k..(n + 1) * k).unwrap_or(&[]);
            let acc = x_row.iter().zip(w_row).fold(b, |acc, (&x, &w)| {
                acc.wrapping_add(i32::from(x).wrapping_sub(zp).wrapping_mul(i32::from(w)))
            });
            let s = i32::from(s);
            *y = requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
        }
    }
}

/// `y = x · Wᵀ + b` with int16 activations and int8 weights (TFLite's 16x8
/// scheme): the operands of [`fully_connected_s8`], with symmetric `i16`
/// input and output (zero points 0).
///
/// `acc = bias[n] + Σ_k x[r][k] · w[n][k]` in `i64` (exact: a term is below
/// 2^22 in magnitude); `y[r][n] = clamp(requantize_i64(acc, multiplier[n],
/// shift[n]), act_min, act_max)`.
///
/// Returns early, leaving `output` unchanged, unless every slice has exactly
/// the length above, `-32768 <= act_min <= act_max <= 32767` and both zero
/// points are 0.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`fully_connected_s16`] reading an int8 input (asymmetric):
/// `acc = bias[n] + Σ_k (x[r][k] − input_zero_point) · w[n][k]` in `i64`.
/// Also returns early unless the input zero point is within `i16` (the
/// loader admits int8 ones only), which keeps each product inside `i32`.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s8_s16(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`fully_connected_s16`] writing an int8 output: `y = clamp(requantize_i64(acc,
/// multiplier[n], shift[n]) + output_zero_point, act_min, act_max)` with
/// `-128 <= act_min <= act_max <= 127`.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_s8(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`fully_connected_s16`] with int16 weights (16x16): `acc = bias[n] +
/// Σ_k x[r][k] · w[n][k]` in `i64`, each term exact in `i32` (below 2^30.01).
/// For the few layers whose int8 weights limit a model; the reference is
/// the kernel on every target.
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_w16(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`fully_connected_s8_s16`] with int16 weights (see
/// [`fully_connected_s16_w16`]).
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s8_s16_w16(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// [`fully_connected_s16_s8`] with int16 weights (see
/// [`fully_connected_s16_w16`]).
#[cfg(feature = "int16-activations")]
pub fn fully_connected_s16_s8_w16(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    fully_connected_lanes(p, input, weights, bias, multiplier, shift, output);
}

/// The one loop of the mixed-precision FullyConnected kernels, generic in
/// the input, output and weight types.
#[cfg(feature = "int16-activations")]
fn fully_connected_lanes<X: super::Lane + Into<i32>, Y: super::Lane, W: WeightLane>(
    p: &FullyConnectedParams,
    input: &[X],
    weights: &[W],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [Y],
) {
    let lens_ok = p.dense_weights_fit(weights.len())
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len());
    let lanes_ok = super::lanes_ok::<X, Y>(
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    );
    if !lens_ok || !lanes_ok || output.is_empty() || i16::try_from(p.input_zero_point).is_err() {
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
            let w_row = weights.get(n * k..(n + 1) * k).unwrap_or(&[]);
            // Exact `i32` partial sums, added up in `i64` (wrapping only to
            // stay total: it would take K ≥ 2^40).
            let parts = x_row
                .chunks(W::I32_EXACT_TERMS)
                .zip(w_row.chunks(W::I32_EXACT_TERMS));
            let acc = parts.fold(i64::from(b), |acc, (xs, ws)| {
                acc.wrapping_add(i64::from(super::dot_i32(xs, ws, zp)))
            });
            *y = super::requantize_to_lane(
                acc,
                m,
                i32::from(s),
                p.output_zero_point,
                p.act_min,
                p.act_max,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rows: usize, k: usize, n: usize) -> FullyConnectedParams {
        FullyConnectedParams {
            rows,
            in_features: k,
            out_features: n,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn two_rows_three_outputs() {
        // x = [[1, 2], [-3, 4]], zp 1 -> x − zp = [[0, 1], [-4, 3]]
        // W = [[1, 1], [2, -1], [0, 5]], bias [10, 0, -3], multiplier 1.0
        // row 0: [0 + 1 + 10, 0 − 1 + 0, 0 + 5 − 3] = [11, −1, 2]
        // row 1: [−4 + 3 + 10, −8 − 3 + 0, 0 + 15 − 3] = [9, −11, 12]
        // Output zero point 2 shifts everything up by 2.
        let mut p = params(2, 2, 3);
        p.input_zero_point = 1;
        p.output_zero_point = 2;
        let mut y = [0i8; 6];
        fully_connected_s8(
            &p,
            &[1, 2, -3, 4],
            &[1, 1, 2, -1, 0, 5],
            &[10, 0, -3],
            &[1 << 30; 3],
            &[1; 3],
            &mut y,
        );
        assert_eq!(y, [13, 1, 4, 11, -9, 14]);
    }

    #[test]
    fn per_output_requant_rounding() {
        // One row, K = 1, x = [5]; W = [[1], [-1], [3]]; multipliers 0.5, 0.5, 0.25.
        // 5·0.5 = 2.5 -> 3;  −5·0.5 = −2.5 -> −2 (halves go up);  15·0.25 = 3.75 -> 4
        let p = params(1, 1, 3);
        let mut y = [0i8; 3];
        fully_connected_s8(
            &p,
            &[5],
            &[1, -1, 3],
            &[0; 3],
            &[1 << 30; 3],
            &[0, 0, -1],
            &mut y,
        );
        assert_eq!(y, [3, -2, 4]);
    }

    #[test]
    fn saturates_and_clamps() {
        // K = 4 of 127·127 = 64516 -> far above 127; negated -> below −128.
        let p = params(1, 4, 2);
        let mut y = [0i8; 2];
        let w = [127, 127, 127, 127, -127, -127, -127, -127];
        fully_connected_s8(&p, &[127; 4], &w, &[0; 2], &[1 << 30; 2], &[1; 2], &mut y);
        assert_eq!(y, [127, -128]);
        // Activation window [0, 6]: 64516 -> 6, −64516 -> 0.
        let mut p = p;
        p.act_min = 0;
        p.act_max = 6;
        fully_connected_s8(&p, &[127; 4], &w, &[0; 2], &[1 << 30; 2], &[1; 2], &mut y);
        assert_eq!(y, [6, 0]);
    }

    #[test]
    fn zero_in_features_gives_requantized_bias() {
        // K = 0: acc = bias. Bias [7, −9] at multiplier 0.5 -> 3.5 -> 4, −4.5 -> −4.
        let p = params(2, 0, 2);
        let mut y = [0i8; 4];
        fully_connected_s8(&p, &[], &[], &[7, -9], &[1 << 30; 2], &[0; 2], &mut y);
        assert_eq!(y, [4, -4, 4, -4]);
    }

    #[test]
    fn precondition_failures_leave_output_untouched() {
        let p = params(1, 2, 1);
        let mut y = [42i8; 1];
        fully_connected_s8(&p, &[1], &[1, 1], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [42]);
        fully_connected_s8(&p, &[1, 1], &[1, 1], &[0, 0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [42]);
        let mut q = p;
        q.act_min = -200;
        fully_connected_s8(&q, &[1, 1], &[1, 1], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [42]);
        q = p;
        q.rows = usize::MAX;
        fully_connected_s8(&q, &[1, 1], &[1, 1], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [42]);
        fully_connected_s8(&p, &[1, 1], &[1, 1], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [2]);
    }
}
