//! What can go wrong in the zoo.

use std::path::PathBuf;

use medq_converter::ConvertError;

/// Why the zoo, one of its models or one sweep run could not be run.
///
/// A model that fails keeps its error in its [`ModelResult`](crate::ModelResult)
/// (a sweep run in its [`Row`](crate::sweep::Row)), and the message is written
/// to `RESULTS.md`, `results.json` and `SWEEP.md`: rewording one changes those
/// files.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// A file the zoo reads itself (the converter's own reads fail as
    /// [`ZooError::Convert`]).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `zoo.json` or a model's train log is not what the zoo expects.
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    /// A `calibration` entry names a method the converter does not have.
    #[error("unknown calibration method {0:?} (minmax, percentile or mse)")]
    UnknownCalibrationMethod(String),

    /// A `calibration` entry's `percentile` is outside [50, 100].
    #[error("percentile {0} is not in [50, 100]")]
    PercentileOutOfRange(f32),

    /// A `calibration` entry gives a `percentile` to another method.
    #[error("`percentile` only applies to method percentile")]
    PercentileWithoutPercentileMethod,

    /// A conversion asked for neither a calibration nor the `select` samples
    /// to choose one on.
    #[error("no calibration given and no `select` samples to choose one")]
    NoCalibration,

    /// A model's class names file names no class.
    #[error("{} names no classes", path.display())]
    NoClasses { path: PathBuf },

    /// The temporary directory a conversion writes its `.mq` file into.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),

    /// The converter refused the model or failed on it.
    #[error(transparent)]
    Convert(#[from] ConvertError),

    /// The converter's report has no class metrics (no labels were evaluated).
    #[error("the converter reported no class metrics")]
    NoClassMetrics,

    /// The converter's report has no output.
    #[error("the converter reported no output")]
    NoOutput,

    /// The model's output is a single value: there is no top-1 to agree on.
    #[error("the output has a single value: no top-1 agreement")]
    NoTopOneAgreement,

    /// The labels or predictions have more classes than the class names file.
    #[error(
        "class index {index} occurs in the labels or predictions, but labels.txt names {classes} classes"
    )]
    ClassCount { index: usize, classes: usize },

    /// The converter ran another setting than the one asked for (the results
    /// label rows by the setting's name).
    #[error("the converter reports \"{reported}\" for \"{asked}\"")]
    SettingMismatch { reported: String, asked: String },

    /// A sweep chart could not be drawn.
    #[error("{file}: {source}")]
    Chart {
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// `results.json` could not be serialized.
    #[error("cannot write the results: {0}")]
    Json(#[source] serde_json::Error),

    /// A results file could not be written.
    #[error("cannot write the results: {0}")]
    Write(#[source] ConvertError),
}
