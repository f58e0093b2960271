//! Lut: every elementwise nonlinearity, as a 256-entry table from the input's
//! int8 values to the output's.

use medq::format::layout::{params::lut as w, OpCode};

use super::onnx::{act, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};
use crate::quantize::{ConstData, ConstQuant, ConstTensor, LowerCtx, Lowered, Operand};
use crate::quantize::{OutputQuant, QParams};

/// Elementwise nonlinearities: all become a 256-entry table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Relu,
    Clip { min: f32, max: f32 },
    LeakyRelu { alpha: f32 },
    Sigmoid,
    Tanh,
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
}

impl Unary {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Relu => x.max(0.0),
            Unary::Clip { min, max } => x.max(min).min(max),
            Unary::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        }
    }
}

/// A Lut node on input 0 computing the function `f` reads from the node.
fn lut_node(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    f: impl FnOnce() -> Result<Unary, ConvertError>,
) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    b.emit(ctx, Op::Unary(f()?), vec![x], xs)
}

/// ONNX `Relu`.
pub(crate) fn relu(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || Ok(Unary::Relu))
}

/// ONNX `LeakyRelu`.
pub(crate) fn leaky_relu(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || {
        Ok(Unary::LeakyRelu {
            alpha: ctx.float("alpha", 0.01)?,
        })
    })
}

/// ONNX `Sigmoid`.
pub(crate) fn sigmoid(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || Ok(Unary::Sigmoid))
}

/// ONNX `Tanh`.
pub(crate) fn tanh(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || Ok(Unary::Tanh))
}

/// ONNX `HardSigmoid`.
pub(crate) fn hard_sigmoid(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || {
        Ok(Unary::HardSigmoid {
            alpha: ctx.float("alpha", 0.2)?,
            beta: ctx.float("beta", 0.5)?,
        })
    })
}

/// ONNX `HardSwish`.
pub(crate) fn hard_swish(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || Ok(Unary::HardSwish))
}

/// ONNX `Clip`: bounds are attributes before opset 11, optional constant
/// inputs from it on. `[0, ∞)` is a Relu.
pub(crate) fn clip(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    lut_node(b, ctx, ins, || {
        let (min, max) = if ctx.opset < 11 {
            (
                unbound(ctx.float("min", f32::NEG_INFINITY)?),
                unbound(ctx.float("max", f32::INFINITY)?),
            )
        } else {
            (
                bound(ctx, ins, 1, "min", f32::NEG_INFINITY)?,
                bound(ctx, ins, 2, "max", f32::INFINITY)?,
            )
        };
        if min.is_nan() || max.is_nan() || min > max {
            return Err(ctx.err(format!("invalid Clip bounds [{min}, {max}]")));
        }
        if min == 0.0 && max == f32::INFINITY {
            Ok(Unary::Relu)
        } else {
            Ok(Unary::Clip { min, max })
        }
    })
}

/// A scalar bound operand of Clip; ±FLT_MAX (older exporters' "no bound")
/// becomes ±∞.
fn bound(ctx: &NodeCtx, ins: Ins, i: usize, what: &str, default: f32) -> Result<f32, ConvertError> {
    match opt_konst(ctx, ins, i, what)? {
        None => Ok(default),
        Some(c) => c
            .scalar_f32()
            .map(unbound)
            .ok_or_else(|| ctx.err(format!("the {what} must be a scalar"))),
    }
}

fn unbound(v: f32) -> f32 {
    if v >= f32::MAX {
        f32::INFINITY
    } else if v <= f32::MIN {
        f32::NEG_INFINITY
    } else {
        v
    }
}

/// `table[i] = quantize_out(f(dequantize_in(i − 128)))`.
pub fn lut(f: Unary, x: QParams, y: QParams) -> Vec<i8> {
    (-128..=127i32)
        .map(|v| y.quantize(f.apply(x.dequantize(v as i8))))
        .collect()
}

impl IrOp for Unary {
    fn kind(&self) -> &'static str {
        "Lut"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, _) = cx.input(0)?;
        Ok(x.iter().map(|&v| self.apply(v)).collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let table = ConstTensor {
            name: format!("{}.table", cx.node.name),
            dims: vec![256],
            quant: ConstQuant::None,
            data: ConstData::I8(lut(*self, xq, cx.output_q()?)),
        };
        Ok(Lowered {
            opcode: OpCode::Lut,
            inputs: vec![x, Operand::Constant(table)],
            params: vec![0; w::COUNT],
        })
    }

    fn macs(&self, _: &Graph, _: &Node) -> u64 {
        0
    }

    fn parameters(&self) -> usize {
        0
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_table_is_a_clamp_at_zero() {
        let x = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let y = QParams {
            scale: 0.05,
            zero_point: -128,
        };
        let t = lut(Unary::Relu, x, y);
        assert_eq!(t[0], -128); // x = −12.8 → 0
        assert_eq!(t[128], -128); // x = 0 → 0
        assert_eq!(t[128 + 5], -118); // x = 0.5 → 10 steps of 0.05
        assert_eq!(t[255], 126); // x = 12.7 → 254 steps of 0.05 above −128
    }

    #[test]
    fn every_nonlinearity_runs_in_int8() {
        use crate::ops::testing::{assert_conforms, attr_f, floats, one_node};
        let cases = [
            ("Relu", vec![], vec![]),
            ("LeakyRelu", vec![attr_f("alpha", 0.1)], vec![]),
            ("Sigmoid", vec![], vec![]),
            ("Tanh", vec![], vec![]),
            ("HardSigmoid", vec![attr_f("alpha", 0.3)], vec![]),
            ("HardSwish", vec![], vec![]),
            (
                "Clip",
                vec![],
                vec![floats("lo", &[], &[-0.5]), floats("hi", &[], &[1.5])],
            ),
        ];
        for (op, attrs, bounds) in cases {
            let inputs: &[&str] = if bounds.is_empty() {
                &[]
            } else {
                &["lo", "hi"]
            };
            let model = one_node(op, &[1, 3, 20], inputs, attrs, bounds);
            assert_conforms(op, &model, 35.0);
        }
    }
}
