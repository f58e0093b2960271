#!/usr/bin/env python3
"""Build the "never-seen" ONNX test models for the medq converter.

Each model is a small PyTorch network, briefly trained (seeded, CPU) on a
synthetic task so that weights, BatchNorm running statistics and activation
ranges look like a real model's rather than like freshly initialised noise.
For every model `<name>` this writes, next to this script:

  <name>.onnx        exported graph (static batch 1)
  <name>_calib.npy   float32 [64, *input_shape[1:]] calibration inputs
  <name>_test.npy    float32 [64, *input_shape[1:]] different inputs, same distribution
  README.md          generated table: opset, exporter, shapes, params, op types

and checks each export with `onnx.checker.check_model` and with onnx's
`ReferenceEvaluator` against PyTorch on all 64 test inputs.

Usage: python3 models/testnets/make_testnets.py [--out DIR] [--only NAME ...]
"""

import argparse
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BASE_SEED = 1234
N_SAMPLES = 64
TRAIN_STEPS = 400
BATCH = 32

# The converter's supported op set (see the project docs). Anything else in an
# exported graph is flagged in the README so the gap is visible.
SUPPORTED_OPS = {
    "Conv", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "LeakyRelu",
    "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Softmax", "Concat", "Pad", "Flatten", "Reshape",
    "Squeeze", "Unsqueeze", "Identity", "Dropout", "BatchNormalization",
}


# ---------------------------------------------------------------------------
# Synthetic data. Every generator takes a numpy Generator and a count and
# returns (x float32 [n, *shape], target) with a learnable relationship.
# ---------------------------------------------------------------------------


def smooth_noise_1d(rng, n, c, length, cutoff):
    """Low-pass filtered white noise, unit std per row: a smooth 'background'."""
    spec = np.fft.rfft(rng.standard_normal((n, c, length)), axis=-1)
    spec[..., cutoff:] = 0
    sig = np.fft.irfft(spec, n=length, axis=-1)
    sig /= sig.std(axis=-1, keepdims=True) + 1e-8
    return sig


def tone_signals(rng, n, c, length, n_classes):
    """Class k = dominant sinusoid at frequency band k, over smooth noise.
    Amplitudes stay within a few units, like normalised biosignals."""
    y = rng.integers(0, n_classes, n)
    t = np.arange(length) / length
    freqs = 2.0 + 3.0 * y + rng.uniform(-1.0, 1.0, n)  # cycles per window
    phase = rng.uniform(0, 2 * np.pi, (n, c))
    amp = rng.uniform(0.6, 1.5, (n, 1))
    tone = np.sin(2 * np.pi * freqs[:, None, None] * t[None, None, :] + phase[..., None])
    x = amp[..., None] * tone + 0.6 * smooth_noise_1d(rng, n, c, length, 10)
    x += 0.15 * rng.standard_normal(x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def bar_images(rng, n, c, size, n_classes):
    """Class k = a bright bar at orientation k*180/n_classes degrees, with a
    random offset, width and blurred background; values roughly in [0, 1]
    then normalised like MNIST ((x - 0.13) / 0.31)."""
    y = rng.integers(0, n_classes, n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    xx = (xx - (size - 1) / 2) / size
    yy = (yy - (size - 1) / 2) / size
    out = np.empty((n, c, size, size))
    for i in range(n):
        ang = np.pi * y[i] / n_classes + rng.uniform(-0.35, 0.35)
        off = rng.uniform(-0.15, 0.15)
        width = rng.uniform(0.05, 0.1)
        d = xx * np.sin(ang) - yy * np.cos(ang) - off
        img = np.exp(-(d / width) ** 2)
        for ch in range(c):
            gain = rng.uniform(0.6, 1.0)
            out[i, ch] = gain * img
    spec = np.fft.rfft2(rng.standard_normal((n, c, size, size)))
    spec[..., 4:, :] = 0
    spec[..., 4:] = 0
    bg = np.fft.irfft2(spec, s=(size, size))
    bg /= bg.std(axis=(-2, -1), keepdims=True) + 1e-8
    out = np.clip(out + 0.3 * bg + 0.15 * rng.standard_normal(out.shape), 0, 1)
    out = (out - 0.13) / 0.31
    return out.astype(np.float32), y.astype(np.int64)


def tabular(rng, n, feats=30):
    """Correlated standardised features (like a scaled clinical table) and a
    binary label from a fixed nonlinear rule plus label noise."""
    mix_rng = np.random.default_rng(777)  # fixed feature mixing / rule
    a = mix_rng.standard_normal((feats, feats)) / math.sqrt(feats)
    w = mix_rng.standard_normal(feats)
    z = rng.standard_normal((n, feats)) @ (np.eye(feats) + a)
    z = (z - 0.0) / z.std(axis=0, keepdims=True).clip(0.5, None)
    score = z @ w / math.sqrt(feats) + 0.5 * z[:, 0] * z[:, 1] - 0.3 * z[:, 2] ** 2
    y = (score + 0.3 * rng.standard_normal(n) > 0).astype(np.float32)
    return z.astype(np.float32), y[:, None]


def beat_like(rng, n, length=140):
    """Smooth heartbeat-ish waveforms (a few Gaussian bumps), z-normalised like
    the UCR ECG data; target = the clean signal (autoencoder)."""
    t = np.linspace(0, 1, length)
    x = np.zeros((n, length))
    for i in range(n):
        for centre, width, amp in ((0.2, 0.03, 0.3), (0.3, 0.015, -0.4), (0.33, 0.01, 2.5),
                                   (0.37, 0.015, -0.6), (0.65, 0.06, 0.6)):
            c = centre + rng.uniform(-0.03, 0.03)
            x[i] += amp * rng.uniform(0.7, 1.3) * np.exp(-((t - c) / (width * rng.uniform(0.8, 1.2))) ** 2)
        x[i] += 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 6.3))
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    clean = x.astype(np.float32)
    noisy = (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)
    return noisy, clean


def feature_sequences(rng, n, steps=16, feats=12, n_classes=4):
    """[T, F] sequences (time-distributed features); class = which group of
    three features carries a slow oscillation."""
    y = rng.integers(0, n_classes, n)
    x = 0.5 * smooth_noise_1d(rng, n, feats, steps, 4).transpose(0, 2, 1)
    t = np.arange(steps) / steps
    for i in range(n):
        g = slice(3 * y[i], 3 * y[i] + 3)
        x[i, :, g] += 1.2 * np.sin(2 * np.pi * 2 * t + rng.uniform(0, 6.3))[:, None]
    return x.astype(np.float32), y.astype(np.int64)


def heads_data(rng, n, c=2, length=64):
    """Two-channel signal. Target 1 (tanh head, 2 values): normalised mean
    level of each channel. Target 2 (sigmoid head): a spike is present."""
    x = 0.6 * smooth_noise_1d(rng, n, c, length, 8)
    level = rng.uniform(-1, 1, (n, c))
    x += level[..., None]
    spike = rng.random(n) < 0.5
    pos = rng.integers(8, length - 8, n)
    for i in np.flatnonzero(spike):
        x[i, rng.integers(0, c), pos[i] - 1 : pos[i] + 2] += np.array([1.5, 3.0, 1.5])
    x += 0.05 * rng.standard_normal(x.shape)
    return x.astype(np.float32), (level.astype(np.float32), spike.astype(np.float32)[:, None])


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class Cnn1d(nn.Module):
    """Conv1d+BN+ReLU with stride 2 and dilation, MaxPool1d, Flatten -> Linear."""

    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(1, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(),      # 128 -> 64
            nn.Conv1d(8, 16, 3, dilation=2, padding=2), nn.BatchNorm1d(16), nn.ReLU(),  # 64
            nn.MaxPool1d(2),                                                            # 32
            nn.Conv1d(16, 16, 3, stride=2, padding=1), nn.BatchNorm1d(16), nn.ReLU(),   # 16
            nn.Flatten(),
        )
        self.fc = nn.Linear(16 * 16, classes)

    def forward(self, x):
        return self.fc(self.body(x))


class Cnn2d(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),   # 28
            nn.AvgPool2d(2),                                               # 14
            nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),   # 14
            nn.MaxPool2d(2),                                               # 7
            nn.Flatten(),
            nn.Linear(8 * 7 * 7, 32),
            nn.Linear(32, classes),  # two Gemms back to back, no activation between
        )

    def forward(self, x):
        return self.body(x)


def dw_block(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin), nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.Hardswish(),
    )


class DwSep(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),  # 16 -> 8
            dw_block(8, 16, 1),   # 8
            dw_block(16, 24, 2),  # 4
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(24, classes)

    def forward(self, x):
        return self.fc(self.body(x))


class ResBlock1d(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv1d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm1d(cout))
        else:
            self.proj = None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        skip = x if self.proj is None else self.proj(x)
        return F.relu(h + skip)


class ResNet1d(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU())
        self.b1 = ResBlock1d(8, 8, 1)    # identity skip
        self.b2 = ResBlock1d(8, 16, 2)   # 1x1 projection skip, stride 2
        self.b3 = ResBlock1d(16, 16, 1)  # identity skip
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        h = self.b3(self.b2(self.b1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(h), 1))


class Mlp(nn.Module):
    def __init__(self, feats=30):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(feats, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(32, 1),
        )

    def forward(self, x):
        return self.body(x)


class AutoEncoder(nn.Module):
    def __init__(self, length=140):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(length, 32), nn.Tanh(), nn.Linear(32, 8), nn.LeakyReLU(0.1))
        self.dec = nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(0.1), nn.Linear(32, length))

    def forward(self, x):
        return self.dec(self.enc(x))


class MatMulAdd(nn.Module):
    """Time-distributed dense written as `x @ W + b` (MatMul + Add in ONNX)."""

    def __init__(self, steps=16, feats=12, hidden=8, classes=4):
        super().__init__()
        self.w = nn.Parameter(torch.randn(feats, hidden) / math.sqrt(feats))
        self.b = nn.Parameter(0.1 * torch.randn(hidden))
        self.fc = nn.Linear(steps * hidden, classes)

    def forward(self, x):  # x: [1, T, F]
        h = F.relu(x @ self.w + self.b)
        return self.fc(torch.flatten(h, 1))


class Heads(nn.Module):
    """Trunk (LeakyReLU, HardSigmoid) -> two concatenated branches -> two heads."""

    def __init__(self, c=2, length=64):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv1d(c, 8, 5, padding=2), nn.LeakyReLU(0.1),
            nn.Conv1d(8, 8, 3, padding=1), nn.Hardsigmoid(),
        )
        self.branch_a = nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.ReLU())
        self.branch_b = nn.Sequential(nn.Conv1d(8, 4, 5, padding=4, dilation=2), nn.ReLU())
        self.pool = nn.MaxPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.head_level = nn.Linear(12, c)
        self.head_spike = nn.Linear(12 * (length // 2), 1)

    def forward(self, x):
        t = self.trunk(x)
        h = self.pool(torch.cat([self.branch_a(t), self.branch_b(t)], dim=1))
        level = torch.tanh(self.head_level(torch.flatten(self.gap(h), 1)))
        spike = torch.sigmoid(self.head_spike(torch.flatten(h, 1)))
        return level, spike


class GemmTransBPad(nn.Module):
    """Explicit constant F.pad, grouped Conv1d (groups=2), Linear -> Sigmoid."""

    def __init__(self, c=2, length=100, outputs=3):
        super().__init__()
        self.conv = nn.Conv1d(c, 4, 5, groups=2)  # padding done by F.pad
        self.conv2 = nn.Conv1d(4, 4, 3, stride=2, groups=2)
        self.fc = nn.Linear(4 * 51, outputs)

    def forward(self, x):
        h = F.relu(self.conv(F.pad(x, (3, 2), mode="constant", value=0.0)))  # 100 -> 105 -> 101
        h = F.relu(self.conv2(h))  # 101 -> (101-3)//2+1 = 50
        return torch.sigmoid(self.fc(torch.flatten(F.pad(h, (0, 1)), 1)))  # pad to 51


class WithSoftmax(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


class WithSigmoid(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.sigmoid(self.net(x))


# ---------------------------------------------------------------------------
# Training / export / verification
# ---------------------------------------------------------------------------


def ce_loss(out, y):
    return F.cross_entropy(out, y)


def bce_logits_loss(out, y):
    return F.binary_cross_entropy_with_logits(out, y)


def mse_loss(out, y):
    return F.mse_loss(out, y)


def heads_loss(out, y):
    level, spike = out
    return F.mse_loss(level, y[0]) + F.binary_cross_entropy(spike.clamp(1e-6, 1 - 1e-6), y[1])


def gemm_pad_loss(out, y):
    return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), y)


def multi_label_tones(rng, n):
    """3 sigmoid outputs: which of three frequency bands are present."""
    c, length = 2, 100
    y = (rng.random((n, 3)) < 0.5).astype(np.float32)
    t = np.arange(length) / length
    x = 0.3 * smooth_noise_1d(rng, n, c, length, 3)
    for band, f in enumerate((3.0, 9.0, 17.0)):
        ph = rng.uniform(0, 6.3, (n, c, 1))
        ff = f + rng.uniform(-0.5, 0.5, (n, 1, 1))
        x += y[:, band, None, None] * np.sin(2 * np.pi * ff * t + ph)
    x += 0.05 * rng.standard_normal(x.shape)
    return x.astype(np.float32), y


def to_torch(t):
    if isinstance(t, tuple):
        return tuple(torch.from_numpy(a) for a in t)
    return torch.from_numpy(t)


def take(t, idx):
    if isinstance(t, tuple):
        return tuple(a[idx] for a in t)
    return t[idx]


def train(net, data_fn, loss_fn, seed, steps=TRAIN_STEPS):
    """Brief Adam training on freshly drawn synthetic batches. Leaves BN with
    running statistics of realistic inputs; returns the final loss."""
    rng = np.random.default_rng(seed)
    x, y = data_fn(rng, steps * BATCH // 4)  # pool reused ~4x
    x, y = to_torch(x), to_torch(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (BATCH,), generator=gen)
        loss = loss_fn(net(x[idx]), take(y, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return float(loss)


def opset_of(model):
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export(net, example, path, opset, dynamo, input_names, output_names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            # Default dynamo export as a torch 2.x user would call it (its
            # native opset is 18; it cannot emit lower without conversion).
            prog = torch.onnx.export(
                net, (example,), dynamo=True, input_names=input_names, output_names=output_names,
                verbose=False,
            )
            prog.save(path)
        else:
            torch.onnx.export(
                net, (example,), path, dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=input_names, output_names=output_names,
            )


def verify(path, net, test_x, input_name):
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    sess = ReferenceEvaluator(model)
    max_diff = 0.0
    with torch.no_grad():
        for i in range(test_x.shape[0]):
            xi = test_x[i : i + 1]
            got = sess.run(None, {input_name: xi})
            ref = net(torch.from_numpy(xi))
            ref = ref if isinstance(ref, tuple) else (ref,)
            assert len(got) == len(ref), (path, len(got), len(ref))
            for g, r in zip(got, ref):
                r = r.numpy()
                assert g.shape == r.shape, (path, g.shape, r.shape)
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=path)
                max_diff = max(max_diff, float(np.abs(g - r).max()))
    return model, max_diff


def split_ops(model):
    """Op types in graph order, split into those on the data path and those
    only in constant subgraphs (all inputs initializers/constants, or a Shape
    of a statically shaped tensor) that a converter folds away."""
    const = {init.name for init in model.graph.initializer} | {""}
    data_ops, const_ops = [], []
    for node in model.graph.node:
        is_const = node.op_type == "Shape" or all(i in const for i in node.input)
        if is_const:
            const.update(node.output)
        target = const_ops if is_const else data_ops
        if node.op_type not in target:
            target.append(node.op_type)
    return data_ops, const_ops


def describe_io(vis):
    out = []
    for v in vis:
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
        out.append(f"`{v.name}` [{','.join(str(d) for d in dims)}]")
    return ", ".join(out)


# name, builder, data_fn, loss, opset, dynamo, wrapper, description
SPECS = [
    ("cnn1d", Cnn1d, lambda r, n: tone_signals(r, n, 1, 128, 4), ce_loss, 13, False, WithSoftmax,
     "Conv1d+BN+ReLU (stride 2, dilation 2), MaxPool1d, Flatten -> Linear -> Softmax; 4-class tone classifier"),
    ("cnn2d", Cnn2d, lambda r, n: bar_images(r, n, 1, 28, 4), ce_loss, 14, False, WithSoftmax,
     "Conv2d+BN+ReLU (pad 1), AvgPool2d, MaxPool2d, Flatten -> Linear -> Linear -> Softmax; 28x28 bar orientation"),
    ("dwsep", DwSep, lambda r, n: bar_images(r, n, 3, 16, 4), ce_loss, 15, False, WithSoftmax,
     "depthwise (groups=C) + pointwise blocks, ReLU6 (Clip), HardSwish, GlobalAvgPool -> Linear -> Softmax"),
    ("resnet1d", ResNet1d, lambda r, n: tone_signals(r, n, 1, 96, 4), ce_loss, 16, False, WithSoftmax,
     "residual blocks: Add with identity skip and with strided 1x1 projection skip, ReLU after Add"),
    ("mlp", Mlp, lambda r, n: tabular(r, n), bce_logits_loss, 17, False, WithSigmoid,
     "Linear/BatchNorm1d/ReLU/Dropout MLP on 30 features -> Linear(1) -> Sigmoid"),
    ("autoencoder", AutoEncoder, lambda r, n: beat_like(r, n), mse_loss, 13, False, None,
     "MLP autoencoder 140-32-8-32-140, Tanh/LeakyReLU, linear (regression) output"),
    ("matmul_add", MatMulAdd, lambda r, n: feature_sequences(r, n), ce_loss, 14, False, WithSoftmax,
     "`x @ W + b` on a 3-D [1,16,12] input (MatMul+Add), ReLU, Flatten -> Linear -> Softmax"),
    ("heads", Heads, lambda r, n: heads_data(r, n), heads_loss, 15, False, None,
     "LeakyReLU + HardSigmoid trunk, two branches Concat on channels, two outputs (Tanh [1,2], Sigmoid [1,1])"),
    ("cnn1d_dynamo", Cnn1d, lambda r, n: tone_signals(r, n, 1, 128, 4), ce_loss, None, True, WithSoftmax,
     "the cnn1d architecture exported with the dynamo (torch.export) exporter, default settings"),
    ("gemm_transb_pad", GemmTransBPad, multi_label_tones, gemm_pad_loss, 11, False, None,
     "opset 11: Linear as Gemm transB=1, explicit constant F.pad, Conv1d groups=2, 3 Sigmoid outputs"),
]

OUTPUT_NAMES = {"heads": ["level", "spike"]}
# The HardSigmoid trunk of `heads` needs longer to learn the spike detector.
TRAIN_STEPS_OVERRIDE = {"heads": 1500}
# cnn1d_dynamo reuses cnn1d's seed, so it has bit-identical weights and
# calib/test data: both exports of the same network can be compared directly.
SEED_FROM = {"cnn1d_dynamo": "cnn1d"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", nargs="*", help="build only these models (README is then not rewritten)")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    import onnx

    rows = []
    for name, builder, data_fn, loss_fn, opset, dynamo, wrapper, desc in SPECS:
        if args.only and name not in args.only:
            continue
        seed_name = SEED_FROM.get(name, name)
        seed = BASE_SEED + 101 * [s[0] for s in SPECS].index(seed_name)
        torch.manual_seed(seed)
        np.random.seed(seed)
        net = builder()
        final_loss = train(net, data_fn, loss_fn, seed, TRAIN_STEPS_OVERRIDE.get(name, TRAIN_STEPS))
        exported = (wrapper(net) if wrapper else net).eval()

        calib, _ = data_fn(np.random.default_rng(seed + 1), N_SAMPLES)
        test, test_target = data_fn(np.random.default_rng(seed + 2), N_SAMPLES)
        calib = np.ascontiguousarray(calib, dtype=np.float32)
        test = np.ascontiguousarray(test, dtype=np.float32)

        path = os.path.join(args.out, f"{name}.onnx")
        outs = OUTPUT_NAMES.get(name, ["output"])
        export(exported, torch.from_numpy(test[:1]), path, opset, dynamo, ["input"], outs)
        model, max_diff = verify(path, exported, test, "input")
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)

        # A rough quality figure so a reader can tell the model learned something.
        with torch.no_grad():
            out = net(torch.from_numpy(test))
        if loss_fn is ce_loss:
            quality = f"test acc {float((out.argmax(1).numpy() == test_target).mean()):.2f}"
        elif loss_fn is bce_logits_loss:
            quality = f"test acc {float(((out.numpy() > 0) == (test_target > 0.5)).mean()):.2f}"
        elif loss_fn is gemm_pad_loss:
            quality = f"test label acc {float(((out.numpy() > 0.5) == (test_target > 0.5)).mean()):.2f}"
        elif loss_fn is heads_loss:
            lv, sp = out
            quality = (f"level mse {float(((lv.numpy() - test_target[0]) ** 2).mean()):.3f}, "
                       f"spike acc {float(((sp.numpy() > 0.5) == (test_target[1] > 0.5)).mean()):.2f}")
        else:
            quality = f"test mse {float(((out.numpy() - test_target) ** 2).mean()):.3f}"

        ops, const_ops = split_ops(model)
        unsupported = sorted(set(ops) - SUPPORTED_OPS)
        n_params = sum(p.numel() for p in net.parameters())
        row = {
            "name": name,
            "opset": opset_of(model),
            "exporter": "dynamo" if dynamo else "legacy (TorchScript)",
            "inputs": describe_io(model.graph.input),
            "outputs": describe_io(model.graph.output),
            "params": n_params,
            "bytes": os.path.getsize(path),
            "ops": ops,
            "const_ops": const_ops,
            "unsupported": unsupported,
            "desc": desc,
            "quality": quality,
            "max_diff": max_diff,
        }
        rows.append(row)
        print(f"{name:16s} opset {row['opset']:2d} params {n_params:6d} onnx {row['bytes']:7d} B "
              f"train loss {final_loss:.3f} {quality} max|onnx-torch| {max_diff:.2e} ops {ops}"
              + (f" const-only {const_ops}" if const_ops else "")
              + (f" UNSUPPORTED {unsupported}" if unsupported else ""))

    if not args.only:
        write_readme(os.path.join(args.out, "README.md"), rows)
    return 0


def write_readme(path, rows):
    lines = [
        "# Test networks the converter has never seen",
        "",
        "Generated by `make_testnets.py` (do not edit by hand; rerun the script).",
        "Each model is a small PyTorch network briefly trained (seeded, CPU) on a synthetic",
        "task so that its weights, BatchNorm running statistics and activations are realistic.",
        "All graphs have a static batch of 1. For each `<name>`:",
        "",
        "- `<name>.onnx` — the exported graph;",
        "- `<name>_calib.npy` — float32 `[64, ...input shape without batch]`, calibration inputs;",
        "- `<name>_test.npy` — float32 `[64, ...]`, different inputs from the same distribution.",
        "",
        "Every export is checked with `onnx.checker.check_model(full_check=True)` and with",
        "`onnx.reference.ReferenceEvaluator` against PyTorch on all 64 test inputs",
        "(rtol 1e-4, atol 1e-5).",
        "",
        "## Models",
        "",
        "| model | opset | exporter | inputs | outputs | params | .onnx bytes | synthetic-task quality | what it covers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| `{r['name']}` | {r['opset']} | {r['exporter']} | {r['inputs']} | {r['outputs']} | "
            f"{r['params']} | {r['bytes']} | {r['quality']} | {r['desc']} |"
        )
    lines += [
        "",
        "## ONNX op types per model (in graph order of first appearance)",
        "",
        "| model | data-path op types | constant-subgraph op types (fold away) | data-path ops outside the converter's op set |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        uns = ", ".join(f"`{o}`" for o in r["unsupported"]) or "—"
        cops = ", ".join(f"`{o}`" for o in r["const_ops"]) or "—"
        lines.append(f"| `{r['name']}` | {', '.join(f'`{o}`' for o in r['ops'])} | {cops} | {uns} |")
    lines += [
        "",
        "Notes:",
        "",
        "- Both exporters fold eval-mode BatchNorm into the preceding Conv, so",
        "  `BatchNormalization` (eval, `training_mode=0`, 5 inputs) only survives after a Gemm (`mlp`).",
        "- `Dropout` disappears in eval-mode export.",
        "- `dwsep`: ReLU6 becomes `Clip` whose min/max come from `Constant` nodes (not initializers).",
        "- `cnn2d`: two Gemms back to back with no activation between them.",
        "- `cnn1d_dynamo`: dynamo exporter with its defaults (`torch.onnx.export(..., dynamo=True)`),",
        "  which picks its own opset (20 with torch 2.15) instead of 13-17. It has the *same weights",
        "  and the same calib/test data* as `cnn1d`, so both should convert to the same quantized model.",
        "  Flatten is exported as `Reshape` (`allowzero=1`, shape from an int64 initializer) and the",
        "  graph carries `value_info` for intermediate tensors.",
        "- `gemm_transb_pad` (opset 11): the Pad `pads` input is computed by an unfolded constant",
        "  subgraph (`ConstantOfShape`, `Concat`, `Reshape`, `Slice`, `Transpose`, `Cast`); the",
        "  second Pad has an empty (omitted) `constant_value` input; and the exporter declares the",
        "  output shape as `[Sigmoidoutput_dim_0, 3]` (symbolic) although the input is static `[1,2,100]`.",
        "",
        "## Input/output nets (`make_io_testnets.py`)",
        "",
        "`make_io_testnets.py` (numpy, `onnx`, onnxruntime; no PyTorch) writes four more models in",
        "the graph shapes PyTorch's exporter gives them, trained by the script itself (seeded numpy",
        "backpropagation; the GRU keeps fixed random weights and trains its head). Unlike the nets",
        "above, their batch is symbolic, and `value_info` names the symbols:",
        "",
        "| model | inputs | outputs | what it covers |",
        "| --- | --- | --- | --- |",
        "| `eeg_symbolic` | `eeg` [batch,4,time] | `probs` [batch,3] | `time` fixed by `--input-shape eeg=1,4,128`; a positional channel from `Shape`, `Gather`, `Cast`, `Range`, `Div`, `Unsqueeze`, `Expand`; `x.view(x.size(0), -1)` as `Shape`, `Slice`, `Concat`, `Reshape`; two Conv1d, GlobalAveragePool, Gemm, Softmax |",
        "| `gru_state` | `x` [batch,time,6] | `probs` [batch,3] | batch-first GRU: `Transpose`, zero initial state from `Shape`, `Gather`, `Unsqueeze`, `Concat`, `ConstantOfShape`; `Y_h`, `Squeeze`, Gemm, Softmax |",
        "| `gru_seq_first` | `x` [time,batch,6] | `probs` [batch,3] | sequence-first GRU (`nn.GRU` without `batch_first`): the GRU reads the input as is, the zero state's batch from `Shape`, `Gather(1)`; its samples stack whole inputs, `[64, 40, 1, 6]` (dimension 0 is time, not a batch) |",
        "| `fusion` | `ecg` [batch,1,256], `ppg` [batch,1,128] | `hr` [batch,1], `rhythm` [batch,3] | two inputs (one `--calib`/`--eval` file each: `fusion_ecg_*.npy`, `fusion_ppg_*.npy`), two Conv1d branches, Concat, a shared Gemm, a regression head and a Softmax head (labels `fusion_test_y.npy`) |",
        "",
        "```sh",
        "pip install numpy onnx onnxruntime",
        "python3 models/testnets/make_io_testnets.py",
        "```",
        "",
        "## Regenerate",
        "",
        "```sh",
        "pip install -r models/requirements.txt   # torch (CPU), numpy, onnx, onnxscript",
        "python3 models/testnets/make_testnets.py",
        "```",
        "",
        "Output is deterministic for a fixed torch/onnx version (seeded, deterministic",
        "algorithms, one thread).",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
