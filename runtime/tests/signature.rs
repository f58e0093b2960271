//! Signed models: `medq::sign` and `Model::parse_verified` (feature `verify`).
//! A signature must hold against every change an attacker can make once the
//! CRC no longer protects anything: any byte, the section table, the
//! signature itself, another key.

mod format_models;

use ed25519_dalek::SigningKey;
use format_models::*;
use medq::format::layout::{header, section_entry, SectionId, HEADER_LEN, SIGNATURE_LEN};
use medq::{AlignedBuf, Error, Model};

/// The ECG model the firmware ships: a real file with every section kind
/// but Golden.
const ECG: &[u8] = include_bytes!("../../firmware/model/ecg.mq");

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(seed: u8) -> medq::PublicKey {
    key(seed).verifying_key().to_bytes()
}

fn verify(bytes: &[u8], public_key: &medq::PublicKey) -> Result<(), Error> {
    Model::parse_verified(AlignedBuf::from_slice(bytes).as_slice(), public_key).map(|_| ())
}

/// Where the file's Signature section starts, from its section table.
fn signature_offset(bytes: &[u8]) -> usize {
    let count = u16::from_le_bytes([
        bytes[header::SECTION_COUNT],
        bytes[header::SECTION_COUNT + 1],
    ]);
    (0..usize::from(count))
        .map(|i| HEADER_LEN + i * 16)
        .find(|&e| {
            u32::from_le_bytes(bytes[e..e + 4].try_into().unwrap()) == SectionId::Signature as u32
        })
        .map(|e| {
            let at = e + section_entry::OFFSET;
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
        })
        .expect("a Signature section")
}

#[test]
fn a_signed_file_verifies_with_its_key_and_still_parses_without_one() {
    let signed = medq::sign(ECG, &key(1)).unwrap();
    verify(&signed, &public(1)).unwrap();
    let buf = AlignedBuf::from_slice(&signed);
    let model = Model::parse(buf.as_slice()).unwrap();
    let sig_at = signature_offset(&signed);
    assert_eq!(
        model.signature(),
        Some(signed[sig_at..sig_at + SIGNATURE_LEN].try_into().unwrap())
    );
    // The model itself is unchanged: same ops and tensors.
    let orig = AlignedBuf::from_slice(ECG);
    let orig = Model::parse(orig.as_slice()).unwrap();
    assert_eq!(model.op_count(), orig.op_count());
    assert_eq!(model.weights_len(), orig.weights_len());
    assert_eq!(model.arena_len(), orig.arena_len());
}

#[test]
fn signing_is_deterministic_and_re_signing_replaces_the_signature() {
    let once = medq::sign(ECG, &key(1)).unwrap();
    assert_eq!(medq::sign(ECG, &key(1)).unwrap(), once);
    assert_eq!(
        medq::sign(&once, &key(1)).unwrap(),
        once,
        "re-signing adds nothing"
    );
    let other = medq::sign(&once, &key(2)).unwrap();
    assert_eq!(other.len(), once.len());
    verify(&other, &public(2)).unwrap();
    assert_eq!(verify(&other, &public(1)), Err(Error::SignatureMismatch));
}

#[test]
fn another_key_an_unsigned_file_and_a_bad_key_are_refused() {
    let signed = medq::sign(ECG, &key(1)).unwrap();
    assert_eq!(verify(&signed, &public(2)), Err(Error::SignatureMismatch));
    assert_eq!(verify(ECG, &public(1)), Err(Error::NotSigned));
    // y = 2 is not the y of any curve point (its x² is not a square).
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert_eq!(verify(&signed, &not_a_point), Err(Error::BadPublicKey));
}

/// Every byte of the file, changed with the CRC recomputed (what a tamperer
/// does), is refused: the CRC field itself only by the CRC check, every
/// other byte by the signature (or, for the table and header, by the
/// layout checks that find it).
#[test]
fn every_byte_changed_with_a_fixed_crc_is_refused() {
    let signed = medq::sign(ECG, &key(1)).unwrap();
    let crc = header::CRC32..header::CRC32 + 4;
    let mut accepted = Vec::new();
    for i in (0..signed.len()).filter(|i| !crc.contains(i)) {
        let mut buf = AlignedBuf::from_slice(&signed);
        buf.as_mut_slice()[i] ^= 0x01;
        fix_crc(buf.as_mut_slice());
        if Model::parse_verified(buf.as_slice(), &public(1)).is_ok() {
            accepted.push(i);
        }
    }
    assert!(
        accepted.is_empty(),
        "changed bytes accepted at {accepted:?}"
    );
}

#[test]
fn a_signature_moved_or_truncated_is_refused() {
    let signed = medq::sign(ECG, &key(1)).unwrap();
    // The file cut before its signature, header fixed: the table now points
    // past the end.
    let mut cut = signed[..signed.len() - SIGNATURE_LEN].to_vec();
    let len = cut.len() as u32;
    cut[header::FILE_LEN..header::FILE_LEN + 4].copy_from_slice(&len.to_le_bytes());
    fix_crc(&mut cut);
    assert!(matches!(
        verify(&cut, &public(1)),
        Err(Error::SectionOutOfBounds(SectionId::Signature))
    ));
    // A signature section one byte short.
    let mut short = signed.clone();
    let count = usize::from(short[header::SECTION_COUNT]);
    let last = HEADER_LEN + (count - 1) * 16 + section_entry::LEN;
    short[last..last + 4].copy_from_slice(&(SIGNATURE_LEN as u32 - 1).to_le_bytes());
    fix_crc(&mut short);
    assert_eq!(
        verify(&short, &public(1)),
        Err(Error::BadSectionLength(SectionId::Signature))
    );
    let buf = AlignedBuf::from_slice(&short);
    assert_eq!(
        Model::parse(buf.as_slice()).err(),
        Some(Error::BadSectionLength(SectionId::Signature))
    );
}

/// A signature from one file does not carry over to another file signed
/// with the same key.
#[test]
fn a_signature_does_not_transfer_between_files() {
    let a = medq::sign(ECG, &key(1)).unwrap();
    let other_model = fc_lut_softmax().finish().unwrap();
    let mut b = medq::sign(&other_model, &key(1)).unwrap();
    let (at_a, at_b) = (signature_offset(&a), signature_offset(&b));
    b[at_b..at_b + SIGNATURE_LEN].copy_from_slice(&a[at_a..at_a + SIGNATURE_LEN]);
    fix_crc(&mut b);
    assert_eq!(verify(&b, &public(1)), Err(Error::SignatureMismatch));
}

/// The signature is Ed25519ph with the context `medq model v1` over the
/// file with the CRC and the signature zeroed: checked here against the
/// dalek implementation directly, as an independent verifier would.
#[test]
fn the_signature_is_ed25519ph_over_the_file_with_crc_and_signature_zeroed() {
    use ed25519_dalek::{Digest, Sha512, Signature};
    let signed = medq::sign(ECG, &key(3)).unwrap();
    let at = signature_offset(&signed);
    let mut message = signed.clone();
    message[header::CRC32..header::CRC32 + 4].fill(0);
    message[at..at + SIGNATURE_LEN].fill(0);
    let signature = Signature::from_bytes(signed[at..at + SIGNATURE_LEN].try_into().unwrap());
    key(3)
        .verifying_key()
        .verify_prehashed_strict(
            Sha512::new_with_prefix(&message),
            Some(b"medq model v1"),
            &signature,
        )
        .unwrap();
}
