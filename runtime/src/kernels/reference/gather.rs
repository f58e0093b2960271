//! Selection along one axis: a strided range (`slice_s8`: Slice, Split) or
//! a list of indices (`gather_s8`: Gather with constant indices).

use crate::kernels::{GatherParams, SliceParams};

/// `y[o, k, i] = x[o, start + k·step, i]` for `k < count`, with `x` viewed
/// as `[outer, axis_len, inner]` and `y` as `[outer, count, inner]`. No
/// arithmetic: the output has the input's scale and zero point.
///
/// Returns early, leaving `output` unchanged, unless both slices have the
/// lengths above, `step != 0` and every index `start + k·step` is in
/// `0..axis_len`.
pub fn slice_s8(p: &SliceParams, input: &[i8], output: &mut [i8]) {
    slice_elems(p, input, output);
}

/// [`slice_s8`] of an int16 activation.
#[cfg(feature = "int16-activations")]
pub fn slice_s16(p: &SliceParams, input: &[i16], output: &mut [i16]) {
    slice_elems(p, input, output);
}

fn slice_elems<T: Copy>(p: &SliceParams, input: &[T], output: &mut [T]) {
    let last = (p.count as i128 - 1) * p.step as i128 + p.start as i128;
    let in_range = |i: i128| (0..p.axis_len as i128).contains(&i);
    let indices_ok = p.count == 0 || (in_range(p.start as i128) && in_range(last));
    if p.step == 0
        || !indices_ok
        || !lengths_ok(p.outer, p.axis_len, p.inner, p.count, input, output)
    {
        return;
    }
    // Every index was checked above, so the casts below are exact.
    let index = |k: usize| (p.start as isize + k as isize * p.step) as usize;
    copy_rows(p.outer, p.axis_len, p.inner, p.count, index, input, output);
}

/// `y[o, k, i] = x[o, indices[k], i]`, with `x` viewed as `[outer,
/// axis_len, inner]` and `y` as `[outer, indices.len(), inner]`; same scale
/// and zero point.
///
/// Returns early, leaving `output` unchanged, unless both slices have the
/// lengths above and every index is in `0..axis_len`.
pub fn gather_s8(p: &GatherParams, indices: &[i32], input: &[i8], output: &mut [i8]) {
    gather_elems(p, indices, input, output);
}

/// [`gather_s8`] of an int16 activation.
#[cfg(feature = "int16-activations")]
pub fn gather_s16(p: &GatherParams, indices: &[i32], input: &[i16], output: &mut [i16]) {
    gather_elems(p, indices, input, output);
}

fn gather_elems<T: Copy>(p: &GatherParams, indices: &[i32], input: &[T], output: &mut [T]) {
    let count = indices.len();
    let in_range = |&i: &i32| usize::try_from(i).is_ok_and(|i| i < p.axis_len);
    if !indices.iter().all(in_range)
        || !lengths_ok(p.outer, p.axis_len, p.inner, count, input, output)
    {
        return;
    }
    let index = |k: usize| indices.get(k).map_or(0, |&i| i as usize);
    copy_rows(p.outer, p.axis_len, p.inner, count, index, input, output);
}

fn lengths_ok<T>(
    outer: usize,
    axis_len: usize,
    inner: usize,
    count: usize,
    x: &[T],
    y: &[T],
) -> bool {
    let len = |n: usize| outer.checked_mul(n)?.checked_mul(inner);
    len(axis_len) == Some(x.len()) && len(count) == Some(y.len())
}

/// Copies row `index(k)` of every outer block of `input` to row `k` of the
/// same block of `output`; rows are `inner` long. Indices are in range.
fn copy_rows<T: Copy>(
    outer: usize,
    axis_len: usize,
    inner: usize,
    count: usize,
    index: impl Fn(usize) -> usize,
    input: &[T],
    output: &mut [T],
) {
    if inner == 0 || count == 0 {
        return;
    }
    let out_blocks = output.chunks_exact_mut(count * inner);
    for (x_block, y_block) in input
        .chunks_exact(axis_len * inner)
        .zip(out_blocks)
        .take(outer)
    {
        for (k, y_row) in y_block.chunks_exact_mut(inner).enumerate() {
            let start = index(k) * inner;
            if let Some(x_row) = x_block.get(start..start + inner) {
                y_row.copy_from_slice(x_row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_with_negative_step_reverses() {
        // x [2, 4]: rows along axis 1; indices 3, 1.
        let p = SliceParams {
            outer: 2,
            axis_len: 4,
            inner: 1,
            start: 3,
            step: -2,
            count: 2,
        };
        let mut y = [0i8; 4];
        slice_s8(&p, &[0, 1, 2, 3, 10, 11, 12, 13], &mut y);
        assert_eq!(y, [3, 1, 13, 11]);
    }

    #[test]
    fn gather_repeats_and_reorders_rows() {
        // x [3, 2] along axis 0: rows (1, 2), (3, 4), (5, 6).
        let p = GatherParams {
            outer: 1,
            axis_len: 3,
            inner: 2,
        };
        let mut y = [0i8; 6];
        gather_s8(&p, &[2, 0, 2], &[1, 2, 3, 4, 5, 6], &mut y);
        assert_eq!(y, [5, 6, 1, 2, 5, 6]);
    }

    #[test]
    fn out_of_range_indices_write_nothing() {
        let p = GatherParams {
            outer: 1,
            axis_len: 3,
            inner: 1,
        };
        let mut y = [9i8; 2];
        gather_s8(&p, &[0, 3], &[1, 2, 3], &mut y);
        gather_s8(&p, &[-1, 0], &[1, 2, 3], &mut y);
        assert_eq!(y, [9; 2]);
        let s = SliceParams {
            outer: 1,
            axis_len: 3,
            inner: 1,
            start: 1,
            step: 2,
            count: 2,
        };
        slice_s8(&s, &[1, 2, 3], &mut y);
        assert_eq!(y, [9; 2]);
    }
}
