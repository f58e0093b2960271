//! `Model::parse_verified` against a fixed key: only a file signed with its
//! secret key may pass. The seed corpus holds such a file (see README.md),
//! so the fuzzer starts from the accepting path.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The public key of the fuzzing secret key, the 32 bytes 7, 7, … (a test
/// key: it protects nothing).
fn public_key() -> medq::PublicKey {
    const KEY: [u8; 32] = [
        0xea, 0x4a, 0x6c, 0x63, 0xe2, 0x9c, 0x52, 0x0a, 0xbe, 0xf5, 0x50, 0x7b, 0x13, 0x2e, 0xc5,
        0xf9, 0x95, 0x47, 0x76, 0xae, 0xbe, 0xbe, 0x7b, 0x92, 0x42, 0x1e, 0xea, 0x69, 0x14, 0x46,
        0xd2, 0x2c,
    ];
    KEY
}

fuzz_target!(|data: &[u8]| {
    let buf = medq::AlignedBuf::from_slice(data);
    if let Ok(model) = medq::Model::parse_verified(buf.as_slice(), &public_key()) {
        // Whatever passes is also a valid model.
        assert!(model.signature().is_some());
    }
});
