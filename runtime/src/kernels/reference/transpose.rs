//! Transpose: a permutation of at most 4 dims.

use crate::kernels::TransposeParams;

/// Copies `input` (row-major `in_shape`) to `output` with its dims
/// permuted: output dim `d` is input dim `perm[d]`, so
/// `y[o0, o1, o2, o3] = x[i]` with `i[perm[d]] = o[d]`. No arithmetic: the
/// output has the input's scale and zero point.
///
/// Returns early, leaving `output` unchanged, unless `perm` holds each of
/// `0..4` once and both slices have `Π in_shape` elements.
pub fn transpose_s8(p: &TransposeParams, input: &[i8], output: &mut [i8]) {
    transpose_elems(p, input, output);
}

/// [`transpose_s8`] of an int16 activation.
#[cfg(feature = "int16-activations")]
pub fn transpose_s16(p: &TransposeParams, input: &[i16], output: &mut [i16]) {
    transpose_elems(p, input, output);
}

fn transpose_elems<T: Copy + Default>(p: &TransposeParams, input: &[T], output: &mut [T]) {
    let mut seen = [false; 4];
    for &d in &p.perm {
        match seen.get_mut(d) {
            Some(s) if !*s => *s = true,
            _ => return,
        }
    }
    let len = p.in_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if len != Some(input.len()) || input.len() != output.len() || output.is_empty() {
        return;
    }
    // Row-major strides of the input, then read in output order.
    let [_, s1, s2, s3] = p.in_shape;
    let in_strides = [s1 * s2 * s3, s2 * s3, s3, 1];
    let out_shape = p.perm.map(|d| p.in_shape[d]);
    let strides = p.perm.map(|d| in_strides[d]);
    let mut out = output.iter_mut();
    for a in 0..out_shape[0] {
        for b in 0..out_shape[1] {
            for c in 0..out_shape[2] {
                let base = a * strides[0] + b * strides[1] + c * strides[2];
                for (k, y) in (0..out_shape[3]).zip(out.by_ref()) {
                    *y = input
                        .get(base + k * strides[3])
                        .copied()
                        .unwrap_or_default();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_to_nchw() {
        // x [1, 2, 3, 2] (N, H, W, C): pixel k holds channels (k, −k).
        let x = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6];
        let p = TransposeParams {
            in_shape: [1, 2, 3, 2],
            perm: [0, 3, 1, 2],
        };
        let mut y = [0i8; 12];
        transpose_s8(&p, &x, &mut y);
        assert_eq!(y, [1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6]);
    }

    #[test]
    fn not_a_permutation_writes_nothing() {
        let p = TransposeParams {
            in_shape: [1, 1, 2, 2],
            perm: [0, 1, 2, 2],
        };
        let mut y = [7i8; 4];
        transpose_s8(&p, &[1, 2, 3, 4], &mut y);
        assert_eq!(y, [7; 4]);
        let p = TransposeParams {
            in_shape: [1, 1, 2, 2],
            perm: [0, 1, 3, 4],
        };
        transpose_s8(&p, &[1, 2, 3, 4], &mut y);
        assert_eq!(y, [7; 4]);
    }
}
