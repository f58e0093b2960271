#!/usr/bin/env python3
"""Build the converter's input/output test models: symbolic dims, shape
subgraphs, several inputs and outputs. No PyTorch: the graphs are written with
the `onnx` package in the shapes PyTorch's exporter gives such models, and
their weights are trained here (seeded, numpy, full backpropagation through
the convolutions; the GRU keeps fixed random weights and its head is
trained), so that weights and activations look like a real model's.

  eeg_symbolic   input eeg [batch, 4, time]: a positional channel from
                 Shape -> Gather -> Cast / Range -> Div -> Unsqueeze -> Expand,
                 two Conv1d, GlobalAveragePool, x.view(x.size(0), -1) as
                 Shape -> Slice -> Concat -> Reshape, Gemm, Softmax; value_info
                 names "batch" and "time" (and a symbol of its own)
  gru_state      input x [batch, time, 6], batch-first GRU: Transpose, zero
                 initial state from Shape -> Gather -> Unsqueeze -> Concat ->
                 ConstantOfShape, Y_h -> Squeeze -> Gemm -> Softmax
  gru_seq_first  input x [time, batch, 6], as nn.GRU exports without
                 batch_first: the GRU reads x as is, its zero initial state's
                 batch from Shape -> Gather(1); its samples stack whole inputs
                 ([N, time, 1, 6]), dimension 0 being time, not a batch
  fusion         inputs ecg [batch, 1, 256] and ppg [batch, 1, 128]: two Conv1d
                 branches, Concat, a shared Gemm, two heads: hr [batch, 1]
                 (regression) and rhythm [batch, 3] (Softmax)

For each model: <name>.onnx, <name>_calib.npy and <name>_test.npy (64 float32
samples each; fusion has one file per input: fusion_ecg_*.npy, fusion_ppg_*.npy,
and the rhythm labels fusion_test_y.npy). Every model is checked with
onnx.checker (full_check), against the numpy model it was trained as, and
onnxruntime against onnx's ReferenceEvaluator.

Usage: python3 models/testnets/make_io_testnets.py [--out DIR] [--only NAME ...]
"""

import argparse
import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

SEED = 20240611
N = 64          # calibration and test samples per file
N_FIT = 1024    # training samples


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def vinfo(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def smooth_noise(rng, n, c, length, cutoff=8):
    spec = np.fft.rfft(rng.standard_normal((n, c, length)), axis=-1)
    spec[..., cutoff:] = 0
    sig = np.fft.irfft(spec, n=length, axis=-1)
    return sig / (sig.std(axis=-1, keepdims=True) + 1e-8)


def tones(rng, n, c, length, classes, base=2.0, step=4.0):
    """Class k: a sinusoid in band k over smooth noise, like normalised biosignals."""
    y = rng.integers(0, classes, n)
    t = np.arange(length) / length
    freq = base + step * y + rng.uniform(-1.0, 1.0, n)
    phase = rng.uniform(0, 2 * np.pi, (n, c))
    amp = rng.uniform(0.7, 1.4, (n, c))
    x = amp[..., None] * np.sin(2 * np.pi * freq[:, None, None] * t + phase[..., None])
    x += 0.5 * smooth_noise(rng, n, c, length) + 0.1 * rng.standard_normal(x.shape)
    return x.astype(np.float32), y


# --------------------------------------------------------------------------- training
# A minimal numpy network: each layer keeps what its backward pass needs.


class Conv1d:
    def __init__(self, rng, cin, cout, k, stride=1, pad=0):
        self.w = rng.standard_normal((cout, cin, k)) * np.sqrt(2.0 / (cin * k))
        self.b = np.zeros(cout)
        self.k, self.stride, self.pad = k, stride, pad

    def params(self):
        return ["w", "b"]

    def forward(self, x):
        xp = np.pad(x, ((0, 0), (0, 0), (self.pad, self.pad)))
        self.cols = sliding_window_view(xp, self.k, axis=2)[:, :, :: self.stride, :]
        self.padded = xp.shape
        return np.einsum("nclk,ock->nol", self.cols, self.w) + self.b[None, :, None]

    def backward(self, dy):
        self.dw = np.einsum("nol,nclk->ock", dy, self.cols)
        self.db = dy.sum((0, 2))
        dcols = np.einsum("nol,ock->nclk", dy, self.w)
        dxp = np.zeros(self.padded)
        span = self.stride * (dy.shape[2] - 1) + 1
        for j in range(self.k):
            dxp[:, :, j : j + span : self.stride] += dcols[..., j]
        return dxp[:, :, self.pad : self.padded[2] - self.pad]


class Relu:
    def params(self):
        return []

    def forward(self, x):
        self.on = x > 0
        return x * self.on

    def backward(self, dy):
        return dy * self.on


class MaxPool2:
    """MaxPool1d(kernel 2, stride 2) on an even length."""

    def params(self):
        return []

    def forward(self, x):
        pairs = x.reshape(x.shape[0], x.shape[1], -1, 2)
        self.first = pairs[..., 0] >= pairs[..., 1]
        return pairs.max(-1)

    def backward(self, dy):
        return np.stack([dy * self.first, dy * ~self.first], -1).reshape(*dy.shape[:2], -1)


class GlobalAvgPool:
    """[n, c, l] -> [n, c] (the pool and the flatten after it)."""

    def params(self):
        return []

    def forward(self, x):
        self.length = x.shape[2]
        return x.mean(2)

    def backward(self, dy):
        return np.repeat(dy[:, :, None] / self.length, self.length, axis=2)


class Dense:
    def __init__(self, rng, cin, cout):
        self.w = rng.standard_normal((cout, cin)) * np.sqrt(1.0 / cin)
        self.b = np.zeros(cout)

    def params(self):
        return ["w", "b"]

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, dy):
        self.dw, self.db = dy.T @ self.x, dy.sum(0)
        return dy @ self.w


class Seq:
    def __init__(self, *layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def tensors(self):
        return [(layer, p) for layer in self.layers for p in layer.params()]


def softmax_ce(logits, y):
    """Mean cross-entropy and its gradient."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(y)
    return -np.log(p[np.arange(n), y] + 1e-12).mean(), (p - np.eye(p.shape[1])[y]) / n


def mse(out, target):
    d = out - target.reshape(out.shape)
    return (d**2).mean(), 2 * d / d.size


def train(nets, step_loss, n, rng, steps=1500, batch=64, lr=3e-3, decay=1e-3):
    """Adam with weight decay on the weights; `step_loss(index)` runs the
    forward and backward pass on those samples and returns the loss."""
    tensors = [t for net in nets for t in net.tensors()]
    m = [np.zeros_like(getattr(layer, p)) for layer, p in tensors]
    v = [np.zeros_like(getattr(layer, p)) for layer, p in tensors]
    for step in range(1, steps + 1):
        loss = step_loss(rng.choice(n, batch, replace=False))
        for i, (layer, p) in enumerate(tensors):
            g = getattr(layer, "d" + p) + (decay * getattr(layer, p) if p == "w" else 0)
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g**2
            step_size = lr * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            setattr(layer, p, getattr(layer, p) - step_size * m[i] / (np.sqrt(v[i]) + 1e-8))
    return loss


def f32(a):
    return np.asarray(a, np.float32)


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def batched(model, inputs, output):
    """Run sample by sample (batch 1) and stack: the models are exported for batch 1 use."""
    sess = session(model)
    rows = []
    for i in range(len(inputs[0][1])):
        feeds = {name: data[i : i + 1] for name, data in inputs}
        rows.append(sess.run([output], feeds)[0][0])
    return np.stack(rows)


def batched_whole(model, name, samples, output):
    """Run each sample as the whole input tensor (an input whose dim 0 is
    data, not a batch) and stack the outputs' batch-1 rows."""
    sess = session(model)
    return np.stack([sess.run([output], {name: x})[0][0] for x in samples])


def finish(nodes, inputs, outputs, inits, value_info, opset, name):
    """The model of `nodes`; `inits` maps initializer names to arrays."""
    tensors = [init(k, v) for k, v in inits.items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, tensors, value_info=value_info)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="medq make_io_testnets.py",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------- eeg_symbolic

EEG_C, EEG_T, EEG_CLASSES = 4, 128, 3


def eeg_data(rng, n):
    """Class k: a rhythm (6 to 10 cycles per window) on channel k over
    background activity on every channel, like a focal pattern."""
    y = rng.integers(0, EEG_CLASSES, n)
    t = np.arange(EEG_T) / EEG_T
    x = 0.7 * smooth_noise(rng, n, EEG_C, EEG_T, cutoff=12)
    x += 0.1 * rng.standard_normal(x.shape)
    freq = rng.uniform(6.0, 10.0, n)
    amp = rng.uniform(1.0, 1.6, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    x[np.arange(n), y] += amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])
    return x.astype(np.float32), y


def positional(length):
    """What the graph's positional subgraph computes: 0.5 * t / T on every channel."""
    return 0.5 * np.arange(length) / length


def make_eeg(rng):
    x_fit, y_fit = eeg_data(rng, N_FIT)
    net = Seq(Conv1d(rng, EEG_C, 8, 7, pad=3), Relu(), Conv1d(rng, 8, 12, 5, stride=2, pad=2),
              Relu(), GlobalAvgPool(), Dense(rng, 12, EEG_CLASSES))
    x0 = x_fit + positional(EEG_T)

    def step(i):
        loss, d = softmax_ce(net.forward(x0[i]), y_fit[i])
        net.backward(d)
        return loss

    train([net], step, N_FIT, rng)
    conv1, _, conv2, _, _, fc = net.layers
    nodes = [
        helper.make_node("Shape", ["eeg"], ["shape"], name="/Shape"),
        helper.make_node("Gather", ["shape", "two"], ["t"], name="/Gather", axis=0),
        helper.make_node("Cast", ["t"], ["t_f"], name="/Cast", to=TensorProto.FLOAT),
        helper.make_node("Range", ["zero", "t", "one"], ["pos"], name="/Range"),
        helper.make_node("Cast", ["pos"], ["pos_f"], name="/Cast_1", to=TensorProto.FLOAT),
        helper.make_node("Div", ["pos_f", "t_f"], ["pos_n"], name="/Div"),
        helper.make_node("Unsqueeze", ["pos_n", "axes01"], ["pos_u"], name="/Unsqueeze"),
        helper.make_node("Expand", ["pos_u", "shape"], ["pos_e"], name="/Expand"),
        helper.make_node("Mul", ["pos_e", "half"], ["pos_s"], name="/Mul"),
        helper.make_node("Add", ["eeg", "pos_s"], ["x0"], name="/Add"),
        helper.make_node("Conv", ["x0", "w1", "b1"], ["c1"], name="/conv1/Conv",
                         kernel_shape=[7], pads=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/relu1/Relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="/conv2/Conv",
                         kernel_shape=[5], pads=[2, 2], strides=[2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="/GlobalAveragePool"),
        helper.make_node("Slice", ["shape", "start0", "end1"], ["batch_dim"], name="/Slice"),
        helper.make_node("Concat", ["batch_dim", "minus1"], ["flat_shape"], name="/Concat",
                         axis=0),
        helper.make_node("Reshape", ["g", "flat_shape"], ["features"], name="/Reshape"),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], name="/fc/Gemm",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="/Softmax", axis=1),
    ]
    inits = {
        "two": np.array(2, np.int64),
        "zero": np.array(0, np.int64),
        "one": np.array(1, np.int64),
        "axes01": np.array([0, 1], np.int64),
        "half": np.array(0.5, np.float32),
        "start0": np.array([0], np.int64),
        "end1": np.array([1], np.int64),
        "minus1": np.array([-1], np.int64),
        "w1": f32(conv1.w), "b1": f32(conv1.b), "w2": f32(conv2.w), "b2": f32(conv2.b),
        "fc_w": f32(fc.w), "fc_b": f32(fc.b),
    }
    value_info = [
        vinfo("x0", ["batch", EEG_C, "time"]),
        vinfo("c1", ["batch", 8, "time"]),
        vinfo("r1", ["batch", 8, "time"]),
        # The exporter names a dim it cannot express after the strided conv.
        vinfo("r2", ["batch", 12, "Relu_r2_dim_2"]),
        vinfo("g", ["batch", 12, 1]),
        vinfo("features", ["batch", 12]),
        vinfo("logits", ["batch", EEG_CLASSES]),
    ]
    eeg = vinfo("eeg", ["batch", EEG_C, "time"])
    model = finish(nodes, [eeg], [vinfo("probs", ["batch", EEG_CLASSES])], inits, value_info, 13,
                   "eeg_symbolic")
    calib, _ = eeg_data(rng, N)
    test, y_test = eeg_data(rng, N)
    probs = batched(model, [("eeg", test)], "probs")
    logits = net.forward(test + positional(EEG_T))
    np.testing.assert_allclose(probs, softmax(logits), atol=1e-4)
    acc = (probs.argmax(1) == y_test).mean()
    return model, {"eeg_symbolic_calib": calib, "eeg_symbolic_test": test}, f"test acc {acc:.2f}"


def softmax(logits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


# --------------------------------------------------------------------------- gru_state

GRU_T, GRU_F, GRU_H, GRU_CLASSES = 40, 6, 16, 3


def gru_data(rng, n):
    """[n, time, features]: class k raises features 2k and 2k+1 (a sustained
    offset, as a recurrent state integrates it) over a slow drift and noise."""
    y = rng.integers(0, GRU_CLASSES, n)
    x = 0.6 * smooth_noise(rng, n, GRU_F, GRU_T, cutoff=4) + 0.2 * rng.standard_normal(
        (n, GRU_F, GRU_T))
    level = rng.uniform(0.6, 1.2, n)
    for k in range(GRU_CLASSES):
        x[y == k, 2 * k : 2 * k + 2, :] += level[y == k, None, None]
    return np.ascontiguousarray(x.transpose(0, 2, 1)).astype(np.float32), y


def make_gru(rng, seq_first=False):
    rows = 3 * GRU_H
    w = (rng.uniform(-1, 1, (1, rows, GRU_F)) * 0.6).astype(np.float32)
    r = (rng.uniform(-1, 1, (1, rows, GRU_H)) * 0.35).astype(np.float32)
    bias = (0.1 * rng.standard_normal((1, 2 * rows))).astype(np.float32)
    # Sequence-first, the GRU reads the input as is and the batch is dim 1.
    xt, batch_dim = ("x", "one") if seq_first else ("xt", "zero")
    nodes = [] if seq_first else [
        helper.make_node("Transpose", ["x"], ["xt"], name="/Transpose", perm=[1, 0, 2])]
    nodes += [
        helper.make_node("Shape", ["x"], ["shape"], name="/Shape"),
        helper.make_node("Gather", ["shape", batch_dim], ["b"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b_u"], name="/Unsqueeze"),
        helper.make_node("Concat", ["layers", "b_u", "hidden"], ["h0_shape"], name="/Concat",
                         axis=0),
        helper.make_node("ConstantOfShape", ["h0_shape"], ["h0"], name="/ConstantOfShape",
                         value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("GRU", [xt, "W", "R", "B", "", "h0"], ["Y", "Y_h"], name="/gru/GRU",
                         hidden_size=GRU_H, linear_before_reset=1),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h"], name="/Squeeze"),
    ]
    inits = {
        batch_dim: np.array(1 if seq_first else 0, np.int64),
        "axes0": np.array([0], np.int64),
        "layers": np.array([1], np.int64),
        "hidden": np.array([GRU_H], np.int64),
        "W": w, "R": r, "B": bias,
    }
    x_in = vinfo("x", ["time", "batch", GRU_F] if seq_first else ["batch", "time", GRU_F])
    # A sample as the model takes it: [1, time, 6], or [time, 1, 6] sequence-first.
    layout = (lambda x: x[:, :, None, :]) if seq_first else (lambda x: x)
    trunk = finish(nodes, [x_in], [vinfo("h", ["batch", GRU_H])], inits, [], 14, "gru_trunk")
    x_fit, y_fit = gru_data(rng, N_FIT)
    feats = batched_whole(trunk, "x", layout(x_fit), "h") if seq_first else batched(
        trunk, [("x", x_fit)], "h")
    head = Seq(Dense(rng, GRU_H, GRU_CLASSES))

    def step(i):
        loss, d = softmax_ce(head.forward(feats[i]), y_fit[i])
        head.backward(d)
        return loss

    train([head], step, N_FIT, rng)
    nodes += [
        helper.make_node("Gemm", ["h", "fc_w", "fc_b"], ["logits"], name="/fc/Gemm", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="/Softmax", axis=1),
    ]
    inits.update(fc_w=f32(head.layers[0].w), fc_b=f32(head.layers[0].b))
    value_info = ([] if seq_first else [vinfo("xt", ["time", "batch", GRU_F])]) + [
        vinfo("h0", [1, "batch", GRU_H]),
        vinfo("Y", ["time", 1, "batch", GRU_H]),
        vinfo("Y_h", [1, "batch", GRU_H]),
        vinfo("h", ["batch", GRU_H]),
        vinfo("logits", ["batch", GRU_CLASSES]),
    ]
    name = "gru_seq_first" if seq_first else "gru_state"
    model = finish(nodes, [x_in], [vinfo("probs", ["batch", GRU_CLASSES])], inits, value_info, 14,
                   name)
    calib, _ = gru_data(rng, N)
    test, y_test = gru_data(rng, N)
    calib, test = layout(calib), layout(test)
    probs = batched_whole(model, "x", test, "probs") if seq_first else batched(
        model, [("x", test)], "probs")
    acc = (probs.argmax(1) == y_test).mean()
    return model, {f"{name}_calib": calib, f"{name}_test": test}, f"test acc {acc:.2f}"


# --------------------------------------------------------------------------- fusion

ECG_T, PPG_T, RHYTHMS = 256, 128, 3


def beats(rng, y, length):
    """Narrow QRS-like pulses; rhythm class k sets how many fit the window
    (slow, normal, fast)."""
    n = len(y)
    counts = np.array([(3, 5), (7, 9), (12, 15)])
    x = 0.3 * smooth_noise(rng, n, 1, length, cutoff=6)[:, 0]
    x += 0.05 * rng.standard_normal(x.shape)
    pos = np.arange(length)
    for i in range(n):
        k = rng.integers(counts[y[i], 0], counts[y[i], 1] + 1)
        for c in np.linspace(0, length, k, endpoint=False) + rng.uniform(0, length / k):
            x[i] += rng.uniform(1.5, 2.2) * np.exp(-0.5 * ((pos - c) / 1.5) ** 2)
    return x[:, None, :].astype(np.float32)


def fusion_data(rng, n):
    """ecg: beats at the rhythm class's rate; ppg: a pulse wave whose rate
    is the regression target hr (normalised to about 0.6..1.6)."""
    y = rng.integers(0, RHYTHMS, n)
    ecg = beats(rng, y, ECG_T)
    hr = rng.uniform(0.6, 1.6, n)
    t = np.arange(PPG_T) / PPG_T
    phase = rng.uniform(0, 2 * np.pi, n)
    pulse = np.sin(2 * np.pi * (3.0 * hr)[:, None] * t + phase[:, None])
    ppg = pulse + 0.5 * pulse**2 + 0.3 * smooth_noise(rng, n, 1, PPG_T)[:, 0]
    ppg += 0.05 * rng.standard_normal(ppg.shape)
    return ecg, ppg[:, None, :].astype(np.float32), y, hr


class Fusion:
    """The fusion network in numpy: two branches, a shared layer, two heads."""

    def __init__(self, rng):
        self.ecg = Seq(Conv1d(rng, 1, 6, 7, stride=2, pad=3), Relu(), MaxPool2(),
                       Conv1d(rng, 6, 8, 5, pad=2), Relu(), GlobalAvgPool())
        self.ppg = Seq(Conv1d(rng, 1, 4, 5, stride=2, pad=2), Relu(),
                       Conv1d(rng, 4, 8, 3, pad=1), Relu(), GlobalAvgPool())
        self.shared = Seq(Dense(rng, 16, 12), Relu())
        self.hr = Seq(Dense(rng, 12, 1))
        self.rhythm = Seq(Dense(rng, 12, RHYTHMS))
        self.nets = [self.ecg, self.ppg, self.shared, self.hr, self.rhythm]

    def forward(self, ecg, ppg):
        h = self.shared.forward(np.concatenate([self.ecg.forward(ecg),
                                                self.ppg.forward(ppg)], 1))
        return self.hr.forward(h), self.rhythm.forward(h)

    def step(self, ecg, ppg, hr, y):
        out_hr, logits = self.forward(ecg, ppg)
        loss_hr, d_hr = mse(out_hr, hr)
        loss_rh, d_rh = softmax_ce(logits, y)
        dh = self.hr.backward(d_hr) + self.rhythm.backward(d_rh)
        dcat = self.shared.backward(dh)
        self.ecg.backward(dcat[:, :8])
        self.ppg.backward(dcat[:, 8:])
        return loss_hr + loss_rh


def make_fusion(rng):
    ecg, ppg, y, hr = fusion_data(rng, N_FIT)
    net = Fusion(rng)
    train(net.nets, lambda i: net.step(ecg[i], ppg[i], hr[i], y[i]), N_FIT, rng)
    (we1, _, _, we2, _, _), (wp1, _, wp2, _, _) = net.ecg.layers, net.ppg.layers
    shared, head_hr, head_rh = net.shared.layers[0], net.hr.layers[0], net.rhythm.layers[0]
    nodes = [
        helper.make_node("Conv", ["ecg", "we1", "be1"], ["e1"], name="/ecg/conv1/Conv",
                         kernel_shape=[7], pads=[3, 3], strides=[2]),
        helper.make_node("Relu", ["e1"], ["e1r"], name="/ecg/relu1/Relu"),
        helper.make_node("MaxPool", ["e1r"], ["e1p"], name="/ecg/pool/MaxPool",
                         kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["e1p", "we2", "be2"], ["e2"], name="/ecg/conv2/Conv",
                         kernel_shape=[5], pads=[2, 2]),
        helper.make_node("Relu", ["e2"], ["e2r"], name="/ecg/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["e2r"], ["eg"], name="/ecg/GlobalAveragePool"),
        helper.make_node("Conv", ["ppg", "wp1", "bp1"], ["p1"], name="/ppg/conv1/Conv",
                         kernel_shape=[5], pads=[2, 2], strides=[2]),
        helper.make_node("Relu", ["p1"], ["p1r"], name="/ppg/relu1/Relu"),
        helper.make_node("Conv", ["p1r", "wp2", "bp2"], ["p2"], name="/ppg/conv2/Conv",
                         kernel_shape=[3], pads=[1, 1]),
        helper.make_node("Relu", ["p2"], ["p2r"], name="/ppg/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["p2r"], ["pg"], name="/ppg/GlobalAveragePool"),
        helper.make_node("Concat", ["eg", "pg"], ["cat"], name="/Concat", axis=1),
        helper.make_node("Flatten", ["cat"], ["flat"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["flat", "wh", "bh"], ["hid"], name="/shared/Gemm", transB=1),
        helper.make_node("Relu", ["hid"], ["hidr"], name="/shared/Relu"),
        helper.make_node("Gemm", ["hidr", "hr_w", "hr_b"], ["hr"], name="/hr/Gemm", transB=1),
        helper.make_node("Gemm", ["hidr", "rh_w", "rh_b"], ["logits"], name="/rhythm/Gemm",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["rhythm"], name="/rhythm/Softmax", axis=1),
    ]
    inits = {}
    for prefix, layer in [("e1", we1), ("e2", we2), ("p1", wp1), ("p2", wp2)]:
        inits[f"w{prefix}"], inits[f"b{prefix}"] = f32(layer.w), f32(layer.b)
    for (w, b), layer in [(("wh", "bh"), shared), (("hr_w", "hr_b"), head_hr),
                          (("rh_w", "rh_b"), head_rh)]:
        inits[w], inits[b] = f32(layer.w), f32(layer.b)
    inputs = [vinfo("ecg", ["batch", 1, ECG_T]), vinfo("ppg", ["batch", 1, PPG_T])]
    value_info = [
        vinfo("cat", ["batch", 16, 1]),
        vinfo("flat", ["batch", 16]),
        vinfo("hidr", ["batch", 12]),
    ]
    outputs = [vinfo("hr", ["batch", 1]), vinfo("rhythm", ["batch", RHYTHMS])]
    model = finish(nodes, inputs, outputs, inits, value_info, 13, "fusion")
    calib_ecg, calib_ppg, _, _ = fusion_data(rng, N)
    test_ecg, test_ppg, y_test, hr_test = fusion_data(rng, N)
    feeds = [("ecg", test_ecg), ("ppg", test_ppg)]
    probs, out_hr = batched(model, feeds, "rhythm"), batched(model, feeds, "hr")
    want_hr, want_logits = net.forward(test_ecg, test_ppg)
    np.testing.assert_allclose(out_hr, want_hr, atol=1e-4)
    np.testing.assert_allclose(probs, softmax(want_logits), atol=1e-4)
    acc = (probs.argmax(1) == y_test).mean()
    hr_err = np.abs(out_hr[:, 0] - hr_test).mean()
    files = {
        "fusion_ecg_calib": calib_ecg, "fusion_ppg_calib": calib_ppg,
        "fusion_ecg_test": test_ecg, "fusion_ppg_test": test_ppg,
        "fusion_test_y": y_test.astype(np.int64),
    }
    return model, files, f"rhythm test acc {acc:.2f}, hr mean |err| {hr_err:.3f}"


def check_against_reference(model, files, name):
    """onnxruntime and onnx's ReferenceEvaluator agree on the first test samples."""
    inputs = [i.name for i in model.graph.input]
    rank = {i.name: len(i.type.tensor_type.shape.dim) for i in model.graph.input}
    tests = [k for k in files if k.endswith("_test")]
    ref = ReferenceEvaluator(model)
    sess = session(model)
    for s in range(4):
        feeds = {}
        for i in inputs:
            key = next(k for k in tests if k == f"{name}_{i}_test" or k == f"{name}_test")
            # Samples that stack whole inputs (one more dim) are fed one by one.
            x = files[key]
            feeds[i] = x[s] if x.ndim == rank[i] + 1 else x[s : s + 1]
        got = sess.run(None, feeds)
        want = ref.run(None, feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", nargs="*", help="build only these models")
    args = ap.parse_args()
    models = [("eeg_symbolic", make_eeg), ("gru_state", make_gru), ("fusion", make_fusion),
              ("gru_seq_first", lambda rng: make_gru(rng, seq_first=True))]
    for k, (name, make) in enumerate(models):
        if args.only and name not in args.only:
            continue
        # One seed per model: each can be rebuilt alone, identically.
        model, files, quality = make(np.random.default_rng(SEED + k))
        check_against_reference(model, files, name)
        path = os.path.join(args.out, f"{name}.onnx")
        onnx.save(model, path)
        for k, v in files.items():
            np.save(os.path.join(args.out, f"{k}.npy"), v)
        print(f"{name}: {os.path.getsize(path)} bytes, {quality}")


if __name__ == "__main__":
    main()
