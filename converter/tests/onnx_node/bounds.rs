//! The error bound each op's node tests are held to, and the measures they
//! are checked on. `README.md` in this directory explains each choice.

use std::fmt;

/// How far medq's dequantized int8 outputs may be from ONNX's expected ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Largest |int8 − expected| ≤ this many quantization steps, a step
    /// being the largest scale among the model's inputs and outputs.
    Steps(f64),
    /// Centered SQNR ≥ this many dB, on each output. An output whose
    /// expected values are all equal has no signal to measure against; it
    /// is held to [`CONSTANT_FALLBACK`] instead.
    SqnrDb(f64),
    /// Largest |int8 − expected| ≤ this value (probabilities).
    MaxAbs(f64),
}

/// The bound of an output with a constant reference under [`Bound::SqnrDb`].
pub const CONSTANT_FALLBACK: Bound = Bound::Steps(2.0);

/// The project's bound for everything without a tighter derivation.
pub const DEFAULT: Bound = Bound::SqnrDb(25.0);

/// Ops that only move, select or re-label int8 values: the error is the
/// input's rounding plus at most one requantization, ½ step each.
const MOVE: &[&str] = &[
    "Cast",
    "Clip",
    "Concat",
    "Dropout",
    "Flatten",
    "Gather",
    "GlobalMaxPool",
    "Identity",
    "Max",
    "MaxPool",
    "Min",
    "Pad",
    "ReduceMax",
    "ReduceMin",
    "Relu",
    "Reshape",
    "Slice",
    "Split",
    "Squeeze",
    "Tile",
    "Transpose",
    "Unsqueeze",
];

/// Ops with a bounded error of ≤ 2 steps: lookup-table activations (slope
/// L ≤ 3: L·½ + ½ ≤ 2), sums of two rounded operands plus one rounding
/// (½ + ½ + ½), and means of rounded values (Resize's and Upsample's
/// interpolation too).
const TWO_STEPS: &[&str] = &[
    "Add",
    "AveragePool",
    "Elu",
    "Erf",
    "Gelu",
    "GlobalAveragePool",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "ReduceMean",
    "Resize",
    "Sigmoid",
    "Sub",
    "Tanh",
    "Upsample",
];

/// The bound for a test whose nodes have these op types (`Constant` nodes
/// aside): one op's own bound, [`DEFAULT`] for a mix of ops or any op
/// without a tighter one (products, accumulations, recurrences).
pub fn bound_for(ops: &[String]) -> Bound {
    match op_key(ops).as_str() {
        "Softmax" | "LogSoftmax" => Bound::MaxAbs(0.03),
        op if MOVE.contains(&op) => Bound::Steps(1.0),
        op if TWO_STEPS.contains(&op) => Bound::Steps(2.0),
        _ => DEFAULT,
    }
}

/// The op a test is counted under: its one op type besides `Constant`,
/// or the distinct op types joined with `+` (expanded function tests).
pub fn op_key(ops: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for op in ops {
        if op != "Constant" && !distinct.contains(&op.as_str()) {
            distinct.push(op);
        }
    }
    match distinct.as_slice() {
        [] => "Constant".into(),
        d => d.join("+"),
    }
}

/// One test's agreement with the expected outputs.
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// Largest |int8 − expected| over all outputs.
    pub max_abs: f64,
    /// The largest input or output quantization scale.
    pub step: f64,
    /// Per output: centered SQNR in dB (infinite when exact), `None` when
    /// the expected values are all equal.
    pub sqnr_db: Vec<Option<f64>>,
}

impl Measure {
    /// Add one output's values.
    pub fn add_output(&mut self, expected: &[f32], got: &[f32]) {
        let n = expected.len().max(1) as f64;
        let mean = expected.iter().map(|&v| v as f64).sum::<f64>() / n;
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for (&e, &g) in expected.iter().zip(got) {
            let (e, g) = (e as f64, g as f64);
            signal += (e - mean).powi(2);
            noise += (g - e).powi(2);
            self.max_abs = self.max_abs.max((g - e).abs());
        }
        let scale = expected.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        // Equal values up to f32 rounding carry no signal.
        let flat = signal <= n * (scale * 1e-6).powi(2);
        self.sqnr_db.push(match (flat, noise) {
            (true, _) => None,
            (false, 0.0) => Some(f64::INFINITY),
            (false, _) => Some(10.0 * (signal / noise).log10()),
        });
    }

    pub fn steps(&self) -> f64 {
        if self.step > 0.0 {
            self.max_abs / self.step
        } else {
            f64::INFINITY
        }
    }

    fn worst_sqnr(&self) -> Option<f64> {
        self.sqnr_db.iter().flatten().copied().reduce(f64::min)
    }

    /// `Err` with the figure that broke `bound`.
    pub fn check(&self, bound: Bound) -> Result<(), String> {
        match bound {
            Bound::Steps(k) if self.steps() > k => Err(format!(
                "max |error| {:.4} = {:.2} steps > {k}",
                self.max_abs,
                self.steps()
            )),
            Bound::MaxAbs(v) if self.max_abs > v => {
                Err(format!("max |error| {:.4} > {v}", self.max_abs))
            }
            Bound::SqnrDb(db) => {
                if let Some(worst) = self.worst_sqnr().filter(|&w| w < db) {
                    return Err(format!("SQNR {worst:.1} dB < {db} dB"));
                }
                if self.sqnr_db.iter().any(Option::is_none) {
                    return self.check(CONSTANT_FALLBACK);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Bound::Steps(k) => write!(f, "max err ≤ {k} step{}", if *k == 1.0 { "" } else { "s" }),
            Bound::SqnrDb(db) => write!(f, "SQNR ≥ {db} dB"),
            Bound::MaxAbs(v) => write!(f, "max err ≤ {v}"),
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "max err {:.4} ({:.2} steps)", self.max_abs, self.steps())?;
        if let Some(w) = self.worst_sqnr() {
            write!(f, ", SQNR {w:.1} dB")?;
        }
        Ok(())
    }
}
