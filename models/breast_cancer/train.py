#!/usr/bin/env python3
"""Train the breast-cancer diagnosis MLP (30 features, malignant vs benign) and export
it to ONNX.

Deterministic (seeded, deterministic algorithms, one CPU thread). Writes, next to this
script:
  model.onnx        float model, input `features` [1,30] (STANDARDIZED) -> `probs` [1,2]
  calib.npy         float32 [200,30]  standardized, from the training part
  test_x.npy        float32 [228,30]  standardized, the whole held-out 40 %
  test_y.npy        int64   [228]     0 = malignant, 1 = benign (scikit-learn's coding)
  labels.txt        class names, one per line (index order)
  standardize.json  feature names and the training mean / std used for standardizing
  train_log.json    accuracies, per-class recall, parameter count, ONNX ops

Data: the Wisconsin Diagnostic Breast Cancer data bundled with scikit-learn
(`sklearn.datasets.load_breast_cancer`, read from the installed package, no download).

Standardization is done in the DATA, not in the graph: the raw features span
0.001 .. 4254, so an in-graph Sub/Div would put them all on one int8 input scale and
wipe out the small features. Callers compute (x - mean) / std with standardize.json.

Split: 569 samples, stratified 60 % train (341) / 40 % test (228). A large test share
keeps one test sample at < 0.5 % of accuracy. Fixed schedule, last epoch kept (no
selection on the test part).

Usage: python3 models/breast_cancer/train.py [--epochs N] [--out DIR]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zoo_data as zd  # noqa: E402
import zoo_train as zt  # noqa: E402

SEED = 20240921
LABELS = ["malignant", "benign"]
TEST_FRACTION = 0.4
N_CALIB = 200


class Mlp(nn.Module):
    def __init__(self, n_in: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_in, 32),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(16, len(LABELS)),
        )

    def forward(self, x):
        return self.body(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    zt.set_determinism(SEED)

    import sklearn
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    assert list(ds.target_names) == LABELS, ds.target_names
    x_all = ds.data.astype(np.float64)
    y_all = ds.target.astype(np.int64)

    rng = np.random.default_rng(SEED)
    te_idx = zd.stratified_pick(y_all, int(round(TEST_FRACTION * len(y_all))), rng, min_per_class=1)
    tr_idx = zd.complement(len(y_all), te_idx)
    mean = x_all[tr_idx].mean(0)
    std = x_all[tr_idx].std(0)
    x_std = ((x_all - mean) / std).astype(np.float32)
    x_tr, y_tr = x_std[tr_idx], y_all[tr_idx]
    x_te, y_te = x_std[te_idx], y_all[te_idx]

    net = Mlp(x_all.shape[1])
    best_epoch, secs = zt.train(
        net,
        x_tr,
        y_tr,
        epochs=args.epochs,
        seed=SEED,
        batch=32,
        lr=3e-3,
        weight_decay=1e-2,
        class_w=zt.inverse_sqrt_class_weights(y_tr, len(LABELS)),
        # Feature noise only (no time axis to shift).
        augment=lambda x, g: x + 0.05 * torch.randn(x.shape, generator=g),
        log_every=25,
    )
    tr_acc, _, _ = zt.evaluate(net, x_tr, y_tr)
    te_acc, _, te_pred = zt.evaluate(net, x_te, y_te)

    calib_sel = zd.stratified_pick(y_tr, N_CALIB, rng, min_per_class=2)
    calib = x_tr[calib_sel]
    test_x, test_y = x_te, y_te

    os.makedirs(args.out, exist_ok=True)
    ops, op_counts, max_diff, onnx_pred = zt.export_and_verify(
        net, test_x, os.path.join(args.out, "model.onnx"), "features"
    )
    assert (onnx_pred == te_pred).all()

    with open(os.path.join(args.out, "standardize.json"), "w") as f:
        json.dump(
            {
                "formula": "x_std = (x - mean) / std, per feature, before the model",
                "feature_names": [str(n) for n in ds.feature_names],
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
            },
            f,
            indent=2,
        )
        f.write("\n")

    zd.save_artifacts(
        args.out,
        calib=calib,
        test_x=test_x,
        test_y=test_y,
        labels=LABELS,
        log={
            "name": "breast_cancer",
            "dataset": f"Wisconsin Diagnostic Breast Cancer (scikit-learn {sklearn.__version__} load_breast_cancer)",
            "seed": SEED,
            "torch_version": torch.__version__,
            "onnx_file": "model.onnx",
            "input_name": "features",
            "input_shape": [1, x_all.shape[1]],
            "input_preprocessing": "standardized with standardize.json (train mean/std)",
            "params": zt.n_params(net),
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "onnx_ops": ops,
            "onnx_op_counts": op_counts,
            "accuracy": {
                "train_341": round(tr_acc, 4),
                "committed_test_228 (onnx reference evaluator)": round(float((onnx_pred == test_y).mean()), 4),
            },
            "committed_test_per_class_recall": zd.per_class_recall(onnx_pred, test_y, LABELS),
            "max_abs_diff_onnx_vs_torch": max_diff,
            "class_counts": {
                "train": np.bincount(y_tr, minlength=len(LABELS)).tolist(),
                "calib": np.bincount(y_tr[calib_sel], minlength=len(LABELS)).tolist(),
                "test": np.bincount(test_y, minlength=len(LABELS)).tolist(),
            },
        },
    )
    print(f"training took {secs:.1f} s")


if __name__ == "__main__":
    main()
