//! Broadcasting binary ops beyond Add and Mul: Sub, Div, Min and Max.

use super::act_ok;
use super::elementwise::{broadcast_binary, rescaled};
#[cfg(feature = "int16-activations")]
use super::{
    elementwise::{add_sides_ok, requantized_binary, sides_ok},
    Lane, OperandLane,
};
use crate::kernels::{AddParams, Broadcast4, MinMaxParams, MulParams};
use crate::numerics::{clamp, requantize, requantize_to_i8};

/// Fraction bits of the quotient [`div_s8`] requantizes: `(a−za)·2^16 / (b−zb)`.
pub const DIV_FRACTION_BITS: u32 = 16;

/// Quantized subtraction with numpy broadcasting: [`add_s8`](super::add_s8)
/// with the rescaled `b` subtracted,
/// `y = requantize_to_i8(requantize((a−za)<<ls, am, as) − requantize((b−zb)<<ls, bm, bs), om, os, zy, act_min, act_max)`,
/// the difference saturating in `i32`.
///
/// Same layout and early returns as `add_s8`.
pub fn sub_s8(p: &AddParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    if !(0..=20).contains(&p.left_shift) || !act_ok(p.act_min, p.act_max) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x, y| {
        requantize_to_i8(
            rescaled(p, i32::from(x), i32::from(y), i32::saturating_sub),
            p.out_multiplier,
            p.out_shift,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
    });
}

/// [`sub_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0): the same formula and rounding, so on int8
/// lanes it is [`sub_s8`] bit for bit. The early returns of
/// [`add_s16`](super::add_s16) (a left shift of at most 15 with an int16
/// operand).
#[cfg(feature = "int16-activations")]
pub fn sub_s16<A: OperandLane, B: OperandLane, Y: Lane>(
    p: &AddParams,
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
) {
    if !add_sides_ok::<A, B, Y>(p) {
        return;
    }
    requantized_binary(
        (bc, a, b, output),
        (p.out_multiplier, p.out_shift),
        (p.output_zero_point, p.act_min, p.act_max),
        |x, y| i64::from(rescaled(p, x, y, i32::saturating_sub)),
    );
}

/// [`div_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0): the same quotient (an int16 numerator times
/// 2^16 stays below 2^32) and requantization, so on int8 lanes it is
/// [`div_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn div_s16<A: OperandLane, B: OperandLane, Y: Lane>(
    p: &MulParams,
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
) {
    let zero_points = (p.a_zero_point, p.b_zero_point, p.output_zero_point);
    if !sides_ok::<A, B, Y>(zero_points, (p.act_min, p.act_max)) {
        return;
    }
    requantized_binary(
        (bc, a, b, output),
        (p.out_multiplier, p.out_shift),
        (p.output_zero_point, p.act_min, p.act_max),
        |x, y| {
            let num = i64::from(x) - i64::from(p.a_zero_point);
            i64::from(quotient(num, i64::from(y) - i64::from(p.b_zero_point)))
        },
    );
}

/// [`min_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0); on int8 lanes it is [`min_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn min_s16<A: OperandLane, B: OperandLane, Y: Lane>(
    p: &MinMaxParams,
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
) {
    min_max_s16(p, bc, a, b, output, i32::min);
}

/// [`max_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0); on int8 lanes it is [`max_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn max_s16<A: OperandLane, B: OperandLane, Y: Lane>(
    p: &MinMaxParams,
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
) {
    min_max_s16(p, bc, a, b, output, i32::max);
}

#[cfg(feature = "int16-activations")]
fn min_max_s16<A: OperandLane, B: OperandLane, Y: Lane>(
    p: &MinMaxParams,
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
    pick: impl Fn(i32, i32) -> i32,
) {
    let zero_points = (p.a_zero_point, p.b_zero_point, p.output_zero_point);
    if !sides_ok::<A, B, Y>(zero_points, (p.act_min, p.act_max)) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x: A, y: B| {
        let xa = requantize(
            Into::<i32>::into(x).wrapping_sub(p.a_zero_point),
            p.a_multiplier,
            p.a_shift,
        );
        let xb = requantize(
            Into::<i32>::into(y).wrapping_sub(p.b_zero_point),
            p.b_multiplier,
            p.b_shift,
        );
        let v = pick(xa, xb).saturating_add(p.output_zero_point);
        Y::from_clamped(clamp(v, p.act_min, p.act_max))
    });
}

/// Quantized division with numpy broadcasting:
/// `y = requantize_to_i8(q, om, os, zy, act_min, act_max)` with the quotient
/// `q = round((a−za)·2^16 / (b−zb))`, halves away from zero. Division by
/// zero (`b == zb`) gives `q = 0` for `a == za` and `±i32::MAX` otherwise
/// (the sign of `a−za`), which saturates like a float infinity.
///
/// Same layout and early returns as `mul_s8`.
pub fn div_s8(p: &MulParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    if !act_ok(p.act_min, p.act_max) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x, y| {
        let num = i64::from(x) - i64::from(p.a_zero_point);
        let den = i64::from(y) - i64::from(p.b_zero_point);
        requantize_to_i8(
            quotient(num, den),
            p.out_multiplier,
            p.out_shift,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
    });
}

/// `round(num · 2^16 / den)`, halves away from zero; see [`div_s8`].
fn quotient(num: i64, den: i64) -> i32 {
    if den == 0 {
        return match num {
            0 => 0,
            n if n > 0 => i32::MAX,
            _ => -i32::MAX,
        };
    }
    let (n, d) = (
        (num.unsigned_abs()) << DIV_FRACTION_BITS,
        den.unsigned_abs(),
    );
    let q = (2 * n + d) / (2 * d);
    // |num| <= 2^32 from i32 zero points, so q < 2^49; saturate to i32.
    let q = i64::try_from(q)
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    let negative = (num < 0) != (den < 0);
    (if negative { -q } else { q }) as i32
}

/// Elementwise minimum with broadcasting; see [`MinMaxParams`].
///
/// Same layout and early returns as `mul_s8`.
pub fn min_s8(p: &MinMaxParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    min_max(p, bc, a, b, output, i32::min);
}

/// Elementwise maximum with broadcasting; see [`MinMaxParams`].
///
/// Same layout and early returns as `mul_s8`.
pub fn max_s8(p: &MinMaxParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    min_max(p, bc, a, b, output, i32::max);
}

fn min_max(
    p: &MinMaxParams,
    bc: &Broadcast4,
    a: &[i8],
    b: &[i8],
    output: &mut [i8],
    pick: impl Fn(i32, i32) -> i32,
) {
    if !act_ok(p.act_min, p.act_max) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x, y| {
        let xa = requantize(
            i32::from(x).wrapping_sub(p.a_zero_point),
            p.a_multiplier,
            p.a_shift,
        );
        let xb = requantize(
            i32::from(y).wrapping_sub(p.b_zero_point),
            p.b_multiplier,
            p.b_shift,
        );
        let v = pick(xa, xb).saturating_add(p.output_zero_point);
        clamp(v, p.act_min, p.act_max) as i8
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: (i32, i32) = (1 << 30, 1); // multiplier 1.0

    #[test]
    fn div_rounds_half_away_and_saturates_on_zero() {
        assert_eq!(quotient(3, 2), 3 << 15);
        assert_eq!(quotient(1, 3), 21845); // 65536/3 = 21845.33
        assert_eq!(quotient(2, 3), 43691); // 43690.67
        assert_eq!(quotient(-1, 2), -32768);
        assert_eq!(quotient(1, -65536), -1); // 65536/65536 → −1
        assert_eq!(quotient(5, 0), i32::MAX);
        assert_eq!(quotient(-5, 0), -i32::MAX);
        assert_eq!(quotient(0, 0), 0);
    }

    #[test]
    fn div_by_tensor_with_zero_points() {
        // Output multiplier 2^-16 undoes the quotient's fraction bits.
        let p = MulParams {
            a_zero_point: 1,
            b_zero_point: -1,
            output_zero_point: 3,
            out_multiplier: ONE.0,
            out_shift: ONE.1 - 16,
            act_min: -128,
            act_max: 127,
        };
        let bc = Broadcast4::new(&[4], &[1]).unwrap();
        let mut y = [0i8; 4];
        // b − zb = 2: (a − 1)/2 + 3 with a = [9, 0, 2, −2] → [7, 2.5→3, 3.5→4, 1.5→2]
        div_s8(&p, &bc, &[9, 0, 2, -2], &[1], &mut y);
        assert_eq!(y, [7, 3, 4, 2]);
    }

    #[test]
    fn min_max_rescale_then_compare() {
        let p = MinMaxParams {
            a_zero_point: 0,
            b_zero_point: 10,
            output_zero_point: -1,
            a_multiplier: ONE.0,
            a_shift: ONE.1,
            b_multiplier: ONE.0,
            b_shift: 0, // b at half scale
            act_min: -128,
            act_max: 127,
        };
        let bc = Broadcast4::new(&[3], &[3]).unwrap();
        let (mut lo, mut hi) = ([0i8; 3], [0i8; 3]);
        // b rescaled: (20−10)/2 = 5, (0−10)/2 = −5, (16−10)/2 = 3
        min_s8(&p, &bc, &[4, -6, 3], &[20, 0, 16], &mut lo);
        max_s8(&p, &bc, &[4, -6, 3], &[20, 0, 16], &mut hi);
        assert_eq!(lo, [3, -7, 2]);
        assert_eq!(hi, [4, -6, 2]);
    }

    #[test]
    fn sub_is_add_of_the_negation() {
        let p = AddParams {
            a_zero_point: 2,
            b_zero_point: -3,
            output_zero_point: 5,
            left_shift: 0,
            a_multiplier: ONE.0,
            a_shift: ONE.1,
            b_multiplier: ONE.0,
            b_shift: ONE.1,
            out_multiplier: ONE.0,
            out_shift: ONE.1,
            act_min: -128,
            act_max: 127,
        };
        let bc = Broadcast4::new(&[2, 2], &[2]).unwrap();
        let mut y = [0i8; 4];
        // (a−2) − (b+3) + 5 = a − b
        sub_s8(&p, &bc, &[10, 0, -100, 120], &[3, -7], &mut y);
        assert_eq!(y, [7, 7, -103, 127]);
    }
}
