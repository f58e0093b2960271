//! Resize: nearest or linear resampling, 1-D/2-D, in exact integer
//! coordinates.

use crate::kernels::{CoordinateMode, NearestRounding, ResizeAxis, ResizeMode, ResizeParams};

/// Longest input or output axis [`resize_s8`] takes (keeps every
/// coordinate product inside `i64`).
pub const MAX_RESIZE_LEN: usize = 1 << 24;
/// Largest scale numerator or denominator (`params::resize::MAX_SCALE_TERM`).
pub const MAX_SCALE_TERM: u32 = 1 << 20;

/// Resamples `input` `[channels, in_h, in_w]` to `output` `[channels,
/// out_h, out_w]`, same scale and zero point.
///
/// Each output position `o` samples its axis at the exact rational
/// coordinate `c = num / den` of [`CoordinateMode`] (no floating point).
/// Nearest: sample `round(c)` per [`NearestRounding`], clamped to the
/// input. Linear: with `c` clamped to `[0, in − 1]`, `i = ⌊c⌋` and
/// `r = c·den − i·den`, the samples `i` and `i + 1` weigh `den − r` and `r`;
/// in 2-D the weights multiply, and
/// `y = ⌊(Σ weight · x + Q/2) / Q⌋` with `Q = den_h · den_w` (round half up,
/// the requantization rule's tie direction).
///
/// Returns early, leaving `output` unchanged, unless every length is in
/// `1..=MAX_RESIZE_LEN`, every scale term in `1..=MAX_SCALE_TERM`, and the
/// slices have the lengths above.
pub fn resize_s8(p: &ResizeParams, input: &[i8], output: &mut [i8]) {
    if !axis_ok(&p.h) || !axis_ok(&p.w) {
        return;
    }
    let in_plane = p.h.in_len * p.w.in_len;
    let out_plane = p.h.out_len * p.w.out_len;
    let lens = (
        p.channels.checked_mul(in_plane),
        p.channels.checked_mul(out_plane),
    );
    if lens != (Some(input.len()), Some(output.len())) || output.is_empty() {
        return;
    }
    let planes = input
        .chunks_exact(in_plane)
        .zip(output.chunks_exact_mut(out_plane));
    for (x, y) in planes {
        for (oy, y_row) in y.chunks_exact_mut(p.w.out_len).enumerate() {
            let cy = coordinate(&p.h, p.coordinate, oy);
            for (ox, out) in y_row.iter_mut().enumerate() {
                let cx = coordinate(&p.w, p.coordinate, ox);
                let at =
                    |iy: usize, ix: usize| x.get(iy * p.w.in_len + ix).map_or(0, |&v| i64::from(v));
                *out = match p.mode {
                    ResizeMode::Nearest(r) => {
                        at(nearest(cy, r, p.h.in_len), nearest(cx, r, p.w.in_len)) as i8
                    }
                    ResizeMode::Linear => {
                        let (y0, y1, ry) = linear(cy, p.h.in_len);
                        let (x0, x1, rx) = linear(cx, p.w.in_len);
                        let (wy, wx) = ([cy.den - ry, ry], [cx.den - rx, rx]);
                        let acc = wy[0] * (wx[0] * at(y0, x0) + wx[1] * at(y0, x1))
                            + wy[1] * (wx[0] * at(y1, x0) + wx[1] * at(y1, x1));
                        let q = cy.den * cx.den;
                        (acc + q / 2).div_euclid(q).clamp(-128, 127) as i8
                    }
                };
            }
        }
    }
}

fn axis_ok(a: &ResizeAxis) -> bool {
    let len_ok = |n: usize| (1..=MAX_RESIZE_LEN).contains(&n);
    let term_ok = |t: u32| (1..=MAX_SCALE_TERM).contains(&t);
    len_ok(a.in_len) && len_ok(a.out_len) && term_ok(a.scale_num) && term_ok(a.scale_den)
}

/// A source coordinate `num / den` along one axis, `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Coord {
    num: i64,
    den: i64,
}

/// Where output position `o` samples axis `a` (ONNX
/// `coordinate_transformation_mode`, with `scale = scale_num / scale_den`).
/// Lengths and scale terms are bounded by [`axis_ok`], so nothing overflows.
fn coordinate(a: &ResizeAxis, mode: CoordinateMode, o: usize) -> Coord {
    let (n, d, o) = (i64::from(a.scale_num), i64::from(a.scale_den), o as i64);
    // (o + ½)·d/n − ½ = ((2o + 1)·d − n) / 2n
    let half_pixel = Coord {
        num: (2 * o + 1) * d - n,
        den: 2 * n,
    };
    let origin = Coord { num: 0, den: 1 };
    match mode {
        CoordinateMode::Asymmetric => Coord { num: o * d, den: n },
        CoordinateMode::HalfPixel => half_pixel,
        CoordinateMode::PytorchHalfPixel if a.out_len == 1 => origin,
        CoordinateMode::PytorchHalfPixel => half_pixel,
        CoordinateMode::AlignCorners if a.out_len == 1 => origin,
        CoordinateMode::AlignCorners => Coord {
            num: o * (a.in_len as i64 - 1),
            den: a.out_len as i64 - 1,
        },
    }
}

/// The nearest sample to `c`, rounded as `r` says, clamped to the input.
fn nearest(c: Coord, r: NearestRounding, in_len: usize) -> usize {
    let (floor, rem) = (c.num.div_euclid(c.den), c.num.rem_euclid(c.den));
    let up = match r {
        NearestRounding::RoundPreferFloor => 2 * rem > c.den,
        NearestRounding::RoundPreferCeil => 2 * rem >= c.den,
        NearestRounding::Floor => false,
        NearestRounding::Ceil => rem > 0,
    };
    (floor + i64::from(up)).clamp(0, in_len as i64 - 1) as usize
}

/// The samples around `c` clamped to `[0, in − 1]`, and the weight of the
/// second in units of `c.den` (0 at and beyond the edges).
fn linear(c: Coord, in_len: usize) -> (usize, usize, i64) {
    let last = in_len as i64 - 1;
    let (floor, rem) = (c.num.div_euclid(c.den), c.num.rem_euclid(c.den));
    if floor < 0 {
        (0, 0, 0)
    } else if floor >= last {
        (last as usize, last as usize, 0)
    } else {
        (floor as usize, floor as usize + 1, rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_1d(
        in_len: usize,
        out_len: usize,
        mode: ResizeMode,
        c: CoordinateMode,
    ) -> ResizeParams {
        ResizeParams {
            channels: 1,
            h: ResizeAxis {
                in_len: 1,
                out_len: 1,
                scale_num: 1,
                scale_den: 1,
            },
            w: ResizeAxis {
                in_len,
                out_len,
                scale_num: out_len as u32,
                scale_den: in_len as u32,
            },
            mode,
            coordinate: c,
        }
    }

    #[test]
    fn linear_half_pixel_doubling() {
        // x = [0, 40], scale 2: coordinates (o + ½)/2 − ½ = −¼, ¼, ¾, 5/4.
        // −¼ clamps to 0 → 0; ¼ → 10; ¾ → 30; 5/4 clamps to 1 → 40.
        let p = params_1d(2, 4, ResizeMode::Linear, CoordinateMode::HalfPixel);
        let mut y = [0i8; 4];
        resize_s8(&p, &[0, 40], &mut y);
        assert_eq!(y, [0, 10, 30, 40]);
    }

    #[test]
    fn linear_rounds_half_up() {
        // x = [0, 1, −2], align corners 3 → 5: coordinates 0, ½, 1, 3/2, 2.
        // ½ → 0.5 → 1; 3/2 → −0.5 → 0 (ties go up, also below zero).
        let p = params_1d(3, 5, ResizeMode::Linear, CoordinateMode::AlignCorners);
        let mut y = [9i8; 5];
        resize_s8(&p, &[0, 1, -2], &mut y);
        assert_eq!(y, [0, 1, 1, 0, -2]);
    }

    #[test]
    fn nearest_modes_on_ties() {
        // Asymmetric, scale 2/3 (3 → 2): coordinates 0 and 3/2.
        let x = [1, 2, 3];
        let run = |r| {
            let mut p = params_1d(3, 2, ResizeMode::Nearest(r), CoordinateMode::Asymmetric);
            p.w.scale_num = 2;
            p.w.scale_den = 3;
            let mut y = [0i8; 2];
            resize_s8(&p, &x, &mut y);
            y
        };
        assert_eq!(run(NearestRounding::RoundPreferFloor), [1, 2]);
        assert_eq!(run(NearestRounding::RoundPreferCeil), [1, 3]);
        assert_eq!(run(NearestRounding::Floor), [1, 2]);
        assert_eq!(run(NearestRounding::Ceil), [1, 3]);
    }

    #[test]
    fn bad_geometry_writes_nothing() {
        let mut p = params_1d(2, 4, ResizeMode::Linear, CoordinateMode::HalfPixel);
        p.w.scale_den = 0;
        let mut y = [9i8; 4];
        resize_s8(&p, &[0, 40], &mut y);
        assert_eq!(y, [9; 4]);
    }
}
