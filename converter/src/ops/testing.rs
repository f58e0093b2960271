//! What a family module's tests need: one-node ONNX models, and the whole
//! pipeline on one — the ONNX lowering, the op's float meaning against tract
//! (which runs the ONNX model), and the int8 op run by the medq runtime
//! against tract.

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::error::ConvertError;
use crate::float_ref::FloatRef;
use crate::ir::Graph;
use crate::load::{convert_model, LoadOptions};
use crate::samples::Samples;
use crate::testing::lcg;
use crate::{calibrate, emit, evaluate, float_eval, quantize, rewrite};

pub fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

pub fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v.to_vec(),
        ..Default::default()
    }
}

/// A float initializer.
pub fn floats(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An int64 initializer.
pub fn int64s(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int64 as i32,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// A float initializer of shape `dims` filled with values in `[-1, 1)`.
pub fn weights(name: &str, dims: &[i64], seed: u64) -> TensorProto {
    let mut s = seed;
    let n: i64 = dims.iter().product();
    let data: Vec<f32> = (0..n).map(|_| lcg(&mut s)).collect();
    floats(name, dims, &data)
}

/// `y = op(x, inputs[1..])`: input `x` of shape `x_shape`, the other
/// inputs named in `inputs` (initializers, or `""` for an absent optional
/// one), opset 17.
pub fn one_node(
    op: &str,
    x_shape: &[i64],
    inputs: &[&str],
    attrs: Vec<AttributeProto>,
    initializers: Vec<TensorProto>,
) -> ModelProto {
    let inputs: Vec<&str> = std::iter::once("x").chain(inputs.iter().copied()).collect();
    node_of(op, x_shape, &inputs, attrs, initializers)
}

/// [`one_node`] with `x` among `inputs` where the node reads it (e.g.
/// `["w", "x"]`, or `["x", "x"]`).
pub fn node_of(
    op: &str,
    x_shape: &[i64],
    inputs: &[&str],
    attrs: Vec<AttributeProto>,
    initializers: Vec<TensorProto>,
) -> ModelProto {
    let dims = x_shape
        .iter()
        .map(|&d| Dimension {
            denotation: String::new(),
            value: Some(dimension::Value::DimValue(d)),
        })
        .collect();
    let x = ValueInfoProto {
        name: "x".into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
        }),
        doc_string: String::new(),
    };
    let node = NodeProto {
        name: format!("the_{op}"),
        op_type: op.into(),
        input: inputs.iter().copied().map(String::from).collect(),
        output: vec!["y".into()],
        attribute: attrs,
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "one_node".into(),
            node: vec![node],
            initializer: initializers,
            input: vec![x],
            output: vec![ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node `op(inputs) -> out`, named after its output, for graphs a
/// test writes node by node.
pub fn node(op: &str, inputs: &[&str], out: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: out.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute,
        ..Default::default()
    }
}

/// The loaded (and rewritten) graph of `model`.
pub fn load(model: &ModelProto) -> Result<Graph, ConvertError> {
    let (mut graph, _) = convert_model(model, &LoadOptions::default())?;
    rewrite::rewrite(&mut graph)?;
    Ok(graph)
}

/// [`conformance`] on 64 samples, asserting that the op's float meaning
/// agrees with tract's to `1e-5` and its int8 op reaches `min_db` of SQNR;
/// returns the graph.
pub fn assert_conforms(what: &str, model: &ModelProto, min_db: f64) -> Graph {
    let c = conformance(model, 64);
    assert!(
        c.float_error <= 1e-5,
        "{what}: float meaning differs from tract by {}",
        c.float_error
    );
    assert!(
        c.int8_sqnr_db >= min_db,
        "{what}: int8 SQNR {:.1} dB < {min_db} dB",
        c.int8_sqnr_db
    );
    c.graph
}

/// How one model fared through the pipeline.
#[derive(Debug)]
pub struct Conformance {
    pub graph: Graph,
    /// Largest |float_eval − tract| of the output over the samples, relative
    /// to the output's largest magnitude.
    pub float_error: f32,
    /// The int8 output against tract's (min/max calibration on the same samples).
    pub int8_sqnr_db: f64,
}

/// Run `model` on `n` inputs uniform in `[-2, 2)`: the op's float meaning
/// and its int8 op, each against tract.
pub fn conformance(model: &ModelProto, n: usize) -> Conformance {
    let graph = load(model).expect("the model loads");
    let input = graph.inputs[0];
    let shape = graph.tensors[input].shape.clone();
    let len: usize = shape.iter().product();
    let mut seed = 7;
    let data: Vec<f32> = (0..n * len).map(|_| 2.0 * lcg(&mut seed)).collect();
    let samples = Samples::from_vec(shape.clone(), data);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).expect("the model is written");
    let tract = FloatRef::new(&path, &shape).expect("tract loads the model");
    let output = &graph.tensors[graph.outputs[0]];
    let names = vec![output.name.clone()];
    let mut float_error = 0f32;
    for s in 0..samples.len() {
        let x = samples.sample(s);
        let want = tract.run(x, &names).expect("tract runs")[0].clone();
        let got = float_eval::eval(&graph, &[x]).expect("the graph evaluates")[graph.outputs[0]]
            .clone()
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "output length");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            float_error = float_error.max((g - w).abs() / scale);
        }
    }

    let bar = indicatif::ProgressBar::hidden();
    let cal = calibrate::calibrate(&graph, &tract, &samples, false, &bar).expect("calibrates");
    let ranges: Vec<_> = cal
        .observers
        .iter()
        .map(|o| {
            o.as_ref()
                .map(|o| o.range(calibrate::Method::MinMax, 99.99))
        })
        .collect();
    let qg = quantize::quantize_with_cells(&graph, &ranges, &cal.cells, &[], Default::default())
        .expect("quantizes");
    let plan = emit::plan_arena(&graph, &qg);
    let bytes = emit::emit(
        &graph,
        &qg,
        &plan,
        &Default::default(),
        None,
        Default::default(),
    )
    .expect("emits");
    let ev = evaluate::evaluate(&graph, &qg, &bytes, &tract, &samples, None, &bar)
        .expect("the runtime runs the file");
    // What a search compares candidates by (outputs only) is the full
    // evaluation's output figures, without the per-layer ones.
    // Several files measured together (as a search measures its
    // candidates, shared among threads) each get the same figures.
    let file = (&graph, &qg, &bytes[..]);
    let searched = evaluate::evaluate_outputs(&[file; 3], &tract, &samples, &bar)
        .expect("the runtime runs the file");
    assert_eq!(searched.len(), 3);
    let json = |o: &[evaluate::OutputMetrics]| serde_json::to_string(o).expect("serializes");
    for searched in &searched {
        assert_eq!(json(&searched.outputs), json(&ev.outputs));
        assert!(searched.layer_sqnr_db.iter().all(Option::is_none));
        assert!(searched.clipped.is_empty());
    }
    let int8_sqnr_db = ev.outputs[0].sqnr_db.unwrap_or(f64::INFINITY);
    Conformance {
        graph,
        float_error,
        int8_sqnr_db,
    }
}
