#!/usr/bin/env python3
"""A published face detector, as camera-photoplethysmography pipelines use
it: MediaPipe's BlazeFace short-range model (`face_detection_short_range.tflite`
from the `mediapipe` wheel on PyPI, Apache-2.0), converted by tf2onnx from
its TFLite file, unchanged.

  mp_face_short_range  input `input` [1, 128, 128, 3] (RGB scaled to
                       [-1, 1]), outputs `regressors` [1, 896, 16] (box and
                       six keypoints per anchor) and `classificators`
                       [1, 896, 1] (raw face-score logits: the application
                       applies the sigmoid)

Images: crops of scikit-image's sample pictures (from its wheel): about half
around the astronaut's face (Eileen Collins, NASA, public domain) at random
scales, offsets, flips and gains, the rest of the other pictures. Stored as
uint8 RGB, `mp_face_short_range_{calib,test,select}_u8.npy` (12 each; the
select set is for `--select`): the model's input is `u8 / 127.5 − 1`, which
the tests compute.

Needs tf2onnx and TensorFlow (for the PNG decoding and resizing) as for
make_tf_testnets.py; the two wheels are only downloaded and unzipped:

    TF_ENABLE_ONEDNN_OPTS=0 /tmp/tfenv/bin/python models/testnets/make_mediapipe_testnet.py
"""

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import tensorflow as tf
import tf2onnx

SEED = 20261205
N = 12
WHEELS = ["mediapipe==0.10.14", "scikit-image==0.26.0"]
TFLITE = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
PICTURES = ["astronaut", "camera", "coffee", "chelsea", "motorcycle_left", "color"]


def fetch(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *WHEELS], check=True)
    wanted = [TFLITE] + [f"skimage/data/{p}.png" for p in PICTURES]
    for wheel in os.listdir(tmp):
        if wheel.endswith(".whl"):
            with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
                for name in set(z.namelist()) & set(wanted):
                    z.extract(name, tmp)


def crops(rng, pictures, n):
    """n uint8 128×128 RGB crops, about half around the astronaut's face."""
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            img = pictures["astronaut"]
            size = int(rng.uniform(160, 400))
            cy, cx = 110 + rng.normal(0, 25), 215 + rng.normal(0, 25)  # the face, in 512×512
        else:
            img = pictures[PICTURES[1 + rng.integers(len(PICTURES) - 1)]]
            h, w, _ = img.shape
            size = int(rng.uniform(100, min(h, w)))
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        h, w, _ = img.shape
        y0 = int(np.clip(cy - size // 2, 0, h - size))
        x0 = int(np.clip(cx - size // 2, 0, w - size))
        c = tf.image.resize(img[None, y0 : y0 + size, x0 : x0 + size].astype(np.float32), (128, 128)).numpy()[0]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out.append(np.clip(np.round(c * rng.uniform(0.7, 1.1)), 0, 255).astype(np.uint8))
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fetch(tmp)
        onnx_path = os.path.join(args.out, "mp_face_short_range.onnx")
        tf2onnx.convert.from_tflite(os.path.join(tmp, TFLITE), opset=13, output_path=onnx_path)
        pictures = {
            p: tf.io.decode_png(tf.io.read_file(os.path.join(tmp, f"skimage/data/{p}.png")), channels=3).numpy()
            for p in PICTURES
        }
    rng = np.random.default_rng(SEED)
    for split in ["calib", "test", "select"]:
        np.save(os.path.join(args.out, f"mp_face_short_range_{split}_u8.npy"), crops(rng, pictures, N))
    print(f"mp_face_short_range: {os.path.getsize(onnx_path)} B")


if __name__ == "__main__":
    main()
