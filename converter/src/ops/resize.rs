//! Resize: nearest or linear resampling of `[N, C, L]` or `[N, C, H, W]`
//! (ONNX Resize). The scale per axis is kept as an exact fraction, which the
//! runtime's integer coordinates use. Cubic resampling runs as constant
//! interpolation matrices, one FullyConnected per resized axis. Upsample (opsets 7–9, deprecated in
//! 10) is Resize-10: asymmetric coordinates, nearest rounding down (tract,
//! which gives the float reference, runs it as that Resize:
//! `float_ref::upsample_as_resize`).

use medq::format::layout::{params::resize as w, OpCode};

use super::onnx::{act, opt_konst, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node, Op};
use crate::load::fold;
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// Nearest (with its rounding) or linear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nearest(i32),
    Linear,
}

/// `scales[a] = (num, den)` per spatial axis `[h, w]` (1-D: `h` is 1/1);
/// `mode`'s rounding and `coordinate` are the runtime's `params::resize` codes.
#[derive(Clone, Debug)]
pub struct Resize {
    pub mode: Mode,
    pub coordinate: i32,
    pub scales: [(u32, u32); 2],
}

/// ONNX `Resize` (opset 10: `X, scales`; from 11: `X, roi, scales, sizes`;
/// from 18: `axes`, `antialias`, `keep_aspect_ratio_policy`).
pub(crate) fn resize(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let legacy = ctx.opset < 11;
    let cubic = !legacy && ctx.string("mode")?.as_deref() == Some("cubic");
    let mode = match cubic {
        true => Mode::Linear,
        false => mode(ctx, legacy)?,
    };
    let coordinate = if legacy {
        w::ASYMMETRIC
    } else {
        coordinate_mode(ctx)?
    };
    refuse_nonzero(ctx, "antialias")?;
    if !cubic {
        refuse_nonzero(ctx, "exclude_outside")?;
    }
    if let Some(p) = ctx
        .string("keep_aspect_ratio_policy")?
        .filter(|p| p != "stretch")
    {
        return Err(ctx.attr_err(
            "keep_aspect_ratio_policy",
            format!("\"{p}\": only \"stretch\" is supported"),
        ));
    }
    let (scales_at, sizes_at) = if legacy { (1, usize::MAX) } else { (2, 3) };
    let scales = opt_konst(ctx, ins, scales_at, "scales")?
        .map(|c| c.to_f32())
        .filter(|s| !s.is_empty());
    let sizes = opt_konst(ctx, ins, sizes_at, "sizes")?
        .map(|c| fold::ints(ctx, &c, "sizes").map(<[i64]>::to_vec))
        .transpose()?
        .filter(|s| !s.is_empty());
    let axes = ctx.ints("axes")?;
    let per_dim = |v: Vec<f64>, fill: f64| expand_axes(ctx, v, axes.as_deref(), xs.len(), fill);
    let factors: Vec<Factor> = match (scales, sizes) {
        (Some(s), None) => per_dim(s.iter().map(|&v| f64::from(v)).collect(), 1.0)?
            .into_iter()
            .enumerate()
            .map(|(d, s)| Factor::from_scale(ctx, xs[d], s))
            .collect::<Result<_, _>>()?,
        (None, Some(z)) => per_dim(z.iter().map(|&v| v as f64).collect(), f64::NAN)?
            .into_iter()
            .enumerate()
            .map(|(d, n)| Factor::from_size(ctx, xs[d], n))
            .collect::<Result<_, _>>()?,
        _ => return Err(ctx.err("exactly one of scales and sizes must be given")),
    };
    match cubic {
        true => cubic_products(b, ctx, x, &xs, coordinate, &factors),
        false => build(b, ctx, x, &xs, mode, coordinate, &factors),
    }
}

/// Cubic resampling (`F.interpolate(mode="bicubic")`): along each resized
/// axis, a product by the constant matrix of ONNX's cubic convolution
/// weights (`cubic_coeff_a`; taps past the edge take the edge value, or
/// with `exclude_outside` are dropped and the rest renormalized), run as a
/// FullyConnected on the last axis: the width directly, the height between
/// two Transposes. An axis kept at its size is left alone.
fn cubic_products(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: crate::ir::TensorId,
    xs: &[usize],
    coordinate: i32,
    f: &[Factor],
) -> Result<Value, ConvertError> {
    use super::fully_connected::FullyConnected;
    let a = f64::from(ctx.float("cubic_coeff_a", -0.75)?);
    let exclude_outside = ctx.int("exclude_outside", 0)? != 0;
    if !(3..=4).contains(&xs.len()) {
        return Err(ctx.err(format!(
            "cubic resizing of 1-D and 2-D inputs only (input shape {xs:?})"
        )));
    }
    keeps_batch_and_channels(ctx, xs, f)?;
    // The weights of output `o` over an axis of `len` resized by `f`.
    let matrix = |f: &Factor, len: usize| -> Array {
        let grid = Resize {
            mode: Mode::Linear,
            coordinate,
            scales: [(1, 1), (f.num, f.den)],
        };
        let mut rows = vec![0.0f32; f.out * len];
        for (o, row) in rows.chunks_exact_mut(len).enumerate() {
            let c = grid.coordinate(1, o, len, f.out);
            let i0 = c.floor();
            let mut taps = [(0usize, 0.0f64); 4];
            for (k, tap) in (-1i64..=2).zip(taps.iter_mut()) {
                let i = i0 as i64 + k;
                let weight = cubic_kernel(c - i as f64, a);
                let inside = (0..len as i64).contains(&i);
                *tap = match (inside, exclude_outside) {
                    (true, _) => (i as usize, weight),
                    (false, true) => (0, 0.0),
                    (false, false) => (i.clamp(0, len as i64 - 1) as usize, weight),
                };
            }
            let sum: f64 = taps.iter().map(|t| t.1).sum();
            let norm = if exclude_outside && sum != 0.0 {
                sum
            } else {
                1.0
            };
            for (i, weight) in taps {
                row[i] += (weight / norm) as f32;
            }
        }
        Array::new(vec![f.out, len], rows)
    };
    let product = |weights: Array| {
        let bias = vec![0.0; weights.shape[0]];
        Op::FullyConnected(FullyConnected {
            weights,
            bias,
            activation: FusedActivation::None,
        })
    };
    let resized = |f: &Factor, len: usize| f.out != len || f.num != f.den;
    let rank = xs.len();
    let (fw, w_len) = (&f[rank - 1], xs[rank - 1]);
    let mut shape = xs.to_vec();
    let mut t = x;
    let height = (rank == 4)
        .then(|| (&f[2], xs[2]))
        .filter(|(f, h)| resized(f, *h));
    if resized(fw, w_len) {
        shape[rank - 1] = fw.out;
        if height.is_none() {
            return b.emit(ctx, product(matrix(fw, w_len)), vec![t], shape);
        }
        t = b.emit_part(
            ctx,
            "width",
            product(matrix(fw, w_len)),
            vec![t],
            shape.clone(),
        )?;
    }
    let Some((fh, h_len)) = height else {
        // Nothing resized: the identity.
        return b.emit(ctx, Op::Reshape, vec![t], shape);
    };
    let swap = [0, 1, 3, 2];
    let t = super::transpose::permute(b, ctx, "height_last", t, &shape, &swap)?;
    let mut swapped: Vec<usize> = swap.iter().map(|&d| shape[d]).collect();
    swapped[3] = fh.out;
    let t = b.emit_part(
        ctx,
        "height",
        product(matrix(fh, h_len)),
        vec![t],
        swapped.clone(),
    )?;
    let out: Vec<usize> = swap.iter().map(|&d| swapped[d]).collect();
    b.emit(
        ctx,
        Op::Transpose(super::transpose::Transpose {
            perm: swap.to_vec(),
        }),
        vec![t],
        out,
    )
}

/// Refuses a resize of dims 0 and 1 (`f` of an input of shape `xs`).
fn keeps_batch_and_channels(ctx: &NodeCtx, xs: &[usize], f: &[Factor]) -> Result<(), ConvertError> {
    match f
        .iter()
        .zip(xs)
        .take(2)
        .any(|(f, &d)| f.out != d || f.num != f.den)
    {
        true => Err(ctx.err("resizing the batch or channel dims is not supported")),
        false => Ok(()),
    }
}

/// ONNX's cubic convolution kernel of coefficient `a` at distance `s`.
fn cubic_kernel(s: f64, a: f64) -> f64 {
    let s = s.abs();
    match s {
        s if s <= 1.0 => ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        s if s < 2.0 => ((a * s - 5.0 * a) * s + 8.0 * a) * s - 4.0 * a,
        _ => 0.0,
    }
}

/// ONNX `Upsample` (opsets 7–9; deprecated in 10): Resize-10's semantics,
/// asymmetric coordinates and nearest rounding down, with one scale per
/// dim, an attribute before opset 9 and input 1 from it.
pub(crate) fn upsample(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let mode = mode(ctx, true)?;
    let scales = if ctx.opset < 9 {
        ctx.floats("scales")?
            .ok_or_else(|| ctx.attr_err("scales", "missing"))?
    } else {
        opt_konst(ctx, ins, 1, "scales")?
            .map(|c| c.to_f32())
            .ok_or_else(|| ctx.err("input 1 (scales) is missing"))?
    };
    if scales.len() != xs.len() {
        return Err(ctx.attr_err(
            "scales",
            format!("{} scales for an input of rank {}", scales.len(), xs.len()),
        ));
    }
    let factors = scales
        .iter()
        .zip(&xs)
        .map(|(&s, &len)| Factor::from_scale(ctx, len, f64::from(s)))
        .collect::<Result<Vec<_>, _>>()?;
    build(b, ctx, x, &xs, mode, w::ASYMMETRIC, &factors)
}

/// A resized dim: its output size and exact scale `num / den`.
#[derive(Clone, Copy, Debug)]
struct Factor {
    out: usize,
    num: u32,
    den: u32,
}

impl Factor {
    /// From a float scale: the smallest fraction within 1e-6 of it
    /// (2.0 → 2/1, 0.5 → 1/2, 1.5 → 3/2); the output is `⌊in · scale⌋`.
    fn from_scale(ctx: &NodeCtx, len: usize, s: f64) -> Result<Factor, ConvertError> {
        let bad = || {
            ctx.attr_err(
                "scales",
                format!("{s} is not a positive ratio of integers ≤ 2^20"),
            )
        };
        if !(s.is_finite() && s > 0.0) {
            return Err(bad());
        }
        let den = (1..=4096u32)
            .find(|&d| {
                ((s * f64::from(d)).round() - s * f64::from(d)).abs() <= 1e-6 * s * f64::from(d)
            })
            .ok_or_else(bad)?;
        let num = (s * f64::from(den)).round();
        if num < 1.0 || num > f64::from(w::MAX_SCALE_TERM) {
            return Err(bad());
        }
        let out = (len as f64 * s + 1e-9).floor() as usize;
        Ok(Factor {
            out,
            num: num as u32,
            den,
        })
    }

    /// From a target size: scale `out / in`, reduced.
    fn from_size(ctx: &NodeCtx, len: usize, n: f64) -> Result<Factor, ConvertError> {
        let out = if n.is_nan() { len } else { n as usize };
        let g = gcd(out, len);
        let (num, den) = (out / g.max(1), len / g.max(1));
        let max = w::MAX_SCALE_TERM as usize;
        if out == 0 || num > max || den > max {
            return Err(ctx.err(format!("resizing {len} to {out} is not supported")));
        }
        Ok(Factor {
            out,
            num: num as u32,
            den: den as u32,
        })
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Opset 18's `axes`: values given for some dims only, `fill` for the rest.
fn expand_axes(
    ctx: &NodeCtx,
    v: Vec<f64>,
    axes: Option<&[i64]>,
    rank: usize,
    fill: f64,
) -> Result<Vec<f64>, ConvertError> {
    let Some(axes) = axes else {
        return if v.len() == rank {
            Ok(v)
        } else {
            Err(ctx.err(format!(
                "{} scales or sizes for an input of rank {rank}",
                v.len()
            )))
        };
    };
    let mut full = vec![fill; rank];
    if axes.len() != v.len() {
        return Err(ctx.attr_err("axes", format!("{axes:?} for {} values", v.len())));
    }
    for (&a, &x) in axes.iter().zip(&v) {
        let a = norm_axis(a, rank)
            .ok_or_else(|| ctx.attr_err("axes", format!("{a} is out of range")))?;
        full[a] = x;
    }
    Ok(full)
}

fn refuse_nonzero(ctx: &NodeCtx, attr: &str) -> Result<(), ConvertError> {
    match ctx.int(attr, 0)? {
        0 => Ok(()),
        v => Err(ctx.attr_err(attr, format!("{v} is not supported (only 0)"))),
    }
}

fn mode(ctx: &NodeCtx, legacy: bool) -> Result<Mode, ConvertError> {
    let mode = ctx.string("mode")?.unwrap_or_else(|| "nearest".into());
    match mode.as_str() {
        "nearest" if legacy => Ok(Mode::Nearest(w::FLOOR)),
        "nearest" => {
            let nm = ctx
                .string("nearest_mode")?
                .unwrap_or_else(|| "round_prefer_floor".into());
            Ok(Mode::Nearest(match nm.as_str() {
                "round_prefer_floor" => w::ROUND_PREFER_FLOOR,
                "round_prefer_ceil" => w::ROUND_PREFER_CEIL,
                "floor" => w::FLOOR,
                "ceil" => w::CEIL,
                other => {
                    return Err(ctx.attr_err("nearest_mode", format!("unknown value \"{other}\"")))
                }
            }))
        }
        "linear" | "bilinear" => Ok(Mode::Linear),
        other => Err(ctx.attr_err(
            "mode",
            format!("\"{other}\" is not supported (nearest, linear and, from opset 11, cubic are)"),
        )),
    }
}

fn coordinate_mode(ctx: &NodeCtx) -> Result<i32, ConvertError> {
    let c = ctx
        .string("coordinate_transformation_mode")?
        .unwrap_or_else(|| "half_pixel".into());
    Ok(match c.as_str() {
        "half_pixel" => w::HALF_PIXEL,
        "asymmetric" => w::ASYMMETRIC,
        "align_corners" => w::ALIGN_CORNERS,
        "pytorch_half_pixel" => w::PYTORCH_HALF_PIXEL,
        other => {
            return Err(ctx.attr_err(
                "coordinate_transformation_mode",
                format!(
                    "\"{other}\" is not supported (half_pixel, asymmetric, align_corners and \
                     pytorch_half_pixel are)"
                ),
            ))
        }
    })
}

fn build(
    b: &mut Builder,
    ctx: &NodeCtx,
    x: crate::ir::TensorId,
    xs: &[usize],
    mode: Mode,
    coordinate: i32,
    f: &[Factor],
) -> Result<Value, ConvertError> {
    // A clip [1, C, T, H, W] resized in time alone (PhysFormer's
    // upsampling): the frames of each pixel, a 2-D Resize of [1, C, T, H·W]
    // with the pixels' scale 1, which every coordinate mode maps to itself.
    if let ([1, c, t, h, w], [_, _, ft, fh, fw]) = (xs, f) {
        let still = |f: &Factor, d: usize| f.out == d && f.num == f.den;
        if still(&f[0], 1) && still(&f[1], *c) && still(fh, *h) && still(fw, *w) {
            let view = b.emit_part(ctx, "pixels", Op::Reshape, vec![x], vec![1, *c, *t, h * w])?;
            let op = Resize {
                mode,
                coordinate,
                scales: [(ft.num, ft.den), (1, 1)],
            };
            let y = b.emit_part(
                ctx,
                "in_time",
                Op::Resize(op),
                vec![view],
                vec![1, *c, ft.out, h * w],
            )?;
            return b.emit(ctx, Op::Reshape, vec![y], vec![1, *c, ft.out, *h, *w]);
        }
    }
    if !(3..=4).contains(&xs.len()) {
        return Err(ctx.err(format!(
            "only 1-D and 2-D resizing, and a clip's resizing in time alone, are supported (input \
             shape {xs:?})"
        )));
    }
    keeps_batch_and_channels(ctx, xs, f)?;
    let spatial = &f[2..];
    let scales = match spatial {
        [w] => [(1, 1), (w.num, w.den)],
        [h, w] => [(h.num, h.den), (w.num, w.den)],
        _ => return Err(ctx.err(format!("only 1-D and 2-D resizing is supported ({xs:?})"))),
    };
    let mut out = xs[..2].to_vec();
    out.extend(spatial.iter().map(|f| f.out));
    let op = Resize {
        mode,
        coordinate,
        scales,
    };
    b.emit(ctx, Op::Resize(op), vec![x], out)
}

impl Resize {
    /// Where output `o` samples an axis of `len` resized to `out`, in `f64`
    /// (exact for these small fractions).
    fn coordinate(&self, axis: usize, o: usize, len: usize, out: usize) -> f64 {
        let (num, den) = self.scales[axis];
        let scale = f64::from(num) / f64::from(den);
        let o = o as f64;
        match self.coordinate {
            w::ASYMMETRIC => o / scale,
            w::ALIGN_CORNERS if out > 1 => o * (len as f64 - 1.0) / (out as f64 - 1.0),
            w::PYTORCH_HALF_PIXEL if out > 1 => (o + 0.5) / scale - 0.5,
            w::HALF_PIXEL => (o + 0.5) / scale - 0.5,
            _ => 0.0,
        }
    }

    /// `(i0, i1, weight of i1)` of output `o` along `axis`.
    fn taps(&self, axis: usize, o: usize, len: usize, out: usize) -> (usize, usize, f64) {
        let c = self.coordinate(axis, o, len, out);
        let last = len as f64 - 1.0;
        match self.mode {
            Mode::Nearest(r) => {
                let i = match r {
                    w::ROUND_PREFER_CEIL => (c + 0.5).floor(),
                    w::FLOOR => c.floor(),
                    w::CEIL => c.ceil(),
                    _ => (c - 0.5).ceil(),
                }
                .clamp(0.0, last) as usize;
                (i, i, 0.0)
            }
            Mode::Linear => {
                let c = c.clamp(0.0, last);
                let i = c.floor();
                (i as usize, (i as usize + 1).min(len - 1), c - i)
            }
        }
    }
}

impl IrOp for Resize {
    fn kind(&self) -> &'static str {
        "Resize"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, xs) = cx.input(0)?;
        let [_, c, h, wd] = cx.nchw(xs)?;
        let [_, _, oh, ow] = cx.nchw(cx.output_shape)?;
        let mut out = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            let at = |y: usize, x0: usize| f64::from(x[(ch * h + y) * wd + x0]);
            for oy in 0..oh {
                let (y0, y1, ry) = self.taps(0, oy, h, oh);
                for ox in 0..ow {
                    let (x0, x1, rx) = self.taps(1, ox, wd, ow);
                    let top = at(y0, x0) * (1.0 - rx) + at(y0, x1) * rx;
                    let bottom = at(y1, x0) * (1.0 - rx) + at(y1, x1) * rx;
                    out.push((top * (1.0 - ry) + bottom * ry) as f32);
                }
            }
        }
        Ok(out)
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, _) = cx.activation(0)?;
        let mut p = [0; w::COUNT];
        (p[w::MODE], p[w::NEAREST]) = match self.mode {
            Mode::Nearest(r) => (w::MODE_NEAREST, r),
            Mode::Linear => (w::MODE_LINEAR, 0),
        };
        p[w::COORDINATE] = self.coordinate;
        p[w::SCALE_NUM_H] = self.scales[0].0 as i32;
        p[w::SCALE_DEN_H] = self.scales[0].1 as i32;
        p[w::SCALE_NUM_W] = self.scales[1].0 as i32;
        p[w::SCALE_DEN_W] = self.scales[1].1 as i32;
        Ok(Lowered {
            opcode: OpCode::Resize,
            inputs: vec![x],
            params: p.to_vec(),
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
    use crate::ops::testing::{assert_conforms, attr_floats, attr_s, floats, one_node};

    /// `model` importing `opset` instead of [`one_node`]'s 17.
    fn at_opset(mut model: tract_onnx::pb::ModelProto, opset: i64) -> tract_onnx::pb::ModelProto {
        model.opset_import[0].version = opset;
        model
    }

    #[test]
    fn upsample_runs_as_resize_10() {
        // Nearest by 3 (where rounding down and Resize's later default,
        // round half down, differ), linear by 2, on [1, 2, 5]; and 2-D.
        for (mode, x, scales) in [
            ("nearest", &[1i64, 2, 5][..], &[1.0f32, 1.0, 3.0][..]),
            ("linear", &[1, 2, 5], &[1.0, 1.0, 2.0]),
            ("nearest", &[1, 2, 3, 4], &[1.0, 1.0, 2.0, 3.0]),
        ] {
            let with_input = one_node(
                "Upsample",
                x,
                &["scales"],
                vec![attr_s("mode", mode)],
                vec![floats("scales", &[scales.len() as i64], scales)],
            );
            let g = assert_conforms("Upsample-9", &at_opset(with_input, 9), 30.0);
            let out: Vec<usize> = x
                .iter()
                .zip(scales)
                .map(|(&d, &s)| (d as f32 * s) as usize)
                .collect();
            assert_eq!(g.tensors[g.outputs[0]].shape, out, "{mode} {scales:?}");
            assert!(g.nodes.iter().any(|n| n.op.kind() == "Resize"));

            let with_attribute = one_node(
                "Upsample",
                x,
                &[],
                vec![attr_s("mode", mode), attr_floats("scales", scales)],
                vec![],
            );
            assert_conforms("Upsample-7", &at_opset(with_attribute, 7), 30.0);
        }
    }

    #[test]
    fn cubic_resizing_is_a_product_per_resized_axis() {
        use crate::ops::testing::{attr_f, attr_i};
        // PyTorch's bicubic (A = −0.75, pytorch_half_pixel) by 2 on [1, 2, 6];
        // 2-D by (2, 3/2) with align_corners; by (1/2, 1) with A = −0.5 and
        // the taps past the edge excluded (the width kept: one product).
        for (x, scales, coordinate, a, exclude, products) in [
            (
                &[1i64, 2, 6][..],
                &[1.0f32, 1.0, 2.0][..],
                "pytorch_half_pixel",
                -0.75,
                0,
                1,
            ),
            (
                &[1, 2, 4, 6],
                &[1.0, 1.0, 2.0, 1.5],
                "align_corners",
                -0.75,
                0,
                2,
            ),
            (
                &[1, 2, 8, 5],
                &[1.0, 1.0, 0.5, 1.0],
                "half_pixel",
                -0.5,
                1,
                1,
            ),
        ] {
            let model = one_node(
                "Resize",
                x,
                &["", "scales"],
                vec![
                    attr_s("mode", "cubic"),
                    attr_s("coordinate_transformation_mode", coordinate),
                    attr_f("cubic_coeff_a", a),
                    attr_i("exclude_outside", exclude),
                ],
                vec![floats("scales", &[scales.len() as i64], scales)],
            );
            let g = assert_conforms("cubic Resize", &model, 35.0);
            let fc = g.nodes.iter().filter(|n| n.op.kind() == "FullyConnected");
            assert_eq!(fc.count(), products, "{x:?} by {scales:?}");
        }
    }

    #[test]
    fn a_clip_resized_in_time_alone_is_a_2d_resize_over_the_pixels() {
        // PhysFormer's nn.Upsample(scale_factor=(2, 1, 1)) on [1, 2, 4, 3, 3],
        // nearest and linear; and a clip resized in space is refused.
        for mode in ["nearest", "linear"] {
            let model = one_node(
                "Resize",
                &[1, 2, 4, 3, 3],
                &["", "scales"],
                vec![attr_s("mode", mode)],
                vec![floats("scales", &[5], &[1.0, 1.0, 2.0, 1.0, 1.0])],
            );
            let g = assert_conforms("Resize in time", &model, 30.0);
            assert_eq!(g.tensors[g.outputs[0]].shape, [1, 2, 8, 3, 3], "{mode}");
        }
        let in_space = one_node(
            "Resize",
            &[1, 2, 4, 3, 3],
            &["", "scales"],
            vec![],
            vec![floats("scales", &[5], &[1.0, 1.0, 1.0, 2.0, 2.0])],
        );
        let err = crate::ops::testing::load(&in_space)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in time alone"), "{err}");
    }
}
