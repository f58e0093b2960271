//! MatMul where FullyConnected does not do: two computed tensors (attention's
//! `Q·Kᵀ` and `scores·V`, attention pooling), or a constant on the left.
//! Batch dims broadcast as numpy does; a 1-D operand is a row (left) or a
//! column (right) vector, its dim dropped from the output as ONNX says.

use medq::format::layout::{params::mat_mul as w, OpCode};
use medq::kernels::MAX_MAT_MUL_DEPTH;

use super::onnx::{input, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op, TensorId};
use crate::load::node::NodeCtx;
use crate::load::shape::{broadcast, broadcast_indices};
use crate::load::{Builder, Input, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `y = alpha · (a · b)` over the last two dims, per broadcast batch index.
#[derive(Clone, Debug)]
pub struct MatMul {
    /// A positive factor a rewrite folds in (attention's `1/√d`): it goes
    /// into the requantization multiplier, at no cost.
    pub alpha: f32,
    pub activation: FusedActivation,
}

/// ONNX `MatMul` whose right operand is computed, or whose left one is a
/// constant (`fully_connected::matmul` takes a constant right operand).
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, y) = (input(ctx, ins, 0)?, input(ctx, ins, 1)?);
    let (sa, sb) = (b.shape_of(&x.value), b.shape_of(&y.value));
    // ONNX's vector rules: [K] on the left is [1, K], [K] on the right is
    // [K, 1]; the added dim is not in the output.
    let (ma, mb) = (
        if sa.len() == 1 {
            vec![1, sa[0]]
        } else {
            sa.clone()
        },
        if sb.len() == 1 {
            vec![sb[0], 1]
        } else {
            sb.clone()
        },
    );
    if ma.len() < 2 || mb.len() < 2 {
        return Err(ctx.err(format!("MatMul of a scalar: shapes {sa:?} and {sb:?}")));
    }
    let (m, k) = (ma[ma.len() - 2], ma[ma.len() - 1]);
    let (kb, n) = (mb[mb.len() - 2], mb[mb.len() - 1]);
    if k != kb {
        return Err(ctx.err(format!(
            "shapes {sa:?} and {sb:?} do not multiply: {k} columns against {kb} rows"
        )));
    }
    if k > MAX_MAT_MUL_DEPTH {
        return Err(ctx.err(format!(
            "a product over {k} terms: medq's int8 MatMul sums at most {MAX_MAT_MUL_DEPTH} \
             (an exact i32 sum)"
        )));
    }
    let batch = broadcast(&ma[..ma.len() - 2], &mb[..mb.len() - 2]).ok_or_else(|| {
        ctx.err(format!(
            "the batch dims of {sa:?} and {sb:?} do not broadcast"
        ))
    })?;
    let mut out = batch;
    out.extend([m, n]);
    let ia = operand(b, ctx, x, "a", ma)?;
    let ib = operand(b, ctx, y, "b", mb)?;
    let op = Op::MatMul(MatMul {
        alpha: 1.0,
        activation: FusedActivation::None,
    });
    let mut onnx_out = out.clone();
    if sb.len() == 1 {
        onnx_out.remove(onnx_out.len() - 1);
    }
    if sa.len() == 1 {
        onnx_out.remove(onnx_out.len() - if sb.len() == 1 { 1 } else { 2 });
    }
    if onnx_out == out {
        return b.emit(ctx, op, vec![ia, ib], out);
    }
    let product = b.emit_part(ctx, "product", op, vec![ia, ib], out)?;
    b.emit(ctx, Op::Reshape, vec![product], onnx_out)
}

/// Operand `x` as a tensor of shape `shape` (its own, or with a vector's
/// added dim): constants become IR constants, a reshaped activation a view.
fn operand(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: &Input,
    part: &str,
    shape: Vec<usize>,
) -> Result<TensorId, ConvertError> {
    match &x.value {
        Value::Const(c) if c.shape == shape => b.const_tensor(x.name, c),
        Value::Const(c) => b.const_tensor(&format!("{}/{part}", x.name), &c.with_shape(shape)),
        Value::Act(id) if b.shape_of(&x.value) == shape => Ok(*id),
        Value::Act(id) => b.emit_part(ctx, part, Op::Reshape, vec![*id], shape),
        Value::Unavailable(why) => Err(ctx.err(format!("input {} is {why}", x.name))),
    }
}

impl IrOp for MatMul {
    fn kind(&self) -> &'static str {
        "MatMul"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let ((a, sa), (b, sb)) = (cx.input(0)?, cx.input(1)?);
        let split = |s: &[usize]| match *s {
            [ref batch @ .., r, c] => Ok((batch.to_vec(), r, c)),
            _ => Err(cx.err("MatMul operands need rank at least 2")),
        };
        let ((ba, m, k), (bb, _, n)) = (split(sa)?, split(sb)?);
        let out_batch = &cx.output_shape[..cx.output_shape.len().saturating_sub(2)];
        let (ia, ib) = (
            broadcast_indices(&ba, out_batch),
            broadcast_indices(&bb, out_batch),
        );
        let mut out = Vec::with_capacity(ia.len() * m * n);
        for (&i, &j) in ia.iter().zip(&ib) {
            let (am, bm) = (
                &a[i * m * k..(i + 1) * m * k],
                &b[j * k * n..(j + 1) * k * n],
            );
            for row in am.chunks_exact(k.max(1)) {
                for c in 0..n {
                    let acc: f32 = row
                        .iter()
                        .enumerate()
                        .map(|(t, &v)| v * bm[t * n + c])
                        .sum();
                    out.push(self.activation.apply(self.alpha * acc));
                }
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(self.activation)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let ((a, aq), (b, bq)) = (cx.operand(0)?, cx.operand(1)?);
        let y = cx.output_q()?;
        let real = self.alpha as f64 * aq.scale as f64 * bq.scale as f64 / y.scale as f64;
        let mut p = [0; w::COUNT];
        (p[w::OUT_MULTIPLIER], p[w::OUT_SHIFT]) = cx.multiplier(real, "output")?;
        (p[w::ACT_MIN], p[w::ACT_MAX]) = cx.clamp(self.activation)?;
        Ok(Lowered {
            opcode: OpCode::MatMul,
            inputs: vec![a, b],
            params: p.to_vec(),
        })
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        let out: usize = graph.tensors[node.output].shape.iter().product();
        let k = node
            .inputs
            .first()
            .and_then(|&a| graph.tensors[a].shape.last().copied())
            .unwrap_or(0);
        (out * k) as u64
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
    use crate::ops::testing::{assert_conforms, node_of, weights};

    fn has_mat_mul(g: &crate::ir::Graph) -> bool {
        g.nodes.iter().any(|n| matches!(n.op, Op::MatMul(_)))
    }

    #[test]
    fn two_computed_operands_run_in_int8() {
        // x·x of one input: both operands computed, batched over 2.
        let model = node_of("MatMul", &[1, 2, 5, 5], &["x", "x"], vec![], vec![]);
        let g = assert_conforms("MatMul x·x", &model, 30.0);
        assert!(has_mat_mul(&g));
    }

    #[test]
    fn a_constant_on_the_left_broadcasts_over_the_batch() {
        let model = node_of(
            "MatMul",
            &[1, 3, 6, 4],
            &["w", "x"],
            vec![],
            vec![weights("w", &[5, 6], 11)],
        );
        let g = assert_conforms("MatMul w·x", &model, 30.0);
        assert!(has_mat_mul(&g));
    }

    #[test]
    fn vector_operands_drop_their_dim() {
        // [1, 3, 4]·[4] = [1, 3], and [4]·[1, 4, 3] = [1, 3].
        let right = node_of(
            "MatMul",
            &[1, 3, 4],
            &["x", "v"],
            vec![],
            vec![weights("v", &[4], 12)],
        );
        let g = assert_conforms("MatMul x·v", &right, 30.0);
        assert_eq!(g.tensors[g.outputs[0]].shape, [1, 3]);
        let left = node_of(
            "MatMul",
            &[1, 4, 3],
            &["v", "x"],
            vec![],
            vec![weights("v", &[4], 13)],
        );
        let g = assert_conforms("MatMul v·x", &left, 30.0);
        assert_eq!(g.tensors[g.outputs[0]].shape, [1, 3]);
    }

    #[test]
    fn operands_that_do_not_multiply_are_refused_by_name() {
        let model = node_of(
            "MatMul",
            &[1, 3, 4],
            &["w", "x"],
            vec![],
            vec![weights("w", &[2, 5], 14)],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(
            err.contains("the_MatMul") && err.contains("do not multiply"),
            "{err}"
        );
    }
}
