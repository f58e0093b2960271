//! `medq bench`: its JSON report and its refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ecg_mq() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/model/ecg.mq")
}

fn medq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medq"))
        .arg("bench")
        .arg(ecg_mq())
        .args(args)
        .output()
        .unwrap()
}

fn timing(v: &serde_json::Value) -> (f64, f64) {
    let median = v["median"].as_f64().expect("median");
    let min = v["min"].as_f64().expect("min");
    assert!(0.0 < min && min <= median, "{v}");
    (median, min)
}

#[test]
fn json_report_follows_its_schema() {
    let out = medq(&["--iterations", "7", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(r["schema"], "medq-bench/1");
    assert_eq!(r["iterations"], 7);
    assert_eq!(r["rounds"], 7);
    assert_eq!(r["arena_bytes"], 3360); // `medq inspect`: arena 3360 bytes
    let (total, _) = timing(&r["total_us"]);

    let ops = r["ops"].as_array().unwrap();
    let names: Vec<&str> = ops.iter().map(|o| o["op"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Conv",
            "MaxPool",
            "Conv",
            "MaxPool",
            "Conv",
            "AvgPool",
            "Reshape",
            "FullyConnected",
            "Softmax"
        ]
    );
    // MACs from the shapes `medq inspect` shows: output channels × output
    // length × input channels × kernel taps (weights [16, 1, 1, 7] → [1, 16, 140],
    // [32, 16, 1, 5] → [1, 32, 70], [32, 32, 1, 3] → [1, 32, 35]), FC 32 → 5.
    let macs: Vec<u64> = ops.iter().map(|o| o["macs"].as_u64().unwrap()).collect();
    assert_eq!(
        macs,
        [
            16 * 140 * 7,
            0,
            32 * 70 * 16 * 5,
            0,
            32 * 35 * 32 * 3,
            0,
            0,
            5 * 32,
            0
        ]
    );
    assert_eq!(r["macs"].as_u64(), Some(macs.iter().sum()));
    let gmacs = r["gmacs"].as_f64().unwrap();
    assert!((gmacs - r["macs"].as_f64().unwrap() / total / 1e3).abs() < 1e-3);

    for (i, op) in ops.iter().enumerate() {
        assert_eq!(op["index"], i);
        let kernel = op["kernel"].as_str().unwrap();
        let family = match op["op"].as_str().unwrap() {
            "Conv" => "conv_s8",
            "MaxPool" => "max_pool_s8",
            "AvgPool" => "avg_pool_s8",
            "FullyConnected" => "fully_connected_s8",
            "Softmax" => "softmax_s8",
            _ => "",
        };
        // A family's kernels share its name: `conv_s8`, `conv_s8_avx2`,
        // `depthwise_conv_s8_neon`, ...
        assert!(kernel.contains(family), "op {i} ran {kernel}");
        for refused in op["refused"].as_array().expect("refused is a list") {
            let name = refused["kernel"].as_str().unwrap();
            assert!(name.contains(family) && name != kernel, "{refused}");
            assert!(!refused["reason"].as_str().unwrap().is_empty(), "{refused}");
        }
        let (us, _) = timing(&op["us"]);
        let expect = op["macs"].as_f64().unwrap() / us / 1e3;
        assert!(
            (op["gmacs"].as_f64().unwrap() - expect).abs() < 1e-3,
            "{op}"
        );
    }
}

#[test]
fn table_names_each_ops_kernel() {
    let out = medq(&["--iterations", "3"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(table.contains("per inference: median"), "{table}");
    assert!(table.contains("G MAC/s"), "{table}");
    let conv = table
        .lines()
        .find(|l| l.trim_start().starts_with("0  Conv"))
        .unwrap_or_else(|| panic!("no line for op 0: {table}"));
    assert!(conv.contains("conv_s8"), "{conv}");
    assert!(conv.contains(" 15680 "), "{conv}");
}

#[test]
fn zero_iterations_are_refused() {
    let out = medq(&["--iterations", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--iterations must be at least 1"),
        "{stderr}"
    );
}

/// A refused file's error says each part of its cause once ("model file is
/// truncated: model file is truncated" before).
#[test]
fn a_refused_file_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mq");
    let bytes = std::fs::read(ecg_mq()).unwrap();
    std::fs::write(&path, &bytes[..100]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medq"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was refused: invalid model file: "),
        "{stderr}"
    );
    assert_eq!(stderr.matches("truncated").count(), 1, "{stderr}");
}
