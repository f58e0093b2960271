//! Reductions over any set of axes: ReduceSum (and ReduceMean, whose
//! `1/count` is in the multiplier), ReduceMax and ReduceL2.

use super::act_ok;
use crate::kernels::ReduceParams;
use crate::numerics::requantize_to_i8;

/// Most axes a reduction handles (the format's `MAX_RANK`).
const RANK: usize = 6;

/// `y = requantize_to_i8(Σ (x − zx), m, s, zy, act_min, act_max)` over the
/// reduced axes, the sum wrapping in `i32`.
///
/// Returns early unless `input` has the shape's element count, `output` has
/// the product of the kept dims, `rank <= 6`, no dim is 0 and the
/// activation range is valid.
pub fn reduce_sum_s8(p: &ReduceParams, input: &[i8], output: &mut [i8]) {
    if act_ok(p.act_min, p.act_max) {
        let sum = |acc: i32, v| acc.wrapping_add(v);
        reduce(p, input, output, 0i32, sum, |acc| to_i8(p, acc));
    }
}

/// `y = requantize_to_i8(max(x) − zx, m, s, zy, act_min, act_max)` over the
/// reduced axes. Same early returns as [`reduce_sum_s8`].
pub fn reduce_max_s8(p: &ReduceParams, input: &[i8], output: &mut [i8]) {
    if act_ok(p.act_min, p.act_max) {
        reduce(p, input, output, i32::MIN, i32::max, |acc| to_i8(p, acc));
    }
}

/// How far ReduceL2 shifts the sum of squares of an int8 input before its
/// root: `r = ⌊√(S · 2^16 + eps)⌋` is the norm at 8 fractional bits of a
/// step of x. `S < 2^23 · 2^16` (the count limit, `|x − zx| <= 255`), so
/// `S · 2^16 + eps < 2^56` and its root `< 2^28` fits `i32`.
pub const L2_SQUARE_SHIFT_S8: u32 = 16;

/// [`L2_SQUARE_SHIFT_S8`] for an int16 input: the root at 4 fractional bits
/// of its finer step. `S < 2^23 · 2^30`, so `S · 2^8 + eps < 2^62`.
pub const L2_SQUARE_SHIFT_S16: u32 = 8;

/// The Euclidean norm over the reduced axes: `S = Σ (x − zx)²` exactly in
/// `u64`, `r = ⌊√(S · 2^16 + eps)⌋` (the root at 8 fractional bits, by
/// LayerNorm's exact [`isqrt`](super::isqrt); see [`L2_SQUARE_SHIFT_S8`]),
/// `y = requantize_to_i8(r, m, s, zy, act_min, act_max)`. Same early returns
/// as [`reduce_sum_s8`].
pub fn reduce_l2_s8(p: &ReduceParams, eps: u32, input: &[i8], output: &mut [i8]) {
    let root = |s: u64| l2_root(s, L2_SQUARE_SHIFT_S8, eps) as i32;
    if act_ok(p.act_min, p.act_max) {
        reduce(p, input, output, 0u64, add_square, |acc| {
            to_i8(p, root(acc))
        });
    }
}

/// [`reduce_l2_s8`] where the input or the output is an int16 activation
/// (symmetric, zero point 0): the magnitude of an int16 spectrum. An int16
/// input's sum of squares is shifted by [`L2_SQUARE_SHIFT_S16`] instead,
/// and `r` is requantized by
/// [`requantize_i64`](crate::numerics::requantize_i64) into `Y`; on int8
/// lanes it is [`reduce_l2_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn reduce_l2_s16<X, Y>(p: &ReduceParams, eps: u32, input: &[X], output: &mut [Y])
where
    X: super::Lane + Into<i32> + Default,
    Y: super::Lane,
{
    let (m, s, zy) = (p.multiplier, p.shift, p.output_zero_point);
    let shift = if X::MAX > i8::MAX as i32 {
        L2_SQUARE_SHIFT_S16
    } else {
        L2_SQUARE_SHIFT_S8
    };
    let write = |acc: u64| {
        let r = l2_root(acc, shift, eps) as i64;
        super::requantize_to_lane(r, m, s, zy, p.act_min, p.act_max)
    };
    if super::lanes_ok::<X, Y>(p.input_zero_point, zy, p.act_min, p.act_max) {
        reduce(p, input, output, 0u64, add_square, write);
    }
}

/// One `(x − zx)²` more in ReduceL2's exact sum.
fn add_square(acc: u64, v: i32) -> u64 {
    acc.wrapping_add(u64::from(v.unsigned_abs()).pow(2))
}

/// `⌊√(S · 2^shift + eps)⌋`, below `2^31` within the count limit.
fn l2_root(sum: u64, shift: u32, eps: u32) -> u64 {
    super::isqrt((sum << shift).wrapping_add(u64::from(eps)))
}

/// [`reduce_sum_s8`] (`max == false`) or [`reduce_max_s8`] where the input
/// or the output is an int16 activation (symmetric, zero point 0): a
/// transformer's mean over its int16 residual stream. The sum is exact in
/// `i64` and requantized by [`requantize_i64`](crate::numerics::requantize_i64);
/// on int8 lanes both are the int8 kernels bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn reduce_s16<X, Y>(p: &ReduceParams, max: bool, input: &[X], output: &mut [Y])
where
    X: super::Lane + Into<i32> + Default,
    Y: super::Lane,
{
    let lanes = super::lanes_ok::<X, Y>(
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    );
    let (m, s, zy) = (p.multiplier, p.shift, p.output_zero_point);
    let write = |acc| super::requantize_to_lane(acc, m, s, zy, p.act_min, p.act_max);
    match (lanes, max) {
        (false, _) => {}
        (true, false) => {
            let sum = |acc: i64, v: i32| acc.wrapping_add(i64::from(v));
            reduce(p, input, output, 0i64, sum, write);
        }
        (true, true) => {
            let top = |acc: i64, v: i32| acc.max(i64::from(v));
            reduce(p, input, output, i64::from(i32::MIN), top, write);
        }
    }
}

/// `acc` requantized into the int8 output.
fn to_i8(p: &ReduceParams, acc: i32) -> i8 {
    let (m, s, zy) = (p.multiplier, p.shift, p.output_zero_point);
    requantize_to_i8(acc, m, s, zy, p.act_min, p.act_max)
}

/// The sizes and element strides of one group of axes (kept or reduced).
#[derive(Clone, Copy)]
struct Axes {
    sizes: [usize; RANK],
    strides: [usize; RANK],
    n: usize,
}

impl Axes {
    /// Number of index tuples (1 for no axes).
    fn count(&self) -> usize {
        self.sizes.iter().take(self.n).product()
    }

    /// Calls `f` with the offset of every index tuple, row-major.
    fn for_each(&self, mut f: impl FnMut(usize)) {
        let mut idx = [0usize; RANK];
        for _ in 0..self.count() {
            let off = (0..self.n).map(|d| idx[d] * self.strides[d]).sum();
            f(off);
            // Odometer step, innermost axis first.
            for d in (0..self.n).rev() {
                idx[d] += 1;
                if idx[d] < self.sizes[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

/// Splits the shape into kept and reduced axes; `None` if the shape is not
/// valid (see the early returns).
fn split(p: &ReduceParams) -> Option<(Axes, Axes, usize)> {
    if p.rank > RANK || p.shape.iter().take(p.rank).any(|&d| d == 0) {
        return None;
    }
    let empty = Axes {
        sizes: [1; RANK],
        strides: [0; RANK],
        n: 0,
    };
    let (mut kept, mut reduced) = (empty, empty);
    let mut stride = 1usize;
    for d in (0..p.rank).rev() {
        let size = p.shape[d];
        let group = if p.axes & (1 << d) != 0 {
            &mut reduced
        } else {
            &mut kept
        };
        group.sizes[group.n] = size;
        group.strides[group.n] = stride;
        group.n += 1;
        stride = stride.checked_mul(size)?;
    }
    // Collected innermost first: put them in row-major order.
    for g in [&mut kept, &mut reduced] {
        g.sizes[..g.n].reverse();
        g.strides[..g.n].reverse();
    }
    Some((kept, reduced, stride))
}

/// Every kernel's walk: `combine` folds each reduced `x − zx` into `init`,
/// and `finish` turns the result into the output value (the caller has
/// checked the activation window).
fn reduce<X: Copy + Into<i32> + Default, Y, A: Copy>(
    p: &ReduceParams,
    input: &[X],
    output: &mut [Y],
    init: A,
    combine: impl Fn(A, i32) -> A,
    finish: impl Fn(A) -> Y,
) {
    let Some((kept, reduced, total)) = split(p) else {
        return;
    };
    if input.len() != total || output.len() != kept.count() {
        return;
    }
    let mut out = output.iter_mut();
    kept.for_each(|base| {
        let mut acc = init;
        reduced.for_each(|off| {
            let v = input.get(base + off).copied().unwrap_or_default();
            acc = combine(acc, v.into().wrapping_sub(p.input_zero_point));
        });
        if let Some(y) = out.next() {
            *y = finish(acc);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(shape: &[usize], axes: u8) -> ReduceParams {
        let mut s = [1usize; 6];
        s[..shape.len()].copy_from_slice(shape);
        ReduceParams {
            shape: s,
            rank: shape.len(),
            axes,
            input_zero_point: 1,
            output_zero_point: 0,
            multiplier: 1 << 30,
            shift: 1,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn sum_and_max_over_the_middle_axis() {
        // [2, 3, 2]; reduce axis 1.
        let x: [i8; 12] = core::array::from_fn(|i| i as i8);
        let mut y = [0i8; 4];
        reduce_sum_s8(&params(&[2, 3, 2], 0b010), &x, &mut y);
        // (0+2+4)−3, (1+3+5)−3, (6+8+10)−3, (7+9+11)−3
        assert_eq!(y, [3, 6, 21, 24]);
        reduce_max_s8(&params(&[2, 3, 2], 0b010), &x, &mut y);
        assert_eq!(y, [3, 4, 9, 10]);
    }

    #[test]
    fn sum_over_outer_and_inner_axes() {
        // [2, 2, 3]; reduce axes 0 and 2: y[j] = Σ_{i,k} x[i,j,k] − 6.
        let x: [i8; 12] = core::array::from_fn(|i| i as i8);
        let mut y = [0i8; 2];
        reduce_sum_s8(&params(&[2, 2, 3], 0b101), &x, &mut y);
        // j = 0: 3 + 21; j = 1: 12 + 30.
        assert_eq!(y, [24 - 6, 42 - 6]);
    }

    #[test]
    fn bad_lengths_leave_the_output() {
        let mut y = [9i8; 2];
        reduce_sum_s8(&params(&[2, 2], 0b01), &[0; 3], &mut y);
        reduce_sum_s8(&params(&[2, 0], 0b01), &[], &mut y);
        assert_eq!(y, [9, 9]);
    }
}
