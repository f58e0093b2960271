//! ConvTranspose: 1-D/2-D transposed convolution, grouped included.

use medq::format::layout::{params::conv_transpose as w, OpCode};

use super::onnx::{act, konst, opt_konst, to_usize, Ins};
use super::window::{kernel_attrs, per_axis, spatial_rank, KernelAttrs};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node, Op};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `weights` is `[Cout, Cin/groups, kH, kW]`: ONNX's `[Cin, Cout/groups,
/// kH, kW]` regrouped by output channel (the `.mq` layout, per-channel
/// scales on axis 0). Geometry per axis `[h, w]` (1-D: `h` trivial).
#[derive(Clone, Debug)]
pub struct ConvTranspose {
    pub weights: Array,
    pub bias: Vec<f32>,
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub output_padding: [usize; 2],
    pub groups: usize,
    pub activation: FusedActivation,
}

/// ONNX `ConvTranspose`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let wt = konst(ctx, ins, 1, "weights")?;
    let bias = opt_konst(ctx, ins, 2, "bias")?;
    if let [1, c, t, h, wd] = xs[..] {
        return in_time(b, ctx, x, [c, t, h, wd], &wt, bias.as_deref());
    }
    let n = spatial_rank(ctx, &xs, "kernel_shape")?;
    let (cin, cout_g) = (xs[1], wt.shape.get(1).copied().unwrap_or(0));
    let KernelAttrs {
        group,
        kernel,
        kh_kw: (kh, kw),
        bias,
    } = kernel_attrs(ctx, &wt, bias.as_deref(), &xs, n, |group| cout_g * group)?;
    if wt.shape[0] != cin || cin % group != 0 {
        return Err(ctx.err(format!(
            "weights {:?} with group {group} do not fit {cin} input channels",
            wt.shape
        )));
    }
    let strides = per_axis(ctx, "strides", n)?;
    let dilations = per_axis(ctx, "dilations", n)?;
    let output_padding = match ctx.ints("output_padding")? {
        None => vec![0; n],
        Some(v) if v.len() == n => to_usize(ctx, "output_padding", &v)?,
        Some(v) => {
            return Err(ctx.attr_err(
                "output_padding",
                format!("expected {n} values, found {v:?}"),
            ))
        }
    };
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err(ctx.err("kernel sizes, strides and dilations must be positive"));
    }
    let Padding {
        begins,
        ends,
        output: output_padding,
    } = pads(ctx, &xs[2..], &kernel, &strides, &dilations, output_padding)?;
    let cout = cout_g * group;
    let mut out = vec![xs[0], cout];
    for i in 0..n {
        let full =
            (xs[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + output_padding[i] + 1;
        let o = full
            .checked_sub(begins[i] + ends[i])
            .filter(|&o| o > 0)
            .ok_or_else(|| {
                ctx.attr_err(
                    "pads",
                    format!("{begins:?}, {ends:?} leave no output on spatial axis {i}"),
                )
            })?;
        out.push(o);
    }
    let op = ConvTranspose {
        weights: regroup(&wt.to_f32(), cin, cout_g, group, kh * kw, [kh, kw]),
        bias,
        strides: two(&strides, 1),
        dilations: two(&dilations, 1),
        pads: if n == 1 {
            [0, begins[0], 0, ends[0]]
        } else {
            [begins[0], begins[1], ends[0], ends[1]]
        },
        output_padding: two(&output_padding, 0),
        groups: group,
        activation: FusedActivation::None,
    };
    b.emit(ctx, Op::ConvTranspose(op), vec![x], out)
}

/// A 3-D ConvTranspose over a clip `[1, C, T, H, W]` whose kernel is
/// `[kT, 1, 1]` (PhysNet's temporal upsampling): each pixel's frames are
/// transposed-convolved on their own, so it is a 2-D ConvTranspose of
/// kernel `[kT, 1]` over the view `[1, C, T, H·W]`. Other 3-D kernels, and
/// strides, pads or output padding across the pixels, are refused.
fn in_time(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: crate::ir::TensorId,
    [c, t, h, wd]: [usize; 4],
    wt: &crate::load::tensor::Const,
    bias: Option<&crate::load::tensor::Const>,
) -> Result<Value, ConvertError> {
    let xs = [1, c, t, h, wd];
    let cout_g = wt.shape.get(1).copied().unwrap_or(0);
    let KernelAttrs {
        group,
        kernel,
        bias,
        ..
    } = kernel_attrs(ctx, wt, bias, &xs, 3, |group| cout_g * group)?;
    if wt.shape[0] != c || c % group != 0 {
        return Err(ctx.err(format!(
            "weights {:?} with group {group} do not fit {c} input channels",
            wt.shape
        )));
    }
    let strides = per_axis(ctx, "strides", 3)?;
    let dilations = per_axis(ctx, "dilations", 3)?;
    let output_padding = match ctx.ints("output_padding")? {
        None => vec![0; 3],
        Some(v) if v.len() == 3 => to_usize(ctx, "output_padding", &v)?,
        Some(v) => {
            return Err(ctx.attr_err("output_padding", format!("expected 3 values, found {v:?}")))
        }
    };
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err(ctx.err("kernel sizes, strides and dilations must be positive"));
    }
    let p = pads(ctx, &xs[2..], &kernel, &strides, &dilations, output_padding)?;
    let across_pixels = kernel[1..] != [1, 1]
        || strides[1..] != [1, 1]
        || p.begins[1..] != [0, 0]
        || p.ends[1..] != [0, 0]
        || p.output[1..] != [0, 0];
    if across_pixels {
        return Err(ctx.attr_err(
            "kernel_shape",
            format!(
                "a 3-D transposed convolution of kernel {kernel:?}, strides {strides:?}: medq takes \
                 kernels [kT, 1, 1] that upsample time alone (stride, pads and output padding 0 \
                 across the pixels)"
            ),
        ));
    }
    let (kt, st, dt) = (kernel[0], strides[0], dilations[0]);
    let full = (t - 1) * st + (kt - 1) * dt + p.output[0] + 1;
    let t_out = full
        .checked_sub(p.begins[0] + p.ends[0])
        .filter(|&o| o > 0)
        .ok_or_else(|| ctx.attr_err("pads", "the pads leave no output frame"))?;
    let cout = cout_g * group;
    let op = ConvTranspose {
        weights: regroup(&wt.to_f32(), c, cout_g, group, kt, [kt, 1]),
        bias,
        strides: [st, 1],
        dilations: [dt, 1],
        pads: [p.begins[0], 0, p.ends[0], 0],
        output_padding: [p.output[0], 0],
        groups: group,
        activation: FusedActivation::None,
    };
    let pixels = b.emit_part(ctx, "pixels", Op::Reshape, vec![x], vec![1, c, t, h * wd])?;
    let y = b.emit_part(
        ctx,
        "in_time",
        Op::ConvTranspose(op),
        vec![pixels],
        vec![1, cout, t_out, h * wd],
    )?;
    b.emit(ctx, Op::Reshape, vec![y], vec![1, cout, t_out, h, wd])
}

/// Per spatial axis values as `[h, w]`; 1-D puts its one value on `w`.
fn two(v: &[usize], h_default: usize) -> [usize; 2] {
    match *v {
        [w] => [h_default, w],
        [h, w] => [h, w],
        _ => [h_default, h_default],
    }
}

/// The begin and end pads and the output padding: `pads`, or from
/// `output_shape` / `auto_pad` (ONNX: the total padding `stride·(in − 1) +
/// output_padding + ((k − 1)·d + 1) − out`, split with the extra unit at the
/// end for SAME_UPPER, at the begin otherwise). An `output_shape` larger
/// than the unpadded output grows the output padding instead, as ONNX's
/// reference does (the extra positions get only the bias).
fn pads(
    ctx: &NodeCtx,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    mut output_padding: Vec<usize>,
) -> Result<Padding, ConvertError> {
    let n = input.len();
    let auto_pad = ctx.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let target: Option<Vec<usize>> = match (ctx.usizes("output_shape")?, auto_pad.as_str()) {
        (Some(s), _) => Some(s.iter().rev().take(n).rev().copied().collect()),
        (None, "SAME_UPPER" | "SAME_LOWER") => {
            Some(input.iter().zip(strides).map(|(i, s)| i * s).collect())
        }
        (None, "NOTSET" | "" | "VALID") => None,
        (None, other) => return Err(ctx.attr_err("auto_pad", format!("unknown value {other}"))),
    };
    let Some(target) = target else {
        return match ctx.ints("pads")? {
            None => Ok(Padding {
                begins: vec![0; n],
                ends: vec![0; n],
                output: output_padding,
            }),
            Some(p) if p.len() == 2 * n => {
                let p = to_usize(ctx, "pads", &p)?;
                Ok(Padding {
                    begins: p[..n].to_vec(),
                    ends: p[n..].to_vec(),
                    output: output_padding,
                })
            }
            Some(p) => Err(ctx.attr_err("pads", format!("expected {} values, found {p:?}", 2 * n))),
        };
    };
    if target.len() != n {
        return Err(ctx.attr_err(
            "output_shape",
            format!("{target:?} does not give {n} spatial sizes"),
        ));
    }
    let (mut begins, mut ends) = (vec![0; n], vec![0; n]);
    for i in 0..n {
        let full =
            strides[i] * (input[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1;
        let Some(total) = full.checked_sub(target[i]) else {
            output_padding[i] += target[i] - full;
            continue;
        };
        let small = total / 2;
        (begins[i], ends[i]) = if auto_pad == "SAME_UPPER" {
            (small, total - small)
        } else {
            (total - small, small)
        };
    }
    Ok(Padding {
        begins,
        ends,
        output: output_padding,
    })
}

/// Per spatial axis: pads before and after, and the output padding.
struct Padding {
    begins: Vec<usize>,
    ends: Vec<usize>,
    output: Vec<usize>,
}

/// ONNX weights `[Cin, Cout/g, k]` → `[Cout, Cin/g, k]`: output channel
/// `g·Cout/g + j` takes, for each input channel `g·Cin/g + i`, the taps
/// `W[g·Cin/g + i, j]`.
fn regroup(
    w: &[f32],
    cin: usize,
    cout_g: usize,
    groups: usize,
    taps: usize,
    k: [usize; 2],
) -> Array {
    let cin_g = cin / groups;
    let cout = cout_g * groups;
    let mut out = Vec::with_capacity(cout * cin_g * taps);
    for oc in 0..cout {
        let (g, j) = (oc / cout_g, oc % cout_g);
        for i in 0..cin_g {
            let ic = g * cin_g + i;
            let start = (ic * cout_g + j) * taps;
            out.extend_from_slice(&w[start..start + taps]);
        }
    }
    Array::new(vec![cout, cin_g, k[0], k[1]], out)
}

impl ConvTranspose {
    /// The input position tap `k` of output `o` reads on axis `a`, if any.
    fn source(&self, a: usize, o: usize, k: usize, len: usize) -> Option<usize> {
        let t = (o + self.pads[a]).checked_sub(k * self.dilations[a])?;
        let i = t / self.strides[a];
        (t % self.strides[a] == 0 && i < len).then_some(i)
    }
}

impl IrOp for ConvTranspose {
    fn kind(&self) -> &'static str {
        "ConvTranspose"
    }

    /// The scatter of ONNX's definition, written as a gather per output.
    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, xs) = cx.input(0)?;
        let [_, _, h, wd] = cx.nchw(xs)?;
        let [_, _, oh, ow] = cx.nchw(cx.output_shape)?;
        let [cout, cin_g, kh, kw] = self.weights.shape[..] else {
            return Err(cx.err("weights are not [Cout, Cin/groups, kH, kW]"));
        };
        let per_group = cout / self.groups.max(1);
        let mut out = Vec::with_capacity(cout * oh * ow);
        for (oc, &b0) in self.bias.iter().enumerate().take(cout) {
            let group = oc / per_group.max(1);
            let wts = &self.weights.data[oc * cin_g * kh * kw..][..cin_g * kh * kw];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b0;
                    for ky in 0..kh {
                        let Some(iy) = self.source(0, oy, ky, h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = self.source(1, ox, kx, wd) else {
                                continue;
                            };
                            for ci in 0..cin_g {
                                let xv = x[((group * cin_g + ci) * h + iy) * wd + ix];
                                acc += xv * wts[(ci * kh + ky) * kw + kx];
                            }
                        }
                    }
                    out.push(self.activation.apply(acc));
                }
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(self.activation)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let mut inputs = vec![x];
        inputs.extend(cx.weighted_operands(xq, &self.weights, &self.bias)?);
        let (act_min, act_max) = cx.clamp(self.activation)?;
        let word = |v: usize| {
            i32::try_from(v).map_err(|_| cx.err(format!("{v} does not fit a parameter word")))
        };
        let mut p = [0; w::COUNT];
        p[w::STRIDE_H] = word(self.strides[0])?;
        p[w::STRIDE_W] = word(self.strides[1])?;
        p[w::DILATION_H] = word(self.dilations[0])?;
        p[w::DILATION_W] = word(self.dilations[1])?;
        p[w::PAD_TOP] = word(self.pads[0])?;
        p[w::PAD_LEFT] = word(self.pads[1])?;
        p[w::PAD_BOTTOM] = word(self.pads[2])?;
        p[w::PAD_RIGHT] = word(self.pads[3])?;
        p[w::OUTPUT_PAD_H] = word(self.output_padding[0])?;
        p[w::OUTPUT_PAD_W] = word(self.output_padding[1])?;
        p[w::GROUPS] = word(self.groups)?;
        p[w::ACT_MIN] = act_min;
        p[w::ACT_MAX] = act_max;
        Ok(Lowered {
            opcode: OpCode::ConvTranspose,
            inputs,
            params: p.to_vec(),
        })
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        // Each input element meets Cout/groups · kH · kW weights.
        let input: usize = node
            .inputs
            .first()
            .map_or(0, |&i| graph.tensors[i].shape.iter().product());
        let [cout, _, kh, kw] = self.weights.shape[..] else {
            return 0;
        };
        (input * (cout / self.groups.max(1)) * kh * kw) as u64
    }

    fn parameters(&self) -> usize {
        self.weights.len() + self.bias.len()
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        Some(&mut self.activation)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, attr_ints, attr_s, one_node, weights};

    #[test]
    fn a_3d_transposed_conv_in_time_runs_in_2d_over_the_pixels() {
        // PhysNet's upsampling: kernel [4, 1, 1], stride 2 and pads 1 in time.
        let up = one_node(
            "ConvTranspose",
            &[1, 3, 4, 3, 3],
            &["w", "b"],
            vec![
                attr_ints("strides", &[2, 1, 1]),
                attr_ints("pads", &[1, 0, 0, 1, 0, 0]),
            ],
            vec![weights("w", &[3, 2, 4, 1, 1], 7), weights("b", &[2], 9)],
        );
        assert_conforms("ConvTranspose3d", &up, 35.0);
        let spatial = one_node(
            "ConvTranspose",
            &[1, 3, 4, 3, 3],
            &["w"],
            vec![],
            vec![weights("w", &[3, 2, 2, 3, 3], 7)],
        );
        let err = crate::ops::testing::load(&spatial).unwrap_err().to_string();
        assert!(err.contains("upsample time alone"), "{err}");
    }

    #[test]
    fn conv_transpose_runs_in_int8() {
        let upsample_1d = one_node(
            "ConvTranspose",
            &[1, 4, 16],
            &["w", "b"],
            vec![attr_ints("strides", &[2]), attr_ints("pads", &[1, 1])],
            vec![weights("w", &[4, 3, 4], 1), weights("b", &[3], 2)],
        );
        assert_conforms("1-D stride 2", &upsample_1d, 30.0);
        let grouped_2d = one_node(
            "ConvTranspose",
            &[1, 4, 5, 6],
            &["w"],
            vec![
                attr_i("group", 2),
                attr_ints("strides", &[2, 3]),
                attr_ints("dilations", &[1, 2]),
                attr_ints("pads", &[1, 0, 0, 2]),
                attr_ints("output_padding", &[1, 2]),
            ],
            vec![weights("w", &[4, 3, 3, 2], 3)],
        );
        assert_conforms("grouped 2-D with output padding", &grouped_2d, 30.0);
        let same = one_node(
            "ConvTranspose",
            &[1, 2, 7],
            &["w"],
            vec![attr_ints("strides", &[2]), attr_s("auto_pad", "SAME_UPPER")],
            vec![weights("w", &[2, 2, 3], 4)],
        );
        assert_conforms("SAME_UPPER", &same, 30.0);
    }
}
