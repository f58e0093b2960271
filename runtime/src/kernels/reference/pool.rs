//! Max and average pooling (1-D is `H = 1`; global pooling is a window the
//! size of the input).

use super::{axis_ok, mul3, Taps};
use crate::kernels::PoolParams;
use crate::numerics::{clamp, div_round_half_away};

/// Largest window area [`avg_pool_s8`] accepts: `255 · 2^23 + 2^22` still
/// fits `i32`, so the sum and the rounding in `div_round_half_away` cannot overflow.
const MAX_AVG_WINDOW: usize = 1 << 23;

/// Max pooling over `[channels, in_h, in_w]` into `[channels, out_h, out_w]`.
///
/// Padded positions are ignored (ONNX pads with −∞); a window with no
/// position inside the input outputs `zero_point`.
///
/// Returns early, leaving `output` unchanged, unless both slices have exactly
/// those lengths, kernel/stride/dilation are non-zero, window positions fit
/// in `usize`, and `zero_point` is in `[-128, 127]`.
pub fn max_pool_s8(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    if !preconditions_hold(p, input, output) {
        return;
    }
    if max_pool_rows(p, input, output) {
        return;
    }
    let empty = p.zero_point as i8; // in range: checked above
    max_pool_windows(p, input, output, empty);
}

/// The general window loop of [`max_pool_s8`] and `max_pool_s16`: the
/// largest tap inside the input, `empty` for a window with none.
fn max_pool_windows<T: Copy + Ord>(p: &PoolParams, input: &[T], output: &mut [T], empty: T) {
    for_each_window(p, input, output, |x, ty, tx| {
        let mut best: Option<T> = None;
        for_each_row(p, x, ty, tx, |row| {
            let m = row
                .iter()
                .step_by(p.dilation_w)
                .take(tx.len())
                .copied()
                .max();
            best = best.max(m);
        });
        best.unwrap_or(empty)
    });
}

/// The common 1-D case — windows along W only, side by side (stride equal to
/// the kernel), no padding or dilation — without the general window
/// bookkeeping, which costs far more than the max itself (the ECG models'
/// pools). Same windows, same result. Returns whether it applied.
fn max_pool_rows<T: Copy + Ord>(p: &PoolParams, input: &[T], output: &mut [T]) -> bool {
    let k = p.kernel_w;
    let applies = p.kernel_h == 1
        && p.stride_h == 1
        && p.dilation_h == 1
        && p.pad_top == 0
        && p.out_h == p.in_h
        && p.stride_w == k
        && p.dilation_w == 1
        && p.pad_left == 0
        && p.out_w.checked_mul(k).is_some_and(|n| n <= p.in_w)
        && p.out_w > 0
        && k > 0;
    if !applies {
        return false;
    }
    for (y, x) in output
        .chunks_exact_mut(p.out_w)
        .zip(input.chunks_exact(p.in_w))
    {
        for (y, window) in y.iter_mut().zip(x.chunks_exact(k)) {
            // `k > 0`, so every window has a maximum.
            if let Some(m) = window.iter().copied().max() {
                *y = m;
            }
        }
    }
    true
}

/// Average pooling; input and output share scale and zero point `zp`:
/// `y = clamp(zp + div_round_half_away(Σ (x − zp), count), −128, 127)`, the
/// sum over the window positions inside the input.
///
/// `count` is `kernel_h · kernel_w` when `count_include_pad`, else the number
/// of positions inside the input; a window with no such position outputs
/// `zp`. The full-window count equals ONNX's "positions inside the padded
/// input" because the output size is floor mode (see `NUMERICS.md`).
///
/// Returns early, leaving `output` unchanged, on the conditions of
/// [`max_pool_s8`] and when `kernel_h · kernel_w > 2^23`.
pub fn avg_pool_s8(p: &PoolParams, input: &[i8], output: &mut [i8]) {
    let area = p.kernel_h.checked_mul(p.kernel_w);
    if !matches!(area, Some(a) if a <= MAX_AVG_WINDOW) || !preconditions_hold(p, input, output) {
        return;
    }
    let zp = p.zero_point;
    for_each_window(p, input, output, |x, ty, tx| {
        let mut sum = 0i32;
        for_each_row(p, x, ty, tx, |row| {
            for &v in row.iter().step_by(p.dilation_w).take(tx.len()) {
                sum += i32::from(v) - zp;
            }
        });
        // Both counts are at most MAX_AVG_WINDOW, so the casts are exact.
        let count = if p.count_include_pad {
            p.kernel_h * p.kernel_w
        } else {
            ty.len() * tx.len()
        };
        if count == 0 {
            return zp as i8;
        }
        clamp(zp + div_round_half_away(sum, count as i32), -128, 127) as i8
    });
}

fn preconditions_hold(p: &PoolParams, input: &[i8], output: &[i8]) -> bool {
    (-128..=127).contains(&p.zero_point) && shape_holds(p, input.len(), output.len())
}

/// The geometry is valid and the slices have its lengths.
fn shape_holds(p: &PoolParams, input_len: usize, output_len: usize) -> bool {
    axis_ok(
        p.out_h,
        p.stride_h,
        p.kernel_h,
        p.dilation_h,
        p.pad_top,
        p.in_h,
    ) && axis_ok(
        p.out_w,
        p.stride_w,
        p.kernel_w,
        p.dilation_w,
        p.pad_left,
        p.in_w,
    ) && mul3(p.channels, p.in_h, p.in_w) == Some(input_len)
        && mul3(p.channels, p.out_h, p.out_w) == Some(output_len)
}

/// Calls `f(channel_input, taps_h, taps_w)` for every output element, in
/// order, and stores its result. Preconditions must already hold.
fn for_each_window<T: Copy>(
    p: &PoolParams,
    input: &[T],
    output: &mut [T],
    mut f: impl FnMut(&[T], Taps, Taps) -> T,
) {
    let out_plane = p.out_h * p.out_w;
    let in_plane = p.in_h * p.in_w;
    if output.is_empty() {
        return; // also guarantees non-zero chunk sizes below
    }
    for (c, out_c) in output.chunks_exact_mut(out_plane).enumerate() {
        let x = input.get(c * in_plane..(c + 1) * in_plane).unwrap_or(&[]);
        for (oy, out_row) in out_c.chunks_exact_mut(p.out_w).enumerate() {
            let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for (ox, y) in out_row.iter_mut().enumerate() {
                let tx = Taps::new(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
                *y = f(x, ty, tx);
            }
        }
    }
}

/// Calls `f` with the input row of every valid tap row, starting at the
/// first valid column; `f` reads `tx.len()` elements at stride `dilation_w`.
fn for_each_row<T>(p: &PoolParams, x: &[T], ty: Taps, tx: Taps, mut f: impl FnMut(&[T])) {
    if tx.len() == 0 {
        return;
    }
    for j in 0..ty.len() {
        let iy = ty.first + j * p.dilation_h;
        f(x.get(iy * p.in_w + tx.first..).unwrap_or(&[]));
    }
}

/// [`max_pool_s8`] on `i16` activations (input and output share their
/// quantization): `y = max x` over the window taps inside the input, a
/// window with none outputs `zero_point`.
///
/// Returns early, leaving `output` unchanged, on the conditions of
/// [`max_pool_s8`] with `zero_point` in `[-32768, 32767]`.
#[cfg(feature = "int16-activations")]
pub fn max_pool_s16(p: &PoolParams, input: &[i16], output: &mut [i16]) {
    let Ok(empty) = i16::try_from(p.zero_point) else {
        return;
    };
    if !shape_holds(p, input.len(), output.len()) || max_pool_rows(p, input, output) {
        return;
    }
    max_pool_windows(p, input, output, empty);
}

/// [`avg_pool_s8`] on `i16` activations: `y = clamp(zp +
/// div_round_half_away(Σ (x − zp), count), −32768, 32767)`, the same
/// windows, divisor and rounding. The sum is taken in `i64`: a term is at
/// most 65535 in magnitude and a window at most 2^23 taps, so it stays below
/// 2^40 (an `i32` sum would overflow from 2^15 taps on).
///
/// Returns early, leaving `output` unchanged, on the conditions of
/// [`avg_pool_s8`] with `zero_point` in `[-32768, 32767]`.
#[cfg(feature = "int16-activations")]
pub fn avg_pool_s16(p: &PoolParams, input: &[i16], output: &mut [i16]) {
    let area = p.kernel_h.checked_mul(p.kernel_w);
    if !matches!(area, Some(a) if a <= MAX_AVG_WINDOW)
        || !(-32768..=32767).contains(&p.zero_point)
        || !shape_holds(p, input.len(), output.len())
    {
        return;
    }
    let zp = i64::from(p.zero_point);
    for_each_window(p, input, output, |x, ty, tx| {
        let mut sum = 0i64;
        for_each_row(p, x, ty, tx, |row| {
            for &v in row.iter().step_by(p.dilation_w).take(tx.len()) {
                sum += i64::from(v) - zp;
            }
        });
        // Both counts are at most MAX_AVG_WINDOW, so the casts are exact.
        let count = if p.count_include_pad {
            p.kernel_h * p.kernel_w
        } else {
            ty.len() * tx.len()
        } as i64;
        if count == 0 {
            return zp as i16;
        }
        // div_round_half_away in i64: |sum| + count/2 < 2^41.
        let half = count / 2;
        let avg = if sum >= 0 {
            (sum + half) / count
        } else {
            (sum - half) / count
        };
        (zp + avg).clamp(-32768, 32767) as i16
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: usize, h: usize, w: usize, oh: usize, ow: usize, k: usize) -> PoolParams {
        PoolParams {
            channels: c,
            in_h: h,
            in_w: w,
            out_h: oh,
            out_w: ow,
            kernel_h: k,
            kernel_w: k,
            stride_h: k,
            stride_w: k,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            count_include_pad: false,
            zero_point: 0,
        }
    }

    // A 4x4 image, rows 0..4:
    //   1   2   3   4
    //   5   6   7   8
    //  -9 -10 -11 -12
    //  13  14 -15  16
    const IMG: [i8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, -9, -10, -11, -12, 13, 14, -15, 16];

    #[test]
    fn max_pool_2x2_stride_2() {
        // Quadrants: max(1, 2, 5, 6) = 6, max(3, 4, 7, 8) = 8,
        // max(−9, −10, 13, 14) = 14, max(−11, −12, −15, 16) = 16.
        let p = params(1, 4, 4, 2, 2, 2);
        let mut y = [0i8; 4];
        max_pool_s8(&p, &IMG, &mut y);
        assert_eq!(y, [6, 8, 14, 16]);
    }

    #[test]
    fn max_pool_ignores_padding_even_when_all_negative() {
        // 1x2x2 input all negative, 2x2 kernel, stride 1, pad 1 top/left: out 2x2.
        // If padding counted as 0 (or as zp = 5), the max would be wrong.
        // Windows (rows −1..=0 / 0..=1 × cols −1..=0 / 0..=1):
        // y00 = x00 = −7; y01 = max(x00, x01) = −3; y10 = max(x00, x10) = −7;
        // y11 = max(all) = −3.
        let mut p = params(1, 2, 2, 2, 2, 2);
        p.stride_h = 1;
        p.stride_w = 1;
        p.pad_top = 1;
        p.pad_left = 1;
        p.zero_point = 5;
        let mut y = [0i8; 4];
        max_pool_s8(&p, &[-7, -3, -9, -8], &mut y);
        assert_eq!(y, [-7, -3, -7, -3]);
    }

    #[test]
    fn max_pool_empty_window_outputs_zero_point() {
        // 1x1x1 input, kernel 1, pad_left 2 -> out_w 3 with (stride 1) windows at
        // −2, −1 (padding only) and 0. Empty windows output zp = −4.
        let mut p = params(1, 1, 1, 1, 3, 1);
        p.pad_left = 2;
        p.zero_point = -4;
        let mut y = [0i8; 3];
        max_pool_s8(&p, &[-128], &mut y);
        assert_eq!(y, [-4, -4, -128]);
    }

    #[test]
    fn max_pool_dilated_multichannel() {
        // 2 channels of 1x5, kernel 2 dilation 3 stride 1 (1-D): taps o, o+3; out 2.
        // ch0 [1, 9, 2, 3, 0]: max(1, 3) = 3, max(9, 0) = 9
        // ch1 [0, 0, 0, 5, −1]: max(0, 5) = 5, max(0, −1) = 0
        let mut p = params(2, 1, 5, 1, 2, 2);
        p.kernel_h = 1;
        p.stride_h = 1;
        p.stride_w = 1;
        p.dilation_w = 3;
        let mut y = [0i8; 4];
        max_pool_s8(&p, &[1, 9, 2, 3, 0, 0, 0, 0, 5, -1], &mut y);
        assert_eq!(y, [3, 9, 5, 0]);
    }

    #[test]
    fn avg_pool_2x2_rounding() {
        // Quadrant sums: 1+2+5+6 = 14 -> 3.5 -> 4;  3+4+7+8 = 22 -> 5.5 -> 6;
        // −9−10+13+14 = 8 -> 2;  −11−12−15+16 = −22 -> −5.5 -> −6 (away from 0).
        let p = params(1, 4, 4, 2, 2, 2);
        let mut y = [0i8; 4];
        avg_pool_s8(&p, &IMG, &mut y);
        assert_eq!(y, [4, 6, 2, -6]);
    }

    #[test]
    fn avg_pool_zero_point() {
        // zp = 10: values − zp = [−1, 0, 2, 4] from x = [9, 10, 12, 14]; sum 5
        // /4 = 1.25 -> 1; y = 10 + 1 = 11. Global pooling of a 2x2 image.
        let mut p = params(1, 2, 2, 1, 1, 2);
        p.zero_point = 10;
        let mut y = [0i8; 1];
        avg_pool_s8(&p, &[9, 10, 12, 14], &mut y);
        assert_eq!(y, [11]);
    }

    #[test]
    fn avg_pool_count_include_pad() {
        // 1x1x3 input [4, 8, −6], kernel 3, stride 1, pad 1 (each side): out 3.
        // windows: [pad, 4, 8], [4, 8, −6], [8, −6, pad]
        // exclude pad: 12/2 = 6;  6/3 = 2;  2/2 = 1
        // include pad: 12/3 = 4;  6/3 = 2;  2/3 = 0.67 -> 1
        let mut p = params(1, 1, 3, 1, 3, 3);
        p.kernel_h = 1;
        p.stride_h = 1;
        p.stride_w = 1;
        p.pad_left = 1;
        let mut y = [0i8; 3];
        avg_pool_s8(&p, &[4, 8, -6], &mut y);
        assert_eq!(y, [6, 2, 1]);
        p.count_include_pad = true;
        avg_pool_s8(&p, &[4, 8, -6], &mut y);
        assert_eq!(y, [4, 2, 1]);
        // With zp = 2 the padded positions still add nothing (they stand for
        // real 0 = zp): x − zp = [2, 6, −8]; include pad: 8/3 = 2.67 -> 3 -> 5;
        // 0/3 = 0 -> 2;  −2/3 = −0.67 -> −1 -> 1
        p.zero_point = 2;
        avg_pool_s8(&p, &[4, 8, -6], &mut y);
        assert_eq!(y, [5, 2, 1]);
    }

    #[test]
    fn avg_pool_2d_padding_corner() {
        // 1x2x2 input [[8, 4], [2, −2]], kernel 2, stride 1, pad 1 top/left: out 2x2.
        // y00 window covers only x00: exclude 8/1 = 8, include 8/4 = 2
        // y01 covers x00, x01: 12/2 = 6, 12/4 = 3
        // y10 covers x00, x10: 10/2 = 5, 10/4 = 2.5 -> 3
        // y11 covers all: 12/4 = 3, 3
        let mut p = params(1, 2, 2, 2, 2, 2);
        p.stride_h = 1;
        p.stride_w = 1;
        p.pad_top = 1;
        p.pad_left = 1;
        let mut y = [0i8; 4];
        avg_pool_s8(&p, &[8, 4, 2, -2], &mut y);
        assert_eq!(y, [8, 6, 5, 3]);
        p.count_include_pad = true;
        avg_pool_s8(&p, &[8, 4, 2, -2], &mut y);
        assert_eq!(y, [2, 3, 3, 3]);
    }

    #[test]
    fn avg_pool_empty_window_and_saturation() {
        // Window entirely in padding -> zp (both count modes).
        let mut p = params(1, 1, 1, 1, 2, 1);
        p.stride_w = 1;
        p.stride_h = 1;
        p.pad_left = 1;
        p.zero_point = -3;
        let mut y = [0i8; 2];
        avg_pool_s8(&p, &[9], &mut y);
        assert_eq!(y, [-3, 9]);
        p.count_include_pad = true;
        avg_pool_s8(&p, &[9], &mut y);
        assert_eq!(y, [-3, 9]);
        // The mean of in-range values stays in range, but zp + mean is still
        // clamped: zp −128, x = 127 -> mean(x − zp) = 255 -> −128 + 255 = 127.
        let mut p = params(1, 1, 2, 1, 1, 2);
        p.kernel_h = 1;
        p.zero_point = -128;
        let mut y = [0i8; 1];
        avg_pool_s8(&p, &[127, 127], &mut y);
        assert_eq!(y, [127]);
        avg_pool_s8(&p, &[-128, -128], &mut y);
        assert_eq!(y, [-128]);
    }

    #[test]
    fn precondition_failures_leave_output_untouched() {
        let p = params(1, 2, 2, 1, 1, 2);
        let mut y = [77i8; 1];
        let mut q = p;
        q.zero_point = 128;
        max_pool_s8(&q, &[1; 4], &mut y);
        avg_pool_s8(&q, &[1; 4], &mut y);
        assert_eq!(y, [77]);
        q = p;
        q.dilation_w = 0;
        max_pool_s8(&q, &[1; 4], &mut y);
        avg_pool_s8(&q, &[1; 4], &mut y);
        assert_eq!(y, [77]);
        max_pool_s8(&p, &[1; 3], &mut y);
        avg_pool_s8(&p, &[1; 3], &mut y);
        assert_eq!(y, [77]);
        // A window of more than 2^23 positions is refused by avg, not max.
        q = p;
        q.kernel_h = 1 << 12;
        q.kernel_w = (1 << 11) + 1;
        avg_pool_s8(&q, &[1; 4], &mut y);
        assert_eq!(y, [77]);
        avg_pool_s8(&p, &[1; 4], &mut y);
        assert_eq!(y, [1]);
    }
}
