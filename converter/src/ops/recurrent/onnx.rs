//! ONNX `LSTM` and `GRU` → [`Op::Recurrent`]: what medq runs is the forward
//! direction, batch 1, `layout = 0`, default activations, zero initial state
//! and full-length sequences. Everything else is refused with the reason;
//! nothing is silently approximated.

use medq::kernels::MAX_HIDDEN;

use super::{Cell, Recurrent};
use crate::error::ConvertError;
use crate::ir::{Array, Op};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};
use crate::ops::onnx::{act, konst, opt_konst, Ins};

/// ONNX `LSTM`.
pub(crate) fn lstm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    from_onnx(b, ctx, ins, true)
}

/// ONNX `GRU`.
pub(crate) fn gru(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    from_onnx(b, ctx, ins, false)
}

/// The attributes medq supports (forward, layout 0, default activations,
/// no clipping); returns the GRU's `linear_before_reset`.
fn check_attributes(ctx: &NodeCtx, is_lstm: bool) -> Result<bool, ConvertError> {
    let direction = ctx.string("direction")?.unwrap_or_else(|| "forward".into());
    if direction != "forward" {
        return Err(ctx.attr_err(
            "direction",
            format!("only \"forward\" is supported, found \"{direction}\""),
        ));
    }
    if ctx.int("layout", 0)? != 0 {
        return Err(ctx.attr_err("layout", "only layout 0 ([seq, batch, input]) is supported"));
    }
    if let Some(clip) = ctx.opt_float("clip")? {
        return Err(ctx.attr_err("clip", format!("cell clipping ({clip}) is not supported")));
    }
    if is_lstm && ctx.int("input_forget", 0)? != 0 {
        return Err(ctx.attr_err(
            "input_forget",
            "coupled input-forget gates are not supported",
        ));
    }
    let defaults: &[&str] = if is_lstm {
        &["Sigmoid", "Tanh", "Tanh"]
    } else {
        &["Sigmoid", "Tanh"]
    };
    if let Some(list) = ctx.strings("activations")? {
        let same = list.len() == defaults.len()
            && list
                .iter()
                .zip(defaults)
                .all(|(a, d)| a.eq_ignore_ascii_case(d));
        if !same {
            return Err(ctx.attr_err(
                "activations",
                format!("only the default activations {defaults:?} are supported, found {list:?}"),
            ));
        }
    }
    for attr in ["activation_alpha", "activation_beta"] {
        if ctx.floats(attr)?.is_some_and(|v| !v.is_empty()) {
            return Err(ctx.attr_err(attr, "activation parameters are not supported"));
        }
    }
    let linear_before_reset = if is_lstm {
        false
    } else {
        match ctx.int("linear_before_reset", 0)? {
            0 => false,
            1 => true,
            v => {
                return Err(
                    ctx.attr_err("linear_before_reset", format!("must be 0 or 1, found {v}"))
                )
            }
        }
    };
    Ok(linear_before_reset)
}

fn from_onnx(
    b: &mut Builder,
    ctx: &NodeCtx,
    ins: Ins,
    is_lstm: bool,
) -> Result<Value, ConvertError> {
    let gates = if is_lstm { 4 } else { 3 };
    let linear_before_reset = check_attributes(ctx, is_lstm)?;
    let (x, xs) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "input weights W")?;
    let r = konst(ctx, ins, 2, "recurrence weights R")?;
    let [1, rows, input_size] = w.shape[..] else {
        return Err(ctx.err(format!(
            "W has shape {:?}; expected [1, {gates}·hidden, input] (one direction)",
            w.shape
        )));
    };
    let hidden = rows / gates;
    if rows % gates != 0 || hidden == 0 || r.shape != [1, rows, hidden] {
        return Err(ctx.err(format!(
            "W {:?} and R {:?} do not describe {gates} gates of one hidden size",
            w.shape, r.shape
        )));
    }
    if let Some(h) = ctx.opt_int("hidden_size")? {
        if usize::try_from(h).ok() != Some(hidden) {
            return Err(ctx.attr_err(
                "hidden_size",
                format!("{h} differs from the weights' hidden size {hidden}"),
            ));
        }
    }
    if hidden > MAX_HIDDEN {
        return Err(ctx.attr_err(
            "hidden_size",
            format!("hidden size {hidden} is above medq's limit of {MAX_HIDDEN}"),
        ));
    }
    let [steps, 1, xi] = xs[..] else {
        return Err(ctx.err(format!(
            "input X has shape {xs:?}; expected [seq_length, 1, input_size] (batch 1, layout 0)"
        )));
    };
    if xi != input_size {
        return Err(ctx.err(format!("input X {xs:?} does not fit W {:?}", w.shape)));
    }
    let bias = match opt_konst(ctx, ins, 3, "bias B")? {
        None => vec![0.0; 2 * rows],
        Some(c) if c.shape == [1, 2 * rows] => c.to_f32(),
        Some(c) => {
            return Err(ctx.err(format!(
                "B has shape {:?}; expected [1, {}]",
                c.shape,
                2 * rows
            )))
        }
    };
    if let Some(c) = opt_konst(ctx, ins, 4, "sequence_lens")? {
        let full = c
            .as_i64()
            .is_some_and(|v| v.iter().all(|&l| usize::try_from(l).ok() == Some(steps)));
        if !full {
            return Err(ctx.err(format!(
                "sequence_lens must be absent or equal to the sequence length {steps}"
            )));
        }
    }
    let zero_state = [
        (5, "initial_h"),
        (6, "initial_c"),
        (7, "peephole weights P"),
    ];
    for (i, what) in zero_state.iter().take(if is_lstm { 3 } else { 1 }) {
        if let Some(c) = opt_konst(ctx, ins, *i, what)? {
            if c.to_f32().iter().any(|&v| v != 0.0) {
                return Err(ctx.err(format!(
                    "a non-zero {what} is not supported (medq starts from a zero state{})",
                    if *i == 7 { " and has no peepholes" } else { "" }
                )));
            }
        }
    }
    if !is_lstm && ins.get(6).is_some_and(Option::is_some) {
        return Err(ctx.err("GRU takes at most 6 inputs"));
    }

    // ONNX gate order → medq's: LSTM i, o, f, c → i, f, g(c), o; GRU z, r, h unchanged.
    let order: &[usize] = if is_lstm { &[0, 2, 3, 1] } else { &[0, 1, 2] };
    let permute = |data: &[f32], cols: usize| -> Vec<f32> {
        order
            .iter()
            .flat_map(|&g| {
                data[g * hidden * cols..(g + 1) * hidden * cols]
                    .iter()
                    .copied()
            })
            .collect()
    };
    let rec = Recurrent {
        cell: if is_lstm {
            Cell::Lstm
        } else {
            Cell::Gru {
                linear_before_reset,
            }
        },
        hidden,
        input_size,
        w: Array::new(vec![rows, input_size], permute(&w.to_f32(), input_size)),
        r: Array::new(vec![rows, hidden], permute(&r.to_f32(), hidden)),
        bias_w: permute(&bias[..rows], 1),
        bias_r: permute(&bias[rows..], 1),
    };
    b.emit(ctx, Op::Recurrent(rec), vec![x], vec![1, 1, hidden])
}
