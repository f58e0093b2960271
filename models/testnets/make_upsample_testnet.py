#!/usr/bin/env python3
"""Build the converter's opset-9 test model: a 1-D U-Net as PyTorch's
exporter wrote it before opset 10, its decoder upsampling with the
(since deprecated) Upsample op, nearest and linear. No PyTorch: the graph is
written with the `onnx` package, weights seeded random (conversion fidelity,
not a task).

  unet_upsample  input "ecg" [1, 2, 64]: Conv+Relu, MaxPool, Conv+Relu,
                 MaxPool -> [1, 16, 16]; Upsample nearest x2, Conv+Relu,
                 Concat with the encoder's skip, Upsample linear x2, 1x1
                 Conv -> [1, 3, 64]; Transpose and Softmax over the three
                 classes per sample -> [1, 64, 3]

unet_upsample.onnx, unet_upsample_calib.npy and unet_upsample_test.npy (64
float32 samples each), checked with onnx.checker and run by onnxruntime,
whose Upsample is checked here against numpy (nearest: x[i // s]; linear:
asymmetric coordinates i / s, clamped at the last sample).

Usage: python3 models/testnets/make_upsample_testnet.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEED = 20261206
N = 64
OPSET = 9


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def conv(rng, name, cin, cout, k):
    w = rng.standard_normal((cout, cin, k)) * np.sqrt(2.0 / (cin * k))
    return [init(f"{name}_W", w), init(f"{name}_b", rng.standard_normal(cout) * 0.1)]


def make(rng):
    inits = (
        conv(rng, "enc1", 2, 8, 3)
        + conv(rng, "enc2", 8, 16, 3)
        + conv(rng, "dec1", 16, 8, 3)
        + conv(rng, "head", 16, 3, 1)
        + [init("up2", [1.0, 1.0, 2.0])]
    )

    def conv_node(name, x, y, k):
        pads = [k // 2, k // 2]
        return helper.make_node(
            "Conv", [x, f"{name}_W", f"{name}_b"], [y], kernel_shape=[k], pads=pads
        )

    nodes = [
        conv_node("enc1", "ecg", "e1", 3),
        helper.make_node("Relu", ["e1"], ["e1r"]),
        helper.make_node("MaxPool", ["e1r"], ["p1"], kernel_shape=[2], strides=[2]),
        conv_node("enc2", "p1", "e2", 3),
        helper.make_node("Relu", ["e2"], ["e2r"]),
        helper.make_node("MaxPool", ["e2r"], ["p2"], kernel_shape=[2], strides=[2]),
        helper.make_node("Upsample", ["p2", "up2"], ["u1"], mode="nearest"),
        conv_node("dec1", "u1", "d1", 3),
        helper.make_node("Relu", ["d1"], ["d1r"]),
        helper.make_node("Concat", ["d1r", "p1"], ["cat"], axis=1),
        helper.make_node("Upsample", ["cat", "up2"], ["u2"], mode="linear"),
        conv_node("head", "u2", "logits", 1),
        helper.make_node("Transpose", ["logits"], ["per_sample"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["per_sample"], ["probs"], axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "unet_upsample",
        [helper.make_tensor_value_info("ecg", TensorProto.FLOAT, [1, 2, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 64, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 4
    return model


def upsample(x, s, mode):
    n = x.shape[-1]
    pos = np.arange(n * s) / s
    i0 = np.floor(pos).astype(int)
    if mode == "nearest":
        return x[..., i0]
    i1 = np.minimum(i0 + 1, n - 1)
    f = pos - i0
    return x[..., i0] * (1 - f) + x[..., i1] * f


def check_upsample_semantics():
    """onnxruntime's Upsample against the numpy definitions above."""
    x = np.random.default_rng(1).standard_normal((1, 3, 7)).astype(np.float32)
    for mode, s in [("nearest", 2), ("nearest", 3), ("linear", 2), ("linear", 3)]:
        node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
        g = helper.make_graph(
            [node], "u",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [init("s", [1.0, 1.0, float(s)])],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 4
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})[0]
        assert np.abs(got - upsample(x, s, mode)).max() < 1e-5, (mode, s)


def signals(rng):
    t = np.arange(64) / 64.0
    base = np.sin(2 * np.pi * (2 + 3 * rng.random((N, 2, 1))) * t)
    return (base + 0.3 * rng.standard_normal((N, 2, 64))).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    check_upsample_semantics()
    rng = np.random.default_rng(SEED)
    model = make(rng)
    onnx.checker.check_model(model, full_check=True)
    calib, test = signals(rng), signals(rng)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    probs = np.concatenate([sess.run(None, {"ecg": s[None]})[0] for s in test])
    assert np.isfinite(probs).all()
    onnx.save(model, os.path.join(args.out, "unet_upsample.onnx"))
    np.save(os.path.join(args.out, "unet_upsample_calib.npy"), calib)
    np.save(os.path.join(args.out, "unet_upsample_test.npy"), test)
    print(f"unet_upsample: {probs.shape}, mean max p {probs.max(axis=2).mean():.3f}")


if __name__ == "__main__":
    main()
