//! Fourier transforms as constant linear maps.
//!
//! ONNX `STFT` of a real signal (a spectrogram front end: `torch.stft`
//! from both PyTorch exporters). The windowed DFT of each frame is a
//! convolution: output channel `2k` correlates the signal with
//! `w[n]·cos(2πkn/N)`, channel `2k+1` with `−w[n]·sin(2πkn/N)`, strided by
//! the hop. So it runs as one Conv with constant weights, then a Transpose
//! and a view to ONNX's `[batch, frames, bins, 2]`.
//!
//! ONNX `DFT` (`torch.fft.rfft`/`fft`/`ifft`/`irfft`, which only the dynamo
//! exporter writes): every output value along the transformed axis is a
//! fixed combination of the input values along it, so the transform is one
//! FullyConnected over `(points, re/im)` with the cosine and sine rows as
//! weights, the axis moved next to the real/imaginary one and back.

use std::f64::consts::PI;

use super::conv::Conv;
use super::fully_connected::FullyConnected;
use super::onnx::{act, opt_konst, Ins};
use super::transpose::{permute, Transpose};
use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Op, Window};
use crate::load::node::{norm_axis, NodeCtx};
use crate::load::{Builder, Value};

/// The longest frame: a Conv of `2·bins` rows of `N` weights, `N²` in all.
const MAX_FRAME_LEN: usize = 4096;

/// ONNX `STFT`: inputs `signal` (`[batch, L]` or `[batch, L, 1]`; a batch
/// of signals is a multi-channel recording's channels, `torch.stft` of an
/// `[8, L]` EEG), `frame_step`, optional `window` and `frame_length`
/// (constants); `onesided`. The signals are the rows of one 2-D Conv with a
/// `1 × frame_length` kernel, so they share its weights.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let (signals, len) = match xs[..] {
        [s, l] | [s, l, 1] if s >= 1 => (s, l),
        [_, _, 2] => {
            return Err(
                ctx.err("the signal is complex ([batch, length, 2]); medq takes a real signal")
            )
        }
        _ => {
            return Err(ctx.err(format!(
                "the signal has shape {xs:?}; medq takes real signals, [batch, length] or \
                 [batch, length, 1]"
            )))
        }
    };
    let scalar = |i: usize, what: &str| -> Result<Option<usize>, ConvertError> {
        let Some(c) = opt_konst(ctx, ins, i, what)? else {
            return Ok(None);
        };
        match crate::load::fold::ints(ctx, &c, what)? {
            [v] if *v >= 1 => Ok(Some(*v as usize)),
            v => Err(ctx.err(format!(
                "the {what} must be one positive integer, not {v:?}"
            ))),
        }
    };
    let step =
        scalar(1, "frame_step")?.ok_or_else(|| ctx.err("the frame_step (input 1) is missing"))?;
    let window = opt_konst(ctx, ins, 2, "window")?.map(|w| w.to_f32());
    let n = match (scalar(3, "frame_length")?, &window) {
        (Some(n), Some(w)) if w.len() != n => {
            return Err(ctx.err(format!(
                "the window has {} values and frame_length is {n}",
                w.len()
            )))
        }
        (Some(n), _) => n,
        (None, Some(w)) => w.len(),
        (None, None) => return Err(ctx.err("neither a window nor a frame_length is given")),
    };
    if n > MAX_FRAME_LEN || n > len {
        return Err(ctx.err(format!(
            "frames of {n} samples over a signal of {len}: medq takes frames of at most \
             {MAX_FRAME_LEN} samples, within the signal"
        )));
    }
    let window = window.unwrap_or_else(|| vec![1.0; n]);
    let bins = match ctx.int("onesided", 1)? {
        0 => n,
        _ => n / 2 + 1,
    };
    let frames = (len - n) / step + 1;
    let mut weights = Vec::with_capacity(2 * bins * n);
    for k in 0..bins {
        let angle = |t: usize| 2.0 * PI * ((k * t) % n) as f64 / n as f64;
        weights.extend((0..n).map(|t| (f64::from(window[t]) * angle(t).cos()) as f32));
        weights.extend((0..n).map(|t| (-f64::from(window[t]) * angle(t).sin()) as f32));
    }
    let dft = Op::Conv(Conv {
        weights: Array::new(vec![2 * bins, 1, 1, n], weights),
        bias: vec![0.0; 2 * bins],
        window: Window {
            kernel: [1, n],
            strides: [1, step],
            dilations: [1, 1],
            pads: [0; 4],
        },
        groups: 1,
        activation: FusedActivation::None,
    });
    let signal = b.emit_part(
        ctx,
        "signal",
        Op::Reshape,
        vec![x],
        vec![1, 1, signals, len],
    )?;
    let spectrum = b.emit_part(
        ctx,
        "dft",
        dft,
        vec![signal],
        vec![1, 2 * bins, signals, frames],
    )?;
    let by_frame = b.emit_part(
        ctx,
        "frames",
        Op::Transpose(Transpose {
            perm: vec![0, 2, 3, 1],
        }),
        vec![spectrum],
        vec![1, signals, frames, 2 * bins],
    )?;
    b.emit(
        ctx,
        Op::Reshape,
        vec![by_frame],
        vec![signals, frames, bins, 2],
    )
}

/// The most weights a DFT's matrix may have (`2·bins × points·2`): a
/// 1024-point complex transform.
const MAX_DFT_WEIGHTS: usize = 1 << 22;

/// ONNX `DFT` (opset 17: `axis` attribute, default 1; from opset 20 an
/// optional constant input, default −2): real (`[…, 1]`) or complex
/// (`[…, 2]`) input, `dft_length` when it is the signal's own, `inverse`
/// (scaled by `1/n`), `onesided` (forward: bins `0..=n/2`; inverse: the
/// real signal of a one-sided spectrum, numpy's `irfft`).
pub(crate) fn dft(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let r = xs.len();
    let parts_in = xs.last().copied().unwrap_or(0);
    if r < 3 || !(1..=2).contains(&parts_in) {
        return Err(ctx.err(format!(
            "the input has shape {xs:?}; DFT takes [batch, ..., signal, 1 or 2] (real or complex)"
        )));
    }
    let axis = if ctx.opset < 20 {
        ctx.int("axis", 1)?
    } else {
        match opt_konst(ctx, ins, 2, "axis")? {
            None => -2,
            Some(c) => match crate::load::fold::ints(ctx, &c, "axis")? {
                [a] => *a,
                v => return Err(ctx.err(format!("the axis must be one integer, not {v:?}"))),
            },
        }
    };
    let axis = norm_axis(axis, r)
        .filter(|&a| a >= 1 && a < r - 1)
        .ok_or_else(|| {
            ctx.attr_err(
                "axis",
                format!("{axis} is not a signal axis of {xs:?} (neither the batch nor the last)"),
            )
        })?;
    let points_in = xs[axis];
    let inverse = ctx.int("inverse", 0)? != 0;
    let onesided = ctx.int("onesided", 0)? != 0;
    let n = if inverse && onesided {
        2 * points_in.saturating_sub(1)
    } else {
        points_in
    };
    if let Some(c) = opt_konst(ctx, ins, 1, "dft_length")? {
        // tract, the float reference, ignores it: a padded or truncated
        // transform could not be checked.
        let length = crate::load::fold::ints(ctx, &c, "dft_length")?;
        if length != [n as i64] {
            return Err(ctx.err(format!(
                "a dft_length of {length:?} is not supported, only the signal's own ({n}); \
                 pad or slice the signal before the DFT"
            )));
        }
    }
    let (points_out, parts_out) = match (inverse, onesided) {
        (false, true) => (n / 2 + 1, 2),
        (true, true) => (n, 1),
        (_, false) => (n, 2),
    };
    let rows = points_out * parts_out;
    let cols = points_in * parts_in;
    if n == 0 || rows.saturating_mul(cols) > MAX_DFT_WEIGHTS {
        return Err(ctx.err(format!(
            "a {n}-point DFT of {points_in} points is larger than medq takes \
             ({MAX_DFT_WEIGHTS} weights)"
        )));
    }
    let weights = dft_matrix(n, (points_in, parts_in), (points_out, parts_out), inverse);
    // The signal axis next to the real/imaginary one, the others in order.
    let mut perm: Vec<usize> = (0..r - 1).filter(|&a| a != axis).collect();
    perm.extend([axis, r - 1]);
    let moved: Vec<usize> = perm.iter().map(|&a| xs[a]).collect();
    let x = permute(b, ctx, "signal_last", x, &xs, &perm)?;
    let mut flat = moved[..r - 2].to_vec();
    flat.push(cols);
    let x = b.emit_part(ctx, "signal", Op::Reshape, vec![x], flat)?;
    let fc = Op::FullyConnected(FullyConnected {
        weights: Array::new(vec![rows, cols], weights),
        bias: vec![0.0; rows],
        activation: FusedActivation::None,
    });
    let mut by_row = moved[..r - 2].to_vec();
    by_row.push(rows);
    let y = b.emit_part(ctx, "dft", fc, vec![x], by_row)?;
    let mut spectrum = moved[..r - 2].to_vec();
    spectrum.extend([points_out, parts_out]);
    // Back to the input's axis order (`perm` moved one axis: its inverse).
    let mut back = vec![0; r];
    for (i, &a) in perm.iter().enumerate() {
        back[a] = i;
    }
    let out: Vec<usize> = back.iter().map(|&a| spectrum[a]).collect();
    if back.iter().enumerate().all(|(i, &a)| i == a) {
        return b.emit(ctx, Op::Reshape, vec![y], out);
    }
    let y = b.emit_part(ctx, "spectrum", Op::Reshape, vec![y], spectrum.clone())?;
    crate::ops::transpose::emit(b, ctx, y, &spectrum, back)
}

/// The `n`-point DFT as a `[points_out·parts_out, points_in·parts_in]`
/// matrix: row `(j, re/im)`, column `(t, re/im)`.
fn dft_matrix(
    n: usize,
    (points_in, parts_in): (usize, usize),
    (points_out, parts_out): (usize, usize),
    inverse: bool,
) -> Vec<f32> {
    let mut w = vec![0.0f32; points_out * parts_out * points_in * parts_in];
    let cols = points_in * parts_in;
    let angle = |j: usize, t: usize| 2.0 * PI * ((j * t) % n) as f64 / n as f64;
    if inverse && parts_out == 1 {
        // numpy's irfft: bins 0..=n/2 of a Hermitian spectrum, each inner
        // bin standing for itself and its mirror (twice), the imaginary
        // parts of bins 0 and n/2 ignored.
        for t in 0..points_out {
            for k in 0..points_in.min(n / 2 + 1) {
                let twice = k != 0 && !(n.is_multiple_of(2) && k == n / 2);
                let c = if twice { 2.0 } else { 1.0 } / n as f64;
                let row = &mut w[t * cols..(t + 1) * cols];
                row[k * parts_in] = (c * angle(k, t).cos()) as f32;
                if parts_in == 2 {
                    row[k * 2 + 1] = (-c * angle(k, t).sin()) as f32;
                }
            }
        }
        return w;
    }
    // y_j = scale · Σ_t x_t · e^{±i·2πjt/n}, x_t = re + i·im.
    let (sign, scale) = if inverse {
        (1.0, 1.0 / n as f64)
    } else {
        (-1.0, 1.0)
    };
    for j in 0..points_out {
        for t in 0..points_in {
            let (cos, sin) = (angle(j, t).cos() * scale, sign * angle(j, t).sin() * scale);
            let (re, im) = (j * 2 * cols, (j * 2 + 1) * cols);
            w[re + t * parts_in] = cos as f32;
            w[im + t * parts_in] = sin as f32;
            if parts_in == 2 {
                w[re + t * 2 + 1] = -sin as f32;
                w[im + t * 2 + 1] = cos as f32;
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, floats, int64s, one_node};
    use tract_onnx::pb::NodeProto;

    /// A Hann window of `n` values, as `torch.hann_window` (periodic).
    fn hann(n: usize) -> Vec<f32> {
        (0..n)
            .map(|t| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * t as f64 / n as f64).cos()) as f32)
            .collect()
    }

    #[test]
    fn stft_runs_as_a_strided_dft_convolution() {
        // The legacy export's [1, L] signal with window and frame_length,
        // onesided; the dynamo export's [1, L, 1]; a two-sided one without
        // a window.
        for (shape, onesided, with_window) in [
            (&[1, 256][..], 1, true),
            (&[1, 256, 1][..], 1, true),
            (&[1, 96][..], 0, false),
        ] {
            let mut inits = vec![int64s("step", &[], &[8]), int64s("n", &[], &[32])];
            let window = match with_window {
                true => {
                    inits.push(floats("w", &[32], &hann(32)));
                    "w"
                }
                false => "",
            };
            let model = one_node(
                "STFT",
                shape,
                &["step", window, "n"],
                vec![attr_i("onesided", onesided)],
                inits,
            );
            let g = assert_conforms("STFT", &model, 30.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.def().kind()).collect();
            assert!(
                kinds.contains(&"Conv") && kinds.contains(&"Transpose"),
                "{kinds:?}"
            );
        }
    }

    #[test]
    fn the_channels_of_a_recording_are_one_batch_of_signals() {
        // x [1, 3, 64] viewed as three signals [3, 64], as `torch.stft` of
        // `x[0]` exports it: one 2-D Conv whose rows are the channels.
        let mut model = one_node(
            "STFT",
            &[1, 3, 64],
            &["step", "w"],
            vec![],
            vec![int64s("step", &[], &[8]), floats("w", &[16], &hann(16))],
        );
        let graph = model.graph.as_mut().expect("a graph");
        graph.node[0].input[0] = "signals".into();
        graph.initializer.push(int64s("to", &[2], &[3, 64]));
        graph.node.insert(
            0,
            NodeProto {
                name: "view".into(),
                op_type: "Reshape".into(),
                input: vec!["x".into(), "to".into()],
                output: vec!["signals".into()],
                ..Default::default()
            },
        );
        let g = assert_conforms("STFT", &model, 30.0);
        let conv = g
            .nodes
            .iter()
            .find(|n| n.op.def().kind() == "Conv")
            .expect("a Conv");
        assert_eq!(g.tensors[conv.output].shape, [1, 18, 3, 7]);
    }

    #[test]
    fn dft_runs_as_one_fully_connected_layer_in_every_form() {
        // rfft as the dynamo exporter writes it ([1, L, 1], axis 1 of
        // opset 18), a full complex transform and its inverse along a middle
        // axis (moved and moved back), an irfft, and a dft_length given as
        // the signal's own.
        struct Case {
            shape: &'static [i64],
            attrs: &'static [(&'static str, i64)],
            dft_length: Option<i64>,
            transposes: usize,
        }
        let case = |shape, attrs, dft_length, transposes| Case {
            shape,
            attrs,
            dft_length,
            transposes,
        };
        let cases = [
            case(&[1, 32, 1], &[("onesided", 1)], None, 0),
            case(&[1, 12, 5, 2], &[], None, 2),
            case(&[1, 12, 5, 2], &[("inverse", 1)], None, 2),
            case(&[1, 9, 3, 2], &[("inverse", 1), ("onesided", 1)], None, 2),
            case(&[1, 20, 3, 1], &[], Some(20), 2),
        ];
        for Case {
            shape,
            attrs,
            dft_length,
            transposes,
        } in cases
        {
            let mut attrs: Vec<_> = attrs.iter().map(|&(a, v)| attr_i(a, v)).collect();
            attrs.push(attr_i("axis", 1));
            let (inputs, inits) = match dft_length {
                Some(n) => (vec!["n"], vec![int64s("n", &[], &[n])]),
                None => (vec![], vec![]),
            };
            let model = one_node("DFT", shape, &inputs, attrs, inits);
            let g = assert_conforms("DFT", &model, 35.0);
            let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.def().kind()).collect();
            let count = |k: &str| kinds.iter().filter(|&&x| x == k).count();
            assert_eq!(count("FullyConnected"), 1, "{shape:?}: {kinds:?}");
            assert_eq!(count("Transpose"), transposes, "{shape:?}: {kinds:?}");
        }
    }

    #[test]
    fn a_dft_over_the_batch_or_the_complex_axis_or_padded_is_refused_by_name() {
        for axis in [0, 2, -1] {
            let model = one_node("DFT", &[1, 16, 1], &[], vec![attr_i("axis", axis)], vec![]);
            let err = crate::ops::testing::load(&model).unwrap_err().to_string();
            assert!(err.contains("not a signal axis"), "{axis}: {err}");
        }
        let padded = one_node(
            "DFT",
            &[1, 16, 1],
            &["n"],
            vec![],
            vec![int64s("n", &[], &[32])],
        );
        let err = crate::ops::testing::load(&padded).unwrap_err().to_string();
        assert!(err.contains("dft_length of [32]"), "{err}");
        let three = one_node("DFT", &[1, 16, 3], &[], vec![], vec![]);
        let err = crate::ops::testing::load(&three).unwrap_err().to_string();
        assert!(err.contains("real or complex"), "{err}");
    }

    #[test]
    fn a_complex_signal_and_a_mismatched_window_are_refused_by_name() {
        let step = || int64s("step", &[], &[4]);
        let complex = one_node(
            "STFT",
            &[1, 64, 2],
            &["step", "", "n"],
            vec![],
            vec![step(), int64s("n", &[], &[16])],
        );
        let err = crate::ops::testing::load(&complex).unwrap_err().to_string();
        assert!(err.contains("complex"), "{err}");
        let mismatched = one_node(
            "STFT",
            &[1, 64],
            &["step", "w", "n"],
            vec![],
            vec![
                step(),
                floats("w", &[8], &[1.0; 8]),
                int64s("n", &[], &[16]),
            ],
        );
        let err = crate::ops::testing::load(&mismatched)
            .unwrap_err()
            .to_string();
        assert!(err.contains("window has 8 values"), "{err}");
    }
}
