//! The `medq` host CLI's commands, as a library so tests exercise exactly what
//! the binary runs. No tract here: this crate must stay small and cross-build
//! quickly for aarch64 edge boxes.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use medq::{Interpreter, MetaKey, Model, ModelFile, Quant, Storage, TensorInfo};
use npyz::WriterBuilder;

pub mod npy;

/// Load and fully validate a `.mq` file.
pub fn open(path: &Path) -> Result<ModelFile> {
    ModelFile::open(path).with_context(|| format!("{} was refused", path.display()))
}

fn shape(dims: &[u32]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn quant(q: &Quant) -> String {
    match q {
        Quant::None => "-".into(),
        Quant::PerTensor { scale, zero_point } => format!("scale {scale:.6e}, zp {zero_point}"),
        Quant::PerChannel { axis, scales } => {
            let lo = scales.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = scales.iter().copied().fold(0f32, f32::max);
            format!(
                "per-channel axis {axis}: {} scales in [{lo:.3e}, {hi:.3e}]",
                scales.len()
            )
        }
    }
}

/// `medq inspect`: header, metadata, inputs/outputs, tensors, ops and arena.
pub fn inspect(file: &ModelFile) -> Result<String> {
    let model = file.model()?;
    let mut s = String::new();
    writeln!(s, "format        .mq v{}", model.format_version())?;
    writeln!(
        s,
        "size          {} bytes (weights {} bytes)",
        file.bytes().len(),
        model.weights_len()
    )?;
    writeln!(s, "crc32         {:08x} (verified)", model.crc32())?;
    writeln!(s, "arena         {} bytes", model.arena_len())?;
    let keys = [
        (MetaKey::ModelName, "model"),
        (MetaKey::ConverterVersion, "converter"),
        (MetaKey::SourceSha256, "source sha256"),
        (MetaKey::CalibrationSha256, "calib sha256"),
        (MetaKey::Notes, "notes"),
    ];
    for (key, label) in keys {
        if let Some(v) = model.metadata(key) {
            writeln!(s, "{label:<14}{v}")?;
        }
    }
    if let Some(labels) = model.metadata(MetaKey::ClassLabels) {
        writeln!(
            s,
            "classes       {}",
            labels.lines().collect::<Vec<_>>().join(", ")
        )?;
    }
    writeln!(
        s,
        "golden        {}",
        if model.golden().is_some() {
            "yes (run `medq selftest`)"
        } else {
            "no"
        }
    )?;

    let io = |s: &mut String, what: &str, t: TensorInfo| -> std::fmt::Result {
        writeln!(
            s,
            "{what:<7} {:<20} {:<16} i8  {}",
            t.name,
            shape(t.dims()),
            quant(&t.quant)
        )
    };
    writeln!(s)?;
    for i in 0..model.inputs().len() {
        io(&mut s, "input", model.input_info(i)?)?;
    }
    for i in 0..model.outputs().len() {
        io(&mut s, "output", model.output_info(i)?)?;
    }

    writeln!(s, "\n{} ops", model.op_count())?;
    for k in 0..model.op_count() {
        let op = model.op(k)?;
        let out = model.tensor(usize::from(op.output().unwrap_or(0)))?;
        let consts: usize = op
            .inputs
            .iter()
            .filter_map(|&t| model.tensor(usize::from(t)).ok())
            .filter(|t| t.storage == Storage::Constant)
            .map(|t| t.len)
            .sum();
        writeln!(
            s,
            "{k:>4}  {:<15} → {:<24} {:<16} {:>7} B const  params {:?}",
            op.opcode.name(),
            out.name,
            shape(out.dims()),
            consts,
            op.params
        )?;
    }

    writeln!(s, "\n{} tensors", model.tensor_count())?;
    for i in 0..model.tensor_count() {
        let t = model.tensor(i)?;
        let place = match t.storage {
            Storage::Arena => format!("arena @{}", t.offset),
            Storage::Constant => format!("const @{}", t.offset),
        };
        writeln!(
            s,
            "{i:>4}  {:<28} {:?} {:<16} {:>7} B  {:<14} {}",
            t.name,
            t.dtype,
            shape(t.dims()),
            t.len,
            place,
            quant(&t.quant)
        )?;
    }
    Ok(s)
}

/// Float32 samples read from a `.npy` file.
pub struct NpyF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub fn read_npy_f32(path: &Path) -> Result<NpyF32> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a .npy file", path.display()))?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy
        .into_vec::<f32>()
        .with_context(|| format!("{}: expected float32 data", path.display()))?;
    Ok(NpyF32 { shape, data })
}

pub fn read_npy_labels(path: &Path) -> Result<Vec<i64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a .npy file", path.display()))?;
    npy.into_vec::<i64>()
        .with_context(|| format!("{}: expected int64 class indices", path.display()))
}

/// Write a float32 `.npy` through a temporary file and a rename.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut buf = Vec::new();
    {
        let shape64: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape64)
            .writer(&mut buf)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()?;
    }
    let tmp = path.with_extension(format!("npy.tmp{}", std::process::id()));
    std::fs::write(&tmp, &buf).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Dequantized outputs of a batch run: one `[N, d1..dk]` array per model output.
pub struct RunOutput {
    pub shapes: Vec<Vec<usize>>,
    pub data: Vec<Vec<f32>>,
    pub samples: usize,
}

/// `medq run`: quantize each sample, invoke, dequantize every output.
pub fn run_batch(model: &Model, input: &NpyF32) -> Result<RunOutput> {
    if model.inputs().len() != 1 {
        bail!(
            "the model has {} inputs; `medq run` feeds single-input models",
            model.inputs().len()
        );
    }
    let info = model.input_info(0)?;
    let dims: Vec<usize> = info.dims().iter().map(|&d| d as usize).collect();
    let per_sample: usize = dims.iter().product();
    if input.shape.len() != dims.len()
        || input.shape.get(1..) != dims.get(1..)
        || dims.first() != Some(&1)
    {
        bail!(
            "input shape {:?} does not fit the model input {:?}: expected [N, {}] with samples stacked on the first axis",
            input.shape,
            dims,
            dims.iter().skip(1).map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let (scale, zp) = info
        .scale_zero_point()
        .context("the model input is not per-tensor quantized")?;
    let n = input.data.len() / per_sample.max(1);

    let outs: Vec<TensorInfo> = (0..model.outputs().len())
        .map(|i| model.output_info(i))
        .collect::<Result<_, _>>()?;
    let mut data: Vec<Vec<f32>> = outs
        .iter()
        .map(|o| Vec::with_capacity(n * o.numel()))
        .collect();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(model, &mut arena, &mut plan)?;
    for sample in input.data.chunks_exact(per_sample) {
        medq::quant::quantize_slice(sample, scale, zp, interp.input_mut(0)?)?;
        interp.invoke()?;
        for (i, o) in outs.iter().enumerate() {
            let (s, z) = o
                .scale_zero_point()
                .context("an output is not per-tensor quantized")?;
            data[i].extend(
                interp
                    .output(i)?
                    .iter()
                    .map(|&q| medq::quant::dequantize(q, s, z)),
            );
        }
    }
    let shapes = outs
        .iter()
        .map(|o| {
            let mut s = vec![n];
            s.extend(o.dims().iter().skip(1).map(|&d| d as usize));
            s
        })
        .collect();
    Ok(RunOutput {
        shapes,
        data,
        samples: n,
    })
}

/// Top-1 accuracy of output 0 against labels (a single value is a binary probability).
pub fn accuracy(out: &RunOutput, labels: &[i64]) -> Result<f64> {
    let per = out.data[0].len() / out.samples.max(1);
    if labels.len() != out.samples {
        bail!("{} labels for {} samples", labels.len(), out.samples);
    }
    let correct = out.data[0]
        .chunks_exact(per.max(1))
        .zip(labels)
        .filter(|(row, &y)| {
            let pred = if row.len() == 1 {
                (row[0] >= 0.5) as i64
            } else {
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    )
                    .0 as i64
            };
            pred == y
        })
        .count();
    Ok(correct as f64 / out.samples.max(1) as f64)
}

/// `medq bench`: time `iterations` invocations, total and per op.
pub fn bench(model: &Model, iterations: usize) -> Result<String> {
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(model, &mut arena, &mut plan)?;
    for (i, v) in interp.input_mut(0)?.iter_mut().enumerate() {
        *v = (i % 64) as i8 - 32;
    }
    interp.invoke()?; // warm caches
    let mut per_op = vec![0f64; model.op_count()];
    let start = Instant::now();
    for _ in 0..iterations {
        let mut last = Instant::now();
        interp.invoke_observed(|k, _, _| {
            let now = Instant::now();
            if let Some(t) = per_op.get_mut(k) {
                *t += (now - last).as_secs_f64();
            }
            last = now;
        })?;
    }
    let total = start.elapsed().as_secs_f64();
    let per_inference = total / iterations.max(1) as f64;
    let mut s = String::new();
    writeln!(
        s,
        "{iterations} inferences in {:.3} s: {:.1} µs per inference, {:.0} inferences/s, arena {} bytes",
        total,
        per_inference * 1e6,
        1.0 / per_inference,
        model.arena_len()
    )?;
    for (k, t) in per_op.iter().enumerate() {
        let op = model.op(k)?;
        writeln!(
            s,
            "{k:>4}  {:<15} {:>9.2} µs  {:>5.1}%",
            op.opcode.name(),
            t / iterations.max(1) as f64 * 1e6,
            100.0 * t / total.max(f64::MIN_POSITIVE)
        )?;
    }
    Ok(s)
}
