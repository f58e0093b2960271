//! Concat along one axis, requantizing each input to the output's scale;
//! inputs may be constants.

use medq::format::layout::{params::concat as w, OpCode};

use super::onnx::Ins;
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Input, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// Non-negative axis.
#[derive(Clone, Debug)]
pub struct Concat {
    pub axis: usize,
}

/// ONNX `Concat`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    // Zero-size parts (e.g. an exporter's zero-length ConstantOfShape)
    // contribute nothing: drop them here, before they become tensors.
    let parts: Vec<&Input> = ins
        .iter()
        .flatten()
        .filter(|p| !b.shape_of(&p.value).contains(&0))
        .collect();
    let first = parts.first().ok_or_else(|| ctx.err("no inputs"))?;
    let s0 = b.shape_of(&first.value);
    let axis = norm_axis(ctx.int("axis", 0)?, s0.len())
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let mut out = s0.clone();
    out[axis] = 0;
    let mut ids = Vec::with_capacity(parts.len());
    for p in parts {
        let s = b.shape_of(&p.value);
        if s.len() != s0.len()
            || s.iter()
                .zip(&s0)
                .enumerate()
                .any(|(i, (a, c))| i != axis && a != c)
        {
            return Err(ctx.err(format!(
                "cannot concatenate shapes {s0:?} and {s:?} on axis {axis}"
            )));
        }
        out[axis] += s[axis];
        ids.push(super::onnx::tensor_of(b, ctx, p)?);
    }
    if let [only] = ids[..] {
        // One part left: the same values, a view.
        return b.emit(ctx, Op::Reshape, vec![only], out);
    }
    b.emit(ctx, Op::Concat(Concat { axis }), ids, out)
}

impl IrOp for Concat {
    fn kind(&self) -> &'static str {
        "Concat"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let outer: usize = cx.output_shape.iter().take(self.axis).product();
        let mut out = Vec::with_capacity(cx.output_shape.iter().product());
        for o in 0..outer {
            for k in 0..cx.inputs.len() {
                let (x, s) = cx.input(k)?;
                let chunk: usize = s.iter().skip(self.axis).product();
                out.extend_from_slice(&x[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    /// Parameter words: the axis, then `(multiplier, shift)` per input.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let y = cx.output_q()?;
        let n = cx.node.inputs.len();
        let mut inputs = Vec::with_capacity(n);
        let mut p = vec![0; w::COUNT_FIXED + 2 * n];
        p[w::AXIS] = self.axis as i32;
        for k in 0..n {
            let (operand, x) = cx.operand(k)?;
            let (m, s) = cx.multiplier(x.scale as f64 / y.scale as f64, "input")?;
            inputs.push(operand);
            p[w::COUNT_FIXED + 2 * k] = m;
            p[w::COUNT_FIXED + 2 * k + 1] = s;
        }
        Ok(Lowered {
            opcode: OpCode::Concat,
            inputs,
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
    use crate::ops::testing::{assert_conforms, attr_i, one_node, weights};

    #[test]
    fn concat_with_a_constant_runs_in_int8() {
        let model = one_node(
            "Concat",
            &[1, 2, 5],
            &["c", "x"],
            vec![attr_i("axis", 1)],
            vec![weights("c", &[1, 3, 5], 1)],
        );
        assert_conforms("Concat", &model, 35.0);
    }
}
