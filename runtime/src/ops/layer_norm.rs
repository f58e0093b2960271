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

/// A prepared LayerNorm with an int16 side, and the reference kernel of
/// its pairing.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct LayerNormS16<'a> {
    layer_norm: LayerNorm<'a>,
    kernel: super::KernelS16<LayerNormParams>,
}

/// Inputs `[x, gamma, bias, multiplier, shift]`; see `params::layer_norm`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<LayerNorm<'a>, Error> {
    let (x, input_zero_point) = cx.same_shape_input(w::X)?;
    let window = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    decode(cx, x, input_zero_point, window)
}

/// [`prepare`] with int16 sides: the input and the output each an int8
/// per-tensor tensor or an int16 activation (zero point 0).
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<LayerNormS16<'a>, Error> {
    use crate::kernels::layer_norm_s16 as run;
    // `lanes` reads input 0, which is `x`.
    const _: () = assert!(w::X == 0);
    let x = cx.input(w::X)?;
    let (lanes, input_zero_point) = cx.lanes()?;
    cx.ensure(
        x.dims() == cx.output.dims(),
        why!("output shape differs from input shape"),
    )?;
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    let names = ["layer_norm_s16", "layer_norm_s8_s16", "layer_norm_s16_s8"];
    let kernel = super::KernelS16::reference(lanes, names, (run, run, run));
    Ok(LayerNormS16 {
        layer_norm: decode(cx, x, input_zero_point, window)?,
        kernel,
    })
}

/// The geometry, weights and words of either kind.
fn decode<'a>(
    cx: &Ctx<'_, 'a>,
    x: crate::format::TensorInfo<'a>,
    input_zero_point: i32,
    (act_min, act_max): (i32, i32),
) -> Result<LayerNorm<'a>, Error> {
    cx.check_arity(w::INPUT_COUNT, w::COUNT)?;
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

#[cfg(feature = "int16-activations")]
impl LayerNormS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let LayerNorm { p, x, gamma, rq } = &self.layer_norm;
        self.kernel.run(p, x, gamma, rq, io, super::Batch::ONE)
    }
}
