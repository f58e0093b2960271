//! Packed weights (sparse, power-of-two) run by the dense kernels: a block
//! of output channels at a time is decoded into an `i8` buffer on the
//! stack, then the kernel chosen for that block's shape (SIMD, DSP or
//! reference) runs it.
//!
//! Only where an optimized dense kernel takes the layer: the packed
//! reference kernels beat the dense reference (on the Cortex-M0 the pow2
//! kernels take 2–4× fewer instructions than `conv_s8`), and decoding would
//! only add to it. And not for a sparse FullyConnected, whose kernel reads
//! each non-zero once, as decoding would (see `ops::fully_connected`).
//!
//! Output channels are independent, and decoding is exact, so this is
//! bit-exact with the kernels that read the packed forms directly
//! ([`conv_sparse_s8`](crate::kernels::conv_sparse_s8),
//! [`conv_pow2_s8`](crate::kernels::conv_pow2_s8), and their
//! FullyConnected twins), which define the result and remain the fallback.
//! Those walk the packing per tap and run at a fraction of the dense
//! kernels' speed (ECG5000 on x86-64: 120 µs sparse, 1 ms pow2, against
//! 8 µs dense). A block is whole groups when a group's rows fit the buffer,
//! else part of one group's rows (then its input is that group's channels
//! alone).

use crate::kernels::select;
use crate::kernels::ConvParams;
#[cfg(feature = "pow2-weights")]
use crate::kernels::FullyConnectedParams;
#[cfg(feature = "pow2-weights")]
use crate::pow2::{decode, Pow2Rows};
#[cfg(feature = "sparse-weights")]
use crate::sparse::{NonZeros, SparseRowsOf};

/// Bytes of decoded weights per block: on microcontrollers a bounded share
/// of a small stack, elsewhere enough for most layers in one block.
pub(super) const DECODE_BYTES: usize = if cfg!(target_os = "none") {
    1024
} else {
    16384
};

/// Weights `[rows, row_len]` in a packed form that decodes row by row.
pub(super) trait PackedRows {
    fn rows(&self) -> usize;
    fn row_len(&self) -> usize;
    /// The stored bytes are as long as `rows` rows need. Only this is
    /// checked per call: the loader has validated the rest once, and
    /// decoding reads every byte through bounds-checked accesses.
    fn has_length(&self) -> bool;
    /// Decodes rows `first..first + n` into `out` (`n · row_len` weights).
    fn decode_rows(&self, first: usize, n: usize, out: &mut [i8]);
    /// The weights that are not zero (every one, for a form that stores
    /// zeros).
    fn nonzero(&self) -> usize {
        self.rows() * self.row_len()
    }
}

/// The two weights of every code byte (low nibble first): one lookup per
/// byte, where decoding each nibble costs a few branches (measured: the
/// decode was half the time of a 32→32 conv layer).
#[cfg(feature = "pow2-weights")]
static PAIRS: [[i8; 2]; 256] = {
    let mut t = [[0i8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [decode(b as u8 & 0x0f), decode(b as u8 >> 4)];
        b += 1;
    }
    t
};

#[cfg(feature = "pow2-weights")]
impl PackedRows for Pow2Rows<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn row_len(&self) -> usize {
        self.row_len
    }
    fn has_length(&self) -> bool {
        Pow2Rows::has_length(self)
    }
    fn decode_rows(&self, first: usize, n: usize, out: &mut [i8]) {
        for (r, row_out) in out
            .chunks_exact_mut(self.row_len.max(1))
            .take(n)
            .enumerate()
        {
            let codes = self.row(first + r);
            let (whole, last) = row_out.as_chunks_mut::<2>();
            for (pair, &byte) in whole.iter_mut().zip(codes) {
                *pair = PAIRS[usize::from(byte)];
            }
            // An odd row's last byte holds one weight and the padding.
            if let (Some(v), Some(&byte)) = (last.first_mut(), codes.last()) {
                *v = PAIRS[usize::from(byte)][0];
            }
        }
    }
}

#[cfg(feature = "sparse-weights")]
impl<V: NonZeros> PackedRows for SparseRowsOf<'_, V> {
    fn rows(&self) -> usize {
        SparseRowsOf::rows(self)
    }
    fn row_len(&self) -> usize {
        SparseRowsOf::row_len(self)
    }
    fn has_length(&self) -> bool {
        // `parse` checked it when it made `self`.
        true
    }
    fn decode_rows(&self, first: usize, n: usize, out: &mut [i8]) {
        SparseRowsOf::decode_rows(self, first, n, out)
    }
    fn nonzero(&self) -> usize {
        SparseRowsOf::nonzero(self)
    }
}

/// Decodes rows `first..first + n` of `w` into the front of `buf`.
fn decode_block<'b, W: PackedRows>(w: &W, first: usize, n: usize, buf: &'b mut [i8]) -> &'b [i8] {
    let Some(out) = buf.get_mut(..n * w.row_len()) else {
        return &[];
    };
    w.decode_rows(first, n, out);
    out
}

/// Whether a conv with these weights runs in decoded blocks of at most `N`
/// bytes (a row must fit), rather than on the packed kernel: when an
/// optimized dense kernel takes it, unless so few weights are non-zero that
/// the packed kernel is faster ([`select::conv_sparse_is_direct`]). The op
/// decides it once, when it is prepared.
pub(super) fn conv_fits<const N: usize, W: PackedRows>(p: &ConvParams, w: &W) -> bool {
    let total = w.rows() * w.row_len();
    w.row_len() <= N
        && select::conv_has_optimized(p)
        && !select::conv_sparse_is_direct(w.nonzero(), w.rows(), total)
}

/// Conv over packed weights, in decoded blocks of at most `N` bytes on the
/// stack, or in `spare` when that is longer (the arena past the plan, which
/// the caller may give: fewer blocks, each of which rebuilds the dense
/// kernel's input columns). Whether it pays is [`conv_fits`]' question,
/// asked by the caller. Returns `false`, writing nothing, when no row fits
/// the buffer (the caller then runs the packed kernel) or the operands do
/// not have the lengths of `p` (the kernels' own preconditions).
pub(super) fn conv<const N: usize, W: PackedRows>(
    p: &ConvParams,
    x: &[i8],
    w: &W,
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    out: &mut [i8],
    spare: &mut [u8],
) -> bool {
    let groups = p.groups.max(1);
    let (cin_g, cout_g) = (p.in_channels / groups, p.out_channels / groups);
    let (in_plane, out_plane) = (p.in_h * p.in_w, p.out_h * p.out_w);
    let mut stack = [0i8; N];
    let buf: &mut [i8] = match spare.len() > N {
        true => bytemuck::cast_slice_mut(spare),
        false => &mut stack,
    };
    let cap = buf.len().checked_div(w.row_len()).unwrap_or(0);
    let lens_ok = w.rows() == p.out_channels
        && bias.len() == p.out_channels
        && multiplier.len() == p.out_channels
        && shift.len() == p.out_channels
        && out.len() == p.out_channels * out_plane
        && x.len() == p.in_channels * in_plane;
    if cap == 0 || cout_g == 0 || !lens_ok || !w.has_length() {
        return false;
    }
    let mut run = |oc0: usize, n: usize, in0: usize, bp: ConvParams| {
        let weights = decode_block(w, oc0, n, buf);
        let xs = x.get(in0 * in_plane..(in0 + bp.in_channels) * in_plane);
        let ys = out.get_mut(oc0 * out_plane..(oc0 + n) * out_plane);
        let rq = (
            bias.get(oc0..oc0 + n),
            multiplier.get(oc0..oc0 + n),
            shift.get(oc0..oc0 + n),
        );
        if let (Some(xs), Some(ys), (Some(b), Some(m), Some(s))) = (xs, ys, rq) {
            (select::conv(&bp).run)(&bp, xs, weights, b, m, s, ys);
        }
    };
    if cout_g <= cap {
        // Whole groups per block.
        let per_block = (cap / cout_g).clamp(1, groups);
        for g0 in (0..groups).step_by(per_block) {
            let k = per_block.min(groups - g0);
            let bp = ConvParams {
                in_channels: k * cin_g,
                out_channels: k * cout_g,
                groups: k,
                ..*p
            };
            run(g0 * cout_g, k * cout_g, g0 * cin_g, bp);
        }
    } else {
        // Part of one group's rows per block, over that group's input.
        for g in 0..groups {
            for c0 in (0..cout_g).step_by(cap) {
                let n = cap.min(cout_g - c0);
                let bp = ConvParams {
                    in_channels: cin_g,
                    out_channels: n,
                    groups: 1,
                    ..*p
                };
                run(g * cout_g + c0, n, g * cin_g, bp);
            }
        }
    }
    true
}

/// Whether a FullyConnected runs in decoded blocks of at most `N` bytes:
/// when it can ([`fully_connected_can_block`]) and an optimized dense kernel
/// takes it. The op decides it once, when it is prepared.
#[cfg(feature = "pow2-weights")]
pub(super) fn fully_connected_fits<const N: usize, W: PackedRows>(
    p: &FullyConnectedParams,
    w: &W,
) -> bool {
    fully_connected_can_block::<N, W>(p, w) && select::fully_connected_has_optimized(p)
}

/// One input row (a block's outputs are then contiguous), and a weight row
/// fits `N` bytes.
#[cfg(feature = "pow2-weights")]
fn fully_connected_can_block<const N: usize, W: PackedRows>(
    p: &FullyConnectedParams,
    w: &W,
) -> bool {
    p.rows == 1 && w.row_len() <= N && w.row_len() > 0
}

/// FullyConnected over packed weights, in decoded blocks of output
/// features. Whether it pays is [`fully_connected_fits`]' question, asked
/// by the caller. Returns `false`, writing nothing, unless
/// [`fully_connected_can_block`] and the operands have the lengths of `p`.
#[cfg(feature = "pow2-weights")]
pub(super) fn fully_connected<const N: usize, W: PackedRows>(
    p: &FullyConnectedParams,
    x: &[i8],
    w: &W,
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    out: &mut [i8],
) -> bool {
    let n_all = p.out_features;
    let lens_ok = w.rows() == n_all
        && w.row_len() == p.in_features
        && bias.len() == n_all
        && multiplier.len() == n_all
        && shift.len() == n_all
        && out.len() == n_all
        && x.len() == p.in_features;
    if !fully_connected_can_block::<N, W>(p, w) || !lens_ok || !w.has_length() {
        return false;
    }
    let cap = N / w.row_len();
    let mut buf = [0i8; N];
    for n0 in (0..n_all).step_by(cap) {
        let n = cap.min(n_all - n0);
        let bp = FullyConnectedParams {
            out_features: n,
            ..*p
        };
        let weights = decode_block(w, n0, n, &mut buf);
        let rq = (
            bias.get(n0..n0 + n),
            multiplier.get(n0..n0 + n),
            shift.get(n0..n0 + n),
        );
        if let (Some(ys), (Some(b), Some(m), Some(s))) = (out.get_mut(n0..n0 + n), rq) {
            (select::fully_connected(&bp).run)(&bp, x, weights, b, m, s, ys);
        }
    }
    true
}

#[cfg(all(test, feature = "pow2-weights", feature = "sparse-weights"))]
mod tests {
    use super::*;
    use crate::kernels::{conv_pow2_s8, fully_connected_pow2_s8};
    use crate::pow2::encode_pow2_rows;
    use crate::sparse::{
        encode_sparse, encode_sparse_rows, Pow2NonZeros, Pow2x3NonZeros, SparsePow2Rows,
        SparsePow2x3Rows, SparseRows,
    };
    use std::vec;
    use std::vec::Vec;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Random power-of-two weights: every code but `0b1000`.
    fn pow2_weights(n: usize, seed: &mut u64) -> Vec<i8> {
        (0..n)
            .map(|_| {
                let c = (lcg(seed) % 15) as u8;
                decode(if c >= 8 { c + 1 } else { c })
            })
            .collect()
    }

    /// Blocks of every kind (whole groups, parts of a group, one row each)
    /// give the shift kernel's output, on random grouped, strided, padded
    /// convs with small buffers that force many blocks.
    #[test]
    fn conv_blocks_match_the_shift_kernel() {
        let mut seed = 1;
        let mut ran = 0;
        for case in 0..300 {
            let groups = 1 + (lcg(&mut seed) % 3) as usize;
            let cin_g = 1 + (lcg(&mut seed) % 3) as usize;
            let cout_g = 1 + (lcg(&mut seed) % 5) as usize;
            let (kh, kw) = (
                1 + (lcg(&mut seed) % 2) as usize,
                1 + (lcg(&mut seed) % 3) as usize,
            );
            let (in_h, in_w) = (
                kh + (lcg(&mut seed) % 3) as usize,
                kw + (lcg(&mut seed) % 5) as usize,
            );
            let stride_w = 1 + (lcg(&mut seed) % 2) as usize;
            let pad_left = (lcg(&mut seed) % 2) as usize;
            let out_h = in_h - kh + 1;
            let out_w = (in_w + pad_left - kw) / stride_w + 1;
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
                stride_w,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left,
                groups,
                input_zero_point: (lcg(&mut seed) % 256) as i32 - 128,
                output_zero_point: (lcg(&mut seed) % 256) as i32 - 128,
                act_min: -128,
                act_max: 127,
            };
            let row_len = cin_g * kh * kw;
            let w = pow2_weights(p.out_channels * row_len, &mut seed);
            let codes = encode_pow2_rows(&w, row_len).unwrap();
            let rows = Pow2Rows::parse(&codes, p.out_channels, row_len).unwrap();
            let x: Vec<i8> = (0..p.in_channels * in_h * in_w)
                .map(|_| lcg(&mut seed) as i8)
                .collect();
            let n = p.out_channels;
            let bias: Vec<i32> = (0..n)
                .map(|_| (lcg(&mut seed) % 2001) as i32 - 1000)
                .collect();
            let mult = vec![1 << 30; n];
            let shift = vec![-3i8; n];
            let mut want = vec![0i8; n * out_h * out_w];
            conv_pow2_s8(&p, &x, &rows, &bias, &mult, &shift, &mut want);
            let rq = (&bias[..], &mult[..], &shift[..]);
            // Rows are at most 18 weights: 64 bytes hold 3 or more rows,
            // 12 bytes one or two (or none: then the shift kernel runs).
            let mut y = vec![0x55i8; want.len()];
            // Decoded blocks give the packed kernel's result on whichever
            // dense kernel takes the block (the op only runs them where an
            // optimized one does: `conv_fits`).
            assert!(conv::<64, _>(&p, &x, &rows, rq, &mut y, &mut []));
            assert_eq!(y, want, "case {case}: {p:?}");
            if select::conv_has_optimized(&p) {
                ran += 1;
            }
            let mut y = vec![0x55i8; want.len()];
            assert_eq!(
                conv::<12, _>(&p, &x, &rows, rq, &mut y, &mut []),
                row_len <= 12
            );
            if row_len <= 12 {
                assert_eq!(y, want, "case {case}, 12 bytes: {p:?}");
            }
            // The same weights stored sparse (a fifteenth are zero).
            let stored = encode_sparse_rows(&w, row_len);
            let sparse = SparseRows::parse(&stored, p.out_channels, row_len).unwrap();
            let mut y = vec![0x55i8; want.len()];
            assert!(conv::<18, _>(&p, &x, &sparse, rq, &mut y, &mut []));
            assert_eq!(y, want, "case {case}, sparse: {p:?}");
            // And stored sparse with 4-bit codes for the non-zeros.
            let stored = encode_sparse::<Pow2NonZeros>(&w, row_len).unwrap();
            let sparse_pow2 = SparsePow2Rows::parse(&stored, p.out_channels, row_len).unwrap();
            let mut y = vec![0x55i8; want.len()];
            assert!(conv::<18, _>(&p, &x, &sparse_pow2, rq, &mut y, &mut []));
            assert_eq!(y, want, "case {case}, sparse pow2: {p:?}");
            // Moved to the four top powers and stored with 3-bit codes:
            // the same as those weights decoded from 4-bit ones.
            let top: Vec<i8> = w
                .iter()
                .map(|&v| v.saturating_mul(8).clamp(-64, 64))
                .collect();
            let codes = encode_pow2_rows(&top, row_len).unwrap();
            let top_rows = Pow2Rows::parse(&codes, p.out_channels, row_len).unwrap();
            let mut want_top = vec![0i8; want.len()];
            conv_pow2_s8(&p, &x, &top_rows, &bias, &mult, &shift, &mut want_top);
            let stored = encode_sparse::<Pow2x3NonZeros>(&top, row_len).unwrap();
            let sparse_x3 = SparsePow2x3Rows::parse(&stored, p.out_channels, row_len).unwrap();
            let mut y = vec![0x55i8; want.len()];
            assert!(conv::<18, _>(&p, &x, &sparse_x3, rq, &mut y, &mut []));
            assert_eq!(y, want_top, "case {case}, sparse pow2 3-bit: {p:?}");
            // With a spare buffer longer than the stack's, decoded there:
            // every row in one block.
            let mut spare = vec![0u8; p.out_channels * row_len + 3];
            let mut y = vec![0x55i8; want.len()];
            assert!(conv::<18, _>(&p, &x, &sparse, rq, &mut y, &mut spare));
            assert_eq!(y, want, "case {case}, spare: {p:?}");
            let decoded: Vec<i8> = spare[..w.len()].iter().map(|&b| b as i8).collect();
            if spare.len() > 18 {
                assert_eq!(
                    decoded, w,
                    "case {case}: the weights were decoded into the spare"
                );
            }
        }
        // Where a plain 3×3 conv has an optimized kernel, so do many cases.
        let plain = ConvParams {
            in_channels: 8,
            in_h: 8,
            in_w: 8,
            out_channels: 8,
            out_h: 6,
            out_w: 6,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            groups: 1,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        assert!(
            !select::conv_has_optimized(&plain) || ran > 30,
            "{ran} cases ran on an optimized kernel"
        );
    }

    #[test]
    fn fully_connected_blocks_match_the_shift_kernel() {
        let mut seed = 5;
        for _ in 0..200 {
            let k = 1 + (lcg(&mut seed) % 20) as usize;
            let n = 1 + (lcg(&mut seed) % 9) as usize;
            let p = FullyConnectedParams {
                rows: 1,
                in_features: k,
                out_features: n,
                input_zero_point: (lcg(&mut seed) % 256) as i32 - 128,
                output_zero_point: 0,
                act_min: -128,
                act_max: 127,
            };
            let w = pow2_weights(n * k, &mut seed);
            let codes = encode_pow2_rows(&w, k).unwrap();
            let rows = Pow2Rows::parse(&codes, n, k).unwrap();
            let x: Vec<i8> = (0..k).map(|_| lcg(&mut seed) as i8).collect();
            let bias: Vec<i32> = (0..n)
                .map(|_| (lcg(&mut seed) % 201) as i32 - 100)
                .collect();
            let (mult, shift) = (vec![1 << 30; n], vec![-2i8; n]);
            let mut want = vec![0i8; n];
            fully_connected_pow2_s8(&p, &x, &rows, &bias, &mult, &shift, &mut want);
            if !select::fully_connected_has_optimized(&p) {
                continue;
            }
            let mut got = vec![0x55i8; n];
            assert!(fully_connected::<20, _>(
                &p,
                &x,
                &rows,
                (&bias, &mult, &shift),
                &mut got
            ));
            assert_eq!(got, want);
            let stored = encode_sparse_rows(&w, k);
            let sparse = SparseRows::parse(&stored, n, k).unwrap();
            let mut got = vec![0x55i8; n];
            assert!(fully_connected::<20, _>(
                &p,
                &x,
                &sparse,
                (&bias, &mult, &shift),
                &mut got
            ));
            assert_eq!(got, want);
        }
    }
}
