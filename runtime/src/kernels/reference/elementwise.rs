//! Broadcasting binary ops: Add and Mul.

use super::act_ok;
#[cfg(feature = "int16-activations")]
use super::{lanes_ok, requantize_to_lane, Lane, OperandLane};
use crate::kernels::{AddParams, Broadcast4, MulParams};
use crate::numerics::{requantize, requantize_to_i8};

/// Quantized add with numpy broadcasting (TFLite style):
/// `y = requantize_to_i8(requantize((a−za)<<ls, am, as) + requantize((b−zb)<<ls, bm, bs), om, os, zy, act_min, act_max)`,
/// the sum saturating in `i32`.
///
/// `a`, `b` and `output` are row-major with the shapes `bc` was built from;
/// `output` has `bc.out_len()` elements.
///
/// Returns early, leaving `output` unchanged, unless `output` has
/// `bc.out_len()` elements, every strided read stays inside `a` and `b`,
/// `0 <= left_shift <= 20`, and `-128 <= act_min <= act_max <= 127`. With
/// zero points in `[-128, 127]`, `(x − z) << 20` fits `i32`.
pub fn add_s8(p: &AddParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    if !(0..=20).contains(&p.left_shift) || !act_ok(p.act_min, p.act_max) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x, y| {
        let sum = rescaled(p, i32::from(x), i32::from(y), i32::saturating_add);
        requantize_to_i8(
            sum,
            p.out_multiplier,
            p.out_shift,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
    });
}

/// [`add_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0): a residual stream kept at int16. The same
/// formula and rounding, so on int8 lanes it is [`add_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0, the
/// activation window lies within `Y`, and `left_shift <= 15` when an
/// operand is int16 (`(x − 0) << 15` is at most 2^30 in magnitude, so the
/// shifted operand still fits `i32`).
#[cfg(feature = "int16-activations")]
pub fn add_s16<A: OperandLane, B: OperandLane, Y: Lane>(
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
        |x, y| i64::from(rescaled(p, x, y, i32::saturating_add)),
    );
}

/// The early returns of [`add_s16`] (and Sub's): the left shift, and each
/// side's lane.
#[cfg(feature = "int16-activations")]
pub(super) fn add_sides_ok<A: Lane, B: Lane, Y: Lane>(p: &AddParams) -> bool {
    let max_shift = match A::SYMMETRIC || B::SYMMETRIC {
        true => MAX_ADD_LEFT_SHIFT_S16,
        false => 20,
    };
    (0..=max_shift).contains(&p.left_shift)
        && sides_ok::<A, B, Y>(
            (p.a_zero_point, p.b_zero_point, p.output_zero_point),
            (p.act_min, p.act_max),
        )
}

/// Each side's zero point and the activation window fit its lane (an
/// int16 side's zero point is 0, the window lies within `Y`).
#[cfg(feature = "int16-activations")]
pub(super) fn sides_ok<A: Lane, B: Lane, Y: Lane>(
    (za, zb, zy): (i32, i32, i32),
    (act_min, act_max): (i32, i32),
) -> bool {
    (!B::SYMMETRIC || zb == 0) && lanes_ok::<A, Y>(za, zy, act_min, act_max)
}

/// [`mul_s8`] where either operand or the output is an int16 activation
/// (symmetric, zero point 0): the product `(a−za)·(b−zb)` in `i64` (up to
/// 2^30.01 with two int16 sides), then the same requantization, so on int8
/// lanes it is [`mul_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn mul_s16<A: OperandLane, B: OperandLane, Y: Lane>(
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
            (i64::from(x) - i64::from(p.a_zero_point)) * (i64::from(y) - i64::from(p.b_zero_point))
        },
    );
}

/// Largest Add left shift with an int16 operand (see [`add_s16`]).
#[cfg(feature = "int16-activations")]
pub const MAX_ADD_LEFT_SHIFT_S16: i32 = 15;

/// Add's (Sub's) two operands shifted left, each rescaled to the common
/// scale, and `combine`d (a saturating sum or difference in `i32`): what
/// the Add and Sub kernels requantize.
#[inline(always)]
pub(super) fn rescaled(p: &AddParams, x: i32, y: i32, combine: impl Fn(i32, i32) -> i32) -> i32 {
    let ls = p.left_shift;
    let xa = x.wrapping_sub(p.a_zero_point) << ls;
    let xb = y.wrapping_sub(p.b_zero_point) << ls;
    combine(
        requantize(xa, p.a_multiplier, p.a_shift),
        requantize(xb, p.b_multiplier, p.b_shift),
    )
}

/// `output[i] = requantize_to_lane(f(a[ia], b[ib]))` over the broadcast
/// index space, with the output words `(multiplier, shift)` and
/// `(zero point, act_min, act_max)`: the int16 kernels of the math ops.
#[cfg(feature = "int16-activations")]
#[inline(always)]
pub(super) fn requantized_binary<A: OperandLane, B: OperandLane, Y: Lane>(
    (bc, a, b, output): (&Broadcast4, &[A], &[B], &mut [Y]),
    (multiplier, shift): (i32, i32),
    (zero_point, act_min, act_max): (i32, i32, i32),
    f: impl Fn(i32, i32) -> i64,
) {
    broadcast_binary(bc, a, b, output, |x: A, y: B| {
        let acc = f(Into::<i32>::into(x), Into::<i32>::into(y));
        requantize_to_lane(acc, multiplier, shift, zero_point, act_min, act_max)
    });
}

/// Quantized multiply with numpy broadcasting:
/// `y = requantize_to_i8((a−za)·(b−zb), om, os, zy, act_min, act_max)`.
///
/// Same layout and early returns as [`add_s8`] (without the shift rule).
pub fn mul_s8(p: &MulParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    if !act_ok(p.act_min, p.act_max) {
        return;
    }
    broadcast_binary(bc, a, b, output, |x, y| {
        let prod = i32::from(x)
            .wrapping_sub(p.a_zero_point)
            .wrapping_mul(i32::from(y).wrapping_sub(p.b_zero_point));
        requantize_to_i8(
            prod,
            p.out_multiplier,
            p.out_shift,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
    });
}

/// `output[i] = f(a[ia], b[ib])` over the broadcast index space.
pub(super) fn broadcast_binary<A: Copy + Default, B: Copy + Default, Y>(
    bc: &Broadcast4,
    a: &[A],
    b: &[B],
    output: &mut [Y],
    f: impl Fn(A, B) -> Y,
) {
    let n = bc.out_len();
    // n == 0 returns here: a zero dim must not leave the other loops spinning.
    if n == 0
        || output.len() != n
        || !reads_fit(bc.out_shape, bc.a_strides, a.len())
        || !reads_fit(bc.out_shape, bc.b_strides, b.len())
    {
        return;
    }
    // Same-shape operands (residual adds) are the common case: a plain zip.
    let dense = row_major_strides(bc.out_shape);
    if same_layout(bc.out_shape, bc.a_strides, dense)
        && same_layout(bc.out_shape, bc.b_strides, dense)
    {
        for ((y, &x), &z) in output.iter_mut().zip(a).zip(b) {
            *y = f(x, z);
        }
        return;
    }
    let [d0, d1, d2, d3] = bc.out_shape;
    let [a0, a1, a2, a3] = bc.a_strides;
    let [b0, b1, b2, b3] = bc.b_strides;
    let mut out = output.iter_mut();
    for i0 in 0..d0 {
        for i1 in 0..d1 {
            for i2 in 0..d2 {
                // `reads_fit` bounds these sums by the operand lengths.
                let abase = i0 * a0 + i1 * a1 + i2 * a2;
                let bbase = i0 * b0 + i1 * b1 + i2 * b2;
                for i3 in 0..d3 {
                    let x = a.get(abase + i3 * a3).copied().unwrap_or_default();
                    let z = b.get(bbase + i3 * b3).copied().unwrap_or_default();
                    if let Some(y) = out.next() {
                        *y = f(x, z);
                    }
                }
            }
        }
    }
}

/// Every index `Σ i_d · stride_d` for `i_d < shape_d` is below `len`.
pub(super) fn reads_fit(shape: [usize; 4], strides: [usize; 4], len: usize) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let last = shape.iter().zip(strides).try_fold(0usize, |acc, (&d, s)| {
        (d - 1).checked_mul(s).and_then(|t| acc.checked_add(t))
    });
    matches!(last, Some(i) if i < len)
}

fn row_major_strides(shape: [usize; 4]) -> [usize; 4] {
    let mut s = [1usize; 4];
    for i in (0..3).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The operand is laid out exactly like the output (strides on size-1 dims
/// never matter).
fn same_layout(shape: [usize; 4], strides: [usize; 4], dense: [usize; 4]) -> bool {
    shape
        .iter()
        .zip(strides.iter().zip(dense))
        .all(|(&d, (&s, t))| d == 1 || s == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_params() -> AddParams {
        // Identity rescales: ls 0, every multiplier 1.0 (m = 2^30, s = 1).
        AddParams {
            a_zero_point: 0,
            b_zero_point: 0,
            output_zero_point: 0,
            left_shift: 0,
            a_multiplier: 1 << 30,
            a_shift: 1,
            b_multiplier: 1 << 30,
            b_shift: 1,
            out_multiplier: 1 << 30,
            out_shift: 1,
            act_min: -128,
            act_max: 127,
        }
    }

    fn mul_params() -> MulParams {
        MulParams {
            a_zero_point: 0,
            b_zero_point: 0,
            output_zero_point: 0,
            out_multiplier: 1 << 30,
            out_shift: 1,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn add_same_shape_with_zero_points() {
        // a − 3 + b − (−2) + 1: [10, 20, −5] + [0, −2, 4]
        // = [7 + 2, 17 + 0, −8 + 6] + 1 = [10, 18, −1]
        let mut p = add_params();
        p.a_zero_point = 3;
        p.b_zero_point = -2;
        p.output_zero_point = 1;
        let bc = Broadcast4::new(&[3], &[3]).unwrap();
        let mut y = [0i8; 3];
        add_s8(&p, &bc, &[10, 20, -5], &[0, -2, 4], &mut y);
        assert_eq!(y, [10, 18, -1]);
    }

    #[test]
    fn add_rescales_with_left_shift() {
        // TFLite-style: ls = 20, a scale 0.5, b scale 0.25, output 2^-20 (undoes ls).
        // a = 5: 5·2^20·0.5 = 2.5·2^20; b = 6: 6·2^20·0.25 = 1.5·2^20; sum 4·2^20 -> 4.
        // a = 3, b = 1: 1.5·2^20 + 0.25·2^20 = 1.75·2^20 -> 1.75 -> 2.
        // a = −3, b = 2: −1.5 + 0.5 = −1.0 -> −1.
        // a = −1, b = 0: −0.5 -> 0 (half rounds up).
        let mut p = add_params();
        p.left_shift = 20;
        p.a_shift = 0; // 0.5
        p.b_shift = -1; // 0.25
        p.out_shift = -19; // 2^30 · 2^(−19−31) = 2^-20
        let bc = Broadcast4::new(&[4], &[4]).unwrap();
        let mut y = [0i8; 4];
        add_s8(&p, &bc, &[5, 3, -3, -1], &[6, 1, 2, 0], &mut y);
        assert_eq!(y, [4, 2, -1, 0]);
    }

    #[test]
    fn add_broadcasts_per_channel_constant() {
        // a: [2, 2, 2] = 0..8, b: [2, 1, 1] = [100, −100]
        // channel 0: 0..4 + 100 = [100, 101, 102, 103]
        // channel 1: 4..8 − 100 = [−96, −95, −94, −93]
        let bc = Broadcast4::new(&[2, 2, 2], &[2, 1, 1]).unwrap();
        let mut y = [0i8; 8];
        add_s8(
            &add_params(),
            &bc,
            &[0, 1, 2, 3, 4, 5, 6, 7],
            &[100, -100],
            &mut y,
        );
        assert_eq!(y, [100, 101, 102, 103, -96, -95, -94, -93]);
    }

    #[test]
    fn add_broadcasts_both_operands() {
        // [3, 1] + [1, 2] -> [3, 2]: a = [1, 2, 3] as a column, b = [10, 20] as a row.
        // [[11, 21], [12, 22], [13, 23]]
        let bc = Broadcast4::new(&[3, 1], &[1, 2]).unwrap();
        let mut y = [0i8; 6];
        add_s8(&add_params(), &bc, &[1, 2, 3], &[10, 20], &mut y);
        assert_eq!(y, [11, 21, 12, 22, 13, 23]);
        // Scalar on the left: 5 + [1, −1]
        let bc = Broadcast4::new(&[], &[2]).unwrap();
        let mut y = [0i8; 2];
        add_s8(&add_params(), &bc, &[5], &[1, -1], &mut y);
        assert_eq!(y, [6, 4]);
    }

    #[test]
    fn add_saturates_and_clamps() {
        // 127 + 127 = 254 -> 127;  −128 + −128 = −256 -> −128;  ReLU window [0, 127].
        let bc = Broadcast4::new(&[3], &[3]).unwrap();
        let mut y = [0i8; 3];
        add_s8(
            &add_params(),
            &bc,
            &[127, -128, -5],
            &[127, -128, 2],
            &mut y,
        );
        assert_eq!(y, [127, -128, -3]);
        let mut p = add_params();
        p.act_min = 0;
        add_s8(&p, &bc, &[127, -128, -5], &[127, -128, 2], &mut y);
        assert_eq!(y, [127, 0, 0]);
        // The operand sum saturates in i32 instead of wrapping: each side
        // (127 << 20) · 2^10 is far beyond i32, so both saturate at i32::MAX;
        // the saturating sum stays at i32::MAX and the output at 127.
        let mut p = add_params();
        p.left_shift = 20;
        p.a_shift = 11;
        p.b_shift = 11;
        add_s8(&p, &bc, &[127, 127, 127], &[127, 127, 127], &mut y);
        assert_eq!(y, [127, 127, 127]);
    }

    #[test]
    fn add_rejects_bad_params() {
        let bc = Broadcast4::new(&[2], &[2]).unwrap();
        let mut y = [9i8; 2];
        let mut p = add_params();
        p.left_shift = 21;
        add_s8(&p, &bc, &[1, 1], &[1, 1], &mut y);
        assert_eq!(y, [9, 9]);
        p.left_shift = -1;
        add_s8(&p, &bc, &[1, 1], &[1, 1], &mut y);
        assert_eq!(y, [9, 9]);
        // Operand too short for the broadcast geometry.
        add_s8(&add_params(), &bc, &[1], &[1, 1], &mut y);
        assert_eq!(y, [9, 9]);
        // Output length differs.
        add_s8(&add_params(), &bc, &[1, 1], &[1, 1], &mut y[..1]);
        assert_eq!(y, [9, 9]);
    }

    #[test]
    fn mul_basic_and_rounding() {
        // (a − 1)·(b + 2) with multiplier 0.5 (m = 2^30, s = 0), zy = −3:
        // a = [3, 0, 6], b = [1, 1, −5]: products [2·3, −1·3, 5·(−3)] = [6, −3, −15]
        // ·0.5 = [3, −1.5 -> −1, −7.5 -> −7]; + (−3) = [0, −4, −10]
        let p = MulParams {
            a_zero_point: 1,
            b_zero_point: -2,
            output_zero_point: -3,
            out_multiplier: 1 << 30,
            out_shift: 0,
            ..mul_params()
        };
        let bc = Broadcast4::new(&[3], &[3]).unwrap();
        let mut y = [0i8; 3];
        mul_s8(&p, &bc, &[3, 0, 6], &[1, 1, -5], &mut y);
        assert_eq!(y, [0, -4, -10]);
    }

    #[test]
    fn mul_extremes_and_broadcast() {
        // (−128 − 127)·(−128 − 127) = 65025 at multiplier 2^-9 (s = −8):
        // 65025 / 512 = 127.0009… -> 127;  with zp −1: 126.
        let p = MulParams {
            a_zero_point: 127,
            b_zero_point: 127,
            out_shift: -8,
            ..mul_params()
        };
        let bc = Broadcast4::new(&[1], &[1]).unwrap();
        let mut y = [0i8; 1];
        mul_s8(&p, &bc, &[-128], &[-128], &mut y);
        assert_eq!(y, [127]);
        let p = MulParams {
            output_zero_point: -1,
            ..p
        };
        mul_s8(&p, &bc, &[-128], &[-128], &mut y);
        assert_eq!(y, [126]);
        // Row times column: [2, 1] ⊙ [1, 3] -> [[a0·b0, a0·b1, a0·b2], [a1·b0, …]]
        // a = [2, −3], b = [1, 0, −4]: [[2, 0, −8], [−3, 0, 12]]
        let bc = Broadcast4::new(&[2, 1], &[1, 3]).unwrap();
        let mut y = [0i8; 6];
        mul_s8(&mul_params(), &bc, &[2, -3], &[1, 0, -4], &mut y);
        assert_eq!(y, [2, 0, -8, -3, 0, 12]);
        // 100 · 100 = 10000 saturates at 127; 100 · −100 at −128.
        let bc = Broadcast4::new(&[2], &[2]).unwrap();
        let mut y = [0i8; 2];
        mul_s8(&mul_params(), &bc, &[100, 100], &[100, -100], &mut y);
        assert_eq!(y, [127, -128]);
    }

    #[test]
    fn zero_sized_broadcast_is_a_no_op() {
        let bc = Broadcast4::new(&[0, 3], &[1, 3]).unwrap();
        let mut y: [i8; 0] = [];
        add_s8(&add_params(), &bc, &[], &[1, 2, 3], &mut y);
        mul_s8(&mul_params(), &bc, &[], &[1, 2, 3], &mut y);
    }

    #[test]
    fn reads_fit_checks_extents() {
        assert!(reads_fit([1, 1, 2, 3], [0, 0, 3, 1], 6));
        assert!(!reads_fit([1, 1, 2, 3], [0, 0, 3, 1], 5));
        assert!(reads_fit([1, 1, 2, 3], [0, 0, 0, 0], 1));
        assert!(!reads_fit([1, 1, 2, 3], [0, 0, 0, 0], 0));
        assert!(!reads_fit([1, 1, 2, usize::MAX], [0, 0, 0, 2], usize::MAX));
    }
}
