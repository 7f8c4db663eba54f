//! The wire format between the supervisor and a container's child before
//! exec: a one-byte "go" on the sync pipe, and a stage-tagged error record on
//! the error pipe. EOF on the error pipe with no record means exec succeeded.

use std::fmt;

/// Bytes of detail an error record may carry (crun caps it the same way).
pub const MAX_ERR_DETAIL_BYTES: usize = 1024;
const HEADER_BYTES: usize = 8;
/// The byte the parent writes once the child may proceed.
pub const GO_BYTE: u8 = b'G';

/// One variant per step of the child sequence, so the parent can say which
/// step failed without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Stage {
    WaitForGo = 1,
    Setsid,
    MountPrivate,
    MountOverlay,
    PivotRoot,
    MountFilesystems,
    MakeDevices,
    MaskPaths,
    ReadonlyPaths,
    Hostname,
    Loopback,
    Stdio,
    Chdir,
    SetIds,
    DropCaps,
    NoNewPrivs,
    CloseFds,
    Exec,
    BindSources,
    UserMounts,
    Sysctls,
    ReadonlyRoot,
    Rlimits,
    Landlock,
    Seccomp,
    JoinNamespaces,
    CgroupNamespace,
    CreateContainerHooks,
    StartContainerHooks,
}

impl Stage {
    const ALL: [Stage; 29] = [
        Stage::WaitForGo,
        Stage::Setsid,
        Stage::MountPrivate,
        Stage::MountOverlay,
        Stage::PivotRoot,
        Stage::MountFilesystems,
        Stage::MakeDevices,
        Stage::MaskPaths,
        Stage::ReadonlyPaths,
        Stage::Hostname,
        Stage::Loopback,
        Stage::Stdio,
        Stage::Chdir,
        Stage::SetIds,
        Stage::DropCaps,
        Stage::NoNewPrivs,
        Stage::CloseFds,
        Stage::Exec,
        Stage::BindSources,
        Stage::UserMounts,
        Stage::Sysctls,
        Stage::ReadonlyRoot,
        Stage::Rlimits,
        Stage::Landlock,
        Stage::Seccomp,
        Stage::JoinNamespaces,
        Stage::CgroupNamespace,
        Stage::CreateContainerHooks,
        Stage::StartContainerHooks,
    ];

    fn from_u16(v: u16) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|s| *s as u16 == v)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stage::WaitForGo => "wait for the supervisor",
            Stage::Setsid => "setsid",
            Stage::MountPrivate => "make / private",
            Stage::MountOverlay => "mount overlay rootfs",
            Stage::PivotRoot => "pivot_root",
            Stage::MountFilesystems => "mount",
            Stage::MakeDevices => "create /dev",
            Stage::MaskPaths => "mask path",
            Stage::ReadonlyPaths => "make path read-only",
            Stage::Hostname => "set hostname",
            Stage::Loopback => "bring up loopback",
            Stage::Stdio => "set up stdio",
            Stage::Chdir => "chdir",
            Stage::SetIds => "set user and groups",
            Stage::DropCaps => "drop capabilities",
            Stage::NoNewPrivs => "set no_new_privs",
            Stage::CloseFds => "close inherited descriptors",
            Stage::Exec => "exec",
            Stage::BindSources => "open bind mount source",
            Stage::UserMounts => "mount",
            Stage::Sysctls => "write sysctl",
            Stage::ReadonlyRoot => "make root read-only",
            Stage::Rlimits => "set resource limit",
            Stage::Landlock => "apply landlock",
            Stage::Seccomp => "install seccomp filter",
            Stage::JoinNamespaces => "join namespace",
            Stage::CgroupNamespace => "set up the cgroup namespace",
            Stage::CreateContainerHooks => "run createContainer hooks",
            Stage::StartContainerHooks => "run startContainer hooks",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What the child reports when a step fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    pub stage: Stage,
    pub errno: i32,
    pub detail: String,
}

impl ErrorRecord {
    /// Encodes into a fixed buffer so the child needs no allocation to send it.
    pub fn encode(
        stage: Stage,
        errno: i32,
        detail: &[u8],
        out: &mut [u8; HEADER_BYTES + MAX_ERR_DETAIL_BYTES],
    ) -> usize {
        let len = detail.len().min(MAX_ERR_DETAIL_BYTES);
        out[0..2].copy_from_slice(&(stage as u16).to_le_bytes());
        out[2..6].copy_from_slice(&errno.to_le_bytes());
        out[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        out[HEADER_BYTES..HEADER_BYTES + len].copy_from_slice(&detail[..len]);
        HEADER_BYTES + len
    }

    /// Decodes what the parent read from the error pipe; `None` when the
    /// bytes are not a complete record (the child died mid-write).
    pub fn decode(buf: &[u8]) -> Option<ErrorRecord> {
        if buf.len() < HEADER_BYTES {
            return None;
        }
        let stage = Stage::from_u16(u16::from_le_bytes([buf[0], buf[1]]))?;
        let errno = i32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]);
        let len = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
        if len > MAX_ERR_DETAIL_BYTES || buf.len() < HEADER_BYTES + len {
            return None;
        }
        let detail = String::from_utf8_lossy(&buf[HEADER_BYTES..HEADER_BYTES + len]).into_owned();
        Some(ErrorRecord {
            stage,
            errno,
            detail,
        })
    }
}

pub const RECORD_BUF_BYTES: usize = HEADER_BYTES + MAX_ERR_DETAIL_BYTES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let mut buf = [0u8; RECORD_BUF_BYTES];
        let n = ErrorRecord::encode(Stage::Exec, 2, b"/bin/nope", &mut buf);
        let rec = ErrorRecord::decode(&buf[..n]).unwrap();
        assert_eq!(
            rec,
            ErrorRecord {
                stage: Stage::Exec,
                errno: 2,
                detail: "/bin/nope".into()
            }
        );
    }

    #[test]
    fn detail_is_capped() {
        let mut buf = [0u8; RECORD_BUF_BYTES];
        let long = vec![b'x'; 5000];
        let n = ErrorRecord::encode(Stage::PivotRoot, 1, &long, &mut buf);
        assert_eq!(n, RECORD_BUF_BYTES);
        assert_eq!(
            ErrorRecord::decode(&buf[..n]).unwrap().detail.len(),
            MAX_ERR_DETAIL_BYTES
        );
    }

    #[test]
    fn truncated_or_unknown_records_are_refused() {
        let mut buf = [0u8; RECORD_BUF_BYTES];
        let n = ErrorRecord::encode(Stage::Exec, 2, b"abc", &mut buf);
        assert!(ErrorRecord::decode(&buf[..n - 1]).is_none());
        assert!(ErrorRecord::decode(&buf[..4]).is_none());
        buf[0] = 0xff;
        assert!(ErrorRecord::decode(&buf[..n]).is_none());
    }
}
