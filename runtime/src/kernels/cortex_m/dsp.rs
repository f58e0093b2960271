//! The three Arm DSP-extension operations the kernels are built from, on
//! packed words of two `i16` lanes (low lane in bits 0..16):
//!
//! - `SXTB16 Rd, Rm {, ROR #8}`: sign-extend bytes 0 and 2 (1 and 3) of a
//!   word into the two lanes;
//! - `SADD16`: lane-wise wrapping add;
//! - `SMLAD Rd, Rn, Rm, Ra`: `Ra + Rn.lo·Rm.lo + Rn.hi·Rm.hi`, wrapping
//!   (the Q flag records the wrap; nothing reads it).
//!
//! With `cfg(medq_dsp)` (set by the build script on thumbv7em) they are
//! inline `asm!`; elsewhere a portable emulation of the same instructions
//! keeps the kernels buildable and testable on the host against the
//! reference.
//!
//! A group is 4 consecutive reduction indices `k..k+4`. The kernels keep
//! activations as `i16` in "column" buffers of `u32` words, two words per
//! group and column, in the order SXTB16 unpacks weights: word 0 holds the
//! lanes for `k, k+2`, word 1 for `k+1, k+3`. Then one 4-byte weight load,
//! `SXTB16` and `SXTB16 ROR #8` and two `SMLAD`s do 4 multiply-accumulates,
//! and the weight unpack is shared by every column processed together.

/// True when the kernels run the DSP instructions rather than their emulation.
pub const USES_DSP_INSTRUCTIONS: bool = cfg!(all(
    target_arch = "arm",
    any(target_feature = "dsp", medq_dsp)
));

/// `offset` in both `i16` lanes, for [`widen_offset`].
#[inline(always)]
pub(super) const fn splat16(offset: i32) -> u32 {
    let h = offset as u32 & 0xffff;
    h | (h << 16)
}

/// Little-endian word of 4 bytes.
#[inline(always)]
pub(super) fn word(bytes: [i8; 4]) -> u32 {
    u32::from_le_bytes([
        bytes[0] as u8,
        bytes[1] as u8,
        bytes[2] as u8,
        bytes[3] as u8,
    ])
}

/// Checks the slice lengths that make `mac_*` reads in bounds.
#[inline(always)]
fn lens_ok(w: &[i8], col: &[u32], groups: usize, cols: usize) -> bool {
    let w_ok = groups.checked_mul(4).is_some_and(|n| n <= w.len());
    let c_ok = groups.checked_mul(2 * cols).is_some_and(|n| n <= col.len());
    w_ok && c_ok
}

#[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
mod imp {
    use super::lens_ok;
    use core::arch::asm;

    /// `acc[j] + Σ_t x[at + offset_t + j] · weight_t` for `j < 4` over the
    /// `taps` (a sparse conv's decoded `(offset, weight)` pairs): per tap
    /// one `LDRD` of the pair, one (unaligned) `LDR` of the four inputs,
    /// `SXTB16` and `SXTB16 ROR #8`, and `SMLABB`/`SMLATB` for each output:
    /// 10 instructions for 4 multiply-adds, where the portable loop took
    /// 16. `SMLAxB` adds the 16×16 product wrapping, as the reference's
    /// wrapping `i32` sum does.
    ///
    /// # Safety
    ///
    /// `at + offset + 4 ≤ x.len()` for every tap, and every weight is in
    /// `i16` range (a weight of `i8` weights).
    #[cfg(feature = "sparse-weights")]
    #[inline(always)]
    pub unsafe fn gather_1x4(
        x: &[i8],
        at: usize,
        taps: &[crate::kernels::reference::Tap],
        acc: [i32; 4],
    ) -> [i32; 4] {
        const _: () = assert!(core::mem::size_of::<crate::kernels::reference::Tap>() == 8);
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        if taps.is_empty() {
            return acc;
        }
        // SAFETY: `Tap` is `repr(C)` `(usize, i32)`, 8 bytes on this 32-bit
        // target, word-aligned as LDRD needs; the loop reads `taps` from its
        // start to its end, and the four bytes at `x + at + offset` of each,
        // inside `x` by the caller's guarantee (unaligned LDRs, which ARMv7-M
        // performs in hardware unless CCR.UNALIGN_TRP is set; nothing here
        // sets it). It writes only registers.
        unsafe {
            let base = x.as_ptr().add(at);
            let end = taps.as_ptr().add(taps.len());
            asm!(
                "2:",
                "ldrd {off}, {w}, [{tp}], #8",
                "ldr {v}, [{base}, {off}]",
                "sxtb16 {lo}, {v}",
                "sxtb16 {v}, {v}, ror #8",
                "smlabb {a0}, {lo}, {w}, {a0}",
                "smlatb {a2}, {lo}, {w}, {a2}",
                "smlabb {a1}, {v}, {w}, {a1}",
                "smlatb {a3}, {v}, {w}, {a3}",
                "cmp {tp}, {end}",
                "bne 2b",
                tp = inout(reg) taps.as_ptr() => _,
                end = in(reg) end,
                base = in(reg) base,
                off = out(reg) _,
                w = out(reg) _,
                v = out(reg) _,
                lo = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(readonly, nostack),
            );
        }
        [a0, a1, a2, a3]
    }

    /// `acc + a.lo·b.lo + a.hi·b.hi` (`SMLAD`), wrapping.
    #[inline(always)]
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let out: i32;
        // SAFETY: register-only arithmetic; SMLAD may set the Q flag, so
        // `preserves_flags` is absent.
        unsafe {
            asm!(
                "smlad {d}, {a}, {b}, {c}",
                d = lateout(reg) out,
                a = in(reg) a,
                b = in(reg) b,
                c = in(reg) acc,
                options(pure, nomem, nostack),
            );
        }
        out
    }

    #[cfg(feature = "int16-activations")]
    /// `acc + a.lo·b.lo + a.hi·b.hi` in 64 bits (`SMLALD`): exact, the
    /// int16 kernels' multiply-accumulate.
    #[inline(always)]
    pub fn smlald(a: u32, b: u32, acc: i64) -> i64 {
        let mut lo = acc as u32;
        let mut hi = (acc >> 32) as u32;
        // SAFETY: register-only arithmetic; SMLALD writes no flags.
        unsafe {
            asm!(
                "smlald {lo}, {hi}, {a}, {b}",
                lo = inout(reg) lo,
                hi = inout(reg) hi,
                a = in(reg) a,
                b = in(reg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        ((u64::from(hi) << 32) | u64::from(lo)) as i64
    }

    #[cfg(feature = "int16-activations")]
    /// Bytes 0..4 of `w` as lanes `[(b0, b2), (b1, b3)]` (`SXTB16`,
    /// `SXTB16 ROR #8`): a weight word, no offset.
    #[inline(always)]
    pub fn unpack_word(w: u32) -> [u32; 2] {
        let even: u32;
        let odd: u32;
        // SAFETY: register-only arithmetic; no flags written.
        unsafe {
            asm!(
                "sxtb16 {odd}, {w}, ror #8",
                "sxtb16 {even}, {w}",
                w = in(reg) w,
                even = lateout(reg) even,
                odd = out(reg) odd,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        [even, odd]
    }

    #[cfg(feature = "int16-activations")]
    /// The lanes `(x0, x1)`, `(x2, x3)` of two words as `[(x0, x2), (x1,
    /// x3)]` (`PKHBT`, `PKHTB`): four `i16` activations in the order
    /// [`unpack_word`] gives weights.
    #[inline(always)]
    pub fn interleave(x01: u32, x23: u32) -> [u32; 2] {
        let even: u32;
        let odd: u32;
        // SAFETY: register-only arithmetic; no flags written.
        unsafe {
            asm!(
                "pkhbt {even}, {a}, {b}, lsl #16",
                "pkhtb {odd}, {b}, {a}, asr #16",
                a = in(reg) x01,
                b = in(reg) x23,
                even = out(reg) even,
                odd = lateout(reg) odd,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        [even, odd]
    }

    /// Each signed byte of `x` clamped to the same byte of `lo` and `hi`
    /// (`SSUB8` sets the GE flags per byte, `SEL` picks by them).
    #[inline(always)]
    pub fn clamp4(x: u32, lo: u32, hi: u32) -> u32 {
        let out: u32;
        // SAFETY: register-only arithmetic; SSUB8 writes the GE flags.
        unsafe {
            asm!(
                "ssub8 {t}, {x}, {lo}",
                "sel {x}, {x}, {lo}",
                "ssub8 {t}, {hi}, {x}",
                "sel {x}, {x}, {hi}",
                x = inout(reg) x => out,
                lo = in(reg) lo,
                hi = in(reg) hi,
                t = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        out
    }

    /// Bytes 0..4 of `w` as `[b0+o, b2+o]`, `[b1+o, b3+o]` lanes (`o` from
    /// [`splat16`](super::splat16)): one group of a column.
    #[inline(always)]
    pub fn widen_offset(w: u32, offset: u32) -> [u32; 2] {
        let even: u32;
        let odd: u32;
        // SAFETY: register-only arithmetic (no memory, no stack); SADD16
        // writes the GE flags, which is why `preserves_flags` is absent.
        unsafe {
            asm!(
                "sxtb16 {odd}, {w}, ror #8",
                "sxtb16 {even}, {w}",
                "sadd16 {odd}, {odd}, {o}",
                "sadd16 {even}, {even}, {o}",
                w = in(reg) w,
                o = in(reg) offset,
                even = out(reg) even,
                odd = out(reg) odd,
                options(pure, nomem, nostack),
            );
        }
        [even, odd]
    }

    /// One group of [`mac_1x4`] and [`mac_rows_1x4`]: a weight word unpacked, then
    /// multiplied with the group's two words of each of the four columns.
    macro_rules! group_1x4 {
        () => {
            concat!(
                "ldr {wa}, [{pw}], #4\n",
                "sxtb16 {wb}, {wa}, ror #8\n",
                "sxtb16 {wa}, {wa}\n",
                "ldrd {c0}, {c1}, [{pc}], #8\n",
                "smlad {a0}, {wa}, {c0}, {a0}\n",
                "smlad {a0}, {wb}, {c1}, {a0}\n",
                "ldrd {c0}, {c1}, [{pc}], #8\n",
                "smlad {a1}, {wa}, {c0}, {a1}\n",
                "smlad {a1}, {wb}, {c1}, {a1}\n",
                "ldrd {c0}, {c1}, [{pc}], #8\n",
                "smlad {a2}, {wa}, {c0}, {a2}\n",
                "smlad {a2}, {wb}, {c1}, {a2}\n",
                "ldrd {c0}, {c1}, [{pc}], #8\n",
                "smlad {a3}, {wa}, {c0}, {a3}\n",
                "smlad {a3}, {wb}, {c1}, {a3}\n",
            )
        };
    }

    /// `acc[c] += Σ_k w[k] · column c[k]` over `groups` groups of 4 weights
    /// and 4 interleaved columns (group `j` of column `c` at words
    /// `(4j + c)·2 ..+2`). Returns `acc` unchanged if the slices are short.
    #[inline(always)]
    pub fn mac_1x4(w: &[i8], col: &[u32], groups: usize, acc: [i32; 4]) -> [i32; 4] {
        if groups == 0 || !lens_ok(w, col, groups, 4) {
            return acc;
        }
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: the asm reads `4·groups` bytes from `w` and `8·groups`
        // words from `col`, both checked in bounds above, and writes only
        // registers. `col` is word-aligned as LDRD needs; the weight loads
        // are unaligned LDRs, which ARMv7-M performs in hardware unless
        // CCR.UNALIGN_TRP is set (it is clear out of reset and nothing here
        // sets it). Labels are local numeric labels, so inlining the block
        // more than once is fine.
        unsafe {
            asm!(
                // An odd group first, so the loop can do two per iteration.
                "tst {n}, #1",
                "beq 3f",
                group_1x4!(),
                "3:",
                "lsrs {n}, {n}, #1",
                "beq 4f",
                "2:",
                group_1x4!(),
                group_1x4!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                n = inout(reg) groups => _,
                pw = inout(reg) w.as_ptr() => _,
                pc = inout(reg) col.as_ptr() => _,
                wa = out(reg) _,
                wb = out(reg) _,
                c0 = out(reg) _,
                c1 = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(readonly, nostack),
            );
        }
        [a0, a1, a2, a3]
    }

    /// `accs[4r + c] = bias[r] + Σ_k w[r·k + k] · column c[k]` for every
    /// row `r < bias.len()` of `k`-byte weight rows starting at `w`, each
    /// read as `groups = ceil(k/4)` whole groups (so `w` must hold
    /// `(rows − 1)·k + 4·groups` bytes: the last group of a row may overlap
    /// the next, which is harmless since the columns are 0 past `k`). The
    /// loop over rows is in the asm too, its state in memory, because the
    /// multiply-accumulate loop takes every register. Does nothing if a
    /// length does not hold.
    #[inline(always)]
    pub fn mac_rows_1x4(
        w: &[i8],
        k: usize,
        col: &[u32],
        groups: usize,
        bias: &[i32],
        accs: &mut [i32],
    ) {
        let rows = bias.len();
        let fits = groups
            .checked_mul(4)
            .zip(rows.checked_sub(1).and_then(|r| r.checked_mul(k)))
            .and_then(|(g, r)| r.checked_add(g))
            .is_some_and(|n| n <= w.len());
        let ok = rows > 0
            && groups > 0
            && k.div_ceil(4) == groups
            && fits
            && groups.checked_mul(8).is_some_and(|n| n <= col.len())
            && rows.checked_mul(4).is_some_and(|n| n <= accs.len());
        if !ok {
            return;
        }
        // Row state: column start, groups, weight pointer step from the end
        // of a row's groups to the next row (0..=-3), sums pointer, bias
        // pointer, rows left.
        let mut ctl: [usize; 6] = [
            col.as_ptr() as usize,
            groups,
            k.wrapping_sub(4 * groups),
            accs.as_mut_ptr() as usize,
            bias.as_ptr() as usize,
            rows,
        ];
        // SAFETY: per row, reads `4·groups` bytes from `w + r·k` (in bounds:
        // `(rows − 1)·k + 4·groups <= w.len()`), `8·groups` words from `col`,
        // one `bias` entry, and writes 4 words of `accs` (`4·rows <=
        // accs.len()`), all checked above; `ctl` is a local the asm reads
        // and updates. `col`, `accs` and `ctl` are word-aligned as LDRD/STRD
        // need; weight loads are unaligned LDRs (see `mac_1x4`).
        unsafe {
            asm!(
                "5:",
                "ldr {wa}, [{ctl}, #16]",
                "ldr {a0}, [{wa}], #4",
                "str {wa}, [{ctl}, #16]",
                "mov {a1}, {a0}",
                "mov {a2}, {a0}",
                "mov {a3}, {a0}",
                "ldrd {pc}, {n}, [{ctl}]",
                // Groups past a multiple of 4 first, one at a time, then
                // four a trip.
                "1:",
                "tst {n}, #3",
                "beq 3f",
                group_1x4!(),
                "sub {n}, {n}, #1",
                "b 1b",
                "3:",
                "lsrs {n}, {n}, #2",
                "beq 4f",
                "2:",
                group_1x4!(),
                group_1x4!(),
                group_1x4!(),
                group_1x4!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                "ldrd {wa}, {wb}, [{ctl}, #8]",
                "add {pw}, {pw}, {wa}",
                "strd {a0}, {a1}, [{wb}]",
                "strd {a2}, {a3}, [{wb}, #8]",
                "add {wb}, {wb}, #16",
                "str {wb}, [{ctl}, #12]",
                "ldr {wa}, [{ctl}, #20]",
                "subs {wa}, {wa}, #1",
                "str {wa}, [{ctl}, #20]",
                "bne 5b",
                ctl = in(reg) ctl.as_mut_ptr(),
                pw = inout(reg) w.as_ptr() => _,
                n = out(reg) _,
                pc = out(reg) _,
                wa = out(reg) _,
                wb = out(reg) _,
                c0 = out(reg) _,
                c1 = out(reg) _,
                a0 = out(reg) _,
                a1 = out(reg) _,
                a2 = out(reg) _,
                a3 = out(reg) _,
                options(nostack),
            );
        }
    }

    /// As [`mac_1x4`] for 2 interleaved columns (group `j` of column `c` at
    /// words `(2j + c)·2 ..+2`).
    #[inline(always)]
    pub fn mac_1x2(w: &[i8], col: &[u32], groups: usize, acc: [i32; 2]) -> [i32; 2] {
        if groups == 0 || !lens_ok(w, col, groups, 2) {
            return acc;
        }
        let [mut a0, mut a1] = acc;
        // SAFETY: as in `mac_1x4`: reads `4·groups` bytes of `w` and
        // `4·groups` words of `col`, checked above; registers only otherwise.
        unsafe {
            asm!(
                "tst {n}, #1",
                "beq 3f",
                "ldr {wa}, [{pw}], #4",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a1}, {wa}, {c0}, {a1}",
                "smlad {a1}, {wb}, {c1}, {a1}",
                "3:",
                "lsrs {n}, {n}, #1",
                "beq 4f",
                "2:",
                "ldr {wa}, [{pw}], #4",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a1}, {wa}, {c0}, {a1}",
                "smlad {a1}, {wb}, {c1}, {a1}",
                "ldr {wa}, [{pw}], #4",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "smlad {a1}, {wa}, {c0}, {a1}",
                "smlad {a1}, {wb}, {c1}, {a1}",
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                n = inout(reg) groups => _,
                pw = inout(reg) w.as_ptr() => _,
                pc = inout(reg) col.as_ptr() => _,
                wa = out(reg) _,
                wb = out(reg) _,
                c0 = out(reg) _,
                c1 = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                options(readonly, nostack),
            );
        }
        [a0, a1]
    }

    /// Widens `groups` words of `src` (4 bytes each) with [`widen_offset`]
    /// into `dst`, group `j` at words `j·2·NC ..+2`: one column of `NC`
    /// interleaved ones. Does nothing if the slices are short.
    #[inline(always)]
    pub fn widen_groups<const NC: usize>(src: &[i8], groups: usize, offset: u32, dst: &mut [u32]) {
        let src_ok = groups.checked_mul(4).is_some_and(|n| n <= src.len());
        let dst_ok = groups
            .checked_sub(1)
            .and_then(|g| g.checked_mul(2 * NC))
            .and_then(|n| n.checked_add(2))
            .is_some_and(|n| n <= dst.len());
        if groups == 0 || !src_ok || !dst_ok {
            return;
        }
        // SAFETY: reads `4·groups` bytes of `src` and writes 2 words at
        // `dst + j·2·NC` for `j < groups`, all checked in bounds above.
        // `dst` (a `u32` slice) is word-aligned as STRD needs; `src` loads
        // are LDRs, unaligned being fine on ARMv7-M (see `mac_1x4`).
        unsafe {
            asm!(
                // An odd group first, then two a trip.
                "tst {n}, #1",
                "beq 3f",
                "ldr {x}, [{ps}], #4",
                "sxtb16 {o}, {x}, ror #8",
                "sxtb16 {x}, {x}",
                "sadd16 {o}, {o}, {off}",
                "sadd16 {x}, {x}, {off}",
                "strd {x}, {o}, [{pd}], #{step}",
                "3:",
                "lsrs {n}, {n}, #1",
                "beq 4f",
                "2:",
                "ldr {x}, [{ps}], #4",
                "sxtb16 {o}, {x}, ror #8",
                "sxtb16 {x}, {x}",
                "sadd16 {o}, {o}, {off}",
                "sadd16 {x}, {x}, {off}",
                "strd {x}, {o}, [{pd}], #{step}",
                "ldr {x}, [{ps}], #4",
                "sxtb16 {o}, {x}, ror #8",
                "sxtb16 {x}, {x}",
                "sadd16 {o}, {o}, {off}",
                "sadd16 {x}, {x}, {off}",
                "strd {x}, {o}, [{pd}], #{step}",
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                n = inout(reg) groups => _,
                ps = inout(reg) src.as_ptr() => _,
                pd = inout(reg) dst.as_mut_ptr() => _,
                off = in(reg) offset,
                x = out(reg) _,
                o = out(reg) _,
                step = const NC * 8,
                options(nostack),
            );
        }
    }

    /// `acc + Σ_k w[k] · col[k]` over `groups` groups of one column (group
    /// `j` at words `2j..2j+2`). Returns `acc` unchanged if the slices are short.
    #[inline(always)]
    pub fn mac_1x1(w: &[i8], col: &[u32], groups: usize, acc: i32) -> i32 {
        if groups == 0 || !lens_ok(w, col, groups, 1) {
            return acc;
        }
        let mut a0 = acc;
        // SAFETY: as in `mac_1x4`: reads `4·groups` bytes of `w` and
        // `2·groups` words of `col`, checked above; registers only otherwise.
        unsafe {
            asm!(
                "tst {n}, #1",
                "beq 3f",
                "ldr {wa}, [{pw}], #4",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "3:",
                "lsrs {n}, {n}, #1",
                "beq 4f",
                "2:",
                "ldr {wa}, [{pw}], #4",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "ldr {wa}, [{pw}], #4",
                "ldrd {c0}, {c1}, [{pc}], #8",
                "sxtb16 {wb}, {wa}, ror #8",
                "sxtb16 {wa}, {wa}",
                "smlad {a0}, {wa}, {c0}, {a0}",
                "smlad {a0}, {wb}, {c1}, {a0}",
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                n = inout(reg) groups => _,
                pw = inout(reg) w.as_ptr() => _,
                pc = inout(reg) col.as_ptr() => _,
                wa = out(reg) _,
                wb = out(reg) _,
                c0 = out(reg) _,
                c1 = out(reg) _,
                a0 = inout(reg) a0,
                options(readonly, nostack),
            );
        }
        a0
    }
    /// One step of [`row_passes`](super::row_passes)' loop: the output whose window is
    /// `acc, x1, x2, x3` (window words 0..4; `acc` is the oldest, dead once
    /// multiplied, so it takes the sum), then the next window word into it.
    macro_rules! pass_step {
        ($acc:literal, $x1:literal, $x2:literal, $x3:literal) => {
            concat!(
                "smlad ",
                $acc,
                ", r1, ",
                $acc,
                ", r5\n",
                "smlad ",
                $acc,
                ", r2, ",
                $x1,
                ", ",
                $acc,
                "\n",
                "smlad ",
                $acc,
                ", r3, ",
                $x2,
                ", ",
                $acc,
                "\n",
                "smlad ",
                $acc,
                ", r4, ",
                $x3,
                ", ",
                $acc,
                "\n",
                "smmla ",
                $acc,
                ", ",
                $acc,
                ", r6, r7\n",
                "asr ",
                $acc,
                ", ",
                $acc,
                ", r12\n",
                "ssat ",
                $acc,
                ", #8, ",
                $acc,
                "\n",
                "strb ",
                $acc,
                ", [lr], #2\n",
                "ldr ",
                $acc,
                ", [r0], #4\n",
            )
        };
    }

    /// See [`row_passes`](super::row_passes), which checks the lengths.
    ///
    /// Register use (all 14 allocatable ones, so r6/r7, which `asm!`
    /// cannot take as operands, are saved on the stack and restored): r1–r4
    /// the pass's tap pairs, r5 bias, r6 multiplier, r7 rounding constant,
    /// r12 `hs` in bits 0..8 (`ASR` reads only those) and the block counter
    /// above them, r0 the window words, lr the outputs, r8–r11 the window.
    /// The window rotates through r8–r11, each output loading one word; the
    /// loop is unrolled 16 times (four rotations), and a pass enters the
    /// unrolled body at the step its [`RowConsts`](super::RowConsts) entry
    /// names, through a `TBB` table, with the first window loaded in that
    /// step's register order.
    ///
    /// # Safety
    ///
    /// `c` built for `out.len()` outputs, `out.len() >= 2`, `words.len()
    /// >= ceil(out.len() / 2) + 4`.
    #[inline(always)]
    pub unsafe fn row_passes_raw(c: &super::RowConsts, words: &[u32], out: &mut [i8]) {
        // SAFETY: reads the 15 words of `c.words` and at most
        // `ceil(n/2) + 4` words of `words` (word-aligned as LDM/LDRD need),
        // writes bytes `2i` (even pass) and `2i + 1` (odd pass) below `n =
        // out.len()` of `out`, as `c`'s entries and counters, made for `n`,
        // bound them: in bounds by the caller's contract. r6/r7 are pushed
        // and popped around their use, with the three pointers (6 words:
        // the stack stays 8-byte aligned); every other register it writes
        // is declared. SMLAD/SSAT may set Q and ADDS sets NZCV, so flags
        // are not preserved.
        unsafe {
            asm!(
                // Saved: [sp] consts, [sp, #4] words, [sp, #8] outputs.
                "push {{r0-r2, r6-r8}}",
                "mov lr, r2",
                "mov r12, r1",
                "ldm r0, {{r1-r9}}",
                "mov r0, r12",
                "mov r12, r9",
                // A pass: r8 = entry step, r12 = counter and `hs`.
                "1:",
                "tbb [pc, r8]",
                "0:",
                ".byte (20f - 0b) / 2",
                ".byte (21f - 0b) / 2",
                ".byte (22f - 0b) / 2",
                ".byte (23f - 0b) / 2",
                ".byte (24f - 0b) / 2",
                ".byte (25f - 0b) / 2",
                ".byte (26f - 0b) / 2",
                ".byte (27f - 0b) / 2",
                ".byte (30f - 0b) / 2",
                ".byte (31f - 0b) / 2",
                ".byte (32f - 0b) / 2",
                ".byte (33f - 0b) / 2",
                ".byte (34f - 0b) / 2",
                ".byte (35f - 0b) / 2",
                ".byte (36f - 0b) / 2",
                ".byte (37f - 0b) / 2",
                ".p2align 1",
                // Steps 0 and 4: window r8, r9, r10, r11.
                "20:",
                "ldm r0!, {{r8-r11}}",
                "b 10f",
                "24:",
                "ldm r0!, {{r8-r11}}",
                "b 14f",
                // Steps 1 and 5: window r9, r10, r11, r8.
                "21:",
                "ldm r0!, {{r9-r11}}",
                "ldr r8, [r0], #4",
                "b 11f",
                "25:",
                "ldm r0!, {{r9-r11}}",
                "ldr r8, [r0], #4",
                "b 15f",
                // Steps 2 and 6: window r10, r11, r8, r9.
                "22:",
                "ldrd r10, r11, [r0], #8",
                "ldrd r8, r9, [r0], #8",
                "b 12f",
                "26:",
                "ldrd r10, r11, [r0], #8",
                "ldrd r8, r9, [r0], #8",
                "b 16f",
                // Steps 3 and 7: window r11, r8, r9, r10.
                "23:",
                "ldr r11, [r0], #4",
                "ldm r0!, {{r8-r10}}",
                "b 13f",
                "27:",
                "ldr r11, [r0], #4",
                "ldm r0!, {{r8-r10}}",
                "b 17f",
                // Steps 8–15, the same four rotations.
                "30:",
                "ldm r0!, {{r8-r11}}",
                "b 40f",
                "34:",
                "ldm r0!, {{r8-r11}}",
                "b 44f",
                "31:",
                "ldm r0!, {{r9-r11}}",
                "ldr r8, [r0], #4",
                "b 41f",
                "35:",
                "ldm r0!, {{r9-r11}}",
                "ldr r8, [r0], #4",
                "b 45f",
                "32:",
                "ldrd r10, r11, [r0], #8",
                "ldrd r8, r9, [r0], #8",
                "b 42f",
                "36:",
                "ldrd r10, r11, [r0], #8",
                "ldrd r8, r9, [r0], #8",
                "b 46f",
                "33:",
                "ldr r11, [r0], #4",
                "ldm r0!, {{r8-r10}}",
                "b 43f",
                "37:",
                "ldr r11, [r0], #4",
                "ldm r0!, {{r8-r10}}",
                "b 47f",
                "10:",
                pass_step!("r8", "r9", "r10", "r11"),
                "11:",
                pass_step!("r9", "r10", "r11", "r8"),
                "12:",
                pass_step!("r10", "r11", "r8", "r9"),
                "13:",
                pass_step!("r11", "r8", "r9", "r10"),
                "14:",
                pass_step!("r8", "r9", "r10", "r11"),
                "15:",
                pass_step!("r9", "r10", "r11", "r8"),
                "16:",
                pass_step!("r10", "r11", "r8", "r9"),
                "17:",
                pass_step!("r11", "r8", "r9", "r10"),
                "40:",
                pass_step!("r8", "r9", "r10", "r11"),
                "41:",
                pass_step!("r9", "r10", "r11", "r8"),
                "42:",
                pass_step!("r10", "r11", "r8", "r9"),
                "43:",
                pass_step!("r11", "r8", "r9", "r10"),
                "44:",
                pass_step!("r8", "r9", "r10", "r11"),
                "45:",
                pass_step!("r9", "r10", "r11", "r8"),
                "46:",
                pass_step!("r10", "r11", "r8", "r9"),
                "47:",
                pass_step!("r11", "r8", "r9", "r10"),
                "adds r12, r12, #256",
                "bcc 10b",
                // After the even pass, the odd one: its tap pairs, entry
                // and counter, the same words, the outputs from 1. The
                // saved consts pointer is cleared to mark the second pass.
                "ldr r0, [sp]",
                "cbz r0, 9f",
                "movs r1, #0",
                "str r1, [sp]",
                "add r0, r0, #36",
                "ldm r0, {{r1-r4, r8, r12}}",
                "ldrd r0, lr, [sp, #4]",
                "add lr, lr, #1",
                "b 1b",
                "9:",
                "pop {{r0-r2, r6-r8}}",
                inout("r0") c.words.as_ptr() => _,
                inout("r1") words.as_ptr() => _,
                inout("r2") out.as_mut_ptr() => _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
            );
        }
    }

    /// Bytes `b0..b4` of `w` (little-endian) as lanes `[(b0, b1), (b2, b3)]`.
    #[inline(always)]
    pub fn widen_word(w: u32) -> [u32; 2] {
        let lo: u32;
        let hi: u32;
        // SAFETY: register-only arithmetic; no flags written.
        unsafe {
            asm!(
                "sxtb16 {o}, {w}, ror #8",
                "sxtb16 {e}, {w}",
                "pkhbt {lo}, {e}, {o}, lsl #16",
                "pkhtb {hi}, {o}, {e}, asr #16",
                w = in(reg) w,
                e = out(reg) _,
                o = out(reg) _,
                lo = out(reg) lo,
                hi = lateout(reg) hi,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        [lo, hi]
    }

    /// One group of [`widen_lanes_raw`] and [`widen_rows_raw`]: 4 bytes
    /// from `{ps}` widened with `{off}` and stored in order, two lanes a word
    /// (`(b0, b2), (b1, b3)` repacked as `(b0, b1), (b2, b3)`), at `{pd}`.
    macro_rules! widen_in_order {
        () => {
            concat!(
                "ldr {x}, [{ps}], #4\n",
                "sxtb16 {o}, {x}, ror #8\n",
                "sxtb16 {x}, {x}\n",
                "sadd16 {o}, {o}, {off}\n",
                "sadd16 {x}, {x}, {off}\n",
                "pkhbt {t}, {x}, {o}, lsl #16\n",
                "pkhtb {o}, {o}, {x}, asr #16\n",
                "strd {t}, {o}, [{pd}], #8\n",
            )
        };
    }

    /// See [`widen_lanes`](super::widen_lanes); lengths are checked there.
    ///
    /// # Safety
    ///
    /// `src.len() >= 4·groups`, `dst.len() >= 2·groups`, `groups >= 1`.
    #[inline(always)]
    pub unsafe fn widen_lanes_raw(src: &[i8], groups: usize, offset: u32, dst: &mut [u32]) {
        // SAFETY: reads `4·groups` bytes of `src` (unaligned LDRs, see
        // `mac_1x4`) and writes `2·groups` words of `dst` (word-aligned as
        // STRD needs), in bounds by the caller's contract: an odd group
        // first, then two groups per trip (`groups >= 1`, so `n` counts
        // down to exactly 0). Registers otherwise; flags are written.
        unsafe {
            asm!(
                "tst {n}, #1",
                "beq 3f",
                widen_in_order!(),
                "subs {n}, {n}, #1",
                "beq 4f",
                "3:",
                widen_in_order!(),
                widen_in_order!(),
                "subs {n}, {n}, #2",
                "bne 3b",
                "4:",
                n = inout(reg) groups => _,
                ps = inout(reg) src.as_ptr() => _,
                pd = inout(reg) dst.as_mut_ptr() => _,
                off = in(reg) offset,
                x = out(reg) _,
                o = out(reg) _,
                t = out(reg) _,
                options(nostack),
            );
        }
    }

    /// See [`widen_rows`](super::widen_rows), which checks the lengths.
    ///
    /// # Safety
    ///
    /// As [`widen_rows`](super::widen_rows) checks.
    #[inline(always)]
    pub unsafe fn widen_rows_raw(c: &mut super::WidenRows, src: &[i8], dst: &mut [u32]) {
        // SAFETY: per row `r < rows` (word 4, counted down), reads `cols =
        // 4·groups + tail` bytes from `src + r·src_stride` (unaligned LDRs
        // and LDRSBs) and writes `cols` lanes from `dst + r·pitch` words
        // (STRD on word-aligned rows, then STRH), in bounds by the caller's
        // contract; the steps (words 2, 3) go from a row's end to the next
        // row's start. Reads the 7 constant words and writes word 4.
        // Every register written is declared; flags are not preserved.
        unsafe {
            asm!(
                "1:",
                "ldr {n}, [{c}]",
                "cmp {n}, #0",
                "beq 3f",
                "2:",
                widen_in_order!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "3:",
                "ldr {n}, [{c}, #4]",
                "cmp {n}, #0",
                "beq 5f",
                "ldr {t}, [{c}, #24]",
                "4:",
                "ldrsb {x}, [{ps}], #1",
                "sub {x}, {x}, {t}",
                "strh {x}, [{pd}], #2",
                "subs {n}, {n}, #1",
                "bne 4b",
                "5:",
                "ldrd {x}, {o}, [{c}, #8]",
                "add {ps}, {ps}, {x}",
                "add {pd}, {pd}, {o}",
                "ldr {n}, [{c}, #16]",
                "subs {n}, {n}, #1",
                "str {n}, [{c}, #16]",
                "bne 1b",
                c = in(reg) c.words.as_mut_ptr(),
                ps = inout(reg) src.as_ptr() => _,
                pd = inout(reg) dst.as_mut_ptr() => _,
                off = in(reg) c.words[5],
                n = out(reg) _,
                x = out(reg) _,
                o = out(reg) _,
                t = out(reg) _,
                options(nostack),
            );
        }
    }

    /// See [`copy_rows4`](super::copy_rows4).
    ///
    /// # Safety
    ///
    /// As [`copy_rows4`](super::copy_rows4) requires.
    #[inline(always)]
    pub unsafe fn copy_rows4(src: *const i8, dst: *mut i8, g: &super::RowCopy) {
        // SAFETY: the caller guarantees every read and write below is in
        // bounds (see `copy_rows4`): channel `c < chans`, row `r < rows`
        // reads 4 bytes at `src + c·plane + r·row_step` (unaligned LDR) and
        // writes 4 at `dst + (c·rows + r)·kw` (unaligned STR), in that
        // order, so a row's excess bytes are overwritten by the next row.
        // `chans, rows >= 1`. Every register written is declared.
        unsafe {
            asm!(
                "cmp {m}, #1",
                "beq 7f",
                "cmp {m}, #3",
                "bne 5f",
                // Three rows a channel, written out.
                "1:",
                "ldr {x}, [{s}]",
                "ldr {y}, [{s}, {rs}]",
                "str {x}, [{d}]",
                "add {d}, {d}, {kw}",
                "ldr {x}, [{s}, {rs2}]",
                "str {y}, [{d}]",
                "add {d}, {d}, {kw}",
                "str {x}, [{d}]",
                "add {d}, {d}, {kw}",
                "add {s}, {s}, {pl}",
                "subs {n}, {n}, #1",
                "bne 1b",
                "b 9f",
                // Any other number of rows.
                "5:",
                "mov {t}, {s}",
                "mov {y}, {m}",
                "6:",
                "ldr {x}, [{t}]",
                "add {t}, {t}, {rs}",
                "str {x}, [{d}]",
                "add {d}, {d}, {kw}",
                "subs {y}, {y}, #1",
                "bne 6b",
                "add {s}, {s}, {pl}",
                "subs {n}, {n}, #1",
                "bne 5b",
                "b 9f",
                // One row a channel (1-D).
                "7:",
                "ldr {x}, [{s}]",
                "add {s}, {s}, {pl}",
                "str {x}, [{d}]",
                "add {d}, {d}, {kw}",
                "subs {n}, {n}, #1",
                "bne 7b",
                "9:",
                s = inout(reg) src => _,
                d = inout(reg) dst => _,
                n = inout(reg) g.chans => _,
                m = in(reg) g.rows,
                rs = in(reg) g.row_step,
                rs2 = in(reg) 2 * g.row_step,
                pl = in(reg) g.plane,
                kw = in(reg) g.kw,
                x = out(reg) _,
                y = out(reg) _,
                t = out(reg) _,
                options(nostack),
            );
        }
    }

    /// See [`mac_4x1`](super::mac_4x1), which checks the lengths.
    ///
    /// Register use (all 14 allocatable ones, so r6/r7, which `asm!`
    /// cannot take as operands, are saved on the stack and restored): r0
    /// the column, r1–r4 the four weight rows, r5 the group counter, r6/r7
    /// a weight word unpacked, r8–r11 the sums, r12/lr a column group.
    ///
    /// # Safety
    ///
    /// `groups >= 1`; `col` holds `2·groups` words; each of the four rows
    /// (`w`, `w + stride`, `w + 2·stride`, `w + 3·stride`) holds
    /// `4·groups` readable bytes.
    #[inline(always)]
    pub unsafe fn mac_4x1_raw(
        w: *const i8,
        stride: usize,
        col: &[u32],
        groups: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        /// One group of the four rows: the column's two words, then each
        /// row's weight word unpacked and multiplied with them.
        macro_rules! group {
            () => {
                concat!(
                    "ldrd r12, lr, [r0], #8\n",
                    "ldr r6, [r1], #4\n",
                    "sxtb16 r7, r6, ror #8\n",
                    "sxtb16 r6, r6\n",
                    "smlad r8, r6, r12, r8\n",
                    "smlad r8, r7, lr, r8\n",
                    "ldr r6, [r2], #4\n",
                    "sxtb16 r7, r6, ror #8\n",
                    "sxtb16 r6, r6\n",
                    "smlad r9, r6, r12, r9\n",
                    "smlad r9, r7, lr, r9\n",
                    "ldr r6, [r3], #4\n",
                    "sxtb16 r7, r6, ror #8\n",
                    "sxtb16 r6, r6\n",
                    "smlad r10, r6, r12, r10\n",
                    "smlad r10, r7, lr, r10\n",
                    "ldr r6, [r4], #4\n",
                    "sxtb16 r7, r6, ror #8\n",
                    "sxtb16 r6, r6\n",
                    "smlad r11, r6, r12, r11\n",
                    "smlad r11, r7, lr, r11\n",
                )
            };
        }
        // SAFETY: reads `2·groups` words of `col` (word-aligned, as LDRD
        // needs) and `4·groups` bytes from each of the four row pointers
        // (unaligned LDRs, see `mac_1x4`), in bounds by the caller's
        // contract; `groups mod 4` groups first, then four a trip.
        // r6/r7 are pushed and popped around their use (8 bytes: the stack
        // stays 8-byte aligned); every other register written is declared.
        // SMLAD may set Q and the counter sets NZCV.
        unsafe {
            asm!(
                "push {{r6, r7}}",
                // Groups past a multiple of 4 first, one at a time, then
                // four a trip.
                "1:",
                "tst r5, #3",
                "beq 3f",
                group!(),
                "sub r5, r5, #1",
                "b 1b",
                "3:",
                "lsrs r5, r5, #2",
                "beq 4f",
                "2:",
                group!(),
                group!(),
                group!(),
                group!(),
                "subs r5, r5, #1",
                "bne 2b",
                "4:",
                "pop {{r6, r7}}",
                inout("r0") col.as_ptr() => _,
                inout("r1") w => _,
                inout("r2") w.wrapping_add(stride) => _,
                inout("r3") w.wrapping_add(2 * stride) => _,
                inout("r4") w.wrapping_add(3 * stride) => _,
                inout("r5") groups => _,
                inout("r8") a0,
                inout("r9") a1,
                inout("r10") a2,
                inout("r11") a3,
                out("r12") _,
                out("lr") _,
                options(readonly),
            );
        }
        [a0, a1, a2, a3]
    }
}

#[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp))))]
mod imp {
    //! Instruction-for-instruction emulation, so the kernels' data layout
    //! and loop structure are testable on the host.
    use super::{lens_ok, word};

    /// The DSP version's `LDR`, `SXTB16`s and `SMLAxB`s, per tap.
    ///
    /// # Safety
    ///
    /// As the DSP version's: `at + offset + 4 ≤ x.len()` for every tap.
    #[cfg(feature = "sparse-weights")]
    pub unsafe fn gather_1x4(
        x: &[i8],
        at: usize,
        taps: &[crate::kernels::reference::Tap],
        acc: [i32; 4],
    ) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        for t in taps {
            // SAFETY: in bounds by the caller's guarantee.
            let v = unsafe {
                x.as_ptr()
                    .add(at + t.offset)
                    .cast::<[i8; 4]>()
                    .read_unaligned()
            };
            let v = word(v);
            let (lo, hi) = (sxtb16(v), sxtb16(v.rotate_right(8)));
            let w = i32::from(t.weight as i16);
            let lane = |p: u32, top: bool| i32::from((if top { p >> 16 } else { p }) as u16 as i16);
            a0 = a0.wrapping_add(lane(lo, false) * w);
            a2 = a2.wrapping_add(lane(lo, true) * w);
            a1 = a1.wrapping_add(lane(hi, false) * w);
            a3 = a3.wrapping_add(lane(hi, true) * w);
        }
        [a0, a1, a2, a3]
    }

    fn sxtb16(x: u32) -> u32 {
        let lo = i32::from(x as u8 as i8) as u32 & 0xffff;
        let hi = i32::from((x >> 16) as u8 as i8) as u32 & 0xffff;
        lo | (hi << 16)
    }

    fn sadd16(a: u32, b: u32) -> u32 {
        let lo = (a as u16).wrapping_add(b as u16);
        let hi = ((a >> 16) as u16).wrapping_add((b >> 16) as u16);
        u32::from(lo) | (u32::from(hi) << 16)
    }

    #[cfg(feature = "int16-activations")]
    pub fn smlald(a: u32, b: u32, acc: i64) -> i64 {
        let lo = i64::from(a as u16 as i16) * i64::from(b as u16 as i16);
        let hi = i64::from((a >> 16) as u16 as i16) * i64::from((b >> 16) as u16 as i16);
        acc.wrapping_add(lo).wrapping_add(hi)
    }

    #[cfg(feature = "int16-activations")]
    pub fn unpack_word(w: u32) -> [u32; 2] {
        [sxtb16(w), sxtb16(w.rotate_right(8))]
    }

    #[cfg(feature = "int16-activations")]
    pub fn interleave(x01: u32, x23: u32) -> [u32; 2] {
        [
            (x01 & 0xffff) | (x23 << 16),
            (x01 >> 16) | (x23 & 0xffff_0000),
        ]
    }

    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let lo = i32::from(a as u16 as i16) * i32::from(b as u16 as i16);
        let hi = i32::from((a >> 16) as u16 as i16) * i32::from((b >> 16) as u16 as i16);
        acc.wrapping_add(lo).wrapping_add(hi)
    }

    pub fn widen_offset(w: u32, offset: u32) -> [u32; 2] {
        [
            sadd16(sxtb16(w), offset),
            sadd16(sxtb16(w.rotate_right(8)), offset),
        ]
    }

    /// One group of weights, unpacked as the asm does.
    fn unpack(w: &[i8]) -> [u32; 2] {
        let v = match *w {
            [a, b, c, d, ..] => word([a, b, c, d]),
            _ => 0,
        };
        [sxtb16(v), sxtb16(v.rotate_right(8))]
    }

    pub fn mac_1x4(w: &[i8], col: &[u32], groups: usize, mut acc: [i32; 4]) -> [i32; 4] {
        if groups == 0 || !lens_ok(w, col, groups, 4) {
            return acc;
        }
        for (wg, cg) in w.chunks_exact(4).zip(col.chunks_exact(8)).take(groups) {
            let [we, wo] = unpack(wg);
            for (a, c) in acc.iter_mut().zip(cg.chunks_exact(2)) {
                if let [ce, co] = *c {
                    *a = smlad(wo, co, smlad(we, ce, *a));
                }
            }
        }
        acc
    }

    pub fn mac_rows_1x4(
        w: &[i8],
        k: usize,
        col: &[u32],
        groups: usize,
        bias: &[i32],
        accs: &mut [i32],
    ) {
        let rows = bias.len();
        let fits = groups
            .checked_mul(4)
            .zip(rows.checked_sub(1).and_then(|r| r.checked_mul(k)))
            .and_then(|(g, r)| r.checked_add(g))
            .is_some_and(|n| n <= w.len());
        let ok = rows > 0
            && groups > 0
            && k.div_ceil(4) == groups
            && fits
            && groups.checked_mul(8).is_some_and(|n| n <= col.len())
            && rows.checked_mul(4).is_some_and(|n| n <= accs.len());
        if !ok {
            return;
        }
        for (r, (&b, acc)) in bias.iter().zip(accs.chunks_exact_mut(4)).enumerate() {
            let row = w.get(r * k..).unwrap_or(&[]);
            acc.copy_from_slice(&mac_1x4(row, col, groups, [b; 4]));
        }
    }

    pub fn mac_1x2(w: &[i8], col: &[u32], groups: usize, mut acc: [i32; 2]) -> [i32; 2] {
        if groups == 0 || !lens_ok(w, col, groups, 2) {
            return acc;
        }
        for (wg, cg) in w.chunks_exact(4).zip(col.chunks_exact(4)).take(groups) {
            let [we, wo] = unpack(wg);
            for (a, c) in acc.iter_mut().zip(cg.chunks_exact(2)) {
                if let [ce, co] = *c {
                    *a = smlad(wo, co, smlad(we, ce, *a));
                }
            }
        }
        acc
    }

    pub fn widen_groups<const NC: usize>(src: &[i8], groups: usize, offset: u32, dst: &mut [u32]) {
        let src_ok = groups.checked_mul(4).is_some_and(|n| n <= src.len());
        let dst_ok = groups
            .checked_sub(1)
            .and_then(|g| g.checked_mul(2 * NC))
            .and_then(|n| n.checked_add(2))
            .is_some_and(|n| n <= dst.len());
        if groups == 0 || !src_ok || !dst_ok {
            return;
        }
        for (s, d) in src.chunks_exact(4).zip(dst.chunks_mut(2 * NC)).take(groups) {
            if let (&[a, b, c, e], [lo, hi, ..]) = (s, d) {
                [*lo, *hi] = widen_offset(word([a, b, c, e]), offset);
            }
        }
    }

    pub fn mac_1x1(w: &[i8], col: &[u32], groups: usize, mut acc: i32) -> i32 {
        if groups == 0 || !lens_ok(w, col, groups, 1) {
            return acc;
        }
        for (wg, c) in w.chunks_exact(4).zip(col.chunks_exact(2)).take(groups) {
            let [we, wo] = unpack(wg);
            if let [ce, co] = *c {
                acc = smlad(wo, co, smlad(we, ce, acc));
            }
        }
        acc
    }

    pub fn smlabt(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add(i32::from(a as u16 as i16) * i32::from((b >> 16) as u16 as i16))
    }

    pub fn smlatb(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add(i32::from((a >> 16) as u16 as i16) * i32::from(b as u16 as i16))
    }

    /// `SMMLA`: `acc + ((a · b) >> 32)`, the high word of `(acc << 32) + a·b`.
    pub fn smmla(a: i32, b: i32, acc: i32) -> i32 {
        ((i64::from(acc) << 32).wrapping_add(i64::from(a) * i64::from(b)) >> 32) as i32
    }

    pub fn clamp4(x: u32, lo: u32, hi: u32) -> u32 {
        let [x, lo, hi] = [x, lo, hi].map(u32::to_le_bytes);
        let byte = |i: usize| (x[i] as i8).clamp(lo[i] as i8, (hi[i] as i8).max(lo[i] as i8));
        u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)].map(|b| b as u8))
    }

    /// `SSAT #8`.
    pub fn ssat8(x: i32) -> i8 {
        x.clamp(-128, 127) as i8
    }

    /// The even outputs, then the odd ones, as the asm does them, from the
    /// same constant words.
    ///
    /// # Safety
    ///
    /// None needed here (checked slice accesses); `unsafe` to match the asm.
    pub unsafe fn row_passes_raw(c: &super::RowConsts, words: &[u32], out: &mut [i8]) {
        let k = &c.words;
        let (bias, multiplier, round) = (k[4] as i32, k[5] as i32, k[6] as i32);
        for (parity, w, count) in [(0, &k[0..4], k[8]), (1, &k[9..13], k[14])] {
            // `ASR` by register takes the shift from bits 0..8.
            let hs = (count & 0xff).min(31);
            let ys = out.get_mut(parity..).unwrap_or(&mut []);
            for (i, y) in ys.iter_mut().step_by(2).enumerate() {
                let win = words.get(i..i + 4).unwrap_or(&[]);
                let acc = w.iter().zip(win).fold(bias, |a, (&w, &x)| smlad(w, x, a));
                *y = ssat8(smmla(acc, multiplier, round) >> hs);
            }
        }
    }

    pub fn widen_word(w: u32) -> [u32; 2] {
        let [even, odd] = [sxtb16(w), sxtb16(w.rotate_right(8))];
        [
            (even & 0xffff) | (odd << 16),
            (even >> 16) | (odd & 0xffff_0000),
        ]
    }

    /// # Safety
    ///
    /// None needed here; `unsafe` to match the asm.
    pub unsafe fn widen_lanes_raw(src: &[i8], groups: usize, offset: u32, dst: &mut [u32]) {
        for (s, d) in src
            .chunks_exact(4)
            .zip(dst.chunks_exact_mut(2))
            .take(groups)
        {
            if let (&[a, b, c, e], [lo, hi]) = (s, d) {
                let [even, odd] = widen_offset(word([a, b, c, e]), offset);
                *lo = (even & 0xffff) | (odd << 16);
                *hi = (even >> 16) | (odd & 0xffff_0000);
            }
        }
    }

    /// # Safety
    ///
    /// None needed here; `unsafe` to match the asm.
    pub unsafe fn widen_rows_raw(c: &mut super::WidenRows, src: &[i8], dst: &mut [u32]) {
        let Ok(lanes) = bytemuck::try_cast_slice_mut::<u32, i16>(dst) else {
            return;
        };
        let k = c.words.map(|w| w as usize);
        let cols = 4 * k[0] + k[1];
        let (src_stride, pitch) = (cols + k[2], (k[3] + 2 * cols) / 4);
        let zp = c.words[6] as i32;
        for r in 0..k[4] {
            let row = src.get(r * src_stride..).unwrap_or(&[]);
            let out = lanes.get_mut(2 * r * pitch..).unwrap_or(&mut []);
            for (l, &x) in out.iter_mut().zip(row).take(cols) {
                *l = (i32::from(x) - zp) as i16;
            }
        }
    }

    /// # Safety
    ///
    /// As the asm version.
    pub unsafe fn copy_rows4(src: *const i8, dst: *mut i8, g: &super::RowCopy) {
        let mut d = dst;
        for c in 0..g.chans {
            for r in 0..g.rows {
                let at = c * g.plane + r * g.row_step;
                // SAFETY: in bounds by the caller's contract; unaligned.
                unsafe {
                    let v = src.wrapping_add(at).cast::<[i8; 4]>().read_unaligned();
                    d.cast::<[i8; 4]>().write_unaligned(v);
                }
                d = d.wrapping_add(g.kw);
            }
        }
    }

    /// # Safety
    ///
    /// As the asm version.
    pub unsafe fn mac_4x1_raw(
        w: *const i8,
        stride: usize,
        col: &[u32],
        groups: usize,
        mut acc: [i32; 4],
    ) -> [i32; 4] {
        for (r, a) in acc.iter_mut().enumerate() {
            // SAFETY: the caller's contract: `4·groups` readable bytes.
            let row =
                unsafe { core::slice::from_raw_parts(w.wrapping_add(r * stride), 4 * groups) };
            *a = mac_1x1(row, col, groups, *a);
        }
        acc
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn instruction_semantics() {
            // Bytes (LE) 0xFF, 0x01, 0x80, 0x7F: -1, 1, -128, 127.
            let w = 0x7F80_01FF;
            assert_eq!(sxtb16(w), 0xFF80_FFFF); // lanes -1, -128
            assert_eq!(sxtb16(w.rotate_right(8)), 0x007F_0001); // lanes 1, 127
                                                                // Lane-wise wrap, no carry between lanes: (0x7FFF + 1, 0xFFFF + 1).
            assert_eq!(sadd16(0xFFFF_7FFF, 0x0001_0001), 0x0000_8000);
            // 3·(-2) + (-4)·5 = -26 on top of 100.
            assert_eq!(smlad(0xFFFC_0003, 0x0005_FFFE, 100), 74);
            // (-32768)² · 2 = 2^31 wraps past i32::MAX.
            assert_eq!(smlad(0x8000_8000, 0x8000_8000, 0), i32::MIN);
            // Halves: a = (lo 3, hi -4), b = (lo 5, hi -2): lo·hi = -6,
            // hi·lo = -20.
            assert_eq!(smlabt(0xFFFC_0003, 0xFFFE_0005, 100), 94);
            assert_eq!(smlatb(0xFFFC_0003, 0xFFFE_0005, 100), 80);
            // (-2^15)² = 2^30 on top of i32::MAX wraps.
            assert_eq!(
                smlabt(0x0000_8000, 0x8000_0000, i32::MAX),
                i32::MIN + (1 << 30) - 1
            );
            // SMMLA adds the floor of the product / 2^32: 3·(−2^31) -> −2,
            // −1 -> −1, 2^32 -> 1.
            assert_eq!(smmla(3, i32::MIN, 7), 5);
            assert_eq!(smmla(-1, 1, 7), 6);
            assert_eq!(smmla(1 << 16, 1 << 16, 0), 1);
            assert_eq!((ssat8(128), ssat8(-129), ssat8(-5)), (127, -128, -5));
            // In-order widening: bytes -1, 1, -128, 127 -> (-1, 1), (-128, 127).
            let [lo, hi] = widen_word(w);
            assert_eq!((lo as u16 as i16, (lo >> 16) as u16 as i16), (-1, 1));
            assert_eq!((hi as u16 as i16, (hi >> 16) as u16 as i16), (-128, 127));
            // widen: bytes -1, 1, -128, 127 minus zp 5 -> lanes (-6, -133), (-4, 122).
            let [e, o] = widen_offset(w, super::super::splat16(-5));
            assert_eq!((e as u16 as i16, (e >> 16) as u16 as i16), (-6, -133));
            assert_eq!((o as u16 as i16, (o >> 16) as u16 as i16), (-4, 122));
        }
    }
}

#[cfg(feature = "sparse-weights")]
pub(super) use imp::gather_1x4;
#[cfg(feature = "int16-activations")]
pub(super) use imp::{interleave, smlald, unpack_word};
pub(super) use imp::{
    mac_1x1, mac_1x2, mac_1x4, mac_rows_1x4, smlad, widen_groups, widen_offset, widen_word,
};
/// The emulated instructions `dw3`'s emulation is written in.
#[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp))))]
pub(super) use imp::{smlabt, smlatb, smmla, ssat8};

/// Clamps every byte of `out` to `lo..=hi` (`-128 <= lo <= hi <= 127`),
/// four at a time.
pub(super) fn clamp_bytes(out: &mut [i8], lo: i32, hi: i32) {
    let splat = |v: i32| u32::from(v as u8) * 0x0101_0101;
    let (lo4, hi4) = (splat(lo), splat(hi));
    let mut words = out.chunks_exact_mut(4);
    for w in &mut words {
        if let Ok(bytes) = <&mut [i8; 4]>::try_from(w) {
            let v = imp::clamp4(word(*bytes), lo4, hi4);
            *bytes = v.to_le_bytes().map(|b| b as i8);
        }
    }
    for y in words.into_remainder() {
        *y = i32::from(*y).clamp(lo, hi) as i8;
    }
}

/// One output channel's constants for [`row_passes`], for rows of `n`
/// outputs, laid out as the asm loads them: the even outputs' tap pairs
/// (4 words), bias, multiplier, rounding constant, the even pass's entry
/// step and counter; the odd outputs' tap pairs (4), entry and counter.
/// A counter is `hs − 256·blocks` (mod 2^32): the loop adds 256 per block
/// of 16 outputs and stops at the carry, `hs` riding in bits 0..8.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowConsts {
    words: [u32; 15],
    n: usize,
}

impl RowConsts {
    /// The words the asm loads, for tests.
    #[cfg(test)]
    pub(super) fn words(&self) -> &[u32; 15] {
        &self.words
    }

    /// Tap pairs are low lane first; `hs` in `1..=30`; `2 <= n < 2^24`
    /// (else [`row_passes`] does nothing).
    #[inline(always)]
    pub(super) fn new(
        even: [u32; 4],
        odd: [u32; 4],
        bias: i32,
        multiplier: i32,
        round: i32,
        hs: u32,
        n: usize,
    ) -> RowConsts {
        // A pass of `m` outputs enters the 16-step body at step
        // `(16 − m % 16) % 16` and runs `ceil(m / 16)` blocks.
        let entry = |m: usize| ((16 - m % 16) % 16) as u32;
        let count = |m: usize| hs.wrapping_sub((m.div_ceil(16) as u32).wrapping_shl(8));
        let (ne, no) = (n.div_ceil(2), n / 2);
        let [e0, e1, e2, e3] = even;
        let [o0, o1, o2, o3] = odd;
        RowConsts {
            words: [
                e0,
                e1,
                e2,
                e3,
                bias as u32,
                multiplier as u32,
                round as u32,
                entry(ne),
                count(ne),
                o0,
                o1,
                o2,
                o3,
                entry(no),
                count(no),
            ],
            n,
        }
    }
}

/// For every output `o < out.len()`, with `m = o / 2`, and `w` the even
/// tap pairs for even `o`, the odd ones for odd `o`:
///
/// `out[o] = SSAT8(SMMLA(acc, multiplier, round) >> hs)`,
/// `acc = bias + Σ_{j<4} SMLAD(w[j], words[m + j])`
///
/// (all wrapping, as the instructions are): the single-channel convolution
/// of `conv::conv_rows`, as a pass over the even outputs and one over the
/// odd ones. Does nothing unless `c` was made for `out.len()` outputs,
/// `2 <= out.len() < 2^24`, and `words` holds `ceil(out.len() / 2) + 4`
/// words (the last one is read, not used).
#[inline(always)]
pub(super) fn row_passes(c: &RowConsts, words: &[u32], out: &mut [i8]) {
    let n = out.len();
    let ok = n == c.n && (2..1 << 24).contains(&n) && n.div_ceil(2) + 4 <= words.len();
    if ok {
        // SAFETY: the lengths are checked above.
        unsafe { imp::row_passes_raw(c, words, out) }
    }
}

/// Words `j < 2·groups` of `dst` = lanes `(src[2j] − zp, src[2j + 1] − zp)`
/// (`offset` = `splat16(−zp)`): `src` widened in order, two lanes a word.
/// Does nothing if a slice is short.
#[inline(always)]
pub(super) fn widen_lanes(src: &[i8], groups: usize, offset: u32, dst: &mut [u32]) {
    let ok = groups >= 1
        && groups.checked_mul(4).is_some_and(|b| b <= src.len())
        && groups.checked_mul(2).is_some_and(|w| w <= dst.len());
    if ok {
        // SAFETY: the lengths are checked above.
        unsafe { imp::widen_lanes_raw(src, groups, offset, dst) }
    }
}

/// Rows copied by [`copy_rows4`]: `rows` rows of each of `chans`
/// channels, `row_step` and `plane` bytes apart in the source, `kw` apart
/// in the destination.
#[derive(Clone, Copy)]
pub(super) struct RowCopy {
    pub chans: usize,
    pub rows: usize,
    pub plane: usize,
    pub row_step: usize,
    pub kw: usize,
}

/// For `c < chans`, `r < rows`, in that order: 4 bytes of `src + c·plane +
/// r·row_step` to `dst + (c·rows + r)·kw` (so with `kw < 4`, each row's
/// excess is overwritten by the next).
///
/// # Safety
///
/// `chans, rows >= 1`; every such read inside one slice, every such write
/// inside another, distinct, exclusively borrowed one.
#[inline(never)]
pub(super) unsafe fn copy_rows4(src: *const i8, dst: *mut i8, g: &RowCopy) {
    // SAFETY: the caller's contract.
    unsafe { imp::copy_rows4(src, dst, g) }
}

/// The constants of [`widen_rows`], laid out as the asm loads them: 4-byte
/// groups and tail bytes per row, the steps from a row's end to the next
/// row's start in the source (bytes) and destination (bytes), rows left,
/// `splat16(−zp)`, `zp`.
pub(super) struct WidenRows {
    words: [u32; 7],
}

/// Rows `r < rows` of `src` (`cols` bytes each, `src_stride` apart)
/// widened to `x − zp` lanes, in order, into `dst` from word `r·pitch`.
/// Does nothing unless `rows, cols >= 1`, `cols <= src_stride`, `cols <=
/// 2·pitch` and both slices hold every row.
pub(super) fn widen_rows(
    src: &[i8],
    (rows, cols, src_stride): (usize, usize, usize),
    zp: i8,
    dst: &mut [u32],
    pitch: usize,
) {
    let src_end = (rows.max(1) - 1)
        .checked_mul(src_stride)
        .and_then(|r| r.checked_add(cols));
    let dst_end = (rows.max(1) - 1)
        .checked_mul(pitch)
        .and_then(|r| r.checked_add(cols.div_ceil(2)));
    let ok = rows >= 1
        && cols >= 1
        && cols <= src_stride
        && cols <= pitch.saturating_mul(2)
        && src_end.is_some_and(|e| e <= src.len())
        && dst_end.is_some_and(|e| e <= dst.len())
        && u32::try_from(pitch.saturating_mul(4)).is_ok()
        && u32::try_from(src_stride).is_ok();
    if !ok {
        return;
    }
    let mut c = WidenRows {
        words: [
            (cols / 4) as u32,
            (cols % 4) as u32,
            (src_stride - cols) as u32,
            (4 * pitch - 2 * cols) as u32,
            rows as u32,
            splat16(-i32::from(zp)),
            i32::from(zp) as u32,
        ],
    };
    // SAFETY: the lengths are checked above; a row's lanes start on a word
    // (`pitch` words apart), as STRD needs.
    unsafe { imp::widen_rows_raw(&mut c, src, dst) }
}

/// `acc[r] + Σ_k w[r·stride + k] · col[k]` for the four weight rows `r <
/// 4` starting at `w[0]`, over `groups` groups of one column (group `j` at
/// words `2j..2j+2`): each column group is loaded once for the four rows.
/// Returns `acc` unchanged unless `groups >= 1`, `col` holds `2·groups`
/// words and `w` holds `3·stride + 4·groups` bytes.
#[inline(always)]
pub(super) fn mac_4x1(
    w: &[i8],
    stride: usize,
    col: &[u32],
    groups: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    let w_end = stride
        .checked_mul(3)
        .and_then(|r| r.checked_add(groups.checked_mul(4)?));
    let ok = groups >= 1
        && groups.checked_mul(2).is_some_and(|n| n <= col.len())
        && w_end.is_some_and(|n| n <= w.len());
    if !ok {
        return acc;
    }
    // SAFETY: the lengths are checked above.
    unsafe { imp::mac_4x1_raw(w.as_ptr(), stride, col, groups, acc) }
}

/// `acc[c] + Σ_k w[k] · column c[k]` for `NC` ∈ {1, 2, 4} interleaved
/// columns (group `j` of column `c` at words `(NC·j + c)·2 ..+2`); any other
/// `NC` returns `acc`.
#[inline(always)]
pub(super) fn mac<const NC: usize>(
    w: &[i8],
    col: &[u32],
    groups: usize,
    acc: [i32; NC],
) -> [i32; NC] {
    let mut out = acc;
    match out.as_mut_slice() {
        [a0, a1, a2, a3] => [*a0, *a1, *a2, *a3] = mac_1x4(w, col, groups, [*a0, *a1, *a2, *a3]),
        [a0, a1] => [*a0, *a1] = mac_1x2(w, col, groups, [*a0, *a1]),
        [a0] => *a0 = mac_1x1(w, col, groups, *a0),
        _ => {}
    }
    out
}
