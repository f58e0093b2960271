//! Random LSTM / GRU calls for the optimized kernels' property tests
//! (`kernels_x86_64.rs`, `kernels_aarch64.rs`): shapes across the vector
//! widths (rows shorter than 16, exactly 16, with tails, the largest hidden
//! size), zero points across `i8`, extreme weights and biases, multipliers
//! and shifts across their whole ranges (both requantization paths), random
//! tables (so saturated and wild gate values occur), both GRU reset modes,
//! both directions, and the last state or the whole sequence as output.
#![allow(dead_code)] // each test file uses its own part

use medq::kernels::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// One recurrent call's operands.
#[derive(Clone, Debug)]
pub struct RecurrentCase {
    pub rec: RecurrentParams,
    pub w: Vec<i8>,
    pub r: Vec<i8>,
    /// bias_x, bias_h, x_multiplier, h_multiplier.
    pub vectors: [Vec<i32>; 4],
    /// x_shift, h_shift.
    pub shifts: [Vec<i8>; 2],
    pub tables: Vec<i16>,
    /// Cell / rh and tanh requantization pairs.
    pub words: [i32; 4],
    pub lbr: bool,
    pub input: Vec<i8>,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..=20,
        1 => Just(16usize),
        1 => 28usize..=40,
        1 => 60usize..=70,
    ]
}

fn hidden() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..=20,
        2 => 28usize..=36,
        1 => Just(MAX_HIDDEN),
        1 => (MAX_HIDDEN - 17)..MAX_HIDDEN,
    ]
}

fn weights(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        3 => vec(any::<i8>(), n),
        1 => vec(prop_oneof![Just(-128i8), Just(127i8)], n),
    ]
}

fn biases(n: usize) -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        3 => vec(-100_000i32..=100_000, n),
        1 => vec(any::<i32>(), n),
    ]
}

fn multipliers(n: usize) -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        4 => vec((1i32 << 30)..=i32::MAX, n),
        1 => vec(any::<i32>(), n),
        1 => vec(Just(i32::MAX), n),
    ]
}

/// Shifts: the scales a converter writes, then the whole range and past it.
fn shifts(n: usize, typical: std::ops::RangeInclusive<i8>) -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        4 => vec(typical, n),
        1 => vec(-40i8..=40, n),
        1 => vec(-2i8..=1, n),
    ]
}

/// A call with `gates` gates and `n_tables` tables.
pub fn recurrent_case(gates: usize, n_tables: usize) -> impl Strategy<Value = RecurrentCase> {
    (1usize..=5, size(), hidden()).prop_flat_map(move |(steps, input_size, hidden)| {
        let rows = gates * hidden;
        (
            (
                -128i32..=127,
                -128i32..=127,
                any::<bool>(),
                any::<(bool, bool)>(),
            ),
            (weights(rows * input_size), weights(rows * hidden)),
            (
                biases(rows),
                biases(rows),
                multipliers(rows),
                multipliers(rows),
            ),
            (shifts(rows, -12..=1), shifts(rows, -14..=-4)),
            vec(any::<i16>(), n_tables * TABLE_LEN),
            (
                (1i32 << 30)..=i32::MAX,
                -16i32..=1,
                (1i32 << 30)..=i32::MAX,
                -3i32..=1,
            ),
            ((1i32 << 30)..=i32::MAX, -10i32..=-4),
            vec(any::<i8>(), steps * input_size),
        )
            .prop_map(
                move |(
                    (zx, zy, lbr, (reverse, sequence)),
                    (w, r),
                    (bx, bh, xm, hm),
                    (xs, hs),
                    tables,
                    words,
                    out,
                    input,
                )| {
                    RecurrentCase {
                        rec: RecurrentParams {
                            steps,
                            input_size,
                            hidden,
                            input_zero_point: zx,
                            output_zero_point: zy,
                            out_multiplier: out.0,
                            out_shift: out.1,
                            reverse,
                            sequence,
                        },
                        w,
                        r,
                        vectors: [bx, bh, xm, hm],
                        shifts: [xs, hs],
                        tables,
                        words: [words.0, words.1, words.2, words.3],
                        lbr,
                        input,
                    }
                },
            )
    })
}

impl RecurrentCase {
    pub fn weights(&self) -> RecurrentWeights<'_> {
        let [bias_x, bias_h, x_multiplier, h_multiplier] = &self.vectors;
        let [x_shift, h_shift] = &self.shifts;
        RecurrentWeights {
            w: &self.w,
            r: &self.r,
            bias_x,
            bias_h,
            x_multiplier,
            x_shift,
            h_multiplier,
            h_shift,
            tables: &self.tables,
            initial: Default::default(),
        }
    }

    pub fn lstm(&self) -> LstmParams {
        LstmParams {
            rec: self.rec,
            cell_multiplier: self.words[0],
            cell_shift: self.words[1],
            tanh_multiplier: self.words[2],
            tanh_shift: self.words[3],
            cell_output: false,
        }
    }

    pub fn gru(&self) -> GruParams {
        GruParams {
            rec: self.rec,
            linear_before_reset: self.lbr,
            rh_multiplier: self.words[0],
            rh_shift: self.words[1],
        }
    }

    /// The output of an LSTM kernel on this case.
    pub fn run_lstm(&self, f: fn(&LstmParams, &RecurrentWeights<'_>, &[i8], &mut [i8])) -> Vec<i8> {
        let mut y = vec![0x55i8; self.rec.output_len().unwrap_or(0)];
        f(&self.lstm(), &self.weights(), &self.input, &mut y);
        y
    }

    /// The output of a simple RNN kernel on this case.
    pub fn run_rnn(&self, f: fn(&RnnParams, &RecurrentWeights<'_>, &[i8], &mut [i8])) -> Vec<i8> {
        let mut y = vec![0x55i8; self.rec.output_len().unwrap_or(0)];
        f(
            &RnnParams { rec: self.rec },
            &self.weights(),
            &self.input,
            &mut y,
        );
        y
    }

    /// The output of a GRU kernel on this case.
    pub fn run_gru(&self, f: fn(&GruParams, &RecurrentWeights<'_>, &[i8], &mut [i8])) -> Vec<i8> {
        let mut y = vec![0x55i8; self.rec.output_len().unwrap_or(0)];
        f(&self.gru(), &self.weights(), &self.input, &mut y);
        y
    }
}
