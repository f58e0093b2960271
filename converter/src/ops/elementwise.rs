//! Add and Mul: two inputs with numpy broadcasting, either of which may be a
//! constant tensor (ONNX Add, Sub, Mul, Div; a constant subtrahend or
//! divisor becomes an addend or factor).

use medq::format::layout::{params, OpCode};
use medq::kernels::MAX_ADD_LEFT_SHIFT_S16;
use medq::ops::MAX_ADD_LEFT_SHIFT;

use super::onnx::{input, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::shape::{broadcast, broadcast_indices};
use crate::load::tensor::Const;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant, QParams};

#[derive(Clone, Debug)]
pub struct Add {
    pub activation: FusedActivation,
}

#[derive(Clone, Debug)]
pub struct Mul {
    pub activation: FusedActivation,
}

/// The ONNX arithmetic ops, all lowered to [`Add`] or [`Mul`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// ONNX `Add`, `Sub`, `Mul` or `Div`.
pub(crate) fn from_onnx(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    arith: Arith,
) -> Result<Value, ConvertError> {
    let (x, y) = (input(ctx, ins, 0)?, input(ctx, ins, 1)?);
    let out = broadcast(&b.shape_of(&x.value), &b.shape_of(&y.value)).ok_or_else(|| {
        ctx.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            b.shape_of(&x.value),
            b.shape_of(&y.value)
        ))
    })?;
    let op = match arith {
        Arith::Add | Arith::Sub => Op::Add(Add {
            activation: FusedActivation::None,
        }),
        Arith::Mul | Arith::Div => Op::Mul(Mul {
            activation: FusedActivation::None,
        }),
    };
    match (&x.value, &y.value) {
        (Value::Act(p), Value::Act(q)) => match inverted_op(arith) {
            Some(sub_or_div) => super::binary::emit(b, ctx, sub_or_div, [*p, *q], out),
            None => b.emit(ctx, op, vec![*p, *q], out),
        },
        (Value::Act(p), Value::Const(c)) => {
            // x − c = x + (−c) and x / c = x · (1/c): the IR has Add and Mul only.
            let (name, c) = match arith {
                Arith::Sub => (
                    format!("{}/neg", y.name),
                    Const::f32(c.shape.clone(), c.to_f32().iter().map(|v| -v).collect()),
                ),
                Arith::Div => {
                    let v = c.to_f32();
                    if v.contains(&0.0) {
                        return Err(ctx.err(format!(
                            "division by a constant that contains 0 (\"{}\")",
                            y.name
                        )));
                    }
                    (
                        format!("{}/recip", y.name),
                        Const::f32(c.shape.clone(), v.iter().map(|v| 1.0 / v).collect()),
                    )
                }
                Arith::Add | Arith::Mul => (y.name.to_string(), c.as_ref().clone()),
            };
            let cid = b.const_tensor(&name, &c)?;
            b.emit(ctx, op, vec![*p, cid], out)
        }
        (Value::Const(c), Value::Act(q)) => {
            let cid = b.const_tensor(x.name, c)?;
            match inverted_op(arith) {
                // c − x and c / x keep their order.
                Some(sub_or_div) => super::binary::emit(b, ctx, sub_or_div, [cid, *q], out),
                // Activation first, constant second, for the quantizer's convenience.
                None => b.emit(ctx, op, vec![*q, cid], out),
            }
        }
        _ => Err(ctx.err("unexpected operands")),
    }
}

/// ONNX `Trilu` of a computed tensor (`torch.triu`/`tril` of scores): a
/// product by the constant 0/1 mask of the kept triangle over the last two
/// dims, which its integer grid holds exactly.
pub(crate) fn trilu(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, shape) = super::onnx::act(b, ctx, ins, 0)?;
    let &[.., rows, cols] = &shape[..] else {
        return Err(ctx.err(format!(
            "input of rank {}: Trilu needs at least 2",
            shape.len()
        )));
    };
    let k = super::onnx::opt_konst(ctx, ins, 1, "k")?;
    let ones = Const::f32(vec![rows, cols], vec![1.0; rows * cols]);
    let mask = crate::load::fold::trilu(ctx, &ones, k.as_deref())?;
    let mask = b.const_tensor(&format!("{}/mask", ctx.name), &mask)?;
    let op = Op::Mul(Mul {
        activation: FusedActivation::None,
    });
    b.emit(ctx, op, vec![x, mask], shape)
}

/// ONNX `Sum` and `Mean` of one or more tensors (numpy broadcasting; any
/// may be a constant, one must be computed; TensorFlow's `add_n` and Keras'
/// `Add` and `Average` of three or more exported by tf2onnx): a chain of
/// Adds, each step on its own calibrated range, and for Mean a product by
/// `1/n` after it.
pub(crate) fn sum_or_mean(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    mean: bool,
) -> Result<Value, ConvertError> {
    use super::binary::{chain, Chain};
    let add = || {
        Op::Add(Add {
            activation: FusedActivation::None,
        })
    };
    let n = ins.len();
    let (sum, shape) = match chain(b, ctx, ins, add)? {
        Chain::One(x, shape) => return b.emit(ctx, Op::Reshape, vec![x], shape),
        Chain::Last([acc, x], shape) if !mean => return b.emit(ctx, add(), vec![acc, x], shape),
        Chain::Last([acc, x], shape) => (
            b.emit_part(ctx, "sum", add(), vec![acc, x], shape.clone())?,
            shape,
        ),
    };
    let inverse = Const::f32(Vec::new(), vec![1.0 / n as f32]);
    let inverse = b.const_tensor(&format!("{}/inverse_count", ctx.name), &inverse)?;
    let mul = Op::Mul(Mul {
        activation: FusedActivation::None,
    });
    b.emit(ctx, mul, vec![sum, inverse], shape)
}

/// The op of the math family that runs Sub or Div when Add or Mul cannot.
fn inverted_op(arith: Arith) -> Option<super::binary::BinaryOp> {
    match arith {
        Arith::Sub => Some(super::binary::BinaryOp::Sub),
        Arith::Div => Some(super::binary::BinaryOp::Div),
        Arith::Add | Arith::Mul => None,
    }
}

/// `f(a, b)` elementwise over the broadcast output shape.
fn broadcast_eval(cx: &EvalCtx, f: impl Fn(f32, f32) -> f32) -> Result<Vec<f32>, ConvertError> {
    let ((a, sa), (b, sb)) = (cx.input(0)?, cx.input(1)?);
    let out = cx.output_shape;
    let (ia, ib) = (broadcast_indices(sa, out), broadcast_indices(sb, out));
    Ok(ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], b[j])).collect())
}

impl IrOp for Add {
    fn kind(&self) -> &'static str {
        "Add"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        broadcast_eval(cx, |a, b| self.activation.apply(a + b))
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(self.activation)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let ((a, aq), (b, bq)) = (add_operand(cx, 0)?, add_operand(cx, 1)?);
        Ok(Lowered {
            opcode: OpCode::Add,
            inputs: vec![a, b],
            params: add_words(cx, (aq, bq), self.activation)?,
        })
    }

    fn macs(&self, _: &Graph, _: &Node) -> u64 {
        0
    }

    fn parameters(&self) -> usize {
        0
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        Some(&mut self.activation)
    }
}

/// Operand `k` of an Add; a constant one (a bias, an attention mask) is
/// clamped to the values that can still move the output: beyond
/// `[y_lo − x_hi, y_hi − x_lo]`, with `x` the other operand's range and `y`
/// the output's, every sum saturates. A mask of `−inf` (or `−1e9`) added
/// to attention scores so keeps the scores' resolution, where quantizing
/// its own range would leave them less than one step.
fn add_operand(
    cx: &LowerCtx,
    k: usize,
) -> Result<(crate::quantize::Operand, QParams), ConvertError> {
    let other = cx.input(1 - k)?;
    let range = |t: usize| -> Option<(f32, f32)> {
        let q = cx.qparams.get(t).copied().flatten()?;
        Some(q.represented(cx.graph.wide.contains(&t)))
    };
    let within = match (range(other), range(cx.node.output)) {
        (Some((x_lo, x_hi)), Some((y_lo, y_hi))) => (y_lo - x_hi, y_hi - x_lo),
        _ => (f32::NEG_INFINITY, f32::INFINITY),
    };
    cx.operand_within(k, within)
}

/// Add's words (Sub's too): both operands are brought to twice the larger
/// input scale with [`MAX_ADD_LEFT_SHIFT`] fractional bits (15 when an
/// operand is int16, whose values already carry 8 more bits), combined,
/// and requantized to the output, clamped by `activation`.
pub(super) fn add_words(
    cx: &LowerCtx,
    (aq, bq): (QParams, QParams),
    activation: FusedActivation,
) -> Result<Vec<i32>, ConvertError> {
    use params::add as w;
    let y = cx.output_q()?;
    let twice_max = 2.0 * (aq.scale as f64).max(bq.scale as f64);
    let wide_operand = cx.node.inputs.iter().any(|t| cx.graph.wide.contains(t));
    let left_shift = match wide_operand {
        true => MAX_ADD_LEFT_SHIFT_S16,
        false => MAX_ADD_LEFT_SHIFT,
    };
    let headroom = (1i64 << left_shift) as f64;
    let mut p = vec![0; w::COUNT];
    p[w::LEFT_SHIFT] = left_shift;
    (p[w::A_MULTIPLIER], p[w::A_SHIFT]) =
        cx.multiplier(aq.scale as f64 / twice_max, "first input")?;
    (p[w::B_MULTIPLIER], p[w::B_SHIFT]) =
        cx.multiplier(bq.scale as f64 / twice_max, "second input")?;
    (p[w::OUT_MULTIPLIER], p[w::OUT_SHIFT]) =
        cx.multiplier(twice_max / (headroom * y.scale as f64), "output")?;
    (p[w::ACT_MIN], p[w::ACT_MAX]) = cx.clamp(activation)?;
    Ok(p)
}

impl IrOp for Mul {
    fn kind(&self) -> &'static str {
        "Mul"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        broadcast_eval(cx, |a, b| self.activation.apply(a * b))
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(self.activation)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        use params::mul as w;
        let ((a, aq), (b, bq)) = (cx.operand(0)?, cx.operand(1)?);
        let y = cx.output_q()?;
        let real = aq.scale as f64 * bq.scale as f64 / y.scale as f64;
        let (om, osh) = cx.multiplier(real, "output")?;
        let (act_min, act_max) = cx.clamp(self.activation)?;
        let mut p = [0; w::COUNT];
        p[w::OUT_MULTIPLIER] = om;
        p[w::OUT_SHIFT] = osh;
        p[w::ACT_MIN] = act_min;
        p[w::ACT_MAX] = act_max;
        Ok(Lowered {
            opcode: OpCode::Mul,
            inputs: vec![a, b],
            params: p.to_vec(),
        })
    }

    fn macs(&self, _: &Graph, _: &Node) -> u64 {
        0
    }

    fn parameters(&self) -> usize {
        0
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        Some(&mut self.activation)
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::Op;
    use crate::ops::testing::{assert_conforms, floats, node_of, one_node, weights};

    #[test]
    fn trilu_of_a_computed_tensor_is_a_product_by_its_mask() {
        use crate::ops::testing::{attr_i, int64s};
        // Upper from diagonal 1 of [1, 6, 6]; lower to diagonal −1 of the
        // last two dims of [1, 2, 5, 4].
        for (shape, upper, k) in [(&[1, 6, 6][..], 1, 1), (&[1, 2, 5, 4], 0, -1)] {
            let model = one_node(
                "Trilu",
                shape,
                &["k"],
                vec![attr_i("upper", upper)],
                vec![int64s("k", &[], &[k])],
            );
            let g = assert_conforms("Trilu", &model, 35.0);
            assert!(matches!(g.nodes[0].op, Op::Mul(_)), "{:?}", g.nodes[0].op);
        }
    }

    /// `op(x, sigmoid(x), tanh(x), c)` on `[1, 4, 5]` with `c` a `[1, 1, 5]`
    /// constant: three computed operands and a broadcast constant.
    fn variadic(op: &str) -> tract_onnx::pb::ModelProto {
        use tract_onnx::pb::NodeProto;
        let c = floats("c", &[1, 1, 5], &[0.5, -0.25, 1.0, 0.0, -1.5]);
        let mut model = node_of(op, &[1, 4, 5], &["x", "a", "b", "c"], vec![], vec![c]);
        let graph = model.graph.as_mut().expect("a graph");
        for (f, out) in [("Sigmoid", "a"), ("Tanh", "b")] {
            graph.node.insert(
                0,
                NodeProto {
                    name: format!("the_{f}"),
                    op_type: f.into(),
                    input: vec!["x".into()],
                    output: vec![out.into()],
                    ..Default::default()
                },
            );
        }
        model
    }

    #[test]
    fn variadic_sum_mean_max_min_run_as_chains() {
        // Four inputs: three steps of the two-operand op, Mean's Mul after.
        for (op, kind, steps, muls) in [
            ("Sum", "Add", 3, 0),
            ("Mean", "Add", 3, 1),
            ("Max", "Max", 3, 0),
            ("Min", "Min", 3, 0),
        ] {
            let g = assert_conforms(op, &variadic(op), 30.0);
            let count = |k: &str| g.nodes.iter().filter(|n| n.op.kind() == k).count();
            assert_eq!(count(kind), steps, "{op}");
            assert_eq!(count("Mul"), muls, "{op}");
            assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 4, 5], "{op}");
        }
    }

    #[test]
    fn a_variadic_node_of_one_input_is_that_input() {
        for op in ["Sum", "Mean", "Max", "Min"] {
            let g = assert_conforms(op, &one_node(op, &[1, 3, 4], &[], vec![], vec![]), 40.0);
            assert!(g.nodes.iter().all(|n| n.op.kind() == "Reshape"), "{op}");
        }
    }

    #[test]
    fn arithmetic_with_a_constant_runs_in_int8() {
        for (op, ir) in [
            ("Add", "Add"),
            ("Sub", "Add"),
            ("Mul", "Mul"),
            ("Div", "Mul"),
        ] {
            // A per-channel constant, broadcast over the last axis.
            let model = one_node(
                op,
                &[1, 4, 6],
                &["c"],
                vec![],
                vec![weights("c", &[4, 1], 1)],
            );
            let g = assert_conforms(op, &model, 30.0);
            assert!(matches!(g.nodes[..], [ref n] if n.op.kind() == ir), "{op}");
        }
        let squared = one_node("Mul", &[1, 8], &["x"], vec![], vec![]);
        let g = assert_conforms("x · x", &squared, 30.0);
        assert!(matches!(g.nodes[0].op, Op::Mul(_)));
    }
}
