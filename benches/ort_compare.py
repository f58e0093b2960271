#!/usr/bin/env python3
"""onnxruntime columns for the host table of benches/RESULTS.md (optional, not in CI).

For every model of the host section, times onnxruntime on the same ONNX model and the
same sample as medq and tract, and stores two columns in the results file:

- ``ort_f32_us``: the ONNX model as committed;
- ``ort_int8_us``: the same model quantized by onnxruntime's ``quantize_static``: QDQ
  format, per-channel int8 weights, int8 activations, calibrated (MinMax) on the
  model's ``calib.npy``. Ops ORT does not quantize (e.g. LSTM/GRU) stay float.

Timing is the harness's: batch 1, one intra-op and one inter-op thread, all graph
optimizations, sequential execution; a warm-up, then interleaved rounds (ORT f32 batch,
ORT int8 batch, ...), each batch about 20 ms; min and median per inference over the
rounds, in µs. ORT runs in this process, not interleaved with medq and tract, so
compare the columns as ratios on a machine with steady load.

Run it through the harness, which prepares the models and re-renders RESULTS.md::

    benches/run.sh --host --ort

or by hand after a host run (WORK holds manifest.json, by default
$CARGO_TARGET_DIR/medq-bench)::

    python3 benches/ort_compare.py --work WORK --results benches/results.json
    target/release/side_by_side render

Needs numpy, onnx and onnxruntime (pip install onnxruntime onnx numpy).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROUND_TARGET_S = 0.020


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


class CalibReader(CalibrationDataReader):
    """Feeds calib.npy ([N, ...]) one sample at a time."""

    def __init__(self, input_name, calib):
        self.batches = iter([{input_name: calib[i : i + 1]} for i in range(len(calib))])

    def get_next(self):
        return next(self.batches, None)


def quantize(onnx_path, calib_path, out_path):
    calib = np.load(calib_path).astype(np.float32)
    input_name = session(onnx_path).get_inputs()[0].name
    # ORT's recommended pre-processing (shape inference, graph clean-up);
    # the original model if it refuses.
    pre = out_path + ".pre.onnx"
    try:
        quant_pre_process(onnx_path, pre)
    except Exception as e:  # noqa: BLE001
        print(f"{onnx_path}: quant_pre_process failed ({e}); quantizing as is", file=sys.stderr)
        pre = onnx_path
    quantize_static(
        pre,
        out_path,
        CalibReader(input_name, calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


class Runner:
    def __init__(self, path, sample):
        self.sess = session(path)
        self.feed = {self.sess.get_inputs()[0].name: sample}

    def infer(self):
        self.sess.run(None, self.feed)

    def batch_size(self):
        self.infer()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < ROUND_TARGET_S / 2 or n < 3:
            self.infer()
            n += 1
        per = (time.perf_counter() - start) / n
        return max(1, int(np.ceil(ROUND_TARGET_S / per)))


def interleaved(runners, rounds):
    batches = [r.batch_size() for r in runners]
    times = [[] for _ in runners]
    for _ in range(rounds):
        for r, batch, t in zip(runners, batches, times):
            start = time.perf_counter()
            for _ in range(batch):
                r.infer()
            t.append((time.perf_counter() - start) * 1e6 / batch)
    return [{"min": round(min(t), 2), "median": round(statistics.median(t), 2)} for t in times]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--work", default=os.path.join(target, "medq-bench"))
    ap.add_argument("--results", default="benches/results.json")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()

    with open(os.path.join(args.work, "manifest.json")) as f:
        manifest = {m["name"]: m for m in json.load(f)["models"]}
    with open(args.results) as f:
        results = json.load(f)
    host = results.get("host")
    if not host:
        sys.exit(f"{args.results} has no host section: run benches/run.sh --host first")

    print(f"{'model':<20} {'ORT f32 µs min/median':>24} {'ORT int8 µs min/median':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for row in host["rows"]:
            m = manifest.get(row["model"])
            if m is None:
                sys.exit(f"{row['model']} is not in {args.work}/manifest.json: rerun run.sh --host")
            sample = np.fromfile(m["sample"], dtype="<f4").reshape(m["input_shape"])
            runners = [Runner(m["onnx"], sample)]
            q8 = os.path.join(tmp, row["model"] + ".int8.onnx")
            try:
                quantize(m["onnx"], m["calib"], q8)
                runners.append(Runner(q8, sample))
            except Exception as e:  # noqa: BLE001 - report and keep the f32 column
                print(f"{row['model']}: ORT int8 quantization failed: {e}", file=sys.stderr)
            t = interleaved(runners, args.rounds)
            row["ort_f32_us"] = t[0]
            row["ort_int8_us"] = t[1] if len(t) > 1 else None
            cells = [f"{x['min']:.2f}/{x['median']:.2f}" if x else "—" for x in
                     (row["ort_f32_us"], row["ort_int8_us"])]
            print(f"{row['model']:<20} {cells[0]:>24} {cells[1]:>24}")
            if row["ort_int8_us"] is None:
                del row["ort_int8_us"]
    host["ort"] = {"onnxruntime": ort.__version__, "rounds": args.rounds}
    with open(args.results, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"updated {args.results} (run.sh --ort re-renders RESULTS.md; by hand: side_by_side render)")


if __name__ == "__main__":
    main()
