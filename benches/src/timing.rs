//! Wall-clock timing in interleaved rounds: engine A for a batch of
//! inferences, engine B for a batch, A again, and so on, so that a change of
//! machine load or clock during the run touches every engine alike. Each
//! round gives one per-inference time per engine (batch time / batch size);
//! the figures are the minimum and the median over the rounds.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

/// Per-inference time in microseconds over the rounds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Micros {
    pub min: f64,
    pub median: f64,
}

impl Micros {
    /// From per-round times; `None` for no rounds.
    pub fn of(rounds: &[f64]) -> Option<Micros> {
        let mut v: Vec<f64> = rounds.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Micros { min: v[0], median })
    }
}

/// How long each engine's batch in a round should take; the batch size is
/// chosen per engine from a warm-up so that timer resolution does not matter.
pub const ROUND_TARGET: Duration = Duration::from_millis(20);

/// Time `engines` in `rounds` interleaved rounds; one [`Micros`] per engine.
pub fn interleaved(engines: &mut [&mut dyn Engine], rounds: usize) -> Result<Vec<Micros>> {
    let mut batches = Vec::with_capacity(engines.len());
    for e in engines.iter_mut() {
        batches.push(batch_size(&mut **e)?);
    }
    let mut times = vec![Vec::with_capacity(rounds); engines.len()];
    for _ in 0..rounds {
        for ((e, &batch), t) in engines.iter_mut().zip(&batches).zip(&mut times) {
            let start = Instant::now();
            for _ in 0..batch {
                e.infer()?;
            }
            t.push(start.elapsed().as_secs_f64() * 1e6 / batch as f64);
        }
    }
    times
        .iter()
        .map(|t| Micros::of(t).ok_or_else(|| anyhow::anyhow!("no rounds were run")))
        .collect()
}

/// Warm the engine up (caches, lazy allocations) and return how many
/// inferences take about [`ROUND_TARGET`].
fn batch_size(e: &mut dyn Engine) -> Result<usize> {
    e.infer()?;
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < ROUND_TARGET / 2 || n < 3 {
        e.infer()?;
        n += 1;
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    Ok(((ROUND_TARGET.as_secs_f64() / per).ceil() as usize).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_and_median_of_odd_and_even_counts() {
        assert_eq!(
            Micros::of(&[5.0, 1.0, 3.0]),
            Some(Micros {
                min: 1.0,
                median: 3.0
            })
        );
        assert_eq!(
            Micros::of(&[4.0, 1.0, 3.0, 2.0]),
            Some(Micros {
                min: 1.0,
                median: 2.5
            })
        );
        assert_eq!(Micros::of(&[]), None);
    }

    struct Counting(usize);
    impl Engine for Counting {
        fn infer(&mut self) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
    }

    #[test]
    fn every_engine_runs_in_every_round() {
        let (mut a, mut b) = (Counting(0), Counting(0));
        let t = interleaved(&mut [&mut a, &mut b], 4).unwrap();
        assert_eq!(t.len(), 2);
        // Warm-up (1 + at least 3), then 4 rounds of at least one inference.
        assert!(a.0 >= 8 && b.0 >= 8, "{} {}", a.0, b.0);
        assert!(t.iter().all(|m| m.min <= m.median && m.min >= 0.0));
    }
}
