//! Fold `Add(conv_or_fc_output, constant)` into the producer's bias when the
//! constant is per output channel (or a scalar): PyTorch exports `Linear` on
//! rank-3 inputs as `MatMul` + `Add`, and some exporters split conv biases.

use super::{absorb, label, producer, sole_consumer, RewriteLog};
use crate::ir::{Add, Conv, FullyConnected, FusedActivation, Graph, Op};

pub(super) fn run(g: &mut Graph, log: &mut RewriteLog) -> bool {
    for i in 0..g.nodes.len() {
        let Some(n) = g.nodes.get(i) else {
            continue;
        };
        let Op::Add(Add {
            activation: add_act,
        }) = n.op
        else {
            continue;
        };
        let [a, b] = n.inputs[..] else {
            continue;
        };
        let is_const = |t: usize| g.tensors.get(t).is_some_and(|x| x.value.is_some());
        let (x, c) = match (is_const(a), is_const(b)) {
            (false, true) => (a, b),
            (true, false) => (b, a),
            _ => continue,
        };
        let out_shape = g.tensors.get(n.output).map(|t| t.shape.clone());
        let x_shape = g.tensors.get(x).map(|t| t.shape.clone());
        if out_shape != x_shape {
            continue;
        }
        let Some(p) = producer(g, x) else {
            continue;
        };
        if sole_consumer(g, x) != Some(i) {
            continue;
        }
        let (Some(x_shape), Some(cv)) = (x_shape, g.tensors.get(c).and_then(|t| t.value.clone()))
        else {
            continue;
        };
        let Some(pn) = g.nodes.get_mut(p) else {
            continue;
        };
        let (bias, activation, channel_axis) = match &mut pn.op {
            Op::Conv(Conv {
                bias, activation, ..
            }) => (bias, activation, 1),
            Op::FullyConnected(FullyConnected {
                bias, activation, ..
            }) => (bias, activation, x_shape.len().saturating_sub(1)),
            _ => continue,
        };
        if *activation != FusedActivation::None {
            continue;
        }
        let Some(per_channel) =
            channel_values(&cv.shape, &cv.data, &x_shape, channel_axis, bias.len())
        else {
            continue;
        };
        for (b, v) in bias.iter_mut().zip(per_channel) {
            *b += v;
        }
        *activation = add_act;
        log.0.push(format!(
            "folded {} (bias) into {}",
            label(g, i),
            label(g, p)
        ));
        absorb(g, p, i);
        return true;
    }
    false
}

/// The constant's value for each of `channels` channels, if it varies along
/// `channel_axis` of `out` at most (right-aligned broadcasting).
fn channel_values(
    shape: &[usize],
    data: &[f32],
    out: &[usize],
    channel_axis: usize,
    channels: usize,
) -> Option<Vec<f32>> {
    if shape.len() > out.len() || out.get(channel_axis) != Some(&channels) {
        return None;
    }
    let pad = out.len() - shape.len();
    let mut along = 1;
    for (j, &d) in shape.iter().enumerate() {
        if j + pad == channel_axis {
            if d != channels && d != 1 {
                return None;
            }
            along = d;
        } else if d != 1 {
            return None;
        }
    }
    // Only the channel axis is not 1, so the data is that axis in order.
    (0..channels)
        .map(|k| data.get(if along == 1 { 0 } else { k }).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::channel_values;

    #[test]
    fn per_channel_shapes() {
        let d = [1.0, 2.0, 3.0];
        assert_eq!(channel_values(&[3], &d, &[1, 5, 3], 2, 3), Some(d.to_vec()));
        assert_eq!(
            channel_values(&[3, 1, 1], &d, &[1, 3, 4, 4], 1, 3),
            Some(d.to_vec())
        );
        assert_eq!(
            channel_values(&[1, 3, 1, 1], &d, &[1, 3, 4, 4], 1, 3),
            Some(d.to_vec())
        );
        assert_eq!(
            channel_values(&[1], &[7.0], &[1, 3, 4, 4], 1, 3),
            Some(vec![7.0; 3])
        );
        // Varies along the width, not the channels.
        assert_eq!(channel_values(&[3], &d, &[1, 3, 4, 3], 1, 3), None);
        assert_eq!(
            channel_values(&[3, 1], &d, &[1, 3, 4], 1, 3),
            Some(d.to_vec())
        );
    }
}
