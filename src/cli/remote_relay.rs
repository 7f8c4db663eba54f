//! `exec`/`run -i -t` over `--host ssh://`: no descriptor crosses ssh, so
//! the device's `berth system dial-stdio` relays the streams in-band
//! (api/relay.rs): its `relay.output` lines go to our stdout/stderr, our
//! stdin goes as `relay.input`, our window size as `relay.window`.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::read;

use super::detach_keys::DetachKeys;
use super::exec_tty::{
    Ended, RawMode, TerminalOptions, read_signals, terminal_signals, window_size,
};
use crate::api::exec_client::ExecConnection;
use crate::api::relay::{CHUNK_BYTES, input_closed_line, input_line, parse_output, window_line};

pub(super) fn relay(
    conn: &mut ExecConnection,
    names: &[String],
    opts: TerminalOptions,
) -> Result<Ended, String> {
    let tty = names.iter().any(|n| n == "terminal");
    let has_stdin = tty || names.iter().any(|n| n == "stdin");
    let signals = tty.then(terminal_signals).transpose()?;
    let _raw = tty.then(RawMode::enter);
    let send_window = |conn: &mut ExecConnection| {
        if let Some(ws) = window_size() {
            let _ = conn.send(&window_line(ws.ws_row, ws.ws_col));
        }
    };
    if tty {
        send_window(conn);
    }
    // SAFETY: descriptor 0 stays open for the life of this process.
    let our_stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let mut stdin_open = opts.interactive && has_stdin;
    let mut keys = DetachKeys::new(opts.detach && tty);
    loop {
        while let Some(v) = conn.buffered_line().map_err(|e| e.to_string())? {
            if let Some((stream, data)) = parse_output(&v) {
                write_out(&stream, &data)?;
            } else if v.get("id").is_some() {
                return crate::api::client::answer_of(v)
                    .map(Ended::Answer)
                    .map_err(|e| e.to_string());
            }
        }
        // SAFETY: the stream outlives this poll.
        let link = unsafe { BorrowedFd::borrow_raw(conn.raw_fd()) };
        let mut fds = vec![PollFd::new(link, PollFlags::POLLIN)];
        if let Some(s) = &signals {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        let i = stdin_open.then(|| {
            fds.push(PollFd::new(our_stdin, PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        if let Some(s) = &signals
            && ready[1]
        {
            let mut winched = false;
            if let Some(code) = read_signals(s, || winched = true) {
                return Ok(Ended::Early(code));
            }
            if winched {
                send_window(conn);
            }
        }
        if i.is_some_and(|i| ready[i]) {
            let mut buf = [0u8; CHUNK_BYTES];
            match read(our_stdin, &mut buf) {
                Ok(0) | Err(Errno::EIO | Errno::EBADF) => {
                    stdin_open = false;
                    conn.send(&input_closed_line()).map_err(|e| e.to_string())?;
                }
                Ok(n) => {
                    let (pass, detached) = keys.filter(&buf[..n]);
                    if !pass.is_empty() {
                        conn.send(&input_line(&pass)).map_err(|e| e.to_string())?;
                    }
                    if detached {
                        return Ok(Ended::Early(0));
                    }
                }
                Err(_) => {}
            }
        }
        if ready[0] && !conn.fill().map_err(|e| e.to_string())? {
            return Err(conn
                .answer()
                .err()
                .map_or("the connection closed".into(), |e| e.to_string()));
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
