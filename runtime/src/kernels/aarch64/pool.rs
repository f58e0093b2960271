//! Max and average pooling.
//!
//! Side-by-side windows along W (stride = kernel ≤ 4, no pads or dilation,
//! `kH = 1`: the ECG models' pools) deinterleave 16 windows with one
//! `ld2`/`ld3`/`ld4`. Every other geometry runs window by window, each
//! valid row of a window reduced 16 bytes at a time when it is contiguous
//! (long windows, e.g. global pooling). Averages divide with
//! `numerics::div_round_half_away`, exactly as the reference does.

use core::arch::aarch64::*;

use super::{axis_ok, Taps, LAST_LANES};
use crate::kernels::{reference, PoolParams};
use crate::numerics::{clamp, div_round_half_away};

/// Largest window area the average pool accepts (the reference's bound).
const MAX_AVG_WINDOW: usize = 1 << 23;

fn geometry_ok(p: &PoolParams) -> Result<(), &'static str> {
    if !(-128..=127).contains(&p.zero_point) {
        return Err("zero point outside int8");
    }
    let h_ok = axis_ok(
        p.out_h,
        p.stride_h,
        p.kernel_h,
        p.dilation_h,
        p.pad_top,
        p.in_h,
    );
    let w_ok = axis_ok(
        p.out_w,
        p.stride_w,
        p.kernel_w,
        p.dilation_w,
        p.pad_left,
        p.in_w,
    );
    if h_ok && w_ok && p.in_h > 0 && p.in_w > 0 {
        Ok(())
    } else {
        Err("invalid window geometry")
    }
}

/// Whether [`max_pool_s8_neon`] runs `p` itself.
pub fn max_pool_neon_takes(p: &PoolParams) -> Result<(), &'static str> {
    geometry_ok(p)
}

/// Whether [`avg_pool_s8_neon`] runs `p` itself.
pub fn avg_pool_neon_takes(p: &PoolParams) -> Result<(), &'static str> {
    let area = p.kernel_h.checked_mul(p.kernel_w);
    if !matches!(area, Some(a) if a <= MAX_AVG_WINDOW) {
        return Err("window larger than 2^23 positions");
    }
    geometry_ok(p)
}

/// Both slices have the lengths of `p`'s planes.
fn lengths_ok(p: &PoolParams, input: &[i8], output: &[i8]) -> bool {
    let n = |c: usize, h: usize, w: usize| c.checked_mul(h).and_then(|n| n.checked_mul(w));
    n(p.channels, p.in_h, p.in_w) == Some(input.len())
        && n(p.channels, p.out_h, p.out_w) == Some(output.len())
}

/// The window count of side-by-side 1-D windows (stride = kernel, no pads,
/// no dilation, one row per output row), if `p` is that case.
fn side_by_side(p: &PoolParams) -> Option<usize> {
    let k = p.kernel_w;
    let applies = p.kernel_h == 1
        && p.stride_h == 1
        && p.dilation_h == 1
        && p.pad_top == 0
        && p.out_h == p.in_h
        && p.stride_w == k
        && p.dilation_w == 1
        && p.pad_left == 0
        && (2..=4).contains(&k)
        && p.out_w.checked_mul(k).is_some_and(|n| n <= p.in_w);
    applies.then_some(k)
}

/// [`reference::max_pool_s8`], bit for bit, on NEON.
///
/// Same arguments, layout and preconditions; shapes
/// [`max_pool_neon_takes`] refuses, and wrong slice lengths, go to the
/// reference kernel.
pub fn max_pool_s8_neon(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    if max_pool_neon_takes(p).is_err() || !lengths_ok(p, input, output) || output.is_empty() {
        reference::max_pool_s8(p, input, output);
        return;
    }
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe {
        match side_by_side(p) {
            Some(k) => rows_side_by_side(p, k, input, output, Reduce::Max),
            None => windows(p, input, output, Reduce::Max),
        }
    }
}

/// [`reference::avg_pool_s8`], bit for bit, on NEON.
///
/// Same arguments, layout and preconditions; shapes
/// [`avg_pool_neon_takes`] refuses, and wrong slice lengths, go to the
/// reference kernel.
pub fn avg_pool_s8_neon(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    if avg_pool_neon_takes(p).is_err() || !lengths_ok(p, input, output) || output.is_empty() {
        reference::avg_pool_s8(p, input, output);
        return;
    }
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe {
        match side_by_side(p) {
            Some(k) => rows_side_by_side(p, k, input, output, Reduce::Avg),
            None if global(p) => global_average(p, input, output),
            None => windows(p, input, output, Reduce::Avg),
        }
    }
}

/// One window covering the whole (unpadded) plane: global pooling.
fn global(p: &PoolParams) -> bool {
    p.out_h == 1
        && p.out_w == 1
        && p.kernel_h == p.in_h
        && p.kernel_w == p.in_w
        && p.pad_top == 0
        && p.pad_left == 0
        && p.dilation_h == 1
        && p.dilation_w == 1
}

/// Global average pooling: each channel's plane is one contiguous row.
#[target_feature(enable = "neon")]
fn global_average(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let n = p.in_h * p.in_w;
    for (y, x) in output.iter_mut().zip(input.chunks_exact(n)) {
        let (_, sum) = reduce_row(x, n, 1);
        *y = average(sum, n, n, p.zero_point);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Avg,
}

/// The average of a window: `zp + round(Σ(x − zp) / count)`, clamped; a
/// window with no position inside the input gives `zp`.
fn average(sum_x: i32, valid: usize, count: usize, zp: i32) -> i8 {
    if count == 0 {
        return zp as i8;
    }
    // |Σ x| ≤ 128 · 2^23 and the counts are at most 2^23: no overflow.
    let sum = sum_x - zp * valid as i32;
    clamp(zp + div_round_half_away(sum, count as i32), -128, 127) as i8
}

/// Side-by-side windows of `k` (2–4) along each row.
#[target_feature(enable = "neon")]
fn rows_side_by_side(p: &PoolParams, k: usize, input: &[i8], output: &mut [i8], op: Reduce) {
    match (op, k) {
        (Reduce::Max, 2) => side_by_side_rows::<2, true>(p, input, output),
        (Reduce::Max, 3) => side_by_side_rows::<3, true>(p, input, output),
        (Reduce::Max, _) => side_by_side_rows::<4, true>(p, input, output),
        (Reduce::Avg, 2) => side_by_side_rows::<2, false>(p, input, output),
        (Reduce::Avg, 3) => side_by_side_rows::<3, false>(p, input, output),
        (Reduce::Avg, _) => side_by_side_rows::<4, false>(p, input, output),
    }
}

/// Windows of `K` side by side, maxima (`MAX`) or averages. A row's last
/// 16 outputs are recomputed from its last 16 windows (same values), so
/// only rows shorter than 16 outputs take the scalar loop.
#[inline]
#[target_feature(enable = "neon")]
fn side_by_side_rows<const K: usize, const MAX: bool>(
    p: &PoolParams,
    input: &[i8],
    output: &mut [i8],
) {
    let zp = p.zero_point;
    let rows = output
        .chunks_exact_mut(p.out_w)
        .zip(input.chunks_exact(p.in_w));
    for (y, x) in rows {
        if y.len() < 16 {
            for (y, w) in y.iter_mut().zip(x.chunks_exact(K)) {
                *y = if MAX {
                    w.iter().copied().max().unwrap_or(i8::MIN)
                } else {
                    average(w.iter().map(|&v| i32::from(v)).sum(), K, K, zp)
                };
            }
            continue;
        }
        let last = y.len() - 16;
        let mut o = 0;
        while let (Some(y16), Some(x16)) = (y.get_mut(o..o + 16), x.get(K * o..K * (o + 16))) {
            // SAFETY: `x16` holds 16 windows of `K` bytes.
            let (max, sums) = unsafe { reduce16::<K>(x16.as_ptr()) };
            if MAX {
                // SAFETY: `y16` is 16 writable bytes.
                unsafe { vst1q_s8(y16.as_mut_ptr(), max) };
            } else {
                let mut s = [0i16; 16];
                // SAFETY: `s` is 16 writable i16.
                unsafe {
                    vst1q_s16(s.as_mut_ptr(), sums.0);
                    vst1q_s16(s.as_mut_ptr().add(8), sums.1);
                }
                for (y, &s) in y16.iter_mut().zip(&s) {
                    *y = average(i32::from(s), K, K, zp);
                }
            }
            if o == last {
                break;
            }
            o = (o + 16).min(last);
        }
    }
}

/// The maxima and the sums (in `i16`, low and high 8) of 16 side-by-side
/// windows of `K` (2–4) bytes at `x`.
///
/// # Safety
/// `x` is valid for `16·K` bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn reduce16<const K: usize>(x: *const i8) -> (int8x16_t, (int16x8_t, int16x8_t)) {
    let (a, b, c, d) = match K {
        // SAFETY: 32, 48 or 64 bytes are readable at `x`.
        2 => unsafe {
            let v = vld2q_s8(x);
            (v.0, v.1, v.0, v.0)
        },
        3 => unsafe {
            let v = vld3q_s8(x);
            (v.0, v.1, v.2, v.0)
        },
        _ => unsafe {
            let v = vld4q_s8(x);
            (v.0, v.1, v.2, v.3)
        },
    };
    let max = match K {
        2 => vmaxq_s8(a, b),
        3 => vmaxq_s8(vmaxq_s8(a, b), c),
        _ => vmaxq_s8(vmaxq_s8(a, b), vmaxq_s8(c, d)),
    };
    let mut lo = vaddl_s8(vget_low_s8(a), vget_low_s8(b));
    let mut hi = vaddl_high_s8(a, b);
    if K >= 3 {
        lo = vaddw_s8(lo, vget_low_s8(c));
        hi = vaddw_high_s8(hi, c);
    }
    if K == 4 {
        lo = vaddw_s8(lo, vget_low_s8(d));
        hi = vaddw_high_s8(hi, d);
    }
    (max, (lo, hi))
}

/// Any geometry, window by window.
#[target_feature(enable = "neon")]
fn windows(p: &PoolParams, input: &[i8], output: &mut [i8], op: Reduce) {
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let zp = p.zero_point;
    let planes = output
        .chunks_exact_mut(out_plane)
        .zip(input.chunks_exact(in_plane));
    for (y, x) in planes {
        for (oy, y_row) in y.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for (ox, y) in y_row.iter_mut().enumerate() {
                let tx = Taps::new(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
                let first_x = (ox * p.stride_w + tx.lo * p.dilation_w).saturating_sub(p.pad_left);
                let (mut best, mut sum) = (i8::MIN, 0i32);
                for ky in ty.lo..ty.hi {
                    let iy = (oy * p.stride_h + ky * p.dilation_h).saturating_sub(p.pad_top);
                    let start = iy * p.in_w + first_x;
                    let row = x.get(start..).unwrap_or(&[]);
                    let (m, s) = reduce_row(row, tx.len(), p.dilation_w);
                    best = best.max(m);
                    sum = sum.wrapping_add(s);
                }
                let valid = ty.len() * tx.len();
                *y = match op {
                    Reduce::Max if valid == 0 => zp as i8,
                    Reduce::Max => best,
                    Reduce::Avg => {
                        let count = if p.count_include_pad {
                            p.kernel_h * p.kernel_w
                        } else {
                            valid
                        };
                        average(sum, valid, if valid == 0 { 0 } else { count }, zp)
                    }
                };
            }
        }
    }
}

/// Max and (wrapping) sum of `n` bytes of `row` at stride `step`; sums
/// only matter for averages, whose windows are small enough not to wrap.
/// Contiguous rows of 16 or more run 16 at a time, the last 16 with the
/// lanes already counted masked off.
#[inline]
#[target_feature(enable = "neon")]
fn reduce_row(row: &[i8], n: usize, step: usize) -> (i8, i32) {
    let Some(row) = row.get(..n).filter(|_| step == 1 && n >= 16) else {
        let (mut best, mut sum) = (i8::MIN, 0i32);
        for &v in row.iter().step_by(step.max(1)).take(n) {
            best = best.max(v);
            sum = sum.wrapping_add(i32::from(v));
        }
        return (best, sum);
    };
    let mut vmax = vdupq_n_s8(i8::MIN);
    let mut vsum = vdupq_n_s32(0);
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder().len();
    for c in chunks {
        // SAFETY: `c` is 16 readable bytes.
        let v = unsafe { vld1q_s8(c.as_ptr()) };
        vmax = vmaxq_s8(vmax, v);
        vsum = vpadalq_s16(vsum, vpaddlq_s8(v));
    }
    if let Some(last) = row.get(n - 16..).filter(|_| rest > 0) {
        // Lanes `16 − rest..` are the uncounted tail.
        // SAFETY: `last` is 16 readable bytes; `rest..rest + 16` is inside `LAST_LANES`.
        let (v, keep) = unsafe {
            let keep = vreinterpretq_s8_u8(vld1q_u8(LAST_LANES.as_ptr().add(rest)));
            (vld1q_s8(last.as_ptr()), keep)
        };
        vmax = vmaxq_s8(
            vmax,
            vbslq_s8(vreinterpretq_u8_s8(keep), v, vdupq_n_s8(i8::MIN)),
        );
        vsum = vpadalq_s16(vsum, vpaddlq_s8(vandq_s8(v, keep)));
    }
    (vmaxvq_s8(vmax), vaddvq_s32(vsum))
}
