//! Convolution with one group (1-D and 2-D, any stride, dilation and pads).
//!
//! For each output row, the input rows its windows read (`C_in · kH` of
//! them) are staged once: padded with the input zero point, and split by
//! the W stride into phases, so that tap `kx` of consecutive output
//! positions reads consecutive bytes. A tile of [`TILE`] positions is then
//! packed (im2col) from the staged rows, one 16-byte load per reduction
//! index, and multiplied with the weight rows in place (see `gemm`). A 1×1
//! convolution with stride 1 and no pads is a GEMM over the flattened
//! plane. Reductions longer than the column buffer run in chunks, with the
//! partial sums kept per output channel.

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::gemm::{
    Columns, DotProd, Neon, NeonPairs, WeightEnd, WeightRows, MAX_CHUNK, PACK_BYTES, TILE,
};
use super::requant::{Output, Requant};
use super::{act_ok, axis_ok, filled_prefix, has_dotprod, zero_point_ok, Aligned, NO_DOTPROD};
use crate::kernels::{reference, ConvParams};

/// Bytes of staged input rows one output row may need (`C_in · kH` rows of
/// the padded width); larger convolutions are refused.
pub const MAX_STAGED_BYTES: usize = 32 * 1024;
/// Bytes after the band that unit-stride staging may overwrite.
const BAND_SLACK: usize = 16;
/// Most W phases (the W stride) of a staged row.
const MAX_PHASES: usize = 8;
/// Output channels whose biases and partial sums one pass keeps.
const OC_GROUP: usize = 64;
/// Stack taken by one convolution call for its buffers (about 64 KiB):
/// staged rows, packed columns, tap offsets, the weights' zero-padded end,
/// and per output channel of a group its bias, requantization, row pointer
/// and partial sums.
pub const CONV_STACK_BYTES: usize = MAX_STAGED_BYTES
    + PACK_BYTES
    + 4 * MAX_CHUNK
    + 2 * MAX_CHUNK
    + OC_GROUP * (4 + core::mem::size_of::<Requant>() + 8 + core::mem::size_of::<[int32x4_t; 4]>());

/// A convolution the kernels take, normalized: a 1×1 convolution with unit
/// strides and no pads becomes 1-D over the flattened plane.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    cin: usize,
    in_h: usize,
    in_w: usize,
    cout: usize,
    out_h: usize,
    out_w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    /// Reduction length `cin · kh · kw`.
    k: usize,
    /// Output positions per W segment: a row runs in segments whose staged
    /// rows fit the buffer (one segment, `out_w`, unless it is long).
    seg: usize,
    /// Staged bytes per phase row: every position a tile of a segment may
    /// load.
    phase_len: usize,
    /// Staged bytes per output row.
    band_len: usize,
    in_zp: i8,
}

impl Geometry {
    fn new(p: &ConvParams) -> Result<Geometry, &'static str> {
        if p.groups != 1 {
            return Err("grouped convolution");
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
        if !h_ok || !w_ok {
            return Err("invalid window geometry");
        }
        let k = p
            .in_channels
            .checked_mul(p.kernel_h)
            .and_then(|n| n.checked_mul(p.kernel_w))
            .ok_or("reduction length overflows")?;
        if k == 0 || p.out_channels == 0 {
            return Err("empty convolution");
        }
        let mut g = Geometry {
            cin: p.in_channels,
            in_h: p.in_h,
            in_w: p.in_w,
            cout: p.out_channels,
            out_h: p.out_h,
            out_w: p.out_w,
            kh: p.kernel_h,
            kw: p.kernel_w,
            sh: p.stride_h,
            sw: p.stride_w,
            dh: p.dilation_h,
            dw: p.dilation_w,
            pt: p.pad_top,
            pl: p.pad_left,
            k,
            seg: 0,
            phase_len: 0,
            band_len: 0,
            in_zp: p.input_zero_point as i8,
        };
        if g.sw > MAX_PHASES {
            return Err("W stride above 8");
        }
        g.flatten_pointwise();
        g.size_band()?;
        Ok(g)
    }

    /// A 1×1 convolution with unit strides, no pads and the input's size
    /// reads each position's own column: one row of `H · W` positions.
    fn flatten_pointwise(&mut self) {
        let pointwise = self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1;
        let same =
            self.pt == 0 && self.pl == 0 && self.out_h == self.in_h && self.out_w == self.in_w;
        if let (true, true, Some(n)) = (pointwise, same, self.in_h.checked_mul(self.in_w)) {
            (self.in_h, self.out_h, self.in_w, self.out_w) = (1, 1, n, n);
        }
    }

    /// Chooses the segment: the whole row if its staged rows fit, else
    /// the most whole tiles that do.
    fn size_band(&mut self) -> Result<(), &'static str> {
        const TOO_BIG: &str = "input rows of one tile exceed the staging buffer";
        // A tile at a segment's last position loads TILE bytes from the
        // furthest tap.
        let reach = (self.kw - 1) * self.dw / self.sw;
        let rows = [self.cin, self.kh, self.sw]
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or(TOO_BIG)?;
        let per_row = (MAX_STAGED_BYTES - BAND_SLACK) / rows;
        let room = per_row.checked_sub(reach + TILE).ok_or(TOO_BIG)?;
        self.seg = if self.out_w <= room {
            self.out_w
        } else {
            room / TILE * TILE
        };
        if self.seg == 0 && self.out_w > 0 {
            return Err(TOO_BIG);
        }
        self.phase_len = self.seg + reach + TILE;
        self.band_len = rows * self.phase_len;
        Ok(())
    }

    fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Every slice has the length the reference kernel requires.
    fn lengths_match(&self, io: &Operands, output: &[i8]) -> bool {
        let n_in = self
            .cin
            .checked_mul(self.in_h)
            .and_then(|n| n.checked_mul(self.in_w));
        let n_out = self
            .cout
            .checked_mul(self.out_h)
            .and_then(|n| n.checked_mul(self.out_w));
        n_in == Some(io.input.len())
            && self.cout.checked_mul(self.k) == Some(io.weights.len())
            && n_out == Some(output.len())
            && io.bias.len() == self.cout
            && io.multiplier.len() == self.cout
            && io.shift.len() == self.cout
    }
}

/// The operands of a call, besides the output.
#[derive(Clone, Copy)]
struct Operands<'a> {
    input: &'a [i8],
    weights: &'a [i8],
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i8],
}

/// Whether [`conv_s8_neon`] runs `p` itself: `Ok`, or why the reference
/// kernel runs it instead.
pub fn conv_neon_takes(p: &ConvParams) -> Result<(), &'static str> {
    Geometry::new(p).map(|_| ())
}

/// Whether [`conv_s8_dotprod`] runs `p` itself on this CPU.
pub fn conv_dotprod_takes(p: &ConvParams) -> Result<(), &'static str> {
    if !has_dotprod() {
        return Err(NO_DOTPROD);
    }
    Geometry::new(p).map(|_| ())
}

/// [`reference::conv_s8`], bit for bit, on NEON (`smull`/`smlal` on pairs
/// of bytes, or `i16` columns and `smlal` when a weight is −128).
///
/// Same arguments, layout and preconditions. Shapes [`conv_neon_takes`]
/// refuses, and wrong slice lengths, go to the reference kernel.
pub fn conv_s8_neon(
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
    match Geometry::new(p) {
        Ok(g) if g.lengths_match(&io, output) => {
            // SAFETY: NEON is part of the aarch64 baseline.
            unsafe { conv_neon(&g, p, io, output) }
        }
        _ => reference::conv_s8(p, input, weights, bias, multiplier, shift, output),
    }
}

/// [`reference::conv_s8`], bit for bit, with the dot-product extension.
///
/// Same arguments, layout and preconditions. On a CPU without `sdot`, for
/// shapes [`conv_dotprod_takes`] refuses, and on wrong slice lengths, the
/// reference kernel runs.
pub fn conv_s8_dotprod(
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
    match Geometry::new(p) {
        Ok(g) if has_dotprod() && g.lengths_match(&io, output) => {
            // SAFETY: the CPU has the dot-product extension (checked above),
            // and NEON is part of the aarch64 baseline.
            unsafe { conv_dotprod(&g, p, io, output) }
        }
        _ => reference::conv_s8(p, input, weights, bias, multiplier, shift, output),
    }
}

/// Raw `i8` pairs when no weight is −128 (the converter never writes one:
/// weights are symmetric), else `i16` columns.
#[target_feature(enable = "neon")]
fn conv_neon(g: &Geometry, p: &ConvParams, io: Operands, output: &mut [i8]) {
    // SAFETY: neither set needs more than the baseline.
    unsafe {
        if contains_min(io.weights) {
            conv_tiled::<Neon>(g, p, io, output)
        } else {
            conv_tiled::<NeonPairs>(g, p, io, output)
        }
    }
}

/// Whether some byte is −128.
#[inline]
#[target_feature(enable = "neon")]
fn contains_min(w: &[i8]) -> bool {
    let min = vdupq_n_s8(i8::MIN);
    let mut hit = vdupq_n_u8(0);
    let chunks = w.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` is 16 readable bytes.
        hit = vorrq_u8(hit, vceqq_s8(unsafe { vld1q_s8(c.as_ptr()) }, min));
    }
    vmaxvq_u8(hit) != 0 || rest.contains(&i8::MIN)
}

/// # Safety
/// The CPU has the dot-product extension.
#[target_feature(enable = "neon")]
unsafe fn conv_dotprod(g: &Geometry, p: &ConvParams, io: Operands, output: &mut [i8]) {
    // SAFETY: forwarded from the caller.
    unsafe { conv_tiled::<DotProd>(g, p, io, output) }
}

/// Per-call state of the tiled loop.
struct Tiler<'a> {
    g: &'a Geometry,
    io: Operands<'a>,
    rows: WeightRows<'a>,
    out: Output,
    /// Per output channel of the current group (at most [`OC_GROUP`]): the
    /// bias (less `zp · Σ w` for raw columns), the requantization, and its
    /// weights in the current chunk (`WeightRows::row`).
    bias: &'a mut [i32],
    rq: &'a mut [Requant],
    row_ptrs: &'a mut [*const i8],
    /// Per output channel of the current group: partial sums of a tile
    /// (empty when the reduction is one chunk).
    partial: &'a mut [[int32x4_t; 4]],
}

/// The reduction chunk being multiplied, padded to `padded` indices.
#[derive(Clone, Copy)]
struct Chunk {
    padded: usize,
    first: bool,
    last: bool,
}

/// # Safety
/// `g` came from `Geometry::new(p)` and the operands and `output` match it;
/// for [`DotProd`] the CPU has the extension.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn conv_tiled<C: Columns>(g: &Geometry, p: &ConvParams, io: Operands, output: &mut [i8]) {
    let chunks = g.k.div_ceil(C::CHUNK);
    let mut band = MaybeUninit::uninit();
    let band = filled_prefix::<i8, MAX_STAGED_BYTES>(&mut band, g.band_len + BAND_SLACK, g.in_zp);
    let mut pack = MaybeUninit::<Aligned<[u8; PACK_BYTES]>>::uninit();
    let pack = pack.as_mut_ptr().cast::<u8>();
    let mut offsets = MaybeUninit::uninit();
    let offsets = filled_prefix::<u32, MAX_CHUNK>(&mut offsets, g.k.min(C::CHUNK), 0);
    // Partial sums only live between chunks.
    let mut partial = MaybeUninit::uninit();
    let zero = vdupq_n_s32(0);
    let partial_len = if chunks > 1 { OC_GROUP } else { 0 };
    let partial = filled_prefix::<[int32x4_t; 4], OC_GROUP>(&mut partial, partial_len, [zero; 4]);
    // Per-channel state for one group, as long as the call needs.
    let group = g.cout.min(OC_GROUP);
    let (mut bias, mut rq, mut row_ptrs) = (
        MaybeUninit::uninit(),
        MaybeUninit::uninit(),
        MaybeUninit::uninit(),
    );
    let mut end: WeightEnd = MaybeUninit::uninit();
    // Reads are of a chunk rounded up to 16 at most.
    let read = g.k.min(C::CHUNK).next_multiple_of(16).min(C::CHUNK);
    let mut t = Tiler {
        g,
        io,
        rows: WeightRows::new(io.weights, g.k, read, &mut end),
        out: Output::new(p.output_zero_point, p.act_min, p.act_max),
        bias: filled_prefix::<i32, OC_GROUP>(&mut bias, group, 0),
        rq: filled_prefix::<Requant, OC_GROUP>(&mut rq, group, Requant::splat(0, 0)),
        row_ptrs: filled_prefix::<*const i8, OC_GROUP>(&mut row_ptrs, group, core::ptr::null()),
        partial,
    };
    if chunks == 1 {
        tap_offsets(g, 0, offsets);
    }
    let mut staged = None;
    for g0 in (0..g.cout).step_by(OC_GROUP) {
        let gn = OC_GROUP.min(g.cout - g0);
        t.group_setup::<C>(g0, gn);
        if chunks == 1 {
            t.point_rows::<C>(g0, gn, 0, g.k);
        }
        for (oy, x0) in
            (0..g.out_h).flat_map(|oy| (0..g.out_w).step_by(g.seg.max(1)).map(move |x0| (oy, x0)))
        {
            // The band of one output row (segment) serves every group.
            if staged != Some((oy, x0)) {
                stage_band(g, &PhaseRows::new(g, x0), io.input, oy, band);
                staged = Some((oy, x0));
            }
            for ox0 in (x0..g.out_w.min(x0 + g.seg)).step_by(TILE) {
                for c in 0..chunks {
                    let k0 = c * C::CHUNK;
                    let len = C::CHUNK.min(g.k - k0);
                    let offs = offsets.get_mut(..len).unwrap_or(&mut []);
                    if chunks > 1 {
                        tap_offsets(g, k0, offs);
                        t.point_rows::<C>(g0, gn, k0, len);
                    }
                    let padded = len.next_multiple_of(C::STEP);
                    // SAFETY: every offset plus `ox0 + 16` is inside the band
                    // (`stage_band`'s layout, `phase_len`), and the column
                    // buffer holds `padded <= CHUNK` columns.
                    unsafe { C::pack(band.as_ptr().add(ox0 - x0), offs, padded, g.in_zp, pack) };
                    let chunk = Chunk {
                        padded,
                        first: c == 0,
                        last: c + 1 == chunks,
                    };
                    // SAFETY: the columns were just packed; forwarded for `sdot`.
                    unsafe { t.multiply::<C>(pack, chunk, g0..g0 + gn, oy, ox0, output) };
                }
            }
        }
    }
}

impl Tiler<'_> {
    /// The group's biases and requantizations; for raw columns the bias
    /// less `zp · Σ w` (wrapping, like the accumulator), so that padded taps
    /// holding `zp` cancel.
    #[inline]
    #[target_feature(enable = "neon")]
    fn group_setup<C: Columns>(&mut self, g0: usize, gn: usize) {
        let zp = i32::from(self.g.in_zp);
        let k = self.g.k;
        let io = self.io;
        let per_oc = self.bias.iter_mut().zip(self.rq.iter_mut()).take(gn);
        for (oc, (b, rq)) in (g0..).zip(per_oc) {
            let bias = io.bias.get(oc).copied().unwrap_or(0);
            *b = if C::RAW {
                let w = io.weights.get(oc * k..(oc + 1) * k).unwrap_or(&[]);
                let sum = sum_bytes(w);
                bias.wrapping_sub(zp.wrapping_mul(sum))
            } else {
                bias
            };
            let m = io.multiplier.get(oc).copied().unwrap_or(0);
            *rq = Requant::splat(m, io.shift.get(oc).copied().unwrap_or(0));
        }
    }

    /// Points `row_ptrs` at the group's weights for the chunk `[k0, k0 + len)`.
    fn point_rows<C: Columns>(&mut self, g0: usize, gn: usize, k0: usize, len: usize) {
        let read = len.next_multiple_of(C::STEP).next_multiple_of(C::READ);
        for (i, p) in self.row_ptrs.iter_mut().take(gn).enumerate() {
            *p = self.rows.row(g0 + i, k0, read);
        }
    }

    /// Multiplies the packed chunk with output channels `ocs`, four at a
    /// time, and stores (last chunk) or keeps (otherwise) the sums.
    ///
    /// # Safety
    /// As for [`Columns::block`] over `chunk.padded` packed indices.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn multiply<C: Columns>(
        &mut self,
        pack: *const u8,
        chunk: Chunk,
        ocs: core::ops::Range<usize>,
        oy: usize,
        ox0: usize,
        output: &mut [i8],
    ) {
        let g0 = ocs.start;
        let mut oc = g0;
        while oc + 4 <= ocs.end {
            // SAFETY: forwarded.
            unsafe { self.block::<C, 4>(pack, chunk, oc - g0, g0, oy, ox0, output) };
            oc += 4;
        }
        while oc < ocs.end {
            // SAFETY: forwarded.
            unsafe { self.block::<C, 1>(pack, chunk, oc - g0, g0, oy, ox0, output) };
            oc += 1;
        }
    }

    /// Output channels `g0 + i .. g0 + i + M` over one chunk of one tile.
    ///
    /// # Safety
    /// As for [`Tiler::multiply`].
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<C: Columns, const M: usize>(
        &mut self,
        pack: *const u8,
        chunk: Chunk,
        i: usize,
        g0: usize,
        oy: usize,
        ox0: usize,
        output: &mut [i8],
    ) {
        // The group's channels `i..i + M` (`i + M <= gn`).
        let at = i;
        let (Some(rows), Some(bias), Some(rq)) = (
            group_slice::<_, M>(self.row_ptrs, at),
            group_slice::<_, M>(self.bias, at),
            self.rq.get(at..at + M),
        ) else {
            return;
        };
        let mut acc = bias.map(|b| [vdupq_n_s32(b); 4]);
        if !chunk.first {
            if let Some(partial) = group_slice::<_, M>(self.partial, at) {
                acc = partial;
            }
        }
        // SAFETY: each row pointer is valid for `padded` rounded up to
        // `READ` bytes (`point_rows`); the rest is forwarded.
        let acc = unsafe { C::block::<M>(pack, chunk.padded, rows, acc) };
        if !chunk.last {
            if let Some(partial) = self.partial.get_mut(at..at + M) {
                partial.copy_from_slice(&acc);
            }
            return;
        }
        let g = self.g;
        let n = TILE.min(g.out_w - ox0);
        let first = (g0 + i) * g.out_plane() + oy * g.out_w + ox0;
        let out = self.out;
        let mut put = |m: usize| {
            if let (Some(acc), Some(rq)) = (acc.get(m), rq.get(m)) {
                let y = out.finish16(acc.map(|a| rq.apply(a)));
                let at = first + m * g.out_plane();
                if let Some(dst) = output.get_mut(at..at + n) {
                    store_prefix(y, dst);
                }
            }
        };
        // Written out for the common block, so the sums stay in registers.
        if M == 4 {
            put(0);
            put(1);
            put(2);
            put(3);
        } else {
            (0..M).for_each(put);
        }
    }
}

/// `M` consecutive entries of a group array from `at`, by value.
#[inline]
fn group_slice<T: Copy, const M: usize>(all: &[T], at: usize) -> Option<[T; M]> {
    all.get(at..at + M).and_then(|s| <[T; M]>::try_from(s).ok())
}

/// Stores the first `dst.len()` (at most 16) lanes of `y`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn store_prefix(y: int8x16_t, dst: &mut [i8]) {
    if let Ok(dst) = <&mut [i8; 16]>::try_from(&mut *dst) {
        // SAFETY: `dst` is 16 writable bytes.
        unsafe { vst1q_s8(dst.as_mut_ptr(), y) };
        return;
    }
    // Pieces of 8, 4, 2 and 1 lanes, without a call (which would spill
    // the caller's accumulators).
    let halves = vreinterpretq_u64_s8(y);
    let dst: &mut [u8] = bytemuck::cast_slice_mut(dst);
    let mut word = vgetq_lane_u64::<0>(halves);
    let mut at = 0;
    if let Some(d) = dst.get_mut(..8) {
        d.copy_from_slice(&word.to_le_bytes());
        word = vgetq_lane_u64::<1>(halves);
        at = 8;
    }
    if let Some(d) = dst.get_mut(at..at + 4) {
        d.copy_from_slice(&(word as u32).to_le_bytes());
        word >>= 32;
        at += 4;
    }
    if let Some(d) = dst.get_mut(at..at + 2) {
        d.copy_from_slice(&(word as u16).to_le_bytes());
        word >>= 16;
        at += 2;
    }
    if let Some(d) = dst.get_mut(at) {
        *d = word as u8;
    }
}

/// For reduction indices `k0..k0 + offsets.len()`, the staged-band offset
/// of tap `(ic, ky, kx)` for output position 0: its phase row, plus
/// `⌊kx·dw / sw⌋`.
fn tap_offsets(g: &Geometry, k0: usize, offsets: &mut [u32]) {
    // Index k is tap (ic, ky, kx) with ic·kh + ky = k / kw: its band row is
    // that, times the phases per row; tap kx sits at kx·dw = q·sw + r, phase
    // r, offset q. All kept incrementally.
    let row_len = g.sw * g.phase_len;
    let mut row = (k0 / g.kw) * row_len;
    let mut kx = k0 % g.kw;
    let (dq, dr) = (g.dw / g.sw, g.dw % g.sw);
    let (mut q, mut r) = ((kx * g.dw) / g.sw, (kx * g.dw) % g.sw);
    for o in offsets.iter_mut() {
        // The band is at most MAX_STAGED_BYTES, so offsets fit u32.
        *o = (row + r * g.phase_len + q) as u32;
        kx += 1;
        (q, r) = (q + dq, r + dr);
        if r >= g.sw {
            (q, r) = (q + 1, r - g.sw);
        }
        if kx == g.kw {
            (kx, q, r) = (0, 0, 0);
            row += row_len;
        }
    }
}

/// Per W phase `r` of the segment from output position `x0` (element `t`
/// of a phase row is padded column `(x0 + t)·sw + r`): the staged elements
/// `lo..hi` that hold input columns, the first being column `first` (the
/// same for every row).
struct PhaseRows {
    lo: [usize; MAX_PHASES],
    hi: [usize; MAX_PHASES],
    first: [usize; MAX_PHASES],
}

impl PhaseRows {
    fn new(g: &Geometry, x0: usize) -> PhaseRows {
        let (sw, pl) = (g.sw, g.pl);
        let mut rows = PhaseRows {
            lo: [0; MAX_PHASES],
            hi: [0; MAX_PHASES],
            first: [0; MAX_PHASES],
        };
        for r in 0..sw.min(MAX_PHASES) {
            // Element t is input column (x0 + t)·sw + r − pad_left; with
            // c = x0·sw + r, the first t with t·sw + c >= pl, and with
            // t·sw + c >= in_w + pl.
            let c = x0 * sw + r;
            let lo = if c >= pl { 0 } else { (pl - c).div_ceil(sw) }.min(g.phase_len);
            let end = g.in_w + pl;
            let hi = if c >= end { 0 } else { (end - c).div_ceil(sw) }.clamp(lo, g.phase_len);
            rows.lo[r] = lo;
            rows.hi[r] = hi;
            rows.first[r] = (lo * sw + c).saturating_sub(pl);
        }
        rows
    }
}

/// Stages the input rows output row `oy` reads: for each input channel and
/// kernel row, the input row padded with the zero point, as `sw` phase rows
/// (phase `r`, element `t` is padded column `t·sw + r`). Rows in the top or
/// bottom padding are all zero point.
#[inline]
#[target_feature(enable = "neon")]
fn stage_band(g: &Geometry, phases: &PhaseRows, input: &[i8], oy: usize, band: &mut [i8]) {
    if g.sw == 1 {
        stage_band_unit_stride(g, phases, input, oy, band);
        return;
    }
    let pad = vdupq_n_s8(g.in_zp);
    let in_plane = g.in_h * g.in_w;
    let mut rows = band.chunks_exact_mut(g.phase_len);
    for ic in 0..g.cin {
        for ky in 0..g.kh {
            let iy = (oy * g.sh + ky * g.dh)
                .checked_sub(g.pt)
                .filter(|&y| y < g.in_h);
            // The row and whatever follows it in the input.
            let src = iy.and_then(|iy| input.get(ic * in_plane + iy * g.in_w..));
            for r in 0..g.sw.min(MAX_PHASES) {
                let Some(dst) = rows.next() else { return };
                let Some(src) = src else {
                    fill(dst, pad);
                    continue;
                };
                let (lo, hi) = (phases.lo[r], phases.hi[r]);
                let (head, rest) = dst.split_at_mut(lo.min(dst.len()));
                let (mid, tail) = rest.split_at_mut((hi - lo).min(rest.len()));
                fill(head, pad);
                fill(tail, pad);
                copy_strided(src.get(phases.first[r]..).unwrap_or(&[]), g.sw, mid);
            }
        }
    }
}

/// [`stage_band`] for W stride 1, with whole 16-byte stores: each row is
/// written in order (left pad, input columns, right pad), and a store's
/// bytes past its part land in the next part or row, written right after
/// (or in the band's slack).
#[inline]
#[target_feature(enable = "neon")]
fn stage_band_unit_stride(
    g: &Geometry,
    phases: &PhaseRows,
    input: &[i8],
    oy: usize,
    band: &mut [i8],
) {
    let pad = vdupq_n_s8(g.in_zp);
    let in_plane = g.in_h * g.in_w;
    let (lo, hi, first) = (phases.lo[0], phases.hi[0], phases.first[0]);
    let mut store = |at: usize, v: int8x16_t| {
        if let Some(d) = band.get_mut(at..at + 16) {
            // SAFETY: `d` is 16 writable bytes.
            unsafe { vst1q_s8(d.as_mut_ptr(), v) };
        }
    };
    let mut row = 0;
    for ic in 0..g.cin {
        for ky in 0..g.kh {
            let iy = (oy * g.sh + ky * g.dh)
                .checked_sub(g.pt)
                .filter(|&y| y < g.in_h);
            let src = iy.and_then(|iy| input.get(ic * in_plane + iy * g.in_w + first..));
            let (mut at, end) = (row, row + g.phase_len);
            if let Some(src) = src {
                store(row, pad);
                let cols = hi - lo;
                for c in (0..cols).step_by(16) {
                    let v = match src.get(c..c + 16) {
                        // SAFETY: `s` is 16 readable bytes.
                        Some(s) => unsafe { vld1q_s8(s.as_ptr()) },
                        // The input's last bytes: through a padded copy.
                        None => {
                            let mut last = [0i8; 16];
                            let s = src.get(c..).unwrap_or(&[]);
                            for (d, &s) in last.iter_mut().zip(s) {
                                *d = s;
                            }
                            // SAFETY: `last` is 16 readable bytes.
                            unsafe { vld1q_s8(last.as_ptr()) }
                        }
                    };
                    store(row + lo + c, v);
                }
                at = row + hi;
            }
            while at < end {
                store(at, pad);
                at += 16;
            }
            row = end;
        }
    }
}

/// `dst` set to `v`'s bytes, with vector stores (no `memset` call).
#[inline]
#[target_feature(enable = "neon")]
fn fill(dst: &mut [i8], v: int8x16_t) {
    let mut chunks = dst.chunks_exact_mut(16);
    for c in chunks.by_ref() {
        // SAFETY: `c` is 16 writable bytes.
        unsafe { vst1q_s8(c.as_mut_ptr(), v) };
    }
    store_prefix(v, chunks.into_remainder());
}

/// `Σ w` in wrapping `i32` (exact for any slice shorter than 2^24).
#[inline]
#[target_feature(enable = "neon")]
fn sum_bytes(w: &[i8]) -> i32 {
    let mut acc = vdupq_n_s32(0);
    let chunks = w.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        // SAFETY: `c` is 16 readable bytes.
        acc = vpadalq_s16(acc, vpaddlq_s8(unsafe { vld1q_s8(c.as_ptr()) }));
    }
    let tail = rest.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
    vaddvq_s32(acc).wrapping_add(tail)
}

/// `dst[i] = src[i·stride]` for every `i` with a source element.
#[inline]
#[target_feature(enable = "neon")]
fn copy_strided(src: &[i8], stride: usize, dst: &mut [i8]) {
    match stride {
        1 => {
            let mut done = 0;
            for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(16)) {
                // SAFETY: `s` is 16 readable bytes and `d` 16 writable ones.
                unsafe { vst1q_s8(d.as_mut_ptr(), vld1q_s8(s.as_ptr())) };
                done += 16;
            }
            let (dst, src) = (
                dst.get_mut(done..).unwrap_or(&mut []),
                src.get(done..).unwrap_or(&[]),
            );
            match src.get(..16) {
                // SAFETY: `s` is 16 readable bytes (the row's end and what
                // follows it in the input); only `dst.len()` are stored.
                Some(s) => store_prefix(unsafe { vld1q_s8(s.as_ptr()) }, dst),
                None => {
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = s;
                    }
                }
            }
        }
        2 => {
            let mut done = 0;
            for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(32)) {
                // SAFETY: `s` is 32 readable bytes and `d` 16 writable ones.
                unsafe { vst1q_s8(d.as_mut_ptr(), vld2q_s8(s.as_ptr()).0) };
                done += 16;
            }
            let src = src.get(2 * done..).unwrap_or(&[]);
            let dst = dst.get_mut(done..).unwrap_or(&mut []);
            for (d, &x) in dst.iter_mut().zip(src.iter().step_by(2)) {
                *d = x;
            }
        }
        _ => {
            for (d, &x) in dst.iter_mut().zip(src.iter().step_by(stride.max(1))) {
                *d = x;
            }
        }
    }
}
