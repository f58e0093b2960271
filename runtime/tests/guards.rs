//! Input guards and runtime monitors: float inputs checked and quantized
//! with a clip count, outputs dequantized, per-op saturation counters
//! (feature `saturation-counters`).

mod format_models;

use format_models::*;
use medq::{
    AlignedBuf, Decision, Error, InputReport, Interpreter, MetaKey, Model, OpCode, QuantSpec,
    Writer,
};

/// x [1, 6] → Lut (2v, clamped) → d → Lut (v / 2, toward zero) → y, every
/// tensor at scale 1, zero point 0.
fn double_then_halve() -> Writer {
    let mut w = Writer::new();
    let q = || pt(1.0, 0);
    let x = w.add_activation("x", &[1, 6], q(), 0);
    let double: Vec<i8> = (-128..=127)
        .map(|v: i32| (2 * v).clamp(-128, 127) as i8)
        .collect();
    let halve: Vec<i8> = (-128..=127).map(|v: i32| (v / 2) as i8).collect();
    let t_double = w.add_constant_i8("double", &[256], QuantSpec::None, &double);
    let t_halve = w.add_constant_i8("halve", &[256], QuantSpec::None, &halve);
    let d = w.add_activation("d", &[1, 6], q(), 8);
    let y = w.add_activation("y", &[1, 6], q(), 0);
    w.add_op(OpCode::Lut, &[x, t_double], &[d], &[]);
    w.add_op(OpCode::Lut, &[d, t_halve], &[y], &[]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(14);
    w
}

#[test]
fn float_inputs_are_quantized_with_the_input_scale_and_outputs_dequantized() {
    // fc_lut_softmax: x at scale 0.5, zero point 1; its golden input
    // [2, 3, 4, 5] gives probabilities [37, 73, 146] / 256.
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();

    let report = interp.set_input_f32(0, &[0.5, 1.0, 1.5, 2.0]).unwrap();
    assert_eq!(report, InputReport { clipped: 0 });
    assert_eq!(interp.input_mut(0).unwrap(), &[2, 3, 4, 5]);
    interp.invoke().unwrap();
    let mut probs = [0f32; 3];
    interp.output_f32(0, &mut probs).unwrap();
    assert_eq!(probs, [37.0 / 256.0, 73.0 / 256.0, 146.0 / 256.0]);

    assert_eq!(
        interp.output_f32(0, &mut [0f32; 4]),
        Err(Error::LengthMismatch {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(
        interp.output_f32(1, &mut probs),
        Err(Error::IndexOutOfRange)
    );
}

#[test]
fn values_outside_the_calibrated_range_are_clipped_and_counted() {
    // Scale 0.5, zero point 1: the input represents −64.5 ..= 63.0.
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();

    // 63.0 and −64.5 are the ends (not clipped); 63.5 is q = 128, −65 is −130.
    let report = interp
        .set_input_f32(0, &[63.0, -64.5, 63.5, -65.0])
        .unwrap();
    assert_eq!(report.clipped, 2);
    assert_eq!(interp.input_mut(0).unwrap(), &[127, -128, 127, -128]);
    let report = interp.set_input_f32(0, &[1e9, -1e9, 1e9, 0.0]).unwrap();
    assert_eq!(report.clipped, 3);
}

#[test]
fn non_finite_and_wrongly_sized_inputs_are_refused_leaving_the_input_alone() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    interp.set_input_f32(0, &[0.5, 1.0, 1.5, 2.0]).unwrap();

    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_eq!(
            interp.set_input_f32(0, &[0.0, 0.0, bad, 0.0]),
            Err(Error::NonFiniteInput { index: 2 })
        );
        assert_eq!(interp.input_mut(0).unwrap(), &[2, 3, 4, 5]);
    }
    assert_eq!(
        interp.set_input_f32(0, &[0.0; 5]),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 5
        })
    );
    assert_eq!(
        interp.set_input_f32(1, &[0.0; 4]),
        Err(Error::IndexOutOfRange)
    );
    assert_eq!(interp.input_mut(0).unwrap(), &[2, 3, 4, 5]);
    let message = Error::NonFiniteInput { index: 2 }.to_string();
    assert!(message.contains("input value 2"), "{message}");
}

#[cfg(feature = "saturation-counters")]
#[test]
fn saturation_counters_count_each_ops_outputs_at_the_rails() {
    let buf = aligned(double_then_halve());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!(interp.saturated().collect::<Vec<_>>(), [0, 0]);

    // Doubled: [0, 126, 127 (128), −128, −128 (−130), 127 (200)]: 4 at the
    // rails; halved: [0, 63, 63, −64, −64, 63]: none.
    interp
        .input_mut(0)
        .unwrap()
        .copy_from_slice(&[0, 63, 64, -64, -65, 100]);
    interp.invoke().unwrap();
    assert_eq!(interp.output(0).unwrap(), &[0, 63, 63, -64, -64, 63]);
    assert_eq!(interp.saturated().collect::<Vec<_>>(), [4, 0]);

    // The counts are the latest run's, also through invoke_observed.
    interp.input_mut(0).unwrap().fill(1);
    interp.invoke_observed(|_, _, _| {}).unwrap();
    assert_eq!(interp.saturated().collect::<Vec<_>>(), [0, 0]);
    interp.input_mut(0).unwrap().fill(-128);
    interp.invoke().unwrap();
    assert_eq!(interp.saturated().collect::<Vec<_>>(), [6, 0]);
}

#[cfg(all(feature = "saturation-counters", feature = "int16-activations"))]
#[test]
fn saturation_counters_count_int16_outputs_at_the_int16_rails() {
    // x i8 → ×256 → a i16 → /128 → y i8: a saturates at −32768 and 32767
    // (not at the bytes 0x80, 0x7F), y at −128 and 127.
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 6], pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 6], pt(1.0 / 256.0, 0), 8);
    w.add_op(OpCode::Requantize, &[x], &[a], &[1 << 30, 9]);
    let y = w.add_activation("y", &[1, 6], pt(0.5, 0), 20);
    w.add_op(OpCode::Requantize, &[a], &[y], &[1 << 30, -6]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(26);
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    // a = [32512, −32768, 256, −256, 0, 0]: only −32768 is at a rail (32512
    // is 0x7F00, whose high byte a byte-wise int8 count would take for 127);
    // y = a / 128 = [254, −256, 2, −2, 0, 0] clamped: 127 and −128.
    interp
        .input_mut(0)
        .unwrap()
        .copy_from_slice(&[127, -128, 1, -1, 0, 0]);
    interp.invoke().unwrap();
    assert_eq!(interp.saturated().collect::<Vec<_>>(), [1, 2]);
}

#[cfg(not(feature = "saturation-counters"))]
#[test]
fn without_saturation_counters_the_model_still_runs() {
    let buf = aligned(double_then_halve());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    interp
        .input_mut(0)
        .unwrap()
        .copy_from_slice(&[0, 63, 64, -64, -65, 100]);
    interp.invoke().unwrap();
    assert_eq!(interp.output(0).unwrap(), &[0, 63, 63, -64, -64, 63]);
}

/// fc_lut_softmax's decision on its golden input (probabilities
/// [37, 73, 146] / 256: class 2 leads by 73/256 ≈ 0.285) with `margin`
/// stored as the abstain margin.
fn golden_decision(margin: Option<&str>) -> Result<(Option<f32>, Decision), Error> {
    let mut w = fc_lut_softmax();
    if let Some(m) = margin {
        w.set_metadata(MetaKey::AbstainMargin, m);
    }
    let buf = AlignedBuf::from_slice(&w.finish_unvalidated().unwrap());
    let model = Model::parse(buf.as_slice())?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan)?;
    interp.input_mut(0)?.copy_from_slice(&[2, 3, 4, 5]);
    interp.invoke()?;
    Ok((model.abstain_margin(), interp.decision()?))
}

#[test]
fn below_the_stored_abstain_margin_the_decision_is_uncertain() {
    assert_eq!(golden_decision(None), Ok((None, Decision::Class(2))));
    assert_eq!(
        golden_decision(Some("0.25")),
        Ok((Some(0.25), Decision::Class(2)))
    );
    assert_eq!(
        golden_decision(Some("0.3")),
        Ok((Some(0.3), Decision::Uncertain))
    );
    // 73/256 = 0.28515625 exactly: at the margin is a class.
    assert_eq!(
        golden_decision(Some("0.285156")),
        Ok((Some(0.285156), Decision::Class(2)))
    );
    assert_eq!(
        golden_decision(Some("0.285157")).map(|d| d.1),
        Ok(Decision::Uncertain)
    );
}

#[test]
fn a_malformed_abstain_margin_is_refused_on_load() {
    for bad in [
        "0",
        "0.0",
        "1.0",
        "1.5",
        "-0.2",
        "0.1234567",
        "abc",
        "",
        "NaN",
        " 0.2",
    ] {
        assert_eq!(
            golden_decision(Some(bad)),
            Err(Error::BadMetadata),
            "{bad:?}"
        );
    }
}

#[test]
fn model_decide_checks_the_output_length() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    assert_eq!(model.decide(&[-91, -55, 18]), Ok(Decision::Class(2)));
    assert_eq!(
        model.decide(&[-91, -55]),
        Err(Error::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
}
