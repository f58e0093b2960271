//! The monitor pipeline: samples → R-peak detector → beat windows → model →
//! class per beat, running counts and an abnormal-rhythm alert.
//!
//! Generic over where samples come from ([`SampleSource`]: the ADS1292R, or a
//! recording replayed on QEMU) and over the model ([`Classifier`]). No heap;
//! its state is a few KB, sized at compile time.

use heapless::Deque;
use medq::Decision;

use crate::ads1292r::{self, Ads1292r, Channel};
use crate::detector::{self, Detector};
use crate::ring::SampleRing;
use crate::window::{self, InputQuant, WindowConfig, WindowError, BEAT_LEN};

/// Classes of the ECG5000 model, in output order.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "normal",
    "r_on_t_pvc",
    "pvc",
    "supraventricular_premature",
    "unclassified",
];
/// Number of model outputs.
pub const NUM_CLASSES: usize = 5;
/// Index of the one class that is not abnormal.
pub const NORMAL_CLASS: usize = 0;

/// Samples of history kept for cutting windows: 2.8 s at 360 Hz, enough for
/// a window that search-back decides ~1.7 RR late.
pub const HISTORY: usize = 1024;
/// Beats detected but still waiting for the end of their window.
const PENDING: usize = 8;

/// One input sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sample {
    /// ECG value, about 200 units per mV (MIT-BIH scale).
    pub value: i16,
    /// An electrode of the ECG lead is off: the value is meaningless.
    pub lead_off: bool,
}

/// What a source has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Poll {
    /// The next sample.
    Sample(Sample),
    /// Nothing yet (the converter has not finished).
    Pending,
    /// The stream is over (a replay ran out).
    End,
}

/// A stream of ECG samples at a fixed rate.
pub trait SampleSource {
    /// Source failure.
    type Error;
    /// Samples per second.
    fn sample_rate(&self) -> u32;
    /// Non-blocking read.
    fn poll(&mut self) -> Result<Poll, Self::Error>;
}

/// Replays a recording stored as little-endian `i16` (see
/// `data/make_record.py`).
#[derive(Debug, Clone)]
pub struct ReplaySource<'a> {
    data: &'a [u8],
    pos: usize,
    fs: u32,
}

impl<'a> ReplaySource<'a> {
    /// A replay of `data` (pairs of bytes, little-endian) at `fs`.
    pub const fn new(data: &'a [u8], fs: u32) -> Self {
        ReplaySource { data, pos: 0, fs }
    }

    /// Samples in the recording.
    pub const fn len(&self) -> usize {
        self.data.len() / 2
    }

    /// Whether the recording is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SampleSource for ReplaySource<'_> {
    type Error = core::convert::Infallible;

    fn sample_rate(&self) -> u32 {
        self.fs
    }

    fn poll(&mut self) -> Result<Poll, Self::Error> {
        let Some(&[lo, hi]) = self
            .data
            .get(self.pos..self.pos + 2)
            .and_then(|s| s.first_chunk::<2>())
        else {
            return Ok(Poll::End);
        };
        self.pos += 2;
        Ok(Poll::Sample(Sample {
            value: i16::from_le_bytes([lo, hi]),
            lead_off: false,
        }))
    }
}

/// The ADS1292R as a sample source: one channel, scaled to ~200 units/mV.
pub struct FrontEnd<SPI, DRDY> {
    dev: Ads1292r<SPI, DRDY>,
    channel: Channel,
    shift: u32,
    fs: u32,
}

impl<SPI: embedded_hal::spi::SpiDevice, DRDY: embedded_hal::digital::InputPin> FrontEnd<SPI, DRDY> {
    /// Stream `channel` of an initialised, streaming device at `fs`.
    ///
    /// With VREF = 2.42 V and gain 6 one LSB is 2.42 / (6 · 2^23) V ≈ 48 nV,
    /// so 1 mV ≈ 20 800 codes; `shift = 7` brings that to ~163 units/mV,
    /// close to MIT-BIH's 200, with ±200 mV of range before saturating.
    pub fn new(dev: Ads1292r<SPI, DRDY>, channel: Channel, shift: u32, fs: u32) -> Self {
        FrontEnd {
            dev,
            channel,
            shift: shift.min(31),
            fs,
        }
    }

    /// Give the device back.
    pub fn release(self) -> Ads1292r<SPI, DRDY> {
        self.dev
    }
}

impl<SPI, DRDY> FrontEnd<SPI, DRDY>
where
    SPI: embedded_hal::spi::SpiDevice,
    DRDY: embedded_hal::digital::InputPin + embedded_hal_async::digital::Wait,
{
    /// Sleep until the device has a conversion ready (see
    /// [`Ads1292r::wait_ready`]); [`poll`](SampleSource::poll) then reads it.
    pub async fn wait_ready(&mut self) -> Result<(), ads1292r::Error<SPI::Error, DRDY::Error>> {
        self.dev.wait_ready().await
    }
}

impl<SPI: embedded_hal::spi::SpiDevice, DRDY: embedded_hal::digital::InputPin> SampleSource
    for FrontEnd<SPI, DRDY>
{
    type Error = ads1292r::Error<SPI::Error, DRDY::Error>;

    fn sample_rate(&self) -> u32 {
        self.fs
    }

    fn poll(&mut self) -> Result<Poll, Self::Error> {
        let Some(frame) = self.dev.poll_frame()? else {
            return Ok(Poll::Pending);
        };
        let v = frame.channel(self.channel) >> self.shift;
        Ok(Poll::Sample(Sample {
            value: v.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            lead_off: frame.lead_off.channel_off(self.channel),
        }))
    }
}

/// A beat classifier: int8 beat in, int8 class scores out.
pub trait Classifier {
    /// Inference failure.
    type Error;
    /// Score one beat.
    fn classify(
        &mut self,
        input: &[i8; BEAT_LEN],
        scores: &mut [i8; NUM_CLASSES],
    ) -> Result<(), Self::Error>;

    /// What to report for `scores`: the top-1 class, or
    /// [`Decision::Uncertain`] when the model's abstain rule says so. The
    /// default never abstains.
    fn decide(&self, scores: &[i8; NUM_CLASSES]) -> Result<Decision, Self::Error> {
        Ok(Decision::Class(argmax(scores)))
    }
}

/// "More than `threshold` abnormal beats among the last `window`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlertConfig {
    /// Beats looked at, 1..=64.
    pub window: u8,
    /// Abnormal beats tolerated in the window.
    pub threshold: u8,
}

impl AlertConfig {
    /// More than 10 of the last 32 beats abnormal: a PVC burden over ~30 %
    /// sustained for about half a minute.
    pub const DEFAULT: AlertConfig = AlertConfig {
        window: 32,
        threshold: 10,
    };
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig::DEFAULT
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MonitorConfig {
    /// Input sample rate.
    pub fs: u32,
    /// Window around each R peak.
    pub window: WindowConfig,
    /// Model input quantization.
    pub quant: InputQuant,
    /// Alert rule.
    pub alert: AlertConfig,
}

/// Why the monitor could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The detector refused the sample rate.
    Detector(detector::ConfigError),
    /// The window does not fit the history or the resampler.
    Window(u32),
    /// Alert window outside 1..=64.
    Alert,
}

/// A classified beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BeatReport {
    /// Sequence number among classified beats, from 0.
    pub seq: u32,
    /// Sample index of the R peak.
    pub r_index: u32,
    /// Model output (int8 scores, quantized probabilities for ECG5000).
    pub scores: [i8; NUM_CLASSES],
    /// The class (argmax of `scores`, the first on ties), or uncertain
    /// when its margin is below the model's abstain margin.
    pub decision: Decision,
    /// Found by the detector's search-back.
    pub search_back: bool,
    /// Abnormal beats among the last `alert.window`.
    pub abnormal_recent: u8,
    /// Uncertain beats among the last `alert.window`: counted apart, neither
    /// normal nor abnormal, so they never raise the alert themselves.
    pub uncertain_recent: u8,
    /// The alert is on after this beat.
    pub alert: bool,
    /// This beat switched the alert on or off.
    pub alert_changed: bool,
}

/// Why a detected beat was not classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SkipReason {
    /// An electrode was off during the window.
    LeadOff,
    /// The window could not be cut (history already overwritten).
    Window(WindowError),
    /// Too many beats waiting for their windows; the oldest was dropped.
    Overrun,
}

/// What a sample produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// A beat was classified.
    Beat(BeatReport),
    /// A beat was detected but not classified.
    Skipped {
        /// Sample index of its R peak.
        r_index: u32,
        /// Why.
        reason: SkipReason,
    },
}

/// Running totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Totals {
    /// Samples consumed.
    pub samples: u32,
    /// Beats the detector found.
    pub detected: u32,
    /// Beats classified, per class.
    pub per_class: [u32; NUM_CLASSES],
    /// Beats the model was run on but that got no class (the top-1
    /// margin was below the model's abstain margin).
    pub uncertain: u32,
    /// Beats detected but not classified.
    pub skipped: u32,
    /// Times the alert switched on.
    pub alerts: u32,
}

impl Totals {
    /// Beats run through the model: classified, or uncertain.
    pub fn classified(&self) -> u32 {
        self.per_class.iter().sum::<u32>() + self.uncertain
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    r_index: u32,
    search_back: bool,
}

/// The streaming monitor. The classifier is passed to [`push`](Self::push)
/// rather than owned, so that the monitor's few KB of buffers can live in a
/// `static` (see [`idle`](Self::idle)) and show up in the link's RAM figures.
pub struct Monitor {
    cfg: MonitorConfig,
    detector: Detector,
    /// Monitor index of the detector's sample 0 (it restarts after lead-off).
    detector_origin: u32,
    history: SampleRing<HISTORY>,
    pending: Deque<Pending, PENDING>,
    /// Index of the latest lead-off sample, if any.
    last_lead_off: Option<u32>,
    lead_was_off: bool,
    input: [i8; BEAT_LEN],
    /// Abnormal flags of the last beats, newest in bit 0.
    recent: u64,
    /// Uncertain flags of the same beats.
    recent_uncertain: u64,
    recent_len: u8,
    alert: bool,
    totals: Totals,
}

impl Monitor {
    /// A monitor for `cfg`.
    pub fn new(cfg: MonitorConfig) -> Result<Self, ConfigError> {
        let mut m = Monitor::idle();
        m.configure(cfg)?;
        Ok(m)
    }

    /// An unconfigured monitor, for a `static`: it ignores samples until
    /// [`configure`](Self::configure). All zeros, so such a static costs no
    /// flash (.bss, not .data).
    pub const fn idle() -> Self {
        Monitor {
            cfg: MonitorConfig {
                fs: 0,
                window: WindowConfig { pre: 0, post: 0 },
                quant: InputQuant::NONE,
                alert: AlertConfig {
                    window: 0,
                    threshold: 0,
                },
            },
            detector: Detector::idle(),
            detector_origin: 0,
            history: SampleRing::new(),
            pending: Deque::new(),
            last_lead_off: None,
            lead_was_off: false,
            input: [0; BEAT_LEN],
            recent: 0,
            recent_uncertain: 0,
            recent_len: 0,
            alert: false,
            totals: Totals {
                samples: 0,
                detected: 0,
                per_class: [0; NUM_CLASSES],
                uncertain: 0,
                skipped: 0,
                alerts: 0,
            },
        }
    }

    /// Check `cfg` and start over with it, in place. On error nothing changes.
    pub fn configure(&mut self, cfg: MonitorConfig) -> Result<(), ConfigError> {
        let len = cfg.window.len();
        if len as usize > window::MAX_WINDOW || len as usize > HISTORY / 2 {
            return Err(ConfigError::Window(len));
        }
        if !(1..=64).contains(&cfg.alert.window) {
            return Err(ConfigError::Alert);
        }
        self.detector.reset(cfg.fs).map_err(ConfigError::Detector)?;
        self.cfg = cfg;
        self.detector_origin = 0;
        self.history = SampleRing::new();
        self.pending.clear();
        self.last_lead_off = None;
        self.lead_was_off = false;
        self.input = [0; BEAT_LEN];
        self.recent = 0;
        self.recent_uncertain = 0;
        self.recent_len = 0;
        self.alert = false;
        self.totals = Totals::default();
        Ok(())
    }

    /// Totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The model input of the latest classified beat.
    pub fn last_input(&self) -> &[i8; BEAT_LEN] {
        &self.input
    }

    /// Whether the alert is on.
    pub fn alert(&self) -> bool {
        self.alert
    }

    /// Feed one sample. At most one event comes out per sample; beats whose
    /// windows complete together come out on the following samples.
    pub fn push<C: Classifier>(
        &mut self,
        sample: Sample,
        classifier: &mut C,
    ) -> Result<Option<Event>, C::Error> {
        if self.cfg.fs == 0 {
            return Ok(None);
        }
        let index = self.history.next_index();
        self.history.push(sample.value);
        self.totals.samples = self.totals.samples.wrapping_add(1);

        if sample.lead_off {
            self.last_lead_off = Some(index);
            self.lead_was_off = true;
        } else if self.lead_was_off {
            // Electrodes back on: the detector's levels are stale, relearn.
            self.lead_was_off = false;
            if self.detector.reset(self.cfg.fs).is_ok() {
                self.detector_origin = index;
            }
        }

        let mut overrun = None;
        for beat in self.detector.push(sample.value) {
            self.totals.detected = self.totals.detected.wrapping_add(1);
            let p = Pending {
                r_index: beat.r_index.wrapping_add(self.detector_origin),
                search_back: beat.search_back,
            };
            if let Err(p) = self.pending.push_back(p) {
                // Keep the newest; report the oldest as lost.
                overrun = self.pending.pop_front().map(|o| o.r_index);
                let _ = self.pending.push_back(p);
            }
        }
        if let Some(r_index) = overrun {
            self.totals.skipped = self.totals.skipped.wrapping_add(1);
            return Ok(Some(Event::Skipped {
                r_index,
                reason: SkipReason::Overrun,
            }));
        }

        let Some(&front) = self.pending.front() else {
            return Ok(None);
        };
        let start = front.r_index.wrapping_sub(self.cfg.window.pre);
        let len = self.cfg.window.len();
        // Wait until the last sample of the window has arrived.
        let age_of_start = self.history.next_index().wrapping_sub(start);
        if age_of_start < len || age_of_start > u32::MAX / 2 {
            return Ok(None);
        }
        self.pending.pop_front();
        Ok(Some(self.finish(front, start, len, classifier)?))
    }

    /// Pull samples from `source` until it ends, handing every event to
    /// `on_event`. Spins while the source is pending.
    pub fn run<S: SampleSource, C: Classifier>(
        &mut self,
        source: &mut S,
        classifier: &mut C,
        mut on_event: impl FnMut(&Self, &Event),
    ) -> Result<(), RunError<S::Error, C::Error>> {
        loop {
            match source.poll().map_err(RunError::Source)? {
                Poll::Sample(s) => {
                    if let Some(ev) = self.push(s, classifier).map_err(RunError::Classifier)? {
                        on_event(self, &ev);
                    }
                }
                Poll::Pending => {}
                Poll::End => return Ok(()),
            }
        }
    }

    fn finish<C: Classifier>(
        &mut self,
        beat: Pending,
        start: u32,
        len: u32,
        classifier: &mut C,
    ) -> Result<Event, C::Error> {
        let skip = |reason| Event::Skipped {
            r_index: beat.r_index,
            reason,
        };
        let end = start.wrapping_add(len - 1);
        if let Some(off) = self.last_lead_off {
            // Lead-off inside [start, end] (ages compared to survive wrap).
            if end.wrapping_sub(off) < len {
                self.totals.skipped = self.totals.skipped.wrapping_add(1);
                return Ok(skip(SkipReason::LeadOff));
            }
        }
        let history = &self.history;
        let got = window::beat_input(
            len as usize,
            |k| history.get(start.wrapping_add(k as u32)),
            &self.cfg.quant,
            &mut self.input,
        );
        if let Err(e) = got {
            self.totals.skipped = self.totals.skipped.wrapping_add(1);
            return Ok(skip(SkipReason::Window(e)));
        }
        let mut scores = [0i8; NUM_CLASSES];
        classifier.classify(&self.input, &mut scores)?;
        let decision = classifier.decide(&scores)?;
        let count = match decision {
            Decision::Class(class) => self.totals.per_class.get_mut(class),
            Decision::Uncertain => Some(&mut self.totals.uncertain),
        };
        if let Some(c) = count {
            *c = c.wrapping_add(1);
        }

        let w = self.cfg.alert.window;
        let mask = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
        let abnormal_beat = matches!(decision, Decision::Class(c) if c != NORMAL_CLASS);
        let uncertain_beat = decision == Decision::Uncertain;
        self.recent = ((self.recent << 1) | u64::from(abnormal_beat)) & mask;
        self.recent_uncertain = ((self.recent_uncertain << 1) | u64::from(uncertain_beat)) & mask;
        self.recent_len = self.recent_len.saturating_add(1).min(w);
        let abnormal = self.recent.count_ones() as u8;
        let alert = abnormal > self.cfg.alert.threshold;
        let alert_changed = alert != self.alert;
        if alert && alert_changed {
            self.totals.alerts = self.totals.alerts.wrapping_add(1);
        }
        self.alert = alert;

        Ok(Event::Beat(BeatReport {
            seq: self.totals.classified().wrapping_sub(1),
            r_index: beat.r_index,
            scores,
            decision,
            search_back: beat.search_back,
            abnormal_recent: abnormal,
            uncertain_recent: self.recent_uncertain.count_ones() as u8,
            alert,
            alert_changed,
        }))
    }
}

/// Failure of [`Monitor::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunError<S, C> {
    /// The source failed.
    Source(S),
    /// The classifier failed.
    Classifier(C),
}

/// Index of the largest score, the first on ties.
pub fn argmax(scores: &[i8]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if scores.get(best).is_some_and(|&b| s > b) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Scores "abnormal" (class 2) for every `pvc_every`-th beat, ties
    /// classes 0 and 3 on every `unsure_every`-th (0: never), and records
    /// every input it saw. Like a model with an abstain margin, it calls a
    /// tie uncertain.
    struct Fake {
        pvc_every: u32,
        unsure_every: u32,
        seen: Vec<[i8; BEAT_LEN]>,
        calls: u32,
    }

    impl Classifier for Fake {
        type Error = ();
        fn classify(
            &mut self,
            input: &[i8; BEAT_LEN],
            scores: &mut [i8; NUM_CLASSES],
        ) -> Result<(), ()> {
            self.seen.push(*input);
            self.calls += 1;
            *scores = [10, -5, -5, -5, -5];
            if self.pvc_every != 0 && self.calls % self.pvc_every == 0 {
                scores[2] = 20;
            }
            if self.unsure_every != 0 && self.calls % self.unsure_every == 0 {
                scores[3] = scores[argmax(scores)];
            }
            Ok(())
        }

        fn decide(&self, scores: &[i8; NUM_CLASSES]) -> Result<Decision, ()> {
            let best = argmax(scores);
            let tied = (0..NUM_CLASSES).any(|i| i != best && scores[i] == scores[best]);
            Ok(if tied {
                Decision::Uncertain
            } else {
                Decision::Class(best)
            })
        }
    }

    fn gauss(t: f64, c: f64, w: f64) -> f64 {
        (-0.5 * ((t - c) / w).powi(2)).exp()
    }

    /// Regular 0.75 s rhythm: spiky R with a T wave, in MIT-BIH units.
    fn ecg(seconds: f64) -> (Vec<i16>, Vec<u32>) {
        let fs = 360.0;
        let beats: Vec<f64> = (0..)
            .map(|i| 0.3 + 0.75 * i as f64)
            .take_while(|&t| t < seconds - 0.5)
            .collect();
        let x = (0..(seconds * fs) as usize)
            .map(|i| {
                let t = i as f64 / fs;
                beats
                    .iter()
                    .map(|&r| 300.0 * gauss(t, r, 0.01) + 80.0 * gauss(t, r + 0.3, 0.05))
                    .sum::<f64>() as i16
            })
            .collect();
        (x, beats.iter().map(|t| (t * fs).round() as u32).collect())
    }

    fn config() -> MonitorConfig {
        MonitorConfig {
            fs: 360,
            window: WindowConfig::ecg5000(360),
            quant: InputQuant::new(0.05, 0).unwrap(),
            alert: AlertConfig {
                window: 8,
                threshold: 3,
            },
        }
    }

    fn run(
        m: &mut Monitor,
        f: &mut Fake,
        x: &[i16],
        lead_off: impl Fn(usize) -> bool,
    ) -> Vec<Event> {
        x.iter()
            .enumerate()
            .filter_map(|(i, &v)| {
                m.push(
                    Sample {
                        value: v,
                        lead_off: lead_off(i),
                    },
                    f,
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn classifies_every_beat_with_the_r_peak_near_sample_5() {
        let (x, truth) = ecg(30.0);
        let fake = Fake {
            pvc_every: 0,
            unsure_every: 0,
            seen: vec![],
            calls: 0,
        };
        let mut fake = fake;
        let mut m = Monitor::new(config()).unwrap();
        let events = run(&mut m, &mut fake, &x, |_| false);
        let beats: Vec<BeatReport> = events
            .iter()
            .filter_map(|e| match e {
                Event::Beat(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert_eq!(beats.len(), events.len(), "nothing skipped");
        // All beats after the ~2.5 s learning phase, in order, on time.
        assert!(beats[0].r_index < 3 * 360);
        let expected: Vec<u32> = truth
            .into_iter()
            .filter(|&r| r + 2 >= beats[0].r_index)
            .collect();
        assert_eq!(beats.len(), expected.len());
        for (b, (seq, &r)) in beats.iter().zip(expected.iter().enumerate()) {
            assert!(b.r_index.abs_diff(r) <= 2, "{} vs {r}", b.r_index);
            assert_eq!(b.seq, seq as u32);
            assert_eq!(b.decision, Decision::Class(0));
            assert!(!b.alert);
        }
        // The model saw z-normalised beats whose maximum (the R wave) sits
        // at 9 of 253 input samples → 140-point sample ~5, several std high.
        for input in &fake.seen {
            let peak = (0..BEAT_LEN).max_by_key(|&i| input[i]).unwrap();
            assert!((4..=6).contains(&peak), "peak at {peak}");
            assert!(input[peak] > 80, "z = {}", input[peak] as f32 * 0.05);
        }
        let t = m.totals();
        assert_eq!(t.per_class, [beats.len() as u32, 0, 0, 0, 0]);
        assert_eq!(t.samples, x.len() as u32);
        assert_eq!(t.detected, beats.len() as u32);
    }

    #[test]
    fn alert_follows_the_abnormal_burden() {
        let (x, _) = ecg(40.0);
        // Every second beat abnormal: 4 of the last 8 > 3 ⇒ alert once the
        // 7th classified beat is in.
        let fake = Fake {
            pvc_every: 2,
            unsure_every: 0,
            seen: vec![],
            calls: 0,
        };
        let mut fake = fake;
        let mut m = Monitor::new(config()).unwrap();
        let events = run(&mut m, &mut fake, &x, |_| false);
        let beats: Vec<BeatReport> = events
            .iter()
            .filter_map(|e| match e {
                Event::Beat(b) => Some(*b),
                _ => None,
            })
            .collect();
        let first_alert = beats.iter().position(|b| b.alert).unwrap();
        assert_eq!(first_alert, 7);
        assert!(beats[first_alert].alert_changed);
        assert_eq!(beats[first_alert].abnormal_recent, 4);
        assert!(beats[first_alert + 1..]
            .iter()
            .all(|b| b.alert && !b.alert_changed));
        assert_eq!(m.totals().alerts, 1);
        assert_eq!(m.totals().per_class[2], beats.len() as u32 / 2);
        assert!(m.alert());
    }

    #[test]
    fn uncertain_beats_are_counted_apart_and_never_raise_the_alert() {
        let (x, _) = ecg(40.0);
        // Every beat abnormal-or-uncertain: every second beat scores class
        // 2, every third ties two classes (uncertain, even when it is also
        // a class-2 beat). Per 6 beats: 2 uncertain, 2 abnormal, 2 normal.
        let mut fake = Fake {
            pvc_every: 2,
            unsure_every: 3,
            seen: vec![],
            calls: 0,
        };
        let mut m = Monitor::new(config()).unwrap();
        let events = run(&mut m, &mut fake, &x, |_| false);
        let beats: Vec<BeatReport> = events
            .iter()
            .filter_map(|e| match e {
                Event::Beat(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert!(beats.len() >= 12, "{} beats", beats.len());
        for (k, b) in beats.iter().enumerate() {
            let call = k as u32 + 1;
            let want = if call % 3 == 0 {
                Decision::Uncertain
            } else if call % 2 == 0 {
                Decision::Class(2)
            } else {
                Decision::Class(0)
            };
            assert_eq!(b.decision, want, "beat {k}");
            assert_eq!(b.seq, k as u32);
        }
        // The last 8 beats hold 2 or 3 of each kind: never more than 3
        // abnormal, so no alert, though the uncertain ones are not normal.
        let last = beats.last().unwrap();
        assert!((2..=3).contains(&last.uncertain_recent), "{last:?}");
        assert!(last.abnormal_recent <= 3);
        assert!(beats.iter().all(|b| !b.alert));
        let t = m.totals();
        let n = beats.len() as u32;
        assert_eq!(t.uncertain, n / 3);
        assert_eq!(t.per_class[2], n / 2 - n / 6);
        assert_eq!(t.per_class[0] + t.per_class[2] + t.uncertain, n);
        assert_eq!(t.classified(), n);
    }

    #[test]
    fn lead_off_skips_beats_and_relearns() {
        let (x, _) = ecg(40.0);
        let fake = Fake {
            pvc_every: 0,
            unsure_every: 0,
            seen: vec![],
            calls: 0,
        };
        let mut fake = fake;
        let mut m = Monitor::new(config()).unwrap();
        // Electrodes off for 20 samples at 9.9 s: inside the window of the
        // beat at 9.3 s (R 3348, window to 3591), after it was detected.
        let off = |i: usize| (3560..3580).contains(&i);
        let events = run(&mut m, &mut fake, &x, off);
        let skipped: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped {
                    r_index,
                    reason: SkipReason::LeadOff,
                } => Some(*r_index),
                _ => None,
            })
            .collect();
        assert_eq!(skipped.len(), 1, "{events:?}");
        assert!(skipped[0].abs_diff(3348) <= 2);
        // Then the detector relearns for ~2.5 s: the beat at 10.05 s is lost.
        let after: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                Event::Beat(b) if b.r_index > 3348 => Some(b.r_index),
                _ => None,
            })
            .collect();
        assert!(
            after[0] > 3580 + 2 * 360,
            "relearning: first beat back at {}",
            after[0]
        );
        assert!(after[0] < 3580 + 4 * 360);
    }

    #[test]
    fn replay_source_decodes_little_endian() {
        let data = [0x34, 0x12, 0xFF, 0xFF, 0x00];
        let mut s = ReplaySource::new(&data, 360);
        assert_eq!(s.len(), 2);
        assert_eq!(s.sample_rate(), 360);
        assert_eq!(
            s.poll(),
            Ok(Poll::Sample(Sample {
                value: 0x1234,
                lead_off: false
            }))
        );
        assert_eq!(
            s.poll(),
            Ok(Poll::Sample(Sample {
                value: -1,
                lead_off: false
            }))
        );
        // The odd trailing byte is not a sample.
        assert_eq!(s.poll(), Ok(Poll::End));
    }

    #[test]
    fn front_end_scales_the_ecg_channel_and_reports_lead_off() {
        use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as P};
        use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as S};
        // ch2 = 0x00_A000 = 40960 → >> 7 = 320; second frame: IN2P off,
        // ch2 = −2^23 saturates at −65536 → −65536 >> 7 = −65536/128 = −512.
        let t = [
            S::transaction_start(),
            S::read_vec(vec![0xC0, 0, 0, 0, 0, 0, 0x00, 0xA0, 0x00]),
            S::transaction_end(),
            S::transaction_start(),
            S::read_vec(vec![0xC2, 0, 0, 0x7F, 0xFF, 0xFF, 0x80, 0x00, 0x00]),
            S::transaction_end(),
        ];
        let mut spi = SpiMock::new(&t);
        let mut pin = PinMock::new(&[P::get(State::High), P::get(State::Low), P::get(State::Low)]);
        let mut dev = Ads1292r::new(spi.clone(), pin.clone());
        dev.set_command_gap_ns(0);
        let mut fe = FrontEnd::new(dev, Channel::Ch2, 7, 500);
        assert_eq!(fe.poll(), Ok(Poll::Pending));
        assert_eq!(
            fe.poll(),
            Ok(Poll::Sample(Sample {
                value: 320,
                lead_off: false
            }))
        );
        assert_eq!(
            fe.poll(),
            Ok(Poll::Sample(Sample {
                value: -32768,
                lead_off: true
            }))
        );
        spi.done();
        pin.done();
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = config();
        c.fs = 20;
        assert!(matches!(Monitor::new(c), Err(ConfigError::Detector(_))));
        let mut c = config();
        c.window = WindowConfig {
            pre: 300,
            post: 300,
        };
        assert_eq!(Monitor::new(c).err(), Some(ConfigError::Window(601)));
        let mut c = config();
        c.alert.window = 65;
        assert_eq!(Monitor::new(c).err(), Some(ConfigError::Alert));
    }

    #[test]
    fn idle_ignores_samples_and_configure_starts_clean() {
        let (x, _) = ecg(12.0);
        let mut fake = Fake {
            pvc_every: 0,
            unsure_every: 0,
            seen: vec![],
            calls: 0,
        };
        let mut m = Monitor::idle();
        assert!(run(&mut m, &mut fake, &x, |_| false).is_empty());
        assert_eq!(m.totals().samples, 0);
        m.configure(config()).unwrap();
        let first = run(&mut m, &mut fake, &x, |_| false);
        // Reconfiguring forgets everything: the same input gives the same events.
        m.configure(config()).unwrap();
        let second = run(&mut m, &mut fake, &x, |_| false);
        assert!(!first.is_empty());
        assert_eq!(first, second);
        assert_eq!(m.totals().samples, x.len() as u32);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1, 3, 3, -1]), 1);
        assert_eq!(argmax(&[-128; 5]), 0);
        assert_eq!(argmax(&[]), 0);
    }
}
