//! 256-entry table lookup, 16 bytes at a time: the table is sixteen vector
//! registers, and `tbl` over the first 64 entries followed by `tbx` over
//! each next 64 (with the index lowered by 64 each time; out-of-range
//! indices leave a lane unchanged) looks up every lane. About 0.7
//! instructions per byte, against 5 for the scalar loop.

use core::arch::aarch64::*;

use crate::kernels::reference;

/// Whether [`lut_s8_neon`] runs itself: always.
pub fn lut_neon_takes() -> Result<(), &'static str> {
    Ok(())
}

/// [`reference::lut_s8`], bit for bit, on NEON: `y[i] = table[x[i] + 128]`
/// for `min(input.len(), output.len())` elements.
pub fn lut_s8_neon(table: &[i8; 256], input: &[i8], output: &mut [i8]) {
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { lut(table, input, output) }
}

/// [`reference::lut_in_place_s8`], bit for bit, on NEON.
pub fn lut_in_place_s8_neon(table: &[i8; 256], data: &mut [i8]) {
    // SAFETY: NEON is part of the aarch64 baseline.
    let tables = unsafe { Tables::new(table) };
    let mut chunks = data.chunks_exact_mut(16);
    for c in chunks.by_ref() {
        // SAFETY: `c` is 16 readable and writable bytes; NEON is baseline.
        unsafe { vst1q_s8(c.as_mut_ptr(), tables.look_up(vld1q_s8(c.as_ptr()))) };
    }
    reference::lut_in_place_s8(table, chunks.into_remainder());
}

/// The table as four groups of four vector registers.
#[derive(Clone, Copy)]
struct Tables([int8x16x4_t; 4]);

impl Tables {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new(table: &[i8; 256]) -> Tables {
        let quarter = |q: usize| {
            let t = table.as_ptr().wrapping_add(64 * q);
            // SAFETY: `table` holds 256 bytes, so `64·q + 64 <= 256` for q < 4.
            unsafe { vld1q_s8_x4(t) }
        };
        Tables([quarter(0), quarter(1), quarter(2), quarter(3)])
    }

    /// `table[x + 128]` per lane: `tbl` over the first 64 entries, then
    /// `tbx` over each next 64 with the index lowered by 64 (an index out of
    /// a group's range leaves the lane as it is).
    #[inline]
    #[target_feature(enable = "neon")]
    fn look_up(self, x: int8x16_t) -> int8x16_t {
        let step = vdupq_n_u8(64);
        // x + 128 as an unsigned index: the sign bit flipped.
        let i0 = veorq_u8(vreinterpretq_u8_s8(x), vdupq_n_u8(0x80));
        let i1 = vsubq_u8(i0, step);
        let i2 = vsubq_u8(i1, step);
        let i3 = vsubq_u8(i2, step);
        let [t0, t1, t2, t3] = self.0;
        let v = vqtbl4q_s8(t0, i0);
        let v = vqtbx4q_s8(v, t1, i1);
        let v = vqtbx4q_s8(v, t2, i2);
        vqtbx4q_s8(v, t3, i3)
    }
}

#[target_feature(enable = "neon")]
fn lut(table: &[i8; 256], input: &[i8], output: &mut [i8]) {
    let tables = Tables::new(table);
    let mut done = 0;
    for (y, x) in output.chunks_exact_mut(16).zip(input.chunks_exact(16)) {
        // SAFETY: `x` is 16 readable bytes and `y` 16 writable ones.
        unsafe { vst1q_s8(y.as_mut_ptr(), tables.look_up(vld1q_s8(x.as_ptr()))) };
        done += 16;
    }
    let n = input.len().min(output.len());
    if let (Some(x), Some(y)) = (input.get(done..n), output.get_mut(done..n)) {
        reference::lut_s8(table, x, y);
    }
}
