//! Sample files: float `.npy` arrays stacked on the first axis, and label files.

use std::path::{Path, PathBuf};

use crate::error::ConvertError;

/// `N` float32 samples of one model input, each of the input's shape
/// (`[1, d1..dk]`, or a whole `[d0..dk]` when dimension 0 is data; read
/// from float32, float64 or float16 files).
#[derive(Clone, Debug)]
pub struct Samples {
    /// Per-sample shape: the model input's, batch dimension included.
    pub sample_shape: Vec<usize>,
    data: Vec<f32>,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub path: PathBuf,
}

impl Samples {
    /// Load `path` (shape `[N, d1..dk]`) for a model input of shape `[1, d1..dk]`,
    /// or `[N, d0..dk]` for one of shape `[d0..dk]` with `d0 > 1`. A file of
    /// shape `[d1..dk]` (one sample, no sample axis) is refused: the sample
    /// axis is what makes `N` unambiguous.
    pub fn load(path: &Path, input_shape: &[usize]) -> Result<Samples, ConvertError> {
        Samples::from_bytes(path, &read(path)?, input_shape, "", false)
    }

    /// Parse the `.npy` `bytes` read from `path`; `input` names the model
    /// input in errors (empty for a single-input model); `integer`: the
    /// model declares the input of an integer type, and integer files are
    /// read too.
    fn from_bytes(
        path: &Path,
        bytes: &[u8],
        input_shape: &[usize],
        input: &str,
        integer: bool,
    ) -> Result<Samples, ConvertError> {
        // The CLI's reader: float64 and float16 as float32, Fortran order
        // as C order, the same samples `medq run` reads.
        let decode = match integer {
            true => medq_cli::npy::decode_integer_input_samples,
            false => medq_cli::npy::decode_samples,
        };
        let (shape, data) = decode(bytes).map_err(|reason| ConvertError::BadSamples {
            path: path.to_path_buf(),
            reason,
        })?;
        // The rule `medq run` reads sample files by.
        if !medq_cli::npy::holds_samples_of(&shape, input_shape) || shape[0] == 0 {
            return Err(ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!(
                    "shape is {shape:?}, but the model input{input} is {input_shape:?}: \
                     expected [N{}] with N ≥ 1 samples stacked on the first axis",
                    medq_cli::npy::sample_dims(input_shape)
                        .iter()
                        .map(|d| format!(", {d}"))
                        .collect::<String>()
                ),
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(ConvertError::BadSamples {
                path: path.to_path_buf(),
                reason: format!("element {i} is not finite ({})", data[i]),
            });
        }
        Ok(Samples {
            sample_shape: input_shape.to_vec(),
            data,
            sha256: sha256_hex(bytes),
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

    /// The one value every sample holds everywhere, if so (data that
    /// cannot calibrate anything).
    pub fn constant_value(&self) -> Option<f32> {
        let first = *self.data.first()?;
        self.data.iter().all(|&v| v == first).then_some(first)
    }

    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.data[i * n..(i + 1) * n]
    }
}

/// Samples of every input of a model, sample by sample: what calibration,
/// selection and evaluation run the model on.
pub trait InputSamples {
    /// The number of samples.
    fn count(&self) -> usize;
    /// Sample `s` of each model input, in graph order.
    fn inputs(&self, s: usize) -> Vec<&[f32]>;
}

/// Every `step`-th sample of a set from sample `first`: the whole set
/// (0, 1), or one half of a two-fold split (0 or 1, 2).
pub struct Every<'a, S> {
    set: &'a S,
    first: usize,
    step: usize,
}

// By hand: a derive would ask `S: Copy`, and only the reference is copied.
impl<S> Clone for Every<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Every<'_, S> {}

impl<'a, S: InputSamples> Every<'a, S> {
    pub fn of(set: &'a S, first: usize, step: usize) -> Every<'a, S> {
        Every {
            set,
            first,
            step: step.max(1),
        }
    }
}

impl<S: InputSamples> InputSamples for Every<'_, S> {
    fn count(&self) -> usize {
        self.set
            .count()
            .saturating_sub(self.first)
            .div_ceil(self.step)
    }
    fn inputs(&self, s: usize) -> Vec<&[f32]> {
        self.set.inputs(self.first + self.step * s)
    }
}

impl InputSamples for Samples {
    fn count(&self) -> usize {
        self.len()
    }
    fn inputs(&self, s: usize) -> Vec<&[f32]> {
        vec![self.sample(s)]
    }
}

/// One file of samples per model input, in the model's input order, with the
/// same number of samples each: sample `i` of every file makes one run.
#[derive(Clone, Debug)]
pub struct SampleSet {
    pub inputs: Vec<Samples>,
    /// SHA-256 of the files' bytes concatenated in input order (for a single
    /// file, that file's own SHA-256; `cat a.npy b.npy | sha256sum` checks it).
    pub sha256: String,
}

impl InputSamples for SampleSet {
    fn count(&self) -> usize {
        self.len()
    }
    fn inputs(&self, s: usize) -> Vec<&[f32]> {
        self.inputs.iter().map(|x| x.sample(s)).collect()
    }
}

impl SampleSet {
    /// Load one file per model input (`inputs`: name and static shape, graph
    /// order), given with `option` (e.g. `--calib`); the inputs named in
    /// `integer_inputs` also take integer files.
    pub fn load(
        paths: &[PathBuf],
        inputs: &[(String, Vec<usize>)],
        integer_inputs: &std::collections::BTreeSet<String>,
        option: &str,
    ) -> Result<SampleSet, ConvertError> {
        if paths.len() != inputs.len() {
            return Err(ConvertError::Usage(wrong_file_count(paths, inputs, option)));
        }
        use sha2::Digest;
        let mut all = sha2::Sha256::new();
        let mut loaded: Vec<Samples> = Vec::with_capacity(paths.len());
        for (k, (path, (name, shape))) in paths.iter().zip(inputs).enumerate() {
            let bytes = read(path)?;
            all.update(&bytes);
            let which = match inputs.len() {
                1 => String::new(),
                n => format!(
                    " \"{name}\" (input {} of {n}, {} {option})",
                    k + 1,
                    ordinal(k + 1)
                ),
            };
            let integer = integer_inputs.contains(name);
            let samples = Samples::from_bytes(path, &bytes, shape, &which, integer)?;
            if let Some(first) = loaded.first() {
                if samples.len() != first.len() {
                    return Err(ConvertError::BadSamples {
                        path: path.clone(),
                        reason: format!(
                            "{} samples for input \"{name}\", but {} holds {} for input \"{}\": \
                             every {option} file needs the same number (sample i of each file \
                             is one run of the model)",
                            samples.len(),
                            first.path.display(),
                            first.len(),
                            inputs[0].0
                        ),
                    });
                }
            }
            loaded.push(samples);
        }
        Ok(SampleSet {
            inputs: loaded,
            sha256: all.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.inputs.first().map_or(0, Samples::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The files, as the report names them.
    pub fn describe(&self) -> String {
        self.inputs
            .iter()
            .map(|s| s.path.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

impl From<Samples> for SampleSet {
    fn from(samples: Samples) -> SampleSet {
        SampleSet {
            sha256: samples.sha256.clone(),
            inputs: vec![samples],
        }
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("the {n}{suffix}")
}

/// What to pass when the number of files is not one per input.
fn wrong_file_count(paths: &[PathBuf], inputs: &[(String, Vec<usize>)], option: &str) -> String {
    let list = inputs
        .iter()
        .map(|(name, shape)| format!("\"{name}\" {shape:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let example = inputs
        .iter()
        .map(|(name, _)| format!("{option} {name}.npy"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{} {option} file{} given, but the model has {} input{} ({list}): give {option} once \
         per input, in this order, e.g. {example}",
        paths.len(),
        if paths.len() == 1 { " was" } else { "s were" },
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
    )
}

/// Integer class labels, one per sample (the CLI's reader: any integer
/// type, or whole numbers in a float array).
pub fn load_labels(path: &Path, expected: usize) -> Result<Vec<usize>, ConvertError> {
    let bytes = read(path)?;
    let (shape, values) =
        medq_cli::npy::decode_labels(&bytes).map_err(|reason| ConvertError::BadSamples {
            path: path.to_path_buf(),
            reason,
        })?;
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

/// The shape of the `.npy` file at `path`, read from its header alone
/// (before the model is loaded, whose dynamic dims it may fix).
pub fn npy_shape(path: &Path) -> Result<Vec<usize>, ConvertError> {
    use std::io::Read;
    let io = |source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |reason: String| ConvertError::BadSamples {
        path: path.to_path_buf(),
        reason,
    };
    let mut start = Vec::new();
    let limit = 12 + medq_cli::npy::MAX_HEADER_LEN as u64;
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit)
        .read_to_end(&mut start)
        .map_err(io)?;
    medq_cli::npy::check_header(&start)
        .map_err(|why| bad(format!("not a .npy file medq reads: {why}")))?;
    let npy = npyz::NpyFile::new(&start[..]).map_err(|e| bad(format!("not a .npy file: {e}")))?;
    npy.shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} is too large"))))
        .collect()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_sample_splits_a_set_into_two_halves() {
        // Five one-value samples: 0, 1, 2, 3, 4.
        let set = Samples::from_vec(vec![1, 1], (0..5).map(|v| v as f32).collect());
        let values = |e: Every<'_, Samples>| -> Vec<f32> {
            (0..e.count()).map(|s| e.inputs(s)[0][0]).collect()
        };
        assert_eq!(values(Every::of(&set, 0, 2)), [0.0, 2.0, 4.0]);
        assert_eq!(values(Every::of(&set, 1, 2)), [1.0, 3.0]);
        assert_eq!(values(Every::of(&set, 0, 1)), [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(Every::of(&set, 7, 2).count(), 0);
    }

    /// numpy's default float64, and Fortran order (`np.asfortranarray`, a
    /// MATLAB export), give the samples of the float32 C-order file.
    #[test]
    fn float64_and_fortran_order_files_give_the_same_samples() {
        use npyz::WriterBuilder;
        let dir = tempfile::tempdir().unwrap();
        let (n, c, l) = (4u64, 2u64, 3u64);
        let value = |i: u64, ch: u64, p: u64| (100 * i + 10 * ch + p) as f32 / 8.0;
        let write = |name: &str, order: npyz::Order, f64s: bool| {
            let path = dir.path().join(name);
            let mut values = Vec::new();
            for k in 0..n * c * l {
                let (i, ch, p) = match order {
                    npyz::Order::C => (k / (c * l), k / l % c, k % l),
                    npyz::Order::Fortran => (k % n, k / n % c, k / (n * c)),
                };
                values.push(value(i, ch, p));
            }
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            fn write_nd<T: npyz::AutoSerialize>(
                file: impl std::io::Write,
                (order, shape): (npyz::Order, &[u64]),
                values: impl IntoIterator<Item = T>,
            ) {
                let opts = npyz::WriteOptions::<T>::new().default_dtype();
                let w = opts.order(order).shape(shape).writer(file);
                let mut w = w.begin_nd().unwrap();
                w.extend(values).unwrap();
                w.finish().unwrap();
            }
            let layout = (order, &[n, c, l][..]);
            match f64s {
                true => write_nd(file, layout, values.iter().map(|&v| f64::from(v))),
                false => write_nd(file, layout, values),
            }
            path
        };
        let plain = Samples::load(&write("c.npy", npyz::Order::C, false), &[1, 2, 3]).unwrap();
        assert_eq!(plain.sample(1)[..3], [12.5, 12.625, 12.75]);
        for (name, order, f64s) in [
            ("f.npy", npyz::Order::Fortran, false),
            ("c64.npy", npyz::Order::C, true),
            ("f64.npy", npyz::Order::Fortran, true),
        ] {
            let other = Samples::load(&write(name, order, f64s), &[1, 2, 3]).unwrap();
            for i in 0..n as usize {
                assert_eq!(other.sample(i), plain.sample(i), "{name}: sample {i}");
            }
        }
    }

    /// A sample is the input without its batch of 1 (`[N, 2, 3]` for
    /// `[1, 2, 3]`, or `[N, 1, 2, 3]`, the same values), or the whole input
    /// when its dimension 0 is data (`[N, 3, 2]` for `[3, 2]`).
    #[test]
    fn a_sample_is_the_input_without_its_batch_or_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = |shape: &[usize]| {
            let path = dir.path().join(format!("{shape:?}.npy"));
            let data: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|v| v as f32)
                .collect();
            medq_cli::write_npy_f32(&path, shape, &data).unwrap();
            path
        };
        for shape in [&[2, 2, 3][..], &[2, 1, 2, 3]] {
            let s = Samples::load(&file(shape), &[1, 2, 3]).unwrap();
            assert_eq!((s.len(), s.sample_shape.clone()), (2, vec![1, 2, 3]));
            assert_eq!(s.sample(1), [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        }
        let whole = Samples::load(&file(&[2, 3, 2]), &[3, 2]).unwrap();
        assert_eq!((whole.len(), whole.sample_shape.clone()), (2, vec![3, 2]));
        let e = Samples::load(&file(&[2, 2]), &[3, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected [N, 3, 2]"), "{e}");
    }
}
