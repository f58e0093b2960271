//! Rewrites: what they fold and fuse, what they must leave alone, and that
//! the float function of the graph is unchanged.

mod frontend_common;

use frontend_common::*;
use medq_converter::ir::{Add, Conv, FullyConnected, FusedActivation, Graph, Mul, Op};
use medq_converter::load::{convert_model, LoadOptions};
use medq_converter::rewrite::rewrite;

fn load(b: ModelBuilder) -> Graph {
    convert_model(&b.build(), &LoadOptions::default())
        .unwrap()
        .0
}

/// Rewrite a copy of `g`, check every graph output is unchanged in float on
/// a few random inputs, and return the rewritten graph and log.
fn rewrite_checked(g: &Graph) -> (Graph, Vec<String>) {
    let mut r = g.clone();
    let log = rewrite(&mut r).unwrap().0;
    let n: usize = g.tensors[g.inputs[0]].shape.iter().product();
    let mut rng = Rng::new(7);
    for _ in 0..3 {
        let x = rng.range(n, -3.0, 3.0);
        let (before, after) = (eval_ir(g, &x), eval_ir(&r, &x));
        assert_eq!(g.outputs.len(), r.outputs.len());
        for (&o1, &o2) in g.outputs.iter().zip(&r.outputs) {
            assert_eq!(
                g.tensors[o1].name, r.tensors[o2].name,
                "output names must survive"
            );
            assert_close(
                after[o2].as_ref().unwrap(),
                before[o1].as_ref().unwrap(),
                1e-5,
                &g.tensors[o1].name,
            );
        }
    }
    (r, log)
}

fn conv_bn_relu(rng: &mut Rng) -> ModelBuilder {
    ModelBuilder::new(13)
        .input("x", &[1, 3, 6, 6])
        .f32("w", &[4, 3, 3, 3], &rng.vec(108))
        .f32("b", &[4], &rng.vec(4))
        .f32("gamma", &[4], &rng.range(4, 0.5, 2.0))
        .f32("beta", &[4], &rng.vec(4))
        .f32("mean", &[4], &rng.vec(4))
        .f32("var", &[4], &rng.range(4, 0.1, 2.0))
        .node(
            "/conv1/Conv",
            "Conv",
            &["x", "w", "b"],
            &["c"],
            vec![attr_ints("pads", &[1, 1, 1, 1])],
        )
        .node(
            "/bn1/BatchNormalization",
            "BatchNormalization",
            &["c", "gamma", "beta", "mean", "var"],
            &["n"],
            vec![],
        )
        .node("/relu/Relu", "Relu", &["n"], &["y"], vec![])
        .output("y")
}

#[test]
fn conv_bn_relu_becomes_one_conv() {
    for seed in 0..5 {
        let g = load(conv_bn_relu(&mut Rng::new(seed)));
        assert_eq!(g.nodes.len(), 3);
        let (r, log) = rewrite_checked(&g);
        assert_eq!(r.nodes.len(), 1);
        let n = &r.nodes[0];
        assert_eq!(n.name, "/conv1/Conv");
        assert_eq!(n.onnx_ops, ["Conv", "BatchNormalization", "Relu"]);
        assert!(matches!(
            n.op,
            Op::Conv(Conv {
                activation: FusedActivation::Relu,
                ..
            })
        ));
        assert_eq!(r.tensors[n.output].name, "y");
        assert_eq!(
            log,
            [
                "folded BatchNormalization \"/bn1/BatchNormalization\" into Conv \"/conv1/Conv\"",
                "fused Relu \"/relu/Relu\" into Conv+BatchNormalization \"/conv1/Conv\"",
            ]
        );
        // Only the input and output tensors remain.
        assert_eq!(r.tensors.len(), 2);
    }
}

#[test]
fn bn_is_not_folded_when_the_conv_output_is_also_used_elsewhere() {
    let mut rng = Rng::new(3);
    let b = conv_bn_relu(&mut rng).output("c");
    let g = load(b);
    let (r, log) = rewrite_checked(&g);
    // BN stays (as its depthwise conv), with the Relu fused into it.
    assert_eq!(r.nodes.len(), 2, "{log:?}");
    assert_eq!(r.nodes[1].onnx_ops, ["BatchNormalization", "Relu"]);
}

#[test]
fn matmul_add_becomes_fc_with_bias() {
    let mut rng = Rng::new(11);
    let b = ModelBuilder::new(17)
        .input("x", &[1, 5, 4])
        .f32("W", &[4, 3], &rng.vec(12))
        .f32("bias", &[3], &[0.5, -1.0, 2.0])
        .node("/fc/MatMul", "MatMul", &["x", "W"], &["m"], vec![])
        .node("/fc/Add", "Add", &["bias", "m"], &["y"], vec![])
        .output("y");
    let g = load(b);
    let (r, log) = rewrite_checked(&g);
    assert_eq!(r.nodes.len(), 1);
    let Op::FullyConnected(FullyConnected { bias, .. }) = &r.nodes[0].op else {
        panic!()
    };
    assert_eq!(bias, &vec![0.5, -1.0, 2.0]);
    assert_eq!(r.nodes[0].onnx_ops, ["MatMul", "Add"]);
    assert_eq!(
        log,
        ["folded Add \"/fc/Add\" (bias) into MatMul \"/fc/MatMul\""]
    );
}

#[test]
fn conv_bias_add_per_channel_folds_but_spatial_add_does_not() {
    let mut rng = Rng::new(5);
    let conv_add = |cshape: &[i64], c: &[f32], rng: &mut Rng| {
        ModelBuilder::new(13)
            .input("x", &[1, 2, 3, 3])
            .f32("w", &[2, 2, 1, 1], &rng.vec(4))
            .f32("c", cshape, c)
            .node("conv", "Conv", &["x", "w"], &["t"], vec![])
            .node("add", "Add", &["t", "c"], &["y"], vec![])
            .output("y")
    };
    let (r, _) = rewrite_checked(&load(conv_add(&[2, 1, 1], &[1.0, 2.0], &mut rng)));
    assert_eq!(r.nodes.len(), 1);
    let (r, _) = rewrite_checked(&load(conv_add(&[3], &[1.0, 2.0, 3.0], &mut rng)));
    assert_eq!(
        r.nodes.len(),
        2,
        "an Add varying along the width is not a bias"
    );
}

#[test]
fn gemm_batchnorm1d_folds_into_the_fc() {
    let mut rng = Rng::new(2);
    let b = ModelBuilder::new(13)
        .input("x", &[1, 6])
        .f32("W", &[4, 6], &rng.vec(24))
        .f32("B", &[4], &rng.vec(4))
        .f32("g", &[4], &rng.range(4, 0.5, 2.0))
        .f32("be", &[4], &rng.vec(4))
        .f32("m", &[4], &rng.vec(4))
        .f32("v", &[4], &rng.range(4, 0.5, 2.0))
        .node(
            "fc",
            "Gemm",
            &["x", "W", "B"],
            &["f"],
            vec![attr_i("transB", 1)],
        )
        .node(
            "bn",
            "BatchNormalization",
            &["f", "g", "be", "m", "v"],
            &["y"],
            vec![],
        )
        .output("y");
    let (r, log) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 1, "{log:?}");
    assert_eq!(r.nodes[0].onnx_ops, ["Gemm", "BatchNormalization"]);
}

#[test]
fn clip_fuses_into_add_and_mul_with_half_open_bounds() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4])
        .f32("c", &[4], &[1.0, -1.0, 0.5, 2.0])
        .f32("six", &[], &[6.0])
        .node("add", "Add", &["x", "c"], &["a"], vec![])
        .node("clip", "Clip", &["a", "", "six"], &["b"], vec![])
        .node("mul", "Mul", &["b", "b"], &["m"], vec![])
        .node("relu6", "Clip", &["m", "zero", "six"], &["y"], vec![])
        .f32("zero", &[], &[0.0])
        .output("y");
    let (r, _) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 2);
    assert!(
        matches!(r.nodes[0].op, Op::Add(Add { activation: FusedActivation::Clip { min, max } }) if min == f32::NEG_INFINITY && max == 6.0)
    );
    assert!(
        matches!(r.nodes[1].op, Op::Mul(Mul { activation: FusedActivation::Clip { min, max } }) if min == 0.0 && max == 6.0)
    );
}

#[test]
fn activation_is_not_fused_across_a_shared_or_output_tensor() {
    let mut rng = Rng::new(9);
    // Producer output read twice.
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4])
        .f32("W", &[4, 4], &rng.vec(16))
        .node("fc", "MatMul", &["x", "W"], &["f"], vec![])
        .f32("W2", &[4, 4], &rng.vec(16))
        .node("relu", "Relu", &["f"], &["r"], vec![])
        .node("fc2", "MatMul", &["f", "W2"], &["g"], vec![])
        .node("add", "Add", &["g", "r"], &["y"], vec![])
        .output("y");
    let (r, _) = rewrite_checked(&load(b));
    // fc, Relu (a table), fc2, Add: the Relu stays a node of its own.
    assert_eq!(r.nodes.len(), 4);
    // Producer output is a graph output.
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4])
        .f32("W", &[4, 4], &rng.vec(16))
        .node("fc", "MatMul", &["x", "W"], &["f"], vec![])
        .node("relu", "Relu", &["f"], &["y"], vec![])
        .output("y")
        .output("f");
    let (r, _) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 2);
    // Sigmoid is a table, not a clamp: never fused.
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4])
        .f32("W", &[4, 4], &rng.vec(16))
        .node("fc", "MatMul", &["x", "W"], &["f"], vec![])
        .node("sig", "Sigmoid", &["f"], &["y"], vec![])
        .output("y");
    let (r, _) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 2);
}

#[test]
fn identities_and_reshape_chains_disappear() {
    let mut rng = Rng::new(4);
    let b = ModelBuilder::new(13)
        .input("x", &[1, 2, 2, 2])
        .f32("w", &[2, 2, 1, 1], &rng.vec(4))
        .i64("s1", &[2], &[1, 8])
        .i64("s2", &[3], &[1, 4, 2])
        .node("conv", "Conv", &["x", "w"], &["c"], vec![])
        .node("id", "Identity", &["c"], &["i"], vec![])
        .node("drop", "Dropout", &["i"], &["d"], vec![])
        .node("flat", "Flatten", &["d"], &["f"], vec![])
        .node("r1", "Reshape", &["f", "s1"], &["r"], vec![])
        .node("r2", "Reshape", &["r", "s2"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(g.nodes.len(), 6);
    let (r, log) = rewrite_checked(&g);
    let kinds: Vec<&str> = r.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Conv", "Reshape"], "{log:?}");
    assert_eq!(r.tensors[r.nodes[1].output].name, "y");
    assert_eq!(r.tensors[r.nodes[1].output].shape, vec![1, 4, 2]);
    assert!(
        log.iter().any(|l| l.starts_with("dropped Identity \"id\"")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("dropped Dropout \"drop\"")),
        "{log:?}"
    );
}

#[test]
fn identity_between_input_and_output_is_kept() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .node("id", "Identity", &["x"], &["y"], vec![])
        .output("y");
    let (r, _) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 1);
    assert_eq!(r.tensors[r.outputs[0]].name, "y");
}

#[test]
fn dead_nodes_are_removed() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .f32("c", &[3], &[1.0, 2.0, 3.0])
        .node("unused", "Add", &["x", "c"], &["u"], vec![])
        .node("relu", "Relu", &["x"], &["y"], vec![])
        .output("y");
    let (r, log) = rewrite_checked(&load(b));
    assert_eq!(r.nodes.len(), 1);
    assert_eq!(r.tensors.len(), 2, "the constant goes with its node");
    assert_eq!(log, ["removed Add \"unused\": its output is never used"]);
}

#[test]
fn neutral_constants_are_dropped() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .f32("z", &[3], &[0.0; 3])
        .f32("o", &[1], &[1.0])
        .node("relu", "Relu", &["x"], &["r"], vec![])
        .node("add0", "Add", &["r", "z"], &["a"], vec![])
        .node("mul1", "Mul", &["a", "o"], &["m"], vec![])
        .node("sig", "Sigmoid", &["m"], &["y"], vec![])
        .output("y");
    let (r, _) = rewrite_checked(&load(b));
    let kinds: Vec<&str> = r.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Lut", "Lut"]);
}

#[test]
fn scalar_scales_fold_into_the_product_next_to_them() {
    // Attention's q·kᵀ / 2 and (q·0.5)·kᵀ both become the MatMul's alpha.
    let after = ModelBuilder::new(17)
        .input("x", &[1, 4, 3])
        .f32("two", &[], &[2.0])
        .node(
            "/t",
            "Transpose",
            &["x"],
            &["xt"],
            vec![attr_ints("perm", &[0, 2, 1])],
        )
        .node("/scores", "MatMul", &["x", "xt"], &["s"], vec![])
        .node("/scale", "Div", &["s", "two"], &["y"], vec![])
        .output("y");
    let before = ModelBuilder::new(17)
        .input("x", &[1, 4, 3])
        .f32("half", &[], &[0.5])
        .node(
            "/t",
            "Transpose",
            &["x"],
            &["xt"],
            vec![attr_ints("perm", &[0, 2, 1])],
        )
        .node("/scale", "Mul", &["x", "half"], &["q"], vec![])
        .node("/scores", "MatMul", &["q", "xt"], &["y"], vec![])
        .output("y");
    for (what, b) in [("after", after), ("before", before)] {
        let (r, log) = rewrite_checked(&load(b));
        let alphas: Vec<f32> = r
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::MatMul(m) => Some(m.alpha),
                _ => None,
            })
            .collect();
        assert_eq!(alphas, [0.5], "{what}");
        assert!(
            !r.nodes.iter().any(|n| matches!(n.op, Op::Mul(_))),
            "{what}"
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("folded") && l.contains("/scale")),
            "{what}: {log:?}"
        );
    }
    // A Gemm's temperature scales its weights and bias; a negative scale
    // stays a Mul (the requantization multiplier is positive).
    let mut rng = Rng::new(5);
    for (t, folds) in [(0.5f32, true), (-2.0, false)] {
        let b = ModelBuilder::new(17)
            .input("x", &[1, 4])
            .f32("W", &[3, 4], &rng.vec(12))
            .f32("c", &[3], &[0.5, -1.0, 2.0])
            .f32("t", &[], &[t])
            .node(
                "/fc",
                "Gemm",
                &["x", "W", "c"],
                &["g"],
                vec![attr_i("transB", 1)],
            )
            .node("/temperature", "Div", &["g", "t"], &["y"], vec![])
            .output("y");
        let (r, _) = rewrite_checked(&load(b));
        assert_eq!(r.nodes.len() == 1, folds, "temperature {t}");
    }
}

/// PyTorch's QAT export of a Conv fused with its BatchNorm: the Conv's
/// output divided by one factor per channel, plus its bias, then the
/// BatchNormalization. All three fold into the Conv; a factor that does not
/// run along the channels (here along the width) stays a Mul.
#[test]
fn per_channel_scales_fold_into_the_conv_before_them() {
    let mut rng = Rng::new(11);
    let mut qat_conv_bn = |factor_dims: &[i64]| {
        ModelBuilder::new(13)
            .input("x", &[1, 2, 3, 3])
            .f32("W", &[3, 2, 1, 1], &rng.vec(6))
            .f32("f", factor_dims, &[0.5, -2.0, 4.0])
            .f32("b", &[1, 3, 1, 1], &[0.1, 0.2, -0.3])
            .f32("gamma", &[3], &[1.5, 0.5, 2.0])
            .f32("beta", &[3], &[0.0, 1.0, -1.0])
            .f32("mean", &[3], &[0.2, -0.1, 0.0])
            .f32("var", &[3], &[1.0, 4.0, 0.25])
            .node("/c/Conv", "Conv", &["x", "W"], &["c"], vec![])
            .node("/c/Div", "Div", &["c", "f"], &["d"], vec![])
            .node("/c/Add", "Add", &["d", "b"], &["a"], vec![])
            .node(
                "/c/bn",
                "BatchNormalization",
                &["a", "gamma", "beta", "mean", "var"],
                &["y"],
                vec![],
            )
            .output("y")
    };
    let (r, log) = rewrite_checked(&load(qat_conv_bn(&[1, 3, 1, 1])));
    let kinds: Vec<&str> = r.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Conv"], "{log:?}");
    assert!(log.iter().any(|l| l.contains("(per channel)")), "{log:?}");
    let (r, _) = rewrite_checked(&load(qat_conv_bn(&[1, 1, 1, 3])));
    assert!(r.nodes.iter().any(|n| matches!(n.op, Op::Mul(_))));
}

/// Transposes in a row become one by the composed permutation, and none
/// when they cancel; a Relu behind views fuses into the Conv before them.
#[test]
fn transposes_compose_and_a_clamp_fuses_through_views() {
    let mut rng = Rng::new(5);
    let chain = |p1: &[i64], p2: &[i64]| {
        ModelBuilder::new(13)
            .input("x", &[1, 2, 3, 4])
            .node(
                "t1",
                "Transpose",
                &["x"],
                &["a"],
                vec![attr_ints("perm", p1)],
            )
            .node(
                "t2",
                "Transpose",
                &["a"],
                &["b"],
                vec![attr_ints("perm", p2)],
            )
            .node("r", "Sigmoid", &["b"], &["y"], vec![])
            .output("y")
    };
    let (r, log) = rewrite_checked(&load(chain(&[0, 2, 1, 3], &[0, 2, 1, 3])));
    assert_eq!(r.nodes.len(), 1, "{log:?}");
    let (r, log) = rewrite_checked(&load(chain(&[0, 2, 3, 1], &[0, 2, 3, 1])));
    assert_eq!(r.nodes.len(), 2, "{log:?}");
    assert!(
        matches!(&r.nodes[0].op, Op::Transpose(t) if t.perm == [0, 3, 1, 2]),
        "{:?}",
        r.nodes[0].op
    );
    let viewed = ModelBuilder::new(13)
        .input("x", &[1, 3, 6, 6])
        .f32("w", &[4, 3, 3, 3], &rng.vec(108))
        .node("c", "Conv", &["x", "w"], &["c"], vec![])
        .node(
            "t",
            "Transpose",
            &["c"],
            &["t"],
            vec![attr_ints("perm", &[0, 2, 3, 1])],
        )
        .node("f", "Flatten", &["t"], &["f"], vec![])
        .node("r", "Relu", &["f"], &["y"], vec![])
        .output("y");
    let (r, log) = rewrite_checked(&load(viewed));
    assert!(
        matches!(
            &r.nodes[0].op,
            Op::Conv(Conv {
                activation: FusedActivation::Relu,
                ..
            })
        ),
        "{log:?}"
    );
    assert_eq!(r.nodes.len(), 3, "{log:?}");
}
