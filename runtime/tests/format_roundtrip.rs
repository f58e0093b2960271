//! Writer → reader round trips: what the writer is given, the reader gives back.

mod format_models;

use format_models::*;
use medq::format::layout::{SectionId, BUFFER_ALIGN, FORMAT_VERSION};
use medq::{
    AlignedBuf, DType, Error, Interpreter, MetaKey, Model, OpCode, Quant, QuantSpec, Storage,
    Writer,
};

#[test]
fn accessors_return_what_was_written() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();

    assert_eq!(model.format_version(), FORMAT_VERSION);
    assert_eq!(model.arena_len(), 7);
    assert_eq!(model.tensor_count(), 10);
    assert_eq!(model.op_count(), 3);
    assert_eq!(model.inputs(), &[0]);
    assert_eq!(model.outputs(), &[9]);

    let x = model.input_info(0).unwrap();
    assert_eq!(x.name, "x");
    assert_eq!((x.dtype, x.storage), (DType::I8, Storage::Arena));
    assert_eq!(x.dims(), &[1, 4]);
    assert_eq!((x.offset, x.len, x.numel()), (0, 4, 4));
    assert_eq!(
        x.quant,
        Quant::PerTensor {
            scale: 0.5,
            zero_point: 1
        }
    );
    assert_eq!(x.data(), None);

    let w = model.tensor(1).unwrap();
    assert_eq!(w.name, "fc.weight");
    assert_eq!(w.storage, Storage::Constant);
    assert_eq!(w.dims(), &[3, 4]);
    assert_eq!(w.data_i8().unwrap(), &[1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1]);
    assert_eq!(
        w.quant,
        Quant::PerChannel {
            axis: 0,
            scales: &[0.25, 0.5, 0.125]
        }
    );
    assert_eq!(w.offset % 16, 0);

    let bias = model.tensor(2).unwrap();
    assert_eq!((bias.dtype, bias.quant), (DType::I32, Quant::None));
    assert_eq!(bias.data_i32().unwrap(), &[4, 10, 3]);
    assert_eq!(bias.data_i8(), None);

    // Per-channel shifts are i8 vectors, quantization None.
    let shift = model.tensor(4).unwrap();
    assert_eq!(shift.name, "fc.shift");
    assert_eq!((shift.dtype, shift.quant), (DType::I8, Quant::None));
    assert_eq!((shift.dims(), shift.len), (&[3][..], 3));
    assert_eq!(shift.data_i8().unwrap(), &[1, 0, 0]);

    let out = model.output_info(0).unwrap();
    assert_eq!(out.name, "probs");
    assert_eq!(out.scale_zero_point(), Some((1.0 / 256.0, -128)));

    let op = model.op(0).unwrap();
    assert_eq!(op.opcode, OpCode::FullyConnected);
    assert_eq!(op.inputs, &[0, 1, 2, 3, 4]);
    assert_eq!(op.outputs, &[5]);
    assert_eq!(op.params, &[-128, 127]);
    let op = model.op(2).unwrap();
    assert_eq!(
        (op.opcode, op.output(), op.params),
        (OpCode::Softmax, Some(9), &[1][..])
    );

    assert_eq!(model.metadata(MetaKey::ModelName), Some("tiny"));
    assert_eq!(model.metadata(MetaKey::ClassLabels), Some("a\nb\nc"));
    assert_eq!(model.metadata(MetaKey::Notes), None);
    assert_eq!(model.metadata_entries().count(), 2);
    assert_eq!(
        model.golden(),
        Some((&[2i8, 3, 4, 5][..], &[-91i8, -55, 18][..]))
    );

    assert_eq!(model.tensor(10), Err(Error::IndexOutOfRange));
    assert_eq!(model.op(3), Err(Error::IndexOutOfRange));
    assert_eq!(model.tensor(usize::MAX), Err(Error::IndexOutOfRange));
    assert_eq!(model.op(usize::MAX / 16), Err(Error::IndexOutOfRange));
    assert_eq!(model.input_info(1), Err(Error::IndexOutOfRange));
}

#[test]
fn checksum_is_crc32_iso_hdlc_over_the_file_with_the_field_zeroed() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(medq::format::file_crc32(b"123456789"), 0xCBF4_3926);
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut zeroed = buf.as_slice().to_vec();
    zeroed[12..16].fill(0);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&zeroed);
    assert_eq!(model.crc32(), crc);
    assert_eq!(&buf.as_slice()[12..16], &crc.to_le_bytes());
}

#[test]
fn writer_is_deterministic_and_aligns_sections() {
    let a = fc_lut_softmax().finish().unwrap();
    let b = fc_lut_softmax().finish().unwrap();
    assert_eq!(a, b);
    // Signed, the file has every section kind.
    let signed = medq::sign(&a, &ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
    for id in SectionId::ALL {
        let (off, _) = section(&signed, id);
        assert_eq!(off % 16, 0, "{id:?}");
    }
}

#[test]
fn interpreter_runs_fc_lut_softmax() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = [0x55u8; 7];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!((interp.input_count(), interp.output_count()), (1, 1));
    interp
        .input_mut(0)
        .unwrap()
        .copy_from_slice(&FC_LUT_SOFTMAX_INPUT);
    let mut seen = Vec::new();
    interp
        .invoke_observed(|k, t, y| seen.push((k, t, y.to_vec())))
        .unwrap();
    assert_eq!(
        seen,
        vec![
            (0, 5, FC_LUT_SOFTMAX_OUTPUTS[0].to_vec()),
            (1, 7, FC_LUT_SOFTMAX_OUTPUTS[1].to_vec()),
            (2, 9, FC_LUT_SOFTMAX_OUTPUTS[2].to_vec()),
        ]
    );
    assert_eq!(interp.output(0).unwrap(), &[-91, -55, 18]);
    assert_eq!(interp.output(1), Err(Error::IndexOutOfRange));

    // The input bytes were reused by `l`, so a second run needs a new input.
    interp.input_mut(0).unwrap().copy_from_slice(&[1, 1, 1, 1]);
    interp.invoke().unwrap();
    // x − zp = 0: acc = bias [4, 10, 3] → h = [4, 5, 2] (1.5 rounds up) → l = [−1, 0, −3]
    // → d = [1, 0, 3], e = [2^23, 2^24, 2^21], sum = 13·2^21;
    // y + 128 = floor(256·e/sum + 1/2) = floor([78.8, 157.5, 19.7] + 0.5) = [79, 158, 20].
    assert_eq!(interp.output(0).unwrap(), &[-49, 30, -108]);
}

#[test]
fn golden_self_test() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = [0u8; 16];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!(interp.self_test(), Ok(true));

    let mut w = fc_lut_softmax();
    w.set_golden(&[2, 3, 4, 5], &[-91, -55, 17]);
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!(interp.self_test(), Ok(false));

    let buf = aligned(pipeline_1d());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut big = [0u8; 64];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut big, &mut plan).unwrap();
    assert_eq!(
        interp.self_test(),
        Err(Error::MissingSection(SectionId::Golden))
    );
}

/// `y = a + b` on two int8 inputs of two values (scale 1, zero point 0),
/// with the golden pair `golden` when given.
fn two_input_add(golden: Option<(&[i8], &[i8])>) -> Writer {
    let mut w = Writer::new();
    let q = QuantSpec::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    let a = w.add_activation("a", &[2], q.clone(), 0);
    let b = w.add_activation("b", &[2], q.clone(), 2);
    let y = w.add_activation("y", &[2], q, 4);
    let one = (1 << 30, 1);
    w.add_op(
        OpCode::Add,
        &[a, b],
        &[y],
        &[0, one.0, one.1, one.0, one.1, one.0, one.1, -128, 127],
    );
    w.set_inputs(&[a, b]);
    w.set_outputs(&[y]);
    w.set_arena_len(6);
    if let Some((input, output)) = golden {
        w.set_golden(input, output);
    }
    w
}

#[test]
fn a_golden_pair_holds_every_input() {
    // Both inputs' bytes in order: a = [1, 2], b = [3, 4], y = [4, 6].
    let buf = aligned(two_input_add(Some((&[1, 2, 3, 4], &[4, 6]))));
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = [0u8; 6];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!(interp.self_test(), Ok(true));
    assert_eq!(interp.input_mut(1).unwrap(), [3, 4]);

    let buf = aligned(two_input_add(Some((&[1, 2, 3, 4], &[4, 7]))));
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    assert_eq!(interp.self_test(), Ok(false));

    // Input 0's bytes alone do not match the graph: the writer's check (the
    // reader's validation) refuses them.
    let written = two_input_add(Some((&[1, 2], &[4, 6]))).finish();
    assert_eq!(written.err(), Some(Error::BadGolden));
}

#[test]
fn arena_too_small() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = [0u8; 6];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    assert_eq!(
        Interpreter::new(&model, &mut arena, &mut plan).err(),
        Some(Error::ArenaTooSmall { needed: 7, got: 6 })
    );
}

#[test]
fn plan_too_small_and_the_op_count_read_at_compile_time() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    assert_eq!(medq::peek_op_count(buf.as_slice()), Some(3));
    assert_eq!(model.op_count(), 3);
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = [medq::PreparedOp::EMPTY; 2];
    assert_eq!(
        Interpreter::new(&model, &mut arena, &mut plan).err(),
        Some(Error::PlanTooSmall { needed: 3, got: 2 })
    );
    // Not a .mq file: no count.
    assert_eq!(medq::peek_op_count(&buf.as_slice()[..31]), None);
}

#[test]
fn ops_are_prepared_once_with_their_kernels_named() {
    let buf = aligned(fc_lut_softmax());
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = [medq::PreparedOp::EMPTY; 4];
    let interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
    let kernels: Vec<&str> = interp.ops().iter().map(|op| op.kernel()).collect();
    assert_eq!(kernels.len(), 3);
    assert!(kernels[0].starts_with("fully_connected_s8"), "{kernels:?}");
    assert_eq!(&kernels[1..], ["lut_s8", "softmax_s8"]);
    assert!(interp.ops()[0].macs() > 0);
    assert_eq!(interp.ops()[1].macs(), 0);
    // The spare entry is left as it was.
    assert_eq!(plan[3].kernel(), "");
}

#[test]
fn misaligned_and_wrong_length_buffers_are_refused() {
    let bytes = fc_lut_softmax().finish().unwrap();
    const { assert!(BUFFER_ALIGN > 1) };
    let shifted = AlignedBuf::from_slice(&[&[0u8][..], &bytes[..]].concat());
    assert_eq!(
        Model::parse(&shifted.as_slice()[1..]).err(),
        Some(Error::Misaligned)
    );
    let longer = AlignedBuf::from_slice(&[&bytes[..], &[0u8][..]].concat());
    assert_eq!(
        Model::parse(longer.as_slice()).err(),
        Some(Error::TrailingBytes)
    );
    let shorter = AlignedBuf::from_slice(&bytes[..bytes.len() - 1]);
    assert_eq!(
        Model::parse(shorter.as_slice()).err(),
        Some(Error::Truncated)
    );
    assert_eq!(Model::parse(&[]).err(), Some(Error::Truncated));
}

#[test]
fn include_model_is_aligned_and_peek_is_const() {
    static EMBEDDED: &[u8] = medq::include_model!("format_roundtrip.rs");
    assert_eq!(EMBEDDED.as_ptr() as usize % 16, 0);
    assert_eq!(EMBEDDED, include_bytes!("format_roundtrip.rs"));

    const HEADER: [u8; 32] = {
        let mut h = [0u8; 32];
        h[0] = b'M';
        h[1] = b'E';
        h[2] = b'D';
        h[3] = b'Q';
        h[8] = 32;
        h[20] = 0x34;
        h[21] = 0x12;
        h
    };
    const ARENA: usize = match medq::peek_arena_len(&HEADER) {
        Some(n) => n,
        None => panic!("bad header"),
    };
    assert_eq!(ARENA, 0x1234);

    let bytes = fc_lut_softmax().finish().unwrap();
    assert_eq!(medq::peek_arena_len(&bytes), Some(7));
    assert_eq!(medq::peek_arena_len(&bytes[1..]), None);
}

#[test]
fn unknown_metadata_keys_are_kept_but_ignored() {
    let mut w = fc_lut_softmax();
    w.set_metadata_raw(1000, "from the future");
    w.set_metadata(MetaKey::Notes, "first");
    w.set_metadata(MetaKey::Notes, "second");
    let buf = aligned(w);
    let model = Model::parse(buf.as_slice()).unwrap();
    assert_eq!(model.metadata(MetaKey::Notes), Some("second"));
    let all: Vec<_> = model.metadata_entries().collect();
    assert!(all.contains(&(1000, "from the future")));
    assert_eq!(all.len(), 4);
}

#[test]
fn writer_reports_misuse_at_finish() {
    let mut w = fc_lut_softmax();
    w.add_constant_i8("bad", &[2, 2], QuantSpec::None, &[1, 2, 3]);
    assert_eq!(
        w.finish(),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 3
        })
    );

    let mut w = Writer::new();
    w.add_activation("deep", &[1; 7], QuantSpec::None, 0);
    assert_eq!(w.finish(), Err(Error::LimitExceeded));

    // finish() validates; finish_unvalidated() does not. Tensor 5 (h) ends at byte 7.
    let mut w = fc_lut_softmax();
    w.set_arena_len(6);
    assert!(matches!(
        w.clone().finish(),
        Err(Error::BadTensor { index: 5, .. })
    ));
    let bytes = w.finish_unvalidated().unwrap();
    let buf = AlignedBuf::from_slice(&bytes);
    assert!(matches!(
        Model::parse(buf.as_slice()),
        Err(Error::BadTensor { index: 5, .. })
    ));
}

#[test]
fn writer_refuses_more_than_u16_tensors() {
    let mut w = Writer::new();
    let mut last = 0;
    for i in 0..u16::MAX as usize {
        last = w.add_constant_i8("", &[], QuantSpec::None, &[i as i8]);
    }
    assert_eq!(last, u16::MAX - 1);
    assert_eq!(w.add_constant_i8("", &[], QuantSpec::None, &[0]), u16::MAX);
    assert_eq!(w.finish_unvalidated(), Err(Error::LimitExceeded));
}

#[test]
fn file_loading_round_trip() {
    let bytes = fc_lut_softmax().finish().unwrap();
    let path = std::env::temp_dir().join(format!("medq-roundtrip-{}.mq", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let file = medq::ModelFile::open(&path);
    std::fs::remove_file(&path).unwrap();
    let file = file.unwrap();
    assert_eq!(file.bytes(), &bytes[..]);
    let model = file.model().unwrap();
    assert_eq!(model.metadata(MetaKey::ModelName), Some("tiny"));
}

/// `ModelFile::open` checks the header before it reads (or allocates for)
/// the rest: a 64 GiB file (sparse, so the test costs nothing) that starts
/// like a `.mq` of another version, or declares another length, is refused
/// at once instead of being read into memory.
#[test]
fn open_refuses_a_huge_file_from_its_header() {
    let path = std::env::temp_dir().join(format!("medq-huge-{}.mq", std::process::id()));
    let huge = 64u64 << 30;
    let write = |bytes: &[u8]| {
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, bytes).unwrap();
        f.set_len(huge).unwrap();
    };
    write(b"MEDQ\0\0\0\0");
    let e = medq::ModelFile::open(&path).unwrap_err();
    assert!(
        matches!(e, medq::LoadError::Format(Error::UnsupportedVersion(0))),
        "{e:?}"
    );
    // A valid header (of a real file) declares its own length.
    let bytes = fc_lut_softmax().finish().unwrap();
    write(&bytes);
    let e = medq::ModelFile::open(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(e, medq::LoadError::Format(Error::TrailingBytes)),
        "{e:?}"
    );
}
