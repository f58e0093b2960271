#!/usr/bin/env bash
# Signed models on the Cortex-M4 (QEMU mps2-an386): a firmware built with a
# public key (MEDQ_PUBLIC_KEY) must run the genuine signed model and refuse,
# exiting non-zero with the reason, a tampered one, one signed with another
# key and an unsigned one. Keys are made fresh for each run.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

medq() { (cd "$root" && cargo run -q --locked -p medq-cli -- "$@"); }
medq keygen "$work/maker.key" >/dev/null
medq keygen "$work/other.key" >/dev/null
medq sign "$PWD/model/ecg.mq" --key "$work/maker.key" --output "$work/genuine.mq" >/dev/null
medq sign "$PWD/model/ecg.mq" --key "$work/other.key" --output "$work/other.mq" >/dev/null
cp model/ecg.mq "$work/unsigned.mq"
# A tamperer changes one byte of the weights and fixes the CRC.
python3 - "$work/genuine.mq" "$work/tampered.mq" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
count = struct.unpack_from("<H", b, 16)[0]
for i in range(count):
    sid, off, length, _ = struct.unpack_from("<4I", b, 32 + 16 * i)
    if sid == 5:  # Weights
        b[off + length // 2] ^= 0x01
b[12:16] = b"\0\0\0\0"
b[12:16] = struct.pack("<I", zlib.crc32(bytes(b)))
open(sys.argv[2], "wb").write(b)
PY
if cmp -s "$work/genuine.mq" "$work/tampered.mq"; then
    echo "FAIL: the tampered copy is identical"; exit 1
fi
medq verify "$work/tampered.mq" --key "$work/maker.key.pub" >/dev/null 2>&1 &&
    { echo "FAIL: medq verify accepted the tampered model"; exit 1; }

run() { # model, expected exit (0 or 1), text the log must contain
    local log="$work/$1.log"
    MEDQ_MODEL="$work/$1.mq" MEDQ_PUBLIC_KEY="$work/maker.key.pub" \
        cargo build -q --release --locked
    local rc=0
    qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
        -semihosting-config enable=on,target=native -icount shift=0,align=off,sleep=off \
        -kernel "${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release/medq-firmware" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne "$2" ] || ! grep -q "$3" "$log"; then
        echo "FAIL: $1.mq: exit $rc (want $2), log:"; cat "$log"; exit 1
    fi
    echo "$1.mq: exit $rc, $(grep -m1 "$3" "$log")"
}
run genuine 0 "model signature: valid"
grep -E '^(stack|budgets):' "$work/genuine.log" # what a signed build costs
run tampered 1 "signature mismatch"
run other 1 "signature mismatch"
run unsigned 1 "not signed"
