#!/usr/bin/env python3
"""Build the converter's log-feature test models: EEG classifiers whose
features are logarithms of powers, as published EEG models compute them.

  eeg_shallow      input "x" [1, 8, 256]: braindecode's ShallowFBCSPNet
                   (Schirrmeister et al., 2017) at a small size: a temporal
                   Conv2d (1 -> 20, 1x13), a spatial Conv2d over the 8
                   channels (20 -> 20, 8x1, no bias), BatchNorm, square,
                   AvgPool (1x35, stride 7), safe_log (log of a clamp at
                   1e-6), and a Conv2d classifier over the pooled frames,
                   Softmax over 4 classes. Legacy exporter, opset 17.
  band_power_log   input "x" [1, 8, 256]: the power spectrum of each channel
                   (torch.stft, one 256-point Hann frame), four band powers
                   (delta, theta, alpha, beta) summed over their bins,
                   decibels 10*log10(p + 1e-6), and a Linear(32 -> 4),
                   Softmax. Legacy exporter, opset 17.

Both are trained (Adam, a few hundred steps) to tell which of four rhythms
dominates a synthetic 8-channel EEG at 64 Hz: a sinusoid in the class's
band (delta 1-3 Hz, theta 4-7, alpha 8-12, beta 13-25) at an amplitude
between 0.2 and 5 on a random half of the channels, weaker rhythms of the
other bands, and noise. The amplitudes span decades, so the band powers
span about four, which is what log features are for and what an int16
table interpolating log over uniform segments cannot follow.

This writes, next to this script:

  eeg_shallow.onnx, band_power_log.onnx
  eeg_bands_calib.npy   float32 [32, 8, 256] calibration inputs (both models)
  eeg_bands_test.npy    float32 [64, 8, 256] held-out inputs, same distribution
  eeg_bands_test_y.npy  int64 [64] their classes

and checks each export with onnx.checker and with onnxruntime against
PyTorch on every test input. Reruns give byte-identical files.

Usage: python3 models/testnets/make_log_testnets.py [--out DIR] [--only NAME]
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn as nn

FS = 64.0
BANDS = [(1, 3), (4, 7), (8, 12), (13, 25)]


class Shallow(nn.Module):
    def __init__(self):
        super().__init__()
        self.temporal = nn.Conv2d(1, 20, (1, 13))
        self.spatial = nn.Conv2d(20, 20, (8, 1), bias=False)
        self.bn = nn.BatchNorm2d(20)
        self.pool = nn.AvgPool2d((1, 35), (1, 7))
        self.classifier = nn.Conv2d(20, 4, (1, (256 - 12 - 35) // 7 + 1))

    def forward(self, x):
        x = self.bn(self.spatial(self.temporal(x.unsqueeze(1))))
        x = torch.log(torch.clamp(self.pool(x * x), min=1e-6))
        return torch.softmax(self.classifier(x).flatten(1), 1)


class BandPowerLog(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("win", torch.hann_window(256))
        self.fc = nn.Linear(32, 4)
        # Bins of the 256-point spectrum at 64 Hz: 0.25 Hz apart.
        self.bins = [(int(lo * 4), int(hi * 4) + 1) for lo, hi in BANDS]

    def forward(self, x):
        s = torch.stft(x[0], 256, hop_length=256, window=self.win, center=False, return_complex=False)
        p = s[..., 0] ** 2 + s[..., 1] ** 2  # [8, 129, 1]
        bands = torch.cat([p[:, lo:hi].sum(1) for lo, hi in self.bins], 1)  # [8, 4]
        db = 10.0 * torch.log10(bands + 1e-6)
        return torch.softmax(self.fc(db.reshape(1, 32)), 1)


def eeg(rng, n):
    t = np.arange(256) / FS
    x = np.empty((n, 8, 256), np.float32)
    y = rng.integers(0, 4, n)
    for i in range(n):
        on = rng.permutation(8)[:4]
        sig = 0.3 * rng.standard_normal((8, 256))
        for c in range(8):
            for b, (lo, hi) in enumerate(BANDS):
                strong = b == y[i] and c in on
                a = rng.uniform(1.0, 5.0) if strong else rng.uniform(0.05, 0.5)
                sig[c] += a * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))
            sig[c] *= rng.uniform(0.2, 1.5)
        x[i] = sig
    return x, y


def train(net, rng, steps):
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(steps):
        x, y = eeg(rng, 32)
        p = net(torch.from_numpy(x)) if not isinstance(net, BandPowerLog) else torch.cat(
            [net(torch.from_numpy(x[i : i + 1])) for i in range(32)]
        )
        loss = nn.functional.nll_loss(torch.log(p + 1e-9), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return net


def export(net, example, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example,), path, dynamo=False, opset_version=17, do_constant_folding=True,
            input_names=["x"], output_names=["y"],
        )


def verify(path, net, test_x, test_y, op):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    right = 0
    with torch.no_grad():
        for i in range(test_x.shape[0]):
            xi = test_x[i : i + 1]
            got = sess.run(None, {"x": xi})[0]
            np.testing.assert_allclose(got, net(torch.from_numpy(xi)).numpy(), rtol=1e-4, atol=1e-4)
            right += int(got.argmax() == test_y[i])
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert op in ops, ops
    return ops, right / test_x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", help="make only this model (the data files are always written)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261207)
    calib, _ = eeg(rng, 32)
    test, test_y = eeg(rng, 64)
    np.save(os.path.join(args.out, "eeg_bands_calib.npy"), calib)
    np.save(os.path.join(args.out, "eeg_bands_test.npy"), test)
    np.save(os.path.join(args.out, "eeg_bands_test_y.npy"), test_y.astype(np.int64))
    # Each network has its own seeds, so a model made alone is the one a
    # full run makes.
    models = [("eeg_shallow", Shallow, 300, "Log"), ("band_power_log", BandPowerLog, 300, "Log")]
    example = torch.from_numpy(calib[:1])
    for k, (name, make, steps, op) in enumerate(models):
        if args.only and name != args.only:
            continue
        torch.manual_seed(100 + k)
        net = train(make(), np.random.default_rng(100 + k), steps)
        path = os.path.join(args.out, f"{name}.onnx")
        export(net, example, path)
        ops, acc = verify(path, net, test, test_y, op)
        print(f"{name}: {os.path.getsize(path)} B, test accuracy {acc:.3f}, ops {ops}")


if __name__ == "__main__":
    main()
