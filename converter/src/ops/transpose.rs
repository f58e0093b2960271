//! Transpose of a computed tensor that reorders its data (the runtime's op
//! takes up to 4 dims; e.g. the NHWC → NCHW Transpose at the input of
//! TensorFlow-converted models). Permutations that move only size-1 axes
//! stay views (`reshape.rs`); larger ones run in fewer dims, and past 4 in
//! steps of at most 4 (pixel shuffles: DepthToSpace, SpaceToDepth).

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
        // Moved in steps of at most 4 dims: each step brings the next
        // output block into place past the blocks between, a transpose of
        // the view [before, between, block, after] (a pixel shuffle's
        // rank-6 permutation, a window partition's).
        let mut order: Vec<usize> = (0..fewer.len()).collect();
        let mut t = b.emit_part(
            ctx,
            &format!("{part}/in"),
            Op::Reshape,
            vec![x],
            fewer_shape.clone(),
        )?;
        for (k, &block) in fewer.iter().enumerate() {
            let Some(j) = order.iter().position(|&o| o == block) else {
                return Err(ctx.attr_err("perm", format!("{perm:?} is not a permutation")));
            };
            if j == k {
                continue;
            }
            let dims: Vec<usize> = order.iter().map(|&o| fewer_shape[o]).collect();
            let product = |r: std::ops::Range<usize>| dims[r].iter().product::<usize>();
            let view = [
                product(0..k),
                product(k..j),
                dims[j],
                product(j + 1..dims.len()),
            ];
            let step = format!("{part}/step{k}");
            t = permute(b, ctx, &step, t, &view, &[0, 2, 1, 3])?;
            order.remove(j);
            order.insert(k, block);
        }
        return b.emit_part(ctx, part, Op::Reshape, vec![t], out);
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

/// ONNX `DepthToSpace` (`nn.PixelShuffle`, mode CRD; DCR, the default,
/// as TensorFlow orders it) and `SpaceToDepth` (`nn.PixelUnshuffle`'s
/// TensorFlow twin) of a computed `[1, C, H, W]`: a view, a permutation
/// (in steps of at most 4 dims) and a view.
pub(crate) fn depth_space(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: super::onnx::Ins,
) -> Result<Value, ConvertError> {
    let (x, xs) = super::onnx::act(b, ctx, ins, 0)?;
    let [1, c, h, w] = xs[..] else {
        return Err(ctx.err(format!("input of shape {xs:?}: medq takes [1, C, H, W]")));
    };
    let k = usize::try_from(ctx.int("blocksize", 0)?)
        .ok()
        .filter(|&k| k >= 1)
        .ok_or_else(|| ctx.attr_err("blocksize", "must be at least 1"))?;
    let (view, perm, out) = if ctx.op == "DepthToSpace" {
        if c % (k * k) != 0 {
            return Err(ctx.err(format!("{c} channels do not split into blocks of {k}×{k}")));
        }
        let out = vec![1, c / (k * k), h * k, w * k];
        match ctx.string("mode")?.as_deref().unwrap_or("DCR") {
            "DCR" => (vec![1, k, k, c / (k * k), h, w], [0, 3, 4, 1, 5, 2], out),
            "CRD" => (vec![1, c / (k * k), k, k, h, w], [0, 1, 4, 2, 5, 3], out),
            other => {
                return Err(ctx.attr_err("mode", format!("\"{other}\": DCR or CRD")));
            }
        }
    } else {
        if h % k != 0 || w % k != 0 {
            return Err(ctx.err(format!("{h}×{w} does not split into blocks of {k}×{k}")));
        }
        (
            vec![1, c, h / k, k, w / k, k],
            [0, 3, 5, 1, 2, 4],
            vec![1, c * k * k, h / k, w / k],
        )
    };
    let blocks = b.emit_part(ctx, "blocks", Op::Reshape, vec![x], view.clone())?;
    let moved = permute(b, ctx, "moved", blocks, &view, &perm)?;
    b.emit(ctx, Op::Reshape, vec![moved], out)
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

    /// Every Transpose in `g` is one the runtime runs (at most 4 dims).
    fn assert_transposes_fit_the_runtime(g: &crate::ir::Graph) {
        for n in &g.nodes {
            if let Op::Transpose(t) = &n.op {
                assert!(t.perm.len() <= 4, "{:?}", t.perm);
            }
        }
    }

    #[test]
    fn rank_6_permutations_run_in_steps_of_4_dims() {
        // PixelUnshuffle(2) on [1, 3, 8, 8] as PyTorch exports it: view
        // [1, 3, 4, 2, 4, 2], permute (0, 1, 3, 5, 2, 4); and a Swin-style
        // window partition [1, 2, 4, 3, 4, 5] by (0, 1, 3, 2, 4, 5)… moved
        // further, (0, 3, 1, 4, 2, 5).
        for (shape, perm) in [
            (&[1, 3, 4, 2, 4, 2][..], &[0, 1, 3, 5, 2, 4][..]),
            (&[1, 2, 4, 3, 4, 5], &[0, 3, 1, 4, 2, 5]),
            (&[1, 3, 2, 3, 2, 3], &[0, 5, 4, 3, 2, 1]),
        ] {
            let model = one_node(
                "Transpose",
                shape,
                &[],
                vec![attr_ints("perm", perm)],
                vec![],
            );
            let g = assert_conforms("rank-6 Transpose", &model, 40.0);
            let out: Vec<usize> = perm.iter().map(|&a| shape[a as usize] as usize).collect();
            assert_eq!(g.tensors[g.outputs[0]].shape, out);
            assert_transposes_fit_the_runtime(&g);
        }
    }

    #[test]
    fn pixel_shuffles_run_as_permutations() {
        use crate::ops::testing::{attr_i, attr_s};
        for (op, shape, attrs) in [
            (
                "DepthToSpace",
                &[1, 8, 3, 4][..],
                vec![attr_i("blocksize", 2)],
            ),
            (
                "DepthToSpace",
                &[1, 8, 3, 4],
                vec![attr_i("blocksize", 2), attr_s("mode", "CRD")],
            ),
            ("SpaceToDepth", &[1, 2, 6, 4], vec![attr_i("blocksize", 2)]),
        ] {
            let model = one_node(op, shape, &[], attrs, vec![]);
            let g = assert_conforms(op, &model, 40.0);
            assert_transposes_fit_the_runtime(&g);
        }
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
