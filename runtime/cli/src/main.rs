//! `medq`: inspect, run, benchmark and self-test `.mq` models on a host or an
//! ARM Linux edge box.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
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
        medq selftest ecg.mq"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the header, metadata, inputs and outputs, ops, tensors and arena of a model.
    /// A corrupted or invalid file is refused with a non-zero exit.
    Inspect { model: PathBuf },
    /// Run a batch of float32 samples ([N, d1..dk] for an input [1, d1..dk]) and write
    /// the dequantized float32 outputs ([N, ...]).
    Run {
        model: PathBuf,
        /// Float32 .npy with samples stacked on the first axis.
        #[arg(long, value_name = "X.npy")]
        input: PathBuf,
        /// Where to write each output, once per model output, in order.
        #[arg(long, value_name = "Y.npy", required = true)]
        output: Vec<PathBuf>,
        /// Integer class labels: print the top-1 accuracy of output 0.
        #[arg(long, value_name = "LABELS.npy")]
        labels: Option<PathBuf>,
    },
    /// Time inference on this machine, in total and per op.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
    },
    /// Run the golden input stored in the file and check the output bit for bit.
    Selftest { model: PathBuf },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        } => {
            let file = medq_cli::open(&model)?;
            let model = file.model()?;
            if output.len() != model.outputs().len() {
                bail!(
                    "the model has {} outputs; give --output once for each (got {})",
                    model.outputs().len(),
                    output.len()
                );
            }
            let x = medq_cli::read_npy_f32(&input)?;
            let y = medq_cli::run_batch(&model, &x)?;
            for ((path, shape), data) in output.iter().zip(&y.shapes).zip(&y.data) {
                medq_cli::write_npy_f32(path, shape, data)?;
                println!("wrote {} {:?}", path.display(), shape);
            }
            if let Some(labels) = labels {
                let labels = medq_cli::read_npy_labels(&labels)?;
                let acc = medq_cli::accuracy(&y, &labels)?;
                println!("accuracy {:.2}% on {} samples", 100.0 * acc, y.samples);
            }
        }
        Command::Bench { model, iterations } => {
            let file = medq_cli::open(&model)?;
            print!("{}", medq_cli::bench(&file.model()?, iterations)?);
        }
        Command::Selftest { model } => {
            let file = medq_cli::open(&model)?;
            let model = file.model()?;
            let mut arena = vec![0u8; model.arena_len()];
            let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
            let mut interp = medq::Interpreter::new(&model, &mut arena, &mut plan)?;
            if interp.self_test()? {
                println!("self-test passed: the golden output matches bit for bit");
            } else {
                bail!("self-test FAILED: the output differs from the golden output");
            }
        }
    }
    Ok(())
}
