//! Shared pieces of the QEMU checks: a deterministic PRNG, an instruction
//! counter built on SysTick, semihosting exit codes, and the conv/FC calls
//! both checks make (operand sizes, buffers, the two kernels per op).
#![no_std]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use cortex_m_semihosting::debug;
pub use cortex_m_semihosting::hprintln;
use medq::kernels::{self, conv_out_len, reference, ConvParams, FullyConnectedParams};

/// Ends the QEMU run; the exit code reaches the shell (0 or 1).
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a semihosting host.
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    exit(false)
}

/// xorshift64*: deterministic, tiny, good enough to pick shapes and bytes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `lo..=hi` (`lo <= hi`; the tiny modulo bias is irrelevant here).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    pub fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    pub fn fill_i8(&mut self, buf: &mut [i8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(bytes) {
                *d = s as i8;
            }
        }
    }
}

// ---- instruction counting ----------------------------------------------------

static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;

#[exception]
fn SysTick() {
    // Only this handler writes it and the core is single: load + store is
    // atomic enough, and thumbv6m (Cortex-M0) has no read-modify-write atomics.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// SysTick on the core clock, free running, extended past its 24 bits by an
/// interrupt that counts wraps. Under `-icount shift=0` one tick is a fixed
/// number of guest instructions ([`Counter::calibrate`] measures it): 40 on
/// the MPS2 boards (25 MHz), 62.5 on the micro:bit (16 MHz). The ratio is
/// kept in hundredths, which holds both exactly; the calibration's ±1 tick
/// is far below the rounding.
pub struct Counter {
    /// Guest instructions per tick, rounded to a whole number (for reports).
    pub per_tick: u64,
    /// Guest instructions per tick, in hundredths.
    pub per_tick_hundredths: u64,
    /// Ticks a measurement of nothing reads (subtracted from every measurement).
    pub overhead: u64,
}

impl Counter {
    pub fn start(mut syst: SYST) -> Counter {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // VAL reads 0 until the first tick loads the reload value.
        for _ in 0..10_000 {
            if SYST::get_current() != 0 {
                break;
            }
        }
        let mut c = Counter {
            per_tick: 1,
            per_tick_hundredths: 100,
            overhead: 0,
        };
        c.calibrate();
        c
    }

    /// Ticks since start.
    pub fn ticks() -> u64 {
        cortex_m::interrupt::free(|_| {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let mut val = SYST::get_current();
            // A wrap whose interrupt is still pending (masked here) is not in
            // `wraps` yet; VAL re-read after seeing it is past the wrap.
            let pending = SCB::is_pendst_pending();
            if pending {
                val = SYST::get_current();
            }
            (u64::from(wraps + u32::from(pending)) << 24) + u64::from(RELOAD - val)
        })
    }

    /// Guest instructions per tick, from a loop of known length (2 per
    /// iteration), and the reading overhead.
    fn calibrate(&mut self) {
        const N: u32 = 1_000_000;
        let t0 = Counter::ticks();
        let t1 = Counter::ticks();
        self.overhead = t1 - t0;
        let t0 = Counter::ticks();
        // SAFETY: a register-only countdown loop.
        unsafe {
            asm!("2:", "subs {n}, {n}, #1", "bne 2b", n = inout(reg) N => _, options(nomem, nostack));
        }
        let t1 = Counter::ticks();
        let ticks = (t1 - t0).saturating_sub(self.overhead).max(1);
        self.per_tick_hundredths = (200 * u64::from(N) + ticks / 2) / ticks;
        self.per_tick = (self.per_tick_hundredths + 50) / 100;
    }

    /// Guest instructions in `ticks` ticks, rounded.
    pub fn to_instructions(&self, ticks: u64) -> u64 {
        (ticks * self.per_tick_hundredths + 50) / 100
    }

    /// Guest instructions `f` takes, averaged over `reps` runs (which
    /// refines the tick's granularity to `per_tick / reps`).
    pub fn instructions(&self, reps: u32, mut f: impl FnMut()) -> u64 {
        let t0 = Counter::ticks();
        for _ in 0..reps {
            f();
        }
        let t1 = Counter::ticks();
        let ticks = (t1 - t0).saturating_sub(self.overhead);
        let reps = u64::from(reps.max(1));
        (self.to_instructions(ticks) + reps / 2) / reps
    }
}

// ---- the conv/FC calls under check -----------------------------------------------

/// The signature the reference and the dispatched conv/FC kernels share.
pub type Kernel<P> = fn(&P, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

/// An optimized kernel of an op, as the runtime's kernel selection lists it.
pub type DspKernel<P> = medq::kernels::select::Candidate<P, Kernel<P>>;

/// A conv or FC call: its operand sizes and its kernels: the reference, the
/// and the DSP ones the runtime's kernel selection tries, best first.
pub trait Op: core::fmt::Debug + Sized + 'static {
    /// Name in reports.
    const NAME: &'static str;
    const REFERENCE: Kernel<Self>;
    /// Output channels: the length of bias, multipliers and shifts.
    fn channels(&self) -> usize;
    /// Terms summed into each output.
    fn reduction(&self) -> usize;
    fn input_len(&self) -> usize;
    fn output_len(&self) -> usize;
    fn weights_len(&self) -> usize {
        self.channels() * self.reduction()
    }
    /// The op's DSP kernels, in the order a prepare-time selection tries
    /// them (the first that takes a call runs it).
    const DSP_KERNELS: &'static [DspKernel<Self>];
    /// The DSP kernel a selection picks for this call (the first whose
    /// `_takes` accepts it), and its name; the reference when none does.
    fn dsp_kernel(&self) -> (&'static str, Kernel<Self>) {
        Self::DSP_KERNELS
            .iter()
            .find(|k| (k.takes)(self).is_ok())
            .map_or(("reference", Self::REFERENCE), |k| (k.name, k.run))
    }
    /// Nominal multiply-accumulates (padded taps included).
    fn macs(&self) -> u64 {
        (self.output_len() * self.reduction()) as u64
    }
}

impl Op for ConvParams {
    const NAME: &'static str = "conv";
    const REFERENCE: Kernel<Self> = reference::conv_s8;
    const DSP_KERNELS: &'static [DspKernel<Self>] = kernels::select::CONV;
    fn channels(&self) -> usize {
        self.out_channels
    }
    fn reduction(&self) -> usize {
        self.in_channels / self.groups * self.kernel_h * self.kernel_w
    }
    fn input_len(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }
    fn output_len(&self) -> usize {
        self.out_channels * self.out_h * self.out_w
    }
}

impl Op for FullyConnectedParams {
    const NAME: &'static str = "fc";
    const REFERENCE: Kernel<Self> = reference::fully_connected_s8;
    const DSP_KERNELS: &'static [DspKernel<Self>] = kernels::select::FULLY_CONNECTED;
    fn channels(&self) -> usize {
        self.out_features
    }
    fn reduction(&self) -> usize {
        self.in_features
    }
    fn input_len(&self) -> usize {
        self.rows * self.in_features
    }
    fn output_len(&self) -> usize {
        self.rows * self.out_features
    }
}

/// A 1-D conv at stride and dilation 1, `pad` on both ends, no clamp;
/// `zp` is (input, output) zero point.
pub fn conv1d(
    cin: usize,
    cout: usize,
    k: usize,
    len: usize,
    pad: usize,
    groups: usize,
    zp: (i32, i32),
) -> ConvParams {
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
        input_zero_point: zp.0,
        output_zero_point: zp.1,
        act_min: -128,
        act_max: 127,
    }
}

/// One row of `k` features into `n`, no clamp; `zp` as in [`conv1d`].
pub fn fc(k: usize, n: usize, zp: (i32, i32)) -> FullyConnectedParams {
    FullyConnectedParams {
        rows: 1,
        in_features: k,
        out_features: n,
        input_zero_point: zp.0,
        output_zero_point: zp.1,
        act_min: -128,
        act_max: 127,
    }
}

/// Operands and the two outputs (`want` from the reference, `got` from the
/// dispatched kernel), each binary choosing its capacities. Large: keep it in
/// a static (`cortex_m::singleton!`).
pub struct Bufs<const IN: usize, const W: usize, const OUT: usize, const CH: usize> {
    pub input: [i8; IN],
    pub weights: [i8; W],
    pub bias: [i32; CH],
    pub multiplier: [i32; CH],
    pub shift: [i8; CH],
    pub want: [i8; OUT],
    pub got: [i8; OUT],
}

/// The slices of a [`Bufs`] one call reads.
pub struct Operands<'a> {
    pub input: &'a [i8],
    pub weights: &'a [i8],
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i8],
}

impl<const IN: usize, const W: usize, const OUT: usize, const CH: usize> Bufs<IN, W, OUT, CH> {
    pub const ZERO: Self = Bufs {
        input: [0; IN],
        weights: [0; W],
        bias: [0; CH],
        multiplier: [0; CH],
        shift: [0; CH],
        want: [0; OUT],
        got: [0; OUT],
    };

    /// Random input, then random weights, for `p`.
    pub fn fill<P: Op>(&mut self, rng: &mut Rng, p: &P) {
        rng.fill_i8(&mut self.input[..p.input_len()]);
        rng.fill_i8(&mut self.weights[..p.weights_len()]);
    }

    /// Bias, multipliers and shifts for `n` channels that spread the
    /// outputs over i8 for a reduction of `k` terms (|acc| is about
    /// 2^14 · sqrt(k) on random data).
    pub fn spread_quant(&mut self, rng: &mut Rng, n: usize, k: usize) {
        let bits = 14 + (usize::BITS - k.leading_zeros()) as i8 / 2;
        for c in 0..n {
            self.bias[c] = rng.range(-4000, 4000) as i32;
            self.multiplier[c] = rng.range(1 << 30, i32::MAX as i64) as i32;
            self.shift[c] = 7 - bits + rng.range(-1, 1) as i8;
        }
    }

    /// `p`'s operands, and its outputs in `want` and in `got`.
    pub fn split<P: Op>(&mut self, p: &P) -> (Operands<'_>, &mut [i8], &mut [i8]) {
        let (n_out, ch) = (p.output_len(), p.channels());
        let operands = Operands {
            input: &self.input[..p.input_len()],
            weights: &self.weights[..p.weights_len()],
            bias: &self.bias[..ch],
            multiplier: &self.multiplier[..ch],
            shift: &self.shift[..ch],
        };
        (operands, &mut self.want[..n_out], &mut self.got[..n_out])
    }
}

/// `a / b` with two decimals, padded like a string.
pub struct Ratio(pub u64, pub u64);

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
