//! The converter's ONNX loader (protobuf decoding, shape inference through
//! tract, lowering to medq's IR) on mutated models: unsupported or broken
//! graphs must give an error naming the problem, never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::Builder::new().suffix(".onnx").tempfile() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let _ = medq_converter::load::load_onnx(file.path());
});
