#!/usr/bin/env python3
"""Build the converter's test models of two published biosignal designs, as
PyTorch's own exporters write them (both the legacy TorchScript exporter and
the dynamo one), not written by hand:

  seizure_lstm      EEG seizure detector: 18-channel EEG [batch, 18, time] ->
                    two Conv1d+BatchNorm+ReLU+MaxPool stages -> Transpose ->
                    2-layer bidirectional LSTM (batch_first) -> mean over
                    time -> Linear -> Softmax [batch, 2]. Exported with
                    symbolic `batch` and `time` (the converter needs
                    `--input-shape eeg=1,18,256`).
  spindle_unet      sleep-spindle detector with two inputs, EEG and EOG
                    [batch, 1, 256] each: a GELU Conv1d per input, Concat,
                    strided Conv1d + GELU + LayerNorm, ConvTranspose1d with
                    tanh-GELU, skip Concat, 1x1 Conv1d, Softmax over the two
                    classes per sample -> mask [batch, 2, 256].
  ptt_xattn         ECG + PPG fusion by cross-attention, two inputs
                    [batch, 1, 256] each: a strided Conv1d per input, then
                    a learned position added to each, nn.MultiheadAttention
                    with the ECG as query and the PPG as key and value, mean over time -> Linear -> Softmax
                    [batch, 2]: is the pulse transit time (R peak to pulse)
                    long? The dynamo exporter splits the attention's packed
                    in-projection weights, a constant, with Split.
  <name>_dynamo     the same weights through `torch.onnx.export(...,
                    dynamo=True)` (opset 18, weights embedded); the seizure
                    detector's `time` symbolic there too.

Both are trained briefly (seeded, CPU) on synthetic tasks: a seizure is a
rhythmic high-amplitude burst on a few channels; a spindle is an 11-15 Hz
burst in the EEG (the EOG carries blinks the detector must ignore). For each
model: <name>.onnx, calibration and held-out inputs (16 float32 samples
each): seizure_lstm_{calib,test}.npy, spindle_unet_{eeg,eog}_{calib,test}.npy,
ptt_xattn_{ecg,ppg}_{calib,test}.npy. `--only ptt_xattn` builds that one
alone (it has its own seed, so it comes out the same either way).
Every export is checked against PyTorch with onnxruntime.

Needs PyTorch (and onnxscript for the dynamo exporter), which CI does not
install: the outputs are committed.

    pip install torch onnxscript onnxruntime
    python3 models/testnets/make_torch_export_testnets.py
"""

import argparse
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

SEED = 20261205
N = 16
FS = 128  # samples per second


class SeizureLstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(18, 32, 7, padding=3), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(4),
            nn.Conv1d(32, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(4),
        )
        self.lstm = nn.LSTM(32, 24, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(48, 2)

    def forward(self, eeg):
        h = self.conv(eeg).transpose(1, 2)
        y, _ = self.lstm(h)
        return torch.softmax(self.fc(y.mean(1)), -1)


class SpindleUnet(nn.Module):
    def __init__(self):
        super().__init__()
        self.eeg_in = nn.Sequential(nn.Conv1d(1, 16, 9, padding=4), nn.GELU())
        self.eog_in = nn.Sequential(nn.Conv1d(1, 8, 9, padding=4), nn.GELU())
        self.down = nn.Sequential(nn.Conv1d(24, 32, 5, stride=2, padding=2), nn.GELU(), nn.LayerNorm([32, 128]))
        self.up = nn.ConvTranspose1d(32, 16, 4, stride=2, padding=1)
        self.head = nn.Conv1d(40, 2, 1)

    def forward(self, eeg, eog):
        a = torch.cat([self.eeg_in(eeg), self.eog_in(eog)], 1)
        u = nn.functional.gelu(self.up(self.down(a)), approximate="tanh")
        return torch.softmax(self.head(torch.cat([u, a], 1)), 1)


class PttCrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.ecg_in = nn.Sequential(nn.Conv1d(1, 24, 9, stride=4, padding=4), nn.ReLU())
        self.ppg_in = nn.Sequential(nn.Conv1d(1, 24, 9, stride=4, padding=4), nn.ReLU())
        self.pos = nn.Parameter(torch.randn(1, 64, 24) * 0.5)
        self.attn = nn.MultiheadAttention(24, 3, batch_first=True)
        self.fc = nn.Linear(24, 2)

    def forward(self, ecg, ppg):
        q = self.ecg_in(ecg).transpose(1, 2) + self.pos
        k = self.ppg_in(ppg).transpose(1, 2) + self.pos
        o, _ = self.attn(q, k, k, need_weights=False)
        return torch.softmax(self.fc(o.mean(1)), -1)


def background(rng, n, c, t):
    """Smoothed noise: a crude EEG background."""
    x = rng.normal(size=(n, c, t)).astype(np.float32)
    k = np.ones(4, np.float32) / 4
    return np.apply_along_axis(lambda r: np.convolve(r, k, "same"), -1, x).astype(np.float32)


def seizure_data(rng, n, t=256):
    x = background(rng, n, 18, t)
    y = rng.random(n) < 0.5
    time = np.arange(t) / FS
    for i in np.flatnonzero(y):
        chans = rng.choice(18, rng.integers(3, 8), replace=False)
        f, start = rng.uniform(3, 6), rng.integers(0, t // 2)
        burst = 2.5 * np.sin(2 * np.pi * f * time) * (np.arange(t) >= start)
        x[i, chans] += burst.astype(np.float32)
    return x, y.astype(np.int64)


def spindle_data(rng, n, t=256):
    eeg, eog = background(rng, n, 1, t), background(rng, n, 1, t)
    mask = np.zeros((n, t), np.int64)
    time = np.arange(t) / FS
    for i in range(n):
        if rng.random() < 0.7:
            start, length = rng.integers(0, t - 64), rng.integers(48, 96)
            end = min(t, start + length)
            env = np.zeros(t, np.float32)
            env[start:end] = np.hanning(end - start)
            eeg[i, 0] += (1.8 * env * np.sin(2 * np.pi * rng.uniform(11, 15) * time)).astype(np.float32)
            mask[i, start:end] = 1
        if rng.random() < 0.5:  # a blink in the EOG, and a little of it in the EEG
            c = rng.integers(20, t - 20)
            blink = np.exp(-((np.arange(t) - c) / 8.0) ** 2).astype(np.float32)
            eog[i, 0] += 4 * blink
            eeg[i, 0] += 0.8 * blink
    return eeg, eog, mask


def ptt_data(rng, n, t=256):
    """R peaks at a random heart rate; each followed by a PPG pulse after the
    transit time, short (0.08-0.14 s) or long (0.35-0.5 s: label 1)."""
    ecg, ppg = background(rng, n, 1, t) * 0.1, background(rng, n, 1, t) * 0.1
    y = rng.random(n) < 0.5
    idx = np.arange(t)
    for i in range(n):
        period = rng.uniform(0.6, 1.1) * FS
        ptt = (rng.uniform(0.35, 0.5) if y[i] else rng.uniform(0.08, 0.14)) * FS
        for r in np.arange(rng.uniform(0, period), t, period):
            ecg[i, 0] += (1.5 * np.exp(-((idx - r) / 1.5) ** 2)).astype(np.float32)
            ppg[i, 0] += np.exp(-((idx - r - ptt) / 6.0) ** 2).astype(np.float32)
    return ecg, ppg, y.astype(np.int64)


def train(model, batches, loss_fn, steps=300):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        inputs, target = batches(step)
        opt.zero_grad()
        loss = loss_fn(model(*inputs), target)
        loss.backward()
        opt.step()
    model.eval()


def export(model, args, name, out, input_names, output_names, dynamic_axes, dynamic_shapes=None):
    legacy = os.path.join(out, f"{name}.onnx")
    torch.onnx.export(model, args, legacy, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    dynamo = os.path.join(out, f"{name}_dynamo.onnx")
    torch.onnx.export(model, args, dynamo, input_names=input_names, output_names=output_names,
                      dynamic_shapes=dynamic_shapes, dynamo=True, opset_version=18, external_data=False)
    return [legacy, dynamo]


def check(paths, model, feeds):
    with torch.no_grad():
        want = model(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    for p in paths:
        sess = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        (got,) = sess.run(None, feeds)
        assert np.abs(got - want).max() < 1e-4, (p, np.abs(got - want).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", choices=["ptt_xattn"], help="build this model alone")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if args.only is None:
        # These two share one seeded sequence, as when they were first made.
        seizure_and_spindle(args)
    if args.only in (None, "ptt_xattn"):
        ptt_xattn(args)


def ptt_xattn(args):
    torch.manual_seed(SEED + 2)
    rng = np.random.default_rng(SEED + 2)
    model = PttCrossAttention()
    e, p, y = ptt_data(rng, 512)
    train(model, lambda s: ((torch.from_numpy(e[s * 32 % 512:][:32]), torch.from_numpy(p[s * 32 % 512:][:32])),
                            torch.from_numpy(y[s * 32 % 512:][:32])),
          lambda q, y: nn.functional.nll_loss(torch.log(q + 1e-7), y), steps=3000)
    et, pt, yt = ptt_data(rng, 256)
    with torch.no_grad():
        acc = (model(torch.from_numpy(et), torch.from_numpy(pt)).argmax(1).numpy() == yt).mean()
    for split in ["calib", "test"]:
        e, p, _ = ptt_data(rng, N)
        np.save(os.path.join(args.out, f"ptt_xattn_ecg_{split}.npy"), e)
        np.save(os.path.join(args.out, f"ptt_xattn_ppg_{split}.npy"), p)
    paths = export(model, (torch.from_numpy(e[:1]), torch.from_numpy(p[:1])), "ptt_xattn", args.out,
                   ["ecg", "ppg"], ["probs"], {"ecg": {0: "batch"}, "ppg": {0: "batch"}, "probs": {0: "batch"}})
    check(paths, model, {"ecg": e[:1], "ppg": p[:1]})
    print(f"ptt_xattn: accuracy {acc:.3f} on 256 synthetic windows")


def seizure_and_spindle(args):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    seizure = SeizureLstm()
    xs, ys = seizure_data(rng, 512)
    train(seizure, lambda s: ((torch.from_numpy(xs[s * 32 % 512:][:32]),), torch.from_numpy(ys[s * 32 % 512:][:32])),
          lambda p, y: nn.functional.nll_loss(torch.log(p + 1e-7), y))
    xt, yt = seizure_data(rng, 256)
    with torch.no_grad():
        acc = (seizure(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
    calib, _ = seizure_data(rng, N)
    test, _ = seizure_data(rng, N)
    np.save(os.path.join(args.out, "seizure_lstm_calib.npy"), calib)
    np.save(os.path.join(args.out, "seizure_lstm_test.npy"), test)
    paths = export(seizure, (torch.from_numpy(test[:1]),), "seizure_lstm", args.out, ["eeg"], ["probs"],
                   {"eeg": {0: "batch", 2: "time"}, "probs": {0: "batch"}},
                   # Time in whole pooling windows (two MaxPools of 4).
                   {"eeg": {2: 16 * torch.export.Dim("windows", min=2, max=256)}})
    check(paths, seizure, {"eeg": test[:1]})
    print(f"seizure_lstm: accuracy {acc:.3f} on 256 synthetic windows")

    spindle = SpindleUnet()
    e, o, m = spindle_data(rng, 512)
    train(spindle, lambda s: ((torch.from_numpy(e[s * 32 % 512:][:32]), torch.from_numpy(o[s * 32 % 512:][:32])),
                              torch.from_numpy(m[s * 32 % 512:][:32])),
          lambda p, y: nn.functional.nll_loss(torch.log(p + 1e-7), y))
    et, ot, mt = spindle_data(rng, 256)
    with torch.no_grad():
        acc = (spindle(torch.from_numpy(et), torch.from_numpy(ot)).argmax(1).numpy() == mt).mean()
    for split in ["calib", "test"]:
        e, o, _ = spindle_data(rng, N)
        np.save(os.path.join(args.out, f"spindle_unet_eeg_{split}.npy"), e)
        np.save(os.path.join(args.out, f"spindle_unet_eog_{split}.npy"), o)
    paths = export(spindle, (torch.from_numpy(e[:1]), torch.from_numpy(o[:1])), "spindle_unet", args.out,
                   ["eeg", "eog"], ["mask"], {"eeg": {0: "batch"}, "eog": {0: "batch"}, "mask": {0: "batch"}})
    check(paths, spindle, {"eeg": e[:1], "eog": o[:1]})
    print(f"spindle_unet: per-sample accuracy {acc:.3f} on 256 synthetic epochs")


if __name__ == "__main__":
    main()
