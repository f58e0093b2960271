//! The math ops (Sub, Div, Min, Max, LayerNorm, ReduceSum, ReduceMax,
//! MatMul, ArgMax, Select, TopK)
//! through the format and the interpreter: one-op models with outputs
//! worked out by hand, the refusals of bad records, and hostile patches of a
//! model that chains them all.

mod format_models;

use format_models::*;
use medq::format::layout::header;
use medq::{AlignedBuf, Error, Interpreter, Model, OpCode, QuantSpec, Writer};

/// Runs a model whose graph inputs are filled from `inputs`; returns output 0.
fn run(w: Writer, inputs: &[&[i8]]) -> Vec<i8> {
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0x5Au8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    for (i, data) in inputs.iter().enumerate() {
        interp.input_mut(i).unwrap().copy_from_slice(data);
    }
    interp.invoke().unwrap();
    interp.output(0).unwrap().to_vec()
}

/// A model of activations at consecutive arena offsets.
struct Net {
    w: Writer,
    next_offset: usize,
    inputs: Vec<u16>,
}

impl Net {
    fn new() -> Net {
        Net {
            w: Writer::new(),
            next_offset: 0,
            inputs: Vec::new(),
        }
    }

    fn activation(&mut self, dims: &[usize], quant: QuantSpec) -> u16 {
        let id = self.w.add_activation("t", dims, quant, self.next_offset);
        self.next_offset += dims.iter().product::<usize>();
        id
    }

    fn input(&mut self, dims: &[usize], quant: QuantSpec) -> u16 {
        let id = self.activation(dims, quant);
        self.inputs.push(id);
        id
    }

    fn op(&mut self, op: OpCode, inputs: &[u16], dims: &[usize], q: QuantSpec, p: &[i32]) -> u16 {
        let y = self.activation(dims, q);
        self.w.add_op(op, inputs, &[y], p);
        y
    }

    fn finish(mut self, output: u16) -> Writer {
        self.w.set_inputs(&self.inputs);
        self.w.set_outputs(&[output]);
        self.w.set_arena_len(self.next_offset);
        self.w
    }
}

fn q1() -> QuantSpec {
    pt(1.0, 0)
}

/// Identity Add/Sub words: no headroom shift, every multiplier 1.
const ADD_IDENTITY: [i32; 9] = [0, ONE.0, ONE.1, ONE.0, ONE.1, ONE.0, ONE.1, -128, 127];

#[test]
fn sub_broadcasts_a_constant_with_zero_points() {
    // (a − 2) − (b − (−1)) + 3, b a row constant [3].
    let mut m = Net::new();
    let a = m.input(&[2, 3], pt(1.0, 2));
    let b = m.w.add_constant_i8("b", &[3], pt(1.0, -1), &[0, 10, -20]);
    let y = m.op(OpCode::Sub, &[a, b], &[2, 3], pt(1.0, 3), &ADD_IDENTITY);
    // row 0: [5, 5, 5] − [1, 11, −19] → [4 − 1 + 0, ...]: (5−2) − 1 + 3 = 5, 3 − 11 + 3 = −5, 3 + 19 + 3 = 25
    // row 1: a = [−100, 0, 100]: −102 − 1 + 3 = −100, −2 − 11 + 3 = −10, 98 + 19 + 3 = 120
    assert_eq!(
        run(m.finish(y), &[&[5, 5, 5, -100, 0, 100]]),
        [5, -5, 25, -100, -10, 120]
    );
}

#[test]
fn div_by_a_tensor_and_by_zero() {
    // a / b with the Q16 quotient brought back by 2^-16 (m = 2^30, s = −15).
    let mut m = Net::new();
    let a = m.input(&[4], q1());
    let b = m.input(&[4], q1());
    let y = m.op(
        OpCode::Div,
        &[a, b],
        &[4],
        q1(),
        &[ONE.0, ONE.1 - 16, -128, 127],
    );
    // 7/2 = 3.5 → 4; −9/4 = −2.25 → −2; 5/0 → saturates; 100/−3 = −33.3 → −33.
    assert_eq!(
        run(m.finish(y), &[&[7, -9, 5, 100], &[2, 4, 0, -3]]),
        [4, -2, 127, -33]
    );
}

#[test]
fn min_and_max_rescale_each_operand() {
    // a at scale 1, b at scale 0.5 (multiplier 0.5 into the output scale 1).
    for (op, want) in [(OpCode::Min, [-3, 2, 5]), (OpCode::Max, [4, 2, 9])] {
        let mut m = Net::new();
        let a = m.input(&[3], q1());
        let b = m.input(&[3], pt(0.5, 0));
        let p = [ONE.0, ONE.1, HALF.0, HALF.1, -128, 127];
        let y = m.op(op, &[a, b], &[3], q1(), &p);
        // a = [−3, 2, 5] against b/2 = [4, 2, 9].
        assert_eq!(run(m.finish(y), &[&[-3, 2, 5], &[8, 4, 18]]), want);
    }
}

/// `mask ? x : fill` for a padding mask `[1, 4]` given as a model input
/// (scale 1/255, zero point −128: 0 and 1 exact), scores `x [2, 4]` and a
/// constant fill at the output's floor, into `dims`.
fn select_net(mask_dims: &[usize], dims: &[usize]) -> Writer {
    let mut m = Net::new();
    let mask = m.input(mask_dims, pt(1.0 / 255.0, -128));
    let x = m.input(&[2, 4], pt(0.5, 0));
    let fill = m.w.add_constant_i8("fill", &[1], q1(), &[-128]);
    let p = [HALF.0, HALF.1, ONE.0, ONE.1, -128, 127];
    let y = m.op(OpCode::Select, &[mask, x, fill], dims, q1(), &p);
    m.finish(y)
}

#[test]
fn select_takes_the_masked_scores_or_the_fill() {
    // Columns 0 and 2 kept (mask 1 → 127), 1 and 3 padding (0 → −128);
    // x at scale 0.5 halves into the output scale 1 (halves toward +∞).
    let y = run(
        select_net(&[1, 4], &[2, 4]),
        &[&[127, -128, 127, -128], &[10, 10, -7, 7, 100, 0, 3, 1]],
    );
    assert_eq!(y, [5, -128, -3, -128, 50, -128, 2, -128]);
}

#[test]
fn select_refuses_bad_records() {
    for (w, what) in [
        (
            select_net(&[1, 3], &[2, 4]),
            "a mask that does not broadcast",
        ),
        (
            select_net(&[1, 4], &[2, 2, 4]),
            "an output past the broadcast",
        ),
        (
            select_net(&[1, 4], &[4, 4]),
            "an output the operands do not fill",
        ),
    ] {
        assert!(
            matches!(bad_reason(w), Some(Error::BadOp { .. })),
            "{what} accepted"
        );
    }
}

/// `a [2, 2, 3] · b`, `b` a computed `[3, 2]` (broadcast over a's batch)
/// or `dims_b` given, into `y_dims`.
fn mat_mul_net(dims_b: &[usize], y_dims: &[usize], words: &[i32]) -> Writer {
    let mut m = Net::new();
    let a = m.input(&[2, 2, 3], pt(1.0, 1));
    let b = m.input(dims_b, pt(1.0, -2));
    let y = m.op(OpCode::MatMul, &[a, b], y_dims, pt(1.0, 5), words);
    m.finish(y)
}

#[test]
fn mat_mul_of_two_inputs_broadcasts_the_batch() {
    // a − 1 = [[1, 2, 3], [0, −1, 1]] and [[2, 2, 2], [1, 0, 0]];
    // b + 2 = [[1, 0], [0, 1], [1, 1]] for both batches; output + 5.
    let a = [2, 3, 4, 1, 0, 2, 3, 3, 3, 2, 1, 1];
    let b = [-1, -2, -2, -1, -1, -1];
    // batch 0: [[4, 5], [1, 0]], batch 1: [[4, 4], [1, 0]].
    assert_eq!(
        run(
            mat_mul_net(&[3, 2], &[2, 2, 2], &[ONE.0, ONE.1, -128, 127]),
            &[&a, &b]
        ),
        [9, 10, 6, 5, 9, 9, 6, 5]
    );
}

#[test]
fn top_k_writes_values_or_indices_along_its_axis() {
    // x [2, 4] over axis 1, the 2 largest: values keep x's quantization,
    // indices have scale 1 and zero point 0.
    let x_data = [4i8, 9, -2, 9, 7, 7, 1, 8];
    for (indices, q, want) in [(0, pt(0.5, 3), [9, 9, 8, 7]), (1, q1(), [1, 3, 3, 0])] {
        let mut m = Net::new();
        let x = m.input(&[2, 4], pt(0.5, 3));
        let y = m.op(OpCode::TopK, &[x], &[2, 2], q, &[1, 2, 1, indices]);
        assert_eq!(run(m.finish(y), &[&x_data]), want);
    }
    let refused = |out: &[usize], q: QuantSpec, words: &[i32]| {
        let mut m = Net::new();
        let x = m.input(&[2, 4], pt(0.5, 3));
        let y = m.op(OpCode::TopK, &[x], out, q, words);
        matches!(bad_reason(m.finish(y)), Some(Error::BadOp { .. }))
    };
    assert!(refused(&[2, 2], q1(), &[1, 2, 1, 0]), "values requantized");
    assert!(
        refused(&[2, 2], pt(0.5, 3), &[1, 2, 1, 1]),
        "indices not of scale 1"
    );
    assert!(
        refused(&[2, 5], pt(0.5, 3), &[1, 5, 1, 0]),
        "k past the axis"
    );
    assert!(refused(&[2, 2], pt(0.5, 3), &[1, 0, 1, 0]), "k = 0");
    assert!(
        refused(&[2, 3], pt(0.5, 3), &[1, 2, 1, 0]),
        "output not k long"
    );
    assert!(refused(&[2, 2], pt(0.5, 3), &[1, 2, 2, 0]), "largest 2");
}

#[test]
fn arg_max_writes_the_index_along_its_axis() {
    // x [2, 3] over axis 1, the output [2] and [2, 1]; scale 1, zero point 0.
    for out in [&[2][..], &[2, 1]] {
        let mut m = Net::new();
        let x = m.input(&[2, 3], pt(0.5, 3));
        let y = m.op(OpCode::ArgMax, &[x], out, q1(), &[1, 0]);
        assert_eq!(run(m.finish(y), &[&[4, 9, -2, 7, 7, 1]]), [1, 0]);
    }
    let refused = |out: &[usize], q: QuantSpec, words: &[i32]| {
        let mut m = Net::new();
        let x = m.input(&[2, 3], pt(0.5, 3));
        let y = m.op(OpCode::ArgMax, &[x], out, q, words);
        matches!(bad_reason(m.finish(y)), Some(Error::BadOp { .. }))
    };
    assert!(refused(&[2], pt(0.5, 0), &[1, 0]), "scale other than 1");
    assert!(
        refused(&[2], pt(1.0, 1), &[1, 0]),
        "zero point other than 0"
    );
    assert!(refused(&[3], q1(), &[1, 0]), "the axis kept");
    assert!(refused(&[2], q1(), &[2, 0]), "axis = rank");
    assert!(refused(&[2], q1(), &[1, 2]), "select_last_index 2");
}

#[test]
fn mat_mul_refuses_bad_records() {
    let one = [ONE.0, ONE.1, -128, 127];
    for (w, what) in [
        (mat_mul_net(&[4, 2], &[2, 2, 2], &one), "depths differ"),
        (mat_mul_net(&[3, 2], &[2, 2, 3], &one), "wrong output cols"),
        (mat_mul_net(&[3, 2], &[2, 2], &one), "batch dim dropped"),
        (mat_mul_net(&[3, 3, 2], &[3, 2, 2], &one), "batches 2 and 3"),
        (
            mat_mul_net(&[3, 2], &[2, 2, 2], &[ONE.0, ONE.1, 5, 4]),
            "empty act range",
        ),
        (
            mat_mul_net(&[3, 2], &[2, 2, 2], &[-1, ONE.1, -128, 127]),
            "negative multiplier",
        ),
        (mat_mul_net(&[3, 2], &[2, 2, 2], &one[..3]), "three words"),
    ] {
        assert!(
            matches!(bad_reason(w), Some(Error::BadOp { .. })),
            "{what} accepted"
        );
    }
}

/// LayerNorm over the last axis of `[2, 4]`, gamma 1, bias 0, output 32·z.
fn layer_norm_net(gamma: &[i8], epsilon: i64, axis: i32) -> Writer {
    let mut m = Net::new();
    let x = m.input(&[2, 4], pt(1.0, 1));
    let g = m.w.add_constant_i8("gamma", &[4], pt(1.0, 0), gamma);
    let bias = m.w.add_constant_i32("bias", &[4], &[0, 0, 0, 4096]);
    let mult = m.w.add_constant_i32("mult", &[4], &[1 << 30; 4]);
    let shift = add_shifts(&mut m.w, "shift", &[-6; 4]);
    let p = [axis, epsilon as i32, (epsilon >> 32) as i32, -128, 127];
    let y = m.op(
        OpCode::LayerNorm,
        &[x, g, bias, mult, shift],
        &[2, 4],
        q1(),
        &p,
    );
    m.finish(y)
}

#[test]
fn layer_norm_per_row() {
    // Row 0: x − 1 = [−3, −1, 1, 3]: 32·c/√5 = [−42.9, −14.3, 14.3, 42.9];
    // the last position adds the bias 4096·2^-7 = 32.
    // Row 1: constant → z = 0 → [0, 0, 0, 32].
    let w = layer_norm_net(&[1; 4], 0, 1);
    assert_eq!(
        run(w, &[&[-2, 0, 2, 4, 9, 9, 9, 9]]),
        [-43, -14, 14, 75, 0, 0, 0, 32]
    );
    // ε = 5 (real) in statistic units ε·N² = 80: 32·c/√10 = [−30.4, −10.1, 10.1, 30.4];
    // gamma −1 on position 0 flips it.
    let w = layer_norm_net(&[-1, 1, 1, 1], 80, 1);
    assert_eq!(
        run(w, &[&[-2, 0, 2, 4, 9, 9, 9, 9]])[..4],
        [30, -10, 10, 62]
    );
}

fn bad_reason(w: Writer) -> Option<Error> {
    let buf = AlignedBuf::from_slice(&w.finish_unvalidated().unwrap());
    Model::parse(buf.as_slice()).err()
}

#[test]
fn layer_norm_refuses_bad_records() {
    for (w, what) in [
        (layer_norm_net(&[1; 4], -1, 1), "negative epsilon"),
        (
            layer_norm_net(&[1; 4], (1 << 40) + 1, 1),
            "epsilon above 2^40",
        ),
        (layer_norm_net(&[1; 4], 0, 2), "axis = rank"),
        (layer_norm_net(&[1; 4], 0, -1), "negative axis"),
        (
            layer_norm_net(&[1; 4], 0, 0),
            "gamma shorter than the normalized length",
        ),
    ] {
        assert!(
            matches!(bad_reason(w), Some(Error::BadOp { .. })),
            "{what} accepted"
        );
    }
}

fn reduce_net(op: OpCode, axes: i32, out: &[usize], keep_m: (i32, i32)) -> Writer {
    let mut m = Net::new();
    let x = m.input(&[2, 3, 2], pt(1.0, -1));
    let y = m.op(
        op,
        &[x],
        out,
        pt(1.0, 2),
        &[axes, keep_m.0, keep_m.1, -128, 127],
    );
    m.finish(y)
}

#[test]
fn reductions_keep_or_drop_the_reduced_dims() {
    let x: Vec<i8> = (0..12).map(|v| v - 1).collect(); // x − zx = 0..12
                                                       // Sum over axis 1: [0+2+4, 1+3+5, 6+8+10, 7+9+11] + 2.
    for out in [&[2, 1, 2][..], &[2, 2]] {
        let w = reduce_net(OpCode::ReduceSum, 0b010, out, ONE);
        assert_eq!(run(w, &[&x]), [8, 11, 26, 29]);
    }
    // Mean over axes 0 and 2 (count 4, multiplier 1/4): y[j] = mean + 2.
    // j = 0: (0+1+6+7)/4 = 3.5 → 4; j = 1: 5.5 → 6; j = 2: 7.5 → 8.
    let w = reduce_net(OpCode::ReduceSum, 0b101, &[3], QUARTER);
    assert_eq!(run(w, &[&x]), [6, 8, 10]);
    // Max over everything.
    let w = reduce_net(OpCode::ReduceMax, 0b111, &[1, 1, 1], ONE);
    assert_eq!(run(w, &[&x]), [13]);
}

/// ReduceL2 over axis 2 of `x − zx = 0..12` as `[2, 3, 2]`, eps `eps`:
/// `y = round(⌊√(S·2^16 + eps)⌋ / 2^8) + 2` with the multiplier 2^-8.
fn reduce_l2_net(eps: i32) -> Writer {
    let mut m = Net::new();
    let x = m.input(&[2, 3, 2], pt(1.0, -1));
    let y = m.op(
        OpCode::ReduceL2,
        &[x],
        &[2, 3],
        pt(1.0, 2),
        &[0b100, 1 << 30, -7, -128, 127, eps],
    );
    m.finish(y)
}

#[test]
fn reduce_l2_is_the_rounded_norm() {
    let x: Vec<i8> = (0..12).map(|v| v - 1).collect();
    // Pairs (0,1), (2,3), …: norms 1, 3.61, 6.40, 9.22, 12.04, 14.87.
    assert_eq!(run(reduce_l2_net(0), &[&x]), [3, 6, 8, 11, 14, 17]);
    // eps = 2^16 · 35 adds 35 under the root of the first pair: √36 = 6.
    assert_eq!(run(reduce_l2_net(35 << 16), &[&x])[0], 8);
    assert!(
        matches!(bad_reason(reduce_l2_net(-1)), Some(Error::BadOp { .. })),
        "a negative eps accepted"
    );
}

#[test]
fn reductions_refuse_bad_records() {
    for (w, what) in [
        (
            reduce_net(OpCode::ReduceSum, 0, &[2, 3, 2], ONE),
            "empty mask",
        ),
        (
            reduce_net(OpCode::ReduceSum, 0b1000, &[2, 3, 2], ONE),
            "axis past the rank",
        ),
        (
            reduce_net(OpCode::ReduceSum, 0b010, &[2, 3], ONE),
            "wrong kept dims",
        ),
        (
            reduce_net(OpCode::ReduceMax, 0b010, &[1, 2, 2], ONE),
            "1 on a kept dim",
        ),
        (
            reduce_net(OpCode::ReduceMax, 0b010, &[2, 2], (-1, 0)),
            "negative multiplier",
        ),
    ] {
        assert!(
            matches!(bad_reason(w), Some(Error::BadOp { .. })),
            "{what} accepted"
        );
    }
}

/// x [2, 4] → Sub → Div → Min → Max → LayerNorm → ReduceMax → ReduceSum.
fn chain() -> Writer {
    let mut m = Net::new();
    let x = m.input(&[2, 4], pt(0.5, 3));
    let c = m.w.add_constant_i8("c", &[4], pt(0.25, 0), &[1, -2, 3, -4]);
    let s = m.op(OpCode::Sub, &[x, c], &[2, 4], q1(), &ADD_IDENTITY);
    let two = m.w.add_constant_i8("two", &[1], pt(1.0, 0), &[2]);
    let d = m.op(
        OpCode::Div,
        &[s, two],
        &[2, 4],
        q1(),
        &[ONE.0, -15, -128, 127],
    );
    let mn = m.op(
        OpCode::Min,
        &[d, x],
        &[2, 4],
        q1(),
        &[ONE.0, 1, HALF.0, 0, -128, 127],
    );
    let mx = m.op(
        OpCode::Max,
        &[mn, c],
        &[2, 4],
        q1(),
        &[ONE.0, 1, QUARTER.0, -1, -100, 100],
    );
    let g =
        m.w.add_constant_i8("g", &[4], pt(1.0, 0), &[127, -64, 1, 0]);
    let bias = m.w.add_constant_i32("b", &[4], &[0, 100, -100, 7]);
    let mult = m.w.add_constant_i32("m", &[4], &[1 << 30; 4]);
    let shift = add_shifts(&mut m.w, "s", &[-12, -10, -6, 0]);
    let ln = m.op(
        OpCode::LayerNorm,
        &[mx, g, bias, mult, shift],
        &[2, 4],
        pt(0.1, -5),
        &[1, 3, 0, -128, 127],
    );
    let rm = m.op(
        OpCode::ReduceMax,
        &[ln],
        &[4],
        q1(),
        &[0b01, ONE.0, 1, -128, 127],
    );
    let rs = m.op(
        OpCode::ReduceSum,
        &[rm],
        &[1],
        q1(),
        &[0b1, QUARTER.0, -1, -128, 127],
    );
    m.finish(rs)
}

/// Parses `bytes` and, if accepted, runs the model on arbitrary input.
fn parse_and_run(bytes: &[u8]) -> bool {
    let buf = AlignedBuf::from_slice(bytes);
    let Ok(model) = Model::parse(buf.as_slice()) else {
        return false;
    };
    if model.arena_len() > 1 << 20 {
        return true;
    }
    let mut arena = vec![0x33u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    for i in 0..interp.input_count() {
        for (j, v) in interp.input_mut(i).unwrap().iter_mut().enumerate() {
            *v = (j as i8).wrapping_mul(37);
        }
    }
    interp
        .invoke()
        .expect("a validated model cannot fail to run");
    true
}

#[test]
fn chain_runs_and_every_patched_byte_is_refused_or_runs() {
    let file = chain().finish().unwrap();
    assert!(parse_and_run(&file));
    let mut accepted = 0;
    for i in header::CRC32 + 4..file.len() {
        for v in [
            0x00u8,
            0x01,
            0x7F,
            0x80,
            0xFF,
            file[i] ^ 1,
            file[i].wrapping_add(16),
        ] {
            if v != file[i] && parse_and_run(patched_u8(&file, i, v).as_slice()) {
                accepted += 1;
            }
        }
    }
    assert!(
        accepted > 100,
        "only {accepted} patched files were accepted"
    );
}
