//! LSTM, GRU and the simple RNN: the float cell (tract only exposes the node's outputs, so
//! the internal ranges — gate pre-activations, cell state, the GRU's
//! `R_n·h + Rb_n` — come from simulating the cell on the node's float input)
//! and the lowering to medq's `Lstm` / `Gru` / `Rnn` ops under `NUMERICS.md`
//! § "Recurrent ops". The ONNX side is in `onnx.rs` beside this file.

pub(crate) mod onnx;

use medq::format::layout::{params, OpCode};
use medq::kernels::{MAX_HIDDEN, TABLE_LEN};

use super::IrOp;
use crate::error::ConvertError;
use crate::float_eval::EvalCtx;
use crate::ir::{Array, FusedActivation, Graph, Node};
use crate::quantize::{
    int_const, multiplier, quantize_per_channel, shift_const, ConstData, ConstQuant, ConstTensor,
    LowerCtx, Lowered, Operand, OutputQuant, QParams,
};

/// The cell of a recurrent op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru {
        linear_before_reset: bool,
    },
    /// ONNX `RNN` (torch's `nn.RNN`): `h = tanh(W x + R h + b)`.
    Rnn,
}

/// An LSTM or GRU over a sequence (forward, batch 1, zero initial state):
/// the input is `[T, 1, I]`, the output the last hidden state `Y_h`
/// `[1, 1, H]`. Float weights with rows in medq's gate order (LSTM i, f, g,
/// o; GRU z, r, n), `G` gates of `hidden` rows each.
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
    /// Run the steps last to first (ONNX `reverse`, and the backward half
    /// of `bidirectional`).
    pub reverse: bool,
    /// Output every step's hidden state, `[T, H]` in time order (ONNX `Y`
    /// of one direction), not only the last one (`Y_h`).
    pub sequence: bool,
    /// The node's input 1 is the initial hidden state `[1, 1, H]` (ONNX
    /// `initial_h` computed from a model input: a stream's state), and,
    /// with `initial_c`, input 2 the LSTM's initial cell state; else zero.
    pub initial_h: bool,
    pub initial_c: bool,
    /// (LSTM) Output the last cell state (ONNX `Y_c`) instead of `h`.
    pub cell_output: bool,
}

/// Q0.15: the real value 1.0 is 2^15 (saturated to 32767 where stored).
const Q15: f64 = 32768.0;

/// Largest pre-activation range of a sigmoid / tanh table: beyond it the
/// function is within 1e-5 of its asymptote, and a narrower domain makes the
/// 256 interpolation segments finer.
const SIGMOID_CAP: f32 = 12.0;
const TANH_CAP: f32 = 6.0;
/// Headroom over the calibrated maximum for values the calibration set
/// did not reach, and the smallest range used.
const MARGIN: f32 = 1.25;
const FLOOR: f32 = 1.0;

/// Largest absolute values seen inside the cell during calibration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellRanges {
    /// Per gate: the pre-activation (input part + recurrent part + biases).
    pub gate_absmax: Vec<f32>,
    /// LSTM: the cell state.
    pub cell_absmax: f32,
    /// GRU with `linear_before_reset`: `R_n·h + Rb_n`.
    pub hn_absmax: f32,
    /// Samples observed.
    pub samples: usize,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Recurrent {
    /// Gates per hidden unit: LSTM 4, GRU 3.
    pub fn gates(&self) -> usize {
        match self.cell {
            Cell::Lstm => params::lstm::GATES,
            Cell::Gru { .. } => params::gru::GATES,
            Cell::Rnn => params::rnn::GATES,
        }
    }

    /// Sequence length of an input of `len` values.
    pub fn steps(&self, len: usize) -> usize {
        len / self.input_size.max(1)
    }

    /// `Σ_i m[k, i] · v[i] + b[k]` for every row `k`.
    fn matvec(m: &Array, v: &[f64], b: &[f32]) -> Vec<f64> {
        let cols = v.len();
        m.data
            .chunks_exact(cols.max(1))
            .zip(b)
            .map(|(row, &bk)| {
                row.iter().zip(v).map(|(&w, &x)| w as f64 * x).sum::<f64>() + bk as f64
            })
            .collect()
    }

    /// The ONNX cell in `f64` over `inputs` (the node's: `x`, `T·I`
    /// values, then the initial states it has; a missing one is zero):
    /// returns the last hidden state (every step's, in time order, with
    /// `sequence`) and widens `ranges`.
    pub fn simulate(&self, inputs: &[&[f32]], ranges: &mut CellRanges) -> Vec<f32> {
        let x = inputs.first().copied().unwrap_or_default();
        let state = |k: usize| -> Vec<f64> {
            match inputs.get(k) {
                Some(v) if v.len() == self.hidden => v.iter().map(|&e| f64::from(e)).collect(),
                _ => vec![0.0; self.hidden],
            }
        };
        let steps: Vec<&[f32]> = x.chunks_exact(self.input_size.max(1)).collect();
        let mut y = vec![
            0f32;
            if self.sequence {
                steps.len() * self.hidden
            } else {
                0
            }
        ];
        let order: Vec<usize> = if self.reverse {
            (0..steps.len()).rev().collect()
        } else {
            (0..steps.len()).collect()
        };
        let (n, g) = (self.hidden, self.gates());
        if ranges.gate_absmax.len() != g {
            ranges.gate_absmax = vec![0.0; g];
        }
        let widen = |slot: &mut f32, v: f64| *slot = slot.max(v.abs() as f32);
        let mut h = if self.initial_h {
            state(1)
        } else {
            vec![0.0; n]
        };
        let mut c = if self.initial_c {
            state(2)
        } else {
            vec![0.0; n]
        };
        for &v in &c {
            widen(&mut ranges.cell_absmax, v);
        }
        let zeros = vec![0f32; g * n];
        for t in order {
            let xt: Vec<f64> = steps[t].iter().map(|&v| v as f64).collect();
            let xw = Self::matvec(&self.w, &xt, &self.bias_w);
            match self.cell {
                Cell::Rnn => {
                    let hr = Self::matvec(&self.r, &h, &self.bias_r);
                    for j in 0..n {
                        let pre = xw[j] + hr[j];
                        widen(&mut ranges.gate_absmax[0], pre);
                        h[j] = pre.tanh();
                    }
                }
                Cell::Lstm => {
                    let hr = Self::matvec(&self.r, &h, &self.bias_r);
                    let pre: Vec<f64> = xw.iter().zip(&hr).map(|(a, b)| a + b).collect();
                    for (k, &p) in pre.iter().enumerate() {
                        widen(&mut ranges.gate_absmax[k / n], p);
                    }
                    for j in 0..n {
                        let i = sigmoid(pre[j]);
                        let f = sigmoid(pre[n + j]);
                        let gg = pre[2 * n + j].tanh();
                        let o = sigmoid(pre[3 * n + j]);
                        c[j] = f * c[j] + i * gg;
                        widen(&mut ranges.cell_absmax, c[j]);
                        h[j] = o * c[j].tanh();
                    }
                }
                Cell::Gru {
                    linear_before_reset,
                } => {
                    let hr = Self::matvec(&self.r, &h, &self.bias_r);
                    let z: Vec<f64> = (0..n).map(|j| xw[j] + hr[j]).collect();
                    let r: Vec<f64> = (0..n).map(|j| xw[n + j] + hr[n + j]).collect();
                    for j in 0..n {
                        widen(&mut ranges.gate_absmax[0], z[j]);
                        widen(&mut ranges.gate_absmax[1], r[j]);
                    }
                    let z: Vec<f64> = z.into_iter().map(sigmoid).collect();
                    let r: Vec<f64> = r.into_iter().map(sigmoid).collect();
                    let recurrent: Vec<f64> = if linear_before_reset {
                        (0..n)
                            .map(|j| {
                                widen(&mut ranges.hn_absmax, hr[2 * n + j]);
                                r[j] * hr[2 * n + j]
                            })
                            .collect()
                    } else {
                        let rh: Vec<f64> = r.iter().zip(&h).map(|(a, b)| a * b).collect();
                        let mut b = zeros.clone();
                        b[2 * n..].copy_from_slice(&self.bias_r[2 * n..]);
                        let part = Self::matvec(&self.r, &rh, &b);
                        part[2 * n..].to_vec()
                    };
                    for j in 0..n {
                        let pre = xw[2 * n + j] + recurrent[j];
                        widen(&mut ranges.gate_absmax[2], pre);
                        let nj = pre.tanh();
                        h[j] = (1.0 - z[j]) * nj + z[j] * h[j];
                    }
                }
            }
            if let Some(row) = y.get_mut(t * n..(t + 1) * n) {
                for (d, &v) in row.iter_mut().zip(&h) {
                    *d = v as f32;
                }
            }
        }
        ranges.samples += 1;
        if self.cell_output {
            return c.into_iter().map(|v| v as f32).collect();
        }
        if self.sequence {
            return y;
        }
        h.into_iter().map(|v| v as f32).collect()
    }
}

/// A calibrated range with headroom, at least [`FLOOR`], at most `cap`.
fn range(absmax: f32, cap: f32) -> f64 {
    (absmax * MARGIN).clamp(FLOOR, cap.max(FLOOR)) as f64
}

/// `table[k] = round(2^15 · f(scale · (256k − 32768)))`, saturated to `i16`.
pub fn interpolation_table(f: impl Fn(f64) -> f64, input_scale: f64) -> Vec<i16> {
    (0..TABLE_LEN)
        .map(|k| {
            let x = input_scale * (256.0 * k as f64 - Q15);
            (Q15 * f(x)).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

fn err(node: &Node, reason: String) -> ConvertError {
    ConvertError::Quantization {
        node: node.name.clone(),
        reason,
    }
}

fn i8_weights(name: String, m: &Array) -> Operand {
    let (q, scales) = quantize_per_channel(m);
    Operand::Constant(ConstTensor {
        name,
        dims: m.shape.clone(),
        quant: ConstQuant::PerChannel { axis: 0, scales },
        data: ConstData::I8(q),
    })
}

/// The `Lstm` / `Gru` op of `node` on input `x`, output `y`: its operands
/// (see `params::recurrent`) and parameter words (`params::lstm`,
/// `params::gru`).
/// The initial-state operands of a recurrent op, with their quantization.
#[derive(Default)]
struct StateOperands {
    h: Option<(Operand, QParams)>,
    c: Option<(Operand, QParams)>,
}

fn lower(
    node: &Node,
    rec: &Recurrent,
    (x, xq): (Operand, QParams),
    state: StateOperands,
    y: QParams,
    ranges: Option<&CellRanges>,
) -> Result<Lowered, ConvertError> {
    let ranges = ranges.ok_or_else(|| {
        err(
            node,
            "no calibration of the cell's internal ranges (gates, cell state)".into(),
        )
    })?;
    let (n, g) = (rec.hidden, rec.gates());
    if n == 0 || n > MAX_HIDDEN || ranges.gate_absmax.len() != g {
        return Err(err(
            node,
            format!("hidden size {n} is outside 1..={MAX_HIDDEN}, or the calibration does not fit the cell"),
        ));
    }
    // Reduction lengths far below the i32 wrap bound of NUMERICS.md.
    if rec.input_size > 60_000 {
        return Err(err(node, "input size above 60000".into()));
    }
    let lbr = matches!(
        rec.cell,
        Cell::Gru {
            linear_before_reset: true
        }
    );
    // Gate 2 is tanh in both gated cells (LSTM g, GRU n), and a simple
    // RNN's one gate is its tanh; the others are sigmoids.
    let is_sigmoid = |gate: usize| gate != 2 && rec.cell != Cell::Rnn;
    // Real value of one i16 step of each gate's pre-activation.
    let gate_scale: Vec<f64> = (0..g)
        .map(|gate| {
            let cap = if is_sigmoid(gate) {
                SIGMOID_CAP
            } else {
                TANH_CAP
            };
            range(ranges.gate_absmax[gate], cap) / Q15
        })
        .collect();
    let hn_scale = range(ranges.hn_absmax, f32::INFINITY) / Q15;

    let (_, w_scales) = quantize_per_channel(&rec.w);
    let (_, r_scales) = quantize_per_channel(&rec.r);
    let rows = g * n;
    let mut v: [Vec<i32>; 6] = Default::default();
    for k in 0..rows {
        let gate = k / n;
        let n_row_lbr = lbr && gate == 2;
        let acc_x = xq.scale as f64 * w_scales[k] as f64;
        let acc_h = r_scales[k] as f64 / Q15;
        // Biases that add before the nonlinearity ride on the input side;
        // the GRU's reset-scaled Rb_n stays with the recurrent product.
        let (bx, bh) = if n_row_lbr {
            (rec.bias_w[k] as f64, rec.bias_r[k] as f64)
        } else {
            (rec.bias_w[k] as f64 + rec.bias_r[k] as f64, 0.0)
        };
        let to_i32 = |b: f64| b.round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        v[0].push(to_i32(bx / acc_x));
        v[1].push(to_i32(bh / acc_h));
        let (xm, xs) = multiplier(node, acc_x / gate_scale[gate], "input part")?;
        let h_target = if n_row_lbr {
            hn_scale
        } else {
            gate_scale[gate]
        };
        let (hm, hs) = multiplier(node, acc_h / h_target, "recurrent part")?;
        v[2].push(xm);
        v[3].push(xs);
        v[4].push(hm);
        v[5].push(hs);
    }

    let mut tables: Vec<i16> = Vec::new();
    for (gate, &s) in gate_scale.iter().enumerate() {
        if is_sigmoid(gate) {
            tables.extend(interpolation_table(sigmoid, s));
        } else {
            tables.extend(interpolation_table(f64::tanh, s));
        }
    }
    let (out_m, out_s) = multiplier(node, 1.0 / (Q15 * y.scale as f64), "output")?;
    let (opcode, words) = match rec.cell {
        Cell::Lstm => {
            use params::lstm as w;
            let cell_scale = range(ranges.cell_absmax, f32::INFINITY) / Q15;
            let tanh_scale = range(ranges.cell_absmax, TANH_CAP) / Q15;
            tables.extend(interpolation_table(f64::tanh, tanh_scale));
            let (cm, cs) = multiplier(node, 1.0 / (Q15 * Q15 * cell_scale), "cell update")?;
            let (tm, ts) = multiplier(node, cell_scale / tanh_scale, "cell tanh input")?;
            let (out_m, out_s) = match rec.cell_output {
                true => multiplier(node, cell_scale / y.scale as f64, "cell state output")?,
                false => (out_m, out_s),
            };
            let mut p = [0; w::COUNT];
            p[w::CELL_MULTIPLIER] = cm;
            p[w::CELL_SHIFT] = cs;
            p[w::TANH_MULTIPLIER] = tm;
            p[w::TANH_SHIFT] = ts;
            p[w::OUT_MULTIPLIER] = out_m;
            p[w::OUT_SHIFT] = out_s;
            (OpCode::Lstm, p.to_vec())
        }
        Cell::Gru {
            linear_before_reset,
        } => {
            use params::gru as w;
            let (rm, rs) = if linear_before_reset {
                multiplier(node, hn_scale / (Q15 * gate_scale[2]), "reset product")?
            } else {
                (0, 0)
            };
            let mut p = [0; w::COUNT];
            p[w::LINEAR_BEFORE_RESET] = i32::from(linear_before_reset);
            p[w::RH_MULTIPLIER] = rm;
            p[w::RH_SHIFT] = rs;
            p[w::OUT_MULTIPLIER] = out_m;
            p[w::OUT_SHIFT] = out_s;
            (OpCode::Gru, p.to_vec())
        }
        Cell::Rnn => {
            use params::rnn as w;
            let mut p = [0; w::COUNT];
            p[w::OUT_MULTIPLIER] = out_m;
            p[w::OUT_SHIFT] = out_s;
            (OpCode::Rnn, p.to_vec())
        }
    };
    // The flags word is written only when a flag is set, so a forward
    // last-state op keeps the record (and the bytes) it always had.
    use params::recurrent::{
        FLAG_CELL_OUTPUT, FLAG_INITIAL_CELL, FLAG_INITIAL_STATE, FLAG_REVERSE, FLAG_SEQUENCE,
    };
    let flags = i32::from(rec.reverse) * FLAG_REVERSE
        + i32::from(rec.sequence) * FLAG_SEQUENCE
        + i32::from(rec.cell_output) * FLAG_CELL_OUTPUT
        + i32::from(state.h.is_some()) * FLAG_INITIAL_STATE
        + i32::from(state.c.is_some()) * FLAG_INITIAL_CELL;
    let mut words = words;
    if flags != 0 {
        words.push(flags);
    }
    // The state inputs' words follow the flags: onto Q0.15, and onto the
    // cell scale.
    if let Some((_, q)) = &state.h {
        let (m, s) = multiplier(node, q.scale as f64 * Q15, "initial hidden state")?;
        words.extend([m, s]);
    }
    if let Some((_, q)) = &state.c {
        let cell_scale = range(ranges.cell_absmax, f32::INFINITY) / Q15;
        let (m, s) = multiplier(node, q.scale as f64 / cell_scale, "initial cell state")?;
        words.extend([m, s]);
    }
    let n_tables = tables.len() / TABLE_LEN;
    let name = &node.name;
    let [bias_x, bias_h, x_mult, x_shift, h_mult, h_shift] = v;
    use params::recurrent as at;
    let mut inputs: Vec<Option<Operand>> = vec![None; at::INPUT_COUNT];
    inputs[at::X] = Some(x);
    inputs[at::W] = Some(i8_weights(format!("{name}.w"), &rec.w));
    inputs[at::R] = Some(i8_weights(format!("{name}.r"), &rec.r));
    inputs[at::BIAS_X] = Some(int_const(format!("{name}.bias_x"), bias_x));
    inputs[at::BIAS_H] = Some(int_const(format!("{name}.bias_h"), bias_h));
    inputs[at::X_MULTIPLIER] = Some(int_const(format!("{name}.x_multiplier"), x_mult));
    inputs[at::X_SHIFT] = Some(shift_const(format!("{name}.x_shift"), &x_shift));
    inputs[at::H_MULTIPLIER] = Some(int_const(format!("{name}.h_multiplier"), h_mult));
    inputs[at::H_SHIFT] = Some(shift_const(format!("{name}.h_shift"), &h_shift));
    inputs[at::TABLES] = Some(Operand::Constant(ConstTensor {
        name: format!("{name}.tables"),
        dims: vec![n_tables, TABLE_LEN],
        quant: ConstQuant::None,
        data: ConstData::I16(tables),
    }));
    let mut inputs = inputs
        .into_iter()
        .collect::<Option<Vec<Operand>>>()
        .ok_or_else(|| err(node, "an operand of the recurrent op is missing".into()))?;
    inputs.extend(state.h.map(|(op, _)| op));
    inputs.extend(state.c.map(|(op, _)| op));
    Ok(Lowered {
        opcode,
        inputs,
        params: words,
    })
}

impl IrOp for Recurrent {
    fn kind(&self) -> &'static str {
        match self.cell {
            Cell::Lstm => "Lstm",
            Cell::Gru { .. } => "Gru",
            Cell::Rnn => "Rnn",
        }
    }

    fn eval(&self, cx: &EvalCtx) -> Result<Vec<f32>, ConvertError> {
        let mut inputs = vec![cx.input(0)?.0];
        for k in 1..1 + usize::from(self.initial_h) + usize::from(self.initial_c) {
            inputs.push(cx.input(k)?.0);
        }
        Ok(self.simulate(&inputs, &mut CellRanges::default()))
    }

    fn output_quant(&self) -> OutputQuant {
        OutputQuant::Calibrated(FusedActivation::None)
    }

    fn lower(&self, cx: &LowerCtx) -> Result<Lowered, ConvertError> {
        let mut state = StateOperands::default();
        if self.initial_h {
            state.h = Some(cx.activation(1)?);
        }
        if self.initial_c {
            state.c = Some(cx.activation(2)?);
        }
        lower(
            cx.node,
            self,
            cx.activation(0)?,
            state,
            cx.output_q()?,
            cx.cell,
        )
    }

    fn macs(&self, graph: &Graph, node: &Node) -> u64 {
        // Every step multiplies x by W and h by R.
        let steps = node
            .inputs
            .first()
            .map_or(0, |&x| self.steps(graph.tensors[x].shape.iter().product()));
        (steps * (self.w.len() + self.r.len())) as u64
    }

    fn parameters(&self) -> usize {
        self.w.len() + self.r.len() + self.bias_w.len() + self.bias_r.len()
    }

    fn activation_mut(&mut self) -> Option<&mut FusedActivation> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_sample_the_function_at_segment_starts() {
        // Scale 2^-12: entry k stands for (256k − 32768)/4096 = k/16 − 8.
        let t = interpolation_table(f64::tanh, 1.0 / 4096.0);
        assert_eq!(t.len(), TABLE_LEN);
        assert_eq!(t[128], 0);
        // tanh(1) · 32768 = 24955.9 → 24956 at k = 144.
        assert_eq!(t[144], 24956);
        assert_eq!(t[112], -24956);
        // tanh(8) · 32768 = 32767.99 → saturated to 32767.
        assert_eq!(t[256], 32767);
        let s = interpolation_table(sigmoid, 1.0 / 4096.0);
        assert_eq!(s[128], 16384);
        assert_eq!(s[0], 11); // sigmoid(−8) · 32768 = 10.99
    }

    fn gru(lbr: bool) -> Recurrent {
        // H = 1, I = 1: z row weight 0 bias −∞-ish (z ≈ 0), r row saturated,
        // n row = x with recurrent weight 0.5.
        Recurrent {
            cell: Cell::Gru {
                linear_before_reset: lbr,
            },
            hidden: 1,
            input_size: 1,
            w: Array::new(vec![3, 1], vec![0.0, 0.0, 1.0]),
            r: Array::new(vec![3, 1], vec![0.0, 0.0, 0.5]),
            bias_w: vec![-30.0, 30.0, 0.0],
            bias_r: vec![0.0, 0.0, 0.25],
            reverse: false,
            sequence: false,
            initial_h: false,
            initial_c: false,
            cell_output: false,
        }
    }

    #[test]
    fn reversed_sequence_runs_last_to_first_and_outputs_in_time_order() {
        let rec = Recurrent {
            reverse: true,
            sequence: true,
            ..gru(false)
        };
        let y = rec.simulate(&[&[0.5, -0.2]], &mut CellRanges::default());
        // Step t = 1 runs first from h = 0, then t = 0.
        let h_t1 = (-0.2f64 + 0.25).tanh();
        let h_t0 = (0.5 + 0.5 * h_t1 + 0.25).tanh();
        assert_eq!(y.len(), 2);
        assert!((y[0] as f64 - h_t0).abs() < 1e-6, "{y:?}");
        assert!((y[1] as f64 - h_t1).abs() < 1e-6, "{y:?}");
        // Forward, the last state alone.
        let h = gru(false).simulate(&[&[0.5, -0.2]], &mut CellRanges::default());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn gru_simulation_follows_onnx() {
        // z ≈ 0, r ≈ 1: h = tanh(x + 0.5·h + 0.25) either way.
        for lbr in [false, true] {
            let mut ranges = CellRanges::default();
            let h = gru(lbr).simulate(&[&[0.5, -0.2]], &mut ranges);
            let h1 = (0.5f64 + 0.25).tanh();
            let h2 = (-0.2 + 0.5 * h1 + 0.25).tanh();
            assert!((h[0] as f64 - h2).abs() < 1e-6, "{lbr}: {} vs {h2}", h[0]);
            assert_eq!(ranges.samples, 1);
            assert!((ranges.gate_absmax[0] - 30.0).abs() < 1e-6);
            assert!((ranges.gate_absmax[2] as f64 - 0.75).abs() < 1e-6);
            if lbr {
                assert!((ranges.hn_absmax as f64 - (0.5 * h1 + 0.25)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn lstm_simulation_follows_onnx() {
        // One unit: i, f, o from biases only, g = tanh(x).
        let rec = Recurrent {
            cell: Cell::Lstm,
            hidden: 1,
            input_size: 1,
            w: Array::new(vec![4, 1], vec![0.0, 0.0, 1.0, 0.0]),
            r: Array::new(vec![4, 1], vec![0.0; 4]),
            bias_w: vec![0.0, 1.0, 0.0, 2.0],
            bias_r: vec![0.0; 4],
            reverse: false,
            sequence: false,
            initial_h: false,
            initial_c: false,
            cell_output: false,
        };
        let mut ranges = CellRanges::default();
        let h = rec.simulate(&[&[1.0, 2.0]], &mut ranges);
        let (i, f, o) = (sigmoid(0.0), sigmoid(1.0), sigmoid(2.0));
        let c1 = i * 1f64.tanh();
        let c2 = f * c1 + i * 2f64.tanh();
        assert!((h[0] as f64 - o * c2.tanh()).abs() < 1e-6);
        assert!((ranges.cell_absmax as f64 - c2).abs() < 1e-6);
        assert_eq!(ranges.gate_absmax, vec![0.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn the_op_table_states_the_hidden_size_limit() {
        for op in ["LSTM", "GRU"] {
            let entry = crate::ops::onnx_op(op).expect("in the table");
            assert!(
                entry.supports.contains(&format!("hidden ≤ {MAX_HIDDEN}")),
                "{op}: {}",
                entry.supports
            );
            // Y and Y_h; the LSTM's Y_c too.
            let outputs = if op == "LSTM" { 3 } else { 2 };
            assert_eq!(entry.outputs.0, outputs, "{op}");
        }
    }
}
