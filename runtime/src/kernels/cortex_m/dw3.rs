//! The depthwise kernel's inner loop for 3 kernel rows of at most 3 taps at
//! stride 1 along W: a band of output rows of one channel, from the band's
//! widened input rows, with `SMLAD`, `SMLABT` and `SMLATB` on the weight
//! words `A = (w0, w1)`, `B = (w1, w2)` of each kernel row:
//!
//! - an output whose window starts at an even lane `2m` (an "even" one) is
//!   `SMLAD(A, word m) + SMLATB(B, word m+1)`: `w0·l[2m] + w1·l[2m+1] +
//!   w2·l[2m+2]`;
//! - one starting at the odd lane `2m + 1` is `SMLABT(A, word m) +
//!   SMLAD(B, word m+1)`.
//!
//! So two neighbouring outputs share their input words. A row is an odd
//! output first when its windows start at an odd lane (`head`), then pairs
//! (even, odd), then an even one when one is left (`tail`).
//!
//! Requantization is [`Folded`](super::Folded) with `SSAT #8`: the caller
//! applies a narrower clamp afterwards. Inline `asm!` with `cfg(medq_dsp)`,
//! a portable emulation of the same arithmetic otherwise.

use super::Folded;

/// One output channel's band, laid out as the asm loads it (word offsets):
/// 0 multiplier, 1 rounding constant, 2 `hs` (one `LDM`); 3–8 `A0, B0, A1,
/// B1, A2, B2`; 9, 10 the bias (twice, for one `LDRD`); 11 pairs per row; 12 flags
/// (bit 0 head, bit 1 tail); 13 the kernel rows' step in bytes; 14 the step
/// from where a row's pointers end to the next row's start, in bytes; 15
/// rows left (counted down by the asm).
pub(super) struct Dw3Band {
    words: [u32; 16],
    /// Words of the band read per row (from a row's start), and the steps
    /// between output rows and between kernel rows, in words.
    row_words: usize,
    row_step: usize,
    tap_step: usize,
    rows: usize,
    out_w: usize,
}

/// Where a band's rows are: `rows` output rows of `out_w` outputs, output
/// row `r`'s kernel row `k` at word `r·row_step + k·tap_step` of the band;
/// `head` when the first window starts at lane 1 of its row (else at 0).
#[derive(Clone, Copy)]
pub(super) struct Dw3Rows {
    pub out_w: usize,
    pub head: bool,
    pub row_step: usize,
    pub tap_step: usize,
    pub rows: usize,
}

impl Dw3Rows {
    /// Words of a widened row the windows read: up to the one after the
    /// last window's first word.
    pub fn row_words(&self) -> usize {
        let head = usize::from(self.head);
        (self.out_w + head).div_ceil(2) + 1
    }
}

impl Dw3Band {
    pub fn new(a: [u32; 3], b: [u32; 3], bias: i32, f: Folded, g: Dw3Rows) -> Dw3Band {
        let head = usize::from(g.head && g.out_w > 0);
        let pairs = g.out_w.saturating_sub(head) / 2;
        let tail = g.out_w.saturating_sub(head) % 2;
        let words = [
            f.multiplier as u32,
            f.round as u32,
            f.hs,
            a[0],
            b[0],
            a[1],
            b[1],
            a[2],
            b[2],
            bias as u32,
            bias as u32,
            pairs as u32,
            (head | (tail << 1)) as u32,
            (4 * g.tap_step) as u32,
            (4 * g.row_step.wrapping_sub(head + pairs)) as u32,
            g.rows as u32,
        ];
        Dw3Band {
            words,
            row_words: g.row_words(),
            row_step: g.row_step,
            tap_step: g.tap_step,
            rows: g.rows,
            out_w: g.out_w,
        }
    }
}

/// Output row `r` of the band (`out[r·out_w ..]`), for every `r < rows`:
/// `SSAT8(SMMLA(acc, multiplier, round) >> hs)` with `acc` the bias plus
/// the three kernel rows' products (see the module). Does nothing unless
/// `out` holds exactly `rows·out_w` outputs, `rows, out_w >= 1`, and
/// `band` every word the windows read.
pub(super) fn dw3_band(c: &mut Dw3Band, band: &[u32], out: &mut [i8]) {
    let reach = (c.rows.max(1) - 1)
        .checked_mul(c.row_step)
        .and_then(|r| r.checked_add(2usize.checked_mul(c.tap_step)?))
        .and_then(|r| r.checked_add(c.row_words));
    let ok = c.rows >= 1
        && c.out_w >= 1
        && c.row_step >= c.row_words
        && c.rows.checked_mul(c.out_w) == Some(out.len())
        && reach.is_some_and(|r| r <= band.len())
        && u32::try_from(4 * c.row_step).is_ok();
    if ok {
        c.words[15] = c.rows as u32;
        // SAFETY: the lengths are checked above.
        unsafe { imp::dw3_band_raw(c, band, out) }
    }
}

#[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
mod imp {
    use core::arch::asm;

    /// The three kernel rows of one output or pair: each row's weight
    /// words `A, B` into r8, r9 and input words `m, m + 1` into r10, r11
    /// (`$load` ends the addressing: post-increment or not), then `$mac`.
    macro_rules! three_rows {
        ($load:literal, $($mac:literal),+) => {
            concat!(
                "ldrd r8, r9, [r0, #12]\n",
                "ldrd r10, r11, [r1", $load, "\n",
                $($mac, "\n",)+
                "ldrd r8, r9, [r0, #20]\n",
                "ldrd r10, r11, [r3", $load, "\n",
                $($mac, "\n",)+
                "ldrd r8, r9, [r0, #28]\n",
                "ldrd r10, r11, [r4", $load, "\n",
                $($mac, "\n",)+
            )
        };
    }

    /// Requantizes `$acc` with the band's constants (`SMMLA`, `ASR`, `SSAT`).
    macro_rules! requant {
        ($($acc:literal),+) => {
            concat!(
                "ldm r0, {{r8-r10}}\n",
                $("smmla ", $acc, ", ", $acc, ", r8, r9\n",)+
                $("asr ", $acc, ", ", $acc, ", r10\n",)+
                $("ssat ", $acc, ", #8, ", $acc, "\n",)+
            )
        };
    }

    /// See [`dw3_band`](super::dw3_band), which checks the lengths.
    ///
    /// Registers: r0 the constants, r1/r3/r4 the three kernel rows' words,
    /// r2 the outputs, r5 the pair counter (and scratch), r8/r9 a weight
    /// pair or the requantization constants, r10/r11 two input words,
    /// r12/lr the even and odd sums.
    ///
    /// # Safety
    ///
    /// `out.len() == rows·out_w`, `rows, out_w >= 1`, `band` holds every
    /// word the windows read, as [`dw3_band`](super::dw3_band) checks.
    #[inline(always)]
    pub unsafe fn dw3_band_raw(c: &mut super::Dw3Band, band: &[u32], out: &mut [i8]) {
        // SAFETY: per output row `r < rows` (word 15), reads words `r·row_step
        // + k·tap_step + j` of `band` for `k < 3`, `j < row_words` (the
        // pointers advance one word per head and per pair, then by the
        // step of word 14 to the next row's start), and writes that row's
        // `out_w` outputs in order, from the start of `out`: in bounds by
        // the caller's contract. Reads the 16 constant words and writes
        // word 15. `band` and the constants are word-aligned as LDRD needs.
        // Every register written is declared; flags are not preserved.
        unsafe {
            asm!(
                "ldr r12, [r0, #52]",
                "add r3, r1, r12",
                "add r4, r3, r12",
                // A row: the head (an odd output on words 0, 1).
                "1:",
                "ldr r5, [r0, #48]",
                "tst r5, #1",
                "beq 2f",
                "ldr lr, [r0, #36]",
                three_rows!("], #4", "smlabt lr, r8, r10, lr", "smlad lr, r9, r11, lr"),
                requant!("lr"),
                "strb lr, [r2], #1",
                // The pairs (even, odd) on words m, m + 1.
                "2:",
                "ldr r5, [r0, #44]",
                "cmp r5, #0",
                "beq 4f",
                "3:",
                "ldrd r12, lr, [r0, #36]",
                three_rows!(
                    "], #4",
                    "smlad r12, r8, r10, r12",
                    "smlatb r12, r9, r11, r12",
                    "smlabt lr, r8, r10, lr",
                    "smlad lr, r9, r11, lr"
                ),
                requant!("r12", "lr"),
                "strb lr, [r2, #1]",
                "strb r12, [r2], #2",
                "subs r5, r5, #1",
                "bne 3b",
                // The tail (an even output on words m, m + 1).
                "4:",
                "ldr r5, [r0, #48]",
                "tst r5, #2",
                "beq 5f",
                "ldr r12, [r0, #36]",
                three_rows!("]", "smlad r12, r8, r10, r12", "smlatb r12, r9, r11, r12"),
                requant!("r12"),
                "strb r12, [r2], #1",
                // The next row.
                "5:",
                "ldr r5, [r0, #56]",
                "add r1, r1, r5",
                "add r3, r3, r5",
                "add r4, r4, r5",
                "ldr r5, [r0, #60]",
                "subs r5, r5, #1",
                "str r5, [r0, #60]",
                "bne 1b",
                inout("r0") c.words.as_mut_ptr() => _,
                inout("r1") band.as_ptr() => _,
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
                options(nostack),
            );
        }
    }
}

#[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp))))]
mod imp {
    //! The asm's arithmetic, instruction for instruction, on the host.
    use super::super::dsp::{smlabt, smlad, smlatb, smmla, ssat8};

    /// # Safety
    ///
    /// None needed here (checked accesses); `unsafe` to match the asm.
    pub unsafe fn dw3_band_raw(c: &mut super::Dw3Band, band: &[u32], out: &mut [i8]) {
        let k = c.words;
        let (a, b) = ([k[3], k[5], k[7]], [k[4], k[6], k[8]]);
        let (bias, m, round, hs) = (k[9] as i32, k[0] as i32, k[1] as i32, k[2] & 0xff);
        let (pairs, head, tail) = (k[11] as usize, k[12] & 1 != 0, k[12] & 2 != 0);
        let word = |at: usize| band.get(at).copied().unwrap_or(0);
        let requant = |acc: i32| ssat8(smmla(acc, m, round) >> hs.min(31));
        // Output `o` of a row whose words start at `at`, window at lane `lane`.
        let output = |at: usize, lane: usize| {
            let mut acc = bias;
            for r in 0..3 {
                let w = at + r * c.tap_step + lane / 2;
                acc = match lane % 2 {
                    0 => smlatb(b[r], word(w + 1), smlad(a[r], word(w), acc)),
                    _ => smlad(b[r], word(w + 1), smlabt(a[r], word(w), acc)),
                };
            }
            requant(acc)
        };
        let n = usize::from(head) + 2 * pairs + usize::from(tail);
        for (r, row) in out.chunks_exact_mut(n.max(1)).take(c.rows).enumerate() {
            for (o, y) in row.iter_mut().enumerate() {
                *y = output(r * c.row_step, o + usize::from(head));
            }
        }
    }
}
