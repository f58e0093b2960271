//! Cross-layer equalization (`--equalize`; Nagel et al., "Data-Free
//! Quantization Through Weight Equalization and Bias Correction", 2019).
//!
//! Between two weighted layers `a → b` joined by a ReLU (or nothing) and
//! pools, scaling `a`'s output channel `j` by `1/s_j` and `b`'s input
//! channel `j` by `s_j` leaves the float function unchanged: ReLU, MaxPool
//! and AvgPool commute with a positive per-channel scale. Per-channel int8
//! weights quantize each of `b`'s *output* channels on the largest weight
//! across its inputs, so one input column far larger than the rest (a
//! head whose score is dominated by one feature: weights of 180 beside
//! 0.05) rounds the rest to nothing. With `s_j = √(r_a(j) / r_b(j))`, the
//! ranges of `a`'s row `j` and `b`'s column `j` both become
//! `√(r_a(j) · r_b(j))`; the spread moves into the activation between them,
//! which int16 (`--precision`) can take when it matters.
//!
//! It changes what int8 can represent, not the float model, so it is an
//! option: the report's float-vs-int8 figures say whether it paid.

use super::{label, sole_consumer, RewriteLog};
use crate::ir::{Array, FusedActivation, Graph, Op};

/// Sweeps over the chain: a layer that is `b` of one pair and `a` of the
/// next is balanced against both; DFQ iterates, and a few rounds settle.
const ROUNDS: usize = 4;

/// Which pairs [`run`] equalizes (`--equalize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// None.
    Off,
    /// The pairs where per-channel int8 would erase an input of the second
    /// layer: every weight of some input channel below half a step of its
    /// output channel's grid, so int8 reads that channel as zero. The
    /// default: pairs that int8 represents are left as they are.
    #[default]
    Erased,
    /// Every pair.
    All,
}

/// Equalizes the pairs `which` says; logs one line per pair, with the
/// range of the scales its channels moved by.
pub fn run(g: &mut Graph, log: &mut RewriteLog, which: Which) {
    let pairs: Vec<(usize, usize)> = match which {
        Which::Off => return,
        Which::All => pairs(g),
        Which::Erased => pairs(g)
            .into_iter()
            .filter(|&(a, b)| erases_an_input(g, a, b))
            .collect(),
    };
    let mut total: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
    for _ in 0..ROUNDS {
        for (k, &(a, b)) in pairs.iter().enumerate() {
            let Some(scales) = balance(g, a, b) else {
                continue;
            };
            total[k].resize(scales.len(), 1.0);
            total[k].iter_mut().zip(scales).for_each(|(t, s)| *t *= s);
        }
    }
    for (&(a, b), scales) in pairs.iter().zip(&total) {
        let lo = scales.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = scales.iter().copied().fold(0.0, f32::max);
        if lo <= hi && (lo != 1.0 || hi != 1.0) {
            rename_between(g, a, b);
            log.0.push(format!(
                "equalized the channels between {} and {} (scales {lo:.3}–{hi:.3})",
                label(g, a),
                label(g, b)
            ));
        }
    }
}

/// The tensors from `a`'s output up to `b`'s input now hold other values
/// than the ONNX model's tensors of those names (each channel scaled), so
/// they get names of their own: calibration and the per-layer report then
/// take their float values from the graph's own evaluation, not tract's.
fn rename_between(g: &mut Graph, a: usize, b: usize) {
    let Some(&end) = g.nodes[b].inputs.first() else {
        return;
    };
    let mut t = g.nodes[a].output;
    loop {
        let name = &mut g.tensors[t].name;
        if !name.ends_with(EQUALIZED) {
            name.push_str(EQUALIZED);
        }
        if t == end {
            return;
        }
        match sole_consumer(g, t) {
            Some(c) => t = g.nodes[c].output,
            None => return,
        }
    }
}

/// The suffix of a tensor whose channels equalization rescaled.
pub const EQUALIZED: &str = " (equalized)";

/// The weights and bias of a Conv or FullyConnected whose activation
/// commutes with a positive scale.
fn layer(op: &mut Op) -> Option<(&mut Array, &mut Vec<f32>)> {
    let homogeneous =
        |a: &FusedActivation| matches!(a, FusedActivation::None | FusedActivation::Relu);
    match op {
        Op::Conv(c) if homogeneous(&c.activation) => Some((&mut c.weights, &mut c.bias)),
        Op::FullyConnected(f) if homogeneous(&f.activation) => Some((&mut f.weights, &mut f.bias)),
        _ => None,
    }
}

/// `(a, b)` node pairs: `a`'s output reaches `b`'s input 0, its channel
/// axis intact, through nothing but pools, and nothing else reads it.
fn pairs(g: &mut Graph) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for a in 0..g.nodes.len() {
        if layer(&mut g.nodes[a].op).is_none() {
            continue;
        }
        let mut t = g.nodes[a].output;
        let b = loop {
            let Some(c) = sole_consumer(g, t) else {
                break None;
            };
            match &g.nodes[c].op {
                Op::MaxPool(_) | Op::AvgPool(_) if g.nodes[c].inputs.first() == Some(&t) => {
                    t = g.nodes[c].output;
                }
                _ => break Some(c),
            }
        };
        let Some(b) = b else {
            continue;
        };
        let fits = match (&g.nodes[a].op, &g.nodes[b].op) {
            // Conv → Conv: channels on axis 1 of both.
            (Op::Conv(x), Op::Conv(y)) => {
                let cin = y.weights.shape.get(1).copied().unwrap_or(0) * y.groups;
                x.weights.shape.first() == Some(&cin)
            }
            // FullyConnected → FullyConnected: features on the last axis.
            (Op::FullyConnected(x), Op::FullyConnected(y)) => {
                x.weights.shape.first() == y.weights.shape.get(1)
            }
            _ => false,
        };
        if fits && g.nodes[b].inputs.first() == Some(&t) && layer(&mut g.nodes[b].op).is_some() {
            out.push((a, b));
        }
    }
    out
}

/// Balances one pair; returns the scales applied (`1.0` for a channel left
/// alone: all-zero weights on either side).
fn balance(g: &mut Graph, a: usize, b: usize) -> Option<Vec<f32>> {
    let gb = groups(&g.nodes[b].op);
    let (wa, _) = layer(&mut g.nodes[a].op)?;
    let rows = wa.shape.first().copied()?;
    let per_row = wa.data.len() / rows.max(1);
    let range_a: Vec<f32> = wa.data.chunks(per_row.max(1)).map(max_abs).collect();
    let (wb, _) = layer(&mut g.nodes[b].op)?;
    let columns = Columns::of(wb, gb, rows)?;
    let range_b: Vec<f32> = (0..rows)
        .map(|j| {
            columns
                .of_channel(j)
                .map(|i| wb.data[i].abs())
                .fold(0.0, f32::max)
        })
        .collect();
    let scales: Vec<f32> = range_a
        .iter()
        .zip(&range_b)
        .map(|(&ra, &rb)| match ra > 0.0 && rb > 0.0 {
            true => (ra / rb).sqrt(),
            false => 1.0,
        })
        .collect();
    for (j, &s) in scales.iter().enumerate() {
        for i in columns.of_channel(j) {
            wb.data[i] *= s;
        }
    }
    let (wa, bias) = layer(&mut g.nodes[a].op)?;
    for (j, (row, &s)) in wa.data.chunks_mut(per_row.max(1)).zip(&scales).enumerate() {
        row.iter_mut().for_each(|w| *w /= s);
        if let Some(b) = bias.get_mut(j) {
            *b /= s;
        }
    }
    Some(scales)
}

/// Whether some input channel of `b` (an output channel of `a`) has
/// non-zero weights that all round to 0 on per-channel int8: below half
/// of `max|row| / 127` in every output row that reads it.
fn erases_an_input(g: &mut Graph, a: usize, b: usize) -> bool {
    let gb = groups(&g.nodes[b].op);
    let Some(rows) = layer(&mut g.nodes[a].op).and_then(|(w, _)| w.shape.first().copied()) else {
        return false;
    };
    let Some((wb, _)) = layer(&mut g.nodes[b].op) else {
        return false;
    };
    let Some(columns) = Columns::of(wb, gb, rows) else {
        return false;
    };
    let per_out = wb.data.len() / wb.shape.first().copied().unwrap_or(1).max(1);
    // The int8 grid's step per output row, as quantization will choose it.
    let steps = crate::rounding::channel_scales(wb);
    (0..rows).any(|j| {
        let mut nonzero = false;
        let erased = columns.of_channel(j).all(|i| {
            let w = wb.data[i].abs();
            nonzero |= w > 0.0;
            w < steps[i / per_out.max(1)] / 2.0
        });
        erased && nonzero
    })
}

fn groups(op: &Op) -> usize {
    match op {
        Op::Conv(c) => c.groups.max(1),
        _ => 1,
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, &w| m.max(w.abs()))
}

/// Where input channel `j` of `b` sits in its weights `[Cout, Cin/groups,
/// …]`: in the output channels of `j`'s group, at column `j % (Cin/groups)`.
struct Columns {
    cout_per_group: usize,
    cin_per_group: usize,
    /// Elements per (output channel, input column): the kernel's taps.
    taps: usize,
}

impl Columns {
    fn of(w: &Array, groups: usize, channels: usize) -> Option<Columns> {
        let cout = *w.shape.first()?;
        let cin_per_group = *w.shape.get(1)?;
        let taps: usize = w.shape.iter().skip(2).product();
        (cin_per_group * groups == channels && cout % groups == 0).then_some(Columns {
            cout_per_group: cout / groups,
            cin_per_group,
            taps,
        })
    }

    /// The flat indices of input channel `j`'s weights.
    fn of_channel(&self, j: usize) -> impl Iterator<Item = usize> + '_ {
        let group = j / self.cin_per_group;
        let column = j % self.cin_per_group;
        let outs = group * self.cout_per_group..(group + 1) * self.cout_per_group;
        outs.flat_map(move |o| {
            let start = (o * self.cin_per_group + column) * self.taps;
            start..start + self.taps
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Node, Tensor};
    use crate::ops::fully_connected::FullyConnected;

    fn fc(n: usize, k: usize, data: Vec<f32>, bias: Vec<f32>, relu: bool) -> Op {
        Op::FullyConnected(FullyConnected {
            weights: Array::new(vec![n, k], data),
            bias,
            activation: match relu {
                true => FusedActivation::Relu,
                false => FusedActivation::None,
            },
        })
    }

    fn graph(first: Op, second: Op) -> Graph {
        let mut g = Graph::default();
        for name in ["x", "h", "y"] {
            g.tensors.push(Tensor {
                name: name.into(),
                shape: vec![1, 2],
                value: None,
            });
        }
        g.inputs = vec![0];
        g.outputs = vec![2];
        let node = |name: &str, op, i, o| Node {
            name: name.into(),
            onnx_ops: vec!["Gemm".into()],
            op,
            inputs: vec![i],
            output: o,
        };
        g.nodes = vec![node("a", first, 0, 1), node("b", second, 1, 2)];
        g
    }

    fn forward(g: &Graph, x: &[f32]) -> Vec<f32> {
        let mut v = x.to_vec();
        for n in &g.nodes {
            let Op::FullyConnected(f) = &n.op else {
                unreachable!()
            };
            let k = f.weights.shape[1];
            v = f
                .weights
                .data
                .chunks(k)
                .zip(&f.bias)
                .map(|(row, b)| {
                    f.activation
                        .apply(row.iter().zip(&v).map(|(w, x)| w * x).sum::<f32>() + b)
                })
                .collect();
        }
        v
    }

    #[test]
    fn a_dominant_column_is_balanced_and_the_function_kept() {
        // b reads h0 with weight 180 and h1 with 0.05: per-channel int8
        // would round 0.05 to 0 on a step of 180/127.
        let a = fc(2, 2, vec![0.8, -0.4, 0.5, 0.25], vec![0.6, 0.1], true);
        let b = fc(1, 2, vec![-180.0, 0.05], vec![0.0], false);
        let mut g = graph(a, b);
        let before: Vec<Vec<f32>> = [[1.0, 2.0], [-0.5, 0.3], [2.0, -1.0]]
            .iter()
            .map(|x| forward(&g, x))
            .collect();
        let mut log = RewriteLog::default();
        run(&mut g, &mut log, Which::All);
        assert_eq!(log.0.len(), 1, "{:?}", log.0);
        // h holds other values now: it no longer claims the ONNX name.
        assert_eq!(g.tensors[1].name, format!("h{EQUALIZED}"));
        assert_eq!(
            (g.tensors[0].name.as_str(), g.tensors[2].name.as_str()),
            ("x", "y")
        );
        assert!(log.0[0].contains("\"a\"") && log.0[0].contains("\"b\""));
        for (x, y) in [[1.0, 2.0], [-0.5, 0.3], [2.0, -1.0]].iter().zip(&before) {
            let after = forward(&g, x);
            assert!(
                (after[0] - y[0]).abs() <= 1e-3 * y[0].abs().max(1.0),
                "{after:?} vs {y:?}"
            );
        }
        // Row j of a and column j of b now share a range, √(r_a · r_b).
        let Op::FullyConnected(a) = &g.nodes[0].op else {
            unreachable!()
        };
        let Op::FullyConnected(b) = &g.nodes[1].op else {
            unreachable!()
        };
        let want = [(0.8f32 * 180.0).sqrt(), (0.5f32 * 0.05).sqrt()];
        for (j, want) in want.into_iter().enumerate() {
            let ra = max_abs(&a.weights.data[j * 2..j * 2 + 2]);
            let rb = b.weights.data[j].abs();
            assert!(
                (ra - want).abs() < 1e-3 && (rb - want).abs() < 1e-3,
                "{j}: {ra} {rb}"
            );
        }
        // The columns' ratio fell from 3600 to √3600 · √(0.8/0.5).
        assert!(b.weights.data[0].abs() / b.weights.data[1].abs() < 100.0);
    }

    #[test]
    fn by_default_only_a_pair_whose_int8_grid_erases_an_input_is_equalized() {
        // 0.05 against 180: below half a step (180/254), read as 0.
        let a = || fc(2, 2, vec![0.8, -0.4, 0.5, 0.25], vec![0.6, 0.1], true);
        let mut g = graph(a(), fc(1, 2, vec![-180.0, 0.05], vec![0.0], false));
        let mut log = RewriteLog::default();
        run(&mut g, &mut log, Which::Erased);
        assert_eq!(log.0.len(), 1, "{:?}", log.0);
        // 0.8 against 180 is above half a step: nothing is lost, nothing done.
        let mut g = graph(a(), fc(1, 2, vec![-180.0, 0.8], vec![0.0], false));
        let mut log = RewriteLog::default();
        run(&mut g, &mut log, Which::Erased);
        run(&mut g, &mut log, Which::Off);
        assert!(log.0.is_empty(), "{:?}", log.0);
        assert_eq!(g.tensors[1].name, "h");
        // An input whose weights are all 0 already has nothing to lose.
        let mut g = graph(a(), fc(1, 2, vec![-180.0, 0.0], vec![0.0], false));
        run(&mut g, &mut log, Which::Erased);
        assert!(log.0.is_empty(), "{:?}", log.0);
    }

    #[test]
    fn a_clip_between_the_layers_or_a_second_reader_leaves_the_pair_alone() {
        let clipped = Op::FullyConnected(FullyConnected {
            weights: Array::new(vec![2, 2], vec![0.8, -0.4, 0.5, 0.25]),
            bias: vec![0.0; 2],
            activation: FusedActivation::Clip { min: 0.0, max: 6.0 },
        });
        let b = fc(1, 2, vec![-180.0, 0.05], vec![0.0], false);
        let mut g = graph(clipped, b.clone());
        let mut log = RewriteLog::default();
        run(&mut g, &mut log, Which::All);
        assert!(log.0.is_empty());
        // h also a graph output: its values must stay as they are.
        let a = fc(2, 2, vec![0.8, -0.4, 0.5, 0.25], vec![0.0; 2], true);
        let mut g = graph(a, b);
        g.outputs.push(1);
        run(&mut g, &mut log, Which::All);
        assert!(log.0.is_empty());
    }
}
