//! TopK: the `k` largest (or smallest) int8 values along one axis, or their
//! indices, in order.

use crate::kernels::TopKParams;

/// `y[o, r, i]` = the `r`-th largest `x[o, ·, i]` (`largest`), or the
/// `r`-th smallest, for `r < k`: values in order, of equal values the lower
/// index first (ONNX's order). Dequantization is increasing, so these are
/// the real values' top `k`; reals that round to one int8 value tie.
///
/// Returns early when `k` is 0 or above `len`, or `x` and `y` are not
/// `outer · len · inner` and `outer · k · inner` long.
pub fn top_k_s8(p: &TopKParams, x: &[i8], y: &mut [i8]) {
    top_k_into(p, x, y, usize::MAX, |_, v| v);
}

/// [`top_k_s8`]'s indices instead of its values (scale 1, zero point 0),
/// for axes of at most [`MAX_ARG_MAX_LEN`](super::MAX_ARG_MAX_LEN) values.
pub fn top_k_indices_s8(p: &TopKParams, x: &[i8], y: &mut [i8]) {
    // k < 128: every index is an i8.
    top_k_into(p, x, y, super::MAX_ARG_MAX_LEN, |k, _| k as i8);
}

/// [`top_k_indices_s8`] with `i16` indices, for axes of up to
/// [`MAX_ARG_MAX_LEN_S16`](super::MAX_ARG_MAX_LEN_S16) values (feature
/// `int16-activations`).
#[cfg(feature = "int16-activations")]
pub fn top_k_indices_s8_s16(p: &TopKParams, x: &[i8], y: &mut [i16]) {
    // k < 32768: every index is an i16.
    top_k_into(p, x, y, super::MAX_ARG_MAX_LEN_S16, |k, _| k as i16);
}

/// The selection: rank `r` is the best element ranked after rank `r − 1`
/// in the order (value, then lower index first), found by a scan, so that
/// no buffer is needed (`k · len` comparisons per slice).
fn top_k_into<Y>(
    p: &TopKParams,
    x: &[i8],
    y: &mut [Y],
    max_len: usize,
    out: impl Fn(usize, i8) -> Y,
) {
    let (outer, len, inner, k) = (p.outer, p.len, p.inner, p.k);
    let sizes = outer
        .checked_mul(inner)
        .and_then(|n| Some((n.checked_mul(k)?, n.checked_mul(len)?)));
    if !(1..=max_len).contains(&len) || !(1..=len).contains(&k) || sizes != Some((y.len(), x.len()))
    {
        return;
    }
    // `a` ranks before `b`: a better value, or the same and a lower index.
    let before = |(va, ia): (i8, usize), (vb, ib): (i8, usize)| match p.largest {
        true => va > vb || (va == vb && ia < ib),
        false => va < vb || (va == vb && ia < ib),
    };
    for o in 0..outer {
        for i in 0..inner {
            let value = |j: usize| {
                x.get((o * len + j) * inner + i)
                    .copied()
                    .unwrap_or_default()
            };
            let mut previous: Option<(i8, usize)> = None;
            for r in 0..k {
                let mut best: Option<(i8, usize)> = None;
                for j in 0..len {
                    let candidate = (value(j), j);
                    let after_previous = previous.is_none_or(|prev| before(prev, candidate));
                    if after_previous && best.is_none_or(|b| before(candidate, b)) {
                        best = Some(candidate);
                    }
                }
                // k ≤ len: a rank r < k always has a candidate left.
                let Some((v, j)) = best else { return };
                if let Some(slot) = y.get_mut((o * k + r) * inner + i) {
                    *slot = out(j, v);
                }
                previous = best;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(outer: usize, len: usize, inner: usize, k: usize, largest: bool) -> TopKParams {
        TopKParams {
            outer,
            len,
            inner,
            k,
            largest,
        }
    }

    #[test]
    fn values_and_indices_in_order_ties_by_lower_index() {
        // Two rows of 6; the 3 largest and the 2 smallest of each.
        let x = [5i8, -1, 7, 5, 7, 0, 1, 2, 3, 4, 5, 6];
        let (mut v, mut i) = ([0i8; 6], [0i8; 6]);
        let p = params(2, 6, 1, 3, true);
        top_k_s8(&p, &x, &mut v);
        top_k_indices_s8(&p, &x, &mut i);
        assert_eq!((v, i), ([7, 7, 5, 6, 5, 4], [2, 4, 0, 5, 4, 3]));
        let p = params(2, 6, 1, 2, false);
        let (mut v, mut i) = ([0i8; 4], [0i8; 4]);
        top_k_s8(&p, &x, &mut v);
        top_k_indices_s8(&p, &x, &mut i);
        assert_eq!((v, i), ([-1, 0, 1, 2], [1, 5, 0, 1]));
    }

    #[test]
    fn an_inner_axis_is_strided() {
        // x [1, 3, 2]: the top 2 along the middle axis of each column.
        let x = [1i8, 9, 3, 8, 2, 7];
        let mut v = [0i8; 4];
        top_k_s8(&params(1, 3, 2, 2, true), &x, &mut v);
        assert_eq!(v, [3, 9, 2, 8]);
    }

    #[test]
    fn bad_sizes_write_nothing() {
        let x = [1i8; 6];
        let mut y = [7i8; 3];
        top_k_s8(&params(1, 6, 1, 4, true), &x, &mut y);
        top_k_s8(&params(1, 6, 1, 0, true), &x, &mut y[..0]);
        top_k_s8(&params(1, 3, 1, 4, true), &x[..3], &mut y);
        top_k_indices_s8(&params(1, 200, 1, 3, true), &[0; 200], &mut y);
        assert_eq!(y, [7; 3]);
    }
}
