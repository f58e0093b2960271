//! medq int8 inference against tract's float inference on the bundled ECG
//! model, on this host: a quick look. Run with `cargo bench -p medq-benches`;
//! `benches/run.sh` is the full side-by-side benchmark. Both engines are the
//! harness's own (`medq_benches::engine`), so this bench runs them the same way.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use medq_benches::engine::{with_medq, Engine, TractEngine};
use medq_converter::{convert, Options};

fn bench_ecg(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ecg5000");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("ecg.mq");
    let mut opts = Options::new(root.join("ecg.onnx"), &out);
    opts.calib = vec![root.join("calib.npy")];
    convert(&opts).expect("convert the ECG model");

    let x: Vec<f32> = (0..140).map(|i| ((i % 50) as f32 - 25.0) / 10.0).collect();
    with_medq(&out, &x, |medq| {
        c.bench_function("medq int8 ECG5000 CNN", |b| {
            b.iter(|| medq.infer().expect("medq inference"))
        });
        Ok(())
    })
    .expect("medq engine");

    let mut tract = TractEngine::load(&root.join("ecg.onnx"), &[1, 1, 140], &x).expect("tract");
    c.bench_function("tract f32 ECG5000 CNN", |b| {
        b.iter(|| tract.infer().expect("tract inference"))
    });
}

criterion_group!(benches, bench_ecg);
criterion_main!(benches);
