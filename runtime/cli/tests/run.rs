//! `medq run` as a user meets it: streamed, multi-threaded, multi-input,
//! and every refusal leaving no output behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medq::{OpCode, QuantSpec, Writer};
use npyz::{Order, WriterBuilder};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ECG model the firmware embeds (converted from models/ecg5000/ecg.onnx).
fn ecg_mq() -> PathBuf {
    repo().join("firmware/model/ecg.mq")
}

fn medq(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medq"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "medq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail");
    assert!(stderr.contains(expect), "stderr lacks {expect:?}: {stderr}");
}

fn write_npy(path: &Path, shape: &[u64], order: Order, values: &[f32]) {
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

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

/// The first `n` held-out ECG beats, `[n, 1, 140]`, and their labels.
fn ecg_beats(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let x = medq_cli::read_npy_f32(&repo().join("models/ecg5000/test_x.npy")).unwrap();
    let y = medq_cli::read_npy_labels(&repo().join("models/ecg5000/test_y.npy")).unwrap();
    let (xp, yp) = (dir.join("beats.npy"), dir.join("labels.npy"));
    write_npy(&xp, &[n as u64, 1, 140], Order::C, &x.data[..n * 140]);
    npyz::to_file_1d(&yp, y[..n].iter().copied()).unwrap();
    (xp, yp)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn outputs_are_byte_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = ecg_beats(dir.path(), 200);
    let mut runs = Vec::new();
    for threads in ["1", "3", "8"] {
        let out = dir.path().join(format!("probs{threads}.npy"));
        let stdout = ok(&medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--labels",
            &y,
            &"--threads",
            &threads,
        ]));
        assert!(stdout.contains("accuracy "), "{stdout}");
        assert!(stdout.contains(&format!("on {threads} thread")), "{stdout}");
        runs.push(std::fs::read(&out).unwrap());
    }
    // One sample per chunk, many more chunks than threads: the most
    // interleaving the workers can do.
    let file = medq_cli::open(&ecg_mq()).unwrap();
    let tiny = dir.path().join("probs_tiny_chunks.npy");
    let opts = medq_cli::RunOptions {
        inputs: vec![x.clone()],
        outputs: vec![tiny.clone()],
        labels: None,
        threads: 5,
        chunk_samples: Some(1),
    };
    let done = medq_cli::run_files(&file.model().unwrap(), &opts).unwrap();
    assert_eq!((done.samples, done.threads), (200, 5));
    runs.push(std::fs::read(&tiny).unwrap());
    assert!(runs[1..].iter().all(|r| *r == runs[0]));

    // The streamed file holds what an in-memory run on one thread computes.
    let model = file.model().unwrap();
    let expected = medq_cli::run_batch(&model, &medq_cli::read_npy_f32(&x).unwrap()).unwrap();
    let (shape, values) = read_npy(&dir.path().join("probs1.npy"));
    assert_eq!(shape, [200, 5]);
    assert_eq!(values, expected.data[0]);
}

#[test]
fn a_fortran_order_file_gives_the_same_outputs_as_its_c_order_twin() {
    let dir = tempfile::tempdir().unwrap();
    let (c_path, _) = ecg_beats(dir.path(), 30);
    let (_, beats) = read_npy(&c_path);
    // [30, 1, 140] in Fortran order: the sample index varies fastest.
    let fortran: Vec<f32> = (0..140)
        .flat_map(|t| (0..30).map(move |i| (i, t)))
        .map(|(i, t)| beats[i * 140 + t])
        .collect();
    let f_path = dir.path().join("fortran.npy");
    write_npy(&f_path, &[30, 1, 140], Order::Fortran, &fortran);
    let (yc, yf) = (dir.path().join("yc.npy"), dir.path().join("yf.npy"));
    ok(&medq(&[
        &"run",
        &ecg_mq(),
        &"--input",
        &c_path,
        &"--output",
        &yc,
    ]));
    ok(&medq(&[
        &"run",
        &ecg_mq(),
        &"--input",
        &f_path,
        &"--output",
        &yf,
    ]));
    assert_eq!(std::fs::read(&yc).unwrap(), std::fs::read(&yf).unwrap());
}

/// a [1, 4] and b [1, 2] → Concat → cat [1, 6] → Mul by 2 → twice [1, 6];
/// both cat and twice are outputs. Scales 1, zero points 0.
fn two_input_model(dir: &Path) -> PathBuf {
    let q = || QuantSpec::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    let one = (1 << 30, 1); // multiplier 1.0 as (Q31, shift)
    let mut w = Writer::new();
    let a = w.add_activation("a", &[1, 4], q(), 0);
    let b = w.add_activation("b", &[1, 2], q(), 4);
    let cat = w.add_activation("cat", &[1, 6], q(), 8);
    w.add_op(
        OpCode::Concat,
        &[a, b],
        &[cat],
        &[1, one.0, one.1, one.0, one.1],
    );
    let two = w.add_constant_i8("two", &[], q(), &[2]);
    let twice = w.add_activation("twice", &[1, 6], q(), 16);
    w.add_op(
        OpCode::Mul,
        &[cat, two],
        &[twice],
        &[one.0, one.1, -128, 127],
    );
    w.set_inputs(&[a, b]);
    w.set_outputs(&[cat, twice]);
    w.set_arena_len(24);
    let path = dir.join("two.mq");
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    path
}

#[test]
fn each_input_file_feeds_its_model_input_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mq = two_input_model(dir.path());
    let n = 50;
    let a: Vec<f32> = (0..n * 4).map(|v| (v % 40) as f32).collect();
    let b: Vec<f32> = (0..n * 2).map(|v| -((v % 30) as f32)).collect();
    let (ap, bp) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    write_npy(&ap, &[n as u64, 4], Order::C, &a);
    write_npy(&bp, &[n as u64, 2], Order::C, &b);
    let (cat, twice) = (dir.path().join("cat.npy"), dir.path().join("twice.npy"));
    ok(&medq(&[
        &"run",
        &mq,
        &"--input",
        &ap,
        &"--input",
        &bp,
        &"--output",
        &cat,
        &"--output",
        &twice,
        &"--threads",
        &"2",
    ]));
    let expected: Vec<f32> = (0..n)
        .flat_map(|i| {
            a[i * 4..i * 4 + 4]
                .iter()
                .chain(&b[i * 2..i * 2 + 2])
                .copied()
        })
        .collect();
    assert_eq!(read_npy(&cat), (vec![n as u64, 6], expected.clone()));
    let doubled: Vec<f32> = expected
        .iter()
        .map(|v| (2.0 * v).clamp(-128.0, 127.0))
        .collect();
    assert_eq!(read_npy(&twice), (vec![n as u64, 6], doubled));

    // Whole inputs of batch 1, `[N, 1, 4]`, are the same samples.
    let a_whole = dir.path().join("a_whole.npy");
    write_npy(&a_whole, &[n as u64, 1, 4], Order::C, &a);
    let cat_whole = dir.path().join("cat_whole.npy");
    ok(&medq(&[
        &"run",
        &mq,
        &"--input",
        &a_whole,
        &"--input",
        &bp,
        &"--output",
        &cat_whole,
        &"--output",
        &dir.path().join("twice_whole.npy"),
    ]));
    assert_eq!(read_npy(&cat_whole), (vec![n as u64, 6], expected));
}

/// An output without a batch axis (a per-step classifier's `[T, C]`, as
/// ONNX exports one): its file stacks whole outputs, `[N, T, C]`.
#[test]
fn an_output_without_a_batch_axis_is_written_whole_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    let q = || QuantSpec::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 2, 3], q(), 0);
    let steps = w.add_activation("steps", &[2, 3], q(), 8);
    w.add_op(OpCode::Reshape, &[x], &[steps], &[]);
    w.set_inputs(&[x]);
    w.set_outputs(&[steps]);
    w.set_arena_len(16);
    let mq = dir.path().join("steps.mq");
    std::fs::write(&mq, w.finish().unwrap()).unwrap();
    let n = 5;
    let values: Vec<f32> = (0..n * 6).map(|v| (v as f32) - 10.0).collect();
    let (xp, yp) = (dir.path().join("x.npy"), dir.path().join("steps.npy"));
    write_npy(&xp, &[n as u64, 2, 3], Order::C, &values);
    ok(&medq(&[&"run", &mq, &"--input", &xp, &"--output", &yp]));
    assert_eq!(read_npy(&yp), (vec![n as u64, 2, 3], values));
}

#[test]
fn input_files_are_checked_against_the_model_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mq = two_input_model(dir.path());
    let d = dir.path();
    write_npy(&d.join("a.npy"), &[5, 4], Order::C, &[1.0; 20]);
    write_npy(&d.join("b.npy"), &[5, 2], Order::C, &[1.0; 10]);
    write_npy(&d.join("b6.npy"), &[6, 2], Order::C, &[1.0; 12]);
    let (a, b, b6) = (d.join("a.npy"), d.join("b.npy"), d.join("b6.npy"));
    let (y0, y1) = (d.join("y0.npy"), d.join("y1.npy"));
    let before = files_in(d);

    // Swapped: input 0 gets b's file.
    let swapped = medq(&[
        &"run",
        &mq,
        &"--input",
        &b,
        &"--input",
        &a,
        &"--output",
        &y0,
        &"--output",
        &y1,
    ]);
    refused(&swapped, "input 0 (a) is [1, 4]");
    refused(&swapped, "b.npy should be [N, 4]");
    refused(&swapped, "it is [5, 2]");

    let one_file = medq(&[
        &"run",
        &mq,
        &"--input",
        &a,
        &"--output",
        &y0,
        &"--output",
        &y1,
    ]);
    refused(
        &one_file,
        "the model has 2 inputs (a, b); give --input once for each",
    );

    let counts = medq(&[
        &"run",
        &mq,
        &"--input",
        &a,
        &"--input",
        &b6,
        &"--output",
        &y0,
        &"--output",
        &y1,
    ]);
    refused(&counts, "b6.npy holds 6 samples but");
    refused(&counts, "a.npy holds 5");

    let outputs = medq(&[
        &"run",
        &mq,
        &"--input",
        &a,
        &"--input",
        &b,
        &"--output",
        &y0,
    ]);
    refused(
        &outputs,
        "the model has 2 outputs; give --output once for each (got 1)",
    );

    let twice = medq(&[
        &"run",
        &mq,
        &"--input",
        &a,
        &"--input",
        &b,
        &"--output",
        &y0,
        &"--output",
        &y0,
    ]);
    refused(&twice, "is given twice");

    assert_eq!(files_in(d), before, "a refused run wrote something");
}

#[test]
fn labels_are_checked_before_any_output_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, _) = ecg_beats(d, 20);
    let out = d.join("probs.npy");
    std::fs::write(&out, b"previous contents").unwrap();
    let before = files_in(d);

    let short = d.join("short.npy");
    npyz::to_file_1d(&short, (0..19).map(|i| i % 5)).unwrap();
    refused(
        &medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--labels",
            &short,
        ]),
        "short.npy holds 19 labels for 20 samples",
    );

    let big = d.join("big.npy");
    let labels: Vec<i64> = (0..20).map(|i| if i == 13 { 5 } else { i % 5 }).collect();
    npyz::to_file_1d(&big, labels).unwrap();
    refused(
        &medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--labels",
            &big,
        ]),
        "label 5 of sample 13 is not a class index (the model has 5 classes: 0..=4)",
    );

    let negative = d.join("negative.npy");
    npyz::to_file_1d(&negative, (0..20).map(|i| if i == 2 { -1i32 } else { 0 })).unwrap();
    refused(
        &medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--labels",
            &negative,
        ]),
        "label -1 of sample 2",
    );

    // Whole numbers in a float array are labels (the UCR archive's are);
    // a fraction is not.
    let floats = d.join("floats.npy");
    write_npy(&floats, &[20], Order::C, &[0.5; 20]);
    refused(
        &medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--labels",
            &floats,
        ]),
        "label 0.5 is not a whole class index",
    );

    let mut after = files_in(d);
    after.retain(|f| !["short.npy", "big.npy", "negative.npy", "floats.npy"].contains(&f.as_str()));
    assert_eq!(after, before, "a refused run wrote something");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous contents");
}

#[test]
fn a_non_finite_sample_mid_stream_fails_the_run_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, _) = ecg_beats(d, 120);
    let (_, beats) = read_npy(&x);
    let out = d.join("probs.npy");
    let bad = d.join("bad.npy");
    // NaN last-but-one: the thread-count loop below runs on the infinity.
    for (value, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "an infinity")] {
        let mut beats = beats.clone();
        beats[97 * 140 + 42] = value;
        write_npy(&bad, &[120, 1, 140], Order::C, &beats);
        let before = files_in(d);
        refused(
            &medq(&[&"run", &ecg_mq(), &"--input", &bad, &"--output", &out]),
            &format!("bad.npy: sample 97 holds {what} at position [0, 42]"),
        );
        assert_eq!(files_in(d), before, "a failed run left a file");
    }
    let before = files_in(d);
    for threads in ["1", "2"] {
        refused(
            &medq(&[
                &"run",
                &ecg_mq(),
                &"--input",
                &bad,
                &"--output",
                &out,
                &"--threads",
                &threads,
            ]),
            "bad.npy: sample 97 holds an infinity at position [0, 42]",
        );
        assert_eq!(files_in(d), before, "a failed run left a file");
    }
}

/// x [1, 3] → Reshape → probs [1, 3], both at the softmax's scale 1/256 and
/// zero point −128 (so inputs are probabilities in 0 ..= 255/256), with
/// `margin` as its abstain margin.
fn probs_model(dir: &Path, margin: Option<&str>) -> PathBuf {
    let q = || QuantSpec::PerTensor {
        scale: 1.0 / 256.0,
        zero_point: -128,
    };
    let mut w = Writer::new();
    let x = w.add_activation("x", &[1, 3], q(), 0);
    let y = w.add_activation("probs", &[1, 3], q(), 0);
    w.add_op(OpCode::Reshape, &[x], &[y], &[]);
    w.set_inputs(&[x]);
    w.set_outputs(&[y]);
    w.set_arena_len(3);
    if let Some(m) = margin {
        w.set_metadata(medq::MetaKey::AbstainMargin, m);
    }
    let path = dir.join(format!("probs{}.mq", margin.unwrap_or("")));
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    path
}

/// Four samples through `probs_model`: leads of 0.7 (class 0), 0.1 (class
/// 1, below a 0.25 margin), ~1 (class 0, two values clipped), 0.5 (class 2);
/// labels 0, 1, 0, 1.
fn run_four_samples(dir: &Path, margin: Option<&str>) -> Output {
    let x = dir.join("x.npy");
    #[rustfmt::skip]
    let samples = [
        0.8, 0.1, 0.1,
        0.4, 0.5, 0.1,
        1.5, -0.2, 0.0,
        0.1, 0.2, 0.7,
    ];
    write_npy(&x, &[4, 3], Order::C, &samples);
    let y = dir.join("y.npy");
    npyz::to_file_1d(&y, [0i64, 1, 0, 1]).unwrap();
    let out = dir.join("out.npy");
    let mq = probs_model(dir, margin);
    medq(&[
        &"run",
        &mq,
        &"--input",
        &x,
        &"--output",
        &out,
        &"--labels",
        &y,
        &"--threads",
        &"2",
    ])
}

#[test]
fn clipped_input_values_are_counted_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_four_samples(dir.path(), None);
    ok(&out);
    // 1.5 and −0.2 lie outside 0 ..= 255/256; 0.0 is its lower end.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "clipped inputs: 1 of 4 samples had values outside the calibrated range \
             (2 values clipped); first: samples 2\n"
        ),
        "{stderr}"
    );
    let (_, probs) = read_npy(&dir.path().join("out.npy"));
    assert_eq!(&probs[6..9], &[255.0 / 256.0, 0.0, 0.0]);
}

#[test]
fn samples_below_the_abstain_margin_are_reported_uncertain() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = ok(&run_four_samples(dir.path(), None));
    assert!(!stdout.contains("uncertain"), "{stdout}");
    assert!(
        stdout.contains("accuracy 75.00% on 4 samples\n"),
        "{stdout}"
    );

    let stdout = ok(&run_four_samples(dir.path(), Some("0.25")));
    assert!(
        stdout.contains("uncertain 1 of 4 samples (top-1 margin below 0.25); first: samples 1\n"),
        "{stdout}"
    );
    // Sample 1 would have been right: uncertain counts as wrong overall.
    assert!(
        stdout.contains("accuracy 50.00% on 4 samples\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accuracy 66.67% on the 3 samples given a class"),
        "{stdout}"
    );
    let mq = probs_model(dir.path(), Some("0.25"));
    let inspect = ok(&medq(&[&"inspect", &mq]));
    assert!(
        inspect.contains("abstain       below a top-1 margin of 0.25 (output 0)"),
        "{inspect}"
    );
}

#[test]
fn in_memory_runs_refuse_non_finite_values_naming_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let file = medq::ModelFile::open(probs_model(dir.path(), None)).unwrap();
    let model = file.model().unwrap();
    let input = medq_cli::NpyF32 {
        shape: vec![2, 3],
        data: vec![0.5, 0.2, 0.1, 0.3, f32::NAN, 0.1],
    };
    let err = medq_cli::run_batch(&model, &input).err().unwrap();
    let message = format!("{err:#}");
    assert!(
        message.contains("sample 1, input 0 (x): input value 1 is NaN or infinite"),
        "{message}"
    );
    let input = medq_cli::NpyF32 {
        shape: vec![2, 3],
        data: vec![0.5, 0.2, 2.0, 0.3, -1.0, -1.0],
    };
    assert_eq!(medq_cli::run_batch(&model, &input).unwrap().clipped, [1, 2]);
}

#[test]
fn zero_threads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (x, _) = ecg_beats(dir.path(), 2);
    let out = dir.path().join("probs.npy");
    refused(
        &medq(&[
            &"run",
            &ecg_mq(),
            &"--input",
            &x,
            &"--output",
            &out,
            &"--threads",
            &"0",
        ]),
        "--threads must be at least 1",
    );
    assert!(!out.exists());
}

#[test]
fn chunks_stay_small_whatever_the_sample_count() {
    let file = medq_cli::open(&ecg_mq()).unwrap();
    let io = medq_cli::run::ModelIo::of(&file.model().unwrap()).unwrap();
    // 140 input and 5 output floats per sample.
    let per_sample_bytes = (140 + 5) * 4;
    for samples in [1, 10, 1000, 100_000, 100_000_000] {
        for threads in [1, 2, 64] {
            let chunk = medq_cli::run::chunk_samples(&io, samples, threads);
            assert!(chunk >= 1);
            assert!(chunk * per_sample_bytes <= 256 * 1024, "{chunk} samples");
            // At least two chunks per thread when there are enough samples.
            assert!(samples.div_ceil(chunk) >= (2 * threads).min(samples));
        }
    }
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in ["inspect", "run", "bench", "selftest"] {
        let help = ok(&medq(&[&"help", &cmd]));
        assert!(help.contains("Example"), "{cmd}: {help}");
        assert!(help.contains(&format!("medq {cmd} ")), "{cmd}: {help}");
    }
    let run = ok(&medq(&[&"run", &"--help"]));
    assert!(
        run.contains("--threads") && run.contains("--input"),
        "{run}"
    );
}

/// Ctrl-C or SIGTERM in the middle of a long run removes the temporary
/// output and leaves no output file: exit status 130, nothing half-written.
#[cfg(unix)]
#[test]
fn an_interrupted_run_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("beats.npy");
    let beats = 20_000u64;
    let values: Vec<f32> = (0..beats * 140)
        .map(|i| ((i % 140) as f32 / 20.0).sin())
        .collect();
    write_npy(&input, &[beats, 1, 140], Order::C, &values);
    let output = dir.path().join("probs.npy");
    for signal in ["-INT", "-TERM"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medq"))
            .args(["run".as_ref(), ecg_mq().as_os_str(), "--input".as_ref()])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let temporaries = || -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("probs.npy"))
                .collect()
        };
        // Interrupt once the temporary output exists (the run is writing).
        let start = std::time::Instant::now();
        while temporaries().is_empty() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before writing"
            );
            assert!(
                start.elapsed().as_secs() < 60,
                "no temporary output appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(medq_cli::EXIT_INTERRUPTED),
            "{signal}: {stderr}"
        );
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert_eq!(temporaries(), Vec::<String>::new(), "{signal}: left behind");
    }
}
