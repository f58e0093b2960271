//! ONNX ops that are constants at conversion time: `Constant`, and `Shape`
//! and `Size` of tensors whose shapes are static. They become no IR op.

use std::rc::Rc;

use super::onnx::{input, Ins};
use crate::error::ConvertError;
use crate::load::node::NodeCtx;
use crate::load::shape::numel;
use crate::load::tensor::{self, Const};
use crate::load::{Builder, Value};

/// ONNX `Constant`.
pub(crate) fn constant(_: &mut Builder, ctx: &NodeCtx, _: Ins) -> Result<Value, ConvertError> {
    Ok(Value::Const(Rc::new(value(ctx)?)))
}

fn value(ctx: &NodeCtx) -> Result<Const, ConvertError> {
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

/// ONNX `Shape`, with opset 15's `start` and `end`.
pub(crate) fn shape(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let dims = b.shape_of(&input(ctx, ins, 0)?.value);
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
    Ok(Value::Const(Rc::new(Const::i64(vec![v.len()], v))))
}

/// ONNX `Size`.
pub(crate) fn size(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let dims = b.shape_of(&input(ctx, ins, 0)?.value);
    Ok(Value::Const(Rc::new(Const::i64(
        vec![],
        vec![numel(&dims) as i64],
    ))))
}
