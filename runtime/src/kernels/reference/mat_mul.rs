//! MatMul of two int8 tensors, batched, with numpy-broadcast batch dims:
//! attention's `Q·Kᵀ` and `scores·V`, or a constant matrix on the left.

use super::act_ok;
use crate::kernels::MatMulParams;
use crate::numerics::requantize_to_i8;

/// The longest reduction a MatMul takes: every product of two zero-point
/// offset int8 values is in `[-255², 255²]`, and `32768 · 255² < 2³¹`, so the
/// exact sum fits `i32` and no order of summation can wrap.
pub const MAX_MAT_MUL_DEPTH: usize = 32768;

/// Outputs of one row accumulated together, on the stack: the inner loop
/// then walks a row of `b` contiguously instead of a column.
const COL_TILE: usize = 64;

/// `y[.., r, c] = clamp(requantize(Σₖ (a[.., r, k] − za)·(b[.., k, c] − zb),
/// m, s) + zy)` for every broadcast batch index.
///
/// Returns early when `depth` is 0 or above [`MAX_MAT_MUL_DEPTH`], the
/// activation range is not within `[-128, 127]`, `output` is not
/// `batch · rows · cols` long, or a batch's matrix would lie past the end of
/// `a` or `b`.
pub fn mat_mul_s8(p: &MatMulParams, a: &[i8], b: &[i8], output: &mut [i8]) {
    if act_ok(p.act_min, p.act_max) {
        each_matrix(p, a, b, output, matrix);
    }
}

/// [`mat_mul_s8`] where any of `a`, `b` and the output is an int16
/// activation (symmetric, zero point 0), the others int8: attention's
/// int16 probabilities times int8 values, or int8 `Q·Kᵀ` to int16 scores.
/// `acc = Σₖ (a − za)·(b − zb)` in `i64` (exact: a term is below 2^31 in
/// magnitude and there are at most 2^15), then
/// `y = clamp(requantize_i64(acc, m, s) + zy, act_min, act_max)`.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within the output type.
#[cfg(feature = "int16-activations")]
pub fn mat_mul_s16<A, B, Y>(p: &MatMulParams, a: &[A], b: &[B], output: &mut [Y])
where
    A: super::Lane + Into<i32>,
    B: super::Lane + Into<i32>,
    Y: super::Lane,
{
    let zero_points_ok =
        (!A::SYMMETRIC || p.a_zero_point == 0) && (!B::SYMMETRIC || p.b_zero_point == 0);
    if zero_points_ok && super::lanes_ok::<A, Y>(0, p.output_zero_point, p.act_min, p.act_max) {
        each_matrix(p, a, b, output, matrix_lanes);
    }
}

/// Runs `matrix` on every broadcast batch's `rows × depth` by `depth ×
/// cols` pair, after the checks every MatMul kernel makes (the depth, the
/// output length, each operand's last matrix in bounds).
#[inline(always)]
fn each_matrix<A, B, Y>(
    p: &MatMulParams,
    a: &[A],
    b: &[B],
    output: &mut [Y],
    matrix: impl Fn(&MatMulParams, &[A], &[B], &mut [Y]),
) {
    let (m, k, n) = (p.rows, p.depth, p.cols);
    let (Some(a_mat), Some(b_mat), Some(y_mat)) =
        (m.checked_mul(k), k.checked_mul(n), m.checked_mul(n))
    else {
        return;
    };
    let bc = &p.batch;
    let shape = bc.out_shape;
    let y_len = y_mat.checked_mul(bc.out_len());
    if !(1..=MAX_MAT_MUL_DEPTH).contains(&k)
        || y_len != Some(output.len())
        || y_mat == 0
        || !matrices_fit(shape, bc.a_strides, a_mat, a.len())
        || !matrices_fit(shape, bc.b_strides, b_mat, b.len())
    {
        return;
    }
    let at = |strides: [usize; 4], idx: [usize; 4], len: usize| {
        let start = idx.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>() * len;
        start..start + len
    };
    let mut ys = output.chunks_exact_mut(y_mat);
    for i0 in 0..shape[0] {
        for i1 in 0..shape[1] {
            for i2 in 0..shape[2] {
                for i3 in 0..shape[3] {
                    let idx = [i0, i1, i2, i3];
                    let (Some(am), Some(bm), Some(ym)) = (
                        a.get(at(bc.a_strides, idx, a_mat)),
                        b.get(at(bc.b_strides, idx, b_mat)),
                        ys.next(),
                    ) else {
                        return;
                    };
                    matrix(p, am, bm, ym);
                }
            }
        }
    }
}

/// One `rows × depth` by `depth × cols` product; the lengths are checked by
/// the caller.
fn matrix(p: &MatMulParams, a: &[i8], b: &[i8], y: &mut [i8]) {
    let n = p.cols;
    for (a_row, y_row) in a.chunks_exact(p.depth).zip(y.chunks_exact_mut(n)) {
        for (t, y_tile) in y_row.chunks_mut(COL_TILE).enumerate() {
            let c0 = t * COL_TILE;
            let mut acc = [0i32; COL_TILE];
            let acc = &mut acc[..y_tile.len()];
            for (b_row, &x) in b.chunks_exact(n).zip(a_row) {
                let x = i32::from(x).wrapping_sub(p.a_zero_point);
                let b_tile = b_row.get(c0..c0 + acc.len()).unwrap_or(&[]);
                for (s, &v) in acc.iter_mut().zip(b_tile) {
                    *s = s.wrapping_add(x.wrapping_mul(i32::from(v).wrapping_sub(p.b_zero_point)));
                }
            }
            for (out, &s) in y_tile.iter_mut().zip(acc.iter()) {
                *out = requantize_to_i8(
                    s,
                    p.out_multiplier,
                    p.out_shift,
                    p.output_zero_point,
                    p.act_min,
                    p.act_max,
                );
            }
        }
    }
}

/// [`matrix`] with `i64` sums, for any mix of int8 and int16 sides.
#[cfg(feature = "int16-activations")]
fn matrix_lanes<A, B, Y>(p: &MatMulParams, a: &[A], b: &[B], y: &mut [Y])
where
    A: super::Lane + Into<i32>,
    B: super::Lane + Into<i32>,
    Y: super::Lane,
{
    let n = p.cols;
    let (za, zb) = (i64::from(p.a_zero_point), i64::from(p.b_zero_point));
    for (a_row, y_row) in a.chunks_exact(p.depth).zip(y.chunks_exact_mut(n)) {
        for (t, y_tile) in y_row.chunks_mut(COL_TILE).enumerate() {
            let c0 = t * COL_TILE;
            let mut acc = [0i64; COL_TILE];
            let acc = &mut acc[..y_tile.len()];
            for (b_row, &x) in b.chunks_exact(n).zip(a_row) {
                let x = i64::from(Into::<i32>::into(x)) - za;
                let b_tile = b_row.get(c0..c0 + acc.len()).unwrap_or(&[]);
                for (s, &v) in acc.iter_mut().zip(b_tile) {
                    let v = i64::from(Into::<i32>::into(v)) - zb;
                    // Wrapping only keeps a corrupt zero point total.
                    *s = s.wrapping_add(x.wrapping_mul(v));
                }
            }
            for (out, &s) in y_tile.iter_mut().zip(acc.iter()) {
                *out = super::requantize_to_lane(
                    s,
                    p.out_multiplier,
                    p.out_shift,
                    p.output_zero_point,
                    p.act_min,
                    p.act_max,
                );
            }
        }
    }
}

/// Whether the last matrix the broadcast reads (each `len` long, `strides`
/// counting matrices) ends inside `total`.
fn matrices_fit(shape: [usize; 4], strides: [usize; 4], len: usize, total: usize) -> bool {
    let last = shape.iter().zip(strides).try_fold(0usize, |acc, (&d, s)| {
        d.checked_sub(1)?.checked_mul(s)?.checked_add(acc)
    });
    let end = last.and_then(|l| l.checked_add(1)?.checked_mul(len));
    matches!(end, Some(e) if e <= total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Broadcast4;

    fn params(batch: Broadcast4, rows: usize, depth: usize, cols: usize) -> MatMulParams {
        MatMulParams {
            batch,
            rows,
            depth,
            cols,
            a_zero_point: 3,
            b_zero_point: -2,
            output_zero_point: -5,
            // 0.5 · 2⁻¹ = a quarter of the sum.
            out_multiplier: 1 << 30,
            out_shift: -1,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn a_small_product_by_hand() {
        // a = [[4, 5], [6, 7]] − 3, b = [[0, 1], [2, 3]] + 2
        // (a−za)(b−zb) = [[1, 2], [3, 4]]·[[2, 3], [4, 5]] = [[10, 13], [22, 29]]
        // /4 rounded half up, −5: [[-2, -2], [1, 2]].
        let p = params(Broadcast4::new(&[1], &[1]).unwrap(), 2, 2, 2);
        let mut y = [0i8; 4];
        mat_mul_s8(&p, &[4, 5, 6, 7], &[0, 1, 2, 3], &mut y);
        assert_eq!(y, [-2, -2, 1, 2]);
    }

    #[test]
    fn a_broadcast_right_operand_is_reused_for_every_batch() {
        // Two left matrices [1, 2] (rows 1, depth 2), one right [2, 1].
        let p = MatMulParams {
            a_zero_point: 0,
            b_zero_point: 0,
            output_zero_point: 0,
            out_multiplier: 1 << 30,
            out_shift: 1,
            ..params(Broadcast4::new(&[2], &[1]).unwrap(), 1, 2, 1)
        };
        let mut y = [0i8; 2];
        mat_mul_s8(&p, &[1, 2, 3, 4], &[10, 1], &mut y);
        assert_eq!(y, [12, 34]);
    }

    #[test]
    fn bad_lengths_leave_the_output_alone() {
        let p = params(Broadcast4::new(&[2], &[2]).unwrap(), 2, 2, 2);
        let mut y = [9i8; 8];
        mat_mul_s8(&p, &[0; 7], &[0; 8], &mut y);
        mat_mul_s8(&p, &[0; 8], &[0; 7], &mut y);
        mat_mul_s8(&p, &[0; 8], &[0; 8], &mut y[..7]);
        let deep = MatMulParams {
            depth: MAX_MAT_MUL_DEPTH + 1,
            ..p
        };
        mat_mul_s8(&deep, &[0; 8], &[0; 8], &mut y);
        assert_eq!(y, [9; 8]);
    }

    #[test]
    fn the_deepest_sum_does_not_wrap() {
        // 32768 products of (−128 − 127)·(−128 − 127) = 65025 each.
        let k = MAX_MAT_MUL_DEPTH;
        let p = MatMulParams {
            a_zero_point: 127,
            b_zero_point: 127,
            output_zero_point: 0,
            // 2⁻³¹ of the sum: 32768·65025 / 2³¹ = 0.99…, rounds to 1.
            out_multiplier: 1 << 30,
            out_shift: -30,
            ..params(Broadcast4::new(&[1], &[1]).unwrap(), 1, k, 1)
        };
        let (a, b) = ([-128i8; MAX_MAT_MUL_DEPTH], [-128i8; MAX_MAT_MUL_DEPTH]);
        let mut y = [0i8; 1];
        mat_mul_s8(&p, &a, &b, &mut y);
        assert_eq!(y, [1]);
    }
}
