//! A long-lived helper child of the daemon (the webhook notifier, the host
//! network helper): its pid, its stderr pipe read line by line without
//! blocking the loop, and a restart backoff that a long enough run resets.
//! The reaper collects it; what to do with its lines and when to restart
//! it is its owner's business.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::supervisor::output::line_reader::LineReader;
use crate::supervisor::runtime::restart::backoff_delay;

/// A run this long resets the restart backoff.
const STABLE_RUN: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct HelperChild {
    pid: Option<Pid>,
    stderr: Option<OwnedFd>,
    lines: LineReader,
    failures: u32,
    started: Option<Instant>,
}

impl HelperChild {
    /// Starts `cmd` with no stdin or stdout and its stderr on a
    /// non-blocking pipe the loop polls.
    pub fn spawn(&mut self, mut cmd: Command) -> std::io::Result<Pid> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr: OwnedFd = child
            .stderr
            .take()
            .map(OwnedFd::from)
            .ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
        let flags = OFlag::from_bits_truncate(fcntl(&stderr, FcntlArg::F_GETFL)?);
        fcntl(&stderr, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let pid = Pid::from_raw(child.id() as i32);
        self.pid = Some(pid);
        self.stderr = Some(stderr);
        self.started = Some(Instant::now());
        Ok(pid)
    }

    pub fn is_running(&self) -> bool {
        self.pid.is_some()
    }

    pub fn is(&self, pid: Pid) -> bool {
        self.pid == Some(pid)
    }

    /// SIGTERM; the reaper collects it.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        self.stderr = None;
    }

    /// After the reaper collected it (its last lines read first, through
    /// `stderr_fd`): forgotten, and the backoff reset if it ran long.
    pub fn reaped(&mut self) {
        self.pid = None;
        self.stderr = None;
        if self.started.is_some_and(|t| t.elapsed() >= STABLE_RUN) {
            self.failures = 0;
        }
    }

    /// How long to wait before the next start: the backoff from `first`
    /// steps up with each failure in a row.
    pub fn next_restart(&mut self, first: u32) -> Duration {
        let delay = backoff_delay(self.failures.min(8) + first);
        self.failures += 1;
        delay
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.stderr.as_ref().map(|f| f.as_fd())
    }

    pub fn stderr_fd(&self) -> Option<RawFd> {
        self.stderr.as_ref().map(|f| f.as_raw_fd())
    }

    /// The complete lines waiting on its stderr when `fd` is that pipe
    /// (None when it is not); the pipe is dropped once closed.
    pub fn read_lines(&mut self, fd: RawFd) -> Option<Vec<String>> {
        let stderr = self.stderr.as_ref().filter(|f| f.as_raw_fd() == fd)?;
        let read = self.lines.read(stderr.as_fd());
        if read.end.is_closed() {
            self.stderr = None;
        }
        Some(read.lines)
    }
}
