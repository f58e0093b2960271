//! The dot-product instructions, as inline `asm!` (their intrinsics are not
//! stable Rust). `.arch_extension dotprod` lets the assembler accept them in
//! functions compiled for the aarch64 baseline, so these inline into the
//! same loops as the plain NEON code; they are `unsafe` because they must
//! only run once `has_dotprod()` has said yes (elsewhere they trap).

use core::arch::aarch64::*;
use core::arch::asm;

/// `acc[i] += Σ_{j<4} x[4i + j] · w[4·LANE + j]`: four output positions
/// (the four 4-byte groups of `x`) against one group of four weights.
///
/// # Safety
/// The CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn sdot_lane<const LANE: i32>(
    acc: int32x4_t,
    x: int8x16_t,
    w: int8x16_t,
) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` (by element) reads and writes registers only; the
    // caller guarantees the CPU implements it.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {x:v}.16b, {w:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `acc[i] += Σ_{j<4} a[4i + j] · b[4i + j]`.
///
/// # Safety
/// The CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: as for `sdot_lane`.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
