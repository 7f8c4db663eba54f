//! `berth exec -t` and `berth run -t`: the command's terminal is a pty of
//! the container's own devpts whose master this process receives; its
//! terminal goes raw and is relayed to the master, window size changes
//! follow (SIGWINCH -> TIOCSWINSZ on the master), and the terminal is
//! restored however this ends (the answer, a signal, detaching, an error).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::{isatty, read, write};
use serde_json::Value;

use super::detach_keys::DetachKeys;
use crate::api::exec_client::{ExecConnection, terminal_master};

/// How a relay ended: the request's answer, or early (detached: 0; a
/// signal: 128 + its number) with the container left as it is.
pub(super) enum Ended {
    Answer(Value),
    Early(i32),
}

/// What the client does with its terminal.
#[derive(Clone, Copy)]
pub(super) struct TerminalOptions {
    /// Our stdin goes to the terminal (else only its output comes back).
    pub interactive: bool,
    /// ctrl-p ctrl-q leaves (run: the container keeps its terminal).
    pub detach: bool,
}

/// Our terminal in raw mode until dropped.
pub(super) struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub(super) fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = isatty(stdin.as_fd())
            .unwrap_or(false)
            .then(|| tcgetattr(stdin.as_fd()).ok())
            .flatten();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Our terminal's size, (rows, cols); None when ours is no tty.
pub(super) fn window_size() -> Option<libc::winsize> {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    (unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

/// Our terminal's size onto the master (nothing when ours is no tty).
fn copy_window_size(master: &OwnedFd) {
    if let Some(ws) = window_size() {
        // SAFETY: TIOCSWINSZ reads a winsize we own.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// SIGWINCH and the signals that end the client, as a descriptor to poll.
pub(super) fn terminal_signals() -> Result<SignalFd, String> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGWINCH,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("block signals: {e}"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))
}

/// Pending signals: Some(code) for one that ends us; `on_winch` for
/// SIGWINCH.
pub(super) fn read_signals(signals: &SignalFd, mut on_winch: impl FnMut()) -> Option<i32> {
    while let Ok(Some(info)) = signals.read_signal() {
        if info.ssi_signo == Signal::SIGWINCH as u32 {
            on_winch();
        } else {
            return Some(128 + info.ssi_signo as i32);
        }
    }
    None
}

pub(super) fn relay_terminal(
    conn: &mut ExecConnection,
    channel: &OwnedFd,
    opts: TerminalOptions,
) -> Result<Ended, String> {
    let master = match terminal_master(channel) {
        Ok(m) => m,
        Err(said) => {
            if !said.is_empty() {
                eprintln!("berth: {said}");
            }
            return conn.answer().map(Ended::Answer).map_err(|e| e.to_string());
        }
    };
    let signals = terminal_signals()?;
    // Without input (`run -t`), as Docker: our terminal stays cooked, so
    // ctrl-c ends this client (the container keeps running).
    let _raw = opts.interactive.then(RawMode::enter);
    copy_window_size(&master);
    relay(conn, &master, &signals, opts)
}

fn relay(
    conn: &mut ExecConnection,
    master: &OwnedFd,
    signals: &SignalFd,
    opts: TerminalOptions,
) -> Result<Ended, String> {
    // SAFETY: descriptor 0 stays open for the life of this process.
    let our_stdin = unsafe { BorrowedFd::borrow_raw(0) };
    // SAFETY: the socket outlives this function's polls.
    let socket = unsafe { BorrowedFd::borrow_raw(conn.raw_fd()) };
    let (mut master_open, mut stdin_open) = (true, opts.interactive);
    let mut keys = DetachKeys::new(opts.detach);
    loop {
        let mut fds = vec![
            PollFd::new(socket, PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let m = master_open.then(|| {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let i = stdin_open.then(|| {
            fds.push(PollFd::new(our_stdin, PollFlags::POLLIN));
            fds.len() - 1
        });
        let wait = match conn.has_line() {
            true => PollTimeout::ZERO,
            false => PollTimeout::NONE,
        };
        match poll(&mut fds, wait) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        let is = |slot: Option<usize>| slot.is_some_and(|s| ready[s]);
        if ready[1]
            && let Some(code) = read_signals(signals, || copy_window_size(master))
        {
            return Ok(Ended::Early(code));
        }
        if is(m) {
            master_open = from_master(master)?;
        }
        if is(i) && to_master_from(our_stdin, master, &mut keys, &mut stdin_open) {
            return Ok(Ended::Early(0));
        }
        if ready[0] || conn.has_line() {
            let answer = conn.answer().map_err(|e| e.to_string())?;
            drain(master, master_open)?;
            return Ok(Ended::Answer(answer));
        }
    }
}

/// One read of the terminal to our stdout; false once it has ended.
fn from_master(master: &OwnedFd) -> Result<bool, String> {
    let mut buf = [0u8; 64 * 1024];
    match read(master.as_fd(), &mut buf) {
        Ok(0) | Err(Errno::EIO) => Ok(false),
        Ok(n) => to_stdout(&buf[..n]).map(|()| true),
        Err(Errno::EINTR | Errno::EAGAIN) => Ok(true),
        Err(e) => Err(format!("read the terminal: {e}")),
    }
}

/// One read of our stdin to the terminal; true when it was the detach
/// sequence.
fn to_master_from(
    our_stdin: BorrowedFd<'_>,
    master: &OwnedFd,
    keys: &mut DetachKeys,
    open: &mut bool,
) -> bool {
    let mut buf = [0u8; 64 * 1024];
    match read(our_stdin, &mut buf) {
        Ok(0) | Err(Errno::EIO | Errno::EBADF) => *open = false,
        Ok(n) => {
            let (pass, detached) = keys.filter(&buf[..n]);
            to_master(master, &pass);
            return detached;
        }
        Err(_) => {}
    }
    false
}

pub(super) fn to_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("write output: {e}"))
}

fn to_master(master: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match write(master, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// What the command wrote before it exited, without waiting for more.
fn drain(master: &OwnedFd, open: bool) -> Result<(), String> {
    if !open {
        return Ok(());
    }
    let _ = fcntl(master.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = [0u8; 64 * 1024];
    loop {
        match read(master.as_fd(), &mut buf) {
            Ok(n) if n > 0 => to_stdout(&buf[..n])?,
            Err(Errno::EINTR) => {}
            _ => return Ok(()),
        }
    }
}
