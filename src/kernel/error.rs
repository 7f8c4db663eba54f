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

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => write!(f, "{} {}: {}", self.op, t.display(), self.errno.desc()),
            None => write!(f, "{}: {}", self.op, self.errno.desc()),
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
