//! The `side_by_side` harness as `benches/run.sh` drives it: `prepare`
//! converts the named zoo models and writes the manifest both engines read,
//! and a name that is not in the zoo is refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medq_benches::engine::{read_sample, with_medq, Engine, Manifest};

/// `side_by_side prepare` run from the workspace root (where the zoo's
/// default `models/zoo.json` is).
fn prepare(work: &Path, models: &str) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(env!("CARGO_BIN_EXE_side_by_side"))
        .current_dir(root)
        .args(["prepare", "--models", models, "--work"])
        .arg(work)
        .output()
        .unwrap()
}

#[test]
fn prepare_converts_the_named_models_for_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let out = prepare(dir.path(), "ecg5000");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = Manifest::load(&dir.path().join("manifest.json")).unwrap();
    let names: Vec<&str> = manifest.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ecg5000"]);
    // The .mq file runs on its recorded sample: ECG5000's five classes.
    let m = &manifest.models[0];
    let sample = read_sample(&m.sample).unwrap();
    let classes = with_medq(&m.mq, &sample, |engine| {
        engine.infer()?;
        Ok(engine.output()?.len())
    })
    .unwrap();
    assert_eq!(classes, 5);
}

#[test]
fn prepare_refuses_a_name_outside_the_zoo_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let out = prepare(&work, "ecg5000,not_a_model");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"not_a_model\" is not a zoo model"),
        "{stderr}"
    );
    assert!(!work.exists());
}
