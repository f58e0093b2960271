#!/usr/bin/env bash
# The main job on the bundled ECG5000 model: convert to int8 with a report,
# inspect the file, run it on the held-out beats and check its self-test.
#
#   models/ecg5000/run.sh             convert + report + inspect + run
#   models/ecg5000/run.sh --aarch64   also run the aarch64 build of `medq`
#                                     under qemu-aarch64 and require
#                                     byte-identical outputs, of this file
#                                     and of an all-int16 one (NEON int16
#                                     kernels there, AVX2 or reference here)
set -euo pipefail
cd "$(dirname "$0")/../.."
m=models/ecg5000
out=${MEDQ_OUT:-target/ecg5000}
mkdir -p "$out"

target=${CARGO_TARGET_DIR:-target}
if [ -n "${MEDQ_BIN_DIR:-}" ]; then
    # test.sh: the workspace tests built `converter` and `medq` (a build here,
    # with these packages' own features, would compile the converter again).
    bin=$MEDQ_BIN_DIR
else
    # The dev profile builds dependencies (tract) optimized; see Cargo.toml.
    cargo build --locked -q -p medq-converter -p medq-cli
    bin=$target/debug
fi

"$bin/converter" "$m/ecg.onnx" -o "$out/ecg.mq" \
    --calib "$m/calib.npy" --eval "$m/test_x.npy" --labels "$m/test_y.npy" \
    --class-names "$m/labels.txt" --report "$out/report.json"
echo
"$bin/medq" inspect "$out/ecg.mq" | sed -n '1,20p'
echo
"$bin/medq" run "$out/ecg.mq" --input "$m/test_x.npy" --output "$out/probs.npy" --labels "$m/test_y.npy"
"$bin/medq" selftest "$out/ecg.mq"

if [ "${1:-}" = "--aarch64" ]; then
    arm=$target/aarch64-unknown-linux-gnu/release/medq
    [ -x "$arm" ] || cargo build --release --locked -q -p medq-cli --target aarch64-unknown-linux-gnu
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" run "$out/ecg.mq" \
        --input "$m/test_x.npy" --output "$out/probs_aarch64.npy"
    cmp "$out/probs.npy" "$out/probs_aarch64.npy"
    echo "aarch64 output is byte-identical to the host's"

    # Every layer raised to int16: the aarch64 int16 kernels, chosen by the
    # interpreter as a device would, against the host's.
    "$bin/converter" "$m/ecg.onnx" -o "$out/ecg16.mq" --calib "$m/calib.npy" --precision int16 \
        > "$out/convert16.log"
    "$bin/medq" run "$out/ecg16.mq" --input "$m/test_x.npy" --output "$out/probs16.npy"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" run "$out/ecg16.mq" \
        --input "$m/test_x.npy" --output "$out/probs16_aarch64.npy"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" bench "$out/ecg16.mq" --iterations 1 \
        > "$out/bench16_aarch64.txt"
    grep -q conv_s16_neon "$out/bench16_aarch64.txt" || {
        echo "the aarch64 build did not run conv_s16_neon on the int16 file:" >&2
        cat "$out/bench16_aarch64.txt" >&2
        exit 1
    }
    cmp "$out/probs16.npy" "$out/probs16_aarch64.npy"
    echo "aarch64 output of the int16 file (NEON int16 kernels) is byte-identical to the host's"
fi
