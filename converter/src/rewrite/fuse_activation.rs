//! Fuse Relu / Clip into the Conv, FullyConnected, Add or Mul producing its
//! input: the int8 op then clamps its output range, which costs nothing and
//! gives the tensor a tighter quantization range. Views between them
//! (Reshape, Transpose: a 3-D convolution's frames put back in place) move
//! values without changing them, so the clamp goes through them too.

use super::{absorb, label, producer, sole_consumer, RewriteLog};
use crate::ir::{FusedActivation, Graph, Op, Unary};

/// The clamp `inner` then `outer` amounts to, when it is one clamp.
fn compose(inner: FusedActivation, outer: (f32, f32)) -> Option<FusedActivation> {
    let (a, b) = inner.bounds();
    let (lo, hi) = (a.max(outer.0), b.min(outer.1));
    // Disjoint intervals would make the output constant: leave those alone.
    if lo > hi {
        return None;
    }
    Some(match (lo, hi) {
        (l, h) if l == f32::NEG_INFINITY && h == f32::INFINITY => FusedActivation::None,
        (l, h) if l == 0.0 && h == f32::INFINITY => FusedActivation::Relu,
        (min, max) => FusedActivation::Clip { min, max },
    })
}

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some(n) = g.nodes.get(i) else {
            continue;
        };
        let outer = match n.op {
            Op::Unary(Unary::Relu) => (0.0, f32::INFINITY),
            Op::Unary(Unary::Clip { min, max }) => (min, max),
            _ => continue,
        };
        let Some(&x) = n.inputs.first() else {
            continue;
        };
        // The views between the clamp and the op, nearest first, each read
        // by the next alone.
        let mut views = Vec::new();
        let (mut t, mut reader) = (x, i);
        let p = loop {
            let Some(p) = producer(g, t).filter(|_| sole_consumer(g, t) == Some(reader)) else {
                break None;
            };
            match (&g.nodes[p].op, g.nodes[p].inputs.first()) {
                (Op::Reshape | Op::Transpose(_), Some(&input)) => {
                    views.push(p);
                    (t, reader) = (input, p);
                }
                (Op::Reshape | Op::Transpose(_), None) => break None,
                _ => break Some(p),
            }
        };
        let Some(p) = p else {
            continue;
        };
        let Some(pn) = g.nodes.get_mut(p) else {
            continue;
        };
        // Ops whose kernel clamps its output (see `IrOp::activation_mut`).
        let Some(activation) = pn.op.activation_mut() else {
            continue;
        };
        let Some(fused) = compose(*activation, outer) else {
            continue;
        };
        *activation = fused;
        log.0
            .push(format!("fused {} into {}", label(g, i), label(g, p)));
        match views.first() {
            None => absorb(g, p, i),
            // The nearest view writes the clamp's output in its place.
            Some(&v) => absorb(g, v, i),
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition() {
        let inf = f32::INFINITY;
        assert_eq!(
            compose(FusedActivation::None, (0.0, inf)),
            Some(FusedActivation::Relu)
        );
        assert_eq!(
            compose(FusedActivation::Relu, (-1.0, 6.0)),
            Some(FusedActivation::Clip { min: 0.0, max: 6.0 })
        );
        assert_eq!(
            compose(FusedActivation::None, (-inf, 6.0)),
            Some(FusedActivation::Clip {
                min: -inf,
                max: 6.0
            })
        );
        assert_eq!(
            compose(FusedActivation::Clip { min: 0.0, max: 1.0 }, (2.0, 3.0)),
            None
        );
    }
}
