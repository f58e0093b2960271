//! The byte layout of a `.mq` file: the single source of truth shared by the
//! reader (this crate) and the writer (the converter). `FORMAT.md` describes the
//! same layout in prose; keep the two in step.
//!
//! All integers are little-endian. Offsets are from the start of the file unless
//! a field says otherwise.

/// First four bytes of every `.mq` file.
pub const MAGIC: [u8; 4] = *b"MEDQ";
/// The format version this runtime reads and the converter writes.
pub const FORMAT_VERSION: u16 = 1;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Byte offsets of the header fields.
pub mod header {
    pub const MAGIC: usize = 0; // [u8; 4]
    pub const VERSION: usize = 4; // u16
    pub const HEADER_LEN: usize = 6; // u16, = super::HEADER_LEN
    pub const FILE_LEN: usize = 8; // u32, whole file
    pub const CRC32: usize = 12; // u32, CRC-32/ISO-HDLC of the file with this field read as 0
    pub const SECTION_COUNT: usize = 16; // u16
    pub const FLAGS: usize = 18; // u16, must be 0 in v1
    pub const ARENA_LEN: usize = 20; // u32, bytes of arena the model needs
    pub const RESERVED: usize = 24; // [u8; 8], must be 0
}

/// One entry of the section table, which follows the header.
pub const SECTION_ENTRY_LEN: usize = 16;
pub mod section_entry {
    pub const ID: usize = 0; // u32, one of `SectionId`
    pub const OFFSET: usize = 4; // u32, multiple of SECTION_ALIGN
    pub const LEN: usize = 8; // u32
    pub const RESERVED: usize = 12; // u32, must be 0
}
/// Every section, and every constant inside the weight blob, starts on this
/// boundary, so `i32` data can be used in place from a 16-aligned buffer.
pub const SECTION_ALIGN: usize = 16;
/// The alignment the runtime requires of the buffer it parses.
pub const BUFFER_ALIGN: usize = 4;
/// Most sections a file may list.
pub const MAX_SECTIONS: usize = 16;

/// Section identifiers. Required sections must each appear exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum SectionId {
    /// Array of [`TENSOR_RECORD_LEN`]-byte tensor records.
    Tensors = 1,
    /// Array of [`OP_RECORD_LEN`]-byte op records, in execution order.
    Ops = 2,
    /// `u16` tensor indices referenced by op records (inputs then outputs).
    OpIo = 3,
    /// `i32` op parameters referenced by op records.
    Params = 4,
    /// Raw constant data (weights, biases, requant tables, LUTs).
    Weights = 5,
    /// `u16 n_inputs, u16 n_outputs`, then that many `u16` tensor indices.
    GraphIo = 6,
    /// UTF-8 strings referenced by (offset, len) pairs; offsets are section-relative.
    Strings = 7,
    /// Array of [`META_RECORD_LEN`]-byte key/value records; values are strings.
    Metadata = 8,
    /// Optional: one input and its expected output, for a boot-time self-test.
    Golden = 9,
    /// Optional: an Ed25519ph signature of every other byte, see
    /// [`SIGNATURE_LEN`] and `format::signature`.
    Signature = 10,
}

impl SectionId {
    pub const ALL: [SectionId; 10] = [
        SectionId::Tensors,
        SectionId::Ops,
        SectionId::OpIo,
        SectionId::Params,
        SectionId::Weights,
        SectionId::GraphIo,
        SectionId::Strings,
        SectionId::Metadata,
        SectionId::Golden,
        SectionId::Signature,
    ];

    pub const fn from_u32(v: u32) -> Option<SectionId> {
        match v {
            1 => Some(SectionId::Tensors),
            2 => Some(SectionId::Ops),
            3 => Some(SectionId::OpIo),
            4 => Some(SectionId::Params),
            5 => Some(SectionId::Weights),
            6 => Some(SectionId::GraphIo),
            7 => Some(SectionId::Strings),
            8 => Some(SectionId::Metadata),
            9 => Some(SectionId::Golden),
            10 => Some(SectionId::Signature),
            _ => None,
        }
    }

    pub const fn required(self) -> bool {
        !matches!(self, SectionId::Golden | SectionId::Signature)
    }
}

/// Signature section: exactly one Ed25519ph signature (RFC 8032 §5.1,
/// SHA-512 prehash, context [`SIGNATURE_CONTEXT`]) of the whole file with
/// the header's CRC32 field and the signature's own bytes read as zero.
pub const SIGNATURE_LEN: usize = 64;
/// The Ed25519ph context string: a signature made for another purpose with
/// the same key cannot pass as a model signature.
pub const SIGNATURE_CONTEXT: &[u8] = b"medq model v1";

/// Tensor record: 64 bytes.
pub const TENSOR_RECORD_LEN: usize = 64;
pub mod tensor_record {
    pub const DTYPE: usize = 0; // u8, `DType`
    pub const RANK: usize = 1; // u8, 0..=MAX_RANK
    pub const STORAGE: usize = 2; // u8, `Storage`
    pub const QUANT: usize = 3; // u8, `QuantKind`
    pub const QUANT_AXIS: usize = 4; // u8, per-channel axis
    pub const RESERVED: usize = 5; // [u8; 3], must be 0
    pub const DIMS: usize = 8; // [u32; MAX_RANK]; unused dims must be 0
    pub const DATA_OFFSET: usize = 32; // u32: arena offset (activations) or weight-blob offset (constants)
    pub const DATA_LEN: usize = 36; // u32, = product(dims) * dtype size
    pub const SCALE: usize = 40; // f32, per-tensor scale (QuantKind::PerTensor)
    pub const ZERO_POINT: usize = 44; // i32
    pub const CHANNEL_SCALES_OFFSET: usize = 48; // u32, weight-blob offset of f32[channels]
    pub const CHANNEL_COUNT: usize = 52; // u32, = dims[quant_axis] when per-channel
    pub const NAME_OFFSET: usize = 56; // u32, into Strings
    pub const NAME_LEN: usize = 60; // u32
}
/// Highest tensor rank the format stores.
pub const MAX_RANK: usize = 6;

/// Element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    I8 = 0,
    I32 = 1,
    I16 = 2,
}

impl DType {
    pub const fn from_u8(v: u8) -> Option<DType> {
        match v {
            0 => Some(DType::I8),
            1 => Some(DType::I32),
            2 => Some(DType::I16),
            _ => None,
        }
    }
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 4,
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Storage {
    /// In the caller's arena, at the planned offset.
    Arena = 0,
    /// In the weight blob of the file, read in place.
    Constant = 1,
    /// Pruned `i8` weights in the weight blob: per row (axis 0) a bitmap of
    /// the non-zero weights, then all non-zero values packed
    /// ([`SparseRows`](crate::sparse::SparseRows)). Only Conv and
    /// FullyConnected weights may be stored so.
    SparseConstant = 2,
    /// `i8` weights that are all 0 or `±2^e` (`e <= 6`), in the weight blob
    /// as 4-bit codes, two per byte, each row starting on a byte
    /// ([`Pow2Rows`](crate::pow2::Pow2Rows)). Only Conv and FullyConnected
    /// weights may be stored so.
    Pow2Constant = 3,
    /// Pruned `i8` weights that are all 0 or `±2^e`: the bitmap of
    /// `SparseConstant`, then a 4-bit code per non-zero weight, two per
    /// byte ([`SparsePow2Rows`](crate::sparse::SparsePow2Rows)). Only Conv
    /// and FullyConnected weights may be stored so.
    SparsePow2Constant = 4,
    /// Pruned `i8` weights whose non-zeros are all `±8, ±16, ±32` or `±64`:
    /// the bitmap of `SparseConstant`, then a 3-bit code per non-zero weight
    /// ([`SparsePow2x3Rows`](crate::sparse::SparsePow2x3Rows)). Only Conv
    /// and FullyConnected weights may be stored so.
    SparsePow2x3Constant = 5,
}

impl Storage {
    pub const fn from_u8(v: u8) -> Option<Storage> {
        match v {
            0 => Some(Storage::Arena),
            1 => Some(Storage::Constant),
            2 => Some(Storage::SparseConstant),
            3 => Some(Storage::Pow2Constant),
            4 => Some(Storage::SparsePow2Constant),
            5 => Some(Storage::SparsePow2x3Constant),
            _ => None,
        }
    }

    /// In the file rather than the arena.
    pub const fn is_constant(self) -> bool {
        !matches!(self, Storage::Arena)
    }

    /// Weights in a packed form (not a byte per weight) that only Conv and
    /// FullyConnected read.
    pub const fn is_packed_weights(self) -> bool {
        matches!(
            self,
            Storage::SparseConstant
                | Storage::Pow2Constant
                | Storage::SparsePow2Constant
                | Storage::SparsePow2x3Constant
        )
    }
}

/// How a tensor's integers map to reals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum QuantKind {
    /// Plain integers (shifts, multipliers, tables).
    None = 0,
    /// `real = scale · (q − zero_point)`.
    PerTensor = 1,
    /// `real = scale[c] · q` along `quant_axis`; zero point is 0 (symmetric weights).
    PerChannel = 2,
}

impl QuantKind {
    pub const fn from_u8(v: u8) -> Option<QuantKind> {
        match v {
            0 => Some(QuantKind::None),
            1 => Some(QuantKind::PerTensor),
            2 => Some(QuantKind::PerChannel),
            _ => None,
        }
    }
}

/// Op record: 16 bytes.
pub const OP_RECORD_LEN: usize = 16;
pub mod op_record {
    pub const OPCODE: usize = 0; // u16, `OpCode`
    pub const N_INPUTS: usize = 2; // u8
    pub const N_OUTPUTS: usize = 3; // u8
    pub const IO_START: usize = 4; // u32, index (not byte offset) into OpIo
    pub const PARAMS_START: usize = 8; // u32, index (not byte offset) into Params
    pub const N_PARAMS: usize = 12; // u32, number of i32 words
}

/// Metadata record: 12 bytes.
pub const META_RECORD_LEN: usize = 12;
pub mod meta_record {
    pub const KEY: usize = 0; // u32, `MetaKey`
    pub const VALUE_OFFSET: usize = 4; // u32, into Strings
    pub const VALUE_LEN: usize = 8; // u32
}

/// Metadata keys. Unknown keys are allowed and ignored (forward compatible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum MetaKey {
    ModelName = 1,
    ConverterVersion = 2,
    /// Lower-case hex SHA-256 of the source ONNX file.
    SourceSha256 = 3,
    /// Lower-case hex SHA-256 of the calibration file.
    CalibrationSha256 = 4,
    /// Class labels, one per line, in output order.
    ClassLabels = 5,
    /// Free text: calibration method, compression settings.
    Notes = 6,
    /// The abstain rule's minimum top-1 margin of output 0, written `0.`
    /// then 1 to 6 digits (see [`crate::decision::parse_margin`]).
    AbstainMargin = 7,
}

impl MetaKey {
    pub const fn from_u32(v: u32) -> Option<MetaKey> {
        match v {
            1 => Some(MetaKey::ModelName),
            2 => Some(MetaKey::ConverterVersion),
            3 => Some(MetaKey::SourceSha256),
            4 => Some(MetaKey::CalibrationSha256),
            5 => Some(MetaKey::ClassLabels),
            6 => Some(MetaKey::Notes),
            7 => Some(MetaKey::AbstainMargin),
            _ => None,
        }
    }
}

/// Golden section layout: `u32 input_len, u32 output_len`, then the input
/// bytes of graph input 0, padded to 4, then the output bytes of graph output 0.
pub const GOLDEN_HEADER_LEN: usize = 8;

/// The op set. Codes are stable: never renumber, only append.
///
/// Inputs and outputs are tensor indices; `params` are `i32` words. The table
/// in `FORMAT.md` gives each op's inputs and parameter words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u16)]
pub enum OpCode {
    /// 1-D/2-D convolution, grouped and depthwise included.
    Conv = 1,
    /// `y = x · Wᵀ + b` over the last axis (Gemm, MatMul with constant weights).
    FullyConnected = 2,
    /// Elementwise add with broadcasting.
    Add = 3,
    /// Elementwise multiply with broadcasting.
    Mul = 4,
    /// Elementwise 256-entry table: every unary nonlinearity.
    Lut = 5,
    /// Max pooling, 1-D/2-D.
    MaxPool = 6,
    /// Average pooling, 1-D/2-D, global included.
    AvgPool = 7,
    /// Softmax along one axis, through a 256-entry exp table.
    Softmax = 8,
    /// Concatenation along one axis, requantizing each input.
    Concat = 9,
    /// Constant padding.
    Pad = 10,
    /// Same bytes, new shape: may run in place.
    Reshape = 11,
    /// LSTM over a sequence (forward, batch 1): outputs the last hidden state.
    Lstm = 12,
    /// GRU over a sequence (forward, batch 1): outputs the last hidden state.
    Gru = 13,
    /// Transposed convolution, 1-D/2-D, grouped.
    ConvTranspose = 14,
    /// Permutation of up to 4 dims.
    Transpose = 15,
    /// Selection along one axis: a strided range (Slice, Split) or constant
    /// indices (Gather).
    Gather = 16,
    /// Nearest or linear resampling, 1-D/2-D.
    Resize = 17,
    /// Elementwise subtract with broadcasting (Add's words, `b` subtracted).
    Sub = 20,
    /// Elementwise divide with broadcasting (Mul's words, a Q16 quotient).
    Div = 21,
    /// Elementwise minimum with broadcasting.
    Min = 22,
    /// Elementwise maximum with broadcasting.
    Max = 23,
    /// Layer normalization over the trailing axes, integer statistics.
    LayerNorm = 24,
    /// Sum over any axes (ReduceMean too: `1/count` is in the multiplier).
    ReduceSum = 25,
    /// Maximum over any axes.
    ReduceMax = 26,
    /// Rescale between int8 and int16 activations (feature `int16-activations`).
    Requantize = 27,
    /// Matrix product of two int8 tensors (MatMul of computed operands, e.g.
    /// attention's `Q·Kᵀ`), batch dims broadcast.
    MatMul = 28,
    /// The index of the largest value along one axis, as an int8 tensor of
    /// scale 1 (a classifier's predicted class as a model output).
    ArgMax = 29,
    /// Euclidean norm over any axes (ReduceL2, a complex spectrum's
    /// magnitude): an exact integer sum of squares and integer square root.
    ReduceL2 = 30,
    /// Natural logarithm of an int16 activation, through an integer `log2`
    /// (feature `op-log`): exact at any input scale, where an interpolated
    /// table is not (log band powers, log-variance features).
    Log = 31,
    /// Simple (Elman) RNN over a sequence (batch 1, either direction): one
    /// gate whose table is the activation (tanh, ReLU, sigmoid).
    Rnn = 32,
    /// `cond ? a : b` elementwise with broadcasting (ONNX Where on a
    /// computed condition: a padding mask given as a model input).
    Select = 33,
    /// The `k` largest (or smallest) values along one axis, or their
    /// indices (ONNX TopK: the strongest peaks of a window).
    TopK = 34,
}

impl OpCode {
    /// Every op code, in code order.
    pub const ALL: [OpCode; 32] = [
        OpCode::Conv,
        OpCode::FullyConnected,
        OpCode::Add,
        OpCode::Mul,
        OpCode::Lut,
        OpCode::MaxPool,
        OpCode::AvgPool,
        OpCode::Softmax,
        OpCode::Concat,
        OpCode::Pad,
        OpCode::Reshape,
        OpCode::Lstm,
        OpCode::Gru,
        OpCode::ConvTranspose,
        OpCode::Transpose,
        OpCode::Gather,
        OpCode::Resize,
        OpCode::Sub,
        OpCode::Div,
        OpCode::Min,
        OpCode::Max,
        OpCode::LayerNorm,
        OpCode::ReduceSum,
        OpCode::ReduceMax,
        OpCode::Requantize,
        OpCode::MatMul,
        OpCode::ArgMax,
        OpCode::ReduceL2,
        OpCode::Log,
        OpCode::Rnn,
        OpCode::Select,
        OpCode::TopK,
    ];

    pub const fn from_u16(v: u16) -> Option<OpCode> {
        match v {
            1 => Some(OpCode::Conv),
            2 => Some(OpCode::FullyConnected),
            3 => Some(OpCode::Add),
            4 => Some(OpCode::Mul),
            5 => Some(OpCode::Lut),
            6 => Some(OpCode::MaxPool),
            7 => Some(OpCode::AvgPool),
            8 => Some(OpCode::Softmax),
            9 => Some(OpCode::Concat),
            10 => Some(OpCode::Pad),
            11 => Some(OpCode::Reshape),
            12 => Some(OpCode::Lstm),
            13 => Some(OpCode::Gru),
            14 => Some(OpCode::ConvTranspose),
            15 => Some(OpCode::Transpose),
            16 => Some(OpCode::Gather),
            17 => Some(OpCode::Resize),
            20 => Some(OpCode::Sub),
            21 => Some(OpCode::Div),
            22 => Some(OpCode::Min),
            23 => Some(OpCode::Max),
            24 => Some(OpCode::LayerNorm),
            25 => Some(OpCode::ReduceSum),
            26 => Some(OpCode::ReduceMax),
            27 => Some(OpCode::Requantize),
            28 => Some(OpCode::MatMul),
            29 => Some(OpCode::ArgMax),
            30 => Some(OpCode::ReduceL2),
            31 => Some(OpCode::Log),
            32 => Some(OpCode::Rnn),
            33 => Some(OpCode::Select),
            34 => Some(OpCode::TopK),
            _ => None,
        }
    }

    /// Human-readable name, used by `medq inspect` and error messages.
    pub const fn name(self) -> &'static str {
        match self {
            OpCode::Conv => "Conv",
            OpCode::FullyConnected => "FullyConnected",
            OpCode::Add => "Add",
            OpCode::Mul => "Mul",
            OpCode::Lut => "Lut",
            OpCode::MaxPool => "MaxPool",
            OpCode::AvgPool => "AvgPool",
            OpCode::Softmax => "Softmax",
            OpCode::Concat => "Concat",
            OpCode::Pad => "Pad",
            OpCode::Reshape => "Reshape",
            OpCode::Lstm => "Lstm",
            OpCode::Gru => "Gru",
            OpCode::ConvTranspose => "ConvTranspose",
            OpCode::Transpose => "Transpose",
            OpCode::Gather => "Gather",
            OpCode::Resize => "Resize",
            OpCode::Sub => "Sub",
            OpCode::Div => "Div",
            OpCode::Min => "Min",
            OpCode::Max => "Max",
            OpCode::LayerNorm => "LayerNorm",
            OpCode::ReduceSum => "ReduceSum",
            OpCode::ReduceMax => "ReduceMax",
            OpCode::Requantize => "Requantize",
            OpCode::MatMul => "MatMul",
            OpCode::ArgMax => "ArgMax",
            OpCode::ReduceL2 => "ReduceL2",
            OpCode::Log => "Log",
            OpCode::Rnn => "Rnn",
            OpCode::Select => "Select",
            OpCode::TopK => "TopK",
        }
    }

    /// Whether the op may write its output over an input that dies at it (same
    /// offset and length). The planner uses this; the validator checks it.
    pub const fn may_run_in_place(self) -> bool {
        matches!(self, OpCode::Reshape)
    }
}

/// Parameter word layouts, one module per op. Each constant is a word index;
/// `COUNT` is the number of words (Concat: `COUNT_FIXED + 2 · n_inputs`).
pub mod params {
    /// Conv inputs: `[x, weights i8 [Cout, Cin/groups, kH, kW], bias i32 [Cout],
    /// multiplier i32 [Cout], shift i8 [Cout]]`; output `y`.
    /// `x` is `[N, Cin, H, W]` or `[N, Cin, L]` (1-D: H = 1; N samples run one
    /// at a time on the same weights). `x` and `y`
    /// are both `i8`, or both `i16` (feature `int16-activations`: dense
    /// weights, the activation range within `i16`).
    pub mod conv {
        pub const STRIDE_H: usize = 0;
        pub const STRIDE_W: usize = 1;
        pub const DILATION_H: usize = 2;
        pub const DILATION_W: usize = 3;
        pub const PAD_TOP: usize = 4;
        pub const PAD_LEFT: usize = 5;
        pub const PAD_BOTTOM: usize = 6;
        pub const PAD_RIGHT: usize = 7;
        pub const GROUPS: usize = 8;
        pub const ACT_MIN: usize = 9;
        pub const ACT_MAX: usize = 10;
        pub const COUNT: usize = 11;
    }
    /// FullyConnected inputs: `[x, weights i8 [N, K], bias i32 [N], multiplier
    /// i32 [N], shift i8 [N]]`; `x` has `M·K` elements, last dim `K`; output `[.., N]`.
    /// `x` and `y` both `i8` or both `i16`, as for Conv.
    pub mod fully_connected {
        pub const ACT_MIN: usize = 0;
        pub const ACT_MAX: usize = 1;
        pub const COUNT: usize = 2;
    }
    /// Add inputs `[a, b]` (either may be a constant), numpy broadcasting.
    /// `y = requant(requant((a−za)<<ls, ma, sa) + requant((b−zb)<<ls, mb, sb), mo, so) + zy`.
    pub mod add {
        pub const LEFT_SHIFT: usize = 0;
        pub const A_MULTIPLIER: usize = 1;
        pub const A_SHIFT: usize = 2;
        pub const B_MULTIPLIER: usize = 3;
        pub const B_SHIFT: usize = 4;
        pub const OUT_MULTIPLIER: usize = 5;
        pub const OUT_SHIFT: usize = 6;
        pub const ACT_MIN: usize = 7;
        pub const ACT_MAX: usize = 8;
        pub const COUNT: usize = 9;
    }
    /// Mul inputs `[a, b]`: `y = requant((a−za)·(b−zb), m, s) + zy`.
    pub mod mul {
        pub const OUT_MULTIPLIER: usize = 0;
        pub const OUT_SHIFT: usize = 1;
        pub const ACT_MIN: usize = 2;
        pub const ACT_MAX: usize = 3;
        pub const COUNT: usize = 4;
    }
    /// MatMul inputs `[a [..., M, K], b [..., K, N]]` (either may be a
    /// constant), output `[..., M, N]`; the batch dims broadcast (numpy
    /// rules, at most 4). `y = requant(Σₖ (a−za)·(b−zb), m, s) + zy`.
    pub mod mat_mul {
        pub const OUT_MULTIPLIER: usize = 0;
        pub const OUT_SHIFT: usize = 1;
        pub const ACT_MIN: usize = 2;
        pub const ACT_MAX: usize = 3;
        pub const COUNT: usize = 4;
    }
    /// ArgMax input `[x]`: along `AXIS`, the index of the largest value
    /// (the first of equal ones, or the last with `SELECT_LAST_INDEX` 1);
    /// the output an `i8` tensor of scale 1 and zero point 0.
    pub mod arg_max {
        pub const AXIS: usize = 0;
        pub const SELECT_LAST_INDEX: usize = 1;
        pub const COUNT: usize = 2;
    }
    /// Select inputs `[cond, a, b]`, broadcast (numpy rules, at most 4 dims)
    /// to the output: where `cond` is not its zero point (a real value other
    /// than 0), `a` requantized to the output, else `b`:
    /// `y = clamp(requant(x − zx, m, s) + zy)` with `x`'s multiplier and
    /// shift. Min and Max's words.
    pub mod select {
        pub use super::min_max::*;
    }
    /// TopK input `[x]`: along `AXIS`, the `K` largest values (`LARGEST` 1)
    /// or smallest (0), in order, of equal values the lower index first;
    /// with `INDICES` 1 their indices instead (an output of scale 1 and zero
    /// point 0, as ArgMax's), else the values (`x`'s quantization).
    pub mod top_k {
        pub const AXIS: usize = 0;
        pub const K: usize = 1;
        pub const LARGEST: usize = 2;
        pub const INDICES: usize = 3;
        pub const COUNT: usize = 4;
    }
    /// Lut inputs `[x, table i8 [256]]`: `y[i] = table[x[i] + 128]`.
    pub mod lut {
        pub const COUNT: usize = 0;
    }
    /// MaxPool/AvgPool input `[x]` (`[N, C, H, W]` or `[N, C, L]`); output same
    /// quantization and dtype (`i8`, or `i16` with feature `int16-activations`).
    pub mod pool {
        pub const KERNEL_H: usize = 0;
        pub const KERNEL_W: usize = 1;
        pub const STRIDE_H: usize = 2;
        pub const STRIDE_W: usize = 3;
        pub const DILATION_H: usize = 4;
        pub const DILATION_W: usize = 5;
        pub const PAD_TOP: usize = 6;
        pub const PAD_LEFT: usize = 7;
        pub const PAD_BOTTOM: usize = 8;
        pub const PAD_RIGHT: usize = 9;
        /// AvgPool: 1 to divide by the full window, 0 by the valid elements only.
        pub const COUNT_INCLUDE_PAD: usize = 10;
        pub const COUNT: usize = 11;
    }
    /// Softmax inputs `[x, exp_table i32 [256]]`, or for an `i16` `x`
    /// `[x, exp_table i32 [512]]` (low-byte then high-byte factors); output
    /// `i8`, scale 1/256, zero point −128.
    pub mod softmax {
        /// Non-negative axis of `x`.
        pub const AXIS: usize = 0;
        pub const COUNT: usize = 1;
    }
    /// Concat inputs `[x0, .., xn−1]`; then `(multiplier, shift)` per input.
    pub mod concat {
        /// Non-negative axis.
        pub const AXIS: usize = 0;
        pub const COUNT_FIXED: usize = 1;
    }
    /// Pad input `[x]`: `PADS` holds `rank` begin counts then `rank` end counts.
    pub mod pad {
        /// The quantized pad value (`i8` range).
        pub const VALUE: usize = 0;
        pub const PADS: usize = 1;
    }
    /// Reshape input `[x]`; output of the same dtype (`i8` or `i16`).
    pub mod reshape {
        pub const COUNT: usize = 0;
    }
    /// The inputs shared by Lstm, Gru and Rnn (`G` gates: 4 for Lstm in the
    /// order i, f, g, o; 3 for Gru in the order z, r, n; 1 for Rnn), by input
    /// index. `x` is
    /// `T·I` i8 values (last dim `I`), `y` holds the last hidden state (`H`
    /// values, last dim `H`). See `NUMERICS.md` § Recurrent ops.
    pub mod recurrent {
        pub const X: usize = 0;
        /// i8 `[G·H, I]`, symmetric.
        pub const W: usize = 1;
        /// i8 `[G·H, H]`, symmetric.
        pub const R: usize = 2;
        /// i32 `[G·H]` each, except the shifts: i8 `[G·H]`.
        pub const BIAS_X: usize = 3;
        pub const BIAS_H: usize = 4;
        pub const X_MULTIPLIER: usize = 5;
        pub const X_SHIFT: usize = 6;
        pub const H_MULTIPLIER: usize = 7;
        pub const H_SHIFT: usize = 8;
        /// i16 `[n_tables, 257]`: Lstm 5 (i, f, g, o, tanh of the cell), Gru 3
        /// (z, r, n), Rnn 1 (the activation).
        pub const TABLES: usize = 9;
        pub const INPUT_COUNT: usize = 10;
        /// With `FLAG_INITIAL_STATE`: the initial hidden state, an int8
        /// activation of `H` elements (a stream's state from its last window).
        pub const H0: usize = 10;
        /// With `FLAG_INITIAL_CELL` (Lstm): the initial cell state, likewise.
        pub const C0: usize = 11;
        /// Entries per interpolated table.
        pub const TABLE_LEN: usize = 257;
        /// Bits of the optional flags word (`lstm::FLAGS`, `gru::FLAGS`; a
        /// record without it has flags 0): run the steps last to first.
        pub const FLAG_REVERSE: i32 = 1;
        /// Output every step's hidden state, `[T, H]`, not only the last.
        pub const FLAG_SEQUENCE: i32 = 2;
        /// Input `H0` is present, and two words follow the flags word: its
        /// multiplier and shift onto the hidden state's Q0.15.
        pub const FLAG_INITIAL_STATE: i32 = 4;
        /// (Lstm, with `FLAG_INITIAL_STATE`) input `C0` is present, and two
        /// more words follow: its multiplier and shift onto the cell scale.
        pub const FLAG_INITIAL_CELL: i32 = 8;
        /// (Lstm, without `FLAG_SEQUENCE`) the output is the last cell
        /// state (ONNX `Y_c`, a stream's cell state for its next window),
        /// `out_multiplier` bringing the cell scale onto `y`'s.
        pub const FLAG_CELL_OUTPUT: i32 = 16;
    }
    /// Lstm parameter words (inputs: [`recurrent`]).
    pub mod lstm {
        /// `i·g` (Q0.30) → cell scale.
        pub const CELL_MULTIPLIER: usize = 0;
        pub const CELL_SHIFT: usize = 1;
        /// Cell scale → the input scale of the cell tanh table.
        pub const TANH_MULTIPLIER: usize = 2;
        pub const TANH_SHIFT: usize = 3;
        /// Hidden state (Q0.15) → `y`.
        pub const OUT_MULTIPLIER: usize = 4;
        pub const OUT_SHIFT: usize = 5;
        pub const COUNT: usize = 6;
        /// Optional (`COUNT + 1` words): `recurrent::FLAG_*` bits.
        pub const FLAGS: usize = 6;
        pub const GATES: usize = 4;
        pub const TABLES: usize = 5;
    }
    /// Gru parameter words (inputs: [`recurrent`]).
    pub mod gru {
        /// ONNX `linear_before_reset`: 0 or 1.
        pub const LINEAR_BEFORE_RESET: usize = 0;
        /// `r · (R_n h + b)` (Q0.15 × its own scale) → n gate scale; used when
        /// `LINEAR_BEFORE_RESET` is 1.
        pub const RH_MULTIPLIER: usize = 1;
        pub const RH_SHIFT: usize = 2;
        /// Hidden state (Q0.15) → `y`.
        pub const OUT_MULTIPLIER: usize = 3;
        pub const OUT_SHIFT: usize = 4;
        pub const COUNT: usize = 5;
        /// Optional (`COUNT + 1` words): `recurrent::FLAG_*` bits.
        pub const FLAGS: usize = 5;
        pub const GATES: usize = 3;
        pub const TABLES: usize = 3;
    }
    /// Rnn parameter words (inputs: [`recurrent`]). The hidden state's
    /// scale is the converter's (Q0.15 for tanh and sigmoid); the table maps
    /// a pre-activation onto it.
    pub mod rnn {
        /// Hidden state → `y`.
        pub const OUT_MULTIPLIER: usize = 0;
        pub const OUT_SHIFT: usize = 1;
        pub const COUNT: usize = 2;
        /// Optional (`COUNT + 1` words): `recurrent::FLAG_*` bits.
        pub const FLAGS: usize = 2;
        pub const GATES: usize = 1;
        pub const TABLES: usize = 1;
    }
    /// ConvTranspose inputs: `[x, weights i8 [Cout, Cin/groups, kH, kW],
    /// bias i32 [Cout], multiplier i32 [Cout], shift i8 [Cout]]`, the
    /// operands of Conv. The weights are ONNX's `[Cin, Cout/groups, kH, kW]`
    /// regrouped by output channel, so per-channel scales stay on axis 0.
    pub mod conv_transpose {
        pub const STRIDE_H: usize = 0;
        pub const STRIDE_W: usize = 1;
        pub const DILATION_H: usize = 2;
        pub const DILATION_W: usize = 3;
        pub const PAD_TOP: usize = 4;
        pub const PAD_LEFT: usize = 5;
        pub const PAD_BOTTOM: usize = 6;
        pub const PAD_RIGHT: usize = 7;
        pub const OUTPUT_PAD_H: usize = 8;
        pub const OUTPUT_PAD_W: usize = 9;
        pub const GROUPS: usize = 10;
        pub const ACT_MIN: usize = 11;
        pub const ACT_MAX: usize = 12;
        pub const COUNT: usize = 13;
    }
    /// Transpose input `[x]` (rank ≤ 4): `PERM` holds `rank` words, output
    /// dim `d` is input dim `perm[d]` (ONNX `perm`).
    pub mod transpose {
        pub const PERM: usize = 0;
    }
    /// Gather input `[x]`: output index `k` along `AXIS` reads input index
    /// `START + k·STEP` (Slice, Split); or inputs `[x, indices i32 [count]]`
    /// with `START = STEP = 0`: it reads `indices[k]` (Gather).
    pub mod gather {
        /// Non-negative axis.
        pub const AXIS: usize = 0;
        pub const START: usize = 1;
        /// Non-zero; negative walks backwards.
        pub const STEP: usize = 2;
        pub const COUNT: usize = 3;
    }
    /// Resize input `[x]` (`[1, C, H, W]` or `[1, C, L]`). The scale along
    /// an axis is `SCALE_NUM / SCALE_DEN` (output per input, ONNX `scales`,
    /// or `sizes / input size`), each in `1..=MAX_SCALE_TERM`.
    pub mod resize {
        pub const MODE: usize = 0;
        pub const COORDINATE: usize = 1;
        pub const NEAREST: usize = 2;
        pub const SCALE_NUM_H: usize = 3;
        pub const SCALE_DEN_H: usize = 4;
        pub const SCALE_NUM_W: usize = 5;
        pub const SCALE_DEN_W: usize = 6;
        pub const COUNT: usize = 7;
        /// `MODE` values.
        pub const MODE_NEAREST: i32 = 0;
        pub const MODE_LINEAR: i32 = 1;
        /// `COORDINATE` values (ONNX `coordinate_transformation_mode`).
        pub const HALF_PIXEL: i32 = 0;
        pub const ASYMMETRIC: i32 = 1;
        pub const ALIGN_CORNERS: i32 = 2;
        pub const PYTORCH_HALF_PIXEL: i32 = 3;
        /// `NEAREST` values (ONNX `nearest_mode`; 0 for `MODE_LINEAR`).
        pub const ROUND_PREFER_FLOOR: i32 = 0;
        pub const ROUND_PREFER_CEIL: i32 = 1;
        pub const FLOOR: i32 = 2;
        pub const CEIL: i32 = 3;
        /// Largest scale numerator or denominator.
        pub const MAX_SCALE_TERM: i32 = 1 << 20;
    }
    // ---- the math ops (codes 20–26) ----
    /// Sub: Add's words ([`add`]), `y = … requant(a) − requant(b) …`.
    /// Div: Mul's words ([`mul`]), `y = requant(round((a−za)·2^16/(b−zb)), m, s) + zy`.
    /// Min/Max inputs `[a, b]`: each operand rescaled to the output scale,
    /// then compared: `y = clamp(op(requant(a−za, ma, sa), requant(b−zb, mb, sb)) + zy)`.
    pub mod min_max {
        pub const A_MULTIPLIER: usize = 0;
        pub const A_SHIFT: usize = 1;
        pub const B_MULTIPLIER: usize = 2;
        pub const B_SHIFT: usize = 3;
        pub const ACT_MIN: usize = 4;
        pub const ACT_MAX: usize = 5;
        pub const COUNT: usize = 6;
    }
    /// LayerNorm inputs `[x, gamma i8 [N], bias i32 [N], multiplier i32 [N],
    /// shift i8 [N]]`, `N` the product of the dims from `AXIS` on.
    pub mod layer_norm {
        pub const X: usize = 0;
        pub const GAMMA: usize = 1;
        pub const BIAS: usize = 2;
        pub const MULTIPLIER: usize = 3;
        pub const SHIFT: usize = 4;
        pub const INPUT_COUNT: usize = 5;
        /// Non-negative first normalized axis.
        pub const AXIS: usize = 0;
        /// The epsilon statistic `round(ε · N² / scale_x²)`, an `i64` in two
        /// words: low 32 bits, then high 32 bits.
        pub const EPSILON_LO: usize = 1;
        pub const EPSILON_HI: usize = 2;
        pub const ACT_MIN: usize = 3;
        pub const ACT_MAX: usize = 4;
        pub const COUNT: usize = 5;
    }
    /// ReduceSum/ReduceMax input `[x]` (rank <= 6); the output holds the kept
    /// dims, with or without 1s in place of the reduced ones.
    pub mod reduce {
        /// Bit `d` set: axis `d` is reduced (at least one bit, below the rank).
        pub const AXES: usize = 0;
        pub const MULTIPLIER: usize = 1;
        pub const SHIFT: usize = 2;
        pub const ACT_MIN: usize = 3;
        pub const ACT_MAX: usize = 4;
        pub const COUNT: usize = 5;
    }
    /// ReduceL2 input `[x]`: `reduce`'s words, then `EPS`, a non-negative
    /// integer added to the sum of squares at 16 fractional bits
    /// (`round(ε · 2^16 / s_x²)` for `sqrt(Σ x² + ε)`).
    pub mod reduce_l2 {
        pub const AXES: usize = 0;
        pub const MULTIPLIER: usize = 1;
        pub const SHIFT: usize = 2;
        pub const ACT_MIN: usize = 3;
        pub const ACT_MAX: usize = 4;
        pub const EPS: usize = 5;
        pub const COUNT: usize = 6;
    }
    /// Requantize input `[x]` (an `i8` or `i16` activation, not both `i8`);
    /// output `y` of the same element count:
    /// `y = clamp(zp_y + requantize(x − zp_x, m, s))` to `y`'s dtype.
    pub mod requantize {
        pub const MULTIPLIER: usize = 0;
        pub const SHIFT: usize = 1;
        pub const COUNT: usize = 2;
    }
    /// Log input `[x]`, `x` and the output both `i16` (zero point 0), the
    /// same shape: `y = requantize(log2_q16(x) + BIAS, MULTIPLIER, SHIFT)`
    /// where `x ≥ LOW_INPUT` (at least 1), `LOW_OUTPUT` below.
    pub mod log {
        pub const BIAS: usize = 0;
        pub const MULTIPLIER: usize = 1;
        pub const SHIFT: usize = 2;
        pub const LOW_INPUT: usize = 3;
        pub const LOW_OUTPUT: usize = 4;
        pub const COUNT: usize = 5;
    }
}
