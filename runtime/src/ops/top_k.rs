//! TopK: the `k` largest (or smallest) values along one axis, in order, or
//! their indices: int8, or int16 past 128 values (feature
//! `int16-activations`), as ArgMax's.

use super::{Ctx, Io, Operand};
use crate::error::Error;
use crate::format::layout::params::top_k as w;
use crate::format::Quant;
use crate::kernels::{top_k_indices_s8, top_k_s8, TopKParams};

/// What a TopK writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writes {
    Values,
    Indices,
    /// Indices as `i16`.
    #[cfg(feature = "int16-activations")]
    WideIndices,
}

/// A prepared TopK.
#[derive(Clone, Copy, Debug)]
pub(super) struct TopK<'a> {
    p: TopKParams,
    x: Operand<'a>,
    writes: Writes,
}

/// Input `[x]`; see `params::top_k`.
#[inline(never)]
pub(super) fn prepare<'a>(cx: &Ctx<'_, 'a>) -> Result<TopK<'a>, Error> {
    cx.check_arity(1, w::COUNT)?;
    let x = cx.input(0)?;
    cx.i8_operand(&x)?;
    let dims = x.dims_usize();
    let dims = dims.get(..x.rank()).unwrap_or(&[]);
    let axis = cx.size(w::AXIS, 0, why!("axis out of range"))?;
    cx.ensure(axis < dims.len(), why!("axis out of range"))?;
    let len = dims[axis];
    let k = cx.size(w::K, 1, why!("k must be at least 1"))?;
    cx.ensure(k <= len, why!("k larger than the axis"))?;
    let flag = |word: usize| match cx.word(word)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(cx.bad(why!("LARGEST and INDICES must be 0 or 1"))),
    };
    let (largest, indices) = (flag(w::LARGEST)?, flag(w::INDICES)?);
    // The output: x's dims with k along the axis.
    let y = cx.output.dims_usize();
    let y = y.get(..cx.output.rank()).unwrap_or(&[]);
    let shaped = y.len() == dims.len()
        && y.iter()
            .zip(dims)
            .enumerate()
            .all(|(d, (a, b))| if d == axis { *a == k } else { a == b });
    cx.ensure(
        shaped,
        why!("output shape is not x's with k along the axis"),
    )?;
    let writes = match indices {
        false => {
            cx.ensure(
                cx.output.quant == x.quant && cx.output.dtype == x.dtype,
                why!("TopK values must keep x's quantization"),
            )?;
            Writes::Values
        }
        true => {
            let unit = matches!(cx.output.quant, Quant::PerTensor { zero_point: 0, .. })
                && cx.out_scale == 1.0;
            cx.ensure(
                unit,
                why!("TopK indices must have scale 1 and zero point 0"),
            )?;
            index_lane(cx, len)?
        }
    };
    let p = TopKParams {
        outer: dims[..axis].iter().product(),
        len,
        inner: dims[axis + 1..].iter().product(),
        k,
        largest,
    };
    Ok(TopK {
        p,
        x: Operand::of(&x),
        writes,
    })
}

/// The indices' type for an axis of `len` values, as ArgMax's.
fn index_lane(cx: &Ctx<'_, '_>, len: usize) -> Result<Writes, Error> {
    match super::arg_max::indices_wide(cx, len)? {
        #[cfg(feature = "int16-activations")]
        true => Ok(Writes::WideIndices),
        _ => Ok(Writes::Indices),
    }
}

impl TopK<'_> {
    pub fn eval(&self, io: &mut Io<'_>) -> Result<(), Error> {
        let x = io.inputs.read(&self.x)?;
        match self.writes {
            Writes::Values => top_k_s8(&self.p, x, io.output),
            Writes::Indices => top_k_indices_s8(&self.p, x, io.output),
            #[cfg(feature = "int16-activations")]
            Writes::WideIndices => {
                crate::kernels::top_k_indices_s8_s16(&self.p, x, super::output_i16(io.output)?)
            }
        }
        Ok(())
    }

    pub fn kernel_name(&self) -> &'static str {
        match self.writes {
            Writes::Values => "top_k_s8",
            Writes::Indices => "top_k_indices_s8",
            #[cfg(feature = "int16-activations")]
            Writes::WideIndices => "top_k_indices_s8_s16",
        }
    }
}
