//! Fold a multiplication by a positive constant scalar into the product
//! next to it: `MatMul(q, kᵀ) / √d`, or `q·c` and `kᵀ·c` before it (as
//! PyTorch's scaled-dot-product attention exports it), becomes the MatMul's
//! `alpha`; `Gemm(x) / T` (a temperature) the FullyConnected's weights and
//! bias, and likewise a Conv's. A product by one constant per output
//! channel after a Conv or FullyConnected scales its rows: PyTorch's QAT
//! export of a Conv fused with its BatchNormalization divides the Conv's
//! output by `γ/σ` before the BatchNormalization. The float function is
//! unchanged, one int8 rounding goes, and a MatMul feeding a Softmax gets
//! the Softmax-aware range directly.

use super::fold_bn::scale_rows;
use super::{absorb, label, producer, rescale_fixed_weights, sole_consumer, RewriteLog};
use crate::ir::{Conv, FullyConnected, FusedActivation, Graph, Mul, Op};

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some(n) = g.nodes.get(i) else {
            continue;
        };
        let Op::Mul(Mul {
            activation: FusedActivation::None,
        }) = n.op
        else {
            continue;
        };
        let [a, b] = n.inputs[..] else {
            continue;
        };
        let scalar = |t: usize| {
            g.tensors
                .get(t)
                .and_then(|x| x.value.as_ref())
                .and_then(|v| match v.data[..] {
                    [c] => Some(c),
                    _ => None,
                })
        };
        let (x, c) = match (scalar(a), scalar(b)) {
            (None, Some(c)) => (a, c),
            (Some(c), None) => (b, c),
            _ => {
                if let Some(p) = per_channel(g, a, b, n.output) {
                    log.0.push(format!(
                        "folded {} (per channel) into {}",
                        label(g, i),
                        label(g, p)
                    ));
                    absorb(g, p, i);
                    return true;
                }
                continue;
            }
        };
        let same_shape =
            g.tensors.get(x).map(|t| &t.shape) == g.tensors.get(n.output).map(|t| &t.shape);
        if !(c > 0.0 && c.is_finite() && same_shape) {
            continue;
        }
        let (what, y) = (label(g, i), n.output);
        // After the product: its only reader is this Mul.
        if let (Some(p), Some(_)) = (producer(g, x), sole_consumer(g, x)) {
            if g.nodes.get_mut(p).is_some_and(|pn| scale(&mut pn.op, c)) {
                rescale_fixed_weights(g, p, &[c]);
                absorb(g, p, i);
                log.0
                    .push(format!("folded {what} (× {c}) into the product before it"));
                return true;
            }
        }
        // Before a MatMul that is its only reader.
        let Some(m) = sole_consumer(g, y) else {
            continue;
        };
        let Some(mn) = g.nodes.get_mut(m) else {
            continue;
        };
        if let Op::MatMul(mm) = &mut mn.op {
            mm.alpha *= c;
            for input in &mut mn.inputs {
                if *input == y {
                    *input = x;
                }
            }
            g.nodes.remove(i);
            log.0
                .push(format!("folded {what} (× {c}) into the MatMul after it"));
            return true;
        }
    }
    false
}

/// `a · b`, one a computed tensor made by a Conv or FullyConnected without
/// a fused activation that only this product reads, the other a constant
/// with one finite value per output channel of it (broadcast along every
/// other axis): fold the constant into the producer's rows and return it.
fn per_channel(g: &mut Graph, a: usize, b: usize, y: usize) -> Option<usize> {
    let constant = |t: usize| g.tensors.get(t).and_then(|x| x.value.as_ref());
    let (x, c) = match (constant(a), constant(b)) {
        (None, Some(c)) => (a, c.clone()),
        (Some(c), None) => (b, c.clone()),
        _ => return None,
    };
    let shape = g.tensors.get(x)?.shape.clone();
    if g.tensors.get(y)?.shape != shape || sole_consumer(g, x).is_none() {
        return None;
    }
    let p = producer(g, x)?;
    let channel_axis = match &g.nodes.get(p)?.op {
        Op::Conv(Conv {
            activation: FusedActivation::None,
            ..
        }) => 1,
        Op::FullyConnected(FullyConnected {
            activation: FusedActivation::None,
            ..
        }) => shape.len().checked_sub(1)?,
        _ => return None,
    };
    // The constant, right-aligned against the output, varies along the
    // channel axis alone.
    let offset = shape.len().checked_sub(c.shape.len())?;
    let channels = *shape.get(channel_axis)?;
    let along_channels = c
        .shape
        .iter()
        .enumerate()
        .all(|(k, &d)| d == 1 || (k + offset == channel_axis && d == channels));
    let factors = c.data.clone();
    let usable = along_channels
        && factors.len() == channels
        && factors.iter().all(|f| f.is_finite() && *f != 0.0);
    if !usable {
        return None;
    }
    let zeros = vec![0.0; factors.len()];
    let scaled = match &mut g.nodes.get_mut(p)?.op {
        Op::Conv(Conv { weights, bias, .. })
        | Op::FullyConnected(FullyConnected { weights, bias, .. }) => {
            scale_rows(&mut weights.data, bias, &factors, &zeros)
        }
        _ => false,
    };
    if !scaled {
        return None;
    }
    rescale_fixed_weights(g, p, &factors);
    Some(p)
}

/// Multiplies the output of the product `op` by `c > 0`, if `op` is a
/// product without a fused activation.
fn scale(op: &mut Op, c: f32) -> bool {
    match op {
        Op::MatMul(mm) if mm.activation == FusedActivation::None => mm.alpha *= c,
        Op::FullyConnected(FullyConnected {
            weights,
            bias,
            activation: FusedActivation::None,
        })
        | Op::Conv(Conv {
            weights,
            bias,
            activation: FusedActivation::None,
            ..
        }) => {
            weights.data.iter_mut().for_each(|w| *w *= c);
            bias.iter_mut().for_each(|b| *b *= c);
        }
        _ => return false,
    }
    true
}
