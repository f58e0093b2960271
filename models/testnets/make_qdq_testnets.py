#!/usr/bin/env python3
"""Build the converter's pre-quantized (QDQ) test models and ONNX Runtime's
outputs on them.

Each float test net of this directory (trained PyTorch exports, see README.md)
is quantized by ONNX Runtime's `quantize_static` in QDQ format, calibrated on
its own `<name>_calib.npy` (MinMax): per-channel symmetric int8 weights and
int8 activations, for two nets also uint8 activations, and for cnn1d also
per-channel symmetric uint8 weights (zero point 128; `cnn1d_uint8w`). ONNX Runtime then
runs each QDQ model on the 64 inputs of `<name>_test.npy`, and its outputs are
written next to the model, so that the converter's tests compare medq with
ONNX Runtime without needing Python.

ONNX Runtime runs the model as written (graph optimizations off): it executes
every QuantizeLinear and DequantizeLinear node and the float ops between them,
which is what the QDQ model means, on any CPU. With its default optimizations
it fuses the pairs into integer kernels instead, and on x86-64 CPUs with AVX2
but no VNNI its u8 x s8 kernels (every model here with int8 weights: ORT turns
int8 activations into uint8 ones first) multiply with VPMADDUBSW, which
saturates the sum of two adjacent products to int16: on this machine the fused
run differs from the model by 10 to 37 dB SQNR (measured below; uint8 weights,
u8 x u8, are not affected). Those outputs depend on the CPU, so they are not the
reference. The script prints, for each model, how far ORT's fused run is from
the reference on the machine it runs on.

Two more models are ones medq must refuse, naming the node and the reason:

  refuse_asym_weights   cnn1d quantized per tensor with asymmetric uint8
                        weights (WeightSymmetric=False): q - zero_point spans
                        more than int8 (e.g. [-123, 132]), so medq's symmetric
                        int8 weights cannot hold them
  refuse_per_channel_act  cnn1d_int8 with one activation pair made per-channel
                        (one scale per channel along axis 1): medq's
                        activations have one scale per tensor

Files, in models/testnets/qdq/:
  <name>_<act>.onnx            the QDQ model (act: int8 or uint8)
  <name>_<act>_ort.npy         ORT's output [64, ...] (float32); a model with
                               several outputs has <name>_<act>_ort_<k>.npy, k
                               the output index
  refuse_*.onnx

Usage: python3 models/testnets/make_qdq_testnets.py [--outputs-only]
  --outputs-only   keep the models, recompute ORT's outputs only
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "qdq")

# (float test net, activation types); <net>_uint8w: uint8 activations and weights
NETS = [
    ("cnn1d", ["int8", "uint8"]),
    ("resnet1d", ["int8", "uint8"]),
    ("dwsep", ["int8"]),
    ("heads", ["int8"]),
    ("matmul_add", ["int8"]),
    ("cnn2d", ["int8"]),
]

ACT = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}


class Reader(CalibrationDataReader):
    def __init__(self, x, name):
        self.it = iter([{name: x[i : i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.it, None)


def quantize(name, act, dst, **extra):
    src = os.path.join(HERE, name + ".onnx")
    inp = onnx.load(src).graph.input[0].name
    calib = np.load(os.path.join(HERE, name + "_calib.npy"))
    quantize_static(
        src,
        dst,
        Reader(calib, inp),
        quant_format=QuantFormat.QDQ,
        per_channel=extra.pop("per_channel", True),
        activation_type=ACT[act],
        weight_type=extra.pop("weight_type", QuantType.QInt8),
        extra_options=extra.pop("extra_options", None),
    )
    onnx.checker.check_model(onnx.load(dst), full_check=True)


def run_ort(path, name, optimize):
    x = np.load(os.path.join(HERE, name + "_test.npy"))
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    runs = [sess.run(None, {inp: x[i : i + 1]}) for i in range(len(x))]
    return [np.concatenate([r[k] for r in runs]).astype(np.float32) for k in range(len(runs[0]))]


def sqnr_db(reference, out):
    r = reference.astype(np.float64)
    noise = ((r - out.astype(np.float64)) ** 2).sum()
    return 10 * np.log10(((r - r.mean()) ** 2).sum() / max(noise, 1e-30))


def ort_outputs(path, name):
    """ORT's outputs on the model as written, and how far its fused run is."""
    outs = run_ort(path, name, optimize=False)
    fused = run_ort(path, name, optimize=True)
    gaps = ", ".join(f"{sqnr_db(r, f):.1f} dB" for r, f in zip(outs, fused))
    print(f"  {os.path.basename(path)}: ORT's fused run vs the reference: {gaps}")
    return outs


def write_outputs(path, name, stem):
    outs = ort_outputs(path, name)
    for k, y in enumerate(outs):
        suffix = "" if len(outs) == 1 else f"_{k}"
        np.save(os.path.join(OUT, f"{stem}_ort{suffix}.npy"), y)
    return outs


def per_channel_activation(src, dst):
    """Give the first activation pair after a Conv one scale per channel."""
    m = onnx.load(src)
    inits = {t.name: t for t in m.graph.initializer}
    convs = {o for n in m.graph.node if n.op_type == "Conv" for o in n.output}
    q = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in convs)
    channels = 8  # cnn1d's first Conv
    for k, rep in ((1, "scale"), (2, "zero_point")):
        t = inits[q.input[k]]
        v = numpy_helper.to_array(t)
        t.CopyFrom(numpy_helper.from_array(np.full(channels, v, dtype=v.dtype), t.name))
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] == q.input[1]:
            n.attribute.append(onnx.helper.make_attribute("axis", 1))
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, dst)
    return q.name


def main():
    outputs_only = "--outputs-only" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    for name, acts in NETS:
        for act in acts:
            path = os.path.join(OUT, f"{name}_{act}.onnx")
            if not outputs_only:
                quantize(name, act, path)
            outs = write_outputs(path, name, f"{name}_{act}")
            print(f"{name}_{act}: {os.path.getsize(path)} B, outputs {[y.shape for y in outs]}")
    path = os.path.join(OUT, "cnn1d_uint8w.onnx")
    if not outputs_only:
        quantize("cnn1d", "uint8", path, weight_type=QuantType.QUInt8)
    write_outputs(path, "cnn1d", "cnn1d_uint8w")
    if outputs_only:
        return
    quantize(
        "cnn1d",
        "uint8",
        os.path.join(OUT, "refuse_asym_weights.onnx"),
        per_channel=False,
        weight_type=QuantType.QUInt8,
        extra_options={"WeightSymmetric": False},
    )
    node = per_channel_activation(
        os.path.join(OUT, "cnn1d_int8.onnx"), os.path.join(OUT, "refuse_per_channel_act.onnx")
    )
    print(f"refuse_per_channel_act: per-channel pair at {node}")


if __name__ == "__main__":
    main()
