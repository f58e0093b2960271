//! `converter`: ONNX → int8 `.mq`, with a report of what was lost.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use medq_converter::calibrate::Method;
use medq_converter::ir::OutputActivation;
use medq_converter::precision::{Choice, Target};
use medq_converter::rewrite::equalize::Which;
use medq_converter::rounding::{Rounding, WeightGrid};
use medq_converter::{convert, Options};
use medq_converter::{prune, prune_weights};

#[derive(Parser, Debug)]
#[command(
    name = "converter",
    version,
    about = "Convert an ONNX model to a quantized int8 .mq file for the medq runtime",
    long_about = "Convert an ONNX model to a quantized int8 .mq file for the medq runtime.\n\n\
        The converter folds BatchNormalization, fuses activations, calibrates activation \
        ranges by running the float model (tract) over representative samples, quantizes \
        to int8 (per-channel weights), optionally prunes filters, plans one static arena \
        and writes the file atomically. It then runs the int8 model with the medq runtime against the float \
        model and reports the loss per layer and per output (and per class with --labels).\n\n\
        Inputs: the batch (dimension 0) is 1; a symbolic batch is pinned to 1, and an export \
        traced at a fixed batch runs at batch 1 when --input-shape says so. Any other symbolic \
        dimension (e.g. a \"time\" axis) takes its size in the input's --calib samples, or from \
        --input-shape NAME=1,d1,..., which wins; a symbol fixed for one input is fixed for every \
        input that declares it. A model with \
        several inputs takes --calib (and --eval, --select) once per input, in the model's input \
        order, each file [N, d1..dk] with the same N. An input whose dimension 0 is not a batch \
        (an unbatched or sequence-first export, e.g. [time, batch, 6]) takes samples that stack \
        whole inputs, one dimension more: [N, 40, 1, 6]; Conv and pooling run such a dimension 0 \
        one sample at a time (a camera-PPG model's video frames, [frames, 3, H, W], from samples \
        [N, frames, 3, H, W]). With several outputs the report shows each \
        output's figures; --labels are for output 0 unless --labels-output names another.\n\n\
        A pre-quantized (QDQ) model, with QuantizeLinear/DequantizeLinear pairs (ONNX Runtime's \
        quantize_static, a QAT export), converts with its own scales and zero points: --calib is \
        optional (it calibrates only tensors the model leaves float), --eval is then required. \
        ONNX Runtime's QOperator models (QLinearConv, QGemm, ...) convert the same way; its \
        dynamically quantized models (quantize_dynamic) keep their int8 weights and need --calib.",
    after_help = "Examples:\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --eval test_x.npy --labels test_y.npy --report report.json\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --calibration percentile --percentile 99.9\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --select heldout.npy --eval test_x.npy --labels test_y.npy\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --max-size 16000 --eval test_x.npy --labels test_y.npy\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --prune-filters 0.25\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --prune-weights 0.5 --eval test_x.npy --labels test_y.npy\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --prune-weights 0.5 --criterion random --seed 7\n  \
        converter fetal.onnx -o fetal.mq --calib calib.npy --select heldout.npy --precision auto\n  \
        converter fetal.onnx -o fetal.mq --calib calib.npy --int16 /conv2/Conv --int16 /conv3/Conv\n  \
        converter eeg.onnx -o eeg.mq --input-shape eeg=1,19,1000 --calib eeg_calib.npy\n  \
        converter ecg.onnx -o ecg.mq --calib calib.npy --input-range ecg=-5,5\n  \
        converter ecg_qdq.onnx -o ecg.mq --eval test_x.npy\n  \
        converter fusion.onnx -o fusion.mq --calib ecg_calib.npy --calib ppg_calib.npy \\\n      \
        --eval ecg_test.npy --eval ppg_test.npy --labels rhythm_y.npy --labels-output rhythm"
)]
struct Cli {
    /// The ONNX model (batch size 1 or a symbolic batch dimension).
    model: PathBuf,

    /// The full shape of a model input, batch 1 first, fixing its symbolic
    /// dimensions (e.g. `eeg=1,19,1000` for an input declared
    /// [batch, 19, time]); without it they take their sizes in the input's
    /// --calib samples. It also runs an export traced at a fixed batch
    /// (`[8, 19, 1000]`) at batch 1. Repeat once per input.
    #[arg(long = "input-shape", value_name = "NAME=d0,d1,...", value_parser = parse_input_shape)]
    input_shape: Vec<(String, Vec<usize>)>,

    /// The range a model input can take in deployment (e.g. `ecg=-5,5` for an ADC's full
    /// scale in mV), used for its int8 encoding instead of the calibration samples' range:
    /// deployment values past a calibrated range are clipped, and an input clipped is lost
    /// to every layer after it. The report still measures the input's own loss. Repeat once
    /// per input.
    #[arg(long = "input-range", value_name = "NAME=lo,hi", value_parser = parse_input_range)]
    input_range: Vec<(String, (f32, f32))>,

    /// The function the application applies to a raw model output outside the model
    /// (e.g. `face_score=sigmoid` for logits it passes through a sigmoid; `softmax` is over
    /// the last axis). The output's int8 range is then chosen for what that function can
    /// distinguish, as for a Softmax inside the graph, instead of spending its 256 steps on
    /// logits the function maps to 0 or 1; the report measures the output after the
    /// function. Repeat once per output.
    #[arg(long = "output-activation", value_name = "NAME=sigmoid|softmax", value_parser = parse_output_activation)]
    output_activation: Vec<(String, OutputActivation)>,

    /// Where to write the .mq file (written atomically; nothing is written on error).
    #[arg(short, long, value_name = "FILE.mq")]
    output: PathBuf,

    /// Representative float32 samples, shape [N, d1..dk] for a model input [1, d1..dk]
    /// (or [N, d0..dk], whole inputs, for an input whose dimension 0 is not a batch).
    /// Once per model input, in the model's input order, with the same N. float64 and
    /// float16 read as float32; bool for a boolean input, and any integer type for an input
    /// the model declares integer (token indices, lengths). Optional for a QDQ model,
    /// which brings its own scales and zero points.
    #[arg(long, value_name = "FILE.npy")]
    calib: Vec<PathBuf>,

    /// How activation ranges are chosen from the calibration data.
    #[arg(long, value_enum, default_value_t = Method::Mse)]
    calibration: Method,

    /// The percentile used by --calibration percentile: the upper percentile
    /// kept, in (50, 100] (the lower is 100 minus it).
    #[arg(long, default_value_t = 99.99, value_name = "P")]
    percentile: f32,

    /// How Conv/FullyConnected weights are rounded to int8: `gptq` moves each
    /// rounding error onto the weights not yet rounded, weighted by how the
    /// layer's inputs correlate on the calibration data (same grid, lower
    /// output error); `nearest` rounds each weight on its own.
    #[arg(long, value_enum, default_value_t = Rounding::Nearest)]
    rounding: Rounding,

    /// The grid of the Conv and FullyConnected weights. `int8`: linear, 255 steps per
    /// channel. `pow2`: logarithmic, 0 and ±2^e (e = 0..6) times a per-channel scale chosen
    /// to minimise the layer's output error on the calibration data; stored in 4 bits a
    /// weight (half the bytes), with products computed as shifts. The report measures the
    /// same conversion with int8 weights beside it. Other layers keep int8 weights. With
    /// --prune-weights the non-zeros take e = 3..6 only, each a 3-bit code after the
    /// layer's bitmap.
    #[arg(long, value_enum, default_value_t = WeightGrid::Int8)]
    weights: WeightGrid,

    /// Cross-layer equalization before quantizing (DFQ, Nagel et al. 2019): for a pair of Conv
    /// or FullyConnected layers joined by a ReLU (or nothing) and pools, scale the first
    /// layer's output channels down and the second's matching input channels up, so that
    /// both weight ranges become their geometric mean; the float model is unchanged and the
    /// spread moves into the activation between them (which `--precision` can raise).
    /// `erased` catches a score head with one weight of 180 beside 0.05, whose small weights
    /// int8 would lose; `all` is neutral to harmful on trained CNNs (try it when weights, not
    /// activations, limit a model). QDQ models keep their own weights.
    #[arg(long, value_enum, default_value_t = Which::Erased)]
    equalize: Which,

    /// Activation precision. `int8`: every activation. `int16`: raise every layer that can be
    /// raised (below) to an int16 output, the most precise file (TFLite's 16x8 mode where medq
    /// has the kernels; the report measures it against all-int8). `auto`: raise the fewest Conv,
    /// ConvTranspose, FullyConnected, MatMul, Softmax, Add, Sub, Mul, Div, Min, Max, LayerNorm,
    /// ReduceMean/Sum/Max, LSTM and GRU layers to int16
    /// outputs (int8 weights, int64
    /// accumulation) that bring the model within the target, measured on the --select samples,
    /// else on the calibration samples two-fold (each half against a file calibrated on the
    /// other, so that inputs past the calibrated ranges count): --target-sqnr, or by default
    /// probability outputs' |Δp| ≤ 0.0175 on every sample and SQNR ≥ 35 dB, other outputs'
    /// SQNR ≥ 28 dB (the bounds 0.03 and 25 dB with a margin). A layer can be raised when everything reading its output (through pools and
    /// reshapes, pads, transposes, gathers, tables and Concats, whose output is then int16) is
    /// one of those layers, or is a graph output (int16 then; a Softmax output stays int8).
    /// A graph input can be raised the same way (an image whose int8 encoding costs too much).
    /// Attention's scores and probabilities, the residual stream (Adds, and the LayerNorms
    /// reading them) and a U-Net's skip connections are what residual, transformer-style and
    /// segmentation models raise. When even every layer raised misses the target, the search
    /// stops at four layers; when int16 outputs are not enough, auto gives Conv and
    /// FullyConnected layers int16 weights (16x16) on top of every layer raised, best first,
    /// the fewest that meet the target.
    /// Outputs with an --output-activation count as probabilities. The report lists the layers
    /// raised, what each gained and cost in bytes and arena, and the all-int8 file beside.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Int8, conflicts_with = "int16")]
    precision: PrecisionArg,

    /// With --precision auto: the worst output's SQNR to reach, in dB, instead of the
    /// default bounds.
    #[arg(long, value_name = "DB")]
    target_sqnr: Option<f64>,

    /// Give this Conv, ConvTranspose, FullyConnected, MatMul, Softmax, Add, Sub, Mul, Div, Min, Max,
    /// LayerNorm, ReduceMean/Sum/Max, LSTM or GRU
    /// layer (node or output tensor name) an int16 output, or make this graph input int16,
    /// as --precision auto would; repeat for several. Refused, with the reason, for a layer
    /// that cannot be raised.
    #[arg(long, value_name = "LAYER")]
    int16: Vec<String>,

    /// Held-out float32 samples, neither calibration nor test data, to choose
    /// the calibration and weight rounding on: every --calibration method (percentile
    /// 99.99 and 99.9) with each --rounding is tried, and the one with the best
    /// float-vs-int8 output SQNR on these samples kept (--calibration,
    /// --percentile and --rounding are then ignored). The report lists every try.
    /// Once per model input, like --calib.
    #[arg(long, value_name = "FILE.npy")]
    select: Vec<PathBuf>,

    /// Held-out float32 samples to measure float-vs-int8 agreement on (default: the
    /// calibration samples). Once per model input, like --calib.
    #[arg(long, value_name = "X.npy")]
    eval: Vec<PathBuf>,

    /// Integer class labels for the evaluation samples, to report accuracy and per-class recall
    /// (of output 0, or of --labels-output).
    #[arg(long, value_name = "Y.npy")]
    labels: Option<PathBuf>,

    /// The model output --labels are the classes of (default: output 0).
    #[arg(long, value_name = "NAME", requires = "labels")]
    labels_output: Option<String>,

    /// A text file with one class name per line, stored in the model's metadata.
    #[arg(long, value_name = "FILE.txt")]
    class_names: Option<PathBuf>,

    /// Also write the report as JSON.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,

    /// Remove this fraction (between 0 and 1) of the prunable Conv filters and
    /// FullyConnected neurons: those whose removal costs the least output error
    /// per weight saved, with the layer that reads them refit by least squares on
    /// the calibration data. The report shows what was kept per layer and the
    /// accuracy with and without pruning.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction, conflicts_with = "max_size")]
    prune_filters: Option<f64>,

    /// Set this share (between 0 and 1) of the Conv, ConvTranspose and FullyConnected
    /// weights to zero (unstructured pruning), chosen by --criterion over --prune-scope.
    /// Combines with --prune-filters / --max-size (weights go after filters). The report
    /// shows the sparsity per layer and the accuracy with and without pruning. A pruned
    /// Conv or FullyConnected layer is stored sparse (a bitmap and its non-zero weights, a
    /// byte each, or with --weights pow2 a 3-bit code each, the non-zeros then taking the
    /// four top powers ±8…±64 of the channel's scale) when that is smaller; the report says
    /// which layers were.
    #[arg(long, value_name = "SPARSITY", value_parser = parse_fraction)]
    prune_weights: Option<f64>,

    /// Check that the int8 model still looks where the float model looks: occlusion
    /// attribution maps (a window of a tenth of the input's last axis set to the sample's
    /// mean, slid by half a window; each position's drop of the float model's predicted
    /// class) of int8 and float on up to 200 evaluation samples, compared by Spearman rank
    /// correlation (median and 5th percentile in the report; with pruning, also for the
    /// unpruned int8 model). Single-input classifiers.
    #[arg(long)]
    attribution: bool,

    /// Draw the first evaluation sample with its float and int8 attribution maps into
    /// this SVG file (implies --attribution).
    #[arg(long, value_name = "FILE.svg")]
    attribution_svg: Option<PathBuf>,

    /// Store every weight a byte all the same (pruned or power-of-two layers included), for
    /// a runtime built without its `sparse-weights` and `pow2-weights` features (such as
    /// the bundled firmware), which refuses packed layers.
    #[arg(long)]
    dense_weights: bool,

    /// Which weights --prune-weights sets to zero: l1 (the smallest magnitudes), obs
    /// (second order: the least output error on the calibration data, the remaining weights
    /// of each row refit by least squares to make up for them, and each layer's bias
    /// corrected so that its mean output stays the float model's), or random
    /// (uniformly, seeded by --seed: the baseline a criterion has to beat).
    #[arg(long, value_enum, default_value = "l1", requires = "prune_weights")]
    criterion: CriterionArg,

    /// Where --prune-weights counts its share: layer (every layer loses that share),
    /// global (over all pruned layers together: for obs, each weight's cost relative to its
    /// layer's output energy decides which layers give more) or measured (obs only: over
    /// all pruned layers together, each layer pruned at 17 shares and its output error
    /// measured, and the shares chosen for the least sum of relative errors).
    #[arg(long, value_enum, default_value = "layer", requires = "prune_weights")]
    prune_scope: ScopeArg,

    /// The seed of --criterion random (the same seed prunes the same weights).
    #[arg(long, default_value_t = 0, requires = "prune_weights")]
    seed: u64,

    /// Prune filters as --prune-filters does, as few as needed for the .mq file
    /// (golden pair included) to take at most BYTES; fails, writing nothing,
    /// if even the most pruned model is larger. A model that already fits is not pruned.
    #[arg(long, value_name = "BYTES")]
    max_size: Option<usize>,

    /// Name only the graph's inputs and outputs in the file: its other tensors (activations,
    /// weights, biases, tables) are stored unnamed, and `medq inspect` lists them by index.
    /// A device needs no names but those of its inputs and outputs; on a small model the
    /// others are a tenth of the file (ECG5000: 1,037 of 11,785 bytes). The report still
    /// names every layer.
    #[arg(long)]
    strip_names: bool,

    /// Do not store a golden input/output pair in the file (a model with several
    /// inputs never gets one: the pair holds input 0 and output 0 only).
    #[arg(long)]
    no_golden: bool,

    /// Sign the .mq file with this Ed25519 secret key (from `medq keygen KEY`); devices
    /// and `medq verify FILE.mq --key KEY.pub` then accept it only unchanged.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Store an abstain rule: runtimes report "uncertain" instead of a class when output 0's
    /// top-1 probability leads the runner-up by less than P, in (0, 1), written as 0. and
    /// 1 to 6 digits (e.g. 0.2). `medq run` counts uncertain samples; the firmware counts
    /// uncertain beats apart from its classes.
    #[arg(long, value_name = "P")]
    abstain_margin: Option<String>,

    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PrecisionArg {
    Int8,
    Auto,
    Int16,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CriterionArg {
    L1,
    Random,
    Obs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ScopeArg {
    Layer,
    Global,
    Measured,
}

fn parse_input_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    medq_converter::load::inputs::parse_input_shape(s)
}

fn parse_input_range(s: &str) -> Result<(String, (f32, f32)), String> {
    let bad = || format!("{s:?} is not NAME=lo,hi with finite lo < hi");
    let (name, range) = s.rsplit_once('=').ok_or_else(bad)?;
    let (lo, hi) = range.split_once(',').ok_or_else(bad)?;
    let (lo, hi) = (
        lo.trim().parse::<f32>().map_err(|_| bad())?,
        hi.trim().parse::<f32>().map_err(|_| bad())?,
    );
    if !(lo.is_finite() && hi.is_finite() && lo < hi) || name.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), (lo, hi)))
}

fn parse_output_activation(s: &str) -> Result<(String, OutputActivation), String> {
    let (name, function) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=sigmoid|softmax"))?;
    let function = <OutputActivation as clap::ValueEnum>::from_str(function, false)?;
    Ok((name.to_string(), function))
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f < 1.0 => Ok(f),
        Ok(f) => Err(format!("{f} is not between 0 and 1 (exclusive)")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.prune_scope, ScopeArg::Measured) && !matches!(cli.criterion, CriterionArg::Obs)
    {
        eprintln!("error: --prune-scope measured needs --criterion obs");
        return ExitCode::FAILURE;
    }
    medq_cli::remove_temporaries_on_interrupt();
    if cli.target_sqnr.is_some() && cli.precision != PrecisionArg::Auto {
        eprintln!("error: --target-sqnr is the target of --precision auto; pass that too");
        eprintln!("nothing was written");
        return ExitCode::FAILURE;
    }
    let precision = match (cli.precision, cli.target_sqnr) {
        (PrecisionArg::Auto, Some(db)) => Choice::Auto(Target::Sqnr(db)),
        (PrecisionArg::Auto, None) => Choice::Auto(Target::Bounds),
        (PrecisionArg::Int16, _) => Choice::All,
        (PrecisionArg::Int8, _) if !cli.int16.is_empty() => Choice::Layers(cli.int16.clone()),
        (PrecisionArg::Int8, _) => Choice::Int8,
    };
    let opts = Options {
        model: cli.model,
        output: cli.output,
        input_shapes: cli.input_shape,
        output_activations: cli.output_activation,
        input_ranges: cli.input_range,
        calib: cli.calib,
        method: cli.calibration,
        percentile: cli.percentile,
        rounding: cli.rounding,
        weights: cli.weights,
        precision,
        select: cli.select,
        eval: cli.eval,
        labels: cli.labels,
        labels_output: cli.labels_output,
        class_names: cli.class_names,
        prune: match (cli.prune_filters, cli.max_size) {
            (Some(f), _) => Some(prune::Target::Fraction(f)),
            (None, Some(n)) => Some(prune::Target::MaxBytes(n)),
            (None, None) => None,
        },
        prune_weights: cli
            .prune_weights
            .map(|sparsity| prune_weights::WeightPruning {
                sparsity,
                criterion: match cli.criterion {
                    CriterionArg::L1 => prune_weights::Criterion::L1,
                    CriterionArg::Random => prune_weights::Criterion::Random { seed: cli.seed },
                    CriterionArg::Obs => prune_weights::Criterion::Obs,
                },
                scope: match cli.prune_scope {
                    ScopeArg::Layer => prune_weights::Scope::Layer,
                    ScopeArg::Global => prune_weights::Scope::Global,
                    ScopeArg::Measured => prune_weights::Scope::Measured,
                },
            }),
        dense_weights: cli.dense_weights,
        strip_names: cli.strip_names,
        equalize: cli.equalize,
        attribution: cli.attribution || cli.attribution_svg.is_some(),
        attribution_svg: cli.attribution_svg,
        golden: !cli.no_golden,
        sign: cli.sign,
        abstain_margin: cli.abstain_margin,
        progress: !cli.quiet,
    };
    let report_path: Vec<&std::path::Path> = cli.report.as_deref().into_iter().collect();
    if let Err(e) = medq_converter::convert::check_paths(&opts, &report_path) {
        eprintln!("error: {e}");
        eprintln!("nothing was written");
        return ExitCode::FAILURE;
    }
    let report = match convert(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("nothing was written");
            return ExitCode::FAILURE;
        }
    };
    if !cli.quiet {
        print!("{}", report.render());
    }
    if let Some(path) = cli.report {
        let json = match serde_json::to_vec_pretty(&report) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = medq_converter::convert::write_atomically(&path, &json) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
