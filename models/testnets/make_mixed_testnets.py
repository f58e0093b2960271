#!/usr/bin/env python3
"""Build `mlp_digits`: a PyTorch-style MatMul MLP (MatMul + Add per layer, as
`torch.onnx.export` writes `x @ W + b`) trained on scikit-learn's handwritten
digits, confident enough that int8 activations move its probabilities by
more than the 0.03 bound on some held-out samples — the held-out MatMul MLP
of issue 12, which `--precision auto` must bring within bounds by raising
some layers to int16. No PyTorch: numpy trains it (Adam, full batch,
seeded) and the `onnx` package writes it.

  mlp_digits   input pixels [1, 64] -> MatMul(64 -> 96) + Add -> Relu
               -> MatMul(96 -> 96) + Add -> Relu -> MatMul(96 -> 10) + Add
               -> Softmax -> output probs [1, 10]

Writes mlp_digits.onnx and float32 mlp_digits_calib.npy [64, 64],
mlp_digits_select.npy [128, 64], mlp_digits_test.npy [256, 64] (disjoint
samples; pixels scaled to [0, 1]) and mlp_digits_test_y.npy (int64 labels).
Checked with onnx.checker and onnx's ReferenceEvaluator against numpy.

Usage: python3 models/testnets/make_mixed_testnets.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from sklearn.datasets import load_digits

SEED = 20261205
HIDDEN = 96
EPOCHS = 1500


def forward(params, x):
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.maximum(h1 @ w2 + b2, 0)
    z = h2 @ w3 + b3
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True), (h1, h2)


def train(x, y, rng):
    sizes = [(64, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 10)]
    params = [
        (rng.standard_normal(s) * np.sqrt(2.0 / s[0]), np.zeros(s[1])) for s in sizes
    ]
    flat = [a for p in params for a in p]
    m = [np.zeros_like(a) for a in flat]
    v = [np.zeros_like(a) for a in flat]
    onehot = np.eye(10)[y]
    lr, b1, b2 = 3e-3, 0.9, 0.999
    for t in range(1, EPOCHS + 1):
        (w1, c1), (w2, c2), (w3, c3) = params
        p, (h1, h2) = forward(params, x)
        g = (p - onehot) / len(x)
        gw3, gc3 = h2.T @ g, g.sum(0)
        g2 = (g @ w3.T) * (h2 > 0)
        gw2, gc2 = h1.T @ g2, g2.sum(0)
        g1 = (g2 @ w2.T) * (h1 > 0)
        gw1, gc1 = x.T @ g1, g1.sum(0)
        grads = [gw1, gc1, gw2, gc2, gw3, gc3]
        for i, gr in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * gr
            v[i] = b2 * v[i] + (1 - b2) * gr * gr
            mh, vh = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            flat[i] = flat[i] - lr * mh / (np.sqrt(vh) + 1e-8)
        params = [(flat[0], flat[1]), (flat[2], flat[3]), (flat[4], flat[5])]
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in params]


def export(params, path):
    nodes, inits = [], []
    x = "input"
    for i, (w, b) in enumerate(params, start=1):
        inits += [
            numpy_helper.from_array(w, f"fc{i}.weight_t"),
            numpy_helper.from_array(b, f"fc{i}.bias"),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"fc{i}.weight_t"], [f"/fc{i}/MatMul_output_0"], name=f"/fc{i}/MatMul"),
            helper.make_node("Add", [f"/fc{i}/MatMul_output_0", f"fc{i}.bias"], [f"/fc{i}/Add_output_0"], name=f"/fc{i}/Add"),
        ]
        x = f"/fc{i}/Add_output_0"
        if i < len(params):
            nodes.append(helper.make_node("Relu", [x], [f"/relu{i}/Relu_output_0"], name=f"/relu{i}/Relu"))
            x = f"/relu{i}/Relu_output_0"
    nodes.append(helper.make_node("Softmax", [x], ["probs"], name="/Softmax", axis=1))
    graph = helper.make_graph(
        nodes,
        "mlp_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    out = ap.parse_args().out
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(x))
    calib, select, test = order[:64], order[64:192], order[192:448]
    train_idx = order[448:]
    params = train(x[train_idx].astype(np.float64), y[train_idx], rng)
    p, _ = forward([(w.astype(np.float64), b) for w, b in params], x[test])
    print(f"test accuracy {np.mean(p.argmax(1) == y[test]):.3f}, "
          f"median top probability {np.median(p.max(1)):.4f}")
    model = export(params, os.path.join(out, "mlp_digits.onnx"))
    ref = ReferenceEvaluator(model)
    got = np.concatenate([ref.run(None, {"input": x[i:i + 1]})[0] for i in test])
    assert np.abs(got - p).max() < 1e-4, np.abs(got - p).max()
    np.save(os.path.join(out, "mlp_digits_calib.npy"), x[calib])
    np.save(os.path.join(out, "mlp_digits_select.npy"), x[select])
    np.save(os.path.join(out, "mlp_digits_test.npy"), x[test])
    np.save(os.path.join(out, "mlp_digits_test_y.npy"), y[test])


if __name__ == "__main__":
    main()
