//! Resize: nearest or linear resampling of `[1, C, H, W]` or `[1, C, L]`
//! (ONNX Resize and Upsample).

use super::{nchw, Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::resize as w;
use crate::kernels::{
    resize_s8, CoordinateMode, NearestRounding, ResizeAxis, ResizeMode, ResizeParams,
};

/// A prepared Resize.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resize<'a> {
    p: ResizeParams,
    x: Operand<'a>,
}

/// Input `[x]`; see `params::resize`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Resize<'a>, Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    let y = &cx.output;
    cx.i8_operand(&x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    let shape = why!("input and output must be [1, C, H, W] or [1, C, L], same C and rank");
    let (c, in_h, in_w, is_2d) = nchw(&x).ok_or(cx.bad(shape))?;
    let (out_c, out_h, out_w, out_2d) = nchw(y).ok_or(cx.bad(shape))?;
    cx.ensure(c == out_c && is_2d == out_2d, shape)?;
    let mode = match (cx.word(w::MODE)?, cx.word(w::NEAREST)?) {
        (w::MODE_LINEAR, 0) => ResizeMode::Linear,
        (w::MODE_NEAREST, w::ROUND_PREFER_FLOOR) => {
            ResizeMode::Nearest(NearestRounding::RoundPreferFloor)
        }
        (w::MODE_NEAREST, w::ROUND_PREFER_CEIL) => {
            ResizeMode::Nearest(NearestRounding::RoundPreferCeil)
        }
        (w::MODE_NEAREST, w::FLOOR) => ResizeMode::Nearest(NearestRounding::Floor),
        (w::MODE_NEAREST, w::CEIL) => ResizeMode::Nearest(NearestRounding::Ceil),
        _ => return Err(cx.bad(why!("unknown resize mode or nearest rounding"))),
    };
    let coordinate = match cx.word(w::COORDINATE)? {
        w::HALF_PIXEL => CoordinateMode::HalfPixel,
        w::ASYMMETRIC => CoordinateMode::Asymmetric,
        w::ALIGN_CORNERS => CoordinateMode::AlignCorners,
        w::PYTORCH_HALF_PIXEL => CoordinateMode::PytorchHalfPixel,
        _ => return Err(cx.bad(why!("unknown coordinate transformation mode"))),
    };
    let h = cx.resize_axis(w::SCALE_NUM_H, in_h, out_h)?;
    let wa = cx.resize_axis(w::SCALE_NUM_W, in_w, out_w)?;
    if !is_2d {
        cx.ensure(
            h.scale_num == 1 && h.scale_den == 1,
            why!("1-D resize needs scale 1 along H"),
        )?;
    }
    let p = ResizeParams {
        channels: c,
        h,
        w: wa,
        mode,
        coordinate,
    };
    Ok(Resize {
        p,
        x: Operand::of(&x),
    })
}

impl Ctx<'_, '_> {
    /// One axis: the scale words `num_word` and `num_word + 1`.
    fn resize_axis(
        &self,
        num_word: usize,
        in_len: usize,
        out_len: usize,
    ) -> Result<ResizeAxis, Error> {
        let term = |i| {
            let v = self.word(i)?;
            u32::try_from(v)
                .ok()
                .filter(|t| (1..=crate::kernels::MAX_SCALE_TERM).contains(t))
                .ok_or(self.bad(why!("scale term outside 1..=MAX_SCALE_TERM")))
        };
        let len_ok = |n: usize| n <= crate::kernels::MAX_RESIZE_LEN;
        self.ensure(
            len_ok(in_len) && len_ok(out_len),
            why!("resize axis longer than MAX_RESIZE_LEN"),
        )?;
        Ok(ResizeAxis {
            in_len,
            out_len,
            scale_num: term(num_word)?,
            scale_den: term(num_word + 1)?,
        })
    }
}

const _: () = {
    assert!(w::SCALE_DEN_H == w::SCALE_NUM_H + 1 && w::SCALE_DEN_W == w::SCALE_NUM_W + 1);
    assert!(w::MAX_SCALE_TERM as u32 == crate::kernels::MAX_SCALE_TERM);
};

impl Resize<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        resize_s8(&self.p, x, io.output);
        Ok(())
    }
}
