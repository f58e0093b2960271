//! Lstm, Gru and Rnn over a sequence (batch 1, either direction): the shared
//! operand list of `params::recurrent`, then each op's own parameter words
//! and the optional flags word (reverse, sequence output).
// A cell whose `op-*` feature is off has no `Kind` variant (a firmware's plan
// slots stay the size of the ops it runs), so its preparation goes unused.
#![cfg_attr(
    not(all(feature = "op-lstm", feature = "op-gru", feature = "op-rnn")),
    allow(dead_code)
)]

#[cfg(feature = "int16-activations")]
use super::output_i16;
use super::{Ctx, Inputs, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::{self, recurrent as inp};
use crate::kernels::select::{self, Chosen, GruFn, LstmFn, RnnFn};
use crate::kernels::{
    GruParams, InitialState, LstmParams, RecurrentParams, RecurrentWeights, RnnParams, StateValues,
    MAX_HIDDEN, TABLE_LEN,
};

/// A prepared Lstm.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lstm<'a> {
    pub(super) p: LstmParams,
    pub(super) kernel: Chosen<LstmFn>,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
    state: State<'a>,
}

/// A prepared Gru.
#[derive(Clone, Copy, Debug)]
pub(super) struct Gru<'a> {
    pub(super) p: GruParams,
    pub(super) kernel: Chosen<GruFn>,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
    state: State<'a>,
}

/// A prepared Rnn.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rnn<'a> {
    pub(super) p: RnnParams,
    pub(super) kernel: Chosen<RnnFn>,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
    state: State<'a>,
}

/// A prepared Lstm, Gru or Rnn (params `P`) with an int16 side, and the
/// reference kernel of its pairing.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct RecurrentS16<'a, P: 'static> {
    p: P,
    kernel: KernelS16<P>,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
    state: State<'a>,
    macs: u64,
}

/// The kernel of each int16 pairing of a recurrent op (params `P`).
#[cfg(feature = "int16-activations")]
type KernelS16<P> =
    super::Paired<RecurrentFn<P, i16, i16>, RecurrentFn<P, i8, i16>, RecurrentFn<P, i16, i8>>;

/// A recurrent kernel on params `P` reading `X` and writing `Y`.
#[cfg(feature = "int16-activations")]
type RecurrentFn<P, X, Y> = fn(&P, &RecurrentWeights<'_>, &[X], &mut [Y]);

/// One reference kernel per pairing, in [`KernelS16`]'s order.
#[cfg(feature = "int16-activations")]
type ReferenceS16<P> = (
    RecurrentFn<P, i16, i16>,
    RecurrentFn<P, i8, i16>,
    RecurrentFn<P, i16, i8>,
);

/// The operands and geometry shared by both cells.
struct Shared<'a> {
    rec: RecurrentParams,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
    state: State<'a>,
    flags: i32,
}

/// The initial-state inputs of a recurrent op (none: the zero state), each
/// with its zero point and requantization onto the state's scale.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct State<'a> {
    h: Option<StateInput<'a>>,
    c: Option<StateInput<'a>>,
}

/// One initial-state input: the operand, whether it is int16, its zero
/// point, and its multiplier and shift.
type StateInput<'a> = (Operand<'a>, bool, i32, (i32, i32));

impl State<'_> {
    /// `wts` starting from this state, read from the arena.
    fn weights<'w>(
        &'w self,
        wts: &RecurrentWeights<'w>,
        inputs: &'w Inputs<'_>,
    ) -> Result<RecurrentWeights<'w>, Error> {
        let values = |op: &'w Operand<'_>, wide: bool| -> Result<StateValues<'w>, Error> {
            Ok(match wide {
                #[cfg(feature = "int16-activations")]
                true => StateValues::S16(inputs.read_i16(op)?),
                _ => StateValues::S8(inputs.read(op)?),
            })
        };
        let mut initial = InitialState::default();
        if let Some((op, wide, zp, (m, s))) = &self.h {
            initial.h = values(op, *wide)?;
            (initial.h_zero_point, initial.h_multiplier, initial.h_shift) = (*zp, *m, *s);
        }
        if let Some((op, wide, zp, (m, s))) = &self.c {
            initial.c = values(op, *wide)?;
            (initial.c_zero_point, initial.c_multiplier, initial.c_shift) = (*zp, *m, *s);
        }
        Ok(RecurrentWeights { initial, ..*wts })
    }
}

fn shared<'a>(
    cx: &Ctx<'_, 'a>,
    gates: usize,
    n_tables: usize,
    n_words: usize,
    out_words: (usize, usize),
) -> Result<Shared<'a>, Error> {
    // The flags word is optional: records written before it have none.
    let with_flags = cx.op.params.len() > n_words;
    let flags = if with_flags { cx.word(n_words)? } else { 0 };
    let cell_flag = match gates == params::lstm::GATES {
        true => inp::FLAG_INITIAL_CELL | inp::FLAG_CELL_OUTPUT,
        false => 0,
    };
    let known = inp::FLAG_REVERSE | inp::FLAG_SEQUENCE | inp::FLAG_INITIAL_STATE | cell_flag;
    cx.ensure(flags & !known == 0, why!("unknown recurrent flags"))?;
    let (with_h0, with_c0) = (
        flags & inp::FLAG_INITIAL_STATE != 0,
        flags & inp::FLAG_INITIAL_CELL != 0,
    );
    cx.ensure(
        with_h0 || !with_c0,
        why!("an initial cell state needs the initial hidden state"),
    )?;
    cx.ensure(
        flags & inp::FLAG_CELL_OUTPUT == 0 || flags & inp::FLAG_SEQUENCE == 0,
        why!("a cell state output is the last step's, not a sequence"),
    )?;
    let states = usize::from(with_h0) + usize::from(with_c0);
    cx.check_arity(
        inp::INPUT_COUNT + states,
        n_words + usize::from(with_flags) + 2 * states,
    )?;
    let x = cx.input(inp::X)?;
    #[cfg(feature = "int16-activations")]
    let input_zero_point = cx.s8_or_s16_operand(&x)?;
    #[cfg(not(feature = "int16-activations"))]
    let input_zero_point = cx.i8_operand(&x)?;
    let wt = cx.input(inp::W)?;
    let w = cx.weights(&wt, wt.rank() == 2)?;
    let rt = cx.input(inp::R)?;
    let r = cx.weights(&rt, rt.rank() == 2)?;
    let (wd, rd) = (wt.dims_usize(), rt.dims_usize());
    let hidden = rd[1];
    cx.ensure(
        (1..=MAX_HIDDEN).contains(&hidden),
        why!("hidden size not in 1..=256"),
    )?;
    // hidden ≤ 256 and gates ≤ 4: no overflow.
    let rows = gates * hidden;
    cx.ensure(
        wd[0] == rows && rd[0] == rows,
        why!("weights must have gates x hidden rows"),
    )?;
    let input_size = wd[1];
    #[cfg(feature = "int16-activations")]
    cx.ensure(
        x.dtype != crate::format::layout::DType::I16 || input_size <= crate::kernels::MAX_INPUT_S16,
        why!("an int16 step input has more than 256 features"),
    )?;
    cx.ensure(
        x.dims().last().map(|&d| d as usize) == Some(input_size),
        why!("input's last dim differs from the weights' input size"),
    )?;
    let steps = x.numel() / input_size.max(1);
    let sequence = flags & inp::FLAG_SEQUENCE != 0;
    let y = &cx.output;
    let y_len = if sequence { steps * hidden } else { hidden };
    cx.ensure(
        y.dims().last().map(|&d| d as usize) == Some(hidden) && y.numel() == y_len,
        why!("output must be the hidden state (last dim H; H elements, T x H for a sequence)"),
    )?;
    let vector = |i: usize| cx.i32_vector(&cx.input(i)?, rows);
    let (x_multiplier, h_multiplier) = (vector(inp::X_MULTIPLIER)?, vector(inp::H_MULTIPLIER)?);
    let shifts = |i: usize| cx.shift_vector(&cx.input(i)?, rows);
    let (x_shift, h_shift) = (shifts(inp::X_SHIFT)?, shifts(inp::H_SHIFT)?);
    cx.ensure(
        x_multiplier.iter().chain(h_multiplier).all(|&m| m >= 0),
        why!("negative multiplier"),
    )?;
    let tt = cx.input(inp::TABLES)?;
    let tables = tt
        .data_i16()
        .filter(|_| tt.rank() == 2 && tt.dims_usize()[..2] == [n_tables, TABLE_LEN])
        .ok_or(cx.bad(why!("tables must be an i16 constant [n_tables, 257]")))?;
    let wts = RecurrentWeights {
        w,
        r,
        bias_x: vector(inp::BIAS_X)?,
        bias_h: vector(inp::BIAS_H)?,
        x_multiplier,
        x_shift,
        h_multiplier,
        h_shift,
        tables,
        // The state inputs, if any, are read at each run.
        initial: InitialState::default(),
    };
    let (out_multiplier, out_shift) = cx.requant_pair(out_words.0, out_words.1)?;
    let rec = RecurrentParams {
        steps,
        input_size,
        hidden,
        input_zero_point,
        output_zero_point: cx.out_zp,
        out_multiplier,
        out_shift,
        reverse: flags & inp::FLAG_REVERSE != 0,
        sequence,
    };
    // The state words follow the flags word: h0's pair, then c0's.
    let state_input = |i: usize, word: usize| -> Result<StateInput<'a>, Error> {
        let t = cx.input(i)?;
        #[cfg(feature = "int16-activations")]
        let zp = cx.s8_or_s16_operand(&t)?;
        #[cfg(not(feature = "int16-activations"))]
        let zp = cx.i8_operand(&t)?;
        let wide = t.dtype == crate::format::layout::DType::I16;
        cx.ensure(
            t.numel() == hidden,
            why!("an initial state must have H elements"),
        )?;
        Ok((Operand::of(&t), wide, zp, cx.requant_pair(word, word + 1)?))
    };
    let first = n_words + 1;
    let state = State {
        h: with_h0.then(|| state_input(inp::H0, first)).transpose()?,
        c: with_c0
            .then(|| state_input(inp::C0, first + 2))
            .transpose()?,
    };
    Ok(Shared {
        rec,
        wts,
        x: Operand::of(&x),
        state,
        flags,
    })
}

/// Inputs per `params::recurrent`, words per `params::lstm`.
#[inline(never)]
pub(super) fn prepare_lstm<'a>(cx: &Ctx<'_, 'a>) -> Result<Lstm<'a>, Error> {
    use params::lstm as pw;
    let out_words = (pw::OUT_MULTIPLIER, pw::OUT_SHIFT);
    let s = shared(cx, pw::GATES, pw::TABLES, pw::COUNT, out_words)?;
    let (cell_multiplier, cell_shift) = cx.requant_pair(pw::CELL_MULTIPLIER, pw::CELL_SHIFT)?;
    let (tanh_multiplier, tanh_shift) = cx.requant_pair(pw::TANH_MULTIPLIER, pw::TANH_SHIFT)?;
    let p = LstmParams {
        rec: s.rec,
        cell_multiplier,
        cell_shift,
        tanh_multiplier,
        tanh_shift,
        cell_output: s.flags & inp::FLAG_CELL_OUTPUT != 0,
    };
    Ok(Lstm {
        p,
        kernel: select::lstm(&p),
        wts: s.wts,
        x: s.x,
        state: s.state,
    })
}

/// Inputs per `params::recurrent`, words per `params::gru`.
#[inline(never)]
pub(super) fn prepare_gru<'a>(cx: &Ctx<'_, 'a>) -> Result<Gru<'a>, Error> {
    use params::gru as pw;
    let out_words = (pw::OUT_MULTIPLIER, pw::OUT_SHIFT);
    let s = shared(cx, pw::GATES, pw::TABLES, pw::COUNT, out_words)?;
    let lbr = cx.word(pw::LINEAR_BEFORE_RESET)?;
    cx.ensure(
        lbr == 0 || lbr == 1,
        why!("linear_before_reset must be 0 or 1"),
    )?;
    let (rh_multiplier, rh_shift) = cx.requant_pair(pw::RH_MULTIPLIER, pw::RH_SHIFT)?;
    let p = GruParams {
        rec: s.rec,
        linear_before_reset: lbr == 1,
        rh_multiplier,
        rh_shift,
    };
    Ok(Gru {
        p,
        kernel: select::gru(&p),
        wts: s.wts,
        x: s.x,
        state: s.state,
    })
}

/// Inputs per `params::recurrent`, words per `params::rnn`.
#[inline(never)]
pub(super) fn prepare_rnn<'a>(cx: &Ctx<'_, 'a>) -> Result<Rnn<'a>, Error> {
    use params::rnn as pw;
    let out_words = (pw::OUT_MULTIPLIER, pw::OUT_SHIFT);
    let s = shared(cx, pw::GATES, pw::TABLES, pw::COUNT, out_words)?;
    let p = RnnParams { rec: s.rec };
    Ok(Rnn {
        p,
        kernel: select::rnn(&p),
        wts: s.wts,
        x: s.x,
        state: s.state,
    })
}

/// Multiply-accumulates of a run: every step multiplies the input and the
/// hidden state by all gate rows.
fn macs(rec: &RecurrentParams, gates: usize) -> u64 {
    let per_step = gates * rec.hidden * (rec.input_size + rec.hidden);
    rec.steps as u64 * per_step as u64
}

impl Lstm<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let wts = self.state.weights(&self.wts, &io.inputs)?;
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(&self.p, &wts, x, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p.rec, params::lstm::GATES)
    }
}

impl Gru<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let wts = self.state.weights(&self.wts, &io.inputs)?;
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(&self.p, &wts, x, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p.rec, params::gru::GATES)
    }
}

impl Rnn<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let wts = self.state.weights(&self.wts, &io.inputs)?;
        let x = io.inputs.read(&self.x)?;
        (self.kernel.run)(&self.p, &wts, x, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p.rec, params::rnn::GATES)
    }
}

/// [`prepare_lstm`] with an int16 step input, output or both.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_lstm_s16<'a>(
    cx: &Ctx<'_, 'a>,
) -> Result<RecurrentS16<'a, LstmParams>, Error> {
    use crate::kernels::{lstm_s16, lstm_s16_s8, lstm_s8_s16};
    let op = prepare_lstm(cx)?;
    let names = ["lstm_s16", "lstm_s8_s16", "lstm_s16_s8"];
    let kernels = (lstm_s16 as _, lstm_s8_s16 as _, lstm_s16_s8 as _);
    with_int16_sides(
        cx,
        (op.p, op.wts, op.x, op.state, op.macs()),
        names,
        kernels,
    )
}

/// [`prepare_gru`] with an int16 step input, output or both.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_gru_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<RecurrentS16<'a, GruParams>, Error> {
    use crate::kernels::{gru_s16, gru_s16_s8, gru_s8_s16};
    let op = prepare_gru(cx)?;
    let names = ["gru_s16", "gru_s8_s16", "gru_s16_s8"];
    let kernels = (gru_s16 as _, gru_s8_s16 as _, gru_s16_s8 as _);
    with_int16_sides(
        cx,
        (op.p, op.wts, op.x, op.state, op.macs()),
        names,
        kernels,
    )
}

/// [`prepare_rnn`] with an int16 step input, output or both.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_rnn_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<RecurrentS16<'a, RnnParams>, Error> {
    use crate::kernels::{rnn_s16, rnn_s16_s8, rnn_s8_s16};
    let op = prepare_rnn(cx)?;
    let names = ["rnn_s16", "rnn_s8_s16", "rnn_s16_s8"];
    let kernels = (rnn_s16 as _, rnn_s8_s16 as _, rnn_s16_s8 as _);
    with_int16_sides(
        cx,
        (op.p, op.wts, op.x, op.state, op.macs()),
        names,
        kernels,
    )
}

/// A prepared cell (params, operands, MACs) with the reference kernel of
/// its int16 pairing among `kernels`.
#[cfg(feature = "int16-activations")]
fn with_int16_sides<'a, P: 'static>(
    cx: &Ctx<'_, 'a>,
    (p, wts, x, state, macs): (P, RecurrentWeights<'a>, Operand<'a>, State<'a>, u64),
    names: [&'static str; 3],
    kernels: ReferenceS16<P>,
) -> Result<RecurrentS16<'a, P>, Error> {
    // `lanes` reads input 0, which is `x`.
    const _: () = assert!(inp::X == 0);
    let (lanes, _) = cx.lanes()?;
    Ok(RecurrentS16 {
        p,
        kernel: KernelS16::reference(lanes, names, kernels),
        wts,
        x,
        state,
        macs,
    })
}

#[cfg(feature = "int16-activations")]
impl<P: 'static> RecurrentS16<'_, P> {
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name()
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let (p, x) = (&self.p, &self.x);
        let wts = &self.state.weights(&self.wts, &io.inputs)?;
        match self.kernel {
            KernelS16::S16(k) => (k.run)(p, wts, io.inputs.read_i16(x)?, output_i16(io.output)?),
            KernelS16::S8S16(k) => (k.run)(p, wts, io.inputs.read(x)?, output_i16(io.output)?),
            KernelS16::S16S8(k) => (k.run)(p, wts, io.inputs.read_i16(x)?, io.output),
        }
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        self.macs
    }
}
