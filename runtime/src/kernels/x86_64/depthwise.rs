//! One input channel per group (depthwise, or a single-channel input):
//! taps slid along widened rows, vectorized over output positions.
//!
//! Each input row is widened once to `x − zp` in `i16`, zero-padded, and
//! split into its `stride_w` phases: phase `r` holds padded columns
//! `r, r + s, r + 2s, …`. Output `ox`'s tap at padded offset `o = kx·dw`
//! then reads phase `o % s` at index `ox + o / s`, so 16 consecutive outputs
//! read 16 consecutive lanes. Two taps of one phase `s` apart sit in
//! adjacent lanes: as one `i32` they are a `vpmaddwd` pair. A load at index
//! `ox0 + q` gives the pairs of the even outputs `ox0 + 2i`, one at
//! `ox0 + q + 1` those of the odd outputs, so two `vpmaddwd` add two taps to
//! 16 outputs. Taps without a partner pair with a zero weight.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::conv::{conv_args_ok, store_i8x16, zeroed_prefix, Operands};
use super::need_avx2;
use super::requant::{pack16, Requant};
use crate::kernels::reference;
use crate::kernels::ConvParams;

/// Most tap pairs (entries) in a kernel.
const MAX_ENTRIES: usize = 64;
/// `i16` lanes of the widened rows of one band.
const ROWS_CAP: usize = 16 * 1024;
/// Output channels per pass at most.
const MAX_M: usize = 4;
/// Stack taken by the sliding path's buffers.
pub(super) const SCRATCH_BYTES: usize = ROWS_CAP * 2;

/// [`reference::conv_s8`] for one input channel per group, bit for bit, on AVX2.
///
/// Same arguments, layout and preconditions as the reference convolution;
/// meant for depthwise layers (`groups == in_channels`, any channel
/// multiplier), any kernel, stride, dilation and padding within the limits
/// of [`depthwise_conv_avx2_takes`]. Output rows are computed 16 positions
/// at a time, every output channel of a group from the same widened rows.
///
/// Calls the reference kernel instead when AVX2 is missing, a precondition
/// fails, or [`depthwise_conv_avx2_takes`] refuses the shape.
pub fn depthwise_conv_s8_avx2(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let ops = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    let plan = match depthwise_conv_avx2_takes(p) {
        Ok(()) if conv_args_ok(p, &ops, output) && !output.is_empty() => SlidingPlan::new(p),
        _ => None,
    };
    let Some(plan) = plan else {
        reference::conv_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    };
    // SAFETY: `depthwise_conv_avx2_takes` checked that the CPU runs AVX2.
    unsafe { sliding_conv(p, &plan, &ops, output) };
}

/// `Ok` when [`depthwise_conv_s8_avx2`] runs `p` itself: AVX2 is available,
/// one input channel per group, the input zero point in `i8`, at most 64
/// tap pairs, and the widened rows one output row needs fit in 32 KiB.
pub fn depthwise_conv_avx2_takes(p: &ConvParams) -> Result<(), &'static str> {
    need_avx2()?;
    if p.groups == 0 || p.in_channels != p.groups {
        return Err("not one input channel per group");
    }
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    match SlidingPlan::new(p) {
        Some(_) => Ok(()),
        None => Err("kernel or input row too large for the sliding path"),
    }
}

/// A pair of taps of one kernel row: `kx_a` and (if any) `kx_b`, reading
/// phase `phase` at `q` and `q + 1`.
#[derive(Clone, Copy, Default)]
struct Entry {
    ky: usize,
    phase: usize,
    q: usize,
    kx_a: usize,
    kx_b: Option<usize>,
}

/// How a convolution runs on the sliding path.
pub(super) struct SlidingPlan {
    entries: [Entry; MAX_ENTRIES],
    n_entries: usize,
    /// Lanes of one phase of a widened row.
    width: usize,
}

impl SlidingPlan {
    /// `None` when the kernel has more than [`MAX_ENTRIES`] pairs or one
    /// output row's widened rows exceed [`ROWS_CAP`] lanes.
    pub(super) fn new(p: &ConvParams) -> Option<SlidingPlan> {
        let s = p.stride_w;
        if s == 0 || p.dilation_w == 0 || p.kernel_w == 0 || p.kernel_w > MAX_ENTRIES {
            return None;
        }
        // The taps of one kernel row by (phase, q); kx order is q order
        // within a phase.
        let mut taps = [(0usize, 0usize, 0usize); MAX_ENTRIES];
        for (kx, t) in taps.iter_mut().enumerate().take(p.kernel_w) {
            let o = kx.checked_mul(p.dilation_w)?;
            *t = (o % s, o / s, kx);
        }
        let taps = taps.get_mut(..p.kernel_w)?;
        taps.sort_unstable();
        let mut plan = SlidingPlan {
            entries: [Entry::default(); MAX_ENTRIES],
            n_entries: 0,
            width: 0,
        };
        let mut q_max = 0;
        for ky in 0..p.kernel_h {
            let mut i = 0;
            while let Some(&(phase, q, kx_a)) = taps.get(i) {
                let partner = taps.get(i + 1).filter(|t| t.0 == phase && t.1 == q + 1);
                let entry = Entry {
                    ky,
                    phase,
                    q,
                    kx_a,
                    kx_b: partner.map(|t| t.2),
                };
                *plan.entries.get_mut(plan.n_entries)? = entry;
                plan.n_entries += 1;
                q_max = q_max.max(q);
                i += if partner.is_some() { 2 } else { 1 };
            }
        }
        // Reads reach index out_w_16 + q_max (odd outputs' pair of the last
        // block); 2 more lanes of slack.
        plan.width = p
            .out_w
            .checked_next_multiple_of(16)?
            .checked_add(q_max + 2)?;
        let span = p.kernel_h.checked_sub(1)?.checked_mul(p.dilation_h)? + 1;
        let one_row = span.min(p.in_h).checked_mul(s)?.checked_mul(plan.width)?;
        (one_row <= ROWS_CAP).then_some(plan)
    }

    fn entries(&self) -> &[Entry] {
        self.entries.get(..self.n_entries).unwrap_or(&[])
    }
}

/// The sliding path over every group. Preconditions hold, one input
/// channel per group, `output` not empty.
#[target_feature(enable = "avx2")]
pub(super) fn sliding_conv(
    p: &ConvParams,
    plan: &SlidingPlan,
    ops: &Operands<'_>,
    output: &mut [i8],
) {
    let mut rows_buf = MaybeUninit::<[i16; ROWS_CAP]>::uninit();
    let rows = zeroed_prefix(&mut rows_buf, ROWS_CAP);
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let taps = p.kernel_h * p.kernel_w;
    let row_lanes = p.stride_w * plan.width;
    let per_group = output.chunks_exact_mut(cout_g * out_plane).enumerate();
    for (grp, out_group) in per_group {
        let plane = ops
            .input
            .get(grp * in_plane..(grp + 1) * in_plane)
            .unwrap_or(&[]);
        let mut oy0 = 0;
        while oy0 < p.out_h {
            let band = Band::new(p, oy0, row_lanes);
            widen_rows(p, plane, band.iy0, band.iy1, plan.width, rows);
            let mut oc = 0;
            while oc < cout_g {
                let first = grp * cout_g + oc;
                let group_ops = Operands {
                    input: &[],
                    weights: ops.weights.get(first * taps..).unwrap_or(&[]),
                    bias: ops.bias.get(first..).unwrap_or(&[]),
                    multiplier: ops.multiplier.get(first..).unwrap_or(&[]),
                    shift: ops.shift.get(first..).unwrap_or(&[]),
                };
                let out = out_group.get_mut(oc * out_plane..).unwrap_or(&mut []);
                let job = Job {
                    p,
                    plan,
                    rows,
                    band: &band,
                    ops: &group_ops,
                };
                let left = cout_g - oc;
                oc += match left {
                    1 => job.run::<1>(out, out_plane),
                    2 | 3 => job.run::<2>(out, out_plane),
                    _ => job.run::<MAX_M>(out, out_plane),
                };
            }
            oy0 = band.oy1;
        }
    }
}

/// Output rows `oy0..oy1` and the input rows `iy0..iy1` they read, which
/// fit the row buffer.
struct Band {
    oy0: usize,
    oy1: usize,
    iy0: usize,
    iy1: usize,
}

impl Band {
    /// The longest band from `oy0` whose input rows fit (at least one output
    /// row: the plan checked that one fits).
    fn new(p: &ConvParams, oy0: usize, row_lanes: usize) -> Band {
        let reach = (p.kernel_h - 1) * p.dilation_h;
        let rows_for = |oy1: usize| {
            let iy0 = (oy0 * p.stride_h).saturating_sub(p.pad_top).min(p.in_h);
            let last = ((oy1 - 1) * p.stride_h + reach + 1).saturating_sub(p.pad_top);
            (iy0, last.min(p.in_h).max(iy0))
        };
        let mut oy1 = oy0 + 1;
        while oy1 < p.out_h {
            let (iy0, iy1) = rows_for(oy1 + 1);
            if (iy1 - iy0) * row_lanes > ROWS_CAP {
                break;
            }
            oy1 += 1;
        }
        let (iy0, iy1) = rows_for(oy1);
        Band { oy0, oy1, iy0, iy1 }
    }
}

/// Widens input rows `iy0..iy1` of `plane` into `rows`: row `i`, phase `r`
/// at `(i·s + r)·width`, lane `j` = padded column `s·j + r` (`x − zp`, 0 in
/// the padding).
#[target_feature(enable = "avx2")]
fn widen_rows(
    p: &ConvParams,
    plane: &[i8],
    iy0: usize,
    iy1: usize,
    width: usize,
    rows: &mut [i16],
) {
    let s = p.stride_w;
    let zp = p.input_zero_point;
    for (i, iy) in (iy0..iy1).enumerate() {
        let src = plane.get(iy * p.in_w..(iy + 1) * p.in_w).unwrap_or(&[]);
        for r in 0..s {
            let at = (i * s + r) * width;
            let Some(dst) = rows.get_mut(at..at + width) else {
                return;
            };
            if s == 1 {
                widen_contiguous(src, p.pad_left, zp, dst);
                continue;
            }
            for (j, d) in dst.iter_mut().enumerate() {
                let col = (s * j + r).wrapping_sub(p.pad_left);
                *d = src.get(col).map_or(0, |&x| (i32::from(x) - zp) as i16);
            }
        }
    }
}

/// `dst[j] = src[j − pad] − zp`, 0 outside `src`, 16 lanes at a time.
#[target_feature(enable = "avx2")]
fn widen_contiguous(src: &[i8], pad: usize, zp: i32, dst: &mut [i16]) {
    let pad = pad.min(dst.len());
    let (front, rest) = dst.split_at_mut(pad);
    front.fill(0);
    let zp16 = _mm256_set1_epi16(zp as i16);
    let n = src.len().min(rest.len());
    let mut i = 0;
    while i + 16 <= n {
        let (Some(s16), Some(d16)) = (src.get(i..i + 16), rest.get_mut(i..i + 16)) else {
            break;
        };
        // SAFETY: 16 bytes to load, room for 16 `i16`.
        unsafe {
            let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(s16.as_ptr().cast()));
            _mm256_storeu_si256(d16.as_mut_ptr().cast(), _mm256_sub_epi16(v, zp16));
        }
        i += 16;
    }
    for (j, d) in rest.iter_mut().enumerate().skip(i) {
        *d = src.get(j).map_or(0, |&x| (i32::from(x) - zp) as i16);
    }
}

/// One band of one group for some output channels.
struct Job<'a> {
    p: &'a ConvParams,
    plan: &'a SlidingPlan,
    rows: &'a [i16],
    band: &'a Band,
    /// The operands from the first output channel of the pass on.
    ops: &'a Operands<'a>,
}

impl Job<'_> {
    /// Output channels `0..M` of `ops` over the band's rows into `out`
    /// (channel `c` at `c·out_plane`); returns `M`.
    #[target_feature(enable = "avx2")]
    fn run<const M: usize>(&self, out: &mut [i8], out_plane: usize) -> usize {
        let p = self.p;
        let taps = p.kernel_h * p.kernel_w;
        let entries = self.plan.entries();
        // Weight pairs per entry and channel, broadcast at use.
        let mut pairs = [[0i32; M]; MAX_ENTRIES];
        for (e, pair) in entries.iter().zip(pairs.iter_mut()) {
            for (c, v) in pair.iter_mut().enumerate() {
                let w = |kx: usize| {
                    let at = c * taps + e.ky * p.kernel_w + kx;
                    self.ops.weights.get(at).map_or(0, |&w| i32::from(w))
                };
                let hi = e.kx_b.map_or(0, w);
                *v = (w(e.kx_a) & 0xffff) | (hi << 16);
            }
        }
        let zero = _mm256_setzero_si256();
        let mut rq = [None; M];
        for (c, r) in rq.iter_mut().enumerate() {
            let m = self.ops.multiplier.get(c).copied().unwrap_or(0);
            let s = self.ops.shift.get(c).map_or(0, |&v| i32::from(v));
            *r = Some(Requant::splat(m, s, p.output_zero_point));
        }
        let mut bias = [zero; M];
        for (c, b) in bias.iter_mut().enumerate() {
            *b = _mm256_set1_epi32(self.ops.bias.get(c).copied().unwrap_or(0));
        }
        let lo = _mm_set1_epi8(p.act_min as i8);
        let hi = _mm_set1_epi8(p.act_max as i8);
        let row_lanes = p.stride_w * self.plan.width;
        for oy in self.band.oy0..self.band.oy1 {
            // The entries whose kernel row lands inside the input, with the
            // start of their phase row in the buffer.
            let mut live = [(0usize, 0usize); MAX_ENTRIES];
            let mut n_live = 0;
            for (e_idx, e) in entries.iter().enumerate() {
                let iy = oy * p.stride_h + e.ky * p.dilation_h;
                if iy < p.pad_top || iy - p.pad_top >= p.in_h {
                    continue;
                }
                let band_row = iy - p.pad_top - self.band.iy0;
                let start = band_row * row_lanes + e.phase * self.plan.width + e.q;
                if let Some(l) = live.get_mut(n_live) {
                    *l = (start, e_idx);
                    n_live += 1;
                }
            }
            let live = live.get(..n_live).unwrap_or(&[]);
            let mut ox0 = 0;
            while ox0 < p.out_w {
                let sums = self.slide::<M>(live, &pairs, ox0, bias);
                let len = (p.out_w - ox0).min(16);
                for (c, ((e, o), r)) in sums.iter().zip(&rq).enumerate() {
                    let Some(r) = r else { continue };
                    // Even outputs in `e`, odd in `o`: back into order.
                    let lo_half = _mm256_unpacklo_epi32(*e, *o);
                    let hi_half = _mm256_unpackhi_epi32(*e, *o);
                    let first = r.apply(_mm256_permute2x128_si256::<0x20>(lo_half, hi_half));
                    let second = r.apply(_mm256_permute2x128_si256::<0x31>(lo_half, hi_half));
                    let mut bytes = [0i8; 16];
                    store_i8x16(&mut bytes, 0, pack16(first, second, lo, hi));
                    let at = c * out_plane + oy * p.out_w + ox0;
                    if let Some(dst) = out.get_mut(at..at + len) {
                        dst.copy_from_slice(bytes.get(..len).unwrap_or(&[]));
                    }
                }
                ox0 += 16;
            }
        }
        M
    }

    /// The even- and odd-output sums of 16 outputs from `ox0`, per channel.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn slide<const M: usize>(
        &self,
        live: &[(usize, usize)],
        pairs: &[[i32; M]; MAX_ENTRIES],
        ox0: usize,
        bias: [__m256i; M],
    ) -> [(__m256i, __m256i); M] {
        let mut acc = bias.map(|b| (b, b));
        for &(start, e_idx) in live {
            let at = start + ox0;
            let (Some(even), Some(pair)) = (self.rows.get(at..at + 17), pairs.get(e_idx)) else {
                continue;
            };
            // SAFETY: `even` holds 17 `i16`: 16 from its start and 16 from
            // its second lane can be loaded (unaligned).
            let (xe, xo) = unsafe {
                (
                    _mm256_loadu_si256(even.as_ptr().cast()),
                    _mm256_loadu_si256(even.as_ptr().add(1).cast()),
                )
            };
            for ((a_e, a_o), &w) in acc.iter_mut().zip(pair) {
                let b = _mm256_set1_epi32(w);
                *a_e = _mm256_add_epi32(*a_e, _mm256_madd_epi16(xe, b));
                *a_o = _mm256_add_epi32(*a_o, _mm256_madd_epi16(xo, b));
            }
        }
        acc
    }
}
