//! Widening input rows to `x − zp` in `i16` lanes, zero-padded, 16 lanes
//! per step. Stores are whole vectors: a call may write up to 15 lanes past
//! the lanes it was asked for (inside the buffer), which the callers place
//! where later writes (the next row) or slack absorb them.

use core::arch::x86_64::*;

/// Bytes `j..j + 16` of a padded row, before padding: byte `l` is
/// `src[l − pad]` for `lead ≤ l < lead + avail` (the others are
/// unspecified), with `(raw, lead, avail)` returned; `None` when the window
/// holds no byte of the row. `src` is the row and whatever follows it (read
/// whole when 16 bytes are there), `n` the row's length.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn window(
    src: &[i8],
    n: usize,
    pad: usize,
    j: usize,
) -> Option<(__m128i, usize, usize)> {
    let lead = pad.saturating_sub(j).min(16);
    let first = (j + lead).saturating_sub(pad);
    let avail = n.saturating_sub(first).min(16 - lead);
    if avail == 0 {
        return None;
    }
    let raw = match src.get(first..first + 16) {
        // SAFETY: 16 bytes to load.
        Some(s) if lead == 0 => unsafe { _mm_loadu_si128(s.as_ptr().cast()) },
        Some(s) => {
            // SAFETY: 16 bytes to load.
            let v = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
            // Move the bytes up by `lead` lanes: lane l takes byte l − lead
            // (a negative index, high bit set, gives 0).
            let iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            _mm_shuffle_epi8(v, _mm_sub_epi8(iota, _mm_set1_epi8(lead as i8)))
        }
        None => {
            let mut bytes = [0i8; 16];
            let part = src.get(first..first + avail).unwrap_or(&[]);
            for (d, &b) in bytes.iter_mut().skip(lead).zip(part) {
                *d = b;
            }
            // SAFETY: `bytes` has 16 bytes to load.
            unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
        }
    };
    Some((raw, lead, avail))
}

/// Lanes `j..j + 16` of a padded row: lane `l` is `src[l − pad] − zp`
/// when `pad ≤ l < pad + n`, else 0 (see [`window`]).
#[target_feature(enable = "avx2")]
#[inline]
fn chunk(src: &[i8], n: usize, pad: usize, j: usize, zp16: __m256i) -> __m256i {
    let Some((raw, lead, avail)) = window(src, n, pad, j) else {
        return _mm256_setzero_si256();
    };
    let v = _mm256_sub_epi16(_mm256_cvtepi8_epi16(raw), zp16);
    if lead == 0 && avail == 16 {
        return v;
    }
    // Keep lanes lead..lead + avail.
    let iota = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let from = _mm256_set1_epi16(lead as i16);
    let to = _mm256_set1_epi16((lead + avail) as i16);
    let inside = _mm256_andnot_si256(_mm256_cmpgt_epi16(from, iota), _mm256_cmpgt_epi16(to, iota));
    _mm256_and_si256(v, inside)
}

/// `buf[at + j]` = lane `j` of the padded row (see [`chunk`]) for
/// `j < len`.
#[target_feature(enable = "avx2")]
pub(super) fn widen_padded(
    src: &[i8],
    n: usize,
    pad: usize,
    zp: i32,
    buf: &mut [i16],
    at: usize,
    len: usize,
) {
    let zp16 = _mm256_set1_epi16(zp as i16);
    let mut j = 0;
    while j < len {
        let v = chunk(src, n, pad, j, zp16);
        match buf.get_mut(at + j..at + j + 16) {
            // SAFETY: room for 16 `i16`.
            Some(d) => unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) },
            None => {
                let mut lanes = [0i16; 16];
                // SAFETY: `lanes` has room for 16 `i16`.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
                let d = buf
                    .get_mut(at + j..(at + len).min(buf.len()))
                    .unwrap_or(&mut []);
                let k = d.len().min(16);
                d[..k].copy_from_slice(&lanes[..k]);
            }
        }
        j += 16;
    }
}

/// `x[at + j] = a_j | b_j << 16` with `a_j`, `b_j` lane `j` of two padded
/// rows (same padding; `nb = 0` for a missing channel) for `j < len`: the
/// channel-pair lanes of the direct convolution.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) fn widen_pairs(
    a: &[i8],
    na: usize,
    b: &[i8],
    nb: usize,
    pad: usize,
    zp: i32,
    x: &mut [i32],
    at: usize,
    len: usize,
) {
    let zp16 = _mm256_set1_epi16(zp as i16);
    let mut j = 0;
    while j < len {
        // Inside both rows (the common case): two plain loads, without
        // `chunk`'s padding and masking arithmetic.
        let first = j.saturating_sub(pad);
        let inside = j >= pad && first + 16 <= na.min(nb);
        let (va, vb) = match (a.get(first..first + 16), b.get(first..first + 16)) {
            // SAFETY: 16 bytes to load from each.
            (Some(sa), Some(sb)) if inside => unsafe {
                (
                    _mm256_sub_epi16(
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(sa.as_ptr().cast())),
                        zp16,
                    ),
                    _mm256_sub_epi16(
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(sb.as_ptr().cast())),
                        zp16,
                    ),
                )
            },
            _ => (chunk(a, na, pad, j, zp16), chunk(b, nb, pad, j, zp16)),
        };
        // Per 128-bit half: lanes 0-3 | 8-11 and 4-7 | 12-15.
        let lo = _mm256_unpacklo_epi16(va, vb);
        let hi = _mm256_unpackhi_epi16(va, vb);
        let first = _mm256_permute2x128_si256::<0x20>(lo, hi);
        let second = _mm256_permute2x128_si256::<0x31>(lo, hi);
        match x.get_mut(at + j..at + j + 16) {
            // SAFETY: room for 16 `i32` (64 bytes).
            Some(d) => unsafe {
                _mm256_storeu_si256(d.as_mut_ptr().cast(), first);
                _mm256_storeu_si256(d.as_mut_ptr().add(8).cast(), second);
            },
            None => {
                let mut out = [0i32; 16];
                // SAFETY: `out` has room for 16 `i32`.
                unsafe {
                    _mm256_storeu_si256(out.as_mut_ptr().cast(), first);
                    _mm256_storeu_si256(out.as_mut_ptr().add(8).cast(), second);
                }
                let d = x
                    .get_mut(at + j..(at + len).min(x.len()))
                    .unwrap_or(&mut []);
                let k = d.len().min(16);
                d[..k].copy_from_slice(&out[..k]);
            }
        }
        j += 16;
    }
}

/// A padded row of at most 16 lanes (`pad + n ≤ 16`), widened by one
/// shuffle and one mask that are the same for every row of a plane: the
/// rows of narrow planes (a 25×5 feature map) without a call per row.
#[derive(Clone, Copy)]
pub(super) struct NarrowRow {
    shift: __m128i,
    keep: __m256i,
    zp16: __m256i,
}

impl NarrowRow {
    /// `None` unless `pad + n ≤ 16`.
    #[target_feature(enable = "avx2")]
    pub(super) fn new(pad: usize, n: usize, zp: i32) -> Option<NarrowRow> {
        if pad + n > 16 {
            return None;
        }
        let iota8 = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let iota16 = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let from = _mm256_set1_epi16(pad as i16);
        let to = _mm256_set1_epi16((pad + n) as i16);
        Some(NarrowRow {
            // Lane l takes byte l − pad (negative: high bit set, 0).
            shift: _mm_sub_epi8(iota8, _mm_set1_epi8(pad as i8)),
            keep: _mm256_andnot_si256(
                _mm256_cmpgt_epi16(from, iota16),
                _mm256_cmpgt_epi16(to, iota16),
            ),
            zp16: _mm256_set1_epi16(zp as i16),
        })
    }

    /// The 16 lanes of the row starting at `src` (`None` if fewer than 16
    /// bytes follow it; the caller then takes the general path).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn lanes(&self, src: &[i8]) -> Option<__m256i> {
        let s = src.get(..16)?;
        // SAFETY: 16 bytes to load.
        let v = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
        let v = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(v, self.shift));
        Some(_mm256_and_si256(_mm256_sub_epi16(v, self.zp16), self.keep))
    }
}

/// `x[at..at + 16] = a | b << 16` lane by lane (the pair lanes of two
/// narrow rows); `false` if `x` has no room (nothing written).
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn store_pairs16(a: __m256i, b: __m256i, x: &mut [i32], at: usize) -> bool {
    let Some(d) = x.get_mut(at..at + 16) else {
        return false;
    };
    let lo = _mm256_unpacklo_epi16(a, b);
    let hi = _mm256_unpackhi_epi16(a, b);
    // SAFETY: room for 16 `i32` (64 bytes).
    unsafe {
        _mm256_storeu_si256(
            d.as_mut_ptr().cast(),
            _mm256_permute2x128_si256::<0x20>(lo, hi),
        );
        _mm256_storeu_si256(
            d.as_mut_ptr().add(8).cast(),
            _mm256_permute2x128_si256::<0x31>(lo, hi),
        );
    }
    true
}
