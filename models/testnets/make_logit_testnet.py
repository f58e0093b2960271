#!/usr/bin/env python3
"""Build `logit_head`: a detector whose score leaves the graph as a raw logit,
the application applying the sigmoid itself (as the camera-PPG face detector
of issue 12 does). No PyTorch: numpy sets its weights and the `onnx` package
writes it.

  logit_head   input features [1, 16] -> Gemm(16 -> 12) -> Relu -> Gemm(12 -> 1)
               -> output face_score [1, 1], a logit. "Face present" when a
               fixed projection d of the features exceeds 0.6. Two hidden
               units measure how far below and above that threshold a sample
               is; the head is as lopsided as over-confident detectors get:
               -180 per unit below, +1 per unit above, plus ten small random
               units. The score spans about [-550, 2.4]: at int8 over that
               span one step is more than 2, so without
               `--output-activation` sigmoid(score) can only show 0.5 or 0.9
               for a face.

Writes logit_head.onnx, logit_head_calib.npy, logit_head_test.npy (float32
[64, 16] and [256, 16]) and logit_head_test_logits.npy (the float model's
logits for the test inputs, float32 [256, 1]). Checked with onnx.checker and
onnx's ReferenceEvaluator against the numpy model.

Usage: python3 models/testnets/make_logit_testnet.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

SEED = 20261204
N_CALIB, N_TEST = 64, 256


def data(rng, n):
    return rng.standard_normal((n, 16)).astype(np.float32)


def forward(x, w1, b1, w2, b2):
    h = np.maximum(x @ w1.T + b1, 0.0)
    return h @ w2.T + b2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    d = rng.standard_normal(16).astype(np.float32)
    d /= np.linalg.norm(d)
    w1 = (rng.standard_normal((12, 16)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(12) * 0.1).astype(np.float32)
    w1[0], b1[0] = -d, 0.6      # how far below the threshold
    w1[1], b1[1] = d, -0.6      # how far above it
    w2 = (rng.standard_normal((1, 12)) * 0.05).astype(np.float32)
    w2[0, 0], w2[0, 1] = -180.0, 1.0
    b2 = np.zeros(1, np.float32)
    calib = data(rng, N_CALIB)
    test = data(rng, N_TEST)

    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["features", "w1", "b1"], ["hidden_pre"], name="fc1", transB=1),
            helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
            helper.make_node("Gemm", ["hidden", "w2", "b2"], ["face_score"], name="score", transB=1),
        ],
        "logit_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("face_score", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_logit_testnet.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)

    logits = forward(test, w1, b1, w2, b2)
    ref = ReferenceEvaluator(model)
    for i in range(N_TEST):
        got = ref.run(None, {"features": test[i:i + 1]})[0]
        np.testing.assert_allclose(got, logits[i:i + 1], rtol=1e-4, atol=1e-3)
    z_calib = forward(calib, w1, b1, w2, b2)
    print(f"logit_head: calibration logits in [{z_calib.min():.1f}, {z_calib.max():.2f}], "
          f"test faces (logit > 0): {(logits > 0).sum()} of {N_TEST}")

    onnx.save(model, os.path.join(args.out, "logit_head.onnx"))
    np.save(os.path.join(args.out, "logit_head_calib.npy"), calib)
    np.save(os.path.join(args.out, "logit_head_test.npy"), test)
    np.save(os.path.join(args.out, "logit_head_test_logits.npy"), logits.astype(np.float32))


if __name__ == "__main__":
    main()
