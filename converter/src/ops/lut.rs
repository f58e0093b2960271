//! Lut: every elementwise nonlinearity, as a 256-entry table from the input's
//! int8 values to the output's.

use medq::format::layout::{params::lut as w, OpCode};
use medq::kernels::LUT_S16_ENTRIES;

use super::onnx::{act, input, konst, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::shape::broadcast;
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

/// ONNX `PRelu`: `x` where positive, `slope·x` elsewhere, the slope a
/// constant that broadcasts onto `x` (PyTorch's `nn.PReLU(C)` exports it as
/// `[C, 1]`). A single slope is one table. Per-channel slopes run as
/// `Max(x, slope·x)` when every slope is in `[0, 1]` (`Min` when every one
/// is ≥ 1), otherwise as `relu(x) + slope·min(x, 0)`.
pub(crate) fn prelu(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    use super::binary::{Binary, BinaryOp};
    use super::elementwise::{Add, Mul};
    use super::pointwise::{Expr, Fn1, Fn2, Pointwise};
    use std::sync::Arc;
    let (x, xs) = act(b, ctx, ins, 0)?;
    let slope = konst(ctx, ins, 1, "slope")?;
    if broadcast(&xs, &slope.shape).as_deref() != Some(&xs[..]) {
        return Err(ctx.err(format!(
            "the slope's shape {:?} does not broadcast onto the input's {xs:?}",
            slope.shape
        )));
    }
    let c = slope.to_f32();
    // relu(x) + a·min(x, 0), as an expression of x.
    let leaky = |a: Arc<Expr>| {
        let neg = Arc::new(Expr::Binary(
            Fn2::Min,
            Arc::new(Expr::X),
            Arc::new(Expr::Const(0.0)),
        ));
        Expr::Binary(
            Fn2::Add,
            Arc::new(Expr::Unary(Fn1::Relu, Arc::new(Expr::X))),
            Arc::new(Expr::Binary(Fn2::Mul, a, neg)),
        )
    };
    let table = |f: Expr| Op::Pointwise(Pointwise { f: Arc::new(f) });
    if let [a] = c[..] {
        return b.emit(
            ctx,
            table(leaky(Arc::new(Expr::Const(a as f64)))),
            vec![x],
            xs,
        );
    }
    let slope_id = b.const_tensor(input(ctx, ins, 1)?.name, &slope)?;
    let mul = || {
        Op::Mul(Mul {
            activation: FusedActivation::None,
        })
    };
    let pick = if c.iter().all(|a| (0.0..=1.0).contains(a)) {
        Some(BinaryOp::Max)
    } else if c.iter().all(|&a| a >= 1.0) {
        Some(BinaryOp::Min)
    } else {
        None
    };
    if let Some(op) = pick {
        let scaled = b.emit_part(ctx, "scaled", mul(), vec![x, slope_id], xs.clone())?;
        return b.emit(ctx, Op::Binary(Binary { op }), vec![x, scaled], xs);
    }
    let min0 = Expr::Binary(Fn2::Min, Arc::new(Expr::X), Arc::new(Expr::Const(0.0)));
    let neg = b.emit_part(ctx, "negative_part", table(min0), vec![x], xs.clone())?;
    let scaled = b.emit_part(ctx, "scaled", mul(), vec![neg, slope_id], xs.clone())?;
    let pos = b.emit_part(
        ctx,
        "positive_part",
        table(Expr::Unary(Fn1::Relu, Arc::new(Expr::X))),
        vec![x],
        xs.clone(),
    )?;
    let add = Op::Add(Add {
        activation: FusedActivation::None,
    });
    b.emit(ctx, add, vec![pos, scaled], xs)
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

/// A table op on int16 activations (a raised run; its input and output are
/// both int16): the [`LUT_S16_ENTRIES`] entries `lut_s16` interpolates,
/// `t[k] = f(x_scale · (128·k − 32768))` on the output's int16 grid, `f`
/// evaluated in `f64` (NaN taken as 0).
pub(crate) fn lower_s16(cx: &LowerCtx, f: impl Fn(f64) -> f64) -> Result<Lowered, ConvertError> {
    use crate::quantize::{int_const, quantize_wide};
    let (x, xq) = cx.activation(0)?;
    let y = cx.output_q()?;
    let table = (0..LUT_S16_ENTRIES as i32)
        .map(|k| {
            let r = f(xq.scale as f64 * f64::from(128 * k - 32768));
            quantize_wide(y, if r.is_nan() { 0.0 } else { r as f32 })
        })
        .collect();
    Ok(Lowered {
        opcode: OpCode::Lut,
        inputs: vec![x, int_const(format!("{}.table", cx.node.name), table)],
        params: vec![0; w::COUNT],
    })
}

/// The words of a `Log` op computing `f` on int16 sides (input scale `x`,
/// output `y`), when `f` is a logarithm on the input's grid: within one
/// output step of `α·ln(x·q) + β` (`α > 0`) for every `q` from some `q₀ ≥ 1`
/// up, and one value below it (log 0, or the floor of a clamped log). That
/// is `Log`, `log(max(x, c))`, `log(x + ε)` with `ε` under the input's step,
/// `log10` and decibels. `None` otherwise: the function takes the
/// interpolated table.
///
/// The kernel itself ([`medq::kernels::log_s16`]) is run over the grid to
/// decide, so what is accepted is what the device computes.
pub(crate) fn log_form(f: impl Fn(f64) -> f64, x: QParams, y: QParams) -> Option<Vec<i32>> {
    use crate::quantize::quantize_wide;
    use medq::format::layout::params::log as lw;
    use medq::kernels::{log_s16, LogParams, LOG2_FRACTION_BITS};
    use medq::numerics::quantize_multiplier;
    let (s, one) = (f64::from(x.scale), f64::from(1u32 << LOG2_FRACTION_BITS));
    let g = |q: i32| f(s * f64::from(q));
    // α and β from two points high on the grid, where a clamp or an ε of
    // the kind above no longer shows.
    let (q1, q2) = (32767, 4096);
    let alpha = (g(q1) - g(q2)) / (f64::from(q1) / f64::from(q2)).ln();
    let beta = g(q1) - alpha * (s * f64::from(q1)).ln();
    if !(alpha > 0.0 && alpha.is_finite() && beta.is_finite()) {
        return None;
    }
    let ln2 = std::f64::consts::LN_2;
    let bias = one * (s.log2() + beta / (alpha * ln2));
    if bias.is_nan() || bias.abs() >= f64::from(1u32 << 30) {
        return None;
    }
    let (multiplier, shift) = quantize_multiplier(alpha * ln2 / (one * f64::from(y.scale)))?;
    let mut p = LogParams {
        bias: bias.round() as i32,
        multiplier,
        shift,
        low_input: 1,
        low_output: i32::from(i16::MIN),
    };
    let device = |q: i32, p: &LogParams| {
        let mut out = [0i16];
        log_s16(p, &[q as i16], &mut out);
        i32::from(out[0])
    };
    // NaN (a log of a negative) is no constraint.
    let exact = |q: i32| {
        Some(g(q))
            .filter(|r| !r.is_nan())
            .map(|r| quantize_wide(y, r as f32))
    };
    let mut low_input = q1 + 1;
    while low_input > 1 {
        match exact(low_input - 1) {
            Some(e) if (device(low_input - 1, &p) - e).abs() <= 1 => low_input -= 1,
            _ => break,
        }
    }
    if low_input > q2 {
        return None;
    }
    p.low_input = low_input;
    p.low_output = exact(low_input - 1).unwrap_or(p.low_output);
    let below_is_one_value =
        (-32768..low_input).all(|q| exact(q).is_none_or(|e| (e - p.low_output).abs() <= 1));
    if !below_is_one_value {
        return None;
    }
    let mut words = vec![0; lw::COUNT];
    words[lw::BIAS] = p.bias;
    words[lw::MULTIPLIER] = p.multiplier;
    words[lw::SHIFT] = p.shift;
    words[lw::LOW_INPUT] = p.low_input;
    words[lw::LOW_OUTPUT] = p.low_output;
    Some(words)
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
        if cx.graph.wide.contains(&cx.node.output) {
            return lower_s16(cx, |v| f64::from(self.apply(v as f32)));
        }
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
    fn prelu_runs_as_a_table_or_as_its_parts_in_int8() {
        use crate::ops::testing::{assert_conforms, floats, one_node};
        for (slope, shape, kinds) in [
            (vec![0.25], vec![1], &["Lut"][..]),
            (vec![0.1, 0.5, 0.9], vec![3, 1], &["Mul", "Max"][..]),
            (vec![1.5, 2.0, 1.0], vec![3, 1], &["Mul", "Min"][..]),
            (
                vec![-0.3, 0.2, 1.4],
                vec![3, 1],
                &["Lut", "Mul", "Lut", "Add"][..],
            ),
        ] {
            let model = one_node(
                "PRelu",
                &[1, 3, 20],
                &["slope"],
                vec![],
                vec![floats("slope", &shape, &slope)],
            );
            let g = assert_conforms("PRelu", &model, 30.0);
            let got: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(got, kinds, "slopes {slope:?}");
        }
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

    #[test]
    fn log_shaped_functions_run_as_the_log_op_and_others_keep_the_table() {
        use crate::quantize::quantize_wide;
        use medq::format::layout::params::log as lw;
        let x = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        let y = |hi: f32| QParams {
            scale: hi / 32767.0,
            zero_point: 0,
        };
        let ln = log_form(f64::ln, x, y(12.0)).expect("ln");
        assert_eq!((ln[lw::LOW_INPUT], ln[lw::LOW_OUTPUT]), (1, -32768));
        // Clamped at 3.0, 6 steps of x: below it, ln 3.
        let clamped = log_form(|v| v.max(3.0).ln(), x, y(12.0)).expect("clamped");
        assert_eq!(clamped[lw::LOW_INPUT], 6);
        assert_eq!(clamped[lw::LOW_OUTPUT], quantize_wide(y(12.0), 3f32.ln()));
        // Decibels of x + ε, ε far under x's step: 0 reads 10·log10(ε),
        // below the output's range.
        let db = |v: f64| 10.0 * (v + 1e-9).log10();
        let db = log_form(db, x, y(45.0)).expect("decibels");
        assert_eq!((db[lw::LOW_INPUT], db[lw::LOW_OUTPUT]), (1, -32768));
        // A log of 1 + x leaves ln x at small x; tanh and −ln are not logs
        // of positive slope.
        assert_eq!(log_form(f64::ln_1p, x, y(12.0)), None);
        assert_eq!(log_form(f64::tanh, x, y(1.0)), None);
        assert_eq!(log_form(|v| -v.ln(), x, y(12.0)), None);
    }
}
