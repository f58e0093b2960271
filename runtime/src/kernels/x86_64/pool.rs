//! Max and average pooling, vectorized over output positions.
//!
//! The window rows of an output row are copied into a buffer split into
//! `stride_w` phases (as on the depthwise path): tap `kx` of output `ox`
//! reads phase `kx·dw % s` at index `ox + kx·dw / s`, so 32 (max) or 16
//! (average) consecutive outputs read consecutive lanes. Max pooling pads
//! with −128, which never wins against a real value; a window without any
//! position inside the input outputs the zero point (such windows are
//! found among the −128 results). Average pooling sums `x − zp` in `i32`
//! and divides in `f64`, which is exact here (below).
//!
//! Side-by-side 1-D windows of 2 or 4 (the ECG models' MaxPools) reduce
//! neighbouring bytes in place instead, and large average windows (global
//! pooling) sum whole rows with `vpsadbw`.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::conv::zeroed_prefix;
use super::need_avx2;
use crate::kernels::reference::{self, axis_ok};
use crate::kernels::PoolParams;
use crate::numerics::div_round_half_away;

/// Bytes of the max-pool window buffer.
const MAX_ROWS_CAP: usize = 32 * 1024;
/// `i16` lanes of the average-pool window buffer.
const AVG_ROWS_CAP: usize = 16 * 1024;
/// Stack taken by the pools' buffers (the larger of the two).
pub(super) const SCRATCH_BYTES: usize = if MAX_ROWS_CAP > AVG_ROWS_CAP * 2 {
    MAX_ROWS_CAP
} else {
    AVG_ROWS_CAP * 2
};
/// Largest window area average pooling accepts (as the reference).
const MAX_AVG_WINDOW: usize = 1 << 23;
/// Windows of at least this many positions are summed window by window.
const WIDE_WINDOW: usize = 64;

/// [`reference::max_pool_s8`], bit for bit, on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel instead
/// when AVX2 is missing, a precondition fails, or [`max_pool_avx2_takes`]
/// refuses the shape.
pub fn max_pool_s8_avx2(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    if max_pool_avx2_takes(p).is_err() || !args_ok(p, input, output) || output.is_empty() {
        reference::max_pool_s8(p, input, output);
        return;
    }
    // SAFETY: `max_pool_avx2_takes` checked that the CPU runs AVX2.
    unsafe {
        if !max_pool_pairs(p, input, output) {
            max_pool_rows(p, input, output);
        }
    }
}

/// `Ok` when [`max_pool_s8_avx2`] runs `p` itself: AVX2 is available and
/// one output row's window rows fit its 32 KiB buffer.
pub fn max_pool_avx2_takes(p: &PoolParams) -> Result<(), &'static str> {
    need_avx2()?;
    match row_width(p, 32) {
        Some(w) if rows_lanes(p, w).is_some_and(|n| n <= MAX_ROWS_CAP) => Ok(()),
        _ => Err("window rows too large for the buffer"),
    }
}

/// [`reference::avg_pool_s8`], bit for bit, on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel instead
/// when AVX2 is missing, a precondition fails, or [`avg_pool_avx2_takes`]
/// refuses the shape.
pub fn avg_pool_s8_avx2(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let area = p.kernel_h.checked_mul(p.kernel_w);
    if avg_pool_avx2_takes(p).is_err()
        || !matches!(area, Some(a) if a <= MAX_AVG_WINDOW)
        || !args_ok(p, input, output)
        || output.is_empty()
    {
        reference::avg_pool_s8(p, input, output);
        return;
    }
    // SAFETY: `avg_pool_avx2_takes` checked that the CPU runs AVX2.
    unsafe {
        if wide_window(p) {
            avg_pool_wide(p, input, output);
        } else {
            avg_pool_rows(p, input, output);
        }
    }
}

/// `Ok` when [`avg_pool_s8_avx2`] runs `p` itself: AVX2 is available and,
/// for windows under 64 positions and 16 columns or dilated along W, one
/// output row's window rows fit its 32 KiB buffer.
pub fn avg_pool_avx2_takes(p: &PoolParams) -> Result<(), &'static str> {
    need_avx2()?;
    if wide_window(p) {
        return Ok(());
    }
    match row_width(p, 16) {
        Some(w) if rows_lanes(p, w).is_some_and(|n| n <= AVG_ROWS_CAP) => Ok(()),
        _ => Err("window rows too large for the buffer"),
    }
}

/// Windows summed one by one with `vpsadbw`: at least [`WIDE_WINDOW`]
/// positions or 16 columns (global pooling), without W dilation.
fn wide_window(p: &PoolParams) -> bool {
    p.dilation_w == 1 && (p.kernel_h.saturating_mul(p.kernel_w) >= WIDE_WINDOW || p.kernel_w >= 16)
}

/// The reference kernels' preconditions.
fn args_ok(p: &PoolParams, input: &[i8], output: &[i8]) -> bool {
    let mul3 = |a: usize, b: usize, c: usize| a.checked_mul(b)?.checked_mul(c);
    (-128..=127).contains(&p.zero_point)
        && axis_ok(
            p.out_h,
            p.stride_h,
            p.kernel_h,
            p.dilation_h,
            p.pad_top,
            p.in_h,
        )
        && axis_ok(
            p.out_w,
            p.stride_w,
            p.kernel_w,
            p.dilation_w,
            p.pad_left,
            p.in_w,
        )
        && mul3(p.channels, p.in_h, p.in_w) == Some(input.len())
        && mul3(p.channels, p.out_h, p.out_w) == Some(output.len())
}

/// Lanes of one phase of a window row: the outputs rounded up to `block`,
/// plus the furthest tap's index and a lane of slack.
fn row_width(p: &PoolParams, block: usize) -> Option<usize> {
    if p.stride_w == 0 || p.kernel_w == 0 {
        return None;
    }
    let reach = (p.kernel_w - 1).checked_mul(p.dilation_w)? / p.stride_w;
    p.out_w
        .checked_next_multiple_of(block)?
        .checked_add(reach)?
        .checked_add(1)
}

/// Lanes of all window rows of one output row.
fn rows_lanes(p: &PoolParams, width: usize) -> Option<usize> {
    p.kernel_h
        .min(p.in_h)
        .checked_mul(p.stride_w)?
        .checked_mul(width)
}

/// The taps of a window along one axis inside the input: `(lo, hi)`, and
/// the input position of tap `lo` (as the reference's `Taps`).
fn taps(
    o: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    kernel: usize,
    len: usize,
) -> (usize, usize, usize) {
    let base = o * stride;
    let lo = if base >= pad {
        0
    } else {
        (pad - base).div_ceil(dil)
    }
    .min(kernel);
    let end = len + pad;
    let hi = if end > base {
        (end - base).div_ceil(dil)
    } else {
        0
    }
    .min(kernel);
    if lo >= hi {
        return (0, 0, 0);
    }
    (lo, hi, base + lo * dil - pad)
}

/// Side-by-side 1-D windows of 2 or 4 (stride = kernel, no padding or
/// dilation): neighbouring bytes reduced in place. Returns whether it applied.
#[target_feature(enable = "avx2")]
fn max_pool_pairs(p: &PoolParams, input: &[i8], output: &mut [i8]) -> bool {
    let k = p.kernel_w;
    let applies = p.kernel_h == 1
        && p.stride_h == 1
        && p.dilation_h == 1
        && p.pad_top == 0
        && p.out_h == p.in_h
        && (k == 2 || k == 4)
        && p.stride_w == k
        && p.dilation_w == 1
        && p.pad_left == 0
        && p.out_w * k <= p.in_w;
    if !applies {
        return false;
    }
    // Rows in order; a block of 32 outputs may read past its row (into
    // the next one, or stop where the input ends) and store past it, into
    // outputs written after it.
    let rows = output.len() / p.out_w.max(1);
    for r in 0..rows {
        let (x0, y0) = (r * p.in_w, r * p.out_w);
        let mut o = 0;
        while o < p.out_w {
            let src = input.get(x0 + o * k..x0 + (o + 32) * k);
            let dst = output.get_mut(y0 + o..y0 + o + 32);
            let (Some(src), Some(dst)) = (src, dst) else {
                break;
            };
            let v = if k == 2 {
                max_pairs_32(src)
            } else {
                max_quads_32(src)
            };
            // SAFETY: `dst` has room for 32 bytes.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) };
            o += 32;
        }
        // Near the end of the tensor: one window at a time.
        let x = input.get(x0..x0 + p.in_w).unwrap_or(&[]);
        let y = output.get_mut(y0..y0 + p.out_w).unwrap_or(&mut []);
        for (j, d) in y.iter_mut().enumerate().skip(o) {
            let w = x.get(j * k..(j + 1) * k).unwrap_or(&[]);
            *d = w.iter().copied().max().unwrap_or(i8::MIN);
        }
    }
    true
}

/// `max(src[2i], src[2i + 1])` for 32 outputs from 64 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn max_pairs_32(src: &[i8]) -> __m256i {
    let half = |at: usize| match src.get(at..at + 32) {
        Some(s) => {
            // SAFETY: 32 bytes to load.
            let v = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
            // Low byte of each 16-bit lane: the pair's max; keep it alone
            // (0..=255 as i16, which the unsigned pack keeps).
            let m = _mm256_max_epi8(v, _mm256_srli_epi16::<8>(v));
            _mm256_and_si256(m, _mm256_set1_epi16(0xff))
        }
        None => _mm256_setzero_si256(),
    };
    let packed = _mm256_packus_epi16(half(0), half(32));
    _mm256_permute4x64_epi64::<0b11_01_10_00>(packed)
}

/// `max(src[4i..4i + 4])` for 32 outputs from 128 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn max_quads_32(src: &[i8]) -> __m256i {
    let quarter = |at: usize| match src.get(at..at + 32) {
        Some(s) => {
            // SAFETY: 32 bytes to load.
            let v = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
            let m = _mm256_max_epi8(v, _mm256_srli_epi16::<8>(v));
            let m = _mm256_max_epi8(m, _mm256_srli_epi32::<16>(m));
            _mm256_and_si256(m, _mm256_set1_epi32(0xff))
        }
        None => _mm256_setzero_si256(),
    };
    let x = _mm256_packus_epi32(quarter(0), quarter(32));
    let y = _mm256_packus_epi32(quarter(64), quarter(96));
    // Dwords now hold outputs [0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31].
    let bytes = _mm256_packus_epi16(x, y);
    _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// The general max pool: each output row from its window rows, 32 outputs
/// per pass.
#[target_feature(enable = "avx2")]
fn max_pool_rows(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let Some(width) = row_width(p, 32) else {
        return;
    };
    let s = p.stride_w;
    let mut buf = MaybeUninit::<[i8; MAX_ROWS_CAP]>::uninit();
    let used = rows_lanes(p, width).unwrap_or(0);
    let rows = zeroed_prefix(&mut buf, used);
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let zp = p.zero_point as i8;
    let per_channel = output.chunks_exact_mut(out_plane).enumerate();
    for (c, out_c) in per_channel {
        let plane = input.get(c * in_plane..(c + 1) * in_plane).unwrap_or(&[]);
        for (oy, out_row) in out_c.chunks_exact_mut(p.out_w).enumerate() {
            let (lo, hi, first) = taps(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            if lo == hi {
                out_row.fill(zp);
                continue;
            }
            for t in 0..hi - lo {
                let iy = first + t * p.dilation_h;
                let src = plane.get(iy * p.in_w..(iy + 1) * p.in_w).unwrap_or(&[]);
                for r in 0..s {
                    let at = (t * s + r) * width;
                    let dst = rows.get_mut(at..at + width).unwrap_or(&mut []);
                    for (j, d) in dst.iter_mut().enumerate() {
                        let col = (s * j + r).wrapping_sub(p.pad_left);
                        *d = src.get(col).copied().unwrap_or(i8::MIN);
                    }
                }
            }
            max_row(p, rows, hi - lo, width, out_row);
        }
    }
}

/// One output row from `n_rows` window rows in `rows`.
#[target_feature(enable = "avx2")]
fn max_row(p: &PoolParams, rows: &[i8], n_rows: usize, width: usize, out: &mut [i8]) {
    let s = p.stride_w;
    let mut ox0 = 0;
    while ox0 < p.out_w {
        let mut m = _mm256_set1_epi8(i8::MIN);
        for t in 0..n_rows {
            for kx in 0..p.kernel_w {
                let o = kx * p.dilation_w;
                let at = (t * s + o % s) * width + o / s + ox0;
                if let Some(v) = rows.get(at..at + 32) {
                    // SAFETY: 32 bytes to load.
                    m = _mm256_max_epi8(m, unsafe { _mm256_loadu_si256(v.as_ptr().cast()) });
                }
            }
        }
        let mut bytes = [0i8; 32];
        // SAFETY: room for 32 bytes.
        unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), m) };
        let len = (p.out_w - ox0).min(32);
        // −128 is also what an empty window gives: those output the zero point.
        let mut hits = _mm256_movemask_epi8(_mm256_cmpeq_epi8(m, _mm256_set1_epi8(i8::MIN))) as u32;
        while hits != 0 {
            let i = hits.trailing_zeros() as usize;
            hits &= hits - 1;
            let (lo, hi, _) = taps(ox0 + i, s, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
            if lo == hi {
                if let Some(b) = bytes.get_mut(i) {
                    *b = p.zero_point as i8;
                }
            }
        }
        if let Some(dst) = out.get_mut(ox0..ox0 + len) {
            dst.copy_from_slice(bytes.get(..len).unwrap_or(&[]));
        }
        ox0 += 32;
    }
}

/// The general average pool: each output row from its window rows
/// (widened to `x − zp`, 0 in the padding), 16 outputs per pass.
#[target_feature(enable = "avx2")]
fn avg_pool_rows(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let Some(width) = row_width(p, 16) else {
        return;
    };
    let s = p.stride_w;
    let mut buf = MaybeUninit::<[i16; AVG_ROWS_CAP]>::uninit();
    let used = rows_lanes(p, width).unwrap_or(0);
    let rows = zeroed_prefix(&mut buf, used);
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let zp = p.zero_point;
    for (c, out_c) in output.chunks_exact_mut(out_plane).enumerate() {
        let plane = input.get(c * in_plane..(c + 1) * in_plane).unwrap_or(&[]);
        for (oy, out_row) in out_c.chunks_exact_mut(p.out_w).enumerate() {
            let (lo, hi, first) = taps(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for t in 0..hi - lo {
                let iy = first + t * p.dilation_h;
                let src = plane.get(iy * p.in_w..(iy + 1) * p.in_w).unwrap_or(&[]);
                for r in 0..s {
                    let at = (t * s + r) * width;
                    let dst = rows.get_mut(at..at + width).unwrap_or(&mut []);
                    for (j, d) in dst.iter_mut().enumerate() {
                        let col = (s * j + r).wrapping_sub(p.pad_left);
                        *d = src.get(col).map_or(0, |&x| (i32::from(x) - zp) as i16);
                    }
                }
            }
            avg_row(p, rows, hi - lo, width, out_row);
        }
    }
}

/// One output row of averages from `n_rows` window rows.
#[target_feature(enable = "avx2")]
fn avg_row(p: &PoolParams, rows: &[i16], n_rows: usize, width: usize, out: &mut [i8]) {
    let s = p.stride_w;
    let area = (p.kernel_h * p.kernel_w) as i32;
    let mut ox0 = 0;
    while ox0 < p.out_w {
        let mut sum = [_mm256_setzero_si256(); 2];
        if n_rows > 0 {
            for t in 0..n_rows {
                for kx in 0..p.kernel_w {
                    let o = kx * p.dilation_w;
                    let at = (t * s + o % s) * width + o / s + ox0;
                    let Some(v) = rows.get(at..at + 16) else {
                        continue;
                    };
                    // SAFETY: 16 `i16` (32 bytes) to load.
                    let v = unsafe { _mm256_loadu_si256(v.as_ptr().cast()) };
                    let lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(v));
                    let hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(v));
                    sum[0] = _mm256_add_epi32(sum[0], lo);
                    sum[1] = _mm256_add_epi32(sum[1], hi);
                }
            }
        }
        let len = (p.out_w - ox0).min(16);
        let mut counts = [area; 16];
        if !p.count_include_pad {
            for (i, cnt) in counts.iter_mut().enumerate() {
                let (lo, hi, _) = taps(ox0 + i, s, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
                *cnt = ((hi - lo) * n_rows) as i32;
            }
        }
        let mut sums = [0i32; 16];
        // SAFETY: `sums` has room for 16 `i32` (64 bytes).
        unsafe {
            _mm256_storeu_si256(sums.as_mut_ptr().cast(), sum[0]);
            _mm256_storeu_si256(sums.as_mut_ptr().add(8).cast(), sum[1]);
        }
        let mut bytes = [0i8; 16];
        divide_16(&sums, &counts, p.zero_point, &mut bytes);
        if let Some(dst) = out.get_mut(ox0..ox0 + len) {
            dst.copy_from_slice(bytes.get(..len).unwrap_or(&[]));
        }
        ox0 += 16;
    }
}

/// `out[i] = clamp(zp + div_round_half_away(sums[i], counts[i]), −128, 127)`,
/// `zp` for a count of 0 (whose sum is 0).
///
/// In `f64`: the numerator `n ± count/2` and the count are exact, and for
/// `|n| < 2^52` the correctly rounded quotient truncates to the integer
/// quotient (a non-integer quotient is at least `1/count` from the next
/// integer, far more than half an ulp), so `cvttpd` gives exactly the
/// integer division of the reference.
#[target_feature(enable = "avx2")]
fn divide_16(sums: &[i32; 16], counts: &[i32; 16], zp: i32, out: &mut [i8; 16]) {
    let mut q = [0i32; 16];
    for ((q4, s4), c4) in q
        .chunks_exact_mut(4)
        .zip(sums.chunks_exact(4))
        .zip(counts.chunks_exact(4))
    {
        // SAFETY: each chunk holds 4 `i32` (16 bytes).
        let (n, d) = unsafe {
            (
                _mm_loadu_si128(s4.as_ptr().cast()),
                _mm_loadu_si128(c4.as_ptr().cast()),
            )
        };
        let d = _mm_max_epi32(d, _mm_set1_epi32(1));
        let half = _mm_srli_epi32::<1>(d);
        // n + half for n ≥ 0, n − half for n < 0: flip half's sign with n's.
        let sign = _mm_srai_epi32::<31>(n);
        let signed_half = _mm_sub_epi32(_mm_xor_si128(half, sign), sign);
        let num = _mm256_cvtepi32_pd(_mm_add_epi32(n, signed_half));
        let quotient = _mm256_cvttpd_epi32(_mm256_div_pd(num, _mm256_cvtepi32_pd(d)));
        // SAFETY: `q4` has room for 4 `i32`.
        unsafe { _mm_storeu_si128(q4.as_mut_ptr().cast(), quotient) };
    }
    for (o, &v) in out.iter_mut().zip(&q) {
        *o = (zp + v).clamp(-128, 127) as i8;
    }
}

/// Large windows (see [`wide_window`]): each output sums its window row by
/// row with `vpsadbw`. The window geometry (taps, count, divisor: integer
/// divisions) is found once per output position, then used for every
/// channel: a global pool over many channels pays it once, not per channel.
#[target_feature(enable = "avx2")]
fn avg_pool_wide(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let zp = p.zero_point;
    for oy in 0..p.out_h {
        let ty = taps(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
        for ox in 0..p.out_w {
            let tx = taps(ox, p.stride_w, 1, p.pad_left, p.kernel_w, p.in_w);
            let (rows, cols) = (ty.1 - ty.0, tx.1 - tx.0);
            // Whole rows of a dense window are one contiguous block.
            let (blocks, block_len) = if cols == p.in_w && p.dilation_h == 1 {
                (1, rows * cols)
            } else {
                (rows, cols)
            };
            let count = rows * cols;
            let divisor = if p.count_include_pad {
                p.kernel_h * p.kernel_w
            } else {
                count
            };
            let first = ty.2 * p.in_w + tx.2;
            let at = oy * p.out_w + ox;
            for c in 0..p.channels {
                let plane = input.get(c * in_plane..(c + 1) * in_plane).unwrap_or(&[]);
                let mut biased = 0u64;
                for b in 0..blocks {
                    let start = first + b * p.dilation_h * p.in_w;
                    biased += sum_biased(plane.get(start..start + block_len).unwrap_or(&[]));
                }
                // Σ (x − zp) = Σ (x + 128) − count · (128 + zp); |·| < 2^31.
                let sum = biased as i64 - count as i64 * i64::from(128 + zp);
                let y = if divisor == 0 {
                    zp as i8
                } else {
                    let q = div_round_half_away(sum as i32, divisor as i32);
                    (zp + q).clamp(-128, 127) as i8
                };
                if let Some(dst) = output.get_mut(c * out_plane + at) {
                    *dst = y;
                }
            }
        }
    }
}

/// `Σ (x + 128)` over `xs`, 32 bytes per `vpsadbw`.
#[target_feature(enable = "avx2")]
fn sum_biased(xs: &[i8]) -> u64 {
    let mut acc = _mm256_setzero_si256();
    let mut chunks = xs.chunks_exact(32);
    for c in &mut chunks {
        // SAFETY: a chunk holds 32 bytes.
        let v = unsafe { _mm256_loadu_si256(c.as_ptr().cast()) };
        acc = _mm256_add_epi64(acc, sad(v));
    }
    let rest = chunks.remainder();
    let mut tail = 0u64;
    match xs.len().checked_sub(32) {
        // The last 32 bytes in one load, the `32 − rest` already summed
        // masked out (to 0, which adds nothing once flipped to `x + 128`):
        // no byte-by-byte tail.
        Some(at) if !rest.is_empty() => {
            if let Some(last) = xs.get(at..) {
                // SAFETY: `last` holds 32 bytes.
                let v = unsafe { _mm256_loadu_si256(last.as_ptr().cast()) };
                let flipped = _mm256_xor_si256(v, _mm256_set1_epi8(i8::MIN));
                let index = _mm256_setr_epi8(
                    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                    22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                );
                // Byte `i` is new when `i ≥ 32 − rest`, i.e. `i > 31 − rest`.
                let first_new = _mm256_set1_epi8((31 - rest.len()) as i8);
                let keep = _mm256_cmpgt_epi8(index, first_new);
                let sums = _mm256_sad_epu8(_mm256_and_si256(flipped, keep), _mm256_setzero_si256());
                acc = _mm256_add_epi64(acc, sums);
            }
        }
        _ => tail = rest.iter().map(|&x| (i32::from(x) + 128) as u64).sum(),
    }
    let halves = _mm_add_epi64(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    let lanes = _mm_add_epi64(halves, _mm_unpackhi_epi64(halves, halves));
    _mm_cvtsi128_si64(lanes) as u64 + tail
}

/// `x + 128` of 32 bytes summed into four `u64` lanes (`x ^ 0x80` is
/// `x + 128` as an unsigned byte).
#[target_feature(enable = "avx2")]
#[inline]
fn sad(v: __m256i) -> __m256i {
    let flip = _mm256_set1_epi8(i8::MIN);
    _mm256_sad_epu8(_mm256_xor_si256(v, flip), _mm256_setzero_si256())
}
