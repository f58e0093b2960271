//! The int16-activation kernels on a Cortex-M4 under QEMU `-icount`: for the
//! ECG model's layers and a long fully connected one, guest instructions of
//! the int8 DSP kernel the board runs against the int16 kernels the runtime
//! chooses on this CPU (`select`): the `SMLALD` kernels `conv_s8_s16_dsp`
//! reading int8 into int16, `conv_s16_dsp`, and `conv_s16_s8_dsp` back to
//! int8; FullyConnected alike.
//!
//! It also checks them on the target against the int8 kernel, bit for bit:
//! with `x16 = x8 − zp`, `*_s16_s8` must give the int8 kernel's output
//! exactly, `*_s8_s16` an int16 output that, offset by the int8 zero point
//! and clamped to i8, is that output too, and `*_s16` the same int16 output
//! as `*_s8_s16`. Any difference fails the run.
//!
//! After the table, one JSON object a line for scripts, prefixed
//! `int16_m4 `: `layer`, `macs`, `s8_instr`, `s8_s16_instr`, `s16_instr`,
//! `s16_s8_instr`.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{cortex_m as dsp, select, ConvParams, FullyConnectedParams};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Counter, Op, Ratio, Rng};

const REPS: u32 = 2;
/// (input, output) zero points, as in `icount`.
const CONV_ZP: (i32, i32) = (-128, -128);
const FC_ZP: (i32, i32) = (-128, 0);

const IN_CAP: usize = 4096;
const W_CAP: usize = 81920;
const OUT_CAP: usize = 4096;
const CH_CAP: usize = 128;

type Bufs = medq_qemu_bench::Bufs<IN_CAP, W_CAP, OUT_CAP, CH_CAP>;

/// The int16 buffers: the input less its zero point, and two outputs.
struct Wide {
    x: [i16; IN_CAP],
    y: [i16; OUT_CAP],
    y2: [i16; OUT_CAP],
}

/// An op's three int16 kernels.
trait WideOp: Op {
    /// (input, output) zero points.
    fn zero_points(&self) -> (i32, i32);
    /// The same call with int16 sides at zero point 0 and, for an int16
    /// output, the whole int16 window.
    fn widened(&self, x_wide: bool, y_wide: bool) -> Self;
    #[allow(clippy::too_many_arguments)]
    fn s8_s16(&self, x: &[i8], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]);
    #[allow(clippy::too_many_arguments)]
    fn s16(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]);
    #[allow(clippy::too_many_arguments)]
    fn s16_s8(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]);
}

impl WideOp for ConvParams {
    fn zero_points(&self) -> (i32, i32) {
        (self.input_zero_point, self.output_zero_point)
    }
    fn widened(&self, x_wide: bool, y_wide: bool) -> ConvParams {
        let mut p = *self;
        if x_wide {
            p.input_zero_point = 0;
        }
        if y_wide {
            (p.output_zero_point, p.act_min, p.act_max) = (0, -32768, 32767);
        }
        p
    }
    fn s8_s16(&self, x: &[i8], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]) {
        (select::conv_s8_s16(self).run)(self, x, w, b, m, s, y)
    }
    fn s16(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]) {
        (select::conv_s16(self).run)(self, x, w, b, m, s, y)
    }
    fn s16_s8(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        (select::conv_s16_s8(self).run)(self, x, w, b, m, s, y)
    }
}

impl WideOp for FullyConnectedParams {
    fn zero_points(&self) -> (i32, i32) {
        (self.input_zero_point, self.output_zero_point)
    }
    fn widened(&self, x_wide: bool, y_wide: bool) -> FullyConnectedParams {
        let mut p = *self;
        if x_wide {
            p.input_zero_point = 0;
        }
        if y_wide {
            (p.output_zero_point, p.act_min, p.act_max) = (0, -32768, 32767);
        }
        p
    }
    fn s8_s16(&self, x: &[i8], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]) {
        (select::fully_connected_s8_s16(self).run)(self, x, w, b, m, s, y)
    }
    fn s16(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i16]) {
        (select::fully_connected_s16(self).run)(self, x, w, b, m, s, y)
    }
    fn s16_s8(&self, x: &[i16], w: &[i8], b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        (select::fully_connected_s16_s8(self).run)(self, x, w, b, m, s, y)
    }
}

enum Layer {
    Conv(&'static str, ConvParams),
    Fc(&'static str, FullyConnectedParams),
}

/// One layer's figures: MACs, then instructions of the int8 DSP kernel,
/// `s8_s16`, `s16`, `s16_s8`, and whether every output agreed.
type Figures = (u64, [u64; 4], bool);

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(cp.SYST);
    hprintln!(
        "int16: Cortex-M4 (QEMU mps2-an386, -icount shift=0): {} instructions per SysTick tick; int8 DSP kernels {}",
        counter.per_tick,
        if dsp::USES_DSP_INSTRUCTIONS { "on" } else { "OFF" }
    );
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs::ZERO) else {
        exit(false)
    };
    let Some(wide) = cortex_m::singleton!(: Wide = Wide {
        x: [0; IN_CAP],
        y: [0; OUT_CAP],
        y2: [0; OUT_CAP],
    }) else {
        exit(false)
    };
    let layers = [
        Layer::Conv("Conv1d 1->16 k7 /140", conv1d(1, 16, 7, 140, 3, 1, CONV_ZP)),
        Layer::Conv("Conv1d 16->32 k5 /70", conv1d(16, 32, 5, 70, 2, 1, CONV_ZP)),
        Layer::Conv("Conv1d 32->32 k3 /35", conv1d(32, 32, 3, 35, 1, 1, CONV_ZP)),
        Layer::Fc("FC 32->5", fc(32, 5, FC_ZP)),
        Layer::Fc("FC 640->128", fc(640, 128, FC_ZP)),
    ];
    hprintln!(
        "{:<22} {:>8} {:>10} {:>10} {:>10} {:>10}   (instructions per MAC)",
        "layer",
        "MACs",
        "s8 DSP",
        "s8_s16",
        "s16",
        "s16_s8"
    );
    let mut rng = Rng::new(0x16b175);
    // The int16-input rows must measure the DSP kernels.
    let (long_fc, conv) = (fc(640, 128, FC_ZP), conv1d(16, 32, 5, 70, 2, 1, CONV_ZP));
    let chosen = [
        select::conv_s8_s16(&conv.widened(false, true)).name,
        select::conv_s16(&conv).name,
        select::conv_s16_s8(&conv).name,
        select::fully_connected_s8_s16(&long_fc.widened(false, true)).name,
        select::fully_connected_s16(&long_fc).name,
        select::fully_connected_s16_s8(&long_fc).name,
    ];
    hprintln!("int16 kernels: {:?}", chosen);
    let mut ok = dsp::USES_DSP_INSTRUCTIONS
        && chosen
            == [
                "conv_s8_s16_dsp",
                "conv_s16_dsp",
                "conv_s16_s8_dsp",
                "fully_connected_s8_s16_dsp",
                "fully_connected_s16_dsp",
                "fully_connected_s16_s8_dsp",
            ];
    let mut rows = [(0u64, [0u64; 4]); 5];
    for (layer, row) in layers.iter().zip(&mut rows) {
        let (name, figures) = match layer {
            Layer::Conv(name, p) => (*name, measure(&counter, &mut rng, b, wide, p)),
            Layer::Fc(name, p) => (*name, measure(&counter, &mut rng, b, wide, p)),
        };
        let Some((macs, instr, same)) = figures else {
            hprintln!("{name}: does not fit the buffers");
            exit(false)
        };
        ok &= same;
        hprintln!(
            "{:<22} {:>8} {:>10} {:>10} {:>10} {:>10}{}",
            name,
            macs,
            Ratio(instr[0], macs),
            Ratio(instr[1], macs),
            Ratio(instr[2], macs),
            Ratio(instr[3], macs),
            if same { "" } else { "  OUTPUT MISMATCH" }
        );
        *row = (macs, instr);
    }
    let names = layers.iter().map(|l| match l {
        Layer::Conv(name, _) | Layer::Fc(name, _) => *name,
    });
    for (name, (macs, i)) in names.zip(&rows) {
        hprintln!(
            "int16_m4 {{\"layer\": \"{}\", \"macs\": {}, \"s8_instr\": {}, \"s8_s16_instr\": {}, \"s16_instr\": {}, \"s16_s8_instr\": {}}}",
            name, macs, i[0], i[1], i[2], i[3]
        );
    }
    exit(ok)
}

/// One layer on random data; `None` when it does not fit the buffers.
fn measure<P: WideOp>(
    counter: &Counter,
    rng: &mut Rng,
    b: &mut Bufs,
    wide: &mut Wide,
    p: &P,
) -> Option<Figures> {
    let (n_in, n_out) = (p.input_len(), p.output_len());
    if n_in > IN_CAP || p.weights_len() > W_CAP || n_out > OUT_CAP {
        return None;
    }
    b.fill(rng, p);
    for w in &mut b.weights[..p.weights_len()] {
        // Symmetric, as the converter makes them.
        *w = (*w).max(-127);
    }
    b.spread_quant(rng, p.channels(), p.reduction());
    let (zp_in, zp_out) = p.zero_points();
    let (_, kernel) = p.dsp_kernel();
    let (o, want, got) = b.split(p);
    let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
    for (x16, &x8) in wide.x.iter_mut().zip(x) {
        *x16 = i16::from(x8) - zp_in as i16;
    }
    let (x16, y16, y16b) = (&wide.x[..n_in], &mut wide.y[..n_out], &mut wide.y2[..n_out]);
    let (p_up, p_wide, p_down) = (
        p.widened(false, true),
        p.widened(true, true),
        p.widened(true, false),
    );
    let s8 = counter.instructions(REPS, || {
        kernel(
            black_box(p),
            black_box(x),
            w,
            bias,
            m,
            s,
            black_box(&mut *want),
        )
    });
    let up = counter.instructions(REPS, || {
        p_up.s8_s16(black_box(x), w, bias, m, s, black_box(&mut *y16))
    });
    let both = counter.instructions(REPS, || {
        p_wide.s16(black_box(x16), w, bias, m, s, black_box(&mut *y16b))
    });
    let down = counter.instructions(REPS, || {
        p_down.s16_s8(black_box(x16), w, bias, m, s, black_box(&mut *got))
    });
    let narrowed = y16
        .iter()
        .zip(want.iter())
        .all(|(&v, &w8)| (i32::from(v) + zp_out).clamp(-128, 127) == i32::from(w8));
    let same = want == got && narrowed && y16 == y16b;
    Some((p.macs(), [s8, up, both, down], same))
}
