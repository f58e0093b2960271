#!/usr/bin/env bash
# Cortex-M4 checks of medq's DSP kernels on QEMU (mps2-an386):
#   bitexact  the SXTB16/SMLAD kernels against the reference kernels over
#             10 000 random conv/FC cases; any mismatch fails this script
#   icount    instructions per layer (ECG model shapes), reference vs DSP
# Installs nothing: it needs `rustup target add thumbv7em-none-eabihf` and
# qemu-system-arm (Debian: apt-get install qemu-system-arm).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v qemu-system-arm >/dev/null; then
    echo "run.sh: qemu-system-arm not found (apt-get install qemu-system-arm)" >&2
    exit 1
fi

cargo build --release --locked --bins
cargo run --release --locked --bin bitexact
cargo run --release --locked --bin icount
