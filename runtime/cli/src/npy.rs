//! `.npy` files read and written a chunk of samples at a time, so a run's
//! memory does not grow with the number of samples.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use npyz::{NpyHeader, Order, WriterBuilder};

/// A float `.npy` of samples stacked on its first axis, read in chunks as
/// float32: float64 and float16 files become the float32 the model takes,
/// as `x.astype(np.float32)` would make them ([`Element`]).
///
/// C-order files are read sequentially; Fortran-order files (where one
/// sample's values lie `N` items apart) are read one feature column of a
/// chunk at a time and transposed, so both give the same samples. Every
/// value is checked finite as it is read.
pub struct SampleReader {
    path: PathBuf,
    file: BufReader<File>,
    data_start: u64,
    shape: Vec<usize>,
    per_sample: usize,
    element: Element,
    big_endian: bool,
    fortran: bool,
    next_sample: usize,
    bytes: Vec<u8>,
}

impl SampleReader {
    /// Opens `path` and checks its header: a float type, at least one axis,
    /// and as many data bytes as the shape says.
    pub fn open(path: &Path) -> Result<SampleReader> {
        let mut raw =
            File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        check_header_text(path, &mut raw)?;
        let header = NpyHeader::from_reader(&mut raw)
            .with_context(|| format!("{} is not a .npy file", path.display()))?;
        let data_start = raw.stream_position()?;
        let descr = header.dtype().descr();
        let Some((element, big_endian)) = Element::of(&descr) else {
            bail!("{}: {}", path.display(), not_float(&descr));
        };
        let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
        if shape.is_empty() {
            bail!(
                "{}: a scalar; expected samples stacked on the first axis",
                path.display()
            );
        }
        let per_sample: usize = shape[1..].iter().product();
        let needed = (header.len() as u128) * element.size() as u128;
        let have = u128::from(raw.metadata()?.len().saturating_sub(data_start));
        if have < needed {
            bail!(
                "{} is truncated: its shape {shape:?} needs {needed} data bytes, it holds {have}",
                path.display()
            );
        }
        Ok(SampleReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(64 * 1024, raw),
            data_start,
            shape,
            per_sample,
            element,
            big_endian,
            fortran: header.order() == Order::Fortran && header.shape().len() > 1,
            next_sample: 0,
            bytes: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's shape, samples first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn samples(&self) -> usize {
        self.shape[0]
    }

    /// Values per sample (the product of the shape after the first axis).
    pub fn per_sample(&self) -> usize {
        self.per_sample
    }

    /// Replaces `out` with the next samples, at most `max_samples` of them,
    /// and returns how many it read: 0 once every sample has been read.
    /// `out` holds exactly that many samples afterwards, and its capacity
    /// never needs to exceed `max_samples` samples.
    pub fn read_chunk(&mut self, max_samples: usize, out: &mut Vec<f32>) -> Result<usize> {
        let rows = max_samples.min(self.samples() - self.next_sample);
        out.clear();
        if rows == 0 {
            return Ok(0);
        }
        out.resize(rows * self.per_sample, 0.0);
        if self.fortran {
            self.read_fortran(rows, out)?;
        } else {
            self.bytes.resize(out.len() * self.element.size(), 0);
            self.file
                .read_exact(&mut self.bytes)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            self.element.decode(&self.bytes, self.big_endian, out);
        }
        self.check_finite(out)?;
        self.next_sample += rows;
        Ok(rows)
    }

    /// Fortran order: item `(i, r)` is at flat index `i + N·f(r)`, with
    /// `f` the column-major index over the sample axes. Each C-order
    /// position `k` of the chunk's samples is one contiguous run of items.
    fn read_fortran(&mut self, rows: usize, out: &mut [f32]) -> Result<()> {
        let n = self.samples() as u64;
        let dims = self.shape[1..].to_vec();
        let size = self.element.size() as u64;
        let mut column = vec![0f32; rows];
        self.bytes.resize(rows * self.element.size(), 0);
        // Unbuffered: each column is one seek and one read of `rows` items.
        let file = self.file.get_mut();
        for k in 0..self.per_sample {
            let item = n * column_major_index(&dims, k) as u64 + self.next_sample as u64;
            file.seek(SeekFrom::Start(self.data_start + size * item))?;
            file.read_exact(&mut self.bytes)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            self.element
                .decode(&self.bytes, self.big_endian, &mut column);
            for (row, &v) in column.iter().enumerate() {
                out[row * self.per_sample + k] = v;
            }
        }
        Ok(())
    }

    fn check_finite(&self, chunk: &[f32]) -> Result<()> {
        let Some(at) = chunk.iter().position(|v| !v.is_finite()) else {
            return Ok(());
        };
        let per = self.per_sample.max(1);
        let what = if chunk[at].is_nan() {
            "NaN"
        } else {
            "an infinity"
        };
        bail!(
            "{}: sample {} holds {what} at position {:?}; inputs must be finite",
            self.path.display(),
            self.next_sample + at / per,
            unravel(&self.shape[1..], at % per)
        )
    }
}

/// The element types samples are read from. float32 is the model's own;
/// numpy makes float64 by default, and float16 halves a data set's size:
/// both become float32 as `x.astype(np.float32)` would, rounding to
/// nearest (float16 exactly), which is what the float model runs on.
/// Booleans (a padding mask) are 0 and 1. Integer types are refused:
/// whether `1000` is millivolts or ADC codes is the model's preprocessing
/// to say (except for a model input of an integer type, whose unit is the
/// model's: [`decode_integer_input_samples`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    F32,
    F64,
    F16,
    Bool,
}

impl Element {
    /// The element type and byte order (`true`: big-endian) of a `.npy`
    /// dtype descriptor such as `'<f4'`.
    pub fn of(descr: &str) -> Option<(Element, bool)> {
        let descr = descr.trim_matches('\'');
        let (big_endian, code) = match descr.split_at_checked(1)? {
            ("<" | "=" | "|", code) => (false, code),
            (">", code) => (true, code),
            _ => return None,
        };
        let element = match code {
            "f4" => Element::F32,
            "f8" => Element::F64,
            "f2" => Element::F16,
            "b1" => Element::Bool,
            _ => return None,
        };
        Some((element, big_endian))
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F64 => 8,
            Element::F16 => 2,
            Element::Bool => 1,
        }
    }

    /// `out.len()` elements of `bytes`, as float32.
    pub fn decode(self, bytes: &[u8], big_endian: bool, out: &mut [f32]) {
        fn each<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) {
            for (v, b) in out.iter_mut().zip(bytes.as_chunks::<N>().0) {
                *v = f(*b);
            }
        }
        match (self, big_endian) {
            (Element::F32, false) => each(bytes, out, f32::from_le_bytes),
            (Element::F32, true) => each(bytes, out, f32::from_be_bytes),
            (Element::F64, false) => each(bytes, out, |b| f64::from_le_bytes(b) as f32),
            (Element::F64, true) => each(bytes, out, |b| f64::from_be_bytes(b) as f32),
            (Element::F16, false) => each(bytes, out, |b| half::f16::from_le_bytes(b).to_f32()),
            (Element::F16, true) => each(bytes, out, |b| half::f16::from_be_bytes(b).to_f32()),
            (Element::Bool, _) => each(bytes, out, |[b]: [u8; 1]| f32::from(u8::from(b != 0))),
        }
    }
}

/// The refusal of a dtype [`Element::of`] does not take.
fn not_float(descr: &str) -> String {
    format!(
        "expected float data (float32, float64 or float16) or bool, got {descr}; \
         convert with `x.astype(np.float32)`"
    )
}

/// One sample's dims in a file of samples of a tensor of `dims` stacked on
/// the first axis: the tensor's without its batch of 1, or all of them when
/// dimension 0 is data (a sequence-first `[T, 1, F]` input, a per-step
/// classifier's `[T, C]` output).
pub fn sample_dims(dims: &[usize]) -> &[usize] {
    match dims.split_first() {
        Some((1, rest)) => rest,
        _ => dims,
    }
}

/// Whether a file of `shape` stacks samples of a tensor of `dims`:
/// `[N, sample..]` ([`sample_dims`]), or `[N, dims..]`, which for a batch
/// of 1 (`[N, 1, d1..dk]`, what `np.expand_dims` gives) holds the same values.
pub fn holds_samples_of(shape: &[usize], dims: &[usize]) -> bool {
    let stacks = |one: &[usize]| shape.len() == one.len() + 1 && shape[1..] == *one;
    stacks(sample_dims(dims)) || stacks(dims)
}

/// A whole `.npy` file's `bytes` as float32 values in C order (a
/// Fortran-order file's transposed), with its shape: what
/// [`SampleReader`] reads, for a file already in memory.
pub fn decode_samples(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    check_header(bytes).map_err(|why| format!("not a .npy file medq reads: {why}"))?;
    let mut reader = bytes;
    let header =
        NpyHeader::from_reader(&mut reader).map_err(|e| format!("not a .npy file: {e}"))?;
    let descr = header.dtype().descr();
    let (element, big_endian) = Element::of(&descr).ok_or_else(|| not_float(&descr))?;
    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let count = usize::try_from(header.len()).map_err(|_| "too many values".to_string())?;
    let data = count
        .checked_mul(element.size())
        .and_then(|n| reader.get(..n))
        .ok_or_else(|| {
            format!("truncated: its shape {shape:?} needs {count} values, it holds fewer")
        })?;
    let mut values = vec![0f32; count];
    element.decode(data, big_endian, &mut values);
    if header.order() == Order::Fortran && shape.len() > 1 {
        values = (0..count)
            .map(|k| values[column_major_index(&shape, k)])
            .collect();
    }
    Ok((shape, values))
}

/// Float32's exact integers: every integer of smaller magnitude is one.
const EXACT_IN_F32: u64 = 1 << 24;

/// [`decode_samples`] for a model input of an integer type (token indices,
/// lengths, lead numbers): an integer file is read too, each value exactly
/// as the float32 the converter runs the input on, and refused when one is
/// too large for that (2^24 or more in magnitude). There the unit is the
/// model's own, so no scale is guessed; float and bool files read as for
/// any input.
pub fn decode_integer_input_samples(
    bytes: &[u8],
) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    check_header(bytes).map_err(|why| format!("not a .npy file medq reads: {why}"))?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| format!("not a .npy file: {e}"))?;
    let descr = npy.header().dtype().descr();
    let integer = descr
        .trim_matches('\'')
        .get(1..2)
        .is_some_and(|code| code == "i" || code == "u");
    if !integer {
        return decode_samples(bytes);
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.header().order() == Order::Fortran && shape.len() > 1;
    let integers = labels_of(npy)?
        .collect::<std::io::Result<Vec<i64>>>()
        .map_err(|e| e.to_string())?;
    if let Some(v) = integers.iter().find(|v| v.unsigned_abs() >= EXACT_IN_F32) {
        return Err(format!(
            "integer {v} is not exact as float32 (|v| < 2^24), which the model input is run on"
        ));
    }
    let mut values: Vec<f32> = integers.iter().map(|&v| v as f32).collect();
    if fortran {
        values = (0..values.len())
            .map(|k| values[column_major_index(&shape, k)])
            .collect();
    }
    Ok((shape, values))
}

/// The multi-index of C-order flat index `k` in `dims`.
fn unravel(dims: &[usize], mut k: usize) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = k % d.max(1);
        k /= d.max(1);
    }
    index
}

/// The column-major flat index of the element at C-order flat index `k`.
fn column_major_index(dims: &[usize], k: usize) -> usize {
    let index = unravel(dims, k);
    index
        .iter()
        .zip(dims)
        .rev()
        .fold(0, |acc, (&i, &d)| acc * d + i)
}

/// The most header bytes a `.npy` file medq reads may declare. numpy pads
/// a plain header to 64 or 128 bytes; only structured dtypes, which medq
/// does not read, need more.
pub const MAX_HEADER_LEN: usize = 4096;

/// Refuses a header that is not a flat dictionary before `npyz` parses it.
/// `npyz`'s grammar backtracks without bound on nested brackets: a 165-byte
/// file with eighteen `{` in its header ran for more than 30 minutes (found
/// by `fuzz/`'s `npy` target, kept in `fuzz/regressions/npy/`). The dtypes
/// medq reads (`<f4`, `<i8`, `<i4`, …) never need nesting: one `{…}`
/// holding strings, `True`/`False` and a shape tuple.
///
/// `start` is the file's beginning: its first 12 + [`MAX_HEADER_LEN`] bytes
/// are enough. The error says what is wrong, not which file.
pub fn check_header(start: &[u8]) -> std::result::Result<(), String> {
    if start.len() < 10 || &start[..6] != b"\x93NUMPY" {
        return Err("no .npy magic".into());
    }
    let (len, at) = match start[6] {
        1 => (usize::from(u16::from_le_bytes([start[8], start[9]])), 10),
        2 | 3 if start.len() >= 12 => (
            u32::from_le_bytes([start[8], start[9], start[10], start[11]]) as usize,
            12,
        ),
        v => return Err(format!("format version {v}")),
    };
    if len > MAX_HEADER_LEN {
        return Err(format!("a {len}-byte header (at most {MAX_HEADER_LEN})"));
    }
    let text = start.get(at..at + len).ok_or("the header is truncated")?;
    let count = |c: u8| text.iter().filter(|&&b| b == c).count();
    if count(b'{') != 1 || count(b'}') != 1 || count(b'[') != 0 || count(b'(') != 1 {
        return Err("its header is not a flat dictionary of a plain dtype and a shape".into());
    }
    // The shape's element count must fit: npyz multiplies the dims unchecked,
    // and its strides multiply every run of them, so a zero dim does not make
    // the others safe. Bounding the product of the non-zero dims bounds all.
    let open = text.iter().position(|&b| b == b'(').unwrap_or(0);
    let close = text
        .iter()
        .position(|&b| b == b')')
        .ok_or("its shape tuple is not closed")?;
    let dims = std::str::from_utf8(text.get(open + 1..close).unwrap_or(&[]))
        .map_err(|_| "its shape is not text")?;
    let mut elements: u64 = 1;
    for dim in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: u64 = dim
            .parse()
            .map_err(|_| format!("shape dimension {dim:?}"))?;
        elements = elements
            .checked_mul(d.max(1))
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or("its shape holds more elements than medq reads (2^40)")?;
    }
    Ok(())
}

/// The most elements a `.npy` file medq reads may declare (far more than
/// any sample set; the bound keeps every product of its dims in range).
pub const MAX_ELEMENTS: u64 = 1 << 40;

/// [`check_header`] on an open file, left at its start.
fn check_header_text(path: &Path, file: &mut File) -> Result<()> {
    let mut start = Vec::with_capacity(12 + MAX_HEADER_LEN);
    Read::by_ref(file)
        .take(12 + MAX_HEADER_LEN as u64)
        .read_to_end(&mut start)
        .with_context(|| format!("cannot read {}", path.display()))?;
    check_header(&start).map_err(|why| {
        anyhow::anyhow!("{} is not a .npy file medq reads: {why}", path.display())
    })?;
    file.seek(SeekFrom::Start(0))?;
    Ok(())
}

/// Class labels as `i64`, one per item of a `.npy` file.
type Labels<'r> = Box<dyn Iterator<Item = std::io::Result<i64>> + Send + 'r>;

/// The labels of `npy`: any integer type, or a float type holding whole
/// numbers (the UCR archive's labels are floats: `1.0`, `2.0`, …), where a
/// fraction is an error when it is read.
fn labels_of<'r, R: Read + Send + 'r>(
    npy: npyz::NpyFile<R>,
) -> std::result::Result<Labels<'r>, String> {
    fn whole(v: f64) -> std::io::Result<i64> {
        // Exact for labels: every integer up to 2^53 is a float64.
        match v.fract() == 0.0 && v.abs() < 9.0e15 {
            true => Ok(v as i64),
            false => Err(std::io::Error::other(format!(
                "label {v} is not a whole class index"
            ))),
        }
    }
    macro_rules! try_as {
        ($npy:expr, $t:ty, $to:expr) => {
            match $npy.try_data::<$t>() {
                Ok(r) => return Ok(Box::new(r.map(move |v| v.and_then($to)))),
                Err(npy) => npy,
            }
        };
    }
    let npy = try_as!(npy, i64, Ok);
    let npy = try_as!(npy, i32, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, i16, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, i8, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, u8, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, u16, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, u32, |v| Ok(i64::from(v)));
    let npy = try_as!(npy, u64, |v: u64| i64::try_from(v).map_err(|_| {
        std::io::Error::other(format!("label {v} is not a class index"))
    }));
    let npy = try_as!(npy, f64, whole);
    let npy = try_as!(npy, f32, |v| whole(f64::from(v)));
    Err(format!(
        "expected integer class indices (or whole numbers in a float array), got {}",
        npy.dtype().descr()
    ))
}

/// A whole labels `.npy` file's `bytes`, with its shape: what
/// [`LabelReader`] reads, for a file already in memory.
pub fn decode_labels(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<i64>), String> {
    check_header(bytes).map_err(|why| format!("not a .npy file medq reads: {why}"))?;
    let npy = npyz::NpyFile::new(bytes).map_err(|e| format!("not a .npy file: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let labels = labels_of(npy)?
        .collect::<std::io::Result<Vec<i64>>>()
        .map_err(|e| e.to_string())?;
    Ok((shape, labels))
}

/// Integer class labels (any integer type, or whole numbers in a float
/// array), read in chunks.
pub struct LabelReader {
    path: PathBuf,
    values: Labels<'static>,
    len: usize,
}

impl LabelReader {
    pub fn open(path: &Path) -> Result<LabelReader> {
        let mut file =
            File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        check_header_text(path, &mut file)?;
        let npy = npyz::NpyFile::new(BufReader::new(file))
            .with_context(|| format!("{} is not a .npy file", path.display()))?;
        let len = npy.len() as usize;
        let values = labels_of(npy).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
        Ok(LabelReader {
            path: path.to_path_buf(),
            values,
            len,
        })
    }

    /// How many labels the file holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces `out` with the next labels, at most `max` of them.
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<i64>) -> Result<usize> {
        out.clear();
        for v in self.values.by_ref().take(max) {
            out.push(v.with_context(|| format!("cannot read {}", self.path.display()))?);
        }
        Ok(out.len())
    }
}

/// Checks a labels file before a run writes anything: one label per sample,
/// each a class index below `classes`.
pub fn check_labels(path: &Path, samples: usize, classes: usize) -> Result<()> {
    let mut labels = LabelReader::open(path)?;
    if labels.len() != samples {
        bail!(
            "{} holds {} labels for {samples} samples",
            path.display(),
            labels.len()
        );
    }
    let (mut chunk, mut seen) = (Vec::new(), 0);
    while labels.read_chunk(64 * 1024, &mut chunk)? > 0 {
        if let Some(at) = chunk
            .iter()
            .position(|&y| !(0..classes as i64).contains(&y))
        {
            bail!(
                "{}: label {} of sample {} is not a class index (the model has {classes} classes: 0..={})",
                path.display(),
                chunk[at],
                seen + at,
                classes - 1
            );
        }
        seen += chunk.len();
    }
    Ok(())
}

/// A float32 `.npy` written sample by sample into a temporary file next to
/// its destination. [`complete`](Self::complete) checks and flushes it,
/// [`rename`](Self::rename) moves it into place, and dropping it before
/// that removes it, so a failed run leaves nothing half-written.
pub struct NpyOut {
    dest: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
    /// Values the header promises, and values appended so far.
    len: usize,
    written: usize,
    renamed: bool,
    /// Lists `tmp` for an interrupt handler to remove.
    _tracked: medq::file::TrackedTemporary,
}

impl NpyOut {
    /// Creates the temporary file and writes the header of an array of `shape`.
    pub fn create(dest: &Path, shape: &[usize]) -> Result<NpyOut> {
        let tmp = dest.with_extension(format!("npy.tmp{}", std::process::id()));
        let _tracked = medq::file::TrackedTemporary::new(&tmp);
        let file = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        // Owns the temporary file from here on, so an error below removes it.
        let mut out = NpyOut {
            dest: dest.to_path_buf(),
            tmp,
            writer: None,
            len: shape.iter().product(),
            written: 0,
            renamed: false,
            _tracked,
        };
        let shape64: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape64)
            .writer(BufWriter::with_capacity(64 * 1024, file))
            .write_header_only()
            .with_context(|| format!("cannot write {}", out.tmp.display()))?;
        out.writer = Some(writer);
        Ok(out)
    }

    /// Appends values (little-endian float32, what the header says).
    pub fn append(&mut self, values: &[f32]) -> Result<()> {
        let w = self.writer.as_mut().context("output already completed")?;
        if self.written + values.len() > self.len {
            bail!("{}: more values than its shape holds", self.tmp.display());
        }
        let mut bytes = [0u8; 4096];
        for part in values.chunks(bytes.len() / 4) {
            for (b, v) in bytes.chunks_exact_mut(4).zip(part) {
                b.copy_from_slice(&v.to_le_bytes());
            }
            w.write_all(&bytes[..part.len() * 4])
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        self.written += values.len();
        Ok(())
    }

    /// Checks that every value the header promised was written and flushes
    /// the file (still under its temporary name).
    pub fn complete(&mut self) -> Result<()> {
        let w = self.writer.take().context("output already completed")?;
        if self.written != self.len {
            bail!(
                "{}: {} of {} values written",
                self.tmp.display(),
                self.written,
                self.len
            );
        }
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.tmp.display()))
    }

    /// Moves the completed file into place.
    pub fn rename(mut self) -> Result<()> {
        if self.writer.is_some() {
            bail!("{} is not complete", self.tmp.display());
        }
        std::fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("cannot write {}", self.dest.display()))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for NpyOut {
    fn drop(&mut self) {
        if !self.renamed {
            // Close the file before removing it.
            drop(self.writer.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a whole float32 array at once, atomically (through [`NpyOut`]).
pub fn write_npy_f32(dest: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut out = NpyOut::create(dest, shape)?;
    out.append(data)?;
    out.complete()?;
    out.rename()
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::WriterBuilder;

    /// Every input the fuzzer found is refused by both readers, at once.
    #[test]
    fn fuzzer_findings_are_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/npy");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no regression inputs in {}",
            dir.display()
        );
        for path in files {
            let e = SampleReader::open(&path).err().expect("refused as samples");
            assert!(
                format!("{e:#}").contains("not a .npy file medq reads"),
                "{e:#}"
            );
            let e = LabelReader::open(&path).err().expect("refused as labels");
            assert!(
                format!("{e:#}").contains("not a .npy file medq reads"),
                "{e:#}"
            );
        }
    }

    #[test]
    fn headers_are_checked_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let header = |version: u8, text: &str| {
            let mut b = b"\x93NUMPY".to_vec();
            b.extend([version, 0]);
            match version {
                1 => b.extend((text.len() as u16).to_le_bytes()),
                _ => b.extend((text.len() as u32).to_le_bytes()),
            }
            b.extend(text.as_bytes());
            b
        };
        let plain = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }\n";
        for (bytes, expect) in [
            (b"not numpy at all".to_vec(), "no .npy magic"),
            (header(9, plain), "format version 9"),
            (
                header(1, "{'descr': [('a', '<f4')], 'shape': (1,)}"),
                "not a flat dictionary",
            ),
            (header(2, &" ".repeat(5000)), "a 5000-byte header"),
            (
                header(1, "{'descr': '<f4', 'shape': (4294967296, 4294967296), }"),
                "more elements than medq reads",
            ),
            (
                header(1, "{'descr': '<f4', 'shape': (2, x), }"),
                "shape dimension \"x\"",
            ),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let e = SampleReader::open(&path).err().expect("refused");
            assert!(format!("{e:#}").contains(expect), "{e:#}");
        }
        // A plain header (version 1 and 2) passes on to the reader.
        for version in [1, 2] {
            let mut bytes = header(version, plain);
            bytes.extend([0u8; 8]);
            std::fs::write(&path, &bytes).unwrap();
            let r = SampleReader::open(&path).unwrap();
            assert_eq!(r.shape(), [1, 2]);
        }
    }

    /// Writes `values` (already in the file's memory order) as float32 `.npy`.
    fn write(path: &Path, shape: &[u64], order: Order, values: &[f32]) {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .order(order)
            .shape(shape)
            .writer(BufWriter::new(File::create(path).unwrap()))
            .begin_nd()
            .unwrap();
        w.extend(values.iter().copied()).unwrap();
        w.finish().unwrap();
    }

    fn read_all(path: &Path, max: usize) -> (Vec<usize>, Vec<f32>) {
        let mut r = SampleReader::open(path).unwrap();
        let (mut sizes, mut all, mut chunk) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let rows = r.read_chunk(max, &mut chunk).unwrap();
            assert_eq!(chunk.len(), rows * r.per_sample());
            if rows == 0 {
                return (sizes, all);
            }
            sizes.push(rows);
            all.extend_from_slice(&chunk);
        }
    }

    #[test]
    fn chunks_never_exceed_their_size_and_cover_every_sample_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let values: Vec<f32> = (0..50 * 6).map(|v| v as f32).collect();
        write(&path, &[50, 2, 3], Order::C, &values);
        let (sizes, all) = read_all(&path, 7);
        assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
        assert_eq!(all, values);
    }

    #[test]
    fn fortran_order_reads_the_same_samples_as_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let (n, c, l) = (5usize, 2usize, 3usize);
        // Sample i, channel ch, position p holds 100·i + 10·ch + p.
        let value = |i: usize, ch: usize, p: usize| (100 * i + 10 * ch + p) as f32;
        let mut c_order = Vec::new();
        for i in 0..n {
            for ch in 0..c {
                for p in 0..l {
                    c_order.push(value(i, ch, p));
                }
            }
        }
        // Fortran order: the first axis varies fastest.
        let mut f_order = Vec::new();
        for p in 0..l {
            for ch in 0..c {
                for i in 0..n {
                    f_order.push(value(i, ch, p));
                }
            }
        }
        let shape = [n as u64, c as u64, l as u64];
        write(&dir.path().join("c.npy"), &shape, Order::C, &c_order);
        write(&dir.path().join("f.npy"), &shape, Order::Fortran, &f_order);
        for max in [1, 2, 5] {
            assert_eq!(read_all(&dir.path().join("f.npy"), max).1, c_order);
            assert_eq!(read_all(&dir.path().join("c.npy"), max).1, c_order);
        }
    }

    /// A `.npy` file of `descr` elements (`bytes` each, from `encode`)
    /// written by hand: numpy's header, padded to 64 bytes.
    fn raw_npy(descr: &str, shape: &[usize], fortran: bool, data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| format!("{d},")).collect();
        let order = if fortran { "True" } else { "False" };
        let mut dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({}), }}",
            dims.concat()
        );
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn integer_files_are_read_for_integer_inputs_only() {
        // [2, 3] samples 0..6 as big-endian int16, and as little-endian
        // uint8 in Fortran order (columns first).
        let be: Vec<u8> = (0i16..6).flat_map(|v| v.to_be_bytes()).collect();
        let c = raw_npy(">i2", &[2, 3], false, &be);
        let f = raw_npy("|u1", &[2, 3], true, &[0, 3, 1, 4, 2, 5]);
        for bytes in [&c, &f] {
            let (shape, values) = decode_integer_input_samples(bytes).unwrap();
            assert_eq!(
                (shape, values),
                (vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
            );
            let e = decode_samples(bytes).unwrap_err();
            assert!(e.contains("expected float data"), "{e}");
        }
        // Float files read as for any input; 2^24 is not exact in float32.
        let floats = raw_npy("<f4", &[1, 1], false, &1.5f32.to_le_bytes());
        assert_eq!(decode_integer_input_samples(&floats).unwrap().1, [1.5]);
        let big = raw_npy("<i8", &[1, 1], false, &(-(1i64 << 24)).to_le_bytes());
        let e = decode_integer_input_samples(&big).unwrap_err();
        assert!(e.contains("-16777216 is not exact"), "{e}");
    }

    #[test]
    fn float64_and_float16_files_read_as_float32_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let (n, c) = (3usize, 2usize);
        // Halves, exact in float16: sample i, feature f holds i − f / 2.
        let value = |i: usize, f: usize| i as f32 - f as f32 / 2.0;
        let c_order: Vec<f32> = (0..n * c).map(|k| value(k / c, k % c)).collect();
        let f_order: Vec<f32> = (0..n * c).map(|k| value(k % n, k / n)).collect();
        type Encode = fn(f32) -> Vec<u8>;
        let kinds: [(&str, Encode); 5] = [
            ("<f8", |v| f64::from(v).to_le_bytes().to_vec()),
            (">f8", |v| f64::from(v).to_be_bytes().to_vec()),
            ("<f2", |v| half::f16::from_f32(v).to_le_bytes().to_vec()),
            (">f2", |v| half::f16::from_f32(v).to_be_bytes().to_vec()),
            (">f4", |v| v.to_be_bytes().to_vec()),
        ];
        for (descr, encode) in kinds {
            for (fortran, stored) in [(false, &c_order), (true, &f_order)] {
                let data: Vec<u8> = stored.iter().flat_map(|&v| encode(v)).collect();
                let bytes = raw_npy(descr, &[n, c], fortran, &data);
                let path = dir.path().join("x.npy");
                std::fs::write(&path, &bytes).unwrap();
                for max in [1, 2, 3] {
                    assert_eq!(read_all(&path, max).1, c_order, "{descr} {fortran} {max}");
                }
                assert_eq!(
                    decode_samples(&bytes),
                    Ok((vec![n, c], c_order.clone())),
                    "{descr} {fortran}"
                );
            }
        }
        // A file cut short is refused, not read past its end.
        let bytes = raw_npy("<f8", &[n, c], false, &[0; 40]);
        assert!(decode_samples(&bytes).unwrap_err().contains("truncated"));
    }

    #[test]
    fn labels_of_any_integer_type_or_whole_floats_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let want = [0i64, 3, 1, 2];
        type Encode = fn(i64) -> Vec<u8>;
        let kinds: [(&str, Encode); 7] = [
            ("<i8", |v| v.to_le_bytes().to_vec()),
            ("<i2", |v| (v as i16).to_le_bytes().to_vec()),
            ("|u1", |v| vec![v as u8]),
            ("<u4", |v| (v as u32).to_le_bytes().to_vec()),
            (">i4", |v| (v as i32).to_be_bytes().to_vec()),
            ("<f8", |v| (v as f64).to_le_bytes().to_vec()),
            ("<f4", |v| (v as f32).to_le_bytes().to_vec()),
        ];
        for (descr, encode) in kinds {
            let data: Vec<u8> = want.iter().flat_map(|&v| encode(v)).collect();
            let bytes = raw_npy(descr, &[want.len()], false, &data);
            assert_eq!(
                decode_labels(&bytes),
                Ok((vec![4], want.to_vec())),
                "{descr}"
            );
            let path = dir.path().join("y.npy");
            std::fs::write(&path, &bytes).unwrap();
            let mut r = LabelReader::open(&path).unwrap();
            let mut got = Vec::new();
            assert_eq!(r.read_chunk(10, &mut got).unwrap(), 4, "{descr}");
            assert_eq!(got, want, "{descr}");
        }
        // A fraction is no class index; text is no label.
        let half = raw_npy("<f8", &[1], false, &0.5f64.to_le_bytes());
        assert!(decode_labels(&half)
            .unwrap_err()
            .contains("label 0.5 is not a whole"));
        let text = raw_npy("<U1", &[1], false, &[b'a', 0, 0, 0]);
        assert!(decode_labels(&text)
            .unwrap_err()
            .contains("expected integer class indices"));
    }

    #[test]
    fn non_finite_values_are_refused_naming_file_sample_and_position() {
        let dir = tempfile::tempdir().unwrap();
        for (bad, what) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "an infinity")] {
            let path = dir.path().join("bad.npy");
            let mut values = vec![0.5f32; 10 * 6];
            values[7 * 6 + 4] = bad; // sample 7, channel 1, position 1
            write(&path, &[10, 2, 3], Order::C, &values);
            let mut r = SampleReader::open(&path).unwrap();
            let mut chunk = Vec::new();
            assert_eq!(r.read_chunk(4, &mut chunk).unwrap(), 4);
            let err = r.read_chunk(4, &mut chunk).unwrap_err().to_string();
            assert!(err.contains("bad.npy"), "{err}");
            assert!(
                err.contains(&format!("sample 7 holds {what} at position [1, 1]")),
                "{err}"
            );
        }
    }

    #[test]
    fn bools_read_as_zero_and_one() {
        // numpy's '|b1': a padding mask, one byte per value.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mask.npy");
        npyz::to_file_1d(&path, [true, false, false, true]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (shape, values) = decode_samples(&bytes).unwrap();
        assert_eq!((shape, values), (vec![4], vec![1.0, 0.0, 0.0, 1.0]));
        let (_, all) = read_all(&path, 3);
        assert_eq!(all, [1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn refuses_other_dtypes_scalars_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let i32_path = dir.path().join("i32.npy");
        npyz::to_file_1d(&i32_path, [1i32, 2, 3]).unwrap();
        let err = SampleReader::open(&i32_path).err().unwrap().to_string();
        assert!(err.contains("expected float data"), "{err}");

        let scalar = dir.path().join("scalar.npy");
        write(&scalar, &[], Order::C, &[1.0]);
        let err = SampleReader::open(&scalar).err().unwrap().to_string();
        assert!(err.contains("a scalar"), "{err}");

        let whole = dir.path().join("whole.npy");
        write(&whole, &[4, 3], Order::C, &[1.0; 12]);
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join("cut.npy");
        std::fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
        let err = SampleReader::open(&cut).err().unwrap().to_string();
        assert!(err.contains("is truncated"), "{err}");
    }

    #[test]
    fn an_output_is_renamed_into_place_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("y.npy");
        let mut out = NpyOut::create(&dest, &[2, 3]).unwrap();
        out.append(&[1.0, 2.0, 3.0]).unwrap();
        assert!(out.complete().is_err(), "3 of 6 values must not complete");
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut out = NpyOut::create(&dest, &[2, 3]).unwrap();
        assert!(out.append(&[0.0; 7]).is_err(), "more values than the shape");
        out.append(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        out.complete().unwrap();
        assert!(!dest.exists(), "renamed before rename()");
        out.rename().unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), [2, 3]);
        assert_eq!(
            npy.into_vec::<f32>().unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
