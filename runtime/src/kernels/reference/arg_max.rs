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
    // best < 128: every index is an i8.
    arg_max_into(p, x, y, MAX_ARG_MAX_LEN, |best| best as i8);
}

/// The longest axis [`arg_max_s8_s16`] takes: its indices are `i16` values
/// (a peak's position over a signal's samples).
#[cfg(feature = "int16-activations")]
pub const MAX_ARG_MAX_LEN_S16: usize = 32768;

/// [`arg_max_s8`] with `i16` indices, for axes up to
/// [`MAX_ARG_MAX_LEN_S16`] (feature `int16-activations`).
#[cfg(feature = "int16-activations")]
pub fn arg_max_s8_s16(p: &ArgMaxParams, x: &[i8], y: &mut [i16]) {
    // best < 32768: every index is an i16.
    arg_max_into(p, x, y, MAX_ARG_MAX_LEN_S16, |best| best as i16);
}

/// The argmax loop, writing each index through `index`.
fn arg_max_into<Y>(
    p: &ArgMaxParams,
    x: &[i8],
    y: &mut [Y],
    max_len: usize,
    index: impl Fn(usize) -> Y,
) {
    let (outer, len, inner) = (p.outer, p.len, p.inner);
    let sizes = outer
        .checked_mul(inner)
        .and_then(|n| Some((n, n.checked_mul(len)?)));
    if !(1..=max_len).contains(&len) || sizes != Some((y.len(), x.len())) {
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
        *out = index(best);
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

    #[cfg(feature = "int16-activations")]
    #[test]
    fn int16_indices_reach_past_128() {
        // A peak at sample 300 of 500, and its twin at 450 for select_last;
        // two channels (inner 2), the second's peak at 7.
        let mut x = [0i8; 1000];
        x[2 * 300] = 90;
        x[2 * 450] = 90;
        x[2 * 7 + 1] = 5;
        let p = ArgMaxParams {
            outer: 1,
            len: 500,
            inner: 2,
            select_last: false,
        };
        let mut y = [-1i16; 2];
        arg_max_s8_s16(&p, &x, &mut y);
        assert_eq!(y, [300, 7]);
        let last = ArgMaxParams {
            select_last: true,
            ..p
        };
        arg_max_s8_s16(&last, &x, &mut y);
        // The second channel's zeros after 7 tie at 0 below 5: 7 stays.
        assert_eq!(y, [450, 7]);
        // The int8 kernel refuses the axis; past 32768 both refuse.
        let mut y8 = [-1i8; 2];
        arg_max_s8(&p, &x, &mut y8);
        assert_eq!(y8, [-1, -1]);
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
