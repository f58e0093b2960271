//! Int16 activations through the interpreter and the loader: models written
//! with the `Writer`, run op by op against the reference kernels, and every
//! rule of the int16 contract broken once.
#![cfg(feature = "int16-activations")]

mod format_models;

use format_models::*;
use medq::kernels::*;
use medq::{Error, Interpreter, Model, OpCode, QuantSpec, Writer};

fn i16s(bytes: &[i8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0] as u8, b[1] as u8]))
        .collect()
}

/// The fixtures' int8 → int16 Requantize ([`I16_UP`]) from an input at
/// `input_zero_point`.
fn up(input_zero_point: i32) -> RequantizeParams {
    RequantizeParams {
        input_zero_point,
        output_zero_point: 0,
        multiplier: I16_UP.0,
        shift: I16_UP.1,
    }
}

/// Runs `w` on `input`: every op's kernel name and output bytes.
fn run_observed(w: Writer, input: &[i8]) -> (Vec<&'static str>, Vec<Vec<i8>>) {
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0x5Au8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    let kernels = interp.ops().iter().map(|op| op.kernel()).collect();
    interp.input_mut(0).unwrap().copy_from_slice(input);
    let mut outputs = Vec::new();
    interp
        .invoke_observed(|_, _, y| outputs.push(y.to_vec()))
        .unwrap();
    (kernels, outputs)
}

#[test]
fn int16_pipeline_runs_the_int16_kernels_op_by_op() {
    let (kernels, got) = run_observed(int16_pipeline(), &I16_PIPELINE_INPUT);
    // FullyConnected has an AVX2 kernel on x86-64 and a NEON one on
    // aarch64; elsewhere (and without AVX2) the reference runs it. The
    // conv's 3 output channels are too few for the optimized int16 convs
    // (4 per group), so the reference runs it everywhere.
    #[cfg(target_arch = "x86_64")]
    let fc = match medq::kernels::x86_64::avx2_available() {
        true => "fully_connected_s16_avx2",
        false => "fully_connected_s16",
    };
    #[cfg(target_arch = "aarch64")]
    let fc = "fully_connected_s16_neon";
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let fc = "fully_connected_s16";
    let conv = "conv_s16";
    assert_eq!(
        kernels,
        [
            "requantize_s8_s16",
            conv,
            "max_pool_s16",
            "copy",
            fc,
            "requantize_s16_s8"
        ]
    );

    // The same chain, kernel by kernel.
    let mut a = [0i16; 12];
    requantize_s8_s16(&up(3), &I16_PIPELINE_INPUT, &mut a);
    // (−128 − 3) · 256 saturates; (127 − 3) · 256 does not.
    assert_eq!(a[..2], [31744, -32768]);
    let conv = ConvParams {
        in_channels: 2,
        in_h: 1,
        in_w: 6,
        out_channels: 3,
        out_h: 1,
        out_w: 6,
        kernel_h: 1,
        kernel_w: 3,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 2,
        pad_top: 0,
        pad_left: 2,
        groups: 1,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -12_000,
        act_max: 32_767,
    };
    let shifts = |s: &[i32]| s.iter().map(|&v| v as i8).collect::<Vec<_>>();
    let mut b = [0i16; 18];
    conv_s16(
        &conv,
        &a,
        &I16_CONV_W,
        &I16_CONV_BIAS,
        &I16_CONV_MULT,
        &shifts(&I16_CONV_SHIFT),
        &mut b,
    );
    let pool = PoolParams {
        channels: 3,
        in_h: 1,
        in_w: 6,
        out_h: 1,
        out_w: 3,
        kernel_h: 1,
        kernel_w: 2,
        stride_h: 1,
        stride_w: 2,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
        count_include_pad: false,
        zero_point: 0,
    };
    let mut c = [0i16; 9];
    max_pool_s16(&pool, &b, &mut c);
    let fc = FullyConnectedParams {
        rows: 1,
        in_features: 9,
        out_features: 4,
        input_zero_point: 0,
        output_zero_point: 0,
        act_min: -32768,
        act_max: 32767,
    };
    let mut e = [0i16; 4];
    fully_connected_s16(
        &fc,
        &c,
        &I16_FC_W,
        &I16_FC_BIAS,
        &I16_FC_MULT,
        &shifts(&I16_FC_SHIFT),
        &mut e,
    );
    let down = RequantizeParams {
        input_zero_point: 0,
        output_zero_point: -5,
        multiplier: I16_DOWN.0,
        shift: I16_DOWN.1,
    };
    let mut y = [0i8; 4];
    requantize_s16_s8(&down, &e, &mut y);

    assert_eq!(i16s(&got[0]), a);
    assert_eq!(i16s(&got[1]), b);
    assert_eq!(i16s(&got[2]), c);
    assert_eq!(i16s(&got[3]), c, "reshape in place keeps the bytes");
    assert_eq!(i16s(&got[4]), e);
    assert_eq!(got[5], y);
    // The data reaches beyond int8 inside: not a model that int8 could hold.
    assert!(b.iter().any(|&v| !(-128..=127).contains(&v)), "{b:?}");
    assert!(b.contains(&-12_000), "the activation floor clamps: {b:?}");
    assert!(y.iter().any(|&v| v != y[0]), "{y:?}");
}

#[test]
fn int16_pipeline_by_the_formulas() {
    // Output channel 1 at position 0 worked out without the kernels: taps
    // at −2, 0, 2 (dilation 2, pad 2) read a[ic][0] and a[ic][2].
    let (_, got) = run_observed(int16_pipeline(), &I16_PIPELINE_INPUT);
    let a: Vec<i64> = I16_PIPELINE_INPUT
        .iter()
        .map(|&x| ((x as i64 - 3) * 256).clamp(-32768, 32767))
        .collect();
    let w = |ic: usize, k: usize| I16_CONV_W[(2 + ic) * 3 + k] as i64;
    let acc = -50_000 + a[0] * w(0, 1) + a[2] * w(0, 2) + a[6] * w(1, 1) + a[8] * w(1, 2);
    // m = 1518500250, s = −9: (acc·m + 2^39) >> 40.
    let want = (acc as i128 * 1_518_500_250 + (1 << 39)) >> 40;
    assert_eq!(i16s(&got[1])[6] as i128, want);
    assert_eq!(want, -5726, "inside the activation range");
}

#[test]
fn int16_softmax_matches_the_two_table_formula() {
    let (kernels, got) = run_observed(int16_softmax(), &I16_SOFTMAX_INPUT);
    assert_eq!(kernels, ["requantize_s8_s16", "softmax_s16_s8"]);
    // Naive: x·256 (zp 0, no saturation below 127·256), e = T_lo·T_hi
    // rounded, y = (256·e + sum/2) / sum − 128.
    let t = int16_exp_table(I16_SOFTMAX_SCALE);
    let a: Vec<i64> = I16_SOFTMAX_INPUT.iter().map(|&x| x as i64 * 256).collect();
    let m = *a.iter().max().unwrap();
    let e: Vec<u128> = a
        .iter()
        .map(|&v| {
            let d = (m - v) as usize;
            (t[d % 256] as u128 * t[256 + d / 256] as u128 + (1 << 23)) >> 24
        })
        .collect();
    let sum: u128 = e.iter().sum();
    let want: Vec<i8> = e
        .iter()
        .map(|&e| ((e * 256 + sum / 2) / sum).min(255) as i64 - 128)
        .map(|v| v as i8)
        .collect();
    assert_eq!(got[1], want);
    // The two largest inputs (127 and 126, 256 steps of 1/4096 apart) are
    // told apart: e^(−1/16) ≈ 0.94.
    assert!(want[0] > want[3] && want[3] > want[4], "{want:?}");
}

/// Attention with int16 scores and probabilities: `x [1,4,3]` (int8) times
/// a constant `K [1,3,4]` to int16 scores, an int16 Softmax over the keys,
/// and the int16 probabilities times a constant `V [1,4,3]` back to int8.
fn int16_attention() -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 4, 3], pt(0.05, 3), 0);
    let k = w.add_constant_i8("k", &[1, 3, 4], pt(0.02, -4), &ATTENTION_K);
    let scores = w.add_activation_i16("scores", &[1, 4, 4], pt(ATTENTION_SCORE_SCALE, 0), 16);
    w.add_op(
        OpCode::MatMul,
        &[x, k],
        &[scores],
        &[ATTENTION_QK.0, ATTENTION_QK.1, -32768, 32767],
    );
    let t = w.add_constant_i32(
        "t",
        &[512],
        &medq::ops::softmax_exp_table_s16(ATTENTION_SCORE_SCALE),
    );
    let probs = w.add_activation_i16("p", &[1, 4, 4], pt(1.0 / 32768.0, 0), 64);
    w.add_op(OpCode::Softmax, &[scores, t], &[probs], &[2]);
    let v = w.add_constant_i8("v", &[1, 4, 3], pt(0.03, 0), &ATTENTION_V);
    let y = w.add_activation("y", &[1, 4, 3], pt(0.01, -2), 112);
    w.add_op(
        OpCode::MatMul,
        &[probs, v],
        &[y],
        &[ATTENTION_PV.0, ATTENTION_PV.1, -128, 127],
    );
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(128);
    w
}

const ATTENTION_SCORE_SCALE: f32 = 1.0 / 4096.0;
const ATTENTION_K: [i8; 12] = [5, -7, 100, 3, 60, -128, 9, 0, -20, 127, 44, -1];
const ATTENTION_V: [i8; 12] = [10, -20, 30, 127, -127, 0, 64, 64, -64, 1, 2, 3];
/// The real multipliers as `m · 2^(s − 31)`: 0.05 · 0.02 · 4096 = 4.096 =
/// (1.024 · 2^30) · 2^(3 − 31).
const ATTENTION_QK: (i32, i32) = (1_099_511_628, 3);
/// (1/32768) · 0.03 / 0.01 = 3/32768 = (1.5 · 2^30) · 2^(−14 − 31).
const ATTENTION_PV: (i32, i32) = (1_610_612_736, -14);
const ATTENTION_INPUT: [i8; 12] = [127, -128, 3, 50, 20, -90, 3, 3, 3, -7, 110, 64];

#[test]
fn int16_attention_runs_int16_scores_and_probabilities() {
    let (kernels, got) = run_observed(int16_attention(), &ATTENTION_INPUT);
    assert_eq!(kernels, ["mat_mul_s16", "softmax_s16", "mat_mul_s16"]);
    // Op by op against the reference kernels on the previous op's output.
    let batch = Broadcast4::new(&[1], &[1]).unwrap();
    let mat_mul = |za, zb, zy, (m, s): (i32, i32), (lo, hi), (rows, depth, cols)| MatMulParams {
        batch,
        rows,
        depth,
        cols,
        a_zero_point: za,
        b_zero_point: zb,
        output_zero_point: zy,
        out_multiplier: m,
        out_shift: s,
        act_min: lo,
        act_max: hi,
    };
    let mut scores = [0i16; 16];
    let qk = mat_mul(3, -4, 0, ATTENTION_QK, (-32768, 32767), (4, 3, 4));
    mat_mul_s16(&qk, &ATTENTION_INPUT[..], &ATTENTION_K[..], &mut scores);
    assert_eq!(i16s(&got[0]), scores);
    // The scores use the int16 range: int8 would have rounded them to 1/32
    // of this resolution.
    assert!(
        scores.iter().any(|&s| s.unsigned_abs() > 1000),
        "{scores:?}"
    );
    let mut probs = [0i16; 16];
    let sp = SoftmaxParams {
        outer: 4,
        axis_len: 4,
        inner: 1,
    };
    softmax_s16(
        &sp,
        &medq::ops::softmax_exp_table_s16(ATTENTION_SCORE_SCALE),
        &scores,
        &mut probs,
    );
    assert_eq!(i16s(&got[1]), probs);
    for row in probs.chunks(4) {
        let total: i32 = row.iter().map(|&p| i32::from(p)).sum();
        assert!((32766..=32770).contains(&total), "{row:?} sums to {total}");
    }
    let mut y = [0i8; 12];
    let pv = mat_mul(0, 0, -2, ATTENTION_PV, (-128, 127), (4, 4, 3));
    mat_mul_s16(&pv, &probs[..], &ATTENTION_V[..], &mut y);
    assert_eq!(got[2], y);
}

#[test]
#[cfg(feature = "std")]
fn the_exp_table_helper_is_the_documented_table() {
    for scale in [I16_SOFTMAX_SCALE, 0.01, 1e-6, 3.0] {
        let t = medq::ops::softmax_exp_table_s16(scale);
        assert_eq!(t.to_vec(), int16_exp_table(scale), "{scale}");
        assert_eq!((t[0], t[256]), (1 << 24, 1 << 24));
    }
}

#[test]
fn a_misaligned_arena_is_an_error_not_a_misread() {
    let buf = aligned(int16_pipeline());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut storage = vec![0u16; model.arena_len() / 2 + 2];
    // One byte in: every int16 activation would be at an odd address.
    let arena = &mut u16_bytes(&mut storage)[1..];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let got = Interpreter::new(&model, arena, &mut plan).map(|_| ());
    assert_eq!(got, Err(Error::Misaligned));
    // An int8 model does not mind.
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut storage = vec![0u16; model.arena_len() / 2 + 2];
    let arena = &mut u16_bytes(&mut storage)[1..];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, arena, &mut plan).unwrap();
    interp.invoke().unwrap();
}

/// `v`'s bytes: 2-aligned storage, so its byte 1 is not.
fn u16_bytes(v: &mut [u16]) -> &mut [u8] {
    bytemuck::cast_slice_mut(v)
}

// ---- The loader's int16 rules ----------------------------------------------

fn refusal(w: Writer) -> Option<Error> {
    w.finish().err()
}

/// x i8 → Requantize → a i16 `[1, 2, 4]` → (`op` from a) → y; `op` gets the
/// writer, a, and returns y. Output y is the graph output.
fn after_up(dims: &[usize], op: impl FnOnce(&mut Writer, u16) -> u16) -> Writer {
    let mut w = Writer::new();
    let n: usize = dims.iter().product();
    let x = w.add_activation("x", dims, pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", dims, pt(1.0 / 256.0, 0), 64);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    let y = op(&mut w, a);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(64 + 2 * n + 256);
    w
}

fn bad_tensor(e: Option<Error>) -> bool {
    matches!(e, Some(Error::BadTensor { .. }))
}

fn bad_op(e: Option<Error>, index: u16) -> bool {
    matches!(e, Some(Error::BadOp { index: i, .. }) if i == index)
}

#[test]
fn int16_activations_are_symmetric_at_even_offsets() {
    let with = |zp: i32, offset: usize| {
        let mut w = Writer::new();
        let x = w.add_activation("x", &[4], pt(1.0, 0), 0);
        let a = w.add_activation_i16("a", &[4], pt(1.0, zp), offset);
        w.add_op(OpCode::Requantize, &[x], &[a], &[1 << 30, 1]);
        let y = w.add_activation("y", &[4], pt(1.0, 0), 32);
        w.add_op(OpCode::Requantize, &[a], &[y], &[1 << 30, 1]);
        w.set_inputs(&[x]);
        w.set_outputs(&[y]);
        w.set_arena_len(40);
        refusal(w)
    };
    assert_eq!(with(0, 8), None);
    assert!(bad_tensor(with(1, 8)));
    assert!(bad_tensor(with(-1, 8)));
    assert!(bad_tensor(with(0, 9)));
    // Activations are per-tensor: a per-channel int16 one is refused.
    let mut w = Writer::new();
    let x = w.add_activation("x", &[2], pt(1.0, 0), 0);
    let per_channel = QuantSpec::PerChannel {
        axis: 0,
        scales: vec![1.0, 2.0],
    };
    let a = w.add_activation_i16("a", &[2], per_channel, 8);
    w.add_op(OpCode::Requantize, &[x], &[a], &[1 << 30, 1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[x]);
    w.set_arena_len(16);
    assert!(bad_tensor(refusal(w)));
}

#[test]
fn graph_outputs_may_be_int16() {
    // x i8 → Requantize → a i16, a graph output (a raw logit head).
    let buf = aligned(after_up(&[1, 4], |_, a| a));
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u16; model.arena_len().div_ceil(2)];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, u16_bytes(&mut arena), &mut plan).unwrap();
    let x = [-100i8, 0, 3, 127];
    interp.input_mut(0).unwrap().copy_from_slice(&x);
    interp.invoke().unwrap();
    let mut want = [0i16; 4];
    requantize_s8_s16(&up(0), &x, &mut want);
    assert_eq!(interp.output_i16(0).unwrap(), want);
    // Read as int8 it is a type error, not its bytes.
    assert_eq!(interp.output(0), Err(Error::WrongDType));
    let mut f = [0f32; 4];
    interp.output_f32(0, &mut f).unwrap();
    let scale = 1.0 / 256.0;
    assert_eq!(f, want.map(|q| f32::from(q) * scale));
    assert_eq!(interp.decision(), Ok(medq::Decision::Class(3)));
    assert!(matches!(
        interp.output_f32(0, &mut [0f32; 3]),
        Err(Error::LengthMismatch { .. })
    ));

    // An int8 output is not read as int16.
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert!(matches!(interp.output_i16(0), Err(Error::WrongDType)));
}

#[test]
fn graph_inputs_may_be_int16() {
    // a i16 (scale 1/512) → Requantize to y i8 (scale 1/64): y = round(a / 8).
    let mut w = Writer::new();
    let a = w.add_activation_i16("a", &[4], pt(1.0 / 512.0, 0), 0);
    let y = w.add_activation("y", &[4], pt(1.0 / 64.0, 0), 8);
    w.add_op(OpCode::Requantize, &[a], &[y], &[1 << 30, -2]);
    w.set_inputs(&[a]);
    w.set_outputs(&[y]);
    w.set_arena_len(12);
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u16; model.arena_len().div_ceil(2)];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, u16_bytes(&mut arena), &mut plan).unwrap();
    // Written typed, or from floats on the input's scale (clipped to i16).
    interp
        .input_i16_mut(0)
        .unwrap()
        .copy_from_slice(&[-800, 8, 100, 1000]);
    interp.invoke().unwrap();
    assert_eq!(interp.output(0).unwrap(), [-100, 1, 13, 125]);
    let report = interp
        .set_input_f32(0, &[-1.5625, 0.0, 0.25, 80.0])
        .unwrap();
    assert_eq!(report.clipped, 1);
    assert_eq!(interp.input_i16_mut(0).unwrap(), [-800, 0, 128, 32767]);
    // The raw view is the little-endian bytes; an int16 input is not int8.
    assert_eq!(interp.input_mut(0).unwrap().len(), 8);
    let buf8 = aligned(fc_lut_softmax());
    let model8 = Model::parse(buf8.as_slice()).unwrap();
    let mut arena8 = vec![0u8; model8.arena_len()];
    let mut plan8 = vec![medq::PreparedOp::EMPTY; model8.op_count()];
    let mut interp8 = Interpreter::new(&model8, &mut arena8, &mut plan8).unwrap();
    assert!(matches!(interp8.input_i16_mut(0), Err(Error::WrongDType)));
}

/// `op` on an int8 `[1, 2, 4]` activation is valid; reading an int16 one it
/// is refused (op 1), and so is writing one (op 2, `wide_out`). `op` returns
/// its output and the output's element count.
fn refused_on_int16(what: &str, op: impl Fn(&mut Writer, u16, bool) -> (u16, usize)) {
    // The int8 twin: x → Requantize → a i16 → Requantize back → b i8 → op.
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 4], pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 2, 4], pt(1.0 / 256.0, 0), 16);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    let b = w.add_activation("b", &[1, 2, 4], pt(1.0, 0), 32);
    w.add_op(OpCode::Requantize, &[a], &[b], &[1 << 30, -7]);
    let (y, _) = op(&mut w, b, false);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(256);
    assert_eq!(refusal(w), None, "{what} on int8");
    for wide_out in [false, true] {
        let w = after_up(&[1, 2, 4], |w, a| {
            let src = if wide_out {
                // int8 in, int16 out.
                let b = w.add_activation("b", &[1, 2, 4], pt(1.0, 0), 32);
                w.add_op(OpCode::Requantize, &[a], &[b], &[1 << 30, -7]);
                b
            } else {
                a
            };
            let (y, n) = op(w, src, wide_out);
            if !wide_out {
                return y;
            }
            // Back to int8, so that only `op`'s int16 output is judged.
            let z = w.add_activation("z", &[n], pt(1.0, 0), 192);
            w.add_op(OpCode::Requantize, &[y], &[z], &[1 << 30, 1]);
            z
        });
        let index = if wide_out { 2 } else { 1 };
        assert!(bad_op(refusal(w), index), "{what}, int16 output {wide_out}");
    }
}

/// An output `[dims]` at offset 128 (i16 when `wide`) and its element count.
fn out(w: &mut Writer, dims: &[usize], q: QuantSpec, wide: bool) -> (u16, usize) {
    let y = if wide {
        w.add_activation_i16("y", dims, pt(1.0, 0), 128)
    } else {
        w.add_activation("y", dims, q, 128)
    };
    (y, dims.iter().product())
}

#[test]
fn ops_without_int16_kernels_refuse_int16_operands() {
    refused_on_int16("Lut", |w, x, wide| {
        let t = w.add_constant_i8("t", &[256], QuantSpec::None, &[1; 256]);
        let (y, n) = out(w, &[1, 2, 4], pt(1.0, 0), wide);
        w.add_op(OpCode::Lut, &[x, t], &[y], &[]);
        (y, n)
    });
    refused_on_int16("Transpose", |w, x, wide| {
        let (y, n) = out(w, &[1, 4, 2], pt(1.0, 0), wide);
        w.add_op(OpCode::Transpose, &[x], &[y], &[0, 2, 1]);
        (y, n)
    });
    refused_on_int16("Pad", |w, x, wide| {
        let (y, n) = out(w, &[1, 2, 5], pt(1.0, 0), wide);
        w.add_op(OpCode::Pad, &[x], &[y], &[0, 0, 0, 0, 0, 0, 1]);
        (y, n)
    });
    refused_on_int16("Gather", |w, x, wide| {
        let (y, n) = out(w, &[1, 2, 2], pt(1.0, 0), wide);
        w.add_op(OpCode::Gather, &[x], &[y], &[2, 0, 2]);
        (y, n)
    });
    refused_on_int16("Resize", |w, x, wide| {
        let (y, n) = out(w, &[1, 2, 8], pt(1.0, 0), wide);
        w.add_op(OpCode::Resize, &[x], &[y], &[0, 1, 2, 1, 1, 2, 1]);
        (y, n)
    });
    refused_on_int16("Softmax to int16", |w, x, wide| {
        // Fine with an int16 input's 512-entry table, or an int16 output at
        // scale 1/32768 (their own tests); here the table has 256 entries
        // for the int16 input and the int16 output has scale 1.
        let t = w.add_constant_i32("t", &[256], &halving_exp_table());
        let (y, n) = out(w, &[1, 2, 4], pt(1.0 / 256.0, -128), wide);
        w.add_op(OpCode::Softmax, &[x, t], &[y], &[2]);
        (y, n)
    });
}

/// A Conv `[1, 2, 4]` → `[1, 1, 4]` (kernel 1) from `x` into `y`.
fn conv_op(w: &mut Writer, x: u16, y: u16, act: (i32, i32), sparse: bool) {
    let wq = pt(1.0, 0);
    let cw = if sparse {
        w.add_sparse_constant_i8("w", &[1, 2, 1], wq, &[0, 1])
    } else {
        w.add_constant_i8("w", &[1, 2, 1], wq, &[0, 1])
    };
    let cb = w.add_constant_i32("b", &[1], &[0]);
    let cm = w.add_constant_i32("m", &[1], &[1 << 30]);
    let cs = add_shifts(w, "s", &[1]);
    w.add_op(
        OpCode::Conv,
        &[x, cw, cb, cm, cs],
        &[y],
        &[1, 1, 1, 1, 0, 0, 0, 0, 1, act.0, act.1],
    );
}

/// x i8 → a i16 → Conv → c (i16 when `wide_out`) → back to int8 if needed.
fn conv_model(wide_out: bool, act: (i32, i32), sparse: bool) -> Writer {
    after_up(&[1, 2, 4], |w, a| {
        if wide_out {
            let c = w.add_activation_i16("c", &[1, 1, 4], pt(1.0, 0), 128);
            conv_op(w, a, c, act, sparse);
            let y = w.add_activation("y", &[1, 1, 4], pt(1.0, 0), 160);
            w.add_op(OpCode::Requantize, &[c], &[y], &[1 << 30, 1]);
            y
        } else {
            let y = w.add_activation("y", &[1, 1, 4], pt(1.0, 0), 128);
            conv_op(w, a, y, act, sparse);
            y
        }
    })
}

#[test]
fn conv_and_fully_connected_check_the_int16_contract() {
    assert_eq!(refusal(conv_model(true, (-32768, 32767), false)), None);
    assert_eq!(refusal(conv_model(true, (-5, 40), false)), None);
    // Beyond i16.
    assert!(bad_op(refusal(conv_model(true, (-32769, 0), false)), 1));
    assert!(bad_op(refusal(conv_model(true, (0, 32768), false)), 1));
    // i16 in, i8 out: the window within i8.
    assert_eq!(refusal(conv_model(false, (-128, 127), false)), None);
    assert!(bad_op(refusal(conv_model(false, (-129, 127), false)), 1));
    // i8 in, i16 out: the window within i16.
    let i8_in = |act: (i32, i32)| {
        let mut w = Writer::new();
        let x = w.add_activation("x", &[1, 2, 4], pt(1.0, 0), 0);
        let c = w.add_activation_i16("c", &[1, 1, 4], pt(1.0, 0), 16);
        conv_op(&mut w, x, c, act, false);
        let y = w.add_activation("y", &[1, 1, 4], pt(1.0, 0), 32);
        w.add_op(OpCode::Requantize, &[c], &[y], &[1 << 30, 1]);
        w.set_inputs(&[x]);
        w.set_outputs(&[y]);
        w.set_arena_len(40);
        w
    };
    assert_eq!(refusal(i8_in((-300, 300))), None);
    assert!(bad_op(refusal(i8_in((-32769, 0))), 0));
    // Packed weights.
    assert!(bad_op(refusal(conv_model(true, (-32768, 32767), true)), 1));

    // FullyConnected: the same rules.
    let fc = |act: (i32, i32), wide_out: bool, sparse: bool| {
        after_up(&[1, 8], |w, a| {
            let q = pt(1.0, 0);
            let fw = if sparse {
                w.add_sparse_constant_i8(
                    "w",
                    &[2, 8],
                    q,
                    &[0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                )
            } else {
                w.add_constant_i8(
                    "w",
                    &[2, 8],
                    q,
                    &[0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                )
            };
            let fb = w.add_constant_i32("b", &[2], &[0, 0]);
            let fm = w.add_constant_i32("m", &[2], &[1 << 30; 2]);
            let fs = add_shifts(w, "s", &[1, 1]);
            let y = if wide_out {
                w.add_activation_i16("e", &[1, 2], pt(1.0, 0), 128)
            } else {
                w.add_activation("e", &[1, 2], pt(1.0, 0), 128)
            };
            w.add_op(
                OpCode::FullyConnected,
                &[a, fw, fb, fm, fs],
                &[y],
                &[act.0, act.1],
            );
            if !wide_out {
                return y;
            }
            let z = w.add_activation("z", &[1, 2], pt(1.0, 0), 160);
            w.add_op(OpCode::Requantize, &[y], &[z], &[1 << 30, 1]);
            z
        })
    };
    assert_eq!(refusal(fc((-32768, 32767), true, false)), None);
    assert!(bad_op(refusal(fc((-32768, 32768), true, false)), 1));
    assert_eq!(refusal(fc((-128, 127), false, false)), None);
    assert!(bad_op(refusal(fc((-128, 128), false, false)), 1));
    assert!(bad_op(refusal(fc((-32768, 32767), true, true)), 1));
}

#[test]
fn pools_reshape_and_requantize_check_their_pairs() {
    let pool = |opcode: OpCode, wide_out: bool, same_quant: bool| {
        after_up(&[1, 2, 4], |w, a| {
            let scale = if same_quant { 1.0 / 256.0 } else { 1.0 };
            let y = if wide_out {
                w.add_activation_i16("p", &[1, 2, 2], pt(scale, 0), 128)
            } else {
                w.add_activation("p", &[1, 2, 2], pt(scale, 0), 128)
            };
            w.add_op(opcode, &[a], &[y], &I16_POOL_PARAMS);
            if !wide_out {
                return y;
            }
            let z = w.add_activation("z", &[1, 2, 2], pt(1.0, 0), 160);
            w.add_op(OpCode::Requantize, &[y], &[z], &[1 << 30, 1]);
            z
        })
    };
    for opcode in [OpCode::MaxPool, OpCode::AvgPool] {
        assert_eq!(refusal(pool(opcode, true, true)), None, "{opcode:?}");
        assert!(bad_op(refusal(pool(opcode, false, true)), 1), "{opcode:?}");
        assert!(bad_op(refusal(pool(opcode, true, false)), 1), "{opcode:?}");
    }
    // Reshape: same dtype both sides.
    let reshape = |wide_out: bool| {
        after_up(&[1, 2, 4], |w, a| {
            if !wide_out {
                let y = w.add_activation("r", &[1, 8], pt(1.0 / 256.0, 0), 128);
                w.add_op(OpCode::Reshape, &[a], &[y], &[]);
                return y;
            }
            let r = w.add_activation_i16("r", &[1, 8], pt(1.0 / 256.0, 0), 128);
            w.add_op(OpCode::Reshape, &[a], &[r], &[]);
            let z = w.add_activation("z", &[1, 8], pt(1.0, 0), 160);
            w.add_op(OpCode::Requantize, &[r], &[z], &[1 << 30, 1]);
            z
        })
    };
    assert_eq!(refusal(reshape(true)), None);
    assert!(bad_op(refusal(reshape(false)), 1));
    // Requantize: int8 to int8 is refused, and so is a change of length.
    let mut w = Writer::new();
    let x = w.add_activation("x", &[4], pt(1.0, 0), 0);
    let y = w.add_activation("y", &[4], pt(1.0, 0), 8);
    w.add_op(OpCode::Requantize, &[x], &[y], &[1 << 30, 1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(12);
    assert!(bad_op(refusal(w), 0));
    let w = after_up(&[1, 4], |w, a| {
        let y = w.add_activation("y", &[1, 3], pt(1.0, 0), 128);
        w.add_op(OpCode::Requantize, &[a], &[y], &[1 << 30, 1]);
        y
    });
    assert!(bad_op(refusal(w), 1));
    let w = after_up(&[1, 4], |w, a| {
        let y = w.add_activation("y", &[1, 4], pt(1.0, 0), 128);
        w.add_op(OpCode::Requantize, &[a], &[y], &[-1, 1]);
        y
    });
    assert!(bad_op(refusal(w), 1), "negative multiplier");
}

#[test]
fn softmax_tables_match_the_input_dtype() {
    let softmax = |table: &[i32], wide_in: bool| {
        let mut w = Writer::new();
        let x = w.add_activation("x", &[1, 6], pt(1.0 / 16.0, 0), 0);
        let src = if wide_in {
            let a = w.add_activation_i16("a", &[1, 6], pt(1.0 / 4096.0, 0), 8);
            w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
            a
        } else {
            x
        };
        let t = w.add_constant_i32("exp", &[table.len()], table);
        let y = w.add_activation("y", &[1, 6], pt(1.0 / 256.0, -128), 24);
        w.add_op(OpCode::Softmax, &[src, t], &[y], &[1]);
        w.set_inputs(&[x]);
        w.set_outputs(&[y]);
        w.set_arena_len(32);
        refusal(w)
    };
    let t512 = int16_exp_table(I16_SOFTMAX_SCALE);
    let t256 = halving_exp_table();
    assert_eq!(softmax(&t512, true), None);
    assert_eq!(softmax(&t256, false), None);
    assert!(bad_op(softmax(&t256, true), 1));
    assert!(bad_op(softmax(&t512, false), 0));
    // Both halves start at exp(0) = 2^24; no entry is negative or above it.
    for (at, v) in [
        (0, (1 << 24) - 1),
        (256, 1 << 23),
        (7, -1),
        (300, (1 << 24) + 1),
    ] {
        let mut t = t512.clone();
        t[at] = v;
        assert!(bad_op(softmax(&t, true), 1), "table[{at}] = {v}");
    }
}

/// x i8 → a i16 (256·x, scale 1/256) → `a op b` into an int16 `y` on a's
/// scale, with `b` a constant `[1, 2, 3, 4]` broadcast over a's rows: each
/// math op runs its int16 kernel, within a step of the real result.
#[test]
fn math_ops_of_a_computed_tensor_run_in_int16() {
    use medq::format::layout::params;
    use medq::numerics::quantize_multiplier;
    let q = |real: f64| quantize_multiplier(real).unwrap();
    let input = [-128i8, -3, 0, 5, 127, 100, 7, -7];
    let b = [1i8, 2, 3, 4];
    let sub = {
        // Add's scheme (the converter's): both on twice the larger scale,
        // 15 fraction bits with an int16 operand.
        use params::add as k;
        let mut p = vec![0; k::COUNT];
        p[k::LEFT_SHIFT] = 15;
        (p[k::A_MULTIPLIER], p[k::A_SHIFT]) = q(1.0 / 512.0);
        (p[k::B_MULTIPLIER], p[k::B_SHIFT]) = q(0.5);
        (p[k::OUT_MULTIPLIER], p[k::OUT_SHIFT]) = q(2.0 * 256.0 / 32768.0);
        (p[k::ACT_MIN], p[k::ACT_MAX]) = (-32768, 32767);
        p
    };
    // Mul and Div: `sa·sb/sy` = 1, and Div's `sa/(sb·2^16·sy)` = 2^−16.
    let mul_div = |real: f64| {
        use params::mul as k;
        let mut p = vec![0; k::COUNT];
        (p[k::OUT_MULTIPLIER], p[k::OUT_SHIFT]) = q(real);
        (p[k::ACT_MIN], p[k::ACT_MAX]) = (-32768, 32767);
        p
    };
    let min_max = {
        use params::min_max as k;
        let mut p = vec![0; k::COUNT];
        (p[k::A_MULTIPLIER], p[k::A_SHIFT]) = q(1.0);
        (p[k::B_MULTIPLIER], p[k::B_SHIFT]) = q(256.0);
        (p[k::ACT_MIN], p[k::ACT_MAX]) = (-32768, 32767);
        p
    };
    type Real = fn(f64, f64) -> f64;
    let cases: [(OpCode, Vec<i32>, &str, Real); 5] = [
        (OpCode::Sub, sub, "sub_s16", |x, b| x - b),
        (OpCode::Mul, mul_div(1.0), "mul_s16", |x, b| x * b),
        (OpCode::Div, mul_div(1.0 / 65536.0), "div_s16", |x, b| x / b),
        (OpCode::Min, min_max.clone(), "min_s16", f64::min),
        (OpCode::Max, min_max, "max_s16", f64::max),
    ];
    for (opcode, words, kernel, real) in cases {
        let w = after_up(&[1, 2, 4], |w, a| {
            let c = w.add_constant_i8("b", &[4], pt(1.0, 0), &b);
            let y = w.add_activation_i16("y", &[1, 2, 4], pt(1.0 / 256.0, 0), 128);
            w.add_op(opcode, &[a, c], &[y], &words);
            y
        });
        let (kernels, got) = run_observed(w, &input);
        assert_eq!(kernels, ["requantize_s8_s16", kernel]);
        let y = i16s(&got[1]);
        for (k, (&x, &v)) in input.iter().zip(&y).enumerate() {
            let want = (real(f64::from(x), f64::from(b[k % 4])) * 256.0).clamp(-32768.0, 32767.0);
            assert!(
                (f64::from(v) - want).abs() <= 1.0,
                "{kernel}: y[{k}] {v}, want {want}"
            );
        }
    }
}

#[test]
fn select_chooses_between_int16_and_int8_sides() {
    use medq::format::layout::params::select as k;
    use medq::numerics::quantize_multiplier;
    let q = |real: f64| quantize_multiplier(real).unwrap();
    // a = 256·x on y's 1/256 grid (multiplier 1); b = c's 1.0 steps (256);
    // a constant mask [4] of zero point 0, true on columns 0 and 3.
    let input = [-128i8, -3, 0, 5, 127, 100, 7, -7];
    let c = [1i8, -2, 3, -4];
    let mut words = vec![0; k::COUNT];
    (words[k::A_MULTIPLIER], words[k::A_SHIFT]) = q(1.0);
    (words[k::B_MULTIPLIER], words[k::B_SHIFT]) = q(256.0);
    (words[k::ACT_MIN], words[k::ACT_MAX]) = (-32768, 32767);
    let w = after_up(&[1, 2, 4], |w, a| {
        let mask = w.add_constant_i8("mask", &[4], pt(1.0, 0), &[1, 0, 0, 1]);
        let b = w.add_constant_i8("c", &[4], pt(1.0, 0), &c);
        let y = w.add_activation_i16("y", &[1, 2, 4], pt(1.0 / 256.0, 0), 128);
        w.add_op(OpCode::Select, &[mask, a, b], &[y], &words);
        y
    });
    let (kernels, got) = run_observed(w, &input);
    assert_eq!(kernels, ["requantize_s8_s16", "select_s16"]);
    let want: Vec<i16> = input
        .iter()
        .enumerate()
        .map(|(i, &x)| match i % 4 {
            0 | 3 => (i32::from(x) * 256).clamp(-32768, 32767) as i16,
            col => c[col] as i16 * 256,
        })
        .collect();
    assert_eq!(i16s(&got[1]), want);
}

#[test]
fn a_residual_stream_runs_add_layer_norm_reduce_sum_and_a_table_in_int16() {
    let input = [-128i8, -3, 0, 5, 127, 100, 7, 7];
    let (kernels, got) = run_observed(int16_residual_stream(15), &input);
    assert_eq!(
        kernels,
        [
            "requantize_s8_s16",
            "add_s16",
            "layer_norm_s16_s8",
            "reduce_sum_s16",
            "lut_s16"
        ]
    );
    // By the formulas, without the kernels. a = 256·x; s's real value is
    // a/256 + x = 2x, on the 1/128 grid 256·x.
    let a: Vec<i32> = input
        .iter()
        .map(|&x| (x as i32 * 256).clamp(-32768, 32767))
        .collect();
    assert_eq!(
        i16s(&got[0]).iter().map(|&v| v as i32).collect::<Vec<_>>(),
        a
    );
    let s = i16s(&got[1]);
    for (k, (&x, &v)) in input.iter().zip(&s).enumerate() {
        let real = 2.0 * x as f64 * 128.0;
        assert!(
            (v as f64 - real.clamp(-32768.0, 32767.0)).abs() <= 1.0,
            "s[{k}] {v} vs {real}"
        );
    }
    // Beyond int8 both ways: −128 → −32768 (the rail), 127 → 32512.
    assert!(
        s.contains(&-32768) && s.contains(&32512) && s.contains(&1280),
        "{s:?}"
    );
    // LayerNorm: row 1 is (32512, 25600, 1792, 1792), mean 15424: its first
    // position is above it and its last (gamma −1) below, so both positive.
    let n = &got[2];
    assert!(n[7] > 0 && n[4] > 0, "{n:?}");
    // ReduceSum: Σ s over each row of 4 from the 1/128 grid onto r's 1/32
    // one, times ¼ (m = 2^30, s = −1).
    let r = i16s(&got[3]);
    for (row, &v) in r.iter().enumerate() {
        let sum: i64 = s[row * 4..row * 4 + 4].iter().map(|&v| v as i64).sum();
        let want = ((sum as f64) / 4.0).round().clamp(-32768.0, 32767.0) as i64;
        assert!((v as i64 - want).abs() <= 1, "row {row}: {v} vs {want}");
    }
    // The table: |s| / 2 exactly (every s is a multiple of 256).
    let u = i16s(&got[4]);
    let half: Vec<i16> = s.iter().map(|&v| ((v as i32).abs() / 2) as i16).collect();
    assert_eq!(u, half);
}

#[test]
fn residual_stream_ops_check_their_int16_contract() {
    assert_eq!(refusal(int16_residual_stream(15)), None);
    // An int16 operand takes at most 15 fraction bits.
    assert!(bad_op(refusal(int16_residual_stream(16)), 1));
}

/// x i8 → a i16 (`256·x`) → ReduceL2 over the last axis of `[1, 2, 4]`
/// → y, int16 (`wide_out`) or int8, requantized by `2^30 · 2^shift / 2^31`.
fn int16_reduce_l2(wide_out: bool, shift: i32) -> Writer {
    after_up(&[1, 2, 4], |w, a| {
        let (y, act) = if wide_out {
            let y = w.add_activation_i16("y", &[1, 2, 1], pt(1.0, 0), 128);
            (y, (-32768, 32767))
        } else {
            (
                w.add_activation("y", &[1, 2, 1], pt(1.0, 0), 128),
                (-128, 127),
            )
        };
        let words = [0b100, 1 << 30, shift, act.0, act.1, 0];
        w.add_op(OpCode::ReduceL2, &[a], &[y], &words);
        y
    })
}

#[test]
fn reduce_l2_reads_an_int16_input_into_either_type() {
    // Rows of whole norms: |(3, 4, 0, 0)| = 5, |(2, −3, 6, 0)| = 7. The
    // int16 input is 256·x and its squares shift by 8, so the root is
    // 2^12 · |x| exactly.
    let input = [3i8, 4, 0, 0, 2, -3, 6, 0];
    let (kernels, got) = run_observed(int16_reduce_l2(true, -4), &input);
    assert_eq!(kernels, ["requantize_s8_s16", "reduce_l2_s16"]);
    assert_eq!(i16s(&got[1]), [5 * 128, 7 * 128]);
    let (kernels, got) = run_observed(int16_reduce_l2(false, -11), &input);
    assert_eq!(kernels, ["requantize_s8_s16", "reduce_l2_s16_s8"]);
    assert_eq!(got[1], [5, 7]);
}

#[test]
fn concat_joins_int16_and_int8_inputs_into_either_type() {
    let input = [-128i8, -3, 0, 5, 127, 100, 7, -7];
    let (kernels, got) = run_observed(int16_concat(0), &input);
    assert_eq!(
        kernels,
        ["requantize_s8_s16", "concat_part_s16", "concat_part_s16"]
    );
    // Each row: the four of a, then the four of x, both on a's 1/256 grid
    // (the int16 range holds 256·x for every int8 x).
    let scaled = |row: usize| input[row * 4..row * 4 + 4].iter().map(|&x| x as i32 * 256);
    let want_y: Vec<i32> = (0..2).flat_map(|r| scaled(r).chain(scaled(r))).collect();
    let y: Vec<i32> = i16s(&got[1]).iter().map(|&v| v as i32).collect();
    assert_eq!(y, want_y);
    // Back on the int8 grid both halves are x itself, plus the zero point
    // (saturated).
    for zz in [0, 3] {
        let (_, got) = run_observed(int16_concat(zz), &input);
        let row = |r: usize| {
            input[r * 4..r * 4 + 4]
                .iter()
                .map(|&x| (x as i32 + zz).min(127) as i8)
        };
        let want_z: Vec<i8> = (0..2).flat_map(|r| row(r).chain(row(r))).collect();
        assert_eq!(got[2], want_z, "zero point {zz}");
    }
}

#[test]
fn concat_refuses_an_int16_side_off_the_contract() {
    assert_eq!(refusal(int16_concat(0)), None);
    // A shift past the contract's range on the int16 path, too.
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 4], pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 2, 4], pt(1.0 / 256.0, 0), 16);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    let y = w.add_activation_i16("y", &[1, 2, 8], pt(1.0 / 256.0, 0), 32);
    w.add_op(OpCode::Concat, &[a, x], &[y], &[2, 1 << 30, 1, 1 << 30, 31]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(128);
    assert!(bad_op(refusal(w), 1));
}

/// x i8 → Requantize → a i16 `[1, 2, 4]` → Lut with an `i32` table of
/// `entries` → y i16.
fn lut_s16_model(table: &[i32]) -> Writer {
    after_up(&[1, 2, 4], |w, a| {
        let t = w.add_constant_i32("t", &[table.len()], table);
        let y = w.add_activation_i16("y", &[1, 2, 4], pt(1.0 / 128.0, 0), 128);
        w.add_op(OpCode::Lut, &[a, t], &[y], &[]);
        y
    })
}

#[test]
fn an_int16_table_interpolates_513_entries() {
    // t[k] = |k − 256| · 64: y = |a| / 2 at every input (exactly, between
    // entries of a straight segment).
    let table: Vec<i32> = (0..513).map(|k: i32| (k - 256).abs() * 64).collect();
    let input = [-128i8, -3, 0, 5, 127, 100, 7, -7];
    let (kernels, got) = run_observed(lut_s16_model(&table), &input);
    assert_eq!(kernels, ["requantize_s8_s16", "lut_s16"]);
    let y = i16s(&got[1]);
    let want: Vec<i16> = input
        .iter()
        .map(|&x| ((x as i32 * 256).abs() / 2) as i16)
        .collect();
    assert_eq!(y, want);
    // 512 entries, or one beyond i16, are refused.
    assert!(bad_op(refusal(lut_s16_model(&table[..512])), 1));
    let mut beyond = table.clone();
    beyond[0] = 40_000;
    assert!(bad_op(refusal(lut_s16_model(&beyond)), 1));
}

/// x i8 → Requantize → a i16 `[1, 2, 4]` (256·x) → Log → y i16 on a 1/1024
/// grid, `y = 1024·ln(x)`: `log2_q16(a) − 8·2^16` times `1024·ln2 / 2^16`
/// (Q31 `0.6931·2^31`, shift −6); below `low_input`, `low_output`.
fn int16_log(low_input: i32, wide_out: bool) -> Writer {
    after_up(&[1, 2, 4], |w, a| {
        let y = match wide_out {
            true => w.add_activation_i16("y", &[1, 2, 4], pt(1.0 / 1024.0, 0), 128),
            false => w.add_activation("y", &[1, 2, 4], pt(1.0 / 16.0, 0), 128),
        };
        let m = (std::f64::consts::LN_2 * 2f64.powi(31)).round() as i32;
        w.add_op(
            OpCode::Log,
            &[a],
            &[y],
            &[-8 << 16, m, -6, low_input, -32768],
        );
        y
    })
}

#[test]
fn log_is_the_rounded_natural_log_of_an_int16_input() {
    let input = [1i8, 2, 4, 8, 0, -3, 16, 100];
    let (kernels, got) = run_observed(int16_log(1, true), &input);
    assert_eq!(kernels, ["requantize_s8_s16", "log_s16"]);
    let want: Vec<i16> = input
        .iter()
        .map(|&x| match x {
            ..=0 => -32768,
            x => (1024.0 * f64::from(x).ln()).round() as i16,
        })
        .collect();
    assert_eq!(i16s(&got[1]), want);
    // A floor at 4 (256·4 on the int16 grid): 1 and 2 read the low output.
    let (_, got) = run_observed(int16_log(4 * 256, true), &input);
    assert_eq!(i16s(&got[1])[..4], [-32768, -32768, 1420, 2129]);
}

#[test]
fn log_refuses_an_int8_side_or_a_low_input_below_one() {
    assert_eq!(refusal(int16_log(1, true)), None);
    assert!(bad_op(refusal(int16_log(1, false)), 1));
    assert!(bad_op(refusal(int16_log(0, true)), 1));
    assert!(bad_op(refusal(int16_log(32769, true)), 1));
}

/// `x` i8 `[1, len]` → ArgMax over its `len` values → `y` with int16 (or,
/// `wide` false, int8) indices of scale 1.
fn long_arg_max(len: usize, wide: bool) -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, len], pt(0.1, 0), 0);
    let at = len + len % 2;
    let q1 = pt(1.0, 0);
    let y = match wide {
        true => w.add_activation_i16("y", &[1], q1, at),
        false => w.add_activation("y", &[1], q1, at),
    };
    w.add_op(OpCode::ArgMax, &[x], &[y], &[1, 0]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(at + 2);
    w
}

#[test]
fn arg_max_writes_int16_indices_past_128() {
    // A peak at sample 300 of 500 (an R peak's position in a window).
    let mut x = vec![0i8; 500];
    x[300] = 77;
    let buf = aligned(long_arg_max(500, true));
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u16; model.arena_len().div_ceil(2)];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, u16_bytes(&mut arena), &mut plan).unwrap();
    interp.input_mut(0).unwrap().copy_from_slice(&x);
    interp.invoke().unwrap();
    assert_eq!(interp.output_i16(0).unwrap(), [300]);
    // int8 indices stop at 128; int16 ones at 32768.
    assert!(bad_op(refusal(long_arg_max(500, false)), 0));
    assert!(bad_op(refusal(long_arg_max(32769, true)), 0));
}
