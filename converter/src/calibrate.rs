//! Activation ranges from running the float model (tract) over representative
//! samples.
//!
//! Every activation tensor gets an observer that tracks the exact min/max and
//! keeps a deterministic subsample of its values. The subsample feeds the
//! outlier-robust methods (percentile, MSE), whose results are always clipped
//! to the observed min/max and widened to include zero (so that real 0 —
//! padding, ReLU — is exactly representable).
//!
//! A tensor whose only use is a Softmax gets a range from what Softmax needs
//! instead ([`SoftmaxRows`]): its output depends on each row's values near
//! the row maximum only, so the int8 steps go there rather than to logits
//! whose probabilities are zero anyway.

use crate::error::ConvertError;
use crate::float_ref::FloatRef;
use crate::ir::{Graph, Op, OutputActivation, Softmax, TensorId};
use crate::ops::recurrent::CellRanges;
use crate::ops::reduce::{Reduce, Reduction};
use crate::quantize::integer_grid;
use crate::rounding::{LayerMoments, MomentsCollector};
use crate::samples::InputSamples;
use std::sync::{Arc, Mutex};

/// How a tensor's quantization range is chosen from its observed values.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The observed minimum and maximum.
    #[value(name = "minmax")]
    MinMax,
    /// The lower and upper `--percentile` of the observed values.
    Percentile,
    /// The clipping range that minimizes the int8 quantization mean squared error.
    Mse,
}

/// Values kept per tensor for the percentile and MSE searches.
const SUBSAMPLE_CAP: usize = 1 << 16;

/// Running statistics of one tensor.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    pub count: usize,
    kept: Vec<f32>,
    /// Set when the tensor only feeds a Softmax.
    pub softmax: Option<SoftmaxRows>,
    /// Set when the application applies a sigmoid to this graph output.
    pub sigmoid: bool,
    /// A graph input's declared range (`--input-range`), which wins.
    pub declared: Option<(f32, f32)>,
    /// Whether `−∞` was seen (a `masked_fill(mask, -inf)` before a
    /// Softmax): the range may then reach below the finite minimum.
    saw_neg_inf: bool,
    /// Values the encoding must hold whatever was observed: a constant Pad
    /// writes its value on this tensor's grid (`F.pad(x, p, value=-1)`).
    /// With `true`, only maxima read the padding: a value below the range
    /// never wins there, and is left out.
    pub holds: Vec<(f32, bool)>,
    /// A ReduceMax reads this tensor (or a table of it: `amin` is a max of
    /// `−x`): its extremes are what the max keeps, so the range keeps the
    /// observed ones instead of clipping them for the bulk's sake.
    pub extremes: bool,
    /// Whether a finite value with a fractional part was seen; a tensor of
    /// integers only (a mask, lengths) takes [`integer_grid`]'s range.
    fractional: bool,
}

/// Beyond ±this a sigmoid is within half an int8 probability step (1/512)
/// of 0 or 1: `ln(511)`. A logit range clipped to it loses nothing the
/// sigmoid's output can show, and its int8 steps go where it can.
pub const SIGMOID_EDGE: f32 = 6.236_37;

/// The range a Softmax input needs, from its rows (the values along the
/// softmax axis).
///
/// Clamping changes a row's probabilities by at most `(K−1)·e^(−C)` as long
/// as every value within `C` of the row's maximum is kept, and a maximum
/// clipped to `hi` stays at least `C` above the second largest value. With
/// `e^(−C)·(K−1)` at most half a step of the softmax output (1/512) the
/// int8 output is what the unclamped input would give, and the step of
/// the input encoding shrinks to what the rows need: for the test net
/// `cnn2d` the logits span [−16.3, 41.8] but need [−8.5, 20.4].
#[derive(Clone, Debug)]
pub struct SoftmaxRows {
    /// Axis length `K` and the stride between its elements.
    axis_len: usize,
    inner: usize,
    /// `C`.
    margin: f32,
    /// The smallest row maximum.
    min_top: f32,
    /// The largest `min(top, second + C)` over the rows: how high `hi` must
    /// reach so that no row's maximum is clipped into its neighbours.
    hi_needed: f32,
}

impl SoftmaxRows {
    pub fn new(axis_len: usize, inner: usize) -> SoftmaxRows {
        let others = axis_len.saturating_sub(1).max(1) as f32;
        SoftmaxRows {
            axis_len: axis_len.max(1),
            inner: inner.max(1),
            margin: (512.0 * others).ln(),
            min_top: f32::INFINITY,
            hi_needed: f32::NEG_INFINITY,
        }
    }

    fn observe(&mut self, values: &[f32]) {
        let (k, inner) = (self.axis_len, self.inner);
        for block in values.chunks(k * inner) {
            for j in 0..inner.min(block.len()) {
                let (mut top, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
                for &v in block
                    .iter()
                    .skip(j)
                    .step_by(inner)
                    .filter(|v| v.is_finite())
                {
                    if v > top {
                        (top, second) = (v, top);
                    } else if v > second {
                        second = v;
                    }
                }
                if top.is_finite() {
                    self.min_top = self.min_top.min(top);
                    self.hi_needed = self.hi_needed.max(top.min(second + self.margin));
                }
            }
        }
    }

    /// `[min(top, hi) − C, hi]` over all rows seen, or `None` before any.
    fn range(&self) -> Option<(f32, f32)> {
        let hi = self.hi_needed;
        (hi.is_finite() && self.min_top.is_finite())
            .then(|| (self.min_top.min(hi) - self.margin, hi))
    }
}

impl Observer {
    fn new() -> Observer {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            kept: Vec::new(),
            softmax: None,
            sigmoid: false,
            declared: None,
            saw_neg_inf: false,
            holds: Vec::new(),
            extremes: false,
            fractional: false,
        }
    }

    /// `per_sample_quota` bounds how many values one sample contributes, so that
    /// every sample is represented and memory stays bounded.
    fn observe(&mut self, values: &[f32], per_sample_quota: usize) {
        for &v in values {
            if v.is_finite() {
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                self.fractional |= v.fract() != 0.0;
            } else if v == f32::NEG_INFINITY {
                self.saw_neg_inf = true;
            }
        }
        if let Some(rows) = self.softmax.as_mut() {
            rows.observe(values);
        }
        self.count += values.len();
        let stride = values.len().div_ceil(per_sample_quota.max(1)).max(1);
        self.kept.extend(
            values
                .iter()
                .step_by(stride)
                .copied()
                .filter(|v| v.is_finite()),
        );
    }

    /// The quantization range `[lo, hi]`, `lo ≤ 0 ≤ hi`.
    pub fn range(&self, method: Method, percentile: f32) -> (f32, f32) {
        let (lo, hi) = match self.extremes && self.declared.is_none() {
            true => self.observed_range(Method::MinMax, percentile),
            false => self.observed_range(method, percentile),
        };
        self.holds
            .iter()
            .filter(|&&(v, only_maxima)| !(only_maxima && v <= lo))
            .fold((lo, hi), |(lo, hi), &(v, _)| (lo.min(v), hi.max(v)))
    }

    /// [`Observer::range`] before the values it must hold.
    fn observed_range(&self, method: Method, percentile: f32) -> (f32, f32) {
        if let Some((lo, hi)) = self.declared {
            // Zero stays representable, as for every activation.
            return (lo.min(0.0), hi.max(0.0));
        }
        if self.count == 0 || self.min > self.max {
            return (0.0, 0.0);
        }
        // Integers only: every one of them exact, none clipped.
        let plain = self.softmax.is_none() && !self.sigmoid && !self.saw_neg_inf;
        if let (false, true, Some(range)) =
            (self.fractional, plain, integer_grid(self.min, self.max))
        {
            return range;
        }
        let (lo, hi) = match (method, self.softmax.as_ref().and_then(SoftmaxRows::range)) {
            (_, Some(needed)) => needed,
            (Method::MinMax, None) => (self.min, self.max),
            (Method::Percentile, None) => self.percentile_range(percentile),
            (Method::Mse, None) => self.mse_range(),
        };
        let (lo, hi) = match self.sigmoid {
            true => (lo.max(-SIGMOID_EDGE), hi.min(SIGMOID_EDGE)),
            false => (lo, hi),
        };
        // Never past what was seen: masked `−∞` entries were seen below
        // every finite value, and a Softmax's rows need room down there
        // (its range's `lo`), where the finite minimum would leave the
        // masked entries one step below the scores.
        let floor = match self.saw_neg_inf {
            true => f32::NEG_INFINITY,
            false => self.min.min(0.0),
        };
        (lo.min(0.0).max(floor), hi.max(0.0).min(self.max.max(0.0)))
    }

    fn sorted(&self) -> Vec<f32> {
        let mut v = self.kept.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    fn percentile_range(&self, p: f32) -> (f32, f32) {
        let v = self.sorted();
        if v.is_empty() {
            return (self.min, self.max);
        }
        let p = (p.clamp(50.0, 100.0) / 100.0) as f64;
        let last = (v.len() - 1) as f64;
        let hi = v[(p * last).round() as usize];
        let lo = v[((1.0 - p) * last).round() as usize];
        (lo, hi)
    }

    /// Shrink the min/max range by a common factor, choosing the factor with the
    /// least squared error of quantize→dequantize over the kept values.
    fn mse_range(&self) -> (f32, f32) {
        let (lo0, hi0) = (self.min.min(0.0), self.max.max(0.0));
        if self.kept.is_empty() || hi0 - lo0 <= 0.0 {
            return (lo0, hi0);
        }
        let mut best = (f64::INFINITY, lo0, hi0);
        for step in 0..=80 {
            let f = 1.0 - step as f32 * 0.01; // 1.00 … 0.20
            let (lo, hi) = (lo0 * f, hi0 * f);
            let (scale, zp) = crate::quantize::activation_qparams(lo, hi);
            let err: f64 = self
                .kept
                .iter()
                .map(|&x| {
                    let q = ((x / scale).round() + zp as f32).clamp(-128.0, 127.0);
                    let d = (q - zp as f32) * scale - x;
                    (d as f64) * (d as f64)
                })
                .sum();
            // Strictly better only: ties keep the wider range.
            if err < best.0 {
                best = (err, lo, hi);
            }
        }
        (best.1, best.2)
    }
}

/// Float values of the activation tensors, observed over calibration samples.
#[derive(Clone)]
pub struct Calibration {
    /// Indexed by tensor id; `None` for constants.
    pub observers: Vec<Option<Observer>>,
    /// Indexed by node: the internal ranges of recurrent nodes, from a float
    /// simulation of the cell on the node's input (tract exposes only the
    /// node's outputs).
    pub cells: Vec<Option<CellRanges>>,
    /// Indexed by node: the input moments of Conv and FullyConnected nodes,
    /// for GPTQ and pruning (empty unless asked for).
    pub moments: Vec<Option<LayerMoments>>,
    /// [`Self::ranges`] already chosen.
    pub chosen: RangeCache,
}

/// The ranges of each method (and percentile) once chosen: the `mse`
/// search over every tensor's kept values costs more than quantizing and
/// writing a file, and `--precision auto` and `--select` write dozens of
/// files from one calibration. A clone starts empty.
#[derive(Default)]
pub struct RangeCache(Mutex<Vec<(RangeKey, Arc<Ranges>)>>);

type RangeKey = (Method, u32);
/// Per tensor id: the quantization range, `None` for a constant or a
/// tensor never observed.
pub type Ranges = Vec<Option<(f32, f32)>>;

impl Clone for RangeCache {
    fn clone(&self) -> RangeCache {
        RangeCache::default()
    }
}

impl Calibration {
    /// Every tensor's range under `method` (`percentile` for
    /// [`Method::Percentile`]), chosen once per method and kept.
    /// [`Self::observers`] must not change after the first call.
    pub fn ranges(&self, method: Method, percentile: f32) -> Arc<Ranges> {
        let key = (method, percentile.to_bits());
        let find = |cache: &[(RangeKey, Arc<Ranges>)]| {
            cache
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, r)| r.clone())
        };
        // A poisoned lock only means another thread panicked mid-insert;
        // the entries it holds are whole.
        let lock = || self.chosen.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = find(&lock()) {
            return r;
        }
        let ranges: Ranges = self
            .observers
            .iter()
            .map(|o| {
                o.as_ref()
                    .filter(|o| o.count > 0)
                    .map(|o| o.range(method, percentile))
            })
            .collect();
        let ranges = Arc::new(ranges);
        lock().push((key, ranges.clone()));
        ranges
    }
}

/// The activation tensors of the graph (inputs and node outputs), in id order.
pub fn activation_tensors(graph: &Graph) -> Vec<TensorId> {
    let mut ids: Vec<TensorId> = graph.inputs.clone();
    ids.extend(graph.nodes.iter().map(|n| n.output));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Run the float model over every sample and observe every activation tensor
/// (and, with `moments`, the input moments of weighted layers).
pub fn calibrate(
    graph: &Graph,
    float_ref: &FloatRef,
    samples: &impl InputSamples,
    moments: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Calibration, ConvertError> {
    calibrate_from(
        graph,
        Values::Reference(float_ref),
        samples,
        moments,
        progress,
    )
}

/// Where calibration takes each tensor's float values from.
#[derive(Clone, Copy)]
pub enum Values<'a> {
    /// tract's run of the ONNX model (what the graph was lowered from).
    Reference(&'a FloatRef),
    /// The graph's own float evaluation: for a graph whose weights were
    /// changed after lowering (weight pruning), which tract knows nothing of.
    Graph,
}

/// [`calibrate`] with the values from `source`.
pub fn calibrate_from(
    graph: &Graph,
    source: Values<'_>,
    samples: &impl InputSamples,
    moments: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Calibration, ConvertError> {
    let ids = activation_tensors(graph);
    let mut observers: Vec<Option<Observer>> = vec![None; graph.tensors.len()];
    for &i in &ids {
        observers[i] = Some(Observer::new());
    }
    for node in &graph.nodes {
        if let (Op::Softmax(Softmax { axis }), Some(&x)) = (&node.op, node.inputs.first()) {
            if let Some(obs) = observers[x]
                .as_mut()
                .filter(|_| only_feeds(graph, x, node.output))
            {
                let dims = &graph.tensors[x].shape;
                let inner = dims.iter().skip(axis + 1).product();
                obs.softmax = Some(SoftmaxRows::new(
                    dims.get(*axis).copied().unwrap_or(1),
                    inner,
                ));
            }
        }
    }
    // Two rules read a node's readers: a constant Pad writes its value on
    // its input's grid (the output keeps the input's encoding), so that grid
    // must hold it, unless only maxima read the padded tensor (a pad below
    // every value then never wins); and a tensor a ReduceMax reads, directly
    // or through one table, keeps its extremes.
    let is_max = |n: usize| {
        matches!(
            graph.nodes[n].op,
            Op::Reduce(Reduce {
                how: Reduction::Max,
                ..
            })
        )
    };
    for (n, node) in graph.nodes.iter().enumerate() {
        let Some(obs) = node.inputs.first().and_then(|&x| observers[x].as_mut()) else {
            continue;
        };
        let readers = graph.consumers(node.output);
        if let Op::Pad(pad) = &node.op {
            let only_maxima = !graph.outputs.contains(&node.output)
                && readers
                    .iter()
                    .all(|&c| is_max(c) || matches!(graph.nodes[c].op, Op::MaxPool(_)));
            if pad.value.is_finite() {
                obs.holds.push((pad.value, only_maxima));
            }
        }
        let table = matches!(node.op, Op::Unary(_) | Op::Pointwise(_));
        if is_max(n) || (table && readers.into_iter().any(is_max)) {
            obs.extremes = true;
        }
    }
    for (&t, &range) in &graph.input_ranges {
        if let Some(obs) = observers.get_mut(t).and_then(Option::as_mut) {
            obs.declared = Some(range);
        }
    }
    for (&t, activation) in &graph.output_activations {
        match activation {
            OutputActivation::Sigmoid => {
                for c in sigmoid_carriers(graph, t) {
                    if let Some(obs) = observers.get_mut(c).and_then(Option::as_mut) {
                        obs.sigmoid = true;
                    }
                }
            }
            OutputActivation::Softmax => {
                if let Some(obs) = observers.get_mut(t).and_then(Option::as_mut) {
                    let last = graph.tensors[t].shape.last().copied().unwrap_or(1);
                    obs.softmax = Some(SoftmaxRows::new(last, 1));
                }
            }
        }
    }
    let mut cells: Vec<Option<CellRanges>> = graph
        .nodes
        .iter()
        .map(|n| matches!(n.op, Op::Recurrent(_)).then(CellRanges::default))
        .collect();
    let mut collector = moments.then(|| MomentsCollector::new(graph));
    // Where each node's first input is among the observed values.
    let node_input: Vec<Option<usize>> = graph
        .nodes
        .iter()
        .map(|node| {
            node.inputs
                .first()
                .and_then(|t| ids.iter().position(|i| i == t))
        })
        .collect();
    let quota = SUBSAMPLE_CAP.div_ceil(samples.count().max(1));
    progress.set_length(samples.count() as u64);
    for s in 0..samples.count() {
        let values = match source {
            Values::Reference(float_ref) => {
                crate::float_eval::reference_values(graph, float_ref, &samples.inputs(s), &ids)?
            }
            Values::Graph => {
                let mut all = crate::float_eval::eval(graph, &samples.inputs(s))?;
                ids.iter()
                    .map(|&i| all.get_mut(i).and_then(Option::take).unwrap_or_default())
                    .collect()
            }
        };
        for (&id, v) in ids.iter().zip(&values) {
            if let Some(obs) = observers[id].as_mut() {
                obs.observe(v, quota);
            }
        }
        let first_input = |n: usize| node_input[n].and_then(|k| values.get(k));
        for (node, cell) in graph.nodes.iter().zip(cells.iter_mut()) {
            if let (Op::Recurrent(rec), Some(cell)) = (&node.op, cell.as_mut()) {
                // Every input of the cell: x, and the initial states it reads.
                let inputs: Option<Vec<&[f32]>> = node
                    .inputs
                    .iter()
                    .map(|t| {
                        let k = ids.iter().position(|i| i == t)?;
                        values.get(k).map(Vec::as_slice)
                    })
                    .collect();
                if let Some(inputs) = inputs {
                    rec.simulate(&inputs, cell);
                }
            }
        }
        if let Some(collector) = collector.as_mut() {
            for n in 0..graph.nodes.len() {
                if let Some(x) = first_input(n) {
                    collector.observe(n, x);
                }
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let moments = collector.map(MomentsCollector::finish).unwrap_or_default();
    Ok(Calibration {
        observers,
        cells,
        moments,
        chosen: RangeCache::default(),
    })
}

/// Whether `tensor`'s one use is as the input of the node producing
/// `consumer_output` (not a graph output, not read by another node).
/// `output` and the tensors whose values reach it only moved, never
/// computed: through Reshape, Transpose, Slice/Gather and Concat, and read
/// by nothing else. A sigmoid the application applies to `output` applies
/// to each of their values, so their ranges follow the same rule; without
/// this a detector's score convs keep their whole logit range and the
/// Concat (or view) that assembles the output cannot win back the steps.
fn sigmoid_carriers(graph: &Graph, output: TensorId) -> Vec<TensorId> {
    let mut carriers = vec![output];
    loop {
        let before = carriers.len();
        for node in &graph.nodes {
            let moves_values = matches!(
                node.op,
                Op::Reshape | Op::Transpose(_) | Op::Select(_) | Op::Concat(_)
            );
            if !moves_values || !carriers.contains(&node.output) {
                continue;
            }
            for &x in &node.inputs {
                let only_carried = graph
                    .consumers(x)
                    .iter()
                    .all(|&n| carriers.contains(&graph.nodes[n].output));
                let own_value = graph.outputs.contains(&x) || graph.inputs.contains(&x);
                if only_carried && !own_value && !carriers.contains(&x) {
                    carriers.push(x);
                }
            }
        }
        if carriers.len() == before {
            return carriers;
        }
    }
}

/// The tensors whose ranges are chosen for a function applied after them
/// rather than for their own values, so that values past the range are
/// clipped on purpose: a Softmax's logits, the tensors carrying a graph
/// output the application passes through a sigmoid, and such an output
/// itself (the rules of [`calibrate_from`]).
pub fn narrowed_for_a_function(graph: &Graph) -> std::collections::BTreeSet<TensorId> {
    let logits = graph
        .nodes
        .iter()
        .filter_map(|node| match (&node.op, node.inputs.first()) {
            (Op::Softmax(_), Some(&x)) if only_feeds(graph, x, node.output) => Some(x),
            _ => None,
        });
    let applied = graph
        .output_activations
        .iter()
        .flat_map(|(&t, activation)| match activation {
            OutputActivation::Sigmoid => sigmoid_carriers(graph, t),
            OutputActivation::Softmax => vec![t],
        });
    logits.chain(applied).collect()
}

fn only_feeds(graph: &Graph, tensor: TensorId, consumer_output: TensorId) -> bool {
    let one_reader = matches!(
        graph.consumers(tensor)[..],
        [n] if graph.nodes[n].output == consumer_output
    );
    one_reader && !graph.outputs.contains(&tensor) && !graph.inputs.contains(&tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Concat, Node, Tensor};

    /// x → Reshape → t1 ─┐
    /// x → Reshape → t3 → Reshape → t2b ─┴ Concat → y (sigmoid applied),
    /// and t3 also → Reshape → t5, another graph output.
    #[test]
    fn a_sigmoid_reaches_back_through_moves_to_tensors_nothing_else_reads() {
        let mut g = Graph::default();
        for name in ["x", "t1", "t2b", "t3", "y", "t5"] {
            g.tensors.push(Tensor {
                name: name.into(),
                shape: vec![1, 4],
                value: None,
            });
        }
        let node = |op: Op, inputs: &[TensorId], output: TensorId| Node {
            name: format!("n{output}"),
            onnx_ops: vec![],
            op,
            inputs: inputs.to_vec(),
            output,
        };
        g.inputs = vec![0];
        g.outputs = vec![4, 5];
        g.nodes = vec![
            node(Op::Reshape, &[0], 1),
            node(Op::Reshape, &[0], 3),
            node(Op::Reshape, &[3], 2),
            node(Op::Concat(Concat { axis: 1 }), &[1, 2], 4),
            node(Op::Reshape, &[3], 5),
        ];
        let mut carriers = sigmoid_carriers(&g, 4);
        carriers.sort_unstable();
        // Not x (a graph input) and not t3 (t5 reads it too).
        assert_eq!(carriers, vec![1, 2, 4]);
    }

    fn observer(values: &[f32]) -> Observer {
        let mut o = Observer::new();
        o.observe(values, usize::MAX);
        o
    }

    #[test]
    fn softmax_inputs_keep_what_the_rows_need() {
        // K = 3: C = ln(512 · 2) = 6.931. Row 1: top 10, second 0 -> its top
        // may be clipped down to 6.931; row 2: top 2 -> lo = 2 − C.
        let mut obs = Observer::new();
        obs.softmax = Some(SoftmaxRows::new(3, 1));
        obs.observe(&[10.0, 0.0, -50.0], 16);
        obs.observe(&[2.0, 1.0, -3.0], 16);
        let c = 1024f32.ln();
        let (lo, hi) = obs.range(Method::MinMax, 99.9);
        assert!((hi - c).abs() < 1e-5, "hi {hi}");
        assert!((lo - (2.0 - c)).abs() < 1e-5, "lo {lo}");
        // Every method gives the same: the range serves the probabilities.
        assert_eq!(obs.range(Method::Mse, 99.9), (lo, hi));
    }

    #[test]
    fn masked_softmax_rows_reach_below_the_scores() {
        // Causal rows of K = 3 scores in [−0.3, 0.4] with −∞ above the
        // diagonal: the range reaches the rows' lowest maximum minus C, not
        // just the finite minimum −0.3 (the masked entries would be one
        // step below the scores, and take e^−0.7 of the probability).
        let mut obs = Observer::new();
        obs.softmax = Some(SoftmaxRows::new(3, 1));
        let ninf = f32::NEG_INFINITY;
        obs.observe(&[0.1, ninf, ninf, 0.4, -0.3, ninf, 0.2, 0.0, -0.1], 16);
        let c = 1024f32.ln();
        let (lo, _) = obs.range(Method::Mse, 99.9);
        assert!((lo - (0.1 - c)).abs() < 1e-5, "lo {lo}");
        // Without −∞ the finite minimum still bounds it.
        let mut obs = Observer::new();
        obs.softmax = Some(SoftmaxRows::new(3, 1));
        obs.observe(&[0.1, -0.2, -0.3, 0.4, -0.3, 0.0, 0.2, 0.0, -0.1], 16);
        assert_eq!(obs.range(Method::Mse, 99.9).0, -0.3);
    }

    #[test]
    fn a_tensor_a_max_reads_keeps_its_extremes() {
        // A bulk near 0 and a few large values: mse clips the top for the
        // bulk's sake, which is exactly what a ReduceMax keeps.
        let mut values: Vec<f32> = (0..4000).map(|i| (i % 97) as f32 / 97.0 * 0.6).collect();
        values.extend([2.8, 2.5, -0.4]);
        let mut obs = observer(&values);
        let (_, clipped) = obs.range(Method::Mse, 99.99);
        assert!(clipped < 2.8, "mse keeps {clipped}");
        obs.extremes = true;
        assert_eq!(obs.range(Method::Mse, 99.99), (-0.4, 2.8));
    }

    #[test]
    fn sigmoid_outputs_keep_what_the_sigmoid_shows() {
        // Logits in [−554, 2.4] (a face-score head): the sigmoid is 0 to
        // within 1/512 below −ln 511, so the range stops there; the top stays.
        let mut obs = observer(&[-554.0, -300.0, -7.0, 0.5, 2.4]);
        obs.sigmoid = true;
        for method in [Method::MinMax, Method::Mse, Method::Percentile] {
            let (lo, hi) = obs.range(method, 99.99);
            assert_eq!(lo, -SIGMOID_EDGE, "{method:?}");
            assert!(hi <= 2.4 && hi > 0.0, "{method:?}: {hi}");
        }
        let sigma = |x: f32| 1.0 / (1.0 + (-x).exp());
        assert!((sigma(-SIGMOID_EDGE) - 1.0 / 512.0).abs() < 1e-7);
        // Without the sigmoid the min/max range is the logits'.
        obs.sigmoid = false;
        assert_eq!(obs.range(Method::MinMax, 99.99), (-554.0, 2.4));
    }

    #[test]
    fn softmax_rows_follow_the_axis_stride() {
        // Shape [2, 2] with softmax over axis 0: rows are the columns
        // (1, 3) and (2, -20).
        let mut rows = SoftmaxRows::new(2, 2);
        rows.observe(&[1.0, 2.0, 3.0, -20.0]);
        let c = 512f32.ln();
        assert_eq!(rows.min_top, 2.0);
        assert!((rows.hi_needed - 3.0).abs() < 1e-6);
        let (lo, hi) = rows.range().unwrap();
        assert!((lo - (2.0 - c)).abs() < 1e-5 && hi == 3.0);
    }

    #[test]
    fn minmax_includes_zero() {
        assert_eq!(
            observer(&[1.5, 3.25]).range(Method::MinMax, 99.9),
            (0.0, 3.25)
        );
        assert_eq!(
            observer(&[-2.5, -1.5]).range(Method::MinMax, 99.9),
            (-2.5, 0.0)
        );
        assert_eq!(
            observer(&[-2.5, 5.25]).range(Method::MinMax, 99.9),
            (-2.5, 5.25)
        );
    }

    #[test]
    fn integers_only_take_a_grid_holding_each_exactly() {
        use crate::quantize::{activation_qparams, QParams};
        // A mask, and lengths 16..=32: every method keeps them all, on a
        // step of 1/255 and 1/7.
        let lengths: Vec<f32> = (16..=32).map(|v| v as f32).collect();
        for (values, step) in [(&[0.0, 1.0][..], 255.0), (&lengths[..], 7.0)] {
            for method in [Method::MinMax, Method::Percentile, Method::Mse] {
                let (lo, hi) = observer(values).range(method, 90.0);
                let (scale, zero_point) = activation_qparams(lo, hi);
                assert!((scale * step - 1.0).abs() < 1e-6, "{values:?}: {scale}");
                let q = QParams { scale, zero_point };
                for &v in values {
                    assert!((q.dequantize(q.quantize(v)) - v).abs() < 1e-5, "{v}");
                }
            }
        }
        // A fraction anywhere, or integers spanning past 255: as before.
        assert_eq!(
            observer(&[0.0, 1.0, 2.5]).range(Method::MinMax, 99.9),
            (0.0, 2.5)
        );
        assert_eq!(
            observer(&[-100.0, 200.0]).range(Method::MinMax, 99.9),
            (-100.0, 200.0)
        );
    }

    #[test]
    fn percentile_ignores_a_lone_outlier() {
        let mut v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        v.push(100.0);
        let (lo, hi) = observer(&v).range(Method::Percentile, 99.0);
        assert_eq!(lo, 0.0);
        assert!((0.97..1.0).contains(&hi), "hi = {hi}");
    }

    #[test]
    fn mse_clips_heavy_tails_but_not_uniform_data() {
        let uniform: Vec<f32> = (0..2001).map(|i| i as f32 / 1000.0 - 1.0).collect();
        let (lo, hi) = observer(&uniform).range(Method::Mse, 0.0);
        assert!(
            lo <= -0.97 && hi >= 0.97,
            "uniform data keeps its range: {lo} {hi}"
        );

        let mut tailed: Vec<f32> = (0..20000)
            .map(|i| ((i % 200) as f32 - 100.0) / 100.0)
            .collect();
        tailed.push(40.0);
        let (_, hi) = observer(&tailed).range(Method::Mse, 0.0);
        assert!(hi < 40.0, "a single far outlier is clipped: {hi}");
    }

    #[test]
    fn ranges_are_chosen_once_per_method_and_a_clone_starts_afresh() {
        let cal = Calibration {
            observers: vec![None, Some(observer(&[-1.5, 0.5, 3.0, 100.25]))],
            cells: Vec::new(),
            moments: Vec::new(),
            chosen: RangeCache::default(),
        };
        let minmax = cal.ranges(Method::MinMax, 99.99);
        assert_eq!(*minmax, vec![None, Some((-1.5, 100.25))]);
        // The same choice again is the kept one; another method its own.
        assert!(Arc::ptr_eq(&minmax, &cal.ranges(Method::MinMax, 99.99)));
        let p = cal.ranges(Method::Percentile, 50.0);
        assert!(!Arc::ptr_eq(&minmax, &p));
        assert_eq!(
            p[1],
            Some(
                cal.observers[1]
                    .as_ref()
                    .unwrap()
                    .range(Method::Percentile, 50.0)
            )
        );
        assert!(!Arc::ptr_eq(&p, &cal.ranges(Method::Percentile, 99.9)));
        // A clone may have its observers changed: it keeps no ranges.
        let mut other = cal.clone();
        other.observers[1] = Some(observer(&[-2.5, 2.5]));
        assert_eq!(other.ranges(Method::MinMax, 99.99)[1], Some((-2.5, 2.5)));
    }

    #[test]
    fn empty_observer_is_zero_range() {
        assert_eq!(Observer::new().range(Method::MinMax, 99.0), (0.0, 0.0));
    }
}
