//! Concat along one axis, requantizing each input to the output's scale.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::concat as w;
use crate::format::{Model, TensorInfo};
use crate::kernels::{concat_part_s8, ConcatPart};

/// A prepared Concat. The inputs are many, so they are resolved from the
/// op record on each run (already validated, so that cannot fail).
#[derive(Clone, Copy, Debug)]
pub(super) struct Concat<'a> {
    inputs: &'a [u16],
    params: &'a [i32],
    axis: usize,
    outer: usize,
    inner: usize,
    out_axis_len: usize,
    output_zero_point: i32,
}

/// A prepared Concat with an int16 side: each input and the output is
/// int8 or int16, read and written by its own type.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct ConcatS16<'a> {
    concat: Concat<'a>,
    output_wide: bool,
}

/// Inputs `[x0, .., xn−1]`, then `(multiplier, shift)` per input.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Concat<'a>, Error> {
    decode(cx, |x| cx.i8_operand(x).map(drop))
}

/// [`prepare`] where an input or the output is an int16 activation (zero
/// point 0); the others are int8 per-tensor tensors.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<ConcatS16<'a>, Error> {
    cx.s8_or_s16_operand(&cx.output)?;
    Ok(ConcatS16 {
        concat: decode(cx, |x| cx.s8_or_s16_operand(x).map(drop))?,
        output_wide: cx.output.dtype == crate::format::layout::DType::I16,
    })
}

/// The geometry and words, each input checked by `operand`.
fn decode<'a>(
    cx: &Ctx<'_, 'a>,
    operand: impl Fn(&TensorInfo<'a>) -> Result<(), Error>,
) -> Result<Concat<'a>, Error> {
    let y = &cx.output;
    let n = cx.op.inputs.len();
    cx.ensure(n >= 1, why!("concat needs at least one input"))?;
    cx.check_arity(n, w::COUNT_FIXED + 2 * n)?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < y.rank(), why!("axis out of range"))?;
    let mut axis_sum = 0usize;
    for i in 0..n {
        let x = cx.input(i)?;
        operand(&x)?;
        let same_elsewhere = x.rank() == y.rank()
            && x.dims()
                .iter()
                .zip(y.dims())
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        cx.ensure(
            same_elsewhere,
            why!("input shape differs from the output off the axis"),
        )?;
        axis_sum = axis_sum.saturating_add(x.dims_usize().get(axis).copied().unwrap_or(0));
        cx.requant_pair(w::COUNT_FIXED + 2 * i, w::COUNT_FIXED + 2 * i + 1)?;
    }
    let dims = y.dims_usize();
    let out_axis_len = dims.get(axis).copied().unwrap_or(0);
    cx.ensure(
        axis_sum == out_axis_len,
        why!("input sizes along the axis do not add up to the output's"),
    )?;
    Ok(Concat {
        inputs: cx.op.inputs,
        params: cx.op.params,
        axis,
        outer: dims.iter().take(axis).product(),
        inner: dims.iter().take(y.rank()).skip(axis + 1).product(),
        out_axis_len,
        output_zero_point: cx.out_zp,
    })
}

impl<'a> Concat<'a> {
    pub fn eval(&self, model: &Model<'a>, io: &mut Io<'_>) -> Result<(), Error> {
        self.each_part(model, io, |part, _, x, io| {
            concat_part_s8(part, io.inputs.read(&x)?, io.output);
            Ok(())
        })
    }

    /// Calls `copy` on each input in turn, with its slot of the output.
    fn each_part(
        &self,
        model: &Model<'a>,
        io: &mut Io<'_>,
        copy: impl Fn(&ConcatPart, &TensorInfo<'a>, Operand<'a>, &mut Io<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let missing = io.inputs.bad(why!("missing parameter"));
        let word = |w: usize| self.params.get(w).copied().ok_or(missing);
        let mut start = 0usize;
        for (i, &t) in self.inputs.iter().enumerate() {
            let x = model.tensor(usize::from(t))?;
            let axis_len = x.dims().get(self.axis).map_or(0, |&d| d as usize);
            let part = ConcatPart {
                outer: self.outer,
                in_block: axis_len * self.inner,
                out_block: self.out_axis_len * self.inner,
                out_start: start * self.inner,
                input_zero_point: x.scale_zero_point().map_or(0, |q| q.1),
                output_zero_point: self.output_zero_point,
                multiplier: word(w::COUNT_FIXED + 2 * i)?,
                shift: word(w::COUNT_FIXED + 2 * i + 1)?,
            };
            copy(&part, &x, Operand::of(&x), io)?;
            start += axis_len;
        }
        Ok(())
    }
}

#[cfg(feature = "int16-activations")]
impl<'a> ConcatS16<'a> {
    pub fn eval(&self, model: &Model<'a>, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::format::layout::DType::I16;
        use crate::kernels::concat_part_s16;
        self.concat.each_part(model, io, |part, x, operand, io| {
            match (x.dtype == I16, self.output_wide) {
                (false, false) => concat_part_s8(part, io.inputs.read(&operand)?, io.output),
                (true, false) => concat_part_s16(part, io.inputs.read_i16(&operand)?, io.output),
                (false, true) => concat_part_s16(
                    part,
                    io.inputs.read(&operand)?,
                    super::output_i16(io.output)?,
                ),
                (true, true) => concat_part_s16(
                    part,
                    io.inputs.read_i16(&operand)?,
                    super::output_i16(io.output)?,
                ),
            }
            Ok(())
        })
    }
}
