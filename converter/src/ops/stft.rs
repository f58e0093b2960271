//! ONNX `STFT` of a real signal (a spectrogram front end: `torch.stft`
//! from both PyTorch exporters). The windowed DFT of each frame is a
//! convolution: output channel `2k` correlates the signal with
//! `w[n]·cos(2πkn/N)`, channel `2k+1` with `−w[n]·sin(2πkn/N)`, strided by
//! the hop. So it runs as one Conv with constant weights, then a Transpose
//! and a view to ONNX's `[batch, frames, bins, 2]`.

use std::f64::consts::PI;

use super::conv::Conv;
use super::onnx::{act, opt_konst, Ins};
use super::transpose::Transpose;
use crate::error::ConvertError;
use crate::ir::{Array, FusedActivation, Op, Window};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};

/// The longest frame: a Conv of `2·bins` rows of `N` weights, `N²` in all.
const MAX_FRAME_LEN: usize = 4096;

/// ONNX `STFT`: inputs `signal` (`[1, L]` or `[1, L, 1]`), `frame_step`,
/// optional `window` and `frame_length` (constants); `onesided`.
pub(crate) fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    let (x, xs) = act(b, ctx, ins, 0)?;
    let len = match xs[..] {
        [1, l] | [1, l, 1] => l,
        [_, _, 2] => {
            return Err(ctx.err(
                "the signal is complex ([batch, length, 2]); medq takes a real signal",
            ))
        }
        _ => {
            return Err(ctx.err(format!(
                "the signal has shape {xs:?}; medq takes one real signal, [1, length] or [1, length, 1]"
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
    let signal = b.emit_part(ctx, "signal", Op::Reshape, vec![x], vec![1, 1, len])?;
    let spectrum = b.emit_part(ctx, "dft", dft, vec![signal], vec![1, 2 * bins, frames])?;
    let by_frame = b.emit_part(
        ctx,
        "frames",
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1],
        }),
        vec![spectrum],
        vec![1, frames, 2 * bins],
    )?;
    b.emit(ctx, Op::Reshape, vec![by_frame], vec![1, frames, bins, 2])
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_conforms, attr_i, floats, int64s, one_node};

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
