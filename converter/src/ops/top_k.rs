//! TopK along one axis: the `k` largest (or smallest) values in order, and
//! their indices (the strongest peaks of a window, k-max pooling). Each
//! output is its own `.mq` op on the same input: the values keep the
//! input's quantization, the indices are written as ArgMax's (scale 1; int16
//! past 128 values).

use medq::format::layout::{params::top_k as w, OpCode};
use medq::kernels::{MAX_ARG_MAX_LEN, MAX_ARG_MAX_LEN_S16};

use super::onnx::{act, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant, QParams};

/// Non-negative axis, `k`, and which output.
#[derive(Clone, Debug)]
pub struct TopK {
    pub axis: usize,
    pub k: usize,
    pub largest: bool,
    /// The indices (output 1) instead of the values (output 0).
    pub indices: bool,
}

/// ONNX `TopK`: `k` as input 1 (opset 10+) or attribute (opset 1), `axis`,
/// `largest`; `sorted` 1 (the order PyTorch's `topk` exports).
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let axis = norm_axis(ctx.int("axis", -1)?, xs.len())
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let k = match opt_konst(ctx, ins, 1, "k")? {
        Some(c) => c
            .as_i64()
            .and_then(|v| v.first().copied())
            .ok_or_else(|| ctx.err("k must be an integer constant"))?,
        None => ctx.int("k", 0)?,
    };
    let len = xs[axis];
    let k = usize::try_from(k)
        .ok()
        .filter(|k| (1..=len).contains(k))
        .ok_or_else(|| {
            ctx.err(format!(
                "k = {k}: medq takes 1 ≤ k ≤ {len}, the axis length"
            ))
        })?;
    let flag = |name: &str| match ctx.int(name, 1)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(ctx.attr_err(name, format!("{v}: must be 0 or 1"))),
    };
    let largest = flag("largest")?;
    if !flag("sorted")? {
        return Err(ctx.attr_err(
            "sorted",
            "0: medq writes the values in order; export with sorted=True (PyTorch's default)",
        ));
    }
    let mut out = xs.clone();
    out[axis] = k;
    let mut primary = None;
    for output in 0..2 {
        if !ctx.output_used(output) {
            continue;
        }
        let indices = output == 1;
        if indices && len > MAX_ARG_MAX_LEN_S16 {
            return Err(ctx.err(format!(
                "the indices of a top k over {len} values: medq's indices are int16, at most \
                 {MAX_ARG_MAX_LEN_S16}"
            )));
        }
        let op = Op::TopK(TopK {
            axis,
            k,
            largest,
            indices,
        });
        let y = b.emit_output(ctx, output, op, vec![x], out.clone())?;
        // Past 128 values the indices are int16, as ArgMax's.
        if let (Value::Act(t), true) = (&y, indices && len > MAX_ARG_MAX_LEN) {
            b.make_wide(*t);
        }
        if output == ctx.primary_output() {
            primary = Some(y);
        }
    }
    primary.ok_or_else(|| ctx.err("neither output is used"))
}

impl IrOp for TopK {
    fn kind(&self) -> &'static str {
        "TopK"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, [outer, len, inner]) = cx.around_axis(0, self.axis)?;
        let mut out = vec![0f32; outer * self.k * inner];
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| x[(o * len + j) * inner + i];
                // A stable sort keeps the lower index first among equals.
                let mut order: Vec<usize> = (0..len).collect();
                order.sort_by(|&a, &b| match self.largest {
                    true => at(b).total_cmp(&at(a)),
                    false => at(a).total_cmp(&at(b)),
                });
                for (r, &j) in order.iter().take(self.k).enumerate() {
                    out[(o * self.k + r) * inner + i] = match self.indices {
                        true => j as f32,
                        false => at(j),
                    };
                }
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        match self.indices {
            // The kernel writes the indices themselves.
            true => OutputQuant::Fixed(QParams {
                scale: 1.0,
                zero_point: 0,
            }),
            false => OutputQuant::SameAsInput,
        }
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, _) = cx.activation(0)?;
        let mut p = [0; w::COUNT];
        p[w::AXIS] = self.axis as i32;
        p[w::K] = self.k as i32;
        p[w::LARGEST] = i32::from(self.largest);
        p[w::INDICES] = i32::from(self.indices);
        Ok(Lowered {
            opcode: OpCode::TopK,
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
    use crate::ops::testing::{assert_conforms, attr_i, floats, int64s, load, one_node};
    use tract_onnx::pb::ModelProto;

    /// `TopK(x + bump, k)` on `x [1, c, len]`, its outputs `[values,
    /// indices]` named as `outputs` says (one nobody reads is not computed), the
    /// graph output the one named `y`.
    fn top_k(
        len: usize,
        k: i64,
        bump: &[(usize, f32)],
        attrs: Vec<(&str, i64)>,
        outputs: [&str; 2],
    ) -> ModelProto {
        let mut b = vec![0.0f32; 2 * len];
        for &(at, v) in bump {
            b[at] = v;
        }
        let mut model = one_node(
            "Add",
            &[1, 2, len as i64],
            &["bump"],
            vec![],
            vec![
                floats("bump", &[2, len as i64], &b),
                int64s("k", &[1], &[k]),
            ],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node[0].output = vec!["sum".into()];
        graph.node.push(tract_onnx::pb::NodeProto {
            name: "top".into(),
            op_type: "TopK".into(),
            input: vec!["sum".into(), "k".into()],
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs.into_iter().map(|(n, v)| attr_i(n, v)).collect(),
            ..Default::default()
        });
        model
    }

    #[test]
    fn the_values_keep_the_input_grid() {
        for (axis, largest) in [(-1, 1), (-1, 0), (1, 1)] {
            let model = top_k(
                12,
                2,
                &[],
                vec![("axis", axis), ("largest", largest)],
                ["y", "unread"],
            );
            let g = assert_conforms("TopK values", &model, 30.0);
            // One op: the zero bump's Add is removed, the unread indices
            // are not computed.
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(kinds, ["TopK"], "axis {axis} largest {largest}");
        }
    }

    #[test]
    fn peak_positions_past_128_samples_are_int16_indices() {
        // The 2 strongest bumps among 300 samples per channel: exact.
        let bumps = [(217, 20.0), (40, 12.0), (300 + 42, 20.0), (300 + 299, 15.0)];
        let model = top_k(300, 2, &bumps, vec![("axis", -1)], ["v", "y"]);
        let g = assert_conforms("TopK indices over 300", &model, 60.0);
        assert!(g.wide.contains(&g.outputs[0]));
    }

    #[test]
    fn refusals_name_what_medq_takes() {
        let unsorted = top_k(12, 2, &[], vec![("sorted", 0)], ["y", "unread"]);
        let err = load(&unsorted).unwrap_err().to_string();
        assert!(err.contains("sorted=True"), "{err}");
        let too_many = top_k(12, 13, &[], vec![], ["y", "unread"]);
        let err = load(&too_many).unwrap_err().to_string();
        assert!(err.contains("1 ≤ k ≤ 12"), "{err}");
    }
}
