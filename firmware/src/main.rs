//! The ECG monitor firmware for QEMU's mps2-an386 (Cortex-M4F).
//!
//! Streams the MIT-BIH record 208 excerpt (`data/mitbih208.i16`) through the
//! monitor — R-peak detector, beat windows, int8 model — as if it came from
//! the ADS1292R, then prints beats, per-class counts, instruction counts and
//! the stack high-water mark over semihosting and exits 0 when everything
//! checked out (every beat matching the host's golden output, when
//! `model/golden.bin` exists).
//!
//! The model is optional at build time: without `model/ecg.mq` the pipeline
//! runs with a stand-in classifier that calls every beat normal.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "medq-firmware is a Cortex-M binary: run `cargo run --release` inside firmware/ \
         (QEMU mps2-an386); the portable library is tested with \
         `cargo test --target x86_64-unknown-linux-gnu --lib`."
    );
}

#[cfg(target_os = "none")]
mod device {
    use core::sync::atomic::{AtomicU32, Ordering};

    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m::peripheral::SYST;
    use cortex_m_rt::{entry, exception};
    use medq_firmware::classifier::Clock;
    #[cfg(medq_model)]
    use medq_firmware::classifier::{error_name, InferenceStats};
    use medq_firmware::monitor::{
        AlertConfig, BeatReport, Classifier, Event, Monitor, MonitorConfig, ReplaySource,
        SkipReason, Totals, CLASS_NAMES,
    };
    use medq_firmware::window::{InputQuant, WindowConfig, BEAT_LEN};

    #[cfg(not(feature = "defmt"))]
    macro_rules! info {
        ($($t:tt)*) => { cortex_m_semihosting::hprintln!($($t)*) };
    }
    #[cfg(feature = "defmt")]
    macro_rules! info {
        ($($t:tt)*) => { defmt::println!($($t)*) };
    }
    #[cfg(feature = "defmt")]
    use defmt_rtt as _;

    /// Sample rate of the recording.
    const FS: u32 = 360;

    /// Where this build is meant to run, and the SysTick clock's instructions
    /// per tick (×1000) there under `-icount shift=0` (1 GHz virtual clock).
    #[cfg(target_abi = "eabihf")]
    const BOARD: (&str, u64) = (
        "Cortex-M4F/M7, QEMU mps2-an386/an500 (25 MHz SysTick)",
        40_000,
    );
    #[cfg(not(target_abi = "eabihf"))]
    const BOARD: (&str, u64) = ("Cortex-M0/M3, QEMU micro:bit (16 MHz SysTick)", 62_500);

    /// The recording, in the fixture region (see memory.template.x).
    #[link_section = ".replay.record"]
    static RECORD: [u8; include_bytes!("../data/mitbih208.i16").len()] =
        *include_bytes!("../data/mitbih208.i16");

    /// `model/ecg.mq`, or the file `MEDQ_MODEL` named at build time.
    #[cfg(medq_model)]
    static MODEL: &[u8] = medq::include_model!(concat!(env!("OUT_DIR"), "/model.mq"));
    /// The key the model must be signed with (`MEDQ_PUBLIC_KEY` at build time).
    #[cfg(medq_signed)]
    const PUBLIC_KEY: medq::PublicKey = include!(concat!(env!("OUT_DIR"), "/public_key.rs"));
    #[cfg(medq_model)]
    const OPS: usize = match medq::peek_op_count(MODEL) {
        Some(n) => n,
        None => panic!("model/ecg.mq has no op table"),
    };
    #[cfg(medq_model)]
    const ARENA_LEN: usize = match medq::peek_arena_len(MODEL) {
        Some(n) => n,
        None => panic!("model/ecg.mq is not a .mq file"),
    };
    #[cfg(medq_golden)]
    #[link_section = ".replay.golden"]
    static GOLDEN: [u8; include_bytes!("../model/golden.bin").len()] =
        *include_bytes!("../model/golden.bin");

    // ---- instruction counting --------------------------------------------

    /// SysTick wraps every 2^24 ticks; the handler counts wraps.
    static WRAPS: AtomicU32 = AtomicU32::new(0);

    #[exception]
    fn SysTick() {
        // Single core and main never writes it: load + store is atomic enough
        // (and works on thumbv6m, which has no atomic read-modify-write).
        WRAPS.store(
            WRAPS.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    fn start_systick(mut syst: SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // VAL reads 0 until the first tick loads the reload value; a 0 there
        // would read as a full period already elapsed. Bounded: a board
        // without a running SysTick just reports no instruction counts.
        for _ in 0..10_000 {
            if SYST::get_current() != 0 {
                break;
            }
        }
    }

    /// SysTick ticks since start, extended to 64 bits.
    #[derive(Clone, Copy)]
    pub struct Ticks;

    impl Clock for Ticks {
        fn now(&mut self) -> u64 {
            loop {
                let hi = WRAPS.load(Ordering::Relaxed);
                let lo = SYST::get_current();
                // A wrap between the two reads runs the handler at once.
                if WRAPS.load(Ordering::Relaxed) == hi {
                    return (u64::from(hi) << 24) + u64::from(0x00FF_FFFF - lo);
                }
            }
        }
    }

    /// Guest instructions per SysTick tick, ×1000, from a loop of known
    /// length. Under `-icount shift=0` (1 ns per instruction) and the MPS2's
    /// 25 MHz SysTick clock this is 40 000; without `-icount` it is whatever
    /// the host speed makes it, which the report flags.
    fn calibrate() -> u64 {
        const ITER: u32 = 1_000_000;
        let t0 = Ticks.now();
        // SAFETY: a register-only countdown loop: 2 instructions per
        // iteration (SUBS, BNE), no memory, no stack.
        unsafe {
            core::arch::asm!(
                "2:",
                "subs {n}, {n}, #1",
                "bne 2b",
                n = inout(reg) ITER => _,
                options(nomem, nostack),
            );
        }
        let ticks = Ticks.now().saturating_sub(t0).max(1);
        u64::from(2 * ITER) * 1000 / ticks
    }

    // ---- stack high-water mark -------------------------------------------

    const PAINT: u32 = 0xDEAD_BEEF;

    extern "C" {
        /// End of .bss/.uninit: the lowest address the stack may reach.
        static _stack_end: u32;
        /// Initial stack pointer (top of RAM).
        static _stack_start: u32;
    }

    extern "C" {
        /// Load address of .data in flash, and .data's bounds in RAM.
        static __sidata: u32;
        static __sdata: u32;
        static __edata: u32;
        static __sbss: u32;
    }

    /// (flash bytes: vectors, code, constants, model, .data image; static
    /// RAM bytes: .data + .bss + .uninit), from the linker's symbols.
    fn memory_use() -> (usize, usize) {
        let a = |p: *const u32| p as usize;
        let data_len = a(core::ptr::addr_of!(__edata)) - a(core::ptr::addr_of!(__sdata));
        let flash = a(core::ptr::addr_of!(__sidata)) + data_len;
        let ram =
            stack_bounds().0 - a(core::ptr::addr_of!(__sdata)).min(a(core::ptr::addr_of!(__sbss)));
        (flash, ram)
    }

    fn stack_bounds() -> (usize, usize) {
        // Linker-defined symbols: only their addresses are taken.
        (
            core::ptr::addr_of!(_stack_end) as usize,
            core::ptr::addr_of!(_stack_start) as usize,
        )
    }

    /// Paint the free stack below the current frame.
    #[inline(never)]
    fn paint_stack() {
        let (bottom, _) = stack_bounds();
        // Keep clear of this function's own frame.
        let limit = cortex_m::register::msp::read() as usize - 64;
        let mut p = bottom;
        while p < limit {
            // SAFETY: [bottom, limit) is RAM between the end of .bss and the
            // live stack (linker script + current SP), unused by anything.
            unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
    }

    /// (bytes of stack ever used, bytes available).
    fn stack_high_water() -> (usize, usize) {
        let (bottom, top) = stack_bounds();
        let mut p = bottom;
        // SAFETY: reads of the painted RAM range, word aligned.
        while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        (top - p, top - bottom)
    }

    // ---- classifiers -----------------------------------------------------

    /// Without a model: every beat "normal", so the pipeline still runs.
    #[cfg(not(medq_model))]
    struct NoModel;

    #[cfg(not(medq_model))]
    use medq_firmware::monitor::NUM_CLASSES;

    #[cfg(not(medq_model))]
    impl Classifier for NoModel {
        type Error = core::convert::Infallible;
        fn classify(
            &mut self,
            _: &[i8; BEAT_LEN],
            scores: &mut [i8; NUM_CLASSES],
        ) -> Result<(), Self::Error> {
            *scores = [127, -128, -128, -128, -128];
            Ok(())
        }
    }

    fn exit(ok: bool) -> ! {
        #[cfg(not(feature = "defmt"))]
        cortex_m_semihosting::debug::exit(if ok {
            cortex_m_semihosting::debug::EXIT_SUCCESS
        } else {
            cortex_m_semihosting::debug::EXIT_FAILURE
        });
        #[cfg(feature = "defmt")]
        let _ = ok;
        loop {
            cortex_m::asm::bkpt();
        }
    }

    #[entry]
    fn main() -> ! {
        paint_stack();
        let ok = run();
        let (used, avail) = stack_high_water();
        info!("stack: {} of {} bytes used (high-water mark)", used, avail);
        let (flash, ram) = memory_use();
        info!(
            "budgets: flash {} of {} bytes (code + model), RAM {} of {} bytes ({} static + {} stack)",
            flash,
            env!("MEDQ_FLASH_BUDGET"),
            ram + used,
            env!("MEDQ_RAM_BUDGET"),
            ram,
            used
        );
        // Every painted word overwritten means the stack may have run into .bss.
        let stack_ok = used + 64 < avail;
        if !stack_ok {
            info!("FAIL: stack exhausted");
        }
        exit(ok && stack_ok)
    }

    fn run() -> bool {
        let Some(cp) = cortex_m::Peripherals::take() else {
            return false;
        };
        start_systick(cp.SYST);
        let ipt_milli = calibrate();
        info!("medq ECG monitor on {}", BOARD.0);
        info!(
            "replaying the MIT-BIH record 208 excerpt: {} samples at {} Hz",
            RECORD.len() / 2,
            FS
        );
        info!(
            "clock: {}.{:03} instructions per SysTick tick ({}.{:03} expected under -icount shift=0)",
            ipt_milli / 1000,
            ipt_milli % 1000,
            BOARD.1 / 1000,
            BOARD.1 % 1000
        );
        let instr = |ticks: u64| ticks * ipt_milli / 1000;

        run_model(instr)
    }

    /// The monitor's buffers (sample history, detector state: ~4 KB), in
    /// .bss rather than on the stack.
    fn monitor(quant: InputQuant) -> Option<&'static mut Monitor> {
        static mut MONITOR: Monitor = Monitor::idle();
        // SAFETY: the only reference ever made to MONITOR: `monitor` is
        // called once, from main, and no interrupt touches it.
        let m: &'static mut Monitor = unsafe { &mut *core::ptr::addr_of_mut!(MONITOR) };
        match m.configure(monitor_config(quant)) {
            Ok(()) => Some(m),
            Err(_) => {
                info!("FAIL: bad monitor configuration");
                None
            }
        }
    }

    fn monitor_config(quant: InputQuant) -> MonitorConfig {
        MonitorConfig {
            fs: FS,
            window: WindowConfig::ecg5000(FS),
            quant,
            alert: AlertConfig::default(),
        }
    }

    /// Stream the recording; returns (totals, ticks for the whole run).
    fn stream<C: Classifier>(
        monitor: &mut Monitor,
        classifier: &mut C,
        mut on_beat: impl FnMut(&BeatReport, &[i8; BEAT_LEN]),
    ) -> Option<u64> {
        let mut source = ReplaySource::new(&RECORD, FS);
        let t0 = Ticks.now();
        let res = monitor.run(&mut source, classifier, |m, ev| match ev {
            Event::Beat(b) => {
                on_beat(b, m.last_input());
                if b.alert_changed {
                    let state = if b.alert { "ON" } else { "off" };
                    info!(
                        "alert {} at beat {} (t = {} s): {} abnormal of the last beats",
                        state,
                        b.seq,
                        b.r_index / FS,
                        b.abnormal_recent
                    );
                }
            }
            Event::Skipped { r_index, reason } => {
                let why = match reason {
                    SkipReason::LeadOff => "lead off",
                    SkipReason::Window(_) => "window unavailable",
                    SkipReason::Overrun => "queue overrun",
                };
                info!("beat at sample {} skipped: {}", r_index, why);
            }
        });
        let ticks = Ticks.now().saturating_sub(t0);
        match res {
            Ok(()) => Some(ticks),
            Err(e) => {
                let what = match e {
                    medq_firmware::monitor::RunError::Source(_) => "sample source",
                    medq_firmware::monitor::RunError::Classifier(_) => "classifier",
                };
                info!("FAIL: monitor stopped: {} error", what);
                None
            }
        }
    }

    fn report_totals(t: &Totals) -> bool {
        info!(
            "beats detected: {}, classified: {}, skipped: {}, alerts: {}",
            t.detected,
            t.classified(),
            t.skipped,
            t.alerts
        );
        for (name, n) in CLASS_NAMES.iter().zip(t.per_class.iter()) {
            info!("  {}: {}", name, n);
        }
        info!(
            "  uncertain (top-1 margin below the model's abstain margin): {}",
            t.uncertain
        );
        t.detected > 0 && t.samples as usize == RECORD.len() / 2
    }

    fn report_pipeline(instr: impl Fn(u64) -> u64, run_ticks: u64, infer_ticks: u64, samples: u32) {
        let pipeline = instr(run_ticks.saturating_sub(infer_ticks));
        info!(
            "pipeline (detector + windows, no model): {} instructions, {} per sample",
            pipeline,
            pipeline / u64::from(samples.max(1))
        );
    }

    #[cfg(not(medq_model))]
    fn run_model(instr: impl Fn(u64) -> u64) -> bool {
        info!("model: none (put the converted model at firmware/model/ecg.mq to classify beats)");
        let quant = InputQuant::new(1.0 / 32.0, 0);
        let Some(quant) = quant else {
            return false;
        };
        let Some(monitor) = monitor(quant) else {
            return false;
        };
        let Some(ticks) = stream(monitor, &mut NoModel, |_, _| {}) else {
            return false;
        };
        let ok = report_totals(monitor.totals());
        report_pipeline(instr, ticks, 0, monitor.totals().samples);
        ok
    }

    #[cfg(medq_model)]
    fn run_model(instr: impl Fn(u64) -> u64) -> bool {
        use medq_firmware::classifier::{input_quant, MedqClassifier};

        static mut ARENA: [u8; ARENA_LEN] = [0; ARENA_LEN];
        // SAFETY: the only reference ever made to ARENA; `run_model` runs
        // once, from main, and no interrupt touches the arena.
        let arena: &'static mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
        static mut PLAN: [medq::PreparedOp<'static>; OPS] = [medq::PreparedOp::EMPTY; OPS];
        // SAFETY: as for ARENA: the only reference ever made to PLAN.
        let plan: &'static mut [medq::PreparedOp<'static>] =
            unsafe { &mut *core::ptr::addr_of_mut!(PLAN) };

        #[cfg(medq_signed)]
        let parsed = {
            let start = Ticks.now();
            let parsed = medq::Model::parse_verified(MODEL, &PUBLIC_KEY);
            if parsed.is_ok() {
                info!(
                    "model signature: valid ({} instructions to check it and parse the model)",
                    instr(Ticks.now() - start)
                );
            }
            parsed
        };
        #[cfg(not(medq_signed))]
        let parsed = medq::Model::parse(MODEL);
        let model = match parsed {
            Ok(m) => m,
            Err(e) => {
                info!("FAIL: model: {}", error_name(&e));
                return false;
            }
        };
        info!(
            "model: {} bytes, {} ops, arena {} bytes (static)",
            MODEL.len(),
            model.op_count(),
            ARENA_LEN
        );
        // `MedqClassifier::start` (what the boards call) in its steps:
        // calling it costs this build 64 B more at opt-level z, and its
        // flash has ~0.5 KB to spare.
        let setup = input_quant(&model)
            .and_then(|q| medq::Interpreter::new(&model, arena, plan).map(|i| (q, i)))
            .and_then(|(q, i)| MedqClassifier::new(i, Ticks).map(|c| (q, c)));
        let (quant, mut classifier) = match setup {
            Ok(x) => x,
            Err(e) => {
                info!("FAIL: model setup: {}", error_name(&e));
                return false;
            }
        };
        match classifier.interpreter().self_test() {
            Ok(true) => info!("model self-test: golden pair matches"),
            Ok(false) => {
                info!("FAIL: model self-test: output differs from the file's golden pair");
                return false;
            }
            Err(_) => info!("model self-test: no golden pair in the file"),
        }
        let Some(monitor) = monitor(quant) else {
            return false;
        };

        #[cfg(medq_golden)]
        let mut check = match medq_firmware::golden::Golden::parse(&GOLDEN) {
            Some(g) => medq_firmware::golden::GoldenCheck::new(g),
            None => {
                info!("FAIL: model/golden.bin does not fit this firmware");
                return false;
            }
        };
        let Some(ticks) = stream(monitor, &mut classifier, |_b, _input| {
            #[cfg(medq_golden)]
            if let medq_firmware::golden::Verdict::Mismatch(want) = check.check(_b, _input) {
                let what = if want.input_hash != medq_firmware::golden::fnv1a(_input) {
                    "input window"
                } else {
                    "model output"
                };
                let (g, w) = (_b.scores, want.scores);
                info!(
                    "MISMATCH beat {} (R {} vs golden R {}): {} differs; got [{} {} {} {} {}], want [{} {} {} {} {}]",
                    _b.seq, _b.r_index, want.r_index, what, g[0], g[1], g[2], g[3], g[4], w[0], w[1], w[2], w[3], w[4]
                );
            }
        }) else {
            return false;
        };

        let ok = report_totals(monitor.totals());
        let stats: &InferenceStats = classifier.stats();
        report_inference(&instr, stats);
        report_pipeline(&instr, ticks, stats.total, monitor.totals().samples);

        #[cfg(medq_golden)]
        let golden_ok = {
            let passed = check.passed();
            info!(
                "golden: {} beats compared, {} mismatches -> {}",
                check.checked(),
                check.mismatches(),
                if passed { "byte-identical" } else { "FAIL" }
            );
            passed
        };
        #[cfg(not(medq_golden))]
        let golden_ok = {
            info!("FAIL: no model/golden.bin to compare with: run `cargo run --example golden --target x86_64-unknown-linux-gnu`");
            false
        };
        ok && golden_ok
    }

    #[cfg(medq_model)]
    fn report_inference(instr: &impl Fn(u64) -> u64, s: &InferenceStats) {
        if s.count == 0 {
            info!("inference: none run");
            return;
        }
        info!(
            "inference: {} runs, instructions per run: mean {}, min {}, max {}",
            s.count,
            instr(s.total) / u64::from(s.count),
            instr(s.min),
            instr(s.max)
        );
        for (k, &t) in s.per_op.iter().enumerate().take(s.ops.min(s.per_op.len())) {
            info!(
                "  op {}: {} instructions per run",
                k,
                instr(t) / u64::from(s.count)
            );
        }
    }

    #[cfg(not(feature = "defmt"))]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        // No location: printing it keeps every panic site's source path in
        // flash (~1.1 KB, and more the deeper the checkout directory), so
        // the link would pass or fail depending on where the repository
        // was cloned. A debugger's backtrace gives the site.
        cortex_m_semihosting::hprintln!("PANIC");
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::bkpt();
        }
    }

    #[cfg(feature = "defmt")]
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        defmt::error!("panic");
        cortex_m::asm::udf()
    }
}
