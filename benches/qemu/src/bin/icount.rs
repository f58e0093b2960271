//! Guest instructions per conv/FC layer on a Cortex-M4 under QEMU `-icount`,
//! reference kernels against the DSP ones (the kernel a prepare-time
//! selection picks: the first of the op's DSP kernels whose `_takes`
//! accepts the layer), for the ECG model's layers, a few extra shapes, and
//! the layers of the CMSIS-NN comparison (issue 10), with CMSIS-NN's cited
//! figures beside ours. Each layer also checks that both kernels give the
//! same bytes. The MAC count is the nominal one, `C_out · positions · K`
//! (padded taps included).
//!
//! After the table, one JSON object a line for scripts, prefixed
//! `cortex_m4 `: `layer`, `macs`, `instr_per_mac` (the DSP kernel),
//! `cmsis_nn_instr_per_mac` (`null` where there is no cited figure),
//! `reference_instr_per_mac` and `kernel`.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{cortex_m as dsp, ConvParams, FullyConnectedParams};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Counter, Op, Ratio, Rng};

/// Runs per measurement (layers of more than 500 000 MACs: 2).
const REPS: u32 = 10;
/// (input, output) zero points: the ECG model's activations after ReLU sit
/// at −128, its logits at 0.
const CONV_ZP: (i32, i32) = (-128, -128);
const FC_ZP: (i32, i32) = (-128, 0);

enum Layer {
    Conv(ConvParams),
    Fc(FullyConnectedParams),
}

const IN_CAP: usize = 16384;
const W_CAP: usize = 81920;
const OUT_CAP: usize = 16384;
const CH_CAP: usize = 128;

type Bufs = medq_qemu_bench::Bufs<IN_CAP, W_CAP, OUT_CAP, CH_CAP>;

/// CMSIS-NN's instructions per MAC on the same layer shapes, on the same core
/// and count (QEMU mps2-an386 Cortex-M4, exact guest instructions), with its
/// DSP-extension kernels (convolution, 1×1 convolution, depthwise
/// convolution, fully connected). Cited from the project's issue 10, where
/// they were measured; not re-measured here (this crate does not build
/// CMSIS-NN). Hundredths, so they print like the measured ratios.
mod cmsis_nn {
    /// conv 1-D 16→32, k5, 140 wide.
    pub const CONV1D_16_32_K5_W140: u64 = 240;
    /// conv 2-D 32×32×16, 3×3 → 16.
    pub const CONV2D_32X32X16_3X3_16: u64 = 233;
    /// conv 1×1, 25×5×64 → 64.
    pub const CONV1X1_25X5X64_64: u64 = 209;
    /// depthwise 3×3, 25×5×64.
    pub const DW3X3_25X5X64: u64 = 833;
    /// fully connected 640 → 128.
    pub const FC_640_128: u64 = 195;
}

/// A measured layer: its name in reports, the call, whether it is one of
/// the ECG model's layers (summed in the total), and CMSIS-NN's figure for
/// the same shape (instructions per MAC, in hundredths) where there is one.
struct Row {
    name: &'static str,
    layer: Layer,
    ecg: bool,
    cmsis_nn: Option<u64>,
}

/// A conv of `cin` → `cout` channels over an `h × w` input, `k × k`
/// (`k × 1`… along W only when `h == 1`), stride 1, "same" padding.
fn conv_same(cin: usize, cout: usize, h: usize, w: usize, k: usize, groups: usize) -> ConvParams {
    let mut p = conv1d(cin, cout, k, w, k / 2, groups, CONV_ZP);
    if h > 1 {
        p.in_h = h;
        p.out_h = h;
        p.kernel_h = k;
        p.pad_top = k / 2;
    }
    p
}

impl Row {
    fn new(name: &'static str, layer: Layer, ecg: bool, cmsis_nn: Option<u64>) -> Row {
        Row {
            name,
            layer,
            ecg,
            cmsis_nn,
        }
    }
}

fn rows() -> [Row; 12] {
    let ecg = |name, layer| Row::new(name, layer, true, None);
    let extra = |name, layer| Row::new(name, layer, false, None);
    let cmsis = |name, layer, figure| Row::new(name, layer, false, Some(figure));
    [
        ecg(
            "Conv1d 1->16 k7 /140",
            Layer::Conv(conv_same(1, 16, 1, 140, 7, 1)),
        ),
        ecg(
            "Conv1d 16->32 k5 /70",
            Layer::Conv(conv_same(16, 32, 1, 70, 5, 1)),
        ),
        ecg(
            "Conv1d 32->32 k3 /35",
            Layer::Conv(conv_same(32, 32, 1, 35, 3, 1)),
        ),
        ecg("FC 32->5", Layer::Fc(fc(32, 5, FC_ZP))),
        extra(
            "Conv2d 8->16 3x3 /16x16",
            Layer::Conv(conv_same(8, 16, 16, 16, 3, 1)),
        ),
        extra(
            "DW Conv1d 32 k5 /70",
            Layer::Conv(conv_same(32, 32, 1, 70, 5, 32)),
        ),
        extra("FC 272->5", Layer::Fc(fc(272, 5, FC_ZP))),
        cmsis(
            "conv 1-D 16->32, k5, 140 wide",
            Layer::Conv(conv_same(16, 32, 1, 140, 5, 1)),
            cmsis_nn::CONV1D_16_32_K5_W140,
        ),
        cmsis(
            "conv 2-D 32x32x16, 3x3 -> 16",
            Layer::Conv(conv_same(16, 16, 32, 32, 3, 1)),
            cmsis_nn::CONV2D_32X32X16_3X3_16,
        ),
        cmsis(
            "conv 1x1, 25x5x64 -> 64",
            Layer::Conv(conv_same(64, 64, 25, 5, 1, 1)),
            cmsis_nn::CONV1X1_25X5X64_64,
        ),
        cmsis(
            "depthwise 3x3, 25x5x64",
            Layer::Conv(conv_same(64, 64, 25, 5, 3, 64)),
            cmsis_nn::DW3X3_25X5X64,
        ),
        cmsis(
            "fully connected 640 -> 128",
            Layer::Fc(fc(640, 128, FC_ZP)),
            cmsis_nn::FC_640_128,
        ),
    ]
}

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(cp.SYST);
    hprintln!(
        "icount: Cortex-M4 (QEMU mps2-an386, -icount shift=0): {} instructions per SysTick tick; DSP kernels {}",
        counter.per_tick,
        if dsp::USES_DSP_INSTRUCTIONS { "on" } else { "OFF" }
    );
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs::ZERO) else {
        exit(false)
    };

    let mut rng = Rng::new(0x1c0_u64);
    let mut ok = dsp::USES_DSP_INSTRUCTIONS;
    let (mut tot_ref, mut tot_dsp, mut tot_macs) = (0u64, 0u64, 0u64);
    let mut measured = [(0u64, 0u64, 0u64, ""); 12];
    hprintln!(
        "{:<30} {:>8} {:>10} {:>8} {:>10} {:>8} {:>7} {:>9}  {}",
        "layer",
        "MACs",
        "ref instr",
        "ref/MAC",
        "DSP instr",
        "DSP/MAC",
        "speedup",
        "CMSIS-NN",
        "DSP kernel"
    );
    let rows = rows();
    for (row, m) in rows.iter().zip(&mut measured) {
        let (macs, r, d, same, kernel) = match &row.layer {
            Layer::Conv(p) => measure(&counter, &mut rng, b, p),
            Layer::Fc(p) => measure(&counter, &mut rng, b, p),
        };
        ok &= same;
        if row.ecg {
            tot_ref += r;
            tot_dsp += d;
            tot_macs += macs;
        }
        *m = (macs, r, d, kernel);
        hprintln!(
            "{:<30} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}x {:>9}  {}{}",
            row.name,
            macs,
            r,
            per_mac(r, macs),
            d,
            per_mac(d, macs),
            Ratio(r, d),
            Cited(row.cmsis_nn),
            kernel,
            if same { "" } else { "  OUTPUT MISMATCH" }
        );
    }
    hprintln!(
        "{:<30} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}x",
        "ECG model conv+FC total",
        tot_macs,
        tot_ref,
        per_mac(tot_ref, tot_macs),
        tot_dsp,
        per_mac(tot_dsp, tot_macs),
        Ratio(tot_ref, tot_dsp)
    );
    // One JSON object a line for scripts (benches/run.sh collects them
    // into results.json under `cortex_m4`).
    for (row, &(macs, r, d, kernel)) in rows.iter().zip(&measured) {
        hprintln!(
            "cortex_m4 {{\"layer\": \"{}\", \"macs\": {}, \"instr_per_mac\": {}, \"cmsis_nn_instr_per_mac\": {}, \"reference_instr_per_mac\": {}, \"kernel\": \"{}\"}}",
            row.name,
            macs,
            per_mac(d, macs),
            CitedJson(row.cmsis_nn),
            per_mac(r, macs),
            kernel
        );
    }
    exit(ok)
}

/// A cited figure in hundredths, or `-` when there is none.
struct Cited(Option<u64>);

impl core::fmt::Display for Cited {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(h) => Ratio(h, 100).fmt(f),
            None => f.pad("-"),
        }
    }
}

/// A cited figure in hundredths as a JSON number, or `null`.
struct CitedJson(Option<u64>);

impl core::fmt::Display for CitedJson {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(h) => Ratio(h, 100).fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// `x / macs` with two decimals.
fn per_mac(x: u64, macs: u64) -> Ratio {
    Ratio(x, macs)
}

/// Instructions of the reference and of the DSP kernel a prepare-time
/// selection picks for `p` (and its name), on random data, and whether
/// their outputs agree. Large layers run fewer times: the count is exact,
/// repeats only refine the tick's granularity.
fn measure<P: Op>(
    counter: &Counter,
    rng: &mut Rng,
    b: &mut Bufs,
    p: &P,
) -> (u64, u64, u64, bool, &'static str) {
    b.fill(rng, p);
    // Symmetric weights, as the converter makes them.
    for w in &mut b.weights[..p.weights_len()] {
        *w = (*w).max(-127);
    }
    b.spread_quant(rng, p.channels(), p.reduction());
    let (name, kernel) = p.dsp_kernel();
    let reps = if p.macs() > 500_000 { 2 } else { REPS };
    let (o, want, got) = b.split(p);
    let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
    let r = counter.instructions(reps, || {
        P::REFERENCE(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *want),
        )
    });
    let d = counter.instructions(reps, || {
        kernel(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    (p.macs(), r, d, want == got, name)
}
