//! ONNX's node tests through medq: every test whose ops the converter
//! supports (`medq_converter::load::SUPPORTED_OPS`) is converted, calibrated
//! on its own inputs, run on the medq runtime and compared with ONNX's
//! expected outputs under its op's bound (`bounds.rs`, `README.md`).
//! A test that neither passes nor is listed in `excluded.txt` fails the run.
//!
//! ```text
//! cargo test -p medq-converter --test onnx_node -- [--data DIR] [--markdown] [--list] [--only SUBSTR]
//! ```
//!
//! The data are onnx==1.22.0's `backend/test/data/node` (found through
//! `python3`, or `--data DIR`).

mod bounds;
mod case;
mod run;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use bounds::{bound_for, op_key, Bound, Measure};
use case::Case;

/// The onnx release whose node tests `excluded.txt` was written against.
const ONNX_VERSION: &str = "1.22.0";

const USAGE: &str = "usage: cargo test -p medq-converter --test onnx_node -- \
[--data DIR] [--markdown] [--list] [--only SUBSTRING]";

#[derive(Default)]
struct Args {
    data: Option<PathBuf>,
    markdown: bool,
    list: bool,
    only: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => args.data = Some(it.next().context(USAGE)?.into()),
            "--only" => args.only = Some(it.next().context(USAGE)?),
            "--markdown" => args.markdown = true,
            "--list" => args.list = true,
            // What `cargo test` may pass to every test binary.
            "--quiet" | "-q" | "--nocapture" => {}
            _ => bail!("unknown argument {a:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// onnx's node test directory, through the installed Python package.
fn find_data() -> Result<PathBuf> {
    let script = "import onnx, os; print(onnx.__version__); print(os.path.dirname(onnx.__file__))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .context("running python3 to find the onnx package (or pass --data DIR)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(version), Some(dir)) = (lines.next(), lines.next()) else {
        bail!(
            "the onnx Python package is not installed: `python3 -m pip install onnx=={ONNX_VERSION}` \
             (or pass --data DIR)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if version != ONNX_VERSION {
        bail!(
            "onnx {version} is installed; excluded.txt lists onnx {ONNX_VERSION}'s node tests: \
             `python3 -m pip install onnx=={ONNX_VERSION}` (or pass --data DIR)"
        );
    }
    Ok(Path::new(dir).join("backend/test/data/node"))
}

/// `excluded.txt`: `test_name  reason` per line, `#` comments.
fn read_exclusions() -> Result<BTreeMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_node/excluded.txt");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut out = BTreeMap::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if reason.trim().is_empty() {
            bail!("excluded.txt line {}: {name} has no reason", k + 1);
        }
        if out
            .insert(name.to_string(), reason.trim().to_string())
            .is_some()
        {
            bail!("excluded.txt line {}: {name} is listed twice", k + 1);
        }
    }
    Ok(out)
}

/// What became of one test.
enum Status {
    Passed(Measure),
    /// Listed in `excluded.txt`; the run's own error kept for `--list`.
    Excluded {
        reason: String,
        error: String,
    },
    /// medq's interface cannot carry its data (integer tensors and such).
    NotRunnable(String),
    Failed(String),
    /// Listed in `excluded.txt`, yet it passes: the line should go.
    ExcludedButPasses(Measure),
}

struct Row {
    name: String,
    op: String,
    bound: Bound,
    status: Status,
}

/// The test directories whose op types are all supported, and how many
/// test directories there are.
fn candidates(data: &Path, only: Option<&str>) -> Result<(Vec<PathBuf>, usize)> {
    let supported = medq_converter::load::SUPPORTED_OPS;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    let total = dirs.len();
    let mut picked = Vec::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if only.is_some_and(|s| !name.as_deref().unwrap_or("").contains(s)) {
            continue;
        }
        let (_, ops) = case::read_model(&dir)?;
        if !ops.is_empty() && ops.iter().all(|op| supported.contains(&op.as_str())) {
            picked.push(dir);
        }
    }
    Ok((picked, total))
}

fn judge(dir: &Path, exclusions: &BTreeMap<String, String>) -> Result<Row> {
    let case = Case::load(dir)?;
    let op = op_key(&case.ops);
    let bound = bound_for(&case.ops);
    let status = match case.unrunnable() {
        Some(why) => Status::NotRunnable(why),
        None => {
            let result = run::run_guarded(&case)
                .map_err(|e| format!("{e:#}"))
                .and_then(|m| match m.check(bound) {
                    Ok(()) => Ok(m),
                    Err(e) => Err(format!("{e} ({m})")),
                });
            match (result, exclusions.get(&case.name)) {
                (Ok(m), None) => Status::Passed(m),
                (Ok(m), Some(_)) => Status::ExcludedButPasses(m),
                (Err(error), Some(reason)) => Status::Excluded {
                    reason: reason.clone(),
                    error,
                },
                (Err(e), None) => Status::Failed(e),
            }
        }
    };
    Ok(Row {
        name: case.name,
        op,
        bound,
        status,
    })
}

#[derive(Default)]
struct Counts {
    tests: usize,
    passed: usize,
    excluded: usize,
    not_runnable: usize,
    failed: usize,
    bound: Option<Bound>,
}

fn count(rows: &[Row]) -> BTreeMap<&str, Counts> {
    let mut by_op: BTreeMap<&str, Counts> = BTreeMap::new();
    for r in rows {
        let c = by_op.entry(&r.op).or_default();
        c.tests += 1;
        c.bound = Some(r.bound);
        match r.status {
            Status::Passed(_) | Status::ExcludedButPasses(_) => c.passed += 1,
            Status::Excluded { .. } => c.excluded += 1,
            Status::NotRunnable(_) => c.not_runnable += 1,
            Status::Failed(_) => c.failed += 1,
        }
    }
    by_op
}

fn table(rows: &[Row], total: usize, markdown: bool) -> String {
    let by_op = count(rows);
    let mut out = String::new();
    let header = [
        "op",
        "tests",
        "pass",
        "fail",
        "excluded",
        "not runnable",
        "bound",
    ];
    let line = |cells: &[String]| {
        if markdown {
            format!("| {} |\n", cells.join(" | "))
        } else {
            format!(
                "{:<24}{:>6}{:>6}{:>6}{:>10}{:>14}  {}\n",
                cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
            )
        }
    };
    out.push_str(&line(&header.map(String::from)));
    if markdown {
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    }
    let mut sum = Counts::default();
    for (op, c) in &by_op {
        out.push_str(&line(&[
            op.to_string(),
            c.tests.to_string(),
            c.passed.to_string(),
            c.failed.to_string(),
            c.excluded.to_string(),
            c.not_runnable.to_string(),
            c.bound.map(|b| b.to_string()).unwrap_or_default(),
        ]));
        sum.tests += c.tests;
        sum.passed += c.passed;
        sum.failed += c.failed;
        sum.excluded += c.excluded;
        sum.not_runnable += c.not_runnable;
    }
    out.push_str(&line(&[
        "all".into(),
        sum.tests.to_string(),
        sum.passed.to_string(),
        sum.failed.to_string(),
        sum.excluded.to_string(),
        sum.not_runnable.to_string(),
        String::new(),
    ]));
    out.push_str(&format!(
        "\n{} of onnx {ONNX_VERSION}'s {total} node tests use only ops medq supports.\n",
        sum.tests
    ));
    out
}

fn list(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let s = match &r.status {
            Status::Passed(m) => format!("run, passes: {m}"),
            Status::ExcludedButPasses(m) => format!("run, passes (yet excluded): {m}"),
            Status::Excluded { reason, error } => format!("excluded: {reason} [{error}]"),
            Status::NotRunnable(why) => format!("not runnable: {why}"),
            Status::Failed(e) => format!("FAILS: {e}"),
        };
        out.push_str(&format!("{:<60} {:<20} {s}\n", r.name, r.op));
    }
    out
}

fn main() -> ExitCode {
    match run_all() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("onnx node tests: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_all() -> Result<bool> {
    let args = parse_args()?;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => find_data()?,
    };
    let exclusions = read_exclusions()?;
    let start = std::time::Instant::now();
    let (dirs, total) = candidates(&data, args.only.as_deref())?;
    let rows = dirs
        .iter()
        .map(|d| judge(d, &exclusions))
        .collect::<Result<Vec<Row>>>()?;
    if args.list {
        print!("{}", list(&rows));
    }
    print!("{}", table(&rows, total, args.markdown));
    println!("({:.1} s)", start.elapsed().as_secs_f64());
    Ok(report_problems(&rows, &exclusions, args.only.is_some()))
}

/// Print what needs attention; `false` when a test fails.
fn report_problems(rows: &[Row], exclusions: &BTreeMap<String, String>, filtered: bool) -> bool {
    let names: HashMap<&str, &Row> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
    for r in rows {
        if let Status::ExcludedButPasses(m) = &r.status {
            println!(
                "note: {} passes ({m}); remove its line from excluded.txt",
                r.name
            );
        }
    }
    if !filtered {
        for name in exclusions
            .keys()
            .filter(|n| !names.contains_key(n.as_str()))
        {
            println!("note: excluded.txt lists {name}, which is not a test of a supported op");
        }
    }
    let failed: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Failed(_)))
        .collect();
    for r in &failed {
        if let Status::Failed(e) = &r.status {
            println!("FAILED {} ({}, {}): {e}", r.name, r.op, r.bound);
        }
    }
    if !failed.is_empty() {
        println!(
            "{} node tests fail: fix them, or add `test_name  reason` lines to \
             converter/tests/onnx_node/excluded.txt",
            failed.len()
        );
    }
    failed.is_empty()
}
