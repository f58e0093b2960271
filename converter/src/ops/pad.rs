//! Pad: constant padding; the output keeps the input's quantization. The
//! `reflect`, `edge` and `wrap` modes (PyTorch's `padding_mode` reflect,
//! replicate and circular; the legacy exporter writes circular as Slices
//! and a Concat, the dynamo exporter as `wrap`) copy input values, so they
//! run as one Gather with constant indices per padded axis.

use medq::format::layout::{params::pad as w, OpCode};

use super::gather::{Index, Select};
use super::onnx::{act, konst, opt_konst, to_usize, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op, TensorId};
use crate::load::fold;
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::shape::strides;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `pads` is ONNX order (all begins, then all ends).
#[derive(Clone, Debug)]
pub struct Pad {
    pub pads: Vec<usize>,
    pub value: f32,
}

/// ONNX `Pad`, constant mode: pads and value are attributes before opset 11,
/// constant inputs from it on (opset 18 adds `axes`).
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let mode = ctx.string("mode")?.unwrap_or_else(|| "constant".into());
    if !matches!(mode.as_str(), "constant" | "reflect" | "edge" | "wrap") {
        return Err(ctx.attr_err(
            "mode",
            format!("\"{mode}\": medq pads in the modes constant, reflect, edge and wrap"),
        ));
    }
    if mode == "wrap" && ctx.opset < 19 {
        return Err(ctx.attr_err(
            "mode",
            format!(
                "\"wrap\" is opset 19's, and the model imports opset {}",
                ctx.opset
            ),
        ));
    }
    let (raw, value) = if ctx.opset < 11 {
        let p = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.attr_err("pads", "missing"))?;
        (p, ctx.float("value", 0.0)?)
    } else {
        let c = konst(ctx, ins, 1, "pads")?;
        let p = fold::ints(ctx, &c, "pads")?.to_vec();
        let v = match opt_konst(ctx, ins, 2, "constant_value")? {
            None => 0.0,
            Some(c) => c
                .scalar_f32()
                .ok_or_else(|| ctx.err("constant_value must be a scalar"))?,
        };
        let p = match opt_konst(ctx, ins, 3, "axes")? {
            None => p,
            Some(axes) => {
                let axes = fold::ints(ctx, &axes, "axes")?;
                if p.len() != 2 * axes.len() {
                    return Err(ctx.err(format!("{} pads for {} axes", p.len(), axes.len())));
                }
                let mut full = vec![0i64; 2 * r];
                for (k, &a) in axes.iter().enumerate() {
                    let a = norm_axis(a, r)
                        .ok_or_else(|| ctx.err(format!("axis {a} is out of range")))?;
                    full[a] = p[k];
                    full[a + r] = p[k + axes.len()];
                }
                full
            }
        };
        (p, v)
    };
    if raw.len() != 2 * r {
        return Err(ctx.attr_err(
            "pads",
            format!(
                "expected {} values for rank {r}, found {}",
                2 * r,
                raw.len()
            ),
        ));
    }
    if raw.iter().any(|&p| p < 0) {
        return Err(ctx.attr_err(
            "pads",
            format!("negative pads (cropping) are not supported: {raw:?}"),
        ));
    }
    let pads = to_usize(ctx, "pads", &raw)?;
    let out: Vec<usize> = (0..r).map(|i| xs[i] + pads[i] + pads[i + r]).collect();
    if mode == "constant" {
        return b.emit(ctx, Op::Pad(Pad { pads, value }), vec![x], out);
    }
    // Before the index lists are built.
    crate::load::shape::check_size(&out).map_err(|e| ctx.err(e))?;
    copy_pad(b, ctx, x, xs, &pads, &mode)
}

/// Pads `x` (shape `xs`) in mode `reflect`, `edge` or `wrap`: one Gather
/// of constant indices per padded axis.
fn copy_pad(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: TensorId,
    xs: Vec<usize>,
    pads: &[usize],
    mode: &str,
) -> Result<Value, ConvertError> {
    let r = xs.len();
    let axes: Vec<usize> = (0..r).filter(|&a| pads[a] + pads[a + r] > 0).collect();
    let Some((&last, first)) = axes.split_last() else {
        return b.emit(ctx, Op::Reshape, vec![x], xs);
    };
    // The Gather that pads axis `a` of a tensor of `shape`, and its output shape.
    let pad_axis = |a: usize, shape: &[usize]| -> Result<(Op, Vec<usize>), ConvertError> {
        let (n, before, after) = (shape[a], pads[a], pads[a + r]);
        if mode == "reflect" && (before >= n || after >= n) {
            return Err(ctx.attr_err(
                "pads",
                format!(
                    "reflect pads {before} and {after} on an axis of {n}: each must be below it"
                ),
            ));
        }
        // PyTorch's circular padding takes at most the axis; so does the
        // float reference's form of it (`float_ref::wrap_pads_as_slices`).
        if mode == "wrap" && (before > n || after > n) {
            return Err(ctx.attr_err(
                "pads",
                format!(
                    "wrap pads {before} and {after} on an axis of {n}: each must be at most it"
                ),
            ));
        }
        let n = n as isize;
        let source = |i: isize| -> usize {
            let i = match mode {
                "reflect" if i < 0 => -i,
                "reflect" if i >= n => 2 * (n - 1) - i,
                "wrap" => i.rem_euclid(n),
                _ => i.clamp(0, n - 1),
            };
            i as usize
        };
        let indices = (-(before as isize)..n + after as isize)
            .map(source)
            .collect();
        let mut out = shape.to_vec();
        out[a] = shape[a] + before + after;
        let select = Op::Select(Select {
            axis: a,
            index: Index::List(indices),
        });
        Ok((select, out))
    };
    let (mut t, mut shape) = (x, xs);
    for &a in first {
        let (select, out) = pad_axis(a, &shape)?;
        t = b.emit_part(ctx, &format!("axis{a}"), select, vec![t], out.clone())?;
        shape = out;
    }
    let (select, out) = pad_axis(last, &shape)?;
    b.emit(ctx, select, vec![t], out)
}

impl IrOp for Pad {
    fn kind(&self) -> &'static str {
        "Pad"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, s) = cx.input(0)?;
        let os = cx.output_shape;
        let r = s.len();
        if self.pads.len() != 2 * r || os.len() != r {
            return Err(cx.err("pads do not fit the input rank"));
        }
        let (ost, ist) = (strides(os), strides(s));
        let total: usize = os.iter().product();
        let value_at = |flat: usize| {
            let mut off = 0;
            for a in 0..r {
                let i = (flat / ost[a]) % os[a];
                if i < self.pads[a] || i >= self.pads[a] + s[a] {
                    return self.value;
                }
                off += (i - self.pads[a]) * ist[a];
            }
            x[off]
        };
        Ok((0..total).map(value_at).collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    /// Parameter words: the quantized pad value, then the begins and ends.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let mut p = vec![0; w::PADS + self.pads.len()];
        p[w::VALUE] = match cx.graph.wide.contains(&cx.node.output) {
            true => crate::quantize::quantize_wide(xq, self.value),
            false => i32::from(xq.quantize(self.value)),
        };
        for (word, &pad) in p[w::PADS..].iter_mut().zip(&self.pads) {
            *word = pad as i32;
        }
        Ok(Lowered {
            opcode: OpCode::Pad,
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
    use crate::ops::testing::{assert_conforms, floats, int64s, one_node};

    #[test]
    fn pad_runs_in_int8() {
        let model = one_node(
            "Pad",
            &[1, 2, 5],
            &["pads", "value"],
            vec![],
            vec![
                int64s("pads", &[6], &[0, 1, 2, 0, 0, 3]),
                floats("value", &[], &[0.75]),
            ],
        );
        assert_conforms("Pad", &model, 35.0);
    }

    #[test]
    fn a_pad_value_outside_its_input_range_is_held() {
        // F.pad(relu(x), (3, 1), value=-1): the input is never negative, but
        // the pad writes −1 on its grid.
        let mut model = one_node(
            "Relu",
            &[1, 2, 12],
            &[],
            vec![],
            vec![
                int64s("pads", &[6], &[0, 0, 3, 0, 0, 1]),
                floats("value", &[], &[-1.0]),
            ],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node.push(tract_onnx::pb::NodeProto {
            name: "pad".into(),
            op_type: "Pad".into(),
            input: vec!["y".into(), "pads".into(), "value".into()],
            output: vec!["z".into()],
            ..Default::default()
        });
        graph.output[0].name = "z".into();
        assert_conforms("Pad of -1 after a Relu", &model, 35.0);
    }

    #[test]
    fn reflect_edge_and_wrap_pads_run_as_gathers() {
        use crate::ops::testing::attr_s;
        // Conv1d's padding_mode reflect / replicate / circular on [1, 2, 6],
        // and 2-D reflect and wrap pads on two axes (wrap: the whole axis
        // at most, as PyTorch's circular padding).
        for (mode, shape, pads) in [
            ("reflect", &[1, 2, 6][..], &[0, 0, 3, 0, 0, 2][..]),
            ("edge", &[1, 2, 6], &[0, 0, 4, 0, 0, 1]),
            ("wrap", &[1, 2, 6], &[0, 0, 2, 0, 0, 6]),
            ("reflect", &[1, 2, 4, 5], &[0, 0, 1, 2, 0, 0, 2, 1]),
            ("wrap", &[1, 2, 4, 5], &[0, 0, 4, 0, 0, 0, 1, 3]),
        ] {
            let mut model = one_node(
                "Pad",
                shape,
                &["pads"],
                vec![attr_s("mode", mode)],
                vec![int64s("pads", &[pads.len() as i64], pads)],
            );
            // `wrap` is opset 19's.
            model.opset_import[0].version = 19;
            let g = assert_conforms(mode, &model, 40.0);
            let padded_axes = (pads.len() / 2..pads.len())
                .filter(|&e| pads[e] + pads[e - pads.len() / 2] > 0)
                .count();
            assert_eq!(g.nodes.len(), padded_axes, "{mode}");
            assert!(g.nodes.iter().all(|n| n.op.kind() == "Gather"), "{mode}");
        }
    }

    #[test]
    fn a_wrap_pad_longer_than_the_axis_is_refused() {
        use crate::ops::testing::attr_s;
        let mut model = one_node(
            "Pad",
            &[1, 2, 6],
            &["pads"],
            vec![attr_s("mode", "wrap")],
            vec![int64s("pads", &[6], &[0, 0, 7, 0, 0, 0])],
        );
        model.opset_import[0].version = 19;
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("wrap pads 7 and 0 on an axis of 6"), "{err}");
    }

    #[test]
    fn a_reflect_pad_as_long_as_the_axis_is_refused() {
        use crate::ops::testing::attr_s;
        let model = one_node(
            "Pad",
            &[1, 2, 3],
            &["pads"],
            vec![attr_s("mode", "reflect")],
            vec![int64s("pads", &[6], &[0, 0, 3, 0, 0, 0])],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("reflect pads 3"), "{err}");
    }
}
