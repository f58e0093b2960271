//! Pre-quantized (QDQ) models: ONNX Runtime's `quantize_static` in QDQ format
//! and quantization-aware-training exports carry their own int8 encodings as
//! `QuantizeLinear → DequantizeLinear` pairs on activations and
//! `DequantizeLinear` nodes on int8 weights.
//!
//! [`strip`] turns such a graph back into a float graph the loader takes,
//! and records what the pairs fixed ([`FixedQuant`]):
//! - a `DequantizeLinear` of a constant becomes a float initializer (the
//!   dequantized values, computed as ONNX does: `(q − zero_point) · scale` in
//!   `f32`); when it is the weight of a Conv, Gemm or MatMul, its scales are
//!   recorded per output channel for that node, so the quantizer puts the
//!   weights back on exactly the same int8 grid ([`weights_on_grid`]);
//! - a `QuantizeLinear` whose output only feeds `DequantizeLinear` nodes with
//!   the same parameters is removed with them, its consumers read its input
//!   again, and that tensor's scale and zero point are recorded: the quantizer
//!   uses them instead of a calibrated range;
//! - ops that only move integers between a QuantizeLinear and a
//!   DequantizeLinear (tf2onnx's conversion of a fully-integer TFLite file
//!   runs its Transposes, Reshapes and Concats on int8 tensors) are first
//!   moved onto float values between pairs of their own
//!   (`float_int8_movers`);
//! - PyTorch's QAT export: a `QuantizeLinear → DequantizeLinear` of a float
//!   weight is the DQ of the integers ONNX would compute (`constant_pair`),
//!   parameters shared through Identity nodes are constants, and a ReLU (or
//!   pool, or view) the model leaves float after a pair keeps that pair's
//!   encoding, and a view or Pad it leaves float before a pair takes that
//!   pair's (`keep_encodings_through_moves`);
//! - Brevitas' QCDQ, a Clip of the codes between a QuantizeLinear and its
//!   DequantizeLinears, is the pair with the values clamped (`qcdq_as_qdq`);
//! - ONNX Runtime's QOperator and dynamic formats are first rewritten to
//!   this form (`load/ort_formats.rs`).
//!
//! medq's contract is int8 with symmetric per-channel weights and per-tensor
//! activations. uint8 activations are re-expressed exactly (`q − 128`, zero
//! point − 128), and so are weights whose `q − zero_point` fits int8 (uint8
//! weights with zero point 128, or any zero point the values leave room
//! for). 16-bit activations (ONNX Runtime's A16W8) are medq's int16 ones
//! (`wide_activations`), symmetric: another zero point is re-expressed on
//! the symmetric grid over the same range, and 16-bit weights (A16W16) are
//! medq's int16 weights of an int16 layer. Anything else (weights beyond
//! that, per-channel activations, 4-bit types, blocked
//! quantization, a `DequantizeLinear` of a computed tensor no
//! `QuantizeLinear` produced) is refused, naming the node and the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};

use super::node::{norm_axis, NodeCtx};
use super::tensor;
use crate::error::ConvertError;
use crate::ir::{Array, Graph, Node, Op, TensorId};
use crate::ops::conv::Conv;
use crate::ops::pool::AvgPool;
use crate::quantize::QParams;

/// The encodings a QDQ model fixes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixedQuant {
    /// Activation encodings, by tensor name.
    pub activations: BTreeMap<String, QParams>,
    /// Weight scales of Conv, Gemm and MatMul nodes, by node name, one per
    /// output channel (axis 0 of the IR's weights).
    pub weight_scales: BTreeMap<String, Vec<f32>>,
    /// The activations the model quantizes to 16 bits: medq's int16 ones.
    pub wide: BTreeSet<String>,
    /// The nodes of [`Self::weight_scales`] whose weights the model
    /// quantizes to 16 bits (ONNX Runtime's A16W16): medq's int16 weights.
    pub wide_weights: BTreeSet<String>,
}

impl FixedQuant {
    pub fn is_empty(&self) -> bool {
        self.activations.is_empty() && self.weight_scales.is_empty()
    }

    /// The encoding the model fixes for `tensor`, if any.
    pub fn activation(&self, tensor: &str) -> Option<QParams> {
        self.activations.get(tensor).copied()
    }
}

fn is_qdq(node: &NodeProto) -> bool {
    node.domain.is_empty() && matches!(node.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear")
}

/// The scale, zero point and integer type of a Q or DQ node.
struct Params {
    scale: Vec<f32>,
    zero_point: Vec<i64>,
    dtype: DataType,
    /// The `axis` attribute, for per-axis scales.
    axis: i64,
}

impl Params {
    fn per_tensor(&self) -> bool {
        self.scale.len() == 1
    }

    /// The axis of `shape` the scales run along (0 for one scale).
    fn channel_axis(&self, ctx: &NodeCtx, shape: &[usize]) -> Result<usize, ConvertError> {
        if self.per_tensor() {
            return Ok(0);
        }
        norm_axis(self.axis, shape.len())
            .filter(|&a| shape[a] == self.scale.len())
            .ok_or_else(|| {
                ctx.attr_err(
                    "axis",
                    format!(
                        "{} scales do not fit axis {} of shape {shape:?}",
                        self.scale.len(),
                        self.axis
                    ),
                )
            })
    }

    /// The channel of each flat index of a tensor of `shape` whose scales
    /// run along `axis` (see [`Self::channel_axis`]).
    fn channel_of(&self, shape: &[usize], axis: usize) -> impl Fn(usize) -> usize {
        let inner: usize = shape.iter().skip(axis + 1).product::<usize>().max(1);
        let channels = self.scale.len().max(1);
        move |i| (i / inner) % channels
    }

    /// The zero point of channel `c` (a scalar zero point serves all).
    fn zero_point(&self, c: usize) -> i64 {
        match self.zero_point.len() {
            0 => 0,
            1 => self.zero_point[0],
            _ => self.zero_point.get(c).copied().unwrap_or(0),
        }
    }
}

/// A graph's constant tensors by name: initializers, `Constant` nodes, and
/// either passed through an `Identity`.
pub(crate) struct Consts<'g> {
    by_name: HashMap<&'g str, &'g TensorProto>,
}

impl<'g> Consts<'g> {
    pub(crate) fn new(g: &'g GraphProto) -> Consts<'g> {
        let mut by_name: HashMap<&str, &TensorProto> =
            g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        for n in g.node.iter().filter(|n| n.op_type == "Constant") {
            let value = n.attribute.iter().find(|a| a.name == "value");
            if let (Some(out), Some(t)) = (n.output.first(), value.and_then(|a| a.t.as_ref())) {
                by_name.insert(out.as_str(), t);
            }
        }
        // PyTorch's QAT export shares one zero point through Identity nodes.
        for n in g.node.iter().filter(|n| n.op_type == "Identity") {
            let t = n
                .input
                .first()
                .and_then(|i| by_name.get(i.as_str()).copied());
            if let (Some(out), Some(t)) = (n.output.first(), t) {
                by_name.insert(out.as_str(), t);
            }
        }
        Consts { by_name }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'g TensorProto> {
        self.by_name.get(name).copied()
    }

    fn decode(
        &self,
        ctx: &NodeCtx,
        k: usize,
        what: &str,
    ) -> Option<Result<(tensor::Const, DataType), ConvertError>> {
        let name = ctx.pb.input.get(k).filter(|n| !n.is_empty())?;
        let Some(t) = self.get(name) else {
            return Some(Err(ctx.err(format!(
                "the {what} \"{name}\" is computed; medq imports constant quantization parameters only"
            ))));
        };
        let dtype = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
        Some(
            tensor::from_proto(t)
                .map(|c| (c, dtype))
                .map_err(|e| ctx.err(format!("{what} \"{name}\": {e}"))),
        )
    }
}

fn params(ctx: &NodeCtx, consts: &Consts) -> Result<Params, ConvertError> {
    if ctx.int("block_size", 0)? != 0 {
        return Err(ctx.attr_err(
            "block_size",
            "blocked quantization is not supported (medq has one scale per tensor or per output channel)",
        ));
    }
    let (scale, _) = consts
        .decode(ctx, 1, "scale")
        .ok_or_else(|| ctx.err("the scale input is missing"))??;
    let scale = scale.to_f32();
    if scale.is_empty() || scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(ctx.err(format!(
            "scales must be positive and finite, found {scale:?}"
        )));
    }
    let (zero_point, dtype) = match consts.decode(ctx, 2, "zero point") {
        Some(zp) => {
            let (c, dtype) = zp?;
            (c.as_i64().map(<[i64]>::to_vec).unwrap_or_default(), dtype)
        }
        // Without a zero point the type is `output_dtype` (opset 21), else uint8.
        None => {
            let code = ctx.int("output_dtype", 0)?;
            let dtype = match i32::try_from(code)
                .ok()
                .and_then(|c| DataType::try_from(c).ok())
            {
                Some(t) if code != 0 => t,
                _ => DataType::Uint8,
            };
            (Vec::new(), dtype)
        }
    };
    if zero_point.len() > 1 && zero_point.len() != scale.len() {
        return Err(ctx.err(format!(
            "{} zero points for {} scales",
            zero_point.len(),
            scale.len()
        )));
    }
    Ok(Params {
        scale,
        zero_point,
        dtype,
        axis: ctx.int("axis", 1)?,
    })
}

/// An activation encoding as medq keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Encoding {
    q: QParams,
    /// int16 (medq's wide activations).
    wide: bool,
    /// The top of the range when the encoding starts at 0 (its zero point
    /// at the bottom of its type): the clamp of a Relu it stands for.
    relu_top: Option<f32>,
}

/// An activation encoding as medq's: uint8 `q` is int8 `q − 128` with the
/// zero point moved by the same 128, which changes no real value, and
/// uint16 likewise int16. medq's int16 activations are symmetric: an int16
/// encoding with another zero point (ONNX Runtime's `QInt16` without
/// `ActivationSymmetric`) is re-expressed on the symmetric grid that spans
/// the same range, at most one bit coarser.
fn activation_encoding(ctx: &NodeCtx, p: &Params) -> Result<Encoding, ConvertError> {
    if !p.per_tensor() {
        return Err(ctx.err(format!(
            "per-channel activation quantization ({} scales along axis {}) is not supported: \
             medq's activations have one scale and zero point per tensor",
            p.scale.len(),
            p.axis
        )));
    }
    let zp = p.zero_point(0);
    let scale = p.scale[0];
    let (zero_point, bottom, top, wide) = match p.dtype {
        DataType::Int8 => (zp, -128, 127, false),
        DataType::Uint8 => (zp - 128, -128, 127, false),
        DataType::Int16 => (zp, -32768, 32767, true),
        DataType::Uint16 => (zp - 32768, -32768, 32767, true),
        other => {
            return Err(ctx.err(format!(
                "{} activations are not supported: medq's activations are int8 and int16 (uint8 \
                 and uint16 are converted exactly)",
                other.as_str_name()
            )))
        }
    };
    let relu_top = (zero_point == bottom).then(|| (top - zero_point) as f32 * scale);
    let q = match wide {
        false => QParams {
            scale,
            zero_point: zero_point as i32,
        },
        true if zero_point == 0 => QParams {
            scale,
            zero_point: 0,
        },
        true => {
            let reach = (bottom - zero_point).abs().max((top - zero_point).abs());
            QParams {
                scale: reach as f32 * scale / 32767.0,
                zero_point: 0,
            }
        }
    };
    Ok(Encoding { q, wide, relu_top })
}

struct Strip<'g> {
    g: &'g GraphProto,
    opset: i64,
    consts: Consts<'g>,
    /// Readers of each tensor name: (node index, input position).
    readers: HashMap<&'g str, Vec<(usize, usize)>>,
    outputs: HashSet<&'g str>,
    inputs: HashSet<&'g str>,
    removed: Vec<bool>,
    /// Input names to read instead (a DQ output → the tensor quantized).
    rename_in: HashMap<String, String>,
    /// Output names to write instead (a tensor renamed to its DQ's graph output name).
    rename_out: HashMap<String, String>,
    initializers: Vec<TensorProto>,
    fixed: FixedQuant,
    /// The node producing each tensor name.
    producers: HashMap<&'g str, usize>,
    /// Clamps the float graph gets back (see [`Strip::clamp`]): the tensor,
    /// its upper bound, the QuantizeLinear it comes from.
    clamps: Vec<(String, f32, String)>,
}

/// The float model the loader converts: `model` with its Q/DQ nodes stripped
/// as [`strip`] does (its `value_info`, hints about the names that went,
/// dropped); `None` when it has none. The float reference runs this: tract's
/// run of a QDQ model is not ONNX's (on `models/testnets/qdq/cnn1d_int8.onnx`
/// every quantized tensor matches ONNX Runtime's except the Softmax output
/// after its QuantizeLinear, which tract gives as 127 everywhere).
pub fn float_model(model: &ModelProto) -> Result<Option<ModelProto>, ConvertError> {
    let Some(g) = model.graph.as_ref() else {
        return Ok(None);
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    Ok(strip(g, opset)?.map(|(mut float, _)| {
        float.value_info.clear();
        ModelProto {
            graph: Some(float),
            ..model.clone()
        }
    }))
}

/// Strip the Q/DQ nodes of `g` (see the module documentation). `None` when
/// the graph has none.
pub fn strip(g: &GraphProto, opset: i64) -> Result<Option<(GraphProto, FixedQuant)>, ConvertError> {
    let rewritten = super::ort_formats::as_qdq(g, opset)?;
    let g = rewritten.as_ref().unwrap_or(g);
    if !g.node.iter().any(is_qdq) {
        // A dynamically quantized LSTM alone fixes nothing medq keeps.
        return Ok(rewritten.map(|g| (g, FixedQuant::default())));
    }
    let clipped = qcdq_as_qdq(g, opset)?;
    let g = clipped.as_ref().unwrap_or(g);
    let float_io = float_int8_io(g)?;
    let g = float_io.as_ref().unwrap_or(g);
    let floated = float_int8_movers(g, opset)?;
    let g = floated.as_ref().unwrap_or(g);
    let mut readers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for (k, name) in n.input.iter().enumerate() {
            readers.entry(name.as_str()).or_default().push((i, k));
        }
    }
    let mut s = Strip {
        g,
        opset,
        consts: Consts::new(g),
        readers,
        outputs: g.output.iter().map(|o| o.name.as_str()).collect(),
        inputs: g.input.iter().map(|o| o.name.as_str()).collect(),
        removed: vec![false; g.node.len()],
        rename_in: HashMap::new(),
        rename_out: HashMap::new(),
        initializers: Vec::new(),
        fixed: FixedQuant::default(),
        producers: crate::ops::pointwise::producers(g),
        clamps: Vec::new(),
    };
    for (i, node) in g.node.iter().enumerate() {
        if s.removed[i] || !is_qdq(node) {
            continue;
        }
        let ctx = NodeCtx::new(node, i, opset);
        let x = node.input.first().map(String::as_str).unwrap_or("");
        match (ctx.op, s.consts.get(x)) {
            ("DequantizeLinear", Some(q)) => s.constant(i, &ctx, q)?,
            ("QuantizeLinear", Some(w)) => s.constant_pair(i, &ctx, w)?,
            ("QuantizeLinear", _) => s.pair(i, &ctx)?,
            _ => {
                return Err(ctx.err(format!(
                    "it dequantizes \"{x}\", a computed tensor that no QuantizeLinear produced \
                     (medq imports QuantizeLinear → DequantizeLinear pairs and DequantizeLinear of constants)"
                )))
            }
        }
    }
    Ok(Some(s.finish()))
}

/// QCDQ (Brevitas' `export_onnx_qcdq`, for integers narrower than their
/// type: 4-bit codes in int8, or int8's narrow range −127..127) puts a Clip
/// of the codes between a QuantizeLinear and its DequantizeLinears. It is
/// the pair with the values clamped to the codes' range: for a constant
/// (weights), the constant clamped before its QuantizeLinear; for an
/// activation, a float Clip after the DequantizeLinear, which the pair's
/// encoding holds exactly and the converter fuses into the op before it.
/// `None` when the graph has no such Clip.
fn qcdq_as_qdq(g: &GraphProto, opset: i64) -> Result<Option<GraphProto>, ConvertError> {
    let consts = Consts::new(g);
    let producers = crate::ops::pointwise::producers(g);
    let code_clips: Vec<(usize, usize)> = g
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "Clip" && n.domain.is_empty())
        .filter_map(|(c, n)| {
            let q = *producers.get(n.input.first()?.as_str())?;
            (g.node[q].op_type == "QuantizeLinear" && g.node[q].domain.is_empty()).then_some((c, q))
        })
        .collect();
    if code_clips.is_empty() {
        return Ok(None);
    }
    let mut out = g.clone();
    let mut after: HashMap<usize, NodeProto> = HashMap::new();
    for &(c, q) in &code_clips {
        let clip = NodeCtx::new(&g.node[c], c, opset);
        let qctx = NodeCtx::new(&g.node[q], q, opset);
        let p = params(&qctx, &consts)?;
        // A bound's real value (an absent bound: no bound).
        let bound = |k: usize, ch: usize, none: f32| -> Result<f32, ConvertError> {
            match clip.pb.input.get(k).filter(|b| !b.is_empty()) {
                None => Ok(none),
                Some(b) => consts
                    .get(b)
                    .and_then(|t| tensor::from_proto(t).ok())
                    .and_then(|t| t.as_i64().and_then(|v| v.first().copied()))
                    .map(|code| (code - p.zero_point(ch)) as f32 * p.scale[ch])
                    .ok_or_else(|| {
                        clip.err(format!(
                            "it clips the codes of QuantizeLinear \"{}\" by \"{b}\", which is not a \
                             constant integer",
                            qctx.name
                        ))
                    }),
            }
        };
        let range = |ch: usize| -> Result<(f32, f32), ConvertError> {
            let (lo, hi) = (
                bound(1, ch, f32::NEG_INFINITY)?,
                bound(2, ch, f32::INFINITY)?,
            );
            if lo > hi {
                return Err(clip.err(format!("its bounds are reversed: [{lo}, {hi}]")));
            }
            Ok((lo, hi))
        };
        let clip_out = clip.output()?.to_string();
        let x = g.node[q].input.first().cloned().unwrap_or_default();
        // The DequantizeLinears read the QuantizeLinear's codes.
        for n in out.node.iter_mut() {
            for i in n.input.iter_mut().filter(|i| **i == clip_out) {
                *i = g.node[q].output[0].clone();
            }
        }
        if let Some(w) = consts.get(&x) {
            let w = tensor::from_proto(w).map_err(|e| qctx.err(format!("its input: {e}")))?;
            let axis = p.channel_axis(&qctx, &w.shape)?;
            let channel = p.channel_of(&w.shape, axis);
            let ranges = (0..p.scale.len())
                .map(range)
                .collect::<Result<Vec<_>, _>>()?;
            let clamped: Vec<f32> = w
                .to_f32()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let (lo, hi) = ranges[channel(i)];
                    v.clamp(lo, hi)
                })
                .collect();
            let name = format!("{x}/medq_clipped");
            out.initializer.push(float_tensor(&name, &w.shape, clamped));
            out.node[q].input[0] = name;
        } else {
            // The DequantizeLinears' outputs, clamped after them.
            let readers: Vec<usize> = (0..g.node.len())
                .filter(|&r| g.node[r].input.contains(&clip_out))
                .collect();
            for r in readers {
                let dq = &g.node[r];
                if dq.op_type != "DequantizeLinear" || !p.per_tensor() {
                    return Err(clip.err(format!(
                        "its output is read by {} \"{}\"; medq imports a Clip of codes between a \
                         QuantizeLinear and per-tensor DequantizeLinears",
                        dq.op_type, dq.name
                    )));
                }
                let y = dq.output.first().cloned().unwrap_or_default();
                let before = format!("{y}/before_code_clip");
                out.node[r].output[0] = before.clone();
                let name = format!("{}/code_clip", clip.name);
                let (lo, hi) = range(0)?;
                let mut bounds = Vec::new();
                for (bound, v) in [("min", lo), ("max", hi)] {
                    let t = format!("{name}/{bound}");
                    out.initializer.push(float_tensor(&t, &[], vec![v]));
                    bounds.push(t);
                }
                after.insert(
                    r,
                    NodeProto {
                        name,
                        op_type: "Clip".into(),
                        input: vec![before, bounds[0].clone(), bounds[1].clone()],
                        output: vec![y],
                        ..NodeProto::default()
                    },
                );
            }
        }
    }
    let removed: HashSet<usize> = code_clips.iter().map(|&(c, _)| c).collect();
    let nodes = std::mem::take(&mut out.node);
    for (i, mut n) in nodes.into_iter().enumerate() {
        if removed.contains(&i) {
            continue;
        }
        n.name = NodeCtx::new(&g.node[i], i, opset).name;
        out.node.push(n);
        if let Some(clip) = after.remove(&i) {
            out.node.push(clip);
        }
    }
    Ok(Some(out))
}

/// ONNX ops whose output keeps their input's encoding: they move integers
/// without computing new ones, pick among them (MaxPool), pad them with the
/// zero point or interpolate them (Resize), so they run
/// on float values between pairs of their own. tf2onnx leaves them between
/// a QuantizeLinear and a DequantizeLinear when it converts a fully-integer
/// TFLite model (the NHWC → NCHW Transposes, a detector's anchor Reshapes
/// and Concats run on the int8 tensors), and ONNX Runtime's QOperator
/// format runs its MaxPools, Pads, Resizes, Splits, Flattens and Reshapes
/// on uint8 ones.
const INT8_MOVERS: [&str; 17] = [
    "Concat",
    "DepthToSpace",
    "Expand",
    "Flatten",
    "Gather",
    "GlobalMaxPool",
    "Identity",
    "MaxPool",
    "Pad",
    "Reshape",
    "Resize",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Transpose",
    "Unsqueeze",
];

fn is_mover(node: &NodeProto) -> bool {
    node.domain.is_empty() && INT8_MOVERS.contains(&node.op_type.as_str())
}

/// The inputs of a mover that carry values (Concat: all; the others: the
/// first, the rest being shapes and axes).
fn moved_inputs(node: &NodeProto) -> std::ops::Range<usize> {
    match node.op_type.as_str() {
        "Concat" => 0..node.input.len(),
        _ => 0..node.input.len().min(1),
    }
}

/// A `op` node (QuantizeLinear or DequantizeLinear) from `input` to
/// `output` with the scale, zero point and axis of `template`, a Q or DQ.
fn with_params_of(
    template: &NodeProto,
    op: &str,
    name: String,
    input: &str,
    output: String,
) -> NodeProto {
    let mut n = template.clone();
    n.op_type = op.into();
    n.name = name;
    if let Some(x) = n.input.first_mut() {
        *x = input.to_string();
    }
    n.output = vec![output];
    n
}

/// Renames `name` to `name/medq_int8` wherever `nodes` read or write it;
/// the new name.
fn rename_everywhere(nodes: &mut [NodeProto], name: &str) -> String {
    let codes = format!("{name}/medq_int8");
    for node in nodes {
        for n in node.input.iter_mut().chain(node.output.iter_mut()) {
            if n == name {
                *n = codes.clone();
            }
        }
    }
    codes
}

fn integers_without_pair(name: &str, kind: &str, pair: &str) -> ConvertError {
    ConvertError::InvalidModel(format!(
        "graph {kind} \"{name}\" holds integers that no {pair}; medq models take float32 \
         inputs and give float32 outputs"
    ))
}

/// The element type of a graph input or output.
fn elem_type(v: &ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

fn set_float(v: &mut ValueInfoProto) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = DataType::Float as i32;
    }
}

fn is_integer(elem: Option<i32>) -> bool {
    elem == Some(DataType::Int8 as i32) || elem == Some(DataType::Uint8 as i32)
}

/// A graph input or output of int8 (or uint8) codes, as a fully-integer
/// TFLite file with integer inputs and outputs (`inference_input_type =
/// tf.int8`) keeps them through tf2onnx, becomes a float one with a
/// QuantizeLinear after it (a DequantizeLinear before it) on the encoding
/// its DequantizeLinear (QuantizeLinear) gives it: the `.mq` input and
/// output are int8 on that encoding, and the samples the converter reads
/// are float, as for every model. `None` when every input and output is
/// already float.
fn float_int8_io(g: &GraphProto) -> Result<Option<GraphProto>, ConvertError> {
    // Older exporters list the initializers among the inputs: those are
    // constants (int8 weights behind their DequantizeLinear), not inputs.
    let constants: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let integer_input =
        |v: &ValueInfoProto| is_integer(elem_type(v)) && !constants.contains(v.name.as_str());
    let integer_io =
        g.input.iter().any(integer_input) || g.output.iter().any(|v| is_integer(elem_type(v)));
    if !integer_io {
        return Ok(None);
    }
    let mut out = g.clone();
    let mut first = Vec::new();
    for input in out.input.iter_mut().filter(|v| integer_input(v)) {
        // The DequantizeLinear that reads it, through movers.
        let mut frontier = vec![input.name.clone()];
        let mut dq = None;
        while let (None, Some(t)) = (dq, frontier.pop()) {
            for n in &g.node {
                let reads = |r: std::ops::Range<usize>| n.input[r].contains(&t);
                if n.op_type == "DequantizeLinear" && n.input.first() == Some(&t) {
                    dq = Some(n);
                    break;
                }
                if is_mover(n) && reads(moved_inputs(n)) {
                    frontier.extend(n.output.iter().cloned());
                }
            }
        }
        let dq = dq
            .ok_or_else(|| integers_without_pair(&input.name, "input", "DequantizeLinear reads"))?;
        let codes = rename_everywhere(&mut out.node, &input.name);
        let name = format!("{}/medq_quantize", input.name);
        first.push(with_params_of(
            dq,
            "QuantizeLinear",
            name,
            &input.name,
            codes,
        ));
        set_float(input);
    }
    let mut last = Vec::new();
    for output in out.output.iter_mut().filter(|v| is_integer(elem_type(v))) {
        // The QuantizeLinear that wrote it, through movers.
        let mut t = output.name.clone();
        let q = loop {
            let Some(n) = g.node.iter().find(|n| n.output.contains(&t)) else {
                break None;
            };
            match n.op_type.as_str() {
                "QuantizeLinear" => break Some(n),
                _ if is_mover(n) => match n.input.first() {
                    Some(x) => t = x.clone(),
                    None => break None,
                },
                _ => break None,
            }
        };
        let q =
            q.ok_or_else(|| integers_without_pair(&output.name, "output", "QuantizeLinear wrote"))?;
        let codes = rename_everywhere(&mut out.node, &output.name);
        let name = format!("{}/medq_dequantize", output.name);
        last.push(with_params_of(
            q,
            "DequantizeLinear",
            name,
            &codes,
            output.name.clone(),
        ));
        set_float(output);
    }
    first.append(&mut out.node);
    first.append(&mut last);
    out.node = first;
    Ok(Some(out))
}

/// `QuantizeLinear → movers → DequantizeLinear` rewritten as
/// `QuantizeLinear → DequantizeLinear → movers → QuantizeLinear →
/// DequantizeLinear`, so that every Q/DQ is a pair [`strip`] takes. Moving
/// integers and dequantizing commute, so with the chain's
/// DequantizeLinear parameters on both new nodes the float meaning is the
/// model's; TFLite gives a mover's inputs and output one encoding, and a
/// QuantizeLinear whose parameters differ is refused by the pair check as
/// before. `None` when no DequantizeLinear reads a mover.
fn float_int8_movers(g: &GraphProto, opset: i64) -> Result<Option<GraphProto>, ConvertError> {
    // Empty names are absent optional outputs, not tensors.
    let producers = crate::ops::pointwise::producers(g);
    let producer = |name: &str| producers.get(name).map(|&i| (i, &g.node[i]));
    let consts = Consts::new(g);
    // Per DequantizeLinear of a mover's output: the movers above it, and
    // the (mover, input) positions that read a QuantizeLinear's output.
    let mut after_q: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    let mut chain_dq = vec![false; g.node.len()];
    let mut rewired: HashMap<(usize, usize), String> = HashMap::new();
    let mut floated: HashSet<String> = HashSet::new();
    let mut new_dq: Vec<NodeProto> = Vec::new();
    for (d, node) in g.node.iter().enumerate() {
        let x = node.input.first().map(String::as_str).unwrap_or("");
        if node.op_type != "DequantizeLinear" || !node.domain.is_empty() {
            continue;
        }
        let Some((first, _)) = producer(x).filter(|(_, p)| is_mover(p)) else {
            continue;
        };
        let ctx = NodeCtx::new(node, d, opset);
        let mut stack = vec![first];
        let mut seen = HashSet::new();
        while let Some(m) = stack.pop() {
            if !seen.insert(m) {
                continue;
            }
            let mover = &g.node[m];
            if mover.op_type == "Pad" {
                pad_zero(&consts, &ctx, mover)?;
            }
            floated.extend(mover.output.iter().cloned());
            for k in moved_inputs(mover) {
                let t = mover.input[k].as_str();
                match producer(t) {
                    Some((p, n)) if is_mover(n) => stack.push(p),
                    Some((q, n)) if n.op_type == "QuantizeLinear" && n.domain.is_empty() => {
                        if rewired.contains_key(&(m, k)) {
                            continue;
                        }
                        let float = format!("{t}/medq_float{}", new_dq.len());
                        let name = format!("{}/medq_dq{}", ctx.name, new_dq.len());
                        let dq = with_params_of(node, "DequantizeLinear", name, t, float.clone());
                        after_q[q].push(new_dq.len());
                        new_dq.push(dq);
                        rewired.insert((m, k), float);
                    }
                    _ => {
                        return Err(ctx.err(format!(
                            "it dequantizes what {} \"{}\" moves, and its input \"{t}\" comes from \
                             no QuantizeLinear (medq imports QuantizeLinear → Transpose, Reshape, \
                             Concat, … → DequantizeLinear)",
                            mover.op_type, mover.name
                        )))
                    }
                }
            }
        }
        chain_dq[d] = true;
    }
    if !chain_dq.contains(&true) {
        return Ok(None);
    }
    let mut out = g.clone();
    let mut nodes = Vec::with_capacity(g.node.len() + 2 * new_dq.len());
    for (i, node) in g.node.iter().enumerate() {
        let mut node = node.clone();
        // Name every node as the loader would at its original position:
        // inserting nodes must not rename the unnamed ones.
        node.name = NodeCtx::new(&node, i, opset).name;
        for (k, input) in node.input.iter_mut().enumerate() {
            if let Some(float) = rewired.get(&(i, k)) {
                *input = float.clone();
            }
        }
        // A moved Pad's constant value is the zero point (`pad_zero`): on
        // float values, the default 0.
        if node.op_type == "Pad" && floated.contains(node.output.first().map_or("", String::as_str))
        {
            if let Some(value) = node.input.get_mut(2) {
                value.clear();
            }
        }
        if chain_dq[i] {
            let int8 = format!("{}/medq_int8", node.input[0]);
            let name = format!("{}/medq_q", node.name);
            let q = with_params_of(&node, "QuantizeLinear", name, &node.input[0], int8.clone());
            node.input[0] = int8;
            nodes.push(q);
        }
        nodes.push(node);
        nodes.extend(after_q[i].iter().map(|&k| new_dq[k].clone()));
    }
    out.node = nodes;
    // The moved tensors are float now; drop what the exporter declared.
    out.value_info.retain(|v| !floated.contains(&v.name));
    Ok(Some(out))
}

/// Ops whose output a QDQ model may leave without a pair of its own while
/// their input has one, and whose values that input's encoding holds
/// exactly: they pick among the input's values, or clip them (a Clip's
/// bounds are codes of the encoding when `qcdq_as_qdq` wrote it).
const KEEPS_ENCODING: [&str; 10] = [
    "Relu",
    "Clip",
    "MaxPool",
    "GlobalMaxPool",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Identity",
];

/// Ops whose output holds every value of their input (a view, a Pad), so
/// their output's encoding holds their input exactly.
const HOLDS_INPUT: [&str; 7] = [
    "Pad",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Identity",
];

/// Encodings through the ops a QDQ model leaves float next to a pair:
/// - forward, the output of each [`KEEPS_ENCODING`] op without one takes
///   its input's: PyTorch's eager QAT export quantizes a Conv's output and
///   leaves the ReLU after it float (`Conv → Q → DQ → Relu → Conv`), and
///   the ReLU's output holds only values of that encoding;
/// - backward, the input of each [`HOLDS_INPUT`] op without one takes its
///   output's: ONNX Runtime pads a model input in float and quantizes the
///   padded tensor, whose encoding then holds the input too.
fn keep_encodings_through_moves(g: &GraphProto, fixed: &mut FixedQuant) {
    let io = |node: &NodeProto| Some((node.input.first()?.clone(), node.output.first()?.clone()));
    for node in g.node.iter().filter(|n| n.domain.is_empty()) {
        let Some((x, y)) = io(node).filter(|_| KEEPS_ENCODING.contains(&node.op_type.as_str()))
        else {
            continue;
        };
        if let (Some(q), false) = (fixed.activation(&x), fixed.activations.contains_key(&y)) {
            if fixed.wide.contains(&x) {
                fixed.wide.insert(y.clone());
            }
            fixed.activations.insert(y, q);
        }
    }
    for node in g.node.iter().rev().filter(|n| n.domain.is_empty()) {
        let Some((x, y)) = io(node).filter(|_| HOLDS_INPUT.contains(&node.op_type.as_str())) else {
            continue;
        };
        if let (Some(q), false) = (fixed.activation(&y), fixed.activations.contains_key(&x)) {
            if fixed.wide.contains(&y) {
                fixed.wide.insert(x.clone());
            }
            fixed.activations.insert(x, q);
        }
    }
}

/// A Pad that moves integers pads with the zero point of the encoding
/// (ONNX Runtime's QOperator pads with it, zero on the real line), or in
/// `edge`/`reflect` mode; any other constant is refused.
fn pad_zero(consts: &Consts, dq: &NodeCtx, pad: &NodeProto) -> Result<(), ConvertError> {
    let value = match pad.input.get(2).filter(|v| !v.is_empty()) {
        None => return Ok(()),
        Some(v) => v,
    };
    let mode = pad
        .attribute
        .iter()
        .find(|a| a.name == "mode")
        .map_or(&b"constant"[..], |a| &a.s[..]);
    if mode != b"constant" {
        return Ok(());
    }
    let int = |name: &str| {
        consts
            .get(name)
            .and_then(|t| tensor::from_proto(t).ok())
            .and_then(|c| c.as_i64().map(<[i64]>::to_vec))
    };
    let zero_point = dq.pb.input.get(2).map_or(Some(vec![0]), |z| int(z));
    if int(value).is_some() && int(value) == zero_point {
        return Ok(());
    }
    Err(dq.err(format!(
        "it dequantizes what Pad \"{}\" pads with \"{value}\", which is not the zero point of \
         its encoding (medq imports integer Pads that pad with zero)",
        pad.name
    )))
}

impl<'g> Strip<'g> {
    /// A DQ of a constant: a float initializer, and the weight grid of its reader.
    fn constant(
        &mut self,
        index: usize,
        ctx: &NodeCtx,
        q: &TensorProto,
    ) -> Result<(), ConvertError> {
        let mut p = params(ctx, &self.consts)?;
        // Without a zero point, a DequantizeLinear's type is its input's.
        let no_zero_point = ctx.pb.input.get(2).is_none_or(String::is_empty);
        if let Ok(dtype) = DataType::try_from(q.data_type) {
            if no_zero_point {
                p.dtype = dtype;
            }
        }
        let q = tensor::from_proto(q).map_err(|e| ctx.err(format!("quantized data: {e}")))?;
        let values = q
            .as_i64()
            .ok_or_else(|| ctx.err("the quantized data is not integer"))?;
        let axis = p.channel_axis(ctx, &q.shape)?;
        let channel = p.channel_of(&q.shape, axis);
        let data: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v - p.zero_point(channel(i))) as f32 * p.scale[channel(i)])
            .collect();
        let span = values
            .iter()
            .enumerate()
            .map(|(i, &v)| v - p.zero_point(channel(i)))
            .fold(None, |acc: Option<(i64, i64)>, v| {
                Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            });
        let out = ctx.output()?;
        let readers = self.readers.get(out).cloned().unwrap_or_default();
        for (r, k) in readers {
            if k == 1 {
                self.weight(ctx, r, &p, &q.shape, axis, span)?;
            }
        }
        self.initializers.push(float_tensor(out, &q.shape, data));
        self.removed[index] = true;
        Ok(())
    }

    /// A Q of a float constant (PyTorch's QAT export of a Linear's
    /// fake-quantized weights): its integers, computed as ONNX does
    /// (`x / scale` rounded half to even, plus the zero point, saturated),
    /// which its DequantizeLinear readers then read as constants.
    fn constant_pair(
        &mut self,
        index: usize,
        ctx: &NodeCtx,
        w: &TensorProto,
    ) -> Result<(), ConvertError> {
        let p = params(ctx, &self.consts)?;
        let w = tensor::from_proto(w).map_err(|e| ctx.err(format!("its input: {e}")))?;
        // Constant operands other than weights may be 16-bit (ONNX Runtime
        // quantizes them as activations); `weight` checks the weights.
        let (lo, hi) = match p.dtype {
            DataType::Int8 => (-128, 127),
            DataType::Uint8 => (0, 255),
            DataType::Int16 => (-32768, 32767),
            DataType::Uint16 => (0, 65535),
            other => {
                return Err(ctx.err(format!(
                    "{} constants are not supported: medq's weights are int8",
                    other.as_str_name()
                )))
            }
        };
        let axis = p.channel_axis(ctx, &w.shape)?;
        let channel = p.channel_of(&w.shape, axis);
        let codes: Vec<i32> = w
            .to_f32()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = channel(i);
                let q = (v / p.scale[c]).round_ties_even() as i64 + p.zero_point(c);
                q.clamp(lo, hi) as i32
            })
            .collect();
        let out = ctx.output()?;
        let quantized = TensorProto {
            name: out.to_string(),
            dims: w.shape.iter().map(|&d| d as i64).collect(),
            data_type: p.dtype as i32,
            int32_data: codes,
            ..TensorProto::default()
        };
        for (r, k) in self.readers.get(out).cloned().unwrap_or_default() {
            let node = &self.g.node[r];
            let rctx = NodeCtx::new(node, r, self.opset);
            if node.op_type != "DequantizeLinear" || !node.domain.is_empty() || k != 0 {
                return Err(ctx.err(format!(
                    "it quantizes a constant read by {} \"{}\"; medq imports constants \
                     quantized for a DequantizeLinear",
                    rctx.op, rctx.name
                )));
            }
            self.constant(r, &rctx, &quantized)?;
        }
        self.removed[index] = true;
        Ok(())
    }

    /// Record the scales of the weights `node` reads through DQ `ctx`, per
    /// output channel, when `node` is a Conv, Gemm or MatMul.
    fn weight(
        &mut self,
        ctx: &NodeCtx,
        node: usize,
        p: &Params,
        shape: &[usize],
        axis: usize,
        span: Option<(i64, i64)>,
    ) -> Result<(), ConvertError> {
        let reader = NodeCtx::new(&self.g.node[node], node, self.opset);
        let (out_axis, factor) = match reader.op {
            "Conv" => (0, 1.0),
            "Gemm" => (
                usize::from(reader.int("transB", 0)? == 0),
                reader.float("alpha", 1.0)?.abs(),
            ),
            "MatMul" => (shape.len().saturating_sub(1), 1.0),
            _ => return Ok(()),
        };
        let channels = *shape.get(out_axis).ok_or_else(|| {
            ctx.err(format!(
                "weights of shape {shape:?} have no output-channel axis"
            ))
        })?;
        if !p.per_tensor() && axis != out_axis {
            return Err(ctx.err(format!(
                "the weights of {} \"{}\" are quantized per channel along axis {axis}; medq's weights \
                 have one scale per output channel (axis {out_axis} here)",
                reader.op, reader.name
            )));
        }
        // 16-bit weights (ONNX Runtime's A16W16) are medq's int16 ones, symmetric.
        let (bits, lo_code, hi_code) = match p.dtype {
            DataType::Int8 | DataType::Uint8 => (8, -128, 127),
            DataType::Int16 | DataType::Uint16 => (16, -32767, 32767),
            other => {
                return Err(ctx.err(format!(
                    "{} weights of {} \"{}\" are not supported: medq's weights are int8 or int16",
                    other.as_str_name(),
                    reader.op,
                    reader.name
                )))
            }
        };
        // `q − zero_point` is the symmetric weight, exactly, when it fits.
        if let Some((lo, hi)) = span.filter(|&(lo, hi)| lo < lo_code || hi > hi_code) {
            return Err(ctx.err(format!(
                "the weights of {} \"{}\" are asymmetric: q − zero_point spans [{lo}, {hi}], \
                 beyond [{lo_code}, {hi_code}]; medq's {bits}-bit weights are symmetric (zero \
                 point 0)",
                reader.op, reader.name
            )));
        }
        if bits == 16 {
            self.fixed.wide_weights.insert(reader.name.clone());
        }
        let scales: Vec<f32> = (0..channels)
            .map(|c| p.scale[if p.per_tensor() { 0 } else { c }] * factor)
            .collect();
        self.fixed.weight_scales.insert(reader.name.clone(), scales);
        Ok(())
    }

    /// A Q whose output only feeds DQs with the same parameters.
    fn pair(&mut self, index: usize, ctx: &NodeCtx) -> Result<(), ConvertError> {
        let p = params(ctx, &self.consts)?;
        let enc = activation_encoding(ctx, &p)?;
        let qp = enc.q;
        let x = ctx.pb.input.first().map(String::as_str).unwrap_or("");
        let out = ctx.output()?;
        let readers = self.readers.get(out).cloned().unwrap_or_default();
        if readers.is_empty() || self.outputs.contains(out) {
            return Err(ctx.err(
                "its int8 output leaves the graph or is read by nothing; medq imports QuantizeLinear \
                 → DequantizeLinear pairs (its outputs and inputs are float)",
            ));
        }
        let mut dq_outputs = Vec::new();
        for (r, k) in readers {
            let node = &self.g.node[r];
            let rctx = NodeCtx::new(node, r, self.opset);
            if node.op_type != "DequantizeLinear" || !node.domain.is_empty() || k != 0 {
                return Err(ctx.err(format!(
                    "its int8 output is read by {} \"{}\"; medq imports QuantizeLinear → DequantizeLinear pairs only",
                    rctx.op, rctx.name
                )));
            }
            if activation_encoding(&rctx, &params(&rctx, &self.consts)?)? != enc {
                return Err(rctx.err(format!(
                    "its scale and zero point differ from those of QuantizeLinear \"{}\"",
                    ctx.name
                )));
            }
            self.removed[r] = true;
            dq_outputs.push(rctx.output()?.to_string());
        }
        self.removed[index] = true;
        let x = self.resolve(x);
        let named_outputs: Vec<&String> = dq_outputs
            .iter()
            .filter(|o| self.outputs.contains(o.as_str()))
            .collect();
        let canonical = match named_outputs[..] {
            [] => x.clone(),
            [one] if !self.inputs.contains(x.as_str()) && !self.outputs.contains(x.as_str()) => {
                one.clone()
            }
            _ => {
                return Err(ctx.err(format!(
                    "\"{x}\" reaches several graph outputs, or a graph input or output, through \
                     Q/DQ; medq cannot give one tensor several names"
                )))
            }
        };
        if canonical != x {
            self.rename_out.insert(x.clone(), canonical.clone());
            self.rename_in.insert(x.clone(), canonical.clone());
        }
        for o in dq_outputs.into_iter().filter(|o| *o != canonical) {
            self.rename_in.insert(o, canonical.clone());
        }
        self.clamp(index, &ctx.name, &x, &canonical, enc.relu_top);
        if enc.wide {
            self.fixed.wide.insert(canonical.clone());
        }
        match self.fixed.activations.insert(canonical.clone(), qp) {
            Some(before) if before != qp => Err(ctx.err(format!(
                "\"{canonical}\" is quantized twice with different parameters ({before:?} and {qp:?}); \
                 medq gives each tensor one encoding"
            ))),
            _ => Ok(()),
        }
    }

    /// Keep the Relu or Clip a quantizer removed because this pair does it.
    ///
    /// ONNX Runtime's `quantize_static` drops a Relu (or a Clip from 0)
    /// after a Conv, Gemm, MatMul, Add or Mul when the QuantizeLinear after
    /// it starts at 0 (zero point at the bottom of the type): the pair's
    /// saturation does the clamp. Without the pair the float graph would lose
    /// it, so a `Clip(0, hi)` (`hi` the pair's top) goes back after the
    /// producer; the converter fuses it into that op, where it is a no-op in
    /// int8 (it is the encoding's own range) and the float meaning the
    /// report and `--calib` run is the model's again.
    fn clamp(&mut self, q_node: usize, q_name: &str, x: &str, canonical: &str, top: Option<f32>) {
        const FUSING: [&str; 6] = ["Add", "Conv", "ConvTranspose", "Gemm", "MatMul", "Mul"];
        let Some(&p) = self.producers.get(x) else {
            return;
        };
        let producer = &self.g.node[p];
        let only_the_q = self.readers.get(x).is_some_and(|r| r[..] == [(q_node, 0)]);
        let Some(hi) = top else {
            return;
        };
        if !producer.domain.is_empty()
            || !FUSING.contains(&producer.op_type.as_str())
            || !only_the_q
            || self.outputs.contains(x)
        {
            return;
        }
        self.clamps
            .push((canonical.to_string(), hi, format!("{q_name}/clamp")));
    }

    /// The name a reader of `name` reads after the renames so far.
    fn resolve(&self, name: &str) -> String {
        let mut n = name.to_string();
        // Renames form chains (Q/DQ after Q/DQ); each step is a distinct pair.
        for _ in 0..=self.rename_in.len() {
            match self.rename_in.get(&n) {
                Some(next) if *next != n => n = next.clone(),
                _ => break,
            }
        }
        n
    }

    fn finish(self) -> (GraphProto, FixedQuant) {
        let mut g = self.g.clone();
        let mut nodes = Vec::with_capacity(g.node.len());
        for (i, mut node) in std::mem::take(&mut g.node).into_iter().enumerate() {
            if self.removed[i] {
                continue;
            }
            // Keep the names the loader would give unnamed nodes at their
            // original positions (weight scales are recorded by node name).
            let name = NodeCtx::new(&node, i, self.opset).name;
            node.name = name;
            for input in node.input.iter_mut().filter(|n| !n.is_empty()) {
                *input = self.resolve(input);
            }
            for output in node.output.iter_mut() {
                if let Some(to) = self.rename_out.get(output.as_str()) {
                    *output = to.clone();
                }
            }
            let clamp = node.output.first().and_then(|o| {
                self.clamps
                    .iter()
                    .find(|(tensor, _, _)| tensor == o)
                    .cloned()
            });
            match clamp {
                Some((tensor, hi, name)) => {
                    let before = format!("{tensor}/before_clamp");
                    node.output[0] = before.clone();
                    nodes.push(node);
                    nodes.push(self.clip(&mut g.initializer, &name, before, tensor, hi));
                }
                None => nodes.push(node),
            }
        }
        g.node = nodes;
        g.initializer.extend(self.initializers);
        let mut fixed = self.fixed;
        keep_encodings_through_moves(&g, &mut fixed);
        (g, fixed)
    }

    /// `Clip(x, 0, hi)`: bounds as inputs (opset 11 on) or attributes.
    fn clip(
        &self,
        initializers: &mut Vec<TensorProto>,
        name: &str,
        x: String,
        y: String,
        hi: f32,
    ) -> NodeProto {
        let mut node = NodeProto {
            name: name.to_string(),
            op_type: "Clip".into(),
            input: vec![x],
            output: vec![y],
            ..NodeProto::default()
        };
        if self.opset >= 11 {
            for (bound, v) in [("min", 0.0), ("max", hi)] {
                let n = format!("{name}/{bound}");
                initializers.push(float_tensor(&n, &[], vec![v]));
                node.input.push(n);
            }
        } else {
            node.attribute = [("min", 0.0), ("max", hi)]
                .into_iter()
                .map(|(a, f)| AttributeProto {
                    name: a.into(),
                    f,
                    r#type: AttributeType::Float as i32,
                    ..AttributeProto::default()
                })
                .collect();
        }
        node
    }
}

pub(super) fn float_tensor(name: &str, shape: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        float_data: data,
        ..TensorProto::default()
    }
}

/// Integer weights (int8, or int16 for a model that fixes 16-bit ones),
/// row-major, and one scale per output channel.
pub type GridWeights<T = i8> = (Vec<T>, Vec<f32>);

/// The integer weights of `node` on the grid its QDQ model fixed (`T`: i8,
/// or i16 for the nodes of [`FixedQuant::wide_weights`]), and their
/// scales; `None` when the model fixed none for it. The float weights are
/// the dequantized integers, so dividing by the scale gives the integers
/// back; weights changed since (a BatchNormalization folded into them) are
/// off the grid, and refused.
pub fn weights_on_grid<T: TryFrom<i64>>(
    graph: &Graph,
    node: &Node,
    weights: &Array,
) -> Option<Result<GridWeights<T>, ConvertError>> {
    let scales = graph.qdq.weight_scales.get(&node.name)?;
    let rows = scales.len();
    let per = weights.data.len() / rows.max(1);
    if rows == 0 || weights.shape.first() != Some(&rows) || per * rows != weights.data.len() {
        return Some(Err(off_grid(
            node,
            "their shape no longer fits the model's scales",
        )));
    }
    let mut q = Vec::with_capacity(weights.data.len());
    for (row, &scale) in weights.data.chunks_exact(per.max(1)).zip(scales) {
        match codes_on_grid(row, f64::from(scale)) {
            Some(codes) => q.extend(codes),
            None => {
                return Some(Err(off_grid(
                    node,
                    "they are no longer the model's integer values times its scales",
                )))
            }
        }
    }
    Some(Ok((q, scales.clone())))
}

/// The codes of `row` on the grid of `scale`: each `w / scale` an integer
/// that `T` holds (i8: [−128, 127]) to within 1e-3 plus a millionth of its
/// size (an int16 code of 32767 dequantized in `f32` is only within 0.002
/// of one); `None` if one is not.
fn codes_on_grid<T: TryFrom<i64>>(row: &[f32], scale: f64) -> Option<Vec<T>> {
    row.iter()
        .map(|&w| {
            let real = f64::from(w) / scale;
            let r = real.round();
            let on_grid = (real - r).abs() <= 1e-3 + r.abs() * 1e-6 && r.abs() < 1e15;
            on_grid.then(|| T::try_from(r as i64).ok()).flatten()
        })
        .collect()
}

/// Float weights that already lie on an int8 grid, one scale per output
/// channel (axis 0), as PyTorch's QAT export leaves a Conv's fake-quantized
/// weights (folded to floats, no DequantizeLinear): their integers and the
/// coarsest such scales; `None` when some row is not on one (or is all
/// zeros), and medq chooses the scales. A row is on grid `s` when every
/// `w / s` is within 1e-3 of an integer in [−128, 127]; its largest `|w|`
/// is then `K · s` for some `K` ≤ 128, so trying `s = max|w| / K` for `K`
/// = 1, 2, … finds the coarsest.
pub fn weights_on_found_grid(weights: &Array) -> Option<GridWeights> {
    let rows = *weights.shape.first()?;
    let per = weights.data.len().checked_div(rows)?;
    let mut codes = Vec::with_capacity(weights.data.len());
    let mut scales = Vec::with_capacity(rows);
    for row in weights.data.chunks_exact(per.max(1)) {
        let max = row.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let (scale, q) = (1..=128)
            .map(|k| f64::from(max) / f64::from(k))
            .filter(|&s| s > 0.0)
            .find_map(|s| codes_on_grid::<i8>(row, s).map(|q| (s, q)))?;
        codes.extend(q);
        scales.push(scale as f32);
    }
    (codes.len() == weights.data.len()).then_some((codes, scales))
}

fn off_grid(node: &Node, why: &str) -> ConvertError {
    ConvertError::Quantization {
        node: node.name.clone(),
        reason: format!(
            "the QDQ model fixes this node's integer weights, but {why} (a rewrite such as folding \
             {} changed them); medq cannot honour both",
            node.onnx_ops.join(" + ")
        ),
    }
}

/// Why a tensor has no quantization parameters.
pub fn no_range(graph: &Graph) -> &'static str {
    if graph.qdq.is_empty() {
        "no calibration range was observed for this tensor"
    } else {
        "the QDQ model does not quantize this tensor (no QuantizeLinear on it) and no calibration \
         range was observed for it: pass --calib samples to calibrate the tensors the model leaves float"
    }
}

/// The range of a table op's output in a QDQ model that leaves it float (ONNX
/// Runtime does not quantize a final Tanh): the image of its 256 input
/// codes, known without data once the input's encoding is; for a product
/// by a constant, its `scaled_range`.
pub fn table_range(graph: &Graph, q: &[Option<QParams>], id: TensorId) -> Option<(f32, f32)> {
    if graph.qdq.is_empty() {
        return None;
    }
    let node = graph.nodes.iter().find(|n| n.output == id)?;
    if let Op::Mul(_) = node.op {
        return scaled_range(graph, q, node);
    }
    let x = node.inputs.first().and_then(|&i| q.get(i)?.as_ref())?;
    let f = |v: f32| -> Option<f32> {
        match &node.op {
            Op::Unary(u) => Some(u.apply(v)),
            Op::Pointwise(p) => Some(p.f.eval(f64::from(v)) as f32),
            _ => None,
        }
    };
    let mut range = (f32::INFINITY, f32::NEG_INFINITY);
    for v in -128..=127 {
        let y = f(x.dequantize(v as i8))?;
        if y.is_finite() {
            range = (range.0.min(y), range.1.max(y));
        }
    }
    (range.0 <= range.1).then_some(range)
}

/// The range of a product of an encoded tensor and a constant, in a QDQ
/// model that leaves it float: every code's value times every constant
/// (PRelu's slopes on its negative part, as medq lowers it, when a
/// fully-integer TFLite file quantizes only PRelu's input and output).
fn scaled_range(graph: &Graph, q: &[Option<QParams>], node: &Node) -> Option<(f32, f32)> {
    let [a, b] = node.inputs[..] else {
        return None;
    };
    let encoded_times_constant =
        |x: TensorId, c: TensorId| Some((q.get(x)?.as_ref()?, graph.tensors[c].value.as_ref()?));
    let (x, c) = encoded_times_constant(a, b).or_else(|| encoded_times_constant(b, a))?;
    let ends = [x.dequantize(-128), x.dequantize(127)];
    let products = c.data.iter().flat_map(|&k| ends.map(|e| e * k));
    let range = products.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    (range.0 <= range.1 && range.0.is_finite() && range.1.is_finite()).then_some(range)
}

/// Average pools whose QDQ output encoding differs from their input's become
/// depthwise Convs with weights `1/k`.
///
/// medq's AvgPool keeps its input's encoding, but ONNX Runtime gives a
/// (Global)AveragePool output its own, usually finer, scale: averaging
/// narrows the range. A Conv requantizes its sum into the output's
/// encoding in one rounding, as ORT does (`1/k` is exactly `127` steps of
/// `1/(127k)`). A pool with padding that it does not count keeps medq's
/// AvgPool: a Conv would count the padding.
pub fn requantizing_pools(graph: &mut Graph) {
    for n in 0..graph.nodes.len() {
        let node = &graph.nodes[n];
        let Op::AvgPool(AvgPool {
            window,
            count_include_pad,
        }) = node.op
        else {
            continue;
        };
        let Some(&x) = node.inputs.first() else {
            continue;
        };
        let fixed = |id: TensorId| graph.qdq.activation(&graph.tensors[id].name);
        let (Some(qx), Some(qy)) = (fixed(x), fixed(node.output)) else {
            continue;
        };
        let channels = graph.tensors[x].shape.get(1).copied().unwrap_or(0);
        if qx == qy || channels == 0 || !(count_include_pad || window.pads == [0; 4]) {
            continue;
        }
        let taps = window.kernel[0] * window.kernel[1];
        let weights = Array::new(
            vec![channels, 1, window.kernel[0], window.kernel[1]],
            vec![1.0 / taps as f32; channels * taps],
        );
        graph.nodes[n].op = Op::Conv(Conv {
            weights,
            bias: vec![0.0; channels],
            window,
            groups: channels,
            activation: crate::ir::FusedActivation::None,
        });
    }
}

/// The int16 tensors a QDQ model fixes, and every tensor an op that keeps
/// its input's precision (a view, a MaxPool, a table: `precision::moves`)
/// joins to one of them, are medq's int16 activations: such an op's input
/// and output are both int16 or both int8, and the lowering's ops have
/// tensors of their own the model never named.
pub fn wide_activations(graph: &mut Graph) {
    let named: Vec<TensorId> = (0..graph.tensors.len())
        .filter(|&t| graph.qdq.wide.contains(&graph.tensors[t].name))
        .collect();
    graph.wide.extend(named);
    let int8 = |g: &Graph, t: TensorId| {
        let name = &g.tensors[t].name;
        g.qdq.activations.contains_key(name) && !g.qdq.wide.contains(name)
    };
    loop {
        let mut joined = Vec::new();
        for node in &graph.nodes {
            if !crate::precision::moves(&node.op) || matches!(node.op, Op::Select(_)) {
                continue;
            }
            let (Some(&x), y) = (node.inputs.first(), node.output) else {
                continue;
            };
            match (graph.wide.contains(&x), graph.wide.contains(&y)) {
                (true, false) if !int8(graph, y) => joined.push(y),
                (false, true) if !int8(graph, x) && graph.tensors[x].value.is_none() => {
                    joined.push(x)
                }
                _ => {}
            }
        }
        if joined.is_empty() {
            return;
        }
        graph.wide.extend(joined);
    }
}

/// Ops that keep their input's encoding (a view, a MaxPool) but whose
/// output the QDQ model encodes otherwise get an identity table after
/// them, which requantizes into the model's encoding and clips as its pair
/// does. PyTorch's FX QAT export gives a Flatten before the classifier an
/// encoding of its own, narrower than the pooled features'.
pub fn requantizing_moves(graph: &mut Graph) {
    use crate::ops::lut::Unary;
    use crate::quantize::OutputQuant;
    for n in (0..graph.nodes.len()).rev() {
        let node = &graph.nodes[n];
        if node.op.def().output_quant() != OutputQuant::SameAsInput {
            continue;
        }
        let Some(&x) = node.inputs.first() else {
            continue;
        };
        let fixed = |id: TensorId| graph.qdq.activation(&graph.tensors[id].name);
        let y = node.output;
        let (Some(qx), Some(qy)) = (fixed(x), fixed(y)) else {
            continue;
        };
        if qx == qy {
            continue;
        }
        let moved = graph.tensors.len();
        let mut tensor = graph.tensors[y].clone();
        tensor.name = format!("{}/medq_moved", tensor.name);
        graph.tensors.push(tensor);
        let name = format!("{}/medq_requantize", graph.nodes[n].name);
        graph.nodes[n].output = moved;
        graph.nodes.insert(
            n + 1,
            Node {
                name,
                onnx_ops: vec!["QuantizeLinear".into()],
                op: Op::Unary(Unary::Clip {
                    min: f32::NEG_INFINITY,
                    max: f32::INFINITY,
                }),
                inputs: vec![moved],
                output: y,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..NodeProto::default()
        }
    }

    fn scalar(name: &str, dtype: DataType, v: i32) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dtype as i32,
            int32_data: vec![v],
            ..TensorProto::default()
        }
    }

    /// `x → Conv(w) → Q → DQ → y`, the pair's zero point `zp` (`dtype`),
    /// scale 0.5; the weights `DequantizeLinear` of int8 `[1, 1, 1, 1]`.
    fn conv_pair(dtype: DataType, zp: i32) -> GraphProto {
        let w = TensorProto {
            name: "wq".into(),
            dims: vec![1, 1, 1, 1],
            data_type: DataType::Int8 as i32,
            int32_data: vec![100],
            ..TensorProto::default()
        };
        GraphProto {
            node: vec![
                node("DequantizeLinear", "w_dq", &["wq", "ws"], "w"),
                node("Conv", "conv", &["x", "w"], "c"),
                node("QuantizeLinear", "c_q", &["c", "s", "zp"], "cq"),
                node("DequantizeLinear", "c_dq", &["cq", "s", "zp"], "y"),
            ],
            initializer: vec![
                w,
                float_tensor("ws", &[], vec![0.01]),
                float_tensor("s", &[], vec![0.5]),
                scalar("zp", dtype, zp),
            ],
            output: vec![tract_onnx::pb::ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..GraphProto::default()
        }
    }

    fn typed(name: &str, dtype: DataType) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(tract_onnx::pb::TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: dtype as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A fully-integer TFLite file through tf2onnx, in small: int8 input
    /// `x` → Transpose → DQ → Relu → Q → Reshape → int8 output `y`.
    #[test]
    fn integer_inputs_outputs_and_movers_become_float_between_pairs() {
        let g = GraphProto {
            node: vec![
                node("Transpose", "t", &["x"], "xt"),
                node("DequantizeLinear", "x_dq", &["xt", "s", "zp"], "xf"),
                node("Relu", "relu", &["xf"], "r"),
                node("QuantizeLinear", "r_q", &["r", "s", "zp"], "rq"),
                node("Reshape", "flat", &["rq", "shape"], "y"),
            ],
            initializer: vec![
                float_tensor("s", &[], vec![0.25]),
                scalar("zp", DataType::Int8, -3),
                TensorProto {
                    name: "shape".into(),
                    dims: vec![1],
                    data_type: DataType::Int64 as i32,
                    int64_data: vec![-1],
                    ..TensorProto::default()
                },
            ],
            input: vec![typed("x", DataType::Int8)],
            output: vec![typed("y", DataType::Int8)],
            ..GraphProto::default()
        };
        // An older exporter's initializer listed among the inputs (int8
        // weights) stays a constant.
        let mut g = g;
        g.input.push(typed("zp", DataType::Int8));
        let (g, fixed) = strip(&g, 13).unwrap().unwrap();
        assert_eq!(elem_type(&g.input[1]), Some(DataType::Int8 as i32));
        assert_eq!(elem_type(&g.input[0]), Some(DataType::Float as i32));
        assert_eq!(elem_type(&g.output[0]), Some(DataType::Float as i32));
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Transpose", "Relu", "Reshape"], "every Q/DQ went");
        // The encoding the DequantizeLinear gave the input codes, on the
        // float input; the output's on the moved tensor, the same.
        for t in ["x", "r"] {
            let q = fixed
                .activation(t)
                .unwrap_or_else(|| panic!("{t}: {fixed:?}"));
            assert_eq!((q.scale, q.zero_point), (0.25, -3), "{t}");
        }
        let reads = |op: &str| g.node.iter().find(|n| n.op_type == op).unwrap().input[0].clone();
        assert_eq!(reads("Transpose"), "x");
        assert_eq!(reads("Relu"), "xt");
        assert_eq!(g.node[2].output[0], "y");
    }

    #[test]
    fn uint8_activations_become_int8_exactly_and_a_pair_from_0_keeps_its_relu() {
        let (g, fixed) = strip(&conv_pair(DataType::Uint8, 0), 13).unwrap().unwrap();
        // uint8 q = int8 q + 128: zero point 0 becomes −128, same reals.
        let y = fixed.activation("y").unwrap();
        assert_eq!((y.scale, y.zero_point), (0.5, -128));
        assert_eq!(fixed.weight_scales["conv"], vec![0.01]);
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            ["Conv", "Clip"],
            "the pairs go, the Relu they stood for stays"
        );
        let clip = &g.node[1];
        assert_eq!(
            (clip.input[0].as_str(), clip.output[0].as_str()),
            ("y/before_clamp", "y")
        );
        let max = g
            .initializer
            .iter()
            .find(|t| t.name == clip.input[2])
            .unwrap();
        assert_eq!(max.float_data, vec![0.5 * 255.0]);
        // The weights are the dequantized int8 values.
        let w = g.initializer.iter().find(|t| t.name == "w").unwrap();
        assert_eq!(w.float_data, vec![1.0]);
    }

    #[test]
    fn a_pair_below_0_adds_no_clamp() {
        let (g, _) = strip(&conv_pair(DataType::Int8, 0), 13).unwrap().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv"]);
    }

    #[test]
    fn a_dequantize_of_a_computed_tensor_is_refused_with_its_name() {
        let mut g = conv_pair(DataType::Int8, 0);
        g.node.push(node("Cast", "cast", &["y"], "yi"));
        g.node
            .push(node("DequantizeLinear", "odd_dq", &["yi", "s", "zp"], "z"));
        let e = strip(&g, 13).unwrap_err().to_string();
        assert!(e.contains("odd_dq"), "{e}");
        assert!(
            e.contains("a computed tensor that no QuantizeLinear produced"),
            "{e}"
        );
    }

    #[test]
    fn per_channel_activations_are_refused() {
        let mut g = conv_pair(DataType::Int8, 0);
        g.initializer[2] = float_tensor("s", &[2], vec![0.5, 0.25]);
        let e = strip(&g, 13).unwrap_err().to_string();
        assert!(e.contains("c_q"), "{e}");
        assert!(e.contains("per-channel activation quantization"), "{e}");
    }

    #[test]
    fn a_quantized_constant_weight_keeps_its_grid() {
        // PyTorch's QAT export: Q → DQ of the float weights, a zero point
        // shared through an Identity, a Relu after the Conv's pair.
        let w = float_tensor("w", &[2, 1, 1, 1], vec![0.26, -0.5]);
        let g = GraphProto {
            node: vec![
                node("Identity", "zp_shared", &["zp0"], "zp"),
                node("QuantizeLinear", "w_q", &["w", "ws", "wzp"], "wq"),
                node("DequantizeLinear", "w_dq", &["wq", "ws", "wzp"], "wf"),
                node("Conv", "conv", &["x", "wf"], "c"),
                node("QuantizeLinear", "c_q", &["c", "s", "zp"], "cq"),
                node("DequantizeLinear", "c_dq", &["cq", "s", "zp"], "cf"),
                node("Relu", "relu", &["cf"], "y"),
            ],
            initializer: vec![
                w,
                float_tensor("ws", &[2], vec![0.01, 0.02]),
                TensorProto {
                    name: "wzp".into(),
                    dims: vec![2],
                    data_type: DataType::Int8 as i32,
                    int32_data: vec![0, 0],
                    ..TensorProto::default()
                },
                float_tensor("s", &[], vec![0.5]),
                scalar("zp0", DataType::Uint8, 10),
            ],
            output: vec![tract_onnx::pb::ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..GraphProto::default()
        };
        let mut g = g;
        for n in &mut g.node[1..3] {
            n.attribute.push(AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: 0,
                ..AttributeProto::default()
            });
        }
        let (float, fixed) = strip(&g, 13).unwrap().unwrap();
        let ops: Vec<&str> = float.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Identity", "Conv", "Relu"]);
        assert_eq!(fixed.weight_scales["conv"], [0.01, 0.02]);
        // 0.26 / 0.01 = 26, −0.5 / 0.02 = −25: the dequantized weights.
        let wf = float.initializer.iter().find(|t| t.name == "wf").unwrap();
        assert_eq!(wf.float_data, [26.0 * 0.01, -25.0 * 0.02]);
        // The Relu's output keeps the encoding of the pair before it.
        let c = fixed.activation("c").unwrap();
        assert_eq!(fixed.activation("y"), Some(c));
        assert_eq!((c.scale, c.zero_point), (0.5, 10 - 128));
    }

    #[test]
    fn float_weights_on_an_int8_grid_are_found() {
        // Row 0 on steps of 0.03 (largest 4 steps), row 1 on 0.25.
        let on = Array::new(vec![2, 3], vec![0.12, -0.06, 0.03, 0.5, 0.25, -0.75]);
        let (q, scales) = weights_on_found_grid(&on).unwrap();
        assert_eq!(q, [4, -2, 1, 2, 1, -3]);
        assert!((scales[0] - 0.03).abs() < 1e-7 && (scales[1] - 0.25).abs() < 1e-7);
        // A row of trained floats is on no grid of at most 128 steps.
        let off = Array::new(vec![1, 3], vec![0.123_456, -0.061_7, 0.031_234_5]);
        assert_eq!(weights_on_found_grid(&off), None);
    }

    #[test]
    fn sixteen_bit_pairs_are_int16_activations() {
        // uint16 with zero point 32768 is int16 with zero point 0, exactly.
        let (_, fixed) = strip(&conv_pair(DataType::Uint16, 32768), 13)
            .unwrap()
            .unwrap();
        assert!(fixed.wide.contains("y"));
        assert_eq!(
            fixed.activation("y"),
            Some(QParams {
                scale: 0.5,
                zero_point: 0
            })
        );
        // int16 with zero point −32768 (a range from 0): the symmetric grid
        // over the same range, 65535 steps of 0.5 spread over ±32767 steps.
        let (_, fixed) = strip(&conv_pair(DataType::Int16, -32768), 13)
            .unwrap()
            .unwrap();
        let q = fixed.activation("y").unwrap();
        assert_eq!(q.zero_point, 0);
        assert!((q.scale - 65535.0 * 0.5 / 32767.0).abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn sixteen_bit_weights_are_int16_weights() {
        // ONNX Runtime's A16W16: symmetric int16 weights, ±32767.
        let mut g = conv_pair(DataType::Int16, 0);
        g.initializer[0].data_type = DataType::Int16 as i32;
        g.initializer[0].int32_data = vec![-32767];
        let (float, fixed) = strip(&g, 13).unwrap().unwrap();
        assert!(fixed.wide_weights.contains("conv"));
        assert_eq!(fixed.weight_scales["conv"], [0.01]);
        let w = float.initializer.iter().find(|t| t.name == "w").unwrap();
        assert_eq!(w.float_data, [-32767.0 * 0.01]);
        // The IR's weights come back as the same codes, on int16's range.
        let weights = Array::new(vec![1, 1], w.float_data.clone());
        let graph = Graph {
            qdq: fixed,
            ..Graph::default()
        };
        let conv = Node {
            name: "conv".into(),
            onnx_ops: vec!["Conv".into()],
            op: Op::Unary(crate::ops::lut::Unary::Clip {
                min: f32::NEG_INFINITY,
                max: f32::INFINITY,
            }),
            inputs: vec![],
            output: 0,
        };
        let (codes, _) = weights_on_grid::<i16>(&graph, &conv, &weights)
            .unwrap()
            .unwrap();
        assert_eq!(codes, [-32767]);
        assert!(weights_on_grid::<i8>(&graph, &conv, &weights)
            .unwrap()
            .is_err());
        // −32768 is beyond medq's symmetric int16 weights.
        g.initializer[0].int32_data = vec![-32768];
        let err = strip(&g, 13).unwrap_err().to_string();
        assert!(err.contains("[-32767, 32767]"), "{err}");
    }

    #[test]
    fn a_clip_of_codes_is_the_pair_with_a_clamp() {
        // Brevitas' QCDQ: 4-bit weights clipped to −7..7 (one weight, 0.5,
        // would be code 10 at scale 0.05), 4-bit activations to 0..15.
        let int = |name: &str, dtype: DataType, v: i32| scalar(name, dtype, v);
        let g = GraphProto {
            node: vec![
                node("QuantizeLinear", "w_q", &["w", "ws", "wz"], "wq"),
                node("Clip", "w_clip", &["wq", "wlo", "whi"], "wc"),
                node("DequantizeLinear", "w_dq", &["wc", "ws", "wz"], "wf"),
                node("Conv", "conv", &["x", "wf"], "c"),
                node("QuantizeLinear", "c_q", &["c", "s", "z"], "cq"),
                node("Clip", "c_clip", &["cq", "lo", "hi"], "cc"),
                node("DequantizeLinear", "c_dq", &["cc", "s", "z"], "y"),
            ],
            initializer: vec![
                float_tensor("w", &[1, 1, 1, 1], vec![0.5]),
                float_tensor("ws", &[], vec![0.05]),
                int("wz", DataType::Int8, 0),
                int("wlo", DataType::Int8, -7),
                int("whi", DataType::Int8, 7),
                float_tensor("s", &[], vec![0.5]),
                int("z", DataType::Uint8, 0),
                int("lo", DataType::Uint8, 0),
                int("hi", DataType::Uint8, 15),
            ],
            output: vec![tract_onnx::pb::ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..GraphProto::default()
        };
        let (float, fixed) = strip(&g, 13).unwrap().unwrap();
        let wf = float.initializer.iter().find(|t| t.name == "wf").unwrap();
        assert_eq!(wf.float_data, [7.0 * 0.05]);
        assert_eq!(fixed.weight_scales["conv"], [0.05]);
        // The activation's pair, then a Clip to codes 0..15: [0, 7.5].
        // (The pair starts at 0, so the Relu clamp goes after the Conv too.)
        let clip = float.node.iter().find(|n| n.output == ["y"]).unwrap();
        assert_eq!(clip.op_type, "Clip");
        let bound = |k: usize| {
            let t = float
                .initializer
                .iter()
                .find(|t| t.name == clip.input[k])
                .unwrap();
            t.float_data[0]
        };
        assert_eq!((bound(1), bound(2)), (0.0, 7.5));
        assert!(fixed.activation("c").is_some());
    }
}
