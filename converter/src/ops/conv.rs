//! Conv: 1-D/2-D convolution, grouped and depthwise included; 3-D over a
//! video clip's frames as a 2-D Conv of the frames.

use medq::format::layout::{params::conv as w, OpCode};

use super::onnx::{act, konst, opt_konst, Ins};
use super::window::{geometry, kernel_attrs, per_axis, spatial_rank, window, KernelAttrs};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node, Op, Window};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `weights` is `[Cout, Cin/groups, kH, kW]` (1-D: `kH = 1`); `bias` has `Cout` entries.
#[derive(Clone, Debug)]
pub struct Conv {
    pub weights: Array,
    pub bias: Vec<f32>,
    pub window: Window,
    pub groups: usize,
    pub activation: FusedActivation,
}

/// ONNX `Conv`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "weights")?;
    let bias = opt_konst(ctx, ins, 2, "bias")?;
    if let [1, c, t, h, wd] = xs[..] {
        return conv3d(b, ctx, x, [c, t, h, wd], &w, bias.as_deref());
    }
    let n = spatial_rank(ctx, &xs, "kernel_shape")?;
    let cout = w.shape.first().copied().unwrap_or(0);
    let KernelAttrs {
        group,
        kernel,
        kh_kw: (kh, kw),
        bias,
    } = kernel_attrs(ctx, &w, bias.as_deref(), &xs, n, |_| cout)?;
    let (cin, cin_g) = (xs[1], w.shape[1]);
    if cin_g * group != cin || cout % group != 0 {
        return Err(ctx.err(format!(
            "weights {:?} with group {group} do not fit {cin} input channels",
            w.shape
        )));
    }
    let strides = per_axis(ctx, "strides", n)?;
    let dilations = per_axis(ctx, "dilations", n)?;
    let g = geometry(ctx, &xs[2..], &kernel, &strides, &dilations, false)?;
    let weights = Array::new(vec![cout, cin_g, kh, kw], w.to_f32());
    let mut out = vec![xs[0], cout];
    out.extend_from_slice(&g.outs);
    let op = Op::Conv(Conv {
        weights,
        bias,
        window: window(&kernel, &strides, &dilations, &g.begins, &g.ends),
        groups: group,
        activation: FusedActivation::None,
    });
    b.emit(ctx, op, vec![x], out)
}

/// ONNX `Conv` over a clip `[1, C, T, H, W]` (PhysNet's 3-D convolutions
/// on video): the frames become the batch of one 2-D Conv, whose input
/// channels are the `kT` frames each output frame reads (a temporal im2col:
/// one Gather of the frames per temporal tap, after a Pad of zero frames for
/// the temporal padding, concatenated on the channel axis). So the 3-D sum is one
/// accumulation and one rounding, as a 2-D Conv's. `group` 1 only.
fn conv3d(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: crate::ir::TensorId,
    [c, t, h, wd]: [usize; 4],
    w: &crate::load::tensor::Const,
    bias: Option<&crate::load::tensor::Const>,
) -> Result<Value, ConvertError> {
    use super::gather::{Index, Select};
    use super::transpose::permute;
    let xs = [1, c, t, h, wd];
    let cout = w.shape.first().copied().unwrap_or(0);
    let KernelAttrs {
        group,
        kernel,
        bias,
        ..
    } = kernel_attrs(ctx, w, bias, &xs, 3, |_| cout)?;
    if group != 1 || w.shape[1] != c {
        return Err(ctx.err(format!(
            "weights {:?} with group {group} on {c} input channels: medq takes 3-D convolutions \
             of group 1",
            w.shape
        )));
    }
    let strides = per_axis(ctx, "strides", 3)?;
    let dilations = per_axis(ctx, "dilations", 3)?;
    let g = geometry(ctx, &xs[2..], &kernel, &strides, &dilations, false)?;
    let [kt, kh, kw] = kernel[..] else {
        return Err(ctx.err("a 3-D kernel has three extents"));
    };
    let (t_out, (oh, ow)) = (g.outs[0], (g.outs[1], g.outs[2]));
    let (pad_t, pad_b) = (g.begins[0], g.ends[0]);
    // [1, C, T, H, W] → frames [T, C, H, W], zero frames around for the
    // temporal padding (a Pad).
    let planes = b.emit_part(ctx, "clip", Op::Reshape, vec![x], vec![c, t, h, wd])?;
    let mut frames = permute(b, ctx, "frames", planes, &[c, t, h, wd], &[1, 0, 2, 3])?;
    let padded = t + pad_t + pad_b;
    if pad_t + pad_b > 0 {
        let pads = vec![pad_t, 0, 0, 0, pad_b, 0, 0, 0];
        frames = b.emit_part(
            ctx,
            "padded",
            Op::Pad(super::pad::Pad { pads, value: 0.0 }),
            vec![frames],
            vec![padded, c, h, wd],
        )?;
    }
    // Tap dt of output frame τ reads padded frame τ·sT + dt·dT.
    let mut taps = Vec::with_capacity(kt);
    for dt in 0..kt {
        let (start, step) = (dt * dilations[0], strides[0]);
        taps.push(if start == 0 && step == 1 && t_out == padded {
            frames
        } else {
            b.emit_part(
                ctx,
                &format!("tap{dt}"),
                Op::Select(Select {
                    axis: 0,
                    index: Index::Range {
                        start,
                        step: step as isize,
                    },
                }),
                vec![frames],
                vec![t_out, c, h, wd],
            )?
        });
    }
    let columns = match taps[..] {
        [only] => only,
        _ => b.emit_part(
            ctx,
            "taps",
            Op::Concat(super::concat::Concat { axis: 1 }),
            taps,
            vec![t_out, kt * c, h, wd],
        )?,
    };
    // Weight [o, c, dt, y, x] → [o, dt·C + c, y, x].
    let src = w.to_f32();
    let mut weights = Vec::with_capacity(src.len());
    for o in 0..cout {
        for dt in 0..kt {
            for ci in 0..c {
                let at = (((o * c + ci) * kt + dt) * kh) * kw;
                weights.extend_from_slice(&src[at..at + kh * kw]);
            }
        }
    }
    let conv = Op::Conv(Conv {
        weights: Array::new(vec![cout, kt * c, kh, kw], weights),
        bias,
        window: window(
            &kernel[1..],
            &strides[1..],
            &dilations[1..],
            &g.begins[1..],
            &g.ends[1..],
        ),
        groups: 1,
        activation: FusedActivation::None,
    });
    let y = b.emit_part(
        ctx,
        "per_frame",
        conv,
        vec![columns],
        vec![t_out, cout, oh, ow],
    )?;
    let by_channel = permute(
        b,
        ctx,
        "by_channel",
        y,
        &[t_out, cout, oh, ow],
        &[1, 0, 2, 3],
    )?;
    b.emit(
        ctx,
        Op::Reshape,
        vec![by_channel],
        vec![1, cout, t_out, oh, ow],
    )
}

impl IrOp for Conv {
    fn kind(&self) -> &'static str {
        "Conv"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, xs) = cx.input(0)?;
        let [n, cin, h, wd] = cx.nchw(xs)?;
        let [_, _, oh, ow] = cx.nchw(cx.output_shape)?;
        let [cout, cin_g, kh, kw] = self.weights.shape[..] else {
            return Err(cx.err("weights are not [Cout, Cin/groups, kH, kW]"));
        };
        let per_group = cout / self.groups.max(1);
        let mut out = Vec::with_capacity(n * cout * oh * ow);
        // Each sample of a batch on the same weights.
        for (co, &b0, x) in x.chunks_exact((cin * h * wd).max(1)).take(n).flat_map(|x| {
            self.bias
                .iter()
                .enumerate()
                .take(cout)
                .map(move |(co, b)| (co, b, x))
        }) {
            let group = co / per_group.max(1);
            let weights = &self.weights.data[co * cin_g * kh * kw..(co + 1) * cin_g * kh * kw];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b0;
                    for ci in 0..cin_g {
                        let plane = &x[(group * cin_g + ci) * h * wd..][..h * wd];
                        for (ky, kx) in self.window.taps() {
                            if let Some((y, xi)) = self.window.tap((oy, ox), (ky, kx), (h, wd)) {
                                acc += plane[y * wd + xi] * weights[(ci * kh + ky) * kw + kx];
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
        let win = &self.window;
        let mut p = [0; w::COUNT];
        p[w::STRIDE_H] = win.strides[0] as i32;
        p[w::STRIDE_W] = win.strides[1] as i32;
        p[w::DILATION_H] = win.dilations[0] as i32;
        p[w::DILATION_W] = win.dilations[1] as i32;
        p[w::PAD_TOP] = win.pads[0] as i32;
        p[w::PAD_LEFT] = win.pads[1] as i32;
        p[w::PAD_BOTTOM] = win.pads[2] as i32;
        p[w::PAD_RIGHT] = win.pads[3] as i32;
        p[w::GROUPS] = self.groups as i32;
        p[w::ACT_MIN] = act_min;
        p[w::ACT_MAX] = act_max;
        Ok(Lowered {
            opcode: OpCode::Conv,
            inputs,
            params: p.to_vec(),
        })
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        // Each output element reads Cin/groups · kH · kW weights.
        let out: usize = graph.tensors[node.output].shape.iter().product();
        let per_out: usize = self.weights.shape.iter().skip(1).product();
        (out * per_out) as u64
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
    use crate::ops::testing::{assert_conforms, attr_i, attr_ints, one_node, weights};

    #[test]
    fn a_3d_conv_runs_as_a_2d_conv_of_the_frames() {
        // A clip [1, 2, 6, 5, 5]: 3×3×3 padded in every axis; strided and
        // dilated in time, unpadded; a 1×1×1.
        for (kernel, attrs) in [
            ([3, 3, 3], vec![attr_ints("pads", &[1, 1, 1, 1, 1, 1])]),
            (
                [2, 3, 1],
                vec![
                    attr_ints("strides", &[2, 1, 1]),
                    attr_ints("dilations", &[2, 1, 1]),
                ],
            ),
            ([1, 1, 1], vec![]),
        ] {
            let dims = [4, 2, kernel[0], kernel[1], kernel[2]];
            let model = one_node(
                "Conv",
                &[1, 2, 6, 5, 5],
                &["w", "b"],
                attrs,
                vec![weights("w", &dims, 3), weights("b", &[4], 5)],
            );
            let g = assert_conforms("Conv3d", &model, 35.0);
            let convs = g
                .nodes
                .iter()
                .filter(|n| n.op.def().kind() == "Conv")
                .count();
            assert_eq!(convs, 1, "{kernel:?}");
        }
        let grouped = one_node(
            "Conv",
            &[1, 2, 6, 5, 5],
            &["w"],
            vec![attr_i("group", 2)],
            vec![weights("w", &[2, 1, 3, 3, 3], 3)],
        );
        let err = crate::ops::testing::load(&grouped).unwrap_err().to_string();
        assert!(err.contains("group 1"), "{err}");
    }

    #[test]
    fn conv_runs_in_int8() {
        let grouped_1d = one_node(
            "Conv",
            &[1, 4, 16],
            &["w"],
            vec![
                attr_i("group", 2),
                attr_ints("pads", &[1, 1]),
                attr_ints("strides", &[2]),
                attr_ints("dilations", &[2]),
            ],
            vec![weights("w", &[6, 2, 3], 1)],
        );
        assert_conforms("grouped 1-D", &grouped_1d, 30.0);
        let padded_2d = one_node(
            "Conv",
            &[1, 3, 8, 8],
            &["w", "b"],
            vec![attr_ints("pads", &[1, 0, 1, 2])],
            vec![weights("w", &[4, 3, 3, 3], 2), weights("b", &[4], 3)],
        );
        assert_conforms("padded 2-D", &padded_2d, 30.0);
    }
}
