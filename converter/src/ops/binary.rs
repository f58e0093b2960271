//! Sub, Div, Min and Max where Add and Mul do not do: two computed tensors,
//! or a constant minus / divided by a computed tensor. numpy broadcasting;
//! each runs as its own `.mq` op (`NUMERICS.md` § The math ops).

use medq::format::layout::{params, OpCode};
use medq::kernels::DIV_FRACTION_BITS;

use super::onnx::{input, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op, TensorId};
use crate::load::node::NodeCtx;
use crate::load::shape::{broadcast, broadcast_indices};
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Sub,
    Div,
    Min,
    Max,
}

#[derive(Clone, Debug)]
pub struct Binary {
    pub op: BinaryOp,
}

impl BinaryOp {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Sub => a - b,
            BinaryOp::Div => a / b,
            BinaryOp::Min => a.min(b),
            BinaryOp::Max => a.max(b),
        }
    }
}

/// Emits `a op b` for operands Add/Mul cannot take; the operands in order.
pub(crate) fn emit(
    b: &mut Builder,
    ctx: &NodeCtx,
    op: BinaryOp,
    operands: [TensorId; 2],
    out: Vec<usize>,
) -> Result<Value, ConvertError> {
    b.emit(ctx, Op::Binary(Binary { op }), operands.to_vec(), out)
}

/// ONNX `Min` / `Max` of one or more tensors (any may be a constant, one
/// must be computed), numpy broadcasting: a chain of two-operand ops.
pub(crate) fn min_max(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    op: BinaryOp,
) -> Result<Value, ConvertError> {
    let op = || Op::Binary(Binary { op });
    match chain(b, ctx, ins, op)? {
        Chain::One(x, shape) => b.emit(ctx, Op::Reshape, vec![x], shape),
        Chain::Last([acc, x], shape) => b.emit(ctx, op(), vec![acc, x], shape),
    }
}

/// A variadic node's inputs folded by a two-operand op, all but the last
/// step emitted ([`chain`]).
pub(crate) enum Chain {
    /// A single (computed) input, and its shape.
    One(TensorId, Vec<usize>),
    /// The operands of the last step, and its output shape.
    Last([TensorId; 2], Vec<usize>),
}

/// `op(… op(op(x_a, x_b), x_c) …)` over the inputs of a variadic node (Sum,
/// Mean, Min, Max), from its first computed input on, broadcasting at each
/// step: every step but the last is emitted as a part of the node (with its
/// own calibrated range), and the last one's operands are returned for the
/// caller to finish.
pub(crate) fn chain(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    op: impl Fn() -> Op,
) -> Result<Chain, ConvertError> {
    let mut operands = (0..ins.len())
        .map(|k| input(ctx, ins, k))
        .collect::<Result<Vec<_>, _>>()?;
    let first = operands
        .iter()
        .position(|x| matches!(x.value, Value::Act(_)))
        .ok_or_else(|| ctx.err("every input is a constant"))?;
    operands.swap(0, first);
    let mut acc = None;
    let mut shape = b.shape_of(&operands[0].value);
    for (k, x) in operands.iter().enumerate() {
        let id = match &x.value {
            Value::Act(t) => *t,
            Value::Const(c) => b.const_tensor(x.name, c)?,
            Value::Unavailable(why) => return Err(ctx.err(format!("input {k} is {why}"))),
        };
        let xs = b.shape_of(&x.value);
        shape = broadcast(&shape, &xs)
            .ok_or_else(|| ctx.err(format!("shapes {shape:?} and {xs:?} do not broadcast")))?;
        acc = Some(match acc {
            None => id,
            Some(acc) if k + 1 == operands.len() => return Ok(Chain::Last([acc, id], shape)),
            Some(acc) => {
                b.emit_part(ctx, &format!("step{k}"), op(), vec![acc, id], shape.clone())?
            }
        });
    }
    let only = acc.ok_or_else(|| ctx.err("has no inputs"))?;
    Ok(Chain::One(only, shape))
}

impl IrOp for Binary {
    fn kind(&self) -> &'static str {
        match self.op {
            BinaryOp::Sub => "Sub",
            BinaryOp::Div => "Div",
            BinaryOp::Min => "Min",
            BinaryOp::Max => "Max",
        }
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let ((a, sa), (b, sb)) = (cx.input(0)?, cx.input(1)?);
        let out = cx.output_shape;
        let (ia, ib) = (broadcast_indices(sa, out), broadcast_indices(sb, out));
        Ok(ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| self.op.apply(a[i], b[j]))
            .collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let ((a, aq), (b, bq)) = (cx.operand(0)?, cx.operand(1)?);
        let y = cx.output_q()?;
        let (sa, sb, sy) = (aq.scale as f64, bq.scale as f64, y.scale as f64);
        // The output's window: int8, or int16 when raised.
        let window = cx.clamp(FusedActivation::None)?;
        let (opcode, p) = match self.op {
            // Add's scheme, the rescaled `b` subtracted.
            BinaryOp::Sub => (
                OpCode::Sub,
                super::elementwise::add_words(cx, (aq, bq), FusedActivation::None)?,
            ),
            BinaryOp::Div => {
                use params::mul as w;
                let q = (1u64 << DIV_FRACTION_BITS) as f64;
                let mut p = vec![0; w::COUNT];
                (p[w::OUT_MULTIPLIER], p[w::OUT_SHIFT]) =
                    cx.multiplier(sa / (sb * q * sy), "output")?;
                (p[w::ACT_MIN], p[w::ACT_MAX]) = window;
                (OpCode::Div, p)
            }
            BinaryOp::Min | BinaryOp::Max => {
                use params::min_max as w;
                let mut p = vec![0; w::COUNT];
                (p[w::A_MULTIPLIER], p[w::A_SHIFT]) = cx.multiplier(sa / sy, "first input")?;
                (p[w::B_MULTIPLIER], p[w::B_SHIFT]) = cx.multiplier(sb / sy, "second input")?;
                (p[w::ACT_MIN], p[w::ACT_MAX]) = window;
                let opcode = if self.op == BinaryOp::Min {
                    OpCode::Min
                } else {
                    OpCode::Max
                };
                (opcode, p)
            }
        };
        Ok(Lowered {
            opcode,
            inputs: vec![a, b],
            params: p,
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
    use crate::ops::testing::{assert_conforms, floats, one_node, weights};
    use tract_onnx::pb::{GraphProto, NodeProto};

    /// `y = op(x, 1 + sigmoid(x·W))`: both operands computed, the divisor
    /// in (1, 2).
    fn two_computed(op: &str) -> tract_onnx::pb::ModelProto {
        let inits = vec![weights("w", &[6, 6], 5), floats("one", &[], &[1.0])];
        let mut model = one_node("MatMul", &[1, 4, 6], &["w"], vec![], inits);
        let g: &mut GraphProto = model.graph.as_mut().unwrap();
        g.node[0].output = vec!["m".into()];
        let mut node = |name: &str, op: &str, ins: &[&str], out: &str| {
            g.node.push(NodeProto {
                name: name.into(),
                op_type: op.into(),
                input: ins.iter().map(|s| s.to_string()).collect(),
                output: vec![out.into()],
                ..Default::default()
            })
        };
        node("sig", "Sigmoid", &["m"], "s");
        node("plus", "Add", &["s", "one"], "t");
        node(&format!("the_{op}"), op, &["x", "t"], "y");
        model
    }

    #[test]
    fn two_computed_operands_run_in_int8() {
        for op in ["Sub", "Div", "Min", "Max"] {
            let g = assert_conforms(op, &two_computed(op), 30.0);
            assert_eq!(g.nodes.last().unwrap().op.kind(), op);
        }
    }

    #[test]
    fn a_constant_first_operand_runs_in_int8() {
        for op in ["Sub", "Min", "Max"] {
            let mut model = one_node(op, &[1, 4, 6], &["c"], vec![], vec![weights("c", &[6], 2)]);
            // c − x: the constant first.
            let n = &mut model.graph.as_mut().unwrap().node[0];
            n.input.swap(0, 1);
            assert_conforms(op, &model, 30.0);
        }
    }
}
