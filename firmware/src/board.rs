//! What the board binaries (`firmware/boards/*`) share beyond the pipeline:
//! the front end's settings, bringing the ADS1292R up, the sample loop that
//! sleeps on DRDY, one log line per event, and the BLE payloads.
//!
//! Everything here is portable and host-tested against embedded-hal-mock;
//! a board crate only adds its pins, its SPI peripheral and its clocks. The
//! QEMU binary does not use this module (it replays a recording instead).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::SpiDevice;
use embedded_hal_async::digital::Wait;
use medq::Decision;

use crate::ads1292r::{self, Ads1292r, Channel, Config, DataRate};
use crate::classifier::Clock;
use crate::golden::{Golden, GoldenCheck};
use crate::monitor::{
    AlertConfig, BeatReport, Classifier, Event, FrontEnd, Monitor, MonitorConfig, Poll,
    ReplaySource, RunError, SampleSource, Totals, NUM_CLASSES,
};
use crate::window::{InputQuant, WindowConfig};

/// ADS1292R output data rate on the boards.
///
/// 250 SPS rather than the power-up 500: the detector's `HISTORY` (1024
/// samples) then holds 4.1 s, so a beat that search-back finds ~1.7 RR late
/// still has its window at heart rates down to ~25 bpm (RR 2.4 s; at 500 SPS, 2 s of
/// history would lose such beats below ~50 bpm), and the pipeline runs half
/// as often. The ECG5000 window is resampled to 140 points either way.
pub const DATA_RATE: DataRate = DataRate::Sps250;
/// Samples per second, from [`DATA_RATE`].
pub const FS: u32 = DATA_RATE.hz();
/// The ECG lead: channel 2 (channel 1 is powered down by `Config::ecg`).
pub const CHANNEL: Channel = Channel::Ch2;
/// Right shift from ADS1292R codes to ~163 units per mV (see
/// [`FrontEnd::new`]), close to the MIT-BIH scale the detector is tuned on.
pub const SHIFT: u32 = 7;
/// Power-on reset time the ADS1292R needs before its first command: 2^18
/// periods of the 512 kHz internal clock = 512 ms.
pub const POWER_UP_MS: u32 = 512;

/// The monitor settings every board uses, for the model's input `quant`.
pub fn monitor_config(quant: InputQuant) -> MonitorConfig {
    MonitorConfig {
        fs: FS,
        window: WindowConfig::ecg5000(FS),
        quant,
        alert: AlertConfig::DEFAULT,
    }
}

/// Bring the ADS1292R up after power-on and return it as the monitor's
/// sample source: wait [`POWER_UP_MS`], then `Ads1292r::init` (RESET, stop
/// streaming, check the ID, write and verify the ECG configuration at
/// [`DATA_RATE`], let the reference settle, START, RDATAC).
///
/// `/PWDN-/RESET` must already be high (the board drives it before calling).
pub fn bring_up<SPI: SpiDevice, DRDY: InputPin>(
    spi: SPI,
    drdy: DRDY,
    delay: &mut impl DelayNs,
) -> Result<FrontEnd<SPI, DRDY>, ads1292r::Error<SPI::Error, DRDY::Error>> {
    let mut ads = Ads1292r::new(spi, drdy);
    delay.delay_ms(POWER_UP_MS);
    ads.init(&Config::ecg(DATA_RATE), delay)?;
    Ok(FrontEnd::new(ads, CHANNEL, SHIFT, FS))
}

/// Failure of [`stream`]: the front end's, or the classifier's.
pub type StreamError<SPI, DRDY, C> = RunError<
    ads1292r::Error<
        <SPI as embedded_hal::spi::ErrorType>::Error,
        <DRDY as embedded_hal::digital::ErrorType>::Error,
    >,
    <C as Classifier>::Error,
>;

/// Run the monitor on the front end for as long as it delivers samples:
/// sleep until DRDY falls, read the frame, push the sample, hand any event
/// to `on_event`. Returns only on an error.
///
/// The async wait is what lets a board sleep between samples (embassy's
/// executor runs `WFE` when no task is ready) and serve BLE meanwhile. A
/// wake-up that finds DRDY high again (the frame was already gone) reads
/// nothing and waits for the next edge.
pub async fn stream<SPI, DRDY, C>(
    monitor: &mut Monitor,
    source: &mut FrontEnd<SPI, DRDY>,
    classifier: &mut C,
    mut on_event: impl FnMut(&Monitor, &Event),
) -> StreamError<SPI, DRDY, C>
where
    SPI: SpiDevice,
    DRDY: InputPin + Wait,
    C: Classifier,
{
    loop {
        if let Err(e) = source.wait_ready().await {
            return RunError::Source(e);
        }
        let sample = match source.poll() {
            Ok(Poll::Sample(s)) => s,
            // A front end never ends; `Pending` is the missed-frame case.
            Ok(Poll::Pending | Poll::End) => continue,
            Err(e) => return RunError::Source(e),
        };
        match monitor.push(sample, classifier) {
            Ok(Some(event)) => on_event(monitor, &event),
            Ok(None) => {}
            Err(e) => return RunError::Classifier(e),
        }
    }
}

/// Sample rate of the bundled recording (`data/mitbih208.i16`).
pub const RECORD_FS: u32 = 360;

/// Outcome of [`replay_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplayCheck {
    /// Every beat of the recording matched the golden file byte for byte
    /// (R index, input window hash, int8 scores).
    Passed {
        /// Beats compared.
        beats: usize,
    },
    /// Some beats differed, or there were more or fewer than expected.
    Failed {
        /// Beats compared.
        beats: usize,
        /// Beats that differed or were extra.
        mismatches: u32,
        /// Beats in the golden file.
        expected: usize,
    },
    /// The golden file does not fit this firmware (version, classes).
    BadGoldenFile,
}

/// The boot self-test of a board: run the whole pipeline — detector,
/// windows, the model on this chip — over the bundled MIT-BIH recording
/// and compare every beat with the golden file the host runtime wrote
/// (`model/golden.bin`), as the QEMU run does. It proves, on the board,
/// that this build classifies the same beats into the same bytes as the
/// host. `monitor` is left configured for the recording: configure it for
/// the front end afterwards. The classifier's [`InferenceStats`] then hold
/// the cost of the recording's inferences in the clock's units (cycles on
/// a board).
///
/// [`InferenceStats`]: crate::classifier::InferenceStats
pub fn replay_check<C: Classifier>(
    monitor: &mut Monitor,
    classifier: &mut C,
    quant: InputQuant,
    record: &[u8],
    golden: &[u8],
) -> Result<ReplayCheck, RunError<core::convert::Infallible, C::Error>> {
    let Some(golden) = Golden::parse(golden) else {
        return Ok(ReplayCheck::BadGoldenFile);
    };
    let cfg = MonitorConfig {
        fs: RECORD_FS,
        window: WindowConfig::ecg5000(RECORD_FS),
        quant,
        alert: AlertConfig::DEFAULT,
    };
    if monitor.configure(cfg).is_err() {
        // 360 Hz and the ECG5000 window are valid; cannot happen.
        return Ok(ReplayCheck::BadGoldenFile);
    }
    let mut check = GoldenCheck::new(golden);
    let mut source = ReplaySource::new(record, RECORD_FS);
    monitor.run(&mut source, classifier, |m, event| {
        if let Event::Beat(b) = event {
            check.check(b, m.last_input());
        }
    })?;
    Ok(if check.passed() {
        ReplayCheck::Passed {
            beats: check.checked(),
        }
    } else {
        ReplayCheck::Failed {
            beats: check.checked(),
            mismatches: check.mismatches(),
            expected: golden.len(),
        }
    })
}

/// A 64-bit [`Clock`] from a free-running 32-bit counter (the Cortex-M
/// DWT cycle counter, which wraps every 67 s at 64 MHz). Each reading adds
/// the wrapped difference since the previous one, so intervals are exact
/// as long as readings are less than one wrap apart, as they are within an
/// inference (the classifier reads the clock before and after every op).
pub struct WrappingClock<F> {
    read: F,
    last: u32,
    total: u64,
}

impl<F: FnMut() -> u32> WrappingClock<F> {
    /// Start counting from the counter's current value.
    pub fn new(mut read: F) -> Self {
        let last = read();
        WrappingClock {
            read,
            last,
            total: 0,
        }
    }
}

impl<F: FnMut() -> u32> Clock for WrappingClock<F> {
    fn now(&mut self) -> u64 {
        let now = (self.read)();
        self.total = self
            .total
            .wrapping_add(u64::from(now.wrapping_sub(self.last)));
        self.last = now;
        self.total
    }
}

/// Everything a board does between reset and the first live sample, with
/// its defmt log: bind the model (`MedqClassifier::start`), run the file's
/// golden pair if it has one, run [`replay_check`] (the MIT-BIH recording
/// against `golden`, logging the measured cycles per inference), and leave
/// `monitor` configured for the front end ([`monitor_config`]). `None`
/// after logging why, when the board must not start monitoring.
#[cfg(feature = "defmt")]
pub fn boot<'m, K: Clock>(
    model: &'m medq::Model<'m>,
    arena: &'m mut [u8],
    plan: &'m mut [medq::PreparedOp<'m>],
    clock: K,
    monitor: &mut Monitor,
    record: &[u8],
    golden: &[u8],
) -> Option<crate::classifier::MedqClassifier<'m, 'm, K>> {
    use crate::classifier::{error_name, MedqClassifier, SelfTest};
    defmt::info!(
        "model: {} ops, arena {} bytes",
        model.op_count(),
        model.arena_len()
    );
    let (quant, mut classifier) = match MedqClassifier::start(model, arena, plan, clock) {
        Ok(x) => x,
        Err(e) => {
            defmt::error!("model setup: {}", error_name(&e));
            return None;
        }
    };
    match classifier.self_test() {
        SelfTest::Match => defmt::info!("model self-test: golden pair matches"),
        SelfTest::NoGoldenPair => defmt::info!("model self-test: the file has no golden pair"),
        SelfTest::Differs => {
            defmt::error!("model self-test: output differs from the file's golden pair");
            return None;
        }
        SelfTest::Failed(e) => {
            defmt::error!("model self-test: {}", error_name(&e));
            return None;
        }
    }
    defmt::info!("boot self-test: replaying MIT-BIH record 208 (120 s) through the pipeline");
    match replay_check(monitor, &mut classifier, quant, record, golden) {
        Ok(ReplayCheck::Passed { beats }) => {
            let s = classifier.stats();
            defmt::info!(
                "boot self-test: {} beats byte-identical to the host; inference {} cycles per beat (min {}, max {})",
                beats,
                s.total / u64::from(s.count.max(1)),
                s.min,
                s.max
            );
        }
        Ok(failed) => {
            defmt::error!("boot self-test FAILED: {}", failed);
            return None;
        }
        Err(_) => {
            defmt::error!("boot self-test FAILED: the classifier stopped");
            return None;
        }
    }
    if monitor.configure(monitor_config(quant)).is_err() {
        defmt::error!("monitor configuration refused");
        return None;
    }
    Some(classifier)
}

/// Log one monitor event over defmt: the class (or "uncertain") of each
/// beat, alert switches as warnings, skipped beats with their reason.
#[cfg(feature = "defmt")]
pub fn log_event(event: &Event) {
    use crate::monitor::CLASS_NAMES;
    match event {
        Event::Beat(b) => {
            let class = match b.decision {
                Decision::Class(c) => CLASS_NAMES.get(c).copied().unwrap_or("?"),
                Decision::Uncertain => "uncertain",
            };
            defmt::info!(
                "beat {} at {} ms: {} (scores {}, {} abnormal / {} uncertain of the last beats)",
                b.seq,
                u64::from(b.r_index) * 1000 / u64::from(FS),
                class,
                b.scores,
                b.abnormal_recent,
                b.uncertain_recent
            );
            if b.alert_changed {
                if b.alert {
                    defmt::warn!("ALERT ON at beat {}", b.seq);
                } else {
                    defmt::warn!("alert off at beat {}", b.seq);
                }
            }
        }
        Event::Skipped { r_index, reason } => {
            defmt::warn!("beat at sample {} skipped: {}", r_index, reason);
        }
    }
}

/// Payloads of the BLE alert service (nRF52840 board): what a phone or a
/// nurse station reads and is notified of. Little-endian, fixed length, so
/// a client needs no parser beyond offsets.
pub mod ble {
    use super::*;

    /// Bytes of [`counts`]: 5 class counts, uncertain, skipped, alerts.
    pub const COUNTS_LEN: usize = 4 * (NUM_CLASSES + 3);
    /// Bytes of [`alert`].
    pub const ALERT_LEN: usize = 12;
    /// [`alert`]'s decision byte for an uncertain beat.
    pub const UNCERTAIN: u8 = 0xFF;

    /// The beat counts characteristic: `u32` beats per class in the model's
    /// output order (`CLASS_NAMES`), then beats left uncertain (counted
    /// apart: the abstain rule), beats skipped (lead off, lost window) and
    /// times the alert switched on.
    pub fn counts(t: &Totals) -> [u8; COUNTS_LEN] {
        let mut out = [0u8; COUNTS_LEN];
        let words = t
            .per_class
            .iter()
            .chain([&t.uncertain, &t.skipped, &t.alerts]);
        for (dst, w) in out.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The alert characteristic, notified when a beat switches the alert on
    /// or off: beat sequence number `u32`, R-peak sample index `u32`,
    /// alert on (1) or off (0), abnormal and uncertain beats among the last
    /// `AlertConfig::window`, and the beat's class ([`UNCERTAIN`] if none).
    pub fn alert(b: &BeatReport) -> [u8; ALERT_LEN] {
        let mut out = [0u8; ALERT_LEN];
        let (seq, rest) = out.split_at_mut(4);
        seq.copy_from_slice(&b.seq.to_le_bytes());
        let (r, rest) = rest.split_at_mut(4);
        r.copy_from_slice(&b.r_index.to_le_bytes());
        let class = match b.decision {
            Decision::Class(c) => u8::try_from(c).unwrap_or(UNCERTAIN),
            Decision::Uncertain => UNCERTAIN,
        };
        for (d, v) in rest.iter_mut().zip([
            u8::from(b.alert),
            b.abnormal_recent,
            b.uncertain_recent,
            class,
        ]) {
            *d = v;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::golden::{encode_header, fnv1a, GoldenBeat};
    use crate::monitor::Sample;
    use crate::window::BEAT_LEN;
    use core::future::Future;
    use core::task::{Context, Poll as TaskPoll, Waker};
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as P};
    use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as S};
    use embedded_hal_mock::eh1::MockError;
    use std::vec;
    use std::vec::Vec;

    /// Drive a future whose every await is ready at once (the mocks').
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = core::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1_000_000 {
            if let TaskPoll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the future never finished");
    }

    /// Calls every third beat a PVC and every seventh uncertain (a tie).
    struct Fake {
        calls: u32,
    }

    impl Classifier for Fake {
        type Error = ();
        fn classify(
            &mut self,
            _: &[i8; BEAT_LEN],
            scores: &mut [i8; NUM_CLASSES],
        ) -> Result<(), ()> {
            self.calls += 1;
            *scores = [10, -5, -5, -5, -5];
            if self.calls % 3 == 0 {
                scores[2] = 20;
            }
            Ok(())
        }

        fn decide(&self, scores: &[i8; NUM_CLASSES]) -> Result<Decision, ()> {
            if self.calls % 7 == 0 {
                return Ok(Decision::Uncertain);
            }
            Ok(Decision::Class(crate::monitor::argmax(scores)))
        }
    }

    const GAP: u32 = ads1292r::DEFAULT_COMMAND_GAP_NS;

    /// Bytes written one by one, each followed by the driver's t_SDECODE
    /// pause (the default 8 µs gap), inside one chip-select.
    fn spaced(bytes: &[u8], read: Option<Vec<u8>>) -> Vec<S<u8>> {
        let mut t = vec![S::transaction_start()];
        for &b in bytes {
            t.push(S::write_vec(vec![b]));
            t.push(S::delay(GAP));
        }
        if let Some(r) = read {
            t.push(S::read_vec(r));
        }
        t.push(S::transaction_end());
        t
    }

    /// An RDATAC frame: status (1100, lead-off bits, GPIO), channel 1 = 0,
    /// channel 2 = `code` (24-bit two's complement, big-endian).
    fn frame(code: i32, lead_off: u8) -> Vec<u8> {
        let status = (0b1100u32 << 20) | (u32::from(lead_off & 0x1F) << 15);
        let s = status.to_be_bytes();
        let c = code.to_be_bytes();
        vec![s[1], s[2], s[3], 0, 0, 0, c[1], c[2], c[3]]
    }

    /// The SPI traffic of `bring_up` up to the ID read.
    fn up_to_id(id: u8) -> Vec<S<u8>> {
        let mut t = spaced(&[0x06], None); // RESET
        t.extend(spaced(&[0x11], None)); // SDATAC
        t.extend(spaced(&[0x20, 0x00], Some(vec![id]))); // RREG ID, 1 register
        t
    }

    #[test]
    fn bring_up_configures_250_sps_and_starts_streaming() {
        // The ECG configuration with CONFIG1 = 0x01 (continuous, 250 SPS);
        // the other registers as in the driver's datasheet table.
        let regs = [0x01, 0xE0, 0x10, 0x81, 0x00, 0x3C, 0x0C, 0x00, 0x02, 0x03];
        let mut t = up_to_id(0x73);
        let mut wreg = vec![0x41, 0x09]; // WREG CONFIG1, 10 registers
        wreg.extend_from_slice(&regs);
        t.extend(spaced(&wreg, None));
        t.extend(spaced(&[0x21, 0x09], Some(regs.to_vec()))); // read back
        t.extend(spaced(&[0x08], None)); // START
        t.extend(spaced(&[0x10], None)); // RDATAC
                                         // Then the first sample: DRDY low, one 9-byte frame.
        t.extend([
            S::transaction_start(),
            S::read_vec(frame(-(1 << 14), 0)),
            S::transaction_end(),
        ]);
        let spi = SpiMock::new(&t);
        let pin = PinMock::new(&[P::get(State::Low)]);
        let mut source = bring_up(spi, pin, &mut NoopDelay::new()).expect("bring-up");
        assert_eq!(source.sample_rate(), 250);
        // -2^14 codes >> SHIFT (7) = -128.
        assert_eq!(
            source.poll(),
            Ok(Poll::Sample(Sample {
                value: -128,
                lead_off: false
            }))
        );
        let (mut s, mut p) = source.release().release();
        s.done();
        p.done();
    }

    #[test]
    fn bring_up_refuses_another_device() {
        let mut spi = SpiMock::new(&up_to_id(0x53)); // an ADS1291's ID
        let mut pin = PinMock::new(&[]);
        let got = bring_up(spi.clone(), pin.clone(), &mut NoopDelay::new());
        assert!(matches!(got, Err(ads1292r::Error::WrongDevice(0x53))));
        spi.done();
        pin.done();
    }

    /// Ten seconds of the MIT-BIH recording sent as ADS1292R frames through
    /// the DRDY wait and SPI reads give the same beats, classes and counts
    /// as the same samples replayed; a wake-up with DRDY already high reads
    /// nothing; a lead-off frame marks its sample; a pin failure ends the
    /// loop with the source's error.
    #[test]
    fn stream_over_spi_matches_the_replay() {
        const FS_TEST: u32 = 360;
        const N: usize = 3600;
        let record = include_bytes!("../data/mitbih208.i16");
        let bytes = record.get(..2 * N).expect("recording");
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();

        let mut spi_t = Vec::new();
        let mut pin_t = Vec::new();
        for (k, &v) in samples.iter().enumerate() {
            if k == 100 {
                // Woken, but the frame is gone: no SPI read.
                pin_t.push(P::wait_for_state(State::Low));
                pin_t.push(P::get(State::High));
            }
            pin_t.push(P::wait_for_state(State::Low));
            pin_t.push(P::get(State::Low));
            spi_t.push(S::transaction_start());
            // Shift 0: codes are the recording's values.
            spi_t.push(S::read_vec(frame(i32::from(v), 0)));
            spi_t.push(S::transaction_end());
        }
        // One lead-off sample (IN2P off, bit 2 of LOFF_STAT).
        pin_t.push(P::wait_for_state(State::Low));
        pin_t.push(P::get(State::Low));
        spi_t.extend([
            S::transaction_start(),
            S::read_vec(frame(0, 0b0_0100)),
            S::transaction_end(),
        ]);
        pin_t.push(
            P::wait_for_state(State::Low).with_error(MockError::Io(std::io::ErrorKind::Other)),
        );
        let spi = SpiMock::new(&spi_t);
        let pin = PinMock::new(&pin_t);
        let mut source = FrontEnd::new(
            Ads1292r::new(spi.clone(), pin.clone()),
            Channel::Ch2,
            0,
            FS_TEST,
        );
        let cfg = MonitorConfig {
            fs: FS_TEST,
            window: WindowConfig::ecg5000(FS_TEST),
            quant: InputQuant::new(1.0 / 32.0, 0).expect("quant"),
            alert: AlertConfig::DEFAULT,
        };

        let mut monitor = Monitor::new(cfg).expect("config");
        let mut fake = Fake { calls: 0 };
        let mut events = Vec::new();
        let err = block_on(stream(&mut monitor, &mut source, &mut fake, |_, e| {
            events.push(*e)
        }));
        assert!(matches!(err, RunError::Source(ads1292r::Error::Pin(_))));

        let mut reference = Monitor::new(cfg).expect("config");
        let mut fake_ref = Fake { calls: 0 };
        let mut want = Vec::new();
        let mut replay = ReplaySource::new(bytes, FS_TEST);
        reference
            .run(&mut replay, &mut fake_ref, |_, e| want.push(*e))
            .expect("replay");
        // The lead-off sample, as the front end reports it.
        if let Some(e) = reference
            .push(
                Sample {
                    value: 0,
                    lead_off: true,
                },
                &mut fake_ref,
            )
            .expect("push")
        {
            want.push(e);
        }

        assert!(want.len() >= 8, "only {} beats in 10 s", want.len());
        assert_eq!(events, want);
        assert_eq!(monitor.totals(), reference.totals());
        assert_eq!(monitor.totals().samples as usize, N + 1);
        // The fake's PVCs and abstentions went through the same way.
        assert!(monitor.totals().per_class[2] > 0 && monitor.totals().uncertain > 0);
        let (mut s, mut p) = source.release().release();
        s.done();
        p.done();
    }

    #[test]
    fn ble_payloads_have_the_documented_layout() {
        let t = Totals {
            samples: 9,
            detected: 20,
            per_class: [10, 1, 2, 3, 0x0102_0304],
            uncertain: 5,
            skipped: 6,
            alerts: 7,
        };
        let c = ble::counts(&t);
        assert_eq!(c.len(), 32);
        assert_eq!(&c[..4], &[10, 0, 0, 0]);
        assert_eq!(&c[16..20], &[4, 3, 2, 1]);
        assert_eq!(&c[20..], &[5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0]);

        let mut b = BeatReport {
            seq: 0x0A0B_0C0D,
            r_index: 360,
            scores: [0; NUM_CLASSES],
            decision: Decision::Class(2),
            search_back: false,
            abnormal_recent: 11,
            uncertain_recent: 3,
            alert: true,
            alert_changed: true,
        };
        assert_eq!(
            ble::alert(&b),
            [0x0D, 0x0C, 0x0B, 0x0A, 0x68, 0x01, 0, 0, 1, 11, 3, 2]
        );
        b.decision = Decision::Uncertain;
        b.alert = false;
        assert_eq!(ble::alert(&b)[8..], [0, 11, 3, ble::UNCERTAIN]);
    }

    /// The golden file a run of `classifier` over `record` would match.
    fn golden_of(record: &[u8], classifier: &mut Fake) -> Vec<u8> {
        let quant = InputQuant::new(1.0 / 32.0, 0).expect("quant");
        let mut m = Monitor::new(MonitorConfig {
            fs: RECORD_FS,
            window: WindowConfig::ecg5000(RECORD_FS),
            quant,
            alert: AlertConfig::DEFAULT,
        })
        .expect("config");
        let mut beats = Vec::new();
        m.run(
            &mut ReplaySource::new(record, RECORD_FS),
            classifier,
            |m, e| {
                if let Event::Beat(b) = e {
                    beats.push(GoldenBeat {
                        r_index: b.r_index,
                        input_hash: fnv1a(m.last_input()),
                        scores: b.scores,
                    });
                }
            },
        )
        .expect("replay");
        let mut out = encode_header(beats.len() as u32).to_vec();
        for b in &beats {
            out.extend_from_slice(&b.encode());
        }
        out
    }

    #[test]
    fn replay_check_passes_on_its_own_golden_and_catches_a_changed_byte() {
        let record = include_bytes!("../data/mitbih208.i16");
        let record = record.get(..2 * 360 * 20).expect("20 s");
        let quant = InputQuant::new(1.0 / 32.0, 0).expect("quant");
        let golden = golden_of(record, &mut Fake { calls: 0 });
        let beats = (golden.len() - 16) / 16;
        assert!(beats >= 15, "{beats} beats in 20 s");
        let mut m = Monitor::idle();

        let got = replay_check(&mut m, &mut Fake { calls: 0 }, quant, record, &golden);
        assert_eq!(got, Ok(ReplayCheck::Passed { beats }));

        // One score byte of beat 4 differs: one mismatch, the rest compared.
        let mut bad = golden.clone();
        bad[16 + 4 * 16 + 8] ^= 1;
        let got = replay_check(&mut m, &mut Fake { calls: 0 }, quant, record, &bad);
        assert_eq!(
            got,
            Ok(ReplayCheck::Failed {
                beats,
                mismatches: 1,
                expected: beats
            })
        );
        // A shorter recording leaves golden beats unseen: not a pass.
        let short = record.get(..2 * 360 * 10).expect("10 s");
        let got = replay_check(&mut m, &mut Fake { calls: 0 }, quant, short, &golden);
        assert!(matches!(got, Ok(ReplayCheck::Failed { mismatches: 0, .. })));
        assert_eq!(
            replay_check(&mut m, &mut Fake { calls: 0 }, quant, record, &golden[1..]),
            Ok(ReplayCheck::BadGoldenFile)
        );
    }

    #[test]
    fn wrapping_clock_counts_across_the_32_bit_wrap() {
        let mut readings = [u32::MAX - 10, u32::MAX - 5, 4, 1000, 1000].into_iter();
        let mut clock = WrappingClock::new(move || readings.next().unwrap_or(1000));
        assert_eq!(clock.now(), 5);
        assert_eq!(clock.now(), 15);
        assert_eq!(clock.now(), 1011);
        assert_eq!(clock.now(), 1011);
    }
}
