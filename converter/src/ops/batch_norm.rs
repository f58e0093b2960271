//! ONNX `BatchNormalization` (inference) as a per-channel affine
//! `y = s·x + t`: a depthwise 1×1 [`Conv`] for `[1, C, ...]` inputs, a
//! diagonal [`FullyConnected`] for `[1, C]`. The rewrite folds it into a
//! preceding Conv/FullyConnected when it can (`rewrite::fold_bn`).

use super::onnx::{act, konst, Ins};
use crate::error::ConvertError;
use crate::ir::{Array, Conv, FullyConnected, FusedActivation, Op, Window};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};

/// ONNX `BatchNormalization`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    if ctx.int("training_mode", 0)? != 0 {
        return Err(ctx.attr_err("training_mode", "only inference mode (0) is supported"));
    }
    if ctx.opset < 9 && ctx.int("spatial", 1)? == 0 {
        return Err(ctx.attr_err("spatial", "only spatial = 1 is supported"));
    }
    let c = *xs
        .get(1)
        .ok_or_else(|| ctx.err(format!("input shape {xs:?} has no channel axis")))?;
    let eps = ctx.float("epsilon", 1e-5)?;
    let mut params = Vec::with_capacity(4);
    for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
        let p = konst(ctx, ins, i, what)?;
        if p.len() != c {
            return Err(ctx.err(format!("{what} has {} values for {c} channels", p.len())));
        }
        params.push(p.to_f32());
    }
    let [gamma, beta, mean, var] = &params[..] else {
        return Err(ctx.err("missing parameters"));
    };
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    let op = match xs.len() {
        2 => {
            let mut w = vec![0.0; c * c];
            for (i, s) in scale.iter().enumerate() {
                w[i * c + i] = *s;
            }
            Op::FullyConnected(FullyConnected {
                weights: Array::new(vec![c, c], w),
                bias: shift,
                activation: FusedActivation::None,
            })
        }
        3 | 4 => per_channel_affine(scale, shift),
        // A clip [1, C, T, H, W] (BatchNorm3d): the same per channel over
        // a [1, C, T, H·W] view, the view a 3-D ConvTranspose in time
        // writes, so that the affine folds into it.
        5 if xs[0] == 1 => {
            let flat = vec![1, c, xs[2], xs[3] * xs[4]];
            let view = b.emit_part(ctx, "flat", Op::Reshape, vec![x], flat.clone())?;
            let y = b.emit_part(
                ctx,
                "affine",
                per_channel_affine(scale, shift),
                vec![view],
                flat,
            )?;
            return b.emit(ctx, Op::Reshape, vec![y], xs);
        }
        _ => {
            return Err(ctx.err(format!(
                "inputs of rank 2 to 5 are supported (5: batch 1), found shape {xs:?}"
            )))
        }
    };
    b.emit(ctx, op, vec![x], xs)
}

/// `y = scale[c]·x + shift[c]` on `[1, C, L]` or `[1, C, H, W]`: a
/// depthwise 1×1 Conv.
pub(crate) fn per_channel_affine(scale: Vec<f32>, shift: Vec<f32>) -> Op {
    let c = scale.len();
    Op::Conv(Conv {
        weights: Array::new(vec![c, 1, 1, 1], scale),
        bias: shift,
        window: Window {
            kernel: [1, 1],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [0; 4],
        },
        groups: c,
        activation: FusedActivation::None,
    })
}

#[cfg(test)]
mod tests {
    use crate::ir::Op;
    use crate::ops::testing::{assert_conforms, floats, one_node, weights};

    #[test]
    fn batch_norm_runs_as_a_per_channel_affine() {
        let params = |seed| {
            vec![
                weights("gamma", &[3], seed),
                weights("beta", &[3], seed + 1),
                weights("mean", &[3], seed + 2),
                floats("var", &[3], &[0.5, 1.0, 2.0]),
            ]
        };
        let inputs = ["gamma", "beta", "mean", "var"];
        let image = one_node(
            "BatchNormalization",
            &[1, 3, 4, 5],
            &inputs,
            vec![],
            params(1),
        );
        let g = assert_conforms("[1, C, H, W]", &image, 30.0);
        assert!(matches!(g.nodes[0].op, Op::Conv(_)));
        let vector = one_node("BatchNormalization", &[1, 3], &inputs, vec![], params(4));
        let g = assert_conforms("[1, C]", &vector, 30.0);
        assert!(matches!(g.nodes[0].op, Op::FullyConnected(_)));
    }
}
