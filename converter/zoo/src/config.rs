//! `models/zoo.json`: the models, their files and their converter options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum as _;
use serde::Deserialize;

use medq_converter::calibrate::Method;
use medq_converter::convert::{Options, Setting};

use crate::ZooError;

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

    /// The config at `path` for a command given `--only` names: an error
    /// message for the command line when it cannot be read (with where to
    /// run from when the file is missing) or names a model it does not have.
    pub fn load_for_cli(path: &Path, only: &[String]) -> Result<ZooConfig, String> {
        let config = ZooConfig::load(path).map_err(|e| match path.exists() {
            true => e.to_string(),
            false => format!("{e}\nrun from the workspace root, or pass --config models/zoo.json"),
        })?;
        if let Some(unknown) = only.iter().find(|n| config.model(n).is_none()) {
            let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "--only {unknown}: no such model in {} (models: {})",
                path.display(),
                names.join(", ")
            ));
        }
        Ok(config)
    }

    /// Converter options for `entry`: its ONNX file, calibration samples,
    /// test set and labels, writing `<name>.mq` into `dir`.
    pub fn options(&self, entry: &ModelEntry, dir: &Path) -> Options {
        let mut opts = Options::new(
            self.path(entry, &entry.onnx),
            dir.join(format!("{}.mq", entry.name)),
        );
        opts.calib = vec![self.path(entry, &entry.calib)];
        opts.eval = vec![self.path(entry, &entry.test_x)];
        opts.labels = Some(self.path(entry, &entry.test_y));
        opts
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
    pub fn calibration(&self) -> Result<Setting, ZooError> {
        let mut c = Setting::default();
        let Some(choice) = &self.calibration else {
            return Ok(c);
        };
        c.method = Method::from_str(&choice.method, false)
            .map_err(|_| ZooError::UnknownCalibrationMethod(choice.method.clone()))?;
        match (c.method, choice.percentile) {
            (Method::Percentile, Some(p)) if (50.0..=100.0).contains(&p) => c.percentile = p,
            (Method::Percentile, Some(p)) => return Err(ZooError::PercentileOutOfRange(p)),
            (Method::Percentile, None) => {}
            (_, Some(_)) => return Err(ZooError::PercentileWithoutPercentileMethod),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
