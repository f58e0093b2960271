//! Reshape: the same bytes under a new shape (Flatten, Squeeze, Unsqueeze).
//! The planner may place the output exactly over the input, and then
//! nothing moves. Int16 activations (feature `int16-activations`) too.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::reshape as w;

/// A prepared Reshape.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reshape<'a> {
    x: Operand<'a>,
}

/// Input `[x]`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Reshape<'a>, Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    // An int16 activation moves as its bytes: the same dtype on both sides.
    super::mover_operand(cx, &x)?;
    cx.ensure(
        x.numel() == cx.output.numel(),
        why!("element count changes"),
    )?;
    cx.ensure(
        x.quant == cx.output.quant,
        why!("output quantization differs from input"),
    )?;
    Ok(Reshape { x: Operand::of(&x) })
}

impl Reshape<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        if io.inputs.is_output(&self.x) {
            return Ok(());
        }
        let x = io.inputs.read(&self.x)?;
        if x.len() != io.output.len() {
            return Err(io.inputs.bad(why!("reshape changes the length")));
        }
        io.output.copy_from_slice(x);
        Ok(())
    }
}
