//! The side-by-side benchmark of medq against tract (and, from
//! `ort_compare.py`, onnxruntime): `benches/run.sh` drives it and writes
//! `benches/RESULTS.md` and `benches/results.json`.
//!
//! - [`engine`]: one inference of medq or of tract, through their public
//!   APIs only, on the same model and the same sample.
//! - [`timing`]: interleaved rounds, min and median per inference.
//! - [`results`]: the results file and its Markdown rendering.
//! - [`icount`]: reads the Cortex-M4 QEMU `icount` output.
//! - `prepare` (feature `host`): converts the zoo with the converter.
//!
//! The criterion benchmark in `benches/inference.rs` (`cargo bench -p
//! medq-benches`) is a quick look at one model.

pub mod engine;
pub mod icount;
#[cfg(feature = "host")]
pub mod prepare;
pub mod results;
pub mod timing;
