//! Runs every DSP kernel (`medq::kernels::cortex_m`: `conv_s8_dsp`,
//! `depthwise_conv_s8_dsp`, `fully_connected_s8_dsp`) against
//! `medq::kernels::reference` over many random shapes, parameters and data,
//! and compares the outputs byte for byte: on the calls its `_takes` accepts
//! (the kernel computes them) and on those it refuses (its safety net, the
//! reference, must give the same bytes). Prints what each kernel took and
//! why it refused the rest. Exits 0 only if every case matches and the DSP
//! instructions are in use.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use medq::kernels::{conv_out_len, cortex_m as dsp, ConvParams, FullyConnectedParams};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Op, Rng};

const CONV_CASES: u32 = 6000;
/// Extra conv cases aimed at the depthwise kernel (one input channel per
/// group, mostly 3×3), and at the edges of its three-tap rows.
const DW_CASES: u32 = 3000;
/// Extra conv cases aimed at the single-channel row passes (one input
/// channel per group, `kW <= 9`), and at the edges of their requantization.
const ROW_CASES: u32 = 3000;
const FC_CASES: u32 = 4000;
const SEED: u64 = 0x6d65_6471_2d64_7370; // "medq-dsp"

const IN_CAP: usize = 8192;
const W_CAP: usize = 65536;
const OUT_CAP: usize = 8192;
const CH_CAP: usize = 256;
/// Written to both outputs before each case, so untouched bytes compare too.
const SENTINEL: i8 = 0x5A;

type Bufs = medq_qemu_bench::Bufs<IN_CAP, W_CAP, OUT_CAP, CH_CAP>;

/// Per-case tallies, to show what the random cases covered.
#[derive(Default)]
struct Tally {
    cases: u32,
    failures: u32,
    macs: u64,
    one_d: u32,
    two_d: u32,
    depthwise: u32,
    grouped: u32,
    strided: u32,
    dilated: u32,
    padded: u32,
    k_tail: u32,
    /// DSP paths taken: single-channel rows, 4/2/1 columns, reference.
    rows_path: u32,
    /// Of those, calls where the stride-1 passes apply (`kW <= 7`, no
    /// fused clamp, output zero point in `i8`, at least 2 outputs).
    row_passes: u32,
    four_wide: u32,
    two_wide: u32,
    one_wide: u32,
    /// Reductions too long for two columns: one position at a time, four
    /// weight rows a pass, in chunks of whole input channels.
    by_position: u32,
    /// FC calls whose reduction runs in several chunks.
    chunked: u32,
    fallback: u32,
    zp_extreme: u32,
    /// Per DSP kernel (in `Op::DSP_KERNELS` order): calls taken, refused,
    /// and the reasons given.
    kernels: [KernelTally; 2],
}

#[derive(Default)]
struct KernelTally {
    taken: u32,
    refused: u32,
    reasons: [(&'static str, u32); 8],
}

impl KernelTally {
    fn record(&mut self, verdict: Result<(), &'static str>) {
        let Err(why) = verdict else {
            self.taken += 1;
            return;
        };
        self.refused += 1;
        // Reasons are static strings: the same one is the same pointer.
        let slot = self
            .reasons
            .iter_mut()
            .find(|(r, n)| *n == 0 || core::ptr::eq(*r, why));
        if let Some(slot) = slot {
            *slot = (why, slot.1 + 1);
        }
    }
}

/// One line per DSP kernel of `P`: what it took and why it refused the rest.
fn report_kernels<P: Op>(t: &Tally) {
    for (k, kt) in P::DSP_KERNELS.iter().zip(&t.kernels) {
        hprintln!(
            "      {}: took {}, refused {}",
            k.name,
            kt.taken,
            kt.refused
        );
        for (why, n) in kt.reasons.iter().filter(|(_, n)| *n > 0) {
            hprintln!("        {:>5} x {}", n, why);
        }
    }
}

#[entry]
fn main() -> ! {
    if !dsp::USES_DSP_INSTRUCTIONS {
        hprintln!("bitexact: FAIL: medq was built without the DSP kernels (cfg medq_dsp unset)");
        exit(false);
    }
    // Large buffers live in a static (RAM is 4 MiB), taken once.
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs::ZERO) else {
        exit(false)
    };
    let mut rng = Rng::new(SEED);

    let conv = check(&mut rng, b, CONV_CASES, conv_case, tally_conv);
    let dw = check(&mut rng, b, DW_CASES, dw_case, tally_conv);
    let rows = check(&mut rng, b, ROW_CASES, row_case, tally_conv);
    let fc = check(&mut rng, b, FC_CASES, fc_case, tally_fc);
    let invalid_ok = invalid_calls(b);

    hprintln!(
        "conv: {} cases, {} MACs: 1-D {}, 2-D {}, depthwise {}, grouped {}, strided {}, dilated {}, padded {}, K%4!=0 {}, input zp at -128/127 {}",
        conv.cases, conv.macs, conv.one_d, conv.two_d, conv.depthwise, conv.grouped, conv.strided,
        conv.dilated, conv.padded, conv.k_tail, conv.zp_extreme
    );
    hprintln!(
        "      paths: single-channel rows {}, columns x4 {}, x2 {}, x1 {}, by position {}, reference fallback {}",
        conv.rows_path,
        conv.four_wide,
        conv.two_wide,
        conv.one_wide,
        conv.by_position,
        conv.fallback
    );
    report_kernels::<ConvParams>(&conv);
    hprintln!(
        "dw:   {} cases, {} MACs: 2-D {}, strided {}, dilated {}, padded {}, input zp at -128/127 {}",
        dw.cases, dw.macs, dw.two_d, dw.strided, dw.dilated, dw.padded, dw.zp_extreme
    );
    report_kernels::<ConvParams>(&dw);
    hprintln!(
        "rows: {} cases, {} MACs: depthwise {}, strided {}, padded {}; paths: single-channel rows {} (row passes {}), reference fallback {}",
        rows.cases, rows.macs, rows.depthwise, rows.strided, rows.padded, rows.rows_path,
        rows.row_passes, rows.fallback
    );
    report_kernels::<ConvParams>(&rows);
    hprintln!(
        "fc:   {} cases, {} MACs: K%4!=0 {}, input zp at -128/127 {}; paths: input rows x4 {}, x2 {}, weight rows x4 {} (of which K in chunks {}), reference fallback {}",
        fc.cases, fc.macs, fc.k_tail, fc.zp_extreme, fc.four_wide, fc.two_wide, fc.one_wide,
        fc.chunked, fc.fallback
    );
    report_kernels::<FullyConnectedParams>(&fc);
    let failures =
        conv.failures + dw.failures + rows.failures + fc.failures + u32::from(!invalid_ok);
    if failures == 0 {
        hprintln!(
            "bitexact: PASS: {} cases, DSP output byte-identical to the reference",
            conv.cases + dw.cases + rows.cases + fc.cases
        );
        exit(true)
    } else {
        hprintln!("bitexact: FAIL: {} mismatching cases", failures);
        exit(false)
    }
}

/// An input zero point: often an extreme, otherwise anywhere in i8, and
/// rarely outside i8 (meaningless, but the kernels must still agree).
fn input_zp(rng: &mut Rng) -> i32 {
    match rng.range(0, 19) {
        0..=2 => -128,
        3..=4 => 127,
        5 => 0,
        6 => rng.range(-400, 400) as i32,
        _ => rng.range(-128, 127) as i32,
    }
}

fn act(rng: &mut Rng) -> (i32, i32) {
    if rng.chance(1, 2) {
        (-128, 127)
    } else {
        let a = rng.range(-128, 127) as i32;
        let b = rng.range(-128, 127) as i32;
        (a.min(b), a.max(b))
    }
}

fn conv_case(rng: &mut Rng) -> Option<ConvParams> {
    let two_d = rng.chance(3, 10);
    let depthwise = rng.chance(1, 5);
    let groups = if depthwise {
        rng.usize(1, 24)
    } else if rng.chance(1, 5) {
        rng.usize(2, 4)
    } else {
        1
    };
    let cin_g = if depthwise {
        1
    } else if rng.chance(1, 8) {
        rng.usize(20, 150) // long reductions: one column, or channel chunks
    } else {
        rng.usize(1, 33)
    };
    let cout_g = if depthwise {
        rng.usize(1, 3)
    } else {
        rng.usize(1, 24)
    };
    let (kh, sh, dh, pt, pb, in_h) = if two_d {
        (
            rng.usize(1, 5),
            rng.usize(1, 3),
            if rng.chance(1, 4) { 2 } else { 1 },
            rng.usize(0, 2),
            rng.usize(0, 2),
            rng.usize(1, 12),
        )
    } else {
        (1, 1, 1, 0, 0, 1)
    };
    let kw = rng.usize(1, if two_d { 5 } else { 11 });
    let sw = if rng.chance(1, 3) { rng.usize(2, 3) } else { 1 };
    let dw = if rng.chance(1, 4) { rng.usize(2, 3) } else { 1 };
    let pl = rng.usize(0, 4);
    let pr = rng.usize(0, 4);
    let in_w = rng.usize(1, if two_d { 16 } else { 150 });
    let out_h = conv_out_len(in_h, kh, sh, dh, pt, pb)?;
    let out_w = conv_out_len(in_w, kw, sw, dw, pl, pr)?;
    let p = ConvParams {
        in_channels: groups * cin_g,
        in_h,
        in_w,
        out_channels: groups * cout_g,
        out_h,
        out_w,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: sh,
        stride_w: sw,
        dilation_h: dh,
        dilation_w: dw,
        pad_top: pt,
        pad_left: pl,
        groups,
        input_zero_point: input_zp(rng),
        output_zero_point: rng.range(-128, 127) as i32,
        act_min: 0,
        act_max: 0,
    };
    let (act_min, act_max) = act(rng);
    let p = ConvParams {
        act_min,
        act_max,
        ..p
    };
    let fits = p.in_channels * in_h * in_w <= IN_CAP
        && p.out_channels * cin_g * kh * kw <= W_CAP
        && p.out_channels * out_h * out_w <= OUT_CAP
        && p.out_channels <= CH_CAP;
    fits.then_some(p)
}

/// One input channel per group, mostly 3×3 (the three-tap rows) at stride
/// 1 along W, otherwise kernels up to 5×5, strides, H (and sometimes W)
/// dilation, padding on every side, depth multipliers 1–2, planes from 1×1
/// to 30×40 (rows longer than the depthwise kernel's buffer are refused).
fn dw_case(rng: &mut Rng) -> Option<ConvParams> {
    let three = rng.chance(3, 5);
    let (kh, kw) = if three {
        (3, 3)
    } else {
        (rng.usize(1, 5), rng.usize(1, 5))
    };
    let sw = if three || rng.chance(1, 2) { 1 } else { 2 };
    let sh = if rng.chance(1, 4) { 2 } else { 1 };
    let dh = if rng.chance(1, 5) { 2 } else { 1 };
    let dw = if rng.chance(1, 12) { 2 } else { 1 };
    let widest = if rng.chance(1, 10) { 300 } else { 40 };
    let (in_h, in_w) = (rng.usize(1, 30), rng.usize(1, widest));
    let (pt, pb, pl, pr) = (
        rng.usize(0, 2),
        rng.usize(0, 2),
        rng.usize(0, 2),
        rng.usize(0, 2),
    );
    let out_h = conv_out_len(in_h, kh, sh, dh, pt, pb)?;
    let out_w = conv_out_len(in_w, kw, sw, dw, pl, pr)?;
    let groups = rng.usize(1, 16);
    let (act_min, act_max) = act(rng);
    let p = ConvParams {
        in_channels: groups,
        in_h,
        in_w,
        out_channels: groups * rng.usize(1, 2),
        out_h,
        out_w,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: sh,
        stride_w: sw,
        dilation_h: dh,
        dilation_w: dw,
        pad_top: pt,
        pad_left: pl,
        groups,
        input_zero_point: input_zp(rng),
        output_zero_point: rng.range(-128, 127) as i32,
        act_min,
        act_max,
    };
    let fits = p.in_channels * in_h * in_w <= IN_CAP
        && p.out_channels * kh * kw <= W_CAP
        && p.out_channels * out_h * out_w <= OUT_CAP;
    fits.then_some(p)
}

/// Bias, multipliers and shifts for `n` channels whose outputs spread over
/// the i8 range for a reduction of `k` terms, with the extremes mixed in.
fn quant(rng: &mut Rng, b: &mut Bufs, n: usize, k: usize) {
    // log2 of a typical |acc| (≈ 2^13 · sqrt(k)) minus 6 bits of output.
    let typical = 13 + (usize::BITS - k.leading_zeros()) as i64 / 2 - 6;
    for c in 0..n {
        b.bias[c] = match rng.range(0, 9) {
            0 => rng.next_u32() as i32, // anything: the sums may wrap
            1 => 0,
            _ => rng.range(-(1 << 16), 1 << 16) as i32,
        };
        b.multiplier[c] = match rng.range(0, 19) {
            0 => 0,
            1 => i32::MAX,
            2 => rng.range(1, (1 << 30) - 1) as i32,
            _ => rng.range(1 << 30, i32::MAX as i64) as i32,
        };
        b.shift[c] = match rng.range(0, 21) {
            0 => -31,
            1 => 30,
            2 => rng.range(0, 8) as i8,
            // The row passes take `hs = −shift − 1 <= 22` only.
            3 => -23,
            4 => -24,
            _ => (-typical + rng.range(-3, 3)).clamp(-31, 30) as i8,
        };
    }
}

/// Draws cases from `case` until `n` fit, checking each one; `tally`
/// records what the case covers.
fn check<P: Op>(
    rng: &mut Rng,
    b: &mut Bufs,
    n: u32,
    case: fn(&mut Rng) -> Option<P>,
    tally: fn(&P, &mut Tally),
) -> Tally {
    let mut t = Tally::default();
    while t.cases < n {
        if let Some(p) = case(rng) {
            compare(rng, &p, b, &mut t);
            tally(&p, &mut t);
        }
    }
    t
}

/// Runs the reference and every DSP kernel on random data for `p`; every
/// output byte, and every byte past the outputs, must match.
fn compare<P: Op>(rng: &mut Rng, p: &P, b: &mut Bufs, t: &mut Tally) {
    let k = p.reduction();
    b.fill(rng, p);
    quant(rng, b, p.channels(), k);
    b.want.fill(SENTINEL);
    let (o, want, _) = b.split(p);
    let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
    P::REFERENCE(p, x, w, bias, m, s, want);
    let mut ok = true;
    for (kernel, kt) in P::DSP_KERNELS.iter().zip(&mut t.kernels) {
        b.got.fill(SENTINEL);
        let (o, _, got) = b.split(p);
        let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
        (kernel.run)(p, x, w, bias, m, s, got);
        kt.record((kernel.takes)(p));
        if b.want != b.got {
            ok = false;
            if t.failures < 5 {
                let at = b
                    .want
                    .iter()
                    .zip(&b.got)
                    .position(|(w, g)| w != g)
                    .unwrap_or(0);
                hprintln!(
                    "{} MISMATCH at output {}: want {} got {}; {:?}",
                    kernel.name,
                    at,
                    b.want[at],
                    b.got[at],
                    p
                );
            }
        }
    }
    t.cases += 1;
    t.macs += p.macs();
    t.k_tail += u32::from(!k.is_multiple_of(4));
    t.failures += u32::from(!ok);
}

fn tally_conv(p: &ConvParams, t: &mut Tally) {
    let cin_g = p.in_channels / p.groups;
    let k = p.reduction();
    let one_d = p.in_h == 1 && p.kernel_h == 1 && p.out_h == 1;
    t.one_d += u32::from(one_d);
    t.two_d += u32::from(!one_d);
    t.depthwise += u32::from(cin_g == 1 && p.groups > 1);
    t.grouped += u32::from(cin_g > 1 && p.groups > 1);
    t.strided += u32::from(p.stride_w > 1 || p.stride_h > 1);
    t.dilated += u32::from(p.dilation_w > 1 || p.dilation_h > 1);
    t.padded += u32::from(p.pad_left > 0 || p.pad_top > 0 || p.out_w > p.in_w);
    let rows_path = cin_g == 1
        && p.kernel_h == 1
        && p.dilation_w == 1
        && p.kernel_w <= 8
        && (p.out_w - 1) * p.stride_w + 2 * p.kernel_w.div_ceil(2) <= dsp::MAX_REDUCTION;
    // Depthwise over several kernel rows: the conv kernel leaves it to the
    // reference (the depthwise kernel's shape).
    let refused = cin_g == 1 && p.kernel_h > 1;
    let taps = p.kernel_h * p.kernel_w;
    classify(
        t,
        (k, taps),
        p.out_h * p.out_w,
        p.input_zero_point,
        (rows_path, refused),
    );
    let passes = rows_path
        && p.stride_w == 1
        && p.kernel_w <= 7
        && p.out_w >= 2
        && p.act_min == -128
        && p.act_max == 127
        && (-128..=127).contains(&p.output_zero_point)
        && (-128..=127).contains(&p.input_zero_point);
    t.row_passes += u32::from(passes);
}

/// One input channel per group and `kH = 1`: the single-channel row path,
/// mostly at stride 1 (the passes), every kernel length 1..=9 (8 and 9 take
/// the older row code or the columns), odd and even lengths, padding on
/// either side; requantization near the passes' limits (`hs` 22/23, i.e.
/// shift −23/−24), output zero points at the `i8` extremes, and biases
/// that make the sums wrap.
fn row_case(rng: &mut Rng) -> Option<ConvParams> {
    let groups = rng.usize(1, 6);
    let cout_g = rng.usize(1, 5);
    let kw = rng.usize(1, 9);
    let sw = if rng.chance(1, 5) { 2 } else { 1 };
    let pl = rng.usize(0, 4);
    let pr = rng.usize(0, 4);
    let two_d = rng.chance(1, 8);
    let (in_h, pt, pb, sh) = if two_d {
        (
            rng.usize(1, 4),
            rng.usize(0, 1),
            rng.usize(0, 1),
            rng.usize(1, 2),
        )
    } else {
        (1, 0, 0, 1)
    };
    let in_w = rng.usize(1, 300);
    let out_h = conv_out_len(in_h, 1, sh, 1, pt, pb)?;
    let out_w = conv_out_len(in_w, kw, sw, 1, pl, pr)?;
    let (act_min, act_max) = if rng.chance(4, 5) {
        (-128, 127)
    } else {
        act(rng)
    };
    let output_zero_point = match rng.range(0, 9) {
        0 => -128,
        1 => 127,
        2 => rng.range(-300, 300) as i32,
        _ => rng.range(-128, 127) as i32,
    };
    let p = ConvParams {
        in_channels: groups,
        in_h,
        in_w,
        out_channels: groups * cout_g,
        out_h,
        out_w,
        kernel_h: 1,
        kernel_w: kw,
        stride_h: sh,
        stride_w: sw,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: pt,
        pad_left: pl,
        groups,
        input_zero_point: input_zp(rng),
        output_zero_point,
        act_min,
        act_max,
    };
    let fits = groups * in_h * in_w <= IN_CAP
        && p.out_channels * kw <= W_CAP
        && p.out_channels * out_h * out_w <= OUT_CAP;
    fits.then_some(p)
}

/// Which path the conv kernel takes, from its documented limits (the
/// column buffer holds `MAX_REDUCTION` lanes: one column of up to that
/// reduction, two of half, four of a quarter; past half, one position at a
/// time in chunks of whole input channels of at most `MAX_REDUCTION` taps).
fn classify(
    t: &mut Tally,
    (k, taps): (usize, usize),
    columns: usize,
    zp: i32,
    (rows_path, refused): (bool, bool),
) {
    let zp_ok = (-128..=127).contains(&zp);
    let k4 = k.div_ceil(4) * 4;
    if !zp_ok || taps > dsp::MAX_REDUCTION || refused {
        t.fallback += 1;
    } else if k4 > dsp::MAX_REDUCTION / 2 {
        t.by_position += 1;
    } else if rows_path {
        t.rows_path += 1;
    } else if k4 <= dsp::MAX_REDUCTION / 4 && columns >= 3 {
        t.four_wide += 1;
    } else if k4 <= dsp::MAX_REDUCTION / 2 && columns >= 2 {
        t.two_wide += 1;
    } else {
        t.one_wide += 1;
    }
    t.zp_extreme += u32::from(zp == -128 || zp == 127);
}

fn fc_case(rng: &mut Rng) -> Option<FullyConnectedParams> {
    let rows = if rng.chance(1, 2) {
        1
    } else {
        rng.usize(2, 11)
    };
    // Past 640 inputs the reduction goes through the column in chunks.
    let (k, n) = match rng.range(0, 9) {
        0 => (rng.usize(1, 8), rng.usize(1, 40)),
        1 => (rng.usize(400, 700), rng.usize(1, 40)),
        2 => (rng.usize(640, 3000), rng.usize(1, 20)),
        _ => (rng.usize(1, 300), rng.usize(1, 40)),
    };
    let (act_min, act_max) = act(rng);
    let p = FullyConnectedParams {
        rows,
        in_features: k,
        out_features: n,
        input_zero_point: input_zp(rng),
        output_zero_point: rng.range(-128, 127) as i32,
        act_min,
        act_max,
    };
    let fits = rows * k <= IN_CAP && n * k <= W_CAP && rows * n <= OUT_CAP && n <= CH_CAP;
    fits.then_some(p)
}

/// The fully connected kernel's paths, from its documented limits: two or
/// more input rows and `K <= MAX_REDUCTION / 2` run as columns (four or
/// two input rows at a time); otherwise one input row at a time against
/// four weight rows, `K` in chunks of `MAX_REDUCTION`.
fn tally_fc(p: &FullyConnectedParams, t: &mut Tally) {
    let k4 = p.in_features.div_ceil(4) * 4;
    t.zp_extreme += u32::from(p.input_zero_point == -128 || p.input_zero_point == 127);
    if !(-128..=127).contains(&p.input_zero_point) {
        t.fallback += 1;
    } else if p.rows >= 3 && k4 <= dsp::MAX_REDUCTION / 4 {
        t.four_wide += 1;
    } else if p.rows >= 2 && k4 <= dsp::MAX_REDUCTION / 2 {
        t.two_wide += 1;
    } else {
        t.one_wide += 1;
        t.chunked += u32::from(k4 > dsp::MAX_REDUCTION);
    }
}

/// Calls that break a precondition leave the output untouched, as in the
/// reference; a valid call right after does write it.
fn invalid_calls(b: &mut Bufs) -> bool {
    let p = conv1d(4, 4, 3, 10, 1, 1, (3, 0));
    b.input[..40].fill(9);
    b.weights[..48].fill(1);
    b.bias[..4].fill(0);
    b.multiplier[..4].fill(1 << 30);
    b.shift[..4].fill(1);
    let (x, w, got) = (&b.input[..40], &b.weights[..48], &mut b.got);
    let (bias, m, s) = (&b.bias[..4], &b.multiplier[..4], &b.shift[..4]);
    let mut ok = true;
    for bad in [
        ConvParams { groups: 3, ..p },
        ConvParams { stride_w: 0, ..p },
        ConvParams { act_max: 128, ..p },
        ConvParams { out_w: 11, ..p },
    ] {
        got.fill(SENTINEL);
        dsp::conv_s8_dsp(&bad, x, w, bias, m, s, &mut got[..40]);
        ok &= got.iter().all(|&y| y == SENTINEL);
    }
    // Valid: interior outputs sum 4 channels × 3 taps of (9 − 3) = 72; the
    // edges lose a tap to padding: 48.
    dsp::conv_s8_dsp(&p, x, w, bias, m, s, &mut got[..40]);
    ok &= got[..10] == [48, 72, 72, 72, 72, 72, 72, 72, 72, 48];
    let fp = fc(40, 1, (3, 0));
    got.fill(SENTINEL);
    dsp::fully_connected_s8_dsp(&fp, &x[..39], &w[..40], bias, m, s, &mut got[..1]);
    ok &= got[0] == SENTINEL;
    // Valid: 40 · 6 = 240 saturates to 127.
    let (bias, m, s) = (&bias[..1], &m[..1], &s[..1]);
    dsp::fully_connected_s8_dsp(&fp, x, &w[..40], bias, m, s, &mut got[..1]);
    ok &= got[0] == 127;
    if !ok {
        hprintln!("invalid-call checks FAILED");
    }
    ok
}
