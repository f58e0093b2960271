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

/// A prepared LayerNorm with an int16 side: whether the input and the
/// output are int16.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct LayerNormS16<'a> {
    layer_norm: LayerNorm<'a>,
    wide: [bool; 2],
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
    use crate::format::layout::DType;
    let x = cx.input(w::X)?;
    let input_zero_point = cx.s8_or_s16_operand(&x)?;
    cx.ensure(
        x.dims() == cx.output.dims(),
        why!("output shape differs from input shape"),
    )?;
    let wide = [x.dtype, cx.output.dtype].map(|d| d == DType::I16);
    if wide[1] {
        cx.i16_operand(&cx.output)?;
    }
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    Ok(LayerNormS16 {
        layer_norm: decode(cx, x, input_zero_point, window)?,
        wide,
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
        match self.wide {
            [true, false] => "layer_norm_s16_s8",
            [false, true] => "layer_norm_s8_s16",
            _ => "layer_norm_s16",
        }
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::kernels::layer_norm_s16;
        let LayerNorm { p, x, gamma, rq } = &self.layer_norm;
        let (b, m, s) = (rq.bias, rq.multiplier, rq.shift);
        match self.wide {
            [false, false] => self.layer_norm.eval(io)?,
            [true, false] => layer_norm_s16(p, io.inputs.read_i16(x)?, gamma, b, m, s, io.output),
            [false, true] => {
                let y = super::output_i16(io.output)?;
                layer_norm_s16(p, io.inputs.read(x)?, gamma, b, m, s, y)
            }
            [true, true] => {
                let y = super::output_i16(io.output)?;
                layer_norm_s16(p, io.inputs.read_i16(x)?, gamma, b, m, s, y)
            }
        }
        Ok(())
    }
}
