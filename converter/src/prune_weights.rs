//! Unstructured weight pruning (`--prune-weights SPARSITY`): individual
//! weights of Conv, ConvTranspose and FullyConnected nodes set to zero.
//!
//! - `l1`: the smallest magnitudes, per layer (each layer loses the same
//!   share) or globally (one threshold over every pruned layer's weights, so
//!   layers with many small weights lose more);
//! - `random`: weights drawn uniformly with a seeded generator, the baseline
//!   any criterion has to beat;
//! - `obs`: second order, per layer, from the layer-input moments the
//!   calibration collects for GPTQ: a weight's cost is Optimal Brain
//!   Surgeon's `w² / [H⁻¹]ᵢᵢ`, the cheapest go (one mask per layer, chosen
//!   up front), and the remaining weights of each row are refit by least
//!   squares to the row's output on the calibration data: exactly, for
//!   rows of up to [`EXACT_REFIT_MAX_COLUMNS`] weights (a solve over the
//!   kept weights), and by SparseGPT's column-by-column update for longer
//!   ones (Frantar and Alistarh, 2023), which freezes each kept weight once
//!   passed, so that the errors of the pruned weights after it can only go
//!   to the few weights left after them. At 75% that leaves far more error:
//!   on ECG5000 the output error of the 32×80 conv was 35% of its output
//!   energy with the update and 17% refit exactly, that of the classifier
//!   18% and 1.4%, for the same mask. A layer without
//!   usable moments falls back to `l1`, and the report says why. Then each
//!   layer's bias is corrected (Nagel et al., "Data-Free Quantization
//!   Through Weight Equalization and Bias Correction", 2019): per output
//!   channel, shifted so that the layer's mean output on the calibration
//!   data, from the input it gets once the layers before it are pruned, is
//!   the float model's. The weight update minimizes the output error on the
//!   layer's own (already changed) input but cannot see the float model, so
//!   the mean shifts add up from layer to layer; on ECG5000 at 75% the
//!   classifier's logits moved by 0.6 of their standard deviation on
//!   average and the model predicted one class (40.6% accuracy; 88.7% with
//!   the correction).
//!
//! A weight set to zero in float quantizes to exactly zero (weights are
//! symmetric per channel), so the `.mq` file holds the same sparsity.
//! `l1` and `random` keep the biases. Pruning runs on the float graph after
//! calibration, like filter pruning: the activation ranges of the float
//! model are kept, and the report measures what the zeros cost against
//! that float model.

use nalgebra::DMatrix;

use crate::ir::{Array, Graph, Op};
use crate::rounding::{damped, InputMoments, LayerMoments, ObsFactor};

/// Weight rows up to this long have their kept weights refit exactly (a
/// Cholesky solve over the kept weights per row, `k³/3` for `k` kept);
/// longer rows get SparseGPT's update (`n²` per row). The zoo's longest
/// row is 400.
pub const EXACT_REFIT_MAX_COLUMNS: usize = 512;

/// Which weights go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Smallest |w| first.
    L1,
    /// Uniformly at random, from this seed.
    Random { seed: u64 },
    /// Optimal Brain Surgeon's cost, with the remaining weights refit and
    /// the biases corrected.
    Obs,
}

/// Over what the sparsity is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every layer reaches the sparsity.
    Layer,
    /// The pruned layers together reach it.
    Global,
    /// The pruned layers together reach it, each layer's share chosen from
    /// its output error measured at several shares (`obs`; for `l1` and
    /// `random` the same as `Global`).
    Measured,
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
            (Criterion::L1, Scope::Global | Scope::Measured) => {
                "smallest magnitude over all layers".to_string()
            }
            (Criterion::Random { seed }, Scope::Layer) => format!("random per layer, seed {seed}"),
            (Criterion::Random { seed }, Scope::Global | Scope::Measured) => {
                format!("random over all layers, seed {seed}")
            }
            (Criterion::Obs, scope) => format!(
                "second-order cost, {}, remaining weights refit, biases corrected",
                match scope {
                    Scope::Layer => "the same share of each layer",
                    Scope::Global => "layers' shares by relative cost",
                    Scope::Measured => "layers' shares by measured output error",
                }
            ),
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
    /// How this layer's weights were chosen: the criterion, or the fallback
    /// and why (`l1: …` for an `obs` layer without usable moments).
    pub criterion: String,
    /// Whether its bias was corrected for the shift of its mean output
    /// (`obs`, when the layer has input moments).
    pub bias_corrected: bool,
    /// How the file stores the layer's int8 weights, once it is written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredWeights>,
}

/// How a pruned layer's weights are stored, and what each way takes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StoredWeights {
    /// `sparse` (bitmap and non-zero values), `pow2` (4-bit codes),
    /// `sparse pow2` (bitmap and a 4-bit code per non-zero), `sparse pow2
    /// 3-bit` (bitmap and a 3-bit code per non-zero) or `dense`.
    pub storage: &'static str,
    pub bytes: usize,
    pub dense_bytes: usize,
    /// What sparse storage would take; `None` for an op whose runtime
    /// kernels read dense weights only (ConvTranspose).
    pub sparse_bytes: Option<usize>,
    /// What power-of-two codes would take, when every weight has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pow2_bytes: Option<usize>,
    /// What a bitmap and power-of-two codes for the non-zeros would take,
    /// when every weight has a code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_pow2_bytes: Option<usize>,
    /// What a bitmap and 3-bit power-of-two codes for the non-zeros would
    /// take, when every non-zero is ±8 … ±64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_pow2x3_bytes: Option<usize>,
}

impl SparseLayer {
    pub fn sparsity(&self) -> f64 {
        self.zeros as f64 / self.weights.max(1) as f64
    }
}

/// The weights of a node that unstructured pruning applies to.
fn weights(op: &Op) -> Option<&Array> {
    match op {
        Op::Conv(c) => Some(&c.weights),
        Op::ConvTranspose(c) => Some(&c.weights),
        Op::FullyConnected(f) => Some(&f.weights),
        _ => None,
    }
}

/// [`weights`], to change them.
fn weights_mut(op: &mut Op) -> Option<&mut Array> {
    match op {
        Op::Conv(c) => Some(&mut c.weights),
        Op::ConvTranspose(c) => Some(&mut c.weights),
        Op::FullyConnected(f) => Some(&mut f.weights),
        _ => None,
    }
}

/// Sets weights to zero as `spec` asks; returns each pruned layer.
/// `moments` (indexed by node, from the calibration) serve `obs`.
pub fn prune_weights(
    graph: &mut Graph,
    spec: &WeightPruning,
    moments: &[Option<LayerMoments>],
) -> Vec<SparseLayer> {
    if spec.criterion == Criterion::Obs {
        return prune_obs(graph, spec, moments);
    }
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
                    criterion: match spec.criterion {
                        Criterion::Random { .. } => "random".into(),
                        _ => "l1".into(),
                    },
                    bias_corrected: false,
                    stored: None,
                },
            ));
        }
    }
    // Every candidate weight as (layer, index), in the order it goes.
    let mut rng = match spec.criterion {
        Criterion::Random { seed } => Some(SplitMix64(seed)),
        Criterion::L1 | Criterion::Obs => None,
    };
    let mut order = |graph: &Graph, which: &[usize]| -> Vec<(usize, usize)> {
        let mut all: Vec<(usize, usize, f32)> = Vec::new();
        for &l in which {
            if let Some(w) = weights(&graph.nodes[layers[l].0].op) {
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
        Scope::Global | Scope::Measured => vec![(0..layers.len()).collect()],
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
        if let Some(w) = weights(&graph.nodes[*n].op) {
            layer.zeros = w.data.iter().filter(|&&v| v == 0.0).count();
        }
    }
    layers.into_iter().map(|(_, l)| l).collect()
}

/// `obs`, every layer with the same moments (each bias corrected for its
/// own layer's mean shift only).
fn prune_obs(
    graph: &mut Graph,
    spec: &WeightPruning,
    moments: &[Option<LayerMoments>],
) -> Vec<SparseLayer> {
    let counts = obs_counts(graph, spec.sparsity, spec.scope, moments);
    (0..graph.nodes.len())
        .filter_map(|n| prune_obs_node(graph, n, counts[n], moments, moments))
        .collect()
}

/// `obs` as SparseGPT runs it, layer after layer: each layer's input
/// moments come from `moments_of` on the graph whose earlier layers are
/// already pruned, so each layer's update minimizes its output error on
/// the input it will get. Its bias is then corrected so that its mean
/// output is the float model's, whose layer input moments are `float`
/// (what the earlier layers' zeros shifted is made up for too).
/// `counts` (per node, from [`obs_counts`]) says how many weights each
/// layer loses.
pub fn prune_obs_sequential<E>(
    graph: &mut Graph,
    counts: &[usize],
    float: &[Option<LayerMoments>],
    mut moments_of: impl FnMut(&Graph) -> Result<Vec<Option<LayerMoments>>, E>,
) -> Result<Vec<SparseLayer>, E> {
    let mut layers = Vec::new();
    for n in 0..graph.nodes.len() {
        if weights(&graph.nodes[n].op).is_none() {
            continue;
        }
        let moments = moments_of(graph)?;
        let count = counts.get(n).copied().unwrap_or(0);
        layers.extend(prune_obs_node(graph, n, count, &moments, float));
    }
    Ok(layers)
}

/// Shifts each output channel's bias by what pruning moved the layer's
/// mean output on the calibration data: `original` on the inputs that
/// `float` describes against the pruned weights of `op` on those of `now`.
/// False (and nothing changed) when the moments or the bias do not fit.
fn correct_bias(op: &mut Op, original: &Array, float: &InputMoments, now: &InputMoments) -> bool {
    let rows = original.shape.first().copied().unwrap_or(0);
    let n = original.data.len() / rows.max(1);
    let groups = float.sums.len();
    let fits = |m: &InputMoments| m.observations > 0 && m.sums.iter().all(|s| s.len() == n);
    if groups == 0 || now.sums.len() != groups || rows % groups != 0 || !fits(float) || !fits(now) {
        return false;
    }
    let rows_per_group = rows / groups;
    let mean = |w: &[f32], m: &InputMoments, g: usize| {
        let dot: f64 = w
            .iter()
            .zip(m.sums[g].iter())
            .map(|(&w, &s)| f64::from(w) * s)
            .sum();
        dot / m.observations as f64
    };
    let Some(pruned) = weights(op) else {
        return false;
    };
    let shifts: Vec<f64> = (0..rows)
        .map(|r| {
            let g = r / rows_per_group;
            let row = r * n..(r + 1) * n;
            mean(&original.data[row.clone()], float, g) - mean(&pruned.data[row], now, g)
        })
        .collect();
    let bias = match op {
        Op::Conv(c) => &mut c.bias,
        Op::FullyConnected(f) => &mut f.bias,
        _ => return false,
    };
    if bias.len() != rows {
        return false;
    }
    for (b, shift) in bias.iter_mut().zip(shifts) {
        *b = (f64::from(*b) + shift) as f32;
    }
    true
}

/// How many weights each node (indexed by node) loses under `obs`.
///
/// [`Scope::Measured`]: see `measured_counts`.
///
/// Per layer, the same share of each. Over all layers, one ranking of every
/// weight by its OBS cost relative to its layer's output energy
/// `Σ_rows w H wᵀ` (costs are in each layer's output units; relative, they
/// compare), so that layers where zeros cost little give more. Layers
/// without usable moments lose the plain share, outside the ranking.
pub fn obs_counts(
    graph: &Graph,
    sparsity: f64,
    scope: Scope,
    moments: &[Option<LayerMoments>],
) -> Vec<usize> {
    let sparsity = sparsity.clamp(0.0, 1.0);
    let share = |len: usize| (sparsity * len as f64).round() as usize;
    let mut counts = vec![0; graph.nodes.len()];
    let mut pool: Vec<(f64, usize)> = Vec::new();
    for (n, node) in graph.nodes.iter().enumerate() {
        let Some(w) = weights(&node.op) else {
            continue;
        };
        counts[n] = share(w.data.len());
        if scope == Scope::Global {
            let costs = match moments.get(n).and_then(Option::as_ref) {
                Some(LayerMoments::Usable(m)) => relative_costs(w, &m.groups),
                _ => None,
            };
            if let Some(costs) = costs {
                counts[n] = 0;
                pool.extend(costs.into_iter().map(|c| (c, n)));
            }
        }
    }
    if scope == Scope::Measured {
        return measured_counts(graph, sparsity, moments);
    }
    let total = share(pool.len());
    pool.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for &(_, n) in pool.iter().take(total) {
        counts[n] += 1;
    }
    counts
}

/// Levels (shares of a layer's weights, in steps of `1/LEVELS`) at which
/// each layer's pruning error is measured for the allocation over all
/// layers.
const LEVELS: usize = 16;

/// Each layer's output error after `obs` at each level, relative to its
/// output energy: `(weights pruned, error)`, from no weight to all.
fn error_curve(w: &Array, m: &InputMoments) -> Option<Vec<(usize, f64)>> {
    let rows = *w.shape.first()?;
    let n = w.data.len() / rows.max(1);
    let groups = m.groups.len();
    if groups == 0 || rows % groups != 0 || m.groups.iter().any(|h| h.nrows() != n) {
        return None;
    }
    let rows_per_group = rows / groups;
    let error = |a: &[f32], b: &[f32]| -> f64 {
        (0..rows)
            .map(|r| {
                let h = &m.groups[r / rows_per_group];
                let d = nalgebra::DVector::from_iterator(
                    n,
                    (0..n).map(|i| f64::from(a[r * n + i]) - f64::from(b[r * n + i])),
                );
                (d.transpose() * h * &d)[(0, 0)]
            })
            .sum()
    };
    let zero = vec![0.0; w.data.len()];
    let energy = error(&w.data, &zero).max(f64::MIN_POSITIVE);
    (0..=LEVELS)
        .map(|j| {
            let count = (w.data.len() * j).div_ceil(LEVELS);
            let mut pruned = w.clone();
            obs_layer(&mut pruned, &m.groups, count).ok()?;
            Some((count, error(&w.data, &pruned.data) / energy))
        })
        .collect()
}

/// Over all layers, by measurement: each layer is pruned (OBS mask, refit)
/// at shares 0, 1/[`LEVELS`], …, 1 of its weights on `moments`, its output
/// error relative to its output energy measured at each, and the shares
/// are chosen so that the sum of the layers' relative errors is least for
/// the weights asked for: greedily, the step (a layer, a higher share) that
/// adds the least error per weight first, which follows each layer's lower
/// convex hull. The last step is cut to the exact count. Layers without
/// usable moments lose the plain share, outside the budget.
///
/// Ranking single weights by relative OBS cost ([`Scope::Global`]) prices
/// each as if it went alone, with all the others there to compensate for
/// it: a layer whose inputs correlate (ECG5000's 32×80 conv) looks cheap
/// weight by weight and lost 89% of its weights at 75%, leaving 42% of its
/// output energy as error (17% refit); measured, it loses 77%.
fn measured_counts(graph: &Graph, sparsity: f64, moments: &[Option<LayerMoments>]) -> Vec<usize> {
    let sparsity = sparsity.clamp(0.0, 1.0);
    let share = |len: usize| (sparsity * len as f64).round() as usize;
    let mut counts = vec![0; graph.nodes.len()];
    let mut curves: Vec<(usize, Vec<(usize, f64)>)> = Vec::new();
    for (n, node) in graph.nodes.iter().enumerate() {
        let Some(w) = weights(&node.op) else {
            continue;
        };
        counts[n] = share(w.data.len());
        if let Some(LayerMoments::Usable(m)) = moments.get(n).and_then(Option::as_ref) {
            if let Some(curve) = error_curve(w, m) {
                counts[n] = 0;
                curves.push((n, curve));
            }
        }
    }
    let total = share(
        curves
            .iter()
            .map(|(_, c)| c.last().map_or(0, |p| p.0))
            .sum(),
    );
    let mut at = vec![0usize; curves.len()];
    let mut given = 0;
    let mut last = None;
    while given < total {
        // The step (layer, level) with the least error added per weight.
        let mut best: Option<(f64, usize, usize)> = None;
        for (l, (_, curve)) in curves.iter().enumerate() {
            let (c0, e0) = curve[at[l]];
            for (j, &(c, e)) in curve.iter().enumerate().skip(at[l] + 1) {
                if c == c0 {
                    continue;
                }
                let slope = (e - e0) / (c - c0) as f64;
                if best.is_none_or(|(b, _, _)| slope < b) {
                    best = Some((slope, l, j));
                }
            }
        }
        let Some((_, l, j)) = best else {
            break;
        };
        given += curves[l].1[j].0 - curves[l].1[at[l]].0;
        at[l] = j;
        last = Some(l);
    }
    for (l, (n, curve)) in curves.iter().enumerate() {
        counts[*n] = curve[at[l]].0;
    }
    if let Some(l) = last {
        counts[curves[l].0] -= given.saturating_sub(total);
    }
    counts
}

/// Each weight's OBS cost over its layer's output energy; `None` when the
/// moments do not fit the weights or cannot be factored.
fn relative_costs(w: &Array, groups: &[DMatrix<f64>]) -> Option<Vec<f64>> {
    let rows = *w.shape.first()?;
    let n = w.data.len() / rows.max(1);
    if groups.is_empty() || rows % groups.len() != 0 || groups.iter().any(|h| h.nrows() != n) {
        return None;
    }
    let rows_per_group = rows / groups.len();
    let factors: Vec<ObsFactor> = groups.iter().map(ObsFactor::new).collect::<Option<_>>()?;
    let mut energy = 0.0;
    for (r, row) in w.data.chunks(n).enumerate() {
        let v = nalgebra::DVector::from_iterator(n, row.iter().map(|&x| f64::from(x)));
        energy += (v.transpose() * &groups[r / rows_per_group] * &v)[(0, 0)];
    }
    let energy = energy.max(f64::MIN_POSITIVE);
    Some(
        w.data
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = &factors[i / n / rows_per_group];
                f64::from(x).powi(2) / f.inverse_diagonal()[i % n].max(f64::MIN_POSITIVE) / energy
            })
            .collect(),
    )
}

/// `obs` on node `n`, when it has weights: `count` of them go, chosen and
/// compensated on the input `moments`; then the bias is corrected towards
/// the mean output on the input `float` describes.
fn prune_obs_node(
    graph: &mut Graph,
    n: usize,
    count: usize,
    moments: &[Option<LayerMoments>],
    float: &[Option<LayerMoments>],
) -> Option<SparseLayer> {
    let node = &mut graph.nodes[n];
    let original = weights(&node.op)?.clone();
    let w = weights_mut(&mut node.op)?;
    let zeros_before = w.data.iter().filter(|&&v| v == 0.0).count();
    let criterion = match moments.get(n).and_then(Option::as_ref) {
        Some(LayerMoments::Usable(m)) => match obs_layer(w, &m.groups, count) {
            Ok(()) => "obs".to_string(),
            Err(why) => format!("l1: {why}"),
        },
        Some(LayerMoments::Unusable(why)) => format!("l1: {why}"),
        None => "l1: no input moments for this op".to_string(),
    };
    if criterion != "obs" {
        l1_layer(w, count);
    }
    let (weights, zeros) = (w.data.len(), w.data.iter().filter(|&&v| v == 0.0).count());
    let bias_corrected = match (
        float.get(n).and_then(Option::as_ref),
        moments.get(n).and_then(Option::as_ref),
    ) {
        (Some(LayerMoments::Usable(float)), Some(LayerMoments::Usable(now))) => {
            correct_bias(&mut node.op, &original, float, now)
        }
        _ => false,
    };
    Some(SparseLayer {
        node: node.name.clone(),
        weights,
        zeros_before,
        zeros,
        criterion,
        bias_corrected,
        stored: None,
    })
}

/// Zeroes the `count` smallest magnitudes of one layer.
fn l1_layer(w: &mut Array, count: usize) {
    let mut order: Vec<usize> = (0..w.data.len()).collect();
    order.sort_by(|&a, &b| w.data[a].abs().total_cmp(&w.data[b].abs()).then(a.cmp(&b)));
    for i in order.into_iter().take(count) {
        w.data[i] = 0.0;
    }
}

/// One layer by OBS cost, the kept weights refit (exactly, or with the
/// SparseGPT update for rows over [`EXACT_REFIT_MAX_COLUMNS`]); `groups`
/// are the input moments of each group of rows (one for a FullyConnected
/// layer).
fn obs_layer(w: &mut Array, groups: &[DMatrix<f64>], count: usize) -> Result<(), &'static str> {
    let rows = w.shape.first().copied().unwrap_or(0);
    let n = w.data.len() / rows.max(1);
    if groups.is_empty() || rows % groups.len() != 0 || groups.iter().any(|h| h.nrows() != n) {
        return Err("its moments do not match its weights");
    }
    let rows_per_group = rows / groups.len();
    let factors = groups
        .iter()
        .map(ObsFactor::new)
        .collect::<Option<Vec<_>>>()
        .ok_or("its input moments cannot be factored")?;
    // Every weight's cost, over the whole layer (rows compete).
    let cost = |i: usize| {
        let f = &factors[i / n / rows_per_group];
        f64::from(w.data[i]).powi(2) / f.inverse_diagonal()[i % n].max(f64::MIN_POSITIVE)
    };
    let mut order: Vec<usize> = (0..w.data.len()).collect();
    order.sort_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(a.cmp(&b)));
    let mut mask = vec![false; w.data.len()];
    for i in order.into_iter().take(count) {
        mask[i] = true;
    }
    let exact: Option<Vec<DMatrix<f64>>> = match n <= EXACT_REFIT_MAX_COLUMNS {
        true => groups.iter().map(damped).collect(),
        false => None,
    };
    for (r, row) in w.data.chunks_mut(n).enumerate() {
        let g = r / rows_per_group;
        let mut v: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
        let pruned = &mask[r * n..(r + 1) * n];
        let refit = exact
            .as_ref()
            .is_some_and(|h| refit_row(&h[g], &mut v, pruned));
        if !refit {
            factors[g].fix_row(&mut v, |i, x| if pruned[i] { 0.0 } else { x });
        }
        for (dst, &x) in row.iter_mut().zip(&v) {
            *dst = x as f32;
        }
    }
    Ok(())
}

/// Sets the `pruned` weights of row `v` to zero and refits the others by
/// least squares to the row's output on the moments `h` (damped):
/// `v_K += H_KK⁻¹ H_KP v_P`, the minimum of `(v − v')ᵀ H (v − v')` over
/// `v'` with `v'_P = 0`. False (and `v` unchanged) when `H_KK` cannot be
/// factored.
fn refit_row(h: &DMatrix<f64>, v: &mut [f64], pruned: &[bool]) -> bool {
    let kept: Vec<usize> = (0..v.len()).filter(|&i| !pruned[i]).collect();
    let gone: Vec<usize> = (0..v.len()).filter(|&i| pruned[i]).collect();
    let h_kk = DMatrix::from_fn(kept.len(), kept.len(), |i, j| h[(kept[i], kept[j])]);
    let Some(cholesky) = h_kk.cholesky() else {
        return false;
    };
    let rhs = nalgebra::DVector::from_fn(kept.len(), |i, _| {
        gone.iter().map(|&p| h[(kept[i], p)] * v[p]).sum::<f64>()
    });
    let delta = cholesky.solve(&rhs);
    for (&k, d) in kept.iter().zip(delta.iter()) {
        v[k] += d;
    }
    for &p in &gone {
        v[p] = 0.0;
    }
    true
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

    fn spec(sparsity: f64, criterion: Criterion, scope: Scope) -> WeightPruning {
        WeightPruning {
            sparsity,
            criterion,
            scope,
        }
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
        let spec = spec(0.5, Criterion::L1, Scope::Layer);
        let report = prune_weights(&mut g, &spec, &[]);
        assert_eq!(weights(&g, 0), [0.0, -0.9, 0.3, 0.0]);
        assert_eq!(weights(&g, 1), [5.0, 4.0, 0.0, 0.0]);
        assert_eq!(report.len(), 2);
        assert!(report.iter().all(|l| l.zeros == 2 && l.sparsity() == 0.5));
    }

    #[test]
    fn l1_global_takes_one_threshold_over_all_layers() {
        let mut g = fc_graph(&[vec![0.1, -0.9, 0.3, -0.05], vec![5.0, 4.0, -3.0, 2.0]]);
        let spec = spec(0.5, Criterion::L1, Scope::Global);
        let report = prune_weights(&mut g, &spec, &[]);
        // The four smallest of eight are all in the first layer.
        assert_eq!(weights(&g, 0), [0.0; 4]);
        assert_eq!(weights(&g, 1), [5.0, 4.0, -3.0, 2.0]);
        assert_eq!(report[0].zeros, 4);
        assert_eq!(report[1].zeros, 0);
    }

    #[test]
    fn random_is_seeded_and_reaches_the_share() {
        let layer: Vec<f32> = (1..=200).map(|v| v as f32).collect();
        let spec = |seed| spec(0.3, Criterion::Random { seed }, Scope::Layer);
        let run = |seed| {
            let mut g = fc_graph(std::slice::from_ref(&layer));
            prune_weights(&mut g, &spec(seed), &[]);
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
        prune_weights(&mut g, &spec(1), &[]);
        assert!(matches!(&g.nodes[0].op, Op::FullyConnected(f) if f.bias == [0.5]));
    }

    /// OBS with the SparseGPT update loses less of a layer's output than
    /// magnitude at the same sparsity, on inputs whose neighbours correlate.
    #[test]
    fn obs_beats_magnitude_on_correlated_inputs() {
        use crate::rounding::InputMoments;
        use crate::testing::lcg;
        let mut seed = 11;
        let (rows, n) = (6, 20);
        let w: Vec<f32> = (0..rows * n).map(|_| lcg(&mut seed) * 0.5).collect();
        let xs: Vec<Vec<f32>> = (0..300)
            .map(|_| {
                let mut acc = 0.0;
                (0..n)
                    .map(|_| {
                        acc = 0.85 * acc + lcg(&mut seed);
                        acc
                    })
                    .collect()
            })
            .collect();
        let mut h = DMatrix::zeros(n, n);
        for x in &xs {
            let v = DMatrix::from_fn(n, 1, |i, _| f64::from(x[i]));
            h += &v * v.transpose();
        }
        let moments = vec![Some(LayerMoments::Usable(InputMoments {
            groups: vec![h],
            sums: vec![nalgebra::DVector::zeros(n)],
            observations: xs.len(),
        }))];
        let error = |pruned: &[f32]| -> f64 {
            xs.iter()
                .map(|x| {
                    (0..rows)
                        .map(|r| {
                            (0..n)
                                .map(|c| f64::from((w[r * n + c] - pruned[r * n + c]) * x[c]))
                                .sum::<f64>()
                                .powi(2)
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let run = |criterion| {
            let mut g = fc_graph(&[vec![0.0]]);
            if let Op::FullyConnected(f) = &mut g.nodes[0].op {
                f.weights = Array::new(vec![rows, n], w.clone());
            }
            let spec = WeightPruning {
                sparsity: 0.5,
                criterion,
                scope: Scope::Layer,
            };
            let report = prune_weights(&mut g, &spec, &moments);
            (
                match &g.nodes[0].op {
                    Op::FullyConnected(f) => f.weights.data.clone(),
                    _ => unreachable!(),
                },
                report,
            )
        };
        let (l1, _) = run(Criterion::L1);
        let (obs, report) = run(Criterion::Obs);
        assert_eq!(report[0].criterion, "obs");
        assert_eq!(report[0].zeros, rows * n / 2);
        let (e_l1, e_obs) = (error(&l1), error(&obs));
        assert!(e_obs < 0.5 * e_l1, "obs {e_obs:e} vs l1 {e_l1:e}");
        // Without moments a layer falls back to magnitude, and says so.
        let mut g = fc_graph(std::slice::from_ref(&w));
        let spec = spec(0.5, Criterion::Obs, Scope::Layer);
        let report = prune_weights(&mut g, &spec, &[]);
        assert!(
            report[0].criterion.starts_with("l1: "),
            "{}",
            report[0].criterion
        );
        assert_eq!(report[0].zeros, w.len() / 2);
    }

    /// Over all layers, `obs` takes more from the layer whose small weights
    /// cost little relative to its output.
    #[test]
    fn obs_over_all_layers_allocates_by_relative_cost() {
        use crate::rounding::InputMoments;
        let g = fc_graph(&[vec![1.0, 1.0, 1.0, 1.0], vec![1.0, 0.01, 0.01, 0.01]]);
        let usable = || {
            Some(LayerMoments::Usable(InputMoments {
                groups: vec![DMatrix::identity(4, 4)],
                sums: vec![nalgebra::DVector::zeros(4)],
                observations: 100,
            }))
        };
        let moments = vec![usable(), usable()];
        assert_eq!(obs_counts(&g, 0.5, Scope::Layer, &moments), [2, 2]);
        assert_eq!(obs_counts(&g, 0.5, Scope::Global, &moments), [1, 3]);
        // A layer without moments keeps the plain share, outside the ranking.
        assert_eq!(
            obs_counts(&g, 0.5, Scope::Global, &[None, usable()]),
            [2, 2]
        );
    }

    /// Moments of `xs` as the calibration collects them for a FullyConnected
    /// layer.
    fn moments_of(xs: &[Vec<f32>]) -> crate::rounding::InputMoments {
        let n = xs[0].len();
        let mut h = DMatrix::zeros(n, n);
        let mut sum = nalgebra::DVector::zeros(n);
        for x in xs {
            let v = nalgebra::DVector::from_iterator(n, x.iter().map(|&v| f64::from(v)));
            h += &v * v.transpose();
            sum += v;
        }
        crate::rounding::InputMoments {
            groups: vec![h],
            sums: vec![sum],
            observations: xs.len(),
        }
    }

    /// Mean output of each row of an FC node over `xs`.
    fn mean_output(g: &Graph, n: usize, xs: &[Vec<f32>]) -> Vec<f64> {
        let Op::FullyConnected(f) = &g.nodes[n].op else {
            unreachable!()
        };
        let k = f.weights.shape[1];
        (0..f.weights.shape[0])
            .map(|r| {
                let w = &f.weights.data[r * k..(r + 1) * k];
                let total: f64 = xs
                    .iter()
                    .map(|x| {
                        w.iter()
                            .zip(x)
                            .map(|(&w, &x)| f64::from(w * x))
                            .sum::<f64>()
                    })
                    .sum();
                total / xs.len() as f64 + f64::from(f.bias[r])
            })
            .collect()
    }

    /// Positive inputs (as after a ReLU) whose neighbours correlate.
    fn relu_inputs(count: usize, n: usize, seed: &mut u64) -> Vec<Vec<f32>> {
        use crate::testing::lcg;
        (0..count)
            .map(|_| {
                let mut acc = 0.0;
                (0..n)
                    .map(|_| {
                        acc = 0.7 * acc + lcg(seed);
                        acc.max(0.0) + 0.2
                    })
                    .collect()
            })
            .collect()
    }

    /// On inputs with a mean, the OBS update leaves the layer's mean output
    /// shifted; the corrected bias puts it back where the float layer has it.
    #[test]
    fn obs_corrects_the_bias_for_the_mean_output() {
        use crate::testing::lcg;
        let mut seed = 5;
        let (rows, n) = (8, 24);
        let w: Vec<f32> = (0..rows * n).map(|_| lcg(&mut seed)).collect();
        let xs = relu_inputs(400, n, &mut seed);
        let moments = vec![Some(LayerMoments::Usable(moments_of(&xs)))];
        let mut g = fc_graph(&[vec![0.0]]);
        if let Op::FullyConnected(f) = &mut g.nodes[0].op {
            f.weights = Array::new(vec![rows, n], w.clone());
            f.bias = (0..rows).map(|r| r as f32 * 0.1).collect();
        }
        let before = mean_output(&g, 0, &xs);
        let spec = spec(0.75, Criterion::Obs, Scope::Layer);
        let report = prune_weights(&mut g, &spec, &moments);
        assert!(report[0].bias_corrected);
        assert_eq!(report[0].zeros, rows * n * 3 / 4);
        let after = mean_output(&g, 0, &xs);
        // With the pruned weights and the original biases, the means move.
        let mut uncorrected = g.clone();
        if let Op::FullyConnected(f) = &mut uncorrected.nodes[0].op {
            f.bias = (0..rows).map(|r| r as f32 * 0.1).collect();
        }
        let shifted = mean_output(&uncorrected, 0, &xs);
        let worst = |m: &[f64]| {
            before
                .iter()
                .zip(m)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        };
        assert!(worst(&shifted) > 0.02, "shift {}", worst(&shifted));
        assert!(worst(&after) < 1e-4, "left {}", worst(&after));
    }

    /// Sequentially, the correction also makes up for what the pruned layer
    /// before changed in its input: the mean output is the float model's.
    #[test]
    fn sequential_obs_corrects_the_bias_towards_the_float_model() {
        use crate::testing::lcg;
        let mut seed = 9;
        let n = 16;
        let xs = relu_inputs(300, n, &mut seed);
        // Input → FC n×n (ReLU) → FC 3×n.
        let w0: Vec<f32> = (0..n * n).map(|_| lcg(&mut seed) * 0.5).collect();
        let w1: Vec<f32> = (0..3 * n).map(|_| lcg(&mut seed)).collect();
        let mut g = fc_graph(&[vec![0.0], vec![0.0]]);
        for (node, w, rows) in [(0, &w0, n), (1, &w1, 3)] {
            if let Op::FullyConnected(f) = &mut g.nodes[node].op {
                f.weights = Array::new(vec![rows, n], w.clone());
                f.bias = vec![0.1; rows];
            }
        }
        if let Op::FullyConnected(f) = &mut g.nodes[0].op {
            f.activation = crate::ir::FusedActivation::Relu;
        }
        let forward = |g: &Graph, x: &[f32]| -> Vec<f32> {
            let Op::FullyConnected(f) = &g.nodes[0].op else {
                unreachable!()
            };
            f.weights
                .data
                .chunks(n)
                .zip(&f.bias)
                .map(|(w, b)| (w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + b).max(0.0))
                .collect()
        };
        let moments_of_graph = |g: &Graph| -> Result<Vec<Option<LayerMoments>>, ()> {
            let hidden: Vec<Vec<f32>> = xs.iter().map(|x| forward(g, x)).collect();
            Ok(vec![
                Some(LayerMoments::Usable(moments_of(&xs))),
                Some(LayerMoments::Usable(moments_of(&hidden))),
            ])
        };
        let float = moments_of_graph(&g).unwrap();
        let hidden_float: Vec<Vec<f32>> = xs.iter().map(|x| forward(&g, x)).collect();
        let target = mean_output(&g, 1, &hidden_float);
        let counts = obs_counts(&g, 0.75, Scope::Layer, &float);
        let report = prune_obs_sequential(&mut g, &counts, &float, moments_of_graph).unwrap();
        assert!(report
            .iter()
            .all(|l| l.bias_corrected && l.criterion == "obs"));
        let hidden: Vec<Vec<f32>> = xs.iter().map(|x| forward(&g, x)).collect();
        let got = mean_output(&g, 1, &hidden);
        for (a, b) in target.iter().zip(&got) {
            assert!((a - b).abs() < 1e-4, "{target:?} vs {got:?}");
        }
    }

    /// The kept weights are the least-squares refit for the mask: no change
    /// of them lowers the row's (damped) output error, which is well below
    /// what SparseGPT's column-by-column update leaves for the same mask.
    #[test]
    fn obs_refits_the_kept_weights_exactly() {
        use crate::testing::lcg;
        let mut seed = 3;
        let (rows, n) = (6, 20);
        let w: Vec<f32> = (0..rows * n).map(|_| lcg(&mut seed)).collect();
        let xs = relu_inputs(300, n, &mut seed);
        let m = moments_of(&xs);
        let h = damped(&m.groups[0]).unwrap();
        let mut pruned = Array::new(vec![rows, n], w.clone());
        obs_layer(&mut pruned, &m.groups, rows * n * 3 / 4).unwrap();
        let factor = ObsFactor::new(&m.groups[0]).unwrap();
        let (mut exact, mut update) = (0.0, 0.0);
        for r in 0..rows {
            let a =
                nalgebra::DVector::from_iterator(n, w[r * n..][..n].iter().map(|&v| f64::from(v)));
            let b = nalgebra::DVector::from_iterator(
                n,
                pruned.data[r * n..][..n].iter().map(|&v| f64::from(v)),
            );
            // Zero gradient over the kept weights.
            let grad = &h * (&b - &a);
            let scale = (a.transpose() * &h * &a)[(0, 0)].sqrt();
            for i in (0..n).filter(|&i| b[i] != 0.0) {
                assert!(
                    grad[i].abs() < 1e-4 * scale,
                    "row {r} input {i}: {}",
                    grad[i]
                );
            }
            exact += ((&b - &a).transpose() * &h * (&b - &a))[(0, 0)];
            let mut u: Vec<f64> = a.iter().copied().collect();
            factor.fix_row(&mut u, |i, x| if b[i] == 0.0 { 0.0 } else { x });
            let u = nalgebra::DVector::from_vec(u);
            update += ((&u - &a).transpose() * &h * (&u - &a))[(0, 0)];
        }
        assert!(exact < 0.8 * update, "exact {exact:e} vs update {update:e}");
    }

    /// Measured, a layer whose inputs come in near-duplicate pairs gives
    /// one weight of each pair (its partner makes up for it) and no more;
    /// ranked weight by weight, every one of its weights looks cheap and
    /// the whole layer goes.
    #[test]
    fn measured_allocation_prices_weights_together() {
        use crate::rounding::InputMoments;
        // (The mask is chosen before the refit, by single costs: the second
        // weight of each pair is the cheaper one, so that two zeros are one
        // of each pair.)
        let g = fc_graph(&[vec![1.0, 0.9, 1.0, 0.9], vec![1.0; 4]]);
        let r = 0.999;
        let pairs = DMatrix::from_fn(4, 4, |i, j| match (i / 2 == j / 2, i == j) {
            (_, true) => 100.0,
            (true, false) => 100.0 * r,
            _ => 0.0,
        });
        let usable = |h: DMatrix<f64>| {
            Some(LayerMoments::Usable(InputMoments {
                groups: vec![h],
                sums: vec![nalgebra::DVector::zeros(4)],
                observations: 100,
            }))
        };
        let moments = vec![usable(pairs), usable(DMatrix::identity(4, 4) * 100.0)];
        assert_eq!(obs_counts(&g, 0.5, Scope::Global, &moments), [4, 0]);
        assert_eq!(obs_counts(&g, 0.5, Scope::Measured, &moments), [2, 2]);
        // The exact count, also when it falls between measured shares.
        let counts = obs_counts(&g, 0.375, Scope::Measured, &moments);
        assert_eq!(counts.iter().sum::<usize>(), 3, "{counts:?}");
        assert_eq!(counts[0], 2, "{counts:?}");
        // A layer without moments keeps the plain share, outside the budget.
        assert_eq!(
            obs_counts(&g, 0.5, Scope::Measured, &[None, moments[1].clone()]),
            [2, 2]
        );
    }

    #[test]
    fn existing_zeros_count_toward_the_share() {
        let mut g = fc_graph(&[vec![0.0, 0.0, 0.7, -0.2]]);
        let spec = spec(0.5, Criterion::L1, Scope::Layer);
        let report = prune_weights(&mut g, &spec, &[]);
        assert_eq!(weights(&g, 0), [0.0, 0.0, 0.7, -0.2]);
        assert_eq!((report[0].zeros_before, report[0].zeros), (2, 2));
    }
}
