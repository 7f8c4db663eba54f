//! The webhook notifier as a supervised child (`berth _notify`): started
//! when berth.json lists webhooks, restarted with backoff when it dies,
//! restarted after a reload; its stderr is the daemon's log, and its
//! `event` report lines (webhook.failing/recovered) become journal events,
//! so the journal keeps a single writer.

use std::os::fd::{BorrowedFd, RawFd};
use std::process::Command;
use std::time::Instant;

use nix::unistd::Pid;

use crate::supervisor::events::notifier::parse_report;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::helper_child::HelperChild;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::settings::{SETTINGS_FILE, load_settings};

pub type NotifierProcess = HelperChild;

impl Supervisor {
    /// Starts the notifier if berth.json lists webhooks and it is not
    /// running; stops it if berth.json lists none.
    pub fn start_notifier(&mut self) {
        let wanted = load_settings(&self.options.config_dir).is_ok_and(|s| !s.webhooks.is_empty());
        if !wanted || self.shutting_down {
            self.stop_notifier();
            return;
        }
        if self.notifier.is_running() {
            return;
        }
        let spawned = self
            .notifier_command()
            .and_then(|cmd| self.notifier.spawn(cmd));
        match spawned {
            Ok(pid) => say(format_args!("webhook notifier started (pid {pid})")),
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
        self.notifier.stop();
    }

    fn notifier_command(&self) -> std::io::Result<Command> {
        let root = self.store.root();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("_notify")
            .arg("--journal")
            .arg(root.join("events"))
            .arg("--state")
            .arg(root.join("webhooks"))
            .arg("--config")
            .arg(self.options.config_dir.join(SETTINGS_FILE))
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        Ok(cmd)
    }

    fn schedule_notifier_restart(&mut self) {
        let delay = self.notifier.next_restart(3);
        self.timers
            .schedule(Instant::now() + delay, "", 0, TimerKind::Notifier);
    }

    /// A reaped child that was the notifier: true if it was.
    pub(crate) fn on_notifier_exit(&mut self, pid: Pid, code: i32) -> bool {
        if !self.notifier.is(pid) {
            return false;
        }
        if let Some(fd) = self.notifier.stderr_fd() {
            self.on_notifier_output(fd);
        }
        self.notifier.reaped();
        if code != 0 && !self.shutting_down {
            say(format_args!(
                "webhook notifier exited with code {code}; restarting it"
            ));
            self.schedule_notifier_restart();
        }
        true
    }

    pub fn notifier_fd(&self) -> Option<BorrowedFd<'_>> {
        self.notifier.fd()
    }

    /// Its log lines: passed on, and `event` reports journaled.
    pub fn on_notifier_output(&mut self, fd: RawFd) {
        let Some(lines) = self.notifier.read_lines(fd) else {
            return;
        };
        for text in lines {
            match parse_report(&text) {
                Some((kind, data)) => self.emit(&kind, None, data),
                None => eprintln!("{text}"),
            }
        }
    }
}
