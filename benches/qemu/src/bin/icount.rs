//! Guest instructions per conv/FC layer on a Cortex-M4 under QEMU `-icount`,
//! reference kernels against the DSP ones (`medq::kernels::conv_s8` on
//! thumbv7em), for the ECG model's layers and two extra shapes. Each layer
//! also checks that both kernels give the same bytes. The MAC count is the
//! nominal one, `C_out · positions · K` (padded taps included).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{
    self, conv_out_len, cortex_m as dsp, reference, ConvParams, FullyConnectedParams,
};
use medq_qemu_bench::{exit, hprintln, Counter, Rng};

const REPS: u32 = 10;

enum Layer {
    Conv(ConvParams),
    Fc(FullyConnectedParams),
}

struct Row {
    name: &'static str,
    layer: Layer,
}

fn conv1d(cin: usize, cout: usize, k: usize, len: usize, pad: usize, groups: usize) -> ConvParams {
    ConvParams {
        in_channels: cin,
        in_h: 1,
        in_w: len,
        out_channels: cout,
        out_h: 1,
        out_w: conv_out_len(len, k, 1, 1, pad, pad).unwrap_or(0),
        kernel_h: 1,
        kernel_w: k,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: pad,
        groups,
        // The ECG model's activations after ReLU sit at zp −128.
        input_zero_point: -128,
        output_zero_point: -128,
        act_min: -128,
        act_max: 127,
    }
}

fn fc(k: usize, n: usize) -> FullyConnectedParams {
    FullyConnectedParams {
        rows: 1,
        in_features: k,
        out_features: n,
        input_zero_point: -128,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    }
}

const IN_CAP: usize = 4096;
const W_CAP: usize = 16384;
const OUT_CAP: usize = 4096;
const CH_CAP: usize = 64;

struct Bufs {
    input: [i8; IN_CAP],
    weights: [i8; W_CAP],
    bias: [i32; CH_CAP],
    multiplier: [i32; CH_CAP],
    shift: [i32; CH_CAP],
    want: [i8; OUT_CAP],
    got: [i8; OUT_CAP],
}

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(cp.SYST);
    hprintln!(
        "icount: Cortex-M4 (QEMU mps2-an386, -icount shift=0): {} instructions per SysTick tick, {} runs per measurement; DSP kernels {}",
        counter.per_tick,
        REPS,
        if dsp::USES_DSP_INSTRUCTIONS { "on" } else { "OFF" }
    );
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs {
        input: [0; IN_CAP],
        weights: [0; W_CAP],
        bias: [0; CH_CAP],
        multiplier: [0; CH_CAP],
        shift: [0; CH_CAP],
        want: [0; OUT_CAP],
        got: [0; OUT_CAP],
    }) else {
        exit(false)
    };

    let mut conv2d = conv1d(8, 16, 3, 16, 1, 1);
    conv2d.in_h = 16;
    conv2d.out_h = 16;
    conv2d.kernel_h = 3;
    conv2d.pad_top = 1;
    let rows = [
        Row {
            name: "Conv1d 1->16 k7 /140",
            layer: Layer::Conv(conv1d(1, 16, 7, 140, 3, 1)),
        },
        Row {
            name: "Conv1d 16->32 k5 /70",
            layer: Layer::Conv(conv1d(16, 32, 5, 70, 2, 1)),
        },
        Row {
            name: "Conv1d 32->32 k3 /35",
            layer: Layer::Conv(conv1d(32, 32, 3, 35, 1, 1)),
        },
        Row {
            name: "FC 32->5",
            layer: Layer::Fc(fc(32, 5)),
        },
        Row {
            name: "(extra) Conv2d 8->16 3x3 /16x16",
            layer: Layer::Conv(conv2d),
        },
        Row {
            name: "(extra) DW Conv1d 32 k5 /70",
            layer: Layer::Conv(conv1d(32, 32, 5, 70, 2, 32)),
        },
        Row {
            name: "(extra) FC 272->5",
            layer: Layer::Fc(fc(272, 5)),
        },
    ];

    let mut rng = Rng::new(0x1c0_u64);
    let mut ok = dsp::USES_DSP_INSTRUCTIONS;
    let (mut tot_ref, mut tot_dsp, mut tot_macs) = (0u64, 0u64, 0u64);
    hprintln!(
        "{:<32} {:>8} {:>10} {:>8} {:>10} {:>8} {:>7}",
        "layer",
        "MACs",
        "ref instr",
        "ref/MAC",
        "DSP instr",
        "DSP/MAC",
        "speedup"
    );
    for row in &rows {
        let (macs, r, d, same) = match &row.layer {
            Layer::Conv(p) => measure_conv(&counter, &mut rng, b, p),
            Layer::Fc(p) => measure_fc(&counter, &mut rng, b, p),
        };
        ok &= same;
        if !row.name.starts_with('(') {
            tot_ref += r;
            tot_dsp += d;
            tot_macs += macs;
        }
        hprintln!(
            "{:<32} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}x{}",
            row.name,
            macs,
            r,
            per_mac(r, macs),
            d,
            per_mac(d, macs),
            Ratio(r, d),
            if same { "" } else { "  OUTPUT MISMATCH" }
        );
    }
    hprintln!(
        "{:<32} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}x",
        "ECG model conv+FC total",
        tot_macs,
        tot_ref,
        per_mac(tot_ref, tot_macs),
        tot_dsp,
        per_mac(tot_dsp, tot_macs),
        Ratio(tot_ref, tot_dsp)
    );
    exit(ok)
}

/// `x / macs` with two decimals.
fn per_mac(x: u64, macs: u64) -> Ratio {
    Ratio(x, macs)
}

/// `a / b` with two decimals, padded like a string.
struct Ratio(u64, u64);

impl core::fmt::Display for Ratio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        let hundredths = (self.0 * 100 + self.1 / 2) / self.1.max(1);
        let mut s = Small {
            buf: [0; 24],
            len: 0,
        };
        write!(s, "{}.{:02}", hundredths / 100, hundredths % 100)?;
        f.pad(core::str::from_utf8(&s.buf[..s.len]).unwrap_or("?"))
    }
}

struct Small {
    buf: [u8; 24],
    len: usize,
}

impl core::fmt::Write for Small {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Quantization that spreads the outputs over i8 for a reduction of `k`
/// terms (|acc| is about 2^14 · sqrt(k) here).
fn quant(rng: &mut Rng, b: &mut Bufs, n: usize, k: usize) {
    let bits = 14 + (usize::BITS - k.leading_zeros()) as i32 / 2;
    for c in 0..n {
        b.bias[c] = rng.range(-4000, 4000) as i32;
        b.multiplier[c] = rng.range(1 << 30, i32::MAX as i64) as i32;
        b.shift[c] = 7 - bits + rng.range(-1, 1) as i32;
    }
}

fn measure_conv(
    counter: &Counter,
    rng: &mut Rng,
    b: &mut Bufs,
    p: &ConvParams,
) -> (u64, u64, u64, bool) {
    let k = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
    let n_in = p.in_channels * p.in_h * p.in_w;
    let n_w = p.out_channels * k;
    let n_out = p.out_channels * p.out_h * p.out_w;
    let oc = p.out_channels;
    rng.fill_i8(&mut b.input[..n_in]);
    // Symmetric weights, as the converter makes them.
    rng.fill_i8(&mut b.weights[..n_w]);
    for w in &mut b.weights[..n_w] {
        *w = (*w).max(-127);
    }
    quant(rng, b, oc, k);
    let (x, w) = (&b.input[..n_in], &b.weights[..n_w]);
    let (bias, m, s) = (&b.bias[..oc], &b.multiplier[..oc], &b.shift[..oc]);
    let (want, got) = (&mut b.want[..n_out], &mut b.got[..n_out]);
    let r = counter.instructions(REPS, || {
        reference::conv_s8(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *want),
        )
    });
    let d = counter.instructions(REPS, || {
        kernels::conv_s8(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    ((n_out * k) as u64, r, d, want == got)
}

fn measure_fc(
    counter: &Counter,
    rng: &mut Rng,
    b: &mut Bufs,
    p: &FullyConnectedParams,
) -> (u64, u64, u64, bool) {
    let (k, n) = (p.in_features, p.out_features);
    rng.fill_i8(&mut b.input[..k]);
    rng.fill_i8(&mut b.weights[..n * k]);
    quant(rng, b, n, k);
    let (x, w) = (&b.input[..k], &b.weights[..n * k]);
    let (bias, m, s) = (&b.bias[..n], &b.multiplier[..n], &b.shift[..n]);
    let (want, got) = (&mut b.want[..n], &mut b.got[..n]);
    let r = counter.instructions(REPS, || {
        reference::fully_connected_s8(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *want),
        )
    });
    let d = counter.instructions(REPS, || {
        kernels::fully_connected_s8(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    ((k * n) as u64, r, d, want == got)
}
