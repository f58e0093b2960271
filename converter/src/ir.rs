//! The converter's float graph: what the ONNX model becomes after loading and
//! rewriting, and what quantization consumes.
//!
//! Every op here maps onto one `.mq` op (or onto nothing, for views that the
//! planner makes free). Tensors keep their ONNX names, so the float reference
//! (tract) can be asked for the value of any tensor the int8 model produces.

/// The IR ops and their payloads are defined with everything else about
/// them in the op registry, [`crate::ops`].
pub use crate::ops::concat::Concat;
pub use crate::ops::conv::Conv;
pub use crate::ops::elementwise::{Add, Mul};
pub use crate::ops::fully_connected::FullyConnected;
pub use crate::ops::lut::Unary;
pub use crate::ops::pad::Pad;
pub use crate::ops::pool::{AvgPool, MaxPool};
pub use crate::ops::recurrent::{Cell, Recurrent};
pub use crate::ops::softmax::Softmax;
pub use crate::ops::Op;

/// Index into [`Graph::tensors`].
pub type TensorId = usize;

/// A float tensor value, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Array {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array { shape, data }
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct Tensor {
    /// The ONNX tensor name (graph input, node output or initializer).
    pub name: String,
    /// Static shape; the batch dimension is 1.
    pub shape: Vec<usize>,
    /// `Some` for constants (initializers and folded subgraphs).
    pub value: Option<Array>,
}

#[derive(Clone, Debug)]
pub struct Node {
    /// The ONNX node name this op came from (the first of a fused group).
    pub name: String,
    /// The ONNX op types fused into this node, e.g. `["Conv", "BatchNormalization", "Relu"]`.
    pub onnx_ops: Vec<String>,
    pub op: Op,
    /// Activation inputs and constant operands (Add/Mul). Weights of Conv and
    /// FullyConnected live in the op itself.
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
}

/// A clamp fused into the op that produces a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedActivation {
    None,
    Relu,
    /// Clip / Relu6 with finite bounds.
    Clip {
        min: f32,
        max: f32,
    },
}

impl FusedActivation {
    /// The real interval the activation confines its output to.
    pub fn bounds(self) -> (f32, f32) {
        match self {
            FusedActivation::None => (f32::NEG_INFINITY, f32::INFINITY),
            FusedActivation::Relu => (0.0, f32::INFINITY),
            FusedActivation::Clip { min, max } => (min, max),
        }
    }

    /// `v` within [`Self::bounds`].
    pub fn apply(self, v: f32) -> f32 {
        let (lo, hi) = self.bounds();
        v.max(lo).min(hi)
    }
}

/// 2-D window geometry; 1-D ops use `h = 1` with kernel/stride/dilation 1 and no pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
}

/// A topologically ordered graph with static shapes.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    /// In execution order: every input of a node is a graph input, a constant
    /// or the output of an earlier node.
    pub nodes: Vec<Node>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
    /// Tensors that lost channels to [`crate::prune`]: which part of the
    /// float model's tensor of the same name each one still holds.
    pub pruned: std::collections::BTreeMap<TensorId, KeptChannels>,
    /// The encodings a pre-quantized (QDQ) model fixes; empty otherwise.
    pub qdq: crate::load::qdq::FixedQuant,
    /// What the application applies to some graph outputs outside the model
    /// (`--output-activation`).
    pub output_activations: std::collections::BTreeMap<TensorId, OutputActivation>,
    /// The ranges declared for some graph inputs (`--input-range`: what the
    /// sensor can send), used instead of their calibrated ones.
    pub input_ranges: std::collections::BTreeMap<TensorId, (f32, f32)>,
    /// The dims of some graph inputs that the model leaves dynamic and
    /// their samples fixed (`"time" = 128`), for the report.
    pub dims_from_samples: std::collections::BTreeMap<TensorId, Vec<String>>,
    /// Activation tensors stored as int16 (symmetric, zero point 0) instead
    /// of int8: mixed precision, chosen by [`crate::precision`]. Empty for an
    /// all-int8 model.
    pub wide: std::collections::BTreeSet<TensorId>,
    /// Conv and FullyConnected layers, by output tensor, whose weights are
    /// stored as int16 (16x16) instead of int8: the few whose int8 weights
    /// limit a model even with int16 activations. Each is an int16 layer
    /// (its input or output is in [`Self::wide`]).
    pub wide_weights: std::collections::BTreeSet<TensorId>,
    /// Graph inputs, by name, that the model declares of an integer type
    /// (token indices, lengths; medq runs them as float): their sample
    /// files may be integer `.npy`.
    pub integer_inputs: std::collections::BTreeSet<String>,
}

/// A function the application applies to a raw graph output (logits) outside
/// the model. The output's int8 range is then chosen for what that function
/// can distinguish, and its agreement is measured after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputActivation {
    /// Element-wise logistic function.
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
}

impl OutputActivation {
    pub fn name(self) -> &'static str {
        match self {
            OutputActivation::Sigmoid => "sigmoid",
            OutputActivation::Softmax => "softmax",
        }
    }

    /// `values` (one sample's output) as the application sees them.
    pub fn apply(self, values: &[f32]) -> Vec<f32> {
        match self {
            OutputActivation::Sigmoid => values.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            OutputActivation::Softmax => {
                let top = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = values.iter().map(|&x| (x - top).exp()).collect();
                let sum: f32 = e.iter().sum();
                e.iter().map(|&v| v / sum).collect()
            }
        }
    }
}

/// The channels a pruned tensor kept of the float model's tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptChannels {
    pub axis: usize,
    /// The float tensor's length along `axis`.
    pub original: usize,
    /// Indices along `axis` into the float tensor, ascending.
    pub kept: Vec<usize>,
}

impl KeptChannels {
    /// The kept part of `float`, a row-major value of the float tensor, for
    /// the pruned tensor of shape `shape`.
    pub fn gather(&self, shape: &[usize], float: &[f32]) -> Vec<f32> {
        let outer: usize = shape.iter().take(self.axis).product();
        let inner: usize = shape.iter().skip(self.axis + 1).product();
        let mut out = Vec::with_capacity(outer * self.kept.len() * inner);
        for o in 0..outer {
            for &k in &self.kept {
                let start = (o * self.original + k) * inner;
                if let Some(run) = float.get(start..start + inner) {
                    out.extend_from_slice(run);
                }
            }
        }
        out
    }
}

impl Graph {
    /// Whether `node` stores int16 weights (16x16): raised by mixed
    /// precision ([`Self::wide_weights`]), or fixed at 16 bits by a QDQ
    /// model (ONNX Runtime's A16W16).
    pub fn int16_weights(&self, node: &Node) -> bool {
        self.wide_weights.contains(&node.output) || self.qdq.wide_weights.contains(&node.name)
    }
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id]
    }
    /// Indices of the nodes that read `id`.
    pub fn consumers(&self, id: TensorId) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&id))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_channels_gather_along_their_axis() {
        // A float [2, 3, 2] tensor that kept channels 0 and 2 of axis 1.
        let float: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let kept = KeptChannels {
            axis: 1,
            original: 3,
            kept: vec![0, 2],
        };
        assert_eq!(
            kept.gather(&[2, 2, 2], &float),
            vec![0.0, 1.0, 4.0, 5.0, 6.0, 7.0, 10.0, 11.0]
        );
    }
}
