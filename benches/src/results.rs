//! `benches/results.json` and its rendering as `benches/RESULTS.md`. Each
//! section is replaced by the step that measures it and the others are kept,
//! so `run.sh --host` refreshes the host table alone.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::timing::Micros;

/// The command that regenerates the files, as they name it.
pub const COMMAND: &str = "benches/run.sh";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aarch64: Option<Aarch64Section>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cortex_m4: Option<CortexM4Section>,
}

/// The machine a section was measured on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// `lscpu`'s model name.
    pub cpu: String,
    pub cores: usize,
    /// The 1-minute load average when the measurement started.
    pub load_average: f64,
}

impl Machine {
    pub fn this() -> Machine {
        let cpu = std::process::Command::new("lscpu")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
            })
            .unwrap_or_else(|| "unknown (no lscpu)".into());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostSection {
    pub machine: Machine,
    pub rounds: usize,
    pub round_target_ms: f64,
    /// A `--quick` smoke run: few rounds, not figures to quote.
    pub quick: bool,
    /// The cargo profile of the harness: `release`, or `dev` for `--quick`.
    pub profile: String,
    /// Set by `ort_compare.py` when it added the ORT columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort: Option<OrtInfo>,
    pub rows: Vec<HostRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrtInfo {
    pub onnxruntime: String,
    pub rounds: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostRow {
    pub model: String,
    pub macs: u64,
    pub medq_us: Micros,
    pub tract_us: Micros,
    /// medq median / tract median: below 1 medq is faster.
    pub ratio: f64,
    /// medq min / tract min: on a loaded machine the less disturbed figure.
    pub ratio_min: f64,
    /// Multiply-accumulates per second at medq's median time, in 10^9.
    pub medq_gmacs: f64,
    /// The converter setting the `.mq` was made with.
    pub setting: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_f32_us: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_int8_us: Option<Micros>,
}

impl HostRow {
    pub fn new(model: &str, macs: u64, setting: &str, medq: Micros, tract: Micros) -> HostRow {
        HostRow {
            model: model.into(),
            macs,
            ratio: round(medq.median / tract.median, 3),
            ratio_min: round(medq.min / tract.min, 3),
            medq_gmacs: round(macs as f64 / medq.median / 1e3, 4),
            medq_us: round_micros(medq),
            tract_us: round_micros(tract),
            setting: setting.into(),
            ort_f32_us: None,
            ort_int8_us: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Aarch64Section {
    /// `qemu-aarch64 --version`'s first line.
    pub qemu: String,
    /// `-cpu` for medq's plain NEON path.
    pub cpu: String,
    /// `-cpu` for medq's dot-product path and for tract.
    pub dotprod_cpu: String,
    /// Inferences in the short and the long run; counts are
    /// (long − short) / (long_runs − short_runs).
    pub short_runs: u64,
    pub long_runs: u64,
    pub quick: bool,
    pub rows: Vec<Aarch64Row>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Aarch64Row {
    pub model: String,
    pub medq_instructions: u64,
    pub medq_dotprod_instructions: u64,
    pub tract_instructions: u64,
    /// medq (dot product) / tract: below 1 medq runs fewer instructions.
    pub ratio: f64,
}

impl Aarch64Row {
    pub fn new(model: &str, medq: u64, medq_dotprod: u64, tract: u64) -> Aarch64Row {
        Aarch64Row {
            model: model.into(),
            medq_instructions: medq,
            medq_dotprod_instructions: medq_dotprod,
            tract_instructions: tract,
            ratio: round(medq_dotprod as f64 / tract.max(1) as f64, 3),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CortexM4Section {
    /// `qemu-system-arm --version`'s first line.
    pub qemu: String,
    pub rows: Vec<CortexM4Row>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CortexM4Row {
    pub layer: String,
    pub macs: u64,
    /// Instructions per MAC of the kernel medq dispatches on the M4.
    pub instr_per_mac: f64,
    /// The same of medq's reference kernel, when the output gives it.
    pub ref_instr_per_mac: Option<f64>,
    /// CMSIS-NN's instructions per MAC on the same shape, when known.
    pub cmsis_nn_instr_per_mac: Option<f64>,
    /// The kernel medq dispatched, when the output names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

/// `v` to `decimals` places, without `-0`.
pub fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    let r = (v * p).round() / p;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

fn round_micros(m: Micros) -> Micros {
    Micros {
        min: round(m.min, 2),
        median: round(m.median, 2),
    }
}

impl Results {
    /// The file at `path`, or empty results if there is none yet.
    pub fn load_or_new(path: &Path) -> Result<Results> {
        if !path.exists() {
            return Ok(Results {
                command: COMMAND.into(),
                ..Results::default()
            });
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Write `json` and its rendering `md`.
    pub fn save(&self, json: &Path, md: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(json, text).with_context(|| format!("writing {}", json.display()))?;
        std::fs::write(md, crate::results::render(self))
            .with_context(|| format!("writing {}", md.display()))
    }

    /// Refuse results that are not complete, finite and positive: what the
    /// CI smoke checks.
    pub fn check(&self) -> Result<()> {
        let positive = |what: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v > 0.0) {
                bail!("{what} is {v}, not a positive number");
            }
            Ok(())
        };
        if let Some(h) = &self.host {
            if h.rows.is_empty() {
                bail!("host: no rows");
            }
            for r in &h.rows {
                let m = |f: &str| format!("host {}: {f}", r.model);
                for (f, t) in [("medq_us", r.medq_us), ("tract_us", r.tract_us)] {
                    positive(&m(f), t.min)?;
                    positive(&m(f), t.median)?;
                    if t.min > t.median {
                        bail!("{}: min {} > median {}", m(f), t.min, t.median);
                    }
                }
                positive(&m("ratio"), r.ratio)?;
                positive(&m("ratio_min"), r.ratio_min)?;
                positive(&m("macs"), r.macs as f64)?;
                positive(&m("medq_gmacs"), r.medq_gmacs)?;
            }
        }
        if let Some(a) = &self.aarch64 {
            if a.rows.is_empty() {
                bail!("aarch64: no rows");
            }
            for r in &a.rows {
                let m = |f: &str| format!("aarch64 {}: {f}", r.model);
                positive(&m("medq_instructions"), r.medq_instructions as f64)?;
                positive(&m("medq_dotprod"), r.medq_dotprod_instructions as f64)?;
                positive(&m("tract_instructions"), r.tract_instructions as f64)?;
                positive(&m("ratio"), r.ratio)?;
            }
        }
        if let Some(c) = &self.cortex_m4 {
            if c.rows.is_empty() {
                bail!("cortex_m4: no rows");
            }
            for r in &c.rows {
                positive(&format!("cortex_m4 {}: macs", r.layer), r.macs as f64)?;
                positive(
                    &format!("cortex_m4 {}: instr_per_mac", r.layer),
                    r.instr_per_mac,
                )?;
            }
        }
        Ok(())
    }
}

pub fn render(r: &Results) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "# medq side by side\n");
    let _ = writeln!(
        w,
        "Generated by `{}` (see `benches/run.sh --help`); the same figures are in \
         `benches/results.json`. Do not edit by hand.\n",
        r.command
    );
    if let Some(h) = &r.host {
        render_host(&mut w, h);
    }
    if let Some(a) = &r.aarch64 {
        render_aarch64(&mut w, a);
    }
    if let Some(c) = &r.cortex_m4 {
        render_cortex_m4(&mut w, c);
    }
    w
}

fn us(m: Micros) -> String {
    format!("{:.2} / {:.2}", m.min, m.median)
}

fn opt_us(m: Option<Micros>) -> String {
    m.map_or_else(|| "—".into(), us)
}

fn render_host(w: &mut String, h: &HostSection) {
    let _ = writeln!(w, "## Host: time per inference, medq int8 vs tract f32\n");
    if h.quick {
        let _ = writeln!(
            w,
            "**Quick smoke run (`--quick`): too few rounds to quote.**\n"
        );
    }
    let _ = writeln!(
        w,
        "Machine: {} ({} cores), 1-minute load average {:.2} when the run started. This \
         machine is shared and may be loaded: read the times as ratios (medq and tract \
         ran interleaved, so load hits both alike), not as absolute speeds.\n",
        h.machine.cpu, h.machine.cores, h.machine.load_average
    );
    let _ = writeln!(
        w,
        "How: {} build (`benches/src/bin/side_by_side.rs`), batch 1, one thread, the \
         first calibration sample as input. medq runs the `.mq` that the converter library \
         makes from the committed ONNX model with the zoo's settings (`models/zoo.json`: \
         cinc_ecg_torso pruned to 30% of its ONNX file; the converter's default calibration \
         instead of the `--select` search, which changes int8 values, not ops or MACs, so \
         not speed); each medq inference copies the int8 input into the arena and invokes. \
         tract runs the same ONNX model as a user after speed would: the input shape fixed, \
         `into_optimized()`, `into_runnable()`, one state reused, single-threaded executor; \
         each inference clones the input tensor and runs. {} interleaved rounds (medq, \
         tract, medq, tract, …), each engine's batch in a round taking about {} ms after a \
         warm-up; a round gives one per-inference time per engine. Times are min / median \
         over the rounds, in µs. ratio = medq median / tract median (below 1: medq is \
         faster); ratio of mins = medq min / tract min, the figure least disturbed by a \
         loaded machine. GMAC/s = the `.mq` model's MACs / medq's median time.\n",
        h.profile, h.rounds, h.round_target_ms
    );
    let ort = h.ort.is_some();
    let _ = write!(
        w,
        "| model | MACs | medq µs (min / median) | tract µs (min / median) | ratio | ratio of mins | medq GMAC/s |"
    );
    if ort {
        let _ = write!(w, " ORT f32 µs | ORT int8 µs |");
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |{}",
        if ort { " ---: | ---: |" } else { "" }
    );
    for r in &h.rows {
        let _ = write!(
            w,
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |",
            r.model,
            r.macs,
            us(r.medq_us),
            us(r.tract_us),
            r.ratio,
            r.ratio_min,
            r.medq_gmacs
        );
        if ort {
            let _ = write!(w, " {} | {} |", opt_us(r.ort_f32_us), opt_us(r.ort_int8_us));
        }
        let _ = writeln!(w);
    }
    if let Some(o) = &h.ort {
        let _ = writeln!(
            w,
            "\nORT columns (`python3 benches/ort_compare.py`, optional, not in CI): \
             onnxruntime {} on the same ONNX model and sample, one intra-op and one \
             inter-op thread, all graph optimizations; int8 is `quantize_static` QDQ, \
             per-channel int8 weights and int8 activations, calibrated on the model's \
             `calib.npy`. {} interleaved rounds (ORT f32, ORT int8) in its own process, \
             timed the same way; compare with the other columns as ratios.",
            o.onnxruntime, o.rounds
        );
    }
    let _ = writeln!(w);
}

fn render_aarch64(w: &mut String, a: &Aarch64Section) {
    let _ = writeln!(w, "## aarch64: instructions per inference under QEMU\n");
    if a.quick {
        let _ = writeln!(w, "**Quick smoke run (`--quick`).**\n");
    }
    let _ = writeln!(
        w,
        "How: the bench binary `infer_n` cross-built for `aarch64-unknown-linux-gnu` \
         (release; tract with its own aarch64 NEON kernels) runs under `{}` with the TCG \
         plugin `benches/qemu-plugin/insn.c`, which counts every guest instruction the \
         process executes. Each figure is (count of a run with {} inferences − count of a \
         run with {}) / {}, so loading, parsing and tract's optimization cancel exactly; \
         the `.mq` files and samples are the host's. medq: `-cpu {}` (NEON, no dot \
         product) and `-cpu {}` (dot product available: medq picks its `sdot` kernels \
         where it has them). tract f32: `-cpu {}`. ratio = medq (dot product) / tract. \
         Instruction counts are not cycles (an `sdot` or a 4-lane f32 FMA counts as one), \
         but they do not depend on the load of the machine.\n",
        a.qemu,
        a.long_runs,
        a.short_runs,
        a.long_runs - a.short_runs,
        a.cpu,
        a.dotprod_cpu,
        a.dotprod_cpu
    );
    let _ = writeln!(
        w,
        "| model | medq (NEON) | medq (dot product) | tract f32 | ratio |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for r in &a.rows {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {:.3} |",
            r.model,
            r.medq_instructions,
            r.medq_dotprod_instructions,
            r.tract_instructions,
            r.ratio
        );
    }
    let _ = writeln!(w);
}

fn opt2(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

fn render_cortex_m4(w: &mut String, c: &CortexM4Section) {
    let _ = writeln!(w, "## Cortex-M4: instructions per MAC under QEMU\n");
    let _ = writeln!(
        w,
        "How: `benches/qemu` (`icount` binary, run as `benches/qemu/run.sh` runs it) on \
         `{}`, machine mps2-an386 (Cortex-M4F), `-icount shift=0`: SysTick then counts guest \
         instructions exactly. Each layer runs medq's reference kernel and the kernel \
         medq dispatches on the M4 on random data with the same shape and checks they \
         agree; MACs are nominal (`C_out · positions · K`, padded taps included). \
         CMSIS-NN's instructions per MAC for the same shape are the figures the icount \
         output cites, where it cites one (—: none).\n",
        c.qemu
    );
    let _ = writeln!(
        w,
        "| layer | MACs | medq instr/MAC | reference instr/MAC | CMSIS-NN instr/MAC | medq kernel |\n| --- | ---: | ---: | ---: | ---: | --- |"
    );
    for r in &c.rows {
        let _ = writeln!(
            w,
            "| {} | {} | {:.2} | {} | {} | {} |",
            r.layer.replace('|', "\\|"),
            r.macs,
            r.instr_per_mac,
            opt2(r.ref_instr_per_mac),
            opt2(r.cmsis_nn_instr_per_mac),
            r.kernel.as_deref().map_or("—".into(), |k| format!("`{k}`"))
        );
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_row(medq: f64, tract: f64) -> HostRow {
        let m = |v| Micros { min: v, median: v };
        HostRow::new("m", 1000, "mse + nearest", m(medq), m(tract))
    }

    #[test]
    fn host_ratio_and_throughput() {
        let r = host_row(2.0, 4.0);
        assert_eq!(r.ratio, 0.5);
        // 1000 MACs in 2 µs = 0.5 GMAC/s.
        assert_eq!(r.medq_gmacs, 0.5);
    }

    #[test]
    fn check_refuses_a_zero_time_and_accepts_a_sane_file() {
        let mut r = Results {
            command: COMMAND.into(),
            host: Some(HostSection {
                machine: Machine {
                    cpu: "x".into(),
                    cores: 2,
                    load_average: 0.5,
                },
                rounds: 3,
                round_target_ms: 20.0,
                quick: true,
                profile: "dev".into(),
                ort: None,
                rows: vec![host_row(2.0, 4.0)],
            }),
            aarch64: Some(Aarch64Section {
                qemu: "q".into(),
                cpu: "cortex-a72".into(),
                dotprod_cpu: "max".into(),
                short_runs: 1,
                long_runs: 3,
                quick: true,
                rows: vec![Aarch64Row::new("m", 10, 8, 16)],
            }),
            cortex_m4: None,
        };
        r.check().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        back.check().unwrap();
        assert_eq!(back.aarch64.as_ref().unwrap().rows[0].ratio, 0.5);
        r.host.as_mut().unwrap().rows[0].tract_us.median = 0.0;
        assert!(r.check().is_err());
    }

    #[test]
    fn the_markdown_has_one_row_per_model_and_the_ort_columns_only_when_measured() {
        let mut r = Results {
            command: COMMAND.into(),
            host: Some(HostSection {
                machine: Machine {
                    cpu: "x".into(),
                    cores: 2,
                    load_average: 0.5,
                },
                rounds: 3,
                round_target_ms: 20.0,
                quick: false,
                profile: "release".into(),
                ort: None,
                rows: vec![host_row(2.0, 4.0), host_row(1.0, 4.0)],
            }),
            ..Results::default()
        };
        let md = render(&r);
        assert_eq!(md.lines().filter(|l| l.starts_with("| m |")).count(), 2);
        assert!(!md.contains("ORT f32"));
        let h = r.host.as_mut().unwrap();
        h.ort = Some(OrtInfo {
            onnxruntime: "1.0".into(),
            rounds: 3,
        });
        h.rows[0].ort_f32_us = Some(Micros {
            min: 7.0,
            median: 8.0,
        });
        let md = render(&r);
        assert!(md.contains("| ORT f32 µs | ORT int8 µs |"));
        assert!(md.contains("| 7.00 / 8.00 | — |"));
    }
}
