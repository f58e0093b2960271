//! Conv: 1-D/2-D convolution, grouped and depthwise included.

#[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
use super::packed_blocks::{self as blocks, DECODE_BYTES};
use super::window::Window;
use super::{batched_nchw, Batch, Ctx, Io, Operand, Requant, Weights};
use crate::error::Error;
use crate::format::layout::params::conv as w;
use crate::format::TensorInfo;
#[cfg(feature = "pow2-weights")]
use crate::kernels;
use crate::kernels::select::{self, Chosen, ConvFn};
use crate::kernels::ConvParams;

/// The sparse conv kernels this target runs: on the Cortex-M DSP the
/// reference walk with the DSP requantization, else the reference.
#[cfg(feature = "sparse-weights")]
mod sparse {
    #[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp))))]
    pub(super) use crate::kernels::conv_sparse_s8;
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp)))]
    pub(super) use crate::kernels::cortex_m::conv_sparse_s8_dsp as conv_sparse_s8;
    #[cfg(all(
        target_arch = "arm",
        any(target_feature = "dsp", medq_dsp),
        feature = "pow2-weights"
    ))]
    pub(super) use crate::kernels::cortex_m::{
        conv_sparse_pow2_s8_dsp as conv_sparse_pow2_s8,
        conv_sparse_pow2x3_s8_dsp as conv_sparse_pow2x3_s8,
    };
    #[cfg(all(
        not(all(target_arch = "arm", any(target_feature = "dsp", medq_dsp))),
        feature = "pow2-weights"
    ))]
    pub(super) use crate::kernels::{conv_sparse_pow2_s8, conv_sparse_pow2x3_s8};

    /// `reference`, or `dsp` where the DSP kernels run.
    pub(super) const fn named(reference: &'static str, dsp: &'static str) -> &'static str {
        match crate::kernels::cortex_m::USES_DSP_INSTRUCTIONS {
            true => dsp,
            false => reference,
        }
    }
}

/// A prepared Conv.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conv<'a> {
    pub p: ConvParams,
    batch: Batch,
    x: Operand<'a>,
    weights: Weights<'a>,
    rq: Requant<'a>,
    pub kernel: Chosen<ConvFn>,
    /// Packed weights run decoded, in blocks, on the dense kernels (decided
    /// here once, not per invoke); never for dense weights.
    #[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
    in_blocks: bool,
}

/// A prepared Conv with int16 activations (dense int8 or int16 weights).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvS16<'a> {
    pub p: ConvParams,
    batch: Batch,
    x: Operand<'a>,
    rq: Requant<'a>,
    kernel: super::WeightedS16<'a, ConvParams>,
}

/// Inputs `[x, weights, bias, multiplier, shift]`; see `params::conv`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Conv<'a>, Error> {
    decode(
        cx,
        Ctx::i8_operand,
        Ctx::act_range,
        Ctx::weight_rows,
        |p, batch, x, weights, rq| {
            Ok(Conv {
                p,
                batch,
                x,
                #[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
                in_blocks: runs_in_blocks(&p, &weights),
                weights,
                rq,
                kernel: select::conv(&p),
            })
        },
    )
}

/// Whether packed `weights` run decoded in blocks
/// ([`blocks::conv_fits`]) rather than on their packed kernel.
#[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
fn runs_in_blocks(p: &ConvParams, weights: &Weights<'_>) -> bool {
    match weights {
        Weights::Dense(_) => false,
        #[cfg(feature = "sparse-weights")]
        Weights::Sparse(w) => blocks::conv_fits::<DECODE_BYTES, _>(p, w),
        #[cfg(feature = "pow2-weights")]
        Weights::Pow2(w) => blocks::conv_fits::<DECODE_BYTES, _>(p, w),
        #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
        Weights::SparsePow2(w) => blocks::conv_fits::<DECODE_BYTES, _>(p, w),
        #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
        Weights::SparsePow2x3(w) => blocks::conv_fits::<DECODE_BYTES, _>(p, w),
    }
}

/// [`prepare`] for int16 `x` and `y`: the same record, the activation
/// range within `i16`, dense int8 or int16 weights.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<ConvS16<'a>, Error> {
    let (lanes, zp) = cx.lanes()?;
    let operand = |_: &Ctx<'_, 'a>, _: &TensorInfo<'a>| Ok(zp);
    decode(
        cx,
        operand,
        Ctx::act_range_of,
        Ctx::weight_rows_s16,
        |p, batch, x, weights, rq| {
            Ok(ConvS16 {
                p,
                batch,
                x,
                rq,
                kernel: super::WeightedS16::new(
                    weights,
                    lanes,
                    &p,
                    (select::conv_s16, select::conv_s8_s16, select::conv_s16_s8),
                    (
                        select::conv_s16_w16,
                        select::conv_s8_s16_w16,
                        select::conv_s16_s8_w16,
                    ),
                ),
            })
        },
    )
}

/// Checks a Conv record and decodes it, `x` checked by `operand` (which
/// returns its zero point), the activation range by `act` and the weights
/// read by `read_weights`.
/// `build` makes the prepared op of the decoded parts.
fn decode<'a, 'c, T, Wt>(
    cx: &Ctx<'c, 'a>,
    operand: impl Fn(&Ctx<'c, 'a>, &TensorInfo<'a>) -> Result<i32, Error>,
    act: impl Fn(&Ctx<'c, 'a>, usize, usize) -> Result<(i32, i32), Error>,
    read_weights: impl Fn(&Ctx<'c, 'a>, &TensorInfo<'a>, bool) -> Result<Wt, Error>,
    build: impl FnOnce(ConvParams, Batch, Operand<'a>, Wt, Requant<'a>) -> Result<T, Error>,
) -> Result<T, Error> {
    cx.check_arity(5, w::COUNT)?;
    let x = cx.input(0)?;
    let input_zero_point = operand(cx, &x)?;
    let (batch, cin, in_h, in_w, is_2d) =
        batched_nchw(&x).ok_or(cx.bad(why!("input must be [N, C, H, W] or [N, C, L]")))?;
    let wt = cx.input(1)?;
    let wd = wt.dims_usize();
    let rank_ok = wt.rank() == 4 || (wt.rank() == 3 && !is_2d);
    let weights = read_weights(cx, &wt, rank_ok)?;
    let (cout, cin_g) = (wd[0], wd[1]);
    let (kernel_h, kernel_w) = if wt.rank() == 4 {
        (wd[2], wd[3])
    } else {
        (1, wd[2])
    };
    let Window {
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top,
        pad_left,
        out_h,
        out_w,
    } = cx.window(w::STRIDE_H, (kernel_h, kernel_w), (in_h, in_w), is_2d)?;
    let groups = cx.size(w::GROUPS, 1, why!("groups must be at least 1"))?;
    let (act_min, act_max) = act(cx, w::ACT_MIN, w::ACT_MAX)?;
    cx.ensure(
        cin % groups == 0 && cout % groups == 0 && cin_g == cin / groups,
        why!("groups do not divide the channels, or weights have the wrong input channels"),
    )?;
    cx.ensure(
        batched_nchw(&cx.output) == Some((batch, cout, out_h, out_w, is_2d)),
        why!("output shape does not match the window"),
    )?;
    let rq = cx.requant_vectors(cout)?;
    let p = ConvParams {
        in_channels: cin,
        in_h,
        in_w,
        out_channels: cout,
        out_h,
        out_w,
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top,
        pad_left,
        groups,
        input_zero_point,
        output_zero_point: cx.out_zp,
        act_min,
        act_max,
    };
    build(p, Batch(batch), Operand::of(&x), weights, rq)
}

impl Conv<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        let (p, rq) = (&self.p, &self.rq);
        #[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
        let spare = &mut *io.spare;
        self.batch
            .each(x, io.output, |x, output| match &self.weights {
                Weights::Dense(w) => {
                    (self.kernel.run)(p, x, w, rq.bias, rq.multiplier, rq.shift, output)
                }
                #[cfg(feature = "sparse-weights")]
                Weights::Sparse(w) => {
                    if !(self.in_blocks
                        && blocks::conv::<DECODE_BYTES, _>(p, x, w, rq.vectors(), output, spare))
                    {
                        sparse::conv_sparse_s8(p, x, w, rq.bias, rq.multiplier, rq.shift, output)
                    }
                }
                #[cfg(feature = "pow2-weights")]
                Weights::Pow2(w) => {
                    if !(self.in_blocks
                        && blocks::conv::<DECODE_BYTES, _>(p, x, w, rq.vectors(), output, spare))
                    {
                        kernels::conv_pow2_s8(p, x, w, rq.bias, rq.multiplier, rq.shift, output)
                    }
                }
                #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
                Weights::SparsePow2(w) => {
                    if !(self.in_blocks
                        && blocks::conv::<DECODE_BYTES, _>(p, x, w, rq.vectors(), output, spare))
                    {
                        let (b, m, s) = rq.vectors();
                        sparse::conv_sparse_pow2_s8(p, x, w, b, m, s, output)
                    }
                }
                #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
                Weights::SparsePow2x3(w) => {
                    if !(self.in_blocks
                        && blocks::conv::<DECODE_BYTES, _>(p, x, w, rq.vectors(), output, spare))
                    {
                        let (b, m, s) = rq.vectors();
                        sparse::conv_sparse_pow2x3_s8(p, x, w, b, m, s, output)
                    }
                }
            });
        Ok(())
    }

    /// The kernel that runs: packed weights in decoded blocks on the dense
    /// kernels when a row fits the buffer, else the packed kernel.
    pub fn kernel_name(&self) -> &'static str {
        match &self.weights {
            Weights::Dense(_) => self.kernel.name,
            #[cfg(feature = "sparse-weights")]
            Weights::Sparse(_) => match self.in_blocks {
                true => "conv_sparse_blocks",
                false => sparse::named("conv_sparse_s8", "conv_sparse_s8_dsp"),
            },
            #[cfg(feature = "pow2-weights")]
            Weights::Pow2(_) => match self.in_blocks {
                true => "conv_pow2_blocks",
                false => "conv_pow2_s8",
            },
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2(_) => match self.in_blocks {
                true => "conv_sparse_pow2_blocks",
                false => sparse::named("conv_sparse_pow2_s8", "conv_sparse_pow2_s8_dsp"),
            },
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2x3(_) => match self.in_blocks {
                true => "conv_sparse_pow2x3_blocks",
                false => sparse::named("conv_sparse_pow2x3_s8", "conv_sparse_pow2x3_s8_dsp"),
            },
        }
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p, self.batch)
    }
}

fn macs(p: &ConvParams, batch: Batch) -> u64 {
    let per_output = (p.in_channels / p.groups.max(1)) * p.kernel_h * p.kernel_w;
    (batch.0 * p.out_channels * p.out_h * p.out_w) as u64 * per_output as u64
}

#[cfg(feature = "int16-activations")]
impl ConvS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    /// The optimized kernels considered for this op, with their answers.
    pub fn candidates(&self, f: impl FnMut(&'static str, Result<(), &'static str>)) {
        let lists = (select::CONV_S16, select::CONV_S8_S16, select::CONV_S16_S8);
        let lists_w16 = (
            select::CONV_S16_W16,
            select::CONV_S8_S16_W16,
            select::CONV_S16_S8_W16,
        );
        self.kernel.explain(&self.p, (lists, lists_w16), f)
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        self.kernel.run(&self.p, &self.x, &self.rq, io, self.batch)
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p, self.batch)
    }
}

impl<'a> Ctx<'_, 'a> {
    /// Bias, multiplier and shift vectors (inputs 2..5) of `n` channels,
    /// the requantization operands of Conv and FullyConnected.
    pub(super) fn requant_vectors(&self, n: usize) -> Result<Requant<'a>, Error> {
        let bias = self.i32_vector(&self.input(2)?, n)?;
        let multiplier = self.i32_vector(&self.input(3)?, n)?;
        let shift = self.shift_vector(&self.input(4)?, n)?;
        self.ensure(
            multiplier.iter().all(|&m| m >= 0),
            why!("negative multiplier"),
        )?;
        Ok(Requant {
            bias,
            multiplier,
            shift,
        })
    }
}
