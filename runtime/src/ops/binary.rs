//! Sub, Div, Min and Max: broadcasting binary ops on the reference kernels
//! (Sub and Div take Add's and Mul's parameter words).

use super::elementwise::{add_operands, binary, mul_operands};
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
    let (a, b, a_zero_point, b_zero_point, bc) = binary(cx)?;
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
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
