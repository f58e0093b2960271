//! ConvTranspose: 1-D/2-D transposed convolution, grouped included.

use super::{nchw, Ctx, Io, Operand, Requant};
use crate::error::Error;
use crate::format::layout::params::conv_transpose as w;
use crate::kernels::{conv_transpose_s8, ConvTransposeParams};

/// A prepared ConvTranspose.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvTranspose<'a> {
    pub p: ConvTransposeParams,
    x: Operand<'a>,
    weights: &'a [i8],
    rq: Requant<'a>,
}

/// A prepared ConvTranspose with an int16 side, and the reference kernel of
/// its pairing.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvTransposeS16<'a> {
    op: ConvTranspose<'a>,
    kernel: super::KernelS16<ConvTransposeParams>,
}

/// One axis of the geometry, read from its parameter words.
struct Axis {
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    out: usize,
}

/// Inputs `[x, weights, bias, multiplier, shift]`; see `params::conv_transpose`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<ConvTranspose<'a>, Error> {
    let x = cx.input(0)?;
    let input_zero_point = cx.i8_operand(&x)?;
    let window = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    decode(cx, input_zero_point, window)
}

/// [`prepare`] with int16 sides: the input and the output each an int8
/// per-tensor tensor or an int16 activation (zero point 0); the weights
/// stay dense int8.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<ConvTransposeS16<'a>, Error> {
    use crate::kernels::conv_transpose_s16 as run;
    let (lanes, input_zero_point) = cx.lanes()?;
    let window = cx.act_range_of(w::ACT_MIN, w::ACT_MAX)?;
    let names = [
        "conv_transpose_s16",
        "conv_transpose_s8_s16",
        "conv_transpose_s16_s8",
    ];
    let kernel = super::KernelS16::reference(lanes, names, (run, run, run));
    Ok(ConvTransposeS16 {
        op: decode(cx, input_zero_point, window)?,
        kernel,
    })
}

/// The geometry and operands of either kind.
fn decode<'a>(
    cx: &Ctx<'_, 'a>,
    input_zero_point: i32,
    (act_min, act_max): (i32, i32),
) -> Result<ConvTranspose<'a>, Error> {
    cx.check_arity(5, w::COUNT)?;
    let x = cx.input(0)?;
    let (cin, in_h, in_w, is_2d) =
        nchw(&x).ok_or(cx.bad(why!("input must be [1, C, H, W] or [1, C, L]")))?;
    let wt = cx.input(1)?;
    let wd = wt.dims_usize();
    let rank_ok = wt.rank() == 4 || (wt.rank() == 3 && !is_2d);
    let weights = cx.weights(&wt, rank_ok)?;
    let (cout, cin_g) = (wd[0], wd[1]);
    let (kernel_h, kernel_w) = if wt.rank() == 4 {
        (wd[2], wd[3])
    } else {
        (1, wd[2])
    };
    let h = cx.transposed_axis(w::STRIDE_H, w::OUTPUT_PAD_H, kernel_h, in_h)?;
    let wa = cx.transposed_axis(w::STRIDE_W, w::OUTPUT_PAD_W, kernel_w, in_w)?;
    if !is_2d {
        cx.ensure(
            kernel_h == 1 && h.stride == 1 && h.dilation == 1 && h.pad_begin == 0 && h.out == 1,
            why!("1-D windows need kernel, stride and dilation 1 and no pads along H"),
        )?;
    }
    let groups = cx.size(w::GROUPS, 1, why!("groups must be at least 1"))?;
    cx.ensure(
        cin % groups == 0 && cout % groups == 0 && cin_g == cin / groups,
        why!("groups do not divide the channels, or weights have the wrong input channels"),
    )?;
    cx.ensure(
        nchw(&cx.output) == Some((cout, h.out, wa.out, is_2d)),
        why!("output shape does not match the window"),
    )?;
    let rq = cx.requant_vectors(cout)?;
    let p = ConvTransposeParams {
        in_channels: cin,
        in_h,
        in_w,
        out_channels: cout,
        out_h: h.out,
        out_w: wa.out,
        kernel_h,
        kernel_w,
        stride_h: h.stride,
        stride_w: wa.stride,
        dilation_h: h.dilation,
        dilation_w: wa.dilation,
        pad_top: h.pad_begin,
        pad_left: wa.pad_begin,
        groups,
        input_zero_point,
        output_zero_point: cx.out_zp,
        act_min,
        act_max,
    };
    Ok(ConvTranspose {
        p,
        x: Operand::of(&x),
        weights,
        rq,
    })
}

impl Ctx<'_, '_> {
    /// Reads one axis (`stride` is the H or W stride word; dilation and pads
    /// follow at +2, +4 and +6) and sizes its output:
    /// `(in − 1)·stride − pad_begin − pad_end + dilation·(kernel − 1) + output_pad + 1`.
    fn transposed_axis(
        &self,
        stride_word: usize,
        output_pad_word: usize,
        kernel: usize,
        in_len: usize,
    ) -> Result<Axis, Error> {
        let stride = self.size(stride_word, 1, why!("stride must be at least 1"))?;
        let dilation = self.size(stride_word + 2, 1, why!("dilation must be at least 1"))?;
        let pad_begin = self.size(stride_word + 4, 0, why!("negative pad"))?;
        let pad_end = self.size(stride_word + 6, 0, why!("negative pad"))?;
        let output_pad = self.size(output_pad_word, 0, why!("negative output padding"))?;
        let full = in_len
            .checked_sub(1)
            .and_then(|v| v.checked_mul(stride))
            .zip(kernel.checked_sub(1).and_then(|k| k.checked_mul(dilation)))
            .and_then(|(a, b)| a.checked_add(b)?.checked_add(output_pad)?.checked_add(1));
        let out = full
            .and_then(|f| f.checked_sub(pad_begin)?.checked_sub(pad_end))
            .filter(|&o| o >= 1)
            .ok_or(self.bad(why!("pads leave no output")))?;
        Ok(Axis {
            stride,
            dilation,
            pad_begin,
            out,
        })
    }
}

// `transposed_axis` reads dilation and pads by offset from the stride word.
const _: () = {
    assert!(w::DILATION_H == w::STRIDE_H + 2 && w::DILATION_W == w::STRIDE_W + 2);
    assert!(w::PAD_TOP == w::STRIDE_H + 4 && w::PAD_LEFT == w::STRIDE_W + 4);
    assert!(w::PAD_BOTTOM == w::STRIDE_H + 6 && w::PAD_RIGHT == w::STRIDE_W + 6);
};

impl ConvTranspose<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        let (w, rq) = (self.weights, &self.rq);
        conv_transpose_s8(&self.p, x, w, rq.bias, rq.multiplier, rq.shift, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        // Every input element meets every tap of its group's output channels.
        let p = &self.p;
        let per_input = (p.out_channels / p.groups.max(1)) * p.kernel_h * p.kernel_w;
        (p.in_channels * p.in_h * p.in_w) as u64 * per_input as u64
    }
}

#[cfg(feature = "int16-activations")]
impl ConvTransposeS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let ConvTranspose { p, x, weights, rq } = &self.op;
        self.kernel.run(p, x, weights, rq, io, super::Batch::ONE)
    }

    pub fn macs(&self) -> u64 {
        self.op.macs()
    }
}
