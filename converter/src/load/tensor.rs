//! Constant tensors during loading: float data (weights, folded values) and
//! integer data (shapes, indices, axes), decoded from ONNX `TensorProto`s.

use tract_onnx::pb::tensor_proto::{DataLocation, DataType};
use tract_onnx::pb::TensorProto;

use crate::ir::Array;

/// Element storage. Integer and boolean ONNX types all become `I64`; float
/// types (f16, bf16, f32, f64) become `F32`, medq's only float type.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant known at conversion time.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Const {
        Const {
            shape,
            data: Data::F32(data),
        }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Const {
        Const {
            shape,
            data: Data::I64(data),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self.data, Data::F32(_))
    }

    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Integer view: only integer constants qualify (shapes, axes, indices).
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }

    /// The single value of a one-element constant, as f32.
    pub fn scalar_f32(&self) -> Option<f32> {
        if self.len() != 1 {
            return None;
        }
        self.to_f32().first().copied()
    }

    pub fn to_array(&self) -> Array {
        Array::new(self.shape.clone(), self.to_f32())
    }

    pub fn with_shape(&self, shape: Vec<usize>) -> Const {
        Const {
            shape,
            data: self.data.clone(),
        }
    }
}

/// Whether a `TensorProto.data_type` code is an integer type (signed or
/// unsigned, 8 to 64 bits).
pub fn is_integer(code: i32) -> bool {
    use DataType as T;
    matches!(
        DataType::try_from(code),
        Ok(T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Uint8 | T::Uint16 | T::Uint32 | T::Uint64)
    )
}

/// ONNX's name for a `TensorProto.data_type` code, for messages.
pub fn dtype_name(code: i32) -> &'static str {
    DataType::try_from(code)
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN")
}

/// Decode an initializer or `Constant` value. The error explains what is wrong
/// with the tensor; the caller adds which tensor it is.
pub fn from_proto(t: &TensorProto) -> Result<Const, String> {
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(
            "its data is stored in an external file, which medq does not read; \
             re-save the model with all tensors embedded \
             (onnx.save_model(model, path, save_as_external_data=False))"
                .into(),
        );
    }
    if t.segment.is_some() {
        return Err("segmented tensors are not supported".into());
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d} in {:?}", t.dims)))
        .collect::<Result<Vec<usize>, String>>()?;
    let count = super::shape::check_size(&shape)?;
    let dtype = DataType::try_from(t.data_type)
        .map_err(|_| format!("unknown data type code {}", t.data_type))?;
    let raw = &t.raw_data;
    let has_raw = !raw.is_empty() || count == 0;
    let data = match dtype {
        DataType::Float => Data::F32(if has_raw && t.float_data.is_empty() {
            le_words::<4>(raw, count)?.map(f32::from_le_bytes).collect()
        } else {
            t.float_data.clone()
        }),
        DataType::Double => Data::F32(if has_raw && t.double_data.is_empty() {
            le_words::<8>(raw, count)?
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect()
        } else {
            t.double_data.iter().map(|&x| x as f32).collect()
        }),
        DataType::Float16 | DataType::Bfloat16 => {
            let bits: Vec<u16> = if has_raw && t.int32_data.is_empty() {
                le_words::<2>(raw, count)?.map(u16::from_le_bytes).collect()
            } else {
                // The 16-bit patterns are stored one per int32.
                t.int32_data.iter().map(|&x| x as u16).collect()
            };
            Data::F32(if dtype == DataType::Float16 {
                bits.into_iter()
                    .map(|b| half::f16::from_bits(b).to_f32())
                    .collect()
            } else {
                bits.into_iter()
                    .map(|b| half::bf16::from_bits(b).to_f32())
                    .collect()
            })
        }
        DataType::Int64 => Data::I64(if has_raw && t.int64_data.is_empty() {
            le_words::<8>(raw, count)?.map(i64::from_le_bytes).collect()
        } else {
            t.int64_data.clone()
        }),
        DataType::Int32 => Data::I64(if has_raw && t.int32_data.is_empty() {
            le_words::<4>(raw, count)?
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect()
        } else {
            t.int32_data.iter().map(|&x| i64::from(x)).collect()
        }),
        DataType::Int16 => Data::I64(if has_raw && t.int32_data.is_empty() {
            le_words::<2>(raw, count)?
                .map(|b| i64::from(i16::from_le_bytes(b)))
                .collect()
        } else {
            t.int32_data.iter().map(|&x| i64::from(x)).collect()
        }),
        DataType::Uint16 => Data::I64(if has_raw && t.int32_data.is_empty() {
            le_words::<2>(raw, count)?
                .map(|b| i64::from(u16::from_le_bytes(b)))
                .collect()
        } else {
            t.int32_data.iter().map(|&x| i64::from(x)).collect()
        }),
        DataType::Int8 => Data::I64(if has_raw && t.int32_data.is_empty() {
            le_words::<1>(raw, count)?
                .map(|b| i64::from(i8::from_le_bytes(b)))
                .collect()
        } else {
            t.int32_data.iter().map(|&x| i64::from(x)).collect()
        }),
        DataType::Uint8 | DataType::Bool => Data::I64(if has_raw && t.int32_data.is_empty() {
            le_words::<1>(raw, count)?
                .map(|b| i64::from(u8::from_le_bytes(b)))
                .collect()
        } else {
            t.int32_data.iter().map(|&x| i64::from(x)).collect()
        }),
        DataType::Uint32 | DataType::Uint64 => {
            let v: Vec<u64> = if has_raw && t.uint64_data.is_empty() {
                if dtype == DataType::Uint32 {
                    le_words::<4>(raw, count)?
                        .map(|b| u64::from(u32::from_le_bytes(b)))
                        .collect()
                } else {
                    le_words::<8>(raw, count)?.map(u64::from_le_bytes).collect()
                }
            } else {
                t.uint64_data.clone()
            };
            Data::I64(
                v.into_iter()
                    .map(|x| {
                        i64::try_from(x).map_err(|_| format!("value {x} does not fit in int64"))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        other => {
            return Err(format!(
                "data type {} is not supported (medq reads float and integer tensors)",
                other.as_str_name()
            ))
        }
    };
    let c = Const { shape, data };
    if c.len() != count {
        return Err(format!(
            "holds {} values but its shape {:?} needs {count}",
            c.len(),
            c.shape
        ));
    }
    Ok(c)
}

/// Split little-endian raw bytes into `count` words of `N` bytes.
fn le_words<const N: usize>(
    raw: &[u8],
    count: usize,
) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
    if Some(raw.len()) != count.checked_mul(N) {
        return Err(format!(
            "raw data has {} bytes, expected {count} values of {N} bytes",
            raw.len()
        ));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut w = [0u8; N];
        w.copy_from_slice(c);
        w
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// float16 and bfloat16 initializers, raw or one pattern per int32,
    /// become their exact float32 values.
    #[test]
    fn half_precision_initializers_become_float32() {
        let halves: [(u16, f32); 4] = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 2f32.powi(-24)),
        ];
        let bf16s: [(u16, f32); 2] = [(0x3f80, 1.0), (0xc040, -3.0)];
        for (dtype, cases) in [
            (DataType::Float16, &halves[..]),
            (DataType::Bfloat16, &bf16s[..]),
        ] {
            let want: Vec<f32> = cases.iter().map(|c| c.1).collect();
            let raw = TensorProto {
                dims: vec![cases.len() as i64],
                data_type: dtype as i32,
                raw_data: cases.iter().flat_map(|c| c.0.to_le_bytes()).collect(),
                ..Default::default()
            };
            let words = TensorProto {
                raw_data: Vec::new(),
                int32_data: cases.iter().map(|c| i32::from(c.0)).collect(),
                ..raw.clone()
            };
            for t in [raw, words] {
                let c = from_proto(&t).unwrap();
                assert_eq!(c.to_f32(), want, "{dtype:?}");
            }
        }
    }
}
