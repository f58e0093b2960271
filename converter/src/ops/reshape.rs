//! Reshape: same bytes, the output tensor's shape. ONNX views (Reshape,
//! Flatten, Squeeze, Unsqueeze, a Transpose that moves only size-1 axes, a
//! Cast to float) and identities (Identity, Dropout) become one; on
//! constants they fold. The planner runs it in place.

use std::rc::Rc;

use medq::format::layout::{params::reshape as w, OpCode};

use super::onnx::{input, konst, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::tensor::{self, Const, Data};
use crate::load::{fold, shape};
use crate::load::{Builder, Input, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// The definition of [`Op::Reshape`], which has no payload.
#[derive(Clone, Copy, Debug)]
pub struct Reshape;

/// Input 0 with shape `out`: a reshaped constant, or a Reshape node.
fn view(b: &mut Builder, ctx: &NodeCtx, x: &Input, out: Vec<usize>) -> Result<Value, ConvertError> {
    match &x.value {
        Value::Const(c) => Ok(Value::Const(Rc::new(c.with_shape(out)))),
        Value::Act(id) => b.emit(ctx, Op::Reshape, vec![*id], out),
        Value::Unavailable(_) => Err(ctx.err("input is unavailable")),
    }
}

/// ONNX `Identity` and `Dropout` (inference: the identity).
pub(crate) fn identity(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let out = b.shape_of(&x.value);
    view(b, ctx, x, out)
}

/// ONNX `Cast`: any type on constants, only to float on computed tensors.
pub(crate) fn cast(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let to = ctx
        .opt_int("to")?
        .ok_or_else(|| ctx.attr_err("to", "missing"))?;
    let to = i32::try_from(to).unwrap_or(-1);
    if let Value::Const(c) = &x.value {
        return Ok(Value::Const(Rc::new(cast_const(ctx, c, to)?)));
    }
    use tract_onnx::pb::tensor_proto::DataType as T;
    // A computed tensor cast to bool (a mask for `Where`: 1 where non-zero)
    // or to an integer type (a length: toward zero) is a table.
    if to == T::Bool as i32 || tensor::is_integer(to) {
        return super::pointwise::cast(b, ctx, ins, to == T::Bool as i32);
    }
    let float = [T::Float, T::Double, T::Float16, T::Bfloat16];
    if !float.iter().any(|&t| t as i32 == to) {
        return Err(ctx.attr_err(
            "to",
            format!(
                "casting a computed tensor to {} is not supported (medq computes in float; \
                 a cast to float, bool or an integer type is)",
                tensor::dtype_name(to)
            ),
        ));
    }
    let out = b.shape_of(&x.value);
    view(b, ctx, x, out)
}

fn cast_const(ctx: &NodeCtx, c: &Const, to: i32) -> Result<Const, ConvertError> {
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

/// ONNX `Reshape`: the target shape is an attribute before opset 5, a
/// constant input from it on.
pub(crate) fn reshape(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let spec: Vec<i64> = if ctx.opset < 5 {
        ctx.ints("shape")?
            .ok_or_else(|| ctx.attr_err("shape", "missing"))?
    } else {
        let c = konst(ctx, ins, 1, "target shape")?;
        fold::ints(ctx, &c, "shape")?.to_vec()
    };
    let allowzero = ctx.int("allowzero", 0)? != 0;
    let out = shape::reshape(&b.shape_of(&x.value), &spec, allowzero).map_err(|e| ctx.err(e))?;
    view(b, ctx, x, out)
}

/// ONNX `Flatten`.
pub(crate) fn flatten(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let out = shape::flatten(&b.shape_of(&x.value), ctx.int("axis", 1)?).map_err(|e| ctx.err(e))?;
    view(b, ctx, x, out)
}

/// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an
/// optional constant input from it on.
fn axes(ctx: &NodeCtx, ins: Ins) -> Result<Option<Vec<i64>>, ConvertError> {
    if ctx.opset < 13 {
        ctx.ints("axes")
    } else {
        opt_konst(ctx, ins, 1, "axes")?
            .map(|c| fold::ints(ctx, &c, "axes").map(<[i64]>::to_vec))
            .transpose()
    }
}

/// ONNX `Squeeze`.
pub(crate) fn squeeze(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let axes = axes(ctx, ins)?;
    let out = shape::squeeze(&b.shape_of(&x.value), axes.as_deref()).map_err(|e| ctx.err(e))?;
    view(b, ctx, x, out)
}

/// ONNX `Unsqueeze`.
pub(crate) fn unsqueeze(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let axes = axes(ctx, ins)?.ok_or_else(|| ctx.err("Unsqueeze needs axes"))?;
    let out = shape::unsqueeze(&b.shape_of(&x.value), &axes).map_err(|e| ctx.err(e))?;
    view(b, ctx, x, out)
}

/// ONNX `Transpose`: any permutation of a constant; of a computed tensor,
/// one that leaves the data in the same order (moves only size-1 axes).
pub(crate) fn transpose(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let x = input(ctx, ins, 0)?;
    let perm = ctx.ints("perm")?;
    if let Value::Const(c) = &x.value {
        let t = fold::transpose(ctx, c, perm.as_deref())?;
        return Ok(Value::Const(Rc::new(t)));
    }
    let in_shape = b.shape_of(&x.value);
    let p =
        shape::permutation(perm.as_deref(), in_shape.len()).map_err(|e| ctx.attr_err("perm", e))?;
    let moved: Vec<usize> = p
        .iter()
        .copied()
        .filter(|&a| in_shape.get(a) != Some(&1))
        .collect();
    if moved.windows(2).any(|w| w[0] > w[1]) {
        // The data moves: a Transpose op.
        let Value::Act(id) = x.value else {
            return Err(ctx.err("input is unavailable"));
        };
        return super::transpose::emit(b, ctx, id, &in_shape, p);
    }
    let out = p
        .iter()
        .map(|&a| in_shape.get(a).copied().unwrap_or(1))
        .collect();
    view(b, ctx, x, out)
}

impl IrOp for Reshape {
    fn kind(&self) -> &'static str {
        "Reshape"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        Ok(cx.input(0)?.0.to_vec())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        Ok(Lowered {
            opcode: OpCode::Reshape,
            inputs: vec![cx.activation(0)?.0],
            params: vec![0; w::COUNT],
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
    use crate::ir::Op;
    use crate::ops::testing::{assert_conforms, attr_i, attr_ints, int64s, one_node};

    #[test]
    fn views_run_as_reshapes() {
        let cases = [
            one_node(
                "Flatten",
                &[1, 2, 3, 4],
                &[],
                vec![attr_i("axis", 1)],
                vec![],
            ),
            one_node(
                "Reshape",
                &[1, 2, 6],
                &["s"],
                vec![],
                vec![int64s("s", &[3], &[1, -1, 3])],
            ),
            one_node(
                "Transpose",
                &[1, 1, 6],
                &[],
                vec![attr_ints("perm", &[0, 2, 1])],
                vec![],
            ),
        ];
        for model in cases {
            let g = assert_conforms("view", &model, 40.0);
            assert!(matches!(g.nodes[..], [ref n] if matches!(n.op, Op::Reshape)));
        }
    }
}
