//! LayerNormalization over the trailing axes, with the runtime's integer
//! statistics (`NUMERICS.md` § LayerNorm).

use std::collections::{HashMap, HashSet};

use medq::format::layout::{params::layer_norm as w, OpCode};
use medq::kernels::{LAYER_NORM_FRACTION_BITS, MAX_LAYER_NORM_EPSILON, MAX_LAYER_NORM_LEN};
use tract_onnx::pb::{GraphProto, NodeProto};

use super::onnx::{act, konst, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{int_const, shift_const, ConstData, ConstQuant, ConstTensor};
use crate::quantize::{LowerCtx, Lowered, Operand, OutputQuant};

/// `y = gamma · (x − mean) / sqrt(var + epsilon) + beta` over the axes from
/// `axis` on (`gamma`, `beta`: one value per normalized position).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub axis: usize,
    pub epsilon: f32,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// ONNX `LayerNormalization` (opset 17): `axis`, `epsilon`, `stash_type` 1;
/// constant Scale and B; output Y only.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let stash = ctx.int("stash_type", 1)?;
    if stash != 1 {
        return Err(ctx.attr_err(
            "stash_type",
            format!("{stash}: only 1 (float) is supported"),
        ));
    }
    let axis = norm_axis(ctx.int("axis", -1)?, xs.len())
        .ok_or_else(|| ctx.attr_err("axis", "out of range"))?;
    let epsilon = ctx.float("epsilon", 1e-5)?;
    let gamma = konst(ctx, ins, 1, "scale")?.to_f32();
    let beta = opt_konst(ctx, ins, 2, "bias")?.map(|c| c.to_f32());
    affine(b, ctx, (x, xs), axis, epsilon, Some(gamma), beta)
}

/// The node from its parts; gamma and beta per position (or one value).
fn affine(
    b: &mut Builder,
    ctx: &NodeCtx,
    (x, xs): (crate::ir::TensorId, Vec<usize>),
    axis: usize,
    epsilon: f32,
    gamma: Option<Vec<f32>>,
    beta: Option<Vec<f32>>,
) -> Result<Value, ConvertError> {
    let n: usize = xs[axis..].iter().product();
    let per_position = |v: Option<Vec<f32>>, default: f32, what: &str| match v {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == 1 => Ok(vec![v[0]; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(ctx.err(format!(
            "the {what} has {} values for {n} normalized positions",
            v.len()
        ))),
    };
    let op = LayerNorm {
        axis,
        epsilon,
        gamma: per_position(gamma, 1.0, "scale")?,
        beta: per_position(beta, 0.0, "bias")?,
    };
    emit(b, ctx, x, xs, op)
}

/// A layer normalization written out as older opsets export it:
/// `d = x − ReduceMean(x)`, `d / Sqrt(ReduceMean(d²) + ε)`, then optionally
/// `· gamma` and `+ beta` (constants). Its inputs are `[x, gamma, beta]`
/// (empty names when absent).
#[derive(Debug)]
pub(crate) struct Pattern {
    axes: Vec<i64>,
    epsilon: f32,
}

/// Lowers a matched [`Pattern`] whose last node is `ctx`'s.
pub(crate) fn from_pattern(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    p: &Pattern,
) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let rank = xs.len();
    let mut axes: Vec<usize> = p
        .axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Option<_>>()
        .ok_or_else(|| ctx.err(format!("ReduceMean axes {:?} out of range", p.axes)))?;
    axes.sort_unstable();
    let axis = axes.first().copied().unwrap_or(rank.saturating_sub(1));
    if axes != (axis..rank).collect::<Vec<_>>() {
        return Err(ctx.err(format!(
            "a layer normalization over axes {:?} of shape {xs:?}: only trailing axes are supported",
            p.axes
        )));
    }
    let gamma = opt_konst(ctx, ins, 1, "scale")?.map(|c| c.to_f32());
    let beta = opt_konst(ctx, ins, 2, "bias")?.map(|c| c.to_f32());
    affine(b, ctx, (x, xs), axis, p.epsilon, gamma, beta)
}

/// Integer lists by tensor name (initializers), for ReduceMean's axes input.
fn int_lists(g: &GraphProto) -> HashMap<&str, Vec<i64>> {
    g.initializer
        .iter()
        .filter_map(|t| {
            let c = crate::load::tensor::from_proto(t).ok()?;
            Some((t.name.as_str(), c.as_i64()?.to_vec()))
        })
        .collect()
}

/// Finds written-out layer normalizations (see [`Pattern`]) in `g`.
pub(crate) fn find_pattern(
    g: &GraphProto,
    scalars: &HashMap<&str, f64>,
    consumers: &HashMap<&str, Vec<usize>>,
    fusions: &mut super::pointwise::Fusions,
) {
    let ints = int_lists(g);
    let consts = super::pointwise::constant_names(g);
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    for (k, n) in g.node.iter().enumerate() {
        if n.op_type == "ReduceMean" {
            if let Some((nodes, sink, inputs, p)) =
                match_at(g, k, scalars, &consts, consumers, &ints)
            {
                let inner_out = nodes
                    .iter()
                    .any(|&j| j != sink && outputs.contains(g.node[j].output[0].as_str()));
                if !inner_out {
                    fusions.add(&nodes, sink, inputs, super::pointwise::Fused::LayerNorm(p));
                }
            }
        }
    }
}

type Match = (HashSet<usize>, usize, Vec<String>, Pattern);

/// The pattern starting at ReduceMean node `k`, if every intermediate is
/// read only inside it.
fn match_at(
    g: &GraphProto,
    k: usize,
    scalars: &HashMap<&str, f64>,
    consts: &HashSet<&str>,
    consumers: &HashMap<&str, Vec<usize>>,
    ints: &HashMap<&str, Vec<i64>>,
) -> Option<Match> {
    let node = |j: usize| &g.node[j];
    let out = |j: usize| node(j).output.first().map(String::as_str).unwrap_or("");
    // The one consumer of node j's output, if it is an `op`.
    let only = |j: usize, op: &str| -> Option<usize> {
        match consumers.get(out(j))?.as_slice() {
            [c] if node(*c).op_type == op => Some(*c),
            _ => None,
        }
    };
    let is =
        |n: &NodeProto, a: &str, b: &str| n.input.len() == 2 && n.input[0] == a && n.input[1] == b;
    let axes = |n: &NodeProto| -> Option<Vec<i64>> {
        let keep = n
            .attribute
            .iter()
            .find(|a| a.name == "keepdims")
            .map_or(1, |a| a.i);
        let attr = n
            .attribute
            .iter()
            .find(|a| a.name == "axes")
            .map(|a| a.ints.clone());
        let axes = attr.or_else(|| ints.get(n.input.get(1)?.as_str()).cloned())?;
        (keep == 1 && !axes.is_empty()).then_some(axes)
    };
    let x = node(k).input.first()?.clone();
    let axes1 = axes(node(k))?;
    let sub = only(k, "Sub")?;
    if !is(node(sub), &x, out(k)) {
        return None;
    }
    let d = out(sub);
    let (sq, div) = match consumers.get(d)?.as_slice() {
        [a, b] => {
            let square = |j: usize| {
                let n = node(j);
                (n.op_type == "Pow"
                    && n.input.len() == 2
                    && n.input[0] == d
                    && scalars.get(n.input[1].as_str()) == Some(&2.0))
                    || (n.op_type == "Mul" && is(n, d, d))
            };
            if square(*a) && node(*b).op_type == "Div" {
                (*a, *b)
            } else if square(*b) && node(*a).op_type == "Div" {
                (*b, *a)
            } else {
                return None;
            }
        }
        _ => return None,
    };
    let mean2 = only(sq, "ReduceMean")?;
    if axes(node(mean2))? != axes1 {
        return None;
    }
    let add = only(mean2, "Add")?;
    let eps_name = node(add).input.iter().find(|s| s.as_str() != out(mean2))?;
    let epsilon = *scalars.get(eps_name.as_str())? as f32;
    let sqrt = only(add, "Sqrt")?;
    if only(sqrt, "Div")? != div || !is(node(div), d, out(sqrt)) {
        return None;
    }
    let mut nodes: HashSet<usize> = [k, sub, sq, mean2, add, sqrt, div].into();
    let (mut sink, mut gamma, mut beta) = (div, String::new(), String::new());
    let other = |j: usize, prev: &str| {
        node(j)
            .input
            .iter()
            .find(|s| s.as_str() != prev && consts.contains(s.as_str()))
            .cloned()
    };
    if let Some(m) = only(sink, "Mul").filter(|&m| node(m).input.len() == 2) {
        if let Some(c) = other(m, out(sink)) {
            gamma = c;
            sink = m;
            nodes.insert(m);
        }
    }
    if let Some(a) = only(sink, "Add").filter(|&a| node(a).input.len() == 2) {
        if let Some(c) = other(a, out(sink)) {
            beta = c;
            sink = a;
            nodes.insert(a);
        }
    }
    Some((
        nodes,
        sink,
        vec![x, gamma, beta],
        Pattern {
            axes: axes1,
            epsilon,
        },
    ))
}

/// Adds the node, checking what the runtime's kernel takes.
pub(crate) fn emit(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: crate::ir::TensorId,
    xs: Vec<usize>,
    op: LayerNorm,
) -> Result<Value, ConvertError> {
    check(ctx, &xs, &op)?;
    b.emit(ctx, Op::LayerNorm(op), vec![x], xs)
}

/// What the runtime's LayerNorm takes: at most [`MAX_LAYER_NORM_LEN`]
/// values per row, `epsilon ≥ 0`.
fn check(ctx: &NodeCtx, xs: &[usize], op: &LayerNorm) -> Result<(), ConvertError> {
    let n: usize = xs[op.axis..].iter().product();
    if n > MAX_LAYER_NORM_LEN {
        return Err(ctx.err(format!(
            "normalizes {n} values together; at most {MAX_LAYER_NORM_LEN} are supported"
        )));
    }
    if op.epsilon.is_nan() || op.epsilon < 0.0 {
        return Err(ctx.attr_err("epsilon", format!("{}: must be ≥ 0", op.epsilon)));
    }
    Ok(())
}

/// ONNX `InstanceNormalization` (`nn.InstanceNorm1d/2d`, and `nn.GroupNorm`,
/// which PyTorch exports as Reshape, InstanceNormalization with scale 1 and
/// bias 0, Reshape, Mul, Add): each channel of `[1, C, ...]` normalized over
/// its positions, a LayerNorm over the axes after the channels; then the
/// per-channel scale and bias as a depthwise 1×1 Conv, left out when they
/// are 1 and 0.
pub(crate) fn instance_norm(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    if !(3..=4).contains(&xs.len()) {
        return Err(ctx.err(format!(
            "inputs [1, C, L] and [1, C, H, W] are supported, found shape {xs:?}"
        )));
    }
    let c = xs[1];
    let n: usize = xs[2..].iter().product();
    let epsilon = ctx.float("epsilon", 1e-5)?;
    let mut affine = Vec::with_capacity(2);
    for (i, what) in [(1, "scale"), (2, "bias")] {
        let v = konst(ctx, ins, i, what)?.to_f32();
        if v.len() != c {
            return Err(ctx.err(format!(
                "the {what} has {} values for {c} channels",
                v.len()
            )));
        }
        affine.push(v);
    }
    let norm = LayerNorm {
        axis: 2,
        epsilon,
        gamma: vec![1.0; n],
        beta: vec![0.0; n],
    };
    check(ctx, &xs, &norm)?;
    let [scale, bias] = &affine[..] else {
        return Err(ctx.err("missing scale or bias"));
    };
    if scale.iter().all(|&s| s == 1.0) && bias.iter().all(|&t| t == 0.0) {
        return b.emit(ctx, Op::LayerNorm(norm), vec![x], xs);
    }
    let normalized = b.emit_part(ctx, "normalized", Op::LayerNorm(norm), vec![x], xs.clone())?;
    let per_channel = super::batch_norm::per_channel_affine(scale.clone(), bias.clone());
    b.emit(ctx, per_channel, vec![normalized], xs)
}

/// ONNX `GroupNormalization` (opset 18: `scale` and `bias` per group;
/// from 21: per channel): `[1, C, ...]` viewed as `[1, G, C/G·...]`, each
/// group normalized as a LayerNorm over its values, viewed back, then the
/// per-channel affine as for InstanceNormalization.
pub(crate) fn group_norm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let groups = usize::try_from(ctx.int("num_groups", 0)?)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| ctx.attr_err("num_groups", "must be at least 1"))?;
    let c = xs.get(1).copied().unwrap_or(0);
    if xs.len() < 3 || xs[0] != 1 || c % groups != 0 {
        return Err(ctx.err(format!(
            "inputs [1, C, ...] with C a multiple of num_groups ({groups}) are supported, found shape {xs:?}"
        )));
    }
    // Opset 18's per-group parameters apply to each channel of their group.
    let per_group = ctx.opset < 21;
    let mut affine = Vec::with_capacity(2);
    for (i, what) in [(1, "scale"), (2, "bias")] {
        let v = konst(ctx, ins, i, what)?.to_f32();
        let want = if per_group { groups } else { c };
        if v.len() != want {
            return Err(ctx.err(format!("the {what} has {} values, not {want}", v.len())));
        }
        let per_channel = match per_group {
            true => v
                .iter()
                .flat_map(|&g| std::iter::repeat_n(g, c / groups))
                .collect(),
            false => v,
        };
        affine.push(per_channel);
    }
    let n = xs[1..].iter().product::<usize>() / groups;
    let norm = LayerNorm {
        axis: 2,
        epsilon: ctx.float("epsilon", 1e-5)?,
        gamma: vec![1.0; n],
        beta: vec![0.0; n],
    };
    let grouped = vec![1, groups, n];
    check(ctx, &grouped, &norm)?;
    let viewed = b.emit_part(ctx, "grouped", Op::Reshape, vec![x], grouped.clone())?;
    let normalized = b.emit_part(
        ctx,
        "normalized",
        Op::LayerNorm(norm),
        vec![viewed],
        grouped,
    )?;
    let [scale, bias] = &affine[..] else {
        return Err(ctx.err("missing scale or bias"));
    };
    if scale.iter().all(|&s| s == 1.0) && bias.iter().all(|&t| t == 0.0) {
        return b.emit(ctx, Op::Reshape, vec![normalized], xs);
    }
    let back = b.emit_part(ctx, "channels", Op::Reshape, vec![normalized], xs.clone())?;
    let per_channel = super::batch_norm::per_channel_affine(scale.clone(), bias.clone());
    b.emit(ctx, per_channel, vec![back], xs)
}

impl IrOp for LayerNorm {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, s) = cx.input(0)?;
        let n: usize = s[self.axis..].iter().product();
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks(n.max(1)) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (var + self.epsilon as f64).sqrt();
            for (i, &v) in row.iter().enumerate() {
                let z = (v as f64 - mean) * inv;
                y.push((z * self.gamma[i] as f64 + self.beta[i] as f64) as f32);
            }
        }
        Ok(y)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    /// gamma per position on its own scale (`±127`, exact), the normalized
    /// value `z` with 12 fraction bits, beta on `z·gamma`'s scale.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let y = cx.output_q()?;
        let n = self.gamma.len();
        let z_scale = 1.0 / (1u64 << LAYER_NORM_FRACTION_BITS) as f64;
        let (mut gq, mut scales) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut bias, mut mults, mut shifts) = (Vec::new(), Vec::new(), Vec::new());
        for (&g, &beta) in self.gamma.iter().zip(&self.beta) {
            let g_scale = if g == 0.0 {
                1.0 / 127.0
            } else {
                g.abs() as f64 / 127.0
            };
            gq.push(if g == 0.0 {
                0
            } else {
                127i8 * g.signum() as i8
            });
            scales.push(g_scale as f32);
            let acc_scale = g_scale * z_scale;
            let b = (beta as f64 / acc_scale).round();
            bias.push(b.clamp(-((1u64 << 30) as f64), (1u64 << 30) as f64) as i32);
            let (m, s) = cx.multiplier(acc_scale / y.scale as f64, "output")?;
            mults.push(m);
            shifts.push(s);
        }
        let sx = xq.scale as f64;
        let e = (self.epsilon as f64 * (n * n) as f64 / (sx * sx)).round();
        if e > MAX_LAYER_NORM_EPSILON as f64 {
            return Err(cx.err(format!(
                "epsilon {} is {e:.3e} in the kernel's units (ε·N²/scale²), above 2^40: \
                 the input range is too narrow for this epsilon",
                self.epsilon
            )));
        }
        let e = e as i64;
        let name = &cx.node.name;
        let mut p = [0; w::COUNT];
        p[w::AXIS] = self.axis as i32;
        p[w::EPSILON_LO] = e as u32 as i32;
        p[w::EPSILON_HI] = (e >> 32) as i32;
        // The full output type (int8, or int16 when raised).
        (p[w::ACT_MIN], p[w::ACT_MAX]) = cx.clamp(crate::ir::FusedActivation::None)?;
        let gamma = ConstTensor {
            name: format!("{name}.gamma"),
            dims: vec![n],
            quant: ConstQuant::PerChannel { axis: 0, scales },
            data: ConstData::I8(gq),
        };
        Ok(Lowered {
            opcode: OpCode::LayerNorm,
            inputs: vec![
                x,
                Operand::Constant(gamma),
                int_const(format!("{name}.bias"), bias),
                int_const(format!("{name}.multiplier"), mults),
                shift_const(format!("{name}.shift"), &shifts),
            ],
            params: p.to_vec(),
        })
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        // Two products per value (its square, then gamma).
        let len: usize = graph.tensors[node.output].shape.iter().product();
        2 * len as u64
    }

    fn parameters(&self) -> usize {
        2 * self.gamma.len()
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::Op;
    use crate::ops::testing::{assert_conforms, attr_f, attr_i, floats, one_node, weights};

    /// GroupNormalization on `[1, 6, 8]` in 3 groups: opset 18's scale and
    /// bias per group, opset 21's per channel (tract, the reference, reads
    /// each opset's meaning).
    #[test]
    fn group_norm_runs_as_a_layer_norm_per_group_and_an_affine() {
        for (opset, params) in [(18, 3), (21, 6)] {
            let mut model = one_node(
                "GroupNormalization",
                &[1, 6, 8],
                &["scale", "bias"],
                vec![attr_i("num_groups", 3), attr_f("epsilon", 1e-4)],
                vec![
                    floats(
                        "scale",
                        &[params],
                        &[0.5, 2.0, -1.0, 1.5, 0.25, 1.0][..params as usize],
                    ),
                    floats(
                        "bias",
                        &[params],
                        &[0.1, -0.3, 0.0, 0.2, 0.5, -1.0][..params as usize],
                    ),
                ],
            );
            model.opset_import[0].version = opset;
            let g = assert_conforms("GroupNormalization", &model, 30.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            assert!(
                kinds.contains(&"LayerNorm") && kinds.contains(&"Conv"),
                "{opset}: {kinds:?}"
            );
            assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 6, 8]);
        }
    }

    #[test]
    fn group_norm_refuses_groups_that_do_not_divide_the_channels() {
        let model = one_node(
            "GroupNormalization",
            &[1, 6, 8],
            &["scale", "bias"],
            vec![attr_i("num_groups", 4)],
            vec![
                floats("scale", &[4], &[1.0; 4]),
                floats("bias", &[4], &[0.0; 4]),
            ],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(err.contains("a multiple of num_groups (4)"), "{err}");
    }

    #[test]
    fn layer_norm_runs_in_int8() {
        // Scale and B have the normalized shape (the axes from `axis` on).
        for (axis, shape, normalized) in [
            (-1, &[1, 6, 16][..], &[16][..]),
            (1, &[1, 4, 8][..], &[4, 8][..]),
        ] {
            let model = one_node(
                "LayerNormalization",
                shape,
                &["g", "b"],
                vec![attr_i("axis", axis), attr_f("epsilon", 1e-3)],
                vec![weights("g", normalized, 3), weights("b", normalized, 4)],
            );
            let g = assert_conforms(&format!("axis {axis}"), &model, 30.0);
            assert!(matches!(g.nodes[..], [ref n] if matches!(n.op, Op::LayerNorm(_))));
        }
        // Without a bias, and a gamma with a zero.
        let model = one_node(
            "LayerNormalization",
            &[1, 3, 4],
            &["g"],
            vec![],
            vec![floats("g", &[4], &[1.0, 0.0, -2.0, 0.5])],
        );
        assert_conforms("no bias", &model, 30.0);
    }

    #[test]
    fn instance_norm_runs_as_layer_norm_and_a_per_channel_affine() {
        for (shape, affine) in [
            (&[1, 3, 16][..], true),
            (&[1, 3, 4, 5], true),
            (&[1, 3, 16], false),
        ] {
            let (scale, bias) = if affine {
                (weights("scale", &[3], 5), weights("bias", &[3], 6))
            } else {
                (
                    floats("scale", &[3], &[1.0; 3]),
                    floats("bias", &[3], &[0.0; 3]),
                )
            };
            let model = one_node(
                "InstanceNormalization",
                shape,
                &["scale", "bias"],
                vec![attr_f("epsilon", 1e-4)],
                vec![scale, bias],
            );
            let g = assert_conforms("InstanceNormalization", &model, 30.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
            let want: &[&str] = if affine {
                &["LayerNorm", "Conv"]
            } else {
                &["LayerNorm"]
            };
            assert_eq!(kinds, want, "{shape:?}");
        }
    }

    #[test]
    fn refuses_another_stash_type() {
        let model = one_node(
            "LayerNormalization",
            &[1, 4],
            &["g"],
            vec![attr_i("stash_type", 16)],
            vec![weights("g", &[4], 1)],
        );
        let err = crate::ops::testing::load(&model).unwrap_err().to_string();
        assert!(
            err.contains("stash_type")
                && err.contains("16")
                && err.contains("the_LayerNormalization"),
            "{err}"
        );
    }
}
