//! What can go wrong in the zoo.

use std::path::PathBuf;

/// Why the zoo could not be run at all (a model that fails to convert is a
/// [`ModelResult`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error("cannot write the results: {0}")]
    Write(String),
}
