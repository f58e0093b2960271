//! Softmax along one axis, through the converter's 256-entry exp table.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::softmax as w;
use crate::kernels::{softmax_s8, SoftmaxParams};

/// The output quantization Softmax must declare: its kernel's fixed format.
pub const SOFTMAX_OUTPUT_SCALE: f32 = 1.0 / 256.0;
pub const SOFTMAX_OUTPUT_ZERO_POINT: i32 = -128;

/// A prepared Softmax.
#[derive(Clone, Copy, Debug)]
pub(super) struct Softmax<'a> {
    p: SoftmaxParams,
    x: Operand<'a>,
    table: &'a [i32; 256],
}

/// Inputs `[x, exp_table i32 [256]]`; see `params::softmax`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Softmax<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (x, _) = cx.same_shape_input(0)?;
    cx.ensure(
        cx.out_scale == SOFTMAX_OUTPUT_SCALE && cx.out_zp == SOFTMAX_OUTPUT_ZERO_POINT,
        why!("softmax output must have scale 1/256 and zero point -128"),
    )?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < x.rank(), why!("axis out of range"))?;
    let table = cx.input(1)?;
    let table = table
        .data_i32()
        .filter(|_| table.rank() == 1)
        .and_then(|d| <&[i32; 256]>::try_from(d).ok())
        .ok_or(cx.bad(why!("exp table must be an i32 constant of shape [256]")))?;
    cx.ensure(
        table[0] > 0 && table.iter().all(|&e| e >= 0),
        why!("exp table needs table[0] > 0 and no negative entries"),
    )?;
    let dims = x.dims_usize();
    let p = SoftmaxParams {
        outer: dims.iter().take(axis).product(),
        axis_len: dims.get(axis).copied().unwrap_or(1),
        inner: dims.iter().take(x.rank()).skip(axis + 1).product(),
    };
    Ok(Softmax {
        p,
        x: Operand::of(&x),
        table,
    })
}

impl Softmax<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        softmax_s8(&self.p, self.table, x, io.output);
        Ok(())
    }
}
