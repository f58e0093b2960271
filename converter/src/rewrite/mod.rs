//! Float-graph rewrites before quantization. Each preserves the float
//! function the graph computes; together they remove ops the int8 model would
//! otherwise pay for (and lose precision in): BatchNormalization, bias Adds,
//! scalar scales next to a product, separate Relu/Clip nodes, identities,
//! masks added as biases.
//!
//! A rewrite that merges a node into its producer keeps the producer's node
//! name and the *consumer's* output tensor, so the surviving tensor keeps its
//! ONNX name and the float reference can still be asked for it.

mod drop_noops;
pub mod equalize;
mod fold_bias;
mod fold_bn;
mod fold_scale;
mod fuse_activation;
mod fuse_norm;
mod masked_bias;
mod sum_of_squares;

use crate::error::ConvertError;
use crate::ir::{Graph, TensorId};

/// What the rewrites did, one line each, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RewriteLog(pub Vec<String>);

/// Run all passes to a fixpoint, then drop dead nodes and unused tensors.
pub fn rewrite(graph: &mut Graph) -> Result<RewriteLog, ConvertError> {
    let mut log = RewriteLog::default();
    // Every successful step removes a node, so this terminates; the bound
    // only guards against a bug turning into a hang.
    let limit = graph.nodes.len() * 4 + 16;
    for _ in 0..limit {
        let changed = remove_dead(graph, &mut log)
            || drop_noops::run(graph, &mut log)
            || fold_bn::run(graph, &mut log)
            || fold_bias::run(graph, &mut log)
            || fold_scale::run(graph, &mut log)
            || fuse_activation::run(graph, &mut log)
            || fuse_norm::run(graph, &mut log)
            || sum_of_squares::run(graph, &mut log)
            || masked_bias::run(graph, &mut log);
        if !changed {
            compact(graph);
            return Ok(log);
        }
    }
    Err(ConvertError::InvalidModel(
        "graph rewrites did not converge (this is a converter bug)".into(),
    ))
}

fn is_output(g: &Graph, t: TensorId) -> bool {
    g.outputs.contains(&t)
}

/// The node producing `t`, if any.
fn producer(g: &Graph, t: TensorId) -> Option<usize> {
    g.nodes.iter().position(|n| n.output == t)
}

/// The node reading `t`, if it is the only reader and `t` is not a graph
/// output: then `t` may disappear.
fn sole_consumer(g: &Graph, t: TensorId) -> Option<usize> {
    if is_output(g, t) {
        return None;
    }
    match g.consumers(t)[..] {
        [only] => Some(only),
        _ => None,
    }
}

/// Merge `consumer` into `producer` (whose op the caller already updated to
/// compute both): the producer takes over the consumer's output tensor and
/// ONNX op list, and the consumer goes.
fn absorb(g: &mut Graph, producer: usize, consumer: usize) {
    if producer == consumer || producer >= g.nodes.len() || consumer >= g.nodes.len() {
        return;
    }
    let c = g.nodes.remove(consumer);
    let p = if consumer < producer {
        producer - 1
    } else {
        producer
    };
    if let Some(n) = g.nodes.get_mut(p) {
        n.output = c.output;
        n.onnx_ops.extend(c.onnx_ops);
    }
}

/// `"Relu "/relu/Relu""` style label for log lines.
/// Row `c` of `node`'s weights was multiplied by `factors[c]` (one factor:
/// every row): when the model fixed those weights' int8 grid (a QDQ or QAT
/// model), the grid's scales follow, so the integers stay the model's.
fn rescale_fixed_weights(g: &mut Graph, node: usize, factors: &[f32]) {
    let Some(name) = g.nodes.get(node).map(|n| n.name.clone()) else {
        return;
    };
    if let Some(scales) = g.qdq.weight_scales.get_mut(&name) {
        for (c, s) in scales.iter_mut().enumerate() {
            let f = factors.get(c).or(factors.first()).copied().unwrap_or(1.0);
            *s *= f.abs();
        }
    }
}

fn label(g: &Graph, node: usize) -> String {
    g.nodes
        .get(node)
        .map(|n| format!("{} \"{}\"", n.onnx_ops.join("+"), n.name))
        .unwrap_or_default()
}

fn remove_dead(g: &mut Graph, log: &mut RewriteLog) -> bool {
    let dead = g.nodes.iter().position(|n| {
        !is_output(g, n.output) && g.nodes.iter().all(|m| !m.inputs.contains(&n.output))
    });
    match dead {
        Some(i) => {
            log.0
                .push(format!("removed {}: its output is never used", label(g, i)));
            g.nodes.remove(i);
            true
        }
        None => false,
    }
}

/// Drop tensors no node or graph boundary refers to, renumbering the rest.
fn compact(g: &mut Graph) {
    let mut used = vec![false; g.tensors.len()];
    let mut mark = |t: TensorId| {
        if let Some(u) = used.get_mut(t) {
            *u = true;
        }
    };
    g.inputs.iter().copied().for_each(&mut mark);
    g.outputs.iter().copied().for_each(&mut mark);
    for n in &g.nodes {
        n.inputs.iter().copied().for_each(&mut mark);
        mark(n.output);
    }
    let mut remap = vec![usize::MAX; g.tensors.len()];
    let mut kept = Vec::with_capacity(g.tensors.len());
    for (i, t) in std::mem::take(&mut g.tensors).into_iter().enumerate() {
        if used[i] {
            remap[i] = kept.len();
            kept.push(t);
        }
    }
    g.tensors = kept;
    let re = |t: &mut TensorId| *t = remap.get(*t).copied().unwrap_or(*t);
    g.inputs.iter_mut().for_each(re);
    g.outputs.iter_mut().for_each(re);
    for n in &mut g.nodes {
        n.inputs.iter_mut().for_each(re);
        re(&mut n.output);
    }
    // Tensors a lowering made int16 (an ArgMax's indices past 128).
    let moved = |set: &std::collections::BTreeSet<TensorId>| {
        set.iter()
            .filter_map(|&t| remap.get(t).copied().filter(|&r| r != usize::MAX))
            .collect()
    };
    g.wide = moved(&g.wide);
    g.wide_weights = moved(&g.wide_weights);
}
