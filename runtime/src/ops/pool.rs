//! MaxPool and AvgPool, 1-D/2-D (global pooling included).

use super::window::Window;
use super::{batched_nchw, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::pool as w;
use crate::format::layout::OpCode;
use crate::format::TensorInfo;
#[cfg(feature = "int16-activations")]
use crate::kernels;
use crate::kernels::select::{self, Chosen, PoolFn};
use crate::kernels::PoolParams;

/// The AvgPool kernel's largest window area (its `i32` sum cannot overflow).
pub const MAX_AVG_POOL_WINDOW: usize = 1 << 23;

/// A prepared MaxPool or AvgPool.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pool<'a> {
    pub p: PoolParams,
    x: Operand<'a>,
    pub kernel: Chosen<PoolFn>,
}

/// A prepared MaxPool or AvgPool with int16 activations (reference kernels).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolS16 {
    p: PoolParams,
    x: super::Span,
    avg: bool,
}

/// Input `[x]`; see `params::pool`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Pool<'a>, Error> {
    let (p, x) = decode(cx, Ctx::i8_operand)?;
    let kernel = if cx.op.opcode == OpCode::AvgPool {
        select::avg_pool(&p)
    } else {
        select::max_pool(&p)
    };
    Ok(Pool { p, x, kernel })
}

/// [`prepare`] for int16 `x` and `y` (the same quantization, zero point 0).
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16(cx: &Ctx<'_, '_>) -> Result<PoolS16, Error> {
    cx.i16_in_out()?;
    let (p, x) = decode(cx, |cx, x| cx.i16_operand(x).map(|()| 0))?;
    let Operand::Arena(x) = x else {
        return Err(cx.bad(why!("int16 operands are activations")));
    };
    let avg = cx.op.opcode == OpCode::AvgPool;
    Ok(PoolS16 { p, x, avg })
}

/// Checks a pool record and decodes it, `x` checked by `operand` (which
/// returns its zero point).
#[inline(always)]
fn decode<'a, 'c>(
    cx: &Ctx<'c, 'a>,
    operand: impl Fn(&Ctx<'c, 'a>, &TensorInfo<'a>) -> Result<i32, Error>,
) -> Result<(PoolParams, Operand<'a>), Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    let zero_point = operand(cx, &x)?;
    cx.ensure(
        x.quant == cx.output.quant,
        why!("output quantization differs from input"),
    )?;
    // Pooling is per channel, so a batch of N samples of C channels is
    // N·C channels.
    let (batch, c, in_h, in_w, is_2d) =
        batched_nchw(&x).ok_or(cx.bad(why!("input must be [N, C, H, W] or [N, C, L]")))?;
    let channels = batch
        .checked_mul(c)
        .ok_or(cx.bad(why!("too many channels")))?;
    let kernel_h = cx.size(w::KERNEL_H, 1, why!("kernel must be at least 1"))?;
    let kernel_w = cx.size(w::KERNEL_W, 1, why!("kernel must be at least 1"))?;
    let include_pad = cx.word(w::COUNT_INCLUDE_PAD)?;
    let is_avg = cx.op.opcode == OpCode::AvgPool;
    cx.ensure(
        include_pad == 0 || (is_avg && include_pad == 1),
        why!("count_include_pad must be 0 or 1 (AvgPool) or 0 (MaxPool)"),
    )?;
    if is_avg {
        let area = kernel_h.checked_mul(kernel_w);
        cx.ensure(
            area.is_some_and(|a| a <= MAX_AVG_POOL_WINDOW),
            why!("average window above 2^23 elements"),
        )?;
    }
    let Window {
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top,
        pad_left,
        out_h,
        out_w,
    } = cx.window(w::STRIDE_H, (kernel_h, kernel_w), (in_h, in_w), is_2d)?;
    cx.ensure(
        batched_nchw(&cx.output) == Some((batch, c, out_h, out_w, is_2d)),
        why!("output shape does not match the window"),
    )?;
    let p = PoolParams {
        channels,
        in_h,
        in_w,
        out_h,
        out_w,
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top,
        pad_left,
        count_include_pad: include_pad == 1,
        zero_point,
    };
    Ok((p, Operand::of(&x)))
}

#[cfg(feature = "int16-activations")]
impl PoolS16 {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read_i16(&Operand::Arena(self.x))?;
        let y = super::output_i16(io.output)?;
        if self.avg {
            kernels::avg_pool_s16(&self.p, x, y);
        } else {
            kernels::max_pool_s16(&self.p, x, y);
        }
        Ok(())
    }
}

impl Pool<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(&self.p, x, io.output);
        Ok(())
    }
}
