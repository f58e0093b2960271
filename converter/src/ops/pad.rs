//! Pad: constant padding; the output keeps the input's quantization.

use medq::format::layout::{params::pad as w, OpCode};

use super::onnx::{act, konst, opt_konst, to_usize, Ins};
use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{FusedActivation, Graph, Node, Op};
use crate::load::fold;
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::shape::strides;
use crate::load::{Builder, Value};
use crate::quantize::{LowerCtx, Lowered, OutputQuant};

/// `pads` is ONNX order (all begins, then all ends).
#[derive(Clone, Debug)]
pub struct Pad {
    pub pads: Vec<usize>,
    pub value: f32,
}

/// ONNX `Pad`, constant mode: pads and value are attributes before opset 11,
/// constant inputs from it on (opset 18 adds `axes`).
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let mode = ctx.string("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(ctx.attr_err(
            "mode",
            format!("only constant padding is supported, found \"{mode}\""),
        ));
    }
    let (raw, value) = if ctx.opset < 11 {
        let p = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.attr_err("pads", "missing"))?;
        (p, ctx.float("value", 0.0)?)
    } else {
        let c = konst(ctx, ins, 1, "pads")?;
        let p = fold::ints(ctx, &c, "pads")?.to_vec();
        let v = match opt_konst(ctx, ins, 2, "constant_value")? {
            None => 0.0,
            Some(c) => c
                .scalar_f32()
                .ok_or_else(|| ctx.err("constant_value must be a scalar"))?,
        };
        let p = match opt_konst(ctx, ins, 3, "axes")? {
            None => p,
            Some(axes) => {
                let axes = fold::ints(ctx, &axes, "axes")?;
                if p.len() != 2 * axes.len() {
                    return Err(ctx.err(format!("{} pads for {} axes", p.len(), axes.len())));
                }
                let mut full = vec![0i64; 2 * r];
                for (k, &a) in axes.iter().enumerate() {
                    let a = norm_axis(a, r)
                        .ok_or_else(|| ctx.err(format!("axis {a} is out of range")))?;
                    full[a] = p[k];
                    full[a + r] = p[k + axes.len()];
                }
                full
            }
        };
        (p, v)
    };
    if raw.len() != 2 * r {
        return Err(ctx.attr_err(
            "pads",
            format!(
                "expected {} values for rank {r}, found {}",
                2 * r,
                raw.len()
            ),
        ));
    }
    if raw.iter().any(|&p| p < 0) {
        return Err(ctx.attr_err(
            "pads",
            format!("negative pads (cropping) are not supported: {raw:?}"),
        ));
    }
    let pads = to_usize(ctx, "pads", &raw)?;
    let out: Vec<usize> = (0..r).map(|i| xs[i] + pads[i] + pads[i + r]).collect();
    b.emit(ctx, Op::Pad(Pad { pads, value }), vec![x], out)
}

impl IrOp for Pad {
    fn kind(&self) -> &'static str {
        "Pad"
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let (x, s) = cx.input(0)?;
        let os = cx.output_shape;
        let r = s.len();
        if self.pads.len() != 2 * r || os.len() != r {
            return Err(cx.err("pads do not fit the input rank"));
        }
        let (ost, ist) = (strides(os), strides(s));
        let total: usize = os.iter().product();
        let value_at = |flat: usize| {
            let mut off = 0;
            for a in 0..r {
                let i = (flat / ost[a]) % os[a];
                if i < self.pads[a] || i >= self.pads[a] + s[a] {
                    return self.value;
                }
                off += (i - self.pads[a]) * ist[a];
            }
            x[off]
        };
        Ok((0..total).map(value_at).collect())
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::SameAsInput
    }

    /// Parameter words: the quantized pad value, then the begins and ends.
    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let (x, xq) = cx.activation(0)?;
        let mut p = vec![0; w::PADS + self.pads.len()];
        p[w::VALUE] = i32::from(xq.quantize(self.value));
        for (word, &pad) in p[w::PADS..].iter_mut().zip(&self.pads) {
            *word = pad as i32;
        }
        Ok(Lowered {
            opcode: OpCode::Pad,
            inputs: vec![x],
            params: p,
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
    use crate::ops::testing::{assert_conforms, floats, int64s, one_node};

    #[test]
    fn pad_runs_in_int8() {
        let model = one_node(
            "Pad",
            &[1, 2, 5],
            &["pads", "value"],
            vec![],
            vec![
                int64s("pads", &[6], &[0, 1, 2, 0, 0, 3]),
                floats("value", &[], &[0.75]),
            ],
        );
        assert_conforms("Pad", &model, 35.0);
    }
}
