//! `zoo-sweep`: every zoo model × pruning method × sparsity × variant
//! (weight grid and activation precision: int8, pow2, auto), converted and
//! measured, into `SWEEP.md`, `sweep.json` and `sweep/<model>.svg`
//! ([`medq_zoo::sweep`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use medq_zoo::sweep::{self, Method, Plan, Variant};
use medq_zoo::{self as zoo, ZooConfig};

#[derive(Parser, Debug)]
#[command(
    name = "zoo-sweep",
    version,
    about = "Sweep every zoo model over pruning methods, sparsities, weight grids and precisions",
    long_about = "Convert every model in the zoo config once per pruning method (structured, \
        l1, obs, random), sparsity and variant (int8: int8 weights and activations; pow2: \
        power-of-two weights; auto: int8 weights with --precision auto, the fewest layers \
        raised to int16 outputs), run each written .mq file on the model's test set against \
        the float model, and write SWEEP.md (a table per model, and whether the random \
        baseline is below l1 and obs), sweep.json (one row per run) and sweep/<model>.svg \
        (accuracy versus .mq size), each atomically.\n\n\
        The full sweep is long (hundreds of conversions, an hour or more); --only, --methods, \
        --sparsities and --variants narrow it, into another --out-dir, or with --merge into \
        the rows already there. A run that fails to convert is written as a row with its \
        error. Exit status: 0 when every run converted; 1 when one did not (the files are \
        written anyway); 2 when the config, the output directory or the sweep.json to merge \
        into cannot be used.",
    after_help = "Examples (from the workspace root):\n  \
        cargo run --release -p medq-zoo --bin zoo-sweep\n  \
        cargo run --release -p medq-zoo --bin zoo-sweep -- --only ecg5000 \
        --methods l1,random --sparsities 0,0.5 --variants int8 --out-dir /tmp/sweep\n  \
        cargo run --release -p medq-zoo --bin zoo-sweep -- --variants auto --merge"
)]
struct Cli {
    /// The zoo config; model folders are relative to its directory.
    #[arg(long, value_name = "FILE.json", default_value = "models/zoo.json")]
    config: PathBuf,

    /// Where to write SWEEP.md, sweep.json and sweep/ (default: the config's directory).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    /// Only this model (repeatable). A partial sweep must not replace the full
    /// one, so this and the narrowing options below need --out-dir or --merge.
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,

    /// Pruning methods (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,

    /// Sparsities in [0, 1) (comma-separated); 0 is the unpruned model.
    #[arg(long, value_delimiter = ',', value_parser = parse_sparsity)]
    sparsities: Vec<f64>,

    /// Weight grid and activation precision of each run (comma-separated):
    /// int8 (int8 weights and activations), pow2 (power-of-two weights),
    /// auto (int8 weights, --precision auto). `--weights int8,pow2` is the
    /// same.
    #[arg(long, value_enum, value_delimiter = ',', alias = "weights")]
    variants: Vec<Variant>,

    /// Add the rows of this sweep to the output directory's sweep.json
    /// (replacing those of the same model, method, sparsity, weights and
    /// precision, keeping the others) and write every file from them.
    #[arg(long)]
    merge: bool,

    /// Skip the occlusion attribution maps (the slowest part of each run).
    #[arg(long, requires = "out_dir")]
    no_attribution: bool,

    /// Convert nothing: render SWEEP.md and the charts again from the
    /// sweep.json in the output directory (after a change to the rendering).
    #[arg(long, conflicts_with_all = ["only", "methods", "sparsities", "variants", "no_attribution", "merge"])]
    render_only: bool,

    /// Also run each converted file once on a Cortex-M4 under QEMU and record
    /// its instructions per inference (`m4_instructions`). Needs
    /// qemu-system-arm and benches/qemu's model_cost binary
    /// (`cd benches/qemu && cargo build --release --bin model_cost`).
    #[arg(long, conflicts_with = "render_only")]
    m4: bool,

    /// Print nothing but errors and the final summary.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_sparsity(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        Ok(f) => Err(format!("{f} is not in [0, 1)")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let narrowed = !(cli.only.is_empty()
        && cli.methods.is_empty()
        && cli.sparsities.is_empty()
        && cli.variants.is_empty());
    if narrowed && cli.out_dir.is_none() && !cli.merge {
        eprintln!(
            "error: --only, --methods, --sparsities and --variants narrow the sweep, which \
             must not replace the full one: pass --out-dir DIR, or --merge to add its rows \
             to the sweep.json there"
        );
        return ExitCode::from(2);
    }
    medq_cli::remove_temporaries_on_interrupt();
    let config = match ZooConfig::load_for_cli(&cli.config, &cli.only) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let m4 = match cli.m4 {
        false => None,
        true => match medq_zoo::m4::M4::find(&config.base.join("..")) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("error: --m4: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let out_dir = cli.out_dir.clone().unwrap_or_else(|| config.base.clone());
    let svg_dir = out_dir.join("sweep");
    if let Err(e) = std::fs::create_dir_all(&svg_dir) {
        eprintln!("error: cannot create {}: {e}", svg_dir.display());
        return ExitCode::from(2);
    }
    let mut plan = Plan::default();
    if !cli.methods.is_empty() {
        plan.methods = cli.methods.clone();
    }
    if !cli.sparsities.is_empty() {
        plan.sparsities = cli.sparsities.clone();
    }
    if !cli.variants.is_empty() {
        plan.variants = cli.variants.clone();
    }
    plan.attribution = !cli.no_attribution;

    let start = Instant::now();
    // The rows already there, for --render-only and --merge (read before
    // converting anything).
    let old = match cli.render_only || cli.merge {
        true => match read_rows(&out_dir.join("sweep.json")) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        false => Vec::new(),
    };
    let failures = |rows: &[sweep::Row]| rows.iter().filter(|r| r.error.is_some()).count();
    // The runs of this sweep and how many failed (every row when only
    // rendering), and the rows to write.
    let (ran, failed, rows) = match cli.render_only {
        true => (old.len(), failures(&old), old),
        false => {
            let new = run(&cli, &config, &plan, m4.as_ref());
            let (ran, failed) = (new.len(), failures(&new));
            match cli.merge {
                true => (ran, failed, sweep::merge(old, new)),
                false => (ran, failed, new),
            }
        }
    };
    plan.attribution = rows.iter().any(|r| r.attribution_spearman_median.is_some());
    let models = sweep::models(&rows);

    let json = serde_json::json!({
        "about": "One row per zoo-sweep run; see SWEEP.md for how each was made.",
        "rows": rows,
    });
    let mut files: Vec<(PathBuf, String)> = vec![(
        out_dir.join("SWEEP.md"),
        sweep::render_markdown(&rows, &plan),
    )];
    // Rendering again leaves the JSON as it was (parsing and printing
    // floats again need not give the same digits).
    if !cli.render_only {
        files.push((
            out_dir.join("sweep.json"),
            serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
        ));
    }
    for model in models {
        match sweep::render_svg(&rows, model) {
            Ok(svg) => files.push((svg_dir.join(format!("{model}.svg")), svg)),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    for (path, text) in &files {
        if let Err(e) = medq_converter::convert::write_atomically(path, text.as_bytes()) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    eprintln!(
        "wrote {} ({ran} runs, {failed} failed{}, {:.0} s)",
        out_dir.join("SWEEP.md").display(),
        match cli.merge {
            true => format!(", {} rows after merging", rows.len()),
            false => String::new(),
        },
        start.elapsed().as_secs_f64()
    );
    match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// The rows of an earlier sweep's JSON.
fn read_rows(path: &std::path::Path) -> Result<Vec<sweep::Row>, String> {
    #[derive(serde::Deserialize)]
    struct File {
        rows: Vec<sweep::Row>,
    }
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice::<File>(&text)
        .map(|f| f.rows)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Every run of the plan on the selected models, with a progress bar.
fn run(
    cli: &Cli,
    config: &ZooConfig,
    plan: &Plan,
    m4: Option<&medq_zoo::m4::M4>,
) -> Vec<sweep::Row> {
    let selected: Vec<&zoo::ModelEntry> = config
        .models
        .iter()
        .filter(|m| cli.only.is_empty() || cli.only.contains(&m.name))
        .collect();
    let runs = sweep::runs(plan);
    let bar = match cli.quiet {
        true => indicatif::ProgressBar::hidden(),
        false => indicatif::ProgressBar::new((selected.len() * runs.len()) as u64),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for entry in &selected {
        for &run in &runs {
            let (method, sparsity, variant) = run;
            bar.set_message(format!(
                "{} {} {:.0}% {}",
                entry.name,
                method.map_or("none", Method::name),
                100.0 * sparsity,
                variant.name()
            ));
            let result = sweep::run_one(config, entry, run, plan.attribution, m4);
            if let Ok(sweep::Outcome {
                m4_instructions: Some(Err(e)),
                ..
            }) = &result
            {
                // `suspend`, not `println`: a bar off a terminal prints nothing.
                bar.suspend(|| eprintln!("{}: no M4 figure: {e}", entry.name));
            }
            rows.push(sweep::row(&entry.name, run, result.as_ref()));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    sweep::set_dense_bytes(&mut rows);
    rows
}
