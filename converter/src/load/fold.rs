//! Constant folding: evaluators for the ops that appear in exported shape
//! arithmetic (`Shape → Gather → Unsqueeze → Concat → Reshape`) and in
//! constant weight preprocessing. Only nodes whose inputs are all constants
//! get here.

use super::node::{norm_axis, NodeCtx};
use super::shape::{
    broadcast, broadcast_indices, gather_indices, nonzero_product, numel, permutation, strides,
};
use super::tensor::{Const, Data};
use crate::error::ConvertError;
use crate::ir::Unary;

/// Ops medq evaluates only at conversion time: on activations they have no
/// `.mq` equivalent.
pub const CONST_ONLY_OPS: &[&str] = &[
    "Abs",
    "And",
    "Ceil",
    "ConstantOfShape",
    "Equal",
    "Exp",
    "Expand",
    "Floor",
    "Gather",
    "Greater",
    "GreaterOrEqual",
    "IsInf",
    "IsNaN",
    "Less",
    "LessOrEqual",
    "Log",
    "Max",
    "Min",
    "Mod",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "Range",
    "ReduceMin",
    "ReduceProd",
    "Reciprocal",
    "Round",
    "Slice",
    "Sqrt",
    "Trilu",
    "Where",
    "Xor",
];

/// Evaluate `ctx` over constant inputs. `Ok(None)`: no evaluator for this op.
pub fn eval(ctx: &NodeCtx, inputs: &[Option<&Const>]) -> Result<Option<Const>, ConvertError> {
    let input = |i: usize| -> Result<&Const, ConvertError> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| ctx.err(format!("input {i} is missing")))
    };
    let r = match ctx.op {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater"
        | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" => {
            binary(ctx, ctx.op, input(0)?, input(1)?)?
        }
        "Min" | "Max" => {
            let mut acc = input(0)?.clone();
            for i in 1..inputs.len() {
                acc = binary(ctx, ctx.op, &acc, input(i)?)?;
            }
            acc
        }
        "Where" => where_(ctx, input(0)?, input(1)?, input(2)?)?,
        "Neg" | "Abs" | "Sqrt" | "Reciprocal" | "Floor" | "Ceil" | "Round" | "Exp" | "Log"
        | "Not" => unary_math(ctx, input(0)?)?,
        "IsNaN" | "IsInf" => {
            let x = input(0)?;
            let (neg, pos) = (
                ctx.int("detect_negative", 1)? != 0,
                ctx.int("detect_positive", 1)? != 0,
            );
            let test = |v: f32| match ctx.op {
                "IsNaN" => v.is_nan(),
                _ => v.is_infinite() && if v > 0.0 { pos } else { neg },
            };
            Const::i64(
                x.shape.clone(),
                x.to_f32().into_iter().map(|v| i64::from(test(v))).collect(),
            )
        }
        "Trilu" => trilu(ctx, input(0)?, inputs.get(1).copied().flatten())?,
        "Relu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "HardSigmoid" | "HardSwish" => {
            let u = match ctx.op {
                "Relu" => Unary::Relu,
                "Sigmoid" => Unary::Sigmoid,
                "Tanh" => Unary::Tanh,
                "LeakyRelu" => Unary::LeakyRelu {
                    alpha: ctx.float("alpha", 0.01)?,
                },
                "HardSigmoid" => Unary::HardSigmoid {
                    alpha: ctx.float("alpha", 0.2)?,
                    beta: ctx.float("beta", 0.5)?,
                },
                _ => Unary::HardSwish,
            };
            let x = input(0)?;
            Const::f32(
                x.shape.clone(),
                x.to_f32().into_iter().map(|v| u.apply(v)).collect(),
            )
        }
        "Clip" => {
            let x = input(0)?;
            let bound = |i: usize, attr: &str, default: f32| -> Result<f32, ConvertError> {
                if ctx.opset < 11 {
                    return ctx.float(attr, default);
                }
                match inputs.get(i).copied().flatten() {
                    None => Ok(default),
                    Some(c) => c
                        .scalar_f32()
                        .ok_or_else(|| ctx.err(format!("the {attr} must be a scalar"))),
                }
            };
            let (lo, hi) = (
                bound(1, "min", f32::NEG_INFINITY)?,
                bound(2, "max", f32::INFINITY)?,
            );
            match &x.data {
                Data::I64(v) => Const::i64(
                    x.shape.clone(),
                    v.iter()
                        .map(|&e| (e as f32).max(lo).min(hi) as i64)
                        .collect(),
                ),
                Data::F32(v) => Const::f32(
                    x.shape.clone(),
                    v.iter().map(|&e| e.max(lo).min(hi)).collect(),
                ),
            }
        }
        "Concat" => {
            let all = (0..inputs.len())
                .map(input)
                .collect::<Result<Vec<_>, _>>()?;
            concat(ctx, &all)?
        }
        "Gather" => gather(ctx, input(0)?, input(1)?)?,
        "Slice" => slice(ctx, inputs)?,
        "Expand" => {
            let (x, s) = (input(0)?, input(1)?);
            let spec = ints(ctx, s, "shape")?;
            let target = spec
                .iter()
                .map(|&d| {
                    usize::try_from(d)
                        .map_err(|_| ctx.err(format!("invalid Expand shape {spec:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = broadcast(&x.shape, &target)
                .ok_or_else(|| ctx.err(format!("cannot expand {:?} to {spec:?}", x.shape)))?;
            check_size(ctx, &out)?;
            take(x, out.clone(), &broadcast_indices(&x.shape, &out))
        }
        "Tile" => {
            let (x, r) = (input(0)?, input(1)?);
            let spec = ints(ctx, r, "repeats")?;
            let repeats = spec
                .iter()
                .map(|&n| usize::try_from(n).ok())
                .collect::<Option<Vec<_>>>()
                .filter(|v| v.len() == x.shape.len())
                .ok_or_else(|| ctx.err(format!("invalid Tile repeats {spec:?}")))?;
            let out: Vec<usize> = x.shape.iter().zip(&repeats).map(|(d, r)| d * r).collect();
            check_size(ctx, &out)?;
            let in_strides = strides(&x.shape);
            take(
                x,
                out.clone(),
                &gather_indices(&out, |a, i| (i % x.shape[a]) * in_strides[a]),
            )
        }
        "Range" => range(ctx, input(0)?, input(1)?, input(2)?)?,
        "ReduceProd" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" => {
            reduce(ctx, input(0)?, inputs.get(1).copied().flatten())?
        }
        "ConstantOfShape" => {
            let spec = ints(ctx, input(0)?, "shape")?;
            let shape = spec
                .iter()
                .map(|&d| {
                    usize::try_from(d).map_err(|_| ctx.err(format!("invalid shape {spec:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            constant_of_shape(ctx, shape)?
        }
        _ => return Ok(None),
    };
    within_limit(ctx, r).map(Some)
}

/// `c`, unless it is larger than a folded constant may be.
pub fn within_limit(ctx: &NodeCtx, c: Const) -> Result<Const, ConvertError> {
    if c.len() > MAX_FOLDED_ELEMENTS {
        return Err(ctx.err(format!(
            "folding produces a constant of shape {:?}, larger than medq accepts",
            c.shape
        )));
    }
    Ok(c)
}

/// Folded constants are shapes, indices and weights; anything bigger than
/// this is a malformed model, not a reason to exhaust memory.
const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

/// Check a shape about to be materialized. Zero dims are skipped in the
/// bound: a shape like `[2^60, 0]` has no elements, but loops over its
/// outer dims would still run 2^60 times (a fuzzer finding: a hang).
fn check_size(ctx: &NodeCtx, shape: &[usize]) -> Result<(), ConvertError> {
    match nonzero_product(shape) {
        Some(n) if n <= MAX_FOLDED_ELEMENTS => Ok(()),
        _ => Err(ctx.err(format!(
            "folding produces a constant of shape {shape:?}, larger than medq accepts"
        ))),
    }
}

/// `ConstantOfShape`: `value` (a one-element tensor) or float 0.
pub fn constant_of_shape(ctx: &NodeCtx, shape: Vec<usize>) -> Result<Const, ConvertError> {
    check_size(ctx, &shape)?;
    let n = numel(&shape);
    match ctx.tensor("value")? {
        None => Ok(Const::f32(shape, vec![0.0; n])),
        Some(t) => {
            let v = super::tensor::from_proto(t).map_err(|e| ctx.attr_err("value", e))?;
            match &v.data {
                Data::F32(d) if d.len() == 1 => Ok(Const::f32(shape, vec![d[0]; n])),
                Data::I64(d) if d.len() == 1 => Ok(Const::i64(shape, vec![d[0]; n])),
                _ => Err(ctx.attr_err("value", "must hold exactly one value")),
            }
        }
    }
}

/// The integer contents of a shape/axes/indices constant.
pub fn ints<'c>(ctx: &NodeCtx, c: &'c Const, what: &str) -> Result<&'c [i64], ConvertError> {
    c.as_i64()
        .ok_or_else(|| ctx.err(format!("the {what} operand must be an integer tensor")))
}

/// `ReduceProd`, `ReduceSum`, `ReduceMean`, `ReduceMax`, `ReduceMin` of a
/// constant (`x.numel()` and `x.std()` exports take the product of a
/// `Shape`): axes from the attribute or, from opset 18 (ReduceSum 13), the
/// second input; `keepdims`; no axes reduce every axis, or none with
/// `noop_with_empty_axes`. Integers stay integers (checked arithmetic).
fn reduce(ctx: &NodeCtx, x: &Const, axes_input: Option<&Const>) -> Result<Const, ConvertError> {
    let r = x.shape.len();
    let listed: Vec<i64> = match axes_input {
        Some(a) => ints(ctx, a, "axes")?.to_vec(),
        None => ctx.ints("axes")?.unwrap_or_default(),
    };
    let axes: Vec<usize> = if listed.is_empty() {
        if ctx.int("noop_with_empty_axes", 0)? != 0 {
            return Ok(x.clone());
        }
        (0..r).collect()
    } else {
        listed
            .iter()
            .map(|&a| {
                norm_axis(a, r).ok_or_else(|| ctx.attr_err("axes", format!("{a} out of range")))
            })
            .collect::<Result<_, _>>()?
    };
    let keep = ctx.int("keepdims", 1)? != 0;
    let out_full: Vec<usize> = (0..r)
        .map(|d| if axes.contains(&d) { 1 } else { x.shape[d] })
        .collect();
    let out_shape: Vec<usize> = (0..r)
        .filter(|d| keep || !axes.contains(d))
        .map(|d| out_full[d])
        .collect();
    // Each input element's output index (the reduced axes dropped).
    let st = strides(&out_full);
    let dest = gather_indices(&x.shape, |axis, i| {
        if axes.contains(&axis) {
            0
        } else {
            i * st[axis]
        }
    });
    let n_out = numel(&out_full);
    let count = numel(&x.shape) / n_out.max(1);
    let overflow = || ctx.err("integer overflow while folding a reduction");
    Ok(match &x.data {
        Data::I64(v) => {
            let init = match ctx.op {
                "ReduceProd" => 1,
                "ReduceMax" => i64::MIN,
                "ReduceMin" => i64::MAX,
                _ => 0,
            };
            let mut acc = vec![init; n_out];
            for (&d, &e) in dest.iter().zip(v) {
                acc[d] = match ctx.op {
                    "ReduceProd" => acc[d].checked_mul(e).ok_or_else(overflow)?,
                    "ReduceMax" => acc[d].max(e),
                    "ReduceMin" => acc[d].min(e),
                    _ => acc[d].checked_add(e).ok_or_else(overflow)?,
                };
            }
            if ctx.op == "ReduceMean" {
                for a in &mut acc {
                    *a /= count.max(1) as i64;
                }
            }
            Const::i64(out_shape, acc)
        }
        Data::F32(v) => {
            let init = match ctx.op {
                "ReduceProd" => 1.0,
                "ReduceMax" => f64::NEG_INFINITY,
                "ReduceMin" => f64::INFINITY,
                _ => 0.0,
            };
            let mut acc = vec![init; n_out];
            for (&d, &e) in dest.iter().zip(v) {
                let e = e as f64;
                acc[d] = match ctx.op {
                    "ReduceProd" => acc[d] * e,
                    "ReduceMax" => acc[d].max(e),
                    "ReduceMin" => acc[d].min(e),
                    _ => acc[d] + e,
                };
            }
            if ctx.op == "ReduceMean" {
                for a in &mut acc {
                    *a /= count.max(1) as f64;
                }
            }
            Const::f32(out_shape, acc.into_iter().map(|a| a as f32).collect())
        }
    })
}

/// A new constant of `shape` whose elements are `c`'s at flat indices `idx`.
pub fn take(c: &Const, shape: Vec<usize>, idx: &[usize]) -> Const {
    let data = match &c.data {
        Data::F32(v) => Data::F32(
            idx.iter()
                .map(|&i| v.get(i).copied().unwrap_or(0.0))
                .collect(),
        ),
        Data::I64(v) => Data::I64(
            idx.iter()
                .map(|&i| v.get(i).copied().unwrap_or(0))
                .collect(),
        ),
    };
    Const { shape, data }
}

pub fn transpose(ctx: &NodeCtx, c: &Const, perm: Option<&[i64]>) -> Result<Const, ConvertError> {
    let p = permutation(perm, c.shape.len()).map_err(|e| ctx.attr_err("perm", e))?;
    let in_strides = strides(&c.shape);
    let out: Vec<usize> = p.iter().map(|&a| c.shape[a]).collect();
    let idx = gather_indices(&out, |axis, i| i * in_strides[p[axis]]);
    Ok(take(c, out, &idx))
}

fn binary(ctx: &NodeCtx, op: &str, a: &Const, b: &Const) -> Result<Const, ConvertError> {
    let out = broadcast(&a.shape, &b.shape).ok_or_else(|| {
        ctx.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })?;
    check_size(ctx, &out)?;
    let ia = broadcast_indices(&a.shape, &out);
    let ib = broadcast_indices(&b.shape, &out);
    let compare = matches!(
        op,
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual"
    );
    let data = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => {
            let mut r = Vec::with_capacity(ia.len());
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (
                    x.get(i).copied().unwrap_or(0),
                    y.get(j).copied().unwrap_or(0),
                );
                let v = match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    // ONNX integer division truncates (as C does).
                    "Div" => p.checked_div(q),
                    "Mod" => p.checked_rem(q),
                    "Pow" => u32::try_from(q).ok().and_then(|q| p.checked_pow(q)),
                    "Min" => Some(p.min(q)),
                    "Max" => Some(p.max(q)),
                    "Equal" => Some(i64::from(p == q)),
                    "Less" => Some(i64::from(p < q)),
                    "Greater" => Some(i64::from(p > q)),
                    "LessOrEqual" => Some(i64::from(p <= q)),
                    "GreaterOrEqual" => Some(i64::from(p >= q)),
                    "And" => Some(i64::from(p != 0 && q != 0)),
                    "Or" => Some(i64::from(p != 0 || q != 0)),
                    "Xor" => Some(i64::from((p != 0) != (q != 0))),
                    _ => None,
                };
                r.push(v.ok_or_else(|| {
                    ctx.err(format!(
                        "integer {op} of {p} and {q} is undefined or overflows"
                    ))
                })?);
            }
            Data::I64(r)
        }
        _ => {
            let (x, y) = (a.to_f32(), b.to_f32());
            let mut r = Vec::with_capacity(ia.len());
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (
                    x.get(i).copied().unwrap_or(0.0),
                    y.get(j).copied().unwrap_or(0.0),
                );
                r.push(match op {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    "Div" => p / q,
                    "Mod" => p % q,
                    "Pow" => p.powf(q),
                    "Min" => p.min(q),
                    "Max" => p.max(q),
                    "Equal" => f32::from(u8::from(p == q)),
                    "Less" => f32::from(u8::from(p < q)),
                    "Greater" => f32::from(u8::from(p > q)),
                    "LessOrEqual" => f32::from(u8::from(p <= q)),
                    "GreaterOrEqual" => f32::from(u8::from(p >= q)),
                    _ => return Err(ctx.err(format!("{op} is not defined on float tensors"))),
                });
            }
            if compare {
                Data::I64(r.into_iter().map(|v| v as i64).collect())
            } else {
                Data::F32(r)
            }
        }
    };
    Ok(Const { shape: out, data })
}

fn where_(ctx: &NodeCtx, cond: &Const, x: &Const, y: &Const) -> Result<Const, ConvertError> {
    let out = broadcast(&cond.shape, &x.shape)
        .and_then(|s| broadcast(&s, &y.shape))
        .ok_or_else(|| ctx.err("operand shapes do not broadcast"))?;
    check_size(ctx, &out)?;
    let c: Vec<bool> = cond.to_f32().into_iter().map(|v| v != 0.0).collect();
    let ic = broadcast_indices(&cond.shape, &out);
    let ix = broadcast_indices(&x.shape, &out);
    let iy = broadcast_indices(&y.shape, &out);
    let pick = |k: usize| c.get(ic[k]).copied().unwrap_or(false);
    let data = match (&x.data, &y.data) {
        (Data::I64(a), Data::I64(b)) => Data::I64(
            (0..ic.len())
                .map(|k| {
                    if pick(k) { a.get(ix[k]) } else { b.get(iy[k]) }
                        .copied()
                        .unwrap_or(0)
                })
                .collect(),
        ),
        _ => {
            let (a, b) = (x.to_f32(), y.to_f32());
            Data::F32(
                (0..ic.len())
                    .map(|k| {
                        if pick(k) { a.get(ix[k]) } else { b.get(iy[k]) }
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .collect(),
            )
        }
    };
    Ok(Const { shape: out, data })
}

fn unary_math(ctx: &NodeCtx, x: &Const) -> Result<Const, ConvertError> {
    let shape = x.shape.clone();
    Ok(match (&x.data, ctx.op) {
        (Data::I64(v), "Neg") => Const::i64(shape, v.iter().map(|&a| a.wrapping_neg()).collect()),
        (Data::I64(v), "Abs") => Const::i64(shape, v.iter().map(|&a| a.wrapping_abs()).collect()),
        (Data::I64(v), "Not") => Const::i64(shape, v.iter().map(|&a| i64::from(a == 0)).collect()),
        (Data::I64(v), "Floor" | "Ceil" | "Round") => Const::i64(shape, v.clone()),
        (_, "Not") => return Err(ctx.err("Not needs a boolean tensor")),
        _ => {
            let f: fn(f32) -> f32 = match ctx.op {
                "Neg" => |a| -a,
                "Abs" => f32::abs,
                "Sqrt" => f32::sqrt,
                "Reciprocal" => f32::recip,
                "Floor" => f32::floor,
                "Ceil" => f32::ceil,
                // ONNX rounds halves to even, as IEEE 754 does by default.
                "Round" => f32::round_ties_even,
                "Exp" => f32::exp,
                _ => f32::ln,
            };
            Const::f32(shape, x.to_f32().into_iter().map(f).collect())
        }
    })
}

/// `Trilu`: the upper (`upper` 1, the default) or lower triangle of the
/// last two axes from diagonal `k` on, the rest zero (a causal mask that
/// `torch.triu`/`torch.tril` build in `forward`; the mask of a computed
/// tensor's `Trilu`).
pub(crate) fn trilu(ctx: &NodeCtx, x: &Const, k: Option<&Const>) -> Result<Const, ConvertError> {
    let k = match k {
        None => 0,
        Some(c) => match ints(ctx, c, "k")? {
            [k] => *k,
            _ => return Err(ctx.err("k must be a scalar")),
        },
    };
    let upper = ctx.int("upper", 1)? != 0;
    let rank = x.shape.len();
    if rank < 2 {
        return Err(ctx.err(format!("input of rank {rank}: Trilu needs at least 2")));
    }
    let (rows, cols) = (x.shape[rank - 2], x.shape[rank - 1]);
    let keep = |i: usize| -> bool {
        let (r, c) = ((i / cols.max(1)) % rows.max(1), i % cols.max(1));
        let d = c as i64 - r as i64;
        if upper {
            d >= k
        } else {
            d <= k
        }
    };
    let shape = x.shape.clone();
    Ok(match &x.data {
        Data::I64(v) => Const::i64(
            shape,
            v.iter()
                .enumerate()
                .map(|(i, &e)| if keep(i) { e } else { 0 })
                .collect(),
        ),
        Data::F32(v) => Const::f32(
            shape,
            v.iter()
                .enumerate()
                .map(|(i, &e)| if keep(i) { e } else { 0.0 })
                .collect(),
        ),
    })
}

pub fn concat(ctx: &NodeCtx, parts: &[&Const]) -> Result<Const, ConvertError> {
    let first = parts
        .first()
        .ok_or_else(|| ctx.err("Concat has no inputs"))?;
    let rank = first.shape.len();
    let axis =
        norm_axis(ctx.int("axis", 0)?, rank).ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let mut out = first.shape.clone();
    out[axis] = 0;
    for p in parts {
        let same = p.shape.len() == rank
            && p.shape
                .iter()
                .enumerate()
                .all(|(i, &d)| i == axis || d == first.shape[i]);
        if !same {
            return Err(ctx.err(format!(
                "cannot concatenate shapes {:?} and {:?} on axis {axis}",
                first.shape, p.shape
            )));
        }
        out[axis] += p.shape[axis];
    }
    let outer = numel(&out[..axis]);
    let float = parts.iter().any(|p| p.is_float());
    // Mixed integer/float parts are all promoted to float.
    let floats: Vec<Vec<f32>> = if float {
        parts.iter().map(|p| p.to_f32()).collect()
    } else {
        Vec::new()
    };
    let mut f = Vec::new();
    let mut i = Vec::new();
    for o in 0..outer {
        for (k, p) in parts.iter().enumerate() {
            let chunk = numel(&p.shape[axis..]);
            let range = o * chunk..(o + 1) * chunk;
            match (&p.data, floats.get(k)) {
                (_, Some(v)) => f.extend_from_slice(v.get(range).unwrap_or(&[])),
                (Data::I64(v), None) => i.extend_from_slice(v.get(range).unwrap_or(&[])),
                (Data::F32(_), None) => {}
            }
        }
    }
    Ok(if float {
        Const::f32(out, f)
    } else {
        Const::i64(out, i)
    })
}

fn gather(ctx: &NodeCtx, data: &Const, indices: &Const) -> Result<Const, ConvertError> {
    let rank = data.shape.len();
    let axis =
        norm_axis(ctx.int("axis", 0)?, rank).ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let dim = data.shape[axis];
    let idx = ints(ctx, indices, "indices")?
        .iter()
        .map(|&k| {
            norm_axis(k, dim).ok_or_else(|| {
                ctx.err(format!(
                    "index {k} is out of range for axis {axis} of size {dim}"
                ))
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let mut out: Vec<usize> = data.shape[..axis].to_vec();
    out.extend_from_slice(&indices.shape);
    out.extend_from_slice(&data.shape[axis + 1..]);
    // Output order is (outer, index, inner): data's axes before `axis`, then
    // the index tensor's, then data's axes after `axis`.
    let inner = numel(&data.shape[axis + 1..]);
    let outer = numel(&data.shape[..axis]);
    let mut positions = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            positions.extend((0..inner).map(|r| (o * dim + j) * inner + r));
        }
    }
    Ok(take(data, out, &positions))
}

fn slice(ctx: &NodeCtx, inputs: &[Option<&Const>]) -> Result<Const, ConvertError> {
    let data = inputs
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| ctx.err("missing data input"))?;
    let rank = data.shape.len();
    let opt_ints = |i: usize, what: &str| -> Result<Option<Vec<i64>>, ConvertError> {
        match inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(c) => Ok(Some(ints(ctx, c, what)?.to_vec())),
        }
    };
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (
            ctx.ints("starts")?
                .ok_or_else(|| ctx.attr_err("starts", "missing"))?,
            ctx.ints("ends")?
                .ok_or_else(|| ctx.attr_err("ends", "missing"))?,
            ctx.ints("axes")?,
            None,
        )
    } else {
        (
            opt_ints(1, "starts")?.ok_or_else(|| ctx.err("missing starts input"))?,
            opt_ints(2, "ends")?.ok_or_else(|| ctx.err("missing ends input"))?,
            opt_ints(3, "axes")?,
            opt_ints(4, "steps")?,
        )
    };
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps: Vec<i64> = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.err("starts, ends, axes and steps differ in length"));
    }
    // Per axis: first index, step, count.
    let mut first = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    let mut out = data.shape.clone();
    for k in 0..starts.len() {
        let a = norm_axis(axes[k], rank)
            .ok_or_else(|| ctx.err(format!("axis {} is out of range", axes[k])))?;
        let dim = data.shape[a] as i64;
        let st = steps[k];
        if st == 0 {
            return Err(ctx.err("slice step 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (s, e) = if st > 0 {
            (norm(starts[k]).clamp(0, dim), norm(ends[k]).clamp(0, dim))
        } else if dim == 0 {
            (0, 0)
        } else {
            (
                norm(starts[k]).clamp(0, dim - 1),
                norm(ends[k]).clamp(-1, dim - 1),
            )
        };
        let span = if st > 0 { e - s } else { s - e };
        // ⌈span / |step|⌉, without `span + |step| − 1`, which overflows
        // for a step near i64::MAX (a fuzzer finding).
        let n = if span <= 0 {
            0
        } else {
            (span.unsigned_abs() - 1) / st.unsigned_abs() + 1
        };
        first[a] = s;
        step[a] = st;
        out[a] = n as usize;
    }
    let s = strides(&data.shape);
    let idx = gather_indices(&out, |a, i| {
        ((first[a] + i as i64 * step[a]) as usize) * s[a]
    });
    Ok(take(data, out, &idx))
}

fn range(
    ctx: &NodeCtx,
    start: &Const,
    limit: &Const,
    delta: &Const,
) -> Result<Const, ConvertError> {
    match (&start.data, &limit.data, &delta.data) {
        (Data::I64(s), Data::I64(l), Data::I64(d)) => {
            let (s, l, d) = match (s.first(), l.first(), d.first()) {
                (Some(&s), Some(&l), Some(&d)) if d != 0 => (s, l, d),
                _ => return Err(ctx.err("Range needs scalar operands and a non-zero delta")),
            };
            let n = ((l as f64 - s as f64) / d as f64).ceil().max(0.0) as usize;
            check_size(ctx, &[n])?;
            Ok(Const::i64(
                vec![n],
                (0..n as i64).map(|i| s + i * d).collect(),
            ))
        }
        _ => {
            let (s, l, d) = match (start.scalar_f32(), limit.scalar_f32(), delta.scalar_f32()) {
                (Some(s), Some(l), Some(d)) if d != 0.0 => (s, l, d),
                _ => return Err(ctx.err("Range needs scalar operands and a non-zero delta")),
            };
            let n = ((l - s) / d).ceil().max(0.0) as usize;
            check_size(ctx, &[n])?;
            Ok(Const::f32(
                vec![n],
                (0..n).map(|i| s + i as f32 * d).collect(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{AttributeProto, NodeProto};

    fn node(op: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        }
    }

    fn int_attr(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i: v,
            ..Default::default()
        }
    }

    fn run(op: &str, attrs: Vec<AttributeProto>, inputs: &[Option<&Const>]) -> Const {
        let pb = node(op, attrs);
        let ctx = NodeCtx::new(&pb, 0, 17);
        eval(&ctx, inputs).unwrap().unwrap()
    }

    #[test]
    fn reductions_of_constants() {
        // x.numel() as PyTorch exports it: ReduceProd of a Shape, keepdims 0.
        let shape = Const::i64(vec![3], vec![1, 8, 128]);
        let p = run("ReduceProd", vec![int_attr("keepdims", 0)], &[Some(&shape)]);
        assert_eq!(
            (p.shape.clone(), p.as_i64().unwrap().to_vec()),
            (vec![], vec![1024])
        );
        // [[1, 2, 3], [4, 5, 6]] over axis 1 (an input, opset 18 style), kept.
        let x = Const::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let axes = Const::i64(vec![1], vec![-1]);
        for (op, want) in [
            ("ReduceSum", [6.0, 15.0]),
            ("ReduceMean", [2.0, 5.0]),
            ("ReduceMax", [3.0, 6.0]),
            ("ReduceMin", [1.0, 4.0]),
            ("ReduceProd", [6.0, 120.0]),
        ] {
            let r = run(op, vec![], &[Some(&x), Some(&axes)]);
            assert_eq!(
                (r.shape.clone(), r.to_f32()),
                (vec![2, 1], want.to_vec()),
                "{op}"
            );
        }
        let overflow = Const::i64(vec![2], vec![i64::MAX, 2]);
        let pb = node("ReduceProd", vec![]);
        let ctx = NodeCtx::new(&pb, 0, 17);
        assert!(eval(&ctx, &[Some(&overflow)]).is_err());
    }

    #[test]
    fn causal_masks_and_rounding_fold() {
        // torch.triu(ones(3, 3), diagonal=1) and tril with k = -1 on a batch of two.
        let ones = Const::f32(vec![2, 3, 3], vec![1.0; 18]);
        let k = Const::i64(vec![], vec![1]);
        let up = run("Trilu", vec![], &[Some(&ones), Some(&k)]);
        let tri_up = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        assert_eq!(up.to_f32(), [tri_up, tri_up].concat());
        let k = Const::i64(vec![], vec![-1]);
        let low = run(
            "Trilu",
            vec![int_attr("upper", 0)],
            &[Some(&ones), Some(&k)],
        );
        let tri_low = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        assert_eq!(low.to_f32(), [tri_low, tri_low].concat());
        // A non-square integer matrix, main diagonal, upper.
        let m = Const::i64(vec![2, 3], vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            run("Trilu", vec![], &[Some(&m)]).as_i64().unwrap(),
            [1, 2, 3, 0, 5, 6]
        );
        // Halves round to even.
        let x = Const::f32(vec![5], vec![0.5, 1.5, 2.5, -0.5, 2.6]);
        assert_eq!(
            run("Round", vec![], &[Some(&x)]).to_f32(),
            [0.0, 2.0, 2.0, -0.0, 3.0]
        );
        let x = Const::f32(
            vec![4],
            vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0],
        );
        assert_eq!(
            run("IsNaN", vec![], &[Some(&x)]).as_i64().unwrap(),
            [1, 0, 0, 0]
        );
        let pos = run("IsInf", vec![int_attr("detect_negative", 0)], &[Some(&x)]);
        assert_eq!(pos.as_i64().unwrap(), [0, 1, 0, 0]);
        let (a, b) = (
            Const::i64(vec![2], vec![1, 0]),
            Const::i64(vec![2], vec![1, 1]),
        );
        assert_eq!(
            run("Xor", vec![], &[Some(&a), Some(&b)]).as_i64().unwrap(),
            [0, 1]
        );
    }

    #[test]
    fn gather_with_2d_indices_on_axis_1() {
        // data [2, 3] = [[0, 1, 2], [3, 4, 5]]; indices [[2, 0], [-1, 1]].
        let data = Const::f32(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let idx = Const::i64(vec![2, 2], vec![2, 0, -1, 1]);
        let r = run(
            "Gather",
            vec![int_attr("axis", 1)],
            &[Some(&data), Some(&idx)],
        );
        assert_eq!(r.shape, vec![2, 2, 2]);
        assert_eq!(r.to_f32(), vec![2.0, 0.0, 2.0, 1.0, 5.0, 3.0, 5.0, 4.0]);
    }

    #[test]
    fn slice_with_negative_steps_and_clamping() {
        // PyTorch's pad export reverses a pads vector with Slice(-1, -huge, -1).
        let data = Const::i64(vec![6], vec![10, 11, 12, 13, 14, 15]);
        let starts = Const::i64(vec![1], vec![-1]);
        let ends = Const::i64(vec![1], vec![i64::MIN]);
        let axes = Const::i64(vec![1], vec![0]);
        let steps = Const::i64(vec![1], vec![-2]);
        let r = run(
            "Slice",
            vec![],
            &[
                Some(&data),
                Some(&starts),
                Some(&ends),
                Some(&axes),
                Some(&steps),
            ],
        );
        assert_eq!(r, Const::i64(vec![3], vec![15, 13, 11]));
        let starts = Const::i64(vec![1], vec![1]);
        let ends = Const::i64(vec![1], vec![i64::MAX]);
        let r = run("Slice", vec![], &[Some(&data), Some(&starts), Some(&ends)]);
        assert_eq!(r, Const::i64(vec![5], vec![11, 12, 13, 14, 15]));
    }

    #[test]
    fn tile_repeats_each_axis() {
        // numpy.tile([[1, 2], [3, 4]], (2, 3)).
        let x = Const::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let reps = Const::i64(vec![2], vec![2, 3]);
        let t = run("Tile", vec![], &[Some(&x), Some(&reps)]);
        let row = |a: f32, b: f32| [a, b, a, b, a, b];
        let want: Vec<f32> = [row(1.0, 2.0), row(3.0, 4.0), row(1.0, 2.0), row(3.0, 4.0)].concat();
        assert_eq!(t, Const::f32(vec![4, 6], want));
    }

    #[test]
    fn where_equal_expand_range() {
        let shape = Const::i64(vec![3], vec![1, 0, 7]);
        let zero = Const::i64(vec![], vec![0]);
        let eq = run("Equal", vec![], &[Some(&shape), Some(&zero)]);
        assert_eq!(eq, Const::i64(vec![3], vec![0, 1, 0]));
        let ones = Const::i64(vec![3], vec![1, 1, 1]);
        let w = run("Where", vec![], &[Some(&eq), Some(&ones), Some(&shape)]);
        assert_eq!(w, Const::i64(vec![3], vec![1, 1, 7]));
        let x = Const::f32(vec![2, 1], vec![1.0, 2.0]);
        let to = Const::i64(vec![2], vec![2, 3]);
        let e = run("Expand", vec![], &[Some(&x), Some(&to)]);
        assert_eq!(
            e,
            Const::f32(vec![2, 3], vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
        );
        let (s, l, d) = (
            Const::i64(vec![], vec![5]),
            Const::i64(vec![], vec![-2]),
            Const::i64(vec![], vec![-3]),
        );
        let r = run("Range", vec![], &[Some(&s), Some(&l), Some(&d)]);
        assert_eq!(r, Const::i64(vec![3], vec![5, 2, -1]));
    }

    #[test]
    fn transpose_and_mixed_concat() {
        let pb = node("Transpose", vec![]);
        let ctx = NodeCtx::new(&pb, 0, 17);
        let x = Const::f32(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let t = transpose(&ctx, &x, None).unwrap();
        assert_eq!(
            t,
            Const::f32(vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
        );
        let a = Const::i64(vec![1, 2], vec![1, 2]);
        let b = Const::f32(vec![1, 1], vec![0.5]);
        let r = run("Concat", vec![int_attr("axis", 1)], &[Some(&a), Some(&b)]);
        assert_eq!(r, Const::f32(vec![1, 3], vec![1.0, 2.0, 0.5]));
    }

    #[test]
    fn integer_division_truncates_and_overflow_is_an_error() {
        let a = Const::i64(vec![2], vec![7, -7]);
        let b = Const::i64(vec![], vec![2]);
        assert_eq!(
            run("Div", vec![], &[Some(&a), Some(&b)]),
            Const::i64(vec![2], vec![3, -3])
        );
        let pb = node("Div", vec![]);
        let ctx = NodeCtx::new(&pb, 0, 17);
        let z = Const::i64(vec![], vec![0]);
        assert!(eval(&ctx, &[Some(&a), Some(&z)]).is_err());
        let huge = Const::i64(vec![2], vec![1 << 40, 1 << 40]);
        let pb = node("ConstantOfShape", vec![]);
        let ctx = NodeCtx::new(&pb, 0, 17);
        assert!(eval(&ctx, &[Some(&huge)]).is_err());
    }
}
