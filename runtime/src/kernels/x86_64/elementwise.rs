//! Add and Mul with broadcasting, 16 elements per pass.
//!
//! The broadcast geometry is first collapsed: neighbouring dims that both
//! operands walk contiguously (or both repeat) merge, so a same-shape op is
//! one run, a per-channel constant `[C, H, W] + [C, 1, 1]` is `C` runs of
//! `H·W` against a repeated value, and a scalar operand one run against a
//! repeated value. Each run is then vectorized, each operand either read
//! contiguously or splat.

use core::arch::x86_64::*;

use super::need_avx2;
use super::requant::{pack16, Requant};
use crate::kernels::reference::{self, act_ok};
use crate::kernels::{AddParams, Broadcast4, MulParams};

/// [`reference::add_s8`], bit for bit, on AVX2.
///
/// Same arguments and preconditions. Calls the reference kernel instead
/// when AVX2 is missing, a precondition fails, or [`add_avx2_takes`]
/// refuses the geometry.
pub fn add_s8_avx2(p: &AddParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    let runs = match add_avx2_takes(p, bc) {
        Ok(()) => Runs::new(bc, a.len(), b.len(), output.len()),
        Err(_) => None,
    };
    match runs {
        // SAFETY: `add_avx2_takes` checked that the CPU runs AVX2.
        Some(runs) => unsafe { runs.each(a, b, output, &mut AddOp::new(p)) },
        None => reference::add_s8(p, bc, a, b, output),
    }
}

/// [`reference::mul_s8`], bit for bit, on AVX2; as [`add_s8_avx2`].
pub fn mul_s8_avx2(p: &MulParams, bc: &Broadcast4, a: &[i8], b: &[i8], output: &mut [i8]) {
    let runs = match mul_avx2_takes(p, bc) {
        Ok(()) => Runs::new(bc, a.len(), b.len(), output.len()),
        Err(_) => None,
    };
    match runs {
        // SAFETY: `mul_avx2_takes` checked that the CPU runs AVX2.
        Some(runs) => unsafe { runs.each(a, b, output, &mut MulOp::new(p)) },
        None => reference::mul_s8(p, bc, a, b, output),
    }
}

/// `Ok` when [`add_s8_avx2`] runs the op itself: AVX2 is available, the
/// parameters are valid, and each operand is contiguous or repeated along
/// the last axis (always so for a [`Broadcast4::new`] geometry).
pub fn add_avx2_takes(p: &AddParams, bc: &Broadcast4) -> Result<(), &'static str> {
    need_avx2()?;
    if !(0..=20).contains(&p.left_shift) || !act_ok(p.act_min, p.act_max) {
        return Err("invalid parameters");
    }
    inner_strides_ok(bc)
}

/// `Ok` when [`mul_s8_avx2`] runs the op itself; as [`add_avx2_takes`].
pub fn mul_avx2_takes(p: &MulParams, bc: &Broadcast4) -> Result<(), &'static str> {
    need_avx2()?;
    if !act_ok(p.act_min, p.act_max) {
        return Err("invalid parameters");
    }
    inner_strides_ok(bc)
}

fn inner_strides_ok(bc: &Broadcast4) -> Result<(), &'static str> {
    if bc.a_strides[3] > 1 || bc.b_strides[3] > 1 {
        return Err("operand strided along the last axis");
    }
    Ok(())
}

/// The collapsed geometry: up to 3 outer dims and an inner run, each with
/// both operands' strides.
#[derive(Clone, Copy)]
struct Runs {
    shape: [usize; 4],
    a: [usize; 4],
    b: [usize; 4],
}

impl Runs {
    /// `None` unless `out_len` is the broadcast size, every read is inside
    /// its operand, and the inner strides are 0 or 1.
    fn new(bc: &Broadcast4, a_len: usize, b_len: usize, out_len: usize) -> Option<Runs> {
        let n = bc.out_len();
        if n == 0
            || out_len != n
            || !reads_fit(bc.out_shape, bc.a_strides, a_len)
            || !reads_fit(bc.out_shape, bc.b_strides, b_len)
        {
            return None;
        }
        // Collapse from the inside out into slots 3, 2, 1, 0.
        let mut r = Runs {
            shape: [1; 4],
            a: [0; 4],
            b: [0; 4],
        };
        let mut slot = 3;
        let mut started = false;
        for d in (0..4).rev() {
            let (size, sa, sb) = (bc.out_shape[d], bc.a_strides[d], bc.b_strides[d]);
            if size == 1 {
                continue;
            }
            if !started {
                r.shape[slot] = size;
                r.a[slot] = sa;
                r.b[slot] = sb;
                started = true;
                continue;
            }
            let (cur, ca, cb) = (r.shape[slot], r.a[slot], r.b[slot]);
            if ca.checked_mul(cur) == Some(sa) && cb.checked_mul(cur) == Some(sb) {
                r.shape[slot] = cur * size;
            } else {
                slot -= 1;
                r.shape[slot] = size;
                r.a[slot] = sa;
                r.b[slot] = sb;
            }
        }
        (r.a[3] <= 1 && r.b[3] <= 1).then_some(r)
    }

    /// Runs `op` over every inner run.
    #[target_feature(enable = "avx2")]
    fn each(&self, a: &[i8], b: &[i8], out: &mut [i8], op: &mut impl Binary) {
        let [d0, d1, d2, n] = self.shape;
        let mut at = 0;
        for i0 in 0..d0 {
            for i1 in 0..d1 {
                for i2 in 0..d2 {
                    // `reads_fit` bounds these sums by the operand lengths.
                    let ia = i0 * self.a[0] + i1 * self.a[1] + i2 * self.a[2];
                    let ib = i0 * self.b[0] + i1 * self.b[1] + i2 * self.b[2];
                    let (Some(ra), Some(rb), Some(ro)) =
                        (a.get(ia..), b.get(ib..), out.get_mut(at..at + n))
                    else {
                        return;
                    };
                    run(
                        op,
                        Operand::new(ra, self.a[3]),
                        Operand::new(rb, self.b[3]),
                        ro,
                    );
                    at += n;
                }
            }
        }
    }
}

/// Every index `Σ i_d · stride_d` for `i_d < shape_d` is below `len`.
fn reads_fit(shape: [usize; 4], strides: [usize; 4], len: usize) -> bool {
    let last = shape.iter().zip(strides).try_fold(0usize, |acc, (&d, s)| {
        d.checked_sub(1)?
            .checked_mul(s)
            .and_then(|t| acc.checked_add(t))
    });
    matches!(last, Some(i) if i < len)
}

/// One operand of a run: read from `data` at `i · stride`, stride 0 or 1.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [i8],
    contiguous: bool,
}

impl<'a> Operand<'a> {
    fn new(data: &'a [i8], stride: usize) -> Operand<'a> {
        Operand {
            data,
            contiguous: stride == 1,
        }
    }

    /// Elements `i..i + 16` widened to two vectors of 8 `i32` (`n ≤ 16`
    /// of them real, the rest 0).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn load16(&self, i: usize, n: usize) -> (__m256i, __m256i) {
        let mut bytes = [0i8; 16];
        if !self.contiguous {
            bytes = [self.data.first().copied().unwrap_or(0); 16];
        } else if let Some(s) = self.data.get(i..i + 16).filter(|_| n == 16) {
            bytes.copy_from_slice(s);
        } else {
            let src = self.data.get(i..).unwrap_or(&[]);
            for (d, &s) in bytes.iter_mut().zip(src).take(n) {
                *d = s;
            }
        }
        // SAFETY: `bytes` holds 16 bytes to load.
        let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
        (
            _mm256_cvtepi8_epi32(v),
            _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(v, v)),
        )
    }
}

/// A quantized binary op on 8 lanes.
trait Binary {
    /// Output lanes (requantized, zero point added) for operand lanes `x`, `y`.
    fn lanes(&self, x: __m256i, y: __m256i) -> __m256i;
    /// The activation window as splatted bytes.
    fn window(&self) -> (__m128i, __m128i);
}

/// `out[i] = op(a[i], b[i])` over one run, 16 at a time.
#[target_feature(enable = "avx2")]
fn run(op: &impl Binary, a: Operand<'_>, b: Operand<'_>, out: &mut [i8]) {
    let (lo, hi) = op.window();
    let mut i = 0;
    while i < out.len() {
        let n = (out.len() - i).min(16);
        let (a0, a1) = a.load16(i, n);
        let (b0, b1) = b.load16(i, n);
        let y = pack16(op.lanes(a0, b0), op.lanes(a1, b1), lo, hi);
        let mut bytes = [0i8; 16];
        // SAFETY: `bytes` has room for 16 bytes.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), y) };
        if let Some(dst) = out.get_mut(i..i + n) {
            dst.copy_from_slice(bytes.get(..n).unwrap_or(&[]));
        }
        i += n;
    }
}

struct AddOp {
    za: __m256i,
    zb: __m256i,
    left_shift: __m128i,
    ra: Requant,
    rb: Requant,
    ro: Requant,
    lo: __m128i,
    hi: __m128i,
}

impl AddOp {
    #[target_feature(enable = "avx2")]
    fn new(p: &AddParams) -> AddOp {
        AddOp {
            za: _mm256_set1_epi32(p.a_zero_point),
            zb: _mm256_set1_epi32(p.b_zero_point),
            left_shift: _mm_cvtsi32_si128(p.left_shift),
            ra: Requant::splat(p.a_multiplier, p.a_shift, 0),
            rb: Requant::splat(p.b_multiplier, p.b_shift, 0),
            ro: Requant::splat(p.out_multiplier, p.out_shift, p.output_zero_point),
            lo: _mm_set1_epi8(p.act_min as i8),
            hi: _mm_set1_epi8(p.act_max as i8),
        }
    }
}

impl Binary for AddOp {
    #[inline(always)]
    fn lanes(&self, x: __m256i, y: __m256i) -> __m256i {
        // SAFETY: an `AddOp` is only built (by a `target_feature` function)
        // on a CPU that runs AVX2.
        unsafe { add_lanes(self, x, y) }
    }

    fn window(&self) -> (__m128i, __m128i) {
        (self.lo, self.hi)
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn add_lanes(op: &AddOp, x: __m256i, y: __m256i) -> __m256i {
    let xa = _mm256_sll_epi32(_mm256_sub_epi32(x, op.za), op.left_shift);
    let xb = _mm256_sll_epi32(_mm256_sub_epi32(y, op.zb), op.left_shift);
    let sum = saturating_add(op.ra.apply_i32(xa), op.rb.apply_i32(xb));
    op.ro.apply(sum)
}

/// `a.saturating_add(b)` per `i32` lane.
#[target_feature(enable = "avx2")]
#[inline]
fn saturating_add(a: __m256i, b: __m256i) -> __m256i {
    let sum = _mm256_add_epi32(a, b);
    // Overflow: a and b of one sign, the sum of the other (sign bit).
    let overflow = _mm256_andnot_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(a, sum));
    // i32::MAX for a ≥ 0, i32::MIN for a < 0.
    let limit = _mm256_xor_si256(_mm256_srai_epi32::<31>(a), _mm256_set1_epi32(i32::MAX));
    let pick = _mm256_blendv_ps(
        _mm256_castsi256_ps(sum),
        _mm256_castsi256_ps(limit),
        _mm256_castsi256_ps(overflow),
    );
    _mm256_castps_si256(pick)
}

struct MulOp {
    za: __m256i,
    zb: __m256i,
    ro: Requant,
    lo: __m128i,
    hi: __m128i,
}

impl MulOp {
    #[target_feature(enable = "avx2")]
    fn new(p: &MulParams) -> MulOp {
        MulOp {
            za: _mm256_set1_epi32(p.a_zero_point),
            zb: _mm256_set1_epi32(p.b_zero_point),
            ro: Requant::splat(p.out_multiplier, p.out_shift, p.output_zero_point),
            lo: _mm_set1_epi8(p.act_min as i8),
            hi: _mm_set1_epi8(p.act_max as i8),
        }
    }
}

impl Binary for MulOp {
    #[inline(always)]
    fn lanes(&self, x: __m256i, y: __m256i) -> __m256i {
        // SAFETY: a `MulOp` is only built (by a `target_feature` function)
        // on a CPU that runs AVX2.
        unsafe { mul_lanes(self, x, y) }
    }

    fn window(&self) -> (__m128i, __m128i) {
        (self.lo, self.hi)
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn mul_lanes(op: &MulOp, x: __m256i, y: __m256i) -> __m256i {
    // Wrapping, as the reference's `wrapping_sub`/`wrapping_mul`.
    let prod = _mm256_mullo_epi32(_mm256_sub_epi32(x, op.za), _mm256_sub_epi32(y, op.zb));
    op.ro.apply(prod)
}
