//! One ONNX node test on disk: its model, its inputs and expected outputs
//! (`test_data_set_0/{input,output}_K.pb`), and the model medq is given —
//! the same graph, with the inputs that are parameters frozen into
//! initializers from the test's own data.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{type_proto, ModelProto, TensorProto, ValueInfoProto};

/// A float tensor of the test's data.
#[derive(Clone, Debug)]
pub struct FloatTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A loaded node test.
pub struct Case {
    pub name: String,
    pub model: ModelProto,
    /// The op types of the graph's nodes, in order.
    pub ops: Vec<String>,
    /// Graph inputs (initializers excluded) and their test values.
    pub inputs: Vec<(ValueInfoProto, TensorProto)>,
    /// Graph outputs and their expected values (`None`: not a float tensor).
    pub outputs: Vec<(String, Option<FloatTensor>)>,
}

/// The element type of a graph input or output, if it is a tensor.
pub fn elem_type(v: &ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t.elem_type),
    }
}

/// ONNX's name for a data type code.
pub fn dtype_name(code: i32) -> &'static str {
    DataType::try_from(code).map_or("UNKNOWN", |t| t.as_str_name())
}

fn read_proto<M: Message + Default>(path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    M::decode(&bytes[..]).with_context(|| format!("decoding {}", path.display()))
}

/// The op types of `dir/model.onnx` (default domain only; other domains
/// are reported as `domain:Op`, which no supported-op list holds).
pub fn read_model(dir: &Path) -> Result<(ModelProto, Vec<String>)> {
    let model: ModelProto = read_proto(&dir.join("model.onnx"))?;
    let graph = model.graph.as_ref().context("model.onnx has no graph")?;
    let ops = graph
        .node
        .iter()
        .map(|n| match n.domain.as_str() {
            "" | "ai.onnx" => n.op_type.clone(),
            d => format!("{d}:{}", n.op_type),
        })
        .collect();
    Ok((model, ops))
}

/// A float32 `TensorProto`'s values (`raw_data` or `float_data`).
pub fn float_values(t: &TensorProto) -> Option<FloatTensor> {
    if t.data_type != DataType::Float as i32 {
        return None;
    }
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    (data.len() == shape.iter().product::<usize>()).then_some(FloatTensor { shape, data })
}

impl Case {
    pub fn load(dir: &Path) -> Result<Case> {
        let (model, ops) = read_model(dir)?;
        let graph = model.graph.as_ref().context("model.onnx has no graph")?;
        let data = dir.join("test_data_set_0");
        let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !inits.contains(&i.name.as_str()))
            .enumerate()
            .map(|(k, i)| Ok((i.clone(), read_proto(&data.join(format!("input_{k}.pb")))?)))
            .collect::<Result<Vec<_>>>()?;
        let outputs = graph
            .output
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let t: TensorProto = read_proto(&data.join(format!("output_{k}.pb")))?;
                Ok((o.name.clone(), float_values(&t)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Case {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            model,
            ops,
            inputs,
            outputs,
        })
    }

    /// Why medq cannot run this test at all, whatever the converter does:
    /// its data are not float32 tensors where medq's interface needs them.
    pub fn unrunnable(&self) -> Option<String> {
        let graph = self.model.graph.as_ref()?;
        for o in &graph.output {
            match elem_type(o) {
                None => return Some(format!("output \"{}\" is not a tensor", o.name)),
                Some(t) if t != DataType::Float as i32 => {
                    return Some(format!(
                        "output \"{}\" is {}: medq outputs are float32 (dequantized int8)",
                        o.name,
                        dtype_name(t)
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some((name, _)) = self.outputs.iter().find(|(_, v)| v.is_none()) {
            return Some(format!("expected output \"{name}\" is not float32 data"));
        }
        match self.inputs.first().map(|(v, _)| (v, elem_type(v))) {
            None => Some("the graph has no input".into()),
            Some((v, None)) => Some(format!("input \"{}\" is not a tensor", v.name)),
            Some((v, Some(t))) if t != DataType::Float as i32 => Some(format!(
                "input \"{}\" is {}: medq models take float32 input",
                v.name,
                dtype_name(t)
            )),
            Some(_) => None,
        }
    }

    /// Which inputs stay model inputs: non-float inputs (shapes, axes,
    /// pads, flags) are parameters and always frozen; with `only_first`,
    /// every input but the first is frozen (weights fed as inputs).
    pub fn fed(&self, only_first: bool) -> Vec<bool> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(k, (v, t))| {
                // A scalar has no sample axis: it is a parameter (e.g. Pad's value).
                let sample = k == 0 || (!only_first && !t.dims.is_empty());
                elem_type(v) == Some(DataType::Float as i32) && sample
            })
            .collect()
    }

    /// Write the model with the inputs not `fed` frozen into initializers,
    /// and one `.npy` (a batch of one sample) per fed input; returns the
    /// model path and the sample files in input order.
    pub fn write(&self, dir: &Path, fed: &[bool]) -> Result<(PathBuf, Vec<PathBuf>)> {
        let mut model = self.model.clone();
        let graph = model.graph.as_mut().context("no graph")?;
        let mut calib = Vec::new();
        for (k, ((v, t), &keep)) in self.inputs.iter().zip(fed).enumerate() {
            if keep {
                let x = float_values(t).context("a fed input is not float32 data")?;
                let path = dir.join(format!("input_{k}.npy"));
                write_npy(&path, &x)?;
                calib.push(path);
            } else {
                graph.input.retain(|i| i.name != v.name);
                let mut init = t.clone();
                init.name = v.name.clone();
                graph.initializer.push(init);
            }
        }
        let path = dir.join("model.onnx");
        std::fs::write(&path, model.encode_to_vec())?;
        Ok((path, calib))
    }

    /// The float values fed to the model, in its input order.
    pub fn fed_values(&self, fed: &[bool]) -> Vec<(String, FloatTensor)> {
        self.inputs
            .iter()
            .zip(fed)
            .filter(|(_, &keep)| keep)
            .filter_map(|((v, t), _)| Some((v.name.clone(), float_values(t)?)))
            .collect()
    }
}

/// A float32 `.npy` (format 1.0) holding `x` as one sample: as is when its
/// dimension 0 is 1 (a batch of one), else with a sample axis of 1 put
/// before it (a whole tensor whose dimension 0 is data).
fn write_npy(path: &Path, x: &FloatTensor) -> Result<()> {
    let shape: Vec<usize> = match x.shape.first() {
        None => bail!("a scalar input has no sample axis"),
        Some(1) => x.shape.clone(),
        Some(_) => [&[1][..], &x.shape].concat(),
    };
    let dims: String = shape.iter().map(|d| format!("{d}, ")).collect();
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}").into_bytes();
    // Magic (6) + version (2) + length (2) + header, padded to 64 with '\n' last.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header);
    bytes.extend(x.data.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
