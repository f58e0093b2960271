//! Per-op validation, which is also the mapping from an op record to its
//! kernel call: [`prepare`] checks an op against its kernel's contract and
//! returns the kernel parameters. The validator runs it on every op at parse
//! time and the interpreter runs it again on every invoke, so the two cannot
//! disagree about what a record means.
#![forbid(unsafe_code)]

use super::layout::{params, DType, OpCode, Storage};
use super::model::{Model, OpInfo, Quant, TensorInfo};
use crate::error::Error;
use crate::kernels::{
    conv_out_len, AddParams, Broadcast4, ConvParams, FullyConnectedParams, GruParams, LstmParams,
    MulParams, PadParams, PoolParams, RecurrentParams, RecurrentWeights, SoftmaxParams, MAX_HIDDEN,
    TABLE_LEN,
};
use crate::numerics::{MAX_SHIFT, MIN_SHIFT};

/// The output quantization Softmax must declare: its kernel's fixed format.
pub const SOFTMAX_OUTPUT_SCALE: f32 = 1.0 / 256.0;
pub const SOFTMAX_OUTPUT_ZERO_POINT: i32 = -128;
/// The Add kernel's largest headroom shift: `(x − z) << 20` fits `i32`.
pub const MAX_ADD_LEFT_SHIFT: i32 = 20;
/// The AvgPool kernel's largest window area (its `i32` sum cannot overflow).
pub const MAX_AVG_POOL_WINDOW: usize = 1 << 23;

/// A validated op, ready for its kernel.
pub(crate) struct Prepared<'a> {
    pub kernel: Kernel<'a>,
    pub inputs: &'a [u16],
    pub output: TensorInfo<'a>,
}

/// Kernel parameters and constant operands, per op. Activation operands are
/// `Prepared::inputs` (resolved against the arena by the interpreter).
pub(crate) enum Kernel<'a> {
    Conv {
        p: ConvParams,
        requant: Requant<'a>,
    },
    FullyConnected {
        p: FullyConnectedParams,
        requant: Requant<'a>,
    },
    Add {
        p: AddParams,
        bc: Broadcast4,
    },
    Mul {
        p: MulParams,
        bc: Broadcast4,
    },
    Lut {
        table: &'a [i8; 256],
    },
    MaxPool(PoolParams),
    AvgPool(PoolParams),
    Softmax {
        p: SoftmaxParams,
        table: &'a [i32; 256],
    },
    /// Per input `i`: `ConcatPart` from the input's shape and the
    /// `(multiplier, shift)` words `1 + 2i`, `2 + 2i`.
    Concat {
        axis: usize,
        outer: usize,
        inner: usize,
        out_axis_len: usize,
        params: &'a [i32],
    },
    Pad(PadParams),
    Reshape,
    Lstm {
        p: LstmParams,
        wts: RecurrentWeights<'a>,
    },
    Gru {
        p: GruParams,
        wts: RecurrentWeights<'a>,
    },
}

/// Weights and per-output-channel requantization of Conv and FullyConnected.
pub(crate) struct Requant<'a> {
    pub weights: &'a [i8],
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i8],
}

struct Ctx<'m, 'a> {
    model: &'m Model<'a>,
    op: &'m OpInfo<'a>,
}

impl<'a> Ctx<'_, 'a> {
    fn bad(&self, reason: &'static str) -> Error {
        Error::BadOp {
            index: self.op.index,
            reason,
        }
    }

    fn ensure(&self, cond: bool, reason: &'static str) -> Result<(), Error> {
        if cond {
            Ok(())
        } else {
            Err(self.bad(reason))
        }
    }

    fn input(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        let t = self
            .op
            .inputs
            .get(i)
            .ok_or(self.bad(why!("missing input")))?;
        self.model.tensor(usize::from(*t))
    }

    fn word(&self, i: usize) -> Result<i32, Error> {
        self.op
            .params
            .get(i)
            .copied()
            .ok_or(self.bad(why!("missing parameter")))
    }

    /// A parameter word that is a size or count, at least `min`.
    fn size(&self, i: usize, min: usize, reason: &'static str) -> Result<usize, Error> {
        usize::try_from(self.word(i)?)
            .ok()
            .filter(|&v| v >= min)
            .ok_or(self.bad(reason))
    }

    /// `-128 <= act_min <= act_max <= 127`, from two parameter words.
    fn act_range(&self, min_word: usize, max_word: usize) -> Result<(i32, i32), Error> {
        let (lo, hi) = (self.word(min_word)?, self.word(max_word)?);
        self.ensure(
            -128 <= lo && lo <= hi && hi <= 127,
            why!("activation range not within [-128, 127]"),
        )?;
        Ok((lo, hi))
    }

    /// A requantization pair: multiplier ≥ 0, shift in `MIN_SHIFT..=MAX_SHIFT`.
    fn requant_pair(&self, m_word: usize, s_word: usize) -> Result<(i32, i32), Error> {
        let (m, s) = (self.word(m_word)?, self.word(s_word)?);
        self.ensure(m >= 0, why!("negative multiplier"))?;
        self.ensure(
            (MIN_SHIFT..=MAX_SHIFT).contains(&s),
            why!("shift out of range"),
        )?;
        Ok((m, s))
    }

    /// An int8 per-tensor quantized operand (activation or constant):
    /// returns its zero point.
    fn i8_operand(&self, t: &TensorInfo<'a>) -> Result<i32, Error> {
        match (t.dtype, t.quant) {
            (DType::I8, Quant::PerTensor { zero_point, .. }) => Ok(zero_point),
            _ => Err(self.bad(why!("operand is not a per-tensor quantized i8 tensor"))),
        }
    }

    fn check_arity(&self, n_inputs: usize, n_params: usize) -> Result<(), Error> {
        self.ensure(
            self.op.inputs.len() == n_inputs,
            why!("wrong number of inputs"),
        )?;
        self.ensure(
            self.op.params.len() == n_params,
            why!("wrong number of parameters"),
        )
    }

    /// Symmetric int8 constant weights; per-channel only along axis 0.
    fn weights(&self, t: &TensorInfo<'a>, rank_ok: bool) -> Result<&'a [i8], Error> {
        self.ensure(rank_ok, why!("weights have the wrong rank"))?;
        let symmetric = match t.quant {
            Quant::None => true,
            Quant::PerTensor { zero_point, .. } => zero_point == 0,
            Quant::PerChannel { axis, .. } => axis == 0,
        };
        self.ensure(
            symmetric,
            why!("weights must be symmetric (zero point 0, channels on axis 0)"),
        )?;
        t.data_i8()
            .ok_or(self.bad(why!("weights must be an i8 constant")))
    }

    /// An `i32` constant of shape `[n]`.
    fn i32_vector(&self, t: &TensorInfo<'a>, n: usize) -> Result<&'a [i32], Error> {
        let data = t
            .data_i32()
            .ok_or(self.bad(why!("expected an i32 constant")))?;
        self.ensure(
            t.rank() == 1 && data.len() == n,
            why!("i32 constant has the wrong shape"),
        )?;
        Ok(data)
    }

    /// A per-channel shift vector: an `i8` constant of shape `[n]`,
    /// quantization None, every entry in `MIN_SHIFT..=MAX_SHIFT`.
    fn shift_vector(&self, t: &TensorInfo<'a>, n: usize) -> Result<&'a [i8], Error> {
        let data = t
            .data_i8()
            .filter(|_| matches!(t.quant, Quant::None))
            .ok_or(self.bad(why!(
                "shift vector must be an i8 constant without quantization"
            )))?;
        self.ensure(
            t.rank() == 1 && data.len() == n,
            why!("shift vector has the wrong shape"),
        )?;
        self.ensure(
            data.iter()
                .all(|&s| (MIN_SHIFT..=MAX_SHIFT).contains(&i32::from(s))),
            why!("shift out of range"),
        )?;
        Ok(data)
    }

    /// Bias, multiplier and shift vectors (inputs 2..5) of `n` channels.
    fn requant(&self, weights: &'a [i8], n: usize) -> Result<Requant<'a>, Error> {
        let bias = self.i32_vector(&self.input(2)?, n)?;
        let multiplier = self.i32_vector(&self.input(3)?, n)?;
        let shift = self.shift_vector(&self.input(4)?, n)?;
        self.ensure(
            multiplier.iter().all(|&m| m >= 0),
            why!("negative multiplier"),
        )?;
        Ok(Requant {
            weights,
            bias,
            multiplier,
            shift,
        })
    }
}

/// `[1, C, H, W]` or `[1, C, L]` (H = 1): returns `(C, H, W, is_2d)`.
fn nchw(t: &TensorInfo<'_>) -> Option<(usize, usize, usize, bool)> {
    match *t.dims() {
        [1, c, h, w] => Some((c as usize, h as usize, w as usize, true)),
        [1, c, l] => Some((c as usize, 1, l as usize, false)),
        _ => None,
    }
}

/// The shape right-aligned into 4 dims, padded in front with 1s. Shapes of
/// rank above 4 fit only if their extra leading dims are 1.
fn right_align4(t: &TensorInfo<'_>) -> Option<[usize; 4]> {
    let dims = t.dims();
    let extra = dims.len().saturating_sub(4);
    let (lead, last4) = dims.split_at(extra);
    if lead.iter().any(|&d| d != 1) {
        return None;
    }
    let mut out = [1usize; 4];
    for (slot, &d) in out.iter_mut().skip(4 - last4.len()).zip(last4) {
        *slot = d as usize;
    }
    Some(out)
}

/// Checks op `op` against its kernel and returns the kernel call.
pub(crate) fn prepare<'a>(model: &Model<'a>, op: &OpInfo<'a>) -> Result<Prepared<'a>, Error> {
    let cx = Ctx { model, op };
    cx.ensure(
        op.outputs.len() == 1,
        why!("every op has exactly one output"),
    )?;
    let output = model.tensor(usize::from(op.output().unwrap_or(0)))?;
    cx.ensure(
        output.storage == Storage::Arena,
        why!("output must be an activation"),
    )?;
    // Arena tensors are per-tensor i8 (checked per tensor).
    let (out_scale, out_zp) = output
        .scale_zero_point()
        .ok_or(cx.bad(why!("output not quantized")))?;
    let kernel = match op.opcode {
        OpCode::Conv if cfg!(feature = "op-conv") => conv(&cx, &output, out_zp)?,
        OpCode::FullyConnected if cfg!(feature = "op-fully-connected") => {
            fully_connected(&cx, &output, out_zp)?
        }
        OpCode::Add if cfg!(feature = "op-add") => add(&cx, &output, out_zp)?,
        OpCode::Mul if cfg!(feature = "op-mul") => mul(&cx, &output, out_zp)?,
        OpCode::Lut if cfg!(feature = "op-lut") => {
            cx.check_arity(2, params::lut::COUNT)?;
            let x = cx.input(0)?;
            cx.i8_operand(&x)?;
            cx.ensure(
                x.dims() == output.dims(),
                why!("output shape differs from input shape"),
            )?;
            let table = cx.input(1)?;
            let table = table
                .data_i8()
                .filter(|_| table.rank() == 1)
                .and_then(|d| <&[i8; 256]>::try_from(d).ok())
                .ok_or(cx.bad(why!("table must be an i8 constant of shape [256]")))?;
            Kernel::Lut { table }
        }
        OpCode::MaxPool if cfg!(feature = "op-max-pool") => pool(&cx, &output)?,
        OpCode::AvgPool if cfg!(feature = "op-avg-pool") => pool(&cx, &output)?,
        OpCode::Softmax if cfg!(feature = "op-softmax") => {
            cx.check_arity(2, params::softmax::COUNT)?;
            let x = cx.input(0)?;
            cx.i8_operand(&x)?;
            cx.ensure(
                x.dims() == output.dims(),
                why!("output shape differs from input shape"),
            )?;
            cx.ensure(
                out_scale == SOFTMAX_OUTPUT_SCALE && out_zp == SOFTMAX_OUTPUT_ZERO_POINT,
                why!("softmax output must have scale 1/256 and zero point -128"),
            )?;
            let axis = cx.size(params::softmax::AXIS, 0, why!("axis out of range"))?;
            cx.ensure(axis < x.rank(), why!("axis out of range"))?;
            let table = cx.input(1)?;
            let table = table
                .data_i32()
                .filter(|_| table.rank() == 1)
                .and_then(|d| <&[i32; 256]>::try_from(d).ok())
                .ok_or(cx.bad(why!("exp table must be an i32 constant of shape [256]")))?;
            cx.ensure(
                table[0] > 0 && table.iter().all(|&e| e >= 0),
                why!("exp table needs table[0] > 0 and no negative entries"),
            )?;
            let dims = x.dims_usize();
            let outer = dims.iter().take(axis).product();
            let axis_len = dims.get(axis).copied().unwrap_or(1);
            let inner = dims.iter().take(x.rank()).skip(axis + 1).product();
            Kernel::Softmax {
                p: SoftmaxParams {
                    outer,
                    axis_len,
                    inner,
                },
                table,
            }
        }
        OpCode::Concat if cfg!(feature = "op-concat") => concat(&cx, &output)?,
        OpCode::Pad if cfg!(feature = "op-pad") => pad(&cx, &output)?,
        OpCode::Reshape if cfg!(feature = "op-reshape") => {
            cx.check_arity(1, params::reshape::COUNT)?;
            let x = cx.input(0)?;
            cx.i8_operand(&x)?;
            cx.ensure(x.numel() == output.numel(), why!("element count changes"))?;
            cx.ensure(
                x.quant == output.quant,
                why!("output quantization differs from input"),
            )?;
            Kernel::Reshape
        }
        OpCode::Lstm if cfg!(feature = "op-lstm") => recurrent(&cx, &output, out_zp)?,
        OpCode::Gru if cfg!(feature = "op-gru") => recurrent(&cx, &output, out_zp)?,
        // Left out of this build by its cargo feature (`op-*`).
        opcode => {
            return Err(Error::OpNotBuiltIn {
                index: op.index,
                opcode,
            })
        }
    };
    Ok(Prepared {
        kernel,
        inputs: op.inputs,
        output,
    })
}

/// A sliding window's placement (Conv and the pools), and its output size.
struct Window {
    stride_h: usize,
    stride_w: usize,
    dilation_h: usize,
    dilation_w: usize,
    pad_top: usize,
    pad_left: usize,
    out_h: usize,
    out_w: usize,
}

// `Ctx::window` reads both layouts by offset from STRIDE_H.
const _: () = {
    use params::{conv as c, pool as p};
    assert!(c::STRIDE_W == c::STRIDE_H + 1 && p::STRIDE_W == p::STRIDE_H + 1);
    assert!(c::DILATION_H == c::STRIDE_H + 2 && p::DILATION_H == p::STRIDE_H + 2);
    assert!(c::DILATION_W == c::STRIDE_H + 3 && p::DILATION_W == p::STRIDE_H + 3);
    assert!(c::PAD_TOP == c::STRIDE_H + 4 && p::PAD_TOP == p::STRIDE_H + 4);
    assert!(c::PAD_LEFT == c::STRIDE_H + 5 && p::PAD_LEFT == p::STRIDE_H + 5);
    assert!(c::PAD_BOTTOM == c::STRIDE_H + 6 && p::PAD_BOTTOM == p::STRIDE_H + 6);
    assert!(c::PAD_RIGHT == c::STRIDE_H + 7 && p::PAD_RIGHT == p::STRIDE_H + 7);
};

impl Ctx<'_, '_> {
    /// Reads the eight window words from `first` — stride H/W, dilation
    /// H/W, pads top/left/bottom/right, the same order in `params::conv` and
    /// `params::pool` — checks them against the kernel and input size, and
    /// sizes the output (floor mode).
    fn window(
        &self,
        first: usize,
        (kernel_h, kernel_w): (usize, usize),
        (in_h, in_w): (usize, usize),
        is_2d: bool,
    ) -> Result<Window, Error> {
        let stride = why!("stride must be at least 1");
        let dilation = why!("dilation must be at least 1");
        let pad = why!("negative pad");
        let stride_h = self.size(first, 1, stride)?;
        let stride_w = self.size(first + 1, 1, stride)?;
        let dilation_h = self.size(first + 2, 1, dilation)?;
        let dilation_w = self.size(first + 3, 1, dilation)?;
        let pad_top = self.size(first + 4, 0, pad)?;
        let pad_left = self.size(first + 5, 0, pad)?;
        let pad_bottom = self.size(first + 6, 0, pad)?;
        let pad_right = self.size(first + 7, 0, pad)?;
        if !is_2d {
            self.ensure(
                kernel_h == 1
                    && stride_h == 1
                    && dilation_h == 1
                    && pad_top == 0
                    && pad_bottom == 0,
                why!("1-D windows need kernel, stride and dilation 1 and no pads along H"),
            )?;
        }
        let out_h = conv_out_len(in_h, kernel_h, stride_h, dilation_h, pad_top, pad_bottom);
        let out_w = conv_out_len(in_w, kernel_w, stride_w, dilation_w, pad_left, pad_right);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(self.bad(why!("window larger than the padded input")));
        };
        Ok(Window {
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }
}

fn conv<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>, out_zp: i32) -> Result<Kernel<'a>, Error> {
    use params::conv as w;
    cx.check_arity(5, w::COUNT)?;
    let x = cx.input(0)?;
    let input_zero_point = cx.i8_operand(&x)?;
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

    let win = cx.window(w::STRIDE_H, (kernel_h, kernel_w), (in_h, in_w), is_2d)?;
    let groups = cx.size(w::GROUPS, 1, why!("groups must be at least 1"))?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    cx.ensure(
        cin % groups == 0 && cout % groups == 0 && cin_g == cin / groups,
        why!("groups do not divide the channels, or weights have the wrong input channels"),
    )?;
    let Window {
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top,
        pad_left,
        out_h,
        out_w,
    } = win;
    cx.ensure(
        nchw(y) == Some((cout, out_h, out_w, is_2d)),
        why!("output shape does not match the window"),
    )?;
    let requant = cx.requant(weights, cout)?;
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
        output_zero_point: out_zp,
        act_min,
        act_max,
    };
    Ok(Kernel::Conv { p, requant })
}

fn fully_connected<'a>(
    cx: &Ctx<'_, 'a>,
    y: &TensorInfo<'a>,
    out_zp: i32,
) -> Result<Kernel<'a>, Error> {
    use params::fully_connected as w;
    cx.check_arity(5, w::COUNT)?;
    let x = cx.input(0)?;
    let input_zero_point = cx.i8_operand(&x)?;
    let (&k, lead) = x
        .dims()
        .split_last()
        .ok_or(cx.bad(why!("input must have rank at least 1")))?;
    let wt = cx.input(1)?;
    let weights = cx.weights(&wt, wt.rank() == 2)?;
    let (n, wk) = (wt.dims_usize()[0], wt.dims_usize()[1]);
    cx.ensure(
        wk == k as usize,
        why!("weights [N, K] do not match the input's last dim"),
    )?;
    let shape_ok = y
        .dims()
        .split_last()
        .is_some_and(|(&yn, ylead)| yn as usize == n && ylead == lead);
    cx.ensure(
        shape_ok,
        why!("output must be the input shape with the last dim N"),
    )?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let requant = cx.requant(weights, n)?;
    let p = FullyConnectedParams {
        rows: x.numel() / k as usize,
        in_features: k as usize,
        out_features: n,
        input_zero_point,
        output_zero_point: out_zp,
        act_min,
        act_max,
    };
    Ok(Kernel::FullyConnected { p, requant })
}

/// Broadcasting of two operands into `y`: returns the zero points and plan.
fn binary<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>) -> Result<(i32, i32, Broadcast4), Error> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (za, zb) = (cx.i8_operand(&a)?, cx.i8_operand(&b)?);
    let (sa, sb) = (a.dims_usize(), b.dims_usize());
    let (sa, sb) = (
        sa.get(..a.rank()).unwrap_or(&[]),
        sb.get(..b.rank()).unwrap_or(&[]),
    );
    let bc = Broadcast4::new(sa, sb).ok_or(cx.bad(why!(
        "operands do not broadcast (numpy rules, at most 4 dims)"
    )))?;
    let y4 = right_align4(y);
    cx.ensure(
        y.rank() == a.rank().max(b.rank()) && y4 == Some(bc.out_shape),
        why!("output shape is not the broadcast shape"),
    )?;
    Ok((za, zb, bc))
}

fn add<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>, out_zp: i32) -> Result<Kernel<'a>, Error> {
    use params::add as w;
    cx.check_arity(2, w::COUNT)?;
    let (a_zero_point, b_zero_point, bc) = binary(cx, y)?;
    let left_shift = cx.word(w::LEFT_SHIFT)?;
    cx.ensure(
        (0..=MAX_ADD_LEFT_SHIFT).contains(&left_shift),
        why!("left shift not in 0..=20"),
    )?;
    let (a_multiplier, a_shift) = cx.requant_pair(w::A_MULTIPLIER, w::A_SHIFT)?;
    let (b_multiplier, b_shift) = cx.requant_pair(w::B_MULTIPLIER, w::B_SHIFT)?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = AddParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: out_zp,
        left_shift,
        a_multiplier,
        a_shift,
        b_multiplier,
        b_shift,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    Ok(Kernel::Add { p, bc })
}

fn mul<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>, out_zp: i32) -> Result<Kernel<'a>, Error> {
    use params::mul as w;
    cx.check_arity(2, w::COUNT)?;
    let (a_zero_point, b_zero_point, bc) = binary(cx, y)?;
    let (out_multiplier, out_shift) = cx.requant_pair(w::OUT_MULTIPLIER, w::OUT_SHIFT)?;
    let (act_min, act_max) = cx.act_range(w::ACT_MIN, w::ACT_MAX)?;
    let p = MulParams {
        a_zero_point,
        b_zero_point,
        output_zero_point: out_zp,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    };
    Ok(Kernel::Mul { p, bc })
}

fn pool<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>) -> Result<Kernel<'a>, Error> {
    use params::pool as w;
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    let zero_point = cx.i8_operand(&x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    let (channels, in_h, in_w, is_2d) =
        nchw(&x).ok_or(cx.bad(why!("input must be [1, C, H, W] or [1, C, L]")))?;
    let kernel_h = cx.size(w::KERNEL_H, 1, why!("kernel must be at least 1"))?;
    let kernel_w = cx.size(w::KERNEL_W, 1, why!("kernel must be at least 1"))?;
    let include_pad = cx.word(w::COUNT_INCLUDE_PAD)?;
    let is_avg = cx.op.opcode == OpCode::AvgPool;
    cx.ensure(
        include_pad == 0 || (is_avg && include_pad == 1),
        why!("count_include_pad must be 0 or 1 (AvgPool) or 0 (MaxPool)"),
    )?;
    if is_avg {
        let area = kernel_h.checked_mul(kernel_w);
        cx.ensure(
            area.is_some_and(|a| a <= MAX_AVG_POOL_WINDOW),
            why!("average window above 2^23 elements"),
        )?;
    }
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
    cx.ensure(
        nchw(y) == Some((channels, out_h, out_w, is_2d)),
        why!("output shape does not match the window"),
    )?;
    let p = PoolParams {
        channels,
        in_h,
        in_w,
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
        count_include_pad: include_pad == 1,
        zero_point,
    };
    Ok(if is_avg {
        Kernel::AvgPool(p)
    } else {
        Kernel::MaxPool(p)
    })
}

fn concat<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>) -> Result<Kernel<'a>, Error> {
    use params::concat as w;
    let n = cx.op.inputs.len();
    cx.ensure(n >= 1, why!("concat needs at least one input"))?;
    cx.check_arity(n, w::COUNT_FIXED + 2 * n)?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < y.rank(), why!("axis out of range"))?;
    let mut axis_sum = 0usize;
    for i in 0..n {
        let x = cx.input(i)?;
        cx.i8_operand(&x)?;
        let same_elsewhere = x.rank() == y.rank()
            && x.dims()
                .iter()
                .zip(y.dims())
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        cx.ensure(
            same_elsewhere,
            why!("input shape differs from the output off the axis"),
        )?;
        axis_sum = axis_sum.saturating_add(x.dims_usize().get(axis).copied().unwrap_or(0));
        cx.requant_pair(w::COUNT_FIXED + 2 * i, w::COUNT_FIXED + 2 * i + 1)?;
    }
    let dims = y.dims_usize();
    let out_axis_len = dims.get(axis).copied().unwrap_or(0);
    cx.ensure(
        axis_sum == out_axis_len,
        why!("input sizes along the axis do not add up to the output's"),
    )?;
    Ok(Kernel::Concat {
        axis,
        outer: dims.iter().take(axis).product(),
        inner: dims.iter().take(y.rank()).skip(axis + 1).product(),
        out_axis_len,
        params: cx.op.params,
    })
}

fn pad<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>) -> Result<Kernel<'a>, Error> {
    use params::pad as w;
    let x = cx.input(0)?;
    let rank = x.rank();
    cx.check_arity(1, w::PADS + 2 * rank)?;
    cx.i8_operand(&x)?;
    cx.ensure(
        x.quant == y.quant,
        why!("output quantization differs from input"),
    )?;
    cx.ensure(
        rank <= 4 && y.rank() == rank,
        why!("pad supports rank at most 4, output of the same rank"),
    )?;
    let value =
        i8::try_from(cx.word(w::VALUE)?).map_err(|_| cx.bad(why!("pad value outside i8")))?;
    let (xd, yd) = (x.dims_usize(), y.dims_usize());
    let mut pad_before = [0usize; 4];
    // Right-aligned like the shapes: dim d of a rank-r tensor is slot 4 − r + d.
    let slots = pad_before.iter_mut().skip(4 - rank);
    for (d, (slot, (&xs, &ys))) in slots.zip(xd.iter().zip(&yd)).enumerate() {
        let before = cx.size(w::PADS + d, 0, why!("negative pad"))?;
        let after = cx.size(w::PADS + rank + d, 0, why!("negative pad"))?;
        let want = xs.checked_add(before).and_then(|v| v.checked_add(after));
        cx.ensure(
            want == Some(ys),
            why!("output shape is not input plus pads"),
        )?;
        *slot = before;
    }
    let (Some(in_shape), Some(out_shape)) = (right_align4(&x), right_align4(y)) else {
        return Err(cx.bad(why!("pad supports rank at most 4")));
    };
    Ok(Kernel::Pad(PadParams {
        in_shape,
        out_shape,
        pad_before,
        value,
    }))
}

/// Lstm and Gru: the shared operand list of `params::recurrent`, then the
/// op's own parameter words.
fn recurrent<'a>(cx: &Ctx<'_, 'a>, y: &TensorInfo<'a>, out_zp: i32) -> Result<Kernel<'a>, Error> {
    use params::recurrent as inp;
    let is_lstm = cx.op.opcode == OpCode::Lstm;
    let (gates, n_tables, n_words) = if is_lstm {
        (
            params::lstm::GATES,
            params::lstm::TABLES,
            params::lstm::COUNT,
        )
    } else {
        (params::gru::GATES, params::gru::TABLES, params::gru::COUNT)
    };
    cx.check_arity(inp::INPUT_COUNT, n_words)?;
    let x = cx.input(inp::X)?;
    let input_zero_point = cx.i8_operand(&x)?;
    let wt = cx.input(inp::W)?;
    let w = cx.weights(&wt, wt.rank() == 2)?;
    let rt = cx.input(inp::R)?;
    let r = cx.weights(&rt, rt.rank() == 2)?;
    let (wd, rd) = (wt.dims_usize(), rt.dims_usize());
    let hidden = rd[1];
    cx.ensure(
        (1..=MAX_HIDDEN).contains(&hidden),
        why!("hidden size not in 1..=128"),
    )?;
    // hidden ≤ 128 and gates ≤ 4: no overflow.
    let rows = gates * hidden;
    cx.ensure(
        wd[0] == rows && rd[0] == rows,
        why!("weights must have gates x hidden rows"),
    )?;
    let input_size = wd[1];
    cx.ensure(
        x.dims().last().map(|&d| d as usize) == Some(input_size),
        why!("input's last dim differs from the weights' input size"),
    )?;
    cx.ensure(
        y.dims().last().map(|&d| d as usize) == Some(hidden) && y.numel() == hidden,
        why!("output must be the hidden state (last dim H, H elements)"),
    )?;
    let vector = |i: usize| cx.i32_vector(&cx.input(i)?, rows);
    let (x_multiplier, h_multiplier) = (vector(inp::X_MULTIPLIER)?, vector(inp::H_MULTIPLIER)?);
    let shifts = |i: usize| cx.shift_vector(&cx.input(i)?, rows);
    let (x_shift, h_shift) = (shifts(inp::X_SHIFT)?, shifts(inp::H_SHIFT)?);
    cx.ensure(
        x_multiplier.iter().chain(h_multiplier).all(|&m| m >= 0),
        why!("negative multiplier"),
    )?;
    let tt = cx.input(inp::TABLES)?;
    let tables = tt
        .data_i16()
        .filter(|_| tt.rank() == 2 && tt.dims_usize()[..2] == [n_tables, TABLE_LEN])
        .ok_or(cx.bad(why!("tables must be an i16 constant [n_tables, 257]")))?;
    let wts = RecurrentWeights {
        w,
        r,
        bias_x: vector(inp::BIAS_X)?,
        bias_h: vector(inp::BIAS_H)?,
        x_multiplier,
        x_shift,
        h_multiplier,
        h_shift,
        tables,
    };
    let out_words = if is_lstm {
        (params::lstm::OUT_MULTIPLIER, params::lstm::OUT_SHIFT)
    } else {
        (params::gru::OUT_MULTIPLIER, params::gru::OUT_SHIFT)
    };
    let (out_multiplier, out_shift) = cx.requant_pair(out_words.0, out_words.1)?;
    let rec = RecurrentParams {
        steps: x.numel() / input_size.max(1),
        input_size,
        hidden,
        input_zero_point,
        output_zero_point: out_zp,
        out_multiplier,
        out_shift,
    };
    if is_lstm {
        use params::lstm as pw;
        let (cell_multiplier, cell_shift) = cx.requant_pair(pw::CELL_MULTIPLIER, pw::CELL_SHIFT)?;
        let (tanh_multiplier, tanh_shift) = cx.requant_pair(pw::TANH_MULTIPLIER, pw::TANH_SHIFT)?;
        let p = LstmParams {
            rec,
            cell_multiplier,
            cell_shift,
            tanh_multiplier,
            tanh_shift,
        };
        Ok(Kernel::Lstm { p, wts })
    } else {
        use params::gru as pw;
        let lbr = cx.word(pw::LINEAR_BEFORE_RESET)?;
        cx.ensure(
            lbr == 0 || lbr == 1,
            why!("linear_before_reset must be 0 or 1"),
        )?;
        let (rh_multiplier, rh_shift) = cx.requant_pair(pw::RH_MULTIPLIER, pw::RH_SHIFT)?;
        let p = GruParams {
            rec,
            linear_before_reset: lbr == 1,
            rh_multiplier,
            rh_shift,
        };
        Ok(Kernel::Gru { p, wts })
    }
}
