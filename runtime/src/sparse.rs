//! Pruned weights stored sparse: per row, a bitmap of the non-zero weights,
//! then the non-zero values packed. The one layout shared by the file format
//! (`Storage::SparseConstant`, `Storage::SparsePow2Constant`,
//! `Storage::SparsePow2x3Constant`) and the kernels that skip the zeros
//! (`conv_sparse_s8`, `fully_connected_sparse_s8` and their `_pow2_` and
//! `_pow2x3_` twins).
//!
//! A bitmap costs one bit per weight, so a row is smaller than dense once
//! more than one weight in eight is zero; the converter stores a layer so
//! only when the whole tensor is smaller. The non-zero values are a byte
//! each ([`Int8NonZeros`]), or, for weights on the power-of-two grid, a
//! 4-bit code each ([`Pow2NonZeros`]), or a 3-bit code each when they are
//! all among the four top powers `±8 … ±64` ([`Pow2x3NonZeros`]): pruning
//! and the logarithmic grid then compound (at 50 % sparsity, 37.5 % and
//! 31.25 % of the int8 bytes).

use core::marker::PhantomData;

/// How a [`SparseRowsOf`] stores its non-zero weights after the bitmap: the
/// one thing that differs between the sparse storages, so that one bitmap
/// walk serves both.
pub trait NonZeros: Copy {
    /// Bytes that hold `n` values (`None` on overflow).
    fn stored_len(n: usize) -> Option<usize>;

    /// Whether the `n` values in `bytes` (of [`stored_len`](Self::stored_len))
    /// are all non-zero with one encoding each, and any padding is 0.
    fn is_well_formed(bytes: &[u8], n: usize) -> bool;

    /// Value `i` (`None` past the stored bytes).
    fn get(bytes: &[u8], i: usize) -> Option<i8>;

    /// A kernel's place in the values, which it takes in order without
    /// bounds checks: an iterator's end test per weight (which
    /// `unwrap_unchecked` did not remove) made a sparse FullyConnected 36%
    /// slower on the Cortex-M4.
    type Cursor<'a>;

    /// A cursor at value `i`.
    fn cursor(bytes: &[u8], i: usize) -> Self::Cursor<'_>;

    /// The value at the cursor; moves it on.
    ///
    /// # Safety
    /// A value is left at the cursor: fewer values have been taken from it
    /// than the bytes it was made from hold after its start.
    unsafe fn take(cursor: &mut Self::Cursor<'_>) -> i8;

    /// Stores value `i` as `w` in `bytes`, zeroed beforehand; `None` when `w`
    /// has no encoding (0, or off the grid) or `bytes` is too short.
    fn put(bytes: &mut [u8], i: usize, w: i8) -> Option<()>;
}

/// Non-zero values a byte each (`Storage::SparseConstant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Int8NonZeros;

impl NonZeros for Int8NonZeros {
    fn stored_len(n: usize) -> Option<usize> {
        Some(n)
    }
    fn is_well_formed(bytes: &[u8], n: usize) -> bool {
        bytes.len() == n && bytes.iter().all(|&v| v != 0)
    }
    #[inline(always)]
    fn get(bytes: &[u8], i: usize) -> Option<i8> {
        bytes.get(i).map(|&b| b as i8)
    }
    type Cursor<'a> = core::slice::Iter<'a, i8>;

    #[inline(always)]
    fn cursor(bytes: &[u8], i: usize) -> Self::Cursor<'_> {
        let values: &[i8] = bytemuck::cast_slice(bytes.get(i..).unwrap_or(&[]));
        values.iter()
    }
    #[inline(always)]
    unsafe fn take(cursor: &mut Self::Cursor<'_>) -> i8 {
        debug_assert!(cursor.len() > 0);
        // SAFETY: the caller's guarantee: a value is left.
        unsafe { *cursor.next().unwrap_unchecked() }
    }
    fn put(bytes: &mut [u8], i: usize, w: i8) -> Option<()> {
        *bytes.get_mut(i).filter(|_| w != 0)? = w as u8;
        Some(())
    }
}

/// Non-zero values as 4-bit power-of-two codes (`Storage::SparsePow2Constant`),
/// two per byte, low nibble first, across the whole tensor; an odd count
/// ends in a 0 nibble. The codes are those of [`crate::pow2`] without the
/// zero codes `0b0000` and `0b1000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pow2NonZeros;

/// The weight of each 4-bit code: one load, where `pow2::decode` branches.
static CODE_WEIGHTS: [i8; 16] = {
    let mut t = [0i8; 16];
    let mut c = 0;
    while c < 16 {
        t[c] = crate::pow2::decode(c as u8);
        c += 1;
    }
    t
};

/// Code `i` of codes packed two a byte, low nibble first (the bits
/// `4·(i % 2)..` of `byte`, the byte holding it).
#[inline(always)]
fn nibble(byte: u8, i: usize) -> u8 {
    (byte >> ((i % 2) * 4)) & 0x0f
}

/// [`Pow2NonZeros`]' cursor.
#[derive(Clone, Debug)]
pub struct Pow2Cursor<'a> {
    bytes: &'a [u8],
    next: usize,
    /// The byte holding code `next` when `next` is odd (its high nibble).
    held: u8,
}

impl NonZeros for Pow2NonZeros {
    fn stored_len(n: usize) -> Option<usize> {
        Some(n.div_ceil(2))
    }
    fn is_well_formed(bytes: &[u8], n: usize) -> bool {
        let code = |k: usize| bytes.get(k / 2).map_or(0, |&b| nibble(b, k));
        // Every code a weight's (`c` of `s·8 + c` not 0), the padding 0.
        bytes.len() == n.div_ceil(2)
            && (0..n).all(|k| code(k) & 7 != 0)
            && (n.is_multiple_of(2) || code(n) == 0)
    }
    #[inline(always)]
    fn get(bytes: &[u8], i: usize) -> Option<i8> {
        bytes
            .get(i / 2)
            .map(|&b| CODE_WEIGHTS[usize::from(nibble(b, i))])
    }
    type Cursor<'a> = Pow2Cursor<'a>;

    #[inline(always)]
    fn cursor(bytes: &[u8], i: usize) -> Self::Cursor<'_> {
        Pow2Cursor {
            bytes,
            next: i,
            held: bytes.get(i / 2).copied().unwrap_or(0),
        }
    }
    #[inline(always)]
    unsafe fn take(c: &mut Self::Cursor<'_>) -> i8 {
        // A byte is loaded once for its two codes. (Each arm's nibble is
        // a constant: one shift computed from `next` measured 30% slower.)
        let code = if c.next % 2 == 1 {
            c.held >> 4
        } else {
            debug_assert!(c.next / 2 < c.bytes.len());
            // SAFETY: the caller's guarantee: code `next` is stored, in
            // byte `next / 2`.
            c.held = unsafe { *c.bytes.get_unchecked(c.next / 2) };
            c.held & 0x0f
        };
        c.next += 1;
        CODE_WEIGHTS[usize::from(code)]
    }
    fn put(bytes: &mut [u8], i: usize, w: i8) -> Option<()> {
        let code = crate::pow2::encode(w).filter(|_| w != 0)?;
        *bytes.get_mut(i / 2)? |= code << ((i % 2) * 4);
        Some(())
    }
}

/// Non-zero values as 3-bit power-of-two codes
/// (`Storage::SparsePow2x3Constant`): code `i` is bits `3i .. 3i+3` of the
/// bytes read as one little-endian bit string (least significant bit
/// first), across the whole tensor; the bits after the last code are 0.
/// The codes are those of [`crate::pow2::decode_x3`], `±8, ±16, ±32, ±64`:
/// all eight are weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pow2x3NonZeros;

/// The weight of each 3-bit code.
static CODE_X3_WEIGHTS: [i8; 8] = {
    let mut t = [0i8; 8];
    let mut c = 0;
    while c < 8 {
        t[c] = crate::pow2::decode_x3(c as u8);
        c += 1;
    }
    t
};

/// Code `i` of 3-bit codes packed from the least significant bit (`None`
/// unless all its bits are stored).
#[inline(always)]
fn code_x3(bytes: &[u8], i: usize) -> Option<u8> {
    let bit = i.checked_mul(3)?;
    let lo = *bytes.get(bit / 8)?;
    let pair = match bit % 8 {
        0..=5 => u16::from(lo),
        _ => u16::from(lo) | u16::from(*bytes.get(bit / 8 + 1)?) << 8,
    };
    Some(((pair >> (bit % 8)) & 7) as u8)
}

/// [`Pow2x3NonZeros`]' cursor: the bits of the byte being read that are
/// not taken yet, refilled a byte at a time.
#[derive(Clone, Debug)]
pub struct Pow2x3Cursor<'a> {
    bytes: &'a [u8],
    next_byte: usize,
    bits: u32,
    held: u32,
}

impl NonZeros for Pow2x3NonZeros {
    fn stored_len(n: usize) -> Option<usize> {
        Some(n.checked_mul(3)?.div_ceil(8))
    }
    fn is_well_formed(bytes: &[u8], n: usize) -> bool {
        // Every code is a weight; the padding bits after the last one are 0.
        let padding = (bytes.len() * 8).saturating_sub(n.saturating_mul(3));
        Self::stored_len(n) == Some(bytes.len())
            && bytes
                .last()
                .is_none_or(|&b| padding == 0 || b >> (8 - padding) == 0)
    }
    #[inline(always)]
    fn get(bytes: &[u8], i: usize) -> Option<i8> {
        code_x3(bytes, i).map(|c| CODE_X3_WEIGHTS[usize::from(c)])
    }
    type Cursor<'a> = Pow2x3Cursor<'a>;

    #[inline(always)]
    fn cursor(bytes: &[u8], i: usize) -> Self::Cursor<'_> {
        let bit = i.saturating_mul(3);
        let skip = (bit % 8) as u32;
        Pow2x3Cursor {
            bytes,
            next_byte: bit / 8 + 1,
            bits: u32::from(bytes.get(bit / 8).copied().unwrap_or(0)) >> skip,
            held: 8 - skip,
        }
    }
    #[inline(always)]
    unsafe fn take(c: &mut Self::Cursor<'_>) -> i8 {
        if c.held < 3 {
            debug_assert!(c.next_byte < c.bytes.len());
            // SAFETY: the caller's guarantee: the code at the cursor is
            // stored, and fewer than its 3 bits are held, so it ends in byte
            // `next_byte`.
            let byte = unsafe { *c.bytes.get_unchecked(c.next_byte) };
            c.bits |= u32::from(byte) << c.held;
            c.next_byte += 1;
            c.held += 8;
        }
        let code = c.bits & 7;
        c.bits >>= 3;
        c.held -= 3;
        CODE_X3_WEIGHTS[code as usize]
    }
    fn put(bytes: &mut [u8], i: usize, w: i8) -> Option<()> {
        let code = u16::from(crate::pow2::encode_x3(w)?);
        let bit = i.checked_mul(3)?;
        let placed = code << (bit % 8);
        *bytes.get_mut(bit / 8)? |= placed as u8;
        if bit % 8 > 5 {
            *bytes.get_mut(bit / 8 + 1)? |= (placed >> 8) as u8;
        }
        Some(())
    }
}

/// Int8 weights `[rows, row_len]` with their zeros left out, the non-zero
/// ones stored as `V` says ([`SparseRows`], [`SparsePow2Rows`],
/// [`SparsePow2x3Rows`]).
///
/// Row `r`'s bitmap is `bitmap[r·row_bytes .. (r+1)·row_bytes]` with
/// `row_bytes = ceil(row_len / 8)`: bit `k % 8` (least significant first) of
/// its byte `k / 8` is set when weight `k` is non-zero; the bits past
/// `row_len` are 0. The values, encoded as `V` says, are the non-zero
/// weights in row-major order, one per set bit.
///
/// The fields are private: [`parse`](Self::parse), the only way to make
/// one, checks all of that once, so a kernel can walk the bitmap without
/// checking it again on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SparseRowsOf<'a, V: NonZeros> {
    rows: usize,
    row_len: usize,
    bitmap: &'a [u8],
    values: &'a [u8],
    nonzero: usize,
    encoding: PhantomData<V>,
}

/// Sparse int8 weights: a bitmap and a byte per non-zero.
pub type SparseRows<'a> = SparseRowsOf<'a, Int8NonZeros>;

/// Sparse power-of-two weights: a bitmap and a 4-bit code per non-zero.
pub type SparsePow2Rows<'a> = SparseRowsOf<'a, Pow2NonZeros>;

/// Sparse power-of-two weights among the four top powers: a bitmap and a
/// 3-bit code per non-zero.
pub type SparsePow2x3Rows<'a> = SparseRowsOf<'a, Pow2x3NonZeros>;

impl<'a> SparseRows<'a> {
    /// The non-zero weights, row after row.
    pub fn values(&self) -> &'a [i8] {
        bytemuck::cast_slice(self.values)
    }
}

impl<'a, V: NonZeros> SparseRowsOf<'a, V> {
    /// Bitmap bytes per row.
    pub const fn row_bytes(row_len: usize) -> usize {
        row_len.div_ceil(8)
    }

    /// Rows (output channels).
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Weights per row, zeros included.
    pub const fn row_len(&self) -> usize {
        self.row_len
    }

    /// Every row's bitmap, row after row.
    pub const fn bitmap(&self) -> &'a [u8] {
        self.bitmap
    }

    /// The number of non-zero weights.
    pub const fn nonzero(&self) -> usize {
        self.nonzero
    }

    /// A cursor at non-zero value `i`, for a kernel that takes them in
    /// order ([`NonZeros::take`]).
    #[inline(always)]
    pub fn cursor(&self, i: usize) -> V::Cursor<'a> {
        V::cursor(self.values, i)
    }

    /// Non-zero value `i` (in row-major order; `None` past the end, where
    /// the last byte may hold a 3-bit padding code).
    #[inline(always)]
    pub fn value(&self, i: usize) -> Option<i8> {
        self.stored_value(i).filter(|_| i < self.nonzero)
    }

    /// Value `i` as stored (`None` past the bytes), for a kernel whose `i`
    /// counts set bits and so stays below [`nonzero`](Self::nonzero): no
    /// comparison with it per weight, as [`value`](Self::value) makes.
    #[inline(always)]
    pub(crate) fn stored_value(&self, i: usize) -> Option<i8> {
        V::get(self.values, i)
    }

    /// The non-zero values from `i` on, in row-major order.
    pub fn values_from(&self, i: usize) -> impl Iterator<Item = i8> + 'a {
        let values = self.values;
        (i..self.nonzero).map(move |k| V::get(values, k).unwrap_or(0))
    }

    /// Splits a stored tensor (bitmap, then values) of `rows` rows of
    /// `row_len` weights. `None` unless the bitmap fits, its padding bits are
    /// 0, its set bits count the values exactly and every value is non-zero
    /// with one encoding: one encoding per weight matrix, so a reader and a
    /// writer cannot disagree.
    pub fn parse(bytes: &'a [u8], rows: usize, row_len: usize) -> Option<SparseRowsOf<'a, V>> {
        let row_bytes = Self::row_bytes(row_len);
        let (bitmap, values) = bytes.split_at_checked(rows.checked_mul(row_bytes)?)?;
        let tail_bits = row_len % 8;
        let padding_clear = tail_bits == 0
            || bitmap
                .chunks_exact(row_bytes.max(1))
                .all(|row| row.last().is_none_or(|&b| b >> tail_bits == 0));
        let nonzero: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        let w = SparseRowsOf {
            rows,
            row_len,
            bitmap,
            values,
            nonzero,
            encoding: PhantomData,
        };
        (padding_clear && V::is_well_formed(values, nonzero)).then_some(w)
    }

    /// Row `r`'s bitmap.
    #[inline]
    pub fn row_bitmap(&self, r: usize) -> &'a [u8] {
        let n = Self::row_bytes(self.row_len);
        self.bitmap.get(r * n..(r + 1) * n).unwrap_or(&[])
    }

    /// Decodes rows `first..first + n` into `out` (`row_len` weights each,
    /// zeros included; rows that do not fit are left out).
    pub fn decode_rows(&self, first: usize, n: usize, out: &mut [i8]) {
        // The values of row `first` start after the set bits of the rows
        // before it, and are taken in order: on the Cortex-M4 a cursor
        // decodes ECG5000's pruned convs in 1.5–3.5 % fewer instructions
        // than reading each value by its index.
        let row_bytes = Self::row_bytes(self.row_len);
        let before = self.bitmap.get(..first * row_bytes).unwrap_or(&[]);
        let start: usize = before.iter().map(|b| b.count_ones() as usize).sum();
        let mut values = V::cursor(self.values, start);
        for (r, row_out) in out
            .chunks_exact_mut(self.row_len.max(1))
            .take(n)
            .enumerate()
        {
            row_out.fill(0);
            for (i, &byte) in self.row_bitmap(first + r).iter().enumerate() {
                let mut bits = byte;
                while bits != 0 {
                    let k = i * 8 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    // SAFETY: `parse` checked that the set bits count the
                    // stored values; one is taken per set bit from `start`,
                    // the set bits before this row's, so a value is left.
                    let v = unsafe { V::take(&mut values) };
                    if let Some(w) = row_out.get_mut(k) {
                        *w = v;
                    }
                }
            }
        }
    }
}

/// The bytes dense `[rows, row_len]` weights take stored sparse with values
/// encoded as `V` says (`None` when not whole rows).
pub fn stored_len<V: NonZeros>(weights: &[i8], row_len: usize) -> Option<usize> {
    let rows = match row_len {
        0 => 0,
        n if weights.len().is_multiple_of(n) => weights.len() / n,
        _ => return None,
    };
    let nonzero = weights.iter().filter(|&&w| w != 0).count();
    rows.checked_mul(SparseRowsOf::<V>::row_bytes(row_len))?
        .checked_add(V::stored_len(nonzero)?)
}

/// Encodes dense `[rows, row_len]` weights into `out` as [`SparseRows`]
/// with values encoded as `V` says: the bitmap, then the non-zero values.
/// Returns the bytes written, or `None` (leaving `out` in an unspecified
/// state) when `weights` is not whole rows, a weight has no encoding or
/// `out` is too short.
pub fn encode_sparse_into<V: NonZeros>(
    weights: &[i8],
    row_len: usize,
    out: &mut [u8],
) -> Option<usize> {
    let len = stored_len::<V>(weights, row_len)?;
    let row_bytes = SparseRowsOf::<V>::row_bytes(row_len);
    let rows = weights.len().checked_div(row_len).unwrap_or(0);
    let out = out.get_mut(..len)?;
    out.fill(0);
    let (bitmap, values) = out.split_at_mut_checked(rows * row_bytes)?;
    let mut n = 0;
    for (row, bits) in weights
        .chunks_exact(row_len.max(1))
        .zip(bitmap.chunks_exact_mut(row_bytes.max(1)))
    {
        for (k, &w) in row.iter().enumerate().filter(|(_, &w)| w != 0) {
            *bits.get_mut(k / 8)? |= 1 << (k % 8);
            V::put(values, n, w)?;
            n += 1;
        }
    }
    Some(len)
}

/// Encodes dense `[rows, row_len]` weights into `out` as [`SparseRows`]
/// stores them: the bitmap, then the non-zero values a byte each. Returns
/// the bytes written, or `None` (leaving `out` in an unspecified state)
/// when `weights` is not whole rows or `out` is too short.
pub fn encode_sparse_rows_into(weights: &[i8], row_len: usize, out: &mut [u8]) -> Option<usize> {
    encode_sparse_into::<Int8NonZeros>(weights, row_len, out)
}

/// [`encode_sparse_into`] a new vector (`None` when `weights` is not whole
/// rows or a weight has no encoding).
#[cfg(feature = "std")]
pub fn encode_sparse<V: NonZeros>(weights: &[i8], row_len: usize) -> Option<std::vec::Vec<u8>> {
    let mut out = std::vec![0u8; stored_len::<V>(weights, row_len)?];
    encode_sparse_into::<V>(weights, row_len, &mut out)?;
    Some(out)
}

/// [`encode_sparse_rows_into`] a new vector (empty when `weights` is not
/// whole rows).
#[cfg(feature = "std")]
pub fn encode_sparse_rows(weights: &[i8], row_len: usize) -> std::vec::Vec<u8> {
    encode_sparse::<Int8NonZeros>(weights, row_len).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_non_zeros_pack_low_nibble_first_across_rows() {
        // Rows of 3: [1, 0, -2], [0, 64, 0] → 3 non-zero codes.
        let w = [1i8, 0, -2, 0, 64, 0];
        let bytes = encode_sparse::<Pow2NonZeros>(&w, 3).unwrap();
        assert_eq!(bytes, [0b101, 0b010, 0x1 | (0xa << 4), 0x7]);
        let rows = SparsePow2Rows::parse(&bytes, 2, 3).unwrap();
        assert_eq!(rows.nonzero(), 3);
        assert_eq!(
            rows.values_from(0).collect::<std::vec::Vec<_>>(),
            [1, -2, 64]
        );
        assert_eq!(
            (rows.value(1), rows.value(2), rows.value(4)),
            (Some(-2), Some(64), None)
        );
        // From a code in a byte's high nibble, and from a low one.
        let from = |i| rows.values_from(i).collect::<std::vec::Vec<_>>();
        assert_eq!((from(1), from(2)), (std::vec![-2, 64], std::vec![64]));
        // Off the grid, or no such code: nothing is written.
        assert!(encode_sparse::<Pow2NonZeros>(&[3, 0], 2).is_none());
    }

    #[test]
    fn pow2x3_non_zeros_pack_from_the_least_significant_bit_across_rows() {
        // Rows of 3: [8, 0, -16], [0, 64, -8] → codes 0, 5, 3, 4.
        let w = [8i8, 0, -16, 0, 64, -8];
        let bytes = encode_sparse::<Pow2x3NonZeros>(&w, 3).unwrap();
        // Codes 0 | 5 << 3 | 3 << 6 = 0xe8, then 3 >> 2 | 4 << 1 = 0x08.
        assert_eq!(bytes, [0b101, 0b110, 0xe8, 0x08]);
        let rows = SparsePow2x3Rows::parse(&bytes, 2, 3).unwrap();
        assert_eq!(rows.nonzero(), 4);
        let from = |i| rows.values_from(i).collect::<std::vec::Vec<_>>();
        assert_eq!(from(0), [8, -16, 64, -8]);
        assert_eq!((from(2), from(3)), (std::vec![64, -8], std::vec![-8]));
        // The kernels' cursor, from each start: a code split across two
        // bytes (code 2) included.
        for i in 0..4 {
            let mut c = Pow2x3NonZeros::cursor(&bytes[2..], i);
            // SAFETY: 4 codes are stored; 4 − i are taken from `i`.
            let taken: std::vec::Vec<i8> = (i..4)
                .map(|_| unsafe { Pow2x3NonZeros::take(&mut c) })
                .collect();
            assert_eq!(taken, from(i));
        }
        assert_eq!(rows.value(4), None);
        // 4, 0 and 128's neighbours have no 3-bit code: nothing is written.
        assert!(encode_sparse::<Pow2x3NonZeros>(&[4, 0], 2).is_none());
        assert!(encode_sparse::<Pow2x3NonZeros>(&[-128, 0], 2).is_none());
    }

    #[test]
    fn malformed_pow2x3_non_zeros_are_refused() {
        let ok = [0b101u8, 0b110, 0xe8, 0x08];
        assert!(SparsePow2x3Rows::parse(&ok, 2, 3).is_some());
        // A set padding bit after the 12 code bits.
        assert!(SparsePow2x3Rows::parse(&[0b101, 0b110, 0xe8, 0x18], 2, 3).is_none());
        // Too few or too many code bytes for the set bits.
        assert!(SparsePow2x3Rows::parse(&ok[..3], 2, 3).is_none());
        assert!(SparsePow2x3Rows::parse(&[ok.as_slice(), &[0]].concat(), 2, 3).is_none());
    }

    #[test]
    fn malformed_pow2_non_zeros_are_refused() {
        let ok = [0b101u8, 0b010, 0xa1, 0x07];
        assert!(SparsePow2Rows::parse(&ok, 2, 3).is_some());
        // A zero code, either sign, among the values.
        assert!(SparsePow2Rows::parse(&[0b101, 0b010, 0xa0, 0x07], 2, 3).is_none());
        assert!(SparsePow2Rows::parse(&[0b101, 0b010, 0xa8, 0x07], 2, 3).is_none());
        // A set padding nibble after an odd count.
        assert!(SparsePow2Rows::parse(&[0b101, 0b010, 0xa1, 0x17], 2, 3).is_none());
        // Too few or too many code bytes for the set bits.
        assert!(SparsePow2Rows::parse(&ok[..3], 2, 3).is_none());
        assert!(SparsePow2Rows::parse(&[ok.as_slice(), &[1]].concat(), 2, 3).is_none());
        // The same bytes read as int8 values: three bits, two value bytes.
        assert!(SparseRows::parse(&ok, 2, 3).is_none());
    }
}
