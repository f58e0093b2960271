#!/usr/bin/env bash
# Multiplies (MULS) per MAC of the `pow2` bin's kernels on the Cortex-M0
# (QEMU micro:bit), counted by the QEMU plugin benches/qemu-plugin/muls.c
# between the YIELD marks the bin puts around each measurement, beside the
# instructions per MAC the bin measures. QEMU counts instructions, not
# cycles: a Cortex-M0 with the 32-cycle multiplier option spends 31 more
# cycles per MULS, which the last columns add (a lower bound on cycles:
# loads and taken branches take 2 or 3 cycles on a Cortex-M0).
#
# Not run by run.sh (CI): it needs gcc and a QEMU whose plugin API is
# version 1 (QEMU 7.2, as Debian 12 ships). Prints a table; fails if the
# bin fails or a measurement has no count.
set -euo pipefail
cd "$(dirname "$0")"

work=target/muls
mkdir -p "$work"
gcc -O2 -Wall -Wextra -shared -fPIC -o "$work/libmuls.so" ../qemu-plugin/muls.c
cargo build --release --locked --bin pow2 --target thumbv6m-none-eabi
qemu-system-arm -machine microbit -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -icount shift=0,align=off,sleep=off \
    -plugin "$work/libmuls.so" -d plugin -D "$work/muls.log" \
    -kernel target/thumbv6m-none-eabi/release/pow2 >"$work/pow2.log"
python3 - "$work/muls.log" "$work/pow2.log" <<'EOF'
import json, sys

muls = [int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("muls: ")]
layers = [json.loads(l.split(" ", 1)[1]) for l in open(sys.argv[2]) if l.startswith("pow2_m0 ")]
kernels = ("dense", "pow2", "list")
print(f"{'layer':<22} {'MACs':>7}  {'MULS/MAC':^26}  {'instr + 31·MULS per MAC':^26}")
print(f"{'':<22} {'':>7}  " + " ".join(f"{k:>8}" for k in kernels) + "  " + " ".join(f"{k:>8}" for k in kernels))
for layer in layers:
    row = []
    for k in kernels:
        if layer[f"{k}_instr"] is None:
            row.append(None)
            continue
        if not muls:
            sys.exit("muls.sh: fewer counts than measurements")
        row.append((muls.pop(0) / layer["reps"], layer[f"{k}_instr"]))
    macs = layer["macs"]
    per = lambda f: " ".join("       -" if r is None else f"{f(r) / macs:8.2f}" for r in row)
    print(f"{layer['layer']:<22} {macs:>7}  {per(lambda r: r[0])}  {per(lambda r: r[1] + 31 * r[0])}")
if muls:
    sys.exit("muls.sh: more counts than measurements")
EOF
