//! The aarch64 NEON and dot-product kernels against the reference kernels,
//! byte for byte, over random shapes (tails of every vector width, one
//! output position, reductions of 1 and past a chunk), zero points across
//! `i8`, extreme weights, biases, multipliers and shifts, and clamps.
//!
//! Runs under `qemu-aarch64` (`runtime/tests/aarch64.sh` runs it once on a
//! CPU with `sdot` and once without). `MEDQ_EXPECT_DOTPROD` (`1` or `0`)
//! states which of the two this run is on; `dotprod_detection_matches_run`
//! fails otherwise, so that a dot-product path cannot be skipped silently.
//! On a CPU without the extension, the `_dotprod` kernels must refuse every
//! shape (and then run the reference kernel).
#![cfg(target_arch = "aarch64")]

use medq::kernels::aarch64::*;
use medq::kernels::*;
use proptest::collection::vec;
use proptest::prelude::*;

mod recurrent_cases;
use recurrent_cases::recurrent_case;

mod int16_cases;
#[cfg(feature = "int16-activations")]
use int16_cases::{act16, w16s, x16s};

#[test]
fn dotprod_detection_matches_run() {
    let expected = std::env::var("MEDQ_EXPECT_DOTPROD").expect(
        "set MEDQ_EXPECT_DOTPROD=1 (CPU with sdot) or 0 (without); \
         runtime/tests/aarch64.sh does",
    );
    let expected = match expected.as_str() {
        "1" => true,
        "0" => false,
        other => panic!("MEDQ_EXPECT_DOTPROD must be 1 or 0, not {other:?}"),
    };
    assert_eq!(has_dotprod(), expected, "dot-product detection");
    println!(
        "aarch64 kernels: NEON paths run; dot-product paths {}",
        if expected { "run" } else { "refused (no sdot)" }
    );
}

/// The dot-product kernel's refusal is exactly "no extension" on a CPU
/// without it, and follows the NEON kernel's verdict otherwise.
fn check_dotprod_takes(
    dot: Result<(), &'static str>,
    neon: Result<(), &'static str>,
) -> Result<(), TestCaseError> {
    if has_dotprod() {
        prop_assert_eq!(dot, neon);
    } else {
        prop_assert_eq!(dot, Err("CPU lacks the dot-product extension"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Shared strategies

/// Q31 multipliers: normalized, the extremes, 0, small and negative.
fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => (1i32 << 30)..=i32::MAX,
        1 => Just(i32::MAX),
        1 => Just(i32::MIN),
        1 => Just(0),
        1 => any::<i32>(),
    ]
}

/// Shifts: typical conv values (most outputs unsaturated), the contract's
/// extremes, and out-of-range bytes (which requantization clamps).
fn shift() -> impl Strategy<Value = i8> {
    prop_oneof![
        6 => -22i8..=-6,
        1 => -31i8..=30,
        1 => Just(-31i8),
        1 => Just(30i8),
        1 => any::<i8>(),
    ]
}

/// Biases: typical, and anywhere in `i32` (wrapping sums, saturation).
fn bias() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -50_000i32..=50_000, 1 => any::<i32>()]
}

/// Weights: symmetric as the converter writes them (`[-127, 127]`, the
/// NEON kernels' byte-pair path), any byte (a −128 takes their `i16`
/// path), and only the extremes, with and without −128.
fn weights(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        3 => vec(-127i8..=127, n),
        2 => vec(any::<i8>(), n),
        1 => vec(prop_oneof![Just(127i8), Just(-127i8)], n),
        1 => vec(prop_oneof![Just(-128i8), Just(127i8), Just(-127i8)], n),
    ]
}

/// Inputs: any byte, sometimes only the extremes.
fn bytes(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        4 => vec(any::<i8>(), n),
        1 => vec(prop_oneof![Just(-128i8), Just(127i8)], n),
    ]
}

fn zp() -> impl Strategy<Value = i32> {
    prop_oneof![3 => -128i32..=127, 1 => Just(-128), 1 => Just(127)]
}

/// `(min, max)` activation clamps inside `i8`.
fn act() -> impl Strategy<Value = (i32, i32)> {
    prop_oneof![
        2 => Just((-128, 127)),
        2 => (-128i32..=127, -128i32..=127).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

/// Per-output-channel quantization: bias, multiplier, shift.
#[derive(Clone, Debug)]
struct Quant {
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
}

fn quant(n: usize) -> impl Strategy<Value = Quant> {
    (vec(bias(), n), vec(multiplier(), n), vec(shift(), n)).prop_map(|(bias, mult, shift)| Quant {
        bias,
        mult,
        shift,
    })
}

// ---------------------------------------------------------------------------
// Convolution

#[derive(Clone, Debug)]
struct ConvCase {
    p: ConvParams,
    x: Vec<i8>,
    w: Vec<i8>,
    q: Quant,
}

/// One window axis `(in, kernel, stride, dilation, pad_begin, out)`.
fn axis(
    len: std::ops::RangeInclusive<usize>,
    kernel: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    (len, kernel, 1usize..=3, 1usize..=2, 0usize..=4, 0usize..=4).prop_filter_map(
        "window longer than the padded input",
        |(i, k, s, d, pb, pe)| conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, o)),
    )
}

fn flat_axis() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    Just((1, 1, 1, 1, 0, 1))
}

fn conv_params(
    h: (usize, usize, usize, usize, usize, usize),
    w: (usize, usize, usize, usize, usize, usize),
    cin: usize,
    cout: usize,
    zps: (i32, i32),
    (act_min, act_max): (i32, i32),
) -> ConvParams {
    ConvParams {
        in_channels: cin,
        in_h: h.0,
        in_w: w.0,
        out_channels: cout,
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
        groups: 1,
        input_zero_point: zps.0,
        output_zero_point: zps.1,
        act_min,
        act_max,
    }
}

fn with_conv_operands(p: ConvParams) -> impl Strategy<Value = ConvCase> {
    let n_x = p.in_channels * p.in_h * p.in_w;
    let n_w = p.out_channels * p.in_channels * p.kernel_h * p.kernel_w;
    (Just(p), bytes(n_x), weights(n_w), quant(p.out_channels)).prop_map(|(p, x, w, q)| ConvCase {
        p,
        x,
        w,
        q,
    })
}

/// 1-D (`H = 1`) and small 2-D convolutions, output widths across the
/// 16-position tile, 1–9 output channels (blocks of 4 and the rest).
fn conv_case() -> impl Strategy<Value = ConvCase> {
    let one_d = (flat_axis(), axis(1..=40, 1..=9), 1usize..=20, 1usize..=9);
    let two_d = (
        axis(1..=9, 1..=3),
        axis(1..=20, 1..=3),
        1usize..=6,
        1usize..=9,
    );
    let pointwise = (
        axis(1..=9, 1..=1),
        axis(1..=20, 1..=1),
        1usize..=24,
        1usize..=9,
    );
    (prop_oneof![one_d, two_d, pointwise], (zp(), zp()), act())
        .prop_map(|((h, w, cin, cout), zps, act)| conv_params(h, w, cin, cout, zps, act))
        .prop_flat_map(with_conv_operands)
}

/// Reductions longer than one chunk (512 NEON, 1024 `sdot` indices) and
/// more output channels than one group (64).
fn conv_long_case() -> impl Strategy<Value = ConvCase> {
    (
        axis(1..=20, 7..=9),
        prop_oneof![100usize..=130, 1usize..=3],
        prop_oneof![1usize..=6, 63usize..=70],
        (zp(), zp()),
        act(),
    )
        .prop_map(|(w, cin, cout, zps, act)| {
            conv_params((1, 1, 1, 1, 0, 1), w, cin, cout, zps, act)
        })
        .prop_flat_map(with_conv_operands)
}

/// A convolution kernel's signature.
type ConvFn = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

/// Rows too long for one staged band (more than 32 KiB of input rows):
/// they run in W segments.
fn conv_long_row_case() -> impl Strategy<Value = ConvCase> {
    (
        (
            1000usize..=1300,
            1usize..=7,
            1usize..=2,
            1usize..=2,
            0usize..=3,
            0usize..=3,
        ),
        36usize..=40,
        1usize..=5,
        (zp(), zp()),
        act(),
    )
        .prop_filter_map(
            "window longer than the padded input",
            |((i, k, s, d, pb, pe), cin, cout, zps, act)| {
                let w = (i, k, s, d, pb, conv_out_len(i, k, s, d, pb, pe)?);
                Some(conv_params((1, 1, 1, 1, 0, 1), w, cin, cout, zps, act))
            },
        )
        .prop_flat_map(with_conv_operands)
}

fn run_conv(c: &ConvCase, f: ConvFn) -> Vec<i8> {
    let n_out = c.p.out_channels * c.p.out_h * c.p.out_w;
    let mut y = vec![0x55i8; n_out];
    f(&c.p, &c.x, &c.w, &c.q.bias, &c.q.mult, &c.q.shift, &mut y);
    y
}

fn check_conv(c: &ConvCase) -> Result<(), TestCaseError> {
    prop_assert_eq!(conv_neon_takes(&c.p), Ok(()));
    check_dotprod_takes(conv_dotprod_takes(&c.p), Ok(()))?;
    let want = run_conv(c, medq::kernels::reference::conv_s8);
    prop_assert_eq!(&run_conv(c, conv_s8_neon), &want, "neon");
    prop_assert_eq!(&run_conv(c, conv_s8_dotprod), &want, "dotprod");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn conv_matches_reference(c in conv_case()) {
        check_conv(&c)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn conv_long_reductions_match_reference(c in conv_long_case()) {
        check_conv(&c)?;
    }

    #[test]
    fn conv_long_rows_match_reference(c in conv_long_row_case()) {
        check_conv(&c)?;
    }
}

/// Grouped convolutions are refused (and still give the reference's bytes).
#[test]
fn conv_refuses_groups_and_falls_back() {
    let mut p = conv_params(
        (1, 1, 1, 1, 0, 1),
        (8, 3, 1, 1, 1, 8),
        4,
        4,
        (3, -2),
        (-128, 127),
    );
    p.groups = 2;
    assert_eq!(conv_neon_takes(&p), Err("grouped convolution"));
    let c = ConvCase {
        p,
        x: (0..32).map(|i| (i * 37 % 251) as i8).collect(),
        w: (0..24).map(|i| (i * 11 % 255) as i8).collect(),
        q: Quant {
            bias: vec![100, -7, 0, 5],
            mult: vec![1 << 30; 4],
            shift: vec![-3; 4],
        },
    };
    let want = run_conv(&c, medq::kernels::reference::conv_s8);
    assert_eq!(run_conv(&c, conv_s8_neon), want);
    assert_eq!(run_conv(&c, conv_s8_dotprod), want);
}

// ---------------------------------------------------------------------------
// Depthwise convolution

fn depthwise_case() -> impl Strategy<Value = ConvCase> {
    let one_d = (flat_axis(), axis(1..=40, 1..=9));
    let two_d = (axis(1..=9, 1..=3), axis(1..=24, 1..=3));
    (prop_oneof![one_d, two_d], 1usize..=5, (zp(), zp()), act())
        .prop_map(|((h, w), c, zps, act)| {
            let mut p = conv_params(h, w, c, c, zps, act);
            p.groups = c;
            p
        })
        .prop_flat_map(with_conv_operands)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn depthwise_matches_reference(c in depthwise_case()) {
        prop_assert_eq!(depthwise_conv_neon_takes(&c.p), Ok(()));
        let want = run_conv(&c, medq::kernels::reference::conv_s8);
        prop_assert_eq!(run_conv(&c, depthwise_conv_s8_neon), want);
    }
}

// ---------------------------------------------------------------------------
// Fully connected

#[derive(Clone, Debug)]
struct FcCase {
    p: FullyConnectedParams,
    x: Vec<i8>,
    w: Vec<i8>,
    q: Quant,
}

fn fc_case(k: impl Strategy<Value = usize>) -> impl Strategy<Value = FcCase> {
    (1usize..=3, k, 1usize..=11, (zp(), zp()), act())
        .prop_map(|(rows, k, n, (zi, zo), (lo, hi))| FullyConnectedParams {
            rows,
            in_features: k,
            out_features: n,
            input_zero_point: zi,
            output_zero_point: zo,
            act_min: lo,
            act_max: hi,
        })
        .prop_flat_map(|p| {
            let (n_x, n_w) = (p.rows * p.in_features, p.out_features * p.in_features);
            (Just(p), bytes(n_x), weights(n_w), quant(p.out_features))
        })
        .prop_map(|(p, x, w, q)| FcCase { p, x, w, q })
}

/// A fully connected kernel's signature.
type FcFn = fn(&FullyConnectedParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

fn run_fc(c: &FcCase, f: FcFn) -> Vec<i8> {
    let mut y = vec![0x55i8; c.p.rows * c.p.out_features];
    f(&c.p, &c.x, &c.w, &c.q.bias, &c.q.mult, &c.q.shift, &mut y);
    y
}

fn check_fc(c: &FcCase) -> Result<(), TestCaseError> {
    let want = run_fc(c, medq::kernels::reference::fully_connected_s8);
    prop_assert_eq!(&run_fc(c, fully_connected_s8_neon), &want, "neon");
    prop_assert_eq!(&run_fc(c, fully_connected_s8_dotprod), &want, "dotprod");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fully_connected_matches_reference(c in fc_case(prop_oneof![16usize..=70, 380usize..=420])) {
        prop_assert_eq!(fully_connected_neon_takes(&c.p), Ok(()));
        check_dotprod_takes(fully_connected_dotprod_takes(&c.p), Ok(()))?;
        check_fc(&c)?;
    }

    /// Fewer than 16 features are refused, and fall back bit-exactly.
    #[test]
    fn fully_connected_short_rows_fall_back(c in fc_case(0usize..=15)) {
        prop_assert_eq!(fully_connected_neon_takes(&c.p), Err("fewer than 16 input features"));
        check_fc(&c)?;
    }
}

// ---------------------------------------------------------------------------
// Pooling

#[derive(Clone, Debug)]
struct PoolCase {
    p: PoolParams,
    x: Vec<i8>,
}

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

fn with_pool_input(p: PoolParams) -> impl Strategy<Value = PoolCase> {
    (Just(p), bytes(p.channels * p.in_h * p.in_w)).prop_map(|(p, x)| PoolCase { p, x })
}

/// Any geometry, including windows longer than 16 (vector row reductions)
/// and windows entirely in the padding.
fn pool_case() -> impl Strategy<Value = PoolCase> {
    let h = prop_oneof![flat_axis().boxed(), axis(1..=8, 1..=3).boxed()];
    let w = prop_oneof![axis(1..=40, 1..=5).boxed(), axis(17..=60, 17..=40).boxed()];
    (1usize..=3, h, w, any::<bool>(), zp())
        .prop_map(|(c, h, w, inc, z)| pool_params(c, h, w, inc, z))
        .prop_flat_map(with_pool_input)
}

/// Side-by-side 1-D windows of 2–4 (the vector deinterleaving path).
fn pool_rows_case() -> impl Strategy<Value = PoolCase> {
    (
        1usize..=3,
        1usize..=3,
        2usize..=4,
        1usize..=50,
        0usize..=3,
        zp(),
    )
        .prop_map(|(c, h, k, out_w, extra, z)| {
            let w = (out_w * k + extra, k, k, 1, 0, out_w);
            let mut p = pool_params(c, (h, 1, 1, 1, 0, h), w, false, z);
            p.kernel_h = 1;
            p
        })
        .prop_flat_map(with_pool_input)
}

/// Global pooling: one window over each whole plane (GlobalAveragePool).
fn global_pool_case() -> impl Strategy<Value = PoolCase> {
    (1usize..=5, 1usize..=3, 1usize..=70, any::<bool>(), zp())
        .prop_map(|(c, h, w, inc, z)| {
            pool_params(c, (h, h, 1, 1, 0, 1), (w, w, 1, 1, 0, 1), inc, z)
        })
        .prop_flat_map(with_pool_input)
}

fn check_pools(c: &PoolCase) -> Result<(), TestCaseError> {
    prop_assert_eq!(max_pool_neon_takes(&c.p), Ok(()));
    prop_assert_eq!(avg_pool_neon_takes(&c.p), Ok(()));
    let n_out = c.p.channels * c.p.out_h * c.p.out_w;
    for (reference, neon) in [
        (
            medq::kernels::reference::max_pool_s8 as fn(&PoolParams, &[i8], &mut [i8]),
            max_pool_s8_neon as fn(&PoolParams, &[i8], &mut [i8]),
        ),
        (medq::kernels::reference::avg_pool_s8, avg_pool_s8_neon),
    ] {
        let (mut want, mut got) = (vec![0x55i8; n_out], vec![0x55i8; n_out]);
        reference(&c.p, &c.x, &mut want);
        neon(&c.p, &c.x, &mut got);
        prop_assert_eq!(got, want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pools_match_reference(c in pool_case()) {
        check_pools(&c)?;
    }

    #[test]
    fn side_by_side_pools_match_reference(c in pool_rows_case()) {
        check_pools(&c)?;
    }

    #[test]
    fn global_pools_match_reference(c in global_pool_case()) {
        check_pools(&c)?;
    }
}

// ---------------------------------------------------------------------------
// Add, Mul, lookup tables

/// Output shapes with a same-shape, per-channel (`[C, 1, ..]`) or scalar
/// second operand, or any numpy broadcast of two shapes of rank ≤ 4.
fn broadcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    let dims = vec(1usize..=40, 1..=3);
    prop_oneof![
        dims.clone().prop_map(|s| (s.clone(), s)),
        dims.clone().prop_map(|s| {
            let mut b = vec![1; s.len()];
            b[0] = s[0];
            (s, b)
        }),
        dims.clone().prop_map(|s| (s, vec![])),
        (vec(1usize..=20, 0..=4), any::<u8>(), any::<u8>()).prop_map(|(out, ma, mb)| {
            let derive = |mask: u8| -> Vec<usize> {
                out.iter()
                    .enumerate()
                    .map(|(i, &n)| if mask >> i & 1 == 1 { 1 } else { n })
                    .collect()
            };
            (derive(ma), derive(mb))
        }),
    ]
}

#[derive(Clone, Debug)]
struct BinaryCase {
    bc: Broadcast4,
    a: Vec<i8>,
    b: Vec<i8>,
    swap: bool,
}

fn binary_case() -> impl Strategy<Value = BinaryCase> {
    (broadcast_shapes(), any::<bool>()).prop_flat_map(|((sa, sb), swap)| {
        let (sa, sb) = if swap { (sb, sa) } else { (sa, sb) };
        let bc = Broadcast4::new(&sa, &sb).expect("broadcastable by construction");
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        (Just(bc), bytes(na), bytes(nb), Just(swap)).prop_map(|(bc, a, b, swap)| BinaryCase {
            bc,
            a,
            b,
            swap,
        })
    })
}

fn add_params() -> impl Strategy<Value = AddParams> {
    let m = multiplier;
    let s = || prop_oneof![4 => -3i32..=1, 1 => -31i32..=30, 1 => -60i32..=60];
    (
        zp(),
        zp(),
        zp(),
        0i32..=20,
        (m(), s(), m(), s()),
        (m(), -40i32..=10),
        act(),
    )
        .prop_map(
            |(za, zb, zo, ls, (am, as_, bm, bs), (om, os), (lo, hi))| AddParams {
                a_zero_point: za,
                b_zero_point: zb,
                output_zero_point: zo,
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
    (
        zp(),
        zp(),
        zp(),
        multiplier(),
        prop_oneof![3 => -20i32..=0, 1 => -60i32..=60],
        act(),
    )
        .prop_map(|(za, zb, zo, om, os, (lo, hi))| MulParams {
            a_zero_point: za,
            b_zero_point: zb,
            output_zero_point: zo,
            out_multiplier: om,
            out_shift: os,
            act_min: lo,
            act_max: hi,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn add_matches_reference(c in binary_case(), p in add_params()) {
        let n = c.bc.out_len();
        let (mut want, mut got) = (vec![0x55i8; n], vec![0x55i8; n]);
        medq::kernels::reference::add_s8(&p, &c.bc, &c.a, &c.b, &mut want);
        add_s8_neon(&p, &c.bc, &c.a, &c.b, &mut got);
        prop_assert_eq!(got, want);
        // Same-shape, per-channel and scalar operands with rows of 16 or
        // more are taken (not passed to the reference).
        if c.bc.out_shape[3] >= 16 && !c.swap {
            prop_assert_eq!(add_neon_takes(&p, &c.bc), Ok(()));
        }
    }

    #[test]
    fn mul_matches_reference(c in binary_case(), p in mul_params()) {
        let n = c.bc.out_len();
        let (mut want, mut got) = (vec![0x55i8; n], vec![0x55i8; n]);
        medq::kernels::reference::mul_s8(&p, &c.bc, &c.a, &c.b, &mut want);
        mul_s8_neon(&p, &c.bc, &c.a, &c.b, &mut got);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn lut_matches_reference(table in vec(any::<i8>(), 256), x in vec(any::<i8>(), 0..100)) {
        let table: [i8; 256] = table.try_into().expect("256 entries");
        let (mut want, mut got) = (vec![0x55i8; x.len()], vec![0x55i8; x.len()]);
        medq::kernels::reference::lut_s8(&table, &x, &mut want);
        lut_s8_neon(&table, &x, &mut got);
        prop_assert_eq!(&got, &want);
        let mut in_place = x.clone();
        lut_in_place_s8_neon(&table, &mut in_place);
        prop_assert_eq!(in_place, want);
    }
}

/// Same-shape and per-channel operands over rows of 16 or more are taken.
#[test]
fn add_mul_take_the_common_broadcasts() {
    let add = AddParams {
        a_zero_point: 0,
        b_zero_point: 0,
        output_zero_point: 0,
        left_shift: 20,
        a_multiplier: 1 << 30,
        a_shift: 0,
        b_multiplier: 1 << 30,
        b_shift: 0,
        out_multiplier: 1 << 30,
        out_shift: -19,
        act_min: -128,
        act_max: 127,
    };
    let mul = MulParams {
        a_zero_point: 0,
        b_zero_point: 0,
        output_zero_point: 0,
        out_multiplier: 1 << 30,
        out_shift: 0,
        act_min: -128,
        act_max: 127,
    };
    for (a, b) in [
        (vec![32, 205], vec![32, 205]),
        (vec![32, 205], vec![32, 1]),
        (vec![1, 16, 70], vec![]),
        (vec![3, 5], vec![3, 5]),
    ] {
        let bc = Broadcast4::new(&a, &b).expect("broadcastable");
        assert_eq!(add_neon_takes(&add, &bc), Ok(()), "{a:?} + {b:?}");
        assert_eq!(mul_neon_takes(&mul, &bc), Ok(()), "{a:?} * {b:?}");
    }
    let short_rows = Broadcast4::new(&[32, 5], &[32, 1]).expect("broadcastable");
    assert_eq!(
        add_neon_takes(&add, &short_rows),
        Err("broadcast rows shorter than 16 elements")
    );
}

// ---------------------------------------------------------------------------
// The zoo's layer shapes

/// `[cin, len] → [cout, ·]`, kernel `k`, stride `s`, pads `pad` (1-D).
fn zoo_conv1d(cin: usize, len: usize, k: usize, s: usize, pad: usize, cout: usize) -> ConvParams {
    let out = (len + 2 * pad - k) / s + 1;
    conv_params(
        (1, 1, 1, 1, 0, 1),
        (len, k, s, 1, pad, out),
        cin,
        cout,
        (-128, -128),
        (-128, 127),
    )
}

/// Deterministic operands for a shape (an LCG).
fn fixed_conv_case(p: ConvParams, seed: u32) -> ConvCase {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (s >> 24) as i8
    };
    let n_x = p.in_channels * p.in_h * p.in_w;
    let n_w = p.out_channels * p.in_channels / p.groups * p.kernel_h * p.kernel_w;
    let c = p.out_channels;
    ConvCase {
        p,
        x: (0..n_x).map(|_| next()).collect(),
        // Symmetric, as the converter writes weights.
        w: (0..n_w).map(|_| next().max(-127)).collect(),
        q: Quant {
            bias: (0..c).map(|i| i as i32 * 977 - 5000).collect(),
            mult: (0..c)
                .map(|i| 1_100_000_000 + i as i32 * 7_000_000)
                .collect(),
            shift: (0..c).map(|i| -8 - (i % 3) as i8).collect(),
        },
    }
}

/// Every convolution shape of the zoo is taken by both instruction sets
/// (on a CPU with `sdot`) and gives the reference's bytes.
#[test]
fn zoo_convolutions_are_taken_and_exact() {
    let two_d = |cin, h, w, k: usize, pad, cout| {
        conv_params(
            (h, k, 1, 1, pad, h),
            (w, k, 1, 1, pad, w),
            cin,
            cout,
            (-5, 9),
            (-128, 127),
        )
    };
    let shapes = [
        zoo_conv1d(1, 1639, 9, 2, 4, 16),
        zoo_conv1d(16, 205, 7, 1, 3, 32),
        zoo_conv1d(32, 51, 5, 1, 2, 32),
        zoo_conv1d(32, 25, 3, 1, 1, 16),
        zoo_conv1d(1, 140, 7, 1, 3, 16),
        zoo_conv1d(16, 70, 5, 1, 2, 32),
        zoo_conv1d(32, 35, 3, 1, 1, 32),
        zoo_conv1d(1, 750, 9, 2, 4, 24),
        zoo_conv1d(24, 187, 7, 1, 3, 48),
        zoo_conv1d(48, 93, 5, 1, 2, 64),
        zoo_conv1d(64, 46, 3, 1, 1, 96),
        zoo_conv1d(1, 99, 5, 1, 2, 16),
        zoo_conv1d(16, 49, 5, 1, 2, 32),
        zoo_conv1d(32, 24, 3, 1, 1, 16),
        two_d(16, 32, 32, 3, 1, 16),
        two_d(64, 25, 5, 1, 0, 64),
        // A 12-lead ECG of 5000 samples: staged in W segments.
        zoo_conv1d(12, 5000, 7, 1, 3, 16),
    ];
    for (i, p) in shapes.into_iter().enumerate() {
        assert_eq!(conv_neon_takes(&p), Ok(()), "{p:?}");
        if has_dotprod() {
            assert_eq!(conv_dotprod_takes(&p), Ok(()), "{p:?}");
        }
        let c = fixed_conv_case(p, i as u32);
        let want = run_conv(&c, medq::kernels::reference::conv_s8);
        assert_eq!(run_conv(&c, conv_s8_neon), want, "neon {p:?}");
        assert_eq!(run_conv(&c, conv_s8_dotprod), want, "dotprod {p:?}");
    }
    let mut dw = conv_params(
        (25, 3, 1, 1, 1, 25),
        (5, 3, 1, 1, 1, 5),
        64,
        64,
        (3, -1),
        (-1, 127),
    );
    dw.groups = 64;
    assert_eq!(depthwise_conv_neon_takes(&dw), Ok(()));
    let c = fixed_conv_case(dw, 99);
    let want = run_conv(&c, medq::kernels::reference::conv_s8);
    assert_eq!(run_conv(&c, depthwise_conv_s8_neon), want);
}

/// The zoo's fully connected shapes are taken and exact.
#[test]
fn zoo_fully_connected_are_taken_and_exact() {
    for (i, (k, n)) in [(640, 128), (400, 42), (128, 5), (30, 2), (64, 10)]
        .into_iter()
        .enumerate()
    {
        let p = FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: -128,
            output_zero_point: 4,
            act_min: -128,
            act_max: 127,
        };
        assert_eq!(fully_connected_neon_takes(&p), Ok(()));
        if has_dotprod() {
            assert_eq!(fully_connected_dotprod_takes(&p), Ok(()));
        }
        let conv = fixed_conv_case(zoo_conv1d(k, 1, 1, 1, 0, n), i as u32);
        let c = FcCase {
            p,
            x: conv.x,
            w: conv.w,
            q: conv.q,
        };
        check_fc(&c).expect("bit-exact");
    }
}

// ---------------------------------------------------------------------------
// Any parameters and slice lengths: no panic, and the reference's bytes
// (including its early return, output unchanged, on a failed precondition).

fn wild() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..=6, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 2 + 1)]
}

fn wild_i32() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -130i32..=130, 1 => any::<i32>()]
}

#[derive(Clone, Debug)]
struct WildConv {
    p: ConvParams,
    lens: [usize; 6],
    fill: i8,
}

fn wild_conv() -> impl Strategy<Value = WildConv> {
    let dims = [
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
        wild(),
    ];
    let more = [wild(), wild(), wild(), wild(), wild(), wild(), wild()];
    let q = [wild_i32(), wild_i32(), wild_i32(), wild_i32()];
    (
        dims,
        more,
        q,
        [
            0usize..=60,
            0usize..=60,
            0usize..=60,
            0usize..=8,
            0usize..=8,
            0usize..=8,
        ],
        any::<i8>(),
    )
        .prop_map(|(d, m, q, lens, fill)| WildConv {
            p: ConvParams {
                in_channels: d[0],
                in_h: d[1],
                in_w: d[2],
                out_channels: d[3],
                out_h: d[4],
                out_w: d[5],
                kernel_h: d[6],
                kernel_w: d[7],
                stride_h: m[0],
                stride_w: m[1],
                dilation_h: m[2],
                dilation_w: m[3],
                pad_top: m[4],
                pad_left: m[5],
                groups: m[6],
                input_zero_point: q[0],
                output_zero_point: q[1],
                act_min: q[2],
                act_max: q[3],
            },
            lens,
            fill,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wild_parameters_match_reference(c in wild_conv()) {
        let [nx, nw, ny, nb, nm, ns] = c.lens;
        let x: Vec<i8> = (0..nx).map(|i| (i * 37) as i8).collect();
        let w: Vec<i8> = (0..nw).map(|i| (i * 11) as i8).collect();
        let (b, m, s) = (vec![7i32; nb], vec![1 << 30; nm], vec![-3i8; ns]);
        let run = |f: ConvFn| {
            let mut y = vec![c.fill; ny];
            f(&c.p, &x, &w, &b, &m, &s, &mut y);
            y
        };
        let want = run(medq::kernels::reference::conv_s8);
        prop_assert_eq!(&run(conv_s8_neon), &want);
        prop_assert_eq!(&run(conv_s8_dotprod), &want);
        prop_assert_eq!(&run(depthwise_conv_s8_neon), &want);
        // The same numbers as a fully connected layer and as pools.
        let fc = FullyConnectedParams {
            rows: c.p.in_h,
            in_features: c.p.in_w,
            out_features: c.p.out_w,
            input_zero_point: c.p.input_zero_point,
            output_zero_point: c.p.output_zero_point,
            act_min: c.p.act_min,
            act_max: c.p.act_max,
        };
        let run_fc = |f: FcFn| {
            let mut y = vec![c.fill; ny];
            f(&fc, &x, &w, &b, &m, &s, &mut y);
            y
        };
        let want = run_fc(medq::kernels::reference::fully_connected_s8);
        prop_assert_eq!(&run_fc(fully_connected_s8_neon), &want);
        prop_assert_eq!(&run_fc(fully_connected_s8_dotprod), &want);
        let pool = PoolParams {
            channels: c.p.in_channels,
            in_h: c.p.in_h,
            in_w: c.p.in_w,
            out_h: c.p.out_h,
            out_w: c.p.out_w,
            kernel_h: c.p.kernel_h,
            kernel_w: c.p.kernel_w,
            stride_h: c.p.stride_h,
            stride_w: c.p.stride_w,
            dilation_h: c.p.dilation_h,
            dilation_w: c.p.dilation_w,
            pad_top: c.p.pad_top,
            pad_left: c.p.pad_left,
            count_include_pad: c.p.groups % 2 == 1,
            zero_point: c.p.input_zero_point,
        };
        let run_pool = |f: fn(&PoolParams, &[i8], &mut [i8])| {
            let mut y = vec![c.fill; ny];
            f(&pool, &x, &mut y);
            y
        };
        prop_assert_eq!(run_pool(max_pool_s8_neon), run_pool(medq::kernels::reference::max_pool_s8));
        prop_assert_eq!(run_pool(avg_pool_s8_neon), run_pool(medq::kernels::reference::avg_pool_s8));
    }
}

/// Three wild sizes (or strides) and an innermost one from `last`.
fn four(last: impl Strategy<Value = usize>) -> impl Strategy<Value = [usize; 4]> {
    (wild(), wild(), wild(), last).prop_map(|(a, b, c, d)| [a, b, c, d])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Hand-built (possibly inconsistent) broadcasts and slice lengths.
    #[test]
    fn wild_broadcasts_match_reference(
        shape in four(prop_oneof![0usize..=40, Just(usize::MAX)]),
        a_strides in four(0usize..=2),
        b_strides in four(0usize..=2),
        lens in [0usize..=80, 0usize..=80, 0usize..=80],
        p in add_params(),
        q in mul_params(),
        fill in any::<i8>(),
    ) {
        let bc = Broadcast4 { out_shape: shape, a_strides, b_strides };
        let a: Vec<i8> = (0..lens[0]).map(|i| (i * 37) as i8).collect();
        let b: Vec<i8> = (0..lens[1]).map(|i| (i * 11) as i8).collect();
        let run = |f: &dyn Fn(&mut [i8])| {
            let mut y = vec![fill; lens[2]];
            f(&mut y);
            y
        };
        let want = run(&|y| medq::kernels::reference::add_s8(&p, &bc, &a, &b, y));
        prop_assert_eq!(run(&|y| add_s8_neon(&p, &bc, &a, &b, y)), want);
        let want = run(&|y| medq::kernels::reference::mul_s8(&q, &bc, &a, &b, y));
        prop_assert_eq!(run(&|y| mul_s8_neon(&q, &bc, &a, &b, y)), want);
    }
}

/// Weights of −128 times inputs of −128 would overflow the NEON kernel's
/// byte pairs (2 · 16384 > i16::MAX): such weights must take its `i16` path.
#[test]
fn conv_minus_128_weights_stay_exact() {
    for (cin, k, cout) in [(1, 4, 1), (3, 5, 4), (16, 7, 9)] {
        // Input zero point 0, so Σ (x − zp)·w is 16384 per tap; an overflow
        // would be off by 65536. Multiplier 2^-14 and output zero point 0
        // keep the outputs (16384·taps·2^-14 = taps) unsaturated.
        let mut p = zoo_conv1d(cin, 40, k, 1, k / 2, cout);
        (p.input_zero_point, p.output_zero_point) = (0, 0);
        let c = ConvCase {
            x: vec![-128; cin * 40],
            w: vec![-128; cout * cin * k],
            q: Quant {
                bias: vec![0; cout],
                mult: vec![1 << 30; cout],
                shift: vec![-13; cout],
            },
            p,
        };
        let want = run_conv(&c, medq::kernels::reference::conv_s8);
        assert!(want.iter().any(|&y| y != 127 && y != -128), "unsaturated");
        assert_eq!(run_conv(&c, conv_s8_neon), want, "{cin} {k} {cout}");
        assert_eq!(run_conv(&c, conv_s8_dotprod), want, "{cin} {k} {cout}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn lstm_matches_reference(c in recurrent_case(4, LSTM_TABLES)) {
        let p = c.lstm();
        prop_assert_eq!(lstm_neon_takes(&p), Ok(()));
        check_dotprod_takes(lstm_dotprod_takes(&p), lstm_neon_takes(&p))?;
        let expected = c.run_lstm(lstm_s8);
        prop_assert_eq!(c.run_lstm(lstm_s8_neon), expected.clone());
        prop_assert_eq!(c.run_lstm(lstm_s8_dotprod), expected);
    }

    #[test]
    fn gru_matches_reference(c in recurrent_case(3, GRU_TABLES)) {
        let p = c.gru();
        prop_assert_eq!(gru_neon_takes(&p), Ok(()));
        check_dotprod_takes(gru_dotprod_takes(&p), gru_neon_takes(&p))?;
        let expected = c.run_gru(gru_s8);
        prop_assert_eq!(c.run_gru(gru_s8_neon), expected.clone());
        prop_assert_eq!(c.run_gru(gru_s8_dotprod), expected);
    }

    #[test]
    fn rnn_matches_reference(c in recurrent_case(1, RNN_TABLES)) {
        let p = RnnParams { rec: c.rec };
        prop_assert_eq!(rnn_neon_takes(&p), Ok(()));
        check_dotprod_takes(rnn_dotprod_takes(&p), rnn_neon_takes(&p))?;
        let expected = c.run_rnn(rnn_s8);
        prop_assert_eq!(c.run_rnn(rnn_s8_neon), expected.clone());
        prop_assert_eq!(c.run_rnn(rnn_s8_dotprod), expected);
    }
}

// ---------------------------------------------------------------------------
// Int16 activations: the int16 convolution and fully connected kernels, in
// every pairing (int16 or int8 input, int16 or int8 output) and with int8
// or int16 weights, against the reference kernels.

/// An int16 call: the int8 case (its weights, quantization and the int8
/// input of the `s8_s16` pairing), an int16 input, int16 weights, and an
/// int16 output window.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Debug)]
struct S16Case<P> {
    p: P,
    x: Vec<i8>,
    x16: Vec<i16>,
    w: Vec<i8>,
    w16: Vec<i16>,
    q: Quant,
    act16: (i32, i32),
}

/// The operands of an int16 call with `n_x` inputs, `n_w` weights and
/// `n_q` output channels; with `rails`, every input at −32768 (or −128)
/// and every weight at −128 (or −32768), so that each term is at its
/// largest and a chunk's `i32` sums come nearest to 2^31.
#[cfg(feature = "int16-activations")]
fn s16_operands<P: Clone + std::fmt::Debug>(
    p: P,
    (n_x, n_w, n_q): (usize, usize, usize),
    rails: bool,
) -> impl Strategy<Value = S16Case<P>> {
    let operands = (
        bytes(n_x),
        x16s(n_x),
        weights(n_w),
        w16s(n_w),
        quant(n_q),
        act16(),
    );
    (Just(p), operands).prop_map(move |(p, (mut x, mut x16, mut w, mut w16, q, act16))| {
        if rails {
            x.fill(i8::MIN);
            x16.fill(i16::MIN);
            w.fill(i8::MIN);
            w16.fill(i16::MIN);
        }
        S16Case {
            p,
            x,
            x16,
            w,
            w16,
            q,
            act16,
        }
    })
}

/// Int16 convolutions: 1-D and small 2-D, 1–3 groups of 4–9 output
/// channels (blocks of 4 and the rest), or of 1–3 (refused), output planes
/// across the 16-position tile.
#[cfg(feature = "int16-activations")]
fn conv_s16_case() -> impl Strategy<Value = S16Case<ConvParams>> {
    let one_d = (flat_axis(), axis(1..=40, 1..=9), 1usize..=12);
    let two_d = (axis(1..=9, 1..=3), axis(1..=20, 1..=3), 1usize..=6);
    let shape = (prop_oneof![one_d, two_d], 1usize..=3);
    let cout_g = prop_oneof![3 => 4usize..=9, 1 => 1usize..=3];
    (shape, cout_g, (zp(), zp()), act())
        .prop_map(|(((h, w, cin_g), groups), cout_g, zps, act)| ConvParams {
            groups,
            ..conv_params(h, w, cin_g * groups, cout_g * groups, zps, act)
        })
        .prop_flat_map(|p| s16_conv_operands(p, false))
}

/// Reductions past one 504-tap chunk (1-D k9 over 60–130 channels), more
/// output channels than one pass keeps (64), and half of them at the rails.
#[cfg(feature = "int16-activations")]
fn conv_s16_long_case() -> impl Strategy<Value = S16Case<ConvParams>> {
    let shape = (
        axis(9..=30, 9..=9),
        60usize..=130,
        prop_oneof![4usize..=8, 62usize..=70],
    );
    (shape, (zp(), zp()), act(), any::<bool>())
        .prop_map(|((w, cin, cout), zps, act, rails)| {
            (
                conv_params((1, 1, 1, 1, 0, 1), w, cin, cout, zps, act),
                rails,
            )
        })
        .prop_flat_map(|(p, rails)| s16_conv_operands(p, rails))
}

/// Rows of 100–300 samples: whole 16-position tiles inside the input at
/// strides 1–3 (the vector gathers), and tiles that meet the padding.
#[cfg(feature = "int16-activations")]
fn conv_s16_long_row_case() -> impl Strategy<Value = S16Case<ConvParams>> {
    let shape = (axis(100..=300, 1..=9), 1usize..=6, 4usize..=9);
    (shape, (zp(), zp()), act())
        .prop_map(|((w, cin, cout), zps, act)| {
            conv_params((1, 1, 1, 1, 0, 1), w, cin, cout, zps, act)
        })
        .prop_flat_map(|p| s16_conv_operands(p, false))
}

#[cfg(feature = "int16-activations")]
fn s16_conv_operands(p: ConvParams, rails: bool) -> impl Strategy<Value = S16Case<ConvParams>> {
    let n_x = p.in_channels * p.in_h * p.in_w;
    let n_w = p.out_channels * (p.in_channels / p.groups) * p.kernel_h * p.kernel_w;
    s16_operands(p, (n_x, n_w, p.out_channels), rails)
}

/// A mixed-precision kernel's signature.
#[cfg(feature = "int16-activations")]
type S16Fn<P, X, Y, W> = fn(&P, &[X], &[W], &[i32], &[i32], &[i8], &mut [Y]);

/// An optimized kernel and the reference it must match.
#[cfg(feature = "int16-activations")]
type S16Pair<P, X, Y, W> = (S16Fn<P, X, Y, W>, S16Fn<P, X, Y, W>);

/// `f` and `reference` on the same operands, with `p` adjusted for the
/// pairing: a symmetric input when it is int16, and the int16 output window
/// (zero point 0) when the output is int16.
#[cfg(feature = "int16-activations")]
#[allow(clippy::too_many_arguments)]
fn check_pairing<P: Copy, X, Y: Copy + PartialEq + std::fmt::Debug, W>(
    p: &P,
    x: &[X],
    w: &[W],
    q: &Quant,
    n_out: usize,
    fill: Y,
    (f, reference): S16Pair<P, X, Y, W>,
    name: &str,
) -> Result<(), TestCaseError> {
    let run = |f: S16Fn<P, X, Y, W>| {
        let mut y = vec![fill; n_out];
        f(p, x, w, &q.bias, &q.mult, &q.shift, &mut y);
        y
    };
    prop_assert_eq!(run(f), run(reference), "{}", name);
    Ok(())
}

#[cfg(feature = "int16-activations")]
fn check_conv_s16(c: &S16Case<ConvParams>) -> Result<(), TestCaseError> {
    use medq::kernels::reference as r;
    let n_out = c.p.out_channels * c.p.out_h * c.p.out_w;
    let expect = if c.p.out_channels / c.p.groups >= 4 {
        Ok(())
    } else {
        Err("fewer than 4 output channels per group")
    };
    prop_assert_eq!(conv_s16_neon_takes(&c.p), expect);
    let sym = ConvParams {
        input_zero_point: 0,
        ..c.p
    };
    let wide = |p: ConvParams| ConvParams {
        output_zero_point: 0,
        act_min: c.act16.0,
        act_max: c.act16.1,
        ..p
    };
    let (x, x16, w, w16, q) = (&c.x, &c.x16, &c.w, &c.w16, &c.q);
    let (wide_sym, wide_in) = (wide(sym), wide(c.p));
    let (y16, y8) = (0x5A5Ai16, 0x55i8);
    let pair = (
        conv_s16_neon as S16Fn<_, _, _, _>,
        r::conv_s16 as S16Fn<_, _, _, _>,
    );
    check_pairing(&wide_sym, x16, w, q, n_out, y16, pair, "s16")?;
    let pair = (
        conv_s16_s8_neon as S16Fn<_, _, _, _>,
        r::conv_s16_s8 as S16Fn<_, _, _, _>,
    );
    check_pairing(&sym, x16, w, q, n_out, y8, pair, "s16_s8")?;
    let pair = (
        conv_s8_s16_neon as S16Fn<_, _, _, _>,
        r::conv_s8_s16 as S16Fn<_, _, _, _>,
    );
    check_pairing(&wide_in, x, w, q, n_out, y16, pair, "s8_s16")?;
    let pair = (
        conv_s16_w16_neon as S16Fn<_, _, _, _>,
        r::conv_s16_w16 as S16Fn<_, _, _, _>,
    );
    check_pairing(&wide_sym, x16, w16, q, n_out, y16, pair, "s16_w16")?;
    let pair = (
        conv_s16_s8_w16_neon as S16Fn<_, _, _, _>,
        r::conv_s16_s8_w16 as S16Fn<_, _, _, _>,
    );
    check_pairing(&sym, x16, w16, q, n_out, y8, pair, "s16_s8_w16")?;
    let pair = (
        conv_s8_s16_w16_neon as S16Fn<_, _, _, _>,
        r::conv_s8_s16_w16 as S16Fn<_, _, _, _>,
    );
    check_pairing(&wide_in, x, w16, q, n_out, y16, pair, "s8_s16_w16")
}

/// Int16 fully connected calls over `k` features; with `rails` (a quarter
/// of the cases) every term at its largest.
#[cfg(feature = "int16-activations")]
fn fc_s16_case(
    k: impl Strategy<Value = usize>,
) -> impl Strategy<Value = S16Case<FullyConnectedParams>> {
    let rails = prop_oneof![3 => Just(false), 1 => Just(true)];
    (1usize..=3, k, 1usize..=11, (zp(), zp()), act(), rails)
        .prop_map(|(rows, k, n, (zi, zo), (lo, hi), rails)| {
            let p = FullyConnectedParams {
                rows,
                in_features: k,
                out_features: n,
                input_zero_point: zi,
                output_zero_point: zo,
                act_min: lo,
                act_max: hi,
            };
            (p, rails)
        })
        .prop_flat_map(|(p, rails)| {
            let sizes = (
                p.rows * p.in_features,
                p.out_features * p.in_features,
                p.out_features,
            );
            s16_operands(p, sizes, rails)
        })
}

#[cfg(feature = "int16-activations")]
fn check_fc_s16(c: &S16Case<FullyConnectedParams>) -> Result<(), TestCaseError> {
    use medq::kernels::reference as r;
    let n_out = c.p.rows * c.p.out_features;
    let expect = if c.p.in_features <= 4096 {
        Ok(())
    } else {
        Err("more than 4096 input features")
    };
    prop_assert_eq!(fully_connected_s16_neon_takes(&c.p), expect);
    let sym = FullyConnectedParams {
        input_zero_point: 0,
        ..c.p
    };
    let wide = |p: FullyConnectedParams| FullyConnectedParams {
        output_zero_point: 0,
        act_min: c.act16.0,
        act_max: c.act16.1,
        ..p
    };
    let (x, x16, w, w16, q) = (&c.x, &c.x16, &c.w, &c.w16, &c.q);
    let (wide_sym, wide_in) = (wide(sym), wide(c.p));
    let (y16, y8) = (0x5A5Ai16, 0x55i8);
    type F<X, Y, W> = S16Fn<FullyConnectedParams, X, Y, W>;
    let pair = (
        fully_connected_s16_neon as F<_, _, _>,
        r::fully_connected_s16 as F<_, _, _>,
    );
    check_pairing(&wide_sym, x16, w, q, n_out, y16, pair, "s16")?;
    let pair = (
        fully_connected_s16_s8_neon as F<_, _, _>,
        r::fully_connected_s16_s8 as F<_, _, _>,
    );
    check_pairing(&sym, x16, w, q, n_out, y8, pair, "s16_s8")?;
    let pair = (
        fully_connected_s8_s16_neon as F<_, _, _>,
        r::fully_connected_s8_s16 as F<_, _, _>,
    );
    check_pairing(&wide_in, x, w, q, n_out, y16, pair, "s8_s16")?;
    let pair = (
        fully_connected_s16_w16_neon as F<_, _, _>,
        r::fully_connected_s16_w16 as F<_, _, _>,
    );
    check_pairing(&wide_sym, x16, w16, q, n_out, y16, pair, "s16_w16")?;
    let pair = (
        fully_connected_s16_s8_w16_neon as F<_, _, _>,
        r::fully_connected_s16_s8_w16 as F<_, _, _>,
    );
    check_pairing(&sym, x16, w16, q, n_out, y8, pair, "s16_s8_w16")?;
    let pair = (
        fully_connected_s8_s16_w16_neon as F<_, _, _>,
        r::fully_connected_s8_s16_w16 as F<_, _, _>,
    );
    check_pairing(&wide_in, x, w16, q, n_out, y16, pair, "s8_s16_w16")
}

#[cfg(feature = "int16-activations")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn conv_s16_matches_reference(c in conv_s16_case()) {
        check_conv_s16(&c)?;
    }

    /// Rows of 1–70 features (tails of 8), and of 380–420.
    #[test]
    fn fully_connected_s16_matches_reference(
        c in fc_s16_case(prop_oneof![1usize..=70, 380usize..=420]),
    ) {
        check_fc_s16(&c)?;
    }
}

#[cfg(feature = "int16-activations")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn conv_s16_long_reductions_match_reference(c in conv_s16_long_case()) {
        check_conv_s16(&c)?;
    }

    #[test]
    fn conv_s16_long_rows_match_reference(c in conv_s16_long_row_case()) {
        check_conv_s16(&c)?;
    }

    /// Past the 2048 terms after which the int8-weight lanes are flushed,
    /// and past the 4096 features the kernel takes (refused).
    #[test]
    fn fully_connected_s16_long_rows_match_reference(
        c in fc_s16_case(prop_oneof![2040usize..=2100, 4096usize..=4100]),
    ) {
        check_fc_s16(&c)?;
    }
}

/// Every term at its largest over the longest row the kernel takes (4096
/// features, 512 terms per lane): a lane summed in `i32` for all of them
/// would reach 2^31.
#[cfg(feature = "int16-activations")]
#[test]
fn fully_connected_s16_at_the_rails_over_the_longest_row_is_exact() {
    let k = 4096;
    let out = 5;
    let p = FullyConnectedParams {
        rows: 1,
        in_features: k,
        out_features: out,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    // 4096 · 2^22 = 2^34 at the output, brought back to 2^13 (or 2^5 for
    // the int8 pairing) so that an overflowed sum cannot saturate alike.
    let case = |shift: i8| S16Case {
        p,
        x: vec![i8::MIN; k],
        x16: vec![i16::MIN; k],
        w: vec![i8::MIN; k * out],
        w16: vec![i16::MIN; k * out],
        q: Quant {
            bias: vec![0; out],
            mult: vec![1 << 30; out],
            shift: vec![shift; out],
        },
        act16: (-32768, 32767),
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    runner
        .run(&Just(-20i8), |shift| check_fc_s16(&case(shift)))
        .expect("bit-exact at the rails");
}
