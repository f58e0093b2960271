//! Log: the natural logarithm of an int16 activation by an integer `log2`,
//! exact to its last fraction bit at every input scale. A 513-entry
//! interpolated table ([`lut_s16`](super::lut_s16)) cannot follow `log`'s
//! curvature near 0, where a power or a variance spends most of its values.

use crate::kernels::LogParams;
use crate::numerics::requantize_i64;

/// Fraction bits of [`log2_q16`].
pub const LOG2_FRACTION_BITS: u32 = 16;

/// `log2(v)` in Q16 for `v ≥ 1` (0 for `v = 0`): the integer part is the
/// position of the leading one; the fraction is taken one bit at a time by
/// squaring the mantissa `m ∈ [1, 2)` (Q30, truncated after each product):
/// a square of 2 or more is the next bit 1, and halves `m`. Integer
/// arithmetic only, so the same bits on every target; the result is within 2
/// of `65536·log2(v)` (the truncations can only lower it).
pub const fn log2_q16(v: u32) -> i32 {
    if v == 0 {
        return 0;
    }
    let e = 31 - v.leading_zeros();
    const ONE: u64 = 1 << 30;
    let mut m = if e <= 30 {
        (v as u64) << (30 - e)
    } else {
        (v as u64) >> (e - 30)
    };
    let mut frac = 0i32;
    let mut bit = 1i32 << (LOG2_FRACTION_BITS - 1);
    while bit > 0 {
        // m < 2^31, so m² < 2^62.
        m = (m * m) >> 30;
        if m >= 2 * ONE {
            m >>= 1;
            frac |= bit;
        }
        bit >>= 1;
    }
    ((e as i32) << LOG2_FRACTION_BITS) | frac
}

/// `y = requantize_i64(log2_q16(x) + bias, multiplier, shift)` for
/// `x ≥ low_input`, and `low_output` below it (a log of 0, of a negative, or
/// of a value under the floor of a clamped log), saturated to `i16`. Input
/// and output are int16 with zero point 0.
///
/// Returns early, leaving `output` unchanged, unless `output` is as long as
/// `input`.
pub fn log_s16(p: &LogParams, input: &[i16], output: &mut [i16]) {
    if output.len() != input.len() {
        return;
    }
    for (y, &x) in output.iter_mut().zip(input) {
        let v = i32::from(x);
        let r = if v < p.low_input || v <= 0 {
            p.low_output
        } else {
            let acc = i64::from(log2_q16(v as u32)) + i64::from(p.bias);
            requantize_i64(acc, p.multiplier, p.shift)
        };
        *y = r.clamp(-32768, 32767) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_are_exact() {
        for e in 0..31 {
            assert_eq!(log2_q16(1 << e), e << 16);
        }
        assert_eq!(log2_q16(0), 0);
    }

    #[test]
    fn within_two_below_the_true_value() {
        for v in (1u32..70_000).chain([1 << 31, u32::MAX, 3 << 30]) {
            let exact = (v as f64).log2() * 65536.0;
            let got = f64::from(log2_q16(v));
            assert!(
                got <= exact + 1e-6 && exact - got < 2.0,
                "v {v}: {got} against {exact}"
            );
        }
    }

    #[test]
    fn below_the_floor_gives_the_low_output() {
        // ln(x) with x = q / 64 on the input and 1/1024 on the output:
        // y = 1024·ln2·(log2 q − 6) = (log2_q16(q) − 6·2^16)·1024·ln2 / 2^16.
        let m = 1024.0 * std::f64::consts::LN_2 / 65536.0;
        // m = 0.01083 = 0.6931·2^-6: Q31 multiplier and shift −6.
        let p = LogParams {
            bias: -6 << 16,
            multiplier: (m * 64.0 * 2f64.powi(31)).round() as i32,
            shift: -6,
            low_input: 1,
            low_output: -32768,
        };
        let x = [-5i16, 0, 1, 64, 128, 32767];
        let mut y = [0i16; 6];
        log_s16(&p, &x, &mut y);
        let want = |q: f64| ((q / 64.0).ln() * 1024.0).round() as i16;
        assert_eq!(y[..2], [-32768, -32768]);
        for (q, got) in x.iter().zip(y).skip(2) {
            assert!((got - want(f64::from(*q))).abs() <= 1, "{q}: {got}");
        }
        assert_eq!(y[3], 0, "ln 1 is 0 exactly");
        // A floor at 100: everything below it reads low_output.
        let p = LogParams {
            low_input: 100,
            low_output: 7,
            ..p
        };
        log_s16(&p, &x, &mut y);
        assert_eq!(y[..4], [7, 7, 7, 7]);
        assert_eq!(y[4], want(128.0));
    }
}
