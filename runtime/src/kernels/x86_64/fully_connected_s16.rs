//! The int16-activation fully connected kernels (TFLite's 16x8 scheme) on
//! AVX2: [`fully_connected_s16_avx2`], [`fully_connected_s16_s8_avx2`] and
//! [`fully_connected_s8_s16_avx2`], bit for bit the reference kernels.
//!
//! The loop of `fully_connected_s8_avx2`: 8 weight rows against one input
//! row, 16 inputs a chunk shared by the 8 rows, one `vpmaddwd` per row and
//! chunk. A lane gains at most 2^23 in magnitude per chunk (two terms of
//! `|x| ≤ 2^15`, `|w| ≤ 2^7`), so the 8 lanes of a row stay below 2^31 over
//! [`CHUNKS_PER_TOTAL`] chunks; then they are reduced and added into the
//! row's `i64` total, which the reference's `requantize_to_lane` rounds.
//! Every sum is exact, so the order does not change the result.

use core::arch::x86_64::*;

use super::fully_connected::{reduce8, widen, ROWS};
use super::need_avx2;
use crate::kernels::reference::{self, lanes_ok, requantize_to_lane, Lane};
use crate::kernels::select::LayerS16Fn;
use crate::kernels::FullyConnectedParams;

/// Chunks of 16 inputs summed in `i32` lanes before a row's 8 lanes are
/// added up: 8 · 31 · 2^23 < 2^31.
const CHUNKS_PER_TOTAL: usize = 31;

/// [`reference::fully_connected_s16`] (int16 input and output), bit for
/// bit, on AVX2. Same arguments, layout and preconditions; calls the
/// reference kernel instead (which returns early on a failed precondition)
/// when AVX2 is missing or a precondition fails.
pub fn fully_connected_s16_avx2(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    rows_or_reference(
        p,
        input,
        weights,
        quant,
        output,
        reference::fully_connected_s16,
    );
}

/// [`reference::fully_connected_s16_s8`] (an int16 input, an int8 output),
/// bit for bit, on AVX2; the same fallback.
pub fn fully_connected_s16_s8_avx2(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let quant = (bias, multiplier, shift);
    rows_or_reference(
        p,
        input,
        weights,
        quant,
        output,
        reference::fully_connected_s16_s8,
    );
}

/// [`reference::fully_connected_s8_s16`] (an int8 input less its zero
/// point, an int16 output), bit for bit, on AVX2; the same fallback.
pub fn fully_connected_s8_s16_avx2(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    let quant = (bias, multiplier, shift);
    rows_or_reference(
        p,
        input,
        weights,
        quant,
        output,
        reference::fully_connected_s8_s16,
    );
}

/// `Ok` when the int16 AVX2 fully connected kernels run `p` themselves:
/// AVX2 is available and the input zero point is in `i8` (0 for an int16
/// input, which the preconditions require).
pub fn fully_connected_s16_avx2_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    need_avx2()?;
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    Ok(())
}

struct Quant<'a> {
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

/// An input lane loaded 16 at a time as `i16` `x − zp`.
trait InputLane: Lane + Default {
    /// `src[..16]` less `zp`, as 16 `i16` lanes (zeros if `src` is short).
    ///
    /// # Safety
    /// The CPU runs AVX2.
    unsafe fn load16(src: &[Self], zp: __m256i) -> __m256i;
}

impl InputLane for i8 {
    #[target_feature(enable = "avx2")]
    unsafe fn load16(src: &[i8], zp: __m256i) -> __m256i {
        widen(Some(src), zp)
    }
}

impl InputLane for i16 {
    /// The zero point is 0 (the preconditions of an int16 input).
    #[target_feature(enable = "avx2")]
    unsafe fn load16(src: &[i16], _zp: __m256i) -> __m256i {
        match src.get(..16) {
            // SAFETY: 16 `i16` (32 bytes) to load, unaligned.
            Some(s) => unsafe { _mm256_loadu_si256(s.as_ptr().cast()) },
            None => _mm256_setzero_si256(),
        }
    }
}

/// Runs every input row when the kernel takes `p` and the reference's
/// preconditions hold, else `reference` (which returns early on a failed
/// precondition).
fn rows_or_reference<X: InputLane, Y: Lane>(
    p: &FullyConnectedParams,
    input: &[X],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    reference: LayerS16Fn<FullyConnectedParams, X, Y>,
) {
    let ok = fully_connected_s16_avx2_takes(p).is_ok()
        && p.dense_weights_fit(weights.len())
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len())
        && lanes_ok::<X, Y>(
            p.input_zero_point,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
        && !output.is_empty();
    if !ok {
        reference(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    let q = Quant {
        bias,
        multiplier,
        shift,
    };
    let k = p.in_features;
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let x = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        // SAFETY: `fully_connected_s16_avx2_takes` checked that the CPU runs AVX2.
        unsafe { fc_row(p, x, weights, &q, out_row) };
    }
}

/// One input row `x` (`in_features` long) against every weight row.
#[target_feature(enable = "avx2")]
fn fc_row<X: InputLane, Y: Lane>(
    p: &FullyConnectedParams,
    x: &[X],
    weights: &[i8],
    q: &Quant<'_>,
    out: &mut [Y],
) {
    let k = p.in_features;
    let zp = _mm256_set1_epi16(p.input_zero_point as i16);
    let zero = _mm256_setzero_si256();
    let full = k / 16;
    let chunks = k.div_ceil(16);
    // The last partial chunk: its weights are padded with zeros, so the
    // padding of `x` adds nothing.
    let mut x_tail = [X::default(); 16];
    for (d, &v) in x_tail.iter_mut().zip(x.get(16 * full..).unwrap_or(&[])) {
        *d = v;
    }
    let mut n0 = 0;
    while n0 < p.out_features {
        let rows = (p.out_features - n0).min(ROWS);
        // The rows' last partial chunks, zero-padded.
        let mut w_tails = [[0i8; 16]; ROWS];
        for (r, tail) in w_tails.iter_mut().enumerate().take(rows) {
            let at = (n0 + r) * k + 16 * full;
            let rest = weights.get(at..at + k % 16).unwrap_or(&[]);
            tail.iter_mut().zip(rest).for_each(|(d, &v)| *d = v);
        }
        let mut totals = [0i64; ROWS];
        let mut acc = [zero; ROWS];
        for c in 0..chunks {
            let xs = match c < full {
                true => x.get(16 * c..16 * c + 16).unwrap_or(&[]),
                false => &x_tail,
            };
            // SAFETY: this function runs only where AVX2 is (its own
            // `target_feature`).
            let xw = unsafe { X::load16(xs, zp) };
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                let at = (n0 + r) * k + 16 * c;
                let ws = match c < full {
                    true => weights.get(at..at + 16),
                    false => w_tails.get(r).map(|t| &t[..]),
                };
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xw, widen(ws, zero)));
            }
            if (c + 1) % CHUNKS_PER_TOTAL == 0 || c + 1 == chunks {
                let mut sums = [0i32; ROWS];
                // SAFETY: `sums` has room for 8 `i32` (32 bytes), unaligned.
                unsafe { _mm256_storeu_si256(sums.as_mut_ptr().cast(), reduce8(acc)) };
                for (t, &s) in totals.iter_mut().zip(&sums) {
                    // Wrapping only to stay total: 2^32 totals would be needed.
                    *t = t.wrapping_add(i64::from(s));
                }
                acc = [zero; ROWS];
            }
        }
        let dst = out.get_mut(n0..n0 + rows).unwrap_or(&mut []);
        for (r, (y, &t)) in dst.iter_mut().zip(&totals).enumerate() {
            let n = n0 + r;
            let b = q.bias.get(n).copied().unwrap_or(0);
            let m = q.multiplier.get(n).copied().unwrap_or(0);
            let s = q.shift.get(n).map_or(0, |&v| i32::from(v));
            let acc = t.wrapping_add(i64::from(b));
            *y = requantize_to_lane(acc, m, s, p.output_zero_point, p.act_min, p.act_max);
        }
        n0 += rows;
    }
}
