//! ReduceMean, ReduceSum, ReduceMax and ReduceL2 over any axes: the
//! runtime's ReduceSum (a mean's `1/count` in its multiplier), ReduceMax and
//! ReduceL2.

use medq::format::layout::{params::reduce as w, params::reduce_l2 as l2, OpCode};
use medq::kernels::{L2_SQUARE_SHIFT_S16, L2_SQUARE_SHIFT_S8};

use super::onnx::{act, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op, TensorId};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
    Max,
    /// `sqrt(Σ x² + ε)`, `ε ≥ 0` as the bits of an `f32` (so the enum stays
    /// `Eq`): ONNX ReduceL2, and a complex spectrum's magnitude.
    L2 {
        eps_bits: u32,
    },
}

impl Reduction {
    /// ReduceL2 with `sqrt(Σ x² + eps)`.
    pub fn l2(eps: f32) -> Reduction {
        Reduction::L2 {
            eps_bits: eps.to_bits(),
        }
    }
}

/// `axes`: sorted, non-negative, non-empty.
#[derive(Clone, Debug)]
pub struct Reduce {
    pub how: Reduction,
    pub axes: Vec<usize>,
}

/// ONNX `ReduceMean`, `ReduceSum`, `ReduceMax`: axes as attribute (or input
/// from opset 18; ReduceSum from 13), `keepdims` 0 or 1; with
/// `noop_with_empty_axes` 1, empty axes pass the input through.
pub(crate) fn from_onnx(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    how: Reduction,
) -> Result<Value, ConvertError> {
    let axes_as_input = ctx.opset >= 18 || (how == Reduction::Sum && ctx.opset >= 13);
    let r = operands(b, ctx, ins, axes_as_input)?;
    if r.axes.is_empty() {
        // The same values: a view.
        return b.emit(ctx, Op::Reshape, vec![r.x], r.out);
    }
    b.emit(
        ctx,
        Op::Reduce(Reduce { how, axes: r.axes }),
        vec![r.x],
        r.out,
    )
}

/// ONNX `ReduceL2` (`F.normalize`) as the runtime's exact ReduceL2; and
/// `ReduceL1`, `ReduceSumSquare`, `ReduceLogSum`, `ReduceLogSumExp` and
/// `ReduceMin` as the ops they are made of: a table before the sum (|x|,
/// x², eˣ) or the maximum (−x) and one after it (log, −x), each on its own
/// calibrated range (a min-max normalization written in the graph takes
/// ReduceMin of a computed tensor).
pub(crate) fn norm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    use super::pointwise::{Expr, Fn1, Fn2, Pointwise};
    use std::sync::Arc;
    let x2 = Expr::Binary(Fn2::Mul, Arc::new(Expr::X), Arc::new(Expr::X));
    if ctx.op == "ReduceL2" {
        let r = operands(b, ctx, ins, ctx.opset >= 18)?;
        if r.axes.is_empty() {
            return Err(no_pass_through(ctx));
        }
        let l2 = Op::Reduce(Reduce {
            how: Reduction::l2(0.0),
            axes: r.axes,
        });
        return b.emit(ctx, l2, vec![r.x], r.out);
    }
    let unary = |f: Fn1| Some(Expr::Unary(f, Arc::new(Expr::X)));
    let (before, how, after) = match ctx.op {
        "ReduceMin" => (unary(Fn1::Neg), Reduction::Max, Some(Fn1::Neg)),
        "ReduceL1" => (unary(Fn1::Abs), Reduction::Sum, None),
        "ReduceSumSquare" => (Some(x2), Reduction::Sum, None),
        "ReduceLogSum" => (None, Reduction::Sum, Some(Fn1::Log)),
        _ => (unary(Fn1::Exp), Reduction::Sum, Some(Fn1::Log)),
    };
    let Operands {
        x,
        shape: xs,
        axes,
        out,
    } = operands(b, ctx, ins, ctx.opset >= 18)?;
    if axes.is_empty() {
        return Err(no_pass_through(ctx));
    }
    let table = |f: Expr| Op::Pointwise(Pointwise { f: Arc::new(f) });
    let x = match before {
        Some(f) => b.emit_part(ctx, "before_sum", table(f), vec![x], xs)?,
        None => x,
    };
    let sum = Op::Reduce(Reduce { how, axes });
    let Some(after) = after else {
        return b.emit(ctx, sum, vec![x], out);
    };
    let s = b.emit_part(ctx, "sum", sum, vec![x], out.clone())?;
    b.emit(
        ctx,
        table(Expr::Unary(after, Arc::new(Expr::X))),
        vec![s],
        out,
    )
}

/// `noop_with_empty_axes` with empty axes on a reduction that is not a
/// plain sum, mean or maximum (ONNX applies their tables without the sum).
fn no_pass_through(ctx: &NodeCtx) -> ConvertError {
    ctx.attr_err(
        "noop_with_empty_axes",
        "1 with empty axes: medq passes the input through for ReduceSum, ReduceMean \
         and ReduceMax only",
    )
}

/// A reduction's input, its shape, its sorted axes (empty: none, with
/// `noop_with_empty_axes`) and its output shape.
struct Operands {
    x: TensorId,
    shape: Vec<usize>,
    axes: Vec<usize>,
    out: Vec<usize>,
}

/// The [`Operands`] of a reduction node; `axes` an input (`axes_as_input`,
/// opset 18 on) or an attribute.
fn operands(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    axes_as_input: bool,
) -> Result<Operands, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let axes: Option<Vec<i64>> = if axes_as_input {
        if ctx.ints("axes")?.is_some() {
            return Err(ctx.attr_err("axes", "is an input from this opset on, not an attribute"));
        }
        opt_konst(ctx, ins, 1, "axes")?
            .map(|c| {
                c.as_i64()
                    .map(<[i64]>::to_vec)
                    .ok_or_else(|| ctx.err("the axes must be integers"))
            })
            .transpose()?
    } else {
        ctx.ints("axes")?
    };
    let keepdims = ctx.int("keepdims", 1)?;
    if !matches!(keepdims, 0 | 1) {
        return Err(ctx.attr_err("keepdims", format!("{keepdims}: must be 0 or 1")));
    }
    let noop = match ctx.int("noop_with_empty_axes", 0)? {
        0 => false,
        1 => true,
        v => return Err(ctx.attr_err("noop_with_empty_axes", format!("{v}: must be 0 or 1"))),
    };
    let rank = xs.len();
    // Empty axes reduce every axis, or none with `noop_with_empty_axes`
    // (the output is the input; `axes` stays empty).
    let mut axes: Vec<usize> = match axes.filter(|a| !a.is_empty()) {
        None if noop => Vec::new(),
        None => (0..rank).collect(),
        Some(a) => a
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<Option<_>>()
            .ok_or_else(|| ctx.err(format!("axes {a:?} out of range for rank {rank}")))?,
    };
    axes.sort_unstable();
    axes.dedup();
    if rank > 6 {
        return Err(ctx.err(format!("inputs of rank ≤ 6 are supported, found {xs:?}")));
    }
    let out: Vec<usize> = (0..rank)
        .filter_map(|d| match (axes.contains(&d), keepdims) {
            (true, 1) => Some(1),
            (true, _) => None,
            (false, _) => Some(xs[d]),
        })
        .collect();
    let count: usize = axes.iter().map(|&d| xs[d]).product();
    if count > medq::ops::MAX_REDUCE_COUNT {
        return Err(ctx.err(format!(
            "reduces {count} elements per output; at most {} are supported",
            medq::ops::MAX_REDUCE_COUNT
        )));
    }
    Ok(Operands {
        x,
        shape: xs,
        axes,
        out,
    })
}

impl IrOp for Reduce {
    fn kind(&self) -> &'static str {
        match self.how {
            Reduction::Max => "ReduceMax",
            Reduction::Sum | Reduction::Mean => "ReduceSum",
            Reduction::L2 { .. } => "ReduceL2",
        }
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, s) = cx.input(0)?;
        let kept: Vec<usize> = (0..s.len()).filter(|d| !self.axes.contains(d)).collect();
        let n_out: usize = kept.iter().map(|&d| s[d]).product();
        let init = if self.how == Reduction::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        };
        let mut acc = vec![init; n_out];
        let mut idx = vec![0usize; s.len()];
        for &v in x {
            let o = kept.iter().fold(0, |a, &d| a * s[d] + idx[d]);
            acc[o] = match self.how {
                Reduction::Max => acc[o].max(v),
                Reduction::L2 { .. } => acc[o] + v * v,
                Reduction::Sum | Reduction::Mean => acc[o] + v,
            };
            for d in (0..s.len()).rev() {
                idx[d] += 1;
                if idx[d] < s[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        match self.how {
            Reduction::Mean => {
                let count = (x.len() / n_out.max(1)) as f32;
                acc.iter_mut().for_each(|a| *a /= count);
            }
            Reduction::L2 { eps_bits } => {
                let eps = f32::from_bits(eps_bits);
                acc.iter_mut().for_each(|a| *a = (*a + eps).sqrt());
            }
            Reduction::Sum | Reduction::Max => {}
        }
        Ok(acc)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let y = cx.output_q()?;
        let shape = &cx.graph.tensors[cx.input(0)?].shape;
        let count: usize = self.axes.iter().map(|&d| shape[d]).product();
        let per = if self.how == Reduction::Mean {
            count as f64
        } else {
            1.0
        };
        let axes = self.axes.iter().map(|&d| 1 << d).sum();
        if let Reduction::L2 { eps_bits } = self.how {
            // The kernel shifts the sum of squares before its root, which
            // then has half as many fractional bits of a step of x.
            let shift = if cx.graph.wide.contains(&cx.input(0)?) {
                L2_SQUARE_SHIFT_S16
            } else {
                L2_SQUARE_SHIFT_S8
            };
            let squares = f64::from(1u32 << shift);
            let root = squares.sqrt();
            let (m, s) = cx.multiplier(xq.scale as f64 / (root * y.scale as f64), "output")?;
            let eps = f64::from(f32::from_bits(eps_bits)) * squares / (xq.scale as f64).powi(2);
            let mut p = [0; l2::COUNT];
            p[l2::AXES] = axes;
            p[l2::MULTIPLIER] = m;
            p[l2::SHIFT] = s;
            // The full output type (int8, or int16 when raised).
            (p[l2::ACT_MIN], p[l2::ACT_MAX]) = cx.clamp(FusedActivation::None)?;
            p[l2::EPS] = eps.round().clamp(0.0, i32::MAX as f64) as i32;
            return Ok(Lowered {
                opcode: OpCode::ReduceL2,
                inputs: vec![x],
                params: p.to_vec(),
            });
        }
        let (m, s) = cx.multiplier(xq.scale as f64 / (per * y.scale as f64), "output")?;
        let mut p = [0; w::COUNT];
        p[w::AXES] = axes;
        p[w::MULTIPLIER] = m;
        p[w::SHIFT] = s;
        // The full output type (int8, or int16 when raised).
        (p[w::ACT_MIN], p[w::ACT_MAX]) = cx.clamp(FusedActivation::None)?;
        Ok(Lowered {
            opcode: match self.how {
                Reduction::Max => OpCode::ReduceMax,
                Reduction::Sum | Reduction::Mean => OpCode::ReduceSum,
                Reduction::L2 { .. } => OpCode::ReduceL2,
            },
            inputs: vec![x],
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
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, attr_ints, one_node};

    #[test]
    fn reductions_over_any_axes_run_in_int8() {
        for op in ["ReduceMean", "ReduceSum", "ReduceMax"] {
            for (axes, keep) in [
                (&[2][..], 1),
                (&[1, 3][..], 0),
                (&[-1][..], 0),
                (&[][..], 1),
            ] {
                let mut attrs = vec![attr_i("keepdims", keep)];
                if !axes.is_empty() {
                    attrs.push(attr_ints("axes", axes));
                }
                let mut model = one_node(op, &[1, 2, 3, 5], &[], attrs, vec![]);
                // Opset 11: axes are an attribute for all three.
                model.opset_import[0].version = 11;
                assert_conforms(&format!("{op} {axes:?} keepdims {keep}"), &model, 30.0);
            }
        }
    }

    #[test]
    fn norms_run_as_tables_around_a_sum_or_as_reduce_l2() {
        for (op, kinds) in [
            ("ReduceL1", &["Lut", "ReduceSum"][..]),
            ("ReduceL2", &["ReduceL2"][..]),
            ("ReduceSumSquare", &["Lut", "ReduceSum"][..]),
            ("ReduceLogSumExp", &["Lut", "ReduceSum", "Lut"][..]),
            ("ReduceMin", &["Lut", "ReduceMax", "Lut"][..]),
        ] {
            let model = one_node(
                op,
                &[1, 4, 10],
                &[],
                vec![attr_ints("axes", &[1]), attr_i("keepdims", 1)],
                vec![],
            );
            let g = assert_conforms(op, &model, 30.0);
            let got: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(got, kinds, "{op}");
        }
    }

    #[test]
    fn noop_with_empty_axes_passes_the_input_through() {
        let mut model = one_node(
            "ReduceMax",
            &[1, 3],
            &[],
            vec![attr_i("noop_with_empty_axes", 1)],
            vec![],
        );
        model.opset_import[0].version = 18;
        let g = crate::ops::testing::load(&model).unwrap();
        let got: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(got, ["Reshape"]);
        assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 3]);
        // Where ONNX applies a table without the sum, medq refuses.
        let mut model = one_node(
            "ReduceL1",
            &[1, 3],
            &[],
            vec![attr_i("noop_with_empty_axes", 1)],
            vec![],
        );
        model.opset_import[0].version = 18;
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(
            err.contains("noop_with_empty_axes") && err.contains("the_ReduceL1"),
            "{err}"
        );
    }
}
