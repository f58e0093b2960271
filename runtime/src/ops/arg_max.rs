//! ArgMax: the index of the largest value along one axis, as an int8
//! output of scale 1 (a classifier's class index as a model output), or an
//! int16 one past 128 values (a peak's position over a signal; feature
//! `int16-activations`).

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::arg_max as w;
use crate::format::Quant;
use crate::kernels::{arg_max_s8, ArgMaxParams, MAX_ARG_MAX_LEN};

/// A prepared ArgMax.
#[derive(Clone, Copy, Debug)]
pub(super) struct ArgMax<'a> {
    p: ArgMaxParams,
    x: Operand<'a>,
    /// The indices are `i16`.
    #[cfg(feature = "int16-activations")]
    wide: bool,
}

/// Input `[x]`; see `params::arg_max`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<ArgMax<'a>, Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    cx.i8_operand(&x)?;
    let dims = x.dims_usize();
    let dims = dims.get(..x.rank()).unwrap_or(&[]);
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < dims.len(), why!("axis out of range"))?;
    let select_last = match cx.word(w::SELECT_LAST_INDEX)? {
        0 => false,
        1 => true,
        _ => return Err(cx.bad(why!("select_last_index must be 0 or 1"))),
    };
    let len = dims[axis];
    cx.ensure(len >= 1, why!("ArgMax axis is empty"))?;
    #[cfg(feature = "int16-activations")]
    let wide = indices_wide(cx, len)?;
    #[cfg(not(feature = "int16-activations"))]
    indices_wide(cx, len)?;
    // The output: x's dims with the axis 1 (kept) or dropped.
    let y = cx.output.dims_usize();
    let y = y.get(..cx.output.rank()).unwrap_or(&[]);
    let kept = y.len() == dims.len()
        && y.iter()
            .zip(dims)
            .enumerate()
            .all(|(d, (a, b))| if d == axis { *a == 1 } else { a == b });
    let dropped = y.len() + 1 == dims.len()
        && y.iter().eq(dims
            .iter()
            .enumerate()
            .filter(|&(d, _)| d != axis)
            .map(|(_, v)| v));
    cx.ensure(
        kept || dropped,
        why!("output shape is not x's without the axis"),
    )?;
    let indices =
        matches!(cx.output.quant, Quant::PerTensor { zero_point: 0, .. }) && cx.out_scale == 1.0;
    cx.ensure(
        indices,
        why!("ArgMax output must have scale 1 and zero point 0"),
    )?;
    let p = ArgMaxParams {
        outer: dims[..axis].iter().product(),
        len,
        inner: dims[axis + 1..].iter().product(),
        select_last,
    };
    Ok(ArgMax {
        p,
        x: Operand::of(&x),
        #[cfg(feature = "int16-activations")]
        wide,
    })
}

/// Whether indices along an axis of `len` values are written as `i16` (an
/// `i16` output, feature `int16-activations`, up to 32768 values) rather
/// than `i8` (up to 128); an axis longer than its indices reach is refused.
/// ArgMax's and TopK's indices alike.
pub(super) fn indices_wide(cx: &Ctx<'_, '_>, len: usize) -> Result<bool, Error> {
    #[cfg(feature = "int16-activations")]
    let wide = cx.output.dtype == crate::format::layout::DType::I16;
    #[cfg(not(feature = "int16-activations"))]
    let wide = false;
    #[cfg(feature = "int16-activations")]
    let reach = match wide {
        true => crate::kernels::MAX_ARG_MAX_LEN_S16,
        false => MAX_ARG_MAX_LEN,
    };
    #[cfg(not(feature = "int16-activations"))]
    let reach = MAX_ARG_MAX_LEN;
    cx.ensure(
        len <= reach,
        why!("axis longer than its indices reach (128 for i8, 32768 for i16)"),
    )?;
    Ok(wide)
}

impl ArgMax<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        #[cfg(feature = "int16-activations")]
        if self.wide {
            crate::kernels::arg_max_s8_s16(&self.p, x, super::output_i16(io.output)?);
            return Ok(());
        }
        arg_max_s8(&self.p, x, io.output);
        Ok(())
    }
}
