//! Runs a validated [`Model`] in a caller-provided arena, op by op, through
//! the reference kernels.
#![forbid(unsafe_code)]

use crate::error::Error;
use crate::format::layout::Storage;
use crate::format::ops::{prepare, Kernel, Prepared};
use crate::format::{Model, TensorInfo};
use crate::kernels;

/// An inference session: a model and the arena its activations live in.
///
/// The arena is plain bytes owned by the caller (a `static` buffer on a
/// device), at least [`Model::arena_len`] long. Nothing is allocated.
///
/// ```
/// # fn demo(model: &medq::Model<'_>, arena: &mut [u8]) -> Result<(), medq::Error> {
/// let mut interp = medq::Interpreter::new(model, arena)?;
/// interp.input_mut(0)?.fill(0);
/// interp.invoke()?;
/// let scores: &[i8] = interp.output(0)?;
/// # let _ = scores; Ok(()) }
/// ```
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'a>,
    arena: &'m mut [u8],
}

impl core::fmt::Debug for Interpreter<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Interpreter")
            .field("model", self.model)
            .field("arena_len", &self.arena.len())
            .finish()
    }
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// Binds `model` to `arena`; [`Error::ArenaTooSmall`] if the arena is
    /// shorter than [`Model::arena_len`]. The arena's previous contents do
    /// not matter.
    pub fn new(model: &'m Model<'a>, arena: &'m mut [u8]) -> Result<Interpreter<'m, 'a>, Error> {
        if arena.len() < model.arena_len() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_len(),
                got: arena.len(),
            });
        }
        Ok(Interpreter { model, arena })
    }

    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    pub fn input_count(&self) -> usize {
        self.model.inputs().len()
    }

    pub fn output_count(&self) -> usize {
        self.model.outputs().len()
    }

    /// The arena bytes of graph input `i`, to fill before [`invoke`](Self::invoke).
    pub fn input_mut(&mut self, i: usize) -> Result<&mut [i8], Error> {
        let info = self.model.input_info(i)?;
        let bytes = self
            .arena
            .get_mut(info.offset..info.offset + info.len)
            .ok_or(Error::IndexOutOfRange)?;
        Ok(bytemuck::cast_slice_mut(bytes))
    }

    /// The arena bytes of graph output `i`, valid after [`invoke`](Self::invoke).
    pub fn output(&self, i: usize) -> Result<&[i8], Error> {
        let info = self.model.output_info(i)?;
        activation(self.arena, &info).ok_or(Error::IndexOutOfRange)
    }

    /// Runs every op in order.
    ///
    /// Cannot fail on a model that [`Model::parse`] accepted: the same checks
    /// already passed at parse time. The `Result` is there because the op
    /// records are decoded again on each run (nothing is cached, to need no
    /// heap) and that decoding is written without panicking paths.
    pub fn invoke(&mut self) -> Result<(), Error> {
        self.invoke_observed(|_, _, _| {})
    }

    /// [`invoke`](Self::invoke), calling `observe(op_index, output_tensor,
    /// output_bytes)` after each op, e.g. to compare every layer against a
    /// float reference or to time layers.
    pub fn invoke_observed(
        &mut self,
        mut observe: impl FnMut(usize, u16, &[i8]),
    ) -> Result<(), Error> {
        for k in 0..self.model.op_count() {
            let op = self.model.op(k)?;
            let prepared = prepare(self.model, &op)?;
            run(self.model, self.arena, &prepared, op.index)?;
            let out = activation(self.arena, &prepared.output).ok_or(Error::BadOp {
                index: op.index,
                reason: why!("output outside the arena"),
            })?;
            observe(k, prepared.output.index, out);
        }
        Ok(())
    }

    /// Runs the file's golden pair, if it has one: writes the golden input
    /// into input 0, invokes, and tells whether output 0 matches bit for bit.
    /// [`Error::MissingSection`] if the file has no golden section.
    pub fn self_test(&mut self) -> Result<bool, Error> {
        use crate::format::layout::SectionId;
        let (input, expected) = self
            .model
            .golden()
            .ok_or(Error::MissingSection(SectionId::Golden))?;
        let dst = self.input_mut(0)?;
        if dst.len() != input.len() {
            return Err(Error::LengthMismatch {
                expected: dst.len(),
                got: input.len(),
            });
        }
        dst.copy_from_slice(input);
        self.invoke()?;
        Ok(self.output(0)? == expected)
    }
}

/// The bytes of activation `t` in `arena`, as `i8`.
fn activation<'x>(arena: &'x [u8], t: &TensorInfo<'_>) -> Option<&'x [i8]> {
    let end = t.offset.checked_add(t.len)?;
    arena.get(t.offset..end).map(bytemuck::cast_slice)
}

/// The arena split around one op's output: everything before it and after
/// it is readable while the output is written. The plan check guarantees an
/// op's inputs never overlap its output (in-place ops aside, which alias it
/// exactly and are handled by the op).
struct Split<'x> {
    before: &'x [u8],
    after: &'x [u8],
    after_start: usize,
    output_start: usize,
}

impl<'x> Split<'x> {
    /// An operand: a constant from the file, or an activation outside the output.
    fn operand<'a: 'x>(&self, t: &TensorInfo<'a>) -> Option<&'x [i8]> {
        if t.storage == Storage::Constant {
            return t.data_i8();
        }
        let end = t.offset.checked_add(t.len)?;
        let bytes = if end <= self.output_start {
            self.before.get(t.offset..end)?
        } else if t.offset >= self.after_start {
            self.after
                .get(t.offset - self.after_start..end - self.after_start)?
        } else {
            return None;
        };
        Some(bytemuck::cast_slice(bytes))
    }
}

fn run(model: &Model<'_>, arena: &mut [u8], prep: &Prepared<'_>, index: u16) -> Result<(), Error> {
    let bad = |reason| Error::BadOp { index, reason };
    let out = &prep.output;
    let (before, rest) = arena
        .split_at_mut_checked(out.offset)
        .ok_or(bad(why!("output outside the arena")))?;
    let (out_bytes, after) = rest
        .split_at_mut_checked(out.len)
        .ok_or(bad(why!("output outside the arena")))?;
    let split = Split {
        before,
        after,
        after_start: out.offset + out.len,
        output_start: out.offset,
    };
    let y: &mut [i8] = bytemuck::cast_slice_mut(out_bytes);

    let info = |i: usize| -> Result<TensorInfo<'_>, Error> {
        let t = prep.inputs.get(i).ok_or(bad(why!("missing input")))?;
        model.tensor(usize::from(*t))
    };
    let operand = |i: usize| -> Result<&[i8], Error> {
        split
            .operand(&info(i)?)
            .ok_or(bad(why!("input overlaps the output")))
    };

    match &prep.kernel {
        Kernel::Conv { p, requant: r } if cfg!(feature = "op-conv") => {
            kernels::conv_s8(p, operand(0)?, r.weights, r.bias, r.multiplier, r.shift, y)
        }
        Kernel::FullyConnected { p, requant: r } if cfg!(feature = "op-fully-connected") => {
            kernels::fully_connected_s8(p, operand(0)?, r.weights, r.bias, r.multiplier, r.shift, y)
        }
        Kernel::Add { p, bc } if cfg!(feature = "op-add") => {
            kernels::add_s8(p, bc, operand(0)?, operand(1)?, y)
        }
        Kernel::Mul { p, bc } if cfg!(feature = "op-mul") => {
            kernels::mul_s8(p, bc, operand(0)?, operand(1)?, y)
        }
        Kernel::Lut { table } if cfg!(feature = "op-lut") => kernels::lut_s8(table, operand(0)?, y),
        Kernel::MaxPool(p) if cfg!(feature = "op-max-pool") => {
            kernels::max_pool_s8(p, operand(0)?, y)
        }
        Kernel::AvgPool(p) if cfg!(feature = "op-avg-pool") => {
            kernels::avg_pool_s8(p, operand(0)?, y)
        }
        Kernel::Softmax { p, table } if cfg!(feature = "op-softmax") => {
            kernels::softmax_s8(p, table, operand(0)?, y)
        }
        Kernel::Concat {
            axis,
            outer,
            inner,
            out_axis_len,
            params,
        } if cfg!(feature = "op-concat") => {
            let mut start = 0usize;
            for i in 0..prep.inputs.len() {
                let x = info(i)?;
                let axis_len = x.dims().get(*axis).map_or(0, |&d| d as usize);
                let word = |w: usize| params.get(w).copied().ok_or(bad(why!("missing parameter")));
                let part = kernels::ConcatPart {
                    outer: *outer,
                    in_block: axis_len * inner,
                    out_block: out_axis_len * inner,
                    out_start: start * inner,
                    input_zero_point: x.scale_zero_point().map_or(0, |q| q.1),
                    output_zero_point: out.scale_zero_point().map_or(0, |q| q.1),
                    multiplier: word(1 + 2 * i)?,
                    shift: word(2 + 2 * i)?,
                };
                kernels::concat_part_s8(&part, operand(i)?, y);
                start += axis_len;
            }
        }
        Kernel::Pad(p) if cfg!(feature = "op-pad") => kernels::pad_s8(p, operand(0)?, y),
        Kernel::Reshape if cfg!(feature = "op-reshape") => {
            let x = info(0)?;
            // In place (the plan allows it exactly over the input): nothing to move.
            if !(x.storage == Storage::Arena && x.offset == out.offset) {
                let src = operand(0)?;
                if src.len() != y.len() {
                    return Err(bad(why!("reshape changes the length")));
                }
                y.copy_from_slice(src);
            }
        }
        Kernel::Lstm { p, wts } if cfg!(feature = "op-lstm") => {
            kernels::lstm_s8(p, wts, operand(0)?, y)
        }
        Kernel::Gru { p, wts } if cfg!(feature = "op-gru") => {
            kernels::gru_s8(p, wts, operand(0)?, y)
        }
        // `prepare` refuses ops left out of the build, so no such kernel
        // reaches here; the guards let the linker drop their code.
        _ => return Err(bad(why!("kernel not built in"))),
    }
    Ok(())
}
