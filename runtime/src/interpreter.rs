//! Runs a validated [`Model`] in caller-provided memory, op by op.
#![forbid(unsafe_code)]

use crate::decision::Decision;
use crate::error::Error;
#[cfg(feature = "int16-activations")]
use crate::format::layout::DType;
use crate::format::{Model, TensorInfo};
use crate::ops::{prepare, PreparedOp};
use crate::quant;

/// An inference session: a model, the arena its activations live in, and
/// its ops prepared once.
///
/// Both buffers belong to the caller (`static`s on a device): the arena is
/// at least [`Model::arena_len`] bytes, and the plan holds
/// [`Model::op_count`] prepared ops (start it as [`PreparedOp::EMPTY`]s).
/// Building the interpreter decodes and checks every op and chooses its
/// kernel; each [`invoke`](Self::invoke) then only runs the kernels.
/// Nothing is allocated.
///
/// An arena longer than [`Model::arena_len`] is scratch past the plan that
/// no tensor uses: a Conv whose weights are stored sparse or as powers of
/// two decodes them there for the dense kernel, in as few blocks as it
/// holds, when it is longer than the 1 KiB the kernel otherwise takes on the
/// stack (16 KiB on hosts). Each block rebuilds the dense kernel's input
/// columns, so a spare as long as the largest such conv's weights (`out ×
/// in/groups × kh × kw` bytes) runs each in one (the README has the
/// Cortex-M4 figures).
///
/// ```
/// # fn demo(model: &medq::Model<'_>, arena: &mut [u8]) -> Result<(), medq::Error> {
/// let mut plan = [medq::PreparedOp::EMPTY; 16]; // at least model.op_count()
/// let mut interp = medq::Interpreter::new(model, arena, &mut plan)?;
/// interp.input_mut(0)?.fill(0);
/// interp.invoke()?;
/// let scores: &[i8] = interp.output(0)?;
/// # let _ = scores; Ok(()) }
/// ```
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'a>,
    arena: &'m mut [u8],
    plan: &'m mut [PreparedOp<'a>],
}

impl core::fmt::Debug for Interpreter<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Interpreter")
            .field("model", self.model)
            .field("arena_len", &self.arena.len())
            .field("ops", &self.plan.len())
            .finish()
    }
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// Binds `model` to `arena` and prepares its ops into `plan`.
    ///
    /// [`Error::ArenaTooSmall`] if the arena is shorter than
    /// [`Model::arena_len`], [`Error::PlanTooSmall`] if `plan` has fewer
    /// than [`Model::op_count`] entries (extra entries are left alone),
    /// [`Error::Misaligned`] if the model has int16 activations and the
    /// arena does not start on a 2-byte boundary. The previous contents of
    /// both do not matter.
    pub fn new(
        model: &'m Model<'a>,
        arena: &'m mut [u8],
        plan: &'m mut [PreparedOp<'a>],
    ) -> Result<Interpreter<'m, 'a>, Error> {
        if arena.len() < model.arena_len() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_len(),
                got: arena.len(),
            });
        }
        let too_small = Error::PlanTooSmall {
            needed: model.op_count(),
            got: plan.len(),
        };
        // Int16 activations sit at even offsets: a 2-aligned arena holds
        // them aligned, so that `invoke` cannot fail on one.
        #[cfg(feature = "int16-activations")]
        if !(arena.as_ptr() as usize).is_multiple_of(2) && has_int16_activation(model) {
            return Err(Error::Misaligned);
        }
        let plan = plan.get_mut(..model.op_count()).ok_or(too_small)?;
        for (k, slot) in plan.iter_mut().enumerate() {
            *slot = prepare(model, &model.op(k)?)?;
        }
        Ok(Interpreter { model, arena, plan })
    }

    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// The prepared ops, in execution order: which kernel runs each
    /// ([`PreparedOp::kernel`]) and what it costs ([`PreparedOp::macs`]).
    pub fn ops(&self) -> &[PreparedOp<'a>] {
        self.plan
    }

    pub fn input_count(&self) -> usize {
        self.model.inputs().len()
    }

    pub fn output_count(&self) -> usize {
        self.model.outputs().len()
    }

    /// The arena bytes of graph input `i`, to fill before
    /// [`invoke`](Self::invoke): an int8 input's values, an int16 input's
    /// little-endian bytes (fill that with `input_i16_mut`, or
    /// [`set_input_f32`](Self::set_input_f32) for either).
    pub fn input_mut(&mut self, i: usize) -> Result<&mut [i8], Error> {
        let info = self.model.input_info(i)?;
        let bytes = self
            .arena
            .get_mut(info.offset..info.offset + info.len)
            .ok_or(Error::IndexOutOfRange)?;
        Ok(bytemuck::cast_slice_mut(bytes))
    }

    /// The values of int16 graph input `i` (symmetric, zero point 0), to
    /// fill before [`invoke`](Self::invoke); [`Error::WrongDType`] for an
    /// int8 input.
    #[cfg(feature = "int16-activations")]
    pub fn input_i16_mut(&mut self, i: usize) -> Result<&mut [i16], Error> {
        port_dtype(&self.model.input_info(i)?, DType::I16)?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(self.input_mut(i)?);
        // `new` refused an odd arena and the loader odd offsets.
        bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Misaligned)
    }

    /// The values of int8 graph output `i`, valid after
    /// [`invoke`](Self::invoke). [`Error::WrongDType`] for an int16
    /// output: read it with `output_i16` or [`output_f32`](Self::output_f32).
    pub fn output(&self, i: usize) -> Result<&[i8], Error> {
        let info = self.model.output_info(i)?;
        // Without the feature the loader admits int8 outputs only.
        #[cfg(feature = "int16-activations")]
        port_dtype(&info, DType::I8)?;
        activation(self.arena, &info).ok_or(Error::IndexOutOfRange)
    }

    /// The values of int16 graph output `i` (symmetric, zero point 0), valid
    /// after [`invoke`](Self::invoke); [`Error::WrongDType`] for an int8
    /// output.
    #[cfg(feature = "int16-activations")]
    pub fn output_i16(&self, i: usize) -> Result<&[i16], Error> {
        let info = self.model.output_info(i)?;
        port_dtype(&info, DType::I16)?;
        let bytes = self
            .arena
            .get(info.offset..info.offset + info.len)
            .ok_or(Error::IndexOutOfRange)?;
        // `new` refused an odd arena and the loader odd offsets, so this
        // never fails on a validated model.
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned)
    }

    /// Quantizes `values` into graph input `i` with the input's scale and
    /// zero point ([`quant::quantize`], the one rounding rule).
    ///
    /// [`Error::NonFiniteInput`] for a NaN or infinity (naming the first),
    /// [`Error::LengthMismatch`] unless `values` has the input's element
    /// count; on either the input is left as it was. Values outside the
    /// input's calibrated range are clipped to it and counted in the report.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<InputReport, Error> {
        let info = self.model.input_info(i)?;
        let (scale, zero_point) = port_quant(&info)?;
        #[cfg(feature = "int16-activations")]
        if info.dtype == DType::I16 {
            let input = self.input_i16_mut(i)?;
            let clipped = quant::quantize_checked(values, scale, zero_point, input)?;
            return Ok(InputReport { clipped });
        }
        let clipped = quant::quantize_checked(values, scale, zero_point, self.input_mut(i)?)?;
        Ok(InputReport { clipped })
    }

    /// Dequantizes graph output `i` into `values` (valid after
    /// [`invoke`](Self::invoke)); [`Error::LengthMismatch`] unless `values`
    /// has the output's element count.
    pub fn output_f32(&self, i: usize, values: &mut [f32]) -> Result<(), Error> {
        let info = self.model.output_info(i)?;
        let (scale, zero_point) = port_quant(&info)?;
        // Reported as the caller's slice against the output, like set_input_f32.
        if values.len() != info.numel() {
            return Err(Error::LengthMismatch {
                expected: info.numel(),
                got: values.len(),
            });
        }
        #[cfg(feature = "int16-activations")]
        if info.dtype == DType::I16 {
            return quant::dequantize_slice(self.output_i16(i)?, scale, zero_point, values);
        }
        quant::dequantize_slice(self.output(i)?, scale, zero_point, values)
    }

    /// The decision for output 0 after [`invoke`](Self::invoke): its top-1
    /// class, or [`Decision::Uncertain`] below the model's
    /// [`abstain_margin`](Model::abstain_margin) (see [`Model::decide`]).
    pub fn decision(&self) -> Result<Decision, Error> {
        #[cfg(feature = "int16-activations")]
        if self.model.output_info(0)?.dtype == DType::I16 {
            return self.model.decide_i16(self.output_i16(0)?);
        }
        self.model.decide(self.output(0)?)
    }

    /// Runs every op in order.
    ///
    /// Cannot fail once [`new`](Self::new) succeeded: every op was checked
    /// there. The `Result` is there because every access is still checked
    /// (the kernels index nothing unchecked), never to report bad data.
    pub fn invoke(&mut self) -> Result<(), Error> {
        for op in self.plan.iter_mut() {
            run_op(op, self.model, self.arena)?;
        }
        Ok(())
    }

    /// [`invoke`](Self::invoke), calling `observe(op_index, output_tensor,
    /// output_bytes)` after each op, e.g. to compare every layer against a
    /// float reference or to time layers. An int16 output comes as its
    /// little-endian bytes (two per value).
    pub fn invoke_observed(
        &mut self,
        mut observe: impl FnMut(usize, u16, &[i8]),
    ) -> Result<(), Error> {
        for (k, op) in self.plan.iter_mut().enumerate() {
            run_op(op, self.model, self.arena)?;
            let out = self.model.tensor(usize::from(op.output_tensor()))?;
            let bytes = activation(self.arena, &out).ok_or(Error::IndexOutOfRange)?;
            observe(k, op.output_tensor(), bytes);
        }
        Ok(())
    }

    /// For each op in execution order, how many of its int8 output values
    /// sat at −128 or 127 after the latest [`invoke`](Self::invoke) (feature
    /// `saturation-counters`; without it the counting is compiled out).
    /// A layer that saturates often sees activations beyond the range
    /// calibrated for it.
    #[cfg(feature = "saturation-counters")]
    pub fn saturated(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.plan.iter().map(PreparedOp::saturated)
    }

    /// Runs the file's golden pair, if it has one: writes the golden input
    /// bytes into the graph inputs in order, invokes, and tells whether
    /// output 0 matches bit for bit.
    /// [`Error::MissingSection`] if the file has no golden section.
    pub fn self_test(&mut self) -> Result<bool, Error> {
        use crate::format::layout::SectionId;
        let (input, expected) = self
            .model
            .golden()
            .ok_or(Error::MissingSection(SectionId::Golden))?;
        let mut rest = input;
        for i in 0..self.input_count() {
            let dst = self.input_mut(i)?;
            let Some((part, tail)) = rest.split_at_checked(dst.len()) else {
                return Err(Error::LengthMismatch {
                    expected: dst.len(),
                    got: rest.len(),
                });
            };
            dst.copy_from_slice(part);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(Error::BadGolden);
        }
        self.invoke()?;
        let output = activation(self.arena, &self.model.output_info(0)?);
        Ok(output == Some(expected))
    }
}

/// Runs one prepared op and, with feature `saturation-counters`, counts its
/// saturated outputs; without it this is the bare kernel call.
#[inline(always)]
fn run_op(op: &mut PreparedOp<'_>, model: &Model<'_>, arena: &mut [u8]) -> Result<(), Error> {
    op.eval(model, arena)?;
    #[cfg(feature = "saturation-counters")]
    op.count_saturated(arena);
    Ok(())
}

/// Whether any activation of `model` is int16.
#[cfg(feature = "int16-activations")]
fn has_int16_activation(model: &Model<'_>) -> bool {
    (0..model.tensor_count()).any(|i| {
        model.tensor(i).is_ok_and(|t| {
            t.storage == crate::format::layout::Storage::Arena
                && t.dtype == crate::format::layout::DType::I16
        })
    })
}

/// What [`Interpreter::set_input_f32`] did with the values it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InputReport {
    /// Values outside the input's calibrated (representable) range, clipped
    /// to −128 or 127: the model sees a less extreme input than it was given.
    pub clipped: usize,
}

/// A graph port's `(scale, zero_point)`. The validator makes every
/// activation per-tensor, so the error only keeps the accessor total.
fn port_quant(t: &TensorInfo<'_>) -> Result<(f32, i32), Error> {
    t.scale_zero_point().ok_or(Error::BadTensor {
        index: t.index,
        reason: why!("a graph port is not per-tensor quantized"),
    })
}

/// [`Error::WrongDType`] unless graph port `t` is `dtype`.
#[cfg(feature = "int16-activations")]
fn port_dtype(t: &TensorInfo<'_>, dtype: DType) -> Result<(), Error> {
    match t.dtype == dtype {
        true => Ok(()),
        false => Err(Error::WrongDType),
    }
}

/// The bytes of activation `t` in `arena`, as `i8`.
fn activation<'x>(arena: &'x [u8], t: &TensorInfo<'_>) -> Option<&'x [i8]> {
    let end = t.offset.checked_add(t.len)?;
    arena.get(t.offset..end).map(bytemuck::cast_slice)
}
