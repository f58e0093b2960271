//! ONNX `LSTM`, `GRU` and `RNN` → [`Op::Recurrent`]: forward or bidirectional (one
//! op per direction, joined by a Concat; reverse alone is refused), batch 1,
//! `layout = 0`, default activations, full-length sequences, and a zero
//! initial state or one given as model inputs (a stream's state carried
//! from its previous window); outputs `Y` (every step, the op's sequence
//! flag), `Y_h` (the last step, or a Gather of `Y`'s last row when both are
//! read) and the LSTM's `Y_c` (an op on the same operands that outputs the
//! last cell state).
//! Everything else is refused with the reason; nothing is silently
//! approximated.

use medq::kernels::MAX_HIDDEN;

use super::{Cell, Recurrent};
use crate::error::ConvertError;
use crate::ir::{Array, Op, TensorId};
use crate::load::node::NodeCtx;
use crate::load::{Builder, Value};
use crate::ops::concat::Concat;
use crate::ops::gather::{Index, Select};
use crate::ops::onnx::{act, konst, opt_konst, Ins};

/// The ONNX recurrent op a node is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::Rnn => 1,
        }
    }
}

/// ONNX `LSTM`.
pub(crate) fn lstm(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    from_onnx(b, ctx, ins, Kind::Lstm)
}

/// ONNX `GRU`.
pub(crate) fn gru(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    from_onnx(b, ctx, ins, Kind::Gru)
}

/// ONNX `RNN` (torch's `nn.RNN`, tanh or ReLU).
pub(crate) fn rnn(b: &mut Builder, ctx: &NodeCtx, ins: Ins) -> Result<Value, ConvertError> {
    from_onnx(b, ctx, ins, Kind::Rnn)
}

/// ONNX `direction`: the number of directions, and whether the first runs
/// last to first (never, while "reverse" alone is refused).
fn directions(ctx: &NodeCtx) -> Result<(usize, bool), ConvertError> {
    let direction = ctx.string("direction")?.unwrap_or_else(|| "forward".into());
    match direction.as_str() {
        "forward" => Ok((1, false)),
        // tract, which gives the converter its float reference, runs a
        // reverse-only LSTM forward (its `Y_h` is the forward last state),
        // so the int8 model could not be checked against it.
        "reverse" => Err(ctx.attr_err(
            "direction",
            "\"reverse\" alone is not supported (the float reference runs it forward); \
             use \"bidirectional\", or flip the sequence before a forward layer",
        )),
        "bidirectional" => Ok((2, false)),
        other => Err(ctx.attr_err(
            "direction",
            format!("unknown value \"{other}\" (forward, reverse, bidirectional)"),
        )),
    }
}

/// The attributes medq supports (layout 0, default activations, no
/// clipping); returns the cell.
fn check_attributes(ctx: &NodeCtx, kind: Kind) -> Result<Cell, ConvertError> {
    let is_lstm = kind == Kind::Lstm;
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
    let defaults: &[&str] = match kind {
        Kind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        Kind::Gru => &["Sigmoid", "Tanh"],
        Kind::Rnn => &["Tanh"],
    };
    if let Some(list) = ctx.strings("activations")? {
        // Bidirectional nodes list the activations once per direction.
        let same = list.len() % defaults.len() == 0
            && !list.is_empty()
            && list
                .iter()
                .zip(defaults.iter().cycle())
                .all(|(a, d)| a.eq_ignore_ascii_case(d));
        if !same {
            // tract, which gives the converter its float reference, runs
            // every RNN with tanh whatever the attribute says.
            let hint = if kind == Kind::Rnn {
                " (the float reference runs every RNN with Tanh; the dynamo exporter, \
                 torch.onnx.export(..., dynamo=True), unrolls nn.RNN(nonlinearity=\"relu\") \
                 into ops medq takes)"
            } else {
                ""
            };
            return Err(ctx.attr_err(
                "activations",
                format!(
                    "only the default activations {defaults:?} are supported, found {list:?}{hint}"
                ),
            ));
        }
    }
    for attr in ["activation_alpha", "activation_beta"] {
        if ctx.floats(attr)?.is_some_and(|v| !v.is_empty()) {
            return Err(ctx.attr_err(attr, "activation parameters are not supported"));
        }
    }
    match kind {
        Kind::Lstm => return Ok(Cell::Lstm),
        Kind::Rnn => return Ok(Cell::Rnn),
        Kind::Gru => {}
    }
    let linear_before_reset = match ctx.int("linear_before_reset", 0)? {
        0 => false,
        1 => true,
        v => return Err(ctx.attr_err("linear_before_reset", format!("must be 0 or 1, found {v}"))),
    };
    Ok(Cell::Gru {
        linear_before_reset,
    })
}

fn from_onnx(b: &mut Builder, ctx: &NodeCtx, ins: Ins, kind: Kind) -> Result<Value, ConvertError> {
    let gates = kind.gates();
    let cell = check_attributes(ctx, kind)?;
    let (num_dir, first_reversed) = directions(ctx)?;
    let (x, xs) = act(b, ctx, ins, 0)?;
    let w = konst(ctx, ins, 1, "input weights W")?;
    let r = konst(ctx, ins, 2, "recurrence weights R")?;
    let [dirs, rows, input_size] = w.shape[..] else {
        return Err(ctx.err(format!(
            "W has shape {:?}; expected [{num_dir}, {gates}·hidden, input]",
            w.shape
        )));
    };
    if dirs != num_dir {
        return Err(ctx.err(format!(
            "W has {dirs} directions; this node's direction needs {num_dir}"
        )));
    }
    let hidden = rows / gates;
    if rows % gates != 0 || hidden == 0 || r.shape != [num_dir, rows, hidden] {
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
            "input X has shape {xs:?}; expected [seq_length, 1, input_size] (batch 1, layout 0); \
             a sequence-first model input takes samples that stack whole inputs, \
             [N, seq_length, 1, input_size]"
        )));
    };
    if xi != input_size {
        return Err(ctx.err(format!("input X {xs:?} does not fit W {:?}", w.shape)));
    }
    let bias = match opt_konst(ctx, ins, 3, "bias B")? {
        None => vec![0.0; num_dir * 2 * rows],
        Some(c) if c.shape == [num_dir, 2 * rows] => c.to_f32(),
        Some(c) => {
            return Err(ctx.err(format!(
                "B has shape {:?}; expected [{num_dir}, {}]",
                c.shape,
                2 * rows
            )))
        }
    };
    let states = initial_states(b, ctx, ins, steps, kind, [num_dir, 1, hidden])?;

    let (want_y, want_h) = (ctx.output_used(0), ctx.output_used(1));
    let (w, r) = (w.to_f32(), r.to_f32());
    let direction = |d: usize| {
        let slice = |all: &[f32], len: usize| all[d * len..(d + 1) * len].to_vec();
        let rows_of =
            |all: &[f32], cols: usize| gate_order(&slice(all, rows * cols), gates, hidden, cols);
        Recurrent {
            cell,
            hidden,
            input_size,
            w: Array::new(vec![rows, input_size], rows_of(&w, input_size)),
            r: Array::new(vec![rows, hidden], rows_of(&r, hidden)),
            bias_w: gate_order(&bias[2 * d * rows..(2 * d + 1) * rows], gates, hidden, 1),
            bias_r: gate_order(
                &bias[(2 * d + 1) * rows..(2 * d + 2) * rows],
                gates,
                hidden,
                1,
            ),
            reverse: first_reversed || d == 1,
            sequence: want_y,
            initial_h: states.h.is_some(),
            initial_c: states.c.is_some(),
            cell_output: false,
        }
    };
    // The node inputs of direction `d`: x, then its rows of the states.
    let inputs_of = |b: &mut Builder, d: usize| -> Result<Vec<TensorId>, ConvertError> {
        let mut v = vec![x];
        for (state, what) in [(states.h, "initial_h"), (states.c, "initial_c")] {
            let Some(t) = state else { continue };
            v.push(if num_dir == 1 {
                t
            } else {
                let row = Select {
                    axis: 0,
                    index: Index::List(vec![d]),
                };
                b.emit_part(
                    ctx,
                    &format!("{what}.{d}"),
                    Op::Select(row),
                    vec![t],
                    vec![1, 1, hidden],
                )?
            });
        }
        Ok(v)
    };
    // ONNX `Y_c` (a streaming LSTM's cell state for its next window): per
    // direction, an op on the same operands that outputs the last cell
    // state (its weights are written once, shared).
    if kind == Kind::Lstm && ctx.output_used(2) {
        let mut cells = Vec::new();
        for d in 0..num_dir {
            let rec = Recurrent {
                cell_output: true,
                sequence: false,
                ..direction(d)
            };
            let inputs = inputs_of(b, d)?;
            if num_dir == 1 {
                b.emit_output(ctx, 2, Op::Recurrent(rec), inputs, vec![1, 1, hidden])?;
            } else {
                cells.push(b.emit_part(
                    ctx,
                    &format!("Y_c.{d}"),
                    Op::Recurrent(rec),
                    inputs,
                    vec![1, 1, hidden],
                )?);
            }
        }
        if num_dir > 1 {
            let joined = Op::Concat(Concat { axis: 0 });
            b.emit_output(ctx, 2, joined, cells, vec![num_dir, 1, hidden])?;
        }
    }
    // The last step run is row T − 1 forward, row 0 reversed.
    let last_row = |rec: &Recurrent| Select {
        axis: 0,
        index: Index::List(vec![if rec.reverse { 0 } else { steps - 1 }]),
    };
    if num_dir == 1 {
        let rec = direction(0);
        let inputs = inputs_of(b, 0)?;
        if !want_y {
            return b.emit_output(ctx, 1, Op::Recurrent(rec), inputs, vec![1, 1, hidden]);
        }
        let last = last_row(&rec);
        let y = b.emit_output(
            ctx,
            0,
            Op::Recurrent(rec),
            inputs,
            vec![steps, 1, 1, hidden],
        )?;
        if want_h {
            let Value::Act(y_id) = y else {
                return Err(ctx.err("Y is not a computed tensor"));
            };
            let row = b.emit_part(
                ctx,
                "Y_h",
                Op::Select(last),
                vec![y_id],
                vec![1, 1, 1, hidden],
            )?;
            b.emit_output(ctx, 1, Op::Reshape, vec![row], vec![1, 1, hidden])?;
        }
        return Ok(y);
    }
    // Bidirectional: one op per direction, joined by Concats; ONNX `Y` is
    // [T, 2, 1, H] and `Y_h` [2, 1, H].
    let mut sequences: Vec<TensorId> = Vec::new();
    let mut lasts: Vec<TensorId> = Vec::new();
    for d in 0..num_dir {
        let rec = direction(d);
        let inputs = inputs_of(b, d)?;
        let suffix = if rec.reverse { "backward" } else { "forward" };
        let last = last_row(&rec);
        if want_y {
            let seq = b.emit_part(
                ctx,
                &format!("Y.{suffix}"),
                Op::Recurrent(rec),
                inputs,
                vec![steps, 1, hidden],
            )?;
            sequences.push(seq);
            if want_h {
                lasts.push(b.emit_part(
                    ctx,
                    &format!("Y_h.{suffix}"),
                    Op::Select(last),
                    vec![seq],
                    vec![1, 1, hidden],
                )?);
            }
        } else {
            lasts.push(b.emit_part(
                ctx,
                &format!("Y_h.{suffix}"),
                Op::Recurrent(rec),
                inputs,
                vec![1, 1, hidden],
            )?);
        }
    }
    let mut out_y = None;
    if want_y {
        let joined = b.emit_part(
            ctx,
            "Y.joined",
            Op::Concat(Concat { axis: 1 }),
            sequences,
            vec![steps, num_dir, hidden],
        )?;
        out_y = Some(b.emit_output(
            ctx,
            0,
            Op::Reshape,
            vec![joined],
            vec![steps, num_dir, 1, hidden],
        )?);
    }
    let mut out_h = None;
    if want_h {
        let joined = Op::Concat(Concat { axis: 0 });
        out_h = Some(b.emit_output(ctx, 1, joined, lasts, vec![num_dir, 1, hidden])?);
    }
    out_y
        .or(out_h)
        .ok_or_else(|| ctx.err("the node outputs neither Y nor Y_h"))
}

/// ONNX gate order → medq's, over `gates` blocks of `hidden` rows of `cols`:
/// LSTM i, o, f, c → i, f, g(c), o; GRU z, r, h and RNN's one unchanged.
fn gate_order(data: &[f32], gates: usize, hidden: usize, cols: usize) -> Vec<f32> {
    let order: &[usize] = match gates {
        4 => &[0, 2, 3, 1],
        3 => &[0, 1, 2],
        _ => &[0],
    };
    order
        .iter()
        .flat_map(|&g| {
            data[g * hidden * cols..(g + 1) * hidden * cols]
                .iter()
                .copied()
        })
        .collect()
}

/// The initial states computed from the model input (a stream's state,
/// `forward(x, h0)`), each `[num_dir, 1, H]`.
#[derive(Clone, Copy)]
struct States {
    h: Option<TensorId>,
    c: Option<TensorId>,
}

/// `sequence_lens` absent or full; the initial states zero constants or
/// computed tensors of `shape` (LSTM: a computed `initial_c` needs a
/// computed `initial_h`); no peepholes.
fn initial_states(
    b: &Builder,
    ctx: &NodeCtx,
    ins: Ins,
    steps: usize,
    kind: Kind,
    shape: [usize; 3],
) -> Result<States, ConvertError> {
    let is_lstm = kind == Kind::Lstm;
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
    if !is_lstm && ins.get(6).is_some_and(Option::is_some) {
        return Err(ctx.err(format!("{} takes at most 6 inputs", ctx.op)));
    }
    let mut computed = [None, None];
    let state_inputs = [(5, "initial_h"), (6, "initial_c")];
    for (slot, (i, what)) in state_inputs
        .iter()
        .take(if is_lstm { 2 } else { 1 })
        .enumerate()
    {
        let Some(inp) = ins.get(*i).and_then(Option::as_ref) else {
            continue;
        };
        match &inp.value {
            Value::Const(c) if c.to_f32().iter().all(|&v| v == 0.0) => {}
            Value::Const(_) => {
                return Err(ctx.err(format!(
                    "a non-zero constant {what} is not supported (medq starts from a zero state, \
                     or from a state given as a model input)"
                )))
            }
            Value::Act(_) => {
                let (t, s) = act(b, ctx, ins, *i)?;
                if s != shape {
                    return Err(ctx.err(format!(
                        "{what} has shape {s:?}; expected {shape:?} (directions, batch 1, hidden)"
                    )));
                }
                computed[slot] = Some(t);
            }
            Value::Unavailable(_) => return Err(ctx.err(format!("{what} is not available"))),
        }
    }
    if let Some(c) = opt_konst(ctx, ins, 7, "peephole weights P")? {
        if c.to_f32().iter().any(|&v| v != 0.0) {
            return Err(ctx.err("peephole weights are not supported"));
        }
    }
    let [h, c] = computed;
    if c.is_some() && h.is_none() {
        return Err(ctx.err(
            "a computed initial_c with a zero initial_h is not supported (give both states)",
        ));
    }
    Ok(States { h, c })
}
