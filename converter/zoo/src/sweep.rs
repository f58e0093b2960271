//! The compression sweep: every zoo model × pruning method × sparsity ×
//! weight grid, converted and measured on the model's test set, written as
//! `SWEEP.md`, `sweep.json` and an accuracy-versus-size SVG per model
//! (`zoo-sweep`).
//!
//! Every run uses the model's zoo calibration method (the converter default
//! when the zoo gives none) with GPTQ rounding, which both pruning by `obs`
//! and the power-of-two grid build on, so that rows differ only in the
//! compression they name. Sparsity 0 is one unpruned row per grid (method
//! `none`); `structured` removes that share of the prunable filters and
//! neurons (`--prune-filters`), the others that share of the weights of every
//! Conv, ConvTranspose and FullyConnected layer (`--prune-weights`, per
//! layer).

use serde::Serialize;
use std::fmt::Write as _;

use medq_converter::convert::convert;
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

/// The sparsities of the full sweep.
pub const SPARSITIES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 0.9];

/// What one sweep covers.
#[derive(Clone, Debug)]
pub struct Plan {
    pub methods: Vec<Method>,
    pub sparsities: Vec<f64>,
    pub grids: Vec<WeightGrid>,
    /// Occlusion attribution maps per run (the slowest part).
    pub attribution: bool,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            methods: Method::ALL.to_vec(),
            sparsities: SPARSITIES.to_vec(),
            grids: vec![WeightGrid::Int8, WeightGrid::Pow2],
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
    /// Activation precision: `int8` (mixed int8/int16 is not built yet).
    pub precision: String,
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

/// The runs of one model, in plan order: sparsity 0 (method `none`) first for
/// each grid, then each method at each non-zero sparsity.
pub fn runs(plan: &Plan) -> Vec<(Option<Method>, f64, WeightGrid)> {
    let mut out = Vec::new();
    for &grid in &plan.grids {
        if plan.sparsities.contains(&0.0) {
            out.push((None, 0.0, grid));
        }
        for &method in &plan.methods {
            for &s in plan.sparsities.iter().filter(|&&s| s > 0.0) {
                out.push((Some(method), s, grid));
            }
        }
    }
    out
}

/// Convert `entry` once as `(method, sparsity, grid)` says and measure it.
pub fn run_one(
    config: &ZooConfig,
    entry: &ModelEntry,
    (method, sparsity, grid): (Option<Method>, f64, WeightGrid),
    attribution: bool,
) -> Result<Report, ZooError> {
    let dir = tempfile::tempdir().map_err(ZooError::TempDir)?;
    let mut opts = config.options(entry, dir.path());
    let setting = entry.calibration()?;
    opts.method = setting.method;
    opts.percentile = setting.percentile;
    opts.rounding = Rounding::Gptq;
    opts.weights = grid;
    opts.attribution = attribution;
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
                scope: Scope::Layer,
            })
        }
    }
    Ok(convert(&opts)?)
}

/// The row of a run's report (or of its error).
pub fn row(
    model: &str,
    (method, sparsity, grid): (Option<Method>, f64, WeightGrid),
    result: Result<&Report, &ZooError>,
) -> Row {
    let mut row = Row {
        model: model.to_string(),
        method: method.map_or("none", Method::name).to_string(),
        sparsity,
        weights: grid.name().to_string(),
        precision: "int8".to_string(),
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
        Ok(r) => {
            if let Some(c) = &r.evaluation.classes {
                row.float_accuracy = Some(c.accuracy_float);
                row.accuracy = Some(c.accuracy_int8);
                row.balanced_accuracy = Some(c.balanced_accuracy_int8);
                row.per_class_recall = c.per_class_recall_int8.clone();
            }
            row.mq_bytes = Some(r.totals.mq_bytes);
            row.macs = Some(r.totals.macs);
            row.attribution_spearman_median =
                r.evaluation.attribution.as_ref().map(|a| a.spearman_median);
        }
    }
    row
}

/// Fills each model's `dense_mq_bytes` from its unpruned int8 row.
pub fn set_dense_bytes(rows: &mut [Row]) {
    let dense: Vec<(String, Option<usize>)> = rows
        .iter()
        .filter(|r| r.method == "none" && r.weights == "int8")
        .map(|r| (r.model.clone(), r.mq_bytes))
        .collect();
    for r in rows.iter_mut() {
        r.dense_mq_bytes = dense
            .iter()
            .find(|(m, _)| *m == r.model)
            .and_then(|(_, b)| *b);
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v))
}

/// Where the random baseline is not below each of l1 and obs that ran at
/// the same grid and sparsity, as `(grid, sparsity)`.
pub fn baseline_not_worse(rows: &[Row], model: &str) -> Vec<(String, f64)> {
    let acc = |method: &str, grid: &str, s: f64| {
        rows.iter()
            .find(|r| {
                r.model == model && r.method == method && r.weights == grid && r.sparsity == s
            })
            .and_then(|r| r.accuracy)
    };
    let mut out = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.model == model && r.method == "random")
    {
        let random = r.accuracy;
        let others: Vec<f64> = ["l1", "obs"]
            .iter()
            .filter_map(|m| acc(m, &r.weights, r.sparsity))
            .collect();
        let worse = random.is_some_and(|x| others.iter().all(|&o| x < o));
        if !others.is_empty() && !worse {
            out.push((r.weights.clone(), r.sparsity));
        }
    }
    out
}

/// `SWEEP.md`: per model, a table of every run and what the baseline shows.
pub fn render_markdown(rows: &[Row], plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Compression sweep\n\n\
         Written by `cargo run --release -p medq-zoo --bin zoo-sweep` (do not edit). \
         Every zoo model converted with its zoo calibration method and GPTQ rounding, \
         pruned by each method to each sparsity, on each weight grid, and measured on its \
         test set. `structured` removes that share of the prunable filters and neurons \
         (least-squares refit); `l1`, `obs` and `random` set that share of each layer's \
         weights to zero. `pow2` stores Conv/FullyConnected weights as 4-bit powers of two. \
         Activations are int8 in every run (mixed int8/int16 precision is not built yet). \
         Accuracy and balanced accuracy are int8 on the test set, in %; size is the `.mq` \
         file against the unpruned int8 one; attribution is the median Spearman correlation \
         of the int8 occlusion maps with the float model's{}. M4 instructions are not \
         measured per run (`benches/qemu` measures the kernels).\n",
        if plan.attribution {
            ""
        } else {
            " (not computed in this sweep)"
        }
    );
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.dedup();
    for model in models {
        let float = rows
            .iter()
            .find(|r| r.model == model)
            .and_then(|r| r.float_accuracy);
        let _ = writeln!(
            s,
            "\n## {model}\n\nfloat accuracy {}%; ![accuracy versus size](sweep/{model}.svg)\n",
            pct(float)
        );
        let _ = writeln!(
            s,
            "| method | sparsity | weights | accuracy | balanced | .mq bytes | size | MACs | attribution |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|"
        );
        for r in rows.iter().filter(|r| r.model == model) {
            let size = match (r.mq_bytes, r.dense_mq_bytes) {
                (Some(b), Some(d)) => format!("{:.1}%", 100.0 * b as f64 / d.max(1) as f64),
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {:.0}% | {} | {} | {} | {} | {} | {} | {} |",
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

/// One model's accuracy-versus-size curves: a line per method and grid
/// through its sparsities (each starting at the unpruned model).
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
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (820, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.into()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{model}: int8 accuracy versus .mq size"),
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
        // A colour per method; the pow2 line of a method is its thin, pale twin.
        let palette = [&BLUE, &RED, &GREEN, &MAGENTA];
        for grid in ["int8", "pow2"] {
            let start = mine
                .iter()
                .find(|r| r.method == "none" && r.weights == grid)
                .and_then(|r| points(r));
            for (k, method) in Method::ALL.into_iter().enumerate() {
                let mut line: Vec<(f64, f64)> = start.into_iter().collect();
                line.extend(
                    mine.iter()
                        .filter(|r| r.method == method.name() && r.weights == grid)
                        .filter_map(|r| points(r)),
                );
                if line.len() < 2 {
                    continue;
                }
                let color = palette[k % palette.len()];
                let (style, dot) = match grid {
                    "int8" => (color.stroke_width(2), color.filled()),
                    _ => (color.mix(0.45).stroke_width(1), color.mix(0.45).filled()),
                };
                chart
                    .draw_series(LineSeries::new(line.iter().copied(), style))
                    .map_err(|e| fail(e.into()))?
                    .label(format!("{} {grid}", method.name()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
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
            (None, s, WeightGrid::Int8),
            Err(&ZooError::NoCalibration),
        );
        r.method = method.into();
        r.accuracy = acc;
        r.error = None;
        r
    }

    #[test]
    fn runs_start_unpruned_then_each_method_by_sparsity() {
        let plan = Plan {
            methods: vec![Method::L1, Method::Random],
            sparsities: vec![0.0, 0.5, 0.9],
            grids: vec![WeightGrid::Int8, WeightGrid::Pow2],
            attribution: false,
        };
        let runs = runs(&plan);
        assert_eq!(runs.len(), 2 * (1 + 2 * 2));
        assert_eq!(runs[0], (None, 0.0, WeightGrid::Int8));
        assert_eq!(runs[1], (Some(Method::L1), 0.5, WeightGrid::Int8));
        assert_eq!(runs[4], (Some(Method::Random), 0.9, WeightGrid::Int8));
        assert_eq!(runs[5], (None, 0.0, WeightGrid::Pow2));
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
}
