#!/usr/bin/env python3
"""Build the converter's Brevitas QAT test exports (QCDQ), and ONNX Runtime's
outputs on them.

Brevitas (https://github.com/Xilinx/brevitas) trains networks with
quantized weights and activations of any bit width; `export_onnx_qcdq` writes
each quantizer as QuantizeLinear → Clip → DequantizeLinear, the Clip holding
the codes to the bit width (int8's narrow range −127..127 for 8-bit weights,
−7..7 and 0..15 at 4 bits).

`brevitas_cnn2d_w8a8` and `brevitas_cnn2d_w4a4`: Conv → ReLU → Conv → ReLU →
global average → Linear, 8-bit input, weights and activations (4-bit conv
weights and ReLU outputs for the second), every tensor quantized (the pooled
features and the logits by 8-bit QuantIdentity / output quantizers),
distilled from the float `cnn2d` test net's classes on its calibration
images. ONNX Runtime runs each on the 64 inputs of `cnn2d_test.npy` as
written (graph optimizations off); its outputs are
`brevitas/<name>_ort.npy`, and agree with Brevitas' own (printed).

Usage: python3 models/testnets/make_brevitas_testnets.py
       (needs torch, brevitas, onnxoptimizer, onnxruntime)
"""

import os

import brevitas.nn as qnn
import numpy as np
import onnx
import torch
import torch.nn as nn
from brevitas.export import export_onnx_qcdq
from brevitas.quant import Int8ActPerTensorFloat

from make_qat_testnets import distillation_data, train
from make_qdq_testnets import HERE, run_ort, sqnr_db

OUT = os.path.join(HERE, "brevitas")


class Net(nn.Module):
    def __init__(self, bits):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=bits, bias=True)
        self.r1 = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(8, 16, 3, padding=1, stride=2, weight_bit_width=bits, bias=True)
        self.r2 = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pooled = qnn.QuantIdentity(bit_width=8, return_quant_tensor=False)
        self.fc = qnn.QuantLinear(
            16, 4, bias=True, weight_bit_width=8, output_quant=Int8ActPerTensorFloat
        )

    def forward(self, x):
        x = self.r2(self.c2(self.r1(self.c1(self.inp(x)))))
        # A QuantTensor while training, a plain tensor while exporting.
        x = x.value if hasattr(x, "value") else x
        return self.fc(self.pooled(self.pool(x)).flatten(1))


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    x, y, test = distillation_data()
    for bits in (8, 4):
        torch.manual_seed(0)
        stem = f"brevitas_cnn2d_w{bits}a{bits}"
        model = Net(bits).train()
        train(model, x, y)
        path = os.path.join(OUT, f"{stem}.onnx")
        export_onnx_qcdq(model, args=x[:1], export_path=path, opset_version=13)
        # One self-contained file (the exporter may write the weights apart).
        onnx.save_model(onnx.load(path), path, save_as_external_data=False)
        if os.path.exists(path + ".data"):
            os.remove(path + ".data")
        onnx.checker.check_model(onnx.load(path), full_check=True)
        with torch.no_grad():
            brevitas_out = model(torch.from_numpy(test)).numpy()
        ort_out = run_ort(path, "cnn2d", optimize=False)[0]
        np.save(os.path.join(OUT, f"{stem}_ort.npy"), ort_out)
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print(f"{stem}: {os.path.getsize(path)} B, ops {ops}")
        print(f"  ORT vs Brevitas: {sqnr_db(brevitas_out, ort_out):.1f} dB")


if __name__ == "__main__":
    main()
