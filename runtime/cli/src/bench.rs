//! `medq bench`: time inference in total and per op, and say which kernel
//! ran each op and why faster candidates did not.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Result};
use medq::{Interpreter, Model};

/// Rounds the iterations are split into; each round gives one per-inference
/// time, and the report gives their median and minimum.
pub const ROUNDS: usize = 25;

/// Microseconds per inference over the rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub median_us: f64,
    pub min_us: f64,
}

impl Timing {
    /// Median and minimum of per-round times (at least one).
    fn of(mut rounds: Vec<f64>) -> Timing {
        rounds.sort_by(f64::total_cmp);
        let n = rounds.len();
        let median_us = match n {
            0 => 0.0,
            _ if n % 2 == 1 => rounds[n / 2],
            _ => (rounds[n / 2 - 1] + rounds[n / 2]) / 2.0,
        };
        Timing {
            median_us,
            min_us: rounds.first().copied().unwrap_or(0.0),
        }
    }
}

/// One op's line of the report.
#[derive(Clone, Debug)]
pub struct OpBench {
    /// The op's index in the model.
    pub index: usize,
    /// The op code's name, e.g. `Conv`.
    pub op: &'static str,
    /// The kernel that ran it, e.g. `conv_s8` (reference) or `conv_s8_avx2`.
    pub kernel: &'static str,
    /// Optimized candidates that do not take this op here, with the reason.
    pub refused: Vec<(&'static str, &'static str)>,
    pub time: Timing,
    /// Multiply-accumulates per inference.
    pub macs: u64,
}

/// What `medq bench` measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub iterations: usize,
    pub rounds: usize,
    pub arena_bytes: usize,
    /// Per inference, timed without the per-op clock reads.
    pub total: Timing,
    pub ops: Vec<OpBench>,
}

/// G MAC/s of `macs` in `us` microseconds (0 when there is nothing to divide).
fn gmacs(macs: u64, us: f64) -> f64 {
    if us > 0.0 {
        macs as f64 / us / 1e3
    } else {
        0.0
    }
}

/// `medq bench`: `iterations` timed inferences as a whole and `iterations`
/// more timed op by op, each split into [`ROUNDS`] rounds (fewer if
/// `iterations` is smaller), after a short warm-up. The inputs hold a fixed
/// pattern; the kernels' time does not depend on the values.
pub fn bench(model: &Model, iterations: usize) -> Result<BenchReport> {
    if iterations == 0 {
        bail!("--iterations must be at least 1: 0 inferences cannot be timed");
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(model, &mut arena, &mut plan)?;
    for i in 0..interp.input_count() {
        for (j, v) in interp.input_mut(i)?.iter_mut().enumerate() {
            *v = (j % 64) as i8 - 32;
        }
    }
    for _ in 0..iterations.min(10) {
        interp.invoke()?;
    }
    let rounds = iterations.min(ROUNDS);
    let ops = interp.ops().len();
    let mut totals = Vec::with_capacity(rounds);
    let mut per_op = vec![Vec::with_capacity(rounds); ops];
    let mut sums = vec![0f64; ops];
    for r in 0..rounds {
        let size = iterations / rounds + usize::from(r < iterations % rounds);
        let start = Instant::now();
        for _ in 0..size {
            interp.invoke()?;
        }
        totals.push(start.elapsed().as_secs_f64() * 1e6 / size as f64);
        sums.fill(0.0);
        for _ in 0..size {
            let mut last = Instant::now();
            interp.invoke_observed(|k, _, _| {
                let now = Instant::now();
                if let Some(t) = sums.get_mut(k) {
                    *t += (now - last).as_secs_f64();
                }
                last = now;
            })?;
        }
        for (times, t) in per_op.iter_mut().zip(&sums) {
            times.push(t * 1e6 / size as f64);
        }
    }
    let ops = interp
        .ops()
        .iter()
        .zip(per_op)
        .map(|(op, times)| {
            let mut refused = Vec::new();
            op.candidates(|name, takes| {
                if let Err(reason) = takes {
                    refused.push((name, reason));
                }
            });
            Ok(OpBench {
                index: usize::from(op.index()),
                op: model.op(usize::from(op.index()))?.opcode.name(),
                kernel: op.kernel(),
                refused,
                time: Timing::of(times),
                macs: op.macs(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(BenchReport {
        iterations,
        rounds,
        arena_bytes: model.arena_len(),
        total: Timing::of(totals),
        ops,
    })
}

impl BenchReport {
    pub fn macs(&self) -> u64 {
        self.ops.iter().map(|o| o.macs).sum()
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let t = &self.total;
        let _ = writeln!(
            s,
            "{} inferences in {} rounds; per inference: median {:.2} µs, min {:.2} µs ({:.0} inferences/s)",
            self.iterations,
            self.rounds,
            t.median_us,
            t.min_us,
            1e6 / t.median_us.max(f64::MIN_POSITIVE)
        );
        let _ = writeln!(
            s,
            "{} MACs per inference, {:.3} G MAC/s; arena {} bytes\n",
            self.macs(),
            gmacs(self.macs(), t.median_us),
            self.arena_bytes
        );
        let _ = writeln!(
            s,
            "{:>4}  {:<15} {:<26} {:>11} {:>10} {:>6} {:>11} {:>8}",
            "#", "op", "kernel", "median µs", "min µs", "share", "MACs", "G MAC/s"
        );
        let op_total: f64 = self.ops.iter().map(|o| o.time.median_us).sum();
        for o in &self.ops {
            let _ = writeln!(
                s,
                "{:>4}  {:<15} {:<26} {:>11.2} {:>10.2} {:>5.1}% {:>11} {:>8.3}",
                o.index,
                o.op,
                o.kernel,
                o.time.median_us,
                o.time.min_us,
                100.0 * o.time.median_us / op_total.max(f64::MIN_POSITIVE),
                o.macs,
                gmacs(o.macs, o.time.median_us)
            );
            for (name, reason) in &o.refused {
                let _ = writeln!(s, "{:>6}refused {name}: {reason}", "");
            }
        }
        s
    }

    /// The report as JSON (schema `medq-bench/1`):
    ///
    /// ```text
    /// { "schema": "medq-bench/1", "iterations": int, "rounds": int,
    ///   "arena_bytes": int, "macs": int,
    ///   "total_us": { "median": float, "min": float },   // per inference
    ///   "gmacs": float,                                  // at the median
    ///   "ops": [ { "index": int, "op": "Conv", "kernel": "conv_s8",
    ///              "refused": [ { "kernel": str, "reason": str } ],
    ///              "us": { "median": float, "min": float },
    ///              "macs": int, "gmacs": float } ] }
    /// ```
    pub fn json(&self) -> String {
        let timing = |t: &Timing| {
            format!(
                "{{\"median\": {:.3}, \"min\": {:.3}}}",
                t.median_us, t.min_us
            )
        };
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|o| {
                let refused: Vec<String> = o
                    .refused
                    .iter()
                    .map(|(k, r)| format!("{{\"kernel\": {}, \"reason\": {}}}", json_str(k), json_str(r)))
                    .collect();
                format!(
                    "    {{\"index\": {}, \"op\": {}, \"kernel\": {}, \"refused\": [{}], \"us\": {}, \"macs\": {}, \"gmacs\": {:.4}}}",
                    o.index,
                    json_str(o.op),
                    json_str(o.kernel),
                    refused.join(", "),
                    timing(&o.time),
                    o.macs,
                    gmacs(o.macs, o.time.median_us)
                )
            })
            .collect();
        format!(
            "{{\n  \"schema\": \"medq-bench/1\",\n  \"iterations\": {},\n  \"rounds\": {},\n  \"arena_bytes\": {},\n  \"macs\": {},\n  \"total_us\": {},\n  \"gmacs\": {:.4},\n  \"ops\": [\n{}\n  ]\n}}\n",
            self.iterations,
            self.rounds,
            self.arena_bytes,
            self.macs(),
            timing(&self.total),
            gmacs(self.macs(), self.total.median_us),
            ops.join(",\n")
        )
    }
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_and_min() {
        let t = Timing::of(vec![5.0, 1.0, 3.0]);
        assert_eq!((t.median_us, t.min_us), (3.0, 1.0));
        let t = Timing::of(vec![4.0, 1.0, 3.0, 10.0]);
        assert_eq!((t.median_us, t.min_us), (3.5, 1.0));
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }
}
