//! Unstructured weight pruning (`--prune-weights SPARSITY`): individual
//! weights of Conv, ConvTranspose and FullyConnected nodes set to zero.
//!
//! - `l1`: the smallest magnitudes, per layer (each layer loses the same
//!   share) or globally (one threshold over every pruned layer's weights, so
//!   layers with many small weights lose more);
//! - `random`: weights drawn uniformly with a seeded generator, the baseline
//!   any criterion has to beat.
//!
//! A weight set to zero in float quantizes to exactly zero (weights are
//! symmetric per channel), so the `.mq` file holds the same sparsity. Biases
//! are kept. Pruning runs on the float graph after calibration, like filter
//! pruning: the activation ranges of the float model are kept, and the
//! report measures what the zeros cost against that float model.

use crate::ir::{Array, Graph, Op};

/// Which weights go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Smallest |w| first.
    L1,
    /// Uniformly at random, from this seed.
    Random { seed: u64 },
}

/// Over what the sparsity is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every layer reaches the sparsity.
    Layer,
    /// The pruned layers together reach it.
    Global,
}

/// What `--prune-weights` asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightPruning {
    /// Share of weights to set to zero, in `(0, 1)`.
    pub sparsity: f64,
    pub criterion: Criterion,
    pub scope: Scope,
}

impl WeightPruning {
    /// For reports: e.g. `50% of the weights, smallest magnitude per layer`.
    pub fn describe(&self) -> String {
        let how = match (self.criterion, self.scope) {
            (Criterion::L1, Scope::Layer) => "smallest magnitude per layer".to_string(),
            (Criterion::L1, Scope::Global) => "smallest magnitude over all layers".to_string(),
            (Criterion::Random { seed }, Scope::Layer) => format!("random per layer, seed {seed}"),
            (Criterion::Random { seed }, Scope::Global) => {
                format!("random over all layers, seed {seed}")
            }
        };
        format!("{:.0}% of the weights, {how}", 100.0 * self.sparsity)
    }
}

/// One pruned layer, for the report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SparseLayer {
    pub node: String,
    pub weights: usize,
    /// Zero weights before pruning (exact zeros of the float model).
    pub zeros_before: usize,
    /// Zero weights after.
    pub zeros: usize,
}

impl SparseLayer {
    pub fn sparsity(&self) -> f64 {
        self.zeros as f64 / self.weights.max(1) as f64
    }
}

/// The weights of a node that unstructured pruning applies to.
fn weights_mut(op: &mut Op) -> Option<&mut Array> {
    match op {
        Op::Conv(c) => Some(&mut c.weights),
        Op::ConvTranspose(c) => Some(&mut c.weights),
        Op::FullyConnected(f) => Some(&mut f.weights),
        _ => None,
    }
}

/// Sets weights to zero as `spec` asks; returns each pruned layer.
pub fn prune_weights(graph: &mut Graph, spec: &WeightPruning) -> Vec<SparseLayer> {
    let sparsity = spec.sparsity.clamp(0.0, 1.0);
    let mut layers: Vec<(usize, SparseLayer)> = Vec::new();
    for (n, node) in graph.nodes.iter_mut().enumerate() {
        if let Some(w) = weights_mut(&mut node.op) {
            layers.push((
                n,
                SparseLayer {
                    node: node.name.clone(),
                    weights: w.data.len(),
                    zeros_before: w.data.iter().filter(|&&v| v == 0.0).count(),
                    zeros: 0,
                },
            ));
        }
    }
    // Every candidate weight as (layer, index), in the order it goes.
    let mut rng = match spec.criterion {
        Criterion::Random { seed } => Some(SplitMix64(seed)),
        Criterion::L1 => None,
    };
    let mut order = |graph: &mut Graph, which: &[usize]| -> Vec<(usize, usize)> {
        let mut all: Vec<(usize, usize, f32)> = Vec::new();
        for &l in which {
            if let Some(w) = weights_mut(&mut graph.nodes[layers[l].0].op) {
                all.extend(w.data.iter().enumerate().map(|(i, v)| (l, i, v.abs())));
            }
        }
        match rng.as_mut() {
            // Ties by position, so that the result does not depend on the sort.
            None => all.sort_by(|a, b| a.2.total_cmp(&b.2).then((a.0, a.1).cmp(&(b.0, b.1)))),
            Some(rng) => {
                // Fisher–Yates.
                for i in (1..all.len()).rev() {
                    let j = (rng.next() % (i as u64 + 1)) as usize;
                    all.swap(i, j);
                }
            }
        }
        all.into_iter().map(|(l, i, _)| (l, i)).collect()
    };
    let groups: Vec<Vec<usize>> = match spec.scope {
        Scope::Layer => (0..layers.len()).map(|l| vec![l]).collect(),
        Scope::Global => vec![(0..layers.len()).collect()],
    };
    for group in groups {
        let total: usize = group.iter().map(|&l| layers[l].1.weights).sum();
        let count = (sparsity * total as f64).round() as usize;
        for (l, i) in order(graph, &group).into_iter().take(count) {
            if let Some(w) = weights_mut(&mut graph.nodes[layers[l].0].op) {
                if let Some(v) = w.data.get_mut(i) {
                    *v = 0.0;
                }
            }
        }
    }
    for (n, layer) in &mut layers {
        if let Some(w) = weights_mut(&mut graph.nodes[*n].op) {
            layer.zeros = w.data.iter().filter(|&&v| v == 0.0).count();
        }
    }
    layers.into_iter().map(|(_, l)| l).collect()
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a seeded, portable sequence, so
/// the same seed prunes the same weights on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FullyConnected, FusedActivation, Node, Tensor};

    fn fc_graph(layers: &[Vec<f32>]) -> Graph {
        let mut g = Graph::default();
        for (k, w) in layers.iter().enumerate() {
            g.tensors.push(Tensor {
                name: format!("t{k}"),
                shape: vec![1, w.len()],
                value: None,
            });
            g.nodes.push(Node {
                name: format!("fc{k}"),
                onnx_ops: vec!["Gemm".into()],
                op: Op::FullyConnected(FullyConnected {
                    weights: Array::new(vec![1, w.len()], w.clone()),
                    bias: vec![0.5],
                    activation: FusedActivation::None,
                }),
                inputs: vec![k],
                output: k + 1,
            });
        }
        g
    }

    fn weights(g: &Graph, n: usize) -> Vec<f32> {
        match &g.nodes[n].op {
            Op::FullyConnected(f) => f.weights.data.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn l1_per_layer_zeroes_the_smallest_share_of_each_layer() {
        let mut g = fc_graph(&[vec![0.1, -0.9, 0.3, -0.05], vec![5.0, 4.0, -3.0, 2.0]]);
        let spec = WeightPruning {
            sparsity: 0.5,
            criterion: Criterion::L1,
            scope: Scope::Layer,
        };
        let report = prune_weights(&mut g, &spec);
        assert_eq!(weights(&g, 0), [0.0, -0.9, 0.3, 0.0]);
        assert_eq!(weights(&g, 1), [5.0, 4.0, 0.0, 0.0]);
        assert_eq!(report.len(), 2);
        assert!(report.iter().all(|l| l.zeros == 2 && l.sparsity() == 0.5));
    }

    #[test]
    fn l1_global_takes_one_threshold_over_all_layers() {
        let mut g = fc_graph(&[vec![0.1, -0.9, 0.3, -0.05], vec![5.0, 4.0, -3.0, 2.0]]);
        let spec = WeightPruning {
            sparsity: 0.5,
            criterion: Criterion::L1,
            scope: Scope::Global,
        };
        let report = prune_weights(&mut g, &spec);
        // The four smallest of eight are all in the first layer.
        assert_eq!(weights(&g, 0), [0.0; 4]);
        assert_eq!(weights(&g, 1), [5.0, 4.0, -3.0, 2.0]);
        assert_eq!(report[0].zeros, 4);
        assert_eq!(report[1].zeros, 0);
    }

    #[test]
    fn random_is_seeded_and_reaches_the_share() {
        let layer: Vec<f32> = (1..=200).map(|v| v as f32).collect();
        let spec = |seed| WeightPruning {
            sparsity: 0.3,
            criterion: Criterion::Random { seed },
            scope: Scope::Layer,
        };
        let run = |seed| {
            let mut g = fc_graph(std::slice::from_ref(&layer));
            prune_weights(&mut g, &spec(seed));
            weights(&g, 0)
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a, b, "the same seed prunes the same weights");
        assert_ne!(a, c, "another seed prunes others");
        assert_eq!(a.iter().filter(|&&v| v == 0.0).count(), 60);
        // Not simply the smallest: some large weights went.
        assert!(a.iter().take(60).any(|&v| v != 0.0));
        // Biases are kept.
        let mut g = fc_graph(std::slice::from_ref(&layer));
        prune_weights(&mut g, &spec(1));
        assert!(matches!(&g.nodes[0].op, Op::FullyConnected(f) if f.bias == [0.5]));
    }

    #[test]
    fn existing_zeros_count_toward_the_share() {
        let mut g = fc_graph(&[vec![0.0, 0.0, 0.7, -0.2]]);
        let spec = WeightPruning {
            sparsity: 0.5,
            criterion: Criterion::L1,
            scope: Scope::Layer,
        };
        let report = prune_weights(&mut g, &spec);
        assert_eq!(weights(&g, 0), [0.0, 0.0, 0.7, -0.2]);
        assert_eq!((report[0].zeros_before, report[0].zeros), (2, 2));
    }
}
