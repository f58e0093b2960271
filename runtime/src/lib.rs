//! `medq`: a `no_std`, allocation-free runtime for int8-quantized models in
//! the `.mq` format.
//!
//! A `.mq` file (see `FORMAT.md`) holds a topologically ordered graph of
//! int8 ops, its constants and a precomputed arena plan. [`Model::parse`]
//! validates the whole file once, in place; an [`Interpreter`] then runs it
//! in a caller-provided arena with the fixed-point reference [`kernels`],
//! bit-exact with the converter's simulation.
//!
//! ```
//! use medq::{Interpreter, Model, OpCode, QuantSpec, Writer};
//!
//! // A one-op model: y = table[x + 128] with a table that negates.
//! let mut w = Writer::new();
//! let q = || QuantSpec::PerTensor { scale: 0.5, zero_point: 0 };
//! let x = w.add_activation("x", &[1, 4], q(), 0);
//! let table: Vec<i8> = (-128..=127).map(|v: i32| (-v).clamp(-128, 127) as i8).collect();
//! let t = w.add_constant_i8("negate", &[256], QuantSpec::None, &table);
//! let y = w.add_activation("y", &[1, 4], q(), 4);
//! w.add_op(OpCode::Lut, &[x, t], &[y], &[]);
//! w.set_inputs(&[x]);
//! w.set_outputs(&[y]);
//! w.set_arena_len(8);
//! let bytes = w.finish()?;
//!
//! // Parsing needs a 4-aligned buffer: on a device, `include_model!`.
//! let file = medq::ModelFile::from_bytes(&bytes);
//! let model = file.model()?;
//! let mut arena = [0u8; 8];
//! let mut plan = [medq::PreparedOp::EMPTY; 1]; // one per op
//! let mut interp = Interpreter::new(&model, &mut arena, &mut plan)?;
//! interp.input_mut(0)?.copy_from_slice(&[1, -2, 127, -128]);
//! interp.invoke()?;
//! assert_eq!(interp.output(0)?, &[-1, 2, -127, 127]);
//! # Ok::<(), medq::Error>(())
//! ```
//!
//! Features: `std` (default) adds [`Writer`], [`ModelFile`] and
//! `std::error::Error` impls; `defmt` derives `defmt::Format` on the public
//! types. `all-ops` (default) builds every kernel; firmware can instead name
//! the ones its models use (`op-conv`, `op-fully-connected`, `op-add`,
//! `op-mul`, `op-lut`, `op-max-pool`, `op-avg-pool`, `op-softmax`,
//! `op-concat`, `op-pad`, `op-reshape`) and [`Model::parse`] refuses other
//! ops with [`Error::OpNotBuiltIn`]. `error-reasons` (default) keeps the
//! text of each validation rule in the errors; without it they are empty
//! and the checks stay. `verify` adds `Model::parse_verified`, which checks
//! a file's Ed25519 signature (and, with `std`, `sign`).
//! `saturation-counters` counts, after each op, its
//! int8 outputs at −128 or 127 (`Interpreter::saturated`); without it the
//! counting is compiled out. `int16-activations` (in `all-ops`) lets some
//! layers run on int16 activations with int8 weights (`FORMAT.md` § Int16
//! activations, `NUMERICS.md` §5; op `Requantize` with `op-requantize`);
//! without it such a model is refused on load.
//!
//! Input guards: [`Interpreter::set_input_f32`] quantizes float inputs,
//! refusing NaN and infinities and counting values clipped to the input's
//! calibrated range; [`Interpreter::decision`] applies the file's abstain
//! rule ([`decision`]).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "std")]
extern crate std;

// Files are read in place (i32 constants, f32 scales, u16 indices), so the
// target's byte order must be the file's.
#[cfg(target_endian = "big")]
compile_error!("medq reads .mq files in place and supports little-endian targets only");

/// The text of a validation rule, kept only with feature `error-reasons`
/// (like TFLite Micro's `TF_LITE_STRIP_ERROR_STRINGS`, inverted so that
/// features stay additive): firmware short of flash drops the strings and
/// keeps every check.
#[cfg(feature = "error-reasons")]
macro_rules! why {
    ($reason:literal) => {
        $reason
    };
}
#[cfg(not(feature = "error-reasons"))]
macro_rules! why {
    ($reason:literal) => {
        ""
    };
}

pub mod decision;
pub mod error;
#[cfg(feature = "std")]
pub mod file;
pub mod format;
pub mod interpreter;
pub mod kernels;
pub mod numerics;
pub mod ops;
pub mod pow2;
pub mod quant;
pub mod sparse;

pub use decision::Decision;
pub use error::Error;
#[cfg(feature = "std")]
pub use file::{AlignedBuf, LoadError, MappedModel, ModelFile};
pub use format::layout::{DType, MetaKey, OpCode, QuantKind, SectionId, Storage};
#[cfg(all(feature = "std", feature = "verify"))]
pub use format::signature::sign;
#[cfg(feature = "verify")]
pub use format::signature::PublicKey;
#[cfg(feature = "std")]
pub use format::writer::{
    pow2_stored_len, sparse_pow2_stored_len, sparse_pow2x3_stored_len, sparse_stored_len,
    QuantSpec, Writer,
};
pub use format::{peek_arena_len, peek_op_count, Model, OpInfo, Quant, TensorInfo};
pub use interpreter::{InputReport, Interpreter};
pub use ops::{is_built_in, PreparedOp};
pub use pow2::Pow2Rows;
pub use sparse::{SparsePow2Rows, SparsePow2x3Rows, SparseRows};

/// Embeds a `.mq` file like `include_bytes!`, but 16-byte aligned, as
/// [`Model::parse`] needs. The path is relative to the invoking file, and the
/// result is a `&'static [u8]` usable in `static` and `const` items, e.g. to
/// size the arena at compile time with [`peek_arena_len`]:
///
/// ```
/// // Firmware writes `include_model!("../model/ecg.mq")`; any file shows the alignment.
/// static MODEL: &[u8] = medq::include_model!("lib.rs");
/// assert_eq!(MODEL.as_ptr() as usize % 16, 0);
/// const ARENA_LEN: usize = match medq::peek_arena_len(MODEL) {
///     Some(n) => n,
///     None => 0, // firmware: `None => panic!("not a .mq file")`, a build error
/// };
/// ```
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        #[repr(C, align(16))]
        struct __MedqAligned<T: ?Sized>(T);
        const __MEDQ_MODEL: &__MedqAligned<[u8]> = &__MedqAligned(*include_bytes!($path));
        &__MEDQ_MODEL.0
    }};
}
