//! The `.mq` writer (feature `std`): the only code that produces model files,
//! living next to the reader so that the two share [`layout`](super::layout)
//! and cannot drift. [`Writer::finish`] runs the reader's validation on its
//! own output.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use super::layout::{
    header, meta_record, op_record, section_entry, tensor_record, DType, MetaKey, OpCode,
    QuantKind, SectionId, Storage, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_RANK, META_RECORD_LEN,
    OP_RECORD_LEN, SECTION_ALIGN, SECTION_ENTRY_LEN, TENSOR_RECORD_LEN,
};
use super::Model;
use crate::error::Error;
use crate::file::AlignedBuf;

/// Quantization of a tensor being written.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantSpec {
    /// Plain integers.
    None,
    /// `real = scale · (q − zero_point)`.
    PerTensor { scale: f32, zero_point: i32 },
    /// `real = scales[c] · q` along `axis`; `scales.len()` must equal `dims[axis]`.
    PerChannel { axis: u8, scales: Vec<f32> },
}

#[derive(Clone, Debug)]
struct TensorEntry {
    name: String,
    dtype: DType,
    storage: Storage,
    dims: Vec<u32>,
    quant: QuantSpec,
    /// Activations: the arena offset.
    arena_offset: u32,
    /// Constants: the little-endian bytes.
    data: Vec<u8>,
}

#[derive(Clone, Debug)]
struct OpEntry {
    opcode: OpCode,
    inputs: Vec<u16>,
    outputs: Vec<u16>,
    params: Vec<i32>,
}

/// Builds a `.mq` file. Tensor ids are handed out in order from 0.
///
/// Misuse (too many tensors, a data length that does not match the shape,
/// a dimension above `u32::MAX`) is remembered and reported by
/// [`finish`](Self::finish), so the `add_*` calls stay infallible.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    tensors: Vec<TensorEntry>,
    ops: Vec<OpEntry>,
    inputs: Vec<u16>,
    outputs: Vec<u16>,
    arena_len: usize,
    metadata: BTreeMap<u32, String>,
    golden: Option<(Vec<i8>, Vec<i8>)>,
    error: Option<Error>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// An `i8` constant (weights, a LUT table, a constant Add/Mul operand,
    /// a per-channel shift vector with [`QuantSpec::None`]).
    pub fn add_constant_i8(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
    ) -> u16 {
        self.check_len(dims, data.len());
        let data = bytemuck::cast_slice(data).to_vec();
        self.push(name, DType::I8, Storage::Constant, dims, quant, 0, data)
    }

    /// Conv or FullyConnected weights, given dense, stored as
    /// [`SparseRows`](crate::sparse::SparseRows) (rows on axis 0). The caller
    /// decides whether that is smaller: [`sparse_stored_len`] tells.
    pub fn add_sparse_constant_i8(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
    ) -> u16 {
        self.check_len(dims, data.len());
        let row_len = dims.iter().skip(1).product();
        let data = crate::sparse::encode_sparse_rows(data, row_len);
        self.push(
            name,
            DType::I8,
            Storage::SparseConstant,
            dims,
            quant,
            0,
            data,
        )
    }

    /// Conv or FullyConnected weights, given dense, that are all 0 or `±2^e`
    /// (`e <= 6`), stored as [`SparsePow2Rows`](crate::sparse::SparsePow2Rows):
    /// a bitmap and a 4-bit code per non-zero, rows on axis 0. The caller
    /// decides whether that is smaller: [`sparse_pow2_stored_len`] tells. A
    /// weight without a code fails [`finish`](Self::finish).
    pub fn add_sparse_pow2_constant_i8(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
    ) -> u16 {
        self.push_packed(name, dims, quant, data, Packed::SPARSE_POW2)
    }

    /// Conv or FullyConnected weights, given dense, that are all 0, `±8`,
    /// `±16`, `±32` or `±64`, stored as
    /// [`SparsePow2x3Rows`](crate::sparse::SparsePow2x3Rows): a bitmap and a
    /// 3-bit code per non-zero, rows on axis 0. The caller decides whether
    /// that is smaller: [`sparse_pow2x3_stored_len`] tells. A weight without
    /// a code fails [`finish`](Self::finish).
    pub fn add_sparse_pow2x3_constant_i8(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
    ) -> u16 {
        self.push_packed(name, dims, quant, data, Packed::SPARSE_POW2X3)
    }

    /// Conv or FullyConnected weights, given dense, that are all 0 or `±2^e`
    /// (`e <= 6`), stored as [`Pow2Rows`](crate::pow2::Pow2Rows): 4 bits a
    /// weight, rows on axis 0. A weight without a code fails [`finish`](Self::finish).
    pub fn add_pow2_constant_i8(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
    ) -> u16 {
        self.push_packed(name, dims, quant, data, Packed::POW2)
    }

    /// Weights on a code grid, encoded (rows of `dims[1..]`) as `packed`
    /// says; a weight without a code fails `finish`.
    fn push_packed(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i8],
        packed: Packed,
    ) -> u16 {
        self.check_len(dims, data.len());
        let row_len = dims.iter().skip(1).product();
        let stored = (packed.encode)(data, row_len).unwrap_or_else(|| {
            self.fail(Error::BadTensor {
                index: u16::try_from(self.tensors.len()).unwrap_or(u16::MAX),
                reason: packed.off_grid,
            });
            Vec::new()
        });
        self.push(name, DType::I8, packed.storage, dims, quant, 0, stored)
    }

    /// An `i32` constant (bias, multipliers, a softmax exp table).
    pub fn add_constant_i32(&mut self, name: &str, dims: &[usize], data: &[i32]) -> u16 {
        self.check_len(dims, data.len());
        let data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(
            name,
            DType::I32,
            Storage::Constant,
            dims,
            QuantSpec::None,
            0,
            data,
        )
    }

    /// An `i16` constant: the interpolated tables of Lstm and Gru
    /// (`QuantSpec::None`), or an int16 layer's 16-bit weights.
    pub fn add_constant_i16(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        data: &[i16],
    ) -> u16 {
        self.check_len(dims, data.len());
        let data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, DType::I16, Storage::Constant, dims, quant, 0, data)
    }

    /// An `i8` activation at `arena_offset` in the arena (the converter plans it).
    pub fn add_activation(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        arena_offset: usize,
    ) -> u16 {
        let offset = self.fit_u32(arena_offset);
        self.push(
            name,
            DType::I8,
            Storage::Arena,
            dims,
            quant,
            offset,
            Vec::new(),
        )
    }

    /// An `i16` activation at `arena_offset` (even) in the arena, quantized
    /// per tensor with zero point 0 (feature `int16-activations` to load it).
    pub fn add_activation_i16(
        &mut self,
        name: &str,
        dims: &[usize],
        quant: QuantSpec,
        arena_offset: usize,
    ) -> u16 {
        let offset = self.fit_u32(arena_offset);
        self.push(
            name,
            DType::I16,
            Storage::Arena,
            dims,
            quant,
            offset,
            Vec::new(),
        )
    }

    /// Appends an op; ops run in the order they are added.
    pub fn add_op(&mut self, opcode: OpCode, inputs: &[u16], outputs: &[u16], params: &[i32]) {
        if inputs.len() > usize::from(u8::MAX) || outputs.len() > usize::from(u8::MAX) {
            self.fail(Error::LimitExceeded);
        }
        self.ops.push(OpEntry {
            opcode,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            params: params.to_vec(),
        });
    }

    pub fn set_inputs(&mut self, ids: &[u16]) {
        self.inputs = ids.to_vec();
    }

    pub fn set_outputs(&mut self, ids: &[u16]) {
        self.outputs = ids.to_vec();
    }

    /// Bytes of arena the model needs (the end of the highest activation).
    pub fn set_arena_len(&mut self, n: usize) {
        self.arena_len = n;
    }

    /// Sets (or replaces) a metadata value.
    pub fn set_metadata(&mut self, key: MetaKey, value: &str) {
        self.set_metadata_raw(key as u32, value);
    }

    /// Sets a metadata value under a raw key, e.g. one a newer runtime defines.
    pub fn set_metadata_raw(&mut self, key: u32, value: &str) {
        self.metadata.insert(key, value.into());
    }

    /// The boot-time self-test pair: graph input 0 and the output 0 it must give.
    pub fn set_golden(&mut self, input: &[i8], output: &[i8]) {
        self.golden = Some((input.to_vec(), output.to_vec()));
    }

    /// Lays the file out and checks it with [`Model::parse`]: an invalid
    /// model is an error here rather than on the device. Deterministic: the
    /// same calls give the same bytes.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        let bytes = self.finish_unvalidated()?;
        Model::parse(AlignedBuf::from_slice(&bytes).as_slice())?;
        Ok(bytes)
    }

    /// [`finish`](Self::finish) without the validation: for tests that need
    /// deliberately broken files. Still fails on limits the layout cannot
    /// express.
    pub fn finish_unvalidated(self) -> Result<Vec<u8>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut strings = Vec::new();
        let mut weights = Vec::new();
        let mut tensors = Vec::with_capacity(self.tensors.len() * TENSOR_RECORD_LEN);
        for t in &self.tensors {
            tensors.extend_from_slice(&tensor_record(t, &mut strings, &mut weights)?);
        }

        let mut ops = Vec::with_capacity(self.ops.len() * OP_RECORD_LEN);
        let mut op_io: Vec<u8> = Vec::new();
        let mut params: Vec<u8> = Vec::new();
        for op in &self.ops {
            let mut rec = [0u8; OP_RECORD_LEN];
            put_u16(&mut rec, op_record::OPCODE, op.opcode as u16);
            put_u8(
                &mut rec,
                op_record::N_INPUTS,
                u8::try_from(op.inputs.len()).map_err(|_| Error::LimitExceeded)?,
            );
            put_u8(
                &mut rec,
                op_record::N_OUTPUTS,
                u8::try_from(op.outputs.len()).map_err(|_| Error::LimitExceeded)?,
            );
            put_u32(&mut rec, op_record::IO_START, u32_of(op_io.len() / 2)?);
            put_u32(&mut rec, op_record::PARAMS_START, u32_of(params.len() / 4)?);
            put_u32(&mut rec, op_record::N_PARAMS, u32_of(op.params.len())?);
            ops.extend_from_slice(&rec);
            op_io.extend(
                op.inputs
                    .iter()
                    .chain(&op.outputs)
                    .flat_map(|t| t.to_le_bytes()),
            );
            params.extend(op.params.iter().flat_map(|p| p.to_le_bytes()));
        }

        let mut graph_io = Vec::new();
        graph_io.extend_from_slice(&u16_of(self.inputs.len())?.to_le_bytes());
        graph_io.extend_from_slice(&u16_of(self.outputs.len())?.to_le_bytes());
        graph_io.extend(
            self.inputs
                .iter()
                .chain(&self.outputs)
                .flat_map(|t| t.to_le_bytes()),
        );

        let mut metadata = Vec::new();
        for (&key, value) in &self.metadata {
            let mut rec = [0u8; META_RECORD_LEN];
            put_u32(&mut rec, meta_record::KEY, key);
            put_u32(&mut rec, meta_record::VALUE_OFFSET, u32_of(strings.len())?);
            put_u32(&mut rec, meta_record::VALUE_LEN, u32_of(value.len())?);
            strings.extend_from_slice(value.as_bytes());
            metadata.extend_from_slice(&rec);
        }

        let mut sections: Vec<(SectionId, Vec<u8>)> = std::vec![
            (SectionId::Tensors, tensors),
            (SectionId::Ops, ops),
            (SectionId::OpIo, op_io),
            (SectionId::Params, params),
            (SectionId::Weights, weights),
            (SectionId::GraphIo, graph_io),
            (SectionId::Strings, strings),
            (SectionId::Metadata, metadata),
        ];
        if let Some((input, output)) = &self.golden {
            let mut golden = Vec::new();
            golden.extend_from_slice(&u32_of(input.len())?.to_le_bytes());
            golden.extend_from_slice(&u32_of(output.len())?.to_le_bytes());
            golden.extend_from_slice(bytemuck::cast_slice(input));
            pad_to(&mut golden, 4);
            golden.extend_from_slice(bytemuck::cast_slice(output));
            sections.push((SectionId::Golden, golden));
        }

        assemble(&sections, self.arena_len)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        dtype: DType,
        storage: Storage,
        dims: &[usize],
        quant: QuantSpec,
        arena_offset: u32,
        data: Vec<u8>,
    ) -> u16 {
        if dims.len() > MAX_RANK {
            self.fail(Error::LimitExceeded);
        }
        let dims = dims.iter().map(|&d| self.fit_u32(d)).collect();
        // Ids are u16 and the reader caps the count at u16::MAX, so the
        // largest id is u16::MAX − 1.
        let id = match u16::try_from(self.tensors.len()) {
            Ok(id) if id < u16::MAX => id,
            _ => {
                self.fail(Error::LimitExceeded);
                u16::MAX
            }
        };
        self.tensors.push(TensorEntry {
            name: name.into(),
            dtype,
            storage,
            dims,
            quant,
            arena_offset,
            data,
        });
        id
    }

    fn check_len(&mut self, dims: &[usize], len: usize) {
        let numel = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(len) {
            self.fail(Error::LengthMismatch {
                expected: numel.unwrap_or(usize::MAX),
                got: len,
            });
        }
    }

    fn fit_u32(&mut self, v: usize) -> u32 {
        u32::try_from(v).unwrap_or_else(|_| {
            self.fail(Error::LimitExceeded);
            u32::MAX
        })
    }

    /// Keeps the first error: later ones are often its consequences.
    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}

/// The record of `t`, appending its name to `strings` and its constant data
/// (and per-channel scales) to `weights`, each 16-aligned.
fn tensor_record(
    t: &TensorEntry,
    strings: &mut Vec<u8>,
    weights: &mut Vec<u8>,
) -> Result<[u8; TENSOR_RECORD_LEN], Error> {
    let mut rec = [0u8; TENSOR_RECORD_LEN];
    put_u8(&mut rec, tensor_record::DTYPE, t.dtype as u8);
    put_u8(
        &mut rec,
        tensor_record::RANK,
        u8::try_from(t.dims.len()).map_err(|_| Error::LimitExceeded)?,
    );
    put_u8(&mut rec, tensor_record::STORAGE, t.storage as u8);
    for (i, &d) in t.dims.iter().enumerate() {
        put_u32(&mut rec, tensor_record::DIMS + 4 * i, d);
    }
    let numel = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)));
    let byte_len = numel.and_then(|n| n.checked_mul(t.dtype.size() as u64));
    let byte_len = byte_len
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(Error::LimitExceeded)?;
    let stored_len = match t.storage {
        Storage::SparseConstant
        | Storage::Pow2Constant
        | Storage::SparsePow2Constant
        | Storage::SparsePow2x3Constant => u32_of(t.data.len())?,
        Storage::Arena | Storage::Constant => byte_len,
    };
    put_u32(&mut rec, tensor_record::DATA_LEN, stored_len);
    let offset = match t.storage {
        Storage::Arena => t.arena_offset,
        Storage::Constant
        | Storage::SparseConstant
        | Storage::Pow2Constant
        | Storage::SparsePow2Constant
        | Storage::SparsePow2x3Constant => {
            pad_to(weights, SECTION_ALIGN);
            let offset = u32_of(weights.len())?;
            weights.extend_from_slice(&t.data);
            offset
        }
    };
    put_u32(&mut rec, tensor_record::DATA_OFFSET, offset);
    match &t.quant {
        QuantSpec::None => put_u8(&mut rec, tensor_record::QUANT, QuantKind::None as u8),
        QuantSpec::PerTensor { scale, zero_point } => {
            put_u8(&mut rec, tensor_record::QUANT, QuantKind::PerTensor as u8);
            put_u32(&mut rec, tensor_record::SCALE, scale.to_bits());
            put_u32(&mut rec, tensor_record::ZERO_POINT, *zero_point as u32);
        }
        QuantSpec::PerChannel { axis, scales } => {
            put_u8(&mut rec, tensor_record::QUANT, QuantKind::PerChannel as u8);
            put_u8(&mut rec, tensor_record::QUANT_AXIS, *axis);
            pad_to(weights, SECTION_ALIGN);
            put_u32(
                &mut rec,
                tensor_record::CHANNEL_SCALES_OFFSET,
                u32_of(weights.len())?,
            );
            put_u32(
                &mut rec,
                tensor_record::CHANNEL_COUNT,
                u32_of(scales.len())?,
            );
            weights.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
        }
    }
    put_u32(&mut rec, tensor_record::NAME_OFFSET, u32_of(strings.len())?);
    put_u32(&mut rec, tensor_record::NAME_LEN, u32_of(t.name.len())?);
    strings.extend_from_slice(t.name.as_bytes());
    Ok(rec)
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    buf.resize(buf.len().next_multiple_of(align), 0);
}

fn u32_of(v: usize) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::LimitExceeded)
}

fn u16_of(v: usize) -> Result<u16, Error> {
    u16::try_from(v).map_err(|_| Error::LimitExceeded)
}

fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    if let Some(b) = buf.get_mut(off) {
        *b = v;
    }
}

fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    if let Some(dst) = buf.get_mut(off..off + 2) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    if let Some(dst) = buf.get_mut(off..off + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Lays out a whole file: the header, the section table and each section at
/// the next [`SECTION_ALIGN`] boundary, in the order given, then the CRC.
/// Offsets inside sections are section-relative, so a section's bytes are
/// valid wherever it lands (the signer relies on this).
pub(crate) fn assemble<B: AsRef<[u8]>>(
    sections: &[(SectionId, B)],
    arena_len: usize,
) -> Result<Vec<u8>, Error> {
    let table_len = sections.len() * SECTION_ENTRY_LEN;
    let mut file = std::vec![0u8; HEADER_LEN + table_len];
    let mut table = Vec::with_capacity(table_len);
    for (id, body) in sections {
        pad_to(&mut file, SECTION_ALIGN);
        let mut entry = [0u8; SECTION_ENTRY_LEN];
        put_u32(&mut entry, section_entry::ID, *id as u32);
        put_u32(&mut entry, section_entry::OFFSET, u32_of(file.len())?);
        put_u32(&mut entry, section_entry::LEN, u32_of(body.as_ref().len())?);
        table.extend_from_slice(&entry);
        file.extend_from_slice(body.as_ref());
    }
    let file_len = u32_of(file.len())?;
    if let Some(dst) = file.get_mut(HEADER_LEN..HEADER_LEN + table_len) {
        dst.copy_from_slice(&table);
    }
    let mut head = [0u8; HEADER_LEN];
    head[header::MAGIC..header::MAGIC + 4].copy_from_slice(&MAGIC);
    put_u16(&mut head, header::VERSION, FORMAT_VERSION);
    put_u16(&mut head, header::HEADER_LEN, HEADER_LEN as u16);
    put_u32(&mut head, header::FILE_LEN, file_len);
    put_u16(&mut head, header::SECTION_COUNT, u16_of(sections.len())?);
    put_u32(&mut head, header::ARENA_LEN, u32_of(arena_len)?);
    if let Some(dst) = file.get_mut(..HEADER_LEN) {
        dst.copy_from_slice(&head);
    }
    let crc = super::file_crc32(&file);
    if let Some(dst) = file.get_mut(header::CRC32..header::CRC32 + 4) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(file)
}

/// A storage of weights as codes: how to encode them, and what a weight
/// without a code is told.
#[derive(Clone, Copy)]
struct Packed {
    storage: Storage,
    encode: fn(&[i8], usize) -> Option<Vec<u8>>,
    off_grid: &'static str,
}

impl Packed {
    const POW2: Packed = Packed {
        storage: Storage::Pow2Constant,
        encode: crate::pow2::encode_pow2_rows,
        off_grid: "power-of-two weights must all be 0 or ±2^e with e <= 6",
    };
    const SPARSE_POW2: Packed = Packed {
        storage: Storage::SparsePow2Constant,
        encode: crate::sparse::encode_sparse::<crate::sparse::Pow2NonZeros>,
        off_grid: "power-of-two weights must all be 0 or ±2^e with e <= 6",
    };
    const SPARSE_POW2X3: Packed = Packed {
        storage: Storage::SparsePow2x3Constant,
        encode: crate::sparse::encode_sparse::<crate::sparse::Pow2x3NonZeros>,
        off_grid: "3-bit power-of-two weights must all be 0, ±8, ±16, ±32 or ±64",
    };
}

/// The bytes `weights` (`[rows, ...]`, rows on axis 0) take stored sparse.
pub fn sparse_stored_len(weights: &[i8], rows: usize) -> usize {
    let row_len = weights.len().checked_div(rows).unwrap_or(0);
    crate::sparse::stored_len::<crate::sparse::Int8NonZeros>(weights, row_len).unwrap_or(0)
}

/// The bytes `weights` (`[rows, ...]`) take stored sparse with power-of-two
/// codes for the non-zeros, or `None` when a weight has no code.
pub fn sparse_pow2_stored_len(weights: &[i8], rows: usize) -> Option<usize> {
    let row_len = weights.len().checked_div(rows).unwrap_or(0);
    crate::pow2::all_pow2(weights)
        .then(|| crate::sparse::stored_len::<crate::sparse::Pow2NonZeros>(weights, row_len))
        .flatten()
}

/// The bytes `weights` (`[rows, ...]`) take stored sparse with 3-bit
/// power-of-two codes for the non-zeros, or `None` when a non-zero weight
/// is not `±8, ±16, ±32` or `±64`.
pub fn sparse_pow2x3_stored_len(weights: &[i8], rows: usize) -> Option<usize> {
    let row_len = weights.len().checked_div(rows).unwrap_or(0);
    let coded = |w: i8| w == 0 || crate::pow2::encode_x3(w).is_some();
    weights
        .iter()
        .all(|&w| coded(w))
        .then(|| crate::sparse::stored_len::<crate::sparse::Pow2x3NonZeros>(weights, row_len))
        .flatten()
}

/// The bytes `weights` (`[rows, ...]`) take stored as power-of-two codes, or
/// `None` when a weight has no code.
pub fn pow2_stored_len(weights: &[i8], rows: usize) -> Option<usize> {
    let row_len = weights.len().checked_div(rows).unwrap_or(0);
    crate::pow2::all_pow2(weights)
        .then(|| crate::pow2::Pow2Rows::stored_len(rows, row_len))
        .flatten()
}
