//! ONNX `Where`: `cond ? a : b` with numpy broadcasting, as the `.mq`
//! Select op. The condition may be computed (a padding mask given as a
//! model input, a comparison of another tensor) or constant (an attention
//! mask); either branch may be constant (`masked_fill`'s fill). A
//! condition comparing the very tensor it selects from
//! (`torch.where(x > 0, x, 0.1·x)`) is a table instead (`ops::pointwise`).

use medq::format::layout::{params::select as w, OpCode};

use super::onnx::{input, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::shape::{broadcast, broadcast_indices};
use crate::load::{Builder, Value};
use crate::quantize::{ConstData, ConstQuant, ConstTensor, LowerCtx, Lowered, Operand};
use crate::quantize::{OutputQuant, QParams};

/// `cond ? a : b`; inputs `[cond, a, b]`.
#[derive(Clone, Debug)]
pub struct Where;

/// ONNX `Where`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let operands = [
        input(ctx, ins, 0)?,
        input(ctx, ins, 1)?,
        input(ctx, ins, 2)?,
    ];
    let shapes = operands.each_ref().map(|o| b.shape_of(&o.value).to_vec());
    let out = broadcast(&shapes[0], &shapes[1])
        .and_then(|s| broadcast(&s, &shapes[2]))
        .ok_or_else(|| ctx.err(format!("shapes {shapes:?} do not broadcast")))?;
    // The kernel walks 4 dims; leading 1s cost nothing.
    if out.iter().skip_while(|&&d| d == 1).count() > 4 {
        return Err(ctx.err(format!(
            "the output {out:?} has more than 4 dims past its leading 1s; medq's Select walks 4"
        )));
    }
    let mut ids = Vec::with_capacity(3);
    for o in &operands {
        ids.push(match &o.value {
            Value::Act(t) => *t,
            Value::Const(c) => b.const_tensor(o.name, c)?,
            Value::Unavailable(why) => {
                return Err(ctx.err(format!("input \"{}\" is {why}", o.name)))
            }
        });
    }
    b.emit(ctx, Op::Where(Where), ids, out)
}

impl IrOp for Where {
    fn kind(&self) -> &'static str {
        "Select"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let out = cx.output_shape;
        let [(c, sc), (a, sa), (b, sb)] = [cx.input(0)?, cx.input(1)?, cx.input(2)?];
        let [ic, ia, ib] = [sc, sa, sb].map(|s| broadcast_indices(s, out));
        Ok(ic
            .iter()
            .zip(ia.iter().zip(&ib))
            .map(|(&k, (&i, &j))| if c[k] != 0.0 { a[i] } else { b[j] })
            .collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let y = cx.output_q()?;
        // The condition: a 0/1 tensor (its zero point is the real 0).
        let (cond, _) = cx.operand(0)?;
        let mut p = vec![0; w::COUNT];
        let mut inputs = vec![cond];
        for (k, (m, s)) in [
            (1, (w::A_MULTIPLIER, w::A_SHIFT)),
            (2, (w::B_MULTIPLIER, w::B_SHIFT)),
        ] {
            let (operand, q) = branch(cx, k, y)?;
            (p[m], p[s]) = cx.multiplier(q.scale as f64 / y.scale as f64, "branch")?;
            inputs.push(operand);
        }
        (p[w::ACT_MIN], p[w::ACT_MAX]) = cx.clamp(FusedActivation::None)?;
        Ok(Lowered {
            opcode: OpCode::Select,
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

/// Branch `k`: an activation as it is, or a constant clamped to what the
/// output represents (a fill of `−inf` or `−1e9` is the output's floor)
/// and quantized on the output's own scale and zero point, copied exactly
/// (the multiplier 1); on its own int8 grid for an int16 output.
fn branch(cx: &LowerCtx, k: usize, y: QParams) -> Result<(Operand, QParams), ConvertError> {
    let id = cx.input(k)?;
    let t = &cx.graph.tensors[id];
    let Some(v) = &t.value else {
        return cx.operand(k);
    };
    if cx.graph.wide.contains(&cx.node.output) {
        return cx.operand_within(k, y.represented(true));
    }
    let (lo, hi) = y.represented(false);
    let data = v
        .data
        .iter()
        .map(|&x| y.quantize(x.clamp(lo, hi)))
        .collect();
    let constant = ConstTensor {
        name: t.name.clone(),
        dims: v.shape.clone(),
        quant: ConstQuant::PerTensor(y),
        data: ConstData::I8(data),
    };
    Ok((Operand::Constant(constant), y))
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::node;
    use crate::ops::testing::{assert_conforms, floats, node_of, weights};
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::TensorProto;

    /// A bool initializer (ONNX stores bools as `int32_data`).
    fn bools(name: &str, dims: &[i64], data: &[bool]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Bool as i32,
            int32_data: data.iter().map(|&b| i32::from(b)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn where_with_a_constant_condition_is_one_select() {
        // A [4, 1] condition broadcast over x [1, 4, 6]: rows 1 and 2 chosen.
        let cond = || bools("c", &[4, 1], &[false, true, true, false]);
        let cases = [
            // masked_fill(c, 0.5): the constant where chosen, x elsewhere.
            (["c", "f", "x"], vec![floats("f", &[], &[0.5])]),
            // The constant branch second, per element.
            (["c", "x", "g"], vec![weights("g", &[6], 3)]),
            // Both branches computed (x in both: the identity).
            (["c", "x", "x"], vec![]),
        ];
        for (inputs, inits) in cases {
            let inits = std::iter::once(cond()).chain(inits).collect();
            let model = node_of("Where", &[1, 4, 6], &inputs, vec![], inits);
            let g = assert_conforms(&format!("Where{inputs:?}"), &model, 30.0);
            let got: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(got, ["Select"], "{inputs:?}");
        }
    }

    #[test]
    fn a_condition_computed_from_another_tensor_selects_exactly() {
        // A condition that is not a function of the selected element alone:
        // each element of x [1, 4, 6] kept where it exceeds its row's mean
        // (a comparison of two tensors: Sub, then a table), else 0.25.
        let mut model = node_of(
            "Where",
            &[1, 4, 6],
            &[],
            vec![],
            vec![floats("fill", &[], &[0.25])],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node = vec![
            node(
                "ReduceMean",
                &["x"],
                "mean",
                vec![crate::ops::testing::attr_ints("axes", &[-1])],
            ),
            node("Greater", &["x", "mean"], "above", vec![]),
            node("Where", &["above", "x", "fill"], "y", vec![]),
        ];
        let g = assert_conforms("x > mean(x) ? x : 0.25", &model, 25.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds, ["ReduceSum", "Sub", "Lut", "Select"]);
    }

    #[test]
    fn a_where_past_four_dims_is_refused_at_the_node() {
        let cond = bools("c", &[2, 1, 2, 1, 3], &[true; 12]);
        let model = node_of(
            "Where",
            &[1, 2, 2, 2, 2, 3],
            &["c", "x", "x"],
            vec![],
            vec![cond],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("more than 4 dims"), "{err}");
    }

    #[test]
    fn a_causal_mask_of_minus_infinity_keeps_the_softmax() {
        // scores.masked_fill(tril(ones) == 0, -inf).softmax(-1) on [1, 8, 8]
        // scores of a small spread, the mask built in forward (Trilu folds):
        // the masked entries reach e^−C below each row, not one step below.
        use crate::ops::testing::{int64s, one_node};
        let mut model = one_node(
            "Where",
            &[1, 8, 8],
            &[],
            vec![],
            vec![
                floats("ones", &[8, 8], &[1.0; 64]),
                floats("zero", &[], &[0.0]),
                floats("ninf", &[], &[f32::NEG_INFINITY]),
                int64s("k", &[], &[0]),
            ],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node = vec![
            node(
                "Trilu",
                &["ones", "k"],
                "lower",
                vec![crate::ops::testing::attr_i("upper", 0)],
            ),
            node("Equal", &["lower", "zero"], "above", vec![]),
            node("Where", &["above", "ninf", "x"], "masked", vec![]),
            node(
                "Softmax",
                &["masked"],
                "y",
                vec![crate::ops::testing::attr_i("axis", -1)],
            ),
        ];
        assert_conforms("causal softmax", &model, 25.0);
    }
}
