//! Convolution: im2col into `i16` columns, then one weight row against four
//! columns (output positions) per pass; or, for one input channel per group,
//! tap pairs slid along a widened input row.

use super::dsp::{self, smlad, splat16};
#[cfg(feature = "conv-long-reductions")]
use super::fully_connected::accumulate_rows;
use super::{
    conv_lens_ok, conv_shape_ok, run_block, widen_into, widen_padded, zeroed_prefix, zp_byte,
    Epilogue, Operands, Requant, Taps,
};
use super::{COL_WORDS, MAX_GROUPS_X2, MAX_GROUPS_X4, MAX_REDUCTION, SCRATCH_WORDS};
use crate::kernels::{reference, ConvParams};
use core::mem::MaybeUninit;

/// [`reference::conv_s8`], bit for bit, on the DSP extension.
///
/// Same arguments, layout and preconditions. For each group, four output
/// positions at a time, the windows are gathered (padding as the input zero
/// point) and widened to `x − zp` in `i16`; then every output channel of the
/// group runs its weight row over the four columns, 4 taps per `SXTB16`
/// pair and 2 per `SMLAD`. The 1-D case is `H = 1`.
///
/// With one input channel per group (depthwise, or a single-channel input)
/// and `kH = 1`, `kW ≤ 8`, no W dilation, the reduction is too short for
/// columns to pay off; then each input row is widened once and every output
/// is a few `SMLAD`s over pairs of adjacent lanes.
///
/// With the `conv-long-reductions` feature (~1.2 KB of flash, which the ECG
/// firmware leaves out), a reduction `C_in/groups · kH · kW` too long for
/// two columns (over 320) runs one output position at a time, as a fully
/// connected layer over its window, a chunk of whole input channels at a
/// time: then any reduction is taken. Without it, reductions over
/// [`MAX_REDUCTION`](super::MAX_REDUCTION) (640) take the reference.
///
/// Falls back to the reference kernel (which returns early on a failed
/// precondition) unless the preconditions hold and [`conv_dsp_takes`]
/// accepts `p`: the input zero point in `i8`, at most
/// [`MAX_REDUCTION`](super::MAX_REDUCTION) taps per input channel, and not one
/// input channel per group over several kernel rows (depthwise 2-D, where
/// columns of a few taps are slower than the reference;
/// [`depthwise_conv_s8_dsp`](super::depthwise_conv_s8_dsp) takes those).
#[inline(never)]
pub fn conv_s8_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let io = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    let Some(g) = Geometry::new(p, &io, output) else {
        reference::conv_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    };
    // Where only one column fits, four weight rows sharing each column load
    // beat one column sharing each weight load (1.8 against 2.2
    // instructions a MAC on the M4 at K = 544).
    #[cfg(feature = "conv-long-reductions")]
    if g.groups4 > MAX_GROUPS_X2 {
        conv_long(p, &g, io, output);
        return;
    }
    let mut col_buf = MaybeUninit::<[u32; COL_WORDS]>::uninit();
    if let Some(rows) = g.row_path(p) {
        let col = zeroed_prefix(&mut col_buf, rows.span.div_ceil(2));
        conv_rows(p, &g, io, output, rows, col);
        return;
    }
    let widest = if g.groups4 <= MAX_GROUPS_X4 {
        4
    } else if g.groups4 <= MAX_GROUPS_X2 {
        2
    } else {
        1
    };
    let col = zeroed_prefix(&mut col_buf, widest * 2 * g.groups4);
    // Staging needs `k + 8` bytes, a block's sums 4 words per channel.
    let mut scratch_buf = MaybeUninit::<[u32; SCRATCH_WORDS]>::uninit();
    let scratch = zeroed_prefix(&mut scratch_buf, (g.k + 8).div_ceil(4).max(4 * g.cout_g));
    let mut ep = Epilogue {
        zp: p.output_zero_point,
        act_min: p.act_min,
        act_max: p.act_max,
        oc_stride: g.out_plane,
        col_stride: 1,
        valid: 4,
    };
    let per_group = output
        .chunks_exact_mut(g.cout_g * g.out_plane)
        .zip(bias.chunks_exact(g.cout_g))
        .zip(multiplier.chunks_exact(g.cout_g))
        .zip(shift.chunks_exact(g.cout_g))
        .enumerate();
    for (grp, (((out_group, b), m), s)) in per_group {
        let in_group = input.get(grp * g.cin_g * g.in_plane..).unwrap_or(&[]);
        // From the group's first weight row to the end of the tensor.
        let w_group = weights.get(grp * g.cout_g * g.k..).unwrap_or(&[]);
        let mut pos = 0;
        while pos < g.out_plane {
            let left = g.out_plane - pos;
            let nc = block_width(left, widest);
            ep.valid = left.min(nc);
            g.build_columns(p, in_group, pos, ep.valid, nc, col, scratch);
            let (k, g4, q) = (g.k, g.groups4, (b, m, s));
            match nc {
                4 => run_block::<4>(col, w_group, k, g4, q, &ep, out_group, pos, scratch),
                2 => run_block::<2>(col, w_group, k, g4, q, &ep, out_group, pos, scratch),
                _ => run_block::<1>(col, w_group, k, g4, q, &ep, out_group, pos, scratch),
            }
            pos += ep.valid;
        }
    }
}

/// `Ok` when [`conv_s8_dsp`] computes `p` itself (given operands of the
/// lengths `p` implies); otherwise why not. Depthwise shapes with several
/// kernel rows are [`depthwise_conv_s8_dsp`](super::depthwise_conv_s8_dsp)'s
/// (see [`depthwise_conv_dsp_takes`](super::depthwise_conv_dsp_takes)).
pub fn conv_dsp_takes(p: &ConvParams) -> Result<(), &'static str> {
    if !dsp::USES_DSP_INSTRUCTIONS {
        return Err(why!("no Arm DSP extension"));
    }
    Geometry::of(p).map(|_| ())
}

/// [`conv_s8_dsp`] for a reduction too long for two columns (over 320; 64
/// channels of a 17-tap 1-D kernel: 1088): each output position is a fully
/// connected layer over its window. The window is staged and widened a
/// chunk of whole input channels (at most [`MAX_REDUCTION`] values) at a
/// time, and each chunk runs four weight rows against the column
/// ([`accumulate_rows`]) into the sums of as many output channels as the
/// sums buffer holds. Each weight is loaded once per position, where the
/// short path shares it between four.
#[cfg(feature = "conv-long-reductions")]
#[inline(never)]
fn conv_long(p: &ConvParams, g: &Geometry, io: Operands<'_>, output: &mut [i8]) {
    let taps = p.kernel_h * p.kernel_w;
    let chans = (MAX_REDUCTION / taps.max(1)).max(1);
    let mut col_buf = MaybeUninit::<[u32; COL_WORDS]>::uninit();
    let col = zeroed_prefix(&mut col_buf, COL_WORDS);
    let mut stage_buf = MaybeUninit::<[u32; SCRATCH_WORDS]>::uninit();
    let stage = zeroed_prefix(&mut stage_buf, SCRATCH_WORDS);
    let mut sums_buf = MaybeUninit::<[u32; SCRATCH_WORDS]>::uninit();
    let block = SCRATCH_WORDS / 4 * 4;
    let sums = zeroed_prefix(&mut sums_buf, block);
    let Ok(sums) = bytemuck::try_cast_slice_mut::<u32, i32>(sums) else {
        return;
    };
    let per_group = output
        .chunks_exact_mut(g.cout_g * g.out_plane)
        .zip(io.weights.chunks_exact(g.cout_g * g.k))
        .enumerate();
    for (grp, (out_group, w_group)) in per_group {
        let in_group = io.input.get(grp * g.cin_g * g.in_plane..).unwrap_or(&[]);
        let oc0 = grp * g.cout_g;
        for pos in 0..g.out_plane {
            let mut n0 = 0;
            while n0 < g.cout_g {
                let n = block.min(g.cout_g - n0);
                let sums = sums.get_mut(..n).unwrap_or(&mut []);
                for (acc, &b) in sums.iter_mut().zip(io.bias.get(oc0 + n0..).unwrap_or(&[])) {
                    *acc = b;
                }
                let mut c0 = 0;
                while c0 < g.cin_g {
                    let cc = chans.min(g.cin_g - c0);
                    let part = Geometry {
                        cin_g: cc,
                        k: cc * taps,
                        groups4: (cc * taps).div_ceil(4),
                        ..*g
                    };
                    let x = in_group.get(c0 * g.in_plane..).unwrap_or(&[]);
                    part.build_columns(p, x, pos, 1, 1, col, stage);
                    let w = w_group.get(n0 * g.k + c0 * taps..).unwrap_or(&[]);
                    accumulate_rows(w, g.k, (part.k, part.groups4), col, sums);
                    c0 += cc;
                }
                let quant = io.multiplier.iter().zip(io.shift).skip(oc0 + n0);
                for (j, (&acc, (&m, &s))) in sums.iter().zip(quant).enumerate() {
                    if let Some(y) = out_group.get_mut((n0 + j) * g.out_plane + pos) {
                        let rq = Requant::new(m, i32::from(s));
                        *y = rq.apply(acc, p.output_zero_point, p.act_min, p.act_max);
                    }
                }
                n0 += n;
            }
        }
    }
}

/// Columns per block with `left` positions to go: as many as the buffer
/// allows, except that 3 run as 4 (one discarded, cheaper than 2 + 1) and
/// 2 or 1 as themselves.
pub(super) fn block_width(left: usize, widest: usize) -> usize {
    match left {
        0 | 1 => 1,
        2 => widest.min(2),
        _ => widest,
    }
}

/// Derived sizes, valid once [`Geometry::new`] has checked the call.
#[derive(Clone, Copy)]
struct Geometry {
    cin_g: usize,
    cout_g: usize,
    in_plane: usize,
    out_plane: usize,
    /// Reduction length `cin_g · kH · kW` (≥ 1).
    k: usize,
    /// `ceil(k / 4)`.
    groups4: usize,
    zp: i8,
    offset: u32,
}

/// Tap pairs per kernel row on the single-channel path: `ceil(kW/2)`, at
/// least 2 (a kernel of 1 or 2 taps runs with a zero pair, which saves a
/// specialization), at most 4.
pub(super) fn row_pairs(kernel_w: usize) -> usize {
    kernel_w.div_ceil(2).max(2)
}
pub(super) const ROW_MAX_PAIRS: usize = 4;

/// How [`conv_rows`] runs: `span` lanes per widened row; `passes` when
/// the stride is 1 and `kW <= 7`, so [`dsp::row_passes`] can do the rows.
#[derive(Clone, Copy)]
struct RowPath {
    span: usize,
    passes: bool,
}

/// The single-channel path: one input channel per group (depthwise, or a
/// 1-channel input such as a raw ECG lead), `kH = 1`, no dilation along W,
/// `kW ≤ 8`. There the im2col columns would be as long as the reduction is
/// short; instead each input row is widened once into a zero-padded `i16`
/// row, and every output is `bias + Σ_j SMLAD(w pair j, lanes o·stride + 2j,
/// +1)`, the pair of lanes being one word.
///
/// With stride 1 and `kW ≤ 7`, a channel whose requantization allows it
/// (see [`pass_consts`]) runs as [`dsp::row_passes`]: two passes over the row's
/// aligned words: the even outputs `2m` with tap pairs `(w0, w1), (w2, w3),
/// (w4, w5), (w6, 0)` against words `m..m+4`, the odd ones `2m + 1` with
/// `(0, w0), (w1, w2), (w3, w4), (w5, w6)` against the same words.
fn conv_rows(
    p: &ConvParams,
    g: &Geometry,
    io: Operands<'_>,
    output: &mut [i8],
    rows: RowPath,
    col: &mut [u32],
) {
    let Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    } = io;
    let kw = p.kernel_w;
    let full_range = p.act_min == -128 && p.act_max == 127;
    let passes = rows.passes && full_range && (-128..=127).contains(&p.output_zero_point);
    // One input channel per group: group `chan` reads input channel `chan`.
    // Each of its rows is widened once, then run by every output channel
    // of the group.
    let per_group = weights
        .chunks_exact(g.cout_g * kw)
        .zip(bias.chunks_exact(g.cout_g))
        .zip(multiplier.chunks_exact(g.cout_g))
        .zip(shift.chunks_exact(g.cout_g))
        .zip(output.chunks_exact_mut(g.cout_g * g.out_plane))
        .enumerate();
    for (chan, ((((w_g, b_g), m_g), s_g), out_g)) in per_group {
        for oy in 0..p.out_h {
            widen_row(p, g, input, chan, oy, col, rows.span);
            let per_oc = w_g
                .chunks_exact(kw)
                .zip(b_g.iter().zip(m_g).zip(s_g))
                .zip(out_g.chunks_exact_mut(g.out_plane));
            for ((w, ((&b, &m), &s)), out_oc) in per_oc {
                let at = oy * p.out_w;
                let Some(out_row) = out_oc.get_mut(at..at + p.out_w) else {
                    return;
                };
                let rq = Requant::new(m, i32::from(s));
                if passes {
                    if let Some(c) = pass_consts(w, b, rq, p.output_zero_point, p.out_w) {
                        dsp::row_passes(&c, col, out_row);
                        continue;
                    }
                }
                let row = RowOut {
                    bias: b,
                    rq,
                    zp: p.output_zero_point,
                    act_min: p.act_min,
                    act_max: p.act_max,
                };
                row_out(p, &row, w, col, rows.span, out_row);
            }
        }
    }
}

/// One output row on the [`row_dot`] path: the tap pairs `(w[2j],
/// w[2j+1])` as `i16` lanes (missing taps 0) against the lanes of `col`.
fn row_out(p: &ConvParams, row: &RowOut, w: &[i8], col: &[u32], span: usize, out_row: &mut [i8]) {
    let mut pairs = [0u32; ROW_MAX_PAIRS];
    for (pair, w2) in pairs.iter_mut().zip(w.chunks(2)) {
        let lo = w2.first().map_or(0, |&v| i32::from(v));
        let hi = w2.get(1).map_or(0, |&v| i32::from(v));
        *pair = (lo as u32 & 0xffff) | ((hi as u32) << 16);
    }
    let Ok(lanes) = bytemuck::try_cast_slice::<u32, i16>(col) else {
        return;
    };
    let lanes = lanes.get(..span).unwrap_or(&[]);
    let st = p.stride_w;
    match row_pairs(p.kernel_w) {
        2 => row_dot::<2>(lanes, st, &pairs, row, out_row),
        3 => row_dot::<3>(lanes, st, &pairs, row, out_row),
        _ => row_dot::<4>(lanes, st, &pairs, row, out_row),
    }
}

/// The even- and odd-output constants of [`dsp::row_passes`] for one output
/// channel (taps `w`, at most 7), when its requantization has the
/// [`Folded`](super::Folded) form; the caller checks that there is no
/// clamp narrower than `i8` (see [`RowPath`]), which `SSAT #8` then does.
fn pass_consts(w: &[i8], bias: i32, rq: Requant, zp: i32, n: usize) -> Option<dsp::RowConsts> {
    let f = rq.folded(zp)?;
    // The taps, zero-padded to 7, widened two to a word: the even outputs'
    // pairs are (t0, t1) … (t4, t5), (t6, 0), the odd ones' (0, t0) …
    // (t5, t6). From taps t0..t4 and t3..t7 as two (overlapping) words:
    // with all 7 taps, two unaligned word loads.
    let (lo, hi) = match (load_word(w, 0), load_word(w, 3)) {
        (Some(lo), Some(hi)) if w.len() == 7 => (lo, hi),
        _ => {
            let t = |i: usize| w.get(i).copied().unwrap_or(0);
            let lo = dsp::word([t(0), t(1), t(2), t(3)]);
            (lo, dsp::word([t(3), t(4), t(5), t(6)]))
        }
    };
    let [e0, e1] = dsp::widen_word(lo);
    let [o2, o3] = dsp::widen_word(hi);
    Some(dsp::RowConsts::new(
        [e0, e1, (o2 >> 16) | (o3 << 16), o3 >> 16],
        [e0 << 16, (e0 >> 16) | (e1 << 16), o2, o3],
        bias,
        f.multiplier,
        f.round,
        f.hs,
        n,
    ))
}

/// Bytes `at..at + 4` of `w` as a little-endian word (one load).
#[inline(always)]
fn load_word(w: &[i8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytemuck::cast_slice::<i8, u8>(w)
        .get(at..at + 4)?
        .try_into()
        .ok()?;
    Some(u32::from_le_bytes(b))
}

/// What [`row_dot`] adds to and does with its sums.
struct RowOut {
    bias: i32,
    rq: Requant,
    zp: i32,
    act_min: i32,
    act_max: i32,
}

/// `out[o] = requantize(bias + Σ_{j<J} SMLAD(pairs[j], lanes o·stride + 2j,
/// +1))`, clamped to the activation window. Out of line, so the pairs and
/// the requantization stay in registers. (The common case, stride 1 without
/// a fused clamp, runs as [`dsp::row_passes`] instead.)
#[inline(never)]
fn row_dot<const J: usize>(
    lanes: &[i16],
    stride: usize,
    pairs: &[u32; ROW_MAX_PAIRS],
    r: &RowOut,
    out: &mut [i8],
) {
    let RowOut {
        bias,
        rq,
        zp,
        act_min: lo,
        act_max: hi,
    } = *r;
    // Every window is `2J` lanes long, so the pair reads need no checks.
    if stride == 1 {
        for (y, win) in out.iter_mut().zip(lanes.windows(2 * J)) {
            *y = rq.apply(dot_pairs::<J>(win, pairs, bias), zp, lo, hi);
        }
    } else {
        for (y, win) in out.iter_mut().zip(lanes.windows(2 * J).step_by(stride)) {
            *y = rq.apply(dot_pairs::<J>(win, pairs, bias), zp, lo, hi);
        }
    }
}

/// `acc + Σ_{j<J} SMLAD(pairs[j], lanes 2j, 2j + 1 of win)`, written out
/// (size-optimized builds do not unroll even a 2-trip loop).
#[inline(always)]
pub(super) fn dot_pairs<const J: usize>(
    win: &[i16],
    pairs: &[u32; ROW_MAX_PAIRS],
    acc: i32,
) -> i32 {
    let [p0, p1, p2, p3] = *pairs;
    let mut acc = smlad(p0, lane_pair(win, 0), acc);
    acc = smlad(p1, lane_pair(win, 2), acc);
    if J >= 3 {
        acc = smlad(p2, lane_pair(win, 4), acc);
    }
    if J >= 4 {
        acc = smlad(p3, lane_pair(win, 6), acc);
    }
    acc
}

/// Lanes `i` and `i + 1` of `x` as one word (low lane first), 0 past the end.
#[inline(always)]
pub(super) fn lane_pair(x: &[i16], i: usize) -> u32 {
    match x.get(i..i + 2) {
        Some(&[lo, hi]) => u32::from(lo as u16) | (u32::from(hi as u16) << 16),
        _ => 0,
    }
}

/// Lanes `0..span` of `col` (two `i16` a word, low first): lane `i` =
/// input `[chan, iy, i − pad_left] − zp` for the row `iy` that output row
/// `oy` reads, 0 in the padding (and for a row entirely in it).
fn widen_row(
    p: &ConvParams,
    g: &Geometry,
    input: &[i8],
    chan: usize,
    oy: usize,
    col: &mut [u32],
    span: usize,
) {
    let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, 1, p.in_h);
    let row = if ty.hi > ty.lo {
        let start = chan * g.in_plane + ty.first * p.in_w;
        input.get(start..start + p.in_w).unwrap_or(&[])
    } else {
        &[]
    };
    widen_padded(row, p.pad_left, span, g.zp, g.offset, col);
}

impl Geometry {
    /// How [`conv_rows`] runs, when it applies: output `o` reads lanes
    /// `o·stride .. o·stride + 2·pairs`; the passes read `2·ceil(W/2) + 8`
    /// (whole words, and one past the last window); the row must fit the
    /// column buffer.
    fn row_path(&self, p: &ConvParams) -> Option<RowPath> {
        let pairs = row_pairs(p.kernel_w);
        if self.cin_g != 1 || p.kernel_h != 1 || p.dilation_w != 1 || pairs > ROW_MAX_PAIRS {
            return None;
        }
        let span = (p.out_w - 1)
            .checked_mul(p.stride_w)?
            .checked_add(2 * pairs)?;
        let pass_span = 2 * p.out_w.div_ceil(2) + 8;
        let passes =
            p.stride_w == 1 && p.kernel_w <= 7 && p.out_w >= 2 && pass_span <= 2 * COL_WORDS;
        let span = if passes { span.max(pass_span) } else { span };
        (span <= 2 * COL_WORDS).then_some(RowPath { span, passes })
    }

    /// `None` when the reference kernel must handle the call: the same
    /// preconditions as `reference::conv_s8`, plus the limits of this kernel.
    fn new(p: &ConvParams, io: &Operands<'_>, output: &[i8]) -> Option<Geometry> {
        let g = Geometry::of(p).ok()?;
        let lens_ok = conv_lens_ok(p, io, output, (g.k, g.in_plane, g.out_plane));
        (lens_ok && !output.is_empty()).then_some(g)
    }

    /// The geometry of `p` when this kernel takes it, else why not.
    fn of(p: &ConvParams) -> Result<Geometry, &'static str> {
        if !conv_shape_ok(p) {
            return Err(why!("invalid convolution parameters"));
        }
        let cin_g = p.in_channels / p.groups;
        if cin_g == 1 && p.kernel_h > 1 {
            // Columns of a few taps cost more to build than they save.
            return Err(
                "one input channel per group over several kernel rows (depthwise: \
                        slower than the reference as columns)",
            );
        }
        let too_large = "sizes overflow";
        let k = cin_g
            .checked_mul(p.kernel_h)
            .and_then(|k| k.checked_mul(p.kernel_w))
            .ok_or(too_large)?;
        let in_plane = p.in_h.checked_mul(p.in_w).ok_or(too_large)?;
        let out_plane = p.out_h.checked_mul(p.out_w).ok_or(too_large)?;
        if k == 0 {
            return Err(why!("empty reduction"));
        }
        // (The reason names MAX_REDUCTION, 640.)
        const _: () = assert!(super::MAX_REDUCTION == 640);
        if p.kernel_h * p.kernel_w > MAX_REDUCTION {
            return Err(why!("kernel of more than 640 taps per input channel"));
        }
        if k > MAX_REDUCTION && !cfg!(feature = "conv-long-reductions") {
            return Err(why!(
                "reduction (in_channels/groups × kernel) longer than 640, \
                 and the conv-long-reductions feature is off"
            ));
        }
        let zp = zp_byte(p.input_zero_point).ok_or("input zero point outside i8")?;
        Ok(Geometry {
            cin_g,
            cout_g: p.out_channels / p.groups,
            in_plane,
            out_plane,
            k,
            groups4: k.div_ceil(4),
            zp,
            offset: splat16(-p.input_zero_point),
        })
    }

    /// The columns of output positions `pos..pos + valid` in the first
    /// `valid` of `nc` slots, staged in `scratch`. Slots past `valid` are
    /// left as they are: their sums are discarded.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn build_columns(
        &self,
        p: &ConvParams,
        in_group: &[i8],
        pos: usize,
        valid: usize,
        nc: usize,
        col: &mut [u32],
        scratch: &mut [u32],
    ) {
        let Ok(stage) = bytemuck::try_cast_slice_mut::<u32, i8>(scratch) else {
            return;
        };
        if let Some(rows) = self.interior_block(p, in_group, pos, valid.min(nc)) {
            // Every window of the block is inside the input: no padding,
            // the asm copies (no per-window geometry).
            let src = in_group.as_ptr().wrapping_add(rows.first);
            for slot in 0..valid.min(nc) {
                let at = src.wrapping_add(slot * p.stride_w);
                // SAFETY: `interior_block` checked that every window of the
                // block reads inside `in_group`, 4 bytes a row, and `stage`
                // holds `k + 8 >= (chans·rows − 1)·kw + 4` bytes.
                unsafe { dsp::copy_rows4(at, stage.as_mut_ptr(), &rows.copy) };
                let src = stage.get(..self.k).unwrap_or(&[]);
                widen_into(src, self.zp, self.offset, col, slot, nc, self.groups4);
            }
            return;
        }
        for slot in 0..valid.min(nc) {
            self.stage_window(p, in_group, pos + slot, stage);
            let src = stage.get(..self.k).unwrap_or(&[]);
            widen_into(src, self.zp, self.offset, col, slot, nc, self.groups4);
        }
    }

    /// When the windows of positions `pos..pos + n` are all inside the
    /// input, in one output row, with rows of at most 4 contiguous taps (and
    /// the 4-byte row reads of the last one stay inside `in_group`): where
    /// the first window starts and how [`dsp::copy_rows4`] stages them.
    #[inline(never)]
    fn interior_block(
        &self,
        p: &ConvParams,
        in_group: &[i8],
        pos: usize,
        n: usize,
    ) -> Option<InteriorBlock> {
        let (oy, ox) = (pos / p.out_w, pos % p.out_w);
        let last_ox = ox + n.checked_sub(1)?;
        if p.kernel_w > 4 || p.dilation_w != 1 || last_ox >= p.out_w {
            return None;
        }
        let top = (oy * p.stride_h).checked_sub(p.pad_top)?;
        let left = (ox * p.stride_w).checked_sub(p.pad_left)?;
        let row_step = p.dilation_h * p.in_w;
        let bottom = top + (p.kernel_h - 1) * p.dilation_h;
        let right = last_ox * p.stride_w + p.kernel_w - 1 - p.pad_left;
        if bottom >= p.in_h || right >= p.in_w {
            return None;
        }
        let first = top * p.in_w + left;
        // The last window's last row reads 4 bytes from its start.
        let reach =
            (self.cin_g - 1) * self.in_plane + bottom * p.in_w + (right + 1 - p.kernel_w) + 4;
        (reach <= in_group.len()).then_some(InteriorBlock {
            first,
            copy: dsp::RowCopy {
                chans: self.cin_g,
                rows: p.kernel_h,
                plane: self.in_plane,
                row_step,
                kw: p.kernel_w,
            },
        })
    }

    /// Writes the `k` window values of output position `pos` (row-major over
    /// `out_h × out_w`) in weight order `[ic][ky][kx]`, padding as `zp`.
    /// `stage` needs 8 bytes of slack past `k`.
    #[inline(always)]
    fn stage_window(&self, p: &ConvParams, in_group: &[i8], pos: usize, stage: &mut [i8]) {
        let (oy, ox) = (pos / p.out_w, pos % p.out_w);
        let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
        let tx = Taps::new(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
        let kw = p.kernel_w;
        let mut done = 0;
        if ty.hi > ty.lo && tx.hi > tx.lo && p.dilation_w == 1 && kw <= 8 {
            // Every valid row has the same taps, contiguous: word copies.
            let first = ty.first * p.in_w + tx.first;
            let row_step = p.dilation_h * p.in_w;
            let (ky, k) = ((ty.lo, ty.hi), (p.kernel_h, kw));
            done = if kw <= 4 {
                self.stage_rows::<4>(in_group, first, row_step, ky, k, tx, stage)
            } else {
                self.stage_rows::<8>(in_group, first, row_step, ky, k, tx, stage)
            };
        }
        // Whatever is left (windows entirely in the padding, dilated or
        // wide rows, the last channels at the very end of the input): bytes.
        let mut rows = stage.chunks_exact_mut(kw).skip(done * p.kernel_h);
        for icg in done..self.cin_g {
            // Empty when the input is (then every tap is padding).
            let chan = in_group.get(icg * self.in_plane..).unwrap_or(&[]);
            for ky in 0..p.kernel_h {
                let Some(row) = rows.next() else {
                    return;
                };
                let (src, taps) = if ky >= ty.lo && ky < ty.hi {
                    let iy = ty.first + (ky - ty.lo) * p.dilation_h;
                    (chan.get(iy * p.in_w + tx.first..).unwrap_or(&[]), tx)
                } else {
                    (
                        &[][..],
                        Taps {
                            lo: 0,
                            hi: 0,
                            first: 0,
                        },
                    )
                };
                fill_row(row, src, taps, p.dilation_w, self.zp);
            }
        }
    }

    /// Stages the leading channels of a window whose valid rows (kernel
    /// rows `ky.0..ky.1` of `kh × kw`, the first at `first`, `row_step` apart)
    /// all have the same contiguous taps `tx` (`kw ≤ W ≤ 8`), with `W`-byte
    /// copies, and returns how many channels it did: those whose `W`-byte
    /// reads stay inside `in_group` (all but, at the very end of the input,
    /// the last).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn stage_rows<const W: usize>(
        &self,
        in_group: &[i8],
        first: usize,
        row_step: usize,
        ky: (usize, usize),
        (kh, kw): (usize, usize),
        tx: Taps,
        stage: &mut [i8],
    ) -> usize {
        let (cin_g, in_plane) = (self.cin_g, self.in_plane);
        // Channel `c` reads up to `first + c·in_plane + (rows−1)·row_step + W`.
        let Some(reach) = (ky.1 - ky.0 - 1)
            .checked_mul(row_step)
            .and_then(|r| r.checked_add(first)?.checked_add(W))
        else {
            return 0;
        };
        let Some(room) = in_group.len().checked_sub(reach) else {
            return 0;
        };
        // Usually every channel fits; the division only near the end.
        let chans = if room >= (cin_g - 1) * in_plane {
            cin_g
        } else {
            room / in_plane.max(1) + 1
        };
        // The last row writes up to its start + max(lo + W, hi + 8, 8).
        let last_row = (chans * kh).saturating_sub(1) * kw;
        let (lo, hi) = (tx.lo, tx.hi);
        if chans == 0 || lo >= hi || hi > kw || last_row + (lo + W).max(hi + 8) > stage.len() {
            return 0;
        }
        let rows = Rows {
            chans,
            kh,
            ky,
            plane: in_plane,
            row_step,
            kw,
            lo,
            hi,
            zp: self.zp,
        };
        let src = in_group.as_ptr().wrapping_add(first);
        // SAFETY: valid row `r` of channel `c` reads `src + c·in_plane +
        // r·row_step ..+W`, which ends by `reach + c·in_plane ≤
        // in_group.len()` for `c < chans`; kernel row `y` writes within
        // `(c·kh + y)·kw ..+ max(lo + W, hi + 8, 8)`, which ends by
        // `stage.len()` (both checked above).
        unsafe { copy_rows::<W>(src, stage.as_mut_ptr(), &rows) };
        chans
    }
}

/// A block of windows inside the input, see [`Geometry::interior_block`].
struct InteriorBlock {
    first: usize,
    copy: dsp::RowCopy,
}

/// What [`copy_rows`] copies.
struct Rows {
    chans: usize,
    kh: usize,
    /// The valid kernel rows (the rest are padding).
    ky: (usize, usize),
    plane: usize,
    row_step: usize,
    kw: usize,
    lo: usize,
    hi: usize,
    zp: i8,
}

/// For `c < chans`, `y < kh`: the kernel row at `dst + (c·kh + y)·kw` gets,
/// for a valid row (`ky.0 <= y < ky.1`), `W` bytes of `src + c·plane +
/// (y − ky.0)·row_step` at offset `lo`, and the padding `[0, lo)` and
/// `[hi, kw)` is `zp`; a padding row is all `zp` (written 8 bytes at a
/// time; the excess past `kw` is overwritten by the next row, or lies past
/// `k`). Out of line, so the loops have the registers to themselves.
///
/// # Safety
///
/// Every such read (`W` bytes) must lie inside one slice, and every write
/// (`max(lo + W, hi + 8, 8)` bytes from the row start) inside another,
/// distinct, exclusively borrowed one.
#[inline(never)]
unsafe fn copy_rows<const W: usize>(src: *const i8, dst: *mut i8, g: &Rows) {
    let pad = [g.zp; 8];
    let mut chan = src;
    let mut d = dst;
    let full = g.lo == 0 && g.hi == g.kw && g.ky == (0, g.kh);
    if full && g.kh == 1 {
        // The common case: 1-D, away from the edges.
        for _ in 0..g.chans {
            // SAFETY: in bounds and non-overlapping by the contract above;
            // the accesses are unaligned ones.
            unsafe {
                let v = chan.cast::<[i8; W]>().read_unaligned();
                d.cast::<[i8; W]>().write_unaligned(v);
            }
            chan = chan.wrapping_add(g.plane);
            d = d.wrapping_add(g.kw);
        }
        return;
    }
    if full && W == 4 {
        // 2-D, away from the edges: the asm loop.
        let copy = dsp::RowCopy {
            chans: g.chans,
            rows: g.kh,
            plane: g.plane,
            row_step: g.row_step,
            kw: g.kw,
        };
        // SAFETY: the same reads and writes (4 bytes a row, `lo = 0`),
        // in bounds by the contract above; `chans, kh >= 1`.
        unsafe { dsp::copy_rows4(chan, d, &copy) };
        return;
    }
    for _ in 0..g.chans {
        let mut s = chan;
        for y in 0..g.kh {
            // SAFETY: as above.
            unsafe {
                if y < g.ky.0 || y >= g.ky.1 {
                    d.cast::<[i8; 8]>().write_unaligned(pad);
                } else {
                    if g.lo > 0 {
                        d.cast::<[i8; 8]>().write_unaligned(pad);
                    }
                    let v = s.cast::<[i8; W]>().read_unaligned();
                    d.add(g.lo).cast::<[i8; W]>().write_unaligned(v);
                    if g.hi < g.kw {
                        d.add(g.hi).cast::<[i8; 8]>().write_unaligned(pad);
                    }
                    s = s.wrapping_add(g.row_step);
                }
            }
            d = d.wrapping_add(g.kw);
        }
        chan = chan.wrapping_add(g.plane);
    }
}

/// One kernel row: taps before `tx.lo` and from `tx.hi` are padding, the
/// rest read `src` every `dilation` bytes. (Plain loops rather than `fill`
/// and `copy_from_slice`, which become `memset`/`memcpy` calls that cost
/// more than these few bytes.)
#[inline(always)]
fn fill_row(row: &mut [i8], src: &[i8], tx: Taps, dilation: usize, zp: i8) {
    let Some((head, rest)) = row.split_at_mut_checked(tx.lo) else {
        return;
    };
    let Some((valid, tail)) = rest.split_at_mut_checked(tx.hi.saturating_sub(tx.lo)) else {
        return;
    };
    for d in head.iter_mut().chain(tail.iter_mut()) {
        *d = zp;
    }
    let mut taps = src.iter().step_by(dilation.max(1));
    for d in valid {
        *d = taps.next().copied().unwrap_or(zp);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{conv_both, xorshift, ConvCase as Case};
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn axis(
        max_in: usize,
        max_k: usize,
    ) -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
        (
            1..=max_in,
            1..=max_k,
            1usize..=3,
            1usize..=3,
            0usize..=3,
            0usize..=3,
        )
            .prop_filter_map("window longer than padded input", |(i, k, s, d, pb, pe)| {
                crate::kernels::conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, o))
            })
    }

    fn case() -> impl Strategy<Value = Case> {
        let flat = Just((1usize, 1usize, 1usize, 1usize, 0usize, 1usize));
        let h = prop_oneof![flat, axis(6, 3)];
        (
            h,
            axis(40, 9),
            1usize..=4,
            1usize..=12,
            1usize..=8,
            any::<u64>(),
        )
            .prop_flat_map(|(h, w, groups, cin_g, cout_g, seed)| {
                // Depthwise a third of the time.
                let cin_g = if seed % 3 == 0 { 1 } else { cin_g };
                let p = ConvParams {
                    in_channels: groups * cin_g,
                    in_h: h.0,
                    in_w: w.0,
                    out_channels: groups * cout_g,
                    out_h: h.5,
                    out_w: w.5,
                    kernel_h: h.1,
                    kernel_w: w.1,
                    stride_h: h.2,
                    stride_w: w.2,
                    dilation_h: h.3,
                    dilation_w: w.3,
                    pad_top: h.4,
                    pad_left: w.4,
                    groups,
                    input_zero_point: 0,
                    output_zero_point: 0,
                    act_min: -128,
                    act_max: 127,
                };
                let n_in = p.in_channels * p.in_h * p.in_w;
                let n_w = p.out_channels * cin_g * p.kernel_h * p.kernel_w;
                let n_oc = p.out_channels;
                (
                    Just(p),
                    proptest::collection::vec(any::<i8>(), n_in),
                    proptest::collection::vec(any::<i8>(), n_w),
                    proptest::collection::vec(-70_000i32..70_000, n_oc),
                    proptest::collection::vec((1i32 << 30)..=i32::MAX, n_oc),
                    proptest::collection::vec(-12i8..=1, n_oc),
                    (-128i32..=127, -128i32..=127, -128i32..=127, -128i32..=127),
                )
            })
            .prop_map(|(p, x, w, b, m, s, zps)| Case::new(p, (x, w), (b, m, s), zps))
    }

    fn both(c: &Case) -> (Vec<i8>, Vec<i8>) {
        conv_both(c, conv_s8_dsp)
    }

    /// Reductions past the column buffer (`C_in/groups · kH · kW > 640`):
    /// 1-D and 2-D, grouped, strided, dilated, padded, and channel counts
    /// whose chunks of whole channels end anywhere in a group of 4.
    fn long_case() -> impl Strategy<Value = Case> {
        (
            prop_oneof![Just((1usize, 1usize)), (2usize..=4, 1usize..=3)],
            (1usize..=30, 1usize..=17, 1usize..=4, 1usize..=2, 0usize..=8),
            1usize..=2,
            40usize..=400,
            1usize..=6,
        )
            .prop_filter_map(
                "not longer than the column buffer, or no output",
                |((in_h, kh), (in_w, kw, sw, dw, pad), groups, cin_g, cout_g)| {
                    if cin_g * kh * kw <= 640 {
                        return None;
                    }
                    let out_h = crate::kernels::conv_out_len(in_h, kh, 1, 1, 0, 0)?;
                    let out_w = crate::kernels::conv_out_len(in_w, kw, sw, dw, pad, pad / 2)?;
                    let p = ConvParams {
                        in_channels: groups * cin_g,
                        in_h,
                        in_w,
                        out_channels: groups * cout_g,
                        out_h,
                        out_w,
                        kernel_h: kh,
                        kernel_w: kw,
                        stride_h: 1,
                        stride_w: sw,
                        dilation_h: 1,
                        dilation_w: dw,
                        pad_top: 0,
                        pad_left: pad,
                        groups,
                        input_zero_point: 0,
                        output_zero_point: 0,
                        act_min: -128,
                        act_max: 127,
                    };
                    Some(p)
                },
            )
            .prop_flat_map(|p| {
                let n_in = p.in_channels * p.in_h * p.in_w;
                let n_w = p.out_channels * p.in_channels / p.groups * p.kernel_h * p.kernel_w;
                let n_oc = p.out_channels;
                (
                    Just(p),
                    proptest::collection::vec(any::<i8>(), n_in),
                    proptest::collection::vec(any::<i8>(), n_w),
                    proptest::collection::vec(-300_000i32..300_000, n_oc),
                    proptest::collection::vec((1i32 << 30)..=i32::MAX, n_oc),
                    // |acc| is about 2^14·sqrt(K): bring it near the i8 range.
                    proptest::collection::vec(-17i8..=-14, n_oc),
                    (-128i32..=127, -128i32..=127),
                )
            })
            .prop_map(|(p, x, w, b, m, s, (izp, ozp))| {
                Case::new(p, (x, w), (b, m, s), (izp, ozp, -128, 127))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn bit_exact_with_reference(c in case()) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(60))]

        #[test]
        fn bit_exact_with_reference_past_the_column_buffer(c in long_case()) {
            let takes = cfg!(feature = "conv-long-reductions") && dsp::USES_DSP_INSTRUCTIONS;
            prop_assert_eq!(conv_dsp_takes(&c.p).is_ok(), takes);
            let (want, got) = both(&c);
            // Not a vacuous case: outputs that all saturate to one value
            // (a rare draw of large sums and biases) prove nothing, and are
            // drawn again rather than failed.
            prop_assume!(want.iter().any(|&y| y != want[0]) || want.len() < 4);
            prop_assert_eq!(want, got);
        }
    }

    fn ecg_like(cin: usize, cout: usize, k: usize, w: usize) -> Case {
        // Deterministic pseudo-random data (xorshift), full i8 range.
        let mut next = xorshift(0x2545_f491 ^ (cin * 131 + k) as u32);
        let p = ConvParams {
            in_channels: cin,
            in_h: 1,
            in_w: w,
            out_channels: cout,
            out_h: 1,
            out_w: w,
            kernel_h: 1,
            kernel_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: k / 2,
            groups: 1,
            input_zero_point: -128,
            output_zero_point: 5,
            act_min: -128,
            act_max: 127,
        };
        Case {
            input: (0..cin * w).map(|_| next() as i8).collect(),
            weights: (0..cout * cin * k).map(|_| next() as i8).collect(),
            bias: (0..cout)
                .map(|_| (next() % 20_000) as i32 - 10_000)
                .collect(),
            multiplier: (0..cout)
                .map(|_| (1 << 30) + (next() >> 2) as i32)
                .collect(),
            // |acc| is about 2^13·sqrt(K): bring it to about 2^6.
            shift: (0..cout)
                .map(|_| {
                    -6 - (usize::BITS - (cin * k).leading_zeros()) as i8 / 2 - (next() % 3) as i8
                })
                .collect(),
            p,
        }
    }

    #[test]
    fn ecg_layers_and_long_reductions() {
        // The ECG model's layers (K = 7, 80, 96), a 1-column reduction
        // (K = 32·7 = 224 > 128), K = 512 and 520, the column buffer's
        // limit (K = 640), and past it (one position at a time, in chunks of
        // whole channels): 641, 64·17 = 1088 (the chunks split channels 37 +
        // 27) and 3·640 + 1 = 1921 taps (a last chunk of one channel); a
        // kernel of 641 taps per channel takes the reference.
        for (cin, cout, k, w) in [
            (1, 16, 7, 140),
            (16, 32, 5, 70),
            (32, 32, 3, 35),
            (32, 5, 7, 9),
            (64, 3, 8, 11),
            (65, 2, 8, 9),
            (80, 3, 8, 6),
            (1, 3, 641, 700),
            (641, 2, 1, 5),
            (64, 7, 17, 20),
            (113, 5, 17, 9),
            (1921, 3, 1, 4),
        ] {
            let c = ecg_like(cin, cout, k, w);
            let (want, got) = both(&c);
            assert_eq!(want, got, "cin {cin} k {k}");
            // Outputs are not degenerate (the test could not pass vacuously).
            assert!(want.iter().any(|&y| y != want[0]), "{cin} {k} {want:?}");
        }
    }

    #[test]
    fn row_passes_edges_match_reference() {
        // The single-channel row path around the edges of the stride-1
        // passes: every kernel length 1..=9 (8 and 9 take the older code),
        // every row length 1..=40 (each remainder of the 16-step unroll in
        // both passes), padding on either side, strides 1 and 2, extreme
        // zero points, shifts on both sides of the passes' limit (hs 22 /
        // 23), a wrapping bias, a negative multiplier and a fused clamp.
        let mut next = xorshift(0x9e37_79b9);
        let mut checked = 0;
        for kw in 1..=9 {
            for in_w in 1..=40 {
                let (pl, pr) = ((in_w + kw) % 4, (in_w * 3 + kw) % 5);
                for stride in [1, 2] {
                    let Some(out_w) = crate::kernels::conv_out_len(in_w, kw, stride, 1, pl, pr)
                    else {
                        continue;
                    };
                    let cout = 5;
                    let (izp, ozp, act) = match (in_w + kw) % 4 {
                        0 => (-128, -128, (-128, 127)),
                        1 => (127, 127, (-128, 127)),
                        2 => (3, -7, (-128, 127)),
                        _ => (-40, 5, (-20, 90)),
                    };
                    let p = ConvParams {
                        in_channels: 1,
                        in_h: 1,
                        in_w,
                        out_channels: cout,
                        out_h: 1,
                        out_w,
                        kernel_h: 1,
                        kernel_w: kw,
                        stride_h: 1,
                        stride_w: stride,
                        dilation_h: 1,
                        dilation_w: 1,
                        pad_top: 0,
                        pad_left: pl,
                        groups: 1,
                        input_zero_point: izp,
                        output_zero_point: ozp,
                        act_min: act.0,
                        act_max: act.1,
                    };
                    let c = Case {
                        input: (0..in_w).map(|_| next() as i8).collect(),
                        weights: (0..cout * kw).map(|_| next() as i8).collect(),
                        // Channel 3's bias makes the sums wrap.
                        bias: std::vec![-5000, 123, 70_000, i32::MAX - 9000, -1],
                        multiplier: std::vec![
                            1 << 30,
                            i32::MAX,
                            (1 << 30) + 777,
                            1_500_000_000,
                            -1_200_000_000
                        ],
                        // hs = −shift − 1: 22 and 23 straddle the limit; −2
                        // is the smallest fast shift, −9 a typical one.
                        shift: std::vec![-23, -24, -2, -9, -9],
                        p,
                    };
                    let (want, got) = both(&c);
                    assert_eq!(want, got, "kw {kw} in_w {in_w} stride {stride}");
                    checked += want.len();
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn pass_consts_widen_taps_in_order() {
        // Taps 1..=7: the even pairs (1, 2), (3, 4), (5, 6), (7, 0); the odd
        // ones (0, 1), (2, 3), (4, 5), (6, 7), as i16 lanes, low first.
        let pair = |lo: i16, hi: i16| u32::from(lo as u16) | (u32::from(hi as u16) << 16);
        let rq = Requant::new(1 << 30, -9);
        let Some(c) = pass_consts(&[1, 2, 3, 4, 5, 6, 7], 0, rq, 0, 4) else {
            panic!("shift -9 fits the passes");
        };
        let words = c.words();
        assert_eq!(words[..4], [pair(1, 2), pair(3, 4), pair(5, 6), pair(7, 0)]);
        assert_eq!(
            words[9..13],
            [pair(0, 1), pair(2, 3), pair(4, 5), pair(6, 7)]
        );
        // Negative taps sign-extend; a short kernel pads with zeros.
        let Some(c) = pass_consts(&[-1, -128, 127], 0, rq, 0, 4) else {
            panic!("shift -9 fits the passes");
        };
        let words = c.words();
        assert_eq!(words[..4], [pair(-1, -128), pair(127, 0), 0, 0]);
        assert_eq!(words[9..13], [pair(0, -1), pair(-128, 127), 0, 0]);
        // hs = 8, rounding 2^7, zero point 5 folded in as 5·2^8.
        let Some(c) = pass_consts(&[1], 0, rq, 5, 4) else {
            panic!("shift -9 fits the passes");
        };
        assert_eq!(c.words()[6], 128 + 5 * 256);
        // Outside the shortcut, or hs > 22: not for the passes.
        assert!(pass_consts(&[1], 0, Requant::new(1 << 30, 0), 0, 4).is_none());
        assert!(pass_consts(&[1], 0, Requant::new(1 << 30, -24), 0, 4).is_none());
        assert!(pass_consts(&[1], 0, Requant::new(1 << 30, -23), 0, 4).is_some());
    }

    #[test]
    fn wrapping_accumulator_matches() {
        // Bias near i32::MAX: the sums wrap, in both kernels alike.
        let mut c = ecg_like(16, 4, 5, 12);
        c.bias = std::vec![i32::MAX - 1000; 4];
        c.shift = std::vec![-20; 4];
        let (want, got) = both(&c);
        assert_eq!(want, got);
    }

    #[test]
    fn takes_says_why_not() {
        let ok = ecg_like(16, 32, 5, 70).p;
        assert_eq!(Geometry::of(&ok).err(), None);
        // Reductions past the column buffer are taken (in chunks of whole
        // channels) with the feature; a kernel longer than the buffer per
        // channel is not.
        let past = ConvParams {
            in_channels: 129,
            ..ok
        };
        if cfg!(feature = "conv-long-reductions") {
            assert_eq!(Geometry::of(&past).err(), None);
        } else {
            assert!(Geometry::of(&past).is_err_and(|e| e.contains("feature")));
        }
        let taps = ConvParams {
            in_channels: 1,
            in_w: 700,
            out_w: 60,
            kernel_w: 641,
            pad_left: 0,
            ..ok
        };
        assert!(Geometry::of(&taps).is_err_and(|e| e.contains("640")));
        let zp = ConvParams {
            input_zero_point: 128,
            ..ok
        };
        assert!(Geometry::of(&zp).is_err_and(|e| e.contains("zero point")));
        let bad = ConvParams { groups: 3, ..ok };
        assert!(Geometry::of(&bad).is_err_and(|e| e.contains("invalid")));
        // Depthwise over several kernel rows: the depthwise kernel's; one
        // kernel row: the single-channel rows here.
        let dw = ConvParams {
            in_channels: 32,
            groups: 32,
            in_h: 4,
            out_h: 2,
            kernel_h: 3,
            ..ok
        };
        assert!(Geometry::of(&dw).is_err_and(|e| e.contains("depthwise")));
        let dw_1d = ConvParams {
            in_channels: 32,
            groups: 32,
            ..ok
        };
        assert_eq!(Geometry::of(&dw_1d).err(), None);
        // Without the DSP extension (this host), never.
        assert_eq!(
            conv_dsp_takes(&ok),
            match dsp::USES_DSP_INSTRUCTIONS {
                true => Ok(()),
                false => Err("no Arm DSP extension"),
            }
        );
    }

    #[test]
    fn unsupported_and_invalid_calls_behave_as_reference() {
        // Zero point outside i8 (meaningless, but must stay bit-exact).
        let mut c = ecg_like(4, 3, 3, 10);
        c.p.input_zero_point = 300;
        let (want, got) = both(&c);
        assert_eq!(want, got);
        assert!(want.iter().any(|&y| y != 0x55));
        // A short input: both return early, leaving the output as it was.
        let mut c = ecg_like(4, 3, 3, 10);
        c.input.pop();
        let (want, got) = both(&c);
        assert!(want.iter().chain(&got).all(|&y| y == 0x55));
        // Activation window outside i8.
        let mut c = ecg_like(4, 3, 3, 10);
        c.p.act_max = 128;
        let (_, got) = both(&c);
        assert!(got.iter().all(|&y| y == 0x55));
    }
}
