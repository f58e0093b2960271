//! The converter's op registry: one module per IR op family, each the only
//! place its op lives, and one table of the ONNX ops the converter reads.
//!
//! A family module (`conv.rs`, `pool.rs`, ...) holds its IR payload type and
//! everything about it:
//! - the ONNX lowering(s): ONNX node → IR node, with static shapes, named in
//!   [`ONNX_OPS`];
//! - [`IrOp`]: its float semantics ([`IrOp::eval`], walked over a graph by
//!   [`crate::float_eval`]), its output quantization ([`IrOp::output_quant`]),
//!   its lowering to a `.mq` op with parameter words written by the runtime's
//!   named `params::<op>::*` indices ([`IrOp::lower`]), and what the report
//!   and the rewrites need to know about it.
//!
//! [`Op::def`] and [`Op::def_mut`] are the one dispatch over [`Op`]: they
//! match every variant with no catch-all arm, and [`IrOp`] has no default
//! methods, so an op added to the IR and forgotten here, or missing a part of
//! its definition, does not compile. `CONTRIBUTING.md` has the checklist.

pub mod arg_max;
pub mod batch_norm;
pub mod binary;
pub mod concat;
pub mod conditional;
pub mod constant;
pub mod conv;
pub mod conv_transpose;
pub mod einsum;
pub mod elementwise;
pub mod fully_connected;
pub mod gather;
pub mod layer_norm;
pub mod lut;
pub mod mat_mul;
pub(crate) mod onnx;
pub mod pad;
pub mod pointwise;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod reshape;
pub mod resize;
pub mod softmax;
pub(crate) mod stft;
#[cfg(test)]
pub(crate) mod testing;
pub mod top_k;
pub mod transpose;
pub(crate) mod window;

use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};
use arg_max::ArgMax;
use binary::{Binary, BinaryOp};
use concat::Concat;
use conditional::Where;
use conv::Conv;
use conv_transpose::ConvTranspose;
use elementwise::{Add, Arith, Mul};
use fully_connected::FullyConnected;
use gather::Select;
use layer_norm::LayerNorm;
use lut::Unary;
use mat_mul::MatMul;
use pad::Pad;
use pointwise::Pointwise;
use pool::{AvgPool, MaxPool, Pooling};
use recurrent::Recurrent;
use reduce::{Reduce, Reduction};
use resize::Resize;
use softmax::Softmax;
use top_k::TopK;
use transpose::Transpose;

pub use onnx::{markdown_table, onnx_op, OnnxOp, SUPPORTED_OPS};

/// An IR op: one `.mq` op (or nothing, for views the planner makes free).
/// Each variant's payload and everything about it (ONNX lowering, float
/// semantics, output quantization, int8 lowering) live in its family
/// module; [`Op::def`] is the one dispatch over this enum.
#[derive(Clone, Debug)]
pub enum Op {
    Conv(Conv),
    FullyConnected(FullyConnected),
    Add(Add),
    Mul(Mul),
    /// Every elementwise nonlinearity: a 256-entry table.
    Unary(Unary),
    MaxPool(MaxPool),
    AvgPool(AvgPool),
    Softmax(Softmax),
    Concat(Concat),
    Pad(Pad),
    /// Flatten, Reshape, Squeeze, Unsqueeze: same data, the output tensor's shape.
    Reshape,
    /// ONNX LSTM / GRU (forward, batch 1, zero initial state).
    Recurrent(Recurrent),
    ConvTranspose(ConvTranspose),
    /// Slice, Split and Gather of a computed tensor: one axis.
    Select(Select),
    /// A Transpose that reorders data (others are Reshape views).
    Transpose(Transpose),
    Resize(Resize),
    /// A pointwise function of one tensor (Erf, Gelu, fused chains): a table.
    Pointwise(Pointwise),
    /// Sub, Div, Min, Max where Add and Mul do not do.
    Binary(Binary),
    LayerNorm(LayerNorm),
    /// ReduceSum (ReduceMean too) and ReduceMax.
    Reduce(Reduce),
    /// MatMul of two computed tensors, or of a constant on the left.
    MatMul(MatMul),
    /// The index of the largest value along one axis.
    ArgMax(ArgMax),
    /// ONNX Where: `cond ? a : b`.
    Where(Where),
    /// The k largest or smallest values along one axis, or their indices.
    TopK(TopK),
}

/// What every IR op defines. No method has a default: a new op states each.
pub trait IrOp {
    /// A short name for reports: the `.mq` op it becomes.
    fn kind(&self) -> &'static str;

    /// The output from the inputs, in plain `f32`: the op's meaning, which
    /// the int8 op approximates.
    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError>;

    /// How the output tensor is quantized.
    fn output_quant(&self) -> OutputQuant;

    /// The `.mq` op: opcode, operands after quantization, parameter words.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError>;

    /// Multiply-accumulates of one run of `node` (0 for ops without products).
    fn macs(&self, graph: &Graph, node: &Node) -> u64;

    /// Float weights and biases the op holds (0 for ops without).
    fn parameters(&self) -> usize;

    /// The clamp the op applies to its output, for ops whose kernel has one
    /// (a following Relu/Clip fuses into it); `None` otherwise.
    fn activation_mut(&mut self) -> Option<&mut FusedActivation>;
}

/// The IR's one `Reshape` op has no payload; this is its definition.
static RESHAPE: reshape::Reshape = reshape::Reshape;

impl Op {
    /// The op's definition.
    pub fn def(&self) -> &dyn IrOp {
        match self {
            Op::Conv(op) => op,
            Op::FullyConnected(op) => op,
            Op::Add(op) => op,
            Op::Mul(op) => op,
            Op::Unary(op) => op,
            Op::MaxPool(op) => op,
            Op::AvgPool(op) => op,
            Op::Softmax(op) => op,
            Op::Concat(op) => op,
            Op::Pad(op) => op,
            Op::Reshape => &RESHAPE,
            Op::Recurrent(op) => op,
            Op::ConvTranspose(op) => op,
            Op::Select(op) => op,
            Op::Transpose(op) => op,
            Op::Resize(op) => op,
            Op::Pointwise(op) => op,
            Op::Binary(op) => op,
            Op::LayerNorm(op) => op,
            Op::Reduce(op) => op,
            Op::MatMul(op) => op,
            Op::ArgMax(op) => op,
            Op::Where(op) => op,
            Op::TopK(op) => op,
        }
    }

    /// The op's definition, to change its fused activation.
    pub fn def_mut(&mut self) -> Option<&mut dyn IrOp> {
        Some(match self {
            Op::Conv(op) => op,
            Op::FullyConnected(op) => op,
            Op::Add(op) => op,
            Op::Mul(op) => op,
            Op::Unary(op) => op,
            Op::MaxPool(op) => op,
            Op::AvgPool(op) => op,
            Op::Softmax(op) => op,
            Op::Concat(op) => op,
            Op::Pad(op) => op,
            // Nothing in a unit variant to change.
            Op::Reshape => return None,
            Op::Recurrent(op) => op,
            Op::ConvTranspose(op) => op,
            Op::Select(op) => op,
            Op::Transpose(op) => op,
            Op::Resize(op) => op,
            Op::Pointwise(op) => op,
            Op::Binary(op) => op,
            Op::LayerNorm(op) => op,
            Op::Reduce(op) => op,
            Op::MatMul(op) => op,
            Op::ArgMax(op) => op,
            Op::Where(op) => op,
            Op::TopK(op) => op,
        })
    }

    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        self.def().kind()
    }

    /// The clamp fused into the op's output, if it has one.
    pub fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        self.def_mut()?.activation_mut()
    }

    /// Whether the op's `.mq` kernel takes one image, `[1, C, L]` or
    /// `[1, C, H, W]`, as its first input: dimension 0 of a computed input
    /// that is data (an unbatched export) must be refused at the node,
    /// not found by the written file's validation. (Conv and the pools run
    /// a batch sample by sample.)
    pub fn takes_one_image(&self) -> bool {
        match self {
            Op::ConvTranspose(_) | Op::Resize(_) => true,
            Op::Conv(_)
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::FullyConnected(_)
            | Op::Add(_)
            | Op::Mul(_)
            | Op::Unary(_)
            | Op::Softmax(_)
            | Op::Concat(_)
            | Op::Pad(_)
            | Op::Reshape
            | Op::Recurrent(_)
            | Op::Select(_)
            | Op::Transpose(_)
            | Op::Pointwise(_)
            | Op::Binary(_)
            | Op::LayerNorm(_)
            | Op::Reduce(_)
            | Op::MatMul(_)
            | Op::ArgMax(_)
            | Op::Where(_)
            | Op::TopK(_) => false,
        }
    }
}

/// Every ONNX op the converter reads (default domain), sorted by name:
/// the supported-op list of errors and the README's table come from here.
pub const ONNX_OPS: &[OnnxOp] = &[
    OnnxOp::new(
        "Abs",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Acos",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes (NaN outside [−1, 1] gives 0, like every table's NaN)",
    ),
    OnnxOp::new(
        "Acosh",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes (NaN below 1 gives 0)",
    ),
    OnnxOp::new(
        "Add",
        |b, ctx, ins| elementwise::from_onnx(b, ctx, ins, Arith::Add),
        "Add",
        "numpy broadcasting; either operand may be a constant",
    ),
    OnnxOp::new(
        "And",
        pointwise::comparison,
        "Mul (of two computed 0/1 tensors), or Lut with a scalar constant",
        "booleans computed from the model input (comparisons, masks)",
    ),
    OnnxOp::new(
        "ArgMax",
        arg_max::from_onnx,
        "ArgMax (an output of scale 1: the indices; int8, or int16 past 128 values)",
        "any axis of at most 32768 values (past 128 the indices are int16: a runtime with \
         `int16-activations`), `keepdims`, `select_last_index`",
    ),
    OnnxOp::new(
        "ArgMin",
        arg_max::from_onnx,
        "Lut (−x), ArgMax",
        "as ArgMax",
    ),
    OnnxOp::new(
        "Asin",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes (NaN outside [−1, 1] gives 0)",
    ),
    OnnxOp::new(
        "Asinh",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Atan",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it); of a quotient of two computed tensors \
         (how `torch.atan2` is exported), Abs, Min, Max, Div, Lut and Select on the ratio \
         min/max in [0, 1]",
        "yes",
    ),
    OnnxOp::new(
        "Atanh",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes (±1 saturate to the output range; NaN outside gives 0)",
    ),
    OnnxOp::new(
        "AveragePool",
        |b, ctx, ins| pool::from_onnx(b, ctx, ins, Pooling::Average),
        "AvgPool (3-D: then the mean of runs of frames, a ReduceSum)",
        "1-D/2-D; strides, pads, dilations, `ceil_mode`, `count_include_pad`; a batch of samples; \
         3-D windows that neither pad nor overlap along time (kernel 1, or kernel = stride)",
    ),
    OnnxOp::new(
        "BatchNormalization",
        batch_norm::from_onnx,
        "folded into the Conv/Gemm before it, else Conv (depthwise 1×1) or FullyConnected",
        "inference mode, inputs of rank 2 to 4, and 5 with batch 1 (BatchNorm3d)",
    ),
    OnnxOp::new(
        "Cast",
        reshape::cast,
        "— (removed); to bool or an integer type, Lut",
        "any type on constants; to float on computed tensors, to bool (a Lut: 1 where \
         non-zero) and to integer types (a Lut: toward zero)",
    )
    .takes_constants(),
    OnnxOp::new(
        "Ceil",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Celu",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "`alpha` 1 (tract, the float reference, computes another `alpha` differently)",
    ),
    OnnxOp::new(
        "Clip",
        lut::clip,
        "fused into the op before it, else Lut",
        "constant bounds (attributes before opset 11)",
    ),
    OnnxOp::new(
        "Concat",
        concat::from_onnx,
        "Concat",
        "any axis; inputs may be constants",
    ),
    OnnxOp::new(
        "Constant",
        constant::constant,
        "— (a constant)",
        "`value`, `value_float(s)`, `value_int(s)`",
    )
    .takes_constants(),
    OnnxOp::new(
        "Conv",
        conv::from_onnx,
        "Conv (3-D: Pad, a Gather per temporal tap, Concat, Conv over the frames, Transpose)",
        "1-D/2-D; strides, pads (`auto_pad` too), dilations, groups, depthwise; constant weights; \
         a batch of samples runs one at a time (video frames); 3-D over a clip `[1, C, T, H, W]`, \
         group 1, as one 2-D Conv of the frames (a temporal im2col)",
    ),
    OnnxOp::new(
        "ConvTranspose",
        conv_transpose::from_onnx,
        "ConvTranspose",
        "1-D/2-D; strides, pads, `output_padding`, `output_shape`, `auto_pad`, dilations, groups; \
         constant weights; 3-D with a kernel `[kT, 1, 1]` (upsampling in time, as a 2-D \
         ConvTranspose over the pixels)",
    ),
    OnnxOp::new(
        "Cos",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Cosh",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "CumSum",
        fully_connected::cumsum,
        "FullyConnected (last axis), else MatMul: a triangular matrix of ones",
        "a computed tensor along a constant axis, `exclusive`, `reverse`",
    ),
    OnnxOp::new(
        "DepthToSpace",
        transpose::depth_space,
        "Reshape, Transpose (in steps of at most 4 dims), Reshape",
        "`[1, C, H, W]`, any `blocksize`, modes DCR and CRD (`nn.PixelShuffle`)",
    ),
    OnnxOp::new(
        "DFT",
        stft::dft,
        "FullyConnected (the transform's cosine and sine rows), between views (and Transposes \
         when the axis is not the one before the last)",
        "real or complex input, a constant axis (opset 20: the `axis` input) other than the \
         batch; `inverse`, `onesided` (`rfft`, and `irfft` with `inverse`), `dft_length` the signal's own; \
         at most 2²² weights (a 1024-point complex transform)",
    ),
    OnnxOp::new(
        "Div",
        |b, ctx, ins| elementwise::from_onnx(b, ctx, ins, Arith::Div),
        "Mul (by the reciprocal of a constant), else Div",
        "numpy broadcasting; a constant divisor without zeros becomes a product",
    ),
    OnnxOp::new(
        "Dropout",
        reshape::identity,
        "— (removed)",
        "inference (the identity)",
    )
    .takes_constants(),
    OnnxOp::new(
        "Einsum",
        einsum::from_onnx,
        "MatMul, or FullyConnected (a constant matrix on the right), with ReduceSum, Transpose and views around it",
        "any number of operands (products left to right), ellipsis; not diagonals (a label twice in one term)",
    ),
    OnnxOp::new(
        "Elu",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "any `alpha`",
    ),
    OnnxOp::new(
        "Equal",
        pointwise::comparison,
        "Lut (against a scalar constant), else Sub then Lut",
        "a computed tensor against a scalar (a table) or another tensor (a table of the difference: exact where the difference is, within one step of 0 it may round to the other side)",
    ),
    OnnxOp::new(
        "Erf",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it, e.g. GELU)",
        "yes",
    ),
    OnnxOp::new(
        "Exp",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Expand",
        gather::expand,
        "Gather (index 0 repeated, per stretched axis)",
        "a computed tensor to a constant shape (numpy broadcasting)",
    ),
    OnnxOp::new(
        "Flatten",
        reshape::flatten,
        "Reshape (a view)",
        "any axis",
    )
    .takes_constants(),
    OnnxOp::new(
        "Floor",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Gather",
        gather::gather,
        "Gather; an embedding: Sub, Lut (one-hot), FullyConnected",
        "a computed tensor, constant indices of any rank (a matrix frames a signal: `x.unfold`, \
         `nn.Unfold`), any axis; a constant table `[rows ≤ 128, width]` by computed indices along \
         axis 0 (`nn.Embedding` of a categorical input), indices in `−rows..rows`",
    ),
    OnnxOp::new(
        "GatherND",
        gather::gather_nd,
        "Gather (its dims merged, between views)",
        "a computed tensor by constant indices, `batch_dims` 0",
    ),
    OnnxOp::new(
        "Gelu",
        pointwise::unary,
        "Lut",
        "`approximate` \"none\" or \"tanh\"",
    ),
    OnnxOp::new(
        "Gemm",
        fully_connected::gemm,
        "FullyConnected",
        "2-D input (`transA` too), constant B (`transB`, `alpha`, `beta`) and C (a C that differs per row: an Add)",
    ),
    OnnxOp::new(
        "GlobalAveragePool",
        |b, ctx, ins| pool::global(b, ctx, ins, Pooling::Average),
        "AvgPool",
        "1-D/2-D, and 3-D over a clip",
    ),
    OnnxOp::new(
        "GlobalMaxPool",
        |b, ctx, ins| pool::global(b, ctx, ins, Pooling::Max),
        "MaxPool",
        "1-D/2-D, and 3-D over a clip",
    ),
    OnnxOp::new(
        "Greater",
        pointwise::comparison,
        "as Equal",
        "as Equal",
    ),
    OnnxOp::new(
        "GreaterOrEqual",
        pointwise::comparison,
        "as Equal",
        "as Equal",
    ),
    OnnxOp::new(
        "GroupNormalization",
        layer_norm::group_norm,
        "LayerNorm (each group, between views), then Conv (depthwise 1×1) unless scale 1 and bias 0",
        "inputs `[1, C, ...]` (≤ 16384 values per group), any `num_groups` dividing C and `epsilon`; \
         constant scale and bias (per group before opset 21, per channel from it)",
    ),
    OnnxOp::new(
        "GRU",
        recurrent::onnx::gru,
        "Gru",
        "forward or bidirectional (not reverse alone), batch 1, `layout` 0, default activations, zero \
         initial state or one given as a model input (`initial_h`: streaming), hidden ≤ 256, \
         `linear_before_reset` 0 or 1; outputs `Y` and `Y_h` (int16 state inside)",
    )
    .computes_outputs(2, "Y, every step's hidden state, and Y_h, the last one"),
    OnnxOp::new("HardSigmoid", lut::hard_sigmoid, "Lut", "any `alpha`, `beta`"),
    OnnxOp::new("HardSwish", lut::hard_swish, "Lut", "yes"),
    OnnxOp::new(
        "Identity",
        reshape::identity,
        "— (removed)",
        "yes",
    )
    .takes_constants(),
    OnnxOp::new(
        "InstanceNormalization",
        layer_norm::instance_norm,
        "LayerNorm, then Conv (depthwise 1×1) unless scale 1 and bias 0",
        "inputs `[1, C, L]` and `[1, C, H, W]` (≤ 16384 positions), any `epsilon`; constant scale and bias",
    ),
    OnnxOp::new(
        "IsInf",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "any `detect_negative`, `detect_positive` (an int8 tensor holds no infinity; the table is 0, and a `Where` on it keeps its other branch)",
    ),
    OnnxOp::new(
        "IsNaN",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes (an int8 tensor holds no NaN: the table is 0, so `torch.nan_to_num` is the identity)",
    ),
    OnnxOp::new(
        "LayerNormalization",
        layer_norm::from_onnx,
        "LayerNorm",
        "any `axis` (the axes from it on, ≤ 16384 values), `epsilon`, `stash_type` 1; constant Scale and B; output Y",
    ),
    OnnxOp::new("LeakyRelu", lut::leaky_relu, "Lut", "any `alpha`"),
    OnnxOp::new(
        "Less",
        pointwise::comparison,
        "as Equal",
        "as Equal",
    ),
    OnnxOp::new(
        "LessOrEqual",
        pointwise::comparison,
        "as Equal",
        "as Equal",
    ),
    OnnxOp::new(
        "Log",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it); on int16, Log",
        "yes (log 0 is the lowest output value; a negative input, NaN, gives 0 like every table's \
         NaN). On an int16 input, a logarithm (`log`, `log10`, decibels, `log(max(x, c))`, \
         `log(x + ε)` with ε under a step) runs as Log, an integer log2 exact at any scale",
    ),
    OnnxOp::new(
        "LogSoftmax",
        softmax::log_softmax,
        "ReduceMax, Sub, Lut (exp), ReduceSum, Lut (log), Sub",
        "one axis (before opset 13: the axes from `axis` on, at most one of them longer than 1)",
    ),
    OnnxOp::new(
        "LSTM",
        recurrent::onnx::lstm,
        "Lstm",
        "forward or bidirectional (not reverse alone), batch 1, `layout` 0, default activations, zero \
         initial state or one given as model inputs (`initial_h`, `initial_c`: streaming), no \
         peepholes, hidden ≤ 256; outputs `Y`, `Y_h` and `Y_c` (int16 state inside)",
    )
    .computes_outputs(3, "Y, every step's hidden state, Y_h, the last one, and Y_c, the last cell state"),
    OnnxOp::new(
        "MatMul",
        fully_connected::matmul,
        "FullyConnected, else MatMul",
        "constant weights on the right run as FullyConnected; two computed tensors (attention), \
         or a constant on the left, as MatMul: batch dims broadcast, 1-D operands, depth ≤ 32768",
    ),
    OnnxOp::new(
        "Max",
        |b, ctx, ins| binary::min_max(b, ctx, ins, BinaryOp::Max),
        "Max (a chain of them for more than two inputs)",
        "any number of inputs (constants too, one computed), numpy broadcasting",
    ),
    OnnxOp::new(
        "MaxPool",
        |b, ctx, ins| pool::from_onnx(b, ctx, ins, Pooling::Max),
        "MaxPool (3-D: then ReduceMax over runs of frames)",
        "1-D/2-D; strides, pads, dilations, `ceil_mode`; output 0 only; a batch of samples; 3-D \
         windows that neither pad nor overlap along time (kernel 1, or kernel = stride)",
    ),
    OnnxOp::new(
        "Mean",
        |b, ctx, ins| elementwise::sum_or_mean(b, ctx, ins, true),
        "Add (a chain of them), then Mul by 1/n",
        "any number of inputs (constants too, one computed), numpy broadcasting",
    ),
    OnnxOp::new(
        "Min",
        |b, ctx, ins| binary::min_max(b, ctx, ins, BinaryOp::Min),
        "Min (a chain of them for more than two inputs)",
        "any number of inputs (constants too, one computed), numpy broadcasting",
    ),
    OnnxOp::new(
        "Mish",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Mod",
        pointwise::modulo,
        "Lut (fused with the pointwise nodes around it)",
        "a computed tensor by a constant scalar divisor (`torch.fmod`: `fmod` 1; `fmod` 0 on \
         an integer input)",
    ),
    OnnxOp::new(
        "Mul",
        |b, ctx, ins| elementwise::from_onnx(b, ctx, ins, Arith::Mul),
        "Mul",
        "numpy broadcasting; either operand may be a constant",
    ),
    OnnxOp::new(
        "Neg",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Not",
        pointwise::comparison,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Or",
        pointwise::comparison,
        "Max (of two computed 0/1 tensors), or Lut with a scalar constant",
        "as And",
    ),
    OnnxOp::new(
        "Pad",
        pad::from_onnx,
        "Pad, or Gather (reflect, edge and wrap modes)",
        "modes constant, reflect (pads below the axis length), edge and wrap (opset 19: the \
         dynamo exporter's circular padding; pads up to the axis length); non-negative constant \
         pads (`axes` too)",
    ),
    OnnxOp::new(
        "Pow",
        pointwise::pow,
        "Lut (fused with the pointwise nodes around it)",
        "a computed tensor to a constant scalar power",
    ),
    OnnxOp::new(
        "PRelu",
        lut::prelu,
        "Lut (one slope), else Mul and Max/Min, or Lut, Mul, Add",
        "a constant slope that broadcasts onto the input (per channel, or one)",
    ),
    OnnxOp::new(
        "Reciprocal",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "ReduceL1",
        reduce::norm,
        "Lut (|x|), ReduceSum",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceL2",
        reduce::norm,
        "ReduceL2 (an exact sum of squares and integer root)",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceLogSum",
        reduce::norm,
        "ReduceSum, Lut (log)",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceLogSumExp",
        reduce::norm,
        "Lut (eˣ), ReduceSum, Lut (log)",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceMax",
        |b, ctx, ins| reduce::from_onnx(b, ctx, ins, Reduction::Max),
        "ReduceMax",
        "any axes (attribute, or input from opset 18), `keepdims`, `noop_with_empty_axes`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceMean",
        |b, ctx, ins| reduce::from_onnx(b, ctx, ins, Reduction::Mean),
        "ReduceSum (1/count in its multiplier)",
        "any axes (attribute, or input from opset 18), `keepdims`, `noop_with_empty_axes`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceMin",
        reduce::norm,
        "Lut (−x), ReduceMax, Lut (−x)",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceSum",
        |b, ctx, ins| reduce::from_onnx(b, ctx, ins, Reduction::Sum),
        "ReduceSum",
        "any axes (input from opset 13), `keepdims`, `noop_with_empty_axes`; rank ≤ 6",
    ),
    OnnxOp::new(
        "ReduceSumSquare",
        reduce::norm,
        "Lut (x²), ReduceSum",
        "any axes (input from opset 18), `keepdims`; rank ≤ 6",
    ),
    OnnxOp::new("Relu", lut::relu, "fused into the op before it, else Lut", "yes"),
    OnnxOp::new(
        "Reshape",
        reshape::reshape,
        "Reshape (a view)",
        "constant target shape (`0`, `-1`, `allowzero`)",
    )
    .takes_constants(),
    OnnxOp::new(
        "Resize",
        resize::resize,
        "Resize; cubic: a FullyConnected per resized axis (between Transposes for the height)",
        "1-D/2-D, and a clip `[1, C, T, H, W]` in time alone; nearest (all `nearest_mode`s) and \
         linear; cubic on 1-D/2-D (any `cubic_coeff_a`, `exclude_outside`); \
         `coordinate_transformation_mode` half_pixel, asymmetric, align_corners, \
         pytorch_half_pixel; `scales` (ratios of integers) or `sizes`",
    ),
    OnnxOp::new(
        "RNN",
        recurrent::onnx::rnn,
        "Rnn",
        "forward or bidirectional (not reverse alone), batch 1, `layout` 0, the default Tanh \
         activation, zero initial state or one given as a model input (`initial_h`: streaming), \
         hidden ≤ 256; outputs `Y` and `Y_h` (int16 state inside)",
    )
    .computes_outputs(2, "Y, every step's hidden state, and Y_h, the last one"),
    OnnxOp::new(
        "Round",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "halves to even, as ONNX",
    ),
    OnnxOp::new(
        "ScatterND",
        gather::scatter_nd,
        "Concat of Gathers (the runs each output element takes from `data` or `updates`)",
        "constant indices (slice assignment, `x[..., a:b] = y`); `reduction` none, add, mul, max, \
         min (these without a repeated index); up to 256 runs of consecutive elements",
    ),
    OnnxOp::new(
        "Selu",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "any `alpha`, `gamma`",
    ),
    OnnxOp::new(
        "Shape",
        constant::shape,
        "— (a constant: shapes are static)",
        "`start`, `end`",
    )
    .takes_constants(),
    OnnxOp::new(
        "Shrink",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "any `bias`, `lambd`",
    ),
    OnnxOp::new("Sigmoid", lut::sigmoid, "Lut", "yes"),
    OnnxOp::new(
        "Sign",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Sin",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Sinh",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Size",
        constant::size,
        "— (a constant: shapes are static)",
        "yes",
    )
    .takes_constants(),
    OnnxOp::new(
        "Slice",
        gather::slice,
        "Gather (one per sliced axis)",
        "a computed tensor, any axes and steps",
    ),
    OnnxOp::new(
        "Softmax",
        softmax::from_onnx,
        "Softmax",
        "one axis (before opset 13: the axes from `axis` on, at most one of them longer than 1)",
    ),
    OnnxOp::new(
        "Softplus",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Softsign",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "SpaceToDepth",
        transpose::depth_space,
        "Reshape, Transpose (in steps of at most 4 dims), Reshape",
        "`[1, C, H, W]`, any `blocksize` dividing H and W",
    ),
    OnnxOp::new(
        "Split",
        gather::split,
        "Gather (one per output)",
        "a computed tensor (a constant folds); `split` (an empty part computes nothing, and Concat drops it) or equal parts",
    )
    .takes_constants(),
    OnnxOp::new(
        "Sqrt",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new(
        "Squeeze",
        reshape::squeeze,
        "Reshape (a view)",
        "axes as attribute or constant input",
    )
    .takes_constants(),
    OnnxOp::new(
        "STFT",
        stft::from_onnx,
        "Conv (the windowed DFT's cosine and sine rows, strided by the hop), Transpose",
        "real signals `[batch, L]` or `[batch, L, 1]` (a batch of signals, e.g. a recording's \
         channels, shares one 2-D Conv); constant `frame_step`, `window`, `frame_length`; \
         `onesided`; frames up to 4096 samples",
    ),
    OnnxOp::new(
        "Sub",
        |b, ctx, ins| elementwise::from_onnx(b, ctx, ins, Arith::Sub),
        "Add (of a negated constant), else Sub",
        "numpy broadcasting; either operand may be a constant",
    ),
    OnnxOp::new(
        "Sum",
        |b, ctx, ins| elementwise::sum_or_mean(b, ctx, ins, false),
        "Add (a chain of them)",
        "any number of inputs (constants too, one computed), numpy broadcasting",
    ),
    OnnxOp::new(
        "Tan",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "yes",
    ),
    OnnxOp::new("Tanh", lut::tanh, "Lut", "yes"),
    OnnxOp::new(
        "ThresholdedRelu",
        pointwise::unary,
        "Lut (fused with the pointwise nodes around it)",
        "any `alpha`",
    ),
    OnnxOp::new(
        "Tile",
        gather::tile,
        "Gather (indices cycled, per repeated axis)",
        "a computed tensor by constant `repeats` (each at least 1)",
    ),
    OnnxOp::new(
        "TopK",
        top_k::from_onnx,
        "TopK (values: the input's quantization; indices: scale 1, int8 or int16 past 128 values, as ArgMax)",
        "`k` constant, any axis, `largest` 0 or 1, `sorted` 1; the values, the indices or both \
         (one op each on the same input)",
    )
    .computes_outputs(2, "Values and Indices"),
    OnnxOp::new(
        "Transpose",
        reshape::transpose,
        "Transpose, or Reshape (a view)",
        "any permutation (a view when it moves only size-1 axes; past 4 dims after merging the \
         axes that move together, in steps of at most 4: a pixel shuffle, a window partition)",
    )
    .takes_constants(),
    OnnxOp::new(
        "Trilu",
        elementwise::trilu,
        "Mul (by the constant 0/1 mask of the triangle)",
        "a computed tensor of rank ≥ 2, a constant `k`; `upper` either way",
    ),
    OnnxOp::new(
        "Unsqueeze",
        reshape::unsqueeze,
        "Reshape (a view)",
        "axes as attribute or constant input",
    )
    .takes_constants(),
    OnnxOp::new(
        "Upsample",
        resize::upsample,
        "Resize",
        "opsets 7–10, 1-D/2-D, nearest and linear (Resize-10's asymmetric coordinates); \
         `scales` (ratios of integers)",
    ),
    OnnxOp::new(
        "Where",
        conditional::from_onnx,
        "Select",
        "numpy broadcasting, at most 4 dims past leading 1s; the condition computed (a padding \
         mask given as a model input, a comparison) or constant (an attention mask), either \
         branch constant (`masked_fill`; `-inf` is the output's floor) or computed; a condition \
         comparing the selected tensor itself is a table (Lut)",
    ),
];
