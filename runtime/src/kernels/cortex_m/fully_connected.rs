//! Fully connected: input rows widened into `i16` columns, then each weight
//! row against up to four input rows per pass.

use super::conv::block_width;
use super::dsp::splat16;
use super::{act_ok, run_block, widen_into, zeroed_prefix, zp_byte, Epilogue};
use super::{COL_WORDS, MAX_GROUPS_X1, MAX_GROUPS_X2, MAX_GROUPS_X4, SCRATCH_WORDS};
use crate::kernels::{reference, FullyConnectedParams};
use core::mem::MaybeUninit;

/// [`reference::fully_connected_s8`], bit for bit, on the DSP extension.
///
/// Same arguments, layout and preconditions. Input rows are widened to
/// `x − zp` in `i16` once (up to four at a time, as `in_features` allows),
/// then every weight row runs over them, 4 inputs per `SXTB16` pair and 2
/// per `SMLAD`.
///
/// Falls back to the reference kernel (which returns early on a failed
/// precondition) unless the preconditions hold, the input zero point is in
/// `i8`, and `in_features` is in `1..=`[`MAX_REDUCTION`](super::MAX_REDUCTION).
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
    let groups4 = k.div_ceil(4);
    let lens_ok = p.rows.checked_mul(k) == Some(input.len())
        && p.out_features.checked_mul(k) == Some(weights.len())
        && p.rows.checked_mul(p.out_features) == Some(output.len())
        && bias.len() == p.out_features
        && multiplier.len() == p.out_features
        && shift.len() == p.out_features;
    let zp = zp_byte(p.input_zero_point);
    let usable = lens_ok
        && act_ok(p.act_min, p.act_max)
        && !output.is_empty()
        && k != 0
        && groups4 <= MAX_GROUPS_X1;
    let Some(zp) = zp.filter(|_| usable) else {
        reference::fully_connected_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    };
    let offset = splat16(-p.input_zero_point);
    let n_out = p.out_features;
    let widest = if groups4 <= MAX_GROUPS_X4 {
        4
    } else if groups4 <= MAX_GROUPS_X2 {
        2
    } else {
        1
    };
    let mut ep = Epilogue {
        zp: p.output_zero_point,
        act_min: p.act_min,
        act_max: p.act_max,
        oc_stride: 1,
        col_stride: n_out,
        valid: 4,
    };
    let mut col_buf = MaybeUninit::<[u32; COL_WORDS]>::uninit();
    let col = zeroed_prefix(&mut col_buf, widest * 2 * groups4);
    let mut scratch_buf = MaybeUninit::<[u32; SCRATCH_WORDS]>::uninit();
    let scratch = zeroed_prefix(&mut scratch_buf, 4 * n_out);
    let q = (bias, multiplier, shift);

    let mut r = 0;
    while r < p.rows {
        let nc = block_width(p.rows - r, widest);
        ep.valid = (p.rows - r).min(nc);
        for slot in 0..ep.valid {
            let x = input.get((r + slot) * k..(r + slot + 1) * k).unwrap_or(&[]);
            widen_into(x, zp, offset, col, slot, nc, groups4);
        }
        let base = r * n_out;
        match nc {
            4 => run_block::<4>(col, weights, k, groups4, q, &ep, output, base, scratch),
            2 => run_block::<2>(col, weights, k, groups4, q, &ep, output, base, scratch),
            _ => run_block::<1>(col, weights, k, groups4, q, &ep, output, base, scratch),
        }
        r += ep.valid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        (1usize..=9, 1..=max_k, 1usize..=12)
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

        // Reductions past the four-row limit, up to and past the kernel's
        // own limit (then the reference runs).
        #[test]
        fn bit_exact_long_reductions(c in case(530)) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }
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
