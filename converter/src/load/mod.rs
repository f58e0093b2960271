//! ONNX → float IR.
//!
//! The protobuf is read with tract-onnx's generated types, but the graph is
//! built here rather than taken from tract: medq needs the real ONNX node
//! names, op types and opset for its error messages, and one IR op per
//! supported ONNX op. Shapes are inferred statically (batch 1) and every node
//! whose inputs are all constants is folded, which removes the shape
//! arithmetic exporters emit (`Shape → Gather → Unsqueeze → Concat → Reshape`).

pub mod atan_ratio;
pub mod external;
pub mod float64;
pub(crate) mod fold;
pub mod inputs;
pub(crate) mod node;
mod ort_formats;
pub mod qdq;
pub(crate) mod shape;
pub(crate) mod tensor;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use prost::Message;
use tract_onnx::pb::{GraphProto, ModelProto, ValueInfoProto};

use crate::error::ConvertError;
use crate::ir::{Graph, Node, Op, Tensor, TensorId};
use node::NodeCtx;
use tensor::Const;

/// The ONNX ops medq runs (on computed tensors), from [`crate::ops::ONNX_OPS`].
/// Shape arithmetic on constants may also use the ops in [`CONST_ONLY_OPS`]:
/// they fold away.
pub use crate::ops::SUPPORTED_OPS;

pub use fold::CONST_ONLY_OPS;

/// A loaded model: the float IR plus what the report needs about the source.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub graph: Graph,
    /// The default-domain (`ai.onnx`) opset the model imports.
    pub opset: i64,
    /// The file's bytes, then those of the external data files it names
    /// (each once, in the order first used): the source model, for the
    /// report's hash and size.
    pub source_bytes: Vec<u8>,
    /// `producer_name producer_version`, e.g. `pytorch 2.5.1`.
    pub producer: String,
}

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Full shapes (batch 1 first, unless the input's samples stack whole
    /// inputs) for graph inputs, by name: they fix symbolic dimensions other
    /// than the batch (`--input-shape`). A symbol fixed here also fixes it
    /// in the other inputs that declare it.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// The shapes (`[N, d1, …]`, or `[N, d0, d1, …]` for samples that
    /// stack whole inputs) of the sample files given for the graph inputs,
    /// in order: a dim the model leaves dynamic, and `input_shapes` does
    /// not fix, takes its size in them.
    pub sample_shapes: Vec<Vec<usize>>,
}

/// Load and convert an ONNX file to the float IR.
pub fn load_onnx(path: &Path) -> Result<LoadedModel, ConvertError> {
    load_onnx_with(path, &LoadOptions::default())
}

pub fn load_onnx_with(path: &Path, options: &LoadOptions) -> Result<LoadedModel, ConvertError> {
    let source_bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut model = decode(&source_bytes).map_err(|reason| ConvertError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let external = external::embed_external_data(&mut model, dir)?;
    let mut source_bytes = source_bytes;
    source_bytes.extend(external);
    let (graph, opset) = convert_model(&model, options)?;
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_string();
    Ok(LoadedModel {
        graph,
        opset,
        source_bytes,
        producer,
    })
}

/// Decode a `ModelProto`. Protobuf decoding accepts many byte strings (an
/// empty file is a valid empty message), so a model without a graph or an
/// opset is rejected here too.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, String> {
    let model = ModelProto::decode(bytes).map_err(|e| format!("protobuf decoding failed ({e})"))?;
    if model.graph.is_none() || model.opset_import.is_empty() {
        return Err("the protobuf holds no ONNX graph or opset import".into());
    }
    Ok(model)
}

/// Convert a decoded model. Returns the graph and the default-domain opset.
pub fn convert_model(
    model: &ModelProto,
    options: &LoadOptions,
) -> Result<(Graph, i64), ConvertError> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| {
            ConvertError::InvalidModel("the model imports no default-domain (ai.onnx) opset".into())
        })?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ConvertError::InvalidModel("the model has no graph".into()))?;
    let mut b = Builder {
        graph: Graph::default(),
        env: HashMap::new(),
        const_ids: HashMap::new(),
        assembled: HashMap::new(),
        domain_opsets: model
            .opset_import
            .iter()
            .map(|o| (o.domain.clone(), o.version))
            .collect(),
    };
    // A QDQ model's integer inputs are its quantized ones; the boolean and
    // integer inputs left (masks, lengths) become float ones.
    let (float, fixed) = match qdq::strip(graph, opset)? {
        Some((float, fixed)) => (std::borrow::Cow::Owned(float), Some(fixed)),
        None => (std::borrow::Cow::Borrowed(graph), None),
    };
    let narrowed = float64::float64_as_float32(&float);
    let float = narrowed.as_ref().unwrap_or(&float);
    let bounded = atan_ratio::bounded_atan_ratios(float, opset);
    let float = bounded.as_ref().unwrap_or(float);
    let recast = inputs::non_float_inputs_as_float(float);
    b.load_graph(recast.as_ref().unwrap_or(float), opset, options)?;
    b.graph.integer_inputs = inputs::integer_inputs(float);
    if let Some(fixed) = fixed {
        b.graph.qdq = fixed;
        qdq::wide_activations(&mut b.graph);
        qdq::requantizing_pools(&mut b.graph);
        qdq::requantizing_moves(&mut b.graph);
    }
    Ok((b.graph, opset))
}

/// What an ONNX tensor name stands for while loading.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Const(Rc<Const>),
    Act(TensorId),
    /// A secondary output medq does not compute (e.g. MaxPool's indices).
    Unavailable(String),
}

/// A resolved node input.
pub(crate) struct Input<'a> {
    pub name: &'a str,
    pub value: Value,
}

/// The graph being built; ONNX lowerings ([`crate::ops`]) add nodes to it.
pub(crate) struct Builder {
    graph: Graph,
    env: HashMap<String, Value>,
    /// IR tensors already made for constant operands, by name.
    const_ids: HashMap<String, TensorId>,
    /// The opset the model imports per domain (for refusals of other domains' ops).
    domain_opsets: HashMap<String, i64>,
    /// The tensors ScatterND assembled, by the runs of other tensors they
    /// are made of: a ScatterND into one of them reads through it.
    pub(crate) assembled: HashMap<TensorId, Rc<Vec<crate::ops::gather::Run>>>,
}

impl Builder {
    fn load_graph(
        &mut self,
        g: &GraphProto,
        opset: i64,
        options: &LoadOptions,
    ) -> Result<(), ConvertError> {
        if !g.sparse_initializer.is_empty() {
            return Err(ConvertError::InvalidModel(
                "sparse initializers are not supported; store weights densely".into(),
            ));
        }
        for init in &g.initializer {
            let c = tensor::from_proto(init).map_err(|e| {
                ConvertError::InvalidModel(format!("initializer \"{}\": {e}", init.name))
            })?;
            self.env.insert(init.name.clone(), Value::Const(Rc::new(c)));
        }
        // Older exporters list initializers among the inputs too; those are
        // constants, not model inputs.
        let real_inputs: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|i| !self.env.contains_key(&i.name))
            .collect();
        if real_inputs.is_empty() {
            return Err(ConvertError::InvalidModel(
                "the graph has no (non-initializer) input".into(),
            ));
        }
        let shapes = inputs::resolve(&real_inputs, &options.input_shapes, &options.sample_shapes)?;
        for (input, resolved) in real_inputs.into_iter().zip(shapes) {
            let shape = resolved.shape;
            if shape.contains(&0) {
                return Err(ConvertError::InvalidModel(format!(
                    "input \"{}\" of shape {shape:?} holds no values; medq runs tensors \
                     of at least one value",
                    input.name
                )));
            }
            shape::check_size(&shape).map_err(|e| {
                ConvertError::InvalidModel(format!("input \"{}\": {e}", input.name))
            })?;
            let id = self.add_tensor(&input.name, shape, None);
            self.env.insert(input.name.clone(), Value::Act(id));
            self.graph.inputs.push(id);
            if !resolved.from_samples.is_empty() {
                self.graph
                    .dims_from_samples
                    .insert(id, resolved.from_samples);
            }
        }

        // Where each name is produced, to tell "not yet" from "never".
        let producer = crate::ops::pointwise::producers(g);
        // What the graph reads, so that nodes skip outputs nobody uses.
        let read: HashSet<&str> = g
            .node
            .iter()
            .flat_map(|n| n.input.iter())
            .chain(g.output.iter().map(|o| &o.name))
            .map(String::as_str)
            .collect();
        // Chains of pointwise nodes become one table (`ops::pointwise`).
        let fusions = crate::ops::pointwise::find(g);
        for (index, pb) in g.node.iter().enumerate() {
            if fusions.skips(index) {
                continue;
            }
            let ctx = NodeCtx::new(pb, index, opset).reading(&read);
            let names = fusions.inputs(index).unwrap_or(&pb.input[..]);
            let mut ins = Vec::with_capacity(names.len());
            for name in names {
                if name.is_empty() {
                    ins.push(None);
                    continue;
                }
                let value = match self.env.get(name) {
                    Some(Value::Unavailable(why)) => {
                        return Err(ctx.err(format!("input \"{name}\" is {why}")));
                    }
                    Some(v) => v.clone(),
                    None => {
                        return Err(match producer.get(name.as_str()) {
                            Some(&later) => ConvertError::InvalidModel(format!(
                                "nodes are not in topological order (as ONNX requires): node \"{}\" reads \
                                 \"{name}\", which node {later} produces later",
                                ctx.name
                            )),
                            None => ctx.err(format!("input \"{name}\" is not defined anywhere in the graph")),
                        })
                    }
                };
                ins.push(Some(Input { name, value }));
            }
            let out = match fusions.lower(self, &ctx, &ins, index) {
                Some(out) => out?,
                None => self.node(&ctx, &ins)?,
            };
            let first = ctx.output()?;
            self.bind(&ctx, first, out)?;
            for (k, extra) in pb.output.iter().enumerate() {
                // Outputs the lowering computed itself (Split's) are bound.
                let bound = self.env.contains_key(extra.as_str());
                if k != ctx.primary_output() && !extra.is_empty() && !bound {
                    let why = format!(
                        "output {k} of node \"{}\" ({}), which medq does not compute",
                        ctx.name, ctx.op
                    );
                    self.bind(&ctx, extra, Value::Unavailable(why))?;
                }
            }
        }

        for out in &g.output {
            match self.env.get(&out.name) {
                Some(Value::Act(id)) => self.graph.outputs.push(*id),
                Some(Value::Const(_)) => {
                    return Err(ConvertError::InvalidModel(format!(
                        "graph output \"{}\" is a constant (it does not depend on the input)",
                        out.name
                    )))
                }
                Some(Value::Unavailable(why)) => {
                    return Err(ConvertError::InvalidModel(format!(
                        "graph output \"{}\" is {why}",
                        out.name
                    )))
                }
                None => {
                    return Err(ConvertError::InvalidModel(format!(
                        "graph output \"{}\" is not produced by any node",
                        out.name
                    )))
                }
            }
        }
        if self.graph.outputs.is_empty() {
            return Err(ConvertError::InvalidModel(
                "the graph has no outputs".into(),
            ));
        }
        Ok(())
    }

    fn bind(&mut self, ctx: &NodeCtx, name: &str, value: Value) -> Result<(), ConvertError> {
        if self.env.contains_key(name) {
            return Err(ctx.err(format!("tensor \"{name}\" is produced more than once")));
        }
        self.env.insert(name.to_string(), value);
        Ok(())
    }

    fn add_tensor(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        value: Option<crate::ir::Array>,
    ) -> TensorId {
        self.graph.tensors.push(Tensor {
            name: name.to_string(),
            shape,
            value,
        });
        self.graph.tensors.len() - 1
    }

    /// The IR tensor for a constant operand, made once per name.
    pub(crate) fn const_tensor(&mut self, name: &str, c: &Const) -> Result<TensorId, ConvertError> {
        if let Some(&id) = self.const_ids.get(name) {
            return Ok(id);
        }
        let id = self.add_tensor(name, c.shape.clone(), Some(c.to_array()));
        self.const_ids.insert(name.to_string(), id);
        Ok(id)
    }

    /// Add an IR node producing the ONNX node's first output.
    pub(crate) fn emit(
        &mut self,
        ctx: &NodeCtx,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
    ) -> Result<Value, ConvertError> {
        let tensor = ctx.output()?;
        let id = self.push_node(
            ctx,
            tensor,
            ctx.name.clone(),
            "the output",
            op,
            inputs,
            shape,
        )?;
        Ok(Value::Act(id))
    }

    /// Add an IR node whose output stays inside the ONNX node's lowering
    /// (named `<node>/<part>`, bound to no ONNX name): one direction of a
    /// bidirectional RNN, before its directions are joined.
    pub(crate) fn emit_part(
        &mut self,
        ctx: &NodeCtx,
        part: &str,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
    ) -> Result<TensorId, ConvertError> {
        let name = format!("{}/{part}", ctx.name);
        self.push_node(ctx, &name, name.clone(), part, op, inputs, shape)
    }

    /// Add an IR node producing the ONNX node's output `k` (an op with
    /// several computed outputs, like Split); binds it unless it is the
    /// primary output, which the caller returns.
    pub(crate) fn emit_output(
        &mut self,
        ctx: &NodeCtx,
        k: usize,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
    ) -> Result<Value, ConvertError> {
        let name = output_name(ctx, k)?;
        let node = format!("{}:{k}", ctx.name);
        let id = self.push_node(ctx, &name, node, &format!("output {k}"), op, inputs, shape)?;
        if k != ctx.primary_output() {
            self.bind(ctx, &name, Value::Act(id))?;
        }
        Ok(Value::Act(id))
    }

    /// Output `k` of the ONNX node as the constant `c`: a Split of a
    /// constant (the dynamo exporter splits attention's packed in-projection
    /// weights), or a Split's empty part, which computes nothing and which
    /// Concat drops (a rotary embedding's pass-through half when the whole
    /// head rotates). Bound like [`Self::emit_output`]'s.
    pub(crate) fn const_output(
        &mut self,
        ctx: &NodeCtx,
        k: usize,
        c: Const,
    ) -> Result<Value, ConvertError> {
        let name = output_name(ctx, k)?;
        let value = Value::Const(Rc::new(c));
        if k != ctx.primary_output() {
            self.bind(ctx, &name, value.clone())?;
        }
        Ok(value)
    }

    /// The IR node `node` computing a new tensor `tensor` of `shape`
    /// (refused, as `what`, when empty); what the `emit*` methods share.
    #[allow(clippy::too_many_arguments)]
    fn push_node(
        &mut self,
        ctx: &NodeCtx,
        tensor: &str,
        node: String,
        what: &str,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
    ) -> Result<TensorId, ConvertError> {
        if shape.contains(&0) {
            return Err(ctx.err(format!("{what} would be empty (shape {shape:?})")));
        }
        shape::check_size(&shape).map_err(|e| ctx.err(format!("{what}: {e}")))?;
        if op.takes_one_image() {
            let xs = inputs
                .first()
                .and_then(|&x| self.graph.tensors.get(x))
                .map(|t| t.shape.as_slice())
                .unwrap_or_default();
            if let Some(&n) = xs.first().filter(|&&n| n != 1) {
                return Err(ctx.err(format!(
                    "input of shape {xs:?}: medq's {} takes one sample, [1, C, L] or \
                     [1, C, H, W], and dimension 0 here is {n}",
                    op.kind()
                )));
            }
        }
        let id = self.add_tensor(tensor, shape, None);
        self.graph.nodes.push(Node {
            name: node,
            onnx_ops: vec![ctx.op.to_string()],
            op,
            inputs,
            output: id,
        });
        Ok(id)
    }

    /// Store tensor `t` as int16 whatever the precision asked (an ArgMax's
    /// indices past 128).
    pub(crate) fn make_wide(&mut self, t: TensorId) {
        self.graph.wide.insert(t);
    }

    pub(crate) fn shape_of(&self, v: &Value) -> Vec<usize> {
        match v {
            Value::Const(c) => c.shape.clone(),
            Value::Act(id) => self
                .graph
                .tensors
                .get(*id)
                .map(|t| t.shape.clone())
                .unwrap_or_default(),
            Value::Unavailable(_) => Vec::new(),
        }
    }

    fn node(&mut self, ctx: &NodeCtx, ins: &[Option<Input>]) -> Result<Value, ConvertError> {
        if !ctx.pb.domain.is_empty() && ctx.pb.domain != "ai.onnx" {
            // Named with the opset the model imports for that domain.
            let mut e = unsupported(ctx);
            if let ConvertError::UnsupportedOp { opset, .. } = &mut e {
                *opset = self.domain_opsets.get(&ctx.pb.domain).copied().unwrap_or(0);
            }
            return Err(e);
        }
        let op = crate::ops::onnx_op(ctx.op);
        if let Some(op) = op.filter(|op| op.takes_constants) {
            return (op.lower)(self, ctx, ins);
        }
        let present: Vec<&Input> = ins.iter().flatten().collect();
        let all_const =
            !present.is_empty() && present.iter().all(|i| matches!(i.value, Value::Const(_)));
        let const_only = op.is_none() && CONST_ONLY_OPS.contains(&ctx.op);
        if all_const {
            let consts: Vec<Option<&Const>> = ins
                .iter()
                .map(|i| match i {
                    Some(Input {
                        value: Value::Const(c),
                        ..
                    }) => Some(c.as_ref()),
                    _ => None,
                })
                .collect();
            if let Some(c) = fold::eval(ctx, &consts)? {
                return Ok(Value::Const(Rc::new(c)));
            }
            if let Some(op) = op {
                if let Some(folded) = self.fold_by_lowering(op, ctx, ins)? {
                    return Ok(folded);
                }
            }
            if op.is_none() && !const_only {
                return Err(unsupported(ctx));
            }
            return Err(ctx.err(
                "all inputs are constants, and medq cannot evaluate this op at conversion time; \
                 fold it before export (e.g. with onnxsim)",
            ));
        }
        if const_only {
            let computed = present
                .iter()
                .find(|i| matches!(i.value, Value::Act(_)))
                .map_or("", |i| i.name);
            return Err(ctx.err(format!(
                "medq supports {} only on constants (shape arithmetic that folds away), \
                 but input \"{computed}\" is computed from the model input",
                ctx.op
            )));
        }
        match op {
            Some(op) => (op.lower)(self, ctx, ins),
            None => Err(unsupported(ctx)),
        }
    }
}

impl Builder {
    /// Fold a supported op whose inputs are all constants and which
    /// [`fold::eval`] has no evaluator for (exporters leave large constant
    /// computations unfolded: the dynamo exporter's optimizer skips
    /// tensors past a size limit): lower it into a scratch graph whose input
    /// is the constant data input 0, run the float evaluation of the IR ops
    /// it becomes, and bind every output it computed as a constant. One
    /// mechanism for every op, whose float semantics are those the
    /// converter already defines. `None` when input 0 is not float data.
    fn fold_by_lowering(
        &mut self,
        op: &crate::ops::OnnxOp,
        ctx: &NodeCtx,
        ins: &[Option<Input>],
    ) -> Result<Option<Value>, ConvertError> {
        let Some(Some(Input {
            name,
            value: Value::Const(data),
        })) = ins.first()
        else {
            return Ok(None);
        };
        let tensor::Data::F32(values) = &data.data else {
            return Ok(None);
        };
        let mut scratch = Builder {
            graph: Graph::default(),
            env: HashMap::new(),
            const_ids: HashMap::new(),
            assembled: HashMap::new(),
            domain_opsets: self.domain_opsets.clone(),
        };
        let input = scratch.add_tensor(name, data.shape.clone(), None);
        scratch.graph.inputs.push(input);
        let mut scratch_ins: Vec<Option<Input>> = Vec::with_capacity(ins.len());
        scratch_ins.push(Some(Input {
            name,
            value: Value::Act(input),
        }));
        scratch_ins.extend(ins[1..].iter().map(|i| {
            i.as_ref().map(|i| Input {
                name: i.name,
                value: i.value.clone(),
            })
        }));
        let primary = (op.lower)(&mut scratch, ctx, &scratch_ins)?;
        let computed = crate::float_eval::eval(&scratch.graph, &[values])?;
        let as_const = |v: Value| -> Result<Value, ConvertError> {
            let Value::Act(id) = v else { return Ok(v) };
            let data = computed[id]
                .clone()
                .ok_or_else(|| ctx.err("folding it computed no value"))?;
            let c = Const::f32(scratch.graph.tensors[id].shape.clone(), data);
            Ok(Value::Const(Rc::new(fold::within_limit(ctx, c)?)))
        };
        for (k, out) in ctx.pb.output.iter().enumerate() {
            if k == ctx.primary_output() {
                continue;
            }
            if let Some(v) = scratch.env.get(out) {
                let v = as_const(v.clone())?;
                self.bind(ctx, out, v)?;
            }
        }
        as_const(primary).map(Some)
    }
}

/// The name of the ONNX node's output `k`, which must have one.
fn output_name(ctx: &NodeCtx, k: usize) -> Result<String, ConvertError> {
    match ctx.pb.output.get(k) {
        Some(n) if !n.is_empty() => Ok(n.clone()),
        _ => Err(ctx.err(format!("output {k} has no name"))),
    }
}

pub(crate) fn unsupported(ctx: &NodeCtx) -> ConvertError {
    ConvertError::UnsupportedOp {
        node: ctx.name.clone(),
        op_type: ctx.op.to_string(),
        domain: ctx.pb.domain.clone(),
        opset: ctx.opset,
        supported: &SUPPORTED_OPS,
    }
}
