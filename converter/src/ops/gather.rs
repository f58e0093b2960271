//! Select: picking along one axis of a computed tensor — ONNX Slice (with
//! steps; PyTorch's circular padding is Slice, Slice, Concat), Split (one
//! node per output) and Gather with constant indices. The output keeps the
//! input's quantization; it becomes the `.mq` Gather op.

use std::rc::Rc;

use medq::format::layout::{params::gather as w, OpCode};

use super::onnx::{act, input, konst, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node, Op, TensorId};
use crate::load::fold;
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::shape::{broadcast, check_size, gather_indices, strides};
use crate::load::tensor::Const;
use crate::load::{Builder, Value};
use crate::quantize::{int_const, LowerCtx, Lowered, OutputQuant};

/// Output index `k` along `axis` reads input index `index.at(k)`.
#[derive(Clone, Debug)]
pub struct Select {
    pub axis: usize,
    pub index: Index,
}

/// Which input indices a [`Select`] reads.
#[derive(Clone, Debug)]
pub enum Index {
    /// `start + k·step` (Slice, Split).
    Range { start: usize, step: isize },
    /// A constant list (Gather), each in range.
    List(Vec<usize>),
}

impl Index {
    fn at(&self, k: usize) -> usize {
        match self {
            Index::Range { start, step } => (*start as isize + k as isize * step) as usize,
            Index::List(v) => v[k],
        }
    }
}

/// ONNX `Expand` of a computed tensor (`F.normalize` expands the norm back
/// to the input's shape before dividing): numpy broadcasting to the
/// constant target shape, as one Gather of index 0 repeated per stretched
/// axis (after a view adding the leading 1s).
pub(crate) fn expand(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let shape_input = konst(ctx, ins, 1, "shape")?;
    let spec = fold::ints(ctx, &shape_input, "shape")?.to_vec();
    let target = spec
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| ctx.err(format!("invalid shape {spec:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let out = broadcast(&xs, &target)
        .ok_or_else(|| ctx.err(format!("cannot expand {xs:?} to {spec:?}")))?;
    check_size(&out).map_err(|e| ctx.err(e))?;
    let mut shape = vec![1; out.len() - xs.len()];
    shape.extend(&xs);
    let stretched: Vec<usize> = (0..out.len()).filter(|&a| shape[a] != out[a]).collect();
    let Some((&last, first)) = stretched.split_last() else {
        return b.emit(ctx, Op::Reshape, vec![x], out);
    };
    let mut t = if shape == xs {
        x
    } else {
        b.emit_part(ctx, "ranked", Op::Reshape, vec![x], shape.clone())?
    };
    let repeat = |axis: usize, n: usize| {
        Op::Select(Select {
            axis,
            index: Index::List(vec![0; n]),
        })
    };
    for &a in first {
        shape[a] = out[a];
        t = b.emit_part(
            ctx,
            &format!("axis{a}"),
            repeat(a, out[a]),
            vec![t],
            shape.clone(),
        )?;
    }
    b.emit(ctx, repeat(last, out[last]), vec![t], out)
}

/// ONNX `Tile` of a computed tensor (PyTorch's `x.repeat(...)`): each axis
/// repeated by the constant `repeats`, as one Gather of the indices `0..n`
/// cycled per repeated axis.
pub(crate) fn tile(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    if ctx.opset < 6 {
        return Err(ctx.err("Tile before opset 6 (`tiles`, `axis` inputs) is not supported"));
    }
    let (x, xs) = act(b, ctx, ins, 0)?;
    let repeats_input = konst(ctx, ins, 1, "repeats")?;
    let spec = fold::ints(ctx, &repeats_input, "repeats")?.to_vec();
    if spec.len() != xs.len() {
        return Err(ctx.err(format!(
            "repeats {spec:?} has {} entries for an input of rank {}",
            spec.len(),
            xs.len()
        )));
    }
    let repeats = spec
        .iter()
        .map(|&r| usize::try_from(r).ok().filter(|&r| r >= 1))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ctx.err(format!("repeats {spec:?}: each must be at least 1")))?;
    let out: Vec<usize> = xs.iter().zip(&repeats).map(|(&d, &r)| d * r).collect();
    check_size(&out).map_err(|e| ctx.err(e))?;
    let tiled: Vec<usize> = (0..xs.len()).filter(|&a| repeats[a] > 1).collect();
    let Some((&last, first)) = tiled.split_last() else {
        return b.emit(ctx, Op::Reshape, vec![x], out);
    };
    let cycle = |axis: usize| {
        Op::Select(Select {
            axis,
            index: Index::List((0..out[axis]).map(|k| k % xs[axis]).collect()),
        })
    };
    let mut shape = xs.clone();
    let mut t = x;
    for &a in first {
        shape[a] = out[a];
        t = b.emit_part(ctx, &format!("axis{a}"), cycle(a), vec![t], shape.clone())?;
    }
    b.emit(ctx, cycle(last), vec![t], out)
}

/// ONNX `Slice` of a computed tensor: `starts`, `ends`, `axes`, `steps`
/// constant inputs (attributes before opset 10), clamped as ONNX says; one
/// Gather per sliced axis (a crop of several axes, as tf2onnx and
/// PyTorch's `x[:, a:b, c:d]` export it, is a chain).
pub(crate) fn slice(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let list = |k: usize, attr: &str| -> Result<Option<Vec<i64>>, ConvertError> {
        if ctx.opset < 10 {
            return ctx.ints(attr);
        }
        opt_konst(ctx, ins, k, attr)?
            .map(|c| fold::ints(ctx, &c, attr).map(<[i64]>::to_vec))
            .transpose()
    };
    let starts = list(1, "starts")?.ok_or_else(|| ctx.attr_err("starts", "missing"))?;
    let ends = list(2, "ends")?.ok_or_else(|| ctx.attr_err("ends", "missing"))?;
    let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = if ctx.opset < 10 {
        None
    } else {
        list(4, "steps")?
    }
    .unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.err(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"
        )));
    }
    let mut out = xs.clone();
    let mut picked = Vec::with_capacity(starts.len());
    for k in 0..starts.len() {
        let axis = norm_axis(axes[k], r).ok_or_else(|| {
            ctx.attr_err("axes", format!("{} is out of range for rank {r}", axes[k]))
        })?;
        if axes[..k].iter().any(|&a| norm_axis(a, r) == Some(axis)) {
            return Err(ctx.attr_err("axes", format!("{axes:?} names axis {axis} twice")));
        }
        let (start, step, count) = slice_range(ctx, xs[axis], starts[k], ends[k], steps[k])?;
        if step == 1 && start == 0 && count == xs[axis] {
            continue;
        }
        picked.push((
            Select {
                axis,
                index: Index::Range { start, step },
            },
            count,
        ));
    }
    // One Gather per sliced axis (a crop of several axes is a chain).
    let Some((last, first)) = picked.split_last() else {
        // The whole tensor: a view.
        return b.emit(ctx, Op::Reshape, vec![x], out);
    };
    let mut t = x;
    for (op, count) in first {
        out[op.axis] = *count;
        t = b.emit_part(
            ctx,
            &format!("axis{}", op.axis),
            Op::Select(op.clone()),
            vec![t],
            out.clone(),
        )?;
    }
    out[last.0.axis] = last.1;
    b.emit(ctx, Op::Select(last.0.clone()), vec![t], out)
}

/// ONNX's clamping of one sliced axis of length `dim`: `(start, step, count)`.
fn slice_range(
    ctx: &NodeCtx,
    dim: usize,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(usize, isize, usize), ConvertError> {
    if step == 0 {
        return Err(ctx.attr_err("steps", "a step of 0"));
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    // Elements from the first index up to (not including) the end, every |step|.
    let steps_in = |span: i64, stride: i64| span.max(0).saturating_add(stride - 1) / stride;
    let (start, end, count) = if step > 0 {
        let (s, e) = (norm(start).clamp(0, d), norm(end).clamp(0, d));
        (s, e, steps_in(e - s, step))
    } else {
        let (s, e) = (norm(start).clamp(0, d - 1), norm(end).clamp(-1, d - 1));
        (s, e, steps_in(s - e, step.saturating_neg()))
    };
    if count == 0 {
        return Err(ctx.err(format!(
            "the slice [{start}:{end}:{step}] of an axis of {dim} is empty"
        )));
    }
    Ok((start as usize, step as isize, count as usize))
}

/// ONNX `Gather` of a computed tensor with constant indices (scalar indices
/// drop the axis, as ONNX says).
pub(crate) fn gather(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    if let (Some(Some(table)), Some(Some(index))) = (ins.first(), ins.get(1)) {
        if let (Value::Const(table), Value::Act(index)) = (&table.value, &index.value) {
            return embedding(b, ctx, table, *index);
        }
    }
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let axis = norm_axis(ctx.int("axis", 0)?, r).ok_or_else(|| {
        ctx.attr_err(
            "axis",
            format!(
                "{} is out of range for rank {r}",
                ctx.int("axis", 0).unwrap_or(0)
            ),
        )
    })?;
    let idx = konst(ctx, ins, 1, "indices")?;
    let dim = xs[axis] as i64;
    let list = fold::ints(ctx, &idx, "indices")?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < xs[axis])
                .ok_or_else(|| ctx.err(format!("index {i} is out of range for an axis of {dim}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut picked = xs.clone();
    picked[axis] = list.len();
    let select = Op::Select(Select {
        axis,
        index: Index::List(list),
    });
    // Indices of rank k replace the axis by their k dims (none for a
    // scalar): a Gather of the flat list, then a view. `nn.Unfold` and
    // `x.unfold` frame a signal with a [frames, size] index matrix.
    let mut out = xs[..axis].to_vec();
    out.extend(&idx.shape);
    out.extend(&xs[axis + 1..]);
    // A scalar or a list: the Select's own output (a scalar drops the axis).
    if idx.shape.len() <= 1 {
        return b.emit(ctx, select, vec![x], out);
    }
    let rows = b.emit_part(ctx, "flat", select, vec![x], picked)?;
    b.emit(ctx, Op::Reshape, vec![rows], out)
}

/// The most rows an embedding (a Gather of a constant table by computed
/// indices) takes: the difference of an index and
/// the row numbers then spans at most 255 integers, which an int8 grid
/// holds exactly.
pub const MAX_EMBEDDING_ROWS: usize = 128;

/// ONNX `Gather` of a constant table `[N, D]` by computed indices (an
/// `nn.Embedding` of a categorical input, a lead or sensor number): the
/// rows picked as a product of the one-hot indices and the table. The
/// one-hot is `index − [0, 1, …, N−1]` equal to 0, or to `−N` for a
/// negative index (a Sub and a table), exact on the integers' grid; the
/// product a FullyConnected whose weights are the table's columns.
fn embedding(
    b: &mut Builder,
    ctx: &NodeCtx,
    table: &Const,
    index: crate::ir::TensorId,
) -> Result<Value, ConvertError> {
    use super::binary::{Binary, BinaryOp};
    use super::fully_connected::{transpose_2d, FullyConnected};
    use super::pointwise::{Expr, Fn2, Pointwise};
    use std::sync::Arc;
    let (&[rows, width], 0) = (&table.shape[..], ctx.int("axis", 0)?) else {
        return Err(ctx.err(format!(
            "a constant table of shape {:?} indexed by a computed tensor: medq takes a table \
             [rows, width] indexed along axis 0 (an embedding)",
            table.shape
        )));
    };
    if rows > MAX_EMBEDDING_ROWS {
        return Err(ctx.err(format!(
            "an embedding of {rows} rows indexed by a computed tensor: medq takes up to \
             {MAX_EMBEDDING_ROWS} (its one-hot is exact on an int8 grid up to there)"
        )));
    }
    let shape = b.shape_of(&Value::Act(index));
    let mut column = shape.clone();
    column.push(1);
    let mut one_hot = shape.clone();
    one_hot.push(rows);
    let mut out = shape;
    out.push(width);
    let numbers = Const::f32(vec![rows], (0..rows).map(|r| r as f32).collect());
    let numbers = b.const_tensor(&format!("{}/row_numbers", ctx.name), &numbers)?;
    let column = b.emit_part(ctx, "column", Op::Reshape, vec![index], column)?;
    let sub = Op::Binary(Binary { op: BinaryOp::Sub });
    let difference = b.emit_part(
        ctx,
        "difference",
        sub,
        vec![column, numbers],
        one_hot.clone(),
    )?;
    // Row r where `index == r`, or `index == r − rows` (ONNX's negative
    // indices count from the end).
    let at = |d: f64| {
        Arc::new(Expr::Binary(
            Fn2::Equal,
            Arc::new(Expr::X),
            Arc::new(Expr::Const(d)),
        ))
    };
    let equal = Expr::Binary(Fn2::Or, at(0.0), at(-(rows as f64)));
    let equal = Op::Pointwise(Pointwise { f: Arc::new(equal) });
    let one_hot = b.emit_part(ctx, "one_hot", equal, vec![difference], one_hot)?;
    let product = Op::FullyConnected(FullyConnected {
        weights: Array::new(
            vec![width, rows],
            transpose_2d(&table.to_f32(), rows, width, 1.0),
        ),
        bias: vec![0.0; width],
        activation: FusedActivation::None,
    });
    b.emit(ctx, product, vec![one_hot], out)
}

/// ONNX `GatherND` of a computed tensor by constant indices, `batch_dims`
/// 0 (the dynamo exporter's `F.interpolate` and adaptive pooling): indices
/// `[..., k]` pick slices of the first `k` dims, so it is a Gather along one
/// axis of the data with those dims merged, between views.
pub(crate) fn gather_nd(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    if ctx.int("batch_dims", 0)? != 0 {
        return Err(ctx.attr_err("batch_dims", "only 0 is supported"));
    }
    let idx = konst(ctx, ins, 1, "indices")?;
    let Some((&k, lead)) = idx.shape.split_last() else {
        return Err(ctx.err("the indices must have rank ≥ 1"));
    };
    if k == 0 || k > xs.len() {
        return Err(ctx.err(format!(
            "indices [..., {k}] into data of shape {xs:?}: 1 to {} coordinates each",
            xs.len()
        )));
    }
    let merged: usize = xs[..k].iter().product();
    let coords = fold::ints(ctx, &idx, "indices")?;
    let list = coords
        .chunks_exact(k)
        .map(|c| {
            c.iter().zip(&xs[..k]).try_fold(0usize, |flat, (&i, &dim)| {
                let j = if i < 0 { i + dim as i64 } else { i };
                usize::try_from(j)
                    .ok()
                    .filter(|&j| j < dim)
                    .map(|j| flat * dim + j)
                    .ok_or_else(|| ctx.err(format!("index {i} is out of range for a dim of {dim}")))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut flat = vec![merged];
    flat.extend(&xs[k..]);
    let mut picked = vec![list.len()];
    picked.extend(&xs[k..]);
    let mut out = lead.to_vec();
    out.extend(&xs[k..]);
    let src = if flat == xs {
        x
    } else {
        b.emit_part(ctx, "merged", Op::Reshape, vec![x], flat)?
    };
    let select = Op::Select(Select {
        axis: 0,
        index: Index::List(list),
    });
    if picked == out {
        return b.emit(ctx, select, vec![src], out);
    }
    let t = b.emit_part(ctx, "picked", select, vec![src], picked)?;
    b.emit(ctx, Op::Reshape, vec![t], out)
}

/// Most runs a ScatterND may become: each is one Gather and one Concat part.
const MAX_SCATTER_RUNS: usize = 256;

/// `len` consecutive elements, from `start`, of a flattened tensor: what a
/// ScatterND's output is assembled from (see [`Builder::assembled`]).
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub src: RunSource,
    pub start: usize,
    pub len: usize,
}

/// The flattened tensor a [`Run`] reads.
#[derive(Clone, Debug)]
pub(crate) enum RunSource {
    /// A computed tensor's flat view `[n]`.
    Flat(TensorId),
    /// A constant's values.
    Const(Rc<Vec<f32>>),
}

/// ONNX `ScatterND` with constant indices (PyTorch's slice assignment,
/// `out[:, :-1, :fold] = x[:, 1:, :fold]`, as TS-CAN's temporal shift writes
/// it into a `zeros_like`): every output element is then a known element of
/// `data` or of `updates`, so the output is the Concat of the runs it takes
/// from either (both flattened; a run from a constant is a constant), viewed
/// in `data`'s shape. When `data` is itself a ScatterND's output, its runs
/// are read through, so a chain of slice assignments is one Concat. A later
/// index wins over an earlier one, as ONNX Runtime does. A `reduction`
/// (`add`, `mul`, `max`, `min`) first combines the updates with the data
/// they land on (a Gather of those elements and one elementwise op); it
/// refuses a repeated index. Indices that scatter into more than 256 runs
/// are refused.
pub(crate) fn scatter_nd(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    use super::binary::{Binary, BinaryOp};
    use super::elementwise::{Add, Mul};
    let combine = match ctx.string("reduction")?.as_deref() {
        None | Some("none") => None,
        Some("add") => Some(Op::Add(Add {
            activation: FusedActivation::None,
        })),
        Some("mul") => Some(Op::Mul(Mul {
            activation: FusedActivation::None,
        })),
        Some("max") => Some(Op::Binary(Binary { op: BinaryOp::Max })),
        Some("min") => Some(Op::Binary(Binary { op: BinaryOp::Min })),
        Some(r) => {
            return Err(ctx.attr_err(
                "reduction",
                format!("{r:?}: medq takes none, add, mul, max and min"),
            ))
        }
    };
    let data = input(ctx, ins, 0)?;
    let updates = input(ctx, ins, 2)?;
    let ds = b.shape_of(&data.value);
    let us = b.shape_of(&updates.value);
    let idx = konst(ctx, ins, 1, "indices")?;
    let Some((&k, lead)) = idx.shape.split_last() else {
        return Err(ctx.err("the indices must have rank ≥ 1"));
    };
    if k == 0 || k > ds.len() {
        return Err(ctx.err(format!(
            "indices [..., {k}] into data of shape {ds:?}: 1 to {} coordinates each",
            ds.len()
        )));
    }
    let mut want = lead.to_vec();
    want.extend(&ds[k..]);
    if us != want {
        return Err(ctx.err(format!(
            "updates of shape {us:?} for indices {:?} into data {ds:?}: ONNX needs {want:?}",
            idx.shape
        )));
    }
    let n: usize = ds.iter().product();
    // Each index tuple's flat offset into data.
    let st = strides(&ds);
    let chunk: usize = ds[k..].iter().product();
    let coords = fold::ints(ctx, &idx, "indices")?;
    let offsets = coords
        .chunks_exact(k)
        .map(|c| {
            c.iter()
                .zip(&ds)
                .zip(&st)
                .try_fold(0usize, |at, ((&i, &dim), &stride)| {
                    let j = if i < 0 { i + dim as i64 } else { i };
                    usize::try_from(j)
                        .ok()
                        .filter(|&j| j < dim)
                        .map(|j| at + j * stride)
                        .ok_or_else(|| {
                            ctx.err(format!("index {i} is out of range for a dim of {dim}"))
                        })
                })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let updates_value = match combine {
        None => updates.value.clone(),
        Some(op) => {
            let mut seen = std::collections::HashSet::new();
            if !offsets.iter().all(|o| seen.insert(*o)) {
                return Err(ctx.err(
                    "a repeated index with a reduction: medq combines each update with the data \
                     once",
                ));
            }
            // The data each update lands on, then the combination.
            let positions: Vec<usize> = offsets.iter().flat_map(|&at| at..at + chunk).collect();
            let landed = match &data.value {
                Value::Const(c) => {
                    let v = c.to_f32();
                    let picked = positions.iter().map(|&p| v[p]).collect();
                    b.const_tensor(
                        &format!("{}/landed", ctx.name),
                        &Const::f32(us.clone(), picked),
                    )?
                }
                Value::Act(id) => {
                    let flat = b.emit_part(ctx, "data_flat", Op::Reshape, vec![*id], vec![n])?;
                    let pick = Op::Select(Select {
                        axis: 0,
                        index: Index::List(positions),
                    });
                    let picked =
                        b.emit_part(ctx, "landed", pick, vec![flat], vec![us.iter().product()])?;
                    b.emit_part(ctx, "landed_view", Op::Reshape, vec![picked], us.clone())?
                }
                Value::Unavailable(_) => return Err(ctx.err("input is unavailable")),
            };
            let upd = super::onnx::tensor_of(b, ctx, updates)?;
            Value::Act(b.emit_part(ctx, "combined", op, vec![landed, upd], us.clone())?)
        }
    };
    // The sources, each flattened once when a run first reads it.
    let mut sources: Vec<RunSource> = Vec::new();
    let flat_of = |b: &mut Builder, v: &Value, part: &str| -> Result<RunSource, ConvertError> {
        Ok(match v {
            Value::Const(c) => RunSource::Const(Rc::new(c.to_f32())),
            Value::Act(id) => {
                let total: usize = b.shape_of(v).iter().product();
                RunSource::Flat(b.emit_part(ctx, part, Op::Reshape, vec![*id], vec![total])?)
            }
            Value::Unavailable(_) => return Err(ctx.err("input is unavailable")),
        })
    };
    // Where each output element comes from: (source, flat offset).
    let mut from: Vec<(usize, usize)> = Vec::with_capacity(n);
    let through = match &data.value {
        Value::Act(id) => b.assembled.get(id).cloned(),
        _ => None,
    };
    match through {
        Some(runs) => {
            for r in runs.iter() {
                sources.push(r.src.clone());
                let s = sources.len() - 1;
                from.extend((r.start..r.start + r.len).map(|o| (s, o)));
            }
        }
        None => {
            sources.push(flat_of(b, &data.value, "data")?);
            from.extend((0..n).map(|o| (sources.len() - 1, o)));
        }
    }
    sources.push(flat_of(b, &updates_value, "updates")?);
    let u = sources.len() - 1;
    for (t, &at) in offsets.iter().enumerate() {
        for e in 0..chunk {
            from[at + e] = (u, t * chunk + e);
        }
    }
    // Maximal runs of consecutive elements of one source (sources that are
    // the same tensor count as one).
    let same = |a: usize, c: usize| match (&sources[a], &sources[c]) {
        (RunSource::Flat(x), RunSource::Flat(y)) => x == y,
        (RunSource::Const(x), RunSource::Const(y)) => Rc::ptr_eq(x, y),
        _ => false,
    };
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (src, off) in from {
        match runs.last_mut() {
            Some((s, start, len)) if same(*s, src) && *start + *len == off => *len += 1,
            _ => runs.push((src, off, 1)),
        }
    }
    if runs.len() > MAX_SCATTER_RUNS {
        return Err(ctx.err(format!(
            "the indices scatter into {} runs of consecutive elements; medq takes up to \
             {MAX_SCATTER_RUNS} (slice assignments)",
            runs.len()
        )));
    }
    let mut parts = Vec::with_capacity(runs.len());
    let mut assembled = Vec::with_capacity(runs.len());
    for (i, &(s, start, len)) in runs.iter().enumerate() {
        let part = match &sources[s] {
            RunSource::Const(values) => {
                let c = Const::f32(vec![len], values[start..start + len].to_vec());
                b.const_tensor(&format!("{}/run{i}", ctx.name), &c)?
            }
            RunSource::Flat(whole) => {
                let total: usize = b.shape_of(&Value::Act(*whole)).iter().product();
                if start == 0 && len == total {
                    *whole
                } else {
                    let run = Op::Select(Select {
                        axis: 0,
                        index: Index::Range { start, step: 1 },
                    });
                    b.emit_part(ctx, &format!("run{i}"), run, vec![*whole], vec![len])?
                }
            }
        };
        parts.push(part);
        assembled.push(Run {
            src: sources[s].clone(),
            start,
            len,
        });
    }
    let joined = match parts[..] {
        [only] => only,
        _ => b.emit_part(
            ctx,
            "joined",
            Op::Concat(super::concat::Concat { axis: 0 }),
            parts,
            vec![n],
        )?,
    };
    let out = b.emit(ctx, Op::Reshape, vec![joined], ds)?;
    if let Value::Act(id) = out {
        b.assembled.insert(id, Rc::new(assembled));
    }
    Ok(out)
}

/// ONNX `Split` of a computed tensor: one Select per output (`split` as
/// attribute before opset 13, constant input from it on; else equal parts,
/// opset 18's `num_outputs` included). A constant splits into constants.
pub(crate) fn split(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    /// What the parts are taken from.
    enum Source {
        Constant(Rc<Const>),
        Computed(TensorId),
    }
    let (source, xs) = match &input(ctx, ins, 0)?.value {
        Value::Const(c) => (Source::Constant(Rc::clone(c)), c.shape.clone()),
        _ => {
            let (x, xs) = act(b, ctx, ins, 0)?;
            (Source::Computed(x), xs)
        }
    };
    let r = xs.len();
    let axis = norm_axis(ctx.int("axis", 0)?, r)
        .ok_or_else(|| ctx.attr_err("axis", format!("out of range for rank {r}")))?;
    let n_out = ctx.pb.output.len();
    let sizes: Vec<usize> = match if ctx.opset < 13 {
        ctx.ints("split")?
    } else {
        opt_konst(ctx, ins, 1, "split")?
            .map(|c| fold::ints(ctx, &c, "split").map(<[i64]>::to_vec))
            .transpose()?
    } {
        Some(v) => v
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ctx.attr_err("split", format!("{v:?}: a part cannot be negative")))?,
        None => {
            let part = xs[axis].div_ceil(n_out.max(1));
            (0..n_out)
                .map(|k| part.min(xs[axis].saturating_sub(k * part)))
                .collect()
        }
    };
    if sizes.len() != n_out || sizes.iter().sum::<usize>() != xs[axis] {
        return Err(ctx.attr_err(
            "split",
            format!(
                "{sizes:?} does not split an axis of {} into {n_out} parts",
                xs[axis]
            ),
        ));
    }
    // The primary output's value is returned for the caller to bind; the
    // others are bound as they are made.
    let primary = ctx.primary_output();
    let in_strides = strides(&xs);
    let mut start = 0;
    let mut returned = None;
    for (k, &size) in sizes.iter().enumerate() {
        let mut out = xs.clone();
        out[axis] = size;
        let v = match &source {
            Source::Constant(c) => {
                let idx = gather_indices(&out, |a, i| {
                    (i + if a == axis { start } else { 0 }) * in_strides[a]
                });
                b.const_output(ctx, k, fold::take(c, out, &idx))?
            }
            Source::Computed(_) if size == 0 => {
                b.const_output(ctx, k, Const::f32(out, Vec::new()))?
            }
            Source::Computed(x) => {
                let op = Op::Select(Select {
                    axis,
                    index: Index::Range { start, step: 1 },
                });
                b.emit_output(ctx, k, op, vec![*x], out)?
            }
        };
        if k == primary {
            returned = Some(v);
        }
        start += size;
    }
    returned.ok_or_else(|| ctx.err("the node has no output"))
}

impl IrOp for Select {
    fn kind(&self) -> &'static str {
        "Gather"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, xs) = cx.input(0)?;
        let outer: usize = xs.iter().take(self.axis).product();
        let inner: usize = xs.iter().skip(self.axis + 1).product();
        let len = xs.get(self.axis).copied().unwrap_or(1);
        let count = cx.output_shape.iter().product::<usize>() / (outer * inner).max(1);
        let mut out = Vec::with_capacity(outer * count * inner);
        for o in 0..outer {
            for k in 0..count {
                let at = (o * len + self.index.at(k)) * inner;
                out.extend_from_slice(&x[at..at + inner]);
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    /// A range: words axis, start, step. A list: an `i32` index constant,
    /// start = step = 0. A Gather that dropped its axis keeps it in the
    /// `.mq` op (length 1), as the runtime's shapes are the same bytes.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, _) = cx.activation(0)?;
        let mut p = [0; w::COUNT];
        p[w::AXIS] = self.axis as i32;
        let mut inputs = vec![x];
        match &self.index {
            Index::Range { start, step } => {
                p[w::START] = i32::try_from(*start).map_err(|_| cx.err("slice start too large"))?;
                p[w::STEP] = i32::try_from(*step).map_err(|_| cx.err("slice step too large"))?;
            }
            Index::List(v) => {
                let idx = v
                    .iter()
                    .map(|&i| i32::try_from(i).unwrap_or(i32::MAX))
                    .collect();
                inputs.push(int_const(format!("{}.indices", cx.node.name), idx));
            }
        }
        Ok(Lowered {
            opcode: OpCode::Gather,
            inputs,
            params: p.to_vec(),
        })
    }

    fn macs(&self, _: &Graph, _: &Node) -> u64 {
        0
    }

    fn parameters(&self) -> usize {
        0
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, attr_s, floats, int64s, node_of, one_node};

    #[test]
    fn scatter_nd_by_constant_indices_is_a_concat_of_runs() {
        // A slice assignment into a computed tensor, `x[0, 1] = c; x[0, 3] =
        // c` (indices [2, 2], updates [2, 3, 5] constant); x written into
        // zeros, `out[0, 2] = x[0]` (indices [1, 2] into [1, 4, 3, 5]); and
        // the last of a repeated index wins.
        let c: Vec<f32> = (0..30).map(|v| v as f32 / 10.0 - 1.0).collect();
        let into_x = one_node(
            "ScatterND",
            &[1, 4, 3, 5],
            &["idx", "c"],
            vec![],
            vec![
                int64s("idx", &[2, 2], &[0, 1, 0, 3]),
                floats("c", &[2, 3, 5], &c),
            ],
        );
        let g = assert_conforms("ScatterND into x", &into_x, 35.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.def().kind()).collect();
        assert_eq!(
            kinds.iter().filter(|&&k| k == "Concat").count(),
            1,
            "{kinds:?}"
        );
        let shift = node_of(
            "ScatterND",
            &[1, 3, 5],
            &["zeros", "idx", "x"],
            vec![],
            vec![
                floats("zeros", &[1, 4, 3, 5], &[0.0; 60]),
                int64s("idx", &[1, 2], &[0, 2]),
            ],
        );
        assert_conforms("ScatterND of x into zeros", &shift, 35.0);
        let repeated = one_node(
            "ScatterND",
            &[1, 4, 3, 5],
            &["idx", "c"],
            vec![],
            vec![
                int64s("idx", &[2, 2], &[0, 1, 0, 1]),
                floats("c", &[2, 3, 5], &c),
            ],
        );
        assert_conforms("ScatterND of a repeated index", &repeated, 35.0);
        for reduction in ["add", "mul", "max", "min"] {
            let reduced = one_node(
                "ScatterND",
                &[1, 4, 3, 5],
                &["idx", "c"],
                vec![attr_s("reduction", reduction)],
                vec![
                    int64s("idx", &[2, 2], &[0, 3, 0, 1]),
                    floats("c", &[2, 3, 5], &c),
                ],
            );
            assert_conforms(reduction, &reduced, 30.0);
        }
        let twice = one_node(
            "ScatterND",
            &[1, 4, 3, 5],
            &["idx", "c"],
            vec![attr_s("reduction", "add")],
            vec![
                int64s("idx", &[2, 2], &[0, 1, 0, 1]),
                floats("c", &[2, 3, 5], &c),
            ],
        );
        let err = crate::ops::testing::load(&twice).unwrap_err().to_string();
        assert!(err.contains("repeated index"), "{err}");
    }

    /// `table[idx]` with `idx = int64(floor(2·(x + 2)))`, 0 to 7 for `x` in
    /// [−2, 2): an embedding of a computed categorical index.
    fn embedding_model(table_shape: &[i64]) -> tract_onnx::pb::ModelProto {
        let n: i64 = table_shape.iter().product();
        let table: Vec<f32> = (0..n).map(|v| ((v * 7) % 11) as f32 / 4.0 - 1.0).collect();
        let mut model = one_node(
            "Add",
            &[1, 6],
            &["two"],
            vec![],
            vec![
                floats("two", &[], &[2.0]),
                floats("table", table_shape, &table),
            ],
        );
        let graph = model.graph.as_mut().unwrap();
        graph.node[0].output = vec!["shifted".into()];
        use crate::ops::testing::node;
        graph.node.extend([
            node("Mul", &["shifted", "two"], "scaled", vec![]),
            node("Floor", &["scaled"], "floored", vec![]),
            node("Cast", &["floored"], "index", vec![attr_i("to", 7)]),
            node("Gather", &["table", "index"], "y", vec![]),
        ]);
        model
    }

    #[test]
    fn an_embedding_of_a_computed_index_is_a_one_hot_product() {
        // The float meaning is tract's. In int8 an `x` within half a step of
        // a floor's boundary (1 in 32 here) picks the neighbouring row: the
        // SQNR is the index's, not the embedding's (exact on an integer
        // input: `e2e_io.rs`'s `lead_embedding`).
        let g = assert_conforms("embedding", &embedding_model(&[8, 5]), 12.0);
        let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds, ["Lut", "Reshape", "Sub", "Lut", "FullyConnected"]);
        for (shape, why) in [(&[8, 5, 2][..], "[rows, width]"), (&[129, 2], "up to 128")] {
            let err = crate::ops::testing::load(&embedding_model(shape))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn gather_by_a_matrix_of_indices_frames_a_signal() {
        // x.unfold(-1, 4, 2) on [1, 2, 10] as the dynamo exporter writes it:
        // Gather on axis 2 by [[0..4], [2..6], [4..8], [6..10]] → [1, 2, 4, 4];
        // and a [2, 3] matrix on axis 1 of [1, 5, 3], negatives included.
        let frames: Vec<i64> = (0..4)
            .flat_map(|f| (0..4).map(move |k| 2 * f + k))
            .collect();
        for (shape, axis, idx_shape, idx, out) in [
            (
                &[1, 2, 10][..],
                2,
                &[4, 4][..],
                &frames[..],
                &[1, 2, 4, 4][..],
            ),
            (&[1, 5, 3], 1, &[2, 3], &[4, 0, -1, 2, 2, 1], &[1, 2, 3, 3]),
        ] {
            let model = one_node(
                "Gather",
                shape,
                &["indices"],
                vec![attr_i("axis", axis)],
                vec![int64s("indices", idx_shape, idx)],
            );
            let g = assert_conforms("Gather by a matrix", &model, 40.0);
            assert_eq!(
                g.tensors[g.outputs[0]].shape,
                out.iter().map(|&d| d as usize).collect::<Vec<_>>()
            );
            let kinds: Vec<_> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert_eq!(kinds, ["Gather", "Reshape"]);
        }
    }

    #[test]
    fn gather_nd_by_constant_indices_runs_as_a_gather() {
        // Pairs of the first two dims: [1, 4, 3] by [6, 2] (positions
        // repeated, as the dynamo exporter's interpolation picks them), and
        // [1, 3, 4] by [2, 2, 2]. (tract, the reference here, panics on a
        // negative index, which the lowering takes.)
        for (shape, idx_shape, idx, out) in [
            (
                &[1, 4, 3][..],
                &[6, 2][..],
                &[0, 0, 0, 1, 0, 1, 0, 2, 0, 3, 0, 3][..],
                &[6, 3][..],
            ),
            (
                &[1, 3, 4],
                &[2, 2, 2],
                &[0, 2, 0, 0, 0, 1, 0, 1],
                &[2, 2, 4],
            ),
        ] {
            let model = one_node(
                "GatherND",
                shape,
                &["indices"],
                vec![],
                vec![int64s("indices", idx_shape, idx)],
            );
            let g = assert_conforms("GatherND", &model, 40.0);
            assert_eq!(
                g.tensors[g.outputs[0]].shape,
                out.iter().map(|&d| d as usize).collect::<Vec<_>>()
            );
            assert_eq!(
                g.nodes.iter().filter(|n| n.op.kind() == "Gather").count(),
                1
            );
        }
    }

    #[test]
    fn tile_of_a_computed_tensor_runs_as_gathers() {
        // [1, 2, 3] by [1, 3, 1], by [1, 2, 2] and by [1, 1, 1] (a view).
        for (repeats, gathers, out) in [
            (&[1, 3, 1][..], 1, &[1, 6, 3][..]),
            (&[1, 2, 2], 2, &[1, 4, 6]),
            (&[1, 1, 1], 0, &[1, 2, 3]),
        ] {
            let model = one_node(
                "Tile",
                &[1, 2, 3],
                &["repeats"],
                vec![],
                vec![int64s("repeats", &[3], repeats)],
            );
            let g = assert_conforms("Tile", &model, 40.0);
            let n = g.nodes.iter().filter(|n| n.op.kind() == "Gather").count();
            assert_eq!(n, gathers, "{repeats:?}");
            assert_eq!(
                g.tensors[g.outputs[0]].shape,
                out.iter().map(|&d| d as usize).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn tile_refuses_repeats_that_do_not_fit() {
        for (repeats, why) in [
            (&[1, 2][..], "has 2 entries for an input of rank 3"),
            (&[1, 0, 1], "each must be at least 1"),
        ] {
            let model = one_node(
                "Tile",
                &[1, 2, 3],
                &["repeats"],
                vec![],
                vec![int64s("repeats", &[repeats.len() as i64], repeats)],
            );
            let err = crate::ops::testing::load(&model).unwrap_err().to_string();
            assert!(err.contains(why), "{repeats:?}: {err}");
        }
    }

    #[test]
    fn expand_of_a_computed_tensor_runs_as_gathers() {
        // [1, 1, 5] to [1, 3, 5]; [1, 3, 1] to [1, 2, 3, 4] (a new axis).
        for (shape, target, gathers) in [
            (&[1, 1, 5][..], &[1, 3, 5][..], 1),
            (&[1, 3, 1], &[1, 2, 3, 4], 2),
        ] {
            let model = one_node(
                "Expand",
                shape,
                &["shape"],
                vec![],
                vec![int64s("shape", &[target.len() as i64], target)],
            );
            let g = assert_conforms("Expand", &model, 40.0);
            let n = g.nodes.iter().filter(|n| n.op.kind() == "Gather").count();
            assert_eq!(n, gathers, "{shape:?} → {target:?}");
            assert_eq!(
                g.tensors[g.outputs[0]].shape,
                target.iter().map(|&d| d as usize).collect::<Vec<_>>()
            );
        }
    }
}
