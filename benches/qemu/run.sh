#!/usr/bin/env bash
# Cortex-M4 checks of medq's DSP kernels on QEMU (mps2-an386), and of its
# power-of-two kernels on the M4 and a Cortex-M0 (micro:bit):
#   bitexact  every DSP kernel (conv, depthwise, fully connected) against the
#             reference kernels over 16 000 random cases, on the shapes each
#             takes and on those it refuses; any mismatch fails this script
#   icount    instructions per layer (the ECG model's, and the layers of the
#             CMSIS-NN comparison), reference vs DSP, with CMSIS-NN's cited
#             figures; also one JSON object a line, prefixed `cortex_m4 `,
#             for scripts: layer, macs, instr_per_mac, cmsis_nn_instr_per_mac
#   sparse    instructions per layer with pruned weights (0/50/75/90 % zeros): the dense
#             kernel against the sparse reference kernels on the same weights stored
#             sparse (int8 values, and 4- and 3-bit power-of-two codes); fails unless their
#             outputs are identical
#   invoke_cost  the firmware ECG model's instructions per inference on nine
#             inputs (extremes, zero point, triangle wave, random): fails unless the
#             cost is the same on every input; prints the worst case
#   pow2      on the M4 and on the M0 (thumbv6m-none-eabi, QEMU micro:bit):
#             instructions per layer with power-of-two weights, the dense kernel
#             the board runs on the decoded weights against the pow2 kernel on
#             the 4-bit codes (and the sparse kernel on them, for its loop
#             structure); fails unless every output is the dense kernel's.
#             muls.sh (not run here: it needs gcc and a QEMU 7.2 plugin) adds
#             the M0's multiply counts
#   int16     instructions per layer of the int16-activation kernels the M4
#             chooses (SMLALD DSP kernels for an int16 input, the reference
#             for an int8 one) against the int8 DSP kernel; fails unless, on
#             the same data, their outputs are the int8 kernel's
#   model_cost  any .mq file's instructions per inference, read over
#             semihosting from model.mq in QEMU's working directory (what
#             `zoo-sweep --m4` records); a smoke run on the firmware's model
# Installs nothing: it needs `rustup target add thumbv7em-none-eabihf
# thumbv6m-none-eabi` and qemu-system-arm (Debian: apt-get install
# qemu-system-arm).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v qemu-system-arm >/dev/null; then
    echo "run.sh: qemu-system-arm not found (apt-get install qemu-system-arm)" >&2
    exit 1
fi

cargo build --release --locked --bins
cargo run --release --locked --bin bitexact
cargo run --release --locked --bin icount
cargo run --release --locked --bin sparse
cargo run --release --locked --bin invoke_cost
cargo run --release --locked --bin pow2
cargo run --release --locked --bin int16
smoke=$(mktemp -d)
cp ../../firmware/model/ecg.mq "$smoke/model.mq"
elf="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/thumbv7em-none-eabihf/release/model_cost"
(cd "$smoke" && qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
    -serial none -semihosting-config enable=on,target=native -icount shift=0,align=off,sleep=off \
    -kernel "$elf") | tee "$smoke/out"
grep -q '^model_cost {"instructions": [1-9]' "$smoke/out"
rm -r "$smoke"
# The other bins need more RAM than the micro:bit's 16 KiB.
cargo run --release --locked --bin pow2 --target thumbv6m-none-eabi
