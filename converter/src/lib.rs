//! `medq-converter`: ONNX → `.mq`.
//!
//! The pipeline, one module per stage:
//! [`load`] (ONNX protobuf → float [`ir`], through the op registry
//! [`ops`]) → [`rewrite`] (fold BN, fuse
//! activations, drop no-ops) → [`calibrate`] (tract float runs over samples:
//! activation ranges, and for GPTQ and pruning the weighted layers' input
//! moments) → [`prune`] (optional: remove filters, refit their readers) →
//! [`quantize`] (int8 under the numerics contract; weights through
//! [`rounding`]) → [`plan`] (one static
//! arena) → [`emit`] (the runtime's own writer) → [`evaluate`] (the medq
//! runtime on the bytes just written, against tract) → [`report`].
//!
//! [`convert()`] runs it all; the `converter` binary is a thin CLI around it.

pub mod attribution;
pub mod calibrate;
pub mod convert;
pub mod emit;
pub mod error;
pub mod evaluate;
pub mod float_eval;
pub mod float_ref;
pub mod ir;
pub mod load;
pub mod ops;
pub mod plan;
pub mod precision;
pub mod prune;
pub mod prune_weights;
pub mod quantize;
pub mod report;
pub mod rewrite;
pub mod rounding;
pub mod samples;
#[cfg(test)]
mod testing;

pub use convert::{convert, Options};
pub use error::ConvertError;

/// The converter version recorded in every file it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
