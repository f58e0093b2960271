#!/usr/bin/env python3
"""Build the converter's test models for the math op families (issue 11):
GELU in its exported forms, LayerNormalization and the pattern older opsets
export it as, Sub/Div/Min/Max of two computed tensors, ReduceMean/Sum/Max,
and Softmax on a middle axis. No PyTorch: the graphs are written with the
`onnx` package in the node patterns PyTorch's exporter gives (the GELU
patterns of `nn.GELU()` and `nn.GELU(approximate="tanh")`, the LayerNorm of
opset < 17), with seeded random weights scaled like a trained model's.

  tf_head     input [1, 32, 16] (tokens, features), opset 17: MatMul+Add,
              LayerNormalization, GELU exported as Erf (x·½(1+erf(x/√2))),
              MatMul+Add, residual Add, LayerNormalization, ReduceMean over
              the tokens, Gemm, Div by a constant temperature, Softmax
              (the issue's "transformer-style head" row)
  ln_pattern  input [1, 8, 32], opset 13: MatMul+Add, LayerNorm as
              ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add, GELU tanh
              approximation, two MatMul branches combined by Max, Min, Sub
              and Div (by 1 + Sigmoid), ReduceMax over tokens (keepdims),
              ReduceSum, Softmax on axis 1 of [1, 4, 8]
  gelu20      input [1, 6, 40], opset 20: Conv1d, Gelu (exact), Conv1d,
              Gelu (tanh), ReduceMean over time (keepdims 0), Gemm, Softmax

For each model: <name>.onnx, <name>_calib.npy and <name>_test.npy (64 float32
samples each, smooth random signals). Every model is checked with
onnx.checker (full_check) and onnxruntime against onnx's ReferenceEvaluator.

Usage: python3 models/testnets/make_math_testnets.py [--out DIR]
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

SEED = 20261203
N = 64


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def vinfo(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=outs[0] + "_" + op, **attrs)


class Graph:
    """Nodes and initializers, with fresh names."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, array):
        n = self.name(base)
        self.inits.append(init(n, array))
        return n

    def op(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(node(op, ins, [out], **attrs))
        return out

    def weight(self, fan_in, shape):
        return self.rng.standard_normal(shape) * (1.0 / np.sqrt(fan_in))

    def linear(self, x, k, n):
        """`x @ W + b` as MatMul + Add (PyTorch's nn.Linear on a 3-D input)."""
        w = self.const("w", self.weight(k, (k, n)))
        b = self.const("b", self.rng.standard_normal(n) * 0.1)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def gelu_erf(self, x):
        """nn.GELU(): x·0.5·(1 + erf(x/√2)) as exported (Div, Erf, Add, Mul, Mul)."""
        t = self.op("Div", [x, self.const("sqrt2", np.float32(np.sqrt(2.0)))])
        t = self.op("Erf", [t])
        t = self.op("Add", [t, self.const("one", np.float32(1.0))])
        t = self.op("Mul", [x, t])
        return self.op("Mul", [t, self.const("half", np.float32(0.5))])

    def gelu_tanh(self, x):
        """nn.GELU(approximate="tanh"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
        c3 = self.op("Pow", [x, self.const("three", np.float32(3.0))])
        c3 = self.op("Mul", [c3, self.const("k", np.float32(0.044715))])
        t = self.op("Add", [x, c3])
        t = self.op("Mul", [t, self.const("s", np.float32(np.sqrt(2.0 / np.pi)))])
        t = self.op("Tanh", [t])
        t = self.op("Add", [t, self.const("one", np.float32(1.0))])
        t = self.op("Mul", [x, t])
        return self.op("Mul", [t, self.const("half", np.float32(0.5))])

    def layer_norm(self, x, n):
        g = self.const("gamma", 1.0 + 0.2 * self.rng.standard_normal(n))
        b = self.const("beta", 0.1 * self.rng.standard_normal(n))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-5)

    def layer_norm_pattern(self, x, n):
        """nn.LayerNorm exported below opset 17."""
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        d = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Pow", [d, self.const("two", np.float32(2.0))])],
                      axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const("eps", np.float32(1e-5))])])
        y = self.op("Div", [d, std])
        y = self.op("Mul", [y, self.const("gamma", 1.0 + 0.2 * self.rng.standard_normal(n))])
        return self.op("Add", [y, self.const("beta", 0.1 * self.rng.standard_normal(n))])

    def model(self, x_dims, y, y_dims, opset):
        assert self.nodes[-1].output[0] == y
        self.nodes[-1].output[0] = "output"
        g = helper.make_graph(self.nodes, "g", [vinfo("input", x_dims)],
                              [vinfo("output", y_dims)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="make_math_testnets")
        m.ir_version = 8 if opset < 20 else 9
        return m


def tf_head(rng):
    g = Graph(rng)
    h = g.linear("input", 16, 24)
    h = g.layer_norm(h, 24)
    h = g.gelu_erf(h)
    h = g.linear(h, 24, 16)
    h = g.op("Add", [h, "input"])
    h = g.layer_norm(h, 16)
    h = g.op("ReduceMean", [h], axes=[1], keepdims=0)
    w = g.const("w", g.weight(16, (4, 16)) * 3.0)
    b = g.const("b", rng.standard_normal(4) * 0.1)
    h = g.op("Gemm", [h, w, b], transB=1)
    h = g.op("Div", [h, g.const("temperature", np.float32(0.7))])
    y = g.op("Softmax", [h], axis=-1)
    return g.model([1, 32, 16], y, [1, 4], 17)


def ln_pattern(rng):
    g = Graph(rng)
    h = g.linear("input", 32, 32)
    h = g.layer_norm_pattern(h, 32)
    h = g.gelu_tanh(h)
    a = g.linear(h, 32, 8)
    b = g.linear(h, 32, 8)
    hi = g.op("Max", [a, b])
    lo = g.op("Min", [a, b])
    spread = g.op("Sub", [hi, lo])
    gate = g.op("Add", [g.op("Sigmoid", [a]), g.const("one", np.float32(1.0))])
    r = g.op("Div", [spread, gate])
    r = g.op("Sub", [r, g.op("ReduceMax", [r], axes=[1], keepdims=1)])
    s = g.op("ReduceSum", [hi, ints_const(g, "axes", [2])], keepdims=1)
    r = g.op("Add", [r, g.op("Mul", [s, g.const("k", np.float32(0.05))])])
    r = g.op("Reshape", [r, ints_const(g, "shape", [1, 4, 16])])
    y = g.op("Softmax", [r], axis=1)
    return g.model([1, 8, 32], y, [1, 4, 16], 13)


def ints_const(g, base, values):
    n = g.name(base)
    g.inits.append(ints(n, values))
    return n


def gelu20(rng):
    g = Graph(rng)
    w1 = g.const("w", g.weight(6 * 5, (12, 6, 5)))
    b1 = g.const("b", rng.standard_normal(12) * 0.1)
    h = g.op("Conv", ["input", w1, b1], kernel_shape=[5], pads=[2, 2], strides=[2])
    h = g.op("Gelu", [h])
    w2 = g.const("w", g.weight(12 * 3, (12, 12, 3)))
    b2 = g.const("b", rng.standard_normal(12) * 0.1)
    h = g.op("Conv", [h, w2, b2], kernel_shape=[3], pads=[1, 1])
    h = g.op("Gelu", [h], approximate="tanh")
    h = g.op("ReduceMean", [h, ints_const(g, "axes", [2])], keepdims=0)
    w = g.const("w", g.weight(12, (3, 12)) * 3.0)
    b = g.const("b", rng.standard_normal(3) * 0.1)
    y = g.op("Softmax", [g.op("Gemm", [h, w, b], transB=1)], axis=-1)
    return g.model([1, 6, 40], y, [1, 3], 20)


def smooth(rng, shape, cutoff=6):
    """Low-pass noise along the last axis, unit variance, plus an offset per row."""
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    spec[..., cutoff:] = 0
    sig = np.fft.irfft(spec, n=shape[-1], axis=-1)
    sig = sig / (sig.std(axis=-1, keepdims=True) + 1e-8)
    return (sig + 0.3 * rng.standard_normal(shape[:-1] + (1,))).astype(np.float32)


def check(model, data):
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = ReferenceEvaluator(model)
    for x in data[:8]:
        x = x[None]
        got = sess.run(None, {"input": x})[0]
        want = ref.run(None, {"input": x})[0]
        assert np.all(np.isfinite(got)), "non-finite output"
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    for k, (name, build, x_shape) in enumerate([
        ("tf_head", tf_head, (32, 16)),
        ("ln_pattern", ln_pattern, (8, 32)),
        ("gelu20", gelu20, (6, 40)),
    ]):
        rng = np.random.default_rng(SEED + k)
        model = build(rng)
        calib = smooth(rng, (N,) + x_shape)
        test = smooth(rng, (N,) + x_shape)
        check(model, test)
        onnx.save(model, os.path.join(args.out, f"{name}.onnx"))
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        p = np.concatenate([sess.run(None, {"input": x[None]})[0] for x in test])
        top = np.sort(p.reshape(N, -1), axis=-1)
        print(f"{name}: {len(model.graph.node)} nodes, "
              f"{os.path.getsize(os.path.join(args.out, name + '.onnx'))} bytes, "
              f"max p mean {p.max(axis=1).mean():.3f}, "
              f"top-2 margin >= 0.05 on {(top[:, -1] - top[:, -2] >= 0.05).mean():.2f}")


if __name__ == "__main__":
    main()
