//! Converting between real values and int8 with a tensor's `(scale, zero_point)`:
//! how a host or device feeds floats in and reads probabilities out.
//!
//! `real = scale · (q − zero_point)`.
#![forbid(unsafe_code)]

use crate::error::Error;

/// `clamp(round(x / scale) + zero_point, −128, 127)`, rounding halves away
/// from zero (as `f32::round` does).
///
/// Total for any input: infinities saturate, NaN maps to `zero_point`
/// (clamped), and a non-positive or non-finite `scale` follows IEEE division
/// (the file validator guarantees real tensor scales are finite and positive).
pub fn quantize(x: f32, scale: f32, zero_point: i32) -> i8 {
    quantize_unclamped(x, scale, zero_point).clamp(-128, 127) as i8
}

/// [`quantize`] before the clamp: the integer `x` rounds to, which lies
/// outside −128..=127 exactly when `quantize` clips it.
fn quantize_unclamped(x: f32, scale: f32, zero_point: i32) -> i64 {
    let v = round_half_away(x / scale);
    // `as` saturates at the i64 range and sends NaN to 0.
    (v as i64).saturating_add(i64::from(zero_point))
}

/// `scale · (q − zero_point)`, for an int8 or int16 value.
pub fn dequantize<Q: Into<i64>>(q: Q, scale: f32, zero_point: i32) -> f32 {
    scale * (q.into() - i64::from(zero_point)) as f32
}

/// [`quantize`] element by element; [`Error::LengthMismatch`] unless the
/// slices have equal lengths.
pub fn quantize_slice(
    input: &[f32],
    scale: f32,
    zero_point: i32,
    output: &mut [i8],
) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::LengthMismatch {
            expected: output.len(),
            got: input.len(),
        });
    }
    for (q, &x) in output.iter_mut().zip(input) {
        *q = quantize(x, scale, zero_point);
    }
    Ok(())
}

/// [`quantize_slice`] for values from outside (sensor data, files): refuses
/// a non-finite value with [`Error::NonFiniteInput`] naming the first one,
/// before writing anything, and returns how many values fell outside the
/// range `output` can represent (`scale · (−128 − zero_point)` to
/// `scale · (127 − zero_point)`, the range calibrated for an input tensor)
/// and were clipped to −128 or 127. A value within half a step of an end
/// rounds onto it and is not counted.
pub fn quantize_checked<Q: Copy + TryFrom<i64> + Bounded>(
    input: &[f32],
    scale: f32,
    zero_point: i32,
    output: &mut [Q],
) -> Result<usize, Error> {
    if input.len() != output.len() {
        return Err(Error::LengthMismatch {
            expected: output.len(),
            got: input.len(),
        });
    }
    if let Some(index) = input.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteInput { index });
    }
    let mut clipped = 0;
    for (q, &x) in output.iter_mut().zip(input) {
        let v = quantize_unclamped(x, scale, zero_point);
        clipped += usize::from(!(Q::MIN..=Q::MAX).contains(&v));
        if let Ok(c) = Q::try_from(v.clamp(Q::MIN, Q::MAX)) {
            *q = c;
        }
    }
    Ok(clipped)
}

/// An integer type a graph input is quantized into: its range.
pub trait Bounded {
    const MIN: i64;
    const MAX: i64;
}

impl Bounded for i8 {
    const MIN: i64 = -128;
    const MAX: i64 = 127;
}

impl Bounded for i16 {
    const MIN: i64 = -32768;
    const MAX: i64 = 32767;
}

/// [`dequantize`] element by element; [`Error::LengthMismatch`] unless the
/// slices have equal lengths.
pub fn dequantize_slice<Q: Copy + Into<i64>>(
    input: &[Q],
    scale: f32,
    zero_point: i32,
    output: &mut [f32],
) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::LengthMismatch {
            expected: output.len(),
            got: input.len(),
        });
    }
    for (x, &q) in output.iter_mut().zip(input) {
        *x = dequantize(q, scale, zero_point);
    }
    Ok(())
}

/// Round half away from zero without libm. Exact: below 2^23 the fraction
/// `v − trunc(v)` is representable, and from 2^23 up every `f32` is an integer.
fn round_half_away(v: f32) -> f32 {
    const INTEGRAL_FROM: f32 = 8_388_608.0; // 2^23
    if v.is_nan() || v >= INTEGRAL_FROM || v <= -INTEGRAL_FROM {
        return v; // NaN, infinite or already integral
    }
    let t = v as i32 as f32;
    let frac = v - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_halves_away_from_zero() {
        assert_eq!(quantize(0.5, 1.0, 0), 1);
        assert_eq!(quantize(-0.5, 1.0, 0), -1);
        assert_eq!(quantize(1.5, 1.0, 0), 2);
        assert_eq!(quantize(-2.5, 1.0, 0), -3);
        assert_eq!(quantize(0.49999997, 1.0, 0), 0);
        assert_eq!(quantize(-0.49999997, 1.0, 0), 0);
        assert_eq!(quantize(2.4, 1.0, 0), 2);
    }

    #[test]
    fn applies_scale_zero_point_and_clamp() {
        assert_eq!(quantize(1.0, 0.1, 5), 15);
        assert_eq!(quantize(-1.0, 0.1, 5), -5);
        assert_eq!(quantize(1000.0, 0.1, 0), 127);
        assert_eq!(quantize(-1000.0, 0.1, 0), -128);
        assert_eq!(quantize(0.0, 0.5, -128), -128);
        assert_eq!(quantize(f32::INFINITY, 1.0, 0), 127);
        assert_eq!(quantize(f32::NEG_INFINITY, 1.0, 0), -128);
        assert_eq!(quantize(f32::NAN, 1.0, 7), 7);
        assert_eq!(quantize(3e9, 1.0, -100), 127);
    }

    #[test]
    fn checked_quantize_counts_clipped_values_and_refuses_non_finite() {
        // scale 0.5, zp 0: representable −64.0..=63.5; ±0.25 past an end
        // still rounds onto it (not clipped), ±0.25 more does not.
        let x = [0.0, 63.5, 63.74, 63.75, 100.0, -64.0, -64.24, -64.25, -1e30];
        let mut q = [0i8; 9];
        assert_eq!(quantize_checked(&x, 0.5, 0, &mut q), Ok(4));
        assert_eq!(q, [0, 127, 127, 127, 127, -128, -128, -128, -128]);
        // The zero point shifts the range: with zp 100, 14.0 is q = 128.
        let mut one = [0i8; 1];
        assert_eq!(quantize_checked(&[13.5], 0.5, 100, &mut one), Ok(0));
        assert_eq!(quantize_checked(&[14.0], 0.5, 100, &mut one), Ok(1));

        let mut q = [7i8; 3];
        for (bad, index) in [(f32::NAN, 1), (f32::INFINITY, 1), (f32::NEG_INFINITY, 1)] {
            assert_eq!(
                quantize_checked(&[1.0, bad, f32::NAN], 0.5, 0, &mut q),
                Err(Error::NonFiniteInput { index })
            );
            assert_eq!(q, [7; 3], "nothing written before the refusal");
        }
        assert_eq!(
            quantize_checked(&[1.0], 0.5, 0, &mut q),
            Err(Error::LengthMismatch {
                expected: 3,
                got: 1
            })
        );
    }

    #[test]
    fn dequantize_inverts_on_the_grid() {
        assert_eq!(dequantize(15, 0.5, 5), 5.0);
        assert_eq!(dequantize(-128, 1.0 / 256.0, -128), 0.0);
        assert_eq!(dequantize(127, 1.0 / 256.0, -128), 255.0 / 256.0);
        for q in i8::MIN..=i8::MAX {
            assert_eq!(quantize(dequantize(q, 0.037, -3), 0.037, -3), q);
        }
    }

    #[test]
    fn slices_check_lengths() {
        let mut q = [0i8; 3];
        quantize_slice(&[0.0, 1.0, -1.0], 0.5, 1, &mut q).unwrap();
        assert_eq!(q, [1, 3, -1]);
        let mut x = [0f32; 3];
        dequantize_slice(&q, 0.5, 1, &mut x).unwrap();
        assert_eq!(x, [0.0, 1.0, -1.0]);
        assert_eq!(
            quantize_slice(&[0.0], 1.0, 0, &mut q),
            Err(Error::LengthMismatch {
                expected: 3,
                got: 1
            })
        );
        assert_eq!(
            dequantize_slice(&q, 1.0, 0, &mut x[..2]),
            Err(Error::LengthMismatch {
                expected: 2,
                got: 3
            })
        );
    }
}
