//! A Euclidean norm written out, as PyTorch exports a complex spectrum's
//! magnitude, `(s[..., 0]**2 + s[..., 1]**2 + eps).sqrt()`: the two entries
//! of a size-2 axis gathered, squared, added and square-rooted. It becomes
//! one ReduceL2 over that axis, an exact sum of squares and integer root;
//! written out, it would square in int8, whose step (the largest square /
//! 255) swallows every value below its square root.

use std::sync::Arc;

use super::{label, producer, RewriteLog};
use crate::ir::{FusedActivation, Graph, Op, TensorId};
use crate::ops::elementwise::Add;
use crate::ops::gather::{Index, Select};
use crate::ops::pointwise::{Expr, Fn1, Fn2, Pointwise};
use crate::ops::reduce::{Reduce, Reduction};

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some((t, axis, eps, fused)) = magnitude(g, i) else {
            continue;
        };
        let line = format!(
            "fused {} into ReduceL2 {}",
            fused
                .iter()
                .map(|&n| label(g, n))
                .collect::<Vec<_>>()
                .join(", "),
            label(g, i)
        );
        let mut ops: Vec<String> = fused
            .iter()
            .flat_map(|&n| g.nodes[n].onnx_ops.clone())
            .collect();
        let n = &mut g.nodes[i];
        ops.append(&mut n.onnx_ops);
        n.onnx_ops = ops;
        n.op = Op::Reduce(Reduce {
            how: Reduction::l2(eps),
            axes: vec![axis],
        });
        n.inputs = vec![t];
        log.0.push(line);
        return true;
    }
    false
}

/// When node `i` is `sqrt(a² + b² [+ ε])` of the two entries of a size-2
/// axis of one tensor: that tensor, the axis, `ε`, and the nodes between.
fn magnitude(g: &Graph, i: usize) -> Option<(TensorId, usize, f32, Vec<usize>)> {
    let n = g.nodes.get(i)?;
    let Op::Pointwise(Pointwise { f }) = &n.op else {
        return None;
    };
    let eps = sqrt_plus_constant(f)?;
    let add = producer(g, *n.inputs.first()?)?;
    let Op::Add(Add {
        activation: FusedActivation::None,
    }) = g.nodes[add].op
    else {
        return None;
    };
    let [a, b] = g.nodes[add].inputs[..] else {
        return None;
    };
    let (sa, (t, axis, ka)) = squared_entry(g, a)?;
    let (sb, (tb, axis_b, kb)) = squared_entry(g, b)?;
    let out = &g.tensors[n.output].shape;
    let shape = &g.tensors[t].shape;
    let dropped: Vec<usize> = (0..shape.len())
        .filter(|&d| d != axis)
        .map(|d| shape[d])
        .collect();
    let mut kept = shape.clone();
    kept[axis] = 1;
    let fits = t == tb
        && axis == axis_b
        && shape[axis] == 2
        && ka + kb == 1
        && (*out == dropped || *out == kept);
    fits.then(|| {
        let select = |s: usize| producer(g, g.nodes[s].inputs[0]);
        let fused = [select(sa), Some(sa), select(sb), Some(sb), Some(add)];
        (t, axis, eps, fused.into_iter().flatten().collect())
    })
}

/// `ε ≥ 0` when `f` is `sqrt(x)` or `sqrt(x + ε)`.
fn sqrt_plus_constant(f: &Expr) -> Option<f32> {
    let Expr::Unary(Fn1::Sqrt, inner) = f else {
        return None;
    };
    let eps = match &**inner {
        Expr::X => 0.0,
        Expr::Binary(Fn2::Add, a, b) => match (&**a, &**b) {
            (Expr::X, Expr::Const(c)) | (Expr::Const(c), Expr::X) => *c,
            _ => return None,
        },
        _ => return None,
    };
    (eps >= 0.0 && eps.is_finite()).then_some(eps as f32)
}

/// When tensor `x` is the square of one entry of an axis of another tensor:
/// the squaring node, and that tensor, the axis and the entry.
fn squared_entry(g: &Graph, x: TensorId) -> Option<(usize, (TensorId, usize, usize))> {
    let sq = producer(g, x)?;
    let Op::Pointwise(Pointwise { f }) = &g.nodes[sq].op else {
        return None;
    };
    if !is_square(f) {
        return None;
    }
    let sel = producer(g, *g.nodes[sq].inputs.first()?)?;
    let Op::Select(Select { axis, index }) = &g.nodes[sel].op else {
        return None;
    };
    let t = *g.nodes[sel].inputs.first()?;
    // One entry: the output's extent along the axis is 1, or the axis is gone.
    let one = g.tensors[g.nodes[sel].output].shape.len() < g.tensors[t].shape.len()
        || g.tensors[g.nodes[sel].output].shape.get(*axis) == Some(&1);
    let k = match index {
        Index::List(v) if v.len() == 1 => v[0],
        Index::Range { start, .. } => *start,
        Index::List(_) => return None,
    };
    one.then_some((sq, (t, *axis, k)))
}

/// `x·x` or `x^2`.
pub(super) fn is_square(f: &Arc<Expr>) -> bool {
    match &**f {
        Expr::Binary(Fn2::Mul, a, b) => matches!((&**a, &**b), (Expr::X, Expr::X)),
        Expr::Binary(Fn2::Pow, a, b) => {
            matches!((&**a, &**b), (Expr::X, Expr::Const(e)) if *e == 2.0)
        }
        _ => false,
    }
}
