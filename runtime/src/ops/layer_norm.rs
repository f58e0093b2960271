//! LayerNorm over the trailing axes, with integer statistics.

use super::{Ctx, Io, Operand, Requant};
use crate::error::Error;
use crate::format::layout::params::layer_norm as w;
use crate::kernels::{layer_norm_s8, LayerNormParams, MAX_LAYER_NORM_EPSILON, MAX_LAYER_NORM_LEN};

/// A prepared LayerNorm.
#[derive(Clone, Copy, Debug)]
pub(super) struct LayerNorm<'a> {
    p: LayerNormParams,
    x: Operand<'a>,
    gamma: &'a [i8],
    rq: Requant<'a>,
}

/// Inputs `[x, gamma, bias, multiplier, shift]`; see `params::layer_norm`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<LayerNorm<'a>, Error> {
    cx.check_arity(w::INPUT_COUNT, w::COUNT)?;
    let (x, input_zero_point) = cx.same_shape_input(w::X)?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < x.rank(), why!("axis out of range"))?;
    let dims = x.dims_usize();
    let rows = dims.iter().take(axis).product();
    let len: usize = dims.iter().take(x.rank()).skip(axis).product();
    cx.ensure(
        (1..=MAX_LAYER_NORM_LEN).contains(&len),
        why!("normalized length not in 1..=16384"),
    )?;
    let gamma_t = cx.input(w::GAMMA)?;
    let gamma = cx.weights(&gamma_t, gamma_t.rank() == 1)?;
    cx.ensure(
        gamma.len() == len,
        why!("gamma length is not the normalized length"),
    )?;
    let rq = cx.requant_vectors(len)?;
    // Two's-complement halves of an i64: the low word's bits, then the high.
    let lo = i64::from(cx.word(w::EPSILON_LO)? as u32);
    let epsilon = (i64::from(cx.word(w::EPSILON_HI)?) << 32) | lo;
    cx.ensure(
        (0..=MAX_LAYER_NORM_EPSILON).contains(&epsilon),
        why!("epsilon statistic not in 0..=2^40"),
    )?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = LayerNormParams {
        rows,
        len,
        input_zero_point,
        output_zero_point: cx.out_zp,
        epsilon,
        act_min,
        act_max,
    };
    Ok(LayerNorm {
        p,
        x: Operand::of(&x),
        gamma,
        rq,
    })
}

impl LayerNorm<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        let rq = &self.rq;
        layer_norm_s8(
            &self.p,
            x,
            self.gamma,
            rq.bias,
            rq.multiplier,
            rq.shift,
            io.output,
        );
        Ok(())
    }
}
