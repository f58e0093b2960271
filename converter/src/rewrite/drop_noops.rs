//! Identities (Identity, Dropout, float→float Cast, shape-preserving
//! Reshape, unbounded Clip, +0, ×1, zero Pad, 1×1 stride-1 pools, one-input
//! Concat, the identity permutation) disappear; chains of reshapes become
//! one, and so do chains of transposes (a 3-D convolution's frames put back
//! and taken again by the next one cancel).

use super::{absorb, is_output, label, producer, sole_consumer, RewriteLog};
use crate::ir::{Add, AvgPool, Graph, MaxPool, Mul, Op, Pad, Unary};

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        if is_noop(g, i) && bypass(g, i, log) {
            return true;
        }
        if collapse_reshape(g, i, log) || collapse_transpose(g, i, log) {
            return true;
        }
    }
    false
}

fn is_noop(g: &Graph, i: usize) -> bool {
    let Some(n) = g.nodes.get(i) else {
        return false;
    };
    let Some(&x) = n.inputs.first() else {
        return false;
    };
    let same_shape =
        g.tensors.get(x).map(|t| &t.shape) == g.tensors.get(n.output).map(|t| &t.shape);
    if !same_shape || g.tensors.get(x).is_some_and(|t| t.value.is_some()) {
        return false;
    }
    // Between two encodings a QDQ model fixes, an identity requantizes.
    let fixed = |t: usize| g.tensors.get(t).and_then(|t| g.qdq.activation(&t.name));
    if fixed(n.output).is_some() && fixed(x) != fixed(n.output) {
        return false;
    }
    match &n.op {
        Op::Reshape => true,
        Op::Unary(Unary::Clip { min, max }) => *min == f32::NEG_INFINITY && *max == f32::INFINITY,
        Op::Add(Add { activation }) | Op::Mul(Mul { activation }) => {
            let neutral = if matches!(n.op, Op::Add { .. }) {
                0.0
            } else {
                1.0
            };
            *activation == crate::ir::FusedActivation::None
                && n.inputs.len() == 2
                && n.inputs
                    .get(1)
                    .and_then(|&c| g.tensors.get(c))
                    .and_then(|t| t.value.as_ref())
                    .is_some_and(|v| v.data.iter().all(|&e| e == neutral))
        }
        Op::Pad(Pad { pads, .. }) => pads.iter().all(|&p| p == 0),
        Op::Concat { .. } => n.inputs.len() == 1,
        Op::Transpose(t) => t.perm.iter().enumerate().all(|(i, &p)| i == p),
        Op::MaxPool(MaxPool { window }) | Op::AvgPool(AvgPool { window, .. }) => {
            window.kernel == [1, 1] && window.strides == [1, 1] && window.pads == [0; 4]
        }
        _ => false,
    }
}

/// Remove the identity node `i` (input `x`, output `y`), keeping the ONNX
/// name that matters: `y` when `x`'s producer can take it over, else `x`.
fn bypass(g: &mut Graph, i: usize, log: &mut RewriteLog) -> bool {
    let Some(n) = g.nodes.get(i) else {
        return false;
    };
    let (Some(&x), y) = (n.inputs.first(), n.output) else {
        return false;
    };
    let what = label(g, i);
    if let (Some(p), Some(_)) = (producer(g, x), sole_consumer(g, x)) {
        // The producer writes `y` directly.
        if let Some(pn) = g.nodes.get_mut(p) {
            pn.output = y;
        }
        g.nodes.remove(i);
        log.0.push(format!("dropped {what} (no-op)"));
        return true;
    }
    if !is_output(g, y) {
        for m in &mut g.nodes {
            for inp in &mut m.inputs {
                if *inp == y {
                    *inp = x;
                }
            }
        }
        g.nodes.remove(i);
        log.0.push(format!("dropped {what} (no-op)"));
        return true;
    }
    // Both ends are graph boundaries: keep the copy so names stay.
    false
}

/// Reshape fed only by another Reshape: one Reshape to the final shape.
fn collapse_reshape(g: &mut Graph, i: usize, log: &mut RewriteLog) -> bool {
    let Some(n) = g.nodes.get(i) else {
        return false;
    };
    if !matches!(n.op, Op::Reshape) {
        return false;
    }
    let Some(&t) = n.inputs.first() else {
        return false;
    };
    let Some(p) = producer(g, t) else {
        return false;
    };
    if !matches!(g.nodes.get(p).map(|m| &m.op), Some(Op::Reshape)) || sole_consumer(g, t) != Some(i)
    {
        return false;
    }
    log.0
        .push(format!("merged {} into {}", label(g, i), label(g, p)));
    absorb(g, p, i);
    true
}

/// Transpose fed only by another Transpose: one Transpose by the composed
/// permutation (output axis `j` is the first's input axis `p1[p2[j]]`).
fn collapse_transpose(g: &mut Graph, i: usize, log: &mut RewriteLog) -> bool {
    let Some(n) = g.nodes.get(i) else {
        return false;
    };
    let (Op::Transpose(second), Some(&t)) = (&n.op, n.inputs.first()) else {
        return false;
    };
    let Some(p) = producer(g, t).filter(|_| sole_consumer(g, t) == Some(i)) else {
        return false;
    };
    let Some(Op::Transpose(first)) = g.nodes.get(p).map(|m| &m.op) else {
        return false;
    };
    let composed: Option<Vec<usize>> = second
        .perm
        .iter()
        .map(|&a| first.perm.get(a).copied())
        .collect();
    let Some(perm) = composed.filter(|c| c.len() == first.perm.len()) else {
        return false;
    };
    log.0
        .push(format!("merged {} into {}", label(g, i), label(g, p)));
    if let Some(m) = g.nodes.get_mut(p) {
        m.op = Op::Transpose(crate::ops::transpose::Transpose { perm });
    }
    absorb(g, p, i);
    true
}
