//! Add and Mul: elementwise with numpy broadcasting, either operand may be
//! a constant.

use super::add_shift::MAX_ADD_LEFT_SHIFT;
use super::{right_align4, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params;
use crate::kernels::select::{self, AddFn, Chosen, MulFn};
use crate::kernels::{AddParams, Broadcast4, MulParams};

/// A prepared Add.
#[derive(Clone, Copy, Debug)]
pub(super) struct Add<'a> {
    pub p: AddParams,
    pub bc: Broadcast4,
    a: Operand<'a>,
    b: Operand<'a>,
    pub kernel: Chosen<AddFn>,
}

/// A prepared Mul.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mul<'a> {
    pub p: MulParams,
    pub bc: Broadcast4,
    a: Operand<'a>,
    b: Operand<'a>,
    pub kernel: Chosen<MulFn>,
}

/// The two operands broadcast into the output: `(a, b, za, zb, plan)`.
type Operands<'a> = (Operand<'a>, Operand<'a>, i32, i32, Broadcast4);

fn binary<'a>(cx: &Ctx<'_, 'a>) -> Result<Operands<'a>, Error> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (za, zb) = (cx.i8_operand(&a)?, cx.i8_operand(&b)?);
    let (sa, sb) = (a.dims_usize(), b.dims_usize());
    let (sa, sb) = (
        sa.get(..a.rank()).unwrap_or(&[]),
        sb.get(..b.rank()).unwrap_or(&[]),
    );
    let bc = Broadcast4::new(sa, sb).ok_or(cx.bad(why!(
        "operands do not broadcast (numpy rules, at most 4 dims)"
    )))?;
    let y = &cx.output;
    cx.ensure(
        y.rank() == a.rank().max(b.rank()) && right_align4(y) == Some(bc.out_shape),
        why!("output shape is not the broadcast shape"),
    )?;
    Ok((Operand::of(&a), Operand::of(&b), za, zb, bc))
}

/// Inputs `[a, b]`; see `params::add`.
#[inline(never)]
pub(super) fn prepare_add<'a>(cx: &Ctx<'_, 'a>) -> Result<Add<'a>, Error> {
    use params::add as w;
    cx.check_arity(2, w::COUNT)?;
    let (a, b, a_zero_point, b_zero_point, bc) = binary(cx)?;
    let left_shift = cx.word(w::LEFT_SHIFT)?;
    cx.ensure(
        (0..=MAX_ADD_LEFT_SHIFT).contains(&left_shift),
        why!("left shift not in 0..=20"),
    )?;
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = AddParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: cx.out_zp,
        left_shift,
        a_multiplier,
        a_shift,
        b_multiplier,
        b_shift,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    let kernel = select::add(&(p, bc));
    Ok(Add {
        p,
        bc,
        a,
        b,
        kernel,
    })
}

/// Inputs `[a, b]`; see `params::mul`.
#[inline(never)]
pub(super) fn prepare_mul<'a>(cx: &Ctx<'_, 'a>) -> Result<Mul<'a>, Error> {
    use params::mul as w;
    cx.check_arity(2, w::COUNT)?;
    let (a, b, a_zero_point, b_zero_point, bc) = binary(cx)?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = MulParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: cx.out_zp,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    let kernel = select::mul(&(p, bc));
    Ok(Mul {
        p,
        bc,
        a,
        b,
        kernel,
    })
}

impl Add<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let (a, b) = (io.inputs.read(&self.a)?, io.inputs.read(&self.b)?);
        (self.kernel.run)(&self.p, &self.bc, a, b, io.output);
        Ok(())
    }
}

impl Mul<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let (a, b) = (io.inputs.read(&self.a)?, io.inputs.read(&self.b)?);
        (self.kernel.run)(&self.p, &self.bc, a, b, io.output);
        Ok(())
    }
}
