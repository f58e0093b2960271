//! The medq ECG monitor on an STM32F411 bedside module (WeAct "Black Pill"
//! STM32F411CEU6 pin-out: 25 MHz crystal, 100 MHz core).
//!
//! At boot: bind the int8 ECG model (embedded with `include_model!`), run
//! its self-tests — the file's golden pair, then the whole pipeline over
//! the bundled MIT-BIH recording against the host's golden outputs, which
//! also measures the cycles per inference on this chip — then bring the
//! ADS1292R up on SPI1 and classify every beat, sleeping on DRDY between
//! samples. Everything is logged with defmt over RTT (`probe-rs run`).
//!
//! The pipeline, the driver and the boot sequence are the portable
//! `medq_firmware` library's (`board` module); this file holds only what is
//! particular to the chip: pins, SPI, clocks.
#![no_std]
#![no_main]

use defmt::{error, info};
use embassy_executor::Spawner;
use embassy_stm32::exti::{self, ExtiInput};
use embassy_stm32::gpio::{Level, Output, Pull, Speed};
use embassy_stm32::time::Hertz;
use embassy_stm32::{bind_interrupts, interrupt, rcc, spi};
use embassy_time::Delay;
use embedded_hal_bus::spi::ExclusiveDevice;
use medq_firmware::board::{self, WrappingClock};
use medq_firmware::monitor::{Event, Monitor};
use static_cell::{ConstStaticCell, StaticCell};
use {defmt_rtt as _, panic_probe as _};

/// Core clock: 25 MHz crystal → PLL (÷25, ×200, ÷2) → 100 MHz, the
/// STM32F411's maximum. Set in `clocks`.
const CPU_HZ: u32 = 100_000_000;

/// The pin map: one row per signal, as wired on a Black Pill (SPI1 on its
/// default pins). `main` is the only other place that names pins; keep the
/// two in step.
///
/// | signal | STM32F411 | ADS1292R / use |
/// | --- | --- | --- |
/// | SPI1 SCK | PA5 | SCLK |
/// | SPI1 MISO | PA6 | DOUT |
/// | SPI1 MOSI | PA7 | DIN |
/// | SPI CS | PA4 | /CS (GPIO, driven by `ExclusiveDevice`) |
/// | DRDY | PB0 | /DRDY (input, pull-up, EXTI0 falling edge wakes the core) |
/// | PWDN/RESET | PB1 | /PWDN-/RESET (held high) |
/// | alert LED | PC13 | on while the alert is on (active low, on-board LED) |
pub const PIN_MAP: [(&str, &str, &str); 7] = [
    ("SPI1 SCK", "PA5", "SCLK"),
    ("SPI1 MISO", "PA6", "DOUT"),
    ("SPI1 MOSI", "PA7", "DIN"),
    ("SPI CS", "PA4", "/CS"),
    ("DRDY", "PB0", "/DRDY, EXTI0"),
    ("PWDN/RESET", "PB1", "/PWDN-/RESET"),
    ("alert LED", "PC13", "on-board LED"),
];

/// SPI clock: at most 2 MHz (SPI1 runs from the 100 MHz APB2, so the
/// prescaler gives 1.5625 MHz); a 9-byte frame then takes 46 µs. Mode 1.
const SPI_FREQUENCY: Hertz = Hertz(2_000_000);

bind_interrupts!(struct Irqs {
    EXTI0 => exti::InterruptHandler<interrupt::typelevel::EXTI0>;
});

/// 100 MHz from the Black Pill's 25 MHz crystal; APB1 at 50 MHz (its
/// maximum), APB2 at 100 MHz. embassy-stm32 sets the flash wait states (3
/// at 100 MHz and 3.3 V) and enables the prefetch and caches.
fn clocks() -> embassy_stm32::Config {
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(rcc::Hse {
        freq: Hertz(25_000_000),
        mode: rcc::HseMode::Oscillator,
    });
    config.rcc.pll_src = rcc::PllSource::HSE;
    config.rcc.pll = Some(rcc::Pll {
        prediv: rcc::PllPreDiv::DIV25,
        mul: rcc::PllMul::MUL200,
        divp: Some(rcc::PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.sys = rcc::Sysclk::PLL1_P;
    config.rcc.ahb_pre = rcc::AHBPrescaler::DIV1;
    config.rcc.apb1_pre = rcc::APBPrescaler::DIV2;
    config.rcc.apb2_pre = rcc::APBPrescaler::DIV1;
    config
}

/// The converted ECG5000 model, aligned for the runtime.
static MODEL: &[u8] = medq::include_model!("../../../model/ecg.mq");
const OPS: usize = match medq::peek_op_count(MODEL) {
    Some(n) => n,
    None => panic!("model/ecg.mq has no op table"),
};
const ARENA_LEN: usize = match medq::peek_arena_len(MODEL) {
    Some(n) => n,
    None => panic!("model/ecg.mq is not a .mq file"),
};
/// The boot self-test's input (MIT-BIH 208, 120 s at 360 Hz) and the host
/// runtime's outputs for it.
static RECORD: &[u8] = include_bytes!("../../../data/mitbih208.i16");
static GOLDEN: &[u8] = include_bytes!("../../../model/golden.bin");

static PARSED: StaticCell<medq::Model<'static>> = StaticCell::new();
static ARENA: ConstStaticCell<[u8; ARENA_LEN]> = ConstStaticCell::new([0; ARENA_LEN]);
static PLAN: ConstStaticCell<[medq::PreparedOp<'static>; OPS]> =
    ConstStaticCell::new([medq::PreparedOp::EMPTY; OPS]);
/// The monitor's buffers (~4 KB), in .bss.
static MONITOR: ConstStaticCell<Monitor> = ConstStaticCell::new(Monitor::idle());

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    info!("medq ECG monitor, STM32F411 at {} MHz", CPU_HZ / 1_000_000);
    for (signal, pin, use_) in PIN_MAP {
        info!("  pin {}: {} ({})", signal, pin, use_);
    }

    // The DWT cycle counter measures each inference (and each op).
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        defmt::panic!("core peripherals already taken");
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let clock = WrappingClock::new(cortex_m::peripheral::DWT::cycle_count);

    let model = match medq::Model::parse(MODEL) {
        Ok(m) => PARSED.init(m),
        Err(e) => defmt::panic!("model: {}", medq_firmware::classifier::error_name(&e)),
    };
    let monitor = MONITOR.take();
    let Some(mut classifier) = board::boot(
        model,
        ARENA.take(),
        PLAN.take(),
        clock,
        monitor,
        RECORD,
        GOLDEN,
    ) else {
        defmt::panic!("boot self-test failed: not monitoring");
    };

    // The front end: PWDN/RESET high, then SPI mode 1 with a software CS.
    let _pwdn = Output::new(p.PB1, Level::High, Speed::Low);
    let mut led = Output::new(p.PC13, Level::High, Speed::Low);
    let mut config = spi::Config::default();
    config.frequency = SPI_FREQUENCY;
    config.mode = spi::MODE_1;
    let bus = spi::Spi::new_blocking(p.SPI1, p.PA5, p.PA7, p.PA6, config);
    let cs = Output::new(p.PA4, Level::High, Speed::VeryHigh);
    let Ok(spi) = ExclusiveDevice::new(bus, cs, Delay);
    let drdy = ExtiInput::new(p.PB0, p.EXTI0, Pull::Up, Irqs);
    let mut source = match board::bring_up(spi, drdy, &mut Delay) {
        Ok(s) => s,
        Err(e) => defmt::panic!("ADS1292R bring-up: {}", e),
    };
    info!("ADS1292R streaming at {} SPS; monitoring", board::FS);

    let err = board::stream(monitor, &mut source, &mut classifier, |_, event| {
        board::log_event(event);
        if let Event::Beat(b) = event {
            led.set_level(if b.alert { Level::Low } else { Level::High });
        }
    })
    .await;
    error!("monitor stopped: {}", err);
}
