//! LSTM and GRU over a sequence (forward direction, batch 1), int8 in and out
//! with int16 state, in the spirit of TFLite Micro's integer LSTM: int8
//! weights, `i32` accumulators, gate pre-activations and the cell state in
//! `i16`, gate outputs and the hidden state in Q0.15. Every nonlinearity is
//! a converter-computed 257-entry `i16` table read with linear interpolation
//! ([`table_lookup_s16`]), so it is exact on every target. `NUMERICS.md`
//! § "Recurrent ops" states the formulas; this file is their executable form.
//!
//! State lives in fixed stack buffers of [`MAX_HIDDEN`] entries (LSTM: 3 × 256
//! bytes, GRU: 4 × 256 bytes), and each step's gate pre-activations in
//! buffers for 32 units at a time (LSTM 640 bytes, GRU 256), so the ops need
//! no arena scratch. The gate products (the matrix-vector sums) go through
//! [`GateProducts`], which the optimized kernels implement; everything else
//! is this file's code in every kernel.

use super::Lane;
use crate::numerics::{clamp, requantize};

/// Largest hidden size the kernels run: it bounds their stack buffers
/// (`3 · 2 · H` bytes for the LSTM, `4 · 2 · H` for the GRU), and keeps the
/// recurrent accumulator `H · 32768 · 127` below `2^30`, with as much again
/// for the bias (the same bound as an int16 step input's).
pub const MAX_HIDDEN: usize = 256;
/// Hidden units whose gate rows a step computes together: it bounds the
/// buffers of pre-activations (`4 · UNITS` `i32`), which stay small on a
/// microcontroller's stack, while an optimized kernel still gets whole
/// blocks of rows (32 per gate) per call.
const UNITS: usize = 32;
/// Entries of an interpolated table: 256 segments and their end points.
pub const TABLE_LEN: usize = 257;
/// Tables an LSTM reads: the i, f, g, o gates, then tanh of the cell state.
pub const LSTM_TABLES: usize = 5;
/// Tables a GRU reads: the z, r, n gates.
pub const GRU_TABLES: usize = 3;
/// Tables a simple RNN reads: its activation.
pub const RNN_TABLES: usize = 1;

/// Multiplier and shift of `requantize` for an exact `· 2^-15`
/// (Q0.15 × Q0.15 → Q0.15).
const Q15_M: i32 = 1 << 30;
const Q15_S: i32 = -14;

/// Geometry and output quantization shared by [`lstm_s8`] and [`gru_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecurrentParams {
    /// Sequence length `T`.
    pub steps: usize,
    /// Features per step `I`.
    pub input_size: usize,
    /// Hidden size `H`, `1..=MAX_HIDDEN`.
    pub hidden: usize,
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// Q0.15 hidden state → output scale.
    pub out_multiplier: i32,
    pub out_shift: i32,
    /// Run the steps from the last to the first (ONNX `reverse`, and the
    /// second half of `bidirectional`).
    pub reverse: bool,
    /// Output every step's hidden state, `[T, H]` (ONNX `Y`, step `t` at row
    /// `t` in either direction), instead of the last one, `[H]` (`Y_h`).
    pub sequence: bool,
}

impl RecurrentParams {
    /// Output elements: `T · H` for a sequence, else `H`.
    pub fn output_len(&self) -> Option<usize> {
        if self.sequence {
            self.steps.checked_mul(self.hidden)
        } else {
            Some(self.hidden)
        }
    }

    /// The input of the `n`-th step run (step `T − 1 − n` when reversed)
    /// and that step's time index.
    fn step<'x, X>(&self, input: &'x [X], n: usize) -> Option<(usize, &'x [X])> {
        let t = if self.reverse {
            self.steps.checked_sub(n + 1)?
        } else {
            n
        };
        let at = t.checked_mul(self.input_size)?;
        Some((t, input.get(at..at.checked_add(self.input_size)?)?))
    }
}

/// LSTM parameters for [`lstm_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LstmParams {
    pub rec: RecurrentParams,
    /// `i · g` (Q0.30) → cell scale.
    pub cell_multiplier: i32,
    pub cell_shift: i32,
    /// Cell scale → input scale of the cell tanh table.
    pub tanh_multiplier: i32,
    pub tanh_shift: i32,
    /// Output the last cell state (ONNX `Y_c`, at the cell scale through
    /// `out_multiplier`) instead of the hidden state; not with `sequence`.
    pub cell_output: bool,
}

/// GRU parameters for [`gru_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GruParams {
    pub rec: RecurrentParams,
    /// ONNX `linear_before_reset`.
    pub linear_before_reset: bool,
    /// `r · hn` (Q0.15 × the scale of `hn`) → n gate scale, when
    /// `linear_before_reset`.
    pub rh_multiplier: i32,
    pub rh_shift: i32,
}

/// Simple (Elman) RNN parameters for [`rnn_s8`]: the geometry alone. The
/// hidden state's scale is the converter's choice (Q0.15 for tanh, the
/// calibrated range for ReLU), folded into the recurrent multipliers, the
/// activation table and the output multiplier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RnnParams {
    pub rec: RecurrentParams,
}

/// Constant operands of a recurrent op with `G` gates; row `k = gate·H + j`
/// belongs to hidden unit `j` of gate `gate`.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentWeights<'a> {
    /// `[G·H, I]` symmetric int8.
    pub w: &'a [i8],
    /// `[G·H, H]` symmetric int8.
    pub r: &'a [i8],
    /// `[G·H]` at the input accumulator scale `in_scale · w_scale[k]`.
    pub bias_x: &'a [i32],
    /// `[G·H]` at the recurrent accumulator scale `2^-15 · r_scale[k]`.
    pub bias_h: &'a [i32],
    /// `[G·H]` input accumulator → gate scale.
    pub x_multiplier: &'a [i32],
    pub x_shift: &'a [i8],
    /// `[G·H]` recurrent accumulator → gate scale (GRU n rows with
    /// `linear_before_reset`: → the scale of `hn`).
    pub h_multiplier: &'a [i32],
    pub h_shift: &'a [i8],
    /// `n_tables · TABLE_LEN` entries, table after table.
    pub tables: &'a [i16],
    /// The state the first step starts from (zero by default).
    pub initial: InitialState<'a>,
}

/// The state a recurrent op starts from: a stream's state carried over
/// from the previous window (ONNX `initial_h`, `initial_c` as model
/// inputs). Empty slices are the zero state.
///
/// `h[j] = sat16(requantize(h0[j] − h0_zp, h_multiplier, h_shift))` onto the
/// hidden state's Q0.15, and the LSTM's `c[j]` alike onto its cell scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitialState<'a> {
    /// `H` values, or none (zero).
    pub h: StateValues<'a>,
    pub h_zero_point: i32,
    pub h_multiplier: i32,
    pub h_shift: i32,
    /// LSTM: `H` values, or none (zero).
    pub c: StateValues<'a>,
    pub c_zero_point: i32,
    pub c_multiplier: i32,
    pub c_shift: i32,
}

/// An initial state's values: int8, or int16 (a stream carrying its state
/// at 16 bits, zero point 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateValues<'a> {
    S8(&'a [i8]),
    S16(&'a [i16]),
}

impl Default for StateValues<'_> {
    /// No values: the zero state.
    fn default() -> Self {
        StateValues::S8(&[])
    }
}

impl StateValues<'_> {
    fn len(&self) -> usize {
        match self {
            StateValues::S8(v) => v.len(),
            StateValues::S16(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, j: usize) -> i32 {
        match self {
            StateValues::S8(v) => v.get(j).map_or(0, |&e| i32::from(e)),
            StateValues::S16(v) => v.get(j).map_or(0, |&e| i32::from(e)),
        }
    }
}

impl InitialState<'_> {
    /// Fill `h` (and `c`) with the starting state: `None` when a given
    /// state has another length than `h`.
    fn start(&self, h: &mut [i16], c: Option<&mut [i16]>) -> Option<()> {
        let fill = |state: StateValues<'_>, zp: i32, (m, s): (i32, i32), out: &mut [i16]| {
            if state.is_empty() {
                out.fill(0);
                return Some(());
            }
            (state.len() == out.len()).then_some(())?;
            for (j, o) in out.iter_mut().enumerate() {
                *o = sat16(requantize(state.get(j) - zp, m, s)) as i16;
            }
            Some(())
        };
        fill(
            self.h,
            self.h_zero_point,
            (self.h_multiplier, self.h_shift),
            h,
        )?;
        match c {
            Some(c) => fill(
                self.c,
                self.c_zero_point,
                (self.c_multiplier, self.c_shift),
                c,
            ),
            // Only an LSTM has a cell state to start.
            None => self.c.is_empty().then_some(()),
        }
    }
}

/// Saturate to `i16`, kept as `i32`.
#[inline(always)]
fn sat16(v: i32) -> i32 {
    clamp(v, i16::MIN as i32, i16::MAX as i32)
}

/// Largest step input of an int16-input op (a bidirectional layer of 128
/// units). It keeps the input accumulator `I · 32768 · 127` below `2^30`,
/// with as much again for the bias, as [`MAX_HIDDEN`] does the recurrent one.
pub const MAX_INPUT_S16: usize = 256;

/// The element of a step input, a [`Lane`]: int8 with its zero point, or
/// an int16 activation (zero point 0), whose products are the recurrent
/// ones' (int8 rows × `i16` vector).
pub(crate) trait StepLane: Lane {
    /// Most features a step may have (the bound of the `i32` sums).
    const MAX_INPUT: usize;
    /// [`GateProducts::x_rows`] of this lane.
    fn x_rows<G: GateProducts>(
        g: &G,
        q: RowQuant<'_>,
        w: &[i8],
        x: &[Self],
        zx: i32,
        out: &mut [i32],
    );
}

impl StepLane for i8 {
    const MAX_INPUT: usize = usize::MAX;

    #[inline(always)]
    fn x_rows<G: GateProducts>(
        g: &G,
        q: RowQuant<'_>,
        w: &[i8],
        x: &[i8],
        zx: i32,
        out: &mut [i32],
    ) {
        g.x_rows(q, w, x, zx, out);
    }
}

impl StepLane for i16 {
    const MAX_INPUT: usize = MAX_INPUT_S16;

    #[inline(always)]
    fn x_rows<G: GateProducts>(
        g: &G,
        q: RowQuant<'_>,
        w: &[i8],
        x: &[i16],
        _zx: i32,
        out: &mut [i32],
    ) {
        g.h_rows(q, w, x, out);
    }
}

/// Hidden value `h` (Q0.15) on the output's grid, `Y`:
/// `clamp(zy +sat requantize(h, out_m, out_s))` to `Y`'s range (for int8
/// [`crate::numerics::requantize_to_i8`]).
#[inline(always)]
fn from_hidden<Y: Lane>(p: &RecurrentParams, h: i16) -> Y {
    let v = requantize(i32::from(h), p.out_multiplier, p.out_shift);
    Y::from_clamped(clamp(v.saturating_add(p.output_zero_point), Y::MIN, Y::MAX))
}

/// `f(v)` through an interpolated table, for `v` in `i16` range (clamped).
///
/// Segment `idx = (v + 32768) >> 8` runs from `table[idx]` to `table[idx + 1]`;
/// the low 8 bits interpolate: `table[idx] + round((table[idx+1] − table[idx]) ·
/// frac / 256)`, rounded by [`requantize`] (halves toward +∞). The result lies
/// between two `i16` entries, so it is an `i16`.
#[inline]
pub fn table_lookup_s16(table: &[i16; TABLE_LEN], v: i32) -> i32 {
    // The u16 offset makes `idx ≤ 255`, so both reads are in bounds.
    let u = (sat16(v) + 32768) as u16;
    let idx = usize::from(u >> 8);
    let frac = i32::from(u & 0xff);
    let lo = i32::from(table[idx]);
    let hi = i32::from(table[idx + 1]);
    // |hi − lo| · 255 < 2^24; · 2^-8 is multiplier 2^30, shift −7.
    lo + requantize((hi - lo) * frac, 1 << 30, -7)
}

/// Table `n` of `tables`, if there are that many.
fn table(tables: &[i16], n: usize) -> Option<&[i16; TABLE_LEN]> {
    let start = n.checked_mul(TABLE_LEN)?;
    let slice = tables.get(start..start.checked_add(TABLE_LEN)?)?;
    <&[i16; TABLE_LEN]>::try_from(slice).ok()
}

/// The per-row rescale of one block of gate rows: `bias`, `multiplier`,
/// `shift` of rows `k0..k0 + n` (all `n` long).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowQuant<'a> {
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i8],
}

impl<'a> RowQuant<'a> {
    /// Rows this block has, if its three vectors agree.
    pub(crate) fn rows(&self) -> Option<usize> {
        let n = self.bias.len();
        (self.multiplier.len() == n && self.shift.len() == n).then_some(n)
    }

    /// Rows `rows` of this block, if it has them.
    pub(crate) fn range(&self, rows: core::ops::Range<usize>) -> Option<RowQuant<'a>> {
        Some(RowQuant {
            bias: self.bias.get(rows.clone())?,
            multiplier: self.multiplier.get(rows.clone())?,
            shift: self.shift.get(rows)?,
        })
    }
}

/// The gate products of one time step, the part of a recurrent op that
/// optimized kernels replace: matrix (int8 rows) × vector, plus the row's
/// bias, requantized per row. Both write `out[k]` for every `k <
/// out.len()`; on mismatched lengths they return leaving `out` unchanged
/// (never reached: [`Rows::new`] checked every length).
pub(crate) trait GateProducts {
    /// `out[k] = requantize(bias[k] + Σ_i (x[i] − zx) · w[k·I + i], m[k], s[k])`
    /// with `I = x.len()`, wrapping `i32` sums.
    fn x_rows(&self, q: RowQuant<'_>, w: &[i8], x: &[i8], zx: i32, out: &mut [i32]);
    /// `out[k] = requantize(bias[k] + Σ_m h[m] · r[k·H + m], m[k], s[k])` with
    /// `H = h.len()`, wrapping `i32` sums.
    fn h_rows(&self, q: RowQuant<'_>, r: &[i8], h: &[i16], out: &mut [i32]);
    /// `out[k] = table_lookup_s16(table, pre[k])` for `k < min(len)`: the
    /// gate activations (every result lies between two table entries, so
    /// it fits `i16`).
    fn lookups(&self, table: &[i16; TABLE_LEN], pre: &[i32], out: &mut [i16]) {
        for (o, &v) in out.iter_mut().zip(pre) {
            *o = table_lookup_s16(table, v) as i16;
        }
    }
    /// `pre[k] = sat16(pre[k] +sat requantize(r[k] · sat16(h[k]), m, s))`
    /// for `k < min(len)`: the GRU's n gate adding its recurrent part when
    /// the reset applies after the product (`linear_before_reset`, as
    /// PyTorch exports), with `h` the recurrent products `Σ h · r`.
    fn add_reset_products(&self, r: &[i16], h: &[i32], (m, s): (i32, i32), pre: &mut [i32]) {
        for ((xn, &hp), &rj) in pre.iter_mut().zip(h).zip(r) {
            let recurrent = requantize(i32::from(rj) * sat16(hp), m, s);
            *xn = sat16(xn.saturating_add(recurrent));
        }
    }
}

/// The gate products one row at a time: the definition.
pub(crate) struct ScalarProducts;

impl GateProducts for ScalarProducts {
    fn x_rows(&self, q: RowQuant<'_>, w: &[i8], x: &[i8], zx: i32, out: &mut [i32]) {
        scalar_rows(q, w, x, |xv| i32::from(xv) - zx, out);
    }

    fn h_rows(&self, q: RowQuant<'_>, r: &[i8], h: &[i16], out: &mut [i32]) {
        scalar_rows(q, r, h, i32::from, out);
    }
}

/// `out[k] = requantize(bias[k] + Σ_i value(v[i]) · m[k·len + i], …)`.
fn scalar_rows<T: Copy>(
    q: RowQuant<'_>,
    m: &[i8],
    v: &[T],
    value: impl Fn(T) -> i32,
    out: &mut [i32],
) {
    if v.is_empty()
        || q.rows() != Some(out.len())
        || Some(m.len()) != out.len().checked_mul(v.len())
    {
        return;
    }
    let quant = q.bias.iter().zip(q.multiplier.iter().zip(q.shift));
    for ((y, row), (&bias, (&mult, &shift))) in
        out.iter_mut().zip(m.chunks_exact(v.len())).zip(quant)
    {
        let mut acc = bias;
        for (&vi, &mi) in v.iter().zip(row) {
            acc = acc.wrapping_add(value(vi).wrapping_mul(i32::from(mi)));
        }
        *y = requantize(acc, mult, i32::from(shift));
    }
}

/// The constant operands with their lengths checked for `gates` gates.
struct Rows<'a> {
    wts: RecurrentWeights<'a>,
    input_size: usize,
    hidden: usize,
}

impl<'a> Rows<'a> {
    fn new(wts: &RecurrentWeights<'a>, p: &RecurrentParams, gates: usize) -> Option<Rows<'a>> {
        let rows = gates.checked_mul(p.hidden)?;
        let ok = p.hidden >= 1
            && p.hidden <= MAX_HIDDEN
            && wts.w.len() == rows.checked_mul(p.input_size)?
            && wts.r.len() == rows.checked_mul(p.hidden)?
            && [wts.bias_x, wts.bias_h, wts.x_multiplier, wts.h_multiplier]
                .iter()
                .all(|v| v.len() == rows)
            && wts.x_shift.len() == rows
            && wts.h_shift.len() == rows;
        ok.then_some(Rows {
            wts: *wts,
            input_size: p.input_size,
            hidden: p.hidden,
        })
    }

    /// The input parts of rows `k0..k0 + out.len()` at the gate scale.
    fn x_parts<G: GateProducts, X: StepLane>(
        &self,
        g: &G,
        k0: usize,
        x: &[X],
        zx: i32,
        out: &mut [i32],
    ) {
        let (wts, n) = (&self.wts, out.len());
        let all = RowQuant {
            bias: wts.bias_x,
            multiplier: wts.x_multiplier,
            shift: wts.x_shift,
        };
        let rows = wts.w.get(k0 * self.input_size..(k0 + n) * self.input_size);
        if let (Some(q), Some(w)) = (all.range(k0..k0 + n), rows) {
            X::x_rows(g, q, w, x, zx, out);
        }
    }

    /// The recurrent parts of rows `k0..k0 + out.len()` for a Q0.15 vector `h`.
    fn h_parts<G: GateProducts>(&self, g: &G, k0: usize, h: &[i16], out: &mut [i32]) {
        let (wts, n) = (&self.wts, out.len());
        let all = RowQuant {
            bias: wts.bias_h,
            multiplier: wts.h_multiplier,
            shift: wts.h_shift,
        };
        let rows = wts.r.get(k0 * self.hidden..(k0 + n) * self.hidden);
        if let (Some(q), Some(r)) = (all.range(k0..k0 + n), rows) {
            g.h_rows(q, r, h, out);
        }
    }
}

impl Rows<'_> {
    /// Pre-activations `sat16(x_part +sat h_part)` of rows `k0..k0 +
    /// pre.len()` into `pre` (`scratch` as long, for the recurrent parts).
    fn pre<G: GateProducts, X: StepLane>(
        &self,
        g: &G,
        k0: usize,
        (x, zx): (&[X], i32),
        h: &[i16],
        pre: &mut [i32],
        scratch: &mut [i32],
    ) {
        self.x_parts(g, k0, x, zx, pre);
        self.h_parts(g, k0, h, scratch);
        add_parts(pre, scratch);
    }
}

/// Shared shape checks, and each lane's domain.
fn io_ok<X: StepLane, Y: Lane>(p: &RecurrentParams, input: &[X], output: &[Y]) -> bool {
    (!X::SYMMETRIC || p.input_zero_point == 0)
        && (!Y::SYMMETRIC || p.output_zero_point == 0)
        && p.input_size <= X::MAX_INPUT
        && p.input_size >= 1
        && p.steps.checked_mul(p.input_size) == Some(input.len())
        && p.output_len() == Some(output.len())
}

/// Step `t`'s hidden state into its row of a sequence output.
fn write_step<Y: Lane>(p: &RecurrentParams, t: usize, h: &[i16], output: &mut [Y]) {
    let at = t * p.hidden;
    if p.sequence {
        if let Some(row) = output.get_mut(at..at + p.hidden) {
            write_output(p, h, row);
        }
    }
}

/// A hidden state (`H` values) on the output's grid.
fn write_output<Y: Lane>(p: &RecurrentParams, h: &[i16], output: &mut [Y]) {
    for (y, &hv) in output.iter_mut().zip(h) {
        *y = from_hidden(p, hv);
    }
}

/// Gate pre-activations `sat16(x_part +sat h_part)`, in place in `x_part`.
fn add_parts(x_part: &mut [i32], h_part: &[i32]) {
    for (x, &h) in x_part.iter_mut().zip(h_part) {
        *x = sat16(x.saturating_add(h));
    }
}

/// LSTM, gates in the order i, f, g, o; initial hidden and cell state from
/// `wts.initial` (zero by default).
///
/// Per step `t` and unit `j`, with `pre_g = sat16(x_part +sat h_part)` of row
/// `g·H + j` and `act_n` table `n`:
///
/// ```text
/// x_part[k] = requantize(bias_x[k] + Σ_i (x[i] − zx) · w[k][i], x_m[k], x_s[k])
/// h_part[k] = requantize(bias_h[k] + Σ_m h[m] · r[k][m], h_m[k], h_s[k])
/// i = act_0(pre_i)  f = act_1(pre_f)  g = act_2(pre_g)  o = act_3(pre_o)      (Q0.15)
/// c = sat16(requantize(f·c, 2^30, −14) +sat requantize(i·g, cell_m, cell_s))  (cell scale)
/// h = sat16(requantize(o · act_4(sat16(requantize(c, tanh_m, tanh_s))), 2^30, −14))  (Q0.15)
/// ```
///
/// and after the last step `y = requantize_to_i8(h, out_m, out_s, zy, −128, 127)`
/// (with `sequence`, after every step `t`, into row `t` of `y`). With
/// `reverse`, the steps run from `t = T − 1` down to 0.
///
/// Returns early, leaving `output` unchanged, unless: `1 ≤ hidden ≤
/// MAX_HIDDEN`, `input_size ≥ 1`, `input.len() = steps · input_size`,
/// `output.len() = hidden` (`steps · hidden` with `sequence`), `w`/`r` hold `4·H·I`/`4·H·H` values, every
/// per-row vector `4·H`, and `tables` at least 5 tables.
pub fn lstm_s8(p: &LstmParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    lstm_with(&ScalarProducts, p, wts, input, output);
}

/// [`lstm_s8`] with the gate products of `g` (which optimized kernels pass).
// Inlined, as `gru_with` is.
#[inline(always)]
pub(crate) fn lstm_with<G: GateProducts>(
    g: &G,
    p: &LstmParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    let _ = lstm_inner(g, p, wts, input, output);
}

#[inline(always)]
fn lstm_inner<G: GateProducts, X: StepLane, Y: Lane>(
    g: &G,
    p: &LstmParams,
    wts: &RecurrentWeights<'_>,
    input: &[X],
    output: &mut [Y],
) -> Option<()> {
    let rp = &p.rec;
    if !io_ok(rp, input, output) || (p.cell_output && rp.sequence) {
        return None;
    }
    let rows = Rows::new(wts, rp, 4)?;
    let (t_i, t_f, t_g, t_o, t_c) = (
        table(wts.tables, 0)?,
        table(wts.tables, 1)?,
        table(wts.tables, 2)?,
        table(wts.tables, 3)?,
        table(wts.tables, 4)?,
    );
    let n = rp.hidden;
    let zx = rp.input_zero_point;
    let mut h_prev = [0i16; MAX_HIDDEN];
    let mut h_next = [0i16; MAX_HIDDEN];
    let mut cell = [0i16; MAX_HIDDEN];
    wts.initial
        .start(h_prev.get_mut(..n)?, Some(cell.get_mut(..n)?))?;
    let mut pre = [0i32; 4 * UNITS];
    let mut acts = [0i16; 4 * UNITS];
    let mut scratch = [0i32; UNITS];
    for step in 0..rp.steps {
        let (t, x) = rp.step(input, step)?;
        let h = h_prev.get(..n)?;
        for j0 in (0..n).step_by(UNITS) {
            let b = (n - j0).min(UNITS);
            let pre = pre.get_mut(..4 * b)?;
            for (gate, pre) in pre.chunks_exact_mut(b).enumerate() {
                rows.pre(g, gate * n + j0, (x, zx), h, pre, scratch.get_mut(..b)?);
            }
            let acts = acts.get_mut(..4 * b)?;
            for ((pre, act), table) in pre
                .chunks_exact(b)
                .zip(acts.chunks_exact_mut(b))
                .zip([t_i, t_f, t_g, t_o])
            {
                g.lookups(table, pre, act);
            }
            let (act_i, rest) = acts.split_at(b);
            let (act_f, rest) = rest.split_at(b);
            let (act_g, act_o) = rest.split_at(b);
            let gates = act_i.iter().zip(act_f).zip(act_g.iter().zip(act_o));
            let state = cell.iter_mut().zip(h_next.iter_mut()).skip(j0);
            for (((&i, &f), (&g, &o)), (c, h_out)) in gates.zip(state) {
                let (i, f, g, o) = (i32::from(i), i32::from(f), i32::from(g), i32::from(o));
                // Products of two i16 values fit i32 (|·| ≤ 2^30).
                let kept = requantize(f * i32::from(*c), Q15_M, Q15_S);
                let added = requantize(i * g, p.cell_multiplier, p.cell_shift);
                let c_new = sat16(kept.saturating_add(added));
                *c = c_new as i16;
                let tanh_in = sat16(requantize(c_new, p.tanh_multiplier, p.tanh_shift));
                let tanh_c = table_lookup_s16(t_c, tanh_in);
                *h_out = sat16(requantize(o * tanh_c, Q15_M, Q15_S)) as i16;
            }
        }
        write_step(rp, t, h_next.get(..n)?, output);
        h_prev = h_next;
    }
    if p.cell_output {
        write_output(rp, cell.get(..n)?, output);
    } else if !rp.sequence {
        write_output(rp, h_prev.get(..n)?, output);
    }
    Some(())
}

/// GRU, gates in the order z, r, n; initial hidden state 0.
///
/// Per step, first for every unit `j`: `z = act_0(pre_z)`, `r = act_1(pre_r)`
/// (Q0.15), with `x_part`, `h_part` and `pre` as for [`lstm_s8`]. Then, with
/// `xn` the input part of row `2H + j` at the n gate scale:
///
/// ```text
/// linear_before_reset = 1:
///   hn  = sat16(h_part(2H + j, h))                        (its own scale)
///   pre = sat16(xn +sat requantize(r·hn, rh_m, rh_s))
/// linear_before_reset = 0:
///   rh[m] = sat16(requantize(r[m]·h[m], 2^30, −14))       (Q0.15, all m)
///   pre = sat16(xn +sat h_part(2H + j, rh))
/// n = act_2(pre)
/// h'[j] = sat16(n + requantize(z · (h[j] − n), 2^30, −14))   (Q0.15)
/// ```
///
/// and after the last step `y` as for [`lstm_s8`].
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// [`lstm_s8`] with 3 gates and 3 tables.
pub fn gru_s8(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    gru_with(&ScalarProducts, p, wts, input, output);
}

/// [`gru_s8`] with the gate products of `g` (which optimized kernels pass).
// Inlined so that an optimized kernel's wrapper compiles the whole step with
// its target features (the x86-64 GRU: 11% faster with AVX2).
#[inline(always)]
pub(crate) fn gru_with<G: GateProducts>(
    g: &G,
    p: &GruParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    let _ = gru_inner(g, p, wts, input, output);
}

#[inline(always)]
fn gru_inner<G: GateProducts, X: StepLane, Y: Lane>(
    g: &G,
    p: &GruParams,
    wts: &RecurrentWeights<'_>,
    input: &[X],
    output: &mut [Y],
) -> Option<()> {
    let rp = &p.rec;
    if !io_ok(rp, input, output) {
        return None;
    }
    let rows = Rows::new(wts, rp, 3)?;
    let (t_z, t_r, t_n) = (
        table(wts.tables, 0)?,
        table(wts.tables, 1)?,
        table(wts.tables, 2)?,
    );
    let n = rp.hidden;
    let zx = rp.input_zero_point;
    let mut h_prev = [0i16; MAX_HIDDEN];
    let mut h_next = [0i16; MAX_HIDDEN];
    wts.initial.start(h_prev.get_mut(..n)?, None)?;
    let mut z = [0i16; MAX_HIDDEN];
    // r, or r ⊙ h when the reset gate applies before the recurrent product.
    let mut r = [0i16; MAX_HIDDEN];
    let mut pre = [0i32; UNITS];
    let mut scratch = [0i32; UNITS];
    let mut n_act = [0i16; UNITS];
    for step in 0..rp.steps {
        let (t, x) = rp.step(input, step)?;
        let h = h_prev.get(..n)?;
        for j0 in (0..n).step_by(UNITS) {
            let b = (n - j0).min(UNITS);
            let (pre, scratch) = (pre.get_mut(..b)?, scratch.get_mut(..b)?);
            for (gate, (act, t_act)) in [(&mut z, t_z), (&mut r, t_r)].into_iter().enumerate() {
                rows.pre(g, gate * n + j0, (x, zx), h, pre, scratch);
                g.lookups(t_act, pre, act.get_mut(j0..j0 + b)?);
            }
        }
        if !p.linear_before_reset {
            for (rj, &hj) in r.iter_mut().zip(h) {
                *rj = sat16(requantize(i32::from(*rj) * i32::from(hj), Q15_M, Q15_S)) as i16;
            }
        }
        // The n rows read h, or r ⊙ h.
        let h_n = if p.linear_before_reset {
            h
        } else {
            r.get(..n)?
        };
        for j0 in (0..n).step_by(UNITS) {
            let b = (n - j0).min(UNITS);
            let (xn, hp) = (pre.get_mut(..b)?, scratch.get_mut(..b)?);
            rows.x_parts(g, 2 * n + j0, x, zx, xn);
            rows.h_parts(g, 2 * n + j0, h_n, hp);
            if p.linear_before_reset {
                let r = r.get(j0..j0 + b)?;
                g.add_reset_products(r, hp, (p.rh_multiplier, p.rh_shift), xn);
            } else {
                for (xn, &hp) in xn.iter_mut().zip(hp.iter()) {
                    *xn = sat16(xn.saturating_add(hp));
                }
            }
            let n_act = n_act.get_mut(..b)?;
            g.lookups(t_n, xn, n_act);
            let units = h_next.iter_mut().zip(h).zip(z.iter()).skip(j0);
            for (((h_out, &hj), &zj), &nj) in units.zip(n_act.iter()) {
                let nj = i32::from(nj);
                // |z| ≤ 2^15 and |h − n| < 2^16: the product fits i32.
                let toward_h = requantize(i32::from(zj) * (i32::from(hj) - nj), Q15_M, Q15_S);
                *h_out = sat16(nj + toward_h) as i16;
            }
        }
        write_step(rp, t, h_next.get(..n)?, output);
        h_prev = h_next;
    }
    if !rp.sequence {
        write_output(rp, h_prev.get(..n)?, output);
    }
    Some(())
}

/// Simple (Elman) RNN, ONNX `RNN`: one gate whose activation is the new
/// hidden state; initial state 0.
///
/// Per step `t` and unit `j`, with `x_part`/`h_part` as for [`lstm_s8`]:
///
/// ```text
/// h'[j] = act_0(sat16(x_part[j] +sat h_part[j]))
/// ```
///
/// and `y` as for [`lstm_s8`]. The table maps the pre-activation onto the
/// state's `i16` grid, whatever function it holds (tanh, ReLU, sigmoid).
///
/// Returns early, leaving `output` unchanged, under the conditions of
/// [`lstm_s8`] with 1 gate and 1 table.
pub fn rnn_s8(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i8]) {
    rnn_with(&ScalarProducts, p, wts, input, output);
}

/// [`rnn_s8`] with the gate products of `g` (which optimized kernels pass).
#[inline(always)]
pub(crate) fn rnn_with<G: GateProducts>(
    g: &G,
    p: &RnnParams,
    wts: &RecurrentWeights<'_>,
    input: &[i8],
    output: &mut [i8],
) {
    let _ = rnn_inner(g, p, wts, input, output);
}

#[inline(always)]
fn rnn_inner<G: GateProducts, X: StepLane, Y: Lane>(
    g: &G,
    p: &RnnParams,
    wts: &RecurrentWeights<'_>,
    input: &[X],
    output: &mut [Y],
) -> Option<()> {
    let rp = &p.rec;
    if !io_ok(rp, input, output) {
        return None;
    }
    let rows = Rows::new(wts, rp, 1)?;
    let t_act = table(wts.tables, 0)?;
    let n = rp.hidden;
    let zx = rp.input_zero_point;
    let mut h_prev = [0i16; MAX_HIDDEN];
    let mut h_next = [0i16; MAX_HIDDEN];
    wts.initial.start(h_prev.get_mut(..n)?, None)?;
    let mut pre = [0i32; UNITS];
    let mut scratch = [0i32; UNITS];
    for step in 0..rp.steps {
        let (t, x) = rp.step(input, step)?;
        let h = h_prev.get(..n)?;
        for j0 in (0..n).step_by(UNITS) {
            let b = (n - j0).min(UNITS);
            let (pre, scratch) = (pre.get_mut(..b)?, scratch.get_mut(..b)?);
            rows.pre(g, j0, (x, zx), h, pre, scratch);
            g.lookups(t_act, pre, h_next.get_mut(j0..j0 + b)?);
        }
        write_step(rp, t, h_next.get(..n)?, output);
        h_prev = h_next;
    }
    if !rp.sequence {
        write_output(rp, h_prev.get(..n)?, output);
    }
    Some(())
}

/// The recurrent kernels with int16 sides (feature `int16-activations`;
/// TFLite's 16x8 idea applied to the step input and the output, the cell
/// itself being int16 already). The steps are [`lstm_s8`]'s and
/// [`gru_s8`]'s; an int16 step input (zero point 0, at most
/// [`MAX_INPUT_S16`] features) is multiplied by the input rows as the
/// hidden state is by the recurrent ones, and an int16 output is
/// `sat16(requantize(h, out_m, out_s))` (zero point 0). With int8 on both
/// sides they would be the int8 kernels bit for bit.
///
/// They return early, leaving `output` unchanged, under the int8 kernels'
/// conditions, and unless an int16 side's zero point is 0 and an int16
/// input has at most [`MAX_INPUT_S16`] features.
#[cfg(feature = "int16-activations")]
mod wide {
    use super::*;

    /// LSTM, int16 in and out.
    pub fn lstm_s16(p: &LstmParams, wts: &RecurrentWeights<'_>, input: &[i16], output: &mut [i16]) {
        let _ = lstm_inner(&ScalarProducts, p, wts, input, output);
    }

    /// LSTM, int8 in, int16 out.
    pub fn lstm_s8_s16(
        p: &LstmParams,
        wts: &RecurrentWeights<'_>,
        input: &[i8],
        output: &mut [i16],
    ) {
        let _ = lstm_inner(&ScalarProducts, p, wts, input, output);
    }

    /// LSTM, int16 in, int8 out.
    pub fn lstm_s16_s8(
        p: &LstmParams,
        wts: &RecurrentWeights<'_>,
        input: &[i16],
        output: &mut [i8],
    ) {
        let _ = lstm_inner(&ScalarProducts, p, wts, input, output);
    }

    /// GRU, int16 in and out.
    pub fn gru_s16(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i16], output: &mut [i16]) {
        let _ = gru_inner(&ScalarProducts, p, wts, input, output);
    }

    /// GRU, int8 in, int16 out.
    pub fn gru_s8_s16(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i16]) {
        let _ = gru_inner(&ScalarProducts, p, wts, input, output);
    }

    /// GRU, int16 in, int8 out.
    pub fn gru_s16_s8(p: &GruParams, wts: &RecurrentWeights<'_>, input: &[i16], output: &mut [i8]) {
        let _ = gru_inner(&ScalarProducts, p, wts, input, output);
    }

    /// Simple RNN, int16 in and out.
    pub fn rnn_s16(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i16], output: &mut [i16]) {
        let _ = rnn_inner(&ScalarProducts, p, wts, input, output);
    }

    /// Simple RNN, int8 in, int16 out.
    pub fn rnn_s8_s16(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i8], output: &mut [i16]) {
        let _ = rnn_inner(&ScalarProducts, p, wts, input, output);
    }

    /// Simple RNN, int16 in, int8 out.
    pub fn rnn_s16_s8(p: &RnnParams, wts: &RecurrentWeights<'_>, input: &[i16], output: &mut [i8]) {
        let _ = rnn_inner(&ScalarProducts, p, wts, input, output);
    }
}

#[cfg(feature = "int16-activations")]
pub use wide::{
    gru_s16, gru_s16_s8, gru_s8_s16, lstm_s16, lstm_s16_s8, lstm_s8_s16, rnn_s16, rnn_s16_s8,
    rnn_s8_s16,
};

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// The identity table: entry k is 256k − 32768 (the last saturates), so
    /// `table_lookup_s16(v) = v` except in the top segment.
    fn identity() -> [i16; TABLE_LEN] {
        let mut t = [0i16; TABLE_LEN];
        for (k, e) in t.iter_mut().enumerate() {
            *e = (256 * k as i32 - 32768).min(32767) as i16;
        }
        t
    }

    /// A constant table.
    fn constant(v: i16) -> [i16; TABLE_LEN] {
        [v; TABLE_LEN]
    }

    fn flat(tables: &[[i16; TABLE_LEN]]) -> Vec<i16> {
        tables.iter().flatten().copied().collect()
    }

    #[test]
    fn lookup_interpolates_and_rounds_half_up() {
        let mut t = [0i16; TABLE_LEN];
        // Segment 128 (v in 0..256) goes from 0 to 3; segment 127 from −5 to 0.
        t[129] = 3;
        t[127] = -5;
        assert_eq!(table_lookup_s16(&t, 0), 0);
        // v = 128: 3·128/256 = 1.5 → 2 (half up).
        assert_eq!(table_lookup_s16(&t, 128), 2);
        // v = 85: 255/256 = 0.996 → 1.
        assert_eq!(table_lookup_s16(&t, 85), 1);
        // v = −128 (segment 127, frac 128): −5 + 5·128/256 = −5 + 2.5 → −5 + 3 = −2.
        assert_eq!(table_lookup_s16(&t, -128), -2);
        // v = −256 is the start of segment 127: −5.
        assert_eq!(table_lookup_s16(&t, -256), -5);
        // The ends and out-of-range inputs clamp to i16 first.
        let id = identity();
        assert_eq!(table_lookup_s16(&id, -32768), -32768);
        assert_eq!(table_lookup_s16(&id, -40000), -32768);
        assert_eq!(table_lookup_s16(&id, 1234), 1234);
        // Top segment: 32512 + (32767 − 32512)·255/256 = 32512 + 254.0 → 32766.
        assert_eq!(table_lookup_s16(&id, 32767), 32766);
        assert_eq!(table_lookup_s16(&id, 99999), 32766);
    }

    fn rec(steps: usize, input_size: usize, hidden: usize) -> RecurrentParams {
        RecurrentParams {
            steps,
            input_size,
            hidden,
            input_zero_point: 0,
            output_zero_point: 0,
            // 2^-8: Q0.15 → a scale of 2^-7.
            out_multiplier: 1 << 30,
            out_shift: -7,
            reverse: false,
            sequence: false,
        }
    }

    /// One unit, one input, identity-scaled rows: x part = bias_x + x·w, h part
    /// = bias_h + h·r, both with multiplier 1.
    struct Case {
        w: Vec<i8>,
        r: Vec<i8>,
        bias_x: Vec<i32>,
        bias_h: Vec<i32>,
        ones_m: Vec<i32>,
        ones_s: Vec<i8>,
        tables: Vec<i16>,
    }

    impl Case {
        fn weights(&self) -> RecurrentWeights<'_> {
            RecurrentWeights {
                w: &self.w,
                r: &self.r,
                bias_x: &self.bias_x,
                bias_h: &self.bias_h,
                x_multiplier: &self.ones_m,
                x_shift: &self.ones_s,
                h_multiplier: &self.ones_m,
                h_shift: &self.ones_s,
                tables: &self.tables,
                initial: Default::default(),
            }
        }
    }

    fn case(gates: usize, w: &[i8], r: &[i8], bias_x: &[i32], tables: Vec<i16>) -> Case {
        Case {
            w: w.to_vec(),
            r: r.to_vec(),
            bias_x: bias_x.to_vec(),
            bias_h: vec![0; gates],
            ones_m: vec![1 << 30; gates],
            ones_s: vec![1; gates],
            tables,
        }
    }

    #[test]
    fn lstm_one_unit_two_steps_by_hand() {
        // Gate tables: i, f, o constant 16384 (0.5), g identity, cell tanh identity.
        let id = identity();
        let half = constant(16384);
        let c = case(
            4,
            &[0, 0, 100, 0], // only g sees x
            &[0, 0, 1, 0],   // g also sees h
            &[0, 0, 0, 0],
            flat(&[half, half, id, half, id]),
        );
        let p = LstmParams {
            rec: rec(2, 1, 1),
            // i·g is Q0.30; cell scale 2^-15 (Q0.15): multiplier 2^-15.
            cell_multiplier: 1 << 30,
            cell_shift: -14,
            tanh_multiplier: 1 << 30,
            tanh_shift: 1,
            cell_output: false,
        };
        let mut y = [0i8; 1];
        lstm_s8(&p, &c.weights(), &[50, 20], &mut y);
        // Step 1: pre_g = 50·100 = 5000 → g = 5000.
        //   c = 0·… + round(16384·5000/32768) = 2500; tanh(c) = 2500;
        //   h = round(16384·2500/32768) = 1250.
        // Step 2: pre_g = 20·100 + 1250·1 = 3250 → g = 3250.
        //   f·c = round(16384·2500/32768) = 1250; i·g = round(16384·3250/32768) = 1625;
        //   c = 2875; h = round(16384·2875/32768) = 1437.5 → 1438.
        // y = round(1438 / 256) = 5.617 → 6.
        assert_eq!(y, [6]);

        // Read h itself (output multiplier 1) with a zero point.
        let exact = LstmParams {
            rec: RecurrentParams {
                out_multiplier: 1 << 30,
                out_shift: 1,
                output_zero_point: -100,
                ..p.rec
            },
            ..p
        };
        let mut y = [0i8; 1];
        // One step with x = 1: g = 100, c = 50, h = 25 → y = 25 − 100 = −75.
        let one = LstmParams {
            rec: RecurrentParams {
                steps: 1,
                ..exact.rec
            },
            ..exact
        };
        lstm_s8(&one, &c.weights(), &[1], &mut y);
        assert_eq!(y, [-75]);
    }

    #[test]
    fn lstm_cell_saturates_and_input_zero_point_applies() {
        // f = 1.0 − 2^-15 (32767), i = 1.0 (32767), g identity of a large input.
        let id = identity();
        let c = case(
            4,
            &[0, 0, 127, 0],
            &[0, 0, 0, 0],
            &[0, 0, 0, 0],
            flat(&[constant(32767), constant(32767), id, constant(32767), id]),
        );
        let p = LstmParams {
            rec: RecurrentParams {
                input_zero_point: -10,
                // 2^-9, so that h shows below the i8 clamp.
                out_multiplier: 1 << 30,
                out_shift: -8,
                ..rec(3, 1, 1)
            },
            // Multiplier 2^-14: the cell counts twice i·g.
            cell_multiplier: 1 << 30,
            cell_shift: -13,
            tanh_multiplier: 1 << 30,
            tanh_shift: 1,
            cell_output: false,
        };
        let mut y = [0i8; 1];
        // x − zx = 110 each step: pre_g = 110·127 = 13970 = g.
        // Step 1: c = 0 + round(32767·13970/16384) = round(27939.15) = 27939.
        // Step 2: f·c = round(32767·27939/32768) = round(27938.15) = 27938;
        //   c = sat16(27938 + 27939) = 32767.
        // Step 3: f·c = round(32766.00003) = 32766, c = sat16(32766 + 27939) = 32767.
        // tanh = identity at 32767, top segment: 32512 + round(255·255/256) = 32766;
        // h = round(32767·32766/32768) = round(32765.00003) = 32765;
        // y = round(32765/512) = round(63.99) = 64.
        lstm_s8(&p, &c.weights(), &[100, 100, 100], &mut y);
        assert_eq!(y, [64]);
    }

    #[test]
    fn gru_both_reset_modes_by_hand() {
        // z constant 8192 (0.25), r constant 16384 (0.5), n identity.
        let id = identity();
        let tables = flat(&[constant(8192), constant(16384), id]);
        // n sees x with weight 100 and h with weight 2.
        let mut c = case(3, &[0, 0, 100], &[0, 0, 2], &[0, 0, 0], tables);
        let p = GruParams {
            rec: RecurrentParams {
                out_multiplier: 1 << 30,
                out_shift: -7, // y = h / 256
                ..rec(2, 1, 1)
            },
            linear_before_reset: false,
            // With lbr: r·hn → n scale exactly (· 2^-15).
            rh_multiplier: 1 << 30,
            rh_shift: -14,
        };
        let mut y = [0i8; 1];
        // lbr = 0. Step 1 (h = 0): n = 100·100 = 10000; h = 10000 + round(8192·(0 − 10000)/32768)
        //   = 10000 − 2500 = 7500.
        // Step 2: rh = round(16384·7500/32768) = 3750; pre_n = 5000 + 3750·2 = 12500;
        //   h = 12500 + round(8192·(7500 − 12500)/32768) = 12500 − 1250 = 11250.
        // y = round(11250/256) = 43.9 → 44.
        gru_s8(&p, &c.weights(), &[100, 50], &mut y);
        assert_eq!(y, [44]);

        // lbr = 1 with a recurrent bias of 1000 on the n row:
        // Step 1: hn = 1000; pre_n = 10000 + round(16384·1000/32768) = 10500;
        //   h = 10500 − round(8192·10500/32768) = 10500 − 2625 = 7875.
        // Step 2: hn = 7875·2 + 1000 = 16750; pre_n = 5000 + 8375 = 13375;
        //   h = 13375 + round(8192·(7875 − 13375)/32768) = 13375 − 1375 = 12000.
        // y = round(12000/256) = 46.875 → 47.
        c.bias_h = vec![0, 0, 1000];
        let lbr = GruParams {
            linear_before_reset: true,
            ..p
        };
        gru_s8(&lbr, &c.weights(), &[100, 50], &mut y);
        assert_eq!(y, [47]);
    }

    #[test]
    fn two_units_use_the_previous_hidden_state_of_every_unit() {
        // GRU, H = 2, I = 1, z = 0 (h = n), r = 1.0 (32767), n identity.
        // n_0 = x·10 + h_1 (r row [0, 1]); n_1 = h_0 · 1 (r row [1, 0]).
        let id = identity();
        let c = Case {
            w: vec![0, 0, 0, 0, 10, 0],
            r: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0],
            bias_x: vec![0; 6],
            bias_h: vec![0; 6],
            ones_m: vec![1 << 30; 6],
            ones_s: vec![1; 6],
            tables: flat(&[constant(0), constant(32767), id]),
        };
        let p = GruParams {
            rec: RecurrentParams {
                out_multiplier: 1 << 30,
                out_shift: -7,
                ..rec(3, 1, 2)
            },
            linear_before_reset: true,
            rh_multiplier: 1 << 30,
            rh_shift: -14,
        };
        let mut y = [0i8; 2];
        // Step 1: h = (1000, 0). r·hn = round(32767·hn/32768): hn 0 → 0, 1000 → 999.97 → 1000.
        // Step 2: n_0 = 1000 + r·0 = 1000; n_1 = r·1000 = 1000 → h = (1000, 1000).
        // Step 3: n_0 = 1000 + round(32767·1000/32768) = 2000; n_1 = 1000 → (2000, 1000).
        // y = (round(2000/256), round(1000/256)) = (7.8 → 8, 3.9 → 4).
        gru_s8(&p, &c.weights(), &[100, 100, 100], &mut y);
        assert_eq!(y, [8, 4]);
    }

    #[test]
    fn zero_steps_output_the_initial_state() {
        let id = identity();
        let c = case(3, &[1, 1, 1], &[1, 1, 1], &[0; 3], flat(&[id, id, id]));
        let p = GruParams {
            rec: RecurrentParams {
                output_zero_point: 7,
                ..rec(0, 1, 1)
            },
            linear_before_reset: false,
            rh_multiplier: 0,
            rh_shift: 0,
        };
        let mut y = [0i8; 1];
        gru_s8(&p, &c.weights(), &[], &mut y);
        assert_eq!(y, [7]);
    }

    #[test]
    fn bad_lengths_leave_the_output_unchanged() {
        let id = identity();
        let good = case(
            4,
            &[1, 1, 1, 1],
            &[1, 1, 1, 1],
            &[0; 4],
            flat(&[id, id, id, id, id]),
        );
        let p = LstmParams {
            rec: rec(1, 1, 1),
            cell_multiplier: 1 << 30,
            cell_shift: 1,
            tanh_multiplier: 1 << 30,
            tanh_shift: 1,
            cell_output: false,
        };
        let mut y = [55i8; 1];
        // Input length is not steps · input_size.
        lstm_s8(&p, &good.weights(), &[1, 2], &mut y);
        assert_eq!(y, [55]);
        // One table short.
        let short = Case {
            tables: flat(&[id, id, id, id]),
            ..case(4, &[1; 4], &[1; 4], &[0; 4], vec![])
        };
        lstm_s8(&p, &short.weights(), &[1], &mut y);
        assert_eq!(y, [55]);
        // Hidden size above the stack buffers.
        let big = LstmParams {
            rec: RecurrentParams {
                hidden: MAX_HIDDEN + 1,
                ..p.rec
            },
            ..p
        };
        let mut y_big = [55i8; MAX_HIDDEN + 1];
        lstm_s8(&big, &good.weights(), &[1], &mut y_big);
        assert!(y_big.iter().all(|&v| v == 55));
        // Zero input size.
        let no_input = LstmParams {
            rec: RecurrentParams {
                input_size: 0,
                steps: 0,
                ..p.rec
            },
            ..p
        };
        lstm_s8(&no_input, &good.weights(), &[], &mut y);
        assert_eq!(y, [55]);
        // And the good case does write.
        lstm_s8(&p, &good.weights(), &[1], &mut y);
        assert_ne!(y, [55]);
    }
}
