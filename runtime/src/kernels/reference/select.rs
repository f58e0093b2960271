//! Select: `cond ? a : b` elementwise with numpy broadcasting (ONNX Where on
//! a computed condition).

use super::elementwise::reads_fit;
use super::{act_ok, Lane};
#[cfg(feature = "int16-activations")]
use super::{elementwise::sides_ok, OperandLane};
use crate::kernels::{Broadcast4, SelectParams};
use crate::numerics::{clamp, requantize};

/// Elementwise choice with broadcasting: where `cond` is not
/// `p.cond_zero_point` (a real value other than 0), `a` rescaled to the
/// output, else `b`:
/// `y = clamp(zy + requantize(x − zx, xm, xs), act_min, act_max)` with `x`
/// the chosen operand and its zero point, multiplier and shift from
/// `p.values`.
///
/// `bc` broadcasts `a` and `b` to the output, `p.cond_strides` walks `cond`
/// over the same output dims. Returns early, writing nothing, if `output`
/// is not the broadcast length, if an operand is shorter than its strides
/// reach, or if the activation window is not inside `i8`.
pub fn select_s8(
    p: &SelectParams,
    bc: &Broadcast4,
    cond: &[i8],
    a: &[i8],
    b: &[i8],
    output: &mut [i8],
) {
    if act_ok(p.values.act_min, p.values.act_max) {
        select(p, bc, cond, a, b, output);
    }
}

/// [`select_s8`] where the condition, either branch or the output is an
/// int16 activation (symmetric, zero point 0); on int8 lanes it is
/// [`select_s8`] bit for bit.
///
/// Also returns early unless each int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn select_s16<C: OperandLane, A: OperandLane, B: OperandLane, Y: Lane>(
    p: &SelectParams,
    bc: &Broadcast4,
    cond: &[C],
    a: &[A],
    b: &[B],
    output: &mut [Y],
) {
    let v = &p.values;
    let zero_points = (v.a_zero_point, v.b_zero_point, v.output_zero_point);
    if (!C::SYMMETRIC || p.cond_zero_point == 0)
        && sides_ok::<A, B, Y>(zero_points, (v.act_min, v.act_max))
    {
        select(p, bc, cond, a, b, output);
    }
}

/// The choice on any lanes, once the activation window is known to lie
/// within `Y`.
fn select<C, A, B, Y>(
    p: &SelectParams,
    bc: &Broadcast4,
    cond: &[C],
    a: &[A],
    b: &[B],
    output: &mut [Y],
) where
    C: Copy + Default + Into<i32>,
    A: Copy + Default + Into<i32>,
    B: Copy + Default + Into<i32>,
    Y: Lane,
{
    let v = &p.values;
    let n = bc.out_len();
    if n == 0
        || output.len() != n
        || !reads_fit(bc.out_shape, p.cond_strides, cond.len())
        || !reads_fit(bc.out_shape, bc.a_strides, a.len())
        || !reads_fit(bc.out_shape, bc.b_strides, b.len())
    {
        return;
    }
    let rescale = |x: i32, zero_point: i32, multiplier: i32, shift: i32| {
        let r = requantize(x.wrapping_sub(zero_point), multiplier, shift);
        Y::from_clamped(clamp(
            r.saturating_add(v.output_zero_point),
            v.act_min,
            v.act_max,
        ))
    };
    let [d0, d1, d2, d3] = bc.out_shape;
    let (c, sa, sb) = (p.cond_strides, bc.a_strides, bc.b_strides);
    let mut out = output.iter_mut();
    for i0 in 0..d0 {
        for i1 in 0..d1 {
            for i2 in 0..d2 {
                // `reads_fit` bounds these sums by the operand lengths.
                let base = |s: [usize; 4]| i0 * s[0] + i1 * s[1] + i2 * s[2];
                let (cbase, abase, bbase) = (base(c), base(sa), base(sb));
                for i3 in 0..d3 {
                    let chosen: i32 = cond
                        .get(cbase + i3 * c[3])
                        .copied()
                        .unwrap_or_default()
                        .into();
                    let y = match chosen != p.cond_zero_point {
                        true => {
                            let x = a.get(abase + i3 * sa[3]).copied().unwrap_or_default();
                            rescale(x.into(), v.a_zero_point, v.a_multiplier, v.a_shift)
                        }
                        false => {
                            let x = b.get(bbase + i3 * sb[3]).copied().unwrap_or_default();
                            rescale(x.into(), v.b_zero_point, v.b_multiplier, v.b_shift)
                        }
                    };
                    if let Some(slot) = out.next() {
                        *slot = y;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::MinMaxParams;

    /// Multiplier and shift of 1.0.
    const ONE: (i32, i32) = (1 << 30, 1);

    fn params(cond_strides: [usize; 4]) -> SelectParams {
        SelectParams {
            cond_zero_point: -128,
            cond_strides,
            values: MinMaxParams {
                a_zero_point: 0,
                b_zero_point: 10,
                output_zero_point: -1,
                a_multiplier: ONE.0,
                a_shift: ONE.1,
                b_multiplier: ONE.0,
                b_shift: 0, // b at half scale
                act_min: -128,
                act_max: 127,
            },
        }
    }

    #[test]
    fn picks_a_where_the_condition_holds_and_rescales_each_side() {
        // cond [2, 1] broadcast over columns, a [2, 3], b [3] over rows.
        let bc = Broadcast4::new(&[2, 3], &[3]).unwrap();
        let cond_bc = Broadcast4::new(&[2, 1], &[2, 3]).unwrap();
        let p = params(cond_bc.a_strides);
        let (cond, a, b) = ([127i8, -128], [1i8, 2, 3, 4, 5, 6], [20i8, 0, 16]);
        let mut y = [0i8; 6];
        select_s8(&p, &bc, &cond, &a, &b, &mut y);
        // Row 0 takes a − 1; row 1 takes (b − 10) / 2 − 1 (halves toward +∞).
        assert_eq!(y, [0, 1, 2, 4, -6, 2]);
    }

    #[test]
    fn saturates_to_the_activation_window() {
        let bc = Broadcast4::new(&[2], &[2]).unwrap();
        let mut p = params([0, 0, 0, 1]);
        p.values.act_min = -10;
        p.values.act_max = 10;
        let mut y = [0i8; 2];
        select_s8(&p, &bc, &[0, 0], &[100, -100], &[0, 0], &mut y);
        assert_eq!(y, [10, -10]);
    }

    #[test]
    fn bad_lengths_or_window_write_nothing() {
        let bc = Broadcast4::new(&[4], &[4]).unwrap();
        let p = params([0, 0, 0, 1]);
        let mut y = [7i8; 4];
        select_s8(&p, &bc, &[0; 3], &[0; 4], &[0; 4], &mut y);
        select_s8(&p, &bc, &[0; 4], &[0; 4], &[0; 4], &mut y[..3]);
        let mut wide = params([0, 0, 0, 1]);
        wide.values.act_min = -200;
        select_s8(&wide, &bc, &[0; 4], &[0; 4], &[0; 4], &mut y);
        assert_eq!(y, [7; 4]);
    }
}
