//! Pointwise functions of one tensor as one 256-entry table: ONNX `Erf`,
//! `Gelu` (opset 20), `Pow` by a constant, `Sqrt`, `Exp`, `Log`, `Neg`,
//! `Abs`, `Reciprocal`, `Sign`, the trigonometric and hyperbolic functions
//! and their inverses, `Floor`, `Ceil`, `Round`, `IsNaN`, `IsInf`, the
//! activations `Elu`,
//! `Selu`, `Celu`, `Softplus`, `Softsign`, `Mish`, `ThresholdedRelu`,
//! `Shrink`, and any chain of pointwise nodes over a single computed
//! tensor, fused before lowering — the GELU patterns exporters write
//! (`x·½(1+erf(x/√2))`, `½x(1+tanh(√(2/π)(x+0.044715x³)))`), SiLU
//! (`x·sigmoid(x)`), `sqrt(var + ε)`, and `Where` of comparisons of that
//! tensor (`torch.where(x > 0, x, 0.1·x)`, Hardshrink), whose comparison,
//! logic and `Cast` nodes run nowhere else. One table means one rounding
//! instead of one per node.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use medq::format::layout::{params::lut as w, OpCode};
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};

use super::onnx::{act, konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::tensor::{from_proto, Const};
use crate::load::{Builder, Value};
use crate::quantize::{ConstData, ConstQuant, ConstTensor, LowerCtx, Lowered, Operand};
use crate::quantize::{OutputQuant, QParams};

/// A real function of one input `x`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    X,
    Const(f64),
    Unary(Fn1, Arc<Expr>),
    Binary(Fn2, Arc<Expr>, Arc<Expr>),
    /// ONNX `Where`: the second where the first is non-zero, else the third.
    Where(Arc<Expr>, Arc<Expr>, Arc<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fn1 {
    Erf,
    Tanh,
    Sigmoid,
    Sqrt,
    Exp,
    Neg,
    Abs,
    Relu,
    Reciprocal,
    Gelu,
    GeluTanh,
    Log,
    Sign,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Floor,
    Ceil,
    /// Toward zero: ONNX `Cast` of a float to an integer type.
    Trunc,
    /// ONNX `Round`: halves to even.
    Round,
    /// 1 where NaN (never on a quantized tensor: `torch.nan_to_num`'s test).
    IsNaN,
    /// 1 where ±∞ (`detect_negative`, `detect_positive`).
    IsInf(bool, bool),
    Softplus,
    Softsign,
    Mish,
    /// `alpha`.
    Elu(f64),
    /// `alpha`, `gamma`.
    Selu(f64, f64),
    /// `alpha`.
    Celu(f64),
    /// `alpha`.
    ThresholdedRelu(f64),
    /// `bias`, `lambd`.
    Shrink(f64, f64),
    /// ONNX `Not` of a boolean held as 0 or 1.
    Not,
    /// `Cast` to bool: 1 where non-zero.
    NonZero,
    /// `Cast` to a float type.
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fn2 {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    // Comparisons and logic give 1 or 0 (ONNX booleans, as `Where` reads them).
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    And,
    Or,
    /// ONNX `Mod`: the remainder with the sign of the dividend (`fmod` 1,
    /// C's `fmod`: `torch.fmod`), or of the divisor (`fmod` 0, Python's
    /// `%`, on integers).
    Mod {
        fmod: bool,
    },
}

impl Expr {
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            Expr::X => x,
            Expr::Const(c) => *c,
            Expr::Unary(f, a) => f.apply(a.eval(x)),
            Expr::Binary(f, a, b) => f.apply(a.eval(x), b.eval(x)),
            Expr::Where(c, a, b) => {
                if c.eval(x) != 0.0 {
                    a.eval(x)
                } else {
                    b.eval(x)
                }
            }
        }
    }
}

impl Fn1 {
    fn apply(self, v: f64) -> f64 {
        match self {
            Fn1::Erf => erf(v),
            Fn1::Tanh => v.tanh(),
            Fn1::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Fn1::Sqrt => v.sqrt(),
            Fn1::Exp => v.exp(),
            Fn1::Neg => -v,
            Fn1::Abs => v.abs(),
            Fn1::Relu => v.max(0.0),
            Fn1::Reciprocal => 1.0 / v,
            Fn1::Gelu => 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)),
            Fn1::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
            }
            Fn1::Log => v.ln(),
            // ONNX's Sign: 0 at 0 (f64::signum gives 1).
            Fn1::Sign => {
                if v == 0.0 {
                    0.0
                } else {
                    v.signum()
                }
            }
            Fn1::Sin => v.sin(),
            Fn1::Cos => v.cos(),
            Fn1::Tan => v.tan(),
            Fn1::Asin => v.asin(),
            Fn1::Acos => v.acos(),
            Fn1::Atan => v.atan(),
            Fn1::Sinh => v.sinh(),
            Fn1::Cosh => v.cosh(),
            Fn1::Asinh => v.asinh(),
            Fn1::Acosh => v.acosh(),
            Fn1::Atanh => v.atanh(),
            Fn1::Floor => v.floor(),
            Fn1::Trunc => v.trunc(),
            Fn1::Ceil => v.ceil(),
            Fn1::Round => v.round_ties_even(),
            Fn1::IsNaN => f64::from(u8::from(v.is_nan())),
            Fn1::IsInf(negative, positive) => f64::from(u8::from(
                v.is_infinite() && if v > 0.0 { positive } else { negative },
            )),
            Fn1::Softplus => softplus(v),
            Fn1::Softsign => v / (1.0 + v.abs()),
            Fn1::Mish => v * softplus(v).tanh(),
            Fn1::Elu(alpha) => {
                if v >= 0.0 {
                    v
                } else {
                    alpha * v.exp_m1()
                }
            }
            Fn1::Selu(alpha, gamma) => {
                if v > 0.0 {
                    gamma * v
                } else {
                    gamma * alpha * v.exp_m1()
                }
            }
            Fn1::Celu(alpha) => v.max(0.0) + (alpha * (v / alpha).exp_m1()).min(0.0),
            Fn1::ThresholdedRelu(alpha) => {
                if v > alpha {
                    v
                } else {
                    0.0
                }
            }
            Fn1::Not => f64::from(u8::from(v == 0.0)),
            Fn1::NonZero => f64::from(u8::from(v != 0.0)),
            Fn1::Identity => v,
            Fn1::Shrink(bias, lambd) => {
                if v < -lambd {
                    v + bias
                } else if v > lambd {
                    v - bias
                } else {
                    0.0
                }
            }
        }
    }

    /// The ONNX single-input op `op` with attributes `attrs`, if it is one
    /// and every attribute is one it defines (`None` otherwise: a node with
    /// another attribute is left to its own lowering, or refused).
    fn of(op: &str, attrs: &[AttributeProto]) -> Option<Fn1> {
        let known: &[&str] = match op {
            "Gelu" => &["approximate"],
            "Elu" | "Celu" | "ThresholdedRelu" => &["alpha"],
            "Selu" => &["alpha", "gamma"],
            "Shrink" => &["bias", "lambd"],
            "IsInf" => &["detect_negative", "detect_positive"],
            _ => &[],
        };
        if attrs.iter().any(|a| !known.contains(&a.name.as_str())) {
            return None;
        }
        let attr = |name: &str| attrs.iter().find(|a| a.name == name);
        let float = |name: &str, default: f64| attr(name).map_or(default, |a| a.f as f64);
        let flag = |name: &str| attr(name).is_none_or(|a| a.i != 0);
        Some(match op {
            "Erf" => Fn1::Erf,
            "Tanh" => Fn1::Tanh,
            "Sigmoid" => Fn1::Sigmoid,
            "Sqrt" => Fn1::Sqrt,
            "Exp" => Fn1::Exp,
            "Neg" => Fn1::Neg,
            "Abs" => Fn1::Abs,
            "Relu" => Fn1::Relu,
            "Reciprocal" => Fn1::Reciprocal,
            "Gelu" => match attr("approximate").map(|a| String::from_utf8_lossy(&a.s)) {
                None => Fn1::Gelu,
                Some(a) if a == "none" => Fn1::Gelu,
                Some(a) if a == "tanh" => Fn1::GeluTanh,
                Some(_) => return None,
            },
            "Log" => Fn1::Log,
            "Sign" => Fn1::Sign,
            "Sin" => Fn1::Sin,
            "Cos" => Fn1::Cos,
            "Tan" => Fn1::Tan,
            "Asin" => Fn1::Asin,
            "Acos" => Fn1::Acos,
            "Atan" => Fn1::Atan,
            "Sinh" => Fn1::Sinh,
            "Cosh" => Fn1::Cosh,
            "Asinh" => Fn1::Asinh,
            "Acosh" => Fn1::Acosh,
            "Atanh" => Fn1::Atanh,
            "Floor" => Fn1::Floor,
            "Ceil" => Fn1::Ceil,
            "Round" => Fn1::Round,
            "IsNaN" => Fn1::IsNaN,
            "IsInf" => Fn1::IsInf(flag("detect_negative"), flag("detect_positive")),
            "Softplus" => Fn1::Softplus,
            "Softsign" => Fn1::Softsign,
            "Mish" => Fn1::Mish,
            "Elu" => Fn1::Elu(float("alpha", 1.0)),
            // ONNX's defaults, to the digits the spec gives.
            "Selu" => Fn1::Selu(
                float("alpha", 1.673_263_192_176_818_8),
                float("gamma", 1.050_701_022_148_132_3),
            ),
            // tract, the converter's float reference (calibration and the
            // report), computes Celu as if `alpha` were 1: another `alpha`
            // could be neither calibrated nor checked.
            "Celu" => match float("alpha", 1.0) {
                a if a == 1.0 => Fn1::Celu(a),
                _ => return None,
            },
            "ThresholdedRelu" => Fn1::ThresholdedRelu(float("alpha", 1.0)),
            "Shrink" => Fn1::Shrink(float("bias", 0.0), float("lambd", 0.5)),
            _ => return None,
        })
    }
}

/// `ln(1 + eˣ)` without overflow for large `x`.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

impl Fn2 {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Fn2::Add => a + b,
            Fn2::Sub => a - b,
            Fn2::Mul => a * b,
            Fn2::Div => a / b,
            Fn2::Pow => a.powf(b),
            Fn2::Max => a.max(b),
            Fn2::Min => a.min(b),
            Fn2::Greater => f64::from(u8::from(a > b)),
            Fn2::GreaterOrEqual => f64::from(u8::from(a >= b)),
            Fn2::Less => f64::from(u8::from(a < b)),
            Fn2::LessOrEqual => f64::from(u8::from(a <= b)),
            Fn2::Equal => f64::from(u8::from(a == b)),
            Fn2::And => f64::from(u8::from(a != 0.0 && b != 0.0)),
            Fn2::Or => f64::from(u8::from(a != 0.0 || b != 0.0)),
            Fn2::Mod { fmod } => {
                let r = a % b;
                match !fmod && r != 0.0 && (r < 0.0) != (b < 0.0) {
                    true => r + b,
                    false => r,
                }
            }
        }
    }

    fn of(op: &str) -> Option<Fn2> {
        Some(match op {
            "Add" => Fn2::Add,
            "Sub" => Fn2::Sub,
            "Mul" => Fn2::Mul,
            "Div" => Fn2::Div,
            "Pow" => Fn2::Pow,
            "Max" => Fn2::Max,
            "Min" => Fn2::Min,
            "Greater" => Fn2::Greater,
            "GreaterOrEqual" => Fn2::GreaterOrEqual,
            "Less" => Fn2::Less,
            "LessOrEqual" => Fn2::LessOrEqual,
            "Equal" => Fn2::Equal,
            "And" => Fn2::And,
            "Or" => Fn2::Or,
            _ => return None,
        })
    }
}

/// `erf(x)`, to about 1e-15 relative: the Maclaurin series below 2.5,
/// Laplace's continued fraction for `erfc` above (no `erf` in `std`).
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        // erf(a) = 2/√π Σ (−1)^n a^(2n+1) / (n! (2n+1))
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a < 6.0 {
        // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
        let mut frac = 0.0;
        for k in (1..60).rev() {
            frac = (k as f64 / 2.0) / (a + frac);
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + frac)
    } else {
        1.0
    };
    r.copysign(x)
}

/// The IR op: one table.
#[derive(Clone, Debug)]
pub struct Pointwise {
    pub f: Arc<Expr>,
}

/// `table[i] = quantize_out(f(dequantize_in(i − 128)))`, computed in `f64`;
/// NaN (e.g. the root of a negative) becomes 0 before quantization.
///
/// An input grid of step `1/k` (`quantize::integer_grid`: a mask, lengths)
/// is read at exact multiples of `1/k`, so that its integers are the
/// integers themselves: `lengths == 16` or a cast to int64 must not see
/// `15.9999998`, the `f32` scale's own rounding.
pub fn table(f: &Expr, x: QParams, y: QParams) -> Vec<i8> {
    let k = (1.0 / x.scale as f64).round();
    let integer_step = k >= 1.0 && (k * x.scale as f64 - 1.0).abs() < 1e-6;
    (-128..=127i32)
        .map(|v| {
            let at = match integer_step {
                true => f64::from(v - x.zero_point) / k,
                false => x.dequantize(v as i8) as f64,
            };
            let r = f.eval(at);
            y.quantize(if r.is_nan() { 0.0 } else { r as f32 })
        })
        .collect()
}

impl IrOp for Pointwise {
    fn kind(&self) -> &'static str {
        "Lut"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, _) = cx.input(0)?;
        Ok(x.iter().map(|&v| self.f.eval(v as f64) as f32).collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        if cx.graph.wide.contains(&cx.node.output) {
            let (x, xq) = cx.activation(0)?;
            if let Some(params) = super::lut::log_form(|v| self.f.eval(v), xq, cx.output_q()?) {
                return Ok(Lowered {
                    opcode: OpCode::Log,
                    inputs: vec![x],
                    params,
                });
            }
            return super::lut::lower_s16(cx, |v| self.f.eval(v));
        }
        let (x, xq) = cx.activation(0)?;
        let t = ConstTensor {
            name: format!("{}.table", cx.node.name),
            dims: vec![256],
            quant: ConstQuant::None,
            data: ConstData::I8(table(&self.f, xq, cx.output_q()?)),
        };
        Ok(Lowered {
            opcode: OpCode::Lut,
            inputs: vec![x, Operand::Constant(t)],
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

fn emit(b: &mut Builder, ctx: &NodeCtx, ins: Ins, f: Expr) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    b.emit(
        ctx,
        Op::Pointwise(Pointwise { f: Arc::new(f) }),
        vec![x],
        xs,
    )
}

/// A single-input pointwise ONNX op on its own (`Erf`, `Log`, `Elu`, …,
/// and opset 20's `Gelu`), its attributes read.
pub(crate) fn unary(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let f = Fn1::of(ctx.op, &ctx.pb.attribute).ok_or_else(|| {
        let attrs: Vec<String> = ctx
            .pb
            .attribute
            .iter()
            .map(|a| match a.r#type() {
                tract_onnx::pb::attribute_proto::AttributeType::String => {
                    format!("{}={:?}", a.name, String::from_utf8_lossy(&a.s))
                }
                _ => a.name.clone(),
            })
            .collect();
        ctx.err(format!(
            "attributes {attrs:?}: medq takes the ones ONNX defines for {} (Gelu's \
             `approximate` only \"none\" or \"tanh\"; Celu's `alpha` only 1, as tract, the \
             float reference, computes it)",
            ctx.op
        ))
    })?;
    emit(b, ctx, ins, Expr::Unary(f, Arc::new(Expr::X)))
}

/// ONNX comparisons and logic on computed tensors (`Equal`, `Greater`,
/// `GreaterOrEqual`, `Less`, `LessOrEqual`, `And`, `Or`, `Not`): 1 where
/// true, 0 elsewhere, as `Where` (the Select op) reads them.
///
/// Of one tensor and a scalar constant (`mask == 0`, `x > 0.5`): a table.
/// Of two tensors, or of a tensor and a constant tensor (`arange(T) <
/// lengths`): And is their product, Or their maximum, and a comparison a
/// table of their difference (a Sub), exact wherever the difference is;
/// a difference within one step of 0 may round to the other side.
pub(crate) fn comparison(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    use super::binary::{Binary, BinaryOp};
    use super::onnx::input;
    if ctx.op == "Not" {
        return emit(b, ctx, ins, Expr::Unary(Fn1::Not, Arc::new(Expr::X)));
    }
    let f = Fn2::of(ctx.op).ok_or_else(|| ctx.err("not a comparison"))?;
    let (x, y) = (input(ctx, ins, 0)?, input(ctx, ins, 1)?);
    let scalar = |v: &Value| match v {
        Value::Const(c) => c.scalar_f32().map(f64::from),
        _ => None,
    };
    let table = |b: &mut Builder, t: crate::ir::TensorId, f: Expr| {
        let shape = b.shape_of(&Value::Act(t));
        let op = Op::Pointwise(Pointwise { f: Arc::new(f) });
        b.emit(ctx, op, vec![t], shape)
    };
    match (&x.value, &y.value, scalar(&x.value), scalar(&y.value)) {
        (Value::Act(t), _, _, Some(c)) => {
            let c = Arc::new(Expr::Const(c));
            return table(b, *t, Expr::Binary(f, Arc::new(Expr::X), c));
        }
        (_, Value::Act(t), Some(c), _) => {
            let c = Arc::new(Expr::Const(c));
            return table(b, *t, Expr::Binary(f, c, Arc::new(Expr::X)));
        }
        _ => {}
    }
    let mut ids = [0; 2];
    for (id, operand) in ids.iter_mut().zip([&x, &y]) {
        *id = match &operand.value {
            Value::Act(t) => *t,
            Value::Const(c) => b.const_tensor(operand.name, c)?,
            Value::Unavailable(why) => {
                return Err(ctx.err(format!("input \"{}\" is {why}", operand.name)))
            }
        };
    }
    let (sx, sy) = (b.shape_of(&x.value), b.shape_of(&y.value));
    let out = crate::load::shape::broadcast(&sx, &sy)
        .ok_or_else(|| ctx.err(format!("shapes {sx:?} and {sy:?} do not broadcast")))?;
    match f {
        Fn2::And => {
            let op = Op::Mul(super::elementwise::Mul {
                activation: FusedActivation::None,
            });
            b.emit(ctx, op, ids.to_vec(), out)
        }
        Fn2::Or => super::binary::emit(b, ctx, BinaryOp::Max, ids, out),
        _ => {
            let sub = Op::Binary(Binary { op: BinaryOp::Sub });
            let d = b.emit_part(ctx, "difference", sub, ids.to_vec(), out)?;
            let zero = Arc::new(Expr::Const(0.0));
            table(b, d, Expr::Binary(f, Arc::new(Expr::X), zero))
        }
    }
}

/// A computed tensor cast to bool (1 where non-zero) or to an integer
/// type (toward zero), by ONNX `Cast`.
pub(crate) fn cast(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    to_bool: bool,
) -> Result<Value, ConvertError> {
    let f = if to_bool { Fn1::NonZero } else { Fn1::Trunc };
    emit(b, ctx, ins, Expr::Unary(f, Arc::new(Expr::X)))
}

/// ONNX `Mod` of a computed tensor by a constant scalar divisor
/// (`torch.fmod`, or `%` of an integer input).
pub(crate) fn modulo(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let divisor = konst(ctx, ins, 1, "divisor")?;
    let divisor = divisor
        .scalar_f32()
        .filter(|&d| d != 0.0)
        .ok_or_else(|| ctx.err("the divisor must be a non-zero scalar constant"))?;
    let f = Expr::Binary(
        Fn2::Mod {
            fmod: ctx.int("fmod", 0)? != 0,
        },
        Arc::new(Expr::X),
        Arc::new(Expr::Const(f64::from(divisor))),
    );
    emit(b, ctx, ins, f)
}

/// ONNX `Pow` of a computed tensor by a constant scalar exponent.
pub(crate) fn pow(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let e = konst(ctx, ins, 1, "exponent")?;
    let e = e
        .scalar_f32()
        .ok_or_else(|| ctx.err("the exponent must be a scalar constant"))?;
    let f = Expr::Binary(Fn2::Pow, Arc::new(Expr::X), Arc::new(Expr::Const(e as f64)));
    emit(b, ctx, ins, f)
}

// ---- fusion of pointwise chains, before lowering ----

/// Chains of pointwise nodes over one computed tensor, found before the
/// graph is lowered: each becomes one [`Pointwise`] node at its last node
/// (the "sink"), and its other nodes are skipped.
#[derive(Debug, Default)]
pub(crate) struct Fusions {
    /// Sink node index → (the fused node's input tensors, what it computes).
    sinks: HashMap<usize, (Vec<String>, Fused)>,
    skipped: HashSet<usize>,
}

/// What a fused group of ONNX nodes computes.
#[derive(Debug)]
pub(crate) enum Fused {
    /// A pointwise function of input 0.
    Pointwise(Expr),
    /// A layer normalization written out (`layer_norm::find_pattern`).
    LayerNorm(super::layer_norm::Pattern),
}

impl Fusions {
    /// Whether node `index` is inside a fused group (not its sink).
    pub(crate) fn skips(&self, index: usize) -> bool {
        self.skipped.contains(&index)
    }

    /// The input tensor names of the fused group ending at node `index`.
    pub(crate) fn inputs(&self, index: usize) -> Option<&[String]> {
        self.sinks.get(&index).map(|(ins, _)| &ins[..])
    }

    /// Lowers node `index`, if it is the sink of a fused group.
    pub(crate) fn lower(
        &self,
        b: &mut Builder,
        ctx: &NodeCtx,
        ins: Ins,
        index: usize,
    ) -> Option<Result<Value, ConvertError>> {
        Some(match &self.sinks.get(&index)?.1 {
            Fused::Pointwise(f) => fused(b, ctx, ins, f),
            Fused::LayerNorm(p) => super::layer_norm::from_pattern(b, ctx, ins, p),
        })
    }

    /// Records a fused group: `nodes` (sink included) become one node at `sink`.
    pub(crate) fn add(
        &mut self,
        nodes: &HashSet<usize>,
        sink: usize,
        inputs: Vec<String>,
        f: Fused,
    ) {
        self.skipped.extend(nodes.iter().filter(|&&k| k != sink));
        self.sinks.insert(sink, (inputs, f));
    }

    /// Whether node `k` is already in a fused group.
    fn taken(&self, k: usize) -> bool {
        self.skipped.contains(&k) || self.sinks.contains_key(&k)
    }
}

/// Lowers a fused chain whose sink is `ctx`'s node.
fn fused(b: &mut Builder, ctx: &NodeCtx, ins: Ins, f: &Expr) -> Result<Value, ConvertError> {
    // A chain over a constant folds, as its nodes one by one would have.
    if let Some(Some(crate::load::Input {
        value: Value::Const(c),
        ..
    })) = ins.first()
    {
        let data: Vec<f64> = c.to_f32().iter().map(|&v| f.eval(v as f64)).collect();
        // A chain ending in a cast to an integer type or bool (shape
        // arithmetic: `(n / 2).floor().long()`) folds to integers, as the
        // Cast on its own would.
        let shape = c.shape.clone();
        let folded = match f {
            Expr::Unary(Fn1::Trunc | Fn1::NonZero, _) => {
                Const::i64(shape, data.iter().map(|&v| v as i64).collect())
            }
            _ => Const::f32(shape, data.iter().map(|&v| v as f32).collect()),
        };
        return Ok(Value::Const(Rc::new(folded)));
    }
    emit(b, ctx, ins, f.clone())
}

/// The names of `g`'s constant tensors: its initializers and the outputs of
/// its `Constant` nodes.
pub(crate) fn constant_names(g: &GraphProto) -> HashSet<&str> {
    let constant_nodes = g.node.iter().filter(|n| n.op_type == "Constant");
    g.initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(constant_nodes.flat_map(|n| n.output.iter().map(String::as_str)))
        .collect()
}

/// Scalar constants by tensor name: initializers and `Constant` nodes with
/// one value.
pub(crate) fn scalars(g: &GraphProto) -> HashMap<&str, f64> {
    let mut out = HashMap::new();
    let one = |c: Const| (c.len() == 1 && c.shape.len() <= 1).then(|| c.to_f32()[0] as f64);
    for t in &g.initializer {
        if let Some(v) = from_proto(t).ok().and_then(one) {
            out.insert(t.name.as_str(), v);
        }
    }
    for n in g.node.iter().filter(|n| n.op_type == "Constant") {
        let value = n.attribute.iter().find_map(|a| match a.name.as_str() {
            "value" => a.t.as_ref().and_then(|t| from_proto(t).ok()).and_then(one),
            "value_float" => Some(a.f as f64),
            _ => None,
        });
        if let (Some(v), Some(o)) = (value, n.output.first()) {
            out.insert(o.as_str(), v);
        }
    }
    out
}

/// A node as a pointwise function of its computed inputs: `None` unless its
/// op is pointwise, its constant inputs are scalars, and (`Max`/`Min`) it
/// has two inputs. Nodes with attributes other than Gelu's `approximate`
/// are left to their own lowering.
fn pointwise_op(n: &NodeProto) -> Option<Step> {
    if !n.domain.is_empty() {
        return None;
    }
    match n.op_type.as_str() {
        "Where" if n.input.len() == 3 && n.attribute.is_empty() => return Some(Step::Where),
        "Not" if n.input.len() == 1 && n.attribute.is_empty() => {
            return Some(Step::Unary(Fn1::Not))
        }
        "Cast" if n.input.len() == 1 => {
            use tract_onnx::pb::tensor_proto::DataType;
            let to = n
                .attribute
                .iter()
                .find(|a| a.name == "to")
                .map(|a| a.i as i32);
            return match to.and_then(|t| DataType::try_from(t).ok()) {
                Some(
                    DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16,
                ) => Some(Step::Unary(Fn1::Identity)),
                Some(DataType::Bool) => Some(Step::Unary(Fn1::NonZero)),
                Some(t) if crate::load::tensor::is_integer(t as i32) => {
                    Some(Step::Unary(Fn1::Trunc))
                }
                _ => None,
            };
        }
        _ => {}
    }
    if n.op_type == "Mod" {
        let fmod = n.attribute.iter().find(|a| a.name == "fmod").map(|a| a.i);
        let only_fmod = n.attribute.iter().all(|a| a.name == "fmod");
        return (n.input.len() == 2 && only_fmod).then_some(Step::Binary(Fn2::Mod {
            fmod: fmod.is_some_and(|f| f != 0),
        }));
    }
    match (Fn1::of(&n.op_type, &n.attribute), Fn2::of(&n.op_type)) {
        (Some(f), _) if n.input.len() == 1 => Some(Step::Unary(f)),
        (_, Some(f)) if n.input.len() == 2 && n.attribute.is_empty() => Some(Step::Binary(f)),
        _ => None,
    }
}

/// One node of a pointwise chain.
enum Step {
    Unary(Fn1),
    Binary(Fn2),
    Where,
}

/// Which node writes each tensor (empty names, absent optional outputs,
/// are not tensors).
pub(crate) fn producers(g: &GraphProto) -> HashMap<&str, usize> {
    g.node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .filter(|(o, _)| !o.is_empty())
        .collect()
}

/// Which nodes read each tensor.
pub(crate) fn consumers(g: &GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for name in &n.input {
            consumers.entry(name.as_str()).or_default().push(i);
        }
    }
    consumers
}

/// Finds the groups to fuse in `g` (nodes in topological order): written-out
/// layer normalizations first, then pointwise chains.
pub(crate) fn find(g: &GraphProto) -> Fusions {
    let consts = scalars(g);
    let consumers = consumers(g);
    let mut fusions = Fusions::default();
    super::layer_norm::find_pattern(g, &consts, &consumers, &mut fusions);
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let computed = |n: &NodeProto| -> Vec<String> {
        n.input
            .iter()
            .filter(|s| !consts.contains_key(s.as_str()))
            .cloned()
            .collect()
    };
    for start in 0..g.node.len() {
        let n = &g.node[start];
        let ins = computed(n);
        if fusions.taken(start)
            || pointwise_op(n).is_none()
            || ins.is_empty()
            || n.output.len() != 1
        {
            continue;
        }
        let x = ins[0].clone();
        if ins.iter().any(|s| *s != x) {
            continue;
        }
        // Grow: every later pointwise node whose computed inputs are x or
        // outputs of the chain.
        let mut chain = vec![start];
        let mut avail: HashSet<String> = [x.clone(), n.output[0].clone()].into();
        for (j, m) in g.node.iter().enumerate().skip(start + 1) {
            let ins = computed(m);
            if !fusions.taken(j)
                && pointwise_op(m).is_some()
                && m.output.len() == 1
                && !ins.is_empty()
                && ins.iter().all(|s| avail.contains(s))
            {
                chain.push(j);
                avail.insert(m.output[0].clone());
            }
        }
        // The latest sink whose ancestors in the chain feed nothing else.
        for &sink in chain.iter().rev() {
            let part = ancestors(g, &chain, sink, &x, &consts);
            let closed = part.iter().filter(|&&k| k != sink).all(|&k| {
                let o = g.node[k].output[0].as_str();
                !outputs.contains(o)
                    && consumers
                        .get(o)
                        .is_some_and(|c| c.iter().all(|u| part.contains(u)))
            });
            if part.len() >= 2 && closed && worth_fusing(g, &part, &consts) {
                let sink_output = &g.node[sink].output[0];
                if let Some(f) = expr(g, sink_output, &x, &consts, &part, part.len()) {
                    fusions.add(&part, sink, vec![x.clone()], Fused::Pointwise(f));
                    break;
                }
            }
        }
    }
    fusions
}

/// The chain nodes `sink` depends on, itself included.
fn ancestors(
    g: &GraphProto,
    chain: &[usize],
    sink: usize,
    x: &str,
    consts: &HashMap<&str, f64>,
) -> HashSet<usize> {
    let producer: HashMap<&str, usize> = chain
        .iter()
        .map(|&k| (g.node[k].output[0].as_str(), k))
        .collect();
    let mut part = HashSet::new();
    let mut stack = vec![sink];
    while let Some(k) = stack.pop() {
        if part.insert(k) {
            for s in &g.node[k].input {
                if s != x && !consts.contains_key(s.as_str()) {
                    if let Some(&p) = producer.get(s.as_str()) {
                        stack.push(p);
                    }
                }
            }
        }
    }
    part
}

/// A chain of plain affine steps and clamps is left to the ops it is
/// (they fold into convolutions and activations); a chain with a
/// nonlinearity or a product of two computed values becomes a table.
fn worth_fusing(g: &GraphProto, part: &HashSet<usize>, consts: &HashMap<&str, f64>) -> bool {
    part.iter().any(|&k| {
        let n = &g.node[k];
        let two_computed = n
            .input
            .iter()
            .filter(|s| !consts.contains_key(s.as_str()))
            .count()
            == 2;
        !matches!(
            n.op_type.as_str(),
            "Add" | "Sub" | "Mul" | "Div" | "Relu" | "Neg"
        ) || two_computed
    })
}

/// The function computing `name` from `x` through the nodes of `part`, at
/// most `depth` nodes deep: a path through an acyclic `part` has at most
/// `part.len()` nodes, so a deeper one is a cycle (a malformed graph, found
/// by `fuzz/`'s `onnx_load`: the recursion overflowed the stack), and the
/// chain is not fused.
fn expr(
    g: &GraphProto,
    name: &str,
    x: &str,
    consts: &HashMap<&str, f64>,
    part: &HashSet<usize>,
    depth: usize,
) -> Option<Expr> {
    if name == x {
        return Some(Expr::X);
    }
    if let Some(&c) = consts.get(name) {
        return Some(Expr::Const(c));
    }
    let depth = depth.checked_sub(1)?;
    let k = *part.iter().find(|&&k| g.node[k].output[0] == name)?;
    let n = &g.node[k];
    let arg = |i: usize| expr(g, n.input.get(i)?, x, consts, part, depth).map(Arc::new);
    Some(match pointwise_op(n)? {
        Step::Unary(f) => Expr::Unary(f, arg(0)?),
        Step::Binary(f) => Expr::Binary(f, arg(0)?, arg(1)?),
        Step::Where => Expr::Where(arg(0)?, arg(1)?, arg(2)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_conforms, floats, one_node};
    use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};

    fn attr_s(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn erf_matches_known_values() {
        // Reference values of erf to 16 digits.
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.9999779095030014),
            (-1.5, -0.9661051464753108),
        ] {
            assert!(
                (erf(x) - want).abs() < 1e-13,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    fn attr_f(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::Float as i32,
            f: v,
            ..Default::default()
        }
    }

    #[test]
    fn activations_with_attributes_run_in_int8() {
        for (op, attrs) in [
            ("Elu", vec![attr_f("alpha", 0.7)]),
            ("Elu", vec![]),
            ("Selu", vec![]),
            ("Selu", vec![attr_f("alpha", 1.2), attr_f("gamma", 0.9)]),
            // Only alpha 1: see `celu_follows_its_formula_and_takes_alpha_1`.
            ("Celu", vec![]),
            ("Softplus", vec![]),
            ("Softsign", vec![]),
            ("ThresholdedRelu", vec![attr_f("alpha", 0.3)]),
            ("Shrink", vec![attr_f("bias", 0.2), attr_f("lambd", 0.4)]),
            ("Sin", vec![]),
            ("Cos", vec![]),
            ("Sign", vec![]),
            ("Atan", vec![]),
            ("Asinh", vec![]),
            ("Sinh", vec![]),
            ("Cosh", vec![]),
            ("Floor", vec![]),
            ("Ceil", vec![]),
            ("Round", vec![]),
        ] {
            let model = one_node(op, &[1, 3, 20], &[], attrs, vec![]);
            // Sign, Floor, Ceil and Round jump by 1: inputs within half an
            // input step of a jump land on its other side, so their error is
            // that share of the samples, not a rounding.
            let jumps = matches!(op, "Sign" | "Floor" | "Ceil" | "Round");
            let min_db = if jumps { 20.0 } else { 30.0 };
            let g = assert_conforms(op, &model, min_db);
            assert!(
                matches!(g.nodes[..], [ref n] if n.op.kind() == "Lut"),
                "{op}"
            );
        }
    }

    #[test]
    fn mish_and_log_follow_their_formulas() {
        // tract has no opset-18 Mish; check the table's function instead.
        for x in [-3.0, -0.5, 0.0, 0.7, 4.0, 40.0] {
            let softplus = (1.0f64 + f64::exp(x)).ln();
            assert!(
                (Fn1::Mish.apply(x) - x * softplus.tanh()).abs() < 1e-12,
                "{x}"
            );
        }
        assert_eq!(Fn1::Log.apply(1.0), 0.0);
        assert_eq!(Fn1::Log.apply(0.0), f64::NEG_INFINITY);
        // Log of an |x| + 1: the whole chain is one table.
        let mut model = one_node("Abs", &[1, 3, 20], &[], vec![], vec![]);
        let graph = model.graph.as_mut().unwrap();
        graph.initializer.push(floats("one", &[], &[1.0]));
        graph.node.push(NodeProto {
            name: "plus_one".into(),
            op_type: "Add".into(),
            input: vec!["y".into(), "one".into()],
            output: vec!["y1".into()],
            ..Default::default()
        });
        graph.node.push(NodeProto {
            name: "log".into(),
            op_type: "Log".into(),
            input: vec!["y1".into()],
            output: vec!["z".into()],
            ..Default::default()
        });
        graph.output[0].name = "z".into();
        let g = assert_conforms("Log(|x| + 1)", &model, 35.0);
        assert!(matches!(g.nodes[..], [ref n] if n.op.kind() == "Lut"));
    }

    #[test]
    fn nan_to_num_is_one_table_of_the_identity() {
        // torch.nan_to_num(x, 0.0) before a layer: Where(IsNaN(x), 0, x). An
        // int8 tensor holds no NaN, so the table is x itself.
        let mut model = one_node("IsNaN", &[1, 3, 20], &[], vec![], vec![]);
        let graph = model.graph.as_mut().unwrap();
        graph.initializer.push(floats("zero", &[], &[0.0]));
        graph.node.push(NodeProto {
            name: "where".into(),
            op_type: "Where".into(),
            input: vec!["y".into(), "zero".into(), "x".into()],
            output: vec!["z".into()],
            ..Default::default()
        });
        graph.output[0].name = "z".into();
        let g = assert_conforms("nan_to_num", &model, 40.0);
        assert!(matches!(g.nodes[..], [ref n] if n.op.kind() == "Lut"));
        assert_eq!(Fn1::IsNaN.apply(f64::NAN), 1.0);
        assert_eq!(Fn1::IsInf(false, true).apply(f64::NEG_INFINITY), 0.0);
        assert_eq!(Fn1::IsInf(true, false).apply(f64::NEG_INFINITY), 1.0);
        assert_eq!(Fn1::Round.apply(2.5), 2.0);
        assert_eq!(Fn1::Round.apply(-1.5), -2.0);
    }

    #[test]
    fn celu_follows_its_formula_and_takes_alpha_1() {
        // onnx's ReferenceEvaluator on [-2, -0.5, 0.5, 2] with alpha 0.5;
        // the lowering refuses that alpha (tract computes another function).
        assert_eq!(Fn1::of("Celu", &[attr_f("alpha", 0.5)]), None);
        assert_eq!(Fn1::of("Celu", &[]), Some(Fn1::Celu(1.0)));
        let f = Fn1::Celu(0.5);
        for (x, want) in [
            (-2.0, -0.4908422),
            (-0.5, -0.3160603),
            (0.5, 0.5),
            (2.0, 2.0),
        ] {
            assert!((f.apply(x) - want).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn where_of_a_comparison_of_one_tensor_is_one_table() {
        // torch.where(x > 0, x, 0.1·x), and Hardshrink as PyTorch's legacy
        // exporter writes it: Where(Or(x > λ, x < −λ) as bool, x, 0).
        let node = |op: &str, ins: &[&str], out: &str| NodeProto {
            name: out.into(),
            op_type: op.into(),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            ..Default::default()
        };
        let cast_bool = NodeProto {
            attribute: vec![AttributeProto {
                name: "to".into(),
                r#type: AttributeType::Int as i32,
                i: 9,
                ..Default::default()
            }],
            ..node("Cast", &["either"], "mask")
        };
        for (what, nodes) in [
            (
                "where leaky",
                vec![
                    node("Greater", &["x", "zero"], "positive"),
                    node("Mul", &["x", "tenth"], "scaled"),
                    node("Where", &["positive", "x", "scaled"], "z"),
                ],
            ),
            (
                "hardshrink",
                vec![
                    node("Greater", &["x", "half"], "above"),
                    node("Less", &["x", "minus_half"], "below"),
                    node("Or", &["above", "below"], "either"),
                    cast_bool,
                    node("Where", &["mask", "x", "zero"], "z"),
                ],
            ),
        ] {
            let mut model = one_node("Identity", &[1, 3, 20], &[], vec![], vec![]);
            let graph = model.graph.as_mut().unwrap();
            graph.node = nodes;
            for (name, v) in [
                ("zero", 0.0),
                ("tenth", 0.1),
                ("half", 0.5),
                ("minus_half", -0.5),
            ] {
                graph.initializer.push(floats(name, &[], &[v]));
            }
            graph.output[0].name = "z".into();
            let g = assert_conforms(what, &model, 25.0);
            assert!(
                matches!(g.nodes[..], [ref n] if n.op.kind() == "Lut"),
                "{what}"
            );
        }
    }

    #[test]
    fn an_attribute_an_op_does_not_define_is_refused_by_name() {
        let model = one_node("Elu", &[1, 4], &[], vec![attr_f("beta", 2.0)], vec![]);
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("the_Elu") && err.contains("beta"), "{err}");
    }

    #[test]
    fn single_pointwise_ops_run_in_int8() {
        for op in ["Erf", "Exp", "Neg", "Abs"] {
            let model = one_node(op, &[1, 3, 20], &[], vec![], vec![]);
            let g = assert_conforms(op, &model, 35.0);
            assert!(
                matches!(g.nodes[..], [ref n] if n.op.kind() == "Lut"),
                "{op}"
            );
        }
        let model = one_node(
            "Pow",
            &[1, 3, 20],
            &["e"],
            vec![],
            vec![floats("e", &[], &[3.0])],
        );
        assert_conforms("Pow", &model, 35.0);
    }

    #[test]
    fn mod_is_a_table_with_the_sign_its_attribute_says() {
        let fmod = |f| Fn2::Mod { fmod: f };
        // fmod 1 (C's fmod, torch.fmod): the dividend's sign; fmod 0
        // (Python's %): the divisor's.
        for (a, b, c_like, python_like) in [
            (5.5, 2.0, 1.5, 1.5),
            (-5.5, 2.0, -1.5, 0.5),
            (5.5, -2.0, 1.5, -0.5),
            (-4.0, 2.0, 0.0, 0.0),
        ] {
            assert_eq!(fmod(true).apply(a, b), c_like, "fmod({a}, {b})");
            assert_eq!(fmod(false).apply(a, b), python_like, "{a} % {b}");
        }
        let model = one_node(
            "Mod",
            &[1, 3, 20],
            &["d"],
            vec![crate::ops::testing::attr_i("fmod", 1)],
            vec![floats("d", &[], &[4.0])],
        );
        let g = assert_conforms("Mod", &model, 40.0);
        assert!(matches!(
            g.nodes[..],
            [Node {
                op: Op::Pointwise(_),
                ..
            }]
        ));
        // A computed divisor is refused, naming the node.
        let model = one_node("Mod", &[1, 3, 20], &["x"], vec![], vec![]);
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("divisor"), "{err}");
    }

    #[test]
    fn gelu_refuses_an_unknown_approximation() {
        let model = one_node(
            "Gelu",
            &[1, 4],
            &[],
            vec![attr_s("approximate", "fast")],
            vec![],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(
            err.contains("approximate") && err.contains("fast") && err.contains("the_Gelu"),
            "{err}"
        );
    }
}
