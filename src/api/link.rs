//! The byte stream to a daemon: its Unix socket (descriptors may ride on
//! it, SCM_RIGHTS), or, with `--host ssh://...` / `$BERTH_HOST`, the
//! pipes of an ssh running `berth system dial-stdio` on the device.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use super::client::{ClientError, DEFAULT_SOCKET};
use super::ssh::{SshLink, parse_ssh_url};

/// Descriptors accepted in one message (stdout, stderr, stdin).
const MAX_FDS: usize = 3;

static HOST: OnceLock<String> = OnceLock::new();

/// `--host`, which wins over `$BERTH_HOST`.
pub fn set_host(host: &str) {
    let _ = HOST.set(host.to_string());
}

/// The daemon to talk to: `--host`, else `$BERTH_HOST`; None: the local
/// socket.
fn host() -> Option<String> {
    HOST.get()
        .cloned()
        .or_else(|| std::env::var("BERTH_HOST").ok())
        .filter(|h| !h.is_empty())
}

pub enum Link {
    Local(UnixStream),
    Remote(Box<SshLink>),
}

impl Link {
    /// The daemon at `path`; with a remote host, `path` names the socket on
    /// the device (passed on unless it is the default).
    pub fn connect(path: &Path) -> Result<Link, ClientError> {
        let local = |path: &Path| {
            UnixStream::connect(path)
                .map(Link::Local)
                .map_err(|source| ClientError::Connect {
                    path: path.to_path_buf(),
                    source,
                })
        };
        let Some(host) = host() else {
            return local(path);
        };
        if let Some(p) = host.strip_prefix("unix://") {
            return local(&PathBuf::from(p));
        }
        let target = parse_ssh_url(&host).map_err(ClientError::Protocol)?;
        let socket = (path != Path::new(DEFAULT_SOCKET)).then_some(path);
        let link = SshLink::spawn(&target, socket)
            .map_err(|e| ClientError::Protocol(format!("cannot run ssh: {e}")))?;
        Ok(Link::Remote(Box::new(link)))
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Link::Remote(_))
    }

    /// What to poll for incoming bytes.
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        match self {
            Link::Local(s) => s.as_fd(),
            Link::Remote(r) => r.read_fd(),
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Local(s) => s.write_all(bytes),
            Link::Remote(r) => r.write_all(bytes),
        }
    }

    /// One read; descriptors that came with it (local only) onto `fds`.
    pub fn receive(&mut self, data: &mut [u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<usize> {
        match self {
            Link::Local(s) => receive_with_fds(s.as_raw_fd(), data, fds),
            Link::Remote(r) => loop {
                match r.read(data) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => return other,
                }
            },
        }
    }

    /// The error for a stream that ended before the answer.
    pub fn closed(&mut self) -> ClientError {
        match self {
            Link::Local(_) => ClientError::Protocol("the daemon closed the connection".into()),
            Link::Remote(r) => ClientError::Protocol(r.why_closed()),
        }
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Link::Local(s) => s.read(buf),
            Link::Remote(r) => r.read(buf),
        }
    }
}

/// recvmsg(2), keeping the descriptors that ride on the bytes.
pub fn receive_with_fds(
    fd: RawFd,
    data: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> std::io::Result<usize> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(data)];
    let msg = loop {
        match recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let n = msg.bytes;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel just installed `fd` in this process
                // for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Ok(n)
}
