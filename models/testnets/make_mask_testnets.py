#!/usr/bin/env python3
"""Build the converter's test models for attention masks: causal
self-attention scores (q·kᵀ/√d of one input) masked before the Softmax, in
the two forms PyTorch exports a mask as. No PyTorch: the graphs are written
with the `onnx` package, with seeded random weights.

  masked_attn_add    input [1, 8, 8], opset 17: MatMul (q), MatMul (k),
                     Transpose, MatMul, Mul by 1/√8, Add of a constant
                     [8, 8] mask of 0 and −inf (an `attn_mask` of floats),
                     Softmax on the last axis -> p [1, 8, 8]
  masked_attn_where  the same with Where(constant causal condition, −inf,
                     scores) (`masked_fill(mask, float("-inf"))`)

Both read masked_attn_calib.npy and masked_attn_test.npy (64 float32
samples each, standard normal). Each model is checked with onnx.checker
(full_check) and onnxruntime against onnx's ReferenceEvaluator.

Usage: python3 models/testnets/make_mask_testnets.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

SEED = 20261206
T, D = 8, 8
N = 64


def model(rng_weights, form):
    wq, wk = rng_weights
    inits = [
        numpy_helper.from_array(wq, "Wq"),
        numpy_helper.from_array(wk, "Wk"),
        numpy_helper.from_array(np.array(1 / np.sqrt(D), np.float32), "scale"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "Wq"], ["q"]),
        helper.make_node("MatMul", ["x", "Wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["raw"]),
        helper.make_node("Mul", ["raw", "scale"], ["scores"]),
    ]
    if form == "add":
        mask = np.triu(np.full((T, T), -np.inf, np.float32), 1)
        inits.append(numpy_helper.from_array(mask, "mask"))
        nodes.append(helper.make_node("Add", ["scores", "mask"], ["masked"]))
    else:
        cond = np.triu(np.ones((T, T), bool), 1)
        inits.append(numpy_helper.from_array(cond, "future"))
        inits.append(numpy_helper.from_array(np.array(-np.inf, np.float32), "fill"))
        nodes.append(helper.make_node("Where", ["future", "fill", "scores"], ["masked"]))
    nodes.append(helper.make_node("Softmax", ["masked"], ["p"], axis=-1))
    graph = helper.make_graph(
        nodes,
        f"masked_attn_{form}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, T, T])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    weights = tuple((rng.standard_normal((D, D)) * 0.5).astype(np.float32) for _ in range(2))
    x = rng.standard_normal((2 * N, T, D)).astype(np.float32)
    np.save(os.path.join(args.out, "masked_attn_calib.npy"), x[:N])
    np.save(os.path.join(args.out, "masked_attn_test.npy"), x[N:])
    for form in ["add", "where"]:
        m = model(weights, form)
        ref = ReferenceEvaluator(m)
        sess = ort.InferenceSession(m.SerializeToString())
        for v in x[N:]:
            a = sess.run(None, {"x": v[None]})[0]
            b = ref.run(None, {"x": v[None]})[0]
            assert np.allclose(a, b, rtol=1e-4, atol=1e-5), form
        path = os.path.join(args.out, f"masked_attn_{form}.onnx")
        onnx.save(m, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
