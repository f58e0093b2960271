//! Layer normalization with integer statistics.

use super::act_ok;
use crate::kernels::LayerNormParams;
use crate::numerics::requantize_to_i8;

/// Longest normalized vector: keeps every statistic inside `i64` (see
/// `NUMERICS.md` § LayerNorm).
pub const MAX_LAYER_NORM_LEN: usize = 16384;
/// Largest epsilon statistic ([`LayerNormParams::epsilon`]).
pub const MAX_LAYER_NORM_EPSILON: i64 = 1 << 40;
/// Fraction bits of the normalized value `z` that is requantized.
pub const LAYER_NORM_FRACTION_BITS: u32 = 12;
/// Fraction bits of the square root (computed as `isqrt(T · 2^16)`).
const ROOT_FRACTION_BITS: u32 = 8;

/// `floor(sqrt(v))` of an unsigned `$t`, digit by digit: two result bits
/// per step from the highest power of four not above `v`.
macro_rules! isqrt_digits {
    ($t:ty, $v:expr) => {{
        let v: $t = $v;
        let mut rem = v;
        let mut root: $t = 0;
        let mut bit: $t = 1 << (<$t>::BITS - 2);
        while bit > v {
            bit >>= 2;
        }
        while bit != 0 {
            if rem >= root + bit {
                rem -= root + bit;
                root = (root >> 1) + bit;
            } else {
                root >>= 1;
            }
            bit >>= 2;
        }
        root
    }};
}

/// Per row of `len` values `c_i = x_i − zx`, with `S = Σ c`, `Q = Σ c²`,
/// `T = len·Q − S² + ε` and `r = isqrt(T · 2^16)`:
/// `z_i = round((len·c_i − S) · 2^20 / r)` (halves away from zero; 0 when
/// `r = 0`), a Q12 value of `(x − mean)/sqrt(var + ε)`, and
/// `y_i = requantize_to_i8(z_i · gamma_i + bias_i, m_i, s_i, zy, act_min, act_max)`.
///
/// `gamma`, `bias`, `multiplier` and `shift` have `len` entries (per
/// position in the row). Returns early, leaving `output` unchanged, unless
/// `input` and `output` have `rows · len` elements, `1 <= len <= 16384`,
/// `0 <= epsilon <= 2^40` and the activation range is valid.
pub fn layer_norm_s8(
    p: &LayerNormParams,
    input: &[i8],
    gamma: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    if !act_ok(p.act_min, p.act_max) {
        return;
    }
    let rq = (bias, multiplier, shift);
    layer_norm_rows(p, input, gamma, rq, output, |acc, m, s| {
        requantize_to_i8(acc, m, s, p.output_zero_point, p.act_min, p.act_max)
    });
}

/// [`layer_norm_s8`] where the input or the output is an int16 activation
/// (symmetric, zero point 0): a transformer's residual stream kept at
/// int16 is normalized into int8 (or int16). The same formula; its
/// statistics are exact in `i64` for `|c| <= 32768` too (`len·Q < 2^58`),
/// and the root of `T · 2^16` is taken over `u128` when `T >= 2^46`. On
/// int8 lanes it is [`layer_norm_s8`] bit for bit.
///
/// Also returns early unless an int16 side's zero point is 0 and the
/// activation window lies within `Y`.
#[cfg(feature = "int16-activations")]
pub fn layer_norm_s16<X, Y>(
    p: &LayerNormParams,
    input: &[X],
    gamma: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [Y],
) where
    X: super::Lane + Into<i32>,
    Y: super::Lane,
{
    let lanes = super::lanes_ok::<X, Y>(
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    );
    if !lanes {
        return;
    }
    let rq = (bias, multiplier, shift);
    layer_norm_rows(p, input, gamma, rq, output, |acc, m, s| {
        super::requantize_to_lane(
            i64::from(acc),
            m,
            s,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        )
    });
}

/// The rows of either kernel, after its own checks of the lanes; `write`
/// requantizes `z·gamma + bias` with the position's multiplier and shift.
#[inline(always)]
fn layer_norm_rows<X: Copy + Into<i32>, Y>(
    p: &LayerNormParams,
    input: &[X],
    gamma: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
    write: impl Fn(i32, i32, i32) -> Y,
) {
    let n = p.len;
    let ok = (1..=MAX_LAYER_NORM_LEN).contains(&n)
        && (0..=MAX_LAYER_NORM_EPSILON).contains(&p.epsilon)
        && p.rows.checked_mul(n) == Some(input.len())
        && output.len() == input.len()
        && [gamma.len(), bias.len(), multiplier.len(), shift.len()] == [n; 4];
    if !ok {
        return;
    }
    for (x, y) in input.chunks_exact(n).zip(output.chunks_exact_mut(n)) {
        let (sum, root) = row_statistics(p, x);
        let len = n as i64;
        for (i, (&xi, yi)) in x.iter().zip(y.iter_mut()).enumerate() {
            let c = i64::from(xi.into()) - i64::from(p.input_zero_point);
            let z = normalized(len * c - sum, root);
            let acc = z.wrapping_mul(i32::from(gamma[i])).wrapping_add(bias[i]);
            *yi = write(acc, multiplier[i], i32::from(shift[i]));
        }
    }
}

/// `(S, r)` of one row; see [`layer_norm_s8`].
fn row_statistics<X: Copy + Into<i32>>(p: &LayerNormParams, x: &[X]) -> (i64, u64) {
    let (mut sum, mut squares) = (0i64, 0i64);
    for &v in x {
        let c = i64::from(v.into()) - i64::from(p.input_zero_point);
        sum += c;
        squares += c * c;
    }
    // len·Q − S² = len² · variance >= 0 (Cauchy–Schwarz). For int8 inputs
    // (|c| <= 255) it is below 2^45 for len <= 2^14, so with ε <= 2^40 and
    // 16 more bits it stays below 2^62; int16 inputs (|c| <= 32768 + 128)
    // keep it below 2^59, and their root is taken over `u128`.
    let spread = (x.len() as i64 * squares - sum * sum).max(0) as u64;
    let t = spread + p.epsilon as u64;
    (sum, root_of(t))
}

/// `isqrt(t · 2^16)`: the root at [`ROOT_FRACTION_BITS`] fraction bits.
#[inline(always)]
fn root_of(t: u64) -> u64 {
    #[cfg(feature = "int16-activations")]
    if t >= 1 << (64 - 2 * ROOT_FRACTION_BITS - 2) {
        return isqrt_u128(u128::from(t) << (2 * ROOT_FRACTION_BITS));
    }
    isqrt(t << (2 * ROOT_FRACTION_BITS))
}

/// [`isqrt`] of a `u128` below 2^76 (a root below 2^38 fits `u64`).
#[cfg(feature = "int16-activations")]
fn isqrt_u128(v: u128) -> u64 {
    u64::try_from(isqrt_digits!(u128, v)).unwrap_or(u64::MAX)
}

/// `round(d · 2^20 / root)`, halves away from zero, saturated to `i32`.
fn normalized(d: i64, root: u64) -> i32 {
    if root == 0 {
        return 0;
    }
    let num = d.unsigned_abs() << (LAYER_NORM_FRACTION_BITS + ROOT_FRACTION_BITS);
    let q = (2 * num + root) / (2 * root);
    let q = q.min(i32::MAX as u64) as i32;
    if d < 0 {
        -q
    } else {
        q
    }
}

/// `floor(sqrt(v))`, digit by digit (exact, no floating point).
pub fn isqrt(v: u64) -> u64 {
    isqrt_digits!(u64, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_the_floor_of_the_root() {
        for v in [
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1 << 40,
            (1 << 62) - 1,
            u64::MAX,
        ] {
            let r = isqrt(v);
            assert!(u128::from(r) * u128::from(r) <= u128::from(v));
            assert!(u128::from(r + 1) * u128::from(r + 1) > u128::from(v));
        }
    }

    #[test]
    fn normalizes_a_row_to_unit_variance() {
        // Row [−3, −1, 1, 3] (zx = 0): mean 0, variance 5, z = c / √5.
        let p = LayerNormParams {
            rows: 1,
            len: 4,
            input_zero_point: 2,
            output_zero_point: 0,
            epsilon: 0,
            act_min: -128,
            act_max: 127,
        };
        // gamma 1, bias 0, multiplier 2^-12 · 32 (z·32 in the output).
        let x = [-1i8, 1, 3, 5];
        let mut y = [0i8; 4];
        layer_norm_s8(&p, &x, &[1; 4], &[0; 4], &[1 << 30; 4], &[-6; 4], &mut y);
        // 32 · [−3, −1, 1, 3]/√5 = [−42.9, −14.3, 14.3, 42.9]
        assert_eq!(y, [-43, -14, 14, 43]);
    }

    #[test]
    fn constant_row_gives_the_bias() {
        let p = LayerNormParams {
            rows: 2,
            len: 3,
            input_zero_point: 0,
            output_zero_point: 1,
            epsilon: 0,
            act_min: -128,
            act_max: 127,
        };
        let mut y = [0i8; 6];
        let bias = [4096, -8192, 0];
        layer_norm_s8(
            &p,
            &[7; 6],
            &[9; 3],
            &bias,
            &[1 << 30; 3],
            &[-11; 3],
            &mut y,
        );
        // z = 0: y = bias · 2^-12 + 1.
        assert_eq!(y, [2, -1, 1, 2, -1, 1]);
    }
}
