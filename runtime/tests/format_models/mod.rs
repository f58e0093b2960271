//! Small models written with the `Writer`, shared by the format and
//! interpreter tests, and helpers to patch fields of a written file.
#![allow(dead_code)]

use medq::format::layout::{
    header, op_record, section_entry, tensor_record, SectionId, HEADER_LEN,
};
use medq::{AlignedBuf, MetaKey, OpCode, QuantSpec, Writer};

/// `(m, s)` pairs for exact real multipliers.
pub const ONE: (i32, i32) = (1 << 30, 1);
pub const HALF: (i32, i32) = (1 << 30, 0);
pub const QUARTER: (i32, i32) = (1 << 30, -1);

pub fn pt(scale: f32, zero_point: i32) -> QuantSpec {
    QuantSpec::PerTensor { scale, zero_point }
}

/// A per-channel shift vector: an `i8` constant `[n]`, quantization None.
pub fn add_shifts(w: &mut Writer, name: &str, shifts: &[i32]) -> u16 {
    let s: Vec<i8> = shifts.iter().map(|&v| i8::try_from(v).unwrap()).collect();
    w.add_constant_i8(name, &[s.len()], QuantSpec::None, &s)
}

/// `exp_table[d] = 2^24 >> d`: the exponential for an input scale of ln 2.
pub fn halving_exp_table() -> Vec<i32> {
    (0..256)
        .map(|d| if d < 25 { (1 << 24) >> d } else { 0 })
        .collect()
}

/// x [1, 4] (zp 1) → FullyConnected → h [1, 3] → Lut (v − 5) → l [1, 3] →
/// Softmax → s [1, 3]. Arena: x [0, 4), h [4, 7), l reuses x's bytes
/// [0, 3), s reuses h's bytes [4, 7).
///
/// With x = [2, 3, 4, 5] (reals 1, 2, 3, 4):
/// - FC rows `[1,0,0,0]`, `[0,1,0,0]`, `[1,1,1,1]`, bias `[4, 10, 3]`:
///   acc = [5, 12, 13]; multipliers 1, 0.5, 0.5 → h = [5, 6, 7] (6.5 rounds up).
/// - Lut: l = [0, 1, 2].
/// - Softmax with the halving table: e = [2^22, 2^23, 2^24], sum = 7·2^22,
///   y + 128 = floor((256·e + sum/2) / sum) = [37, 73, 146] → s = [−91, −55, 18].
pub fn fc_lut_softmax() -> Writer {
    fc_lut_softmax_stored(Storage::Dense)
}

/// How a test model stores its Conv and FullyConnected weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Dense,
    /// Bitmap and non-zero values (`Storage::SparseConstant`): the same
    /// model, the same outputs.
    Sparse,
    /// 4-bit power-of-two codes (`Storage::Pow2Constant`): every test
    /// model's Conv and FullyConnected weights are 0 or ±2^e.
    Pow2,
    /// Bitmap and 4-bit power-of-two codes for the non-zero weights
    /// (`Storage::SparsePow2Constant`).
    SparsePow2,
    /// Bitmap and 3-bit power-of-two codes for the non-zero weights
    /// (`Storage::SparsePow2x3Constant`), after moving every non-zero weight
    /// to the four top powers (`w·8`, at most 64 in magnitude): a model of
    /// the same shape but other outputs, so not in [`Storage::ALL`], which
    /// compares outputs across storages.
    SparsePow2x3,
}

impl Storage {
    pub const ALL: [Storage; 4] = [
        Storage::Dense,
        Storage::Sparse,
        Storage::Pow2,
        Storage::SparsePow2,
    ];

    /// The Conv kernels a model stored so may run (dense: not a packed
    /// one): decoded blocks on an optimized dense kernel, or the packed
    /// reference kernel where no optimized kernel takes the shape.
    pub fn conv_kernels(self) -> Option<[&'static str; 2]> {
        match self {
            Storage::Dense => None,
            Storage::Sparse => Some(["conv_sparse_blocks", "conv_sparse_s8"]),
            Storage::Pow2 => Some(["conv_pow2_blocks", "conv_pow2_s8"]),
            Storage::SparsePow2 => Some(["conv_sparse_pow2_blocks", "conv_sparse_pow2_s8"]),
            Storage::SparsePow2x3 => Some(["conv_sparse_pow2x3_blocks", "conv_sparse_pow2x3_s8"]),
        }
    }
}

/// Conv or FullyConnected weights, stored as `storage` says.
pub fn add_weights(
    w: &mut Writer,
    storage: Storage,
    name: &str,
    dims: &[usize],
    quant: QuantSpec,
    data: &[i8],
) -> u16 {
    match storage {
        Storage::Dense => w.add_constant_i8(name, dims, quant, data),
        Storage::Sparse => w.add_sparse_constant_i8(name, dims, quant, data),
        Storage::Pow2 => w.add_pow2_constant_i8(name, dims, quant, data),
        Storage::SparsePow2 => w.add_sparse_pow2_constant_i8(name, dims, quant, data),
        Storage::SparsePow2x3 => {
            let top: Vec<i8> = data
                .iter()
                .map(|&v| v.saturating_mul(8).clamp(-64, 64))
                .collect();
            w.add_sparse_pow2x3_constant_i8(name, dims, quant, &top)
        }
    }
}

/// [`fc_lut_softmax`] with its weights stored as `storage` says.
pub fn fc_lut_softmax_stored(storage: Storage) -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 4], pt(0.5, 1), 0);
    let weights = add_weights(
        &mut w,
        storage,
        "fc.weight",
        &[3, 4],
        QuantSpec::PerChannel {
            axis: 0,
            scales: vec![0.25, 0.5, 0.125],
        },
        &[1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1],
    );
    let bias = w.add_constant_i32("fc.bias", &[3], &[4, 10, 3]);
    let mult = w.add_constant_i32("fc.multiplier", &[3], &[ONE.0, HALF.0, HALF.0]);
    let shift = add_shifts(&mut w, "fc.shift", &[ONE.1, HALF.1, HALF.1]);
    let h = w.add_activation("h", &[1, 3], pt(0.25, 0), 4);
    w.add_op(
        OpCode::FullyConnected,
        &[x, weights, bias, mult, shift],
        &[h],
        &[-128, 127],
    );
    let table: Vec<i8> = (-128..=127)
        .map(|v: i32| (v - 5).clamp(-128, 127) as i8)
        .collect();
    let lut = w.add_constant_i8("lut.table", &[256], QuantSpec::None, &table);
    let l = w.add_activation("l", &[1, 3], pt(std::f32::consts::LN_2, 0), 0);
    w.add_op(OpCode::Lut, &[h, lut], &[l], &[]);
    let exp = w.add_constant_i32("softmax.exp", &[256], &halving_exp_table());
    let s = w.add_activation("probs", &[1, 3], pt(1.0 / 256.0, -128), 4);
    w.add_op(OpCode::Softmax, &[l, exp], &[s], &[1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[s]);
    w.set_arena_len(7);
    w.set_metadata(MetaKey::ModelName, "tiny");
    w.set_metadata(MetaKey::ClassLabels, "a\nb\nc");
    w.set_golden(&[2, 3, 4, 5], &[-91, -55, 18]);
    w
}

pub const FC_LUT_SOFTMAX_INPUT: [i8; 4] = [2, 3, 4, 5];
pub const FC_LUT_SOFTMAX_OUTPUTS: [&[i8]; 3] = [&[5, 6, 7], &[0, 1, 2], &[-91, -55, 18]];

/// A 1-D pipeline through every other op, all scales 1 and zero points 0
/// unless noted. Activations each get their own bytes except the in-place
/// Reshape. Values (derived by hand in the comments):
///
/// - x [1, 2, 4] = ch0 [1, 2, 3, 4], ch1 [0, 1, 0, −1].
/// - Conv, kernel 3, pads 1/1, ReLU (act_min 0): oc0 sums ch0 over the window
///   = [3, 6, 9, 7]; oc1 = 2·ch1 + 1 = [1, 3, 1, −1] → ReLU [1, 3, 1, 0].
/// - MaxPool k2 s2: [[6, 9], [3, 1]].
/// - Reshape to [1, 4] in place: [6, 9, 3, 1].
/// - Add the constant [1, −1, 0, 10] with left shift 2, multipliers 1, 1 and
///   output multiplier 0.25: [7, 8, 3, 11].
/// - Concat on axis 1 with the constant [1, 2] = [100, −100] (scale 0.5) at multiplier
///   0.5: [7, 8, 3, 11, 50, −50].
/// - Pad [0, 1] / [0, 1] with −7: [−7, 7, 8, 3, 11, 50, −50, −7].
/// - Mul by the rank-0 constant 2: [−14, 14, 16, 6, 22, 100, −100, −14].
/// - Reshape (copy) to [1, 1, 8], AvgPool k2 s2:
///   [0, 11, 61, −57] (−114/2 = −57, 22/2 = 11, 122/2 = 61).
pub fn pipeline_1d() -> Writer {
    pipeline_1d_stored(Storage::Dense)
}

/// [`pipeline_1d`] with its Conv weights stored as `storage` says.
pub fn pipeline_1d_stored(storage: Storage) -> Writer {
    let q = || pt(1.0, 0);
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 4], q(), 0);
    let cw = add_weights(
        &mut w,
        storage,
        "conv.weight",
        &[2, 2, 1, 3],
        QuantSpec::PerTensor {
            scale: 1.0,
            zero_point: 0,
        },
        &[1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0],
    );
    let cb = w.add_constant_i32("conv.bias", &[2], &[0, 1]);
    let cm = w.add_constant_i32("conv.multiplier", &[2], &[ONE.0, ONE.0]);
    let cs = add_shifts(&mut w, "conv.shift", &[ONE.1, ONE.1]);
    let c = w.add_activation("c", &[1, 2, 4], q(), 8);
    // stride h/w, dilation h/w, pads top/left/bottom/right, groups, act.
    w.add_op(
        OpCode::Conv,
        &[x, cw, cb, cm, cs],
        &[c],
        &[1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 127],
    );
    let p = w.add_activation("p", &[1, 2, 2], q(), 16);
    w.add_op(
        OpCode::MaxPool,
        &[c],
        &[p],
        &[1, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0],
    );
    let r = w.add_activation("r", &[1, 4], q(), 16);
    w.add_op(OpCode::Reshape, &[p], &[r], &[]);
    let k = w.add_constant_i8("add.b", &[4], q(), &[1, -1, 0, 10]);
    let s = w.add_activation("s", &[1, 4], q(), 20);
    w.add_op(
        OpCode::Add,
        &[r, k],
        &[s],
        &[
            2, ONE.0, ONE.1, ONE.0, ONE.1, QUARTER.0, QUARTER.1, -128, 127,
        ],
    );
    let k2 = w.add_constant_i8("concat.b", &[1, 2], pt(0.5, 0), &[100, -100]);
    let cat = w.add_activation("cat", &[1, 6], q(), 24);
    w.add_op(
        OpCode::Concat,
        &[s, k2],
        &[cat],
        &[1, ONE.0, ONE.1, HALF.0, HALF.1],
    );
    let padded = w.add_activation("padded", &[1, 8], q(), 32);
    w.add_op(OpCode::Pad, &[cat], &[padded], &[-7, 0, 1, 0, 1]);
    let two = w.add_constant_i8("mul.b", &[], q(), &[2]);
    let m = w.add_activation("m", &[1, 8], q(), 40);
    w.add_op(
        OpCode::Mul,
        &[padded, two],
        &[m],
        &[ONE.0, ONE.1, -128, 127],
    );
    let m3 = w.add_activation("m3", &[1, 1, 8], q(), 48);
    w.add_op(OpCode::Reshape, &[m], &[m3], &[]);
    let avg = w.add_activation("avg", &[1, 1, 4], q(), 56);
    w.add_op(
        OpCode::AvgPool,
        &[m3],
        &[avg],
        &[1, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0],
    );
    w.set_inputs(&[x]);
    w.set_outputs(&[avg]);
    w.set_arena_len(60);
    w
}

pub const PIPELINE_INPUT: [i8; 8] = [1, 2, 3, 4, 0, 1, 0, -1];
pub const PIPELINE_OUTPUTS: [&[i8]; 9] = [
    &[3, 6, 9, 7, 1, 3, 1, 0],
    &[6, 9, 3, 1],
    &[6, 9, 3, 1],
    &[7, 8, 3, 11],
    &[7, 8, 3, 11, 50, -50],
    &[-7, 7, 8, 3, 11, 50, -50, -7],
    &[-14, 14, 16, 6, 22, 100, -100, -14],
    &[-14, 14, 16, 6, 22, 100, -100, -14],
    &[0, 11, 61, -57],
];

/// The bytes of a writer's file in an aligned buffer.
pub fn aligned(w: Writer) -> AlignedBuf {
    AlignedBuf::from_slice(&w.finish().expect("test model must validate"))
}

// ---- Patching a written file ----------------------------------------------

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the header CRC after a patch.
pub fn fix_crc(b: &mut [u8]) {
    put_u32(b, header::CRC32, 0);
    let crc = medq::format::file_crc32(b);
    put_u32(b, header::CRC32, crc);
}

/// Byte offset of the section table entry for `id`.
pub fn section_entry_at(b: &[u8], id: SectionId) -> usize {
    let count =
        u16::from_le_bytes([b[header::SECTION_COUNT], b[header::SECTION_COUNT + 1]]) as usize;
    (0..count)
        .map(|i| HEADER_LEN + 16 * i)
        .find(|&e| u32_at(b, e + section_entry::ID) == id as u32)
        .expect("section present")
}

/// `(offset, len)` of section `id`.
pub fn section(b: &[u8], id: SectionId) -> (usize, usize) {
    let e = section_entry_at(b, id);
    (
        u32_at(b, e + section_entry::OFFSET) as usize,
        u32_at(b, e + section_entry::LEN) as usize,
    )
}

/// Byte offset of field `field` of tensor record `t`.
pub fn tensor_field(b: &[u8], t: usize, field: usize) -> usize {
    section(b, SectionId::Tensors).0 + 64 * t + field
}

/// Byte offset of field `field` of op record `k`.
pub fn op_field(b: &[u8], k: usize, field: usize) -> usize {
    section(b, SectionId::Ops).0 + 16 * k + field
}

/// Byte offset of parameter word `w` of op `k`.
pub fn param_word(b: &[u8], k: usize, w: usize) -> usize {
    let start = u32_at(b, op_field(b, k, op_record::PARAMS_START)) as usize;
    section(b, SectionId::Params).0 + 4 * (start + w)
}

/// Byte offset of io entry `i` (inputs then outputs) of op `k`.
pub fn op_io_entry(b: &[u8], k: usize, i: usize) -> usize {
    let start = u32_at(b, op_field(b, k, op_record::IO_START)) as usize;
    section(b, SectionId::OpIo).0 + 2 * (start + i)
}

/// Byte offset of element `i` of the data of constant tensor `t`.
pub fn constant_byte(b: &[u8], t: usize, i: usize) -> usize {
    section(b, SectionId::Weights).0
        + u32_at(b, tensor_field(b, t, tensor_record::DATA_OFFSET)) as usize
        + i
}

/// A copy of `file` with the u32 at `off` replaced and the CRC fixed.
pub fn patched_u32(file: &[u8], off: usize, v: u32) -> AlignedBuf {
    let mut b = AlignedBuf::from_slice(file);
    put_u32(b.as_mut_slice(), off, v);
    fix_crc(b.as_mut_slice());
    b
}

/// A copy of `file` with the byte at `off` replaced and the CRC fixed.
pub fn patched_u8(file: &[u8], off: usize, v: u8) -> AlignedBuf {
    let mut b = AlignedBuf::from_slice(file);
    b.as_mut_slice()[off] = v;
    fix_crc(b.as_mut_slice());
    b
}

// ---- Int16 activations ------------------------------------------------------

/// The int16 pipeline's Conv: weights `[3, 2, 3]` (±127 included), bias,
/// per-channel multipliers and shifts.
pub const I16_CONV_W: [i8; 18] = [
    127, -127, 64, 3, 0, -5, //
    -1, 2, -3, 127, 127, 127, //
    0, 0, 1, -127, 50, -50,
];
pub const I16_CONV_BIAS: [i32; 3] = [100_000, -50_000, 7];
pub const I16_CONV_MULT: [i32; 3] = [1 << 30, 1_518_500_250, (1 << 30) + 12_345];
pub const I16_CONV_SHIFT: [i32; 3] = [-7, -9, -7];
/// The FullyConnected: weights `[4, 9]`.
pub const I16_FC_W: [i8; 36] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, //
    -127, 127, -127, 127, -127, 127, -127, 127, -127, //
    0, 0, 0, 0, 127, 0, 0, 0, 0, //
    10, -20, 30, -40, 50, -60, 70, -80, 90,
];
pub const I16_FC_BIAS: [i32; 4] = [0, 1 << 20, -(1 << 21), 12_345];
pub const I16_FC_MULT: [i32; 4] = [1 << 30, 1 << 30, 1_700_000_000, 1_100_000_000];
pub const I16_FC_SHIFT: [i32; 4] = [-3, -6, -2, -4];
/// Requantize word pairs: int8 → int16 multiplies by 256, int16 → int8
/// divides by 128.
pub const I16_UP: (i32, i32) = (1 << 30, 9);
pub const I16_DOWN: (i32, i32) = (1 << 30, -6);
pub const I16_CONV_PARAMS: [i32; 11] = [1, 1, 1, 2, 0, 2, 0, 2, 1, -12_000, 32_767];
pub const I16_POOL_PARAMS: [i32; 11] = [1, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0];

/// x i8 `[1, 2, 6]` (zp 3) → Requantize (×256) → a i16 `[1, 2, 6]` → Conv
/// (kernel 3, dilation 2, pads 2/2, act [−12000, 32767]) → b i16 `[1, 3, 6]`
/// → MaxPool k2 s2 → c i16 `[1, 3, 3]` → Reshape in place → d i16 `[1, 9]`
/// → FullyConnected → e i16 `[1, 4]` → Requantize (/128, zp −5) → y i8
/// `[1, 4]`. Arena: x [0, 12), a [16, 40), b [40, 76), c and d [80, 98),
/// e [100, 108), y [112, 116).
pub fn int16_pipeline() -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 6], pt(0.05, 3), 0);
    let s16 = 0.05 / 256.0;
    let a = w.add_activation_i16("a", &[1, 2, 6], pt(s16, 0), 16);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    let cw = w.add_constant_i8(
        "conv.weight",
        &[3, 2, 3],
        QuantSpec::PerChannel {
            axis: 0,
            scales: vec![0.01, 0.02, 0.03],
        },
        &I16_CONV_W,
    );
    let cb = w.add_constant_i32("conv.bias", &[3], &I16_CONV_BIAS);
    let cm = w.add_constant_i32("conv.multiplier", &[3], &I16_CONV_MULT);
    let cs = add_shifts(&mut w, "conv.shift", &I16_CONV_SHIFT);
    let b = w.add_activation_i16("b", &[1, 3, 6], pt(s16 * 4.0, 0), 40);
    w.add_op(OpCode::Conv, &[a, cw, cb, cm, cs], &[b], &I16_CONV_PARAMS);
    let c = w.add_activation_i16("c", &[1, 3, 3], pt(s16 * 4.0, 0), 80);
    w.add_op(OpCode::MaxPool, &[b], &[c], &I16_POOL_PARAMS);
    let d = w.add_activation_i16("d", &[1, 9], pt(s16 * 4.0, 0), 80);
    w.add_op(OpCode::Reshape, &[c], &[d], &[]);
    let fw = w.add_constant_i8("fc.weight", &[4, 9], pt(0.01, 0), &I16_FC_W);
    let fb = w.add_constant_i32("fc.bias", &[4], &I16_FC_BIAS);
    let fm = w.add_constant_i32("fc.multiplier", &[4], &I16_FC_MULT);
    let fs = add_shifts(&mut w, "fc.shift", &I16_FC_SHIFT);
    let e = w.add_activation_i16("e", &[1, 4], pt(s16 * 8.0, 0), 100);
    w.add_op(
        OpCode::FullyConnected,
        &[d, fw, fb, fm, fs],
        &[e],
        &[-32768, 32767],
    );
    let y = w.add_activation("y", &[1, 4], pt(s16 * 8.0 * 128.0, -5), 112);
    w.add_op(OpCode::Requantize, &[e], &[y], &[I16_DOWN.0, I16_DOWN.1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(116);
    w
}

pub const I16_PIPELINE_INPUT: [i8; 12] = [127, -128, 0, 5, -7, 100, 3, 3, -128, 127, 50, -50];

/// Scale of the int16 Softmax input: 1/4096 (a distance of 65535 is 16).
pub const I16_SOFTMAX_SCALE: f32 = 1.0 / 4096.0;

/// The int16 Softmax's exp table, computed here independently of
/// `medq::ops::softmax_exp_table_s16`: `2^24 · exp(−d·s)` for the low byte,
/// `2^24 · exp(−256·h·s)` for the high byte.
pub fn int16_exp_table(scale: f32) -> Vec<i32> {
    let e = |steps: f64| ((-steps * scale as f64).exp() * 16_777_216.0).round() as i32;
    (0..256)
        .map(|d| e(d as f64))
        .chain((0..256).map(|h| e(256.0 * h as f64)))
        .collect()
}

/// x i8 `[1, 6]` (scale 1/16, zp 0) → Requantize (×256) → a i16 `[1, 6]`
/// (scale 1/4096) → Softmax (axis 1, the 512-entry table) → y i8 `[1, 6]`.
pub fn int16_softmax() -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 6], pt(I16_SOFTMAX_SCALE * 256.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 6], pt(I16_SOFTMAX_SCALE, 0), 8);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    let t = w.add_constant_i32("exp", &[512], &int16_exp_table(I16_SOFTMAX_SCALE));
    let y = w.add_activation("y", &[1, 6], pt(1.0 / 256.0, -128), 20);
    w.add_op(OpCode::Softmax, &[a, t], &[y], &[1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(26);
    w
}

/// The residual stream in int16: x i8 → Requantize → a i16; s = a + x
/// (i16, an int8 operand beside the int16 one); n = LayerNorm(s) (i8);
/// r = ReduceSum(s) over the last axis (i16, a graph output); u = |s|/2 by
/// an int16 table (i16, a graph output).
pub fn int16_residual_stream(left_shift: i32) -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 4], pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 2, 4], pt(1.0 / 256.0, 0), 16);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    // s at scale 1/128: a (1/256) and x (1) brought to twice the larger
    // scale, 2, with 15 fraction bits: a·2^15·(1/512), x·2^15·½, then
    // ·(2 · 128 / 2^15) = 2^-7 onto s's scale.
    let s = w.add_activation_i16("s", &[1, 2, 4], pt(1.0 / 128.0, 0), 32);
    let add = [
        left_shift,
        1 << 30,
        -8,
        1 << 30,
        0,
        1 << 30,
        -6,
        -32768,
        32767,
    ];
    w.add_op(OpCode::Add, &[a, x], &[s], &add);
    let g = w.add_constant_i8("gamma", &[4], pt(1.0, 0), &[1, 1, 1, -1]);
    let bias = w.add_constant_i32("bias", &[4], &[0; 4]);
    let mult = w.add_constant_i32("mult", &[4], &[1 << 30; 4]);
    let shift = add_shifts(&mut w, "shift", &[-6; 4]);
    let n = w.add_activation("n", &[1, 2, 4], pt(1.0, 0), 48);
    w.add_op(
        OpCode::LayerNorm,
        &[s, g, bias, mult, shift],
        &[n],
        &[2, 0, 0, -128, 127],
    );
    let r = w.add_activation_i16("r", &[1, 2, 1], pt(1.0 / 32.0, 0), 64);
    w.add_op(
        OpCode::ReduceSum,
        &[s],
        &[r],
        &[0b100, 1 << 30, -1, -32768, 32767],
    );
    // u = |s| / 2 by an int16 table: t[k] = |k − 256| · 64, straight
    // between entries.
    let table: Vec<i32> = (0..513).map(|k: i32| (k - 256).abs() * 64).collect();
    let t = w.add_constant_i32("table", &[513], &table);
    let u = w.add_activation_i16("u", &[1, 2, 4], pt(1.0 / 256.0, 0), 80);
    w.add_op(OpCode::Lut, &[s, t], &[u], &[]);
    w.set_inputs(&[x]);
    w.set_outputs(&[n, r, u]);
    w.set_arena_len(128);
    w
}

/// x i8 `[1, 2, 4]` (scale 1) → Requantize → a i16 (scale 1/256, a = 256·x);
/// then Concat on axis 2 of `[a, x]` twice: into y, int16 at scale 1/256,
/// and into z, int8 at scale 1 (zero point `zz`).
pub fn int16_concat(zz: i32) -> Writer {
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 4], pt(1.0, 0), 0);
    let a = w.add_activation_i16("a", &[1, 2, 4], pt(1.0 / 256.0, 0), 16);
    w.add_op(OpCode::Requantize, &[x], &[a], &[I16_UP.0, I16_UP.1]);
    // Onto 1/256: a as it is (m = 2^30, s = 1 is ×1), x ×256 (s = 9).
    let y = w.add_activation_i16("y", &[1, 2, 8], pt(1.0 / 256.0, 0), 32);
    w.add_op(OpCode::Concat, &[a, x], &[y], &[2, 1 << 30, 1, 1 << 30, 9]);
    // Onto 1: a ×1/256 (s = −7), x as it is.
    let z = w.add_activation("z", &[1, 2, 8], pt(1.0, zz), 64);
    w.add_op(OpCode::Concat, &[a, x], &[z], &[2, 1 << 30, -7, 1 << 30, 1]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y, z]);
    w.set_arena_len(128);
    w
}

pub const I16_SOFTMAX_INPUT: [i8; 6] = [127, -128, 0, 126, 100, -5];
