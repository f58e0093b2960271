//! The op registry: one module per op family, each the only place its op
//! lives. A family's `prepare` decodes an op record, checks it against its
//! kernel's contract and chooses the kernel (once, when the model is parsed
//! and when an [`Interpreter`](crate::Interpreter) is built); its `eval`
//! resolves the operands in the arena and calls that kernel.
//!
//! [`prepare`] and `PreparedOp::eval` match over every [`OpCode`] with no
//! catch-all arm, so an op added to the format and forgotten here does not
//! compile. [`is_built_in`] is the one answer to "is this op's kernel in
//! this build?" (the `op-*` cargo features).
#![forbid(unsafe_code)]

mod arg_max;
mod concat;
#[cfg(feature = "op-select")]
mod conditional;
mod conv;
mod conv_transpose;
mod elementwise;
mod fully_connected;
mod gather;
mod lut;
mod mat_mul;
#[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
mod packed_blocks;
mod pad;
mod pool;
mod recurrent;
#[cfg(feature = "op-requantize")]
mod requantize;
mod reshape;
mod resize;
mod softmax;
#[cfg(feature = "op-top-k")]
mod top_k;
mod transpose;
mod window;
// The math ops (codes 20–26).
mod binary;
mod layer_norm;
mod reduce;

pub use add_shift::MAX_ADD_LEFT_SHIFT;
pub use pool::MAX_AVG_POOL_WINDOW;
pub use reduce::MAX_REDUCE_COUNT;
#[cfg(all(feature = "std", feature = "int16-activations"))]
pub use softmax::softmax_exp_table_s16;
#[cfg(feature = "std")]
pub use softmax::softmax_exp_table_s8;
pub use softmax::{SOFTMAX_OUTPUT_S16_SCALE, SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT};

use crate::error::Error;
use crate::format::layout::{DType, OpCode, Storage};
use crate::format::{Model, OpInfo, Quant, TensorInfo};
use crate::kernels::select::Candidate;
#[cfg(feature = "int16-activations")]
use crate::kernels::select::{self, Chosen, LayerS16Fn};
use crate::numerics::{MAX_SHIFT, MIN_SHIFT};
#[cfg(feature = "pow2-weights")]
use crate::pow2::Pow2Rows;
#[cfg(feature = "sparse-weights")]
use crate::sparse::SparseRows;
#[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
use crate::sparse::{SparsePow2Rows, SparsePow2x3Rows};

mod add_shift {
    /// The Add kernel's largest headroom shift: `(x − z) << 20` fits `i32`.
    pub const MAX_ADD_LEFT_SHIFT: i32 = 20;
}

/// Whether this build holds `opcode`'s kernel (its `op-*` cargo feature).
/// [`Model::parse`] refuses a model with an op left out, with
/// [`Error::OpNotBuiltIn`].
pub const fn is_built_in(opcode: OpCode) -> bool {
    match opcode {
        OpCode::Conv => cfg!(feature = "op-conv"),
        OpCode::FullyConnected => cfg!(feature = "op-fully-connected"),
        OpCode::Add => cfg!(feature = "op-add"),
        OpCode::Mul => cfg!(feature = "op-mul"),
        OpCode::Lut => cfg!(feature = "op-lut"),
        OpCode::MaxPool => cfg!(feature = "op-max-pool"),
        OpCode::AvgPool => cfg!(feature = "op-avg-pool"),
        OpCode::Softmax => cfg!(feature = "op-softmax"),
        OpCode::Concat => cfg!(feature = "op-concat"),
        OpCode::Pad => cfg!(feature = "op-pad"),
        OpCode::Reshape => cfg!(feature = "op-reshape"),
        OpCode::Lstm => cfg!(feature = "op-lstm"),
        OpCode::Gru => cfg!(feature = "op-gru"),
        OpCode::Rnn => cfg!(feature = "op-rnn"),
        OpCode::ConvTranspose => cfg!(feature = "op-conv-transpose"),
        OpCode::Transpose => cfg!(feature = "op-transpose"),
        OpCode::Gather => cfg!(feature = "op-gather"),
        OpCode::Resize => cfg!(feature = "op-resize"),
        OpCode::Sub => cfg!(feature = "op-sub"),
        OpCode::Div => cfg!(feature = "op-div"),
        OpCode::Min => cfg!(feature = "op-min"),
        OpCode::Max => cfg!(feature = "op-max"),
        OpCode::LayerNorm => cfg!(feature = "op-layer-norm"),
        OpCode::ReduceSum => cfg!(feature = "op-reduce-sum"),
        OpCode::ReduceMax => cfg!(feature = "op-reduce-max"),
        OpCode::ReduceL2 => cfg!(feature = "op-reduce-l2"),
        OpCode::Log => cfg!(feature = "op-log"),
        OpCode::Requantize => cfg!(feature = "op-requantize"),
        OpCode::MatMul => cfg!(feature = "op-mat-mul"),
        OpCode::ArgMax => cfg!(feature = "op-arg-max"),
        OpCode::Select => cfg!(feature = "op-select"),
        OpCode::TopK => cfg!(feature = "op-top-k"),
    }
}

/// A byte range of the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    fn of(t: &TensorInfo<'_>) -> Span {
        Span {
            offset: t.offset,
            len: t.len,
        }
    }
}

/// Where an `i8` operand lives: in the arena, or in the file (a constant).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand<'a> {
    Arena(Span),
    Const(&'a [i8]),
}

impl<'a> Operand<'a> {
    fn of(t: &TensorInfo<'a>) -> Operand<'a> {
        match t.storage {
            // Validation allows a packed constant only as Conv or
            // FullyConnected weights, which are not read as operands.
            Storage::Constant
            | Storage::SparseConstant
            | Storage::Pow2Constant
            | Storage::SparsePow2Constant
            | Storage::SparsePow2x3Constant => Operand::Const(t.data_i8().unwrap_or(&[])),
            Storage::Arena => Operand::Arena(Span::of(t)),
        }
    }
}
/// Conv or FullyConnected weights, as the file stores them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Weights<'a> {
    Dense(&'a [i8]),
    /// Run by the reference kernels that skip the zeros.
    #[cfg(feature = "sparse-weights")]
    Sparse(SparseRows<'a>),
    /// Run by the reference kernels that multiply by shifting.
    #[cfg(feature = "pow2-weights")]
    Pow2(Pow2Rows<'a>),
    /// Pruned and on the power-of-two grid: run by the kernels that skip
    /// the zeros, decoding each code.
    #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
    SparsePow2(SparsePow2Rows<'a>),
    /// The same with 3-bit codes.
    #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
    SparsePow2x3(SparsePow2x3Rows<'a>),
}

/// The weights of an int16 Conv or FullyConnected: dense int8 (16x8) or
/// int16 (16x16).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(crate) enum WeightsS16<'a> {
    S8(&'a [i8]),
    S16(&'a [i16]),
}

/// The per-output-channel requantization of Conv and FullyConnected.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requant<'a> {
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i8],
}

impl<'a> Requant<'a> {
    /// `(bias, multiplier, shift)`.
    #[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
    pub fn vectors(&self) -> (&'a [i32], &'a [i32], &'a [i8]) {
        (self.bias, self.multiplier, self.shift)
    }
}

/// One op, decoded, validated and with its kernel chosen: what an
/// [`Interpreter`](crate::Interpreter) runs.
///
/// The caller provides the memory for a model's prepared ops, like the
/// arena ([`Model::op_count`] entries, each starting as
/// [`PreparedOp::EMPTY`]), so that nothing is decoded on each run and
/// nothing is allocated.
#[derive(Clone, Copy, Debug)]
pub struct PreparedOp<'a> {
    index: u16,
    output_tensor: u16,
    output: Span,
    kind: Kind<'a>,
    /// Output values at −128 or 127 after the op's latest run.
    #[cfg(feature = "saturation-counters")]
    saturated: u32,
    /// The output is `i16`: its rails are −32768 and 32767.
    #[cfg(all(feature = "saturation-counters", feature = "int16-activations"))]
    wide: bool,
}

/// The family-specific part of a prepared op.
///
/// `repr(u8)` with `Empty` first makes [`PreparedOp::EMPTY`] all zero bytes,
/// so a firmware's `static mut PLAN` lands in `.bss`, not in `.data` where it
/// would also take its size in flash (a niche-encoded tag is not zero).
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
enum Kind<'a> {
    Empty = 0,
    Conv(conv::Conv<'a>),
    FullyConnected(fully_connected::FullyConnected<'a>),
    Add(elementwise::Add<'a>),
    Mul(elementwise::Mul<'a>),
    Lut(lut::Lut<'a>),
    MaxPool(pool::Pool<'a>),
    AvgPool(pool::Pool<'a>),
    Softmax(softmax::Softmax<'a>),
    Concat(concat::Concat<'a>),
    #[cfg(feature = "int16-activations")]
    ConcatS16(concat::ConcatS16<'a>),
    Pad(pad::Pad<'a>),
    Reshape(reshape::Reshape<'a>),
    #[cfg(feature = "op-lstm")]
    Lstm(recurrent::Lstm<'a>),
    #[cfg(feature = "op-gru")]
    Gru(recurrent::Gru<'a>),
    #[cfg(feature = "op-rnn")]
    Rnn(recurrent::Rnn<'a>),
    ConvTranspose(conv_transpose::ConvTranspose<'a>),
    #[cfg(feature = "int16-activations")]
    ConvTransposeS16(conv_transpose::ConvTransposeS16<'a>),
    Transpose(transpose::Transpose<'a>),
    Gather(gather::Gather<'a>),
    Resize(resize::Resize<'a>),
    Sub(binary::Binary<'a, crate::kernels::AddParams>),
    Div(binary::Binary<'a, crate::kernels::MulParams>),
    Min(binary::Binary<'a, crate::kernels::MinMaxParams>),
    Max(binary::Binary<'a, crate::kernels::MinMaxParams>),
    LayerNorm(layer_norm::LayerNorm<'a>),
    ReduceSum(reduce::Reduce<'a>),
    ReduceMax(reduce::Reduce<'a>),
    ReduceL2(reduce::Reduce<'a>),
    MatMul(mat_mul::MatMul<'a>),
    ArgMax(arg_max::ArgMax<'a>),
    #[cfg(feature = "op-top-k")]
    TopK(top_k::TopK<'a>),
    // Gated as the recurrent ops: its three broadcast operands would grow
    // every plan slot of a firmware that never selects.
    #[cfg(feature = "op-select")]
    Select(conditional::Select<'a>),
    #[cfg(all(feature = "int16-activations", feature = "op-select"))]
    SelectS16(conditional::SelectS16<'a>),
    // Int16 activations: their own variants, so that a build without them
    // keeps the enum and the dispatch as they were.
    #[cfg(feature = "int16-activations")]
    ConvS16(conv::ConvS16<'a>),
    #[cfg(feature = "int16-activations")]
    FullyConnectedS16(fully_connected::FullyConnectedS16<'a>),
    #[cfg(feature = "int16-activations")]
    MaxPoolS16(pool::PoolS16),
    #[cfg(feature = "int16-activations")]
    AvgPoolS16(pool::PoolS16),
    #[cfg(feature = "int16-activations")]
    SoftmaxS16(softmax::SoftmaxS16<'a>),
    #[cfg(feature = "int16-activations")]
    MatMulS16(mat_mul::MatMulS16<'a>),
    #[cfg(feature = "int16-activations")]
    BinaryS16(binary::BinaryS16<'a>),
    #[cfg(feature = "int16-activations")]
    LayerNormS16(layer_norm::LayerNormS16<'a>),
    #[cfg(feature = "int16-activations")]
    LutS16(lut::LutS16<'a>),
    #[cfg(feature = "int16-activations")]
    ReduceSumS16(reduce::ReduceS16<'a>),
    #[cfg(feature = "int16-activations")]
    ReduceMaxS16(reduce::ReduceS16<'a>),
    #[cfg(feature = "int16-activations")]
    ReduceL2S16(reduce::ReduceS16<'a>),
    #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
    LstmS16(recurrent::RecurrentS16<'a, crate::kernels::LstmParams>),
    #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
    GruS16(recurrent::RecurrentS16<'a, crate::kernels::GruParams>),
    #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
    RnnS16(recurrent::RecurrentS16<'a, crate::kernels::RnnParams>),
    #[cfg(feature = "op-requantize")]
    Requantize(requantize::Requantize<'a>),
    #[cfg(feature = "op-log")]
    Log(lut::Log<'a>),
}

impl<'a> PreparedOp<'a> {
    /// A placeholder, to initialize the memory
    /// [`Interpreter::new`](crate::Interpreter::new) prepares the ops into.
    pub const EMPTY: PreparedOp<'a> = PreparedOp {
        index: 0,
        output_tensor: 0,
        output: Span { offset: 0, len: 0 },
        kind: Kind::Empty,
        #[cfg(feature = "saturation-counters")]
        saturated: 0,
        #[cfg(all(feature = "saturation-counters", feature = "int16-activations"))]
        wide: false,
    };

    /// How many of the op's int8 output values sat at −128 or 127 after its
    /// latest run (feature `saturation-counters`): values that may have been
    /// clamped, i.e. activations beyond the range calibrated for them. An
    /// int16 output counts its values at −32768 or 32767.
    #[cfg(feature = "saturation-counters")]
    pub fn saturated(&self) -> u32 {
        self.saturated
    }

    /// Counts the op's saturated output values in `arena`, after it ran.
    #[cfg(feature = "saturation-counters")]
    pub(crate) fn count_saturated(&mut self, arena: &[u8]) {
        let out = arena.get(self.output.offset..).unwrap_or(&[]);
        let out = out.get(..self.output.len).unwrap_or(&[]);
        #[cfg(feature = "int16-activations")]
        if self.wide {
            let rails = [i16::MIN.to_le_bytes(), i16::MAX.to_le_bytes()];
            let at_rail = out
                .chunks_exact(2)
                .filter(|v| rails.iter().any(|r| r == v))
                .count();
            self.saturated = u32::try_from(at_rail).unwrap_or(u32::MAX);
            return;
        }
        // -128 and 127 as bytes.
        let at_rail = out.iter().filter(|&&b| b == 0x80 || b == 0x7F).count();
        self.saturated = u32::try_from(at_rail).unwrap_or(u32::MAX);
    }

    /// The op's index in the model.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The tensor the op writes.
    pub fn output_tensor(&self) -> u16 {
        self.output_tensor
    }

    /// The name of the kernel that runs this op, e.g. `conv_s8_avx2`, or
    /// `conv_s8` for the reference kernel.
    pub fn kernel(&self) -> &'static str {
        match &self.kind {
            Kind::Empty => "",
            Kind::Conv(op) => op.kernel_name(),
            Kind::FullyConnected(op) => op.kernel_name(),
            Kind::Add(op) => op.kernel.name,
            Kind::Mul(op) => op.kernel.name,
            Kind::Lut(op) => op.kernel.name,
            Kind::MaxPool(op) | Kind::AvgPool(op) => op.kernel.name,
            Kind::Softmax(_) => "softmax_s8",
            Kind::Concat(_) => "concat_part_s8",
            #[cfg(feature = "int16-activations")]
            Kind::ConcatS16(_) => "concat_part_s16",
            Kind::Pad(op) => op.kernel(),
            Kind::Reshape(_) => "copy",
            #[cfg(feature = "op-lstm")]
            Kind::Lstm(op) => op.kernel.name,
            #[cfg(feature = "op-gru")]
            Kind::Gru(op) => op.kernel.name,
            #[cfg(feature = "op-rnn")]
            Kind::Rnn(op) => op.kernel.name,
            Kind::ConvTranspose(_) => "conv_transpose_s8",
            #[cfg(feature = "int16-activations")]
            Kind::ConvTransposeS16(op) => op.kernel_name(),
            Kind::Transpose(op) => op.kernel(),
            Kind::Gather(op) => op.kernel(),
            Kind::Resize(_) => "resize_s8",
            Kind::Sub(op) => op.name,
            Kind::Div(op) => op.name,
            Kind::Min(op) | Kind::Max(op) => op.name,
            Kind::LayerNorm(_) => "layer_norm_s8",
            Kind::ReduceSum(op) | Kind::ReduceMax(op) | Kind::ReduceL2(op) => op.kernel(),
            Kind::MatMul(_) => "mat_mul_s8",
            Kind::ArgMax(_) => "arg_max_s8",
            #[cfg(feature = "op-top-k")]
            Kind::TopK(op) => op.kernel_name(),
            #[cfg(feature = "op-select")]
            Kind::Select(_) => "select_s8",
            #[cfg(all(feature = "int16-activations", feature = "op-select"))]
            Kind::SelectS16(_) => "select_s16",
            #[cfg(feature = "int16-activations")]
            Kind::ConvS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::FullyConnectedS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::MaxPoolS16(_) => "max_pool_s16",
            #[cfg(feature = "int16-activations")]
            Kind::AvgPoolS16(_) => "avg_pool_s16",
            #[cfg(feature = "int16-activations")]
            Kind::SoftmaxS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::MatMulS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::BinaryS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::LayerNormS16(op) => op.kernel_name(),
            #[cfg(feature = "int16-activations")]
            Kind::LutS16(_) => "lut_s16",
            #[cfg(feature = "int16-activations")]
            Kind::ReduceSumS16(op) | Kind::ReduceMaxS16(op) | Kind::ReduceL2S16(op) => op.kernel(),
            #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
            Kind::LstmS16(op) => op.kernel_name(),
            #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
            Kind::GruS16(op) => op.kernel_name(),
            #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
            Kind::RnnS16(op) => op.kernel_name(),
            #[cfg(feature = "op-requantize")]
            Kind::Requantize(op) => op.kernel(),
            #[cfg(feature = "op-log")]
            Kind::Log(_) => "log_s16",
        }
    }

    /// Every optimized kernel this build has for the op, best first, with
    /// whether it takes the op's shape on this CPU (`Err`: why not). The
    /// first that takes it is [`kernel`](Self::kernel); when none does, the
    /// reference kernel runs.
    pub fn candidates(&self, f: impl FnMut(&'static str, Result<(), &'static str>)) {
        use crate::kernels::select::{self as s, explain};
        match &self.kind {
            Kind::Conv(op) => explain(&op.p, s::CONV, f),
            Kind::FullyConnected(op) => explain(&op.p, s::FULLY_CONNECTED, f),
            Kind::Add(op) => explain(&(op.p, op.bc), s::ADD, f),
            Kind::Mul(op) => explain(&(op.p, op.bc), s::MUL, f),
            Kind::Lut(op) => explain(&op.len, s::LUT, f),
            Kind::MaxPool(op) => explain(&op.p, s::MAX_POOL, f),
            Kind::AvgPool(op) => explain(&op.p, s::AVG_POOL, f),
            #[cfg(feature = "op-lstm")]
            Kind::Lstm(op) => explain(&op.p, s::LSTM, f),
            #[cfg(feature = "op-gru")]
            Kind::Gru(op) => explain(&op.p, s::GRU, f),
            #[cfg(feature = "op-rnn")]
            Kind::Rnn(op) => explain(&op.p, s::RNN, f),
            Kind::Empty
            | Kind::Softmax(_)
            | Kind::Concat(_)
            | Kind::Pad(_)
            | Kind::Reshape(_)
            | Kind::ConvTranspose(_)
            | Kind::Transpose(_)
            | Kind::Gather(_)
            | Kind::Resize(_)
            | Kind::Sub(_)
            | Kind::Div(_)
            | Kind::Min(_)
            | Kind::Max(_)
            | Kind::LayerNorm(_)
            | Kind::ReduceSum(_)
            | Kind::ReduceMax(_)
            | Kind::ReduceL2(_)
            | Kind::MatMul(_)
            | Kind::ArgMax(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(feature = "op-top-k")]
            Kind::TopK(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(feature = "op-select")]
            Kind::Select(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(all(feature = "int16-activations", feature = "op-select"))]
            Kind::SelectS16(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(feature = "int16-activations")]
            Kind::ConvS16(op) => op.candidates(f),
            #[cfg(feature = "int16-activations")]
            Kind::FullyConnectedS16(op) => op.candidates(f),
            // The other int16 layers run the reference kernels on every target.
            #[cfg(feature = "int16-activations")]
            Kind::MaxPoolS16(_)
            | Kind::AvgPoolS16(_)
            | Kind::SoftmaxS16(_)
            | Kind::MatMulS16(_)
            | Kind::BinaryS16(_)
            | Kind::LayerNormS16(_)
            | Kind::LutS16(_)
            | Kind::ReduceSumS16(_)
            | Kind::ReduceMaxS16(_)
            | Kind::ReduceL2S16(_)
            | Kind::ConcatS16(_)
            | Kind::ConvTransposeS16(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
            Kind::LstmS16(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
            Kind::GruS16(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
            Kind::RnnS16(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(feature = "op-requantize")]
            Kind::Requantize(_) => explain::<(), ()>(&(), NONE, f),
            #[cfg(feature = "op-log")]
            Kind::Log(_) => explain::<(), ()>(&(), NONE, f),
        }
    }

    /// Multiply-accumulates of one run (0 for ops without products).
    pub fn macs(&self) -> u64 {
        match &self.kind {
            Kind::Conv(op) => op.macs(),
            Kind::FullyConnected(op) => op.macs(),
            #[cfg(feature = "op-lstm")]
            Kind::Lstm(op) => op.macs(),
            #[cfg(feature = "op-gru")]
            Kind::Gru(op) => op.macs(),
            #[cfg(feature = "op-rnn")]
            Kind::Rnn(op) => op.macs(),
            Kind::ConvTranspose(op) => op.macs(),
            #[cfg(feature = "int16-activations")]
            Kind::ConvTransposeS16(op) => op.macs(),
            Kind::MatMul(op) => op.macs(),
            #[cfg(feature = "int16-activations")]
            Kind::ConvS16(op) => op.macs(),
            #[cfg(feature = "int16-activations")]
            Kind::FullyConnectedS16(op) => op.macs(),
            #[cfg(feature = "int16-activations")]
            Kind::MatMulS16(op) => op.macs(),
            #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
            Kind::LstmS16(op) => op.macs(),
            #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
            Kind::GruS16(op) => op.macs(),
            #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
            Kind::RnnS16(op) => op.macs(),
            #[cfg(feature = "int16-activations")]
            Kind::MaxPoolS16(_)
            | Kind::AvgPoolS16(_)
            | Kind::SoftmaxS16(_)
            | Kind::BinaryS16(_)
            | Kind::LayerNormS16(_)
            | Kind::LutS16(_)
            | Kind::ReduceSumS16(_)
            | Kind::ReduceMaxS16(_)
            | Kind::ReduceL2S16(_)
            | Kind::ConcatS16(_) => 0,
            #[cfg(feature = "op-requantize")]
            Kind::Requantize(_) => 0,
            #[cfg(feature = "op-log")]
            Kind::Log(_) => 0,
            Kind::Empty
            | Kind::Add(_)
            | Kind::Mul(_)
            | Kind::Lut(_)
            | Kind::MaxPool(_)
            | Kind::AvgPool(_)
            | Kind::Softmax(_)
            | Kind::Concat(_)
            | Kind::Pad(_)
            | Kind::Reshape(_)
            | Kind::Transpose(_)
            | Kind::Gather(_)
            | Kind::Resize(_)
            | Kind::Sub(_)
            | Kind::Div(_)
            | Kind::Min(_)
            | Kind::Max(_)
            | Kind::LayerNorm(_)
            | Kind::ReduceSum(_)
            | Kind::ReduceMax(_)
            | Kind::ReduceL2(_)
            | Kind::ArgMax(_) => 0,
            #[cfg(feature = "op-top-k")]
            Kind::TopK(_) => 0,
            #[cfg(feature = "op-select")]
            Kind::Select(_) => 0,
            #[cfg(all(feature = "int16-activations", feature = "op-select"))]
            Kind::SelectS16(_) => 0,
        }
    }

    /// Runs the op on `arena`. Cannot fail for an op [`prepare`] accepted
    /// with an arena of at least [`Model::arena_len`] bytes; every access is
    /// still checked, so a misuse is an `Err`, never a panic.
    pub(crate) fn eval(&self, model: &Model<'a>, arena: &mut [u8]) -> Result<(), Error> {
        // Past the plan's last byte the arena is the caller's spare: no
        // tensor lives there, so an op may use it as scratch. Only packed
        // convs do; without them the split is left out (firmware flash).
        #[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
        let (planned, spare) = match arena.len() > model.arena_len() {
            true => arena.split_at_mut(model.arena_len()),
            false => (arena, &mut [][..]),
        };
        #[cfg(not(any(feature = "sparse-weights", feature = "pow2-weights")))]
        let (planned, spare) = (arena, &mut [][..]);
        let mut io = Io::split(planned, spare, self.output, self.index)?;
        let io = &mut io;
        let i = self.index;
        use OpCode as O;
        // Gated like `prepare`, so a family left out links none of its code.
        match &self.kind {
            Kind::Empty => Err(io.inputs.bad(why!("op not prepared"))),
            Kind::Conv(op) => gated(O::Conv, i, || op.eval(io)),
            Kind::FullyConnected(op) => gated(O::FullyConnected, i, || op.eval(io)),
            Kind::Add(op) => gated(O::Add, i, || op.eval(io)),
            Kind::Mul(op) => gated(O::Mul, i, || op.eval(io)),
            Kind::Lut(op) => gated(O::Lut, i, || op.eval(io)),
            Kind::MaxPool(op) => gated(O::MaxPool, i, || op.eval(io)),
            Kind::AvgPool(op) => gated(O::AvgPool, i, || op.eval(io)),
            Kind::Softmax(op) => gated(O::Softmax, i, || op.eval(io)),
            Kind::Concat(op) => gated(O::Concat, i, || op.eval(model, io)),
            #[cfg(feature = "int16-activations")]
            Kind::ConcatS16(op) => gated(O::Concat, i, || op.eval(model, io)),
            Kind::Pad(op) => gated(O::Pad, i, || op.eval(io)),
            Kind::Reshape(op) => gated(O::Reshape, i, || op.eval(io)),
            #[cfg(feature = "op-lstm")]
            Kind::Lstm(op) => gated(O::Lstm, i, || op.eval(io)),
            #[cfg(feature = "op-gru")]
            Kind::Gru(op) => gated(O::Gru, i, || op.eval(io)),
            #[cfg(feature = "op-rnn")]
            Kind::Rnn(op) => gated(O::Rnn, i, || op.eval(io)),
            Kind::ConvTranspose(op) => gated(O::ConvTranspose, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::ConvTransposeS16(op) => gated(O::ConvTranspose, i, || op.eval(io)),
            Kind::Transpose(op) => gated(O::Transpose, i, || op.eval(io)),
            Kind::Gather(op) => gated(O::Gather, i, || op.eval(io)),
            Kind::Resize(op) => gated(O::Resize, i, || op.eval(io)),
            Kind::Sub(op) => gated(O::Sub, i, || op.eval(io)),
            Kind::Div(op) => gated(O::Div, i, || op.eval(io)),
            Kind::Min(op) => gated(O::Min, i, || op.eval(io)),
            Kind::Max(op) => gated(O::Max, i, || op.eval(io)),
            Kind::LayerNorm(op) => gated(O::LayerNorm, i, || op.eval(io)),
            Kind::ReduceSum(op) => gated(O::ReduceSum, i, || op.eval(io)),
            Kind::ReduceMax(op) => gated(O::ReduceMax, i, || op.eval(io)),
            Kind::ReduceL2(op) => gated(O::ReduceL2, i, || op.eval(io)),
            Kind::MatMul(op) => gated(O::MatMul, i, || op.eval(io)),
            Kind::ArgMax(op) => gated(O::ArgMax, i, || op.eval(io)),
            #[cfg(feature = "op-top-k")]
            Kind::TopK(op) => gated(O::TopK, i, || op.eval(io)),
            #[cfg(feature = "op-select")]
            Kind::Select(op) => gated(O::Select, i, || op.eval(io)),
            #[cfg(all(feature = "int16-activations", feature = "op-select"))]
            Kind::SelectS16(op) => gated(O::Select, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::ConvS16(op) => gated(O::Conv, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::FullyConnectedS16(op) => gated(O::FullyConnected, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::MaxPoolS16(op) => gated(O::MaxPool, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::AvgPoolS16(op) => gated(O::AvgPool, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::SoftmaxS16(op) => gated(O::Softmax, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::MatMulS16(op) => gated(O::MatMul, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::BinaryS16(op) => gated(op.opcode(), i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::LayerNormS16(op) => gated(O::LayerNorm, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::LutS16(op) => gated(O::Lut, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::ReduceSumS16(op) => gated(O::ReduceSum, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::ReduceMaxS16(op) => gated(O::ReduceMax, i, || op.eval(io)),
            #[cfg(feature = "int16-activations")]
            Kind::ReduceL2S16(op) => gated(O::ReduceL2, i, || op.eval(io)),
            #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
            Kind::LstmS16(op) => gated(O::Lstm, i, || op.eval(io)),
            #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
            Kind::GruS16(op) => gated(O::Gru, i, || op.eval(io)),
            #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
            Kind::RnnS16(op) => gated(O::Rnn, i, || op.eval(io)),
            #[cfg(feature = "op-requantize")]
            Kind::Requantize(op) => gated(O::Requantize, i, || op.eval(io)),
            #[cfg(feature = "op-log")]
            Kind::Log(op) => gated(O::Log, i, || op.eval(io)),
        }
    }
}

/// Runs `f` only if `opcode`'s kernel is built in: `is_built_in` of a
/// constant folds, so the code of a family left out of the build is dead and
/// the linker drops it (and its kernels).
#[inline(always)]
fn gated<T>(opcode: OpCode, index: u16, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    if is_built_in(opcode) {
        f()
    } else {
        Err(Error::OpNotBuiltIn { index, opcode })
    }
}

/// Ops without optimized kernels yet.
const NONE: &[Candidate<(), ()>] = &[];

/// Checks op `op` of `model` against its kernel, chooses the kernel and
/// returns the op ready to run.
pub fn prepare<'a>(model: &Model<'a>, op: &OpInfo<'a>) -> Result<PreparedOp<'a>, Error> {
    if !is_built_in(op.opcode) {
        // Before any decoding, so that this error wins over a bad record.
        return Err(Error::OpNotBuiltIn {
            index: op.index,
            opcode: op.opcode,
        });
    }
    let cx = Ctx::new(model, op)?;
    let i = op.index;
    use OpCode as O;
    let kind = match op.opcode {
        // An op that reads (input 0) or writes an int16 activation runs its
        // int16 kernel, which checks the pairing of the two.
        #[cfg(feature = "int16-activations")]
        O::Conv if cx.int16() => Kind::ConvS16(gated(O::Conv, i, || conv::prepare_s16(&cx))?),
        O::Conv => Kind::Conv(gated(O::Conv, i, || conv::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::FullyConnected if cx.int16() => {
            Kind::FullyConnectedS16(gated(O::FullyConnected, i, || {
                fully_connected::prepare_s16(&cx)
            })?)
        }
        O::FullyConnected => Kind::FullyConnected(gated(O::FullyConnected, i, || {
            fully_connected::prepare(&cx)
        })?),
        #[cfg(feature = "int16-activations")]
        O::Add if cx.int16() => Kind::BinaryS16(gated(O::Add, i, || {
            binary::prepare_add_sub_s16(&cx, false)
        })?),
        O::Add => Kind::Add(gated(O::Add, i, || elementwise::prepare_add(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Mul if cx.int16() => Kind::BinaryS16(gated(O::Mul, i, || {
            binary::prepare_mul_div_s16(&cx, false)
        })?),
        O::Mul => Kind::Mul(gated(O::Mul, i, || elementwise::prepare_mul(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Lut if cx.int16() => Kind::LutS16(gated(O::Lut, i, || lut::prepare_s16(&cx))?),
        O::Lut => Kind::Lut(gated(O::Lut, i, || lut::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::MaxPool if cx.int16() => {
            Kind::MaxPoolS16(gated(O::MaxPool, i, || pool::prepare_s16(&cx))?)
        }
        O::MaxPool => Kind::MaxPool(gated(O::MaxPool, i, || pool::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::AvgPool if cx.int16() => {
            Kind::AvgPoolS16(gated(O::AvgPool, i, || pool::prepare_s16(&cx))?)
        }
        O::AvgPool => Kind::AvgPool(gated(O::AvgPool, i, || pool::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Softmax if cx.int16() => {
            Kind::SoftmaxS16(gated(O::Softmax, i, || softmax::prepare_s16(&cx))?)
        }
        O::Softmax => Kind::Softmax(gated(O::Softmax, i, || softmax::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Concat if cx.int16() => {
            Kind::ConcatS16(gated(O::Concat, i, || concat::prepare_s16(&cx))?)
        }
        O::Concat => Kind::Concat(gated(O::Concat, i, || concat::prepare(&cx))?),
        O::Pad => Kind::Pad(gated(O::Pad, i, || pad::prepare(&cx))?),
        O::Reshape => Kind::Reshape(gated(O::Reshape, i, || reshape::prepare(&cx))?),
        #[cfg(all(feature = "int16-activations", feature = "op-lstm"))]
        O::Lstm if cx.step_sides_int16() => {
            Kind::LstmS16(gated(O::Lstm, i, || recurrent::prepare_lstm_s16(&cx))?)
        }
        #[cfg(feature = "op-lstm")]
        O::Lstm => Kind::Lstm(gated(O::Lstm, i, || recurrent::prepare_lstm(&cx))?),
        #[cfg(not(feature = "op-lstm"))]
        O::Lstm => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Lstm,
            })
        }
        #[cfg(all(feature = "int16-activations", feature = "op-gru"))]
        O::Gru if cx.step_sides_int16() => {
            Kind::GruS16(gated(O::Gru, i, || recurrent::prepare_gru_s16(&cx))?)
        }
        #[cfg(feature = "op-gru")]
        O::Gru => Kind::Gru(gated(O::Gru, i, || recurrent::prepare_gru(&cx))?),
        #[cfg(not(feature = "op-gru"))]
        O::Gru => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Gru,
            })
        }
        #[cfg(all(feature = "int16-activations", feature = "op-rnn"))]
        O::Rnn if cx.step_sides_int16() => {
            Kind::RnnS16(gated(O::Rnn, i, || recurrent::prepare_rnn_s16(&cx))?)
        }
        #[cfg(feature = "op-rnn")]
        O::Rnn => Kind::Rnn(gated(O::Rnn, i, || recurrent::prepare_rnn(&cx))?),
        #[cfg(not(feature = "op-rnn"))]
        O::Rnn => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Rnn,
            })
        }
        #[cfg(feature = "int16-activations")]
        O::ConvTranspose if cx.int16() => {
            Kind::ConvTransposeS16(gated(O::ConvTranspose, i, || {
                conv_transpose::prepare_s16(&cx)
            })?)
        }
        O::ConvTranspose => {
            Kind::ConvTranspose(gated(O::ConvTranspose, i, || conv_transpose::prepare(&cx))?)
        }
        O::Transpose => Kind::Transpose(gated(O::Transpose, i, || transpose::prepare(&cx))?),
        O::Gather => Kind::Gather(gated(O::Gather, i, || gather::prepare(&cx))?),
        O::Resize => Kind::Resize(gated(O::Resize, i, || resize::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Sub if cx.int16() => {
            Kind::BinaryS16(gated(O::Sub, i, || binary::prepare_add_sub_s16(&cx, true))?)
        }
        O::Sub => Kind::Sub(gated(O::Sub, i, || binary::prepare_sub(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Div if cx.int16() => {
            Kind::BinaryS16(gated(O::Div, i, || binary::prepare_mul_div_s16(&cx, true))?)
        }
        O::Div => Kind::Div(gated(O::Div, i, || binary::prepare_div(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::Min if cx.int16() => Kind::BinaryS16(gated(O::Min, i, || {
            binary::prepare_min_max_s16(&cx, false)
        })?),
        O::Min => Kind::Min(gated(O::Min, i, || binary::prepare_min_max(&cx, false))?),
        #[cfg(feature = "int16-activations")]
        O::Max if cx.int16() => {
            Kind::BinaryS16(gated(O::Max, i, || binary::prepare_min_max_s16(&cx, true))?)
        }
        O::Max => Kind::Max(gated(O::Max, i, || binary::prepare_min_max(&cx, true))?),
        #[cfg(feature = "int16-activations")]
        O::LayerNorm if cx.int16() => {
            Kind::LayerNormS16(gated(O::LayerNorm, i, || layer_norm::prepare_s16(&cx))?)
        }
        O::LayerNorm => Kind::LayerNorm(gated(O::LayerNorm, i, || layer_norm::prepare(&cx))?),
        #[cfg(feature = "int16-activations")]
        O::ReduceSum if cx.int16() => Kind::ReduceSumS16(gated(O::ReduceSum, i, || {
            reduce::prepare_s16(&cx, reduce::How::Sum)
        })?),
        O::ReduceSum => Kind::ReduceSum(gated(O::ReduceSum, i, || {
            reduce::prepare(&cx, reduce::How::Sum)
        })?),
        #[cfg(feature = "int16-activations")]
        O::ReduceMax if cx.int16() => Kind::ReduceMaxS16(gated(O::ReduceMax, i, || {
            reduce::prepare_s16(&cx, reduce::How::Max)
        })?),
        O::ReduceMax => Kind::ReduceMax(gated(O::ReduceMax, i, || {
            reduce::prepare(&cx, reduce::How::Max)
        })?),
        #[cfg(feature = "int16-activations")]
        O::ReduceL2 if cx.int16() => Kind::ReduceL2S16(gated(O::ReduceL2, i, || {
            reduce::prepare_s16(&cx, reduce::How::L2(0))
        })?),
        O::ReduceL2 => Kind::ReduceL2(gated(O::ReduceL2, i, || {
            reduce::prepare(&cx, reduce::How::L2(0))
        })?),
        #[cfg(feature = "int16-activations")]
        O::MatMul if cx.int16() => {
            Kind::MatMulS16(gated(O::MatMul, i, || mat_mul::prepare_s16(&cx))?)
        }
        O::MatMul => Kind::MatMul(gated(O::MatMul, i, || mat_mul::prepare(&cx))?),
        O::ArgMax => Kind::ArgMax(gated(O::ArgMax, i, || arg_max::prepare(&cx))?),
        #[cfg(feature = "op-top-k")]
        O::TopK => Kind::TopK(gated(O::TopK, i, || top_k::prepare(&cx))?),
        #[cfg(not(feature = "op-top-k"))]
        O::TopK => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::TopK,
            })
        }
        #[cfg(all(feature = "int16-activations", feature = "op-select"))]
        O::Select if cx.int16() => {
            Kind::SelectS16(gated(O::Select, i, || conditional::prepare_s16(&cx))?)
        }
        #[cfg(feature = "op-select")]
        O::Select => Kind::Select(gated(O::Select, i, || conditional::prepare(&cx))?),
        #[cfg(not(feature = "op-select"))]
        O::Select => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Select,
            })
        }
        #[cfg(feature = "op-requantize")]
        O::Requantize => Kind::Requantize(gated(O::Requantize, i, || requantize::prepare(&cx))?),
        // Refused above, before any decoding.
        #[cfg(not(feature = "op-requantize"))]
        O::Requantize => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Requantize,
            })
        }
        #[cfg(feature = "op-log")]
        O::Log => Kind::Log(gated(O::Log, i, || lut::prepare_log(&cx))?),
        #[cfg(not(feature = "op-log"))]
        O::Log => {
            return Err(Error::OpNotBuiltIn {
                index: i,
                opcode: O::Log,
            })
        }
    };
    Ok(PreparedOp {
        index: op.index,
        output_tensor: cx.output.index,
        output: Span::of(&cx.output),
        kind,
        #[cfg(feature = "saturation-counters")]
        saturated: 0,
        #[cfg(all(feature = "saturation-counters", feature = "int16-activations"))]
        wide: cx.output.dtype == DType::I16,
    })
}

impl<'a> Model<'a> {
    /// Validates `bytes` as a `.mq` file and returns a view of it.
    ///
    /// `bytes` must start on a [`BUFFER_ALIGN`](crate::format::layout::BUFFER_ALIGN)
    /// boundary (constants are read in place as `i32`/`f32`), else
    /// [`Error::Misaligned`]; use [`include_model!`](crate::include_model) to
    /// embed a file aligned, or `ModelFile` (feature `std`) to load one.
    /// `bytes` must be exactly the file: its length must equal the header's
    /// file length.
    ///
    /// The records are checked first (`format`), then every op against its
    /// kernel's contract (the families' `prepare`, here in `ops`) and its
    /// place in the graph, then the graph as a whole and the arena plan. Runs in time linear in the file plus a pairwise pass over the
    /// arena tensors (the plan check), without allocating.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        let model = Model::parse_layout(bytes)?;
        for k in 0..model.op_count() {
            let op = model.op(k)?;
            prepare(&model, &op)?;
            model.validate_op_order(&op)?;
        }
        model.validate_graph()?;
        Ok(model)
    }
}

/// The arena around one op's output, while it runs: the output is
/// writable, and everything before and after it readable through
/// [`Inputs`]. The plan check guarantees an op's inputs never overlap its
/// output (in-place ops aside, which alias it exactly and say so).
pub(crate) struct Io<'x> {
    pub inputs: Inputs<'x>,
    pub output: &'x mut [i8],
    /// The arena past [`Model::arena_len`], if the caller gave more: scratch
    /// that no tensor uses (a packed conv decodes its weights there).
    #[cfg_attr(
        not(any(feature = "sparse-weights", feature = "pow2-weights")),
        allow(dead_code)
    )]
    pub spare: &'x mut [u8],
}

/// The readable arena around an op's output.
pub(crate) struct Inputs<'x> {
    index: u16,
    before: &'x [u8],
    after: &'x [u8],
    output: Span,
}

impl<'x> Io<'x> {
    fn split(
        arena: &'x mut [u8],
        spare: &'x mut [u8],
        out: Span,
        index: u16,
    ) -> Result<Io<'x>, Error> {
        let outside = Error::BadOp {
            index,
            reason: why!("output outside the arena"),
        };
        let (before, rest) = arena.split_at_mut_checked(out.offset).ok_or(outside)?;
        let (out_bytes, after) = rest.split_at_mut_checked(out.len).ok_or(outside)?;
        Ok(Io {
            inputs: Inputs {
                index,
                before,
                after,
                output: out,
            },
            output: bytemuck::cast_slice_mut(out_bytes),
            spare,
        })
    }
}

impl Inputs<'_> {
    fn bad(&self, reason: &'static str) -> Error {
        Error::BadOp {
            index: self.index,
            reason,
        }
    }

    /// An operand's values, if it does not overlap the output.
    fn read<'o>(&'o self, x: &Operand<'o>) -> Result<&'o [i8], Error> {
        let s = match *x {
            Operand::Const(c) => return Ok(c),
            Operand::Arena(s) => s,
        };
        self.bytes(s).map(bytemuck::cast_slice)
    }

    /// The arena bytes of `s`, if they do not overlap the output.
    fn bytes(&self, s: Span) -> Result<&[u8], Error> {
        let end = s.offset.checked_add(s.len);
        let out_end = self.output.offset + self.output.len;
        let bytes = match end {
            Some(end) if end <= self.output.offset => self.before.get(s.offset..end),
            Some(end) if s.offset >= out_end => self.after.get(s.offset - out_end..end - out_end),
            _ => None,
        };
        bytes.ok_or(self.bad(why!("input overlaps the output")))
    }

    /// An int16 activation's values. The offset is even and the arena
    /// usually 16-aligned, but the arena is the caller's: a view that is
    /// not 2-aligned is an `Err`, never a misaligned read.
    #[cfg(feature = "int16-activations")]
    fn read_i16(&self, x: &Operand<'_>) -> Result<&[i16], Error> {
        let s = match *x {
            Operand::Arena(s) => s,
            Operand::Const(_) => return Err(self.bad(why!("int16 operands are activations"))),
        };
        bytemuck::try_cast_slice(self.bytes(s)?).map_err(|_| Error::Misaligned)
    }

    /// Whether `x` is exactly the output's bytes (an in-place op's input).
    fn is_output(&self, x: &Operand<'_>) -> bool {
        matches!(x, Operand::Arena(s) if *s == self.output)
    }
}

// ---- validation helpers shared by the families ----

/// The input of an op that moves values without arithmetic (Reshape,
/// Transpose, Gather, Pad): an int8 per-tensor operand, or with feature
/// `int16-activations` an int16 activation whose output is int16 too.
/// Returns whether it is int16.
fn mover_operand<'a>(cx: &Ctx<'_, 'a>, x: &TensorInfo<'a>) -> Result<bool, Error> {
    #[cfg(feature = "int16-activations")]
    if cx.int16() {
        cx.ensure(
            x.dtype == cx.output.dtype,
            why!("input and output mix int8 and int16 (put a Requantize between)"),
        )?;
        cx.i16_operand(x)?;
        return Ok(true);
    }
    cx.i8_operand(x).map(|_| false)
}

/// The activation types of a mixed-precision Conv or FullyConnected:
/// input then output.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lanes {
    S16,
    S8S16,
    S16S8,
}

/// The kernel of an op's int16 pairing, by [`Lanes`]: `A` the type of
/// its int16-to-int16 kernels, `B` int8 to int16, `C` int16 to int8.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) enum Paired<A: 'static, B: 'static, C: 'static> {
    S16(Chosen<A>),
    S8S16(Chosen<B>),
    S16S8(Chosen<C>),
}

/// The kernel of each int16 pairing of a weighted layer (params `P`:
/// Conv, FullyConnected, ConvTranspose, LayerNorm; weights `W`): an
/// optimized one where the CPU has one, else the reference.
#[cfg(feature = "int16-activations")]
pub(super) type KernelS16<P, W = i8> =
    Paired<LayerS16Fn<P, i16, i16, W>, LayerS16Fn<P, i8, i16, W>, LayerS16Fn<P, i16, i8, W>>;

/// An int16 Conv's or FullyConnected's weights with their kernel: an
/// optimized one where the CPU has one for these weights, else the
/// reference.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) enum WeightedS16<'a, P: 'static> {
    W8(&'a [i8], KernelS16<P>),
    W16(&'a [i16], KernelS16<P, i16>),
}

#[cfg(feature = "int16-activations")]
impl<'a, P: 'static> WeightedS16<'a, P> {
    /// `weights` with the kernel of `lanes` for `p`: the one `select` (the
    /// `s16`, `s8_s16` and `s16_s8` choosers) gives for int8 weights,
    /// `select_w16` for int16 ones.
    pub fn new(
        weights: WeightsS16<'a>,
        lanes: Lanes,
        p: &P,
        select: SelectS16<P>,
        select_w16: SelectS16<P, i16>,
    ) -> WeightedS16<'a, P> {
        match weights {
            WeightsS16::S8(w) => WeightedS16::W8(w, KernelS16::choose(lanes, p, select)),
            WeightsS16::S16(w) => WeightedS16::W16(w, KernelS16::choose(lanes, p, select_w16)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            WeightedS16::W8(_, k) => k.name(),
            WeightedS16::W16(_, k) => k.name(),
        }
    }

    /// The optimized kernels considered, with their answers: `lists` for
    /// int8 weights, `lists_w16` for int16 ones.
    pub fn explain(
        &self,
        p: &P,
        (lists, lists_w16): (CandidatesS16<P>, CandidatesS16<P, i16>),
        f: impl FnMut(&'static str, Result<(), &'static str>),
    ) {
        match self {
            WeightedS16::W8(_, k) => k.explain(p, lists, f),
            WeightedS16::W16(_, k) => k.explain(p, lists_w16, f),
        }
    }

    pub fn run(
        &self,
        p: &P,
        x: &Operand<'_>,
        rq: &Requant<'_>,
        io: &mut Io<'_>,
        batch: Batch,
    ) -> Result<(), Error> {
        match self {
            WeightedS16::W8(w, k) => k.run(p, x, w, rq, io, batch),
            WeightedS16::W16(w, k) => k.run(p, x, w, rq, io, batch),
        }
    }
}

/// The candidate lists of the three pairings, in [`KernelS16`]'s order.
#[cfg(feature = "int16-activations")]
pub(super) type CandidatesS16<P, W = i8> = (
    &'static [Candidate<P, LayerS16Fn<P, i16, i16, W>>],
    &'static [Candidate<P, LayerS16Fn<P, i8, i16, W>>],
    &'static [Candidate<P, LayerS16Fn<P, i16, i8, W>>],
);

/// The kernel choosers of the three pairings (`select::conv_s16`, ...).
#[cfg(feature = "int16-activations")]
pub(super) type SelectS16<P, W = i8> = (
    fn(&P) -> Chosen<LayerS16Fn<P, i16, i16, W>>,
    fn(&P) -> Chosen<LayerS16Fn<P, i8, i16, W>>,
    fn(&P) -> Chosen<LayerS16Fn<P, i16, i8, W>>,
);

#[cfg(feature = "int16-activations")]
impl<A: Copy, B: Copy, C: Copy> Paired<A, B, C> {
    /// The reference kernel of `lanes`' pairing, one of the three given
    /// (usually one generic kernel instantiated three times), named by
    /// `names` (the `s16`, `s8_s16` and `s16_s8` names, in that order).
    pub fn reference(
        lanes: Lanes,
        [n16, n8_16, n16_8]: [&'static str; 3],
        (s16, s8_s16, s16_s8): (A, B, C),
    ) -> Paired<A, B, C> {
        match lanes {
            Lanes::S16 => Paired::S16(Chosen {
                run: s16,
                name: n16,
            }),
            Lanes::S8S16 => Paired::S8S16(Chosen {
                run: s8_s16,
                name: n8_16,
            }),
            Lanes::S16S8 => Paired::S16S8(Chosen {
                run: s16_s8,
                name: n16_8,
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Paired::S16(k) => k.name,
            Paired::S8S16(k) => k.name,
            Paired::S16S8(k) => k.name,
        }
    }
}

#[cfg(feature = "int16-activations")]
impl<P: 'static, W: 'static> KernelS16<P, W> {
    /// Runs the kernel on `x` (read as its pairing's input type) into the
    /// output.
    pub fn run(
        &self,
        p: &P,
        x: &Operand<'_>,
        weights: &[W],
        rq: &Requant<'_>,
        io: &mut Io<'_>,
        batch: Batch,
    ) -> Result<(), Error> {
        let (b, m, s) = (rq.bias, rq.multiplier, rq.shift);
        match self {
            KernelS16::S16(k) => {
                batch.each(io.inputs.read_i16(x)?, output_i16(io.output)?, |x, y| {
                    (k.run)(p, x, weights, b, m, s, y)
                })
            }
            KernelS16::S8S16(k) => {
                batch.each(io.inputs.read(x)?, output_i16(io.output)?, |x, y| {
                    (k.run)(p, x, weights, b, m, s, y)
                })
            }
            KernelS16::S16S8(k) => batch.each(io.inputs.read_i16(x)?, io.output, |x, y| {
                (k.run)(p, x, weights, b, m, s, y)
            }),
        }
        Ok(())
    }
}

#[cfg(feature = "int16-activations")]
impl<P: 'static, W: 'static> KernelS16<P, W> {
    /// The kernel `select` chooses for `lanes`' pairing and `p`.
    fn choose(lanes: Lanes, p: &P, (s16, s8_s16, s16_s8): SelectS16<P, W>) -> Self {
        match lanes {
            Lanes::S16 => KernelS16::S16(s16(p)),
            Lanes::S8S16 => KernelS16::S8S16(s8_s16(p)),
            Lanes::S16S8 => KernelS16::S16S8(s16_s8(p)),
        }
    }

    /// The optimized kernels considered for this pairing, with their answers.
    pub fn explain(
        &self,
        p: &P,
        (s16, s8_s16, s16_s8): CandidatesS16<P, W>,
        f: impl FnMut(&'static str, Result<(), &'static str>),
    ) {
        match self {
            KernelS16::S16(_) => select::explain(p, s16, f),
            KernelS16::S8S16(_) => select::explain(p, s8_s16, f),
            KernelS16::S16S8(_) => select::explain(p, s16_s8, f),
        }
    }
}

/// `out` (an op's output bytes) as the `i16` values of an int16 activation;
/// [`Error::Misaligned`] if the caller's arena puts it off a 2-byte boundary.
#[cfg(feature = "int16-activations")]
fn output_i16(out: &mut [i8]) -> Result<&mut [i16], Error> {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Misaligned)
}

/// An op being prepared: its record, its model and its (single) output.
pub(crate) struct Ctx<'m, 'a> {
    model: &'m Model<'a>,
    op: &'m OpInfo<'a>,
    output: TensorInfo<'a>,
    out_scale: f32,
    out_zp: i32,
}

impl<'m, 'a> Ctx<'m, 'a> {
    fn new(model: &'m Model<'a>, op: &'m OpInfo<'a>) -> Result<Ctx<'m, 'a>, Error> {
        let bad = |reason| Error::BadOp {
            index: op.index,
            reason,
        };
        if op.outputs.len() != 1 {
            return Err(bad(why!("every op has exactly one output")));
        }
        let output = model.tensor(usize::from(op.output().unwrap_or(0)))?;
        if output.storage != Storage::Arena {
            return Err(bad(why!("output must be an activation")));
        }
        // Only the ops with int16 kernels write an int16 activation; each of
        // them checks its operands' pairing. (Without the feature the loader
        // refuses every int16 activation.)
        #[cfg(feature = "int16-activations")]
        if output.dtype != DType::I8
            && !matches!(
                op.opcode,
                OpCode::Conv
                    | OpCode::FullyConnected
                    | OpCode::MaxPool
                    | OpCode::AvgPool
                    | OpCode::Reshape
                    | OpCode::Pad
                    | OpCode::Requantize
                    | OpCode::Softmax
                    | OpCode::MatMul
                    | OpCode::Transpose
                    | OpCode::Gather
                    | OpCode::Add
                    | OpCode::Sub
                    | OpCode::Mul
                    | OpCode::Div
                    | OpCode::Min
                    | OpCode::Max
                    | OpCode::LayerNorm
                    | OpCode::ReduceSum
                    | OpCode::ReduceMax
                    | OpCode::ReduceL2
                    | OpCode::Lut
                    | OpCode::Concat
                    | OpCode::ConvTranspose
                    | OpCode::Lstm
                    | OpCode::Gru
                    | OpCode::Rnn
                    | OpCode::ArgMax
                    | OpCode::Log
                    | OpCode::Select
                    | OpCode::TopK
            )
        {
            return Err(bad(why!("op does not take int16 activations")));
        }
        // Arena tensors are per-tensor quantized (checked per tensor).
        let (out_scale, out_zp) = output
            .scale_zero_point()
            .ok_or(bad(why!("output not quantized")))?;
        Ok(Ctx {
            model,
            op,
            output,
            out_scale,
            out_zp,
        })
    }

    fn bad(&self, reason: &'static str) -> Error {
        Error::BadOp {
            index: self.op.index,
            reason,
        }
    }

    fn ensure(&self, cond: bool, reason: &'static str) -> Result<(), Error> {
        if cond {
            Ok(())
        } else {
            Err(self.bad(reason))
        }
    }

    fn input(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        let t = self
            .op
            .inputs
            .get(i)
            .ok_or(self.bad(why!("missing input")))?;
        self.model.tensor(usize::from(*t))
    }

    fn word(&self, i: usize) -> Result<i32, Error> {
        self.op
            .params
            .get(i)
            .copied()
            .ok_or(self.bad(why!("missing parameter")))
    }

    /// A parameter word that is a size or count, at least `min`.
    fn size(&self, i: usize, min: usize, reason: &'static str) -> Result<usize, Error> {
        usize::try_from(self.word(i)?)
            .ok()
            .filter(|&v| v >= min)
            .ok_or(self.bad(reason))
    }

    /// `-128 <= act_min <= act_max <= 127`, from two parameter words.
    fn act_range(&self, min_word: usize, max_word: usize) -> Result<(i32, i32), Error> {
        let (lo, hi) = (self.word(min_word)?, self.word(max_word)?);
        self.ensure(
            -128 <= lo && lo <= hi && hi <= 127,
            why!("activation range not within [-128, 127]"),
        )?;
        Ok((lo, hi))
    }

    /// A requantization pair: multiplier ≥ 0, shift in `MIN_SHIFT..=MAX_SHIFT`.
    fn requant_pair(&self, m_word: usize, s_word: usize) -> Result<(i32, i32), Error> {
        let (m, s) = (self.word(m_word)?, self.word(s_word)?);
        self.ensure(m >= 0, why!("negative multiplier"))?;
        self.ensure(
            (MIN_SHIFT..=MAX_SHIFT).contains(&s),
            why!("shift out of range"),
        )?;
        Ok((m, s))
    }

    /// An int8 per-tensor quantized operand (activation or constant):
    /// returns its zero point.
    fn i8_operand(&self, t: &TensorInfo<'a>) -> Result<i32, Error> {
        match (t.dtype, t.quant) {
            (DType::I8, Quant::PerTensor { zero_point, .. }) => Ok(zero_point),
            _ => Err(self.bad(why!("operand is not a per-tensor quantized i8 tensor"))),
        }
    }

    /// Whether input 0 or the output is int16: a recurrent op's step
    /// sides (its initial states may be int16 on int8 sides).
    #[cfg(all(
        feature = "int16-activations",
        any(feature = "op-lstm", feature = "op-gru", feature = "op-rnn")
    ))]
    fn step_sides_int16(&self) -> bool {
        let x_wide = self
            .input(0)
            .is_ok_and(|x| x.dtype == DType::I16 && x.storage == Storage::Arena);
        self.output.dtype == DType::I16 || x_wide
    }

    /// Whether the output or any input is an int16 activation: the op runs
    /// its int16 kernel, which checks the pairing of its sides. (Constants
    /// do not count: an LSTM's tables are `i16` at any precision.)
    #[cfg(feature = "int16-activations")]
    fn int16(&self) -> bool {
        let wide = |t: &u16| {
            self.model
                .tensor(usize::from(*t))
                .is_ok_and(|x| x.dtype == DType::I16 && x.storage == Storage::Arena)
        };
        self.output.dtype == DType::I16 || self.op.inputs.iter().any(wide)
    }

    /// An int16 activation operand: `i16`, in the arena, per-tensor with
    /// zero point 0 (the symmetric int16 scheme; the loader checks it too).
    #[cfg(feature = "int16-activations")]
    fn i16_operand(&self, t: &TensorInfo<'a>) -> Result<(), Error> {
        let ok = t.dtype == DType::I16
            && t.storage == Storage::Arena
            && matches!(t.quant, Quant::PerTensor { zero_point: 0, .. });
        self.ensure(
            ok,
            why!("operand is not an int16 activation (per-tensor, zero point 0)"),
        )
    }

    /// An operand of a mixed-precision op: an int16 activation (zero point
    /// 0) or an int8 per-tensor tensor; returns its zero point.
    #[cfg(feature = "int16-activations")]
    fn s8_or_s16_operand(&self, t: &TensorInfo<'a>) -> Result<i32, Error> {
        match t.dtype {
            DType::I16 => self.i16_operand(t).map(|()| 0),
            _ => self.i8_operand(t),
        }
    }

    /// Which sides of a Conv or FullyConnected are int16 (at least one is):
    /// each side an int8 per-tensor tensor or an int16 activation. Returns
    /// the pair and input 0's zero point.
    #[cfg(feature = "int16-activations")]
    fn lanes(&self) -> Result<(Lanes, i32), Error> {
        let x = self.input(0)?;
        let side = |t: &TensorInfo<'a>| {
            let zp = self.s8_or_s16_operand(t)?;
            Ok::<_, Error>((t.dtype == DType::I16, zp))
        };
        let ((x_wide, zp), (y_wide, _)) = (side(&x)?, side(&self.output)?);
        let lanes = match (x_wide, y_wide) {
            (true, true) => Lanes::S16,
            (false, true) => Lanes::S8S16,
            (true, false) => Lanes::S16S8,
            (false, false) => return Err(self.bad(why!("no int16 side"))),
        };
        Ok((lanes, zp))
    }

    /// The activation range of the output: within `i16` for an int16 one.
    #[cfg(feature = "int16-activations")]
    fn act_range_of(&self, min_word: usize, max_word: usize) -> Result<(i32, i32), Error> {
        match self.output.dtype {
            DType::I16 => self.act_range_s16(min_word, max_word),
            _ => self.act_range(min_word, max_word),
        }
    }

    /// Input 0 and the output of an int16 op with int16 on both sides
    /// (the pools): mixed pairs need a Requantize.
    #[cfg(feature = "int16-activations")]
    fn i16_in_out(&self) -> Result<(), Error> {
        let x = self.input(0)?;
        self.ensure(
            x.dtype == DType::I16 && self.output.dtype == DType::I16,
            why!("input and output mix int8 and int16 (put a Requantize between)"),
        )?;
        self.i16_operand(&x)?;
        self.i16_operand(&self.output)
    }

    /// `-32768 <= act_min <= act_max <= 32767`, from two parameter words:
    /// the fused activation range of an int16 output.
    #[cfg(feature = "int16-activations")]
    fn act_range_s16(&self, min_word: usize, max_word: usize) -> Result<(i32, i32), Error> {
        let (lo, hi) = (self.word(min_word)?, self.word(max_word)?);
        self.ensure(
            -32768 <= lo && lo <= hi && hi <= 32767,
            why!("activation range not within [-32768, 32767]"),
        )?;
        Ok((lo, hi))
    }

    fn check_arity(&self, n_inputs: usize, n_params: usize) -> Result<(), Error> {
        self.ensure(
            self.op.inputs.len() == n_inputs,
            why!("wrong number of inputs"),
        )?;
        self.ensure(
            self.op.params.len() == n_params,
            why!("wrong number of parameters"),
        )
    }

    /// Symmetric int8 constant weights; per-channel only along axis 0.
    fn weights(&self, t: &TensorInfo<'a>, rank_ok: bool) -> Result<&'a [i8], Error> {
        self.check_weights(t, rank_ok)?;
        t.data_i8()
            .ok_or(self.bad(why!("weights must be an i8 constant")))
    }

    /// [`weights`](Self::weights), or the same stored sparse (Conv and
    /// FullyConnected).
    fn weight_rows(&self, t: &TensorInfo<'a>, rank_ok: bool) -> Result<Weights<'a>, Error> {
        self.check_weights(t, rank_ok)?;
        if let Some(dense) = t.data_i8() {
            return Ok(Weights::Dense(dense));
        }
        #[cfg(feature = "sparse-weights")]
        if let Some(sparse) = t.sparse_i8() {
            return Ok(Weights::Sparse(sparse));
        }
        #[cfg(feature = "pow2-weights")]
        if let Some(pow2) = t.pow2_i8() {
            return Ok(Weights::Pow2(pow2));
        }
        #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
        if let Some(sparse_pow2) = t.sparse_pow2_i8() {
            return Ok(Weights::SparsePow2(sparse_pow2));
        }
        #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
        if let Some(sparse_pow2x3) = t.sparse_pow2x3_i8() {
            return Ok(Weights::SparsePow2x3(sparse_pow2x3));
        }
        Err(self.bad(why!("weights must be an i8 constant")))
    }

    /// [`Self::weight_rows`] for an int16 layer: dense int8 or int16.
    #[cfg(feature = "int16-activations")]
    fn weight_rows_s16(&self, t: &TensorInfo<'a>, rank_ok: bool) -> Result<WeightsS16<'a>, Error> {
        self.check_weights(t, rank_ok)?;
        if let Some(w) = t.data_i8() {
            return Ok(WeightsS16::S8(w));
        }
        if let Some(w) = t.data_i16() {
            return Ok(WeightsS16::S16(w));
        }
        Err(self.bad(why!(
            "int16 layers take dense i8 or i16 weights, not sparse or power-of-two"
        )))
    }

    fn check_weights(&self, t: &TensorInfo<'a>, rank_ok: bool) -> Result<(), Error> {
        self.ensure(rank_ok, why!("weights have the wrong rank"))?;
        let symmetric = match t.quant {
            Quant::None => true,
            Quant::PerTensor { zero_point, .. } => zero_point == 0,
            Quant::PerChannel { axis, .. } => axis == 0,
        };
        self.ensure(
            symmetric,
            why!("weights must be symmetric (zero point 0, channels on axis 0)"),
        )
    }

    /// An `i32` constant of shape `[n]`.
    fn i32_vector(&self, t: &TensorInfo<'a>, n: usize) -> Result<&'a [i32], Error> {
        let data = t
            .data_i32()
            .ok_or(self.bad(why!("expected an i32 constant")))?;
        self.ensure(
            t.rank() == 1 && data.len() == n,
            why!("i32 constant has the wrong shape"),
        )?;
        Ok(data)
    }

    /// A per-channel shift vector: an `i8` constant of shape `[n]`,
    /// quantization None, every entry in `MIN_SHIFT..=MAX_SHIFT`.
    fn shift_vector(&self, t: &TensorInfo<'a>, n: usize) -> Result<&'a [i8], Error> {
        let data = t
            .data_i8()
            .filter(|_| matches!(t.quant, Quant::None))
            .ok_or(self.bad(why!(
                "shift vector must be an i8 constant without quantization"
            )))?;
        self.ensure(
            t.rank() == 1 && data.len() == n,
            why!("shift vector has the wrong shape"),
        )?;
        self.ensure(
            data.iter()
                .all(|&s| (MIN_SHIFT..=MAX_SHIFT).contains(&i32::from(s))),
            why!("shift out of range"),
        )?;
        Ok(data)
    }

    /// An input whose shape equals the output's: `(operand, zero point)`.
    fn same_shape_input(&self, i: usize) -> Result<(TensorInfo<'a>, i32), Error> {
        let x = self.input(i)?;
        let zp = self.i8_operand(&x)?;
        self.ensure(
            x.dims() == self.output.dims(),
            why!("output shape differs from input shape"),
        )?;
        Ok((x, zp))
    }
}

/// `[1, C, H, W]` or `[1, C, L]` (H = 1): returns `(C, H, W, is_2d)`.
fn nchw(t: &TensorInfo<'_>) -> Option<(usize, usize, usize, bool)> {
    match batched_nchw(t)? {
        (1, c, h, w, is_2d) => Some((c, h, w, is_2d)),
        _ => None,
    }
}

/// `(N, C, H, W, is_2d)` of an `[N, C, H, W]` or `[N, C, L]` tensor (`H` 1).
fn batched_nchw(t: &TensorInfo<'_>) -> Option<(usize, usize, usize, usize, bool)> {
    match *t.dims() {
        [n, c, h, w] => Some((n as usize, c as usize, h as usize, w as usize, true)),
        [n, c, l] => Some((n as usize, c as usize, 1, l as usize, false)),
        _ => None,
    }
}

/// The samples of a leading batch dimension that an op runs one at a time
/// (Conv on `[N, C, H, W]`, frames of a video as exported by camera-PPG
/// models): sample `i` reads the `i`-th of `N` equal parts of the input and
/// writes the `i`-th of the output. One sample is the whole tensors, so an
/// op of batch 1 runs exactly as without it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Batch(pub usize);

impl Batch {
    /// The int16 layers other than Conv run one sample.
    #[cfg(feature = "int16-activations")]
    pub const ONE: Batch = Batch(1);

    /// Runs `f` on each sample's input and output. The prepare checks that
    /// both lengths are `N` whole samples; if not, nothing runs.
    #[inline(always)]
    pub fn each<X, Y>(self, x: &[X], y: &mut [Y], mut f: impl FnMut(&[X], &mut [Y])) {
        if self.0 <= 1 {
            return f(x, y);
        }
        let (x_len, y_len) = (x.len() / self.0, y.len() / self.0);
        if x_len == 0
            || y_len == 0
            || !x.len().is_multiple_of(self.0)
            || !y.len().is_multiple_of(self.0)
        {
            return;
        }
        for (xs, ys) in x.chunks_exact(x_len).zip(y.chunks_exact_mut(y_len)) {
            f(xs, ys);
        }
    }
}

/// The shape right-aligned into 4 dims, padded in front with 1s. Shapes of
/// rank above 4 fit only if their extra leading dims are 1.
fn right_align4(t: &TensorInfo<'_>) -> Option<[usize; 4]> {
    let dims = t.dims();
    let extra = dims.len().saturating_sub(4);
    let (lead, last4) = dims.split_at(extra);
    if lead.iter().any(|&d| d != 1) {
        return None;
    }
    let mut out = [1usize; 4];
    for (slot, &d) in out.iter_mut().skip(4 - last4.len()).zip(last4) {
        *slot = d as usize;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_code_round_trips_and_no_other_code_decodes() {
        for (i, op) in OpCode::ALL.iter().enumerate() {
            assert_eq!(OpCode::from_u16(*op as u16), Some(*op));
            let later = &OpCode::ALL[i + 1..];
            assert!(later.iter().all(|o| o.name() != op.name() && o != op));
        }
        let decoded = (0..=u16::MAX)
            .filter(|&v| OpCode::from_u16(v).is_some())
            .count();
        assert_eq!(decoded, OpCode::ALL.len());
    }

    #[test]
    #[cfg(feature = "all-ops")]
    fn all_ops_builds_every_kernel() {
        assert!(OpCode::ALL.iter().all(|&op| is_built_in(op)));
    }
}
