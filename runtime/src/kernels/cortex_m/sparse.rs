//! Conv over sparse weights on the Cortex-M: the reference walk over the
//! non-zero taps ([`conv_sparse_s8`](crate::kernels::conv_sparse_s8)),
//! with the DSP kernels' requantization ([`Requant`]: the high word of the
//! product and one shift where the shift allows it, `requantize` itself
//! elsewhere), which took a third of the sparse kernel's instructions on a
//! Cortex-M4 as `requantize_to_i8`. Bit-exact with the reference: the sums
//! are its sums, and [`Requant`] gives `requantize_to_i8`'s bytes.
//!
//! The op runs these instead of decoding the weights for the dense kernel
//! when few enough weights are non-zero
//! ([`conv_sparse_is_direct`](crate::kernels::select::conv_sparse_is_direct)).

use super::{dsp, Requant};
use crate::kernels::reference::{
    conv_sparse_with, OutputRequant, ReferenceParts, SparseConvParts, Tap, QUAD,
};
use crate::kernels::ConvParams;
use crate::sparse::SparseRows;
#[cfg(feature = "pow2-weights")]
use crate::sparse::{SparsePow2Rows, SparsePow2x3Rows};

impl OutputRequant for Requant {
    #[inline(always)]
    fn of(multiplier: i32, shift: i32) -> Self {
        Requant::new(multiplier, shift)
    }

    #[inline(always)]
    fn apply(self, acc: i32, zp: i32, lo: i32, hi: i32) -> i8 {
        Requant::apply(self, acc, zp, lo, hi)
    }
}

/// The DSP parts: [`Requant`], and on stride 1 the interior outputs four at
/// a time by [`dsp::gather_1x4`] (one word load and two `SXTB16`s per tap
/// for the four).
pub(crate) struct DspParts;

impl SparseConvParts for DspParts {
    type Requant = Requant;

    unsafe fn interior_quads(
        in_group: &[i8],
        base: usize,
        stride: usize,
        taps: &[Tap],
        zp_sum: i32,
        acc: &mut [i32],
    ) {
        if stride != 1 {
            // SAFETY: the caller's guarantee, which is the same.
            unsafe { ReferenceParts::interior_quads(in_group, base, stride, taps, zp_sum, acc) };
            return;
        }
        for (q, block) in acc.chunks_exact_mut(QUAD).enumerate() {
            // SAFETY: output `q·4 + 3` is interior, so `base + q·4 + 3 +
            // offset < in_group.len()` for every tap (the caller's
            // guarantee): the four bytes from `base + q·4 + offset` are
            // inside; the weights are `i8` values.
            let sums = unsafe { dsp::gather_1x4(in_group, base + q * QUAD, taps, [0; QUAD]) };
            for (a, s) in block.iter_mut().zip(sums) {
                *a = a.wrapping_add(s).wrapping_sub(zp_sum);
            }
        }
    }
}

/// [`conv_sparse_s8`](crate::kernels::conv_sparse_s8) with the DSP
/// requantization and multiply-accumulates.
pub fn conv_sparse_s8_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &SparseRows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, DspParts>(p, input, weights, bias, multiplier, shift, output)
}

/// [`conv_sparse_pow2_s8`](crate::kernels::conv_sparse_pow2_s8) with the
/// DSP parts.
#[cfg(feature = "pow2-weights")]
pub fn conv_sparse_pow2_s8_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &SparsePow2Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, DspParts>(p, input, weights, bias, multiplier, shift, output)
}

/// [`conv_sparse_pow2x3_s8`](crate::kernels::conv_sparse_pow2x3_s8) with
/// the DSP parts.
#[cfg(feature = "pow2-weights")]
pub fn conv_sparse_pow2x3_s8_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &SparsePow2x3Rows<'_>,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    conv_sparse_with::<_, DspParts>(p, input, weights, bias, multiplier, shift, output)
}
