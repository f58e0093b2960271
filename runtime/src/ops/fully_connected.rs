//! FullyConnected: `y = x · Wᵀ + b` over the last axis (Gemm, MatMul with
//! constant weights).

#[cfg(feature = "pow2-weights")]
use super::packed_blocks::{self as blocks, DECODE_BYTES};
use super::{Ctx, Io, Operand, Requant, Weights};
use crate::error::Error;
use crate::format::layout::params::fully_connected as w;
use crate::format::TensorInfo;
#[cfg(any(feature = "sparse-weights", feature = "pow2-weights"))]
use crate::kernels;
use crate::kernels::select::{self, Chosen, FullyConnectedFn};
use crate::kernels::FullyConnectedParams;

/// A prepared FullyConnected.
#[derive(Clone, Copy, Debug)]
pub(super) struct FullyConnected<'a> {
    pub p: FullyConnectedParams,
    x: Operand<'a>,
    weights: Weights<'a>,
    rq: Requant<'a>,
    pub kernel: Chosen<FullyConnectedFn>,
    /// Power-of-two weights run decoded, in blocks, on the dense kernels
    /// (decided here once, not per invoke).
    #[cfg(feature = "pow2-weights")]
    in_blocks: bool,
}

/// A prepared FullyConnected with int16 activations (dense int8 or int16 weights).
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct FullyConnectedS16<'a> {
    pub p: FullyConnectedParams,
    x: Operand<'a>,
    rq: Requant<'a>,
    kernel: super::WeightedS16<'a, FullyConnectedParams>,
}

/// Inputs `[x, weights [N, K], bias, multiplier, shift]`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<FullyConnected<'a>, Error> {
    decode(
        cx,
        Ctx::i8_operand,
        Ctx::act_range,
        Ctx::weight_rows,
        |p, x, weights, rq| {
            Ok(FullyConnected {
                p,
                x,
                #[cfg(feature = "pow2-weights")]
                in_blocks: match &weights {
                    Weights::Pow2(w) => blocks::fully_connected_fits::<DECODE_BYTES, _>(&p, w),
                    _ => false,
                },
                weights,
                rq,
                kernel: select::fully_connected(&p),
            })
        },
    )
}

/// [`prepare`] for int16 `x` and `y`: the same record, the activation
/// range within `i16`, dense int8 or int16 weights.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<FullyConnectedS16<'a>, Error> {
    let (lanes, zp) = cx.lanes()?;
    let operand = |_: &Ctx<'_, 'a>, _: &TensorInfo<'a>| Ok(zp);
    decode(
        cx,
        operand,
        Ctx::act_range_of,
        Ctx::weight_rows_s16,
        |p, x, weights, rq| {
            Ok(FullyConnectedS16 {
                p,
                x,
                rq,
                kernel: super::WeightedS16::new(
                    weights,
                    lanes,
                    &p,
                    (
                        select::fully_connected_s16,
                        select::fully_connected_s8_s16,
                        select::fully_connected_s16_s8,
                    ),
                    (
                        select::fully_connected_s16_w16,
                        select::fully_connected_s8_s16_w16,
                        select::fully_connected_s16_s8_w16,
                    ),
                ),
            })
        },
    )
}

/// Checks a FullyConnected record and decodes it, `x` checked by `operand`
/// (which returns its zero point), the activation range by `act` and the
/// weights read by `read_weights`.
/// `build` makes the prepared op of the decoded parts.
fn decode<'a, 'c, T, Wt>(
    cx: &Ctx<'c, 'a>,
    operand: impl Fn(&Ctx<'c, 'a>, &TensorInfo<'a>) -> Result<i32, Error>,
    act: impl Fn(&Ctx<'c, 'a>, usize, usize) -> Result<(i32, i32), Error>,
    read_weights: impl Fn(&Ctx<'c, 'a>, &TensorInfo<'a>, bool) -> Result<Wt, Error>,
    build: impl FnOnce(FullyConnectedParams, Operand<'a>, Wt, Requant<'a>) -> Result<T, Error>,
) -> Result<T, Error> {
    cx.check_arity(5, w::COUNT)?;
    let x = cx.input(0)?;
    let input_zero_point = operand(cx, &x)?;
    let (&k, lead) = x
        .dims()
        .split_last()
        .ok_or(cx.bad(why!("input must have rank at least 1")))?;
    let wt = cx.input(1)?;
    let weights = read_weights(cx, &wt, wt.rank() == 2)?;
    let (n, wk) = (wt.dims_usize()[0], wt.dims_usize()[1]);
    cx.ensure(
        wk == k as usize,
        why!("weights [N, K] do not match the input's last dim"),
    )?;
    let shape_ok = cx
        .output
        .dims()
        .split_last()
        .is_some_and(|(&yn, ylead)| yn as usize == n && ylead == lead);
    cx.ensure(
        shape_ok,
        why!("output must be the input shape with the last dim N"),
    )?;
    let (act_min, act_max) = act(cx, w::ACT_MIN, w::ACT_MAX)?;
    let rq = cx.requant_vectors(n)?;
    let p = FullyConnectedParams {
        rows: x.numel() / (k as usize).max(1),
        in_features: k as usize,
        out_features: n,
        input_zero_point,
        output_zero_point: cx.out_zp,
        act_min,
        act_max,
    };
    build(p, Operand::of(&x), weights, rq)
}

#[cfg(feature = "int16-activations")]
impl FullyConnectedS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    /// The optimized kernels considered for this op, with their answers.
    pub fn candidates(&self, f: impl FnMut(&'static str, Result<(), &'static str>)) {
        let lists = (
            select::FULLY_CONNECTED_S16,
            select::FULLY_CONNECTED_S8_S16,
            select::FULLY_CONNECTED_S16_S8,
        );
        let lists_w16 = (
            select::FULLY_CONNECTED_S16_W16,
            select::FULLY_CONNECTED_S8_S16_W16,
            select::FULLY_CONNECTED_S16_S8_W16,
        );
        self.kernel.explain(&self.p, (lists, lists_w16), f)
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        self.kernel
            .run(&self.p, &self.x, &self.rq, io, super::Batch::ONE)
    }

    pub fn macs(&self) -> u64 {
        let p = &self.p;
        (p.rows * p.in_features * p.out_features) as u64
    }
}

impl FullyConnected<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        let (p, rq) = (&self.p, &self.rq);
        match &self.weights {
            Weights::Dense(w) => {
                (self.kernel.run)(p, x, w, rq.bias, rq.multiplier, rq.shift, io.output)
            }
            // Not in decoded blocks, unlike a sparse conv: each weight of
            // a FullyConnected is used once, so the sparse kernel reads each
            // non-zero once, as decoding would, and then adds its term where
            // decoding would store it for a dense kernel to load again.
            #[cfg(feature = "sparse-weights")]
            Weights::Sparse(w) => kernels::fully_connected_sparse_s8(
                p,
                x,
                w,
                rq.bias,
                rq.multiplier,
                rq.shift,
                io.output,
            ),
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2(w) => kernels::fully_connected_sparse_pow2_s8(
                p,
                x,
                w,
                rq.bias,
                rq.multiplier,
                rq.shift,
                io.output,
            ),
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2x3(w) => kernels::fully_connected_sparse_pow2x3_s8(
                p,
                x,
                w,
                rq.bias,
                rq.multiplier,
                rq.shift,
                io.output,
            ),
            #[cfg(feature = "pow2-weights")]
            Weights::Pow2(w) => {
                if !(self.in_blocks
                    && blocks::fully_connected::<DECODE_BYTES, _>(p, x, w, rq.vectors(), io.output))
                {
                    kernels::fully_connected_pow2_s8(
                        p,
                        x,
                        w,
                        rq.bias,
                        rq.multiplier,
                        rq.shift,
                        io.output,
                    )
                }
            }
        }
        Ok(())
    }

    /// The kernel that runs: packed weights in decoded blocks on the dense
    /// kernels (one input row, a weight row that fits), else the packed
    /// kernel.
    pub fn kernel_name(&self) -> &'static str {
        match &self.weights {
            Weights::Dense(_) => self.kernel.name,
            #[cfg(feature = "sparse-weights")]
            Weights::Sparse(_) => "fully_connected_sparse_s8",
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2(_) => "fully_connected_sparse_pow2_s8",
            #[cfg(all(feature = "sparse-weights", feature = "pow2-weights"))]
            Weights::SparsePow2x3(_) => "fully_connected_sparse_pow2x3_s8",
            #[cfg(feature = "pow2-weights")]
            Weights::Pow2(_) => match self.in_blocks {
                true => "fully_connected_pow2_blocks",
                false => "fully_connected_pow2_s8",
            },
        }
    }

    pub fn macs(&self) -> u64 {
        let p = &self.p;
        (p.rows * p.in_features * p.out_features) as u64
    }
}
