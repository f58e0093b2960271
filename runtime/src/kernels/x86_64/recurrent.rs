//! LSTM, GRU and simple RNN with their gate products on AVX2: per time step, every gate
//! row's `Σ (x − zx) · w` and `Σ h · r` (`vpmaddwd` on `i16`: `x − zx` fits
//! `i16`, and `h` already is), 8 rows at a time, their biases added and the
//! 8 sums requantized together; the gate tables are looked up 8 lanes at a
//! time (a gather). The rest of the step (cell and hidden state) is the
//! reference kernel's own code (`reference::recurrent::lstm_with`), so only
//! the products and lookups differ, and they are exact: `|h · r| ≤ 2^22`,
//! so the pair sums of `vpmaddwd` never saturate, and the wrapping `i32`
//! adds reorder the reference's sum.
//!
//! A row shorter than 16 is read as one 16-byte load from its start (the
//! lanes past the row meet zeros in the vector); the last rows, where such
//! a load would pass the end of the matrix, are computed one by one. A
//! longer row's tail is the last 16 bytes of the row, against a vector whose
//! lanes already counted are zero.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::need_avx2;
use super::requant::{requantize_lanes_i32, Requant};
use crate::kernels::reference::{
    self, gru_with, lstm_with, rnn_with, table_lookup_s16, GateProducts, RowQuant, ScalarProducts,
    TABLE_LEN,
};
use crate::kernels::{GruParams, LstmParams, RecurrentParams, RecurrentWeights, RnnParams};
use crate::numerics::{requantize, MAX_SHIFT, MIN_SHIFT};

/// Longest step input the kernels widen onto their stack (`i16`).
pub const MAX_INPUT: usize = 4096;
/// Rows per pass.
const ROWS: usize = 8;

/// [`reference::lstm_s8`], bit for bit, with the gate products on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel when AVX2
/// is missing or [`lstm_avx2_takes`] refuses the shape.
pub fn lstm_s8_avx2(p: &LstmParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match Avx2Products::new(&p.rec) {
        // SAFETY: an `Avx2Products` exists only where AVX2 is available.
        Some(g) => unsafe { lstm_with_avx2(&g, p, wts, input, output) },
        None => reference::lstm_s8(p, wts, input, output),
    }
}

/// The reference step with the AVX2 gate products, compiled for AVX2: the
/// step's elementwise loops (cell, hidden state, requantizations) then
/// vectorize 8 lanes wide instead of SSE2's 4, with `vpmuldq` for their
/// 64-bit products.
#[target_feature(enable = "avx2")]
fn lstm_with_avx2(
    g: &Avx2Products,
    p: &LstmParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    lstm_with(g, p, wts, input, output);
}

/// [`reference::gru_s8`], bit for bit, with the gate products on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel when AVX2
/// is missing or [`gru_avx2_takes`] refuses the shape.
pub fn gru_s8_avx2(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match Avx2Products::new(&p.rec) {
        // SAFETY: as in `lstm_s8_avx2`.
        Some(g) => unsafe { gru_with_avx2(&g, p, wts, input, output) },
        None => reference::gru_s8(p, wts, input, output),
    }
}

/// As [`lstm_with_avx2`], for the GRU step.
#[target_feature(enable = "avx2")]
fn gru_with_avx2(
    g: &Avx2Products,
    p: &GruParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    gru_with(g, p, wts, input, output);
}

/// [`reference::rnn_s8`], bit for bit, with the gate products on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel when AVX2
/// is missing or [`rnn_avx2_takes`] refuses the shape.
pub fn rnn_s8_avx2(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match Avx2Products::new(&p.rec) {
        // SAFETY: as in `lstm_s8_avx2`.
        Some(g) => unsafe { rnn_with_avx2(&g, p, wts, input, output) },
        None => reference::rnn_s8(p, wts, input, output),
    }
}

/// As [`lstm_with_avx2`], for the simple RNN step.
#[target_feature(enable = "avx2")]
fn rnn_with_avx2(
    g: &Avx2Products,
    p: &RnnParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    rnn_with(g, p, wts, input, output);
}

/// `Ok` when [`rnn_s8_avx2`] runs `p` itself.
pub fn rnn_avx2_takes(p: &RnnParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

/// `Ok` when [`lstm_s8_avx2`] runs `p` itself.
pub fn lstm_avx2_takes(p: &LstmParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

/// `Ok` when [`gru_s8_avx2`] runs `p` itself.
pub fn gru_avx2_takes(p: &GruParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

fn takes(p: &RecurrentParams) -> Result<(), &'static str> {
    need_avx2()?;
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside i8");
    }
    if p.input_size > MAX_INPUT {
        return Err("input size above 4096");
    }
    Ok(())
}

/// The AVX2 gate products; only made when AVX2 is available.
struct Avx2Products {
    _checked: (),
}

impl Avx2Products {
    fn new(p: &RecurrentParams) -> Option<Avx2Products> {
        takes(p).ok().map(|()| Avx2Products { _checked: () })
    }
}

impl GateProducts for Avx2Products {
    fn x_rows(&self, q: RowQuant<'_>, w: &[i8], x: &[i8], zx: i32, out: &mut [i32]) {
        if x.len() > MAX_INPUT || !(-128..=127).contains(&zx) {
            ScalarProducts.x_rows(q, w, x, zx, out);
            return;
        }
        // Only the first `x.len()` entries are written and read: zeroing all
        // 8 KiB every step would cost more than the products.
        let mut staged = MaybeUninit::<[i16; MAX_INPUT]>::uninit();
        let first = staged.as_mut_ptr().cast::<i16>();
        for (i, &v) in x.iter().enumerate() {
            // SAFETY: `i < x.len() <= MAX_INPUT`: inside `staged`.
            unsafe { first.add(i).write(i16::from(v) - zx as i16) };
        }
        // SAFETY: the first `x.len()` entries were just initialized.
        let xw = unsafe { core::slice::from_raw_parts(first, x.len()) };
        // SAFETY: an `Avx2Products` exists only where AVX2 is available.
        unsafe { products(q, w, xw, out) };
    }

    fn h_rows(&self, q: RowQuant<'_>, r: &[i8], h: &[i16], out: &mut [i32]) {
        // SAFETY: as for `x_rows`.
        unsafe { products(q, r, h, out) };
    }

    fn lookups(&self, table: &[i16; TABLE_LEN], pre: &[i32], out: &mut [i16]) {
        // SAFETY: as for `x_rows`.
        unsafe { lookups(table, pre, out) };
    }

    fn add_reset_products(&self, r: &[i16], h: &[i32], q: (i32, i32), pre: &mut [i32]) {
        // SAFETY: as for `x_rows`.
        unsafe { add_reset_products(r, h, q, pre) };
    }
}

/// [`GateProducts::add_reset_products`], 8 lanes at a time: the product
/// `r · sat16(h)` fits `i32` (both operands are `i16`), its requantization
/// is [`Requant::apply_i32`] (exactly `numerics::requantize`), and the
/// saturating `i32` add is rebuilt from the wrapping one: where both
/// operands share a sign the sum does not, it takes that sign's limit.
#[target_feature(enable = "avx2")]
fn add_reset_products(r: &[i16], h: &[i32], (m, s): (i32, i32), pre: &mut [i32]) {
    let n = r.len().min(h.len()).min(pre.len());
    let rq = Requant::splat(m, s, 0);
    let (lo16, hi16) = (_mm256_set1_epi32(-32768), _mm256_set1_epi32(32767));
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: `k + 8 <= n`: 8 `i16` of `r`, 8 `i32` of `h` and `pre`,
        // read (and `pre` written) unaligned.
        unsafe {
            let rv = _mm256_cvtepi16_epi32(_mm_loadu_si128(r.as_ptr().add(k).cast()));
            let hv = _mm256_loadu_si256(h.as_ptr().add(k).cast());
            let hv = _mm256_min_epi32(_mm256_max_epi32(hv, lo16), hi16);
            let rec = rq.apply_i32(_mm256_mullo_epi32(rv, hv));
            let a = _mm256_loadu_si256(pre.as_ptr().add(k).cast());
            let sum = _mm256_add_epi32(a, rec);
            let overflow = _mm256_and_si256(_mm256_xor_si256(a, sum), _mm256_xor_si256(rec, sum));
            let limit = _mm256_xor_si256(_mm256_srai_epi32::<31>(a), _mm256_set1_epi32(i32::MAX));
            let sum = _mm256_blendv_epi8(sum, limit, _mm256_srai_epi32::<31>(overflow));
            let y = _mm256_min_epi32(_mm256_max_epi32(sum, lo16), hi16);
            _mm256_storeu_si256(pre.as_mut_ptr().add(k).cast(), y);
        }
        k += 8;
    }
    if let (Some(r), Some(h), Some(pre)) = (r.get(k..n), h.get(k..n), pre.get_mut(k..n)) {
        ScalarProducts.add_reset_products(r, h, (m, s), pre);
    }
}

/// `out[k] = table_lookup_s16(table, pre[k])`, 8 lanes at a time: one
/// gather reads entries `idx` and `idx + 1` together (4 bytes at `2·idx`),
/// and the interpolation `requantize((hi − lo)·frac, 2^30, −7)` is
/// `((hi − lo)·frac + 2^7) >> 8` exactly (one rounding, halves up).
#[target_feature(enable = "avx2")]
fn lookups(table: &[i16; TABLE_LEN], pre: &[i32], out: &mut [i16]) {
    let n = pre.len().min(out.len());
    let (lo16, hi16) = (_mm256_set1_epi32(-32768), _mm256_set1_epi32(32767));
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: `k + 8 <= n <= pre.len()`: 8 `i32` read unaligned.
        let v = unsafe { _mm256_loadu_si256(pre.as_ptr().add(k).cast()) };
        let u = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo16), hi16), lo16);
        let idx = _mm256_srli_epi32::<8>(u);
        let frac = _mm256_and_si256(u, _mm256_set1_epi32(0xff));
        // SAFETY: `idx ≤ 255`, so each lane reads entries `idx` and
        // `idx + 1 ≤ 256`, inside the 257 entries of `table`.
        let pair = unsafe { _mm256_i32gather_epi32::<2>(table.as_ptr().cast(), idx) };
        let lo = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(pair));
        let hi = _mm256_srai_epi32::<16>(pair);
        let step = _mm256_mullo_epi32(_mm256_sub_epi32(hi, lo), frac);
        let step = _mm256_srai_epi32::<8>(_mm256_add_epi32(step, _mm256_set1_epi32(1 << 7)));
        let y = _mm256_add_epi32(lo, step);
        // Between two entries: inside i16, so the saturating pack is exact.
        let y = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y));
        // SAFETY: `k + 8 <= n <= out.len()`: 8 `i16` written unaligned.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(k).cast(), y) };
        k += 8;
    }
    for (o, &v) in out.iter_mut().zip(pre).take(n).skip(k) {
        *o = table_lookup_s16(table, v) as i16;
    }
}

/// `out[k] = requantize(bias[k] + Σ_i v[i] · m[k·L + i], …)`, `L = v.len()`,
/// for `|v[i]| ≤ 2^15`. Mismatched lengths leave `out` unchanged.
#[target_feature(enable = "avx2")]
fn products(q: RowQuant<'_>, m: &[i8], v: &[i16], out: &mut [i32]) {
    let (len, rows) = (v.len(), out.len());
    if len == 0 || q.rows() != Some(rows) || Some(m.len()) != rows.checked_mul(len) {
        return;
    }
    if matches!(len, 1 | 2 | 4 | 8) {
        packed_products(q, m, v, out);
        return;
    }
    let chunks = Chunks::new(v);
    // Rows of 16 or more: whole chunks and a tail ending at the row's end.
    // Shorter rows: forward (16 bytes from the row start) while that stays
    // inside `m`, backward (16 bytes ending at the row end) once the row
    // ends 16 or more bytes into `m`; a row that fits neither (only in a
    // matrix of a few rows) runs on the scalar code.
    let (forward_end, backward_start) = if len >= 16 {
        (rows, rows)
    } else {
        let forward = if m.len() >= 16 {
            (m.len() - 16) / len + 1
        } else {
            0
        };
        let backward = 16usize.div_ceil(len) - 1;
        // Split at a whole pass of 8 when both kinds of load reach it.
        let split = backward.next_multiple_of(ROWS);
        if split <= forward.min(rows) {
            (split, split)
        } else {
            (forward.min(backward).min(rows), backward.min(rows))
        }
    };
    chunks.passes(q, m, (0, forward_end), false, out);
    chunks.passes(q, m, (backward_start, rows), true, out);
    if forward_end < backward_start {
        let (fits, scalar) = (
            forward_end..backward_start,
            forward_end * len..backward_start * len,
        );
        if let (Some(dst), Some(q), Some(rows_m)) =
            (out.get_mut(fits.clone()), q.range(fits), m.get(scalar))
        {
            // `h_rows` is the scalar `Σ v · m` for any `i16` vector.
            ScalarProducts.h_rows(q, rows_m, v, dst);
        }
    }
}

/// [`products`] for rows of 1, 2, 4 or 8 values (an RNN's input, often a
/// few leads or channels): eight such rows are 8·L contiguous bytes, so
/// they are multiplied by `v` repeated `16 / L` times, 16 weights per
/// `vpmaddwd` instead of one row, and the pair sums of each row joined by
/// `vphaddd`. The rows past the last whole 8 run on the scalar code.
#[target_feature(enable = "avx2")]
fn packed_products(q: RowQuant<'_>, m: &[i8], v: &[i16], out: &mut [i32]) {
    let (len, rows) = (v.len(), out.len());
    if !matches!(len, 1 | 2 | 4 | 8) || Some(m.len()) != rows.checked_mul(len) {
        return;
    }
    let mut tiled = [0i16; 16];
    for (t, &x) in tiled.iter_mut().zip(v.iter().cycle()) {
        *t = x;
    }
    // SAFETY: `tiled` holds 16 `i16` (32 bytes), read unaligned.
    let vt = unsafe { _mm256_loadu_si256(tiled.as_ptr().cast()) };
    let whole = rows / ROWS * ROWS;
    for k in (0..whole).step_by(ROWS) {
        // SAFETY: rows `k..k + 8` are the `8·len` bytes from `k·len`, and
        // `(k + 8)·len ≤ rows·len = m.len()`.
        let sums = unsafe { packed_sums(m.as_ptr().add(k * len), len, vt, v[0]) };
        requantize_rows(q, k, ROWS, sums, out);
    }
    if whole < rows {
        if let (Some(dst), Some(q), Some(rest)) = (
            out.get_mut(whole..),
            q.range(whole..rows),
            m.get(whole * len..),
        ) {
            ScalarProducts.h_rows(q, rest, v, dst);
        }
    }
}

/// `Σ v · row` of the eight rows of `len ∈ {1, 2, 4, 8}` values starting at
/// `rows`, lane `r` for row `r`; `vt` is `v` repeated over 16 lanes, `v0`
/// its first value.
///
/// # Safety
/// `8·len` bytes are readable from `rows`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn packed_sums(rows: *const i8, len: usize, vt: __m256i, v0: i16) -> __m256i {
    // SAFETY: chunk `c < len / 2` reads bytes `16c..16c + 16` of the `8·len`.
    let chunk = |c: usize| unsafe {
        _mm256_madd_epi16(
            vt,
            _mm256_cvtepi8_epi16(_mm_loadu_si128(rows.add(16 * c).cast())),
        )
    };
    match len {
        1 => {
            // One value per row: widen the 8 weights to i32 and multiply.
            // SAFETY: reads the 8 bytes of the 8 rows.
            let w = unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(rows.cast())) };
            _mm256_mullo_epi32(w, _mm256_set1_epi32(i32::from(v0)))
        }
        // Each pair sum is one row.
        2 => chunk(0),
        4 => {
            // Rows [0, 1, 4, 5 | 2, 3, 6, 7] after the pair sums.
            let h = _mm256_hadd_epi32(chunk(0), chunk(1));
            _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7))
        }
        _ => {
            // Rows [0, 2, 4, 6 | 1, 3, 5, 7] after two rounds of pair sums.
            let h01 = _mm256_hadd_epi32(chunk(0), chunk(1));
            let h23 = _mm256_hadd_epi32(chunk(2), chunk(3));
            let h = _mm256_hadd_epi32(h01, h23);
            _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        }
    }
}

/// The vector `v`, cut into the 16-lane chunks a row is multiplied by.
struct Chunks<'a> {
    v: &'a [i16],
    /// `len < 16`: `v` padded with zeros. `len ≥ 16` with a tail: the last
    /// 16 lanes of `v`, the lanes before the tail zeroed.
    last: [i16; 16],
    /// `len < 16`: `v` in the last `len` lanes, zeros before (for the loads
    /// that end at a row's end).
    back: [i16; 16],
}

impl<'a> Chunks<'a> {
    fn new(v: &'a [i16]) -> Chunks<'a> {
        let len = v.len();
        let (mut last, mut back) = ([0i16; 16], [0i16; 16]);
        if len < 16 {
            for (d, &s) in last.iter_mut().zip(v) {
                *d = s;
            }
            for (d, &s) in back.iter_mut().skip(16 - len).zip(v) {
                *d = s;
            }
        } else {
            let t = len % 16;
            let from = v.get(len - t..).unwrap_or(&[]);
            for (d, &s) in last.iter_mut().skip(16 - t).zip(from) {
                *d = s;
            }
        }
        Chunks { v, last, back }
    }

    /// Rows `from..to` of `m`, 8 per pass, requantized into `out`.
    #[target_feature(enable = "avx2")]
    fn passes(
        &self,
        q: RowQuant<'_>,
        m: &[i8],
        (from, to): (usize, usize),
        back: bool,
        out: &mut [i32],
    ) {
        let mut k = from;
        while k < to {
            let n = (to - k).min(ROWS);
            let sums = self.row_sums(m, k, n, back);
            requantize_rows(q, k, n, sums, out);
            k += n;
        }
    }

    /// The sums of rows `k..k + n` (`n ≤ 8`) of `m`, lane `r` for row `k + r`
    /// (rows past `n` are 0). A row shorter than 16 is read from its start,
    /// or with `back` from 16 bytes before its end. Reads nothing unless
    /// every load of those rows is inside `m`.
    #[target_feature(enable = "avx2")]
    fn row_sums(&self, m: &[i8], k: usize, n: usize, back: bool) -> __m256i {
        let len = self.v.len();
        if n == 0 || n > ROWS {
            return _mm256_setzero_si256();
        }
        // Where row k's loads start, relative to the row, and where the last
        // row's loads end.
        let short_back = back && len < 16;
        let fits = if short_back {
            (k + 1) * len >= 16 && (k + n) * len <= m.len()
        } else {
            (k + n - 1) * len + len.max(16) <= m.len()
        };
        if !fits {
            return _mm256_setzero_si256();
        }
        let mut rows = [m.as_ptr(); ROWS];
        for (r, p) in rows.iter_mut().enumerate() {
            // Rows past `n` repeat row k (read, then discarded below).
            let row = k + if r < n { r } else { 0 };
            let at = if short_back {
                (row + 1) * len - 16
            } else {
                row * len
            };
            // SAFETY: `at` is a load start checked above: inside `m`.
            *p = unsafe { m.as_ptr().add(at) };
        }
        let short = if short_back { &self.back } else { &self.last };
        // SAFETY: every load below ends at most at the end checked above,
        // and `self.v` / `short` hold the lanes loaded from them.
        let acc = unsafe { self.dot8(&rows, len, short) };
        let keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes());
        _mm256_and_si256(reduce8(acc), keep)
    }

    /// `Σ v · row` of eight rows, in 8 lanes each.
    ///
    /// # Safety
    /// Each `rows[r]` is followed by `max(len, 16)` readable bytes; `short`
    /// is `self.last` when `len >= 16`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn dot8(
        &self,
        rows: &[*const i8; ROWS],
        len: usize,
        short: &[i16; 16],
    ) -> [__m256i; ROWS] {
        let mut acc = [_mm256_setzero_si256(); ROWS];
        let vp = self.v.as_ptr();
        let mut c = 0;
        while c + 16 <= len {
            // SAFETY: `c + 16 <= len = v.len()`; each row has `len` bytes.
            unsafe {
                let vv = _mm256_loadu_si256(vp.add(c).cast());
                for (a, row) in acc.iter_mut().zip(rows) {
                    let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(c).cast()));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(vv, w));
                }
            }
            c += 16;
        }
        if c < len || len < 16 {
            // Short rows read from their start, long rows their last 16.
            let at = len.max(16) - 16;
            // SAFETY: `at + 16 = max(len, 16)` bytes follow each row start;
            // `short` holds 16 lanes (`self.last` when `len >= 16`).
            unsafe {
                let vv = _mm256_loadu_si256(short.as_ptr().cast());
                for (a, row) in acc.iter_mut().zip(rows) {
                    let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(at).cast()));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(vv, w));
                }
            }
        }
        acc
    }
}

/// `[0, 1, …, 7]`.
#[target_feature(enable = "avx2")]
#[inline]
fn lanes() -> __m256i {
    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
}

/// `out[k + r] = requantize(bias + sums[r])` for `r < n`.
#[target_feature(enable = "avx2")]
fn requantize_rows(q: RowQuant<'_>, k: usize, n: usize, sums: __m256i, out: &mut [i32]) {
    let mut lanes = [0i32; ROWS];
    let quant = (
        q.bias.get(k..k + ROWS),
        q.multiplier.get(k..k + ROWS),
        q.shift.get(k..k + ROWS),
    );
    if let (ROWS, (Some(b), Some(m), Some(s)), Some(dst)) = (n, quant, out.get_mut(k..k + ROWS)) {
        // SAFETY: `b`, `m` and `dst` hold 8 `i32` (32 bytes), `s` 8 bytes,
        // all accessed unaligned.
        unsafe {
            let acc = _mm256_add_epi32(sums, _mm256_loadu_si256(b.as_ptr().cast()));
            let m = _mm256_loadu_si256(m.as_ptr().cast());
            let s = _mm256_cvtepi8_epi32(_mm_loadl_epi64(s.as_ptr().cast()));
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), requantize8(acc, m, s));
        }
        return;
    } else {
        // SAFETY: `lanes` holds 8 `i32` (32 bytes), stored unaligned.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sums) };
        let quant = q.bias.iter().zip(q.multiplier.iter().zip(q.shift)).skip(k);
        for (y, (&b, (&m, &s))) in lanes.iter_mut().take(n).zip(quant) {
            *y = requantize(y.wrapping_add(b), m, i32::from(s));
        }
    }
    if let (Some(dst), Some(src)) = (out.get_mut(k..k + n), lanes.get(..n)) {
        dst.copy_from_slice(src);
    }
}

/// `requantize(acc, m, s)` per lane, exactly. When every (clamped) shift is
/// at most −1 (the usual case), the high-word form of `requant` (its module
/// doc has the proof) inline, with the rounding constant `2^(30+e)` added to
/// the 64-bit products (for `e = 1` it is 2^31, not a multiple of 2^32);
/// otherwise its 64-bit path.
#[target_feature(enable = "avx2")]
#[inline]
fn requantize8(acc: __m256i, m: __m256i, s: __m256i) -> __m256i {
    let s = _mm256_max_epi32(_mm256_set1_epi32(MIN_SHIFT), s);
    let s = _mm256_min_epi32(_mm256_set1_epi32(MAX_SHIFT), s);
    let wide = _mm256_cmpgt_epi32(s, _mm256_set1_epi32(-1));
    if _mm256_movemask_epi8(wide) != 0 {
        return requantize_lanes_i32(acc, m, s);
    }
    // e = −s in 1..=31: ((acc·m + 2^(30+e)) >> 32) >> (e − 1); the sum fits
    // i64 (|acc·m| ≤ 2^62) and the result i32 (|·| ≤ 2^30).
    let e = _mm256_sub_epi32(_mm256_setzero_si256(), s);
    let one64 = _mm256_set1_epi64x(1);
    let thirty = _mm256_set1_epi64x(30);
    let e_even = _mm256_and_si256(e, _mm256_set1_epi64x(0xffff_ffff));
    let e_odd = _mm256_srli_epi64::<32>(e);
    let round_even = _mm256_sllv_epi64(one64, _mm256_add_epi64(e_even, thirty));
    let round_odd = _mm256_sllv_epi64(one64, _mm256_add_epi64(e_odd, thirty));
    let even = _mm256_add_epi64(_mm256_mul_epi32(acc, m), round_even);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), _mm256_srli_epi64::<32>(m));
    let odd = _mm256_add_epi64(odd, round_odd);
    let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
    _mm256_srav_epi32(high, _mm256_sub_epi32(e, _mm256_set1_epi32(1)))
}

/// Lane `r` of the result is the sum of the 8 lanes of `acc[r]`.
#[target_feature(enable = "avx2")]
#[inline]
fn reduce8(acc: [__m256i; ROWS]) -> __m256i {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    let q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
    let lo = _mm256_permute2x128_si256::<0x20>(q0, q1);
    let hi = _mm256_permute2x128_si256::<0x31>(q0, q1);
    _mm256_add_epi32(lo, hi)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// One block of rows: `(bias, multiplier, shift)` per row, the matrix,
    /// and the vector.
    type Block = (Vec<(i32, i32, i8)>, Vec<i8>, Vec<i16>);

    fn block() -> impl Strategy<Value = Block> {
        let len = prop_oneof![
            1usize..=70,
            prop_oneof![Just(1usize), Just(2), Just(4), Just(8)]
        ];
        (1usize..=40, len).prop_flat_map(|(rows, len)| {
            (
                prop_oneof![
                    // Both requantization forms: any shift, or all ≤ −1
                    // (some −1, some ≤ −2).
                    vec((any::<i32>(), any::<i32>(), -33i8..=32), rows),
                    vec(
                        (
                            any::<i32>(),
                            any::<i32>(),
                            prop_oneof![Just(-1i8), -40i8..=-1]
                        ),
                        rows
                    ),
                    vec((any::<i32>(), any::<i32>(), -40i8..=-2), rows),
                ],
                vec(any::<i8>(), rows * len),
                prop_oneof![
                    3 => vec(any::<i16>(), len),
                    1 => vec(prop_oneof![Just(i16::MIN), Just(i16::MAX)], len),
                ],
            )
        })
    }

    proptest! {
        /// The products alone (every row's exact value, not only what
        /// survives the op's output requantization) equal the scalar ones.
        #[test]
        fn products_match_scalar((quant, m, v) in block()) {
            if !crate::kernels::x86_64::avx2_available() {
                return Ok(());
            }
            let bias: Vec<i32> = quant.iter().map(|q| q.0).collect();
            let multiplier: Vec<i32> = quant.iter().map(|q| q.1).collect();
            let shift: Vec<i8> = quant.iter().map(|q| q.2).collect();
            let q = RowQuant { bias: &bias, multiplier: &multiplier, shift: &shift };
            let mut fast = std::vec![7i32; quant.len()];
            let mut slow = std::vec![-7i32; quant.len()];
            // SAFETY: AVX2 was detected above.
            unsafe { products(q, &m, &v, &mut fast) };
            ScalarProducts.h_rows(q, &m, &v, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        /// The n gate's reset-scaled recurrent part equals the scalar one,
        /// with sums at the `i32` limits (the saturating add) and beyond
        /// `i16` (the clamps) among the cases.
        #[test]
        fn reset_products_match_scalar(
            cases in vec((any::<i16>(), any::<i32>(), prop_oneof![
                2 => any::<i32>(),
                1 => prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(-32769), Just(32768)],
            ]), 0..40),
            m in any::<i32>(),
            s in -33i32..=32,
        ) {
            if !crate::kernels::x86_64::avx2_available() {
                return Ok(());
            }
            let r: Vec<i16> = cases.iter().map(|c| c.0).collect();
            let h: Vec<i32> = cases.iter().map(|c| c.1).collect();
            let mut fast: Vec<i32> = cases.iter().map(|c| c.2).collect();
            let mut slow = fast.clone();
            // SAFETY: AVX2 was detected above.
            unsafe { add_reset_products(&r, &h, (m, s), &mut fast) };
            ScalarProducts.add_reset_products(&r, &h, (m, s), &mut slow);
            prop_assert_eq!(fast, slow);
        }
    }
}
