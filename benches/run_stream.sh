#!/usr/bin/env bash
# `medq run` on many samples: peak RSS and throughput on 1 thread and on
# every core, and the two outputs compared byte for byte.
#
#   benches/run_stream.sh [SAMPLES]     (default 100000)
#
# Tiles models/ecg5000/test_x.npy ([1000, 1, 140] f32) into a temporary
# [SAMPLES, 1, 140] file (not kept) and runs the ECG model the firmware
# embeds (MEDQ_MODEL overrides it). Needs python3 with numpy and GNU time
# (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-100000}
model=${MEDQ_MODEL:-firmware/model/ecg.mq}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -q -p medq-cli
bin=${CARGO_TARGET_DIR:-target}/release/medq

python3 - "$samples" "$work/beats.npy" <<'EOF'
import sys
import numpy as np
n, out = int(sys.argv[1]), sys.argv[2]
x = np.load("models/ecg5000/test_x.npy")
np.save(out, np.resize(x, (n,) + x.shape[1:]).astype(np.float32))
EOF
ls -l "$work/beats.npy" | awk '{print "input: " $5 " bytes"}'

measure() { # label, medq run arguments...
    local label=$1
    shift
    /usr/bin/time -v "$bin" run "$model" --input "$work/beats.npy" "$@" 2>"$work/time" |
        sed "s/^/  /"
    awk -v l="$label" -F': ' '
        /Maximum resident set size/ { rss = $2 }
        /Elapsed \(wall clock\)/ { wall = $2 }
        /Percent of CPU/ { cpu = $2 }
        END { printf "%s: peak RSS %.1f MB, wall %s, CPU %s\n", l, rss / 1024, wall, cpu }
    ' "$work/time"
}

measure "1 thread" --output "$work/y1.npy" --threads 1
measure "all cores ($(nproc))" --output "$work/yn.npy"
cmp "$work/y1.npy" "$work/yn.npy"
echo "outputs byte-identical"
