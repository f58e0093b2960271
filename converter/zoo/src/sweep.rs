//! The compression sweep: every zoo model × pruning method × sparsity ×
//! [`Variant`] (weight grid and activation precision), converted and
//! measured on the model's test set, written as `SWEEP.md`, `sweep.json` and
//! an accuracy-versus-size SVG per model (`zoo-sweep`).
//!
//! Every run uses the model's zoo calibration method (the converter default
//! when the zoo gives none) with GPTQ rounding, which both pruning by `obs`
//! and the power-of-two grid build on, so that rows differ only in the
//! compression they name. Sparsity 0 is one unpruned row per variant (method
//! `none`); `structured` removes that share of the prunable filters and
//! neurons (`--prune-filters`), the others that share of the weights of the
//! Conv, ConvTranspose and FullyConnected layers (`--prune-weights`): `l1`
//! and `random` per layer, `obs` over all layers with each layer's share
//! chosen by its measured output error (`--prune-scope measured`).
//!
//! Every file is written with `--strip-names`, as a device flashes it: the
//! sizes are then the model's, not its tensors' names.
//!
//! The variants are `int8` (int8 weights and activations), `pow2` (4-bit
//! power-of-two weights, 3-bit codes for a pruned file's non-zeros; int8
//! activations) and `auto` (int8 weights,
//! `--precision auto` with the default target: the fewest layers raised to
//! int16 outputs that meet the agreement bounds). Auto precision measures
//! its choice on the calibration samples (two-fold), also for models that have zoo
//! `select` samples: the converter's `--select` would choose the calibration
//! and rounding as well, and the rows would then differ in more than
//! precision. A row is keyed by model, method, sparsity, `weights` and
//! `precision` ([`Row::key`]); [`merge`] adds the rows of a narrower sweep
//! to an earlier one's.

use serde::Serialize;
use std::fmt::Write as _;

use medq_converter::convert::convert;
use medq_converter::precision::{self, Choice};
use medq_converter::prune::Target;
use medq_converter::prune_weights::{Criterion, Scope, WeightPruning};
use medq_converter::report::Report;
use medq_converter::rounding::{Rounding, WeightGrid};

use crate::{ModelEntry, ZooConfig, ZooError};

/// How a run prunes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Whole filters and neurons, with the least-squares refit.
    Structured,
    /// Unstructured, smallest magnitude.
    L1,
    /// Unstructured, second order (least-squares refit, bias correction).
    Obs,
    /// Unstructured, uniformly at random (seed 0): the baseline.
    Random,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Structured, Method::L1, Method::Obs, Method::Random];

    pub fn name(self) -> &'static str {
        match self {
            Method::Structured => "structured",
            Method::L1 => "l1",
            Method::Obs => "obs",
            Method::Random => "random",
        }
    }
}

/// A run's weight grid and activation precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// int8 weights and activations.
    Int8,
    /// Conv/FullyConnected weights as 4-bit powers of two (3-bit codes for a
    /// pruned file's non-zeros); int8 activations.
    Pow2,
    /// int8 weights; auto precision raises the fewest layers to int16
    /// outputs that meet the agreement bounds.
    Auto,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Int8, Variant::Pow2, Variant::Auto];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Int8 => "int8",
            Variant::Pow2 => "pow2",
            Variant::Auto => "auto",
        }
    }

    /// The weight grid (`sweep.json`'s `weights`).
    pub fn grid(self) -> WeightGrid {
        match self {
            Variant::Int8 | Variant::Auto => WeightGrid::Int8,
            Variant::Pow2 => WeightGrid::Pow2,
        }
    }

    /// The activation precision (`sweep.json`'s `precision`).
    pub fn precision(self) -> &'static str {
        match self {
            Variant::Int8 | Variant::Pow2 => "int8",
            Variant::Auto => "auto",
        }
    }

    /// What the converter is told.
    pub fn choice(self) -> Choice {
        match self {
            Variant::Int8 | Variant::Pow2 => Choice::Int8,
            Variant::Auto => Choice::Auto(precision::Target::Bounds),
        }
    }
}

/// How tables, charts and the baseline check name a row's weights and
/// precision: the variant's name (`int8`, `pow2`, `auto`), or both when no
/// variant has them.
pub fn variant_label(weights: &str, precision: &str) -> String {
    match (weights, precision) {
        (w, "int8") => w.to_string(),
        ("int8", p) => p.to_string(),
        (w, p) => format!("{w} {p}"),
    }
}

/// One run of a model: pruning method (`None`: unpruned), sparsity, variant.
pub type Run = (Option<Method>, f64, Variant);

/// The sparsities of the full sweep.
pub const SPARSITIES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 0.9];

/// What one sweep covers.
#[derive(Clone, Debug)]
pub struct Plan {
    pub methods: Vec<Method>,
    pub sparsities: Vec<f64>,
    pub variants: Vec<Variant>,
    /// Occlusion attribution maps per run (the slowest part).
    pub attribution: bool,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            methods: Method::ALL.to_vec(),
            sparsities: SPARSITIES.to_vec(),
            variants: Variant::ALL.to_vec(),
            attribution: true,
        }
    }
}

/// One run: `sweep.json`'s row.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Row {
    pub model: String,
    /// `none` at sparsity 0, else a [`Method`] name.
    pub method: String,
    pub sparsity: f64,
    /// The weight grid: `int8` or `pow2`.
    pub weights: String,
    /// Activation precision: `int8`, or `auto` (mixed int8/int16, auto
    /// precision).
    pub precision: String,
    /// How many layers auto precision raised to int16 outputs; `null` for
    /// `int8` rows and failed runs (and absent from sweeps before auto
    /// precision).
    #[serde(default)]
    pub int16_layers: Option<usize>,
    /// How many of those layers auto precision also gave int16 weights
    /// (16x16); `null` where `int16_layers` is (and absent from sweeps
    /// before int16 weights).
    #[serde(default)]
    pub int16_weight_layers: Option<usize>,
    pub float_accuracy: Option<f64>,
    pub accuracy: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub per_class_recall: Vec<Option<f64>>,
    pub mq_bytes: Option<usize>,
    /// The unpruned int8 model's `.mq` bytes (the same for every row of a
    /// model): what `mq_bytes` is compared with.
    pub dense_mq_bytes: Option<usize>,
    pub macs: Option<u64>,
    /// Cortex-M4 instructions per inference: not measured by the sweep
    /// (`benches/qemu` measures the kernels), so always `null`.
    pub m4_instructions: Option<u64>,
    /// Median Spearman correlation of the int8 occlusion maps with the float
    /// model's.
    pub attribution_spearman_median: Option<f64>,
    /// Why the run produced no figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    /// What identifies a run: model, method, sparsity, weights, precision.
    pub fn key(&self) -> (&str, &str, f64, &str, &str) {
        (
            &self.model,
            &self.method,
            self.sparsity,
            &self.weights,
            &self.precision,
        )
    }

    /// Whether the row is of `weights` and `precision`.
    fn is(&self, weights: &str, precision: &str) -> bool {
        self.weights == weights && self.precision == precision
    }
}

/// The runs of one model, in plan order: sparsity 0 (method `none`) first for
/// each variant, then each method at each non-zero sparsity.
pub fn runs(plan: &Plan) -> Vec<Run> {
    let mut out = Vec::new();
    for &variant in &plan.variants {
        if plan.sparsities.contains(&0.0) {
            out.push((None, 0.0, variant));
        }
        for &method in &plan.methods {
            for &s in plan.sparsities.iter().filter(|&&s| s > 0.0) {
                out.push((Some(method), s, variant));
            }
        }
    }
    out
}

/// One run's report, and its instructions per inference on the Cortex-M4
/// (`Err` why not) when they were asked for.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub m4_instructions: Option<Result<u64, String>>,
}

/// Convert `entry` once as `(method, sparsity, variant)` says and measure it,
/// on `m4` too when given.
pub fn run_one(
    config: &ZooConfig,
    entry: &ModelEntry,
    (method, sparsity, variant): Run,
    attribution: bool,
    m4: Option<&crate::m4::M4>,
) -> Result<Outcome, ZooError> {
    let dir = tempfile::tempdir().map_err(ZooError::TempDir)?;
    let mut opts = config.options(entry, dir.path());
    let setting = entry.calibration()?;
    opts.method = setting.method;
    opts.percentile = setting.percentile;
    opts.rounding = Rounding::Gptq;
    opts.weights = variant.grid();
    opts.precision = variant.choice();
    opts.attribution = attribution;
    // Sizes as a device flashes them: the names of internal tensors are not
    // compression, and would be a tenth of the small models' files.
    opts.strip_names = true;
    match method {
        None => {}
        Some(Method::Structured) => opts.prune = Some(Target::Fraction(sparsity)),
        Some(m) => {
            opts.prune_weights = Some(WeightPruning {
                sparsity,
                criterion: match m {
                    Method::L1 | Method::Structured => Criterion::L1,
                    Method::Obs => Criterion::Obs,
                    Method::Random => Criterion::Random { seed: 0 },
                },
                // obs shares the sparsity out by each layer's measured
                // output error (a 7-tap first conv cannot lose 75% and
                // recover); l1 and random keep the same share per layer.
                scope: match m {
                    Method::Obs => Scope::Measured,
                    _ => Scope::Layer,
                },
            })
        }
    }
    let report = convert(&opts)?;
    let m4_instructions = m4.map(|m| m.instructions(&opts.output));
    Ok(Outcome {
        report,
        m4_instructions,
    })
}

/// The row of a run's report (or of its error).
pub fn row(
    model: &str,
    (method, sparsity, variant): Run,
    result: Result<&Outcome, &ZooError>,
) -> Row {
    let mut row = Row {
        model: model.to_string(),
        method: method.map_or("none", Method::name).to_string(),
        sparsity,
        weights: variant.grid().name().to_string(),
        precision: variant.precision().to_string(),
        int16_layers: None,
        int16_weight_layers: None,
        float_accuracy: None,
        accuracy: None,
        balanced_accuracy: None,
        per_class_recall: Vec::new(),
        mq_bytes: None,
        dense_mq_bytes: None,
        macs: None,
        m4_instructions: None,
        attribution_spearman_median: None,
        error: None,
    };
    match result {
        Err(e) => row.error = Some(crate::first_line(e)),
        Ok(outcome) => {
            let r = &outcome.report;
            row.m4_instructions = outcome.m4_instructions.clone().and_then(Result::ok);
            if let Some(c) = &r.evaluation.classes {
                row.float_accuracy = Some(c.accuracy_float);
                row.accuracy = Some(c.accuracy_int8);
                row.balanced_accuracy = Some(c.balanced_accuracy_int8);
                row.per_class_recall = c.per_class_recall_int8.clone();
            }
            row.mq_bytes = Some(r.totals.mq_bytes);
            row.macs = Some(r.totals.macs);
            if variant == Variant::Auto {
                let raised = r.precision.as_ref().map(|p| &p.raised);
                let count = |weights: bool| {
                    raised.map(|rs| rs.iter().filter(|l| l.int16_weights == weights).count())
                };
                row.int16_layers = count(false);
                row.int16_weight_layers = count(true);
            }
            row.attribution_spearman_median =
                r.evaluation.attribution.as_ref().map(|a| a.spearman_median);
        }
    }
    row
}

/// Fills each model's `dense_mq_bytes` from its unpruned int8 row (int8
/// weights and activations).
pub fn set_dense_bytes(rows: &mut [Row]) {
    let dense: Vec<(String, Option<usize>)> = rows
        .iter()
        .filter(|r| r.method == "none" && r.is("int8", "int8"))
        .map(|r| (r.model.clone(), r.mq_bytes))
        .collect();
    for r in rows.iter_mut() {
        r.dense_mq_bytes = dense
            .iter()
            .find(|(m, _)| *m == r.model)
            .and_then(|(_, b)| *b);
    }
}

/// `old` with the rows of a narrower sweep merged in: a row of `new`
/// replaces the row of `old` with the same [`Row::key`] where it stands; the
/// others follow the last row of their model (in their order), or come last
/// for a model `old` does not have. Dense bytes are then set again.
pub fn merge(old: Vec<Row>, new: Vec<Row>) -> Vec<Row> {
    let mut rows = old;
    for r in new {
        if let Some(i) = rows.iter().position(|o| o.key() == r.key()) {
            rows[i] = r;
            continue;
        }
        let at = rows
            .iter()
            .rposition(|o| o.model == r.model)
            .map_or(rows.len(), |i| i + 1);
        rows.insert(at, r);
    }
    set_dense_bytes(&mut rows);
    rows
}

/// The models of `rows`, each once, in the order they first appear.
pub fn models(rows: &[Row]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in rows {
        if !out.contains(&r.model.as_str()) {
            out.push(&r.model);
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v))
}

/// Where the random baseline is not below each of l1 and obs that ran at
/// the same weights, precision and sparsity, as `(variant, sparsity)`
/// ([`variant_label`]).
pub fn baseline_not_worse(rows: &[Row], model: &str) -> Vec<(String, f64)> {
    let acc = |method: &str, of: &Row| {
        rows.iter()
            .find(|r| {
                r.model == model
                    && r.method == method
                    && r.is(&of.weights, &of.precision)
                    && r.sparsity == of.sparsity
            })
            .and_then(|r| r.accuracy)
    };
    let mut out = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.model == model && r.method == "random")
    {
        let random = r.accuracy;
        let others: Vec<f64> = ["l1", "obs"].iter().filter_map(|m| acc(m, r)).collect();
        let worse = random.is_some_and(|x| others.iter().all(|&o| x < o));
        if !others.is_empty() && !worse {
            out.push((variant_label(&r.weights, &r.precision), r.sparsity));
        }
    }
    out
}

/// `SWEEP.md`: per model, a table of every run and what the baseline shows.
/// The precision column (`auto` rows with how many layers were raised) is
/// there when some row's precision is not int8.
pub fn render_markdown(rows: &[Row], plan: &Plan) -> String {
    let mixed = rows.iter().any(|r| r.precision != "int8");
    let on_m4 = rows.iter().filter(|r| r.m4_instructions.is_some()).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Compression sweep\n\n\
         Written by `cargo run --release -p medq-zoo --bin zoo-sweep` (do not edit). \
         Every zoo model converted with its zoo calibration method and GPTQ rounding, \
         pruned by each method to each sparsity, in each variant, and measured on its \
         test set. `structured` removes that share of the prunable filters and neurons \
         (least-squares refit); `l1` and `random` set that share of each layer's \
         weights to zero, `obs` that share of all the layers' weights, each layer's \
         share chosen by its measured output error (second-order choice of the weights, \
         the rest refit by least squares, biases corrected). Variants: `int8` (int8 weights and activations); `pow2` \
         (Conv/FullyConnected weights as 4-bit powers of two, int8 activations; pruned, \
         the non-zeros as 3-bit codes of the four top powers); `auto` \
         (int8 weights; `--precision auto` raises the fewest layers to int16 outputs that \
         meet the agreement bounds on the calibration samples (two-fold: each half \
         against a file calibrated on the other), and gives layers int16 weights where \
         that is not enough{}). \
         Accuracy and balanced accuracy are the quantized model's on the test set, in %; \
         size is the `.mq` file against the unpruned int8 one, both written with \
         `--strip-names` (only the graph's inputs and outputs named, as a device flashes \
         it); attribution is the median \
         Spearman correlation of the quantized model's occlusion maps with the float \
         model's{}. {}\n",
        match mixed {
            true => "; the precision column gives how many",
            false => "; not in this sweep, so every activation here is int8",
        },
        if plan.attribution {
            ""
        } else {
            " (not computed in this sweep)"
        },
        match on_m4 {
            0 => "M4 instructions were not measured in this sweep (`zoo-sweep --m4`).".to_string(),
            n => format!(
                "M4 instructions are one inference of the `.mq` file on a Cortex-M4 with the DSP \
                 kernels (QEMU mps2-an386, `-icount`, `benches/qemu` `model_cost`), measured for \
                 the {n} runs with a figure (`zoo-sweep --m4`)."
            ),
        }
    );
    for model in models(rows) {
        let float = rows
            .iter()
            .find(|r| r.model == model)
            .and_then(|r| r.float_accuracy);
        let _ = writeln!(
            s,
            "\n## {model}\n\nfloat accuracy {}%; ![accuracy versus size](sweep/{model}.svg)\n",
            pct(float)
        );
        let (head, rule) = match mixed {
            true => ("| precision ", "|---"),
            false => ("", ""),
        };
        let (m4_head, m4_rule) = match on_m4 {
            0 => ("", ""),
            _ => (" M4 instructions |", "---:|"),
        };
        let _ = writeln!(
            s,
            "| method | sparsity | weights {head}| accuracy | balanced | .mq bytes | size | MACs |{m4_head} attribution |\n\
             |---|---:|---{rule}|---:|---:|---:|---:|---:|{m4_rule}---:|"
        );
        for r in rows.iter().filter(|r| r.model == model) {
            let size = match (r.mq_bytes, r.dense_mq_bytes) {
                (Some(b), Some(d)) => format!("{:.1}%", 100.0 * b as f64 / d.max(1) as f64),
                _ => "–".into(),
            };
            let precision = match (mixed, r.int16_layers, r.int16_weight_layers) {
                (false, _, _) => String::new(),
                (true, Some(n), Some(w @ 1..)) => {
                    format!("| {} ({n} int16, {w} with int16 weights) ", r.precision)
                }
                (true, Some(n), _) => format!("| {} ({n} int16) ", r.precision),
                (true, None, _) => format!("| {} ", r.precision),
            };
            let m4 = match on_m4 {
                0 => String::new(),
                _ => format!(
                    " {} |",
                    r.m4_instructions.map_or("–".into(), |n| n.to_string())
                ),
            };
            let _ = writeln!(
                s,
                "| {} | {:.0}% | {} {precision}| {} | {} | {} | {} | {} |{m4} {} |",
                r.method,
                100.0 * r.sparsity,
                r.weights,
                match &r.error {
                    Some(e) => format!("failed: {}", e.replace('|', "\\|")),
                    None => pct(r.accuracy),
                },
                pct(r.balanced_accuracy),
                r.mq_bytes.map_or("–".into(), |b| b.to_string()),
                size,
                r.macs.map_or("–".into(), |m| m.to_string()),
                r.attribution_spearman_median
                    .map_or("–".into(), |a| format!("{a:.3}")),
            );
        }
        let not_worse = baseline_not_worse(rows, model);
        if rows
            .iter()
            .any(|r| r.model == model && r.method == "random")
        {
            let _ = match not_worse.is_empty() {
                true => writeln!(
                    s,
                    "\nThe random baseline is below `l1` and `obs` (those that ran) at every sparsity and grid."
                ),
                false => writeln!(
                    s,
                    "\nThe random baseline is **not** below `l1` and `obs` (those that ran) at: {}.",
                    not_worse
                        .iter()
                        .map(|(g, sp)| format!("{g} {:.0}%", 100.0 * sp))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
        }
    }
    s
}

/// One model's accuracy-versus-size curves: a line per method and variant
/// through its sparsities (each starting at the unpruned model of its
/// variant): solid for `int8`, thin and pale for `pow2`, dashed for `auto`.
pub fn render_svg(rows: &[Row], model: &str) -> Result<String, ZooError> {
    use plotters::prelude::*;
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| ZooError::Chart {
        file: format!("{model}.svg"),
        source: e,
    };
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| r.model == model && r.error.is_none())
        .collect();
    let points = |r: &Row| Some((r.mq_bytes? as f64, 100.0 * r.accuracy?));
    let all: Vec<(f64, f64)> = mine.iter().filter_map(|r| points(r)).collect();
    let (x_max, y_min) = all
        .iter()
        .fold((1.0f64, 100.0f64), |(x, y), p| (x.max(p.0), y.min(p.1)));
    let mixed = mine.iter().any(|r| r.precision != "int8");
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (820, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.into()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                match mixed {
                    true => format!("{model}: quantized accuracy versus .mq size"),
                    false => format!("{model}: int8 accuracy versus .mq size"),
                },
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..x_max * 1.05, (y_min - 2.0).max(0.0)..100.5)
            .map_err(|e| fail(e.into()))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc(".mq bytes")
            .y_desc("accuracy %")
            .draw()
            .map_err(|e| fail(e.into()))?;
        // A colour per method; the pow2 line of a method is its thin, pale
        // twin, the auto line its dashed one.
        let palette = [&BLUE, &RED, &GREEN, &MAGENTA];
        for variant in Variant::ALL {
            let (weights, precision) = (variant.grid().name(), variant.precision());
            let start = mine
                .iter()
                .find(|r| r.method == "none" && r.is(weights, precision))
                .and_then(|r| points(r));
            for (k, method) in Method::ALL.into_iter().enumerate() {
                let mut line: Vec<(f64, f64)> = start.into_iter().collect();
                line.extend(
                    mine.iter()
                        .filter(|r| r.method == method.name() && r.is(weights, precision))
                        .filter_map(|r| points(r)),
                );
                if line.len() < 2 {
                    continue;
                }
                let color = palette[k % palette.len()];
                let (style, dot) = match variant {
                    Variant::Pow2 => (color.mix(0.45).stroke_width(1), color.mix(0.45).filled()),
                    Variant::Int8 | Variant::Auto => (color.stroke_width(2), color.filled()),
                };
                let label = format!("{} {}", method.name(), variant.name());
                match variant {
                    Variant::Auto => chart
                        .draw_series(DashedLineSeries::new(line.iter().copied(), 6, 4, style))
                        .map_err(|e| fail(e.into()))?
                        .label(label)
                        .legend(move |(x, y)| {
                            plotters::element::DashedPathElement::new(
                                vec![(x, y), (x + 18, y)],
                                4,
                                3,
                                style,
                            )
                        }),
                    Variant::Int8 | Variant::Pow2 => chart
                        .draw_series(LineSeries::new(line.iter().copied(), style))
                        .map_err(|e| fail(e.into()))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style)),
                };
                chart
                    .draw_series(line.iter().map(|&p| Circle::new(p, 3, dot)))
                    .map_err(|e| fail(e.into()))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(e.into()))?;
        root.present().map_err(|e| fail(e.into()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(model: &str, method: &str, s: f64, acc: Option<f64>) -> Row {
        let mut r = row(
            model,
            (None, s, Variant::Int8),
            Err(&ZooError::NoCalibration),
        );
        r.method = method.into();
        r.accuracy = acc;
        r.error = None;
        r
    }

    /// A row of `variant` with a size, for the charts and dense bytes.
    fn of(variant: Variant, method: &str, s: f64, acc: f64, bytes: usize) -> Row {
        let mut r = at("m", method, s, Some(acc));
        r.weights = variant.grid().name().into();
        r.precision = variant.precision().into();
        r.int16_layers = (variant == Variant::Auto).then_some(2);
        r.mq_bytes = Some(bytes);
        r
    }

    #[test]
    fn runs_start_unpruned_then_each_method_by_sparsity() {
        let plan = Plan {
            methods: vec![Method::L1, Method::Random],
            sparsities: vec![0.0, 0.5, 0.9],
            variants: vec![Variant::Int8, Variant::Pow2],
            attribution: false,
        };
        let runs = runs(&plan);
        assert_eq!(runs.len(), 2 * (1 + 2 * 2));
        assert_eq!(runs[0], (None, 0.0, Variant::Int8));
        assert_eq!(runs[1], (Some(Method::L1), 0.5, Variant::Int8));
        assert_eq!(runs[4], (Some(Method::Random), 0.9, Variant::Int8));
        assert_eq!(runs[5], (None, 0.0, Variant::Pow2));
        // The default plan: every variant, auto last.
        let all = super::runs(&Plan::default());
        assert_eq!(all.len(), 3 * (1 + 4 * 4));
        assert_eq!(all[2 * 17], (None, 0.0, Variant::Auto));
    }

    #[test]
    fn variants_name_their_weights_and_precision() {
        let names: Vec<(&str, &str, &str)> = Variant::ALL
            .iter()
            .map(|v| (v.name(), v.grid().name(), v.precision()))
            .collect();
        assert_eq!(
            names,
            [
                ("int8", "int8", "int8"),
                ("pow2", "pow2", "int8"),
                ("auto", "int8", "auto")
            ]
        );
        assert_eq!(Variant::Pow2.choice(), Choice::Int8);
        assert_eq!(
            Variant::Auto.choice(),
            Choice::Auto(precision::Target::Bounds)
        );
        for v in Variant::ALL {
            assert_eq!(variant_label(v.grid().name(), v.precision()), v.name());
        }
        assert_eq!(variant_label("pow2", "auto"), "pow2 auto");
    }

    #[test]
    fn the_baseline_check_names_where_random_is_not_worse() {
        let rows = vec![
            at("m", "l1", 0.5, Some(0.9)),
            at("m", "obs", 0.5, Some(0.92)),
            at("m", "random", 0.5, Some(0.5)),
            at("m", "l1", 0.9, Some(0.3)),
            at("m", "obs", 0.9, Some(0.6)),
            at("m", "random", 0.9, Some(0.3)),
        ];
        assert_eq!(baseline_not_worse(&rows, "m"), [("int8".to_string(), 0.9)]);
        let md = render_markdown(&rows, &Plan::default());
        assert!(
            md.contains("**not** below `l1` and `obs` (those that ran) at: int8 90%"),
            "{md}"
        );
    }

    #[test]
    fn the_baseline_check_compares_within_a_variant() {
        let rows = vec![
            of(Variant::Int8, "l1", 0.5, 0.9, 80),
            of(Variant::Int8, "random", 0.5, 0.5, 80),
            // Above int8 l1 but below auto l1: below where it counts.
            of(Variant::Auto, "l1", 0.5, 0.97, 90),
            of(Variant::Auto, "random", 0.5, 0.95, 90),
            // Below int8 l1, above pow2 l1.
            of(Variant::Pow2, "l1", 0.5, 0.4, 60),
            of(Variant::Pow2, "random", 0.5, 0.45, 60),
            // No auto l1 or obs at 90%: nothing to compare with.
            of(Variant::Int8, "l1", 0.9, 0.1, 70),
            of(Variant::Auto, "random", 0.9, 0.5, 70),
        ];
        assert_eq!(baseline_not_worse(&rows, "m"), [("pow2".to_string(), 0.5)]);
        let mut swapped = rows.clone();
        swapped[3].accuracy = Some(0.98);
        assert_eq!(
            baseline_not_worse(&swapped, "m"),
            [("auto".to_string(), 0.5), ("pow2".to_string(), 0.5)]
        );
    }

    #[test]
    fn m4_instructions_get_a_column_when_some_run_has_them() {
        let mut rows = vec![
            of(Variant::Int8, "none", 0.0, 0.9, 100),
            of(Variant::Int8, "l1", 0.5, 0.85, 80),
        ];
        let md = render_markdown(&rows, &Plan::default());
        assert!(!md.contains("M4 instructions |"), "{md}");
        assert!(md.contains("not measured in this sweep"), "{md}");
        rows[0].m4_instructions = Some(506_440);
        let md = render_markdown(&rows, &Plan::default());
        assert!(
            md.contains("| MACs | M4 instructions | attribution |"),
            "{md}"
        );
        assert!(md.contains("| 506440 |"), "{md}");
        assert!(md.contains("measured for the 1 runs with a figure"), "{md}");
        // The run without a figure shows a dash in that column.
        assert!(
            md.contains("| l1 | 50% | int8 | 85.0 | – | 80 | – | – | – | – |"),
            "{md}"
        );
    }

    #[test]
    fn three_variants_render_three_lines_and_a_precision_column() {
        let mut rows = Vec::new();
        for (v, base) in [
            (Variant::Int8, 100),
            (Variant::Pow2, 70),
            (Variant::Auto, 120),
        ] {
            rows.push(of(v, "none", 0.0, 0.9, base));
            rows.push(of(v, "l1", 0.5, 0.85, base - 20));
        }
        // The auto rows first: dense bytes still come from int8/int8.
        rows.rotate_left(4);
        set_dense_bytes(&mut rows);
        assert!(rows.iter().all(|r| r.dense_mq_bytes == Some(100)));

        let svg = render_svg(&rows, "m").unwrap();
        for label in ["l1 int8", "l1 pow2", "l1 auto"] {
            assert_eq!(svg.matches(label).count(), 1, "{label}");
        }
        assert!(svg.contains("quantized accuracy"));

        let md = render_markdown(&rows, &Plan::default());
        assert!(
            md.contains("| method | sparsity | weights | precision | accuracy |"),
            "{md}"
        );
        assert!(
            md.contains("| none | 0% | int8 | auto (2 int16) | 90.0 |"),
            "{md}"
        );
        assert!(md.contains("| l1 | 50% | pow2 | int8 | 85.0 |"), "{md}");
        assert!(md.contains("the precision column gives how many"));

        // Without auto rows, no precision column and the int8 caption.
        let int8: Vec<Row> = rows.into_iter().filter(|r| r.precision == "int8").collect();
        let md = render_markdown(&int8, &Plan::default());
        assert!(
            md.contains("| method | sparsity | weights | accuracy |"),
            "{md}"
        );
        assert!(md.contains("| l1 | 50% | pow2 | 85.0 |"), "{md}");
        assert!(md.contains("not in this sweep"));
        let svg = render_svg(&int8, "m").unwrap();
        assert!(svg.contains("m: int8 accuracy") && !svg.contains("l1 auto"));
    }

    #[test]
    fn merging_replaces_rows_of_the_same_key_and_keeps_models_together() {
        let mut old = vec![
            of(Variant::Int8, "none", 0.0, 0.9, 100),
            of(Variant::Int8, "l1", 0.5, 0.8, 80),
            of(Variant::Int8, "none", 0.0, 0.7, 50),
        ];
        old[2].model = "n".into();
        set_dense_bytes(&mut old);
        let mut new = vec![
            of(Variant::Auto, "none", 0.0, 0.91, 110),
            of(Variant::Auto, "l1", 0.5, 0.81, 90),
            of(Variant::Int8, "l1", 0.5, 0.6, 79),
            of(Variant::Auto, "none", 0.0, 0.72, 60),
            of(Variant::Auto, "none", 0.0, 0.5, 10),
        ];
        new[3].model = "n".into();
        new[4].model = "p".into();
        let rows = merge(old, new);
        let keys: Vec<(&str, &str, &str, Option<f64>)> = rows
            .iter()
            .map(|r| {
                (
                    r.model.as_str(),
                    r.method.as_str(),
                    r.precision.as_str(),
                    r.accuracy,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("m", "none", "int8", Some(0.9)),
                ("m", "l1", "int8", Some(0.6)),
                ("m", "none", "auto", Some(0.91)),
                ("m", "l1", "auto", Some(0.81)),
                ("n", "none", "int8", Some(0.7)),
                ("n", "none", "auto", Some(0.72)),
                ("p", "none", "auto", Some(0.5)),
            ]
        );
        let dense: Vec<Option<usize>> = rows.iter().map(|r| r.dense_mq_bytes).collect();
        let (m, n) = (Some(100), Some(50));
        assert_eq!(dense, [m, m, m, m, n, n, None]);
        assert_eq!(models(&rows), ["m", "n", "p"]);
        // Merging the same rows again changes nothing.
        let again = merge(rows.clone(), rows[2..4].to_vec());
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&rows).unwrap()
        );
    }

    #[test]
    fn rows_of_a_sweep_before_auto_precision_still_read() {
        let mut old = serde_json::to_value(at("m", "l1", 0.5, Some(0.9))).unwrap();
        old.as_object_mut().unwrap().remove("int16_layers");
        let r: Row = serde_json::from_value(old).unwrap();
        assert_eq!((r.precision.as_str(), r.int16_layers), ("int8", None));
    }
}
