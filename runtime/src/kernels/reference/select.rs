//! Select: `cond ? a : b` elementwise with numpy broadcasting (ONNX Where on
//! a computed condition).

use super::act_ok;
use super::elementwise::reads_fit;
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
    let v = &p.values;
    let n = bc.out_len();
    if n == 0
        || output.len() != n
        || !act_ok(v.act_min, v.act_max)
        || !reads_fit(bc.out_shape, p.cond_strides, cond.len())
        || !reads_fit(bc.out_shape, bc.a_strides, a.len())
        || !reads_fit(bc.out_shape, bc.b_strides, b.len())
    {
        return;
    }
    let rescale = |x: i8, zero_point: i32, multiplier: i32, shift: i32| {
        let r = requantize(i32::from(x).wrapping_sub(zero_point), multiplier, shift);
        clamp(r.saturating_add(v.output_zero_point), v.act_min, v.act_max) as i8
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
                    let chosen = cond.get(cbase + i3 * c[3]).copied().unwrap_or_default();
                    let y = match i32::from(chosen) != p.cond_zero_point {
                        true => {
                            let x = a.get(abase + i3 * sa[3]).copied().unwrap_or_default();
                            rescale(x, v.a_zero_point, v.a_multiplier, v.a_shift)
                        }
                        false => {
                            let x = b.get(bbase + i3 * sb[3]).copied().unwrap_or_default();
                            rescale(x, v.b_zero_point, v.b_multiplier, v.b_shift)
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
