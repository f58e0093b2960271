//! LSTM, GRU and simple RNN with their gate products on NEON, and with `sdot` for the
//! recurrent product: per time step, every gate row's `Σ (x − zx) · w` and
//! `Σ h · r`, 4 rows at a time, the biases added and the 4 sums requantized
//! together (`requant`). The rest of the step (table lookups, cell and
//! hidden state) is the reference kernel's own code
//! (`reference::recurrent::lstm_with`), so only the products differ.
//!
//! - **`neon`**: `x − zx` and `h` as `i16`, rows widened to `i16`, `smlal`;
//!   every product is exact in `i32` (`|h · r| ≤ 2^22`).
//! - **`dotprod`**: `h` does not fit `i8`, so it is split once per step into
//!   `h = 256·hi + lo + 128` with `hi = h >> 8` and `lo = (h & 255) − 128`,
//!   both in `i8`, and `Σ h·r = 256·Σ hi·r + Σ lo·r + 128·Σ r` (three `sdot`
//!   per 16 weights, the last against ones). The input part is
//!   `Σ x·w − zx·Σ w` on the raw bytes. Wrapping `i32` sums make both
//!   rewritings exact (`NUMERICS.md` §2).
//!
//! A row shorter than a load is read from its start (the lanes past the row
//! meet zeros in the vector); the last rows, where that load would pass the
//! end of the matrix, are computed one by one. A longer row's tail is the
//! last load of the row, against a vector whose lanes already counted are 0.

use core::arch::aarch64::*;
use core::mem::MaybeUninit;

use super::dot::sdot;
use super::requant::Requant;
use super::{filled_prefix, has_dotprod, NO_DOTPROD};
use crate::kernels::reference::{
    self, gru_with, lstm_with, rnn_with, GateProducts, RowQuant, ScalarProducts,
};
use crate::kernels::{
    GruParams, LstmParams, RecurrentParams, RecurrentWeights, RnnParams, MAX_HIDDEN,
};

/// Longest step input the kernels stage on their stack.
pub const MAX_INPUT: usize = 4096;
/// Rows per pass.
const ROWS: usize = 4;

/// [`reference::lstm_s8`], bit for bit, with the gate products on NEON.
///
/// Same arguments and preconditions; the reference kernel runs when
/// [`lstm_neon_takes`] refuses the shape.
pub fn lstm_s8_neon(p: &LstmParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match NeonProducts::new(&p.rec) {
        Some(g) => lstm_with(&g, p, wts, input, output),
        None => reference::lstm_s8(p, wts, input, output),
    }
}

/// [`reference::gru_s8`], bit for bit, with the gate products on NEON.
///
/// Same arguments and preconditions; the reference kernel runs when
/// [`gru_neon_takes`] refuses the shape.
pub fn gru_s8_neon(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match NeonProducts::new(&p.rec) {
        Some(g) => gru_with(&g, p, wts, input, output),
        None => reference::gru_s8(p, wts, input, output),
    }
}

/// [`reference::lstm_s8`], bit for bit, with the gate products on `sdot`.
///
/// Same arguments and preconditions; the reference kernel runs on a CPU
/// without the dot-product extension and when [`lstm_dotprod_takes`]
/// refuses the shape.
pub fn lstm_s8_dotprod(
    p: &LstmParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    match DotProducts::new(&p.rec) {
        Some(g) => lstm_with(&g, p, wts, input, output),
        None => reference::lstm_s8(p, wts, input, output),
    }
}

/// [`reference::gru_s8`], bit for bit, with the gate products on `sdot`.
///
/// Same arguments and preconditions; the reference kernel runs on a CPU
/// without the dot-product extension and when [`gru_dotprod_takes`]
/// refuses the shape.
pub fn gru_s8_dotprod(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match DotProducts::new(&p.rec) {
        Some(g) => gru_with(&g, p, wts, input, output),
        None => reference::gru_s8(p, wts, input, output),
    }
}

/// [`reference::rnn_s8`], bit for bit, with the gate products on NEON.
///
/// Same arguments and preconditions; the reference kernel runs when
/// [`rnn_neon_takes`] refuses the shape.
pub fn rnn_s8_neon(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match NeonProducts::new(&p.rec) {
        Some(g) => rnn_with(&g, p, wts, input, output),
        None => reference::rnn_s8(p, wts, input, output),
    }
}

/// [`reference::rnn_s8`], bit for bit, with the gate products on `sdot`.
///
/// Same arguments and preconditions; the reference kernel runs on a CPU
/// without the dot-product extension and when [`rnn_dotprod_takes`]
/// refuses the shape.
pub fn rnn_s8_dotprod(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    match DotProducts::new(&p.rec) {
        Some(g) => rnn_with(&g, p, wts, input, output),
        None => reference::rnn_s8(p, wts, input, output),
    }
}

/// Whether [`rnn_s8_neon`] runs `p` itself.
pub fn rnn_neon_takes(p: &RnnParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

/// Whether [`rnn_s8_dotprod`] runs `p` itself on this CPU.
pub fn rnn_dotprod_takes(p: &RnnParams) -> Result<(), &'static str> {
    dot_takes(&p.rec)
}

/// Whether [`lstm_s8_neon`] runs `p` itself.
pub fn lstm_neon_takes(p: &LstmParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

/// Whether [`gru_s8_neon`] runs `p` itself.
pub fn gru_neon_takes(p: &GruParams) -> Result<(), &'static str> {
    takes(&p.rec)
}

/// Whether [`lstm_s8_dotprod`] runs `p` itself on this CPU.
pub fn lstm_dotprod_takes(p: &LstmParams) -> Result<(), &'static str> {
    dot_takes(&p.rec)
}

/// Whether [`gru_s8_dotprod`] runs `p` itself on this CPU.
pub fn gru_dotprod_takes(p: &GruParams) -> Result<(), &'static str> {
    dot_takes(&p.rec)
}

fn takes(p: &RecurrentParams) -> Result<(), &'static str> {
    if !(-128..=127).contains(&p.input_zero_point) {
        return Err("input zero point outside int8");
    }
    if p.input_size > MAX_INPUT {
        return Err("input size above 4096");
    }
    Ok(())
}

fn dot_takes(p: &RecurrentParams) -> Result<(), &'static str> {
    if !has_dotprod() {
        return Err(NO_DOTPROD);
    }
    takes(p)
}

/// The NEON gate products (NEON is baseline on aarch64).
struct NeonProducts {
    _checked: (),
}

impl NeonProducts {
    fn new(p: &RecurrentParams) -> Option<NeonProducts> {
        takes(p).ok().map(|()| NeonProducts { _checked: () })
    }
}

/// The `sdot` gate products; only made on a CPU with the extension.
struct DotProducts {
    _checked: (),
}

impl DotProducts {
    fn new(p: &RecurrentParams) -> Option<DotProducts> {
        dot_takes(p).ok().map(|()| DotProducts { _checked: () })
    }
}

impl GateProducts for NeonProducts {
    fn x_rows(&self, q: RowQuant<'_>, w: &[i8], x: &[i8], zx: i32, out: &mut [i32]) {
        if x.len() > MAX_INPUT || !(-128..=127).contains(&zx) {
            ScalarProducts.x_rows(q, w, x, zx, out);
            return;
        }
        // Only the first `x.len()` entries: zeroing 8 KiB every step costs
        // more than the products.
        let mut staged = MaybeUninit::uninit();
        let xw = filled_prefix::<i16, MAX_INPUT>(&mut staged, x.len(), 0);
        for (d, &v) in xw.iter_mut().zip(x) {
            *d = i16::from(v) - zx as i16;
        }
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { neon_products(q, w, xw, out) };
    }

    fn h_rows(&self, q: RowQuant<'_>, r: &[i8], h: &[i16], out: &mut [i32]) {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { neon_products(q, r, h, out) };
    }
}

impl GateProducts for DotProducts {
    fn x_rows(&self, q: RowQuant<'_>, w: &[i8], x: &[i8], zx: i32, out: &mut [i32]) {
        let parts = Parts {
            a: x,
            b: None,
            scale_a: 1,
            offset: zx.wrapping_neg(),
        };
        // SAFETY: a `DotProducts` exists only on a CPU with `sdot`.
        unsafe { dot_products(q, w, &parts, out) };
    }

    fn h_rows(&self, q: RowQuant<'_>, r: &[i8], h: &[i16], out: &mut [i32]) {
        let (mut hi, mut lo) = ([0i8; MAX_HIDDEN], [0i8; MAX_HIDDEN]);
        let (Some(hi), Some(lo)) = (hi.get_mut(..h.len()), lo.get_mut(..h.len())) else {
            ScalarProducts.h_rows(q, r, h, out);
            return;
        };
        for ((hi, lo), &v) in hi.iter_mut().zip(lo.iter_mut()).zip(h) {
            *hi = (v >> 8) as i8;
            *lo = ((v & 0xff) - 128) as i8;
        }
        let parts = Parts {
            a: hi,
            b: Some(lo),
            scale_a: 256,
            offset: 128,
        };
        // SAFETY: as for `x_rows`.
        unsafe { dot_products(q, r, &parts, out) };
    }
}

/// `out[k] = requantize(bias[k] + Σ_i v[i] · m[k·L + i], …)`, `L = v.len()`.
/// Mismatched lengths leave `out` unchanged.
#[target_feature(enable = "neon")]
fn neon_products(q: RowQuant<'_>, m: &[i8], v: &[i16], out: &mut [i32]) {
    let (len, rows) = (v.len(), out.len());
    if len == 0 || q.rows() != Some(rows) || Some(m.len()) != rows.checked_mul(len) {
        return;
    }
    let mut last = [0i16; 8];
    let from = if len < 8 { 0 } else { len - len % 8 };
    let skip = if len < 8 { 0 } else { 8 - len % 8 };
    for (d, &s) in last.iter_mut().skip(skip).zip(v.get(from..).unwrap_or(&[])) {
        *d = s;
    }
    let vector_rows = loadable_rows(m.len(), len, 8, rows);
    let mut k = 0;
    while k + ROWS <= vector_rows {
        // SAFETY: rows `k..k + 4` are below `vector_rows`, so each has
        // `max(len, 8)` bytes from its start inside `m`; `v` has `len` lanes.
        let sums = unsafe { neon_rows4(m.as_ptr().add(k * len), len, v, &last) };
        requantize_rows(q, k, sums, out);
        k += ROWS;
    }
    scalar_rest(q, m, v, k, out);
}

/// Rows `0..n` whose load of `max(len, width)` bytes from the row start
/// stays inside a matrix of `m_len` bytes.
fn loadable_rows(m_len: usize, len: usize, width: usize, rows: usize) -> usize {
    if len >= width {
        rows
    } else if m_len >= width {
        ((m_len - width) / len + 1).min(rows)
    } else {
        0
    }
}

/// Rows `k..` one by one (the reference's own loop).
fn scalar_rest(q: RowQuant<'_>, m: &[i8], v: &[i16], k: usize, out: &mut [i32]) {
    if let (Some(tail), Some(bias), Some(multiplier), Some(shift)) = (
        out.get_mut(k..),
        q.bias.get(k..),
        q.multiplier.get(k..),
        q.shift.get(k..),
    ) {
        let q = RowQuant {
            bias,
            multiplier,
            shift,
        };
        // `h_rows` is the scalar `Σ v · m` for any `i16` vector.
        ScalarProducts.h_rows(q, m.get(k * v.len()..).unwrap_or(&[]), v, tail);
    }
}

/// `Σ v · row` of the 4 rows from `m` (stride `len`), one per lane.
///
/// # Safety
/// `v.len() == len`, and each of the 4 rows has `max(len, 8)` readable bytes.
#[target_feature(enable = "neon")]
unsafe fn neon_rows4(m: *const i8, len: usize, v: &[i16], last: &[i16; 8]) -> int32x4_t {
    let mut acc = [vdupq_n_s32(0); ROWS];
    let vp = v.as_ptr();
    let mut c = 0;
    while c + 8 <= len {
        // SAFETY: `c + 8 <= len`: inside `v` and inside each row.
        unsafe {
            let vv = vld1q_s16(vp.add(c));
            for (r, a) in acc.iter_mut().enumerate() {
                let w = vmovl_s8(vld1_s8(m.add(r * len + c)));
                *a = vmlal_s16(*a, vget_low_s16(vv), vget_low_s16(w));
                *a = vmlal_high_s16(*a, vv, w);
            }
        }
        c += 8;
    }
    if c < len || len < 8 {
        let at = len.max(8) - 8;
        // SAFETY: `at + 8 = max(len, 8)` bytes follow each row start; `last`
        // holds 8 lanes.
        unsafe {
            let vv = vld1q_s16(last.as_ptr());
            for (r, a) in acc.iter_mut().enumerate() {
                let w = vmovl_s8(vld1_s8(m.add(r * len + at)));
                *a = vmlal_s16(*a, vget_low_s16(vv), vget_low_s16(w));
                *a = vmlal_high_s16(*a, vv, w);
            }
        }
    }
    sum_lanes(acc)
}

/// `[Σ a[0], Σ a[1], Σ a[2], Σ a[3]]`.
#[inline]
#[target_feature(enable = "neon")]
fn sum_lanes(a: [int32x4_t; 4]) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]))
}

/// `out[k..k + 4] = requantize(bias + sums)`.
#[target_feature(enable = "neon")]
fn requantize_rows(q: RowQuant<'_>, k: usize, sums: int32x4_t, out: &mut [i32]) {
    let (Some(b), Some(m), Some(s), Some(dst)) = (
        q.bias.get(k..k + ROWS),
        q.multiplier.get(k..k + ROWS),
        q.shift.get(k..k + ROWS),
        out.get_mut(k..k + ROWS),
    ) else {
        return;
    };
    let (Ok(m), Ok(s)) = (<[i32; 4]>::try_from(m), <[i8; 4]>::try_from(s)) else {
        return;
    };
    // SAFETY: `b` and `dst` hold four `i32`.
    unsafe {
        let acc = vaddq_s32(sums, vld1q_s32(b.as_ptr()));
        vst1q_s32(dst.as_mut_ptr(), Requant::lanes(m, s).apply(acc));
    }
}

/// A vector as `i8` parts: `v[i] = scale_a · a[i] + b[i] + offset`.
struct Parts<'a> {
    a: &'a [i8],
    b: Option<&'a [i8]>,
    scale_a: i32,
    offset: i32,
}

/// The last 16-lane chunk of a vector shorter than 16 (padded with zeros),
/// or its last 16 lanes with those already counted in whole chunks zeroed.
fn last16(v: &[i8]) -> [i8; 16] {
    let len = v.len();
    let mut last = [0i8; 16];
    let from = if len < 16 { 0 } else { len - len % 16 };
    let skip = if len < 16 { 0 } else { 16 - len % 16 };
    for (d, &s) in last.iter_mut().skip(skip).zip(v.get(from..).unwrap_or(&[])) {
        *d = s;
    }
    last
}

/// [`last16`] of `len` ones.
fn ones_last16(len: usize) -> [i8; 16] {
    let mut last = [0i8; 16];
    let (skip, count) = if len < 16 {
        (0, len)
    } else {
        (16 - len % 16, len % 16)
    };
    for d in last.iter_mut().skip(skip).take(count) {
        *d = 1;
    }
    last
}

/// The gate products through `sdot`, for the vector that `parts` spell.
///
/// # Safety
/// The CPU has the dot-product extension.
#[target_feature(enable = "neon")]
unsafe fn dot_products(q: RowQuant<'_>, m: &[i8], parts: &Parts<'_>, out: &mut [i32]) {
    let (len, rows) = (parts.a.len(), out.len());
    let b_ok = parts.b.is_none_or(|b| b.len() == len);
    if len == 0 || !b_ok || q.rows() != Some(rows) || Some(m.len()) != rows.checked_mul(len) {
        return;
    }
    let lasts = [
        last16(parts.a),
        parts.b.map_or([0; 16], last16),
        ones_last16(len),
    ];
    let vector_rows = loadable_rows(m.len(), len, 16, rows);
    let mut k = 0;
    while k + ROWS <= vector_rows {
        // SAFETY: rows `k..k + 4` are below `vector_rows`, so each has
        // `max(len, 16)` bytes from its start inside `m`; the CPU has `sdot`
        // (forwarded).
        let [sa, sb, sw] = unsafe { dot_rows4(m.as_ptr().add(k * len), len, parts, &lasts) };
        // v · row = scale_a · Σ a·row + Σ b·row + offset · Σ row, wrapping.
        let sums = vmlaq_n_s32(vmlaq_n_s32(sb, sa, parts.scale_a), sw, parts.offset);
        requantize_rows(q, k, sums, out);
        k += ROWS;
    }
    dot_scalar_rest(q, m, parts, k, out);
}

/// Rows `k..` one by one, from the parts.
fn dot_scalar_rest(q: RowQuant<'_>, m: &[i8], parts: &Parts<'_>, k: usize, out: &mut [i32]) {
    let len = parts.a.len();
    if k >= out.len() || len > MAX_INPUT {
        return;
    }
    let mut staged = MaybeUninit::uninit();
    let v = filled_prefix::<i16, MAX_INPUT>(&mut staged, len, 0);
    for (i, d) in v.iter_mut().enumerate() {
        let a = parts.a.get(i).map_or(0, |&x| i32::from(x));
        let b = parts.b.and_then(|b| b.get(i)).map_or(0, |&x| i32::from(x));
        // x − zx or h: always an `i16` here.
        *d = (parts.scale_a * a + b + parts.offset) as i16;
    }
    scalar_rest(q, m, v, k, out);
}

/// `[Σ a·row, Σ b·row, Σ row]` of the 4 rows from `m` (stride `len`), one
/// row per lane.
///
/// # Safety
/// Each of the 4 rows has `max(len, 16)` readable bytes; `parts.a` (and
/// `parts.b`) has `len` lanes; the CPU has the dot-product extension.
#[target_feature(enable = "neon")]
unsafe fn dot_rows4(
    m: *const i8,
    len: usize,
    parts: &Parts<'_>,
    lasts: &[[i8; 16]; 3],
) -> [int32x4_t; 3] {
    let zero = [vdupq_n_s32(0); ROWS];
    let (mut sa, mut sb, mut sw) = (zero, zero, zero);
    let ones = vdupq_n_s8(1);
    let (ap, bp) = (parts.a.as_ptr(), parts.b.map(|b| b.as_ptr()));
    let mut c = 0;
    while c + 16 <= len {
        // SAFETY: `c + 16 <= len`: inside `a`, `b` and each row; `sdot` is
        // there (forwarded).
        unsafe {
            let av = vld1q_s8(ap.add(c));
            let bv = bp.map(|bp| vld1q_s8(bp.add(c)));
            let sums = sa.iter_mut().zip(sb.iter_mut()).zip(sw.iter_mut());
            for (r, ((sa, sb), sw)) in sums.enumerate() {
                let w = vld1q_s8(m.add(r * len + c));
                *sa = sdot(*sa, av, w);
                *sw = sdot(*sw, ones, w);
                if let Some(bv) = bv {
                    *sb = sdot(*sb, bv, w);
                }
            }
        }
        c += 16;
    }
    if c < len || len < 16 {
        let at = len.max(16) - 16;
        // SAFETY: `at + 16 = max(len, 16)` bytes follow each row start; the
        // `lasts` hold 16 lanes each.
        unsafe {
            let (av, bv, ov) = (
                vld1q_s8(lasts[0].as_ptr()),
                vld1q_s8(lasts[1].as_ptr()),
                vld1q_s8(lasts[2].as_ptr()),
            );
            let sums = sa.iter_mut().zip(sb.iter_mut()).zip(sw.iter_mut());
            for (r, ((sa, sb), sw)) in sums.enumerate() {
                let w = vld1q_s8(m.add(r * len + at));
                *sa = sdot(*sa, av, w);
                *sb = sdot(*sb, bv, w);
                *sw = sdot(*sw, ov, w);
            }
        }
    }
    [sum_lanes(sa), sum_lanes(sb), sum_lanes(sw)]
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
        (1usize..=24, 1usize..=MAX_HIDDEN).prop_flat_map(|(rows, len)| {
            (
                prop_oneof![
                    vec((any::<i32>(), any::<i32>(), -33i8..=32), rows),
                    vec((any::<i32>(), any::<i32>(), -40i8..=-1), rows),
                ],
                vec(any::<i8>(), rows * len),
                prop_oneof![
                    3 => vec(any::<i16>(), len),
                    1 => vec(prop_oneof![Just(i16::MIN), Just(i16::MAX)], len),
                ],
            )
        })
    }

    fn run(g: &impl GateProducts, (quant, m, v): &Block, zx: i8) -> [Vec<i32>; 2] {
        let bias: Vec<i32> = quant.iter().map(|q| q.0).collect();
        let multiplier: Vec<i32> = quant.iter().map(|q| q.1).collect();
        let shift: Vec<i8> = quant.iter().map(|q| q.2).collect();
        let q = RowQuant {
            bias: &bias,
            multiplier: &multiplier,
            shift: &shift,
        };
        let x: Vec<i8> = v.iter().map(|&h| h as i8).collect();
        let mut by_h = std::vec![7i32; quant.len()];
        let mut by_x = std::vec![7i32; quant.len()];
        g.h_rows(q, m, v, &mut by_h);
        g.x_rows(q, m, &x, zx.into(), &mut by_x);
        [by_h, by_x]
    }

    proptest! {
        /// The products alone (every row's exact value, not only what
        /// survives the op's output requantization) equal the scalar ones.
        #[test]
        fn products_match_scalar(b in block(), zx in any::<i8>()) {
            let rec = RecurrentParams {
                steps: 1,
                input_size: 1,
                hidden: 1,
                input_zero_point: zx.into(),
                output_zero_point: 0,
                out_multiplier: 0,
                out_shift: 0,
                reverse: false,
                sequence: false,
            };
            let expected = run(&ScalarProducts, &b, zx);
            let neon = NeonProducts::new(&rec).map(|g| run(&g, &b, zx));
            prop_assert_eq!(neon, Some(expected.clone()));
            if let Some(g) = DotProducts::new(&rec) {
                prop_assert_eq!(run(&g, &b, zx), expected);
            }
        }
    }
}
