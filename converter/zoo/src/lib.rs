//! `medq-zoo`: the model zoo's harness, kept apart from the converter it
//! measures. Convert every model listed in `models/zoo.json`
//! with [`convert()`], measure the `.mq` bytes it wrote with
//! the medq runtime against tract on the model's committed test set, and hold
//! the figures to the product's quality [`TARGETS`].
//!
//! The `zoo-results` binary renders [`ModelResult`]s as `models/RESULTS.md`
//! and `models/results.json`; `converter/zoo/tests/zoo.rs` asserts the targets on
//! the same results. Nothing here computes a metric itself: accuracy, recall,
//! agreement, SQNR and sizes are the converter's own [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum as _;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize};

use medq_converter::calibrate::Method;
use medq_converter::convert::{convert, Options, Setting};
use medq_converter::error::ConvertError;
use medq_converter::report::Report;

pub mod sweep;

/// The command that regenerates the results files, as the files name it.
pub const COMMAND: &str = "cargo run --release -p medq-zoo --bin zoo-results";

/// The quality contract every zoo model is held to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Targets {
    /// Largest allowed drop of test accuracy from float to int8, in percentage points.
    pub max_accuracy_drop_pp: f64,
    /// Largest allowed drop of one class's recall, in percentage points, over
    /// the classes with at least `min_class_samples` test samples (below that
    /// one sample moves recall by more than the limit).
    pub max_class_recall_drop_pp: f64,
    pub min_class_samples: usize,
    /// Largest allowed `.mq` size as a fraction of the ONNX file, for models
    /// with at least `size_target_min_params` parameters (in smaller models the
    /// fixed header, names and requantization tables dominate).
    pub max_mq_to_onnx: f64,
    pub size_target_min_params: usize,
}

pub const TARGETS: Targets = Targets {
    max_accuracy_drop_pp: 0.5,
    max_class_recall_drop_pp: 2.0,
    min_class_samples: 20,
    max_mq_to_onnx: 0.30,
    size_target_min_params: 10_000,
};

/// Figures are compared after this much slack, so that a drop of exactly the
/// limit (e.g. 5 samples of 1000 = 0.5 pp) is not failed by float rounding.
const EPS: f64 = 1e-9;

/// Why the zoo could not be run at all (a model that fails to convert is a
/// [`ModelResult`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error("cannot write the results: {0}")]
    Write(String),
}

fn read(path: &Path) -> Result<Vec<u8>, ZooError> {
    std::fs::read(path).map_err(|source| ZooError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `models/zoo.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooConfig {
    /// Free text for people reading the file.
    #[serde(default)]
    pub about: String,
    pub models: Vec<ModelEntry>,
    /// The directory the config was read from; entries' `dir` are relative to it.
    #[serde(skip)]
    pub base: PathBuf,
}

/// One model of the zoo: its files (relative to `dir`) and converter options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub dir: String,
    /// Defaults to the `dataset` of `train_log`.
    #[serde(default)]
    pub dataset: Option<String>,
    pub onnx: String,
    pub calib: String,
    pub test_x: String,
    pub test_y: String,
    /// Class names, one per line, in index order.
    pub labels: String,
    #[serde(default = "default_train_log")]
    pub train_log: String,
    /// The calibration used for the published figures; the converter's
    /// default when absent. Not together with `select`.
    #[serde(default)]
    pub calibration: Option<CalibrationChoice>,
    /// Held-out samples (neither calibration nor test data): the published
    /// figures are then those of the setting `converter --select` chooses.
    #[serde(default)]
    pub select: Option<String>,
    /// Prune filters (`converter --max-size`) for every conversion of the
    /// model; the results show the same setting without pruning too.
    #[serde(default)]
    pub prune: Option<PruneChoice>,
}

/// A size to prune to, and why.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneChoice {
    /// The largest `.mq` file, as a fraction of the ONNX file.
    pub max_size_of_onnx: f64,
    pub reason: String,
}

impl PruneChoice {
    /// The `--max-size` for an ONNX file of `onnx_bytes`.
    pub fn max_bytes(&self, onnx_bytes: usize) -> usize {
        (self.max_size_of_onnx * onnx_bytes as f64).floor() as usize
    }
}

fn default_train_log() -> String {
    "train_log.json".into()
}

/// A non-default calibration, and why the default was not good enough.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationChoice {
    /// A `--calibration` value: `minmax`, `percentile` or `mse`.
    pub method: String,
    /// The `--percentile` for `percentile`.
    #[serde(default)]
    pub percentile: Option<f32>,
    pub reason: String,
}

/// The calibrations tried on a model that misses a target, so that the
/// results show whether another existing method or rounding would have met
/// it: the converter's `--select` search space.
pub fn candidates() -> Vec<Setting> {
    medq_converter::convert::search_space(medq_converter::rounding::WeightGrid::Int8)
}

impl ZooConfig {
    /// Read and validate the config, and resolve every model's dataset.
    pub fn load(path: &Path) -> Result<ZooConfig, ZooError> {
        let bad = |reason: String| ZooError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let mut config: ZooConfig =
            serde_json::from_slice(&read(path)?).map_err(|e| bad(e.to_string()))?;
        config.base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if config.models.is_empty() {
            return Err(bad("no models are listed".into()));
        }
        for (i, m) in config.models.iter().enumerate() {
            if m.name.is_empty() || config.models[..i].iter().any(|o| o.name == m.name) {
                return Err(bad(format!(
                    "model {i}: the name {:?} is empty or not unique",
                    m.name
                )));
            }
            m.calibration()
                .map_err(|e| bad(format!("{}: {e}", m.name)))?;
            if let Some(p) = &m.prune {
                if !(p.max_size_of_onnx > 0.0 && p.max_size_of_onnx < 1.0) {
                    return Err(bad(format!(
                        "{}: prune.max_size_of_onnx {} is not between 0 and 1",
                        m.name, p.max_size_of_onnx
                    )));
                }
            }
            if m.calibration.is_some() && m.select.is_some() {
                return Err(bad(format!(
                    "{}: `calibration` and `select` exclude each other (select chooses the calibration)",
                    m.name
                )));
            }
        }
        for i in 0..config.models.len() {
            if config.models[i].dataset.is_none() {
                let log = config.train_log(&config.models[i])?;
                let name = &config.models[i].name;
                let dataset = log.dataset.ok_or_else(|| {
                    bad(format!(
                        "{name}: no `dataset`, and its train log does not name one"
                    ))
                })?;
                config.models[i].dataset = Some(dataset);
            }
        }
        Ok(config)
    }

    /// The entry named `name`.
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// A file of `entry`.
    pub fn path(&self, entry: &ModelEntry, file: &str) -> PathBuf {
        self.base.join(&entry.dir).join(file)
    }

    /// The training log written next to the model by its `train.py`.
    pub fn train_log(&self, entry: &ModelEntry) -> Result<TrainLog, ZooError> {
        let path = self.path(entry, &entry.train_log);
        serde_json::from_slice(&read(&path)?).map_err(|e| ZooError::Config {
            path,
            reason: e.to_string(),
        })
    }
}

impl ModelEntry {
    /// The calibration the published figures use.
    pub fn calibration(&self) -> Result<Setting, String> {
        let mut c = Setting::default();
        let Some(choice) = &self.calibration else {
            return Ok(c);
        };
        c.method = Method::from_str(&choice.method, false).map_err(|_| {
            format!(
                "unknown calibration method {:?} (minmax, percentile or mse)",
                choice.method
            )
        })?;
        match (c.method, choice.percentile) {
            (Method::Percentile, Some(p)) if (50.0..=100.0).contains(&p) => c.percentile = p,
            (Method::Percentile, Some(p)) => {
                return Err(format!("percentile {p} is not in [50, 100]"))
            }
            (Method::Percentile, None) => {}
            (_, Some(_)) => return Err("`percentile` only applies to method percentile".into()),
            (_, None) => {}
        }
        Ok(c)
    }
}

/// What a model's `train.py` recorded (Python side: PyTorch and onnxruntime).
/// Used for the dataset name and, in tests, as an independent cross-check.
#[derive(Clone, Debug, Deserialize)]
pub struct TrainLog {
    #[serde(default)]
    pub dataset: Option<String>,
    /// PyTorch's parameter count.
    #[serde(default)]
    pub params: Option<usize>,
    #[serde(default)]
    pub accuracy: BTreeMap<String, serde_json::Value>,
}

impl TrainLog {
    /// The float accuracy onnxruntime measured on the committed test set (the
    /// one `accuracy` entry whose key mentions the onnx reference evaluator).
    pub fn onnx_reference_accuracy(&self) -> Option<f64> {
        let mut hits = self
            .accuracy
            .iter()
            .filter(|(k, _)| k.contains("onnx reference evaluator"))
            .filter_map(|(_, v)| v.as_f64());
        match (hits.next(), hits.next()) {
            (Some(a), None) => Some(a),
            _ => None,
        }
    }
}

/// One conversion's figures, taken from the converter's [`Report`].
#[derive(Clone, Debug)]
pub struct Measured {
    /// As the converter names it, e.g. `minmax + nearest` or
    /// `percentile 99.9 + gptq`.
    pub calibration: String,
    /// How many held-out samples `--select` chose `calibration` on; `None`
    /// when it was given.
    pub selected_on: Option<usize>,
    pub test_samples: usize,
    pub float_accuracy: f64,
    pub int8_accuracy: f64,
    /// Top-1 agreement of float and int8 over the test set.
    pub agreement: f64,
    /// Test samples per class, one per class name.
    pub class_counts: Vec<usize>,
    /// `None` for a class without test samples.
    pub recall_float: Vec<Option<f64>>,
    pub recall_int8: Vec<Option<f64>>,
    pub onnx_bytes: usize,
    pub mq_bytes: usize,
    pub arena_bytes: usize,
    pub macs: u64,
    /// Weights and biases of the converted (folded) graph.
    pub params: usize,
    /// Float vs int8 SQNR of the model output; `None` when bit-exact.
    pub output_sqnr_db: Option<f64>,
    /// What pruning removed, and the same setting's figures without it.
    pub pruning: Option<Pruning>,
}

/// A pruned conversion: what went, and what the same setting gave unpruned.
#[derive(Clone, Debug)]
pub struct Pruning {
    /// As the converter describes it, e.g. `a file of at most 15334 bytes`.
    pub target: String,
    pub removed: usize,
    pub prunable: usize,
    pub layers: Vec<medq_converter::prune::PrunedLayer>,
    /// The unpruned int8 model, measured in the same run.
    pub unpruned: Box<Measured>,
}

/// The class whose recall drops the most.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassDrop {
    pub class: usize,
    pub samples: usize,
    pub drop_pp: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "pass")]
    Pass,
    #[serde(rename = "fail")]
    Fail,
    /// The target does not apply (no class large enough, a small model).
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Verdict {
    fn of(pass: bool) -> Verdict {
        if pass {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "**FAIL**",
            Verdict::NotApplicable => "n/a",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    pub accuracy_drop: Verdict,
    pub class_recall_drop: Verdict,
    pub size: Verdict,
}

impl Verdicts {
    pub fn all_met(&self) -> bool {
        ![self.accuracy_drop, self.class_recall_drop, self.size].contains(&Verdict::Fail)
    }
}

impl Measured {
    fn from_report(report: &Report, classes: usize) -> Result<Measured, String> {
        let mut measured =
            Measured::from_evaluation(report, &report.evaluation, &report.totals, classes)?;
        if let Some(p) = &report.pruning {
            let u = &p.unpruned;
            measured.pruning = Some(Pruning {
                target: p.target.clone(),
                removed: p.removed,
                prunable: p.prunable,
                layers: p.layers.clone(),
                unpruned: Box::new(Measured::from_evaluation(
                    report,
                    &u.evaluation,
                    &u.totals,
                    classes,
                )?),
            });
        }
        Ok(measured)
    }

    fn from_evaluation(
        report: &Report,
        evaluation: &medq_converter::report::EvaluationReport,
        sizes: &medq_converter::report::Totals,
        classes: usize,
    ) -> Result<Measured, String> {
        let c = evaluation
            .classes
            .as_ref()
            .ok_or("the converter reported no class metrics")?;
        let output = evaluation
            .outputs
            .first()
            .ok_or("the converter reported no output")?;
        let agreement = output
            .top1_agreement
            .ok_or("the output has a single value: no top-1 agreement")?;
        // The converter sizes its class vectors by the largest label or
        // prediction seen; labels.txt is the authority on the class count.
        if c.class_counts.len() > classes {
            return Err(format!(
                "class index {} occurs in the labels or predictions, but labels.txt names {classes} classes",
                c.class_counts.len() - 1
            ));
        }
        let pad = |v: &[Option<f64>]| {
            let mut v = v.to_vec();
            v.resize(classes, None);
            v
        };
        let mut class_counts = c.class_counts.clone();
        class_counts.resize(classes, 0);
        Ok(Measured {
            calibration: format!("{} + {}", report.calibration_method, report.weight_rounding),
            selected_on: report.selection.as_ref().map(|s| s.samples),
            test_samples: evaluation.samples,
            float_accuracy: c.accuracy_float,
            int8_accuracy: c.accuracy_int8,
            agreement,
            class_counts,
            recall_float: pad(&c.per_class_recall_float),
            recall_int8: pad(&c.per_class_recall_int8),
            onnx_bytes: sizes.onnx_bytes,
            mq_bytes: sizes.mq_bytes,
            arena_bytes: sizes.arena_bytes,
            macs: sizes.macs,
            params: sizes.parameters,
            output_sqnr_db: output.sqnr_db,
            pruning: None,
        })
    }

    /// Float and int8 balanced accuracy (mean recall over the classes with
    /// test samples).
    pub fn balanced_accuracy(&self) -> (f64, f64) {
        (
            medq_converter::evaluate::balanced_accuracy(&self.recall_float),
            medq_converter::evaluate::balanced_accuracy(&self.recall_int8),
        )
    }

    /// Float minus int8 test accuracy, in percentage points (negative: int8 is better).
    pub fn accuracy_drop_pp(&self) -> f64 {
        100.0 * (self.float_accuracy - self.int8_accuracy)
    }

    /// Float minus int8 recall of `class`, in percentage points.
    pub fn recall_drop_pp(&self, class: usize) -> Option<f64> {
        let f = self.recall_float.get(class).copied().flatten()?;
        let q = self.recall_int8.get(class).copied().flatten()?;
        Some(100.0 * (f - q))
    }

    /// The largest recall drop among classes with at least `min_samples` test
    /// samples (the lowest class index on ties); `None` if no class has that many.
    pub fn worst_recall_drop(&self, min_samples: usize) -> Option<ClassDrop> {
        let mut worst: Option<ClassDrop> = None;
        for (class, &samples) in self.class_counts.iter().enumerate() {
            if samples < min_samples {
                continue;
            }
            let Some(drop_pp) = self.recall_drop_pp(class) else {
                continue;
            };
            // EPS: equal drops computed from different counts tie.
            if worst.is_none_or(|w| drop_pp > w.drop_pp + EPS) {
                worst = Some(ClassDrop {
                    class,
                    samples,
                    drop_pp,
                });
            }
        }
        worst
    }

    /// The model's parameters before pruning: the size target applies to
    /// the model as given, not to what pruning left of it.
    pub fn model_params(&self) -> usize {
        self.pruning
            .as_ref()
            .map_or(self.params, |p| p.unpruned.params)
    }

    pub fn mq_to_onnx(&self) -> f64 {
        self.mq_bytes as f64 / self.onnx_bytes.max(1) as f64
    }

    pub fn verdicts(&self, t: &Targets) -> Verdicts {
        Verdicts {
            accuracy_drop: Verdict::of(self.accuracy_drop_pp() <= t.max_accuracy_drop_pp + EPS),
            class_recall_drop: match self.worst_recall_drop(t.min_class_samples) {
                None => Verdict::NotApplicable,
                Some(w) => Verdict::of(w.drop_pp <= t.max_class_recall_drop_pp + EPS),
            },
            size: if self.model_params() >= t.size_target_min_params {
                Verdict::of(self.mq_to_onnx() <= t.max_mq_to_onnx + EPS)
            } else {
                Verdict::NotApplicable
            },
        }
    }
}

/// A model's results: the chosen calibration's, and other calibrations' for comparison.
#[derive(Clone, Debug)]
pub struct ModelResult {
    pub name: String,
    pub dataset: String,
    /// `dir/onnx`, as the config names it.
    pub onnx_file: String,
    /// Size of the ONNX file, known even when the conversion fails.
    pub onnx_bytes: Option<usize>,
    pub class_names: Vec<String>,
    /// Why the chosen calibration is not the default.
    pub calibration_reason: Option<String>,
    /// Why the model is pruned.
    pub prune_reason: Option<String>,
    /// The published figures, or why the model could not be converted.
    pub chosen: Result<Measured, String>,
    /// Other calibrations (by [`Setting::name`]): the converter default
    /// when `chosen` is another one, and every [`candidates`] entry when
    /// `chosen` misses the accuracy or class recall target. Empty when not
    /// asked for.
    pub others: Vec<(String, Result<Measured, String>)>,
}

impl ModelResult {
    /// Converted, and every applicable target met.
    pub fn passes(&self, t: &Targets) -> bool {
        self.chosen.as_ref().is_ok_and(|m| m.verdicts(t).all_met())
    }
}

/// Convert `entry` with `calibration` (or, with `None`, with the setting
/// `--select` chooses on the entry's `select` samples), pruned as the entry
/// asks, into a temporary directory and measure it.
pub fn measure(
    config: &ZooConfig,
    entry: &ModelEntry,
    calibration: Option<Setting>,
    class_count: usize,
    progress: bool,
) -> Result<Measured, String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut opts = Options::new(
        config.path(entry, &entry.onnx),
        dir.path().join(format!("{}.mq", entry.name)),
    );
    opts.calib = vec![config.path(entry, &entry.calib)];
    opts.eval = vec![config.path(entry, &entry.test_x)];
    opts.labels = Some(config.path(entry, &entry.test_y));
    opts.class_names = Some(config.path(entry, &entry.labels));
    opts.progress = progress;
    if let Some(p) = &entry.prune {
        let onnx_bytes = std::fs::metadata(&opts.model)
            .map_err(|e| format!("cannot read {}: {e}", opts.model.display()))?
            .len() as usize;
        opts.prune = Some(medq_converter::prune::Target::MaxBytes(
            p.max_bytes(onnx_bytes),
        ));
    }
    let Some(calibration) = calibration else {
        let select = entry
            .select
            .as_ref()
            .ok_or("no calibration given and no `select` samples to choose one")?;
        opts.select = vec![config.path(entry, select)];
        let report = convert(&opts).map_err(|e: ConvertError| e.to_string())?;
        return Measured::from_report(&report, class_count);
    };
    opts.method = calibration.method;
    opts.percentile = calibration.percentile;
    opts.rounding = calibration.rounding;
    let report = convert(&opts).map_err(|e: ConvertError| e.to_string())?;
    // The results label rows by `name()`; it must be what the converter ran.
    if report.calibration_method != calibration.method_name()
        || report.weight_rounding != calibration.rounding.name()
    {
        return Err(format!(
            "the converter reports \"{} + {}\" for \"{}\"",
            report.calibration_method,
            report.weight_rounding,
            calibration.name()
        ));
    }
    Measured::from_report(&report, class_count)
}

/// The converter's class names, refusing a file that names none.
pub fn read_class_names(path: &Path) -> Result<Vec<String>, String> {
    let names = medq_converter::convert::read_class_names(path).map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Err(format!("{} names no classes", path.display()));
    }
    Ok(names)
}

/// Convert and measure one model with its chosen calibration and, if
/// `compare`, with the others described at [`ModelResult::others`].
/// `on_conversion` is called with each calibration's name before it runs.
pub fn run_model(
    config: &ZooConfig,
    entry: &ModelEntry,
    compare: bool,
    progress: bool,
    mut on_conversion: impl FnMut(&str),
) -> ModelResult {
    let onnx = config.path(entry, &entry.onnx);
    let class_names = read_class_names(&config.path(entry, &entry.labels));
    // `None`: the published setting is the one `--select` chooses.
    let published = match entry.select {
        Some(_) => Ok(None),
        None => entry.calibration().map(Some),
    };
    let mut run = |c: Option<Setting>| -> Result<Measured, String> {
        on_conversion(&c.map_or_else(|| "select".into(), |c| c.name()));
        let names = class_names.as_ref().map_err(Clone::clone)?;
        measure(config, entry, c, names.len(), progress)
    };
    let mut others = Vec::new();
    let chosen = match published {
        Err(e) => Err(e),
        Ok(fixed) => {
            let chosen = run(fixed);
            if compare {
                // Calibration changes accuracy, not size.
                let missed = chosen.as_ref().is_ok_and(|m| {
                    let v = m.verdicts(&TARGETS);
                    v.accuracy_drop == Verdict::Fail || v.class_recall_drop == Verdict::Fail
                });
                let mut tried: Vec<String> = chosen.iter().map(|m| m.calibration.clone()).collect();
                let default = Setting::default();
                // Always the converter default and, for a given calibration,
                // the same with the other weight rounding.
                let other_rounding = fixed.map(Setting::other_rounding);
                let wanted = other_rounding
                    .into_iter()
                    .chain([default])
                    .chain(candidates());
                for other in wanted {
                    let always = other == default || Some(other) == other_rounding;
                    if tried.contains(&other.name()) || (!always && !missed) {
                        continue;
                    }
                    tried.push(other.name());
                    others.push((other.name(), run(Some(other))));
                }
            }
            chosen
        }
    };
    ModelResult {
        name: entry.name.clone(),
        dataset: entry.dataset.clone().unwrap_or_default(),
        onnx_file: format!("{}/{}", entry.dir, entry.onnx),
        onnx_bytes: std::fs::metadata(&onnx).ok().map(|m| m.len() as usize),
        class_names: class_names.unwrap_or_default(),
        calibration_reason: entry.calibration.as_ref().map(|c| c.reason.clone()),
        prune_reason: entry.prune.as_ref().map(|p| p.reason.clone()),
        chosen,
        others,
    }
}

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

/// The first line of an error, without the list of supported ops that an
/// unsupported-op error carries.
pub fn first_line(e: &str) -> &str {
    let line = e.lines().next().unwrap_or(e);
    match line.find(". Supported ops:") {
        Some(i) => &line[..i],
        None => line,
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
            let mut rows: Vec<(String, Result<&Measured, &String>)> = labelled.collect();
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
                            cell(first_line(e))
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

    let failed: Vec<(&ModelResult, &String)> = results
        .iter()
        .filter_map(|r| r.chosen.as_ref().err().map(|e| (r, e)))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(w, "\n## Conversion failures\n");
        for (r, e) in failed {
            let _ = writeln!(w, "### {}\n", r.name);
            let _ = writeln!(w, "`{}`:\n\n```text\n{}\n```\n", r.onnx_file, e.trim_end());
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
            error: r.chosen.as_ref().err().cloned(),
            chosen: r.chosen.as_ref().ok().map(|m| json_measured(r, m, t)),
            calibration_reason: r.calibration_reason.clone(),
            other_calibrations: r
                .others
                .iter()
                .map(|(name, run)| JsonOther {
                    calibration: run.is_err().then(|| name.clone()),
                    error: run.as_ref().err().cloned(),
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
    let mut text =
        serde_json::to_string_pretty(&doc).map_err(|e| ZooError::Write(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Write `RESULTS.md` and `results.json` into `dir`, each atomically.
pub fn write_results(dir: &Path, results: &[ModelResult], t: &Targets) -> Result<(), ZooError> {
    let json = render_json(results, t)?;
    let md = render_markdown(results, t);
    for (name, text) in [("results.json", json), ("RESULTS.md", md)] {
        medq_converter::convert::write_atomically(&dir.join(name), text.as_bytes())
            .map_err(|e| ZooError::Write(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(
        float: f64,
        int8: f64,
        counts: Vec<usize>,
        recall: Vec<(f64, f64)>,
        params: usize,
    ) -> Measured {
        Measured {
            calibration: "minmax + nearest".into(),
            selected_on: None,
            test_samples: counts.iter().sum(),
            float_accuracy: float,
            int8_accuracy: int8,
            agreement: 0.99,
            class_counts: counts,
            recall_float: recall.iter().map(|r| Some(r.0)).collect(),
            recall_int8: recall.iter().map(|r| Some(r.1)).collect(),
            onnx_bytes: 100_000,
            mq_bytes: 25_000,
            arena_bytes: 1000,
            macs: 5000,
            params,
            output_sqnr_db: Some(30.0),
            pruning: None,
        }
    }

    fn result(name: &str, chosen: Result<Measured, String>) -> ModelResult {
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
    fn a_drop_of_exactly_the_limit_passes() {
        // 5 of 1000 samples = 0.5 pp, which is not exactly representable.
        let m = measured(0.943, 0.938, vec![500, 500], vec![(0.9, 0.9); 2], 1000);
        assert_eq!(m.verdicts(&TARGETS).accuracy_drop, Verdict::Pass);
        let m = measured(0.943, 0.937, vec![500, 500], vec![(0.9, 0.9); 2], 1000);
        assert_eq!(m.verdicts(&TARGETS).accuracy_drop, Verdict::Fail);
        // int8 better than float is no drop.
        let m = measured(0.90, 0.95, vec![500, 500], vec![(0.9, 0.9); 2], 1000);
        assert_eq!(m.verdicts(&TARGETS).accuracy_drop, Verdict::Pass);
    }

    #[test]
    fn small_classes_are_not_held_to_the_recall_target() {
        let m = measured(
            0.9,
            0.9,
            vec![19, 20, 30],
            vec![(1.0, 0.5), (0.9, 0.89), (0.8, 0.795)],
            1000,
        );
        let w = m.worst_recall_drop(TARGETS.min_class_samples).unwrap();
        assert_eq!((w.class, w.samples), (1, 20));
        assert!((w.drop_pp - 1.0).abs() < 1e-9);
        assert_eq!(m.verdicts(&TARGETS).class_recall_drop, Verdict::Pass);

        let m = measured(0.9, 0.9, vec![5, 5], vec![(1.0, 0.0), (1.0, 0.0)], 1000);
        assert_eq!(m.worst_recall_drop(20), None);
        assert_eq!(
            m.verdicts(&TARGETS).class_recall_drop,
            Verdict::NotApplicable
        );

        let m = measured(0.9, 0.9, vec![40, 40], vec![(0.9, 0.875), (0.9, 0.9)], 1000);
        assert_eq!(m.verdicts(&TARGETS).class_recall_drop, Verdict::Fail);
    }

    #[test]
    fn the_size_target_applies_from_ten_thousand_parameters() {
        let mut m = measured(0.9, 0.9, vec![50], vec![(0.9, 0.9)], 9_999);
        m.mq_bytes = 90_000;
        assert_eq!(m.verdicts(&TARGETS).size, Verdict::NotApplicable);
        m.params = 10_000;
        assert_eq!(m.verdicts(&TARGETS).size, Verdict::Fail);
        m.mq_bytes = 30_000;
        assert_eq!(m.verdicts(&TARGETS).size, Verdict::Pass);
        // Pruned below 10k parameters, the model is still held to the target.
        let unpruned = m.clone();
        m.params = 7_000;
        m.pruning = Some(Pruning {
            target: "a file of at most 30000 bytes".into(),
            removed: 10,
            prunable: 40,
            layers: Vec::new(),
            unpruned: Box::new(unpruned),
        });
        assert_eq!(m.verdicts(&TARGETS).size, Verdict::Pass);
        m.mq_bytes = 31_000;
        assert_eq!(m.verdicts(&TARGETS).size, Verdict::Fail);
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
                Err("node \"x\" (op LSTM, opset 17) is not supported".into()),
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
    fn the_config_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let load = |models: &str| {
            let path = dir.path().join("zoo.json");
            std::fs::write(&path, format!("{{\"models\": [{models}]}}")).unwrap();
            ZooConfig::load(&path).map(|c| c.models.len())
        };
        let entry = |name: &str, extra: &str| {
            format!(
                "{{\"name\": \"{name}\", \"dir\": \"d\", \"dataset\": \"x\", \"onnx\": \"m.onnx\", \
                 \"calib\": \"c.npy\", \"test_x\": \"x.npy\", \"test_y\": \"y.npy\", \
                 \"labels\": \"l.txt\"{extra}}}"
            )
        };
        assert_eq!(load(&entry("a", "")).unwrap(), 1);
        let pct = r#", "calibration": {"method": "percentile", "percentile": 99.9, "reason": "r"}"#;
        assert_eq!(load(&entry("a", pct)).unwrap(), 1);

        let two = format!("{}, {}", entry("a", ""), entry("a", ""));
        assert!(load(&two).unwrap_err().to_string().contains("not unique"));
        let bad = r#", "calibration": {"method": "kl", "reason": "r"}"#;
        assert!(load(&entry("a", bad))
            .unwrap_err()
            .to_string()
            .contains("unknown calibration method"));
        let stray = r#", "calibration": {"method": "mse", "percentile": 99.0, "reason": "r"}"#;
        assert!(load(&entry("a", stray)).is_err());
        assert!(load(&entry("a", r#", "onnx_file": "typo""#)).is_err());
        assert!(load("").unwrap_err().to_string().contains("no models"));
        // No dataset and no train log to take it from.
        let no_dataset = entry("a", "").replace(r#""dataset": "x", "#, "");
        assert!(load(&no_dataset).is_err());
        let prune = r#", "prune": {"max_size_of_onnx": 0.3, "reason": "r"}"#;
        assert_eq!(load(&entry("a", prune)).unwrap(), 1);
        let too_big = r#", "prune": {"max_size_of_onnx": 1.5, "reason": "r"}"#;
        assert!(load(&entry("a", too_big))
            .unwrap_err()
            .to_string()
            .contains("not between 0 and 1"));
    }

    #[test]
    fn rounding_is_fixed_and_has_no_negative_zero() {
        assert_eq!(round(0.123456, 4), 0.1235);
        assert_eq!(round(-0.00001, 2).to_string(), "0");
        assert_eq!(pp(-0.001), "0.00");
        assert_eq!(pp(0.5), "0.50");
    }
}
