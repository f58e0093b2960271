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
/// (already checked to be a permutation of its dims).
pub(crate) fn emit(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: TensorId,
    in_shape: &[usize],
    perm: Vec<usize>,
) -> Result<Value, ConvertError> {
    if in_shape.len() > 4 {
        return Err(ctx.attr_err(
            "perm",
            format!(
                "{perm:?} reorders the data of a rank-{} tensor {in_shape:?}; medq transposes up \
                 to 4 dims",
                in_shape.len()
            ),
        ));
    }
    let out = perm.iter().map(|&a| in_shape[a]).collect();
    b.emit(ctx, Op::Transpose(Transpose { perm }), vec![x], out)
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
