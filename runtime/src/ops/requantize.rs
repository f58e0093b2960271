//! Requantize: rescales an activation to another grid and type, between
//! int8 and int16 (the edges of a model's int16 layers) or between two
//! int16 grids. Int8 to int8 is refused: a one-input Concat does that.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::requantize as w;
use crate::format::layout::DType;
use crate::kernels::{self, RequantizeParams};

/// The type pair, which picks the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pair {
    S8S16,
    S16S8,
    S16S16,
}

/// A prepared Requantize.
#[derive(Clone, Copy, Debug)]
pub(super) struct Requantize<'a> {
    p: RequantizeParams,
    x: Operand<'a>,
    pair: Pair,
}

/// Input `[x]`; see `params::requantize`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Requantize<'a>, Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    let (multiplier, shift) = cx.requant_pair(w::MULTIPLIER, w::SHIFT)?;
    let pair = match (x.dtype, cx.output.dtype) {
        (DType::I8, DType::I16) => Pair::S8S16,
        (DType::I16, DType::I8) => Pair::S16S8,
        (DType::I16, DType::I16) => Pair::S16S16,
        _ => {
            return Err(cx.bad(why!(
                "Requantize takes an i8 or i16 activation to another, not i8 to i8"
            )))
        }
    };
    let input_zero_point = match pair {
        Pair::S8S16 => cx.i8_operand(&x)?,
        Pair::S16S8 | Pair::S16S16 => cx.i16_operand(&x).map(|()| 0)?,
    };
    cx.ensure(
        x.numel() == cx.output.numel(),
        why!("element count changes"),
    )?;
    Ok(Requantize {
        p: RequantizeParams {
            input_zero_point,
            output_zero_point: cx.out_zp,
            multiplier,
            shift,
        },
        x: Operand::of(&x),
        pair,
    })
}

impl Requantize<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let p = &self.p;
        match self.pair {
            Pair::S8S16 => {
                let x = io.inputs.read(&self.x)?;
                kernels::requantize_s8_s16(p, x, super::output_i16(io.output)?);
            }
            Pair::S16S8 => {
                let x = io.inputs.read_i16(&self.x)?;
                kernels::requantize_s16_s8(p, x, io.output);
            }
            Pair::S16S16 => {
                let x = io.inputs.read_i16(&self.x)?;
                kernels::requantize_s16_s16(p, x, super::output_i16(io.output)?);
            }
        }
        Ok(())
    }

    pub fn kernel(&self) -> &'static str {
        match self.pair {
            Pair::S8S16 => "requantize_s8_s16",
            Pair::S16S8 => "requantize_s16_s8",
            Pair::S16S16 => "requantize_s16_s16",
        }
    }
}
