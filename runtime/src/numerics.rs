//! The fixed-point numerics contract. See `NUMERICS.md` for the prose version.
//!
//! Every kernel, reference or optimized, requantizes through [`requantize`]. The
//! rounding rule is written once here, so there is exactly one definition of
//! "the right answer".
//!
//! A real multiplier `M > 0` is represented as a Q31 integer `m` and a shift `s`:
//! `M ≈ m · 2^(s − 31)` with `m ∈ [2^30, 2^31)` (or `m = 0` for `M = 0`) and
//! `s ∈ [MIN_SHIFT, MAX_SHIFT]`.

/// Smallest shift allowed: a multiplier of about 2^-32.
pub const MIN_SHIFT: i32 = -31;
/// Largest shift allowed: a multiplier of about 2^30.
pub const MAX_SHIFT: i32 = 30;

/// `round(x · m · 2^(s − 31))`, rounding halves toward +∞, saturated to `i32`.
///
/// The product is taken in 64 bits and rounded once:
/// `(x·m + 2^(30−s)) >> (31 − s)` with an arithmetic shift. One rounding (not
/// TFLite's legacy double rounding) is cheaper on every target and simple to
/// match bit-for-bit with 64-bit SIMD lanes.
///
/// Callers pass `shift` within [`MIN_SHIFT`, `MAX_SHIFT`] (the file validator
/// guarantees it); out-of-range shifts are clamped so the function is total.
#[inline(always)]
pub const fn requantize(x: i32, multiplier: i32, shift: i32) -> i32 {
    let shift = if shift < MIN_SHIFT {
        MIN_SHIFT
    } else if shift > MAX_SHIFT {
        MAX_SHIFT
    } else {
        shift
    };
    let total_shift = (31 - shift) as u32; // 1..=62
    let product = x as i64 * multiplier as i64;
    let rounded = (product + (1i64 << (total_shift - 1))) >> total_shift;
    saturate_i32(rounded)
}

/// [`requantize`] of a 64-bit accumulator (the int16 Conv and
/// FullyConnected kernels): the same single rounding,
/// `(x·m + 2^(30−s)) >> (31 − s)`, with the product in `i128` so that no
/// `i64` input can overflow it, saturated to `i32`. Equal to [`requantize`]
/// for every `x` that fits `i32`.
#[inline(always)]
pub const fn requantize_i64(x: i64, multiplier: i32, shift: i32) -> i32 {
    // Most accumulators fit `i32`: there the `i64` product of `requantize`
    // gives the same result, without 128-bit arithmetic (a library call on
    // 32-bit cores).
    if x as i32 as i64 == x {
        return requantize(x as i32, multiplier, shift);
    }
    let shift = if shift < MIN_SHIFT {
        MIN_SHIFT
    } else if shift > MAX_SHIFT {
        MAX_SHIFT
    } else {
        shift
    };
    let total_shift = (31 - shift) as u32; // 1..=62
                                           // |x·m| < 2^94, far from the i128 limits.
    let product = x as i128 * multiplier as i128;
    let rounded = (product + (1i128 << (total_shift - 1))) >> total_shift;
    if rounded > i32::MAX as i128 {
        i32::MAX
    } else if rounded < i32::MIN as i128 {
        i32::MIN
    } else {
        rounded as i32
    }
}

/// Requantize an accumulator and apply the output zero point and the fused
/// activation clamp: the last step of every conv/fully-connected/add output.
#[inline(always)]
pub const fn requantize_to_i8(
    acc: i32,
    multiplier: i32,
    shift: i32,
    output_zero_point: i32,
    act_min: i32,
    act_max: i32,
) -> i8 {
    let v = requantize(acc, multiplier, shift).saturating_add(output_zero_point);
    clamp(v, act_min, act_max) as i8
}

/// Clamp `v` into `[lo, hi]` (const-friendly `Ord::clamp`).
#[inline(always)]
pub const fn clamp(v: i32, lo: i32, hi: i32) -> i32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

#[inline(always)]
const fn saturate_i32(v: i64) -> i32 {
    if v > i32::MAX as i64 {
        i32::MAX
    } else if v < i32::MIN as i64 {
        i32::MIN
    } else {
        v as i32
    }
}

/// Divide rounding halves away from zero: the averaging rule for pools.
/// `divisor` must be positive.
#[inline(always)]
pub const fn div_round_half_away(numerator: i32, divisor: i32) -> i32 {
    let half = divisor / 2;
    if numerator >= 0 {
        (numerator + half) / divisor
    } else {
        (numerator - half) / divisor
    }
}

/// Encode a non-negative real multiplier as `(m, s)` for [`requantize`].
///
/// Returns `None` when `real` is negative, not finite, or larger than the
/// format can represent (≥ 2^30). Multipliers below 2^-32 lose precision
/// gracefully down to `m = 0`.
pub fn quantize_multiplier(real: f64) -> Option<(i32, i32)> {
    if !real.is_finite() || real < 0.0 {
        return None;
    }
    if real == 0.0 {
        return Some((0, 0));
    }
    // real = q · 2^e with q ∈ [0.5, 1).
    let (mut q, mut e) = frexp(real);
    let mut m = round_f64(q * (1i64 << 31) as f64) as i64;
    if m == 1i64 << 31 {
        m /= 2;
        e += 1;
    }
    if e > MAX_SHIFT {
        return None;
    }
    if e < MIN_SHIFT {
        // Fold the excess shift into the multiplier (precision drops, never range).
        let excess = MIN_SHIFT - e;
        q = if excess >= 63 {
            0.0
        } else {
            m as f64 / (1i64 << excess) as f64
        };
        m = round_f64(q) as i64;
        e = MIN_SHIFT;
    }
    Some((m as i32, e))
}

/// The real value a `(multiplier, shift)` pair stands for.
pub fn multiplier_to_f64(multiplier: i32, shift: i32) -> f64 {
    multiplier as f64 * pow2(shift - 31)
}

fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `x = q · 2^e`, `q ∈ [0.5, 1)`, for finite positive `x` (no libm in no_std).
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp_field = ((bits >> 52) & 0x7ff) as i32;
    if exp_field == 0 {
        // Subnormal: scale up into the normal range first.
        let (q, e) = frexp(x * pow2(64));
        return (q, e - 64);
    }
    let e = exp_field - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, e)
}

/// Round half away from zero, as `f64::round` does (which is not in core).
fn round_f64(x: f64) -> f64 {
    let t = x as i64 as f64; // truncation toward zero; |x| < 2^63 here
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantize_identity_multiplier() {
        // m = 2^30, s = 1 stands for exactly 1.0.
        for x in [-5, -1, 0, 1, 7, i32::MAX, i32::MIN] {
            assert_eq!(requantize(x, 1 << 30, 1), x);
        }
    }

    #[test]
    fn requantize_rounds_halves_up() {
        // Multiplier 0.5: m = 2^30, s = 0.
        assert_eq!(requantize(3, 1 << 30, 0), 2); // 1.5 → 2
        assert_eq!(requantize(-3, 1 << 30, 0), -1); // -1.5 → -1 (toward +∞)
        assert_eq!(requantize(5, 1 << 30, 0), 3); // 2.5 → 3
        assert_eq!(requantize(-5, 1 << 30, 0), -2); // -2.5 → -2
        assert_eq!(requantize(-4, 1 << 30, 0), -2);
        assert_eq!(requantize(1, 1 << 30, 0), 1); // 0.5 → 1
        assert_eq!(requantize(-1, 1 << 30, 0), 0); // -0.5 → 0
    }

    #[test]
    fn requantize_saturates_at_max_shift() {
        // Multiplier ≈ 2^30 pushes anything but tiny values out of i32.
        assert_eq!(requantize(4, 1 << 30, MAX_SHIFT), i32::MAX);
        assert_eq!(requantize(-4, 1 << 30, MAX_SHIFT), i32::MIN);
        assert_eq!(requantize(1, 1 << 30, MAX_SHIFT), 1 << 29);
        assert_eq!(requantize(i32::MIN, i32::MAX, MAX_SHIFT), i32::MIN);
    }

    #[test]
    fn requantize_min_shift_extremes() {
        // Multiplier (2^31 − 1) · 2^-62 ≈ 2^-31: the largest products round to ±1.
        // (2^31 − 1)² · 2^-62 ≈ 1 − 2^-30 → 1.
        assert_eq!(requantize(i32::MAX, i32::MAX, MIN_SHIFT), 1);
        // −2^31 · (2^31 − 1) · 2^-62 = −1 + 2^-31 → −1.
        assert_eq!(requantize(i32::MIN, i32::MAX, MIN_SHIFT), -1);
        // 2^62 · 2^-62 = 1 exactly.
        assert_eq!(requantize(i32::MIN, i32::MIN, MIN_SHIFT), 1);
        // Small accumulators vanish.
        assert_eq!(requantize(1 << 20, i32::MAX, MIN_SHIFT), 0);
    }

    #[test]
    fn requantize_clamps_out_of_range_shifts() {
        assert_eq!(
            requantize(100, 1 << 30, 99),
            requantize(100, 1 << 30, MAX_SHIFT)
        );
        assert_eq!(
            requantize(100, 1 << 30, -99),
            requantize(100, 1 << 30, MIN_SHIFT)
        );
    }

    #[test]
    fn requantize_to_i8_applies_zero_point_and_clamp() {
        assert_eq!(requantize_to_i8(1000, 1 << 30, 1, 0, -128, 127), 127);
        assert_eq!(requantize_to_i8(-1000, 1 << 30, 1, 0, -128, 127), -128);
        assert_eq!(requantize_to_i8(10, 1 << 30, 1, -5, -128, 127), 5);
        // A fused ReLU is a clamp at the zero point.
        assert_eq!(requantize_to_i8(-10, 1 << 30, 1, -5, -5, 127), -5);
        // Saturating zero-point add near i32::MAX.
        assert_eq!(requantize_to_i8(i32::MAX, 1 << 30, 1, 100, -128, 127), 127);
    }

    #[test]
    fn requantize_i64_beyond_i32() {
        // Multiplier 0.5 on 2^40 + 1: 2^39 + 0.5 → 2^39 + 1, saturated to i32.
        assert_eq!(requantize_i64((1 << 40) + 1, 1 << 30, 0), i32::MAX);
        // 2^40 · 2^-20 (m = 2^30, s = −19) = 2^20 exactly.
        assert_eq!(requantize_i64(1 << 40, 1 << 30, -19), 1 << 20);
        // (−2^40 − 2^19) · 2^-20 = −2^20 − 0.5 → −2^20 (halves toward +∞).
        assert_eq!(
            requantize_i64(-(1 << 40) - (1 << 19), 1 << 30, -19),
            -(1 << 20)
        );
        assert_eq!(requantize_i64(i64::MIN, i32::MAX, MAX_SHIFT), i32::MIN);
        assert_eq!(requantize_i64(i64::MAX, i32::MAX, MAX_SHIFT), i32::MAX);
        // −2^63 · (2^31 − 1) · 2^-62 = −2^32 + 2: below i32, saturated.
        assert_eq!(requantize_i64(i64::MIN, i32::MAX, MIN_SHIFT), i32::MIN);
        // 2^62 · (2^31 − 1) · 2^-62 = 2^31 − 1 exactly.
        assert_eq!(requantize_i64(1 << 62, i32::MAX, MIN_SHIFT), i32::MAX);
    }

    #[test]
    fn pool_average_rounding() {
        assert_eq!(div_round_half_away(5, 2), 3);
        assert_eq!(div_round_half_away(-5, 2), -3);
        assert_eq!(div_round_half_away(4, 3), 1);
        assert_eq!(div_round_half_away(-4, 3), -1);
        assert_eq!(div_round_half_away(0, 7), 0);
    }

    #[test]
    fn quantize_multiplier_round_trips() {
        for real in [
            1.0,
            0.5,
            0.75,
            1e-3,
            2.5e-5,
            1e-9,
            123456.0,
            0.999_999_999_9,
        ] {
            let (m, s) = quantize_multiplier(real).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&m), "{real}: m={m}");
            let back = multiplier_to_f64(m, s);
            assert!(((back - real) / real).abs() < 1e-9, "{real} -> {back}");
        }
        assert_eq!(quantize_multiplier(1.0), Some((1 << 30, 1)));
        assert_eq!(quantize_multiplier(0.0), Some((0, 0)));
        assert_eq!(quantize_multiplier(-1.0), None);
        assert_eq!(quantize_multiplier(f64::NAN), None);
        assert_eq!(quantize_multiplier(f64::INFINITY), None);
        assert_eq!(quantize_multiplier(2f64.powi(31)), None);
    }

    #[test]
    fn quantize_multiplier_tiny_values_fold_into_m() {
        let (m, s) = quantize_multiplier(2f64.powi(-40)).unwrap();
        assert_eq!(s, MIN_SHIFT);
        assert_eq!(m, 1 << 22);
        let (m, s) = quantize_multiplier(1e-300).unwrap();
        assert_eq!((m, s), (0, MIN_SHIFT));
    }

    #[test]
    fn requantize_matches_real_arithmetic() {
        // Against f64 with the same rounding rule, over a grid of values.
        for real in [0.0123, 0.5, 0.9, 1.7, 0.000_37] {
            let (m, s) = quantize_multiplier(real).unwrap();
            let exact = multiplier_to_f64(m, s);
            for x in (-100_000..100_000).step_by(997) {
                let want = (x as f64 * exact + 0.5).floor() as i32;
                assert_eq!(requantize(x, m, s), want, "x={x} real={real}");
            }
        }
    }
}
