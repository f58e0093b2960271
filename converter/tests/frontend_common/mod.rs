//! Shared helpers for the frontend tests: an ONNX model builder (prost types,
//! no Python needed), a plain float evaluator of the IR, and a small PRNG.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use medq_converter::ir::{FusedActivation, Graph, Op, Window};
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

fn clamp(v: f32, a: FusedActivation) -> f32 {
    let (lo, hi) = a.bounds();
    v.max(lo).min(hi)
}

/// As NCHW: rank-3 `[N, C, L]` is `[N, C, 1, L]`.
fn nchw(s: &[usize]) -> [usize; 4] {
    match s {
        [n, c, l] => [*n, *c, 1, *l],
        [n, c, h, w] => [*n, *c, *h, *w],
        _ => panic!("not an image shape: {s:?}"),
    }
}

fn strides(s: &[usize]) -> Vec<usize> {
    let mut st = vec![1; s.len()];
    for i in (0..s.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * s[i + 1];
    }
    st
}

fn broadcast_get(data: &[f32], shape: &[usize], out: &[usize], flat: usize) -> f32 {
    let os = strides(out);
    let is = strides(shape);
    let pad = out.len() - shape.len();
    let mut off = 0;
    for (a, &st) in os.iter().enumerate() {
        let i = (flat / st) % out[a];
        if a >= pad {
            let d = shape[a - pad];
            off += if d == 1 { 0 } else { i * is[a - pad] };
        }
    }
    data[off]
}

fn window_op(
    x: &[f32],
    xs: [usize; 4],
    os: [usize; 4],
    w: &Window,
    mut f: impl FnMut(usize, usize, usize, &mut dyn Iterator<Item = Option<f32>>) -> f32,
) -> Vec<f32> {
    let [_, c, h, wd] = xs;
    let [_, _, oh, ow] = os;
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for y in 0..oh {
            for xo in 0..ow {
                let mut it = (0..w.kernel[0])
                    .flat_map(|ky| (0..w.kernel[1]).map(move |kx| (ky, kx)))
                    .map(|(ky, kx)| {
                        let iy =
                            (y * w.strides[0] + ky * w.dilations[0]) as isize - w.pads[0] as isize;
                        let ix =
                            (xo * w.strides[1] + kx * w.dilations[1]) as isize - w.pads[1] as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                            Some(x[(ch * h + iy as usize) * wd + ix as usize])
                        } else {
                            None
                        }
                    });
                out.push(f(ch, y, xo, &mut it));
            }
        }
    }
    out
}

/// Evaluate `g` on one input in plain f32: the value of every tensor.
pub fn eval_ir(g: &Graph, input: &[f32]) -> Vec<Option<Vec<f32>>> {
    eval_ir_inputs(g, &[input])
}

/// [`eval_ir`] with a value for every graph input, in order.
pub fn eval_ir_inputs(g: &Graph, inputs: &[&[f32]]) -> Vec<Option<Vec<f32>>> {
    let mut vals: Vec<Option<Vec<f32>>> = g
        .tensors
        .iter()
        .map(|t| t.value.as_ref().map(|a| a.data.clone()))
        .collect();
    for (&t, x) in g.inputs.iter().zip(inputs) {
        vals[t] = Some(x.to_vec());
    }
    for n in &g.nodes {
        let os = g.tensors[n.output].shape.clone();
        let x = |k: usize| vals[n.inputs[k]].clone().expect("input computed");
        let xs = |k: usize| g.tensors[n.inputs[k]].shape.clone();
        let y: Vec<f32> = match &n.op {
            Op::Conv {
                weights,
                bias,
                window,
                groups,
                activation,
            } => {
                let (xv, s) = (x(0), nchw(&xs(0)));
                let o = nchw(&os);
                let [cout, cin_g, kh, kw] = [
                    weights.shape[0],
                    weights.shape[1],
                    weights.shape[2],
                    weights.shape[3],
                ];
                let per_group = cout / groups;
                let mut out = Vec::new();
                for (co, &b0) in bias.iter().enumerate().take(cout) {
                    let gi = co / per_group;
                    for oy in 0..o[2] {
                        for ox in 0..o[3] {
                            let mut acc = b0;
                            for ci in 0..cin_g {
                                let ch = gi * cin_g + ci;
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * window.strides[0] + ky * window.dilations[0])
                                            as isize
                                            - window.pads[0] as isize;
                                        let ix = (ox * window.strides[1] + kx * window.dilations[1])
                                            as isize
                                            - window.pads[1] as isize;
                                        if iy >= 0
                                            && ix >= 0
                                            && (iy as usize) < s[2]
                                            && (ix as usize) < s[3]
                                        {
                                            acc += xv
                                                [(ch * s[2] + iy as usize) * s[3] + ix as usize]
                                                * weights.data
                                                    [((co * cin_g + ci) * kh + ky) * kw + kx];
                                        }
                                    }
                                }
                            }
                            out.push(clamp(acc, *activation));
                        }
                    }
                }
                out
            }
            Op::FullyConnected {
                weights,
                bias,
                activation,
            } => {
                let (nn, k) = (weights.shape[0], weights.shape[1]);
                x(0).chunks(k)
                    .flat_map(|row| {
                        (0..nn).map(move |j| {
                            let acc: f32 = bias[j]
                                + (0..k)
                                    .map(|i| row[i] * weights.data[j * k + i])
                                    .sum::<f32>();
                            clamp(acc, *activation)
                        })
                    })
                    .collect()
            }
            Op::Add { activation } | Op::Mul { activation } => {
                let (a, b) = (x(0), x(1));
                let (sa, sb) = (xs(0), xs(1));
                let total: usize = os.iter().product();
                (0..total)
                    .map(|i| {
                        let (p, q) = (
                            broadcast_get(&a, &sa, &os, i),
                            broadcast_get(&b, &sb, &os, i),
                        );
                        clamp(
                            if matches!(n.op, Op::Add { .. }) {
                                p + q
                            } else {
                                p * q
                            },
                            *activation,
                        )
                    })
                    .collect()
            }
            Op::Unary(u) => x(0).iter().map(|&v| u.apply(v)).collect(),
            Op::MaxPool { window } => {
                window_op(&x(0), nchw(&xs(0)), nchw(&os), window, |_, _, _, it| {
                    it.flatten().fold(f32::NEG_INFINITY, f32::max)
                })
            }
            Op::AvgPool {
                window,
                count_include_pad,
            } => {
                let s = nchw(&xs(0));
                let (ph, pw) = (
                    s[2] + window.pads[0] + window.pads[2],
                    s[3] + window.pads[1] + window.pads[3],
                );
                window_op(&x(0), s, nchw(&os), window, |_, oy, ox, it| {
                    let vals: Vec<Option<f32>> = it.collect();
                    let sum: f32 = vals.iter().flatten().sum();
                    let count = if *count_include_pad {
                        // Window positions inside the padded input.
                        let mut c = 0;
                        for ky in 0..window.kernel[0] {
                            for kx in 0..window.kernel[1] {
                                let py = oy * window.strides[0] + ky * window.dilations[0];
                                let px = ox * window.strides[1] + kx * window.dilations[1];
                                if py < ph && px < pw {
                                    c += 1;
                                }
                            }
                        }
                        c
                    } else {
                        vals.iter().flatten().count()
                    };
                    sum / count as f32
                })
            }
            Op::Softmax { axis } => {
                let s = xs(0);
                let (outer, dim, inner): (usize, usize, usize) = (
                    s[..*axis].iter().product(),
                    s[*axis],
                    s[axis + 1..].iter().product(),
                );
                let xv = x(0);
                let mut out = vec![0.0; xv.len()];
                for o in 0..outer {
                    for i in 0..inner {
                        let idx = |d: usize| (o * dim + d) * inner + i;
                        let m = (0..dim)
                            .map(|d| xv[idx(d)])
                            .fold(f32::NEG_INFINITY, f32::max);
                        let sum: f32 = (0..dim).map(|d| (xv[idx(d)] - m).exp()).sum();
                        for d in 0..dim {
                            out[idx(d)] = (xv[idx(d)] - m).exp() / sum;
                        }
                    }
                }
                out
            }
            Op::Concat { axis } => {
                let outer: usize = os[..*axis].iter().product();
                let mut out = Vec::new();
                for o in 0..outer {
                    for k in 0..n.inputs.len() {
                        let chunk: usize = xs(k)[*axis..].iter().product();
                        out.extend_from_slice(&x(k)[o * chunk..(o + 1) * chunk]);
                    }
                }
                out
            }
            Op::Pad { pads, value } => {
                let s = xs(0);
                let r = s.len();
                let xv = x(0);
                let (ost, ist) = (strides(&os), strides(&s));
                let total: usize = os.iter().product();
                (0..total)
                    .map(|flat| {
                        let mut off = 0;
                        for a in 0..r {
                            let i = (flat / ost[a]) % os[a];
                            if i < pads[a] || i >= pads[a] + s[a] {
                                return *value;
                            }
                            off += (i - pads[a]) * ist[a];
                        }
                        xv[off]
                    })
                    .collect()
            }
            Op::Reshape => x(0),
            Op::Recurrent(r) => r.simulate(&x(0), &mut Default::default()),
        };
        assert_eq!(
            y.len(),
            os.iter().product::<usize>(),
            "node {} produced the wrong size",
            n.name
        );
        vals[n.output] = Some(y);
    }
    vals
}

/// The value of the graph's first output.
pub fn eval_output(g: &Graph, input: &[f32]) -> Vec<f32> {
    eval_ir(g, input)[g.outputs[0]].clone().unwrap()
}
