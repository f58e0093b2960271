//! Property tests of the int16-activation kernels against naive forms of
//! their documented formulas (explicit loops over output coordinates, `i128`
//! accumulators, bounds tested per tap), written without the kernels'
//! helpers, over random shapes and data with the extremes of every type.
#![cfg(feature = "int16-activations")]

use medq::kernels::*;
use medq::numerics::{requantize, requantize_i64, MAX_SHIFT, MIN_SHIFT};
use proptest::collection::vec;
use proptest::prelude::*;

mod transposed_conv;
use transposed_conv::{scatter_sum, transposed_axis};

// ---------------------------------------------------------------------------
// Strategies

/// An `i16` activation, often at a rail.
fn x16() -> impl Strategy<Value = i16> {
    prop_oneof![4 => any::<i16>(), 1 => Just(i16::MIN), 1 => Just(i16::MAX)]
}

/// A symmetric int8 weight, often ±127.
fn w8() -> impl Strategy<Value = i8> {
    prop_oneof![4 => -127i8..=127, 1 => Just(127i8), 1 => Just(-127i8)]
}

fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![8 => (1i32 << 30)..=i32::MAX, 1 => Just(0), 1 => 1i32..(1 << 30)]
}

/// An int16 activation window.
fn act16() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-32768, 32767)),
        3 => (-32768i32..=32767, -32768i32..=32767).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

/// `round(v · m · 2^(s−31))`, halves up, saturated to `i32`: by floor
/// division in `i128`, not by shifting.
fn naive_requantize(v: i128, m: i32, s: i32) -> i32 {
    let s = s.clamp(MIN_SHIFT, MAX_SHIFT);
    let den = 1i128 << (31 - s);
    let q = (2 * v * m as i128 + den).div_euclid(2 * den);
    q.clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

/// One window axis: `(in, kernel, stride, dilation, pad_begin, out)`, valid
/// in floor mode; `large` allows dilations up to 19 over inputs up to 40.
fn axis(flat: bool, large: bool) -> BoxedStrategy<(usize, usize, usize, usize, usize, usize)> {
    if flat {
        return Just((1, 1, 1, 1, 0, 1)).boxed();
    }
    let (i, d) = if large {
        (1usize..=40, 1usize..=19)
    } else {
        (1usize..=7, 1usize..=2)
    };
    (i, 1usize..=3, 1usize..=3, d, 0usize..=2, 0usize..=2)
        .prop_filter_map("window longer than padded input", |(i, k, s, d, pb, pe)| {
            conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, o))
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// requantize_i64

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Accumulators within `i32` take `requantize` (no 128-bit product):
    /// the same single rounding, against the naive formula.
    #[test]
    fn requantize_i64_on_i32_accumulators_is_the_formula(
        x in prop_oneof![any::<i32>(), -70000i32..70000],
        m in any::<i32>(),
        s in MIN_SHIFT..=MAX_SHIFT,
    ) {
        prop_assert_eq!(requantize_i64(x as i64, m, s), naive_requantize(x as i128, m, s));
        prop_assert_eq!(requantize_i64(x as i64, m, s), requantize(x, m, s));
    }

    /// Shifts beyond the range are clamped alike on both paths.
    #[test]
    fn requantize_i64_clamps_the_shift_on_both_paths(
        x in any::<i64>(),
        m in any::<i32>(),
        s in -80i32..=80,
    ) {
        let clamped = s.clamp(MIN_SHIFT, MAX_SHIFT);
        prop_assert_eq!(requantize_i64(x, m, s), requantize_i64(x, m, clamped));
    }

    #[test]
    fn requantize_i64_rounds_once_and_saturates(
        x in prop_oneof![any::<i64>(), -(1i64 << 45)..(1i64 << 45)],
        m in any::<i32>(),
        s in MIN_SHIFT..=MAX_SHIFT,
    ) {
        prop_assert_eq!(requantize_i64(x, m, s), naive_requantize(x as i128, m, s));
    }
}

// ---------------------------------------------------------------------------
// Conv and FullyConnected

#[derive(Clone, Debug)]
struct Case<P> {
    p: P,
    x: Vec<i16>,
    w: Vec<i8>,
    /// Int16 weights of the same shape, for the 16x16 kernels.
    w16: Vec<i16>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
}

impl<P> Case<P> {
    fn weights(&self) -> Vec<i128> {
        self.w.iter().map(|&v| v.into()).collect()
    }

    fn weights16(&self) -> Vec<i128> {
        self.w16.iter().map(|&v| v.into()).collect()
    }
}

fn with_operands<P: Clone + std::fmt::Debug>(
    p: P,
    n_x: usize,
    n_w: usize,
    channels: usize,
) -> impl Strategy<Value = Case<P>> {
    // A quarter of the cases take inputs and weights all large and of one
    // sign, so that a long reduction leaves the range of i32.
    let xs = prop_oneof![3 => vec(x16(), n_x), 1 => vec(24576i16..=i16::MAX, n_x)];
    let ws = prop_oneof![
        2 => vec(w8(), n_w),
        1 => vec(100i8..=127, n_w),
        1 => vec(-127i8..=-100, n_w),
    ];
    // Int16 weights reach 2^30 per term against a rail input, so two
    // terms already leave `i32`.
    let ws16 = prop_oneof![
        2 => vec(prop_oneof![4 => -32767i16..=32767, 1 => Just(32767i16), 1 => Just(-32767i16)], n_w),
        1 => vec(30000i16..=32767, n_w),
        1 => vec(-32767i16..=-30000, n_w),
    ];
    (
        Just(p),
        xs,
        (ws, ws16),
        vec(any::<i32>(), channels),
        vec(multiplier(), channels),
        vec(
            prop_oneof![6 => -24i8..=-8, 1 => Just(-31i8), 1 => Just(30i8)],
            channels,
        ),
    )
        .prop_map(|(p, x, (w, w16), bias, mult, shift)| Case {
            p,
            x,
            w,
            w16,
            bias,
            mult,
            shift,
        })
}

fn conv_case(large: bool) -> impl Strategy<Value = Case<ConvParams>> {
    let geometry = any::<bool>().prop_flat_map(move |one_d| {
        (
            axis(one_d, large),
            axis(false, large),
            1usize..=3,
            1usize..=3,
            1usize..=3,
            act16(),
        )
    });
    geometry.prop_flat_map(|(h, w, groups, cin_g, cout_g, (act_min, act_max))| {
        let p = ConvParams {
            in_channels: groups * cin_g,
            in_h: h.0,
            in_w: w.0,
            out_channels: groups * cout_g,
            out_h: h.5,
            out_w: w.5,
            kernel_h: h.1,
            kernel_w: w.1,
            stride_h: h.2,
            stride_w: w.2,
            dilation_h: h.3,
            dilation_w: w.3,
            pad_top: h.4,
            pad_left: w.4,
            groups,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min,
            act_max,
        };
        let n_w = p.out_channels * cin_g * p.kernel_h * p.kernel_w;
        with_operands(p, p.in_channels * p.in_h * p.in_w, n_w, p.out_channels)
    })
}

/// A long reduction: one output of a 1x1-kernel Conv over `cin` channels.
fn long_conv_case() -> impl Strategy<Value = Case<ConvParams>> {
    (500usize..=3000, act16()).prop_flat_map(|(cin, (act_min, act_max))| {
        let p = ConvParams {
            in_channels: cin,
            in_h: 1,
            in_w: 1,
            out_channels: 1,
            out_h: 1,
            out_w: 1,
            kernel_h: 1,
            kernel_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            groups: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min,
            act_max,
        };
        with_operands(p, cin, cin, 1)
    })
}

fn conv_naive(c: &Case<ConvParams>) -> Vec<i16> {
    let xs: Vec<i128> = c.x.iter().map(|&v| v as i128).collect();
    let act = (c.p.act_min, c.p.act_max);
    conv_naive_mixed(c, &xs, &c.weights(), 0, act)
        .into_iter()
        .map(|v| v as i16)
        .collect()
}

fn run_conv(c: &Case<ConvParams>) -> Vec<i16> {
    let mut y = vec![0x7A7Ai16; c.p.out_channels * c.p.out_h * c.p.out_w];
    conv_s16(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
    y
}

fn fc_case(long: bool) -> impl Strategy<Value = Case<FullyConnectedParams>> {
    let k = if long { 1000usize..=4000 } else { 0usize..=24 };
    (1usize..=3, k, 1usize..=4, act16()).prop_flat_map(|(rows, k, n, (lo, hi))| {
        let p = FullyConnectedParams {
            rows,
            in_features: k,
            out_features: n,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: lo,
            act_max: hi,
        };
        with_operands(p, rows * k, n * k, n)
    })
}

fn fc_naive(c: &Case<FullyConnectedParams>) -> Vec<i16> {
    let xs: Vec<i128> = c.x.iter().map(|&v| v as i128).collect();
    let act = (c.p.act_min, c.p.act_max);
    fc_naive_mixed(c, &xs, &c.weights(), 0, act)
        .into_iter()
        .map(|v| v as i16)
        .collect()
}

fn run_fc(c: &Case<FullyConnectedParams>) -> Vec<i16> {
    let mut y = vec![0x7A7Ai16; c.p.rows * c.p.out_features];
    fully_connected_s16(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conv_s16_matches_naive(c in conv_case(false)) {
        prop_assert_eq!(run_conv(&c), conv_naive(&c));
    }

    #[test]
    fn conv_s16_large_dilations_match_naive(c in conv_case(true)) {
        prop_assert_eq!(run_conv(&c), conv_naive(&c));
    }

    #[test]
    fn conv_s16_long_reductions_match_naive(c in long_conv_case()) {
        prop_assert_eq!(run_conv(&c), conv_naive(&c));
    }

    #[test]
    fn fully_connected_s16_matches_naive(c in fc_case(false)) {
        prop_assert_eq!(run_fc(&c), fc_naive(&c));
    }

    #[test]
    fn fully_connected_s16_long_reductions_match_naive(c in fc_case(true)) {
        prop_assert_eq!(run_fc(&c), fc_naive(&c));
    }
}

// Mixed pairs: an int8 side (any zero point) reading into int16, or int16
// into an int8 side. The naive forms take the input as `x − zp` and add the
// output zero point after requantizing, as the int8 kernels do; the int16
// pair is the case of zero points 0.

/// The naive conv: an `i128` accumulation over the taps inside the input,
/// with inputs `xs` (already less their zero point), then
/// `requantize + zp_out` clamped to `act`.
fn conv_naive_mixed(
    c: &Case<ConvParams>,
    xs: &[i128],
    ws: &[i128],
    zp_out: i32,
    act: (i32, i32),
) -> Vec<i32> {
    let p = &c.p;
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let mut out = Vec::new();
    for oc in 0..p.out_channels {
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                let mut acc = c.bias[oc] as i128;
                for icg in 0..cin_g {
                    let ic = (oc / cout_g) * cin_g + icg;
                    for ky in 0..p.kernel_h {
                        for kx in 0..p.kernel_w {
                            let iy =
                                (oy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                            let ix =
                                (ox * p.stride_w + kx * p.dilation_w) as i64 - p.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= p.in_h as i64 || ix >= p.in_w as i64 {
                                continue;
                            }
                            let xi = (ic * p.in_h + iy as usize) * p.in_w + ix as usize;
                            let wi = ((oc * cin_g + icg) * p.kernel_h + ky) * p.kernel_w + kx;
                            acc += xs[xi] * ws[wi];
                        }
                    }
                }
                let v =
                    naive_requantize(acc, c.mult[oc], c.shift[oc].into()) as i64 + zp_out as i64;
                out.push(v.clamp(act.0 as i64, act.1 as i64) as i32);
            }
        }
    }
    out
}

fn fc_naive_mixed(
    c: &Case<FullyConnectedParams>,
    xs: &[i128],
    ws: &[i128],
    zp_out: i32,
    act: (i32, i32),
) -> Vec<i32> {
    let p = &c.p;
    let mut out = Vec::new();
    for r in 0..p.rows {
        for n in 0..p.out_features {
            let mut acc = c.bias[n] as i128;
            for k in 0..p.in_features {
                acc += xs[r * p.in_features + k] * ws[n * p.in_features + k];
            }
            let v = naive_requantize(acc, c.mult[n], c.shift[n].into()) as i64 + zp_out as i64;
            out.push(v.clamp(act.0 as i64, act.1 as i64) as i32);
        }
    }
    out
}

/// An int8 activation window.
fn act8() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-128, 127)),
        3 => (-128i32..=127, -128i32..=127).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

/// The case's int16 inputs narrowed to int8 (their high bytes), so the
/// rails and the spread carry over.
fn narrowed(x: &[i16]) -> Vec<i8> {
    x.iter().map(|&v| (v >> 8) as i8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conv_s8_s16_matches_naive(c in conv_case(false), zp in any::<i8>()) {
        let x8 = narrowed(&c.x);
        let mut p = c.p;
        p.input_zero_point = zp.into();
        let mut y = vec![0x7A7Ai16; p.out_channels * p.out_h * p.out_w];
        conv_s8_s16(&p, &x8, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        let xs: Vec<i128> = x8.iter().map(|&v| v as i128 - zp as i128).collect();
        let want = conv_naive_mixed(&c, &xs, &c.weights(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }

    #[test]
    fn conv_s8_s16_refuses_a_zero_point_beyond_i16(
        c in conv_case(false),
        zp in prop_oneof![i32::MIN..-32768, 32768i32..],
    ) {
        let x8 = narrowed(&c.x);
        let mut p = c.p;
        p.input_zero_point = zp;
        let mut y = vec![0x7A7Ai16; p.out_channels * p.out_h * p.out_w];
        conv_s8_s16(&p, &x8, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        prop_assert!(y.iter().all(|&v| v == 0x7A7A), "output left unchanged");
    }

    #[test]
    fn conv_s16_s8_matches_naive(c in conv_case(false), zp in any::<i8>(), act in act8()) {
        let mut p = c.p;
        (p.output_zero_point, p.act_min, p.act_max) = (zp.into(), act.0, act.1);
        let mut y = vec![0x7Ai8; p.out_channels * p.out_h * p.out_w];
        conv_s16_s8(&p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        let xs: Vec<i128> = c.x.iter().map(|&v| v as i128).collect();
        let want = conv_naive_mixed(&c, &xs, &c.weights(), zp.into(), act);
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }

    #[test]
    fn fully_connected_s8_s16_matches_naive(c in fc_case(false), zp in any::<i8>()) {
        let x8 = narrowed(&c.x);
        let mut p = c.p;
        p.input_zero_point = zp.into();
        let mut y = vec![0x7A7Ai16; p.rows * p.out_features];
        fully_connected_s8_s16(&p, &x8, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        let xs: Vec<i128> = x8.iter().map(|&v| v as i128 - zp as i128).collect();
        let want = fc_naive_mixed(&c, &xs, &c.weights(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }

    #[test]
    fn fully_connected_s8_s16_refuses_a_zero_point_beyond_i16(
        c in fc_case(false),
        zp in prop_oneof![i32::MIN..-32768, 32768i32..],
    ) {
        let x8 = narrowed(&c.x);
        let mut p = c.p;
        p.input_zero_point = zp;
        let mut y = vec![0x7A7Ai16; p.rows * p.out_features];
        fully_connected_s8_s16(&p, &x8, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        prop_assert!(y.iter().all(|&v| v == 0x7A7A), "output left unchanged");
    }

    #[test]
    fn fully_connected_s16_s8_matches_naive(c in fc_case(true), zp in any::<i8>(), act in act8()) {
        let mut p = c.p;
        (p.output_zero_point, p.act_min, p.act_max) = (zp.into(), act.0, act.1);
        let mut y = vec![0x7Ai8; p.rows * p.out_features];
        fully_connected_s16_s8(&p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        let xs: Vec<i128> = c.x.iter().map(|&v| v as i128).collect();
        let want = fc_naive_mixed(&c, &xs, &c.weights(), zp.into(), act);
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }
}

// Int16 weights (16x16): the same formulas with `i16` weights, each pairing.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conv_w16_pairings_match_naive(c in conv_case(false), zp in any::<i8>(), act in act8()) {
        let p = c.p;
        let n = p.out_channels * p.out_h * p.out_w;
        let xs: Vec<i128> = c.x.iter().map(|&v| v.into()).collect();
        let mut y = vec![0x7A7Ai16; n];
        conv_s16_w16(&p, &c.x, &c.w16, &c.bias, &c.mult, &c.shift, &mut y);
        let want = conv_naive_mixed(&c, &xs, &c.weights16(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);

        let x8 = narrowed(&c.x);
        let mut up = p;
        up.input_zero_point = zp.into();
        conv_s8_s16_w16(&up, &x8, &c.w16, &c.bias, &c.mult, &c.shift, &mut y);
        let xs8: Vec<i128> = x8.iter().map(|&v| v as i128 - zp as i128).collect();
        let want = conv_naive_mixed(&c, &xs8, &c.weights16(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);

        let mut down = p;
        (down.output_zero_point, down.act_min, down.act_max) = (zp.into(), act.0, act.1);
        let mut y8 = vec![0x7Ai8; n];
        conv_s16_s8_w16(&down, &c.x, &c.w16, &c.bias, &c.mult, &c.shift, &mut y8);
        let want = conv_naive_mixed(&c, &xs, &c.weights16(), zp.into(), act);
        prop_assert_eq!(y8.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }

    #[test]
    fn conv_w16_long_reductions_match_naive(c in long_conv_case()) {
        let mut y = vec![0x7A7Ai16; 1];
        conv_s16_w16(&c.p, &c.x, &c.w16, &c.bias, &c.mult, &c.shift, &mut y);
        let xs: Vec<i128> = c.x.iter().map(|&v| v.into()).collect();
        let want = conv_naive_mixed(&c, &xs, &c.weights16(), 0, (c.p.act_min, c.p.act_max));
        prop_assert_eq!(vec![i32::from(y[0])], want);
    }

    #[test]
    fn fully_connected_w16_pairings_match_naive(
        c in prop_oneof![fc_case(false), fc_case(true)],
        zp in any::<i8>(),
        act in act8(),
    ) {
        let p = c.p;
        let n = p.rows * p.out_features;
        let xs: Vec<i128> = c.x.iter().map(|&v| v.into()).collect();
        let mut y = vec![0x7A7Ai16; n];
        fully_connected_s16_w16(&p, &c.x, &c.w16, &c.bias, &c.mult, &c.shift, &mut y);
        let want = fc_naive_mixed(&c, &xs, &c.weights16(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);

        let x8 = narrowed(&c.x);
        let mut up = p;
        up.input_zero_point = zp.into();
        fully_connected_s8_s16_w16(&up, &x8, &c.w16, &c.bias, &c.mult, &c.shift, &mut y);
        let xs8: Vec<i128> = x8.iter().map(|&v| v as i128 - zp as i128).collect();
        let want = fc_naive_mixed(&c, &xs8, &c.weights16(), 0, (p.act_min, p.act_max));
        prop_assert_eq!(y.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);

        let mut down = p;
        (down.output_zero_point, down.act_min, down.act_max) = (zp.into(), act.0, act.1);
        let mut y8 = vec![0x7Ai8; n];
        fully_connected_s16_s8_w16(&down, &c.x, &c.w16, &c.bias, &c.mult, &c.shift, &mut y8);
        let want = fc_naive_mixed(&c, &xs, &c.weights16(), zp.into(), act);
        prop_assert_eq!(y8.iter().map(|&v| v as i32).collect::<Vec<_>>(), want);
    }
}

#[test]
fn mixed_pairs_refuse_a_nonzero_int16_zero_point_or_a_window_beyond_the_output_type() {
    let p = FullyConnectedParams {
        rows: 1,
        in_features: 2,
        out_features: 1,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    let (w, b, m, s) = ([1i8, 1], [0i32], [1i32 << 30], [0i8]); // a multiplier of 1/2
                                                                // int16 in, int8 out: a window beyond i8 is refused, the output untouched.
    let mut y8 = [7i8];
    fully_connected_s16_s8(
        &FullyConnectedParams { act_max: 128, ..p },
        &[1, 1],
        &w,
        &b,
        &m,
        &s,
        &mut y8,
    );
    assert_eq!(y8, [7]);
    fully_connected_s16_s8(
        &FullyConnectedParams {
            input_zero_point: 1,
            ..p
        },
        &[1, 1],
        &w,
        &b,
        &m,
        &s,
        &mut y8,
    );
    assert_eq!(y8, [7]);
    fully_connected_s16_s8(&p, &[100, 28], &w, &b, &m, &s, &mut y8);
    assert_eq!(y8, [64], "(100 + 28) / 2");
    // int8 in, int16 out: the output zero point must be 0.
    let mut y16 = [7i16];
    fully_connected_s8_s16(
        &FullyConnectedParams {
            output_zero_point: 3,
            ..p
        },
        &[1, 1],
        &w,
        &b,
        &m,
        &s,
        &mut y16,
    );
    assert_eq!(y16, [7]);
    fully_connected_s8_s16(
        &FullyConnectedParams {
            input_zero_point: -10,
            act_max: 32767,
            ..p
        },
        &[100, 28],
        &w,
        &b,
        &m,
        &s,
        &mut y16,
    );
    assert_eq!(y16, [74], "(110 + 38) / 2");
}

#[test]
fn accumulators_beyond_i32_are_exact() {
    // K = 4096 taps of 32767 · 127 = 17_043_341_312 ≈ 2^34, then × 2^-23
    // (m = 2^30, s = −22): 2031.74… → 2032; an i32 accumulator would wrap.
    let k = 4096;
    let fc = FullyConnectedParams {
        rows: 1,
        in_features: k,
        out_features: 2,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -32768,
        act_max: 32767,
    };
    let x = vec![i16::MAX; k];
    let w: Vec<i8> = [vec![127i8; k], vec![-127i8; k]].concat();
    let mut y = [0i16; 2];
    fully_connected_s16(&fc, &x, &w, &[0, 0], &[1 << 30; 2], &[-22; 2], &mut y);
    assert_eq!(y, [2032, -2032]);
    // The same reduction as a Conv over 4096 channels.
    let conv = ConvParams {
        in_channels: k,
        in_h: 1,
        in_w: 1,
        out_channels: 2,
        out_h: 1,
        out_w: 1,
        kernel_h: 1,
        kernel_w: 1,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
        groups: 1,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -32768,
        act_max: 32767,
    };
    let mut y = [0i16; 2];
    conv_s16(&conv, &x, &w, &[0, 0], &[1 << 30; 2], &[-22; 2], &mut y);
    assert_eq!(y, [2032, -2032]);
}

#[test]
fn bad_int16_calls_leave_the_output_untouched() {
    let fc = FullyConnectedParams {
        rows: 1,
        in_features: 1,
        out_features: 1,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -32768,
        act_max: 32767,
    };
    let call = |p: &FullyConnectedParams| {
        let mut y = [7i16];
        fully_connected_s16(p, &[1], &[1], &[0], &[1 << 30], &[1], &mut y);
        y[0]
    };
    assert_eq!(call(&fc), 1);
    for bad in [
        FullyConnectedParams {
            act_max: 32768,
            ..fc
        },
        FullyConnectedParams {
            act_min: -32769,
            ..fc
        },
        FullyConnectedParams {
            input_zero_point: 1,
            ..fc
        },
        FullyConnectedParams {
            output_zero_point: -1,
            ..fc
        },
        FullyConnectedParams { rows: 2, ..fc },
    ] {
        assert_eq!(call(&bad), 7, "{bad:?}");
    }
}

// ---------------------------------------------------------------------------
// Pools

#[derive(Clone, Debug)]
struct PoolCase {
    p: PoolParams,
    x: Vec<i16>,
}

fn pool_case(large: bool) -> impl Strategy<Value = PoolCase> {
    (
        any::<bool>(),
        1usize..=3,
        any::<bool>(),
        prop_oneof![3 => Just(0i32), 1 => -32768i32..=32767],
    )
        .prop_flat_map(move |(one_d, c, cip, zp)| {
            (
                axis(one_d, large),
                axis(false, large),
                Just(c),
                Just(cip),
                Just(zp),
            )
        })
        .prop_flat_map(|(h, w, channels, count_include_pad, zero_point)| {
            let p = PoolParams {
                channels,
                in_h: h.0,
                in_w: w.0,
                out_h: h.5,
                out_w: w.5,
                kernel_h: h.1,
                kernel_w: w.1,
                stride_h: h.2,
                stride_w: w.2,
                dilation_h: h.3,
                dilation_w: w.3,
                pad_top: h.4,
                pad_left: w.4,
                count_include_pad,
                zero_point,
            };
            (Just(p), vec(x16(), channels * p.in_h * p.in_w))
        })
        .prop_map(|(p, x)| PoolCase { p, x })
}

/// Every output's valid taps: `f(values)` per window.
fn pool_naive(c: &PoolCase, f: impl Fn(&[i16], usize) -> i16) -> Vec<i16> {
    let p = &c.p;
    let mut out = Vec::new();
    for ch in 0..p.channels {
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                let mut vals = Vec::new();
                for ky in 0..p.kernel_h {
                    for kx in 0..p.kernel_w {
                        let iy = (oy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                        let ix = (ox * p.stride_w + kx * p.dilation_w) as i64 - p.pad_left as i64;
                        if iy >= 0 && ix >= 0 && iy < p.in_h as i64 && ix < p.in_w as i64 {
                            vals.push(c.x[(ch * p.in_h + iy as usize) * p.in_w + ix as usize]);
                        }
                    }
                }
                let count = if p.count_include_pad {
                    p.kernel_h * p.kernel_w
                } else {
                    vals.len()
                };
                out.push(f(&vals, count));
            }
        }
    }
    out
}

fn max_naive(c: &PoolCase) -> Vec<i16> {
    pool_naive(c, |v, _| {
        v.iter().copied().max().unwrap_or(c.p.zero_point as i16)
    })
}

fn avg_naive(c: &PoolCase) -> Vec<i16> {
    let zp = c.p.zero_point as i128;
    pool_naive(c, |v, count| {
        if count == 0 {
            return zp as i16;
        }
        let sum: i128 = v.iter().map(|&x| x as i128 - zp).sum();
        let n = count as i128;
        // Halves away from zero: round |sum|/n, then restore the sign.
        let mag = (2 * sum.abs() + n) / (2 * n);
        let avg = if sum < 0 { -mag } else { mag };
        (zp + avg).clamp(-32768, 32767) as i16
    })
}

fn run_pool(c: &PoolCase, f: fn(&PoolParams, &[i16], &mut [i16])) -> Vec<i16> {
    let mut y = vec![0x7A7Ai16; c.p.channels * c.p.out_h * c.p.out_w];
    f(&c.p, &c.x, &mut y);
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn max_pool_s16_matches_naive(c in pool_case(false)) {
        prop_assert_eq!(run_pool(&c, max_pool_s16), max_naive(&c));
    }

    #[test]
    fn avg_pool_s16_matches_naive(c in pool_case(false)) {
        prop_assert_eq!(run_pool(&c, avg_pool_s16), avg_naive(&c));
    }

    #[test]
    fn pools_s16_with_large_dilations_match_naive(c in pool_case(true)) {
        prop_assert_eq!(run_pool(&c, max_pool_s16), max_naive(&c));
        prop_assert_eq!(run_pool(&c, avg_pool_s16), avg_naive(&c));
    }
}

#[test]
fn avg_pool_s16_sums_a_large_window_without_overflow() {
    // A 256 x 256 global window of −32768 around zero point 32767: every term
    // is −65535, the sum −2^16 · 65535 ≈ −2^32 (an i32 sum would wrap).
    let p = PoolParams {
        channels: 1,
        in_h: 256,
        in_w: 256,
        out_h: 1,
        out_w: 1,
        kernel_h: 256,
        kernel_w: 256,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
        count_include_pad: false,
        zero_point: 32767,
    };
    let x = vec![i16::MIN; 256 * 256];
    let mut y = [0i16];
    avg_pool_s16(&p, &x, &mut y);
    assert_eq!(y, [-32768]);
    let mut y = [0i16];
    let x: Vec<i16> = (0..256 * 256)
        .map(|i| if i % 2 == 0 { i16::MAX } else { 1 })
        .collect();
    avg_pool_s16(&PoolParams { zero_point: 0, ..p }, &x, &mut y);
    // (32767 + 1) / 2 = 16384.
    assert_eq!(y, [16384]);
}

// ---------------------------------------------------------------------------
// Requantize

fn requantize_params() -> impl Strategy<Value = (i32, i32, i32)> {
    (
        multiplier(),
        prop_oneof![6 => -10i32..=10, 1 => Just(MIN_SHIFT), 1 => Just(MAX_SHIFT)],
        -128i32..=127,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn requantize_s8_s16_matches_naive((m, s, zx) in requantize_params(), x in vec(any::<i8>(), 0..40)) {
        let p = RequantizeParams { input_zero_point: zx, output_zero_point: 0, multiplier: m, shift: s };
        let mut y = vec![0i16; x.len()];
        requantize_s8_s16(&p, &x, &mut y);
        let want: Vec<i16> = x
            .iter()
            .map(|&v| naive_requantize(v as i128 - zx as i128, m, s).clamp(-32768, 32767) as i16)
            .collect();
        prop_assert_eq!(y, want);
    }

    #[test]
    fn requantize_s16_s8_matches_naive((m, s, zy) in requantize_params(), x in vec(x16(), 0..40)) {
        let p = RequantizeParams { input_zero_point: 0, output_zero_point: zy, multiplier: m, shift: s };
        let mut y = vec![0i8; x.len()];
        requantize_s16_s8(&p, &x, &mut y);
        let want: Vec<i8> = x
            .iter()
            .map(|&v| (naive_requantize(v as i128, m, s) as i64 + zy as i64).clamp(-128, 127) as i8)
            .collect();
        prop_assert_eq!(y, want);
    }

    #[test]
    fn requantize_s16_s16_matches_naive((m, s, _) in requantize_params(), x in vec(x16(), 0..40)) {
        let p = RequantizeParams { input_zero_point: 0, output_zero_point: 0, multiplier: m, shift: s };
        let mut y = vec![0i16; x.len()];
        requantize_s16_s16(&p, &x, &mut y);
        let want: Vec<i16> = x
            .iter()
            .map(|&v| naive_requantize(v as i128, m, s).clamp(-32768, 32767) as i16)
            .collect();
        prop_assert_eq!(y, want);
    }
}

// ---------------------------------------------------------------------------
// Softmax

/// A table as the converter writes it (random input scale), or any entries.
fn table() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        3 => (1e-6f64..0.1).prop_map(|s| {
            let e = |steps: f64| ((-steps * s).exp() * 16_777_216.0).round() as i32;
            (0..256).map(|d| e(d as f64)).chain((0..256).map(|h| e(256.0 * h as f64))).collect()
        }),
        1 => vec(any::<i32>(), 512),
    ]
}

/// The documented Softmax formula in `u128`: the exponentials of an int16
/// input from the pair of tables (`wide_input`) or of an int8 one from the
/// first 256 entries, each row's probabilities as `prob(e, sum)`, or `empty`
/// for a row whose sum is 0.
fn softmax_naive_with<X: Copy + Into<i32>, Y: Copy>(
    p: &SoftmaxParams,
    t: &[i32],
    x: &[X],
    wide_input: bool,
    prob: impl Fn(u128, u128) -> Y,
    empty: Y,
) -> Vec<Y> {
    let mut y = vec![empty; x.len()];
    let ent = |i: usize| t[i].max(0) as u128;
    for o in 0..p.outer {
        for i in 0..p.inner {
            let at = |a: usize| (o * p.axis_len + a) * p.inner + i;
            let v = |a: usize| -> i32 { x[at(a)].into() };
            let m = (0..p.axis_len).map(v).max().unwrap();
            let e = |a: usize| {
                let d = (m - v(a)) as usize;
                match wide_input {
                    true => (ent(d % 256) * ent(256 + d / 256) + (1 << 23)) >> 24,
                    false => ent(d),
                }
            };
            let sum: u128 = (0..p.axis_len).map(e).sum();
            for a in 0..p.axis_len {
                if sum > 0 {
                    y[at(a)] = prob(e(a), sum);
                }
            }
        }
    }
    y
}

/// An int8 probability: `clamp((e·256 + sum/2) / sum − 128, −128, 127)`.
fn prob8(e: u128, sum: u128) -> i8 {
    (((e * 256 + sum / 2) / sum) as i64 - 128).clamp(-128, 127) as i8
}

/// An int16 probability: `min((e·32768 + sum/2) / sum, 32767)`.
fn prob16(e: u128, sum: u128) -> i16 {
    ((e * 32768 + sum / 2) / sum).min(32767) as i16
}

fn softmax_naive(p: &SoftmaxParams, t: &[i32], x: &[i16]) -> Vec<i8> {
    softmax_naive_with(p, t, x, true, prob8, -128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn softmax_s16_s8_matches_naive(
        (outer, axis_len, inner) in (1usize..=3, 1usize..=12, 1usize..=3),
        t in table(),
        seed in vec(x16(), 108),
    ) {
        let p = SoftmaxParams { outer, axis_len, inner };
        let x = &seed[..outer * axis_len * inner];
        let t512: &[i32; 512] = t.as_slice().try_into().unwrap();
        let mut y = vec![0x55i8; x.len()];
        softmax_s16_s8(&p, t512, x, &mut y);
        prop_assert_eq!(y, softmax_naive(&p, &t, x));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn softmax_s8_s16_matches_naive(
        (outer, axis_len, inner) in (1usize..=3, 1usize..=40, 1usize..=3),
        t in table(),
        seed in vec(any::<i8>(), 360),
    ) {
        let p = SoftmaxParams { outer, axis_len, inner };
        let x = &seed[..outer * axis_len * inner];
        let t256: &[i32; 256] = t[..256].try_into().unwrap();
        let mut y = vec![0x55i16; x.len()];
        softmax_s8_s16(&p, t256, x, &mut y);
        prop_assert_eq!(y, softmax_naive_with(&p, &t[..256], x, false, prob16, 0));
    }

    #[test]
    fn softmax_s16_matches_naive(
        (outer, axis_len, inner) in (1usize..=3, 1usize..=40, 1usize..=3),
        t in table(),
        seed in vec(x16(), 360),
    ) {
        let p = SoftmaxParams { outer, axis_len, inner };
        let x = &seed[..outer * axis_len * inner];
        let t512: &[i32; 512] = t.as_slice().try_into().unwrap();
        let mut y = vec![0x55i16; x.len()];
        softmax_s16(&p, t512, x, &mut y);
        prop_assert_eq!(y, softmax_naive_with(&p, &t, x, true, prob16, 0));
    }
}

#[test]
fn int16_probabilities_of_a_uniform_row_are_exact() {
    // 64 equal logits: each 1/64 = 512 steps of 1/32768 (4 in int8).
    let p = SoftmaxParams {
        outer: 1,
        axis_len: 64,
        inner: 1,
    };
    let t: [i32; 256] = std::array::from_fn(|d| (1 << 24) >> d.min(31));
    let mut y = [0i16; 64];
    softmax_s8_s16(&p, &t, &[7i8; 64], &mut y);
    assert_eq!(y, [512i16; 64]);
    // One dominant logit: probability 1 saturates at 32767, the rest 0.
    let x: [i8; 64] = std::array::from_fn(|i| if i == 3 { 127 } else { -128 });
    softmax_s8_s16(&p, &t, &x, &mut y);
    assert_eq!(y[3], 32767);
    assert!(y.iter().enumerate().all(|(i, &v)| i == 3 || v == 0));
}

// ---------------------------------------------------------------------------
// MatMul with int16 sides

/// A MatMul case: shapes `a [ba.., M, K]`, `b [bb.., K, N]` with broadcast
/// batch dims, values (int16 sides at zero point 0), the requantization.
#[derive(Clone, Debug)]
struct MatMulCase {
    a_batch: Vec<usize>,
    b_batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    a: Vec<i16>,
    b: Vec<i16>,
    za: i32,
    zb: i32,
    zy: i32,
    multiplier: i32,
    shift: i32,
    act: (i32, i32),
}

/// Batch dims of `a` and `b` that broadcast: each pair equal or one of them 1.
fn broadcast_batches() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    vec((1usize..=3, 0u8..3), 0..=2).prop_map(|dims| {
        let a = dims
            .iter()
            .map(|&(d, w)| if w == 1 { 1 } else { d })
            .collect();
        let b = dims
            .iter()
            .map(|&(d, w)| if w == 2 { 1 } else { d })
            .collect();
        (a, b)
    })
}

fn mat_mul_case(a_wide: bool, b_wide: bool, y_wide: bool) -> impl Strategy<Value = MatMulCase> {
    let long = prop_oneof![3 => 1usize..=9, 1 => 60usize..=300];
    (broadcast_batches(), 1usize..=4, long, 1usize..=70).prop_flat_map(
        move |((ab, bb), m, k, n)| {
            let na = ab.iter().product::<usize>() * m * k;
            let nb = bb.iter().product::<usize>() * k * n;
            let side = |wide: bool, len: usize| match wide {
                true => vec(x16(), len).boxed(),
                false => vec(any::<i8>().prop_map(i16::from), len).boxed(),
            };
            let zp = |wide: bool| match wide {
                true => Just(0).boxed(),
                false => any::<i8>().prop_map(i32::from).boxed(),
            };
            let act = match y_wide {
                true => act16().boxed(),
                false => act8().boxed(),
            };
            (
                side(a_wide, na),
                side(b_wide, nb),
                zp(a_wide),
                zp(b_wide),
                zp(y_wide),
                multiplier(),
                -20i32..=10,
                act,
            )
                .prop_map(move |(a, b, za, zb, zy, multiplier, shift, act)| {
                    MatMulCase {
                        a_batch: ab.clone(),
                        b_batch: bb.clone(),
                        m,
                        k,
                        n,
                        a,
                        b,
                        za,
                        zb,
                        zy,
                        multiplier,
                        shift,
                        act,
                    }
                })
        },
    )
}

fn mat_mul_params(c: &MatMulCase) -> MatMulParams {
    MatMulParams {
        batch: Broadcast4::new(&c.a_batch, &c.b_batch).unwrap(),
        rows: c.m,
        depth: c.k,
        cols: c.n,
        a_zero_point: c.za,
        b_zero_point: c.zb,
        output_zero_point: c.zy,
        out_multiplier: c.multiplier,
        out_shift: c.shift,
        act_min: c.act.0,
        act_max: c.act.1,
    }
}

/// The formula by explicit batch coordinates, in `i128`.
fn mat_mul_naive(c: &MatMulCase) -> Vec<i32> {
    let rank = c.a_batch.len();
    let out: Vec<usize> = (0..rank).map(|i| c.a_batch[i].max(c.b_batch[i])).collect();
    let count: usize = out.iter().product();
    let mut y = Vec::new();
    for flat in 0..count {
        // The batch coordinate, last dim fastest; a size-1 dim reads index 0.
        let mut idx = vec![0; rank];
        let mut rest = flat;
        for i in (0..rank).rev() {
            idx[i] = rest % out[i];
            rest /= out[i];
        }
        let offset = |dims: &[usize]| {
            (0..rank).fold(0, |acc, i| {
                acc * dims[i] + if dims[i] == 1 { 0 } else { idx[i] }
            })
        };
        let (oa, ob) = (
            offset(&c.a_batch) * c.m * c.k,
            offset(&c.b_batch) * c.k * c.n,
        );
        for r in 0..c.m {
            for col in 0..c.n {
                let acc: i128 = (0..c.k)
                    .map(|i| {
                        let a = c.a[oa + r * c.k + i] as i128 - c.za as i128;
                        let b = c.b[ob + i * c.n + col] as i128 - c.zb as i128;
                        a * b
                    })
                    .sum();
                let v = naive_requantize(acc, c.multiplier, c.shift).saturating_add(c.zy);
                y.push(v.clamp(c.act.0, c.act.1));
            }
        }
    }
    y
}

fn run_mat_mul(c: &MatMulCase, a_wide: bool, b_wide: bool, y_wide: bool) -> Vec<i32> {
    let p = mat_mul_params(c);
    let len = mat_mul_naive(c).len();
    let narrow = |v: &[i16]| v.iter().map(|&x| x as i8).collect::<Vec<i8>>();
    let (a8, b8) = (narrow(&c.a), narrow(&c.b));
    macro_rules! go {
        ($a:expr, $b:expr) => {
            match y_wide {
                true => {
                    let mut y = vec![0x5555i16; len];
                    mat_mul_s16(&p, $a, $b, &mut y);
                    y.iter().map(|&v| i32::from(v)).collect()
                }
                false => {
                    let mut y = vec![0x55i8; len];
                    mat_mul_s16(&p, $a, $b, &mut y);
                    y.iter().map(|&v| i32::from(v)).collect()
                }
            }
        };
    }
    match (a_wide, b_wide) {
        (true, true) => go!(&c.a[..], &c.b[..]),
        (true, false) => go!(&c.a[..], &b8[..]),
        (false, true) => go!(&a8[..], &c.b[..]),
        (false, false) => go!(&a8[..], &b8[..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mat_mul_s16_matches_naive_for_every_mix(
        (sides, c) in (0u8..8).prop_flat_map(|sides| {
            let (a, b, y) = (sides & 1 != 0, sides & 2 != 0, sides & 4 != 0);
            (Just(sides), mat_mul_case(a, b, y))
        })
    ) {
        let (a, b, y) = (sides & 1 != 0, sides & 2 != 0, sides & 4 != 0);
        prop_assert_eq!(run_mat_mul(&c, a, b, y), mat_mul_naive(&c));
    }
}

#[test]
fn mat_mul_s16_refuses_a_nonzero_int16_zero_point_and_a_window_beyond_the_output() {
    let c = MatMulCase {
        a_batch: vec![],
        b_batch: vec![],
        m: 1,
        k: 2,
        n: 1,
        a: vec![32767, -32768],
        b: vec![3, 4],
        za: 0,
        zb: 0,
        zy: 0,
        multiplier: 1 << 30,
        shift: 0,
        act: (-32768, 32767),
    };
    let p = mat_mul_params(&c);
    let mut y = [7i16];
    mat_mul_s16(&p, &c.a[..], &[3i8, 4][..], &mut y);
    // (32767·3 − 32768·4) / 2 = −16385.5, rounded half up.
    assert_eq!(y, [-16385]);
    for bad in [
        MatMulParams {
            a_zero_point: 1,
            ..p
        },
        MatMulParams {
            act_min: -32769,
            ..p
        },
    ] {
        let mut y = [7i16];
        mat_mul_s16(&bad, &c.a[..], &[3i8, 4][..], &mut y);
        assert_eq!(y, [7], "{bad:?}");
    }
    // An int8 output takes an int8 window only.
    let mut y8 = [7i8];
    mat_mul_s16(&p, &c.a[..], &[3i8, 4][..], &mut y8);
    assert_eq!(y8, [7]);
}

// ---------------------------------------------------------------------------
// Movers: Pad, Transpose and Gather of int16 activations

/// A shape of four dims and a permutation of them.
fn transpose_case() -> impl Strategy<Value = ([usize; 4], [usize; 4], Vec<i16>)> {
    let perm = Just([0usize, 1, 2, 3]).prop_shuffle();
    ([1usize..=3, 1usize..=4, 1usize..=5, 1usize..=6], perm).prop_flat_map(|(shape, perm)| {
        let n: usize = shape.iter().product();
        (Just(shape), Just(perm), vec(x16(), n))
    })
}

/// A Gather along the middle of `[outer, axis_len, inner]`: indices, and a
/// slice `start + k·step`.
fn gather_case() -> impl Strategy<Value = (usize, usize, usize, Vec<i32>, Vec<i16>)> {
    (1usize..=3, 1usize..=6, 1usize..=4).prop_flat_map(|(outer, axis_len, inner)| {
        let indices = vec(0..axis_len as i32, 1..=8);
        (
            Just(outer),
            Just(axis_len),
            Just(inner),
            indices,
            vec(x16(), outer * axis_len * inner),
        )
    })
}

/// A Pad of four dims: input shape, pads before and after, an int16 value.
fn pad_case() -> impl Strategy<Value = (PadParams, Vec<i16>)> {
    let dims = [0usize..=3, 1usize..=3, 0usize..=4, 1usize..=5];
    let pads = [0usize..=2, 0usize..=3, 0usize..=2, 0usize..=3];
    (dims, pads.clone(), pads, x16()).prop_flat_map(|(in_shape, before, after, value)| {
        let out_shape = [0, 1, 2, 3].map(|d| before[d] + in_shape[d] + after[d]);
        let p = PadParams {
            in_shape,
            out_shape,
            pad_before: before,
            value: value.into(),
        };
        (Just(p), vec(x16(), in_shape.iter().product::<usize>()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pad_s16_matches_naive((p, x) in pad_case()) {
        let n: usize = p.out_shape.iter().product();
        let mut y = vec![0x5555i16; n];
        pad_s16(&p, &x, &mut y);
        // y[o] = x[o − before] where that lies inside the input, else the value.
        let mut want = Vec::new();
        let [s0, s1, s2, s3] = p.in_shape;
        for o0 in 0..p.out_shape[0] {
            for o1 in 0..p.out_shape[1] {
                for o2 in 0..p.out_shape[2] {
                    for o3 in 0..p.out_shape[3] {
                        let i = [o0, o1, o2, o3]
                            .iter()
                            .zip(&p.pad_before)
                            .map(|(&o, &b)| o.checked_sub(b))
                            .collect::<Option<Vec<usize>>>()
                            .filter(|i| i[0] < s0 && i[1] < s1 && i[2] < s2 && i[3] < s3);
                        want.push(match i {
                            Some(i) => x[((i[0] * s1 + i[1]) * s2 + i[2]) * s3 + i[3]],
                            None => p.value as i16,
                        });
                    }
                }
            }
        }
        prop_assert_eq!(y, want);
    }

    #[test]
    fn transpose_s16_matches_naive((shape, perm, x) in transpose_case()) {
        let p = TransposeParams { in_shape: shape, perm };
        let mut y = vec![0x5555i16; x.len()];
        transpose_s16(&p, &x, &mut y);
        // y[o] = x[i] with i[perm[d]] = o[d], by explicit coordinates.
        let out: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
        let mut want = Vec::new();
        for o0 in 0..out[0] {
            for o1 in 0..out[1] {
                for o2 in 0..out[2] {
                    for o3 in 0..out[3] {
                        let o = [o0, o1, o2, o3];
                        let mut i = [0; 4];
                        for d in 0..4 {
                            i[perm[d]] = o[d];
                        }
                        let flat = ((i[0] * shape[1] + i[1]) * shape[2] + i[2]) * shape[3] + i[3];
                        want.push(x[flat]);
                    }
                }
            }
        }
        prop_assert_eq!(y, want);
    }

    #[test]
    fn gather_and_slice_s16_match_naive(
        (outer, axis_len, inner, indices, x) in gather_case(),
        (start, step) in (0usize..6, -3isize..=3),
    ) {
        let at = |o: usize, a: usize, i: usize| x[(o * axis_len + a) * inner + i];
        let p = GatherParams { outer, axis_len, inner };
        let mut y = vec![0x5555i16; outer * indices.len() * inner];
        gather_s16(&p, &indices, &x, &mut y);
        let mut want = Vec::new();
        for o in 0..outer {
            for &k in &indices {
                want.extend((0..inner).map(|i| at(o, k as usize, i)));
            }
        }
        prop_assert_eq!(y, want);

        // The longest slice from `start` by `step` that stays on the axis.
        let start = start.min(axis_len - 1);
        let taken: Vec<usize> = (0..)
            .map(|k: isize| start as isize + k * step)
            .take_while(|&a| (0..axis_len as isize).contains(&a))
            .take(if step == 0 { 0 } else { axis_len })
            .map(|a| a as usize)
            .collect();
        prop_assume!(!taken.is_empty());
        let s = SliceParams { outer, axis_len, inner, start, step, count: taken.len() };
        let mut y = vec![0x5555i16; outer * taken.len() * inner];
        slice_s16(&s, &x, &mut y);
        let mut want = Vec::new();
        for o in 0..outer {
            for &a in &taken {
                want.extend((0..inner).map(|i| at(o, a, i)));
            }
        }
        prop_assert_eq!(y, want);
    }
}

// ---------------------------------------------------------------------------
// The residual stream: Add, LayerNorm and ReduceSum/ReduceMax with int16
// sides

/// Values for one side: int16 (zero point 0) or int8 (any zero point),
/// carried as `i32` with the side's type.
#[derive(Clone, Debug)]
struct Side {
    wide: bool,
    zero_point: i32,
    values: Vec<i32>,
}

fn side(wide: bool, len: usize) -> BoxedStrategy<Side> {
    match wide {
        true => vec(x16(), len)
            .prop_map(|v| Side {
                wide: true,
                zero_point: 0,
                values: v.into_iter().map(i32::from).collect(),
            })
            .boxed(),
        false => (any::<i8>(), vec(any::<i8>(), len))
            .prop_map(|(zp, v)| Side {
                wide: false,
                zero_point: i32::from(zp),
                values: v.into_iter().map(i32::from).collect(),
            })
            .boxed(),
    }
}

impl Side {
    fn i16s(&self) -> Vec<i16> {
        self.values.iter().map(|&v| v as i16).collect()
    }
    fn i8s(&self) -> Vec<i8> {
        self.values.iter().map(|&v| v as i8).collect()
    }
}

/// The output type's window and zero point.
fn out_side(wide: bool) -> BoxedStrategy<((i32, i32), i32)> {
    match wide {
        true => (act16(), Just(0)).boxed(),
        false => (act8(), any::<i8>().prop_map(i32::from)).boxed(),
    }
}

/// Runs `f` with the kernel's output of `len` values in the type `wide`
/// says, returned widened.
fn with_output(
    wide: bool,
    len: usize,
    f: impl FnOnce(Option<&mut [i8]>, Option<&mut [i16]>),
) -> Vec<i32> {
    match wide {
        true => {
            let mut y = vec![0x5555i16; len];
            f(None, Some(&mut y));
            y.into_iter().map(i32::from).collect()
        }
        false => {
            let mut y = vec![0x55i8; len];
            f(Some(&mut y), None);
            y.into_iter().map(i32::from).collect()
        }
    }
}

/// `[rows, cols]` plus `b`'s broadcast: 0 same shape, 1 a row `[cols]`,
/// 2 a column `[rows, 1]`, 3 a scalar.
#[derive(Clone, Debug)]
struct AddCase {
    rows: usize,
    cols: usize,
    b_shape: u8,
    a: Side,
    b: Side,
    p: AddParams,
}

fn add_case(a_wide: bool, b_wide: bool, y_wide: bool) -> impl Strategy<Value = AddCase> {
    let max_shift = if a_wide || b_wide { 15 } else { 20 };
    (1usize..=4, 1usize..=6, 0u8..4).prop_flat_map(move |(rows, cols, b_shape)| {
        let b_len = [rows * cols, cols, rows, 1][b_shape as usize];
        (
            side(a_wide, rows * cols),
            side(b_wide, b_len),
            out_side(y_wide),
            0..=max_shift,
            (multiplier(), multiplier(), multiplier()),
            (-12i32..=0, -12i32..=0, -30i32..=4),
        )
            .prop_map(
                move |(a, b, (act, zy), ls, (am, bm, om), (ash, bsh, osh))| {
                    let p = AddParams {
                        a_zero_point: a.zero_point,
                        b_zero_point: b.zero_point,
                        output_zero_point: zy,
                        left_shift: ls,
                        a_multiplier: am,
                        a_shift: ash,
                        b_multiplier: bm,
                        b_shift: bsh,
                        out_multiplier: om,
                        out_shift: osh,
                        act_min: act.0,
                        act_max: act.1,
                    };
                    AddCase {
                        rows,
                        cols,
                        b_shape,
                        a,
                        b,
                        p,
                    }
                },
            )
    })
}

/// The documented formula by explicit coordinates, in `i128`.
fn add_naive(c: &AddCase) -> Vec<i32> {
    let p = &c.p;
    let mut y = Vec::new();
    for r in 0..c.rows {
        for k in 0..c.cols {
            let bi = [r * c.cols + k, k, r, 0][c.b_shape as usize];
            let xa = ((c.a.values[r * c.cols + k] - p.a_zero_point) as i128) << p.left_shift;
            let xb = ((c.b.values[bi] - p.b_zero_point) as i128) << p.left_shift;
            let sum = naive_requantize(xa, p.a_multiplier, p.a_shift)
                .saturating_add(naive_requantize(xb, p.b_multiplier, p.b_shift));
            let v = naive_requantize(sum as i128, p.out_multiplier, p.out_shift)
                .saturating_add(p.output_zero_point);
            y.push(v.clamp(p.act_min, p.act_max));
        }
    }
    y
}

fn run_add(c: &AddCase, y_wide: bool) -> Vec<i32> {
    let b_dims: Vec<usize> = match c.b_shape {
        0 => vec![c.rows, c.cols],
        1 => vec![c.cols],
        2 => vec![c.rows, 1],
        _ => vec![],
    };
    let bc = Broadcast4::new(&[c.rows, c.cols], &b_dims).expect("broadcasts");
    let (a16, a8, b16, b8) = (c.a.i16s(), c.a.i8s(), c.b.i16s(), c.b.i8s());
    with_output(y_wide, c.rows * c.cols, |y8, y16| {
        macro_rules! go {
            ($a:expr, $b:expr) => {
                match (y8, y16) {
                    (Some(y), _) => add_s16(&c.p, &bc, $a, $b, y),
                    (_, Some(y)) => add_s16(&c.p, &bc, $a, $b, y),
                    _ => {}
                }
            };
        }
        match (c.a.wide, c.b.wide) {
            (true, true) => go!(&a16[..], &b16[..]),
            (true, false) => go!(&a16[..], &b8[..]),
            (false, true) => go!(&a8[..], &b16[..]),
            (false, false) => go!(&a8[..], &b8[..]),
        }
    })
}

/// Sub, Mul, Div, Min and Max, on [`AddCase`]'s operands and words (Mul and
/// Div take its zero points, output words and window; Min and Max also its
/// operand words).
#[derive(Clone, Copy, Debug)]
enum Wide {
    Sub,
    Mul,
    Div,
    Min,
    Max,
}

const WIDE_OPS: [Wide; 5] = [Wide::Sub, Wide::Mul, Wide::Div, Wide::Min, Wide::Max];

fn mul_params(p: &AddParams) -> MulParams {
    MulParams {
        a_zero_point: p.a_zero_point,
        b_zero_point: p.b_zero_point,
        output_zero_point: p.output_zero_point,
        out_multiplier: p.out_multiplier,
        out_shift: p.out_shift,
        act_min: p.act_min,
        act_max: p.act_max,
    }
}

fn min_max_params(p: &AddParams) -> MinMaxParams {
    MinMaxParams {
        a_zero_point: p.a_zero_point,
        b_zero_point: p.b_zero_point,
        output_zero_point: p.output_zero_point,
        a_multiplier: p.a_multiplier,
        a_shift: p.a_shift,
        b_multiplier: p.b_multiplier,
        b_shift: p.b_shift,
        act_min: p.act_min,
        act_max: p.act_max,
    }
}

/// The documented formula of `op` (NUMERICS.md § The math ops) by explicit
/// coordinates, in `i128`.
fn wide_naive(c: &AddCase, op: Wide) -> Vec<i32> {
    let p = &c.p;
    let mut y = Vec::new();
    for r in 0..c.rows {
        for k in 0..c.cols {
            let bi = [r * c.cols + k, k, r, 0][c.b_shape as usize];
            let xa = (c.a.values[r * c.cols + k] - p.a_zero_point) as i128;
            let xb = (c.b.values[bi] - p.b_zero_point) as i128;
            let out = |acc: i128| naive_requantize(acc, p.out_multiplier, p.out_shift);
            let v = match op {
                Wide::Sub => {
                    let (ra, rb) = (
                        naive_requantize(xa << p.left_shift, p.a_multiplier, p.a_shift),
                        naive_requantize(xb << p.left_shift, p.b_multiplier, p.b_shift),
                    );
                    out(ra.saturating_sub(rb) as i128)
                }
                Wide::Mul => out(xa * xb),
                Wide::Div => {
                    // round(xa · 2^16 / xb), halves away from zero; ±i32::MAX
                    // for a non-zero over zero, 0 for 0 / 0.
                    let q = match xb {
                        0 => xa.signum() * i32::MAX as i128,
                        _ => {
                            let (n, d) = (xa.abs() << 16, xb.abs());
                            let q = ((2 * n + d) / (2 * d)).min(i32::MAX as i128);
                            if (xa < 0) != (xb < 0) {
                                -q
                            } else {
                                q
                            }
                        }
                    };
                    out(q)
                }
                Wide::Min | Wide::Max => {
                    let ra = naive_requantize(xa, p.a_multiplier, p.a_shift);
                    let rb = naive_requantize(xb, p.b_multiplier, p.b_shift);
                    match op {
                        Wide::Min => ra.min(rb),
                        _ => ra.max(rb),
                    }
                }
            };
            y.push(
                v.saturating_add(p.output_zero_point)
                    .clamp(p.act_min, p.act_max),
            );
        }
    }
    y
}

fn run_wide(c: &AddCase, op: Wide, y_wide: bool) -> Vec<i32> {
    let b_dims: Vec<usize> = match c.b_shape {
        0 => vec![c.rows, c.cols],
        1 => vec![c.cols],
        2 => vec![c.rows, 1],
        _ => vec![],
    };
    let bc = Broadcast4::new(&[c.rows, c.cols], &b_dims).expect("broadcasts");
    let (a16, a8, b16, b8) = (c.a.i16s(), c.a.i8s(), c.b.i16s(), c.b.i8s());
    let (mp, mm) = (mul_params(&c.p), min_max_params(&c.p));
    with_output(y_wide, c.rows * c.cols, |y8, y16| {
        macro_rules! go {
            ($a:expr, $b:expr, $y:expr) => {
                match op {
                    Wide::Sub => sub_s16(&c.p, &bc, $a, $b, $y),
                    Wide::Mul => mul_s16(&mp, &bc, $a, $b, $y),
                    Wide::Div => div_s16(&mp, &bc, $a, $b, $y),
                    Wide::Min => min_s16(&mm, &bc, $a, $b, $y),
                    Wide::Max => max_s16(&mm, &bc, $a, $b, $y),
                }
            };
        }
        macro_rules! out {
            ($a:expr, $b:expr) => {
                match (y8, y16) {
                    (Some(y), _) => go!($a, $b, y),
                    (_, Some(y)) => go!($a, $b, y),
                    _ => {}
                }
            };
        }
        match (c.a.wide, c.b.wide) {
            (true, true) => out!(&a16[..], &b16[..]),
            (true, false) => out!(&a16[..], &b8[..]),
            (false, true) => out!(&a8[..], &b16[..]),
            (false, false) => out!(&a8[..], &b8[..]),
        }
    })
}

/// Select on [`AddCase`]'s operands and Min/Max words, with a `[rows, 1]`
/// condition (`cond_wide`: int16, else int8 of zero point −3) true on every
/// other row, naively and through `select_s16`.
fn select_naive_and_run(c: &AddCase, cond_wide: bool, y_wide: bool) -> (Vec<i32>, Vec<i32>) {
    let zc = if cond_wide { 0 } else { -3 };
    let cond: Vec<i32> = (0..c.rows)
        .map(|r| zc + i32::from(r % 2 == 0) * (r as i32 + 1))
        .collect();
    let mm = min_max_params(&c.p);
    let mut want = Vec::new();
    for (r, &cr) in cond.iter().enumerate() {
        for k in 0..c.cols {
            let bi = [r * c.cols + k, k, r, 0][c.b_shape as usize];
            let v = match cr != zc {
                true => naive_requantize(
                    (c.a.values[r * c.cols + k] - mm.a_zero_point) as i128,
                    mm.a_multiplier,
                    mm.a_shift,
                ),
                false => naive_requantize(
                    (c.b.values[bi] - mm.b_zero_point) as i128,
                    mm.b_multiplier,
                    mm.b_shift,
                ),
            };
            want.push(
                v.saturating_add(mm.output_zero_point)
                    .clamp(mm.act_min, mm.act_max),
            );
        }
    }
    let b_dims: Vec<usize> = match c.b_shape {
        0 => vec![c.rows, c.cols],
        1 => vec![c.cols],
        2 => vec![c.rows, 1],
        _ => vec![],
    };
    let bc = Broadcast4::new(&[c.rows, c.cols], &b_dims).expect("broadcasts");
    let cond_bc = Broadcast4::new(&[c.rows, 1], &[c.rows, c.cols]).expect("broadcasts");
    let p = SelectParams {
        cond_zero_point: zc,
        cond_strides: cond_bc.a_strides,
        values: mm,
    };
    let (c16, c8): (Vec<i16>, Vec<i8>) = (
        cond.iter().map(|&v| v as i16).collect(),
        cond.iter().map(|&v| v as i8).collect(),
    );
    let (a16, a8, b16, b8) = (c.a.i16s(), c.a.i8s(), c.b.i16s(), c.b.i8s());
    let got = with_output(y_wide, c.rows * c.cols, |y8, y16| {
        macro_rules! out {
            ($c:expr, $a:expr, $b:expr) => {
                match (y8, y16) {
                    (Some(y), _) => select_s16(&p, &bc, $c, $a, $b, y),
                    (_, Some(y)) => select_s16(&p, &bc, $c, $a, $b, y),
                    _ => {}
                }
            };
        }
        macro_rules! sides {
            ($c:expr) => {
                match (c.a.wide, c.b.wide) {
                    (true, true) => out!($c, &a16[..], &b16[..]),
                    (true, false) => out!($c, &a16[..], &b8[..]),
                    (false, true) => out!($c, &a8[..], &b16[..]),
                    (false, false) => out!($c, &a8[..], &b8[..]),
                }
            };
        }
        match cond_wide {
            true => sides!(&c16[..]),
            false => sides!(&c8[..]),
        }
    });
    (want, got)
}

#[derive(Clone, Debug)]
struct LayerNormCase {
    rows: usize,
    len: usize,
    x: Side,
    gamma: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i8>,
    epsilon: i64,
    zy: i32,
    act: (i32, i32),
}

fn layer_norm_case(x_wide: bool, y_wide: bool) -> impl Strategy<Value = LayerNormCase> {
    // Rows of 256 and more int16 values reach spreads beyond 2^46, where the
    // root is taken over `u128`.
    let len = prop_oneof![3 => 1usize..=24, 1 => 256usize..=600];
    (1usize..=2, len).prop_flat_map(move |(rows, len)| {
        // Sometimes a constant row: its spread is 0 and ε alone sets the root.
        let x = prop_oneof![
            4 => side(x_wide, rows * len),
            1 => side(x_wide, 1).prop_map(move |s| Side {
                values: vec![s.values[0]; rows * len],
                ..s
            }),
        ];
        (
            x,
            vec(w8(), len),
            vec(-(1i32 << 20)..(1 << 20), len),
            vec(multiplier(), len),
            vec(-20i8..=0, len),
            prop_oneof![Just(0i64), 0i64..=(1 << 40)],
            out_side(y_wide),
        )
            .prop_map(
                move |(x, gamma, bias, multiplier, shift, epsilon, (act, zy))| LayerNormCase {
                    rows,
                    len,
                    x,
                    gamma,
                    bias,
                    multiplier,
                    shift,
                    epsilon,
                    zy,
                    act,
                },
            )
    })
}

/// `⌊√v⌋` by search from a float estimate.
fn naive_isqrt(v: u128) -> u128 {
    let mut r = (v as f64).sqrt() as u128;
    while r * r > v {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= v {
        r += 1;
    }
    r
}

/// NUMERICS.md § LayerNorm, in `i128`.
fn layer_norm_naive(c: &LayerNormCase) -> Vec<i32> {
    let n = c.len as i128;
    let mut y = Vec::new();
    for row in c.x.values.chunks(c.len) {
        let cs: Vec<i128> = row.iter().map(|&v| (v - c.x.zero_point) as i128).collect();
        let s: i128 = cs.iter().sum();
        let q: i128 = cs.iter().map(|v| v * v).sum();
        let t = (n * q - s * s).max(0) + c.epsilon as i128;
        let root = naive_isqrt((t as u128) << 16) as i128;
        for (i, &ci) in cs.iter().enumerate() {
            let d = n * ci - s;
            let z = match root {
                0 => 0,
                r => {
                    // Halves away from zero.
                    let q = (2 * d.abs() * (1 << 20) + r) / (2 * r);
                    let q = q.min(i32::MAX as i128);
                    if d < 0 {
                        -q
                    } else {
                        q
                    }
                }
            } as i32;
            let acc = z
                .wrapping_mul(i32::from(c.gamma[i]))
                .wrapping_add(c.bias[i]);
            let v = naive_requantize(acc as i128, c.multiplier[i], i32::from(c.shift[i]))
                .saturating_add(c.zy);
            y.push(v.clamp(c.act.0, c.act.1));
        }
    }
    y
}

fn run_layer_norm(c: &LayerNormCase, y_wide: bool) -> Vec<i32> {
    let p = LayerNormParams {
        rows: c.rows,
        len: c.len,
        input_zero_point: c.x.zero_point,
        output_zero_point: c.zy,
        epsilon: c.epsilon,
        act_min: c.act.0,
        act_max: c.act.1,
    };
    let (x16, x8) = (c.x.i16s(), c.x.i8s());
    let (g, b, m, s) = (&c.gamma[..], &c.bias[..], &c.multiplier[..], &c.shift[..]);
    with_output(y_wide, c.rows * c.len, |y8, y16| {
        match (c.x.wide, y8, y16) {
            (true, Some(y), _) => layer_norm_s16(&p, &x16[..], g, b, m, s, y),
            (true, _, Some(y)) => layer_norm_s16(&p, &x16[..], g, b, m, s, y),
            (false, Some(y), _) => layer_norm_s16(&p, &x8[..], g, b, m, s, y),
            (false, _, Some(y)) => layer_norm_s16(&p, &x8[..], g, b, m, s, y),
            _ => {}
        }
    })
}

#[derive(Clone, Debug)]
struct ReduceCase {
    shape: [usize; 3],
    axes: u8,
    x: Side,
    zy: i32,
    act: (i32, i32),
    multiplier: i32,
    shift: i32,
}

fn reduce_case(x_wide: bool, y_wide: bool) -> impl Strategy<Value = ReduceCase> {
    ([1usize..=4, 1usize..=5, 1usize..=6], 1u8..8).prop_flat_map(move |(shape, axes)| {
        (
            side(x_wide, shape.iter().product()),
            out_side(y_wide),
            multiplier(),
            -20i32..=1,
        )
            .prop_map(move |(x, (act, zy), multiplier, shift)| ReduceCase {
                shape,
                axes,
                x,
                zy,
                act,
                multiplier,
                shift,
            })
    })
}

/// Which reduction a case runs (ReduceL2 with its `eps` word).
#[derive(Clone, Copy, Debug)]
enum Reduction {
    Sum,
    Max,
    L2(u32),
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        Just(Reduction::Sum),
        Just(Reduction::Max),
        prop_oneof![Just(0u32), any::<u32>()].prop_map(Reduction::L2),
    ]
}

/// The largest `r` with `r² <= n`, by bisection.
fn floor_root(n: i128) -> i128 {
    let (mut lo, mut hi) = (0i128, 1i128 << 63);
    while lo < hi {
        let mid = (lo + hi + 1) / 2;
        if mid * mid <= n {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The sum, the max or the Euclidean norm of `x − zx` over the reduced
/// axes by explicit coordinates, requantized, in `i128`. The norm is
/// `⌊√(S · 2^16 + eps)⌋` of an int8 input and `⌊√(S · 2^8 + eps)⌋` of an
/// int16 one (NUMERICS.md).
fn reduce_naive(c: &ReduceCase, how: Reduction) -> Vec<i32> {
    let [d0, d1, d2] = c.shape;
    let reduced = |d: usize| c.axes & (1 << d) != 0;
    let range = |d: usize, i: usize| if reduced(d) { 0..c.shape[d] } else { i..i + 1 };
    let kept = |d: usize| if reduced(d) { 1 } else { c.shape[d] };
    let mut y = Vec::new();
    for i0 in 0..kept(0) {
        for i1 in 0..kept(1) {
            for i2 in 0..kept(2) {
                let mut values = Vec::new();
                for j0 in range(0, i0) {
                    for j1 in range(1, i1) {
                        for j2 in range(2, i2) {
                            let v = c.x.values[(j0 * d1 + j1) * d2 + j2] - c.x.zero_point;
                            values.push(v as i128);
                        }
                    }
                }
                let acc = match how {
                    Reduction::Max => values.iter().copied().max().unwrap_or(0),
                    Reduction::Sum => values.iter().sum(),
                    Reduction::L2(eps) => {
                        let squares: i128 = values.iter().map(|v| v * v).sum();
                        let frac = if c.x.wide { 8 } else { 16 };
                        floor_root((squares << frac) + i128::from(eps))
                    }
                };
                let v = naive_requantize(acc, c.multiplier, c.shift).saturating_add(c.zy);
                y.push(v.clamp(c.act.0, c.act.1));
            }
        }
    }
    let _ = d0;
    y
}

fn run_reduce(c: &ReduceCase, how: Reduction, y_wide: bool) -> Vec<i32> {
    let p = ReduceParams {
        shape: [c.shape[0], c.shape[1], c.shape[2], 1, 1, 1],
        rank: 3,
        axes: c.axes,
        input_zero_point: c.x.zero_point,
        output_zero_point: c.zy,
        multiplier: c.multiplier,
        shift: c.shift,
        act_min: c.act.0,
        act_max: c.act.1,
    };
    let len = (0..3)
        .filter(|&d| c.axes & (1 << d) == 0)
        .map(|d| c.shape[d])
        .product();
    let (x16, x8) = (c.x.i16s(), c.x.i8s());
    fn run<X, Y>(p: &ReduceParams, how: Reduction, x: &[X], y: &mut [Y])
    where
        X: medq::kernels::Lane + Into<i32> + Default,
        Y: medq::kernels::Lane,
    {
        match how {
            Reduction::Sum => reduce_s16(p, false, x, y),
            Reduction::Max => reduce_s16(p, true, x, y),
            Reduction::L2(eps) => reduce_l2_s16(p, eps, x, y),
        }
    }
    with_output(y_wide, len, |y8, y16| match (c.x.wide, y8, y16) {
        (true, Some(y), _) => run(&p, how, &x16[..], y),
        (true, _, Some(y)) => run(&p, how, &x16[..], y),
        (false, Some(y), _) => run(&p, how, &x8[..], y),
        (false, _, Some(y)) => run(&p, how, &x8[..], y),
        _ => {}
    })
}

#[derive(Clone, Debug)]
struct ConcatCase {
    outer: usize,
    /// The input's length along the axis, and the output's before and after it.
    len: usize,
    before: usize,
    after: usize,
    inner: usize,
    x: Side,
    zy: i32,
    multiplier: i32,
    shift: i32,
}

impl ConcatCase {
    fn part(&self) -> ConcatPart {
        ConcatPart {
            outer: self.outer,
            in_block: self.len * self.inner,
            out_block: (self.before + self.len + self.after) * self.inner,
            out_start: self.before * self.inner,
            input_zero_point: self.x.zero_point,
            output_zero_point: self.zy,
            multiplier: self.multiplier,
            shift: self.shift,
        }
    }
}

fn concat_case(x_wide: bool, y_wide: bool) -> impl Strategy<Value = ConcatCase> {
    (1usize..=3, 1usize..=4, 0usize..=3, 0usize..=3, 1usize..=3).prop_flat_map(
        move |(outer, len, before, after, inner)| {
            (
                side(x_wide, outer * len * inner),
                out_side(y_wide),
                multiplier(),
                -12i32..=8,
            )
                .prop_map(move |(x, (_, zy), multiplier, shift)| ConcatCase {
                    outer,
                    len,
                    before,
                    after,
                    inner,
                    x,
                    zy,
                    multiplier,
                    shift,
                })
        },
    )
}

/// Every output position by its coordinates `(o, a, i)`: inside the input's
/// slot `x − zx` requantized, plus `zy`, saturated to the output type;
/// elsewhere the value the output held (`with_output`'s fill).
fn concat_naive(c: &ConcatCase, y_wide: bool) -> Vec<i32> {
    let (lo, hi, fill) = match y_wide {
        true => (-32768, 32767, 0x5555),
        false => (-128, 127, 0x55),
    };
    let mut y = Vec::new();
    for o in 0..c.outer {
        for a in 0..c.before + c.len + c.after {
            for i in 0..c.inner {
                let v = match a.checked_sub(c.before).filter(|&k| k < c.len) {
                    Some(k) => {
                        let x = c.x.values[(o * c.len + k) * c.inner + i] - c.x.zero_point;
                        let v = naive_requantize(x as i128, c.multiplier, c.shift);
                        v.saturating_add(c.zy).clamp(lo, hi)
                    }
                    None => fill,
                };
                y.push(v);
            }
        }
    }
    y
}

fn run_concat(c: &ConcatCase, y_wide: bool) -> Vec<i32> {
    let p = c.part();
    let (x16, x8) = (c.x.i16s(), c.x.i8s());
    with_output(y_wide, c.outer * p.out_block, |y8, y16| {
        match (c.x.wide, y8, y16) {
            (true, Some(y), _) => concat_part_s16(&p, &x16[..], y),
            (true, _, Some(y)) => concat_part_s16(&p, &x16[..], y),
            (false, Some(y), _) => concat_part_s16(&p, &x8[..], y),
            (false, _, Some(y)) => concat_part_s16(&p, &x8[..], y),
            _ => {}
        }
    })
}

#[derive(Clone, Debug)]
struct ConvTransposeCase {
    p: ConvTransposeParams,
    x: Side,
    weights: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i8>,
}

fn conv_transpose_case(x_wide: bool, y_wide: bool) -> impl Strategy<Value = ConvTransposeCase> {
    (
        any::<bool>(),
        1usize..=2,
        1usize..=3,
        1usize..=3,
        transposed_axis(false),
    )
        .prop_flat_map(move |(flat, groups, cin_g, cout_g, wa)| {
            (transposed_axis(flat), Just((groups, cin_g, cout_g, wa)))
        })
        .prop_flat_map(move |(ha, (groups, cin_g, cout_g, wa))| {
            let (cin, cout) = (groups * cin_g, groups * cout_g);
            let n_w = cout * cin_g * ha.1 * wa.1;
            (
                side(x_wide, cin * ha.0 * wa.0),
                vec(w8(), n_w),
                vec(-100_000i32..=100_000, cout),
                vec(multiplier(), cout),
                vec(-20i8..=1, cout),
                out_side(y_wide),
            )
                .prop_map(move |(x, weights, bias, multiplier, shift, (act, zy))| {
                    let p = ConvTransposeParams {
                        in_channels: cin,
                        in_h: ha.0,
                        in_w: wa.0,
                        out_channels: cout,
                        out_h: ha.5,
                        out_w: wa.5,
                        kernel_h: ha.1,
                        kernel_w: wa.1,
                        stride_h: ha.2,
                        stride_w: wa.2,
                        dilation_h: ha.3,
                        dilation_w: wa.3,
                        pad_top: ha.4,
                        pad_left: wa.4,
                        groups,
                        input_zero_point: x.zero_point,
                        output_zero_point: zy,
                        act_min: act.0,
                        act_max: act.1,
                    };
                    ConvTransposeCase {
                        p,
                        x,
                        weights,
                        bias,
                        multiplier,
                        shift,
                    }
                })
        })
}

/// Every output as the scatter defines it: input `(ic, iy, ix)` meets tap
/// `(ky, kx)` at output `(iy·stride − pad + ky·dilation, …)`; the sum over
/// all that land on an output, in `i128`, requantized.
fn conv_transpose_naive(c: &ConvTransposeCase) -> Vec<i32> {
    let p = &c.p;
    let x: Vec<i64> =
        c.x.values
            .iter()
            .map(|&v| (v - c.x.zero_point) as i64)
            .collect();
    let acc = scatter_sum(p, &x, &c.weights, &c.bias);
    let plane = p.out_h * p.out_w;
    acc.iter()
        .enumerate()
        .map(|(i, &a)| {
            let oc = i / plane;
            let v = naive_requantize(a, c.multiplier[oc], c.shift[oc] as i32);
            v.saturating_add(p.output_zero_point)
                .clamp(p.act_min, p.act_max)
        })
        .collect()
}

fn run_conv_transpose(c: &ConvTransposeCase, y_wide: bool) -> Vec<i32> {
    let p = &c.p;
    let (x16, x8) = (c.x.i16s(), c.x.i8s());
    let (w, b, m, s) = (&c.weights[..], &c.bias[..], &c.multiplier[..], &c.shift[..]);
    let n = p.out_channels * p.out_h * p.out_w;
    with_output(y_wide, n, |y8, y16| match (c.x.wide, y8, y16) {
        (true, Some(y), _) => conv_transpose_s16(p, &x16[..], w, b, m, s, y),
        (true, _, Some(y)) => conv_transpose_s16(p, &x16[..], w, b, m, s, y),
        (false, Some(y), _) => conv_transpose_s16(p, &x8[..], w, b, m, s, y),
        (false, _, Some(y)) => conv_transpose_s16(p, &x8[..], w, b, m, s, y),
        _ => {}
    })
}

/// Which sides are int16, from 2 or 3 bits.
fn sides(bits: u8) -> (bool, bool, bool) {
    (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn add_s16_matches_naive_for_every_mix(
        (bits, c) in (0u8..8).prop_flat_map(|bits| {
            let (a, b, y) = sides(bits);
            (Just(bits), add_case(a, b, y))
        })
    ) {
        let (_, _, y) = sides(bits);
        prop_assert_eq!(run_add(&c, y), add_naive(&c));
    }

    #[test]
    fn sub_mul_div_min_max_s16_match_naive_for_every_mix(
        (bits, c) in (0u8..8).prop_flat_map(|bits| {
            let (a, b, y) = sides(bits);
            (Just(bits), add_case(a, b, y))
        })
    ) {
        let (_, _, y) = sides(bits);
        for op in WIDE_OPS {
            prop_assert_eq!(run_wide(&c, op, y), wide_naive(&c, op), "{:?}", op);
        }
    }

    #[test]
    fn select_s16_matches_naive_for_every_mix(
        (bits, cond_wide, c) in (0u8..8, any::<bool>()).prop_flat_map(|(bits, cond_wide)| {
            let (a, b, y) = sides(bits);
            (Just(bits), Just(cond_wide), add_case(a, b, y))
        })
    ) {
        let (_, _, y) = sides(bits);
        let (want, got) = select_naive_and_run(&c, cond_wide, y);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sub_mul_div_min_max_s16_on_int8_lanes_are_the_int8_kernels(c in add_case(false, false, false)) {
        let bc = Broadcast4::new(&[c.rows, c.cols], &[c.rows, c.cols][2 - usize::from(c.b_shape == 1)..])
            .expect("broadcasts");
        // The same shape, or b a row: both layouts of the int8 kernels.
        let (a, b) = (c.a.i8s(), c.b.i8s());
        let b = match c.b_shape {
            1 => b,
            _ => (0..c.rows * c.cols).map(|i| b[i % b.len()]).collect(),
        };
        let (mp, mm) = (mul_params(&c.p), min_max_params(&c.p));
        let n = c.rows * c.cols;
        for op in WIDE_OPS {
            let (mut y8, mut y16) = (vec![0i8; n], vec![1i8; n]);
            match op {
                Wide::Sub => {
                    sub_s8(&c.p, &bc, &a, &b, &mut y8);
                    sub_s16(&c.p, &bc, &a[..], &b[..], &mut y16[..]);
                }
                Wide::Mul => {
                    mul_s8(&mp, &bc, &a, &b, &mut y8);
                    mul_s16(&mp, &bc, &a[..], &b[..], &mut y16[..]);
                }
                Wide::Div => {
                    div_s8(&mp, &bc, &a, &b, &mut y8);
                    div_s16(&mp, &bc, &a[..], &b[..], &mut y16[..]);
                }
                Wide::Min => {
                    min_s8(&mm, &bc, &a, &b, &mut y8);
                    min_s16(&mm, &bc, &a[..], &b[..], &mut y16[..]);
                }
                Wide::Max => {
                    max_s8(&mm, &bc, &a, &b, &mut y8);
                    max_s16(&mm, &bc, &a[..], &b[..], &mut y16[..]);
                }
            }
            prop_assert_eq!(&y8, &y16, "{:?}", op);
        }
    }

    #[test]
    fn layer_norm_s16_matches_naive_for_every_mix(
        (bits, c) in (0u8..4).prop_flat_map(|bits| {
            let (x, y, _) = sides(bits);
            (Just(bits), layer_norm_case(x, y))
        })
    ) {
        let (_, y, _) = sides(bits);
        prop_assert_eq!(run_layer_norm(&c, y), layer_norm_naive(&c));
    }

    #[test]
    fn reduce_s16_and_reduce_l2_s16_match_naive_for_every_mix(
        (bits, c) in (0u8..4).prop_flat_map(|bits| {
            let (x, y, _) = sides(bits);
            (Just(bits), reduce_case(x, y))
        }),
        how in reduction(),
    ) {
        let (_, y, _) = sides(bits);
        prop_assert_eq!(run_reduce(&c, how, y), reduce_naive(&c, how));
    }

    #[test]
    fn conv_transpose_s16_matches_naive_for_every_mix(
        (bits, c) in (0u8..4).prop_flat_map(|bits| {
            let (x, y, _) = sides(bits);
            (Just(bits), conv_transpose_case(x, y))
        })
    ) {
        let (_, y, _) = sides(bits);
        prop_assert_eq!(run_conv_transpose(&c, y), conv_transpose_naive(&c));
    }

    #[test]
    fn conv_transpose_s16_on_int8_lanes_is_the_int8_kernel(c in conv_transpose_case(false, false)) {
        let p = &c.p;
        let (w, b, m, s) = (&c.weights[..], &c.bias[..], &c.multiplier[..], &c.shift[..]);
        let n = p.out_channels * p.out_h * p.out_w;
        let x = c.x.i8s();
        let (mut y8, mut y16) = (vec![0i8; n], vec![0i8; n]);
        conv_transpose_s8(p, &x, w, b, m, s, &mut y8);
        conv_transpose_s16(p, &x[..], w, b, m, s, &mut y16[..]);
        prop_assert_eq!(y8, y16);
    }

    #[test]
    fn concat_part_s16_matches_naive_for_every_mix(
        (bits, c) in (0u8..4).prop_flat_map(|bits| {
            let (x, y, _) = sides(bits);
            (Just(bits), concat_case(x, y))
        })
    ) {
        let (_, y, _) = sides(bits);
        prop_assert_eq!(run_concat(&c, y), concat_naive(&c, y));
    }
}

#[test]
fn residual_kernels_on_int8_lanes_are_the_int8_kernels() {
    // One fixed case each, int8 everywhere: the int16 entry points must give
    // the int8 kernels' bytes (the same formula, one code path).
    let p = AddParams {
        a_zero_point: 3,
        b_zero_point: -7,
        output_zero_point: 5,
        left_shift: 20,
        a_multiplier: 1_500_000_000,
        a_shift: -3,
        b_multiplier: 1_200_000_000,
        b_shift: -2,
        out_multiplier: 1_800_000_000,
        out_shift: -14,
        act_min: -128,
        act_max: 127,
    };
    let bc = Broadcast4::new(&[2, 4], &[4]).unwrap();
    let a: Vec<i8> = (0..8).map(|i| (i * 37 - 128) as i8).collect();
    let b: Vec<i8> = vec![-128, -1, 64, 127];
    let (mut y8, mut y16) = ([0i8; 8], [0i8; 8]);
    add_s8(&p, &bc, &a, &b, &mut y8);
    add_s16(&p, &bc, &a[..], &b[..], &mut y16[..]);
    assert_eq!(y8, y16);
    assert!(y8.iter().any(|&v| v != y8[0]), "a case that varies: {y8:?}");
}

#[test]
fn residual_kernels_refuse_bad_int16_sides() {
    let p = AddParams {
        a_zero_point: 0,
        b_zero_point: 0,
        output_zero_point: 0,
        left_shift: 15,
        a_multiplier: 1 << 30,
        a_shift: 0,
        b_multiplier: 1 << 30,
        b_shift: 0,
        out_multiplier: 1 << 30,
        out_shift: -13,
        act_min: -32768,
        act_max: 32767,
    };
    let bc = Broadcast4::new(&[2], &[2]).unwrap();
    let (a, b) = ([i16::MAX, i16::MIN], [i16::MIN, i16::MAX]);
    let mut y = [7i16; 2];
    add_s16(&p, &bc, &a[..], &b[..], &mut y[..]);
    // Each side (x << 15)·½, the sum (32767 − 32768)·2^14 = −2^14, times
    // ½·2^−13: exactly −1.
    assert_eq!(y, [-1, -1]);
    for bad in [
        AddParams {
            left_shift: 16,
            ..p
        },
        AddParams {
            a_zero_point: 1,
            ..p
        },
        AddParams {
            output_zero_point: 1,
            ..p
        },
    ] {
        let mut y = [7i16; 2];
        add_s16(&bad, &bc, &a[..], &b[..], &mut y[..]);
        assert_eq!(y, [7, 7], "{bad:?}");
    }
    // An int8 output takes an int8 window only.
    let mut y8 = [7i8; 2];
    add_s16(&p, &bc, &a[..], &b[..], &mut y8[..]);
    assert_eq!(y8, [7, 7]);
}

#[test]
fn layer_norm_s16_takes_the_root_of_a_wide_spread_exactly() {
    // 1024 values at ±32767: len·Q − S² = 2^20 · 32767² ≈ 2^50, whose root
    // at 8 fraction bits needs more than 64 bits before the square root.
    let len = 1024;
    let values: Vec<i32> = (0..len)
        .map(|i| match i % 3 {
            0 => 32767,
            1 => -32767,
            _ => (i as i32 * 61) % 30000,
        })
        .collect();
    let c = LayerNormCase {
        rows: 1,
        len,
        x: Side {
            wide: true,
            zero_point: 0,
            values,
        },
        gamma: vec![127; len],
        bias: vec![0; len],
        multiplier: vec![1 << 30; len],
        shift: vec![-3; len],
        epsilon: 0,
        zy: 0,
        act: (-32768, 32767),
    };
    let y = run_layer_norm(&c, true);
    assert_eq!(y, layer_norm_naive(&c));
    // About ±1.2 standard deviations: 1.2 · 2^12 · 127 · 2^-4 ≈ 39000, so
    // the extremes sit at or near the int16 rails.
    assert!(y[0] > 30000 && y[1] < -30000, "{:?}", &y[..3]);
}

/// `lut_s16` by its definition: the segment and fraction by division, the
/// interpolation rounded by floor division in `i64`.
fn lut_s16_naive(table: &[i32], x: i16) -> i16 {
    let u = x as i64 + 32768;
    let (k, f) = ((u / 128) as usize, u % 128);
    let (a, b) = (table[k] as i64, table[k + 1] as i64);
    let v = a + ((b - a) * f + 64).div_euclid(128);
    v.clamp(-32768, 32767) as i16
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lut_s16_interpolates_as_documented(
        table in vec(x16().prop_map(i32::from), LUT_S16_ENTRIES),
        x in vec(x16(), 1..64),
    ) {
        let table: [i32; LUT_S16_ENTRIES] = table.try_into().unwrap();
        let mut y = vec![0x5555i16; x.len()];
        lut_s16(&table, &x, &mut y);
        let want: Vec<i16> = x.iter().map(|&v| lut_s16_naive(&table, v)).collect();
        prop_assert_eq!(y, want);
    }
}

#[test]
fn lut_s16_hits_every_entry_and_refuses_entries_beyond_i16() {
    // A table of t[k] = 64·k − 16384: the line through every entry, so the
    // interpolation is exact everywhere: y = (x + 32768)/2 − 16384 = x/2.
    let table: [i32; LUT_S16_ENTRIES] = std::array::from_fn(|k| 64 * k as i32 - 16384);
    let x: Vec<i16> = vec![-32768, -32767, -1, 0, 1, 127, 128, 32766, 32767];
    let mut y = vec![0i16; x.len()];
    lut_s16(&table, &x, &mut y);
    let want: Vec<i16> = x
        .iter()
        .map(|&v| (v as f64 / 2.0).floor() as i16 + (v & 1))
        .collect();
    assert_eq!(y, want);
    let mut bad = table;
    bad[512] = 32768;
    let mut y = vec![7i16; x.len()];
    lut_s16(&bad, &x, &mut y);
    assert!(y.iter().all(|&v| v == 7));
}

// ---------------------------------------------------------------------------
// Log

proptest! {
    /// `log_s16` is `round(M·(2^16·log2(x) + bias))` with `M` the real
    /// multiplier, within one step (the integer log2 is at most 2/65536
    /// below the real one, and `M ≤ 1/4` here), saturated to `i16`; and
    /// `low_output` for every `x` under `low_input`.
    #[test]
    fn log_s16_is_the_rounded_scaled_log2(
        x in vec(x16(), 1..64),
        bias in -(1i32 << 24)..(1 << 24),
        m in (1i32 << 30)..=i32::MAX,
        shift in MIN_SHIFT..=-2,
        low_input in prop_oneof![3 => Just(1i32), 1 => 1i32..=32768],
        low_output in -32768i32..=32767,
    ) {
        let p = LogParams { bias, multiplier: m, shift, low_input, low_output };
        let mut y = vec![0i16; x.len()];
        log_s16(&p, &x, &mut y);
        let real_m = f64::from(m) * 2f64.powi(shift - 31);
        for (&xi, &yi) in x.iter().zip(&y) {
            let v = i32::from(xi);
            if v < low_input {
                prop_assert_eq!(i32::from(yi), low_output, "x {}", v);
            } else {
                let want = (real_m * (65536.0 * f64::from(v).log2() + f64::from(bias)))
                    .round()
                    .clamp(-32768.0, 32767.0);
                prop_assert!((f64::from(yi) - want).abs() <= 1.0, "x {} y {} want {}", v, yi, want);
            }
        }
    }
}
