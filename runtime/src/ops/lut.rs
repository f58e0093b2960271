//! Lut: every unary nonlinearity, as a 256-entry table the converter computed
//! (an interpolated 513-entry one on int16); and Log, the one nonlinearity
//! an int16 table cannot follow, by an integer `log2`.

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

/// A prepared Lut on int16 activations: input and output both `i16`.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct LutS16<'a> {
    x: Operand<'a>,
    table: &'a [i32; crate::kernels::LUT_S16_ENTRIES],
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

/// Input 0 of an elementwise op on int16 sides (`n_inputs`, `n_params`
/// words): `x` and the output both `i16`, the same shape.
#[cfg(feature = "int16-activations")]
fn elementwise_s16<'a>(
    cx: &Ctx<'_, 'a>,
    n_inputs: usize,
    n_params: usize,
) -> Result<crate::format::TensorInfo<'a>, Error> {
    cx.check_arity(n_inputs, n_params)?;
    cx.i16_in_out()?;
    let x = cx.input(0)?;
    cx.ensure(
        x.dims() == cx.output.dims(),
        why!("output shape differs from input shape"),
    )?;
    Ok(x)
}

/// Inputs `[x i16, table i32 [513]]`, output `i16`: the interpolated
/// table of [`lut_s16`](crate::kernels::lut_s16).
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<LutS16<'a>, Error> {
    use crate::kernels::LUT_S16_ENTRIES;
    let x = elementwise_s16(cx, 2, w::COUNT)?;
    let table = cx.input(1)?;
    let table = table
        .data_i32()
        .filter(|_| table.rank() == 1)
        .and_then(|d| <&[i32; LUT_S16_ENTRIES]>::try_from(d).ok())
        .ok_or(cx.bad(why!(
            "table of an int16 input must be an i32 constant of shape [513]"
        )))?;
    cx.ensure(
        table.iter().all(|v| (-32768..=32767).contains(v)),
        why!("int16 table entries must lie within i16"),
    )?;
    Ok(LutS16 {
        x: Operand::of(&x),
        table,
    })
}

#[cfg(feature = "int16-activations")]
impl LutS16<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read_i16(&self.x)?;
        crate::kernels::lut_s16(self.table, x, super::output_i16(io.output)?);
        Ok(())
    }
}

impl Lut<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(self.table, x, io.output);
        Ok(())
    }
}

/// A prepared Log (int16 input and output).
#[cfg(feature = "op-log")]
#[derive(Clone, Copy, Debug)]
pub(super) struct Log<'a> {
    x: Operand<'a>,
    p: crate::kernels::LogParams,
}

/// Input `[x i16]`, output `i16` of the same shape; see `params::log`.
#[cfg(feature = "op-log")]
#[inline(never)]
pub(super) fn prepare_log<'a>(cx: &Ctx<'_, 'a>) -> Result<Log<'a>, Error> {
    use crate::format::layout::params::log as w;
    let x = elementwise_s16(cx, 1, w::COUNT)?;
    let (multiplier, shift) = cx.requant_pair(w::MULTIPLIER, w::SHIFT)?;
    let low_input = cx.word(w::LOW_INPUT)?;
    let low_output = cx.word(w::LOW_OUTPUT)?;
    cx.ensure(
        (1..=32768).contains(&low_input),
        why!("Log's low input must lie in [1, 32768]"),
    )?;
    cx.ensure(
        (-32768..=32767).contains(&low_output),
        why!("Log's low output must lie within i16"),
    )?;
    Ok(Log {
        x: Operand::of(&x),
        p: crate::kernels::LogParams {
            bias: cx.word(w::BIAS)?,
            multiplier,
            shift,
            low_input,
            low_output,
        },
    })
}

#[cfg(feature = "op-log")]
impl Log<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read_i16(&self.x)?;
        crate::kernels::log_s16(&self.p, x, super::output_i16(io.output)?);
        Ok(())
    }
}
