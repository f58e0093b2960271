//! MatMul of two int8 tensors (either may be a constant): attention's
//! `Q·Kᵀ` and `scores·V`, with numpy-broadcast batch dims.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::mat_mul as w;
use crate::kernels::{mat_mul_s8, Broadcast4, MatMulParams, MAX_MAT_MUL_DEPTH};

/// A prepared MatMul.
#[derive(Clone, Copy, Debug)]
pub(super) struct MatMul<'a> {
    pub p: MatMulParams,
    a: Operand<'a>,
    b: Operand<'a>,
}

/// A prepared MatMul with an int16 side: which of `a`, `b` and the output
/// are int16.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct MatMulS16<'a> {
    mat_mul: MatMul<'a>,
    wide: [bool; 3],
}

/// Inputs `[a [.., M, K], b [.., K, N]]`; see `params::mat_mul`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<MatMul<'a>, Error> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let zero_points = (cx.i8_operand(&a)?, cx.i8_operand(&b)?);
    decode(cx, zero_points)
}

/// [`prepare`] with int16 sides: each of `a`, `b` and the output is an int8
/// per-tensor tensor or an int16 activation (zero point 0).
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<MatMulS16<'a>, Error> {
    use crate::format::layout::DType;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let zero_points = (cx.s8_or_s16_operand(&a)?, cx.s8_or_s16_operand(&b)?);
    let wide = [a.dtype, b.dtype, cx.output.dtype].map(|d| d == DType::I16);
    if wide[2] {
        cx.i16_operand(&cx.output)?;
    }
    Ok(MatMulS16 {
        mat_mul: decode(cx, zero_points)?,
        wide,
    })
}

/// The shapes and requantization of either kind, given the operands' zero
/// points.
fn decode<'a>(
    cx: &Ctx<'_, 'a>,
    (a_zero_point, b_zero_point): (i32, i32),
) -> Result<MatMul<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (sa, sb) = (a.dims_usize(), b.dims_usize());
    let (sa, sb) = (
        sa.get(..a.rank()).unwrap_or(&[]),
        sb.get(..b.rank()).unwrap_or(&[]),
    );
    let matrices = |s: &[usize]| match *s {
        [ref batch @ .., r, c] => Some((batch.len(), r, c)),
        _ => None,
    };
    let ((a_batch, rows, depth), (b_batch, b_depth, cols)) = matrices(sa)
        .zip(matrices(sb))
        .ok_or(cx.bad(why!("MatMul operands need rank at least 2")))?;
    cx.ensure(depth == b_depth, why!("a's columns are not b's rows"))?;
    cx.ensure(
        (1..=MAX_MAT_MUL_DEPTH).contains(&depth) && rows > 0 && cols > 0,
        why!("MatMul needs non-empty matrices and depth <= 32768"),
    )?;
    let batch = Broadcast4::new(&sa[..a_batch], &sb[..b_batch]).ok_or(cx.bad(why!(
        "batch dims do not broadcast (numpy rules, at most 4 dims)"
    )))?;
    // The output: the broadcast batch dims (rank of the longer), then M, N.
    let y = cx.output.dims_usize();
    let y = y.get(..cx.output.rank()).unwrap_or(&[]);
    let shape_ok = match *y {
        [ref yb @ .., ym, yn] => {
            ym == rows
                && yn == cols
                && yb.len() == a_batch.max(b_batch)
                && yb
                    .iter()
                    .rev()
                    .zip(batch.out_shape.iter().rev())
                    .all(|(d, e)| d == e)
                && yb.iter().rev().skip(4).all(|&d| d == 1)
        }
        _ => false,
    };
    cx.ensure(
        shape_ok,
        why!("output shape is not [broadcast batch.., M, N]"),
    )?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    #[cfg(feature = "int16-activations")]
    let (act_min, act_max) = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    #[cfg(not(feature = "int16-activations"))]
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = MatMulParams {
        batch,
        rows,
        depth,
        cols,
        a_zero_point,
        b_zero_point,
        output_zero_point: cx.out_zp,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    Ok(MatMul {
        p,
        a: Operand::of(&a),
        b: Operand::of(&b),
    })
}

impl MatMul<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let (a, b) = (io.inputs.read(&self.a)?, io.inputs.read(&self.b)?);
        mat_mul_s8(&self.p, a, b, io.output);
        Ok(())
    }

    /// Multiply-accumulates of one run.
    pub fn macs(&self) -> u64 {
        let p = &self.p;
        [p.rows, p.depth, p.cols, p.batch.out_len()]
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}

#[cfg(feature = "int16-activations")]
impl MatMulS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        "mat_mul_s16"
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::kernels::mat_mul_s16;
        let (p, x) = (&self.mat_mul.p, &io.inputs);
        let (a, b) = (&self.mat_mul.a, &self.mat_mul.b);
        match self.wide {
            [false, false, false] => mat_mul_s8(p, x.read(a)?, x.read(b)?, io.output),
            [false, false, true] => {
                mat_mul_s16(p, x.read(a)?, x.read(b)?, super::output_i16(io.output)?)
            }
            [false, true, false] => mat_mul_s16(p, x.read(a)?, x.read_i16(b)?, io.output),
            [false, true, true] => {
                mat_mul_s16(p, x.read(a)?, x.read_i16(b)?, super::output_i16(io.output)?)
            }
            [true, false, false] => mat_mul_s16(p, x.read_i16(a)?, x.read(b)?, io.output),
            [true, false, true] => {
                mat_mul_s16(p, x.read_i16(a)?, x.read(b)?, super::output_i16(io.output)?)
            }
            [true, true, false] => mat_mul_s16(p, x.read_i16(a)?, x.read_i16(b)?, io.output),
            [true, true, true] => mat_mul_s16(
                p,
                x.read_i16(a)?,
                x.read_i16(b)?,
                super::output_i16(io.output)?,
            ),
        }
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        self.mat_mul.macs()
    }
}
