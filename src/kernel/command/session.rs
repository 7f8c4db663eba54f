//! One running program's exchange: its stdin fed, stdout and stderr
//! drained and its exit watched in a single poll(2) with the time left as
//! the timeout; at the deadline its process group is killed and it is
//! reaped. Nothing here sleeps.

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, read, write};

use super::{Captured, Limits, Output};
use crate::kernel::error::SysError;
use crate::kernel::sys::pidfd_open;

/// Without a pidfd (kernels before 5.3) an exit that leaves the pipes open
/// (a background child holds them) can only be seen by asking waitpid, so
/// poll wakes up this often to ask.
const NO_PIDFD_POLL_SLICE: Duration = Duration::from_millis(50);
const READ_CHUNK_BYTES: usize = 16 << 10;

/// The three standard descriptors, from one side of the pipes.
pub(super) struct Streams {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
}

pub(super) struct Session<'a> {
    child: Child,
    /// Set once the child has been waited for: its pid (and so its process
    /// group id) may then be reused, and must not be signalled.
    reaped: bool,
    pidfd: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    input: &'a [u8],
    written: usize,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    out: Captured,
    err: Captured,
    deadline: Instant,
}

/// Which of stdin, stdout and stderr can make progress.
#[derive(Default)]
struct Ready {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl<'a> Session<'a> {
    pub(super) fn new(child: Child, ours: Streams, input: &'a [u8], limits: &Limits) -> Self {
        // The child is not reaped yet, so its pid is still its own. ENOSYS
        // (an old kernel) falls back to NO_PIDFD_POLL_SLICE.
        let pidfd = i32::try_from(child.id())
            .ok()
            .and_then(|pid| pidfd_open(Pid::from_raw(pid)).ok());
        Session {
            child,
            reaped: false,
            pidfd,
            // No input: closing at once gives the program EOF on its stdin.
            stdin: (!input.is_empty()).then_some(ours.stdin),
            input,
            written: 0,
            stdout: Some(ours.stdout),
            stderr: ours.stderr,
            out: Captured::new(limits.max_stdout_bytes),
            err: Captured::new(limits.max_stderr_bytes),
            deadline: limits.deadline,
        }
    }

    /// The program's exit status, or None if the deadline passed first.
    /// Unless it exited on its own, its group has been killed and it has
    /// been reaped when this returns.
    pub(super) fn wait(&mut self) -> Result<Option<ExitStatus>, SysError> {
        let result = self.pump();
        if !matches!(result, Ok(Some(_))) {
            self.kill_and_reap();
        }
        result
    }

    pub(super) fn into_output(mut self, status: ExitStatus) -> Output {
        let (stdout, stderr) = self.take_captured();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    pub(super) fn into_captured(mut self) -> (Captured, Captured) {
        self.take_captured()
    }

    fn take_captured(&mut self) -> (Captured, Captured) {
        let out = std::mem::replace(&mut self.out, Captured::new(0));
        let err = std::mem::replace(&mut self.err, Captured::new(0));
        (out, err)
    }

    fn pump(&mut self) -> Result<Option<ExitStatus>, SysError> {
        loop {
            if let Some(status) = self.try_reap()? {
                // All it wrote is in the pipes by now (a writer blocked on
                // a full pipe cannot exit), so reading to EAGAIN gets it,
                // without waiting for a background child to close them.
                read_available(&mut self.stdout, &mut self.out, self.deadline)?;
                read_available(&mut self.stderr, &mut self.err, self.deadline)?;
                return Ok(Some(status));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ready = self.wait_ready(left)?;
            if ready.stdin {
                self.feed()?;
            }
            if ready.stdout {
                read_available(&mut self.stdout, &mut self.out, self.deadline)?;
            }
            if ready.stderr {
                read_available(&mut self.stderr, &mut self.err, self.deadline)?;
            }
        }
    }

    fn try_reap(&mut self) -> Result<Option<ExitStatus>, SysError> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped = true;
                Ok(Some(status))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // Only ECHILD is possible: something else reaped it, so its
                // pid is no longer ours to signal.
                self.reaped = true;
                Err(SysError::io("wait for", "the program", &e))
            }
        }
    }

    /// Blocks until a pipe can make progress, the program exits (its pidfd
    /// turns readable) or `left` runs out.
    fn wait_ready(&self, left: Duration) -> Result<Ready, SysError> {
        let slots = [
            (self.stdin.as_ref(), PollFlags::POLLOUT),
            (self.stdout.as_ref(), PollFlags::POLLIN),
            (self.stderr.as_ref(), PollFlags::POLLIN),
            (self.pidfd.as_ref(), PollFlags::POLLIN),
        ];
        let mut which = Vec::with_capacity(slots.len());
        let mut fds = Vec::with_capacity(slots.len());
        for (i, (fd, events)) in slots.iter().enumerate() {
            if let Some(fd) = fd {
                which.push(i);
                fds.push(PollFd::new(fd.as_fd(), *events));
            }
        }
        let left = if self.pidfd.is_none() {
            left.min(NO_PIDFD_POLL_SLICE)
        } else {
            left
        };
        // Rounded up: a timeout rounded down to 0 ms would spin through the
        // last fraction of a millisecond before the deadline.
        let timeout =
            PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(SysError::new("poll the program's pipes", e)),
        }
        let mut ready = Ready::default();
        for (i, p) in which.into_iter().zip(&fds) {
            // POLLHUP and POLLERR count too: the read or write that follows
            // sees the EOF or EPIPE.
            let hit = p.revents().is_some_and(|r| !r.is_empty());
            match i {
                0 => ready.stdin = hit,
                1 => ready.stdout = hit,
                2 => ready.stderr = hit,
                _ => {} // the pidfd: try_reap asks at the top of the loop
            }
        }
        Ok(ready)
    }

    /// Writes what the pipe takes now; never blocks on a program that does
    /// not read its stdin.
    fn feed(&mut self) -> Result<(), SysError> {
        let Some(fd) = self.stdin.as_ref() else {
            return Ok(());
        };
        match write(fd, &self.input[self.written..]) {
            Ok(n) => self.written += n,
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // It closed its stdin unread (it needs none, or failed early):
            // its exit status and output tell what happened.
            Err(Errno::EPIPE) => self.written = self.input.len(),
            Err(e) => return Err(SysError::new("write the program's stdin", e)),
        }
        if self.written >= self.input.len() {
            self.stdin = None; // EOF: a program may read its stdin to the end
        }
        Ok(())
    }

    fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        // Not yet waited for, so the pid (the group id: it leads its own
        // group) cannot have been reused.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // SIGKILL cannot be caught, so this wait is short; it keeps the
        // program from lingering as a zombie the reaper would have to explain.
        let _ = self.child.wait();
        self.reaped = true;
    }
}

/// A guard for early returns and panics: a program is never left running
/// nor unreaped behind the caller's back.
impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Reads until EAGAIN or EOF (then closes the slot), or until the deadline:
/// a writer faster than this reader must not hold the caller past it.
fn read_available(
    slot: &mut Option<OwnedFd>,
    into: &mut Captured,
    deadline: Instant,
) -> Result<(), SysError> {
    let Some(fd) = slot.as_ref() else {
        return Ok(());
    };
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    loop {
        match read(fd, &mut chunk) {
            Ok(0) => {
                *slot = None;
                return Ok(());
            }
            Ok(n) => into.push(&chunk[..n]),
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(SysError::new("read the program's output", e)),
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
    }
}
