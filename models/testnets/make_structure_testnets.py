#!/usr/bin/env python3
"""Build the converter's structure-op test models: ConvTranspose, Transpose,
Slice/Split/Gather, Resize, large Conv dilations and exporters' zero-size
tensors. No PyTorch: the graphs are written with the `onnx` package in the
patterns PyTorch's and tf2onnx's exporters give them. Weights are seeded
random with He scaling and per-channel biases, so activations keep a
realistic spread through the layers (these models test conversion fidelity,
not a task).

  unet1d        input [1, 2, 64]: PyTorch circular padding (Slice, Slice,
                Concat), Conv1d encoder (stride 2), ConvTranspose1d decoder
                (stride 2, pads 1), skip Concat, 1x1 Conv, per-sample Softmax
                over 3 classes -> [1, 3, 64]
  tf_nhwc       input [1, 16, 16, 3] NHWC: Transpose(0, 3, 1, 2), Conv2d, MaxPool,
                grouped ConvTranspose2d (output_padding), Conv2d,
                GlobalAveragePool, Flatten, Gemm, Softmax -> [1, 4]
  upsampler     input [1, 2, 48]: Conv1d, Split in two, one half Resize
                nearest (asymmetric, floor: ONNX Upsample's rule), the other
                Resize linear (align_corners) via `sizes`, Concat, a
                Gather of channels [3, 0, 1], Conv1d; then a 2-D tail:
                Unsqueeze -> Resize linear half_pixel x2 -> Conv2d ->
                [1, 1, 2, 192] (regression)
  eeg_dilated   input [1, 1, 8256]: Conv1d with dilation 4096, Relu, 1x1 Conv1d,
                and a zero-length ConstantOfShape concatenated onto the output
                (an exporter artefact) -> [1, 2, 64] (regression)

For each model: <name>.onnx, <name>_calib.npy and <name>_test.npy (64
float32 samples each). Every model is checked with onnx.checker
(full_check) and onnxruntime against onnx's ReferenceEvaluator.

Usage: python3 models/testnets/make_structure_testnets.py [--out DIR] [--only NAME ...]
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

SEED = 20261203
N = 64  # calibration and test samples per file
OPSET = 17


def init(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def vinfo(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def he(rng, shape, fan_in):
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def smooth_noise(rng, n, c, length, cutoff=8):
    spec = np.fft.rfft(rng.standard_normal((n, c, length)), axis=-1)
    spec[..., cutoff:] = 0
    sig = np.fft.irfft(spec, n=length, axis=-1)
    return (sig / (sig.std(axis=-1, keepdims=True) + 1e-8)).astype(np.float32)


class Graph:
    """Collects nodes and initializers; names are unique by construction."""

    def __init__(self, rng):
        self.rng, self.nodes, self.inits, self.k = rng, [], [], 0

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, base, array, dtype=np.float32):
        n = self.name(base)
        self.inits.append(init(n, array, dtype))
        return n

    def node(self, op, inputs, n_out=1, **attrs):
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, cin, cout, k, rank=1, **attrs):
        ks = [k] * rank
        groups = attrs.get("group", 1)
        w = self.const("w", he(self.rng, [cout, cin // groups] + ks, cin // groups * k**rank))
        b = self.const("b", self.rng.normal(0, 0.1, cout))
        return self.node("Conv", [x, w, b], kernel_shape=ks, **attrs)

    def conv_transpose(self, x, cin, cout, k, rank=1, **attrs):
        ks = [k] * rank
        groups = attrs.get("group", 1)
        w = self.const("wt", he(self.rng, [cin, cout // groups] + ks, cin // groups * k**rank))
        b = self.const("bt", self.rng.normal(0, 0.1, cout))
        return self.node("ConvTranspose", [x, w, b], kernel_shape=ks, **attrs)

    def model(self, x, x_dims, y, y_dims):
        g = helper.make_graph(self.nodes, "g", [vinfo(x, x_dims)], [vinfo(y, y_dims)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m


def i64(values):
    return np.asarray(values, dtype=np.int64)


def make_unet1d(rng):
    g = Graph(rng)
    # PyTorch's F.pad(x, (2, 2), mode="circular"): x[..., -2:], x, x[..., :2].
    tail = g.node("Slice", ["x", g.const("s", i64([-2]), np.int64),
                            g.const("e", i64([2**62]), np.int64), g.const("a", i64([2]), np.int64)])
    head = g.node("Slice", ["x", g.const("s", i64([0]), np.int64),
                            g.const("e", i64([2]), np.int64), g.const("a", i64([2]), np.int64)])
    padded = g.node("Concat", [tail, "x", head], axis=2)
    e1 = g.node("Relu", [g.conv(padded, 2, 8, 5)])                                    # [1, 8, 64]
    e2 = g.node("Relu", [g.conv(e1, 8, 16, 3, strides=[2], pads=[1, 1])])             # [1, 16, 32]
    up = g.node("Relu", [g.conv_transpose(e2, 16, 8, 4, strides=[2], pads=[1, 1])])   # [1, 8, 64]
    cat = g.node("Concat", [e1, up], axis=1)                                          # [1, 16, 64]
    logits = g.conv(cat, 16, 3, 1)
    y = g.node("Softmax", [logits], axis=1)
    return g.model("x", [1, 2, 64], y, [1, 3, 64]), [2, 64]


def make_tf_nhwc(rng):
    g = Graph(rng)
    x = g.node("Transpose", ["x"], perm=[0, 3, 1, 2])                                    # [1, 3, 16, 16]
    c1 = g.node("Relu", [g.conv(x, 3, 8, 3, rank=2, pads=[1, 1, 1, 1])])
    p1 = g.node("MaxPool", [c1], kernel_shape=[2, 2], strides=[2, 2])                     # [1, 8, 8, 8]
    up = g.node("Relu", [g.conv_transpose(p1, 8, 8, 3, rank=2, strides=[2, 2], pads=[1, 1, 1, 1],
                                          output_padding=[1, 1], group=2)])               # [1, 8, 16, 16]
    c2 = g.node("Relu", [g.conv(up, 8, 8, 3, rank=2, strides=[2, 2], pads=[1, 1, 1, 1])])
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [c2])])
    w = g.const("fc_w", he(rng, [4, 8], 8))
    b = g.const("fc_b", rng.normal(0, 0.1, 4))
    y = g.node("Softmax", [g.node("Gemm", [pooled, w, b], transB=1)], axis=1)
    return g.model("x", [1, 16, 16, 3], y, [1, 4]), [16, 16, 3]


def make_upsampler(rng):
    g = Graph(rng)
    c = g.node("Relu", [g.conv("x", 2, 4, 3, pads=[1, 1])])                              # [1, 4, 48]
    a, b = g.node("Split", [c, g.const("split", i64([2, 2]), np.int64)], n_out=2, axis=1)
    empty = g.const("roi", np.zeros(0))
    near = g.node("Resize", [a, empty, g.const("scales", [1.0, 1.0, 2.0])], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    lin = g.node("Resize", [b, "", "", g.const("sizes", i64([1, 2, 96]), np.int64)],
                 mode="linear", coordinate_transformation_mode="align_corners")
    cat = g.node("Concat", [near, lin], axis=1)                                          # [1, 4, 96]
    picked = g.node("Gather", [cat, g.const("idx", i64([3, 0, 1]), np.int64)], axis=1)   # [1, 3, 96]
    d = g.node("Relu", [g.conv(picked, 3, 2, 3, pads=[1, 1])])                           # [1, 2, 96]
    d2 = g.node("Unsqueeze", [d, g.const("ax", i64([2]), np.int64)])                     # [1, 2, 1, 96]
    big = g.node("Resize", [d2, "", g.const("scales", [1.0, 1.0, 2.0, 2.0])], mode="linear",
                 coordinate_transformation_mode="half_pixel")                            # [1, 2, 2, 192]
    y = g.conv(big, 2, 1, 3, rank=2, pads=[1, 1, 1, 1])
    return g.model("x", [1, 2, 48], y, [1, 1, 2, 192]), [2, 48]


def make_eeg_dilated(rng):
    g = Graph(rng)
    h = g.node("Relu", [g.conv("x", 1, 4, 3, dilations=[4096])])                         # [1, 4, 64]
    y0 = g.conv(h, 4, 2, 1)                                                              # [1, 2, 64]
    zero = g.node("ConstantOfShape", [g.const("shape", i64([1, 2, 0]), np.int64)],
                  value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))
    y = g.node("Concat", [y0, zero], axis=2)
    return g.model("x", [1, 1, 8256], y, [1, 2, 64]), [1, 8256]


MODELS = [("unet1d", make_unet1d), ("tf_nhwc", make_tf_nhwc), ("upsampler", make_upsampler),
          ("eeg_dilated", make_eeg_dilated)]


def inputs_for(rng, name, dims):
    if name == "tf_nhwc":
        # Images: smooth fields per channel, NHWC.
        base = smooth_noise(rng, N, dims[2] * dims[0], dims[1]).reshape(N, dims[2], dims[0], dims[1])
        return np.ascontiguousarray(base.transpose(0, 2, 3, 1))
    return smooth_noise(rng, N, dims[0], dims[1])


def conv_transpose_groups(model):
    return any(n.op_type == "ConvTranspose" and any(a.name == "group" and a.i > 1 for a in n.attribute)
               for n in model.graph.node)


def check_against_reference(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # onnx 1.22's ReferenceEvaluator cannot run a grouped ConvTranspose with
    # more than one output channel per group (it broadcasts a group's whole
    # output into one channel), so such models are checked by onnxruntime only.
    ref = None if conv_transpose_groups(model) else ReferenceEvaluator(model)
    for s in range(4):
        feeds = {"x": x[s : s + 1]}
        (got,) = sess.run(None, feeds)
        assert np.isfinite(got).all() and np.abs(got).max() > 0
        if ref is not None:
            (want,) = ref.run(None, feeds)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", nargs="*", help="build only these models")
    args = ap.parse_args()
    for k, (name, make) in enumerate(MODELS):
        if args.only and name not in args.only:
            continue
        rng = np.random.default_rng(SEED + k)
        model, dims = make(rng)
        calib, test = inputs_for(rng, name, dims), inputs_for(rng, name, dims)
        check_against_reference(model, test)
        onnx.save(model, os.path.join(args.out, f"{name}.onnx"))
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)
        size = os.path.getsize(os.path.join(args.out, f"{name}.onnx"))
        print(f"{name}: {size} bytes, ops {sorted({n.op_type for n in model.graph.node})}")


if __name__ == "__main__":
    main()
