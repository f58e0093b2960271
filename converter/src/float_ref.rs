//! The float reference: tract runs the original ONNX model, and can report the
//! value of any named tensor. Calibration observes activations through it and
//! the evaluation compares the int8 model against it. Of a pre-quantized
//! (QDQ) model it runs the float model the loader converts, the Q/DQ pairs
//! stripped ([`crate::load::qdq::float_model`]): the model's dequantized
//! weights, float activations.
//!
//! The inputs are fixed to the static shapes the converter uses (batch 1, the
//! `--input-shape` sizes). Before tract sees the model, every symbolic
//! dimension (`dim_param`) those shapes fix is written in as its size, and the
//! other symbols of `value_info` and of the graph outputs are erased: tract
//! would otherwise try to unify a declared `batch_size` with the input's 1
//! and fail. `value_info` is only a hint; tract infers every shape from the
//! inputs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use prost::Message;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::{type_proto, ModelProto, ValueInfoProto};
use tract_onnx::prelude::*;

use crate::error::ConvertError;

type Plan = Arc<TypedRunnableModel>;

pub struct FloatRef {
    /// Parsed once, with the input facts fixed; cloned per set of outputs.
    model: InferenceModel,
    /// Graph inputs, in order: name and static shape.
    inputs: Vec<(String, Vec<usize>)>,
    /// One optimized plan per requested list of output names.
    plans: Mutex<HashMap<Vec<String>, Plan>>,
    /// The tensor names of the ONNX graph (inputs and node outputs).
    onnx_names: std::collections::HashSet<String>,
}

fn tract_err(context: &str) -> impl Fn(anyhow::Error) -> ConvertError + '_ {
    move |e| ConvertError::FloatRef(format!("{context}: {e:#}"))
}

/// Runs one tract step, with a panic inside tract as an error like its
/// `Err`s: tract asserts rather than fails on some graphs it cannot run
/// (a negative GatherND index), and the converter must still end with a
/// clear error and nothing written. tract's own state is dropped with the
/// step, so nothing half-updated is used afterwards.
fn guarded<T>(context: &str, step: impl FnOnce() -> TractResult<T>) -> Result<T, ConvertError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(result) => result.map_err(tract_err(context)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(ConvertError::FloatRef(format!(
                "{context}: tract, the float reference, failed inside (\"{what}\"): it cannot \
                 run this graph as given, so the model cannot be calibrated or checked"
            )))
        }
    }
}

impl FloatRef {
    /// Parse `path` with tract and fix its single input to `input_shape`.
    pub fn new(path: &Path, input_shape: &[usize]) -> Result<FloatRef, ConvertError> {
        FloatRef::with_inputs(path, &[input_shape.to_vec()])
    }

    /// Parse `path` with tract and fix its inputs (graph order, initializers
    /// excluded) to `input_shapes`.
    pub fn with_inputs(path: &Path, input_shapes: &[Vec<usize>]) -> Result<FloatRef, ConvertError> {
        let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut proto = ModelProto::decode(&bytes[..])
            .map_err(|e| ConvertError::FloatRef(format!("decoding {}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::load::external::embed_external_data(&mut proto, dir)?;
        if let Some(float) = crate::load::qdq::float_model(&proto)? {
            proto = float;
        }
        // The graph medq converts: float64 as float32, atan of a quotient on
        // a bounded ratio, boolean and integer inputs as float ones.
        if let Some(g) = proto
            .graph
            .as_ref()
            .and_then(crate::load::float64::float64_as_float32)
        {
            proto.graph = Some(g);
        }
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version);
        if let Some(g) = proto
            .graph
            .as_ref()
            .and_then(|g| crate::load::atan_ratio::bounded_atan_ratios(g, opset))
        {
            proto.graph = Some(g);
        }
        if let Some(g) = proto
            .graph
            .as_ref()
            .and_then(crate::load::inputs::non_float_inputs_as_float)
        {
            proto.graph = Some(g);
        }
        let names = pin_symbols(&mut proto, input_shapes)?;
        stft_signals_as_rank_3(&mut proto);
        upsample_scales_as_inputs(&mut proto);
        is_inf_as_equal(&mut proto);
        wrap_pads_as_slices(&mut proto);
        let onnx_names = proto
            .graph
            .iter()
            .flat_map(|g| {
                let inputs = g.input.iter().map(|i| i.name.clone());
                inputs.chain(g.node.iter().flat_map(|n| n.output.iter().cloned()))
            })
            .collect();
        let dir = path.parent().and_then(Path::to_str);
        let parsed = guarded(&format!("loading {}", path.display()), || {
            let mut onnx = tract_onnx::onnx();
            register_upsample(&mut onnx);
            onnx.parse(&proto, dir)
        })?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(ConvertError::FloatRef(format!(
                "loading {}: unresolved inputs {:?}",
                path.display(),
                parsed.unresolved_inputs
            )));
        }
        let mut model = parsed.model;
        let outlets = model
            .input_outlets()
            .map_err(tract_err("reading inputs"))?
            .to_vec();
        if outlets.len() != input_shapes.len() {
            return Err(ConvertError::FloatRef(format!(
                "the model has {} inputs, {} shapes were given",
                outlets.len(),
                input_shapes.len()
            )));
        }
        for (i, shape) in input_shapes.iter().enumerate() {
            model = guarded("setting the input shapes", || {
                model.with_input_fact(i, f32::fact(shape).into())
            })?;
        }
        Ok(FloatRef {
            model,
            inputs: names.into_iter().zip(input_shapes.to_vec()).collect(),
            plans: Mutex::new(HashMap::new()),
            onnx_names,
        })
    }

    /// Whether the ONNX graph has a tensor of this name (the converter's
    /// own tensors inside one node's lowering have none).
    pub fn knows(&self, name: &str) -> bool {
        self.onnx_names.contains(name)
    }

    /// The shape of input 0.
    pub fn input_shape(&self) -> &[usize] {
        self.inputs.first().map_or(&[], |(_, s)| s)
    }

    /// Run one sample of a single-input model; see [`Self::run_inputs`].
    pub fn run(&self, input: &[f32], wanted: &[String]) -> Result<Vec<Vec<f32>>, ConvertError> {
        self.run_inputs(&[input], wanted)
    }

    /// Run one sample (a value for every input, in graph order) and return
    /// the float value of each `wanted` tensor (ONNX tensor names; an input's
    /// name returns that input), in order, flattened row-major.
    pub fn run_inputs(
        &self,
        inputs: &[&[f32]],
        wanted: &[String],
    ) -> Result<Vec<Vec<f32>>, ConvertError> {
        if inputs.len() != self.inputs.len() {
            return Err(ConvertError::FloatRef(format!(
                "{} input values for a model with {} inputs",
                inputs.len(),
                self.inputs.len()
            )));
        }
        for ((name, shape), x) in self.inputs.iter().zip(inputs) {
            let expected: usize = shape.iter().product();
            if x.len() != expected {
                return Err(ConvertError::FloatRef(format!(
                    "input \"{name}\" has {} values, its shape {shape:?} needs {expected}",
                    x.len()
                )));
            }
        }
        let input_index = |w: &str| self.inputs.iter().position(|(n, _)| n == w);
        let mut outputs: Vec<String> = Vec::new();
        for w in wanted {
            if input_index(w).is_none() && !outputs.contains(w) {
                outputs.push(w.clone());
            }
        }
        let values = if outputs.is_empty() {
            TVec::new()
        } else {
            let plan = self.plan(&outputs)?;
            let xs = self
                .inputs
                .iter()
                .zip(inputs)
                .map(|((_, shape), x)| {
                    Tensor::from_shape(shape, x)
                        .map(TValue::from)
                        .map_err(tract_err("building the input"))
                })
                .collect::<Result<TVec<_>, _>>()?;
            guarded("running", || plan.run(xs))?
        };
        wanted
            .iter()
            .map(|w| {
                if let Some(i) = input_index(w) {
                    return Ok(inputs[i].to_vec());
                }
                let k = outputs.iter().position(|o| o == w).unwrap_or(usize::MAX);
                let v = values
                    .get(k)
                    .ok_or_else(|| ConvertError::FloatRef(format!("no value for \"{w}\"")))?;
                let v = v.cast_to::<f32>().map_err(tract_err(w))?;
                let view = v.to_plain_array_view::<f32>().map_err(tract_err(w))?;
                Ok(view.iter().copied().collect())
            })
            .collect()
    }

    fn plan(&self, outputs: &[String]) -> Result<Plan, ConvertError> {
        // A poisoned lock only means another thread panicked mid-insert; the
        // map is still usable.
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(outputs) {
            return Ok(p.clone());
        }
        let mut model = self.model.clone();
        model
            .select_outputs_by_name(outputs)
            .map_err(tract_err("selecting the requested tensors"))?;
        let plan = guarded("optimizing and planning", || {
            model.into_optimized()?.into_runnable()
        })?;
        plans.insert(outputs.to_vec(), plan.clone());
        Ok(plan)
    }
}

/// Registers Upsample (opsets 7–9, deprecated in 10), which tract does not
/// know, as the Resize-10 it is: asymmetric coordinates, nearest rounding
/// down, the scales as input 1 (where opsets 7 and 8 give an attribute,
/// [`upsample_scales_as_inputs`] has made them one).
fn register_upsample(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register.insert("Upsample", |ctx, node| {
        let Some(&resize) = ctx.framework.op_register.0.get("Resize") else {
            anyhow::bail!("tract has no Resize");
        };
        let resize_10 = tract_onnx::model::ParsingContext {
            onnx_operator_set_version: 10,
            framework: ctx.framework,
            model: ctx.model,
            parent_graphs: ctx.parent_graphs.clone(),
            model_dir: ctx.model_dir,
            template: ctx.template.clone(),
        };
        resize(&resize_10, &upsample_as_resize_node(node))
    });
}

/// An Upsample node as a Resize-10 node: `mode` kept, nearest rounding
/// down.
fn upsample_as_resize_node(node: &tract_onnx::pb::NodeProto) -> tract_onnx::pb::NodeProto {
    use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};
    let mut node = node.clone();
    node.op_type = "Resize".into();
    node.attribute.retain(|a| a.name == "mode");
    node.attribute.push(AttributeProto {
        name: "nearest_mode".into(),
        r#type: AttributeType::String as i32,
        s: b"floor".to_vec(),
        ..Default::default()
    });
    node
}

/// An Upsample's `scales` attribute (opsets 7 and 8) as its input 1, an
/// initializer, as Upsample-9 and Resize-10 take them.
fn upsample_scales_as_inputs(proto: &mut ModelProto) {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::TensorProto;
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    for (i, node) in graph.node.iter_mut().enumerate() {
        if node.op_type != "Upsample" || !node.domain.is_empty() || node.input.len() != 1 {
            continue;
        }
        let Some(at) = node.attribute.iter().position(|a| a.name == "scales") else {
            continue;
        };
        let scales = node.attribute.remove(at).floats;
        let name = format!("medq_upsample_scales_{i}");
        graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: vec![scales.len() as i64],
            data_type: DataType::Float as i32,
            float_data: scales,
            ..Default::default()
        });
        node.input.push(name);
    }
}

/// Every IsInf as the comparison it is: `|x| == ∞`, or `x == ±∞` when it
/// detects one sign only (`detect_positive`, `detect_negative`). tract
/// cannot evaluate IsInf ("Element wise eval in-place not defined"), and
/// `torch.nan_to_num` exports one (the legacy exporter).
fn is_inf_as_equal(proto: &mut ModelProto) {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{NodeProto, TensorProto};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    for (i, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        let flag = |name: &str| {
            node.attribute
                .iter()
                .find(|a| a.name == name)
                .is_none_or(|a| a.i != 0)
        };
        let (positive, negative) = (flag("detect_positive"), flag("detect_negative"));
        let (Some(x), Some(y)) = (node.input.first(), node.output.first()) else {
            nodes.push(node);
            continue;
        };
        if node.op_type != "IsInf" || !node.domain.is_empty() || !(positive || negative) {
            nodes.push(node);
            continue;
        }
        let infinity = format!("medq_is_inf_{i}_infinity");
        let (compared, value) = match (positive, negative) {
            (true, true) => {
                let magnitude = format!("{x}/medq_abs_{i}");
                nodes.push(NodeProto {
                    name: format!("{}/medq_abs", node.name),
                    op_type: "Abs".into(),
                    input: vec![x.clone()],
                    output: vec![magnitude.clone()],
                    ..Default::default()
                });
                (magnitude, f32::INFINITY)
            }
            (true, false) => (x.clone(), f32::INFINITY),
            _ => (x.clone(), f32::NEG_INFINITY),
        };
        constants.push(TensorProto {
            name: infinity.clone(),
            data_type: DataType::Float as i32,
            float_data: vec![value],
            ..Default::default()
        });
        nodes.push(NodeProto {
            name: node.name.clone(),
            op_type: "Equal".into(),
            input: vec![compared, infinity],
            output: vec![y.clone()],
            ..Default::default()
        });
    }
    graph.node = nodes;
    graph.initializer.extend(constants);
}

/// Every `Pad` in mode `wrap` (opset 19: the dynamo exporter's circular
/// padding), which tract does not run, as the Slices and Concat PyTorch's
/// legacy exporter writes for it: along each padded axis, the axis's last
/// `before` values, the tensor, its first `after` values. medq's lowering
/// takes pads of at most the axis, where the two agree; a Pad whose pads or
/// axes are not constants is left for the converter to refuse.
fn wrap_pads_as_slices(proto: &mut ModelProto) {
    use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let consts = crate::load::qdq::Consts::new(graph);
    let ints = |name: &str| -> Option<Vec<i64>> {
        let c = crate::load::tensor::from_proto(consts.get(name)?).ok()?;
        c.as_i64().map(<[i64]>::to_vec)
    };
    let int64s = |name: String, v: Vec<i64>| TensorProto {
        name,
        dims: vec![v.len() as i64],
        data_type: tract_onnx::pb::tensor_proto::DataType::Int64 as i32,
        int64_data: v,
        ..Default::default()
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    for node in &graph.node {
        let wrap = node.op_type == "Pad"
            && node.domain.is_empty()
            && node
                .attribute
                .iter()
                .any(|a| a.name == "mode" && a.s == b"wrap");
        let operand = |k: usize| node.input.get(k).filter(|s| !s.is_empty());
        let pads = operand(1).and_then(|p| ints(p));
        let axes = match operand(3) {
            Some(a) => ints(a),
            None => pads.as_ref().map(|p| (0..p.len() as i64 / 2).collect()),
        };
        let (true, Some(x), Some(y), Some(pads), Some(axes)) =
            (wrap, node.input.first(), node.output.first(), pads, axes)
        else {
            nodes.push(node.clone());
            continue;
        };
        if pads.len() != 2 * axes.len() {
            nodes.push(node.clone());
            continue;
        }
        let name = |s: &str| format!("{}/medq_wrap/{s}", node.name);
        let mut current = x.clone();
        let padded: Vec<(usize, i64)> = axes
            .iter()
            .copied()
            .enumerate()
            .filter(|&(k, _)| pads[k] != 0 || pads[k + axes.len()] != 0)
            .collect();
        for (step, &(k, axis)) in padded.iter().enumerate() {
            let (before, after) = (pads[k], pads[k + axes.len()]);
            let mut parts = Vec::new();
            let mut slice = |what: &str, start: i64, end: i64| {
                let out = name(&format!("{what}{step}"));
                let (s, e, a) = (
                    name(&format!("{what}{step}_starts")),
                    name(&format!("{what}{step}_ends")),
                    name(&format!("{what}{step}_axes")),
                );
                constants.push(int64s(s.clone(), vec![start]));
                constants.push(int64s(e.clone(), vec![end]));
                constants.push(int64s(a.clone(), vec![axis]));
                nodes.push(NodeProto {
                    name: out.clone(),
                    op_type: "Slice".into(),
                    input: vec![current.clone(), s, e, a],
                    output: vec![out.clone()],
                    ..Default::default()
                });
                out
            };
            if before > 0 {
                parts.push(slice("tail", -before, i64::MAX));
            }
            parts.push(current.clone());
            if after > 0 {
                parts.push(slice("head", 0, after));
            }
            let last = step + 1 == padded.len();
            let out = if last {
                y.clone()
            } else {
                name(&format!("padded{step}"))
            };
            nodes.push(NodeProto {
                name: out.clone(),
                op_type: "Concat".into(),
                input: parts,
                output: vec![out.clone()],
                attribute: vec![AttributeProto {
                    name: "axis".into(),
                    r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
                    i: axis,
                    ..Default::default()
                }],
                ..Default::default()
            });
            current = out;
        }
        if padded.is_empty() {
            nodes.push(NodeProto {
                name: name("identity"),
                op_type: "Identity".into(),
                input: vec![x.clone()],
                output: vec![y.clone()],
                ..Default::default()
            });
        }
    }
    graph.node = nodes;
    graph.initializer.extend(constants);
}

/// Puts a `Reshape` to `[batch, length, 1]` before every STFT's signal.
/// The ONNX spec gives a real signal that shape, and tract requires it; the
/// legacy PyTorch exporter writes `[batch, length]`, which ONNX Runtime
/// also takes. (`[0, -1, 1]` keeps a signal already of that shape.)
fn stft_signals_as_rank_3(proto: &mut ModelProto) {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{NodeProto, TensorProto};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut added = false;
    for (i, mut node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.op_type == "STFT" && node.domain.is_empty() {
            if let Some(signal) = node.input.first_mut() {
                let reshaped = format!("{signal}/medq_signal_{i}");
                nodes.push(NodeProto {
                    name: format!("{}/medq_signal", node.name),
                    op_type: "Reshape".into(),
                    input: vec![signal.clone(), "medq_stft_signal_shape".into()],
                    output: vec![reshaped.clone()],
                    ..Default::default()
                });
                *signal = reshaped;
                added = true;
            }
        }
        nodes.push(node);
    }
    graph.node = nodes;
    if added {
        graph.initializer.push(TensorProto {
            name: "medq_stft_signal_shape".into(),
            dims: vec![3],
            data_type: DataType::Int64 as i32,
            int64_data: vec![0, -1, 1],
            ..Default::default()
        });
    }
}

/// Write the graph inputs' `shapes` into `proto`, every `dim_param` they fix
/// into `value_info` and the outputs as its size, and erase the other
/// symbols there; when a shape overrides a fixed dim (an export's batch),
/// erase the declared shapes of the outputs and `value_info` altogether.
/// Returns the input names.
fn pin_symbols(proto: &mut ModelProto, shapes: &[Vec<usize>]) -> Result<Vec<String>, ConvertError> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| ConvertError::FloatRef("the model has no graph".into()))?;
    let initializers: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let mut sizes: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::new();
    let mut repinned = false;
    let mut real = graph
        .input
        .iter_mut()
        .filter(|i| !initializers.contains(&i.name));
    for shape in shapes {
        let Some(input) = real.next() else {
            return Err(ConvertError::FloatRef(format!(
                "{} input shapes for a model with {} inputs",
                shapes.len(),
                names.len()
            )));
        };
        for (i, dim) in dims_mut(input).into_iter().flatten().enumerate() {
            match (&dim.value, shape.get(i)) {
                (Some(dimension::Value::DimParam(p)), Some(&n)) => {
                    sizes.insert(p.clone(), n);
                }
                (Some(dimension::Value::DimValue(m)), Some(&n)) if *m != n as i64 => {
                    repinned = true;
                    dim.value = Some(dimension::Value::DimValue(n as i64));
                }
                _ => {}
            }
        }
        names.push(input.name.clone());
    }
    if repinned {
        // An input's fixed batch overridden (`--input-shape`): the declared
        // shapes of every other tensor were traced at the old batch, so they
        // go, and tract infers them all.
        for info in graph.output.iter_mut().chain(graph.value_info.iter_mut()) {
            if let Some(type_proto::Value::TensorType(t)) =
                info.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.shape = None;
            }
        }
    }
    let fix = |info: &mut ValueInfoProto| {
        for dim in dims_mut(info).into_iter().flatten() {
            if let Some(dimension::Value::DimParam(p)) = &dim.value {
                dim.value = sizes.get(p).map(|&n| dimension::Value::DimValue(n as i64));
            }
        }
    };
    graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
        .for_each(fix);
    Ok(names)
}

/// The dims of a tensor-typed value, when it declares a shape.
fn dims_mut(
    info: &mut ValueInfoProto,
) -> Option<&mut Vec<tract_onnx::pb::tensor_shape_proto::Dimension>> {
    match info.r#type.as_mut()?.value.as_mut()? {
        type_proto::Value::TensorType(t) => t.shape.as_mut().map(|s| &mut s.dim),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{int64s, one_node};
    use prost::Message;

    /// tract asserts on a negative GatherND index (valid ONNX); the
    /// reference reports it as an error instead of unwinding through the
    /// converter.
    #[test]
    fn is_inf_runs_as_a_comparison() {
        // torch.nan_to_num(log(x), neginf=-10) as the legacy exporter writes
        // it: IsInf (negative only, and both signs) under a Where.
        use crate::ops::testing::{attr_i, floats, node};
        for (positive, want) in [(0, [-10.0, 0.0, 2f32.ln()]), (1, [-10.0, 0.0, 2f32.ln()])] {
            let mut model = one_node(
                "Log",
                &[1, 3],
                &[],
                vec![],
                vec![floats("fill", &[], &[-10.0])],
            );
            let graph = model.graph.as_mut().unwrap();
            graph.node[0].output = vec!["log".into()];
            graph.node.push(node(
                "IsInf",
                &["log"],
                "inf",
                vec![attr_i("detect_positive", positive)],
            ));
            graph
                .node
                .push(node("Where", &["inf", "fill", "log"], "y", vec![]));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.onnx");
            std::fs::write(&path, model.encode_to_vec()).unwrap();
            let got = FloatRef::new(&path, &[1, 3])
                .and_then(|r| r.run(&[0.0, 1.0, 2.0], &["y".to_string()]))
                .expect("tract runs IsInf as a comparison");
            assert_eq!(got[0], want, "detect_positive {positive}");
        }
    }

    #[test]
    fn a_panic_inside_tract_is_an_error() {
        let model = one_node(
            "GatherND",
            &[1, 4, 3],
            &["i"],
            vec![],
            vec![int64s("i", &[1, 2, 1], &[-1, 0])],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let outcome =
            FloatRef::new(&path, &[1, 4, 3]).and_then(|r| r.run(&[0.5; 12], &["y".to_string()]));
        let err = outcome
            .expect_err("tract cannot run a negative GatherND index")
            .to_string();
        assert!(
            err.contains("tract, the float reference, failed inside"),
            "{err}"
        );
    }
}
