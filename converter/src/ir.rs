//! The converter's float graph: what the ONNX model becomes after loading and
//! rewriting, and what quantization consumes.
//!
//! Every op here maps onto one `.mq` op (or onto nothing, for views that the
//! planner makes free). Tensors keep their ONNX names, so the float reference
//! (tract) can be asked for the value of any tensor the int8 model produces.

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
}

/// Elementwise nonlinearities: all become a 256-entry table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Relu,
    Clip { min: f32, max: f32 },
    LeakyRelu { alpha: f32 },
    Sigmoid,
    Tanh,
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
}

impl Unary {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Relu => x.max(0.0),
            Unary::Clip { min, max } => x.max(min).min(max),
            Unary::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        }
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

#[derive(Clone, Debug)]
pub enum Op {
    /// `weights` is `[Cout, Cin/groups, kH, kW]` (1-D: `kH = 1`); `bias` has `Cout` entries.
    Conv {
        weights: Array,
        bias: Vec<f32>,
        window: Window,
        groups: usize,
        activation: FusedActivation,
    },
    /// `y = x · Wᵀ + b` over the last axis; `weights` is `[N, K]`.
    FullyConnected {
        weights: Array,
        bias: Vec<f32>,
        activation: FusedActivation,
    },
    /// Two inputs, numpy broadcasting; either may be a constant tensor.
    Add {
        activation: FusedActivation,
    },
    Mul {
        activation: FusedActivation,
    },
    Unary(Unary),
    MaxPool {
        window: Window,
    },
    AvgPool {
        window: Window,
        count_include_pad: bool,
    },
    /// Non-negative axis.
    Softmax {
        axis: usize,
    },
    /// Non-negative axis.
    Concat {
        axis: usize,
    },
    /// Constant padding; `pads` is ONNX order (all begins, then all ends).
    Pad {
        pads: Vec<usize>,
        value: f32,
    },
    /// Flatten, Reshape, Squeeze, Unsqueeze: same data, the output tensor's shape.
    Reshape,
    /// ONNX LSTM / GRU (forward, batch 1, zero initial state): the input is
    /// `[T, 1, I]`, the output the last hidden state `Y_h` `[1, 1, H]`.
    Recurrent(Recurrent),
}

/// The cell of a [`Op::Recurrent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru { linear_before_reset: bool },
}

/// Float weights of an LSTM/GRU with rows in medq's gate order (LSTM i, f,
/// g, o; GRU z, r, n), `G` gates of `hidden` rows each.
#[derive(Clone, Debug)]
pub struct Recurrent {
    pub cell: Cell,
    pub hidden: usize,
    pub input_size: usize,
    /// `[G·H, I]`.
    pub w: Array,
    /// `[G·H, H]`.
    pub r: Array,
    /// ONNX `Wb` and `Rb`, `G·H` each.
    pub bias_w: Vec<f32>,
    pub bias_r: Vec<f32>,
}

impl Op {
    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "Conv",
            Op::FullyConnected { .. } => "FullyConnected",
            Op::Add { .. } => "Add",
            Op::Mul { .. } => "Mul",
            Op::Unary(_) => "Lut",
            Op::MaxPool { .. } => "MaxPool",
            Op::AvgPool { .. } => "AvgPool",
            Op::Softmax { .. } => "Softmax",
            Op::Concat { .. } => "Concat",
            Op::Pad { .. } => "Pad",
            Op::Reshape => "Reshape",
            Op::Recurrent(r) => match r.cell {
                Cell::Lstm => "Lstm",
                Cell::Gru { .. } => "Gru",
            },
        }
    }
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
