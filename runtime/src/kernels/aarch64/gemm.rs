//! The engine under the convolutions: a tile of [`TILE`] output positions'
//! input patches packed into a column buffer, times weight rows read in
//! place from the file's `[C_out, K]` layout, several output channels at a
//! time. One implementation of [`Columns`] per instruction set.

use core::arch::aarch64::*;

use core::mem::MaybeUninit;

use super::dot::sdot_lane;
use super::{filled_prefix, Aligned};

/// Output positions per tile (four vectors of four `i32` sums per channel).
pub(super) const TILE: usize = 16;
/// Bytes of the column buffer.
pub(super) const PACK_BYTES: usize = 16 * 1024;
/// Longest reduction chunk of any instruction set (the `i8` columns).
pub(super) const MAX_CHUNK: usize = PACK_BYTES / TILE;

/// One instruction set's column layout and multiply-accumulate block.
pub(super) trait Columns {
    /// Packed chunks are padded to a multiple of `STEP` indices (with zeros).
    const STEP: usize;
    /// Weight rows are read `READ` bytes at a time: a row pointer must be
    /// valid for the padded chunk rounded up to `READ`.
    const READ: usize;
    /// Longest reduction chunk one column buffer holds (a multiple of `STEP`).
    const CHUNK: usize;
    /// The columns hold raw input bytes, so the bias must absorb `−zp · Σ w`
    /// (otherwise they hold `x − zp`).
    const RAW: bool;

    /// Packs `TILE` positions of one chunk into `dst`: reduction index `k`
    /// reads the 16 bytes at `src + offsets[k]` (one per position); indices
    /// from `offsets.len()` up to `padded` are zero.
    ///
    /// # Safety
    /// Each `src + offsets[k]` is valid for 16 bytes; `dst` is 16-aligned and
    /// valid for `padded · TILE` elements; `offsets.len() <= padded`,
    /// `padded` a multiple of `STEP` and at most `CHUNK`.
    unsafe fn pack(src: *const i8, offsets: &[u32], padded: usize, zp: i8, dst: *mut u8);

    /// `acc[m][q] += Σ_k column[k][4q..4q+4] · rows[m][k]` over `padded`
    /// packed indices.
    ///
    /// # Safety
    /// `pack` holds `padded` packed indices (written by `pack`), each row
    /// pointer is valid for `padded.next_multiple_of(READ)` bytes, and for
    /// the dot-product set the CPU has the extension.
    unsafe fn block<const M: usize>(
        pack: *const u8,
        padded: usize,
        rows: [*const i8; M],
        acc: [[int32x4_t; 4]; M],
    ) -> [[int32x4_t; 4]; M];
}

/// Plain NEON: `i16` columns of `x − zp`, `smlal` by element.
pub(super) struct Neon;

/// `sdot` by element on raw `i8` columns, four indices per 4-byte group.
pub(super) struct DotProd;

impl Columns for Neon {
    const STEP: usize = 1;
    const READ: usize = 8;
    const CHUNK: usize = PACK_BYTES / (2 * TILE);
    const RAW: bool = false;

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn pack(src: *const i8, offsets: &[u32], padded: usize, zp: i8, dst: *mut u8) {
        let zp = vdupq_n_s8(zp);
        let dst = dst.cast::<i16>();
        for (k, &o) in offsets.iter().enumerate() {
            // SAFETY: the caller guarantees 16 readable bytes at each offset
            // and room for `padded >= offsets.len()` columns at `dst`.
            unsafe {
                let x = vld1q_s8(src.add(o as usize));
                vst1q_s16(dst.add(TILE * k), vsubl_s8(vget_low_s8(x), vget_low_s8(zp)));
                vst1q_s16(dst.add(TILE * k + 8), vsubl_high_s8(x, zp));
            }
        }
        for k in offsets.len()..padded {
            // SAFETY: `k < padded`, inside `dst`.
            unsafe {
                vst1q_s16(dst.add(TILE * k), vdupq_n_s16(0));
                vst1q_s16(dst.add(TILE * k + 8), vdupq_n_s16(0));
            }
        }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<const M: usize>(
        pack: *const u8,
        padded: usize,
        rows: [*const i8; M],
        mut acc: [[int32x4_t; 4]; M],
    ) -> [[int32x4_t; 4]; M] {
        let steps = padded / 8;
        let mut col = pack.cast::<i16>();
        for step in 0..steps {
            // SAFETY: forwarded; step `step` covers packed columns
            // `8·step..8·step + 8 <= padded`.
            unsafe { acc = neon_step::<M, 8>(col, rows, 8 * step, acc) };
            col = col.wrapping_add(8 * TILE);
        }
        // SAFETY: as above, for the last `padded % 8` columns.
        unsafe {
            match padded % 8 {
                0 => acc,
                1 => neon_step::<M, 1>(col, rows, 8 * steps, acc),
                2 => neon_step::<M, 2>(col, rows, 8 * steps, acc),
                3 => neon_step::<M, 3>(col, rows, 8 * steps, acc),
                4 => neon_step::<M, 4>(col, rows, 8 * steps, acc),
                5 => neon_step::<M, 5>(col, rows, 8 * steps, acc),
                6 => neon_step::<M, 6>(col, rows, 8 * steps, acc),
                _ => neon_step::<M, 7>(col, rows, 8 * steps, acc),
            }
        }
    }
}

/// The first `TAPS` (at most 8) columns at `col` times weights `k..k + TAPS`
/// of each row: one 8-byte weight load per row, then `smlal` by lane.
///
/// # Safety
/// `col` holds `TAPS` packed columns; each row is readable at `k..k + 8`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn neon_step<const M: usize, const TAPS: usize>(
    col: *const i16,
    rows: [*const i8; M],
    k: usize,
    acc: [[int32x4_t; 4]; M],
) -> [[int32x4_t; 4]; M] {
    let mut w = [vdupq_n_s16(0); M];
    for (w, row) in w.iter_mut().zip(rows) {
        // SAFETY: the row is readable at `k..k + 8`.
        *w = vmovl_s8(unsafe { vld1_s8(row.add(k)) });
    }
    // SAFETY: forwarded.
    unsafe { mac_columns::<M, TAPS>(col, w, acc) }
}

/// `acc[m][q] += Σ_t column[t][4q..4q + 4] · w[m][t]` over the first `TAPS`
/// (at most 8) packed `i16` columns at `col` ([`TILE`] positions each) and
/// lanes `0..TAPS` of each row's weights: `smlal` by lane, 16 per column.
///
/// # Safety
/// `col` holds `TAPS` packed columns.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn mac_columns<const M: usize, const TAPS: usize>(
    col: *const i16,
    w: [int16x8_t; M],
    mut acc: [[int32x4_t; 4]; M],
) -> [[int32x4_t; 4]; M] {
    macro_rules! tap {
        ($lane:literal) => {
            if $lane < TAPS {
                // SAFETY: column `lane < TAPS` is packed.
                let (x0, x1) = unsafe {
                    (
                        vld1q_s16(col.add(TILE * $lane)),
                        vld1q_s16(col.add(TILE * $lane + 8)),
                    )
                };
                for (a, w) in acc.iter_mut().zip(w) {
                    a[0] = vmlal_laneq_s16::<$lane>(a[0], vget_low_s16(x0), w);
                    a[1] = vmlal_high_laneq_s16::<$lane>(a[1], x0, w);
                    a[2] = vmlal_laneq_s16::<$lane>(a[2], vget_low_s16(x1), w);
                    a[3] = vmlal_high_laneq_s16::<$lane>(a[3], x1, w);
                }
            }
        };
    }
    tap!(0);
    tap!(1);
    tap!(2);
    tap!(3);
    tap!(4);
    tap!(5);
    tap!(6);
    tap!(7);
    acc
}

impl Columns for DotProd {
    const STEP: usize = 4;
    const READ: usize = 16;
    const CHUNK: usize = MAX_CHUNK;
    const RAW: bool = true;

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn pack(src: *const i8, offsets: &[u32], padded: usize, _zp: i8, dst: *mut u8) {
        let dst = dst.cast::<i8>();
        let groups = offsets.chunks_exact(4);
        let rest = groups.remainder();
        let mut g = 0;
        for o in groups {
            // SAFETY: 16 readable bytes at each offset; group `g` of 64
            // bytes is inside `dst` since `4g < padded`.
            unsafe {
                let v = int8x16x4_t(
                    vld1q_s8(src.add(o[0] as usize)),
                    vld1q_s8(src.add(o[1] as usize)),
                    vld1q_s8(src.add(o[2] as usize)),
                    vld1q_s8(src.add(o[3] as usize)),
                );
                // Interleaves the four indices per position: position p's
                // group is bytes 4p..4p+4, as `sdot` by element reads it.
                vst4q_s8(dst.add(64 * g), v);
            }
            g += 1;
        }
        if !rest.is_empty() {
            let mut v = [vdupq_n_s8(0); 4];
            for (v, &o) in v.iter_mut().zip(rest) {
                // SAFETY: 16 readable bytes at each offset.
                *v = unsafe { vld1q_s8(src.add(o as usize)) };
            }
            // SAFETY: `4g < padded`: the partial group is inside `dst`.
            unsafe { vst4q_s8(dst.add(64 * g), int8x16x4_t(v[0], v[1], v[2], v[3])) };
            g += 1;
        }
        while 4 * g < padded {
            // SAFETY: inside `dst`, as above.
            unsafe {
                vst1q_s8_x4(
                    dst.add(64 * g),
                    int8x16x4_t(vdupq_n_s8(0), vdupq_n_s8(0), vdupq_n_s8(0), vdupq_n_s8(0)),
                )
            };
            g += 1;
        }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<const M: usize>(
        pack: *const u8,
        padded: usize,
        rows: [*const i8; M],
        mut acc: [[int32x4_t; 4]; M],
    ) -> [[int32x4_t; 4]; M] {
        let steps = padded / 16;
        let mut col = pack.cast::<i8>();
        for step in 0..steps {
            // SAFETY: forwarded; step `step` covers packed indices
            // `16·step..16·step + 16 <= padded`.
            unsafe { acc = dot_step::<M, 4>(col, rows, 16 * step, acc) };
            col = col.wrapping_add(4 * 64);
        }
        // SAFETY: as above, for the last `padded % 16` indices (whole groups).
        unsafe {
            match padded % 16 / 4 {
                0 => acc,
                1 => dot_step::<M, 1>(col, rows, 16 * steps, acc),
                2 => dot_step::<M, 2>(col, rows, 16 * steps, acc),
                _ => dot_step::<M, 3>(col, rows, 16 * steps, acc),
            }
        }
    }
}

/// The first `GROUPS` (at most 4) packed groups at `col` times weights
/// `k..k + 4·GROUPS` of each row: one 16-byte weight load per row, then
/// `sdot` by lane.
///
/// # Safety
/// `col` holds `GROUPS` packed groups; each row is readable at `k..k + 16`;
/// the CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_step<const M: usize, const GROUPS: usize>(
    col: *const i8,
    rows: [*const i8; M],
    k: usize,
    mut acc: [[int32x4_t; 4]; M],
) -> [[int32x4_t; 4]; M] {
    let mut w = [vdupq_n_s8(0); M];
    for (w, row) in w.iter_mut().zip(rows) {
        // SAFETY: the row is readable at `k..k + 16`.
        *w = unsafe { vld1q_s8(row.add(k)) };
    }
    macro_rules! group {
        ($lane:literal) => {
            if $lane < GROUPS {
                // SAFETY: group `lane < GROUPS` is packed.
                let x = unsafe { vld1q_s8_x4(col.add(64 * $lane)) };
                for (a, w) in acc.iter_mut().zip(w) {
                    // SAFETY: the caller guarantees the CPU has `sdot`.
                    unsafe {
                        a[0] = sdot_lane::<$lane>(a[0], x.0, w);
                        a[1] = sdot_lane::<$lane>(a[1], x.1, w);
                        a[2] = sdot_lane::<$lane>(a[2], x.2, w);
                        a[3] = sdot_lane::<$lane>(a[3], x.3, w);
                    }
                }
            }
        };
    }
    group!(0);
    group!(1);
    group!(2);
    group!(3);
    acc
}

/// Plain NEON on raw `i8` pairs, for weights without −128: columns hold
/// two reduction indices per position (`[pair][position][2]`), a weight
/// pair is broadcast with `dup .8h`, and `smull`/`smlal` put two products
/// of one position in each `i16` lane, which `sadalp` folds into the
/// position's `i32` sum. Each `i16` lane sums products of two pairs, one
/// each: with no weight of −128 every product is within ±128·127, so the
/// two fit (±32512). The bias absorbs `−zp · Σ w`, as with `sdot`.
pub(super) struct NeonPairs;

impl Columns for NeonPairs {
    const STEP: usize = 4;
    const READ: usize = 16;
    const CHUNK: usize = MAX_CHUNK;
    const RAW: bool = true;

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn pack(src: *const i8, offsets: &[u32], padded: usize, _zp: i8, dst: *mut u8) {
        let dst = dst.cast::<i8>();
        let pairs = offsets.chunks_exact(2);
        let rest = pairs.remainder();
        let mut at = 0;
        for o in pairs {
            // SAFETY: 16 readable bytes at each offset; pair `at / 32` is
            // inside `dst` (`2·pairs <= padded`).
            unsafe {
                let v = int8x16x2_t(
                    vld1q_s8(src.add(o[0] as usize)),
                    vld1q_s8(src.add(o[1] as usize)),
                );
                // Position p's pair is bytes 2p, 2p + 1.
                vst2q_s8(dst.add(at), v);
            }
            at += 32;
        }
        if let [o] = rest {
            // SAFETY: as above; the pair's second index is zero.
            unsafe {
                vst2q_s8(
                    dst.add(at),
                    int8x16x2_t(vld1q_s8(src.add(*o as usize)), vdupq_n_s8(0)),
                )
            };
            at += 32;
        }
        while at < 16 * padded {
            // SAFETY: inside `dst` (16 bytes per packed index).
            unsafe { vst1q_s8_x2(dst.add(at), int8x16x2_t(vdupq_n_s8(0), vdupq_n_s8(0))) };
            at += 32;
        }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn block<const M: usize>(
        pack: *const u8,
        padded: usize,
        rows: [*const i8; M],
        mut acc: [[int32x4_t; 4]; M],
    ) -> [[int32x4_t; 4]; M] {
        let steps = padded / 16;
        let mut col = pack.cast::<i8>();
        for step in 0..steps {
            // SAFETY: forwarded; step `step` covers packed indices
            // `16·step..16·step + 16 <= padded`.
            acc = unsafe { pairs_step::<M, 4>(col, rows, 16 * step, acc) };
            col = col.wrapping_add(16 * 16);
        }
        // SAFETY: as above, for the last `padded % 16` indices (whole quads).
        unsafe {
            match padded % 16 / 4 {
                0 => acc,
                1 => pairs_step::<M, 1>(col, rows, 16 * steps, acc),
                2 => pairs_step::<M, 2>(col, rows, 16 * steps, acc),
                _ => pairs_step::<M, 3>(col, rows, 16 * steps, acc),
            }
        }
    }
}

/// The first `QUADS` (at most 4) quads of packed indices at `col` (two
/// pairs each) times weights `k..k + 4·QUADS` of each row.
///
/// # Safety
/// `col` holds `QUADS` packed quads; each row is readable at `k..k + 16`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn pairs_step<const M: usize, const QUADS: usize>(
    col: *const i8,
    rows: [*const i8; M],
    k: usize,
    mut acc: [[int32x4_t; 4]; M],
) -> [[int32x4_t; 4]; M] {
    let mut w = [vdupq_n_s16(0); M];
    for (w, row) in w.iter_mut().zip(rows) {
        // SAFETY: the row is readable at `k..k + 16`.
        *w = vreinterpretq_s16_s8(unsafe { vld1q_s8(row.add(k)) });
    }
    macro_rules! quad {
        ($q:literal, $p0:literal, $p1:literal) => {
            if $q < QUADS {
                // SAFETY: quad `q < QUADS` (64 bytes) is packed.
                let x = unsafe { vld1q_s8_x4(col.add(64 * $q)) };
                for (a, w) in acc.iter_mut().zip(w) {
                    let d0 = vreinterpretq_s8_s16(vdupq_laneq_s16::<$p0>(w));
                    let d1 = vreinterpretq_s8_s16(vdupq_laneq_s16::<$p1>(w));
                    let lo0 = vmlal_s8(
                        vmull_s8(vget_low_s8(x.0), vget_low_s8(d0)),
                        vget_low_s8(x.2),
                        vget_low_s8(d1),
                    );
                    let hi0 = vmlal_high_s8(vmull_high_s8(x.0, d0), x.2, d1);
                    let lo1 = vmlal_s8(
                        vmull_s8(vget_low_s8(x.1), vget_low_s8(d0)),
                        vget_low_s8(x.3),
                        vget_low_s8(d1),
                    );
                    let hi1 = vmlal_high_s8(vmull_high_s8(x.1, d0), x.3, d1);
                    a[0] = vpadalq_s16(a[0], lo0);
                    a[1] = vpadalq_s16(a[1], hi0);
                    a[2] = vpadalq_s16(a[2], lo1);
                    a[3] = vpadalq_s16(a[3], hi1);
                }
            }
        };
    }
    quad!(0, 0, 1);
    quad!(1, 2, 3);
    quad!(2, 4, 5);
    quad!(3, 6, 7);
    acc
}

/// Weight rows `[rows, k]` read in place, `len` bytes from index `k0` of a
/// row. A read that would run past the end of the tensor (the last rows'
/// padding to `STEP`, which meets zero columns) is served from a zero-padded
/// copy of the tensor's end.
pub(super) struct WeightRows<'a> {
    w: &'a [i8],
    k: usize,
    /// The tensor's last `kept` bytes, then `max_len` zeros.
    end: &'a [i8],
    end_start: usize,
    max_len: usize,
}

/// Stack room for [`WeightRows`]' copy of the tensor's end.
pub(super) type WeightEnd = MaybeUninit<Aligned<[i8; 2 * MAX_CHUNK]>>;

impl<'a> WeightRows<'a> {
    /// For reads of at most `max_len <= MAX_CHUNK` bytes (only as much of
    /// `buf` as that needs is written).
    pub(super) fn new(w: &'a [i8], k: usize, max_len: usize, buf: &'a mut WeightEnd) -> Self {
        let max_len = max_len.min(MAX_CHUNK);
        let kept = w.len().min(max_len);
        let end_start = w.len() - kept;
        let end = filled_prefix::<i8, { 2 * MAX_CHUNK }>(buf, kept + max_len, 0);
        if let (Some(dst), Some(src)) = (end.get_mut(..kept), w.get(end_start..)) {
            dst.copy_from_slice(src);
        }
        WeightRows {
            w,
            k,
            end,
            end_start,
            max_len,
        }
    }

    /// A pointer valid for `len` bytes holding row `r` from index `k0` (and
    /// whatever follows it: the next row, or zeros), for `k0 < k` and
    /// `len <= max_len`.
    #[inline]
    pub(super) fn row(&self, r: usize, k0: usize, len: usize) -> *const i8 {
        let at = r * self.k + k0;
        if at + len <= self.w.len() {
            // In place: `at + len` is within the slice.
            return self.w.as_ptr().wrapping_add(at);
        }
        // `at` is inside the tensor and the read runs past its end, so
        // `at > len(w) − len >= end_start` and `at − end_start + len <
        // kept + max_len`, the length of `end` (the `min` keeps a read of
        // `len <= max_len` inside `end` whatever the arguments).
        let i = at.saturating_sub(self.end_start);
        let i = i.min(self.end.len().saturating_sub(self.max_len));
        self.end.as_ptr().wrapping_add(i)
    }
}
