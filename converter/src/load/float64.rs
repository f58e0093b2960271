//! A model exported in float64 (`model.double()`) as the float32 model it
//! stands for: medq computes in float32, and tract, the float reference,
//! cannot plan a float64 graph (a Gemm's `beta` of one type read as the
//! other). Every float64 tensor (initializers, constants, attributes) is
//! rounded to float32, every Cast to float64 casts to float32, and the
//! graph's inputs, outputs and value infos declare float32.

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{type_proto, GraphProto, TensorProto, ValueInfoProto};

use super::tensor;

/// `g` with float64 replaced by float32, or `None` when it holds none.
pub fn float64_as_float32(g: &GraphProto) -> Option<GraphProto> {
    let double = DataType::Double as i32;
    let float = DataType::Float as i32;
    let mut out = g.clone();
    let mut changed = false;
    for t in &mut out.initializer {
        changed |= narrow(t);
    }
    for n in &mut out.node {
        for a in &mut n.attribute {
            if let Some(t) = a.t.as_mut() {
                changed |= narrow(t);
            }
            if n.op_type == "Cast" && a.name == "to" && a.i == i64::from(double) {
                a.i = i64::from(float);
                changed = true;
            }
        }
    }
    let infos = out
        .input
        .iter_mut()
        .chain(out.output.iter_mut())
        .chain(out.value_info.iter_mut());
    for info in infos {
        changed |= declare_float(info);
    }
    changed.then_some(out)
}

/// Rounds a float64 tensor to float32 in place; whether it was one.
fn narrow(t: &mut TensorProto) -> bool {
    if t.data_type != DataType::Double as i32 {
        return false;
    }
    let Ok(values) = tensor::from_proto(t) else {
        // Left as it is: loading reports what is wrong with it.
        return false;
    };
    *t = TensorProto {
        name: std::mem::take(&mut t.name),
        dims: std::mem::take(&mut t.dims),
        data_type: DataType::Float as i32,
        float_data: values.to_f32(),
        ..Default::default()
    };
    true
}

/// Declares a float64 value float32; whether it was one.
fn declare_float(info: &mut ValueInfoProto) -> bool {
    match info.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        Some(type_proto::Value::TensorType(t)) if t.elem_type == DataType::Double as i32 => {
            t.elem_type = DataType::Float as i32;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, node, one_node};
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{type_proto, TensorProto};

    #[test]
    fn a_float64_export_converts_as_float32() {
        // (x + c) · 2, cast through float64 and back, all declared double:
        // an input, an initializer (double_data), a Constant node's tensor.
        let c = TensorProto {
            name: "c".into(),
            dims: vec![4],
            data_type: DataType::Double as i32,
            double_data: vec![0.5, -1.0, 0.25, 2.0],
            ..Default::default()
        };
        let mut model = one_node("Add", &[1, 4], &["c"], vec![], vec![c]);
        let graph = model.graph.as_mut().unwrap();
        graph.node[0].output = vec!["sum".into()];
        let two = TensorProto {
            dims: vec![],
            data_type: DataType::Double as i32,
            double_data: vec![2.0],
            ..Default::default()
        };
        let mut constant = node("Constant", &[], "two", vec![]);
        constant.attribute.push(tract_onnx::pb::AttributeProto {
            name: "value".into(),
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Tensor as i32,
            t: Some(two),
            ..Default::default()
        });
        graph.node.insert(0, constant);
        graph
            .node
            .push(node("Mul", &["sum", "two"], "scaled", vec![]));
        graph.node.push(node(
            "Cast",
            &["scaled"],
            "y",
            vec![attr_i("to", DataType::Double as i64)],
        ));
        for info in graph.input.iter_mut().chain(graph.output.iter_mut()) {
            let tensor = type_proto::Tensor {
                elem_type: DataType::Double as i32,
                shape: match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                    Some(type_proto::Value::TensorType(t)) => t.shape.clone(),
                    None => None,
                },
            };
            info.r#type = Some(tract_onnx::pb::TypeProto {
                value: Some(type_proto::Value::TensorType(tensor)),
                ..Default::default()
            });
        }
        let g = assert_conforms("float64 export", &model, 35.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(
            kinds,
            ["Add", "Lut"],
            "the product by 2 a table, the cast a view"
        );
    }
}
