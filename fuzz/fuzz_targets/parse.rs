//! `Model::parse` on arbitrary bytes: an `Err` is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let buf = medq::AlignedBuf::from_slice(data);
    let _ = medq::Model::parse(buf.as_slice());
});
