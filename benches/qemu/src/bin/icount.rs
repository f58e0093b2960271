//! Guest instructions per conv/FC layer on a Cortex-M4 under QEMU `-icount`,
//! reference kernels against the DSP ones (`medq::kernels::conv_s8` on
//! thumbv7em), for the ECG model's layers and two extra shapes. Each layer
//! also checks that both kernels give the same bytes. The MAC count is the
//! nominal one, `C_out · positions · K` (padded taps included).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{cortex_m as dsp, ConvParams, FullyConnectedParams};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Counter, Op, Rng};

const REPS: u32 = 10;
/// (input, output) zero points: the ECG model's activations after ReLU sit
/// at −128, its logits at 0.
const CONV_ZP: (i32, i32) = (-128, -128);
const FC_ZP: (i32, i32) = (-128, 0);

enum Layer {
    Conv(ConvParams),
    Fc(FullyConnectedParams),
}

const IN_CAP: usize = 4096;
const W_CAP: usize = 16384;
const OUT_CAP: usize = 4096;
const CH_CAP: usize = 64;

type Bufs = medq_qemu_bench::Bufs<IN_CAP, W_CAP, OUT_CAP, CH_CAP>;

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
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs::ZERO) else {
        exit(false)
    };

    let mut conv2d = conv1d(8, 16, 3, 16, 1, 1, CONV_ZP);
    conv2d.in_h = 16;
    conv2d.out_h = 16;
    conv2d.kernel_h = 3;
    conv2d.pad_top = 1;
    let rows = [
        (
            "Conv1d 1->16 k7 /140",
            Layer::Conv(conv1d(1, 16, 7, 140, 3, 1, CONV_ZP)),
        ),
        (
            "Conv1d 16->32 k5 /70",
            Layer::Conv(conv1d(16, 32, 5, 70, 2, 1, CONV_ZP)),
        ),
        (
            "Conv1d 32->32 k3 /35",
            Layer::Conv(conv1d(32, 32, 3, 35, 1, 1, CONV_ZP)),
        ),
        ("FC 32->5", Layer::Fc(fc(32, 5, FC_ZP))),
        ("(extra) Conv2d 8->16 3x3 /16x16", Layer::Conv(conv2d)),
        (
            "(extra) DW Conv1d 32 k5 /70",
            Layer::Conv(conv1d(32, 32, 5, 70, 2, 32, CONV_ZP)),
        ),
        ("(extra) FC 272->5", Layer::Fc(fc(272, 5, FC_ZP))),
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
    for (name, layer) in &rows {
        let (macs, r, d, same) = match layer {
            Layer::Conv(p) => measure(&counter, &mut rng, b, p),
            Layer::Fc(p) => measure(&counter, &mut rng, b, p),
        };
        ok &= same;
        if !name.starts_with('(') {
            tot_ref += r;
            tot_dsp += d;
            tot_macs += macs;
        }
        hprintln!(
            "{:<32} {:>8} {:>10} {:>8} {:>10} {:>8} {:>6}x{}",
            name,
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
    let bits = 14 + (usize::BITS - k.leading_zeros()) as i8 / 2;
    for c in 0..n {
        b.bias[c] = rng.range(-4000, 4000) as i32;
        b.multiplier[c] = rng.range(1 << 30, i32::MAX as i64) as i32;
        b.shift[c] = 7 - bits + rng.range(-1, 1) as i8;
    }
}

/// Instructions of the reference and the dispatched kernel for `p` on
/// random data, and whether their outputs agree.
fn measure<P: Op>(counter: &Counter, rng: &mut Rng, b: &mut Bufs, p: &P) -> (u64, u64, u64, bool) {
    b.fill(rng, p);
    // Symmetric weights, as the converter makes them.
    for w in &mut b.weights[..p.weights_len()] {
        *w = (*w).max(-127);
    }
    quant(rng, b, p.channels(), p.reduction());
    let (o, want, got) = b.split(p);
    let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
    let r = counter.instructions(REPS, || {
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
    let d = counter.instructions(REPS, || {
        P::DISPATCHED(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    (p.macs(), r, d, want == got)
}
