#!/usr/bin/env python3
"""Build the converter's test models of `torch.atan2`, as PyTorch's two
exporters write it (`Atan(Div(y, x))`, then `Where`s that correct the
quadrant; the dynamo exporter also maps NaN to 0):

  posture           input "accel" [1, 3, 64]: a 2-s window of a chest-worn
                    3-axis accelerometer (32 Hz, in g). A fixed moving
                    average Conv1d per axis (the gravity component), then
                      angles [1, 2, 64]  roll = atan2(a_y, a_z) and
                                         pitch = atan2(-a_x, sqrt(a_y^2 +
                                         a_z^2)) at every sample, in
                                         radians: the wearer's posture.
                    Lying on a side puts a_z through zero, where the
                    quotient a_y / a_z is unbounded.
  qrs_axis          input "leads" [1, 2, 128]: ECG leads I and aVF, one
                    beat each. A fixed band-pass Conv1d (a difference of two
                    Gaussians) per lead, then
                      axis [1, 1]        atan2 of the net QRS deflections
                                         (max + min of the filtered lead) of
                                         aVF and I: the frontal-plane QRS
                                         axis in radians (normal range -30
                                         to +90 degrees).
  <name>_dynamo     the same through `torch.onnx.export(..., dynamo=True)`.

No training: the filters are fixed, so each model is what it computes. The
samples are synthetic, 64 for calibration and 64 held out
(<name>_calib.npy, <name>_test.npy, float32), used by both exports:
  - postures: upright, reclined, supine and on either side, roll between
    -150 and +150 degrees (prone, roll +-180, sits on atan2's cut, where any
    rounding of a_y flips the angle by 2 pi), with walking sway and noise;
  - beats: a Gaussian QRS with Q and S whose frontal axis is drawn between
    -60 and +120 degrees, P and T waves, baseline wander and noise.
Each export is checked against PyTorch with onnxruntime. Reruns give the
same files.

Needs PyTorch and onnxscript (not installed in CI: the outputs are
committed).

    python3 models/testnets/make_atan2_testnets.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

SEED = 20261208
N = 64


class Posture(nn.Module):
    def __init__(self, taps=9):
        super().__init__()
        self.smooth = nn.Conv1d(3, 3, taps, padding=taps // 2, groups=3, bias=False)
        with torch.no_grad():
            self.smooth.weight.fill_(1.0 / taps)

    def forward(self, accel):
        g = self.smooth(accel)
        ax, ay, az = g[:, 0:1], g[:, 1:2], g[:, 2:3]
        roll = torch.atan2(ay, az)
        pitch = torch.atan2(-ax, torch.sqrt(ay * ay + az * az))
        return torch.cat([roll, pitch], dim=1)


def band_pass(taps=15):
    """A difference of two Gaussians: roughly 5-40 Hz at 128 Hz."""
    t = np.arange(taps) - taps // 2
    narrow = np.exp(-0.5 * (t / 0.8) ** 2)
    wide = np.exp(-0.5 * (t / 3.0) ** 2)
    return (narrow / narrow.sum() - wide / wide.sum()).astype(np.float32)


class QrsAxis(nn.Module):
    def __init__(self):
        super().__init__()
        self.filt = nn.Conv1d(2, 2, 15, padding=7, groups=2, bias=False)
        with torch.no_grad():
            self.filt.weight.copy_(torch.from_numpy(np.stack([band_pass()] * 2)[:, None, :]))

    def forward(self, leads):
        f = self.filt(leads)
        # The net QRS deflection of each lead: its R peak plus its (negative) S.
        net = f.amax(dim=2) + f.amin(dim=2)
        return torch.atan2(net[:, 1:2], net[:, 0:1])


def postures(rng, n, t=64, fs=32.0):
    time = np.arange(t) / fs
    out = np.empty((n, 3, t), np.float32)
    for k in range(n):
        roll = np.deg2rad(rng.uniform(-150.0, 150.0))
        pitch = np.deg2rad(rng.uniform(-60.0, 60.0))
        gravity = np.array(
            [-np.sin(pitch), np.cos(pitch) * np.sin(roll), np.cos(pitch) * np.cos(roll)]
        )
        step = rng.uniform(1.5, 2.2)
        sway = rng.uniform(0.0, 0.15)
        for axis in range(3):
            motion = sway * np.sin(2 * np.pi * step * time + rng.uniform(0, 6.3))
            noise = 0.02 * rng.standard_normal(t)
            out[k, axis] = gravity[axis] + motion + noise
    return out


def beats(rng, n, t=128, fs=128.0):
    time = np.arange(t) / fs
    out = np.empty((n, 2, t), np.float32)
    for k in range(n):
        axis = np.deg2rad(rng.uniform(-60.0, 120.0))
        centre = rng.uniform(0.45, 0.55)
        width = rng.uniform(0.012, 0.02)
        qrs = np.exp(-0.5 * ((time - centre) / width) ** 2)
        # Q and S: small negative deflections on each side of the R wave.
        qrs -= 0.25 * np.exp(-0.5 * ((time - centre + 2.2 * width) / width) ** 2)
        qrs -= 0.35 * np.exp(-0.5 * ((time - centre - 2.2 * width) / width) ** 2)
        p = 0.15 * np.exp(-0.5 * ((time - centre + 0.16) / 0.025) ** 2)
        tw = 0.3 * np.exp(-0.5 * ((time - centre - 0.25) / 0.05) ** 2)
        amp = rng.uniform(0.8, 1.6)
        for lead, proj in enumerate([np.cos(axis), np.sin(axis)]):
            wander = 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * time + rng.uniform(0, 6.3))
            noise = 0.02 * rng.standard_normal(t)
            out[k, lead] = amp * (proj * qrs + p + tw) + wander + noise
    return out


def build(out, name, model, data, input_name, output_name):
    model = model.eval()
    calib, test = data
    x = torch.from_numpy(test[:1])
    names = dict(input_names=[input_name], output_names=[output_name])
    legacy = os.path.join(out, f"{name}.onnx")
    torch.onnx.export(model, (x,), legacy, opset_version=17, dynamo=False, **names)
    dynamo = os.path.join(out, f"{name}_dynamo.onnx")
    torch.onnx.export(model, (x,), dynamo, dynamo=True, opset_version=18, external_data=False, **names)
    np.save(os.path.join(out, f"{name}_calib.npy"), calib)
    np.save(os.path.join(out, f"{name}_test.npy"), test)
    with torch.no_grad():
        want = [model(torch.from_numpy(test[i : i + 1])).numpy() for i in range(len(test))]
    for path in [legacy, dynamo]:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for i, w in enumerate(want):
            (got,) = sess.run(None, {input_name: test[i : i + 1]})
            assert np.abs(got - w).max() < 1e-4, (path, i)
        print(f"{path}: {os.path.getsize(path)} B, matches PyTorch on {len(test)} samples")
    degrees = np.rad2deg(np.concatenate([w.ravel() for w in want]))
    print(f"  {name} angles: {degrees.min():.0f} to {degrees.max():.0f} degrees")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    build(args.out, "posture", Posture(), (postures(rng, N), postures(rng, N)), "accel", "angles")
    build(args.out, "qrs_axis", QrsAxis(), (beats(rng, N), beats(rng, N)), "leads", "axis")


if __name__ == "__main__":
    main()
