//! Fully connected (`y = x · Wᵀ + b`): four weight rows at a time against
//! one input row, both read in place. The reduction's tail (`K mod 16`, or
//! `mod 8`) re-reads the last whole vector of the row with the lanes already
//! counted masked off, so nothing is copied and nothing is read past a row.

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::dot::sdot;
use super::requant::{Output, Requant};
use super::{act_ok, filled_prefix, has_dotprod, zero_point_ok, LAST_LANES, NO_DOTPROD};
use crate::kernels::{reference, FullyConnectedParams};
use crate::numerics::requantize_to_i8;

/// Longest input row the NEON kernel widens onto its stack (`i16`).
const MAX_NEON_FEATURES: usize = 4096;

/// Checks shared by both instruction sets.
fn takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    zero_point_ok(p.input_zero_point, "input zero point outside int8")?;
    zero_point_ok(p.output_zero_point, "output zero point outside int8")?;
    if !act_ok(p.act_min, p.act_max) {
        return Err("activation clamp outside int8");
    }
    if p.in_features < 16 {
        return Err("fewer than 16 input features");
    }
    Ok(())
}

/// Whether [`fully_connected_s8_neon`] runs `p` itself.
pub fn fully_connected_neon_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    takes(p)?;
    if p.in_features > MAX_NEON_FEATURES {
        return Err("more than 4096 input features");
    }
    Ok(())
}

/// Whether [`fully_connected_s8_dotprod`] runs `p` itself on this CPU.
pub fn fully_connected_dotprod_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    if !has_dotprod() {
        return Err(NO_DOTPROD);
    }
    takes(p)
}

/// The operands of a call, checked against the parameters.
#[derive(Clone, Copy)]
struct Operands<'a> {
    input: &'a [i8],
    weights: &'a [i8],
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

impl Operands<'_> {
    /// Every slice has the length the reference kernel requires.
    fn match_params(&self, p: &FullyConnectedParams, output: &[i8]) -> bool {
        let quant = (self.bias, self.multiplier, self.shift);
        p.dense_weights_fit(self.weights.len())
            && p.slices_fit(self.input.len(), quant, output.len())
    }
}

/// [`reference::fully_connected_s8`], bit for bit, on NEON (`i16`, `smlal`).
///
/// Same arguments, layout and preconditions; shapes
/// [`fully_connected_neon_takes`] refuses, and wrong slice lengths, go to the
/// reference kernel.
pub fn fully_connected_s8_neon(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let io = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    if fully_connected_neon_takes(p).is_ok() && io.match_params(p, output) && !output.is_empty() {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { fc_neon(p, io, output) };
    } else {
        reference::fully_connected_s8(p, input, weights, bias, multiplier, shift, output);
    }
}

/// [`reference::fully_connected_s8`], bit for bit, with the dot-product
/// extension.
///
/// Same arguments, layout and preconditions. On a CPU without `sdot`, for
/// shapes [`fully_connected_dotprod_takes`] refuses, and on wrong slice
/// lengths, the reference kernel runs.
pub fn fully_connected_s8_dotprod(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let io = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    let ok = io.match_params(p, output) && !output.is_empty();
    if fully_connected_dotprod_takes(p).is_ok() && ok {
        // SAFETY: the CPU has the dot-product extension (checked by
        // `_takes`), and NEON is part of the aarch64 baseline.
        unsafe { fc_dotprod(p, io, output) };
    } else {
        reference::fully_connected_s8(p, input, weights, bias, multiplier, shift, output);
    }
}

/// Four output features' sums (one per lane) to outputs, or fewer at the end.
#[inline]
#[target_feature(enable = "neon")]
fn store4(p: &FullyConnectedParams, io: &Operands, n: usize, sums: int32x4_t, out: &mut [i8]) {
    let (Some(m), Some(s)) = (io.multiplier.get(n..n + 4), io.shift.get(n..n + 4)) else {
        return;
    };
    let (Ok(m), Ok(s)) = (<[i32; 4]>::try_from(m), <[i8; 4]>::try_from(s)) else {
        return;
    };
    let rq = Requant::lanes(m, s);
    let o = Output::new(p.output_zero_point, p.act_min, p.act_max);
    let v = rq.apply(sums);
    let y = vget_lane_u32::<0>(vreinterpret_u32_s8(o.finish8(v, v)));
    if let Some(dst) = out.get_mut(n..n + 4) {
        let dst: &mut [u8] = bytemuck::cast_slice_mut(dst);
        dst.copy_from_slice(&y.to_le_bytes());
    }
}

/// One output feature from its finished accumulator.
fn store1(p: &FullyConnectedParams, io: &Operands, n: usize, acc: i32, out: &mut [i8]) {
    let m = io.multiplier.get(n).copied().unwrap_or(0);
    let s = io.shift.get(n).copied().unwrap_or(0);
    if let Some(y) = out.get_mut(n) {
        *y = requantize_to_i8(acc, m, s.into(), p.output_zero_point, p.act_min, p.act_max);
    }
}

/// `[Σ a[0], Σ a[1], Σ a[2], Σ a[3]]`.
#[inline]
#[target_feature(enable = "neon")]
fn sum_lanes(a: [int32x4_t; 4]) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]))
}

/// # Safety
/// The CPU has the dot-product extension; `fully_connected_dotprod_takes(p)`
/// holds and the operands match `p`.
#[target_feature(enable = "neon")]
unsafe fn fc_dotprod(p: &FullyConnectedParams, io: Operands, output: &mut [i8]) {
    let k = p.in_features;
    let zp = vdupq_n_s32(p.input_zero_point);
    for (x, out) in io
        .input
        .chunks_exact(k)
        .zip(output.chunks_exact_mut(p.out_features))
    {
        let mut n = 0;
        while n + 4 <= p.out_features {
            let w = io.weights.get(n * k..(n + 4) * k).unwrap_or(&[]);
            // SAFETY: `x` is one row of `k >= 16` bytes and `w` four rows;
            // the CPU has `sdot` (forwarded).
            let (acc, wsum) = unsafe { dot_rows::<4>(x, w, k) };
            let bias = io.bias.get(n..n + 4).unwrap_or(&[0; 4]);
            // SAFETY: `bias` holds four i32 (`get` or the literal).
            let b = unsafe { vld1q_s32(bias.as_ptr()) };
            // acc = bias + Σ x·w − zp·Σ w, all wrapping.
            let sums = vaddq_s32(vmlsq_s32(b, zp, sum_lanes(wsum)), sum_lanes(acc));
            store4(p, &io, n, sums, out);
            n += 4;
        }
        while n < p.out_features {
            let w = io.weights.get(n * k..(n + 1) * k).unwrap_or(&[]);
            // SAFETY: as above, for one row.
            let (acc, wsum) = unsafe { dot_rows::<1>(x, w, k) };
            let b = io.bias.get(n).copied().unwrap_or(0);
            let sum = vaddvq_s32(acc[0])
                .wrapping_sub(p.input_zero_point.wrapping_mul(vaddvq_s32(wsum[0])));
            store1(p, &io, n, b.wrapping_add(sum), out);
            n += 1;
        }
    }
}

/// Per row `m` of `w` (`M` rows of `k`): lane sums of `Σ x·w` and of `Σ w`.
///
/// # Safety
/// `x.len() == k >= 16`, `w.len() == M · k` (shorter slices read nothing),
/// and the CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_rows<const M: usize>(
    x: &[i8],
    w: &[i8],
    k: usize,
) -> ([int32x4_t; M], [int32x4_t; M]) {
    let mut acc = [vdupq_n_s32(0); M];
    let mut wsum = [vdupq_n_s32(0); M];
    if x.len() != k || w.len() != M * k || k < 16 {
        return (acc, wsum);
    }
    let ones = vdupq_n_s8(1);
    let (xp, wp) = (x.as_ptr(), w.as_ptr());
    let mut at = 0;
    // Two vectors per step: the loop's own instructions count too.
    while at + 32 <= k {
        // SAFETY: `at + 32 <= k`: inside `x` and inside each row of `w`.
        unsafe {
            let (x0, x1) = (vld1q_s8(xp.add(at)), vld1q_s8(xp.add(at + 16)));
            for m in 0..M {
                let row = wp.add(m * k + at);
                let (w0, w1) = (vld1q_s8(row), vld1q_s8(row.add(16)));
                acc[m] = sdot(sdot(acc[m], x0, w0), x1, w1);
                wsum[m] = sdot(sdot(wsum[m], w0, ones), w1, ones);
            }
        }
        at += 32;
    }
    if at + 16 <= k {
        // SAFETY: `at + 16 <= k`: inside `x` and inside each row of `w`.
        unsafe {
            let xv = vld1q_s8(xp.add(at));
            for m in 0..M {
                let wv = vld1q_s8(wp.add(m * k + at));
                acc[m] = sdot(acc[m], xv, wv);
                wsum[m] = sdot(wsum[m], wv, ones);
            }
        }
        at += 16;
    }
    let t = k - at;
    if t > 0 {
        // The last 16 bytes of each row, lanes before the tail masked off.
        // SAFETY: `k >= 16`, so `k − 16..k` is inside `x` and each row;
        // `t..t + 16` is inside `LAST_LANES` (t < 16).
        unsafe {
            let mask = vreinterpretq_s8_u8(vld1q_u8(LAST_LANES.as_ptr().add(t)));
            let xv = vandq_s8(vld1q_s8(xp.add(k - 16)), mask);
            let ov = vandq_s8(ones, mask);
            for m in 0..M {
                let wv = vld1q_s8(wp.add(m * k + k - 16));
                acc[m] = sdot(acc[m], xv, wv);
                wsum[m] = sdot(wsum[m], wv, ov);
            }
        }
    }
    (acc, wsum)
}

#[target_feature(enable = "neon")]
fn fc_neon(p: &FullyConnectedParams, io: Operands, output: &mut [i8]) {
    let k = p.in_features;
    let mut staged = MaybeUninit::uninit();
    let xw = filled_prefix::<i16, MAX_NEON_FEATURES>(&mut staged, k, 0);
    for (x, out) in io
        .input
        .chunks_exact(k)
        .zip(output.chunks_exact_mut(p.out_features))
    {
        widen(x, p.input_zero_point as i8, xw);
        let mut n = 0;
        while n + 4 <= p.out_features {
            let w = io.weights.get(n * k..(n + 4) * k).unwrap_or(&[]);
            let acc = mac_rows::<4>(xw, w, k);
            let bias = io.bias.get(n..n + 4).unwrap_or(&[0; 4]);
            // SAFETY: `bias` holds four i32.
            let b = unsafe { vld1q_s32(bias.as_ptr()) };
            store4(p, &io, n, vaddq_s32(b, sum_lanes(acc)), out);
            n += 4;
        }
        while n < p.out_features {
            let w = io.weights.get(n * k..(n + 1) * k).unwrap_or(&[]);
            let acc = mac_rows::<1>(xw, w, k);
            let b = io.bias.get(n).copied().unwrap_or(0);
            store1(p, &io, n, b.wrapping_add(vaddvq_s32(acc[0])), out);
            n += 1;
        }
    }
}

/// `xw[i] = x[i] − zp` in `i16`.
#[inline]
#[target_feature(enable = "neon")]
fn widen(x: &[i8], zp: i8, xw: &mut [i16]) {
    let z = vdupq_n_s8(zp);
    let mut chunks = x.chunks_exact(16).zip(xw.chunks_exact_mut(16));
    for (x, xw) in chunks.by_ref() {
        // SAFETY: `x` is 16 readable bytes, `xw` 16 writable i16.
        unsafe {
            let v = vld1q_s8(x.as_ptr());
            vst1q_s16(xw.as_mut_ptr(), vsubl_s8(vget_low_s8(v), vget_low_s8(z)));
            vst1q_s16(xw.as_mut_ptr().add(8), vsubl_high_s8(v, z));
        }
    }
    let done = x.len() / 16 * 16;
    let rest = x.iter().zip(xw.iter_mut()).skip(done);
    for (&x, xw) in rest {
        *xw = i16::from(x) - i16::from(zp);
    }
}

/// Per row `m` of `w` (`M` rows of `k`): lane sums of `Σ xw·w`.
#[inline]
#[target_feature(enable = "neon")]
fn mac_rows<const M: usize>(xw: &[i16], w: &[i8], k: usize) -> [int32x4_t; M] {
    let mut acc = [vdupq_n_s32(0); M];
    if xw.len() != k || w.len() != M * k || k < 16 {
        return acc;
    }
    let (xp, wp) = (xw.as_ptr(), w.as_ptr());
    let mut at = 0;
    while at + 16 <= k {
        // SAFETY: `at + 16 <= k`: inside `xw` and inside each row of `w`.
        unsafe {
            let (x0, x1) = (vld1q_s16(xp.add(at)), vld1q_s16(xp.add(at + 8)));
            for (m, acc) in acc.iter_mut().enumerate() {
                let wv = vld1q_s8(wp.add(m * k + at));
                let (w0, w1) = (vmovl_s8(vget_low_s8(wv)), vmovl_high_s8(wv));
                *acc = vmlal_s16(*acc, vget_low_s16(x0), vget_low_s16(w0));
                *acc = vmlal_high_s16(*acc, x0, w0);
                *acc = vmlal_s16(*acc, vget_low_s16(x1), vget_low_s16(w1));
                *acc = vmlal_high_s16(*acc, x1, w1);
            }
        }
        at += 16;
    }
    if at + 8 <= k {
        // SAFETY: `at + 8 <= k`: inside `xw` and inside each row of `w`.
        unsafe {
            let xv = vld1q_s16(xp.add(at));
            for (m, acc) in acc.iter_mut().enumerate() {
                let wv = vmovl_s8(vld1_s8(wp.add(m * k + at)));
                *acc = vmlal_s16(*acc, vget_low_s16(xv), vget_low_s16(wv));
                *acc = vmlal_high_s16(*acc, xv, wv);
            }
        }
        at += 8;
    }
    let t = k - at;
    if t > 0 {
        // The last 8 of each row, lanes before the tail masked off.
        // SAFETY: `k >= 16`: `k − 8..k` is inside `xw` and each row;
        // `8 + t..16 + t` is inside `LAST_LANES` (t < 8).
        unsafe {
            let mask = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(LAST_LANES.as_ptr().add(8 + t))));
            let mask = vorrq_s16(mask, vshlq_n_s16::<8>(mask));
            let xv = vandq_s16(vld1q_s16(xp.add(k - 8)), mask);
            for (m, acc) in acc.iter_mut().enumerate() {
                let wv = vmovl_s8(vld1_s8(wp.add(m * k + k - 8)));
                *acc = vmlal_s16(*acc, vget_low_s16(xv), vget_low_s16(wv));
                *acc = vmlal_high_s16(*acc, xv, wv);
            }
        }
    }
    acc
}
