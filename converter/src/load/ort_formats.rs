//! ONNX Runtime's two other quantized formats, rewritten to the QDQ form
//! [`super::qdq::strip`] imports, so that one mechanism keeps a model's own
//! int8 weights and encodings whichever format carries them:
//! - **QOperator** (`quantize_static(quant_format=QuantFormat.QOperator)`):
//!   QLinearConv, QLinearMatMul and ONNX Runtime's `com.microsoft` QGemm,
//!   QLinearAdd, QLinearMul, QLinearConcat, QLinearAveragePool,
//!   QLinearGlobalAveragePool, QLinearSigmoid, QLinearLeakyRelu and
//!   QLinearSoftmax each become a DequantizeLinear of each quantized input,
//!   the float op, and a QuantizeLinear of its output, all with the node's
//!   own scales and zero points. An int32 bias becomes its float value
//!   `B · x_scale · w_scale`, which is what the integer kernel adds.
//! - **dynamic** (`quantize_dynamic`): a ConvInteger or MatMulInteger that
//!   reads a DynamicQuantizeLinear, with the Cast and the product by the two
//!   scales after it, computes `x · dequantize(w)`: it becomes that float
//!   Conv or MatMul, reading its int8 weights through a DequantizeLinear (so
//!   medq keeps them exactly). A `com.microsoft` DynamicQuantizeLSTM becomes
//!   an LSTM of its dequantized weights. The activation ranges of a dynamic
//!   model are measured at run time, so they are calibrated (`--calib`).
//!
//! A pattern this does not know is refused, naming the node.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use super::node::NodeCtx;
use super::qdq::{float_tensor, Consts};
use super::tensor;
use crate::error::ConvertError;

const MS_DOMAIN: &str = "com.microsoft";

/// What [`as_qdq`] does with a node of ONNX Runtime's formats.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    QLinearConv,
    QLinearMatMul,
    QGemm,
    QLinearConcat,
    QLinearSoftmax,
    /// A `com.microsoft` QLinear op of `(x, scale, zero point)` triplets,
    /// then the output's scale and zero point: its float op and arity.
    QLinearTriplets(&'static str, usize),
    /// ConvInteger / MatMulInteger, read through their DynamicQuantizeLinear.
    IntegerProduct,
    /// Removed once its products are rewritten.
    DynamicQuantizeLinear,
    DynamicQuantizeLstm,
}

fn kind(n: &NodeProto) -> Option<Kind> {
    let onnx = n.domain.is_empty() || n.domain == "ai.onnx";
    let ms = n.domain == MS_DOMAIN;
    Some(match (onnx, ms, n.op_type.as_str()) {
        (true, _, "QLinearConv") => Kind::QLinearConv,
        (true, _, "QLinearMatMul") => Kind::QLinearMatMul,
        (true, _, "ConvInteger" | "MatMulInteger") => Kind::IntegerProduct,
        (true, _, "DynamicQuantizeLinear") => Kind::DynamicQuantizeLinear,
        (_, true, "QGemm") => Kind::QGemm,
        (_, true, "QLinearConcat") => Kind::QLinearConcat,
        (_, true, "QLinearSoftmax") => Kind::QLinearSoftmax,
        (_, true, "DynamicQuantizeLSTM") => Kind::DynamicQuantizeLstm,
        (_, true, "QLinearAdd") => Kind::QLinearTriplets("Add", 2),
        (_, true, "QLinearMul") => Kind::QLinearTriplets("Mul", 2),
        (_, true, "QLinearSigmoid") => Kind::QLinearTriplets("Sigmoid", 1),
        (_, true, "QLinearLeakyRelu") => Kind::QLinearTriplets("LeakyRelu", 1),
        (_, true, "QLinearAveragePool") => Kind::QLinearTriplets("AveragePool", 1),
        (_, true, "QLinearGlobalAveragePool") => Kind::QLinearTriplets("GlobalAveragePool", 1),
        _ => return None,
    })
}

/// `g` with its QOperator and dynamically quantized nodes rewritten as QDQ
/// (see the module documentation); `None` when it has none.
pub fn as_qdq(g: &GraphProto, opset: i64) -> Result<Option<GraphProto>, ConvertError> {
    if !g.node.iter().any(|n| kind(n).is_some()) {
        return Ok(None);
    }
    let mut r = Rewrite::new(g);
    for (i, node) in g.node.iter().enumerate() {
        if r.removed.contains(&i) {
            continue;
        }
        let mut node = node.clone();
        // Name every node as the loader would at its original position:
        // inserting nodes must not rename the unnamed ones.
        node.name = NodeCtx::new(&node, i, opset).name;
        let ctx = NodeCtx::new(&g.node[i], i, opset);
        match kind(&node) {
            Some(Kind::QLinearConv) => r.qlinear_conv(&ctx, &node)?,
            Some(Kind::QLinearMatMul) => r.qlinear_matmul(&ctx, &node)?,
            Some(Kind::QGemm) => r.qgemm(&ctx, &node)?,
            Some(Kind::QLinearConcat) => r.qlinear_concat(&ctx, &node)?,
            Some(Kind::QLinearSoftmax) => r.qlinear_softmax(&ctx, &node)?,
            Some(Kind::QLinearTriplets(op, arity)) => r.qlinear_triplets(&ctx, &node, op, arity)?,
            Some(Kind::IntegerProduct) => r.integer_product(i, &ctx, &node)?,
            Some(Kind::DynamicQuantizeLstm) => r.dynamic_lstm(&ctx, &node)?,
            Some(Kind::DynamicQuantizeLinear) | None => r.nodes.push(node),
        }
    }
    r.finish(opset).map(Some)
}

struct Rewrite<'g> {
    g: &'g GraphProto,
    consts: Consts<'g>,
    /// Readers of each tensor name: node indices.
    readers: HashMap<&'g str, Vec<usize>>,
    producers: HashMap<&'g str, usize>,
    /// Original nodes already replaced (a dynamic pattern's Cast and Mul).
    removed: HashSet<usize>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// The float tensor a (tensor, scale, zero point) dequantizes to.
    dequantized: HashMap<[String; 3], String>,
}

impl<'g> Rewrite<'g> {
    fn new(g: &'g GraphProto) -> Rewrite<'g> {
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for name in n.input.iter().filter(|n| !n.is_empty()) {
                readers.entry(name.as_str()).or_default().push(i);
            }
        }
        Rewrite {
            g,
            consts: Consts::new(g),
            readers,
            producers: crate::ops::pointwise::producers(g),
            removed: HashSet::new(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            dequantized: HashMap::new(),
        }
    }

    /// The float tensor of quantized `x` with `scale` and `zero_point`
    /// (tensor names; the zero point may be absent), through one
    /// DequantizeLinear per distinct triple; `axis` for per-channel scales.
    fn dequantize(&mut self, node: &str, x: &str, scale: &str, zp: &str, axis: i64) -> String {
        let key = [x.to_string(), scale.to_string(), zp.to_string()];
        if let Some(f) = self.dequantized.get(&key) {
            return f.clone();
        }
        let float = format!("{x}/medq_float{}", self.dequantized.len());
        let mut inputs = vec![x.to_string(), scale.to_string()];
        if !zp.is_empty() {
            inputs.push(zp.to_string());
        }
        self.nodes.push(NodeProto {
            name: format!("{node}/medq_dq{}", self.dequantized.len()),
            op_type: "DequantizeLinear".into(),
            input: inputs,
            output: vec![float.clone()],
            attribute: vec![int_attr("axis", axis)],
            ..NodeProto::default()
        });
        self.dequantized.insert(key, float.clone());
        float
    }

    /// A QuantizeLinear of `float` into `y`, the QOperator node's output.
    fn quantize(&mut self, node: &str, float: &str, scale: &str, zp: &str, y: &str) {
        let mut inputs = vec![float.to_string(), scale.to_string()];
        if !zp.is_empty() {
            inputs.push(zp.to_string());
        }
        self.nodes.push(NodeProto {
            name: format!("{node}/medq_q"),
            op_type: "QuantizeLinear".into(),
            input: inputs,
            output: vec![y.to_string()],
            ..NodeProto::default()
        });
    }

    /// The float op `op` of QOperator `node`, reading `inputs` and writing
    /// `y` through a QuantizeLinear with `(y_scale, y_zp)`; or writing `y`
    /// itself when the node gives a float output (`y_scale` empty).
    fn float_op(
        &mut self,
        node: &NodeProto,
        op: &str,
        inputs: Vec<String>,
        attributes: Vec<AttributeProto>,
        (y_scale, y_zp): (&str, &str),
    ) {
        let y = node.output.first().cloned().unwrap_or_default();
        let float = if y_scale.is_empty() {
            y.clone()
        } else {
            format!("{y}/medq_float")
        };
        self.nodes.push(NodeProto {
            name: node.name.clone(),
            op_type: op.into(),
            input: inputs,
            output: vec![float.clone()],
            attribute: attributes,
            ..NodeProto::default()
        });
        if !y_scale.is_empty() {
            self.quantize(&node.name, &float, y_scale, y_zp, &y);
        }
    }

    /// A constant's decoded value.
    fn constant(
        &self,
        ctx: &NodeCtx,
        name: &str,
        what: &str,
    ) -> Result<tensor::Const, ConvertError> {
        let t = self.consts.get(name).ok_or_else(|| {
            ctx.err(format!(
                "its {what} \"{name}\" is computed; medq imports constant weights and quantization parameters"
            ))
        })?;
        tensor::from_proto(t).map_err(|e| ctx.err(format!("{what} \"{name}\": {e}")))
    }

    /// The float value of an int32 bias `b` of a product of `x` (scale
    /// `x_scale`) and `w` (scales `w_scale`, per tensor or per output
    /// channel along `b`'s last axis): `b · x_scale · w_scale`, what the
    /// integer kernel adds to its int32 sum.
    fn float_bias(
        &mut self,
        ctx: &NodeCtx,
        b: &str,
        x_scale: &str,
        w_scale: &str,
    ) -> Result<String, ConvertError> {
        let bias = self.constant(ctx, b, "bias")?;
        let values = bias
            .as_i64()
            .ok_or_else(|| ctx.err(format!("the bias \"{b}\" is not int32")))?;
        let xs = self.constant(ctx, x_scale, "input scale")?.to_f32();
        let ws = self.constant(ctx, w_scale, "weight scale")?.to_f32();
        let (&[xs], channels) = (&xs[..], ws.len()) else {
            return Err(ctx.err("the input scale is not one value"));
        };
        let last = bias.shape.last().copied().unwrap_or(1);
        if channels != 1 && channels != last {
            return Err(ctx.err(format!(
                "{channels} weight scales for a bias of shape {:?}",
                bias.shape
            )));
        }
        let data = values
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * (xs * ws[if channels == 1 { 0 } else { i % last }]))
            .collect();
        let name = format!("{b}/medq_float");
        self.initializers
            .push(float_tensor(&name, &bias.shape, data));
        Ok(name)
    }

    /// The number of dims of a constant, for a per-channel axis.
    fn rank(&self, name: &str) -> usize {
        self.consts.get(name).map_or(0, |t| t.dims.len())
    }

    /// QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [B].
    fn qlinear_conv(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = inputs(ctx, node, 8)?;
        let x = self.dequantize(&node.name, &i[0], &i[1], &i[2], 1);
        let w = self.dequantize(&node.name, &i[3], &i[4], &i[5], 0);
        let mut args = vec![x, w];
        if let Some(b) = node.input.get(8).filter(|b| !b.is_empty()) {
            args.push(self.float_bias(ctx, b, &i[1], &i[4])?);
        }
        self.float_op(node, "Conv", args, node.attribute.clone(), (&i[6], &i[7]));
        Ok(())
    }

    /// QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp; a
    /// constant `b` may have one scale per column.
    fn qlinear_matmul(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = inputs(ctx, node, 8)?;
        let a = self.dequantize(&node.name, &i[0], &i[1], &i[2], 1);
        let columns = self.rank(&i[3]).max(1) as i64 - 1;
        let b = self.dequantize(&node.name, &i[3], &i[4], &i[5], columns);
        self.float_op(node, "MatMul", vec![a, b], Vec::new(), (&i[6], &i[7]));
        Ok(())
    }

    /// QGemm: A, a_scale, a_zp, B, b_scale, b_zp, [C int32], [y_scale,
    /// y_zp] (a float output without them).
    fn qgemm(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = inputs(ctx, node, 6)?;
        if ctx.float("alpha", 1.0)? != 1.0 {
            return Err(ctx.attr_err(
                "alpha",
                "medq imports QGemm with alpha 1 (whether alpha scales the int32 C is not specified)",
            ));
        }
        let trans_b = ctx.int("transB", 0)?;
        let a = self.dequantize(&node.name, &i[0], &i[1], &i[2], 1);
        let b = self.dequantize(&node.name, &i[3], &i[4], &i[5], i64::from(trans_b == 0));
        let mut args = vec![a, b];
        if let Some(c) = node.input.get(6).filter(|c| !c.is_empty()) {
            args.push(self.float_bias(ctx, c, &i[1], &i[4])?);
        }
        let arg = |k: usize| node.input.get(k).map_or("", String::as_str);
        let attributes = node
            .attribute
            .iter()
            .filter(|a| matches!(a.name.as_str(), "transA" | "transB"))
            .cloned()
            .collect();
        self.float_op(node, "Gemm", args, attributes, (arg(7), arg(8)));
        Ok(())
    }

    /// QLinearAdd, QLinearMul (two triplets) and the one-input ops: `op` of
    /// `arity` triplets.
    fn qlinear_triplets(
        &mut self,
        ctx: &NodeCtx,
        node: &NodeProto,
        op: &str,
        arity: usize,
    ) -> Result<(), ConvertError> {
        if ctx.int("channels_last", 0)? != 0 {
            return Err(ctx.attr_err(
                "channels_last",
                "medq imports channels-first (NCHW) pools only",
            ));
        }
        let i = inputs(ctx, node, 3 * arity + 1)?;
        let args = (0..arity)
            .map(|k| self.dequantize(&node.name, &i[3 * k], &i[3 * k + 1], &i[3 * k + 2], 1))
            .collect();
        let attributes = node
            .attribute
            .iter()
            .filter(|a| a.name != "channels_last")
            .cloned()
            .collect();
        let zp = node.input.get(3 * arity + 1).map_or("", String::as_str);
        self.float_op(node, op, args, attributes, (&i[3 * arity], zp));
        Ok(())
    }

    /// QLinearConcat: y_scale, y_zp, then (x, x_scale, x_zp) per input.
    fn qlinear_concat(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = inputs(ctx, node, 2)?;
        let parts = &node.input[2..];
        if parts.is_empty() || !parts.len().is_multiple_of(3) {
            return Err(ctx.err(format!(
                "expected (tensor, scale, zero point) triplets after the output's scale and zero \
                 point, found {} inputs",
                parts.len()
            )));
        }
        let args = parts
            .chunks(3)
            .map(|t| self.dequantize(&node.name, &t[0], &t[1], &t[2], 1))
            .collect();
        self.float_op(node, "Concat", args, node.attribute.clone(), (&i[0], &i[1]));
        Ok(())
    }

    /// QLinearSoftmax: x, x_scale, x_zp, y_scale, y_zp; its `opset`
    /// attribute says which Softmax it is, and must be the graph's.
    fn qlinear_softmax(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = inputs(ctx, node, 5)?;
        let era = ctx.int("opset", ctx.opset)?;
        if (era < 13) != (ctx.opset < 13) {
            return Err(ctx.attr_err(
                "opset",
                format!(
                    "a Softmax of opset {era} in a graph of opset {}: their `axis` means \
                     different things, and medq reads the graph's",
                    ctx.opset
                ),
            ));
        }
        let x = self.dequantize(&node.name, &i[0], &i[1], &i[2], 1);
        let attributes = node
            .attribute
            .iter()
            .filter(|a| a.name == "axis")
            .cloned()
            .collect();
        self.float_op(node, "Softmax", vec![x], attributes, (&i[3], &i[4]));
        Ok(())
    }

    /// ConvInteger / MatMulInteger `(x_q, w, x_zp, w_zp)` with `x_q` from a
    /// DynamicQuantizeLinear, read by one Cast to float, read by one Mul by
    /// `x_scale · w_scale`: the float product of `x` and the dequantized
    /// weights, written where that Mul wrote.
    fn integer_product(
        &mut self,
        index: usize,
        ctx: &NodeCtx,
        node: &NodeProto,
    ) -> Result<(), ConvertError> {
        let expected = |what: &str| {
            ctx.err(format!(
                "{what}; medq imports ONNX Runtime's dynamic quantization: DynamicQuantizeLinear → \
                 {} (constant int8 weights) → Cast to float → Mul by the product of the two scales",
                ctx.op
            ))
        };
        let arg = |k: usize| node.input.get(k).map_or("", String::as_str);
        let dynamic = self
            .producers
            .get(arg(0))
            .map(|&p| &self.g.node[p])
            .filter(|p| p.op_type == "DynamicQuantizeLinear" && p.output.len() == 3)
            .ok_or_else(|| expected("its input does not come from a DynamicQuantizeLinear"))?;
        if arg(2) != dynamic.output[2] {
            return Err(expected(
                "its input zero point is not the DynamicQuantizeLinear's",
            ));
        }
        let only_reader = |name: &str, op: &str| -> Option<usize> {
            match self.readers.get(name).map(Vec::as_slice) {
                Some(&[r]) if self.g.node[r].op_type == op => Some(r),
                _ => None,
            }
        };
        let out = node.output.first().map_or("", String::as_str);
        let cast = only_reader(out, "Cast")
            .filter(|&c| {
                NodeCtx::new(&self.g.node[c], c, ctx.opset)
                    .int("to", 0)
                    .ok()
                    == Some(DataType::Float as i64)
            })
            .ok_or_else(|| expected("its int32 output is not read by one Cast to float"))?;
        let cast_out = self.g.node[cast].output.first().map_or("", String::as_str);
        let mul = only_reader(cast_out, "Mul")
            .ok_or_else(|| expected("the Cast is not read by one Mul"))?;
        let m = &self.g.node[mul];
        let scales = m.input.iter().find(|n| n.as_str() != cast_out);
        let w_scale = scales
            .and_then(|s| self.producers.get(s.as_str()))
            .map(|&p| &self.g.node[p])
            .filter(|p| p.op_type == "Mul" && p.input.contains(&dynamic.output[1]))
            .and_then(|p| p.input.iter().find(|n| **n != dynamic.output[1]))
            .filter(|s| self.consts.get(s).is_some())
            .ok_or_else(|| {
                expected("the Mul after the Cast is not by the input scale times a constant weight scale")
            })?
            .clone();
        if self.consts.get(arg(1)).is_none() {
            return Err(expected("its weights are computed"));
        }
        let per_channel = self
            .consts
            .get(&w_scale)
            .is_some_and(|s| s.dims.iter().product::<i64>() > 1);
        let axis = match (ctx.op, per_channel) {
            ("MatMulInteger", true) => self.rank(arg(1)).max(1) as i64 - 1,
            _ => 0,
        };
        let w = self.dequantize(&node.name, arg(1), &w_scale, arg(3), axis);
        let x = dynamic.input.first().cloned().unwrap_or_default();
        let op = if ctx.op == "ConvInteger" {
            "Conv"
        } else {
            "MatMul"
        };
        self.nodes.push(NodeProto {
            name: node.name.clone(),
            op_type: op.into(),
            input: vec![x, w],
            output: m.output.clone(),
            attribute: node.attribute.clone(),
            ..NodeProto::default()
        });
        self.removed.extend([index, cast, mul]);
        Ok(())
    }

    /// DynamicQuantizeLSTM: X, W, R, B, sequence_lens, initial_h,
    /// initial_c, P, W_scale, W_zp, R_scale, R_zp, with W `[dirs, input,
    /// 4·hidden]` and R `[dirs, hidden, 4·hidden]` (transposed from ONNX's
    /// LSTM), each scale per direction or per direction and gate row: an
    /// LSTM of the dequantized, transposed weights.
    fn dynamic_lstm(&mut self, ctx: &NodeCtx, node: &NodeProto) -> Result<(), ConvertError> {
        let i = node.input.clone();
        if i.len() != 12 || [1, 2, 8, 9, 10, 11].iter().any(|&k| i[k].is_empty()) {
            return Err(ctx.err(
                "expected 12 inputs, with the weights W and R and their scales and zero points",
            ));
        }
        let mut args: Vec<String> = i[..8].to_vec();
        for (k, (w, s, zp)) in [(1, (8, 9)), (2, (10, 11))]
            .into_iter()
            .map(|(k, (s, z))| (k, (&i[k], &i[s], &i[z])))
        {
            let q = self.constant(ctx, w, "weights")?;
            let values = q
                .as_i64()
                .ok_or_else(|| ctx.err(format!("the weights \"{w}\" are not integer")))?;
            let &[dirs, inner, rows] = &q.shape[..] else {
                return Err(ctx.err(format!("the weights \"{w}\" are not 3-D: {:?}", q.shape)));
            };
            let scale = self.constant(ctx, s, "weight scale")?.to_f32();
            let zero = self.constant(ctx, zp, "weight zero point")?;
            let zero = zero.as_i64().unwrap_or(&[]).to_vec();
            let per_row = scale.len() == dirs * rows;
            if !(per_row || scale.len() == dirs) || zero.len() != scale.len() {
                return Err(ctx.err(format!(
                    "{} scales and {} zero points for weights of shape {:?} (one per direction, or \
                     per direction and row)",
                    scale.len(),
                    zero.len(),
                    q.shape
                )));
            }
            // ONNX's LSTM weights are [dirs, rows, inner].
            let mut data = vec![0.0f32; values.len()];
            for d in 0..dirs {
                for r in 0..rows {
                    let c = if per_row { d * rows + r } else { d };
                    for j in 0..inner {
                        let v = values[(d * inner + j) * rows + r] - zero[c];
                        data[(d * rows + r) * inner + j] = v as f32 * scale[c];
                    }
                }
            }
            let name = format!("{w}/medq_float");
            self.initializers
                .push(float_tensor(&name, &[dirs, rows, inner], data));
            args[k] = name;
        }
        while args.last().is_some_and(String::is_empty) {
            args.pop();
        }
        self.nodes.push(NodeProto {
            name: node.name.clone(),
            op_type: "LSTM".into(),
            input: args,
            output: node.output.clone(),
            attribute: node.attribute.clone(),
            ..NodeProto::default()
        });
        Ok(())
    }

    /// The rewritten graph, without the DynamicQuantizeLinear nodes and
    /// scale products no node reads any more.
    fn finish(self, opset: i64) -> Result<GraphProto, ConvertError> {
        let mut nodes = self.nodes;
        let outputs: HashSet<&str> = self.g.output.iter().map(|o| o.name.as_str()).collect();
        loop {
            let read: HashSet<&str> = nodes
                .iter()
                .flat_map(|n| n.input.iter().map(String::as_str))
                .chain(outputs.iter().copied())
                .collect();
            let dead = |n: &NodeProto| {
                matches!(n.op_type.as_str(), "DynamicQuantizeLinear" | "Mul")
                    && n.output.iter().all(|o| !read.contains(o.as_str()))
            };
            let before = nodes.len();
            let kept: Vec<NodeProto> = nodes.iter().filter(|n| !dead(n)).cloned().collect();
            nodes = kept;
            if nodes.len() == before {
                break;
            }
        }
        if let Some((i, n)) = nodes
            .iter()
            .enumerate()
            .find(|(_, n)| n.op_type == "DynamicQuantizeLinear")
        {
            let reader = nodes
                .iter()
                .find(|r| r.input.iter().any(|x| n.output.contains(x)))
                .map_or(String::new(), |r| {
                    format!(" (read by {} \"{}\")", r.op_type, r.name)
                });
            return Err(NodeCtx::new(n, i, opset).err(format!(
                "its output is read by an op medq does not import from dynamic quantization{reader}; \
                 medq imports its ConvInteger and MatMulInteger products"
            )));
        }
        let mut out = self.g.clone();
        out.node = nodes;
        out.initializer.extend(self.initializers);
        // Drop the declarations of the tensors that went (the int32 products).
        let written: HashSet<&str> = out
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .collect();
        let kept = self
            .g
            .value_info
            .iter()
            .filter(|v| written.contains(v.name.as_str()))
            .cloned()
            .collect();
        out.value_info = kept;
        Ok(out)
    }
}

/// The node's first `n` inputs, which must all be given.
fn inputs(ctx: &NodeCtx, node: &NodeProto, n: usize) -> Result<Vec<String>, ConvertError> {
    let given = &node.input[..n.min(node.input.len())];
    if given.len() < n || given.iter().any(String::is_empty) {
        return Err(ctx.err(format!(
            "expected {n} inputs (tensors with their scales and zero points), found {}",
            node.input.iter().filter(|i| !i.is_empty()).count()
        )));
    }
    Ok(given.to_vec())
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..AttributeProto::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{tensor_proto::DataType, ValueInfoProto};

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: format!("{op}_node"),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..NodeProto::default()
        }
    }

    fn ints(name: &str, dtype: DataType, dims: &[i64], v: &[i32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: dtype as i32,
            int32_data: v.to_vec(),
            ..TensorProto::default()
        }
    }

    fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        float_tensor(
            name,
            &dims.iter().map(|&d| d as usize).collect::<Vec<_>>(),
            v.to_vec(),
        )
    }

    fn io(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            ..ValueInfoProto::default()
        }
    }

    /// `x → Q → QLinearConv (two channels, an int32 bias) → DQ → y`.
    fn qlinear_conv() -> GraphProto {
        GraphProto {
            node: vec![
                node("QuantizeLinear", &["x", "xs", "xz"], &["xq"]),
                node(
                    "QLinearConv",
                    &["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                    &["yq"],
                ),
                node("DequantizeLinear", &["yq", "ys", "yz"], &["y"]),
            ],
            initializer: vec![
                floats("xs", &[], &[0.5]),
                ints("xz", DataType::Int8, &[], &[3]),
                ints("w", DataType::Int8, &[2, 1, 1], &[10, -20]),
                floats("ws", &[2], &[0.25, 0.125]),
                ints("wz", DataType::Int8, &[2], &[0, 0]),
                floats("ys", &[], &[0.1]),
                ints("yz", DataType::Int8, &[], &[0]),
                ints("b", DataType::Int32, &[2], &[8, -16]),
            ],
            input: vec![io("x")],
            output: vec![io("y")],
            ..GraphProto::default()
        }
    }

    #[test]
    fn a_qlinear_conv_becomes_a_float_conv_between_its_own_encodings() {
        let g = as_qdq(&qlinear_conv(), 13).unwrap().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "QuantizeLinear",
                "DequantizeLinear",
                "DequantizeLinear",
                "Conv",
                "QuantizeLinear",
                "DequantizeLinear"
            ]
        );
        let conv = &g.node[3];
        assert_eq!(conv.name, "QLinearConv_node");
        // The bias is what the integer kernel adds: b · x_scale · w_scale.
        let bias = g
            .initializer
            .iter()
            .find(|t| t.name == conv.input[2])
            .unwrap();
        assert_eq!(bias.float_data, [8.0 * 0.5 * 0.25, -16.0 * 0.5 * 0.125]);
        // The pairs strip: the weights keep their grid, y its encoding.
        let (float, fixed) = crate::load::qdq::strip(&qlinear_conv(), 13)
            .unwrap()
            .unwrap();
        assert!(float.node.iter().all(|n| n.op_type == "Conv"));
        assert_eq!(fixed.weight_scales["QLinearConv_node"], [0.25, 0.125]);
        let y = fixed.activation("y").unwrap();
        assert_eq!((y.scale, y.zero_point), (0.1, 0));
    }

    /// `x → DynamicQuantizeLinear → MatMulInteger → Cast → Mul(x_scale · w_scale) → y`.
    fn dynamic_matmul(cast_to: i64) -> GraphProto {
        let mut cast = node("Cast", &["p"], &["pf"]);
        cast.attribute = vec![int_attr("to", cast_to)];
        GraphProto {
            node: vec![
                node("DynamicQuantizeLinear", &["x"], &["xq", "xs", "xz"]),
                node("Mul", &["xs", "ws"], &["s"]),
                node("MatMulInteger", &["xq", "w", "xz", "wz"], &["p"]),
                cast,
                node("Mul", &["pf", "s"], &["y"]),
            ],
            initializer: vec![
                ints("w", DataType::Int8, &[2, 2], &[1, 2, 3, 4]),
                floats("ws", &[2], &[0.5, 0.25]),
                ints("wz", DataType::Int8, &[2], &[0, 0]),
            ],
            input: vec![io("x")],
            output: vec![io("y")],
            ..GraphProto::default()
        }
    }

    #[test]
    fn a_dynamic_product_is_the_float_product_of_its_int8_weights() {
        let (float, fixed) = crate::load::qdq::strip(&dynamic_matmul(1), 13)
            .unwrap()
            .unwrap();
        let ops: Vec<&str> = float.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["MatMul"]);
        assert_eq!(float.node[0].input[0], "x");
        assert_eq!(float.node[0].output, ["y"]);
        // Per-column scales, the weights' own.
        assert_eq!(fixed.weight_scales["MatMulInteger_node"], [0.5, 0.25]);
        assert!(fixed.activations.is_empty(), "ranges come from calibration");
    }

    #[test]
    fn a_dynamic_product_off_the_pattern_is_refused_at_the_node() {
        // A Cast to int32 is not the dequantization ORT writes.
        let err = as_qdq(&dynamic_matmul(6), 13).unwrap_err().to_string();
        assert!(err.contains("MatMulInteger_node"), "{err}");
        assert!(err.contains("one Cast to float"), "{err}");
    }

    #[test]
    fn a_softmax_of_another_opset_era_is_refused() {
        let mut softmax = node("QLinearSoftmax", &["xq", "xs", "xz", "ys", "yz"], &["yq"]);
        softmax.domain = MS_DOMAIN.into();
        softmax.attribute = vec![int_attr("opset", 11)];
        let g = GraphProto {
            node: vec![
                node("QuantizeLinear", &["x", "xs", "xz"], &["xq"]),
                softmax,
                node("DequantizeLinear", &["yq", "ys", "yz"], &["y"]),
            ],
            ..GraphProto::default()
        };
        let err = as_qdq(&g, 13).unwrap_err().to_string();
        assert!(
            err.contains("QLinearSoftmax_node") && err.contains("opset 11"),
            "{err}"
        );
    }
}
