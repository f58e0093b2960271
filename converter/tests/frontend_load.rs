//! ONNX → IR: each supported op, constant folding, input shapes, errors.

mod frontend_common;

use frontend_common::*;
use medq_converter::error::ConvertError;
use medq_converter::ir::{
    AvgPool, Concat, Conv, FullyConnected, FusedActivation, Graph, MaxPool, Op, Pad, Softmax,
    Unary, Window,
};
use medq_converter::load::{convert_model, load_onnx, load_onnx_with, LoadOptions};

fn load(b: ModelBuilder) -> Graph {
    convert_model(&b.build(), &LoadOptions::default())
        .unwrap()
        .0
}

fn load_err(b: ModelBuilder) -> String {
    match convert_model(&b.build(), &LoadOptions::default()) {
        Ok((g, _)) => panic!("expected an error, got {} nodes", g.nodes.len()),
        Err(e) => e.to_string(),
    }
}

fn shape(g: &Graph, name: &str) -> Vec<usize> {
    g.tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .shape
        .clone()
}

/// A model `x → op → y` with one input.
fn single(
    opset: i64,
    in_dims: &[i64],
    op: &str,
    extra_inputs: &[&str],
    attrs: Vec<tract_onnx::pb::AttributeProto>,
) -> ModelBuilder {
    let mut inputs = vec!["x"];
    inputs.extend_from_slice(extra_inputs);
    ModelBuilder::new(opset)
        .input("x", in_dims)
        .node("/op", op, &inputs, &["y"], attrs)
        .output("y")
}

#[test]
fn conv2d_attributes_become_the_window() {
    let w: Vec<f32> = (0..4 * 2 * 3 * 3).map(|i| i as f32).collect();
    let g = load(
        single(
            17,
            &[1, 4, 10, 12],
            "Conv",
            &["w", "b"],
            vec![
                attr_ints("strides", &[2, 1]),
                attr_ints("pads", &[1, 2, 0, 1]),
                attr_ints("dilations", &[1, 2]),
                attr_i("group", 2),
                attr_ints("kernel_shape", &[3, 3]),
            ],
        )
        .f32("w", &[4, 2, 3, 3], &w)
        .f32("b", &[4], &[1.0, 2.0, 3.0, 4.0]),
    );
    assert_eq!(g.nodes.len(), 1);
    let Op::Conv(Conv {
        weights,
        bias,
        window,
        groups,
        activation,
    }) = &g.nodes[0].op
    else {
        panic!()
    };
    assert_eq!(weights.shape, vec![4, 2, 3, 3]);
    assert_eq!(weights.data, w);
    assert_eq!(bias, &vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(*groups, 2);
    assert_eq!(*activation, FusedActivation::None);
    assert_eq!(
        *window,
        Window {
            kernel: [3, 3],
            strides: [2, 1],
            dilations: [1, 2],
            pads: [1, 2, 0, 1]
        }
    );
    // H: (10 + 1 + 0 - 3) / 2 + 1 = 5; W: (12 + 2 + 1 - 5) / 1 + 1 = 11.
    assert_eq!(shape(&g, "y"), vec![1, 4, 5, 11]);
    assert_eq!(g.nodes[0].name, "/op");
    assert_eq!(g.nodes[0].onnx_ops, vec!["Conv".to_string()]);
}

#[test]
fn conv1d_uses_the_width_axis() {
    let g = load(
        single(
            13,
            &[1, 2, 20],
            "Conv",
            &["w"],
            vec![attr_ints("pads", &[2, 1]), attr_ints("strides", &[3])],
        )
        .f32("w", &[5, 2, 4], &[0.5; 40]),
    );
    let Op::Conv(Conv {
        weights,
        bias,
        window,
        ..
    }) = &g.nodes[0].op
    else {
        panic!()
    };
    assert_eq!(weights.shape, vec![5, 2, 1, 4]);
    assert_eq!(bias, &vec![0.0; 5]);
    assert_eq!(
        *window,
        Window {
            kernel: [1, 4],
            strides: [1, 3],
            dilations: [1, 1],
            pads: [0, 2, 0, 1]
        }
    );
    // (20 + 3 - 4) / 3 + 1 = 7
    assert_eq!(shape(&g, "y"), vec![1, 5, 7]);
}

#[test]
fn conv_auto_pad_same_resolves_to_explicit_pads() {
    for (mode, pads) in [("SAME_UPPER", [0, 1, 1, 1]), ("SAME_LOWER", [1, 1, 0, 1])] {
        let g = load(
            single(
                13,
                &[1, 1, 7, 7],
                "Conv",
                &["w"],
                vec![attr_s("auto_pad", mode), attr_ints("strides", &[2, 1])],
            )
            .f32("w", &[1, 1, 2, 3], &[1.0; 6]),
        );
        let Op::Conv(Conv { window, .. }) = &g.nodes[0].op else {
            panic!()
        };
        // H: out ceil(7/2) = 4, total pad (4-1)·2 + 2 - 7 = 1; W: out 7, total 2.
        assert_eq!(window.pads, pads, "{mode}");
        assert_eq!(shape(&g, "y"), vec![1, 1, 4, 7]);
    }
}

/// A 3-D Conv runs (over a clip's frames); a 4-D one is refused naming the
/// attribute and what medq takes.
#[test]
fn conv_4d_is_an_attribute_error() {
    let (g, _) = convert_model(
        &single(13, &[1, 1, 4, 4, 4], "Conv", &["w"], vec![])
            .f32("w", &[1, 1, 2, 2, 2], &[1.0; 8])
            .build(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(shape(&g, "y"), vec![1, 1, 3, 3, 3]);
    let e = load_err(single(13, &[1, 1, 2, 4, 4, 4], "Conv", &["w"], vec![]).f32(
        "w",
        &[1, 1, 2, 2, 2, 2],
        &[1.0; 16],
    ));
    assert!(
        e.contains("\"/op\"")
            && e.contains("Conv")
            && e.contains("kernel_shape")
            && e.contains("1-D and 2-D"),
        "{e}"
    );
}

#[test]
fn conv_with_computed_weights_is_rejected() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 1, 4, 4])
        .input("w", &[1, 1, 1, 1])
        .node("c", "Conv", &["x", "w"], &["y"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(
        e.contains("weights") && e.contains("must be a constant"),
        "{e}"
    );
}

#[test]
fn gemm_trans_b_alpha_beta() {
    // B as [N, K] = [[1, 2, 3], [4, 5, 6]], C = [10, 20].
    let g = load(
        single(
            13,
            &[1, 3],
            "Gemm",
            &["B", "C"],
            vec![
                attr_i("transB", 1),
                attr_f("alpha", 2.0),
                attr_f("beta", 0.5),
            ],
        )
        .f32("B", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .f32("C", &[2], &[10.0, 20.0]),
    );
    let Op::FullyConnected(FullyConnected { weights, bias, .. }) = &g.nodes[0].op else {
        panic!()
    };
    assert_eq!(weights.shape, vec![2, 3]);
    assert_eq!(weights.data, vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
    assert_eq!(bias, &vec![5.0, 10.0]);
    assert_eq!(shape(&g, "y"), vec![1, 2]);
}

#[test]
fn gemm_without_trans_b_transposes_the_weights() {
    // B as [K, N] = [[1, 2], [3, 4], [5, 6]]; C = [[7, 8]].
    let g = load(
        single(9, &[1, 3], "Gemm", &["B", "C"], vec![])
            .f32("B", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .f32("C", &[1, 2], &[7.0, 8.0]),
    );
    let Op::FullyConnected(FullyConnected { weights, bias, .. }) = &g.nodes[0].op else {
        panic!()
    };
    assert_eq!(weights.shape, vec![2, 3]);
    assert_eq!(weights.data, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    assert_eq!(bias, &vec![7.0, 8.0]);
}

/// A C that differs per row is added after the product: y = A·B + β·C.
#[test]
fn gemm_matrix_c_is_an_add_after_the_product() {
    // Unbatched rows (whole-input samples [N, 2, 3]): A = [[1, 0, 2], [0, 1, 1]].
    let b = single(13, &[2, 3], "Gemm", &["B", "C"], vec![attr_f("beta", 0.5)])
        .f32("B", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .f32("C", &[2, 2], &[10.0, 20.0, 30.0, 40.0]);
    let whole = LoadOptions {
        sample_shapes: vec![vec![1, 2, 3]],
        ..Default::default()
    };
    let (g, _) = convert_model(&b.build(), &whole).unwrap();
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(ops, ["FullyConnected", "Add"]);
    // A·B = [[11, 14], [8, 10]]; + [[5, 10], [15, 20]].
    assert_eq!(
        eval_output(&g, &[1.0, 0.0, 2.0, 0.0, 1.0, 1.0]),
        vec![16.0, 24.0, 23.0, 30.0]
    );
}

#[test]
fn gemm_errors() {
    let e = load_err(
        single(13, &[1, 3], "Gemm", &["B"], vec![attr_i("transA", 1)]).f32("B", &[3, 2], &[0.0; 6]),
    );
    assert!(e.contains("transA=1"), "{e}");
    // transA: the input's columns are the rows, moved first (a view here).
    let g = load(
        single(13, &[1, 3], "Gemm", &["B"], vec![attr_i("transA", 1)]).f32(
            "B",
            &[1, 2],
            &[1.0, 2.0],
        ),
    );
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(ops, ["Reshape", "FullyConnected"]);
    assert_eq!(shape(&g, "y"), vec![3, 2]);
    let b = ModelBuilder::new(13)
        .input("x", &[1, 1])
        .input("B", &[1, 2])
        .node("g", "Gemm", &["x", "B"], &["y"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(
        e.contains("\"g\"") && e.contains("must be a constant"),
        "{e}"
    );
}

#[test]
fn matmul_with_constant_weights_is_fully_connected() {
    let g = load(single(13, &[1, 5, 3], "MatMul", &["W"], vec![]).f32(
        "W",
        &[3, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    ));
    let Op::FullyConnected(FullyConnected { weights, bias, .. }) = &g.nodes[0].op else {
        panic!()
    };
    assert_eq!(weights.shape, vec![2, 3]);
    assert_eq!(weights.data, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    assert_eq!(bias, &vec![0.0, 0.0]);
    assert_eq!(shape(&g, "y"), vec![1, 5, 2]);
}

#[test]
fn matmul_of_two_activations_is_mat_mul() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3, 3])
        .node("m", "Relu", &["x"], &["r"], vec![])
        .node("mm", "MatMul", &["x", "r"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::MatMul(_))));
    assert_eq!(shape(&g, "y"), vec![1, 3, 3]);
    // Shapes that do not multiply are refused by the node's name.
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .node("m", "Relu", &["x"], &["r"], vec![])
        .node("mm", "MatMul", &["x", "r"], &["y"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(e.contains("\"mm\"") && e.contains("do not multiply"), "{e}");
}

#[test]
fn add_mul_sub_div_with_constants() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 2, 2, 2])
        .f32("c", &[2, 1, 1], &[2.0, 4.0])
        .node("sub", "Sub", &["x", "c"], &["s"], vec![])
        .node("div", "Div", &["s", "c"], &["d"], vec![])
        .node("add", "Add", &["c", "d"], &["a"], vec![])
        .node("mul", "Mul", &["a", "a"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(g.nodes.len(), 4);
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Add", "Mul", "Add", "Mul"]);
    let const_of = |i: usize| g.tensors[g.nodes[i].inputs[1]].value.clone().unwrap().data;
    assert_eq!(const_of(0), vec![-2.0, -4.0]);
    assert_eq!(const_of(1), vec![0.5, 0.25]);
    // Constant-first Add is normalized to activation first.
    assert_eq!(g.tensors[g.nodes[2].inputs[0]].name, "d");
    assert_eq!(const_of(2), vec![2.0, 4.0]);
    assert_eq!(
        g.nodes[3].inputs,
        vec![g.nodes[2].output, g.nodes[2].output]
    );
    assert_eq!(g.nodes[0].onnx_ops, vec!["Sub".to_string()]);
}

#[test]
fn sub_of_two_activations_is_a_binary_sub() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4])
        .input("z", &[1, 4])
        .node("s", "Sub", &["x", "z"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].op.kind(), "Sub");
}

#[test]
fn unary_ops() {
    let cases: Vec<(i64, &str, Vec<tract_onnx::pb::AttributeProto>, Unary)> = vec![
        (13, "Relu", vec![], Unary::Relu),
        (
            13,
            "LeakyRelu",
            vec![attr_f("alpha", 0.1)],
            Unary::LeakyRelu { alpha: 0.1 },
        ),
        (13, "LeakyRelu", vec![], Unary::LeakyRelu { alpha: 0.01 }),
        (13, "Sigmoid", vec![], Unary::Sigmoid),
        (13, "Tanh", vec![], Unary::Tanh),
        (
            13,
            "HardSigmoid",
            vec![],
            Unary::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
        ),
        (
            13,
            "HardSigmoid",
            vec![attr_f("alpha", 0.3), attr_f("beta", 0.4)],
            Unary::HardSigmoid {
                alpha: 0.3,
                beta: 0.4,
            },
        ),
        (14, "HardSwish", vec![], Unary::HardSwish),
        (
            6,
            "Clip",
            vec![attr_f("min", -1.0), attr_f("max", 1.0)],
            Unary::Clip {
                min: -1.0,
                max: 1.0,
            },
        ),
        (
            6,
            "Clip",
            vec![attr_f("max", 6.0)],
            Unary::Clip {
                min: f32::NEG_INFINITY,
                max: 6.0,
            },
        ),
        (
            6,
            "Clip",
            vec![attr_f("min", 0.0), attr_f("max", f32::MAX)],
            Unary::Relu,
        ),
    ];
    for (opset, op, attrs, want) in cases {
        let g = load(single(opset, &[1, 8], op, &[], attrs));
        assert_eq!(g.nodes.len(), 1);
        let Op::Unary(u) = g.nodes[0].op else {
            panic!("{op}")
        };
        assert_eq!(u, want, "{op}");
    }
}

#[test]
fn clip_bounds_from_inputs() {
    let g = load(
        single(13, &[1, 8], "Clip", &["lo", "hi"], vec![])
            .f32("lo", &[], &[0.0])
            .f32("hi", &[], &[6.0]),
    );
    assert!(
        matches!(g.nodes[0].op, Op::Unary(Unary::Clip { min, max }) if min == 0.0 && max == 6.0)
    );
    // Missing min (empty name) is -inf.
    let g = load(single(13, &[1, 8], "Clip", &["", "hi"], vec![]).f32("hi", &[], &[6.0]));
    assert!(
        matches!(g.nodes[0].op, Op::Unary(Unary::Clip { min, max }) if min == f32::NEG_INFINITY && max == 6.0)
    );
}

#[test]
fn pools_and_ceil_mode() {
    let g = load(single(
        13,
        &[1, 3, 7, 7],
        "MaxPool",
        &[],
        vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[2, 2]),
            attr_i("ceil_mode", 1),
        ],
    ));
    let Op::MaxPool(MaxPool { window }) = g.nodes[0].op else {
        panic!()
    };
    // ceil((7 - 2) / 2) + 1 = 4 windows; the last reaches one past the end.
    assert_eq!(window.pads, [0, 0, 1, 1]);
    assert_eq!(shape(&g, "y"), vec![1, 3, 4, 4]);

    let g = load(single(
        13,
        &[1, 3, 7],
        "AveragePool",
        &[],
        vec![
            attr_ints("kernel_shape", &[3]),
            attr_ints("strides", &[2]),
            attr_ints("pads", &[1, 1]),
        ],
    ));
    let Op::AvgPool(AvgPool {
        window,
        count_include_pad,
    }) = g.nodes[0].op
    else {
        panic!()
    };
    assert_eq!(
        window,
        Window {
            kernel: [1, 3],
            strides: [1, 2],
            dilations: [1, 1],
            pads: [0, 1, 0, 1]
        }
    );
    assert!(!count_include_pad);
    assert_eq!(shape(&g, "y"), vec![1, 3, 4]);

    // Counting padding with an overhanging last window: the padding is
    // none here, so the average counts what is inside (see `ops/pool.rs`).
    let g = load(single(
        13,
        &[1, 3, 7, 7],
        "AveragePool",
        &[],
        vec![
            attr_ints("kernel_shape", &[2, 2]),
            attr_ints("strides", &[2, 2]),
            attr_i("ceil_mode", 1),
            attr_i("count_include_pad", 1),
        ],
    ));
    let Op::AvgPool(AvgPool {
        window,
        count_include_pad,
    }) = g.nodes[0].op
    else {
        panic!()
    };
    assert_eq!((window.pads, count_include_pad), ([0, 0, 1, 1], false));
}

#[test]
fn global_pools_cover_the_input() {
    let g = load(single(13, &[1, 3, 5, 6], "GlobalAveragePool", &[], vec![]));
    let Op::AvgPool(AvgPool { window, .. }) = g.nodes[0].op else {
        panic!()
    };
    assert_eq!(window.kernel, [5, 6]);
    assert_eq!(shape(&g, "y"), vec![1, 3, 1, 1]);
    let g = load(single(13, &[1, 3, 9], "GlobalMaxPool", &[], vec![]));
    let Op::MaxPool(MaxPool { window }) = g.nodes[0].op else {
        panic!()
    };
    assert_eq!(window.kernel, [1, 9]);
    assert_eq!(shape(&g, "y"), vec![1, 3, 1]);
}

#[test]
fn softmax_axis_by_opset() {
    let g = load(single(13, &[1, 3, 4], "Softmax", &[], vec![]));
    assert!(matches!(g.nodes[0].op, Op::Softmax(Softmax { axis: 2 })));
    let g = load(single(
        13,
        &[1, 3, 4],
        "Softmax",
        &[],
        vec![attr_i("axis", 1)],
    ));
    assert!(matches!(g.nodes[0].op, Op::Softmax(Softmax { axis: 1 })));
    // Opset 11 default axis 1 over [1, 10] is the last axis.
    let g = load(single(11, &[1, 10], "Softmax", &[], vec![]));
    assert!(matches!(g.nodes[0].op, Op::Softmax(Softmax { axis: 1 })));
    // ... and over [1, 10, 1] it still normalizes only the 10.
    let g = load(single(11, &[1, 10, 1], "Softmax", &[], vec![]));
    assert!(matches!(g.nodes[0].op, Op::Softmax(Softmax { axis: 1 })));
    let e = load_err(single(11, &[1, 3, 4], "Softmax", &[], vec![]));
    assert!(e.contains("axis") && e.contains("opset 11"), "{e}");
}

#[test]
fn concat_pad_and_views() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 2, 3, 3])
        .f32("k", &[1, 1, 3, 3], &[0.0; 9])
        .i64("pads", &[8], &[0, 0, 1, 0, 0, 0, 0, 2])
        .f32("pv", &[], &[-1.5])
        .i64("shape", &[3], &[0, 3, -1])
        .i64("ax", &[1], &[0])
        .node(
            "cat",
            "Concat",
            &["x", "k"],
            &["c"],
            vec![attr_i("axis", -3)],
        )
        .node("pad", "Pad", &["c", "pads", "pv"], &["p"], vec![])
        .node("flat", "Flatten", &["p"], &["f"], vec![])
        .node("resh", "Reshape", &["f", "shape"], &["r"], vec![])
        .node("sq", "Squeeze", &["r", "ax"], &["s"], vec![])
        .node("unsq", "Unsqueeze", &["s", "ax"], &["u"], vec![])
        .node("id", "Identity", &["u"], &["i"], vec![])
        .node("drop", "Dropout", &["i"], &["y"], vec![])
        .output("y");
    let g = load(b);
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(
        kinds,
        ["Concat", "Pad", "Reshape", "Reshape", "Reshape", "Reshape", "Reshape", "Reshape"]
    );
    assert!(matches!(g.nodes[0].op, Op::Concat(Concat { axis: 1 })));
    assert_eq!(shape(&g, "c"), vec![1, 3, 3, 3]);
    let Op::Pad(Pad { pads, value }) = &g.nodes[1].op else {
        panic!()
    };
    assert_eq!((pads.clone(), *value), (vec![0, 0, 1, 0, 0, 0, 0, 2], -1.5));
    assert_eq!(shape(&g, "p"), vec![1, 3, 4, 5]);
    assert_eq!(shape(&g, "f"), vec![1, 60]);
    assert_eq!(shape(&g, "r"), vec![1, 3, 20]);
    assert_eq!(shape(&g, "s"), vec![3, 20]);
    assert_eq!(shape(&g, "u"), vec![1, 3, 20]);
    assert_eq!(shape(&g, "y"), vec![1, 3, 20]);
    assert_eq!(
        g.tensors[g.nodes[0].inputs[1]]
            .value
            .as_ref()
            .map(|v| v.shape.clone()),
        Some(vec![1, 1, 3, 3])
    );
}

#[test]
fn pad_legacy_attributes_and_reflect() {
    let g = load(single(
        2,
        &[1, 2, 3],
        "Pad",
        &[],
        vec![attr_ints("pads", &[0, 0, 1, 0, 0, 2]), attr_f("value", 3.0)],
    ));
    let Op::Pad(Pad { pads, value }) = &g.nodes[0].op else {
        panic!()
    };
    assert_eq!((pads.clone(), *value), (vec![0, 0, 1, 0, 0, 2], 3.0));
    assert_eq!(shape(&g, "y"), vec![1, 2, 6]);
    // Reflect pads are a Gather of constant indices; "wrap" before opset 19
    // (where it was not a mode) is refused.
    let g = load(single(
        2,
        &[1, 2, 3],
        "Pad",
        &[],
        vec![
            attr_ints("pads", &[0, 0, 1, 0, 0, 2]),
            attr_s("mode", "reflect"),
        ],
    ));
    assert!(matches!(g.nodes[..], [ref n] if matches!(n.op, Op::Select(_))));
    assert_eq!(shape(&g, "y"), vec![1, 2, 6]);
    let e = load_err(single(
        2,
        &[1, 2, 3],
        "Pad",
        &[],
        vec![
            attr_ints("pads", &[0, 0, 1, 0, 0, 2]),
            attr_s("mode", "wrap"),
        ],
    ));
    assert!(
        e.contains("\"/op\"") && e.contains("mode") && e.contains("\"wrap\" is opset 19's"),
        "{e}"
    );
}

#[test]
fn transpose_of_activations_is_a_view_or_a_transpose() {
    let g = load(single(
        13,
        &[1, 5, 1],
        "Transpose",
        &[],
        vec![attr_ints("perm", &[0, 2, 1])],
    ));
    assert!(matches!(g.nodes[0].op, Op::Reshape));
    assert_eq!(shape(&g, "y"), vec![1, 1, 5]);
    // Data that moves is a Transpose op.
    let g = load(single(
        13,
        &[1, 5, 2],
        "Transpose",
        &[],
        vec![attr_ints("perm", &[0, 2, 1])],
    ));
    assert!(matches!(g.nodes[0].op, Op::Transpose(_)));
    assert_eq!(shape(&g, "y"), vec![1, 2, 5]);
}

#[test]
fn batch_norm_standalone_is_a_per_channel_affine() {
    let bn = |dims: &[i64]| {
        single(
            15,
            dims,
            "BatchNormalization",
            &["g", "b", "m", "v"],
            vec![attr_f("epsilon", 0.0)],
        )
        .f32("g", &[2], &[2.0, 3.0])
        .f32("b", &[2], &[1.0, -1.0])
        .f32("m", &[2], &[0.5, 2.0])
        .f32("v", &[2], &[4.0, 9.0])
    };
    // scale = g / sqrt(v) = [1, 1]; shift = b - m·scale = [0.5, -3].
    let g = load(bn(&[1, 2, 3, 3]));
    let Op::Conv(Conv {
        weights,
        bias,
        groups,
        window,
        ..
    }) = &g.nodes[0].op
    else {
        panic!()
    };
    assert_eq!(weights.shape, vec![2, 1, 1, 1]);
    assert_eq!(weights.data, vec![1.0, 1.0]);
    assert_eq!(bias, &vec![0.5, -3.0]);
    assert_eq!((*groups, window.kernel), (2, [1, 1]));
    assert_eq!(g.nodes[0].onnx_ops, vec!["BatchNormalization".to_string()]);
    let g = load(bn(&[1, 2]));
    let Op::FullyConnected(FullyConnected { weights, bias, .. }) = &g.nodes[0].op else {
        panic!()
    };
    assert_eq!(weights.data, vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(bias, &vec![0.5, -3.0]);
}

/// PyTorch's `x.view(x.size(0), -1)` export.
#[test]
fn shape_gather_concat_reshape_chain_folds() {
    let b = ModelBuilder::new(13)
        .input_dims(
            "x",
            &[
                Dim::Param("batch"),
                Dim::Fixed(4),
                Dim::Fixed(3),
                Dim::Fixed(2),
            ],
        )
        .node("/Shape", "Shape", &["x"], &["s"], vec![])
        .node(
            "/Constant",
            "Constant",
            &[],
            &["i0"],
            vec![attr_t("value", tensor_i64("", &[], &[0]))],
        )
        .node(
            "/Gather",
            "Gather",
            &["s", "i0"],
            &["n"],
            vec![attr_i("axis", 0)],
        )
        .node(
            "/Constant_1",
            "Constant",
            &[],
            &["ax"],
            vec![attr_ints("value_ints", &[0])],
        )
        .node("/Unsqueeze", "Unsqueeze", &["n", "ax"], &["n1"], vec![])
        .node(
            "/Constant_2",
            "Constant",
            &[],
            &["m1"],
            vec![attr_t("value", tensor_i64("", &[1], &[-1]))],
        )
        .node(
            "/Concat",
            "Concat",
            &["n1", "m1"],
            &["target"],
            vec![attr_i("axis", 0)],
        )
        .node("/Reshape", "Reshape", &["x", "target"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(g.nodes.len(), 1);
    assert!(matches!(g.nodes[0].op, Op::Reshape));
    assert_eq!(g.nodes[0].name, "/Reshape");
    assert_eq!(shape(&g, "x"), vec![1, 4, 3, 2]);
    assert_eq!(shape(&g, "y"), vec![1, 24]);
    // Only the input and output tensors exist: no shape tensors leak into the IR.
    assert_eq!(g.tensors.len(), 2);
}

#[test]
fn constant_folding_covers_slices_casts_and_arithmetic() {
    // target = Concat(Slice(Shape(x), 0, 2), Cast(Div(Mul(3, 2), 2) as float → int)) = [1, 6, 3]
    let b = ModelBuilder::new(13)
        .input("x", &[1, 6, 3])
        .i64("st", &[1], &[0])
        .i64("en", &[1], &[2])
        .f32("three", &[1], &[3.0])
        .f32("two", &[], &[2.0])
        .node("", "Shape", &["x"], &["s"], vec![])
        .node("", "Slice", &["s", "st", "en"], &["s2"], vec![])
        .node("", "Mul", &["three", "two"], &["six"], vec![])
        .node("", "Div", &["six", "two"], &["d"], vec![])
        .node("", "Cast", &["d"], &["di"], vec![attr_i("to", 7)])
        .node("", "Concat", &["s2", "di"], &["t"], vec![attr_i("axis", 0)])
        .node("", "Reshape", &["x", "t"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(shape(&g, "y"), vec![1, 6, 3]);
    // Unnamed nodes get `<op_type>_<index>`.
    assert_eq!(g.nodes[0].name, "Reshape_6");
}

#[test]
fn constant_nodes_feed_operands() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .node(
            "k",
            "Constant",
            &[],
            &["c"],
            vec![attr_floats("value_floats", &[1.0, 2.0, 3.0])],
        )
        .node(
            "kk",
            "Constant",
            &[],
            &["s"],
            vec![attr_f("value_float", 0.5)],
        )
        .node("add", "Add", &["x", "c"], &["a"], vec![])
        .node("mul", "Mul", &["a", "s"], &["y"], vec![])
        .output("y");
    let g = load(b);
    assert_eq!(
        g.tensors[g.nodes[0].inputs[1]].value.as_ref().unwrap().data,
        vec![1.0, 2.0, 3.0]
    );
    assert_eq!(
        g.tensors[g.nodes[1].inputs[1]]
            .value
            .as_ref()
            .unwrap()
            .shape,
        Vec::<usize>::new()
    );
}

#[test]
fn initializers_listed_as_inputs_are_constants() {
    let mut b = single(13, &[1, 3], "Add", &["c"], vec![]).f32("c", &[3], &[1.0, 2.0, 3.0]);
    b = b.input("c", &[3]);
    let g = load(b);
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.tensors[g.inputs[0]].name, "x");
}

#[test]
fn float_data_and_f16_initializers() {
    let mut b = single(13, &[1, 3], "Add", &["c"], vec![]);
    b = b.init(tract_onnx::pb::TensorProto {
        name: "c".into(),
        dims: vec![3],
        data_type: 1,
        float_data: vec![1.0, -2.0, 0.25],
        ..Default::default()
    });
    let g = load(b);
    assert_eq!(
        g.tensors[g.nodes[0].inputs[1]].value.as_ref().unwrap().data,
        vec![1.0, -2.0, 0.25]
    );
    let mut b = single(13, &[1, 2], "Add", &["c"], vec![]);
    b = b.init(tract_onnx::pb::TensorProto {
        name: "c".into(),
        dims: vec![2],
        data_type: 10,
        raw_data: vec![0x00, 0x3c, 0x00, 0xc0],
        ..Default::default()
    });
    let g = load(b);
    assert_eq!(
        g.tensors[g.nodes[0].inputs[1]].value.as_ref().unwrap().data,
        vec![1.0, -2.0]
    );
}

#[test]
fn external_data_is_rejected_clearly() {
    let b = single(13, &[1, 3], "Add", &["c"], vec![]).init(tract_onnx::pb::TensorProto {
        name: "c".into(),
        dims: vec![3],
        data_type: 1,
        data_location: Some(1),
        ..Default::default()
    });
    let e = load_err(b);
    assert!(e.contains("\"c\"") && e.contains("external"), "{e}");
}

#[test]
fn unsupported_op_names_node_op_opset_and_the_supported_list() {
    let b = ModelBuilder::new(17)
        .input("x", &[1, 4, 8])
        .node("/layer3/Foo", "Hardmax", &["x"], &["y"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(
        e.starts_with(
            "node \"/layer3/Foo\" (op Hardmax, opset 17) is not supported by medq. Supported ops: "
        ),
        "{e}"
    );
    assert!(
        e.contains("Supported ops: Abs, Acos, Acosh, Add, And, ArgMax, ArgMin, Asin")
            && e.contains("Softmax"),
        "{e}"
    );
    let list = e.split("Supported ops: ").nth(1).unwrap();
    assert!(
        !list.contains("Hardmax") && !list.contains("Range"),
        "only ops medq runs are listed: {e}"
    );
    let err = convert_model(
        &ModelBuilder::new(17)
            .input("x", &[1, 4])
            .node("n", "Foo", &["x"], &["y"], vec![])
            .output("y")
            .build(),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ConvertError::UnsupportedOp { ref op_type, opset: 17, .. } if op_type == "Foo")
    );
    // An op of another domain names it.
    let mut m = ModelBuilder::new(17)
        .input("x", &[1, 4])
        .node("q", "Conv", &["x"], &["y"], vec![])
        .output("y")
        .build();
    m.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    m.opset_import.push(tract_onnx::pb::OperatorSetIdProto {
        domain: "com.microsoft".into(),
        version: 1,
    });
    let e = convert_model(&m, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    // With the opset of its own domain, not the default domain's 17.
    assert!(
        e.starts_with(
            "node \"q\" (op Conv, domain com.microsoft, opset 1) is not supported by medq. \
             Supported ops: Abs, Acos, "
        ),
        "{e}"
    );
}

#[test]
fn const_only_ops_on_activations_are_explained() {
    // ReduceProd has no lowering: on an activation it is refused (Log,
    // Floor and Mod, once such ops, are tables now).
    let e = load_err(single(13, &[1, 4], "ReduceProd", &["x"], vec![]));
    assert!(
        e.contains("only on constants") && e.contains("\"x\""),
        "{e}"
    );
}

#[test]
fn input_shapes() {
    // Dynamic batch → 1.
    let b = ModelBuilder::new(13)
        .input_dims("x", &[Dim::Param("N"), Dim::Fixed(3)])
        .node("r", "Relu", &["x"], &["y"], vec![])
        .output("y");
    assert_eq!(shape(&load(b), "x"), vec![1, 3]);
    let b = ModelBuilder::new(13)
        .input_dims("x", &[Dim::Fixed(-1), Dim::Fixed(3)])
        .node("r", "Relu", &["x"], &["y"], vec![])
        .output("y");
    assert_eq!(shape(&load(b), "x"), vec![1, 3]);
    // A dynamic length is an error that names it...
    let dyn_len = || {
        ModelBuilder::new(13)
            .input_dims("x", &[Dim::Param("N"), Dim::Fixed(1), Dim::Param("len")])
            .node("r", "Relu", &["x"], &["y"], vec![])
            .output("y")
    };
    let e = load_err(dyn_len());
    assert!(
        e.contains("\"x\"") && e.contains("dimension 2") && e.contains("\"len\""),
        "{e}"
    );
    // ... and shows the option that fixes it, for this input ...
    assert!(e.contains("--input-shape x=1,1,<len>"), "{e}");
    // ... which does.
    let opts = LoadOptions {
        input_shapes: vec![("x".into(), vec![1, 1, 140])],
        ..Default::default()
    };
    let (g, _) = convert_model(&dyn_len().build(), &opts).unwrap();
    assert_eq!(shape(&g, "y"), vec![1, 1, 140]);
    // An override must keep the batch at 1, the rank and the fixed dims,
    // and name a model input.
    for (given, expect) in [
        (vec![4, 1, 140], "the batch (dimension 0) is 4"),
        (vec![1, 140], "declares 3 dimensions"),
        (vec![1, 2, 140], "dimension 1 is fixed at 1"),
    ] {
        let opts = LoadOptions {
            input_shapes: vec![("x".into(), given)],
            ..Default::default()
        };
        let e = convert_model(&dyn_len().build(), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect), "{e}");
    }
    let opts = LoadOptions {
        input_shapes: vec![("z".into(), vec![1, 1, 140])],
        ..Default::default()
    };
    let e = convert_model(&dyn_len().build(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"z\", which is not a model input") && e.contains("\"x\""),
        "{e}"
    );
    // Batch 4 is rejected.
    let e = load_err(single(13, &[4, 3], "Relu", &[], vec![]));
    assert!(e.contains("batch size is 4"), "{e}");
}

/// Inputs `a` `[batch, 2, time]` and `b` `[batch, 3, time]`, concatenated.
fn two_inputs_sharing_time() -> ModelBuilder {
    ModelBuilder::new(13)
        .input_dims(
            "a",
            &[Dim::Param("batch"), Dim::Fixed(2), Dim::Param("time")],
        )
        .input_dims(
            "b",
            &[Dim::Param("batch"), Dim::Fixed(3), Dim::Param("time")],
        )
        .node(
            "cat",
            "Concat",
            &["a", "b"],
            &["y"],
            vec![attr_i("axis", 1)],
        )
        .output("y")
}

#[test]
fn a_symbol_fixed_for_one_input_fixes_it_for_all() {
    // Two inputs share "time"; fixing it on one fixes the other, and the
    // shared batch symbol is 1 in both.
    let b = two_inputs_sharing_time;
    let opts = LoadOptions {
        input_shapes: vec![("b".into(), vec![1, 3, 50])],
        ..Default::default()
    };
    let (g, _) = convert_model(&b().build(), &opts).unwrap();
    assert_eq!(shape(&g, "a"), vec![1, 2, 50]);
    assert_eq!(shape(&g, "y"), vec![1, 5, 50]);
    // Without it, the error shows the option for the first input it stops at.
    let e = load_err(b());
    assert!(e.contains("--input-shape a=1,2,<time>"), "{e}");
    // Two overrides that give "time" two sizes are refused.
    let opts = LoadOptions {
        input_shapes: vec![("a".into(), vec![1, 2, 50]), ("b".into(), vec![1, 3, 60])],
        ..Default::default()
    };
    let e = convert_model(&b().build(), &opts).unwrap_err().to_string();
    assert!(e.contains("\"time\" is 60 here but 50"), "{e}");
}

#[test]
fn samples_fix_the_dims_no_option_fixes() {
    let b = || {
        ModelBuilder::new(13)
            .input_dims(
                "a",
                &[Dim::Param("batch"), Dim::Fixed(2), Dim::Param("time")],
            )
            .input_dims("b", &[Dim::Param("batch"), Dim::Fixed(3), Dim::Fixed(0)])
            .node("ra", "Relu", &["a"], &["ya"], vec![])
            .node("rb", "Relu", &["b"], &["yb"], vec![])
            .output("ya")
            .output("yb")
    };
    // Each input's dynamic dims take their sizes in its samples ([N, …]);
    // an unnamed dim (here `0`) as well.
    let opts = LoadOptions {
        sample_shapes: vec![vec![16, 2, 50], vec![16, 3, 7]],
        ..Default::default()
    };
    let (g, _) = convert_model(&b().build(), &opts).unwrap();
    assert_eq!(shape(&g, "a"), vec![1, 2, 50]);
    assert_eq!(shape(&g, "b"), vec![1, 3, 7]);
    let noted: Vec<&Vec<String>> = g.dims_from_samples.values().collect();
    assert_eq!(
        noted,
        [
            &vec!["\"time\" = 50".to_string()],
            &vec!["? = 7".to_string()]
        ]
    );
    // --input-shape wins over the samples, and nothing is noted for it.
    let opts = LoadOptions {
        input_shapes: vec![("a".into(), vec![1, 2, 40])],
        sample_shapes: vec![vec![16, 2, 50], vec![16, 3, 7]],
    };
    let (g, _) = convert_model(&b().build(), &opts).unwrap();
    assert_eq!(shape(&g, "a"), vec![1, 2, 40]);
    assert_eq!(g.dims_from_samples.len(), 1);
    // Samples for the first input only leave the second one's dim to fix.
    let opts = LoadOptions {
        sample_shapes: vec![vec![16, 2, 50]],
        ..Default::default()
    };
    let e = convert_model(&b().build(), &opts).unwrap_err().to_string();
    assert!(e.contains("--input-shape b=1,3,<d2>"), "{e}");
}

#[test]
fn a_symbol_the_samples_fix_holds_for_the_later_inputs() {
    let b = two_inputs_sharing_time();
    // The first input's samples fix "time" for both; the second one's
    // samples disagree and loading them will say so.
    let opts = LoadOptions {
        sample_shapes: vec![vec![4, 2, 50], vec![4, 3, 60]],
        ..Default::default()
    };
    let (g, _) = convert_model(&b.build(), &opts).unwrap();
    assert_eq!(shape(&g, "b"), vec![1, 3, 50]);
    assert_eq!(shape(&g, "y"), vec![1, 5, 50]);
}

#[test]
fn topological_order_is_checked() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 3])
        .node("second", "Relu", &["a"], &["y"], vec![])
        .node("first", "Relu", &["x"], &["a"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(e.contains("topological") && e.contains("\"second\""), "{e}");
}

#[test]
fn unavailable_secondary_outputs() {
    let b = ModelBuilder::new(13)
        .input("x", &[1, 1, 4, 4])
        .node(
            "mp",
            "MaxPool",
            &["x"],
            &["y", "idx"],
            vec![attr_ints("kernel_shape", &[2, 2])],
        )
        .node("use", "Relu", &["idx"], &["z"], vec![])
        .output("z");
    let e = load_err(b);
    assert!(
        e.contains("\"use\"") && e.contains("output 1 of node \"mp\""),
        "{e}"
    );
}

#[test]
fn files_missing_or_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.onnx");
    let e = load_onnx(&missing).unwrap_err();
    assert!(matches!(e, ConvertError::Io { .. }));
    assert!(e.to_string().contains("nope.onnx"), "{e}");

    let text = dir.path().join("model.onnx");
    std::fs::write(&text, "this is not a protobuf, just some text\n").unwrap();
    let e = load_onnx(&text).unwrap_err();
    assert!(matches!(e, ConvertError::NotOnnx { .. }), "{e:?}");
    assert!(e.to_string().contains("is not an ONNX model"), "{e}");

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        load_onnx(&empty).unwrap_err(),
        ConvertError::NotOnnx { .. }
    ));
}

#[test]
fn loaded_model_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = single(12, &[1, 3], "Relu", &[], vec![]).write(dir.path(), "m.onnx");
    let m = load_onnx_with(&path, &LoadOptions::default()).unwrap();
    assert_eq!(m.opset, 12);
    assert_eq!(m.producer, "medq-tests 1");
    assert_eq!(m.source_bytes, std::fs::read(&path).unwrap());
    assert_eq!(m.graph.outputs.len(), 1);
}

/// Shapes whose element count overflows are refused with the node's name,
/// never multiplied out (the fuzzer's first `onnx_load` finding).
#[test]
fn oversized_shapes_are_refused_naming_the_node() {
    let huge = 1i64 << 40;
    for target in [[huge, huge, -1], [huge, huge, 0], [1, huge, huge]] {
        let b = ModelBuilder::new(13)
            .input("x", &[1, 4, 3])
            .i64("t", &[3], &target)
            .node("big", "Reshape", &["x", "t"], &["y"], vec![])
            .output("y");
        let e = load_err(b);
        assert!(e.contains("\"big\"") && e.contains("Reshape"), "{e}");
        assert!(e.contains("more elements than medq accepts"), "{e}");
    }
    // A shape that fits u64 but not the tensor bound: an activation too large.
    let b = ModelBuilder::new(13)
        .input("x", &[1, 4, 3])
        .i64("t", &[4], &[1, 1 << 20, 1 << 20, 12])
        .node("wide", "Expand", &["x", "t"], &["y"], vec![])
        .output("y");
    let e = load_err(b);
    assert!(e.contains("\"wide\""), "{e}");
}

/// Every input the fuzzer found is an error, not a panic.
#[test]
fn fuzzer_findings_are_errors() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/onnx_load");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for path in files {
        let e = load_onnx(&path).expect_err(&path.display().to_string());
        // A clear error, and a short one: one finding's Pad held 25 million
        // values, all printed (100 MB) before node errors were cut.
        let text = e.to_string();
        assert!(
            !text.is_empty() && text.len() < 2000,
            "{}: {} characters",
            path.display(),
            text.len()
        );
    }
}

#[test]
fn weights_in_an_external_data_file_load_as_if_embedded() {
    // PyTorch's default (dynamo) export writes `m.onnx` and `m.onnx.data`.
    use prost::Message;
    use tract_onnx::pb::tensor_proto::DataLocation;
    use tract_onnx::pb::{ModelProto, StringStringEntryProto};
    let net = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/testnets/cnn1d.onnx");
    let embedded = load_onnx(std::path::Path::new(net)).unwrap();
    let mut proto = ModelProto::decode(&std::fs::read(net).unwrap()[..]).unwrap();
    let mut data = Vec::new();
    for t in &mut proto.graph.as_mut().unwrap().initializer {
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
        };
        t.external_data = vec![
            entry("location", "m.onnx.data".into()),
            entry("offset", data.len().to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        t.data_location = Some(DataLocation::External as i32);
        data.append(&mut t.raw_data);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), proto.encode_to_vec()).unwrap();
    std::fs::write(dir.path().join("m.onnx.data"), &data).unwrap();
    let external = load_onnx(&dir.path().join("m.onnx")).unwrap();
    assert_eq!(
        format!("{:?}", external.graph),
        format!("{:?}", embedded.graph)
    );
    // The data file is part of the source: its hash and size.
    assert!(external.source_bytes.ends_with(&data));
    std::fs::remove_file(dir.path().join("m.onnx.data")).unwrap();
    let e = load_onnx(&dir.path().join("m.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("m.onnx.data"), "{e}");
}

/// An input whose dimension 0 is data (whole-tensor samples, `[N, 3, 2, 20]`)
/// keeps it through elementwise ops, and through Conv and the pools, which
/// run it sample by sample (a camera-PPG model's frames); an op whose kernel
/// takes one image `[1, C, …]` refuses it at its node, naming the node and
/// the shape.
#[test]
fn image_ops_refuse_a_dimension_0_of_data_at_the_node() {
    let whole = LoadOptions {
        sample_shapes: vec![vec![1, 3, 2, 20]],
        ..Default::default()
    };
    let relu = single(13, &[3, 2, 20], "Relu", &[], vec![]);
    let (g, _) = convert_model(&relu.build(), &whole).unwrap();
    assert_eq!(shape(&g, "y"), vec![3, 2, 20]);
    let pool = single(
        13,
        &[3, 2, 20],
        "MaxPool",
        &[],
        vec![attr_ints("kernel_shape", &[2])],
    );
    let (g, _) = convert_model(&pool.build(), &whole).unwrap();
    assert_eq!(shape(&g, "y"), vec![3, 2, 19]);
    let conv = single(13, &[3, 2, 20], "Conv", &["w"], vec![]).f32("w", &[4, 2, 3], &[0.5; 24]);
    let (g, _) = convert_model(&conv.build(), &whole).unwrap();
    assert_eq!(shape(&g, "y"), vec![3, 4, 18]);
    let transposed =
        single(13, &[3, 2, 20], "ConvTranspose", &["w"], vec![]).f32("w", &[2, 4, 3], &[0.5; 24]);
    let e = convert_model(&transposed.build(), &whole)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"/op\"") && e.contains("[3, 2, 20]") && e.contains("takes one sample"),
        "{e}"
    );
}

#[test]
fn a_zero_size_split_part_computes_nothing_and_concat_drops_it() {
    // A rotary embedding that turns the whole head: its pass-through half
    // is a Split part of size 0, concatenated back after the rotation.
    let b = ModelBuilder::new(18)
        .input("x", &[1, 2, 3])
        .i64("parts", &[2], &[3, 0])
        .node(
            "/split",
            "Split",
            &["x", "parts"],
            &["rot", "pass"],
            vec![attr_i("axis", 2)],
        )
        .node("/neg", "Neg", &["rot"], &["r"], vec![])
        .node(
            "/cat",
            "Concat",
            &["r", "pass"],
            &["y"],
            vec![attr_i("axis", 2)],
        )
        .output("y");
    let g = load(b);
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert!(!ops.contains(&"Concat"), "{ops:?}");
    assert_eq!(shape(&g, "y"), vec![1, 2, 3]);
    let x = [1.0, -2.0, 3.0, 4.0, 5.0, -6.0];
    assert_eq!(
        eval_output(&g, &x),
        x.iter().map(|v| -v).collect::<Vec<_>>()
    );
}

#[test]
fn a_split_whose_first_part_is_unused_gives_each_output_its_own_part() {
    // `_, tail = x.split([1, 3], dim=-1)`: output 0 is named but unread,
    // and is still the node's primary output.
    let b = ModelBuilder::new(18)
        .input("x", &[1, 2, 4])
        .i64("parts", &[2], &[1, 3])
        .node(
            "/split",
            "Split",
            &["x", "parts"],
            &["head", "tail"],
            vec![attr_i("axis", 2)],
        )
        .output("tail");
    let g = load(b);
    assert_eq!(shape(&g, "tail"), vec![1, 2, 3]);
    let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
    assert_eq!(eval_output(&g, &x), vec![1.0, 2.0, 3.0, 5.0, 6.0, 7.0]);
}

#[test]
fn a_split_with_a_negative_part_is_refused() {
    let e = load_err(
        ModelBuilder::new(18)
            .input("x", &[1, 2, 4])
            .i64("parts", &[2], &[4, -4])
            .node(
                "/split",
                "Split",
                &["x", "parts"],
                &["a", "b"],
                vec![attr_i("axis", 2)],
            )
            .output("a"),
    );
    assert!(e.contains("/split") && e.contains("negative"), "{e}");
}

#[test]
fn a_split_of_a_constant_folds_into_constant_parts() {
    // The dynamo exporter splits attention's packed in-projection weights,
    // a constant, into Q, K and V before each MatMul: no Gather is left, and
    // each part is its own rows of the constant.
    let packed: Vec<f32> = (0..18).map(|v| v as f32 - 8.0).collect();
    let b = ModelBuilder::new(18)
        .input("x", &[1, 2])
        .f32("w", &[3, 2, 3], &packed)
        .i64("parts", &[2], &[1, 2])
        .node(
            "/split",
            "Split",
            &["w", "parts"],
            &["wq", "wkv"],
            vec![attr_i("axis", 0)],
        )
        .i64("flat", &[2], &[2, 3])
        .node("/rq", "Reshape", &["wq", "flat"], &["wq2"], vec![])
        .node("/q", "MatMul", &["x", "wq2"], &["q"], vec![])
        .i64("kv", &[3], &[2, 2, 3])
        .node("/rkv", "Reshape", &["wkv", "kv"], &["wkv3"], vec![])
        .node(
            "/sum",
            "ReduceSum",
            &["wkv3"],
            &["s"],
            vec![attr_i("keepdims", 0)],
        )
        .node("/add", "Add", &["q", "s"], &["y"], vec![])
        .output("y");
    let g = load(b);
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert!(!ops.contains(&"Gather"), "{ops:?}");
    // q = x·W[0] with W[0] = [[-8, -7, -6], [-5, -4, -3]]; the sum of W[1]
    // and W[2] over every axis is Σ(−2..=9) = 42, added to each column.
    let x = [1.0, 2.0];
    let q = [-8.0 - 10.0, -7.0 - 8.0, -6.0 - 6.0];
    assert_eq!(eval_output(&g, &x), q.map(|v| v + 42.0).to_vec());
}

#[test]
fn a_supported_op_on_constants_folds_through_its_own_lowering() {
    // Exporters leave constant computations unfolded past a size limit
    // (sinusoidal position tables, projected weights): Sin and MatMul have
    // no evaluator of their own at load, and fold through the IR ops they
    // lower to.
    let b = ModelBuilder::new(17)
        .input("x", &[1, 2, 2])
        .f32("t", &[2, 2], &[0.0, 0.5, 1.0, 1.5])
        .f32("m", &[2, 2], &[1.0, 2.0, 3.0, 4.0])
        .node("/sin", "Sin", &["t"], &["s"], vec![])
        .node("/proj", "MatMul", &["s", "m"], &["p"], vec![])
        .node("/add", "Add", &["x", "p"], &["y"], vec![])
        .output("y");
    let g = load(b);
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(ops, ["Add"], "only the Add computes");
    let s: Vec<f32> = [0.0f32, 0.5, 1.0, 1.5].iter().map(|v| v.sin()).collect();
    let p = [
        s[0] + 3.0 * s[1],
        2.0 * s[0] + 4.0 * s[1],
        s[2] + 3.0 * s[3],
        2.0 * s[2] + 4.0 * s[3],
    ];
    let got = eval_output(&g, &[0.0; 4]);
    for (g, want) in got.iter().zip(p) {
        assert!((g - want).abs() < 1e-5, "{got:?} against {p:?}");
    }
}
