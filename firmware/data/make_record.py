#!/usr/bin/env python3
"""Derive `mitbih208.i16` from the ECG excerpt that ships with scipy.

scipy 1.11-1.14 ship `scipy/misc/ecg.dat`: an .npz holding `ecg`, uint16 ADC
codes of MIT-BIH Arrhythmia Database record 208, lead MLII, 19:35-24:35
(300 s at 360 Hz). scipy converts it to millivolts as (ecg - 1024) / 200.

We keep the first SECONDS seconds as little-endian int16 `ecg - 1024`
(200 units per mV), which is what the firmware replays as its "front end".

Where ecg.dat comes from, in order:
  1. `--wheel PATH`: a scipy wheel (a zip); get one without installing with
       pip download scipy==1.13.1 --no-deps --only-binary=:all: -d /tmp/pipdl
  2. `--npz PATH`: an already extracted ecg.dat
  3. an installed scipy whose package still contains misc/ecg.dat

Usage: python3 firmware/data/make_record.py --wheel /tmp/pipdl/scipy-1.13.1-*.whl
Needs only numpy.
"""

import argparse
import glob
import hashlib
import importlib.util
import io
import os
import sys
import zipfile

import numpy as np

FS = 360
SECONDS = 120
ADC_ZERO = 1024
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "mitbih208.i16")


def ecg_dat_bytes(args) -> bytes:
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as z:
            return z.read("scipy/misc/ecg.dat")
    if args.npz:
        with open(args.npz, "rb") as f:
            return f.read()
    spec = importlib.util.find_spec("scipy")
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            path = os.path.join(base, "misc", "ecg.dat")
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    return f.read()
    wheels = sorted(glob.glob("/tmp/pipdl/scipy-1.1[1-4].*.whl"))
    if wheels:
        with zipfile.ZipFile(wheels[-1]) as z:
            return z.read("scipy/misc/ecg.dat")
    sys.exit("no ecg.dat: pass --wheel or --npz (see the docstring)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", help="scipy 1.11-1.14 wheel")
    ap.add_argument("--npz", help="extracted scipy/misc/ecg.dat")
    ap.add_argument("--seconds", type=int, default=SECONDS)
    args = ap.parse_args()

    with np.load(io.BytesIO(ecg_dat_bytes(args))) as f:
        raw = f["ecg"].astype(np.int64)
    assert raw.shape == (300 * FS,), raw.shape
    # scipy's documented checks on the converted signal.
    mv = (raw - ADC_ZERO) / 200.0
    assert abs(mv.mean() - -0.16510875) < 1e-6 and abs(mv.std() - 0.5992473991177294) < 1e-9

    n = args.seconds * FS
    codes = raw[:n] - ADC_ZERO
    assert codes.min() >= -32768 and codes.max() <= 32767
    data = codes.astype("<i2").tobytes()
    with open(OUT, "wb") as f:
        f.write(data)
    print(f"wrote {OUT}: {n} samples ({args.seconds} s at {FS} Hz), {len(data)} bytes, "
          f"range [{codes.min()}, {codes.max()}], sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
