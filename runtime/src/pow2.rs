//! Power-of-two weights: each `i8` weight is `0` or `±2^e` with
//! `0 <= e <= 6`, stored as a 4-bit code, two per byte. The one layout
//! shared by the file format (`Storage::Pow2Constant`) and the kernels that
//! multiply by shifting (`conv_pow2_s8`, `fully_connected_pow2_s8`).
//!
//! The values are ordinary int8 weights on a logarithmic grid, so the
//! numerics are those of the dense kernels (an arithmetic shift of
//! `x − zp` by `e` is the product with `2^e`): a model stored so runs bit
//! for bit like the same weights stored a byte each, in half the bytes.
//!
//! A code is `s·8 + c`: `c = 0` is the weight 0 (and then `s` is 0, so that
//! every weight has one code), `c` in 1..=7 is `(−1)^s · 2^(c−1)`.

/// The largest exponent: `2^6 = 64`, the largest power of two below `i8::MAX`
/// whose negation also fits.
pub const MAX_EXPONENT: u32 = 6;

/// Int8 weights `[rows, row_len]` stored as 4-bit power-of-two codes.
///
/// Row `r` is `codes[r·row_bytes .. (r+1)·row_bytes]` with
/// `row_bytes = ceil(row_len / 2)`; weight `k` is the low nibble of byte
/// `k / 2` when `k` is even, the high one when odd. A row of odd length ends
/// in a 0 nibble, so rows start on a byte and a kernel can address each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pow2Rows<'a> {
    pub rows: usize,
    pub row_len: usize,
    pub codes: &'a [u8],
}

impl<'a> Pow2Rows<'a> {
    /// Code bytes per row.
    pub const fn row_bytes(row_len: usize) -> usize {
        row_len.div_ceil(2)
    }

    /// The stored bytes of `rows` rows of `row_len` weights (`None` on
    /// overflow).
    pub const fn stored_len(rows: usize, row_len: usize) -> Option<usize> {
        rows.checked_mul(Self::row_bytes(row_len))
    }

    /// Wraps a stored tensor of `rows` rows of `row_len` weights. `None`
    /// unless the length is exact, no code is a "negative zero" (`0b1000`)
    /// and the padding nibble of odd rows is 0: one encoding per weight
    /// matrix, so a reader and a writer cannot disagree.
    pub fn parse(codes: &'a [u8], rows: usize, row_len: usize) -> Option<Pow2Rows<'a>> {
        let w = Pow2Rows {
            rows,
            row_len,
            codes,
        };
        w.is_well_formed().then_some(w)
    }

    /// `codes` holds exactly `rows` rows: all a kernel must check per call
    /// (decoding reads any nibble safely; the loader has checked the codes).
    pub fn has_length(&self) -> bool {
        Self::stored_len(self.rows, self.row_len) == Some(self.codes.len())
    }

    /// What [`parse`](Self::parse) checks, for a kernel handed the rows.
    pub fn is_well_formed(&self) -> bool {
        let row_bytes = Self::row_bytes(self.row_len);
        let odd = self.row_len % 2 == 1;
        Self::stored_len(self.rows, self.row_len) == Some(self.codes.len())
            && self
                .codes
                .iter()
                .all(|&b| b & 0x0f != 0x08 && b & 0xf0 != 0x80)
            && (!odd
                || self
                    .codes
                    .chunks_exact(row_bytes.max(1))
                    .all(|row| row.last().is_none_or(|&b| b >> 4 == 0)))
    }

    /// Row `r`'s code bytes.
    #[inline]
    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = Self::row_bytes(self.row_len);
        self.codes.get(r * n..(r + 1) * n).unwrap_or(&[])
    }

    /// The code of weight `k` of a row's bytes (0 past its end).
    #[inline(always)]
    pub fn code(row: &[u8], k: usize) -> u8 {
        row.get(k / 2).map_or(0, |&b| (b >> ((k % 2) * 4)) & 0x0f)
    }
}

/// The weight a code stands for.
#[inline(always)]
pub const fn decode(code: u8) -> i8 {
    let c = code & 7;
    if c == 0 {
        return 0;
    }
    let magnitude = 1i8 << (c - 1);
    if code & 8 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The code of `w`, or `None` when `w` is not 0 or `±2^e` with
/// `e <= MAX_EXPONENT`.
pub const fn encode(w: i8) -> Option<u8> {
    if w == 0 {
        return Some(0);
    }
    let magnitude = w.unsigned_abs();
    if !magnitude.is_power_of_two() || magnitude > 1 << MAX_EXPONENT {
        return None;
    }
    let c = magnitude.trailing_zeros() as u8 + 1;
    Some(if w < 0 { 8 | c } else { c })
}

/// The smallest exponent a 3-bit code reaches: its four powers are
/// `2^3 ..= 2^6`, `8, 16, 32, 64`.
pub const X3_MIN_EXPONENT: u32 = MAX_EXPONENT - 3;

/// The non-zero weight a 3-bit code `s·4 + o` stands for:
/// `(−1)^s · 2^(3+o)`. Pruning leaves a layer's larger weights, which the
/// four top powers of its channel's scale cover, so the non-zeros of a
/// pruned layer need one bit less than [`decode`]'s codes (and have no zero
/// code: the bitmap holds the zeros).
#[inline(always)]
pub const fn decode_x3(code: u8) -> i8 {
    let magnitude = 1i8 << (X3_MIN_EXPONENT as u8 + (code & 3));
    if code & 4 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The 3-bit code of `w`, or `None` unless `w` is `±2^e` with
/// `X3_MIN_EXPONENT <= e <= MAX_EXPONENT`.
pub const fn encode_x3(w: i8) -> Option<u8> {
    let magnitude = w.unsigned_abs();
    if !magnitude.is_power_of_two()
        || magnitude < 1 << X3_MIN_EXPONENT
        || magnitude > 1 << MAX_EXPONENT
    {
        return None;
    }
    let o = (magnitude.trailing_zeros() - X3_MIN_EXPONENT) as u8;
    Some(if w < 0 { 4 | o } else { o })
}

/// Whether every weight has a code, so the tensor can be stored as
/// [`Pow2Rows`].
pub fn all_pow2(weights: &[i8]) -> bool {
    weights.iter().all(|&w| encode(w).is_some())
}

/// Encodes dense `[rows, row_len]` weights into `out` as [`Pow2Rows`] stores
/// them. Returns the bytes written, or `None` (leaving `out` in an
/// unspecified state) when `weights` is not whole rows, a weight has no code
/// or `out` is too short.
pub fn encode_pow2_rows_into(weights: &[i8], row_len: usize, out: &mut [u8]) -> Option<usize> {
    let rows = match row_len {
        0 => 0,
        n if weights.len().is_multiple_of(n) => weights.len() / n,
        _ => return None,
    };
    let row_bytes = Pow2Rows::row_bytes(row_len);
    let len = Pow2Rows::stored_len(rows, row_len)?;
    let out = out.get_mut(..len)?;
    out.fill(0);
    for (row, bytes) in weights
        .chunks_exact(row_len.max(1))
        .zip(out.chunks_exact_mut(row_bytes.max(1)))
    {
        for (k, &w) in row.iter().enumerate() {
            *bytes.get_mut(k / 2)? |= encode(w)? << ((k % 2) * 4);
        }
    }
    Some(len)
}

/// [`encode_pow2_rows_into`] a new vector (`None` when a weight has no code
/// or `weights` is not whole rows).
#[cfg(feature = "std")]
pub fn encode_pow2_rows(weights: &[i8], row_len: usize) -> Option<std::vec::Vec<u8>> {
    let rows = weights.len().checked_div(row_len).unwrap_or(0);
    let mut out = std::vec![0u8; Pow2Rows::stored_len(rows, row_len)?];
    let n = encode_pow2_rows_into(weights, row_len, &mut out)?;
    out.truncate(n);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_only_powers_of_two_have_one() {
        let mut coded = 0;
        for w in i8::MIN..=i8::MAX {
            match encode(w) {
                Some(c) => {
                    assert_eq!(decode(c), w);
                    coded += 1;
                }
                None => assert!(w.unsigned_abs().count_ones() != 1 || w.unsigned_abs() > 64),
            }
        }
        // 0, ±1, ±2, ±4, ±8, ±16, ±32, ±64.
        assert_eq!(coded, 15);
    }

    #[test]
    fn every_3_bit_code_round_trips_and_only_the_top_four_powers_have_one() {
        let coded: std::vec::Vec<i8> = (i8::MIN..=i8::MAX)
            .filter(|&w| encode_x3(w).is_some())
            .collect();
        assert_eq!(coded, [-64, -32, -16, -8, 8, 16, 32, 64]);
        for code in 0..8 {
            assert_eq!(encode_x3(decode_x3(code)), Some(code));
        }
    }

    #[test]
    fn rows_pack_low_nibble_first_with_zero_padding() {
        let w = [1i8, -2, 64, 0, -64, 4];
        let bytes = encode_pow2_rows(&w, 3).unwrap();
        assert_eq!(bytes, [0x1 | (0xa << 4), 0x7, 0xf << 4, 0x3]);
        let rows = Pow2Rows::parse(&bytes, 2, 3).unwrap();
        let decoded: std::vec::Vec<i8> = (0..2)
            .flat_map(|r| (0..3).map(move |k| decode(Pow2Rows::code(rows.row(r), k))))
            .collect();
        assert_eq!(decoded, w);
    }

    #[test]
    fn malformed_rows_are_refused() {
        assert!(Pow2Rows::parse(&[0x21], 1, 2).is_some());
        // Negative zero in either nibble.
        assert!(Pow2Rows::parse(&[0x28], 1, 2).is_none());
        assert!(Pow2Rows::parse(&[0x82], 1, 2).is_none());
        // A set padding nibble in an odd row.
        assert!(Pow2Rows::parse(&[0x12], 1, 1).is_none());
        // Wrong length.
        assert!(Pow2Rows::parse(&[0x11, 0x11], 1, 2).is_none());
        assert!(encode_pow2_rows(&[3], 1).is_none());
    }
}
