//! The `.mq` model format: [`layout`] (the bytes), [`Model`] (the validating,
//! zero-copy reader) and, with `std`, [`writer::Writer`] (the one writer).
//!
//! `FORMAT.md` at the crate root is the prose specification.
#![forbid(unsafe_code)]

pub mod layout;
mod model;
#[cfg(feature = "verify")]
pub mod signature;
#[cfg(feature = "std")]
pub mod writer;

pub use model::{
    check_header, peek_arena_len, peek_op_count, MetadataEntries, Model, OpInfo, Quant, TensorInfo,
};

/// CRC-32/ISO-HDLC (the zlib/PNG CRC), the file checksum.
pub(crate) const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The checksum of a whole file, with the header's CRC field read as zero.
///
/// `bytes` must be at least [`layout::HEADER_LEN`] long; shorter inputs are
/// hashed as they are.
pub fn file_crc32(bytes: &[u8]) -> u32 {
    let crc_at = layout::header::CRC32;
    let mut digest = CRC32.digest();
    match (bytes.get(..crc_at), bytes.get(crc_at + 4..)) {
        (Some(head), Some(tail)) => {
            digest.update(head);
            digest.update(&[0; 4]);
            digest.update(tail);
        }
        _ => digest.update(bytes),
    }
    digest.finalize()
}
