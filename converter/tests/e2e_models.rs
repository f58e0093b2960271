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
    opts.calib = vec![case.calib];
    opts.eval = vec![case.test];
    opts.labels = case.labels;
    let report = convert(&opts).unwrap_or_else(|e| panic!("{}: {e}", case.onnx.display()));
    assert!(out.exists());
    let name = case.onnx.display().to_string();
    for o in &report.evaluation.outputs {
        // The figures the README quotes (`--nocapture`).
        println!("{name} {}: SQNR {:.1?} dB", o.name, o.sqnr_db);
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

/// Pruning on every test net: where a filter can go, the pruned file
/// validates and its per-layer comparison against tract stays channel for
/// channel; where none can, the converter says so instead of writing an
/// unpruned file.
#[test]
fn pruning_handles_every_test_net() {
    let prunable = [
        "autoencoder",
        "cnn1d",
        "cnn1d_dynamo",
        "cnn2d",
        "heads",
        "resnet1d",
    ];
    let whole = ["dwsep", "gemm_transb_pad", "matmul_add", "mlp"];
    for name in prunable.iter().chain(&whole) {
        let case = testnet(name);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.mq");
        let mut opts = Options::new(&case.onnx, &out);
        opts.calib = vec![case.calib];
        opts.eval = vec![case.test];
        opts.prune = Some(medq_converter::prune::Target::Fraction(0.25));
        match (convert(&opts), prunable.contains(name)) {
            (Ok(report), true) => {
                let p = report.pruning.as_ref().unwrap();
                assert!(p.removed > 0, "{name}: nothing pruned");
                assert!(report.totals.parameters < p.unpruned.totals.parameters);
                // The first pruned producer reads unpruned inputs: its kept
                // channels are the float model's, so they compare as well as
                // int8 allows (a misaligned gather would give ~0 dB).
                let first = p
                    .layers
                    .iter()
                    .filter(|l| l.kept < l.channels)
                    .filter_map(|l| report.layers.iter().find(|r| r.name == l.producer))
                    .min_by_key(|r| r.index)
                    .unwrap();
                let sqnr = first.sqnr_db.unwrap_or(f64::INFINITY);
                assert!(sqnr > 15.0, "{name}: {} at {sqnr:.1} dB", first.name);
                assert!(out.exists());
            }
            (Err(e), false) => {
                assert!(
                    e.to_string().contains("no layer can be pruned"),
                    "{name}: {e}"
                );
                assert!(!out.exists());
            }
            (Ok(_), false) => panic!("{name} was expected to have nothing to prune"),
            (Err(e), true) => panic!("{name}: {e}"),
        }
    }
}
