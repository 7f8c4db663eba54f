//! The one context-carrying error of the kernel layer: which operation, on
//! which object, failed with which errno.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// A failed system call or kernel interaction, in the shape of crun's
/// `crun_make_error`: the operation, the object it touched, and the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    pub op: &'static str,
    pub target: Option<PathBuf>,
    pub errno: Errno,
}

impl SysError {
    pub fn new(op: &'static str, errno: Errno) -> Self {
        Self {
            op,
            target: None,
            errno,
        }
    }

    pub fn at(op: &'static str, target: impl Into<PathBuf>, errno: Errno) -> Self {
        Self {
            op,
            target: Some(target.into()),
            errno,
        }
    }

    /// Wraps an `io::Error`, keeping its errno when it has one.
    pub fn io(op: &'static str, target: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        let errno = err.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        Self::at(op, target, errno)
    }
}

/// The C library's wording for `errno` ("No such file or directory"), as a
/// shell would print it; nix's own descriptions differ from it.
pub fn errno_text(errno: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(errno as i32).to_string();
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => write!(f, "{} {}: {}", self.op, t.display(), errno_text(self.errno)),
            None => write!(f, "{}: {}", self.op, errno_text(self.errno)),
        }
    }
}

impl std::error::Error for SysError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_object_and_reason() {
        let e = SysError::at("mount proc", "/proc", Errno::EPERM);
        assert_eq!(e.to_string(), "mount proc /proc: Operation not permitted");
        let e = SysError::new("clone", Errno::EAGAIN);
        assert_eq!(e.to_string(), "clone: Resource temporarily unavailable");
    }
}
