//! 256-entry table lookup, 16 bytes at a time: the table is sixteen vector
//! registers, and `tbl` over the first 64 entries followed by `tbx` over
//! each next 64 (with the index lowered by 64 each time; out-of-range
//! indices leave a lane unchanged) looks up every lane.

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

#[target_feature(enable = "neon")]
fn lut(table: &[i8; 256], input: &[i8], output: &mut [i8]) {
    let quarter = |q: usize| {
        let t = table.as_ptr().wrapping_add(64 * q);
        // SAFETY: `table` holds 256 bytes, so `64·q + 64 <= 256` for q < 4.
        unsafe { vld1q_s8_x4(t) }
    };
    let (t0, t1, t2, t3) = (quarter(0), quarter(1), quarter(2), quarter(3));
    let flip = vdupq_n_u8(0x80);
    let step = vdupq_n_u8(64);
    let mut done = 0;
    for (y, x) in output.chunks_exact_mut(16).zip(input.chunks_exact(16)) {
        // SAFETY: `x` is 16 readable bytes and `y` 16 writable ones.
        unsafe {
            // x + 128 as an unsigned index: the sign bit flipped.
            let i0 = veorq_u8(vld1q_u8(x.as_ptr().cast()), flip);
            let i1 = vsubq_u8(i0, step);
            let i2 = vsubq_u8(i1, step);
            let i3 = vsubq_u8(i2, step);
            let v = vqtbl4q_s8(t0, i0);
            let v = vqtbx4q_s8(v, t1, i1);
            let v = vqtbx4q_s8(v, t2, i2);
            let v = vqtbx4q_s8(v, t3, i3);
            vst1q_s8(y.as_mut_ptr(), v);
        }
        done += 16;
    }
    let n = input.len().min(output.len());
    if let (Some(x), Some(y)) = (input.get(done..n), output.get_mut(done..n)) {
        reference::lut_s8(table, x, y);
    }
}
