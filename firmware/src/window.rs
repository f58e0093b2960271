//! Beat windows: cut around an R peak, resample to the model's input length,
//! z-normalise like ECG5000 and quantize to the model's int8 input.
//!
//! Everything up to the int8 tensor is integer arithmetic, so the host
//! (golden files) and every Cortex-M core produce the same bytes:
//! - linear resampling keeps the exact numerator `x[k]·(D − f) + x[k+1]·f`
//!   (scale D = `BEAT_LEN − 1` for every point; z-normalisation cancels it);
//! - mean and standard deviation are 64-bit integers up to one integer
//!   square root (`u64::isqrt`, floor);
//! - the real quantization scale enters once, as a fixed-point reciprocal
//!   computed from the `f32`'s bits by integer division (no float code).
//!
//! ECG5000 beats are z-normalised with the sample standard deviation (n − 1):
//! the training set's per-beat population std is sqrt(139/140) = 0.9964.

/// Samples per beat at the model input (ECG5000).
pub const BEAT_LEN: usize = 140;

/// Longest window, in input samples, that may be resampled.
pub const MAX_WINDOW: usize = 1024;

/// Fraction bits of the fixed-point reciprocal scale and standard deviation.
const FRAC_BITS: u32 = 24;

/// Where the window sits around the R peak, in input samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WindowConfig {
    /// Samples before the R peak.
    pub pre: u32,
    /// Samples after the R peak.
    pub post: u32,
}

impl WindowConfig {
    /// A window of `pre_ms` before and `post_ms` after the R peak at `fs`.
    pub const fn from_ms(fs: u32, pre_ms: u32, post_ms: u32) -> WindowConfig {
        WindowConfig {
            pre: pre_ms * fs / 1000,
            post: post_ms * fs / 1000,
        }
    }

    /// ECG5000-like placement: the beats of ECG5000 start at the QRS (their
    /// QRS deflection sits at samples 3–5 of 140) and span about one beat,
    /// so 25 ms before to 675 ms after the R peak (R lands near sample 5).
    pub const fn ecg5000(fs: u32) -> WindowConfig {
        WindowConfig::from_ms(fs, 25, 675)
    }

    /// Samples in the window (R peak included).
    pub const fn len(&self) -> u32 {
        self.pre + self.post + 1
    }

    /// Never empty: the R sample is always in.
    pub const fn is_empty(&self) -> bool {
        false
    }
}

/// Why a window could not be turned into a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WindowError {
    /// Fewer than two or more than [`MAX_WINDOW`] samples.
    Length(usize),
    /// A sample of the window was not available.
    Missing(usize),
}

/// The model input's affine quantization, prepared for integer math.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InputQuant {
    /// round(2^24 / scale), ≤ 2^32.
    inv_scale: i64,
    zero_point: i32,
}

impl InputQuant {
    /// A placeholder that quantizes everything to 0 (all bits zero, so a
    /// `static` holding it lands in .bss, not in flash-backed .data).
    pub const NONE: InputQuant = InputQuant {
        inv_scale: 0,
        zero_point: 0,
    };

    /// From the model input tensor's `scale` and `zero_point`. `None` for a
    /// scale that is not finite, not positive, or outside [2^-8, 2^25)
    /// (an int8 z-score input needs about 12/127; 2^-8 would clip at |z| > 0.5).
    ///
    /// The reciprocal is computed from the `f32`'s bits with integer
    /// division, rounded half up: exact, and the same on every target
    /// (no soft-float code on cores without an FPU either).
    pub fn new(scale: f32, zero_point: i32) -> Option<InputQuant> {
        let bits = scale.to_bits();
        let exp = (bits >> 23) & 0xFF;
        // Positive, normal (the range check excludes subnormals anyway).
        if bits >> 31 != 0 || exp == 0 || exp == 0xFF {
            return None;
        }
        // scale = m · 2^(exp − 150) with m a 24-bit integer, so
        // 2^24 / scale = 2^(174 − exp) / m.
        let m = u64::from((bits & 0x7F_FFFF) | 0x80_0000);
        let p = 174u32.checked_sub(exp)?;
        // scale ≥ 2^-8 ⇔ exp ≥ 119 ⇔ p ≤ 55; scale < 2^25 ⇔ p ≥ 23.
        if !(23..=55).contains(&p) {
            return None;
        }
        let inv_scale = ((1u64 << p) + m / 2) / m;
        if inv_scale == 0 {
            return None;
        }
        Some(InputQuant {
            inv_scale: inv_scale as i64,
            zero_point,
        })
    }

    /// The zero point.
    pub const fn zero_point(&self) -> i32 {
        self.zero_point
    }
}

/// Linear resampling of `len` input samples, read through `get`, to
/// [`BEAT_LEN`] points. Output `i` is at input position `i·(len−1)/(BEAT_LEN−1)`
/// and is returned multiplied by `BEAT_LEN − 1` (exact, no rounding).
pub fn resample_with(
    len: usize,
    get: impl Fn(usize) -> Option<i16>,
    out: &mut [i32; BEAT_LEN],
) -> Result<(), WindowError> {
    if !(2..=MAX_WINDOW).contains(&len) {
        return Err(WindowError::Length(len));
    }
    let den = (BEAT_LEN - 1) as u32;
    let span = (len - 1) as u32;
    for (i, o) in out.iter_mut().enumerate() {
        let num = i as u32 * span; // ≤ 139 · 1023
        let k = (num / den) as usize;
        let f = (num % den) as i32;
        let a = i32::from(get(k).ok_or(WindowError::Missing(k))?);
        let b = if f == 0 {
            0
        } else {
            i32::from(get(k + 1).ok_or(WindowError::Missing(k + 1))?)
        };
        *o = a * (den as i32 - f) + b * f;
    }
    Ok(())
}

/// [`resample_with`] over a slice.
pub fn resample(x: &[i16], out: &mut [i32; BEAT_LEN]) -> Result<(), WindowError> {
    resample_with(x.len(), |k| x.get(k).copied(), out)
}

/// z-normalise (sample std) and quantize: `q = round(z / scale) + zero_point`,
/// rounding halves away from zero, saturated to int8. A flat beat (std 0)
/// maps to the zero point.
///
/// 64-bit integer arithmetic throughout (cheap on Cortex-M, no 128-bit
/// helpers): with d = n·(y − mean), z = d / sqrt(Σd² / (n − 1)). Wide beats
/// drop a few low bits of d first so that Σd² fits 64 bits; ECG-sized data
/// (|x| < 2^12 at the input) never needs to.
pub fn normalize_quantize(y: &[i32; BEAT_LEN], quant: &InputQuant, out: &mut [i8; BEAT_LEN]) {
    let n = BEAT_LEN as i64;
    // |y| < 2^15 · 139 < 2^22.2 ⇒ |sum| < 2^29.3 and |d| ≤ n · (max − min) < 2^30.3.
    let sum: i64 = y.iter().map(|&v| i64::from(v)).sum();
    let max_d = y
        .iter()
        .map(|&v| (n * i64::from(v) - sum).unsigned_abs())
        .max()
        .unwrap_or(0);
    // |d'| < 2^28 ⇒ Σd'² < 140 · 2^56 < 2^63.2.
    let drop = (u64::BITS - max_d.leading_zeros()).saturating_sub(28);
    let d = |v: i32| (n * i64::from(v) - sum) >> drop;
    let ss: u64 = y.iter().map(|&v| d(v).unsigned_abs().pow(2)).sum();
    if ss == 0 {
        let zp = quant.zero_point.clamp(-128, 127) as i8;
        out.fill(zp);
        return;
    }
    // n·std in fixed point with f fraction bits: as many as fit, up to 24.
    let f = (ss.leading_zeros() / 2).min(FRAC_BITS);
    let std_q = ((ss << (2 * f)) / (n as u64 - 1)).isqrt();
    // q = d / (n·std) / scale = d · inv_scale_q24 / (std_q · 2^(24 − f)).
    // std_q < 2^32 − f ⇒ den < 2^56; |d| < 2^28 and inv_scale ≤ 2^32 ⇒ |num| < 2^60.
    let den = (std_q << (FRAC_BITS - f)) as i64;
    for (o, &v) in out.iter_mut().zip(y) {
        let q = div_round_half_away(d(v) * quant.inv_scale, den);
        *o = q
            .saturating_add(i64::from(quant.zero_point))
            .clamp(-128, 127) as i8;
    }
}

/// Cut, resample, normalise and quantize in one go.
pub fn beat_input(
    len: usize,
    get: impl Fn(usize) -> Option<i16>,
    quant: &InputQuant,
    out: &mut [i8; BEAT_LEN],
) -> Result<(), WindowError> {
    let mut y = [0i32; BEAT_LEN];
    resample_with(len, get, &mut y)?;
    normalize_quantize(&y, quant, out);
    Ok(())
}

/// `round(a / b)` with halves away from zero, for `b > 0` (0 otherwise).
fn div_round_half_away(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return 0;
    }
    // Even b: a remainder of exactly b/2 is a tie and rounds away; odd b:
    // b/2 truncates, which never produces a false tie.
    let half = b / 2;
    let num = if a >= 0 {
        a.saturating_add(half)
    } else {
        a.saturating_sub(half)
    };
    num / b
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Float reference: numpy-style interpolation, z-normalisation with
    /// ddof = 1, then round-half-away quantization.
    fn reference(x: &[i16], scale: f32, zp: i32) -> Vec<i32> {
        let len = x.len();
        let y: Vec<f64> = (0..BEAT_LEN)
            .map(|i| {
                let pos = i as f64 * (len - 1) as f64 / (BEAT_LEN - 1) as f64;
                let k = (pos.floor() as usize).min(len - 2);
                let f = pos - k as f64;
                x[k] as f64 * (1.0 - f) + x[k + 1] as f64 * f
            })
            .collect();
        let mean = y.iter().sum::<f64>() / BEAT_LEN as f64;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (BEAT_LEN - 1) as f64;
        let std = var.sqrt();
        y.iter()
            .map(|v| {
                let z = if std == 0.0 { 0.0 } else { (v - mean) / std };
                ((z / scale as f64).round() as i32 + zp).clamp(-128, 127)
            })
            .collect()
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    #[test]
    fn resampling_hits_the_ends_and_interpolates() {
        // 279 samples → 140: output i sits at input 2i exactly.
        let x: Vec<i16> = (0..279).map(|i| (i * 3 - 400) as i16).collect();
        let mut y = [0; BEAT_LEN];
        resample(&x, &mut y).unwrap();
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, x[2 * i] as i32 * 139);
        }
        // 3 samples → 140: a ramp from 0 to 139·2 at every point.
        resample(&[0, 1, 2], &mut y).unwrap();
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, 2 * i as i32);
        }
        assert_eq!(resample(&[1], &mut y), Err(WindowError::Length(1)));
        assert_eq!(
            resample_with(10, |k| if k < 5 { Some(0) } else { None }, &mut y),
            Err(WindowError::Missing(5))
        );
    }

    #[test]
    fn matches_the_float_reference() {
        let mut rng = Lcg(7);
        let mut exact = 0;
        let mut total = 0;
        for trial in 0..300 {
            let len = 2 + (rng.next() as usize % 600);
            let amp = 1 + rng.next() % if trial % 3 == 0 { 32767 } else { 600 };
            let x: Vec<i16> = (0..len)
                .map(|_| ((rng.next() % (2 * amp + 1)) as i32 - amp as i32) as i16)
                .collect();
            let scale = 0.01 + (rng.next() % 1000) as f32 / 20000.0;
            let zp = (rng.next() % 41) as i32 - 20;
            let q = InputQuant::new(scale, zp).unwrap();
            let mut out = [0i8; BEAT_LEN];
            beat_input(len, |k| x.get(k).copied(), &q, &mut out).unwrap();
            let want = reference(&x, scale, zp);
            for (a, b) in out.iter().zip(&want) {
                assert!((*a as i32 - b).abs() <= 1, "len {len}: {a} vs {b}");
                exact += (*a as i32 == *b) as u32;
                total += 1;
            }
        }
        // Off-by-one only where the float result sits on a rounding tie.
        assert!(exact * 1000 >= total * 999, "{exact}/{total} exact");
    }

    #[test]
    fn flat_and_full_scale_windows() {
        let q = InputQuant::new(0.05, 3).unwrap();
        let mut out = [0i8; BEAT_LEN];
        beat_input(300, |_| Some(-1234), &q, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 3));
        // Alternating extremes: |z| ≈ 1 ⇒ ±20 + 3.
        let x: Vec<i16> = (0..279)
            .map(|i| if i % 4 < 2 { i16::MAX } else { i16::MIN })
            .collect();
        beat_input(x.len(), |k| x.get(k).copied(), &q, &mut out).unwrap();
        let want = reference(&x, 0.05, 3);
        for (a, b) in out.iter().zip(&want) {
            assert!((*a as i32 - b).abs() <= 1);
        }
        // The smallest scale saturates instead of overflowing.
        let q = InputQuant::new(1.0 / 256.0, 0).unwrap();
        beat_input(x.len(), |k| x.get(k).copied(), &q, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 127 || v == -128));
    }

    #[test]
    fn bad_scales_are_refused() {
        assert!(InputQuant::new(0.0, 0).is_none());
        assert!(InputQuant::new(-1.0, 0).is_none());
        assert!(InputQuant::new(f32::NAN, 0).is_none());
        assert!(InputQuant::new(f32::INFINITY, 0).is_none());
        assert!(InputQuant::new(1e-20, 0).is_none());
        assert!(InputQuant::new(0.003, 0).is_none()); // below 2^-8
        assert!(InputQuant::new(4e7, 0).is_none()); // above 2^25
        assert!(InputQuant::new(f32::MIN_POSITIVE / 2.0, 0).is_none());
    }

    #[test]
    fn reciprocal_scale_is_exactly_rounded() {
        // 2^24 / 0.5 = 2^25 exactly; 2^24 / 3 = 5592405.33 → 5592405;
        // 2^24 / 0.1f32 = 2^51 / 13421773 = 167772157.50000003 → …158.
        assert_eq!(InputQuant::new(0.5, 0).unwrap().inv_scale, 1 << 25);
        assert_eq!(InputQuant::new(3.0, 0).unwrap().inv_scale, 5_592_405);
        assert_eq!(InputQuant::new(0.1, 0).unwrap().inv_scale, 167_772_158);
        assert_eq!(InputQuant::new(1.0 / 256.0, 7).unwrap().inv_scale, 1 << 32);
        assert_eq!(InputQuant::new(0.5, 7).unwrap().zero_point(), 7);
    }

    #[test]
    fn windows_follow_the_sample_rate() {
        assert_eq!(
            WindowConfig::ecg5000(360),
            WindowConfig { pre: 9, post: 243 }
        );
        assert_eq!(WindowConfig::ecg5000(500).len(), 12 + 337 + 1);
    }
}
