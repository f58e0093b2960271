//! The CLI's `.npy` readers (samples and labels, streamed, and a whole
//! file in memory), as `medq run` and the converter use them, on arbitrary
//! files: an `Err` is fine, a panic or an allocation the file's header asks
//! for without having the data is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medq_cli::npy::{
    decode_integer_input_samples, decode_labels, decode_samples, LabelReader, SampleReader,
};
use medq_fuzz::scratch_file;

fuzz_target!(|data: &[u8]| {
    let _ = decode_samples(data);
    let _ = decode_integer_input_samples(data);
    let _ = decode_labels(data);
    let Some(path) = scratch_file(data) else {
        return;
    };
    if let Ok(mut reader) = SampleReader::open(path) {
        let mut out = Vec::new();
        while let Ok(n) = reader.read_chunk(64, &mut out) {
            if n == 0 {
                break;
            }
            out.clear();
        }
    }
    if let Ok(mut reader) = LabelReader::open(path) {
        let mut out = Vec::new();
        while let Ok(n) = reader.read_chunk(64, &mut out) {
            if n == 0 {
                break;
            }
            out.clear();
        }
    }
});
