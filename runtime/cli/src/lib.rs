//! The `medq` host CLI's commands, as a library so tests exercise exactly what
//! the binary runs. No tract here: this crate must stay small and cross-build
//! quickly for aarch64 edge boxes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use medq::{MetaKey, ModelFile, Quant, Storage, TensorInfo};

pub mod bench;
pub mod keys;
pub mod npy;
pub mod run;

pub use npy::write_npy_f32;

pub use bench::{bench, BenchReport};
pub use run::{
    accuracy, read_npy_f32, read_npy_labels, run_batch, run_batch_inputs, run_files, NpyF32,
    RunOptions, RunOutput, RunSummary, SampleCounts,
};

/// Load and fully validate a `.mq` file.
/// `medq selftest`: run the file's golden input and compare the output bit
/// for bit with its golden output. A file without the (optional) golden
/// section is an error that says so.
/// The exit status of a run stopped by SIGINT, SIGTERM or SIGHUP.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Makes an interrupt (Ctrl-C, SIGTERM, SIGHUP) remove the temporary files
/// being written (outputs, models, keys, reports) and exit with
/// [`EXIT_INTERRUPTED`], so that a stopped run leaves nothing beside its
/// outputs. Call once, early in `main`. Only SIGKILL (or a power cut)
/// can still leave a `.tmp` file behind.
pub fn remove_temporaries_on_interrupt() {
    // Fails only when a handler is already set: it then stays in charge.
    let _ = ctrlc::set_handler(|| {
        medq::file::remove_tracked_temporaries();
        eprintln!("interrupted: temporary files removed, nothing written");
        std::process::exit(EXIT_INTERRUPTED);
    });
}

pub fn selftest(model: &medq::Model<'_>) -> Result<()> {
    if model.golden().is_none() {
        anyhow::bail!(
            "the file has no golden pair to test against (the golden section is optional: \
             the converter leaves it out with --no-golden)"
        );
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = medq::Interpreter::new(model, &mut arena, &mut plan)?;
    anyhow::ensure!(
        interp.self_test()?,
        "self-test FAILED: the output differs from the golden output"
    );
    Ok(())
}

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
    let signature = match model.signature() {
        Some(_) => "present (check it with `medq verify FILE --key KEY.pub`)",
        None => "none",
    };
    writeln!(s, "signature     {signature}")?;
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
    if let Some(m) = model.abstain_margin() {
        writeln!(s, "abstain       below a top-1 margin of {m} (output 0)")?;
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
            "{what:<7} {:<20} {:<16} {:<3} {}",
            t.name,
            shape(t.dims()),
            format!("{:?}", t.dtype).to_lowercase(),
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
        let out_id = usize::from(op.output().unwrap_or(0));
        let out = model.tensor(out_id)?;
        let consts: usize = op
            .inputs
            .iter()
            .filter_map(|&t| model.tensor(usize::from(t)).ok())
            .filter(|t| t.storage.is_constant())
            .map(|t| t.len)
            .sum();
        writeln!(
            s,
            "{k:>4}  {:<15} → {:<24} {:<16} {:>7} B const  params {:?}",
            op.opcode.name(),
            shown_name(out.name, out_id),
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
            Storage::SparseConstant => {
                let nonzero = t.sparse_i8().map_or(0, |w| w.nonzero());
                format!("sparse @{} ({nonzero} of {} non-zero)", t.offset, t.numel())
            }
            Storage::Pow2Constant => format!("pow2 @{} ({} B, 4 bits a weight)", t.offset, t.len),
            Storage::SparsePow2Constant => {
                let nonzero = t.sparse_pow2_i8().map_or(0, |w| w.nonzero());
                format!(
                    "sparse pow2 @{} ({nonzero} of {} non-zero, 4 bits each)",
                    t.offset,
                    t.numel()
                )
            }
            Storage::SparsePow2x3Constant => {
                let nonzero = t.sparse_pow2x3_i8().map_or(0, |w| w.nonzero());
                format!(
                    "sparse pow2 @{} ({nonzero} of {} non-zero, 3 bits each)",
                    t.offset,
                    t.numel()
                )
            }
        };
        writeln!(
            s,
            "{i:>4}  {:<28} {:?} {:<16} {:>7} B  {:<14} {}",
            shown_name(t.name, i),
            t.dtype,
            shape(t.dims()),
            t.len,
            place,
            quant(&t.quant)
        )?;
    }
    Ok(s)
}

/// A tensor's name, or `#id` for one the file leaves unnamed (a converter's
/// `--strip-names` keeps only the graph's inputs and outputs).
fn shown_name(name: &str, id: usize) -> std::borrow::Cow<'_, str> {
    match name.is_empty() {
        true => format!("#{id}").into(),
        false => name.into(),
    }
}
