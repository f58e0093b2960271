//! Lowered ops + arena plan → `.mq` bytes, through the runtime's own writer so
//! that what we write and what devices read cannot drift apart.

use std::collections::HashMap;

use medq::format::layout::{MetaKey, OpCode};
use medq::format::writer::{QuantSpec, Writer};

use crate::error::ConvertError;
use crate::ir::{Graph, TensorId};
use crate::plan::{plan, Plan, PlanTensor};
use crate::quantize::{ConstData, ConstQuant, ConstTensor, LoweredOp, Operand, QuantizedGraph};

/// How Conv and FullyConnected weights are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightStorage {
    /// Every weight a byte, as the runtimes built without `sparse-weights`
    /// and `pow2-weights` read.
    #[default]
    Dense,
    /// Per layer, the smallest of dense, sparse (a bitmap and the non-zero
    /// values, when `sparse`) and, when every weight is 0 or ±2^e, 4-bit
    /// power-of-two codes, for every weight or (when `sparse`) for the
    /// non-zero ones after a bitmap, 3-bit when they are all ±8 … ±64 (as
    /// on a pruned file's grid, [`WeightGrid::Pow2x3`](crate::rounding::WeightGrid)).
    /// Sparse storage is for pruned files only: a runtime then needs
    /// `sparse-weights` because the user pruned.
    SmallerOf { sparse: bool },
}

/// How one layer's weights are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    Dense,
    Sparse,
    Pow2,
    SparsePow2,
    SparsePow2x3,
}

impl Packing {
    pub fn name(self) -> &'static str {
        match self {
            Packing::Dense => "dense",
            Packing::Sparse => "sparse",
            Packing::Pow2 => "pow2",
            Packing::SparsePow2 => "sparse pow2",
            Packing::SparsePow2x3 => "sparse pow2 3-bit",
        }
    }
}

/// The bytes one layer's weights take each way they can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightSizes {
    pub dense: usize,
    pub sparse: usize,
    /// `None` unless every weight is 0 or ±2^e.
    pub pow2: Option<usize>,
    /// A bitmap and a power-of-two code per non-zero; `None` unless every
    /// weight is 0 or ±2^e.
    pub sparse_pow2: Option<usize>,
    /// A bitmap and a 3-bit code per non-zero; `None` unless every
    /// non-zero weight is ±8, ±16, ±32 or ±64.
    pub sparse_pow2x3: Option<usize>,
}

/// The weights of `op` that may be stored packed (Conv and FullyConnected
/// input 1), with the bytes each way takes.
pub fn packing_candidate(op: &LoweredOp) -> Option<(&ConstTensor, WeightSizes)> {
    // The int16 kernels read dense weights only.
    if !matches!(op.opcode, OpCode::Conv | OpCode::FullyConnected) || op.wide {
        return None;
    }
    match op.inputs.get(1)? {
        Operand::Constant(c) => match &c.data {
            ConstData::I8(w) => {
                let rows = c.dims.first().copied().unwrap_or(1);
                let sizes = WeightSizes {
                    dense: w.len(),
                    sparse: medq::sparse_stored_len(w, rows),
                    pow2: medq::pow2_stored_len(w, rows),
                    sparse_pow2: medq::sparse_pow2_stored_len(w, rows),
                    sparse_pow2x3: medq::sparse_pow2x3_stored_len(w, rows),
                };
                Some((c, sizes))
            }
            _ => None,
        },
        Operand::Activation(_) => None,
    }
}

/// Provenance and descriptive metadata stored in the file.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub model_name: String,
    pub converter_version: String,
    pub source_sha256: String,
    pub calibration_sha256: String,
    pub class_labels: Option<Vec<String>>,
    /// The abstain rule's minimum top-1 margin, as the file stores it.
    pub abstain_margin: Option<String>,
    pub notes: String,
    /// Name only the graph's inputs and outputs (`--strip-names`).
    pub strip_names: bool,
}

/// The activation tensors in the order they are planned and written.
pub fn activation_order(graph: &Graph) -> Vec<TensorId> {
    crate::calibrate::activation_tensors(graph)
}

/// Lifetimes of the activation tensors, with in-place Reshapes aliased.
pub fn plan_arena(graph: &Graph, qg: &QuantizedGraph) -> Plan {
    let order = activation_order(graph);
    let index: HashMap<TensorId, usize> = order.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut tensors: Vec<PlanTensor> = order
        .iter()
        .map(|&t| PlanTensor {
            size: graph.tensors[t].shape.iter().product::<usize>()
                * if graph.wide.contains(&t) { 2 } else { 1 },
            def: None,
            uses: vec![],
            is_graph_output: graph.outputs.contains(&t),
            in_place_of: None,
        })
        .collect();
    for (step, op) in qg.ops.iter().enumerate() {
        for input in &op.inputs {
            if let Operand::Activation(t) = input {
                if let Some(&i) = index.get(t) {
                    tensors[i].uses.push(step);
                }
            }
        }
        if let Some(&o) = index.get(&op.output) {
            tensors[o].def = Some(step);
        }
    }
    for (step, op) in qg.ops.iter().enumerate() {
        if !op.opcode.may_run_in_place() {
            continue;
        }
        let Some(Operand::Activation(src)) = op.inputs.first() else {
            continue;
        };
        let (Some(&s), Some(&o)) = (index.get(src), index.get(&op.output)) else {
            continue;
        };
        let dies_here = tensors[s].uses.iter().all(|&u| u <= step) && !tensors[s].is_graph_output;
        if dies_here && tensors[s].size == tensors[o].size {
            tensors[o].in_place_of = Some(s);
        }
    }
    let mut p = plan(&tensors, qg.ops.len());
    // Re-key offsets by tensor id.
    let mut by_id = vec![0; graph.tensors.len()];
    for (i, &t) in order.iter().enumerate() {
        by_id[t] = p.offsets[i];
    }
    p.offsets = by_id;
    p
}

/// How `op`'s weights are written under `storage`, and the bytes that saves
/// against dense: the one rule [`emit`] and the report follow. The smallest
/// way wins; a tie keeps dense, then power-of-two codes (which decode
/// without a walk over a bitmap), then a byte per non-zero.
pub fn packing(op: &LoweredOp, storage: WeightStorage) -> (Packing, usize) {
    let WeightStorage::SmallerOf { sparse } = storage else {
        return (Packing::Dense, 0);
    };
    let Some((_, sizes)) = packing_candidate(op) else {
        return (Packing::Dense, 0);
    };
    let mut best = (Packing::Dense, sizes.dense);
    let when_sparse = |bytes: Option<usize>| bytes.filter(|_| sparse);
    for (packing, bytes) in [
        (Packing::Pow2, sizes.pow2),
        (Packing::Sparse, when_sparse(Some(sizes.sparse))),
        (Packing::SparsePow2, when_sparse(sizes.sparse_pow2)),
        (Packing::SparsePow2x3, when_sparse(sizes.sparse_pow2x3)),
    ] {
        if let Some(bytes) = bytes.filter(|&b| b < best.1) {
            best = (packing, bytes);
        }
    }
    (best.0, sizes.dense - best.1)
}

/// `name` when `keep`, else the empty name of a stripped file.
fn kept(name: &str, keep: bool) -> &str {
    match keep {
        true => name,
        false => "",
    }
}

/// Write the model. `golden` is one sample's quantized inputs (every
/// input's bytes, in order) and its expected output 0.
pub fn emit(
    graph: &Graph,
    qg: &QuantizedGraph,
    arena: &Plan,
    meta: &Metadata,
    golden: Option<(&[i8], &[i8])>,
    storage: WeightStorage,
) -> Result<Vec<u8>, ConvertError> {
    let mut w = Writer::new();
    let mut ids: HashMap<TensorId, u16> = HashMap::new();
    // A stripped file names its graph's inputs and outputs only.
    let named =
        |t: TensorId| !meta.strip_names || graph.inputs.contains(&t) || graph.outputs.contains(&t);
    let const_name = |name| kept(name, !meta.strip_names);
    for t in activation_order(graph) {
        let q = qg.qparams[t].ok_or_else(|| ConvertError::Quantization {
            node: graph.tensors[t].name.clone(),
            reason: "activation tensor without quantization parameters".into(),
        })?;
        let (name, dims) = (
            kept(&graph.tensors[t].name, named(t)),
            &graph.tensors[t].shape,
        );
        let quant = QuantSpec::PerTensor {
            scale: q.scale,
            zero_point: q.zero_point,
        };
        let id = match graph.wide.contains(&t) {
            true => w.add_activation_i16(name, dims, quant, arena.offsets[t]),
            false => w.add_activation(name, dims, quant, arena.offsets[t]),
        };
        ids.insert(t, id);
    }
    // Plain constants with the same type, shape, quantization and values
    // are written once and shared (an LSTM's `Y_c` op reads its `Y_h` op's
    // weights).
    let mut shared: HashMap<(String, Vec<u8>), u16> = HashMap::new();
    for op in &qg.ops {
        let (packing, _) = packing(op, storage);
        let mut inputs = Vec::with_capacity(op.inputs.len());
        for (at, operand) in op.inputs.iter().enumerate() {
            inputs.push(match operand {
                Operand::Activation(t) => {
                    *ids.get(t).ok_or_else(|| ConvertError::Quantization {
                        node: graph.nodes[op.node].name.clone(),
                        reason: format!("input {} is not an activation", graph.tensors[*t].name),
                    })?
                }
                Operand::Constant(c) => {
                    let plain = matches!((packing, at), (Packing::Dense, _) | (_, 0) | (_, 2..));
                    let key = plain.then(|| {
                        let bytes: Vec<u8> = match &c.data {
                            ConstData::I8(d) => d.iter().map(|&v| v as u8).collect(),
                            ConstData::I16(d) => d.iter().flat_map(|v| v.to_le_bytes()).collect(),
                            ConstData::I32(d) => d.iter().flat_map(|v| v.to_le_bytes()).collect(),
                        };
                        let kind = match &c.data {
                            ConstData::I8(_) => "i8",
                            ConstData::I16(_) => "i16",
                            ConstData::I32(_) => "i32",
                        };
                        (format!("{kind} {:?} {:?}", c.dims, c.quant), bytes)
                    });
                    if let Some(&id) = key.as_ref().and_then(|k| shared.get(k)) {
                        id
                    } else {
                        let id = match &c.data {
                            ConstData::I8(data) => {
                                let (name, dims, quant) =
                                    (const_name(&c.name), &c.dims, quant_spec(&c.quant));
                                match (packing, at) {
                                    (Packing::Sparse, 1) => {
                                        w.add_sparse_constant_i8(name, dims, quant, data)
                                    }
                                    (Packing::Pow2, 1) => {
                                        w.add_pow2_constant_i8(name, dims, quant, data)
                                    }
                                    (Packing::SparsePow2, 1) => {
                                        w.add_sparse_pow2_constant_i8(name, dims, quant, data)
                                    }
                                    (Packing::SparsePow2x3, 1) => {
                                        w.add_sparse_pow2x3_constant_i8(name, dims, quant, data)
                                    }
                                    _ => w.add_constant_i8(name, dims, quant, data),
                                }
                            }
                            ConstData::I16(data) => w.add_constant_i16(
                                const_name(&c.name),
                                &c.dims,
                                quant_spec(&c.quant),
                                data,
                            ),
                            ConstData::I32(data) => {
                                w.add_constant_i32(const_name(&c.name), &c.dims, data)
                            }
                        };
                        if let Some(k) = key {
                            shared.insert(k, id);
                        }
                        id
                    }
                }
            });
        }
        let out = *ids
            .get(&op.output)
            .ok_or_else(|| ConvertError::Quantization {
                node: graph.nodes[op.node].name.clone(),
                reason: "output is not an activation".into(),
            })?;
        w.add_op(op.opcode, &inputs, &[out], &op.params);
    }
    let io = |list: &[TensorId]| {
        list.iter()
            .filter_map(|t| ids.get(t).copied())
            .collect::<Vec<u16>>()
    };
    w.set_inputs(&io(&graph.inputs));
    w.set_outputs(&io(&graph.outputs));
    w.set_arena_len(arena.arena_len);
    w.set_metadata(MetaKey::ModelName, &meta.model_name);
    w.set_metadata(MetaKey::ConverterVersion, &meta.converter_version);
    w.set_metadata(MetaKey::SourceSha256, &meta.source_sha256);
    w.set_metadata(MetaKey::CalibrationSha256, &meta.calibration_sha256);
    if let Some(labels) = &meta.class_labels {
        w.set_metadata(MetaKey::ClassLabels, &labels.join("\n"));
    }
    if !meta.notes.is_empty() {
        w.set_metadata(MetaKey::Notes, &meta.notes);
    }
    if let Some(margin) = &meta.abstain_margin {
        w.set_metadata(MetaKey::AbstainMargin, margin);
    }
    if let Some((input, output)) = golden {
        w.set_golden(input, output);
    }
    w.finish().map_err(ConvertError::Format)
}

fn quant_spec(q: &ConstQuant) -> QuantSpec {
    match q {
        ConstQuant::None => QuantSpec::None,
        ConstQuant::PerTensor(p) => QuantSpec::PerTensor {
            scale: p.scale,
            zero_point: p.zero_point,
        },
        ConstQuant::PerChannel { axis, scales } => QuantSpec::PerChannel {
            axis: *axis,
            scales: scales.clone(),
        },
    }
}

/// Whether an opcode's output is a probability distribution (for the report).
pub fn is_softmax(op: OpCode) -> bool {
    op == OpCode::Softmax
}
