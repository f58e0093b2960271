#!/usr/bin/env python3
"""Build the converter's attention / transformer test models.

Small PyTorch biosignal models of the kind a medical ML team exports today,
each briefly trained (seeded, CPU) on a synthetic task so that weights,
LayerNorm statistics and attention scores look like a real model's:

  ecg_transformer         input "ecg" [1, 1, 256]: Conv1d stem (kernel 8,
                          stride 8 -> 32 tokens of 32 channels), transpose to
                          [1, 32, 32], learned positional embedding (an
                          nn.Parameter added), one nn.TransformerEncoderLayer
                          (d_model 32, 4 heads, feed-forward 64, GELU, post-norm),
                          mean over tokens, Linear -> Softmax over 4 rhythm
                          classes. Legacy (TorchScript) exporter, opset 17.
  attn_pool               input "x" [1, 8, 64] (8 EEG channels x 64 samples):
                          Conv1d(8->16, k5, pad 2) + ReLU, transpose to
                          [1, 64, 16], hand-written single-head self-attention
                          (q @ k^T / sqrt(16), softmax, @ v) with a residual
                          add, attention pooling (softmax over time of
                          Linear(16, 1), weights^T @ h), Linear -> Softmax over
                          3 classes. Legacy exporter, opset 14.
  ecg_transformer_dynamo  the ecg_transformer network (same seed, so the same
                          weights and calib/test data) exported with the dynamo
                          (torch.export) exporter, default settings.

For each model `<name>` this writes, next to this script:

  <name>.onnx        exported graph (static batch 1)
  <name>_calib.npy   float32 [64, *input_shape[1:]] calibration inputs
  <name>_test.npy    float32 [64, *input_shape[1:]] different inputs, same distribution

and checks each export with `onnx.checker.check_model(full_check=True)` and
with onnxruntime against PyTorch on all 64 test inputs (rtol 1e-4, atol 1e-5,
the dynamo export too). The dynamo exporter's per-node debug metadata (stack
traces with absolute paths) is stripped so the file stays small and does not
depend on where the checkout lives. The README section for these models is
written by hand from this script's printout (`--markdown` prints the tables).
Reruns give byte-identical files (seeded, deterministic algorithms, one thread).

Usage: python3 models/testnets/make_attention_testnets.py [--out DIR] [--only NAME ...] [--markdown]
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

BASE_SEED = 4321
N_SAMPLES = 64
TRAIN_STEPS = 400
BATCH = 32

# The converter's supported op set (see the project README's op table).
SUPPORTED_OPS = {
    "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
    "Conv", "ConvTranspose", "Div", "Dropout", "Erf", "Exp", "Flatten", "Gather", "Gelu", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "GRU", "HardSigmoid", "HardSwish", "Identity",
    "LayerNormalization", "LeakyRelu", "LSTM", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg",
    "Pad", "Pow", "Reciprocal", "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape",
    "Resize", "Shape", "Sigmoid", "Size", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub",
    "Tanh", "Transpose", "Unsqueeze",
}


# ---------------------------------------------------------------------------
# Synthetic data. Every generator takes a numpy Generator and a count and
# returns (x float32 [n, *shape], y int64 [n]) with a learnable relationship.
# ---------------------------------------------------------------------------


def smooth_noise_1d(rng, n, c, length, cutoff):
    """Low-pass filtered white noise, unit std per row: a smooth 'background'."""
    spec = np.fft.rfft(rng.standard_normal((n, c, length)), axis=-1)
    spec[..., cutoff:] = 0
    sig = np.fft.irfft(spec, n=length, axis=-1)
    sig /= sig.std(axis=-1, keepdims=True) + 1e-8
    return sig


def ecg_rhythms(rng, n, length=256, n_classes=4):
    """Single-lead ECG strips (think 4 s at 64 Hz), z-normalised per strip.
    Every beat is a P wave, a sharp QRS complex and a broad T wave with
    jittered amplitudes; the class is the rhythm:
      0 normal sinus (RR ~ 48 samples), 1 tachycardia (RR ~ 28),
      2 bradycardia (RR ~ 80), 3 irregular (RR uniform in [24, 84] per beat).
    Baseline wander and white noise on top."""
    y = rng.integers(0, n_classes, n)
    t = np.arange(length, dtype=np.float64)
    x = np.zeros((n, 1, length))
    waves = ((-9.0, 2.5, 0.15), (-1.2, 0.8, -0.15), (0.0, 0.9, 1.0), (1.3, 0.9, -0.25), (12.0, 4.0, 0.3))
    for i in range(n):
        mean_rr = (48.0, 28.0, 80.0, None)[y[i]]
        pos = rng.uniform(-40.0, 0.0)
        amp = rng.uniform(0.7, 1.3)
        while pos < length + 20:
            for centre, width, a in waves:
                c = pos + centre * rng.uniform(0.9, 1.1)
                x[i, 0] += amp * a * rng.uniform(0.85, 1.15) * np.exp(-0.5 * ((t - c) / width) ** 2)
            rr = rng.uniform(24.0, 84.0) if mean_rr is None else mean_rr * rng.uniform(0.95, 1.05)
            pos += rr
        f = rng.uniform(0.2, 1.0)  # baseline wander, cycles per strip
        x[i, 0] += rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * f * t / length + rng.uniform(0, 6.3))
    x += 0.03 * rng.standard_normal(x.shape)
    x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    return x.astype(np.float32), y.astype(np.int64)


def eeg_events(rng, n, c=8, length=64, n_classes=3):
    """8-channel EEG windows, z-normalised per channel: smooth background
    activity, plus at a random time one transient on a random spatial
    pattern of channels. Class 0 no event, 1 a spike-and-slow-wave, 2 a
    spindle-like burst (about 10 cycles per 64 samples under a Gaussian
    envelope). The event occupies a few samples only, so the model must find it."""
    y = rng.integers(0, n_classes, n)
    t = np.arange(length, dtype=np.float64)
    x = 0.8 * smooth_noise_1d(rng, n, c, length, 6) + 0.2 * smooth_noise_1d(rng, n, c, length, 24)
    for i in range(n):
        centre = rng.uniform(8.0, length - 8.0)
        gain = rng.uniform(0.0, 1.0, c) * (rng.random(c) < 0.7)
        gain[rng.integers(0, c)] = 1.0  # at least one channel shows the event clearly
        strength = rng.uniform(1.5, 2.5)
        if y[i] == 1:
            ev = 2.5 * np.exp(-0.5 * ((t - centre) / 0.9) ** 2) - 1.0 * np.exp(-0.5 * ((t - centre - 5.0) / 3.0) ** 2)
        elif y[i] == 2:
            f = rng.uniform(0.14, 0.18)  # cycles per sample
            ev = np.exp(-0.5 * ((t - centre) / 5.0) ** 2) * np.sin(2 * np.pi * f * (t - centre) + rng.uniform(0, 6.3))
        else:
            ev = np.zeros(length)
        x[i] += strength * gain[:, None] * ev[None, :]
    x += 0.1 * rng.standard_normal(x.shape)
    x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    return x.astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class EcgTransformer(nn.Module):
    """Conv1d patch stem -> tokens + learned positions -> one post-norm
    TransformerEncoderLayer -> mean over tokens -> Linear (logits)."""

    def __init__(self, classes=4, d_model=32, tokens=32):
        super().__init__()
        self.stem = nn.Conv1d(1, d_model, kernel_size=8, stride=8)  # 256 -> 32 tokens
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens, d_model))
        self.encoder = nn.TransformerEncoderLayer(
            d_model=d_model, nhead=4, dim_feedforward=64, dropout=0.0, activation="gelu", batch_first=True,
        )
        self.fc = nn.Linear(d_model, classes)

    def forward(self, x):  # x: [B, 1, 256]
        h = self.stem(x).transpose(1, 2) + self.pos  # [B, 32, 32]
        h = self.encoder(h)
        return self.fc(h.mean(dim=1))


class AttnPool(nn.Module):
    """Conv1d front end, hand-written single-head self-attention with a
    residual, then attention pooling over time -> Linear (logits)."""

    def __init__(self, c=8, d=16, classes=3):
        super().__init__()
        self.conv = nn.Conv1d(c, d, 5, padding=2)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.score = nn.Linear(d, 1)
        self.fc = nn.Linear(d, classes)
        self.d = d

    def forward(self, x):  # x: [B, 8, 64]
        h = F.relu(self.conv(x)).transpose(1, 2)  # [B, 64, 16]
        q, k, v = self.q(h), self.k(h), self.v(h)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d)  # [B, 64, 64]
        h = h + torch.softmax(scores, dim=-1) @ v
        w = torch.softmax(self.score(h), dim=1)  # [B, 64, 1]
        pooled = w.transpose(1, 2) @ h  # [B, 1, 16]
        return self.fc(torch.flatten(pooled, 1))


class WithSoftmax(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


# ---------------------------------------------------------------------------
# Training / export / verification
# ---------------------------------------------------------------------------


def train(net, data_fn, seed, steps=TRAIN_STEPS):
    """Brief Adam training (cross-entropy) on a seeded synthetic pool;
    returns the final loss."""
    rng = np.random.default_rng(seed)
    x, y = data_fn(rng, steps * BATCH // 4)  # pool reused ~4x
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (BATCH,), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return loss.item()


def opset_of(model):
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export(net, example, path, opset, dynamo, input_names, output_names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            # Default dynamo export as a torch 2.x user would call it.
            prog = torch.onnx.export(
                net, (example,), dynamo=True, input_names=input_names, output_names=output_names,
                verbose=False,
            )
            prog.save(path)
            # The dynamo exporter puts debug metadata on every node (module
            # path, FX node, Python stack trace with absolute file paths):
            # half the file, and it changes with the checkout's location.
            # Strip it; the graph itself is untouched.
            import onnx

            model = onnx.load(path)
            for node in model.graph.node:
                del node.metadata_props[:]
            onnx.save(model, path)
        else:
            # Export traces with grad enabled and the parameters requiring
            # grad, so nn.TransformerEncoderLayer does not take its fused fast
            # path (torch._transformer_encoder_layer_fwd): the graph gets plain
            # MatMul/Softmax/LayerNormalization nodes (checked in main()). The
            # PyTorch reference in verify() runs under no_grad, i.e. the fused
            # kernel, so the comparison also checks the two paths agree.
            torch.onnx.export(
                net, (example,), path, dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=input_names, output_names=output_names,
            )


def verify(path, net, test_x, input_name, atol=1e-5):
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
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
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=atol, err_msg=path)
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


# name, builder, data_fn, opset, dynamo, input name, description
SPECS = [
    ("ecg_transformer", EcgTransformer, ecg_rhythms, 17, False, "ecg",
     "Conv1d stem (k8, s8) -> 32 tokens, learned positional embedding (Add), one "
     "`nn.TransformerEncoderLayer` (d_model 32, 4 heads, FF 64, GELU, post-norm), mean over tokens, "
     "Linear -> Softmax; 4 ECG rhythm classes"),
    ("attn_pool", AttnPool, eeg_events, 14, False, "x",
     "Conv1d+ReLU, hand-written single-head self-attention (`q @ k^T / sqrt(16)`, softmax, `@ v`) "
     "with residual, attention pooling (softmax over time, `w^T @ h`), Linear -> Softmax; 3 EEG event classes"),
    ("ecg_transformer_dynamo", EcgTransformer, ecg_rhythms, None, True, "ecg",
     "the ecg_transformer network (same weights, same calib/test data) exported with the dynamo "
     "exporter, default settings"),
]

# ecg_transformer_dynamo reuses ecg_transformer's seed: bit-identical weights
# and calib/test data, so both exports of one network can be compared.
SEED_FROM = {"ecg_transformer_dynamo": "ecg_transformer"}
# The attention pooling of attn_pool needs longer to find the events.
TRAIN_STEPS_OVERRIDE = {"attn_pool": 1000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", nargs="*", help="build only these models")
    ap.add_argument("--markdown", action="store_true", help="print README table rows")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    rows = []
    for name, builder, data_fn, opset, dynamo, input_name, desc in SPECS:
        if args.only and name not in args.only:
            continue
        seed_name = SEED_FROM.get(name, name)
        seed = BASE_SEED + 101 * [s[0] for s in SPECS].index(seed_name)
        torch.manual_seed(seed)
        np.random.seed(seed)
        net = builder()
        final_loss = train(net, data_fn, seed, TRAIN_STEPS_OVERRIDE.get(name, TRAIN_STEPS))
        exported = WithSoftmax(net).eval()

        calib, _ = data_fn(np.random.default_rng(seed + 1), N_SAMPLES)
        test, test_y = data_fn(np.random.default_rng(seed + 2), N_SAMPLES)
        calib = np.ascontiguousarray(calib, dtype=np.float32)
        test = np.ascontiguousarray(test, dtype=np.float32)

        path = os.path.join(args.out, f"{name}.onnx")
        export(exported, torch.from_numpy(test[:1]), path, opset, dynamo, [input_name], ["probs"])
        model, max_diff = verify(path, exported, test, input_name)
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)

        with torch.no_grad():
            out = net(torch.from_numpy(test))
        quality = f"test acc {float((out.argmax(1).numpy() == test_y).mean()):.2f}"

        ops, const_ops = split_ops(model)
        assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), (name, "non-standard op")
        unsupported = [o for o in ops if o not in SUPPORTED_OPS]
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
        print(f"{name:22s} opset {row['opset']:2d} params {n_params:6d} onnx {row['bytes']:7d} B "
              f"train loss {final_loss:.3f} {quality} max|ort-torch| {max_diff:.2e} ops {ops}"
              + (f" const-only {const_ops}" if const_ops else "")
              + (f" UNSUPPORTED {unsupported}" if unsupported else ""))

    if args.markdown:
        print()
        print("| model | opset | exporter | inputs | outputs | params | .onnx bytes | synthetic-task quality | what it covers |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| `{r['name']}` | {r['opset']} | {r['exporter']} | {r['inputs']} | {r['outputs']} | "
                  f"{r['params']} | {r['bytes']} | {r['quality']} | {r['desc']} |")
        print()
        print("| model | data-path op types | constant-subgraph op types (fold away) | data-path ops outside the converter's op set |")
        print("| --- | --- | --- | --- |")
        for r in rows:
            uns = ", ".join(f"`{o}`" for o in r["unsupported"]) or "—"
            cops = ", ".join(f"`{o}`" for o in r["const_ops"]) or "—"
            print(f"| `{r['name']}` | {', '.join(f'`{o}`' for o in r['ops'])} | {cops} | {uns} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
