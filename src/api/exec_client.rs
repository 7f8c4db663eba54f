//! The client side of `exec`: the request, then lines read with
//! recvmsg(2) so the pipes the daemon attaches (SCM_RIGHTS) are received
//! rather than discarded, then the exit code as the final answer.

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use serde_json::{Value, json};

use super::client::{ClientError, answer};

/// A line longer than this from the daemon is a protocol error.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Descriptors accepted in one message (stdout, stderr, stdin).
const MAX_FDS: usize = 3;

/// The started command's pipes, as the daemon handed them over: stdout
/// and stderr (and stdin), or, with a terminal, the socket its master
/// arrives on (terminal_master).
pub enum ExecPipes {
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    Terminal(OwnedFd),
}

pub struct ExecConnection {
    stream: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl ExecConnection {
    /// Sends `exec` with `params`; returns once the command runs, with its
    /// pipes, or with the daemon's refusal.
    pub fn start(path: &Path, params: Value) -> Result<(ExecConnection, ExecPipes), ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": "exec", "params": params});
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        let mut conn = ExecConnection {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
        };
        let sent = (&conn.stream).write_all(&line);
        // A refused connection (access control) has its reason waiting
        // even when the write failed.
        let started = match (conn.next_line(), sent) {
            (Ok(v), _) => v,
            (Err(_), Err(e)) => return Err(ClientError::Io(e)),
            (Err(e), Ok(())) => return Err(e),
        };
        if started.get("method").and_then(Value::as_str) != Some("exec.started") {
            answer(started)?;
            return Err(ClientError::Protocol(
                "exec answered before it started".into(),
            ));
        }
        let names = started["params"]["fds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names = names.iter().filter_map(|n| n.as_str().map(String::from));
        let mut named: Vec<(String, OwnedFd)> = names.zip(std::mem::take(&mut conn.fds)).collect();
        let mut by_name = |n: &str| {
            let i = named.iter().position(|(k, _)| k == n)?;
            Some(named.remove(i).1)
        };
        if let Some(t) = by_name("terminal") {
            return Ok((conn, ExecPipes::Terminal(t)));
        }
        let (Some(stdout), Some(stderr)) = (by_name("stdout"), by_name("stderr")) else {
            return Err(ClientError::Protocol(
                "exec.started came without its pipes".into(),
            ));
        };
        let stdin = by_name("stdin");
        Ok((
            conn,
            ExecPipes::Pipes {
                stdout,
                stderr,
                stdin,
            },
        ))
    }

    /// The socket, for the caller's poll.
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The command's exit code: the request's answer.
    pub fn exit_code(&mut self) -> Result<i32, ClientError> {
        let v = self.next_line()?;
        let result = answer(v)?;
        result["exit_code"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| ClientError::Protocol(format!("exec answered {result}")))
    }

    fn next_line(&mut self) -> Result<Value, ClientError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return serde_json::from_slice(&line)
                    .map_err(|e| ClientError::Protocol(e.to_string()));
            }
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(ClientError::Protocol("line too long".into()));
            }
            if self.receive()? == 0 {
                return Err(ClientError::Protocol(
                    "the daemon closed the connection".into(),
                ));
            }
        }
    }

    /// One recvmsg: bytes into the buffer, descriptors kept.
    fn receive(&mut self) -> Result<usize, ClientError> {
        let mut data = [0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = loop {
            match recvmsg::<()>(
                self.stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(|e| ClientError::Io(e.into()))?,
            }
        };
        let n = msg.bytes;
        for cmsg in msg.cmsgs().map_err(|e| ClientError::Io(e.into()))? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: the kernel just installed `fd` in this
                    // process for us; nothing else owns it.
                    self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
}

/// The pty master the command's side sends on `channel`; or, when it could
/// not open one, what it said instead.
pub fn terminal_master(channel: &OwnedFd) -> Result<OwnedFd, String> {
    let mut said = Vec::new();
    loop {
        let mut data = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = match recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("receive the terminal: {e}")),
            Ok(m) => m,
        };
        let n = msg.bytes;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in msg.cmsgs().map_err(|e| e.to_string())? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel just installed these descriptors in
                // this process for us; nothing else owns them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if let Some(master) = fds.into_iter().next() {
            return Ok(master);
        }
        if n == 0 {
            return Err(String::from_utf8_lossy(&said).trim().to_string());
        }
        said.extend_from_slice(&data[..n]);
        said.truncate(4096);
    }
}
