//! The int16-activation fully connected kernels (TFLite's 16x8 scheme) on
//! NEON: [`fully_connected_s16_neon`], [`fully_connected_s16_s8_neon`] and
//! [`fully_connected_s8_s16_neon`], and their 16x16 forms (int16 weights),
//! bit for bit the reference kernels of the same names.
//!
//! Each input row is widened once to `i16` `x − zp`. Four weight rows at a
//! time then take 8 inputs a step: `smlal`/`smlal2` of the weights (widened
//! to `i16`) into two `i32` vectors per row. With int8 weights a lane gains
//! at most 2^22 in magnitude a step, so the lanes are added pairwise into
//! `i64` lanes (`sadalp`) every [`I8_STEPS`] steps; with int16 weights a
//! term reaches 2^30, so after every step. The last `K mod 8` terms are
//! summed in scalar `i64`, and the reference's `requantize_to_lane` rounds
//! each row's total. Every sum is exact, so the order does not change the
//! result.

use core::arch::aarch64::*;

use crate::kernels::reference::{self, lanes_ok, requantize_to_lane, Lane};
use crate::kernels::select::LayerS16Fn;
use crate::kernels::FullyConnectedParams;

/// Longest input row the widened copy holds (8 KiB of stack).
const MAX_FEATURES: usize = 4096;
/// Steps of 8 int8-weight terms a lane sums in `i32` before the flush:
/// 256 · 2^22 = 2^30.
const I8_STEPS: usize = 256;
/// Weight rows per block.
const ROWS: usize = 4;

/// `Ok` when the int16 NEON fully connected kernels run `p` themselves:
/// the input zero point is in `i8` (0 for an int16 input, which the
/// preconditions require) and a row has at most 4096 features.
pub fn fully_connected_s16_neon_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    if p.in_features > MAX_FEATURES {
        return Err("more than 4096 input features");
    }
    Ok(())
}

/// [`reference::fully_connected_s16`] (int16 input and output), bit for
/// bit, on NEON. Same arguments, layout and preconditions; calls the
/// reference kernel instead (which returns early on a failed precondition)
/// when [`fully_connected_s16_neon_takes`] refuses `p` or a precondition
/// fails.
pub fn fully_connected_s16_neon(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s16;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// [`reference::fully_connected_s16_s8`] (an int16 input, an int8 output),
/// bit for bit, on NEON; the same fallback.
pub fn fully_connected_s16_s8_neon(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s16_s8;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// [`reference::fully_connected_s8_s16`] (an int8 input less its zero
/// point, an int16 output), bit for bit, on NEON; the same fallback.
pub fn fully_connected_s8_s16_neon(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s8_s16;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// [`reference::fully_connected_s16_w16`] (int16 weights), bit for bit, on
/// NEON; the same fallback.
pub fn fully_connected_s16_w16_neon(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s16_w16;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// [`reference::fully_connected_s16_s8_w16`], bit for bit, on NEON; the
/// same fallback.
pub fn fully_connected_s16_s8_w16_neon(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s16_s8_w16;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// [`reference::fully_connected_s8_s16_w16`], bit for bit, on NEON; the
/// same fallback.
pub fn fully_connected_s8_s16_w16_neon(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i16],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    let reference = reference::fully_connected_s8_s16_w16;
    rows_or_reference(p, input, weights, quant, output, reference);
}

/// A weight type: loaded 8 at a time as `i16`, and how many steps a lane
/// may sum in `i32`.
trait RowWeights: Copy + Into<i64> {
    const STEPS: usize;

    /// `src[..8]` as `i16` lanes.
    ///
    /// # Safety
    /// `src` is readable for 8 elements.
    unsafe fn load8(src: *const Self) -> int16x8_t;

    /// `src[..8]` and `src[8..16]` as `i16` lanes.
    ///
    /// # Safety
    /// `src` is readable for 16 elements.
    unsafe fn load16(src: *const Self) -> (int16x8_t, int16x8_t);
}

impl RowWeights for i8 {
    const STEPS: usize = I8_STEPS;

    #[inline(always)]
    unsafe fn load8(src: *const i8) -> int16x8_t {
        // SAFETY: forwarded from the caller; NEON is baseline.
        unsafe { vmovl_s8(vld1_s8(src)) }
    }

    #[inline(always)]
    unsafe fn load16(src: *const i8) -> (int16x8_t, int16x8_t) {
        // SAFETY: forwarded from the caller; NEON is baseline.
        unsafe {
            let w = vld1q_s8(src);
            (vmovl_s8(vget_low_s8(w)), vmovl_high_s8(w))
        }
    }
}

impl RowWeights for i16 {
    const STEPS: usize = 1;

    #[inline(always)]
    unsafe fn load8(src: *const i16) -> int16x8_t {
        // SAFETY: forwarded from the caller.
        unsafe { vld1q_s16(src) }
    }

    #[inline(always)]
    unsafe fn load16(src: *const i16) -> (int16x8_t, int16x8_t) {
        // SAFETY: forwarded from the caller.
        unsafe { (vld1q_s16(src), vld1q_s16(src.add(8))) }
    }
}

/// Runs the NEON loop when the kernel takes `p` and the reference's
/// preconditions hold, else `reference`.
fn rows_or_reference<X: Lane + Into<i32>, Y: Lane, W: RowWeights>(
    p: &FullyConnectedParams,
    input: &[X],
    weights: &[W],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    reference: LayerS16Fn<FullyConnectedParams, X, Y, W>,
) {
    let quant = (bias, multiplier, shift);
    let lens_ok =
        p.dense_weights_fit(weights.len()) && p.slices_fit(input.len(), quant, output.len());
    let lanes = lanes_ok::<X, Y>(
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    );
    let ok = fully_connected_s16_neon_takes(p).is_ok() && lens_ok && lanes && !output.is_empty();
    if !ok {
        reference(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    let k = p.in_features;
    let mut wide = [0i16; MAX_FEATURES];
    let wide = wide.get_mut(..k).unwrap_or(&mut []);
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let x_row = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        for (d, &x) in wide.iter_mut().zip(x_row) {
            // Exact: an int16 input has zero point 0, an int8 one an `i8` one.
            *d = (Into::<i32>::into(x) - p.input_zero_point) as i16;
        }
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { row_products(p, wide, weights, quant, out_row) };
    }
}

/// One input row (widened) against every weight row.
#[target_feature(enable = "neon")]
fn row_products<Y: Lane, W: RowWeights>(
    p: &FullyConnectedParams,
    x: &[i16],
    weights: &[W],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    out: &mut [Y],
) {
    let k = x.len();
    let mut n = 0;
    while n < p.out_features {
        let m = (p.out_features - n).min(ROWS);
        let rows = weights.get(n * k..(n + m) * k).unwrap_or(&[]);
        let totals = match m {
            ROWS => dot_rows::<W, ROWS>(x, rows),
            _ => {
                let mut t = [0i64; ROWS];
                for (t, row) in t.iter_mut().zip(rows.chunks_exact(k.max(1))) {
                    *t = dot_rows::<W, 1>(x, row)[0];
                }
                t
            }
        };
        for (i, &total) in totals.iter().enumerate().take(m) {
            let at = n + i;
            let b = i64::from(bias.get(at).copied().unwrap_or(0));
            let mul = multiplier.get(at).copied().unwrap_or(0);
            let sh = shift.get(at).map_or(0, |&v| i32::from(v));
            let acc = b.wrapping_add(total);
            if let Some(y) = out.get_mut(at) {
                *y = requantize_to_lane(acc, mul, sh, p.output_zero_point, p.act_min, p.act_max);
            }
        }
        n += m;
    }
}

/// `Σ_k x[k] · rows[m][k]` in `i64` for the `M` rows of `rows` (each
/// `x.len()` long); entries past `M` are 0.
#[inline]
#[target_feature(enable = "neon")]
fn dot_rows<W: RowWeights, const M: usize>(x: &[i16], rows: &[W]) -> [i64; ROWS] {
    let k = x.len();
    let mut out = [0i64; ROWS];
    if rows.len() < M * k {
        return out;
    }
    let steps = k / 8;
    let mut totals = [vdupq_n_s64(0); M];
    // Blocks of `W::STEPS` steps summed in `i32` lanes, then flushed.
    let mut step = 0;
    while step < steps {
        let end = (step + W::STEPS).min(steps);
        let mut acc = [[vdupq_n_s32(0); 2]; M];
        let mut at = 8 * step;
        // Two steps at a time while a block has them (one 16-lane weight
        // load per row for int8 weights).
        while at + 16 <= 8 * end {
            // SAFETY: `at + 16 <= 8 · steps <= k`: inside `x` and inside
            // each of the `M` rows of `rows` (checked above to hold `M · k`).
            let (x0, x1) = unsafe {
                (
                    vld1q_s16(x.as_ptr().add(at)),
                    vld1q_s16(x.as_ptr().add(at + 8)),
                )
            };
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let (w0, w1) = unsafe { W::load16(rows.as_ptr().add(r * k + at)) };
                a[0] = vmlal_s16(a[0], vget_low_s16(x0), vget_low_s16(w0));
                a[1] = vmlal_high_s16(a[1], x0, w0);
                a[0] = vmlal_s16(a[0], vget_low_s16(x1), vget_low_s16(w1));
                a[1] = vmlal_high_s16(a[1], x1, w1);
            }
            at += 16;
        }
        if at < 8 * end {
            // SAFETY: `at + 8 <= 8 · steps <= k`, as above.
            let xv = unsafe { vld1q_s16(x.as_ptr().add(at)) };
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let w = unsafe { W::load8(rows.as_ptr().add(r * k + at)) };
                a[0] = vmlal_s16(a[0], vget_low_s16(xv), vget_low_s16(w));
                a[1] = vmlal_high_s16(a[1], xv, w);
            }
        }
        for (t, a) in totals.iter_mut().zip(acc) {
            *t = vpadalq_s32(vpadalq_s32(*t, a[0]), a[1]);
        }
        step = end;
    }
    for (r, (o, t)) in out.iter_mut().zip(totals).enumerate() {
        let row = rows.get(r * k..(r + 1) * k).unwrap_or(&[]);
        let tail = x.iter().zip(row).skip(8 * steps);
        let rest = tail.fold(0i64, |s, (&x, &w)| s + i64::from(x) * w.into());
        *o = vaddvq_s64(t).wrapping_add(rest);
    }
    out
}
