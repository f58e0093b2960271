#!/usr/bin/env bash
# medq side by side: writes benches/RESULTS.md and benches/results.json and
# prints the tables.
#
#   benches/run.sh               every section (host, aarch64, cortex-m4)
#   benches/run.sh --host        host: µs per inference, medq int8 vs tract f32, every zoo model
#   benches/run.sh --aarch64     aarch64: instructions per inference under qemu-aarch64
#   benches/run.sh --cortex-m4   Cortex-M4: instructions per MAC under qemu-system-arm
#   benches/run.sh --ort         with --host (or alone: implies it): add the onnxruntime
#                                f32 and int8 columns (benches/ort_compare.py; needs
#                                pip's onnxruntime, onnx and numpy; not in CI)
#   benches/run.sh --quick       CI smoke: two models, few rounds, dev profile (reuses what
#                                test.sh compiled), into the work directory (the committed
#                                results are not touched); checks the JSON. Not figures.
#
# Section flags combine. Only the sections run are replaced in the results.
# Installs only what test.sh installs (rustup targets, qemu-user,
# gcc-aarch64-linux-gnu, qemu-system-arm), and only when missing.
# Environment: CARGO_TARGET_DIR (default ./target); MEDQ_BENCH_WORK, where the
# .mq files and logs go (default $CARGO_TARGET_DIR/medq-bench);
# MEDQ_BENCH_PROFILE, the cargo profile (default release, dev for --quick);
# MEDQ_BIN_DIR, with the dev profile: a directory holding a built side_by_side
# to run instead of building one (test.sh sets it).
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$script")/.."

usage() { sed -n '2,23p' "$script" | sed 's/^# \{0,1\}//'; }

host=0 arm=0 m4=0 ort=0 quick=0
for arg in "$@"; do
    case "$arg" in
        --host) host=1 ;;
        --aarch64) arm=1 ;;
        --cortex-m4) m4=1 ;;
        --ort) ort=1 host=1 ;;
        --quick) quick=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $arg" >&2; usage >&2; exit 2 ;;
    esac
done
[ $((host + arm + m4)) -gt 0 ] || host=1 arm=1 m4=1

export CARGO_TERM_COLOR=never
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="${MEDQ_BENCH_WORK:-$target/medq-bench}"

step() { printf '\n==> %s\n' "$*"; }

need_packages() {
    local need=() sudo=""
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
    done
    [ ${#need[@]} -gt 0 ] || return 0
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
}

need_target() {
    rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

if [ $quick = 1 ]; then
    models="--models ecg5000,breast_cancer"
    rounds=3 short=1 long=2 profile="${MEDQ_BENCH_PROFILE:-dev}"
    work="$work/quick"
    results="$work/results.json" md="$work/RESULTS.md"
    mkdir -p "$work"
    rm -f "$results"
else
    models="" rounds=30 short=2 long=6 profile="${MEDQ_BENCH_PROFILE:-release}"
    results=benches/results.json md=benches/RESULTS.md
fi
out=(--results "$results" --md "$md")
quick_flag=()
dir="$profile"
[ "$profile" != dev ] || dir=debug
[ $quick = 0 ] || quick_flag=(--quick)

if [ -n "${MEDQ_BIN_DIR:-}" ] && [ "$profile" = dev ]; then
    # test.sh: the workspace tests built it (building it here, with this
    # package's own feature set, would rebuild tract and the converter).
    sbs="$MEDQ_BIN_DIR/side_by_side"
    [ -x "$sbs" ] || { echo "benches/run.sh: no $sbs (MEDQ_BIN_DIR)" >&2; exit 1; }
else
    step "building the host harness ($profile profile)"
    cargo build --profile "$profile" --locked -p medq-benches --bin side_by_side
    sbs="$target/$dir/side_by_side"
fi

if [ $((host + arm)) -gt 0 ]; then
    step "converting the zoo with the converter (zoo settings, pruning included)"
    # shellcheck disable=SC2086  # $models is empty or two words
    "$sbs" prepare --work "$work" $models
fi

if [ $host = 1 ]; then
    step "host: medq int8 vs tract f32, batch 1, one thread, $rounds interleaved rounds"
    "$sbs" host --work "$work" --rounds "$rounds" "${quick_flag[@]}" "${out[@]}"
    if [ $ort = 1 ]; then
        step "host: onnxruntime f32 and int8 (benches/ort_compare.py)"
        python3 benches/ort_compare.py --work "$work" --rounds "$rounds" --results "$results"
        "$sbs" render "${out[@]}"
    fi
fi

if [ $arm = 1 ]; then
    step "aarch64: cross-building infer_n (medq and tract) and the instruction-count plugin"
    need_packages qemu-aarch64:qemu-user aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu
    need_target aarch64-unknown-linux-gnu
    cargo build --profile "$profile" --locked -p medq-benches --no-default-features \
        --bin infer_n --target aarch64-unknown-linux-gnu
    gcc -O2 -Wall -shared -fPIC -o "$work/libinsn.so" benches/qemu-plugin/insn.c
    step "aarch64: instructions per inference ($long − $short inferences)"
    "$sbs" aarch64 --work "$work" --probe "$target/aarch64-unknown-linux-gnu/$dir/infer_n" \
        --plugin "$work/libinsn.so" --short "$short" --long "$long" "${quick_flag[@]}" "${out[@]}"
fi

if [ $m4 = 1 ]; then
    step "Cortex-M4: instructions per MAC (benches/qemu icount on mps2-an386)"
    need_packages qemu-system-arm:qemu-system-arm
    need_target thumbv7em-none-eabihf
    mkdir -p "$work"
    # The icount binary exits non-zero if a DSP kernel's output differs from
    # the reference kernel's; pipefail makes that fail this script.
    (cd benches/qemu && cargo run --release --locked --bin icount) | tee "$work/icount.log"
    "$sbs" cortex-m4 --log "$work/icount.log" "${out[@]}"
fi

step "checking $results"
"$sbs" check --results "$results"
echo "results: $results, $md"
