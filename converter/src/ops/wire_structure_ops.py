#!/usr/bin/env python3
"""DRAFT wiring of the structure ops' converter lowerings (conv_transpose.rs,
gather.rs, transpose.rs, resize.rs in this directory) into the `convreg`
converter structure, once it is merged into this branch. Not yet compiled or
tested: the convreg refactor had not reached main when the runtime side was
done. Run from the repository root after `git merge main`:

    python3 converter/src/ops/wire_structure_ops.py && cargo fmt --all

It registers the four modules in ops/mod.rs (Op variants, Op::def arms,
ONNX_OPS entries for ConvTranspose, Gather, Resize, Slice, Split, Upsample,
Transpose), adds Builder::emit_output (Split's several outputs) in
load/mod.rs, ops::testing::attr_s, drops zero-size Concat parts early
(ops/concat.rs), and makes reshape.rs's Transpose fall back to the
Transpose op when the data moves. Delete this script once applied.
"""
import re,sys
root='converter/src/'
def edit(p, pairs):
    s=open(root+p).read()
    for a,b in pairs:
        if s.count(a)!=1:
            sys.exit(f"{p}: {s.count(a)} matches for {a!r}")
        s=s.replace(a,b)
    open(root+p,'w').write(s)

edit('ops/mod.rs',[
("pub mod conv;\n","pub mod conv;\npub mod conv_transpose;\n"),
("pub mod fully_connected;\n","pub mod fully_connected;\npub mod gather;\n"),
("pub mod reshape;\n","pub mod reshape;\npub mod resize;\n"),
("pub(crate) mod window;\n","pub mod transpose;\npub(crate) mod window;\n"),
("use conv::Conv;\n","use conv::Conv;\nuse conv_transpose::ConvTranspose;\nuse gather::Select;\nuse resize::Resize;\nuse transpose::Transpose;\n"),
("""    Recurrent(Recurrent),
}""","""    Recurrent(Recurrent),
    ConvTranspose(ConvTranspose),
    /// Slice, Split and Gather of a computed tensor: one axis.
    Select(Select),
    /// A Transpose that reorders data (others are Reshape views).
    Transpose(Transpose),
    Resize(Resize),
}"""),
("""            Op::Recurrent(op) => op,
        }
    }""","""            Op::Recurrent(op) => op,
            Op::ConvTranspose(op) => op,
            Op::Select(op) => op,
            Op::Transpose(op) => op,
            Op::Resize(op) => op,
        }
    }"""),
("""            Op::Recurrent(op) => op,
        })""","""            Op::Recurrent(op) => op,
            Op::ConvTranspose(op) => op,
            Op::Select(op) => op,
            Op::Transpose(op) => op,
            Op::Resize(op) => op,
        })"""),
("""    OnnxOp::new(
        "Div",""","""    OnnxOp::new(
        "ConvTranspose",
        conv_transpose::from_onnx,
        "ConvTranspose",
        "1-D/2-D; strides, pads, `output_padding`, `output_shape`, `auto_pad`, dilations, groups; \\
         constant weights",
    ),
    OnnxOp::new(
        "Div","""),
("""    OnnxOp::new(
        "Gemm",""","""    OnnxOp::new(
        "Gather",
        gather::gather,
        "Gather",
        "a computed tensor, constant scalar or 1-D indices, any axis",
    ),
    OnnxOp::new(
        "Gemm","""),
("""    OnnxOp::new(
        "Shape",""","""    OnnxOp::new(
        "Resize",
        resize::resize,
        "Resize",
        "1-D/2-D, nearest (all `nearest_mode`s) and linear; `coordinate_transformation_mode` \\
         half_pixel, asymmetric, align_corners, pytorch_half_pixel; `scales` (ratios of \\
         integers) or `sizes`",
    ),
    OnnxOp::new(
        "Shape","""),
("""    OnnxOp::new(
        "Softmax",""","""    OnnxOp::new(
        "Slice",
        gather::slice,
        "Gather",
        "a computed tensor along one axis per node; any steps",
    ),
    OnnxOp::new(
        "Softmax","""),
("""    OnnxOp::new(
        "Squeeze",""","""    OnnxOp::new(
        "Split",
        gather::split,
        "Gather (one per output)",
        "a computed tensor; `split` or equal parts",
    ),
    OnnxOp::new(
        "Squeeze","""),
("""        "any permutation of a constant; of a computed tensor, one that moves only size-1 axes",""",
 """        "any permutation; on a computed tensor up to 4-D (a view when it moves only size-1 axes)","""),
("""        "Reshape (a view)",
        "any permutation;""","""        "Transpose, or Reshape (a view)",
        "any permutation;"""),
("""    OnnxOp::new(
        "Unsqueeze",""","""    OnnxOp::new(
        "Unsqueeze","""),
])
s=open(root+'ops/mod.rs').read()
# Upsample goes after Unsqueeze (sorted): append after the Unsqueeze entry.
i=s.index('"Unsqueeze",')
j=s.index('.takes_constants(),\n',i)+len('.takes_constants(),\n')
s=s[:j]+'''    OnnxOp::new(
        "Upsample",
        resize::upsample,
        "Resize",
        "opsets 7–9, nearest and linear",
    ),
'''+s[j:]
open(root+'ops/mod.rs','w').write(s)

# Builder: emit to a named output (Split), and keep outputs a lowering bound.
edit('load/mod.rs',[
("""            for (k, extra) in pb.output.iter().enumerate() {
                if k != ctx.primary_output() && !extra.is_empty() {""","""            for (k, extra) in pb.output.iter().enumerate() {
                // Outputs the lowering computed itself (Split's) are bound.
                let bound = self.env.contains_key(extra.as_str());
                if k != ctx.primary_output() && !extra.is_empty() && !bound {"""),
("""    pub(crate) fn shape_of(&self, v: &Value) -> Vec<usize> {""","""    /// Add an IR node producing the ONNX node's output `k` (an op with
    /// several computed outputs, like Split); binds it unless it is the
    /// primary output, which the caller returns.
    pub(crate) fn emit_output(
        &mut self,
        ctx: &NodeCtx,
        k: usize,
        op: Op,
        inputs: Vec<TensorId>,
        shape: Vec<usize>,
    ) -> Result<Value, ConvertError> {
        let name = match ctx.pb.output.get(k) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => return Err(ctx.err(format!("output {k} has no name"))),
        };
        if shape.contains(&0) {
            return Err(ctx.err(format!("output {k} would be empty (shape {shape:?})")));
        }
        let id = self.add_tensor(&name, shape, None);
        self.graph.nodes.push(Node {
            name: format!("{}:{k}", ctx.name),
            onnx_ops: vec![ctx.op.to_string()],
            op,
            inputs,
            output: id,
        });
        if k != ctx.primary_output() {
            self.bind(ctx, &name, Value::Act(id))?;
        }
        Ok(Value::Act(id))
    }

    pub(crate) fn shape_of(&self, v: &Value) -> Vec<usize> {"""),
])
edit('ops/testing.rs',[
("""pub fn attr_ints(""","""pub fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn attr_ints("""),
])
# Concat: zero-size parts (an exporter's empty ConstantOfShape) are dropped.
edit('ops/concat.rs',[
("""    let parts: Vec<&Input> = ins.iter().flatten().collect();""","""    // Zero-size parts (e.g. an exporter's zero-length ConstantOfShape)
    // contribute nothing: drop them here, before they become tensors.
    let parts: Vec<&Input> = ins
        .iter()
        .flatten()
        .filter(|p| !b.shape_of(&p.value).contains(&0))
        .collect();"""),
("""    b.emit(ctx, Op::Concat(Concat { axis }), ids, out)""","""    if let [only] = ids[..] {
        // One part left: the same values, a view.
        return b.emit(ctx, Op::Reshape, vec![only], out);
    }
    b.emit(ctx, Op::Concat(Concat { axis }), ids, out)"""),
])
edit('ops/reshape.rs',[
("""    if moved.windows(2).any(|w| w[0] > w[1]) {
        return Err(ctx.attr_err(
            "perm",
            format!(
                "transposing a computed tensor of shape {in_shape:?} with perm {p:?} reorders its \\
                 data, which medq does not support"
            ),
        ));
    }""","""    if moved.windows(2).any(|w| w[0] > w[1]) {
        // The data moves: a Transpose op.
        let Value::Act(id) = x.value else {
            return Err(ctx.err("input is unavailable"));
        };
        return super::transpose::emit(b, ctx, id, &in_shape, p);
    }"""),
])
print("wired")
