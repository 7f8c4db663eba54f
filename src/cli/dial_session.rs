//! One relayed request of `berth system dial-stdio`: the descriptors the
//! daemon sent with `*.started` (an exec's pipes, a run's stdin, or the
//! channel a terminal's master arrives on), their output carried to the
//! client as `relay.output` lines, the client's `relay.input` written to
//! the command's stdin (or terminal), `relay.window` set on the terminal.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags};
use nix::unistd::{read, write};

use super::dial_stdio::to_client;
use crate::api::exec_client::terminal_master;
use crate::api::relay::{CHUNK_BYTES, FromClient, output_line};

pub(super) struct Session {
    /// Open output streams: the name the client writes them to, and the fd.
    outputs: Vec<(&'static str, OwnedFd)>,
    /// The command's stdin, or the terminal's master (non-blocking).
    input: Option<OwnedFd>,
    /// Input read from the client, not yet taken by the command.
    pending: Vec<u8>,
    /// The terminal's master, for its window size.
    terminal: Option<OwnedFd>,
}

impl Session {
    pub(super) fn start(names: &[String], fds: Vec<OwnedFd>) -> Result<Session, String> {
        let mut s = Session {
            outputs: Vec::new(),
            input: None,
            pending: Vec::new(),
            terminal: None,
        };
        for (name, fd) in names.iter().zip(fds) {
            match name.as_str() {
                "stdout" => s.outputs.push(("stdout", fd)),
                "stderr" => s.outputs.push(("stderr", fd)),
                "stdin" => s.input = Some(nonblocking(fd)?),
                "terminal" => match terminal_master(&fd) {
                    Ok(master) => {
                        let master = nonblocking(master)?;
                        let dup = |m: &OwnedFd| m.try_clone().map_err(|e| format!("dup: {e}"));
                        s.outputs.push(("stdout", dup(&master)?));
                        s.input = Some(dup(&master)?);
                        s.terminal = Some(master);
                    }
                    Err(said) if said.is_empty() => {}
                    Err(said) => to_client(&output_line("stderr", format!("{said}\n").as_bytes()))?,
                },
                _ => {} // a newer daemon's stream: not relayed
            }
        }
        Ok(s)
    }

    /// Whether the client's input may be read now (what came before has
    /// been taken, so a command that does not read cannot make us hoard).
    pub(super) fn takes_input(&self) -> bool {
        self.pending.is_empty()
    }

    /// Outputs to read, then the input when it has something to write.
    pub(super) fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds: Vec<PollFd<'_>> = self
            .outputs
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if let (Some(i), false) = (&self.input, self.pending.is_empty()) {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLOUT));
        }
        fds
    }

    /// Acts on poll_fds' results (in their order).
    pub(super) fn service(&mut self, ready: &[PollFlags]) -> Result<(), String> {
        let writable = ready.get(self.outputs.len()).is_some_and(|r| !r.is_empty());
        let mut closed = Vec::new();
        for (i, (stream, fd)) in self.outputs.iter().enumerate() {
            if ready.get(i).is_some_and(|r| !r.is_empty()) && relay_once(stream, fd)? == Read::End {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            self.outputs.remove(i);
        }
        if writable {
            self.feed();
        }
        Ok(())
    }

    pub(super) fn on_client(&mut self, m: FromClient) {
        match m {
            FromClient::Input(data) => {
                if self.input.is_some() {
                    self.pending.extend_from_slice(&data);
                    self.feed();
                }
            }
            // A terminal has no end of input but the command's own.
            FromClient::InputClosed if self.terminal.is_none() => {
                self.pending.clear();
                self.input = None;
            }
            FromClient::InputClosed => {}
            FromClient::Window { rows, cols } => {
                if let Some(t) = &self.terminal {
                    let ws = libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads a winsize we own.
                    unsafe { libc::ioctl(t.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
            }
        }
    }

    fn feed(&mut self) {
        let Some(i) = &self.input else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match write(i, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.input = None;
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// Before the answer goes on: whatever the command wrote before it
    /// ended, without waiting for more.
    pub(super) fn drain(&mut self) -> Result<(), String> {
        for (stream, fd) in &self.outputs {
            let _ = fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            while relay_once(stream, fd)? == Read::Data {}
        }
        Ok(())
    }
}

#[derive(PartialEq, Eq)]
enum Read {
    Data,
    Nothing,
    End,
}

/// One read of an output to the client.
fn relay_once(stream: &str, fd: &OwnedFd) -> Result<Read, String> {
    let mut buf = [0u8; CHUNK_BYTES];
    loop {
        return match read(fd.as_fd(), &mut buf) {
            // EIO: a terminal whose last slave is closed.
            Ok(0) | Err(Errno::EIO) => Ok(Read::End),
            Ok(n) => to_client(&output_line(stream, &buf[..n])).map(|()| Read::Data),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(Read::Nothing),
            Err(e) => Err(format!("read {stream}: {e}")),
        };
    }
}

fn nonblocking(fd: OwnedFd) -> Result<OwnedFd, String> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| format!("fcntl: {e}"))?;
    Ok(fd)
}
