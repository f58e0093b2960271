#!/usr/bin/env python3
"""Build the converter's recurrent test models: bidirectional, reverse and
stacked LSTM/GRU layers and the full `Y` sequence output, in the patterns
PyTorch's exporter gives them (batch-first input transposed to
[seq, batch, input], `Y` reshaped for the layer after it). No PyTorch: the
graphs are written with the `onnx` package, weights seeded random (these
models test conversion fidelity, not a task).

  eeg_bigru     input "eeg" [1, 4, "time"] (symbolic time; convert with
                --input-shape eeg=1,4,64): Transpose to [time, 1, 4],
                bidirectional GRU (hidden 12, linear_before_reset 1) -> Y
                [time, 2, 1, 12], Reshape [time, 24], ReduceMean over time,
                Gemm, Softmax -> [1, 3]
  lstm_stacked  input [1, 32, 3] (batch first): Transpose, LSTM (hidden 16)
                -> Y, Squeeze, LSTM (hidden 8) -> Y and Y_h; a per-step classifier on Y (MatMul, Softmax) -> [32, 3]
                and a Sigmoid head on Y_h -> [1, 1]
  wide_lstm     input "eeg" [1, 2, "time"] (symbolic time; convert with
                --input-shape eeg=1,2,256): a Conv+LSTM seizure detector,
                Conv1d (stride 2) + Relu + MaxPool, Transpose to [time, 1,
                16], LSTM with 160 units (above the 128 medq once capped
                at), its last hidden state Y_h through Gemm and Softmax ->
                [1, 2]

For each model: <name>.onnx, <name>_calib.npy and <name>_test.npy (64
float32 samples each), checked with onnx.checker and run by onnxruntime
(onnx's ReferenceEvaluator has no bidirectional GRU and runs a reverse LSTM
forward, so it is no check here; the converter's tests compare with tract).

Usage: python3 models/testnets/make_rnn_testnets.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEED = 20261204
N = 64
OPSET = 17


def init(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def i64(name, values):
    return init(name, values, np.int64)


def rnn_weights(rng, prefix, dirs, gates, hidden, inputs):
    scale = 1.0 / np.sqrt(hidden)
    return [
        init(f"{prefix}_W", rng.uniform(-scale, scale, (dirs, gates * hidden, inputs))),
        init(f"{prefix}_R", rng.uniform(-scale, scale, (dirs, gates * hidden, hidden))),
        init(f"{prefix}_B", rng.uniform(-scale, scale, (dirs, 2 * gates * hidden))),
    ]


def make_eeg_bigru(rng):
    h = 12
    inits = rnn_weights(rng, "gru", 2, 3, h, 4) + [
        i64("flat", [0, 2 * h]),
        i64("row", [1, 2 * h]),
        init("fc_W", rng.standard_normal((3, 2 * h)) * np.sqrt(2.0 / (2 * h)) * 4),
        init("fc_b", rng.standard_normal(3) * 0.1),
    ]
    nodes = [
        helper.make_node("Transpose", ["eeg"], ["x"], perm=[2, 0, 1]),
        helper.make_node(
            "GRU", ["x", "gru_W", "gru_R", "gru_B"], ["y"],
            hidden_size=h, direction="bidirectional", linear_before_reset=1,
        ),
        helper.make_node("Reshape", ["y", "flat"], ["y2"]),
        helper.make_node("ReduceMean", ["y2"], ["pooled"], axes=[0], keepdims=0),
        helper.make_node("Reshape", ["pooled", "row"], ["feat"]),
        helper.make_node("Gemm", ["feat", "fc_W", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "eeg_bigru",
        [helper.make_tensor_value_info("eeg", TensorProto.FLOAT, [1, 4, "time"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    return graph, [1, 4, 64]


def make_lstm_stacked(rng):
    h1, h2, t = 16, 8, 32
    inits = (
        rnn_weights(rng, "l1", 1, 4, h1, 3)
        + rnn_weights(rng, "l2", 1, 4, h2, h1)
        + [
            i64("axis1", [1]),
            i64("steps", [t, h2]),
            i64("row", [1, h2]),
            init("cls_W", rng.standard_normal((h2, 3)) * 3.0),
            init("head_W", rng.standard_normal((1, h2)) * 3.0),
            init("head_b", [0.1]),
        ]
    )
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "l1_W", "l1_R", "l1_B"], ["y1"], hidden_size=h1),
        helper.make_node("Squeeze", ["y1", "axis1"], ["s1"]),
        helper.make_node(
            "LSTM", ["s1", "l2_W", "l2_R", "l2_B"], ["y2", "h2"],
            hidden_size=h2,
        ),
        helper.make_node("Reshape", ["y2", "steps"], ["per_t"]),
        helper.make_node("MatMul", ["per_t", "cls_W"], ["step_logits"]),
        helper.make_node("Softmax", ["step_logits"], ["per_step"], axis=1),
        helper.make_node("Reshape", ["h2", "row"], ["last"]),
        helper.make_node("Gemm", ["last", "head_W", "head_b"], ["any_logit"], transB=1),
        helper.make_node("Sigmoid", ["any_logit"], ["any"]),
    ]
    graph = helper.make_graph(
        nodes, "lstm_stacked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, 3])],
        [
            helper.make_tensor_value_info("per_step", TensorProto.FLOAT, [t, 3]),
            helper.make_tensor_value_info("any", TensorProto.FLOAT, [1, 1]),
        ],
        inits,
    )
    return graph, [1, t, 3]


def make_wide_lstm(rng):
    h, c = 160, 16
    inits = rnn_weights(rng, "lstm", 1, 4, h, c) + [
        init("conv_W", rng.standard_normal((c, 2, 7)) * np.sqrt(2.0 / 14)),
        init("conv_b", rng.standard_normal(c) * 0.1),
        i64("row", [1, h]),
        init("fc_W", rng.standard_normal((2, h)) * np.sqrt(2.0 / h) * 4),
        init("fc_b", [0.05, -0.05]),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["eeg", "conv_W", "conv_b"], ["conv"],
            kernel_shape=[7], strides=[2], pads=[3, 3],
        ),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("MaxPool", ["act"], ["pool"], kernel_shape=[2], strides=[2]),
        helper.make_node("Transpose", ["pool"], ["seq"], perm=[2, 0, 1]),
        helper.make_node(
            "LSTM", ["seq", "lstm_W", "lstm_R", "lstm_B"], ["y", "y_h"], hidden_size=h,
        ),
        helper.make_node("Reshape", ["y_h", "row"], ["last"]),
        helper.make_node("Gemm", ["last", "fc_W", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "wide_lstm",
        [helper.make_tensor_value_info("eeg", TensorProto.FLOAT, [1, 2, "time"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    return graph, [1, 2, 256]


def signals(rng, dims):
    """Smooth multichannel signals: a random walk low-passed per channel."""
    x = rng.standard_normal([N] + dims[1:]).astype(np.float32)
    axis = 2 if dims[1] < dims[2] else 1
    kernel = np.ones(5, dtype=np.float32) / 5
    x = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, x)
    return (x * 1.5).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    makers = [
        ("eeg_bigru", make_eeg_bigru),
        ("lstm_stacked", make_lstm_stacked),
        ("wide_lstm", make_wide_lstm),
    ]
    for name, make in makers:
        graph, dims = make(rng)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        calib, test = signals(rng, dims), signals(rng, dims)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = [o for s in test for o in sess.run(None, {graph.input[0].name: s[None]})]
        assert all(np.isfinite(a).all() for a in got)
        onnx.save(model, os.path.join(args.out, f"{name}.onnx"))
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)
        print(f"{name}: {dims}")


if __name__ == "__main__":
    main()
