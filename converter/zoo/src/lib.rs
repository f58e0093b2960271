//! `medq-zoo`: the model zoo's harness, kept apart from the converter it
//! measures. Convert every model listed in `models/zoo.json`
//! with [`convert()`](medq_converter::convert()), measure the `.mq` bytes it wrote with
//! the medq runtime against tract on the model's committed test set, and hold
//! the figures to the product's quality [`TARGETS`].
//!
//! The `zoo-results` binary renders [`ModelResult`]s as `models/RESULTS.md`
//! and `models/results.json`; `converter/zoo/tests/zoo.rs` asserts the targets on
//! the same results. Nothing here computes a metric itself: accuracy, recall,
//! agreement, SQNR and sizes are the converter's own
//! [`Report`](medq_converter::report::Report).
//!
//! [`ZooConfig`] reads `models/zoo.json`; [`run_model`] converts and
//! measures one model ([`measure`] one conversion); [`render_markdown`],
//! [`render_json`] and [`write_results`] write the results; [`sweep`] is the
//! compression sweep (`zoo-sweep`).

mod config;
mod error;
pub mod m4;
mod measure;
mod results;
pub mod sweep;

pub use config::{candidates, CalibrationChoice, ModelEntry, PruneChoice, TrainLog, ZooConfig};
pub use error::ZooError;
pub use measure::{
    measure, read_class_names, run_model, ClassDrop, Measured, ModelResult, Pruning, Targets,
    Verdict, Verdicts, TARGETS,
};
pub use results::{first_line, render_json, render_markdown, write_results, COMMAND};
