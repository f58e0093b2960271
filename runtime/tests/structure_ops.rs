//! The structure ops (ConvTranspose, Transpose, Gather, Resize) through
//! `Model::parse` and the interpreter: one-op models with outputs worked out
//! by hand, refusals of bad records, and no panic on arbitrary parameter
//! words.

mod format_models;

use format_models::*;
use medq::{AlignedBuf, Error, Interpreter, Model, OpCode, QuantSpec, Writer};
use proptest::prelude::*;

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

    fn input(&mut self, dims: &[usize], quant: QuantSpec) -> u16 {
        let id = self.w.add_activation("x", dims, quant, self.next_offset);
        self.next_offset += dims.iter().product::<usize>();
        self.inputs.push(id);
        id
    }

    fn finish(self, op: OpCode, inputs: &[u16], out_dims: &[usize], params: &[i32]) -> Writer {
        self.finish_q(op, inputs, out_dims, q1(), params)
    }

    fn finish_q(
        mut self,
        op: OpCode,
        inputs: &[u16],
        out_dims: &[usize],
        out_q: QuantSpec,
        params: &[i32],
    ) -> Writer {
        let y = self
            .w
            .add_activation("y", out_dims, out_q, self.next_offset);
        self.next_offset += out_dims.iter().product::<usize>();
        self.w.add_op(op, inputs, &[y], params);
        self.w.set_inputs(&self.inputs);
        self.w.set_outputs(&[y]);
        self.w.set_arena_len(self.next_offset);
        self.w
    }
}

fn q1() -> QuantSpec {
    pt(1.0, 0)
}

/// Parses and runs a one-input model; returns output 0.
fn run(w: Writer, input: &[i8]) -> Vec<i8> {
    try_run(w, input).unwrap()
}

/// The file's bytes without the writer's own validation, so that
/// `Model::parse` is the one judging the record.
fn unvalidated(w: Writer) -> AlignedBuf {
    AlignedBuf::from_slice(&w.finish_unvalidated().expect("writes"))
}

fn try_run(w: Writer, input: &[i8]) -> Result<Vec<i8>, Error> {
    let buf = unvalidated(w);
    let model = Model::parse(buf.as_slice())?;
    let mut arena = vec![0x5Au8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan)?;
    interp.input_mut(0)?.copy_from_slice(input);
    interp.invoke()?;
    Ok(interp.output(0)?.to_vec())
}

fn refusal(w: Writer) -> &'static str {
    let buf = unvalidated(w);
    match Model::parse(buf.as_slice()) {
        Err(Error::BadOp { reason, .. }) => reason,
        other => panic!("expected BadOp, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// ConvTranspose

/// x `[1, 1, 3]` → ConvTranspose with kernel `[1, 10]`, the given words.
fn conv_transpose_1d(out_w: usize, params: &[i32]) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(&[1, 1, 3], q1());
    let wt = m.w.add_constant_i8("w", &[1, 1, 2], q1(), &[1, 10]);
    let b = m.w.add_constant_i32("b", &[1], &[0]);
    let mm = m.w.add_constant_i32("m", &[1], &[ONE.0]);
    let s = add_shifts(&mut m.w, "s", &[ONE.1]);
    m.finish(
        OpCode::ConvTranspose,
        &[x, wt, b, mm, s],
        &[1, 1, out_w],
        params,
    )
}

#[test]
fn conv_transpose_1d_stride_two_with_output_padding() {
    // Stride 2, output_padding 1: out = (3−1)·2 + 1·(2−1) + 1 + 1 = 7.
    // x[i] lands at 2i (·1) and 2i+1 (·10); position 6 only gets the bias.
    let params = [1, 2, 1, 1, 0, 0, 0, 0, 0, 1, 1, -128, 127];
    let y = run(conv_transpose_1d(7, &params), &[1, 2, 3]);
    assert_eq!(y, [1, 10, 2, 20, 3, 30, 0]);
}

#[test]
fn conv_transpose_2d_pads_crop_the_full_output() {
    // x [1, 1, 2, 2] = [[1, 2], [3, 4]], 2×2 kernel of ones, stride 1:
    // the full output is 3×3 [[1, 3, 2], [4, 10, 6], [3, 7, 4]]; pads
    // (top 1, left 1, bottom 0, right 0) drop the first row and column.
    let mut m = OneOp::new();
    let x = m.input(&[1, 1, 2, 2], q1());
    let wt = m.w.add_constant_i8("w", &[1, 1, 2, 2], q1(), &[1; 4]);
    let b = m.w.add_constant_i32("b", &[1], &[0]);
    let mm = m.w.add_constant_i32("m", &[1], &[ONE.0]);
    let s = add_shifts(&mut m.w, "s", &[ONE.1]);
    let params = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, -128, 127];
    let w = m.finish(
        OpCode::ConvTranspose,
        &[x, wt, b, mm, s],
        &[1, 1, 2, 2],
        &params,
    );
    assert_eq!(run(w, &[1, 2, 3, 4]), [10, 6, 7, 4]);
}

#[test]
fn conv_transpose_refuses_a_wrong_output_size() {
    // Stride 2 without output padding gives 6, not 7.
    let params = [1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, -128, 127];
    let reason = refusal(conv_transpose_1d(7, &params));
    assert!(reason.contains("output shape"), "{reason}");
    // Pads that eat the whole output.
    let params = [1, 1, 1, 1, 0, 2, 0, 2, 0, 0, 1, -128, 127];
    let reason = refusal(conv_transpose_1d(1, &params));
    assert!(reason.contains("no output"), "{reason}");
    // A stride along H in 1-D.
    let params = [2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, -128, 127];
    let reason = refusal(conv_transpose_1d(4, &params));
    assert!(reason.contains("1-D"), "{reason}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any parameter words: the model is refused or runs, never panics.
    #[test]
    fn conv_transpose_any_words_never_panic(
        params in proptest::collection::vec(prop_oneof![-3i32..=8, any::<i32>()], 11..=14),
        out_w in 1usize..=9,
    ) {
        let _ = try_run(conv_transpose_1d(out_w, &params), &[1, 2, 3]);
    }
}

// ---------------------------------------------------------------------------
// Transpose

fn transpose(in_dims: &[usize], out_dims: &[usize], perm: &[i32]) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(in_dims, pt(0.5, 3));
    m.finish_q(OpCode::Transpose, &[x], out_dims, pt(0.5, 3), perm)
}

#[test]
fn transpose_nhwc_input_to_nchw() {
    // x [1, 2, 2, 3] (N, H, W, C): pixel k holds channels (k, 10 + k, 20 + k).
    let x: Vec<i8> = (0..4).flat_map(|k| [k, 10 + k, 20 + k]).collect();
    let y = run(transpose(&[1, 2, 2, 3], &[1, 3, 2, 2], &[0, 3, 1, 2]), &x);
    assert_eq!(y, [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);
}

#[test]
fn transpose_rank_3_sequence_to_channels() {
    // [1, L=3, C=2] → [1, C, L]: the rows become columns.
    let y = run(
        transpose(&[1, 3, 2], &[1, 2, 3], &[0, 2, 1]),
        &[1, 2, 3, 4, 5, 6],
    );
    assert_eq!(y, [1, 3, 5, 2, 4, 6]);
}

#[test]
fn transpose_refusals() {
    let reason = refusal(transpose(&[1, 3, 2], &[1, 2, 3], &[0, 2, 2]));
    assert!(reason.contains("permutation"), "{reason}");
    let reason = refusal(transpose(&[1, 3, 2], &[1, 3, 2], &[0, 2, 1]));
    assert!(reason.contains("permuted input shape"), "{reason}");
    let reason = refusal(transpose(&[1, 3, 2], &[1, 2, 3], &[0, 2]));
    assert!(reason.contains("number of parameters"), "{reason}");
    // A requantizing transpose is not this op.
    let mut m = OneOp::new();
    let x = m.input(&[2, 3], pt(0.5, 3));
    let w = m.finish_q(OpCode::Transpose, &[x], &[3, 2], pt(0.25, 3), &[1, 0]);
    assert!(refusal(w).contains("quantization"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn transpose_any_words_never_panic(
        perm in proptest::collection::vec(prop_oneof![-2i32..=5, any::<i32>()], 0..=5),
        out in proptest::collection::vec(1usize..=3, 1..=4),
    ) {
        let n: usize = out.iter().product();
        let _ = try_run(transpose(&[n], &out, &perm), &vec![0; n]);
        let _ = try_run(transpose(&[1, 2, 3], &out, &perm), &[0; 6]);
    }
}

// ---------------------------------------------------------------------------
// Gather

fn slice(in_dims: &[usize], out_dims: &[usize], params: &[i32]) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(in_dims, pt(0.5, -2));
    m.finish_q(OpCode::Gather, &[x], out_dims, pt(0.5, -2), params)
}

fn gather(in_dims: &[usize], out_dims: &[usize], axis: i32, indices: &[i32]) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(in_dims, pt(0.5, -2));
    let idx = m.w.add_constant_i32("idx", &[indices.len()], indices);
    m.finish_q(
        OpCode::Gather,
        &[x, idx],
        out_dims,
        pt(0.5, -2),
        &[axis, 0, 0],
    )
}

#[test]
fn slice_every_other_sample_of_a_1d_signal() {
    // x [1, 2, 5]; axis 2, start 1, step 2 → samples 1 and 3 of each channel.
    let x = [0, 1, 2, 3, 4, 10, 11, 12, 13, 14];
    let y = run(slice(&[1, 2, 5], &[1, 2, 2], &[2, 1, 2]), &x);
    assert_eq!(y, [1, 3, 11, 13]);
}

#[test]
fn slice_backwards_over_channels() {
    // x [1, 3, 2]; axis 1, start 2, step −1, count 3 → channels reversed.
    let y = run(
        slice(&[1, 3, 2], &[1, 3, 2], &[1, 2, -1]),
        &[1, 2, 3, 4, 5, 6],
    );
    assert_eq!(y, [5, 6, 3, 4, 1, 2]);
}

#[test]
fn gather_constant_indices() {
    // x [2, 3]; axis 1, indices [2, 2, 0].
    let y = run(gather(&[2, 3], &[2, 3], 1, &[2, 2, 0]), &[1, 2, 3, 4, 5, 6]);
    assert_eq!(y, [3, 3, 1, 6, 6, 4]);
}

#[test]
fn gather_scalar_index_drops_the_axis() {
    // x [2, 3]; axis 1, the single index 1, output [2]: the middle column.
    let y = run(gather(&[2, 3], &[2], 1, &[1]), &[1, 2, 3, 4, 5, 6]);
    assert_eq!(y, [2, 5]);
    // Dropping the axis needs exactly one index.
    let reason = refusal(gather(&[2, 3], &[2], 1, &[1, 2]));
    assert!(reason.contains("wrong shape"), "{reason}");
    let reason = refusal(gather(&[2, 3], &[3], 1, &[1]));
    assert!(reason.contains("off the axis"), "{reason}");
}

#[test]
fn gather_refusals() {
    let reason = refusal(slice(&[1, 2, 5], &[1, 2, 3], &[2, 1, 2]));
    assert!(reason.contains("outside the axis"), "{reason}");
    let reason = refusal(slice(&[1, 2, 5], &[1, 2, 2], &[2, 1, 0]));
    assert!(reason.contains("step is 0"), "{reason}");
    let reason = refusal(slice(&[1, 2, 5], &[1, 1, 2], &[2, 1, 2]));
    assert!(reason.contains("off the axis"), "{reason}");
    let reason = refusal(slice(&[1, 2, 5], &[1, 2, 2], &[3, 1, 2]));
    assert!(reason.contains("axis out of range"), "{reason}");
    let reason = refusal(gather(&[2, 3], &[2, 2], 1, &[0, 3]));
    assert!(reason.contains("index out of range"), "{reason}");
    let reason = refusal(gather(&[2, 3], &[2, 2], 1, &[0, -1]));
    assert!(reason.contains("index out of range"), "{reason}");
    let reason = refusal(gather(&[2, 3], &[2, 3], 1, &[0, 1]));
    assert!(reason.contains("wrong shape"), "{reason}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gather_any_words_never_panic(
        params in proptest::collection::vec(prop_oneof![-3i32..=6, any::<i32>()], 2..=4),
        out in proptest::collection::vec(1usize..=5, 3),
        indices in proptest::collection::vec(prop_oneof![-2i32..=6, any::<i32>()], 1..=5),
    ) {
        let _ = try_run(slice(&[1, 3, 5], &out, &params), &[0; 15]);
        let axis = params[0];
        let _ = try_run(gather(&[1, 3, 5], &out, axis, &indices), &[0; 15]);
    }
}

// ---------------------------------------------------------------------------
// Resize

fn resize(in_dims: &[usize], out_dims: &[usize], params: &[i32]) -> Writer {
    let mut m = OneOp::new();
    let x = m.input(in_dims, pt(0.1, 5));
    m.finish_q(OpCode::Resize, &[x], out_dims, pt(0.1, 5), params)
}

#[test]
fn resize_2d_nearest_asymmetric_floor_doubles_pixels() {
    // Upsample ×2 (ONNX Upsample's nearest): each pixel becomes a 2×2 block.
    let params = [0, 1, 2, 2, 1, 2, 1];
    let y = run(resize(&[1, 1, 2, 2], &[1, 1, 4, 4], &params), &[1, 2, 3, 4]);
    assert_eq!(y, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
}

#[test]
fn resize_1d_linear_half_pixel() {
    // [0, 40] × 2 along L, two channels: coordinates −¼, ¼, ¾, 5/4.
    let params = [1, 0, 0, 1, 1, 2, 1];
    let y = run(resize(&[1, 2, 2], &[1, 2, 4], &params), &[0, 40, 8, -8]);
    assert_eq!(y, [0, 10, 30, 40, 8, 4, -4, -8]);
}

#[test]
fn resize_2d_linear_align_corners() {
    // 2×2 → 3×3 align corners: the centre is the mean of the four corners,
    // edges the mean of their two: [[0, 10], [20, 31]] → centre 61/4 → 15.
    let params = [1, 2, 0, 3, 2, 3, 2];
    let y = run(
        resize(&[1, 1, 2, 2], &[1, 1, 3, 3], &params),
        &[0, 10, 20, 31],
    );
    assert_eq!(y, [0, 5, 10, 10, 15, 21, 20, 26, 31]);
}

#[test]
fn resize_refusals() {
    let bad = |params: &[i32], out: &[usize]| refusal(resize(&[1, 1, 2, 2], out, params));
    assert!(bad(&[2, 0, 0, 2, 1, 2, 1], &[1, 1, 4, 4]).contains("mode"));
    assert!(bad(&[1, 0, 2, 2, 1, 2, 1], &[1, 1, 4, 4]).contains("mode"));
    assert!(bad(&[0, 4, 0, 2, 1, 2, 1], &[1, 1, 4, 4]).contains("coordinate"));
    assert!(bad(&[0, 0, 0, 0, 1, 2, 1], &[1, 1, 4, 4]).contains("scale term"));
    assert!(bad(&[0, 0, 0, 2, (1 << 20) + 1, 2, 1], &[1, 1, 4, 4]).contains("scale term"));
    assert!(bad(&[0, 0, 0, 2, 1, 2, 1], &[1, 2, 4, 4]).contains("same C"));
    let one_d = refusal(resize(&[1, 1, 2], &[1, 1, 4], &[0, 0, 0, 2, 1, 2, 1]));
    assert!(one_d.contains("1-D"), "{one_d}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resize_any_words_never_panic(
        params in proptest::collection::vec(prop_oneof![-1i32..=4, any::<i32>()], 6..=8),
        out in proptest::collection::vec(1usize..=5, 2),
    ) {
        let _ = try_run(resize(&[1, 2, 2, 3], &[1, 2, out[0], out[1]], &params), &[0; 12]);
    }
}
