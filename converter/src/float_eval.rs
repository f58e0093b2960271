//! The IR in plain `f32`: each op's meaning ([`crate::ops::IrOp::eval`],
//! defined in its family module), walked over a graph. Tests use it as the
//! float oracle of a graph after loading and rewriting (tract runs the
//! original ONNX model; this runs what the converter made of it).

use crate::error::ConvertError;
use crate::float_ref::FloatRef;
use crate::ir::{Graph, Node, TensorId};

/// What an op's [`eval`](crate::ops::IrOp::eval) sees: its inputs' values
/// and shapes (each value's length is its shape's product) and the output
/// shape.
pub struct EvalCtx<'a> {
    /// The node's name, for errors.
    pub node: &'a str,
    pub inputs: Vec<&'a [f32]>,
    pub shapes: Vec<&'a [usize]>,
    pub output_shape: &'a [usize],
}

impl<'a> EvalCtx<'a> {
    /// Input `k`'s value and shape.
    pub fn input(&self, k: usize) -> Result<(&'a [f32], &'a [usize]), ConvertError> {
        match (self.inputs.get(k), self.shapes.get(k)) {
            (Some(&x), Some(&s)) => Ok((x, s)),
            _ => Err(self.err(format!("input {k} is missing"))),
        }
    }

    pub fn err(&self, reason: impl std::fmt::Display) -> ConvertError {
        ConvertError::InvalidModel(format!(
            "float evaluation of node \"{}\": {reason}",
            self.node
        ))
    }

    /// Input `k` seen around `axis` as `[outer, len, inner]`: its value and
    /// those three sizes (ArgMax, TopK: one result per `(outer, inner)`).
    pub fn around_axis(
        &self,
        k: usize,
        axis: usize,
    ) -> Result<(&'a [f32], [usize; 3]), ConvertError> {
        let (x, s) = self.input(k)?;
        let len = *s.get(axis).ok_or_else(|| self.err("axis out of range"))?;
        let inner: usize = s[axis + 1..].iter().product();
        let outer = x.len() / (len * inner).max(1);
        Ok((x, [outer, len, inner]))
    }

    /// `shape` as NCHW: rank 3 `[N, C, L]` is `[N, C, 1, L]`.
    pub fn nchw(&self, shape: &[usize]) -> Result<[usize; 4], ConvertError> {
        match *shape {
            [n, c, l] => Ok([n, c, 1, l]),
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(self.err(format!("{shape:?} is not an image shape"))),
        }
    }
}

/// Evaluate `g` on its inputs' values: the value of every tensor (constants
/// included; `None` for tensors no node computes).
pub fn eval(g: &Graph, inputs: &[&[f32]]) -> Result<Vec<Option<Vec<f32>>>, ConvertError> {
    let mut vals: Vec<Option<Vec<f32>>> = g
        .tensors
        .iter()
        .map(|t| t.value.as_ref().map(|a| a.data.clone()))
        .collect();
    if inputs.len() != g.inputs.len() {
        return Err(ConvertError::InvalidModel(format!(
            "the graph has {} inputs, {} values were given",
            g.inputs.len(),
            inputs.len()
        )));
    }
    for (&id, x) in g.inputs.iter().zip(inputs) {
        vals[id] = Some(x.to_vec());
    }
    for n in &g.nodes {
        vals[n.output] = Some(eval_node(g, n, &vals)?);
    }
    Ok(vals)
}

/// One node's float output from the values before it.
fn eval_node(g: &Graph, n: &Node, vals: &[Option<Vec<f32>>]) -> Result<Vec<f32>, ConvertError> {
    let output_shape = &g.tensors[n.output].shape;
    let mut cx = EvalCtx {
        node: &n.name,
        inputs: Vec::with_capacity(n.inputs.len()),
        shapes: Vec::with_capacity(n.inputs.len()),
        output_shape,
    };
    for &i in &n.inputs {
        let shape = &g.tensors[i].shape;
        match vals.get(i).and_then(Option::as_ref) {
            Some(v) if v.len() == shape.iter().product::<usize>() => {
                cx.inputs.push(v);
                cx.shapes.push(shape);
            }
            Some(_) => return Err(cx.err(format!("input {i} does not fit its shape"))),
            None => return Err(cx.err(format!("input {i} is not computed before it"))),
        }
    }
    let y = n.op.def().eval(&cx)?;
    if y.len() != output_shape.iter().product::<usize>() {
        return Err(cx.err(format!(
            "{} values for the output shape {output_shape:?}",
            y.len()
        )));
    }
    Ok(y)
}

/// The float value of each tensor of `ids` on one sample: tract's, by ONNX
/// name, and for the tensors a lowering made inside one ONNX node (the
/// directions of a bidirectional RNN, `Builder::emit_part`), which tract
/// does not have, this module's evaluation of their nodes.
pub fn reference_values(
    g: &Graph,
    float_ref: &FloatRef,
    inputs: &[&[f32]],
    ids: &[TensorId],
) -> Result<Vec<Vec<f32>>, ConvertError> {
    let known = |i: TensorId| float_ref.knows(&g.tensors[i].name);
    let parts: Vec<&Node> = g.nodes.iter().filter(|n| !known(n.output)).collect();
    let mut request: Vec<TensorId> = ids.iter().copied().filter(|&i| known(i)).collect();
    for n in &parts {
        for &i in &n.inputs {
            if known(i) && g.tensors[i].value.is_none() && !request.contains(&i) {
                request.push(i);
            }
        }
    }
    let names: Vec<String> = request.iter().map(|&i| g.tensors[i].name.clone()).collect();
    let from_tract = float_ref.run_inputs(inputs, &names)?;
    if parts.is_empty() {
        return Ok(from_tract.into_iter().take(ids.len()).collect());
    }
    let mut vals: Vec<Option<Vec<f32>>> = g
        .tensors
        .iter()
        .map(|t| t.value.as_ref().map(|a| a.data.clone()))
        .collect();
    for (&i, v) in request.iter().zip(from_tract) {
        vals[i] = Some(v);
    }
    for n in parts {
        vals[n.output] = Some(eval_node(g, n, &vals)?);
    }
    ids.iter()
        .map(|&i| {
            vals[i].clone().ok_or_else(|| {
                ConvertError::FloatRef(format!("no float value for \"{}\"", g.tensors[i].name))
            })
        })
        .collect()
}
