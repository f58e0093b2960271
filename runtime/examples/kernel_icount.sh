#!/usr/bin/env bash
# Guest instructions per call of each kernel path on the zoo's layer shapes,
# under qemu-aarch64 with an instruction-counting TCG plugin (one that prints
# "insn: N" at exit, like benches/qemu-plugin/insn.c):
#
#   PLUGIN=/path/to/libinsn.so runtime/examples/kernel_icount.sh [layer-filter]
#
# Each figure is (count at N iterations − count at 0) / N, so start-up and
# data set-up cancel. The dot-product path runs on QEMU's `max` CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PLUGIN:?set PLUGIN to an instruction-counting qemu plugin (.so)}"
N=${N:-20}
filter=${1:-}
target=aarch64-unknown-linux-gnu
cargo build -q --release -p medq --target "$target" --example kernel_icount
bin=${CARGO_TARGET_DIR:-target}/$target/release/examples/kernel_icount
qemu() {
    qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max -plugin "$PLUGIN" -d plugin -D "$log" "$@" >/dev/null
    sed -n 's/^insn: //p' "$log"
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max "$bin" check >/dev/null || {
    echo "kernel_icount check failed: a path differs from the reference" >&2
    exit 1
}
printf '%-24s %10s %12s %12s %12s %8s %8s %8s\n' layer work reference neon dotprod ref/w neon/w dot/w
qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" list | while read -r name work; do
    [[ -n $filter && $name != *$filter* ]] && continue
    row=()
    for path in reference neon dotprod; do
        if base=$(qemu "$bin" run "$name" "$path" 0 2>/dev/null) &&
            full=$(qemu "$bin" run "$name" "$path" "$N" 2>/dev/null); then
            row+=($(((full - base) / N)))
        else
            row+=(-)
        fi
    done
    per() { [[ $1 == - ]] && echo - || awk -v a="$1" -v w="$work" 'BEGIN { printf "%.3f", a / w }'; }
    printf '%-24s %10s %12s %12s %12s %8s %8s %8s\n' "$name" "$work" "${row[@]}" \
        "$(per "${row[0]}")" "$(per "${row[1]}")" "$(per "${row[2]}")"
done
