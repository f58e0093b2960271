//! Two published biosignal designs as PyTorch's own exporters write them,
//! legacy (TorchScript, opset 17) and dynamo (opset 18), trained briefly on
//! synthetic tasks (`models/testnets/make_torch_export_testnets.py`): an EEG
//! seizure detector (Conv front end, two bidirectional LSTM layers, symbolic
//! `time`) and a two-input sleep-spindle detector (EEG and EOG, GELU,
//! LayerNorm, ConvTranspose, a per-sample softmax mask), and an ECG + PPG
//! pulse-transit-time classifier by cross-attention (`nn.MultiheadAttention`);
//! and circular padding (`make_circular_testnet.py`).

mod testnets;

use medq_converter::precision::Choice;
use medq_converter::report::Report;
use medq_converter::{convert, ConvertError, Options};

fn options(model: &str, inputs: &[&str], dir: &std::path::Path) -> Options {
    let d = testnets::dir();
    let mut opts = Options::new(
        d.join(format!("{model}.onnx")),
        dir.join(format!("{model}.mq")),
    );
    opts.calib = inputs
        .iter()
        .map(|i| d.join(format!("{i}_calib.npy")))
        .collect();
    opts.eval = inputs
        .iter()
        .map(|i| d.join(format!("{i}_test.npy")))
        .collect();
    opts
}

fn converted(opts: &Options) -> Report {
    convert(opts).unwrap_or_else(|e| panic!("{}: {e}", opts.model.display()))
}

/// The exporters leave `time` symbolic (the dynamo one as `16*windows`,
/// its constraint): without samples the refusal names `--input-shape`, and
/// with the time fixed (by the calibration samples' shape) both exports (the legacy one with the LSTMs' zero initial states
/// computed by Shape, Gather, Concat and ConstantOfShape) are within the
/// bounds, with the same figures.
#[test]
fn a_conv_lstm_seizure_detector_with_symbolic_time_converts_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut figures = Vec::new();
    for model in ["seizure_lstm", "seizure_lstm_dynamo"] {
        let opts = options(model, &["seizure_lstm"], dir.path());
        let mut no_samples = opts.clone();
        (no_samples.calib, no_samples.eval) = (Vec::new(), Vec::new());
        match convert(&no_samples) {
            Err(ConvertError::InvalidModel(why)) => {
                assert!(why.contains("--input-shape eeg=1,18,<"), "{model}: {why}");
            }
            other => panic!("{model}: not refused: {:?}", other.map(|_| ())),
        }
        let report = converted(&opts);
        assert_eq!(report.inputs[0].shape, [1, 18, 256], "{model}");
        assert_eq!(report.inputs[0].dims_from_samples.len(), 1, "{model}");
        let o = &report.evaluation.outputs[0];
        println!("{model}: SQNR {:.1?} dB", o.sqnr_db);
        assert!(o.softmax);
        assert!(
            o.samples_within_0_03 >= 0.99,
            "{model}: {}",
            o.samples_within_0_03
        );
        assert_eq!(o.top1_agreement_confident, Some(1.0), "{model}");
        let kinds: Vec<&str> = report.layers.iter().map(|l| l.op.as_str()).collect();
        // Two bidirectional layers: a forward and a backward Lstm each.
        assert_eq!(
            kinds.iter().filter(|k| **k == "Lstm").count(),
            4,
            "{model}: {kinds:?}"
        );
        figures.push((o.sqnr_db, o.max_abs_error));
    }
    // The same weights through either exporter: the same quantized model
    // up to calibration's float rounding.
    let (a, b) = (figures[0].0.unwrap_or(0.0), figures[1].0.unwrap_or(0.0));
    assert!((a - b).abs() < 0.5, "{figures:?}");
}

/// Two inputs, GELU (exact and tanh), LayerNorm over `[32, 128]`, a strided
/// ConvTranspose and a skip Concat. Every class decision the float model is
/// sure of (top-2 margin ≥ 0.05) is the int8 model's too, on every one of
/// the 256 positions of each sample. The probability bound (|Δp| ≤ 0.03,
/// the worst of 256 positions per sample) is not met at int8: each layer's
/// requantization costs 1–4 dB and the noise is random (per channel, its
/// mean is under 3% of its power, so a bias correction would not help).
/// `--precision int16` brings all 16 samples within (0.018 at worst): its
/// two graph inputs are int16 too, without which 15 of 16 were (0.053).
#[test]
fn a_two_input_spindle_detector_with_gelu_and_conv_transpose_converts() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = ["spindle_unet_eeg", "spindle_unet_eog"];
    let mut reports = Vec::new();
    for model in ["spindle_unet", "spindle_unet_dynamo"] {
        let report = converted(&options(model, &inputs, dir.path()));
        let o = &report.evaluation.outputs[0];
        println!(
            "{model} int8: SQNR {:.1?} dB, {:.3} of samples within 0.03, confident top-1 {:?}",
            o.sqnr_db, o.samples_within_0_03, o.top1_agreement_confident
        );
        let confident = o.top1_agreement_confident.expect("confident positions");
        assert!(confident >= 0.998, "{model}: {confident}");
        assert!(o.sqnr_db.expect("an SQNR") >= 30.0, "{model}");
        let kinds: Vec<&str> = report.layers.iter().map(|l| l.op.as_str()).collect();
        for k in ["ConvTranspose", "LayerNorm", "Concat"] {
            assert!(kinds.contains(&k), "{model}: {kinds:?}");
        }
        reports.push(report);
    }
    let mut opts = options("spindle_unet", &inputs, dir.path());
    opts.precision = Choice::All;
    let wide = converted(&opts);
    let (w, o) = (
        &wide.evaluation.outputs[0],
        &reports[0].evaluation.outputs[0],
    );
    println!(
        "spindle_unet int16: SQNR {:.1?} dB, {:.3} within 0.03, max |Δp| {:.3}",
        w.sqnr_db, w.samples_within_0_03, w.max_abs_error
    );
    assert_eq!(w.samples_within_0_03, 1.0);
    assert!(w.samples_within_0_03 > o.samples_within_0_03);
    assert!(w.max_abs_error < o.max_abs_error);
    let raised: Vec<&str> = wide
        .precision
        .as_ref()
        .map(|p| p.raised.iter().map(|r| r.node.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(raised[..2], ["eeg", "eog"], "the inputs first");
}

/// Cross-attention between two inputs: the dynamo exporter leaves the split
/// of `nn.MultiheadAttention`'s packed in-projection weights (a constant) to
/// the converter, as a Split with three outputs. Both exports convert to the
/// same layers with the same figures, and every decision the float model is
/// sure of is the int8 model's. Like the other attention nets it is outside
/// the probability bound at int8 (2 of 16 held-out samples past 0.03: the
/// attention scores' int8 encoding, 11 dB, limits it).
#[test]
fn a_cross_attention_fusion_of_two_inputs_converts_from_either_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = ["ptt_xattn_ecg", "ptt_xattn_ppg"];
    let mut reports = Vec::new();
    for model in ["ptt_xattn", "ptt_xattn_dynamo"] {
        let report = converted(&options(model, &inputs, dir.path()));
        let o = &report.evaluation.outputs[0];
        println!(
            "{model}: SQNR {:.1?} dB, {:.3} of samples within 0.03, confident top-1 {:?}",
            o.sqnr_db, o.samples_within_0_03, o.top1_agreement_confident
        );
        assert!(o.softmax, "{model}");
        assert_eq!(o.top1_agreement_confident, Some(1.0), "{model}");
        let kinds: Vec<&str> = report.layers.iter().map(|l| l.op.as_str()).collect();
        // Q·Kᵀ and P·V: two MatMuls of computed tensors, and the
        // in-projections as FullyConnected layers on constant weights.
        assert_eq!(
            kinds.iter().filter(|k| **k == "MatMul").count(),
            2,
            "{model}: {kinds:?}"
        );
        assert!(kinds.contains(&"Softmax"), "{model}: {kinds:?}");
        reports.push(report);
    }
    let kinds = |r: &Report| -> Vec<String> {
        r.layers
            .iter()
            .filter(|l| !["Reshape", "Transpose", "Gather"].contains(&l.op.as_str()))
            .map(|l| l.op.clone())
            .collect()
    };
    assert_eq!(kinds(&reports[0]), kinds(&reports[1]));
    let sqnr = |r: &Report| r.evaluation.outputs[0].sqnr_db.unwrap_or(0.0);
    assert!(
        (sqnr(&reports[0]) - sqnr(&reports[1])).abs() < 0.5,
        "{} against {} dB",
        sqnr(&reports[0]),
        sqnr(&reports[1])
    );
}

/// Circular padding (`Conv1d(padding_mode="circular")`, `F.pad(mode=
/// "circular")`): the legacy exporter writes Slices and a Concat, the
/// dynamo exporter opset 19's `Pad` in mode `wrap`, which runs as one
/// Gather per padded axis. Both are measured against PyTorch's own outputs
/// (`circular_cnn_torch.npy`; uncentered SQNR), which also checks the float
/// reference's form of `wrap` (tract does not run it).
#[test]
fn circular_padding_from_either_exporter_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = testnets::dir();
    let torch = medq_cli::read_npy_f32(&d.join("circular_cnn_torch.npy")).unwrap();
    let x = medq_cli::read_npy_f32(&d.join("circular_cnn_test.npy")).unwrap();
    for model in ["circular_cnn", "circular_cnn_dynamo"] {
        let opts = options(model, &["circular_cnn"], dir.path());
        let report = converted(&opts);
        let float_db = report.evaluation.outputs[0].sqnr_db.expect("an SQNR");
        let gathers = report.layers.iter().filter(|l| l.op == "Gather").count();
        let concats = report.layers.iter().filter(|l| l.op == "Concat").count();
        // Two pads: Slices and Concats from the legacy exporter, a Gather
        // each from the dynamo one.
        let expected = match model {
            "circular_cnn" => (4, 2),
            _ => (2, 0),
        };
        assert_eq!((gathers, concats), expected, "{model}");
        let file = medq_cli::open(&opts.output).unwrap();
        let y = medq_cli::run_batch(&file.model().unwrap(), &x).unwrap();
        let (signal, noise) =
            y.data[0]
                .iter()
                .zip(&torch.data)
                .fold((0.0, 0.0), |(s, n), (&m, &t)| {
                    (
                        s + f64::from(t) * f64::from(t),
                        n + f64::from(m - t).powi(2),
                    )
                });
        let torch_db = 10.0 * (signal / noise).log10();
        println!("{model}: {float_db:.1} dB from its float model, {torch_db:.1} dB from PyTorch");
        assert!(
            float_db >= 40.0,
            "{model}: {float_db:.1} dB from its float model"
        );
        assert!(torch_db >= 40.0, "{model}: {torch_db:.1} dB from PyTorch");
    }
}
