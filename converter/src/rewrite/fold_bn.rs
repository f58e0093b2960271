//! Fold a BatchNormalization (loaded as a per-channel affine `y = s·x + t`:
//! depthwise 1×1 Conv or diagonal FullyConnected) into the Conv /
//! FullyConnected (or ConvTranspose: PhysNet's temporal upsampling) that
//! feeds it:
//! `w'[c] = w[c]·s[c]`, `b'[c] = b[c]·s[c] + t[c]`, where
//! `s = γ/√(σ²+ε)` and `t = β − μ·s` were computed at load.

use super::{absorb, label, producer, rescale_fixed_weights, sole_consumer, RewriteLog};
use crate::ir::{Conv, FullyConnected, FusedActivation, Graph, Node, Op};

/// The per-channel `(scale, shift)` of a BatchNormalization-derived node, and
/// the activation fused into it (which moves to the producer).
fn affine(n: &Node) -> Option<(Vec<f32>, Vec<f32>, FusedActivation)> {
    if n.onnx_ops.first().map(String::as_str) != Some("BatchNormalization") {
        return None;
    }
    match &n.op {
        Op::Conv(Conv {
            weights,
            bias,
            window,
            groups,
            activation,
        }) => {
            let c = bias.len();
            let trivial =
                window.kernel == [1, 1] && window.strides == [1, 1] && window.pads == [0; 4];
            (trivial && *groups == c && weights.shape == [c, 1, 1, 1])
                .then(|| (weights.data.clone(), bias.clone(), *activation))
        }
        Op::FullyConnected(FullyConnected {
            weights,
            bias,
            activation,
        }) => {
            let c = bias.len();
            if weights.shape != [c, c] {
                return None;
            }
            let diagonal = weights
                .data
                .chunks_exact(c.max(1))
                .enumerate()
                .all(|(i, row)| row.iter().enumerate().all(|(j, &v)| i == j || v == 0.0));
            let diag = (0..c)
                .map(|i| weights.data.get(i * c + i).copied().unwrap_or(0.0))
                .collect();
            diagonal.then(|| (diag, bias.clone(), *activation))
        }
        _ => None,
    }
}

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some((scale, shift, act)) = g.nodes.get(i).and_then(affine) else {
            continue;
        };
        let Some(&x) = g.nodes.get(i).and_then(|n| n.inputs.first()) else {
            continue;
        };
        let Some(p) = producer(g, x) else {
            continue;
        };
        if sole_consumer(g, x) != Some(i) {
            continue;
        }
        let bn_is_conv = matches!(g.nodes.get(i).map(|n| &n.op), Some(Op::Conv { .. }));
        let Some(pn) = g.nodes.get_mut(p) else {
            continue;
        };
        // Channels are axis 1 for Conv and the last axis for FC: the affine
        // must be of the same kind as its producer to act per output channel.
        let ok = match &mut pn.op {
            // A ConvTranspose's weights are regrouped to [Cout, Cin/g, kH,
            // kW] at load: one row per output channel, as a Conv's.
            Op::Conv(Conv {
                weights,
                bias,
                activation,
                ..
            })
            | Op::ConvTranspose(crate::ops::conv_transpose::ConvTranspose {
                weights,
                bias,
                activation,
                ..
            }) if bn_is_conv && *activation == FusedActivation::None => {
                let ok = scale_rows(&mut weights.data, bias, &scale, &shift);
                if ok {
                    *activation = act;
                }
                ok
            }
            Op::FullyConnected(FullyConnected {
                weights,
                bias,
                activation,
            }) if !bn_is_conv && *activation == FusedActivation::None => {
                let ok = scale_rows(&mut weights.data, bias, &scale, &shift);
                if ok {
                    *activation = act;
                }
                ok
            }
            _ => false,
        };
        if ok {
            log.0
                .push(format!("folded {} into {}", label(g, i), label(g, p)));
            rescale_fixed_weights(g, p, &scale);
            absorb(g, p, i);
            return true;
        }
    }
    false
}

/// Row `c` of `w` (one output channel) times `s[c]`; `b[c]·s[c] + t[c]`.
/// `false` (and nothing changed) if the sizes disagree.
pub(super) fn scale_rows(w: &mut [f32], b: &mut [f32], s: &[f32], t: &[f32]) -> bool {
    let c = b.len();
    if c == 0 || s.len() != c || t.len() != c || !w.len().is_multiple_of(c) {
        return false;
    }
    let per = w.len() / c;
    for ((row, &sc), (bias, &sh)) in w.chunks_exact_mut(per).zip(s).zip(b.iter_mut().zip(t)) {
        row.iter_mut().for_each(|v| *v *= sc);
        *bias = *bias * sc + sh;
    }
    true
}
