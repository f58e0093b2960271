//! What the fuzz targets share.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Writes `data` to this process's scratch file and returns its path, for
/// the targets whose code under test reads a path. One file, rewritten per
/// input (in `/dev/shm` where it exists), instead of a new temporary file
/// per input: creating and deleting files made those targets ~30× slower.
pub fn scratch_file(data: &[u8]) -> Option<&'static std::path::Path> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("medq-fuzz-{}", std::process::id()))
    });
    let mut file = File::create(path).ok()?;
    file.write_all(data).ok()?;
    Some(path)
}
