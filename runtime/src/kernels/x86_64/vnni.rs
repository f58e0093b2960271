//! Convolution on AVX-512 VNNI (256-bit vectors, AVX-512VL): the direct
//! path of [`direct`](super::direct) with four input channels per lane.
//!
//! `vpdpbusd` multiplies four unsigned bytes by four signed bytes and adds
//! the four products to an `i32` lane, exactly (no saturation: `vpdpbusds`
//! is the saturating one and is never used). The weights are the file's
//! `i8`; the inputs are made unsigned as `u = x + 128`, and a padded
//! position holds `zp + 128`, the input zero point's `u` (which the
//! kernel's `i8` zero point keeps in `0..=255`). Then, per output channel,
//!
//! `Σ u·w = Σ (x − zp)·w + (zp + 128)·Σ w`,
//!
//! with padded taps adding 0 to the first sum as in the reference. The
//! second term is a constant of the channel, taken off its bias once per
//! pass ([`Packing::bias_offset`]). All of it is `i32` arithmetic that wraps
//! as the reference's does, so the result is the reference's bit for bit
//! (`NUMERICS.md` §2). A lane then adds four taps to 8 outputs with one
//! instruction where AVX2 takes two (`vpmaddwd`, `vpaddd`) for two taps.

use core::arch::x86_64::*;

use super::band::Band;
use super::conv::{conv_args_ok, conv_avx2_takes, Operands};
use super::direct::{widen_band_rows, widen_weight_rows, DirectPlan, DirectRun, Packing, Pass};
use super::widen::window;
use crate::kernels::reference;
use crate::kernels::ConvParams;

/// Four channels per lane, `u8` `x + 128` (the pad value `zp + 128`),
/// multiplied by `vpdpbusd`.
pub(super) struct QuadsU8;

/// Whether this CPU runs AVX-512 VNNI on 256-bit vectors (and AVX2):
/// detected at run time with feature `std`, else whether the build targets
/// it.
#[inline]
pub fn vnni_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx2",
            target_feature = "avx512vnni",
            target_feature = "avx512vl"
        ))
    }
}

/// [`reference::conv_s8`], bit for bit, on AVX-512 VNNI.
///
/// Same arguments, layout and preconditions. Runs the shapes that
/// [`conv_vnni_takes`] accepts on the direct path with four input channels
/// per lane; calls the reference kernel instead when it refuses the shape
/// or a precondition fails (the kernel selection never calls it then).
pub fn conv_s8_vnni(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let ops = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    let run = match conv_vnni_takes(p) {
        Ok(()) if conv_args_ok(p, &ops, output) && !output.is_empty() => {
            DirectRun::new::<QuadsU8>(p)
        }
        _ => None,
    };
    match run {
        // SAFETY: `conv_vnni_takes` checked that the CPU runs AVX2 and
        // AVX-512 VNNI/VL.
        Some(run) => unsafe { run.run::<QuadsU8>(p, &ops, output) },
        None => reference::conv_s8(p, input, weights, bias, multiplier, shift, output),
    }
}

/// `Ok` when [`conv_s8_vnni`] runs `p` itself: what
/// [`conv_avx2_takes`](super::conv_avx2_takes) requires, AVX-512 VNNI, at
/// least two input channels per group (one goes to the depthwise kernel's
/// sliding path), at most 640 channel-quad taps per output channel, and one
/// output row's band within 32 KiB, or (one group) a tile of the output
/// plane's.
pub fn conv_vnni_takes(p: &ConvParams) -> Result<(), &'static str> {
    conv_avx2_takes(p)?;
    if !vnni_available() {
        return Err("AVX-512 VNNI not available");
    }
    if p.in_channels / p.groups < 2 {
        return Err("one input channel per group");
    }
    if DirectRun::new::<QuadsU8>(p).is_none() {
        return Err("more than 640 channel-quad taps, or a band over 32 KiB even for one output");
    }
    Ok(())
}

impl Packing for QuadsU8 {
    const CHANNELS: usize = 4;

    #[target_feature(enable = "avx2")]
    unsafe fn widen_band(
        p: &ConvParams,
        plan: &DirectPlan,
        band: &Band,
        group_in: &[i8],
        x: &mut [i32],
    ) {
        let pad = (p.input_zero_point + 128) as u8;
        let run = |rows: [(&[i8], usize); 4], x: &mut [i32], at: usize, len: usize| {
            widen_quads(rows, p.pad_left, pad, x, at, len);
        };
        let lane = |rows: &[(&[i8], usize); 4], col: usize| {
            let byte = |(k, &(src, n)): (usize, &(&[i8], usize))| -> u32 {
                let v = src.get(col).filter(|_| col < n);
                u32::from(v.map_or(pad, |&v| (v as u8) ^ 0x80)) << (8 * k)
            };
            rows.iter().enumerate().map(byte).fold(0, |a, b| a | b) as i32
        };
        let no_fast_path = |_: usize, _: usize, _: Option<usize>, _: &mut [i32]| false;
        widen_band_rows(p, plan, band, group_in, x, no_fast_path, run, lane);
    }

    #[target_feature(enable = "avx2")]
    unsafe fn widen_weights(
        p: &ConvParams,
        plan: &DirectPlan,
        w_rows: &[i8],
        rows: usize,
        width: usize,
        w: &mut [i32],
    ) {
        let cin_g = p.in_channels / p.groups;
        let taps = plan.taps;
        let short_order = ShortOrder::new(taps);
        let whole = |rest: &[i8], w: &mut [i32], at: usize| match &short_order {
            Some(order) => short_weight_quads(rest, cin_g / 4, taps, order, w, at),
            None => weight_quads(rest, cin_g / 4, taps, w, at),
        };
        // A last partial quad takes 0s.
        let lane = |row: &[i8], c: usize, t: usize| {
            let byte = |j: usize| -> u32 {
                let ch = 4 * c + j;
                let v = row.get(ch * taps + t).filter(|_| ch < cin_g);
                u32::from(v.map_or(0, |&v| v as u8)) << (8 * j)
            };
            (byte(0) | byte(1) | byte(2) | byte(3)) as i32
        };
        widen_weight_rows(p, plan, (w_rows, rows, width), w, whole, lane);
    }

    /// `(zp + 128)·Σ w`, wrapping as the accumulation does.
    #[target_feature(enable = "avx2")]
    unsafe fn bias_offset(p: &ConvParams, w_row: &[i8]) -> i32 {
        let sum = w_row
            .iter()
            .fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
        (p.input_zero_point + 128).wrapping_mul(sum)
    }

    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    unsafe fn run_pass<const M: usize>(
        pass: &Pass<'_, Self>,
        q: (&[i32], &[i32], &[i8]),
        out: &mut [i8],
        out_plane: usize,
    ) {
        pass.run::<M>(q, out, out_plane);
    }
}

/// `vpdpbusd`: `acc` plus, in each lane, the four products of `x`'s
/// unsigned bytes by `w`'s signed ones.
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
#[inline]
pub(super) fn dpbusd_quads(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(acc, x, w)
}

/// Bytes `j..j + 16` of a padded row as `u8`: byte `l` is `src[l − pad] +
/// 128` when `pad ≤ l < pad + n`, else `fill` (see [`window`]).
#[target_feature(enable = "avx2")]
#[inline]
fn chunk_u8(src: &[i8], n: usize, pad: usize, j: usize, fill: __m128i) -> __m128i {
    let Some((raw, lead, avail)) = window(src, n, pad, j) else {
        return fill;
    };
    let v = _mm_xor_si128(raw, _mm_set1_epi8(i8::MIN));
    if lead == 0 && avail == 16 {
        return v;
    }
    // Keep bytes lead..lead + avail (both at most 16), `fill` elsewhere.
    let iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let from = _mm_set1_epi8(lead as i8);
    let to = _mm_set1_epi8((lead + avail) as i8);
    let inside = _mm_andnot_si128(_mm_cmpgt_epi8(from, iota), _mm_cmpgt_epi8(to, iota));
    _mm_blendv_epi8(fill, v, inside)
}

/// Four 16-byte vectors `a`, `b`, `c`, `d` as 16 lanes of four bytes
/// `(a_j, b_j, c_j, d_j)`, stored at `x[at..at + 16]`, or as much of it as
/// `x[..end]` holds.
#[target_feature(enable = "avx2")]
#[inline]
fn store_quads(v: [__m128i; 4], x: &mut [i32], at: usize, end: usize) {
    let ab_lo = _mm_unpacklo_epi8(v[0], v[1]);
    let ab_hi = _mm_unpackhi_epi8(v[0], v[1]);
    let cd_lo = _mm_unpacklo_epi8(v[2], v[3]);
    let cd_hi = _mm_unpackhi_epi8(v[2], v[3]);
    let lanes = [
        _mm_unpacklo_epi16(ab_lo, cd_lo),
        _mm_unpackhi_epi16(ab_lo, cd_lo),
        _mm_unpacklo_epi16(ab_hi, cd_hi),
        _mm_unpackhi_epi16(ab_hi, cd_hi),
    ];
    match x.get_mut(at..at + 16) {
        Some(d) => {
            for (i, l) in lanes.iter().enumerate() {
                // SAFETY: room for 16 `i32`; `i < 4` stores 4 each.
                unsafe { _mm_storeu_si128(d.as_mut_ptr().add(4 * i).cast(), *l) };
            }
        }
        None => {
            let mut all = [0i32; 16];
            for (i, l) in lanes.iter().enumerate() {
                // SAFETY: `all` has room for 16 `i32`; `i < 4` stores 4 each.
                unsafe { _mm_storeu_si128(all.as_mut_ptr().add(4 * i).cast(), *l) };
            }
            let d = x.get_mut(at..end.min(x.len())).unwrap_or(&mut []);
            let k = d.len().min(16);
            d[..k].copy_from_slice(&all[..k]);
        }
    }
}

/// `x[at + j]` = the quad lane of position `j` of four padded rows (see
/// [`chunk_u8`]; `fill` in the padding and for a missing channel) for
/// `j < len`, 16 lanes per step (a step may write up to 15 past `len`).
#[target_feature(enable = "avx2")]
fn widen_quads(
    rows: [(&[i8], usize); 4],
    pad: usize,
    fill: u8,
    x: &mut [i32],
    at: usize,
    len: usize,
) {
    let fill = _mm_set1_epi8(fill as i8);
    let mut j = 0;
    while j < len {
        let v = rows.map(|(src, n)| chunk_u8(src, n, pad, j, fill));
        store_quads(v, x, at + j, at + len);
        j += 16;
    }
}

/// Whole channel quads of the weight row: 16 taps of the four channels at a
/// time, interleaved into lanes `c·taps + t` at `w[at..]`. Returns how many
/// of the `quads` it did (it stops where 16-byte loads would leave the
/// weights).
#[target_feature(enable = "avx2")]
fn weight_quads(row: &[i8], quads: usize, taps: usize, w: &mut [i32], at: usize) -> usize {
    for c in 0..quads {
        let block = 4 * c * taps;
        let mut t0 = 0;
        while t0 < taps {
            let load = |j: usize| -> Option<__m128i> {
                let from = block + j * taps + t0;
                let s = row.get(from..from + 16)?;
                // SAFETY: 16 bytes to load.
                Some(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
            };
            let (Some(a), Some(b), Some(c2), Some(d)) = (load(0), load(1), load(2), load(3)) else {
                return c;
            };
            let lane = at + c * taps + t0;
            if lane + 16 > w.len() {
                return c;
            }
            store_quads([a, b, c2, d], w, lane, lane + 16);
            t0 += 16;
        }
    }
    quads
}

/// For kernels of at most 8 taps: a channel quad's `4·taps ≤ 32` weight
/// bytes transposed into its `taps` lanes by byte shuffles. Output byte
/// `4t + j` (lane `t`, channel `j`) is input byte `j·taps + t`; `lo` and
/// `hi` pick it from the quad's first or second 16 bytes (the other gives
/// 0: a shuffle index with its high bit set), for the first 4 lanes and
/// the next 4.
struct ShortOrder {
    lo: [__m128i; 2],
    hi: [__m128i; 2],
}

impl ShortOrder {
    /// `None` for more than 8 taps (or none).
    #[target_feature(enable = "avx2")]
    fn new(taps: usize) -> Option<ShortOrder> {
        if taps == 0 || taps > 8 {
            return None;
        }
        let mut idx = [[[-128i8; 16]; 2]; 2];
        for t in 0..taps {
            for j in 0..4 {
                let src = j * taps + t;
                let (part, byte) = (t / 4, 4 * (t % 4) + j);
                idx[src / 16][part][byte] = (src % 16) as i8;
            }
        }
        // SAFETY: each row of `idx` holds 16 bytes to load.
        let load = |v: &[i8; 16]| unsafe { _mm_loadu_si128(v.as_ptr().cast()) };
        Some(ShortOrder {
            lo: [load(&idx[0][0]), load(&idx[0][1])],
            hi: [load(&idx[1][0]), load(&idx[1][1])],
        })
    }
}

/// [`weight_quads`] for at most 8 taps: per quad, two 16-byte loads and
/// four shuffles give its 8 lanes (those past `taps` spill into the next
/// quad's, written after them). Returns how many of the `quads` it did.
#[target_feature(enable = "avx2")]
fn short_weight_quads(
    row: &[i8],
    quads: usize,
    taps: usize,
    order: &ShortOrder,
    w: &mut [i32],
    at: usize,
) -> usize {
    for c in 0..quads {
        let block = 4 * c * taps;
        let lane = at + c * taps;
        let (Some(src), Some(dst)) = (row.get(block..block + 32), w.get_mut(lane..lane + 8)) else {
            return c;
        };
        // SAFETY: 32 bytes to load from `src`, room for 8 `i32` in `dst`.
        unsafe {
            let lo = _mm_loadu_si128(src.as_ptr().cast());
            let hi = _mm_loadu_si128(src.as_ptr().add(16).cast());
            for (part, d) in [0, 4].into_iter().enumerate() {
                let v = _mm_or_si128(
                    _mm_shuffle_epi8(lo, order.lo[part]),
                    _mm_shuffle_epi8(hi, order.hi[part]),
                );
                _mm_storeu_si128(dst.as_mut_ptr().add(d).cast(), v);
            }
        }
    }
    quads
}
