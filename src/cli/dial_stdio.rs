//! `berth system dial-stdio`: joins its stdin and stdout to the daemon's
//! control socket, for a client on another machine that runs it through
//! ssh (`berth --host ssh://...`, like `docker system dial-stdio`). It
//! connects with the ssh user's own credentials, so the socket's access
//! rules (SO_PEERCRED) apply to that user. Bytes pass as they are, except
//! descriptors, which cannot cross ssh: this process takes them and
//! relays their bytes in-band (api/relay.rs, dial_session.rs).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::read;
use serde_json::Value;

use super::args::Args;
use super::commands::SYSTEM;
use super::dial_session::Session;
use crate::api::client::socket_path;
use crate::api::link::receive_with_fds;
use crate::api::relay::parse_client_line;

/// Lines longer than this pass through unparsed (whole logs can be).
const MAX_PARSED_LINE_BYTES: usize = 1 << 20;

pub fn system(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, SYSTEM.options)?;
    match args.positional.as_slice() {
        [sub] if sub == "dial-stdio" => dial_stdio(&args),
        _ => Err("usage: berth system dial-stdio [--socket PATH]".into()),
    }
}

struct Dial {
    socket: UnixStream,
    /// The daemon's bytes since the last line end.
    from_daemon: Vec<u8>,
    /// The current daemon line is too long to parse: it passes as is.
    long_line: bool,
    /// Descriptors received, not yet matched to their line.
    fds: Vec<OwnedFd>,
    from_client: Vec<u8>,
    session: Option<Session>,
}

fn dial_stdio(args: &Args) -> Result<i32, String> {
    let path = socket_path(args.value("socket"));
    let socket = UnixStream::connect(&path)
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    let mut d = Dial {
        socket,
        from_daemon: Vec::new(),
        long_line: false,
        fds: Vec::new(),
        from_client: Vec::new(),
        session: None,
    };
    let mut stdin_open = true;
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(d.socket.as_fd(), PollFlags::POLLIN)];
        let takes_input = d.session.as_ref().is_none_or(|s| s.takes_input());
        if stdin_open && takes_input {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let first_session_fd = fds.len();
        if let Some(s) = &d.session {
            fds.extend(s.poll_fds());
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
            Ok(_) => {}
        }
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if let Some(s) = &mut d.session {
            s.service(&ready[first_session_fd..])?;
        }
        if stdin_open && takes_input && !ready[1].is_empty() && !d.read_client()? {
            if d.session.is_some() {
                // The client is gone: what it was attached to stays.
                return Ok(0);
            }
            stdin_open = false;
            let _ = d.socket.shutdown(std::net::Shutdown::Write);
        }
        if !ready[0].is_empty() && !d.read_daemon()? {
            return Ok(0);
        }
    }
}

impl Dial {
    /// One read of the client's bytes; false at their end.
    fn read_client(&mut self) -> Result<bool, String> {
        let mut buf = [0u8; 64 * 1024];
        let n = match read(std::io::stdin().as_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => return Ok(true),
            Err(_) => 0,
        };
        if n == 0 {
            return Ok(false);
        }
        if self.session.is_none() && self.from_client.is_empty() {
            return self.send_daemon(&buf[..n]).map(|()| true);
        }
        self.from_client.extend_from_slice(&buf[..n]);
        while let Some(nl) = self.from_client.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.from_client.drain(..=nl).collect();
            let relayed = parse_client_line(&line[..nl]);
            match (&mut self.session, relayed) {
                (Some(s), Some(m)) => s.on_client(m),
                (None, Some(_)) => {} // its session is over
                (_, None) => self.send_daemon(&line)?,
            }
        }
        if self.from_client.len() > MAX_PARSED_LINE_BYTES {
            let rest = std::mem::take(&mut self.from_client);
            self.send_daemon(&rest)?;
        }
        Ok(true)
    }

    fn send_daemon(&mut self, bytes: &[u8]) -> Result<(), String> {
        (&self.socket)
            .write_all(bytes)
            .map_err(|e| format!("write to the daemon: {e}"))
    }

    /// One read of the daemon's bytes; false at their end.
    fn read_daemon(&mut self) -> Result<bool, String> {
        let mut buf = [0u8; 64 * 1024];
        let n = match receive_with_fds(self.socket.as_raw_fd(), &mut buf, &mut self.fds) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(_) => 0,
        };
        if n == 0 {
            let rest = std::mem::take(&mut self.from_daemon);
            to_client(&rest)?;
            return Ok(false);
        }
        self.from_daemon.extend_from_slice(&buf[..n]);
        while let Some(nl) = self.from_daemon.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.from_daemon.drain(..=nl).collect();
            if std::mem::take(&mut self.long_line) {
                to_client(&line)?;
            } else {
                self.daemon_line(line)?;
            }
        }
        if self.from_daemon.len() > MAX_PARSED_LINE_BYTES {
            self.long_line = true;
            let part = std::mem::take(&mut self.from_daemon);
            to_client(&part)?;
        }
        Ok(true)
    }

    /// A whole line from the daemon: a `*.started` one with descriptors
    /// starts a session (the line says `relayed`); a final answer ends it,
    /// after the output read before it.
    fn daemon_line(&mut self, line: Vec<u8>) -> Result<(), String> {
        if self.fds.is_empty() && self.session.is_none() {
            return to_client(&line);
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&line) else {
            return to_client(&line);
        };
        if let Some(names) = started_names(&v)
            && !names.is_empty()
            && names.len() <= self.fds.len()
        {
            let fds: Vec<OwnedFd> = self.fds.drain(..names.len()).collect();
            v["params"]["relayed"] = Value::Bool(true);
            let mut out = serde_json::to_vec(&v).unwrap_or_default();
            out.push(b'\n');
            to_client(&out)?;
            self.session = Some(Session::start(&names, fds)?);
            return Ok(());
        }
        if v.get("id").is_some()
            && let Some(mut s) = self.session.take()
        {
            s.drain()?;
        }
        to_client(&line)
    }
}

/// `params.fds` of a notification.
fn started_names(v: &Value) -> Option<Vec<String>> {
    if v.get("id").is_some() {
        return None;
    }
    let names = v.get("params")?.get("fds")?.as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

pub(super) fn to_client(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("write to the client: {e}"))
}
