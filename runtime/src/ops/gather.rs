//! Gather: selection along one axis, either a strided range (Slice, Split,
//! the pieces of PyTorch's circular padding) or constant indices.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::gather as w;
use crate::kernels::{gather_s8, slice_s8, GatherParams, SliceParams};

/// A prepared Gather.
#[derive(Clone, Copy, Debug)]
pub(super) enum Gather<'a> {
    Slice {
        p: SliceParams,
        x: Operand<'a>,
        /// An int16 activation on both sides.
        wide: bool,
    },
    Indices {
        p: GatherParams,
        indices: &'a [i32],
        x: Operand<'a>,
        wide: bool,
    },
}

/// Input `[x]` (a strided range) or `[x, indices]`; see `params::gather`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Gather<'a>, Error> {
    let n_inputs = cx.op.inputs.len();
    cx.ensure(
        n_inputs == 1 || n_inputs == 2,
        why!("wrong number of inputs"),
    )?;
    cx.check_arity(n_inputs, w::COUNT)?;
    let x = cx.input(0)?;
    let y = &cx.output;
    let wide = super::mover_operand(cx, &x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    let rank = x.rank();
    cx.ensure(axis < rank, why!("axis out of range"))?;
    let (xd, yd) = (x.dims(), y.dims());
    // The output keeps the axis (length `count`), or drops it when it picks
    // one index (ONNX Gather with a scalar index): the same bytes either way.
    let kept = yd.len() == rank
        && xd
            .iter()
            .zip(yd)
            .enumerate()
            .all(|(d, (a, b))| d == axis || a == b);
    let dropped = yd.len() + 1 == rank
        && xd.get(..axis) == yd.get(..axis)
        && xd.get(axis + 1..) == yd.get(axis..);
    cx.ensure(
        kept || dropped,
        why!("output shape differs from the input off the axis"),
    )?;
    let xd = x.dims_usize();
    let outer: usize = xd.iter().take(axis).product();
    let inner: usize = xd.iter().take(rank).skip(axis + 1).product();
    let count = if kept { y.dims_usize()[axis] } else { 1 };
    let axis_len = xd[axis];
    let (start, step) = (cx.word(w::START)?, cx.word(w::STEP)?);
    if n_inputs == 2 {
        cx.ensure(
            start == 0 && step == 0,
            why!("start and step must be 0 with an index list"),
        )?;
        let indices = cx.i32_vector(&cx.input(1)?, count)?;
        let in_range = |&i: &i32| usize::try_from(i).is_ok_and(|i| i < axis_len);
        cx.ensure(indices.iter().all(in_range), why!("index out of range"))?;
        let p = GatherParams {
            outer,
            axis_len,
            inner,
        };
        return Ok(Gather::Indices {
            p,
            indices,
            x: Operand::of(&x),
            wide,
        });
    }
    let last = i64::from(start) + (count as i64 - 1) * i64::from(step);
    let in_range = |i: i64| (0..axis_len as i64).contains(&i);
    cx.ensure(
        step != 0 && in_range(i64::from(start)) && in_range(last),
        why!("slice reaches outside the axis, or step is 0"),
    )?;
    let p = SliceParams {
        outer,
        axis_len,
        inner,
        start: start as usize,
        step: step as isize,
        count,
    };
    Ok(Gather::Slice {
        p,
        x: Operand::of(&x),
        wide,
    })
}

impl Gather<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        match *self {
            #[cfg(feature = "int16-activations")]
            Gather::Slice {
                ref p,
                x,
                wide: true,
            } => {
                crate::kernels::slice_s16(p, io.inputs.read_i16(&x)?, super::output_i16(io.output)?)
            }
            #[cfg(feature = "int16-activations")]
            Gather::Indices {
                ref p,
                indices,
                x,
                wide: true,
            } => crate::kernels::gather_s16(
                p,
                indices,
                io.inputs.read_i16(&x)?,
                super::output_i16(io.output)?,
            ),
            Gather::Slice { ref p, x, .. } => slice_s8(p, io.inputs.read(&x)?, io.output),
            Gather::Indices {
                ref p, indices, x, ..
            } => gather_s8(p, indices, io.inputs.read(&x)?, io.output),
        }
        Ok(())
    }

    pub fn kernel(&self) -> &'static str {
        match *self {
            Gather::Slice { wide: true, .. } => "slice_s16",
            Gather::Indices { wide: true, .. } => "gather_s16",
            Gather::Slice { .. } => "slice_s8",
            Gather::Indices { .. } => "gather_s8",
        }
    }
}
