//! Softmax along one axis, through a 256-entry exp table; its output
//! encoding is the one the runtime's kernel fixes.

use medq::format::layout::{params::softmax as w, OpCode};
use medq::ops::{SOFTMAX_OUTPUT_S16_SCALE, SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT};

use super::onnx::{act, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{int_const, LowerCtx, Lowered, OutputQuant, QParams};

/// Non-negative axis.
#[derive(Clone, Debug)]
pub struct Softmax {
    pub axis: usize,
}

/// The output encoding of every Softmax: probabilities in `[0, 1)` on
/// 1/256 steps.
pub const SOFTMAX_OUTPUT: QParams = QParams {
    scale: SOFTMAX_OUTPUT_SCALE,
    zero_point: SOFTMAX_OUTPUT_ZERO_POINT,
};

/// The same stored as int16 (`--precision`): 1/32768 steps, so that an
/// attention weight of 1/64 keeps 512 steps instead of 4.
pub const SOFTMAX_OUTPUT_S16: QParams = QParams {
    scale: SOFTMAX_OUTPUT_S16_SCALE,
    zero_point: 0,
};

/// ONNX `Softmax`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let axis = if ctx.opset >= 13 {
        norm_axis(ctx.int("axis", -1)?, r).ok_or_else(|| ctx.attr_err("axis", "out of range"))?
    } else {
        // Before opset 13, Softmax normalizes over all axes from `axis` on,
        // flattened. That is a one-axis softmax when at most one of those
        // axes is larger than 1.
        let a = norm_axis(ctx.int("axis", 1)?, r)
            .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
        let big: Vec<usize> = (a..r).filter(|&i| xs[i] != 1).collect();
        match big[..] {
            [] => r - 1,
            [one] => one,
            _ => {
                return Err(ctx.attr_err(
                    "axis",
                    format!(
                        "opset {} Softmax normalizes over axes {a}.. of shape {xs:?} together; medq's Softmax \
                         normalizes over one axis. Re-export with opset ≥ 13 or flatten first",
                        ctx.opset
                    ),
                ))
            }
        }
    };
    b.emit(ctx, Op::Softmax(Softmax { axis }), vec![x], xs)
}

/// ONNX `LogSoftmax` (a classifier head for `NLLLoss`), as the ops it is
/// made of: `d = x − max(x)`, `y = d − log(Σ exp(d))` along the axis. Each
/// step is requantized on its own calibrated range, so the low log
/// probabilities keep the precision of `x − max` (a log of the int8 Softmax
/// output would floor every probability under 1/512).
pub(crate) fn log_softmax(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    use super::binary::{Binary, BinaryOp};
    use super::pointwise::{Expr, Fn1, Pointwise};
    use super::reduce::{Reduce, Reduction};
    use std::sync::Arc;
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let default = if ctx.opset >= 13 { -1 } else { 1 };
    let axis = norm_axis(ctx.int("axis", default)?, r)
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    if ctx.opset < 13 && xs[axis + 1..].iter().any(|&d| d != 1) {
        return Err(ctx.attr_err(
            "axis",
            format!(
                "opset {} LogSoftmax normalizes over axes {axis}.. of shape {xs:?} together; medq \
                 normalizes over one axis. Re-export with opset ≥ 13 or flatten first",
                ctx.opset
            ),
        ));
    }
    let mut kept = xs.clone();
    kept[axis] = 1;
    let table = |f: Fn1| {
        Op::Pointwise(Pointwise {
            f: Arc::new(Expr::Unary(f, Arc::new(Expr::X))),
        })
    };
    let reduce = |how| {
        Op::Reduce(Reduce {
            how,
            axes: vec![axis],
        })
    };
    let sub = || Op::Binary(Binary { op: BinaryOp::Sub });
    let max = b.emit_part(ctx, "max", reduce(Reduction::Max), vec![x], kept.clone())?;
    let d = b.emit_part(ctx, "shifted", sub(), vec![x, max], xs.clone())?;
    let e = b.emit_part(ctx, "exp", table(Fn1::Exp), vec![d], xs.clone())?;
    let sum = b.emit_part(ctx, "sum", reduce(Reduction::Sum), vec![e], kept.clone())?;
    let log_sum = b.emit_part(ctx, "log_sum", table(Fn1::Log), vec![sum], kept)?;
    b.emit(ctx, sub(), vec![d, log_sum], xs)
}

/// `table[d] = round(2^24 · exp(−d · scale))`, the softmax numerator for
/// `d = max − x`: the runtime's definition.
pub fn exp_table(input_scale: f32) -> Vec<i32> {
    medq::ops::softmax_exp_table_s8(input_scale).to_vec()
}

impl IrOp for Softmax {
    fn kind(&self) -> &'static str {
        "Softmax"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, s) = cx.input(0)?;
        let axis = self.axis;
        let dim = *s.get(axis).ok_or_else(|| cx.err("axis out of range"))?;
        let (outer, inner): (usize, usize) =
            (s[..axis].iter().product(), s[axis + 1..].iter().product());
        let mut out = vec![0.0; x.len()];
        for o in 0..outer {
            for i in 0..inner {
                let idx = |d: usize| (o * dim + d) * inner + i;
                let m = (0..dim)
                    .map(|d| x[idx(d)])
                    .fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = (0..dim).map(|d| (x[idx(d)] - m).exp()).sum();
                for d in 0..dim {
                    out[idx(d)] = (x[idx(d)] - m).exp() / sum;
                }
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Probability
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let wide = cx.input(0).is_ok_and(|t| cx.graph.wide.contains(&t));
        let table = match wide {
            // The runtime's definition (low-byte and high-byte factors).
            true => medq::ops::softmax_exp_table_s16(xq.scale).to_vec(),
            false => exp_table(xq.scale),
        };
        let table = int_const(format!("{}.exp_table", cx.node.name), table);
        let mut p = [0; w::COUNT];
        p[w::AXIS] = self.axis as i32;
        Ok(Lowered {
            opcode: OpCode::Softmax,
            inputs: vec![x, table],
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
    use super::*;

    #[test]
    fn exp_table_starts_at_one_and_decays() {
        let t = exp_table(0.1);
        assert_eq!(t[0], 1 << 24);
        assert_eq!(t[10], ((-1.0f64).exp() * 16777216.0).round() as i32);
        assert!(t.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn softmax_runs_in_int8() {
        use crate::ops::testing::{assert_conforms, attr_i, one_node};
        let model = one_node("Softmax", &[1, 3, 10], &[], vec![attr_i("axis", 1)], vec![]);
        assert_conforms("Softmax", &model, 30.0);
    }

    #[test]
    fn log_softmax_runs_as_its_parts_in_int8() {
        use crate::ops::testing::{assert_conforms, attr_i, one_node};
        for (shape, axis) in [
            (&[1, 3, 10][..], 1),
            (&[1, 12][..], -1),
            (&[1, 4, 5][..], -1),
        ] {
            let model = one_node("LogSoftmax", shape, &[], vec![attr_i("axis", axis)], vec![]);
            let g = assert_conforms("LogSoftmax", &model, 30.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(
                kinds,
                ["ReduceMax", "Sub", "Lut", "ReduceSum", "Lut", "Sub"],
                "{shape:?}"
            );
        }
    }
}
