//! Mixed int8/int16 precision: which activation tensors may be stored as
//! int16 (symmetric, zero point 0; `runtime/NUMERICS.md`), and what
//! `--precision auto` aims for when it raises the fewest of them.
//!
//! The unit raised is a layer's output: the tensor a Conv, ConvTranspose,
//! FullyConnected, MatMul, Softmax, Add, Sub, Mul, Div, Min, Max, LayerNorm,
//! ReduceSum (ReduceMean), ReduceMax, ReduceL2, Lstm or Gru writes, with the tensors that MaxPool,
//! AvgPool, Pad, Reshape, Transpose, Gather (Slice, Split) and the tables (Lut:
//! GELU, sigmoid, ...) carry it into (those ops keep their input's
//! encoding; an int16 table interpolates 513 entries), and the Concats it
//! joins (an int16 output; their other inputs may stay int8). Every reader of a raised tensor
//! must read int16 itself (one of those layers or movers), so no
//! conversion op is ever inserted and int16 values reach the next layer
//! intact. In attention, that raises the scores `Q·Kᵀ` and the
//! probabilities, which int8 keeps to 1/256 steps; in a residual network
//! or a transformer, the residual stream (the Adds, and the LayerNorms
//! that read it); in a feed-forward block, the GELU table between its two
//! products; in a written-out normalization or softmax, its Sub, Mul, Div,
//! Min and Max; in a stacked recurrent network, the sequence one LSTM or
//! GRU passes the next and the hidden state its head reads (the cell
//! computes it in Q0.15, which int8 would cut to 8 bits). A layer whose
//! output feeds anything else (ArgMax, Resize, ...) stays int8. A raised
//! tensor may be a graph output (a raw logit head the application reads
//! itself, `Interpreter::output_i16`), except a Softmax's: a classifier's
//! probabilities stay int8, where 1/256 steps are far inside the bounds.
//! A graph input may be raised too, when everything reading it reads int16:
//! an image normalised as `u8 / 127.5 − 1` has no exact int8 encoding (its
//! zero point would be −0.5), and on a detector that half step alone can
//! cost more than the bounds allow.
//!
//! A raised Conv or FullyConnected may also store its weights as int16
//! (16x16, [`Graph::wide_weights`]): `--precision auto` adds those when
//! int16 outputs alone do not reach the target, for models whose int8
//! weights are the limit (a head taking the difference of large terms).

use std::collections::BTreeSet;

use crate::error::ConvertError;
use crate::evaluate::Evaluation;
use crate::ir::{Graph, Node, Op, TensorId};
use crate::ops::top_k::TopK;

/// Whether `op` can read an int16 activation: the layers that can write
/// one, and the ops that carry one on.
fn reads_wide(op: &Op) -> bool {
    raises(op) || moves(op) || joins(op)
}

/// Whether `op` can write an int16 activation (an ArgMax's indices past
/// 128, which its lowering makes int16 whatever the precision).
fn writes_wide(op: &Op) -> bool {
    raises(op)
        || moves(op)
        || joins(op)
        || matches!(op, Op::ArgMax(_) | Op::TopK(TopK { indices: true, .. }))
}

/// Concat and Where (Select): they requantize each input to their output,
/// so their inputs may mix int8 and int16; the output is int16 when any
/// input is (a U-Net's skip joined to an int16 branch, masked int16 scores,
/// keep that branch's precision).
fn joins(op: &Op) -> bool {
    matches!(op, Op::Concat(_) | Op::Where(_))
}

/// Whether `op`'s output is a unit `--precision` may raise.
fn raises(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_)
            | Op::ConvTranspose(_)
            | Op::FullyConnected(_)
            | Op::MatMul(_)
            | Op::Softmax(_)
            | Op::Add(_)
            | Op::Mul(_)
            | Op::Binary(_)
            | Op::LayerNorm(_)
            | Op::Recurrent(_)
            | Op::Reduce(_)
    )
}

/// Ops whose output keeps their input's encoding, int16 included (a table
/// changes the scale, not the encoding: int16 in, int16 out).
pub(crate) fn moves(op: &Op) -> bool {
    matches!(
        op,
        Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::Pad(_)
            | Op::Reshape
            | Op::Transpose(_)
            | Op::Select(_)
            | Op::Unary(_)
            | Op::Pointwise(_)
    )
}

/// Whether `node`'s operands and output are in encodings its kernel takes;
/// the guard every lowering passes, whoever chose `graph.wide`.
pub fn check_node(graph: &Graph, node: &Node) -> Result<(), ConvertError> {
    let wide = |t: &TensorId| graph.wide.contains(t);
    let refuse = |why: &str| ConvertError::Quantization {
        node: node.name.clone(),
        reason: format!("mixed precision: {why}"),
    };
    let kind = node.op.def().kind();
    if wide(&node.output) && !writes_wide(&node.op) {
        return Err(refuse(&format!("{kind} cannot write an int16 output")));
    }
    if node.inputs.iter().any(wide) && !reads_wide(&node.op) {
        return Err(refuse(&format!("{kind} cannot read an int16 input")));
    }
    if moves(&node.op)
        && node
            .inputs
            .first()
            .is_some_and(|t| wide(t) != wide(&node.output))
    {
        return Err(refuse(&format!(
            "{kind} keeps its input's encoding, so its input and output are both int16 or both int8"
        )));
    }
    if joins(&node.op) && node.inputs.iter().any(wide) != wide(&node.output) {
        return Err(refuse(&format!(
            "{kind}'s output is int16 exactly when one of its inputs is"
        )));
    }
    if graph.int16_weights(node) {
        if !takes_wide_weights(&node.op) {
            return Err(refuse(&format!("{kind} has no int16-weight kernel")));
        }
        if !(wide(&node.output) || node.inputs.iter().any(wide)) {
            let hint = match graph.qdq.wide_weights.contains(&node.name) {
                true => {
                    "; the model quantizes the weights to 16 bits and the activations to 8, and \
                     medq has no 8x16 kernel: quantize the activations to 16 bits too (A16W16) \
                     or the weights to 8"
                }
                false => "",
            };
            return Err(refuse(&format!(
                "int16 weights need an int16 layer (an int16 input or output){hint}"
            )));
        }
        let fixed_int8 = graph.qdq.weight_scales.contains_key(&node.name)
            && !graph.qdq.wide_weights.contains(&node.name);
        if fixed_int8 {
            return Err(refuse("the QDQ model fixes this layer's int8 weights"));
        }
    }
    Ok(())
}

/// Conv and FullyConnected: the layers with 16x16 kernels.
fn takes_wide_weights(op: &Op) -> bool {
    matches!(op, Op::Conv(_) | Op::FullyConnected(_))
}

/// Whether `layer` can also take int16 weights once raised: a Conv or
/// FullyConnected whose weights the model does not fix (QDQ).
pub fn can_widen_weights(graph: &Graph, layer: &Raisable) -> bool {
    let Some(node) = layer.node.map(|n| &graph.nodes[n]) else {
        return false;
    };
    takes_wide_weights(&node.op) && !graph.qdq.weight_scales.contains_key(&node.name)
}

/// One layer that can run with an int16 output, or a graph input that can
/// be int16.
#[derive(Clone, Debug, PartialEq)]
pub struct Raisable {
    /// The Conv, ConvTranspose, FullyConnected, MatMul, Softmax, Add, Sub,
    /// Mul, Div, Min, Max, LayerNorm, ReduceSum/ReduceMax/ReduceL2, Lstm or Gru node;
    /// `None` for a graph input.
    pub node: Option<usize>,
    /// Its output (or the input) and the tensors movers carry it into, in
    /// id order.
    pub tensors: Vec<TensorId>,
}

impl Raisable {
    /// The layer's node name, or the graph input's tensor name.
    pub fn name<'g>(&self, graph: &'g Graph) -> &'g str {
        match self.node {
            Some(n) => &graph.nodes[n].name,
            None => self.tensors.first().map_or("", |&t| &graph.tensors[t].name),
        }
    }
}

/// The tensors raising `node`'s output takes along, or why it cannot be
/// raised.
pub fn closure(graph: &Graph, node: usize) -> Result<Vec<TensorId>, String> {
    let Some(n) = graph.nodes.get(node) else {
        return Err(format!("no node {node}"));
    };
    if !raises(&n.op) {
        return Err(format!(
            "{} is not a Conv, ConvTranspose, FullyConnected, MatMul, Softmax, Add, Sub, Mul, Div, Min, Max, LayerNorm, ReduceSum, ReduceMax, ReduceL2, LSTM or GRU layer",
            n.op.def().kind()
        ));
    }
    if matches!(n.op, Op::Softmax(_)) && graph.outputs.contains(&n.output) {
        return Err(
            "a Softmax graph output stays int8 (its probabilities are read as int8)".into(),
        );
    }
    carry(graph, n.output)
}

/// `start` and the tensors movers and Concats carry it into, or why one of
/// their readers cannot read int16.
fn carry(graph: &Graph, start: TensorId) -> Result<Vec<TensorId>, String> {
    let mut set = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(t) = todo.pop() {
        if !set.insert(t) {
            continue;
        }
        let name = &graph.tensors[t].name;
        // A QDQ model's own encodings are kept as it gives them.
        if graph.qdq.activation(name).is_some() {
            return Err(format!(
                "{name} has its own int8 encoding in this QDQ model, which is kept"
            ));
        }
        for c in graph.consumers(t) {
            let reader = &graph.nodes[c];
            if !reads_wide(&reader.op) {
                return Err(format!(
                    "{name} is read by {} ({}), which takes int8 only",
                    reader.name,
                    reader.op.def().kind()
                ));
            }
            if let Op::Recurrent(rec) = &reader.op {
                // The step input's bound; an initial state may be int16 at
                // any size.
                if reader.inputs.first() == Some(&t)
                    && rec.input_size > medq::kernels::MAX_INPUT_S16
                {
                    return Err(format!(
                        "{name} is read by {} ({}), which takes an int16 step input of at most {} features, not {}",
                        reader.name,
                        reader.op.def().kind(),
                        medq::kernels::MAX_INPUT_S16,
                        rec.input_size
                    ));
                }
            }
            if moves(&reader.op) || joins(&reader.op) {
                todo.push(reader.output);
            }
        }
    }
    Ok(set.into_iter().collect())
}

/// Every graph input that can be int16, in input order, then every layer
/// that can run with an int16 output, in node order.
pub fn raisable(graph: &Graph) -> Vec<Raisable> {
    let inputs = graph.inputs.iter().filter_map(|&t| {
        carry(graph, t).ok().map(|tensors| Raisable {
            node: None,
            tensors,
        })
    });
    let layers = (0..graph.nodes.len()).filter_map(|node| {
        closure(graph, node).ok().map(|tensors| Raisable {
            node: Some(node),
            tensors,
        })
    });
    inputs.chain(layers).collect()
}

/// `graph` with the outputs of `layers` (and what movers carry them into)
/// stored as int16, and the weights of `wide_weights` (raised layers too,
/// each a Conv or FullyConnected) as int16.
pub fn with_raised(graph: &Graph, layers: &[&Raisable], wide_weights: &[&Raisable]) -> Graph {
    let mut g = graph.clone();
    // On top of the tensors the graph has int16 already (an ArgMax's
    // indices past 128).
    g.wide = layers
        .iter()
        .chain(wide_weights)
        .flat_map(|r| r.tensors.iter().copied())
        .chain(graph.wide.iter().copied())
        .collect();
    g.wide_weights = wide_weights
        .iter()
        .filter_map(|r| r.node.map(|n| graph.nodes[n].output))
        .collect();
    g
}

/// The layers `names` name (a raisable node's name or its output
/// tensor's, or a graph input's), or which name cannot be raised and why.
pub fn named(graph: &Graph, names: &[String]) -> Result<Vec<Raisable>, ConvertError> {
    names
        .iter()
        .map(|name| {
            let input = graph
                .inputs
                .iter()
                .find(|&&t| graph.tensors[t].name == *name);
            if let Some(&t) = input {
                let tensors = carry(graph, t).map_err(|why| {
                    ConvertError::Usage(format!("--int16 {name}: cannot be int16: {why}"))
                })?;
                return Ok(Raisable {
                    node: None,
                    tensors,
                });
            }
            let node = graph
                .nodes
                .iter()
                .position(|n| n.name == *name || graph.tensors[n.output].name == *name)
                .ok_or_else(|| {
                    ConvertError::Usage(format!(
                        "--int16 {name}: no layer or tensor of that name (raisable: {})",
                        raisable_names(graph)
                    ))
                })?;
            let tensors = closure(graph, node).map_err(|why| {
                ConvertError::Usage(format!("--int16 {name}: cannot run in int16: {why}"))
            })?;
            Ok(Raisable {
                node: Some(node),
                tensors,
            })
        })
        .collect()
}

fn raisable_names(graph: &Graph) -> String {
    let all = raisable(graph);
    let names: Vec<&str> = all.iter().map(|r| r.name(graph)).collect();
    match names.is_empty() {
        true => "none".into(),
        false => names.join(", "),
    }
}

/// How activations are stored (`--precision`, `--int16`).
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// Every activation int8.
    Int8,
    /// The layers named (nodes or their output tensors) get int16 outputs.
    Layers(Vec<String>),
    /// Every layer that can be raised gets an int16 output (`--precision
    /// int16`): the most precise file, TFLite's 16x8 mode where medq has
    /// the kernels.
    All,
    /// The fewest layers whose int16 outputs reach the target.
    Auto(Target),
}

/// `graph` with the int16 tensors and weights of `raised` when every node
/// can take that (the same tensors in a graph of the same structure, e.g.
/// before pruning); `None` when some node cannot.
pub fn with_tensors(graph: &Graph, raised: &Graph) -> Option<Graph> {
    let (wide, wide_weights) = (&raised.wide, &raised.wide_weights);
    if wide
        .iter()
        .chain(wide_weights)
        .any(|&t| t >= graph.tensors.len())
    {
        return None;
    }
    let mut g = graph.clone();
    g.wide = wide.clone();
    g.wide_weights = wide_weights.clone();
    g.nodes
        .iter()
        .all(|n| check_node(&g, n).is_ok())
        .then_some(g)
}

/// What `--precision auto` must reach, measured float against quantized on
/// the `--select` samples, or the calibration samples without them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Every output's SQNR at least this many dB (`--target-sqnr`).
    Sqnr(f64),
    /// The agreement bounds used throughout, with a margin
    /// ([`SOFTMAX_TARGET`], [`PROBABILITY_SQNR_TARGET_DB`], [`SQNR_TARGET_DB`]).
    Bounds,
}

/// The bound on a softmax output is |Δp| ≤ 0.03 on 99% of held-out samples.
/// A choice set of a hundred or two samples says little about its 1% tail,
/// so auto asks every choice sample to stay well below the bound: with
/// fewer samples than the tail has, the worst one stands in for it. 0.02
/// (measured two-fold on the calibration samples) left attn_pool and
/// ecg_transformer one held-out sample of 64 past 0.03; 0.015 could not be
/// met on mlp_digits, whose held-out digits are within 0.03 at 0.0175.
pub const SOFTMAX_TARGET: f32 = 0.0175;
/// A probability output's SQNR must also reach this. The worst of a few
/// dozen choice samples is a noisy stand-in for the held-out tail, and an
/// average extrapolates where it does not: wide_lstm's choice samples were
/// all within [`SOFTMAX_TARGET`] at 33 dB, and one held-out sample of 64
/// was at 0.031 (28 dB); gelu20's and unet_upsample's alike. At 35 dB the
/// error's RMS is under 2% of the probabilities' spread.
pub const PROBABILITY_SQNR_TARGET_DB: f64 = 35.0;
/// The bound on any other output's SQNR is 25 dB; auto aims 3 dB above.
pub const SQNR_TARGET_DB: f64 = 28.0;

impl Target {
    pub fn describe(self) -> String {
        match self {
            Target::Sqnr(db) => format!("every output's SQNR ≥ {db} dB"),
            Target::Bounds => format!(
                "probability outputs (a softmax, or --output-activation): |Δp| ≤ {SOFTMAX_TARGET} on every sample \
                 and SQNR ≥ {PROBABILITY_SQNR_TARGET_DB} dB; other outputs: SQNR ≥ {SQNR_TARGET_DB} dB (the bounds \
                 0.03 and 25 dB, with a margin)"
            ),
        }
    }

    /// How far `ev` is inside the target, in dB: ≥ 0 when it is met. A
    /// softmax output's largest |Δp| counts as `20·log10(target / |Δp|)`,
    /// so one scale ranks every output and the worst decides (for a
    /// probability output, the worse of that and its SQNR's).
    pub fn slack_db(self, ev: &Evaluation) -> f64 {
        ev.outputs
            .iter()
            .map(|o| {
                let sqnr = o.sqnr_db.unwrap_or(f64::INFINITY);
                match (self, o.probability()) {
                    (Target::Sqnr(db), _) => sqnr - db,
                    (Target::Bounds, true) => {
                        let worst = f64::from(o.max_abs_error).max(1e-9);
                        let tail = 20.0 * (f64::from(SOFTMAX_TARGET) / worst).log10();
                        tail.min(sqnr - PROBABILITY_SQNR_TARGET_DB)
                    }
                    (Target::Bounds, false) => sqnr - SQNR_TARGET_DB,
                }
            })
            .fold(f64::INFINITY, f64::min)
    }

    pub fn met(self, ev: &Evaluation) -> bool {
        self.slack_db(ev) >= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Array, FusedActivation, Tensor, Window};
    use crate::ops::arg_max::ArgMax;
    use crate::ops::conv::Conv;
    use crate::ops::pool::MaxPool;
    use crate::ops::softmax::Softmax;

    fn tensor(name: &str, shape: &[usize]) -> Tensor {
        Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            value: None,
        }
    }

    fn conv(channels: usize) -> Op {
        Op::Conv(Conv {
            weights: Array::new(
                vec![channels, channels, 1, 1],
                vec![0.5; channels * channels],
            ),
            bias: vec![0.0; channels],
            window: Window {
                kernel: [1, 1],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [0; 4],
            },
            groups: 1,
            activation: FusedActivation::Relu,
        })
    }

    fn node(name: &str, op: Op, inputs: &[TensorId], output: TensorId) -> Node {
        Node {
            name: name.into(),
            onnx_ops: vec![],
            op,
            inputs: inputs.to_vec(),
            output,
        }
    }

    /// x → conv0 → t1 → maxpool → t2 → conv1 → t3 → softmax → y, and conv0's
    /// output also read by an ArgMax, which reads int8 only, when `arg_max`
    /// (t1 → t4, a second output).
    fn net(arg_max: bool) -> Graph {
        let mut g = Graph::default();
        for (name, shape) in [
            ("x", [1, 2, 8]),
            ("t1", [1, 2, 8]),
            ("t2", [1, 2, 4]),
            ("t3", [1, 2, 4]),
            ("y", [1, 2, 4]),
            ("t4", [1, 2, 8]),
        ] {
            g.tensors.push(tensor(name, &shape));
        }
        g.inputs = vec![0];
        g.outputs = vec![4];
        let pool = MaxPool {
            window: Window {
                kernel: [1, 2],
                strides: [1, 2],
                dilations: [1, 1],
                pads: [0; 4],
            },
        };
        g.nodes = vec![
            node("conv0", conv(2), &[0], 1),
            node("pool", Op::MaxPool(pool), &[1], 2),
            node("conv1", conv(2), &[2], 3),
            node("softmax", Op::Softmax(Softmax { axis: 1 }), &[3], 4),
        ];
        if arg_max {
            g.nodes.push(node(
                "argmax",
                Op::ArgMax(ArgMax {
                    axis: 1,
                    select_last: false,
                }),
                &[1],
                5,
            ));
            g.outputs.push(5);
        }
        g
    }

    #[test]
    fn raising_a_layer_takes_the_tensors_movers_carry_it_into() {
        let g = net(false);
        assert_eq!(closure(&g, 0), Ok(vec![1, 2]));
        assert_eq!(closure(&g, 2), Ok(vec![3]));
        assert!(closure(&g, 1).is_err(), "a MaxPool is not a layer to raise");
        let all = raisable(&g);
        assert_eq!(all.len(), 3);
        // The graph input first: conv0 reads it and can read int16.
        assert_eq!((all[0].node, &all[0].tensors[..]), (None, &[0][..]));
        assert_eq!(all[0].name(&g), "x");
        let raised = with_raised(&g, &[&all[1]], &[]);
        for n in &raised.nodes {
            check_node(&raised, n).unwrap();
        }
    }

    #[test]
    fn layers_read_by_int8_only_ops_or_writing_outputs_stay_int8() {
        let g = net(true);
        let why = closure(&g, 0).unwrap_err();
        assert!(
            why.contains("argmax (ArgMax)") && why.contains("int8 only"),
            "{why}"
        );
        assert_eq!(raisable(&g).len(), 2);
        let err = named(&g, &["conv0".into()]).unwrap_err().to_string();
        assert!(
            err.contains("--int16 conv0") && err.contains("int8 only"),
            "{err}"
        );
        // By tensor name too; and an unknown name lists what can be raised.
        assert_eq!(named(&g, &["t3".into()]).unwrap()[0].node, Some(2));
        let err = named(&g, &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("raisable: x, conv1"), "{err}");
    }

    #[test]
    fn the_guard_refuses_what_no_kernel_takes() {
        let mut g = net(true);
        g.wide = [1].into();
        let arg_max = g.nodes[4].clone();
        assert!(check_node(&g, &arg_max).is_err(), "ArgMax reads int16");
        let pool = g.nodes[1].clone();
        assert!(check_node(&g, &pool).is_err(), "MaxPool mixes encodings");
        // ArgMax writes int16 indices (past 128 values) from an int8 input.
        g.wide = [5].into();
        assert!(check_node(&g, &arg_max).is_ok(), "ArgMax writes int16");
        // A Softmax may write int16 (attention's probabilities), but its
        // graph output is not offered for raising.
        g.wide = [4].into();
        let softmax = g.nodes[3].clone();
        assert!(check_node(&g, &softmax).is_ok(), "Softmax writes int16");
        assert!(closure(&g, 3).unwrap_err().contains("Softmax graph output"));
        // A graph input may be int16 where its reader reads int16.
        g.wide = [0].into();
        let conv0 = g.nodes[0].clone();
        assert!(
            check_node(&g, &conv0).is_ok(),
            "a Conv reads an int16 input"
        );
        // A QDQ model's 16-bit weights (A16W16) are int16 weights, which
        // need an int16 layer: not with the model's int8 activations.
        g.qdq.weight_scales.insert("conv0".into(), vec![0.01; 4]);
        g.qdq.wide_weights.insert("conv0".into());
        assert!(g.int16_weights(&conv0));
        assert!(check_node(&g, &conv0).is_ok(), "int16 input, int16 weights");
        g.wide.clear();
        let err = check_node(&g, &conv0).unwrap_err().to_string();
        assert!(err.contains("no 8x16 kernel"), "{err}");
        // Fixed int8 weights are never raised.
        g.qdq.wide_weights.clear();
        g.wide_weights = [1].into();
        g.wide = [0].into();
        let err = check_node(&g, &conv0).unwrap_err().to_string();
        assert!(err.contains("fixes this layer's int8 weights"), "{err}");
    }

    #[test]
    fn a_concat_joins_a_raised_branch_into_an_int16_output() {
        // A U-Net's skip: conv0's t1 and conv1's t3 (from the pool's t2)
        // concatenated into t5, which a third conv reads.
        let mut g = net(false);
        g.nodes.pop();
        g.tensors.push(tensor("t5", &[1, 4, 4]));
        g.tensors.push(tensor("t6", &[1, 4, 4]));
        g.nodes.push(node(
            "concat",
            Op::Concat(crate::ops::concat::Concat { axis: 1 }),
            &[2, 3],
            5,
        ));
        g.nodes.push(node("conv2", conv(4), &[5], 6));
        g.outputs = vec![6];
        // Raising conv1 carries into the Concat's output; pool's t2 (the
        // other input) stays int8.
        assert_eq!(closure(&g, 2), Ok(vec![3, 5]));
        let raised = with_raised(&g, &[&raisable(&g)[2]], &[]);
        assert_eq!(raised.nodes[raised.nodes.len() - 2].name, "concat");
        for n in &raised.nodes {
            check_node(&raised, n).unwrap();
        }
        // Its output is int16 exactly when an input is.
        let concat = g.nodes[3].clone();
        let mut g2 = g.clone();
        g2.wide = [3].into();
        assert!(
            check_node(&g2, &concat).is_err(),
            "int16 input, int8 output"
        );
        g2.wide = [5].into();
        assert!(
            check_node(&g2, &concat).is_err(),
            "int8 inputs, int16 output"
        );
    }

    #[test]
    fn a_layer_writing_a_graph_output_can_be_raised() {
        // x → conv0 → pool → conv1 → t3, a raw graph output.
        let mut g = net(false);
        g.nodes.pop();
        g.outputs = vec![3];
        assert_eq!(closure(&g, 2), Ok(vec![3]));
        let raised = with_raised(&g, &raisable(&g).iter().collect::<Vec<_>>(), &[]);
        assert_eq!(raised.wide, [0, 1, 2, 3].into());
        for n in &raised.nodes {
            check_node(&raised, n).unwrap();
        }
    }
}
