//! Conv: 1-D/2-D convolution, grouped and depthwise included.

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
