//! The converter's ONNX loader (protobuf decoding, shape inference through
//! tract, lowering to medq's IR) on mutated models: unsupported or broken
//! graphs must give an error naming the problem, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medq_fuzz::scratch_file;

fuzz_target!(|data: &[u8]| {
    let Some(path) = scratch_file(data) else {
        return;
    };
    let _ = medq_converter::load::load_onnx(path);
});
