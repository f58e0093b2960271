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
pub(super) type Operands<'a> = (Operand<'a>, Operand<'a>, i32, i32, Broadcast4);

pub(super) fn binary<'a>(cx: &Ctx<'_, 'a>) -> Result<Operands<'a>, Error> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (za, zb) = (cx.i8_operand(&a)?, cx.i8_operand(&b)?);
    broadcast(cx, (a, b), (za, zb))
}

/// [`binary`] once the operands' zero points are known.
fn broadcast<'a>(
    cx: &Ctx<'_, 'a>,
    (a, b): (crate::format::TensorInfo<'a>, crate::format::TensorInfo<'a>),
    (za, zb): (i32, i32),
) -> Result<Operands<'a>, Error> {
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
    let (p, bc, a, b) = add_operands(cx)?;
    let kernel = select::add(&(p, bc));
    Ok(Add {
        p,
        bc,
        a,
        b,
        kernel,
    })
}

/// Add's operands and words (Sub has the same).
pub(super) fn add_operands<'a>(
    cx: &Ctx<'_, 'a>,
) -> Result<(AddParams, Broadcast4, Operand<'a>, Operand<'a>), Error> {
    cx.check_arity(2, params::add::COUNT)?;
    let operands = binary(cx)?;
    let (act_min, act_max) = cx.act_range(params::add::ACT_MIN, params::add::ACT_MAX)?;
    add_words(cx, operands, MAX_ADD_LEFT_SHIFT, (act_min, act_max))
}

/// Add's words, given its operands, the largest left shift they take and
/// the activation window.
fn add_words<'a>(
    cx: &Ctx<'_, 'a>,
    (a, b, a_zero_point, b_zero_point, bc): Operands<'a>,
    max_left_shift: i32,
    (act_min, act_max): (i32, i32),
) -> Result<(AddParams, Broadcast4, Operand<'a>, Operand<'a>), Error> {
    use params::add as w;
    let left_shift = cx.word(w::LEFT_SHIFT)?;
    cx.ensure(
        (0..=max_left_shift).contains(&left_shift),
        why!("left shift not in 0..=20 (0..=15 with an int16 operand)"),
    )?;
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
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
    Ok((p, bc, a, b))
}

/// The operands of a broadcasting binary op with int16 sides, and which of
/// `[a, b, output]` are int16: each an int8 per-tensor tensor or an int16
/// activation (zero point 0).
#[cfg(feature = "int16-activations")]
pub(super) fn binary_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<(Operands<'a>, [bool; 3]), Error> {
    use crate::format::layout::DType;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let zero_points = (cx.s8_or_s16_operand(&a)?, cx.s8_or_s16_operand(&b)?);
    let wide = [a.dtype, b.dtype, cx.output.dtype].map(|d| d == DType::I16);
    if wide[2] {
        cx.i16_operand(&cx.output)?;
    }
    Ok((broadcast(cx, (a, b), zero_points)?, wide))
}

/// Add's words with int16 sides (Sub has the same): the left shift is at
/// most [`MAX_ADD_LEFT_SHIFT_S16`](crate::kernels::MAX_ADD_LEFT_SHIFT_S16)
/// when an operand is int16.
#[cfg(feature = "int16-activations")]
pub(super) fn add_words_s16<'a>(
    cx: &Ctx<'_, 'a>,
) -> Result<(AddParams, Broadcast4, Operand<'a>, Operand<'a>, [bool; 3]), Error> {
    use crate::kernels::MAX_ADD_LEFT_SHIFT_S16;
    cx.check_arity(2, params::add::COUNT)?;
    let (operands, wide) = binary_s16(cx)?;
    let max_left_shift = match wide[0] || wide[1] {
        true => MAX_ADD_LEFT_SHIFT_S16,
        false => MAX_ADD_LEFT_SHIFT,
    };
    let window = cx.act_range_of(params::add::ACT_MIN, params::add::ACT_MAX)?;
    let (p, bc, a, b) = add_words(cx, operands, max_left_shift, window)?;
    Ok((p, bc, a, b, wide))
}

/// Inputs `[a, b]`; see `params::mul`.
#[inline(never)]
pub(super) fn prepare_mul<'a>(cx: &Ctx<'_, 'a>) -> Result<Mul<'a>, Error> {
    let (p, bc, a, b) = mul_operands(cx)?;
    let kernel = select::mul(&(p, bc));
    Ok(Mul {
        p,
        bc,
        a,
        b,
        kernel,
    })
}

/// Mul's operands and words (Div has the same).
pub(super) fn mul_operands<'a>(
    cx: &Ctx<'_, 'a>,
) -> Result<(MulParams, Broadcast4, Operand<'a>, Operand<'a>), Error> {
    use params::mul as w;
    cx.check_arity(2, w::COUNT)?;
    let window = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    mul_words(cx, binary(cx)?, window)
}

/// [`mul_operands`] with int16 sides ([`binary_s16`]).
#[cfg(feature = "int16-activations")]
pub(super) fn mul_words_s16<'a>(
    cx: &Ctx<'_, 'a>,
) -> Result<(MulParams, Broadcast4, Operand<'a>, Operand<'a>, [bool; 3]), Error> {
    use params::mul as w;
    cx.check_arity(2, w::COUNT)?;
    let (operands, wide) = binary_s16(cx)?;
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    let (p, bc, a, b) = mul_words(cx, operands, window)?;
    Ok((p, bc, a, b, wide))
}

/// Mul's words, given its operands and the activation window.
fn mul_words<'a>(
    cx: &Ctx<'_, 'a>,
    (a, b, a_zero_point, b_zero_point, bc): Operands<'a>,
    (act_min, act_max): (i32, i32),
) -> Result<(MulParams, Broadcast4, Operand<'a>, Operand<'a>), Error> {
    use params::mul as w;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    let p = MulParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: cx.out_zp,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    Ok((p, bc, a, b))
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
