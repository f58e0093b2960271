//! The loaded-and-rewritten IR computes what tract computes on the original
//! ONNX model, op by op and on the real models; and the FloatRef API.

mod frontend_common;

use std::path::{Path, PathBuf};

use frontend_common::*;
use medq_converter::float_ref::FloatRef;
use medq_converter::ir::Graph;
use medq_converter::load::{load_onnx, load_onnx_with, LoadOptions};
use medq_converter::rewrite::rewrite;

/// Load + rewrite `path`, run IR and tract on random inputs, compare every
/// graph output (and return the rewritten graph).
fn check_against_tract(path: &Path, seeds: u64, tol: f32) -> Graph {
    check_against_tract_with(path, &LoadOptions::default(), seeds, tol)
}

/// [`check_against_tract`] with the inputs' shapes fixed by `load`.
fn check_against_tract_with(path: &Path, load: &LoadOptions, seeds: u64, tol: f32) -> Graph {
    let mut g = load_onnx_with(path, load)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .graph;
    rewrite(&mut g).unwrap();
    let shapes: Vec<Vec<usize>> = g
        .inputs
        .iter()
        .map(|&t| g.tensors[t].shape.clone())
        .collect();
    let fr = FloatRef::with_inputs(path, &shapes).unwrap();
    let names: Vec<String> = g
        .outputs
        .iter()
        .map(|&o| g.tensors[o].name.clone())
        .collect();
    for seed in 0..seeds {
        let xs: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| Rng::new(seed * 7 + k as u64).range(s.iter().product(), -2.0, 2.0))
            .collect();
        let xs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let want = fr.run_inputs(&xs, &names).unwrap();
        let got = eval_ir_inputs(&g, &xs);
        for ((&o, w), name) in g.outputs.iter().zip(&want).zip(&names) {
            assert_close(
                got[o].as_ref().unwrap(),
                w,
                tol,
                &format!("{}: {name}", path.display()),
            );
        }
    }
    g
}

fn cnn(dir: &Path) -> PathBuf {
    let mut rng = Rng::new(1);
    ModelBuilder::new(13)
        .input("x", &[1, 3, 8, 8])
        .f32("w1", &[4, 3, 3, 3], &rng.vec(108))
        .f32("b1", &[4], &rng.vec(4))
        .f32("g", &[4], &rng.range(4, 0.5, 2.0))
        .f32("be", &[4], &rng.vec(4))
        .f32("m", &[4], &rng.vec(4))
        .f32("v", &[4], &rng.range(4, 0.1, 2.0))
        .f32("fw", &[5, 4], &rng.vec(20))
        .f32("fb", &[5], &rng.vec(5))
        .node(
            "/conv1/Conv",
            "Conv",
            &["x", "w1", "b1"],
            &["c1"],
            vec![attr_ints("pads", &[1, 1, 1, 1])],
        )
        .node(
            "/bn1/BatchNormalization",
            "BatchNormalization",
            &["c1", "g", "be", "m", "v"],
            &["n1"],
            vec![],
        )
        .node("/relu1/Relu", "Relu", &["n1"], &["r1"], vec![])
        .node(
            "/pool/MaxPool",
            "MaxPool",
            &["r1"],
            &["p1"],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ],
        )
        .node(
            "/gap/GlobalAveragePool",
            "GlobalAveragePool",
            &["p1"],
            &["gp"],
            vec![],
        )
        .node("/Flatten", "Flatten", &["gp"], &["fl"], vec![])
        .node(
            "/fc/Gemm",
            "Gemm",
            &["fl", "fw", "fb"],
            &["logits"],
            vec![attr_i("transB", 1)],
        )
        .node(
            "/Softmax",
            "Softmax",
            &["logits"],
            &["y"],
            vec![attr_i("axis", 1)],
        )
        .output("y")
        .write(dir, "cnn.onnx")
}

#[test]
fn conv_bn_relu_gemm_matches_tract() {
    let dir = tempfile::tempdir().unwrap();
    let path = cnn(dir.path());
    let g = check_against_tract(&path, 4, 1e-4);
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(
        kinds,
        [
            "Conv",
            "MaxPool",
            "AvgPool",
            "Reshape",
            "FullyConnected",
            "Softmax"
        ]
    );
}

#[test]
fn intermediate_tensors_by_onnx_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = cnn(dir.path());
    let mut g = load_onnx(&path).unwrap().graph;
    rewrite(&mut g).unwrap();
    let fr = FloatRef::new(&path, &[1, 3, 8, 8]).unwrap();
    // Every tensor the rewritten IR computes, plus a duplicate and the input.
    let mut names: Vec<String> = g
        .nodes
        .iter()
        .map(|n| g.tensors[n.output].name.clone())
        .collect();
    names.push("r1".into());
    names.insert(0, "x".into());
    let x = Rng::new(42).range(192, -2.0, 2.0);
    let values = fr.run(&x, &names).unwrap();
    assert_eq!(values.len(), names.len());
    assert_eq!(values[0], x);
    let ir = eval_ir(&g, &x);
    for (name, v) in names.iter().zip(&values) {
        let id = g.tensors.iter().position(|t| &t.name == name).unwrap();
        assert_close(ir[id].as_ref().unwrap(), v, 1e-4, name);
    }
    // The cached plan gives the same answer again, and other name sets work.
    assert_eq!(fr.run(&x, &names).unwrap(), values);
    let only_out = fr.run(&x, &["y".to_string()]).unwrap();
    let iy = names.iter().position(|n| n == "y").unwrap();
    assert_eq!(only_out[0], values[iy]);
    assert!(fr.run(&x[1..], &names).is_err());
    let e = fr.run(&x, &["no_such_tensor".to_string()]).unwrap_err();
    assert!(e.to_string().contains("no_such_tensor"), "{e}");
}

/// One model per op feature whose geometry or semantics the loader has to
/// get right; the IR must agree with tract on each.
#[test]
fn single_op_models_match_tract() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(3);
    let mut models: Vec<(&str, ModelBuilder)> = Vec::new();
    let conv = |name: &'static str,
                x: &[i64],
                w: &[i64],
                attrs: Vec<tract_onnx::pb::AttributeProto>,
                rng: &mut Rng| {
        let n: i64 = w.iter().product();
        (
            name,
            ModelBuilder::new(13)
                .input("x", x)
                .f32("w", w, &rng.vec(n as usize))
                .f32("b", &[w[0]], &rng.vec(w[0] as usize))
                .node("conv", "Conv", &["x", "w", "b"], &["y"], attrs)
                .output("y"),
        )
    };
    models.push(conv(
        "conv_group_dil",
        &[1, 4, 9, 8],
        &[6, 2, 3, 2],
        vec![
            attr_i("group", 2),
            attr_ints("dilations", &[2, 1]),
            attr_ints("pads", &[1, 0, 2, 1]),
            attr_ints("strides", &[1, 2]),
        ],
        &mut rng,
    ));
    models.push(conv(
        "conv_same_lower",
        &[1, 2, 7, 6],
        &[3, 2, 2, 3],
        vec![
            attr_s("auto_pad", "SAME_LOWER"),
            attr_ints("strides", &[2, 2]),
        ],
        &mut rng,
    ));
    models.push(conv(
        "conv_same_upper",
        &[1, 2, 7, 6],
        &[3, 2, 2, 3],
        vec![
            attr_s("auto_pad", "SAME_UPPER"),
            attr_ints("strides", &[2, 2]),
        ],
        &mut rng,
    ));
    models.push(conv(
        "conv1d",
        &[1, 3, 30],
        &[4, 3, 5],
        vec![
            attr_ints("pads", &[2, 1]),
            attr_ints("strides", &[2]),
            attr_ints("dilations", &[2]),
        ],
        &mut rng,
    ));
    models.push(conv(
        "conv_depthwise",
        &[1, 3, 6, 6],
        &[3, 1, 3, 3],
        vec![attr_i("group", 3)],
        &mut rng,
    ));
    let pool =
        |name: &'static str, op: &str, x: &[i64], attrs: Vec<tract_onnx::pb::AttributeProto>| {
            (
                name,
                ModelBuilder::new(13)
                    .input("x", x)
                    .node("p", op, &["x"], &["y"], attrs)
                    .output("y"),
            )
        };
    models.push(pool(
        "maxpool_ceil",
        "MaxPool",
        &[1, 2, 7, 8],
        vec![
            attr_ints("kernel_shape", &[3, 2]),
            attr_ints("strides", &[2, 3]),
            attr_i("ceil_mode", 1),
        ],
    ));
    models.push(pool(
        "maxpool_pads1d",
        "MaxPool",
        &[1, 2, 11],
        vec![
            attr_ints("kernel_shape", &[3]),
            attr_ints("strides", &[2]),
            attr_ints("pads", &[1, 1]),
        ],
    ));
    models.push(pool(
        "avgpool_excl",
        "AveragePool",
        &[1, 2, 7, 7],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
        ],
    ));
    models.push(pool(
        "avgpool_incl",
        "AveragePool",
        &[1, 2, 7, 7],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
            attr_i("count_include_pad", 1),
        ],
    ));
    models.push(pool(
        "avgpool_ceil",
        "AveragePool",
        &[1, 2, 8],
        vec![
            attr_ints("kernel_shape", &[3]),
            attr_ints("strides", &[2]),
            attr_i("ceil_mode", 1),
        ],
    ));
    models.push(pool("gap", "GlobalAveragePool", &[1, 3, 5, 4], vec![]));
    models.push(pool("gmp1d", "GlobalMaxPool", &[1, 3, 9], vec![]));
    models.push(pool(
        "softmax_mid",
        "Softmax",
        &[1, 4, 3],
        vec![attr_i("axis", 1)],
    ));
    models.push(pool(
        "leaky",
        "LeakyRelu",
        &[1, 10],
        vec![attr_f("alpha", 0.2)],
    ));
    models.push(pool("hsig", "HardSigmoid", &[1, 10], vec![]));
    models.push((
        "hswish",
        ModelBuilder::new(14)
            .input("x", &[1, 10])
            .node("h", "HardSwish", &["x"], &["y"], vec![])
            .output("y"),
    ));
    models.push(pool("sigmoid", "Sigmoid", &[1, 10], vec![]));
    models.push(pool("tanh", "Tanh", &[1, 10], vec![]));
    models.push((
        "pad_sub_div",
        ModelBuilder::new(13)
            .input("x", &[1, 2, 3, 3])
            .i64("pads", &[8], &[0, 1, 1, 0, 0, 0, 2, 1])
            .f32("v", &[], &[0.75])
            .f32("mean", &[2, 1, 1], &[0.5, -0.5])
            .f32("std", &[1, 2, 1, 1], &[2.0, 4.0])
            .node("sub", "Sub", &["x", "mean"], &["s"], vec![])
            .node("div", "Div", &["s", "std"], &["d"], vec![])
            .node("pad", "Pad", &["d", "pads", "v"], &["y"], vec![])
            .output("y"),
    ));
    models.push((
        "concat_const",
        ModelBuilder::new(13)
            .input("x", &[1, 2, 3])
            .f32("k", &[1, 1, 3], &[1.0, 2.0, 3.0])
            .node("relu", "Relu", &["x"], &["r"], vec![])
            .node(
                "cat",
                "Concat",
                &["r", "k", "x"],
                &["y"],
                vec![attr_i("axis", 1)],
            )
            .output("y"),
    ));
    models.push((
        "matmul_add_rank3",
        ModelBuilder::new(13)
            .input("x", &[1, 4, 6])
            .f32("W", &[6, 3], &rng.vec(18))
            .f32("B", &[3], &rng.vec(3))
            .node("mm", "MatMul", &["x", "W"], &["m"], vec![])
            .node("add", "Add", &["m", "B"], &["a"], vec![])
            .node("clip", "Clip", &["a", "lo", "hi"], &["y"], vec![])
            .f32("lo", &[], &[-0.5])
            .f32("hi", &[], &[0.5])
            .output("y"),
    ));
    let bn = |name: &'static str, x: &[i64], rng: &mut Rng| {
        let c = x[1] as usize;
        (
            name,
            ModelBuilder::new(13)
                .input("x", x)
                .f32("g", &[c as i64], &rng.range(c, 0.5, 2.0))
                .f32("b", &[c as i64], &rng.vec(c))
                .f32("m", &[c as i64], &rng.vec(c))
                .f32("v", &[c as i64], &rng.range(c, 0.1, 2.0))
                .node(
                    "bn",
                    "BatchNormalization",
                    &["x", "g", "b", "m", "v"],
                    &["y"],
                    vec![attr_f("epsilon", 1e-3)],
                )
                .output("y"),
        )
    };
    models.push(bn("bn2d", &[1, 3, 4, 4], &mut rng));
    models.push(bn("bn1d", &[1, 3, 7], &mut rng));
    models.push(bn("bn_features", &[1, 5], &mut rng));
    models.push((
        "gemm_plain",
        ModelBuilder::new(11)
            .input("x", &[1, 4])
            .f32("B", &[4, 3], &rng.vec(12))
            .f32("C", &[1, 3], &rng.vec(3))
            .node(
                "g",
                "Gemm",
                &["x", "B", "C"],
                &["y"],
                vec![attr_f("alpha", 0.5), attr_f("beta", 2.0)],
            )
            .output("y"),
    ));
    models.push((
        "transpose_view_mul",
        ModelBuilder::new(13)
            .input("x", &[1, 5, 1])
            .f32("s", &[5], &rng.vec(5))
            .node(
                "t",
                "Transpose",
                &["x"],
                &["t"],
                vec![attr_ints("perm", &[0, 2, 1])],
            )
            .node("m", "Mul", &["t", "s"], &["y"], vec![])
            .output("y"),
    ));
    for (name, b) in models {
        check_against_tract(&b.write(dir.path(), &format!("{name}.onnx")), 2, 1e-4);
    }
}

/// Every model in `models/` loads, rewrites and computes what tract
/// computes (recurrent nodes through the converter's float cell).
#[test]
fn repository_models_load_rewrite_and_match_tract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut paths = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "onnx")
                // Models medq must refuse (converter/tests/qdq.rs).
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("refuse_"))
            {
                paths.push(p);
            }
        }
    }
    paths.sort();
    assert!(!paths.is_empty(), "no models under {}", root.display());
    // The models with a symbolic dimension besides the batch, and its size.
    let fixed: [(&str, &str, &[usize]); 6] = [
        ("eeg_bigru.onnx", "eeg", &[1, 4, 64]),
        ("eeg_symbolic.onnx", "eeg", &[1, 4, 128]),
        ("gru_state.onnx", "x", &[1, 40, 6]),
        ("seizure_lstm.onnx", "eeg", &[1, 18, 256]),
        ("seizure_lstm_dynamo.onnx", "eeg", &[1, 18, 256]),
        ("wide_lstm.onnx", "eeg", &[1, 2, 256]),
    ];
    // Sequence-first, or video frames as the batch: samples stack whole
    // inputs (one shape per input), so the shape is data's.
    let video: &[&[usize]] = &[&[1, 8, 3, 24, 24], &[1, 8, 3, 24, 24]];
    let whole: [(&str, &[&[usize]]); 3] = [
        ("gru_seq_first.onnx", &[&[1, 40, 1, 6]]),
        ("rppg_can.onnx", video),
        ("rppg_tscan.onnx", video),
    ];
    for p in paths {
        let name = p.file_name().unwrap().to_str().unwrap();
        let load = LoadOptions {
            input_shapes: fixed
                .iter()
                .filter(|(file, _, _)| *file == name)
                .map(|(_, input, shape)| (input.to_string(), shape.to_vec()))
                .collect(),
            sample_shapes: whole
                .iter()
                .filter(|(file, _)| *file == name)
                .flat_map(|(_, samples)| samples.iter().map(|s| s.to_vec()))
                .collect(),
        };
        check_against_tract_with(&p, &load, 2, 1e-4);
    }
}

/// Calibration may share one reference across threads.
#[test]
fn float_ref_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<FloatRef>();
}
