//! Guest instructions per layer on a Cortex-M4 under QEMU `-icount` with
//! pruned weights: the dense kernel a dense file runs (the DSP one a
//! prepare-time selection picks) against the sparse kernel on the same
//! weights stored sparse (`conv_sparse_s8_dsp`, `fully_connected_sparse_s8`)
//! and stored sparse with 4-bit power-of-two codes (`conv_sparse_pow2_s8_dsp`,
//! `fully_connected_sparse_pow2_s8`) and with 3-bit ones
//! (`conv_sparse_pow2x3_s8_dsp`, `fully_connected_sparse_pow2x3_s8`), at 0, 50,
//! 75 and 90 % zeros, for the ECG model's layers and a long fully connected
//! one. The non-zero weights are the four top powers of two (±8 … ±64), so
//! that every storage holds them (the dense and int8 sparse kernels' counts
//! depend on the zeros only, the code-decoding ones on the code width).
//! Every sparse output must equal the dense kernel's, byte for byte, or the
//! run fails.
//!
//! After the table, one JSON object a line for scripts, prefixed
//! `sparse_m4 `: `layer`, `sparsity`, `macs`, `dense_instr`, `sparse_instr`,
//! `sparse_pow2_instr`, `sparse_pow2x3_instr`, `dense_bytes`,
//! `sparse_bytes`, `sparse_pow2_bytes`, `sparse_pow2x3_bytes`.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use medq::kernels::{
    cortex_m as dsp,
    encode_sparse_rows_into, fully_connected_sparse_pow2_s8, fully_connected_sparse_pow2x3_s8,
    fully_connected_sparse_s8, ConvParams, FullyConnectedParams, SparseRows,
};
use medq::sparse::{
    encode_sparse_into, Pow2NonZeros, Pow2x3NonZeros, SparsePow2Rows, SparsePow2x3Rows,
};
use medq_qemu_bench::{conv1d, exit, fc, hprintln, Counter, Op, Ratio, Rng};

const REPS: u32 = 4;
/// (input, output) zero points, as in `icount`.
const CONV_ZP: (i32, i32) = (-128, -128);
const FC_ZP: (i32, i32) = (-128, 0);

const IN_CAP: usize = 4096;
const W_CAP: usize = 81920;
const OUT_CAP: usize = 4096;
const CH_CAP: usize = 128;
/// A bitmap byte per 8 weights and per row, then at most every weight.
const SPARSE_CAP: usize = W_CAP + W_CAP / 8 + CH_CAP;
/// The same with a nibble per weight.
const SPARSE_POW2_CAP: usize = W_CAP / 2 + W_CAP / 8 + CH_CAP + 1;
/// The same with 3 bits per weight.
const SPARSE_POW2X3_CAP: usize = W_CAP * 3 / 8 + W_CAP / 8 + CH_CAP + 1;

type Bufs = medq_qemu_bench::Bufs<IN_CAP, W_CAP, OUT_CAP, CH_CAP>;

/// The sparse kernels of an op.
trait SparseOp: Op {
    fn run_sparse(
        &self,
        x: &[i8],
        w: &SparseRows<'_>,
        bias: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    );
    fn run_sparse_pow2(
        &self,
        x: &[i8],
        w: &SparsePow2Rows<'_>,
        bias: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    );
    fn run_sparse_pow2x3(
        &self,
        x: &[i8],
        w: &SparsePow2x3Rows<'_>,
        bias: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    );
}

impl SparseOp for ConvParams {
    fn run_sparse(
        &self,
        x: &[i8],
        w: &SparseRows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        dsp::conv_sparse_s8_dsp(self, x, w, b, m, s, y)
    }
    fn run_sparse_pow2(
        &self,
        x: &[i8],
        w: &SparsePow2Rows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        dsp::conv_sparse_pow2_s8_dsp(self, x, w, b, m, s, y)
    }
    fn run_sparse_pow2x3(
        &self,
        x: &[i8],
        w: &SparsePow2x3Rows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        dsp::conv_sparse_pow2x3_s8_dsp(self, x, w, b, m, s, y)
    }
}

impl SparseOp for FullyConnectedParams {
    fn run_sparse(
        &self,
        x: &[i8],
        w: &SparseRows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        fully_connected_sparse_s8(self, x, w, b, m, s, y)
    }
    fn run_sparse_pow2(
        &self,
        x: &[i8],
        w: &SparsePow2Rows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        fully_connected_sparse_pow2_s8(self, x, w, b, m, s, y)
    }
    fn run_sparse_pow2x3(
        &self,
        x: &[i8],
        w: &SparsePow2x3Rows<'_>,
        b: &[i32],
        m: &[i32],
        s: &[i8],
        y: &mut [i8],
    ) {
        fully_connected_sparse_pow2x3_s8(self, x, w, b, m, s, y)
    }
}

enum Layer {
    Conv(&'static str, ConvParams),
    Fc(&'static str, FullyConnectedParams),
}

const SPARSITIES: [u64; 4] = [0, 50, 75, 90];

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(false)
    };
    let counter = Counter::start(cp.SYST);
    hprintln!(
        "sparse: Cortex-M4 (QEMU mps2-an386, -icount shift=0): {} instructions per SysTick tick; DSP kernels {}",
        counter.per_tick,
        if dsp::USES_DSP_INSTRUCTIONS { "on" } else { "OFF" }
    );
    let Some(b) = cortex_m::singleton!(: Bufs = Bufs::ZERO) else {
        exit(false)
    };
    let Some(stored) = cortex_m::singleton!(: [u8; SPARSE_CAP] = [0; SPARSE_CAP]) else {
        exit(false)
    };
    let Some(stored_pow2) =
        cortex_m::singleton!(: [u8; SPARSE_POW2_CAP] = [0; SPARSE_POW2_CAP])
    else {
        exit(false)
    };
    let Some(stored_pow2x3) =
        cortex_m::singleton!(: [u8; SPARSE_POW2X3_CAP] = [0; SPARSE_POW2X3_CAP])
    else {
        exit(false)
    };
    let stored = (
        stored.as_mut_slice(),
        stored_pow2.as_mut_slice(),
        stored_pow2x3.as_mut_slice(),
    );
    let layers = [
        Layer::Conv("Conv1d 16->32 k5 /70", conv1d(16, 32, 5, 70, 2, 1, CONV_ZP)),
        Layer::Conv("Conv1d 32->32 k3 /35", conv1d(32, 32, 3, 35, 1, 1, CONV_ZP)),
        Layer::Fc("FC 32->5", fc(32, 5, FC_ZP)),
        Layer::Fc("FC 640->128", fc(640, 128, FC_ZP)),
    ];
    hprintln!(
        "{:<22} {:>6} {:>8} {:>11} {:>9} {:>12} {:>10} {:>8} {:>11} {:>11} {:>27}",
        "layer",
        "zeros",
        "MACs",
        "dense instr",
        "dense/MAC",
        "sparse instr",
        "sparse/MAC",
        "speedup",
        "s-pow2/MAC",
        "s-pow2x3/MAC",
        "bytes s/s-pow2/s-pow2x3/d"
    );
    let mut rng = Rng::new(0x5ba75e);
    let mut ok = dsp::USES_DSP_INSTRUCTIONS;
    let mut rows = [Row::default(); 16];
    let mut next = 0;
    for layer in &layers {
        for &sparsity in &SPARSITIES {
            let bufs = (&mut *b, &mut *stored.0, &mut *stored.1, &mut *stored.2);
            let (name, m) = match layer {
                Layer::Conv(name, p) => (*name, measure(&counter, &mut rng, bufs, p, sparsity)),
                Layer::Fc(name, p) => (*name, measure(&counter, &mut rng, bufs, p, sparsity)),
            };
            let Some(r) = m else {
                hprintln!("{name}: does not fit the buffers");
                exit(false)
            };
            ok &= r.same;
            hprintln!(
                "{:<22} {:>5}% {:>8} {:>11} {:>9} {:>12} {:>10} {:>7}x {:>11} {:>11} {:>6}/{:>6}/{:>6}/{:<6}{}",
                name,
                sparsity,
                r.macs,
                r.dense,
                Ratio(r.dense, r.macs),
                r.sparse,
                Ratio(r.sparse, r.macs),
                Ratio(r.dense, r.sparse),
                Ratio(r.sparse_pow2, r.macs),
                Ratio(r.sparse_pow2x3, r.macs),
                r.sparse_bytes,
                r.sparse_pow2_bytes,
                r.sparse_pow2x3_bytes,
                r.dense_bytes,
                if r.same { "" } else { "  OUTPUT MISMATCH" }
            );
            if let Some(row) = rows.get_mut(next) {
                *row = Row { sparsity, ..r };
            }
            next += 1;
        }
    }
    let names = layers.iter().flat_map(|l| {
        let name = match l {
            Layer::Conv(name, _) | Layer::Fc(name, _) => *name,
        };
        SPARSITIES.iter().map(move |_| name)
    });
    for (name, r) in names.zip(&rows) {
        hprintln!(
            "sparse_m4 {{\"layer\": \"{}\", \"sparsity\": {}, \"macs\": {}, \"dense_instr\": {}, \"sparse_instr\": {}, \"sparse_pow2_instr\": {}, \"sparse_pow2x3_instr\": {}, \"dense_bytes\": {}, \"sparse_bytes\": {}, \"sparse_pow2_bytes\": {}, \"sparse_pow2x3_bytes\": {}}}",
            name, r.sparsity, r.macs, r.dense, r.sparse, r.sparse_pow2, r.sparse_pow2x3, r.dense_bytes, r.sparse_bytes, r.sparse_pow2_bytes, r.sparse_pow2x3_bytes
        );
    }
    exit(ok)
}

/// One layer at one sparsity.
#[derive(Clone, Copy, Default)]
struct Row {
    sparsity: u64,
    macs: u64,
    /// Instructions of the dense kernel, the int8 sparse one and the
    /// power-of-two sparse ones (4- and 3-bit codes).
    dense: u64,
    sparse: u64,
    sparse_pow2: u64,
    sparse_pow2x3: u64,
    /// Every sparse kernel's output equals the dense kernel's.
    same: bool,
    dense_bytes: usize,
    sparse_bytes: usize,
    sparse_pow2_bytes: usize,
    sparse_pow2x3_bytes: usize,
}

/// One layer at `sparsity` % zeros, its other weights the four top powers
/// of two; `None` when the layer does not fit the buffers.
fn measure<P: SparseOp>(
    counter: &Counter,
    rng: &mut Rng,
    (b, stored, stored_pow2, stored_pow2x3): (&mut Bufs, &mut [u8], &mut [u8], &mut [u8]),
    p: &P,
    sparsity: u64,
) -> Option<Row> {
    if p.input_len() > IN_CAP || p.weights_len() > W_CAP || p.output_len() > OUT_CAP {
        return None;
    }
    b.fill(rng, p);
    for w in &mut b.weights[..p.weights_len()] {
        // Symmetric, as the converter makes them; `sparsity` % set to
        // zero, the others to the power of two at or below their magnitude
        // (at least 8, at most 64), so that no other weight becomes zero.
        *w = if rng.chance(sparsity, 100) {
            0
        } else {
            let magnitude = 1i8 << (7 - (*w).unsigned_abs().max(8).leading_zeros()).min(6);
            if *w < 0 {
                -magnitude
            } else {
                magnitude
            }
        };
    }
    b.spread_quant(rng, p.channels(), p.reduction());
    let (_, kernel) = p.dsp_kernel();
    let (o, want, got) = b.split(p);
    let (x, w, bias, m, s) = (o.input, o.weights, o.bias, o.multiplier, o.shift);
    let len = encode_sparse_rows_into(w, p.reduction(), stored)?;
    let sparse = SparseRows::parse(stored.get(..len)?, p.channels(), p.reduction())?;
    let len_pow2 = encode_sparse_into::<Pow2NonZeros>(w, p.reduction(), stored_pow2)?;
    let sparse_pow2 =
        SparsePow2Rows::parse(stored_pow2.get(..len_pow2)?, p.channels(), p.reduction())?;
    let len_pow2x3 = encode_sparse_into::<Pow2x3NonZeros>(w, p.reduction(), stored_pow2x3)?;
    let sparse_pow2x3 =
        SparsePow2x3Rows::parse(stored_pow2x3.get(..len_pow2x3)?, p.channels(), p.reduction())?;
    let dense = counter.instructions(REPS, || {
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
    let sparse_instr = counter.instructions(REPS, || {
        p.run_sparse(
            black_box(x),
            black_box(&sparse),
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    let same = want == got;
    got.fill(0x55);
    let sparse_pow2_instr = counter.instructions(REPS, || {
        p.run_sparse_pow2(
            black_box(x),
            black_box(&sparse_pow2),
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    let same = same && want == got;
    got.fill(0x55);
    let sparse_pow2x3_instr = counter.instructions(REPS, || {
        p.run_sparse_pow2x3(
            black_box(x),
            black_box(&sparse_pow2x3),
            bias,
            m,
            s,
            black_box(&mut *got),
        )
    });
    Some(Row {
        sparsity: 0,
        macs: p.macs(),
        dense,
        sparse: sparse_instr,
        sparse_pow2: sparse_pow2_instr,
        sparse_pow2x3: sparse_pow2x3_instr,
        same: same && want == got,
        dense_bytes: w.len(),
        sparse_bytes: len,
        sparse_pow2_bytes: len_pow2,
        sparse_pow2x3_bytes: len_pow2x3,
    })
}
