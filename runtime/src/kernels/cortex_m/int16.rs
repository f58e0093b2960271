//! Int16-activation Conv and FullyConnected on the DSP extension (TFLite's
//! 16x8 scheme; CMSIS-NN's `s16` kernels): `SMLALD` multiplies two `i16`
//! activations by two sign-extended weights and adds both products into a
//! 64-bit accumulator. Every sum is exact, in any order, so the outputs are
//! the reference kernels' bit for bit.
//!
//! Per group of 4 inputs, the two activation words are repacked by
//! `PKHBT`/`PKHTB` into the lanes `SXTB16` gives a weight word, and two
//! weight rows share them: per row, one weight load, two `SXTB16` and two
//! `SMLALD`. A convolution first gathers each output position's window
//! (`C_in/groups · kH · kW` values, zeros for the padding) into a column on
//! the stack, which every output channel of the group then reads as a
//! fully connected row.

use super::dsp::{interleave, smlald, unpack_word, USES_DSP_INSTRUCTIONS};
use super::Requant;
use crate::kernels::reference::{self, Lane, Taps};
use crate::kernels::{ConvParams, FullyConnectedParams};
use crate::numerics::{clamp, requantize, requantize_i64};

/// The longest window (`C_in/groups · kH · kW`) the int16 DSP convolution
/// gathers: 2 KB of stack.
pub const MAX_REDUCTION_S16: usize = 1024;
/// The shortest: below it gathering the window costs about what `SMLALD`
/// saves (`benches/qemu` `int16`: a 1 → 16 channel k7 conv, window 7, took
/// about 19 instructions per MAC on either kernel).
pub const MIN_REDUCTION_S16: usize = 16;

/// [`reference::fully_connected_s16`], bit for bit, on the DSP extension.
/// Falls back to the reference kernel (which returns early on a failed
/// precondition) unless the preconditions hold.
#[inline(never)]
pub fn fully_connected_s16_dsp(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    if !run(p, input, weights, (bias, multiplier, shift), output) {
        reference::fully_connected_s16(p, input, weights, bias, multiplier, shift, output);
    }
}

/// [`reference::fully_connected_s16_s8`] (an int16 input, an int8 output),
/// bit for bit, on the DSP extension; the same fallback.
#[inline(never)]
pub fn fully_connected_s16_s8_dsp(
    p: &FullyConnectedParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    if !run(p, input, weights, (bias, multiplier, shift), output) {
        reference::fully_connected_s16_s8(p, input, weights, bias, multiplier, shift, output);
    }
}

/// [`reference::fully_connected_s8_s16`] (an int8 input, an int16 output:
/// the first layer of an int16 run), bit for bit, on the DSP extension:
/// each input row less its zero point widened into a stack column (at most
/// [`MAX_REDUCTION_S16`] inputs; longer rows run on the reference).
#[inline(never)]
pub fn fully_connected_s8_s16_dsp(
    p: &FullyConnectedParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    if !run(p, input, weights, (bias, multiplier, shift), output) {
        reference::fully_connected_s8_s16(p, input, weights, bias, multiplier, shift, output);
    }
}

/// `Ok` when [`fully_connected_s8_s16_dsp`] computes `p` itself.
pub fn fully_connected_s8_s16_dsp_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    fully_connected_s16_dsp_takes(p)?;
    match p.in_features <= MAX_REDUCTION_S16 {
        true => Ok(()),
        false => Err(why!("rows longer than 1024 inputs")),
    }
}

/// `Ok` when the int16 DSP kernels compute `p` themselves; otherwise why not.
pub fn fully_connected_s16_dsp_takes(p: &FullyConnectedParams) -> Result<(), &'static str> {
    if !USES_DSP_INSTRUCTIONS {
        return Err(why!("no Arm DSP extension"));
    }
    if p.in_features == 0 {
        return Err(why!("empty reduction"));
    }
    Ok(())
}

/// [`reference::conv_s16`], bit for bit, on the DSP extension. Falls back
/// to the reference kernel unless the preconditions hold and
/// [`conv_s16_dsp_takes`] accepts `p`.
#[inline(never)]
pub fn conv_s16_dsp(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    if !run_conv(p, input, weights, (bias, multiplier, shift), output) {
        reference::conv_s16(p, input, weights, bias, multiplier, shift, output);
    }
}

/// [`reference::conv_s16_s8`] (an int16 input, an int8 output), bit for
/// bit, on the DSP extension; the same fallback.
#[inline(never)]
pub fn conv_s16_s8_dsp(
    p: &ConvParams,
    input: &[i16],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    if !run_conv(p, input, weights, (bias, multiplier, shift), output) {
        reference::conv_s16_s8(p, input, weights, bias, multiplier, shift, output);
    }
}

/// [`reference::conv_s8_s16`] (an int8 input, an int16 output: the first
/// layer of an int16 run), bit for bit, on the DSP extension: the window
/// is gathered less the input zero point. The same fallback.
#[inline(never)]
pub fn conv_s8_s16_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i16],
) {
    if !run_conv(p, input, weights, (bias, multiplier, shift), output) {
        reference::conv_s8_s16(p, input, weights, bias, multiplier, shift, output);
    }
}

/// `Ok` when the int16 DSP convolutions compute `p` themselves; otherwise
/// why not.
pub fn conv_s16_dsp_takes(p: &ConvParams) -> Result<(), &'static str> {
    if !USES_DSP_INSTRUCTIONS {
        return Err(why!("no Arm DSP extension"));
    }
    match window_len(p) {
        Some(MIN_REDUCTION_S16..=MAX_REDUCTION_S16) => Ok(()),
        _ => Err(why!("window shorter than 16 or longer than 1024 values")),
    }
}

/// `C_in/groups · kH · kW`.
fn window_len(p: &ConvParams) -> Option<usize> {
    p.in_channels
        .checked_div(p.groups)?
        .checked_mul(p.kernel_h)?
        .checked_mul(p.kernel_w)
}

/// The convolution into `output`, true; or false without writing when a
/// precondition fails or the window does not fit the column.
fn run_conv<X: Activation, Y: Lane>(
    p: &ConvParams,
    input: &[X],
    weights: &[i8],
    vectors: (&[i32], &[i32], &[i8]),
    output: &mut [Y],
) -> bool {
    let call_ok =
        reference::conv_lanes_call_ok::<X, Y>(p, input.len(), weights.len(), vectors, output.len());
    // An int8 input's zero point within int8 keeps `x − zp` within i16.
    let zp_ok = (-128..=127).contains(&p.input_zero_point);
    let k = match window_len(p) {
        Some(k @ MIN_REDUCTION_S16..=MAX_REDUCTION_S16) if call_ok && zp_ok => k,
        _ => return false,
    };
    let (bias, multiplier, shift) = vectors;
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let (in_plane, out_plane) = (p.in_h * p.in_w, p.out_h * p.out_w);
    let mut column = [0i16; MAX_REDUCTION_S16];
    let column = &mut column[..k];
    // The lengths were checked above, so every `get` below is `Some`.
    for g in 0..p.groups {
        let x_group = input.get(g * cin_g * in_plane..).unwrap_or(&[]);
        let w_group = weights
            .get(g * cout_g * k..(g + 1) * cout_g * k)
            .unwrap_or(&[]);
        let first = g * cout_g;
        for at in 0..out_plane {
            gather_window(p, x_group, cin_g, (at / p.out_w, at % p.out_w), column);
            let mut rows = w_group.chunks_exact(k).enumerate();
            while let Some((r, w0)) = rows.next() {
                let second = rows.next();
                let w1 = second.map_or(w0, |(_, w)| w);
                let o = first + r;
                let b = |o: usize| i64::from(bias.get(o).copied().unwrap_or(0));
                let acc = dot_x2(column, w0, w1, [b(o), b(o + 1)]);
                let n = if second.is_some() { 2 } else { 1 };
                for (o, &a) in (o..o + n).zip(&acc) {
                    let (m, s) = (multiplier.get(o), shift.get(o));
                    let (Some(&m), Some(&s)) = (m, s) else {
                        continue;
                    };
                    if let Some(y) = output.get_mut(o * out_plane + at) {
                        let out = (p.output_zero_point, p.act_min, p.act_max);
                        *y = requantize_to_lane(a, m, i32::from(s), out);
                    }
                }
            }
        }
    }
    true
}

/// The window of output position `(oy, ox)` over the group's `cin_g`
/// channels, less the input zero point, in weight order `[c][ky][kx]`,
/// zeros where it reaches into the padding (the valid taps of each axis in
/// closed form).
fn gather_window<X: Activation>(
    p: &ConvParams,
    x: &[X],
    cin_g: usize,
    (oy, ox): (usize, usize),
    column: &mut [i16],
) {
    let zp = p.input_zero_point;
    let ty = Taps::new(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
    let tx = Taps::new(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
    let (in_w, in_plane) = (p.in_w, p.in_h * p.in_w);
    let mut rows = column.chunks_exact_mut(p.kernel_w.max(1));
    for c in 0..cin_g {
        let plane = x.get(c * in_plane..).unwrap_or(&[]);
        for ky in 0..p.kernel_h {
            let Some(dst) = rows.next() else { return };
            let y = (ty.lo..ty.hi)
                .contains(&ky)
                .then(|| ty.first + (ky - ty.lo) * p.dilation_h);
            let src = y.and_then(|y| plane.get(y * in_w..(y + 1) * in_w));
            let (Some(src), Some(valid)) = (src, dst.get_mut(tx.lo..tx.hi)) else {
                dst.fill(0);
                continue;
            };
            let taps = src.get(tx.first..).unwrap_or(&[]);
            for (v, &t) in valid.iter_mut().zip(taps.iter().step_by(p.dilation_w)) {
                *v = X::less_zero_point(t, zp);
            }
            let kw = dst.len();
            for v in dst.get_mut(..tx.lo.min(kw)).unwrap_or(&mut []) {
                *v = 0;
            }
            for v in dst.get_mut(tx.hi.min(kw)..).unwrap_or(&mut []) {
                *v = 0;
            }
        }
    }
}

/// Computes the layer into `output` and returns true, or returns false
/// without writing when a precondition fails.
fn run<X: Activation, Y: Lane>(
    p: &FullyConnectedParams,
    input: &[X],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i8]),
    output: &mut [Y],
) -> bool {
    let (k, n) = (p.in_features, p.out_features);
    let lens_ok = p.rows.checked_mul(k) == Some(input.len())
        && n.checked_mul(k) == Some(weights.len())
        && p.rows.checked_mul(n) == Some(output.len())
        && bias.len() == n
        && multiplier.len() == n
        && shift.len() == n;
    let lanes_ok = reference::lanes_ok::<X, Y>(
        p.input_zero_point,
        p.output_zero_point,
        p.act_min,
        p.act_max,
    ) && (-128..=127).contains(&p.input_zero_point);
    // An int8 input is widened a row at a time into a column on the stack.
    let column_ok = X::direct(&[]).is_some() || k <= MAX_REDUCTION_S16;
    if !lens_ok || !lanes_ok || !column_ok || k == 0 || output.is_empty() {
        return false;
    }
    let zp = p.input_zero_point;
    let mut column = [0i16; MAX_REDUCTION_S16];
    let store = |y: &mut Y, acc: i64, o: usize| {
        let (m, s) = (multiplier[o], i32::from(shift[o]));
        *y = requantize_to_lane(acc, m, s, (p.output_zero_point, p.act_min, p.act_max));
    };
    for (x, y_row) in input.chunks_exact(k).zip(output.chunks_exact_mut(n)) {
        let x: &[i16] = match X::direct(x) {
            Some(x) => x,
            None => {
                let col = &mut column[..k];
                for (c, &v) in col.iter_mut().zip(x) {
                    *c = X::less_zero_point(v, zp);
                }
                col
            }
        };
        let mut rows = weights.chunks_exact(k);
        let mut o = 0;
        while let (Some(w0), Some(w1)) = (rows.next(), rows.next()) {
            let acc = dot_x2(x, w0, w1, [i64::from(bias[o]), i64::from(bias[o + 1])]);
            store(&mut y_row[o], acc[0], o);
            store(&mut y_row[o + 1], acc[1], o + 1);
            o += 2;
        }
        if o < n {
            let w = &weights[o * k..];
            let acc = dot_x2(x, w, w, [i64::from(bias[o]); 2]);
            store(&mut y_row[o], acc[0], o);
        }
    }
    true
}

/// An activation type the int16 DSP kernels read: `i16` as it is, `i8`
/// less its zero point, widened into a stack column.
pub trait Activation: Lane + Into<i32> {
    /// The row itself, when it is `i16` already (zero point 0).
    fn direct(row: &[Self]) -> Option<&[i16]>;

    /// `x − zp` as `i16`: exact for an `i16` (zp 0) and for an `i8` less a
    /// zero point in `-128..=127` (which the callers check).
    fn less_zero_point(x: Self, zp: i32) -> i16 {
        (Into::<i32>::into(x) - zp) as i16
    }
}

impl Activation for i16 {
    fn direct(row: &[i16]) -> Option<&[i16]> {
        Some(row)
    }
}

impl Activation for i8 {
    fn direct(_: &[i8]) -> Option<&[i16]> {
        None
    }
}

/// `reference::requantize_to_lane`: an accumulator within `i32` (the
/// usual case) through the int8 kernels' precomputed shortcut, which gives
/// `requantize` exactly, and the `i64` rounding otherwise.
#[inline(always)]
fn requantize_to_lane<Y: Lane>(acc: i64, m: i32, s: i32, (zp, lo, hi): (i32, i32, i32)) -> Y {
    let rq = Requant::new(m, s);
    let v = match i32::try_from(acc) {
        Ok(acc) if rq.fast => rq.value(acc),
        // Inline, not the int8 kernels' out-of-line cold call: an int16
        // output's small scale often puts its multiplier above 1/4, so
        // these shifts are common here (every output of an int8 → int16
        // layer).
        Ok(acc) => requantize(acc, m, s),
        Err(_) => requantize_i64(acc, m, s),
    };
    Y::from_clamped(clamp(v.saturating_add(zp), lo, hi))
}

/// `acc[r] + Σ_k x[k] · w_r[k]` for two weight rows of `x.len()` weights.
#[inline(always)]
fn dot_x2(x: &[i16], w0: &[i8], w1: &[i8], mut acc: [i64; 2]) -> [i64; 2] {
    let pair = |a: i16, b: i16| u32::from(a as u16) | (u32::from(b as u16) << 16);
    let word = |w: &[i8]| match *w {
        [a, b, c, d] => u32::from_le_bytes([a as u8, b as u8, c as u8, d as u8]),
        _ => 0,
    };
    let groups = x
        .chunks_exact(4)
        .zip(w0.chunks_exact(4))
        .zip(w1.chunks_exact(4));
    for ((xg, a), b) in groups {
        let [x02, x13] = match *xg {
            [x0, x1, x2, x3] => interleave(pair(x0, x1), pair(x2, x3)),
            _ => [0, 0],
        };
        let [a02, a13] = unpack_word(word(a));
        acc[0] = smlald(x13, a13, smlald(x02, a02, acc[0]));
        let [b02, b13] = unpack_word(word(b));
        acc[1] = smlald(x13, b13, smlald(x02, b02, acc[1]));
    }
    let tail = x.len() / 4 * 4;
    for (i, &xi) in x.iter().enumerate().skip(tail) {
        let xi = i64::from(xi);
        acc[0] += xi * i64::from(w0.get(i).copied().unwrap_or(0));
        acc[1] += xi * i64::from(w1.get(i).copied().unwrap_or(0));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::super::testing::xorshift;
    use super::*;
    use std::vec::Vec;

    /// A layer with `k` inputs and `n` outputs over `rows` rows, the rails
    /// of `i16` among the data, through the reference and the DSP kernel.
    fn both(rows: usize, k: usize, n: usize, seed: u32) -> (Vec<i16>, Vec<i16>, Vec<i8>, Vec<i8>) {
        let mut next = xorshift(seed);
        let input: Vec<i16> = (0..rows * k)
            .map(|i| match i % 7 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => next() as i16,
            })
            .collect();
        let weights: Vec<i8> = (0..n * k).map(|_| next() as i8).collect();
        let bias: Vec<i32> = (0..n).map(|_| next() as i32 >> 8).collect();
        let multiplier: Vec<i32> = (0..n).map(|_| (1 << 30) + (next() >> 2) as i32).collect();
        let shift: Vec<i8> = (0..n).map(|_| -((next() % 20) as i8)).collect();
        let p = FullyConnectedParams {
            rows,
            in_features: k,
            out_features: n,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
        };
        let (b, m, s) = (&bias[..], &multiplier[..], &shift[..]);
        let mut want = std::vec![0x5555i16; rows * n];
        let mut got = want.clone();
        reference::fully_connected_s16(&p, &input, &weights, b, m, s, &mut want);
        fully_connected_s16_dsp(&p, &input, &weights, b, m, s, &mut got);
        let p8 = FullyConnectedParams {
            output_zero_point: -3,
            act_min: -128,
            act_max: 127,
            ..p
        };
        let mut want8 = std::vec![0x55i8; rows * n];
        let mut got8 = want8.clone();
        reference::fully_connected_s16_s8(&p8, &input, &weights, b, m, s, &mut want8);
        fully_connected_s16_s8_dsp(&p8, &input, &weights, b, m, s, &mut got8);
        // An int8 input (the high bytes) with a zero point, to int16.
        let x8: Vec<i8> = input.iter().map(|&v| (v >> 8) as i8).collect();
        let up = FullyConnectedParams {
            input_zero_point: -7,
            ..p
        };
        let (mut want_up, mut got_up) = (
            std::vec![0x5555i16; rows * n],
            std::vec![0x5555i16; rows * n],
        );
        reference::fully_connected_s8_s16(&up, &x8, &weights, b, m, s, &mut want_up);
        fully_connected_s8_s16_dsp(&up, &x8, &weights, b, m, s, &mut got_up);
        assert_eq!(want_up, got_up, "int8 input, {rows}×{k} → {n}");
        (want, got, want8, got8)
    }

    #[test]
    fn every_reduction_tail_and_odd_row_count_matches_the_reference() {
        for (case, (rows, k, n)) in [
            (1, 1, 1),
            (1, 4, 2),
            (2, 7, 3),
            (3, 13, 5),
            (1, 640, 9),
            (2, 1001, 4),
        ]
        .into_iter()
        .enumerate()
        {
            let (want, got, want8, got8) = both(rows, k, n, 0x9e37 + case as u32);
            assert_eq!(want, got, "int16 output, {rows}×{k} → {n}");
            assert_eq!(want8, got8, "int8 output, {rows}×{k} → {n}");
            assert!(
                want.iter().any(|&y| y != want[0]) || want.len() == 1,
                "{want:?}"
            );
        }
    }

    #[test]
    fn a_failed_precondition_falls_back_to_the_reference() {
        // A zero point on the int16 input: both leave the output untouched.
        let p = FullyConnectedParams {
            rows: 1,
            in_features: 4,
            out_features: 1,
            input_zero_point: 1,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
        };
        let mut y = [7i16];
        fully_connected_s16_dsp(&p, &[1, 2, 3, 4], &[1; 4], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [7]);
        let p = FullyConnectedParams {
            input_zero_point: 0,
            ..p
        };
        fully_connected_s16_dsp(&p, &[1, 2, 3, 4], &[1; 4], &[0], &[1 << 30], &[1], &mut y);
        assert_eq!(y, [10]);
        assert_eq!(
            fully_connected_s16_dsp_takes(&p).is_ok(),
            USES_DSP_INSTRUCTIONS
        );
    }

    /// A conv geometry: (c_in, c_out, groups, (in_h, in_w), (kh, kw),
    /// stride, dilation, (pad_top, pad_left)).
    type Geometry = (
        usize,
        usize,
        usize,
        (usize, usize),
        (usize, usize),
        usize,
        usize,
        (usize, usize),
    );

    fn conv_params(g: Geometry) -> ConvParams {
        let (cin, cout, groups, (in_h, in_w), (kh, kw), st, dil, (pt, pl)) = g;
        let out = |n: usize, k: usize, pad: usize| (n + 2 * pad - dil * (k - 1) - 1) / st + 1;
        ConvParams {
            in_channels: cin,
            in_h,
            in_w,
            out_channels: cout,
            out_h: out(in_h, kh, pt),
            out_w: out(in_w, kw, pl),
            kernel_h: kh,
            kernel_w: kw,
            stride_h: st,
            stride_w: st,
            dilation_h: dil,
            dilation_w: dil,
            pad_top: pt,
            pad_left: pl,
            groups,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
        }
    }

    #[test]
    fn convolutions_match_the_reference_in_every_geometry() {
        let geometries: [Geometry; 8] = [
            (16, 32, 1, (1, 70), (1, 5), 2, 1, (0, 2)),
            (3, 5, 1, (9, 11), (3, 3), 1, 1, (1, 1)),
            (4, 6, 2, (7, 8), (3, 3), 2, 1, (1, 1)),
            (12, 6, 3, (1, 30), (1, 5), 1, 4, (0, 8)),
            (4, 3, 1, (5, 40), (2, 5), 3, 2, (1, 3)),
            // Windows the kernel leaves to the reference: too short (7, and
            // a depthwise 3), too long (64 · 17).
            (1, 16, 1, (1, 140), (1, 7), 1, 1, (0, 3)),
            (6, 6, 6, (1, 30), (1, 3), 1, 4, (0, 4)),
            (64, 2, 1, (1, 20), (1, 17), 1, 1, (0, 8)),
        ];
        for (case, g) in geometries.into_iter().enumerate() {
            let p = conv_params(g);
            let mut next = xorshift(0x51ed + case as u32);
            let k = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
            let x: Vec<i16> = (0..p.in_channels * p.in_h * p.in_w)
                .map(|i| match i % 5 {
                    0 => i16::MIN,
                    1 => i16::MAX,
                    _ => next() as i16,
                })
                .collect();
            let w: Vec<i8> = (0..p.out_channels * k).map(|_| next() as i8).collect();
            let b: Vec<i32> = (0..p.out_channels).map(|_| next() as i32 >> 6).collect();
            let m: Vec<i32> = (0..p.out_channels)
                .map(|_| (1 << 30) + (next() >> 2) as i32)
                .collect();
            let s: Vec<i8> = (0..p.out_channels)
                .map(|_| -((next() % 24) as i8))
                .collect();
            let n = p.out_channels * p.out_h * p.out_w;
            let (mut want, mut got) = (std::vec![0x5555i16; n], std::vec![0x5555i16; n]);
            reference::conv_s16(&p, &x, &w, &b, &m, &s, &mut want);
            conv_s16_dsp(&p, &x, &w, &b, &m, &s, &mut got);
            assert_eq!(want, got, "int16 output, {g:?}");
            assert!(want.iter().any(|&y| y != want[0]), "{g:?}: {want:?}");
            let p8 = ConvParams {
                output_zero_point: 5,
                act_min: -100,
                act_max: 127,
                ..p
            };
            let (mut want8, mut got8) = (std::vec![0x55i8; n], std::vec![0x55i8; n]);
            reference::conv_s16_s8(&p8, &x, &w, &b, &m, &s, &mut want8);
            conv_s16_s8_dsp(&p8, &x, &w, &b, &m, &s, &mut got8);
            assert_eq!(want8, got8, "int8 output, {g:?}");
            // An int8 input (the high bytes) with a zero point, to int16:
            // the padding reads as the zero point.
            let x8: Vec<i8> = x.iter().map(|&v| (v >> 8) as i8).collect();
            let up = ConvParams {
                input_zero_point: 9,
                ..p
            };
            let (mut want_up, mut got_up) = (std::vec![0x5555i16; n], std::vec![0x5555i16; n]);
            reference::conv_s8_s16(&up, &x8, &w, &b, &m, &s, &mut want_up);
            conv_s8_s16_dsp(&up, &x8, &w, &b, &m, &s, &mut got_up);
            assert_eq!(want_up, got_up, "int8 input, {g:?}");
            let takes = conv_s16_dsp_takes(&p).is_ok();
            let fits = (MIN_REDUCTION_S16..=MAX_REDUCTION_S16).contains(&k);
            assert_eq!(takes, USES_DSP_INSTRUCTIONS && fits, "{g:?}");
        }
    }
}
