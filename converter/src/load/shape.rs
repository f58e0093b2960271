//! Shape arithmetic shared by constant folding and activation ops.

use super::node::norm_axis;

/// The element count of a shape that [`check_size`] accepted (every tensor
/// in the IR and every constant was).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The most elements one tensor may hold. Real biosignal models are far
/// below it; a bigger shape is a malformed model, and refusing it here keeps
/// every later product of its dims from overflowing.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

/// The element count of `shape` if it fits [`MAX_TENSOR_ELEMENTS`]. Zero
/// dims are skipped in the bound, so that any product of a subset of the
/// dims (strides, inner and outer counts) is bounded too.
pub fn check_size(shape: &[usize]) -> Result<usize, String> {
    match nonzero_product(shape) {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(numel(shape)),
        _ => Err(format!(
            "shape {shape:?} has more elements than medq accepts (2^28)"
        )),
    }
}

/// The product of `shape`'s non-zero dims (`None` on overflow): the bound
/// on every product of a subset of its dims, which the element count (0 as
/// soon as one dim is) is not.
pub fn nonzero_product(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Row-major strides.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Numpy (multidirectional) broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pa = rank - a.len();
    let pb = rank - b.len();
    (0..rank)
        .map(|i| {
            let da = if i < pa { 1 } else { a[i - pa] };
            let db = if i < pb { 1 } else { b[i - pb] };
            match (da, db) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// For every element of `out` (row-major), the flat index of the element of a
/// tensor of shape `input` that broadcasts onto it. `input` must broadcast to
/// `out`.
pub fn broadcast_indices(input: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len().saturating_sub(input.len());
    let in_strides = strides(input);
    // The stride of each output axis in the input; 0 where the input broadcasts.
    let eff: Vec<usize> = (0..out.len())
        .map(|i| {
            if i < pad {
                0
            } else {
                let j = i - pad;
                if input.get(j) == Some(&1) && out[i] != 1 {
                    0
                } else {
                    in_strides.get(j).copied().unwrap_or(0)
                }
            }
        })
        .collect();
    gather_indices(out, |axis, i| i * eff[axis])
}

/// Flat indices for every multi-index of `out` (row-major), where the source
/// offset is the sum over axes of `offset(axis, index_on_axis)`.
pub fn gather_indices(out: &[usize], offset: impl Fn(usize, usize) -> usize) -> Vec<usize> {
    let total = numel(out);
    let mut result = Vec::with_capacity(total);
    if total == 0 {
        return result;
    }
    let mut idx = vec![0usize; out.len()];
    for _ in 0..total {
        result.push(idx.iter().enumerate().map(|(a, &i)| offset(a, i)).sum());
        for a in (0..out.len()).rev() {
            idx[a] += 1;
            if idx[a] < out[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    result
}

/// ONNX Reshape: `0` copies the input dim (unless `allowzero`), `-1` is inferred.
pub fn reshape(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => return Err(format!("target shape {spec:?} has more than one -1")),
            0 if !allowzero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| format!("target shape {spec:?} copies dim {i} (0) but the input {input:?} has no such dim"))?,
            ),
            d => out.push(usize::try_from(d).map_err(|_| format!("invalid dim {d} in target shape {spec:?}"))?),
        }
    }
    let total = check_size(input)?;
    if let Some(i) = infer {
        let known = check_size(&out).map_err(|e| format!("target {e}"))?;
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if check_size(&out).map_err(|e| format!("target {e}"))? != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} elements) to {spec:?}"
        ));
    }
    Ok(out)
}

pub fn flatten(input: &[usize], axis: i64) -> Result<Vec<usize>, String> {
    let rank = input.len();
    // Flatten's axis ranges over [-r, r]: r itself is allowed.
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    let a = usize::try_from(a)
        .ok()
        .filter(|&a| a <= rank)
        .ok_or_else(|| format!("axis {axis} is out of range for rank {rank}"))?;
    Ok(vec![numel(&input[..a]), numel(&input[a..])])
}

/// ONNX Squeeze: listed axes (which must be 1), or all 1-dims when absent.
pub fn squeeze(input: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>, String> {
    match axes {
        None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let mut drop = vec![false; input.len()];
            for &a in axes {
                let i = norm_axis(a, input.len())
                    .ok_or_else(|| format!("axis {a} is out of range for shape {input:?}"))?;
                if input[i] != 1 {
                    return Err(format!(
                        "cannot squeeze axis {a} of shape {input:?}: its size is not 1"
                    ));
                }
                drop[i] = true;
            }
            Ok(input
                .iter()
                .zip(drop)
                .filter(|(_, d)| !d)
                .map(|(&s, _)| s)
                .collect())
        }
    }
}

pub fn unsqueeze(input: &[usize], axes: &[i64]) -> Result<Vec<usize>, String> {
    let rank = input.len() + axes.len();
    let mut is_new = vec![false; rank];
    for &a in axes {
        let i = norm_axis(a, rank)
            .ok_or_else(|| format!("axis {a} is out of range for output rank {rank}"))?;
        if is_new[i] {
            return Err(format!("axis {a} is repeated in {axes:?}"));
        }
        is_new[i] = true;
    }
    let mut rest = input.iter();
    Ok(is_new
        .into_iter()
        .map(|n| {
            if n {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

/// `perm` as a valid permutation of `0..rank` (default: reversed axes).
pub fn permutation(perm: Option<&[i64]>, rank: usize) -> Result<Vec<usize>, String> {
    let p: Vec<usize> = match perm {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).map_err(|_| format!("invalid perm {p:?}")))
            .collect::<Result<_, _>>()?,
    };
    let mut seen = vec![false; rank];
    if p.len() != rank {
        return Err(format!("perm {p:?} does not match rank {rank}"));
    }
    for &a in &p {
        match seen.get_mut(a) {
            Some(s) if !*s => *s = true,
            _ => return Err(format!("perm {p:?} is not a permutation of 0..{rank}")),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast(&[1, 3, 4, 4], &[3, 1, 1]), Some(vec![1, 3, 4, 4]));
        assert_eq!(broadcast(&[2, 1], &[1, 5]), Some(vec![2, 5]));
        assert_eq!(broadcast(&[2, 3], &[4]), None);
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn reshapes() {
        assert_eq!(reshape(&[1, 8, 2, 2], &[0, -1], false), Ok(vec![1, 32]));
        assert!(reshape(&[1, 8], &[3, -1], false).is_err());
        assert_eq!(flatten(&[1, 8, 2, 2], 1), Ok(vec![1, 32]));
        assert_eq!(flatten(&[1, 8, 2, 2], 0), Ok(vec![1, 32]));
        assert_eq!(flatten(&[1, 8, 2, 2], -1), Ok(vec![16, 2]));
        assert_eq!(squeeze(&[1, 8, 1], Some(&[-1])), Ok(vec![1, 8]));
        assert_eq!(squeeze(&[1, 8, 1], None), Ok(vec![8]));
        assert!(squeeze(&[1, 8, 1], Some(&[1])).is_err());
        assert_eq!(unsqueeze(&[8, 3], &[0, -1]), Ok(vec![1, 8, 3, 1]));
        assert_eq!(permutation(None, 3), Ok(vec![2, 1, 0]));
        assert!(permutation(Some(&[0, 0, 1]), 3).is_err());
    }
}
