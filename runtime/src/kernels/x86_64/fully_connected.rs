//! Fully connected: 8 weight rows against one input row per pass, the
//! reduction in chunks of 16 (`x − zp` widened once per chunk and shared by
//! the 8 rows), the 8 sums reduced into one vector and requantized together.

use core::arch::x86_64::*;

use super::need_avx2;
use super::requant::{pack16, Requant};
use crate::kernels::reference::{self, act_ok};
use crate::kernels::FullyConnectedParams;

/// Weight rows per pass.
pub(super) const ROWS: usize = 8;

/// [`reference::fully_connected_s8`], bit for bit, on AVX2.
///
/// Same arguments, layout and preconditions; any `in_features` (including
/// 0), `out_features` and `rows`. Calls the reference kernel instead when
/// AVX2 is missing, a precondition fails, or [`fully_connected_avx2_takes`]
/// refuses the shape.
pub fn fully_connected_s8_avx2(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let lens_ok = p.dense_weights_fit(weights.len())
        && p.slices_fit(input.len(), (bias, multiplier, shift), output.len());
    if fully_connected_avx2_takes(p).is_err()
        || !lens_ok
        || !act_ok(p.act_min, p.act_max)
        || output.is_empty()
    {
        reference::fully_connected_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    let q = Quant {
        bias,
        multiplier,
        shift,
    };
    for (r, out_row) in output.chunks_exact_mut(p.out_features).enumerate() {
        let k = p.in_features;
        let x = input.get(r * k..(r + 1) * k).unwrap_or(&[]);
        // SAFETY: `fully_connected_avx2_takes` checked that the CPU runs AVX2.
        unsafe { fc_row(p, x, weights, &q, out_row) };
    }
}

/// `Ok` when [`fully_connected_s8_avx2`] runs `p` itself: AVX2 is available
/// and the input zero point is in `i8` (so `x − zp` fits `i16`).
pub fn fully_connected_avx2_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
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

/// One input row `x` (`in_features` long) against every weight row.
#[target_feature(enable = "avx2")]
fn fc_row(p: &FullyConnectedParams, x: &[i8], weights: &[i8], q: &Quant<'_>, out: &mut [i8]) {
    let k = p.in_features;
    let zp = _mm256_set1_epi16(p.input_zero_point as i16);
    // The last partial chunk of x, padded with the zero point (widens to 0).
    let full = k / 16;
    let mut x_tail = [p.input_zero_point as i8; 16];
    for (d, &v) in x_tail.iter_mut().zip(x.get(16 * full..).unwrap_or(&[])) {
        *d = v;
    }
    let lo = _mm_set1_epi8(p.act_min as i8);
    let hi = _mm_set1_epi8(p.act_max as i8);
    let mut n0 = 0;
    while n0 < p.out_features {
        let rows = (p.out_features - n0).min(ROWS);
        let mut acc = [_mm256_setzero_si256(); ROWS];
        for c in 0..full {
            let xw = widen(x.get(16 * c..16 * c + 16), zp);
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                let at = (n0 + r) * k + 16 * c;
                let w = widen(weights.get(at..at + 16), _mm256_setzero_si256());
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xw, w));
            }
        }
        if !k.is_multiple_of(16) {
            let xw = widen(Some(&x_tail), zp);
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                let at = (n0 + r) * k + 16 * full;
                let mut w_tail = [0i8; 16];
                for (d, &v) in w_tail
                    .iter_mut()
                    .zip(weights.get(at..at + k % 16).unwrap_or(&[]))
                {
                    *d = v;
                }
                let w = widen(Some(&w_tail), _mm256_setzero_si256());
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xw, w));
            }
        }
        let sums = reduce8(acc);
        // Unused lanes get a shift that keeps the high-word path open.
        let mut b = [0i32; ROWS];
        let mut m = [0i32; ROWS];
        let mut s = [-31i32; ROWS];
        for r in 0..rows {
            b[r] = q.bias.get(n0 + r).copied().unwrap_or(0);
            m[r] = q.multiplier.get(n0 + r).copied().unwrap_or(0);
            s[r] = q.shift.get(n0 + r).map_or(0, |&v| i32::from(v));
        }
        // SAFETY: `b` holds 8 `i32` (32 bytes), loaded unaligned.
        let b = unsafe { _mm256_loadu_si256(b.as_ptr().cast()) };
        let rq = Requant::lanes(m, s, p.output_zero_point);
        let y = rq.apply(_mm256_add_epi32(sums, b));
        let mut bytes = [0i8; 16];
        // SAFETY: `bytes` has room for 16 bytes.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), pack16(y, y, lo, hi)) };
        if let Some(dst) = out.get_mut(n0..n0 + rows) {
            dst.copy_from_slice(bytes.get(..rows).unwrap_or(&[]));
        }
        n0 += rows;
    }
}

/// 16 bytes widened to `i16`, minus `zp` (zeros if `src` is short).
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn widen(src: Option<&[i8]>, zp: __m256i) -> __m256i {
    match src {
        Some(s) if s.len() >= 16 => {
            // SAFETY: `s` has at least 16 bytes to load.
            let v = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
            _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zp)
        }
        _ => _mm256_setzero_si256(),
    }
}

/// Lane `r` of the result is the sum of the 8 lanes of `acc[r]`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn reduce8(acc: [__m256i; ROWS]) -> __m256i {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let h01 = _mm256_hadd_epi32(a0, a1);
    let h23 = _mm256_hadd_epi32(a2, a3);
    let h45 = _mm256_hadd_epi32(a4, a5);
    let h67 = _mm256_hadd_epi32(a6, a7);
    // Per 128-bit half: [s0 s1 s2 s3] and [s4 s5 s6 s7] partial sums.
    let q0 = _mm256_hadd_epi32(h01, h23);
    let q1 = _mm256_hadd_epi32(h45, h67);
    let lo = _mm256_permute2x128_si256::<0x20>(q0, q1);
    let hi = _mm256_permute2x128_si256::<0x31>(q0, q1);
    _mm256_add_epi32(lo, hi)
}
