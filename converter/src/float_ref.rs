//! The float reference: tract runs the original ONNX model, and can report the
//! value of any named tensor. Calibration observes activations through it and
//! the evaluation compares the int8 model against it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::error::ConvertError;

type Plan = Arc<TypedRunnableModel>;

pub struct FloatRef {
    /// Parsed once, with the input fact fixed; cloned per set of outputs.
    model: InferenceModel,
    input_name: String,
    input_shape: Vec<usize>,
    /// One optimized plan per requested list of output names.
    plans: Mutex<HashMap<Vec<String>, Plan>>,
}

fn tract_err(context: &str) -> impl Fn(anyhow::Error) -> ConvertError + '_ {
    move |e| ConvertError::FloatRef(format!("{context}: {e:#}"))
}

impl FloatRef {
    /// Parse `path` with tract and fix its (single) input to `input_shape`.
    pub fn new(path: &Path, input_shape: &[usize]) -> Result<FloatRef, ConvertError> {
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(tract_err(&format!("loading {}", path.display())))?;
        let inputs = model
            .input_outlets()
            .map_err(tract_err("reading inputs"))?
            .to_vec();
        let [input] = inputs[..] else {
            return Err(ConvertError::FloatRef(format!(
                "the model has {} inputs; the float reference supports one",
                inputs.len()
            )));
        };
        let input_name = model.node(input.node).name.clone();
        let model = model
            .with_input_fact(0, f32::fact(input_shape).into())
            .map_err(tract_err("setting the input shape"))?;
        Ok(FloatRef {
            model,
            input_name,
            input_shape: input_shape.to_vec(),
            plans: Mutex::new(HashMap::new()),
        })
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Run one sample and return the float value of each `wanted` tensor
    /// (ONNX tensor names; the model input's name returns the input), in
    /// order, flattened row-major.
    pub fn run(&self, input: &[f32], wanted: &[String]) -> Result<Vec<Vec<f32>>, ConvertError> {
        let expected: usize = self.input_shape.iter().product();
        if input.len() != expected {
            return Err(ConvertError::FloatRef(format!(
                "the input has {} values, the model input {:?} needs {expected}",
                input.len(),
                self.input_shape
            )));
        }
        let mut outputs: Vec<String> = Vec::new();
        for w in wanted {
            if *w != self.input_name && !outputs.contains(w) {
                outputs.push(w.clone());
            }
        }
        let values = if outputs.is_empty() {
            TVec::new()
        } else {
            let plan = self.plan(&outputs)?;
            let x = Tensor::from_shape(&self.input_shape, input)
                .map_err(tract_err("building the input"))?;
            plan.run(tvec![x.into()]).map_err(tract_err("running"))?
        };
        wanted
            .iter()
            .map(|w| {
                if *w == self.input_name {
                    return Ok(input.to_vec());
                }
                let k = outputs.iter().position(|o| o == w).unwrap_or(usize::MAX);
                let v = values
                    .get(k)
                    .ok_or_else(|| ConvertError::FloatRef(format!("no value for \"{w}\"")))?;
                let v = v.cast_to::<f32>().map_err(tract_err(w))?;
                let view = v.to_plain_array_view::<f32>().map_err(tract_err(w))?;
                Ok(view.iter().copied().collect())
            })
            .collect()
    }

    fn plan(&self, outputs: &[String]) -> Result<Plan, ConvertError> {
        // A poisoned lock only means another thread panicked mid-insert; the
        // map is still usable.
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(outputs) {
            return Ok(p.clone());
        }
        let mut model = self.model.clone();
        model
            .select_outputs_by_name(outputs)
            .map_err(tract_err("selecting the requested tensors"))?;
        let plan = model
            .into_optimized()
            .map_err(tract_err("optimizing"))?
            .into_runnable()
            .map_err(tract_err("planning"))?;
        plans.insert(outputs.to_vec(), plan.clone());
        Ok(plan)
    }
}
