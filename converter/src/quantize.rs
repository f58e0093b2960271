//! Float IR → int8 ops, under the numerics contract of `runtime/NUMERICS.md`:
//! per-channel symmetric int8 weights, asymmetric int8 activations, int32 bias,
//! Q31 multiplier + shift requantization, 256-entry tables for nonlinearities.

use medq::format::layout::OpCode;
use medq::numerics::quantize_multiplier;

use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Graph, Node, Op, TensorId};
use crate::ops::recurrent::CellRanges;
use crate::rounding::{self, InputMoments, WeightGrid, WeightQuant};

/// Per-tensor affine quantization: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// The runtime's rounding rule, [`medq::quant::quantize`]: what a device
    /// does to the same value.
    pub fn quantize(self, x: f32) -> i8 {
        medq::quant::quantize(x, self.scale, self.zero_point)
    }
    pub fn dequantize(self, q: i8) -> f32 {
        medq::quant::dequantize(q, self.scale, self.zero_point)
    }

    /// The real range this encoding represents: `[−128, 127]` steps
    /// around the zero point, or `[−32768, 32767]` for an int16 (`wide`)
    /// activation.
    pub fn represented(self, wide: bool) -> (f32, f32) {
        let (lo, hi) = if wide { (-32768, 32767) } else { (-128, 127) };
        let at = |v: i32| (v - self.zero_point) as f32 * self.scale;
        (at(lo), at(hi))
    }
}

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

/// The range whose int8 grid holds every integer in `[lo, hi]` exactly (a
/// step of `1/k`, `k` a whole number), for a tensor whose values are all
/// integers (a padding mask, sequence lengths, indices): a comparison or
/// a cast to an integer type then sees the integers themselves, never a
/// neighbour a rounding away. `None` when the integers span more than 255.
pub fn integer_grid(lo: f32, hi: f32) -> Option<(f32, f32)> {
    let (lo, hi) = (lo.min(0.0).floor(), hi.max(0.0).ceil());
    let span = hi - lo;
    if !(span > 0.0 && span <= 255.0) {
        return None;
    }
    let k = (255.0 / span).floor();
    Some((lo, lo + 255.0 / k))
}

/// Headroom of an int16 activation over its calibrated range: held-out
/// inputs often reach past the calibration samples (a ReLU output 20%
/// above), which int8 must clip. int16 has 256 times int8's steps, so a
/// range four times wider still leaves 64 times int8's resolution.
pub const WIDE_HEADROOM: f32 = 4.0;

/// The int16 encoding of a real range (mixed precision): symmetric, zero
/// point 0, [`WIDE_HEADROOM`] · `max(|lo|, |hi|)` on 32767 — the runtime's
/// contract for int16 activations (`runtime/NUMERICS.md`).
pub fn wide_qparams(lo: f32, hi: f32) -> QParams {
    let bound = WIDE_HEADROOM * lo.abs().max(hi.abs());
    if bound.is_nan() || bound <= 0.0 || !bound.is_finite() {
        return QParams {
            scale: 1.0 / 32768.0,
            zero_point: 0,
        };
    }
    QParams {
        scale: bound / 32767.0,
        zero_point: 0,
    }
}

/// `x` on the int16 grid of `q` (zero point 0), rounded as the runtime
/// rounds ([`medq::quant::quantize`]: half away from zero) and saturated.
pub fn quantize_wide(q: QParams, x: f32) -> i32 {
    let v = (x / q.scale).round();
    // `as` sends NaN to 0 and saturates infinities.
    (v as i32).clamp(i32::from(i16::MIN), i32::from(i16::MAX))
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
    /// Whether it reads or writes an int16 activation (mixed precision):
    /// its kernel then takes dense weights only.
    pub wide: bool,
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

/// How an op's output tensor is quantized ([`crate::ops::IrOp::output_quant`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutputQuant {
    /// From the calibrated range of the output, within the bounds of the
    /// clamp the op applies (`FusedActivation::None`: the whole range).
    Calibrated(FusedActivation),
    /// The first input's: the op moves values without computing new ones,
    /// so its kernel works on the integers directly.
    SameAsInput,
    /// An encoding the op's kernel fixes.
    Fixed(QParams),
    /// A probability in `[0, 1)`, as the Softmax kernels write it: 1/256
    /// steps from −128 in int8, 1/32768 steps from 0 in int16.
    Probability,
}

/// Quantize `graph` given each activation tensor's real range `[lo, hi]`.
pub fn quantize(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
) -> Result<QuantizedGraph, ConvertError> {
    quantize_with_cells(graph, ranges, &[], &[], WeightQuant::default())
}

/// [`quantize`], with the internal ranges of recurrent nodes and the input
/// moments of Conv/FullyConnected nodes (both indexed by node; see
/// [`crate::calibrate::Calibration`]), their weights quantized as `weights`
/// says ([`rounding::quantize_weights`]). A node without moments gets
/// nearest rounding and, on a power-of-two grid, scales chosen on its
/// weights alone.
pub fn quantize_with_cells(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
    cells: &[Option<CellRanges>],
    moments: &[Option<&InputMoments>],
    weights: WeightQuant,
) -> Result<QuantizedGraph, ConvertError> {
    let qparams = assign_qparams(graph, ranges)?;
    let mut ops = Vec::with_capacity(graph.nodes.len());
    for (index, node) in graph.nodes.iter().enumerate() {
        crate::precision::check_node(graph, node)?;
        let cx = LowerCtx {
            graph,
            qparams: &qparams,
            node,
            cell: cells.get(index).and_then(Option::as_ref),
            moments: moments.get(index).copied().flatten(),
            weights,
        };
        let Lowered {
            opcode,
            inputs,
            params,
        } = node.op.def().lower(&cx)?;
        let wide = std::iter::once(&node.output)
            .chain(&node.inputs)
            .any(|t| graph.wide.contains(t));
        ops.push(LoweredOp {
            node: index,
            opcode,
            inputs,
            output: node.output,
            params,
            wide,
        });
    }
    Ok(QuantizedGraph { qparams, ops })
}

/// Activation quantization in topological order, by each op's
/// [`OutputQuant`].
fn assign_qparams(
    graph: &Graph,
    ranges: &[Option<(f32, f32)>],
) -> Result<Vec<Option<QParams>>, ConvertError> {
    let mut q: Vec<Option<QParams>> = vec![None; graph.tensors.len()];
    let calibrated = |id: TensorId,
                      bounds: (f32, f32),
                      q: &[Option<QParams>]|
     -> Result<QParams, ConvertError> {
        if let Some(fixed) = graph.qdq.activation(&graph.tensors[id].name) {
            return Ok(fixed);
        }
        let (lo, hi) = ranges
            .get(id)
            .copied()
            .flatten()
            .or_else(|| crate::load::qdq::table_range(graph, q, id))
            .ok_or_else(|| ConvertError::Quantization {
                node: graph.tensors[id].name.clone(),
                reason: crate::load::qdq::no_range(graph).into(),
            })?;
        let (lo, hi) = (lo.max(bounds.0), hi.min(bounds.1));
        if graph.wide.contains(&id) {
            return Ok(wide_qparams(lo, hi));
        }
        let (scale, zero_point) = activation_qparams(lo, hi);
        Ok(QParams { scale, zero_point })
    };
    for &id in &graph.inputs {
        q[id] = Some(calibrated(id, FusedActivation::None.bounds(), &q)?);
    }
    for node in &graph.nodes {
        let out = match node.op.def().output_quant() {
            OutputQuant::SameAsInput => node
                .inputs
                .first()
                .and_then(|&i| q[i])
                .ok_or_else(|| missing_input(node))?,
            OutputQuant::Fixed(p) => p,
            OutputQuant::Probability => match graph.wide.contains(&node.output) {
                true => crate::ops::softmax::SOFTMAX_OUTPUT_S16,
                false => crate::ops::softmax::SOFTMAX_OUTPUT,
            },
            OutputQuant::Calibrated(clamp) => calibrated(node.output, clamp.bounds(), &q)?,
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

/// The Q31 multiplier and shift of a real rescale factor, or why not.
pub(crate) fn multiplier(node: &Node, real: f64, what: &str) -> Result<(i32, i32), ConvertError> {
    quantize_multiplier(real).ok_or_else(|| ConvertError::Quantization {
        node: node.name.clone(),
        reason: format!(
            "the {what} rescale factor {real:e} cannot be represented (must be in [0, 2^30))"
        ),
    })
}

/// Symmetric per-channel int8 along axis 0 (`scale[c] = max|w_c| / 127`),
/// rounded to nearest.
pub fn quantize_per_channel(weights: &Array) -> (Vec<i8>, Vec<f32>) {
    rounding::quantize_weights(weights, None, WeightQuant::default())
}

/// An `i32` vector constant, quantization None.
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

/// The fused activation as an integer clamp on an output quantized by `out`,
/// an int16 output when `wide`.
pub fn act_clamp(activation: FusedActivation, out: QParams, wide: bool) -> (i32, i32) {
    let (lo, hi) = activation.bounds();
    // Infinite bounds saturate to the full int8 (int16) range.
    match wide {
        true => (quantize_wide(out, lo), quantize_wide(out, hi)),
        false => (i32::from(out.quantize(lo)), i32::from(out.quantize(hi))),
    }
}

/// What an op's [`lower`](crate::ops::IrOp::lower) sees: the graph, the
/// activations' quantization, its node and the calibration data it may use.
pub struct LowerCtx<'a> {
    pub graph: &'a Graph,
    /// Every activation tensor's quantization (`None` for constants).
    pub qparams: &'a [Option<QParams>],
    pub node: &'a Node,
    /// The internal ranges of a recurrent node.
    pub cell: Option<&'a CellRanges>,
    /// The input moments of a weighted node (GPTQ rounds with them; a
    /// power-of-two grid's scales are chosen on them).
    pub moments: Option<&'a InputMoments>,
    /// How Conv and FullyConnected weights are quantized.
    pub weights: WeightQuant,
}

/// An op's part of a [`LoweredOp`].
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    pub opcode: OpCode,
    pub inputs: Vec<Operand>,
    pub params: Vec<i32>,
}

impl LowerCtx<'_> {
    /// A quantization error naming the node.
    pub fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::Quantization {
            node: self.node.name.clone(),
            reason: reason.into(),
        }
    }

    /// The tensor of input `k`.
    pub fn input(&self, k: usize) -> Result<TensorId, ConvertError> {
        self.node
            .inputs
            .get(k)
            .copied()
            .ok_or_else(|| missing_input(self.node))
    }

    fn activation_q(&self, id: TensorId) -> Result<QParams, ConvertError> {
        self.qparams
            .get(id)
            .copied()
            .flatten()
            .ok_or_else(|| missing_input(self.node))
    }

    /// Input `k` as an activation operand, with its quantization.
    pub fn activation(&self, k: usize) -> Result<(Operand, QParams), ConvertError> {
        let id = self.input(k)?;
        Ok((Operand::Activation(id), self.activation_q(id)?))
    }

    /// The output's quantization.
    pub fn output_q(&self) -> Result<QParams, ConvertError> {
        self.activation_q(self.node.output)
    }

    /// Input `k`: an activation, or a constant quantized per tensor over
    /// its own range.
    pub fn operand(&self, k: usize) -> Result<(Operand, QParams), ConvertError> {
        self.operand_within(k, (f32::NEG_INFINITY, f32::INFINITY))
    }

    /// [`Self::operand`] with a constant's values first clamped into
    /// `[lo, hi]`: the values past which the op's output saturates
    /// whatever the other operand is, so that the clamp changes no output
    /// while a mask's `−inf` (or `−1e9`) no longer spends the constant's 256
    /// steps.
    pub fn operand_within(
        &self,
        k: usize,
        (lo, hi): (f32, f32),
    ) -> Result<(Operand, QParams), ConvertError> {
        let id = self.input(k)?;
        let t = &self.graph.tensors[id];
        let Some(v) = &t.value else {
            return Ok((Operand::Activation(id), self.activation_q(id)?));
        };
        let values: Vec<f32> = v.data.iter().map(|&x| x.clamp(lo, hi)).collect();
        let (lo, hi) = (
            values.iter().copied().fold(0.0f32, f32::min),
            values.iter().copied().fold(0.0f32, f32::max),
        );
        let (lo, hi) = match values.iter().all(|v| v.fract() == 0.0) {
            true => integer_grid(lo, hi).unwrap_or((lo, hi)),
            false => (lo, hi),
        };
        let (scale, zero_point) = activation_qparams(lo, hi);
        let qp = QParams { scale, zero_point };
        let data = values.iter().map(|&x| qp.quantize(x)).collect();
        let constant = ConstTensor {
            name: t.name.clone(),
            dims: v.shape.clone(),
            quant: ConstQuant::PerTensor(qp),
            data: ConstData::I8(data),
        };
        Ok((Operand::Constant(constant), qp))
    }

    /// The Q31 multiplier and shift of a real rescale factor.
    pub fn multiplier(&self, real: f64, what: &str) -> Result<(i32, i32), ConvertError> {
        multiplier(self.node, real, what)
    }

    /// The fused activation as an integer clamp on the output.
    pub fn clamp(&self, activation: FusedActivation) -> Result<(i32, i32), ConvertError> {
        let wide = self.graph.wide.contains(&self.node.output);
        Ok(act_clamp(activation, self.output_q()?, wide))
    }

    /// The integer operands of a weighted op (Conv, FullyConnected) after its
    /// input `x`: per-channel int8 weights, i32 bias, requant multipliers and
    /// shifts, quantized as [`Self::weights`] says. Only Conv and
    /// FullyConnected weights take a power-of-two grid: the ops whose
    /// weights the file can store in 4 bits (ConvTranspose stays int8).
    pub fn weighted_operands(
        &self,
        x: QParams,
        weights: &Array,
        bias: &[f32],
    ) -> Result<Vec<Operand>, ConvertError> {
        let y = self.output_q()?;
        // The weight scale at which channel c's bias just fits `i32` (with a
        // little room for rounding); an int16 input's fine scale makes this
        // bite on dead units, whose weights are ~0.
        let fits_at = |c: usize| {
            let bias_c = f64::from(bias.get(c).copied().unwrap_or(0.0));
            bias_c.abs() / (f64::from(x.scale) * f64::from(i32::MAX)) * 1.001
        };
        if self.graph.int16_weights(self.node) {
            let (wq, w_scales) =
                match crate::load::qdq::weights_on_grid(self.graph, self.node, weights) {
                    // A16W16: the model's own int16 weights; its scales are kept, so
                    // a bias they cannot hold is refused rather than clipped.
                    Some(fixed) => {
                        let (wq, w_scales) = fixed?;
                        if let Some(c) =
                            (0..w_scales.len()).find(|&c| f64::from(w_scales[c]) < fits_at(c))
                        {
                            return Err(self.err(format!(
                            "channel {c}'s bias does not fit int32 on the input's scale and the \
                             model's own int16 weight scale (QDQ), which cannot be changed"
                        )));
                        }
                        (wq, w_scales)
                    }
                    None => rounding::quantize_weights_i16(weights, |c| fits_at(c) as f32),
                };
            let dims = &weights.shape;
            return self.weighted_constants((x, y), dims, ConstData::I16(wq), w_scales, bias);
        }
        let fixed =
            crate::load::qdq::weights_on_grid(self.graph, self.node, weights).or_else(|| {
                // A QDQ model's float weights may be on its grid already.
                (!self.graph.qdq.is_empty())
                    .then(|| crate::load::qdq::weights_on_found_grid(weights))
                    .flatten()
                    .map(Ok)
            });
        let fixed_grid = fixed.is_some();
        let packable = matches!(self.node.op, Op::Conv(_) | Op::FullyConnected(_));
        let how = match packable {
            true => self.weights,
            false => WeightQuant {
                grid: WeightGrid::Int8,
                ..self.weights
            },
        };
        let (mut wq, mut w_scales) = match fixed {
            Some(fixed) => fixed?,
            None => rounding::quantize_weights(weights, self.moments, how),
        };
        let input_wide = self
            .node
            .inputs
            .first()
            .is_some_and(|t| self.graph.wide.contains(t));
        for c in 0..w_scales.len() {
            let fits_at = fits_at(c);
            if f64::from(w_scales[c]) < fits_at {
                match (fixed_grid, input_wide) {
                    (false, _) => {
                        let scale = fits_at as f32;
                        rounding::coarsen_channel(
                            weights,
                            &mut wq,
                            &mut w_scales,
                            c,
                            scale,
                            how.grid,
                        );
                    }
                    (true, true) => {
                        return Err(self.err(format!(
                            "channel {c}'s bias does not fit int32 on the int16 input's scale \
                             and the model's own weight scale (QDQ) cannot be changed"
                        )))
                    }
                    // A QDQ model's own scales are kept; the bias clips.
                    (true, false) => {}
                }
            }
        }
        self.weighted_constants((x, y), &weights.shape, ConstData::I8(wq), w_scales, bias)
    }

    /// The weight, bias, multiplier and shift constants of a weighted op
    /// whose weights are quantized (`weights` of shape `dims`, on per-channel
    /// `w_scales`), for input `x` and output `y`.
    fn weighted_constants(
        &self,
        (x, y): (QParams, QParams),
        dims: &[usize],
        weights: ConstData,
        w_scales: Vec<f32>,
        bias: &[f32],
    ) -> Result<Vec<Operand>, ConvertError> {
        let n = w_scales.len();
        let mut bias_q = Vec::with_capacity(n);
        let mut mults = Vec::with_capacity(n);
        let mut shifts = Vec::with_capacity(n);
        for (c, &ws) in w_scales.iter().enumerate() {
            let bias_c = f64::from(bias.get(c).copied().unwrap_or(0.0));
            let acc_scale = x.scale as f64 * ws as f64;
            let b = (bias_c / acc_scale).round();
            bias_q.push(b.clamp(i32::MIN as f64, i32::MAX as f64) as i32);
            let (m, s) = self.multiplier(acc_scale / y.scale as f64, "output")?;
            mults.push(m);
            shifts.push(s);
        }
        let name = &self.node.name;
        Ok(vec![
            Operand::Constant(ConstTensor {
                name: format!("{name}.weights"),
                dims: dims.to_vec(),
                quant: ConstQuant::PerChannel {
                    axis: 0,
                    scales: w_scales,
                },
                data: weights,
            }),
            int_const(format!("{name}.bias"), bias_q),
            int_const(format!("{name}.multiplier"), mults),
            shift_const(format!("{name}.shift"), &shifts),
        ])
    }
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
    fn fused_relu_clamps_at_the_zero_point() {
        let y = QParams {
            scale: 0.02,
            zero_point: -20,
        };
        assert_eq!(act_clamp(FusedActivation::Relu, y, false), (-20, 127));
        assert_eq!(
            act_clamp(FusedActivation::Clip { min: 0.0, max: 1.0 }, y, false),
            (-20, 30)
        );
        assert_eq!(act_clamp(FusedActivation::None, y, false), (-128, 127));
        let wide = wide_qparams(-1.0, 2.0);
        assert_eq!(act_clamp(FusedActivation::Relu, wide, true), (0, 32767));
        assert_eq!(
            act_clamp(
                FusedActivation::Clip {
                    min: -0.25,
                    max: 0.5
                },
                wide,
                true
            ),
            // The int16 scale is 4 · 2 / 32767 (the headroom over |2|).
            (-1024, 2048)
        );
    }
}
