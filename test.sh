#!/usr/bin/env bash
# Every test medq has, on a fresh machine: installs what it needs, then builds,
# lints and tests the workspace, cross-builds the runtime for Cortex-M and the
# host CLI for aarch64, and runs the bundled ECG model end to end.
#
#   ./test.sh            everything
#   ./test.sh --no-install   skip the install step (tools already present)
set -euo pipefail
cd "$(dirname "$0")"

# Each step's start, with the seconds since the run began: where CI's time goes.
step() { printf '\n==> %s  [+%ss]\n' "$*" "$SECONDS"; }

install() {
    step "installing toolchain targets and system packages"
    rustup target add thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi aarch64-unknown-linux-gnu
    rustup component add rustfmt clippy
    local need=()
    command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
    command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
    # firmware/stack_bound.py reads the firmware's disassembly.
    command -v llvm-objdump >/dev/null || need+=(llvm)
    # bindgen in the nRF52840's BLE build (nrf-sdc) loads libclang and needs
    # clang's own headers.
    compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stdint.h" >/dev/null ||
        need+=(libclang1-14 libclang-common-14-dev)
    if [ ${#need[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
    fi
}

[ "${1:-}" = "--no-install" ] || install

export CARGO_TERM_COLOR=never
# A one-shot build gains nothing from incremental state (1.2 GB of it).
export CARGO_INCREMENTAL=0
onnx_version=1.22.0
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# `--all-targets` leaves out test targets with `test = false` (the ONNX node tests).
cargo clippy --workspace --test onnx_node --locked -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "no_std runtime for Cortex-M (M4F, M3, M0+), with and without defmt"
for target in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi; do
    cargo build -p medq --target "$target" --no-default-features --locked
done
cargo build -p medq --target thumbv7em-none-eabihf --no-default-features --features defmt --locked

step "workspace tests"
cargo test --workspace --locked
# Later steps run the binaries these tests built (converter, medq, zoo-sweep,
# side_by_side): `cargo run -p` or `cargo build -p` would rebuild tract and
# the converter with that package's own feature set, minutes each time.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export MEDQ_BIN_DIR="$target_dir/debug"

step "ONNX's node tests (onnx==${onnx_version}): every test of every supported op, per-op counts"
# The tests come with the onnx Python package. `--workspace` resolves the
# same features as the workspace tests above, so nothing is rebuilt.
python3 -c "import onnx, sys; sys.exit(onnx.__version__ != '${onnx_version}')" 2>/dev/null ||
    python3 -m pip install --quiet "onnx==${onnx_version}" ||
    python3 -m pip install --quiet --break-system-packages "onnx==${onnx_version}"
cargo test --workspace --test onnx_node --locked

step "runtime with a firmware-like kernel selection (op-* features, no error reasons)"
cargo test -p medq --no-default-features --features std,op-conv,op-max-pool,op-reshape \
    --test build_features --locked

step "runtime monitors: per-op saturation counters (feature saturation-counters)"
cargo test -p medq --features saturation-counters --test guards --locked

step "firmware: host tests (ADS1292R driver on embedded-hal-mock, detector, windows, pipeline)"
(cd firmware && cargo test --target x86_64-unknown-linux-gnu --lib --locked)

step "firmware on QEMU: the ECG monitor on Cortex-M4F, M7 and M0, byte-identical to the host"
# Each run exits non-zero unless every beat's int8 output matches
# firmware/model/golden.bin (written by the host runtime) and the budgets hold.
qemu_flags=(-nographic -semihosting-config enable=on,target=native -icount shift=0,align=off,sleep=off)
(
    cd firmware
    cargo build --release --locked
    python3 budget.py
    echo "-- Cortex-M4F (mps2-an386)"
    qemu-system-arm -cpu cortex-m4 -machine mps2-an386 "${qemu_flags[@]}" \
        -kernel target/thumbv7em-none-eabihf/release/medq-firmware | tee target/m4-run.log
    echo "-- the static stack bound: fits the RAM the statics leave, and is above the measured mark"
    measured=$(sed -n 's/^stack: \([0-9]*\) of .*/\1/p' target/m4-run.log)
    python3 stack_bound.py --ram 16384 --measured "$measured"
    echo "-- Cortex-M7 (mps2-an500)"
    qemu-system-arm -cpu cortex-m7 -machine mps2-an500 "${qemu_flags[@]}" \
        -kernel target/thumbv7em-none-eabihf/release/medq-firmware
    echo "-- Cortex-M0 (micro:bit), reference kernels"
    cargo build --release --locked --target thumbv6m-none-eabi
    qemu-system-arm -machine microbit "${qemu_flags[@]}" \
        -kernel target/thumbv6m-none-eabi/release/medq-firmware
    echo "-- the board build (defmt over RTT instead of semihosting): builds and links"
    cargo build --release --locked --features defmt
    echo "-- signed models on the M4: genuine accepted; tampered, other key and unsigned refused"
    bash signed.sh
)

step "firmware boards: the nRF52840 and STM32F411 binaries build and link from their lock files and fit their chips"
# Each board is its own workspace (firmware/boards/<board>); a clean build
# takes ~75 s (nRF52840) and ~85 s (STM32F411) on one job, sources fetched.
for board in nrf52840 stm32f411; do
    (cd "firmware/boards/$board" && cargo fmt -- --check && cargo build --release --locked)
    python3 firmware/budget.py --board "$board"
done
echo "-- nRF52840 with BLE alerts (feature ble: nrf-sdc + trouble-host)"
# nrf-sdc's bindgen needs clang's headers on its include path.
clang_include=$(compgen -G "/usr/lib/llvm-*/lib/clang/*/include" | sort -V | tail -1)
(
    cd firmware/boards/nrf52840
    BINDGEN_EXTRA_CLANG_ARGS="-I$clang_include" \
        cargo build --release --locked --no-default-features --features ble
)
python3 firmware/budget.py --board nrf52840
python3 firmware/budget.py --power

step "Cortex-M4 DSP kernels and Cortex-M0/M4 power-of-two kernels on QEMU: bit-exactness and instructions per MAC"
bash benches/qemu/run.sh

step "zoo-sweep --m4: a pruned ECG5000 file run on the Cortex-M4 (QEMU model_cost, built above), its instructions in the row"
sweep_out=$(mktemp -d)
"$MEDQ_BIN_DIR/zoo-sweep" --only ecg5000 --methods obs --sparsities 0.5 \
    --variants int8 --no-attribution --m4 --quiet --out-dir "$sweep_out"
python3 - "$sweep_out/sweep.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert rows and all((r["m4_instructions"] or 0) > 0 for r in rows), rows
print("m4_instructions:", [(r["method"], r["sparsity"], r["m4_instructions"]) for r in rows])
PY
rm -r "$sweep_out"

step "aarch64 NEON and dot-product kernels, bit-exact with the reference, under qemu-aarch64 (with and without sdot)"
bash runtime/tests/aarch64.sh

step "fuzzing smoke (cargo fuzz, nightly, AddressSanitizer): parse, parse_invoke, verify, npy for 10 s each"
# The ONNX loader target builds tract with sanitizers (~10 min): long runs only,
# `fuzz/run.sh onnx_load` (see fuzz/README.md).
bash fuzz/run.sh --smoke 10 --no-onnx

step "benchmark smoke: medq beside tract on two zoo models (figures come from benches/run.sh, not from here)"
bash benches/run.sh --quick --host

step "host CLI for aarch64 (Raspberry Pi class), run under qemu-aarch64"
cargo build -p medq-cli --release --target aarch64-unknown-linux-gnu --locked
ls -l target/aarch64-unknown-linux-gnu/release/medq

step "end to end on the bundled ECG model"
bash models/ecg5000/run.sh --aarch64

echo
echo "all tests passed"
