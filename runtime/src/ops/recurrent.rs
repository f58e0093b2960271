//! Lstm and Gru over a sequence (forward, batch 1): the shared operand list
//! of `params::recurrent`, then each op's own parameter words.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::{self, recurrent as inp};
use crate::kernels::{
    gru_s8, lstm_s8, GruParams, LstmParams, RecurrentParams, RecurrentWeights, MAX_HIDDEN,
    TABLE_LEN,
};

/// A prepared Lstm.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lstm<'a> {
    p: LstmParams,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
}

/// A prepared Gru.
#[derive(Clone, Copy, Debug)]
pub(super) struct Gru<'a> {
    p: GruParams,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
}

/// The operands and geometry shared by both cells.
struct Shared<'a> {
    rec: RecurrentParams,
    wts: RecurrentWeights<'a>,
    x: Operand<'a>,
}

fn shared<'a>(
    cx: &Ctx<'_, 'a>,
    gates: usize,
    n_tables: usize,
    n_words: usize,
    out_words: (usize, usize),
) -> Result<Shared<'a>, Error> {
    cx.check_arity(inp::INPUT_COUNT, n_words)?;
    let x = cx.input(inp::X)?;
    let input_zero_point = cx.i8_operand(&x)?;
    let wt = cx.input(inp::W)?;
    let w = cx.weights(&wt, wt.rank() == 2)?;
    let rt = cx.input(inp::R)?;
    let r = cx.weights(&rt, rt.rank() == 2)?;
    let (wd, rd) = (wt.dims_usize(), rt.dims_usize());
    let hidden = rd[1];
    cx.ensure(
        (1..=MAX_HIDDEN).contains(&hidden),
        why!("hidden size not in 1..=128"),
    )?;
    // hidden ≤ 128 and gates ≤ 4: no overflow.
    let rows = gates * hidden;
    cx.ensure(
        wd[0] == rows && rd[0] == rows,
        why!("weights must have gates x hidden rows"),
    )?;
    let input_size = wd[1];
    cx.ensure(
        x.dims().last().map(|&d| d as usize) == Some(input_size),
        why!("input's last dim differs from the weights' input size"),
    )?;
    let y = &cx.output;
    cx.ensure(
        y.dims().last().map(|&d| d as usize) == Some(hidden) && y.numel() == hidden,
        why!("output must be the hidden state (last dim H, H elements)"),
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
    };
    let (out_multiplier, out_shift) = cx.requant_pair(out_words.0, out_words.1)?;
    let rec = RecurrentParams {
        steps: x.numel() / input_size.max(1),
        input_size,
        hidden,
        input_zero_point,
        output_zero_point: cx.out_zp,
        out_multiplier,
        out_shift,
    };
    Ok(Shared {
        rec,
        wts,
        x: Operand::of(&x),
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
    };
    Ok(Lstm {
        p,
        wts: s.wts,
        x: s.x,
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
        wts: s.wts,
        x: s.x,
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
        let x = io.inputs.read(&self.x)?;
        lstm_s8(&self.p, &self.wts, x, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p.rec, params::lstm::GATES)
    }
}

impl Gru<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        gru_s8(&self.p, &self.wts, x, io.output);
        Ok(())
    }

    pub fn macs(&self) -> u64 {
        macs(&self.p.rec, params::gru::GATES)
    }
}
