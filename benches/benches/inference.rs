//! medq int8 inference against tract's float inference on the bundled ECG
//! model, on this host. Run with `cargo bench -p medq-benches`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use medq::interpreter::Interpreter;
use medq_converter::float_ref::FloatRef;
use medq_converter::{convert, Options};

fn bench_ecg(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ecg5000");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("ecg.mq");
    let mut opts = Options::new(root.join("ecg.onnx"), &out);
    opts.calib = Some(root.join("calib.npy"));
    convert(&opts).expect("convert the ECG model");

    let file = medq::ModelFile::map(&out).expect("map ecg.mq");
    let model = file.model().expect("parse ecg.mq");
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let input_len = model.input_info(0).expect("input").len;
    c.bench_function("medq int8 ECG5000 CNN", |b| {
        let mut interp = Interpreter::new(&model, &mut arena, &mut plan).expect("arena");
        interp
            .input_mut(0)
            .expect("input")
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i % 50) as i8);
        b.iter(|| interp.invoke().expect("invoke"));
    });

    let input_shape = [1usize, 1, 140];
    let float_ref = FloatRef::new(&root.join("ecg.onnx"), &input_shape).expect("tract model");
    let x: Vec<f32> = (0..input_len)
        .map(|i| ((i % 50) as f32 - 25.0) / 10.0)
        .collect();
    let wanted = vec!["probs".to_string()];
    c.bench_function("tract f32 ECG5000 CNN", |b| {
        b.iter(|| float_ref.run(&x, &wanted).expect("tract run"));
    });
}

criterion_group!(benches, bench_ecg);
criterion_main!(benches);
