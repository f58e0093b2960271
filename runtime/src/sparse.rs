//! Pruned weights stored sparse: per row, a bitmap of the non-zero weights,
//! then the non-zero values packed. The one layout shared by the file format
//! (`Storage::SparseConstant`) and the kernels that skip the zeros
//! (`conv_sparse_s8`, `fully_connected_sparse_s8`).
//!
//! A bitmap costs one bit per weight, so a row is smaller than dense once
//! more than one weight in eight is zero; the converter stores a layer so
//! only when the whole tensor is smaller.

/// Int8 weights `[rows, row_len]` with their zeros left out.
///
/// Row `r`'s bitmap is `bitmap[r·row_bytes .. (r+1)·row_bytes]` with
/// `row_bytes = ceil(row_len / 8)`: bit `k % 8` (least significant first) of
/// its byte `k / 8` is set when weight `k` is non-zero; the bits past
/// `row_len` are 0. `values` holds the non-zero weights in row-major order,
/// so its length is the number of set bits.
///
/// The fields are private: [`parse`](Self::parse), the only way to make
/// one, checks all of that once, so a kernel can walk the bitmap without
/// checking it again on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SparseRows<'a> {
    rows: usize,
    row_len: usize,
    bitmap: &'a [u8],
    values: &'a [i8],
}

impl<'a> SparseRows<'a> {
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

    /// The non-zero weights, row after row.
    pub const fn values(&self) -> &'a [i8] {
        self.values
    }

    /// Splits a stored tensor (bitmap, then values) of `rows` rows of
    /// `row_len` weights. `None` unless the bitmap fits, its padding bits are
    /// 0, its set bits count the values exactly and no value is 0: one
    /// encoding per weight matrix, so a reader and a writer cannot disagree.
    pub fn parse(bytes: &'a [u8], rows: usize, row_len: usize) -> Option<SparseRows<'a>> {
        let row_bytes = Self::row_bytes(row_len);
        let (bitmap, values) = bytes.split_at_checked(rows.checked_mul(row_bytes)?)?;
        let values: &[i8] = bytemuck::cast_slice(values);
        let w = SparseRows {
            rows,
            row_len,
            bitmap,
            values,
        };
        (w.is_well_formed() && values.iter().all(|&v| v != 0)).then_some(w)
    }

    /// No bit is set past a row's end, and the set bits number the values:
    /// what a kernel needs to walk the bitmap (`parse` split it into whole
    /// rows).
    fn is_well_formed(&self) -> bool {
        let row_bytes = Self::row_bytes(self.row_len);
        let tail_bits = self.row_len % 8;
        let padding_clear = tail_bits == 0
            || self
                .bitmap
                .chunks_exact(row_bytes.max(1))
                .all(|row| row.last().is_none_or(|&b| b >> tail_bits == 0));
        let set: usize = self.bitmap.iter().map(|b| b.count_ones() as usize).sum();
        padding_clear && set == self.values.len()
    }

    /// Row `r`'s bitmap.
    #[inline]
    pub fn row_bitmap(&self, r: usize) -> &'a [u8] {
        let n = Self::row_bytes(self.row_len);
        self.bitmap.get(r * n..(r + 1) * n).unwrap_or(&[])
    }
}

/// Encodes dense `[rows, row_len]` weights into `out` as [`SparseRows`]
/// stores them: the bitmap, then the non-zero values. Returns the bytes
/// written, or `None` (leaving `out` in an unspecified state) when `weights`
/// is not whole rows or `out` is too short.
pub fn encode_sparse_rows_into(weights: &[i8], row_len: usize, out: &mut [u8]) -> Option<usize> {
    let row_bytes = SparseRows::row_bytes(row_len);
    let rows = match row_len {
        0 => 0,
        n if weights.len().is_multiple_of(n) => weights.len() / n,
        _ => return None,
    };
    let (bitmap, values) = out.split_at_mut_checked(rows.checked_mul(row_bytes)?)?;
    bitmap.fill(0);
    let mut n = 0;
    for (row, bits) in weights
        .chunks_exact(row_len.max(1))
        .zip(bitmap.chunks_exact_mut(row_bytes.max(1)))
    {
        for (k, &w) in row.iter().enumerate().filter(|(_, &w)| w != 0) {
            *bits.get_mut(k / 8)? |= 1 << (k % 8);
            *values.get_mut(n)? = w as u8;
            n += 1;
        }
    }
    Some(rows * row_bytes + n)
}

/// [`encode_sparse_rows_into`] a new vector (empty when `weights` is not
/// whole rows).
#[cfg(feature = "std")]
pub fn encode_sparse_rows(weights: &[i8], row_len: usize) -> std::vec::Vec<u8> {
    let rows = weights.len().checked_div(row_len).unwrap_or(0);
    let mut out = std::vec![0u8; rows * SparseRows::row_bytes(row_len) + weights.len()];
    let n = encode_sparse_rows_into(weights, row_len, &mut out).unwrap_or(0);
    out.truncate(n);
    out
}
