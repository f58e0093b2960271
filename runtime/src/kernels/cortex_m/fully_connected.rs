//! Fully connected: each input row widened into an `i16` column in chunks,
//! and four weight rows against the column per pass. Several input rows run
//! one after the other: a path that also shared weight loads across input
//! rows was dropped for its ~0.5 KB of flash, which the ECG firmware's
//! 64 KiB budget cannot spare (its layer has one row).

use super::dsp::{self, splat16};
use super::{act_ok, dot, widen_into, zeroed_prefix, zp_byte, Operands, Requant};
use super::{COL_WORDS, MAX_GROUPS_X1, SCRATCH_WORDS};
use crate::kernels::{reference, FullyConnectedParams};
use core::mem::MaybeUninit;

/// [`reference::fully_connected_s8`], bit for bit, on the DSP extension.
///
/// Same arguments, layout and preconditions, any reduction length. Each
/// input row is widened to `x − zp` in `i16` in chunks of up to
/// [`MAX_REDUCTION`](super::MAX_REDUCTION) inputs, and four weight rows at a
/// time run over each chunk, sharing its loads, 4 inputs per `SXTB16` pair
/// and 2 per `SMLAD`.
///
/// Falls back to the reference kernel (which returns early on a failed
/// precondition) unless the preconditions hold and
/// [`fully_connected_dsp_takes`] accepts `p`.
#[inline(never)]
pub fn fully_connected_s8_dsp(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let k = p.in_features;
    let lens_ok = p.rows.checked_mul(k) == Some(input.len())
        && p.out_features.checked_mul(k) == Some(weights.len())
        && p.rows.checked_mul(p.out_features) == Some(output.len())
        && bias.len() == p.out_features
        && multiplier.len() == p.out_features
        && shift.len() == p.out_features;
    if !lens_ok || output.is_empty() || shape_ok(p).is_err() {
        reference::fully_connected_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    }
    let io = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    by_weight_rows(p, &io, output);
}

/// `Ok` when [`fully_connected_s8_dsp`] computes `p` itself (given operands
/// of the lengths `p` implies); otherwise why not.
pub fn fully_connected_dsp_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    if !dsp::USES_DSP_INSTRUCTIONS {
        return Err(why!("no Arm DSP extension"));
    }
    shape_ok(p)
}

/// The kernel's own limits (the slice lengths are checked per call).
fn shape_ok(p: &FullyConnectedParams) -> Result<(), &'static str> {
    if !act_ok(p.act_min, p.act_max) {
        return Err(why!("invalid activation clamp"));
    }
    if p.in_features == 0 {
        return Err(why!("empty reduction"));
    }
    zp_byte(p.input_zero_point).ok_or("input zero point outside i8")?;
    Ok(())
}

/// One input row at a time (a single row, or a reduction too long for
/// several columns): the row is widened in chunks of up to
/// `4·MAX_GROUPS_X1` inputs, and for each block of output features that
/// the sums buffer holds, every chunk runs four weight rows at a time.
fn by_weight_rows(p: &FullyConnectedParams, io: &Operands<'_>, output: &mut [i8]) {
    let k = p.in_features;
    let Some(zp) = zp_byte(p.input_zero_point) else {
        return;
    };
    let offset = splat16(-p.input_zero_point);
    let chunk = 4 * MAX_GROUPS_X1;
    let chunks = k.div_ceil(chunk);
    let mut col_buf = MaybeUninit::<[u32; COL_WORDS]>::uninit();
    let col = zeroed_prefix(&mut col_buf, 2 * k.div_ceil(4).min(MAX_GROUPS_X1));
    let mut sums_buf = MaybeUninit::<[u32; SCRATCH_WORDS]>::uninit();
    let block = SCRATCH_WORDS / 4 * 4;
    let sums = zeroed_prefix(&mut sums_buf, block.min(p.out_features));
    let Ok(sums) = bytemuck::try_cast_slice_mut::<u32, i32>(sums) else {
        return;
    };
    let rq = RowQuant {
        zp: p.output_zero_point,
        act_min: p.act_min,
        act_max: p.act_max,
    };
    for (x, out_row) in io
        .input
        .chunks_exact(k)
        .zip(output.chunks_exact_mut(p.out_features))
    {
        let mut n0 = 0;
        while n0 < p.out_features {
            let n = block.min(p.out_features - n0);
            let sums = sums.get_mut(..n).unwrap_or(&mut []);
            for (acc, &b) in sums.iter_mut().zip(io.bias.get(n0..).unwrap_or(&[])) {
                *acc = b;
            }
            for c in 0..chunks {
                let (k0, k1) = (c * chunk, ((c + 1) * chunk).min(k));
                let groups = (k1 - k0).div_ceil(4);
                // One chunk and one block: the column is already there.
                if chunks > 1 || n0 == 0 {
                    let xs = x.get(k0..k1).unwrap_or(&[]);
                    widen_into(xs, zp, offset, col, 0, 1, groups);
                }
                let w = io.weights.get(n0 * k + k0..).unwrap_or(&[]);
                accumulate_rows(w, k, (k1 - k0, groups), col, sums);
            }
            let q = (
                io.multiplier.get(n0..).unwrap_or(&[]),
                io.shift.get(n0..).unwrap_or(&[]),
            );
            requantize_row(sums, q, &rq, out_row.get_mut(n0..).unwrap_or(&mut []));
            n0 += n;
        }
    }
}

/// `sums[n] += Σ_{j < len} w[n·k + j] · col[j]` for every `n < sums.len()`,
/// where `w` starts at row 0's first input of the chunk and runs to the
/// end of the tensor; `groups = ceil(len / 4)`. Four rows at a time; the
/// last rows of the tensor, whose whole groups would read past its end,
/// one at a time through a padded copy.
#[inline(never)]
pub(super) fn accumulate_rows(
    w: &[i8],
    k: usize,
    (len, groups): (usize, usize),
    col: &[u32],
    sums: &mut [i32],
) {
    let mut quads = sums.chunks_exact_mut(4);
    let mut row = 0;
    for acc in &mut quads {
        let Ok(acc) = <&mut [i32; 4]>::try_from(acc) else {
            return;
        };
        let w_rows = w.get(row * k..).unwrap_or(&[]);
        if w_rows.len() < 3 * k + 4 * groups {
            // Near the end of the tensor: row by row.
            for (r, a) in acc.iter_mut().enumerate() {
                *a = dot_one(w_rows.get(r * k..).unwrap_or(&[]), col, (len, groups), *a);
            }
        } else {
            *acc = dsp::mac_4x1(w_rows, k, col, groups, *acc);
        }
        row += 4;
    }
    for a in quads.into_remainder() {
        *a = dot_one(w.get(row * k..).unwrap_or(&[]), col, (len, groups), *a);
        row += 1;
    }
}

/// `acc + Σ_{j < len} w[j] · col[j]` (see [`dot`]); out of line, as it
/// runs only for the last few rows.
#[inline(never)]
fn dot_one(w: &[i8], col: &[u32], (len, groups): (usize, usize), acc: i32) -> i32 {
    let [v] = dot::<1>(w, col, len, groups, [acc]);
    v
}

/// The output side of [`requantize_row`].
struct RowQuant {
    zp: i32,
    act_min: i32,
    act_max: i32,
}

/// `out[n] = requantize(sums[n], multiplier[n], shift[n])`, clamped.
#[inline(never)]
fn requantize_row(
    sums: &[i32],
    (multiplier, shift): (&[i32], &[i8]),
    q: &RowQuant,
    out: &mut [i8],
) {
    let per_n = out.iter_mut().zip(sums).zip(multiplier.iter().zip(shift));
    for ((y, &acc), (&m, &s)) in per_n {
        *y = Requant::new(m, i32::from(s)).apply(acc, q.zp, q.act_min, q.act_max);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::xorshift;
    use super::*;
    use core::ops::RangeInclusive;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[derive(Debug, Clone)]
    struct Case {
        p: FullyConnectedParams,
        input: Vec<i8>,
        weights: Vec<i8>,
        bias: Vec<i32>,
        multiplier: Vec<i32>,
        shift: Vec<i8>,
    }

    fn case(max_k: usize) -> impl Strategy<Value = Case> {
        sized_case(1..=9, 1..=max_k, 1..=12)
    }

    /// Rows, reduction length and output features drawn from the ranges.
    fn sized_case(
        rows: RangeInclusive<usize>,
        k: RangeInclusive<usize>,
        n: RangeInclusive<usize>,
    ) -> impl Strategy<Value = Case> {
        (rows, k, n)
            .prop_flat_map(|(rows, k, n)| {
                (
                    Just((rows, k, n)),
                    proptest::collection::vec(any::<i8>(), rows * k),
                    proptest::collection::vec(any::<i8>(), n * k),
                    proptest::collection::vec(any::<i32>(), n),
                    proptest::collection::vec((1i32 << 30)..=i32::MAX, n),
                    proptest::collection::vec(-20i8..=2, n),
                    (-128i32..=127, -128i32..=127, -128i32..=127, -128i32..=127),
                )
            })
            .prop_map(
                |((rows, k, n), input, weights, bias, multiplier, shift, (izp, ozp, a, b))| {
                    let (act_min, act_max) = if a % 2 == 0 {
                        (-128, 127)
                    } else {
                        (a.min(b), a.max(b))
                    };
                    Case {
                        p: FullyConnectedParams {
                            rows,
                            in_features: k,
                            out_features: n,
                            input_zero_point: izp,
                            output_zero_point: ozp,
                            act_min,
                            act_max,
                        },
                        input,
                        weights,
                        bias,
                        multiplier,
                        shift,
                    }
                },
            )
    }

    fn both(c: &Case) -> (Vec<i8>, Vec<i8>) {
        let n = c.p.rows * c.p.out_features;
        let mut want = std::vec![0x55i8; n];
        let mut got = std::vec![0x55i8; n];
        reference::fully_connected_s8(
            &c.p,
            &c.input,
            &c.weights,
            &c.bias,
            &c.multiplier,
            &c.shift,
            &mut want,
        );
        fully_connected_s8_dsp(
            &c.p,
            &c.input,
            &c.weights,
            &c.bias,
            &c.multiplier,
            &c.shift,
            &mut got,
        );
        (want, got)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn bit_exact_with_reference(c in case(140)) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }

        // Reductions past the four- and two-row limits, up to the column
        // buffer's size.
        #[test]
        fn bit_exact_long_reductions(c in case(660)) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        // Reductions of several chunks (640 inputs each), more output
        // features than one block of sums (160), one to three input rows.
        #[test]
        fn bit_exact_chunked_reductions(c in sized_case(1..=3, 1..=2000, 100..=330)) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }
    }

    #[test]
    fn takes_any_reduction_length() {
        let p = FullyConnectedParams {
            rows: 1,
            in_features: 100_000,
            out_features: 3,
            input_zero_point: -128,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        assert_eq!(shape_ok(&p), Ok(()));
        let empty = FullyConnectedParams {
            in_features: 0,
            ..p
        };
        assert_eq!(shape_ok(&empty), Err("empty reduction"));
        let zp = FullyConnectedParams {
            input_zero_point: -129,
            ..p
        };
        assert!(shape_ok(&zp).is_err_and(|e| e.contains("zero point")));
        let act = FullyConnectedParams {
            act_min: 5,
            act_max: 4,
            ..p
        };
        assert!(shape_ok(&act).is_err());
        assert_eq!(
            fully_connected_dsp_takes(&p).is_ok(),
            dsp::USES_DSP_INSTRUCTIONS
        );
    }

    #[test]
    fn five_chunk_reduction_matches_reference() {
        // 3000 inputs (five chunks of 640, the last partial and not a
        // multiple of 4), 170 outputs (two blocks of sums), two rows.
        let (rows, k, n) = (2, 3001, 170);
        let mut next = xorshift(0x1234_5678);
        let c = Case {
            p: FullyConnectedParams {
                rows,
                in_features: k,
                out_features: n,
                input_zero_point: -128,
                output_zero_point: 3,
                act_min: -128,
                act_max: 127,
            },
            input: (0..rows * k).map(|_| next() as i8).collect(),
            weights: (0..n * k).map(|_| next() as i8).collect(),
            bias: (0..n).map(|_| (next() % 10_000) as i32 - 5000).collect(),
            multiplier: (0..n).map(|_| (1 << 30) + (next() >> 2) as i32).collect(),
            shift: (0..n).map(|_| -13 - (next() % 3) as i8).collect(),
        };
        let (want, got) = both(&c);
        assert_eq!(want, got);
        assert!(want.iter().any(|&y| y != want[0]), "{want:?}");
    }

    #[test]
    fn invalid_calls_leave_output_untouched() {
        let p = FullyConnectedParams {
            rows: 1,
            in_features: 3,
            out_features: 2,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        let mut y = [7i8; 2];
        // Weights one short.
        fully_connected_s8_dsp(
            &p,
            &[1, 2, 3],
            &[1; 5],
            &[0; 2],
            &[1 << 30; 2],
            &[1; 2],
            &mut y,
        );
        assert_eq!(y, [7, 7]);
        // The valid call: x·w = 1 + 2 + 3 = 6 for both rows of ones, 3·6 for threes.
        let w = [1, 1, 1, 3, 3, 3];
        fully_connected_s8_dsp(&p, &[1, 2, 3], &w, &[0; 2], &[1 << 30; 2], &[1; 2], &mut y);
        assert_eq!(y, [6, 18]);
    }
}
