//! Broadcasting Add and Mul, 16 outputs at a time.
//!
//! Same-shape operands (and an operand broadcast over everything, a scalar)
//! run as one row; otherwise each innermost row of the output runs with
//! each operand either contiguous (innermost stride 1) or one value
//! (stride 0: per-channel constants). Rows shorter than 16 are refused.

use core::arch::aarch64::*;

use super::requant::{Output, Requant};
use super::{act_ok, zero_point_ok};
use crate::kernels::{reference, AddParams, Broadcast4, MulParams};
use crate::numerics::{requantize, requantize_to_i8};

/// Where one operand's values for an output row come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Element `i` of the row is `row[i]`.
    Row(&'a [i8]),
    /// Every element of the row is this value.
    Splat(i8),
}

/// The rows of a broadcast: `(count, length)` and each operand's per-row
/// start offsets and innermost strides, checked to stay inside the operands.
#[derive(Clone, Copy, Debug)]
struct Rows {
    /// `[d0, d1, d2]` row indices (all 1 when flattened) and the row length.
    outer: [usize; 3],
    len: usize,
    a: [usize; 4],
    b: [usize; 4],
}

fn row_major(shape: [usize; 4]) -> [usize; 4] {
    let mut s = [1usize; 4];
    for i in (0..3).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// Strides equal to `dense` wherever the dim is not 1.
fn same_layout(shape: [usize; 4], strides: [usize; 4], dense: [usize; 4]) -> bool {
    (0..4).all(|i| shape[i] == 1 || strides[i] == dense[i])
}

impl Rows {
    fn new(bc: &Broadcast4) -> Result<Rows, &'static str> {
        let shape = bc.out_shape;
        let dense = row_major(shape);
        let flat = |s: [usize; 4]| same_layout(shape, s, dense) || s == [0; 4];
        if flat(bc.a_strides) && flat(bc.b_strides) {
            let one = |s: [usize; 4]| if s == [0; 4] { [0; 4] } else { [0, 0, 0, 1] };
            return Ok(Rows {
                outer: [1, 1, 1],
                len: bc.out_len(),
                a: one(bc.a_strides),
                b: one(bc.b_strides),
            });
        }
        if shape[3] < 16 {
            return Err("broadcast rows shorter than 16 elements");
        }
        // A row is read contiguously or as one value: any other innermost
        // stride (a hand-built broadcast) goes to the reference.
        if ![bc.a_strides[3], bc.b_strides[3]].iter().all(|&s| s <= 1) {
            return Err("innermost broadcast stride other than 0 or 1");
        }
        Ok(Rows {
            outer: [shape[0], shape[1], shape[2]],
            len: shape[3],
            a: bc.a_strides,
            b: bc.b_strides,
        })
    }

    /// Every read stays inside operands of `a_len` and `b_len` elements.
    fn fit(&self, a_len: usize, b_len: usize) -> bool {
        let last = |s: [usize; 4]| {
            let dims = [self.outer[0], self.outer[1], self.outer[2], self.len];
            dims.iter().zip(s).try_fold(0usize, |acc, (&d, s)| {
                d.checked_sub(1)?
                    .checked_mul(s)
                    .and_then(|t| acc.checked_add(t))
            })
        };
        matches!(last(self.a), Some(i) if i < a_len) && matches!(last(self.b), Some(i) if i < b_len)
    }

    /// Calls `f(a_row, b_row, out_row)` for every output row, in order.
    fn each<'a>(
        &self,
        a: &'a [i8],
        b: &'a [i8],
        output: &mut [i8],
        mut f: impl FnMut(Source<'a>, Source<'a>, &mut [i8]),
    ) {
        let source = |x: &'a [i8], at: usize, stride: usize| match stride {
            0 => Source::Splat(x.get(at).copied().unwrap_or(0)),
            _ => Source::Row(x.get(at..at + self.len).unwrap_or(&[])),
        };
        let mut rows = output.chunks_exact_mut(self.len);
        for i0 in 0..self.outer[0] {
            for i1 in 0..self.outer[1] {
                for i2 in 0..self.outer[2] {
                    let at = |s: [usize; 4]| i0 * s[0] + i1 * s[1] + i2 * s[2];
                    let Some(y) = rows.next() else { return };
                    f(
                        source(a, at(self.a), self.a[3]),
                        source(b, at(self.b), self.b[3]),
                        y,
                    );
                }
            }
        }
    }
}

fn check(bc: &Broadcast4, a: &[i8], b: &[i8], output: &[i8]) -> Option<Rows> {
    let rows = Rows::new(bc).ok()?;
    let ok = output.len() == bc.out_len() && rows.len > 0 && rows.fit(a.len(), b.len());
    ok.then_some(rows)
}

/// Whether [`add_s8_neon`] runs `p` over `bc` itself.
pub fn add_neon_takes(p: &AddParams, bc: &Broadcast4) -> Result<(), &'static str> {
    zero_point_ok(p.a_zero_point, "zero point outside int8")?;
    zero_point_ok(p.b_zero_point, "zero point outside int8")?;
    zero_point_ok(p.output_zero_point, "output zero point outside int8")?;
    if !(0..=20).contains(&p.left_shift) || !act_ok(p.act_min, p.act_max) {
        return Err("left shift or activation clamp out of range");
    }
    Rows::new(bc).map(|_| ())
}

/// Whether [`mul_s8_neon`] runs `p` over `bc` itself.
pub fn mul_neon_takes(p: &MulParams, bc: &Broadcast4) -> Result<(), &'static str> {
    zero_point_ok(p.a_zero_point, "zero point outside int8")?;
    zero_point_ok(p.b_zero_point, "zero point outside int8")?;
    zero_point_ok(p.output_zero_point, "output zero point outside int8")?;
    if !act_ok(p.act_min, p.act_max) {
        return Err("activation clamp outside int8");
    }
    Rows::new(bc).map(|_| ())
}

/// [`reference::add_s8`], bit for bit, on NEON.
///
/// Same arguments and early returns; broadcasts [`add_neon_takes`] refuses,
/// and wrong slice lengths, go to the reference kernel.
pub fn add_s8_neon(p: &AddParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    let rows = check(bc, a, b, output).filter(|_| add_neon_takes(p, bc).is_ok());
    let Some(rows) = rows else {
        reference::add_s8(p, bc, a, b, output);
        return;
    };
    rows.each(a, b, output, |a, b, y| {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { add_row(p, a, b, y) }
    });
}

/// [`reference::mul_s8`], bit for bit, on NEON.
///
/// Same arguments and early returns; broadcasts [`mul_neon_takes`] refuses,
/// and wrong slice lengths, go to the reference kernel.
pub fn mul_s8_neon(p: &MulParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    let rows = check(bc, a, b, output).filter(|_| mul_neon_takes(p, bc).is_ok());
    let Some(rows) = rows else {
        reference::mul_s8(p, bc, a, b, output);
        return;
    };
    rows.each(a, b, output, |a, b, y| {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { mul_row(p, a, b, y) }
    });
}

/// One operand's 16 lanes at a time.
trait Lanes: Copy {
    /// Elements `i..i + 16` (`i + 16` at most the row length).
    fn at16(self, i: usize) -> int8x16_t;
    fn at(self, i: usize) -> i8;
}

/// A contiguous operand row.
#[derive(Clone, Copy)]
struct RowLanes<'a>(&'a [i8]);

/// One value for the whole row.
#[derive(Clone, Copy)]
struct SplatLanes(i8);

impl Lanes for RowLanes<'_> {
    #[inline(always)]
    fn at16(self, i: usize) -> int8x16_t {
        match self.0.get(i..i + 16) {
            // SAFETY: `r` is 16 readable bytes; NEON is baseline.
            Some(r) => unsafe { vld1q_s8(r.as_ptr()) },
            // SAFETY: NEON is baseline.
            None => unsafe { vdupq_n_s8(0) },
        }
    }

    #[inline(always)]
    fn at(self, i: usize) -> i8 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl Lanes for SplatLanes {
    #[inline(always)]
    fn at16(self, _: usize) -> int8x16_t {
        // SAFETY: NEON is baseline.
        unsafe { vdupq_n_s8(self.0) }
    }

    #[inline(always)]
    fn at(self, _: usize) -> i8 {
        self.0
    }
}

/// Calls `f` with both operands as concrete [`Lanes`] types, so that each
/// combination gets its own loop.
macro_rules! with_lanes {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Source::Row(a), Source::Row(b)) => {
                let ($x, $y) = (RowLanes(a), RowLanes(b));
                $body
            }
            (Source::Row(a), Source::Splat(b)) => {
                let ($x, $y) = (RowLanes(a), SplatLanes(b));
                $body
            }
            (Source::Splat(a), Source::Row(b)) => {
                let ($x, $y) = (SplatLanes(a), RowLanes(b));
                $body
            }
            (Source::Splat(a), Source::Splat(b)) => {
                let ($x, $y) = (SplatLanes(a), SplatLanes(b));
                $body
            }
        }
    };
}

/// `requantize((x − zp) << left_shift, m, s)` for one Add operand, in
/// either of two exact forms (the caller picks one per row).
///
/// The short form holds when `−8 <= s + left_shift <= 22` (clamped `s`):
/// with `d = x − zp`, `|d| ≤ 255`, and `e = 31 − s − ls`, the result is
/// `(d·m + 2^(e−1)) >> e`; `sqdmulh(d·2^23, m) = ⌊d·m / 2^8⌋` exactly
/// (`d·2^23` is never −2^31), and since `2^(e−1)` is a multiple of 2^8,
/// `srshl` by `−(e − 8)` (between −31 and −1) finishes it.
#[derive(Clone, Copy)]
struct InputScale {
    multiplier: int32x4_t,
    /// `s + ls − 23`, for the short form.
    short_shift: int32x4_t,
    short: bool,
    left: int32x4_t,
    rq: Requant,
}

impl InputScale {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new(multiplier: i32, shift: i32, left_shift: i32) -> InputScale {
        let s = shift.clamp(crate::numerics::MIN_SHIFT, crate::numerics::MAX_SHIFT);
        InputScale {
            multiplier: vdupq_n_s32(multiplier),
            short_shift: vdupq_n_s32(s + left_shift - 23),
            short: (-8..=22).contains(&(s + left_shift)),
            left: vdupq_n_s32(left_shift),
            rq: Requant::splat(multiplier, s as i8),
        }
    }

    /// The rescaled `d = x − zp` (`|d| ≤ 255`) in the short form.
    #[inline]
    #[target_feature(enable = "neon")]
    fn short(self, d: int32x4_t) -> int32x4_t {
        vrshlq_s32(
            vqdmulhq_s32(vshlq_n_s32::<23>(d), self.multiplier),
            self.short_shift,
        )
    }

    /// The rescaled `d` in the general form.
    #[inline]
    #[target_feature(enable = "neon")]
    fn general(self, d: int32x4_t) -> int32x4_t {
        self.rq.apply(vshlq_s32(d, self.left))
    }
}

/// `(x − zp)` of 16 lanes, widened to four `i32` vectors.
#[inline]
#[target_feature(enable = "neon")]
fn widen16(x: int8x16_t, zp: int8x16_t) -> [int32x4_t; 4] {
    let lo = vsubl_s8(vget_low_s8(x), vget_low_s8(zp));
    let hi = vsubl_high_s8(x, zp);
    [
        vmovl_s16(vget_low_s16(lo)),
        vmovl_high_s16(lo),
        vmovl_s16(vget_low_s16(hi)),
        vmovl_high_s16(hi),
    ]
}

#[target_feature(enable = "neon")]
fn add_row(p: &AddParams, a: Source, b: Source, y: &mut [i8]) {
    let sa = InputScale::new(p.a_multiplier, p.a_shift, p.left_shift);
    let sb = InputScale::new(p.b_multiplier, p.b_shift, p.left_shift);
    let ro = Requant::splat(p.out_multiplier, p.out_shift.clamp(-128, 127) as i8);
    let scales = (sa, sb, ro);
    match (sa.short && sb.short, ro.is_fast()) {
        (true, true) => with_lanes!(a, b, |a, b| add_lanes::<true, true>(p, scales, a, b, y)),
        (true, false) => with_lanes!(a, b, |a, b| add_lanes::<true, false>(p, scales, a, b, y)),
        (false, true) => with_lanes!(a, b, |a, b| add_lanes::<false, true>(p, scales, a, b, y)),
        (false, false) => {
            with_lanes!(a, b, |a, b| add_lanes::<false, false>(p, scales, a, b, y))
        }
    }
}

/// One row of Add, with the rescaling forms fixed: `SHORT` inputs,
/// `FAST` output requantization.
#[inline]
#[target_feature(enable = "neon")]
fn add_lanes<const SHORT: bool, const FAST: bool>(
    p: &AddParams,
    (sa, sb, ro): (InputScale, InputScale, Requant),
    a: impl Lanes,
    b: impl Lanes,
    y: &mut [i8],
) {
    let (za, zb) = (
        vdupq_n_s8(p.a_zero_point as i8),
        vdupq_n_s8(p.b_zero_point as i8),
    );
    let out = Output::new(p.output_zero_point, p.act_min, p.act_max);
    let scale = |s: InputScale, d| if SHORT { s.short(d) } else { s.general(d) };
    let mut i = 0;
    for y16 in y.chunks_exact_mut(16) {
        let xa = widen16(a.at16(i), za);
        let xb = widen16(b.at16(i), zb);
        let mut v = [vdupq_n_s32(0); 4];
        for (v, (xa, xb)) in v.iter_mut().zip(xa.into_iter().zip(xb)) {
            let sum = vqaddq_s32(scale(sa, xa), scale(sb, xb));
            *v = if FAST {
                ro.apply_fast(sum)
            } else {
                ro.apply_wide(sum)
            };
        }
        // SAFETY: `y16` is 16 writable bytes.
        unsafe { vst1q_s8(y16.as_mut_ptr(), out.finish16(v)) };
        i += 16;
    }
    for (j, y) in y.iter_mut().enumerate().skip(i) {
        *y = add_one(p, a.at(j), b.at(j));
    }
}

/// The reference formula for one element.
fn add_one(p: &AddParams, a: i8, b: i8) -> i8 {
    let xa = (i32::from(a) - p.a_zero_point) << p.left_shift;
    let xb = (i32::from(b) - p.b_zero_point) << p.left_shift;
    let sum = requantize(xa, p.a_multiplier, p.a_shift).saturating_add(requantize(
        xb,
        p.b_multiplier,
        p.b_shift,
    ));
    requantize_to_i8(
        sum,
        p.out_multiplier,
        p.out_shift,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    )
}

#[target_feature(enable = "neon")]
fn mul_row(p: &MulParams, a: Source, b: Source, y: &mut [i8]) {
    let ro = Requant::splat(p.out_multiplier, p.out_shift.clamp(-128, 127) as i8);
    if ro.is_fast() {
        with_lanes!(a, b, |a, b| mul_lanes::<true>(p, ro, a, b, y))
    } else {
        with_lanes!(a, b, |a, b| mul_lanes::<false>(p, ro, a, b, y))
    }
}

/// One row of Mul, with the requantization form fixed (`FAST`).
#[inline]
#[target_feature(enable = "neon")]
fn mul_lanes<const FAST: bool>(
    p: &MulParams,
    ro: Requant,
    a: impl Lanes,
    b: impl Lanes,
    y: &mut [i8],
) {
    let (za, zb) = (
        vdupq_n_s8(p.a_zero_point as i8),
        vdupq_n_s8(p.b_zero_point as i8),
    );
    let out = Output::new(p.output_zero_point, p.act_min, p.act_max);
    let rq = |x| {
        if FAST {
            ro.apply_fast(x)
        } else {
            ro.apply_wide(x)
        }
    };
    let mut i = 0;
    for y16 in y.chunks_exact_mut(16) {
        let (va, vb) = (a.at16(i), b.at16(i));
        let (alo, ahi) = (
            vsubl_s8(vget_low_s8(va), vget_low_s8(za)),
            vsubl_high_s8(va, za),
        );
        let (blo, bhi) = (
            vsubl_s8(vget_low_s8(vb), vget_low_s8(zb)),
            vsubl_high_s8(vb, zb),
        );
        // |a − za| · |b − zb| ≤ 255² fits i32.
        let v = [
            rq(vmull_s16(vget_low_s16(alo), vget_low_s16(blo))),
            rq(vmull_high_s16(alo, blo)),
            rq(vmull_s16(vget_low_s16(ahi), vget_low_s16(bhi))),
            rq(vmull_high_s16(ahi, bhi)),
        ];
        // SAFETY: `y16` is 16 writable bytes.
        unsafe { vst1q_s8(y16.as_mut_ptr(), out.finish16(v)) };
        i += 16;
    }
    for (j, y) in y.iter_mut().enumerate().skip(i) {
        let prod = (i32::from(a.at(j)) - p.a_zero_point) * (i32::from(b.at(j)) - p.b_zero_point);
        *y = requantize_to_i8(
            prod,
            p.out_multiplier,
            p.out_shift,
            p.output_zero_point,
            p.act_min,
            p.act_max,
        );
    }
}
