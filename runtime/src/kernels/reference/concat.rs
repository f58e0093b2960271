//! Concatenation, one input at a time.

use crate::kernels::ConcatPart;
use crate::numerics::requantize_to_i8;

/// Copies one input into its slot of the output, requantizing it to the
/// output's scale and zero point: for `o` in `0..outer` and `j` in
/// `0..in_block`,
/// `output[o·out_block + out_start + j] = requantize_to_i8(x − zx, multiplier, shift, zy, −128, 127)`
/// with `x = input[o·in_block + j]`.
///
/// Returns early, leaving `output` unchanged, unless
/// `input.len() == outer · in_block`, `output.len() == outer · out_block` and
/// `out_start + in_block <= out_block`.
pub fn concat_part_s8(p: &ConcatPart, input: &[i8], output: &mut [i8]) {
    if !fits(p, input.len(), output.len()) {
        return;
    }
    // `input` is non-empty, so `in_block` and `out_block` are non-zero.
    let rows = input
        .chunks_exact(p.in_block)
        .zip(output.chunks_exact_mut(p.out_block));
    // Inputs already on the output's grid (the common case) are copied: the
    // identity requantization (m = 2^30, s = 1) is exact, so this is bit-exact.
    let identity =
        p.multiplier == 1 << 30 && p.shift == 1 && p.input_zero_point == p.output_zero_point;
    for (x, y_block) in rows {
        let Some(y) = y_block.get_mut(p.out_start..p.out_start + p.in_block) else {
            return;
        };
        if identity {
            y.copy_from_slice(x);
            continue;
        }
        for (y, &x) in y.iter_mut().zip(x) {
            let v = i32::from(x).wrapping_sub(p.input_zero_point);
            *y = requantize_to_i8(v, p.multiplier, p.shift, p.output_zero_point, -128, 127);
        }
    }
}

/// [`concat_part_s8`] where the input or the output is an int16 activation
/// (symmetric, zero point 0): a U-Net's skip connection joining an int16
/// branch. The requantization is the same,
/// [`requantize_i64`](crate::numerics::requantize_i64) plus the zero point,
/// saturating to `Y`;
/// on int8 lanes it is [`concat_part_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0.
#[cfg(feature = "int16-activations")]
pub fn concat_part_s16<X, Y>(p: &ConcatPart, input: &[X], output: &mut [Y])
where
    X: super::Lane + Into<i32>,
    Y: super::Lane,
{
    let lanes = super::lanes_ok::<X, Y>(p.input_zero_point, p.output_zero_point, Y::MIN, Y::MAX);
    if !lanes || !fits(p, input.len(), output.len()) {
        return;
    }
    let rows = input
        .chunks_exact(p.in_block)
        .zip(output.chunks_exact_mut(p.out_block));
    for (x, y_block) in rows {
        let Some(y) = y_block.get_mut(p.out_start..p.out_start + p.in_block) else {
            return;
        };
        for (y, &x) in y.iter_mut().zip(x) {
            // An `i16` less a zero point within `i16` fits `i32`.
            let v = Into::<i32>::into(x).wrapping_sub(p.input_zero_point);
            *y = super::requantize_to_lane(
                i64::from(v),
                p.multiplier,
                p.shift,
                p.output_zero_point,
                Y::MIN,
                Y::MAX,
            );
        }
    }
}

/// The slot lies inside the output block, and the lengths are `outer`
/// non-empty blocks each.
fn fits(p: &ConcatPart, input_len: usize, output_len: usize) -> bool {
    let slot = p
        .out_start
        .checked_add(p.in_block)
        .is_some_and(|end| end <= p.out_block);
    slot && p.outer.checked_mul(p.in_block) == Some(input_len)
        && p.outer.checked_mul(p.out_block) == Some(output_len)
        && input_len > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: (i32, i32) = (1 << 30, 1);

    fn part(outer: usize, in_block: usize, out_block: usize, out_start: usize) -> ConcatPart {
        ConcatPart {
            outer,
            in_block,
            out_block,
            out_start,
            input_zero_point: 0,
            output_zero_point: 0,
            multiplier: ID.0,
            shift: ID.1,
        }
    }

    #[test]
    fn channel_concat_of_two_inputs() {
        // Concat [2, 1, 2] and [2, 2, 2] along axis 1 -> [2, 3, 2]:
        // blocks per outer index: input a has 1·2 = 2, b has 2·2 = 4, output 6.
        let a = [1, 2, 3, 4];
        let b = [10, 11, 12, 13, 20, 21, 22, 23];
        let mut y = [0i8; 12];
        concat_part_s8(&part(2, 2, 6, 0), &a, &mut y);
        concat_part_s8(&part(2, 4, 6, 2), &b, &mut y);
        assert_eq!(y, [1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23]);
    }

    #[test]
    fn requantizes_to_output_grid() {
        // Input scale 0.5 zp 4 into output scale 1.0 zp −2: multiplier 0.5
        // (m = 2^30, s = 0). x = [4, 7, 0, −128]:
        // x − 4 = [0, 3, −4, −132]; ·0.5 = [0, 1.5 -> 2, −2, −66]; −2 -> [−2, 0, −4, −68]
        let mut p = part(1, 4, 4, 0);
        p.input_zero_point = 4;
        p.output_zero_point = -2;
        p.shift = 0;
        let mut y = [0i8; 4];
        concat_part_s8(&p, &[4, 7, 0, -128], &mut y);
        assert_eq!(y, [-2, 0, -4, -68]);
    }

    #[test]
    fn saturates() {
        // Multiplier 2.0 (m = 2^30, s = 2): [100, −100, 63, −64] -> [200, −200, 126, −128]
        // -> [127, −128, 126, −128]
        let mut p = part(1, 4, 4, 0);
        p.shift = 2;
        let mut y = [0i8; 4];
        concat_part_s8(&p, &[100, -100, 63, -64], &mut y);
        assert_eq!(y, [127, -128, 126, -128]);
    }

    #[test]
    fn zero_point_shift_only_is_not_a_plain_copy() {
        // Same scale, different zero points: y = x − 3 + 5 = x + 2, saturating.
        let mut p = part(1, 3, 3, 0);
        p.input_zero_point = 3;
        p.output_zero_point = 5;
        let mut y = [0i8; 3];
        concat_part_s8(&p, &[0, 126, -128], &mut y);
        assert_eq!(y, [2, 127, -126]);
    }

    #[test]
    fn bad_geometry_leaves_output_untouched() {
        let mut y = [5i8; 4];
        // Slot runs past the block.
        concat_part_s8(&part(1, 3, 4, 2), &[1, 2, 3], &mut y);
        assert_eq!(y, [5; 4]);
        // Input length differs from outer · in_block.
        concat_part_s8(&part(2, 1, 2, 0), &[1, 2, 3], &mut y);
        assert_eq!(y, [5; 4]);
        // Output length differs from outer · out_block.
        concat_part_s8(&part(1, 1, 3, 0), &[1], &mut y);
        assert_eq!(y, [5; 4]);
        concat_part_s8(&part(1, 1, 4, usize::MAX), &[1], &mut y);
        assert_eq!(y, [5; 4]);
        concat_part_s8(&part(2, 1, 2, 1), &[1, 2], &mut y);
        assert_eq!(y, [5, 1, 5, 2]);
    }
}
