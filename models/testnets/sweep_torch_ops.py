#!/usr/bin/env python3
"""A sweep of common PyTorch ops and modules through both of PyTorch's
exporters and the converter: does each export convert, and how far is its
int8 output from its float model on the calibration samples?

Each case is a small module on a [1, 4, 64] input (a Conv1d, then the op;
the 2-D cases see it as a [1, 4, 8, 8] image and start with a Conv2d),
seeded, untrained; calibration samples are 32 standard-normal windows. For
each case and exporter (legacy TorchScript at opset 17; dynamo, PyTorch's
default from 2.9) the script exports the model, runs
`converter MODEL --calib calib.npy -o MODEL.mq`, and prints one line:
the output SQNR the converter reports, its refusal, or the exporter's.
Untrained weights on noise make some figures low where a discontinuous op
meets values near its jumps (remainder, fmod, round, argmax): those are
int8's limits on such inputs, not refusals.

It is a developer's tool, not a test (it needs PyTorch and onnxscript,
which CI does not install): rerun it after adding an op, and when a
PyTorch release changes what its exporters write.

    cargo build --release -p medq-converter --bin converter
    python3 models/testnets/sweep_torch_ops.py [--converter PATH] [--out DIR] [--only NAME]
"""

import argparse
import os
import re
import subprocess
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

C, T = 4, 64


class Wrap(nn.Module):
    def __init__(self, f, mods=None):
        super().__init__()
        self.f = f
        self.m = nn.ModuleList(mods or [])

    def forward(self, x):
        return self.f(self, x)


def conv():
    return nn.Conv1d(C, C, 3, padding=1)


def img(x):
    """The [1, 4, 64] window as a [1, 4, 8, 8] image."""
    return x.reshape(1, C, 8, 8)


CASES = {
    "flip": Wrap(lambda s, x: torch.flip(s.m[0](x), dims=[2]), [conv()]),
    "roll": Wrap(lambda s, x: torch.roll(s.m[0](x), shifts=5, dims=2), [conv()]),
    "std": Wrap(lambda s, x: s.m[0](x).std(dim=2), [conv()]),
    "var_mean": Wrap(lambda s, x: torch.cat(torch.var_mean(s.m[0](x), dim=2), 1), [conv()]),
    "diff": Wrap(lambda s, x: torch.diff(s.m[0](x), dim=2), [conv()]),
    "logsumexp": Wrap(lambda s, x: torch.logsumexp(s.m[0](x), dim=2), [conv()]),
    "glu": Wrap(lambda s, x: F.glu(s.m[0](x), dim=1), [conv()]),
    "adaptive_avg4": Wrap(lambda s, x: F.adaptive_avg_pool1d(s.m[0](x), 4), [conv()]),
    "adaptive_max4": Wrap(lambda s, x: F.adaptive_max_pool1d(s.m[0](x), 4), [conv()]),
    "same_even": Wrap(lambda s, x: s.m[0](x), [nn.Conv1d(C, C, 4, padding="same")]),
    "softmin": Wrap(lambda s, x: F.softmin(s.m[0](x), dim=1), [conv()]),
    "vector_norm": Wrap(lambda s, x: torch.linalg.vector_norm(s.m[0](x), dim=2), [conv()]),
    "clamp_tensor": Wrap(lambda s, x: torch.clamp(s.m[0](x), min=x.mean(dim=2, keepdim=True)), [conv()]),
    "upsample_nearest": Wrap(lambda s, x: F.interpolate(s.m[0](x), scale_factor=2, mode="nearest"), [conv()]),
    "upsample_linear": Wrap(lambda s, x: F.interpolate(s.m[0](x), scale_factor=2, mode="linear", align_corners=False), [conv()]),
    "avgpool_ceil": Wrap(lambda s, x: F.avg_pool1d(s.m[0](x), 3, 2, ceil_mode=True), [conv()]),
    "maxpool_dil": Wrap(lambda s, x: F.max_pool1d(s.m[0](x), 3, 1, padding=1, dilation=2), [conv()]),
    "cumsum": Wrap(lambda s, x: torch.cumsum(s.m[0](x), dim=2), [conv()]),
    "sort": Wrap(lambda s, x: torch.sort(s.m[0](x), dim=2)[0], [conv()]),
    "amax_amin": Wrap(lambda s, x: s.m[0](x).amax(2) - s.m[0](x).amin(2), [conv()]),
    "layernorm_last": Wrap(lambda s, x: s.m[1](s.m[0](x).transpose(1, 2)), [conv(), nn.LayerNorm(C)]),
    "groupnorm": Wrap(lambda s, x: s.m[1](s.m[0](x)), [conv(), nn.GroupNorm(2, C)]),
    "instancenorm": Wrap(lambda s, x: s.m[1](s.m[0](x)), [conv(), nn.InstanceNorm1d(C, affine=True)]),
    "batchnorm_eval": Wrap(lambda s, x: s.m[1](s.m[0](x)), [conv(), nn.BatchNorm1d(C)]),
    "prelu": Wrap(lambda s, x: s.m[1](s.m[0](x)), [conv(), nn.PReLU(C)]),
    "silu_hardswish": Wrap(lambda s, x: F.silu(s.m[0](x)) + F.hardswish(x), [conv()]),
    "unfold": Wrap(lambda s, x: s.m[0](x).unfold(2, 8, 4).mean(-1), [conv()]),
    "einsum": Wrap(lambda s, x: torch.einsum("bct,bdt->bcd", s.m[0](x), x), [conv()]),
    "mha": Wrap(lambda s, x: s.m[0](x.transpose(1, 2), x.transpose(1, 2), x.transpose(1, 2))[0], [nn.MultiheadAttention(C, 2, batch_first=True)]),
    "tel": Wrap(lambda s, x: s.m[0](x.transpose(1, 2)), [nn.TransformerEncoderLayer(C, 2, 16, batch_first=True)]),
    "gru_bi": Wrap(lambda s, x: s.m[0](x.transpose(1, 2))[0], [nn.GRU(C, 8, batch_first=True, bidirectional=True)]),
    "lstm2": Wrap(lambda s, x: s.m[0](x.transpose(1, 2))[1][0], [nn.LSTM(C, 8, num_layers=2, batch_first=True)]),
    "conv_transpose": Wrap(lambda s, x: s.m[0](x), [nn.ConvTranspose1d(C, C, 4, stride=2, padding=1)]),
    "pixel_shuffle": Wrap(lambda s, x: F.pixel_shuffle(s.m[0](x.reshape(1, C, 8, 8)), 2), [nn.Conv2d(C, 4 * C, 3, padding=1)]),
    "topk": Wrap(lambda s, x: torch.topk(s.m[0](x), 5, dim=2)[0], [conv()]),
    "argmax_float": Wrap(lambda s, x: s.m[0](x).argmax(1).float(), [conv()]),
    "atan2": Wrap(lambda s, x: torch.atan2(s.m[0](x), x), [conv()]),
    "fmod": Wrap(lambda s, x: torch.fmod(s.m[0](x), 0.5), [conv()]),
    "remainder": Wrap(lambda s, x: torch.remainder(s.m[0](x), 0.5), [conv()]),
    "hann_window": Wrap(lambda s, x: s.m[0](x) * torch.hann_window(T), [conv()]),
    "outer": Wrap(lambda s, x: torch.outer(s.m[0](x)[0, 0], x[0, 1]), [conv()]),
    "triu_computed": Wrap(lambda s, x: torch.triu(s.m[0](x).reshape(1, 16, 16)), [conv()]),
    "cosine_sim": Wrap(lambda s, x: F.cosine_similarity(s.m[0](x), x, dim=1), [conv()]),
    "median": Wrap(lambda s, x: s.m[0](x).median(dim=2)[0], [conv()]),
    "max_dim": Wrap(lambda s, x: s.m[0](x).max(dim=2)[0], [conv()]),
    "where_scalar": Wrap(lambda s, x: torch.where(s.m[0](x) > 0, s.m[0](x), torch.zeros(1)), [conv()]),
    "log_softmax": Wrap(lambda s, x: F.log_softmax(s.m[0](x), dim=1), [conv()]),
    "elu_celu_selu": Wrap(lambda s, x: F.elu(s.m[0](x)) + F.selu(x) + F.celu(x), [conv()]),
    "softplus_beta": Wrap(lambda s, x: F.softplus(s.m[0](x), beta=2.0), [conv()]),
    "hardtanh": Wrap(lambda s, x: F.hardtanh(s.m[0](x), -0.5, 0.5), [conv()]),
    "round": Wrap(lambda s, x: torch.round(s.m[0](x) * 4) / 4, [conv()]),
    "expand_as": Wrap(lambda s, x: s.m[0](x) * x.mean(1, keepdim=True).expand_as(x), [conv()]),
    "repeat_interleave": Wrap(lambda s, x: torch.repeat_interleave(s.m[0](x), 2, dim=2), [conv()]),
    "bmm": Wrap(lambda s, x: torch.bmm(s.m[0](x), x.transpose(1, 2)), [conv()]),
    "linspace_pos": Wrap(lambda s, x: s.m[0](x) + torch.linspace(0, 1, T), [conv()]),
    "arange_pos": Wrap(lambda s, x: s.m[0](x) + torch.arange(x.shape[2]).float() / T, [conv()]),
    # 2-D, on the window seen as [1, 4, 8, 8] (small medical-image CNNs).
    "conv2d_bn_pool": Wrap(lambda s, x: F.max_pool2d(torch.relu(s.m[1](s.m[0](img(x)))), 2), [nn.Conv2d(C, 8, 3, padding=1), nn.BatchNorm2d(8)]),
    "adaptive_avg2d": Wrap(lambda s, x: F.adaptive_avg_pool2d(s.m[0](img(x)), 2), [nn.Conv2d(C, C, 3, padding=1)]),
    "bilinear2d": Wrap(lambda s, x: F.interpolate(s.m[0](img(x)), scale_factor=2, mode="bilinear", align_corners=False), [nn.Conv2d(C, C, 3, padding=1)]),
    "bilinear2d_corners": Wrap(lambda s, x: F.interpolate(s.m[0](img(x)), size=(15, 15), mode="bilinear", align_corners=True), [nn.Conv2d(C, C, 3, padding=1)]),
    "bicubic2d": Wrap(lambda s, x: F.interpolate(s.m[0](img(x)), scale_factor=2, mode="bicubic"), [nn.Conv2d(C, C, 3, padding=1)]),
    "depthwise2d": Wrap(lambda s, x: s.m[1](F.relu6(s.m[0](img(x)))), [nn.Conv2d(C, C, 3, padding=1, groups=C), nn.Conv2d(C, 8, 1)]),
    "se_block2d": Wrap(lambda s, x: img(x) * torch.sigmoid(s.m[1](torch.relu(s.m[0](img(x).mean((2, 3), keepdim=True))))), [nn.Conv2d(C, 2, 1), nn.Conv2d(2, C, 1)]),
    "channel_shuffle": Wrap(lambda s, x: s.m[0](img(x)).reshape(1, 2, 2, 8, 8).transpose(1, 2).reshape(1, C, 8, 8), [nn.Conv2d(C, C, 3, padding=1)]),
    "avgpool2d_excl_pad": Wrap(lambda s, x: F.avg_pool2d(s.m[0](img(x)), 3, 1, padding=1, count_include_pad=False), [nn.Conv2d(C, C, 3, padding=1)]),
    "unfold2d": Wrap(lambda s, x: F.unfold(s.m[0](img(x)), 2, stride=2), [nn.Conv2d(C, C, 3, padding=1)]),
    "conv_transpose2d": Wrap(lambda s, x: s.m[0](img(x)), [nn.ConvTranspose2d(C, C, 3, stride=2, padding=1, output_padding=1)]),
    "dilated2d": Wrap(lambda s, x: s.m[0](img(x)), [nn.Conv2d(C, C, 3, padding=2, dilation=2)]),
}


def export(model, x, path, exporter):
    with torch.no_grad():
        if exporter == "dynamo":
            torch.onnx.export(model, (x,), path, dynamo=True, external_data=False, verbose=False)
        else:
            torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--converter", default=os.path.join(here, "../../target/release/converter"))
    ap.add_argument("--out", help="keep the exports and .mq files here (default: a temporary directory)")
    ap.add_argument("--only", help="run the cases whose name contains this")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    out = args.out or tempfile.mkdtemp(prefix="medq_sweep_")
    os.makedirs(out, exist_ok=True)
    calib = os.path.join(out, "calib.npy")
    np.save(calib, np.random.default_rng(0).standard_normal((32, C, T)).astype(np.float32))
    x = torch.randn(1, C, T)
    converted = total = 0
    for name, model in CASES.items():
        if args.only and args.only not in name:
            continue
        model.eval()
        for exporter in ["legacy", "dynamo"]:
            total += 1
            path = os.path.join(out, f"{name}_{exporter}.onnx")
            try:
                export(model, x, path, exporter)
            except Exception as e:  # the exporter's refusal, not medq's
                print(f"{name:20} {exporter:7} export fails: {str(e).splitlines()[0][:100]}")
                continue
            run = subprocess.run(
                [args.converter, path, "--calib", calib, "-o", path[:-5] + ".mq"],
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                converted += 1
                sqnr = re.search(r"^  output .*?SQNR ([-0-9.inf]+) dB", run.stdout, re.M)
                print(f"{name:20} {exporter:7} converts, SQNR {sqnr.group(1) if sqnr else '?'} dB")
            else:
                why = next((l for l in run.stderr.splitlines() if l.startswith("error")), run.stderr)
                print(f"{name:20} {exporter:7} REFUSED: {why[:160]}")
    print(f"{converted} of {total} exports convert (files in {out})")


if __name__ == "__main__":
    main()
