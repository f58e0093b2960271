//! medq and tract behind one [`Engine`] trait, each running one model on one
//! fixed sample. Only the public APIs are used (`medq::Model`,
//! `medq::Interpreter`; tract's optimized runnable plan), so the harness
//! measures whatever kernels the runtime selects.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use medq::{Interpreter, Model, ModelFile, PreparedOp};
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

/// One inference, the unit every figure is counted in.
pub trait Engine {
    fn infer(&mut self) -> Result<()>;
}

/// The zoo as `side_by_side prepare` converted it: what every later step
/// (host timing, the aarch64 counts) runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub models: Vec<PreparedModel>,
}

/// One converted model and the sample both engines run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreparedModel {
    pub name: String,
    /// The committed ONNX model tract runs (absolute).
    pub onnx: PathBuf,
    /// The `.mq` file medq runs (absolute).
    pub mq: PathBuf,
    /// The model's calibration samples (absolute; `ort_compare.py` calibrates on them).
    pub calib: PathBuf,
    /// The first calibration sample, raw little-endian f32 (absolute).
    pub sample: PathBuf,
    /// The model input's shape, batch 1 first.
    pub input_shape: Vec<usize>,
    /// Multiply-accumulates per inference of the `.mq` model (after pruning).
    pub macs: u64,
    /// The converter's calibration and weight rounding, e.g. `mse + nearest`.
    pub setting: String,
    /// Filters pruning removed, if the zoo prunes the model.
    pub pruned_filters: Option<usize>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn model(&self, name: &str) -> Result<&PreparedModel> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| anyhow!("no model {name:?} in the manifest"))
    }
}

/// A raw little-endian f32 file.
pub fn read_sample(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % 4 != 0 {
        bail!(
            "{}: {} bytes is not a whole number of f32",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The one place the harness creates a medq interpreter, so that a change of
/// `Interpreter::new`'s signature touches one line.
fn interpreter<'m, 'a>(
    model: &'m Model<'a>,
    arena: &'m mut [u8],
    plan: &'m mut [PreparedOp<'a>],
) -> Result<Interpreter<'m, 'a>> {
    Interpreter::new(model, arena, plan).map_err(|e| anyhow!("creating the interpreter: {e}"))
}

/// medq on one sample, float in and float out like tract: each inference
/// quantizes the f32 sample into the arena, invokes, and dequantizes
/// output 0.
pub struct MedqEngine<'m, 'a> {
    interp: Interpreter<'m, 'a>,
    sample: Vec<f32>,
    input_q: (f32, i32),
    output_q: (f32, i32),
    output: Vec<f32>,
}

impl Engine for MedqEngine<'_, '_> {
    fn infer(&mut self) -> Result<()> {
        let (scale, zp) = self.input_q;
        let input = self
            .interp
            .input_mut(0)
            .map_err(|e| anyhow!("input: {e}"))?;
        medq::quant::quantize_slice(&self.sample, scale, zp, input)
            .map_err(|e| anyhow!("input: {e}"))?;
        self.interp.invoke().map_err(|e| anyhow!("invoke: {e}"))?;
        let (scale, zp) = self.output_q;
        let out = self.interp.output(0).map_err(|e| anyhow!("output: {e}"))?;
        self.output.clear();
        self.output
            .extend(out.iter().map(|&q| medq::quant::dequantize(q, scale, zp)));
        Ok(())
    }
}

impl MedqEngine<'_, '_> {
    /// Output 0 of the last inference.
    pub fn output(&self) -> Result<&[i8]> {
        self.interp.output(0).map_err(|e| anyhow!("output: {e}"))
    }
}

/// Load `mq`, quantize `sample` with the model's input quantization, and
/// hand `f` a ready engine.
pub fn with_medq<R>(
    mq: &Path,
    sample: &[f32],
    f: impl FnOnce(&mut MedqEngine<'_, '_>) -> Result<R>,
) -> Result<R> {
    let file = ModelFile::map(mq).map_err(|e| anyhow!("loading {}: {e}", mq.display()))?;
    let model = file
        .model()
        .map_err(|e| anyhow!("parsing {}: {e}", mq.display()))?;
    let info = model.input_info(0).map_err(|e| anyhow!("input 0: {e}"))?;
    if info.len != sample.len() {
        bail!(
            "{}: the input takes {} values, the sample has {}",
            mq.display(),
            info.len,
            sample.len()
        );
    }
    let input_q = info
        .scale_zero_point()
        .ok_or_else(|| anyhow!("{}: input 0 is not int8-quantized", mq.display()))?;
    let output_q = model
        .output_info(0)
        .ok()
        .and_then(|o| o.scale_zero_point())
        .ok_or_else(|| anyhow!("{}: output 0 is not int8-quantized", mq.display()))?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![PreparedOp::EMPTY; model.op_count()];
    let mut engine = MedqEngine {
        interp: interpreter(&model, &mut arena, &mut plan)?,
        sample: sample.to_vec(),
        input_q,
        output_q,
        output: Vec::new(),
    };
    f(&mut engine)
}

/// tract as a user after speed runs it: the input shape fixed, the model
/// optimized (`into_optimized`) and planned once (`into_runnable`), one
/// state reused across inferences, one thread.
pub struct TractEngine {
    state: TypedSimpleState,
    input: Tensor,
}

impl TractEngine {
    pub fn load(onnx: &Path, input_shape: &[usize], sample: &[f32]) -> Result<TractEngine> {
        tract_onnx::prelude::multithread::set_default_executor(
            tract_onnx::prelude::multithread::Executor::SingleThread,
        );
        let plan = tract_onnx::onnx()
            .model_for_path(onnx)
            .with_context(|| format!("tract: loading {}", onnx.display()))?
            .with_input_fact(0, f32::fact(input_shape).into())?
            .into_optimized()
            .context("tract: optimizing")?
            .into_runnable()
            .context("tract: planning")?;
        let state = plan.spawn().context("tract: creating the state")?;
        let input = Tensor::from_shape(input_shape, sample).context("tract: the input")?;
        Ok(TractEngine { state, input })
    }
}

impl Engine for TractEngine {
    fn infer(&mut self) -> Result<()> {
        self.state
            .run(tvec![self.input.clone().into_tvalue()])
            .context("tract: run")?;
        Ok(())
    }
}
