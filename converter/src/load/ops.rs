//! ONNX ops → IR ops, with static shape inference.

use std::rc::Rc;

use super::fold;
use super::node::{norm_axis, NodeCtx};
use super::shape::{self, broadcast, broadcast_indices, numel};
use super::tensor::{self, Const, Data};
use super::{unsupported, Builder, Input, Value};
use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Op, TensorId, Unary, Window};

pub(super) type Ins<'a, 'b> = &'a [Option<Input<'b>>];

pub(super) fn convert(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    match ctx.op {
        "Conv" => conv(b, ctx, ins),
        "Gemm" => gemm(b, ctx, ins),
        "MatMul" => matmul(b, ctx, ins),
        "Add" | "Sub" | "Mul" | "Div" => arith(b, ctx, ins),
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "Clip" => {
            unary(b, ctx, ins)
        }
        "MaxPool" | "AveragePool" => pool(b, ctx, ins),
        "GlobalAveragePool" | "GlobalMaxPool" => global_pool(b, ctx, ins),
        "Softmax" => softmax(b, ctx, ins),
        "Concat" => concat(b, ctx, ins),
        "Pad" => pad(b, ctx, ins),
        "BatchNormalization" => batch_norm(b, ctx, ins),
        "LSTM" | "GRU" => super::recurrent::recurrent(b, ctx, ins),
        _ => Err(unsupported(ctx)),
    }
}

// ---- operand access ----

fn input<'a, 'b>(ctx: &NodeCtx, ins: Ins<'a, 'b>, i: usize) -> Result<&'a Input<'b>, ConvertError> {
    ins.get(i)
        .and_then(|x| x.as_ref())
        .ok_or_else(|| ctx.err(format!("input {i} is missing")))
}

/// A computed (non-constant) input and its shape.
pub(super) fn act(
    b: &Builder,
    ctx: &NodeCtx,
    ins: Ins,
    i: usize,
) -> Result<(TensorId, Vec<usize>), ConvertError> {
    let inp = input(ctx, ins, i)?;
    match &inp.value {
        Value::Act(id) => Ok((*id, b.shape_of(&inp.value))),
        _ => Err(ctx.err(format!(
            "input {i} (\"{}\") must be computed from the model input, but it is a constant",
            inp.name
        ))),
    }
}

pub(super) fn konst(
    ctx: &NodeCtx,
    ins: Ins,
    i: usize,
    what: &str,
) -> Result<Rc<Const>, ConvertError> {
    opt_konst(ctx, ins, i, what)?
        .ok_or_else(|| ctx.err(format!("the {what} (input {i}) is missing")))
}

pub(super) fn opt_konst(
    ctx: &NodeCtx,
    ins: Ins,
    i: usize,
    what: &str,
) -> Result<Option<Rc<Const>>, ConvertError> {
    match ins.get(i).and_then(|x| x.as_ref()) {
        None => Ok(None),
        Some(Input {
            value: Value::Const(c),
            ..
        }) => Ok(Some(c.clone())),
        Some(inp) => Err(ctx.err(format!(
            "the {what} (input {i}, \"{}\") must be a constant (an initializer, or computable at \
             conversion time), but it is computed from the model input",
            inp.name
        ))),
    }
}

fn to_usize(ctx: &NodeCtx, attr: &str, v: &[i64]) -> Result<Vec<usize>, ConvertError> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| ctx.attr_err(attr, format!("negative value in {v:?}")))
        })
        .collect()
}

// ---- constants and views ----

pub(super) fn constant(ctx: &NodeCtx) -> Result<Const, ConvertError> {
    if let Some(t) = ctx.tensor("value")? {
        return tensor::from_proto(t).map_err(|e| ctx.attr_err("value", e));
    }
    if let Some(v) = ctx.opt_float("value_float")? {
        return Ok(Const::f32(vec![], vec![v]));
    }
    if let Some(v) = ctx.floats("value_floats")? {
        return Ok(Const::f32(vec![v.len()], v));
    }
    if let Some(v) = ctx.opt_int("value_int")? {
        return Ok(Const::i64(vec![], vec![v]));
    }
    if let Some(v) = ctx.ints("value_ints")? {
        return Ok(Const::i64(vec![v.len()], v));
    }
    Err(ctx.err("no supported value attribute (value, value_float(s), value_int(s))"))
}

/// `Shape` (with opset-15 `start`/`end`) and `Size` of a tensor whose shape is
/// static: always constants.
pub(super) fn shape_op(ctx: &NodeCtx, dims: &[usize]) -> Result<Const, ConvertError> {
    if ctx.op == "Size" {
        return Ok(Const::i64(vec![], vec![numel(dims) as i64]));
    }
    let r = dims.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampi(ctx.int("start", 0)?);
    let end = clampi(ctx.opt_int("end")?.unwrap_or(r));
    let v: Vec<i64> = dims
        .get(start..end.max(start))
        .unwrap_or(&[])
        .iter()
        .map(|&d| d as i64)
        .collect();
    Ok(Const::i64(vec![v.len()], v))
}

/// Ops that only reinterpret a tensor's shape (or are the identity). On
/// constants they fold; on activations they become `Op::Reshape`.
pub(super) fn view(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let in_shape = b.shape_of(&x.value);
    let err = |e: String| ctx.err(e);
    let out = match ctx.op {
        "Identity" | "Dropout" => in_shape.clone(),
        "Cast" => {
            let to = ctx
                .opt_int("to")?
                .ok_or_else(|| ctx.attr_err("to", "missing"))?;
            let to = i32::try_from(to).unwrap_or(-1);
            if let Value::Const(c) = &x.value {
                return Ok(Value::Const(Rc::new(cast(ctx, c, to)?)));
            }
            if to != tract_onnx::pb::tensor_proto::DataType::Float as i32 {
                return Err(ctx.attr_err(
                    "to",
                    format!(
                        "casting a computed tensor to {} is not supported (medq computes in float)",
                        tensor::dtype_name(to)
                    ),
                ));
            }
            in_shape.clone()
        }
        "Reshape" => {
            let spec: Vec<i64> = if ctx.opset < 5 {
                ctx.ints("shape")?
                    .ok_or_else(|| ctx.attr_err("shape", "missing"))?
            } else {
                let c = konst(ctx, ins, 1, "target shape")?;
                fold::ints(ctx, &c, "shape")?.to_vec()
            };
            let allowzero = ctx.int("allowzero", 0)? != 0;
            shape::reshape(&in_shape, &spec, allowzero).map_err(err)?
        }
        "Flatten" => shape::flatten(&in_shape, ctx.int("axis", 1)?).map_err(err)?,
        "Squeeze" | "Unsqueeze" => {
            let axes: Option<Vec<i64>> = if ctx.opset < 13 {
                ctx.ints("axes")?
            } else {
                opt_konst(ctx, ins, 1, "axes")?
                    .map(|c| fold::ints(ctx, &c, "axes").map(<[i64]>::to_vec))
                    .transpose()?
            };
            if ctx.op == "Squeeze" {
                shape::squeeze(&in_shape, axes.as_deref()).map_err(err)?
            } else {
                let axes = axes.ok_or_else(|| ctx.err("Unsqueeze needs axes"))?;
                shape::unsqueeze(&in_shape, &axes).map_err(err)?
            }
        }
        "Transpose" => {
            let perm = ctx.ints("perm")?;
            if let Value::Const(c) = &x.value {
                return Ok(Value::Const(Rc::new(fold::transpose(
                    ctx,
                    c,
                    perm.as_deref(),
                )?)));
            }
            let p = shape::permutation(perm.as_deref(), in_shape.len())
                .map_err(|e| ctx.attr_err("perm", e))?;
            // Moving only size-1 axes leaves the data in the same order.
            let moved: Vec<usize> = p
                .iter()
                .copied()
                .filter(|&a| in_shape.get(a) != Some(&1))
                .collect();
            if moved.windows(2).any(|w| w[0] > w[1]) {
                return Err(ctx.attr_err(
                    "perm",
                    format!(
                        "transposing a computed tensor of shape {in_shape:?} with perm {p:?} reorders its \
                         data, which medq does not support"
                    ),
                ));
            }
            p.iter()
                .map(|&a| in_shape.get(a).copied().unwrap_or(1))
                .collect()
        }
        _ => return Err(unsupported(ctx)),
    };
    match &x.value {
        Value::Const(c) => Ok(Value::Const(Rc::new(c.with_shape(out)))),
        Value::Act(id) => b.emit(ctx, Op::Reshape, vec![*id], out),
        Value::Unavailable(_) => Err(ctx.err("input is unavailable")),
    }
}

fn cast(ctx: &NodeCtx, c: &Const, to: i32) -> Result<Const, ConvertError> {
    use tract_onnx::pb::tensor_proto::DataType as T;
    let t = T::try_from(to).map_err(|_| ctx.attr_err("to", format!("unknown type {to}")))?;
    Ok(match t {
        T::Float | T::Double | T::Float16 | T::Bfloat16 => Const::f32(c.shape.clone(), c.to_f32()),
        T::Bool => Const::i64(
            c.shape.clone(),
            c.to_f32().iter().map(|&v| i64::from(v != 0.0)).collect(),
        ),
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Uint8 | T::Uint16 | T::Uint32 | T::Uint64 => {
            match &c.data {
                Data::I64(v) => Const::i64(c.shape.clone(), v.clone()),
                // Float → int truncates toward zero (saturating here).
                Data::F32(v) => Const::i64(c.shape.clone(), v.iter().map(|&x| x as i64).collect()),
            }
        }
        other => {
            return Err(ctx.attr_err(
                "to",
                format!("casting to {} is not supported", other.as_str_name()),
            ))
        }
    })
}

// ---- windows ----

/// Padding and output size of one convolution / pooling axis set.
struct Geometry {
    begins: Vec<usize>,
    ends: Vec<usize>,
    outs: Vec<usize>,
    /// How far the last (ceil-mode) window reaches past the end padding.
    overflow: Vec<usize>,
}

fn geometry(
    ctx: &NodeCtx,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    ceil_mode: bool,
) -> Result<Geometry, ConvertError> {
    let n = input.len();
    let auto_pad = ctx.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let mut g = Geometry {
        begins: vec![0; n],
        ends: vec![0; n],
        outs: vec![0; n],
        overflow: vec![0; n],
    };
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err(ctx.err("kernel sizes, strides and dilations must be positive"));
    }
    match auto_pad.as_str() {
        "NOTSET" | "" => {
            if let Some(p) = ctx.ints("pads")? {
                if p.len() != 2 * n {
                    return Err(
                        ctx.attr_err("pads", format!("expected {} values, found {p:?}", 2 * n))
                    );
                }
                let p = to_usize(ctx, "pads", &p)?;
                g.begins.copy_from_slice(&p[..n]);
                g.ends.copy_from_slice(&p[n..]);
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for i in 0..n {
                let eff = (kernel[i] - 1) * dilations[i] + 1;
                let out = input[i].div_ceil(strides[i]);
                let total = ((out - 1) * strides[i] + eff).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                g.begins[i] = b;
                g.ends[i] = e;
            }
        }
        other => return Err(ctx.attr_err("auto_pad", format!("unknown value {other}"))),
    }
    for i in 0..n {
        let eff = (kernel[i] - 1) * dilations[i] + 1;
        let padded = input[i] + g.begins[i] + g.ends[i];
        if padded < eff {
            return Err(ctx.err(format!(
                "the window ({eff}) is larger than the padded input ({padded}) on spatial axis {i}"
            )));
        }
        let span = padded - eff;
        let mut out = if ceil_mode {
            span.div_ceil(strides[i]) + 1
        } else {
            span / strides[i] + 1
        };
        // A ceil-mode window that would start in the end padding is dropped
        // (PyTorch and onnxruntime agree on this).
        if ceil_mode && out > 1 && (out - 1) * strides[i] >= input[i] + g.begins[i] {
            out -= 1;
        }
        g.outs[i] = out;
        g.overflow[i] = ((out - 1) * strides[i] + eff).saturating_sub(padded);
    }
    Ok(g)
}

/// 1-D geometry lives on the second window axis with `h = 1`.
fn window(
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    begins: &[usize],
    ends: &[usize],
) -> Window {
    let at = |v: &[usize], i: usize, d: usize| v.get(i).copied().unwrap_or(d);
    if kernel.len() == 1 {
        Window {
            kernel: [1, at(kernel, 0, 1)],
            strides: [1, at(strides, 0, 1)],
            dilations: [1, at(dilations, 0, 1)],
            pads: [0, at(begins, 0, 0), 0, at(ends, 0, 0)],
        }
    } else {
        Window {
            kernel: [at(kernel, 0, 1), at(kernel, 1, 1)],
            strides: [at(strides, 0, 1), at(strides, 1, 1)],
            dilations: [at(dilations, 0, 1), at(dilations, 1, 1)],
            pads: [
                at(begins, 0, 0),
                at(begins, 1, 0),
                at(ends, 0, 0),
                at(ends, 1, 0),
            ],
        }
    }
}

/// An input of rank 3 (1-D) or 4 (2-D) and its spatial rank.
fn spatial_rank(ctx: &NodeCtx, shape: &[usize], attr: &str) -> Result<usize, ConvertError> {
    match shape.len() {
        3 | 4 => Ok(shape.len() - 2),
        _ => Err(ctx.attr_err(
            attr,
            format!(
                "only 1-D and 2-D {} are supported (input shape {shape:?})",
                if ctx.op == "Conv" {
                    "convolutions"
                } else {
                    "windows"
                }
            ),
        )),
    }
}

fn per_axis(ctx: &NodeCtx, attr: &str, n: usize) -> Result<Vec<usize>, ConvertError> {
    match ctx.usizes(attr)? {
        None => Ok(vec![1; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(ctx.attr_err(attr, format!("expected {n} values, found {v:?}"))),
    }
}

// ---- compute ops ----

fn conv(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "weights")?;
    let bias = opt_konst(ctx, ins, 2, "bias")?;
    let n = spatial_rank(ctx, &xs, "kernel_shape")?;
    if w.shape.len() != n + 2 {
        return Err(ctx.err(format!(
            "weights of shape {:?} do not fit input {xs:?}",
            w.shape
        )));
    }
    let group = usize::try_from(ctx.int("group", 1)?)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| ctx.attr_err("group", "must be positive"))?;
    let (cin, cout, cin_g) = (xs[1], w.shape[0], w.shape[1]);
    if cin_g * group != cin || cout % group != 0 {
        return Err(ctx.err(format!(
            "weights {:?} with group {group} do not fit {cin} input channels",
            w.shape
        )));
    }
    let kernel = w.shape[2..].to_vec();
    if let Some(ks) = ctx.usizes("kernel_shape")? {
        if ks != kernel {
            return Err(ctx.attr_err(
                "kernel_shape",
                format!("{ks:?} differs from the weights' {kernel:?}"),
            ));
        }
    }
    let strides = per_axis(ctx, "strides", n)?;
    let dilations = per_axis(ctx, "dilations", n)?;
    let g = geometry(ctx, &xs[2..], &kernel, &strides, &dilations, false)?;
    let bias = match bias {
        Some(c) if c.len() == cout => c.to_f32(),
        Some(c) => {
            return Err(ctx.err(format!(
                "bias has {} values for {cout} output channels",
                c.len()
            )))
        }
        None => vec![0.0; cout],
    };
    let (kh, kw) = if n == 1 {
        (1, kernel[0])
    } else {
        (kernel[0], kernel[1])
    };
    let weights = Array::new(vec![cout, cin_g, kh, kw], w.to_f32());
    let mut out = vec![xs[0], cout];
    out.extend_from_slice(&g.outs);
    let op = Op::Conv {
        weights,
        bias,
        window: window(&kernel, &strides, &dilations, &g.begins, &g.ends),
        groups: group,
        activation: FusedActivation::None,
    };
    b.emit(ctx, op, vec![x], out)
}

/// `[K, N]` row-major → `[N, K]`, scaled.
fn transpose_2d(data: &[f32], k: usize, n: usize, scale: f32) -> Vec<f32> {
    let mut t = vec![0.0; k * n];
    for (i, row) in data.chunks_exact(n).enumerate().take(k) {
        for (j, &v) in row.iter().enumerate() {
            t[j * k + i] = v * scale;
        }
    }
    t
}

fn gemm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (a, shape_a) = act(b, ctx, ins, 0)?;
    if ctx.int("transA", 0)? != 0 {
        return Err(ctx.attr_err("transA", "only transA = 0 is supported"));
    }
    let w = konst(ctx, ins, 1, "weights (B)")?;
    let c = opt_konst(ctx, ins, 2, "bias (C)")?;
    let (alpha, beta) = (ctx.float("alpha", 1.0)?, ctx.float("beta", 1.0)?);
    let trans_b = ctx.int("transB", 0)? != 0;
    let [m, k_in] = shape_a[..] else {
        return Err(ctx.err(format!("Gemm needs a 2-D input, found shape {shape_a:?}")));
    };
    let [w0, w1] = w.shape[..] else {
        return Err(ctx.err(format!("B must be 2-D, found shape {:?}", w.shape)));
    };
    let (k, n) = if trans_b { (w1, w0) } else { (w0, w1) };
    if k != k_in {
        return Err(ctx.err(format!(
            "input {shape_a:?} does not fit B {:?} (transB={})",
            w.shape,
            u8::from(trans_b)
        )));
    }
    let wf = w.to_f32();
    let weights = if trans_b {
        wf.iter().map(|&v| v * alpha).collect()
    } else {
        transpose_2d(&wf, k, n, alpha)
    };
    let bias = match c {
        None => vec![0.0; n],
        Some(c) => {
            // C must be the same for every row: [N], [1, N], [1] or scalar.
            let row_shape: Vec<usize> = match c.shape[..] {
                [1, cn] => vec![cn],
                [_, _] => {
                    return Err(ctx.err(format!(
                        "C of shape {:?} differs per row; medq needs a bias vector",
                        c.shape
                    )))
                }
                _ => c.shape.clone(),
            };
            if broadcast(&row_shape, &[n]).as_deref() != Some(&[n][..]) {
                return Err(ctx.err(format!(
                    "C of shape {:?} does not broadcast to [{n}]",
                    c.shape
                )));
            }
            let cf = c.to_f32();
            broadcast_indices(&row_shape, &[n])
                .into_iter()
                .map(|i| cf.get(i).copied().unwrap_or(0.0) * beta)
                .collect()
        }
    };
    let op = Op::FullyConnected {
        weights: Array::new(vec![n, k], weights),
        bias,
        activation: FusedActivation::None,
    };
    b.emit(ctx, op, vec![a], vec![m, n])
}

fn matmul(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    if matches!(input(ctx, ins, 0)?.value, Value::Const(_)) {
        return Err(ctx.err(
            "MatMul with a constant left operand is not supported: medq needs the weights on the right (x · W)",
        ));
    }
    let (a, sa) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "weights (right operand)")?;
    if sa.len() < 2 {
        return Err(ctx.err(format!(
            "the left operand must have rank ≥ 2, found shape {sa:?}"
        )));
    }
    let r = w.shape.len();
    if r < 2 || r > sa.len() || w.shape[..r - 2].iter().any(|&d| d != 1) {
        return Err(ctx.err(format!(
            "the weights must be a 2-D matrix (optionally with leading 1-dims), found shape {:?}",
            w.shape
        )));
    }
    let (k, n) = (w.shape[r - 2], w.shape[r - 1]);
    if sa.last() != Some(&k) {
        return Err(ctx.err(format!("input {sa:?} does not fit weights {:?}", w.shape)));
    }
    let mut out = sa[..sa.len() - 1].to_vec();
    out.push(n);
    let op = Op::FullyConnected {
        weights: Array::new(vec![n, k], transpose_2d(&w.to_f32(), k, n, 1.0)),
        bias: vec![0.0; n],
        activation: FusedActivation::None,
    };
    b.emit(ctx, op, vec![a], out)
}

fn arith(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, y) = (input(ctx, ins, 0)?, input(ctx, ins, 1)?);
    let out = broadcast(&b.shape_of(&x.value), &b.shape_of(&y.value)).ok_or_else(|| {
        ctx.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            b.shape_of(&x.value),
            b.shape_of(&y.value)
        ))
    })?;
    let mul = matches!(ctx.op, "Mul" | "Div");
    let make = |activation| {
        if mul {
            Op::Mul { activation }
        } else {
            Op::Add { activation }
        }
    };
    match (&x.value, &y.value) {
        (Value::Act(p), Value::Act(q)) => {
            if matches!(ctx.op, "Sub" | "Div") {
                return Err(ctx.err(format!(
                    "{} of two computed tensors is not supported (medq has Add and Mul, and {} by a constant)",
                    ctx.op, ctx.op
                )));
            }
            b.emit(ctx, make(FusedActivation::None), vec![*p, *q], out)
        }
        (Value::Act(p), Value::Const(c)) => {
            // x − c = x + (−c) and x / c = x · (1/c): the IR has Add and Mul only.
            let (name, c) = match ctx.op {
                "Sub" => (
                    format!("{}/neg", y.name),
                    Const::f32(c.shape.clone(), c.to_f32().iter().map(|v| -v).collect()),
                ),
                "Div" => {
                    let v = c.to_f32();
                    if v.contains(&0.0) {
                        return Err(ctx.err(format!(
                            "division by a constant that contains 0 (\"{}\")",
                            y.name
                        )));
                    }
                    (
                        format!("{}/recip", y.name),
                        Const::f32(c.shape.clone(), v.iter().map(|v| 1.0 / v).collect()),
                    )
                }
                _ => (y.name.to_string(), c.as_ref().clone()),
            };
            let cid = b.const_tensor(&name, &c)?;
            b.emit(ctx, make(FusedActivation::None), vec![*p, cid], out)
        }
        (Value::Const(c), Value::Act(q)) => {
            if matches!(ctx.op, "Sub" | "Div") {
                return Err(ctx.err(format!(
                    "a constant {} a computed tensor is not supported (only a computed tensor {} a constant)",
                    if ctx.op == "Sub" { "minus" } else { "divided by" },
                    if ctx.op == "Sub" { "minus" } else { "divided by" },
                )));
            }
            // Activation first, constant second, for the quantizer's convenience.
            let cid = b.const_tensor(x.name, c)?;
            b.emit(ctx, make(FusedActivation::None), vec![*q, cid], out)
        }
        _ => Err(ctx.err("unexpected operands")),
    }
}

/// A scalar bound operand of Clip; ±FLT_MAX (older exporters' "no bound")
/// becomes ±∞.
fn bound(ctx: &NodeCtx, ins: Ins, i: usize, what: &str, default: f32) -> Result<f32, ConvertError> {
    match opt_konst(ctx, ins, i, what)? {
        None => Ok(default),
        Some(c) => c
            .scalar_f32()
            .map(unbound)
            .ok_or_else(|| ctx.err(format!("the {what} must be a scalar"))),
    }
}

fn unbound(v: f32) -> f32 {
    if v >= f32::MAX {
        f32::INFINITY
    } else if v <= f32::MIN {
        f32::NEG_INFINITY
    } else {
        v
    }
}

fn unary(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let u = match ctx.op {
        "Relu" => Unary::Relu,
        "LeakyRelu" => Unary::LeakyRelu {
            alpha: ctx.float("alpha", 0.01)?,
        },
        "Sigmoid" => Unary::Sigmoid,
        "Tanh" => Unary::Tanh,
        "HardSigmoid" => Unary::HardSigmoid {
            alpha: ctx.float("alpha", 0.2)?,
            beta: ctx.float("beta", 0.5)?,
        },
        "HardSwish" => Unary::HardSwish,
        _ => {
            let (min, max) = if ctx.opset < 11 {
                (
                    unbound(ctx.float("min", f32::NEG_INFINITY)?),
                    unbound(ctx.float("max", f32::INFINITY)?),
                )
            } else {
                (
                    bound(ctx, ins, 1, "min", f32::NEG_INFINITY)?,
                    bound(ctx, ins, 2, "max", f32::INFINITY)?,
                )
            };
            if min.is_nan() || max.is_nan() || min > max {
                return Err(ctx.err(format!("invalid Clip bounds [{min}, {max}]")));
            }
            if min == 0.0 && max == f32::INFINITY {
                Unary::Relu
            } else {
                Unary::Clip { min, max }
            }
        }
    };
    b.emit(ctx, Op::Unary(u), vec![x], xs)
}

fn pool(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let n = spatial_rank(ctx, &xs, "kernel_shape")?;
    let kernel = ctx
        .usizes("kernel_shape")?
        .ok_or_else(|| ctx.attr_err("kernel_shape", "missing"))?;
    if kernel.len() != n {
        return Err(ctx.attr_err(
            "kernel_shape",
            format!("{kernel:?} does not fit input {xs:?}"),
        ));
    }
    if ctx.int("storage_order", 0)? != 0 {
        return Err(ctx.attr_err("storage_order", "only row-major (0) is supported"));
    }
    let strides = per_axis(ctx, "strides", n)?;
    let dilations = per_axis(ctx, "dilations", n)?;
    let ceil_mode = ctx.int("ceil_mode", 0)? != 0;
    let mut g = geometry(ctx, &xs[2..], &kernel, &strides, &dilations, ceil_mode)?;
    let count_include_pad = ctx.int("count_include_pad", 0)? != 0;
    if g.overflow.iter().any(|&o| o > 0) {
        // The last ceil-mode window reaches past the padded input. Extending
        // the end padding is exact for max pooling and for averages that do not
        // count padding; counting it would change the divisor.
        if ctx.op == "AveragePool" && count_include_pad {
            return Err(ctx.attr_err(
                "ceil_mode",
                "ceil_mode = 1 with count_include_pad = 1 where the last window extends past the padded \
                 input is not supported; use ceil_mode = 0 or adjust the padding",
            ));
        }
        for (e, o) in g.ends.iter_mut().zip(&g.overflow) {
            *e += o;
        }
    }
    let w = window(&kernel, &strides, &dilations, &g.begins, &g.ends);
    let op = if ctx.op == "MaxPool" {
        Op::MaxPool { window: w }
    } else {
        Op::AvgPool {
            window: w,
            count_include_pad,
        }
    };
    let mut out = xs[..2].to_vec();
    out.extend_from_slice(&g.outs);
    b.emit(ctx, op, vec![x], out)
}

fn global_pool(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let n = spatial_rank(ctx, &xs, "input")?;
    let kernel = xs[2..].to_vec();
    let ones = vec![1; n];
    let zeros = vec![0; n];
    let w = window(&kernel, &ones, &ones, &zeros, &zeros);
    let op = if ctx.op == "GlobalMaxPool" {
        Op::MaxPool { window: w }
    } else {
        Op::AvgPool {
            window: w,
            count_include_pad: false,
        }
    };
    let mut out = xs[..2].to_vec();
    out.extend(ones);
    b.emit(ctx, op, vec![x], out)
}

fn softmax(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let axis = if ctx.opset >= 13 {
        norm_axis(ctx.int("axis", -1)?, r).ok_or_else(|| ctx.attr_err("axis", "out of range"))?
    } else {
        // Before opset 13, Softmax normalizes over all axes from `axis` on,
        // flattened. That is a one-axis softmax when at most one of those
        // axes is larger than 1.
        let a = norm_axis(ctx.int("axis", 1)?, r)
            .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
        let big: Vec<usize> = (a..r).filter(|&i| xs[i] != 1).collect();
        match big[..] {
            [] => r - 1,
            [one] => one,
            _ => {
                return Err(ctx.attr_err(
                    "axis",
                    format!(
                        "opset {} Softmax normalizes over axes {a}.. of shape {xs:?} together; medq's Softmax \
                         normalizes over one axis. Re-export with opset ≥ 13 or flatten first",
                        ctx.opset
                    ),
                ))
            }
        }
    };
    b.emit(ctx, Op::Softmax { axis }, vec![x], xs)
}

fn concat(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let parts: Vec<&Input> = ins.iter().flatten().collect();
    let first = parts.first().ok_or_else(|| ctx.err("no inputs"))?;
    let s0 = b.shape_of(&first.value);
    let axis = norm_axis(ctx.int("axis", 0)?, s0.len())
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let mut out = s0.clone();
    out[axis] = 0;
    let mut ids = Vec::with_capacity(parts.len());
    for p in parts {
        let s = b.shape_of(&p.value);
        if s.len() != s0.len()
            || s.iter()
                .zip(&s0)
                .enumerate()
                .any(|(i, (a, c))| i != axis && a != c)
        {
            return Err(ctx.err(format!(
                "cannot concatenate shapes {s0:?} and {s:?} on axis {axis}"
            )));
        }
        out[axis] += s[axis];
        ids.push(match &p.value {
            Value::Act(id) => *id,
            Value::Const(c) => b.const_tensor(p.name, c)?,
            Value::Unavailable(_) => return Err(ctx.err("input is unavailable")),
        });
    }
    b.emit(ctx, Op::Concat { axis }, ids, out)
}

fn pad(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let mode = ctx.string("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(ctx.attr_err(
            "mode",
            format!("only constant padding is supported, found \"{mode}\""),
        ));
    }
    let (raw, value) = if ctx.opset < 11 {
        let p = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.attr_err("pads", "missing"))?;
        (p, ctx.float("value", 0.0)?)
    } else {
        let c = konst(ctx, ins, 1, "pads")?;
        let p = fold::ints(ctx, &c, "pads")?.to_vec();
        let v = match opt_konst(ctx, ins, 2, "constant_value")? {
            None => 0.0,
            Some(c) => c
                .scalar_f32()
                .ok_or_else(|| ctx.err("constant_value must be a scalar"))?,
        };
        let p = match opt_konst(ctx, ins, 3, "axes")? {
            None => p,
            Some(axes) => {
                let axes = fold::ints(ctx, &axes, "axes")?;
                if p.len() != 2 * axes.len() {
                    return Err(ctx.err(format!("{} pads for {} axes", p.len(), axes.len())));
                }
                let mut full = vec![0i64; 2 * r];
                for (k, &a) in axes.iter().enumerate() {
                    let a = norm_axis(a, r)
                        .ok_or_else(|| ctx.err(format!("axis {a} is out of range")))?;
                    full[a] = p[k];
                    full[a + r] = p[k + axes.len()];
                }
                full
            }
        };
        (p, v)
    };
    if raw.len() != 2 * r {
        return Err(ctx.attr_err(
            "pads",
            format!("expected {} values for rank {r}, found {raw:?}", 2 * r),
        ));
    }
    if raw.iter().any(|&p| p < 0) {
        return Err(ctx.attr_err(
            "pads",
            format!("negative pads (cropping) are not supported: {raw:?}"),
        ));
    }
    let pads = to_usize(ctx, "pads", &raw)?;
    let out: Vec<usize> = (0..r).map(|i| xs[i] + pads[i] + pads[i + r]).collect();
    b.emit(ctx, Op::Pad { pads, value }, vec![x], out)
}

/// Inference BatchNormalization as a per-channel affine `y = s·x + t`:
/// a depthwise 1×1 Conv for `[1, C, ...]` inputs, a diagonal FullyConnected
/// for `[1, C]`. The rewrite folds it into a preceding Conv/FC when it can.
fn batch_norm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    if ctx.int("training_mode", 0)? != 0 {
        return Err(ctx.attr_err("training_mode", "only inference mode (0) is supported"));
    }
    if ctx.opset < 9 && ctx.int("spatial", 1)? == 0 {
        return Err(ctx.attr_err("spatial", "only spatial = 1 is supported"));
    }
    let c = *xs
        .get(1)
        .ok_or_else(|| ctx.err(format!("input shape {xs:?} has no channel axis")))?;
    let eps = ctx.float("epsilon", 1e-5)?;
    let mut params = Vec::with_capacity(4);
    for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
        let p = konst(ctx, ins, i, what)?;
        if p.len() != c {
            return Err(ctx.err(format!("{what} has {} values for {c} channels", p.len())));
        }
        params.push(p.to_f32());
    }
    let [gamma, beta, mean, var] = &params[..] else {
        return Err(ctx.err("missing parameters"));
    };
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    let op = match xs.len() {
        2 => {
            let mut w = vec![0.0; c * c];
            for (i, s) in scale.iter().enumerate() {
                w[i * c + i] = *s;
            }
            Op::FullyConnected {
                weights: Array::new(vec![c, c], w),
                bias: shift,
                activation: FusedActivation::None,
            }
        }
        3 | 4 => Op::Conv {
            weights: Array::new(vec![c, 1, 1, 1], scale),
            bias: shift,
            window: Window {
                kernel: [1, 1],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [0; 4],
            },
            groups: c,
            activation: FusedActivation::None,
        },
        _ => {
            return Err(ctx.err(format!(
                "inputs of rank 2 to 4 are supported, found shape {xs:?}"
            )))
        }
    };
    b.emit(ctx, op, vec![x], xs)
}
