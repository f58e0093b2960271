//! The medq ECG monitor on an nRF52840 wearable (nRF52840 DK pin-out).
//!
//! At boot: bind the int8 ECG model (embedded with `include_model!`), run
//! its self-tests — the file's golden pair, then the whole pipeline over
//! the bundled MIT-BIH recording against the host's golden outputs, which
//! also measures the cycles per inference on this chip — then bring the
//! ADS1292R up on SPIM3 and classify every beat, sleeping on DRDY between
//! samples. Everything is logged with defmt over RTT (`probe-rs run`).
//! With the `ble` feature it also advertises a GATT service with the beat
//! counts and notifies every alert (see `ble.rs`).
//!
//! The pipeline, the driver and the boot sequence are the portable
//! `medq_firmware` library's (`board` module); this file holds only what is
//! particular to the chip: pins, SPI, clocks.
#![no_std]
#![no_main]

#[cfg(all(feature = "ble", feature = "single-core-critical-section"))]
compile_error!(
    "BLE brings the MPSL's critical section: build with `--no-default-features --features ble`"
);

#[cfg(feature = "ble")]
mod ble;

use defmt::{error, info};
use embassy_executor::Spawner;
use embassy_nrf::gpio::{Input, Level, Output, OutputDrive, Pull};
use embassy_nrf::interrupt::{self, InterruptExt, Priority};
use embassy_nrf::{bind_interrupts, peripherals, spim};
use embassy_time::Delay;
use embedded_hal_bus::spi::ExclusiveDevice;
use medq_firmware::board::{self, WrappingClock};
use medq_firmware::monitor::{Event, Monitor};
use static_cell::{ConstStaticCell, StaticCell};
use {defmt_rtt as _, panic_probe as _};

/// Core clock: the nRF52840's Cortex-M4F always runs at 64 MHz.
const CPU_HZ: u32 = 64_000_000;

/// The pin map: one row per signal, as wired on the nRF52840 DK's Arduino
/// header (the ADS1292R breakout's SPI on D10–D13). `take_pins` below is
/// the only other place that names pins; keep the two in step.
///
/// | signal | nRF52840 | DK header | ADS1292R / use |
/// | --- | --- | --- | --- |
/// | SPI SCK | P1.15 | D13 | SCLK |
/// | SPI MISO | P1.14 | D12 | DOUT |
/// | SPI MOSI | P1.13 | D11 | DIN |
/// | SPI CS | P1.12 | D10 | /CS (driven by `ExclusiveDevice`) |
/// | DRDY | P1.03 | D2 | /DRDY (input, pull-up, GPIOTE edge wake-up) |
/// | PWDN/RESET | P1.04 | D3 | /PWDN-/RESET (held high) |
/// | alert LED | P0.13 | LED1 | on while the alert is on (active low) |
pub const PIN_MAP: [(&str, &str, &str); 7] = [
    ("SPI SCK", "P1.15", "D13"),
    ("SPI MISO", "P1.14", "D12"),
    ("SPI MOSI", "P1.13", "D11"),
    ("SPI CS", "P1.12", "D10"),
    ("DRDY", "P1.03", "D2"),
    ("PWDN/RESET", "P1.04", "D3"),
    ("alert LED", "P0.13", "LED1"),
];

/// SPI clock: the ADS1292R takes up to 20 MHz; 2 MHz keeps jumper-wired
/// breakouts clean and reads a 9-byte frame in 36 µs. SPI mode 1.
const SPI_FREQUENCY: spim::Frequency = spim::Frequency::M2;

bind_interrupts!(struct Irqs {
    SPIM3 => spim::InterruptHandler<peripherals::SPI3>;
});

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
    // Interrupts below the radio's: the MPSL (BLE builds) runs RADIO,
    // TIMER0 and RTC0 at priority 0 and must never be delayed by ours.
    let mut hal = embassy_nrf::config::Config::default();
    hal.gpiote_interrupt_priority = Priority::P2;
    hal.time_interrupt_priority = Priority::P2;
    let p = embassy_nrf::init(hal);
    interrupt::SPIM3.set_priority(Priority::P2);
    // The radio's peripherals, before anything else can take them.
    #[cfg(feature = "ble")]
    let radio = ble::Radio {
        mpsl: nrf_sdc::mpsl::Peripherals::new(
            p.RTC0, p.TIMER0, p.TEMP, p.PPI_CH19, p.PPI_CH30, p.PPI_CH31,
        ),
        sdc: nrf_sdc::Peripherals::new(
            p.PPI_CH17, p.PPI_CH18, p.PPI_CH20, p.PPI_CH21, p.PPI_CH22, p.PPI_CH23, p.PPI_CH24,
            p.PPI_CH25, p.PPI_CH26, p.PPI_CH27, p.PPI_CH28, p.PPI_CH29,
        ),
        rng: p.RNG,
    };
    info!("medq ECG monitor, nRF52840 at {} MHz", CPU_HZ / 1_000_000);
    for (signal, pin, header) in PIN_MAP {
        info!("  pin {}: {} ({})", signal, pin, header);
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
    let _pwdn = Output::new(p.P1_04, Level::High, OutputDrive::Standard);
    let mut led = Output::new(p.P0_13, Level::High, OutputDrive::Standard);
    let mut config = spim::Config::default();
    config.frequency = SPI_FREQUENCY;
    config.mode = spim::MODE_1;
    let bus = spim::Spim::new(p.SPI3, Irqs, p.P1_15, p.P1_14, p.P1_13, config);
    let cs = Output::new(p.P1_12, Level::High, OutputDrive::Standard);
    let Ok(spi) = ExclusiveDevice::new(bus, cs, Delay);
    let drdy = Input::new(p.P1_03, Pull::Up);
    let mut source = match board::bring_up(spi, drdy, &mut Delay) {
        Ok(s) => s,
        Err(e) => defmt::panic!("ADS1292R bring-up: {}", e),
    };
    info!("ADS1292R streaming at {} SPS; monitoring", board::FS);

    #[cfg(feature = "ble")]
    let server = match ble::Server::new_with_config(trouble_host::prelude::GapConfig::Peripheral(
        trouble_host::prelude::PeripheralConfig {
            name: "medq ECG",
            appearance:
                &trouble_host::prelude::appearance::heart_rate_sensor::GENERIC_HEART_RATE_SENSOR,
        },
    )) {
        Ok(s) => s,
        Err(e) => defmt::panic!("GATT server: {}", e),
    };
    #[cfg(feature = "ble")]
    let updates = ble::Updates::new();

    let on_event = |_m: &Monitor, event: &Event| {
        board::log_event(event);
        if let Event::Beat(b) = event {
            led.set_level(if b.alert { Level::Low } else { Level::High });
        }
        #[cfg(feature = "ble")]
        updates.on_event(&server, _m, event);
    };
    let monitoring = async {
        let err = board::stream(monitor, &mut source, &mut classifier, on_event).await;
        error!("monitor stopped: {}", err);
    };
    #[cfg(not(feature = "ble"))]
    monitoring.await;
    #[cfg(feature = "ble")]
    ble::run(radio, &server, &updates, monitoring).await;
}
