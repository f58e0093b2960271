#!/usr/bin/env bash
# The aarch64 NEON / dot-product kernels against the reference kernels under
# qemu-user, on two emulated CPUs: `max` (has `sdot`, like a Pi 5's
# Cortex-A76) and `cortex-a72` (a Pi 4; no `sdot`, so the `_dotprod` kernels
# must refuse and fall back). The runner in .cargo/config.toml passes no
# `-cpu`, so QEMU_CPU decides (a `-cpu` on the command line would win over
# it). MEDQ_EXPECT_DOTPROD tells the tests which CPU they are on; they fail
# if detection disagrees, so neither path can be skipped silently.
#
# Needs: rustup target aarch64-unknown-linux-gnu, gcc-aarch64-linux-gnu,
# qemu-user. Extra arguments go to `cargo test` (e.g. --release).
set -euo pipefail
cd "$(dirname "$0")/../.."

run() {
    local cpu=$1 expect=$2
    shift 2
    echo "== QEMU_CPU=$cpu (dot product expected: $expect)"
    QEMU_CPU=$cpu MEDQ_EXPECT_DOTPROD=$expect \
        cargo test -p medq --target aarch64-unknown-linux-gnu "$@" \
        --test kernels_aarch64 -- --nocapture --test-threads 2
    QEMU_CPU=$cpu MEDQ_EXPECT_DOTPROD=$expect \
        cargo test -p medq --target aarch64-unknown-linux-gnu "$@" \
        --lib kernels::aarch64
}

run max 1 "$@"
run cortex-a72 0 "$@"
