//! The zero-copy reader: [`Model::parse`] validates a whole `.mq` file once, so
//! that nothing read from it later can be out of range or inconsistent.
#![forbid(unsafe_code)]

use core::fmt;

use super::layout::{
    header, meta_record, op_record, section_entry, tensor_record, DType, MetaKey, OpCode,
    QuantKind, SectionId, Storage, BUFFER_ALIGN, FORMAT_VERSION, GOLDEN_HEADER_LEN, HEADER_LEN,
    MAGIC, MAX_RANK, MAX_SECTIONS, META_RECORD_LEN, OP_RECORD_LEN, SECTION_ALIGN,
    SECTION_ENTRY_LEN, SIGNATURE_LEN, TENSOR_RECORD_LEN,
};
use crate::decision::Decision;
use crate::error::Error;
use crate::pow2::Pow2Rows;
use crate::sparse::{
    NonZeros, Pow2NonZeros, Pow2x3NonZeros, SparsePow2Rows, SparsePow2x3Rows, SparseRows,
    SparseRowsOf,
};

// Sizes read from the file are u32; the reader widens them to usize.
const _: () = assert!(usize::BITS >= 32);

/// Reads `N` bytes at `off`, `None` past the end.
fn chunk<const N: usize>(bytes: &[u8], off: usize) -> Option<[u8; N]> {
    bytes.get(off..)?.first_chunk::<N>().copied()
}

fn u16_at(bytes: &[u8], off: usize) -> Option<u16> {
    chunk(bytes, off).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    chunk(bytes, off).map(u32::from_le_bytes)
}

/// A fixed-length record. Records are sliced at their exact length and the
/// field offsets are layout constants, so a read cannot miss; answering 0
/// instead of panicking keeps the accessors total anyway.
#[derive(Clone, Copy)]
struct Rec<'r>(&'r [u8]);

impl Rec<'_> {
    fn u8(self, off: usize) -> u8 {
        self.0.get(off).copied().unwrap_or(0)
    }
    fn u16(self, off: usize) -> u16 {
        u16_at(self.0, off).unwrap_or(0)
    }
    fn u32(self, off: usize) -> u32 {
        u32_at(self.0, off).unwrap_or(0)
    }
    fn usize(self, off: usize) -> usize {
        self.u32(off) as usize
    }
    fn i32(self, off: usize) -> i32 {
        chunk(self.0, off).map(i32::from_le_bytes).unwrap_or(0)
    }
}

/// The header's own checks, on its first [`HEADER_LEN`] bytes of a file of
/// `file_len` bytes: magic, format version, and the length the header
/// declares. A host reads this much before reading (or allocating for) the
/// rest, so a large file that is not a `.mq` of this version is refused at
/// once.
pub fn check_header(head: &[u8], file_len: usize) -> Result<(), Error> {
    let head = Rec(head.get(..HEADER_LEN).ok_or(Error::Truncated)?);
    if chunk::<4>(head.0, header::MAGIC) != Some(MAGIC) {
        return Err(Error::BadMagic);
    }
    let version = head.u16(header::VERSION);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let declared = head.usize(header::FILE_LEN);
    if file_len < declared {
        return Err(Error::Truncated);
    }
    if file_len > declared {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

/// Reads the arena size a model needs straight from its header, in a `const`
/// context, so firmware can size a static arena at compile time:
///
/// ```
/// # const MODEL: &[u8] = &[0; 0];
/// const ARENA_LEN: usize = match medq::peek_arena_len(MODEL) {
///     Some(n) => n,
///     None => 0, // firmware would `panic!("not a .mq file")` here
/// };
/// static ARENA: [u8; ARENA_LEN] = [0; ARENA_LEN];
/// ```
///
/// Only the magic and the file length are checked; [`Model::parse`] still
/// validates the whole file at run time.
pub const fn peek_arena_len(bytes: &[u8]) -> Option<usize> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        return None;
    };
    if head[header::MAGIC] != MAGIC[0]
        || head[header::MAGIC + 1] != MAGIC[1]
        || head[header::MAGIC + 2] != MAGIC[2]
        || head[header::MAGIC + 3] != MAGIC[3]
    {
        return None;
    }
    let file_len = u32::from_le_bytes([
        head[header::FILE_LEN],
        head[header::FILE_LEN + 1],
        head[header::FILE_LEN + 2],
        head[header::FILE_LEN + 3],
    ]);
    if file_len as usize != bytes.len() {
        return None;
    }
    let arena = u32::from_le_bytes([
        head[header::ARENA_LEN],
        head[header::ARENA_LEN + 1],
        head[header::ARENA_LEN + 2],
        head[header::ARENA_LEN + 3],
    ]);
    Some(arena as usize)
}

/// Reads the number of ops of a model from its section table, in a `const`
/// context, so firmware can size the memory for its prepared ops
/// ([`PreparedOp`](crate::PreparedOp)) at compile time, like the arena with
/// [`peek_arena_len`]:
///
/// ```
/// # const MODEL: &[u8] = &[0; 0];
/// const OPS: usize = match medq::peek_op_count(MODEL) {
///     Some(n) => n,
///     None => 0, // firmware would `panic!("not a .mq file")` here
/// };
/// static PLAN: [medq::PreparedOp<'static>; OPS] = [medq::PreparedOp::EMPTY; OPS];
/// ```
///
/// `None` unless the magic, the file length and the Ops section entry read
/// back; [`Model::parse`] still validates the whole file at run time.
pub const fn peek_op_count(bytes: &[u8]) -> Option<usize> {
    if peek_arena_len(bytes).is_none() {
        return None;
    }
    let count = u16_le(bytes, header::SECTION_COUNT) as usize;
    let mut i = 0;
    while i < count && i < MAX_SECTIONS {
        let entry = HEADER_LEN + i * SECTION_ENTRY_LEN;
        if entry + SECTION_ENTRY_LEN > bytes.len() {
            return None;
        }
        if u32_le(bytes, entry + section_entry::ID) == SectionId::Ops as u32 {
            let len = u32_le(bytes, entry + section_entry::LEN) as usize;
            return Some(len / OP_RECORD_LEN);
        }
        i += 1;
    }
    None
}

/// `const` little-endian reads for the peek functions; `off + 2` (`+ 4`)
/// must be in bounds.
const fn u16_le(bytes: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([bytes[off], bytes[off + 1]])
}
const fn u32_le(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
}

/// How a tensor's integers map to real numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Quant<'a> {
    /// Plain integers (biases, multipliers, shifts, tables).
    None,
    /// `real = scale · (q − zero_point)`.
    PerTensor { scale: f32, zero_point: i32 },
    /// `real = scales[c] · q` along `axis`, one scale per index of that axis.
    PerChannel { axis: u8, scales: &'a [f32] },
}

impl Quant<'_> {
    pub fn kind(&self) -> QuantKind {
        match self {
            Quant::None => QuantKind::None,
            Quant::PerTensor { .. } => QuantKind::PerTensor,
            Quant::PerChannel { .. } => QuantKind::PerChannel,
        }
    }
}

/// One validated tensor record.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorInfo<'a> {
    pub index: u16,
    pub name: &'a str,
    pub dtype: DType,
    pub storage: Storage,
    /// Byte offset into the arena ([`Storage::Arena`]) or into the Weights
    /// section (constants).
    pub offset: usize,
    /// Byte length: element count × dtype size, or for
    /// [`Storage::SparseConstant`] the bytes stored.
    pub len: usize,
    pub quant: Quant<'a>,
    rank: u8,
    dims: [u32; MAX_RANK],
    /// The bytes of a constant; empty for activations.
    data: &'a [u8],
}

impl<'a> TensorInfo<'a> {
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    /// The shape, `rank()` entries, each at least 1.
    pub fn dims(&self) -> &[u32] {
        self.dims.get(..self.rank()).unwrap_or(&[])
    }

    /// Number of elements (1 for rank 0).
    pub fn numel(&self) -> usize {
        self.dims().iter().map(|&d| d as usize).product()
    }

    /// `(scale, zero_point)` of a per-tensor quantized tensor.
    pub fn scale_zero_point(&self) -> Option<(f32, i32)> {
        match self.quant {
            Quant::PerTensor { scale, zero_point } => Some((scale, zero_point)),
            _ => None,
        }
    }

    /// The raw bytes of a dense constant; `None` for activations and packed
    /// (sparse, power-of-two) constants.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self.storage {
            Storage::Constant => Some(self.data),
            Storage::Arena
            | Storage::SparseConstant
            | Storage::Pow2Constant
            | Storage::SparsePow2Constant
            | Storage::SparsePow2x3Constant => None,
        }
    }

    /// The rows of an `i8` constant stored sparse (validated on load).
    pub fn sparse_i8(&self) -> Option<SparseRows<'a>> {
        match self.storage {
            Storage::SparseConstant => sparse_rows(self.data, self.dims()),
            Storage::Arena
            | Storage::Constant
            | Storage::Pow2Constant
            | Storage::SparsePow2Constant
            | Storage::SparsePow2x3Constant => None,
        }
    }

    /// The rows of an `i8` constant stored sparse with power-of-two codes
    /// (validated on load).
    pub fn sparse_pow2_i8(&self) -> Option<SparsePow2Rows<'a>> {
        match self.storage {
            Storage::SparsePow2Constant => sparse_rows(self.data, self.dims()),
            Storage::Arena
            | Storage::Constant
            | Storage::SparseConstant
            | Storage::Pow2Constant
            | Storage::SparsePow2x3Constant => None,
        }
    }

    /// The rows of an `i8` constant stored sparse with 3-bit power-of-two
    /// codes (validated on load).
    pub fn sparse_pow2x3_i8(&self) -> Option<SparsePow2x3Rows<'a>> {
        match self.storage {
            Storage::SparsePow2x3Constant => sparse_rows(self.data, self.dims()),
            Storage::Arena
            | Storage::Constant
            | Storage::SparseConstant
            | Storage::Pow2Constant
            | Storage::SparsePow2Constant => None,
        }
    }

    /// The rows of an `i8` constant stored as power-of-two codes (validated
    /// on load).
    pub fn pow2_i8(&self) -> Option<Pow2Rows<'a>> {
        match self.storage {
            Storage::Pow2Constant => pow2_rows(self.data, self.dims()),
            Storage::Arena
            | Storage::Constant
            | Storage::SparseConstant
            | Storage::SparsePow2Constant
            | Storage::SparsePow2x3Constant => None,
        }
    }

    /// The values of an `i8` constant.
    pub fn data_i8(&self) -> Option<&'a [i8]> {
        match self.dtype {
            DType::I8 => self.data().map(bytemuck::cast_slice),
            _ => None,
        }
    }

    /// The values of an `i16` constant, read in place.
    pub fn data_i16(&self) -> Option<&'a [i16]> {
        match self.dtype {
            DType::I16 => self.data().and_then(|d| bytemuck::try_cast_slice(d).ok()),
            _ => None,
        }
    }

    /// The values of an `i32` constant, read in place.
    pub fn data_i32(&self) -> Option<&'a [i32]> {
        match self.dtype {
            DType::I32 => self.data().and_then(|d| bytemuck::try_cast_slice(d).ok()),
            _ => None,
        }
    }

    /// The shape widened to `usize`, padded with zeros.
    pub(crate) fn dims_usize(&self) -> [usize; MAX_RANK] {
        self.dims.map(|d| d as usize)
    }
}

/// One validated op record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpInfo<'a> {
    pub index: u16,
    pub opcode: OpCode,
    /// Tensor indices, in the order the op's table in `FORMAT.md` gives.
    pub inputs: &'a [u16],
    /// Tensor indices; every v1 op has exactly one output.
    pub outputs: &'a [u16],
    /// The op's parameter words (see [`params`](super::layout::params)).
    pub params: &'a [i32],
}

impl OpInfo<'_> {
    /// Whether tensor `t` is this op's input `at` and the op is one whose
    /// weights may be stored packed (Conv, FullyConnected: input 1).
    fn reads_weights_at(&self, t: u16, at: usize) -> bool {
        matches!(self.opcode, OpCode::Conv | OpCode::FullyConnected)
            && self.inputs.get(at) == Some(&t)
            && self.inputs.iter().filter(|&&i| i == t).count() == 1
    }

    /// The op's (single) output tensor.
    pub fn output(&self) -> Option<u16> {
        self.outputs.first().copied()
    }
}

/// A validated `.mq` model, borrowing the file's bytes.
///
/// Built only by [`Model::parse`], which checks every rule of `FORMAT.md`;
/// so every accessor answers in bounds and an [`Interpreter`](crate::Interpreter)
/// over it cannot fail or panic while running.
#[derive(Clone, Copy)]
pub struct Model<'a> {
    bytes: &'a [u8],
    version: u16,
    crc32: u32,
    arena_len: usize,
    tensors: &'a [u8],
    ops: &'a [u8],
    op_io: &'a [u16],
    params: &'a [i32],
    weights: &'a [u8],
    inputs: &'a [u16],
    outputs: &'a [u16],
    strings: &'a [u8],
    metadata: &'a [u8],
    golden: Option<(&'a [i8], &'a [i8])>,
    signature: Option<&'a [u8; SIGNATURE_LEN]>,
}

impl fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("len", &self.bytes.len())
            .field("version", &self.version)
            .field("crc32", &format_args!("{:#010x}", self.crc32))
            .field("arena_len", &self.arena_len)
            .field("tensors", &self.tensor_count())
            .field("ops", &self.op_count())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Model<'_> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "Model {{ len: {}, version: {}, crc32: {=u32:#x}, arena_len: {}, tensors: {}, ops: {} }}",
            self.bytes.len(),
            self.version,
            self.crc32,
            self.arena_len,
            self.tensor_count(),
            self.op_count()
        )
    }
}

/// The byte range of each section, indexed by `SectionId as usize - 1`.
pub(crate) type SectionRanges = [Option<(usize, usize)>; SectionId::ALL.len()];

impl<'a> Model<'a> {
    /// The first step of [`Model::parse`]: header, CRC, sections, tensor
    /// records and graph inputs/outputs. Then `crate::ops` checks each op
    /// against its kernel and [`validate_op_order`](Self::validate_op_order),
    /// and last [`validate_graph`](Self::validate_graph).
    pub(crate) fn parse_layout(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        let ranges = checked_sections(bytes)?;
        let head = Rec(bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?);
        let stored = head.u32(header::CRC32);
        let section = |id: SectionId| -> Result<&'a [u8], Error> {
            let (start, end) = ranges
                .get(id as usize - 1)
                .copied()
                .flatten()
                .ok_or(Error::MissingSection(id))?;
            bytes.get(start..end).ok_or(Error::SectionOutOfBounds(id))
        };

        let tensors = records(
            section(SectionId::Tensors)?,
            TENSOR_RECORD_LEN,
            SectionId::Tensors,
        )?;
        let ops = records(section(SectionId::Ops)?, OP_RECORD_LEN, SectionId::Ops)?;
        let op_io = cast_section::<u16>(section(SectionId::OpIo)?, SectionId::OpIo)?;
        let params = cast_section::<i32>(section(SectionId::Params)?, SectionId::Params)?;
        let metadata = records(
            section(SectionId::Metadata)?,
            META_RECORD_LEN,
            SectionId::Metadata,
        )?;
        let (inputs, outputs) = graph_io(section(SectionId::GraphIo)?)?;
        let golden = match ranges
            .get(SectionId::Golden as usize - 1)
            .copied()
            .flatten()
        {
            Some(_) => Some(golden(section(SectionId::Golden)?)?),
            None => None,
        };
        let signature = match ranges
            .get(SectionId::Signature as usize - 1)
            .copied()
            .flatten()
        {
            Some(_) => Some(
                section(SectionId::Signature)?
                    .try_into()
                    .map_err(|_| Error::BadSectionLength(SectionId::Signature))?,
            ),
            None => None,
        };

        let model = Model {
            bytes,
            version: head.u16(header::VERSION),
            crc32: stored,
            arena_len: head.usize(header::ARENA_LEN),
            tensors,
            ops,
            op_io,
            params,
            weights: section(SectionId::Weights)?,
            inputs,
            outputs,
            strings: section(SectionId::Strings)?,
            metadata,
            golden,
            signature,
        };
        for i in 0..model.tensor_count() {
            model.tensor(i)?;
        }
        model.validate_graph_io()?;
        Ok(model)
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn format_version(&self) -> u16 {
        self.version
    }

    /// The file's CRC-32/ISO-HDLC, as stored (and verified).
    pub fn crc32(&self) -> u32 {
        self.crc32
    }

    /// Bytes of arena an [`Interpreter`](crate::Interpreter) needs.
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// The Ed25519ph signature, if the file is signed. [`Model::parse`]
    /// checks only its length; `Model::parse_verified` (feature `verify`)
    /// checks it against a public key.
    pub fn signature(&self) -> Option<&'a [u8; SIGNATURE_LEN]> {
        self.signature
    }

    /// Size of the Weights section: the constant data, per-channel scales included.
    pub fn weights_len(&self) -> usize {
        self.weights.len()
    }

    pub fn tensor_count(&self) -> usize {
        self.tensors.len() / TENSOR_RECORD_LEN
    }

    pub fn op_count(&self) -> usize {
        self.ops.len() / OP_RECORD_LEN
    }

    /// Tensor `index`, or [`Error::IndexOutOfRange`].
    pub fn tensor(&self, index: usize) -> Result<TensorInfo<'a>, Error> {
        let rec = index
            .checked_mul(TENSOR_RECORD_LEN)
            .and_then(|start| self.tensors.get(start..)?.get(..TENSOR_RECORD_LEN))
            .ok_or(Error::IndexOutOfRange)?;
        // The tensor count is validated to fit u16 ids.
        let index = u16::try_from(index).map_err(|_| Error::IndexOutOfRange)?;
        self.decode_tensor(index, Rec(rec))
    }

    /// Op `index` (execution order), or [`Error::IndexOutOfRange`].
    pub fn op(&self, index: usize) -> Result<OpInfo<'a>, Error> {
        let rec = index
            .checked_mul(OP_RECORD_LEN)
            .and_then(|start| self.ops.get(start..)?.get(..OP_RECORD_LEN))
            .ok_or(Error::IndexOutOfRange)?;
        let index = u16::try_from(index).map_err(|_| Error::IndexOutOfRange)?;
        self.decode_op(index, Rec(rec))
    }

    /// Tensor indices of the graph inputs, in order.
    pub fn inputs(&self) -> &'a [u16] {
        self.inputs
    }

    /// Tensor indices of the graph outputs, in order.
    pub fn outputs(&self) -> &'a [u16] {
        self.outputs
    }

    /// Graph input `i`.
    pub fn input_info(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        let t = self.inputs.get(i).ok_or(Error::IndexOutOfRange)?;
        self.tensor(usize::from(*t))
    }

    /// Graph output `i`.
    pub fn output_info(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        let t = self.outputs.get(i).ok_or(Error::IndexOutOfRange)?;
        self.tensor(usize::from(*t))
    }

    /// The value of a metadata key, if present.
    pub fn metadata(&self, key: MetaKey) -> Option<&'a str> {
        self.metadata_entries()
            .find(|&(k, _)| k == key as u32)
            .map(|(_, v)| v)
    }

    /// All metadata records as `(raw key, value)`, unknown keys included.
    pub fn metadata_entries(&self) -> MetadataEntries<'a> {
        MetadataEntries {
            records: self.metadata.chunks_exact(META_RECORD_LEN),
            strings: self.strings,
        }
    }

    /// The abstain rule's minimum top-1 margin of output 0 (a probability
    /// difference in (0, 1)), if the file stores one; validated on load.
    pub fn abstain_margin(&self) -> Option<f32> {
        self.metadata(MetaKey::AbstainMargin)
            .and_then(crate::decision::parse_margin)
    }

    /// The decision for graph output 0's int8 values `output0`: its top-1
    /// class, or [`Decision::Uncertain`] when the top-1 probability leads
    /// the runner-up by less than [`abstain_margin`](Self::abstain_margin).
    /// [`Error::LengthMismatch`] unless `output0` has output 0's length.
    pub fn decide(&self, output0: &[i8]) -> Result<Decision, Error> {
        let (scale, zero_point) = self.decided_output(DType::I8, output0.len())?;
        let values = output0
            .iter()
            .map(|&q| crate::quant::dequantize(q, scale, zero_point));
        self.decide_values(values)
    }

    /// [`decide`](Self::decide) for an int16 graph output 0.
    #[cfg(feature = "int16-activations")]
    pub fn decide_i16(&self, output0: &[i16]) -> Result<Decision, Error> {
        let (scale, zero_point) = self.decided_output(DType::I16, output0.len())?;
        let values = output0
            .iter()
            .map(|&q| crate::quant::dequantize(q, scale, zero_point));
        self.decide_values(values)
    }

    /// Output 0's `(scale, zero_point)`, once its type and length match.
    fn decided_output(&self, dtype: DType, len: usize) -> Result<(f32, i32), Error> {
        let info = self.output_info(0)?;
        if info.dtype != dtype {
            return Err(Error::WrongDType);
        }
        if len != info.numel() {
            return Err(Error::LengthMismatch {
                expected: info.numel(),
                got: len,
            });
        }
        info.scale_zero_point().ok_or(Error::IndexOutOfRange)
    }

    fn decide_values(&self, values: impl Iterator<Item = f32>) -> Result<Decision, Error> {
        let top = crate::decision::top1(values).ok_or(Error::IndexOutOfRange)?;
        Ok(crate::decision::decide(top, self.abstain_margin()))
    }

    /// The golden self-test pair: the bytes of every graph input, in order,
    /// one after the other, and the output 0
    /// they must produce, bit-exact.
    pub fn golden(&self) -> Option<(&'a [i8], &'a [i8])> {
        self.golden
    }

    /// A string of the Strings section.
    fn string(&self, offset: usize, len: usize) -> Result<&'a str, Error> {
        str_at(self.strings, offset, len)
    }

    fn decode_tensor(&self, index: u16, rec: Rec<'a>) -> Result<TensorInfo<'a>, Error> {
        let bad = |reason| Error::BadTensor { index, reason };
        let dtype =
            DType::from_u8(rec.u8(tensor_record::DTYPE)).ok_or(bad(why!("unknown dtype")))?;
        let storage =
            Storage::from_u8(rec.u8(tensor_record::STORAGE)).ok_or(bad(why!("unknown storage")))?;
        let quant_kind = QuantKind::from_u8(rec.u8(tensor_record::QUANT))
            .ok_or(bad(why!("unknown quantization")))?;
        let rank = rec.u8(tensor_record::RANK);
        if usize::from(rank) > MAX_RANK {
            return Err(bad(why!("rank above MAX_RANK")));
        }
        if (0..3).any(|i| rec.u8(tensor_record::RESERVED + i) != 0) {
            return Err(bad(why!("reserved bytes not zero")));
        }
        let mut dims = [0u32; MAX_RANK];
        let mut numel: u64 = 1;
        for (i, d) in dims.iter_mut().enumerate() {
            *d = rec.u32(tensor_record::DIMS + 4 * i);
            if i < usize::from(rank) {
                if *d == 0 {
                    return Err(bad(why!("zero dimension")));
                }
                numel = numel.saturating_mul(u64::from(*d));
            } else if *d != 0 {
                return Err(bad(why!("unused dimension not zero")));
            }
        }
        let byte_len = numel.saturating_mul(dtype.size() as u64);
        let len = rec.usize(tensor_record::DATA_LEN);
        if byte_len != len as u64 && !storage.is_packed_weights() {
            return Err(bad(why!(
                "data length is not element count times dtype size"
            )));
        }
        let offset = rec.usize(tensor_record::DATA_OFFSET);
        let end = offset
            .checked_add(len)
            .ok_or(bad(why!("data out of bounds")))?;
        let data: &'a [u8] = match storage {
            Storage::Arena => {
                if quant_kind != QuantKind::PerTensor {
                    return Err(bad(why!("activations must be per-tensor quantized")));
                }
                match dtype {
                    DType::I8 => {}
                    DType::I16 => check_i16_activation(rec.i32(tensor_record::ZERO_POINT), offset)
                        .map_err(bad)?,
                    DType::I32 => return Err(bad(why!("activations are i8 or i16"))),
                }
                if end > self.arena_len {
                    return Err(bad(why!("activation outside the arena")));
                }
                &[]
            }
            Storage::Constant
            | Storage::SparseConstant
            | Storage::Pow2Constant
            | Storage::SparsePow2Constant
            | Storage::SparsePow2x3Constant => {
                if !offset.is_multiple_of(SECTION_ALIGN) {
                    return Err(bad(why!("constant not 16-byte aligned in the weights")));
                }
                let data = self
                    .weights
                    .get(offset..end)
                    .ok_or(bad(why!("constant outside the weights")))?;
                let dims = dims.get(..usize::from(rank)).unwrap_or(&[]);
                match storage {
                    Storage::SparseConstant => check_sparse(dtype, data, dims).map_err(bad)?,
                    Storage::Pow2Constant => check_pow2(dtype, data, dims).map_err(bad)?,
                    Storage::SparsePow2Constant => {
                        check_sparse_pow2::<Pow2NonZeros>(dtype, data, dims).map_err(bad)?
                    }
                    Storage::SparsePow2x3Constant => {
                        check_sparse_pow2::<Pow2x3NonZeros>(dtype, data, dims).map_err(bad)?
                    }
                    Storage::Arena | Storage::Constant => {}
                }
                data
            }
        };

        let axis = rec.u8(tensor_record::QUANT_AXIS);
        let scale_bits = rec.u32(tensor_record::SCALE);
        let zero_point = rec.i32(tensor_record::ZERO_POINT);
        let scales_offset = rec.usize(tensor_record::CHANNEL_SCALES_OFFSET);
        let channels = rec.usize(tensor_record::CHANNEL_COUNT);
        let quant = match quant_kind {
            QuantKind::None => {
                if axis != 0
                    || scale_bits != 0
                    || zero_point != 0
                    || scales_offset != 0
                    || channels != 0
                {
                    return Err(bad(why!("unquantized tensor with quantization fields set")));
                }
                Quant::None
            }
            QuantKind::PerTensor => {
                let scale = f32::from_bits(scale_bits);
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(bad(why!("scale not finite and positive")));
                }
                let zp_ok = match dtype {
                    DType::I8 => i8::try_from(zero_point).is_ok(),
                    DType::I16 => i16::try_from(zero_point).is_ok(),
                    DType::I32 => false,
                };
                if !zp_ok {
                    return Err(bad(why!("zero point outside the dtype's range")));
                }
                if axis != 0 || scales_offset != 0 || channels != 0 {
                    return Err(bad(why!("per-tensor quantization with channel fields set")));
                }
                Quant::PerTensor { scale, zero_point }
            }
            QuantKind::PerChannel => {
                if dtype == DType::I32 {
                    return Err(bad(why!("i32 tensors cannot be quantized")));
                }
                if scale_bits != 0 || zero_point != 0 {
                    return Err(bad(why!(
                        "per-channel quantization with scale or zero point set"
                    )));
                }
                let axis_dim = dims.get(usize::from(axis)).copied().unwrap_or(0);
                if axis >= rank || channels != axis_dim as usize {
                    return Err(bad(why!(
                        "per-channel axis or channel count does not match the shape"
                    )));
                }
                if !scales_offset.is_multiple_of(SECTION_ALIGN) {
                    return Err(bad(why!(
                        "channel scales not 16-byte aligned in the weights"
                    )));
                }
                let bytes = channels
                    .checked_mul(4)
                    .and_then(|n| scales_offset.checked_add(n))
                    .and_then(|end| self.weights.get(scales_offset..end))
                    .ok_or(bad(why!("channel scales outside the weights")))?;
                let scales: &'a [f32] =
                    bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)?;
                if !scales.iter().all(|s| s.is_finite() && *s > 0.0) {
                    return Err(bad(why!("channel scale not finite and positive")));
                }
                Quant::PerChannel { axis, scales }
            }
        };
        let name = self
            .string(
                rec.usize(tensor_record::NAME_OFFSET),
                rec.usize(tensor_record::NAME_LEN),
            )
            .map_err(|_| bad(why!("name out of bounds or not UTF-8")))?;
        Ok(TensorInfo {
            index,
            name,
            dtype,
            storage,
            offset,
            len,
            quant,
            rank,
            dims,
            data,
        })
    }

    fn decode_op(&self, index: u16, rec: Rec<'a>) -> Result<OpInfo<'a>, Error> {
        let bad = |reason| Error::BadOp { index, reason };
        let opcode =
            OpCode::from_u16(rec.u16(op_record::OPCODE)).ok_or(bad(why!("unknown opcode")))?;
        let n_in = usize::from(rec.u8(op_record::N_INPUTS));
        let n_out = usize::from(rec.u8(op_record::N_OUTPUTS));
        let io_start = rec.usize(op_record::IO_START);
        let io = io_start
            .checked_add(n_in + n_out)
            .and_then(|end| self.op_io.get(io_start..end))
            .ok_or(bad(why!("inputs/outputs outside the OpIo section")))?;
        let (inputs, outputs) = io.split_at(n_in);
        if io.iter().any(|&t| usize::from(t) >= self.tensor_count()) {
            return Err(bad(why!("tensor index out of range")));
        }
        let params_start = rec.usize(op_record::PARAMS_START);
        let params = params_start
            .checked_add(rec.usize(op_record::N_PARAMS))
            .and_then(|end| self.params.get(params_start..end))
            .ok_or(bad(why!("parameters outside the Params section")))?;
        Ok(OpInfo {
            index,
            opcode,
            inputs,
            outputs,
            params,
        })
    }

    /// The rules that span the whole graph, once every op has passed
    /// [`validate_op_order`](Self::validate_op_order) and its kernel's
    /// checks: every output produced, the arena plan, metadata and the
    /// golden pair.
    pub(crate) fn validate_graph(&self) -> Result<(), Error> {
        for &t in self.outputs {
            if !self.inputs.contains(&t) && self.producer(t).is_none() {
                return Err(Error::BadGraph(why!("graph output never produced")));
            }
        }
        self.validate_plan()?;
        self.validate_metadata()?;
        if let Some((input, output)) = self.golden {
            let mut inputs_len = 0usize;
            for i in 0..self.inputs.len() {
                inputs_len = inputs_len.saturating_add(self.input_info(i)?.len);
            }
            if input.len() != inputs_len || output.len() != self.output_info(0)?.len {
                return Err(Error::BadGolden);
            }
        }
        Ok(())
    }

    fn validate_graph_io(&self) -> Result<(), Error> {
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(Error::BadGraph(why!(
                "the graph needs at least one input and one output"
            )));
        }
        for list in [self.inputs, self.outputs] {
            for (i, &t) in list.iter().enumerate() {
                let info = self
                    .tensor(usize::from(t))
                    .map_err(|_| Error::BadGraph(why!("tensor index out of range")))?;
                if info.storage != Storage::Arena {
                    return Err(Error::BadGraph(why!(
                        "graph inputs and outputs must be activations"
                    )));
                }
                // An int16 input or output is written and read as such
                // (`Interpreter::input_i16_mut`, `set_input_f32`,
                // `output_i16`, `output_f32`): an image whose int8 encoding
                // would cost more than the model allows. Without the feature
                // the tensor rule already refused int16.
                if list.get(..i).is_some_and(|before| before.contains(&t)) {
                    return Err(Error::BadGraph(why!(
                        "tensor listed twice as graph input or output"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads come from graph inputs, constants or earlier ops; each activation
    /// is written once, never over a graph input.
    pub(crate) fn validate_op_order(&self, op: &OpInfo<'a>) -> Result<(), Error> {
        let not_topo = Error::NotTopological { op: op.index };
        for &t in op.inputs {
            let storage = self.tensor(usize::from(t))?.storage;
            // Without their features no packed tensor gets this far.
            if storage.is_packed_weights() && !op.reads_weights_at(t, 1) {
                return Err(Error::BadOp {
                    index: op.index,
                    reason: why!(
                        "only Conv and FullyConnected weights may be stored sparse or as powers of two"
                    ),
                });
            }
            if storage.is_constant() || self.inputs.contains(&t) {
                continue;
            }
            match self.producer(t) {
                Some(k) if k < usize::from(op.index) => {}
                _ => return Err(not_topo),
            }
        }
        for &t in op.outputs {
            if self.inputs.contains(&t) || self.producer(t) != Some(usize::from(op.index)) {
                return Err(not_topo);
            }
        }
        Ok(())
    }

    /// The index of the first op that writes `t`.
    fn producer(&self, t: u16) -> Option<usize> {
        (0..self.op_count()).find(|&k| self.op(k).is_ok_and(|op| op.outputs.contains(&t)))
    }

    /// When activation `t` holds a value: from its definition (0 for graph
    /// inputs) to its last read (the end, `op_count`, for graph outputs).
    /// `None` for activations no op or graph port touches.
    fn live_interval(&self, t: u16) -> Option<(usize, usize)> {
        let mut def = self.inputs.contains(&t).then_some(0);
        let mut last = None;
        for k in 0..self.op_count() {
            let Ok(op) = self.op(k) else { continue };
            if op.outputs.contains(&t) {
                def = def.or(Some(k));
            }
            if op.inputs.contains(&t) {
                last = Some(k);
            }
        }
        let def = def?;
        let mut end = last.map_or(def, |l| l.max(def));
        if self.outputs.contains(&t) {
            end = end.max(self.op_count());
        }
        Some((def, end))
    }

    /// No two activations alive at the same time share a byte, except the
    /// output of an in-place op written exactly over an input that dies there.
    fn validate_plan(&self) -> Result<(), Error> {
        let count = self.tensor_count();
        for i in 0..count {
            let a = self.tensor(i)?;
            if a.storage != Storage::Arena {
                continue;
            }
            let Some(live_a) = self.live_interval(a.index) else {
                continue;
            };
            for j in i + 1..count {
                let b = self.tensor(j)?;
                let bytes_overlap = b.storage == Storage::Arena
                    && a.offset < b.offset + b.len
                    && b.offset < a.offset + a.len;
                if !bytes_overlap {
                    continue;
                }
                let Some(live_b) = self.live_interval(b.index) else {
                    continue;
                };
                let time_overlap = live_a.0.max(live_b.0) <= live_a.1.min(live_b.1);
                if time_overlap && !self.is_in_place_pair(&a, live_a, &b, live_b) {
                    return Err(Error::PlanOverlap {
                        a: a.index,
                        b: b.index,
                    });
                }
            }
        }
        Ok(())
    }

    /// `y` is written by an in-place op at step `k` exactly over its input
    /// `x`, which is not read after step `k` (in either order of the pair).
    fn is_in_place_pair(
        &self,
        a: &TensorInfo<'a>,
        live_a: (usize, usize),
        b: &TensorInfo<'a>,
        live_b: (usize, usize),
    ) -> bool {
        let same_bytes = a.offset == b.offset && a.len == b.len;
        let check = |x: &TensorInfo<'a>,
                     live_x: (usize, usize),
                     y: &TensorInfo<'a>,
                     live_y: (usize, usize)| {
            let k = live_y.0;
            live_x.1 == k
                && self.op(k).is_ok_and(|op| {
                    op.opcode.may_run_in_place()
                        && op.outputs.contains(&y.index)
                        && op.inputs.contains(&x.index)
                })
        };
        same_bytes && (check(a, live_a, b, live_b) || check(b, live_b, a, live_a))
    }

    fn validate_metadata(&self) -> Result<(), Error> {
        for (i, rec) in self.metadata.chunks_exact(META_RECORD_LEN).enumerate() {
            let rec = Rec(rec);
            let key = rec.u32(meta_record::KEY);
            self.string(
                rec.usize(meta_record::VALUE_OFFSET),
                rec.usize(meta_record::VALUE_LEN),
            )
            .map_err(|_| Error::BadMetadata)?;
            let repeated = self
                .metadata
                .chunks_exact(META_RECORD_LEN)
                .take(i)
                .any(|before| Rec(before).u32(meta_record::KEY) == key);
            if MetaKey::from_u32(key).is_some() && repeated {
                return Err(Error::BadMetadata);
            }
            if key == MetaKey::AbstainMargin as u32 && self.abstain_margin().is_none() {
                return Err(Error::BadMetadata);
            }
        }
        Ok(())
    }
}

/// Iterator over `(raw key, value)` metadata records.
#[derive(Clone, Debug)]
pub struct MetadataEntries<'a> {
    records: core::slice::ChunksExact<'a, u8>,
    strings: &'a [u8],
}

impl<'a> Iterator for MetadataEntries<'a> {
    type Item = (u32, &'a str);

    fn next(&mut self) -> Option<(u32, &'a str)> {
        // Records were validated by `Model::parse`; a bad one is skipped.
        self.records.find_map(|rec| {
            let rec = Rec(rec);
            let value = str_at(
                self.strings,
                rec.usize(meta_record::VALUE_OFFSET),
                rec.usize(meta_record::VALUE_LEN),
            );
            value.ok().map(|v| (rec.u32(meta_record::KEY), v))
        })
    }
}

fn str_at(strings: &[u8], offset: usize, len: usize) -> Result<&str, Error> {
    let bytes = offset
        .checked_add(len)
        .and_then(|end| strings.get(offset..end))
        .ok_or(Error::BadString)?;
    core::str::from_utf8(bytes).map_err(|_| Error::BadString)
}

/// The first checks of every parse: header, alignment, CRC, then the section
/// table. Enough to find the sections (the signer and the signature check
/// need no more).
pub(crate) fn checked_sections(bytes: &[u8]) -> Result<SectionRanges, Error> {
    check_header(bytes, bytes.len())?;
    let head = Rec(bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?);
    if !(bytes.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
        return Err(Error::Misaligned);
    }
    let stored = head.u32(header::CRC32);
    let computed = super::file_crc32(bytes);
    if stored != computed {
        return Err(Error::ChecksumMismatch { stored, computed });
    }
    let reserved_zero = chunk::<8>(head.0, header::RESERVED) == Some([0; 8]);
    if usize::from(head.u16(header::HEADER_LEN)) != HEADER_LEN
        || head.u16(header::FLAGS) != 0
        || !reserved_zero
    {
        return Err(Error::BadHeader);
    }

    section_ranges(bytes, usize::from(head.u16(header::SECTION_COUNT)))
}

/// Parses and checks the section table: known ids, each at most once, each
/// aligned, inside the file, after the table and not overlapping another.
fn section_ranges(bytes: &[u8], count: usize) -> Result<SectionRanges, Error> {
    if count > MAX_SECTIONS {
        return Err(Error::BadSectionTable);
    }
    let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
    let table = bytes
        .get(HEADER_LEN..table_end)
        .ok_or(Error::BadSectionTable)?;
    let mut ranges: SectionRanges = [None; SectionId::ALL.len()];
    for entry in table.chunks_exact(SECTION_ENTRY_LEN) {
        let entry = Rec(entry);
        let raw_id = entry.u32(section_entry::ID);
        let id = SectionId::from_u32(raw_id).ok_or(Error::UnknownSection(raw_id))?;
        if entry.u32(section_entry::RESERVED) != 0 {
            return Err(Error::BadSectionTable);
        }
        let start = entry.usize(section_entry::OFFSET);
        let end = start
            .checked_add(entry.usize(section_entry::LEN))
            .filter(|&end| start % SECTION_ALIGN == 0 && start >= table_end && end <= bytes.len())
            .ok_or(Error::SectionOutOfBounds(id))?;
        let slot = ranges
            .get_mut(id as usize - 1)
            .ok_or(Error::UnknownSection(raw_id))?;
        if slot.is_some() {
            return Err(Error::DuplicateSection(id));
        }
        *slot = Some((start, end));
    }
    for (i, id) in SectionId::ALL.iter().enumerate() {
        let Some((start, end)) = ranges.get(i).copied().flatten() else {
            if id.required() {
                return Err(Error::MissingSection(*id));
            }
            continue;
        };
        let overlaps = ranges
            .iter()
            .take(i)
            .flatten()
            .any(|&(s, e)| start < e && s < end);
        if overlaps {
            return Err(Error::SectionOutOfBounds(*id));
        }
    }
    Ok(ranges)
}

/// A section of fixed-length records, with at most `u16::MAX` of them so that
/// indices fit the format's `u16` ids.
fn records(section: &[u8], record_len: usize, id: SectionId) -> Result<&[u8], Error> {
    if !section.len().is_multiple_of(record_len)
        || section.len() / record_len > usize::from(u16::MAX)
    {
        return Err(Error::BadSectionLength(id));
    }
    Ok(section)
}

/// A section of little-endian integers read in place.
fn cast_section<T: bytemuck::Pod>(section: &[u8], id: SectionId) -> Result<&[T], Error> {
    if !section.len().is_multiple_of(core::mem::size_of::<T>()) {
        return Err(Error::BadSectionLength(id));
    }
    // Sections are 16-aligned in a BUFFER_ALIGN-aligned buffer.
    bytemuck::try_cast_slice(section).map_err(|_| Error::Misaligned)
}

/// `u16 n_inputs, u16 n_outputs`, then the indices, and nothing else.
fn graph_io(section: &[u8]) -> Result<(&[u16], &[u16]), Error> {
    let bad = Error::BadSectionLength(SectionId::GraphIo);
    let n_in = usize::from(u16_at(section, 0).ok_or(bad)?);
    let n_out = usize::from(u16_at(section, 2).ok_or(bad)?);
    if section.len() != 4 + 2 * (n_in + n_out) {
        return Err(bad);
    }
    let ids = cast_section::<u16>(section.get(4..).ok_or(bad)?, SectionId::GraphIo)?;
    Ok(ids.split_at(n_in))
}

/// `u32 input_len, u32 output_len`, input bytes padded to 4, output bytes.
fn golden(section: &[u8]) -> Result<(&[i8], &[i8]), Error> {
    let bad = Error::BadSectionLength(SectionId::Golden);
    let in_len = u32_at(section, 0).ok_or(bad)? as usize;
    let out_len = u32_at(section, 4).ok_or(bad)? as usize;
    let in_padded = in_len.checked_next_multiple_of(4).ok_or(bad)?;
    let out_start = GOLDEN_HEADER_LEN.checked_add(in_padded).ok_or(bad)?;
    if out_start.checked_add(out_len) != Some(section.len()) {
        return Err(bad);
    }
    let input = section
        .get(GOLDEN_HEADER_LEN..GOLDEN_HEADER_LEN + in_len)
        .ok_or(bad)?;
    let output = section.get(out_start..).ok_or(bad)?;
    Ok((bytemuck::cast_slice(input), bytemuck::cast_slice(output)))
}

/// `(rows, row_len)` of a weight tensor of `dims`: rows on axis 0, each the
/// product of the other dims (`None` for rank 0 or on overflow).
fn rows_of(dims: &[u32]) -> Option<(usize, usize)> {
    let (&rows, rest) = dims.split_first()?;
    let row_len = rest
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d as usize))?;
    Some((rows as usize, row_len))
}

/// `data` split into the [`SparseRows`] of a tensor of `dims`.
fn sparse_rows<'a, V: NonZeros>(data: &'a [u8], dims: &[u32]) -> Option<SparseRowsOf<'a, V>> {
    let (rows, row_len) = rows_of(dims)?;
    SparseRowsOf::parse(data, rows, row_len)
}

/// A sparse constant is `i8` of rank at least 1, and its bitmap and values
/// agree (see [`SparseRows::parse`]).
#[cfg(feature = "sparse-weights")]
fn check_sparse(dtype: DType, data: &[u8], dims: &[u32]) -> Result<(), &'static str> {
    if dtype != DType::I8 {
        return Err(why!("only i8 constants may be stored sparse"));
    }
    sparse_rows::<crate::sparse::Int8NonZeros>(data, dims)
        .map(|_| ())
        .ok_or(why!("sparse bitmap and values disagree"))
}

#[cfg(not(feature = "sparse-weights"))]
fn check_sparse(_: DType, _: &[u8], _: &[u32]) -> Result<(), &'static str> {
    Err(why!(
        "sparse weights are not built in (feature sparse-weights)"
    ))
}

/// An int16 activation is symmetric (zero point 0) and starts on an even
/// arena offset, so that a 2-aligned arena holds it aligned.
#[cfg(feature = "int16-activations")]
fn check_i16_activation(zero_point: i32, offset: usize) -> Result<(), &'static str> {
    if zero_point != 0 {
        return Err(why!("int16 activations have zero point 0"));
    }
    if !offset.is_multiple_of(2) {
        return Err(why!("int16 activation at an odd arena offset"));
    }
    Ok(())
}

#[cfg(not(feature = "int16-activations"))]
fn check_i16_activation(_: i32, _: usize) -> Result<(), &'static str> {
    Err(why!(
        "int16 activations are not built in (feature int16-activations)"
    ))
}

/// `data` as the [`Pow2Rows`] of a tensor of `dims`.
fn pow2_rows<'a>(data: &'a [u8], dims: &[u32]) -> Option<Pow2Rows<'a>> {
    let (rows, row_len) = rows_of(dims)?;
    Pow2Rows::parse(data, rows, row_len)
}

/// A power-of-two constant is `i8` of rank at least 1, with one well-formed
/// code per weight (see [`Pow2Rows::parse`]).
#[cfg(feature = "pow2-weights")]
fn check_pow2(dtype: DType, data: &[u8], dims: &[u32]) -> Result<(), &'static str> {
    if dtype != DType::I8 {
        return Err(why!("only i8 constants may be stored as powers of two"));
    }
    pow2_rows(data, dims)
        .map(|_| ())
        .ok_or(why!("power-of-two codes malformed or of the wrong length"))
}

/// A sparse power-of-two constant (4- or 3-bit codes, as `V` says) is `i8`
/// of rank at least 1, and its bitmap and codes agree (see
/// [`SparseRows::parse`]).
#[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
fn check_sparse_pow2<V: NonZeros>(
    dtype: DType,
    data: &[u8],
    dims: &[u32],
) -> Result<(), &'static str> {
    if dtype != DType::I8 {
        return Err(why!("only i8 constants may be stored sparse"));
    }
    sparse_rows::<V>(data, dims)
        .map(|_| ())
        .ok_or(why!("sparse bitmap and power-of-two codes disagree"))
}

#[cfg(not(all(feature = "sparse-weights", feature = "pow2-weights")))]
#[allow(clippy::extra_unused_type_parameters)] // the signature of the built-in check
fn check_sparse_pow2<V: NonZeros>(_: DType, _: &[u8], _: &[u32]) -> Result<(), &'static str> {
    Err(why!(
        "sparse power-of-two weights are not built in (features sparse-weights and pow2-weights)"
    ))
}

#[cfg(not(feature = "pow2-weights"))]
fn check_pow2(_: DType, _: &[u8], _: &[u32]) -> Result<(), &'static str> {
    Err(why!(
        "power-of-two weights are not built in (feature pow2-weights)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_arena_len_checks_magic_and_length() {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[header::FILE_LEN..header::FILE_LEN + 4]
            .copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[header::ARENA_LEN..header::ARENA_LEN + 4].copy_from_slice(&1234u32.to_le_bytes());
        assert_eq!(peek_arena_len(&h), Some(1234));
        assert_eq!(peek_arena_len(&h[..HEADER_LEN - 1]), None);
        let mut bad_len = h;
        bad_len[header::FILE_LEN] = 33;
        assert_eq!(peek_arena_len(&bad_len), None);
        let mut bad_magic = h;
        bad_magic[0] = b'X';
        assert_eq!(peek_arena_len(&bad_magic), None);
    }

    #[test]
    fn golden_layout_pads_input_to_four() {
        let mut s = [0u8; 8 + 4 + 2];
        s[0] = 3;
        s[4] = 2;
        s[8..11].copy_from_slice(&[1, 2, 0xff]);
        s[12..14].copy_from_slice(&[7, 0x80]);
        let (i, o) = golden(&s).unwrap();
        assert_eq!(i, &[1, 2, -1]);
        assert_eq!(o, &[7, -128]);
        assert_eq!(
            golden(&s[..13]),
            Err(Error::BadSectionLength(SectionId::Golden))
        );
    }

    #[test]
    fn section_table_rules() {
        // Header + 1 entry (Tensors at 48, len 0): ok apart from missing sections.
        let mut f = [0u8; 64];
        let entry = |f: &mut [u8], id: u32, off: u32, len: u32| {
            f[32..36].copy_from_slice(&id.to_le_bytes());
            f[36..40].copy_from_slice(&off.to_le_bytes());
            f[40..44].copy_from_slice(&len.to_le_bytes());
        };
        entry(&mut f, 1, 48, 16);
        assert_eq!(
            section_ranges(&f, 1),
            Err(Error::MissingSection(SectionId::Ops))
        );
        entry(&mut f, 99, 48, 16);
        assert_eq!(section_ranges(&f, 1), Err(Error::UnknownSection(99)));
        entry(&mut f, 1, 40, 16);
        assert_eq!(
            section_ranges(&f, 1),
            Err(Error::SectionOutOfBounds(SectionId::Tensors))
        );
        entry(&mut f, 1, 32, 16); // over the table itself
        assert_eq!(
            section_ranges(&f, 1),
            Err(Error::SectionOutOfBounds(SectionId::Tensors))
        );
        entry(&mut f, 1, 48, 17); // past the end
        assert_eq!(
            section_ranges(&f, 1),
            Err(Error::SectionOutOfBounds(SectionId::Tensors))
        );
        assert_eq!(section_ranges(&f, 17), Err(Error::BadSectionTable));
        assert_eq!(section_ranges(&f, 3), Err(Error::BadSectionTable));
    }
}
