//! Float (tract) against int8 (the medq runtime, on the bytes just written):
//! per-layer SQNR, output agreement and, with labels, accuracy and per-class
//! recall. The int8 figures are exactly what a device computes.

use medq::interpreter::Interpreter;
use medq::{AlignedBuf, Model};

use crate::error::ConvertError;
use crate::float_ref::FloatRef;
use crate::ir::{Graph, Op, Unary};
use crate::quantize::{QParams, QuantizedGraph};
use crate::samples::InputSamples;

/// How every SQNR medq prints or stores is defined (the report states it).
pub const SQNR_DEFINITION: &str =
    "centered: 10·log10(Σ(ref − mean(ref))² / Σ(int8 − ref)²), the mean over all values of that tensor";

/// A centered SQNR, accumulated over samples: the reference's variance
/// (about its mean over every value added) against the squared error.
///
/// Centering matters: an output with a large offset (a logit head, a
/// regression around a baseline) would otherwise count its offset as
/// signal and look tens of dB better than its variation is reproduced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sqnr {
    count: f64,
    mean: f64,
    /// Σ(ref − mean)²: each call's own sum about its own mean, merged with
    /// the running one by Chan et al.'s update (no cancellation, and no
    /// division per value: a sixth of `--precision int16`'s time on a
    /// 293 MMAC model went to those).
    signal: f64,
    noise: f64,
}

impl Sqnr {
    /// Adds pairs of reference and approximation. A reference value that
    /// is not finite (an attention mask's `−inf` added to a score) is left
    /// out: no code stands for it, and the Softmax after it reads it as 0.
    pub fn add(&mut self, reference: &[f32], approx: &[f32]) {
        let pairs = || {
            reference
                .iter()
                .zip(approx)
                .filter(|(r, _)| r.is_finite())
                .map(|(&r, &a)| (f64::from(r), f64::from(a)))
        };
        let (n, sum) = pairs().fold((0.0, 0.0), |(n, sum), (r, _)| (n + 1.0, sum + r));
        if n == 0.0 {
            return;
        }
        let mean = sum / n;
        let (signal, noise) = pairs().fold((0.0, 0.0), |(signal, noise), (r, a)| {
            (signal + (r - mean) * (r - mean), noise + (r - a) * (r - a))
        });
        let total = self.count + n;
        let delta = mean - self.mean;
        self.signal += signal + delta * delta * self.count * n / total;
        self.mean += delta * n / total;
        self.count = total;
        self.noise += noise;
    }

    /// In dB; `None` when the error is exactly zero.
    pub fn db(&self) -> Option<f64> {
        if self.noise == 0.0 {
            None
        } else {
            // The tiny floor keeps a constant reference finite (and very negative).
            Some(10.0 * ((self.signal + 1e-30) / self.noise).log10())
        }
    }
}

/// The agreement bounds medq holds a converted model to, float against
/// quantized on held-out samples: a probability output (a Softmax, or one
/// with an `--output-activation`) within [`PROBABILITY_BOUND`] on at least
/// [`WITHIN_SHARE`] of the samples and, when it has classes, the float top-1
/// on [`TOP1_CONFIDENT_SHARE`] of those whose float top-2 margin is ≥ 0.05;
/// any other output at least [`SQNR_BOUND_DB`] of (centered) SQNR.
pub const PROBABILITY_BOUND: f32 = 0.03;
/// See [`PROBABILITY_BOUND`].
pub const WITHIN_SHARE: f64 = 0.99;
/// See [`PROBABILITY_BOUND`].
pub const TOP1_CONFIDENT_SHARE: f64 = 0.98;
/// See [`PROBABILITY_BOUND`].
pub const SQNR_BOUND_DB: f64 = 25.0;

/// Agreement of one graph output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutputMetrics {
    pub name: String,
    /// Whether the output is a probability distribution (a Softmax).
    pub softmax: bool,
    /// The function the application applies to this output
    /// (`--output-activation`); the metrics are measured after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<&'static str>,
    pub sqnr_db: Option<f64>,
    pub max_abs_error: f32,
    /// The 99th percentile over samples of each sample's largest
    /// |quantized − float| (the bound on softmax outputs is 0.03).
    pub max_abs_error_p99: f32,
    /// Fraction of samples whose largest |int8 − float| is ≤ 0.03.
    pub samples_within_0_03: f64,
    /// Top-1 agreement (outputs with more than one value per sample).
    pub top1_agreement: Option<f64>,
    /// Top-1 agreement on samples whose float top-2 margin is ≥ 0.05, and how many those are.
    /// A Softmax along a middle axis (a per-time-step classifier) counts its positions:
    /// the agreement is over positions, and the count is of positions.
    pub top1_agreement_confident: Option<f64>,
    pub confident_samples: usize,
    /// Positions per sample the top-1 figures count (1 but for a Softmax
    /// along a middle axis).
    pub top1_positions: usize,
}

impl OutputMetrics {
    /// An output named `y` with these figures, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(
        softmax: bool,
        sqnr_db: f64,
        within: f64,
        confident: Option<f64>,
    ) -> OutputMetrics {
        OutputMetrics {
            name: "y".into(),
            softmax,
            applied: None,
            sqnr_db: Some(sqnr_db),
            max_abs_error: 0.1,
            max_abs_error_p99: 0.1,
            samples_within_0_03: within,
            top1_agreement: confident,
            top1_agreement_confident: confident,
            confident_samples: 10,
            top1_positions: 1,
        }
    }

    /// The output's name, with the function the application applies
    /// around it (`sigmoid(score)`).
    pub fn display_name(&self) -> String {
        match self.applied {
            Some(f) => format!("{f}({})", self.name),
            None => self.name.clone(),
        }
    }

    /// Whether the application reads this output as probabilities.
    pub fn probability(&self) -> bool {
        self.softmax || self.applied.is_some()
    }

    /// How this output misses the agreement bounds ([`PROBABILITY_BOUND`]
    /// and the rest), or `None` when it is within them.
    pub fn outside_bounds(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.probability() {
            // A share counted over whole samples: compare with a tolerance
            // for its rounding.
            if self.samples_within_0_03 < WITHIN_SHARE - 1e-9 {
                why.push(format!(
                    "{:.2}% of samples within {PROBABILITY_BOUND} (needs {}%)",
                    100.0 * self.samples_within_0_03,
                    100.0 * WITHIN_SHARE
                ));
            }
            if let Some(a) = self.top1_agreement_confident {
                if a < TOP1_CONFIDENT_SHARE - 1e-9 {
                    why.push(format!(
                        "confident top-1 agreement {:.2}% (needs {}%)",
                        100.0 * a,
                        100.0 * TOP1_CONFIDENT_SHARE
                    ));
                }
            }
        } else if let Some(db) = self.sqnr_db.filter(|&db| db < SQNR_BOUND_DB) {
            why.push(format!("SQNR {db:.1} dB (needs {SQNR_BOUND_DB} dB)"));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

/// Class labels for the evaluation samples, and the graph output (index)
/// they are the classes of.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    pub classes: &'a [usize],
    pub output: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ClassMetrics {
    /// The output whose prediction is compared with the labels.
    pub output: String,
    pub accuracy_float: f64,
    pub accuracy_int8: f64,
    pub per_class_recall_float: Vec<Option<f64>>,
    pub per_class_recall_int8: Vec<Option<f64>>,
    /// The mean recall over the classes with samples: accuracy as if every
    /// class were equally common, which an imbalanced test set's accuracy
    /// hides (ECG5000's rare classes are where int8 and pruning hurt first).
    pub balanced_accuracy_float: f64,
    pub balanced_accuracy_int8: f64,
    pub class_counts: Vec<usize>,
}

/// The mean of the recalls of the classes that have samples.
pub fn balanced_accuracy(recall: &[Option<f64>]) -> f64 {
    let present: Vec<f64> = recall.iter().flatten().copied().collect();
    present.iter().sum::<f64>() / present.len().max(1) as f64
}

/// A tensor whose float values on the evaluated samples went past the
/// range its encoding represents (by more than half a step), so that the
/// quantized model clipped them: a held-out input beyond the calibrated
/// ranges, where int8 loses most and which calibration samples cannot show.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Clipped {
    pub tensor: String,
    /// Values past the range, and in how many samples.
    pub values: usize,
    pub samples: usize,
    /// The range the encoding represents.
    pub range: (f32, f32),
    /// The float value farthest past it.
    pub farthest: f32,
}

impl Clipped {
    /// How far [`Self::farthest`] lies past the range, in range widths.
    pub fn excess(&self) -> f32 {
        let (lo, hi) = self.range;
        let past = (self.farthest - hi).max(lo - self.farthest);
        past / (hi - lo).max(f32::MIN_POSITIVE)
    }

    /// One sample's `values` of `tensor` past `range` by more than
    /// `half_step`, or `None` when none are.
    fn of_sample(
        tensor: &str,
        range: (f32, f32),
        half_step: f32,
        values: &[f32],
    ) -> Option<Clipped> {
        let past = |v: f32| (v - range.1).max(range.0 - v);
        let outside = || values.iter().copied().filter(|&v| past(v) > half_step);
        let farthest = outside().max_by(|&a, &b| past(a).total_cmp(&past(b)))?;
        Some(Clipped {
            tensor: tensor.to_string(),
            values: outside().count(),
            samples: 1,
            range,
            farthest,
        })
    }

    /// `other`'s counts added to this one's (the same tensor), and the
    /// farther of the two values kept with its range.
    fn absorb(&mut self, other: &Clipped) {
        self.values += other.values;
        self.samples += other.samples;
        if other.excess() > self.excess() {
            self.farthest = other.farthest;
            self.range = other.range;
        }
    }
}

/// `clipped` with `more` absorbed by tensor, the farthest past its range
/// first.
fn merge_clipped(mut clipped: Vec<Clipped>, more: &[Clipped]) -> Vec<Clipped> {
    for c in more {
        match clipped.iter_mut().find(|e| e.tensor == c.tensor) {
            Some(e) => e.absorb(c),
            None => clipped.push(c.clone()),
        }
    }
    clipped.sort_by(|a, b| b.excess().total_cmp(&a.excess()));
    clipped
}

#[derive(Clone, Debug)]
pub struct Evaluation {
    pub samples: usize,
    /// SQNR of each op's output against the float model, per op.
    pub layer_sqnr_db: Vec<Option<f64>>,
    pub outputs: Vec<OutputMetrics>,
    pub classes: Option<ClassMetrics>,
    /// Sample 0's quantized inputs (every input's bytes, in order) and int8
    /// output 0 (for the golden section).
    pub first_io: Option<(Vec<i8>, Vec<i8>)>,
    /// The graph inputs and layer outputs whose values went past their
    /// encodings' ranges, the farthest first (tensors whose ranges are
    /// chosen for a Softmax or sigmoid after them, and a QDQ model's own
    /// encodings, are not counted: they clip on purpose).
    pub clipped: Vec<Clipped>,
}

/// The lower of two figures; a missing one (the SQNR of an output without
/// error, top-1 agreement without confident samples) does not count.
fn lower(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Evaluation {
    /// Two evaluations of one graph's outputs on different samples (the
    /// halves of a two-fold split) as one, each figure the worse of the
    /// two: the lower SQNR, share within the bound and top-1 agreement,
    /// the larger errors. Class metrics are dropped: labels are not split.
    pub fn worse_of(self, other: &Evaluation) -> Evaluation {
        let layer_sqnr_db = self
            .layer_sqnr_db
            .iter()
            .zip(&other.layer_sqnr_db)
            .map(|(&a, &b)| lower(a, b))
            .collect();
        let outputs = self
            .outputs
            .into_iter()
            .zip(&other.outputs)
            .map(|(a, b)| OutputMetrics {
                sqnr_db: lower(a.sqnr_db, b.sqnr_db),
                max_abs_error: a.max_abs_error.max(b.max_abs_error),
                max_abs_error_p99: a.max_abs_error_p99.max(b.max_abs_error_p99),
                samples_within_0_03: a.samples_within_0_03.min(b.samples_within_0_03),
                top1_agreement: lower(a.top1_agreement, b.top1_agreement),
                top1_agreement_confident: lower(
                    a.top1_agreement_confident,
                    b.top1_agreement_confident,
                ),
                confident_samples: a.confident_samples + b.confident_samples,
                ..a
            })
            .collect();
        Evaluation {
            samples: self.samples + other.samples,
            layer_sqnr_db,
            outputs,
            classes: None,
            first_io: self.first_io,
            clipped: merge_clipped(self.clipped, &other.clipped),
        }
    }
}

pub fn evaluate(
    graph: &Graph,
    qg: &QuantizedGraph,
    model_bytes: &[u8],
    float_ref: &FloatRef,
    samples: &(impl InputSamples + Sync),
    labels: Option<Labels>,
    progress: &indicatif::ProgressBar,
) -> Result<Evaluation, ConvertError> {
    let mut all = evaluate_all(
        &[(graph, qg, model_bytes)],
        float_ref,
        samples,
        labels,
        progress,
    )?;
    all.pop()
        .ok_or_else(|| ConvertError::InvalidModel("nothing was evaluated".into()))
}

/// [`evaluate`] several `.mq` models of graphs with the same tensor names
/// (quantizations of one graph, or a graph and its pruned copy), with one
/// float run per sample shared by all.
pub fn evaluate_all(
    models: &[(&Graph, &QuantizedGraph, &[u8])],
    float_ref: &FloatRef,
    samples: &(impl InputSamples + Sync),
    labels: Option<Labels>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Evaluation>, ConvertError> {
    evaluate_models(models, float_ref, samples, labels, progress, false)
}

/// [`evaluate_all`] for what a search compares its candidates by: the
/// outputs' agreement alone. The per-layer SQNRs are left `None` and no
/// clipping is recorded, which saves dequantizing every layer of every
/// sample of every candidate.
pub fn evaluate_outputs(
    models: &[(&Graph, &QuantizedGraph, &[u8])],
    float_ref: &FloatRef,
    samples: &(impl InputSamples + Sync),
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Evaluation>, ConvertError> {
    evaluate_models(models, float_ref, samples, None, progress, true)
}

fn evaluate_models(
    models: &[(&Graph, &QuantizedGraph, &[u8])],
    float_ref: &FloatRef,
    samples: &(impl InputSamples + Sync),
    labels: Option<Labels>,
    progress: &indicatif::ProgressBar,
    outputs_only: bool,
) -> Result<Vec<Evaluation>, ConvertError> {
    // The runtime reads constants in place, from an aligned buffer.
    let storage: Vec<AlignedBuf> = models
        .iter()
        .map(|(_, _, b)| AlignedBuf::from_slice(b))
        .collect();
    let parsed = storage
        .iter()
        .map(|s| Model::parse(s.as_slice()).map_err(ConvertError::Format))
        .collect::<Result<Vec<_>, _>>()?;
    let mut evaluators = models
        .iter()
        .zip(&parsed)
        .map(|((graph, qg, _), model)| {
            let label_output = labels.map_or(0, |l| l.output);
            Evaluator::new(graph, qg, model, label_output, outputs_only)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names = evaluators
        .first()
        .map(|e| e.names.clone())
        .unwrap_or_default();
    if evaluators.iter().any(|e| e.names != names) {
        return Err(ConvertError::InvalidModel(
            "models evaluated together must name the same tensors".into(),
        ));
    }
    progress.set_length(samples.count() as u64);
    let float = |s: usize| match models.first() {
        Some((graph, _, _)) => {
            let ids: Vec<_> = graph.nodes.iter().map(|n| n.output).collect();
            crate::float_eval::reference_values(graph, float_ref, &samples.inputs(s), &ids)
        }
        None => Ok(Vec::new()),
    };
    let label = |s: usize| labels.and_then(|l| l.classes.get(s)).copied();
    run_evaluators(&mut evaluators, samples, float, label, progress)?;
    progress.finish_and_clear();
    Ok(evaluators.into_iter().map(Evaluator::finish).collect())
}

/// Where a run of evaluators failed first, as the one-thread order would
/// meet it: the sample, then the float run (`None`) before each evaluator.
type FailedAt = (usize, Option<usize>);

/// Feeds every sample to every evaluator, each sample's float values
/// computed once. A search measures tens of candidate files on the same
/// samples, so the evaluators are shared among the machine's cores: each
/// thread runs its own, in order, on every sample, while this thread runs
/// the float reference one sample ahead (with one evaluator, that overlap
/// is the gain). Each evaluator sees the samples in order, so the figures
/// do not depend on the thread count, and of several failures the one
/// returned is the one a single thread would have met first.
fn run_evaluators<S: InputSamples + Sync>(
    evaluators: &mut [Evaluator<'_>],
    samples: &S,
    float: impl Fn(usize) -> Result<Vec<Vec<f32>>, ConvertError>,
    label: impl Fn(usize) -> Option<usize> + Sync,
    progress: &indicatif::ProgressBar,
) -> Result<(), ConvertError> {
    if evaluators.is_empty() {
        return Ok(());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(evaluators.len());
    let per_thread = evaluators.len().div_ceil(threads);
    let label = &label;
    let failures = std::thread::scope(|scope| {
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for (k, chunk) in evaluators.chunks_mut(per_thread).enumerate() {
            // One sample queued ahead per thread: the float run of the next
            // overlaps the evaluators of this one.
            let (send, receive) =
                std::sync::mpsc::sync_channel::<(usize, std::sync::Arc<Vec<Vec<f32>>>)>(1);
            senders.push(send);
            workers.push(
                // The first failure, if any.
                scope.spawn(move || -> Option<(FailedAt, ConvertError)> {
                    for (s, float) in receive {
                        for (i, e) in chunk.iter_mut().enumerate() {
                            if let Err(err) = e.add(&samples.inputs(s), &float, label(s)) {
                                return Some(((s, Some(k * per_thread + i)), err));
                            }
                        }
                    }
                    None
                }),
            );
        }
        let mut failures: Vec<(FailedAt, ConvertError)> = Vec::new();
        'samples: for s in 0..samples.count() {
            let float = match float(s) {
                Ok(f) => std::sync::Arc::new(f),
                Err(err) => {
                    failures.push(((s, None), err));
                    break;
                }
            };
            for send in &senders {
                // A worker that stopped has failed; its error is joined below.
                if send.send((s, float.clone())).is_err() {
                    break 'samples;
                }
            }
            progress.inc(1);
        }
        drop(senders);
        for worker in workers {
            match worker.join() {
                Ok(None) => {}
                Ok(Some(failure)) => failures.push(failure),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        failures
    });
    match failures.into_iter().min_by_key(|(at, _)| *at) {
        Some((_, err)) => Err(err),
        None => Ok(()),
    }
}

/// Float against int8 for one `.mq` model, one sample at a time: the float
/// values come from the caller, so several quantizations of one graph can be
/// measured against a single float run per sample.
pub struct Evaluator<'m> {
    graph: &'m Graph,
    qg: &'m QuantizedGraph,
    model: &'m Model<'m>,
    arena: Vec<u8>,
    plan: Vec<medq::PreparedOp<'m>>,
    /// Per graph input.
    input_q: Vec<QParams>,
    /// The float values [`Self::add`] expects: every node output, in node order.
    pub names: Vec<String>,
    /// Index of the node producing each graph output.
    output_nodes: Vec<usize>,
    /// The graph output labels are compared with.
    label_output: usize,
    layer: Vec<Sqnr>,
    out_sqnr: Vec<Sqnr>,
    max_err: Vec<f32>,
    /// Per output, each sample's largest |quantized − float|.
    sample_err: Vec<Vec<f32>>,
    within: Vec<usize>,
    /// Per output: the sum over samples of the share of its positions
    /// whose top-1 agrees (one position unless a Softmax runs along a
    /// middle axis: a per-time-step or per-pixel classifier).
    agree: Vec<f64>,
    confident: Vec<usize>,
    confident_agree: Vec<usize>,
    /// `(float, int8)` class per labelled sample, and the labels.
    predictions: Vec<(usize, usize)>,
    labels: Vec<usize>,
    samples: usize,
    first_io: Option<(Vec<i8>, Vec<i8>)>,
    /// Per tensor: its values past its encoding's range so far, or `None`.
    clipped: Vec<Option<Clipped>>,
    /// Tensors not counted in [`Self::clipped`].
    clip_on_purpose: std::collections::BTreeSet<usize>,
    /// Measure the graph outputs only ([`evaluate_outputs`]).
    outputs_only: bool,
}

impl<'m> Evaluator<'m> {
    /// `label_output`: the graph output the labels given to [`Self::add`]
    /// are compared with; `outputs_only`: measure the graph outputs alone
    /// ([`evaluate_outputs`]).
    pub fn new(
        graph: &'m Graph,
        qg: &'m QuantizedGraph,
        model: &'m Model<'m>,
        label_output: usize,
        outputs_only: bool,
    ) -> Result<Evaluator<'m>, ConvertError> {
        let input_q = graph
            .inputs
            .iter()
            .map(|&t| qparams(qg, t))
            .collect::<Result<Vec<_>, _>>()?;
        let names = graph
            .nodes
            .iter()
            .map(|n| graph.tensors[n.output].name.clone())
            .collect();
        let output_nodes = graph
            .outputs
            .iter()
            .map(|&t| {
                graph
                    .nodes
                    .iter()
                    .position(|n| n.output == t)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let n_out = graph.outputs.len();
        Ok(Evaluator {
            graph,
            qg,
            model,
            arena: vec![0u8; model.arena_len()],
            plan: vec![medq::PreparedOp::EMPTY; model.op_count()],
            input_q,
            names,
            output_nodes,
            label_output,
            layer: vec![Sqnr::default(); graph.nodes.len()],
            out_sqnr: vec![Sqnr::default(); n_out],
            max_err: vec![0f32; n_out],
            sample_err: vec![Vec::new(); n_out],
            within: vec![0usize; n_out],
            agree: vec![0.0; n_out],
            confident: vec![0usize; n_out],
            confident_agree: vec![0usize; n_out],
            predictions: Vec::new(),
            labels: Vec::new(),
            samples: 0,
            first_io: None,
            clipped: vec![None; graph.tensors.len()],
            // A Softmax writes its fixed encoding, whose top is 255/256.
            clip_on_purpose: crate::calibrate::narrowed_for_a_function(graph)
                .into_iter()
                .chain(
                    graph
                        .nodes
                        .iter()
                        .filter(|n| matches!(n.op, Op::Softmax(_)))
                        .map(|n| n.output),
                )
                .chain(
                    (0..graph.tensors.len())
                        .filter(|&t| graph.qdq.activation(&graph.tensors[t].name).is_some()),
                )
                .collect(),
            outputs_only,
        })
    }

    /// Counts the values of tensor `t` past its encoding's range.
    fn observe_range(&mut self, t: usize, values: &[f32]) {
        let Some(q) = self.qg.qparams.get(t).copied().flatten() else {
            return;
        };
        if self.clip_on_purpose.contains(&t) {
            return;
        }
        let range = q.represented(self.graph.wide.contains(&t));
        let name = &self.graph.tensors[t].name;
        let Some(sample) = Clipped::of_sample(name, range, q.scale / 2.0, values) else {
            return;
        };
        match self.clipped.get_mut(t) {
            Some(Some(entry)) => entry.absorb(&sample),
            Some(slot) => *slot = Some(sample),
            None => {}
        }
    }

    /// Run the int8 model on `x` (a value for every graph input) and compare
    /// it with `float`, the float values of [`Self::names`] for the same sample.
    pub fn add(
        &mut self,
        x: &[&[f32]],
        float: &[Vec<f32>],
        label: Option<usize>,
    ) -> Result<(), ConvertError> {
        let (graph, qg) = (self.graph, self.qg);
        if x.len() != self.input_q.len() {
            return Err(ConvertError::InvalidModel(format!(
                "{} input values for a model with {} inputs",
                x.len(),
                self.input_q.len()
            )));
        }
        let mut interp = Interpreter::new(self.model, &mut self.arena, &mut self.plan)
            .map_err(ConvertError::Format)?;
        let mut quantized_input: Vec<i8> = Vec::new();
        for (i, (values, q)) in x.iter().zip(&self.input_q).enumerate() {
            // An int16 input as its little-endian bytes, as the file's
            // golden pair holds it.
            let quantized: Vec<i8> = match graph.wide.contains(&graph.inputs[i]) {
                true => values
                    .iter()
                    .flat_map(|&v| (crate::quantize::quantize_wide(*q, v) as i16).to_le_bytes())
                    .map(|b| b as i8)
                    .collect(),
                false => values.iter().map(|&v| q.quantize(v)).collect(),
            };
            let input = interp.input_mut(i).map_err(ConvertError::Format)?;
            if input.len() != quantized.len() {
                return Err(ConvertError::InvalidModel(format!(
                    "input {i} has {} values, the model's {}",
                    quantized.len(),
                    input.len()
                )));
            }
            input.copy_from_slice(&quantized);
            // The golden pair's input part: every input's bytes in order.
            quantized_input.extend(quantized);
        }
        let mut int8: Vec<Vec<f32>> = vec![Vec::new(); graph.nodes.len()];
        let mut raw_out = Vec::new();
        let first_output = self.output_nodes.first().copied();
        let outputs_only = self.outputs_only;
        let output_nodes = &self.output_nodes;
        interp
            .invoke_observed(|op, _tensor, bytes| {
                if outputs_only && !output_nodes.contains(&op) {
                    return;
                }
                if let Some(slot) = int8.get_mut(op) {
                    let out = graph.nodes[op].output;
                    if let Some(q) = qg.qparams[out] {
                        *slot = match graph.wide.contains(&out) {
                            // int16, little-endian, zero point 0.
                            true => bytes
                                .chunks_exact(2)
                                .map(|b| {
                                    f32::from(i16::from_le_bytes([b[0] as u8, b[1] as u8]))
                                        * q.scale
                                })
                                .collect(),
                            false => bytes.iter().map(|&b| q.dequantize(b)).collect(),
                        };
                    }
                }
                if Some(op) == first_output {
                    raw_out = bytes.to_vec();
                }
            })
            .map_err(ConvertError::Format)?;
        if self.samples == 0 {
            self.first_io = Some((quantized_input, raw_out));
        }
        self.samples += 1;

        if !self.outputs_only {
            self.add_layers(x, float, &int8);
        }
        self.add_outputs(float, &int8, label);
        Ok(())
    }

    /// Each layer's SQNR, and what the inputs and layers clipped.
    fn add_layers(&mut self, x: &[&[f32]], float: &[Vec<f32>], int8: &[Vec<f32>]) {
        let graph = self.graph;
        for (i, values) in x.iter().enumerate() {
            self.observe_range(graph.inputs[i], values);
        }
        for (i, (f, q)) in float.iter().zip(int8).enumerate() {
            let out = graph.nodes[i].output;
            // The float tensor still has the channels pruning removed.
            let f: std::borrow::Cow<[f32]> = match graph.pruned.get(&out) {
                Some(kept) => kept.gather(&graph.tensors[out].shape, f).into(),
                None => f.into(),
            };
            self.layer[i].add(&f, q);
            self.observe_range(out, &f);
        }
    }

    /// Each graph output's agreement, and with a label the predictions.
    fn add_outputs(&mut self, float: &[Vec<f32>], int8: &[Vec<f32>], label: Option<usize>) {
        let graph = self.graph;
        for (o, &node) in self.output_nodes.iter().enumerate() {
            let (Some(f), Some(q)) = (float.get(node), int8.get(node)) else {
                continue;
            };
            let applied = graph
                .outputs
                .get(o)
                .and_then(|t| graph.output_activations.get(t))
                .map(|a| (a.apply(f), a.apply(q)));
            let (f, q) = applied.as_ref().map_or((f, q), |(f, q)| (f, q));
            self.out_sqnr[o].add(f, q);
            let e = f
                .iter()
                .zip(q)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            self.max_err[o] = self.max_err[o].max(e);
            self.sample_err[o].push(e);
            self.within[o] += (e <= PROBABILITY_BOUND) as usize;
            if f.len() > 1 {
                let (outer, dim, inner) = classes_layout(graph, node, f.len());
                let mut agreeing = 0usize;
                for at in 0..outer * inner {
                    let (o_, i_) = (at / inner, at % inner);
                    let pick = |v: &[f32]| -> Vec<f32> {
                        (0..dim).map(|d| v[(o_ * dim + d) * inner + i_]).collect()
                    };
                    let (fa, margin) = top2(&pick(f));
                    let (qa, _) = top2(&pick(q));
                    agreeing += (fa == qa) as usize;
                    if margin >= 0.05 {
                        self.confident[o] += 1;
                        self.confident_agree[o] += (fa == qa) as usize;
                    }
                }
                self.agree[o] += agreeing as f64 / (outer * inner).max(1) as f64;
            }
        }
        if let (Some(y), Some(&node)) = (label, self.output_nodes.get(self.label_output)) {
            let threshold = decision_threshold(graph, node);
            if let (Some(f), Some(q)) = (float.get(node), int8.get(node)) {
                self.predictions
                    .push((predict(f, threshold), predict(q, threshold)));
                self.labels.push(y);
            }
        }
    }

    pub fn finish(self) -> Evaluation {
        let graph = self.graph;
        let n = self.samples.max(1) as f64;
        let outputs = graph
            .outputs
            .iter()
            .enumerate()
            .map(|(o, &t)| {
                let node = self.output_nodes[o];
                let multi = graph.tensors[t].shape.iter().product::<usize>() > 1;
                OutputMetrics {
                    name: graph.tensors[t].name.clone(),
                    softmax: graph
                        .nodes
                        .get(node)
                        .is_some_and(|n| matches!(n.op, Op::Softmax { .. })),
                    applied: graph.output_activations.get(&t).map(|a| a.name()),
                    sqnr_db: self.out_sqnr[o].db(),
                    max_abs_error: self.max_err[o],
                    max_abs_error_p99: percentile_99(&self.sample_err[o]),
                    samples_within_0_03: self.within[o] as f64 / n,
                    top1_agreement: multi.then(|| self.agree[o] / n),
                    top1_agreement_confident: (multi && self.confident[o] > 0)
                        .then(|| self.confident_agree[o] as f64 / self.confident[o] as f64),
                    confident_samples: self.confident[o],
                    top1_positions: {
                        let len = graph.tensors[t].shape.iter().product::<usize>();
                        let (outer, _, inner) = classes_layout(graph, node, len);
                        outer * inner
                    },
                }
            })
            .collect();
        let label_output = graph
            .outputs
            .get(self.label_output)
            .map_or(String::new(), |&t| graph.tensors[t].name.clone());
        let classes = (!self.labels.is_empty())
            .then(|| class_metrics(label_output, &self.labels, &self.predictions));
        Evaluation {
            samples: self.samples,
            layer_sqnr_db: self.layer.iter().map(Sqnr::db).collect(),
            outputs,
            classes,
            first_io: self.first_io,
            clipped: merge_clipped(self.clipped.into_iter().flatten().collect(), &[]),
        }
    }
}

fn qparams(qg: &QuantizedGraph, t: usize) -> Result<QParams, ConvertError> {
    qg.qparams[t].ok_or_else(|| ConvertError::Quantization {
        node: format!("tensor {t}"),
        reason: "no quantization parameters".into(),
    })
}

/// The 99th percentile of `v` (the nearest-rank value; 0 for none).
fn percentile_99(v: &[f32]) -> f32 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rank = (sorted.len() as f64 * 0.99).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0.0)
}

/// How an output of `len` values per sample splits into class scores:
/// `(outer, classes, inner)`. A Softmax along a middle axis (`[1, C, T]`
/// over `C`: a per-time-step classifier) gives one position per outer and
/// inner index; any other output is one score vector.
fn classes_layout(graph: &Graph, node: usize, len: usize) -> (usize, usize, usize) {
    let Some(n) = graph.nodes.get(node) else {
        return (1, len, 1);
    };
    let shape = &graph.tensors[n.output].shape;
    match &n.op {
        Op::Softmax(s) if s.axis < shape.len() && shape.iter().product::<usize>() == len => {
            let outer = shape[..s.axis].iter().product();
            let inner = shape[s.axis + 1..].iter().product();
            (outer, shape[s.axis], inner)
        }
        _ => (1, len, 1),
    }
}

/// Index of the largest value and its margin over the second largest.
pub fn top2(v: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::NEG_INFINITY);
    let mut second = f32::NEG_INFINITY;
    for (i, &x) in v.iter().enumerate() {
        if x > best.1 {
            second = best.1;
            best = (i, x);
        } else if x > second {
            second = x;
        }
    }
    (best.0, best.1 - second)
}

/// A single-value output is a binary classifier: a probability (after a
/// Sigmoid) is thresholded at 0.5, a logit at 0.
fn decision_threshold(graph: &Graph, node: usize) -> f32 {
    match graph.nodes.get(node).map(|n| &n.op) {
        Some(Op::Unary(Unary::Sigmoid)) | Some(Op::Unary(Unary::HardSigmoid { .. })) => 0.5,
        _ => 0.0,
    }
}

fn predict(v: &[f32], threshold: f32) -> usize {
    if v.len() == 1 {
        (v[0] >= threshold) as usize
    } else {
        top2(v).0
    }
}

fn class_metrics(output: String, labels: &[usize], predictions: &[(usize, usize)]) -> ClassMetrics {
    let classes = labels
        .iter()
        .chain(predictions.iter().flat_map(|(a, b)| [a, b]))
        .max()
        .map_or(0, |m| m + 1);
    let mut counts = vec![0usize; classes];
    let mut hit_f = vec![0usize; classes];
    let mut hit_q = vec![0usize; classes];
    for (&y, &(pf, pq)) in labels.iter().zip(predictions) {
        counts[y] += 1;
        hit_f[y] += (pf == y) as usize;
        hit_q[y] += (pq == y) as usize;
    }
    let n = predictions.len().max(1) as f64;
    let recall = |hits: &[usize]| -> Vec<Option<f64>> {
        hits.iter()
            .zip(&counts)
            .map(|(&h, &c)| (c > 0).then(|| h as f64 / c as f64))
            .collect()
    };
    let (recall_float, recall_int8) = (recall(&hit_f), recall(&hit_q));
    ClassMetrics {
        output,
        accuracy_float: hit_f.iter().sum::<usize>() as f64 / n,
        accuracy_int8: hit_q.iter().sum::<usize>() as f64 / n,
        balanced_accuracy_float: balanced_accuracy(&recall_float),
        balanced_accuracy_int8: balanced_accuracy(&recall_int8),
        per_class_recall_float: recall_float,
        per_class_recall_int8: recall_int8,
        class_counts: counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqnr_of_known_error() {
        let mut s = Sqnr::default();
        s.add(&[1.0, -1.0], &[1.1, -1.1]);
        // signal 2, noise 0.02 → 20 dB
        assert!((s.db().unwrap() - 20.0).abs() < 1e-4);
        // The same variation about an offset of 100, in two calls: the
        // offset is not signal (uncentered, this would read 60 dB).
        let mut offset = Sqnr::default();
        offset.add(&[101.0], &[101.1]);
        offset.add(&[99.0], &[98.9]);
        assert!(
            (offset.db().unwrap() - 20.0).abs() < 1e-3,
            "{:?}",
            offset.db()
        );
        let mut exact = Sqnr::default();
        exact.add(&[1.0], &[1.0]);
        assert_eq!(exact.db(), None);
    }

    #[test]
    fn sqnr_over_calls_is_the_two_pass_formula_over_all_values() {
        // Values about a large offset, in calls of uneven length (one with
        // nothing finite): the merged sums against the textbook two passes.
        let reference: Vec<f32> = (0..1000)
            .map(|i| 1000.0 + ((i * 37) % 101) as f32 * 0.25)
            .collect();
        let approx: Vec<f32> = reference
            .iter()
            .enumerate()
            .map(|(i, r)| r + ((i % 7) as f32 - 3.0) * 0.01)
            .collect();
        let mut merged = Sqnr::default();
        let mut at = 0;
        for len in [1, 0, 10, 300, 2, 687] {
            merged.add(&reference[at..at + len], &approx[at..at + len]);
            at += len;
        }
        merged.add(&[f32::NEG_INFINITY, f32::NAN], &[0.0, 0.0]);
        let n = reference.len() as f64;
        let mean = reference.iter().map(|&r| f64::from(r)).sum::<f64>() / n;
        let signal: f64 = reference
            .iter()
            .map(|&r| (f64::from(r) - mean).powi(2))
            .sum();
        let noise: f64 = reference
            .iter()
            .zip(&approx)
            .map(|(&r, &a)| (f64::from(r) - f64::from(a)).powi(2))
            .sum();
        let want = 10.0 * (signal / noise).log10();
        let got = merged.db().unwrap();
        assert!((got - want).abs() < 1e-9, "{got} against {want}");
    }

    #[test]
    fn clipping_counts_values_past_the_encoded_range_and_keeps_the_farthest() {
        // int8, scale 0.5, zero point −128: [0, 127.5]; int16: ±16383.5.
        let q = QParams {
            scale: 0.5,
            zero_point: -128,
        };
        assert_eq!(q.represented(false), (0.0, 127.5));
        let sym = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        assert_eq!(sym.represented(true), (-16384.0, 16383.5));
        let sample = |values: &[f32]| Clipped::of_sample("t", (0.0, 127.5), 0.25, values);
        // Within half a step past either end: not clipped.
        assert_eq!(sample(&[-0.2, 127.7, 3.0]), None);
        let mut c = sample(&[-1.0, 140.0, 130.0]).unwrap();
        assert_eq!(sample(&[5.0]), None);
        c.absorb(&sample(&[-20.0]).unwrap());
        assert_eq!((c.values, c.samples, c.farthest), (4, 2, -20.0));
        assert!((c.excess() - 20.0 / 127.5).abs() < 1e-6);
        // Merging adds the counts, keeps the farthest and sorts by it.
        let other = |tensor: &str, farthest: f32| Clipped {
            tensor: tensor.into(),
            values: 1,
            samples: 1,
            range: (0.0, 127.5),
            farthest,
        };
        let merged = merge_clipped(vec![c.clone()], &[other("u", 200.0), other("t", 130.0)]);
        let names: Vec<&str> = merged.iter().map(|c| c.tensor.as_str()).collect();
        assert_eq!(names, ["u", "t"]);
        assert_eq!((merged[1].values, merged[1].samples), (5, 3));
        assert_eq!(merged[1].farthest, -20.0);
    }

    #[test]
    fn the_worse_of_two_halves_takes_each_figure_at_its_worst() {
        let half = |sqnr: Option<f64>, max: f32, within: f64, top1: Option<f64>| Evaluation {
            samples: 32,
            layer_sqnr_db: vec![sqnr, None],
            outputs: vec![OutputMetrics {
                sqnr_db: sqnr,
                max_abs_error: max,
                max_abs_error_p99: max / 2.0,
                top1_agreement: top1,
                top1_agreement_confident: top1,
                ..OutputMetrics::for_test(true, 0.0, within, None)
            }],
            classes: None,
            first_io: None,
            clipped: Vec::new(),
        };
        let a = half(Some(30.0), 0.01, 1.0, Some(1.0));
        let b = half(Some(27.0), 0.04, 0.9375, None);
        let both = a.clone().worse_of(&b);
        assert_eq!(both.samples, 64);
        assert_eq!(both.layer_sqnr_db, vec![Some(27.0), None]);
        let o = &both.outputs[0];
        assert_eq!(o.sqnr_db, Some(27.0));
        assert_eq!((o.max_abs_error, o.max_abs_error_p99), (0.04, 0.02));
        assert_eq!(o.samples_within_0_03, 0.9375);
        // A half without a figure does not hide the other's.
        assert_eq!(o.top1_agreement, Some(1.0));
        assert_eq!(o.confident_samples, 20);
        // An exact half (no error at all) leaves the other's SQNR.
        let exact = half(None, 0.0, 1.0, Some(1.0));
        assert_eq!(exact.worse_of(&a).outputs[0].sqnr_db, Some(30.0));
    }

    #[test]
    fn top2_margin() {
        assert_eq!(top2(&[0.1, 0.7, 0.2]), (1, 0.5));
        assert_eq!(top2(&[0.5]).0, 0);
    }

    #[test]
    fn class_metrics_count_per_class() {
        let labels = [0, 0, 1, 2];
        let preds = [(0, 0), (1, 0), (1, 1), (2, 0)];
        let m = class_metrics("y".into(), &labels, &preds);
        assert_eq!(m.accuracy_float, 0.75);
        assert_eq!(m.accuracy_int8, 0.75);
        assert_eq!(
            m.per_class_recall_float,
            vec![Some(0.5), Some(1.0), Some(1.0)]
        );
        assert_eq!(
            m.per_class_recall_int8,
            vec![Some(1.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(m.class_counts, vec![2, 1, 1]);
        // (0.5 + 1 + 1) / 3 and (1 + 1 + 0) / 3.
        assert!((m.balanced_accuracy_float - 2.5 / 3.0).abs() < 1e-12);
        assert!((m.balanced_accuracy_int8 - 2.0 / 3.0).abs() < 1e-12);
        // A class without samples does not count.
        assert_eq!(balanced_accuracy(&[Some(1.0), None, Some(0.5)]), 0.75);
    }

    use OutputMetrics as M;

    #[test]
    fn the_bounds_judge_probabilities_by_their_error_and_the_rest_by_sqnr() {
        // A probability output: 99% within 0.03 and 98% confident top-1,
        // whatever its SQNR.
        assert_eq!(
            M::for_test(true, 10.0, 0.99, Some(0.98)).outside_bounds(),
            None
        );
        let why = M::for_test(true, 40.0, 63.0 / 64.0, Some(0.9))
            .outside_bounds()
            .unwrap();
        assert!(why.contains("98.44% of samples within 0.03"), "{why}");
        assert!(why.contains("confident top-1 agreement 90.00%"), "{why}");
        // An --output-activation makes any output a probability.
        let mut score = M::for_test(false, 40.0, 0.5, None);
        assert_eq!(score.outside_bounds(), None);
        score.applied = Some("sigmoid");
        assert!(score
            .outside_bounds()
            .unwrap()
            .contains("50.00% of samples"));
        assert_eq!(score.display_name(), "sigmoid(y)");
        // Anything else: SQNR ≥ 25 dB, however far its values move.
        assert_eq!(M::for_test(false, 25.0, 0.0, None).outside_bounds(), None);
        let why = M::for_test(false, 24.9, 1.0, None)
            .outside_bounds()
            .unwrap();
        assert_eq!(why, "SQNR 24.9 dB (needs 25 dB)");
    }
}
