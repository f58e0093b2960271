#!/usr/bin/env bash
# Coverage-guided fuzzing of medq's input surfaces with cargo fuzz (libFuzzer,
# AddressSanitizer, nightly Rust).
#
#   fuzz/run.sh --smoke [SECONDS]   every runtime target for SECONDS (default 20) each,
#                                   the ONNX loader too unless --no-onnx; CI runs this
#   fuzz/run.sh TARGET [SECONDS] [RUNS]
#                                   one target, long (default 3600 s, or until RUNS
#                                   executions), with its coverage and execution
#                                   count printed at the end
#
# Targets: parse, parse_invoke, verify, npy (runtime and CLI; quick to build) and
# onnx_load (the converter's loader: builds tract with sanitizers, ~10 min the
# first time). Corpora start from the repository's own files (seeds below) and
# grow in fuzz/corpus/TARGET (not committed). A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the run; turn it into a regression test
# before fixing it (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)

install() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
}

# `medq` or `converter` with arguments: the binaries in $MEDQ_BIN_DIR when it
# is set (test.sh points it at the workspace tests' build), else `cargo run`.
tool() {
    local bin=$1
    shift
    if [ -n "${MEDQ_BIN_DIR:-}" ]; then
        "$MEDQ_BIN_DIR/$bin" "$@"
    else
        (cd "$root" && cargo run -q --locked --bin "$bin" -- "$@")
    fi
}

# Seed corpora from the repository: the firmware's model (plain and signed with
# the fuzzing key), the ECG model pruned and stored sparse (int8 and pow2), the zoo's and test
# nets' ONNX files, small .npy files.
seed() {
    local seeds=seeds
    rm -rf "$seeds" && mkdir -p "$seeds"/{mq,npy,onnx}
    cp "$root/firmware/model/ecg.mq" "$seeds/mq/"
    # The fuzzing key: the 32 bytes 7, 7, …, as PKCS#8 PEM (a test key).
    python3 -c 'import base64; print("-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(bytes.fromhex("302e020100300506032b657004220420") + bytes([7] * 32)).decode() + "\n-----END PRIVATE KEY-----")' >"$seeds/fuzz.key"
    tool medq sign "$root/fuzz/$seeds/mq/ecg.mq" \
        --key "$root/fuzz/$seeds/fuzz.key" --output "$root/fuzz/$seeds/mq/ecg.signed.mq" >/dev/null
    rm "$seeds/fuzz.key"
    # A pruned model, its Conv and FullyConnected weights stored sparse.
    tool converter "$root/models/ecg5000/ecg.onnx" \
        -o "$root/fuzz/$seeds/mq/ecg.sparse.mq" --calib "$root/models/ecg5000/calib.npy" \
        --prune-weights 0.5 --quiet
    # The same with power-of-two weights: a bitmap and 3-bit codes.
    tool converter "$root/models/ecg5000/ecg.onnx" \
        -o "$root/fuzz/$seeds/mq/ecg.sparse-pow2.mq" --calib "$root/models/ecg5000/calib.npy" \
        --prune-weights 0.5 --weights pow2 --quiet
    for d in "$root"/models/*/; do
        [ -f "$d/test_y.npy" ] && cp "$d/test_y.npy" "$seeds/npy/$(basename "$d")_y.npy"
    done
    cp "$root"/models/testnets/*.onnx "$root"/models/ecg5000/ecg.onnx "$seeds/onnx/"
}

seeds_of() {
    case "$1" in
        parse | parse_invoke | verify) echo seeds/mq ;;
        npy) echo seeds/npy ;;
        onnx_load) echo seeds/onnx ;;
        *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

features_of() { [ "$1" = onnx_load ] && echo "--features onnx" || true; }

# AddressSanitizer where our unsafe kernels run. The npy and ONNX readers are
# safe Rust (debug assertions and overflow checks stay on), and without ASan
# they run ~5x faster, which is what makes their long runs possible. A smoke
# run gives npy ASan too: every runtime target then shares one build of the
# runtime and CLI (a second, uninstrumented one took CI about a minute).
smoke=0
sanitizer_of() {
    case "$1" in
        npy) [ "$smoke" = 1 ] && echo address || echo none ;;
        onnx_load) echo none ;;
        *) echo address ;;
    esac
}

run_target() { # target seconds [runs]
    local t=$1 secs=$2 runs=${3:--1}
    mkdir -p "corpus/$t"
    # -rss_limit_mb: the loaders may legitimately use a few hundred MB.
    # -timeout: one input taking 30 s is a hang (libFuzzer's default waits
    # 20 minutes, longer than a smoke run).
    # shellcheck disable=SC2046
    cargo +nightly fuzz run -s "$(sanitizer_of "$t")" $(features_of "$t") "$t" "corpus/$t" "$(seeds_of "$t")" -- \
        -max_total_time="$secs" -runs="$runs" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 2>&1 |
        tee "corpus/$t.log" | grep -E '^(#[0-9]+.*(INITED|DONE)|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' || true
    rm -f /dev/shm/medq-fuzz-* # the npy and onnx_load targets' scratch files
    if grep -q -E '^(==[0-9]+==ERROR|SUMMARY: libFuzzer|thread .* panicked)' "corpus/$t.log"; then
        echo "fuzz/run.sh: $t found a crash (input in fuzz/artifacts/$t/):"
        tail -40 "corpus/$t.log"
        return 1
    fi
}

install
seed
case "${1:---smoke}" in
    --smoke)
        smoke=1
        secs=${2:-20}
        targets=(parse parse_invoke verify npy)
        [ "${3:-}" = --no-onnx ] || targets+=(onnx_load)
        for t in "${targets[@]}"; do
            echo "-- $t (${secs} s)"
            run_target "$t" "$secs"
        done
        ;;
    *)
        run_target "$1" "${2:-3600}" "${3:--1}"
        ;;
esac
