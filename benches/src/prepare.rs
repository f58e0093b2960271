//! Converts the zoo's committed ONNX models to `.mq` with the converter
//! library, with the zoo's settings (`models/zoo.json`, as
//! `medq_zoo` reads it): a model's fixed calibration if it has
//! one, and its pruning. A model the zoo calibrates with `--select` gets the
//! converter's default setting instead: the choice among calibrations and
//! weight roundings changes the int8 values, not the ops, shapes or MACs, so
//! it does not change speed, and the search runs tract eight times per model.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use medq_converter::prune::Target;
use medq_converter::{convert, Options};
use medq_zoo::{ModelEntry, ZooConfig};

use crate::engine::{Manifest, PreparedModel};

/// Convert the models named in `only` (all when empty) into `work`, write
/// `work/manifest.json` and return it.
pub fn prepare(zoo_json: &Path, work: &Path, only: &[String]) -> Result<Manifest> {
    let config = ZooConfig::load(zoo_json).map_err(|e| anyhow!("{e}"))?;
    for name in only {
        if config.model(name).is_none() {
            bail!("{name:?} is not a zoo model");
        }
    }
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let work = work
        .canonicalize()
        .with_context(|| format!("resolving {}", work.display()))?;
    let mut models = Vec::new();
    for entry in &config.models {
        if only.is_empty() || only.contains(&entry.name) {
            eprintln!("converting {}", entry.name);
            models.push(convert_one(&config, entry, &work)?);
        }
    }
    let manifest = Manifest { models };
    let path = work.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    p.canonicalize()
        .with_context(|| format!("resolving {}", p.display()))
}

fn convert_one(config: &ZooConfig, entry: &ModelEntry, work: &Path) -> Result<PreparedModel> {
    let onnx = absolute(config.path(entry, &entry.onnx))?;
    let calib = absolute(config.path(entry, &entry.calib))?;
    let mq = work.join(format!("{}.mq", entry.name));
    let setting = entry
        .calibration()
        .map_err(|e| anyhow!("{}: {e}", entry.name))?;
    let mut opts = Options::new(&onnx, &mq);
    opts.calib = vec![calib.clone()];
    opts.class_names = Some(config.path(entry, &entry.labels));
    opts.method = setting.method;
    opts.percentile = setting.percentile;
    opts.rounding = setting.rounding;
    if let Some(p) = &entry.prune {
        let onnx_bytes = std::fs::metadata(&onnx)?.len() as usize;
        opts.prune = Some(Target::MaxBytes(p.max_bytes(onnx_bytes)));
    }
    let report = convert(&opts).map_err(|e| anyhow!("converting {}: {e}", entry.name))?;
    let (input_shape, first) = first_sample(&calib)?;
    let sample = work.join(format!("{}.sample.f32", entry.name));
    let bytes: Vec<u8> = first.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&sample, bytes).with_context(|| format!("writing {}", sample.display()))?;
    Ok(PreparedModel {
        name: entry.name.clone(),
        onnx,
        mq,
        calib,
        sample,
        input_shape,
        macs: report.totals.macs,
        setting: format!("{} + {}", report.calibration_method, report.weight_rounding),
        pruned_filters: report.pruning.as_ref().map(|p| p.removed),
    })
}

/// The model input shape `[1, d1..dk]` of a calibration file `[N, d1..dk]`,
/// and its first sample.
fn first_sample(calib: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(calib).with_context(|| format!("reading {}", calib.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{}", calib.display()))?;
    let mut shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if shape.len() < 2 || shape[0] == 0 {
        bail!("{}: shape {shape:?} is not [N ≥ 1, ...]", calib.display());
    }
    shape[0] = 1;
    let len: usize = shape.iter().product();
    let data = npy
        .into_vec::<f32>()
        .with_context(|| format!("{}: not float32", calib.display()))?;
    Ok((shape, data[..len].to_vec()))
}
