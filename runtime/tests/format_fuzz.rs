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

/// The two models with their Conv and FullyConnected weights stored
/// `storage` (sparse, powers of two).
fn packed_files(storage: Storage) -> [Vec<u8>; 2] {
    [
        fc_lut_softmax_stored(storage).finish().unwrap(),
        pipeline_1d_stored(storage).finish().unwrap(),
    ]
}

/// Every test model: the two dense ones, then each stored sparse, as powers
/// of two and as both (4- and 3-bit codes), then (with int16 activations built in) the int16
/// ones.
fn every_file() -> Vec<Vec<u8>> {
    let mut files = vec![fc_file(), pipeline_file()];
    files.extend(packed_files(Storage::Sparse));
    files.extend(packed_files(Storage::Pow2));
    files.extend(packed_files(Storage::SparsePow2));
    files.extend(packed_files(Storage::SparsePow2x3));
    if cfg!(feature = "int16-activations") {
        files.push(int16_pipeline().finish().unwrap());
        files.push(int16_softmax().finish().unwrap());
        files.push(int16_residual_stream(15).finish().unwrap());
        files.push(int16_concat(3).finish().unwrap());
    }
    files
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
    // Every output, int8 or int16, through the path for either type.
    for i in 0..interp.output_count() {
        let n = model.output_info(i).map_or(0, |t| t.numel());
        interp
            .output_f32(i, &mut vec![0.0; n])
            .expect("a validated output reads back");
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

/// A value to write into a file.
#[derive(Clone, Copy, Debug)]
enum Put {
    U8(u8),
    U16(u16),
    U32(u32),
}
use Put::{U16, U32, U8};

/// `file` with every `(offset, value)` written, CRC fixed.
fn patched_all(file: &[u8], patches: &[(usize, Put)]) -> AlignedBuf {
    let mut buf = AlignedBuf::from_slice(file);
    let b = buf.as_mut_slice();
    for &(off, v) in patches {
        match v {
            U8(v) => b[off] = v,
            U16(v) => put_u16(b, off, v),
            U32(v) => put_u32(b, off, v),
        }
    }
    fix_crc(b);
    buf
}

fn patched(file: &[u8], off: usize, v: Put) -> AlignedBuf {
    patched_all(file, &[(off, v)])
}

/// The record a `BadTensor` or `BadOp` refusal blames.
#[derive(Debug, PartialEq)]
enum Culprit {
    Tensor(usize),
    Op(usize),
}
use Culprit::{Op, Tensor};

fn assert_blames(buf: &AlignedBuf, want: Culprit, what: &str) {
    let got = parse_err(buf);
    let culprit = match got {
        Some(Error::BadTensor { index, .. }) => Some(Tensor(index.into())),
        Some(Error::BadOp { index, .. }) => Some(Op(index.into())),
        _ => None,
    };
    assert_eq!(culprit, Some(want), "{what}: got {got:?}");
}

/// The little-endian `u32` at `off`, as an offset.
fn offset_at(b: &[u8], off: usize) -> usize {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize
}

// ---- Exhaustive corruption ------------------------------------------------

#[test]
fn every_single_byte_change_is_refused() {
    for file in every_file() {
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
    let [sparse_fc, _] = packed_files(Storage::Sparse);
    let [pow2_fc, _] = packed_files(Storage::Pow2);
    let [sparse_pow2_fc, _] = packed_files(Storage::SparsePow2);
    let [sparse_pow2x3_fc, _] = packed_files(Storage::SparsePow2x3);
    for file in [
        fc_file(),
        sparse_fc,
        pow2_fc,
        sparse_pow2_fc,
        sparse_pow2x3_fc,
    ] {
        for n in 0..file.len() {
            let buf = AlignedBuf::from_slice(&file[..n]);
            assert!(parse_err(&buf).is_some(), "prefix of {n} bytes accepted");
        }
    }
}

#[test]
fn single_byte_patches_with_fixed_crc_never_panic() {
    // Every byte set to a few values, CRC recomputed: whatever validates must run.
    let mut accepted = 0;
    for file in every_file() {
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
    use section_entry::{ID, LEN, OFFSET, RESERVED};
    use SectionId as S;
    let f = fc_file();
    let count = header::SECTION_COUNT;
    refuses!(patched(&f, count, U16(17)), Error::BadSectionTable);
    refuses!(
        patched(&f, count, U16(0)),
        Error::MissingSection(S::Tensors)
    );

    let (t_off, t_len) = section(&f, S::Tensors);
    let p_len = section(&f, S::Params).1 as u32;
    // One case a line.
    #[rustfmt::skip]
    let cases = [
        (S::Ops, ID, 99, Error::UnknownSection(99)),
        (S::Ops, ID, 1, Error::DuplicateSection(S::Tensors)),
        (S::Golden, ID, 3, Error::DuplicateSection(S::OpIo)),
        (S::Tensors, RESERVED, 1, Error::BadSectionTable),
        (S::Tensors, OFFSET, t_off as u32 + 4, Error::SectionOutOfBounds(S::Tensors)),
        (S::Tensors, OFFSET, 16, Error::SectionOutOfBounds(S::Tensors)),
        (S::Golden, LEN, u32::MAX, Error::SectionOutOfBounds(S::Golden)),
        // Growing Tensors by a record makes it overlap Ops.
        (S::Tensors, LEN, t_len as u32 + 64, Error::SectionOutOfBounds(S::Ops)),
        (S::Tensors, LEN, t_len as u32 - 1, Error::BadSectionLength(S::Tensors)),
        (S::Params, LEN, p_len - 2, Error::BadSectionLength(S::Params)),
    ];
    for (id, field, v, want) in cases {
        let got = parse_err(&patched(&f, section_entry_at(&f, id) + field, U32(v)));
        assert_eq!(got, Some(want), "{id:?} entry, field {field} = {v}");
    }
    // GraphIo claims two inputs.
    let (g_off, _) = section(&f, S::GraphIo);
    refuses!(
        patched(&f, g_off, U16(2)),
        Error::BadSectionLength(S::GraphIo)
    );
    // Golden input length off by one.
    let (gold_off, _) = section(&f, S::Golden);
    refuses!(
        patched(&f, gold_off, U32(5)),
        Error::BadSectionLength(S::Golden)
    );
}

#[test]
fn tensor_fields() {
    use tensor_record as tr;
    let f = fc_file();
    let at = |t, field| tensor_field(&f, t, field);
    #[rustfmt::skip]
    let cases = [
        ("dtype", 0, tr::DTYPE, U8(9)),
        ("rank above max", 0, tr::RANK, U8(7)),
        ("rank 3 with dim 2 zero", 0, tr::RANK, U8(3)),
        ("storage", 0, tr::STORAGE, U8(2)),
        ("quant kind", 0, tr::QUANT, U8(3)),
        ("activation not quantized", 0, tr::QUANT, U8(0)),
        ("reserved", 0, tr::RESERVED + 2, U8(1)),
        ("zero dim", 0, tr::DIMS, U32(0)),
        ("unused dim", 0, tr::DIMS + 8, U32(1)),
        ("data length", 0, tr::DATA_LEN, U32(5)),
        ("dims overflow", 0, tr::DIMS + 4, U32(u32::MAX)),
        ("activation past arena", 0, tr::DATA_OFFSET, U32(4)),
        ("activation offset overflow", 0, tr::DATA_OFFSET, U32(u32::MAX)),
        ("scale NaN", 0, tr::SCALE, U32(0x7FC0_0000)),
        ("scale inf", 0, tr::SCALE, U32(0x7F80_0000)),
        ("scale zero", 0, tr::SCALE, U32(0)),
        ("scale negative", 0, tr::SCALE, U32((-1.0f32).to_bits())),
        ("zero point above i8", 0, tr::ZERO_POINT, U32(128)),
        ("zero point below i8", 0, tr::ZERO_POINT, U32(-129i32 as u32)),
        ("per-tensor with channels", 0, tr::CHANNEL_COUNT, U32(1)),
        ("name past strings", 0, tr::NAME_LEN, U32(10_000)),
        ("constant misaligned", 1, tr::DATA_OFFSET, U32(4)),
        ("constant past weights", 1, tr::DATA_OFFSET, U32(1 << 20)),
        ("channel count", 1, tr::CHANNEL_COUNT, U32(4)),
        ("channel axis", 1, tr::QUANT_AXIS, U8(1)),
        ("channel axis past rank", 1, tr::QUANT_AXIS, U8(5)),
        ("channel scales misaligned", 1, tr::CHANNEL_SCALES_OFFSET, U32(4)),
        ("channel scales past weights", 1, tr::CHANNEL_SCALES_OFFSET, U32(1 << 20)),
        ("per-channel with scale", 1, tr::SCALE, U32(0x3F80_0000)),
        ("unquantized with zero point", 2, tr::ZERO_POINT, U32(1)),
        ("i32 per-tensor", 2, tr::QUANT, U8(1)),
    ];
    for (what, t, field, v) in cases {
        assert_blames(&patched(&f, at(t, field), v), Tensor(t), what);
    }

    // A NaN channel scale, and a name that is not UTF-8.
    let w_off = section(&f, SectionId::Weights).0;
    let scales = w_off + offset_at(&f, at(1, tr::CHANNEL_SCALES_OFFSET));
    let nan = patched(&f, scales + 4, U32(0x7FC0_0000));
    assert_blames(&nan, Tensor(1), "channel scale NaN");
    let s_off = section(&f, SectionId::Strings).0;
    let name = s_off + offset_at(&f, at(3, tr::NAME_OFFSET));
    assert_blames(&patched(&f, name, U8(0xFF)), Tensor(3), "name not UTF-8");
}

#[test]
fn op_records_and_io() {
    use op_record as or;
    let f = fc_file();
    #[rustfmt::skip]
    let cases = [
        ("unknown opcode", 0, or::OPCODE, U8(99)),
        ("opcode of another kernel", 0, or::OPCODE, U8(OpCode::Lut as u8)),
        ("io start past the table", 0, or::IO_START, U32(1000)),
        ("io start overflow", 0, or::IO_START, U32(u32::MAX)),
        ("4 inputs", 0, or::N_INPUTS, U8(4)),
        ("2 outputs", 0, or::N_OUTPUTS, U8(2)),
        ("no output", 0, or::N_OUTPUTS, U8(0)),
        ("3 params", 0, or::N_PARAMS, U32(3)),
        ("1 param", 0, or::N_PARAMS, U32(1)),
        ("params start overflow", 2, or::PARAMS_START, U32(u32::MAX)),
    ];
    for (what, k, field, v) in cases {
        assert_blames(&patched(&f, op_field(&f, k, field), v), Op(k), what);
    }
    // Tensor indices.
    let io = |i| op_io_entry(&f, 0, i);
    #[rustfmt::skip]
    let tensor_indices = [
        ("input index past the tensors", vec![(io(0), U16(10))]),
        ("FC output redirected onto a constant", vec![(io(5), U16(1))]),
        ("FC weights and bias operands swapped", vec![(io(1), U16(2)), (io(2), U16(1))]),
    ];
    for (what, patches) in tensor_indices {
        assert_blames(&patched_all(&f, &patches), Op(0), what);
    }
}

#[test]
fn op_parameters_and_constants() {
    use medq::format::layout::params::{fully_connected as fc, softmax};
    use tensor_record as tr;
    let f = fc_file();
    let word = |k, w| param_word(&f, k, w);
    let constant = |t, i| constant_byte(&f, t, i);
    let tensor = |t, field| tensor_field(&f, t, field);
    let one = |off, v: i32| vec![(off, U32(v as u32))];
    let byte = |off, v: i8| vec![(off, U8(v as u8))];
    let two = |t, (fa, va), (fb, vb)| vec![(tensor(t, fa), U32(va)), (tensor(t, fb), U32(vb))];
    #[rustfmt::skip]
    let cases = [
        ("FC act_min above 127", one(word(0, fc::ACT_MIN), 128), 0),
        ("FC act_max below -128", one(word(0, fc::ACT_MAX), -129), 0),
        ("softmax axis = rank", one(word(2, softmax::AXIS), 2), 2),
        ("softmax axis -1", one(word(2, softmax::AXIS), -1), 2),
        // Constant operands (tensors 3 multipliers, 4 shifts, 8 exp table).
        ("FC shift 31", byte(constant(4, 0), 31), 0),
        ("FC shift -32", byte(constant(4, 1), -32), 0),
        // The shift vector as i32 [3] (its bytes, 1 0 0 and padding, read as
        // [1, 0, 0]: the layout before shifts became i8), or quantized.
        ("FC shift vector of i32", vec![(tensor(4, tr::DTYPE), U8(1)), (tensor(4, tr::DATA_LEN), U32(12))], 0),
        ("FC shift vector per-tensor", vec![(tensor(4, tr::QUANT), U8(1)), (tensor(4, tr::SCALE), U32(1f32.to_bits()))], 0),
        ("FC negative multiplier", one(constant(3, 8), -1), 0),
        ("exp table entry 0 of 0", one(constant(8, 0), 0), 2),
        ("negative exp table entry", one(constant(8, 40), -1), 2),
        // Softmax output quantization is fixed.
        ("softmax output zero point", one(tensor(9, tr::ZERO_POINT), -127), 2),
        ("softmax output scale", one(tensor(9, tr::SCALE), (1.0f32 / 128.0).to_bits() as i32), 2),
        // Shape and data length patched together.
        ("LUT table of 128 entries", two(6, (tr::DIMS, 128), (tr::DATA_LEN, 128)), 1),
        ("bias of 2 entries for 3 outputs", two(2, (tr::DIMS, 2), (tr::DATA_LEN, 8)), 0),
        ("FC output shape [1, 3] -> [3, 1]", two(5, (tr::DIMS, 3), (tr::DIMS + 4, 1)), 0),
    ];
    for (what, patches, k) in cases {
        assert_blames(&patched_all(&f, &patches), Op(k), what);
    }
}

#[test]
fn i32_shift_vectors_are_refused() {
    // Per-channel shifts are i8 constants; the same values as an i32 vector
    // (FC's in the fc file, Conv's in the pipeline) are refused, with the
    // reason when the build keeps it.
    use tensor_record as tr;
    for (f, t) in [(fc_file(), 4), (pipeline_file(), 4)] {
        let n = u32::from_le_bytes(f[tensor_field(&f, t, tr::DIMS)..][..4].try_into().unwrap());
        let patches = [
            (tensor_field(&f, t, tr::DTYPE), U8(1)),
            (tensor_field(&f, t, tr::DATA_LEN), U32(4 * n)),
        ];
        match parse_err(&patched_all(&f, &patches)) {
            Some(Error::BadOp { index: 0, reason }) => {
                if cfg!(feature = "error-reasons") {
                    assert!(reason.contains("shift vector must be an i8"), "{reason}");
                }
            }
            got => panic!("i32 shift vector of tensor {t}: {got:?}"),
        }
    }
}

#[test]
fn pipeline_op_parameters() {
    let p = pipeline_file();
    let word = |k, w| param_word(&p, k, w);
    use medq::format::layout::params;
    use params::{add, concat, conv, mul, pad, pool};
    #[rustfmt::skip]
    let cases = [
        ("conv stride 0", 0, conv::STRIDE_W, 0),
        ("conv 1-D stride h", 0, conv::STRIDE_H, 2),
        ("conv 1-D pad top", 0, conv::PAD_TOP, 1),
        ("conv dilation 0", 0, conv::DILATION_W, 0),
        ("conv dilation makes output shorter", 0, conv::DILATION_W, 2),
        ("conv negative pad", 0, conv::PAD_LEFT, -1),
        ("conv pad changes output length", 0, conv::PAD_RIGHT, 2),
        ("conv groups 0", 0, conv::GROUPS, 0),
        ("conv groups 2 (weights have 2 input channels)", 0, conv::GROUPS, 2),
        ("conv groups 3", 0, conv::GROUPS, 3),
        ("conv act_min > act_max", 0, conv::ACT_MAX, -1),
        ("maxpool count_include_pad", 1, pool::COUNT_INCLUDE_PAD, 1),
        ("maxpool kernel 0", 1, pool::KERNEL_W, 0),
        ("maxpool kernel too big", 1, pool::KERNEL_W, 5),
        ("maxpool stride changes output", 1, pool::STRIDE_W, 1),
        ("add left shift", 3, add::LEFT_SHIFT, 21),
        ("add negative left shift", 3, add::LEFT_SHIFT, -1),
        ("add shift", 3, add::A_SHIFT, 31),
        ("add out shift", 3, add::OUT_SHIFT, -32),
        ("add negative multiplier", 3, add::B_MULTIPLIER, -1),
        ("concat axis", 4, concat::AXIS, 2),
        ("concat axis 0", 4, concat::AXIS, 0),
        ("concat shift", 4, concat::COUNT_FIXED + 1, 40),
        ("pad value", 5, pad::VALUE, 128),
        ("pad negative", 5, pad::PADS + 1, -1),
        ("pad wrong total", 5, pad::PADS + 3, 2),
        ("mul multiplier", 6, mul::OUT_MULTIPLIER, -5),
        ("mul act", 6, mul::ACT_MAX, 128),
        ("avgpool count_include_pad 2", 8, pool::COUNT_INCLUDE_PAD, 2),
        ("avgpool dilation", 8, pool::DILATION_W, 0),
    ];
    for (what, k, w, v) in cases {
        assert_blames(&patched(&p, word(k, w), U32(v as u32)), Op(k), what);
    }
    let zp = tensor_field(&p, 15, tensor_record::ZERO_POINT);
    let what = "Reshape output quantization differs from its input's";
    assert_blames(&patched(&p, zp, U32(1)), Op(7), what);
    let what = "1-D conv with a [1, C, L] input but 2-D padding on top";
    let pad_bottom = word(0, conv::PAD_BOTTOM);
    assert_blames(&patched(&p, pad_bottom, U32(1)), Op(0), what);
}

#[test]
fn arena_plan() {
    let (f, p) = (fc_file(), pipeline_file());
    let cases = [
        // l (7) onto h (5): h is read by the op that writes l.
        (&f, 7, 4, (5, 7)),
        // probs (9) onto l (7): l is read by the op that writes probs.
        (&f, 9, 0, (7, 9)),
        // h (5) onto x (0), by one byte: x is read by the op that writes h.
        (&f, 5, 3, (0, 5)),
        // The in-place Reshape, shifted by one byte: no longer exact.
        (&p, 7, 17, (6, 7)),
        // Mul (not an in-place op) written exactly over its input.
        (&p, 14, 32, (12, 14)),
        // Conv's output c (5) over x (0), alive together at step 0.
        (&p, 5, 4, (0, 5)),
    ];
    for (file, t, v, (a, b)) in cases {
        let off = tensor_field(file, t, tensor_record::DATA_OFFSET);
        let got = parse_err(&patched(file, off, U32(v)));
        assert_eq!(got, Some(Error::PlanOverlap { a, b }), "tensor {t} at {v}");
    }
    let offset = |t| tensor_field(&p, t, tensor_record::DATA_OFFSET);
    // Graph output avg (16) over x (0): x is dead by then.
    assert!(Model::parse(patched(&p, offset(16), U32(0)).as_slice()).is_ok());
    // The second Reshape made in place while its input stays alive? m (14)
    // is read only by it, so placing m3 over m is a valid in-place plan.
    assert!(Model::parse(patched(&p, offset(15), U32(40)).as_slice()).is_ok());
}

#[test]
fn in_place_reshape_runs_correctly() {
    // Same model as the pipeline with the second Reshape made in place too.
    let p = pipeline_file();
    let buf = patched_u32(&p, tensor_field(&p, 15, tensor_record::DATA_OFFSET), 40);
    let model = Model::parse(buf.as_slice()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp = Interpreter::new(&model, &mut arena, &mut plan).unwrap();
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
    let bad_io: [fn(&mut Writer); 4] = [
        |w| w.set_outputs(&[]),
        |w| w.set_inputs(&[0, 0]),
        |w| w.set_outputs(&[1]),
        |w| w.set_outputs(&[100]),
    ];
    for (i, edit) in bad_io.into_iter().enumerate() {
        let got = graph_variant(edit);
        assert!(matches!(got, Some(Error::BadGraph(_))), "case {i}: {got:?}");
    }
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
    let v_off = offset_at(&f, m_off + meta_record::VALUE_OFFSET);
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
