//! Depthwise convolution (one input channel per group): each channel's
//! plane is widened once into zero-padded `i16` rows, then every output is
//! a few `SMLAD`-family multiply-accumulates over pairs of adjacent lanes,
//! the weight pairs held in registers.

use super::conv::{lane_pair, row_pairs, ROW_MAX_PAIRS};
use super::dsp;
use super::dw3;
use super::{conv_lens_ok, conv_shape_ok, zeroed_prefix, zp_byte, Operands, Requant, COL_WORDS};
use crate::kernels::{reference, ConvParams};
use core::mem::MaybeUninit;

/// Tallest kernel the kernel takes (the weight pairs of every kernel row
/// are staged in a fixed array).
const MAX_KH: usize = 8;

/// [`reference::conv_s8`] for depthwise shapes, bit for bit, on the DSP
/// extension.
///
/// Same arguments, layout and preconditions as the reference. Takes the
/// shapes [`depthwise_conv_dsp_takes`] accepts: one input channel per
/// group (any depth multiplier), `2 <= kH <= 8` (one kernel row is
/// [`conv_s8_dsp`](super::conv_s8_dsp)'s), `kW <= 8`, no dilation along W,
/// the input zero point in `i8`, and a padded band of `(kH − 1)·dilation_h
/// + 1` rows fitting the row buffer.
///
/// Each channel's plane is widened, in bands of output rows, into rows of
/// `x − zp` lanes (padding 0). With `kW <= 3`, `kH = 3`, stride 1 along W
/// and a shift in `[-23, -2]`, two outputs `2m, 2m + 1` share the two words `m, m + 1` of each
/// kernel row's input: with `A = (w0, w1)`, `B = (w1, w2)`, the even one
/// is `SMLAD(A, word m) + SMLATB(B, word m+1)` and the odd one
/// `SMLABT(A, word m) + SMLAD(B, word m+1)`. Other shapes read each
/// output's window as pairs of lanes (`SMLAD`, `ceil(kW/2)` per kernel row).
///
/// Any other call goes to the reference kernel (which returns early,
/// output unchanged, on a failed precondition).
#[inline(never)]
pub fn depthwise_conv_s8_dsp(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i8],
    output: &mut [i8],
) {
    let io = Operands {
        input,
        weights,
        bias,
        multiplier,
        shift,
    };
    let plan = Plan::new(p).ok().filter(|plan| {
        let sizes = (p.kernel_h * p.kernel_w, plan.in_plane, plan.out_plane);
        conv_lens_ok(p, &io, output, sizes) && !output.is_empty()
    });
    let Some(plan) = plan else {
        reference::conv_s8(p, input, weights, bias, multiplier, shift, output);
        return;
    };
    let mut buf = MaybeUninit::<[u32; COL_WORDS]>::uninit();
    let buf = zeroed_prefix(&mut buf, plan.pitch * plan.rows_in(p, plan.band));
    let mut oy = 0;
    while oy < p.out_h {
        let rows = plan.band.min(p.out_h - oy);
        let band = plan.band_rows(p, oy, rows);
        plan.zero_padding_rows(&band, buf);
        for chan in 0..p.in_channels {
            plan.run_channel(p, &io, chan, (oy, &band), buf, output);
        }
        oy += rows;
    }
}

/// `Ok` when [`depthwise_conv_s8_dsp`] computes `p` itself (given operands
/// of the lengths `p` implies); otherwise why not.
pub fn depthwise_conv_dsp_takes(p: &ConvParams) -> Result<(), &'static str> {
    if !dsp::USES_DSP_INSTRUCTIONS {
        return Err(why!("no Arm DSP extension"));
    }
    Plan::new(p).map(|_| ())
}

/// A band's input rows, see [`Plan::band_rows`].
struct BandRows {
    rows: usize,
    rows_in: usize,
    lead: usize,
    inside: usize,
    first: usize,
}

/// The requantization of one output channel.
struct Quant {
    bias: i32,
    rq: Requant,
    zp: i32,
    act_min: i32,
    act_max: i32,
}

/// How a call runs, derived from its parameters.
///
/// Widened rows put input column `c` at lane `c + pad_left + head`, `head
/// = pad_left % 2`, so that each row's input starts on a whole word; the
/// window of output `ox` then starts at lane `ox·stride_w + head`.
struct Plan {
    cout_g: usize,
    in_plane: usize,
    out_plane: usize,
    /// Words per widened row.
    pitch: usize,
    /// Input columns widened per row (those some window reads), and the
    /// lane of the first (even).
    cols: usize,
    first_lane: usize,
    head: usize,
    /// Output rows per band: as many as the buffer holds the input rows of.
    band: usize,
    /// Kernel rows run by [`dw3::dw3_band`] where the requantization allows.
    three_taps: bool,
    zp: i8,
}

impl Plan {
    fn new(p: &ConvParams) -> Result<Plan, &'static str> {
        if !conv_shape_ok(p) {
            return Err(why!("invalid convolution parameters"));
        }
        if p.in_channels != p.groups {
            return Err(why!(
                "not depthwise (more than one input channel per group)"
            ));
        }
        if p.kernel_h == 1 {
            return Err(why!("one kernel row: conv_s8_dsp's single-channel rows"));
        }
        let zp = zp_byte(p.input_zero_point).ok_or("input zero point outside i8")?;
        if p.dilation_w != 1 {
            return Err(why!("dilated along W"));
        }
        if p.kernel_w > 2 * ROW_MAX_PAIRS || p.kernel_h > MAX_KH {
            return Err(why!("kernel larger than 8x8"));
        }
        let head = p.pad_left % 2;
        let three_taps = p.kernel_h == 3 && p.kernel_w <= 3 && p.stride_w == 1;
        // Lanes a row must hold: each output's `2·pairs` lanes, and for
        // the three-tap rows the word after the last window's first word.
        let lanes = p
            .out_w
            .saturating_sub(1)
            .checked_mul(p.stride_w)
            .and_then(|l| l.checked_add(head + 2 * row_pairs(p.kernel_w)))
            .ok_or("row too long")?;
        let three = (p.out_w + head).div_ceil(2) + 1;
        let pitch = lanes.div_ceil(2).max(if three_taps { three } else { 0 });
        // Input rows for one output row (and `stride_h` more per extra one).
        let reach = (p.kernel_h - 1)
            .checked_mul(p.dilation_h)
            .ok_or("row too long")?;
        let rows_in = COL_WORDS / pitch.max(1);
        if rows_in <= reach {
            return Err(why!("widened rows longer than the row buffer"));
        }
        Ok(Plan {
            cout_g: p.out_channels / p.groups,
            in_plane: p.in_h.checked_mul(p.in_w).ok_or("input too large")?,
            out_plane: p.out_h.checked_mul(p.out_w).ok_or("output too large")?,
            pitch,
            cols: p.in_w.min((2 * pitch).saturating_sub(p.pad_left + head)),
            first_lane: p.pad_left + head,
            head,
            band: (rows_in - reach - 1) / p.stride_h + 1,
            three_taps,
            zp,
        })
    }

    /// Input rows that `rows >= 1` output rows read.
    fn rows_in(&self, p: &ConvParams, rows: usize) -> usize {
        (rows - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1
    }

    /// The input rows of output rows `oy..oy + rows`: band row `b` is
    /// input row `oy·stride_h − pad_top + b`; rows `lead..lead + inside`
    /// are inside the input, from input row `first`.
    fn band_rows(&self, p: &ConvParams, oy: usize, rows: usize) -> BandRows {
        let rows_in = self.rows_in(p, rows);
        let top = oy * p.stride_h;
        let lead = p.pad_top.saturating_sub(top).min(rows_in);
        let first = (top + lead).saturating_sub(p.pad_top);
        BandRows {
            rows,
            rows_in,
            lead,
            inside: p.in_h.saturating_sub(first).min(rows_in - lead),
            first,
        }
    }

    /// Writes 0 to the column lanes of the band rows outside the input.
    /// (Widened rows put the columns at lanes from `pad_left + head`; the
    /// other lanes stay 0: the buffer starts zeroed and only the column
    /// lanes are ever written.)
    fn zero_padding_rows(&self, band: &BandRows, buf: &mut [u32]) {
        let first_word = self.first_lane / 2;
        let outside = (0..band.lead).chain(band.lead + band.inside..band.rows_in);
        for b in outside {
            let at = b * self.pitch + first_word;
            for w in buf
                .get_mut(at..at + self.cols.div_ceil(2))
                .unwrap_or(&mut [])
            {
                *w = 0;
            }
        }
    }

    /// Widens the band rows inside the input of one channel (`plane`).
    fn widen_band(&self, p: &ConvParams, plane: &[i8], band: &BandRows, buf: &mut [u32]) {
        if band.inside > 0 && self.cols > 0 {
            let src = plane.get(band.first * p.in_w..).unwrap_or(&[]);
            let at = band.lead * self.pitch + self.first_lane / 2;
            let dst = buf.get_mut(at..).unwrap_or(&mut []);
            let shape = (band.inside, self.cols, p.in_w);
            dsp::widen_rows(src, shape, self.zp, dst, self.pitch);
        }
    }

    /// One channel's band: widens its input rows, then runs every output
    /// channel of its group over them.
    fn run_channel(
        &self,
        p: &ConvParams,
        io: &Operands<'_>,
        chan: usize,
        (oy, band): (usize, &BandRows),
        buf: &mut [u32],
        output: &mut [i8],
    ) {
        let plane = io.input.get(chan * self.in_plane..).unwrap_or(&[]);
        self.widen_band(p, plane, band, buf);
        let taps = p.kernel_h * p.kernel_w;
        for oc in chan * self.cout_g..(chan + 1) * self.cout_g {
            let (Some(&b), Some(&m), Some(&s)) =
                (io.bias.get(oc), io.multiplier.get(oc), io.shift.get(oc))
            else {
                return;
            };
            let q = Quant {
                bias: b,
                rq: Requant::new(m, i32::from(s)),
                zp: p.output_zero_point,
                act_min: p.act_min,
                act_max: p.act_max,
            };
            let w = io.weights.get(oc * taps..(oc + 1) * taps).unwrap_or(&[]);
            let at = oc * self.out_plane + oy * p.out_w;
            let out = output.get_mut(at..at + band.rows * p.out_w);
            self.run_band(p, w, &q, buf, out.unwrap_or(&mut []));
        }
    }

    /// One output channel's rows of a band (`out`, whole rows), from the
    /// widened band in `buf` and its `kH × kW` taps `w`.
    #[inline(never)]
    fn run_band(&self, p: &ConvParams, w: &[i8], q: &Quant, buf: &[u32], out: &mut [i8]) {
        let (kh, kw) = (p.kernel_h, p.kernel_w);
        let row_step = self.pitch * p.stride_h;
        let tap_step = self.pitch * p.dilation_h;
        let folded = q.rq.folded(q.zp).filter(|_| self.three_taps);
        if let Some(f) = folded {
            // Tap `c` of kernel row `r`; missing taps (kW < 3) are 0.
            let tap = |r: usize, c: usize| match c < kw {
                true => w.get(r * kw + c).copied().unwrap_or(0),
                false => 0,
            };
            let rows = dw3::Dw3Rows {
                out_w: p.out_w,
                head: self.head == 1,
                row_step,
                tap_step,
                rows: out.len() / p.out_w,
            };
            let a = [0, 1, 2].map(|r| pack(tap(r, 0), tap(r, 1)));
            let b = [0, 1, 2].map(|r| pack(tap(r, 1), tap(r, 2)));
            let mut band = dw3::Dw3Band::new(a, b, q.bias, f, rows);
            dw3::dw3_band(&mut band, buf, out);
            if (q.act_min, q.act_max) != (-128, 127) {
                dsp::clamp_bytes(out, q.act_min, q.act_max);
            }
            return;
        }
        let mut pairs = [[0u32; ROW_MAX_PAIRS]; MAX_KH];
        for (row_pairs, taps) in pairs.iter_mut().zip(w.chunks_exact(kw)) {
            for (pair, two) in row_pairs.iter_mut().zip(taps.chunks(2)) {
                *pair = pack(two[0], two.get(1).copied().unwrap_or(0));
            }
        }
        let Ok(lanes) = bytemuck::try_cast_slice::<u32, i16>(buf) else {
            return;
        };
        let pairs = pairs.get(..kh).unwrap_or(&[]);
        let window = (kh - 1) * tap_step + self.pitch;
        for (r, out_row) in out.chunks_exact_mut(p.out_w).enumerate() {
            let at = 2 * r * row_step + self.head;
            let win = lanes.get(at..at + 2 * window - self.head).unwrap_or(&[]);
            let (step, n) = (2 * tap_step, row_pairs(kw));
            pairs_row(win, (step, p.stride_w), (pairs, n), q, out_row);
        }
    }
}

/// Taps `lo`, `hi` as the `i16` lanes of a word, low first.
fn pack(lo: i8, hi: i8) -> u32 {
    u32::from(i16::from(lo) as u16) | (u32::from(i16::from(hi) as u16) << 16)
}

/// One output row on the general path: output `o` is `bias + Σ_ky
/// Σ_{j<n} SMLAD(pairs[ky][j], lanes ky·step + o·stride + 2j, +1)`. (One
/// loop for every pair count, for flash: this path is the less common.)
#[inline(never)]
fn pairs_row(
    lanes: &[i16],
    (step, stride): (usize, usize),
    (pairs, n): (&[[u32; ROW_MAX_PAIRS]], usize),
    q: &Quant,
    out: &mut [i8],
) {
    for (o, y) in out.iter_mut().enumerate() {
        let mut acc = q.bias;
        for (ky, row) in pairs.iter().enumerate() {
            let at = ky * step + o * stride;
            let win = lanes.get(at..at + 2 * n).unwrap_or(&[]);
            for (&pair, two) in row.iter().zip(win.chunks_exact(2)) {
                acc = dsp::smlad(pair, lane_pair(two, 0), acc);
            }
        }
        *y = q.rq.apply(acc, q.zp, q.act_min, q.act_max);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{conv_both, xorshift, ConvCase as Case};
    use super::*;
    use core::ops::RangeInclusive;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// `(in, kernel, stride, dilation, pad_begin, out)` along one axis.
    fn axis(
        ins: RangeInclusive<usize>,
        ks: RangeInclusive<usize>,
        strides: RangeInclusive<usize>,
        dilations: RangeInclusive<usize>,
    ) -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
        (ins, ks, strides, dilations, 0usize..=3, 0usize..=3).prop_filter_map(
            "window longer than padded input",
            |(i, k, s, d, pb, pe)| {
                crate::kernels::conv_out_len(i, k, s, d, pb, pe).map(|o| (i, k, s, d, pb, o))
            },
        )
    }

    /// Mostly 3×3 at stride 1 along W (the three-tap rows), the rest any
    /// kernel up to 9×9 (past the limit: the reference), strides,
    /// dilations (along W: the reference), padding, depth multipliers,
    /// requantization edges.
    fn case() -> impl Strategy<Value = Case> {
        let three = (
            axis(1..=12, 3..=3, 1..=3, 1..=2),
            axis(1..=40, 3..=3, 1..=1, 1..=1),
        );
        let other = (
            axis(1..=10, 1..=9, 1..=3, 1..=3),
            axis(1..=30, 1..=9, 1..=3, 1..=2),
        );
        let shapes = prop_oneof![3 => three, 2 => other];
        (shapes, 1usize..=5, 1usize..=3)
            .prop_map(|((h, w), chans, mult)| ConvParams {
                in_channels: chans,
                in_h: h.0,
                in_w: w.0,
                out_channels: chans * mult,
                out_h: h.5,
                out_w: w.5,
                kernel_h: h.1,
                kernel_w: w.1,
                stride_h: h.2,
                stride_w: w.2,
                dilation_h: h.3,
                dilation_w: w.3,
                pad_top: h.4,
                pad_left: w.4,
                groups: chans,
                input_zero_point: 0,
                output_zero_point: 0,
                act_min: -128,
                act_max: 127,
            })
            .prop_flat_map(|p| {
                let n_in = p.in_channels * p.in_h * p.in_w;
                let n_w = p.out_channels * p.kernel_h * p.kernel_w;
                let n_oc = p.out_channels;
                (
                    Just(p),
                    proptest::collection::vec(any::<i8>(), n_in),
                    proptest::collection::vec(any::<i8>(), n_w),
                    proptest::collection::vec(
                        prop_oneof![4 => -70_000i32..70_000, 1 => any::<i32>()],
                        n_oc,
                    ),
                    proptest::collection::vec(
                        prop_oneof![4 => (1i32 << 30)..=i32::MAX, 1 => any::<i32>()],
                        n_oc,
                    ),
                    proptest::collection::vec(prop_oneof![4 => -12i8..=-2, 1 => -31i8..=3], n_oc),
                    (-128i32..=127, -128i32..=127, -128i32..=127, -128i32..=127),
                )
            })
            .prop_map(|(p, x, w, b, m, s, zps)| Case::new(p, (x, w), (b, m, s), zps))
    }

    fn both(c: &Case) -> (Vec<i8>, Vec<i8>) {
        conv_both(c, depthwise_conv_s8_dsp)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        #[test]
        fn bit_exact_with_reference(c in case()) {
            let (want, got) = both(&c);
            prop_assert_eq!(want, got);
        }
    }

    /// The CMSIS-NN comparison's layer: 3×3 over 25×5, 64 channels.
    fn kws_layer() -> Case {
        let mut next = xorshift(0x0bad_cafe);
        let c = 64;
        let p = ConvParams {
            in_channels: c,
            in_h: 25,
            in_w: 5,
            out_channels: c,
            out_h: 25,
            out_w: 5,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            groups: c,
            input_zero_point: -128,
            output_zero_point: -128,
            act_min: -128,
            act_max: 127,
        };
        Case {
            input: (0..c * 125).map(|_| next() as i8).collect(),
            weights: (0..c * 9).map(|_| next() as i8).collect(),
            bias: (0..c).map(|_| (next() % 4000) as i32 - 2000).collect(),
            multiplier: (0..c).map(|_| (1 << 30) + (next() >> 2) as i32).collect(),
            shift: (0..c).map(|_| -9 - (next() % 3) as i8).collect(),
            p,
        }
    }

    #[test]
    fn kws_layer_matches_reference_with_and_without_clamp() {
        let mut c = kws_layer();
        assert!(Plan::new(&c.p).is_ok_and(|plan| plan.three_taps));
        let (want, got) = both(&c);
        assert_eq!(want, got);
        assert!(want.iter().any(|&y| y != want[0]), "{want:?}");
        // A fused ReLU (clamped after the three-tap rows), and a shift
        // outside the folded form (the pairs path for that channel).
        c.p.act_min = -100;
        c.shift[5] = 2;
        let (want, got) = both(&c);
        assert_eq!(want, got);
        assert!(want.contains(&-100));
    }

    #[test]
    fn takes_says_why_not() {
        let ok = kws_layer().p;
        assert_eq!(Plan::new(&ok).err(), None);
        let cases: [(ConvParams, &str); 6] = [
            (ConvParams { groups: 1, ..ok }, "not depthwise"),
            (
                ConvParams {
                    kernel_h: 1,
                    out_h: 27,
                    ..ok
                },
                "one kernel row",
            ),
            (
                ConvParams {
                    dilation_w: 2,
                    out_w: 3,
                    ..ok
                },
                "dilated",
            ),
            (
                ConvParams {
                    input_zero_point: 128,
                    ..ok
                },
                "zero point",
            ),
            (
                ConvParams {
                    in_w: 600,
                    out_w: 600,
                    ..ok
                },
                "row buffer",
            ),
            (ConvParams { stride_h: 0, ..ok }, "invalid"),
        ];
        for (p, why) in cases {
            assert!(
                Plan::new(&p).is_err_and(|e| e.contains(why)),
                "{why}: {p:?}"
            );
        }
        assert_eq!(
            depthwise_conv_dsp_takes(&ok).is_ok(),
            dsp::USES_DSP_INSTRUCTIONS
        );
    }
}
