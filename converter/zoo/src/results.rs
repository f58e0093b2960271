//! `models/RESULTS.md` and `models/results.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::ser::SerializeMap as _;
use serde::Serialize;

use medq_converter::convert::Setting;

use crate::{Measured, ModelResult, Pruning, Targets, Verdict, Verdicts, ZooError};

/// The command that regenerates the results files, as the files name it.
pub const COMMAND: &str = "cargo run --release -p medq-zoo --bin zoo-results";

// ---------------------------------------------------------------------------
// Rendering. Fixed decimal places everywhere, no timestamps and no absolute
// paths, so that regenerating from unchanged inputs changes no byte.

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    let r = (v * p).round() / p;
    // No "-0.0" in the JSON.
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn pp(v: f64) -> String {
    format!("{:.2}", round(v, 2))
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("—".into(), pct)
}

fn sqnr(v: Option<f64>) -> String {
    v.map_or("exact".into(), |d| format!("{d:.1}"))
}

/// The first line of an error's message, without the list of supported ops
/// that an unsupported-op error carries.
pub fn first_line(e: &ZooError) -> String {
    let message = e.to_string();
    let line = message.lines().next().unwrap_or(&message);
    match line.find(". Supported ops:") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

/// Markdown table cells must not contain a bare `|`.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The published setting, marked when `--select` chose it, and the pruning.
fn setting_cell(m: &Measured) -> String {
    let mut cell = match m.selected_on {
        Some(_) => format!("{} (selected)", m.calibration),
        None => m.calibration.clone(),
    };
    if let Some(p) = &m.pruning {
        cell.push_str(&format!(", {} of {} filters pruned", p.removed, p.prunable));
    }
    cell
}

/// What pruning did to the published conversion, if it was pruned.
fn pruning(r: &ModelResult) -> Option<&Pruning> {
    r.chosen.as_ref().ok()?.pruning.as_ref()
}

fn class_name(r: &ModelResult, class: usize) -> String {
    r.class_names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"))
}

fn worst_cell(r: &ModelResult, m: &Measured, t: &Targets) -> String {
    match m.worst_recall_drop(t.min_class_samples) {
        None => format!("— (no class with ≥ {} samples)", t.min_class_samples),
        // In samples too: with few samples per class one sample is several points.
        Some(w) => format!(
            "{} ({}: {} of {} lost)",
            pp(w.drop_pp),
            class_name(r, w.class),
            (w.drop_pp * w.samples as f64 / 100.0).round() as i64,
            w.samples
        ),
    }
}

fn params_short(p: usize) -> String {
    if p >= 1000 {
        format!("{:.1}k", p as f64 / 1000.0)
    } else {
        p.to_string()
    }
}

/// The pruning section: per model, what was removed, how well each rebuilt
/// layer reproduces its float output, and the model before and after.
fn render_pruning(w: &mut String, pruned: &[(&ModelResult, &Measured, &Pruning)], t: &Targets) {
    let _ = writeln!(w, "\n## Pruning\n");
    let _ = writeln!(
        w,
        "Structured pruning (`converter --max-size`): whole Conv filters are removed, those whose \
         removal costs the least output error per weight saved, and the layer reading them is \
         refit by least squares on the calibration data. Refit SQNR: the rebuilt layer's output \
         against its original float output on the calibration data. Drops are against the \
         original float model; \"not pruned\" is the same setting without pruning, measured in \
         the same converter run.\n"
    );
    for (i, (r, m, p)) in pruned.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(w);
        }
        let _ = writeln!(
            w,
            "### {}\n\nPruned for {}: {} of {} prunable filters removed.",
            r.name, p.target, p.removed, p.prunable
        );
        if let Some(reason) = &r.prune_reason {
            let _ = writeln!(w, "{reason}");
        }
        let _ = writeln!(w, "\n| filters of | read by | kept | refit SQNR (dB) |");
        let _ = writeln!(w, "| --- | --- | --- | --- |");
        for l in &p.layers {
            let refit = match l.kept == l.channels {
                true => "—".to_string(),
                false => sqnr(l.reconstruction_sqnr_db),
            };
            let _ = writeln!(
                w,
                "| `{}` | `{}` | {} of {} | {refit} |",
                l.producer, l.consumer, l.kept, l.channels
            );
        }
        let _ = writeln!(
            w,
            "\n| | .mq bytes | .mq / ONNX | arena bytes | MACs | params | int8 accuracy | accuracy drop (pp) | worst class recall drop (pp) | output SQNR (dB) |"
        );
        let _ = writeln!(
            w,
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for (label, x) in [("not pruned", &*p.unpruned), ("pruned", *m)] {
            let _ = writeln!(
                w,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                x.mq_bytes,
                pct(x.mq_to_onnx()),
                x.arena_bytes,
                x.macs,
                x.params,
                pct(x.int8_accuracy),
                pp(x.accuracy_drop_pp()),
                worst_cell(r, x, t),
                sqnr(x.output_sqnr_db)
            );
        }
    }
}

/// `models/RESULTS.md`.
pub fn render_markdown(results: &[ModelResult], t: &Targets) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# Model zoo results\n");
    let _ = writeln!(
        w,
        "Generated by `{COMMAND}` from `models/zoo.json`; do not edit by hand. \
         Every figure comes from converting the committed ONNX model with the medq converter \
         (converter {}) and running the `.mq` file it wrote with the medq runtime (int8) against \
         tract (float) on the model's committed test set. The same figures, unrounded where it \
         matters, are in `results.json`; `converter/zoo/tests/zoo.rs` asserts the targets.\n",
        medq_converter::VERSION
    );
    let _ = writeln!(w, "Targets:\n");
    let _ = writeln!(
        w,
        "- **accuracy**: int8 test accuracy at most {} percentage points (pp) below float;",
        t.max_accuracy_drop_pp
    );
    let _ = writeln!(
        w,
        "- **class recall**: no class with at least {} test samples loses more than {} pp of recall;",
        t.min_class_samples, t.max_class_recall_drop_pp
    );
    let _ = writeln!(
        w,
        "- **size**: the `.mq` file at most {:.0}% of the ONNX file, for models with at least {} parameters.\n",
        100.0 * t.max_mq_to_onnx,
        t.size_target_min_params
    );

    let _ = writeln!(w, "## Targets\n");
    let _ = writeln!(
        w,
        "Drops are float minus int8 on the test set; a negative drop means int8 did better. \
         The worst class is the one with the largest drop among classes with at least {} \
         test samples.\n",
        t.min_class_samples
    );
    let _ = writeln!(
        w,
        "| model | calibration | accuracy drop (pp) | worst class recall drop (pp) | .mq / ONNX | all met |"
    );
    let _ = writeln!(w, "| --- | --- | --- | --- | --- | --- |");
    for r in results {
        match &r.chosen {
            Ok(m) => {
                let v = m.verdicts(t);
                let size = match v.size {
                    Verdict::NotApplicable => format!(
                        "{} n/a ({} params < {})",
                        pct(m.mq_to_onnx()),
                        params_short(m.model_params()),
                        params_short(t.size_target_min_params)
                    ),
                    other => format!("{} {}", pct(m.mq_to_onnx()), other.label()),
                };
                let recall = match m.worst_recall_drop(t.min_class_samples) {
                    None => format!("n/a (no class with ≥ {} samples)", t.min_class_samples),
                    Some(_) => format!("{} {}", worst_cell(r, m, t), v.class_recall_drop.label()),
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} {} | {} | {} | {} |",
                    r.name,
                    setting_cell(m),
                    pp(m.accuracy_drop_pp()),
                    v.accuracy_drop.label(),
                    recall,
                    size,
                    if v.all_met() { "yes" } else { "**no**" }
                );
            }
            Err(_) => {
                let _ = writeln!(
                    w,
                    "| {} | — | **FAIL**: not converted | **FAIL**: not converted | **FAIL**: not converted | **no** (see [failures](#conversion-failures)) |",
                    r.name
                );
            }
        }
    }

    let _ = writeln!(w, "\n## Accuracy\n");
    let _ = writeln!(
        w,
        "Balanced accuracy: the mean recall over the classes with test samples, which an \
         imbalanced test set's accuracy hides (ECG5000's three rare classes are 6.3% of its test beats). \
         Top-1 agreement: share of test samples where float and int8 pick the same class. \
         Output SQNR: float vs int8 signal-to-quantization-noise ratio of the output probabilities.\n"
    );
    let _ = writeln!(
        w,
        "| model | dataset | classes | test samples | float accuracy | int8 accuracy | float balanced accuracy | int8 balanced accuracy | top-1 agreement | output SQNR (dB) |"
    );
    let _ = writeln!(
        w,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in results {
        match &r.chosen {
            Ok(m) => {
                let (balanced_float, balanced_int8) = m.balanced_accuracy();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.name,
                    cell(&r.dataset),
                    r.class_names.len(),
                    m.test_samples,
                    pct(m.float_accuracy),
                    pct(m.int8_accuracy),
                    pct(balanced_float),
                    pct(balanced_int8),
                    pct(m.agreement),
                    sqnr(m.output_sqnr_db)
                );
            }
            Err(_) => {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | — | — | — | — | — | — | — |",
                    r.name,
                    cell(&r.dataset),
                    r.class_names.len()
                );
            }
        }
    }

    let _ = writeln!(w, "\n## Size and cost\n");
    let _ = writeln!(
        w,
        "Parameters: weights and biases after BatchNorm folding (and pruning, for a pruned \
         model; the size target applies by the parameters before pruning). Arena: the one static buffer \
         the runtime needs for activations. MACs: multiply-accumulates per inference.\n"
    );
    let _ = writeln!(
        w,
        "| model | params | ONNX bytes | .mq bytes | .mq / ONNX | arena bytes | MACs |"
    );
    let _ = writeln!(w, "| --- | --- | --- | --- | --- | --- | --- |");
    for r in results {
        let onnx = r.onnx_bytes.map_or("—".into(), |b| b.to_string());
        match &r.chosen {
            Ok(m) => {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.name,
                    m.params,
                    onnx,
                    m.mq_bytes,
                    pct(m.mq_to_onnx()),
                    m.arena_bytes,
                    m.macs
                );
            }
            Err(_) => {
                let _ = writeln!(w, "| {} | — | {} | — | — | — | — |", r.name, onnx);
            }
        }
    }

    let pruned: Vec<(&ModelResult, &Measured, &Pruning)> = results
        .iter()
        .filter_map(|r| {
            let m = r.chosen.as_ref().ok()?;
            Some((r, m, m.pruning.as_ref()?))
        })
        .collect();
    if !pruned.is_empty() {
        render_pruning(w, &pruned, t);
    }

    let compared: Vec<&ModelResult> = results
        .iter()
        .filter(|r| !r.others.is_empty() || pruning(r).is_some())
        .collect();
    if !compared.is_empty() {
        let default = Setting::default().name();
        let _ = writeln!(w, "\n## Calibrations and weight rounding compared\n");
        let _ = writeln!(
            w,
            "Calibration is the activation range method, `nearest` or `gptq` the weight rounding \
             (`--rounding`). A model with a `select` file in `models/zoo.json` publishes the \
             setting `converter --select` chooses on those held-out samples (neither calibration \
             nor test data) by float-vs-int8 output SQNR, never by test figures. Shown for \
             comparison: the converter default ({default}) when the published setting differs; \
             for a calibration given in `models/zoo.json`, the same with the other weight \
             rounding; for a model that misses the accuracy or class recall target, every \
             setting `--select` tries; for a pruned model, the published setting without \
             pruning, measured in the same converter run (every other row of a pruned model is \
             pruned too). The first row of each model is the published one.\n"
        );
        let _ = writeln!(
            w,
            "| model | calibration | float accuracy | int8 accuracy | accuracy drop (pp) | top-1 agreement | worst class recall drop (pp) | output SQNR (dB) | targets met |"
        );
        let _ = writeln!(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for r in &compared {
            let chosen_name = match &r.chosen {
                Ok(m) => m.calibration.clone(),
                Err(_) => "chosen".into(),
            };
            // Pruned: the published setting without pruning right after it,
            // labelled as such.
            let unpruned = pruning(r).map(|p| {
                let label =
                    format!("{chosen_name}, not pruned (the published setting, in the same run)");
                (label, Ok(&*p.unpruned))
            });
            let measured = std::iter::once((chosen_name, r.chosen.as_ref()))
                .chain(r.others.iter().map(|(n, m)| (n.clone(), m.as_ref())));
            let labelled = measured.enumerate().map(|(k, (name, run))| {
                let selected = match (k, run) {
                    (0, Ok(m)) => m.selected_on,
                    _ => None,
                };
                let is_default = name == default;
                let name = match run {
                    Ok(m) if m.pruning.is_some() => format!("{name}, pruned"),
                    _ => name,
                };
                let label = match (k == 0, is_default, selected) {
                    (true, _, Some(n)) => {
                        format!("{name} (published, chosen by `--select` on {n} held-out samples)")
                    }
                    (true, true, None) => format!("{name} (published, converter default)"),
                    (true, false, None) => format!("{name} (published)"),
                    (false, true, _) => format!("{name} (converter default)"),
                    (false, false, _) => name,
                };
                (label, run)
            });
            let mut rows: Vec<(String, Result<&Measured, &ZooError>)> = labelled.collect();
            if let Some(row) = unpruned {
                rows.insert(1, row);
            }
            for (label, run) in rows {
                match run {
                    Ok(m) => {
                        let met = if m.verdicts(t).all_met() {
                            "yes"
                        } else {
                            "**no**"
                        };
                        let _ = writeln!(
                            w,
                            "| {} | {label} | {} | {} | {} | {} | {} | {} | {met} |",
                            r.name,
                            pct(m.float_accuracy),
                            pct(m.int8_accuracy),
                            pp(m.accuracy_drop_pp()),
                            pct(m.agreement),
                            worst_cell(r, m, t),
                            sqnr(m.output_sqnr_db),
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            w,
                            "| {} | {label} | not converted: {} | — | — | — | — | — | **no** |",
                            r.name,
                            cell(&first_line(e))
                        );
                    }
                }
            }
        }
        let reasons: Vec<(&str, &str)> = compared
            .iter()
            .filter_map(|r| Some((r.name.as_str(), r.calibration_reason.as_deref()?)))
            .chain(
                compared
                    .iter()
                    .filter_map(|r| Some((r.name.as_str(), r.prune_reason.as_deref()?))),
            )
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(w);
            for (name, reason) in reasons {
                let _ = writeln!(w, "- {name}: {reason}");
            }
        }
    }

    let failed: Vec<(&ModelResult, &ZooError)> = results
        .iter()
        .filter_map(|r| r.chosen.as_ref().err().map(|e| (r, e)))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(w, "\n## Conversion failures\n");
        for (r, e) in failed {
            let _ = writeln!(w, "### {}\n", r.name);
            let _ = writeln!(
                w,
                "`{}`:\n\n```text\n{}\n```\n",
                r.onnx_file,
                e.to_string().trim_end()
            );
        }
    }

    let _ = writeln!(w, "\n## Per-class recall\n");
    let _ = writeln!(
        w,
        "Classes with fewer than {} test samples are listed but not held to the class-recall target.",
        t.min_class_samples
    );
    for r in results {
        let Ok(m) = &r.chosen else { continue };
        let _ = writeln!(w, "\n### {} ({})\n", r.name, setting_cell(m));
        let unpruned = m.pruning.as_ref().map(|p| &p.unpruned);
        let (extra, extra_rule) = match unpruned {
            Some(_) => (" int8 recall, not pruned |", " --- |"),
            None => ("", ""),
        };
        let _ = writeln!(
            w,
            "| class | test samples | float recall | int8 recall | drop (pp) |{extra}"
        );
        let _ = writeln!(w, "| --- | --- | --- | --- | --- |{extra_rule}");
        for (k, count) in m.class_counts.iter().enumerate() {
            let drop = m.recall_drop_pp(k).map_or("—".into(), pp);
            let before = unpruned.map_or(String::new(), |u| {
                format!(" {} |", opt_pct(u.recall_int8.get(k).copied().flatten()))
            });
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} |{before}",
                cell(&class_name(r, k)),
                count,
                opt_pct(m.recall_float.get(k).copied().flatten()),
                opt_pct(m.recall_int8.get(k).copied().flatten()),
                drop
            );
        }
    }
    s
}

/// A map serialized in the given order (serde_json's own map sorts its keys).
struct Ordered<V>(Vec<(String, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonWorst {
    class: String,
    samples: usize,
    drop_pp: f64,
}

#[derive(Serialize)]
struct JsonMeasured {
    calibration: String,
    /// Held-out samples `--select` chose the calibration on; absent when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_on: Option<usize>,
    test_samples: usize,
    float_accuracy: f64,
    int8_accuracy: f64,
    accuracy_drop_pp: f64,
    balanced_accuracy_float: f64,
    balanced_accuracy_int8: f64,
    agreement: f64,
    class_samples: Ordered<usize>,
    per_class_recall_float: Ordered<Option<f64>>,
    per_class_recall_int8: Ordered<Option<f64>>,
    worst_class_recall_drop: Option<JsonWorst>,
    mq_bytes: usize,
    mq_to_onnx: f64,
    arena_bytes: usize,
    macs: u64,
    params: usize,
    /// `null` when bit-exact.
    output_sqnr_db: Option<f64>,
    targets: Verdicts,
    targets_met: bool,
    /// Present when the model was pruned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pruning: Option<JsonPruning>,
}

#[derive(Serialize)]
struct JsonPruning {
    target: String,
    removed: usize,
    prunable: usize,
    layers: Vec<medq_converter::prune::PrunedLayer>,
    /// The same setting without pruning, measured in the same run.
    not_pruned: Box<JsonMeasured>,
}

#[derive(Serialize)]
struct JsonModel {
    name: String,
    dataset: String,
    onnx_file: String,
    onnx_bytes: Option<usize>,
    class_names: Vec<String>,
    status: &'static str,
    error: Option<String>,
    /// The published figures (flattened into the model object).
    #[serde(flatten)]
    chosen: Option<JsonMeasured>,
    calibration_reason: Option<String>,
    /// Other calibrations' figures (see [`ModelResult::others`]).
    other_calibrations: Vec<JsonOther>,
}

#[derive(Serialize)]
struct JsonOther {
    /// Only when not converted; the figures name it otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<String>,
    error: Option<String>,
    #[serde(flatten)]
    measured: Option<JsonMeasured>,
}

#[derive(Serialize)]
struct JsonResults {
    generated_by: &'static str,
    converter_version: &'static str,
    targets: Targets,
    models: Vec<JsonModel>,
}

fn json_measured(r: &ModelResult, m: &Measured, t: &Targets) -> JsonMeasured {
    let per_class = |v: &[Option<f64>]| {
        Ordered(
            (0..r.class_names.len())
                .map(|k| {
                    (
                        class_name(r, k),
                        v.get(k).copied().flatten().map(|x| round(x, 4)),
                    )
                })
                .collect(),
        )
    };
    JsonMeasured {
        calibration: m.calibration.clone(),
        selected_on: m.selected_on,
        test_samples: m.test_samples,
        float_accuracy: round(m.float_accuracy, 4),
        int8_accuracy: round(m.int8_accuracy, 4),
        accuracy_drop_pp: round(m.accuracy_drop_pp(), 2),
        balanced_accuracy_float: round(m.balanced_accuracy().0, 4),
        balanced_accuracy_int8: round(m.balanced_accuracy().1, 4),
        agreement: round(m.agreement, 4),
        class_samples: Ordered(
            m.class_counts
                .iter()
                .enumerate()
                .map(|(k, &c)| (class_name(r, k), c))
                .collect(),
        ),
        per_class_recall_float: per_class(&m.recall_float),
        per_class_recall_int8: per_class(&m.recall_int8),
        worst_class_recall_drop: m.worst_recall_drop(t.min_class_samples).map(|w| JsonWorst {
            class: class_name(r, w.class),
            samples: w.samples,
            drop_pp: round(w.drop_pp, 2),
        }),
        mq_bytes: m.mq_bytes,
        mq_to_onnx: round(m.mq_to_onnx(), 4),
        arena_bytes: m.arena_bytes,
        macs: m.macs,
        params: m.params,
        output_sqnr_db: m.output_sqnr_db.map(|d| round(d, 2)),
        targets: m.verdicts(t),
        targets_met: m.verdicts(t).all_met(),
        pruning: m.pruning.as_ref().map(|p| JsonPruning {
            target: p.target.clone(),
            removed: p.removed,
            prunable: p.prunable,
            layers: p
                .layers
                .iter()
                .map(|l| medq_converter::prune::PrunedLayer {
                    reconstruction_sqnr_db: l.reconstruction_sqnr_db.map(|d| round(d, 2)),
                    ..l.clone()
                })
                .collect(),
            not_pruned: Box::new(json_measured(r, &p.unpruned, t)),
        }),
    }
}

/// `models/results.json`.
pub fn render_json(results: &[ModelResult], t: &Targets) -> Result<String, ZooError> {
    let models = results
        .iter()
        .map(|r| JsonModel {
            name: r.name.clone(),
            dataset: r.dataset.clone(),
            onnx_file: r.onnx_file.clone(),
            onnx_bytes: r.onnx_bytes,
            class_names: r.class_names.clone(),
            status: if r.chosen.is_ok() {
                "converted"
            } else {
                "failed"
            },
            error: r.chosen.as_ref().err().map(ToString::to_string),
            chosen: r.chosen.as_ref().ok().map(|m| json_measured(r, m, t)),
            calibration_reason: r.calibration_reason.clone(),
            other_calibrations: r
                .others
                .iter()
                .map(|(name, run)| JsonOther {
                    calibration: run.is_err().then(|| name.clone()),
                    error: run.as_ref().err().map(ToString::to_string),
                    measured: run.as_ref().ok().map(|m| json_measured(r, m, t)),
                })
                .collect(),
        })
        .collect();
    let doc = JsonResults {
        generated_by: COMMAND,
        converter_version: medq_converter::VERSION,
        targets: *t,
        models,
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(ZooError::Json)?;
    text.push('\n');
    Ok(text)
}

/// Write `RESULTS.md` and `results.json` into `dir`, each atomically.
pub fn write_results(dir: &Path, results: &[ModelResult], t: &Targets) -> Result<(), ZooError> {
    let json = render_json(results, t)?;
    let md = render_markdown(results, t);
    for (name, text) in [("results.json", json), ("RESULTS.md", md)] {
        medq_converter::convert::write_atomically(&dir.join(name), text.as_bytes())
            .map_err(ZooError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::tests::measured;
    use crate::TARGETS;
    use medq_converter::ConvertError;

    fn result(name: &str, chosen: Result<Measured, ZooError>) -> ModelResult {
        ModelResult {
            name: name.into(),
            dataset: "a | b".into(),
            onnx_file: format!("{name}/model.onnx"),
            onnx_bytes: Some(100_000),
            class_names: vec!["zeta".into(), "alpha".into()],
            calibration_reason: None,
            prune_reason: None,
            chosen,
            others: Vec::new(),
        }
    }

    #[test]
    fn a_failed_model_is_shown_with_its_error() {
        let results = [
            result(
                "good",
                Ok(measured(
                    0.9,
                    0.9,
                    vec![30, 30],
                    vec![(0.9, 0.9); 2],
                    20_000,
                )),
            ),
            result(
                "bad",
                Err(ZooError::Convert(ConvertError::UnsupportedOp {
                    node: "x".into(),
                    op_type: "LSTM".into(),
                    domain: String::new(),
                    opset: 17,
                    supported: &["Conv", "Gemm"],
                })),
            ),
        ];
        assert!(results[0].passes(&TARGETS));
        assert!(!results[1].passes(&TARGETS));
        let md = render_markdown(&results, &TARGETS);
        assert!(md.contains("| bad | — | **FAIL**: not converted"), "{md}");
        assert!(md.contains("### bad\n\n`bad/model.onnx`:\n\n```text\nnode \"x\" (op LSTM"));
        assert!(md.contains("a \\| b"), "a | in a cell is escaped");
        let text = render_json(&results, &TARGETS).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let models = json["models"].as_array().unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(models[1]["status"], "failed");
        assert!(models[1]["error"].as_str().unwrap().contains("LSTM"));
        assert_eq!(models[0]["targets"]["size"], "pass");
        // Flattened structs must not repeat a key (serde_json would keep the last).
        for model in text.split("\n    {\n").skip(1) {
            let mut keys: Vec<&str> = model
                .lines()
                .filter(|l| l.starts_with("      \"") && !l.starts_with("       "))
                .filter_map(|l| l.trim().split('"').nth(1))
                .collect();
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), n, "a key repeats in {model}");
            assert!(n > 5);
        }
        // Class-keyed figures keep labels.txt order, not alphabetical order
        // (checked on the text: serde_json's Value would sort the keys).
        let recall = &text[text.find("per_class_recall_float").unwrap()..];
        assert!(recall.find("\"zeta\"").unwrap() < recall.find("\"alpha\"").unwrap());
    }

    #[test]
    fn rounding_is_fixed_and_has_no_negative_zero() {
        assert_eq!(round(0.123456, 4), 0.1235);
        assert_eq!(round(-0.00001, 2).to_string(), "0");
        assert_eq!(pp(-0.001), "0.00");
        assert_eq!(pp(0.5), "0.50");
    }
}
