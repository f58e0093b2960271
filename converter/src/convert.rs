//! The whole conversion, from ONNX path to an atomically written `.mq` file.

use std::path::{Path, PathBuf};

use crate::calibrate::{self, Method};
use crate::emit::{self, Metadata, WeightStorage, WeightStorage::Dense};
use crate::error::ConvertError;
use crate::evaluate;
use crate::float_ref::FloatRef;
use crate::ir::{Graph, Op, TensorId};
use crate::load::{load_onnx_with, LoadOptions};
use crate::prune_weights::{SparseLayer, StoredWeights};
use crate::quantize;
use crate::report::{
    Baseline, Candidate, EqualizationChoice, EvaluationReport, InputReport, LayerReport,
    PruningReport, Report, SelectionReport, Totals, WeightPruningReport,
};
use crate::rewrite::rewrite;
use crate::rounding::{InputMoments, LayerMoments, Rounding, WeightGrid, WeightQuant};
use crate::samples::{self, SampleSet};

/// Everything `converter` can be told.
#[derive(Clone, Debug)]
pub struct Options {
    pub model: PathBuf,
    pub output: PathBuf,
    /// Full static shapes (batch 1 first) of graph inputs, by name, for
    /// inputs with symbolic dimensions other than the batch.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Functions the application applies to raw graph outputs, by output
    /// name ([`crate::ir::OutputActivation`]).
    pub output_activations: Vec<(String, crate::ir::OutputActivation)>,
    /// `--input-range NAME=lo,hi`: a graph input's encoding from the range
    /// it can take in deployment instead of its calibration samples'.
    pub input_ranges: Vec<(String, (f32, f32))>,
    /// Representative float32 samples `[N, d1..dk]`, one file per model
    /// input in the model's input order. Required.
    pub calib: Vec<PathBuf>,
    pub method: Method,
    /// Percentile for [`Method::Percentile`], e.g. 99.99.
    pub percentile: f32,
    /// How Conv/FullyConnected weights are rounded to their grid.
    pub rounding: Rounding,
    /// Which activations are int16 (`--precision auto`, `--int16`); the
    /// report then also measures the all-int8 file.
    pub precision: crate::precision::Choice,
    /// The grid Conv/FullyConnected weights are quantized to (`--weights`).
    /// On [`WeightGrid::Pow2`] the report also measures the same conversion
    /// with int8 weights.
    pub weights: WeightGrid,
    /// Held-out samples (neither calibration nor test data) to choose the
    /// calibration method and weight rounding on: every [`Setting`] of
    /// [`search_space`] is tried and the one with the best output SQNR kept;
    /// `method`, `percentile` and `rounding` are then ignored. One file
    /// per model input, like `calib`; empty for none.
    pub select: Vec<PathBuf>,
    /// Held-out samples for the report, one file per model input; the
    /// calibration samples when empty.
    pub eval: Vec<PathBuf>,
    /// Class indices for `eval` (or for `calib` when no `eval` is given).
    pub labels: Option<PathBuf>,
    /// The graph output the labels are the classes of; output 0 when `None`.
    pub labels_output: Option<String>,
    /// A text file with one class name per line, stored in the model.
    pub class_names: Option<PathBuf>,
    /// Remove filters and neurons ([`crate::prune`]) to this target.
    pub prune: Option<crate::prune::Target>,
    /// Set individual weights to zero ([`crate::prune_weights`]).
    pub prune_weights: Option<crate::prune_weights::WeightPruning>,
    /// Compare occlusion attribution maps of the int8 (and unpruned) model
    /// with the float model's ([`crate::attribution`]).
    pub attribution: bool,
    /// Also draw sample 0 with its float and int8 maps into this SVG file.
    pub attribution_svg: Option<PathBuf>,
    /// Which pairs of weighted layers joined by a ReLU cross-layer
    /// equalization balances before quantization
    /// ([`crate::rewrite::equalize`]).
    pub equalize: crate::rewrite::equalize::Which,
    /// Keep every weight a byte in the file (for runtimes built without
    /// `sparse-weights` or `pow2-weights`); otherwise a pruned or
    /// power-of-two layer is stored sparse or in 4-bit codes, whichever is
    /// smallest.
    pub dense_weights: bool,
    /// Name only the graph's inputs and outputs in the file.
    pub strip_names: bool,
    /// Store the first evaluation sample and its int8 output for a device
    /// self-test (every input and output 0).
    pub golden: bool,
    /// Sign the file with this Ed25519 secret key (PKCS#8 PEM, from
    /// `medq keygen`); see [`medq::sign`].
    pub sign: Option<PathBuf>,
    /// Store the abstain rule's minimum top-1 margin of output 0, in the
    /// file's form: `0.` then 1 to 6 digits ([`medq::decision::parse_margin`]).
    pub abstain_margin: Option<String>,
    /// Show progress bars.
    pub progress: bool,
}

impl Options {
    pub fn new(model: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Options {
        Options {
            model: model.into(),
            output: output.into(),
            input_shapes: Vec::new(),
            output_activations: Vec::new(),
            input_ranges: Vec::new(),
            calib: Vec::new(),
            method: Method::Mse,
            percentile: 99.99,
            rounding: Rounding::Nearest,
            weights: WeightGrid::Int8,
            precision: crate::precision::Choice::Int8,
            select: Vec::new(),
            eval: Vec::new(),
            labels: None,
            labels_output: None,
            class_names: None,
            prune: None,
            prune_weights: None,
            dense_weights: false,
            strip_names: false,
            equalize: Default::default(),
            attribution: false,
            attribution_svg: None,
            golden: true,
            sign: None,
            abstain_margin: None,
            progress: false,
        }
    }
}

/// Why a converter cannot do without representative data.
pub const CALIBRATION_REQUIRED: &str = "representative input samples are required (--calib FILE.npy): \
int8 quantization needs the real range of every activation tensor, and those ranges depend on the data \
the model will see. Guessing them would silently cost accuracy. Pass a float32 .npy of shape [N, ...] \
holding a few hundred typical inputs, e.g. part of the training set (for a model with several inputs, \
one file per input, in the model's input order).";

/// Why a model whose QDQ nodes quantize only its weights still needs data.
pub const WEIGHTS_ONLY_CALIBRATION_REQUIRED: &str = "this model quantizes only its weights \
(DequantizeLinear on constants, as TFLite's dynamic-range quantization and ONNX Runtime's weight-only \
quantization write them, or ONNX Runtime's quantize_dynamic, whose activation ranges are measured at \
run time): medq keeps those int8 weights and their scales, but every activation still \
needs its real range, and those ranges depend on the data. Pass --calib FILE.npy, a float32 .npy of \
shape [N, ...] holding a few hundred typical inputs (one file per model input, in the model's input order).";

/// How much better (dB, the worst output's SQNR on the `--select` samples)
/// equalizing every pair must be for `--select` to choose it over the
/// default.
pub const EQUALIZE_ALL_MARGIN_DB: f64 = 1.0;

/// What a QDQ model converted without `--calib` still needs.
pub const QDQ_EVAL_REQUIRED: &str = "this QDQ model brings its own scales and zero points, so \
--calib is optional, but the report and the golden pair run the model on samples: pass --eval FILE.npy \
(held-out inputs, one file per model input)";

/// How the file's notes describe a QDQ model's quantization.
const QDQ_NOTE: &str = "quantization: the model's own QDQ scales and zero points";

/// Refuse, before any work, what would lose a file or leave one
/// half-written: `opts.output` (or any of `extra_outputs`, such as the CLI's
/// JSON report) being one of the input files or another output, a
/// percentile outside (50, 100], an abstain margin not in the file's form,
/// and an output whose directory does not exist. [`convert`] runs it with no extra outputs; a caller that writes
/// more after `convert` passes them.
pub fn check_paths(opts: &Options, extra_outputs: &[&Path]) -> Result<(), ConvertError> {
    if !(opts.percentile > 50.0 && opts.percentile <= 100.0) {
        return Err(ConvertError::Usage(format!(
            "--percentile {} is not in (50, 100]: it is the upper percentile kept \
             (the lower is 100 minus it)",
            opts.percentile
        )));
    }
    if let Some(m) = &opts.abstain_margin {
        if medq::decision::parse_margin(m).is_none() {
            return Err(ConvertError::Usage(format!(
                "--abstain-margin {m:?} is not a margin in (0, 1) written as 0. and 1 to 6 \
                 digits (e.g. 0.2)"
            )));
        }
    }
    let inputs = [&opts.model]
        .into_iter()
        .chain(&opts.calib)
        .chain(&opts.eval)
        .chain(&opts.select)
        .chain(&opts.labels)
        .chain(&opts.class_names)
        .chain(&opts.sign);
    let inputs: Vec<&Path> = inputs.map(PathBuf::as_path).collect();
    let outputs: Vec<&Path> = [opts.output.as_path()]
        .into_iter()
        .chain(opts.attribution_svg.as_deref())
        .chain(extra_outputs.iter().copied())
        .collect();
    for (k, out) in outputs.iter().enumerate() {
        if let Some(input) = inputs.iter().find(|i| same_file(i, out)) {
            return Err(ConvertError::Usage(format!(
                "the output {} is the input file {}: refusing to overwrite it",
                out.display(),
                input.display()
            )));
        }
        if let Some(other) = outputs[..k].iter().find(|o| same_path(o, out)) {
            return Err(ConvertError::Usage(format!(
                "two outputs go to one file ({} and {})",
                other.display(),
                out.display()
            )));
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(ConvertError::Usage(format!(
                "cannot write {}: the directory {} does not exist",
                out.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Whether `a` and `b` are one existing file (through links too).
fn same_file(a: &Path, b: &Path) -> bool {
    same_file::is_same_file(a, b).unwrap_or(false)
}

/// Whether two outputs name one file: the same existing file, or the same
/// path once the (existing) directories are resolved.
fn same_path(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| -> Option<PathBuf> {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    same_file(a, b) || matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// Convert, write `opts.output` atomically, and return the report. On any
/// error nothing is written.
pub fn convert(opts: &Options) -> Result<Report, ConvertError> {
    check_paths(opts, &[])?;
    // A bad key fails before any work.
    let signing_key = match &opts.sign {
        Some(path) => Some(
            medq_cli::keys::read_signing_key(path)
                .map_err(|e| ConvertError::Usage(format!("--sign: {e:#}")))?,
        ),
        None => None,
    };
    // Dims the model leaves dynamic take their sizes in the samples (the
    // evaluation files when a QDQ model is given none to calibrate on).
    let sample_files = if opts.calib.is_empty() {
        &opts.eval
    } else {
        &opts.calib
    };
    let load = LoadOptions {
        input_shapes: opts.input_shapes.clone(),
        sample_shapes: sample_files
            .iter()
            .map(|p| crate::samples::npy_shape(p))
            .collect::<Result<_, _>>()?,
    };
    let loaded = load_onnx_with(&opts.model, &load)?;
    let mut graph = loaded.graph;
    if opts.calib.is_empty() {
        // A QDQ model brings its own encodings; evaluating still needs inputs.
        if graph.qdq.is_empty() {
            return Err(ConvertError::CalibrationRequired(CALIBRATION_REQUIRED));
        }
        if graph.qdq.activations.is_empty() {
            return Err(ConvertError::CalibrationRequired(
                WEIGHTS_ONLY_CALIBRATION_REQUIRED,
            ));
        }
        if opts.eval.is_empty() {
            return Err(ConvertError::Usage(QDQ_EVAL_REQUIRED.into()));
        }
    }
    let pruning_asked = opts.prune.is_some() || opts.prune_weights.is_some();
    if !graph.qdq.is_empty() && pruning_asked {
        return Err(ConvertError::Usage(
            "pruning refits weights, and this QDQ model fixes its int8 weights: \
             prune the float model, then quantize it"
                .into(),
        ));
    }
    let mut rewrites = rewrite(&mut graph)?;
    let before = rewrites.0.len();
    {
        use crate::rewrite::equalize::{run, Which};
        match (opts.equalize, graph.qdq.is_empty()) {
            (Which::All, false) => {
                return Err(ConvertError::Usage(
                    "--equalize all rescales weights, and this QDQ model fixes its int8 weights"
                        .into(),
                ))
            }
            // A QDQ model's weights are its own.
            (_, false) => {}
            (which, true) => run(&mut graph, &mut rewrites, which),
        }
    }
    let mut equalized = rewrites.0.len() > before;
    // After the rewrites, which may renumber tensors.
    for (name, activation) in &opts.output_activations {
        let output = named(
            &graph,
            &graph.outputs,
            name,
            "--output-activation",
            "output",
        )?;
        graph.output_activations.insert(output, *activation);
    }
    for (name, range) in &opts.input_ranges {
        let input = named(&graph, &graph.inputs, name, "--input-range", "input")?;
        graph.input_ranges.insert(input, *range);
    }
    let Data {
        calib,
        eval,
        select,
        labels,
        label_output,
        class_names,
    } = Data::load(opts, &graph)?;
    let eval_set = eval.as_ref().unwrap_or(&calib);
    let labels = labels.as_deref().map(|classes| evaluate::Labels {
        classes,
        output: label_output,
    });
    let golden = opts.golden;
    let shapes: Vec<Vec<usize>> = calib
        .inputs
        .iter()
        .map(|s| s.sample_shape.clone())
        .collect();
    let float_ref = FloatRef::with_inputs(&opts.model, &shapes)?;
    let bar = progress_bar(opts.progress, "calibrating");
    let asked = Setting {
        method: opts.method,
        percentile: opts.percentile,
        rounding: opts.rounding,
        weights: opts.weights,
    };
    // GPTQ rounds with the weighted layers' input moments, pruning refits with them.
    let obs = matches!(opts.prune_weights, Some(w) if w.criterion == crate::prune_weights::Criterion::Obs);
    // A power-of-two grid's scales are chosen on them too.
    let moments = select.is_some()
        || asked.rounding == Rounding::Gptq
        || asked.weights.is_pow2()
        || opts.prune.is_some()
        || obs;
    let mut calibration = calibrate::calibrate(&graph, &float_ref, &calib, moments, &bar)?;

    let mut meta = Metadata {
        model_name: model_name(&opts.model),
        converter_version: crate::VERSION.to_string(),
        source_sha256: samples::sha256_hex(&loaded.source_bytes),
        calibration_sha256: calib.sha256.clone(),
        class_labels: class_names,
        abstain_margin: opts.abstain_margin.clone(),
        notes: String::new(),
        strip_names: opts.strip_names,
    };
    // `--select` also weighs equalizing every pair against the default:
    // it helps depthwise-separable detectors and costs small trained CNNs,
    // so the held-out samples decide. An explicit `--equalize` other than
    // the default, pruning (which refits on one graph) and QDQ models'
    // fixed weights leave it alone.
    let weigh_equalization = opts.equalize == crate::rewrite::equalize::Which::Erased
        && graph.qdq.is_empty()
        && !pruning_asked;
    let mut searched: Option<SelectionReport> = None;
    if let (Some(set), true) = (&select, weigh_equalization) {
        use crate::rewrite::equalize::{run, Which};
        let mut all = graph.clone();
        let mut log = crate::rewrite::RewriteLog(rewrites.0.clone());
        run(&mut all, &mut log, Which::All);
        if log.0.len() > rewrites.0.len() {
            let bar = progress_bar(opts.progress, "calibrating, equalized");
            let all_calibration = calibrate::calibrate(&all, &float_ref, &calib, moments, &bar)?;
            let bar = progress_bar(opts.progress, "selecting equalization");
            let search_on = |g: &Graph, c: &calibrate::Calibration| {
                search(g, c, &meta, &float_ref, set, asked.weights, &bar)
            };
            let default = search_on(&graph, &calibration)?;
            let every = search_on(&all, &all_calibration)?;
            // The best setting's score on the held-out samples.
            let best = |s: &SelectionReport| {
                s.candidates
                    .get(s.chosen)
                    .map_or(f64::NEG_INFINITY, |c| c.score_db)
            };
            let (every_db, default_db) = (best(&every), best(&default));
            // By a clear margin: held-out sets of a hundred samples rank
            // settings a fraction of a dB apart either way (mlp_digits:
            // +0.3 dB on its select set, −4 dB on its test set).
            let every_pair = every_db >= default_db + EQUALIZE_ALL_MARGIN_DB;
            let choice = EqualizationChoice {
                every_pair_db: every_db,
                default_db,
                every_pair,
            };
            // Without pruning the graph searched is the one written: its
            // search is the selection below, not run again.
            let line = if every_pair {
                graph = all;
                calibration = all_calibration;
                rewrites = log;
                equalized = true;
                searched = Some(SelectionReport {
                    equalization: Some(choice),
                    ..every
                });
                "--select chose to equalize every pair"
            } else {
                searched = Some(SelectionReport {
                    equalization: Some(choice),
                    ..default
                });
                "--select kept the default equalization"
            };
            rewrites.0.push(format!(
                "{line}: the worst output's SQNR on the held-out samples is {every_db:.1} dB \
                 with every pair equalized, {default_db:.1} dB without"
            ));
        }
    }
    let notes =
        |setting: Setting, selected: Option<&(usize, String)>, pruned: Option<(usize, usize)>| {
            let mut n = format!(
                "calibration: {}, {} samples; weight rounding: {}",
                setting.method_name(),
                calib.len(),
                setting.rounding.name()
            );
            if setting.weights != WeightGrid::Int8 {
                n = format!("{n} + {}", setting.weights.name());
            }
            if equalized {
                n.push_str("; cross-layer equalization");
            }
            if !graph.qdq.is_empty() {
                n = format!("{QDQ_NOTE}; other tensors: {n}");
            }
            if let Some((samples, sha256)) = selected {
                n.push_str(&format!(
                    "; chosen by output SQNR on {samples} held-out samples (sha256 {sha256})"
                ));
            }
            if let (Some((removed, total)), Some(target)) = (pruned, opts.prune) {
                n.push_str(&format!(
                    "; pruned {removed} of {total} filters (least-squares refit) for {}",
                    target.describe()
                ));
            }
            if let Some(spec) = opts.prune_weights {
                n.push_str(&format!("; weights pruned: {}", spec.describe()));
            }
            for (name, (lo, hi)) in &opts.input_ranges {
                n.push_str(&format!(
                    "; input {name} encodes the declared range [{lo}, {hi}]"
                ));
            }
            n
        };
    let golden_len = (
        shapes.iter().map(|s| s.iter().product::<usize>()).sum(),
        graph
            .outputs
            .first()
            .map_or(0, |&t| graph.tensors[t].shape.iter().product::<usize>()),
    );

    let pruned = match opts.prune {
        None => None,
        Some(target) => {
            // The size a pruned graph would be written at: with the longest
            // notes any setting could give, and the golden pair if asked for.
            let selected = select.as_ref().map(|set| (set.len(), set.sha256.clone()));
            let settings = match select {
                Some(_) => search_space(asked.weights),
                None => vec![asked],
            };
            let zeros = (vec![0i8; golden_len.0], vec![0i8; golden_len.1]);
            let golden = golden.then_some((&zeros.0[..], &zeros.1[..]));
            let nearest = Setting {
                rounding: Rounding::Nearest,
                ..asked
            };
            let file_bytes = |g: &Graph, counts| -> Result<usize, ConvertError> {
                let mut meta = meta.clone();
                meta.notes = settings
                    .iter()
                    .map(|&s| notes(s, selected.as_ref(), Some(counts)))
                    .max_by_key(String::len)
                    .unwrap_or_default();
                let storage = weight_storage(opts, nearest, false);
                Ok(
                    Written::new(g, &calibration, nearest, meta, golden, storage)?
                        .bytes
                        .len(),
                )
            };
            Some(crate::prune::prune(
                &graph,
                &calibration,
                target,
                file_bytes,
            )?)
        }
    };
    // Weight pruning, on the filter-pruned graph when there is one. The
    // zeros change every later activation, so the pruned graph is then
    // calibrated again on its own float values (tract runs the original).
    let sparse = match opts.prune_weights {
        None => None,
        Some(spec) => {
            use crate::calibrate::{calibrate_from, Values};
            use crate::prune_weights::{
                obs_counts, prune_obs_sequential, prune_weights, Criterion,
            };
            let bar = progress_bar(opts.progress, "pruning weights");
            let mut g = pruned
                .as_ref()
                .map_or_else(|| graph.clone(), |p| p.graph.clone());
            let before = pruned.as_ref().map_or(&calibration, |p| &p.calibration);
            let layers = match spec.criterion {
                Criterion::Obs => {
                    let counts = obs_counts(&g, spec.sparsity, spec.scope, &before.moments);
                    prune_obs_sequential(&mut g, &counts, &before.moments, |g| {
                        Ok::<_, ConvertError>(
                            calibrate_from(g, Values::Graph, &calib, true, &bar)?.moments,
                        )
                    })?
                }
                _ => prune_weights(&mut g, &spec, &before.moments),
            };
            let recalibrated = calibrate_from(&g, Values::Graph, &calib, moments, &bar)?;
            Some((g, layers, recalibrated))
        }
    };
    // The graph written, its calibration, and where its float values come
    // from (a pruned graph's own evaluation: tract runs the original).
    let (work, work_calibration, work_values) = match (&sparse, &pruned) {
        (Some((g, _, c)), _) => (g, c, calibrate::Values::Graph),
        (None, Some(p)) => (&p.graph, &p.calibration, calibrate::Values::Graph),
        (None, None) => (
            &graph,
            &calibration,
            calibrate::Values::Reference(&float_ref),
        ),
    };

    let (setting, selection) = match (&select, searched) {
        (_, Some(s)) => (s.candidates[s.chosen].setting, Some(s)),
        (None, None) => (asked, None),
        (Some(set), None) => {
            let bar = progress_bar(opts.progress, "selecting");
            let s = search(
                work,
                work_calibration,
                &meta,
                &float_ref,
                set,
                file_grid(asked.weights, opts.prune_weights.is_some()),
                &bar,
            )?;
            (s.candidates[s.chosen].setting, Some(s))
        }
    };
    let selected = selection.as_ref().map(|s| (s.samples, s.sha256.clone()));
    meta.notes = notes(
        setting,
        selected.as_ref(),
        pruned.as_ref().map(|p| p.removed()),
    );
    let pruned_weights = opts.prune_weights.is_some();
    let setting = Setting {
        weights: file_grid(setting.weights, pruned_weights),
        ..setting
    };
    let storage = weight_storage(opts, setting, pruned_weights);
    // Mixed precision, on the setting and pruning chosen above.
    let int8_work = work;
    let int8_meta = meta.clone();
    let raised_graph;
    let (work, precision_draft) = match &opts.precision {
        crate::precision::Choice::Int8 => (work, None),
        choice => {
            let data = ChoiceData::new(
                work,
                (work_calibration, work_values, moments),
                &calib,
                select.as_ref(),
                opts.progress,
            )?;
            let bar = progress_bar(opts.progress, "choosing int16 layers");
            let (g, draft) = choose_precision(
                work,
                (setting, &meta, storage),
                &float_ref,
                &data,
                choice,
                &bar,
            )?;
            for (weights, what) in [(false, "int16 outputs"), (true, "int16 weights")] {
                let names: Vec<&str> = draft
                    .raised
                    .iter()
                    .filter(|r| r.int16_weights == weights)
                    .map(|r| r.node.as_str())
                    .collect();
                if !names.is_empty() {
                    meta.notes
                        .push_str(&format!("; {what}: {}", names.join(", ")));
                }
            }
            raised_graph = g;
            (&raised_graph, Some(draft))
        }
    };
    let mut file = Written::new(work, work_calibration, setting, meta.clone(), None, storage)?;
    // With mixed precision, for the report: the same conversion all int8.
    let all_int8 = match precision_draft {
        Some(_) => Some(Written::new(
            int8_work,
            work_calibration,
            setting,
            int8_meta,
            None,
            storage,
        )?),
        None => None,
    };
    // On a power-of-two grid, for the report: the same conversion with int8
    // weights.
    let int8_weights = match setting.weights {
        WeightGrid::Int8 => None,
        WeightGrid::Pow2 | WeightGrid::Pow2x3 => {
            let int8 = setting.with_int8_weights();
            let mut meta = meta.clone();
            meta.notes = notes(
                int8,
                selected.as_ref(),
                pruned.as_ref().map(|p| p.removed()),
            );
            let storage = weight_storage(opts, int8, pruned_weights);
            Some(Written::new(
                work,
                work_calibration,
                int8,
                meta,
                None,
                storage,
            )?)
        }
    };
    // Without pruning, for the report: the same setting on the whole graph
    // (with the same int16 tensors, when its structure takes them).
    let unpruned_graph;
    let mut unpruned = match pruning_asked {
        true => {
            // On the grid asked for, not a pruned file's, so that only
            // pruning differs.
            let setting = Setting {
                weights: asked.weights,
                ..setting
            };
            meta.notes = notes(setting, selected.as_ref(), None);
            let storage = weight_storage(opts, setting, false);
            unpruned_graph = crate::precision::with_tensors(&graph, work);
            Some(Written::new(
                unpruned_graph.as_ref().unwrap_or(&graph),
                &calibration,
                setting,
                meta,
                None,
                storage,
            )?)
        }
        false => None,
    };

    let bar = progress_bar(opts.progress, "evaluating");
    let models: Vec<_> = std::iter::once(&file)
        .chain(&unpruned)
        .chain(&int8_weights)
        .chain(&all_int8)
        .map(Written::model)
        .collect();
    let mut evaluations =
        evaluate::evaluate_all(&models, &float_ref, eval_set, labels, &bar)?.into_iter();
    let Some(ev) = evaluations.next() else {
        return Err(ConvertError::InvalidModel("no evaluation".into()));
    };
    let unpruned_ev = unpruned.as_ref().and_then(|_| evaluations.next());
    let int8_ev = int8_weights.as_ref().and_then(|_| evaluations.next());
    let all_int8_ev = all_int8.as_ref().and_then(|_| evaluations.next());
    let precision = match (precision_draft, all_int8, all_int8_ev) {
        (Some(mut draft), Some(mut w), Some(ev)) => {
            w.add_golden(&ev, golden)?;
            draft.int8 = Some(Baseline {
                totals: w.totals(&loaded.source_bytes),
                evaluation: evaluation_report(opts, ev),
            });
            Some(draft)
        }
        _ => None,
    };
    let int8_weights = match (int8_weights, int8_ev) {
        (Some(mut w), Some(ev)) => {
            // Sized like the file it is compared with.
            w.add_golden(&ev, golden)?;
            Some(Baseline {
                totals: w.totals(&loaded.source_bytes),
                evaluation: evaluation_report(opts, ev),
            })
        }
        _ => None,
    };
    file.add_golden(&ev, golden)?;
    // The file must parse and validate before it may replace anything.
    medq::Model::parse(medq::AlignedBuf::from_slice(&file.bytes).as_slice())
        .map_err(ConvertError::Format)?;

    let pruned_layers = sparse
        .as_ref()
        .map(|(_, layers, _)| file.stored_weights(layers));
    let pruning = match (&mut unpruned, unpruned_ev) {
        (Some(whole), Some(whole_ev)) => {
            whole.add_golden(&whole_ev, golden)?;
            let (removed, prunable) = pruned.as_ref().map_or((0, 0), |p| p.removed());
            Some(PruningReport {
                target: opts.prune.map(|t| t.describe()).unwrap_or_default(),
                removed,
                prunable,
                layers: pruned.as_ref().map_or_else(Vec::new, |p| p.layers.clone()),
                skipped: pruned.as_ref().map_or_else(Vec::new, |p| p.skipped.clone()),
                weights: pruned_layers.zip(opts.prune_weights).map(|(layers, spec)| {
                    let (zeros, total) = layers
                        .iter()
                        .fold((0, 0), |(z, t), l| (z + l.zeros, t + l.weights));
                    WeightPruningReport {
                        target: spec.describe(),
                        sparsity: zeros as f64 / total.max(1) as f64,
                        layers,
                    }
                }),
                unpruned: Baseline {
                    totals: whole.totals(&loaded.source_bytes),
                    evaluation: evaluation_report(opts, whole_ev),
                },
            })
        }
        _ => None,
    };
    let mut report = build_report(
        opts,
        &file,
        &loaded.source_bytes,
        &calib,
        setting,
        selection,
        pruning,
        rewrites.0,
        &layer_rounding(setting.rounding, work, &work_calibration.moments),
        ev,
    );
    report.int8_weights = int8_weights;
    report.precision = precision;
    let mut plot = None;
    if opts.attribution {
        let bar = progress_bar(opts.progress, "attribution maps");
        let models = std::iter::once((&file, &mut report.evaluation)).chain(
            unpruned
                .as_ref()
                .zip(report.pruning.as_mut())
                .map(|(w, p)| (w, &mut p.unpruned.evaluation)),
        );
        for (written, evaluation) in models {
            match attribution_of(written, &float_ref, eval_set)? {
                Ok(a) => {
                    if plot.is_none() {
                        plot = a.first.clone();
                    }
                    evaluation.attribution = Some(a);
                }
                Err(why) => evaluation.attribution_skipped = Some(why),
            }
        }
        bar.finish_and_clear();
    }
    let svg = match (&opts.attribution_svg, &plot) {
        (Some(_), Some((x, float, int8))) => Some(crate::attribution::svg(x, float, int8)?),
        (Some(_), None) => {
            return Err(ConvertError::Usage(format!(
                "--attribution-svg: no maps were made ({})",
                report
                    .evaluation
                    .attribution_skipped
                    .as_deref()
                    .unwrap_or("no samples")
            )))
        }
        _ => None,
    };
    let bytes = match &signing_key {
        Some(key) => medq::sign(&file.bytes, key).map_err(ConvertError::Format)?,
        None => file.bytes,
    };
    write_atomically(&opts.output, &bytes)?;
    if let (Some(path), Some(svg)) = (&opts.attribution_svg, &svg) {
        write_atomically(path, svg.as_bytes())?;
    }
    Ok(report)
}

/// The files a conversion reads besides the model, checked against its inputs
/// and outputs.
struct Data {
    calib: SampleSet,
    eval: Option<SampleSet>,
    select: Option<SampleSet>,
    /// For `eval` (the calibration samples without it).
    labels: Option<Vec<usize>>,
    /// The graph output `labels` are the classes of.
    label_output: usize,
    class_names: Option<Vec<String>>,
}

impl Data {
    fn load(opts: &Options, graph: &Graph) -> Result<Data, ConvertError> {
        let inputs: Vec<(String, Vec<usize>)> = graph
            .inputs
            .iter()
            .map(|&t| {
                (
                    graph.tensors[t].name.clone(),
                    graph.tensors[t].shape.clone(),
                )
            })
            .collect();
        let optional = |paths: &[PathBuf], option| match paths {
            [] => Ok(None),
            paths => SampleSet::load(paths, &inputs, &graph.integer_inputs, option).map(Some),
        };
        let calib = match &opts.calib[..] {
            // A QDQ model without --calib: nothing to calibrate on.
            [] => SampleSet {
                inputs: inputs
                    .iter()
                    .map(|(_, shape)| samples::Samples::from_vec(shape.clone(), Vec::new()))
                    .collect(),
                sha256: String::new(),
            },
            paths => {
                let set = SampleSet::load(paths, &inputs, &graph.integer_inputs, "--calib")?;
                // One value everywhere calibrates nothing: every range would
                // be that value's, and the model useless (2% accurate).
                for (samples, path) in set.inputs.iter().zip(paths) {
                    if let Some(v) = samples.constant_value() {
                        return Err(ConvertError::BadSamples {
                            path: path.clone(),
                            reason: format!(
                                "every calibration value is {v}: calibration needs \
                                 representative samples of the model's input"
                            ),
                        });
                    }
                }
                set
            }
        };
        let eval = optional(&opts.eval, "--eval")?;
        let label_output = labels_output(graph, opts)?;
        let labels = match &opts.labels {
            Some(p) => {
                let labels = samples::load_labels(p, eval.as_ref().unwrap_or(&calib).len())?;
                // The classes are the output's values per sample.
                let output = graph
                    .outputs
                    .get(label_output)
                    .and_then(|&t| graph.tensors.get(t));
                let classes = output.map_or(0, |t| t.shape.iter().skip(1).product::<usize>());
                if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
                    return Err(ConvertError::BadSamples {
                        path: p.clone(),
                        reason: format!(
                            "label {l} of sample {i} is not a class of output \"{}\", which has {classes}",
                            output.map_or("", |t| t.name.as_str())
                        ),
                    });
                }
                Some(labels)
            }
            None => None,
        };
        Ok(Data {
            select: optional(&opts.select, "--select")?,
            class_names: opts
                .class_names
                .as_deref()
                .map(read_class_names)
                .transpose()?,
            calib,
            eval,
            labels,
            label_output,
        })
    }
}

/// The index of the graph output `--labels` are the classes of: the one
/// `--labels-output` names, output 0 otherwise.
fn labels_output(graph: &Graph, opts: &Options) -> Result<usize, ConvertError> {
    let Some(name) = &opts.labels_output else {
        return Ok(0);
    };
    if opts.labels.is_none() {
        return Err(ConvertError::Usage(
            "--labels-output names the output --labels are for, but no --labels were given".into(),
        ));
    }
    let names: Vec<&str> = graph
        .outputs
        .iter()
        .map(|&t| graph.tensors[t].name.as_str())
        .collect();
    names.iter().position(|n| n == name).ok_or_else(|| {
        ConvertError::Usage(format!(
            "--labels-output \"{name}\" is not a model output; the outputs are {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// A quantized graph and its `.mq` bytes.
struct Written<'g> {
    graph: &'g Graph,
    qg: quantize::QuantizedGraph,
    arena: crate::plan::Plan,
    meta: Metadata,
    storage: WeightStorage,
    bytes: Vec<u8>,
}

impl<'g> Written<'g> {
    /// Quantize `graph` with `setting`, plan its arena and write it.
    fn new(
        graph: &'g Graph,
        calibration: &calibrate::Calibration,
        setting: Setting,
        meta: Metadata,
        golden: Option<(&[i8], &[i8])>,
        storage: WeightStorage,
    ) -> Result<Written<'g>, ConvertError> {
        let qg = quantize_as(graph, calibration, setting)?;
        let arena = emit::plan_arena(graph, &qg);
        let bytes = emit::emit(graph, &qg, &arena, &meta, golden, storage)?;
        Ok(Written {
            graph,
            qg,
            arena,
            meta,
            storage,
            bytes,
        })
    }

    /// What [`evaluate::evaluate_all`] runs.
    fn model(&self) -> (&'g Graph, &quantize::QuantizedGraph, &[u8]) {
        (self.graph, &self.qg, &self.bytes)
    }

    /// Rewrite the file with the evaluation's first sample and its int8
    /// output as the golden pair, when `wanted`.
    fn add_golden(&mut self, ev: &evaluate::Evaluation, wanted: bool) -> Result<(), ConvertError> {
        if let (Some((input, output)), true) = (&ev.first_io, wanted) {
            let golden = Some((&input[..], &output[..]));
            self.bytes = emit::emit(
                self.graph,
                &self.qg,
                &self.arena,
                &self.meta,
                golden,
                self.storage,
            )?;
        }
        Ok(())
    }

    /// The bytes of `op`'s constants as this file stores them.
    fn stored_bytes(&self, op: &quantize::LoweredOp) -> usize {
        op.constant_bytes() - emit::packing(op, self.storage).1
    }

    /// `layers` with how this file stores each one's weights.
    fn stored_weights(&self, layers: &[SparseLayer]) -> Vec<SparseLayer> {
        let mut layers = layers.to_vec();
        for layer in &mut layers {
            let op = self
                .qg
                .ops
                .iter()
                .find(|op| self.graph.nodes.get(op.node).map(|n| &n.name) == Some(&layer.node));
            layer.stored = op.and_then(|op| {
                let dense_bytes = match op.inputs.get(1) {
                    Some(quantize::Operand::Constant(c)) => c.byte_len(),
                    _ => return None,
                };
                let sizes = emit::packing_candidate(op).map(|(_, sizes)| sizes);
                let (packing, saved) = emit::packing(op, self.storage);
                Some(StoredWeights {
                    storage: packing.name(),
                    bytes: dense_bytes - saved,
                    dense_bytes,
                    sparse_bytes: sizes.map(|s| s.sparse),
                    pow2_bytes: sizes.and_then(|s| s.pow2),
                    sparse_pow2_bytes: sizes.and_then(|s| s.sparse_pow2),
                    sparse_pow2x3_bytes: sizes.and_then(|s| s.sparse_pow2x3),
                })
            });
        }
        layers
    }

    /// The sizes and cost of the file, against the ONNX file's `onnx` bytes.
    fn totals(&self, onnx: &[u8]) -> Totals {
        let graph = self.graph;
        Totals {
            onnx_bytes: onnx.len(),
            mq_bytes: self.bytes.len(),
            arena_bytes: self.arena.arena_len,
            arena_lower_bound: self.arena.lower_bound,
            macs: (0..graph.nodes.len()).map(|i| macs(graph, i)).sum(),
            weight_bytes: self.qg.ops.iter().map(|op| self.stored_bytes(op)).sum(),
            parameters: parameters(graph),
        }
    }
}

/// How a file of `setting` stores its Conv/FullyConnected weights: each
/// layer the smallest way (sparse, 4-bit codes, both, or dense) when weight
/// pruning or a power-of-two grid can make a packed way pay, unless
/// `--dense-weights`; dense otherwise. Sparse ways only after weight
/// pruning.
fn weight_storage(opts: &Options, setting: Setting, weights_pruned: bool) -> WeightStorage {
    let packs = weights_pruned || setting.weights.is_pow2();
    match packs && !opts.dense_weights {
        true => WeightStorage::SmallerOf {
            sparse: weights_pruned,
        },
        false => Dense,
    }
}

/// The grid a file's Conv/FullyConnected weights take for `--weights`
/// `weights`: a pruned file's power-of-two non-zeros are the four top
/// powers, each a 3-bit code after the bitmap (whether or not
/// `--dense-weights` then stores them a byte each).
fn file_grid(weights: WeightGrid, weights_pruned: bool) -> WeightGrid {
    match (weights, weights_pruned) {
        (WeightGrid::Pow2, true) => WeightGrid::Pow2x3,
        (grid, _) => grid,
    }
}

/// Float weights and biases of every node.
fn parameters(graph: &Graph) -> usize {
    graph.nodes.iter().map(|n| n.op.def().parameters()).sum()
}

fn evaluation_report(opts: &Options, ev: evaluate::Evaluation) -> EvaluationReport {
    EvaluationReport {
        data: match &opts.eval[..] {
            [] => crate::report::CALIBRATION_DATA.into(),
            paths => paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
        },
        samples: ev.samples,
        sqnr: evaluate::SQNR_DEFINITION,
        outside_bounds: ev
            .outputs
            .iter()
            .filter_map(|o| Some(format!("{}: {}", o.display_name(), o.outside_bounds()?)))
            .collect(),
        outputs: ev.outputs,
        classes: ev.classes,
        attribution: None,
        attribution_skipped: None,
        clipped: ev.clipped,
    }
}

/// `--attribution` for one written model: its occlusion maps against the
/// float model's, on the evaluation samples.
fn attribution_of(
    written: &Written,
    float_ref: &FloatRef,
    samples: &SampleSet,
) -> Result<Result<crate::attribution::AttributionReport, String>, ConvertError> {
    let graph = written.graph;
    let (Some(&input), Some(&output)) = (graph.inputs.first(), graph.outputs.first()) else {
        return Ok(Err("the graph has no input or output".into()));
    };
    let buf = medq::AlignedBuf::from_slice(&written.bytes);
    let model = medq::Model::parse(buf.as_slice()).map_err(ConvertError::Format)?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
    let mut interp =
        medq::Interpreter::new(&model, &mut arena, &mut plan).map_err(ConvertError::Format)?;
    let len = model.output_info(0).map_err(ConvertError::Format)?.numel();
    let mut int8 = |x: &[f32]| -> Result<Vec<f32>, ConvertError> {
        interp.set_input_f32(0, x).map_err(ConvertError::Format)?;
        interp.invoke().map_err(ConvertError::Format)?;
        let mut out = vec![0.0; len];
        interp
            .output_f32(0, &mut out)
            .map_err(ConvertError::Format)?;
        Ok(out)
    };
    crate::attribution::compare(
        float_ref,
        &graph.tensors[output].name,
        samples,
        &graph.tensors[input].shape,
        &mut int8,
    )
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    opts: &Options,
    file: &Written,
    onnx: &[u8],
    calib: &SampleSet,
    setting: Setting,
    selection: Option<SelectionReport>,
    pruning: Option<PruningReport>,
    rewrites: Vec<String>,
    rounding: &[Option<String>],
    ev: evaluate::Evaluation,
) -> Report {
    let (graph, qg) = (file.graph, &file.qg);
    let layers: Vec<LayerReport> = graph
        .nodes
        .iter()
        .zip(&qg.ops)
        .enumerate()
        .map(|(i, (node, op))| LayerReport {
            index: i,
            name: node.name.clone(),
            op: op.opcode.name().to_string(),
            onnx_ops: node.onnx_ops.clone(),
            output_shape: graph.tensors[node.output].shape.clone(),
            macs: macs(graph, i),
            weight_bytes: file.stored_bytes(op),
            sqnr_db: ev.layer_sqnr_db.get(i).copied().flatten(),
            weight_rounding: rounding.get(i).cloned().flatten(),
            int16_output: graph.wide.contains(&node.output),
        })
        .collect();
    let inputs = graph
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &t)| InputReport {
            name: graph.tensors[t].name.clone(),
            shape: graph.tensors[t].shape.clone(),
            dims_from_samples: graph.dims_from_samples.get(&t).cloned().unwrap_or_default(),
            calibration: calib
                .inputs
                .get(k)
                .map_or(String::new(), |s| s.path.display().to_string()),
            eval: opts.eval.get(k).map(|p| p.display().to_string()),
            declared_range: graph.input_ranges.get(&t).copied(),
        })
        .collect();
    let golden = match (opts.golden, graph.inputs.len()) {
        (false, _) => "not stored (--no-golden)",
        (true, 1) => "stored: sample 0 of the evaluation data, input 0 and output 0",
        (true, _) => "stored: sample 0 of the evaluation data, every input and output 0",
    };
    Report {
        model: opts.model.display().to_string(),
        inputs,
        golden: golden.to_string(),
        output_file: opts.output.display().to_string(),
        converter_version: crate::VERSION.to_string(),
        source_sha256: samples::sha256_hex(onnx),
        calibration_sha256: calib.sha256.clone(),
        calibration_method: setting.method_name(),
        calibration_samples: calib.len(),
        weight_rounding: setting.rounding.name().to_string(),
        weight_grid: setting.weights.name().to_string(),
        fixed_encodings: crate::report::FixedEncodings::of(&graph.qdq),
        int8_weights: None,
        precision: None,
        selection,
        pruning,
        rewrites,
        totals: file.totals(onnx),
        layers,
        evaluation: evaluation_report(opts, ev),
    }
}

/// One point of the quantization search: activation calibration and weight
/// rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub method: Method,
    /// For [`Method::Percentile`].
    pub percentile: f32,
    pub rounding: Rounding,
    /// The weights' grid (not searched: the user's choice of storage).
    pub weights: WeightGrid,
}

impl Default for Setting {
    /// The converter's defaults.
    fn default() -> Setting {
        let o = Options::new("", "");
        Setting {
            method: o.method,
            percentile: o.percentile,
            rounding: o.rounding,
            weights: o.weights,
        }
    }
}

impl Setting {
    /// The same calibration with the other weight rounding.
    pub fn other_rounding(self) -> Setting {
        let rounding = match self.rounding {
            Rounding::Nearest => Rounding::Gptq,
            Rounding::Gptq => Rounding::Nearest,
        };
        Setting { rounding, ..self }
    }

    /// The calibration method as reports name it, e.g. `percentile 99.9`.
    pub fn method_name(self) -> String {
        match self.method {
            Method::MinMax => "minmax".to_string(),
            Method::Percentile => format!("percentile {}", self.percentile),
            Method::Mse => "mse".to_string(),
        }
    }

    /// Method and rounding, e.g. `percentile 99.9 + gptq`, and the grid
    /// when it is not int8 (`mse + gptq + pow2`).
    pub fn name(self) -> String {
        let mut name = format!("{} + {}", self.method_name(), self.rounding.name());
        if self.weights != WeightGrid::Int8 {
            name = format!("{name} + {}", self.weights.name());
        }
        name
    }

    /// The same setting with int8 weights.
    pub fn with_int8_weights(self) -> Setting {
        Setting {
            weights: WeightGrid::Int8,
            ..self
        }
    }
}

/// What `--select` tries, the converter's defaults first (a tie keeps the
/// earlier setting): every calibration method, each with both roundings, on
/// the weight grid `weights`.
pub fn search_space(weights: WeightGrid) -> Vec<Setting> {
    let methods = [
        (Method::Mse, 99.99),
        (Method::MinMax, 99.99),
        (Method::Percentile, 99.99),
        (Method::Percentile, 99.9),
    ];
    methods
        .into_iter()
        .flat_map(|(method, percentile)| {
            [Rounding::Nearest, Rounding::Gptq].map(|rounding| Setting {
                method,
                percentile,
                rounding,
                weights,
            })
        })
        .collect()
}

/// Quantize with one setting, from one calibration pass.
fn quantize_as(
    graph: &Graph,
    calibration: &calibrate::Calibration,
    setting: Setting,
) -> Result<quantize::QuantizedGraph, ConvertError> {
    let ranges = calibration.ranges(setting.method, setting.percentile);
    let moments: Vec<Option<&InputMoments>> = calibration
        .moments
        .iter()
        .map(|r| match r {
            Some(LayerMoments::Usable(m)) => Some(m),
            _ => None,
        })
        .collect();
    let weights = WeightQuant {
        grid: setting.weights,
        rounding: setting.rounding,
    };
    quantize::quantize_with_cells(graph, &ranges, &calibration.cells, &moments, weights)
}

/// The score `--select` maximises: the worst output's float-vs-int8 SQNR
/// (an exact output counts as infinite).
fn selection_score(ev: &evaluate::Evaluation) -> f64 {
    ev.outputs
        .iter()
        .map(|o| o.sqnr_db.unwrap_or(f64::INFINITY))
        .fold(f64::INFINITY, f64::min)
}

/// Try every [`search_space`] setting on the held-out `set` and keep the
/// best-scoring one.
fn search(
    graph: &Graph,
    calibration: &calibrate::Calibration,
    meta: &Metadata,
    float_ref: &FloatRef,
    set: &SampleSet,
    weights: WeightGrid,
    progress: &indicatif::ProgressBar,
) -> Result<SelectionReport, ConvertError> {
    let space = search_space(weights);
    let files = space
        .iter()
        .map(|&setting| Written::new(graph, calibration, setting, meta.clone(), None, Dense))
        .collect::<Result<Vec<_>, _>>()?;
    let models: Vec<_> = files.iter().map(Written::model).collect();
    // One float run per sample, shared by every candidate.
    let evaluations = evaluate::evaluate_outputs(&models, float_ref, set, progress)?;

    let mut candidates: Vec<Candidate> = Vec::with_capacity(space.len());
    let mut chosen = 0;
    for (i, (setting, ev)) in space.into_iter().zip(evaluations).enumerate() {
        let score = selection_score(&ev);
        // Strictly better: a tie keeps the earlier setting.
        if candidates.get(chosen).is_none_or(|c| score > c.score_db) {
            chosen = i;
        }
        candidates.push(Candidate {
            setting,
            name: setting.name(),
            score_db: score,
            top1_agreement: ev.outputs.iter().find_map(|o| o.top1_agreement),
        });
    }
    Ok(SelectionReport {
        data: set.describe(),
        samples: set.len(),
        sha256: set.sha256.clone(),
        criterion: "the worst output's float-vs-int8 SQNR (dB)".into(),
        candidates,
        chosen,
        equalization: None,
    })
}

/// One step `--precision` can take: a layer's output raised to int16, or
/// also its weights (16x16), indices into the raisable layers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Raise {
    Output(usize),
    Weights(usize),
}

/// How many outputs auto's search raises at most when every output raised
/// misses the target: a set that meets it then is a small one (e.g.
/// `mlp_digits` on held-out `--select` digits: two layers meet it, all four
/// do not).
const FEW_OUTPUTS: usize = 4;

/// Measures each set of steps' file on the choice samples.
type EvaluateSets<'a> =
    dyn Fn(&[Vec<Raise>]) -> Result<Vec<evaluate::Evaluation>, ConvertError> + 'a;

/// A forward greedy search from `base` (chosen already, evaluated as
/// `base_ev`): each round adds the step of `pool` (each given with the
/// evaluation of `base` plus it alone) that leaves the most slack, until
/// the target is met, the pool is spent or `max_steps` are taken. Returns
/// the shortest prefix of that order that meets the target, else the one
/// with the most slack (a tie keeps fewer steps), with its evaluation.
fn greedy(
    target: crate::precision::Target,
    (base, base_ev): (&[Raise], &evaluate::Evaluation),
    pool: Vec<(Raise, evaluate::Evaluation)>,
    max_steps: usize,
    evaluate_sets: &EvaluateSets<'_>,
) -> Result<(Vec<Raise>, evaluate::Evaluation), ConvertError> {
    let rank = |ev: &evaluate::Evaluation| precision_rank(target, ev);
    let order: Vec<Raise> = pool.iter().map(|p| p.0).collect();
    // Every prefix of the greedy order, with its evaluation.
    let mut path: Vec<(Raise, evaluate::Evaluation)> = Vec::new();
    let mut round = pool;
    while !target.met(path.last().map_or(base_ev, |p| &p.1))
        && !round.is_empty()
        && path.len() < max_steps
    {
        // A tie keeps the earlier step.
        let best = (0..round.len()).fold(0, |best, k| {
            match rank(&round[k].1) > rank(&round[best].1) {
                true => k,
                false => best,
            }
        });
        path.push(round.swap_remove(best));
        let taken: Vec<Raise> = path.iter().map(|p| p.0).collect();
        let rest: Vec<Raise> = order
            .iter()
            .copied()
            .filter(|u| !taken.contains(u))
            .collect();
        let sets: Vec<Vec<Raise>> = rest
            .iter()
            .map(|&u| base.iter().chain(&taken).copied().chain([u]).collect())
            .collect();
        let done = path.last().is_some_and(|p| target.met(&p.1)) || path.len() >= max_steps;
        let next = match done || sets.is_empty() {
            true => Vec::new(),
            false => evaluate_sets(&sets)?,
        };
        round = rest.into_iter().zip(next).collect();
    }
    let prefixes: Vec<&evaluate::Evaluation> = std::iter::once(base_ev)
        .chain(path.iter().map(|p| &p.1))
        .collect();
    let keep = prefix_to_keep(target, &prefixes);
    Ok((
        path[..keep].iter().map(|p| p.0).collect(),
        prefixes[keep].clone(),
    ))
}

/// How an evaluation ranks against `target`: slack first, then the worst
/// output's SQNR (the worst sample of a small set moves in steps, and the
/// SQNR tells which step helps when it does not move). Compared as a pair,
/// lexicographically; a NaN compares as neither better nor worse.
fn precision_rank(target: crate::precision::Target, ev: &evaluate::Evaluation) -> (f64, f64) {
    (target.slack_db(ev), selection_score(ev))
}

/// Of the evaluations of an order's prefixes (`prefixes[k]`: the first `k`
/// steps taken), the shortest that meets the target, else the one with the
/// most slack, then the best worst-output SQNR (a tie keeps fewer steps).
fn prefix_to_keep(target: crate::precision::Target, prefixes: &[&evaluate::Evaluation]) -> usize {
    let rank = |ev: &evaluate::Evaluation| precision_rank(target, ev);
    prefixes
        .iter()
        .position(|ev| target.met(ev))
        .unwrap_or_else(|| {
            (1..prefixes.len()).fold(0, |best, k| {
                match rank(prefixes[k]) > rank(prefixes[best]) {
                    true => k,
                    false => best,
                }
            })
        })
}

/// Below this many calibration samples, `--precision` measures on all of
/// them rather than two-fold (halves of a few samples say nothing).
const TWO_FOLD_MIN_SAMPLES: usize = 16;

/// Where `--precision` measures its choice: each fold's file is quantized
/// with the fold's calibration and run on its samples, and with two folds
/// every figure counts at its worse ([`evaluate::Evaluation::worse_of`]).
struct ChoiceData<'a> {
    folds: Vec<(
        std::borrow::Cow<'a, calibrate::Calibration>,
        samples::Every<'a, SampleSet>,
    )>,
    /// The samples, as the report names them.
    describe: String,
}

impl<'a> ChoiceData<'a> {
    /// The `--select` samples against the file's own calibration; without
    /// them, the calibration samples two-fold: the file calibrated on each
    /// half measured on the other. Measured on its own calibration samples,
    /// a file never meets an input beyond its ranges, and held-out inputs
    /// do (attn_pool: one layer raised met the target there, then missed
    /// it on 2 of 64 held-out samples). Refused without any samples.
    fn new(
        work: &Graph,
        (calibration, values, moments): (&'a calibrate::Calibration, calibrate::Values<'_>, bool),
        calib: &'a SampleSet,
        select: Option<&'a SampleSet>,
        progress: bool,
    ) -> Result<ChoiceData<'a>, ConvertError> {
        use samples::Every;
        use std::borrow::Cow;
        let data = match select {
            Some(set) => ChoiceData {
                folds: vec![(Cow::Borrowed(calibration), Every::of(set, 0, 1))],
                describe: set.describe(),
            },
            None if calib.len() >= TWO_FOLD_MIN_SAMPLES => {
                let bar = progress_bar(progress, "calibrating halves");
                let (even, odd) = (Every::of(calib, 0, 2), Every::of(calib, 1, 2));
                let on = |half| calibrate::calibrate_from(work, values, &half, moments, &bar);
                ChoiceData {
                    folds: vec![(Cow::Owned(on(even)?), odd), (Cow::Owned(on(odd)?), even)],
                    describe: format!(
                        "{}, two-fold (each half measured on a file calibrated on the other)",
                        calib.describe()
                    ),
                }
            }
            None => ChoiceData {
                folds: vec![(Cow::Borrowed(calibration), Every::of(calib, 0, 1))],
                describe: calib.describe(),
            },
        };
        if data.samples() == 0 {
            return Err(ConvertError::Usage(
                "--precision measures its choice on samples: give --calib (or --select) samples"
                    .into(),
            ));
        }
        Ok(data)
    }

    /// How many samples the folds hold together.
    fn samples(&self) -> usize {
        use samples::InputSamples;
        self.folds.iter().map(|(_, s)| s.count()).sum()
    }
}

/// `graph` with the layers `choice` raises to int16 outputs, and the report
/// of the choice (its `int8` baseline left for the caller to measure on the
/// evaluation samples).
///
/// The first round measures on `set` the graph as it is, each layer raised
/// alone (what the report shows it gains) and every layer raised (all in
/// one pass, with one float run per sample).
///
/// Auto is then a forward [`greedy`] search for the fewest layers: each
/// round measures every layer not yet raised added to those chosen and
/// keeps the one that leaves the most slack. When every layer raised
/// misses the target, the search stops at [`FEW_OUTPUTS`] layers.
///
/// When int16 outputs do not reach the target, Conv and FullyConnected
/// layers get int16 weights too (16x16), for models whose int8 weights are
/// the limit: on top of every output raised (so that no int8 activation
/// buries what the weights gain), each layer's weights are measured alone,
/// and those that help are added best first, keeping the shortest prefix
/// that meets the target, or the one with the most slack, if that does
/// better than the outputs the search chose. (Unlike int16 outputs, which
/// only pay once a run of them connects, one layer's weights help on their
/// own, so the order of what each does alone is enough: one pass, not a
/// greedy search.)
fn choose_precision(
    graph: &Graph,
    (setting, meta, storage): (Setting, &Metadata, WeightStorage),
    float_ref: &FloatRef,
    data: &ChoiceData<'_>,
    choice: &crate::precision::Choice,
    progress: &indicatif::ProgressBar,
) -> Result<(Graph, crate::report::PrecisionReport), ConvertError> {
    use crate::precision::{self, Choice, Raisable};
    fn write<'g>(
        g: &'g Graph,
        calibration: &calibrate::Calibration,
        (setting, meta, storage): (Setting, &Metadata, WeightStorage),
    ) -> Result<Written<'g>, ConvertError> {
        Written::new(g, calibration, setting, meta.clone(), None, storage)
    }
    let how = (setting, meta, storage);
    let candidates: Vec<Raisable> = match choice {
        Choice::Int8 => Vec::new(),
        Choice::Layers(names) => precision::named(graph, names)?,
        Choice::All | Choice::Auto(_) => precision::raisable(graph),
    };
    let raise = |steps: &[Raise]| -> Graph {
        let (mut layers, mut weights): (Vec<&Raisable>, Vec<&Raisable>) = (vec![], vec![]);
        for step in steps {
            match *step {
                Raise::Output(i) => layers.push(&candidates[i]),
                Raise::Weights(i) => weights.push(&candidates[i]),
            }
        }
        precision::with_raised(graph, &layers, &weights)
    };
    // Each set's file measured on every fold (the worse fold counts), and
    // its (file, arena) bytes.
    type Measured = (Vec<evaluate::Evaluation>, Vec<(usize, usize)>);
    let measure = |sets: &[Vec<Raise>]| -> Result<Measured, ConvertError> {
        let graphs: Vec<Graph> = sets.iter().map(|s| raise(s)).collect();
        let mut measured: Option<Measured> = None;
        for (calibration, samples) in &data.folds {
            let written = graphs
                .iter()
                .map(|g| write(g, calibration, how))
                .collect::<Result<Vec<_>, _>>()?;
            let models: Vec<_> = written.iter().map(Written::model).collect();
            let evs = evaluate::evaluate_outputs(&models, float_ref, samples, progress)?;
            measured = Some(match measured {
                None => {
                    let sizes = written
                        .iter()
                        .map(|w| (w.bytes.len(), w.arena.arena_len))
                        .collect();
                    (evs, sizes)
                }
                Some((worse, sizes)) => (
                    worse
                        .into_iter()
                        .zip(&evs)
                        .map(|(a, b)| a.worse_of(b))
                        .collect(),
                    sizes,
                ),
            });
        }
        measured.ok_or_else(|| ConvertError::InvalidModel("no samples to choose on".into()))
    };
    let evaluate_sets = |sets: &[Vec<Raise>]| measure(sets).map(|(evs, _)| evs);

    // Round one: the graph as it is, each candidate alone, and every
    // candidate raised. When auto finds the graph as it is within its
    // target, nothing is raised and the rest is not measured: on a large
    // model each candidate costs a full run of every sample.
    let every_output: Vec<Raise> = (0..candidates.len()).map(Raise::Output).collect();
    let mut alone_and_every: Vec<Vec<Raise>> = (0..candidates.len())
        .map(|i| vec![Raise::Output(i)])
        .collect();
    alone_and_every.push(every_output.clone());
    // Auto measures the graph as it is first, alone; the others measure
    // round one in one batch (one float run per sample).
    let auto = matches!(choice, Choice::Auto(_));
    let mut first = vec![Vec::new()];
    if !auto {
        first.append(&mut alone_and_every);
    }
    let (mut evs, mut first_sizes) = measure(&first)?;
    let met_as_is = match (choice, evs.first()) {
        (Choice::Auto(target), Some(ev)) => target.met(ev),
        _ => false,
    };
    if auto && !met_as_is {
        let (more_evs, more_sizes) = measure(&alone_and_every)?;
        evs.extend(more_evs);
        first_sizes.extend(more_sizes);
    }
    let Some(base_ev) = evs.first() else {
        return Err(ConvertError::InvalidModel("no evaluation".into()));
    };
    // Empty, and the graph as it is, when auto met its target with it.
    let alone = evs.get(1..=candidates.len()).unwrap_or_default();
    let every_ev = evs.get(candidates.len() + 1).unwrap_or(base_ev);
    let finite = |db: f64| db.is_finite().then_some(db);
    let base_score = selection_score(base_ev);
    let size = |k: usize| first_sizes.get(k).copied().unwrap_or_default();
    let (base_bytes, base_arena) = size(0);
    let tensor_names = |ts: &[usize]| -> Vec<String> {
        ts.iter().map(|&t| graph.tensors[t].name.clone()).collect()
    };
    // Raisable layer `i` as the report shows it, its file and arena
    // measured against `base`'s.
    let layer = |i: usize, gain: Option<f64>, (this, base): ((usize, usize), (usize, usize))| {
        let c = &candidates[i];
        crate::report::RaisedLayer {
            node: c.name(graph).to_string(),
            tensors: tensor_names(&c.tensors),
            int16_weights: false,
            gain_db: gain,
            file_bytes: this.0 as i64 - base.0 as i64,
            arena_bytes: this.1 as i64 - base.1 as i64,
        }
    };

    let mut chosen: Vec<Raise> = Vec::new();
    let mut current = base_ev.clone();
    let mut raised = Vec::new();
    let met = match choice {
        Choice::Auto(_) if met_as_is => Some(true),
        Choice::Auto(target) => {
            let pool = alone
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, ev)| (Raise::Output(i), ev))
                .collect();
            // When every output raised misses the target, a set that meets
            // it is a few outputs (raising some can do worse on a sample
            // than raising fewer); searching further costs a quadratic
            // number of runs.
            let rounds = match target.met(every_ev) {
                true => usize::MAX,
                false => FEW_OUTPUTS,
            };
            (chosen, current) = greedy(*target, (&[], base_ev), pool, rounds, &evaluate_sets)?;
            if !target.met(&current) {
                // Int16 weights, on top of every output raised: int16
                // outputs could not meet the target, and a layer's weights
                // show what they are worth once no activation buries them.
                let widen: Vec<usize> = (0..candidates.len())
                    .filter(|&i| precision::can_widen_weights(graph, &candidates[i]))
                    .collect();
                let sets: Vec<Vec<Raise>> = widen
                    .iter()
                    .map(|&i| {
                        every_output
                            .iter()
                            .copied()
                            .chain([Raise::Weights(i)])
                            .collect()
                    })
                    .collect();
                let (each, sizes) = measure(&sets)?;
                let every_size = size(candidates.len() + 1);
                let rank = |ev: &evaluate::Evaluation| precision_rank(*target, ev);
                // The weights that help alone, best first; a tie keeps the
                // earlier layer.
                let mut order: Vec<usize> = (0..each.len())
                    .filter(|&k| rank(&each[k]) > rank(every_ev))
                    .collect();
                order.sort_by(|&a, &b| {
                    rank(&each[b])
                        .partial_cmp(&rank(&each[a]))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                let steps: Vec<Raise> = order.iter().map(|&k| Raise::Weights(widen[k])).collect();
                let prefix_sets: Vec<Vec<Raise>> = (1..=steps.len())
                    .map(|k| every_output.iter().chain(&steps[..k]).copied().collect())
                    .collect();
                let prefix_evs = evaluate_sets(&prefix_sets)?;
                let prefixes: Vec<&evaluate::Evaluation> =
                    std::iter::once(every_ev).chain(&prefix_evs).collect();
                let keep = prefix_to_keep(*target, &prefixes);
                // Kept only when it does better than the outputs chosen.
                if rank(prefixes[keep]) > rank(&current) {
                    let here = selection_score(every_ev);
                    for &k in &order[..keep] {
                        let gain = finite(selection_score(&each[k]) - here);
                        let mut r = layer(widen[k], gain, (sizes[k], every_size));
                        r.int16_weights = true;
                        raised.push(r);
                    }
                    chosen = every_output;
                    chosen.extend(&steps[..keep]);
                    current = prefixes[keep].clone();
                }
            }
            Some(target.met(&current))
        }
        Choice::Layers(_) | Choice::All => {
            chosen = every_output;
            current = every_ev.clone();
            None
        }
        Choice::Int8 => None,
    };

    let outputs_first = chosen.iter().filter_map(|step| match *step {
        Raise::Output(i) => Some(i),
        Raise::Weights(_) => None,
    });
    let outputs: Vec<crate::report::RaisedLayer> = outputs_first
        .map(|i| {
            let gain = alone
                .get(i)
                .and_then(|ev| finite(selection_score(ev)))
                .zip(finite(base_score))
                .map(|(a, b)| a - b);
            layer(i, gain, (size(1 + i), (base_bytes, base_arena)))
        })
        .collect();
    raised.splice(0..0, outputs);
    use crate::report::PrecisionReport;
    let report = PrecisionReport {
        mode: match choice {
            Choice::Auto(_) => PrecisionReport::AUTO,
            Choice::All => PrecisionReport::EVERY_LAYER,
            _ => PrecisionReport::NAMED,
        }
        .into(),
        target: match choice {
            Choice::Auto(target) => Some(target.describe()),
            _ => None,
        },
        met,
        data: data.describe.clone(),
        samples: data.samples(),
        int8_sqnr_db: finite(base_score),
        sqnr_db: finite(selection_score(&current)),
        raisable: match choice {
            Choice::Auto(_) | Choice::All => candidates.len(),
            _ => precision::raisable(graph).len(),
        },
        raised,
        int8: None,
    };
    Ok((raise(&chosen), report))
}

/// The tensor named `name` among `among` (the graph's inputs or outputs),
/// or the usage error of `option`, naming them.
fn named(
    graph: &Graph,
    among: &[TensorId],
    name: &str,
    option: &str,
    kind: &str,
) -> Result<TensorId, ConvertError> {
    among
        .iter()
        .copied()
        .find(|&t| graph.tensors[t].name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = among
                .iter()
                .map(|&t| graph.tensors[t].name.as_str())
                .collect();
            ConvertError::Usage(format!(
                "{option}: the model has no {kind} {name:?} (its {kind}s: {})",
                names.join(", ")
            ))
        })
}

/// Each Conv/FullyConnected node's weight rounding as the report shows it.
fn layer_rounding(
    asked: Rounding,
    graph: &Graph,
    moments: &[Option<LayerMoments>],
) -> Vec<Option<String>> {
    (0..graph.nodes.len())
        .map(|i| {
            let weighted = matches!(
                graph.nodes[i].op,
                Op::Conv { .. } | Op::FullyConnected { .. }
            );
            weighted.then(|| match (asked, moments.get(i).and_then(Option::as_ref)) {
                (Rounding::Gptq, Some(LayerMoments::Usable(_))) => "gptq".to_string(),
                (Rounding::Gptq, Some(LayerMoments::Unusable(why))) => format!("nearest: {why}"),
                _ => "nearest".to_string(),
            })
        })
        .collect()
}

/// Multiply-accumulates of one run of a node.
pub fn macs(graph: &Graph, node: usize) -> u64 {
    let n = &graph.nodes[node];
    n.op.def().macs(graph, n)
}

fn model_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Class names, one per line, trimmed, blank lines skipped.
pub fn read_class_names(path: &Path) -> Result<Vec<String>, ConvertError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn progress_bar(enabled: bool, what: &'static str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} samples ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

/// Write through a temporary file in the same directory, then rename
/// ([`medq::file::write_atomically`]): a reader sees the old file or the
/// complete new one, never a partial one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConvertError> {
    medq::file::write_atomically(path, bytes, medq::file::Access::Shared).map_err(|source| {
        ConvertError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::Target;
    use std::cell::Cell;

    /// An evaluation whose one (non-probability) output has this SQNR.
    fn scored(db: f64) -> evaluate::Evaluation {
        evaluate::Evaluation {
            samples: 1,
            layer_sqnr_db: Vec::new(),
            outputs: vec![evaluate::OutputMetrics::for_test(false, db, 1.0, None)],
            classes: None,
            first_io: None,
            clipped: Vec::new(),
        }
    }

    /// Output `i` raised adds `gain[i]` dB to 20 dB.
    fn additive(gain: &[f64], set: &[Raise]) -> evaluate::Evaluation {
        scored(
            20.0 + set
                .iter()
                .map(|s| match *s {
                    Raise::Output(i) | Raise::Weights(i) => gain[i],
                })
                .sum::<f64>(),
        )
    }

    fn search(target: f64, gain: &[f64], max_steps: usize) -> (Vec<Raise>, f64, usize) {
        let rounds = Cell::new(0);
        let evaluate_sets = |sets: &[Vec<Raise>]| {
            rounds.set(rounds.get() + 1);
            Ok(sets.iter().map(|s| additive(gain, s)).collect())
        };
        let pool = (0..gain.len())
            .map(|i| (Raise::Output(i), additive(gain, &[Raise::Output(i)])))
            .collect();
        let base = scored(20.0);
        let (steps, ev) = greedy(
            Target::Sqnr(target),
            (&[], &base),
            pool,
            max_steps,
            &evaluate_sets,
        )
        .unwrap();
        (steps, selection_score(&ev), rounds.get())
    }

    #[test]
    fn greedy_takes_the_best_steps_first_and_stops_at_the_target() {
        let gain = [1.0, 4.0, 0.5, 3.0];
        let (steps, db, _) = search(26.0, &gain, usize::MAX);
        assert_eq!(steps, [Raise::Output(1), Raise::Output(3)]);
        assert_eq!(db, 27.0);
    }

    #[test]
    fn greedy_stops_after_max_steps_with_the_best_prefix_taken() {
        let gain = [1.0, 4.0, 0.5, 3.0, 2.0, -1.0];
        // Out of reach: every step is taken without a limit...
        let (steps, db, rounds) = search(100.0, &gain, usize::MAX);
        assert_eq!(steps.len(), 5, "all but the harmful step: {steps:?}");
        assert_eq!((db, rounds), (30.5, 5));
        // ...and two with one: two rounds, the second not measured further.
        let (steps, db, rounds) = search(100.0, &gain, 2);
        assert_eq!(steps, [Raise::Output(1), Raise::Output(3)]);
        assert_eq!((db, rounds), (27.0, 1));
    }
}
