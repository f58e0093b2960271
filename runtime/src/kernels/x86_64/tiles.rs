//! The direct path on tiles of the output plane, for convolutions whose one
//! output row's band does not fit the band buffer: a 12-lead ECG at 500 Hz
//! has rows of 1000–5000 samples of 64 channels or more, which would
//! otherwise take the im2col GEMM at about half the speed.
//!
//! A tile is a block of output rows and columns, run as a convolution of
//! its own over a copy of the input it reads: the same kernel, strides and
//! dilations, with the padding that is left where the tile meets the edge
//! of the plane (none inside it). A tile of an axis's outputs `o0..o1`
//! reads padded positions `o0·s ..= (o1 − 1)·s + (k − 1)·d`, the same for
//! every tile of that width, so one band size holds for all of them. Each
//! output is the sum over the same products as the whole convolution's,
//! so the result is the reference's bit for bit.

use core::mem::MaybeUninit;

use super::band::widest;
use super::conv::{zeroed_prefix, Operands};
use super::direct::{direct_conv, DirectPlan, Packing};
use crate::kernels::reference;
use crate::kernels::ConvParams;

/// Bytes of the input copy of one tile (every input channel).
const IN_CAP: usize = 32 * 1024;
/// Bytes of the output of one tile for the channels of one call.
const OUT_CAP: usize = 32 * 1024;
/// Output channels a call takes at least, when there are that many: fewer
/// would widen the tile's band once for every few channels.
const MIN_CHANNELS: usize = 16;
/// Stack taken by the tile buffers (the direct path's own come on top).
pub(super) const SCRATCH_BYTES: usize = IN_CAP + OUT_CAP;

/// The inputs one axis's outputs `o0..o1` read: `len` from input index
/// `start`, after `pad` positions of padding (the rest past them is padding
/// too, as it is past the end of the whole input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    start: usize,
    len: usize,
    pad: usize,
}

/// One axis of the window geometry.
#[derive(Clone, Copy, Debug)]
struct Axis {
    stride: usize,
    /// `(k − 1)·d`, the furthest tap's offset.
    reach: usize,
    pad: usize,
    in_len: usize,
}

impl Axis {
    fn new(
        stride: usize,
        kernel: usize,
        dilation: usize,
        pad: usize,
        in_len: usize,
    ) -> Option<Axis> {
        Some(Axis {
            stride,
            reach: kernel.checked_sub(1)?.checked_mul(dilation)?,
            pad,
            in_len,
        })
    }

    /// Padded positions that `n` consecutive outputs read.
    fn window(&self, n: usize) -> Option<usize> {
        n.checked_sub(1)?
            .checked_mul(self.stride)?
            .checked_add(self.reach)?
            .checked_add(1)
    }

    /// What outputs `o0..o0 + n` read. Padded position `q` is input
    /// `q − pad`; the tile's own padded position `j` is the plane's
    /// `o0·s + j`, so its padding is what of `pad` lies at or past `o0·s`.
    fn part(&self, o0: usize, n: usize) -> Option<Part> {
        let first = o0.checked_mul(self.stride)?;
        let end = first.checked_add(self.window(n)?)?;
        let start = first.saturating_sub(self.pad).min(self.in_len);
        let stop = end.saturating_sub(self.pad).min(self.in_len);
        Some(Part {
            start,
            len: stop.saturating_sub(start),
            pad: self.pad.saturating_sub(first),
        })
    }
}

/// How a convolution runs in tiles: `rows × cols` outputs a tile, `channels`
/// output channels a call, over the H and W axes of its window geometry.
#[derive(Clone, Copy, Debug)]
pub(super) struct TiledPlan {
    h: Axis,
    w: Axis,
    rows: usize,
    cols: usize,
    channels: usize,
}

impl TiledPlan {
    /// `None` unless there is one group, the reduction fits the direct path
    /// and a tile of one output fits its buffers.
    pub(super) fn new<P: Packing>(p: &ConvParams) -> Option<TiledPlan> {
        if p.groups != 1 || p.out_h == 0 || p.out_w == 0 || p.out_channels == 0 {
            return None;
        }
        let (h, w) = axes(p)?;
        let min_channels = p.out_channels.min(MIN_CHANNELS);
        let input_fits = |rows: usize, cols: usize| {
            let bytes = h
                .window(rows)
                .zip(w.window(cols))
                .and_then(|(a, b)| a.checked_mul(b)?.checked_mul(p.in_channels));
            matches!(bytes, Some(b) if b <= IN_CAP)
        };
        let output_fits = |rows: usize, cols: usize| {
            matches!(rows.checked_mul(cols).and_then(|n| n.checked_mul(min_channels)),
                Some(b) if b <= OUT_CAP)
        };
        // The band of a tile's one output row depends on its width alone.
        let cols_fit = |cols: usize| {
            input_fits(1, cols)
                && output_fits(1, cols)
                && tile(p, (h, w), (0, 1), (0, cols))
                    .and_then(|(t, _, _)| DirectPlan::new::<P>(&t))
                    .is_some()
        };
        let cols = widest(p.out_w, cols_fit)?;
        let rows = widest(p.out_h, |rows| {
            input_fits(rows, cols) && output_fits(rows, cols)
        })?;
        Some(TiledPlan {
            h,
            w,
            rows,
            cols,
            channels: p.out_channels.min(OUT_CAP / (rows * cols)),
        })
    }
}

/// The H and W axes of `p`.
fn axes(p: &ConvParams) -> Option<(Axis, Axis)> {
    Some((
        Axis::new(p.stride_h, p.kernel_h, p.dilation_h, p.pad_top, p.in_h)?,
        Axis::new(p.stride_w, p.kernel_w, p.dilation_w, p.pad_left, p.in_w)?,
    ))
}

/// The convolution of output rows `oy0..oy0 + rows` and columns
/// `ox0..ox0 + cols` of `p` over the copy of the input it reads, with the
/// rows and columns of the input that copy holds.
fn tile(
    p: &ConvParams,
    (h, w): (Axis, Axis),
    (oy0, rows): (usize, usize),
    (ox0, cols): (usize, usize),
) -> Option<(ConvParams, Part, Part)> {
    let (hp, wp) = (h.part(oy0, rows)?, w.part(ox0, cols)?);
    let t = ConvParams {
        in_h: hp.len,
        in_w: wp.len,
        out_h: rows,
        out_w: cols,
        pad_top: hp.pad,
        pad_left: wp.pad,
        ..*p
    };
    Some((t, hp, wp))
}

/// The direct path over every tile of `p`. Preconditions hold, `output`
/// not empty, `plan` made for `p` and `P`. If a tile does not fit after all
/// (none can: the first tile of a row or column reads the most padding,
/// and the plan checked it), the reference runs the whole convolution.
///
/// # Safety
///
/// The CPU runs `P`'s instructions (see [`Packing`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn tiled_conv<P: Packing>(
    p: &ConvParams,
    plan: &TiledPlan,
    ops: &Operands<'_>,
    output: &mut [i8],
) {
    let mut in_buf = MaybeUninit::<[i8; IN_CAP]>::uninit();
    let mut out_buf = MaybeUninit::<[i8; OUT_CAP]>::uninit();
    let (cin, k) = (p.in_channels, p.in_channels * p.kernel_h * p.kernel_w);
    for oy0 in (0..p.out_h).step_by(plan.rows) {
        let rows = plan.rows.min(p.out_h - oy0);
        for ox0 in (0..p.out_w).step_by(plan.cols) {
            let cols = plan.cols.min(p.out_w - ox0);
            // A tile's band is at most as wide as the first tile's, which
            // the plan checked; the input copy fits for the same reason.
            let t = tile(p, (plan.h, plan.w), (oy0, rows), (ox0, cols));
            let Some(((t, hp, wp), t_plan)) =
                t.and_then(|t| Some((t, DirectPlan::new::<P>(&t.0)?)))
            else {
                let (b, m, s) = (ops.bias, ops.multiplier, ops.shift);
                reference::conv_s8(p, ops.input, ops.weights, b, m, s, output);
                return;
            };
            let x = zeroed_prefix(&mut in_buf, cin * hp.len * wp.len);
            // The tile's input, channel by channel and row by row (the
            // lengths hold by the preconditions).
            for (r, dst) in x.chunks_exact_mut(wp.len.max(1)).enumerate() {
                let (c, y) = (r / hp.len, r % hp.len);
                let at = (c * p.in_h + hp.start + y) * p.in_w + wp.start;
                if let Some(src) = ops.input.get(at..at + wp.len) {
                    dst.copy_from_slice(src);
                }
            }
            let plane = rows * cols;
            for oc0 in (0..p.out_channels).step_by(plan.channels) {
                let n = plan.channels.min(p.out_channels - oc0);
                let t = ConvParams {
                    out_channels: n,
                    ..t
                };
                let t_ops = Operands {
                    input: x,
                    weights: ops.weights.get(oc0 * k..(oc0 + n) * k).unwrap_or(&[]),
                    bias: ops.bias.get(oc0..oc0 + n).unwrap_or(&[]),
                    multiplier: ops.multiplier.get(oc0..oc0 + n).unwrap_or(&[]),
                    shift: ops.shift.get(oc0..oc0 + n).unwrap_or(&[]),
                };
                let y = zeroed_prefix(&mut out_buf, n * plane);
                // SAFETY: the CPU runs `P` (this function's contract).
                unsafe { direct_conv::<P>(&t, &t_plan, &t_ops, y) };
                for (r, src) in y.chunks_exact(cols).enumerate() {
                    let (c, oy) = (oc0 + r / rows, oy0 + r % rows);
                    let at = (c * p.out_h + oy) * p.out_w + ox0;
                    if let Some(dst) = output.get_mut(at..at + cols) {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output of an axis cut into tiles of `n` reads, through its
    /// tile's part, the inputs it reads in the whole axis.
    fn parts_agree(axis: Axis, outs: usize, n: usize) {
        let whole = |o: usize, tap: usize| {
            (o * axis.stride + tap)
                .checked_sub(axis.pad)
                .filter(|&i| i < axis.in_len)
        };
        for o0 in (0..outs).step_by(n) {
            let part = axis.part(o0, n.min(outs - o0)).expect("no overflow");
            for o in o0..(o0 + n).min(outs) {
                for tap in 0..=axis.reach {
                    let local = ((o - o0) * axis.stride + tap)
                        .checked_sub(part.pad)
                        .filter(|&j| j < part.len)
                        .map(|j| part.start + j);
                    assert_eq!(local, whole(o, tap), "output {o} tap {tap} of {axis:?}");
                }
            }
        }
    }

    #[test]
    fn a_tile_reads_what_its_outputs_read_in_the_whole_plane() {
        for stride in 1..=3 {
            for (kernel, dilation) in [(1, 1), (3, 1), (9, 1), (3, 4)] {
                for pad in [0, 1, 4, 12] {
                    for in_len in [1, 7, 40] {
                        let axis = Axis::new(stride, kernel, dilation, pad, in_len).unwrap();
                        let Some(outs) = (in_len + 2 * pad)
                            .checked_sub(axis.reach + 1)
                            .map(|n| n / stride + 1)
                        else {
                            continue;
                        };
                        for n in [1, 2, 5, outs] {
                            parts_agree(axis, outs, n);
                        }
                    }
                }
            }
        }
    }
}
