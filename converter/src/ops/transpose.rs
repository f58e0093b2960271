//! Transpose of a computed tensor that reorders its data (up to 4-D; e.g.
//! the NHWC → NCHW Transpose at the input of TensorFlow-converted models).
//! Permutations that move only size-1 axes stay views (`reshape.rs`).

use medq::format::layout::{params::transpose as w, OpCode};

use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op, TensorId};
use crate::load::node::NodeCtx;
use crate::load::shape::strides;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// Output dim `d` is input dim `perm[d]`.
#[derive(Clone, Debug)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

/// The Transpose node for `x` of shape `in_shape`, permuted by `perm`
/// (already checked to be a permutation of its dims). Above 4 dims, the
/// same data movement in fewer dims: size-1 axes dropped and input axes that
/// stay adjacent merged (PyTorch's multi-head attention moves a rank-5
/// `[1, T, 1, 3, E]` to `[3, T, 1, 1, E]`, a rank-2 transpose of
/// `[T, 3·E]`), between two views.
pub(crate) fn emit(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: TensorId,
    in_shape: &[usize],
    perm: Vec<usize>,
) -> Result<Value, ConvertError> {
    let out: Vec<usize> = perm.iter().map(|&a| in_shape[a]).collect();
    if in_shape.len() <= 4 {
        return b.emit(ctx, Op::Transpose(Transpose { perm }), vec![x], out);
    }
    let t = permute(b, ctx, "transposed", x, in_shape, &perm)?;
    b.emit(ctx, Op::Reshape, vec![t], out)
}

/// `x` (of `shape`) permuted by `perm`, as parts of the node `ctx` lowers
/// (named `<part>/…`): nothing for the identity, a view when only size-1
/// axes move, else a Transpose in the fewest dims between views.
pub(crate) fn permute(
    b: &mut Builder,
    ctx: &NodeCtx,
    part: &str,
    x: TensorId,
    shape: &[usize],
    perm: &[usize],
) -> Result<TensorId, ConvertError> {
    let out: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    if perm.iter().enumerate().all(|(i, &a)| i == a) {
        return Ok(x);
    }
    let (fewer_shape, fewer) = simplify(shape, perm);
    if fewer.iter().enumerate().all(|(i, &a)| i == a) {
        return b.emit_part(ctx, part, Op::Reshape, vec![x], out);
    }
    if fewer_shape.len() > 4 {
        return Err(ctx.attr_err(
            "perm",
            format!(
                "{perm:?} reorders the data of a rank-{} tensor {shape:?} in {} dims; medq \
                 transposes up to 4 dims",
                shape.len(),
                fewer_shape.len()
            ),
        ));
    }
    let moved: Vec<usize> = fewer.iter().map(|&a| fewer_shape[a]).collect();
    let flat = b.emit_part(
        ctx,
        &format!("{part}/in"),
        Op::Reshape,
        vec![x],
        fewer_shape,
    )?;
    let t = b.emit_part(
        ctx,
        &format!("{part}/transposed"),
        Op::Transpose(Transpose { perm: fewer }),
        vec![flat],
        moved,
    )?;
    b.emit_part(ctx, part, Op::Reshape, vec![t], out)
}

/// `(shape, perm)` moving the same data as `perm` on `shape`, in the fewest
/// dims: size-1 axes dropped, and runs of input axes that stay in order next
/// to each other in the output merged into one.
fn simplify(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // The output's non-1 axes, as input axes, cut into runs of consecutive
    // (non-1) input axes.
    let kept: Vec<usize> = perm.iter().copied().filter(|&a| shape[a] != 1).collect();
    let mut sorted = kept.clone();
    sorted.sort_unstable();
    let rank_in = |a: usize| sorted.iter().position(|&s| s == a).unwrap_or(0);
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for &a in &kept {
        match runs.last_mut() {
            Some(run) if run.last().map(|&l| rank_in(l) + 1) == Some(rank_in(a)) => run.push(a),
            _ => runs.push(vec![a]),
        }
    }
    // The merged input: the runs in input order.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_unstable_by_key(|&r| runs[r][0]);
    let merged = order
        .iter()
        .map(|&r| runs[r].iter().map(|&a| shape[a]).product())
        .collect();
    let mut perm = vec![0; runs.len()];
    for (position, &r) in order.iter().enumerate() {
        perm[r] = position;
    }
    (merged, perm)
}

impl IrOp for Transpose {
    fn kind(&self) -> &'static str {
        "Transpose"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, xs) = cx.input(0)?;
        let (ist, ost) = (strides(xs), strides(cx.output_shape));
        let n: usize = cx.output_shape.iter().product();
        Ok((0..n)
            .map(|flat| {
                let at: usize = self
                    .perm
                    .iter()
                    .enumerate()
                    .map(|(d, &a)| (flat / ost[d]) % cx.output_shape[d] * ist[a])
                    .sum();
                x[at]
            })
            .collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, _) = cx.activation(0)?;
        let mut p = vec![0; w::PERM + self.perm.len()];
        for (word, &a) in p[w::PERM..].iter_mut().zip(&self.perm) {
            *word = a as i32;
        }
        Ok(Lowered {
            opcode: OpCode::Transpose,
            inputs: vec![x],
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
    use crate::ir::Op;
    use crate::ops::testing::{assert_conforms, attr_ints, one_node};

    #[test]
    fn simplify_drops_unit_axes_and_merges_runs() {
        // PyTorch's packed q/k/v split: [1, T, 1, 3, E] → [3, T, 1, 1, E].
        assert_eq!(
            super::simplify(&[1, 32, 1, 3, 8], &[3, 1, 2, 0, 4]),
            (vec![32, 3, 8], vec![1, 0, 2])
        );
        // Adjacent axes that move together merge: [2, 3, 4, 5, 6] → [5, 6, 2, 3, 4].
        assert_eq!(
            super::simplify(&[2, 3, 4, 5, 6], &[3, 4, 0, 1, 2]),
            (vec![24, 30], vec![1, 0])
        );
    }

    #[test]
    fn a_rank_5_transpose_runs_in_fewer_dims() {
        let model = one_node(
            "Transpose",
            &[1, 6, 1, 3, 4],
            &[],
            vec![attr_ints("perm", &[3, 1, 2, 0, 4])],
            vec![],
        );
        let g = assert_conforms("rank-5 Transpose", &model, 40.0);
        assert_eq!(g.tensors[g.outputs[0]].shape, [3, 6, 1, 1, 4]);
        let transposes = g.nodes.iter().filter(|n| matches!(n.op, Op::Transpose(_)));
        assert_eq!(transposes.count(), 1);
    }

    #[test]
    fn transpose_runs_in_int8() {
        for (shape, perm) in [
            (&[1, 6, 5, 3][..], &[0, 3, 1, 2][..]),
            (&[1, 7, 4], &[0, 2, 1]),
            (&[1, 2, 3, 4], &[0, 2, 3, 1]),
        ] {
            let model = one_node(
                "Transpose",
                shape,
                &[],
                vec![attr_ints("perm", perm)],
                vec![],
            );
            let g = assert_conforms("Transpose", &model, 40.0);
            assert!(matches!(g.nodes[..], [ref n] if matches!(n.op, Op::Transpose(_))));
        }
    }
}
