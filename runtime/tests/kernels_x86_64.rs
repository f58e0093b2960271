//! The AVX2 (and AVX-512 VNNI) kernels against the reference kernels, byte
//! for byte, over
//! random shapes (tails of every vector width, reductions of 1, single
//! output positions, chunked reductions), zero points across `i8`, extreme
//! weights, shifts across (and beyond) the valid range, multipliers near
//! 2^31, activation clamps and saturation.
//!
//! Every case first checks that the AVX2 kernel's `_takes` accepts it, so a
//! comparison never passes merely because the kernel fell back to the
//! reference. Without AVX2 the tests return early (they print why), and
//! so do the VNNI tests without AVX-512 VNNI.
#![cfg(target_arch = "x86_64")]

use medq::kernels::x86_64::*;
use medq::kernels::*;
use proptest::collection::vec;
use proptest::prelude::*;

mod recurrent_cases;
use recurrent_cases::recurrent_case;

mod int16_cases;
#[cfg(feature = "int16-activations")]
use int16_cases::{act16, w16s, x16s};

fn have_avx2() -> bool {
    let ok = avx2_available();
    if !ok {
        eprintln!("AVX2 not available: the x86-64 kernel tests do not run here");
    }
    ok
}

fn have_vnni() -> bool {
    let ok = vnni_available();
    if !ok {
        eprintln!("AVX-512 VNNI not available: the VNNI kernel tests do not run here");
    }
    ok
}

// ---------------------------------------------------------------------------
// Strategies

fn zp() -> impl Strategy<Value = i32> {
    prop_oneof![6 => -128i32..=127, 1 => Just(-128), 1 => Just(127)]
}

/// Q31 multipliers: normalized, near 2^31, 2^30, tiny, 0, and (not produced
/// by the converter, but the arithmetic is defined for them) negative.
fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => (1i32 << 30)..=i32::MAX,
        2 => (i32::MAX - 16)..=i32::MAX,
        1 => Just(1 << 30),
        1 => Just(0),
        1 => 1i32..(1 << 30),
        1 => i32::MIN..0,
    ]
}

/// Shifts: the typical range for a layer, the whole valid range, its ends,
/// and a few out-of-range values (clamped by `requantize`).
fn shift(typical: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => typical,
        3 => -31i32..=30,
        1 => Just(-31),
        1 => Just(30),
        1 => Just(-2),
        1 => Just(-1),
        1 => -128i32..=127,
    ]
}

fn act() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-128, 127)),
        3 => (-128i32..=127, -128i32..=127).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

fn i8s(n: usize) -> impl Strategy<Value = Vec<i8>> {
    vec(any::<i8>(), n)
}

/// Weights, sometimes mostly at the extremes −128 / 127.
fn weights(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        2 => vec(any::<i8>(), n),
        1 => vec(prop_oneof![Just(-128i8), Just(127i8), any::<i8>()], n),
    ]
}

/// Biases: moderate, and sometimes huge (the wrapping sum must still match).
fn biases(n: usize) -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        4 => vec(-100_000i32..=100_000, n),
        1 => vec(any::<i32>(), n),
    ]
}

/// A conv or FC call with its operands.
#[derive(Clone, Debug)]
struct Case<P> {
    p: P,
    x: Vec<i8>,
    w: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
}

fn with_operands<P: Clone + std::fmt::Debug>(
    p: P,
    n_x: usize,
    n_w: usize,
    channels: usize,
    typical_shift: std::ops::RangeInclusive<i32>,
) -> impl Strategy<Value = Case<P>> {
    (
        Just(p),
        i8s(n_x),
        weights(n_w),
        biases(channels),
        vec(multiplier(), channels),
        vec(shift(typical_shift).prop_map(|s| s as i8), channels),
    )
        .prop_map(|(p, x, w, bias, mult, shift)| Case {
            p,
            x,
            w,
            bias,
            mult,
            shift,
        })
}

/// One window axis `(in, kernel, stride, dilation, pad_begin, out)` valid in
/// floor mode, with inputs up to `max_in` long.
fn axis(
    max_in: usize,
    max_k: usize,
    max_s: usize,
    max_d: usize,
) -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    (
        1..=max_in,
        1..=max_k,
        1..=max_s,
        1..=max_d,
        0usize..=3,
        0usize..=3,
    )
        .prop_filter_map("window longer than padded input", |(i, k, s, d, pb, pe)| {
            conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, o))
        })
}

const FLAT: (usize, usize, usize, usize, usize, usize) = (1, 1, 1, 1, 0, 1);

type ConvCase = Case<ConvParams>;

/// A kernel with the reference convolution's signature.
type ConvKernel = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);
/// A kernel with the reference fully-connected signature.
type FcKernel = fn(&FullyConnectedParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

/// Convolution geometry from its axes, channels and quantization.
#[allow(clippy::too_many_arguments)]
fn conv_params(
    h: (usize, usize, usize, usize, usize, usize),
    w: (usize, usize, usize, usize, usize, usize),
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    in_zp: i32,
    out_zp: i32,
    (act_min, act_max): (i32, i32),
) -> ConvParams {
    ConvParams {
        in_channels,
        in_h: h.0,
        in_w: w.0,
        out_channels,
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
        input_zero_point: in_zp,
        output_zero_point: out_zp,
        act_min,
        act_max,
    }
}

fn conv_operands(p: ConvParams) -> impl Strategy<Value = ConvCase> {
    let cin_g = p.in_channels / p.groups;
    let n_w = p.out_channels * cin_g * p.kernel_h * p.kernel_w;
    let n_x = p.in_channels * p.in_h * p.in_w;
    // Accumulators grow with the reduction: keep most shifts where the
    // outputs are not all saturated.
    let k = (cin_g * p.kernel_h * p.kernel_w) as f64;
    let top = -(k.log2() as i32) - 8;
    with_operands(p, n_x, n_w, p.out_channels, (top - 8).max(-31)..=top)
}

/// General convolutions: 1-D or 2-D, groups 1–3, several channels.
fn conv_case() -> impl Strategy<Value = ConvCase> {
    let geometry = any::<bool>().prop_flat_map(|one_d| {
        let h = if one_d {
            Just(FLAT).boxed()
        } else {
            axis(7, 3, 2, 2).boxed()
        };
        (
            h,
            axis(40, 5, 3, 2),
            1usize..=3,
            1usize..=9,
            1usize..=9,
            zp(),
            zp(),
            act(),
        )
    });
    geometry.prop_flat_map(|(h, w, groups, cin_g, cout_g, izp, ozp, act)| {
        let p = conv_params(h, w, groups * cin_g, groups * cout_g, groups, izp, ozp, act);
        conv_operands(p)
    })
}

/// The first layers: one input channel, k 1–9, stride 1–3, long rows.
fn single_channel_case() -> impl Strategy<Value = ConvCase> {
    (axis(300, 9, 3, 2), 1usize..=20, zp(), zp(), act()).prop_flat_map(
        |(w, cout, izp, ozp, act)| conv_operands(conv_params(FLAT, w, 1, cout, 1, izp, ozp, act)),
    )
}

/// Depthwise: groups = channels, multiplier 1–3, any stride and dilation.
fn depthwise_case() -> impl Strategy<Value = ConvCase> {
    (
        axis(12, 5, 3, 2),
        axis(40, 5, 4, 3),
        1usize..=5,
        1usize..=3,
        zp(),
        zp(),
        act(),
    )
        .prop_flat_map(|(h, w, c, mult, izp, ozp, act)| {
            conv_operands(conv_params(h, w, c, c * mult, c, izp, ozp, act))
        })
}

fn run_conv(c: &ConvCase, f: ConvKernel) -> Vec<i8> {
    let mut y = vec![0x55u8 as i8; c.p.out_channels * c.p.out_h * c.p.out_w];
    f(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
    y
}

type FcCase = Case<FullyConnectedParams>;

fn fc_case() -> impl Strategy<Value = FcCase> {
    let k = prop_oneof![
        0usize..=70,
        Just(1),
        Just(16),
        Just(17),
        380usize..=400,
        Just(640)
    ];
    (1usize..=3, k, 1usize..=20, zp(), zp(), act()).prop_flat_map(
        |(rows, k, n, in_zp, out_zp, (act_min, act_max))| {
            let p = FullyConnectedParams {
                rows,
                in_features: k,
                out_features: n,
                input_zero_point: in_zp,
                output_zero_point: out_zp,
                act_min,
                act_max,
            };
            let top = -((k.max(1) as f64).log2() as i32) - 8;
            with_operands(p, rows * k, n * k, n, (top - 8).max(-31)..=top)
        },
    )
}

// ---------------------------------------------------------------------------
// Pools

fn pool_params(
    c: usize,
    h: (usize, usize, usize, usize, usize, usize),
    w: (usize, usize, usize, usize, usize, usize),
    count_include_pad: bool,
    zero_point: i32,
) -> PoolParams {
    PoolParams {
        channels: c,
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
    }
}

#[derive(Clone, Debug)]
struct PoolCase {
    p: PoolParams,
    x: Vec<i8>,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    let h = prop_oneof![Just(FLAT).boxed(), axis(12, 4, 3, 2).boxed()];
    let w = prop_oneof![axis(80, 5, 4, 3).boxed(), axis(30, 12, 2, 1).boxed()];
    (1usize..=3, h, w, any::<bool>(), zp())
        .prop_flat_map(|(c, h, w, cip, zp)| {
            let p = pool_params(c, h, w, cip, zp);
            let n = c * p.in_h * p.in_w;
            (Just(p), pool_data(n))
        })
        .prop_map(|(p, x)| PoolCase { p, x })
}

/// Pool inputs, sometimes full of −128 (the max pool's padding value).
fn pool_data(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        3 => i8s(n),
        1 => vec(prop_oneof![Just(-128i8), any::<i8>()], n),
    ]
}

/// 1-D side-by-side windows of 2 and 4 (the ECG models' MaxPools).
fn pool_rows_case() -> impl Strategy<Value = PoolCase> {
    (
        1usize..=3,
        prop_oneof![Just(2usize), Just(4), 1usize..=6],
        1usize..=300,
        zp(),
    )
        .prop_filter_map("input shorter than the window", |(c, k, in_w, zp)| {
            let out_w = conv_out_len(in_w, k, k, 1, 0, 0)?;
            Some(pool_params(c, FLAT, (in_w, k, k, 1, 0, out_w), false, zp))
        })
        .prop_flat_map(|p| {
            let n = p.channels * p.in_w;
            (Just(p), pool_data(n))
        })
        .prop_map(|(p, x)| PoolCase { p, x })
}

/// Large windows (global pooling and the like): 64 positions or 16 columns.
fn wide_pool_case() -> impl Strategy<Value = PoolCase> {
    (
        1usize..=3,
        1usize..=12,
        1usize..=40,
        any::<bool>(),
        zp(),
        0usize..=2,
    )
        .prop_flat_map(|(c, in_h, in_w, cip, zp, pad)| {
            // Windows of most of the input, with padding on some calls.
            (
                Just((c, in_h, in_w, cip, zp, pad)),
                1..=in_h + pad,
                1..=in_w + pad,
                1usize..=2,
            )
        })
        .prop_filter_map(
            "window too small",
            |((c, in_h, in_w, cip, zp, pad), kh, kw, s)| {
                let oh = conv_out_len(in_h, kh, s, 1, pad, pad)?;
                let ow = conv_out_len(in_w, kw, s, 1, pad, pad)?;
                (kh * kw >= 64 || kw >= 16).then(|| {
                    pool_params(
                        c,
                        (in_h, kh, s, 1, pad, oh),
                        (in_w, kw, s, 1, pad, ow),
                        cip,
                        zp,
                    )
                })
            },
        )
        .prop_flat_map(|p| {
            let n = p.channels * p.in_h * p.in_w;
            (Just(p), pool_data(n))
        })
        .prop_map(|(p, x)| PoolCase { p, x })
}

/// Global average pools (1-D and 2-D) over many channels: every row length
/// from 16 to 200, so the 32-byte sums end on every remainder, and inputs
/// at the `i8` extremes (the largest and smallest sums).
fn global_pool_case() -> impl Strategy<Value = PoolCase> {
    (1usize..=100, 1usize..=3, 16usize..=200, zp())
        .prop_flat_map(|(c, in_h, in_w, zp)| {
            let p = pool_params(
                c,
                (in_h, in_h, 1, 1, 0, 1),
                (in_w, in_w, 1, 1, 0, 1),
                false,
                zp,
            );
            let n = c * in_h * in_w;
            let data = prop_oneof![
                2 => i8s(n),
                1 => vec(prop_oneof![Just(-128i8), Just(127i8)], n),
                1 => vec(Just(127i8), n),
            ];
            (Just(p), data)
        })
        .prop_map(|(p, x)| PoolCase { p, x })
}

fn run_pool(c: &PoolCase, f: fn(&PoolParams, &[i8], &mut [i8])) -> Vec<i8> {
    let mut y = vec![0x55u8 as i8; c.p.channels * c.p.out_h * c.p.out_w];
    f(&c.p, &c.x, &mut y);
    y
}

// ---------------------------------------------------------------------------
// Add and Mul

#[derive(Clone, Debug)]
struct BinaryCase {
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
    a: Vec<i8>,
    b: Vec<i8>,
}

/// Same shapes, per-channel constants, scalars, and general broadcasts
/// (each operand derived from one output shape by dropping leading dims
/// and setting dims to 1).
fn binary_case() -> impl Strategy<Value = BinaryCase> {
    let shapes = prop_oneof![
        vec(1usize..=40, 1..=3).prop_map(|s| (s.clone(), s)),
        (1usize..=8, 1usize..=12, 1usize..=12).prop_map(|(c, h, w)| (vec![c, h, w], vec![c, 1, 1])),
        (1usize..=8, 1usize..=12, 1usize..=12).prop_map(|(c, h, w)| (vec![c, 1, 1], vec![c, h, w])),
        vec(1usize..=60, 1..=3).prop_map(|s| (s, vec![])),
        vec(1usize..=60, 1..=3).prop_map(|s| (vec![1], s)),
        (
            vec(1usize..=5, 0..=4),
            any::<u8>(),
            any::<u8>(),
            0usize..=4,
            0usize..=4
        )
            .prop_map(|(out, ma, mb, da, db)| {
                let derive = |mask: u8, drop: usize| -> Vec<usize> {
                    let drop = drop.min(out.len());
                    out.iter()
                        .enumerate()
                        .skip(drop)
                        .map(|(i, &n)| if mask >> i & 1 == 1 { 1 } else { n })
                        .collect()
                };
                (derive(ma, da), derive(mb, db))
            }),
    ];
    shapes.prop_flat_map(|(sa, sb)| {
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        (Just(sa), Just(sb), i8s(na), i8s(nb)).prop_map(|(a_shape, b_shape, a, b)| BinaryCase {
            a_shape,
            b_shape,
            a,
            b,
        })
    })
}

fn add_params() -> impl Strategy<Value = AddParams> {
    (
        (zp(), zp(), zp(), 0i32..=20),
        (multiplier(), shift(-8..=0), multiplier(), shift(-8..=0)),
        (multiplier(), shift(-28..=-10), act()),
    )
        .prop_map(
            |((za, zb, zy, ls), (am, as_, bm, bs), (om, os, (lo, hi)))| AddParams {
                a_zero_point: za,
                b_zero_point: zb,
                output_zero_point: zy,
                left_shift: ls,
                a_multiplier: am,
                a_shift: as_,
                b_multiplier: bm,
                b_shift: bs,
                out_multiplier: om,
                out_shift: os,
                act_min: lo,
                act_max: hi,
            },
        )
}

fn mul_params() -> impl Strategy<Value = MulParams> {
    (zp(), zp(), zp(), multiplier(), shift(-16..=1), act()).prop_map(
        |(za, zb, zy, m, s, (lo, hi))| MulParams {
            a_zero_point: za,
            b_zero_point: zb,
            output_zero_point: zy,
            out_multiplier: m,
            out_shift: s,
            act_min: lo,
            act_max: hi,
        },
    )
}

fn out_len(c: &BinaryCase) -> (Broadcast4, usize) {
    let bc = Broadcast4::new(&c.a_shape, &c.b_shape).expect("broadcastable shapes");
    let n = bc.out_len();
    (bc, n)
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conv_matches_reference(c in conv_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(conv_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
    }

    #[test]
    fn vnni_conv_matches_reference(c in conv_case()) {
        if !have_vnni() { return Ok(()); }
        // One input channel per group is the sliding path's; every other
        // shape here has a direct-path plan with four channels a lane.
        let one_channel = c.p.in_channels / c.p.groups == 1;
        prop_assert_eq!(conv_vnni_takes(&c.p).is_ok(), !one_channel);
        prop_assert_eq!(run_conv(&c, conv_s8_vnni), run_conv(&c, conv_s8));
    }

    #[test]
    fn single_channel_conv_matches_reference(c in single_channel_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(conv_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(depthwise_conv_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
    }

    #[test]
    fn depthwise_conv_matches_reference(c in depthwise_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(depthwise_conv_avx2_takes(&c.p), Ok(()));
        let want = run_conv(&c, conv_s8);
        prop_assert_eq!(run_conv(&c, depthwise_conv_s8_avx2), want.clone());
        // The general entry point takes depthwise shapes too.
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), want);
    }

    #[test]
    fn fully_connected_matches_reference(c in fc_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(fully_connected_avx2_takes(&c.p), Ok(()));
        let run = |f: FcKernel| {
            let mut y = vec![0x55u8 as i8; c.p.rows * c.p.out_features];
            f(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
            y
        };
        prop_assert_eq!(run(fully_connected_s8_avx2), run(fully_connected_s8));
    }

    #[test]
    fn requantization_matches_reference(
        k in 0usize..=2,
        n in 1usize..=24,
        bias0 in prop_oneof![-600i32..=600, -100_000i32..=100_000],
        m in prop_oneof![Just(1i32 << 30), Just((1 << 30) + 1), Just(i32::MAX), multiplier()],
        shifts in vec(shift(-12..=-2), 24),
        ozp in zp(),
        act in act(),
    ) {
        if !have_avx2() { return Ok(()); }
        // Consecutive biases through a multiplier of exactly 0.5·2^(s−30):
        // every other output is an exact half, the rounding rule's edge.
        let p = FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: 0,
            output_zero_point: ozp,
            act_min: act.0,
            act_max: act.1,
        };
        let x = vec![1i8; k];
        let w = vec![1i8; n * k];
        let bias: Vec<i32> = (0..n as i32).map(|i| bias0 + i).collect();
        let mult = vec![m; n];
        let shift: Vec<i8> = shifts[..n].iter().map(|&s| s as i8).collect();
        let mut want = vec![0i8; n];
        let mut got = vec![0i8; n];
        fully_connected_s8(&p, &x, &w, &bias, &mult, &shift, &mut want);
        fully_connected_s8_avx2(&p, &x, &w, &bias, &mult, &shift, &mut got);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn max_pool_matches_reference(c in pool_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(max_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, max_pool_s8_avx2), run_pool(&c, max_pool_s8));
    }

    #[test]
    fn max_pool_side_by_side_matches_reference(c in pool_rows_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(max_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, max_pool_s8_avx2), run_pool(&c, max_pool_s8));
    }

    #[test]
    fn avg_pool_matches_reference(c in pool_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(avg_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, avg_pool_s8_avx2), run_pool(&c, avg_pool_s8));
    }

    #[test]
    fn global_avg_pool_matches_reference(c in global_pool_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(avg_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, avg_pool_s8_avx2), run_pool(&c, avg_pool_s8));
    }

    #[test]
    fn wide_pools_match_reference(c in wide_pool_case()) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(avg_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, avg_pool_s8_avx2), run_pool(&c, avg_pool_s8));
        prop_assert_eq!(max_pool_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_pool(&c, max_pool_s8_avx2), run_pool(&c, max_pool_s8));
    }

    #[test]
    fn add_matches_reference(c in binary_case(), p in add_params()) {
        if !have_avx2() { return Ok(()); }
        let (bc, n) = out_len(&c);
        prop_assert_eq!(add_avx2_takes(&p, &bc), Ok(()));
        let mut want = vec![0x55u8 as i8; n];
        let mut got = want.clone();
        add_s8(&p, &bc, &c.a, &c.b, &mut want);
        add_s8_avx2(&p, &bc, &c.a, &c.b, &mut got);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn mul_matches_reference(c in binary_case(), p in mul_params()) {
        if !have_avx2() { return Ok(()); }
        let (bc, n) = out_len(&c);
        prop_assert_eq!(mul_avx2_takes(&p, &bc), Ok(()));
        let mut want = vec![0x55u8 as i8; n];
        let mut got = want.clone();
        mul_s8(&p, &bc, &c.a, &c.b, &mut want);
        mul_s8_avx2(&p, &bc, &c.a, &c.b, &mut got);
        prop_assert_eq!(got, want);
    }
}

// A few big shapes, fewer cases: chunked reductions (more than 512 taps,
// more than 64 output channels), long rows past the sliding path's buffer.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn direct_conv_with_many_channels_matches_reference(
        cin in 50usize..=70,
        cout in 60usize..=70,
        w in 3usize..=30,
        izp in zp(),
        ozp in zp(),
        seed in any::<u64>(),
    ) {
        if !have_avx2() { return Ok(()); }
        // 3x3 over 50..70 channels: 225..315 channel pairs per output.
        let h = (3, 3, 1, 1, 1, 3);
        let wa = (w, 3, 1, 1, 1, w);
        let p = conv_params(h, wa, cin, cout, 1, izp, ozp, (-128, 127));
        prop_assert_eq!(conv_avx2_takes(&p), Ok(()));
        let c = seeded_conv_case(p, seed);
        let want = run_conv(&c, conv_s8);
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), want.clone());
        if have_vnni() {
            prop_assert_eq!(conv_vnni_takes(&p), Ok(()));
            prop_assert_eq!(run_conv(&c, conv_s8_vnni), want);
        }
    }

    #[test]
    fn chunked_reduction_conv_matches_reference(
        cin in 240usize..=300,
        cout in 60usize..=70,
        w in 3usize..=12,
        izp in zp(),
        ozp in zp(),
        seed in any::<u64>(),
    ) {
        if !have_avx2() { return Ok(()); }
        // 3x3 over 240..300 channels: more channel pairs than the direct
        // path takes, so the im2col GEMM runs, with 2160..2700 taps in
        // chunks of 512 and (past 64) output channels in two passes.
        let h = (3, 3, 1, 1, 1, 3);
        let wa = (w, 3, 1, 1, 1, w);
        let p = conv_params(h, wa, cin, cout, 1, izp, ozp, (-128, 127));
        prop_assert_eq!(conv_avx2_takes(&p), Ok(()));
        let c = seeded_conv_case(p, seed);
        let want = run_conv(&c, conv_s8);
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), want.clone());
        // Four channels a lane: up to 284 channels (640 quads of 3x3 taps)
        // still take VNNI's direct path; past it, its reference fallback.
        if have_vnni() {
            prop_assert_eq!(conv_vnni_takes(&p).is_ok(), cin.div_ceil(4) * 9 <= 640);
            prop_assert_eq!(run_conv(&c, conv_s8_vnni), want);
        }
    }

    #[test]
    fn long_fully_connected_matches_reference(
        k in 1990usize..=2100,
        n in 1usize..=10,
        izp in zp(),
        seed in any::<u64>(),
    ) {
        if !have_avx2() { return Ok(()); }
        let p = FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: izp,
            output_zero_point: 3,
            act_min: -128,
            act_max: 127,
        };
        let mut rng = Lcg(seed);
        let x: Vec<i8> = (0..k).map(|_| rng.byte()).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.byte()).collect();
        let bias: Vec<i32> = (0..n).map(|_| rng.byte() as i32 * 1000).collect();
        let mult = vec![(1 << 30) + 12345; n];
        let shift: Vec<i8> = (0..n).map(|i| -17 - i as i8).collect();
        let mut want = vec![0i8; n];
        let mut got = vec![0i8; n];
        fully_connected_s8(&p, &x, &w, &bias, &mult, &shift, &mut want);
        fully_connected_s8_avx2(&p, &x, &w, &bias, &mult, &shift, &mut got);
        prop_assert_eq!(got, want);
    }
}

/// A small deterministic generator for the big cases (proptest's vectors
/// of that size shrink slowly).
struct Lcg(u64);

impl Lcg {
    fn byte(&mut self) -> i8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 56) as u8 as i8
    }
}

fn seeded_conv_case(p: ConvParams, seed: u64) -> ConvCase {
    let mut rng = Lcg(seed);
    let cin_g = p.in_channels / p.groups;
    let n_w = p.out_channels * cin_g * p.kernel_h * p.kernel_w;
    let n_x = p.in_channels * p.in_h * p.in_w;
    let x = (0..n_x).map(|_| rng.byte()).collect();
    let w = (0..n_w).map(|_| rng.byte()).collect();
    let bias = (0..p.out_channels)
        .map(|_| rng.byte() as i32 * 777)
        .collect();
    let mult = (0..p.out_channels)
        .map(|_| (1 << 30) + (rng.byte() as i32) * 4_000_000 + (1 << 29))
        .collect();
    let shift = (0..p.out_channels)
        .map(|_| -18 - rng.byte().rem_euclid(4))
        .collect();
    ConvCase {
        p,
        x,
        w,
        bias,
        mult,
        shift,
    }
}

/// Convolutions whose input rows are too wide for one band of the direct
/// path (at least 8 channel pairs of 1400 columns), with `groups` groups:
/// any stride, dilation and padding, 1-D or 2-D.
fn long_row_case(groups: usize) -> impl Strategy<Value = ConvCase> {
    (
        prop_oneof![Just(FLAT).boxed(), axis(4, 3, 2, 2).boxed()],
        (
            1400usize..=1600,
            1usize..=5,
            1usize..=3,
            1usize..=2,
            0usize..=3,
            0usize..=3,
        ),
        Just(groups),
        16usize..=20,
        1usize..=5,
        zp(),
        zp(),
        act(),
    )
        .prop_filter_map(
            "window longer than padded input",
            |(h, (i, k, s, d, pb, pe), groups, cin_g, cout_g, izp, ozp, act)| {
                let w = (i, k, s, d, pb, conv_out_len(i, k, s, d, pb, pe)?);
                let cin = groups * cin_g;
                Some(conv_params(
                    h,
                    w,
                    cin,
                    groups * cout_g,
                    groups,
                    izp,
                    ozp,
                    act,
                ))
            },
        )
        .prop_flat_map(conv_operands)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Two groups: the direct path's tiles take one group only, so the
    /// im2col GEMM runs these.
    #[test]
    fn im2col_conv_matches_reference(c in long_row_case(2)) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(conv_avx2_takes(&c.p), Ok(()));
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
    }

    /// One group: the direct path in tiles of the output plane.
    #[test]
    fn tiled_direct_conv_matches_reference(c in long_row_case(1)) {
        if !have_avx2() { return Ok(()); }
        prop_assert_eq!(conv_avx2_takes(&c.p), Ok(()));
        let want = run_conv(&c, conv_s8);
        prop_assert_eq!(run_conv(&c, conv_s8_avx2), want.clone());
        // VNNI takes no row this long but in tiles.
        if have_vnni() {
            prop_assert_eq!(conv_vnni_takes(&c.p), Ok(()));
            prop_assert_eq!(run_conv(&c, conv_s8_vnni), want);
        }
    }
}

/// Tiles whose output for all channels does not fit one buffer: two
/// channel pairs over 4100–5000 columns (past one band on AVX2) give tiles
/// of 2048 outputs, and 20–40 output channels take two or three calls per
/// tile.
#[test]
fn tiles_with_output_channels_in_several_calls_match_reference() {
    if !have_avx2() {
        return;
    }
    let rows = [
        (3, 20, 4500, 9, 1, 4),
        (4, 40, 5000, 7, 2, 3),
        (4, 33, 4100, 1, 1, 0),
        (3, 25, 4200, 5, 3, 2),
    ];
    check_rows(&rows, (5, -3), 0);
}

/// Each 1-D convolution `(C_in, C_out, length, k, stride, pad)` of `rows`,
/// at zero points `zps`, on AVX2 and VNNI against the reference.
fn check_rows(rows: &[(usize, usize, usize, usize, usize, usize)], zps: (i32, i32), seed: u64) {
    for (i, &(cin, cout, len, k, s, pad)) in rows.iter().enumerate() {
        let out = conv_out_len(len, k, s, 1, pad, pad).unwrap();
        let w = (len, k, s, 1, pad, out);
        let p = conv_params(FLAT, w, cin, cout, 1, zps.0, zps.1, (-128, 127));
        let c = seeded_conv_case(p, seed + i as u64);
        let want = run_conv(&c, conv_s8);
        assert_eq!(run_conv(&c, conv_s8_avx2), want, "{p:?}");
        if have_vnni() {
            assert_eq!(conv_vnni_takes(&p), Ok(()));
            assert_eq!(run_conv(&c, conv_s8_vnni), want, "{p:?}");
        }
    }
}

/// The 1-D convolutions of a 12-lead ResNet at 500 Hz: rows of 64–128
/// channels over 600–2500 samples, stride 1 and 2, on tiles.
#[test]
fn twelve_lead_resnet_rows_match_reference() {
    if !have_avx2() {
        return;
    }
    let rows = [
        (12, 64, 2500, 15, 2, 7),
        (64, 64, 1250, 9, 1, 4),
        (64, 128, 1250, 9, 2, 4),
        (128, 128, 625, 9, 1, 4),
    ];
    check_rows(&rows, (-2, 6), 40);
}

#[test]
fn single_channel_rows_past_the_sliding_buffer_use_the_gemm() {
    if !have_avx2() {
        return;
    }
    // 17 000 positions of one channel do not fit the sliding path's rows,
    // so `conv_s8_avx2` runs them as a GEMM with a 5-tap reduction, and the
    // depthwise entry refuses them.
    let w = (17_000, 5, 1, 1, 2, 17_000);
    let p = conv_params(FLAT, w, 1, 3, 1, -7, 4, (-128, 127));
    assert_eq!(conv_avx2_takes(&p), Ok(()));
    assert!(depthwise_conv_avx2_takes(&p).is_err());
    let c = seeded_conv_case(p, 99);
    assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
}

#[test]
fn zoo_shapes_match_reference() {
    if !have_avx2() {
        return;
    }
    // (Cin, L, k, stride, pad, Cout) of the zoo's 1-D convolutions.
    let one_d = [
        (1, 1639, 9, 2, 4, 16),
        (16, 205, 7, 1, 3, 32),
        (32, 51, 5, 1, 0, 32),
        (32, 25, 3, 1, 0, 16),
        (1, 140, 7, 1, 0, 16),
        (16, 70, 5, 1, 0, 32),
        (32, 35, 3, 1, 0, 32),
        (1, 750, 9, 2, 0, 24),
        (24, 187, 7, 1, 0, 48),
        (48, 93, 5, 1, 0, 64),
        (64, 46, 3, 1, 0, 96),
        (1, 99, 5, 1, 0, 16),
        (16, 49, 5, 1, 0, 32),
        (32, 24, 3, 1, 0, 16),
        (1, 96, 7, 1, 0, 8),
        (8, 48, 5, 1, 0, 16),
        (16, 24, 3, 1, 0, 8),
    ];
    for (i, &(cin, l, k, s, pad, cout)) in one_d.iter().enumerate() {
        let out = conv_out_len(l, k, s, 1, pad, pad).unwrap();
        let p = conv_params(
            FLAT,
            (l, k, s, 1, pad, out),
            cin,
            cout,
            1,
            -3,
            5,
            (-128, 127),
        );
        assert_eq!(conv_avx2_takes(&p), Ok(()));
        let c = seeded_conv_case(p, i as u64);
        assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8), "{p:?}");
    }
    // The held-out 2-D shapes: 32x32x16 3x3 -> 16 (pad 1), 1x1 on 25x5x64,
    // depthwise 3x3 on 25x5x64.
    let h = (32, 3, 1, 1, 1, 32);
    let p = conv_params(h, h, 16, 16, 1, 11, -2, (-2, 127));
    let c = seeded_conv_case(p, 7);
    assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
    let p = conv_params(
        (25, 1, 1, 1, 0, 25),
        (5, 1, 1, 1, 0, 5),
        64,
        64,
        1,
        0,
        0,
        (-128, 127),
    );
    let c = seeded_conv_case(p, 8);
    assert_eq!(run_conv(&c, conv_s8_avx2), run_conv(&c, conv_s8));
    let p = conv_params(
        (25, 3, 1, 1, 1, 25),
        (5, 3, 1, 1, 1, 5),
        64,
        64,
        64,
        4,
        -9,
        (-128, 127),
    );
    assert_eq!(depthwise_conv_avx2_takes(&p), Ok(()));
    let c = seeded_conv_case(p, 9);
    assert_eq!(run_conv(&c, depthwise_conv_s8_avx2), run_conv(&c, conv_s8));
}

// ---------------------------------------------------------------------------
// Arbitrary (mostly invalid) arguments: no panic, and the same bytes as the
// reference, which leaves the output untouched when it returns early.

fn small() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..=4, 1 => Just(usize::MAX), 1 => any::<usize>()]
}

fn wild_i32() -> impl Strategy<Value = i32> {
    prop_oneof![3 => -300i32..=300, 1 => any::<i32>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn wild_conv_calls_match_reference(
        dims in vec(small(), 15),
        q in vec(wild_i32(), 4),
        lens in vec(0usize..=40, 6),
        fill in any::<i8>(),
    ) {
        let h = (dims[1], dims[6], dims[8], dims[10], dims[12], dims[4]);
        let w = (dims[2], dims[7], dims[9], dims[11], dims[13], dims[5]);
        let p = conv_params(h, w, dims[0], dims[3], dims[14], q[0], q[1], (q[2], q[3]));
        let c = ConvCase {
            p,
            x: vec![fill; lens[0]],
            w: vec![fill.wrapping_neg(); lens[1]],
            bias: vec![7; lens[2]],
            mult: vec![1 << 30; lens[3]],
            shift: vec![-3; lens[4]],
        };
        let run = |f: ConvKernel| {
            let mut y = vec![0x55u8 as i8; lens[5]];
            f(&c.p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
            y
        };
        let want = run(conv_s8);
        prop_assert_eq!(run(conv_s8_avx2), want.clone());
        prop_assert_eq!(run(depthwise_conv_s8_avx2), want);
    }

    #[test]
    fn wild_fc_and_pool_calls_match_reference(
        dims in vec(small(), 13),
        q in vec(wild_i32(), 4),
        lens in vec(0usize..=40, 6),
        cip in any::<bool>(),
    ) {
        let p = FullyConnectedParams {
            rows: dims[0],
            in_features: dims[1],
            out_features: dims[2],
            input_zero_point: q[0],
            output_zero_point: q[1],
            act_min: q[2],
            act_max: q[3],
        };
        let (x, w) = (vec![3i8; lens[0]], vec![-2i8; lens[1]]);
        let (b, m, s) = (vec![5; lens[2]], vec![1 << 30; lens[3]], vec![-2i8; lens[4]]);
        let run = |f: FcKernel| {
            let mut y = vec![0x55u8 as i8; lens[5]];
            f(&p, &x, &w, &b, &m, &s, &mut y);
            y
        };
        prop_assert_eq!(run(fully_connected_s8_avx2), run(fully_connected_s8));
        let pp = PoolParams {
            channels: dims[0], in_h: dims[1], in_w: dims[2], out_h: dims[3], out_w: dims[4],
            kernel_h: dims[5], kernel_w: dims[6], stride_h: dims[7], stride_w: dims[8],
            dilation_h: dims[9], dilation_w: dims[10], pad_top: dims[11], pad_left: dims[12],
            count_include_pad: cip, zero_point: q[0],
        };
        let pool = |f: fn(&PoolParams, &[i8], &mut [i8])| {
            let mut y = vec![0x55u8 as i8; lens[5]];
            f(&pp, &x, &mut y);
            y
        };
        prop_assert_eq!(pool(max_pool_s8_avx2), pool(max_pool_s8));
        prop_assert_eq!(pool(avg_pool_s8_avx2), pool(avg_pool_s8));
    }

    #[test]
    fn wild_add_and_mul_calls_match_reference(
        geometry in vec(small(), 12),
        add in add_params(),
        mul in mul_params(),
        ls in prop_oneof![0i32..=20, any::<i32>()],
        lens in vec(0usize..=40, 3),
    ) {
        let take4 = |i: usize| [geometry[i], geometry[i + 1], geometry[i + 2], geometry[i + 3]];
        let bc = Broadcast4 { out_shape: take4(0), a_strides: take4(4), b_strides: take4(8) };
        let (a, b) = (vec![9i8; lens[0]], vec![-4i8; lens[1]]);
        let add = AddParams { left_shift: ls, ..add };
        let run = |f: &dyn Fn(&mut [i8])| {
            let mut y = vec![0x55u8 as i8; lens[2]];
            f(&mut y);
            y
        };
        prop_assert_eq!(
            run(&|y| add_s8_avx2(&add, &bc, &a, &b, y)),
            run(&|y| add_s8(&add, &bc, &a, &b, y))
        );
        prop_assert_eq!(
            run(&|y| mul_s8_avx2(&mul, &bc, &a, &b, y)),
            run(&|y| mul_s8(&mul, &bc, &a, &b, y))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lstm_matches_reference(c in recurrent_case(4, LSTM_TABLES)) {
        if !have_avx2() {
            return Ok(());
        }
        prop_assert_eq!(lstm_avx2_takes(&c.lstm()), Ok(()));
        prop_assert_eq!(c.run_lstm(lstm_s8_avx2), c.run_lstm(lstm_s8));
    }

    #[test]
    fn gru_matches_reference(c in recurrent_case(3, GRU_TABLES)) {
        if !have_avx2() {
            return Ok(());
        }
        prop_assert_eq!(gru_avx2_takes(&c.gru()), Ok(()));
        prop_assert_eq!(c.run_gru(gru_s8_avx2), c.run_gru(gru_s8));
    }

    #[test]
    fn rnn_matches_reference(c in recurrent_case(1, RNN_TABLES)) {
        if !have_avx2() {
            return Ok(());
        }
        prop_assert_eq!(rnn_avx2_takes(&RnnParams { rec: c.rec }), Ok(()));
        prop_assert_eq!(c.run_rnn(rnn_s8_avx2), c.run_rnn(rnn_s8));
    }
}

#[test]
fn recurrent_refusals_name_the_reason() {
    let rec = RecurrentParams {
        steps: 1,
        input_size: 4097,
        hidden: 4,
        input_zero_point: 0,
        output_zero_point: 0,
        out_multiplier: 1 << 30,
        out_shift: 0,
        reverse: false,
        sequence: false,
    };
    let p = GruParams {
        rec,
        linear_before_reset: true,
        rh_multiplier: 1 << 30,
        rh_shift: 0,
    };
    let expect = if have_avx2() {
        "input size above 4096"
    } else {
        "AVX2 not available"
    };
    assert_eq!(gru_avx2_takes(&p), Err(expect));
}

// ---------------------------------------------------------------------------
// Int16 activations: the three pairings of the int16 convolution against
// their reference kernels, on the geometries above.

/// What the int16 AVX2 convolutions answer for `p` (AVX2 is present):
/// groups with fewer than 4 output channels are refused.
#[cfg(feature = "int16-activations")]
fn s16_takes(p: &ConvParams) -> Result<(), &'static str> {
    if p.out_channels / p.groups < 4 {
        Err("fewer than 4 output channels per group")
    } else {
        Ok(())
    }
}

/// A convolution case with an int16 input of its size and an int16 output
/// window; the weights include −128, the kernels' largest term.
#[cfg(feature = "int16-activations")]
fn with_s16(c: ConvCase) -> impl Strategy<Value = (ConvCase, Vec<i16>, (i32, i32))> {
    let n = c.x.len();
    (Just(c), x16s(n), act16())
}

/// Runs the three int16 pairings on the AVX2 kernels and the reference,
/// after checking that the AVX2 kernels take every one of them.
#[cfg(feature = "int16-activations")]
fn check_s16_pairings(c: &ConvCase, x16: &[i16], act16: (i32, i32)) -> Result<(), TestCaseError> {
    let n_out = c.p.out_channels * c.p.out_h * c.p.out_w;
    let wide = |p: &ConvParams| ConvParams {
        output_zero_point: 0,
        act_min: act16.0,
        act_max: act16.1,
        ..*p
    };
    let symmetric_in = ConvParams {
        input_zero_point: 0,
        ..c.p
    };
    // i16 -> i16
    let p = wide(&symmetric_in);
    prop_assert_eq!(conv_s16_avx2_takes(&p), s16_takes(&p));
    let run16 = |f: select::ConvS16Fn<i16>| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, x16, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run16(conv_s16_avx2), run16(conv_s16));
    // i16 -> i8
    let p = symmetric_in;
    let run8 = |f: select::ConvS16Fn<i8>| {
        let mut y = vec![0x55u8 as i8; n_out];
        f(&p, x16, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run8(conv_s16_s8_avx2), run8(conv_s16_s8));
    // i8 (less its zero point) -> i16
    let p = wide(&c.p);
    prop_assert_eq!(conv_s16_avx2_takes(&p), s16_takes(&p));
    let run = |f: select::ConvS8S16Fn| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run(conv_s8_s16_avx2), run(conv_s8_s16));
    Ok(())
}

/// [`with_s16`] with int16 weights of the case's size.
#[cfg(feature = "int16-activations")]
fn with_w16(c: ConvCase) -> impl Strategy<Value = (ConvCase, Vec<i16>, Vec<i16>, (i32, i32))> {
    let (n, k) = (c.x.len(), c.w.len());
    (Just(c), x16s(n), w16s(k), act16())
}

/// The three 16x16 pairings on the AVX2 kernels against the reference.
#[cfg(feature = "int16-activations")]
fn check_w16_pairings(
    c: &ConvCase,
    x16: &[i16],
    w16: &[i16],
    act16: (i32, i32),
) -> Result<(), TestCaseError> {
    type W16Fn<X, Y> = fn(&ConvParams, &[X], &[i16], &[i32], &[i32], &[i8], &mut [Y]);
    let n_out = c.p.out_channels * c.p.out_h * c.p.out_w;
    let wide = |p: &ConvParams| ConvParams {
        output_zero_point: 0,
        act_min: act16.0,
        act_max: act16.1,
        ..*p
    };
    let symmetric_in = ConvParams {
        input_zero_point: 0,
        ..c.p
    };
    let p = wide(&symmetric_in);
    prop_assert_eq!(conv_s16_avx2_takes(&p), s16_takes(&p));
    let run16 = |f: W16Fn<i16, i16>| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, x16, w16, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run16(conv_s16_w16_avx2), run16(conv_s16_w16));
    let p = symmetric_in;
    let run8 = |f: W16Fn<i16, i8>| {
        let mut y = vec![0x55u8 as i8; n_out];
        f(&p, x16, w16, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run8(conv_s16_s8_w16_avx2), run8(conv_s16_s8_w16));
    let p = wide(&c.p);
    let run = |f: W16Fn<i8, i16>| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, &c.x, w16, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run(conv_s8_s16_w16_avx2), run(conv_s8_s16_w16));
    Ok(())
}

#[cfg(feature = "int16-activations")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conv_w16_matches_reference((c, x16, w16, act) in conv_case().prop_flat_map(with_w16)) {
        if !have_avx2() { return Ok(()); }
        check_w16_pairings(&c, &x16, &w16, act)?;
    }

    #[test]
    fn depthwise_conv_w16_matches_reference(
        (c, x16, w16, act) in depthwise_case().prop_flat_map(with_w16),
    ) {
        if !have_avx2() { return Ok(()); }
        check_w16_pairings(&c, &x16, &w16, act)?;
    }

    #[test]
    fn conv_s16_matches_reference((c, x16, act) in conv_case().prop_flat_map(with_s16)) {
        if !have_avx2() { return Ok(()); }
        check_s16_pairings(&c, &x16, act)?;
    }

    #[test]
    fn single_channel_conv_s16_matches_reference(
        (c, x16, act) in single_channel_case().prop_flat_map(with_s16),
    ) {
        if !have_avx2() { return Ok(()); }
        check_s16_pairings(&c, &x16, act)?;
    }

    #[test]
    fn depthwise_conv_s16_matches_reference(
        (c, x16, act) in depthwise_case().prop_flat_map(with_s16),
    ) {
        if !have_avx2() { return Ok(()); }
        check_s16_pairings(&c, &x16, act)?;
    }
}

// Reductions past one 510-tap chunk, and more than 64 output channels (two
// passes over a tile).
#[cfg(feature = "int16-activations")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn chunked_reduction_conv_s16_matches_reference(
        cin in 50usize..=130,
        cout in 60usize..=70,
        w in 3usize..=30,
        stride in 1usize..=2,
        izp in zp(),
        seed in any::<u64>(),
        rails in any::<bool>(),
    ) {
        if !have_avx2() { return Ok(()); }
        // 1-D k9 (as an ECG ResNet's): 450..1170 taps per output.
        let wa = (w, 9, stride, 1, 4, (w + 8 - 9) / stride + 1);
        let p = conv_params(FLAT, wa, cin, cout, 1, izp, 0, (-32768, 32767));
        let mut c = seeded_conv_case(p, seed);
        if rails {
            // Every term +2^22: a full chunk's sums reach 510 · 2^22.
            c.w.fill(-128);
        }
        let mut rng = Lcg(seed ^ 0x5EED);
        let x16: Vec<i16> = (0..c.x.len())
            .map(|_| if rails { i16::MIN } else { i16::from(rng.byte()) * 251 })
            .collect();
        check_s16_pairings(&c, &x16, (-32768, 32767))?;
        // 16x16: with every weight at a rail, each part's terms are at
        // their largest (`hi` −128 or 128 against −32768).
        let w16: Vec<i16> = match (rails, seed % 3) {
            (true, 0) => vec![i16::MIN; c.w.len()],
            (true, _) => vec![i16::MAX; c.w.len()],
            (false, _) => (0..c.w.len()).map(|_| i16::from_le_bytes([rng.byte() as u8, rng.byte() as u8])).collect(),
        };
        check_w16_pairings(&c, &x16, &w16, (-32768, 32767))?;
    }
}

/// The three int16 pairings of the fully connected kernel against the
/// reference, after checking that the AVX2 kernel takes them.
#[cfg(feature = "int16-activations")]
fn check_fc_s16_pairings(c: &FcCase, x16: &[i16], act16: (i32, i32)) -> Result<(), TestCaseError> {
    let n_out = c.p.rows * c.p.out_features;
    let symmetric_in = FullyConnectedParams {
        input_zero_point: 0,
        ..c.p
    };
    let wide = |p: &FullyConnectedParams| FullyConnectedParams {
        output_zero_point: 0,
        act_min: act16.0,
        act_max: act16.1,
        ..*p
    };
    let p = wide(&symmetric_in);
    prop_assert_eq!(fully_connected_s16_avx2_takes(&p), Ok(()));
    let run16 = |f: select::FullyConnectedS16Fn<i16>| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, x16, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(run16(fully_connected_s16_avx2), run16(fully_connected_s16));
    let p = symmetric_in;
    let run8 = |f: select::FullyConnectedS16Fn<i8>| {
        let mut y = vec![0x55u8 as i8; n_out];
        f(&p, x16, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(
        run8(fully_connected_s16_s8_avx2),
        run8(fully_connected_s16_s8)
    );
    let p = wide(&c.p);
    prop_assert_eq!(fully_connected_s16_avx2_takes(&p), Ok(()));
    let run = |f: select::FullyConnectedS8S16Fn| {
        let mut y = vec![0x5A5Ai16; n_out];
        f(&p, &c.x, &c.w, &c.bias, &c.mult, &c.shift, &mut y);
        y
    };
    prop_assert_eq!(
        run(fully_connected_s8_s16_avx2),
        run(fully_connected_s8_s16)
    );
    Ok(())
}

/// A long row (past one 496-input total, up to ten of them), its weights
/// all −128 and its inputs all at the negative rail in a third of the cases.
#[cfg(feature = "int16-activations")]
fn long_fc_s16_case() -> impl Strategy<Value = (FcCase, Vec<i16>, (i32, i32))> {
    (
        1usize..=2,
        400usize..=5000,
        1usize..=12,
        zp(),
        any::<bool>(),
    )
        .prop_flat_map(|(rows, k, n, in_zp, rails)| {
            let p = FullyConnectedParams {
                rows,
                in_features: k,
                out_features: n,
                input_zero_point: in_zp,
                output_zero_point: 0,
                act_min: -128,
                act_max: 127,
            };
            let case = with_operands(p, rows * k, n * k, n, -31..=-20).prop_map(move |mut c| {
                if rails {
                    c.w.fill(-128);
                }
                c
            });
            let x = match rails {
                true => Just(vec![i16::MIN; rows * k]).boxed(),
                false => x16s(rows * k).boxed(),
            };
            (case, x, act16())
        })
}

#[cfg(feature = "int16-activations")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fully_connected_s16_matches_reference(
        (c, x16, act) in fc_case().prop_flat_map(|c| {
            let n = c.x.len();
            (Just(c), x16s(n), act16())
        }),
    ) {
        if !have_avx2() { return Ok(()); }
        check_fc_s16_pairings(&c, &x16, act)?;
    }

    #[test]
    fn long_fully_connected_s16_matches_reference((c, x16, act) in long_fc_s16_case()) {
        if !have_avx2() { return Ok(()); }
        check_fc_s16_pairings(&c, &x16, act)?;
    }
}
