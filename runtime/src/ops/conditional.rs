//! Select: `cond ? a : b` elementwise with numpy broadcasting (ONNX Where
//! on a computed condition, e.g. a padding mask given as a model input).

use super::{right_align4, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::select as w;
use crate::kernels::{select_s8, Broadcast4, MinMaxParams, SelectParams};

/// A prepared Select.
#[derive(Clone, Copy, Debug)]
pub(super) struct Select<'a> {
    p: SelectParams,
    bc: Broadcast4,
    cond: Operand<'a>,
    a: Operand<'a>,
    b: Operand<'a>,
}

/// Inputs `[cond, a, b]`; see `params::select`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Select<'a>, Error> {
    cx.check_arity(3, w::COUNT)?;
    let (cond, a, b) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let (zc, za, zb) = (
        cx.i8_operand(&cond)?,
        cx.i8_operand(&a)?,
        cx.i8_operand(&b)?,
    );
    let not_broadcast = cx.bad(why!(
        "operands do not broadcast to the output (numpy rules, at most 4 dims)"
    ));
    let y = right_align4(&cx.output).ok_or(not_broadcast)?;
    // Each operand's strides over the output dims; each must stretch to them.
    let strides = |t: &crate::format::TensorInfo<'a>| -> Result<[usize; 4], Error> {
        let dims = t.dims_usize();
        match Broadcast4::new(dims.get(..t.rank()).unwrap_or(&[]), &y) {
            Some(bc) if bc.out_shape == y => Ok(bc.a_strides),
            _ => Err(not_broadcast),
        }
    };
    let (cond_strides, a_strides, b_strides) = (strides(&cond)?, strides(&a)?, strides(&b)?);
    // The output is the broadcast of the three, no larger.
    let rank = cond.rank().max(a.rank()).max(b.rank());
    let needed = [cond_strides, a_strides, b_strides];
    let covered = (0..4).all(|d| y[d] == 1 || needed.iter().any(|s| s[d] != 0));
    cx.ensure(
        cx.output.rank() == rank && covered,
        why!("output shape is not the broadcast shape"),
    )?;
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = SelectParams {
        cond_zero_point: zc,
        cond_strides,
        values: MinMaxParams {
            a_zero_point: za,
            b_zero_point: zb,
            output_zero_point: cx.out_zp,
            a_multiplier,
            a_shift,
            b_multiplier,
            b_shift,
            act_min,
            act_max,
        },
    };
    let bc = Broadcast4 {
        out_shape: y,
        a_strides,
        b_strides,
    };
    Ok(Select {
        p,
        bc,
        cond: Operand::of(&cond),
        a: Operand::of(&a),
        b: Operand::of(&b),
    })
}

impl Select<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = &io.inputs;
        let (cond, a, b) = (x.read(&self.cond)?, x.read(&self.a)?, x.read(&self.b)?);
        select_s8(&self.p, &self.bc, cond, a, b, io.output);
        Ok(())
    }
}
