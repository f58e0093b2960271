//! The side-by-side benchmark's steps; `benches/run.sh` calls them in order.
//!
//! ```text
//! side_by_side prepare   --work DIR [--models a,b]      convert the zoo (manifest.json)
//! side_by_side host      --work DIR [--rounds N] ...     time medq and tract on this host
//! side_by_side aarch64   --work DIR --probe BIN --plugin SO ...   count under qemu-aarch64
//! side_by_side cortex-m4 --log FILE ...                  read the Cortex-M4 icount output
//! side_by_side render | check                            rewrite RESULTS.md | validate
//! ```
//! Every measuring step replaces its section of `--results` and rewrites `--md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use medq_benches::engine::{read_sample, with_medq, Manifest, PreparedModel, TractEngine};
use medq_benches::results::{
    Aarch64Row, Aarch64Section, CortexM4Section, HostRow, HostSection, Machine, Results,
};
use medq_benches::timing::{interleaved, ROUND_TARGET};

#[derive(Parser)]
#[command(about = "medq side by side with tract: the steps of benches/run.sh")]
struct Cli {
    #[command(subcommand)]
    step: Step,
}

#[derive(Args)]
struct Out {
    /// The results file whose section this step replaces.
    #[arg(long, default_value = "benches/results.json")]
    results: PathBuf,
    /// Its Markdown rendering, rewritten.
    #[arg(long, default_value = "benches/RESULTS.md")]
    md: PathBuf,
}

#[derive(Subcommand)]
enum Step {
    /// Convert the zoo's ONNX models to .mq into WORK and write WORK/manifest.json.
    Prepare {
        #[arg(long, default_value = "models/zoo.json")]
        zoo: PathBuf,
        #[arg(long)]
        work: PathBuf,
        /// Comma-separated model names (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
    },
    /// Time medq and tract per inference on this host, interleaved.
    Host {
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Mark the section as a smoke run.
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        out: Out,
    },
    /// Count instructions per inference under qemu-aarch64.
    Aarch64 {
        #[arg(long)]
        work: PathBuf,
        /// The aarch64 build of `infer_n`.
        #[arg(long)]
        probe: PathBuf,
        /// libinsn.so, built from benches/qemu-plugin/insn.c.
        #[arg(long)]
        plugin: PathBuf,
        #[arg(long, default_value = "/usr/aarch64-linux-gnu")]
        sysroot: PathBuf,
        /// Inferences in the short run.
        #[arg(long, default_value_t = 2)]
        short: u64,
        /// Inferences in the long run.
        #[arg(long, default_value_t = 6)]
        long: u64,
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        out: Out,
    },
    /// Read the Cortex-M4 icount output (benches/qemu) into the results.
    CortexM4 {
        #[arg(long)]
        log: PathBuf,
        #[command(flatten)]
        out: Out,
    },
    /// Rewrite the Markdown from the results file (after ort_compare.py).
    Render {
        #[command(flatten)]
        out: Out,
    },
    /// Fail unless the results file is complete and every figure positive.
    Check {
        #[arg(long, default_value = "benches/results.json")]
        results: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().step {
        Step::Prepare { zoo, work, models } => {
            medq_benches::prepare::prepare(&zoo, &work, &models)?;
        }
        Step::Host {
            work,
            rounds,
            quick,
            out,
        } => {
            let section = host(&work, rounds, quick)?;
            update(&out, |r| r.host = Some(section))?;
        }
        Step::Aarch64 {
            work,
            probe,
            plugin,
            sysroot,
            short,
            long,
            quick,
            out,
        } => {
            if long <= short {
                bail!("--long must be more than --short");
            }
            let q = Qemu {
                manifest: work.join("manifest.json"),
                probe,
                plugin,
                sysroot,
                log: work.join("insn.log"),
            };
            let section = aarch64(&q, short, long, quick)?;
            update(&out, |r| r.aarch64 = Some(section))?;
        }
        Step::CortexM4 { log, out } => {
            let text = std::fs::read_to_string(&log)
                .with_context(|| format!("reading {}", log.display()))?;
            let rows = medq_benches::icount::parse(&text);
            if rows.is_empty() {
                bail!("{}: no layer rows in the icount output", log.display());
            }
            let section = CortexM4Section {
                qemu: version_line("qemu-system-arm"),
                rows,
            };
            print_table(&section.rows);
            update(&out, |r| r.cortex_m4 = Some(section))?;
        }
        Step::Render { out } => update(&out, |_| {})?,
        Step::Check { results } => {
            Results::load_or_new(&results)?.check()?;
            println!("{}: well formed", results.display());
        }
    }
    Ok(())
}

fn update(out: &Out, f: impl FnOnce(&mut Results)) -> Result<()> {
    let mut r = Results::load_or_new(&out.results)?;
    f(&mut r);
    r.save(&out.results, &out.md)?;
    eprintln!("wrote {} and {}", out.results.display(), out.md.display());
    Ok(())
}

fn manifest(work: &Path) -> Result<Manifest> {
    Manifest::load(&work.join("manifest.json"))
}

fn host(work: &Path, rounds: usize, quick: bool) -> Result<HostSection> {
    let machine = Machine::this();
    let mut rows = Vec::new();
    println!(
        "{:<20} {:>9} {:>21} {:>21} {:>7} {:>8}",
        "model", "MACs", "medq µs min/median", "tract µs min/median", "ratio", "GMAC/s"
    );
    for m in &manifest(work)?.models {
        let row = time_model(m, rounds)?;
        println!(
            "{:<20} {:>9} {:>10.2}/{:<10.2} {:>10.2}/{:<10.2} {:>7.3} {:>8.3}",
            row.model,
            row.macs,
            row.medq_us.min,
            row.medq_us.median,
            row.tract_us.min,
            row.tract_us.median,
            row.ratio,
            row.medq_gmacs
        );
        rows.push(row);
    }
    Ok(HostSection {
        machine,
        rounds,
        round_target_ms: ROUND_TARGET.as_secs_f64() * 1e3,
        quick,
        profile: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        }
        .into(),
        ort: None,
        rows,
    })
}

fn time_model(m: &PreparedModel, rounds: usize) -> Result<HostRow> {
    let sample = read_sample(&m.sample)?;
    let mut tract = TractEngine::load(&m.onnx, &m.input_shape, &sample)?;
    let t = with_medq(&m.mq, &sample, |medq| {
        interleaved(&mut [medq, &mut tract], rounds)
    })
    .with_context(|| m.name.clone())?;
    Ok(HostRow::new(&m.name, m.macs, &m.setting, t[0], t[1]))
}

struct Qemu {
    manifest: PathBuf,
    probe: PathBuf,
    plugin: PathBuf,
    sysroot: PathBuf,
    log: PathBuf,
}

impl Qemu {
    /// Guest instructions of one run of `infer_n` with `n` inferences.
    fn count(&self, cpu: &str, model: &str, engine: &str, n: u64) -> Result<u64> {
        let _ = std::fs::remove_file(&self.log);
        let out = Command::new("qemu-aarch64")
            .args(["-cpu", cpu])
            .arg("-L")
            .arg(&self.sysroot)
            .arg("-plugin")
            .arg(&self.plugin)
            .args(["-d", "plugin", "-D"])
            .arg(&self.log)
            .arg(&self.probe)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(["--model", model, "--engine", engine, "--n", &n.to_string()])
            .output()
            .context("running qemu-aarch64")?;
        if !out.status.success() {
            bail!(
                "qemu-aarch64 -cpu {cpu} infer_n {model} {engine} {n}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::read_to_string(&self.log)
            .with_context(|| format!("reading {}", self.log.display()))?;
        log.lines()
            .find_map(|l| l.strip_prefix("insn: ")?.trim().parse().ok())
            .ok_or_else(|| anyhow!("no `insn:` line in the plugin log: {log}"))
    }

    /// Instructions per inference: the long run minus the short one.
    fn per_inference(
        &self,
        cpu: &str,
        model: &str,
        engine: &str,
        short: u64,
        long: u64,
    ) -> Result<u64> {
        let a = self.count(cpu, model, engine, short)?;
        let b = self.count(cpu, model, engine, long)?;
        if b <= a {
            bail!("{model} {engine} -cpu {cpu}: {long} inferences took {b} instructions, {short} took {a}");
        }
        Ok(((b - a) as f64 / (long - short) as f64).round() as u64)
    }
}

const PLAIN_CPU: &str = "cortex-a72";
const DOTPROD_CPU: &str = "max";

fn aarch64(q: &Qemu, short: u64, long: u64, quick: bool) -> Result<Aarch64Section> {
    println!(
        "{:<20} {:>14} {:>14} {:>14} {:>7}",
        "model", "medq NEON", "medq dotprod", "tract f32", "ratio"
    );
    let mut rows = Vec::new();
    for m in &Manifest::load(&q.manifest)?.models {
        let n = &m.name;
        let plain = q.per_inference(PLAIN_CPU, n, "medq", short, long)?;
        let dot = q.per_inference(DOTPROD_CPU, n, "medq", short, long)?;
        let tract = q.per_inference(DOTPROD_CPU, n, "tract", short, long)?;
        let row = Aarch64Row::new(n, plain, dot, tract);
        println!(
            "{:<20} {:>14} {:>14} {:>14} {:>7.3}",
            n, plain, dot, tract, row.ratio
        );
        rows.push(row);
    }
    Ok(Aarch64Section {
        qemu: version_line("qemu-aarch64"),
        cpu: PLAIN_CPU.into(),
        dotprod_cpu: DOTPROD_CPU.into(),
        short_runs: short,
        long_runs: long,
        quick,
        rows,
    })
}

fn version_line(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("{program} (version unknown)"))
}

fn print_table(rows: &[medq_benches::results::CortexM4Row]) {
    println!(
        "{:<36} {:>9} {:>12} {:>12} {:>12}",
        "layer", "MACs", "instr/MAC", "ref/MAC", "CMSIS-NN/MAC"
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "—".into(), |v| format!("{v:.2}"));
    for r in rows {
        println!(
            "{:<36} {:>9} {:>12.2} {:>12} {:>12}",
            r.layer,
            r.macs,
            r.instr_per_mac,
            opt(r.ref_instr_per_mac),
            opt(r.cmsis_nn_instr_per_mac)
        );
    }
}
