//! Activation ranges from running the float model (tract) over representative
//! samples.
//!
//! Every activation tensor gets an observer that tracks the exact min/max and
//! keeps a deterministic subsample of its values. The subsample feeds the
//! outlier-robust methods (percentile, MSE), whose results are always clipped
//! to the observed min/max and widened to include zero (so that real 0 —
//! padding, ReLU — is exactly representable).

use crate::error::ConvertError;
use crate::float_ref::FloatRef;
use crate::ir::{Graph, Op, TensorId};
use crate::recurrent::CellRanges;
use crate::samples::Samples;

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
}

impl Observer {
    fn new() -> Observer {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            kept: Vec::new(),
        }
    }

    /// `per_sample_quota` bounds how many values one sample contributes, so that
    /// every sample is represented and memory stays bounded.
    fn observe(&mut self, values: &[f32], per_sample_quota: usize) {
        for &v in values {
            if v.is_finite() {
                self.min = self.min.min(v);
                self.max = self.max.max(v);
            }
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
        if self.count == 0 || self.min > self.max {
            return (0.0, 0.0);
        }
        let (lo, hi) = match method {
            Method::MinMax => (self.min, self.max),
            Method::Percentile => self.percentile_range(percentile),
            Method::Mse => self.mse_range(),
        };
        (
            lo.min(0.0).max(self.min.min(0.0)),
            hi.max(0.0).min(self.max.max(0.0)),
        )
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
pub struct Calibration {
    /// Indexed by tensor id; `None` for constants.
    pub observers: Vec<Option<Observer>>,
    /// Indexed by node: the internal ranges of recurrent nodes, from a float
    /// simulation of the cell on the node's input (tract exposes only the
    /// node's outputs).
    pub cells: Vec<Option<CellRanges>>,
}

/// The activation tensors of the graph (inputs and node outputs), in id order.
pub fn activation_tensors(graph: &Graph) -> Vec<TensorId> {
    let mut ids: Vec<TensorId> = graph.inputs.clone();
    ids.extend(graph.nodes.iter().map(|n| n.output));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Run the float model over every sample and observe every activation tensor.
pub fn calibrate(
    graph: &Graph,
    float_ref: &FloatRef,
    samples: &Samples,
    progress: &indicatif::ProgressBar,
) -> Result<Calibration, ConvertError> {
    let ids = activation_tensors(graph);
    let names: Vec<String> = ids.iter().map(|&i| graph.tensors[i].name.clone()).collect();
    let mut observers: Vec<Option<Observer>> = vec![None; graph.tensors.len()];
    for &i in &ids {
        observers[i] = Some(Observer::new());
    }
    let mut cells: Vec<Option<CellRanges>> = graph
        .nodes
        .iter()
        .map(|n| matches!(n.op, Op::Recurrent(_)).then(CellRanges::default))
        .collect();
    let quota = SUBSAMPLE_CAP.div_ceil(samples.len().max(1));
    progress.set_length(samples.len() as u64);
    for s in 0..samples.len() {
        let values = float_ref.run(samples.sample(s), &names)?;
        for (&id, v) in ids.iter().zip(&values) {
            if let Some(obs) = observers[id].as_mut() {
                obs.observe(v, quota);
            }
        }
        for (node, cell) in graph.nodes.iter().zip(cells.iter_mut()) {
            let (Op::Recurrent(rec), Some(cell)) = (&node.op, cell.as_mut()) else {
                continue;
            };
            let x = node
                .inputs
                .first()
                .and_then(|t| ids.iter().position(|i| i == t));
            if let Some(x) = x.and_then(|k| values.get(k)) {
                rec.simulate(x, cell);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(Calibration { observers, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observer(values: &[f32]) -> Observer {
        let mut o = Observer::new();
        o.observe(values, usize::MAX);
        o
    }

    #[test]
    fn minmax_includes_zero() {
        assert_eq!(
            observer(&[1.0, 3.0]).range(Method::MinMax, 99.9),
            (0.0, 3.0)
        );
        assert_eq!(
            observer(&[-2.0, -1.0]).range(Method::MinMax, 99.9),
            (-2.0, 0.0)
        );
        assert_eq!(
            observer(&[-2.0, 5.0]).range(Method::MinMax, 99.9),
            (-2.0, 5.0)
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
    fn empty_observer_is_zero_range() {
        assert_eq!(Observer::new().range(Method::MinMax, 99.0), (0.0, 0.0));
    }
}
