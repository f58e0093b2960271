#!/usr/bin/env python3
"""Build the converter's test models in ONNX Runtime's two other quantized
formats, and ONNX Runtime's outputs on them.

- QOperator: `quantize_static(quant_format=QuantFormat.QOperator)` writes
  QLinearConv, QLinearMatMul and the com.microsoft QGemm, QLinearAdd,
  QLinearConcat, QLinearGlobalAveragePool, QLinearAveragePool,
  QLinearLeakyRelu, QLinearSigmoid and QLinearSoftmax, and runs MaxPool,
  Pad, Resize, Split and Flatten on the integer tensors. Calibrated on each net's own
  `<name>_calib.npy` (MinMax), per-channel symmetric int8 weights, int8
  activations (uint8 too for cnn1d), as `make_qdq_testnets.py` does for QDQ.
- A16W8: `quantize_static` in QDQ format with int16 activations
  (`QuantType.QInt16`; asymmetric for cnn1d, `ActivationSymmetric` for
  ecg_transformer) and int8 weights: `<name>_a16w8`.
- A16W16: the same with int16 weights too (`weight_type=QInt16`,
  symmetric per channel): `<name>_a16w16`.
- dynamic: `quantize_dynamic` (int8 weights, per tensor; per channel for
  `<name>_dynamic_pc`) writes DynamicQuantizeLinear → ConvInteger /
  MatMulInteger → Cast → Mul by the two scales, and a com.microsoft
  DynamicQuantizeLSTM for an LSTM. Its activation ranges are measured per
  sample at run time.

ONNX Runtime runs each model on the 64 inputs of `<name>_test.npy` (graph
optimizations off: the model as written; QLinear ops are ORT's integer
kernels either way), and its outputs are written next to the model.

Files, in models/testnets/ort_formats/:
  <name>_qop_<act>.onnx, <name>_qop_<act>_ort[_k].npy
  <name>_a16w8.onnx, <name>_a16w8_ort[_k].npy
  <name>_a16w16.onnx, <name>_a16w16_ort[_k].npy
  <name>_dynamic.onnx, <name>_dynamic_ort[_k].npy   (_k: output k of several)

Usage: python3 models/testnets/make_ort_format_testnets.py
"""

import os

import numpy as np
import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

from make_qdq_testnets import ACT, HERE, Reader, run_ort

OUT = os.path.join(HERE, "ort_formats")

QOPERATOR = [
    ("cnn1d", ["int8", "uint8"]),
    ("resnet1d", ["int8"]),
    ("dwsep", ["int8"]),
    ("heads", ["int8"]),
    ("matmul_add", ["int8"]),
    ("cnn2d", ["int8"]),
    ("unet_upsample", ["int8"]),
    ("upsampler", ["int8"]),
    ("gemm_transb_pad", ["int8"]),
]

# (net, per-channel weights)
DYNAMIC = [("cnn1d", False), ("matmul_add", True), ("lstm_stacked", False)]

# QDQ with int16 activations: (net, ActivationSymmetric, weight type, suffix):
# int8 weights (A16W8) or int16 ones (A16W16)
A16 = [
    ("cnn1d", False, QuantType.QInt8, "a16w8"),
    ("ecg_transformer", True, QuantType.QInt8, "a16w8"),
    ("cnn1d", False, QuantType.QInt16, "a16w16"),
    ("resnet1d", False, QuantType.QInt16, "a16w16"),
    ("ecg_transformer", True, QuantType.QInt16, "a16w16"),
]


def write_outputs(path, name, stem):
    outs = run_ort(path, name, optimize=False)
    for k, y in enumerate(outs):
        suffix = "" if len(outs) == 1 else f"_{k}"
        np.save(os.path.join(OUT, f"{stem}_ort{suffix}.npy"), y)
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{stem}: {os.path.getsize(path)} B, outputs {[y.shape for y in outs]}, ops {ops}")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, acts in QOPERATOR:
        src = os.path.join(HERE, name + ".onnx")
        inp = onnx.load(src).graph.input[0].name
        calib = np.load(os.path.join(HERE, name + "_calib.npy"))
        for act in acts:
            dst = os.path.join(OUT, f"{name}_qop_{act}.onnx")
            quantize_static(
                src,
                dst,
                Reader(calib, inp),
                quant_format=QuantFormat.QOperator,
                per_channel=True,
                activation_type=ACT[act],
                weight_type=QuantType.QInt8,
            )
            write_outputs(dst, name, f"{name}_qop_{act}")
    for name, symmetric, weight_type, suffix in A16:
        src = os.path.join(HERE, name + ".onnx")
        inp = onnx.load(src).graph.input[0].name
        calib = np.load(os.path.join(HERE, name + "_calib.npy"))
        dst = os.path.join(OUT, f"{name}_{suffix}.onnx")
        quantize_static(
            src,
            dst,
            Reader(calib, inp),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt16,
            weight_type=weight_type,
            extra_options={"ActivationSymmetric": symmetric},
        )
        write_outputs(dst, name, f"{name}_{suffix}")
    for name, per_channel in DYNAMIC:
        dst = os.path.join(OUT, f"{name}_dynamic.onnx")
        quantize_dynamic(
            os.path.join(HERE, name + ".onnx"),
            dst,
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
        )
        write_outputs(dst, name, f"{name}_dynamic")


if __name__ == "__main__":
    main()
