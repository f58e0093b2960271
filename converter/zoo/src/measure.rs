//! Converting a zoo model and measuring it against the quality [`TARGETS`].

use std::path::Path;

use serde::Serialize;

use medq_converter::convert::{convert, Setting};
use medq_converter::report::Report;

use crate::{candidates, ModelEntry, ZooConfig, ZooError};

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
    pub(crate) fn label(self) -> &'static str {
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
    fn from_report(report: &Report, classes: usize) -> Result<Measured, ZooError> {
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
    ) -> Result<Measured, ZooError> {
        let c = evaluation
            .classes
            .as_ref()
            .ok_or(ZooError::NoClassMetrics)?;
        let output = evaluation.outputs.first().ok_or(ZooError::NoOutput)?;
        let agreement = output.top1_agreement.ok_or(ZooError::NoTopOneAgreement)?;
        // The converter sizes its class vectors by the largest label or
        // prediction seen; labels.txt is the authority on the class count.
        if c.class_counts.len() > classes {
            return Err(ZooError::ClassCount {
                index: c.class_counts.len() - 1,
                classes,
            });
        }
        let pad = |v: &[Option<f64>]| {
            let mut v = v.to_vec();
            v.resize(classes, None);
            v
        };
        let mut class_counts = c.class_counts.clone();
        class_counts.resize(classes, 0);
        Ok(Measured {
            calibration: format!(
                "{} + {}{}",
                report.calibration_method,
                report.weight_rounding,
                match report.selection.as_ref().and_then(|s| s.equalization) {
                    Some(e) if e.every_pair => " + every pair equalized",
                    _ => "",
                }
            ),
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
#[derive(Debug)]
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
    pub chosen: Result<Measured, ZooError>,
    /// Other calibrations (by [`Setting::name`]): the converter default
    /// when `chosen` is another one, and every [`candidates`] entry when
    /// `chosen` misses the accuracy or class recall target. Empty when not
    /// asked for.
    pub others: Vec<(String, Result<Measured, ZooError>)>,
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
) -> Result<Measured, ZooError> {
    let dir = tempfile::tempdir().map_err(ZooError::TempDir)?;
    let mut opts = config.options(entry, dir.path());
    opts.class_names = Some(config.path(entry, &entry.labels));
    opts.progress = progress;
    if let Some(p) = &entry.prune {
        let onnx_bytes = std::fs::metadata(&opts.model)
            .map_err(|source| ZooError::Io {
                path: opts.model.clone(),
                source,
            })?
            .len() as usize;
        opts.prune = Some(medq_converter::prune::Target::MaxBytes(
            p.max_bytes(onnx_bytes),
        ));
    }
    let Some(calibration) = calibration else {
        let select = entry.select.as_ref().ok_or(ZooError::NoCalibration)?;
        opts.select = vec![config.path(entry, select)];
        let report = convert(&opts)?;
        return Measured::from_report(&report, class_count);
    };
    opts.method = calibration.method;
    opts.percentile = calibration.percentile;
    opts.rounding = calibration.rounding;
    let report = convert(&opts)?;
    // The results label rows by `name()`; it must be what the converter ran.
    if report.calibration_method != calibration.method_name()
        || report.weight_rounding != calibration.rounding.name()
    {
        return Err(ZooError::SettingMismatch {
            reported: format!("{} + {}", report.calibration_method, report.weight_rounding),
            asked: calibration.name(),
        });
    }
    Measured::from_report(&report, class_count)
}

/// The converter's class names, refusing a file that names none.
pub fn read_class_names(path: &Path) -> Result<Vec<String>, ZooError> {
    let names = medq_converter::convert::read_class_names(path)?;
    if names.is_empty() {
        return Err(ZooError::NoClasses {
            path: path.to_path_buf(),
        });
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
    let labels = config.path(entry, &entry.labels);
    let class_names = read_class_names(&labels);
    // `None`: the published setting is the one `--select` chooses.
    let published = match entry.select {
        Some(_) => Ok(None),
        None => entry.calibration().map(Some),
    };
    let mut run = |c: Option<Setting>| -> Result<Measured, ZooError> {
        on_conversion(&c.map_or_else(|| "select".into(), |c| c.name()));
        // Without class names every conversion fails with their error; it
        // is not `Clone`, so each one reads the file again for its own.
        let classes = match &class_names {
            Ok(names) => names.len(),
            Err(_) => read_class_names(&labels)?.len(),
        };
        measure(config, entry, c, classes, progress)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn measured(
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
}
