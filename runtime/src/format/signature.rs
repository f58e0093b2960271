//! Signed models (feature `verify`): an Ed25519ph signature (RFC 8032 §5.1)
//! in the optional Signature section covers every other byte of the file.
//!
//! The CRC only detects accidents: anyone can recompute it after changing a
//! weight or an op. A signature made with the manufacturer's secret key can
//! only be checked, not remade, with the public key the device holds.
//!
//! The signed message is the whole file with the header's CRC32 field and
//! the signature's own 64 bytes read as zero (the CRC covers the signature,
//! so it is written last). Ed25519ph hashes that message with SHA-512 as a
//! stream, so a device verifies a file in place in flash, with no copy.

use core::ops::Range;

use ed25519_dalek::{Digest, Sha512, Signature, VerifyingKey};

use super::layout::{header, SectionId, SIGNATURE_CONTEXT, SIGNATURE_LEN};
use super::model::checked_sections;
use super::Model;
use crate::error::Error;

/// An Ed25519 public key as its 32 bytes (the compressed curve point).
pub type PublicKey = [u8; 32];

/// The byte range of the Signature section, if the file lists one.
fn signature_range(bytes: &[u8]) -> Result<Option<Range<usize>>, Error> {
    let ranges = checked_sections(bytes)?;
    let Some((start, end)) = ranges
        .get(SectionId::Signature as usize - 1)
        .copied()
        .flatten()
    else {
        return Ok(None);
    };
    if end - start != SIGNATURE_LEN {
        return Err(Error::BadSectionLength(SectionId::Signature));
    }
    Ok(Some(start..end))
}

/// SHA-512 of the signed message: `bytes` with the CRC field and the
/// signature read as zero.
fn signed_digest(bytes: &[u8], signature: &Range<usize>) -> Sha512 {
    let zeros = [0u8; SIGNATURE_LEN];
    let crc = header::CRC32..header::CRC32 + 4;
    // The header precedes every section, so the holes are in this order.
    let mut digest = Sha512::new();
    let mut at = 0;
    for hole in [crc, signature.clone()] {
        digest.update(bytes.get(at..hole.start).unwrap_or_default());
        digest.update(zeros.get(..hole.len()).unwrap_or_default());
        at = hole.end;
    }
    digest.update(bytes.get(at..).unwrap_or_default());
    digest
}

impl<'a> Model<'a> {
    /// [`Model::parse`] for a signed file: the signature is checked against
    /// `public_key` first, so the parser only ever sees bytes that came from
    /// the key's owner.
    ///
    /// Errors: [`Error::NotSigned`] for a file without a signature,
    /// [`Error::BadPublicKey`] if the key is not a valid curve point,
    /// [`Error::SignatureMismatch`] for a file changed after signing or
    /// signed with another key; a corrupted file still fails its CRC check
    /// ([`Error::ChecksumMismatch`]) before the signature is looked at.
    pub fn parse_verified(bytes: &'a [u8], public_key: &PublicKey) -> Result<Model<'a>, Error> {
        let range = signature_range(bytes)?.ok_or(Error::NotSigned)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| Error::BadPublicKey)?;
        let signature: &[u8; SIGNATURE_LEN] = bytes
            .get(range.clone())
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::BadSectionLength(SectionId::Signature))?;
        key.verify_prehashed_strict(
            signed_digest(bytes, &range),
            Some(SIGNATURE_CONTEXT),
            &Signature::from_bytes(signature),
        )
        .map_err(|_| Error::SignatureMismatch)?;
        Model::parse(bytes)
    }
}

/// Returns `bytes` (a valid `.mq` file) signed with `key`: its sections
/// laid out again with a Signature section last, or the existing signature
/// replaced. Ed25519 is deterministic, so the same file and key always give
/// the same bytes. The result is checked with [`Model::parse_verified`]
/// before it is returned.
#[cfg(feature = "std")]
pub fn sign(bytes: &[u8], key: &ed25519_dalek::SigningKey) -> Result<std::vec::Vec<u8>, Error> {
    use super::layout::SECTION_ALIGN;
    use crate::file::AlignedBuf;

    let aligned = AlignedBuf::from_slice(bytes);
    let model = Model::parse(aligned.as_slice())?;
    let ranges = checked_sections(aligned.as_slice())?;
    let mut sections: std::vec::Vec<(SectionId, &[u8])> = std::vec::Vec::new();
    for (id, range) in SectionId::ALL.iter().zip(ranges) {
        if let (Some((start, end)), false) = (range, *id == SectionId::Signature) {
            sections.push((
                *id,
                aligned.as_slice().get(start..end).ok_or(Error::Truncated)?,
            ));
        }
    }
    sections.push((SectionId::Signature, &[0; SIGNATURE_LEN]));
    let mut file = super::writer::assemble(&sections, model.arena_len())?;

    // The signature section is last and 16-aligned, so it ends the file.
    let start = file
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|s| s % SECTION_ALIGN == 0)
        .ok_or(Error::LimitExceeded)?;
    let range = start..file.len();
    let signature = key
        .sign_prehashed(signed_digest(&file, &range), Some(SIGNATURE_CONTEXT))
        .map_err(|_| Error::LimitExceeded)?;
    if let Some(dst) = file.get_mut(range) {
        dst.copy_from_slice(&signature.to_bytes());
    }
    let crc = super::file_crc32(&file);
    if let Some(dst) = file.get_mut(header::CRC32..header::CRC32 + 4) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Model::parse_verified(
        AlignedBuf::from_slice(&file).as_slice(),
        &key.verifying_key().to_bytes(),
    )?;
    Ok(file)
}
