//! Float IR → int8 ops, under the numerics contract of `runtime/NUMERICS.md`:
//! per-channel symmetric int8 weights, asymmetric int8 activations, int32 bias,
//! Q31 multiplier + shift requantization, 256-entry tables for nonlinearities.

use medq::format::layout::{params, OpCode};
use medq::numerics::quantize_multiplier;

use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Graph, Node, Op, TensorId, Unary, Window};
use crate::recurrent::CellRanges;
use crate::rounding::{self, InputMoments};

/// Per-tensor affine quantization: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// Round half away from zero, then saturate: the same rule as `medq::quant::quantize`.
    pub fn quantize(self, x: f32) -> i8 {
        ((x / self.scale).round() + self.zero_point as f32).clamp(-128.0, 127.0) as i8
    }
    pub fn dequantize(self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// The softmax output encoding fixed by the format: probabilities in `[0, 1)` on 1/256 steps.
pub const SOFTMAX_OUTPUT: QParams = QParams {
    scale: 1.0 / 256.0,
    zero_point: -128,
};

/// Scale and zero point covering `[lo, hi]` (which must contain 0) with 256 levels.
pub fn activation_qparams(lo: f32, hi: f32) -> (f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 || !range.is_finite() {
        // A constant-zero tensor: any scale represents it exactly.
        return (1.0 / 128.0, 0);
    }
    let scale = range / 255.0;
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zero_point)
}

/// How a constant's integers map to reals.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstQuant {
    None,
    PerTensor(QParams),
    /// Symmetric, zero point 0, one scale per index of `axis`.
    PerChannel {
        axis: u8,
        scales: Vec<f32>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConstTensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub quant: ConstQuant,
    pub data: ConstData,
}

impl ConstTensor {
    pub fn byte_len(&self) -> usize {
        match &self.data {
            ConstData::I8(v) => v.len(),
            ConstData::I16(v) => 2 * v.len(),
            ConstData::I32(v) => 4 * v.len(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Activation(TensorId),
    Constant(ConstTensor),
}

/// One `.mq` op, ready to write.
#[derive(Clone, Debug, PartialEq)]
pub struct LoweredOp {
    /// The IR node it comes from.
    pub node: usize,
    pub opcode: OpCode,
    pub inputs: Vec<Operand>,
    pub output: TensorId,
    pub params: Vec<i32>,
}

impl LoweredOp {
    pub fn constant_bytes(&self) -> usize {
        self.inputs
            .iter()
            .map(|o| match o {
                Operand::Constant(c) => c.byte_len(),
                Operand::Activation(_) => 0,
            })
            .sum()
    }
}

#[derive(Clone, Debug)]
pub struct QuantizedGraph {
    /// Quantization of every activation tensor (`None` for constants).
    pub qparams: Vec<Option<QParams>>,
    pub ops: Vec<LoweredOp>,
}

/// Quantize `graph` given each activation tensor's real range `[lo, hi]`.
pub fn quantize(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
) -> Result<QuantizedGraph, ConvertError> {
    quantize_with_cells(graph, ranges, &[], &[])
}

/// [`quantize`], with the internal ranges of recurrent nodes and the input
/// moments that GPTQ rounds Conv/FullyConnected weights with (both indexed by
/// node; see [`crate::calibrate::Calibration`]). A node without moments gets
/// nearest rounding.
pub fn quantize_with_cells(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
    cells: &[Option<CellRanges>],
    moments: &[Option<&InputMoments>],
) -> Result<QuantizedGraph, ConvertError> {
    let qparams = assign_qparams(graph, ranges)?;
    let mut ops = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let cell = cells.get(i).and_then(Option::as_ref);
        let m = moments.get(i).copied().flatten();
        ops.push(lower(graph, &qparams, i, node, cell, m)?);
    }
    Ok(QuantizedGraph { qparams, ops })
}

/// Activation quantization in topological order. Ops that move values without
/// computing new ones (pools, pad, reshape) keep their input's encoding, which
/// lets their kernels work on the integers directly; softmax has a fixed one.
fn assign_qparams(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
) -> Result<Vec<Option<QParams>>, ConvertError> {
    let mut q: Vec<Option<QParams>> = vec![None; graph.tensors.len()];
    let calibrated = |id: TensorId, bounds: (f32, f32)| -> Result<QParams, ConvertError> {
        let (lo, hi) =
            ranges
                .get(id)
                .copied()
                .flatten()
                .ok_or_else(|| ConvertError::Quantization {
                    node: graph.tensors[id].name.clone(),
                    reason: "no calibration range was observed for this tensor".into(),
                })?;
        let (lo, hi) = (lo.max(bounds.0), hi.min(bounds.1));
        let (scale, zero_point) = activation_qparams(lo, hi);
        Ok(QParams { scale, zero_point })
    };
    let open = (f32::NEG_INFINITY, f32::INFINITY);
    for &id in &graph.inputs {
        q[id] = Some(calibrated(id, open)?);
    }
    for node in &graph.nodes {
        let input_q = node.inputs.first().and_then(|&i| q[i]);
        let out = match &node.op {
            Op::MaxPool { .. } | Op::AvgPool { .. } | Op::Pad { .. } | Op::Reshape => {
                input_q.ok_or_else(|| missing_input(node))?
            }
            Op::Softmax { .. } => SOFTMAX_OUTPUT,
            Op::Conv { activation, .. }
            | Op::FullyConnected { activation, .. }
            | Op::Add { activation }
            | Op::Mul { activation } => calibrated(node.output, activation.bounds())?,
            Op::Unary(_) | Op::Concat { .. } | Op::Recurrent(_) => calibrated(node.output, open)?,
        };
        q[node.output] = Some(out);
    }
    Ok(q)
}

fn missing_input(node: &Node) -> ConvertError {
    ConvertError::Quantization {
        node: node.name.clone(),
        reason: "its input has no quantization parameters".into(),
    }
}

fn act_q(q: &[Option<QParams>], node: &Node, id: TensorId) -> Result<QParams, ConvertError> {
    q.get(id)
        .copied()
        .flatten()
        .ok_or_else(|| missing_input(node))
}

pub(crate) fn multiplier(node: &Node, real: f64, what: &str) -> Result<(i32, i32), ConvertError> {
    quantize_multiplier(real).ok_or_else(|| ConvertError::Quantization {
        node: node.name.clone(),
        reason: format!(
            "the {what} rescale factor {real:e} cannot be represented (must be in [0, 2^30))"
        ),
    })
}

/// The fused activation as an integer clamp on the output.
fn act_clamp(activation: FusedActivation, out: QParams) -> (i32, i32) {
    let (lo, hi) = activation.bounds();
    let to_q = |v: f32, default: i32| {
        if v.is_finite() {
            ((v / out.scale).round() as i64 + out.zero_point as i64).clamp(-128, 127) as i32
        } else {
            default
        }
    };
    (to_q(lo, -128), to_q(hi, 127))
}

/// Symmetric per-channel int8 along axis 0 (`scale[c] = max|w_c| / 127`),
/// rounded to nearest.
pub fn quantize_per_channel(weights: &Array) -> (Vec<i8>, Vec<f32>) {
    rounding::quantize_weights(weights, None)
}

/// The integer parts shared by Conv and FullyConnected: weights, bias, requant tables.
fn weighted_operands(
    node: &Node,
    weights: &Array,
    bias: &[f32],
    x: QParams,
    y: QParams,
    moments: Option<&InputMoments>,
) -> Result<Vec<Operand>, ConvertError> {
    let (wq, w_scales) = rounding::quantize_weights(weights, moments);
    let n = w_scales.len();
    let mut bias_q = Vec::with_capacity(n);
    let mut mults = Vec::with_capacity(n);
    let mut shifts = Vec::with_capacity(n);
    for (c, &ws) in w_scales.iter().enumerate() {
        let acc_scale = x.scale as f64 * ws as f64;
        let b = bias.get(c).copied().unwrap_or(0.0) as f64;
        bias_q.push(
            (b / acc_scale)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let (m, s) = multiplier(node, acc_scale / y.scale as f64, "output")?;
        mults.push(m);
        shifts.push(s);
    }
    let name = &node.name;
    Ok(vec![
        Operand::Constant(ConstTensor {
            name: format!("{name}.weights"),
            dims: weights.shape.clone(),
            quant: ConstQuant::PerChannel {
                axis: 0,
                scales: w_scales,
            },
            data: ConstData::I8(wq),
        }),
        int_const(format!("{name}.bias"), bias_q),
        int_const(format!("{name}.multiplier"), mults),
        shift_const(format!("{name}.shift"), &shifts),
    ])
}

pub(crate) fn int_const(name: String, data: Vec<i32>) -> Operand {
    Operand::Constant(ConstTensor {
        name,
        dims: vec![data.len()],
        quant: ConstQuant::None,
        data: ConstData::I32(data),
    })
}

/// A per-channel shift vector: the format stores it as `i8` `[n]`,
/// quantization None. `quantize_multiplier` gives shifts in
/// `MIN_SHIFT..=MAX_SHIFT`, so the clamp changes nothing and the cast is exact.
pub(crate) fn shift_const(name: String, shifts: &[i32]) -> Operand {
    use medq::numerics::{MAX_SHIFT, MIN_SHIFT};
    let data: Vec<i8> = shifts
        .iter()
        .map(|&s| s.clamp(MIN_SHIFT, MAX_SHIFT) as i8)
        .collect();
    Operand::Constant(ConstTensor {
        name,
        dims: vec![data.len()],
        quant: ConstQuant::None,
        data: ConstData::I8(data),
    })
}

/// An activation operand, or a constant operand quantized per tensor.
fn elementwise_operand(
    graph: &Graph,
    q: &[Option<QParams>],
    node: &Node,
    id: TensorId,
) -> Result<(Operand, QParams), ConvertError> {
    let t = &graph.tensors[id];
    match &t.value {
        None => Ok((Operand::Activation(id), act_q(q, node, id)?)),
        Some(v) => {
            let lo = v.data.iter().copied().fold(0.0f32, f32::min);
            let hi = v.data.iter().copied().fold(0.0f32, f32::max);
            let (scale, zero_point) = activation_qparams(lo, hi);
            let qp = QParams { scale, zero_point };
            let data = v.data.iter().map(|&x| qp.quantize(x)).collect();
            Ok((
                Operand::Constant(ConstTensor {
                    name: t.name.clone(),
                    dims: v.shape.clone(),
                    quant: ConstQuant::PerTensor(qp),
                    data: ConstData::I8(data),
                }),
                qp,
            ))
        }
    }
}

fn window_params(w: &Window) -> [i32; 10] {
    [
        w.kernel[0] as i32,
        w.kernel[1] as i32,
        w.strides[0] as i32,
        w.strides[1] as i32,
        w.dilations[0] as i32,
        w.dilations[1] as i32,
        w.pads[0] as i32,
        w.pads[1] as i32,
        w.pads[2] as i32,
        w.pads[3] as i32,
    ]
}

/// Fractional bits kept when two addends are brought to a common scale.
const ADD_LEFT_SHIFT: i32 = 20;

fn lower(
    graph: &Graph,
    q: &[Option<QParams>],
    index: usize,
    node: &Node,
    cell: Option<&CellRanges>,
    moments: Option<&InputMoments>,
) -> Result<LoweredOp, ConvertError> {
    let y = act_q(q, node, node.output)?;
    let first = *node.inputs.first().ok_or_else(|| missing_input(node))?;
    let mut inputs = vec![Operand::Activation(first)];
    let (opcode, params): (OpCode, Vec<i32>) = match &node.op {
        Op::Conv {
            weights,
            bias,
            window,
            groups,
            activation,
        } => {
            let x = act_q(q, node, first)?;
            inputs.extend(weighted_operands(node, weights, bias, x, y, moments)?);
            let (lo, hi) = act_clamp(*activation, y);
            let mut p = vec![0; params::conv::COUNT];
            p[params::conv::STRIDE_H] = window.strides[0] as i32;
            p[params::conv::STRIDE_W] = window.strides[1] as i32;
            p[params::conv::DILATION_H] = window.dilations[0] as i32;
            p[params::conv::DILATION_W] = window.dilations[1] as i32;
            p[params::conv::PAD_TOP] = window.pads[0] as i32;
            p[params::conv::PAD_LEFT] = window.pads[1] as i32;
            p[params::conv::PAD_BOTTOM] = window.pads[2] as i32;
            p[params::conv::PAD_RIGHT] = window.pads[3] as i32;
            p[params::conv::GROUPS] = *groups as i32;
            p[params::conv::ACT_MIN] = lo;
            p[params::conv::ACT_MAX] = hi;
            (OpCode::Conv, p)
        }
        Op::FullyConnected {
            weights,
            bias,
            activation,
        } => {
            let x = act_q(q, node, first)?;
            inputs.extend(weighted_operands(node, weights, bias, x, y, moments)?);
            let (lo, hi) = act_clamp(*activation, y);
            (OpCode::FullyConnected, vec![lo, hi])
        }
        Op::Add { activation } | Op::Mul { activation } => {
            let b_id = *node.inputs.get(1).ok_or_else(|| missing_input(node))?;
            let (a_op, a) = elementwise_operand(graph, q, node, first)?;
            let (b_op, b) = elementwise_operand(graph, q, node, b_id)?;
            inputs = vec![a_op, b_op];
            let (lo, hi) = act_clamp(*activation, y);
            if matches!(node.op, Op::Add { .. }) {
                let twice_max = 2.0 * (a.scale as f64).max(b.scale as f64);
                let (am, ash) = multiplier(node, a.scale as f64 / twice_max, "first input")?;
                let (bm, bsh) = multiplier(node, b.scale as f64 / twice_max, "second input")?;
                let (om, osh) = multiplier(
                    node,
                    twice_max / ((1i64 << ADD_LEFT_SHIFT) as f64 * y.scale as f64),
                    "output",
                )?;
                (
                    OpCode::Add,
                    vec![ADD_LEFT_SHIFT, am, ash, bm, bsh, om, osh, lo, hi],
                )
            } else {
                let (om, osh) = multiplier(
                    node,
                    a.scale as f64 * b.scale as f64 / y.scale as f64,
                    "output",
                )?;
                (OpCode::Mul, vec![om, osh, lo, hi])
            }
        }
        Op::Unary(f) => {
            let x = act_q(q, node, first)?;
            inputs.push(Operand::Constant(ConstTensor {
                name: format!("{}.table", node.name),
                dims: vec![256],
                quant: ConstQuant::None,
                data: ConstData::I8(lut(*f, x, y)),
            }));
            (OpCode::Lut, vec![])
        }
        Op::MaxPool { window } => {
            let mut p = window_params(window).to_vec();
            p.push(0);
            (OpCode::MaxPool, p)
        }
        Op::AvgPool {
            window,
            count_include_pad,
        } => {
            let mut p = window_params(window).to_vec();
            p.push(*count_include_pad as i32);
            (OpCode::AvgPool, p)
        }
        Op::Softmax { axis } => {
            let x = act_q(q, node, first)?;
            inputs.push(int_const(
                format!("{}.exp_table", node.name),
                exp_table(x.scale),
            ));
            (OpCode::Softmax, vec![*axis as i32])
        }
        Op::Concat { axis } => {
            inputs.clear();
            let mut p = vec![*axis as i32];
            for &id in &node.inputs {
                let (operand, x) = elementwise_operand(graph, q, node, id)?;
                let (m, s) = multiplier(node, x.scale as f64 / y.scale as f64, "input")?;
                inputs.push(operand);
                p.extend([m, s]);
            }
            (OpCode::Concat, p)
        }
        Op::Pad { pads, value } => {
            let x = act_q(q, node, first)?;
            let mut p = vec![x.quantize(*value) as i32];
            p.extend(pads.iter().map(|&v| v as i32));
            (OpCode::Pad, p)
        }
        Op::Reshape => (OpCode::Reshape, vec![]),
        Op::Recurrent(rec) => {
            let x = act_q(q, node, first)?;
            let (opcode, operands, words) = crate::recurrent::lower(node, rec, x, y, cell)?;
            inputs.extend(operands);
            (opcode, words)
        }
    };
    Ok(LoweredOp {
        node: index,
        opcode,
        inputs,
        output: node.output,
        params,
    })
}

/// `table[i] = quantize_out(f(dequantize_in(i − 128)))`.
pub fn lut(f: Unary, x: QParams, y: QParams) -> Vec<i8> {
    (-128..=127i32)
        .map(|v| y.quantize(f.apply(x.dequantize(v as i8))))
        .collect()
}

/// `table[d] = round(2^24 · exp(−d · scale))`, the softmax numerator for `d = max − x`.
pub fn exp_table(input_scale: f32) -> Vec<i32> {
    (0..256)
        .map(|d| ((-(d as f64) * input_scale as f64).exp() * (1u32 << 24) as f64).round() as i32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_qparams_cover_the_range_and_zero_exactly() {
        let (s, z) = activation_qparams(-1.0, 3.0);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        let q = QParams {
            scale: s,
            zero_point: z,
        };
        assert_eq!(q.dequantize(q.quantize(0.0)), 0.0);
        assert!((q.dequantize(-128) + 1.0).abs() <= s / 2.0 + 1e-6);
        assert!((q.dequantize(127) - 3.0).abs() <= s / 2.0 + 1e-6);
        // All-positive ranges put the zero point at the bottom.
        assert_eq!(activation_qparams(0.0, 6.0).1, -128);
        assert_eq!(activation_qparams(-6.0, 0.0).1, 127);
    }

    #[test]
    fn per_channel_weights_use_each_channels_max() {
        let w = Array::new(vec![2, 3], vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0]);
        let (q, s) = quantize_per_channel(&w);
        assert_eq!(q, vec![64, -127, 32, 0, 0, 0]);
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(s[1], 1.0, "an all-zero channel gets a harmless scale");
    }

    #[test]
    fn relu_table_is_a_clamp_at_zero() {
        let x = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let y = QParams {
            scale: 0.05,
            zero_point: -128,
        };
        let t = lut(Unary::Relu, x, y);
        assert_eq!(t[0], -128); // x = −12.8 → 0
        assert_eq!(t[128], -128); // x = 0 → 0
        assert_eq!(t[128 + 5], -118); // x = 0.5 → 10 steps of 0.05
        assert_eq!(t[255], 126); // x = 12.7 → 254 steps of 0.05 above −128
    }

    #[test]
    fn exp_table_starts_at_one_and_decays() {
        let t = exp_table(0.1);
        assert_eq!(t[0], 1 << 24);
        assert_eq!(t[10], ((-1.0f64).exp() * 16777216.0).round() as i32);
        assert!(t.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn fused_relu_clamps_at_the_zero_point() {
        let y = QParams {
            scale: 0.02,
            zero_point: -20,
        };
        assert_eq!(act_clamp(FusedActivation::Relu, y), (-20, 127));
        assert_eq!(
            act_clamp(FusedActivation::Clip { min: 0.0, max: 1.0 }, y),
            (-20, 30)
        );
        assert_eq!(act_clamp(FusedActivation::None, y), (-128, 127));
    }
}
