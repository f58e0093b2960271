//! Guest instructions per layer with power-of-two weights, on a Cortex-M0
//! (QEMU micro:bit, thumbv6m-none-eabi) and a Cortex-M4 (QEMU mps2-an386),
//! under `-icount`: the dense kernel the build runs on the decoded int8
//! weights (the reference `conv_s8` / `fully_connected_s8` on the M0, the
//! DSP kernel a prepare-time selection picks on the M4) against
//! `conv_pow2_s8` / `fully_connected_pow2_s8` on the 4-bit codes. Every
//! pow2 output must equal the dense kernel's, byte for byte, or the run
//! fails.
//!
//! A third column, `list`, runs the sparse kernels (`conv_sparse_s8`,
//! `fully_connected_sparse_s8`) on the same weights stored sparse: a list of
//! taps decoded once per output row, with a multiply per tap, to tell what
//! such a loop structure gains from what shifts do. Its outputs must match
//! too. On the M0 it is left out (`-`) where its storage does not fit the
//! RAM.
//!
//! `taps` counts the products inside the input: the multiplies (`MULS`) the
//! dense reference kernel runs in its tap loop; the pow2 kernels run none
//! there. (Both requantize each output alike, with a 64-bit product: on the
//! M0 a call to `__aeabi_lmul`.) QEMU counts instructions, not cycles: a
//! Cortex-M0 with the small multiplier takes 32 cycles per `MULS`, one with
//! the fast one a cycle, like any other ALU instruction.
//!
//! Layers: the ECG model's three convolutions and its classifier (FC 32→5),
//! and the FC 640→128 of the CMSIS-NN comparison. Weights are random codes
//! (each of the 15 equally likely, so 1 in 15 is zero), made at compile
//! time and kept in flash as statics, as a device keeps a model: the
//! micro:bit's 16 KiB of RAM then holds only the input, the outputs and the
//! sparse copy (FC 640→128 alone has 80 KiB of int8 weights).
//!
//! After the table, one JSON object a line for scripts, prefixed `pow2_m0 `
//! or `pow2_m4 `: `layer`, `reps` (runs per measurement), `macs`, `taps`,
//! `dense_instr`, `pow2_instr`, `list_instr` (`null` when not run),
//! `dense_kernel`. Instructions are per run.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{
    conv_pow2_s8, conv_sparse_s8, cortex_m as dsp, encode_sparse_rows_into,
    fully_connected_pow2_s8, fully_connected_sparse_s8, ConvParams, FullyConnectedParams, Pow2Rows,
    SparseRows,
};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Counter, Op, Ratio, Rng};

/// Runs per measurement: the count is exact, repeats only refine the
/// tick's granularity (62.5 instructions on the micro:bit).
const REPS: u32 = 2;
/// (input, output) zero points, as in `icount`.
const CONV_ZP: (i32, i32) = (-128, -128);
const FC_ZP: (i32, i32) = (-128, 0);

/// The board, and the JSON prefix.
#[cfg(target_abi = "eabihf")]
const BOARD: (&str, &str) = ("Cortex-M4 (QEMU mps2-an386)", "pow2_m4");
#[cfg(not(target_abi = "eabihf"))]
const BOARD: (&str, &str) = ("Cortex-M0 (QEMU micro:bit)", "pow2_m0");

const IN_CAP: usize = 1120;
const OUT_CAP: usize = 2240;
const CH_CAP: usize = 128;
/// Sparse storage: every layer's on the M4; on the M0 the convolutions'
/// (a bitmap byte per 8 weights and per row, then the non-zero weights).
#[cfg(target_abi = "eabihf")]
const LIST_CAP: usize = 81920 + 81920 / 8 + CH_CAP;
#[cfg(not(target_abi = "eabihf"))]
const LIST_CAP: usize = 3600;

// ---- weights, made at compile time ------------------------------------------

/// `rows` rows of `row_len` random codes (xorshift64* from `seed`), stored
/// as `Pow2Rows` stores them: `B` = `rows · ceil(row_len / 2)` bytes.
const fn random_codes<const B: usize>(seed: u64, rows: usize, row_len: usize) -> [u8; B] {
    let mut out = [0u8; B];
    let mut s = seed | 1;
    let row_bytes = row_len.div_ceil(2);
    let mut r = 0;
    while r < rows {
        let mut k = 0;
        while k < row_len {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let c = ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % 15) as u8;
            // The 15 codes: 0..=7 and 9..=15 (8 would be a negative zero).
            let code = if c >= 8 { c + 1 } else { c };
            out[r * row_bytes + k / 2] |= code << ((k % 2) * 4);
            k += 1;
        }
        r += 1;
    }
    out
}

/// The int8 weights `[rows, row_len]` that `codes` stand for.
const fn decoded<const N: usize, const B: usize>(codes: &[u8; B], row_len: usize) -> [i8; N] {
    let mut out = [0i8; N];
    let row_bytes = row_len.div_ceil(2);
    let mut i = 0;
    while i < N {
        let (r, k) = (i / row_len, i % row_len);
        let code = (codes[r * row_bytes + k / 2] >> ((k % 2) * 4)) & 0x0f;
        out[i] = medq::pow2::decode(code);
        i += 1;
    }
    out
}

/// A layer's weights in flash: `$codes` (4-bit) and `$dense` (the same
/// weights a byte each).
macro_rules! weights {
    ($codes:ident, $dense:ident, $rows:expr, $row_len:expr, $seed:expr) => {
        static $codes: [u8; $rows * ($row_len as usize).div_ceil(2)] =
            random_codes($seed, $rows, $row_len);
        static $dense: [i8; $rows * $row_len] = decoded(&$codes, $row_len);
    };
}

weights!(C1_CODES, C1_DENSE, 16, 7, 0xc1);
weights!(C2_CODES, C2_DENSE, 32, 16 * 5, 0xc2);
weights!(C3_CODES, C3_DENSE, 32, 32 * 3, 0xc3);
weights!(F1_CODES, F1_DENSE, 5, 32, 0xf1);
weights!(F2_CODES, F2_DENSE, 128, 640, 0xf2);

// ---- the layers --------------------------------------------------------------

/// The pow2 and sparse kernels of an op.
trait Pow2Op: Op {
    fn run_pow2(&self, x: &[i8], w: &Pow2Rows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]);
    fn run_list(&self, x: &[i8], w: &SparseRows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]);
    /// Multiplies the dense reference kernel does in its tap loop: one per
    /// tap inside the input.
    fn taps(&self) -> u64;
}

impl Pow2Op for ConvParams {
    fn run_pow2(&self, x: &[i8], w: &Pow2Rows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        conv_pow2_s8(self, x, w, b, m, s, y)
    }
    fn run_list(&self, x: &[i8], w: &SparseRows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        conv_sparse_s8(self, x, w, b, m, s, y)
    }
    fn taps(&self) -> u64 {
        let inside = |o: usize, stride: usize, dil: usize, pad: usize, k: usize, len: usize| {
            (0..k)
                .filter(|&t| {
                    (o * stride + t * dil)
                        .checked_sub(pad)
                        .is_some_and(|i| i < len)
                })
                .count() as u64
        };
        let per_channel: u64 = (0..self.out_h)
            .map(|oy| {
                let ky = inside(
                    oy,
                    self.stride_h,
                    self.dilation_h,
                    self.pad_top,
                    self.kernel_h,
                    self.in_h,
                );
                let kx: u64 = (0..self.out_w)
                    .map(|ox| {
                        inside(
                            ox,
                            self.stride_w,
                            self.dilation_w,
                            self.pad_left,
                            self.kernel_w,
                            self.in_w,
                        )
                    })
                    .sum();
                ky * kx
            })
            .sum();
        per_channel * (self.out_channels * (self.in_channels / self.groups)) as u64
    }
}

impl Pow2Op for FullyConnectedParams {
    fn run_pow2(&self, x: &[i8], w: &Pow2Rows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        fully_connected_pow2_s8(self, x, w, b, m, s, y)
    }
    fn run_list(&self, x: &[i8], w: &SparseRows<'_>, b: &[i32], m: &[i32], s: &[i8], y: &mut [i8]) {
        fully_connected_sparse_s8(self, x, w, b, m, s, y)
    }
    fn taps(&self) -> u64 {
        self.macs()
    }
}

/// A 1-D conv, stride 1, "same" padding.
fn conv_same(cin: usize, cout: usize, len: usize, k: usize) -> ConvParams {
    conv1d(cin, cout, k, len, k / 2, 1, CONV_ZP)
}

enum Layer {
    Conv(ConvParams),
    Fc(FullyConnectedParams),
}

struct Row {
    name: &'static str,
    layer: Layer,
    codes: &'static [u8],
    dense: &'static [i8],
}

fn rows() -> [Row; 5] {
    let row = |name, layer, codes, dense| Row {
        name,
        layer,
        codes,
        dense,
    };
    [
        row(
            "Conv1d 1->16 k7 /140",
            Layer::Conv(conv_same(1, 16, 140, 7)),
            &C1_CODES,
            &C1_DENSE,
        ),
        row(
            "Conv1d 16->32 k5 /70",
            Layer::Conv(conv_same(16, 32, 70, 5)),
            &C2_CODES,
            &C2_DENSE,
        ),
        row(
            "Conv1d 32->32 k3 /35",
            Layer::Conv(conv_same(32, 32, 35, 3)),
            &C3_CODES,
            &C3_DENSE,
        ),
        row(
            "FC 32->5",
            Layer::Fc(fc(32, 5, FC_ZP)),
            &F1_CODES,
            &F1_DENSE,
        ),
        row(
            "FC 640->128",
            Layer::Fc(fc(640, 128, FC_ZP)),
            &F2_CODES,
            &F2_DENSE,
        ),
    ]
}

/// Inputs, requantization, the sparse copy of the weights and the outputs
/// (`dense`; `other` for pow2, then for the sparse kernel), in RAM.
struct Bufs {
    input: [i8; IN_CAP],
    bias: [i32; CH_CAP],
    multiplier: [i32; CH_CAP],
    shift: [i8; CH_CAP],
    list: [u8; LIST_CAP],
    dense: [i8; OUT_CAP],
    other: [i8; OUT_CAP],
}

/// One measured layer.
#[derive(Clone, Copy, Default)]
struct Measured {
    macs: u64,
    taps: u64,
    dense: u64,
    pow2: u64,
    /// The sparse kernel, when its storage fits.
    list: Option<u64>,
    /// Every output equal to the dense kernel's.
    same: bool,
    kernel: &'static str,
}

/// A count per MAC, or `-` when there is none.
struct PerMac(Option<u64>, u64);

impl core::fmt::Display for PerMac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => core::fmt::Display::fmt(&Ratio(n, self.1), f),
            None => f.pad("-"),
        }
    }
}

/// A count as JSON, or `null`.
struct Json(Option<u64>);

impl core::fmt::Display for Json {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("null"),
        }
    }
}

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(cp.SYST);
    hprintln!(
        "pow2: {}, -icount shift=0: {} instructions per SysTick tick; DSP kernels {}",
        BOARD.0,
        Ratio(counter.per_tick_hundredths, 100),
        if dsp::USES_DSP_INSTRUCTIONS {
            "on"
        } else {
            "off"
        }
    );
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs {
        input: [0; IN_CAP],
        bias: [0; CH_CAP],
        multiplier: [0; CH_CAP],
        shift: [0; CH_CAP],
        list: [0; LIST_CAP],
        dense: [0; OUT_CAP],
        other: [0; OUT_CAP],
    }) else {
        exit(false)
    };
    hprintln!(
        "{:<22} {:>7} {:>7} {:>10} {:>10} {:>9} {:>10} {:>8}  {}",
        "layer",
        "MACs",
        "taps",
        "dense/MAC",
        "pow2/MAC",
        "list/MAC",
        "dense/pow2",
        "pow2 B",
        "dense kernel"
    );
    let mut rng = Rng::new(0x9002);
    let mut ok = true;
    let rows = rows();
    let mut measured = [Measured::default(); 5];
    for (row, m) in rows.iter().zip(&mut measured) {
        let got = match &row.layer {
            Layer::Conv(p) => measure(&counter, &mut rng, b, p, row),
            Layer::Fc(p) => measure(&counter, &mut rng, b, p, row),
        };
        let Some(got) = got else {
            hprintln!("{}: does not fit the buffers", row.name);
            exit(false)
        };
        *m = got;
        ok &= m.same;
        hprintln!(
            "{:<22} {:>7} {:>7} {:>10} {:>10} {:>9} {:>9}x {:>8}  {}{}",
            row.name,
            m.macs,
            m.taps,
            Ratio(m.dense, m.macs),
            Ratio(m.pow2, m.macs),
            PerMac(m.list, m.macs),
            Ratio(m.dense, m.pow2),
            row.codes.len(),
            m.kernel,
            if m.same { "" } else { "  OUTPUT MISMATCH" }
        );
    }
    for (row, m) in rows.iter().zip(&measured) {
        hprintln!(
            "{} {{\"layer\": \"{}\", \"reps\": {}, \"macs\": {}, \"taps\": {}, \"dense_instr\": {}, \"pow2_instr\": {}, \"list_instr\": {}, \"dense_kernel\": \"{}\"}}",
            BOARD.1,
            row.name,
            REPS,
            m.macs,
            m.taps,
            m.dense,
            m.pow2,
            Json(m.list),
            m.kernel
        );
    }
    if !ok {
        hprintln!("FAIL: a pow2 or sparse output differs from the dense kernel's");
    }
    exit(ok)
}

/// `counter.instructions(REPS, f)` between two `YIELD` hints, outside the
/// timed window: no-ops here, the marks between which
/// `benches/qemu-plugin/muls.c` counts multiplies (`muls.sh`).
fn timed(counter: &Counter, f: impl FnMut()) -> u64 {
    // SAFETY: a hint instruction; no registers, memory or flags change.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
    let n = counter.instructions(REPS, f);
    // SAFETY: as above.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
    n
}

/// One layer: random input and requantization, the kernels timed, their
/// outputs compared. `None` when it does not fit the buffers or its
/// weights do not have its shape.
fn measure<P: Pow2Op>(
    counter: &Counter,
    rng: &mut Rng,
    b: &mut Bufs,
    p: &P,
    row: &Row,
) -> Option<Measured> {
    let (n_in, n_out, ch, k) = (p.input_len(), p.output_len(), p.channels(), p.reduction());
    if n_in > IN_CAP || n_out > OUT_CAP || ch > CH_CAP || row.dense.len() != p.weights_len() {
        return None;
    }
    let x = b.input.get_mut(..n_in)?;
    rng.fill_i8(x);
    // Bias and requantization that spread the outputs over i8 (as `Bufs::spread_quant`).
    let bits = 14 + (usize::BITS - k.leading_zeros()) as i8 / 2;
    for c in 0..ch {
        b.bias[c] = rng.range(-4000, 4000) as i32;
        b.multiplier[c] = rng.range(1 << 30, i32::MAX as i64) as i32;
        b.shift[c] = 7 - bits + rng.range(-1, 1) as i8;
    }
    let (x, bias, m, s) = (
        &b.input[..n_in],
        &b.bias[..ch],
        &b.multiplier[..ch],
        &b.shift[..ch],
    );
    let codes = Pow2Rows::parse(row.codes, ch, k)?;
    let (kernel_name, kernel) = p.dsp_kernel();
    let (dense_out, other) = (&mut b.dense[..n_out], &mut b.other[..n_out]);
    // Different fills, so a kernel that writes nothing cannot match.
    dense_out.fill(0x55);
    other.fill(-0x56);
    let dense = timed(counter, || {
        kernel(
            black_box(p),
            black_box(x),
            black_box(row.dense),
            bias,
            m,
            s,
            black_box(&mut *dense_out),
        )
    });
    let pow2 = timed(counter, || {
        p.run_pow2(
            black_box(x),
            black_box(&codes),
            bias,
            m,
            s,
            black_box(&mut *other),
        )
    });
    let mut same = dense_out == other;
    let stored = encode_sparse_rows_into(row.dense, k, &mut b.list)
        .and_then(|len| SparseRows::parse(b.list.get(..len)?, ch, k));
    let list = stored.map(|sparse| {
        other.fill(-0x56);
        let n = timed(counter, || {
            p.run_list(
                black_box(x),
                black_box(&sparse),
                bias,
                m,
                s,
                black_box(&mut *other),
            )
        });
        same &= dense_out == other;
        n
    });
    Some(Measured {
        macs: p.macs(),
        taps: p.taps(),
        dense,
        pow2,
        list,
        same,
        kernel: kernel_name,
    })
}
