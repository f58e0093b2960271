#!/usr/bin/env python3
"""Build the converter's quantization-aware-training (QAT) test export, and
ONNX Runtime's outputs on it.

`qat_cnn2d`: a small Conv2d network (Conv → ReLU → Conv → ReLU → MaxPool →
global average → Linear) trained with PyTorch's eager-mode QAT
(`torch.ao.quantization.prepare_qat`: per-tensor uint8 activations,
per-channel symmetric int8 weights through `FakeQuantize`), distilled from the
float `cnn2d` test net's classes on its calibration images, then exported
with `torch.onnx.export` (the legacy exporter, opset 13) as the eager QAT
model is: every fake-quantized activation a QuantizeLinear → DequantizeLinear
pair, each weight a QuantizeLinear → DequantizeLinear of its float values,
the ReLUs left float after the pair of the Conv before them, and the pooled
features and the logits as the model computes them.

`qat_cnn2d_bn`: the same network with a BatchNorm2d after each Conv, trained
with FX graph-mode QAT (`prepare_qat_fx`, which fuses each Conv with its
BatchNorm and ReLU): the export divides each Conv's output by the folded
`γ/σ`, adds the Conv's bias and runs the BatchNormalization, float, between
the weights' pair and the output's.

ONNX Runtime runs each on the 64 inputs of `cnn2d_test.npy` as written (graph
optimizations off), and its outputs are `qat/<name>_ort.npy`. PyTorch's
own outputs agree with ORT's (printed). PyTorch's int8 model of it
(`convert` / `convert_fx`, fbgemm's kernels) gives
`qat/<name>_torch_int8.npy`.

Usage: python3 models/testnets/make_qat_testnets.py   (needs torch)
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    QConfig,
    QConfigMapping,
)
from torch.ao.quantization.quantize_fx import convert_fx, prepare_qat_fx

from make_qdq_testnets import HERE, run_ort, sqnr_db

OUT = os.path.join(HERE, "qat")


class Net(nn.Module):
    def __init__(self, bn=False):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.b2 = nn.BatchNorm2d(16) if bn else nn.Identity()
        self.r2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.pool(self.r2(self.b2(self.c2(self.r1(self.b1(self.c1(x)))))))
        return self.dequant(self.fc(self.gap(x).flatten(1)))


def teacher_labels(images):
    """The float `cnn2d` test net's classes of `images`: the labels the
    quantization-aware nets are distilled from."""
    teacher = ort.InferenceSession(os.path.join(HERE, "cnn2d.onnx"), providers=["CPUExecutionProvider"])
    name = teacher.get_inputs()[0].name
    logits = np.concatenate([teacher.run(None, {name: images[i : i + 1]})[0] for i in range(len(images))])
    return torch.from_numpy(logits.argmax(1))


def distillation_data():
    """`cnn2d`'s calibration images and their teacher labels (torch), and
    its test images (numpy)."""
    calib = np.load(os.path.join(HERE, "cnn2d_calib.npy"))
    test = np.load(os.path.join(HERE, "cnn2d_test.npy"))
    return torch.from_numpy(calib), teacher_labels(calib), test


def train(model, x, y):
    """300 Adam steps of cross-entropy on `(x, y)`; the model in eval mode."""
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    x, y, test = distillation_data()
    for name, bn in (("qat_cnn2d", False), ("qat_cnn2d_bn", True)):
        build(name, bn, x, y, test)


def build(name, bn, x, y, test):
    torch.manual_seed(0)
    qconfig = QConfig(
        activation=FakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8
        ),
        weight=FakeQuantize.with_args(
            observer=MovingAveragePerChannelMinMaxObserver,
            quant_min=-128,
            quant_max=127,
            dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric,
        ),
    )
    model = Net(bn).train()
    if bn:
        mapping = QConfigMapping().set_global(qconfig)
        model = prepare_qat_fx(model, mapping, example_inputs=(x[:1],))
    else:
        model.qconfig = qconfig
        model = torch.ao.quantization.prepare_qat(model)
    train(model, x, y)
    model.apply(torch.ao.quantization.disable_observer)
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(
        model, x[:1], path, opset_version=13, input_names=["input"], output_names=["logits"], dynamo=False
    )
    onnx.checker.check_model(onnx.load(path), full_check=True)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(test)).numpy()
    ort_out = run_ort(path, "cnn2d", optimize=False)[0]
    np.save(os.path.join(OUT, f"{name}_ort.npy"), ort_out)
    # PyTorch's own int8 model (fbgemm's kernels): its average pool keeps
    # its input's scale, as medq's does, where ORT's run of the QDQ graph
    # averages in float.
    int8 = convert_fx(model) if bn else torch.ao.quantization.convert(model)
    with torch.no_grad():
        int8_out = int8(torch.from_numpy(test)).numpy()
    np.save(os.path.join(OUT, f"{name}_torch_int8.npy"), int8_out)
    teacher_test = run_ort(os.path.join(HERE, "cnn2d.onnx"), "cnn2d", optimize=False)[0]
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {os.path.getsize(path)} B, ops {ops}")
    print(f"  ORT vs PyTorch: {sqnr_db(torch_out, ort_out):.1f} dB")
    print(f"  PyTorch's int8 model vs ORT: {sqnr_db(ort_out, int8_out):.1f} dB")
    print(f"  agreement with cnn2d's classes on the test images: {(ort_out.argmax(1) == teacher_test.argmax(1)).mean():.3f}")

if __name__ == "__main__":
    main()
