//! The sliding window shared by Conv and the pools: ONNX geometry
//! (`auto_pad`, pads, ceil mode) → [`Window`], and the float iteration over
//! a window's input positions.

use super::onnx::to_usize;
use crate::error::ConvertError;
use crate::ir::Window;
use crate::load::node::NodeCtx;
use crate::load::tensor::Const;

/// Padding and output size of one convolution / pooling axis set.
pub(crate) struct Geometry {
    pub begins: Vec<usize>,
    pub ends: Vec<usize>,
    pub outs: Vec<usize>,
    /// How far the last (ceil-mode) window reaches past the end padding.
    pub overflow: Vec<usize>,
}

pub(crate) fn geometry(
    ctx: &NodeCtx,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    ceil_mode: bool,
) -> Result<Geometry, ConvertError> {
    let n = input.len();
    let auto_pad = ctx.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let mut g = Geometry {
        begins: vec![0; n],
        ends: vec![0; n],
        outs: vec![0; n],
        overflow: vec![0; n],
    };
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err(ctx.err("kernel sizes, strides and dilations must be positive"));
    }
    match auto_pad.as_str() {
        "NOTSET" | "" => {
            if let Some(p) = ctx.ints("pads")? {
                if p.len() != 2 * n {
                    return Err(
                        ctx.attr_err("pads", format!("expected {} values, found {p:?}", 2 * n))
                    );
                }
                let p = to_usize(ctx, "pads", &p)?;
                g.begins.copy_from_slice(&p[..n]);
                g.ends.copy_from_slice(&p[n..]);
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for i in 0..n {
                let eff = (kernel[i] - 1) * dilations[i] + 1;
                let out = input[i].div_ceil(strides[i]);
                let total = ((out - 1) * strides[i] + eff).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                g.begins[i] = b;
                g.ends[i] = e;
            }
        }
        other => return Err(ctx.attr_err("auto_pad", format!("unknown value {other}"))),
    }
    for i in 0..n {
        let eff = (kernel[i] - 1) * dilations[i] + 1;
        let padded = input[i] + g.begins[i] + g.ends[i];
        if padded < eff {
            return Err(ctx.err(format!(
                "the window ({eff}) is larger than the padded input ({padded}) on spatial axis {i}"
            )));
        }
        let span = padded - eff;
        let mut out = if ceil_mode {
            span.div_ceil(strides[i]) + 1
        } else {
            span / strides[i] + 1
        };
        // A ceil-mode window that would start in the end padding is dropped
        // (PyTorch and onnxruntime agree on this).
        if ceil_mode && out > 1 && (out - 1) * strides[i] >= input[i] + g.begins[i] {
            out -= 1;
        }
        g.outs[i] = out;
        g.overflow[i] = ((out - 1) * strides[i] + eff).saturating_sub(padded);
    }
    Ok(g)
}

/// 1-D geometry lives on the second window axis with `h = 1`.
pub(crate) fn window(
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    begins: &[usize],
    ends: &[usize],
) -> Window {
    let at = |v: &[usize], i: usize, d: usize| v.get(i).copied().unwrap_or(d);
    if kernel.len() == 1 {
        Window {
            kernel: [1, at(kernel, 0, 1)],
            strides: [1, at(strides, 0, 1)],
            dilations: [1, at(dilations, 0, 1)],
            pads: [0, at(begins, 0, 0), 0, at(ends, 0, 0)],
        }
    } else {
        Window {
            kernel: [at(kernel, 0, 1), at(kernel, 1, 1)],
            strides: [at(strides, 0, 1), at(strides, 1, 1)],
            dilations: [at(dilations, 0, 1), at(dilations, 1, 1)],
            pads: [
                at(begins, 0, 0),
                at(begins, 1, 0),
                at(ends, 0, 0),
                at(ends, 1, 0),
            ],
        }
    }
}

/// An input of rank 3 (1-D) or 4 (2-D) and its spatial rank.
pub(crate) fn spatial_rank(
    ctx: &NodeCtx,
    shape: &[usize],
    attr: &str,
) -> Result<usize, ConvertError> {
    match shape.len() {
        3 | 4 => Ok(shape.len() - 2),
        _ => Err(ctx.attr_err(
            attr,
            format!(
                "only 1-D and 2-D {}, and 3-D over a clip [1, C, T, H, W], are supported (input \
                 shape {shape:?})",
                if ctx.op == "Conv" {
                    "convolutions"
                } else {
                    "windows"
                }
            ),
        )),
    }
}

/// What Conv and ConvTranspose read alike from their constant weights and
/// attributes: `group`, the kernel (checked against `kernel_shape`), the
/// kernel as `(kH, kW)` (1-D: `kH = 1`) and the bias (zeros when absent).
pub(crate) struct KernelAttrs {
    pub group: usize,
    pub kernel: Vec<usize>,
    pub kh_kw: (usize, usize),
    pub bias: Vec<f32>,
}

/// [`KernelAttrs`] of weights `w` of rank `n + 2` over an input `xs`, with
/// `cout` output channels.
pub(crate) fn kernel_attrs(
    ctx: &NodeCtx,
    w: &Const,
    bias: Option<&Const>,
    xs: &[usize],
    n: usize,
    cout: impl FnOnce(usize) -> usize,
) -> Result<KernelAttrs, ConvertError> {
    if w.shape.len() != n + 2 {
        return Err(ctx.err(format!(
            "weights of shape {:?} do not fit input {xs:?}",
            w.shape
        )));
    }
    let group = usize::try_from(ctx.int("group", 1)?)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| ctx.attr_err("group", "must be positive"))?;
    let kernel = w.shape[2..].to_vec();
    if let Some(ks) = ctx.usizes("kernel_shape")? {
        if ks != kernel {
            return Err(ctx.attr_err(
                "kernel_shape",
                format!("{ks:?} differs from the weights' {kernel:?}"),
            ));
        }
    }
    let cout = cout(group);
    let bias = match bias {
        Some(c) if c.len() == cout => c.to_f32(),
        Some(c) => {
            return Err(ctx.err(format!(
                "bias has {} values for {cout} output channels",
                c.len()
            )))
        }
        None => vec![0.0; cout],
    };
    // A 3-D kernel's spatial extents (its Conv runs the frames in 2-D).
    let kh_kw = match kernel[..] {
        [kw] => (1, kw),
        [kh, kw] | [_, kh, kw] => (kh, kw),
        _ => return Err(ctx.err(format!("kernel {kernel:?} is not 1-D, 2-D or 3-D"))),
    };
    Ok(KernelAttrs {
        group,
        kernel,
        kh_kw,
        bias,
    })
}

/// A per-spatial-axis attribute (strides, dilations), 1 on every axis when absent.
pub(crate) fn per_axis(ctx: &NodeCtx, attr: &str, n: usize) -> Result<Vec<usize>, ConvertError> {
    match ctx.usizes(attr)? {
        None => Ok(vec![1; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(ctx.attr_err(attr, format!("expected {n} values, found {v:?}"))),
    }
}

impl Window {
    /// The input position `(y, x)` that kernel tap `(ky, kx)` of output
    /// `(oy, ox)` reads, or `None` in the padding of an `h × w` input.
    pub fn tap(
        &self,
        (oy, ox): (usize, usize),
        (ky, kx): (usize, usize),
        (h, w): (usize, usize),
    ) -> Option<(usize, usize)> {
        let y = (oy * self.strides[0] + ky * self.dilations[0]).checked_sub(self.pads[0])?;
        let x = (ox * self.strides[1] + kx * self.dilations[1]).checked_sub(self.pads[1])?;
        (y < h && x < w).then_some((y, x))
    }

    /// Whether tap `(ky, kx)` of output `(oy, ox)` lies inside the padded
    /// `h × w` input (pads included).
    pub fn in_padded(
        &self,
        (oy, ox): (usize, usize),
        (ky, kx): (usize, usize),
        (h, w): (usize, usize),
    ) -> bool {
        let y = oy * self.strides[0] + ky * self.dilations[0];
        let x = ox * self.strides[1] + kx * self.dilations[1];
        y < h + self.pads[0] + self.pads[2] && x < w + self.pads[1] + self.pads[3]
    }

    /// The window's taps `(ky, kx)`, row by row.
    pub fn taps(&self) -> impl Iterator<Item = (usize, usize)> {
        let kw = self.kernel[1];
        (0..self.kernel[0]).flat_map(move |ky| (0..kw).map(move |kx| (ky, kx)))
    }
}
