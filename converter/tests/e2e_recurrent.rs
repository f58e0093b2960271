//! LSTM and GRU end to end: the zoo models' cells keep their SQNR through
//! int8 (the medq runtime on the bytes written, against tract's float run;
//! their accuracy is held to the zoo's targets in `converter/zoo/tests/zoo.rs`),
//! the converter's float cell (which calibrates the internal ranges) agrees with
//! tract, small synthetic cells cover what the zoo does not (GRU with
//! `linear_before_reset = 0`, several units and steps), and every unsupported
//! variant is refused with the node, the op and the reason.

mod frontend_common;

use std::path::{Path, PathBuf};

use frontend_common::{attr_f, attr_i, attr_s, ModelBuilder, Rng};
use medq_converter::ir::{Graph, Op};
use medq_converter::load::{convert_model, load_onnx, LoadOptions};
use medq_converter::samples::Samples;
use medq_converter::{calibrate, emit, evaluate, quantize, rewrite};
use medq_converter::{convert, float_ref::FloatRef, Options};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::AttributeProto;

fn zoo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// The int8 recurrent cell against the float one on the zoo model's test set:
/// the layer's SQNR and the model's top-1 agreement. (Accuracy and per-class
/// recall against the quality targets are the zoo's: `converter/zoo/tests/zoo.rs`.)
fn zoo_cell_keeps_its_sqnr(name: &str, op: &str) {
    let d = zoo(name);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(d.join("model.onnx"), dir.path().join("model.mq"));
    opts.calib = vec![d.join("calib.npy")];
    opts.eval = vec![d.join("test_x.npy")];
    let report = convert(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = &report.evaluation.outputs[0];
    assert!(out.top1_agreement.unwrap() >= 0.99, "{name}: {out:?}");
    let layer = report
        .layers
        .iter()
        .find(|l| l.op == op)
        .unwrap_or_else(|| panic!("{name}: no {op} layer"));
    let db = layer
        .sqnr_db
        .expect("a float reference for the cell output");
    assert!(db >= 32.0, "{name}: {op} SQNR {db:.1} dB");
}

#[test]
fn ecg5000_lstm_cell_keeps_its_sqnr() {
    zoo_cell_keeps_its_sqnr("ecg5000_lstm", "Lstm");
}

#[test]
fn ecg5000_gru_cell_keeps_its_sqnr() {
    zoo_cell_keeps_its_sqnr("ecg5000_gru", "Gru");
}

/// The converter's f64 cell, on the node input tract computes, gives tract's
/// `Y_h`: the gate reordering and bias split are right.
fn float_cell_matches_tract(onnx: &Path, samples: &Samples, tol: f32) {
    let graph = load_onnx(onnx).unwrap().graph;
    let node = graph
        .nodes
        .iter()
        .find(|n| matches!(n.op, Op::Recurrent(_)))
        .expect("a recurrent node");
    let Op::Recurrent(rec) = &node.op else {
        unreachable!()
    };
    let shape = graph.tensors[graph.inputs[0]].shape.clone();
    let tract = FloatRef::new(onnx, &shape).unwrap();
    let names = [
        graph.tensors[node.inputs[0]].name.clone(),
        graph.tensors[node.output].name.clone(),
    ];
    for s in 0..samples.len().min(25) {
        let v = tract.run(samples.sample(s), &names).unwrap();
        let h = rec.simulate(&[&v[0]], &mut Default::default());
        assert_eq!(h.len(), v[1].len());
        for (a, b) in h.iter().zip(&v[1]) {
            assert!((a - b).abs() <= tol, "sample {s}: {a} vs tract {b}");
        }
    }
}

#[test]
fn zoo_float_cells_match_tract() {
    for name in ["ecg5000_lstm", "ecg5000_gru"] {
        let d = zoo(name);
        let samples = Samples::load(&d.join("test_x.npy"), &[1, 1, 140]).unwrap();
        float_cell_matches_tract(&d.join("model.onnx"), &samples, 2e-5);
    }
}

// ---------------------------------------------------------------- synthetic cells

const STEPS: usize = 6;
const FEAT: usize = 3;
const HIDDEN: usize = 8;

/// `x [1, 1, STEPS·FEAT] → Reshape [STEPS, 1, FEAT] → op → Y_h [1, 1, HIDDEN]`
/// with random weights (seeded), ONNX gate order.
fn cell_model(op: &str, attrs: Vec<AttributeProto>, seed: u64) -> ModelBuilder {
    let gates = match op {
        "LSTM" => 4,
        "GRU" => 3,
        _ => 1,
    };
    let rows = (gates * HIDDEN) as i64;
    let mut rng = Rng::new(seed);
    let w = rng.range(gates * HIDDEN * FEAT, -0.8, 0.8);
    let r = rng.range(gates * HIDDEN * HIDDEN, -0.5, 0.5);
    let b = rng.range(2 * gates * HIDDEN, -0.5, 0.5);
    ModelBuilder::new(14)
        .input("x", &[1, 1, (STEPS * FEAT) as i64])
        .i64("shape", &[3], &[STEPS as i64, 1, FEAT as i64])
        .f32("W", &[1, rows, FEAT as i64], &w)
        .f32("R", &[1, rows, HIDDEN as i64], &r)
        .f32("B", &[1, 2 * rows], &b)
        .node("reshape", "Reshape", &["x", "shape"], &["seq"], vec![])
        .node(
            "cell",
            op,
            &["seq", "W", "R", "B"],
            &["Y", "Y_h"],
            // First, so that a test's own hidden_size is the one read.
            [attrs, vec![attr_i("hidden_size", HIDDEN as i64)]].concat(),
        )
        .output("Y_h")
}

fn random_samples(n: usize, seed: u64) -> Samples {
    let mut rng = Rng::new(seed);
    Samples::from_vec(
        vec![1, 1, STEPS * FEAT],
        rng.range(n * STEPS * FEAT, -2.0, 2.0),
    )
}

/// The pipeline of `convert()` on in-memory samples: returns the SQNR of the
/// output (the recurrent op) of the int8 run against tract.
fn int8_sqnr(onnx: &Path, calib: &Samples, eval: &Samples) -> f64 {
    let mut graph: Graph = load_onnx(onnx).unwrap().graph;
    rewrite::rewrite(&mut graph).unwrap();
    let tract = FloatRef::new(onnx, &[1, 1, STEPS * FEAT]).unwrap();
    let bar = indicatif::ProgressBar::hidden();
    let cal = calibrate::calibrate(&graph, &tract, calib, false, &bar).unwrap();
    let ranges: Vec<_> = cal
        .observers
        .iter()
        .map(|o| {
            o.as_ref()
                .map(|o| o.range(calibrate::Method::MinMax, 99.99))
        })
        .collect();
    let qg = quantize::quantize_with_cells(&graph, &ranges, &cal.cells, &[], Default::default())
        .unwrap();
    let plan = emit::plan_arena(&graph, &qg);
    let bytes = emit::emit(
        &graph,
        &qg,
        &plan,
        &Default::default(),
        None,
        Default::default(),
    )
    .unwrap();
    let ev = evaluate::evaluate(&graph, &qg, &bytes, &tract, eval, None, &bar).unwrap();
    ev.outputs[0].sqnr_db.unwrap()
}

#[test]
fn synthetic_cells_agree_with_tract() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("LSTM", vec![], "lstm"),
        ("GRU", vec![attr_i("linear_before_reset", 0)], "gru_lbr0"),
        ("GRU", vec![attr_i("linear_before_reset", 1)], "gru_lbr1"),
        ("RNN", vec![], "rnn"),
    ];
    for (seed, (op, attrs, file)) in cases.into_iter().enumerate() {
        let path =
            cell_model(op, attrs, 7 + seed as u64).write(dir.path(), &format!("{file}.onnx"));
        let calib = random_samples(64, 100 + seed as u64);
        let eval = random_samples(64, 200 + seed as u64);
        float_cell_matches_tract(&path, &eval, 2e-5);
        let db = int8_sqnr(&path, &calib, &eval);
        assert!(db >= 30.0, "{file}: int8 SQNR {db:.1} dB");
    }
}

// ---------------------------------------------------------------- refusals

fn load_err(b: ModelBuilder) -> String {
    match convert_model(&b.build(), &LoadOptions::default()) {
        Ok((g, _)) => panic!("expected an error, got {} nodes", g.nodes.len()),
        Err(e) => e.to_string(),
    }
}

fn attr_strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

#[test]
fn unsupported_variants_are_refused_with_the_reason() {
    let cases: Vec<(&str, Vec<AttributeProto>, &str)> = vec![
        (
            "LSTM",
            vec![attr_s("direction", "bidirectional")],
            "direction",
        ),
        ("GRU", vec![attr_s("direction", "reverse")], "direction"),
        ("LSTM", vec![attr_f("clip", 3.0)], "clip"),
        ("LSTM", vec![attr_i("input_forget", 1)], "input_forget"),
        ("GRU", vec![attr_i("layout", 1)], "layout"),
        (
            "GRU",
            vec![attr_i("linear_before_reset", 2)],
            "linear_before_reset",
        ),
        (
            "LSTM",
            vec![attr_strings(
                "activations",
                &["HardSigmoid", "Tanh", "Tanh"],
            )],
            "activations",
        ),
        (
            "GRU",
            vec![attr_strings("activations", &["Sigmoid", "Relu"])],
            "activations",
        ),
        ("LSTM", vec![attr_i("hidden_size", 9)], "hidden_size"),
        (
            "RNN",
            vec![attr_strings("activations", &["Relu"])],
            "dynamo=True",
        ),
        ("RNN", vec![attr_f("clip", 3.0)], "clip"),
        ("RNN", vec![attr_s("direction", "reverse")], "direction"),
    ];
    for (op, attrs, reason) in cases {
        let e = load_err(cell_model(op, attrs, 1));
        assert!(
            e.starts_with(&format!("node \"cell\" (op {op})")) && e.contains(reason),
            "{e}"
        );
    }
    // Default activations spelled out are fine.
    let g = convert_model(
        &cell_model(
            "LSTM",
            vec![attr_strings("activations", &["Sigmoid", "Tanh", "Tanh"])],
            1,
        )
        .build(),
        &LoadOptions::default(),
    )
    .unwrap()
    .0;
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::Recurrent(_))));
}

#[test]
fn non_zero_state_peepholes_and_short_sequences_are_refused() {
    let h = HIDDEN as i64;
    let with_input = |k: usize, name: &str, dims: &[i64], data: Vec<f32>, int: bool| {
        let mut b = cell_model("LSTM", vec![], 1);
        b = if int {
            b.i64(
                name,
                dims,
                &data.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            )
        } else {
            b.f32(name, dims, &data)
        };
        // Optional inputs before `k` stay empty.
        let node = b.model.graph.as_mut().unwrap().node.last_mut().unwrap();
        node.input.resize(k, String::new());
        node.input.push(name.into());
        b
    };
    let cases = [
        (
            with_input(5, "h0", &[1, 1, h], vec![0.5; HIDDEN], false),
            "initial_h",
        ),
        (
            with_input(6, "c0", &[1, 1, h], vec![0.1; HIDDEN], false),
            "initial_c",
        ),
        (
            with_input(7, "P", &[1, 3 * h], vec![0.2; 3 * HIDDEN], false),
            "peephole",
        ),
        (
            with_input(4, "lens", &[1], vec![3.0], true),
            "sequence_lens",
        ),
    ];
    for (b, what) in cases {
        let e = load_err(b);
        assert!(
            e.starts_with("node \"cell\" (op LSTM)") && e.contains(what),
            "{e}"
        );
    }
    // Zero initial states and a full-length sequence are accepted.
    for b in [
        with_input(5, "h0", &[1, 1, h], vec![0.0; HIDDEN], false),
        with_input(4, "lens", &[1], vec![STEPS as f32], true),
    ] {
        assert!(convert_model(&b.build(), &LoadOptions::default()).is_ok());
    }
}

#[test]
fn the_sequence_is_computed_only_when_read() {
    let recurrent = |b: ModelBuilder| {
        let (g, _) = convert_model(&b.build(), &LoadOptions::default()).unwrap();
        let node = g.nodes.iter().find(|n| matches!(n.op, Op::Recurrent(_)));
        let node = node.expect("a recurrent op").clone();
        let Op::Recurrent(rec) = &node.op else {
            unreachable!()
        };
        (rec.sequence, g.tensors[node.output].shape.clone())
    };
    // Y is named but nobody reads it (as PyTorch exports): last state only.
    assert_eq!(
        recurrent(cell_model("GRU", vec![], 1)),
        (false, vec![1, 1, HIDDEN])
    );
    // The graph reads Y: every step's hidden state, [T, dirs, batch, H].
    let mut b = cell_model("GRU", vec![], 1);
    b.model.graph.as_mut().unwrap().output[0].name = "Y".into();
    assert_eq!(recurrent(b), (true, vec![STEPS, 1, 1, HIDDEN]));
}
