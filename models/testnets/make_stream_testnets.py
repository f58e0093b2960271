#!/usr/bin/env python3
"""Build the converter's streaming recurrent test models: a wearable that
classifies a signal window by window carries its recurrent state from one
window to the next, so the exported model takes the state as inputs and
returns the new one.

  gru_stream    inputs "x" [1, 4, 40] (4 channels, a 40-sample window) and
                "h0" [1, 1, 16] (the GRU's state, [layers, batch, hidden]);
                outputs "logits" [1, 3] (a Linear of the last step) and "hn"
                [1, 1, 16]. nn.GRU(4, 16, batch_first=True).
  lstm_stream   the same with nn.LSTM and its cell state: inputs "x", "h0",
                "c0", outputs "logits", "hn", "cn".

Both legacy exporter, opset 17 (GRU/LSTM with initial_h, initial_c computed
from model inputs, and the LSTM's Y_c output). Both are trained (Adam, 400
steps, on whole streams) to tell which of three rhythms a synthetic 4-channel
signal carries. The samples are consecutive windows of streams run through
the float model, each window's state inputs being the state the previous
window returned (zero for a stream's first window), as a device runs it.

This writes, next to this script:

  gru_stream.onnx, lstm_stream.onnx
  stream_x_calib.npy   float32 [48, 4, 40]  windows (6 streams of 8)
  stream_x_test.npy    float32 [48, 4, 40]  held-out windows, same distribution
  stream_test_y.npy    int64 [48]           their classes
  {gru,lstm}_stream_h0_{calib,test}.npy   float32 [48, 1, 16] state inputs
  lstm_stream_c0_{calib,test}.npy         float32 [48, 1, 16] cell-state inputs

and checks each export with onnx.checker and with onnxruntime against
PyTorch on every test window. Reruns give byte-identical files.

Usage: python3 models/testnets/make_stream_testnets.py [--out DIR]
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn as nn

CH, WIN, HID, CLASSES = 4, 40, 16, 3
WINDOWS = 8  # per stream


class GruStream(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(CH, HID, batch_first=True)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, h0):
        y, hn = self.rnn(x.transpose(1, 2), h0)
        return self.fc(y[:, -1]), hn


class LstmStream(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(CH, HID, batch_first=True)
        self.fc = nn.Linear(HID, CLASSES)

    def forward(self, x, h0, c0):
        y, (hn, cn) = self.rnn(x.transpose(1, 2), (h0, c0))
        return self.fc(y[:, -1]), hn, cn


def streams(rng, n):
    """`n` streams of WINDOWS windows [n, WINDOWS, CH, WIN] and their classes:
    a rhythm of period 8, 13 or 21 samples on every channel (its own phase and
    amplitude per channel), a slow drift, and noise."""
    t = np.arange(WINDOWS * WIN)
    x = np.zeros((n, CH, WINDOWS * WIN), np.float32)
    y = rng.permutation(np.arange(n) % CLASSES)
    for i in range(n):
        period = [8, 13, 21][y[i]]
        for c in range(CH):
            a = rng.uniform(0.5, 2.0)
            x[i, c] = a * np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
            x[i, c] += 0.5 * np.sin(2 * np.pi * t / 300 + rng.uniform(0, 6))
            x[i, c] += 0.3 * rng.standard_normal(t.size)
    windows = x.reshape(n, CH, WINDOWS, WIN).transpose(0, 2, 1, 3).copy()
    return windows, y


def run_stream(net, windows, lstm):
    """Each window of each stream with the state the previous one returned:
    the windows flattened [n·WINDOWS, CH, WIN] and the states they start
    from, [n·WINDOWS, 1, HID] each."""
    h0s, c0s = [], []
    with torch.no_grad():
        for s in windows:
            h = torch.zeros(1, 1, HID)
            c = torch.zeros(1, 1, HID)
            for w in s:
                h0s.append(h[0].numpy().copy())
                c0s.append(c[0].numpy().copy())
                x = torch.from_numpy(w[None])
                if lstm:
                    _, h, c = net(x, h, c)
                else:
                    _, h = net(x, h)
    flat = windows.reshape(-1, CH, WIN)
    return flat, np.stack(h0s).astype(np.float32), np.stack(c0s).astype(np.float32)


def train(net, rng, steps, lstm):
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        w, y = streams(rng, 16)
        h = torch.zeros(1, 16, HID)
        c = torch.zeros(1, 16, HID)
        loss = 0.0
        for k in range(WINDOWS):
            x = torch.from_numpy(w[:, k])
            if lstm:
                logits, h, c = net(x, h, c)
            else:
                logits, h = net(x, h)
            loss = loss + loss_fn(logits, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def export(net, args, names, outputs, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, args, path, dynamo=False, opset_version=17, do_constant_folding=True,
            input_names=names, output_names=outputs,
        )


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
            got = sess.run(None, feed)
            want = net(*(torch.from_numpy(v[i : i + 1]) for v in inputs))
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)
    return [n.op_type for n in onnx.load(path).graph.node]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261208)
    calib_w, _ = streams(rng, 6)
    test_w, test_y = streams(rng, 6)
    out = lambda f: os.path.join(args.out, f)
    x_calib, x_test = calib_w.reshape(-1, CH, WIN), test_w.reshape(-1, CH, WIN)
    np.save(out("stream_x_calib.npy"), x_calib)
    np.save(out("stream_x_test.npy"), x_test)
    np.save(out("stream_test_y.npy"), np.repeat(test_y, WINDOWS).astype(np.int64))
    for k, (name, make, lstm) in enumerate([("gru_stream", GruStream, False), ("lstm_stream", LstmStream, True)]):
        torch.manual_seed(100 + k)
        net = train(make(), np.random.default_rng(100 + k), 400, lstm)
        _, h_calib, c_calib = run_stream(net, calib_w, lstm)
        _, h_test, c_test = run_stream(net, test_w, lstm)
        np.save(out(f"{name}_h0_calib.npy"), h_calib)
        np.save(out(f"{name}_h0_test.npy"), h_test)
        names, outputs = ["x", "h0"], ["logits", "hn"]
        inputs = [x_test, h_test]
        example = (torch.from_numpy(x_calib[:1]), torch.zeros(1, 1, HID))
        if lstm:
            np.save(out(f"{name}_c0_calib.npy"), c_calib)
            np.save(out(f"{name}_c0_test.npy"), c_test)
            names, outputs = names + ["c0"], outputs + ["cn"]
            inputs.append(c_test)
            example = example + (torch.zeros(1, 1, HID),)
        path = out(f"{name}.onnx")
        export(net, example, names, outputs, path)
        ops = verify(path, net, inputs, names)
        with torch.no_grad():
            # The windows as one batch: states [1, N, HID].
            x, *states = (torch.from_numpy(v) for v in inputs)
            logits = net(x, *(s.transpose(0, 1) for s in states))[0]
        acc = float((logits.argmax(1).numpy() == np.repeat(test_y, WINDOWS)).mean())
        print(f"{name}: {os.path.getsize(path)} B, test accuracy {acc:.3f}, ops {ops}")


if __name__ == "__main__":
    main()
