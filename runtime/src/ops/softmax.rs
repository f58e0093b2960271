//! Softmax along one axis, through the converter's 256-entry exp table (or,
//! for an int16 input, the 512-entry pair of tables).

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::softmax as w;
use crate::format::TensorInfo;
use crate::kernels::{softmax_s8, SoftmaxParams};

/// The output quantization Softmax must declare: its kernel's fixed format.
pub const SOFTMAX_OUTPUT_SCALE: f32 = 1.0 / 256.0;
pub const SOFTMAX_OUTPUT_ZERO_POINT: i32 = -128;
/// The same for an int16 output: probabilities in `[0, 1)` on 1/32768
/// steps, zero point 0 (the symmetric int16 scheme).
pub const SOFTMAX_OUTPUT_S16_SCALE: f32 = 1.0 / 32768.0;

/// A prepared Softmax.
#[derive(Clone, Copy, Debug)]
pub(super) struct Softmax<'a> {
    p: SoftmaxParams,
    x: Operand<'a>,
    table: &'a [i32; 256],
}

/// A prepared Softmax with an int16 input, output or both.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
pub(super) struct SoftmaxS16<'a> {
    p: SoftmaxParams,
    x: Operand<'a>,
    table: ExpTable<'a>,
    wide_output: bool,
}

/// The exp table of an int8 input, or the pair of tables of an int16 one.
#[cfg(feature = "int16-activations")]
#[derive(Clone, Copy, Debug)]
enum ExpTable<'a> {
    S8(&'a [i32; 256]),
    S16(&'a [i32; 512]),
}

/// Inputs `[x, exp_table i32 [256]]`; see `params::softmax`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<Softmax<'a>, Error> {
    cx.check_arity(2, w::COUNT)?;
    let (x, _) = cx.same_shape_input(0)?;
    let p = decode(cx, &x)?;
    Ok(Softmax {
        p,
        x: Operand::of(&x),
        table: table_s8(cx)?,
    })
}

/// Input 1 of an int8 input's Softmax: `i32 [256]`, `T[0] > 0`, no
/// negative entry.
fn table_s8<'a>(cx: &Ctx<'_, 'a>) -> Result<&'a [i32; 256], Error> {
    let table = cx.input(1)?;
    let table = table
        .data_i32()
        .filter(|_| table.rank() == 1)
        .and_then(|d| <&[i32; 256]>::try_from(d).ok())
        .ok_or(cx.bad(why!("exp table must be an i32 constant of shape [256]")))?;
    cx.ensure(
        table[0] > 0 && table.iter().all(|&e| e >= 0),
        why!("exp table needs table[0] > 0 and no negative entries"),
    )?;
    Ok(table)
}

/// Inputs `[x, exp_table]` with an int16 input, output or both. An int8
/// input takes the int8 table; an int16 input takes
/// [`softmax_exp_table_s16`]'s `i32 [512]`: both halves start at `2^24`
/// (`exp(0)`) and no entry is negative or above it, so a row's sum is
/// positive and cannot overflow. An int16 output is
/// [`SOFTMAX_OUTPUT_S16_SCALE`] with zero point 0.
#[cfg(feature = "int16-activations")]
#[inline(never)]
pub(super) fn prepare_s16<'a>(cx: &Ctx<'_, 'a>) -> Result<SoftmaxS16<'a>, Error> {
    use crate::format::layout::DType;
    cx.check_arity(2, w::COUNT)?;
    let x = cx.input(0)?;
    let wide_input = x.dtype == DType::I16;
    match wide_input {
        true => cx.i16_operand(&x)?,
        false => cx.i8_operand(&x).map(|_| ())?,
    }
    let wide_output = cx.output.dtype == DType::I16;
    if wide_output {
        cx.i16_operand(&cx.output)?;
    }
    cx.ensure(
        x.dims() == cx.output.dims(),
        why!("output shape differs from input shape"),
    )?;
    let p = decode(cx, &x)?;
    let table = match wide_input {
        false => ExpTable::S8(table_s8(cx)?),
        true => {
            let table = cx.input(1)?;
            let table = table
                .data_i32()
                .filter(|_| table.rank() == 1)
                .and_then(|d| <&[i32; 512]>::try_from(d).ok())
                .ok_or(cx.bad(why!(
                    "exp table of an int16 input must be an i32 constant of shape [512]"
                )))?;
            const ONE: i32 = 1 << 24;
            cx.ensure(
                table[0] == ONE
                    && table[256] == ONE
                    && table.iter().all(|&e| (0..=ONE).contains(&e)),
                why!("int16 exp table needs table[0] = table[256] = 2^24 and entries in 0..=2^24"),
            )?;
            ExpTable::S16(table)
        }
    };
    Ok(SoftmaxS16 {
        p,
        x: Operand::of(&x),
        table,
        wide_output,
    })
}

/// The output quantization and the axis, shared by both input types.
fn decode(cx: &Ctx<'_, '_>, x: &TensorInfo<'_>) -> Result<SoftmaxParams, Error> {
    let fixed = match cx.output.dtype {
        crate::format::layout::DType::I16 => (SOFTMAX_OUTPUT_S16_SCALE, 0),
        _ => (SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT),
    };
    cx.ensure(
        (cx.out_scale, cx.out_zp) == fixed,
        why!("softmax output must have scale 1/256 and zero point -128 (int16: 1/32768 and 0)"),
    )?;
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < x.rank(), why!("axis out of range"))?;
    let dims = x.dims_usize();
    Ok(SoftmaxParams {
        outer: dims.iter().take(axis).product(),
        axis_len: dims.get(axis).copied().unwrap_or(1),
        inner: dims.iter().take(x.rank()).skip(axis + 1).product(),
    })
}

#[cfg(feature = "int16-activations")]
impl SoftmaxS16<'_> {
    pub fn kernel_name(&self) -> &'static str {
        match (self.table, self.wide_output) {
            (ExpTable::S16(_), false) => "softmax_s16_s8",
            (ExpTable::S8(_), true) => "softmax_s8_s16",
            (ExpTable::S16(_), true) => "softmax_s16",
            // Not prepared as SoftmaxS16: no int16 side.
            (ExpTable::S8(_), false) => "softmax_s8",
        }
    }

    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        use crate::kernels as k;
        let p = &self.p;
        match (self.table, self.wide_output) {
            (ExpTable::S16(t), false) => {
                k::softmax_s16_s8(p, t, io.inputs.read_i16(&self.x)?, io.output)
            }
            (ExpTable::S8(t), true) => k::softmax_s8_s16(
                p,
                t,
                io.inputs.read(&self.x)?,
                super::output_i16(io.output)?,
            ),
            (ExpTable::S16(t), true) => {
                let x = io.inputs.read_i16(&self.x)?;
                k::softmax_s16(p, t, x, super::output_i16(io.output)?)
            }
            (ExpTable::S8(t), false) => softmax_s8(p, t, io.inputs.read(&self.x)?, io.output),
        }
        Ok(())
    }
}

/// The exp table of a Softmax whose input is int16 with scale
/// `input_scale` (feature `std`: it needs `f64::exp`): `T[d] = round(2^24 ·
/// exp(−d·s))` for the low byte `d` of a distance, `T[256 + h] = round(2^24
/// · exp(−256·h·s))` for its high byte `h`. The converter writes it as the
/// op's input 1; `softmax_s16_s8` multiplies the two factors of a distance.
#[cfg(all(feature = "std", feature = "int16-activations"))]
pub fn softmax_exp_table_s16(input_scale: f32) -> [i32; 512] {
    core::array::from_fn(|i| match i {
        0..256 => exp_entry(i as f64, input_scale),
        _ => exp_entry(256.0 * (i - 256) as f64, input_scale),
    })
}

/// The int8 Softmax's exp table (input 1 of an `i8` Softmax):
/// `T[d] = round(2^24 · exp(−d·s))` for the distance `d = max − x` in
/// `0..256` and the input scale `s`; the low half of
/// [`softmax_exp_table_s16`].
#[cfg(feature = "std")]
pub fn softmax_exp_table_s8(input_scale: f32) -> [i32; 256] {
    core::array::from_fn(|d| exp_entry(d as f64, input_scale))
}

/// `round(2^24 · exp(−steps · s))`: one entry of the exp tables.
#[cfg(feature = "std")]
fn exp_entry(steps: f64, input_scale: f32) -> i32 {
    ((-steps * f64::from(input_scale)).exp() * f64::from(1u32 << 24)).round() as i32
}

impl Softmax<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        softmax_s8(&self.p, self.table, x, io.output);
        Ok(())
    }
}
