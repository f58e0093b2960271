#!/usr/bin/env python3
"""Build the converter's masked test models: recordings of different lengths
padded to one window, with the valid part given to the model as a second
input, the way a team exports a model trained on variable-length batches.

  masked_attention  inputs "x" [1, 4, 40] (4 channels, zero-padded past the
                    recording) and "mask" bool [1, 40] (True on valid
                    samples); output "logits" [1, 3]. Conv1d, ReLU, one
                    attention head whose scores are masked_fill(~mask, -inf)
                    before the Softmax, and a mean over the valid steps.
  mha_padding       inputs "x" and "mask" as masked_attention's; output
                    "logits" [1, 3]. Conv1d, ReLU, nn.MultiheadAttention (2
                    heads) with key_padding_mask=~mask (the mask added to the
                    scores as a bias of 0 and -inf, broadcast over the heads),
                    a mean over the valid steps.
  lead_embedding    inputs "x" [1, 4, 40] and "lead" int64 [1] (which of 12
                    leads the recording comes from); output "logits" [1, 3].
                    Conv1d, ReLU, a mean over time plus nn.Embedding(12, 16)
                    of the lead.
  length_pool       inputs "x" [1, 4, 40] and "lengths" int64 [1] (valid
                    samples); output "logits" [1, 3]. Conv1d, ReLU, the mask
                    built in forward as `arange(40) < lengths`, a masked mean.

Both legacy exporter, opset 17: Where on a condition computed from a model
input, Not/Equal/Less on computed tensors, boolean and integer graph inputs.
Both are trained (Adam, 300 steps) to tell which of three rhythms a signal of
20 to 40 samples carries (zeros after its end).

This writes, next to this script:

  masked_attention.onnx, mha_padding.onnx, length_pool.onnx, lead_embedding.onnx
  mask_x_{calib,test}.npy        float32 [96 or 48, 4, 40]  padded recordings
  mask_{calib,test}.npy          bool [96 or 48, 40]        valid samples
  mask_lengths_{calib,test}.npy  float32 [96 or 48]         their counts (medq
                                                           reads float or bool)
  mask_lead_{calib,test}.npy     float32 [96 or 48]         lead numbers
  mask_test_y.npy                int64 [48]                 classes

and checks each export with onnx.checker and with onnxruntime against
PyTorch on every test recording. Reruns give byte-identical files.

Usage: python3 models/testnets/make_mask_input_testnets.py [--out DIR]
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn as nn

CH, WIN, HID, CLASSES, LEADS = 4, 40, 16, 3, 12


class MaskedAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(CH, HID, 5, padding=2)
        self.q = nn.Linear(HID, HID)
        self.k = nn.Linear(HID, HID)
        self.v = nn.Linear(HID, HID)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, mask):
        h = torch.relu(self.conv(x)).transpose(1, 2)
        scores = self.q(h) @ self.k(h).transpose(1, 2) / HID**0.5
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        a = scores.softmax(-1) @ self.v(h)
        m = mask[:, :, None].float()
        return self.fc((a * m).sum(1) / m.sum(1))


class MhaPadding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(CH, HID, 5, padding=2)
        self.mha = nn.MultiheadAttention(HID, 2, batch_first=True)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, mask):
        h = torch.relu(self.conv(x)).transpose(1, 2)
        a, _ = self.mha(h, h, h, key_padding_mask=~mask, need_weights=False)
        m = mask[:, :, None].float()
        return self.fc((a * m).sum(1) / m.sum(1))


class LeadEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(CH, HID, 5, padding=2)
        self.lead = nn.Embedding(LEADS, HID)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, lead):
        return self.fc(torch.relu(self.conv(x)).mean(2) + self.lead(lead))


class LengthPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(CH, HID, 5, padding=2)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, lengths):
        h = torch.relu(self.conv(x))
        m = (torch.arange(WIN)[None, :] < lengths[:, None]).float()
        return self.fc((h * m[:, None, :]).sum(2) / lengths[:, None].float())


def recordings(rng, n):
    """`n` padded recordings [n, CH, WIN], their lengths and classes: a rhythm
    of period 5, 8 or 13 samples on every channel (its own phase and
    amplitude), noise, zeros past the recording's end."""
    t = np.arange(WIN)
    x = np.zeros((n, CH, WIN), np.float32)
    lengths = rng.integers(20, WIN + 1, size=n)
    y = rng.permutation(np.arange(n) % CLASSES)
    for i in range(n):
        period = [5, 8, 13][y[i]]
        for c in range(CH):
            a = rng.uniform(0.5, 2.0)
            x[i, c] = a * np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
            x[i, c] += 0.3 * rng.standard_normal(WIN)
        x[i, :, lengths[i]:] = 0.0
    return x, lengths, y


def second_input(lengths, kind):
    if kind == "mask":
        return np.arange(WIN)[None, :] < lengths[:, None]
    if kind == "lead":
        # A lead number per recording, drawn from its length (any fixed rule).
        return (lengths * 7 % LEADS).astype(np.int64)
    return lengths.astype(np.int64)


def train(net, rng, kind, steps):
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        x, lengths, y = recordings(rng, 32)
        logits = net(torch.from_numpy(x), torch.from_numpy(second_input(lengths, kind)))
        loss = loss_fn(logits, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def verify(path, net, inputs, names):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for i in range(inputs[0].shape[0]):
            feed = {n: v[i : i + 1] for n, v in zip(names, inputs)}
            got = sess.run(None, feed)[0]
            want = net(*(torch.from_numpy(v[i : i + 1]) for v in inputs))
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
    return [n.op_type for n in onnx.load(path).graph.node]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261207)
    x_calib, len_calib, _ = recordings(rng, 96)
    x_test, len_test, y_test = recordings(rng, 48)
    out = lambda f: os.path.join(args.out, f)
    np.save(out("mask_x_calib.npy"), x_calib)
    np.save(out("mask_x_test.npy"), x_test)
    np.save(out("mask_calib.npy"), second_input(len_calib, "mask"))
    np.save(out("mask_test.npy"), second_input(len_test, "mask"))
    np.save(out("mask_lengths_calib.npy"), len_calib.astype(np.float32))
    np.save(out("mask_lengths_test.npy"), len_test.astype(np.float32))
    np.save(out("mask_lead_calib.npy"), second_input(len_calib, "lead").astype(np.float32))
    np.save(out("mask_lead_test.npy"), second_input(len_test, "lead").astype(np.float32))
    np.save(out("mask_test_y.npy"), y_test.astype(np.int64))
    for k, (name, make, kind) in enumerate(
        [
            ("masked_attention", MaskedAttention, "mask"),
            ("length_pool", LengthPool, "lengths"),
            ("mha_padding", MhaPadding, "mask"),
            ("lead_embedding", LeadEmbedding, "lead"),
        ]
    ):
        torch.manual_seed(200 + k)
        net = train(make(), np.random.default_rng(200 + k), kind, 300)
        names = ["x", kind]
        path = out(f"{name}.onnx")
        example = (torch.from_numpy(x_calib[:1]), torch.from_numpy(second_input(len_calib[:1], kind)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, example, path, dynamo=False, opset_version=17, do_constant_folding=True,
                input_names=names, output_names=["logits"],
            )
        test_inputs = [x_test, second_input(len_test, kind)]
        ops = verify(path, net, test_inputs, names)
        with torch.no_grad():
            logits = net(*(torch.from_numpy(v) for v in test_inputs))
        acc = float((logits.argmax(1).numpy() == y_test).mean())
        print(f"{name}: {os.path.getsize(path)} B, test accuracy {acc:.3f}, ops {sorted(set(ops))}")


if __name__ == "__main__":
    main()
