//! FullyConnected: `y = x · Wᵀ + b` over the last axis (ONNX Gemm, and
//! MatMul with constant weights on the right).

use medq::format::layout::{params::fully_connected as w, OpCode};

use super::onnx::{act, input, konst, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::shape::{broadcast, broadcast_indices};
use crate::load::tensor::Const;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `weights` is `[N, K]`; `bias` has `N` entries.
#[derive(Clone, Debug)]
pub struct FullyConnected {
    pub weights: Array,
    pub bias: Vec<f32>,
    pub activation: FusedActivation,
}

/// `[K, N]` row-major → `[N, K]`, scaled.
pub(crate) fn transpose_2d(data: &[f32], k: usize, n: usize, scale: f32) -> Vec<f32> {
    let mut t = vec![0.0; k * n];
    for (i, row) in data.chunks_exact(n).enumerate().take(k) {
        for (j, &v) in row.iter().enumerate() {
            t[j * k + i] = v * scale;
        }
    }
    t
}

/// ONNX `Gemm`: `alpha · A · B + beta · C` with a constant `B` and `C`; a
/// transposed `A` (`transA`) is moved into rows first, and a `C` that
/// differs per row is an Add after the product.
pub(crate) fn gemm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (a, shape_a) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "weights (B)")?;
    let c = opt_konst(ctx, ins, 2, "bias (C)")?;
    let (alpha, beta) = (ctx.float("alpha", 1.0)?, ctx.float("beta", 1.0)?);
    let trans_b = ctx.int("transB", 0)? != 0;
    let trans_a = ctx.int("transA", 0)? != 0;
    let [m, k_in] = match (&shape_a[..], trans_a) {
        (&[m, k], false) | (&[k, m], true) => [m, k],
        _ => {
            return Err(ctx.err(format!("Gemm needs a 2-D input, found shape {shape_a:?}")));
        }
    };
    let a = match trans_a {
        true => super::transpose::permute(b, ctx, "rows", a, &shape_a, &[1, 0])?,
        false => a,
    };
    let [w0, w1] = w.shape[..] else {
        return Err(ctx.err(format!("B must be 2-D, found shape {:?}", w.shape)));
    };
    let (k, n) = if trans_b { (w1, w0) } else { (w0, w1) };
    if k != k_in {
        return Err(ctx.err(format!(
            "input {shape_a:?} does not fit B {:?} (transA={}, transB={})",
            w.shape,
            u8::from(trans_a),
            u8::from(trans_b)
        )));
    }
    let wf = w.to_f32();
    let weights = if trans_b {
        wf.iter().map(|&v| v * alpha).collect()
    } else {
        transpose_2d(&wf, k, n, alpha)
    };
    // A C the same for every row is the bias; one that differs per row
    // (`[M, N]`, `[M, 1]`) is added to the product after it.
    let mut per_row = None;
    let bias = match c {
        None => vec![0.0; n],
        Some(c) if matches!(c.shape[..], [rows, _] if rows > 1) => {
            if broadcast(&c.shape, &[m, n]).as_deref() != Some(&[m, n][..]) {
                return Err(ctx.err(format!(
                    "C of shape {:?} does not broadcast to [{m}, {n}]",
                    c.shape
                )));
            }
            let scaled = c.to_f32().iter().map(|v| v * beta).collect();
            per_row = Some(Const::f32(c.shape.clone(), scaled));
            vec![0.0; n]
        }
        Some(c) => {
            // The same for every row: [N], [1, N], [1] or scalar.
            let row_shape: Vec<usize> = match c.shape[..] {
                [1, cn] => vec![cn],
                _ => c.shape.clone(),
            };
            if broadcast(&row_shape, &[n]).as_deref() != Some(&[n][..]) {
                return Err(ctx.err(format!(
                    "C of shape {:?} does not broadcast to [{n}]",
                    c.shape
                )));
            }
            let cf = c.to_f32();
            broadcast_indices(&row_shape, &[n])
                .into_iter()
                .map(|i| cf.get(i).copied().unwrap_or(0.0) * beta)
                .collect()
        }
    };
    let op = Op::FullyConnected(FullyConnected {
        weights: Array::new(vec![n, k], weights),
        bias,
        activation: FusedActivation::None,
    });
    let Some(c) = per_row else {
        return b.emit(ctx, op, vec![a], vec![m, n]);
    };
    let product = b.emit_part(ctx, "product", op, vec![a], vec![m, n])?;
    let c = b.const_tensor(&format!("{}/C", ctx.name), &c)?;
    let add = Op::Add(super::elementwise::Add {
        activation: FusedActivation::None,
    });
    b.emit(ctx, add, vec![product, c], vec![m, n])
}

/// ONNX `MatMul` of a computed tensor by constant weights; any other
/// MatMul (two computed tensors, a constant on the left, batched or 1-D
/// constants) runs as [`MatMul`](super::mat_mul).
pub(crate) fn matmul(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, w) = (input(ctx, ins, 0)?, input(ctx, ins, 1)?);
    let rank = b.shape_of(&x.value).len();
    let weights_on_the_right = matches!(&x.value, Value::Act(_))
        && matches!(&w.value, Value::Const(c)
            if (2..=rank).contains(&c.shape.len())
                && c.shape[..c.shape.len() - 2].iter().all(|&d| d == 1));
    if !weights_on_the_right {
        return super::mat_mul::from_onnx(b, ctx, ins);
    }
    let (a, sa) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "weights (right operand)")?;
    // Checked above: 2 ≤ r ≤ rank, leading dims 1.
    let r = w.shape.len();
    let (k, n) = (w.shape[r - 2], w.shape[r - 1]);
    if sa.last() != Some(&k) {
        return Err(ctx.err(format!("input {sa:?} does not fit weights {:?}", w.shape)));
    }
    let mut out = sa[..sa.len() - 1].to_vec();
    out.push(n);
    let op = Op::FullyConnected(FullyConnected {
        weights: Array::new(vec![n, k], transpose_2d(&w.to_f32(), k, n, 1.0)),
        bias: vec![0.0; n],
        activation: FusedActivation::None,
    });
    b.emit(ctx, op, vec![a], out)
}

/// The longest axis [`cumsum`] takes: 4096² = 16 M weights.
const MAX_CUMSUM_LEN: usize = 4096;

/// ONNX `CumSum` of a computed tensor (running sums, e.g. integrating a
/// signal): a product by a constant triangular matrix of ones, which int8
/// holds exactly. Along the last axis a FullyConnected; along another, a
/// MatMul with the matrix on the left, between views `[outer, L, inner]`.
/// `exclusive` and `reverse` shape the triangle.
pub(crate) fn cumsum(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let axis_input = konst(ctx, ins, 1, "axis")?;
    let axis = crate::load::fold::ints(ctx, &axis_input, "axis")?;
    let [a] = axis[..] else {
        return Err(ctx.err("the axis must be a scalar"));
    };
    let r = xs.len();
    let axis = crate::load::node::norm_axis(a, r)
        .ok_or_else(|| ctx.err(format!("axis {a} is out of range for rank {r}")))?;
    let (exclusive, reverse) = (ctx.int("exclusive", 0)? != 0, ctx.int("reverse", 0)? != 0);
    let l = xs[axis];
    if l > MAX_CUMSUM_LEN {
        return Err(ctx.err(format!(
            "a running sum over {l} values: medq's triangular product takes at most \
             {MAX_CUMSUM_LEN} (its matrix has L² weights)"
        )));
    }
    // Output n sums inputs k of the triangle.
    let sums = |n: usize, k: usize| match (reverse, exclusive) {
        (false, false) => k <= n,
        (false, true) => k < n,
        (true, false) => k >= n,
        (true, true) => k > n,
    };
    let triangle = |n: usize, k: usize| f32::from(u8::from(sums(n, k)));
    if axis == r - 1 {
        let weights = (0..l * l).map(|i| triangle(i / l, i % l)).collect();
        let op = Op::FullyConnected(FullyConnected {
            weights: Array::new(vec![l, l], weights),
            bias: vec![0.0; l],
            activation: FusedActivation::None,
        });
        return b.emit(ctx, op, vec![x], xs);
    }
    let (outer, inner) = (xs[..axis].iter().product(), xs[axis + 1..].iter().product());
    let lhs: Vec<f32> = (0..l * l).map(|i| triangle(i / l, i % l)).collect();
    let lhs = b.const_tensor(
        &format!("{}/triangle", ctx.name),
        &crate::load::tensor::Const::f32(vec![l, l], lhs),
    )?;
    let view = vec![outer, l, inner];
    let v = b.emit_part(ctx, "rows", Op::Reshape, vec![x], view.clone())?;
    let product = Op::MatMul(super::mat_mul::MatMul {
        alpha: 1.0,
        activation: FusedActivation::None,
    });
    let y = b.emit_part(ctx, "sums", product, vec![lhs, v], view)?;
    b.emit(ctx, Op::Reshape, vec![y], xs)
}

impl IrOp for FullyConnected {
    fn kind(&self) -> &'static str {
        "FullyConnected"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, _) = cx.input(0)?;
        let [n, k] = self.weights.shape[..] else {
            return Err(cx.err("weights are not [N, K]"));
        };
        let mut out = Vec::with_capacity(x.len() / k.max(1) * n);
        for row in x.chunks_exact(k.max(1)) {
            for (weights, &b) in self.weights.data.chunks_exact(k.max(1)).zip(&self.bias) {
                let acc = b + row.iter().zip(weights).map(|(a, w)| a * w).sum::<f32>();
                out.push(self.activation.apply(acc));
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(self.activation)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let mut inputs = vec![x];
        inputs.extend(cx.weighted_operands(xq, &self.weights, &self.bias)?);
        let (act_min, act_max) = cx.clamp(self.activation)?;
        let mut p = [0; w::COUNT];
        p[w::ACT_MIN] = act_min;
        p[w::ACT_MAX] = act_max;
        Ok(Lowered {
            opcode: OpCode::FullyConnected,
            inputs,
            params: p.to_vec(),
        })
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        let out: usize = graph.tensors[node.output].shape.iter().product();
        let k = self.weights.shape.get(1).copied().unwrap_or(0);
        (out * k) as u64
    }

    fn parameters(&self) -> usize {
        self.weights.len() + self.bias.len()
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        Some(&mut self.activation)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, one_node, weights};

    #[test]
    fn cumsum_runs_as_a_triangular_product() {
        use crate::ops::testing::{attr_i, int64s};
        for (axis, exclusive, reverse, kind) in [
            (-1, 0, 0, "FullyConnected"),
            (2, 1, 0, "FullyConnected"),
            (1, 0, 1, "MatMul"),
            (1, 1, 1, "MatMul"),
        ] {
            let model = one_node(
                "CumSum",
                &[1, 4, 6],
                &["axis"],
                vec![attr_i("exclusive", exclusive), attr_i("reverse", reverse)],
                vec![int64s("axis", &[], &[axis])],
            );
            let g = assert_conforms("CumSum", &model, 30.0);
            assert!(g.nodes.iter().any(|n| n.op.kind() == kind), "axis {axis}");
        }
    }

    #[test]
    fn gemm_and_matmul_run_in_int8() {
        let gemm = one_node(
            "Gemm",
            &[1, 8],
            &["w", "c"],
            vec![attr_i("transB", 1)],
            vec![weights("w", &[5, 8], 1), weights("c", &[5], 2)],
        );
        assert_conforms("Gemm transB", &gemm, 30.0);
        let matmul = one_node(
            "MatMul",
            &[1, 5, 8],
            &["w"],
            vec![],
            vec![weights("w", &[8, 3], 3)],
        );
        assert_conforms("MatMul", &matmul, 30.0);
    }
}
