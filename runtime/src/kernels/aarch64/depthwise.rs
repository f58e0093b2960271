//! Depthwise convolution (`groups == in_channels == out_channels`): one
//! `kH × kW` filter per channel, any stride, dilation and pads.
//!
//! Per channel, the padded plane is staged once in `i16` (`x − zp`, pads 0)
//! and split by the W stride into phases, so that tap `kx` of consecutive
//! output positions reads consecutive lanes. Each output row is then 16 (or
//! 8) positions at a time: per tap one load and `smlal` by the tap's weight.

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::conv::store_prefix;
use super::requant::{Output, Requant};
use super::{act_ok, axis_ok, filled_prefix, zero_point_ok};
use crate::kernels::{reference, ConvParams};

/// Staged `i16` elements of one channel's padded plane.
const MAX_STAGED: usize = 8192;
/// Output positions of one pass (four vectors of sums).
const ROW_TILE: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Plane {
    /// Padded rows the windows reach.
    rows: usize,
    /// Elements of one phase row (every position a pass may load).
    phase_len: usize,
    /// Elements staged per channel.
    len: usize,
}

impl Plane {
    fn new(p: &ConvParams) -> Result<Plane, &'static str> {
        const TOO_BIG: &str = "padded input plane larger than the staging buffer";
        let channels = p.in_channels;
        if p.groups == 0 || p.groups != channels || p.out_channels != channels {
            return Err("not depthwise with one filter per channel");
        }
        zero_point_ok(p.input_zero_point, "input zero point outside int8")?;
        zero_point_ok(p.output_zero_point, "output zero point outside int8")?;
        if !act_ok(p.act_min, p.act_max) {
            return Err("activation clamp outside int8");
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
        if !h_ok || !w_ok || p.out_h == 0 || p.out_w == 0 || p.in_h == 0 || p.in_w == 0 {
            return Err("invalid window geometry");
        }
        // `axis_ok` bounds the furthest tap, so the products cannot overflow.
        let rows = ((p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h)
            .checked_add(1)
            .ok_or(TOO_BIG)?;
        let reach = (p.kernel_w - 1) * p.dilation_w / p.stride_w;
        let phase_len = p.out_w.checked_add(reach + ROW_TILE).ok_or(TOO_BIG)?;
        let len = [rows, p.stride_w, phase_len]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_STAGED)
            .ok_or(TOO_BIG)?;
        Ok(Plane {
            rows,
            phase_len,
            len,
        })
    }
}

/// Whether [`depthwise_conv_s8_neon`] runs `p` itself.
pub fn depthwise_conv_neon_takes(p: &ConvParams) -> Result<(), &'static str> {
    Plane::new(p).map(|_| ())
}

/// [`reference::conv_s8`] for depthwise convolutions, bit for bit, on NEON.
///
/// Same arguments, layout and preconditions; shapes
/// [`depthwise_conv_neon_takes`] refuses (including every non-depthwise
/// convolution), and wrong slice lengths, go to the reference kernel.
pub fn depthwise_conv_s8_neon(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let c = p.in_channels;
    let n = |a: usize, b: usize| c.checked_mul(a).and_then(|n| n.checked_mul(b));
    let lens_ok = [
        (n(p.in_h, p.in_w), input.len()),
        (n(p.kernel_h, p.kernel_w), weights.len()),
        (n(p.out_h, p.out_w), output.len()),
        (Some(c), bias.len()),
        (Some(c), multiplier.len()),
        (Some(c), shift.len()),
    ];
    match Plane::new(p) {
        Ok(plane) if lens_ok.iter().all(|&(want, got)| want == Some(got)) => {
            let q = Quant {
                bias,
                multiplier,
                shift,
            };
            // SAFETY: NEON is part of the aarch64 baseline.
            unsafe { depthwise(p, plane, input, weights, q, output) }
        }
        _ => reference::conv_s8(p, input, weights, bias, multiplier, shift, output),
    }
}

/// Per-channel bias and requantization.
#[derive(Clone, Copy)]
struct Quant<'a> {
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

#[target_feature(enable = "neon")]
fn depthwise(
    p: &ConvParams,
    plane: Plane,
    input: &[i8],
    weights: &[i8],
    q: Quant,
    output: &mut [i8],
) {
    let mut buf = MaybeUninit::uninit();
    let staged = filled_prefix::<i16, MAX_STAGED>(&mut buf, plane.len, 0);
    let taps = p.kernel_h * p.kernel_w;
    let out = Output::new(p.output_zero_point, p.act_min, p.act_max);
    let per_channel = input
        .chunks_exact(p.in_h * p.in_w)
        .zip(weights.chunks_exact(taps))
        .zip(output.chunks_exact_mut(p.out_h * p.out_w));
    for (c, ((x, w), y)) in per_channel.enumerate() {
        stage_plane(p, plane, x, staged);
        let b = q.bias.get(c).copied().unwrap_or(0);
        let rq = Requant::splat(
            q.multiplier.get(c).copied().unwrap_or(0),
            q.shift.get(c).copied().unwrap_or(0),
        );
        for (oy, y_row) in y.chunks_exact_mut(p.out_w).enumerate() {
            let rows = staged
                .get(oy * p.stride_h * p.stride_w * plane.phase_len..)
                .unwrap_or(&[]);
            let mut ox0 = 0;
            while ox0 < p.out_w {
                let n = (p.out_w - ox0).min(ROW_TILE);
                let dst = y_row.get_mut(ox0..ox0 + n).unwrap_or(&mut []);
                let taps = Window {
                    p,
                    plane,
                    rows,
                    w,
                    ox0,
                };
                let y = if n > 8 {
                    let acc = taps.sums::<4>(b);
                    out.finish16(acc.map(|a| rq.apply(a)))
                } else {
                    let [lo, hi] = taps.sums::<2>(b).map(|a| rq.apply(a));
                    let half = out.finish8(lo, hi);
                    vcombine_s8(half, half)
                };
                store_prefix(y, dst);
                ox0 += n;
            }
        }
    }
}

/// The taps of one pass: output positions `ox0..` of the row whose first
/// staged padded row begins `rows`.
struct Window<'a> {
    p: &'a ConvParams,
    plane: Plane,
    rows: &'a [i16],
    w: &'a [i8],
    ox0: usize,
}

impl Window<'_> {
    /// `bias + Σ_taps (x − zp) · w` for `4·V` positions.
    #[inline]
    #[target_feature(enable = "neon")]
    fn sums<const V: usize>(&self, bias: i32) -> [int32x4_t; V] {
        let p = self.p;
        let mut acc = [vdupq_n_s32(bias); V];
        let row_len = p.stride_w * self.plane.phase_len;
        let mut weights = self.w.iter();
        for ky in 0..p.kernel_h {
            let row = ky * p.dilation_h * row_len;
            for kx in 0..p.kernel_w {
                let w = i16::from(weights.next().copied().unwrap_or(0));
                let d = kx * p.dilation_w;
                let at = row + (d % p.stride_w) * self.plane.phase_len + d / p.stride_w + self.ox0;
                // `phase_len` leaves room for a whole pass after any tap.
                let Some(x) = self.rows.get(at..at + 4 * V) else {
                    continue;
                };
                for (i, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: `x` holds `4·V` elements.
                    let v = unsafe { vld1_s16(x.as_ptr().add(4 * i)) };
                    *acc = vmlal_n_s16(*acc, v, w);
                }
            }
        }
        acc
    }
}

/// One channel's padded plane, `x − zp` in `i16` with 0 in the pads, as
/// `stride_w` phase rows per padded row (phase `r`, element `t` is padded
/// column `t·stride_w + r`).
#[inline]
#[target_feature(enable = "neon")]
fn stage_plane(p: &ConvParams, plane: Plane, x: &[i8], staged: &mut [i16]) {
    let zp = p.input_zero_point as i8;
    let sw = p.stride_w;
    let mut phases = staged.chunks_exact_mut(plane.phase_len);
    for py in 0..plane.rows {
        let iy = py.checked_sub(p.pad_top).filter(|&iy| iy < p.in_h);
        let src = iy.and_then(|iy| x.get(iy * p.in_w..(iy + 1) * p.in_w));
        for r in 0..sw {
            let Some(dst) = phases.next() else { return };
            let Some(src) = src else {
                dst.fill(0);
                continue;
            };
            // Padded column t·sw + r is input column t·sw + r − pad_left.
            let lo = if r >= p.pad_left {
                0
            } else {
                (p.pad_left - r).div_ceil(sw)
            }
            .min(dst.len());
            let end = p.in_w + p.pad_left;
            let hi = if r >= end { 0 } else { (end - r).div_ceil(sw) }.clamp(lo, dst.len());
            let (head, rest) = dst.split_at_mut(lo);
            let (mid, tail) = rest.split_at_mut(hi - lo);
            head.fill(0);
            tail.fill(0);
            let first = (lo * sw + r).saturating_sub(p.pad_left);
            widen_strided(src.get(first..).unwrap_or(&[]), sw, zp, mid);
        }
    }
}

/// `dst[i] = src[i·stride] − zp` for every `i` with a source element.
#[inline]
#[target_feature(enable = "neon")]
fn widen_strided(src: &[i8], stride: usize, zp: i8, dst: &mut [i16]) {
    let mut done = 0;
    if stride == 1 {
        let z = vdup_n_s8(zp);
        for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
            // SAFETY: `s` is 8 readable bytes and `d` 8 writable i16.
            unsafe { vst1q_s16(d.as_mut_ptr(), vsubl_s8(vld1_s8(s.as_ptr()), z)) };
            done += 8;
        }
    }
    let src = src.get(done * stride..).unwrap_or(&[]);
    let dst = dst.get_mut(done..).unwrap_or(&mut []);
    for (d, &x) in dst.iter_mut().zip(src.iter().step_by(stride.max(1))) {
        *d = i16::from(x) - i16::from(zp);
    }
}
