//! The static shape of every graph input: fixed dims as declared, a dynamic
//! batch (dimension 0) pinned to 1, and every other symbolic dim fixed by the
//! user (`--input-shape NAME=d0,d1,…`) or by a symbol another input already
//! fixed.
//!
//! An input whose dimension 0 is not a batch (an unbatched export, or a
//! sequence-first one such as `[time, 1, features]`) is told apart by its
//! samples: a file with one more dimension than the input (`[N, d0, d1, …]`)
//! stacks whole input tensors, so dimension 0 is data and keeps its size.
//! This is the rule `medq run` reads sample files by.

use std::collections::HashMap;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, ValueInfoProto};

use super::tensor;
use crate::error::ConvertError;

/// One declared dim of a graph input.
#[derive(Clone, Debug, PartialEq)]
pub enum DeclaredDim {
    Fixed(usize),
    /// A named symbol (`dim_param`), e.g. `batch` or `time`.
    Symbol(String),
    /// No value, `?`, or a non-positive `dim_value`.
    Unknown,
}

impl DeclaredDim {
    /// How the option syntax shows this dim when its size is not known.
    fn placeholder(&self, index: usize) -> String {
        match self {
            DeclaredDim::Fixed(n) => n.to_string(),
            DeclaredDim::Symbol(s) => format!("<{s}>"),
            DeclaredDim::Unknown => format!("<d{index}>"),
        }
    }

    fn describe(&self) -> String {
        match self {
            DeclaredDim::Fixed(n) => n.to_string(),
            DeclaredDim::Symbol(s) => format!("\"{s}\""),
            DeclaredDim::Unknown => "?".into(),
        }
    }
}

/// A graph input's name and declared dims (`None`: no shape at all).
pub fn declared(input: &ValueInfoProto) -> Result<Option<Vec<DeclaredDim>>, ConvertError> {
    let bad =
        |why: String| ConvertError::InvalidModel(format!("graph input \"{}\": {why}", input.name));
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        None => return Err(bad("it has no tensor type".into())),
    };
    if tensor.elem_type != tract_onnx::pb::tensor_proto::DataType::Float as i32 {
        return Err(bad(format!(
            "its element type is {}; medq models take float32 input",
            tensor::dtype_name(tensor.elem_type)
        )));
    }
    Ok(tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => {
                    usize::try_from(*v).map_or(DeclaredDim::Unknown, DeclaredDim::Fixed)
                }
                Some(dimension::Value::DimParam(p)) if !p.is_empty() && p != "?" => {
                    DeclaredDim::Symbol(p.clone())
                }
                _ => DeclaredDim::Unknown,
            })
            .collect()
    }))
}

/// The graph inputs of `g` of an integer type (not initializers), by name.
pub fn integer_inputs(g: &GraphProto) -> std::collections::BTreeSet<String> {
    let constants: std::collections::HashSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    g.input
        .iter()
        .filter(|i| !constants.contains(i.name.as_str()))
        .filter(|i| {
            matches!(
                i.r#type.as_ref().and_then(|t| t.value.as_ref()),
                Some(type_proto::Value::TensorType(t)) if tensor::is_integer(t.elem_type)
            )
        })
        .map(|i| i.name.clone())
        .collect()
}

/// A copy of `g` in which each graph input of a boolean or integer type (a
/// padding mask, sequence lengths) is a float input followed by a `Cast`
/// back to its type; `None` when every input is already float. medq's
/// inputs are quantized reals, and a mask's 0 and 1 or a length's small
/// integers are among them exactly; the float reference runs the same
/// graph. The input keeps its name (`--input-shape`, the order of
/// `--calib` files); the nodes that read it read the cast.
pub fn non_float_inputs_as_float(g: &GraphProto) -> Option<GraphProto> {
    use tract_onnx::pb::tensor_proto::DataType as T;
    let constants: std::collections::HashSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out = g.clone();
    let mut casts = Vec::new();
    for input in out.input.iter_mut() {
        if constants.contains(input.name.as_str()) {
            continue;
        }
        let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        let dtype = t.elem_type;
        if dtype != T::Bool as i32 && !tensor::is_integer(dtype) {
            continue;
        }
        t.elem_type = T::Float as i32;
        let cast = format!("{}/as_{}", input.name, tensor::dtype_name(dtype));
        casts.push(NodeProto {
            name: cast.clone(),
            op_type: "Cast".into(),
            input: vec![input.name.clone()],
            output: vec![cast.clone()],
            attribute: vec![AttributeProto {
                name: "to".into(),
                r#type: AttributeType::Int as i32,
                i: i64::from(dtype),
                ..Default::default()
            }],
            ..Default::default()
        });
        for n in out.node.iter_mut() {
            for name in n.input.iter_mut().filter(|n| **n == input.name) {
                name.clone_from(&cast);
            }
        }
    }
    if casts.is_empty() {
        return None;
    }
    casts.append(&mut out.node);
    out.node = casts;
    Some(out)
}

/// `NAME=d0,d1,…` as the converter's `--input-shape` takes it.
pub fn parse_input_shape(spec: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = spec
        .rsplit_once('=')
        .ok_or_else(|| format!("\"{spec}\" is not NAME=d0,d1,… (e.g. eeg=1,19,1000)"))?;
    if name.is_empty() {
        return Err(format!("\"{spec}\" names no input (NAME=d0,d1,…)"));
    }
    let dims = dims
        .split(',')
        .map(|d| match d.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "\"{spec}\": dimension \"{d}\" is not a positive integer"
            )),
        })
        .collect::<Result<Vec<usize>, String>>()?;
    Ok((name.to_string(), dims))
}

/// A graph input's static shape, and the dims in it that its samples fixed.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub shape: Vec<usize>,
    /// Each dim the model leaves dynamic (past the batch) and no override
    /// fixed, taken from the samples: `"time" = 128`.
    pub from_samples: Vec<String>,
}

/// The static shapes of `inputs` (graph order), given the user's `overrides`
/// (input name → full shape, batch included) and the shapes of the sample
/// files given for the inputs, in order (`[N, d1, …]`; fewer than the
/// inputs, or none, when not given).
pub fn resolve(
    inputs: &[&ValueInfoProto],
    overrides: &[(String, Vec<usize>)],
    sample_shapes: &[Vec<usize>],
) -> Result<Vec<Resolved>, ConvertError> {
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    for (k, (name, _)) in overrides.iter().enumerate() {
        if !names.contains(&name.as_str()) {
            return Err(ConvertError::Usage(format!(
                "--input-shape names \"{name}\", which is not a model input; the model's inputs are {}",
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if overrides[..k].iter().any(|(n, _)| n == name) {
            return Err(ConvertError::Usage(format!(
                "--input-shape is given twice for \"{name}\""
            )));
        }
    }
    let declared = inputs
        .iter()
        .map(|i| declared(i))
        .collect::<Result<Vec<_>, _>>()?;
    // Symbols the overrides fix, so that an input sharing one needs no override.
    let mut symbols: HashMap<String, (usize, String)> = HashMap::new();
    for (k, (input, dims)) in inputs.iter().zip(&declared).enumerate() {
        if let Some((_, shape)) = overrides.iter().find(|(n, _)| *n == input.name) {
            let samples = sample_shapes.get(k).map(Vec::as_slice);
            let whole = whole_tensors(dims.as_deref(), samples);
            check_override(&input.name, dims.as_deref(), shape, whole, &mut symbols)?;
        }
    }
    let mut resolved = Vec::with_capacity(inputs.len());
    for (k, (input, dims)) in inputs.iter().zip(&declared).enumerate() {
        resolved.push(match overrides.iter().find(|(n, _)| *n == input.name) {
            Some((_, shape)) => Resolved {
                shape: shape.clone(),
                from_samples: Vec::new(),
            },
            None => fixed_shape(
                &input.name,
                dims.as_deref(),
                &mut symbols,
                sample_shapes.get(k).map(Vec::as_slice),
            )?,
        });
    }
    Ok(resolved)
}

/// Whether the samples of an input with `dims` stack whole input tensors
/// (`[N, d0, d1, …]`, one more dimension than the input): dimension 0 is
/// then data, not a batch.
fn whole_tensors(dims: Option<&[DeclaredDim]>, samples: Option<&[usize]>) -> bool {
    matches!((dims, samples), (Some(d), Some(s)) if s.len() == d.len() + 1)
}

/// An override must keep the rank, the fixed dims and batch 1 (unless the
/// samples stack `whole` tensors: dimension 0 is data then), and give each
/// symbol one size.
fn check_override(
    name: &str,
    dims: Option<&[DeclaredDim]>,
    shape: &[usize],
    whole: bool,
    symbols: &mut HashMap<String, (usize, String)>,
) -> Result<(), ConvertError> {
    let given = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let bad = |why: String| ConvertError::Usage(format!("--input-shape {name}={given}: {why}"));
    match shape.first() {
        Some(1) => {}
        Some(_) if whole => {}
        Some(n) => {
            return Err(bad(format!(
                "the batch (dimension 0) is {n}, but medq runs one sample at a time: give 1 \
                 (if dimension 0 is not a batch, give samples that stack whole inputs: \
                 [N, {}])",
                given.replace(',', ", ")
            )))
        }
        None => return Err(bad("no dimensions".into())),
    }
    let Some(dims) = dims else {
        return Ok(());
    };
    if dims.len() != shape.len() {
        return Err(bad(format!(
            "the model declares {} dimensions [{}]",
            dims.len(),
            declared_list(dims)
        )));
    }
    for (i, (d, &n)) in dims.iter().zip(shape).enumerate() {
        match d {
            // An export traced at a fixed batch (no dynamic axis) runs at
            // batch 1 when the user says so; a graph that depends on its
            // batch (a Reshape to a constant batch) then fails to convert.
            DeclaredDim::Fixed(_) if i == 0 && !whole => {}
            DeclaredDim::Fixed(m) if *m != n => {
                return Err(bad(format!(
                    "dimension {i} is fixed at {m} in the model [{}]",
                    declared_list(dims)
                )))
            }
            DeclaredDim::Symbol(s) => {
                let here = format!("\"{name}\" dimension {i}");
                match symbols.get(s) {
                    Some((m, there)) if *m != n => {
                        return Err(bad(format!(
                            "\"{s}\" is {n} here but {m} at {there}; a symbol has one size"
                        )))
                    }
                    Some(_) => {}
                    None => {
                        symbols.insert(s.clone(), (n, here));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn declared_list(dims: &[DeclaredDim]) -> String {
    dims.iter()
        .map(DeclaredDim::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each dim as `--input-shape` would give it: its size where known, else
/// a `<…>` placeholder.
fn option_dims(dims: &[DeclaredDim], symbols: &HashMap<String, (usize, String)>) -> Vec<String> {
    dims.iter()
        .enumerate()
        .map(|(k, d)| match known(k, d, symbols, true) {
            Some(n) => n.to_string(),
            None => d.placeholder(k),
        })
        .collect()
}

/// The shape of an input without an override: its dynamic batch becomes 1,
/// a symbol an override or an earlier input fixed takes that size, and any
/// other dynamic dim takes its size in the input's samples (`samples`, the
/// shape `[N, d1, …]` of its file, when the ranks agree: the samples'
/// first axis counts them; or `[N, d0, d1, …]`, whole tensors, when
/// dimension 0 is data). Anything still dynamic is an error that shows
/// the `--input-shape` to pass.
fn fixed_shape(
    name: &str,
    dims: Option<&[DeclaredDim]>,
    symbols: &mut HashMap<String, (usize, String)>,
    samples: Option<&[usize]>,
) -> Result<Resolved, ConvertError> {
    let bad = |why: String| ConvertError::InvalidModel(format!("graph input \"{name}\": {why}"));
    let Some(dims) = dims else {
        return Err(bad(format!(
            "its shape is unknown; pass it with --input-shape {name}=1,<d1>,<d2>,… \
             (batch 1, then the size of every other dimension)"
        )));
    };
    if dims.is_empty() {
        return Err(bad("it is a scalar; medq needs a [1, ...] input".into()));
    }
    let given = samples;
    let whole = whole_tensors(Some(dims), given);
    let samples = given.filter(|s| s.len() == dims.len() || whole);
    // Dim `i`'s size in one sample; a batch (dim 0 of stacked samples) has none.
    let in_samples = |i: usize| match (samples, whole) {
        (Some(s), true) => s.get(i + 1).copied(),
        (Some(s), false) if i > 0 => s.get(i).copied(),
        _ => None,
    };
    let mut from_samples = Vec::new();
    let mut shape = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        let size = known(i, d, symbols, !whole).or_else(|| {
            let n = in_samples(i)?;
            from_samples.push(format!("{} = {n}", d.describe()));
            if let DeclaredDim::Symbol(s) = d {
                symbols.insert(s.clone(), (n, format!("the samples of \"{name}\"")));
            }
            Some(n)
        });
        match (i, size) {
            (0, Some(1)) => shape.push(1),
            (0, Some(n)) if whole => shape.push(n),
            (0, Some(n)) => {
                let mut at_batch_1 = option_dims(dims, symbols);
                let whole_shape = at_batch_1.join(", ");
                at_batch_1[0] = "1".into();
                return Err(bad(format!(
                    "batch size is {n}; medq runs one sample at a time: export with batch 1 \
                     (or a dynamic batch dimension), or run this export at batch 1 with \
                     --input-shape {name}={} (when nothing in the graph depends on its \
                     batch size); if dimension 0 is not a batch but data, give samples \
                     that stack whole inputs, of shape [N, {whole_shape}]",
                    at_batch_1.join(",")
                )));
            }
            (_, Some(n)) => shape.push(n),
            (_, None) => {
                let syntax = option_dims(dims, symbols);
                let hint = match given {
                    Some(s) if samples.is_none() => format!(
                        "; its samples, of shape {s:?}, do not have the model's {} dimensions \
                         (samples first, then the input's dimensions after the batch)",
                        dims.len()
                    ),
                    Some(_) => String::new(),
                    None => ", or pass samples for it with --calib: their shape fixes it".into(),
                };
                return Err(bad(format!(
                    "dimension {i} is dynamic ({}); fix it with --input-shape {name}={}, \
                     each <…> replaced by its size in your samples (only the batch may stay \
                     dynamic: it is 1){hint}",
                    d.describe(),
                    syntax.join(",")
                )));
            }
        }
    }
    Ok(Resolved {
        shape,
        from_samples,
    })
}

/// A declared dim's size when the model or an earlier fixed symbol gives
/// it; a `batch` (dim 0 of batched samples) is otherwise 1.
fn known(
    i: usize,
    d: &DeclaredDim,
    symbols: &HashMap<String, (usize, String)>,
    batch: bool,
) -> Option<usize> {
    match d {
        DeclaredDim::Fixed(n) => Some(*n),
        DeclaredDim::Symbol(s) => symbols.get(s).map(|(n, _)| *n),
        DeclaredDim::Unknown => None,
    }
    .or((i == 0 && batch).then_some(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_option() {
        assert_eq!(
            parse_input_shape("eeg=1,19,1000"),
            Ok(("eeg".to_string(), vec![1, 19, 1000]))
        );
        // Names may hold '=' (ONNX names are free text); the last one splits.
        assert_eq!(
            parse_input_shape("a=b=1,2"),
            Ok(("a=b".to_string(), vec![1, 2]))
        );
        assert!(parse_input_shape("eeg").is_err());
        assert!(parse_input_shape("=1,2").is_err());
        assert!(parse_input_shape("eeg=1,0,3")
            .unwrap_err()
            .contains("\"0\""));
        assert!(parse_input_shape("eeg=1,,3").is_err());
    }

    /// A float graph input `x` with `dims` (`Some(n)` fixed, `None` a symbol named `s<i>`).
    fn input(dims: &[Option<i64>]) -> ValueInfoProto {
        use tract_onnx::pb::tensor_shape_proto::Dimension;
        use tract_onnx::pb::{TensorShapeProto, TypeProto};
        let dim = dims
            .iter()
            .enumerate()
            .map(|(i, d)| Dimension {
                denotation: String::new(),
                value: Some(match d {
                    Some(n) => dimension::Value::DimValue(*n),
                    None => dimension::Value::DimParam(format!("s{i}")),
                }),
            })
            .collect();
        ValueInfoProto {
            name: "x".into(),
            r#type: Some(TypeProto {
                denotation: String::new(),
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: tract_onnx::pb::tensor_proto::DataType::Float as i32,
                    shape: Some(TensorShapeProto { dim }),
                })),
            }),
            doc_string: String::new(),
        }
    }

    fn shape_of(
        dims: &[Option<i64>],
        overrides: &[(String, Vec<usize>)],
        samples: &[usize],
    ) -> Result<Vec<usize>, String> {
        let x = input(dims);
        resolve(&[&x], overrides, &[samples.to_vec()])
            .map(|r| r[0].shape.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn samples_of_whole_inputs_make_dimension_0_data() {
        // Batched samples: dim 0 is the batch, 1.
        assert_eq!(shape_of(&[None, Some(6)], &[], &[8, 6]), Ok(vec![1, 6]));
        // One more dim than the input: whole tensors, dim 0 from the samples.
        assert_eq!(
            shape_of(&[None, None, Some(6)], &[], &[8, 40, 1, 6]),
            Ok(vec![40, 1, 6])
        );
        // A fixed dim 0 other than 1 is data with whole samples ...
        assert_eq!(
            shape_of(&[Some(3), Some(4)], &[], &[1, 3, 4]),
            Ok(vec![3, 4])
        );
        // ... and a batch otherwise, refused with both ways out.
        let e = shape_of(&[Some(3), Some(4)], &[], &[5, 4]).unwrap_err();
        assert!(e.contains("--input-shape x=1,4"), "{e}");
        assert!(e.contains("[N, 3, 4]"), "{e}");
    }

    #[test]
    fn an_override_sets_dimension_0_only_for_whole_samples() {
        let over = vec![("x".to_string(), vec![40, 1, 6])];
        assert_eq!(
            shape_of(&[None, None, Some(6)], &over, &[8, 40, 1, 6]),
            Ok(vec![40, 1, 6])
        );
        let e = shape_of(&[None, None, Some(6)], &over, &[8, 1, 6]).unwrap_err();
        assert!(e.contains("give 1"), "{e}");
        assert!(e.contains("[N, 40, 1, 6]"), "{e}");
        // Whole samples keep a fixed dim 0 as declared.
        let e = shape_of(&[Some(3), Some(4)], &[("x".into(), vec![1, 4])], &[2, 3, 4]);
        assert!(e.unwrap_err().contains("fixed at 3"));
    }
}
