//! Portable reference kernels: the executable definition of each op's integer
//! arithmetic. Written for clarity first; optimized kernels elsewhere must be
//! bit-exact with these.

mod arg_max;
mod concat;
mod conv;
mod conv_transpose;
mod elementwise;
mod fully_connected;
mod gather;
#[cfg(feature = "int16-activations")]
mod log;
mod lut;
mod mat_mul;
mod pad;
mod pool;
#[cfg(feature = "pow2-weights")]
mod pow2;
mod recurrent;
mod resize;
mod select;
mod softmax;
#[cfg(feature = "sparse-weights")]
mod sparse;
mod top_k;
mod transpose;
// The math ops (issue 11): Sub, Div, Min, Max, LayerNorm, Reduce.
mod binary;
mod layer_norm;
mod reduce;
#[cfg(feature = "int16-activations")]
mod requantize;

pub use arg_max::{arg_max_s8, MAX_ARG_MAX_LEN};
#[cfg(feature = "int16-activations")]
pub use arg_max::{arg_max_s8_s16, MAX_ARG_MAX_LEN_S16};
#[cfg(feature = "int16-activations")]
pub use binary::{div_s16, max_s16, min_s16, sub_s16};
pub use binary::{div_s8, max_s8, min_s8, sub_s8, DIV_FRACTION_BITS};
#[cfg(feature = "int16-activations")]
pub use concat::concat_part_s16;
pub use concat::concat_part_s8;
pub use conv::conv_s8;
#[cfg(feature = "int16-activations")]
pub(crate) use conv::lanes_call_ok as conv_lanes_call_ok;
#[cfg(feature = "int16-activations")]
pub use conv::{
    conv_s16, conv_s16_s8, conv_s16_s8_w16, conv_s16_w16, conv_s8_s16, conv_s8_s16_w16,
};
#[cfg(feature = "int16-activations")]
pub use conv_transpose::conv_transpose_s16;
pub use conv_transpose::conv_transpose_s8;
#[cfg(feature = "int16-activations")]
pub use elementwise::{add_s16, mul_s16, MAX_ADD_LEFT_SHIFT_S16};
pub use elementwise::{add_s8, mul_s8};
pub use fully_connected::fully_connected_s8;
#[cfg(feature = "int16-activations")]
pub use fully_connected::{
    fully_connected_s16, fully_connected_s16_s8, fully_connected_s16_s8_w16,
    fully_connected_s16_w16, fully_connected_s8_s16, fully_connected_s8_s16_w16,
};
#[cfg(feature = "int16-activations")]
pub use gather::{gather_s16, slice_s16};
pub use gather::{gather_s8, slice_s8};
#[cfg(feature = "int16-activations")]
pub use layer_norm::layer_norm_s16;
pub use layer_norm::{
    isqrt, layer_norm_s8, LAYER_NORM_FRACTION_BITS, MAX_LAYER_NORM_EPSILON, MAX_LAYER_NORM_LEN,
};
#[cfg(feature = "int16-activations")]
pub use log::{log2_q16, log_s16, LOG2_FRACTION_BITS};
pub use lut::{lut_in_place_s8, lut_s8};
#[cfg(feature = "int16-activations")]
pub use lut::{lut_s16, LUT_S16_ENTRIES};
#[cfg(feature = "int16-activations")]
pub use mat_mul::mat_mul_s16;
pub use mat_mul::{mat_mul_s8, MAX_MAT_MUL_DEPTH};
#[cfg(feature = "int16-activations")]
pub use pad::pad_s16;
pub use pad::pad_s8;
#[cfg(feature = "int16-activations")]
pub use pool::{avg_pool_s16, max_pool_s16};
pub use pool::{avg_pool_s8, max_pool_s8};
#[cfg(feature = "int16-activations")]
pub use recurrent::{
    gru_s16, gru_s16_s8, gru_s8_s16, lstm_s16, lstm_s16_s8, lstm_s8_s16, rnn_s16, rnn_s16_s8,
    rnn_s8_s16, MAX_INPUT_S16,
};
pub use recurrent::{
    gru_s8, lstm_s8, rnn_s8, table_lookup_s16, GruParams, InitialState, LstmParams,
    RecurrentParams, RecurrentWeights, RnnParams, StateValues, GRU_TABLES, LSTM_TABLES, MAX_HIDDEN,
    RNN_TABLES, TABLE_LEN,
};
#[cfg(feature = "int16-activations")]
pub use select::select_s16;
pub use select::select_s8;
#[cfg(feature = "int16-activations")]
pub use top_k::top_k_indices_s8_s16;
pub use top_k::{top_k_indices_s8, top_k_s8};
// The gate loops the SIMD kernels reuse with their own products.
#[cfg(feature = "pow2-weights")]
pub use pow2::{conv_pow2_s8, fully_connected_pow2_s8};
#[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
pub(crate) use recurrent::{gru_with, lstm_with, rnn_with, GateProducts, RowQuant, ScalarProducts};
#[cfg(feature = "int16-activations")]
pub use reduce::{reduce_l2_s16, reduce_s16};
pub use reduce::{
    reduce_l2_s8, reduce_max_s8, reduce_sum_s8, L2_SQUARE_SHIFT_S16, L2_SQUARE_SHIFT_S8,
};
#[cfg(feature = "int16-activations")]
pub use requantize::{requantize_s16_s16, requantize_s16_s8, requantize_s8_s16};
pub use resize::{resize_s8, MAX_RESIZE_LEN, MAX_SCALE_TERM};
pub use softmax::softmax_s8;
#[cfg(feature = "int16-activations")]
pub use softmax::{softmax_s16, softmax_s16_s8, softmax_s8_s16};
#[cfg(feature = "sparse-weights")]
pub use sparse::{
    conv_sparse_pow2_s8, conv_sparse_pow2x3_s8, conv_sparse_s8, fully_connected_sparse_pow2_s8,
    fully_connected_sparse_pow2x3_s8, fully_connected_sparse_s8,
};
#[cfg(feature = "sparse-weights")]
pub(crate) use sparse::{
    conv_sparse_with, OutputRequant, ReferenceParts, SparseConvParts, Tap, QUAD,
};
#[cfg(feature = "int16-activations")]
pub use transpose::transpose_s16;
pub use transpose::transpose_s8;

/// The taps of a sliding window along one axis that land inside the input.
///
/// Tap `k` of output position `o` reads input position
/// `o·stride + k·dilation − pad`; the valid taps are `lo..hi`, and tap `lo`
/// reads input position `first` (meaningless when the range is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Taps {
    pub lo: usize,
    pub hi: usize,
    pub first: usize,
}

impl Taps {
    /// Computed in closed form so the inner loops need no per-tap bounds test.
    /// Total for any arguments; exact when `o·stride + (kernel−1)·dilation`
    /// and `in_len + pad` do not overflow (the kernels check [`axis_ok`]).
    #[inline]
    pub(crate) fn new(
        o: usize,
        stride: usize,
        dilation: usize,
        pad: usize,
        kernel: usize,
        in_len: usize,
    ) -> Taps {
        let d = dilation.max(1);
        let base = o.saturating_mul(stride);
        // First tap at or after the start of the input: k·d >= pad − base.
        let lo = if base >= pad {
            0
        } else {
            div_ceil(pad - base, d)
        }
        .min(kernel);
        // Taps strictly before its end: base + k·d < in_len + pad.
        let end = in_len.saturating_add(pad);
        let hi = if end > base {
            div_ceil(end - base, d)
        } else {
            0
        }
        .min(kernel);
        if lo >= hi {
            return Taps {
                lo: 0,
                hi: 0,
                first: 0,
            };
        }
        let first = (base + lo * d) - pad;
        Taps { lo, hi, first }
    }

    #[inline]
    fn len(&self) -> usize {
        self.hi - self.lo
    }
}

#[inline]
fn div_ceil(x: usize, d: usize) -> usize {
    x / d + usize::from(!x.is_multiple_of(d))
}

/// One axis of a window geometry is usable: kernel, stride and dilation are
/// non-zero and the furthest tap position cannot overflow.
pub(crate) fn axis_ok(
    out: usize,
    stride: usize,
    kernel: usize,
    dilation: usize,
    pad: usize,
    in_len: usize,
) -> bool {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return false;
    }
    let reach = out
        .saturating_sub(1)
        .checked_mul(stride)
        .zip((kernel - 1).checked_mul(dilation))
        .and_then(|(a, b)| a.checked_add(b));
    reach.is_some() && in_len.checked_add(pad).is_some()
}

/// The fused activation clamp stays inside `i8`, so the final cast is exact.
pub(crate) fn act_ok(act_min: i32, act_max: i32) -> bool {
    -128 <= act_min && act_min <= act_max && act_max <= 127
}

/// An activation type of the mixed-precision kernels: `i8` (asymmetric,
/// any zero point) or `i16` (symmetric, zero point 0). A layer may read one
/// and write the other, so a model raises a tensor to int16 without a
/// conversion op on either side. (Always built: the recurrent kernels'
/// int8 path is generic over it too.)
pub trait Lane: Copy + Into<i64> {
    /// The type's range, which the activation window must lie in.
    const MIN: i32;
    const MAX: i32;
    /// Whether the type's zero point must be 0.
    const SYMMETRIC: bool;
    /// `v`, already clamped into `MIN..=MAX`, so the cast is exact.
    fn from_clamped(v: i32) -> Self;
}

/// An operand of the broadcasting int16 kernels (`add_s16`, `sub_s16`,
/// ...): an `i8` or `i16` lane, read as `i32`.
#[cfg(feature = "int16-activations")]
pub trait OperandLane: Lane + Into<i32> + Default {}

#[cfg(feature = "int16-activations")]
impl<T: Lane + Into<i32> + Default> OperandLane for T {}

impl Lane for i8 {
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    const SYMMETRIC: bool = false;
    #[inline(always)]
    fn from_clamped(v: i32) -> i8 {
        v as i8
    }
}

impl Lane for i16 {
    const MIN: i32 = -32768;
    const MAX: i32 = 32767;
    const SYMMETRIC: bool = true;
    #[inline(always)]
    fn from_clamped(v: i32) -> i16 {
        v as i16
    }
}

/// The zero points and activation window a kernel reading `X` and writing
/// `Y` takes: symmetric types at zero point 0, the window inside `Y`.
#[cfg(feature = "int16-activations")]
pub(crate) fn lanes_ok<X: Lane, Y: Lane>(
    input_zero_point: i32,
    output_zero_point: i32,
    act_min: i32,
    act_max: i32,
) -> bool {
    (!X::SYMMETRIC || input_zero_point == 0)
        && (!Y::SYMMETRIC || output_zero_point == 0)
        && Y::MIN <= act_min
        && act_min <= act_max
        && act_max <= Y::MAX
}

/// A weight type of the mixed-precision Conv and FullyConnected kernels
/// (symmetric, zero point 0): `i8`, TFLite's 16x8 scheme, or `i16` (16x16),
/// for the few layers whose int8 weights limit a model's accuracy.
///
/// A term `(x − zp) · w` has `|x − zp| ≤ 32768 + 128` (an `i16` input, or
/// an `i8` one less a zero point within `i16`), so one term always fits
/// `i32`: below 2^22.01 with `i8` weights, 2^30.01 with `i16` ones.
#[cfg(feature = "int16-activations")]
pub trait WeightLane: Copy + Into<i32> {
    /// Terms the kernels sum in `i32` before adding into their `i64`
    /// accumulators, exactly: 256 for `i8` weights (on a 32-bit core `i32`
    /// sums cost half of `i64` ones), 1 for `i16` weights.
    const I32_EXACT_TERMS: usize;
}

#[cfg(feature = "int16-activations")]
impl WeightLane for i8 {
    const I32_EXACT_TERMS: usize = 256;
}

#[cfg(feature = "int16-activations")]
impl WeightLane for i16 {
    const I32_EXACT_TERMS: usize = 1;
}

/// `Σ (x − zp) · w` over at most `W::I32_EXACT_TERMS` pairs, exact in `i32`.
#[cfg(feature = "int16-activations")]
#[inline(always)]
fn dot_i32<X: Lane + Into<i32>, W: WeightLane>(xs: &[X], ws: &[W], zp: i32) -> i32 {
    xs.iter().zip(ws).fold(0i32, |acc, (&x, &w)| {
        acc.wrapping_add((Into::<i32>::into(x) - zp) * w.into())
    })
}

/// The last step of the mixed-precision Conv and FullyConnected kernels:
/// requantize the `i64` accumulator, add the output zero point and clamp to
/// the activation window (inside `Y` by [`lanes_ok`], so the cast is exact).
#[cfg(feature = "int16-activations")]
#[inline(always)]
pub(crate) fn requantize_to_lane<Y: Lane>(
    acc: i64,
    multiplier: i32,
    shift: i32,
    output_zero_point: i32,
    act_min: i32,
    act_max: i32,
) -> Y {
    let v =
        crate::numerics::requantize_i64(acc, multiplier, shift).saturating_add(output_zero_point);
    Y::from_clamped(crate::numerics::clamp(v, act_min, act_max))
}

/// `a · b · c`, `None` on overflow.
fn mul3(a: usize, b: usize, c: usize) -> Option<usize> {
    a.checked_mul(b)?.checked_mul(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_interior_and_edges() {
        // in_len 5, kernel 3, stride 1, dilation 1, pad 1.
        // o = 0: positions -1, 0, 1 -> taps 1..3 valid, first position 0.
        assert_eq!(
            Taps::new(0, 1, 1, 1, 3, 5),
            Taps {
                lo: 1,
                hi: 3,
                first: 0
            }
        );
        // o = 2: positions 1, 2, 3 -> all taps, first 1.
        assert_eq!(
            Taps::new(2, 1, 1, 1, 3, 5),
            Taps {
                lo: 0,
                hi: 3,
                first: 1
            }
        );
        // o = 4: positions 3, 4, 5 -> taps 0..2.
        assert_eq!(
            Taps::new(4, 1, 1, 1, 3, 5),
            Taps {
                lo: 0,
                hi: 2,
                first: 3
            }
        );
    }

    #[test]
    fn taps_dilated_and_strided() {
        // dilation 2, pad 3, stride 2, kernel 4, in_len 4.
        // o = 0: positions -3, -1, 1, 3 -> taps 2..4, first position 1.
        assert_eq!(
            Taps::new(0, 2, 2, 3, 4, 4),
            Taps {
                lo: 2,
                hi: 4,
                first: 1
            }
        );
        // o = 1: positions -1, 1, 3, 5 -> taps 1..3, first 1.
        assert_eq!(
            Taps::new(1, 2, 2, 3, 4, 4),
            Taps {
                lo: 1,
                hi: 3,
                first: 1
            }
        );
    }

    #[test]
    fn taps_window_fully_outside() {
        // Window entirely in the top pad: positions -5, -4 with pad 5.
        let t = Taps::new(0, 1, 1, 5, 2, 3);
        assert_eq!(t.len(), 0);
        // Window entirely past the end: positions 4, 5 for in_len 3.
        let t = Taps::new(4, 1, 1, 0, 2, 3);
        assert_eq!(t.len(), 0);
        // Dilation jumps over the whole input: positions -1, 2 with in_len 1.
        let t = Taps::new(0, 1, 3, 1, 2, 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn axis_checks() {
        assert!(axis_ok(3, 1, 3, 1, 1, 5));
        assert!(!axis_ok(3, 0, 3, 1, 1, 5));
        assert!(!axis_ok(3, 1, 0, 1, 1, 5));
        assert!(!axis_ok(3, 1, 3, 0, 1, 5));
        assert!(!axis_ok(usize::MAX, 2, 3, 1, 1, 5));
        assert!(!axis_ok(3, 1, 3, 1, usize::MAX, 5));
        assert!(act_ok(-128, 127));
        assert!(act_ok(0, 0));
        assert!(!act_ok(-129, 127));
        assert!(!act_ok(-128, 128));
        assert!(!act_ok(5, 4));
    }
}
