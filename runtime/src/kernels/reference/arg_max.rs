//! ArgMax: the index of the largest int8 value along one axis.

use crate::kernels::ArgMaxParams;

/// The longest axis an ArgMax takes: its indices `0..128` are `i8` values.
pub const MAX_ARG_MAX_LEN: usize = 128;

/// `y[o, i] = argmax_k x[o, k, i]`: the first index of the largest value,
/// or the last with `select_last`. Dequantization is increasing (a positive
/// scale), so this is the argmax of the real values the int8 ones stand for;
/// reals that round to the same int8 value tie.
///
/// Returns early when `len` is 0 or above [`MAX_ARG_MAX_LEN`], or `x` and
/// `y` are not `outer · len · inner` and `outer · inner` long.
pub fn arg_max_s8(p: &ArgMaxParams, x: &[i8], y: &mut [i8]) {
    let (outer, len, inner) = (p.outer, p.len, p.inner);
    let sizes = outer
        .checked_mul(inner)
        .and_then(|n| Some((n, n.checked_mul(len)?)));
    if !(1..=MAX_ARG_MAX_LEN).contains(&len) || sizes != Some((y.len(), x.len())) {
        return;
    }
    for (at, out) in y.iter_mut().enumerate() {
        let (o, i) = (at / inner, at % inner);
        let value = |k: usize| x.get((o * len + k) * inner + i).copied().unwrap_or(i8::MIN);
        let (mut best, mut top) = (0usize, value(0));
        for k in 1..len {
            let v = value(k);
            if v > top || (p.select_last && v == top) {
                (best, top) = (k, v);
            }
        }
        // best < 128.
        *out = best as i8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_or_last_of_the_largest_along_the_middle_axis() {
        // x [1, 3, 2]: columns [5, 9, 9] and [-1, -7, 4].
        let x = [5, -1, 9, -7, 9, 4];
        let p = ArgMaxParams {
            outer: 1,
            len: 3,
            inner: 2,
            select_last: false,
        };
        let mut y = [0i8; 2];
        arg_max_s8(&p, &x, &mut y);
        assert_eq!(y, [1, 2]);
        arg_max_s8(
            &ArgMaxParams {
                select_last: true,
                ..p
            },
            &x,
            &mut y,
        );
        assert_eq!(y, [2, 2]);
    }

    #[test]
    fn bad_lengths_leave_the_output_alone() {
        let p = ArgMaxParams {
            outer: 2,
            len: 3,
            inner: 1,
            select_last: false,
        };
        let mut y = [7i8; 2];
        arg_max_s8(&p, &[0; 5], &mut y);
        arg_max_s8(&ArgMaxParams { len: 129, ..p }, &[0; 258], &mut y);
        assert_eq!(y, [7, 7]);
    }
}
