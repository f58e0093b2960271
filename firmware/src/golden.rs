//! Golden beat outputs: what the host runtime computed for every beat of the
//! replayed recording, for the device to compare against byte for byte.
//!
//! Layout (little-endian):
//! - header, 16 bytes: `b"MQEG"`, version `u16` = 1, classes `u16`, beat
//!   count `u32`, input length `u16`, 2 reserved zero bytes;
//! - per beat, 16 bytes: R index `u32`, FNV-1a of the int8 model input `u32`,
//!   the int8 scores (`classes` bytes, ≤ 8), zero padding.
//!
//! The input hash tells a window difference (pipeline) from an output
//! difference (runtime) when a beat does not match.

use crate::monitor::{BeatReport, NUM_CLASSES};
use crate::window::BEAT_LEN;

/// File magic.
pub const MAGIC: [u8; 4] = *b"MQEG";
/// Format version.
pub const VERSION: u16 = 1;
/// Header bytes.
pub const HEADER_LEN: usize = 16;
/// Bytes per beat.
pub const RECORD_LEN: usize = 16;

/// One expected beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GoldenBeat {
    /// Sample index of the R peak.
    pub r_index: u32,
    /// [`fnv1a`] of the model input.
    pub input_hash: u32,
    /// Model output.
    pub scores: [i8; NUM_CLASSES],
}

impl GoldenBeat {
    /// The record bytes.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        let (head, tail) = r.split_at_mut(8);
        head[..4].copy_from_slice(&self.r_index.to_le_bytes());
        head[4..].copy_from_slice(&self.input_hash.to_le_bytes());
        for (d, &s) in tail.iter_mut().zip(&self.scores) {
            *d = s as u8;
        }
        r
    }
}

/// The header bytes for `count` beats.
pub fn encode_header(count: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(NUM_CLASSES as u16).to_le_bytes());
    h[8..12].copy_from_slice(&count.to_le_bytes());
    h[12..14].copy_from_slice(&(BEAT_LEN as u16).to_le_bytes());
    h
}

/// 32-bit FNV-1a over the input bytes.
pub fn fnv1a(input: &[i8]) -> u32 {
    input.iter().fold(0x811C_9DC5u32, |h, &b| {
        (h ^ u32::from(b as u8)).wrapping_mul(0x0100_0193)
    })
}

/// A parsed golden file.
#[derive(Debug, Clone, Copy)]
pub struct Golden<'a> {
    records: &'a [u8],
}

impl<'a> Golden<'a> {
    /// Check the header and length; `None` if the file does not fit this
    /// firmware (other version, class count or input length).
    pub fn parse(bytes: &'a [u8]) -> Option<Golden<'a>> {
        let (head, records) = bytes.split_at_checked(HEADER_LEN)?;
        let u16_at = |i: usize| {
            head.get(i..i + 2)
                .and_then(|s| s.first_chunk::<2>())
                .map(|b| u16::from_le_bytes(*b))
        };
        let count = head
            .get(8..12)
            .and_then(|s| s.first_chunk::<4>())
            .map(|b| u32::from_le_bytes(*b))?;
        let ok = head.get(..4) == Some(&MAGIC[..])
            && u16_at(4) == Some(VERSION)
            && u16_at(6) == Some(NUM_CLASSES as u16)
            && u16_at(12) == Some(BEAT_LEN as u16)
            && records.len() == count as usize * RECORD_LEN;
        ok.then_some(Golden { records })
    }

    /// Beats in the file.
    pub fn len(&self) -> usize {
        self.records.len() / RECORD_LEN
    }

    /// Whether the file has no beats.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Beat `i`.
    pub fn get(&self, i: usize) -> Option<GoldenBeat> {
        let r = self.records.get(i * RECORD_LEN..(i + 1) * RECORD_LEN)?;
        let word = |k: usize| {
            r.get(k..k + 4)
                .and_then(|s| s.first_chunk::<4>())
                .map(|b| u32::from_le_bytes(*b))
        };
        let mut scores = [0i8; NUM_CLASSES];
        for (d, &s) in scores.iter_mut().zip(r.get(8..)?) {
            *d = s as i8;
        }
        Some(GoldenBeat {
            r_index: word(0)?,
            input_hash: word(4)?,
            scores,
        })
    }
}

/// How one beat compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Same R index, input and output bytes.
    Match,
    /// Different; the expected beat is attached.
    Mismatch(GoldenBeat),
    /// More beats than the golden file has.
    Extra,
}

/// Compares a run, beat by beat, with a golden file.
#[derive(Debug, Clone, Copy)]
pub struct GoldenCheck<'a> {
    golden: Golden<'a>,
    next: usize,
    mismatches: u32,
}

impl<'a> GoldenCheck<'a> {
    /// Start at the first beat.
    pub fn new(golden: Golden<'a>) -> Self {
        GoldenCheck {
            golden,
            next: 0,
            mismatches: 0,
        }
    }

    /// Compare the next beat.
    pub fn check(&mut self, beat: &BeatReport, input: &[i8; BEAT_LEN]) -> Verdict {
        let Some(want) = self.golden.get(self.next) else {
            self.mismatches = self.mismatches.saturating_add(1);
            return Verdict::Extra;
        };
        self.next += 1;
        let got = GoldenBeat {
            r_index: beat.r_index,
            input_hash: fnv1a(input),
            scores: beat.scores,
        };
        if got == want {
            Verdict::Match
        } else {
            self.mismatches = self.mismatches.saturating_add(1);
            Verdict::Mismatch(want)
        }
    }

    /// Beats compared so far.
    pub fn checked(&self) -> usize {
        self.next
    }

    /// Beats that differed (or were extra).
    pub fn mismatches(&self) -> u32 {
        self.mismatches
    }

    /// Every golden beat was seen and all matched.
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.next == self.golden.len()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn report(r_index: u32, scores: [i8; NUM_CLASSES]) -> BeatReport {
        BeatReport {
            seq: 0,
            r_index,
            scores,
            decision: medq::Decision::Class(0),
            search_back: false,
            abnormal_recent: 0,
            uncertain_recent: 0,
            alert: false,
            alert_changed: false,
        }
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(&[]), 0x811C_9DC5);
        assert_eq!(fnv1a(&[b'a' as i8]), 0xE40C_292C);
        let foobar: Vec<i8> = b"foobar".iter().map(|&b| b as i8).collect();
        assert_eq!(fnv1a(&foobar), 0xBF9C_F968);
    }

    #[test]
    fn round_trip_and_compare() {
        let input = [3i8; BEAT_LEN];
        let beats = [
            GoldenBeat {
                r_index: 944,
                input_hash: fnv1a(&input),
                scores: [100, -128, -3, 0, 27],
            },
            GoldenBeat {
                r_index: 1130,
                input_hash: fnv1a(&input),
                scores: [-128, 127, 0, 0, 1],
            },
        ];
        let mut file = encode_header(2).to_vec();
        for b in &beats {
            file.extend_from_slice(&b.encode());
        }
        assert_eq!(&file[..4], b"MQEG");
        assert_eq!(file.len(), 16 + 2 * 16);
        let g = Golden::parse(&file).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.get(1), Some(beats[1]));
        assert_eq!(g.get(2), None);

        let mut c = GoldenCheck::new(g);
        assert_eq!(
            c.check(&report(944, [100, -128, -3, 0, 27]), &input),
            Verdict::Match
        );
        assert!(!c.passed(), "one beat still missing");
        // One output byte off.
        assert_eq!(
            c.check(&report(1130, [-128, 127, 0, 0, 2]), &input),
            Verdict::Mismatch(beats[1])
        );
        assert_eq!(c.check(&report(1300, [0; 5]), &input), Verdict::Extra);
        assert_eq!(c.mismatches(), 2);
        assert!(!c.passed());

        let mut c = GoldenCheck::new(g);
        c.check(&report(944, [100, -128, -3, 0, 27]), &input);
        c.check(&report(1130, [-128, 127, 0, 0, 1]), &input);
        assert!(c.passed());
    }

    #[test]
    fn foreign_files_are_refused() {
        let mut file = encode_header(1).to_vec();
        file.extend_from_slice(&[0; RECORD_LEN]);
        assert!(Golden::parse(&file).is_some());
        assert!(Golden::parse(&file[..file.len() - 1]).is_none());
        let mut bad = file.clone();
        bad[6] = 4; // four classes
        assert!(Golden::parse(&bad).is_none());
        let mut bad = file.clone();
        bad[0] = b'X';
        assert!(Golden::parse(&bad).is_none());
        assert!(Golden::parse(&[]).is_none());
    }
}
