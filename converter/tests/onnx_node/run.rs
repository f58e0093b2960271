//! Convert a node test's model with medq's converter (calibrated on the
//! test's own inputs) and run the `.mq` file on the medq runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use medq::{Interpreter, Model, PreparedOp};
use medq_converter::calibrate::Method;
use medq_converter::{convert, Options};

use crate::bounds::Measure;
use crate::case::{Case, FloatTensor};

/// [`run`], with a panic anywhere in it reported as this test's failure.
pub fn run_guarded(case: &Case) -> Result<Measure> {
    catch_unwind(AssertUnwindSafe(|| run(case))).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(anyhow!("panicked: {msg}"))
    })
}

/// Convert with every float input fed as a model input; if the converter
/// refuses, once more with every input but the first frozen into the model
/// (node tests feed weights, biases and statistics as inputs, where a
/// deployed model has constants).
pub fn run(case: &Case) -> Result<Measure> {
    let dir = tempfile::tempdir()?;
    let mut refusal = None;
    for only_first in [false, true] {
        let fed = case.fed(only_first);
        if only_first && fed == case.fed(false) {
            break;
        }
        let attempt = dir.path().join(if only_first { "frozen" } else { "fed" });
        std::fs::create_dir_all(&attempt)?;
        let (model, calib) = case.write(&attempt, &fed)?;
        let mq = attempt.join("model.mq");
        let mut opts = Options::new(model, &mq);
        opts.calib = calib;
        // The observed range: no clipping, so the bounds follow from rounding alone.
        opts.method = Method::MinMax;
        opts.golden = false;
        match convert(&opts) {
            Ok(_) => return execute(&mq, &case.fed_values(&fed), case),
            Err(e) => refusal = Some(e),
        }
    }
    match refusal {
        Some(e) => Err(anyhow!("converter: {e}")),
        None => bail!("nothing was converted"),
    }
}

/// Run the `.mq` file once on `inputs` and measure its outputs against the
/// test's expected ones.
fn execute(mq: &Path, inputs: &[(String, FloatTensor)], case: &Case) -> Result<Measure> {
    let bytes = std::fs::read(mq)?;
    let storage = medq::AlignedBuf::from_slice(&bytes);
    let model = Model::parse(storage.as_slice())
        .map_err(|e| anyhow!("the .mq file does not parse: {e:?}"))?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![PreparedOp::EMPTY; model.op_count()];
    let rt = |e: medq::Error| anyhow!("runtime: {e:?}");
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).map_err(rt)?;
    let mut measure = Measure::default();
    for i in 0..model.inputs().len() {
        let info = model.input_info(i).map_err(rt)?;
        let (scale, zp) = info.scale_zero_point().context("input not per-tensor")?;
        measure.step = measure.step.max(scale as f64);
        let x = by_name(inputs, info.name, i).context("a model input the test does not feed")?;
        let dst = interp.input_mut(i).map_err(rt)?;
        if dst.len() != x.data.len() {
            bail!(
                "input {i} holds {} values, the test {}",
                dst.len(),
                x.data.len()
            );
        }
        for (d, &v) in dst.iter_mut().zip(&x.data) {
            *d = medq::quant::quantize(v, scale, zp);
        }
    }
    interp.invoke().map_err(rt)?;
    if model.outputs().len() != case.outputs.len() {
        bail!(
            "{} outputs, the test has {}",
            model.outputs().len(),
            case.outputs.len()
        );
    }
    let expected: Vec<(String, FloatTensor)> = case
        .outputs
        .iter()
        .filter_map(|(n, v)| Some((n.clone(), v.clone()?)))
        .collect();
    for j in 0..model.outputs().len() {
        let info = model.output_info(j).map_err(rt)?;
        let (scale, zp) = info.scale_zero_point().context("output not per-tensor")?;
        measure.step = measure.step.max(scale as f64);
        let want = by_name(&expected, info.name, j).context("an output the test lacks")?;
        let got: Vec<f32> = interp
            .output(j)
            .map_err(rt)?
            .iter()
            .map(|&q| medq::quant::dequantize(q, scale, zp))
            .collect();
        if got.len() != want.data.len() {
            bail!(
                "output \"{}\" has {} values, ONNX expects {} {:?}",
                info.name,
                got.len(),
                want.data.len(),
                want.shape
            );
        }
        measure.add_output(&want.data, &got);
    }
    Ok(measure)
}

/// The tensor named `name`, else the one at `index`.
fn by_name<'a>(
    all: &'a [(String, FloatTensor)],
    name: &str,
    index: usize,
) -> Option<&'a FloatTensor> {
    all.iter()
        .find(|(n, _)| n == name)
        .or_else(|| all.get(index))
        .map(|(_, t)| t)
}
