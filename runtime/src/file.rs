//! Loading `.mq` files on a host (feature `std`).
//!
//! Two ways in: [`ModelFile::open`] reads the file into an aligned heap
//! buffer; [`ModelFile::map`] memory-maps it (memmap2) and reads it in place,
//! as a device reads flash. A mapping is only as stable as the file under it,
//! so `map` is for files nobody rewrites while they are in use (the converter
//! replaces files by rename, which leaves existing mappings intact).
#![deny(unsafe_code)]

use std::fmt;
use std::path::Path;
use std::vec::Vec;

use crate::error::Error;
use crate::format::layout::HEADER_LEN;
use crate::format::Model;

/// Bytes in a buffer aligned for [`Model::parse`] (16 bytes, more than
/// [`BUFFER_ALIGN`](crate::format::layout::BUFFER_ALIGN) requires).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AlignedBuf {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        AlignedBuf {
            words: std::vec![0u128; len.div_ceil(16)],
            len,
        }
    }

    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> AlignedBuf {
        let mut words = std::vec![0u128; bytes.len().div_ceil(16)];
        let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        if let Some(dst) = dst.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        AlignedBuf {
            words,
            len: bytes.len(),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(&self.words);
        all.get(..self.len).unwrap_or(&[])
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let all: &mut [u8] = bytemuck::cast_slice_mut(&mut self.words);
        all.get_mut(..self.len).unwrap_or(&mut [])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

/// A `.mq` file loaded from disk.
///
/// ```no_run
/// let file = medq::ModelFile::open("model.mq")?;
/// let model = file.model()?;
/// let mut arena = vec![0u8; model.arena_len()];
/// let mut plan = vec![medq::PreparedOp::EMPTY; model.op_count()];
/// let mut interp = medq::Interpreter::new(&model, &mut arena, &mut plan)?;
/// # Ok::<(), medq::LoadError>(())
/// ```
#[derive(Debug)]
pub struct ModelFile {
    bytes: Bytes,
}

#[derive(Debug)]
enum Bytes {
    Owned(AlignedBuf),
    Mapped(memmap2::Mmap),
}

/// An alias of [`ModelFile`], whose [`map`](ModelFile::map) memory-maps.
pub type MappedModel = ModelFile;

impl ModelFile {
    /// Reads the file and validates it once, so that [`model`](Self::model)
    /// only fails if called on a file that was refused here.
    ///
    /// The header is read and checked first, so a file that is not a `.mq`
    /// of this version, or whose length is not the one its header declares,
    /// is refused before the rest is read; the rest is read straight into
    /// the aligned buffer (one copy of the file in memory).
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile, LoadError> {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let len = usize::try_from(f.metadata()?.len()).unwrap_or(usize::MAX);
        let mut head = [0u8; HEADER_LEN];
        let head = head.get_mut(..len.min(HEADER_LEN)).unwrap_or(&mut []);
        f.read_exact(head)?;
        crate::format::check_header(head, len)?;
        let mut buf = AlignedBuf::zeroed(len);
        let (start, rest) = buf
            .as_mut_slice()
            .split_at_mut_checked(head.len())
            .ok_or(Error::Truncated)?;
        start.copy_from_slice(head);
        f.read_exact(rest)?;
        let file = ModelFile {
            bytes: Bytes::Owned(buf),
        };
        file.model()?;
        Ok(file)
    }

    /// Memory-maps the file read-only and validates it in place (no copy).
    /// The file must not be modified or truncated while the `ModelFile` lives.
    pub fn map(path: impl AsRef<Path>) -> Result<ModelFile, LoadError> {
        let file = std::fs::File::open(path)?;
        // SAFETY: memmap2 requires that the file is not changed for the life
        // of the map; that is this function's documented precondition. The
        // mapping is read-only and page-aligned, and `model()` re-validates
        // the bytes before any use.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let file = ModelFile {
            bytes: Bytes::Mapped(map),
        };
        file.model()?;
        Ok(file)
    }

    /// Wraps bytes already in memory (not validated until [`model`](Self::model)).
    pub fn from_bytes(bytes: &[u8]) -> ModelFile {
        ModelFile {
            bytes: Bytes::Owned(AlignedBuf::from_slice(bytes)),
        }
    }

    /// The validated model (parsing is cheap and allocation-free, so it is
    /// not cached).
    pub fn model(&self) -> Result<Model<'_>, Error> {
        Model::parse(self.bytes())
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Owned(b) => b.as_slice(),
            Bytes::Mapped(m) => m,
        }
    }
}

/// Why a model file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    Format(Error),
}

/// The message names the kind of failure only; the cause is the
/// [`source`](std::error::Error::source), so that a chain printed in full
/// (anyhow's `{:#}`) says each part once.
impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(_) => f.write_str("cannot read model file"),
            LoadError::Format(_) => f.write_str("invalid model file"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io(e) => Some(e),
            LoadError::Format(e) => Some(e),
        }
    }
}

impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> LoadError {
        LoadError::Io(e)
    }
}

impl From<Error> for LoadError {
    fn from(e: Error) -> LoadError {
        LoadError::Format(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buf_keeps_bytes_and_alignment() {
        for n in [0usize, 1, 15, 16, 17, 100] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let buf = AlignedBuf::from_slice(&data);
            assert_eq!(buf.as_slice(), &data[..]);
            assert_eq!(buf.len(), n);
            assert_eq!(buf.as_slice().as_ptr() as usize % 16, 0);
        }
    }

    #[test]
    fn tracked_temporaries_are_removed_until_untracked() {
        let dir = std::env::temp_dir().join(std::format!("medq-tracked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.tmp"), dir.join("b.tmp"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let tracked_a = TrackedTemporary::new(&a);
        drop(TrackedTemporary::new(&b));
        remove_tracked_temporaries();
        let (a_left, b_left) = (a.exists(), b.exists());
        drop(tracked_a);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!a_left, "a tracked file is removed");
        assert!(b_left, "an untracked file is kept");
    }

    #[test]
    fn open_reports_io_and_format_errors() {
        let missing = ModelFile::open("/nonexistent/medq/model.mq");
        assert!(matches!(missing, Err(LoadError::Io(_))));
        let dir = std::env::temp_dir().join(std::format!("medq-file-test-{}", std::process::id()));
        std::fs::write(
            &dir,
            b"not a model at all, but long enough to have a header",
        )
        .unwrap();
        let bad = ModelFile::open(&dir);
        let bad_map = ModelFile::map(&dir);
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(bad, Err(LoadError::Format(Error::BadMagic))));
        assert!(matches!(bad_map, Err(LoadError::Format(Error::BadMagic))));
        assert!(matches!(
            ModelFile::map("/nonexistent/medq/model.mq"),
            Err(LoadError::Io(_))
        ));
    }
}

/// Who may read a file [`write_atomically`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// What any other program would give a new file (0666 less the umask); a
    /// replaced file keeps its permissions.
    Shared,
    /// The owner only (0600), new or replaced: secret keys.
    Private,
}

/// Temporary files being written, so that an interrupt (SIGINT, SIGTERM,
/// SIGHUP) can remove them before the process exits: see
/// [`remove_tracked_temporaries`].
static TRACKED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A temporary file listed for [`remove_tracked_temporaries`] until this
/// guard is dropped (after the file was renamed into place or removed).
#[must_use = "the file is tracked only while the guard lives"]
#[derive(Debug)]
pub struct TrackedTemporary {
    path: std::path::PathBuf,
}

impl TrackedTemporary {
    pub fn new(path: &Path) -> TrackedTemporary {
        let path = path.to_path_buf();
        if let Ok(mut tracked) = TRACKED.lock() {
            tracked.push(path.clone());
        }
        TrackedTemporary { path }
    }
}

impl Drop for TrackedTemporary {
    fn drop(&mut self) {
        if let Ok(mut tracked) = TRACKED.lock() {
            if let Some(i) = tracked.iter().rposition(|p| *p == self.path) {
                tracked.swap_remove(i);
            }
        }
    }
}

/// Removes every temporary file still being written. For an interrupt
/// handler that then exits: a write it races with either already renamed
/// its file into place (complete) or finds it gone (nothing written).
pub fn remove_tracked_temporaries() {
    if let Ok(tracked) = TRACKED.lock() {
        for path in tracked.iter() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes through a temporary file in the same directory, synced, then
/// renamed over `path`: a reader sees the old file or the complete new one,
/// never a partial one. On any error the temporary file is removed, and an
/// interrupt handler that calls [`remove_tracked_temporaries`] removes it
/// too.
pub fn write_atomically(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    use std::io::Write;

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match access {
            Access::Shared => 0o666,
            Access::Private => 0o600,
        };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    let _tracked = TrackedTemporary::new(tmp.path());
    if access == Access::Shared {
        if let Ok(meta) = std::fs::metadata(path) {
            tmp.as_file().set_permissions(meta.permissions())?;
        }
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
