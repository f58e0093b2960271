//! `zoo-sweep` end to end on a narrowed sweep: the files it writes, one row
//! per run with the fields, the random baseline below magnitude
//! pruning, rendering again, and auto precision rows merged in.

use std::process::Command;

#[test]
fn a_narrow_sweep_writes_rows_tables_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO_BIN_EXE_zoo-sweep"))
        .current_dir(root)
        .args(["--only", "ecg5000", "--methods", "l1,random"])
        .args([
            "--sparsities",
            "0,0.5",
            "--variants",
            "int8",
            "--no-attribution",
        ])
        .args(["--quiet", "--out-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sweep.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    // Sparsity 0 once, then each method at 50%.
    let runs: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap(),
                r["sparsity"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(runs, [("none", 0.0), ("l1", 0.5), ("random", 0.5)]);
    let fields = [
        "model",
        "method",
        "sparsity",
        "weights",
        "precision",
        "int16_layers",
        "int16_weight_layers",
        "float_accuracy",
        "accuracy",
        "balanced_accuracy",
        "per_class_recall",
        "mq_bytes",
        "dense_mq_bytes",
        "macs",
        "m4_instructions",
        "attribution_spearman_median",
    ];
    for r in rows {
        for f in fields {
            assert!(r.get(f).is_some(), "{f} missing in {r}");
        }
        assert_eq!(r["dense_mq_bytes"], rows[0]["mq_bytes"]);
        assert_eq!(r["per_class_recall"].as_array().unwrap().len(), 5);
        assert_eq!(r["precision"], "int8");
        assert!(r["int16_layers"].is_null());
        assert!(r["int16_weight_layers"].is_null());
    }
    let acc = |k: usize| rows[k]["accuracy"].as_f64().unwrap();
    assert!(acc(2) + 0.2 < acc(1), "random {} vs l1 {}", acc(2), acc(1));
    // Pruned weights are stored sparse: smaller than the unpruned file.
    let bytes = |k: usize| rows[k]["mq_bytes"].as_u64().unwrap();
    assert!(bytes(1) < bytes(0));

    let md = std::fs::read_to_string(dir.path().join("SWEEP.md")).unwrap();
    assert!(md.contains("## ecg5000"));
    assert!(md.contains("random baseline is below `l1` and `obs` (those that ran) at every"));
    let svg = std::fs::read_to_string(dir.path().join("sweep/ecg5000.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("l1 int8") && svg.contains("random int8"));

    // Rendering again from sweep.json converts nothing and gives the same
    // table and chart; the JSON is left as it was.
    let json_before = std::fs::read(dir.path().join("sweep.json")).unwrap();
    std::fs::remove_file(dir.path().join("SWEEP.md")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zoo-sweep"))
        .current_dir(root)
        .args([
            "--render-only",
            "--quiet",
            "--out-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("SWEEP.md")).unwrap(),
        md
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sweep/ecg5000.svg")).unwrap(),
        svg
    );
    assert_eq!(
        std::fs::read(dir.path().join("sweep.json")).unwrap(),
        json_before
    );

    // Auto precision merged into the same sweep: its rows after the model's
    // int8 rows, which stay as they were.
    let out = Command::new(env!("CARGO_BIN_EXE_zoo-sweep"))
        .current_dir(root)
        .args([
            "--only",
            "ecg5000",
            "--methods",
            "l1",
            "--sparsities",
            "0,0.5",
        ])
        .args([
            "--variants",
            "auto",
            "--no-attribution",
            "--merge",
            "--quiet",
        ])
        .args(["--out-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sweep.json")).unwrap()).unwrap();
    let merged = merged["rows"].as_array().unwrap();
    let errors: Vec<&serde_json::Value> = merged.iter().filter_map(|r| r.get("error")).collect();
    assert!(
        out.status.success(),
        "{}{errors:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(merged.len(), 5);
    assert_eq!(merged[..3], rows[..]);
    for (r, method) in merged[3..].iter().zip(["none", "l1"]) {
        assert_eq!(r["method"], method);
        assert_eq!(
            (&r["weights"], &r["precision"]),
            (&"int8".into(), &"auto".into())
        );
        assert!(r["int16_layers"].is_u64(), "{r}");
        assert!(r["int16_weight_layers"].is_u64(), "{r}");
        assert_eq!(r["dense_mq_bytes"], rows[0]["mq_bytes"]);
        assert!(r["accuracy"].as_f64().unwrap() + 0.05 >= acc(0), "{r}");
    }
    let md = std::fs::read_to_string(dir.path().join("SWEEP.md")).unwrap();
    assert!(md.contains("| weights | precision |") && md.contains("| int8 | auto ("));
    let svg = std::fs::read_to_string(dir.path().join("sweep/ecg5000.svg")).unwrap();
    assert!(svg.contains("l1 int8") && svg.contains("l1 auto"));
}
