//! A mask added as a bias is a Select: `x + Where(c, 0, −∞)` (the float mask
//! PyTorch's `scaled_dot_product_attention` builds from a boolean
//! `attn_mask`, and `nn.MultiheadAttention` from `key_padding_mask`) is
//! `Where(c, x, −∞)`. No tensor of 0 and −∞ is quantized (its range holds
//! only 0, and its −∞ would be one step below the scores), and the scores
//! keep their own grid. Views and moves between the Where and the Add
//! (Reshape, Expand, Transpose: the mask broadcast over the heads) are
//! applied to the condition instead. Exact for a fill of −∞; a finite fill
//! of −1e9 or below absorbs every score of magnitude under 32 in `f32`, as
//! the float model computes it.

use super::{label, producer, RewriteLog};
use crate::ir::{Add, FusedActivation, Graph, Node, Op, Tensor};
use crate::load::shape::broadcast;
use crate::ops::conditional::Where;

/// The fills that make a bias a mask.
const MASKED: f32 = -1e9;

/// A mask found behind an Add operand.
struct Mask {
    cond: usize,
    /// The scalar fill constant.
    fill: usize,
    /// Whether the fill is the Where's first branch (`Where(c, fill, 0)`).
    fill_first: bool,
    /// The moves from the Where's output to the bias, in order.
    moves: Vec<usize>,
}

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some(n) = g.nodes.get(i) else {
            continue;
        };
        let Op::Add(Add {
            activation: FusedActivation::None,
        }) = n.op
        else {
            continue;
        };
        let (&[a, b], y) = (&n.inputs[..], n.output) else {
            continue;
        };
        for (x, bias) in [(a, b), (b, a)] {
            let Some(mask) = mask_of(g, bias) else {
                continue;
            };
            let shape = |t: usize| {
                g.tensors
                    .get(t)
                    .map(|t| t.shape.clone())
                    .unwrap_or_default()
            };
            let moved = shape(bias);
            let out = broadcast(&moved, &shape(x));
            if out.as_ref() != Some(&shape(y)) {
                continue;
            }
            let what = label(g, i);
            let cond = move_condition(g, &mask);
            let Some(at) = g.nodes.iter().position(|n| n.output == y) else {
                return false;
            };
            let node = &mut g.nodes[at];
            node.op = Op::Where(Where);
            node.inputs = match mask.fill_first {
                false => vec![cond, x, mask.fill],
                true => vec![cond, mask.fill, x],
            };
            log.0
                .push(format!("{what}: a mask added as a bias runs as a Select"));
            return true;
        }
    }
    false
}

/// The condition moved as the mask was: each move of the chain applied to
/// it in turn (a copy of the node, right after the original); returns the
/// last tensor.
fn move_condition(g: &mut Graph, mask: &Mask) -> usize {
    let mut cond = mask.cond;
    for &m in &mask.moves {
        let Some(at) = g.nodes.iter().position(|n| n.output == m) else {
            return cond;
        };
        let original = g.nodes[at].clone();
        let shape = g.tensors[m].shape.clone();
        g.tensors.push(Tensor {
            name: format!("{}/condition", g.tensors[m].name),
            shape,
            value: None,
        });
        let moved = g.tensors.len() - 1;
        let inputs = original
            .inputs
            .iter()
            .map(|&t| {
                if g.tensors[t].value.is_none() {
                    cond
                } else {
                    t
                }
            })
            .collect();
        g.nodes.insert(
            at + 1,
            Node {
                name: format!("{}/condition", original.name),
                inputs,
                output: moved,
                ..original
            },
        );
        cond = moved;
    }
    cond
}

/// The mask computing `bias`: a Where whose branches are constants, one
/// all 0 and the other one value at or below [`MASKED`], whose condition
/// has the Where's shape, reached through moves of one computed input.
fn mask_of(g: &Graph, bias: usize) -> Option<Mask> {
    let mut moves = Vec::new();
    let mut t = bias;
    let where_node = loop {
        let p = g.nodes.get(producer(g, t)?)?;
        let computed: Vec<usize> = p
            .inputs
            .iter()
            .copied()
            .filter(|&i| g.tensors.get(i).is_some_and(|x| x.value.is_none()))
            .collect();
        match (&p.op, &computed[..]) {
            (Op::Where(_), _) => break p,
            (Op::Reshape | Op::Select(_) | Op::Transpose(_), &[from]) if moves.len() < 8 => {
                moves.push(t);
                t = from;
            }
            _ => return None,
        }
    };
    moves.reverse();
    let &[cond, first, second] = &where_node.inputs[..] else {
        return None;
    };
    let values = |t: usize| {
        g.tensors
            .get(t)
            .and_then(|x| x.value.as_ref())
            .map(|v| &v.data[..])
    };
    let zeros = |t: usize| values(t).is_some_and(|v| !v.is_empty() && v.iter().all(|&v| v == 0.0));
    let fill = |t: usize| matches!(values(t), Some(&[v]) if v <= MASKED);
    let same_shape =
        g.tensors.get(cond).map(|c| &c.shape) == g.tensors.get(where_node.output).map(|o| &o.shape);
    let (fill, fill_first) = match (zeros(first), fill(second), fill(first), zeros(second)) {
        (true, true, _, _) => (second, false),
        (_, _, true, true) => (first, true),
        _ => return None,
    };
    same_shape.then_some(Mask {
        cond,
        fill,
        fill_first,
        moves,
    })
}
