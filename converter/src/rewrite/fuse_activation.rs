//! Fuse Relu / Clip into the Conv, FullyConnected, Add or Mul producing its
//! input: the int8 op then clamps its output range, which costs nothing and
//! gives the tensor a tighter quantization range.

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
        let Some(p) = producer(g, x) else {
            continue;
        };
        if sole_consumer(g, x) != Some(i) {
            continue;
        }
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
        absorb(g, p, i);
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
