#!/usr/bin/env python3
"""Build the converter's STFT test models: a spectrogram front end as a
PyTorch user writes it in-graph.

  stft_spectrogram         input "x" [1, 1, 256]: torch.stft of channel 0
                           (n_fft 32, hop 8, periodic Hann window, no
                           centering, real output), the magnitude
                           sqrt(re^2 + im^2 + 1e-6) -> [1, 17, 29], then a
                           Conv1d(17 -> 4, k3, pad 1) over the frames.
                           Legacy (TorchScript) exporter, opset 17: the STFT
                           signal is [1, 256].
  stft_spectrogram_dynamo  the same network and data, dynamo exporter: the
                           signal is [1, 256, 1].
  rfft_spectrum_dynamo     input "x" [1, 1, 256]: a Hann window, the
                           magnitude of torch.fft.rfft over the 256 samples
                           (129 bins), then a Linear(129 -> 4). Dynamo
                           exporter only: the legacy one cannot export
                           torch.fft, and the dynamo one writes ONNX's DFT.

The weights are PyTorch's seeded initialisation (no training: the output is
a regression the tests compare by SQNR). The data are sums of two sinusoids
(1-12 Hz at 64 Hz) with noise, like an EEG band.

For each model `<name>` this writes, next to this script:

  <name>.onnx        exported graph (static batch 1)
  stft_calib.npy     float32 [32, 1, 256] calibration inputs (both models)
  stft_test.npy      float32 [32, 1, 256] different inputs, same distribution

and checks each export with onnx.checker and with onnxruntime against
PyTorch on every test input. Reruns give byte-identical files.

Usage: python3 models/testnets/make_stft_testnet.py [--out DIR] [--only NAME]
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn as nn


class Spectrogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("win", torch.hann_window(32))
        self.c = nn.Conv1d(17, 4, 3, padding=1)

    def forward(self, x):
        s = torch.stft(x[:, 0], 32, hop_length=8, window=self.win, center=False, return_complex=False)
        mag = (s[..., 0] ** 2 + s[..., 1] ** 2 + 1e-6).sqrt()
        return self.c(mag)


class RfftSpectrum(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("win", torch.hann_window(256))
        self.fc = nn.Linear(129, 4)

    def forward(self, x):
        return self.fc(torch.fft.rfft(x[:, 0] * self.win).abs())


def signals(rng, n):
    t = np.arange(256) / 64.0
    out = np.empty((n, 1, 256), np.float32)
    for i in range(n):
        f = rng.uniform(1, 12, 2)
        p = rng.uniform(0, 2 * np.pi, 2)
        a = rng.uniform(0.3, 1.0, 2)
        s = sum(a[j] * np.sin(2 * np.pi * f[j] * t + p[j]) for j in range(2))
        out[i, 0] = s + 0.2 * rng.standard_normal(256)
    return out


def export(net, example, path, dynamo):
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(net, (example,), dynamo=True, input_names=["x"], output_names=["y"])
            prog.save(path)
            # Strip the dynamo exporter's per-node debug metadata (absolute
            # paths); the graph is untouched.
            model = onnx.load(path)
            for node in model.graph.node:
                del node.metadata_props[:]
            onnx.save(model, path)
        else:
            torch.onnx.export(
                net, (example,), path, dynamo=False, opset_version=17, do_constant_folding=True,
                input_names=["x"], output_names=["y"],
            )


def verify(path, net, test_x, op):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for i in range(test_x.shape[0]):
            xi = test_x[i : i + 1]
            got = sess.run(None, {"x": xi})[0]
            np.testing.assert_allclose(got, net(torch.from_numpy(xi)).numpy(), rtol=1e-4, atol=1e-4)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert op in ops, ops
    return ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", help="make only this model (the data files are always written)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261205)
    calib, test = signals(rng, 32), signals(rng, 32)
    np.save(os.path.join(args.out, "stft_calib.npy"), calib)
    np.save(os.path.join(args.out, "stft_test.npy"), test)
    # Each network is initialised in this order whatever --only says, so a
    # model made alone is the one a full run makes.
    spectrogram = Spectrogram().eval()
    spectrum = RfftSpectrum().eval()
    models = [
        ("stft_spectrogram", spectrogram, False, "STFT"),
        ("stft_spectrogram_dynamo", spectrogram, True, "STFT"),
        ("rfft_spectrum_dynamo", spectrum, True, "DFT"),
    ]
    example = torch.from_numpy(calib[:1])
    for name, net, dynamo, op in models:
        if args.only and name != args.only:
            continue
        path = os.path.join(args.out, f"{name}.onnx")
        export(net, example, path, dynamo)
        ops = verify(path, net, test, op)
        print(f"{name}: {os.path.getsize(path)} B, ops {ops}")


if __name__ == "__main__":
    main()
