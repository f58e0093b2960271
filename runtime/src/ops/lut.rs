//! Lut: every unary nonlinearity, as a 256-entry table the converter computed.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::lut as w;
use crate::kernels::select::{self, Chosen, LutFn};

/// A prepared Lut.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lut<'a> {
    x: Operand<'a>,
    table: &'a [i8; 256],
    pub len: usize,
    pub kernel: Chosen<LutFn>,
}

/// Inputs `[x, table i8 [256]]`: `y[i] = table[x[i] + 128]`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Lut<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (x, _) = cx.same_shape_input(0)?;
    let table = cx.input(1)?;
    let table = table
        .data_i8()
        .filter(|_| table.rank() == 1)
        .and_then(|d| <&[i8; 256]>::try_from(d).ok())
        .ok_or(cx.bad(why!("table must be an i8 constant of shape [256]")))?;
    let len = x.numel();
    Ok(Lut {
        x: Operand::of(&x),
        table,
        len,
        kernel: select::lut(&len),
    })
}

impl Lut<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(self.table, x, io.output);
        Ok(())
    }
}
