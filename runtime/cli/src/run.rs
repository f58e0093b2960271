//! `medq run`: quantize each sample, invoke, dequantize every output —
//! streamed from the input files to the output files a chunk of samples at
//! a time, on every core, with outputs in input order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use anyhow::{anyhow, bail, Context, Result};
use medq::{Decision, Interpreter, Model};

use crate::npy::{check_labels, LabelReader, NpyOut, SampleReader};

/// One graph input or output as `medq run` sees it: float32 samples of
/// [`Self::sample`], quantized per tensor (by the interpreter's float
/// helpers).
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    /// The tensor's dims.
    pub dims: Vec<usize>,
    /// One sample's dims in a file of samples stacked on the first axis:
    /// the tensor's without its batch of 1, or all of them when it has no
    /// batch axis (a per-step classifier's `[T, C]` output).
    pub sample: Vec<usize>,
    pub numel: usize,
}

/// The inputs and outputs of a model, checked for `medq run`.
#[derive(Clone, Debug)]
pub struct ModelIo {
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
}

impl ModelIo {
    pub fn of(model: &Model) -> Result<ModelIo> {
        let port = |t: medq::TensorInfo, what: &str| -> Result<Port> {
            let dims: Vec<usize> = t.dims().iter().map(|&d| d as usize).collect();
            let sample = crate::npy::sample_dims(&dims).to_vec();
            t.scale_zero_point()
                .with_context(|| format!("{what} {} is not per-tensor quantized", t.name))?;
            Ok(Port {
                name: t.name.to_string(),
                numel: dims.iter().product(),
                dims,
                sample,
            })
        };
        let inputs = (0..model.inputs().len())
            .map(|i| port(model.input_info(i)?, "input"))
            .collect::<Result<_>>()?;
        let outputs = (0..model.outputs().len())
            .map(|i| port(model.output_info(i)?, "output"))
            .collect::<Result<_>>()?;
        Ok(ModelIo { inputs, outputs })
    }

    /// The class count of output 0 for `--labels`: its values per sample,
    /// or 2 for a single probability.
    pub fn classes(&self) -> usize {
        self.outputs.first().map_or(0, |o| o.numel.max(2))
    }

    /// Checks that an input file of `shape` holds samples of input `i`.
    fn check_input(&self, i: usize, path: &Path, shape: &[usize]) -> Result<()> {
        let port = &self.inputs[i];
        if !crate::npy::holds_samples_of(shape, &port.dims) {
            let sample = port.sample.iter().map(|d| format!(", {d}"));
            bail!(
                "input {i} ({}) is {:?}: {} should be [N{}] with samples stacked on the first axis, but it is {shape:?}",
                port.name,
                port.dims,
                path.display(),
                sample.collect::<String>()
            );
        }
        Ok(())
    }

    /// The shape of output `i` over `samples` samples.
    fn output_shape(&self, i: usize, samples: usize) -> Vec<usize> {
        let mut shape = vec![samples];
        shape.extend(&self.outputs[i].sample);
        shape
    }
}

/// Top-1 class of one sample's output 0 (a single value is a binary
/// probability), by the runtime's rule ([`medq::decision::top1`]).
pub fn top1(row: &[f32]) -> i64 {
    medq::decision::top1(row.iter().copied()).map_or(0, |t| t.class as i64)
}

/// The class of one sample's output 0, or [`Decision::Uncertain`] when its
/// top-1 margin is below `abstain_margin` (the model's, if it stores one).
pub fn decide(row: &[f32], abstain_margin: Option<f32>) -> Decision {
    medq::decision::top1(row.iter().copied()).map_or(Decision::Uncertain, |t| {
        medq::decision::decide(t, abstain_margin)
    })
}

/// One interpreter with its arena and plan: runs chunks of samples.
struct Runner<'i, 'm, 'a> {
    interp: Interpreter<'m, 'a>,
    io: &'i ModelIo,
}

impl Runner<'_, '_, '_> {
    /// Runs `rows` samples, numbered from `first` in error messages
    /// (`inputs[i]` holds `rows` samples of input `i`),
    /// replaces `outputs[i]` with their dequantized output `i` and `clipped`
    /// with each sample's count of input values clipped to the calibrated
    /// range (all inputs together).
    fn run<X: AsRef<[f32]>>(
        &mut self,
        first: usize,
        rows: usize,
        inputs: &[X],
        outputs: &mut [Vec<f32>],
        clipped: &mut Vec<usize>,
    ) -> Result<()> {
        outputs.iter_mut().for_each(Vec::clear);
        clipped.clear();
        for r in 0..rows {
            let mut sample_clipped = 0;
            for (i, port) in self.io.inputs.iter().enumerate() {
                let x = inputs[i]
                    .as_ref()
                    .get(r * port.numel..(r + 1) * port.numel)
                    .context("input chunk too short")?;
                let report = self
                    .interp
                    .set_input_f32(i, x)
                    .with_context(|| format!("sample {}, input {i} ({})", first + r, port.name))?;
                sample_clipped += report.clipped;
            }
            clipped.push(sample_clipped);
            self.interp.invoke()?;
            for (i, port) in self.io.outputs.iter().enumerate() {
                let start = outputs[i].len();
                outputs[i].resize(start + port.numel, 0.0);
                self.interp.output_f32(i, &mut outputs[i][start..])?;
            }
        }
        Ok(())
    }
}

/// Calls `f` with a fresh [`Runner`] for `model` (its arena and plan live
/// on this call's stack frame).
fn with_runner<T>(
    model: &Model,
    io: &ModelIo,
    f: impl FnOnce(&mut Runner) -> Result<T>,
) -> Result<T> {
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let interp = Interpreter::new(model, &mut arena, &mut plan)?;
    f(&mut Runner { interp, io })
}

/// What `medq run` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// One float32 `.npy` per model input, in the model's input order.
    pub inputs: Vec<PathBuf>,
    /// One destination per model output, in order.
    pub outputs: Vec<PathBuf>,
    /// Class indices to score output 0's top-1 against.
    pub labels: Option<PathBuf>,
    /// Worker threads (each with its own interpreter); at least 1.
    pub threads: usize,
    /// Samples per chunk; `None` chooses by size (see [`chunk_samples`]).
    pub chunk_samples: Option<usize>,
}

/// What a finished `medq run` did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub samples: usize,
    pub output_shapes: Vec<Vec<usize>>,
    /// Samples whose class matched the label, with `--labels` (an
    /// uncertain sample is never correct).
    pub correct: Option<usize>,
    /// Input values outside the calibrated range, clipped.
    pub clipping: SampleCounts,
    /// Samples whose output 0 leads by less than the model's abstain
    /// margin (none without one).
    pub uncertain: SampleCounts,
    /// The model's abstain margin, if it stores one.
    pub abstain_margin: Option<f32>,
    /// Worker threads used (never more than there are chunks).
    pub threads: usize,
}

/// How many samples something happened to, and the first of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleCounts {
    /// Samples it happened to.
    pub samples: usize,
    /// Occurrences over all samples (clipped values; for uncertain
    /// samples, equal to `samples`).
    pub total: usize,
    /// The first [`SampleCounts::FIRST`] such samples' indices, in order.
    pub first: Vec<usize>,
}

impl SampleCounts {
    /// How many sample indices are kept for the report.
    pub const FIRST: usize = 10;

    /// Records `count` occurrences in sample `index` (nothing for 0).
    fn add(&mut self, index: usize, count: usize) {
        if count == 0 {
            return;
        }
        self.samples += 1;
        self.total += count;
        if self.first.len() < Self::FIRST {
            self.first.push(index);
        }
    }
}

/// Bytes of float inputs and outputs one worker holds per chunk, about.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Samples per chunk: about [`CHUNK_BYTES`] of float inputs and outputs, at
/// least 1, and small enough that every thread gets about 4 chunks.
pub fn chunk_samples(io: &ModelIo, samples: usize, threads: usize) -> usize {
    let per_sample: usize = io
        .inputs
        .iter()
        .chain(&io.outputs)
        .map(|p| p.numel * 4)
        .sum();
    let by_size = CHUNK_BYTES / per_sample.max(1);
    let spread = samples.div_ceil(4 * threads.max(1));
    by_size.min(spread).max(1)
}

/// `medq run`: checks everything, then streams the input files through
/// `opts.threads` interpreters into the output files. Nothing is written
/// under an output's name unless the whole run succeeds.
pub fn run_files(model: &Model, opts: &RunOptions) -> Result<RunSummary> {
    if opts.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let io = ModelIo::of(model)?;
    let readers = open_inputs(&io, &opts.inputs)?;
    check_outputs(&io, &opts.outputs)?;
    let samples = readers.first().map_or(0, SampleReader::samples);
    if let Some(labels) = &opts.labels {
        check_labels(labels, samples, io.classes())?;
    }
    let outs = opts
        .outputs
        .iter()
        .enumerate()
        .map(|(i, path)| NpyOut::create(path, &io.output_shape(i, samples)))
        .collect::<Result<Vec<_>>>()?;
    let labels = opts.labels.as_deref().map(LabelReader::open).transpose()?;
    let chunk = opts
        .chunk_samples
        .unwrap_or_else(|| chunk_samples(&io, samples, opts.threads))
        .max(1);
    let threads = opts.threads.min(samples.div_ceil(chunk)).max(1);
    let abstain_margin = model.abstain_margin();
    let pipeline = Pipeline::new(readers, outs, labels, abstain_margin);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| pipeline.work(model, &io, chunk));
        }
    });
    let Delivered {
        mut outs,
        correct,
        clipping,
        uncertain,
    } = pipeline.finish()?;
    for out in &mut outs {
        out.complete()?;
    }
    for out in outs {
        out.rename()?;
    }
    Ok(RunSummary {
        samples,
        output_shapes: (0..io.outputs.len())
            .map(|i| io.output_shape(i, samples))
            .collect(),
        correct: opts.labels.as_ref().map(|_| correct),
        clipping,
        uncertain,
        abstain_margin,
        threads,
    })
}

/// Opens one file per model input and checks its shape and sample count.
fn open_inputs(io: &ModelIo, paths: &[PathBuf]) -> Result<Vec<SampleReader>> {
    if paths.len() != io.inputs.len() {
        let names: Vec<&str> = io.inputs.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "the model has {} inputs ({}); give --input once for each, in that order (got {})",
            io.inputs.len(),
            names.join(", "),
            paths.len()
        );
    }
    let readers = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let r = SampleReader::open(path)?;
            io.check_input(i, path, r.shape())?;
            Ok(r)
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(first) = readers.first() {
        for r in &readers[1..] {
            if r.samples() != first.samples() {
                bail!(
                    "{} holds {} samples but {} holds {}: every input file needs one row per sample",
                    r.path().display(),
                    r.samples(),
                    first.path().display(),
                    first.samples()
                );
            }
        }
    }
    Ok(readers)
}

fn check_outputs(io: &ModelIo, paths: &[PathBuf]) -> Result<()> {
    if paths.len() != io.outputs.len() {
        bail!(
            "the model has {} outputs; give --output once for each (got {})",
            io.outputs.len(),
            paths.len()
        );
    }
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            bail!("--output {} is given twice", p.display());
        }
    }
    Ok(())
}

/// The shared state of a streamed run: workers take chunks from `source`
/// in file order, run them, and hand them to `sink` strictly in that order
/// (a worker whose chunk is early waits its turn), so at most one chunk
/// per worker is in memory and the outputs come out in input order.
struct Pipeline {
    source: Mutex<Source>,
    sink: Mutex<Sink>,
    turn: Condvar,
    stop: AtomicBool,
}

struct Source {
    readers: Vec<SampleReader>,
    next_chunk: usize,
    next_sample: usize,
}

struct Sink {
    labels: Option<LabelReader>,
    label_chunk: Vec<i64>,
    abstain_margin: Option<f32>,
    /// Samples delivered so far, to number them.
    samples: usize,
    done: Delivered,
    next_chunk: usize,
    error: Option<anyhow::Error>,
}

/// What the sink has been handed: the outputs and the per-sample counts.
struct Delivered {
    outs: Vec<NpyOut>,
    correct: usize,
    clipping: SampleCounts,
    uncertain: SampleCounts,
}

/// A worker's buffers for one chunk.
struct Chunk {
    index: usize,
    first_sample: usize,
    rows: usize,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
    /// Per sample: input values clipped.
    clipped: Vec<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker poisons nothing we cannot read: it sets `stop`.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipeline {
    fn new(
        readers: Vec<SampleReader>,
        outs: Vec<NpyOut>,
        labels: Option<LabelReader>,
        abstain_margin: Option<f32>,
    ) -> Pipeline {
        Pipeline {
            source: Mutex::new(Source {
                readers,
                next_chunk: 0,
                next_sample: 0,
            }),
            sink: Mutex::new(Sink {
                labels,
                label_chunk: Vec::new(),
                abstain_margin,
                samples: 0,
                done: Delivered {
                    outs,
                    correct: 0,
                    clipping: SampleCounts::default(),
                    uncertain: SampleCounts::default(),
                },
                next_chunk: 0,
                error: None,
            }),
            turn: Condvar::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// One worker: its own interpreter, chunks until the inputs run out or
    /// a worker fails.
    fn work(&self, model: &Model, io: &ModelIo, chunk_samples: usize) {
        let _guard = StopOnPanic(self);
        let mut chunk = Chunk {
            index: 0,
            first_sample: 0,
            rows: 0,
            inputs: vec![Vec::new(); io.inputs.len()],
            outputs: vec![Vec::new(); io.outputs.len()],
            clipped: Vec::new(),
        };
        let result = with_runner(model, io, |runner| {
            while self.take(&mut chunk, chunk_samples)? {
                runner.run(
                    chunk.first_sample,
                    chunk.rows,
                    &chunk.inputs,
                    &mut chunk.outputs,
                    &mut chunk.clipped,
                )?;
                if !self.deliver(&chunk, io)? {
                    break;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.fail(e);
        }
    }

    /// Reads the next chunk of every input; `false` when there is none left
    /// or the run is stopping.
    fn take(&self, chunk: &mut Chunk, chunk_samples: usize) -> Result<bool> {
        let mut source = lock(&self.source);
        if self.stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut rows = None;
        for (reader, buf) in source.readers.iter_mut().zip(&mut chunk.inputs) {
            let read = reader.read_chunk(chunk_samples, buf);
            if read.is_err() {
                // Stop before releasing the lock: a reader that failed
                // mid-chunk is in no state for another worker to read on
                // (its error, not the first one's, would be reported).
                self.stop.store(true, Ordering::Release);
            }
            let n = read?;
            if rows.is_some_and(|r| r != n) {
                self.stop.store(true, Ordering::Release);
                bail!("{} ran out of samples early", reader.path().display());
            }
            rows = Some(n);
        }
        chunk.rows = rows.unwrap_or(0);
        chunk.index = source.next_chunk;
        chunk.first_sample = source.next_sample;
        source.next_chunk += 1;
        source.next_sample += chunk.rows;
        Ok(chunk.rows > 0)
    }

    /// Waits for `chunk`'s turn and appends it to the outputs; `false` if
    /// the run stopped instead.
    fn deliver(&self, chunk: &Chunk, io: &ModelIo) -> Result<bool> {
        let mut sink = lock(&self.sink);
        while sink.next_chunk != chunk.index && !self.stop.load(Ordering::Acquire) {
            sink = self.turn.wait(sink).unwrap_or_else(|e| e.into_inner());
        }
        if self.stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        let sink = &mut *sink;
        for (out, values) in sink.done.outs.iter_mut().zip(&chunk.outputs) {
            out.append(values)?;
        }
        let per = io.outputs[0].numel.max(1);
        let decisions = chunk.outputs[0]
            .chunks_exact(per)
            .map(|row| decide(row, sink.abstain_margin));
        if let Some(labels) = &mut sink.labels {
            labels.read_chunk(chunk.rows, &mut sink.label_chunk)?;
        }
        for (r, (decision, &clipped)) in decisions.zip(&chunk.clipped).enumerate() {
            let index = sink.samples + r;
            sink.done.clipping.add(index, clipped);
            match decision {
                Decision::Uncertain => sink.done.uncertain.add(index, 1),
                Decision::Class(c) => {
                    let label = sink.labels.as_ref().and(sink.label_chunk.get(r));
                    sink.done.correct += usize::from(label == Some(&(c as i64)));
                }
            }
        }
        sink.samples += chunk.rows;
        sink.next_chunk += 1;
        self.turn.notify_all();
        Ok(true)
    }

    /// Records the first error and wakes every waiting worker to stop.
    fn fail(&self, e: anyhow::Error) {
        let mut sink = lock(&self.sink);
        sink.error.get_or_insert(e);
        self.stop.store(true, Ordering::Release);
        self.turn.notify_all();
    }

    /// The outputs (every chunk appended) and the counts, or the first error.
    fn finish(self) -> Result<Delivered> {
        let sink = self.sink.into_inner().unwrap_or_else(|e| e.into_inner());
        match sink.error {
            Some(e) => Err(e),
            None if self.stop.into_inner() => Err(anyhow!("a worker thread panicked")),
            None => Ok(sink.done),
        }
    }
}

/// Stops the run if its worker panics, so that no other worker waits
/// forever for the panicked worker's chunk.
struct StopOnPanic<'p>(&'p Pipeline);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let sink = lock(&self.0.sink);
            self.0.stop.store(true, Ordering::Release);
            self.0.turn.notify_all();
            drop(sink);
        }
    }
}

/// Float32 samples held in memory.
pub struct NpyF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads a whole float32 `.npy` (checked like `medq run` checks its inputs:
/// finite values, Fortran order transposed).
pub fn read_npy_f32(path: &Path) -> Result<NpyF32> {
    let mut r = SampleReader::open(path)?;
    let mut data = Vec::new();
    r.read_chunk(r.samples(), &mut data)?;
    Ok(NpyF32 {
        shape: r.shape().to_vec(),
        data,
    })
}

/// Reads every label of a `.npy` ([`LabelReader`]).
pub fn read_npy_labels(path: &Path) -> Result<Vec<i64>> {
    let mut r = LabelReader::open(path)?;
    let mut labels = Vec::new();
    r.read_chunk(r.len(), &mut labels)?;
    Ok(labels)
}

/// Dequantized outputs of an in-memory run: one `[N, d1..dk]` array per
/// model output.
pub struct RunOutput {
    pub shapes: Vec<Vec<usize>>,
    pub data: Vec<Vec<f32>>,
    pub samples: usize,
    /// Per sample: input values outside the calibrated range, clipped.
    pub clipped: Vec<usize>,
}

/// Runs a single-input model on samples held in memory, on this thread.
pub fn run_batch(model: &Model, input: &NpyF32) -> Result<RunOutput> {
    run_batch_inputs(model, std::slice::from_ref(input))
}

/// Runs samples held in memory (one array per model input) on this thread.
pub fn run_batch_inputs(model: &Model, inputs: &[NpyF32]) -> Result<RunOutput> {
    let io = ModelIo::of(model)?;
    if inputs.len() != io.inputs.len() {
        bail!(
            "the model has {} inputs, {} arrays were given",
            io.inputs.len(),
            inputs.len()
        );
    }
    for (i, x) in inputs.iter().enumerate() {
        io.check_input(i, Path::new(&format!("array {i}")), &x.shape)?;
    }
    let samples = inputs.first().map_or(0, |x| x.shape[0]);
    if inputs.iter().any(|x| x.shape[0] != samples) {
        bail!("every input array needs one row per sample");
    }
    let data: Vec<&[f32]> = inputs.iter().map(|x| &x.data[..]).collect();
    let mut outputs = vec![Vec::new(); io.outputs.len()];
    let mut clipped = Vec::new();
    with_runner(model, &io, |runner| {
        runner.run(0, samples, &data, &mut outputs, &mut clipped)
    })?;
    Ok(RunOutput {
        shapes: (0..io.outputs.len())
            .map(|i| io.output_shape(i, samples))
            .collect(),
        data: outputs,
        samples,
        clipped,
    })
}

/// Top-1 accuracy of output 0 against labels.
pub fn accuracy(out: &RunOutput, labels: &[i64]) -> Result<f64> {
    if labels.len() != out.samples {
        bail!("{} labels for {} samples", labels.len(), out.samples);
    }
    let per = out.data[0].len() / out.samples.max(1);
    let correct = out.data[0]
        .chunks_exact(per.max(1))
        .zip(labels)
        .filter(|(row, &y)| top1(row) == y)
        .count();
    Ok(correct as f64 / out.samples.max(1) as f64)
}
