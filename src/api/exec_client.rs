//! The client side of `exec` and of `run -i`/`-t`: the request, then lines
//! read with recvmsg(2) so the descriptors the daemon attaches (SCM_RIGHTS)
//! are received rather than discarded, then the final answer. Over ssh
//! (link.rs) no descriptor arrives: the `*.started` notification says
//! `relayed` and the bytes come in-band (relay.rs).

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use serde_json::{Value, json};

use super::client::{ClientError, answer};
use super::link::Link;

/// A line longer than this from the daemon is a protocol error.
const MAX_LINE_BYTES: usize = 1 << 20;

/// What the daemon handed over with `*.started`: an exec's stdout and
/// stderr (and stdin); a run's stdin alone; with a terminal, the socket its
/// master arrives on (terminal_master); or, over ssh, the names of the
/// streams the far side relays.
pub enum ExecPipes {
    Pipes {
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
    },
    Terminal(OwnedFd),
    Relayed(Vec<String>),
}

pub struct ExecConnection {
    link: Link,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl ExecConnection {
    /// Sends `exec` with `params`; returns once the command runs, with its
    /// pipes, or with the daemon's refusal.
    pub fn start(path: &Path, params: Value) -> Result<(ExecConnection, ExecPipes), ClientError> {
        Self::call(path, "exec", params)
    }

    /// Sends `method`, whose first reply is a `METHOD.started` notification
    /// carrying descriptors (or, relayed, naming them).
    pub fn call(
        path: &Path,
        method: &str,
        params: Value,
    ) -> Result<(ExecConnection, ExecPipes), ClientError> {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut line = req.to_string().into_bytes();
        line.push(b'\n');
        let mut conn = ExecConnection {
            link: Link::connect(path)?,
            buf: Vec::new(),
            fds: Vec::new(),
        };
        let sent = conn.link.write_all(&line);
        // A refused connection (access control) has its reason waiting
        // even when the write failed.
        let started = match (conn.next_line(), sent) {
            (Ok(v), _) => v,
            (Err(_), Err(e)) => return Err(ClientError::Io(e)),
            (Err(e), Ok(())) => return Err(e),
        };
        let expected = format!("{method}.started");
        if started.get("method").and_then(Value::as_str) != Some(expected.as_str()) {
            answer(started)?;
            return Err(ClientError::Protocol(format!(
                "{method} answered before it started"
            )));
        }
        let names: Vec<String> = started["params"]["fds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if started["params"]["relayed"] == json!(true) {
            return Ok((conn, ExecPipes::Relayed(names)));
        }
        let pipes = conn.take_pipes(names)?;
        Ok((conn, pipes))
    }

    fn take_pipes(&mut self, names: Vec<String>) -> Result<ExecPipes, ClientError> {
        let mut named: Vec<(String, OwnedFd)> = names
            .into_iter()
            .zip(std::mem::take(&mut self.fds))
            .collect();
        let mut by_name = |n: &str| {
            let i = named.iter().position(|(k, _)| k == n)?;
            Some(named.remove(i).1)
        };
        if let Some(t) = by_name("terminal") {
            return Ok(ExecPipes::Terminal(t));
        }
        let (stdout, stderr, stdin) = (by_name("stdout"), by_name("stderr"), by_name("stdin"));
        if stdout.is_none() && stdin.is_none() {
            return Err(ClientError::Protocol(
                "started came without its descriptors".into(),
            ));
        }
        Ok(ExecPipes::Pipes {
            stdout,
            stderr,
            stdin,
        })
    }

    /// The stream, for the caller's poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.link.read_fd()
    }

    /// The raw stream descriptor, for polls beside borrowed others.
    pub fn raw_fd(&self) -> RawFd {
        self.link.read_fd().as_raw_fd()
    }

    /// The command's exit code: the request's answer.
    pub fn exit_code(&mut self) -> Result<i32, ClientError> {
        let result = self.answer()?;
        exit_code_of(&result)
    }

    /// The request's answer (skipping notifications).
    pub fn answer(&mut self) -> Result<Value, ClientError> {
        loop {
            let v = self.next_line()?;
            if v.get("id").is_some() {
                return answer(v);
            }
        }
    }

    /// A whole line is waiting in the buffer (poll would not say so).
    pub fn has_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    /// A line already received, without reading more.
    pub fn buffered_line(&mut self) -> Result<Option<Value>, ClientError> {
        let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let line: Vec<u8> = self.buf.drain(..=nl).collect();
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// One read into the buffer; false at the stream's end.
    pub fn fill(&mut self) -> Result<bool, ClientError> {
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(ClientError::Protocol("line too long".into()));
        }
        let mut data = [0u8; 64 * 1024];
        let n = self
            .link
            .receive(&mut data, &mut self.fds)
            .map_err(ClientError::Io)?;
        self.buf.extend_from_slice(&data[..n]);
        Ok(n > 0)
    }

    /// Sends a line as is (relay messages).
    pub fn send(&mut self, line: &[u8]) -> Result<(), ClientError> {
        self.link.write_all(line).map_err(ClientError::Io)
    }

    fn next_line(&mut self) -> Result<Value, ClientError> {
        loop {
            if let Some(v) = self.buffered_line()? {
                return Ok(v);
            }
            if !self.fill()? {
                return Err(self.link.closed());
            }
        }
    }
}

/// `exit_code` of an exec's or a run's answer.
pub fn exit_code_of(result: &Value) -> Result<i32, ClientError> {
    result["exit_code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(|| ClientError::Protocol(format!("answered {result}")))
}

/// The pty master the command's side sends on `channel`; or, when it could
/// not open one, what it said instead.
pub fn terminal_master(channel: &impl AsFd) -> Result<OwnedFd, String> {
    let mut said = Vec::new();
    loop {
        let mut data = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = match recvmsg::<()>(
            channel.as_fd().as_raw_fd(),
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
