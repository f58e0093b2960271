//! Shared pieces of the QEMU checks: a deterministic PRNG, an instruction
//! counter built on SysTick, and semihosting exit codes.
#![no_std]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use cortex_m_semihosting::debug;
pub use cortex_m_semihosting::hprintln;

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
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick on the core clock, free running, extended past its 24 bits by an
/// interrupt that counts wraps. Under `-icount shift=0` one tick is a fixed
/// number of guest instructions ([`Counter::calibrate`] measures it).
pub struct Counter {
    /// Guest instructions per tick.
    pub per_tick: u64,
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
        self.per_tick = (2 * u64::from(N) + ticks / 2) / ticks;
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
        (ticks * self.per_tick + u64::from(reps) / 2) / u64::from(reps.max(1))
    }
}
