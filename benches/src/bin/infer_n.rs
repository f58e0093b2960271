//! Runs one prepared model `N` times with medq or tract, for instruction
//! counting under `qemu-aarch64` (two runs with different `N`; the difference
//! is what `N` more inferences cost). Built for the host and for
//! `aarch64-unknown-linux-gnu` (without the converter: `--no-default-features`).
//!
//! ```text
//! infer_n --manifest WORK/manifest.json --model ecg5000 --engine medq|tract --n 10
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use medq_benches::engine::{read_sample, with_medq, Engine, Manifest, TractEngine};

struct Args {
    manifest: PathBuf,
    model: String,
    engine: String,
    n: u64,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut manifest, mut model, mut engine, mut n) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value)),
            "--model" => model = Some(value),
            "--engine" => engine = Some(value),
            "--n" => n = Some(value.parse().context("--n")?),
            _ => bail!("unknown argument {flag}"),
        }
    }
    let usage = "usage: infer_n --manifest FILE --model NAME --engine medq|tract --n N";
    Ok(Args {
        manifest: manifest.context(usage)?,
        model: model.context(usage)?,
        engine: engine.context(usage)?,
        n: n.context(usage)?,
    })
}

fn run(engine: &mut dyn Engine, n: u64) -> Result<()> {
    for _ in 0..n {
        engine.infer()?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    let manifest = Manifest::load(&a.manifest)?;
    let m = manifest.model(&a.model)?;
    let sample = read_sample(&m.sample)?;
    match a.engine.as_str() {
        "medq" => with_medq(&m.mq, &sample, |e| run(e, a.n))?,
        "tract" => run(
            &mut TractEngine::load(&m.onnx, &m.input_shape, &sample)?,
            a.n,
        )?,
        other => bail!("unknown engine {other:?} (medq or tract)"),
    }
    println!("{} {}: {} inferences", a.model, a.engine, a.n);
    Ok(())
}
