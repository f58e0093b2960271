//! `numerics::requantize_to_i8` on eight `i32` lanes at once.
//!
//! AVX2 has no 64-bit arithmetic shift and no 32×32 high multiply, so the
//! 64-bit product of `requantize` is formed with `_mm256_mul_epi32` on the
//! even and odd lanes separately. Two exact evaluations:
//!
//! - **High-word path**, shift `s ∈ [−31, −2]` (multipliers below 0.25, the
//!   usual case). With `e = −s`, the rounding constant `2^(30+e)` is a
//!   multiple of 2^32, so with `v = acc · m`:
//!   `(v + 2^(30+e)) >> (31+e) = ((v >> 32) + 2^(e−2)) >> (e−1)` (floor
//!   division composes). `v >> 32` is the product's high word, `|v| ≤ 2^62`
//!   keeps it and the sum within `±2^30`: plain 32-bit lanes, no saturation.
//! - **64-bit path**, any shift: round, shift (logical, then sign-extended
//!   with `(t ^ k) − k`, `k = 2^(63−n)`) and clamp, all on 64-bit lanes.
//!
//! Both return lanes ready for the `i8` window: the requantized value plus
//! the output zero point, exact wherever it lies in `[−2^15, 2^15)`, and
//! beyond that on the right side of the window (`i8` saturation of the
//! packs then gives the clamp of `requantize_to_i8`).

use core::arch::x86_64::*;

use crate::numerics::{MAX_SHIFT, MIN_SHIFT};

/// Requantization constants for eight lanes (per-lane multipliers and shifts).
#[derive(Clone, Copy)]
pub(super) struct Requant {
    multiplier: __m256i,
    /// High-word path: `2^(e−2)` per lane (unused on the 64-bit path).
    round: __m256i,
    /// High-word path: `e − 1` per lane; 64-bit path: the total shift
    /// `n = 31 − s` per lane.
    shift: __m256i,
    zero_point: __m256i,
    high_word: bool,
}

/// A saturation range wide enough for any `i8` window once the zero point
/// is added: `|requantize − clamp| ≥ 2^15` can never decide a window in `i8`.
const WIDE: i64 = 1 << 15;

impl Requant {
    /// Constants for per-lane `multiplier[i]`, `shift[i]` and one output zero point.
    #[target_feature(enable = "avx2")]
    pub(super) fn lanes(multiplier: [i32; 8], shift: [i32; 8], zero_point: i32) -> Requant {
        let shift = shift.map(|s| s.clamp(MIN_SHIFT, MAX_SHIFT));
        let high_word = shift.iter().all(|&s| s <= -2);
        let (round, shift) = if high_word {
            // e = −s in 2..=31: round 2^(e−2), shift e − 1.
            (shift.map(|s| 1i32 << (-s - 2)), shift.map(|s| -s - 1))
        } else {
            ([0; 8], shift.map(|s| 31 - s))
        };
        Requant {
            multiplier: load8(multiplier),
            round: load8(round),
            shift: load8(shift),
            zero_point: _mm256_set1_epi32(zero_point),
            high_word,
        }
    }

    /// Constants for one multiplier and shift in every lane.
    #[target_feature(enable = "avx2")]
    pub(super) fn splat(multiplier: i32, shift: i32, zero_point: i32) -> Requant {
        // `lanes` with eight equal lanes, without the per-lane arrays (it
        // runs once per output channel of every convolution).
        let s = shift.clamp(MIN_SHIFT, MAX_SHIFT);
        let high_word = s <= -2;
        let (round, shift) = if high_word {
            (1i32 << (-s - 2), -s - 1)
        } else {
            (0, 31 - s)
        };
        Requant {
            multiplier: _mm256_set1_epi32(multiplier),
            round: _mm256_set1_epi32(round),
            shift: _mm256_set1_epi32(shift),
            zero_point: _mm256_set1_epi32(zero_point),
            high_word,
        }
    }

    /// `requantize(acc, m, s) + zp` per lane (see the module doc for the
    /// range in which it is exact).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn apply(&self, acc: __m256i) -> __m256i {
        let r = if self.high_word {
            self.high_word_path(acc)
        } else {
            self.wide_path(acc, WIDE)
        };
        _mm256_add_epi32(r, self.zero_point)
    }

    /// `saturate_i32(requantize(acc, m, s))` per lane, exactly, without the
    /// zero point: the operand rescales of Add.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn apply_i32(&self, acc: __m256i) -> __m256i {
        if self.high_word {
            // |result| ≤ 2^30: nothing to saturate.
            self.high_word_path(acc)
        } else {
            self.wide_path(acc, 1 << 31)
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn high_word_path(&self, acc: __m256i) -> __m256i {
        let m_odd = _mm256_srli_epi64::<32>(self.multiplier);
        let even = _mm256_mul_epi32(acc, self.multiplier);
        let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), m_odd);
        // The high words: even lanes' moved down, odd lanes' already in place.
        let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        _mm256_srav_epi32(_mm256_add_epi32(high, self.round), self.shift)
    }

    /// The 64-bit path, each result clamped to `[−limit, limit − 1]`
    /// (`limit` is 2^15 or 2^31).
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn wide_path(&self, acc: __m256i, limit: i64) -> __m256i {
        wide(acc, self.multiplier, self.shift, limit)
    }
}

/// `saturate_i32(requantize(acc, m, s))` per lane, with per-lane `m` and
/// `s ∈ [MIN_SHIFT, MAX_SHIFT]`, on the 64-bit path (exact for any shift):
/// for row rescales whose shifts change from row to row.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn requantize_lanes_i32(acc: __m256i, m: __m256i, s: __m256i) -> __m256i {
    wide(acc, m, _mm256_sub_epi32(_mm256_set1_epi32(31), s), 1 << 31)
}

/// The 64-bit path with total shifts `n = 31 − s` per lane, each result
/// clamped to `[−limit, limit − 1]`.
#[target_feature(enable = "avx2")]
#[inline]
fn wide(acc: __m256i, multiplier: __m256i, n: __m256i, limit: i64) -> __m256i {
    let hi = _mm256_set1_epi64x(limit - 1);
    let lo = _mm256_set1_epi64x(-limit);
    let m_odd = _mm256_srli_epi64::<32>(multiplier);
    let even = _mm256_mul_epi32(acc, multiplier);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), m_odd);
    // Each 64-bit half's total shift.
    let n_even = _mm256_and_si256(n, _mm256_set1_epi64x(0xffff_ffff));
    let n_odd = _mm256_srli_epi64::<32>(n);
    let even = shift_clamp(even, n_even, lo, hi);
    let odd = shift_clamp(odd, n_odd, lo, hi);
    // Low words of the clamped results: even in place, odd moved up.
    _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
}

/// `clamp((v + 2^(n−1)) >> n, lo, hi)` on 64-bit lanes, `n` in 1..=62.
/// `|v| ≤ 2^62` and the rounding term is at most 2^61, so the sum does not
/// overflow; the arithmetic shift is a logical one sign-extended with
/// `(t ^ k) − k`, `k = 2^(63−n)`.
#[target_feature(enable = "avx2")]
#[inline]
fn shift_clamp(v: __m256i, n: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
    let one = _mm256_set1_epi64x(1);
    let round = _mm256_sllv_epi64(one, _mm256_sub_epi64(n, one));
    let sign = _mm256_sllv_epi64(one, _mm256_sub_epi64(_mm256_set1_epi64x(63), n));
    let t = _mm256_srlv_epi64(_mm256_add_epi64(v, round), n);
    let t = _mm256_sub_epi64(_mm256_xor_si256(t, sign), sign);
    let t = _mm256_blendv_epi8(t, hi, _mm256_cmpgt_epi64(t, hi));
    _mm256_blendv_epi8(t, lo, _mm256_cmpgt_epi64(lo, t))
}

#[target_feature(enable = "avx2")]
#[inline]
fn load8(v: [i32; 8]) -> __m256i {
    _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
}

/// Two vectors of `i32` results (lanes in order) as 16 bytes, saturated to
/// `i8` and clamped to `[lo, hi]` (both splatted `i8`).
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn pack16(a: __m256i, b: __m256i, lo: __m128i, hi: __m128i) -> __m128i {
    // packs works within 128-bit halves: [a0..3 b0..3 | a4..7 b4..7].
    let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
    let bytes = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
    _mm_min_epi8(_mm_max_epi8(bytes, lo), hi)
}
