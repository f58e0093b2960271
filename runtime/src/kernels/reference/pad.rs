//! Constant padding.

use crate::kernels::PadParams;

/// Writes `input` into `output` at offset `pad_before` in every dim, and
/// `value` everywhere else. Shapes are row-major, 4 dims (left-pad with 1s).
///
/// Returns early, leaving `output` unchanged, unless `input` has
/// `Π in_shape` elements, `output` has `Π out_shape` elements,
/// `pad_before[d] + in_shape[d] <= out_shape[d]` for every dim, and
/// `value` is within `i8`.
pub fn pad_s8(p: &PadParams, input: &[i8], output: &mut [i8]) {
    pad(p, input, output);
}

/// [`pad_s8`] on int16 activations: `value` within `i16`.
#[cfg(feature = "int16-activations")]
pub fn pad_s16(p: &PadParams, input: &[i16], output: &mut [i16]) {
    pad(p, input, output);
}

/// The one loop of [`pad_s8`] and `pad_s16`, generic in the element type.
fn pad<T: Copy + TryFrom<i32>>(p: &PadParams, input: &[T], output: &mut [T]) {
    let Ok(value) = T::try_from(p.value) else {
        return;
    };
    let fits = (0..4).all(|d| {
        p.pad_before[d]
            .checked_add(p.in_shape[d])
            .is_some_and(|end| end <= p.out_shape[d])
    });
    if !fits
        || product(p.in_shape) != Some(input.len())
        || product(p.out_shape) != Some(output.len())
    {
        return;
    }
    output.fill(value);
    let [_, i1, i2, i3] = p.in_shape;
    let [_, o1, o2, o3] = p.out_shape;
    let [b0, b1, b2, b3] = p.pad_before;
    if input.is_empty() {
        return; // also makes the row length below non-zero
    }
    // Every innermost input row lands contiguously in the output; walk the
    // rows in order with their (r0, r1, r2) coordinates. `fits` bounds every
    // destination index by `output.len()`.
    for (row, x) in input.chunks_exact(i3).enumerate() {
        let r2 = row % i2;
        let r1 = (row / i2) % i1;
        let r0 = row / (i2 * i1);
        let start = (((r0 + b0) * o1 + (r1 + b1)) * o2 + (r2 + b2)) * o3 + b3;
        if let Some(y) = output.get_mut(start..start + i3) {
            y.copy_from_slice(x);
        }
    }
}

fn product(shape: [usize; 4]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_2d_asymmetric() {
        // [2, 2] -> [3, 5] with one row on top and (1 left, 2 right) columns, value −1:
        // row 0: −1 −1 −1 −1 −1
        // row 1: −1  1  2 −1 −1
        // row 2: −1  3  4 −1 −1
        let p = PadParams {
            in_shape: [1, 1, 2, 2],
            out_shape: [1, 1, 3, 5],
            pad_before: [0, 0, 1, 1],
            value: -1,
        };
        let mut y = [0i8; 15];
        pad_s8(&p, &[1, 2, 3, 4], &mut y);
        assert_eq!(y, [-1, -1, -1, -1, -1, -1, 1, 2, -1, -1, -1, 3, 4, -1, -1]);
    }

    #[test]
    fn pads_all_four_dims() {
        // [1, 2, 1, 2] = [[a b], [c d]] per channel pair, pads before [1, 0, 1, 0]
        // and after [0, 1, 0, 1] -> out [2, 3, 2, 3]; value 0 except the data:
        // block n=0: all 0 (18 values); block n=1: channel 0: row 0 zeros,
        // row 1 [5, 6, 0]; channel 1: row 0 zeros, row 1 [7, 8, 0]; channel 2 zeros.
        let p = PadParams {
            in_shape: [1, 2, 1, 2],
            out_shape: [2, 3, 2, 3],
            pad_before: [1, 0, 1, 0],
            value: 0,
        };
        let mut y = [9i8; 36];
        pad_s8(&p, &[5, 6, 7, 8], &mut y);
        let mut want = [0i8; 36];
        // n=1 starts at 18; channel c at 18 + 6c; row 1 at +3.
        want[18 + 3] = 5;
        want[18 + 4] = 6;
        want[18 + 6 + 3] = 7;
        want[18 + 6 + 4] = 8;
        assert_eq!(y, want);
    }

    #[test]
    fn no_padding_is_a_copy_and_empty_input_fills() {
        let p = PadParams {
            in_shape: [1, 1, 1, 3],
            out_shape: [1, 1, 1, 3],
            pad_before: [0; 4],
            value: 100,
        };
        let mut y = [0i8; 3];
        pad_s8(&p, &[-128, 0, 127], &mut y);
        assert_eq!(y, [-128, 0, 127]);
        // A zero-sized input padded to 2 elements is all pad value.
        let p = PadParams {
            in_shape: [1, 1, 1, 0],
            out_shape: [1, 1, 1, 2],
            pad_before: [0, 0, 0, 1],
            value: -7,
        };
        let mut y = [0i8; 2];
        pad_s8(&p, &[], &mut y);
        assert_eq!(y, [-7, -7]);
    }

    #[test]
    fn bad_geometry_leaves_output_untouched() {
        let p = PadParams {
            in_shape: [1, 1, 1, 3],
            out_shape: [1, 1, 1, 3],
            pad_before: [0, 0, 0, 1],
            value: 0,
        };
        let mut y = [4i8; 3];
        pad_s8(&p, &[1, 2, 3], &mut y);
        assert_eq!(y, [4; 3]);
        let p = PadParams {
            pad_before: [0; 4],
            ..p
        };
        pad_s8(&p, &[1, 2], &mut y);
        assert_eq!(y, [4; 3]);
        let p = PadParams {
            pad_before: [0, 0, 0, usize::MAX],
            ..p
        };
        pad_s8(&p, &[1, 2, 3], &mut y);
        assert_eq!(y, [4; 3]);
    }
}
