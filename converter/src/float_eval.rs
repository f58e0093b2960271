//! The IR in plain `f32`: each op's meaning ([`crate::ops::IrOp::eval`],
//! defined in its family module), walked over a graph. Tests use it as the
//! float oracle of a graph after loading and rewriting (tract runs the
//! original ONNX model; this runs what the converter made of it).

use crate::error::ConvertError;
use crate::ir::Graph;

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
        let output_shape = &g.tensors[n.output].shape;
        let mut cx = EvalCtx {
            node: &n.name,
            inputs: Vec::with_capacity(n.inputs.len()),
            shapes: Vec::with_capacity(n.inputs.len()),
            output_shape,
        };
        for &i in &n.inputs {
            let shape = &g.tensors[i].shape;
            match &vals[i] {
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
        vals[n.output] = Some(y);
    }
    Ok(vals)
}
