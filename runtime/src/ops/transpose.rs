//! Transpose: a permutation of at most 4 dims (e.g. the NHWC → NCHW
//! Transpose at the input of TensorFlow-converted models).

use super::{right_align4, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::transpose as w;
use crate::kernels::{transpose_s8, TransposeParams};

/// A prepared Transpose.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transpose<'a> {
    p: TransposeParams,
    x: Operand<'a>,
    /// An int16 activation on both sides.
    wide: bool,
}

/// Input `[x]`; `rank` words of `perm`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Transpose<'a>, Error> {
    let x = cx.input(0)?;
    let y = &cx.output;
    let rank = x.rank();
    cx.check_arity(1, w::PERM + rank)?;
    let wide = super::mover_operand(cx, &x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    cx.ensure(
        (1..=4).contains(&rank) && y.rank() == rank,
        why!("transpose supports rank 1 to 4, output of the same rank"),
    )?;
    let in_shape = right_align4(&x).ok_or(cx.bad(why!("transpose supports rank at most 4")))?;
    // Lower ranks are right-aligned: their dims keep their place after the
    // leading 1s, whose permutation is the identity.
    let lead = 4 - rank;
    let mut perm = [0, 1, 2, 3];
    let mut seen = [false; 4];
    for (d, slot) in perm.iter_mut().skip(lead).enumerate() {
        let from = cx.size(w::PERM + d, 0, why!("perm entry out of range"))?;
        let seen_slot = seen.get_mut(from).filter(|_| from < rank);
        let Some(s) = seen_slot.filter(|s| !**s) else {
            return Err(cx.bad(why!("perm is not a permutation of the dims")));
        };
        *s = true;
        *slot = lead + from;
        cx.ensure(
            y.dims().get(d) == x.dims().get(from),
            why!("output shape is not the permuted input shape"),
        )?;
    }
    Ok(Transpose {
        p: TransposeParams { in_shape, perm },
        x: Operand::of(&x),
        wide,
    })
}

impl Transpose<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        #[cfg(feature = "int16-activations")]
        if self.wide {
            let x = io.inputs.read_i16(&self.x)?;
            crate::kernels::transpose_s16(&self.p, x, super::output_i16(io.output)?);
            return Ok(());
        }
        let x = io.inputs.read(&self.x)?;
        transpose_s8(&self.p, x, io.output);
        Ok(())
    }

    pub fn kernel(&self) -> &'static str {
        match self.wide {
            true => "transpose_s16",
            false => "transpose_s8",
        }
    }
}
