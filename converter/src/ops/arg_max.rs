//! ArgMax (and ArgMin, the ArgMax of −x) along one axis: the index of the
//! largest value, as an output of scale 1 whose dequantized values are the
//! indices (a model that ends with `torch.argmax` beside its probabilities);
//! int8, or int16 past 128 values (a peak's position over a signal).

use medq::format::layout::{params::arg_max as w, OpCode};
use medq::kernels::{MAX_ARG_MAX_LEN, MAX_ARG_MAX_LEN_S16};

use super::onnx::{act, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant, QParams};

/// Non-negative axis; of equal largest values the last with `select_last`.
#[derive(Clone, Debug)]
pub struct ArgMax {
    pub axis: usize,
    pub select_last: bool,
}

/// ONNX `ArgMax`: `axis`, `keepdims`, `select_last_index`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let axis = norm_axis(ctx.int("axis", 0)?, xs.len())
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let select_last = match ctx.int("select_last_index", 0)? {
        0 => false,
        1 => true,
        v => return Err(ctx.attr_err("select_last_index", format!("{v}: must be 0 or 1"))),
    };
    if xs[axis] > MAX_ARG_MAX_LEN_S16 {
        return Err(ctx.err(format!(
            "an argmax over {} values: medq's indices are int16, at most {MAX_ARG_MAX_LEN_S16}",
            xs[axis]
        )));
    }
    let mut out = xs.clone();
    match ctx.int("keepdims", 1)? {
        1 => out[axis] = 1,
        0 => {
            out.remove(axis);
        }
        v => return Err(ctx.attr_err("keepdims", format!("{v}: must be 0 or 1"))),
    }
    // ArgMin is the ArgMax of −x (the same first or last index of ties).
    let x = match ctx.op {
        "ArgMin" => {
            use super::pointwise::{Expr, Fn1, Pointwise};
            let neg = Expr::Unary(Fn1::Neg, std::sync::Arc::new(Expr::X));
            let op = Op::Pointwise(Pointwise {
                f: std::sync::Arc::new(neg),
            });
            b.emit_part(ctx, "negated", op, vec![x], xs.clone())?
        }
        _ => x,
    };
    let op = Op::ArgMax(ArgMax { axis, select_last });
    let y = b.emit(ctx, op, vec![x], out)?;
    // Past 128 values the indices are int16 (a peak's position over a
    // signal's samples; the file then needs int16-activations).
    if let (Value::Act(t), true) = (&y, xs[axis] > MAX_ARG_MAX_LEN) {
        b.make_wide(*t);
    }
    Ok(y)
}

impl IrOp for ArgMax {
    fn kind(&self) -> &'static str {
        "ArgMax"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, [outer, len, inner]) = cx.around_axis(0, self.axis)?;
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0;
                for k in 1..len {
                    let (v, b) = (
                        x[(o * len + k) * inner + i],
                        x[(o * len + best) * inner + i],
                    );
                    if v > b || (self.select_last && v == b) {
                        best = k;
                    }
                }
                out.push(best as f32);
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        // The kernel writes the indices themselves.
        OutputQuant::Fixed(QParams {
            scale: 1.0,
            zero_point: 0,
        })
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, _) = cx.activation(0)?;
        let mut p = [0; w::COUNT];
        p[w::AXIS] = self.axis as i32;
        p[w::SELECT_LAST_INDEX] = i32::from(self.select_last);
        Ok(Lowered {
            opcode: OpCode::ArgMax,
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
    use crate::ops::testing::{assert_conforms, attr_i, one_node};

    #[test]
    fn arg_max_runs_in_int8() {
        for (axis, keepdims, last) in [(-1, 0, 0), (1, 1, 0), (2, 1, 1)] {
            let model = one_node(
                "ArgMax",
                &[1, 5, 12],
                &[],
                vec![
                    attr_i("axis", axis),
                    attr_i("keepdims", keepdims),
                    attr_i("select_last_index", last),
                ],
                vec![],
            );
            // The float meaning is tract's (select_last_index included). In
            // int8, inputs within a step (4/255 here) of each other tie, and
            // a wrong index is off by up to 11: SQNR over the indices is a
            // coarse measure; the runtime's property test checks the kernel
            // exactly.
            let g = assert_conforms("ArgMax", &model, 10.0);
            assert!(g.nodes.iter().any(|n| n.op.kind() == "ArgMax"));
        }
    }

    #[test]
    fn arg_min_is_the_arg_max_of_the_negation() {
        let model = one_node(
            "ArgMin",
            &[1, 5, 12],
            &[],
            vec![attr_i("axis", 2), attr_i("keepdims", 0)],
            vec![],
        );
        let g = assert_conforms("ArgMin", &model, 10.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds, ["Lut", "ArgMax"]);
    }

    #[test]
    fn a_peak_position_past_128_samples_is_an_int16_index() {
        // The position of a peak among 300 samples per channel (at 217 and
        // 42: noise plus a bump, as an R peak over a window): int16
        // indices, at any precision asked, exact. (300 values on an int8
        // grid always tie somewhere; a peak does not.)
        let mut bump = vec![0.0f32; 600];
        bump[217] = 20.0;
        bump[300 + 42] = 20.0;
        let mut model = one_node(
            "Add",
            &[1, 2, 300],
            &["bump"],
            vec![],
            vec![crate::ops::testing::floats("bump", &[2, 300], &bump)],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node.push(tract_onnx::pb::NodeProto {
            name: "peak".into(),
            op_type: "ArgMax".into(),
            input: vec!["y".into()],
            output: vec!["at".into()],
            attribute: vec![attr_i("axis", -1), attr_i("keepdims", 0)],
            ..Default::default()
        });
        graph.output[0].name = "at".into();
        let g = assert_conforms("ArgMax over 300", &model, 60.0);
        assert!(g.wide.contains(&g.outputs[0]));
        let over = one_node("ArgMax", &[1, 32769], &[], vec![attr_i("axis", 1)], vec![]);
        let err = crate::ops::testing::load(&over).unwrap_err().to_string();
        assert!(err.contains("at most 32768"), "{err}");
    }
}
