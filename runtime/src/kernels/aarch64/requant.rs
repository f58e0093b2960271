//! `numerics::requantize_to_i8` on four `i32` lanes at a time, bit for bit.
//!
//! Two exact forms, chosen per call by the (clamped) shift `s`:
//! - `s ≤ −1` (multipliers below 0.5, nearly every conv): with `e = −s`,
//!   `(x·m + 2^(30+e)) >> (31+e) = (⌊x·m / 2^31⌋ + 2^(e−1)) >> e`, because
//!   the rounding constant is a multiple of 2^31 (flooring in two steps is
//!   flooring once). `sqdmulh` gives `⌊x·m / 2^31⌋` (it saturates only for
//!   `x = m = −2^31`, where `2^31 − 1` and `2^31` round to the same result
//!   for every `e ≥ 1`) and `srshl` by `−e` is `(q + 2^(e−1)) >> e`,
//!   computed by the architecture without intermediate overflow.
//! - otherwise the 64-bit product (`smull`), `srshl` by `s − 31` (the same
//!   add-then-shift), and `sqxtn`, which is `requantize`'s saturation.
//!
//! Adding the output zero point and clamping is done after a saturating
//! narrow to `i16`: for `|zp| ≤ 128` and a clamp inside `i8`, saturating
//! first cannot change the clamped result.

use core::arch::aarch64::*;

use crate::numerics::{MAX_SHIFT, MIN_SHIFT};

/// The requantization of four lanes (one output channel splatted, or four).
#[derive(Clone, Copy)]
pub(super) struct Requant {
    multiplier: int32x4_t,
    /// `s` (fast form) in 32-bit lanes.
    shift: int32x4_t,
    /// `s − 31` in 64-bit lanes, for lanes 0–1 and 2–3 (wide form).
    wide_lo: int64x2_t,
    wide_hi: int64x2_t,
    fast: bool,
}

/// `shift` clamped as `numerics::requantize` clamps it.
fn clamp_shift(shift: i8) -> i32 {
    i32::from(shift).clamp(MIN_SHIFT, MAX_SHIFT)
}

impl Requant {
    /// One output channel's `(multiplier, shift)` in every lane.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn splat(multiplier: i32, shift: i8) -> Requant {
        let s = clamp_shift(shift);
        let wide = vdupq_n_s64(i64::from(s - 31));
        Requant {
            multiplier: vdupq_n_s32(multiplier),
            shift: vdupq_n_s32(s),
            wide_lo: wide,
            wide_hi: wide,
            fast: s <= -1,
        }
    }

    /// Lane `i` requantizes with `(multiplier[i], shift[i])`.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn lanes(multiplier: [i32; 4], shift: [i8; 4]) -> Requant {
        let s = shift.map(clamp_shift);
        let wide = s.map(|s| i64::from(s - 31));
        // SAFETY: each pointer is to a local array of exactly one vector's
        // worth of elements.
        unsafe {
            Requant {
                multiplier: vld1q_s32(multiplier.as_ptr()),
                shift: vld1q_s32(s.as_ptr()),
                wide_lo: vld1q_s64(wide.as_ptr()),
                wide_hi: vld1q_s64(wide[2..].as_ptr()),
                fast: s.iter().all(|&s| s <= -1),
            }
        }
    }

    /// `numerics::requantize(acc, multiplier, shift)` per lane.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn apply(self, acc: int32x4_t) -> int32x4_t {
        if self.fast {
            self.apply_fast(acc)
        } else {
            self.apply_wide(acc)
        }
    }

    /// Whether [`Requant::apply_fast`] is exact (every shift below 0).
    pub(super) fn is_fast(self) -> bool {
        self.fast
    }

    /// [`Requant::apply`] when [`Requant::is_fast`] (for loops that choose
    /// the form once).
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn apply_fast(self, acc: int32x4_t) -> int32x4_t {
        vrshlq_s32(vqdmulhq_s32(acc, self.multiplier), self.shift)
    }

    /// [`Requant::apply`] for any shift.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn apply_wide(self, acc: int32x4_t) -> int32x4_t {
        let lo = vmull_s32(vget_low_s32(acc), vget_low_s32(self.multiplier));
        let hi = vmull_high_s32(acc, self.multiplier);
        let lo = vqmovn_s64(vrshlq_s64(lo, self.wide_lo));
        vqmovn_high_s64(lo, vrshlq_s64(hi, self.wide_hi))
    }
}

/// The output zero point and fused activation clamp, splatted.
#[derive(Clone, Copy)]
pub(super) struct Output {
    zero_point: int16x8_t,
    min: int8x16_t,
    max: int8x16_t,
}

impl Output {
    /// `zero_point` in `[-128, 127]` and `-128 <= min <= max <= 127` (checked
    /// by the callers' `_takes`; out-of-range values are clamped into `i8`).
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn new(zero_point: i32, min: i32, max: i32) -> Output {
        let byte = |v: i32| v.clamp(-128, 127) as i8;
        Output {
            zero_point: vdupq_n_s16(i16::from(byte(zero_point))),
            min: vdupq_n_s8(byte(min)),
            max: vdupq_n_s8(byte(max)),
        }
    }

    /// Sixteen requantized values (`requantize` results) to `i8` outputs.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn finish16(self, v: [int32x4_t; 4]) -> int8x16_t {
        let a = vqmovn_high_s32(vqmovn_s32(v[0]), v[1]);
        let b = vqmovn_high_s32(vqmovn_s32(v[2]), v[3]);
        let a = vqaddq_s16(a, self.zero_point);
        let b = vqaddq_s16(b, self.zero_point);
        let y = vqmovn_high_s16(vqmovn_s16(a), b);
        vminq_s8(vmaxq_s8(y, self.min), self.max)
    }

    /// Eight requantized values to `i8` outputs.
    #[inline]
    #[target_feature(enable = "neon")]
    pub(super) fn finish8(self, lo: int32x4_t, hi: int32x4_t) -> int8x8_t {
        let a = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(lo), hi), self.zero_point);
        let y = vqmovn_s16(a);
        vmin_s8(vmax_s8(y, vget_low_s8(self.min)), vget_low_s8(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::requantize_to_i8;

    #[test]
    fn matches_numerics_on_edges() {
        let accs = [
            i32::MIN,
            i32::MIN + 1,
            -1_000_003,
            -65_536,
            -3,
            -1,
            0,
            1,
            2,
            77_777,
            1 << 30,
            i32::MAX,
        ];
        let mults = [0, 1, 1 << 30, (1 << 30) + 12_345, i32::MAX, i32::MIN, -7];
        for shift in i8::MIN..=i8::MAX {
            for &m in &mults {
                for (zp, lo, hi) in [(0, -128, 127), (-128, -128, 127), (127, -3, 9)] {
                    // SAFETY: NEON is part of the aarch64 baseline.
                    let got = unsafe { run(m, shift, zp, lo, hi, accs) };
                    for (i, &acc) in accs.iter().enumerate() {
                        let want = requantize_to_i8(acc, m, shift.into(), zp, lo, hi);
                        assert_eq!(got[i], want, "acc {acc} m {m} s {shift} zp {zp}");
                    }
                }
            }
        }
    }

    #[target_feature(enable = "neon")]
    fn run(m: i32, s: i8, zp: i32, lo: i32, hi: i32, accs: [i32; 12]) -> [i8; 16] {
        let rq = Requant::splat(m, s);
        let out = Output::new(zp, lo, hi);
        let mut v = [vdupq_n_s32(0); 4];
        for (q, chunk) in v.iter_mut().zip(accs.chunks(4)) {
            let mut lanes = [0i32; 4];
            lanes[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: `lanes` holds four i32.
            *q = rq.apply(unsafe { vld1q_s32(lanes.as_ptr()) });
        }
        let mut y = [0i8; 16];
        // SAFETY: `y` holds sixteen i8.
        unsafe { vst1q_s8(y.as_mut_ptr(), out.finish16(v)) };
        y
    }
}
