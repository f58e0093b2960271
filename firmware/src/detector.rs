//! Streaming, integer-only QRS (R-peak) detector in the Pan–Tompkins style.
//!
//! Per sample: band-pass (two cascaded moving sums as the low-pass, minus a
//! centred moving average as the high-pass), five-point derivative, squaring,
//! moving-window integration (MWI), then peak picking on the MWI with adaptive
//! signal/noise levels, a 200 ms refractory period, T-wave rejection by slope
//! and search-back for missed beats. The filter lengths scale with the sample
//! rate (Pan & Tompkins designed them for 200 Hz), so the same code serves the
//! 360 Hz MIT-BIH replay and a 500 SPS ADS1292R.
//!
//! All state is fixed-size; arithmetic is integer and overflow-free for any
//! `i16` input (bounds noted where they matter), so host and device agree bit
//! for bit.

use heapless::Vec;

/// Highest supported sample rate; sizes the filter buffers.
pub const MAX_FS: u32 = 500;
/// Lowest supported sample rate.
pub const MIN_FS: u32 = 100;

// Buffer sizes at MAX_FS (lengths are rounded to odd where a centre is needed).
const LP_MAX: usize = 16; // 0.03 s
const HP_MAX: usize = 81; // 0.16 s
const MWI_MAX: usize = 76; // 0.15 s
/// Band-pass history kept for locating the R peak behind an MWI peak: a peak
/// is confirmed at most 95 ms + 1 sample after its maximum, and the search
/// spans the MWI window plus the derivative delay: 48 + 76 + 2 < 128 at
/// MAX_FS.
const BP_HIST: usize = 128;

/// Derivative >> SQ_SHIFT before squaring keeps the MWI sum inside `u64`:
/// |x| ≤ 2^15 ⇒ |lp| ≤ 16²·2^15 = 2^23 ⇒ |hp| ≤ 2·81·2^23 < 2^30.4 ⇒
/// |deriv| ≤ 6·|hp| < 2^33 ⇒ (deriv >> 7)² < 2^52 ⇒ MWI < 76·2^52 < 2^59.
const SQ_SHIFT: u32 = 7;

/// Why a configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// Sample rate outside [`MIN_FS`]..=[`MAX_FS`].
    SampleRate(u32),
}

/// A detected beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Beat {
    /// Input sample index of the R peak (largest band-passed excursion of the
    /// QRS, moved back by the filter delay).
    pub r_index: u32,
    /// Input sample index at which the detector decided.
    pub detected_at: u32,
    /// Found by search-back (a weaker beat accepted after a long RR gap).
    pub search_back: bool,
}

/// Up to two beats can be decided on one sample (a search-back beat and the
/// beat that ended the gap).
pub type Detections = Vec<Beat, 2>;

/// Fixed-length moving sum over the last `len` values.
#[derive(Clone)]
struct MovingSum<T, const N: usize> {
    buf: [T; N],
    len: usize,
    pos: usize,
    sum: T,
}

macro_rules! moving_sum_impl {
    ($t:ty) => {
        impl<const N: usize> MovingSum<$t, N> {
            /// Empty, summing nothing until [`reset`](Self::reset).
            const fn idle() -> Self {
                MovingSum {
                    buf: [0; N],
                    len: 0,
                    pos: 0,
                    sum: 0,
                }
            }

            /// Clear, and sum the last `len` values from now on.
            fn reset(&mut self, len: usize) {
                self.buf.fill(0);
                self.len = len.clamp(1, N);
                self.pos = 0;
                self.sum = 0;
            }

            /// Push `v`, return the sum of the last `len` values.
            fn push(&mut self, v: $t) -> $t {
                let slot = self
                    .buf
                    .get_mut(self.pos)
                    .map(|s| core::mem::replace(s, v))
                    .unwrap_or(0);
                self.sum = self.sum - slot + v;
                self.pos += 1;
                if self.pos >= self.len {
                    self.pos = 0;
                }
                self.sum
            }
        }
    };
}
moving_sum_impl!(i32);
moving_sum_impl!(u64);

impl<const N: usize> MovingSum<i32, N> {
    /// The value pushed `age` samples ago (0 = latest); `age < len`.
    fn ago(&self, age: usize) -> i32 {
        // pos < len and age % len < len: no underflow; len ≥ 1 by construction.
        let idx = (self.pos + self.len - 1 - age.checked_rem(self.len).unwrap_or(0))
            .checked_rem(self.len)
            .unwrap_or(0);
        self.buf.get(idx).copied().unwrap_or(0)
    }
}

/// A local maximum of the MWI output.
#[derive(Debug, Clone, Copy)]
struct Peak {
    height: u64,
    /// Steepest |derivative| seen while this peak rose (for T-wave rejection).
    slope: u32,
    /// Input index of the R peak behind it.
    r_index: u32,
}

/// The streaming detector: about 1.7 KB of state on a 32-bit core.
#[derive(Clone)]
pub struct Detector {
    fs: u32,
    // Sample-rate-derived lengths, in samples.
    hp_delay: usize,
    bp_delay: u32,
    mwi_len: u32,
    refractory: u32,
    t_wave_window: u32,
    learn_len: u32,
    peak_timeout: u32,

    lp1: MovingSum<i32, LP_MAX>,
    lp2: MovingSum<i32, LP_MAX>,
    hp: MovingSum<i32, HP_MAX>,
    hp_len: i32,
    /// Last four band-pass outputs for the derivative, newest first.
    deriv_hist: [i32; 4],
    mwi: MovingSum<u64, MWI_MAX>,
    /// Band-pass history, indexed by input sample index modulo BP_HIST.
    bp_hist: [i32; BP_HIST],

    /// Index of the next sample (wraps after 2^32 samples).
    n: u32,
    /// Samples seen, saturating: drives warm-up and learning.
    seen: u32,

    // Peak picking (Hamilton & Tompkins' rule: a peak is confirmed once the
    // MWI falls to half of it, or 95 ms after its maximum).
    last_mwi: u64,
    cur_max: u64,
    cur_max_at: u32,
    cur_slope: u32,
    rising_slope: u32,

    // Learning phase statistics.
    learn_max: u64,
    learn_sum: u128,

    // Adaptive levels (valid after learning).
    spk: u64,
    npk: u64,
    threshold: u64,

    last_qrs: Option<u32>,
    last_qrs_slope: u32,
    rr: [u32; 8],
    rr_count: usize,
    /// Largest noise peak since the last QRS that could be a missed beat.
    candidate: Option<Peak>,
}

impl Detector {
    /// A detector for input at `fs` samples per second.
    pub fn new(fs: u32) -> Result<Detector, ConfigError> {
        let mut d = Detector::idle();
        d.reset(fs)?;
        Ok(d)
    }

    /// A detector that detects nothing until [`reset`](Self::reset): lets a
    /// `static` hold one without building it on the stack first.
    pub const fn idle() -> Detector {
        Detector {
            fs: 0,
            hp_delay: 0,
            bp_delay: 0,
            mwi_len: 0,
            refractory: 0,
            t_wave_window: 0,
            learn_len: 0,
            peak_timeout: 0,
            lp1: MovingSum::<i32, LP_MAX>::idle(),
            lp2: MovingSum::<i32, LP_MAX>::idle(),
            hp: MovingSum::<i32, HP_MAX>::idle(),
            hp_len: 0,
            deriv_hist: [0; 4],
            mwi: MovingSum::<u64, MWI_MAX>::idle(),
            bp_hist: [0; BP_HIST],
            n: 0,
            seen: 0,
            last_mwi: 0,
            cur_max: 0,
            cur_max_at: 0,
            cur_slope: 0,
            rising_slope: 0,
            learn_max: 0,
            learn_sum: 0,
            spk: 0,
            npk: 0,
            threshold: 0,
            last_qrs: None,
            last_qrs_slope: 0,
            rr: [0; 8],
            rr_count: 0,
            candidate: None,
        }
    }

    /// Start over, in place, for input at `fs` samples per second. On error
    /// the detector is left unchanged.
    pub fn reset(&mut self, fs: u32) -> Result<(), ConfigError> {
        if !(MIN_FS..=MAX_FS).contains(&fs) {
            return Err(ConfigError::SampleRate(fs));
        }
        // Pan & Tompkins at 200 Hz: low-pass sums of 6, high-pass average of
        // 32, MWI of 30 samples. Scale by fs/200, rounding to nearest.
        let scale = |n200: u32| ((n200 * fs + 100) / 200) as usize;
        let lp_len = scale(6).clamp(2, LP_MAX);
        // Odd, so the high-pass subtracts a centred average.
        let hp_len = (scale(32) | 1).clamp(3, HP_MAX);
        let mwi_len = scale(30).clamp(2, MWI_MAX);
        let hp_delay = (hp_len - 1) / 2;
        let ms = |t: u32| t * fs / 1000;
        self.fs = fs;
        self.hp_delay = hp_delay;
        // Group delays: low-pass (lp_len − 1), high-pass hp_delay.
        self.bp_delay = (lp_len - 1 + hp_delay) as u32;
        self.mwi_len = mwi_len as u32;
        self.refractory = ms(200);
        self.t_wave_window = ms(360);
        self.learn_len = 2 * fs;
        self.peak_timeout = ms(95);
        self.lp1.reset(lp_len);
        self.lp2.reset(lp_len);
        self.hp.reset(hp_len);
        self.hp_len = hp_len as i32;
        self.deriv_hist = [0; 4];
        self.mwi.reset(mwi_len);
        self.bp_hist.fill(0);
        self.n = 0;
        self.seen = 0;
        self.last_mwi = 0;
        self.cur_max = 0;
        self.cur_max_at = 0;
        self.cur_slope = 0;
        self.rising_slope = 0;
        self.learn_max = 0;
        self.learn_sum = 0;
        self.spk = 0;
        self.npk = 0;
        self.threshold = 0;
        self.last_qrs = None;
        self.last_qrs_slope = 0;
        self.rr = [0; 8];
        self.rr_count = 0;
        self.candidate = None;
        Ok(())
    }

    /// Sample rate this detector was built for.
    pub fn fs(&self) -> u32 {
        self.fs
    }

    /// Samples of latency from an R peak to its detection, at most (peak
    /// confirmation only; search-back beats can come up to ~1.7 RR later).
    pub fn max_latency(&self) -> u32 {
        self.bp_delay + 2 + self.mwi_len + self.peak_timeout
    }

    /// Current adaptive threshold on the MWI signal (0 while learning).
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// Mean of the last (up to 8) RR intervals, in samples; `fs` (60 bpm)
    /// before any.
    pub fn rr_average(&self) -> u32 {
        let k = self.rr_count.min(self.rr.len());
        if k == 0 {
            return self.fs;
        }
        let sum: u32 = self.rr.iter().take(k).sum();
        sum.checked_div(k as u32).unwrap_or(self.fs)
    }

    /// Feed one sample; returns the beats decided on it.
    pub fn push(&mut self, x: i16) -> Detections {
        let mut out = Detections::new();
        if self.fs == 0 {
            // Idle: not configured.
            return out;
        }
        let n = self.n;
        self.n = self.n.wrapping_add(1);
        let seen = self.seen;
        self.seen = self.seen.saturating_add(1);

        // Band-pass. Low-pass: two cascaded moving sums (gain lp_len²).
        let s1 = self.lp1.push(i32::from(x));
        let lp = self.lp2.push(s1);
        // High-pass: hp_len·lp[n − d] − Σ lp (an all-pass minus a centred
        // moving average, scaled by hp_len to stay in integers).
        let sum_lp = self.hp.push(lp);
        let delayed = self.hp.ago(self.hp_delay);
        let bp = self.hp_len * delayed - sum_lp;
        if let Some(slot) = self.bp_hist.get_mut(n as usize % BP_HIST) {
            *slot = bp;
        }

        // Five-point derivative (2x[n] + x[n−1] − x[n−3] − 2x[n−4]), i64.
        let [d1, d2, d3, d4] = self.deriv_hist;
        let deriv = 2 * i64::from(bp) + i64::from(d1) - i64::from(d3) - 2 * i64::from(d4);
        self.deriv_hist = [bp, d1, d2, d3];
        let slope = (deriv.unsigned_abs() >> SQ_SHIFT) as u32;
        let sq = u64::from(slope) * u64::from(slope);
        let mwi = self.mwi.push(sq);

        // The filters need a moment to fill; everything before is transient.
        let warm = (self.hp_len as u32) + 2 * self.mwi_len;
        if seen < warm {
            self.last_mwi = mwi;
            return out;
        }

        if seen < self.learn_len + warm {
            self.learn_max = self.learn_max.max(mwi);
            self.learn_sum += u128::from(mwi);
            if seen + 1 == self.learn_len + warm {
                // Pan–Tompkins initialisation: signal level a third of the
                // largest MWI value, noise level half of the mean.
                self.spk = self.learn_max / 3;
                let mean = self
                    .learn_sum
                    .checked_div(u128::from(self.learn_len))
                    .unwrap_or(0);
                self.npk = u64::try_from(mean / 2).unwrap_or(u64::MAX);
                self.update_threshold();
            }
            self.last_mwi = mwi;
            return out;
        }

        self.rising_slope = self.rising_slope.max(slope);

        // Search-back: no QRS for 166 % of the mean RR ⇒ take the largest
        // candidate above half the threshold.
        if let Some(last) = self.last_qrs {
            let gap = n.wrapping_sub(last);
            if u64::from(gap) * 100 > u64::from(self.rr_average()) * 166 {
                if let Some(c) = self.candidate.take() {
                    if c.height > self.threshold / 2 {
                        // Search-back beats pull the signal level harder (¼).
                        self.spk = (c.height + 3 * self.spk) / 4;
                        self.accept(c, n, true, &mut out);
                    }
                }
            }
        }

        if let Some(peak) = self.pick_peak(mwi, n) {
            self.classify(peak, n, &mut out);
        }
        self.last_mwi = mwi;
        out
    }

    /// Peak picking on the MWI: start tracking on a rise, confirm on a fall
    /// to half or after the timeout.
    fn pick_peak(&mut self, mwi: u64, n: u32) -> Option<(u64, u32, u32)> {
        if mwi > self.last_mwi && mwi > self.cur_max {
            self.cur_max = mwi;
            self.cur_max_at = n;
            self.cur_slope = self.rising_slope;
            None
        } else if self.cur_max > 0
            && (mwi <= self.cur_max / 2 || n.wrapping_sub(self.cur_max_at) > self.peak_timeout)
        {
            let p = (self.cur_max, self.cur_max_at, self.cur_slope);
            self.cur_max = 0;
            self.rising_slope = 0;
            Some(p)
        } else {
            None
        }
    }

    fn classify(&mut self, (height, at, slope): (u64, u32, u32), n: u32, out: &mut Detections) {
        let peak = Peak {
            height,
            slope,
            r_index: self.locate_r(at, n),
        };
        let since_last = self.last_qrs.map(|l| peak.r_index.wrapping_sub(l));
        // Nothing can beat again within the refractory period: ignore it.
        if since_last.is_some_and(|d| d < self.refractory || d > u32::MAX / 2) {
            return;
        }
        let mut is_qrs = height > self.threshold;
        // A peak soon after a QRS with less than half its slope is a T wave.
        if is_qrs
            && since_last.is_some_and(|d| d < self.t_wave_window)
            && 2 * slope < self.last_qrs_slope
        {
            is_qrs = false;
        }
        if is_qrs {
            self.spk = (height + 7 * self.spk) / 8;
            self.accept(peak, n, false, out);
        } else {
            self.npk = (height + 7 * self.npk) / 8;
            self.update_threshold();
            if height > self.threshold / 2 && self.candidate.is_none_or(|c| height > c.height) {
                self.candidate = Some(peak);
            }
        }
    }

    fn accept(&mut self, peak: Peak, n: u32, search_back: bool, out: &mut Detections) {
        if let Some(last) = self.last_qrs {
            let rr = peak.r_index.wrapping_sub(last);
            if let Some(slot) = self.rr.get_mut(self.rr_count % 8) {
                *slot = rr;
            }
            self.rr_count = self.rr_count.wrapping_add(1);
            if self.rr_count >= 16 {
                // Keep the index small but past the "filled" mark.
                self.rr_count -= 8;
            }
        }
        self.last_qrs = Some(peak.r_index);
        self.last_qrs_slope = peak.slope;
        self.candidate = None;
        self.update_threshold();
        // Capacity 2 and at most two accepts per sample: cannot fail.
        let _ = out.push(Beat {
            r_index: peak.r_index,
            detected_at: n,
            search_back,
        });
    }

    fn update_threshold(&mut self) {
        // THRESHOLD_I1 = NPKI + ¼ (SPKI − NPKI).
        self.threshold = self.npk + self.spk.saturating_sub(self.npk) / 4;
    }

    /// The R peak behind an MWI maximum at `at`: the largest |band-pass|
    /// within the MWI window that ended there, moved back by the band-pass
    /// delay. `now` bounds how far back the history reaches.
    fn locate_r(&self, at: u32, now: u32) -> u32 {
        // sq[t] comes from bp[t − 2] (derivative centre); MWI[at] covers
        // sq[at − W + 1 ..= at]. Work in ages (now − t) so that index
        // wrap-around after 2^32 samples is harmless.
        let youngest = now.wrapping_sub(at).saturating_add(2);
        let oldest = youngest
            .saturating_add(self.mwi_len - 1)
            .min(BP_HIST as u32 - 1);
        let mut best = youngest;
        let mut best_abs = 0u32;
        for age in youngest..=oldest {
            let t = now.wrapping_sub(age);
            let v = self.bp_hist.get(t as usize % BP_HIST).copied().unwrap_or(0);
            if v.unsigned_abs() > best_abs {
                best_abs = v.unsigned_abs();
                best = age;
            }
        }
        now.wrapping_sub(best).wrapping_sub(self.bp_delay)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Deterministic noise (xorshift32), uniform in [-amp, amp].
    struct Noise(u32);
    impl Noise {
        fn next(&mut self, amp: i32) -> i32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            (self.0 % (2 * amp as u32 + 1)) as i32 - amp
        }
    }

    fn gauss(t: f64, centre: f64, width: f64) -> f64 {
        let z = (t - centre) / width;
        (-0.5 * z * z).exp()
    }

    /// A synthetic ECG at `fs` (≈200 units/mV like MIT-BIH): P, QRS and T
    /// waves per beat at `r_times` (seconds), with the R amplitude scaled per
    /// beat, plus 0.3 Hz baseline wander and uniform noise.
    fn synth(fs: u32, seconds: f64, r_times: &[(f64, f64)], wander: f64, noise: i32) -> Vec<i16> {
        let n = (seconds * fs as f64) as usize;
        let mut rng = Noise(0x1234_5678);
        (0..n)
            .map(|i| {
                let t = i as f64 / fs as f64;
                let mut v = wander * (2.0 * core::f64::consts::PI * 0.3 * t).sin();
                for &(r, amp) in r_times {
                    if (t - r).abs() < 0.6 {
                        v += 30.0 * gauss(t, r - 0.16, 0.025); // P
                        v -= 40.0 * amp * gauss(t, r - 0.025, 0.008); // Q
                        v += 300.0 * amp * gauss(t, r, 0.010); // R
                        v -= 60.0 * amp * gauss(t, r + 0.025, 0.008); // S
                        v += 90.0 * gauss(t, r + 0.28, 0.05); // T
                    }
                }
                (v.round() as i32 + rng.next(noise)) as i16
            })
            .collect()
    }

    /// Beat times with RR varying between 0.6 and 1.0 s, from `start`.
    fn rhythm(start: f64, end: f64) -> Vec<(f64, f64)> {
        let mut rng = Noise(42);
        let mut t = start;
        let mut out = Vec::new();
        while t < end {
            out.push((t, 1.0));
            t += 0.6 + (rng.next(100) + 100) as f64 / 500.0;
        }
        out
    }

    fn detect(fs: u32, x: &[i16]) -> Vec<Beat> {
        let mut d = Detector::new(fs).unwrap();
        x.iter().flat_map(|&v| d.push(v)).collect()
    }

    /// Each true beat after the learning phase is matched by exactly one
    /// detection within `tol` samples, and nothing else is detected.
    fn assert_matches(fs: u32, truth: &[(f64, f64)], got: &[Beat], after: f64, tol: u32) {
        let truth: Vec<u32> = truth
            .iter()
            .filter(|(t, _)| *t > after)
            .map(|(t, _)| (t * fs as f64).round() as u32)
            .collect();
        let got: Vec<u32> = got
            .iter()
            .map(|b| b.r_index)
            .filter(|&r| r as f64 > after * fs as f64 - tol as f64)
            .collect();
        assert_eq!(
            got.len(),
            truth.len(),
            "detected {got:?}\nexpected {truth:?}"
        );
        for (g, t) in got.iter().zip(&truth) {
            assert!(g.abs_diff(*t) <= tol, "beat at {t} detected at {g}");
        }
    }

    #[test]
    fn idle_detects_nothing_and_reset_matches_new() {
        let truth = rhythm(0.5, 20.0);
        let x = synth(360, 21.0, &truth, 0.0, 5);
        let mut idle = Detector::idle();
        assert!(x.iter().all(|&v| idle.push(v).is_empty()));
        // A used detector, reset, behaves like a fresh one.
        let mut reused = Detector::new(500).unwrap();
        let _: Vec<Beat> = x.iter().flat_map(|&v| reused.push(v)).collect();
        reused.reset(360).unwrap();
        let again: Vec<Beat> = x.iter().flat_map(|&v| reused.push(v)).collect();
        assert_eq!(again, detect(360, &x));
        assert!(!again.is_empty());
        assert_eq!(reused.reset(20), Err(ConfigError::SampleRate(20)));
        assert_eq!(reused.fs(), 360);
    }

    #[test]
    fn rejects_unsupported_rates() {
        assert_eq!(Detector::new(50).err(), Some(ConfigError::SampleRate(50)));
        assert_eq!(
            Detector::new(1000).err(),
            Some(ConfigError::SampleRate(1000))
        );
        assert!(Detector::new(360).is_ok());
    }

    #[test]
    fn finds_synthetic_beats_at_360_hz() {
        let truth = rhythm(0.5, 58.0);
        let x = synth(360, 60.0, &truth, 0.0, 5);
        let got = detect(360, &x);
        // Learning takes ~2.5 s; every beat after that is found within 8 ms.
        assert_matches(360, &truth, &got, 3.0, 3);
        assert!(got.iter().all(|b| !b.search_back));
    }

    #[test]
    fn survives_baseline_wander_and_noise() {
        // Wander of ±1.5 mV (5× the R wave's height above baseline) and
        // ±0.15 mV of noise.
        let truth = rhythm(0.5, 58.0);
        let x = synth(360, 60.0, &truth, 300.0, 30);
        let got = detect(360, &x);
        assert_matches(360, &truth, &got, 3.0, 4);
    }

    #[test]
    fn works_at_the_ads1292r_rate() {
        let truth = rhythm(0.4, 40.0);
        let x = synth(500, 42.0, &truth, 100.0, 10);
        let got = detect(500, &x);
        assert_matches(500, &truth, &got, 3.0, 5);
    }

    #[test]
    fn search_back_recovers_a_small_beat() {
        // Regular 0.8 s rhythm; one beat at 45 % amplitude: its MWI peak is
        // ~20 % of a normal one, under the threshold (~26 % of the signal
        // level) but over half of it.
        let mut truth: Vec<(f64, f64)> = (0..50).map(|i| (0.5 + 0.8 * i as f64, 1.0)).collect();
        truth[30].1 = 0.45;
        let x = synth(360, 41.0, &truth, 0.0, 3);
        let got = detect(360, &x);
        assert_matches(360, &truth, &got, 3.0, 3);
        let small = (truth[30].0 * 360.0).round() as u32;
        let b = got.iter().find(|b| b.r_index.abs_diff(small) <= 3).unwrap();
        assert!(b.search_back, "the small beat needs search-back: {b:?}");
        // It was decided about 1.66 RR after the previous beat, not earlier.
        assert!(b.detected_at > small + (0.8 * 360.0 * 0.5) as u32);
        assert_eq!(got.iter().filter(|b| b.search_back).count(), 1);
    }

    #[test]
    fn flat_and_extreme_inputs_are_safe() {
        assert!(detect(360, &[0i16; 5000]).is_empty());
        // Full-scale square wave: overflow checks (debug) must not trip.
        let x: Vec<i16> = (0..20_000)
            .map(|i| if (i / 7) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut d = Detector::new(MAX_FS).unwrap();
        for &v in &x {
            let _ = d.push(v);
        }
        let mut d = Detector::new(MIN_FS).unwrap();
        for &v in &x {
            let _ = d.push(v);
        }
    }

    #[test]
    fn index_wrap_around_is_harmless() {
        let truth = rhythm(0.5, 30.0);
        let x = synth(360, 31.0, &truth, 0.0, 5);
        let mut d = Detector::new(360).unwrap();
        // Start just below 2^32 so the index wraps mid-recording.
        d.n = u32::MAX - 5000;
        let start = d.n;
        let got: Vec<Beat> = x.iter().flat_map(|&v| d.push(v)).collect();
        let rebased: Vec<Beat> = got
            .iter()
            .map(|b| Beat {
                r_index: b.r_index.wrapping_sub(start),
                ..*b
            })
            .collect();
        assert_matches(360, &truth, &rebased, 3.0, 3);
    }

    #[test]
    fn mit_bih_208_excerpt() {
        let bytes = include_bytes!("../data/mitbih208.i16");
        let x: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(x.len(), 120 * 360);
        let got = detect(360, &x);
        // Record 208 runs at ~97 bpm over its 30 min (2955 beats); 120 s of
        // it, minus the 2.5 s learning phase and two artifacts, is ~190-205.
        assert!((185..=215).contains(&got.len()), "{} beats", got.len());
        // Each R sits on the QRS: its deviation from the baseline (median of
        // ±0.5 s) is at least half of the largest deviation within ±80 ms
        // (PVCs are wide and biphasic: "the extreme" would be too strict). Beats
        // on the two big baseline steps (42.3 s, 96.5 s) may miss: allow 2 %.
        let mut off = 0;
        for b in &got {
            let r = b.r_index as usize;
            let lo = r.saturating_sub(29);
            let hi = (r + 29).min(x.len() - 1);
            let mut seg: Vec<i16> = x[r.saturating_sub(180)..(r + 180).min(x.len())].to_vec();
            seg.sort_unstable();
            let med = seg[seg.len() / 2] as i32;
            let dev = |i: usize| (x[i] as i32 - med).abs();
            let extreme = (lo..=hi).map(dev).max().unwrap();
            if 2 * dev(r) < extreme {
                off += 1;
            }
        }
        assert!(
            off * 50 <= got.len(),
            "{off} of {} R peaks off their QRS",
            got.len()
        );
        // Plausible rhythm: median RR 0.45-0.75 s.
        let mut rr: Vec<u32> = got
            .windows(2)
            .map(|w| w[1].r_index - w[0].r_index)
            .collect();
        rr.sort_unstable();
        let med = rr[rr.len() / 2];
        assert!((162..=270).contains(&med), "median RR {med}");
    }
}
