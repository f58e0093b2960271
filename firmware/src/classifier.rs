//! The medq int8 model as the monitor's [`Classifier`], with per-op cost
//! accounting through a [`Clock`] (SysTick under QEMU `-icount`, nothing on
//! the host).

use medq::{Decision, Error, Interpreter, Model, PreparedOp};

use crate::monitor::{Classifier, NUM_CLASSES};
use crate::window::{InputQuant, BEAT_LEN};

/// Ops whose cost is tracked one by one; later ops share the last slot.
pub const MAX_OPS: usize = 24;

/// A monotonic counter (instructions, cycles, ticks: the caller knows).
pub trait Clock {
    /// Current count.
    fn now(&mut self) -> u64;
}

/// A clock that never moves: no cost accounting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClock;

impl Clock for NoClock {
    fn now(&mut self) -> u64 {
        0
    }
}

/// Cost of the inferences so far, in clock units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InferenceStats {
    /// Inferences run.
    pub count: u32,
    /// Sum over all inferences.
    pub total: u64,
    /// Cheapest inference.
    pub min: u64,
    /// Dearest inference.
    pub max: u64,
    /// Sum per op (op `i` in slot `min(i, MAX_OPS − 1)`).
    pub per_op: [u64; MAX_OPS],
    /// Ops in the model.
    pub ops: usize,
}

/// The model input quantization, for [`crate::monitor::MonitorConfig`].
pub fn input_quant(model: &Model<'_>) -> Result<InputQuant, Error> {
    let info = model.input_info(0)?;
    let (scale, zero_point) = info
        .scale_zero_point()
        .ok_or(Error::BadGraph("input 0 is not per-tensor quantized"))?;
    InputQuant::new(scale, zero_point).ok_or(Error::BadGraph("input 0 has an unusable scale"))
}

/// Outcome of [`MedqClassifier::self_test`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SelfTest {
    /// The model reproduced its golden output byte for byte.
    Match,
    /// The output differs from the file's golden output: do not trust this
    /// build (miscompiled kernel, corrupted flash, wrong features).
    Differs,
    /// The file carries no golden pair, so there is nothing to compare.
    NoGoldenPair,
    /// The run itself failed.
    Failed(Error),
}

/// A short name for a runtime error, for logs. Printing errors with `{:?}`
/// would pull core's Debug machinery (escapes, Unicode tables) into flash.
pub fn error_name(e: &Error) -> &'static str {
    match e {
        Error::Truncated | Error::TrailingBytes => "wrong file length",
        Error::BadMagic | Error::UnsupportedVersion(_) | Error::BadHeader => {
            "not a .mq file of this version"
        }
        Error::ChecksumMismatch { .. } => "checksum mismatch",
        Error::Misaligned => "misaligned buffer",
        Error::BadTensor { reason, .. } | Error::BadOp { reason, .. } | Error::BadGraph(reason) => {
            reason
        }
        Error::ArenaTooSmall { .. } => "arena too small",
        Error::NotSigned => "not signed (this firmware takes signed models only)",
        Error::SignatureMismatch => {
            "signature mismatch: changed after signing, or signed with another key"
        }
        Error::BadPublicKey => "the built-in public key is not a valid Ed25519 key",
        Error::LengthMismatch { .. } => "model input/output length is not 140/5",
        _ => "invalid model",
    }
}

/// Runs a beat through a medq interpreter.
pub struct MedqClassifier<'m, 'a, K> {
    interp: Interpreter<'m, 'a>,
    clock: K,
    stats: InferenceStats,
}

impl<'m, 'a, K: Clock> MedqClassifier<'m, 'a, K> {
    /// Wrap an interpreter whose model takes [`BEAT_LEN`] int8 values and
    /// gives [`NUM_CLASSES`].
    pub fn new(mut interp: Interpreter<'m, 'a>, clock: K) -> Result<Self, Error> {
        let ops = interp.model().op_count();
        let got = interp.input_mut(0)?.len();
        if got != BEAT_LEN {
            return Err(Error::LengthMismatch {
                expected: BEAT_LEN,
                got,
            });
        }
        let got = interp.output(0)?.len();
        if got != NUM_CLASSES {
            return Err(Error::LengthMismatch {
                expected: NUM_CLASSES,
                got,
            });
        }
        Ok(MedqClassifier {
            interp,
            clock,
            stats: InferenceStats {
                count: 0,
                total: 0,
                min: u64::MAX,
                max: 0,
                per_op: [0; MAX_OPS],
                ops,
            },
        })
    }

    /// Everything a firmware does with a parsed model before the first
    /// beat, in one place so the QEMU binary and the boards do it alike:
    /// read the input quantization the monitor needs ([`input_quant`]), bind
    /// the model to its arena and op plan, and check it takes a beat and
    /// gives the class scores ([`new`](Self::new)).
    pub fn start(
        model: &'m Model<'a>,
        arena: &'m mut [u8],
        plan: &'m mut [PreparedOp<'a>],
        clock: K,
    ) -> Result<(InputQuant, Self), Error> {
        let quant = input_quant(model)?;
        let interp = Interpreter::new(model, arena, plan)?;
        Ok((quant, Self::new(interp, clock)?))
    }

    /// The boot self-test: run the golden input pair stored in the model
    /// file and compare the output bit for bit (`Interpreter::self_test`).
    pub fn self_test(&mut self) -> SelfTest {
        match self.interp.self_test() {
            Ok(true) => SelfTest::Match,
            Ok(false) => SelfTest::Differs,
            Err(Error::MissingSection(_)) => SelfTest::NoGoldenPair,
            Err(e) => SelfTest::Failed(e),
        }
    }

    /// Cost so far.
    pub fn stats(&self) -> &InferenceStats {
        &self.stats
    }

    /// The interpreter (e.g. for `self_test`).
    pub fn interpreter(&mut self) -> &mut Interpreter<'m, 'a> {
        &mut self.interp
    }
}

impl<K: Clock> Classifier for MedqClassifier<'_, '_, K> {
    type Error = Error;

    fn classify(
        &mut self,
        input: &[i8; BEAT_LEN],
        scores: &mut [i8; NUM_CLASSES],
    ) -> Result<(), Error> {
        for (d, &s) in self.interp.input_mut(0)?.iter_mut().zip(input) {
            *d = s;
        }
        let clock = &mut self.clock;
        let per_op = &mut self.stats.per_op;
        let start = clock.now();
        let mut last = start;
        self.interp.invoke_observed(|k, _, _| {
            let t = clock.now();
            if let Some(slot) = per_op.get_mut(k.min(MAX_OPS - 1)) {
                *slot = slot.wrapping_add(t.wrapping_sub(last));
            }
            last = t;
        })?;
        let cost = last.wrapping_sub(start);
        let s = &mut self.stats;
        s.count = s.count.wrapping_add(1);
        s.total = s.total.wrapping_add(cost);
        s.min = s.min.min(cost);
        s.max = s.max.max(cost);
        let out = self.interp.output(0)?;
        for (d, &v) in scores.iter_mut().zip(out) {
            *d = v;
        }
        Ok(())
    }

    /// The model's decision: [`Decision::Uncertain`] when the top-1
    /// probability leads by less than the file's abstain margin.
    fn decide(&self, scores: &[i8; NUM_CLASSES]) -> Result<Decision, Error> {
        self.interp.model().decide(scores)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use medq::{MetaKey, OpCode, QuantSpec, Writer};
    use std::vec;
    use std::vec::Vec;

    /// A stand-in ECG model whose class probabilities are the first
    /// [`NUM_CLASSES`] input values (a Gather), at the softmax's scale
    /// 1/256 and zero point −128, with abstain margin `margin`.
    fn passthrough_model(margin: Option<&str>) -> medq::AlignedBuf {
        let mut w = Writer::new();
        let q = || QuantSpec::PerTensor {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let x = w.add_activation("beat", &[1, BEAT_LEN], q(), 0);
        let y = w.add_activation("probs", &[1, NUM_CLASSES], q(), BEAT_LEN);
        w.add_op(OpCode::Gather, &[x], &[y], &[1, 0, 1]);
        w.set_inputs(&[x]);
        w.set_outputs(&[y]);
        w.set_arena_len(BEAT_LEN + NUM_CLASSES);
        if let Some(m) = margin {
            w.set_metadata(MetaKey::AbstainMargin, m);
        }
        medq::AlignedBuf::from_slice(&w.finish().unwrap())
    }

    /// The decisions for beats whose first values are each of `probs`
    /// (probabilities × 256).
    fn decisions(margin: Option<&str>, probs: &[[i32; NUM_CLASSES]]) -> Vec<Decision> {
        let buf = passthrough_model(margin);
        let model = Model::parse(buf.as_slice()).unwrap();
        let mut arena = vec![0u8; model.arena_len()];
        let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
        let interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
        let mut c = MedqClassifier::new(interp, NoClock).unwrap();
        probs
            .iter()
            .map(|p| {
                let mut beat = [-128i8; BEAT_LEN];
                for (b, &v) in beat.iter_mut().zip(p) {
                    *b = (v - 128) as i8;
                }
                let mut scores = [0i8; NUM_CLASSES];
                c.classify(&beat, &mut scores).unwrap();
                c.decide(&scores).unwrap()
            })
            .collect()
    }

    #[test]
    fn beats_below_the_files_abstain_margin_are_uncertain() {
        // Leads of 64/256 = 0.25 (at the margin), 63/256 (below), 0 (a tie).
        let probs = [[160, 96, 0, 0, 0], [0, 0, 159, 96, 1], [100, 0, 100, 56, 0]];
        assert_eq!(
            decisions(Some("0.25"), &probs),
            [Decision::Class(0), Decision::Uncertain, Decision::Uncertain]
        );
        assert_eq!(
            decisions(None, &probs),
            [Decision::Class(0), Decision::Class(2), Decision::Class(0)]
        );
    }
}
