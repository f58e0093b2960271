//! Requantize: the rescale between int8 and int16 activations at the edges
//! of a model's int16 layers.

use crate::kernels::RequantizeParams;
use crate::numerics::{clamp, requantize};

/// `y = clamp(zp_y + requantize(x − zp_x, m, s), lo, hi)` for each element,
/// the addition saturating in `i32`.
#[inline(always)]
fn rescale<X: Copy + Into<i32>, Y: TryFrom<i32>>(
    p: &RequantizeParams,
    (lo, hi): (i32, i32),
    input: &[X],
    output: &mut [Y],
) {
    if input.len() != output.len() {
        return;
    }
    for (y, &x) in output.iter_mut().zip(input) {
        let x = x.into().saturating_sub(p.input_zero_point);
        let v = requantize(x, p.multiplier, p.shift).saturating_add(p.output_zero_point);
        // `clamp` into the output type's range makes the conversion exact.
        if let Ok(v) = Y::try_from(clamp(v, lo, hi)) {
            *y = v;
        }
    }
}

/// int8 to int16: `y = clamp(requantize(x − input_zero_point, m, s),
/// −32768, 32767)` (the int16 output is symmetric).
///
/// Returns early, leaving `output` unchanged, unless the slices have the
/// same length and `output_zero_point` is 0.
pub fn requantize_s8_s16(p: &RequantizeParams, input: &[i8], output: &mut [i16]) {
    if p.output_zero_point == 0 {
        rescale(p, (-32768, 32767), input, output);
    }
}

/// int16 to int8: `y = clamp(output_zero_point + requantize(x, m, s), −128,
/// 127)` (the int16 input is symmetric).
///
/// Returns early, leaving `output` unchanged, unless the slices have the
/// same length and `input_zero_point` is 0.
pub fn requantize_s16_s8(p: &RequantizeParams, input: &[i16], output: &mut [i8]) {
    if p.input_zero_point == 0 {
        rescale(p, (-128, 127), input, output);
    }
}

/// int16 to int16 (another scale): `y = clamp(requantize(x, m, s), −32768,
/// 32767)`.
///
/// Returns early, leaving `output` unchanged, unless the slices have the
/// same length and both zero points are 0.
pub fn requantize_s16_s16(p: &RequantizeParams, input: &[i16], output: &mut [i16]) {
    if p.input_zero_point == 0 && p.output_zero_point == 0 {
        rescale(p, (-32768, 32767), input, output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(m: i32, s: i32, zx: i32, zy: i32) -> RequantizeParams {
        RequantizeParams {
            input_zero_point: zx,
            output_zero_point: zy,
            multiplier: m,
            shift: s,
        }
    }

    #[test]
    fn s8_to_s16_scales_up_and_saturates() {
        // Multiplier 256 (m = 2^30, s = 9), zp_x = −3: (x + 3) · 256;
        // 130 · 256 = 33280 saturates at 32767.
        let p = params(1 << 30, 9, -3, 0);
        let mut y = [0i16; 4];
        requantize_s8_s16(&p, &[-3, -128, 127, 0], &mut y);
        assert_eq!(y, [0, -32000, 32767, 768]);
        // Multiplier 512: 130 · 512 = 66560 saturates at 32767, −125 · 512 at −32768.
        let p = params(1 << 30, 10, -3, 0);
        requantize_s8_s16(&p, &[127, -128, 0, 1], &mut y);
        assert_eq!(y, [32767, -32768, 1536, 2048]);
    }

    #[test]
    fn s16_to_s8_rounds_halves_up_and_adds_the_zero_point() {
        // Multiplier 1/256 (m = 2^30, s = −7), zp_y = 10.
        // 384/256 = 1.5 → 2; −384/256 = −1.5 → −1; 32767/256 = 127.99 → 128 + 10 → 127.
        let p = params(1 << 30, -7, 0, 10);
        let mut y = [0i8; 4];
        requantize_s16_s8(&p, &[384, -384, 32767, -32768], &mut y);
        assert_eq!(y, [12, 9, 127, -118]);
    }

    #[test]
    fn s16_to_s16_and_preconditions() {
        // Multiplier 0.5: 3 → 1.5 → 2; −3 → −1.5 → −1.
        let p = params(1 << 30, 0, 0, 0);
        let mut y = [7i16; 2];
        requantize_s16_s16(&p, &[3, -3], &mut y);
        assert_eq!(y, [2, -1]);
        // A length mismatch or a zero point on an int16 side: untouched.
        let mut y = [7i16; 2];
        requantize_s16_s16(&p, &[3], &mut y);
        requantize_s16_s16(&params(1 << 30, 0, 1, 0), &[3, 3], &mut y);
        requantize_s8_s16(&params(1 << 30, 0, 0, 1), &[3, 3], &mut y);
        assert_eq!(y, [7, 7]);
        let mut y = [7i8; 2];
        requantize_s16_s8(&params(1 << 30, 0, 1, 0), &[3, 3], &mut y);
        assert_eq!(y, [7, 7]);
    }
}
