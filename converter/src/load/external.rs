//! Tensors an ONNX model keeps in external files: PyTorch's default
//! (dynamo) exporter writes `model.onnx` and `model.onnx.data`. They are
//! read into the model once, at load, so that everything after it (the
//! loader, the float reference, the report's hash) sees one self-contained
//! model.

use std::collections::HashMap;
use std::path::{Component, Path};

use tract_onnx::pb::tensor_proto::DataLocation;
use tract_onnx::pb::{ModelProto, TensorProto};

use crate::error::ConvertError;

/// Reads every external tensor of `model` (initializers and `Constant`
/// values, in subgraphs too) from its file, relative to `dir`, into the
/// tensor. Returns the bytes of the files read, each once, in the order
/// first used: they are part of the source model (its hash and size).
/// Locations must be relative and stay inside `dir`, as the ONNX spec
/// requires; offsets and lengths must lie inside the file.
pub fn embed_external_data(model: &mut ModelProto, dir: &Path) -> Result<Vec<u8>, ConvertError> {
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result = Ok(());
    if let Some(g) = model.graph.as_mut() {
        visit(g, &mut |t: &mut TensorProto| {
            if result.is_ok() {
                result = embed(t, dir, &mut files, &mut order);
            }
        });
    }
    result?;
    Ok(order
        .iter()
        .flat_map(|f| files[f].iter().copied())
        .collect())
}

/// Calls `f` on every tensor a graph holds: initializers, and the `value`
/// of `Constant` nodes and attributes, recursing into subgraphs.
fn visit(g: &mut tract_onnx::pb::GraphProto, f: &mut impl FnMut(&mut TensorProto)) {
    g.initializer.iter_mut().for_each(&mut *f);
    for n in &mut g.node {
        for a in &mut n.attribute {
            if let Some(t) = a.t.as_mut() {
                f(t);
            }
            a.tensors.iter_mut().for_each(&mut *f);
            if let Some(sub) = a.g.as_mut() {
                visit(sub, f);
            }
            for sub in &mut a.graphs {
                visit(sub, f);
            }
        }
    }
}

fn embed(
    t: &mut TensorProto,
    dir: &Path,
    files: &mut HashMap<String, Vec<u8>>,
    order: &mut Vec<String>,
) -> Result<(), ConvertError> {
    if t.data_location != Some(DataLocation::External as i32) && t.external_data.is_empty() {
        return Ok(());
    }
    let bad = |why: String| {
        ConvertError::InvalidModel(format!("tensor \"{}\": external data: {why}", t.name))
    };
    let field = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    };
    let location = field("location").ok_or_else(|| bad("no location".into()))?;
    let relative = Path::new(&location);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(bad(format!(
            "location {location:?} must be a relative path inside the model's directory"
        )));
    }
    let number = |key: &str| -> Result<Option<usize>, ConvertError> {
        field(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| bad(format!("{key} {v:?} is not a number")))
            })
            .transpose()
    };
    let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
    if !files.contains_key(&location) {
        let path = dir.join(relative);
        let bytes = std::fs::read(&path).map_err(|source| ConvertError::Io { path, source })?;
        files.insert(location.clone(), bytes);
        order.push(location.clone());
    }
    let file = &files[&location];
    let end = match length {
        Some(n) => offset.checked_add(n),
        None => Some(file.len()),
    };
    let data = end
        .and_then(|end| file.get(offset..end))
        .ok_or_else(|| {
            bad(format!(
                "bytes {offset}..{} lie outside {location:?} ({} bytes)",
                end.map_or("∞".into(), |e| e.to_string()),
                file.len()
            ))
        })?
        .to_vec();
    t.raw_data = data;
    t.external_data.clear();
    t.data_location = Some(DataLocation::Default as i32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{GraphProto, StringStringEntryProto};

    fn external(name: &str, location: &str, offset: usize, length: usize) -> TensorProto {
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
        };
        TensorProto {
            name: name.into(),
            dims: vec![2],
            data_type: 1,
            data_location: Some(DataLocation::External as i32),
            external_data: vec![
                entry("location", location.into()),
                entry("offset", offset.to_string()),
                entry("length", length.to_string()),
            ],
            ..Default::default()
        }
    }

    fn model(tensors: Vec<TensorProto>) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                initializer: tensors,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn external_tensors_are_read_into_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(dir.path().join("m.onnx.data"), &data).unwrap();
        let mut m = model(vec![
            external("a", "m.onnx.data", 0, 8),
            external("b", "m.onnx.data", 8, 8),
        ]);
        let bytes = embed_external_data(&mut m, dir.path()).unwrap();
        assert_eq!(bytes, data, "the file is read once");
        let g = m.graph.unwrap();
        let values: Vec<Vec<f32>> = g
            .initializer
            .iter()
            .map(|t| crate::load::tensor::from_proto(t).unwrap().to_f32())
            .collect();
        assert_eq!(values, [vec![1.5, -2.0], vec![3.25, 4.0]]);
    }

    #[test]
    fn locations_outside_the_directory_and_short_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx.data"), [0u8; 8]).unwrap();
        for (t, why) in [
            (external("a", "../m.onnx.data", 0, 8), "relative path"),
            (external("a", "/etc/passwd", 0, 8), "relative path"),
            (external("a", "m.onnx.data", 4, 8), "outside"),
            (external("a", "missing.data", 0, 8), "cannot read"),
        ] {
            let err = embed_external_data(&mut model(vec![t]), dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
