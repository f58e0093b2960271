//! End to end on every committed model: convert with calibration data, then
//! compare the medq int8 run (on the bytes written) against tract's float run
//! on held-out samples. The bounds are the product's accuracy contract; they
//! fail when numerics break.

use std::path::{Path, PathBuf};

use medq_converter::{convert, Options};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

struct Case {
    onnx: PathBuf,
    calib: PathBuf,
    test: PathBuf,
    labels: Option<PathBuf>,
}

fn testnet(name: &str) -> Case {
    let d = models().join("testnets");
    Case {
        onnx: d.join(format!("{name}.onnx")),
        calib: d.join(format!("{name}_calib.npy")),
        test: d.join(format!("{name}_test.npy")),
        labels: None,
    }
}

/// Convert and check the agreement bounds; returns the report for extra checks.
fn check(case: Case, min_within_0_03: f64) -> medq_converter::report::Report {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.mq");
    let mut opts = Options::new(&case.onnx, &out);
    opts.calib = Some(case.calib);
    opts.eval = Some(case.test);
    opts.labels = case.labels;
    let report = convert(&opts).unwrap_or_else(|e| panic!("{}: {e}", case.onnx.display()));
    assert!(out.exists());
    let name = case.onnx.display().to_string();
    for o in &report.evaluation.outputs {
        if o.softmax {
            assert!(
                o.samples_within_0_03 >= min_within_0_03,
                "{name} {}: only {:.3} of samples within 0.03",
                o.name,
                o.samples_within_0_03
            );
            let confident = o.top1_agreement_confident.expect("confident samples");
            assert!(
                confident >= 0.98,
                "{name} {}: confident top-1 agreement {confident}",
                o.name
            );
        } else {
            let sqnr = o.sqnr_db.unwrap_or(f64::INFINITY);
            assert!(sqnr >= 25.0, "{name} {}: SQNR {sqnr:.1} dB < 25 dB", o.name);
        }
    }
    let t = &report.totals;
    assert!(t.arena_bytes >= t.arena_lower_bound && t.arena_bytes > 0);
    assert_eq!(
        report.layers.len(),
        report.layers.iter().map(|l| l.index).max().unwrap() + 1
    );
    report
}

#[test]
fn ecg5000_cnn_keeps_its_accuracy() {
    let d = models().join("ecg5000");
    let report = check(
        Case {
            onnx: d.join("ecg.onnx"),
            calib: d.join("calib.npy"),
            test: d.join("test_x.npy"),
            labels: Some(d.join("test_y.npy")),
        },
        0.99,
    );
    let c = report.evaluation.classes.expect("labels given");
    assert!(
        c.accuracy_float > 0.93,
        "float accuracy {}",
        c.accuracy_float
    );
    assert!(
        (c.accuracy_float - c.accuracy_int8).abs() <= 0.005,
        "int8 {} vs float {}",
        c.accuracy_int8,
        c.accuracy_float
    );
    // The ECG chain is a straight line: the plan must reach the lifetime bound.
    assert_eq!(report.totals.arena_bytes, report.totals.arena_lower_bound);
    // Every conv/FC layer stays well clear of int8 noise.
    for l in &report.layers {
        if let Some(db) = l.sqnr_db {
            assert!(db > 25.0, "layer {} SQNR {db:.1}", l.name);
        }
    }
}

// The bound: max |Δp| ≤ 0.03 on 99% of held-out samples (of 64: all).
#[test]
fn cnn1d() {
    check(testnet("cnn1d"), 0.99);
}
#[test]
fn cnn1d_dynamo_export() {
    check(testnet("cnn1d_dynamo"), 0.99);
}
#[test]
fn cnn2d() {
    check(testnet("cnn2d"), 0.99);
}
#[test]
fn depthwise_separable() {
    check(testnet("dwsep"), 0.99);
}
#[test]
fn residual_adds() {
    check(testnet("resnet1d"), 0.99);
}
#[test]
fn mlp_with_batchnorm_and_sigmoid() {
    check(testnet("mlp"), 0.99);
}
#[test]
fn autoencoder() {
    check(testnet("autoencoder"), 0.99);
}
#[test]
fn pytorch_matmul_add() {
    check(testnet("matmul_add"), 0.99);
}
#[test]
fn concat_and_two_heads() {
    check(testnet("heads"), 0.99);
}
#[test]
fn opset11_gemm_and_pad() {
    check(testnet("gemm_transb_pad"), 0.99);
}
