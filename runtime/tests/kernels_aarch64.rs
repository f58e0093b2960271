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

/// Weights: any byte, sometimes only the extremes.
fn weights(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        4 => vec(any::<i8>(), n),
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

fn run_conv(
    c: &ConvCase,
    f: fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]),
) -> Vec<i8> {
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
}
