//! Depthwise convolution (`groups == in_channels == out_channels`): one
//! `kH × kW` filter per channel, any stride, dilation and pads.
//!
//! Per channel, the padded plane is staged once in `i16` (`x − zp`, pads 0),
//! split by the W stride into phases so that tap `kx` of consecutive output
//! positions reads consecutive lanes. Output row `oy` then starts
//! `stride_h · stride_w · phase_len` staged elements after row `oy − 1`, so
//! every output row is one stretch of a single "flat" row over the staged
//! plane: it runs 16 positions at a time (one load and `smlal` by the tap's
//! weight per tap) straight across row ends, and only the valid columns are
//! kept. Narrow planes (a 5-wide image) then fill whole vectors.

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::conv::store_prefix;
use super::requant::{Output, Requant};
use super::{act_ok, axis_ok, filled_prefix, zero_point_ok};
use crate::kernels::{reference, ConvParams};

/// Staged `i16` elements of one channel's padded plane, and `i8` flat outputs.
const MAX_STAGED: usize = 8192;
/// Most taps per filter.
const MAX_TAPS: usize = 64;
/// Output positions of one pass (four vectors of sums).
const PASS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Plane {
    /// Elements of one phase row: output columns plus the furthest tap.
    phase_len: usize,
    /// Staged elements per padded row (`stride_w` phase rows).
    row_len: usize,
    /// Padded rows the windows reach.
    rows: usize,
    /// Flat positions between consecutive output rows.
    out_stride: usize,
    /// Flat positions computed (the last output row ends the stretch).
    flat: usize,
    /// Elements staged per channel, with room for a pass past the end.
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
        if p.kernel_h
            .checked_mul(p.kernel_w)
            .is_none_or(|t| t > MAX_TAPS)
        {
            return Err("filter with more than 64 taps");
        }
        if p.stride_w > MAX_PHASES {
            return Err("W stride above 8");
        }
        // `axis_ok` bounds the furthest tap, so the products cannot overflow;
        // the sums are checked against the buffer.
        let reach_w = (p.kernel_w - 1) * p.dilation_w / p.stride_w;
        let reach_h = (p.kernel_h - 1) * p.dilation_h;
        let phase_len = p.out_w.checked_add(reach_w).ok_or(TOO_BIG)?;
        let row_len = phase_len.checked_mul(p.stride_w).ok_or(TOO_BIG)?;
        let rows = ((p.out_h - 1) * p.stride_h)
            .checked_add(reach_h + 1)
            .ok_or(TOO_BIG)?;
        let out_stride = row_len.checked_mul(p.stride_h).ok_or(TOO_BIG)?;
        let flat = (p.out_h - 1)
            .checked_mul(out_stride)
            .and_then(|n| n.checked_add(p.out_w))
            .ok_or(TOO_BIG)?;
        // The last pass reads up to PASS − 1 positions past `flat`, from the
        // furthest tap (at most `reach_h` rows and a row further on).
        let len = rows
            .checked_mul(row_len)
            .and_then(|n| n.checked_add(row_len + PASS))
            .filter(|&n| n <= MAX_STAGED && flat + PASS <= MAX_STAGED)
            .ok_or(TOO_BIG)?;
        Ok(Plane {
            phase_len,
            row_len,
            rows,
            out_stride,
            flat,
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
    let mut staged_buf = MaybeUninit::uninit();
    let staged = filled_prefix::<i16, MAX_STAGED>(&mut staged_buf, plane.len, 0);
    let mut flat_buf = MaybeUninit::uninit();
    let flat = filled_prefix::<i8, MAX_STAGED>(&mut flat_buf, plane.flat + PASS, 0);
    let taps = p.kernel_h * p.kernel_w;
    let offsets = tap_offsets(p, plane);
    let phases = PhaseRows::new(p);
    let out = Output::new(p.output_zero_point, p.act_min, p.act_max);
    let per_channel = input
        .chunks_exact(p.in_h * p.in_w)
        .zip(weights.chunks_exact(taps));
    for (c, (x, w)) in per_channel.enumerate() {
        stage_plane(p, plane, &phases, x, staged);
        let mut wv = [0i16; MAX_TAPS];
        for (d, &s) in wv.iter_mut().zip(w) {
            *d = i16::from(s);
        }
        let b = q.bias.get(c).copied().unwrap_or(0);
        let m = q.multiplier.get(c).copied().unwrap_or(0);
        let rq = Requant::splat(m, q.shift.get(c).copied().unwrap_or(0));
        let filter = Filter {
            offsets: &offsets,
            weights: &wv,
            bias: b,
        };
        // SAFETY: every pass from a position below `plane.flat` reads
        // inside `staged` from every tap (`Plane::new` sized it so).
        unsafe {
            match taps {
                9 => filter.run::<9>(staged, plane.flat, rq, out, flat),
                3 => filter.run::<3>(staged, plane.flat, rq, out, flat),
                5 => filter.run::<5>(staged, plane.flat, rq, out, flat),
                _ => filter.run_any(taps, staged, plane.flat, rq, out, flat),
            }
        }
        let first = c * p.out_h * p.out_w;
        keep_rows(flat, plane.out_stride, p.out_w, p.out_h, first, output);
    }
}

/// Copies the valid columns of each output row from the flat results into
/// `output` from `first`. Rows run in order, so a row may be stored as 16
/// bytes whose end the next rows (or channels) overwrite afterwards; only
/// the output's last bytes are stored exactly.
#[inline]
#[target_feature(enable = "neon")]
fn keep_rows(
    flat: &[i8],
    out_stride: usize,
    out_w: usize,
    out_h: usize,
    first: usize,
    output: &mut [i8],
) {
    for oy in 0..out_h {
        for x0 in (0..out_w).step_by(PASS) {
            let (from, to) = (oy * out_stride + x0, first + oy * out_w + x0);
            let Some(src) = flat.get(from..from + PASS) else {
                return;
            };
            // SAFETY: `src` is 16 readable bytes.
            let v = unsafe { vld1q_s8(src.as_ptr()) };
            let n = PASS.min(out_w - x0);
            let len = output.len();
            let dst = output.get_mut(to..(to + PASS).min(len)).unwrap_or(&mut []);
            if dst.len() == PASS {
                // SAFETY: `dst` is 16 writable bytes.
                unsafe { vst1q_s8(dst.as_mut_ptr(), v) };
            } else {
                store_prefix(v, dst.get_mut(..n).unwrap_or(&mut []));
            }
        }
    }
}

/// One channel's filter over the flat positions.
struct Filter<'a> {
    offsets: &'a [usize; MAX_TAPS],
    weights: &'a [i16; MAX_TAPS],
    bias: i32,
}

impl Filter<'_> {
    /// All passes with `TAPS` taps (unrolled), into `flat`.
    ///
    /// # Safety
    /// For every pass start `f < flat_len` and tap `t < TAPS`, `staged` holds
    /// `f + offsets[t] + 16` elements.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn run<const TAPS: usize>(
        &self,
        staged: &[i16],
        flat_len: usize,
        rq: Requant,
        out: Output,
        flat: &mut [i8],
    ) {
        let mut offs = [0usize; TAPS];
        let mut ws = [0i16; TAPS];
        offs.copy_from_slice(&self.offsets[..TAPS]);
        ws.copy_from_slice(&self.weights[..TAPS]);
        let base = staged.as_ptr();
        for (f0, dst) in (0..flat_len).step_by(PASS).zip(flat.chunks_exact_mut(PASS)) {
            let mut acc = [vdupq_n_s32(self.bias); 4];
            for (&o, &w) in offs.iter().zip(&ws) {
                // SAFETY: the caller guarantees 16 elements at `f0 + o`.
                let (x0, x1) = unsafe {
                    let x = base.add(f0 + o);
                    (vld1q_s16(x), vld1q_s16(x.add(8)))
                };
                acc[0] = vmlal_n_s16(acc[0], vget_low_s16(x0), w);
                acc[1] = vmlal_high_n_s16(acc[1], x0, w);
                acc[2] = vmlal_n_s16(acc[2], vget_low_s16(x1), w);
                acc[3] = vmlal_high_n_s16(acc[3], x1, w);
            }
            store_prefix(out.finish16(acc.map(|a| rq.apply(a))), dst);
        }
    }

    /// [`Filter::run`] for any tap count (at most `MAX_TAPS`).
    ///
    /// # Safety
    /// As for [`Filter::run`] with `TAPS = taps`.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn run_any(
        &self,
        taps: usize,
        staged: &[i16],
        flat_len: usize,
        rq: Requant,
        out: Output,
        flat: &mut [i8],
    ) {
        let base = staged.as_ptr();
        for (f0, dst) in (0..flat_len).step_by(PASS).zip(flat.chunks_exact_mut(PASS)) {
            let mut acc = [vdupq_n_s32(self.bias); 4];
            for (&o, &w) in self.offsets.iter().zip(self.weights).take(taps) {
                // SAFETY: the caller guarantees 16 elements at `f0 + o`.
                let (x0, x1) = unsafe {
                    let x = base.add(f0 + o);
                    (vld1q_s16(x), vld1q_s16(x.add(8)))
                };
                acc[0] = vmlal_n_s16(acc[0], vget_low_s16(x0), w);
                acc[1] = vmlal_high_n_s16(acc[1], x0, w);
                acc[2] = vmlal_n_s16(acc[2], vget_low_s16(x1), w);
                acc[3] = vmlal_high_n_s16(acc[3], x1, w);
            }
            store_prefix(out.finish16(acc.map(|a| rq.apply(a))), dst);
        }
    }
}

/// Flat offset of each tap `(ky, kx)` from its output position.
fn tap_offsets(p: &ConvParams, plane: Plane) -> [usize; MAX_TAPS] {
    let mut offsets = [0usize; MAX_TAPS];
    let taps = (0..p.kernel_h).flat_map(|ky| (0..p.kernel_w).map(move |kx| (ky, kx)));
    for (o, (ky, kx)) in offsets.iter_mut().zip(taps) {
        let d = kx * p.dilation_w;
        let phase = (d % p.stride_w) * plane.phase_len;
        *o = ky * p.dilation_h * plane.row_len + phase + d / p.stride_w;
    }
    offsets
}

/// Per W phase `r` (at most [`MAX_PHASES`]): the staged elements `lo..hi`
/// that hold input columns, the first being column `first`.
struct PhaseRows {
    lo: [usize; MAX_PHASES],
    hi: [usize; MAX_PHASES],
    first: [usize; MAX_PHASES],
}

/// Most W phases (the W stride) staged with precomputed bounds; wider
/// strides are refused.
const MAX_PHASES: usize = 8;

impl PhaseRows {
    fn new(p: &ConvParams) -> PhaseRows {
        let (sw, pl) = (p.stride_w, p.pad_left);
        let mut rows = PhaseRows {
            lo: [0; MAX_PHASES],
            hi: [0; MAX_PHASES],
            first: [0; MAX_PHASES],
        };
        let phase_len = p.out_w + (p.kernel_w - 1) * p.dilation_w / sw;
        for r in 0..sw.min(MAX_PHASES) {
            // Padded column t·sw + r is input column t·sw + r − pad_left.
            let lo = if r >= pl { 0 } else { (pl - r).div_ceil(sw) }.min(phase_len);
            let end = p.in_w + pl;
            let hi = if r >= end { 0 } else { (end - r).div_ceil(sw) }.clamp(lo, phase_len);
            rows.lo[r] = lo;
            rows.hi[r] = hi;
            rows.first[r] = (lo * sw + r).saturating_sub(pl);
        }
        rows
    }
}

/// One channel's padded plane, `x − zp` in `i16` with 0 in the pads, as
/// `stride_w` phase rows per padded row (phase `r`, element `t` is padded
/// column `t·stride_w + r`).
#[inline]
#[target_feature(enable = "neon")]
fn stage_plane(p: &ConvParams, plane: Plane, phases: &PhaseRows, x: &[i8], staged: &mut [i16]) {
    let zero = vdupq_n_s16(0);
    for z in staged.chunks_exact_mut(8) {
        // SAFETY: `z` is 8 writable i16 (a vector store, not a `memset` call).
        unsafe { vst1q_s16(z.as_mut_ptr(), zero) };
    }
    let zp = p.input_zero_point as i8;
    let sw = p.stride_w;
    let rows = x
        .chunks_exact(p.in_w)
        .take(plane.rows.saturating_sub(p.pad_top));
    if sw == 1 {
        let first = (p.pad_top * plane.row_len + phases.lo[0], phases.first[0]);
        let n = phases.hi[0] - phases.lo[0];
        stage_rows_unit_stride(x, p.in_w, rows.len(), n, first, plane.row_len, zp, staged);
        return;
    }
    for (iy, src) in rows.enumerate() {
        let row = (iy + p.pad_top) * plane.row_len;
        for r in 0..sw.min(MAX_PHASES) {
            let at = row + r * plane.phase_len;
            let (lo, hi) = (at + phases.lo[r], at + phases.hi[r]);
            let dst = staged.get_mut(lo..hi).unwrap_or(&mut []);
            widen_strided(src.get(phases.first[r]..).unwrap_or(&[]), sw, zp, dst);
        }
    }
}

/// Stride-1 staging of `rows` input rows: `n` elements from input column
/// `first.1` of each row to staged element `first.0` (and `row_len` further
/// per row), 8 at a time. The lanes of a last partial group are written as
/// 0: they fall in the right pad, the next row's left pad (both 0), or the
/// next row's input columns, which are written after them.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "neon")]
fn stage_rows_unit_stride(
    x: &[i8],
    in_w: usize,
    rows: usize,
    n: usize,
    first: (usize, usize),
    row_len: usize,
    zp: i8,
    staged: &mut [i16],
) {
    let z = vdup_n_s8(zp);
    let lanes: [u16; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    // SAFETY: `lanes` holds eight u16.
    let lane = unsafe { vld1q_u16(lanes.as_ptr()) };
    let groups = n.div_ceil(8);
    // The last group keeps `n − 8·(groups − 1)` lanes.
    let last = vreinterpretq_s16_u16(vcltq_u16(lane, vdupq_n_u16((n + 8 - 8 * groups) as u16)));
    let all = vdupq_n_s16(-1);
    for iy in 0..rows {
        let (dst, src) = (first.0 + iy * row_len, first.1 + iy * in_w);
        let span = 8 * groups;
        match (x.get(src..src + span), staged.get_mut(dst..dst + span)) {
            (Some(s), Some(d)) => {
                for (g, (s, d)) in s.chunks_exact(8).zip(d.chunks_exact_mut(8)).enumerate() {
                    let keep = if g + 1 == groups { last } else { all };
                    // SAFETY: `s` is 8 readable bytes and `d` 8 writable i16.
                    unsafe {
                        let v = vsubl_s8(vld1_s8(s.as_ptr()), z);
                        vst1q_s16(d.as_mut_ptr(), vandq_s16(v, keep));
                    }
                }
            }
            // The plane's last row: element by element.
            _ => {
                let d = staged.get_mut(dst..dst + n).unwrap_or(&mut []);
                let s = x.get(src..).unwrap_or(&[]);
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = i16::from(s) - i16::from(zp);
                }
            }
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
