//! The ONNX side of the registry: the op table's entry type, the names and
//! docs derived from [`ONNX_OPS`], and the operand access every ONNX
//! lowering uses.

use std::rc::Rc;

use crate::error::ConvertError;
use crate::ir::TensorId;
use crate::load::node::NodeCtx;
use crate::load::tensor::Const;
use crate::load::{Builder, Input, Value, CONST_ONLY_OPS};

use super::ONNX_OPS;

/// A node's inputs, `None` where ONNX left an optional input empty.
pub(crate) type Ins<'a, 'b> = &'a [Option<Input<'b>>];

/// An ONNX lowering: the node becomes IR nodes (through
/// [`Builder::emit`]) or a constant, and returns its computed output.
pub(crate) type Lowering = fn(&mut Builder, &NodeCtx, Ins) -> Result<Value, ConvertError>;

/// One ONNX op the converter reads.
pub struct OnnxOp {
    /// The ONNX op type (default domain).
    pub name: &'static str,
    /// What it becomes in a `.mq` model, for the docs.
    pub becomes: &'static str,
    /// What medq supports of it, in one line, for the docs.
    pub supports: &'static str,
    pub(crate) lower: Lowering,
    /// Whether [`Self::lower`] takes constant inputs itself (views, `Shape`).
    /// Otherwise a node whose inputs are all constants is folded at load
    /// (`load::fold`) and never lowered.
    pub(crate) takes_constants: bool,
    /// How many of the ONNX outputs, from the first, medq computes, and what
    /// they are. The node's primary output is the first of them it names.
    pub(crate) outputs: (usize, &'static str),
}

impl OnnxOp {
    pub(crate) const fn new(
        name: &'static str,
        lower: Lowering,
        becomes: &'static str,
        supports: &'static str,
    ) -> OnnxOp {
        OnnxOp {
            name,
            becomes,
            supports,
            lower,
            takes_constants: false,
            outputs: (1, ""),
        }
    }

    /// The lowering handles constant inputs itself.
    pub(crate) const fn takes_constants(mut self) -> OnnxOp {
        self.takes_constants = true;
        self
    }

    /// medq computes outputs `0..n` (`what`), not only output 0.
    pub(crate) const fn computes_outputs(mut self, n: usize, what: &'static str) -> OnnxOp {
        self.outputs = (n, what);
        self
    }
}

/// The names of [`ONNX_OPS`], in its order: what an unsupported-op error lists.
pub static SUPPORTED_OPS: [&str; ONNX_OPS.len()] = names();

const fn names() -> [&'static str; ONNX_OPS.len()] {
    let mut out = [""; ONNX_OPS.len()];
    let mut i = 0;
    while i < ONNX_OPS.len() {
        out[i] = ONNX_OPS[i].name;
        i += 1;
    }
    out
}

/// The table entry of an ONNX op type.
pub fn onnx_op(name: &str) -> Option<&'static OnnxOp> {
    ONNX_OPS.iter().find(|op| op.name == name)
}

/// The README's table of supported ONNX ops (`cargo run -p medq-converter
/// --bin op-table`), with the ops folded only on constants as a last row.
pub fn markdown_table() -> String {
    let mut md = String::from("| ONNX op | runs as | supported |\n| --- | --- | --- |\n");
    for op in ONNX_OPS {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            op.name, op.becomes, op.supports
        ));
    }
    let folded: Vec<&str> = CONST_ONLY_OPS
        .iter()
        .copied()
        .filter(|name| onnx_op(name).is_none())
        .collect();
    md.push_str(&format!(
        "| {} | — (folded at load) | on constants only: shape arithmetic and weight preprocessing; \
         the comparisons, `And`, `Or`, `Not` and `Where` also inside a pointwise chain of one \
         computed tensor, which becomes one Lut (`torch.where(x > 0, x, 0.1 * x)`, Hardshrink) |\n",
        folded.join(", ")
    ));
    md
}

// ---- operand access ----

pub(crate) fn input<'a, 'b>(
    ctx: &NodeCtx,
    ins: Ins<'a, 'b>,
    i: usize,
) -> Result<&'a Input<'b>, ConvertError> {
    ins.get(i)
        .and_then(|x| x.as_ref())
        .ok_or_else(|| ctx.err(format!("input {i} is missing")))
}

/// The IR tensor of a resolved input: a computed one, or a constant made a
/// tensor (once per name).
pub(crate) fn tensor_of(
    b: &mut Builder,
    ctx: &NodeCtx,
    p: &Input,
) -> Result<TensorId, ConvertError> {
    match &p.value {
        Value::Act(id) => Ok(*id),
        Value::Const(c) => b.const_tensor(p.name, c),
        Value::Unavailable(_) => Err(ctx.err("input is unavailable")),
    }
}

/// A computed (non-constant) input and its shape.
pub(crate) fn act(
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

/// A constant input; `what` names it in errors.
pub(crate) fn konst(
    ctx: &NodeCtx,
    ins: Ins,
    i: usize,
    what: &str,
) -> Result<Rc<Const>, ConvertError> {
    opt_konst(ctx, ins, i, what)?
        .ok_or_else(|| ctx.err(format!("the {what} (input {i}) is missing")))
}

/// An optional constant input.
pub(crate) fn opt_konst(
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

/// Non-negative integers of an attribute.
pub(crate) fn to_usize(ctx: &NodeCtx, attr: &str, v: &[i64]) -> Result<Vec<usize>, ConvertError> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| ctx.attr_err(attr, format!("negative value in {v:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates() {
        let keys: Vec<String> = ONNX_OPS.iter().map(|op| op.name.to_lowercase()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            keys, sorted,
            "keep ONNX_OPS sorted (case-insensitive), once each"
        );
        assert!(
            ONNX_OPS
                .iter()
                .all(|op| !op.becomes.is_empty() && !op.supports.is_empty()),
            "every op documents what it becomes and supports"
        );
    }

    /// The README's op table is generated: regenerate it with
    /// `cargo run -p medq-converter --bin op-table` and paste it between the
    /// markers.
    #[test]
    fn the_readme_table_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let (start, end) = ("<!-- op-table -->\n", "<!-- /op-table -->");
        let from = readme.find(start).expect("README.md has <!-- op-table -->") + start.len();
        let to = readme[from..]
            .find(end)
            .expect("README.md has <!-- /op-table -->")
            + from;
        assert_eq!(
            readme[from..to],
            markdown_table(),
            "README.md's op table is stale: run `cargo run -p medq-converter --bin op-table` \
             and paste its output between the markers"
        );
    }
}
