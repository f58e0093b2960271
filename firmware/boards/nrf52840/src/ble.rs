//! BLE alerts (feature `ble`): a GATT service with the per-class beat
//! counts and a notification for every alert switch, on Nordic's SoftDevice
//! Controller (`nrf-sdc`, linked into this image; no SoftDevice to flash
//! first) under the TrouBLE host (`trouble-host`).
//!
//! The monitor and the BLE stack share one embassy task (`join`): the
//! monitor's event callback stores the new values in the GATT table and
//! wakes the connection loop here, which notifies a subscribed client. The
//! payload layouts are `medq_firmware::board::ble`'s (host-tested).
//!
//! Service `e0c50001-7a1b-4b8e-9f0a-6d6564710000` ("medq ECG"):
//! - counts `…0001` (read, notify): [`ble::COUNTS_LEN`] bytes, `u32` LE
//!   beats per class (normal, R-on-T PVC, PVC, SVPB, unclassified), then
//!   uncertain beats (counted apart), skipped beats, alerts raised. Notified
//!   after every classified beat; needs an ATT MTU ≥ 35 to arrive whole
//!   (phones negotiate 185–247), a read always gets all of it.
//! - alert `…0002` (read, notify): [`ble::ALERT_LEN`] bytes, notified when
//!   a beat switches the alert on or off (fits the minimum ATT MTU of 23).

use defmt::{info, warn};
use embassy_futures::select::{select3, Either3};
use embassy_nrf::interrupt::InterruptExt;
use embassy_nrf::peripherals::RNG;
use embassy_nrf::{bind_interrupts, rng, Peri};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use medq_firmware::board::ble;
use medq_firmware::monitor::{Event, Monitor};
use nrf_sdc::mpsl::MultiprotocolServiceLayer;
use nrf_sdc::{self as sdc, mpsl};
use trouble_host::prelude::*;

bind_interrupts!(pub struct Irqs {
    RNG => rng::InterruptHandler<RNG>;
    EGU0_SWI0 => mpsl::LowPrioInterruptHandler;
    CLOCK_POWER => mpsl::ClockInterruptHandler;
    RADIO => mpsl::HighPrioInterruptHandler;
    TIMER0 => mpsl::HighPrioInterruptHandler;
    RTC0 => mpsl::HighPrioInterruptHandler;
});

/// Name in the advertisement.
const NAME: &str = "medq ECG";
/// One client at a time (a phone or a nurse-station gateway).
const CONNECTIONS: usize = 1;
/// L2CAP channels: signalling + ATT.
const CHANNELS: usize = 2;
/// Controller memory. Its exact need (one peripheral link, four 251-byte
/// buffers each way) is known only from the SDC library at run time, and
/// too small a block is an error while too big is only a warning, so this
/// is generous (RAM is plentiful); the need is logged at start-up.
const SDC_MEM: usize = 8192;
/// Alert notifications waiting for the connection loop.
const ALERT_QUEUE: usize = 4;

#[gatt_server(connections_max = CONNECTIONS, mutex_type = NoopRawMutex)]
pub struct Server {
    ecg: EcgService,
}

#[gatt_service(uuid = "e0c50001-7a1b-4b8e-9f0a-6d6564710000")]
struct EcgService {
    /// Beats per class, uncertain, skipped, alerts (`u32` LE each).
    #[characteristic(uuid = "e0c50001-7a1b-4b8e-9f0a-6d6564710001", read, notify)]
    counts: [u8; ble::COUNTS_LEN],
    /// The latest alert switch.
    #[characteristic(uuid = "e0c50001-7a1b-4b8e-9f0a-6d6564710002", read, notify)]
    alert: [u8; ble::ALERT_LEN],
}

/// What the monitor hands to the connection loop.
pub struct Updates {
    counts: Signal<NoopRawMutex, ()>,
    alerts: Channel<NoopRawMutex, [u8; ble::ALERT_LEN], ALERT_QUEUE>,
}

impl Updates {
    pub const fn new() -> Self {
        Updates {
            counts: Signal::new(),
            alerts: Channel::new(),
        }
    }

    /// Called from the monitor's event callback: store the new values in
    /// the GATT table (so reads see them, connected or not) and wake the
    /// connection loop to notify.
    pub fn on_event(&self, server: &Server<'_>, monitor: &Monitor, event: &Event) {
        let Event::Beat(b) = event else {
            return;
        };
        if server
            .set(&server.ecg.counts, &ble::counts(monitor.totals()))
            .is_err()
        {
            warn!("BLE: could not store the counts");
        }
        self.counts.signal(());
        if b.alert_changed {
            let alert = ble::alert(b);
            if server.set(&server.ecg.alert, &alert).is_err() {
                warn!("BLE: could not store the alert");
            }
            if self.alerts.try_send(alert).is_err() {
                warn!("BLE: alert queue full, notification dropped (the value is stored)");
            }
        }
    }
}

/// The peripherals the MPSL and the SoftDevice Controller take over.
pub struct Radio<'d> {
    pub mpsl: mpsl::Peripherals<'d>,
    pub sdc: sdc::Peripherals<'d>,
    pub rng: Peri<'d, RNG>,
}

/// The low-frequency clock for the MPSL: the internal RC oscillator,
/// calibrated as Nordic recommends, so boards without a 32 kHz crystal work.
fn lfclk() -> mpsl::raw::mpsl_clock_lfclk_cfg_t {
    mpsl::raw::mpsl_clock_lfclk_cfg_t {
        source: mpsl::raw::MPSL_CLOCK_LF_SRC_RC as u8,
        rc_ctiv: mpsl::raw::MPSL_RECOMMENDED_RC_CTIV as u8,
        rc_temp_ctiv: mpsl::raw::MPSL_RECOMMENDED_RC_TEMP_CTIV as u8,
        accuracy_ppm: mpsl::raw::MPSL_DEFAULT_CLOCK_ACCURACY_PPM as u16,
        skip_wait_lfclk_started: mpsl::raw::MPSL_DEFAULT_SKIP_WAIT_LFCLK_STARTED != 0,
    }
}

/// Run the BLE side next to `monitor` (the monitor future, which owns the
/// front end and calls [`Updates::on_event`]). Returns when either stops.
pub async fn run(
    radio: Radio<'_>,
    server: &Server<'_>,
    updates: &Updates,
    monitor: impl core::future::Future<Output = ()>,
) {
    let mpsl = match MultiprotocolServiceLayer::new(radio.mpsl, Irqs, lfclk()) {
        Ok(m) => m,
        Err(e) => {
            warn!("BLE off: MPSL start failed: {}", e);
            monitor.await;
            return;
        }
    };
    embassy_nrf::interrupt::RNG.set_priority(embassy_nrf::interrupt::Priority::P2);
    let mut rng = rng::Rng::new(radio.rng, Irqs);
    let mut mem = sdc::Mem::<SDC_MEM>::new();
    let controller = sdc::Builder::new().and_then(|b| {
        let b = b
            .support_adv()
            .support_peripheral()
            .peripheral_count(1)?
            .buffer_cfg(
                DefaultPacketPool::MTU as u16,
                DefaultPacketPool::MTU as u16,
                4,
                4,
            )?;
        if let Ok(need) = b.required_memory() {
            info!(
                "BLE: the controller needs {} of its {} bytes",
                need, SDC_MEM
            );
        }
        b.build(radio.sdc, &mut rng, &mpsl, &mut mem)
    });
    let controller = match controller {
        Ok(c) => c,
        Err(e) => {
            warn!("BLE off: SoftDevice Controller start failed: {}", e);
            monitor.await;
            return;
        }
    };
    let mut resources: HostResources<DefaultPacketPool, CONNECTIONS, CHANNELS> =
        HostResources::new();
    let stack = trouble_host::new(controller, &mut resources).build();
    let mut runner = stack.runner();
    let mut peripheral = stack.peripheral();
    info!("BLE: advertising as \"{}\"", NAME);
    let host = async {
        if let Err(e) = runner.run().await {
            warn!("BLE host stopped: {}", defmt::Debug2Format(&e));
        }
    };
    let serve = async {
        if let Err(e) = serve(&mut peripheral, server, updates).await {
            warn!("BLE stopped: {}", defmt::Debug2Format(&e));
        }
    };
    // The monitor ending (it only does on an error) ends everything; BLE
    // failing leaves the monitor running.
    let radio_side = embassy_futures::join::join3(mpsl.run(), host, serve);
    embassy_futures::select::select(monitor, radio_side).await;
}

/// Advertise, accept one client, answer its reads and notify it of new
/// counts and alerts until it disconnects; again.
async fn serve<C: Controller>(
    peripheral: &mut Peripheral<'_, C, DefaultPacketPool>,
    server: &Server<'_>,
    updates: &Updates,
) -> Result<(), BleHostError<C::Error>> {
    let mut adv_data = [0; 31];
    let adv_len = AdStructure::encode_slice(
        &[
            AdStructure::Flags(LE_GENERAL_DISCOVERABLE | BR_EDR_NOT_SUPPORTED),
            AdStructure::CompleteLocalName(NAME.as_bytes()),
        ],
        &mut adv_data[..],
    )?;
    loop {
        let advertiser = peripheral
            .advertise(
                &Default::default(),
                Advertisement::ConnectableScannableUndirected {
                    adv_data: adv_data.get(..adv_len).unwrap_or(&[]),
                    scan_data: &[],
                },
            )
            .await?;
        let conn = advertiser.accept().await?.with_attribute_server(server)?;
        info!("BLE: client connected");
        loop {
            match select3(conn.next(), updates.counts.wait(), updates.alerts.receive()).await {
                Either3::First(GattConnectionEvent::Disconnected { reason }) => {
                    info!(
                        "BLE: client disconnected ({})",
                        defmt::Debug2Format(&reason)
                    );
                    break;
                }
                Either3::First(GattConnectionEvent::Gatt { event }) => match event.accept() {
                    Ok(reply) => reply.send().await,
                    Err(e) => warn!("BLE: GATT request refused: {}", defmt::Debug2Format(&e)),
                },
                Either3::First(_) => {}
                Either3::Second(()) => {
                    if let Ok(counts) = server.get(&server.ecg.counts) {
                        // Sent only if the client subscribed.
                        let _ = server.ecg.counts.notify(&conn, &counts, false).await;
                    }
                }
                Either3::Third(alert) => {
                    if server.ecg.alert.notify(&conn, &alert, false).await.is_err() {
                        warn!("BLE: alert notification not sent");
                    }
                }
            }
        }
    }
}
