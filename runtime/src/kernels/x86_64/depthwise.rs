//! One input channel per group (depthwise, or a single-channel input):
//! taps slid along widened rows, vectorized over output positions.
//!
//! Each group's input plane is widened into a [`band`](super::band) of
//! `x − zp` lanes in `i16`, zero-padded and split into stride phases, so
//! 16 consecutive (flat) outputs read 16 consecutive lanes for each tap.
//! Two taps of one kernel row and phase that are `s` apart sit in
//! adjacent lanes: as one `i32` they are a `vpmaddwd` pair. A load at
//! `t0 + offset` gives the pairs of the even outputs `t0 + 2i`, one at
//! `t0 + offset + 1` those of the odd outputs, so two `vpmaddwd` add two
//! taps to 16 outputs. Taps without a partner pair with a zero weight.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::band::{input_row, put_run, Band, Columns, Cursor, Run, MAX_RUNS};
use super::conv::{conv_args_ok, store_i8x16, zeroed_prefix, Operands};
use super::need_avx2;
use super::requant::Requant;
use super::widen::{widen_padded, NarrowRow};
use crate::kernels::reference;
use crate::kernels::ConvParams;

/// Most tap pairs (entries) in a kernel.
const MAX_ENTRIES: usize = 64;
/// `i16` lanes of one band.
const ROWS_CAP: usize = 16 * 1024;
/// Output channels per pass at most.
const MAX_M: usize = 4;
/// Stack taken by the sliding path's buffers.
pub(super) const SCRATCH_BYTES: usize = (ROWS_CAP + SPLIT_LANES) * 2;

/// [`reference::conv_s8`] for one input channel per group, bit for bit, on AVX2.
///
/// Same arguments, layout and preconditions as the reference convolution;
/// meant for depthwise layers (`groups == in_channels`, any channel
/// multiplier), any kernel, stride, dilation and padding within the limits
/// of [`depthwise_conv_avx2_takes`]. Outputs are computed 16 at a time,
/// every output channel of a group from the same widened band.
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
/// tap pairs, and the widened rows of one output row fit in 32 KiB.
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
/// phase `phase` at lanes `q` and `q + 1` of kernel row `ky`'s row.
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
    cols: Columns,
    /// The first (largest) band.
    first: Band,
}

impl SlidingPlan {
    /// `None` when the kernel has more than [`MAX_ENTRIES`] pairs or one
    /// output row's band exceeds [`ROWS_CAP`] lanes.
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
        let mut entries = [Entry::default(); MAX_ENTRIES];
        let mut n_entries = 0;
        for ky in 0..p.kernel_h {
            let mut i = 0;
            while let Some(&(phase, q, kx_a)) = taps.get(i) {
                let partner = taps
                    .get(i + 1)
                    .filter(|t| t.0 == phase && t.1.checked_sub(1) == Some(q));
                *entries.get_mut(n_entries)? = Entry {
                    ky,
                    phase,
                    q,
                    kx_a,
                    kx_b: partner.map(|t| t.2),
                };
                n_entries += 1;
                i += if partner.is_some() { 2 } else { 1 };
            }
        }
        let cols = Columns::new(p)?;
        let first = Band::new(p, &cols, 0, 1, ROWS_CAP)?;
        Some(SlidingPlan {
            entries,
            n_entries,
            cols,
            first,
        })
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
    let rows = zeroed_prefix(&mut rows_buf, plan.first.lanes(p, 1));
    // The stride-2 staging row, when it fits.
    let mut split_buf = MaybeUninit::<[i16; SPLIT_LANES]>::uninit();
    let split_lanes = if p.stride_w == 2 {
        2 * plan.cols.wd + 32
    } else {
        0
    };
    let split = zeroed_prefix(&mut split_buf, split_lanes);
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let taps = p.kernel_h * p.kernel_w;
    let mut band = plan.first;
    loop {
        for grp in 0..p.groups {
            // The plane and the rest of the input (read, masked, by the
            // 16-byte row loads).
            let plane = ops.input.get(grp * in_plane..).unwrap_or(&[]);
            widen_band(p, &plan.cols, &band, plane, rows, split);
            let mut oc = 0;
            while oc < cout_g {
                let first = grp * cout_g + oc;
                let pass_ops = Operands {
                    input: &[],
                    weights: ops.weights.get(first * taps..).unwrap_or(&[]),
                    bias: ops.bias.get(first..).unwrap_or(&[]),
                    multiplier: ops.multiplier.get(first..).unwrap_or(&[]),
                    shift: ops.shift.get(first..).unwrap_or(&[]),
                };
                let out = output.get_mut(first * out_plane..).unwrap_or(&mut []);
                let job = Job {
                    p,
                    plan,
                    rows,
                    band: &band,
                    ops: &pass_ops,
                };
                oc += match cout_g - oc {
                    1 => job.run::<1>(out, out_plane),
                    2 | 3 => job.run::<2>(out, out_plane),
                    _ => job.run::<MAX_M>(out, out_plane),
                };
            }
        }
        match Band::new(p, &plan.cols, band.oy1, 1, ROWS_CAP) {
            Some(next) => band = next,
            None => return,
        }
    }
}

/// Widens the band's rows of `plane` into `rows`: phase `r` at `r·pitch`,
/// band row `i` at `i·wd` in it, lane `j` = padded column `s·j + r`
/// (`x − zp`, 0 in the padding). Rows go in order, so a row's 16-lane
/// stores may spill into the next row's lanes (or the slack) before that
/// row is written.
#[target_feature(enable = "avx2")]
fn widen_band(
    p: &ConvParams,
    cols: &Columns,
    band: &Band,
    plane: &[i8],
    rows: &mut [i16],
    split: &mut [i16],
) {
    let s = p.stride_w;
    let wd = cols.wd;
    let zp = p.input_zero_point;
    // Without horizontal padding at stride 1 the band rows are the input
    // rows back to back: a run of them is widened as one.
    let contiguous = s == 1 && p.pad_left == 0 && wd == p.in_w;
    // (Rows of at most 16 lanes: one store covers a whole row.)
    let narrow = if s == 1 && wd <= 16 {
        NarrowRow::new(p.pad_left, p.in_w, zp)
    } else {
        None
    };
    let mut i = 0;
    while i < band.rows {
        let iy = input_row(p, band, i);
        if let Some(nr) = narrow {
            let v = match iy {
                Some(iy) => nr.lanes(plane.get(iy * p.in_w..).unwrap_or(&[])),
                None => Some(_mm256_setzero_si256()),
            };
            if let (Some(v), Some(d)) = (v, rows.get_mut(i * wd..i * wd + 16)) {
                // SAFETY: room for 16 `i16`.
                unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) };
                i += 1;
                continue;
            }
        }
        let mut run = 1;
        if contiguous && iy.is_some() {
            while i + run < band.rows && input_row(p, band, i + run).is_some() {
                run += 1;
            }
        }
        let src = match iy {
            Some(iy) => plane.get(iy * p.in_w..).unwrap_or(&[]),
            None => &[],
        };
        let n = if src.is_empty() {
            0
        } else {
            (run * p.in_w).min(src.len())
        };
        if s == 1 {
            widen_padded(src, n, p.pad_left, zp, rows, i * wd, run * wd);
        } else if s == 2 && 2 * wd + 32 <= split.len() {
            widen_padded(src, n, p.pad_left, zp, split, 0, 2 * wd);
            split_phases(split, wd, rows, i * wd, band.pitch);
        } else {
            for r in 0..s {
                let at = r * band.pitch + i * wd;
                let dst = rows.get_mut(at..at + wd).unwrap_or(&mut []);
                for (j, d) in dst.iter_mut().enumerate() {
                    let col = (s * j + r).wrapping_sub(p.pad_left);
                    let x = src.get(col).filter(|_| col < n);
                    *d = x.map_or(0, |&x| (i32::from(x) - zp) as i16);
                }
            }
        }
        i += run;
    }
}

/// Lanes of the staging row for the stride-2 split.
const SPLIT_LANES: usize = 4096;

/// Splits a padded row (`split`, `2·wd` lanes) into its two stride
/// phases: even lanes to `rows[at..]`, odd lanes to `rows[pitch + at..]`.
#[target_feature(enable = "avx2")]
fn split_phases(split: &[i16], wd: usize, rows: &mut [i16], at: usize, pitch: usize) {
    // Per 128-bit half: the 4 even lanes, then the 4 odd ones.
    let order = _mm256_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7,
        10, 11, 14, 15,
    );
    let mut j = 0;
    while j < wd {
        let Some(src) = split.get(2 * j..2 * j + 32) else {
            return;
        };
        // SAFETY: `src` holds 32 `i16`: two loads of 16.
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(src.as_ptr().cast()),
                _mm256_loadu_si256(src.as_ptr().add(16).cast()),
            )
        };
        // [evens 8 | odds 8] of each.
        let a = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(a, order));
        let b = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(b, order));
        let even = _mm256_permute2x128_si256::<0x20>(a, b);
        let odd = _mm256_permute2x128_si256::<0x31>(a, b);
        for (phase, v) in [(0, even), (pitch, odd)] {
            if let Some(d) = rows.get_mut(phase + at + j..phase + at + j + 16) {
                // SAFETY: room for 16 `i16`.
                unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) };
            }
        }
        j += 16;
    }
}

/// The 16 output bytes, in order, of even-output sums `e` and odd-output
/// sums `o` (outputs `2i` and `2i + 1` in lane `i`): requantized, saturated
/// to `i8` and clamped to `[lo, hi]` like `requant::pack16`, put back in order
/// with one byte shuffle after the packs rather than lane shuffles before.
#[target_feature(enable = "avx2")]
#[inline]
fn interleaved_bytes(r: &Requant, e: __m256i, o: __m256i, lo: __m128i, hi: __m128i) -> __m128i {
    // Per 128-bit half: [e0..3 o0..3 | e4..7 o4..7] in `i16`, then the
    // bytes [e0..3 o0..3 e4..7 o4..7].
    let w = _mm256_packs_epi32(r.apply(e), r.apply(o));
    let b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
    let order = _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    _mm_min_epi8(_mm_max_epi8(_mm_shuffle_epi8(b, order), lo), hi)
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
    /// Output channels `0..M` of `ops` over the band into `out` (channel
    /// `c` at `c·out_plane`); returns `M`.
    #[target_feature(enable = "avx2")]
    fn run<const M: usize>(&self, out: &mut [i8], out_plane: usize) -> usize {
        let p = self.p;
        let wd = self.plan.cols.wd;
        let taps = p.kernel_h * p.kernel_w;
        // Per entry: its lane offset in the band and its weight pairs.
        let mut offsets = [0usize; MAX_ENTRIES];
        let mut pairs = [[0i32; M]; MAX_ENTRIES];
        let entries = self.plan.entries();
        for ((e, off), pair) in entries.iter().zip(&mut offsets).zip(&mut pairs) {
            *off = e.phase * self.band.pitch + e.ky * p.dilation_h * wd + e.q;
            for (c, v) in pair.iter_mut().enumerate() {
                let w = |kx: usize| {
                    let at = c * taps + e.ky * p.kernel_w + kx;
                    self.ops.weights.get(at).map_or(0, |&w| i32::from(w))
                };
                let hi = e.kx_b.map_or(0, w);
                *v = (w(e.kx_a) & 0xffff) | (hi << 16);
            }
        }
        let offsets = offsets.get(..entries.len()).unwrap_or(&[]);
        // The largest offset, once per pass rather than per tile.
        let reach = offsets.iter().copied().max().unwrap_or(0);
        let pairs = pairs.get(..entries.len()).unwrap_or(&[]);
        let rq: [Requant; M] = core::array::from_fn(|c| {
            let m = self.ops.multiplier.get(c).copied().unwrap_or(0);
            let s = self.ops.shift.get(c).map_or(0, |&v| i32::from(v));
            Requant::splat(m, s, p.output_zero_point)
        });
        let bias: [i32; M] = core::array::from_fn(|c| self.ops.bias.get(c).copied().unwrap_or(0));
        let lo = _mm_set1_epi8(p.act_min as i8);
        let hi = _mm_set1_epi8(p.act_max as i8);
        let mut runs = [Run::default(); MAX_RUNS];
        // 16 bytes and 16 of slack for `put_run`.
        let mut bytes = [0i8; 32];
        // One output row: flat position `t` is output `t`, so a tile is one
        // run and needs no cursor.
        let one_row = p.out_h == 1;
        for (start, end) in self.band.segments(p, wd) {
            let mut cursor = Cursor::at(p, self.band, wd, start);
            let mut t0 = start;
            while t0 < end {
                let sums = self.slide::<M>(offsets, reach, pairs, t0, bias);
                if one_row && t0 + 16 <= end {
                    // 16 whole outputs in order: stored in place, without
                    // the round trip through `bytes` and `put_run`.
                    for (c, (&(e, o), r)) in sums.iter().zip(&rq).enumerate() {
                        let out_c = out
                            .get_mut(c * out_plane..(c + 1) * out_plane)
                            .unwrap_or(&mut []);
                        store_i8x16(out_c, t0, interleaved_bytes(r, e, o, lo, hi));
                    }
                    t0 += 16;
                    continue;
                }
                let n_runs = if one_row {
                    runs[0] = Run {
                        lane: 0,
                        at: t0,
                        len: (end - t0).min(16),
                    };
                    1
                } else {
                    cursor.take((end - t0).min(16), &mut runs)
                };
                let runs = runs.get(..n_runs).unwrap_or(&[]);
                for (c, (&(e, o), r)) in sums.iter().zip(&rq).enumerate() {
                    store_i8x16(&mut bytes, 0, interleaved_bytes(r, e, o, lo, hi));
                    let out_c = out
                        .get_mut(c * out_plane..(c + 1) * out_plane)
                        .unwrap_or(&mut []);
                    for run in runs {
                        let src = bytes.get(run.lane..).unwrap_or(&[]);
                        put_run(out_c, run.at, src, run.len);
                    }
                }
                t0 += 16;
            }
        }
        M
    }

    /// The even- and odd-output sums of 16 flat outputs from `t0`, per
    /// channel, starting from `bias`; `reach` must be the largest of
    /// `offsets`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn slide<const M: usize>(
        &self,
        offsets: &[usize],
        reach: usize,
        pairs: &[[i32; M]],
        t0: usize,
        bias: [i32; M],
    ) -> [(__m256i, __m256i); M] {
        let zero = _mm256_setzero_si256();
        let mut acc = [(zero, zero); M];
        for (a, &b) in acc.iter_mut().zip(&bias) {
            *a = (_mm256_set1_epi32(b), _mm256_set1_epi32(b));
        }
        // Out of bounds (never, for a band made by `sliding_conv`): no
        // entries.
        let in_bounds = t0 + reach + 17 <= self.rows.len();
        let offsets = if in_bounds { offsets } else { &[] };
        let rows = self.rows.as_ptr();
        for (&off, pair) in offsets.iter().zip(pairs) {
            // SAFETY: `t0 + off + 17 ≤ t0 + reach + 17 ≤ rows.len()` (checked
            // above; `off ≤ reach`, the max of `offsets`, by `run`, the only
            // caller): 16 lanes from `t0 + off` and 16 from the next lane.
            let (xe, xo) = unsafe {
                let at = rows.add(t0 + off);
                (
                    _mm256_loadu_si256(at.cast()),
                    _mm256_loadu_si256(at.add(1).cast()),
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
