//! What the conversion cost: a table for people (stdout) and JSON for machines.

use std::fmt::Write as _;

use crate::evaluate::{ClassMetrics, OutputMetrics};

#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub name: String,
    /// The `.mq` op.
    pub op: String,
    /// The ONNX ops it came from.
    pub onnx_ops: Vec<String>,
    pub output_shape: Vec<usize>,
    pub macs: u64,
    /// Bytes of constants (weights, bias, requantization and lookup tables).
    pub weight_bytes: usize,
    /// Float vs int8 SQNR of this op's output; `null` when bit-exact.
    pub sqnr_db: Option<f64>,
    /// How the weights were rounded (Conv, FullyConnected): `gptq`,
    /// `nearest`, or `nearest: <why GPTQ could not be used>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_rounding: Option<String>,
    /// Whether the output is stored as int16 (mixed precision).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub int16_output: bool,
}

/// One graph input as converted.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InputReport {
    pub name: String,
    /// The static shape (batch 1, symbolic dims as fixed by `--input-shape`
    /// or by the samples).
    pub shape: Vec<usize>,
    /// The dims the model leaves dynamic that its samples fixed
    /// (`"time" = 128`), with no `--input-shape` for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dims_from_samples: Vec<String>,
    /// Its `--calib` file.
    pub calibration: String,
    /// Its `--eval` file, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<String>,
    /// The range declared with `--input-range`, which its encoding covers
    /// instead of the calibrated one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_range: Option<(f32, f32)>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Totals {
    pub onnx_bytes: usize,
    pub mq_bytes: usize,
    pub arena_bytes: usize,
    /// The lifetime lower bound the arena plan is measured against.
    pub arena_lower_bound: usize,
    pub macs: u64,
    pub weight_bytes: usize,
    pub parameters: usize,
}

/// [`EvaluationReport::data`] when there are no `--eval` samples.
pub const CALIBRATION_DATA: &str = "calibration data";

#[derive(Clone, Debug, serde::Serialize)]
pub struct EvaluationReport {
    /// [`CALIBRATION_DATA`] or the paths given to `--eval`.
    pub data: String,
    pub samples: usize,
    /// How the SQNRs here and in the layer table are defined.
    pub sqnr: &'static str,
    pub outputs: Vec<OutputMetrics>,
    /// Each output outside the agreement bounds
    /// ([`PROBABILITY_BOUND`](crate::evaluate::PROBABILITY_BOUND) and the
    /// rest), with how it misses them: empty when the model is within.
    pub outside_bounds: Vec<String>,
    pub classes: Option<ClassMetrics>,
    /// Occlusion maps of int8 against float (`--attribution`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::attribution::AttributionReport>,
    /// Why `--attribution` made no maps for this model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution_skipped: Option<String>,
    /// Graph inputs and layer outputs whose values on these samples went
    /// past the ranges of their encodings, the farthest first.
    pub clipped: Vec<crate::evaluate::Clipped>,
}

/// One setting `--select` tried.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Candidate {
    #[serde(skip)]
    pub setting: crate::convert::Setting,
    /// e.g. `mse + gptq`.
    pub name: String,
    /// The selection criterion on the held-out samples (higher is better).
    pub score_db: f64,
    /// Float-vs-int8 top-1 agreement of the first output with more than one
    /// value (a classifier's), if any.
    pub top1_agreement: Option<f64>,
}

/// How `--select` chose the calibration method and weight rounding.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SelectionReport {
    /// The held-out samples' file.
    pub data: String,
    pub samples: usize,
    pub sha256: String,
    pub criterion: String,
    pub candidates: Vec<Candidate>,
    /// Index into `candidates`.
    pub chosen: usize,
    /// Whether equalizing every pair was weighed against the default
    /// (`--equalize erased`), and what each scored.
    pub equalization: Option<EqualizationChoice>,
}

/// `--select` weighing `--equalize all` against the default: each variant's
/// best score (the worst output's SQNR on the held-out samples, dB).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EqualizationChoice {
    pub every_pair_db: f64,
    pub default_db: f64,
    /// Every pair was equalized (it won by `EQUALIZE_ALL_MARGIN_DB`).
    pub every_pair: bool,
}

/// The same conversion with one compression step left out (pruning, or the
/// power-of-two grid): what that step cost and saved.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Baseline {
    pub totals: Totals,
    /// Float vs that int8 model, on the same samples.
    pub evaluation: EvaluationReport,
}

/// What `--prune-weights` set to zero.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WeightPruningReport {
    /// What was asked for, e.g. `50% of the weights, smallest magnitude per layer`.
    pub target: String,
    /// Zero weights over all pruned layers, as a share of their weights.
    pub sparsity: f64,
    pub layers: Vec<crate::prune_weights::SparseLayer>,
}

/// What pruning removed: filters (`--prune-filters` / `--max-size`),
/// weights (`--prune-weights`), or both, and the same conversion without.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PruningReport {
    /// The filter target, e.g. `a file of at most 15334 bytes`; empty when
    /// no filters were asked to go.
    pub target: String,
    /// Filters and neurons removed, of those that could be.
    pub removed: usize,
    pub prunable: usize,
    pub layers: Vec<crate::prune::PrunedLayer>,
    /// Conv and FullyConnected nodes left whole, and why.
    pub skipped: Vec<crate::prune::Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightPruningReport>,
    pub unpruned: Baseline,
}

/// One layer run with an int16 output, and what raising it alone does.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RaisedLayer {
    /// The Conv or FullyConnected node.
    pub node: String,
    /// The tensors stored as int16: its output and what pools and reshapes
    /// carry it into.
    pub tensors: Vec<String>,
    /// Its weights are int16 too (16x16). Such a step is measured on top of
    /// the int16 outputs chosen before it, not against the all-int8 file.
    pub int16_weights: bool,
    /// Raised alone: the change of the worst output's SQNR (dB) over the
    /// all-int8 file, on the choice data.
    pub gain_db: Option<f64>,
    /// Raised alone: bytes added to the file (dense weights, a wider
    /// softmax table, int16 weights) and to the arena.
    pub file_bytes: i64,
    pub arena_bytes: i64,
}

/// Mixed precision: which layers run with int16 outputs, why, and at what
/// cost (`--precision auto` or `--int16`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrecisionReport {
    /// [`Self::AUTO`], [`Self::EVERY_LAYER`] or [`Self::NAMED`].
    pub mode: String,
    /// What auto precision aimed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the target was met on the choice data (auto only); when not,
    /// the file holds the best mix found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// The samples the choice was measured on.
    pub data: String,
    pub samples: usize,
    /// The worst output's SQNR (dB) on those samples, all int8 and as chosen.
    pub int8_sqnr_db: Option<f64>,
    pub sqnr_db: Option<f64>,
    /// Layers that could run in int16, and those chosen, in the order added.
    pub raisable: usize,
    pub raised: Vec<RaisedLayer>,
    /// The all-int8 file, measured on the evaluation samples like the
    /// result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8: Option<Baseline>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub model: String,
    /// Graph inputs in order, with their data files.
    pub inputs: Vec<InputReport>,
    /// Whether the file holds a golden self-test pair, or why not.
    pub golden: String,
    pub output_file: String,
    pub converter_version: String,
    pub source_sha256: String,
    pub calibration_sha256: String,
    pub calibration_method: String,
    pub calibration_samples: usize,
    /// How Conv/FullyConnected weights were rounded (`nearest`, `gptq`).
    pub weight_rounding: String,
    /// Their grid: `int8` or `pow2` (`--weights`).
    pub weight_grid: String,
    /// Present for a pre-quantized (QDQ) model: the encodings it fixes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_encodings: Option<FixedEncodings>,
    /// Present when `--select` chose the two settings above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionReport>,
    /// Present when filters were pruned; `evaluation` and `totals` are then
    /// the pruned model's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningReport>,
    /// Present with `--weights pow2`: the same conversion (same pruning)
    /// with int8 weights, measured on the same samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_weights: Option<Baseline>,
    /// Present with `--precision auto` or `--int16`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionReport>,
    pub rewrites: Vec<String>,
    pub layers: Vec<LayerReport>,
    pub totals: Totals,
    pub evaluation: EvaluationReport,
}

/// What a pre-quantized (QDQ) model fixes, kept instead of calibrated:
/// activation encodings and the weights' grids, and how many of each are
/// 16-bit (medq's int16).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FixedEncodings {
    pub activations: usize,
    pub int16_activations: usize,
    /// Layers whose weights' grid the model fixes.
    pub weights: usize,
    pub int16_weights: usize,
}

impl FixedEncodings {
    /// The counts of a QDQ model's fixed encodings; `None` for a float model.
    pub fn of(fixed: &crate::load::qdq::FixedQuant) -> Option<FixedEncodings> {
        (!fixed.is_empty()).then_some(FixedEncodings {
            activations: fixed.activations.len(),
            int16_activations: fixed.wide.len(),
            weights: fixed.weight_scales.len(),
            int16_weights: fixed.wide_weights.len(),
        })
    }
}

impl PrecisionReport {
    /// [`mode`](Self::mode) of `--precision auto`.
    pub const AUTO: &'static str = "auto";
    /// [`mode`](Self::mode) of `--precision int16`: every layer that can be.
    pub const EVERY_LAYER: &'static str = "int16";
    /// [`mode`](Self::mode) of `--int16 LAYER`: the layers the user named.
    pub const NAMED: &'static str = "--int16";
}

/// The verdict against the agreement bounds, with what to try when the
/// model is outside them: `precision` is the `--precision` report, if any,
/// `selected` whether `--select` samples were given, and `undeclared` the
/// graph inputs without an `--input-range`.
fn render_bounds(
    s: &mut String,
    e: &EvaluationReport,
    (precision, selected): (Option<&PrecisionReport>, bool),
    undeclared: &[&str],
) {
    use crate::evaluate::{PROBABILITY_BOUND, SQNR_BOUND_DB, TOP1_CONFIDENT_SHARE, WITHIN_SHARE};
    let bounds = format!(
        "probabilities |Δp| ≤ {PROBABILITY_BOUND} on {}% of samples and confident top-1 on {}%, \
         other outputs SQNR ≥ {SQNR_BOUND_DB} dB",
        100.0 * WITHIN_SHARE,
        100.0 * TOP1_CONFIDENT_SHARE
    );
    // The bounds are for held-out samples; the calibration samples are
    // inside the calibrated ranges by construction.
    let bounds = match e.data.as_str() {
        CALIBRATION_DATA => format!(
            "{bounds}; on the calibration samples, which flatter int8: --eval held-out ones"
        ),
        _ => bounds,
    };
    if e.outside_bounds.is_empty() {
        let _ = writeln!(s, "  within the agreement bounds ({bounds})");
        return;
    }
    let _ = writeln!(
        s,
        "  OUTSIDE the agreement bounds ({bounds}): {}",
        e.outside_bounds.join("; ")
    );
    render_clipped(s, &e.clipped);
    let on_calibration = e.data == CALIBRATION_DATA;
    let hint = match (precision.map(|p| (p.mode.as_str(), p.met)), on_calibration) {
        // Not met where it chose: more samples would not change that.
        (Some((PrecisionReport::AUTO, Some(false))), _) => {
            "auto's best mix misses its target on the samples it chose on too (NOT met \
             above): this model needs more than the int16 activations and weights it \
             tried; check how close its float outputs are to each other (near-ties)"
        }
        (Some((PrecisionReport::AUTO, _)), _) if selected => {
            "auto chose on the --select samples, too few to show the tail of these: \
             use more, or --precision int16"
        }
        (Some((PrecisionReport::AUTO, _)), true) => {
            "auto met its target on each half of the calibration samples (two-fold) but not \
             on all of them in one file: give it held-out --select samples, or use \
             --precision int16"
        }
        (Some((PrecisionReport::AUTO, _)), false) => {
            "auto chose on the calibration samples, and these held-out ones reach \
             further: give it held-out --select samples like them, or use --precision int16"
        }
        (Some((PrecisionReport::EVERY_LAYER, _)), _) => {
            "int16 activations are not enough here: --precision auto also gives \
             layers int16 weights where int8 weights are the limit"
        }
        _ => {
            "--precision auto raises to int16 the layers int8 loses most on (--precision int16 \
             raises every one); see the README, \"When int8 is not close enough\""
        }
    };
    let _ = writeln!(s, "  try: {hint}");
    // A clipped input is lost to every layer, at any precision; the range
    // a sensor can send is often known where the samples' is not.
    for c in e
        .clipped
        .iter()
        .filter(|c| undeclared.contains(&c.tensor.as_str()))
    {
        let _ = writeln!(
            s,
            "  try: input {0} is clipped (up to {1:.4} against [{2:.4}, {3:.4}]): if the range it \
             can take is known (an ADC's full scale, a normalisation's bounds), declare it with \
             --input-range {0}=LO,HI",
            c.tensor, c.farthest, c.range.0, c.range.1
        );
    }
}

/// Where a model outside the bounds clipped: the tensors whose values went
/// farthest past their ranges (at most [`CLIPPED_SHOWN`]; the JSON report
/// has them all).
fn render_clipped(s: &mut String, clipped: &[crate::evaluate::Clipped]) {
    if clipped.is_empty() {
        return;
    }
    let shown: Vec<String> = clipped
        .iter()
        .take(CLIPPED_SHOWN)
        .map(|c| {
            format!(
                "{} ({} in {}, up to {:.4} against [{:.4}, {:.4}])",
                c.tensor,
                counted(c.values, "value"),
                counted(c.samples, "sample"),
                c.farthest,
                c.range.0,
                c.range.1
            )
        })
        .collect();
    let more = match clipped.len().saturating_sub(CLIPPED_SHOWN) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    let _ = writeln!(
        s,
        "  clipped: values past the range of their encoding: {}{more}",
        shown.join("; ")
    );
}

/// `n thing` or `n things`.
fn counted(n: usize, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

/// Tensors [`render_clipped`] names.
const CLIPPED_SHOWN: usize = 3;

fn db(v: Option<f64>) -> String {
    match v {
        None => "exact".into(),
        Some(d) => format!("{d:.1}"),
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn shape(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

impl Report {
    /// The human-readable report printed to stdout.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "medq converter {} — {} → {}",
            self.converter_version, self.model, self.output_file
        );
        match self.calibration_samples {
            // A QDQ model converted without --calib.
            0 => s.push_str("calibration: none (the model's own encodings)\n"),
            n => {
                let _ = writeln!(
                    s,
                    "calibration: {} on {n} samples (sha256 {}…)",
                    self.calibration_method,
                    &self.calibration_sha256[..self.calibration_sha256.len().min(12)]
                );
            }
        }
        for (k, i) in self.inputs.iter().enumerate() {
            let _ = writeln!(
                s,
                "input {k} {} {}{}: {}{}{}",
                i.name,
                shape(&i.shape),
                match i.dims_from_samples.is_empty() {
                    true => String::new(),
                    false => format!(" ({}, from its samples)", i.dims_from_samples.join(", ")),
                },
                match i.calibration.is_empty() {
                    true => "no calibration".to_string(),
                    false => format!("calibration {}", i.calibration),
                },
                i.eval
                    .as_ref()
                    .map_or(String::new(), |e| format!(", evaluation {e}")),
                i.declared_range.map_or(String::new(), |(lo, hi)| format!(
                    ", encoding the declared range [{lo}, {hi}]"
                ))
            );
        }
        let _ = writeln!(
            s,
            "weights: {} grid, rounding {}",
            self.weight_grid, self.weight_rounding
        );
        if let Some(f) = &self.fixed_encodings {
            let _ = writeln!(
                s,
                "encodings fixed by the model (QDQ): {} activations ({} int16), the weights of {} \
                 layers ({} int16)",
                f.activations, f.int16_activations, f.weights, f.int16_weights
            );
        }
        if let Some(sel) = &self.selection {
            let _ = writeln!(
                s,
                "chosen on {} ({} held-out samples) by {}:",
                sel.data, sel.samples, sel.criterion
            );
            let name_w = sel
                .candidates
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(0);
            for (i, c) in sel.candidates.iter().enumerate() {
                let agree = c
                    .top1_agreement
                    .map_or(String::new(), |a| format!(", top-1 agreement {}", pct(a)));
                let mark = if i == sel.chosen { "  <- chosen" } else { "" };
                let _ = writeln!(
                    s,
                    "  {:<name_w$} {:>6} dB{agree}{mark}",
                    c.name,
                    db(Some(c.score_db))
                );
            }
        }
        for l in &self.layers {
            if let Some(why) = l
                .weight_rounding
                .as_deref()
                .and_then(|r| r.strip_prefix("nearest: "))
            {
                let _ = writeln!(s, "  {} rounded to nearest: {why}", l.name);
            }
        }
        if !self.rewrites.is_empty() {
            let _ = writeln!(s, "\nrewrites:");
            for r in &self.rewrites {
                let _ = writeln!(s, "  {r}");
            }
        }
        let name_w = self
            .layers
            .iter()
            .map(|l| l.name.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 40);
        let _ = writeln!(
            s,
            "\n{:>3}  {:<name_w$}  {:<14}  {:<16}  {:>10}  {:>8}  {:>9}",
            "#", "node", "op", "output", "MACs", "weights", "SQNR dB"
        );
        for l in &self.layers {
            let mut name = l.name.clone();
            if name.len() > name_w {
                name = format!("…{}", &name[name.len() - (name_w - 1)..]);
            }
            let _ = writeln!(
                s,
                "{:>3}  {:<name_w$}  {:<14}  {:<16}  {:>10}  {:>8}  {:>9}",
                l.index,
                name,
                l.op,
                shape(&l.output_shape),
                l.macs,
                l.weight_bytes,
                db(l.sqnr_db)
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "\ntotals: ONNX {} B → .mq {} B ({:.1}%), arena {} B (lifetime bound {} B), {} MACs, {} parameters",
            t.onnx_bytes,
            t.mq_bytes,
            100.0 * t.mq_bytes as f64 / t.onnx_bytes.max(1) as f64,
            t.arena_bytes,
            t.arena_lower_bound,
            t.macs,
            t.parameters
        );
        let _ = writeln!(s, "golden pair: {}", self.golden);
        if let Some(p) = &self.pruning {
            render_pruning(&mut s, p, t);
        }
        if let Some(p) = &self.precision {
            render_precision(&mut s, p, t);
        }
        if let Some(b) = &self.int8_weights {
            let _ = writeln!(
                s,
                "with int8 weights: .mq {} B, weights {} B; with {} weights: .mq {} B, weights {} B",
                b.totals.mq_bytes,
                b.totals.weight_bytes,
                self.weight_grid,
                t.mq_bytes,
                t.weight_bytes
            );
        }
        let e = &self.evaluation;
        let _ = writeln!(s, "\nfloat vs int8 on {} ({} samples):", e.data, e.samples);
        let _ = writeln!(s, "  (SQNR is {})", e.sqnr);
        let unpruned = self.pruning.as_ref().map(|p| &p.unpruned.evaluation);
        // What each left-out step gives, beside the result: its label and
        // its per-class recall column's head.
        let baselines: Vec<(&str, &str, &EvaluationReport)> = unpruned
            .map(|u| ("without pruning", "int8 not pruned", u))
            .into_iter()
            .chain(
                self.int8_weights
                    .as_ref()
                    .map(|b| ("with int8 weights", "int8 weights", &b.evaluation)),
            )
            .chain(
                self.precision
                    .as_ref()
                    .and_then(|p| p.int8.as_ref())
                    .map(|b| ("all int8", "all int8", &b.evaluation)),
            )
            .collect();
        for (k, o) in e.outputs.iter().enumerate() {
            let name = o.display_name();
            let _ = write!(
                s,
                "  output {:<12} SQNR {} dB, max |Δ| {:.4}, samples with max |Δ| ≤ {}: {}",
                name,
                db(o.sqnr_db),
                o.max_abs_error,
                crate::evaluate::PROBABILITY_BOUND,
                pct(o.samples_within_0_03)
            );
            if let Some(a) = o.top1_agreement {
                let _ = write!(s, ", top-1 agreement {}", pct(a));
            }
            if let Some(a) = o.top1_agreement_confident {
                let what = if o.top1_positions > 1 {
                    format!("positions, of {} per sample", o.top1_positions)
                } else {
                    "samples".into()
                };
                let _ = write!(
                    s,
                    " ({} where the float margin ≥ 0.05, {} {what})",
                    pct(a),
                    o.confident_samples
                );
            }
            let _ = writeln!(s);
            for (label, _, b) in &baselines {
                let Some(u) = b.outputs.get(k) else { continue };
                let _ = write!(s, "         {label}: SQNR {} dB", db(u.sqnr_db));
                if let Some(a) = u.top1_agreement {
                    let _ = write!(s, ", top-1 agreement {}", pct(a));
                }
                let _ = writeln!(s);
            }
        }
        let undeclared: Vec<&str> = self
            .inputs
            .iter()
            .filter(|i| i.declared_range.is_none())
            .map(|i| i.name.as_str())
            .collect();
        render_bounds(
            &mut s,
            e,
            (self.precision.as_ref(), self.selection.is_some()),
            &undeclared,
        );
        render_attribution(&mut s, e, unpruned);
        if let Some(c) = &e.classes {
            let before: Vec<(&str, &str, &ClassMetrics)> = baselines
                .iter()
                .filter_map(|(label, head, b)| Some((*label, *head, b.classes.as_ref()?)))
                .collect();
            let _ = write!(
                s,
                "  accuracy: float {}, int8 {} (balanced: float {}, int8 {})",
                pct(c.accuracy_float),
                pct(c.accuracy_int8),
                pct(c.balanced_accuracy_float),
                pct(c.balanced_accuracy_int8)
            );
            if e.outputs.len() > 1 {
                let _ = write!(s, " (labels for output {})", c.output);
            }
            for (label, _, b) in &before {
                let _ = write!(s, " ({label} {})", pct(b.accuracy_int8));
            }
            let _ = writeln!(s);
            let _ = write!(
                s,
                "  {:>5}  {:>7}  {:>12}  {:>12}",
                "class", "count", "recall float", "recall int8"
            );
            for (_, head, _) in &before {
                let _ = write!(s, "  {head:>16}");
            }
            let _ = writeln!(s);
            for (k, count) in c.class_counts.iter().enumerate() {
                let r = |v: &[Option<f64>]| v.get(k).copied().flatten().map_or("-".into(), pct);
                let _ = write!(
                    s,
                    "  {:>5}  {:>7}  {:>12}  {:>12}",
                    k,
                    count,
                    r(&c.per_class_recall_float),
                    r(&c.per_class_recall_int8)
                );
                for (_, _, b) in &before {
                    let _ = write!(s, "  {:>16}", r(&b.per_class_recall_int8));
                }
                let _ = writeln!(s);
            }
        }
        s
    }
}

/// The pruning section: per producer → consumer pair, the filters kept and
/// how closely the rebuilt consumer reproduces its float output.
fn render_precision(s: &mut String, p: &PrecisionReport, t: &Totals) {
    let _ = writeln!(s, "\nmixed precision ({}):", p.mode);
    if let Some(target) = &p.target {
        let verdict = match p.met {
            Some(false) => "NOT met: the file holds the best mix found",
            _ => "met",
        };
        let _ = writeln!(s, "  target: {target} — {verdict}");
    }
    let _ = writeln!(
        s,
        "  on {} ({} samples): worst output SQNR {} dB all int8 → {} dB; {} of {} layers raised to int16 outputs{}",
        p.data,
        p.samples,
        db(p.int8_sqnr_db),
        db(p.sqnr_db),
        p.raised.iter().filter(|r| !r.int16_weights).count(),
        p.raisable,
        match p.raised.iter().filter(|r| r.int16_weights).count() {
            0 => String::new(),
            n => format!(", {n} with int16 weights"),
        }
    );
    for r in &p.raised {
        let gain = r.gain_db.map_or("exact".into(), |g| format!("{g:+.1} dB"));
        let (what, over) = match r.int16_weights {
            true => ("int16 weights".to_string(), "over the int16 outputs"),
            false => {
                let n = r.tensors.len();
                let plural = if n == 1 { "" } else { "s" };
                (format!("{n} tensor{plural}"), "alone")
            }
        };
        let _ = writeln!(
            s,
            "  {} ({what}): {over} {gain}, file {:+} B, arena {:+} B",
            r.node, r.file_bytes, r.arena_bytes
        );
    }
    if let Some(b) = p.int8.as_ref().map(|b| &b.totals) {
        let _ = writeln!(
            s,
            "  all int8: .mq {} B, arena {} B; mixed: .mq {} B, arena {} B",
            b.mq_bytes, b.arena_bytes, t.mq_bytes, t.arena_bytes
        );
    }
}

fn render_pruning(s: &mut String, p: &PruningReport, t: &Totals) {
    if let Some(w) = &p.weights {
        render_weight_pruning(s, w);
    }
    if !p.target.is_empty() {
        render_filter_pruning(s, p);
    }
    let u = &p.unpruned;
    let _ = writeln!(
        s,
        "  without pruning: .mq {} B, {} MACs, {} parameters; pruned: .mq {} B, {} MACs, {} parameters",
        u.totals.mq_bytes,
        u.totals.macs,
        u.totals.parameters,
        t.mq_bytes,
        t.macs,
        t.parameters
    );
}

fn render_attribution(s: &mut String, e: &EvaluationReport, unpruned: Option<&EvaluationReport>) {
    if let Some(why) = &e.attribution_skipped {
        let _ = writeln!(s, "  attribution: not computed: {why}");
    }
    let Some(a) = &e.attribution else {
        return;
    };
    let _ = writeln!(
        s,
        "  attribution (occlusion, window {}, stride {}; {} samples): Spearman int8 vs float \
         median {:.3}, 5th percentile {:.3}",
        a.occlusion.window, a.occlusion.stride, a.samples, a.spearman_median, a.spearman_p5
    );
    if let Some(u) = unpruned.and_then(|u| u.attribution.as_ref()) {
        let _ = writeln!(
            s,
            "         without pruning: median {:.3}, 5th percentile {:.3}",
            u.spearman_median, u.spearman_p5
        );
    }
}

fn render_weight_pruning(s: &mut String, w: &WeightPruningReport) {
    let _ = writeln!(
        s,
        "\nweight pruning, {}: {} of the pruned layers' weights are zero; \
         each layer is stored the smallest way: sparse (a bitmap and its non-zero weights, \
         a byte each, or on the pow2 grid 4 bits each), 4-bit power-of-two codes (pow2 grid \
         only) or dense",
        w.target,
        pct(w.sparsity)
    );
    let width = w
        .layers
        .iter()
        .map(|l| l.node.len())
        .max()
        .unwrap_or(0)
        .clamp(4, 40);
    let _ = writeln!(
        s,
        "  {:<width$}  {:>9}  {:>11}  {:>7}  {:<32}  chosen by",
        "node", "weights", "zero before", "zero", "stored"
    );
    for l in &w.layers {
        let stored = match &l.stored {
            None => String::new(),
            Some(st) => match (st.storage, st.sparse_bytes) {
                ("dense", Some(sparse)) => format!("dense {} B (sparse: {sparse} B)", st.bytes),
                ("dense", None) => format!("dense {} B (op reads dense only)", st.bytes),
                (packed, _) => format!("{packed} {} B of {} B dense", st.bytes, st.dense_bytes),
            },
        };
        let _ = writeln!(
            s,
            "  {:<width$}  {:>9}  {:>11}  {:>7}  {:<32}  {}",
            l.node,
            l.weights,
            l.zeros_before,
            pct(l.sparsity()),
            stored,
            match l.bias_corrected {
                true => format!("{}, bias corrected", l.criterion),
                false => l.criterion.clone(),
            }
        );
    }
}

fn render_filter_pruning(s: &mut String, p: &PruningReport) {
    let _ = writeln!(
        s,
        "\npruning for {}: {} of {} prunable filters removed (each consumer refit by least \
         squares on the calibration data)",
        p.target, p.removed, p.prunable
    );
    let width = |name: fn(&crate::prune::PrunedLayer) -> &str| {
        p.layers
            .iter()
            .map(|l| name(l).len())
            .max()
            .unwrap_or(0)
            .clamp(10, 40)
    };
    let (wp, wc) = (width(|l| &l.producer), width(|l| &l.consumer));
    let _ = writeln!(
        s,
        "  {:<wp$}  {:<wc$}  {:>10}  {:>13}",
        "filters of", "read by", "kept", "refit SQNR dB"
    );
    for l in &p.layers {
        let _ = writeln!(
            s,
            "  {:<wp$}  {:<wc$}  {:>10}  {:>13}",
            l.producer,
            l.consumer,
            format!("{} of {}", l.kept, l.channels),
            match l.kept == l.channels {
                true => "-".to_string(),
                false => db(l.reconstruction_sqnr_db),
            }
        );
    }
    for k in &p.skipped {
        let _ = writeln!(s, "  left whole: {}: {}", k.node, k.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text `render_bounds` gives a model outside the bounds, after
    /// `--precision auto` with this verdict, on `data`.
    fn auto_hint(met: Option<bool>, data: &str, selected: bool) -> String {
        let e = EvaluationReport {
            data: data.into(),
            samples: 32,
            sqnr: "",
            outputs: Vec::new(),
            outside_bounds: vec!["probs: 71.88% of samples within 0.03 (needs 99%)".into()],
            classes: None,
            attribution: None,
            attribution_skipped: None,
            clipped: Vec::new(),
        };
        let p = PrecisionReport {
            mode: PrecisionReport::AUTO.into(),
            target: None,
            met,
            data: data.into(),
            samples: 32,
            int8_sqnr_db: None,
            sqnr_db: None,
            raisable: 3,
            raised: Vec::new(),
            int8: None,
        };
        let mut s = String::new();
        render_bounds(&mut s, &e, (Some(&p), selected), &[]);
        s
    }

    #[test]
    fn the_hint_after_auto_says_why_it_missed() {
        // A target auto could not meet: more or other samples do not help.
        for (data, selected) in [
            (CALIBRATION_DATA, false),
            ("test.npy", false),
            ("t.npy", true),
        ] {
            let text = auto_hint(Some(false), data, selected);
            assert!(
                text.contains("misses its target on the samples it chose on too"),
                "{text}"
            );
        }
        // Met where it chose; missed on held-out samples.
        let text = auto_hint(Some(true), "test.npy", false);
        assert!(text.contains("these held-out ones reach further"), "{text}");
        let text = auto_hint(Some(true), "test.npy", true);
        assert!(text.contains("too few to show the tail"), "{text}");
        // Met on each half, missed on the calibration samples together: no
        // held-out samples are involved.
        let text = auto_hint(Some(true), CALIBRATION_DATA, false);
        assert!(
            text.contains("on each half of the calibration samples"),
            "{text}"
        );
        assert!(!text.contains("these held-out ones"), "{text}");
    }
}
