//! ReduceSum (ReduceMean too), ReduceMax and ReduceL2 over any set of axes.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::{reduce as w, reduce_l2 as l2};
use crate::kernels::{reduce_l2_s8, reduce_max_s8, reduce_sum_s8, ReduceParams};

/// Most elements one output sums: `255 · 2^23` stays inside `i32`.
pub const MAX_REDUCE_COUNT: usize = 1 << 23;

/// A prepared ReduceSum, ReduceMax or ReduceL2.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reduce<'a> {
    p: ReduceParams,
    x: Operand<'a>,
    how: How,
}

/// A prepared reduction with an int16 side: whether the input and the
/// output are int16.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct ReduceS16<'a> {
    reduce: Reduce<'a>,
    wide: [bool; 2],
}

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum How {
    Sum,
    Max,
    /// With the kernel's `eps` word.
    L2(u32),
}

/// Input `[x]`; see `params::reduce` (and `params::reduce_l2`, the same
/// words and `EPS`).
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>, how: How) -> Result<Reduce<'a>, Error> {
    let how = words(cx, how)?;
    let x = cx.input(0)?;
    let input_zero_point = cx.i8_operand(&x)?;
    let window = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    decode(cx, how, x, input_zero_point, window)
}

/// [`prepare`] with int16 sides: the input and the output each an int8
/// per-tensor tensor or an int16 activation (zero point 0).
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>, how: How) -> Result<ReduceS16<'a>, Error> {
    use crate::format::layout::DType;
    let how = words(cx, how)?;
    let x = cx.input(0)?;
    let input_zero_point = cx.s8_or_s16_operand(&x)?;
    let wide = [x.dtype, cx.output.dtype].map(|d| d == DType::I16);
    if wide[1] {
        cx.i16_operand(&cx.output)?;
    }
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    Ok(ReduceS16 {
        reduce: decode(cx, how, x, input_zero_point, window)?,
        wide,
    })
}

/// The arity check, and ReduceL2's `eps` word.
fn words(cx: &Ctx<'_, '_>, how: How) -> Result<How, Error> {
    Ok(match how {
        How::L2(_) => {
            cx.check_arity(1, l2::COUNT)?;
            let eps = u32::try_from(cx.word(l2::EPS)?).map_err(|_| cx.bad(why!("negative eps")))?;
            How::L2(eps)
        }
        other => {
            cx.check_arity(1, w::COUNT)?;
            other
        }
    })
}

/// The geometry and words of either kind.
fn decode<'a>(
    cx: &Ctx<'_, 'a>,
    how: How,
    x: crate::format::TensorInfo<'a>,
    input_zero_point: i32,
    (act_min, act_max): (i32, i32),
) -> Result<Reduce<'a>, Error> {
    let rank = x.rank();
    let dims = x.dims_usize();
    let shape = [dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]];
    cx.ensure(
        rank <= 6 && shape.iter().take(rank).all(|&d| d > 0),
        why!("reduce input needs rank <= 6 and no zero-size dim"),
    )?;
    let axes = cx.word(w::AXES)?;
    cx.ensure(
        axes > 0 && axes < (1 << rank),
        why!("reduce axes must be a non-empty mask below the rank"),
    )?;
    let reduced = |d: usize| axes & (1 << d) != 0;
    let count: usize = (0..rank)
        .filter(|&d| reduced(d))
        .map(|d| shape[d])
        .product();
    cx.ensure(
        count <= MAX_REDUCE_COUNT,
        why!("more than 2^23 elements per reduction"),
    )?;
    cx.ensure(
        output_shape_ok(cx.output.dims(), &shape[..rank], reduced),
        why!("output shape is not the kept dims (with or without 1s)"),
    )?;
    let (multiplier, shift) = cx.requant_pair(w::MULTIPLIER, w::SHIFT)?;
    let p = ReduceParams {
        shape,
        rank,
        axes: axes as u8,
        input_zero_point,
        output_zero_point: cx.out_zp,
        multiplier,
        shift,
        act_min,
        act_max,
    };
    Ok(Reduce {
        p,
        x: Operand::of(&x),
        how,
    })
}

/// `out` is the input shape with the reduced dims set to 1 (keepdims) or
/// dropped.
fn output_shape_ok(out: &[u32], shape: &[usize], reduced: impl Fn(usize) -> bool) -> bool {
    let keep = |d: usize| if reduced(d) { 1 } else { shape[d] };
    let kept_only = (0..shape.len()).filter(|&d| !reduced(d)).map(|d| shape[d]);
    let out = out.iter().map(|&d| d as usize);
    (out.len() == shape.len() && out.clone().eq((0..shape.len()).map(keep))) || out.eq(kept_only)
}

impl Reduce<'_> {
    pub fn kernel(&self) -> &'static str {
        match self.how {
            How::Sum => "reduce_sum_s8",
            How::Max => "reduce_max_s8",
            How::L2(_) => "reduce_l2_s8",
        }
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        match self.how {
            How::Sum => reduce_sum_s8(&self.p, x, io.output),
            How::Max => reduce_max_s8(&self.p, x, io.output),
            How::L2(eps) => reduce_l2_s8(&self.p, eps, x, io.output),
        }
        Ok(())
    }
}

#[cfg(feature = "int16-activations")]
impl ReduceS16<'_> {
    pub fn kernel(&self) -> &'static str {
        match (self.reduce.how, self.wide) {
            (How::L2(_), [true, false]) => "reduce_l2_s16_s8",
            (How::L2(_), [false, true]) => "reduce_l2_s8_s16",
            (How::L2(_), _) => "reduce_l2_s16",
            (How::Max, [true, false]) => "reduce_max_s16_s8",
            (How::Max, [false, true]) => "reduce_max_s8_s16",
            (How::Max, _) => "reduce_max_s16",
            (_, [true, false]) => "reduce_sum_s16_s8",
            (_, [false, true]) => "reduce_sum_s8_s16",
            (_, _) => "reduce_sum_s16",
        }
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = &self.reduce.x;
        match self.wide {
            [false, false] => self.reduce.eval(io)?,
            [true, false] => self.run(io.inputs.read_i16(x)?, io.output),
            [false, true] => self.run(io.inputs.read(x)?, super::output_i16(io.output)?),
            [true, true] => self.run(io.inputs.read_i16(x)?, super::output_i16(io.output)?),
        }
        Ok(())
    }

    fn run<X, Y>(&self, x: &[X], y: &mut [Y])
    where
        X: crate::kernels::Lane + Into<i32> + Default,
        Y: crate::kernels::Lane,
    {
        use crate::kernels::{reduce_l2_s16, reduce_s16};
        let p = &self.reduce.p;
        match self.reduce.how {
            How::L2(eps) => reduce_l2_s16(p, eps, x, y),
            how => reduce_s16(p, how == How::Max, x, y),
        }
    }
}
