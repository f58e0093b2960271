//! Sample files: float32 `.npy` arrays stacked on the first axis, and label files.

use std::path::{Path, PathBuf};

use crate::error::ConvertError;

/// `N` float32 samples of one model input, each of shape `[1, d1..dk]`.
#[derive(Clone, Debug)]
pub struct Samples {
    /// Per-sample shape, batch dimension included (`[1, d1..dk]`).
    pub sample_shape: Vec<usize>,
    data: Vec<f32>,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub path: PathBuf,
}

impl Samples {
    /// Load `path` (shape `[N, d1..dk]`) for a model input of shape `[1, d1..dk]`.
    /// A file of shape `[d1..dk]` (one sample, no batch axis) is refused: the
    /// batch axis is what makes `N` unambiguous.
    pub fn load(path: &Path, input_shape: &[usize]) -> Result<Samples, ConvertError> {
        let bytes = read(path)?;
        let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad_npy(path, e))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let dtype = npy.dtype();
        let data: Vec<f32> = match npy.into_vec::<f32>() {
            Ok(v) => v,
            Err(_) => {
                return Err(ConvertError::BadSamples {
                    path: path.to_path_buf(),
                    reason: format!(
                        "expected float32 data, found {}; convert with `x.astype(np.float32)`",
                        describe_dtype(&dtype)
                    ),
                })
            }
        };
        let want: Vec<usize> = input_shape.iter().skip(1).copied().collect();
        if shape.len() != input_shape.len() || shape[1..] != want[..] || shape[0] == 0 {
            return Err(ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!(
                    "shape is {shape:?}, but the model input is {input_shape:?}: \
                     expected [N, {}] with N ≥ 1 samples stacked on the first axis",
                    want.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!("element {i} is not finite ({})", data[i]),
            });
        }
        let mut sample_shape = vec![1];
        sample_shape.extend(want);
        Ok(Samples {
            sample_shape,
            data,
            sha256: sha256_hex(&bytes),
            path: path.to_path_buf(),
        })
    }

    /// Wrap in-memory samples (tests, golden vectors).
    pub fn from_vec(sample_shape: Vec<usize>, data: Vec<f32>) -> Samples {
        Samples {
            sha256: sha256_hex(
                &data
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            sample_shape,
            data,
            path: PathBuf::new(),
        }
    }

    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.sample_len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.data[i * n..(i + 1) * n]
    }
}

/// Integer class labels, one per sample.
pub fn load_labels(path: &Path, expected: usize) -> Result<Vec<usize>, ConvertError> {
    let bytes = read(path)?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad_npy(path, e))?;
    let shape = npy.shape().to_vec();
    let dtype = npy.dtype();
    let values: Vec<i64> = match dtype_code(&dtype).as_deref() {
        Some("i8") => npy.into_vec::<i64>().map_err(|e| bad_npy(path, e))?,
        Some("i4") => npy
            .into_vec::<i32>()
            .map_err(|e| bad_npy(path, e))?
            .into_iter()
            .map(i64::from)
            .collect(),
        Some("u1") => npy
            .into_vec::<u8>()
            .map_err(|e| bad_npy(path, e))?
            .into_iter()
            .map(i64::from)
            .collect(),
        _ => {
            return Err(ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!(
                    "labels must be int64, int32 or uint8 class indices, found {}",
                    describe_dtype(&dtype)
                ),
            })
        }
    };
    if shape.len() != 1 || values.len() != expected {
        return Err(ConvertError::BadSamples {
            path: path.to_path_buf(),
            reason: format!("labels have shape {shape:?}; expected [{expected}], one per sample"),
        });
    }
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v).map_err(|_| ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!("label {v} is negative"),
            })
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, ConvertError> {
    std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad_npy(path: &Path, e: impl std::fmt::Display) -> ConvertError {
    ConvertError::BadSamples {
        path: path.to_path_buf(),
        reason: format!("not a readable .npy file: {e}"),
    }
}

fn dtype_code(d: &npyz::DType) -> Option<String> {
    match d {
        npyz::DType::Plain(ts) => Some(format!("{}{}", ts.type_char(), ts.size_field())),
        _ => None,
    }
}

fn describe_dtype(d: &npyz::DType) -> String {
    match d {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => format!("{other:?}"),
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
