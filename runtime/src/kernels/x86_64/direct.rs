//! Direct convolution over a widened band, with input channels packed into
//! `i32` lanes.
//!
//! The group's input is widened once into a [`band`](super::band) whose
//! lanes each hold a *pack* of input channels at one padded position. Output
//! position `t` then reads, for tap `(ky, kx)` of pack `c`, the lane
//! `t + offset(c, ky, kx)`, and 8 consecutive outputs read 8 consecutive
//! lanes: one multiply-accumulate against the broadcast weights of that pack
//! and tap adds the pack's taps to 8 outputs, with no im2col gathering at
//! all. A register tile is up to [`MR`] output channels × 16 outputs; the
//! weight packs of its channels are widened once per band.
//!
//! Two packings ([`Packing`]) share this machinery:
//! - [`PairsI16`] (AVX2): two channels as `i16` `x − zp`, multiplied by
//!   `vpmaddwd` and added with `vpaddd`;
//! - [`QuadsU8`](super::vnni::QuadsU8) (AVX-512 VNNI): four channels as
//!   `u8` `x + 128`, multiplied and added by one `vpdpbusd`.

use core::arch::x86_64::*;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use super::band::{input_row, put_run, Band, Columns, Cursor, Run, MAX_RUNS};
use super::conv::{store_i8x16, zeroed_prefix, Operands};
use super::requant::{pack16, Requant};
use super::tiles::{tiled_conv, TiledPlan};
use super::vnni::{dpbusd_quads, QuadsU8};
use super::widen::{store_pairs16, widen_pairs, NarrowRow};
use crate::kernels::ConvParams;

/// `i32` lanes of one band (one channel pack per lane).
const X_CAP: usize = 8 * 1024;
/// Most channel-pack taps per output channel (`⌈C_in/pack⌉ · kH · kW`).
const MAX_PACK_TAPS: usize = 640;
/// Lanes after the weight rows that a 16-lane store may spill into.
pub(super) const W_SLACK: usize = 16;
/// Most output channels per register tile (passes take 6, 4 or 2).
pub(super) const MR: usize = 6;
/// Vectors of 8 outputs per register tile: with 6 channels, 12
/// accumulators, 2 inputs, a broadcast weight pack and a product fill the
/// 16 registers.
const NR: usize = 2;
/// Outputs per register tile.
const TILE: usize = 8 * NR;
/// Stack taken by the direct path's buffers.
pub(super) const SCRATCH_BYTES: usize = (X_CAP + (MR + 1) * MAX_PACK_TAPS + W_SLACK) * 4;

/// How input channels are packed into the `i32` lanes of the band and of
/// the weight rows, and the instructions that multiply them.
///
/// # Safety
///
/// Every `unsafe fn` here needs a CPU that runs AVX2 and the packing's own
/// instructions (for [`QuadsU8`], AVX-512 VNNI and VL).
pub(super) trait Packing: Sized {
    /// Input channels per lane.
    const CHANNELS: usize;

    /// Widens the band's rows of the group's input (`group_in`, from the
    /// group's first channel on) into `x`: pack `c`, phase `r` at
    /// `c·pair_stride + r·pitch`, band row `i` at `i·wd` in it; every lane
    /// of every band row is written, the padding included.
    ///
    /// # Safety
    ///
    /// See the trait.
    unsafe fn widen_band(
        p: &ConvParams,
        plan: &DirectPlan,
        band: &Band,
        group_in: &[i8],
        x: &mut [i32],
    );

    /// Widens the weight rows of `rows` output channels (`k = cin_g·kH·kW`
    /// taps each, back to back in `w_rows`) into the first `width` rows of
    /// `w`: row `r` at `r·k_packs`, lane `c·taps + tap` = the pack of
    /// channels `c·CHANNELS…` at `tap` (0 for missing channels or rows).
    /// A step may spill up to 15 lanes past its block, into lanes written
    /// after it (or [`W_SLACK`]).
    ///
    /// # Safety
    ///
    /// See the trait.
    unsafe fn widen_weights(
        p: &ConvParams,
        plan: &DirectPlan,
        w_rows: &[i8],
        rows: usize,
        width: usize,
        w: &mut [i32],
    );

    /// What the packed sum of one output channel (weights `w_row`) adds to
    /// the reference's `Σ (x − zp)·w`, subtracted from its bias.
    ///
    /// # Safety
    ///
    /// See the trait.
    unsafe fn bias_offset(p: &ConvParams, w_row: &[i8]) -> i32;

    /// [`Pass::run`] for `M` channels.
    ///
    /// # Safety
    ///
    /// See the trait.
    unsafe fn run_pass<const M: usize>(
        pass: &Pass<'_, Self>,
        q: (&[i32], &[i32], &[i8]),
        out: &mut [i8],
        out_plane: usize,
    );
}

/// Two channels per lane, `(x[2c] − zp) | (x[2c+1] − zp) << 16`, multiplied
/// by `vpmaddwd` (AVX2).
pub(super) struct PairsI16;

/// How a convolution runs on the direct path.
pub(super) struct DirectPlan {
    pub cols: Columns,
    first: Band,
    /// Channel packs per group.
    pub packs: usize,
    /// Taps per kernel plane.
    pub taps: usize,
}

impl DirectPlan {
    /// `None` when the reduction has more than [`MAX_PACK_TAPS`]
    /// channel-pack taps or one output row's band exceeds [`X_CAP`] lanes.
    pub(super) fn new<P: Packing>(p: &ConvParams) -> Option<DirectPlan> {
        let cin_g = p.in_channels.checked_div(p.groups)?;
        let packs = cin_g.div_ceil(P::CHANNELS);
        let taps = p.kernel_h.checked_mul(p.kernel_w)?;
        if taps == 0 || packs.checked_mul(taps)? > MAX_PACK_TAPS {
            return None;
        }
        let cols = Columns::new(p)?;
        let first = Band::new(p, &cols, 0, packs, X_CAP)?;
        Some(DirectPlan {
            cols,
            first,
            packs,
            taps,
        })
    }
}

/// How a convolution runs on the direct path: in one piece when one output
/// row's band fits, else in tiles of its output plane
/// ([`tiles`](super::tiles)).
pub(super) enum DirectRun {
    Whole(DirectPlan),
    Tiled(TiledPlan),
}

impl DirectRun {
    /// `None` when the reduction has more than [`MAX_PACK_TAPS`]
    /// channel-pack taps, or neither a whole output row's band nor a tile's
    /// fits.
    pub(super) fn new<P: Packing>(p: &ConvParams) -> Option<DirectRun> {
        match DirectPlan::new::<P>(p) {
            Some(plan) => Some(DirectRun::Whole(plan)),
            None => TiledPlan::new::<P>(p).map(DirectRun::Tiled),
        }
    }

    /// Runs `p`. Preconditions hold, `output` not empty, `self` made for
    /// `p` and `P`.
    ///
    /// # Safety
    ///
    /// The CPU runs `P`'s instructions (see [`Packing`]).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run<P: Packing>(
        &self,
        p: &ConvParams,
        ops: &Operands<'_>,
        output: &mut [i8],
    ) {
        match self {
            // SAFETY: the CPU runs `P` (this function's contract).
            DirectRun::Whole(plan) => unsafe { direct_conv::<P>(p, plan, ops, output) },
            // SAFETY: as above.
            DirectRun::Tiled(plan) => unsafe { tiled_conv::<P>(p, plan, ops, output) },
        }
    }
}

/// The lane offset of every channel-pack tap `e = c·taps + tap` in a band
/// (pack `c`'s planes, tap `(ky, kx)`'s phase and row).
fn entry_offsets(p: &ConvParams, plan: &DirectPlan, band: &Band, offsets: &mut [u32]) {
    let pack_stride = band.pitch * p.stride_w;
    let mut e = offsets.iter_mut();
    for c in 0..plan.packs {
        for ky in 0..p.kernel_h {
            let row = c * pack_stride + ky * p.dilation_h * plan.cols.wd;
            let mut o = 0;
            for _ in 0..p.kernel_w {
                let (phase, q) = if p.stride_w == 1 {
                    (0, o)
                } else {
                    (o % p.stride_w, o / p.stride_w)
                };
                if let Some(off) = e.next() {
                    // Bands hold at most `X_CAP` lanes, so the offset fits.
                    *off = (row + phase * band.pitch + q) as u32;
                }
                o += p.dilation_w;
            }
        }
    }
}

/// The direct path over every group. Preconditions hold, `output` not
/// empty, `plan` made for `p` and `P`.
///
/// # Safety
///
/// The CPU runs `P`'s instructions (see [`Packing`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn direct_conv<P: Packing>(
    p: &ConvParams,
    plan: &DirectPlan,
    ops: &Operands<'_>,
    output: &mut [i8],
) {
    let mut x_buf = MaybeUninit::<[i32; X_CAP]>::uninit();
    let x = zeroed_prefix(&mut x_buf, plan.first.lanes(p, plan.packs));
    let k_packs = plan.packs * plan.taps;
    let mut w_buf = MaybeUninit::<[i32; MR * MAX_PACK_TAPS + W_SLACK]>::uninit();
    let w = zeroed_prefix(&mut w_buf, MR * k_packs + W_SLACK);
    let mut off_buf = MaybeUninit::<[u32; MAX_PACK_TAPS]>::uninit();
    let offsets = zeroed_prefix(&mut off_buf, k_packs);
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let out_plane = p.out_h * p.out_w;
    let k = cin_g * plan.taps;
    let mut band = plan.first;
    loop {
        entry_offsets(p, plan, &band, offsets);
        for grp in 0..p.groups {
            let group_in = ops.input.get(grp * cin_g * in_plane..).unwrap_or(&[]);
            // SAFETY: the CPU runs `P` (this function's contract).
            unsafe { P::widen_band(p, plan, &band, group_in, x) };
            let mut oc = 0;
            while oc < cout_g {
                // 6 channels a pass, the rest as 4 and/or 2 (an odd last
                // one with a zero row).
                let rows = match cout_g - oc {
                    n if n >= 6 => 6,
                    n if n >= 4 => 4,
                    n => n,
                };
                let first = grp * cout_g + oc;
                let w_rows = ops
                    .weights
                    .get(first * k..(first + rows) * k)
                    .unwrap_or(&[]);
                let width = if rows > 4 {
                    6
                } else if rows > 2 {
                    4
                } else {
                    2
                };
                // SAFETY: as above.
                unsafe { P::widen_weights(p, plan, w_rows, rows, width, w) };
                let mut pass = Pass::new(p, plan.cols.wd, &band, offsets, x, w, rows);
                for (r, b) in pass.bias_offset.iter_mut().enumerate().take(rows) {
                    let w_row = w_rows.get(r * k..(r + 1) * k).unwrap_or(&[]);
                    // SAFETY: as above.
                    *b = unsafe { P::bias_offset(p, w_row) };
                }
                let q = (
                    ops.bias.get(first..).unwrap_or(&[]),
                    ops.multiplier.get(first..).unwrap_or(&[]),
                    ops.shift.get(first..).unwrap_or(&[]),
                );
                let out = output.get_mut(first * out_plane..).unwrap_or(&mut []);
                // SAFETY: as above.
                unsafe {
                    match width {
                        6 => P::run_pass::<6>(&pass, q, out, out_plane),
                        4 => P::run_pass::<4>(&pass, q, out, out_plane),
                        _ => P::run_pass::<2>(&pass, q, out, out_plane),
                    }
                }
                oc += rows;
            }
        }
        match Band::new(p, &plan.cols, band.oy1, plan.packs, X_CAP) {
            Some(next) => band = next,
            None => return,
        }
    }
}

impl Packing for PairsI16 {
    const CHANNELS: usize = 2;

    #[target_feature(enable = "avx2")]
    unsafe fn widen_band(
        p: &ConvParams,
        plan: &DirectPlan,
        band: &Band,
        group_in: &[i8],
        x: &mut [i32],
    ) {
        widen_band(p, plan, band, group_in, x);
    }

    #[target_feature(enable = "avx2")]
    unsafe fn widen_weights(
        p: &ConvParams,
        plan: &DirectPlan,
        w_rows: &[i8],
        rows: usize,
        width: usize,
        w: &mut [i32],
    ) {
        widen_weight_pairs(p, plan, w_rows, rows, width, w);
    }

    /// Pairs hold `x − zp` itself: nothing to take off.
    unsafe fn bias_offset(_: &ConvParams, _: &[i8]) -> i32 {
        0
    }

    #[target_feature(enable = "avx2")]
    unsafe fn run_pass<const M: usize>(
        pass: &Pass<'_, Self>,
        q: (&[i32], &[i32], &[i8]),
        out: &mut [i8],
        out_plane: usize,
    ) {
        pass.run::<M>(q, out, out_plane);
    }
}

/// `acc + vpmaddwd(x, w)`: two channels' taps added to 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn madd_pairs(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
}

/// Widens the band's rows of the group's input into channel-pair lanes:
/// lane `j` of phase `r` = padded column `s·j + r` of channels `2c` (low
/// half) and `2c + 1` (high half), `x − zp`, 0 in the padding (the layout
/// of [`widen_band_rows`]).
#[target_feature(enable = "avx2")]
fn widen_band(p: &ConvParams, plan: &DirectPlan, band: &Band, group_in: &[i8], x: &mut [i32]) {
    let wd = plan.cols.wd;
    let cin_g = p.in_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let zp = p.input_zero_point;
    // (Rows of at most 16 lanes: one store covers a whole row.)
    let narrow = if p.stride_w == 1 && wd <= 16 {
        NarrowRow::new(p.pad_left, p.in_w, zp)
    } else {
        None
    };
    let narrow_row = |c: usize, i: usize, iy: Option<usize>, x: &mut [i32]| {
        let Some(nr) = narrow else {
            return false;
        };
        let row = |ic: usize| match iy {
            Some(iy) if ic < cin_g => {
                nr.lanes(group_in.get(ic * in_plane + iy * p.in_w..).unwrap_or(&[]))
            }
            _ => Some(_mm256_setzero_si256()),
        };
        match (row(2 * c), row(2 * c + 1)) {
            (Some(a), Some(b)) => store_pairs16(a, b, x, c * band.pitch + i * wd),
            _ => false,
        }
    };
    let run = |[(a, na), (b, nb)]: [(&[i8], usize); 2], x: &mut [i32], at: usize, len: usize| {
        widen_pairs(a, na, b, nb, p.pad_left, zp, x, at, len);
    };
    let lane = |[(a, na), (b, nb)]: &[(&[i8], usize); 2], col: usize| {
        let half = |src: &[i8], n: usize| -> i32 {
            let v = src.get(col).filter(|_| col < n);
            v.map_or(0, |&v| (i32::from(v) - zp) & 0xffff)
        };
        half(a, *na) | (half(b, *nb) << 16)
    };
    widen_band_rows(p, plan, band, group_in, x, narrow_row, run, lane);
}

/// The loop that every packing's band widening shares: pack `c`, phase `r`
/// at `(c·s + r)·pitch`, band row `i` at `i·wd` in it. For each pack and
/// band row, the pack's `CH` channel rows, each as the row and what follows
/// it with its length (empty for a padding row or a missing channel).
/// `first(c, i, row, x)` may write band row `i` itself and return `true`
/// (a fast path); else at stride 1 `run(rows, x, at, len)` writes `len`
/// lanes from `at` (a run of band rows at once when they are the input's
/// rows back to back: no horizontal padding), and at a larger stride lane
/// `j` of phase `r` is `lane(&rows, col)` for padded column
/// `col = s·j + r − pad_left` (wrapping below 0). Rows go in order, so a
/// row's stores may spill into the next row's lanes (or the slack) before
/// that row is written.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn widen_band_rows<'a, const CH: usize>(
    p: &ConvParams,
    plan: &DirectPlan,
    band: &Band,
    group_in: &'a [i8],
    x: &mut [i32],
    mut first: impl FnMut(usize, usize, Option<usize>, &mut [i32]) -> bool,
    mut run: impl FnMut([(&'a [i8], usize); CH], &mut [i32], usize, usize),
    lane: impl Fn(&[(&'a [i8], usize); CH], usize) -> i32,
) {
    let s = p.stride_w;
    let wd = plan.cols.wd;
    let cin_g = p.in_channels / p.groups;
    let in_plane = p.in_h * p.in_w;
    let contiguous = s == 1 && p.pad_left == 0 && wd == p.in_w;
    for c in 0..plan.packs {
        let mut i = 0;
        while i < band.rows {
            let iy = input_row(p, band, i);
            if first(c, i, iy, x) {
                i += 1;
                continue;
            }
            let mut rows_in_run = 1;
            if contiguous && iy.is_some() {
                while i + rows_in_run < band.rows && input_row(p, band, i + rows_in_run).is_some() {
                    rows_in_run += 1;
                }
            }
            let rows: [(&[i8], usize); CH] = core::array::from_fn(|j| match iy {
                Some(iy) if CH * c + j < cin_g => {
                    let at = (CH * c + j) * in_plane + iy * p.in_w;
                    let src = group_in.get(at..).unwrap_or(&[]);
                    (src, (rows_in_run * p.in_w).min(src.len()))
                }
                _ => (&[][..], 0),
            });
            if s == 1 {
                run(rows, x, c * band.pitch + i * wd, rows_in_run * wd);
            } else {
                for r in 0..s {
                    let at = (c * s + r) * band.pitch + i * wd;
                    let dst = x.get_mut(at..at + wd).unwrap_or(&mut []);
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = lane(&rows, (s * j + r).wrapping_sub(p.pad_left));
                    }
                }
            }
            i += rows_in_run;
        }
    }
}

/// Widens the weight rows of `rows` output channels (`k = cin_g·kH·kW`
/// taps each, back to back in `w_rows`) into the first `width` rows of
/// `w`: row `r` at `r·k_pairs`, pair `c·taps + tap` = channels `2c`,
/// `2c + 1` at `tap` (0 for a missing odd channel or row). Several pairs
/// per step where the bytes are there; a step may spill up to 15 pairs
/// past its block, into pairs written after it (or [`W_SLACK`]).
#[target_feature(enable = "avx2")]
fn widen_weight_pairs(
    p: &ConvParams,
    plan: &DirectPlan,
    w_rows: &[i8],
    rows: usize,
    width: usize,
    w: &mut [i32],
) {
    let cin_g = p.in_channels / p.groups;
    let taps = plan.taps;
    let order = small_block_order(taps);
    let whole = |rest: &[i8], w: &mut [i32], at: usize| match order {
        Some(order) => pairs_small_blocks(rest, cin_g / 2, taps, order, w, at),
        None => pairs_large_blocks(rest, cin_g / 2, taps, w, at),
    };
    // A last odd channel pairs with 0.
    let lane = |row: &[i8], c: usize, t: usize| {
        let lo = row
            .get(2 * c * taps + t)
            .map_or(0, |&v| i32::from(v) & 0xffff);
        let hi = if 2 * c + 1 < cin_g {
            row.get((2 * c + 1) * taps + t).map_or(0, |&v| i32::from(v))
        } else {
            0
        };
        lo | (hi << 16)
    };
    widen_weight_rows(p, plan, (w_rows, rows, width), w, whole, lane);
}

/// The loop that every packing's weight widening shares: for each of the
/// first `width` rows, `whole(rest, w, at)` packs as many whole channel
/// packs of the row (and whatever rows follow it, `rest`) as its vector
/// loads can reach and returns how many; the packs after them (near the
/// end of the weights, or a last partial pack) are written one lane at a
/// time as `lane(row, pack, tap)`; rows from `rows` on are 0.
#[inline(always)]
pub(super) fn widen_weight_rows(
    p: &ConvParams,
    plan: &DirectPlan,
    (w_rows, rows, width): (&[i8], usize, usize),
    w: &mut [i32],
    whole: impl Fn(&[i8], &mut [i32], usize) -> usize,
    lane: impl Fn(&[i8], usize, usize) -> i32,
) {
    let taps = plan.taps;
    let k = p.in_channels / p.groups * taps;
    let k_packs = plan.packs * taps;
    for r in 0..width.min(MR) {
        let at = r * k_packs;
        if r >= rows {
            w.get_mut(at..at + k_packs).unwrap_or(&mut []).fill(0);
            continue;
        }
        let rest = w_rows.get(r * k..).unwrap_or(&[]);
        let done = whole(rest, w, at);
        let row = rest.get(..k).unwrap_or(&[]);
        let dst = w.get_mut(at..at + k_packs).unwrap_or(&mut []);
        for (e, d) in dst.iter_mut().enumerate().skip(done * taps) {
            *d = lane(row, e / taps, e % taps);
        }
    }
}

/// For `taps ≤ 8`: the byte shuffle that interleaves `8 / taps` whole
/// channel-pair blocks: output byte `2j` is block `b`'s tap `t` (`j = b·taps
/// + t`), byte `2j + 1` the partner channel's, that is input bytes
/// `2·taps·b + t` and `2·taps·b + taps + t`.
#[target_feature(enable = "avx2")]
fn small_block_order(taps: usize) -> Option<__m128i> {
    if taps == 0 || taps > 8 {
        return None;
    }
    let mut order = [0i8; 16];
    let mut j = 0;
    for b in 0..8 / taps {
        for t in 0..taps {
            order[2 * j] = (b * 2 * taps + t) as i8;
            order[2 * j + 1] = (b * 2 * taps + taps + t) as i8;
            j += 1;
        }
    }
    // SAFETY: `order` holds 16 bytes to load.
    Some(unsafe { _mm_loadu_si128(order.as_ptr().cast()) })
}

/// Channel-pair blocks of `taps ≤ 8` taps: `8 / taps` whole blocks per
/// shuffle (`order`, from [`small_block_order`]), widened. Returns how
/// many of the `blocks` it did.
#[target_feature(enable = "avx2")]
fn pairs_small_blocks(
    row: &[i8],
    blocks: usize,
    taps: usize,
    order: __m128i,
    w: &mut [i32],
    at: usize,
) -> usize {
    let per_step = 8 / taps;
    let mut b = 0;
    while b < blocks {
        let src = row.get(2 * taps * b..2 * taps * b + 16);
        let dst = w.get_mut(at + b * taps..at + b * taps + 8);
        let (Some(src), Some(dst)) = (src, dst) else {
            break;
        };
        // SAFETY: 16 bytes to load, room for 8 `i32`.
        unsafe {
            let v = _mm_shuffle_epi8(_mm_loadu_si128(src.as_ptr().cast()), order);
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), _mm256_cvtepi8_epi16(v));
        }
        b += per_step;
    }
    b.min(blocks)
}

/// Channel-pair blocks of more than 8 taps: 16 taps of both channels at a
/// time, interleaved and widened. Returns how many of the `blocks` it did.
#[target_feature(enable = "avx2")]
fn pairs_large_blocks(row: &[i8], blocks: usize, taps: usize, w: &mut [i32], at: usize) -> usize {
    for c in 0..blocks {
        let block = 2 * c * taps;
        let mut t0 = 0;
        while t0 < taps {
            let lo = row.get(block + t0..block + t0 + 16);
            let hi = row.get(block + taps + t0..block + taps + t0 + 16);
            let dst = w.get_mut(at + c * taps + t0..at + c * taps + t0 + 16);
            let (Some(lo), Some(hi), Some(dst)) = (lo, hi, dst) else {
                return c;
            };
            // SAFETY: 16 bytes to load from each, room for 16 `i32`.
            unsafe {
                let lo = _mm_loadu_si128(lo.as_ptr().cast());
                let hi = _mm_loadu_si128(hi.as_ptr().cast());
                // Bytes (lo_t, hi_t) side by side, widened: one pair a lane.
                let first = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(lo, hi));
                let second = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(lo, hi));
                _mm256_storeu_si256(dst.as_mut_ptr().cast(), first);
                _mm256_storeu_si256(dst.as_mut_ptr().add(8).cast(), second);
            }
            t0 += 16;
        }
    }
    blocks
}

/// One pass of up to [`MR`] output channels over a band, for packing `P`.
pub(super) struct Pass<'a, P> {
    p: &'a ConvParams,
    wd: usize,
    band: &'a Band,
    /// Lane offset of each channel-pack tap.
    offsets: &'a [u32],
    /// The largest of `offsets` (set by [`Pass::new`] only).
    reach: usize,
    x: &'a [i32],
    w: &'a [i32],
    /// Real channels (the widened rows past them are 0).
    rows: usize,
    /// [`Packing::bias_offset`] of each channel, taken off its bias.
    bias_offset: [i32; MR],
    packing: PhantomData<P>,
}

impl<'a, P> Pass<'a, P> {
    /// A pass over `band` whose channel-pair taps are at `offsets`; their
    /// largest is found here, once per pass rather than per tile.
    fn new(
        p: &'a ConvParams,
        wd: usize,
        band: &'a Band,
        offsets: &'a [u32],
        x: &'a [i32],
        w: &'a [i32],
        rows: usize,
    ) -> Pass<'a, P> {
        let reach = offsets.iter().copied().max().unwrap_or(0) as usize;
        Pass {
            p,
            wd,
            band,
            offsets,
            reach,
            x,
            w,
            rows,
            bias_offset: [0; MR],
            packing: PhantomData,
        }
    }
}

/// The register-tiled passes for one packing: `run`, `tile` and
/// `accumulate` compiled with the packing's target features (`$features`)
/// and its multiply-accumulate `$mac(acc, x, w) -> acc` (a function with
/// the same features), so that every call inlines.
macro_rules! direct_pass {
    ($packing:ty, $features:literal, $mac:path) => {
        impl Pass<'_, $packing> {
            /// Every segment of the band, [`TILE`] outputs at a time, for `M`
            /// channels; `q` is (bias, multiplier, shift) from the pass's first
            /// channel on, `out` the output from its first channel's plane on.
            #[target_feature(enable = $features)]
            pub(super) fn run<const M: usize>(
                &self,
                q: (&[i32], &[i32], &[i8]),
                out: &mut [i8],
                out_plane: usize,
            ) {
                let (bias, multiplier, shift) = q;
                let zp = self.p.output_zero_point;
                // Rows past `self.rows` get 0s (their outputs are not stored).
                let rq: [Requant; M] = core::array::from_fn(|r| {
                    let m = multiplier.get(r).copied().unwrap_or(0);
                    let s = shift.get(r).map_or(0, |&v| i32::from(v));
                    Requant::splat(m, s, zp)
                });
                let b: [i32; M] = core::array::from_fn(|r| {
                    let offset = self.bias_offset.get(r).copied().unwrap_or(0);
                    bias.get(r).copied().unwrap_or(0).wrapping_sub(offset)
                });
                let lo = _mm_set1_epi8(self.p.act_min as i8);
                let hi = _mm_set1_epi8(self.p.act_max as i8);
                // 16 bytes per channel and room for `put_run`'s last store.
                let mut bytes = [[0i8; 32]; M];
                let mut runs = [Run::default(); MAX_RUNS];
                // One output row: flat position `t` is output `t`, so a tile is one
                // run and needs no cursor.
                let one_row = self.p.out_h == 1;
                for (start, end) in self.band.segments(self.p, self.wd) {
                    let mut cursor = Cursor::at(self.p, self.band, self.wd, start);
                    let mut t0 = start;
                    while t0 < end {
                        let t1 = (t0 + TILE).min(end);
                        if one_row && t1 - t0 == TILE {
                            // 16 whole outputs in order: stored in place, without
                            // the round trip through `bytes` and `put_run`.
                            let ys = self.tile::<M, 2>(t0, &b, &rq, (lo, hi));
                            for (r, &y) in ys.iter().enumerate().take(self.rows) {
                                let out_r = out
                                    .get_mut(r * out_plane..(r + 1) * out_plane)
                                    .unwrap_or(&mut []);
                                store_i8x16(out_r, t0, y);
                            }
                            t0 = t1;
                            continue;
                        }
                        let ys = if t1 - t0 > 8 {
                            self.tile::<M, 2>(t0, &b, &rq, (lo, hi))
                        } else {
                            self.tile::<M, 1>(t0, &b, &rq, (lo, hi))
                        };
                        for (y, &v) in bytes.iter_mut().zip(&ys) {
                            store_i8x16(y, 0, v);
                        }
                        let n_runs = if one_row {
                            runs[0] = Run {
                                lane: 0,
                                at: t0,
                                len: t1 - t0,
                            };
                            1
                        } else {
                            cursor.take(t1 - t0, &mut runs)
                        };
                        for (r, y) in bytes.iter().enumerate().take(self.rows) {
                            let out_r = out
                                .get_mut(r * out_plane..(r + 1) * out_plane)
                                .unwrap_or(&mut []);
                            for run in runs.get(..n_runs).unwrap_or(&[]) {
                                put_run(out_r, run.at, y.get(run.lane..).unwrap_or(&[]), run.len);
                            }
                        }
                        t0 = t1;
                    }
                }
            }

            /// The requantized bytes of `8·N` outputs from `t0` for each channel
            /// (with `N = 1`, the last 8 repeat the first).
            #[target_feature(enable = $features)]
            #[inline]
            fn tile<const M: usize, const N: usize>(
                &self,
                t0: usize,
                bias: &[i32; M],
                rq: &[Requant; M],
                (lo, hi): (__m128i, __m128i),
            ) -> [__m128i; M] {
                let mut acc = [[_mm256_setzero_si256(); N]; M];
                for (a, &b) in acc.iter_mut().zip(bias) {
                    *a = [_mm256_set1_epi32(b); N];
                }
                let acc = self.accumulate::<M, N>(t0, acc);
                // Every row, the zero rows past `self.rows` too (their bytes are
                // not stored): a loop of constant length keeps the accumulators in
                // registers, where a `take(self.rows)` spilled and copied them.
                let mut ys = [_mm_setzero_si128(); M];
                for ((acc_r, r), y) in acc.iter().zip(rq).zip(ys.iter_mut()) {
                    let first = r.apply(acc_r[0]);
                    let second = r.apply(acc_r[N - 1]);
                    *y = pack16(first, second, lo, hi);
                }
                ys
            }

            /// `acc[r][v] += Σ_e mac(x[t0 + off(e) + 8v ..], w pack (r, e))`.
            #[target_feature(enable = $features)]
            #[inline]
            fn accumulate<const M: usize, const N: usize>(
                &self,
                t0: usize,
                mut acc: [[__m256i; N]; M],
            ) -> [[__m256i; N]; M] {
                let k_pairs = self.offsets.len();
                let reach = self.reach;
                // Out of bounds (never, for a pass made by `direct_conv`): no
                // entries, rather than an early return, which made the compiler
                // keep `acc` in memory and copy it on every tile.
                let in_bounds =
                    t0 + reach + 8 * N <= self.x.len() && M * k_pairs <= self.w.len() && N <= NR;
                let offsets = if in_bounds { self.offsets } else { &[] };
                let x = self.x.as_ptr();
                let w = self.w.as_ptr();
                for (e, &off) in offsets.iter().enumerate() {
                    let base = t0 + off as usize;
                    let mut xs = [_mm256_setzero_si256(); N];
                    for (v, xv) in xs.iter_mut().enumerate() {
                        // SAFETY: `base + 8v + 8 ≤ t0 + reach + 8N ≤ x.len()` (checked
                        // above, else `offsets` is empty; `off ≤ reach`, the max of `offsets`, by `Pass::new`;
                        // `v < N`).
                        *xv = unsafe { _mm256_loadu_si256(x.add(base + 8 * v).cast()) };
                    }
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        // SAFETY: `r·k_pairs + e < M·k_pairs ≤ w.len()`.
                        let b = _mm256_set1_epi32(unsafe { *w.add(r * k_pairs + e) });
                        for (a, &xv) in acc_r.iter_mut().zip(&xs) {
                            *a = $mac(*a, xv, b);
                        }
                    }
                }
                acc
            }
        }
    };
}

direct_pass!(PairsI16, "avx2", madd_pairs);
direct_pass!(QuadsU8, "avx2,avx512vnni,avx512vl", dpbusd_quads);
