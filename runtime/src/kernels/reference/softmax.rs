//! Softmax through a 256-entry exponential table.

use crate::kernels::SoftmaxParams;

/// Softmax along the middle axis of `[outer, axis_len, inner]`.
///
/// `exp_table[d] = round(2^24 · exp(−d · input_scale))` for `d` in `0..256`,
/// computed by the converter; negative entries count as 0. For every
/// `(outer, inner)` row: `m = max x`, `e(x) = exp_table[m − x]`,
/// `sum = Σ e` in `u64`, and
/// `y = clamp((e·256 + sum/2) / sum − 128, −128, 127)` (output scale 1/256,
/// zero point −128). A row whose `sum` is 0 (only a corrupt table can do that)
/// outputs −128 rather than dividing by zero.
///
/// Returns early, leaving `output` unchanged, unless `input` and `output`
/// both have `outer · axis_len · inner` elements.
pub fn softmax_s8(p: &SoftmaxParams, exp_table: &[i32; 256], input: &[i8], output: &mut [i8]) {
    if rows_fit(p, input.len(), output.len()) {
        softmax_rows(p, input, output, exp_s8(exp_table), probability_s8);
    }
}

/// Softmax of `i16` activations along the middle axis of `[outer, axis_len,
/// inner]`, to the int8 output of [`softmax_s8`].
///
/// `exp_table[d] = round(2^24 · exp(−d · input_scale))` for `d` in `0..256`
/// and `exp_table[256 + h] = round(2^24 · exp(−256 · h · input_scale))` for
/// `h` in `0..256`, computed by `medq::ops::softmax_exp_table_s16`; negative
/// entries count as 0. For every row: `m = max x`, `d = m − x` (`0..=65535`),
/// `e = (exp_table[d & 255] · exp_table[256 + (d >> 8)] + 2^23) >> 24` in
/// `u64` (`exp(−d·s)` as the product of its low and high byte's factors),
/// then [`softmax_s8`]'s normalization: `sum = Σ e` in `u64`,
/// `y = clamp((e·256 + sum/2) / sum − 128, −128, 127)`, −128 for a row
/// whose `sum` is 0.
///
/// Returns early, leaving `output` unchanged, unless `input` and `output`
/// both have `outer · axis_len · inner` elements.
#[cfg(feature = "int16-activations")]
pub fn softmax_s16_s8(p: &SoftmaxParams, exp_table: &[i32; 512], input: &[i16], output: &mut [i8]) {
    if rows_fit(p, input.len(), output.len()) {
        softmax_rows(p, input, output, exp_s16(exp_table), probability_s8);
    }
}

/// [`softmax_s8`] to an int16 output (scale 1/32768, zero point 0): the
/// same exponentials and sum, then `y = min((e·32768 + sum/2) / sum, 32767)`,
/// 0 for a row whose `sum` is 0. Attention's probabilities: a key's weight
/// of 1/64 is 512 steps here, 4 in int8.
///
/// Returns early, leaving `output` unchanged, unless `input` and `output`
/// both have `outer · axis_len · inner` elements.
#[cfg(feature = "int16-activations")]
pub fn softmax_s8_s16(p: &SoftmaxParams, exp_table: &[i32; 256], input: &[i8], output: &mut [i16]) {
    if rows_fit(p, input.len(), output.len()) {
        softmax_rows(p, input, output, exp_s8(exp_table), probability_s16);
    }
}

/// [`softmax_s16_s8`]'s exponentials to [`softmax_s8_s16`]'s int16 output.
///
/// Returns early, leaving `output` unchanged, unless `input` and `output`
/// both have `outer · axis_len · inner` elements.
#[cfg(feature = "int16-activations")]
pub fn softmax_s16(p: &SoftmaxParams, exp_table: &[i32; 512], input: &[i16], output: &mut [i16]) {
    if rows_fit(p, input.len(), output.len()) {
        softmax_rows(p, input, output, exp_s16(exp_table), probability_s16);
    }
}

/// Whether `p` describes `input_len == output_len` elements, at least one.
fn rows_fit(p: &SoftmaxParams, input_len: usize, output_len: usize) -> bool {
    let n = p
        .outer
        .checked_mul(p.axis_len)
        .and_then(|v| v.checked_mul(p.inner));
    n == Some(input_len) && input_len == output_len && input_len > 0
}

/// The exponential of an int8 distance `m − x`: `T[m − x]`, a negative
/// entry as 0.
#[inline(always)]
fn exp_s8(exp_table: &[i32; 256]) -> impl Fn(i8, i8) -> u64 + '_ {
    // m >= x, so m − x is in 0..=255 and the u8 index cannot be out of bounds.
    move |m: i8, x: i8| exp_table[usize::from((m as u8).wrapping_sub(x as u8))].max(0) as u64
}

/// The exponential of an int16 distance `m − x` from the pair of tables:
/// `(T[d & 255] · T[256 + (d >> 8)] + 2^23) >> 24`.
#[cfg(feature = "int16-activations")]
#[inline(always)]
fn exp_s16(exp_table: &[i32; 512]) -> impl Fn(i16, i16) -> u64 + '_ {
    let (low, high) = exp_table.split_at(256);
    move |m: i16, x: i16| -> u64 {
        // m >= x, so m − x is in 0..=65535: each byte indexes 256 entries.
        let d = (m as u16).wrapping_sub(x as u16);
        let entry = |t: &[i32], i: u16| t.get(usize::from(i)).map_or(0, |&e| e.max(0) as u64);
        // Each factor is below 2^31: the product and the rounding fit u64.
        (entry(low, d & 255) * entry(high, d >> 8) + (1 << 23)) >> 24
    }
}

/// The int8 probability of `e` in a row summing to `sum.d > 0`:
/// `clamp((e·256 + sum/2) / sum − 128, −128, 127)`.
#[inline(always)]
fn probability_s8(e: u64, sum: &Divisor) -> i8 {
    // An entry is below 2^38 even from a corrupt table, so e·256 + sum/2
    // fits u64; e ≤ sum bounds the quotient.
    let q = sum.quotient_below(e * 256 + sum.d / 2, 9);
    (q as i32 - 128).clamp(-128, 127) as i8
}

/// The int16 probability of `e` in a row summing to `sum.d > 0`:
/// `min((e·32768 + sum/2) / sum, 32767)`.
#[cfg(feature = "int16-activations")]
#[inline(always)]
fn probability_s16(e: u64, sum: &Divisor) -> i16 {
    // e < 2^38, so e·2^15 + sum/2 fits u64; e ≤ sum keeps the quotient
    // at most 32768, below 2^16.
    let q = sum.quotient_below(e * 32768 + sum.d / 2, 16);
    q.min(32767) as i16
}

/// The rows of every Softmax kernel: for each `(outer, inner)` row,
/// `m = max x`, `sum = Σ exp(m, x)`, `y = probability(exp(m, x), sum)`, and
/// the lowest output value when `sum` is 0. `input` and `output` hold
/// `outer · axis_len · inner` elements, at least one (the callers check).
#[inline(always)]
fn softmax_rows<X: Copy + Ord + Default, Y: Copy + Bounded>(
    p: &SoftmaxParams,
    input: &[X],
    output: &mut [Y],
    exp: impl Fn(X, X) -> u64,
    probability: impl Fn(u64, &Divisor) -> Y,
) {
    let how = Division::for_rows(p.axis_len);
    // Non-empty, so `inner` and `axis_len` are non-zero.
    let block = p.axis_len * p.inner;
    for (x_block, y_block) in input
        .chunks_exact(block)
        .zip(output.chunks_exact_mut(block))
    {
        for i in 0..p.inner {
            let xs = || {
                x_block
                    .get(i..)
                    .unwrap_or(&[])
                    .iter()
                    .step_by(p.inner)
                    .copied()
            };
            let m = xs().max().unwrap_or_default();
            // Below 2^63: an entry is below 2^31 (2^38 for a corrupt int16
            // table) and a row shorter than 2^32 (2^25 elements for the
            // int16 case's 2^38); wrapping only keeps the kernel total.
            let sum = xs().fold(0u64, |s, x| s.wrapping_add(exp(m, x)));
            let ys = y_block
                .get_mut(i..)
                .unwrap_or(&mut [])
                .iter_mut()
                .step_by(p.inner);
            if sum == 0 {
                ys.for_each(|y| *y = Y::LOWEST);
                continue;
            }
            let sum = Divisor::new(sum, how);
            for (y, x) in ys.zip(xs()) {
                *y = probability(exp(m, x), &sum);
            }
        }
    }
}

/// An output type's lowest value: probability 0.
trait Bounded {
    const LOWEST: Self;
}

impl Bounded for i8 {
    const LOWEST: i8 = -128;
}

impl Bounded for i16 {
    const LOWEST: i16 = 0;
}

/// How a row's probabilities divide by its sum: decided by the target and
/// the row's length, never by the data, and the same quotients every way
/// ([`quotient_below`]'s, for every operand).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Division {
    /// [`quotient_below`]'s fixed compare-and-subtract steps.
    Steps,
    /// Through the sum's reciprocal, where a 64 × 64-bit product is one
    /// instruction (64-bit targets), for rows long enough to pay for it.
    Reciprocal,
    /// A 32-bit hardware division of the operands' leading bits, then one
    /// correction each way (Arm cores with `UDIV`: Cortex-M3/M4/M7/M33).
    Estimate,
}

/// The row length from which a row's divisions go through the reciprocal
/// of its sum on 64-bit targets.
const RECIPROCAL_ROW: usize = 16;

/// The significant bits [`Division::Estimate`] keeps of a sum: a quotient
/// below 2^9 (the int8 output's) times a divisor below 2^22 fits the
/// 32-bit `UDIV`.
const ESTIMATE_DIVISOR_BITS: u32 = 22;

/// The widest quotient [`Division::Estimate`] computes; wider ones (the
/// int16 output's 16 bits) take the steps.
const ESTIMATE_QUOTIENT_BITS: u32 = 9;

impl Division {
    fn for_rows(axis_len: usize) -> Division {
        if cfg!(medq_hwdiv) {
            Division::Estimate
        } else if cfg!(target_pointer_width = "64") && axis_len >= RECIPROCAL_ROW {
            Division::Reciprocal
        } else {
            Division::Steps
        }
    }
}

/// One row's sum `d > 0`, which every probability of the row divides by,
/// with what its [`Division`] computes once per row.
///
/// - Reciprocal: with `r = ⌊(2^64 − 1) / d⌋` (64 fixed steps), `q₀ =
///   ⌊n·r / 2^64⌋` is `⌊n / d⌋` or one less for `n < 2^63`, and one compare
///   of the remainder corrects it.
/// - Estimate: with `k` the shift that leaves `d` 22 significant bits,
///   `q̂ = ⌊(n >> k) / (d >> k)⌋` (a 32-bit division) is `q = ⌊n / d⌋` or
///   `q + 1` whenever `q < d >> k`: `n ≥ q·d ≥ q·(d >> k)·2^k` gives
///   `n >> k ≥ q·(d >> k)`, so `q̂ ≥ q`; and `d/2^k < (d >> k) + 1` gives
///   `q̂ ≤ (n/2^k)/(d >> k) < (q + 1)(1 + 1/(d >> k)) ≤ q + 2`. An estimate
///   below 2^10 implies `q < 2^10 < d >> k` (or `k = 0`, where `q̂ = q`),
///   and one compare, `q̂·d > n`, makes it exact.
///
/// Operands outside either's range (only a corrupt table reaches them)
/// take [`quotient_below`].
struct Divisor {
    d: u64,
    /// `⌊(2^64 − 1) / d⌋`, or 0 when not computed (`d ≥ 2^63`, or
    /// another division).
    r: u64,
    /// The estimate's shift and `d >> shift` (0: not computed).
    shift: u32,
    d_hi: u32,
}

impl Divisor {
    #[inline]
    fn new(d: u64, how: Division) -> Divisor {
        let r = match how == Division::Reciprocal && d < 1 << 63 {
            // Restoring division of 2^64 − 1 (all ones): `rem < d` before
            // each shift, so `2·rem + 1 < 2d ≤ 2^64` never overflows.
            true => (0..64).rev().fold((0u64, 0u64), |(q, rem), bit| {
                let rem = (rem << 1) | 1;
                let take = u64::from(rem >= d);
                (q | take << bit, rem - d * take)
            }),
            false => (0, 0),
        }
        .0;
        let (shift, d_hi) = match how {
            // `q̂·d` cannot overflow for a quotient estimate below 2^10 when
            // d < 2^54; larger sums (only a corrupt table) take the steps.
            Division::Estimate if d >> (63 - ESTIMATE_QUOTIENT_BITS) == 0 => {
                let shift = (64 - d.leading_zeros()).saturating_sub(ESTIMATE_DIVISOR_BITS);
                // Below 2^22 after the shift; 0 only for `d = 0`, never a row's sum.
                (shift, (d >> shift) as u32)
            }
            _ => (0, 0),
        };
        Divisor { d, r, shift, d_hi }
    }

    /// [`quotient_below`]`(n, self.d, bits)`.
    #[inline(always)]
    fn quotient_below(&self, n: u64, bits: u32) -> u64 {
        // Exact, and equal to the fixed steps', when no step of those
        // overflows (`d < 2^(64 − bits)`) and the quotient is below 2^bits.
        if self.r != 0 && n < 1 << 63 && self.d >> (64 - bits) == 0 {
            let q0 = ((u128::from(n) * u128::from(self.r)) >> 64) as u64;
            // q0 ≤ n / d, so q0·d ≤ n; the remainder is below 2d.
            let q = q0 + u64::from(n - q0 * self.d >= self.d);
            if q >> bits == 0 {
                return q;
            }
        }
        if self.d_hi != 0 && bits <= ESTIMATE_QUOTIENT_BITS {
            if let Some(q) = self.estimate(n, bits) {
                return q;
            }
        }
        quotient_below(n, self.d, bits)
    }

    /// `⌊n / d⌋` through [`Division::Estimate`] when it is below `2^bits`
    /// (`bits` ≤ 9; `new` leaves `d_hi` 0 unless `d < 2^54`); `None` otherwise.
    /// (A 16-bit quotient in two such steps, high bits first, measured no
    /// faster on a Cortex-M4 than the 16 fixed steps: the int16 output
    /// keeps those.)
    #[inline(always)]
    fn estimate(&self, n: u64, bits: u32) -> Option<u64> {
        let n_hi = u32::try_from(n >> self.shift).ok()?;
        let q_hat = u64::from(n_hi / self.d_hi);
        // q̂ < 2^(bits + 1) ≤ 2^10 and d < 2^54 (`new`): q̂·d cannot overflow.
        if q_hat >> (bits + 1) != 0 {
            return None;
        }
        // q̂ is q or q + 1 (see `Divisor`): one compare corrects it.
        let q = q_hat - u64::from(q_hat * self.d > n);
        (q >> bits == 0).then_some(q)
    }
}

/// `n / d` (`d > 0`) for a quotient known to be below `2^bits`, by `bits`
/// fixed compare-and-subtract steps. A 64-bit `/` is a library call on 32-bit
/// cores whose length depends on its operands; this takes the same
/// instructions for every input, so an inference's cost does not depend on
/// the data (`benches/qemu`'s `invoke_cost` checks it).
#[inline]
fn quotient_below(mut n: u64, d: u64, bits: u32) -> u64 {
    let mut q = 0;
    for bit in (0..bits).rev() {
        let step = d << bit;
        let take = u64::from(n >= step);
        n -= step * take;
        q |= take << bit;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// exp_table[d] = 2^24 >> d (scale ln 2: each step halves), 0 once it underflows.
    fn halving_table() -> [i32; 256] {
        let mut t = [0i32; 256];
        for (d, e) in t.iter_mut().enumerate().take(25) {
            *e = (1 << 24) >> d;
        }
        t
    }

    fn run(p: SoftmaxParams, t: &[i32; 256], x: &[i8], y: &mut [i8]) {
        softmax_s8(&p, t, x, y);
    }

    /// A xorshift generator: reproducible operands without a dependency.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn fixed_step_quotient_is_the_division() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            // Divisors from 1 to 2^44 (a 256-long row of 2^31 entries and more).
            let d = 1 + (next() >> (20 + next() % 44));
            let n = next() % (d * 512);
            assert_eq!(quotient_below(n, d, 9), n / d, "{n} / {d}");
        }
        for d in [1u64, 2, 3, 255, 256, 257, 1 << 24, (1 << 31) * 256] {
            for n in [0, d - 1, d, 256 * d, 256 * d + d / 2, 512 * d - 1] {
                assert_eq!(quotient_below(n, d, 9), n / d, "{n} / {d}");
            }
        }
    }

    /// A row's [`Division`] gives the fixed steps' quotient for every `n`
    /// and `d`, inside its range and out (where it falls back to them).
    fn gives_the_fixed_step_quotients(how: Division, seed: u64) {
        let mut next = xorshift(seed);
        let check = |n: u64, d: u64| {
            let fast = Divisor::new(d, how);
            for bits in [9, 16] {
                assert_eq!(
                    fast.quotient_below(n, bits),
                    quotient_below(n, d, bits),
                    "{how:?}: {n} / {d}, {bits} bits"
                );
            }
        };
        for _ in 0..300_000 {
            let d = 1 + (next() >> (next() % 64));
            // Mostly quotients in range, some far past it and past 2^63.
            let n = match next() % 4 {
                0 => next() >> (next() % 64),
                // A probability's numerator: e·256 + d/2 with e ≤ d.
                1 => (next() % (d.min(1 << 54) + 1)) * 256 + d / 2,
                _ => next() % d.saturating_mul(1 << (next() % 17)).max(1),
            };
            check(n, d);
        }
        // Quotients next to integers, divisors about each power of two
        // (the estimate's shifts), operands at the u64 edges.
        for bit in 0..64 {
            let base = 1u64 << bit;
            for d in [base - 1, base, base + 1, base | (base >> 1), u64::MAX] {
                let d = d.max(1);
                for q in [
                    0u64, 1, 127, 128, 255, 256, 257, 511, 512, 1023, 1024, 32768,
                ] {
                    let qd = q.wrapping_mul(d);
                    for n in [
                        qd.wrapping_sub(1),
                        qd,
                        qd.wrapping_add(1),
                        qd.wrapping_add(d - 1),
                        u64::MAX >> 1,
                        1 << 63,
                        u64::MAX,
                    ] {
                        check(n, d);
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_reciprocal_gives_the_fixed_step_quotient() {
        gives_the_fixed_step_quotients(Division::Reciprocal, 0x2545_f491_4f6c_dd1d);
    }

    #[test]
    fn a_row_estimate_gives_the_fixed_step_quotient() {
        gives_the_fixed_step_quotients(Division::Estimate, 0x6a09_e667_f3bc_c908);
    }

    /// Rows long enough for the reciprocal give the documented formula.
    #[test]
    fn long_rows_give_the_formula() {
        let table: [i32; 256] =
            core::array::from_fn(|d| (16_777_216.0 * (-0.05 * d as f64).exp()) as i32);
        const N: usize = 3 * 40;
        let x: [i8; N] = core::array::from_fn(|i| ((i * 37 + 11) % 256) as u8 as i8);
        let p = SoftmaxParams {
            outer: 3,
            axis_len: 40,
            inner: 1,
        };
        let mut y8 = [0i8; N];
        softmax_s8(&p, &table, &x, &mut y8);
        #[cfg(feature = "int16-activations")]
        let mut y16 = [0i16; N];
        #[cfg(feature = "int16-activations")]
        softmax_s8_s16(&p, &table, &x, &mut y16);
        for (row, xs) in x.chunks(40).enumerate() {
            let m = *xs.iter().max().unwrap();
            let e = |v: i8| table[(i32::from(m) - i32::from(v)) as usize] as u64;
            let sum: u64 = xs.iter().map(|&v| e(v)).sum();
            for (k, &v) in xs.iter().enumerate() {
                let want = ((e(v) * 256 + sum / 2) / sum) as i32 - 128;
                assert_eq!(i32::from(y8[row * 40 + k]), want.clamp(-128, 127));
                #[cfg(feature = "int16-activations")]
                assert_eq!(
                    i64::from(y16[row * 40 + k]),
                    ((e(v) * 32768 + sum / 2) / sum).min(32767) as i64
                );
            }
        }
    }

    #[test]
    fn halving_table_row() {
        // x = [0, −1, −2]: e = [2^24, 2^23, 2^22], sum = 7·2^22.
        // y + 128 = round(256·[4, 2, 1]/7) = round([146.29, 73.14, 36.57]) = [146, 73, 37]
        // y = [18, −55, −91]
        let p = SoftmaxParams {
            outer: 1,
            axis_len: 3,
            inner: 1,
        };
        let mut y = [0i8; 3];
        run(p, &halving_table(), &[0, -1, -2], &mut y);
        assert_eq!(y, [18, -55, -91]);
        // Shift invariance: the same differences at the top of the range.
        run(p, &halving_table(), &[127, 126, 125], &mut y);
        assert_eq!(y, [18, -55, -91]);
    }

    #[test]
    fn uniform_and_dominant_rows() {
        // 4 equal values: 256/4 = 64 -> y = −64 each.
        let p = SoftmaxParams {
            outer: 1,
            axis_len: 4,
            inner: 1,
        };
        let mut y = [0i8; 4];
        run(p, &halving_table(), &[5, 5, 5, 5], &mut y);
        assert_eq!(y, [-64; 4]);
        // One value 100 steps above the rest (their table entries are 0):
        // q = 256 -> 256 − 128 = 128, clamped to 127; the rest q = 0 -> −128.
        run(p, &halving_table(), &[-100, 0, -100, -100], &mut y);
        assert_eq!(y, [-128, 127, -128, -128]);
    }

    #[test]
    fn strided_axis() {
        // [outer 2, axis 2, inner 2]: rows are (o, i) pairs with stride 2.
        // x = [[0, 0], [−1, 0]] per outer block o=0; [[−2, 3], [0, 3]] for o=1.
        // o0 i0: [0, −1] -> 256·[2, 1]/3 = [170.67, 85.33] -> [171, 85] -> [43, −43]
        // o0 i1: [0, 0] -> [128, 128] -> [0, 0]
        // o1 i0: [−2, 0] -> [1, 4]/5·256 = [51.2, 204.8] -> [51, 205] -> [−77, 77]
        // o1 i1: [3, 3] -> [0, 0]
        let p = SoftmaxParams {
            outer: 2,
            axis_len: 2,
            inner: 2,
        };
        let mut y = [0i8; 8];
        run(p, &halving_table(), &[0, 0, -1, 0, -2, 3, 0, 3], &mut y);
        assert_eq!(y, [43, 0, -43, 0, -77, 0, 77, 0]);
    }

    #[test]
    fn corrupt_tables_never_divide_by_zero() {
        let p = SoftmaxParams {
            outer: 1,
            axis_len: 2,
            inner: 1,
        };
        let mut y = [0i8; 2];
        run(p, &[0; 256], &[1, 2], &mut y);
        assert_eq!(y, [-128, -128]);
        // Negative entries are 0: table[0] = 10, table[1] = −10 (treated as 0):
        // x = [1, 2] -> e = [0, 10] -> [0, 256] -> [−128, 127]
        let mut t = [-5i32; 256];
        t[0] = 10;
        t[1] = -10;
        run(p, &t, &[1, 2], &mut y);
        assert_eq!(y, [-128, 127]);
        // All-negative table: sum 0 -> −128.
        run(p, &[i32::MIN; 256], &[1, 2], &mut y);
        assert_eq!(y, [-128, -128]);
    }

    #[test]
    fn huge_entries_do_not_overflow() {
        // i32::MAX entries on a long axis: sums stay far below u64 overflow.
        // 3 equal values: 256/3 = 85.33 -> 85 -> −43.
        let p = SoftmaxParams {
            outer: 1,
            axis_len: 3,
            inner: 1,
        };
        let mut y = [0i8; 3];
        run(p, &[i32::MAX; 256], &[-128, 0, 127], &mut y);
        assert_eq!(y, [-43; 3]);
    }

    #[test]
    fn length_mismatch_leaves_output_untouched() {
        let p = SoftmaxParams {
            outer: 1,
            axis_len: 3,
            inner: 1,
        };
        let mut y = [7i8; 2];
        run(p, &halving_table(), &[0, 0], &mut y);
        assert_eq!(y, [7, 7]);
        let p = SoftmaxParams {
            outer: usize::MAX,
            axis_len: 2,
            inner: 1,
        };
        run(p, &halving_table(), &[0, 0], &mut y);
        assert_eq!(y, [7, 7]);
    }
}
