#!/usr/bin/env python3
"""Build the converter's test model of circular padding, as PyTorch's two
exporters write it: the legacy exporter as Slices and a Concat, the dynamo
exporter (PyTorch's default from 2.9) as opset 19's `Pad` in mode `wrap`.

  circular_cnn          input "x" [1, 2, 64]: a window of a periodic
                        two-channel signal (a respiration belt and its
                        derivative). Conv1d(2, 8, 7, padding_mode="circular"),
                        ReLU, F.pad(..., mode="circular") by (3, 5),
                        Conv1d(8, 8, 5), ReLU, a mean over time, Linear(8, 3):
                        logits [1, 3]. Seeded weights, no training.
  circular_cnn_dynamo   the same through `torch.onnx.export(..., dynamo=True)`.

Samples: 64 for calibration and 64 held out (circular_cnn_calib.npy,
circular_cnn_test.npy, float32 [64, 2, 64]), smooth random periodic
signals; PyTorch's own outputs on the held-out ones in
circular_cnn_torch.npy (float32 [64, 3]), the reference that checks the
float meaning of both exports, not only medq's agreement with its float
model. Each export is checked against PyTorch with onnxruntime. Reruns give
the same files.

Needs PyTorch and onnxscript (not installed in CI: the outputs are
committed).

    python3 models/testnets/make_circular_testnet.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20261208
N, C, T = 64, 2, 64


class CircularCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(C, 8, 7, padding=3, padding_mode="circular")
        self.conv2 = nn.Conv1d(8, 8, 5)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(F.pad(h, (3, 5), mode="circular")))
        return self.head(h.mean(dim=2))


def signals(rng, n):
    t = np.arange(T) / T
    out = np.empty((n, C, T), np.float32)
    for k in range(n):
        wave = sum(
            rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
            for f in (1, 2, 3)
        )
        out[k, 0] = wave + 0.05 * rng.standard_normal(T)
        out[k, 1] = np.gradient(wave) * T / 8 + 0.05 * rng.standard_normal(T)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = CircularCnn().eval()
    calib, test = signals(rng, N), signals(rng, N)
    x = torch.from_numpy(test[:1])
    names = dict(input_names=["x"], output_names=["logits"])
    legacy = os.path.join(args.out, "circular_cnn.onnx")
    torch.onnx.export(model, (x,), legacy, opset_version=17, dynamo=False, **names)
    dynamo = os.path.join(args.out, "circular_cnn_dynamo.onnx")
    torch.onnx.export(model, (x,), dynamo, dynamo=True, opset_version=19, external_data=False, **names)
    with torch.no_grad():
        want = model(torch.from_numpy(test)).numpy()
    np.save(os.path.join(args.out, "circular_cnn_calib.npy"), calib)
    np.save(os.path.join(args.out, "circular_cnn_test.npy"), test)
    np.save(os.path.join(args.out, "circular_cnn_torch.npy"), want)
    for path in [legacy, dynamo]:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(None, {"x": test[i : i + 1]})[0] for i in range(N)])
        assert np.abs(got - want).max() < 1e-4, path
        import onnx

        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print(f"{path}: {os.path.getsize(path)} B, matches PyTorch on {N} windows, ops {ops}")


if __name__ == "__main__":
    main()
