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

/// Inputs `[a [.., M, K], b [.., K, N]]`; see `params::mat_mul`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<MatMul<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (a_zero_point, b_zero_point) = (cx.i8_operand(&a)?, cx.i8_operand(&b)?);
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
