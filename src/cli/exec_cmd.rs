//! `berth exec`: a command inside a running container, like `docker
//! exec`. The daemon hands over the command's pipes; this process relays
//! its own stdin, stdout and stderr to them and exits with the command's
//! exit code, which the daemon sends when it reaps the command.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{read, write};
use serde_json::{Value, json};

use super::args::Args;
use super::commands::EXEC;
use super::exec_tty::{Ended, TerminalOptions, relay_terminal};
use crate::api::client::socket_path;
use crate::api::exec_client::{ExecConnection, ExecPipes, exit_code_of};

const USAGE: &str =
    "usage: berth exec [-i] [-t] [-e K=V]... [-u USER] [-w DIR] NAME COMMAND [ARG...]";

pub fn exec(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse_leading(argv, EXEC.options)?;
    let Some((name, command)) = args.positional.split_first() else {
        return Err(USAGE.into());
    };
    if command.is_empty() {
        return Err(USAGE.into());
    }
    let params = json!({
        "name": name,
        "command": command,
        "env": args.values("env"),
        "user": args.value("user"),
        "workdir": args.value("workdir"),
        "stdin": args.switch("interactive"),
        "tty": args.switch("tty"),
    });
    let path = socket_path(args.value("socket"));
    let (mut conn, pipes) = ExecConnection::start(&path, params).map_err(|e| e.to_string())?;
    let tty = TerminalOptions {
        interactive: true,
        detach: false,
    };
    let ended = match pipes {
        ExecPipes::Pipes {
            stdout: Some(stdout),
            stderr: Some(stderr),
            stdin,
        } => relay(&mut conn, Some(stdout), Some(stderr), stdin).map(Ended::Answer)?,
        ExecPipes::Pipes { .. } => return Err("exec came without its pipes".into()),
        ExecPipes::Terminal(channel) => relay_terminal(&mut conn, &channel, tty)?,
        ExecPipes::Relayed(names) => {
            let interactive = args.switch("interactive") || args.switch("tty");
            let opts = TerminalOptions { interactive, ..tty };
            super::remote_relay::relay(&mut conn, &names, opts)?
        }
    };
    match ended {
        Ended::Answer(v) => exit_code_of(&v).map_err(|e| e.to_string()),
        Ended::Early(code) => Ok(code),
    }
}

/// What is still open: the command's output pipes, and its stdin with
/// what is read from ours but not yet written to it.
struct Relay {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    pending: Vec<u8>,
    our_stdin_open: bool,
}

/// Relays until the answer, which it returns. Pipes not given are not
/// there (`run -i` passes stdin alone).
pub(super) fn relay(
    conn: &mut ExecConnection,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
) -> Result<Value, String> {
    if let Some(w) = &stdin {
        // Never block on a command that does not read its stdin: it may
        // be waiting for us to read its output.
        fcntl(w.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| e.to_string())?;
    }
    let mut r = Relay {
        our_stdin_open: stdin.is_some(),
        stdout,
        stderr,
        stdin,
        pending: Vec::new(),
    };
    // SAFETY: descriptor 0 stays open for the life of this process.
    let our_stdin = unsafe { BorrowedFd::borrow_raw(0) };
    // SAFETY: the socket outlives this function's polls.
    let socket = unsafe { BorrowedFd::borrow_raw(conn.raw_fd()) };
    loop {
        let Some((ready, s)) = wait_ready(&r, socket, our_stdin, conn.has_line())? else {
            continue;
        };
        let is = |slot: Option<usize>| slot.is_some_and(|i| ready[i]);
        let socket_ready = ready[0];
        if is(s[0]) {
            copy_out(&mut r.stdout, &mut std::io::stdout())?;
        }
        if is(s[1]) {
            copy_out(&mut r.stderr, &mut std::io::stderr())?;
        }
        if is(s[2]) {
            feed(&mut r);
        }
        if is(s[3]) {
            read_our_stdin(&mut r, our_stdin);
        }
        if socket_ready || conn.has_line() {
            let answer = conn.answer().map_err(|e| e.to_string())?;
            drain(&mut r)?;
            return Ok(answer);
        }
    }
}

/// One poll: which descriptors are ready (the socket first), and where
/// the command's stdout, stderr, stdin and our stdin sit among them
/// (None when not watched). None when interrupted.
type Ready = (Vec<bool>, [Option<usize>; 4]);

fn wait_ready(
    r: &Relay,
    socket: BorrowedFd<'_>,
    our_stdin: BorrowedFd<'_>,
    answered: bool,
) -> Result<Option<Ready>, String> {
    let mut fds = vec![PollFd::new(socket, PollFlags::POLLIN)];
    let out = watch(&r.stdout, PollFlags::POLLIN);
    let err = watch(&r.stderr, PollFlags::POLLIN);
    let inw = (!r.pending.is_empty())
        .then(|| watch(&r.stdin, PollFlags::POLLOUT))
        .flatten();
    let ours = (r.pending.is_empty() && r.our_stdin_open && r.stdin.is_some())
        .then(|| PollFd::new(our_stdin, PollFlags::POLLIN));
    let slots = [out, err, inw, ours].map(|p| {
        p.map(|p| {
            fds.push(p);
            fds.len() - 1
        })
    });
    let wait = if answered {
        PollTimeout::ZERO
    } else {
        PollTimeout::NONE
    };
    match poll(&mut fds, wait) {
        Err(Errno::EINTR) => return Ok(None),
        Err(e) => return Err(format!("poll: {e}")),
        Ok(_) => {}
    }
    let ready = fds
        .iter()
        .map(|f| f.revents().is_some_and(|e| !e.is_empty()))
        .collect();
    Ok(Some((ready, slots)))
}

/// One read from a command's output pipe to ours; EOF closes it.
fn copy_out(fd: &mut Option<OwnedFd>, to: &mut dyn Write) -> Result<(), String> {
    let Some(f) = fd else { return Ok(()) };
    let mut buf = [0u8; 64 * 1024];
    match read(f.as_fd(), &mut buf) {
        Ok(0) => *fd = None,
        Ok(n) => {
            to.write_all(&buf[..n])
                .and_then(|()| to.flush())
                .map_err(|e| format!("write output: {e}"))?;
        }
        Err(Errno::EINTR | Errno::EAGAIN) => {}
        Err(_) => *fd = None,
    }
    Ok(())
}

/// Whatever the command wrote before it exited is in its pipes: read it
/// all without waiting for a process it left behind to close them.
fn drain(r: &mut Relay) -> Result<(), String> {
    drain_one(&mut r.stdout, &mut std::io::stdout())?;
    drain_one(&mut r.stderr, &mut std::io::stderr())
}

fn drain_one(fd: &mut Option<OwnedFd>, to: &mut dyn Write) -> Result<(), String> {
    let Some(f) = fd.take() else { return Ok(()) };
    let _ = fcntl(f.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = [0u8; 64 * 1024];
    loop {
        match read(f.as_fd(), &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to
                .write_all(&buf[..n])
                .and_then(|()| to.flush())
                .map_err(|e| format!("write output: {e}"))?,
            Err(Errno::EINTR) => {}
            Err(_) => return Ok(()),
        }
    }
}

fn read_our_stdin(r: &mut Relay, our_stdin: BorrowedFd<'_>) {
    let mut buf = [0u8; 64 * 1024];
    match read(our_stdin, &mut buf) {
        Ok(0) | Err(Errno::EBADF | Errno::EIO) => {
            // Our input ended: so does the command's.
            r.our_stdin_open = false;
            r.stdin = None;
        }
        Ok(n) => {
            r.pending.extend_from_slice(&buf[..n]);
            feed(r);
        }
        Err(_) => {}
    }
}

/// Writes what the command's stdin takes now; closing it after our EOF.
fn feed(r: &mut Relay) {
    let Some(w) = &r.stdin else {
        r.pending.clear();
        return;
    };
    match write(w, &r.pending) {
        Ok(n) => {
            r.pending.drain(..n);
        }
        Err(Errno::EAGAIN | Errno::EINTR) => {}
        Err(_) => {
            // The command closed its stdin: nothing more goes to it.
            r.stdin = None;
            r.pending.clear();
        }
    }
}

fn watch(fd: &Option<OwnedFd>, events: PollFlags) -> Option<PollFd<'_>> {
    fd.as_ref().map(|f| PollFd::new(f.as_fd(), events))
}
