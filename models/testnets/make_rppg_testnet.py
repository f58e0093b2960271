#!/usr/bin/env python3
"""Build the converter's camera-photoplethysmography test model: a
DeepPhys-style convolutional attention network (Chen & McDuff, 2018), as
the rPPG toolboxes export it, with the video's frames as the batch.

  rppg_can   inputs "motion" and "appearance", each [8, 3, 24, 24]: eight
             frames of a 24x24 face crop (the normalised frame differences,
             and the frames themselves). Per frame: two 3x3 Conv + Tanh
             layers per branch (8 channels); an attention mask from the appearance branch
             (1x1 Conv, Sigmoid, scaled by H*W over twice its L1 norm, as
             DeepPhys writes it) gates the motion branch; AvgPool 2x2; the
             same again at 16 channels; AvgPool; Flatten; Linear(576 -> 64),
             Tanh; Linear(64 -> 1). Output "pulse" [8, 1]: the pulse
             signal's derivative at each frame. Legacy exporter, opset 17.
  rppg_tscan the same network and data with TS-CAN's temporal shift
             (Liu et al., 2020) before each motion convolution: a third of
             the channels move one frame back, a third one frame forward,
             written by slice assignment into a zeros_like (ONNX ScatterND).
  rppg_physnet input "clip" [1, 3, 8, 24, 24]: a PhysNet (Yu et al., 2019)
             at a small size on the same windows' frames as one clip:
             Conv3d 1x5x5 (3 -> 8) + BatchNorm3d + ReLU, MaxPool3d 1x2x2,
             two Conv3d 3x3x3 (16 channels), MaxPool3d 2x2x2, two more,
             ConvTranspose3d 4x1x1 stride 2 in time + BatchNorm3d + ELU,
             AdaptiveAvgPool3d((8, 1, 1)), Conv3d 1x1x1 -> "pulse" [1, 8].

Both are trained (Adam, 300 steps of 4 windows) on synthetic video at 30 frames a second: a
skin-coloured disc on a darker background (24x24 pixels), its colour modulated by a pulse
of 0.8-2.5 Hz with a small amplitude, slow illumination drift, a few pixels
of head motion and sensor noise. The target is the pulse's derivative,
normalised per window.

This writes, next to this script:

  rppg_can.onnx, rppg_tscan.onnx, rppg_physnet.onnx
  rppg_motion_calib.npy, rppg_appearance_calib.npy   float16 [12, 8, 3, 24, 24]
  rppg_motion_test.npy,  rppg_appearance_test.npy    float16 [12, 8, 3, 24, 24]

(each sample is one window of 8 frames: whole inputs, whose dimension 0 is
the frames), and PhysNet's clips of the same frames:

  rppg_clip_calib.npy, rppg_clip_test.npy           float16 [12, 1, 3, 8, 24, 24]
 and checks the export with onnx.checker and with onnxruntime
against PyTorch on every test window. Reruns give byte-identical files.

Usage: python3 models/testnets/make_rppg_testnet.py [--out DIR] [--only NAME]
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn as nn

FPS = 30.0
FRAMES = 8
SIZE = 24


class Attention(nn.Module):
    """DeepPhys's soft attention mask."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x):
        mask = torch.sigmoid(self.conv(x))
        _, _, h, w = mask.shape
        norm = 2 * torch.norm(mask, p=1, dim=(1, 2, 3)).reshape(-1, 1, 1, 1)
        return mask * h * w / norm


class TemporalShift(nn.Module):
    """TS-CAN's temporal shift over the frames of one window."""

    def forward(self, x):
        nt, c, h, w = x.size()
        x = x.view(1, nt, c, h, w)
        fold = c // 3
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
        out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
        return out.view(nt, c, h, w)


def block3d(i, o, k, p):
    return nn.Sequential(nn.Conv3d(i, o, k, padding=p), nn.BatchNorm3d(o), nn.ReLU())


class PhysNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = block3d(3, 8, [1, 5, 5], [0, 2, 2])
        self.c2 = block3d(8, 16, 3, 1)
        self.c3 = block3d(16, 16, 3, 1)
        self.c4 = block3d(16, 16, 3, 1)
        self.c5 = block3d(16, 16, 3, 1)
        self.up = nn.Sequential(
            nn.ConvTranspose3d(16, 16, [4, 1, 1], stride=[2, 1, 1], padding=[1, 0, 0]),
            nn.BatchNorm3d(16),
            nn.ELU(),
        )
        self.pool_space = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
        self.pool_both = nn.MaxPool3d((2, 2, 2), stride=2)
        self.frames = nn.AdaptiveAvgPool3d((FRAMES, 1, 1))
        self.out = nn.Conv3d(16, 1, 1)

    def forward(self, clip):
        x = self.pool_space(self.c1(clip))
        x = self.pool_both(self.c3(self.c2(x)))
        x = self.up(self.c5(self.c4(x)))
        return self.out(self.frames(x)).view(-1, FRAMES)


class ConvAttentionNet(nn.Module):
    def __init__(self, shift=False):
        super().__init__()
        self.shift = TemporalShift() if shift else nn.Identity()
        c1, c2 = 8, 16
        self.m1 = nn.Conv2d(3, c1, 3, padding=1)
        self.m2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.a1 = nn.Conv2d(3, c1, 3, padding=1)
        self.a2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.att1 = Attention(c1)
        self.m3 = nn.Conv2d(c1, c2, 3, padding=1)
        self.m4 = nn.Conv2d(c2, c2, 3, padding=1)
        self.a3 = nn.Conv2d(c1, c2, 3, padding=1)
        self.a4 = nn.Conv2d(c2, c2, 3, padding=1)
        self.att2 = Attention(c2)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(c2 * (SIZE // 4) ** 2, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, motion, appearance):
        t = self.shift
        m = torch.tanh(self.m2(t(torch.tanh(self.m1(t(motion))))))
        a = torch.tanh(self.a2(torch.tanh(self.a1(appearance))))
        m = self.pool(m * self.att1(a))
        a = self.pool(a)
        m = torch.tanh(self.m4(t(torch.tanh(self.m3(t(m))))))
        a = torch.tanh(self.a4(torch.tanh(self.a3(a))))
        m = self.pool(m * self.att2(a))
        return self.fc2(torch.tanh(self.fc1(m.flatten(1))))


def video(rng, n):
    """n windows of FRAMES frames: (motion, appearance, target)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    skin = np.array([0.85, 0.62, 0.50], np.float32)
    motion = np.empty((n, FRAMES, 3, SIZE, SIZE), np.float32)
    appearance = np.empty_like(motion)
    target = np.empty((n, FRAMES, 1), np.float32)
    for i in range(n):
        f = rng.uniform(0.8, 2.5)
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.005, 0.02)
        t = np.arange(FRAMES + 1) / FPS
        pulse = np.sin(2 * np.pi * f * t + phase)
        light = 1.0 + rng.uniform(-0.1, 0.1) + 0.02 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6))
        cy, cx = rng.uniform(10, 14, 2)
        r = rng.uniform(7, 10)
        drift = rng.normal(0, 0.3, (FRAMES + 1, 2)).cumsum(0)
        frames = np.empty((FRAMES + 1, 3, SIZE, SIZE), np.float32)
        for k in range(FRAMES + 1):
            d = np.hypot(yy - cy - drift[k, 0], xx - cx - drift[k, 1])
            face = 1.0 / (1.0 + np.exp((d - r) * 1.5))
            colour = skin * (1 + amp * pulse[k] * np.array([0.3, 1.0, 0.5]))
            img = light[k] * (0.25 + face[None] * (colour[:, None, None] - 0.25))
            frames[k] = img + rng.normal(0, 0.004, img.shape)
        frames = frames.clip(1e-3, 1)
        # DeepPhys's inputs: normalised differences, and standardised frames.
        diff = (frames[1:] - frames[:-1]) / (frames[1:] + frames[:-1])
        motion[i] = diff / diff.std()
        app = frames[1:]
        appearance[i] = (app - app.mean()) / app.std()
        dp = np.diff(pulse)
        target[i, :, 0] = dp / (np.abs(dp).max() + 1e-6)
    return motion, appearance, target


def clips(appearance):
    """Windows of frames [N, 8, 3, H, W] as PhysNet's clips [N, 1, 3, 8, H, W]."""
    return np.ascontiguousarray(appearance.transpose(0, 2, 1, 3, 4)[:, None])


def train(net, rng):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(300):
        m, a, y = video(rng, 4)
        if isinstance(net, PhysNet):
            out = net(torch.from_numpy(clips(a)[:, 0])).reshape(-1, 1)
        else:
            out = torch.cat(
                [net(torch.from_numpy(m[i]), torch.from_numpy(a[i])) for i in range(4)]
            )
        loss = nn.functional.mse_loss(out, torch.from_numpy(y.reshape(-1, 1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only", help="make only this model (the data files are always written)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261207)
    calib = video(rng, 12)
    test = video(rng, 12)
    for tag, (m, a, _) in [("calib", calib), ("test", test)]:
        # float16 halves the files; the models read them as float32.
        np.save(os.path.join(args.out, f"rppg_motion_{tag}.npy"), m.astype(np.float16))
        np.save(os.path.join(args.out, f"rppg_appearance_{tag}.npy"), a.astype(np.float16))
        np.save(os.path.join(args.out, f"rppg_clip_{tag}.npy"), clips(a).astype(np.float16))
    calib = tuple(v.astype(np.float16).astype(np.float32) for v in calib)
    test = tuple(v.astype(np.float16).astype(np.float32) for v in test)
    import onnx
    import onnxruntime as ort

    # Each network has its own seeds, so a model made alone is the one a
    # full run makes.
    nets = [
        ("rppg_can", lambda: ConvAttentionNet(False)),
        ("rppg_tscan", lambda: ConvAttentionNet(True)),
        ("rppg_physnet", PhysNet),
    ]
    for k, (name, make) in enumerate(nets):
        if args.only and name != args.only:
            continue
        torch.manual_seed(k)
        net = train(make(), np.random.default_rng(100 + k))
        path = os.path.join(args.out, f"{name}.onnx")
        physnet = isinstance(net, PhysNet)
        if physnet:
            example = (torch.from_numpy(clips(calib[1])[0]),)
            names = ["clip"]
        else:
            example = (torch.from_numpy(calib[0][0]), torch.from_numpy(calib[1][0]))
            names = ["motion", "appearance"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, example, path, dynamo=False, opset_version=17, do_constant_folding=True,
                input_names=names, output_names=["pulse"],
            )
        onnx.checker.check_model(onnx.load(path), full_check=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        corr = []
        with torch.no_grad():
            for i in range(12):
                m, a = test[0][i], test[1][i]
                if physnet:
                    clip = clips(test[1])[i]
                    got = sess.run(None, {"clip": clip})[0].reshape(-1, 1)
                    want = net(torch.from_numpy(clip)).numpy().reshape(-1, 1)
                else:
                    got = sess.run(None, {"motion": m, "appearance": a})[0]
                    want = net(torch.from_numpy(m), torch.from_numpy(a)).numpy()
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
                corr.append(np.corrcoef(got[:, 0], test[2][i, :, 0])[0, 1])
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print(f"{name}: {os.path.getsize(path)} B, median correlation with the pulse {np.median(corr):.2f}, ops {ops}")


if __name__ == "__main__":
    main()
