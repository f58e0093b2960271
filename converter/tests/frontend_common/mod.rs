//! Shared helpers for the frontend tests: an ONNX model builder (prost types,
//! no Python needed), the library's float evaluation of the IR, and a small
//! PRNG.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use medq_converter::ir::Graph;
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

// ---------------------------------------------------------------- building

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

pub fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(t),
        ..Default::default()
    }
}

/// A float tensor stored as raw little-endian bytes (what PyTorch writes).
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int64 as i32,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

pub enum Dim {
    Fixed(i64),
    Param(&'static str),
}

pub fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            denotation: String::new(),
                            value: Some(match d {
                                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                                Dim::Param(p) => dimension::Value::DimParam(p.to_string()),
                            }),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    }
}

pub struct ModelBuilder {
    pub model: ModelProto,
}

impl ModelBuilder {
    pub fn new(opset: i64) -> ModelBuilder {
        ModelBuilder {
            model: ModelProto {
                ir_version: 8,
                producer_name: "medq-tests".into(),
                producer_version: "1".into(),
                opset_import: vec![OperatorSetIdProto {
                    domain: String::new(),
                    version: opset,
                }],
                graph: Some(GraphProto {
                    name: "test".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }

    fn graph(&mut self) -> &mut GraphProto {
        self.model.graph.get_or_insert_with(Default::default)
    }

    /// A float input with fixed dims.
    pub fn input(mut self, name: &str, dims: &[i64]) -> Self {
        let d: Vec<Dim> = dims.iter().map(|&v| Dim::Fixed(v)).collect();
        self.graph().input.push(value_info(name, &d));
        self
    }

    pub fn input_dims(mut self, name: &str, dims: &[Dim]) -> Self {
        self.graph().input.push(value_info(name, dims));
        self
    }

    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph().initializer.push(t);
        self
    }

    pub fn f32(self, name: &str, dims: &[i64], data: &[f32]) -> Self {
        self.init(tensor_f32(name, dims, data))
    }

    pub fn i64(self, name: &str, dims: &[i64], data: &[i64]) -> Self {
        self.init(tensor_i64(name, dims, data))
    }

    /// A node named `name` (may be empty).
    pub fn node(
        mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Self {
        self.graph().node.push(NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    pub fn output(mut self, name: &str) -> Self {
        self.graph().output.push(ValueInfoProto {
            name: name.into(),
            ..Default::default()
        });
        self
    }

    pub fn build(self) -> ModelProto {
        self.model
    }

    pub fn bytes(self) -> Vec<u8> {
        self.model.encode_to_vec()
    }

    /// Write `<dir>/<file>` and return its path.
    pub fn write(self, dir: &Path, file: &str) -> PathBuf {
        let p = dir.join(file);
        std::fs::write(&p, self.model.encode_to_vec()).unwrap();
        p
    }
}

// ---------------------------------------------------------------- data

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (v as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| lo + (self.next() + 1.0) * 0.5 * (hi - lo))
            .collect()
    }
}

pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}: element {i}: got {g}, want {w} (tolerance {tol} × {scale})"
        );
    }
}

// ---------------------------------------------------------------- IR evaluator

/// Evaluate `g` on one input in plain f32 (the library's per-op float
/// semantics): the value of every tensor.
pub fn eval_ir(g: &Graph, input: &[f32]) -> Vec<Option<Vec<f32>>> {
    eval_ir_inputs(g, &[input])
}

/// [`eval_ir`] with a value for every graph input, in order.
pub fn eval_ir_inputs(g: &Graph, inputs: &[&[f32]]) -> Vec<Option<Vec<f32>>> {
    medq_converter::float_eval::eval(g, inputs).expect("the graph evaluates")
}

/// The value of the graph's first output.
pub fn eval_output(g: &Graph, input: &[f32]) -> Vec<f32> {
    eval_ir(g, input)[g.outputs[0]].clone().unwrap()
}
