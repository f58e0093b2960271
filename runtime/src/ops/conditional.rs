//! Select: `cond ? a : b` elementwise with numpy broadcasting (ONNX Where
//! on a computed condition, e.g. a padding mask given as a model input),
//! and the same with int16 sides ([`SelectS16`]).

use super::{right_align4, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::select as w;
use crate::format::TensorInfo;
use crate::kernels::{select_s8, Broadcast4, MinMaxParams, SelectParams};

/// A prepared Select.
#[derive(Clone, Copy, Debug)]
pub(super) struct Select<'a> {
    p: SelectParams,
    bc: Broadcast4,
    /// `[cond, a, b]`.
    operands: [Operand<'a>; 3],
}

/// Inputs `[cond, a, b]`; see `params::select`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Select<'a>, Error> {
    let (p, bc, operands) = prepare_with(cx, |t| cx.i8_operand(t), (-128, 127))?;
    Ok(Select { p, bc, operands })
}

/// The words, strides and operands of a Select whose operands' zero points
/// `zero_point` reads and checks, with the activation window within
/// `(lo, hi)`.
fn prepare_with<'a>(
    cx: &Ctx<'_, 'a>,
    zero_point: impl Fn(&TensorInfo<'a>) -> Result<i32, Error>,
    (lo, hi): (i32, i32),
) -> Result<(SelectParams, Broadcast4, [Operand<'a>; 3]), Error> {
    cx.check_arity(3, w::COUNT)?;
    let (cond, a, b) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let (zc, za, zb) = (zero_point(&cond)?, zero_point(&a)?, zero_point(&b)?);
    let not_broadcast = cx.bad(why!(
        "operands do not broadcast to the output (numpy rules, at most 4 dims)"
    ));
    let y = right_align4(&cx.output).ok_or(not_broadcast)?;
    // Each operand's strides over the output dims; each must stretch to them.
    let strides = |t: &TensorInfo<'a>| -> Result<[usize; 4], Error> {
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
    let (act_min, act_max) = (cx.word(w::ACT_MIN)?, cx.word(w::ACT_MAX)?);
    cx.ensure(
        lo <= act_min && act_min <= act_max && act_max <= hi,
        why!("activation range not within the output type"),
    )?;
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
    Ok((p, bc, [cond, a, b].map(|t| Operand::of(&t))))
}

impl Select<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = &io.inputs;
        let [cond, a, b] = &self.operands;
        let (cond, a, b) = (x.read(cond)?, x.read(a)?, x.read(b)?);
        select_s8(&self.p, &self.bc, cond, a, b, io.output);
        Ok(())
    }
}

/// A prepared Select where the condition, a branch or the output is an
/// int16 activation: which of them are (`[cond, a, b, output]`).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct SelectS16<'a> {
    p: SelectParams,
    bc: Broadcast4,
    operands: [Operand<'a>; 3],
    wide: [bool; 4],
}

/// Inputs `[cond, a, b]`, each int8 or int16; see `params::select`.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<SelectS16<'a>, Error> {
    use crate::format::layout::DType;
    let window = match cx.output.dtype {
        DType::I16 => (-32768, 32767),
        _ => (-128, 127),
    };
    let (p, bc, operands) = prepare_with(cx, |t| cx.s8_or_s16_operand(t), window)?;
    let wide_input = |k: usize| cx.input(k).is_ok_and(|t| t.dtype == DType::I16);
    let wide = [
        wide_input(0),
        wide_input(1),
        wide_input(2),
        cx.output.dtype == DType::I16,
    ];
    Ok(SelectS16 {
        p,
        bc,
        operands,
        wide,
    })
}

/// Reads `$op` from `$io` as the lane `$wide` says, binding it to `$v`.
#[cfg(feature = "int16-activations")]
macro_rules! lane {
    ($wide:expr, $io:expr, $op:expr, |$v:ident| $body:expr) => {
        match $wide {
            true => {
                let $v = $io.read_i16($op)?;
                $body
            }
            false => {
                let $v = $io.read($op)?;
                $body
            }
        }
    };
}

#[cfg(feature = "int16-activations")]
impl SelectS16<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::kernels::select_s16;
        let (p, bc, x) = (&self.p, &self.bc, &io.inputs);
        let [c, a, b] = &self.operands;
        let [wc, wa, wb, wy] = self.wide;
        lane!(wc, x, c, |cond| lane!(wa, x, a, |a| lane!(wb, x, b, |b| {
            match wy {
                true => select_s16(p, bc, cond, a, b, super::output_i16(io.output)?),
                false => select_s16(p, bc, cond, a, b, io.output),
            }
        })));
        Ok(())
    }
}
