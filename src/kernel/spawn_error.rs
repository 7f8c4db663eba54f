//! Why a container (or a process joining one) did not reach exec, and the
//! exit code a shell would give for it.

use std::fmt;

use nix::errno::Errno;

use super::error::SysError;
use super::handshake::ErrorRecord;

/// Why a container did not reach exec.
#[derive(Debug)]
pub enum SpawnError {
    /// The supervisor's half failed (pipes, clone).
    Setup(SysError),
    /// The caller's placement step (e.g. joining the cgroup) failed.
    Place(String),
    /// The config cannot be expressed to the kernel (e.g. a NUL in argv).
    InvalidConfig(String),
    /// The child reported a failed step before exec.
    Child(ErrorRecord),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Setup(e) => write!(f, "{e}"),
            SpawnError::InvalidConfig(m) | SpawnError::Place(m) => f.write_str(m),
            SpawnError::Child(r) => {
                let reason = super::error::errno_text(Errno::from_raw(r.errno));
                // errno 0: a step that ran and failed (a hook) says why itself.
                if r.errno == 0 && !r.detail.is_empty() {
                    f.write_str(&r.detail)
                } else if r.detail.is_empty() {
                    write!(f, "{}: {reason}", r.stage)
                } else {
                    write!(f, "{}: {reason}", r.detail)
                }
            }
        }
    }
}

impl std::error::Error for SpawnError {}

impl SpawnError {
    /// The exit code a shell would report for this failure (tini's
    /// convention: 127 not found, 126 cannot execute).
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::Child(r) if r.errno == Errno::ENOENT as i32 => 127,
            _ => 126,
        }
    }
}
