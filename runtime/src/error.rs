//! The one error type of the runtime: what went wrong while validating a
//! `.mq` file or setting up an interpreter.
#![forbid(unsafe_code)]

use core::fmt;

use crate::format::layout::{OpCode, SectionId};

/// Why a model file was refused, or why a call could not be served.
///
/// Every variant is small and `Copy`, so the type works without an allocator
/// and can be logged over `defmt`. The `reason` strings name the rule that
/// failed, for humans; match on the variant, not on the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header or than the file length the header declares.
    Truncated,
    /// The buffer is longer than the file length the header declares.
    TrailingBytes,
    /// The file does not start with `MEDQ`.
    BadMagic,
    /// The file was written for a format version this runtime does not read.
    UnsupportedVersion(u16),
    /// A header field other than magic, version and length is wrong (header
    /// length, flags, reserved bytes).
    BadHeader,
    /// The CRC-32 of the file does not match the stored one.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The buffer does not start on a [`BUFFER_ALIGN`](crate::format::layout::BUFFER_ALIGN)
    /// boundary. Embed files with [`include_model!`](crate::include_model) or
    /// load them with `ModelFile` to get an aligned buffer.
    Misaligned,
    /// The section table lists more than [`MAX_SECTIONS`](crate::format::layout::MAX_SECTIONS)
    /// sections, or does not fit in the file, or has a non-zero reserved field.
    BadSectionTable,
    /// The section table names a section id this version does not know.
    UnknownSection(u32),
    /// A section appears twice in the section table.
    DuplicateSection(SectionId),
    /// A section the operation needs is absent (a required one on load; the
    /// optional golden section for a self-test).
    MissingSection(SectionId),
    /// A section is misaligned, reaches outside the file, or overlaps the
    /// header, the section table or another section.
    SectionOutOfBounds(SectionId),
    /// A section's length does not fit its contents (not a whole number of
    /// records, or not the length its own counts imply).
    BadSectionLength(SectionId),
    /// A string reference reaches outside the Strings section or is not UTF-8.
    BadString,
    /// A metadata record is malformed, a known key appears twice, or a known
    /// key's value is not in its form (an abstain margin that is not `0.`
    /// and 1 to 6 digits, not all zero).
    BadMetadata,
    /// A tensor record breaks a rule.
    BadTensor { index: u16, reason: &'static str },
    /// An op record breaks a rule, or its operands do not fit its kernel.
    BadOp { index: u16, reason: &'static str },
    /// Op `index` is valid but its kernel was left out of this build (the
    /// runtime's `op-*` cargo features choose the kernels; `all-ops` is default).
    OpNotBuiltIn { index: u16, opcode: OpCode },
    /// The graph inputs/outputs break a rule (not activations, duplicated,
    /// produced by an op, ...).
    BadGraph(&'static str),
    /// Op `op` reads an activation that no earlier op produced and that is
    /// not a graph input, or writes one that is already defined.
    NotTopological { op: u16 },
    /// Activations `a` and `b` are alive at the same time and share arena bytes.
    PlanOverlap { a: u16, b: u16 },
    /// The golden self-test section does not match the graph's first input/output.
    BadGolden,
    /// A signed model was required and the file has no Signature section.
    NotSigned,
    /// The public key given to `Model::parse_verified` is not a valid
    /// Ed25519 key.
    BadPublicKey,
    /// The signature does not match the file and the key: the file was
    /// changed after signing, or signed with another key.
    SignatureMismatch,
    /// The arena handed to the interpreter is smaller than the model needs.
    ArenaTooSmall { needed: usize, got: usize },
    /// The memory handed to the interpreter for its prepared ops has fewer
    /// entries than the model has ops.
    PlanTooSmall { needed: usize, got: usize },
    /// A tensor, op, input or output index is past the end.
    IndexOutOfRange,
    /// Two slices that must have equal lengths do not.
    LengthMismatch { expected: usize, got: usize },
    /// A float input value at `index` is NaN or infinite (refused before
    /// anything was written into the input).
    NonFiniteInput { index: usize },
    /// A graph port was read as another element type than it has (an
    /// int16 output through `Interpreter::output`, say). A unit variant:
    /// fields would bring `DType`'s formatting into every firmware.
    WrongDType,
    /// The model exceeds a limit of the format (u16 tensor ids, u32 sizes,
    /// rank, op arity). Only the writer returns this.
    LimitExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated => f.write_str("model file is truncated"),
            Error::TrailingBytes => f.write_str("model buffer is longer than the file length in its header"),
            Error::BadMagic => f.write_str("not a .mq model file (bad magic)"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "unsupported .mq format version {v} (this runtime reads version {})",
                crate::format::layout::FORMAT_VERSION
            ),
            Error::BadHeader => f.write_str("bad header (length, flags or reserved bytes)"),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::Misaligned => write!(
                f,
                "model buffer is not {}-byte aligned",
                crate::format::layout::BUFFER_ALIGN
            ),
            Error::BadSectionTable => f.write_str("bad section table"),
            Error::UnknownSection(id) => write!(f, "unknown section id {id}"),
            Error::DuplicateSection(id) => write!(f, "section {id:?} appears twice"),
            Error::MissingSection(id) => write!(f, "section {id:?} is missing"),
            Error::SectionOutOfBounds(id) => {
                write!(f, "section {id:?} is misaligned, out of bounds or overlapping")
            }
            Error::BadSectionLength(id) => write!(f, "section {id:?} has a bad length"),
            Error::BadString => f.write_str("string reference out of bounds or not UTF-8"),
            Error::BadMetadata => f.write_str("bad metadata record"),
            Error::BadTensor { index, reason } => write!(f, "tensor {index}: {reason}"),
            Error::BadOp { index, reason } => write!(f, "op {index}: {reason}"),
            Error::OpNotBuiltIn { index, opcode } => write!(
                f,
                "op {index}: {opcode:?} is not built into this runtime (enable its `op-*` cargo feature)"
            ),
            Error::BadGraph(reason) => write!(f, "graph: {reason}"),
            Error::NotTopological { op } => write!(
                f,
                "op {op} reads an undefined activation or redefines one (ops not in topological order?)"
            ),
            Error::PlanOverlap { a, b } => write!(
                f,
                "arena plan: tensors {a} and {b} are alive together and share bytes"
            ),
            Error::BadGolden => f.write_str("golden self-test section does not match the graph"),
            Error::NotSigned => f.write_str("model file is not signed"),
            Error::BadPublicKey => f.write_str("the public key is not a valid Ed25519 key"),
            Error::SignatureMismatch => f.write_str(
                "signature does not match: the file was changed after signing, or signed with another key",
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: model needs {needed} bytes, got {got}")
            }
            Error::PlanTooSmall { needed, got } => write!(
                f,
                "plan too small: model has {needed} ops, the plan holds {got}"
            ),
            Error::IndexOutOfRange => f.write_str("index out of range"),
            Error::LengthMismatch { expected, got } => {
                write!(f, "length mismatch: expected {expected}, got {got}")
            }
            Error::NonFiniteInput { index } => {
                write!(f, "input value {index} is NaN or infinite; inputs must be finite")
            }
            // Short: this text is in every firmware that prints errors.
            Error::WrongDType => f.write_str("port read as another type"),
            Error::LimitExceeded => f.write_str("model exceeds a limit of the .mq format"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
