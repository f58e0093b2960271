//! The test nets of `models/testnets` (written by its `make_*_testnets.py`
//! scripts): `<name>.onnx` with 64 calibration samples in
//! `<name>_calib.npy` and 64 held-out ones in `<name>_test.npy`.
#![allow(dead_code)]

use std::path::PathBuf;

use medq_converter::report::Report;
use medq_converter::{convert, Options};

/// `models/testnets`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/testnets")
}

/// Converts test net `name` (symbolic dimensions fixed by `input_shapes`)
/// with its calibration samples and evaluates it on its held-out ones; the
/// report (the `.mq` goes to a temporary directory).
pub fn convert_testnet(name: &str, input_shapes: Vec<(String, Vec<usize>)>) -> Report {
    let d = dir();
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = Options::new(d.join(format!("{name}.onnx")), tmp.path().join("model.mq"));
    opts.calib = vec![d.join(format!("{name}_calib.npy"))];
    opts.eval = vec![d.join(format!("{name}_test.npy"))];
    opts.input_shapes = input_shapes;
    convert(&opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}
