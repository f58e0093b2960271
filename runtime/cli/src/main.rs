//! `medq`: inspect, run, benchmark and self-test `.mq` models on a host or an
//! ARM Linux edge box.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "medq",
    version,
    about = "Inspect and run quantized .mq models with the medq int8 runtime",
    after_help = "Examples:\n  \
        medq inspect ecg.mq\n  \
        medq run ecg.mq --input test_x.npy --output probs.npy --labels test_y.npy\n  \
        medq bench ecg.mq --iterations 2000\n  \
        medq selftest ecg.mq\n  \
        medq keygen maker.key && medq sign ecg.mq --key maker.key && medq verify ecg.mq --key maker.key.pub\n\n\
        `medq help <command>` shows each command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the header, metadata, inputs and outputs, ops, tensors and arena of a model.
    /// A corrupted or invalid file is refused with a non-zero exit.
    #[command(after_help = "Example:\n  medq inspect ecg.mq")]
    Inspect { model: PathBuf },
    /// Run float samples (float32, float64 or float16) through the model and write its dequantized float32 outputs.
    ///
    /// Each input file holds samples stacked on the first axis: [N, d1..dk] for a model
    /// input [1, d1..dk], and [N, d0..dk] (whole inputs) for one without a batch axis
    /// (a sequence-first [T, 1, C]). Each output is written as [N, ...]: an output [1, d1..dk] as
    /// [N, d1..dk], one without a batch axis (a per-step classifier's [T, C]) as
    /// [N, T, C]. The files are streamed a
    /// chunk of samples at a time (memory does not grow with N), the samples are spread
    /// over --threads interpreters, and the outputs come out in input order, identical
    /// whatever the thread count. Inputs must be finite (NaN and infinities are refused,
    /// naming the sample); Fortran-order files are read transposed. Outputs are written
    /// under temporary names and renamed only when the whole run succeeded.
    ///
    /// Input values outside the range the model was calibrated for are clipped to it;
    /// a line on stderr counts the samples and values clipped. A model converted with
    /// --abstain-margin calls a sample uncertain when output 0's top-1 probability leads
    /// the runner-up by less than the margin: the run prints how many were, and with
    /// --labels an uncertain sample counts as wrong.
    #[command(after_help = "Examples:\n  \
        medq run ecg.mq --input test_x.npy --output probs.npy\n  \
        medq run ecg.mq --input test_x.npy --output probs.npy --labels test_y.npy --threads 4\n  \
        medq run two_inputs.mq --input signal.npy --input meta.npy --output y0.npy --output y1.npy")]
    Run {
        model: PathBuf,
        /// Float32 .npy, samples on the first axis: once per model input, in the
        /// model's input order (`medq inspect` lists them).
        #[arg(long, value_name = "X.npy", required = true)]
        input: Vec<PathBuf>,
        /// Where to write each output, once per model output, in order.
        #[arg(long, value_name = "Y.npy", required = true)]
        output: Vec<PathBuf>,
        /// Integer class labels (any integer type, or whole numbers in a float array; one per sample): print the top-1
        /// accuracy of output 0. Checked before anything is written.
        #[arg(long, value_name = "LABELS.npy")]
        labels: Option<PathBuf>,
        /// Worker threads, each with its own interpreter [default: all cores].
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Time inference on this machine, in total and per op, and show which kernel ran
    /// each op and why faster candidate kernels did not take it.
    ///
    /// The iterations are split into rounds; times are the median and the minimum of the
    /// rounds' per-inference times. The total is timed without the per-op clock reads
    /// (the per-op times come from as many extra inferences).
    #[command(after_help = "Examples:\n  \
        medq bench ecg.mq\n  \
        medq bench ecg.mq --iterations 5000 --json > bench.json\n\n\
        JSON schema (medq-bench/1):\n  \
        {\"schema\": \"medq-bench/1\", \"iterations\", \"rounds\", \"arena_bytes\", \"macs\",\n   \
        \"total_us\": {\"median\", \"min\"}, \"gmacs\",\n   \
        \"ops\": [{\"index\", \"op\", \"kernel\", \"refused\": [{\"kernel\", \"reason\"}],\n            \
        \"us\": {\"median\", \"min\"}, \"macs\", \"gmacs\"}]}\n  \
        Times are µs per inference; gmacs is G MAC/s at the median time.")]
    Bench {
        model: PathBuf,
        /// Timed inferences (at least 1).
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the golden input stored in the file and check the output bit for bit.
    #[command(after_help = "Example:\n  medq selftest ecg.mq")]
    Selftest { model: PathBuf },
    /// Make an Ed25519 key pair for signing models: the secret key in KEY (PKCS#8 PEM,
    /// readable by its owner only) and the public key in KEY.pub (PEM). Keep KEY
    /// secret; devices get KEY.pub (or the hex this prints) at build time.
    #[command(after_help = "Example:\n  medq keygen maker.key\n\n\
        Keys from `openssl genpkey -algorithm ed25519 -out maker.key` work too.")]
    Keygen {
        #[arg(value_name = "KEY")]
        key: PathBuf,
        /// Overwrite an existing KEY or KEY.pub.
        #[arg(long)]
        force: bool,
    },
    /// Sign a model with a secret key: adds (or replaces) the file's signature section,
    /// which covers every other byte. The file is rewritten atomically.
    #[command(after_help = "Examples:\n  \
        medq sign ecg.mq --key maker.key\n  \
        medq sign ecg.mq --key maker.key --output ecg.signed.mq\n\n\
        The converter signs as it writes: `converter ecg.onnx -o ecg.mq --sign maker.key`.")]
    Sign {
        model: PathBuf,
        /// The secret key (from `medq keygen`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Write the signed file here instead of replacing MODEL.
        #[arg(long, value_name = "OUT.mq")]
        output: Option<PathBuf>,
    },
    /// Check that a model is signed with the secret key matching a public key. Exits 0
    /// only for a genuine file; a file changed after signing, signed with another key,
    /// unsigned or corrupted exits 1 with the reason.
    #[command(after_help = "Example:\n  medq verify ecg.mq --key maker.key.pub")]
    Verify {
        model: PathBuf,
        /// The public key (KEY.pub from `medq keygen`).
        #[arg(long, value_name = "KEY.pub")]
        key: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    medq_cli::remove_temporaries_on_interrupt();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// ", first: samples 3, 17, …" for a report line, or nothing.
fn first_samples(counts: &medq_cli::SampleCounts) -> String {
    if counts.first.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts.first.iter().map(usize::to_string).collect();
    let more = if counts.samples > counts.first.len() {
        ", …"
    } else {
        ""
    };
    format!("; first: samples {}{more}", list.join(", "))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { model } => {
            let file = medq_cli::open(&model)?;
            print!("{}", medq_cli::inspect(&file)?);
        }
        Command::Run {
            model,
            input,
            output,
            labels,
            threads,
        } => {
            let file = medq_cli::open(&model)?;
            let opts = medq_cli::RunOptions {
                inputs: input,
                outputs: output,
                labels,
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                chunk_samples: None,
            };
            let start = Instant::now();
            let done = medq_cli::run_files(&file.model()?, &opts)?;
            let secs = start.elapsed().as_secs_f64();
            for (path, shape) in opts.outputs.iter().zip(&done.output_shapes) {
                println!("wrote {} {:?}", path.display(), shape);
            }
            println!(
                "{} samples in {secs:.3} s ({:.0} samples/s) on {} thread{}",
                done.samples,
                done.samples as f64 / secs.max(f64::MIN_POSITIVE),
                done.threads,
                if done.threads == 1 { "" } else { "s" }
            );
            let c = &done.clipping;
            eprintln!(
                "clipped inputs: {} of {} samples had values outside the calibrated range ({} values clipped){}",
                c.samples,
                done.samples,
                c.total,
                first_samples(c)
            );
            let percent = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
            if let Some(margin) = done.abstain_margin {
                println!(
                    "uncertain {} of {} samples (top-1 margin below {margin}){}",
                    done.uncertain.samples,
                    done.samples,
                    first_samples(&done.uncertain)
                );
            }
            if let Some(correct) = done.correct {
                println!(
                    "accuracy {:.2}% on {} samples",
                    percent(correct, done.samples),
                    done.samples
                );
                if done.abstain_margin.is_some() {
                    let decided = done.samples - done.uncertain.samples;
                    println!(
                        "accuracy {:.2}% on the {decided} samples given a class (uncertain ones count as wrong above)",
                        percent(correct, decided)
                    );
                }
            }
        }
        Command::Bench {
            model,
            iterations,
            json,
        } => {
            let file = medq_cli::open(&model)?;
            let report = medq_cli::bench(&file.model()?, iterations)?;
            if json {
                print!("{}", report.json());
            } else {
                println!("{}", model.display());
                print!("{}", report.table());
            }
        }
        Command::Selftest { model: path } => {
            let file = medq_cli::open(&path)?;
            medq_cli::selftest(&file.model()?)
                .with_context(|| format!("self-test of {}", path.display()))?;
            println!("self-test passed: the golden output matches bit for bit");
        }
        Command::Keygen { key, force } => {
            let public = medq_cli::keys::keygen(&key, force)?;
            println!(
                "wrote the secret key {} and the public key {}",
                key.display(),
                medq_cli::keys::public_key_path(&key).display()
            );
            println!("public key (hex): {}", medq_cli::keys::key_hex(&public));
        }
        Command::Sign { model, key, output } => {
            let output = output.unwrap_or_else(|| model.clone());
            medq_cli::keys::sign_file(&model, &key, &output)?;
            println!("signed {} with {}", output.display(), key.display());
        }
        Command::Verify { model, key } => {
            medq_cli::keys::verify_file(&model, &key)?;
            println!("{}: signature valid for {}", model.display(), key.display());
        }
    }
    Ok(())
}
