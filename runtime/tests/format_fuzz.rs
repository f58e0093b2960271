//! Hostile input: the reader must refuse every broken file with the right
//! error and never panic, and whatever it accepts must run without panicking.

mod format_models;

use format_models::*;
use medq::format::layout::{
    header, meta_record, op_record, section_entry, tensor_record, SectionId, HEADER_LEN,
};
use medq::{AlignedBuf, Error, Interpreter, Model, OpCode, QuantSpec, Writer};
use proptest::prelude::*;

fn fc_file() -> Vec<u8> {
    fc_lut_softmax().finish().unwrap()
}

fn pipeline_file() -> Vec<u8> {
    pipeline_1d().finish().unwrap()
}

fn parse_err(buf: &AlignedBuf) -> Option<Error> {
    Model::parse(buf.as_slice()).err()
}

/// Parses `bytes` and, if accepted, runs the model on arbitrary input.
fn parse_and_run(bytes: &[u8]) -> bool {
    let buf = AlignedBuf::from_slice(bytes);
    let Ok(model) = Model::parse(buf.as_slice()) else {
        return false;
    };
    // A hostile header may ask for a huge arena; the arena size is the
    // caller's decision, so only run models of sane size.
    if model.arena_len() > 1 << 20 {
        return true;
    }
    let mut arena = vec![0x33u8; model.arena_len()];
    let mut interp = Interpreter::new(&model, &mut arena).unwrap();
    for i in 0..interp.input_count() {
        for (j, v) in interp.input_mut(i).unwrap().iter_mut().enumerate() {
            *v = (j as i8).wrapping_mul(37);
        }
    }
    interp
        .invoke()
        .expect("a validated model cannot fail to run");
    for i in 0..interp.output_count() {
        interp.output(i).unwrap();
    }
    true
}

macro_rules! refuses {
    ($buf:expr, $pat:pat) => {{
        let got = parse_err(&$buf);
        assert!(
            matches!(got, Some($pat)),
            "expected {}, got {:?}",
            stringify!($pat),
            got
        );
    }};
}

// ---- Exhaustive corruption ------------------------------------------------

#[test]
fn every_single_byte_change_is_refused() {
    for file in [fc_file(), pipeline_file()] {
        for i in 0..file.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut buf = AlignedBuf::from_slice(&file);
                buf.as_mut_slice()[i] ^= x;
                assert!(parse_err(&buf).is_some(), "byte {i} ^ {x:#x} accepted");
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let file = fc_file();
    for n in 0..file.len() {
        let buf = AlignedBuf::from_slice(&file[..n]);
        assert!(parse_err(&buf).is_some(), "prefix of {n} bytes accepted");
    }
}

#[test]
fn single_byte_patches_with_fixed_crc_never_panic() {
    // Every byte set to a few values, CRC recomputed: whatever validates must run.
    let mut accepted = 0;
    for file in [fc_file(), pipeline_file()] {
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
    }
    // Constant data (weights, tables, names) can change without breaking a
    // rule; those models must have run above.
    assert!(
        accepted > 1000,
        "only {accepted} patched files were accepted"
    );
}

// ---- Specific fields, CRC fixed -------------------------------------------

#[test]
fn header_fields() {
    let f = fc_file();
    refuses!(patched_u8(&f, 0, b'X'), Error::BadMagic);
    refuses!(
        patched_u32(&f, header::VERSION, 2),
        Error::UnsupportedVersion(2)
    );
    let hl = patched_u32(&f, header::VERSION, 1 | (33 << 16));
    refuses!(hl, Error::BadHeader);
    refuses!(patched_u8(&f, header::FLAGS, 1), Error::BadHeader);
    refuses!(patched_u8(&f, header::RESERVED + 7, 1), Error::BadHeader);
    refuses!(
        patched_u32(&f, header::FILE_LEN, f.len() as u32 + 1),
        Error::Truncated
    );
    refuses!(
        patched_u32(&f, header::FILE_LEN, f.len() as u32 - 1),
        Error::TrailingBytes
    );
    // The CRC itself.
    let mut b = AlignedBuf::from_slice(&f);
    b.as_mut_slice()[header::CRC32] ^= 1;
    refuses!(b, Error::ChecksumMismatch { .. });
    // Arena too short for tensor 5 (h ends at 7).
    refuses!(
        patched_u32(&f, header::ARENA_LEN, 6),
        Error::BadTensor { index: 5, .. }
    );
}

#[test]
fn section_table_fields() {
    let f = fc_file();
    let count = header::SECTION_COUNT;
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), count, 17);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadSectionTable);
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), count, 0);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::MissingSection(SectionId::Tensors));

    let tensors = section_entry_at(&f, SectionId::Tensors);
    let ops = section_entry_at(&f, SectionId::Ops);
    let golden = section_entry_at(&f, SectionId::Golden);
    let (t_off, t_len) = section(&f, SectionId::Tensors);
    refuses!(
        patched_u32(&f, ops + section_entry::ID, 99),
        Error::UnknownSection(99)
    );
    refuses!(
        patched_u32(&f, ops + section_entry::ID, 1),
        Error::DuplicateSection(SectionId::Tensors)
    );
    refuses!(
        patched_u32(&f, golden + section_entry::ID, 3),
        Error::DuplicateSection(SectionId::OpIo)
    );
    refuses!(
        patched_u32(&f, tensors + section_entry::RESERVED, 1),
        Error::BadSectionTable
    );
    refuses!(
        patched_u32(&f, tensors + section_entry::OFFSET, t_off as u32 + 4),
        Error::SectionOutOfBounds(SectionId::Tensors)
    );
    refuses!(
        patched_u32(&f, tensors + section_entry::OFFSET, 16),
        Error::SectionOutOfBounds(SectionId::Tensors)
    );
    refuses!(
        patched_u32(&f, golden + section_entry::LEN, u32::MAX),
        Error::SectionOutOfBounds(SectionId::Golden)
    );
    // Growing Tensors by a record makes it overlap Ops.
    refuses!(
        patched_u32(&f, tensors + section_entry::LEN, t_len as u32 + 64),
        Error::SectionOutOfBounds(SectionId::Ops)
    );
    refuses!(
        patched_u32(&f, tensors + section_entry::LEN, t_len as u32 - 1),
        Error::BadSectionLength(SectionId::Tensors)
    );
    let params = section_entry_at(&f, SectionId::Params);
    let p_len = section(&f, SectionId::Params).1 as u32;
    refuses!(
        patched_u32(&f, params + section_entry::LEN, p_len - 2),
        Error::BadSectionLength(SectionId::Params)
    );
    // GraphIo claims two inputs.
    let (g_off, _) = section(&f, SectionId::GraphIo);
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), g_off, 2);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadSectionLength(SectionId::GraphIo));
    // Golden input length off by one.
    let (gold_off, _) = section(&f, SectionId::Golden);
    refuses!(
        patched_u32(&f, gold_off, 5),
        Error::BadSectionLength(SectionId::Golden)
    );
}

#[test]
fn tensor_fields() {
    let f = fc_file();
    let at = |t, field| tensor_field(&f, t, field);
    let bad = |t: u16| move |e: Option<Error>| matches!(e, Some(Error::BadTensor { index, .. }) if index == t);
    let cases: Vec<(&str, AlignedBuf, u16)> = vec![
        ("dtype", patched_u8(&f, at(0, tensor_record::DTYPE), 9), 0),
        (
            "rank above max",
            patched_u8(&f, at(0, tensor_record::RANK), 7),
            0,
        ),
        (
            "rank 3 with dim 2 zero",
            patched_u8(&f, at(0, tensor_record::RANK), 3),
            0,
        ),
        (
            "storage",
            patched_u8(&f, at(0, tensor_record::STORAGE), 2),
            0,
        ),
        (
            "quant kind",
            patched_u8(&f, at(0, tensor_record::QUANT), 3),
            0,
        ),
        (
            "activation not quantized",
            patched_u8(&f, at(0, tensor_record::QUANT), 0),
            0,
        ),
        (
            "reserved",
            patched_u8(&f, at(0, tensor_record::RESERVED + 2), 1),
            0,
        ),
        (
            "zero dim",
            patched_u32(&f, at(0, tensor_record::DIMS), 0),
            0,
        ),
        (
            "unused dim",
            patched_u32(&f, at(0, tensor_record::DIMS + 8), 1),
            0,
        ),
        (
            "data length",
            patched_u32(&f, at(0, tensor_record::DATA_LEN), 5),
            0,
        ),
        (
            "dims overflow",
            patched_u32(&f, at(0, tensor_record::DIMS + 4), u32::MAX),
            0,
        ),
        (
            "activation past arena",
            patched_u32(&f, at(0, tensor_record::DATA_OFFSET), 4),
            0,
        ),
        (
            "activation offset overflow",
            patched_u32(&f, at(0, tensor_record::DATA_OFFSET), u32::MAX),
            0,
        ),
        (
            "scale NaN",
            patched_u32(&f, at(0, tensor_record::SCALE), 0x7FC0_0000),
            0,
        ),
        (
            "scale inf",
            patched_u32(&f, at(0, tensor_record::SCALE), 0x7F80_0000),
            0,
        ),
        (
            "scale zero",
            patched_u32(&f, at(0, tensor_record::SCALE), 0),
            0,
        ),
        (
            "scale negative",
            patched_u32(&f, at(0, tensor_record::SCALE), (-1.0f32).to_bits()),
            0,
        ),
        (
            "zero point above i8",
            patched_u32(&f, at(0, tensor_record::ZERO_POINT), 128),
            0,
        ),
        (
            "zero point below i8",
            patched_u32(&f, at(0, tensor_record::ZERO_POINT), -129i32 as u32),
            0,
        ),
        (
            "per-tensor with channels",
            patched_u32(&f, at(0, tensor_record::CHANNEL_COUNT), 1),
            0,
        ),
        (
            "name past strings",
            patched_u32(&f, at(0, tensor_record::NAME_LEN), 10_000),
            0,
        ),
        (
            "constant misaligned",
            patched_u32(&f, at(1, tensor_record::DATA_OFFSET), 4),
            1,
        ),
        (
            "constant past weights",
            patched_u32(&f, at(1, tensor_record::DATA_OFFSET), 1 << 20),
            1,
        ),
        (
            "channel count",
            patched_u32(&f, at(1, tensor_record::CHANNEL_COUNT), 4),
            1,
        ),
        (
            "channel axis",
            patched_u8(&f, at(1, tensor_record::QUANT_AXIS), 1),
            1,
        ),
        (
            "channel axis past rank",
            patched_u8(&f, at(1, tensor_record::QUANT_AXIS), 5),
            1,
        ),
        (
            "channel scales misaligned",
            patched_u32(&f, at(1, tensor_record::CHANNEL_SCALES_OFFSET), 4),
            1,
        ),
        (
            "channel scales past weights",
            patched_u32(&f, at(1, tensor_record::CHANNEL_SCALES_OFFSET), 1 << 20),
            1,
        ),
        (
            "per-channel with scale",
            patched_u32(&f, at(1, tensor_record::SCALE), 0x3F80_0000),
            1,
        ),
        (
            "unquantized with zero point",
            patched_u32(&f, at(2, tensor_record::ZERO_POINT), 1),
            2,
        ),
        (
            "i32 per-tensor",
            patched_u8(&f, at(2, tensor_record::QUANT), 1),
            2,
        ),
    ];
    for (what, buf, t) in cases {
        let got = parse_err(&buf);
        assert!(bad(t)(got), "{what}: got {got:?}");
    }

    // A NaN channel scale, and a name that is not UTF-8.
    let w_off = section(&f, SectionId::Weights).0;
    let scales = w_off
        + u32::from_le_bytes(
            f[at(1, tensor_record::CHANNEL_SCALES_OFFSET)..][..4]
                .try_into()
                .unwrap(),
        ) as usize;
    refuses!(
        patched_u32(&f, scales + 4, 0x7FC0_0000),
        Error::BadTensor { index: 1, .. }
    );
    let s_off = section(&f, SectionId::Strings).0;
    let name = s_off
        + u32::from_le_bytes(
            f[at(3, tensor_record::NAME_OFFSET)..][..4]
                .try_into()
                .unwrap(),
        ) as usize;
    refuses!(
        patched_u8(&f, name, 0xFF),
        Error::BadTensor { index: 3, .. }
    );
}

#[test]
fn op_records_and_io() {
    let f = fc_file();
    refuses!(
        patched_u8(&f, op_field(&f, 0, op_record::OPCODE), 99),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u8(&f, op_field(&f, 0, op_record::OPCODE), OpCode::Lut as u8),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, op_field(&f, 0, op_record::IO_START), 1000),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, op_field(&f, 0, op_record::IO_START), u32::MAX),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u8(&f, op_field(&f, 0, op_record::N_INPUTS), 4),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u8(&f, op_field(&f, 0, op_record::N_OUTPUTS), 2),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u8(&f, op_field(&f, 0, op_record::N_OUTPUTS), 0),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, op_field(&f, 0, op_record::N_PARAMS), 3),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, op_field(&f, 0, op_record::N_PARAMS), 1),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, op_field(&f, 2, op_record::PARAMS_START), u32::MAX),
        Error::BadOp { index: 2, .. }
    );
    // Tensor indices.
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), op_io_entry(&f, 0, 0), 10);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 0, .. });
    // FC output redirected onto a constant.
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), op_io_entry(&f, 0, 5), 1);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 0, .. });
    // Swapping FC's weights and bias operands.
    let mut b = AlignedBuf::from_slice(&f);
    put_u16(b.as_mut_slice(), op_io_entry(&f, 0, 1), 2);
    put_u16(b.as_mut_slice(), op_io_entry(&f, 0, 2), 1);
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 0, .. });
}

#[test]
fn op_parameters_and_constants() {
    let f = fc_file();
    let word = |k, w| param_word(&f, k, w);
    refuses!(
        patched_u32(&f, word(0, 0), 128),
        Error::BadOp { index: 0, .. }
    ); // act_min > 127
    refuses!(
        patched_u32(&f, word(0, 1), -129i32 as u32),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, word(2, 0), 2),
        Error::BadOp { index: 2, .. }
    ); // softmax axis = rank
    refuses!(
        patched_u32(&f, word(2, 0), -1i32 as u32),
        Error::BadOp { index: 2, .. }
    );
    // Constant operands: shift 31, negative multiplier, exp table entries.
    refuses!(
        patched_u32(&f, constant_byte(&f, 4, 0), 31),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, constant_byte(&f, 4, 4), -32i32 as u32),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, constant_byte(&f, 3, 8), -1i32 as u32),
        Error::BadOp { index: 0, .. }
    );
    refuses!(
        patched_u32(&f, constant_byte(&f, 8, 0), 0),
        Error::BadOp { index: 2, .. }
    );
    refuses!(
        patched_u32(&f, constant_byte(&f, 8, 40), -1i32 as u32),
        Error::BadOp { index: 2, .. }
    );
    // Softmax output quantization is fixed.
    refuses!(
        patched_u32(
            &f,
            tensor_field(&f, 9, tensor_record::ZERO_POINT),
            -127i32 as u32
        ),
        Error::BadOp { index: 2, .. }
    );
    refuses!(
        patched_u32(
            &f,
            tensor_field(&f, 9, tensor_record::SCALE),
            (1.0f32 / 128.0).to_bits()
        ),
        Error::BadOp { index: 2, .. }
    );
    // A LUT table of 128 entries (shape and length patched together).
    let mut b = AlignedBuf::from_slice(&f);
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 6, tensor_record::DIMS),
        128,
    );
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 6, tensor_record::DATA_LEN),
        128,
    );
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 1, .. });
    // A bias of 2 entries for 3 outputs.
    let mut b = AlignedBuf::from_slice(&f);
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 2, tensor_record::DIMS),
        2,
    );
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 2, tensor_record::DATA_LEN),
        8,
    );
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 0, .. });
    // The FC output shape [1, 3] → [3, 1].
    let mut b = AlignedBuf::from_slice(&f);
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 5, tensor_record::DIMS),
        3,
    );
    put_u32(
        b.as_mut_slice(),
        tensor_field(&f, 5, tensor_record::DIMS + 4),
        1,
    );
    fix_crc(b.as_mut_slice());
    refuses!(b, Error::BadOp { index: 0, .. });
}

#[test]
fn pipeline_op_parameters() {
    let p = pipeline_file();
    let word = |k, w| param_word(&p, k, w);
    use medq::format::layout::params;
    let cases: Vec<(&str, usize, usize, i32)> = vec![
        ("conv stride 0", 0, params::conv::STRIDE_W, 0),
        ("conv 1-D stride h", 0, params::conv::STRIDE_H, 2),
        ("conv 1-D pad top", 0, params::conv::PAD_TOP, 1),
        ("conv dilation 0", 0, params::conv::DILATION_W, 0),
        (
            "conv dilation makes output shorter",
            0,
            params::conv::DILATION_W,
            2,
        ),
        ("conv negative pad", 0, params::conv::PAD_LEFT, -1),
        (
            "conv pad changes output length",
            0,
            params::conv::PAD_RIGHT,
            2,
        ),
        ("conv groups 0", 0, params::conv::GROUPS, 0),
        (
            "conv groups 2 (weights have 2 input channels)",
            0,
            params::conv::GROUPS,
            2,
        ),
        ("conv groups 3", 0, params::conv::GROUPS, 3),
        ("conv act_min > act_max", 0, params::conv::ACT_MAX, -1),
        (
            "maxpool count_include_pad",
            1,
            params::pool::COUNT_INCLUDE_PAD,
            1,
        ),
        ("maxpool kernel 0", 1, params::pool::KERNEL_W, 0),
        ("maxpool kernel too big", 1, params::pool::KERNEL_W, 5),
        (
            "maxpool stride changes output",
            1,
            params::pool::STRIDE_W,
            1,
        ),
        ("add left shift", 3, params::add::LEFT_SHIFT, 21),
        ("add negative left shift", 3, params::add::LEFT_SHIFT, -1),
        ("add shift", 3, params::add::A_SHIFT, 31),
        ("add out shift", 3, params::add::OUT_SHIFT, -32),
        ("add negative multiplier", 3, params::add::B_MULTIPLIER, -1),
        ("concat axis", 4, params::concat::AXIS, 2),
        ("concat axis 0", 4, params::concat::AXIS, 0),
        ("concat shift", 4, params::concat::COUNT_FIXED + 1, 40),
        ("pad value", 5, params::pad::VALUE, 128),
        ("pad negative", 5, params::pad::PADS + 1, -1),
        ("pad wrong total", 5, params::pad::PADS + 3, 2),
        ("mul multiplier", 6, params::mul::OUT_MULTIPLIER, -5),
        ("mul act", 6, params::mul::ACT_MAX, 128),
        (
            "avgpool count_include_pad 2",
            8,
            params::pool::COUNT_INCLUDE_PAD,
            2,
        ),
        ("avgpool dilation", 8, params::pool::DILATION_W, 0),
    ];
    for (what, k, w, v) in cases {
        let got = parse_err(&patched_u32(&p, word(k, w), v as u32));
        assert!(
            matches!(got, Some(Error::BadOp { index, .. }) if usize::from(index) == k),
            "{what}: got {got:?}"
        );
    }
    // Reshape output quantization differs from its input's.
    refuses!(
        patched_u32(&p, tensor_field(&p, 15, tensor_record::ZERO_POINT), 1),
        Error::BadOp { index: 7, .. }
    );
    // 1-D conv with a [1, C, L] input but 2-D padding on top.
    refuses!(
        patched_u32(&p, word(0, params::conv::PAD_BOTTOM), 1),
        Error::BadOp { index: 0, .. }
    );
}

#[test]
fn arena_plan() {
    let f = fc_file();
    let offset = |t| tensor_field(&f, t, tensor_record::DATA_OFFSET);
    // l (7) onto h (5): h is read by the op that writes l.
    refuses!(
        patched_u32(&f, offset(7), 4),
        Error::PlanOverlap { a: 5, b: 7 }
    );
    // probs (9) onto l (7): l is read by the op that writes probs.
    refuses!(
        patched_u32(&f, offset(9), 0),
        Error::PlanOverlap { a: 7, b: 9 }
    );
    // h (5) onto x (0), by one byte: x is read by the op that writes h.
    refuses!(
        patched_u32(&f, offset(5), 3),
        Error::PlanOverlap { a: 0, b: 5 }
    );

    let p = pipeline_file();
    let offset = |t| tensor_field(&p, t, tensor_record::DATA_OFFSET);
    // The in-place Reshape, shifted by one byte: no longer exact.
    refuses!(
        patched_u32(&p, offset(7), 17),
        Error::PlanOverlap { a: 6, b: 7 }
    );
    // Mul (not an in-place op) written exactly over its input.
    refuses!(
        patched_u32(&p, offset(14), 32),
        Error::PlanOverlap { a: 12, b: 14 }
    );
    // Graph output avg (16) over x (0): x is dead by then, but avg must not
    // be, and conv's output c (5) is alive with x at step 0.
    assert!(Model::parse(patched_u32(&p, offset(16), 0).as_slice()).is_ok());
    refuses!(
        patched_u32(&p, offset(5), 4),
        Error::PlanOverlap { a: 0, b: 5 }
    );
    // The second Reshape made in place while its input stays alive? m (14)
    // is read only by it, so placing m3 over m is a valid in-place plan.
    assert!(Model::parse(patched_u32(&p, offset(15), 40).as_slice()).is_ok());
}

#[test]
fn in_place_reshape_runs_correctly() {
    // Same model as the pipeline with the second Reshape made in place too.
    let p = pipeline_file();
    let buf = patched_u32(&p, tensor_field(&p, 15, tensor_record::DATA_OFFSET), 40);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut interp = Interpreter::new(&model, &mut arena).unwrap();
    interp
        .input_mut(0)
        .unwrap()
        .copy_from_slice(&PIPELINE_INPUT);
    interp.invoke().unwrap();
    assert_eq!(interp.output(0).unwrap(), PIPELINE_OUTPUTS[8]);
}

#[test]
fn op_order() {
    let f = fc_file();
    // Swap the Lut and Softmax records: Softmax then reads l before it exists.
    let (ops, _) = section(&f, SectionId::Ops);
    let mut b = AlignedBuf::from_slice(&f);
    let s = b.as_mut_slice();
    let (lut, softmax) = (ops + 16, ops + 32);
    let rec: Vec<u8> = s[lut..lut + 16].to_vec();
    s.copy_within(softmax..softmax + 16, lut);
    s[softmax..softmax + 16].copy_from_slice(&rec);
    fix_crc(s);
    refuses!(b, Error::NotTopological { op: 1 });
}

/// A graph-level variant of the tiny model, written without validation.
fn graph_variant(edit: impl FnOnce(&mut Writer)) -> Option<Error> {
    let mut w = fc_lut_softmax();
    edit(&mut w);
    let buf = AlignedBuf::from_slice(&w.finish_unvalidated().unwrap());
    Model::parse(buf.as_slice()).err()
}

#[test]
fn graph_rules() {
    assert_eq!(
        graph_variant(|w| w.set_inputs(&[])),
        Some(Error::BadGraph(
            "the graph needs at least one input and one output"
        ))
    );
    assert!(matches!(
        graph_variant(|w| w.set_outputs(&[])),
        Some(Error::BadGraph(_))
    ));
    assert!(matches!(
        graph_variant(|w| w.set_inputs(&[0, 0])),
        Some(Error::BadGraph(_))
    ));
    assert!(matches!(
        graph_variant(|w| w.set_outputs(&[1])),
        Some(Error::BadGraph(_))
    ));
    assert!(matches!(
        graph_variant(|w| w.set_outputs(&[100])),
        Some(Error::BadGraph(_))
    ));
    // h (5) declared a graph input although FC writes it.
    assert_eq!(
        graph_variant(|w| w.set_inputs(&[0, 5])),
        Some(Error::NotTopological { op: 0 })
    );
    // An output nothing writes.
    let never_written = graph_variant(|w| {
        let z = w.add_activation("z", &[1], pt(1.0, 0), 8);
        w.set_outputs(&[9, z]);
        w.set_arena_len(9);
    });
    assert_eq!(
        never_written,
        Some(Error::BadGraph("graph output never produced"))
    );
    // An op reading an activation nothing writes.
    let dangling = graph_variant(|w| {
        let z = w.add_activation("z", &[1, 3], pt(1.0, 0), 8);
        let y = w.add_activation("y", &[1, 3], pt(1.0, 0), 12);
        let t = w.add_constant_i8("t", &[256], QuantSpec::None, &[0; 256]);
        w.add_op(OpCode::Lut, &[z, t], &[y], &[]);
        w.set_arena_len(16);
    });
    assert_eq!(dangling, Some(Error::NotTopological { op: 3 }));
    // An activation written twice.
    let twice = graph_variant(|w| {
        let t = w.add_constant_i8("t", &[256], QuantSpec::None, &[0; 256]);
        w.add_op(OpCode::Lut, &[5, t], &[7], &[]);
    });
    assert_eq!(twice, Some(Error::NotTopological { op: 3 }));
    // Golden pair of the wrong length.
    assert_eq!(
        graph_variant(|w| w.set_golden(&[1, 2, 3], &[1, 2, 3])),
        Some(Error::BadGolden)
    );
}

#[test]
fn metadata_rules() {
    let f = fc_file();
    let (m_off, _) = section(&f, SectionId::Metadata);
    refuses!(
        patched_u32(&f, m_off + meta_record::VALUE_LEN, 1 << 20),
        Error::BadMetadata
    );
    // Two records with the same known key.
    refuses!(
        patched_u32(&f, m_off + 12 + meta_record::KEY, 1),
        Error::BadMetadata
    );
    // An unknown key is fine.
    assert!(Model::parse(patched_u32(&f, m_off + meta_record::KEY, 77).as_slice()).is_ok());
    // A value that is not UTF-8.
    let (s_off, _) = section(&f, SectionId::Strings);
    let v_off = u32::from_le_bytes(
        f[m_off + meta_record::VALUE_OFFSET..][..4]
            .try_into()
            .unwrap(),
    ) as usize;
    refuses!(patched_u8(&f, s_off + v_off, 0xC0), Error::BadMetadata);
}

// ---- Random input ---------------------------------------------------------

/// Bytes with a valid header (magic, version, lengths, CRC) and random
/// contents, so that parsing gets past the checksum.
fn with_valid_header(mut body: Vec<u8>, sections: u16) -> Vec<u8> {
    body.resize(body.len().max(HEADER_LEN), 0);
    body[..4].copy_from_slice(b"MEDQ");
    put_u16(&mut body, header::VERSION, 1);
    put_u16(&mut body, header::HEADER_LEN, HEADER_LEN as u16);
    let len = body.len() as u32;
    put_u32(&mut body, header::FILE_LEN, len);
    put_u16(&mut body, header::SECTION_COUNT, sections);
    put_u16(&mut body, header::FLAGS, 0);
    body[header::RESERVED..header::RESERVED + 8].fill(0);
    fix_crc(&mut body);
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Without the magic and a matching CRC nothing gets through.
        prop_assert!(!parse_and_run(&bytes));
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        sections in 0u16..12,
    ) {
        parse_and_run(&with_valid_header(body, sections));
    }

    /// Random words written into a valid file, CRC fixed: refused, or run.
    #[test]
    fn patched_valid_files_never_panic(
        pipeline in any::<bool>(),
        patches in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![
                Just(0u32), Just(1), Just(2), Just(0x7F), Just(0x80), Just(0xFF),
                Just(0xFFFF), Just(0x7FFF_FFFF), Just(0x8000_0000), Just(u32::MAX),
                any::<u32>(), 0u32..64,
            ], any::<bool>()),
            1..4,
        ),
    ) {
        let file = if pipeline { pipeline_file() } else { fc_file() };
        let mut buf = AlignedBuf::from_slice(&file);
        let b = buf.as_mut_slice();
        for (at, v, whole_word) in patches {
            // Past the CRC field, word-aligned for u32 writes like the records.
            let span = b.len() - 16;
            let off = 16 + at.index(span);
            if whole_word {
                let off = off & !3;
                if off + 4 <= b.len() {
                    put_u32(b, off, v);
                }
            } else {
                b[off] = v as u8;
            }
        }
        fix_crc(b);
        parse_and_run(buf.as_slice());
    }
}
