//! The interpreter's mapping from tensor shapes and parameter words to kernel
//! calls, op by op, on tiny models with outputs worked out by hand.

mod format_models;

use format_models::*;
use medq::{Interpreter, Model, OpCode, QuantSpec, Writer};

/// Runs a model whose graph inputs are filled from `inputs`; returns output 0.
fn run(w: Writer, inputs: &[&[i8]]) -> Vec<i8> {
    run_bytes(&aligned(w), inputs)
}

fn run_bytes(buf: &medq::AlignedBuf, inputs: &[&[i8]]) -> Vec<i8> {
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

/// A one-op model: activation inputs at consecutive offsets, then the output.
struct OneOp {
    w: Writer,
    next_offset: usize,
    inputs: Vec<u16>,
}

impl OneOp {
    fn new() -> OneOp {
        OneOp {
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

    fn finish(
        mut self,
        opcode: OpCode,
        inputs: &[u16],
        out_dims: &[usize],
        out_q: QuantSpec,
        params: &[i32],
    ) -> Writer {
        let y = self.activation(out_dims, out_q);
        self.w.add_op(opcode, inputs, &[y], params);
        self.w.set_inputs(&self.inputs);
        self.w.set_outputs(&[y]);
        self.w.set_arena_len(self.next_offset);
        self.w
    }
}

fn q1() -> QuantSpec {
    pt(1.0, 0)
}

/// The pipeline op by op, its Conv weights stored dense, sparse and as
/// powers of two: the same outputs every way.
#[test]
fn pipeline_through_every_op() {
    for storage in Storage::ALL {
        let buf = aligned(pipeline_1d_stored(storage));
        let model = Model::parse(buf.as_slice()).unwrap();
        let mut arena = vec![0u8; model.arena_len()];
        let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
        let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
        let kernel = interp.ops()[0].kernel();
        match storage.conv_kernels() {
            Some(packed) => assert!(packed.contains(&kernel), "{storage:?}: {kernel}"),
            None => assert!(Storage::ALL
                .iter()
                .all(|s| s.conv_kernels().is_none_or(|k| !k.contains(&kernel)))),
        }
        interp
            .input_mut(0)
            .unwrap()
            .copy_from_slice(&PIPELINE_INPUT);
        let mut seen = Vec::new();
        interp
            .invoke_observed(|k, _, y| seen.push((k, y.to_vec())))
            .unwrap();
        let want: Vec<_> = PIPELINE_OUTPUTS
            .iter()
            .enumerate()
            .map(|(k, y)| (k, y.to_vec()))
            .collect();
        assert_eq!(seen, want, "{storage:?}");
        assert_eq!(interp.output(0).unwrap(), PIPELINE_OUTPUTS[8]);
    }
}

/// An arena longer than the plan: the same outputs, and a packed conv run
/// in decoded blocks decodes its weights into the spare bytes once they
/// outnumber the stack buffer (16 KiB on hosts).
#[test]
fn a_spare_arena_holds_decoded_weights() {
    const WEIGHTS: [i8; 12] = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0];
    for storage in Storage::ALL {
        let buf = aligned(pipeline_1d_stored(storage));
        let model = Model::parse(buf.as_slice()).unwrap();
        let planned = model.arena_len();
        let mut arena = vec![0x5Au8; planned + 16384 + 64];
        let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
        let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
        let blocks = interp.ops()[0].kernel().ends_with("_blocks");
        interp
            .input_mut(0)
            .unwrap()
            .copy_from_slice(&PIPELINE_INPUT);
        interp.invoke().unwrap();
        assert_eq!(
            interp.output(0).unwrap(),
            PIPELINE_OUTPUTS[8],
            "{storage:?}"
        );
        // The interpreter's last use ends its borrow of the arena.
        let spare = &arena[planned..];
        if blocks {
            let decoded: Vec<i8> = spare[..12].iter().map(|&b| b as i8).collect();
            assert_eq!(decoded, WEIGHTS, "{storage:?}");
        } else {
            assert!(
                spare.iter().all(|&b| b == 0x5A),
                "{storage:?}: spare untouched"
            );
        }
    }
}

#[test]
fn conv_2d_depthwise_strided_with_end_pads() {
    // x: ch0 = [[1,2,3],[4,5,6],[7,8,9]], ch1 = [[1,0,0],[0,0,0],[0,0,2]].
    // Depthwise (groups 2) 2×2 kernels: ch0 picks the top-left tap, ch1 sums
    // the window. Stride 2, pads bottom/right 1: windows start at rows/cols
    // {0, 2}; out = (3 + 1 − 2)/2 + 1 = 2.
    // oc0 = x0 at (0,0), (0,2), (2,0), (2,2) = [1, 3, 7, 9];
    // oc1 = window sums of ch1 = [1, 0, 0, 2] (the last is 2 + padding).
    // The same with the weights stored sparse (the three zeros left out)
    // and as powers of two.
    for storage in Storage::ALL {
        let mut m = OneOp::new();
        let x = m.input(&[1, 2, 3, 3], q1());
        let (dims, weights) = (&[2, 1, 2, 2], &[1, 0, 0, 0, 1, 1, 1, 1]);
        let wt = add_weights(&mut m.w, storage, "w", dims, q1(), weights);
        let b = m.w.add_constant_i32("b", &[2], &[0, 0]);
        let mm = m.w.add_constant_i32("m", &[2], &[ONE.0; 2]);
        let s = add_shifts(&mut m.w, "s", &[ONE.1; 2]);
        let w = m.finish(
            OpCode::Conv,
            &[x, wt, b, mm, s],
            &[1, 2, 2, 2],
            q1(),
            &[2, 2, 1, 1, 0, 0, 1, 1, 2, -128, 127],
        );
        let input = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(run(w, &[&input]), [1, 3, 7, 9, 1, 0, 0, 2], "{storage:?}");
    }
}

/// The depthwise conv above on a batch of `n` samples of `[2, 3, 3]`.
fn depthwise_conv_of_batch(storage: Storage, n: usize) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(&[n, 2, 3, 3], q1());
    let (dims, weights) = (&[2, 1, 2, 2], &[1, 0, 0, 0, 1, 1, 1, 1]);
    let wt = add_weights(&mut m.w, storage, "w", dims, q1(), weights);
    let b = m.w.add_constant_i32("b", &[2], &[0, 0]);
    let mm = m.w.add_constant_i32("m", &[2], &[ONE.0; 2]);
    let s = add_shifts(&mut m.w, "s", &[ONE.1; 2]);
    m.finish(
        OpCode::Conv,
        &[x, wt, b, mm, s],
        &[n, 2, 2, 2],
        q1(),
        &[2, 2, 1, 1, 0, 0, 1, 1, 2, -128, 127],
    )
}

/// A batch of samples (a camera-PPG model's frames) runs sample by sample
/// on the same weights: each sample's output is the one it has alone.
#[test]
fn conv_runs_each_sample_of_a_batch() {
    let first = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0, 0, 0, 0, 0, 0, 0, 2];
    let second: Vec<i8> = first.iter().map(|v| 10 - v).collect();
    let third = [0i8; 18];
    for storage in Storage::ALL {
        let alone = |x: &[i8]| run(depthwise_conv_of_batch(storage, 1), &[x]);
        let batch: Vec<i8> = [&first[..], &second, &third].concat();
        let want: Vec<i8> = [alone(&first), alone(&second), alone(&third)].concat();
        assert_eq!(
            run(depthwise_conv_of_batch(storage, 3), &[&batch]),
            want,
            "{storage:?}"
        );
    }
    // The output's batch must be the input's.
    let mut m = OneOp::new();
    let x = m.input(&[2, 1, 3], q1());
    let wt = m.w.add_constant_i8("w", &[1, 1, 1], q1(), &[1]);
    let b = m.w.add_constant_i32("b", &[1], &[0]);
    let mm = m.w.add_constant_i32("m", &[1], &[ONE.0]);
    let s = add_shifts(&mut m.w, "s", &[ONE.1]);
    let w = m.finish(
        OpCode::Conv,
        &[x, wt, b, mm, s],
        &[1, 1, 3],
        q1(),
        &[1, 1, 1, 1, 0, 0, 0, 0, 1, -128, 127],
    );
    assert!(matches!(w.finish(), Err(medq::Error::BadOp { .. })));
}

#[test]
fn conv_zero_points_and_requantization() {
    // 1-D, one channel, kernel [1, 1], no pads: acc = (x0 − 3) + (x1 − 3) + bias.
    // x = [5, 7, 3] → window sums of (x − 3) = [2 + 4, 4 + 0] = [6, 4];
    // bias −1 → [5, 3]; multiplier 0.5 → [2.5, 1.5] → round half up [3, 2];
    // output zero point 10 → [13, 12]; act_max 12 clamps → [12, 12].
    let mut m = OneOp::new();
    let x = m.input(&[1, 1, 3], pt(1.0, 3));
    let wt = m.w.add_constant_i8("w", &[1, 1, 2], q1(), &[1, 1]);
    let b = m.w.add_constant_i32("b", &[1], &[-1]);
    let mm = m.w.add_constant_i32("m", &[1], &[HALF.0]);
    let s = add_shifts(&mut m.w, "s", &[HALF.1]);
    let w = m.finish(
        OpCode::Conv,
        &[x, wt, b, mm, s],
        &[1, 1, 2],
        pt(1.0, 10),
        &[1, 1, 1, 1, 0, 0, 0, 0, 1, -128, 12],
    );
    assert_eq!(run(w, &[&[5, 7, 3]]), [12, 12]);
}

#[test]
fn fully_connected_over_several_rows() {
    // x [2, 3] = [[1, 2, 3], [4, 5, 6]], W = [[1, 0, −1], [1, 1, 1]], bias [0, −6]:
    // row 0 = [1 − 3, 6 − 6] = [−2, 0], row 1 = [4 − 6, 15 − 6] = [−2, 9].
    for storage in Storage::ALL {
        let buf = aligned(fully_connected_2x3(storage));
        assert_eq!(run_bytes(&buf, &[&[1, 2, 3, 4, 5, 6]]), [-2, 0, -2, 9]);
    }
}

/// `fully_connected_over_several_rows`'s model, its weights stored as
/// `storage` says.
fn fully_connected_2x3(storage: Storage) -> Writer {
    fully_connected_2x3_of(|w| add_weights(w, storage, "w", &[2, 3], q1(), &[1, 0, -1, 1, 1, 1]))
}

/// [`fully_connected_2x3`] with the `[2, 3]` weights `add` writes.
fn fully_connected_2x3_of(add: impl FnOnce(&mut Writer) -> u16) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(&[2, 3], q1());
    let wt = add(&mut m.w);
    let b = m.w.add_constant_i32("b", &[2], &[0, -6]);
    let mm = m.w.add_constant_i32("m", &[2], &[ONE.0; 2]);
    let s = add_shifts(&mut m.w, "s", &[ONE.1; 2]);
    m.finish(
        OpCode::FullyConnected,
        &[x, wt, b, mm, s],
        &[2, 2],
        q1(),
        &[-128, 127],
    )
}

/// A sparse constant whose bitmap and values disagree is refused on load,
/// and so is one read by an op other than as Conv or FullyConnected weights.
#[test]
fn sparse_weights_are_validated_on_load() {
    let buf = aligned(fully_connected_2x3(Storage::Sparse));
    let bytes = buf.as_slice();
    let model = Model::parse(bytes).unwrap();
    let wt = model.tensor(1).unwrap();
    assert_eq!(wt.storage, medq::Storage::SparseConstant);
    assert_eq!(wt.len, 2 + 5);
    // Bitmap rows [0b101, 0b111], then the values [1, -1, 1, 1, 1].
    let at = |i| constant_byte(bytes, 1, i);
    assert_eq!(
        [bytes[at(0)], bytes[at(1)], bytes[at(3)]],
        [0b101, 0b111, 0xFF]
    );
    for (i, value) in [(0, 0b001), (1, 0b1111), (0, 0b1101), (2, 0)] {
        let e = Model::parse(patched_u8(bytes, at(i), value).as_slice()).unwrap_err();
        // Too few set bits, a padding bit set, too many, a stored zero.
        assert!(
            matches!(e, medq::Error::BadTensor { index: 1, .. })
                && e.to_string().contains("bitmap and values disagree"),
            "{e}"
        );
    }

    // A sparse constant as the input of an Add.
    let mut m = OneOp::new();
    let x = m.input(&[1, 3], q1());
    let c = m.w.add_sparse_constant_i8("c", &[1, 3], q1(), &[1, 0, 2]);
    let params = [0, ONE.0, ONE.1, ONE.0, ONE.1, ONE.0, ONE.1, -128, 127];
    let w = m.finish(OpCode::Add, &[x, c], &[1, 3], q1(), &params);
    // The writer runs the reader's validation on its own output.
    let e = w.finish().unwrap_err();
    assert!(
        e.to_string()
            .contains("only Conv and FullyConnected weights"),
        "{e}"
    );
}

/// Power-of-two codes are validated on load: a "negative zero" code or a
/// set padding nibble is refused, and so is such a constant read by an op
/// other than as Conv or FullyConnected weights.
#[test]
fn pow2_weights_are_validated_on_load() {
    let buf = aligned(fully_connected_2x3(Storage::Pow2));
    let bytes = buf.as_slice();
    let model = Model::parse(bytes).unwrap();
    let wt = model.tensor(1).unwrap();
    assert_eq!(wt.storage, medq::Storage::Pow2Constant);
    // Rows [1, 0, −1], [1, 1, 1] of 3 codes: 2 bytes each, low nibble first.
    assert_eq!(wt.len, 4);
    let at = |i| constant_byte(bytes, 1, i);
    assert_eq!(
        [bytes[at(0)], bytes[at(1)], bytes[at(2)], bytes[at(3)]],
        [0x01, 0x09, 0x11, 0x01]
    );
    for (i, value) in [(0, 0x08), (2, 0x81), (1, 0x19), (3, 0x71)] {
        let e = Model::parse(patched_u8(bytes, at(i), value).as_slice()).unwrap_err();
        assert!(
            matches!(e, medq::Error::BadTensor { index: 1, .. })
                && e.to_string().contains("power-of-two codes malformed"),
            "byte {i} = {value:#x}: {e}"
        );
    }
    // A well-formed change (−1 to −64) is a different model, not an error.
    let changed = patched_u8(bytes, at(1), 0x0f);
    assert!(Model::parse(changed.as_slice()).is_ok());

    let mut m = OneOp::new();
    let x = m.input(&[1, 3], q1());
    let c = m.w.add_pow2_constant_i8("c", &[1, 3], q1(), &[1, 0, 2]);
    let params = [0, ONE.0, ONE.1, ONE.0, ONE.1, ONE.0, ONE.1, -128, 127];
    let w = m.finish(OpCode::Add, &[x, c], &[1, 3], q1(), &params);
    let e = w.finish().unwrap_err();
    assert!(
        e.to_string()
            .contains("only Conv and FullyConnected weights"),
        "{e}"
    );

    // The writer refuses a weight that has no code.
    let mut m = OneOp::new();
    let x = m.input(&[1, 3], q1());
    let c = m.w.add_pow2_constant_i8("c", &[1, 3], q1(), &[1, 3, 2]);
    let e = m
        .finish(OpCode::Add, &[x, c], &[1, 3], q1(), &params)
        .finish()
        .unwrap_err();
    assert!(e.to_string().contains("0 or ±2^e"), "{e}");
}

/// Sparse power-of-two weights are validated on load: a zero code among
/// the non-zeros, a set padding nibble, or codes that do not number the set
/// bits are refused.
#[test]
fn sparse_pow2_weights_are_validated_on_load() {
    let buf = aligned(fully_connected_2x3(Storage::SparsePow2));
    let bytes = buf.as_slice();
    let model = Model::parse(bytes).unwrap();
    let wt = model.tensor(1).unwrap();
    assert_eq!(wt.storage, medq::Storage::SparsePow2Constant);
    // Bitmap rows [0b101, 0b111], then the codes of [1, −1, 1, 1, 1] low
    // nibble first: 0x91, 0x11, 0x01 (an odd count ends in a 0 nibble).
    assert_eq!(wt.len, 2 + 3);
    let at = |i| constant_byte(bytes, 1, i);
    assert_eq!(
        (2..5).map(|i| bytes[at(i)]).collect::<Vec<_>>(),
        [0x91, 0x11, 0x01]
    );
    // A zero code, a "negative zero", a set padding nibble, one set bit
    // too many (the codes then run short).
    for (i, value) in [(2, 0x90), (3, 0x18), (4, 0x71), (0, 0b111)] {
        let e = Model::parse(patched_u8(bytes, at(i), value).as_slice()).unwrap_err();
        assert!(
            matches!(e, medq::Error::BadTensor { index: 1, .. })
                && e.to_string()
                    .contains("bitmap and power-of-two codes disagree"),
            "byte {i} = {value:#x}: {e}"
        );
    }
    // A well-formed change (−1 to −64) is a different model, not an error.
    assert!(Model::parse(patched_u8(bytes, at(2), 0xf1).as_slice()).is_ok());
}

/// 3-bit codes run as the same weights stored densely, and a malformed code
/// string is refused on load.
#[test]
fn sparse_pow2x3_weights_run_as_dense_and_are_validated_on_load() {
    let buf = aligned(fully_connected_2x3(Storage::SparsePow2x3));
    let bytes = buf.as_slice();
    let model = Model::parse(bytes).unwrap();
    let wt = model.tensor(1).unwrap();
    assert_eq!(wt.storage, medq::Storage::SparsePow2x3Constant);
    // Bitmap rows [0b101, 0b111], then the codes of [8, −8, 8, 8, 8]
    // (0, 4, 0, 0, 0) three bits each from the least significant: 0x20,
    // 0x00 (15 bits: the top bit of the second byte is padding).
    assert_eq!(wt.len, 2 + 2);
    let at = |i| constant_byte(bytes, 1, i);
    assert_eq!([bytes[at(2)], bytes[at(3)]], [0x20, 0x00]);
    // The same weights stored a byte each give the same outputs.
    let outputs = |packed: bool| {
        let (dims, weights) = (&[2, 3], &[8, 0, -8, 8, 8, 8]);
        let w = fully_connected_2x3_of(|w| match packed {
            true => w.add_sparse_pow2x3_constant_i8("w", dims, q1(), weights),
            false => w.add_constant_i8("w", dims, q1(), weights),
        });
        run(w, &[&[1, 2, 3, -1, 0, 4]])
    };
    let want = outputs(false);
    // [1, 2, 3]·[8, 0, −8] = −16, ·[8, 8, 8] − 6 = 42; [−1, 0, 4]: −40, 18.
    assert_eq!(want, [-16, 42, -40, 18]);
    assert_eq!(outputs(true), want);
    // A set padding bit; one set bit too many (the codes then run short).
    for (i, value) in [(3, 0x80), (0, 0b111)] {
        let e = Model::parse(patched_u8(bytes, at(i), value).as_slice()).unwrap_err();
        assert!(
            matches!(e, medq::Error::BadTensor { index: 1, .. })
                && e.to_string()
                    .contains("bitmap and power-of-two codes disagree"),
            "byte {i} = {value:#x}: {e}"
        );
    }
    // A well-formed change (the first 8 to −64) is a different model.
    assert!(Model::parse(patched_u8(bytes, at(2), 0x27).as_slice()).is_ok());
}

#[test]
fn add_broadcasts_two_graph_inputs() {
    // a [2, 3] + b [2, 1]: b's column stretches across each row.
    let mut m = OneOp::new();
    let a = m.input(&[2, 3], q1());
    let b = m.input(&[2, 1], q1());
    let params = [0, ONE.0, ONE.1, ONE.0, ONE.1, ONE.0, ONE.1, -128, 127];
    let w = m.finish(OpCode::Add, &[a, b], &[2, 3], q1(), &params);
    assert_eq!(
        run(w, &[&[1, 2, 3, 4, 5, 6], &[10, 20]]),
        [11, 12, 13, 24, 25, 26]
    );
}

#[test]
fn add_broadcasts_rank_5_with_leading_ones() {
    // a [1, 1, 1, 2, 3] + constant b [3]: the leading 1s are dropped.
    let mut m = OneOp::new();
    let a = m.input(&[1, 1, 1, 2, 3], q1());
    let b = m.w.add_constant_i8("b", &[3], q1(), &[100, 0, -100]);
    let params = [0, ONE.0, ONE.1, ONE.0, ONE.1, ONE.0, ONE.1, -128, 127];
    let w = m.finish(OpCode::Add, &[a, b], &[1, 1, 1, 2, 3], q1(), &params);
    assert_eq!(run(w, &[&[1, 2, 3, 4, 5, 6]]), [101, 2, -97, 104, 5, -94]);
}

#[test]
fn mul_with_zero_points() {
    // (a − 1)·(b + 1) with a = [3, 0], b = [1, −3] → [2·2, −1·−2] = [4, 2];
    // multiplier 0.5 → [2, 1]; output zero point −1 → [1, 0].
    let mut m = OneOp::new();
    let a = m.input(&[2], pt(1.0, 1));
    let b = m.input(&[2], pt(1.0, -1));
    let w = m.finish(
        OpCode::Mul,
        &[a, b],
        &[2],
        pt(1.0, -1),
        &[HALF.0, HALF.1, -128, 127],
    );
    assert_eq!(run(w, &[&[3, 0], &[1, -3]]), [1, 0]);
}

#[test]
fn softmax_on_a_middle_axis() {
    // x [1, 2, 2] = [[0, 0], [1, −24]], softmax over axis 1 (columns), halving table:
    // col 0: x = (0, 1): e = [2^23, 2^24], sum = 3·2^23 → y + 128 = floor(256·[1/3, 2/3] + 1/2)
    //        = [85, 171] → [−43, 43].
    // col 1: x = (0, −24): e = [2^24, 1] → y + 128 = [256 → 255 after the clamp to 127, 0].
    let mut m = OneOp::new();
    let x = m.input(&[1, 2, 2], pt(std::f32::consts::LN_2, 0));
    let exp = m.w.add_constant_i32("exp", &[256], &halving_exp_table());
    let w = m.finish(
        OpCode::Softmax,
        &[x, exp],
        &[1, 2, 2],
        pt(1.0 / 256.0, -128),
        &[1],
    );
    assert_eq!(run(w, &[&[0, 0, 1, -24]]), [-43, 127, 43, -128]);
}

#[test]
fn concat_on_the_last_axis_requantizes_each_input() {
    // a [1, 2, 1] = [−5, 7] (identity); b [1, 2, 2] = [4, 6, 8, 10] with zero
    // point 2 and multiplier 0.5 → [1, 2, 3, 4]. Rows: [−5, 1, 2], [7, 3, 4].
    let mut m = OneOp::new();
    let a = m.input(&[1, 2, 1], q1());
    let b = m.input(&[1, 2, 2], pt(2.0, 2));
    let w = m.finish(
        OpCode::Concat,
        &[a, b],
        &[1, 2, 3],
        q1(),
        &[2, ONE.0, ONE.1, HALF.0, HALF.1],
    );
    assert_eq!(run(w, &[&[-5, 7], &[4, 6, 8, 10]]), [-5, 1, 2, 7, 3, 4]);
}

#[test]
fn pad_in_two_dims() {
    // [1, 1, 2, 2] = [[1, 2], [3, 4]], one row on top and one column on the right, value 9.
    let mut m = OneOp::new();
    let x = m.input(&[1, 1, 2, 2], q1());
    let w = m.finish(
        OpCode::Pad,
        &[x],
        &[1, 1, 3, 3],
        q1(),
        &[9, 0, 0, 1, 0, 0, 0, 0, 1],
    );
    assert_eq!(run(w, &[&[1, 2, 3, 4]]), [9, 9, 9, 1, 2, 9, 3, 4, 9]);
}

/// x = −[[1, 2, 3], [4, 5, 6], [7, 8, 9]], 2×2 windows, stride 2, pads top/left 1:
/// windows {−1}, {−2, −3}, {−4, −7}, {−5, −6, −8, −9}.
fn pool_2d(opcode: OpCode, count_include_pad: i32) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(&[1, 1, 3, 3], q1());
    let params = [2, 2, 2, 2, 1, 1, 1, 1, 0, 0, count_include_pad];
    m.finish(opcode, &[x], &[1, 1, 2, 2], q1(), &params)
}

const POOL_INPUT: [i8; 9] = [-1, -2, -3, -4, -5, -6, -7, -8, -9];

#[test]
fn max_pool_ignores_padding() {
    assert_eq!(
        run(pool_2d(OpCode::MaxPool, 0), &[&POOL_INPUT]),
        [-1, -2, -4, -5]
    );
}

#[test]
fn avg_pool_divisors() {
    // Valid elements only: −1/1, −5/2, −11/2, −28/4 → [−1, −3, −6, −7] (halves away from zero).
    assert_eq!(
        run(pool_2d(OpCode::AvgPool, 0), &[&POOL_INPUT]),
        [-1, -3, -6, -7]
    );
    // Whole window: −1/4, −5/4, −11/4, −28/4 → [0, −1, −3, −7].
    assert_eq!(
        run(pool_2d(OpCode::AvgPool, 1), &[&POOL_INPUT]),
        [0, -1, -3, -7]
    );
}

/// Pooling is per channel: two samples pool as four channels would.
#[test]
fn pools_run_each_sample_of_a_batch() {
    for opcode in [OpCode::MaxPool, OpCode::AvgPool] {
        let mut m = OneOp::new();
        let x = m.input(&[2, 1, 3, 3], q1());
        let params = [2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0];
        let w = m.finish(opcode, &[x], &[2, 1, 2, 2], q1(), &params);
        let doubled: Vec<i8> = POOL_INPUT.iter().map(|v| 2 * v).collect();
        let alone = |x: &[i8]| run(pool_2d(opcode, 0), &[x]);
        let want = [alone(&POOL_INPUT), alone(&doubled)].concat();
        assert_eq!(run(w, &[&[&POOL_INPUT[..], &doubled].concat()]), want);
    }
}

#[test]
fn lut_applies_the_table() {
    let mut m = OneOp::new();
    let x = m.input(&[3], q1());
    let table: Vec<i8> = (0..256).map(|i| (255 - i) as u8 as i8).collect();
    let t = m.w.add_constant_i8("t", &[256], QuantSpec::None, &table);
    let w = m.finish(OpCode::Lut, &[x, t], &[3], q1(), &[]);
    // table[i] = (255 − i) as a byte, i = x + 128: x = −128 → 255 → −1; 0 → 127; 127 → 0.
    assert_eq!(run(w, &[&[-128, 0, 127]]), [-1, 127, 0]);
}
