//! Pad: constant padding in at most 4 dims.

use super::{right_align4, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::pad as w;
use crate::kernels::{pad_s8, PadParams};

/// A prepared Pad.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pad<'a> {
    p: PadParams,
    x: Operand<'a>,
    /// An int16 activation on both sides.
    wide: bool,
}

/// Input `[x]`: the pad value, then `rank` begin counts and `rank` end counts.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Pad<'a>, Error> {
    let x = cx.input(0)?;
    let y = &cx.output;
    let rank = x.rank();
    cx.check_arity(1, w::PADS + 2 * rank)?;
    let wide = super::mover_operand(cx, &x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    cx.ensure(
        rank <= 4 && y.rank() == rank,
        why!("pad supports rank at most 4, output of the same rank"),
    )?;
    let value = cx.word(w::VALUE)?;
    let value_ok = match wide {
        true => i16::try_from(value).is_ok(),
        false => i8::try_from(value).is_ok(),
    };
    cx.ensure(value_ok, why!("pad value outside the tensor's type"))?;
    let (xd, yd) = (x.dims_usize(), y.dims_usize());
    let mut pad_before = [0usize; 4];
    // Right-aligned like the shapes: dim d of a rank-r tensor is slot 4 − r + d.
    let slots = pad_before.iter_mut().skip(4 - rank);
    for (d, (slot, (&xs, &ys))) in slots.zip(xd.iter().zip(&yd)).enumerate() {
        let before = cx.size(w::PADS + d, 0, why!("negative pad"))?;
        let after = cx.size(w::PADS + rank + d, 0, why!("negative pad"))?;
        let want = xs.checked_add(before).and_then(|v| v.checked_add(after));
        cx.ensure(
            want == Some(ys),
            why!("output shape is not input plus pads"),
        )?;
        *slot = before;
    }
    let (Some(in_shape), Some(out_shape)) = (right_align4(&x), right_align4(y)) else {
        return Err(cx.bad(why!("pad supports rank at most 4")));
    };
    let p = PadParams {
        in_shape,
        out_shape,
        pad_before,
        value,
    };
    Ok(Pad {
        p,
        x: Operand::of(&x),
        wide,
    })
}

impl Pad<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        #[cfg(feature = "int16-activations")]
        if self.wide {
            let x = io.inputs.read_i16(&self.x)?;
            crate::kernels::pad_s16(&self.p, x, super::output_i16(io.output)?);
            return Ok(());
        }
        let x = io.inputs.read(&self.x)?;
        pad_s8(&self.p, x, io.output);
        Ok(())
    }

    pub fn kernel(&self) -> &'static str {
        match self.wide {
            true => "pad_s16",
            false => "pad_s8",
        }
    }
}
