//! Sub, Div, Min and Max: broadcasting binary ops on the reference kernels
//! (Sub and Div take Add's and Mul's parameter words), and these with Add
//! and Mul where a side is an int16 activation ([`BinaryS16`]).

use super::elementwise::{add_operands, binary, mul_operands, Operands};
#[cfg(feature = "int16-activations")]
use super::elementwise::{add_words_s16, binary_s16, mul_words_s16};
use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::min_max as w;
use crate::kernels::{
    div_s8, max_s8, min_s8, sub_s8, AddParams, Broadcast4, MinMaxParams, MulParams,
};

/// A prepared broadcasting binary op with parameters `P`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Binary<'a, P> {
    p: P,
    bc: Broadcast4,
    a: Operand<'a>,
    b: Operand<'a>,
    run: fn(&P, &Broadcast4, &[i8], &[i8], &mut [i8]),
    pub name: &'static str,
}

impl<P> Binary<'_, P> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let (a, b) = (io.inputs.read(&self.a)?, io.inputs.read(&self.b)?);
        (self.run)(&self.p, &self.bc, a, b, io.output);
        Ok(())
    }
}

/// Inputs `[a, b]`; Add's words (`params::add`).
#[inline(never)]
pub(super) fn prepare_sub<'a>(cx: &Ctx<'_, 'a>) -> Result<Binary<'a, AddParams>, Error> {
    let (p, bc, a, b) = add_operands(cx)?;
    Ok(Binary {
        p,
        bc,
        a,
        b,
        run: sub_s8,
        name: "sub_s8",
    })
}

/// Inputs `[a, b]`; Mul's words (`params::mul`).
#[inline(never)]
pub(super) fn prepare_div<'a>(cx: &Ctx<'_, 'a>) -> Result<Binary<'a, MulParams>, Error> {
    let (p, bc, a, b) = mul_operands(cx)?;
    Ok(Binary {
        p,
        bc,
        a,
        b,
        run: div_s8,
        name: "div_s8",
    })
}

/// Inputs `[a, b]`; see `params::min_max`. `max` picks Max, else Min.
#[inline(never)]
pub(super) fn prepare_min_max<'a>(
    cx: &Ctx<'_, 'a>,
    max: bool,
) -> Result<Binary<'a, MinMaxParams>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let window = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let (p, bc, a, b) = min_max_words(cx, binary(cx)?, window)?;
    let (run, name): (fn(&_, &_, &_, &_, &mut _), _) = if max {
        (max_s8, "max_s8")
    } else {
        (min_s8, "min_s8")
    };
    Ok(Binary {
        p,
        bc,
        a,
        b,
        run,
        name,
    })
}

/// Min and Max's words, given their operands and the activation window.
fn min_max_words<'a>(
    cx: &Ctx<'_, 'a>,
    (a, b, a_zero_point, b_zero_point, bc): Operands<'a>,
    (act_min, act_max): (i32, i32),
) -> Result<(MinMaxParams, Broadcast4, Operand<'a>, Operand<'a>), Error> {
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let p = MinMaxParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: cx.out_zp,
        a_multiplier,
        a_shift,
        b_multiplier,
        b_shift,
        act_min,
        act_max,
    };
    Ok((p, bc, a, b))
}

/// Runs the generic int16 binary kernel `$kernel` with `a`, `b` and the
/// output each read as the lane `$wide` says (`[a, b, output]`, int16 when
/// `true`).
#[cfg(feature = "int16-activations")]
macro_rules! each_lane {
    ($kernel:ident, $p:expr, $bc:expr, $wide:expr, $io:expr, $a:expr, $b:expr) => {{
        use super::output_i16 as wide_out;
        let x = &$io.inputs;
        match $wide {
            [false, false, false] => $kernel($p, $bc, x.read($a)?, x.read($b)?, $io.output),
            [false, false, true] => {
                $kernel($p, $bc, x.read($a)?, x.read($b)?, wide_out($io.output)?)
            }
            [false, true, false] => $kernel($p, $bc, x.read($a)?, x.read_i16($b)?, $io.output),
            [false, true, true] => {
                $kernel($p, $bc, x.read($a)?, x.read_i16($b)?, wide_out($io.output)?)
            }
            [true, false, false] => $kernel($p, $bc, x.read_i16($a)?, x.read($b)?, $io.output),
            [true, false, true] => {
                $kernel($p, $bc, x.read_i16($a)?, x.read($b)?, wide_out($io.output)?)
            }
            [true, true, false] => $kernel($p, $bc, x.read_i16($a)?, x.read_i16($b)?, $io.output),
            [true, true, true] => $kernel(
                $p,
                $bc,
                x.read_i16($a)?,
                x.read_i16($b)?,
                wide_out($io.output)?,
            ),
        }
    }};
}

/// A broadcasting Add, Sub, Mul, Div, Min or Max with an int16 side, and
/// its parameters.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) enum WideParams {
    Add(AddParams),
    Sub(AddParams),
    Mul(MulParams),
    Div(MulParams),
    Min(MinMaxParams),
    Max(MinMaxParams),
}

/// A prepared Add, Sub, Mul, Div, Min or Max where `a`, `b` or the output
/// is an int16 activation: which of them are (`[a, b, output]`).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct BinaryS16<'a> {
    p: WideParams,
    bc: Broadcast4,
    a: Operand<'a>,
    b: Operand<'a>,
    wide: [bool; 3],
}

/// Add (`sub` false) or Sub with int16 sides; Add's words.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_add_sub_s16<'a>(cx: &Ctx<'_, 'a>, sub: bool) -> Result<BinaryS16<'a>, Error> {
    let (p, bc, a, b, wide) = add_words_s16(cx)?;
    let p = match sub {
        true => WideParams::Sub(p),
        false => WideParams::Add(p),
    };
    Ok(BinaryS16 { p, bc, a, b, wide })
}

/// Mul (`div` false) or Div with int16 sides; Mul's words.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_mul_div_s16<'a>(cx: &Ctx<'_, 'a>, div: bool) -> Result<BinaryS16<'a>, Error> {
    let (p, bc, a, b, wide) = mul_words_s16(cx)?;
    let p = match div {
        true => WideParams::Div(p),
        false => WideParams::Mul(p),
    };
    Ok(BinaryS16 { p, bc, a, b, wide })
}

/// Min or Max (`max`) with int16 sides; see `params::min_max`.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_min_max_s16<'a>(cx: &Ctx<'_, 'a>, max: bool) -> Result<BinaryS16<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (operands, wide) = binary_s16(cx)?;
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    let (p, bc, a, b) = min_max_words(cx, operands, window)?;
    let p = match max {
        true => WideParams::Max(p),
        false => WideParams::Min(p),
    };
    Ok(BinaryS16 { p, bc, a, b, wide })
}

#[cfg(feature = "int16-activations")]
impl BinaryS16<'_> {
    /// The op, for the build's gate.
    pub fn opcode(&self) -> crate::format::layout::OpCode {
        use crate::format::layout::OpCode as O;
        match self.p {
            WideParams::Add(_) => O::Add,
            WideParams::Sub(_) => O::Sub,
            WideParams::Mul(_) => O::Mul,
            WideParams::Div(_) => O::Div,
            WideParams::Min(_) => O::Min,
            WideParams::Max(_) => O::Max,
        }
    }

    pub fn kernel_name(&self) -> &'static str {
        match self.p {
            WideParams::Add(_) => "add_s16",
            WideParams::Sub(_) => "sub_s16",
            WideParams::Mul(_) => "mul_s16",
            WideParams::Div(_) => "div_s16",
            WideParams::Min(_) => "min_s16",
            WideParams::Max(_) => "max_s16",
        }
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::kernels::{add_s16, div_s16, max_s16, min_s16, mul_s16, sub_s16};
        let (bc, a, b) = (&self.bc, &self.a, &self.b);
        match &self.p {
            WideParams::Add(p) => each_lane!(add_s16, p, bc, self.wide, io, a, b),
            WideParams::Sub(p) => each_lane!(sub_s16, p, bc, self.wide, io, a, b),
            WideParams::Mul(p) => each_lane!(mul_s16, p, bc, self.wide, io, a, b),
            WideParams::Div(p) => each_lane!(div_s16, p, bc, self.wide, io, a, b),
            WideParams::Min(p) => each_lane!(min_s16, p, bc, self.wide, io, a, b),
            WideParams::Max(p) => each_lane!(max_s16, p, bc, self.wide, io, a, b),
        }
        Ok(())
    }
}
