//! Pre-quantized models (QDQ; ONNX Runtime's QOperator and dynamic formats;
//! a PyTorch QAT export): ONNX Runtime's `quantize_static` output
//! converts without `--calib`, with the model's own scales and zero points,
//! and medq's int8 run agrees with ONNX Runtime's run of the same QDQ model
//! (`models/testnets/make_qdq_testnets.py` wrote both the models and ORT's
//! outputs, from ORT's run of the model as written: every QuantizeLinear and
//! DequantizeLinear executed, see the script for why not its fused kernels):
//! centered SQNR ≥ 40 dB on every output, and the same top-1 class on every
//! sample of a softmax output. One net falls short for a stated reason and is
//! held to what it reaches ([`CNN2D`]). Models whose Q/DQ medq cannot honour
//! are refused, naming the node and the reason, and nothing is written.

use std::path::{Path, PathBuf};

use medq_converter::report::Report;
use medq_converter::{convert, Options};

fn qdq_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/testnets/qdq")
}

fn testnets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/testnets")
}

/// The converter's centered SQNR, Σ(ref − mean)² / Σ(out − ref)², in dB;
/// infinite when the outputs are identical.
fn sqnr_db(reference: &[f32], out: &[f32]) -> f64 {
    let mut sqnr = medq_converter::evaluate::Sqnr::default();
    sqnr.add(reference, out);
    sqnr.db().unwrap_or(f64::INFINITY)
}

/// How closely medq must follow ORT on a net.
struct Bound {
    /// Centered SQNR of every output, in dB (infinite: identical outputs).
    sqnr_db: f64,
    /// Samples of a softmax output whose top-1 class may differ from ORT's.
    top1_differences: usize,
    /// Centered SQNR of every output against the model's float graph.
    float_graph_db: f64,
}

/// The project's bound: 40 dB, and ORT's top-1 class on every sample.
const BOUND: Bound = Bound {
    sqnr_db: 40.0,
    top1_differences: 0,
    float_graph_db: 30.0,
};

/// cnn2d_int8 falls short of [`BOUND`] (29.2 dB, 2 of 64 samples with
/// another top-1, each a near-tie: ORT's top two are 0.557 and 0.443).
/// Every layer up to its 2×2 AveragePool is exact. ORT's AveragePool
/// (unfused) sums the four dequantized values in `f32`, in the order
/// `(x00 + x10) + (x01 + x11)`, divides by 4 and by the scale, and rounds
/// half to even: an exact tie (`Σ (q − zp) ≡ 2 mod 4`, 16% of the outputs)
/// goes whichever way the `f32` rounding error of that sum tips it (an `f32`
/// emulation in that order reproduces ORT code for code; half-to-even on
/// the integers matches 85% of the ties). medq's AvgPool rounds halves away
/// from zero (NUMERICS.md), so 7.5% of the pool's codes differ from ORT's by
/// one step (37.5 dB there), and the final Softmax, on logits one step
/// (0.23) apart, turns that into 29 dB. No integer rule reaches 40: with
/// half-to-even pool codes and ORT's own float arithmetic after them, the
/// output is 38.1 dB from ORT's.
const CNN2D: Bound = Bound {
    sqnr_db: 29.0,
    top1_differences: 2,
    float_graph_db: 30.0,
};

/// Convert `<net>_<act>.onnx` without calibration data and compare medq's
/// dequantized outputs on `<net>_test.npy` with ORT's.
fn agrees_with_onnx_runtime(net: &str, act: &str, softmax_outputs: &[usize]) {
    agrees_within(net, act, softmax_outputs, &BOUND);
}

fn agrees_within(net: &str, act: &str, softmax_outputs: &[usize], bound: &Bound) {
    let model = Model {
        dir: qdq_dir(),
        stem: format!("{net}_{act}"),
        net: net.into(),
        calibrated: false,
        reference: "ort",
    };
    model.agrees_within(softmax_outputs, bound);
}

/// A pre-quantized test model: `<dir>/<stem>.onnx`, ORT's outputs
/// `<dir>/<stem>_ort[_k].npy`, quantized from test net `net`.
struct Model {
    dir: PathBuf,
    stem: String,
    net: String,
    /// Calibrate on `<net>_calib.npy` (a dynamically quantized model fixes
    /// its weights only).
    calibrated: bool,
    /// Whose outputs medq is compared with: `<stem>_<reference>[_k].npy`.
    reference: &'static str,
}

impl Model {
    /// Convert the model and compare medq's dequantized outputs on
    /// `<net>_test.npy` with ORT's.
    fn agrees_within(&self, softmax_outputs: &[usize], bound: &Bound) -> Report {
        let name = &self.stem;
        let dir = tempfile::tempdir().unwrap();
        let mq = dir.path().join("model.mq");
        let test = testnets().join(format!("{}_test.npy", self.net));
        let mut opts = Options::new(self.dir.join(format!("{name}.onnx")), &mq);
        opts.eval = vec![test.clone()];
        if self.calibrated {
            opts.calib = vec![testnets().join(format!("{}_calib.npy", self.net))];
        }
        let report = convert(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        if !self.calibrated {
            assert_eq!(report.calibration_samples, 0, "{name}: no calibration");
        }
        for o in &report.evaluation.outputs {
            // The report's reference is the model's float graph: the pairs
            // stripped, the Relus they stood for kept. Without those the float
            // graph is another model (−8 to 7 dB from the int8 one); with them
            // these nets are 34.5–49.8 dB from it (centered).
            let db = o.sqnr_db.expect("an output SQNR");
            println!("{name} {}: SQNR vs the float graph {db:.1} dB", o.name);
            assert!(
                db >= bound.float_graph_db,
                "{name} {}: {db:.1} dB from the float graph",
                o.name
            );
        }
        self.compare_with_ort(&mq, &test, softmax_outputs, bound);
        report
    }

    fn compare_with_ort(&self, mq: &Path, test: &Path, softmax_outputs: &[usize], bound: &Bound) {
        let name = &self.stem;
        let file = medq_cli::open(mq).unwrap();
        let model = file.model().unwrap();
        let x = medq_cli::read_npy_f32(test).unwrap();
        let y = medq_cli::run_batch(&model, &x).unwrap();
        for (k, medq) in y.data.iter().enumerate() {
            let ort_file = match y.data.len() {
                1 => format!("{name}_{}.npy", self.reference),
                _ => format!("{name}_{}_{k}.npy", self.reference),
            };
            let ort = medq_cli::read_npy_f32(&self.dir.join(ort_file)).unwrap();
            assert_eq!(ort.data.len(), medq.len(), "{name} output {k}: lengths");
            let db = sqnr_db(&ort.data, medq);
            println!("{name} output {k}: SQNR vs {} {db:.1} dB", self.reference);
            assert!(
                db >= bound.sqnr_db,
                "{name} output {k}: SQNR {db:.1} dB < {} dB",
                bound.sqnr_db
            );
            if softmax_outputs.contains(&k) {
                let mut differences = Vec::new();
                let classes = ort.shape[1..].iter().product::<usize>();
                for (s, (r, m)) in ort
                    .data
                    .chunks_exact(classes)
                    .zip(medq.chunks_exact(classes))
                    .enumerate()
                {
                    // ORT's probabilities are int8 steps; when its top two are
                    // equal, either is its top-1.
                    let top = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mine = argmax(m);
                    if r[mine] != top {
                        differences.push(format!(
                            "sample {s}: medq's top-1 is class {mine}, ORT's probabilities are {r:?} (medq {m:?})"
                        ));
                    }
                }
                println!(
                    "{name} output {k}: top-1 differs from {}'s on {} samples",
                    self.reference,
                    differences.len()
                );
                assert!(
                    differences.len() <= bound.top1_differences,
                    "{name} output {k}: {}",
                    differences.join("; ")
                );
            }
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[test]
fn cnn1d_int8_agrees_with_onnx_runtime() {
    agrees_with_onnx_runtime("cnn1d", "int8", &[0]);
}

#[test]
fn cnn1d_uint8_activations_agree_with_onnx_runtime() {
    agrees_with_onnx_runtime("cnn1d", "uint8", &[0]);
}

#[test]
fn cnn1d_uint8_weights_agree_with_onnx_runtime() {
    // Symmetric uint8 weights (zero point 128) are int8 weights shifted by 128.
    agrees_with_onnx_runtime("cnn1d", "uint8w", &[0]);
}

#[test]
fn resnet1d_int8_agrees_with_onnx_runtime() {
    agrees_with_onnx_runtime("resnet1d", "int8", &[0]);
}

#[test]
fn resnet1d_uint8_activations_agree_with_onnx_runtime() {
    agrees_with_onnx_runtime("resnet1d", "uint8", &[0]);
}

#[test]
fn dwsep_int8_agrees_with_onnx_runtime() {
    agrees_with_onnx_runtime("dwsep", "int8", &[0]);
}

#[test]
fn heads_int8_agrees_with_onnx_runtime() {
    agrees_with_onnx_runtime("heads", "int8", &[]);
}

#[test]
fn matmul_add_int8_agrees_with_onnx_runtime() {
    agrees_with_onnx_runtime("matmul_add", "int8", &[0]);
}

#[test]
fn cnn2d_int8_agrees_with_onnx_runtime_short_of_the_bound() {
    agrees_within("cnn2d", "int8", &[0], &CNN2D);
}

/// `convert` must fail naming `node` and `reason`, and write nothing.
fn refused(model: &str, node: &str, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mq = dir.path().join("model.mq");
    let mut opts = Options::new(qdq_dir().join(model), &mq);
    opts.eval = vec![testnets().join("cnn1d_test.npy")];
    let e = convert(&opts).expect_err("the conversion should be refused");
    let msg = e.to_string();
    assert!(
        msg.contains(node),
        "{model}: the error does not name {node}: {msg}"
    );
    assert!(
        msg.contains(reason),
        "{model}: the error lacks {reason:?}: {msg}"
    );
    assert!(!mq.exists(), "a refused conversion wrote a file");
}

#[test]
fn asymmetric_weights_are_refused_with_node_and_reason() {
    refused(
        "refuse_asym_weights.onnx",
        // All four weight tensors are beyond int8; the first in node order is refused.
        "net.fc.weight_DequantizeLinear",
        "the weights of Gemm \"/net/fc/Gemm\" are asymmetric: q − zero_point spans [-140, 115], beyond [-128, 127]",
    );
}

#[test]
fn per_channel_activations_are_refused_with_node_and_reason() {
    refused(
        "refuse_per_channel_act.onnx",
        "/net/body/body.2/Relu_output_0_QuantizeLinear",
        "per-channel activation quantization",
    );
}

#[test]
fn a_plain_float_model_still_needs_calibration_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(testnets().join("cnn1d.onnx"), dir.path().join("m.mq"));
    opts.eval = vec![testnets().join("cnn1d_test.npy")];
    let e = convert(&opts).expect_err("a float model needs --calib");
    assert!(
        e.to_string()
            .contains("representative input samples are required"),
        "{e}"
    );
}

#[test]
fn a_qdq_model_without_any_samples_asks_for_eval() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(qdq_dir().join("cnn1d_int8.onnx"), dir.path().join("m.mq"));
    let e = convert(&opts).expect_err("no samples at all");
    assert!(e.to_string().contains("--calib is optional"), "{e}");
    assert!(e.to_string().contains("--eval"), "{e}");
}

#[test]
fn equalizing_a_qdq_model_is_refused() {
    // Equalization rescales weights; a QDQ model's own int8 weights are kept.
    let dir = tempfile::tempdir().unwrap();
    let mq = dir.path().join("m.mq");
    let mut opts = Options::new(qdq_dir().join("cnn1d_int8.onnx"), &mq);
    opts.eval = vec![testnets().join("cnn1d_test.npy")];
    opts.equalize = medq_converter::rewrite::equalize::Which::All;
    let e = convert(&opts).expect_err("--equalize all on a QDQ model");
    assert!(e.to_string().contains("--equalize all"), "{e}");
    assert!(!mq.exists(), "a refused conversion wrote a file");
}

/// A QDQ model's own encodings stay int8: `--int16` on one of its tensors
/// is refused with the reason, `--precision int16` and `auto` raise only
/// what the model leaves float (nothing, in a fully quantized model), and
/// `auto` without any samples to choose on asks for them.
#[test]
fn mixed_precision_keeps_a_qdq_models_own_encodings() {
    use medq_converter::precision::{Choice, Target};
    let dir = tempfile::tempdir().unwrap();
    let mq = dir.path().join("m.mq");
    let mut opts = Options::new(qdq_dir().join("cnn1d_int8.onnx"), &mq);
    opts.calib = vec![testnets().join("cnn1d_calib.npy")];
    opts.eval = vec![testnets().join("cnn1d_test.npy")];
    let with = |precision: Choice| Options {
        precision,
        ..opts.clone()
    };

    let e = convert(&with(Choice::Layers(vec!["input".into()])))
        .expect_err("--int16 on a tensor the model quantizes");
    assert!(
        e.to_string()
            .contains("input has its own int8 encoding in this QDQ model"),
        "{e}"
    );
    assert!(!mq.exists(), "a refused conversion wrote a file");

    let int8 = convert(&opts).unwrap();
    let int8_bytes = std::fs::read(&mq).unwrap();
    for choice in [Choice::All, Choice::Auto(Target::Bounds)] {
        let r = convert(&with(choice.clone())).unwrap_or_else(|e| panic!("{choice:?}: {e}"));
        let p = r.precision.as_ref().expect("a precision report");
        assert_eq!((p.raisable, p.raised.len()), (0, 0), "{choice:?}");
        assert_eq!(
            r.evaluation.outputs[0].sqnr_db,
            int8.evaluation.outputs[0].sqnr_db
        );
        assert_eq!(std::fs::read(&mq).unwrap(), int8_bytes, "{choice:?}");
    }

    std::fs::remove_file(&mq).unwrap();
    let no_samples = Options {
        calib: Vec::new(),
        ..with(Choice::Auto(Target::Bounds))
    };
    let e = convert(&no_samples).expect_err("auto without samples to choose on");
    assert!(e.to_string().contains("give --calib"), "{e}");
    assert!(!mq.exists(), "a refused conversion wrote a file");
}

fn ort_formats_dir() -> PathBuf {
    testnets().join("ort_formats")
}

/// A model of `make_ort_format_testnets.py`: QOperator (`<net>_qop_<act>`)
/// or dynamic (`<net>_dynamic`, calibrated).
fn ort_format(net: &str, stem: &str) -> Model {
    Model {
        dir: ort_formats_dir(),
        stem: stem.into(),
        net: net.into(),
        calibrated: stem.ends_with("dynamic"),
        reference: "ort",
    }
}

/// ONNX Runtime's QLinear kernels and medq's integer kernels give the same
/// codes on these nets: the same encodings, and requantizations that round
/// alike.
const IDENTICAL: Bound = Bound {
    sqnr_db: f64::INFINITY,
    top1_differences: 0,
    float_graph_db: 30.0,
};

#[test]
fn qoperator_convolutions_match_onnx_runtime_code_for_code() {
    // QLinearConv, MaxPool and Flatten on the integer tensors, QGemm,
    // QLinearSoftmax; int8 and uint8 activations.
    ort_format("cnn1d", "cnn1d_qop_int8").agrees_within(&[0], &IDENTICAL);
    ort_format("cnn1d", "cnn1d_qop_uint8").agrees_within(&[0], &IDENTICAL);
    // QLinearAdd, QLinearGlobalAveragePool.
    ort_format("resnet1d", "resnet1d_qop_int8").agrees_within(&[0], &IDENTICAL);
    // QLinearAveragePool: the 2×2 pool whose QDQ form ORT runs in float
    // (CNN2D above) is an integer kernel here, and agrees.
    ort_format("cnn2d", "cnn2d_qop_int8").agrees_within(&[0], &IDENTICAL);
}

#[test]
fn qoperator_models_agree_with_onnx_runtime() {
    // A HardSwish ORT leaves float between a DequantizeLinear and a
    // QuantizeLinear.
    ort_format("dwsep", "dwsep_qop_int8").agrees_within(&[0], &BOUND);
    // QLinearConcat, QLinearLeakyRelu, QLinearSigmoid, and a Tanh left float.
    ort_format("heads", "heads_qop_int8").agrees_within(&[], &BOUND);
    // QLinearMatMul then QLinearAdd: medq fuses them into one
    // FullyConnected, one rounding where ORT has two.
    ort_format("matmul_add", "matmul_add_qop_int8").agrees_within(&[0], &BOUND);
}

/// ORT's Resize on integer tensors (QOperator runs it on the uint8 codes)
/// truncates its linear interpolation: its codes are 0.4 steps below the
/// rounded ones on average (a single Resize of random codes: 40% one step
/// lower, none higher). medq rounds to nearest, as ORT's float Resize
/// between a DequantizeLinear and a QuantizeLinear would.
const INTEGER_RESIZE: Bound = Bound {
    sqnr_db: 30.0,
    top1_differences: 0,
    float_graph_db: 25.0,
};

#[test]
fn qoperator_models_move_integers_through_pads_resizes_and_splits() {
    // Resize (unet_upsample: 34.3 dB; upsampler, with a Split too: 31.1
    // dB).
    ort_format("unet_upsample", "unet_upsample_qop_int8").agrees_within(&[], &INTEGER_RESIZE);
    ort_format("upsampler", "upsampler_qop_int8").agrees_within(&[], &INTEGER_RESIZE);
    // A Pad by its zero point, and a float Pad of the model input before
    // its first pair: the input takes that pair's encoding, no --calib.
    ort_format("gemm_transb_pad", "gemm_transb_pad_qop_int8").agrees_within(&[], &IDENTICAL);
}

#[test]
fn int16_activations_of_a_qdq_model_are_medqs_int16_ones() {
    // ONNX Runtime's A16W8 (QInt16 activations, int8 weights): cnn1d's
    // asymmetric int16 encodings are re-expressed symmetric (medq's int16
    // is), ecg_transformer's symmetric ones kept as they are.
    for net in ["cnn1d", "ecg_transformer"] {
        ort_format(net, &format!("{net}_a16w8")).agrees_within(&[0], &BOUND);
    }
}

/// ONNX Runtime's A16W16 (int16 activations and weights) runs on medq's
/// int16 weights with the model's own codes: 63.7–87.8 dB from ORT on these
/// nets, where medq's own int8 weights give 44.0 dB (cnn1d).
const INT16_WEIGHTS: Bound = Bound {
    sqnr_db: 60.0,
    top1_differences: 0,
    float_graph_db: 40.0,
};

#[test]
fn int16_weights_of_a_qdq_model_are_medqs_int16_ones() {
    for (net, layers) in [("cnn1d", 4), ("resnet1d", 9), ("ecg_transformer", 6)] {
        let report = ort_format(net, &format!("{net}_a16w16")).agrees_within(&[0], &INT16_WEIGHTS);
        let fixed = report.fixed_encodings.expect("a QDQ model's encodings");
        assert_eq!(
            (fixed.weights, fixed.int16_weights),
            (layers, layers),
            "{net}"
        );
    }
}

/// lstm_stacked's `any` output is 22 dB from the float graph at int8 as a
/// float model too (it is among the nets that need `--precision auto`), and
/// 21.7 dB from ORT's dynamic run; its per-step output 31.2 dB.
const LSTM_DYNAMIC: Bound = Bound {
    sqnr_db: 21.0,
    top1_differences: 0,
    float_graph_db: 20.0,
};

#[test]
fn dynamically_quantized_models_keep_their_weights_and_calibrate() {
    // ORT measures each sample's activation range at run time, medq fixes
    // ranges from the calibration samples: the two still agree to 40 dB.
    ort_format("cnn1d", "cnn1d_dynamic").agrees_within(&[0], &BOUND);
    ort_format("matmul_add", "matmul_add_dynamic").agrees_within(&[0], &BOUND);
    // DynamicQuantizeLSTM.
    ort_format("lstm_stacked", "lstm_stacked_dynamic").agrees_within(&[], &LSTM_DYNAMIC);
}

#[test]
fn a_dynamically_quantized_model_without_samples_asks_for_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let mq = dir.path().join("model.mq");
    let mut opts = Options::new(ort_formats_dir().join("cnn1d_dynamic.onnx"), &mq);
    opts.eval = vec![testnets().join("cnn1d_test.npy")];
    let err = convert(&opts).unwrap_err().to_string();
    assert!(
        err.contains("quantize_dynamic") && err.contains("--calib"),
        "{err}"
    );
    assert!(!mq.exists());
}

/// PyTorch's QAT export is another model for the float graph (its
/// activation ranges clip; 5.5 and 16.5 dB from it): the bound is the
/// project's 40 dB, on PyTorch's int8 model (54.3 and 46.7 dB; the second's
/// average pool rounds ties as ORT does, medq's away from zero).
const QAT: Bound = Bound {
    sqnr_db: 40.0,
    top1_differences: 0,
    float_graph_db: 5.0,
};

#[test]
fn a_pytorch_qat_export_runs_as_pytorchs_own_int8_model() {
    // Eager-mode QAT exported as is: a QuantizeLinear → DequantizeLinear of
    // each float weight, pairs on the Conv outputs with the ReLUs after
    // them, zero points shared through Identity nodes, and a global average
    // the model leaves float. medq keeps the average on its input's
    // encoding, as PyTorch's int8 model does (54.3 dB from it, code for code
    // on the logits' grid); ORT's run of the QDQ graph averages in float,
    // and both PyTorch's int8 model and medq are 29.4 dB from that.
    let model = Model {
        dir: testnets().join("qat"),
        stem: "qat_cnn2d".into(),
        net: "cnn2d".into(),
        calibrated: false,
        reference: "torch_int8",
    };
    model.agrees_within(&[0], &QAT);
}

#[test]
fn a_pytorch_qat_export_with_batch_norms_keeps_its_integer_weights() {
    // FX graph-mode QAT fuses each Conv with its BatchNorm: the export
    // divides the Conv's output by γ/σ, adds its bias and runs the
    // BatchNormalization, all float. They fold into the Conv, and the
    // model's weight grid is scaled with them, so its integers stay
    // (`weights_on_grid` refuses weights that left their grid).
    let model = Model {
        dir: testnets().join("qat"),
        stem: "qat_cnn2d_bn".into(),
        net: "cnn2d".into(),
        calibrated: false,
        reference: "torch_int8",
    };
    model.agrees_within(&[0], &QAT);
}

/// Brevitas' 4-bit activations have 15 steps: the one-step roundings where
/// medq's integer requantization and ORT's float run part (ties, and float
/// error at a half step) cost 16 times what they do at 8 bits. 37.1 dB from
/// ORT; one sample of 64 changes class: ORT's top two logits are one
/// output step (0.10) apart, and medq's one step the other way. The 4-bit
/// model is 9.7 dB from its own float graph.
const BREVITAS_4BIT: Bound = Bound {
    sqnr_db: 35.0,
    top1_differences: 1,
    float_graph_db: 5.0,
};

#[test]
fn brevitas_qcdq_exports_keep_their_bit_widths() {
    // QuantizeLinear → Clip of the codes → DequantizeLinear: 8-bit weights
    // in int8's narrow range, then 4-bit weights and ReLU outputs, all
    // within medq's int8 codes.
    let brevitas = |stem: &str| Model {
        dir: testnets().join("brevitas"),
        stem: stem.into(),
        net: "cnn2d".into(),
        calibrated: false,
        reference: "ort",
    };
    let w8a8 = Bound {
        float_graph_db: 25.0,
        ..BOUND
    };
    brevitas("brevitas_cnn2d_w8a8").agrees_within(&[0], &w8a8);
    brevitas("brevitas_cnn2d_w4a4").agrees_within(&[0], &BREVITAS_4BIT);
}
