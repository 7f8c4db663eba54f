//! `exec`/`run -i -t` over `--host ssh://`: no descriptor crosses ssh, so
//! the device's `berth system dial-stdio` relays the streams in-band
//! (api/relay.rs): its `relay.output` lines go to our stdout/stderr, our
//! stdin goes as `relay.input`, our window size as `relay.window`.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::unistd::read;
use serde_json::Value;

use super::detach_keys::DetachKeys;
use super::exec_tty::{
    Ended, RawMode, TerminalOptions, read_signals, terminal_signals, window_size,
};
use crate::api::client::answer_of;
use crate::api::exec_client::ExecConnection;
use crate::api::relay::{CHUNK_BYTES, input_closed_line, input_line, parse_output, window_line};

struct Remote<'a> {
    conn: &'a mut ExecConnection,
    keys: DetachKeys,
    stdin_open: bool,
}

pub(super) fn relay(
    conn: &mut ExecConnection,
    names: &[String],
    opts: TerminalOptions,
) -> Result<Ended, String> {
    let tty = names.iter().any(|n| n == "terminal");
    let has_stdin = tty || names.iter().any(|n| n == "stdin");
    let signals = tty.then(terminal_signals).transpose()?;
    let _raw = (tty && opts.interactive).then(RawMode::enter);
    let mut r = Remote {
        conn,
        keys: DetachKeys::new(opts.detach && tty),
        stdin_open: opts.interactive && has_stdin,
    };
    if tty {
        r.send_window();
    }
    loop {
        if let Some(answer) = r.incoming()? {
            return Ok(Ended::Answer(answer));
        }
        if let Some(early) = r.wait(signals.as_ref())? {
            return Ok(early);
        }
    }
}

impl Remote<'_> {
    /// Output received so far to ours; the answer once it is there.
    fn incoming(&mut self) -> Result<Option<Value>, String> {
        while let Some(v) = self.conn.buffered_line().map_err(|e| e.to_string())? {
            if let Some((stream, data)) = parse_output(&v) {
                write_out(&stream, &data)?;
            } else if v.get("id").is_some() {
                return answer_of(v).map(Some).map_err(|e| e.to_string());
            }
        }
        Ok(None)
    }

    /// One poll and what it found; Some when this client is done early.
    fn wait(&mut self, signals: Option<&SignalFd>) -> Result<Option<Ended>, String> {
        // SAFETY: descriptor 0 stays open for the life of this process.
        let our_stdin = unsafe { BorrowedFd::borrow_raw(0) };
        // SAFETY: the stream outlives this poll.
        let link = unsafe { BorrowedFd::borrow_raw(self.conn.raw_fd()) };
        let mut fds = vec![PollFd::new(link, PollFlags::POLLIN)];
        if let Some(s) = signals {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        let i = self.stdin_open.then(|| {
            fds.push(PollFd::new(our_stdin, PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => return Err(format!("poll: {e}")),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        if let Some(s) = signals
            && ready[1]
        {
            let mut winched = false;
            if let Some(code) = read_signals(s, || winched = true) {
                return Ok(Some(Ended::Early(code)));
            }
            if winched {
                self.send_window();
            }
        }
        if i.is_some_and(|i| ready[i]) && self.read_stdin(our_stdin)? {
            return Ok(Some(Ended::Early(0)));
        }
        if ready[0] && !self.conn.fill().map_err(|e| e.to_string())? {
            let why = self.conn.answer().err();
            return Err(why.map_or("the connection closed".into(), |e| e.to_string()));
        }
        Ok(None)
    }

    /// One read of our stdin, sent on; true when it was the detach
    /// sequence.
    fn read_stdin(&mut self, our_stdin: BorrowedFd<'_>) -> Result<bool, String> {
        let mut buf = [0u8; CHUNK_BYTES];
        let send =
            |conn: &mut ExecConnection, line: &[u8]| conn.send(line).map_err(|e| e.to_string());
        match read(our_stdin, &mut buf) {
            Ok(0) | Err(Errno::EIO | Errno::EBADF) => {
                self.stdin_open = false;
                send(self.conn, &input_closed_line())?;
            }
            Ok(n) => {
                let (pass, detached) = self.keys.filter(&buf[..n]);
                if !pass.is_empty() {
                    send(self.conn, &input_line(&pass))?;
                }
                return Ok(detached);
            }
            Err(_) => {}
        }
        Ok(false)
    }

    fn send_window(&mut self) {
        if let Some(ws) = window_size() {
            let _ = self.conn.send(&window_line(ws.ws_row, ws.ws_col));
        }
    }
}

fn write_out(stream: &str, data: &[u8]) -> Result<(), String> {
    let mut out: Box<dyn Write> = match stream {
        "stderr" => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout()),
    };
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| format!("write output: {e}"))
}
