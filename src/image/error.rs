//! Errors of the image layer: each names the file, blob or field involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// An error reported by a helper process, already worded.
    #[error("{0}")]
    Helper(String),
    #[error("image {0} not found in the store")]
    NotFound(String),
    #[error(transparent)]
    Reference(#[from] crate::fetch::reference::ReferenceError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::registry::FetchError),
}

impl ImageError {
    /// A pull that may succeed if tried again later (docs/edge.md).
    pub fn is_transient(&self) -> bool {
        matches!(self, ImageError::Fetch(e) if e.is_transient())
    }

    /// A registry certificate outside its validity (the clock, maybe).
    pub fn is_certificate_time(&self) -> bool {
        matches!(self, ImageError::Fetch(e) if e.is_certificate_time())
    }

    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
