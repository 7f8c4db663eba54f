//! The webhook notifier as a supervised child (`berth _notify`): started
//! when berth.json lists webhooks, restarted with backoff when it dies,
//! restarted after a reload; its stderr is the daemon's log, and its
//! `event` report lines (webhook.failing/recovered) become journal events,
//! so the journal keeps a single writer.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::supervisor::events::notifier::parse_report;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::output::line_reader::LineReader;
use crate::supervisor::runtime::restart::backoff_delay;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::settings::{SETTINGS_FILE, load_settings};

#[derive(Default)]
pub struct NotifierProcess {
    pid: Option<Pid>,
    stderr: Option<OwnedFd>,
    lines: LineReader,
    failures: u32,
    started: Option<Instant>,
}

/// A run this long resets the restart backoff.
const STABLE_RUN: Duration = Duration::from_secs(30);

impl Supervisor {
    /// Starts the notifier if berth.json lists webhooks and it is not
    /// running; stops it if berth.json lists none.
    pub fn start_notifier(&mut self) {
        let wanted = load_settings(&self.options.config_dir).is_ok_and(|s| !s.webhooks.is_empty());
        if !wanted || self.shutting_down {
            self.stop_notifier();
            return;
        }
        if self.notifier.pid.is_some() {
            return;
        }
        match self.spawn_notifier() {
            Ok((pid, stderr)) => {
                say(format_args!("webhook notifier started (pid {pid})"));
                self.notifier.pid = Some(pid);
                self.notifier.stderr = Some(stderr);
                self.notifier.started = Some(Instant::now());
            }
            Err(e) => {
                say(format_args!("webhook notifier: cannot start: {e}"));
                self.schedule_notifier_restart();
            }
        }
    }

    /// A reload may have changed the webhooks: start afresh.
    pub fn restart_notifier(&mut self) {
        self.stop_notifier();
        self.start_notifier();
    }

    pub fn stop_notifier(&mut self) {
        if let Some(pid) = self.notifier.pid.take() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        self.notifier.stderr = None;
    }

    fn spawn_notifier(&self) -> std::io::Result<(Pid, OwnedFd)> {
        let root = self.store.root();
        let mut child = Command::new(std::env::current_exe()?)
            .arg("_notify")
            .arg("--journal")
            .arg(root.join("events"))
            .arg("--state")
            .arg(root.join("webhooks"))
            .arg("--config")
            .arg(self.options.config_dir.join(SETTINGS_FILE))
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
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
        // The reaper collects it; its pid is what we keep.
        Ok((Pid::from_raw(child.id() as i32), stderr))
    }

    fn schedule_notifier_restart(&mut self) {
        let delay = backoff_delay(self.notifier.failures.min(8) + 3);
        self.notifier.failures += 1;
        self.timers
            .schedule(Instant::now() + delay, "", 0, TimerKind::Notifier);
    }

    /// A reaped child that was the notifier: true if it was.
    pub(crate) fn on_notifier_exit(&mut self, pid: Pid, code: i32) -> bool {
        if self.notifier.pid != Some(pid) {
            return false;
        }
        if let Some(fd) = self.notifier.stderr.as_ref().map(|f| f.as_raw_fd()) {
            self.on_notifier_output(fd);
        }
        self.notifier.pid = None;
        self.notifier.stderr = None;
        if self
            .notifier
            .started
            .is_some_and(|t| t.elapsed() >= STABLE_RUN)
        {
            self.notifier.failures = 0;
        }
        if code != 0 && !self.shutting_down {
            say(format_args!(
                "webhook notifier exited with code {code}; restarting it"
            ));
            self.schedule_notifier_restart();
        }
        true
    }

    pub fn notifier_fd(&self) -> Option<BorrowedFd<'_>> {
        self.notifier.stderr.as_ref().map(|f| f.as_fd())
    }

    /// Its log lines: passed on, and `event` reports journaled.
    pub fn on_notifier_output(&mut self, fd: RawFd) {
        let Some(stderr) = self
            .notifier
            .stderr
            .as_ref()
            .filter(|f| f.as_raw_fd() == fd)
        else {
            return;
        };
        let read = self.notifier.lines.read(stderr.as_fd());
        if read.end.is_closed() {
            self.notifier.stderr = None;
        }
        for text in read.lines {
            match parse_report(&text) {
                Some((kind, data)) => self.emit(&kind, None, data),
                None => eprintln!("{text}"),
            }
        }
    }
}
