//! Int8 kernels: one function per op, layout and type (`<op>_s8`), CMSIS-NN
//! style; with feature `int16-activations`, their int16-activation twins
//! (`<op>_s16`, `requantize_s8_s16`, `softmax_s16_s8`, `mat_mul_s16` over any
//! mix of sides): reference kernels, and on the Cortex-M DSP extension
//! `SMLALD` kernels for every int16 Conv and FullyConnected pairing
//! (`conv_s8_s16_dsp`, `conv_s16_dsp`, `conv_s16_s8_dsp`, FC alike).
//!
//! Kernels know nothing of the `.mq` format. They take slices and the plain
//! parameter structs defined here, so that every implementation of an op
//! (the portable [`reference`](mod@reference) kernels, and future Cortex-M
//! DSP / NEON / x86 ones) shares one signature and can be tested against the
//! same cases.
//! `NUMERICS.md` states each op's integer formula; the reference kernels are
//! the executable form of it, and every optimized kernel must be bit-exact
//! with them.
//!
//! Conventions shared by all kernels:
//! - Layout is NCHW with batch 1, so a 2-D activation is `[C, H, W]`; a 1-D op
//!   is the 2-D op with `H = 1` (kernel, stride and dilation 1 along H, no pads).
//! - Activations are asymmetric int8 (zero points in `[-128, 127]`); weights
//!   are symmetric int8 (zero point 0); bias and multipliers are `i32`,
//!   per-channel shifts `i8` (widened to `i32` where they are used).
//! - Every slice length and geometry is a documented precondition that the
//!   interpreter validates before calling. A kernel never panics: if a
//!   precondition it can check cheaply does not hold, it returns early and
//!   leaves `output` unchanged (documented per kernel as "Returns early").
//! - Accumulation is in `i32` with two's-complement wrap-around. Wrapping
//!   arithmetic is associative, so optimized kernels may reorder sums or fold
//!   zero-point corrections into precomputed offsets and still be bit-exact;
//!   the converter keeps real models far from the wrap (see `NUMERICS.md`).
//! - The int16 kernels (`*_s16`) take symmetric `i16` activations (zero
//!   point 0) and accumulate in `i64`, exactly; their activation windows are
//!   within `i16` (`NUMERICS.md` §5).

/// An int16 weight as `w = 256·hi + lo`: `lo` its low byte sign-extended
/// (`[−128, 127]`), `hi = (w − lo) / 256` (`[−128, 128]`). Both parts are
/// within the int8 weights' bound, so the x86-64 and aarch64 int16 GEMMs
/// run 16x16 layers as two passes of their int8-weight loop.
#[cfg(all(
    feature = "int16-activations",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[inline(always)]
pub(crate) fn weight_parts(w: i16) -> (i16, i16) {
    let lo = i16::from(w as i8);
    // `w >> 8` is `⌊w / 256⌋`; a negative `lo` took 256 off the rest.
    let hi = (w >> 8) - (lo >> 15);
    (hi, lo)
}

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod cortex_m;
pub mod reference;
pub mod select;
// The x86-64 int8 and int16 GEMMs, and the aarch64 int16 one.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", feature = "int16-activations")
))]
mod tile;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use crate::pow2::{encode_pow2_rows_into, Pow2Rows};
#[cfg(feature = "std")]
pub use crate::sparse::encode_sparse_rows;
pub use crate::sparse::{encode_sparse_rows_into, SparseRows};
pub use reference::*;

/// 2-D convolution geometry and quantization, for [`conv_s8`].
///
/// Output size is given rather than derived so that the interpreter (which
/// validates it with [`conv_out_len`]) and the kernel cannot disagree.
/// Positions outside the input (pads, and anything past the bottom/right
/// edge) contribute nothing, so end pads need no field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvParams {
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// `in_channels` and `out_channels` are both multiples of `groups`;
    /// depthwise is `groups == in_channels`.
    pub groups: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// Fully-connected (`y = x · Wᵀ + b` over the last axis), for [`fully_connected_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FullyConnectedParams {
    /// Number of input vectors (product of all but the last input dim).
    pub rows: usize,
    /// `K`, the last input dim.
    pub in_features: usize,
    /// `N`, the number of weight rows.
    pub out_features: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

impl FullyConnectedParams {
    /// Whether a call's slices have the lengths every fully connected kernel
    /// requires: `rows × in_features` inputs, `rows × out_features` outputs,
    /// and a bias, multiplier and shift per output feature. The weights'
    /// length depends on their storage ([`Self::dense_weights_fit`]).
    pub fn slices_fit(
        &self,
        input: usize,
        (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
        output: usize,
    ) -> bool {
        self.rows.checked_mul(self.in_features) == Some(input)
            && self.rows.checked_mul(self.out_features) == Some(output)
            && bias.len() == self.out_features
            && multiplier.len() == self.out_features
            && shift.len() == self.out_features
    }

    /// Whether `weights` dense values are an `out_features × in_features` matrix.
    pub fn dense_weights_fit(&self, weights: usize) -> bool {
        self.out_features.checked_mul(self.in_features) == Some(weights)
    }
}

/// Numpy broadcasting of two operands into one output, in at most 4 dims.
///
/// `out_shape` is the output shape left-padded with 1s to 4 dims; the strides
/// are each operand's element strides in its own row-major layout, 0 on dims
/// where the operand is broadcast (or absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Broadcast4 {
    pub out_shape: [usize; 4],
    pub a_strides: [usize; 4],
    pub b_strides: [usize; 4],
}

impl Broadcast4 {
    /// Right-aligns the shapes and applies numpy rules: per dim, equal sizes
    /// match, and a size of 1 stretches to the other size (including 0).
    ///
    /// `None` if the shapes are not broadcastable, if the output has more than
    /// 4 dims once its leading 1s are dropped, or if a size or stride
    /// overflows `usize`.
    pub fn new(a_shape: &[usize], b_shape: &[usize]) -> Option<Broadcast4> {
        let rank = a_shape.len().max(b_shape.len());
        let mut bc = Broadcast4 {
            out_shape: [1; 4],
            a_strides: [0; 4],
            b_strides: [0; 4],
        };
        let mut a_stride = 1usize;
        let mut b_stride = 1usize;
        let mut total = 1usize;
        // Walk from the innermost dim outwards, so strides accumulate and the
        // slot in the 4-dim arrays is known (slot 3 is the innermost).
        for i in 0..rank {
            let da = dim_from_right(a_shape, i);
            let db = dim_from_right(b_shape, i);
            let d = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return None;
            };
            total = total.checked_mul(d)?;
            if i >= 4 {
                // Beyond 4 dims only leading 1s (on both operands) are allowed.
                if d != 1 {
                    return None;
                }
                continue;
            }
            let slot = 3 - i;
            bc.out_shape[slot] = d;
            if da != 1 {
                bc.a_strides[slot] = a_stride;
            }
            if db != 1 {
                bc.b_strides[slot] = b_stride;
            }
            a_stride = a_stride.checked_mul(da)?;
            b_stride = b_stride.checked_mul(db)?;
        }
        Some(bc)
    }

    /// Number of output elements (saturating, for hand-built values).
    pub fn out_len(&self) -> usize {
        self.out_shape
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d))
    }
}

/// Size `i` positions from the right of `shape`, 1 when `shape` is shorter.
fn dim_from_right(shape: &[usize], i: usize) -> usize {
    shape
        .len()
        .checked_sub(i + 1)
        .and_then(|j| shape.get(j))
        .copied()
        .unwrap_or(1)
}

/// Quantized elementwise add (TFLite style), for [`add_s8`].
///
/// `y = requantize_to_i8(requantize((a−za)<<ls, am, as) + requantize((b−zb)<<ls, bm, bs), om, os, zy, min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddParams {
    pub a_zero_point: i32,
    pub b_zero_point: i32,
    pub output_zero_point: i32,
    /// Headroom shift applied before rescaling the operands, in `0..=20`.
    pub left_shift: i32,
    pub a_multiplier: i32,
    pub a_shift: i32,
    pub b_multiplier: i32,
    pub b_shift: i32,
    pub out_multiplier: i32,
    pub out_shift: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// Quantized elementwise multiply, for [`mul_s8`]:
/// `y = requantize_to_i8((a−za)·(b−zb), om, os, zy, min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MulParams {
    pub a_zero_point: i32,
    pub b_zero_point: i32,
    pub output_zero_point: i32,
    pub out_multiplier: i32,
    pub out_shift: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// A batched matrix product, for [`mat_mul_s8`]: `a [.., rows, depth]` times
/// `b [.., depth, cols]` into `y [.., rows, cols]`, row-major.
///
/// `batch` broadcasts the two operands' batch dims (their leading dims) as
/// numpy does; its strides count whole matrices, so matrix `(i, j, k, l)` of
/// `a` starts at `(i·s₀ + j·s₁ + k·s₂ + l·s₃)·rows·depth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MatMulParams {
    pub batch: Broadcast4,
    pub rows: usize,
    /// `1..=`[`MAX_MAT_MUL_DEPTH`]: the `i32` sum of `depth` products of
    /// two values in `[-255, 255]` cannot wrap.
    pub depth: usize,
    pub cols: usize,
    pub a_zero_point: i32,
    pub b_zero_point: i32,
    pub output_zero_point: i32,
    pub out_multiplier: i32,
    pub out_shift: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// The layout of an ArgMax, for [`arg_max_s8`]: `x` is `[outer, len,
/// inner]` row-major, `y` is `[outer, inner]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArgMaxParams {
    pub outer: usize,
    /// `1..=`[`MAX_ARG_MAX_LEN`]: every index fits `i8`.
    pub len: usize,
    pub inner: usize,
    /// Of equal largest values, the last index instead of the first.
    pub select_last: bool,
}

/// The layout of a TopK, for [`top_k_s8`] and [`top_k_indices_s8`]: `x` is
/// `[outer, len, inner]` row-major, `y` is `[outer, k, inner]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TopKParams {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    /// `1..=len`.
    pub k: usize,
    /// The largest values (else the smallest).
    pub largest: bool,
}

/// Max/average pooling geometry, for [`max_pool_s8`] and [`avg_pool_s8`].
///
/// Input `[channels, in_h, in_w]`, output `[channels, out_h, out_w]`, same
/// scale and zero point. End pads need no field: with the floor-mode output
/// size that [`conv_out_len`] gives, every window ends inside the padded input
/// (see `NUMERICS.md` for the average divisor this implies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolParams {
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// AvgPool only: divide by the whole window rather than its valid part.
    pub count_include_pad: bool,
    /// Zero point of input and output, in `[-128, 127]`.
    pub zero_point: i32,
}

/// The rescale of one activation tensor to another's grid and type, for
/// [`requantize_s8_s16`], [`requantize_s16_s8`] and [`requantize_s16_s16`]:
/// `y = clamp(output_zero_point + requantize(x − input_zero_point,
/// multiplier, shift))` to the output type. An int16 side's zero point is 0.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequantizeParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: i32,
    pub shift: i32,
}

/// The natural logarithm of an int16 activation, for [`log_s16`]: inputs
/// below `low_input` (at least 1) read `low_output`; the others
/// `requantize_i64(log2_q16(x) + bias, multiplier, shift)`. Both sides are
/// int16 with zero point 0.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogParams {
    /// `2^16·log2(input scale) + ` the output's offset, in the same Q16 units.
    pub bias: i32,
    pub multiplier: i32,
    pub shift: i32,
    pub low_input: i32,
    pub low_output: i32,
}

/// Softmax along one axis of a tensor viewed as `[outer, axis_len, inner]`,
/// for [`softmax_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxParams {
    pub outer: usize,
    pub axis_len: usize,
    pub inner: usize,
}

/// One input of a concatenation, for [`concat_part_s8`].
///
/// The concat axis splits both tensors into `outer` blocks: the input's
/// blocks are `in_block` elements long, the output's `out_block`, and this
/// input fills `[out_start, out_start + in_block)` of every output block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConcatPart {
    pub outer: usize,
    pub in_block: usize,
    pub out_block: usize,
    pub out_start: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Rescale from the input's scale to the output's.
    pub multiplier: i32,
    pub shift: i32,
}

/// Constant padding in at most 4 dims, for [`pad_s8`] (and `pad_s16`).
///
/// Shapes are row-major and left-padded with 1s to 4 dims; for every dim
/// `out_shape[d] >= pad_before[d] + in_shape[d]` (the rest is end padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PadParams {
    pub in_shape: [usize; 4],
    pub out_shape: [usize; 4],
    pub pad_before: [usize; 4],
    /// The quantized pad value, within the tensor's type.
    pub value: i32,
}

/// Elementwise minimum or maximum with broadcasting, for [`min_s8`] and
/// [`max_s8`]: each operand is rescaled to the output scale, then compared.
/// `y = clamp(zy + op(requantize(a−za, am, as), requantize(b−zb, bm, bs)), min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MinMaxParams {
    pub a_zero_point: i32,
    pub b_zero_point: i32,
    pub output_zero_point: i32,
    pub a_multiplier: i32,
    pub a_shift: i32,
    pub b_multiplier: i32,
    pub b_shift: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// An elementwise choice with broadcasting, for [`select_s8`]: where `cond`
/// is not its zero point, `a` rescaled to the output, else `b` (each by its
/// own multiplier and shift in `values`, as Min and Max rescale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SelectParams {
    pub cond_zero_point: i32,
    /// `cond`'s element strides over the output's 4 dims (0 where it is
    /// broadcast), as [`Broadcast4`] gives `a`'s and `b`'s.
    pub cond_strides: [usize; 4],
    pub values: MinMaxParams,
}

/// Layer normalization of `rows` vectors of `len` values, for
/// [`layer_norm_s8`]; `NUMERICS.md` § LayerNorm gives the integer formula.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerNormParams {
    pub rows: usize,
    /// `1..=MAX_LAYER_NORM_LEN`.
    pub len: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// `ε · len² / scale_x²`, rounded: the epsilon in the units of the
    /// integer variance statistic; `0..=MAX_LAYER_NORM_EPSILON`.
    pub epsilon: i64,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// A reduction over any set of axes of a tensor of rank `<= 6`, for
/// [`reduce_sum_s8`] and [`reduce_max_s8`].
///
/// The output holds the kept dims in order (with or without size-1 dims in
/// place of the reduced ones: the bytes are the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReduceParams {
    /// Input shape, row-major; only the first `rank` entries count.
    pub shape: [usize; 6],
    pub rank: usize,
    /// Bit `d` set: axis `d` is reduced.
    pub axes: u8,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Rescale of the sum (or the maximum) to the output scale; a mean's
    /// `1/count` is folded in by the converter.
    pub multiplier: i32,
    pub shift: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127`.
    pub act_min: i32,
    pub act_max: i32,
}

/// Output length of a convolution or pooling window along one axis, floor mode:
/// `(in + pad_begin + pad_end − dilation·(kernel−1) − 1) / stride + 1`.
///
/// `None` when `in_len`, `kernel`, `stride` or `dilation` is 0, when the
/// dilated kernel is longer than the padded input, or on overflow.
pub fn conv_out_len(
    in_len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
) -> Option<usize> {
    if in_len == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let padded = in_len.checked_add(pad_begin)?.checked_add(pad_end)?;
    let span = (kernel - 1).checked_mul(dilation)?.checked_add(1)?;
    let room = padded.checked_sub(span)?;
    Some(room / stride + 1)
}

/// Transposed convolution geometry and quantization, for
/// [`conv_transpose_s8`].
///
/// Output position `o`, tap `k` reads input position
/// `(o + pad − k·dilation) / stride` when that division is exact and lands
/// inside the input (ONNX ConvTranspose, gathered per output). Output size
/// is given (the interpreter validates it against the end pads and
/// `output_padding`); positions no tap reaches hold `requantize(bias)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvTransposeParams {
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// `in_channels` and `out_channels` are both multiples of `groups`.
    pub groups: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Fused activation clamp, `-128 <= act_min <= act_max <= 127` (within
    /// `i16` for an int16 output).
    pub act_min: i32,
    pub act_max: i32,
}

/// A permutation of at most 4 dims, for [`transpose_s8`]: output dim `d` is
/// input dim `perm[d]`. Shapes of lower rank are left-padded with 1s (and
/// `perm` with the identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransposeParams {
    pub in_shape: [usize; 4],
    pub perm: [usize; 4],
}

/// A strided range along one axis of a tensor viewed as
/// `[outer, axis_len, inner]`, for [`slice_s8`]: output index `k <
/// count` reads input index `start + k·step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SliceParams {
    pub outer: usize,
    pub axis_len: usize,
    pub inner: usize,
    pub start: usize,
    /// Non-zero; negative walks backwards.
    pub step: isize,
    pub count: usize,
}

/// One axis of a tensor viewed as `[outer, axis_len, inner]`, for
/// [`gather_s8`] (the index list gives the output's axis length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GatherParams {
    pub outer: usize,
    pub axis_len: usize,
    pub inner: usize,
}

/// Resampling method of [`resize_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResizeMode {
    /// The nearest input sample, ties and fractions rounded as given.
    Nearest(NearestRounding),
    /// Linear (bilinear in 2-D) interpolation between the two nearest samples.
    Linear,
}

/// How a fractional source coordinate picks a sample (ONNX `nearest_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NearestRounding {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Where output position `o` samples the input (ONNX
/// `coordinate_transformation_mode`), with `scale = num / den`:
/// half-pixel `(o + ½)/scale − ½`; asymmetric `o/scale`; align-corners
/// `o·(in − 1)/(out − 1)`; PyTorch half-pixel is half-pixel except 0 when
/// `out = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CoordinateMode {
    HalfPixel,
    Asymmetric,
    AlignCorners,
    PytorchHalfPixel,
}

/// One resized axis: input and output lengths and the scale `num / den`
/// (output per input), each term in `1..=MAX_SCALE_TERM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResizeAxis {
    pub in_len: usize,
    pub out_len: usize,
    pub scale_num: u32,
    pub scale_den: u32,
}

/// Resampling of `[channels, in_h, in_w]` to `[channels, out_h, out_w]`,
/// same scale and zero point, for [`resize_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResizeParams {
    pub channels: usize,
    pub h: ResizeAxis,
    pub w: ResizeAxis,
    pub mode: ResizeMode,
    pub coordinate: CoordinateMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_out_len_floor_mode() {
        // (5 + 0 + 0 − 3) / 1 + 1 = 3
        assert_eq!(conv_out_len(5, 3, 1, 1, 0, 0), Some(3));
        // (5 + 1 + 1 − 3) / 2 + 1 = 2 + 1 = 3
        assert_eq!(conv_out_len(5, 3, 2, 1, 1, 1), Some(3));
        // (6 + 0 + 0 − 3) / 2 + 1 = 1 + 1 = 2 (floor drops the partial window)
        assert_eq!(conv_out_len(6, 3, 2, 1, 0, 0), Some(2));
        // dilation 2: span 2·2+1 = 5; (7 − 5) / 1 + 1 = 3
        assert_eq!(conv_out_len(7, 3, 1, 2, 0, 0), Some(3));
        // SAME_UPPER, in 5, k 2: pads (0, 1): (6 − 2) / 1 + 1 = 5
        assert_eq!(conv_out_len(5, 2, 1, 1, 0, 1), Some(5));
        // exactly fits
        assert_eq!(conv_out_len(3, 3, 5, 1, 0, 0), Some(1));
    }

    #[test]
    fn conv_out_len_rejects_invalid() {
        assert_eq!(conv_out_len(0, 1, 1, 1, 0, 0), None);
        assert_eq!(conv_out_len(5, 0, 1, 1, 0, 0), None);
        assert_eq!(conv_out_len(5, 1, 0, 1, 0, 0), None);
        assert_eq!(conv_out_len(5, 1, 1, 0, 0, 0), None);
        // kernel 4 > input 3
        assert_eq!(conv_out_len(3, 4, 1, 1, 0, 0), None);
        // dilated span 2·2+1 = 5 > 4
        assert_eq!(conv_out_len(4, 3, 1, 2, 0, 0), None);
        assert_eq!(conv_out_len(usize::MAX, 1, 1, 1, 1, 0), None);
        assert_eq!(conv_out_len(5, usize::MAX, 1, 2, 0, 0), None);
    }

    #[test]
    fn broadcast_same_shape() {
        let bc = Broadcast4::new(&[2, 3], &[2, 3]).unwrap();
        assert_eq!(bc.out_shape, [1, 1, 2, 3]);
        assert_eq!(bc.a_strides, [0, 0, 3, 1]);
        assert_eq!(bc.b_strides, [0, 0, 3, 1]);
        assert_eq!(bc.out_len(), 6);
    }

    #[test]
    fn broadcast_right_aligns() {
        // [1, 8, 4, 4] + [8, 1, 1] (per-channel constant): b's dims align to C, H, W.
        let bc = Broadcast4::new(&[1, 8, 4, 4], &[8, 1, 1]).unwrap();
        assert_eq!(bc.out_shape, [1, 8, 4, 4]);
        assert_eq!(bc.a_strides, [0, 16, 4, 1]);
        assert_eq!(bc.b_strides, [0, 1, 0, 0]);
        // Scalar operand.
        let bc = Broadcast4::new(&[3, 5], &[]).unwrap();
        assert_eq!(bc.out_shape, [1, 1, 3, 5]);
        assert_eq!(bc.b_strides, [0; 4]);
        // Both operands stretched: [3, 1] + [1, 4] -> [3, 4].
        let bc = Broadcast4::new(&[3, 1], &[1, 4]).unwrap();
        assert_eq!(bc.out_shape, [1, 1, 3, 4]);
        assert_eq!(bc.a_strides, [0, 0, 1, 0]);
        assert_eq!(bc.b_strides, [0, 0, 0, 1]);
        // Operand a shorter than b.
        let bc = Broadcast4::new(&[4], &[2, 3, 4]).unwrap();
        assert_eq!(bc.out_shape, [1, 2, 3, 4]);
        assert_eq!(bc.a_strides, [0, 0, 0, 1]);
        assert_eq!(bc.b_strides, [0, 12, 4, 1]);
    }

    #[test]
    fn broadcast_zero_sized_dims() {
        // A 1 stretches to 0, as in numpy.
        let bc = Broadcast4::new(&[0, 3], &[1, 3]).unwrap();
        assert_eq!(bc.out_shape, [1, 1, 0, 3]);
        assert_eq!(bc.out_len(), 0);
        assert_eq!(Broadcast4::new(&[0], &[2]), None);
    }

    #[test]
    fn broadcast_rejects_mismatch() {
        assert_eq!(Broadcast4::new(&[2, 3], &[3, 2]), None);
        assert_eq!(Broadcast4::new(&[4], &[3]), None);
    }

    #[test]
    fn broadcast_rank_limit() {
        // Leading 1s beyond 4 dims are dropped.
        let bc = Broadcast4::new(&[1, 1, 2, 3, 4, 5], &[5]).unwrap();
        assert_eq!(bc.out_shape, [2, 3, 4, 5]);
        assert_eq!(bc.a_strides, [60, 20, 5, 1]);
        assert_eq!(bc.b_strides, [0, 0, 0, 1]);
        // A real fifth dim is not supported.
        assert_eq!(Broadcast4::new(&[2, 1, 1, 1, 1], &[1]), None);
        assert_eq!(Broadcast4::new(&[1], &[2, 3, 1, 1, 1]), None);
    }

    #[test]
    fn broadcast_rejects_overflow() {
        let big = usize::MAX / 2 + 1;
        assert_eq!(Broadcast4::new(&[big, 2], &[big, 2]), None);
        assert_eq!(Broadcast4::new(&[big, 1], &[1, 2]), None);
    }
}
