//! Pulling images from the daemon without blocking its loop: `berth pull`
//! runs as a child process (the network and the registry's bytes stay out
//! of the supervisor). Its progress lines are read from a pipe in the poll
//! loop and passed to API clients that asked for the pull; its exit, reaped
//! like any child, starts the containers that were waiting for the image.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{ChildStderr, Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::Pid;

use crate::supervisor::runtime::machine::Event;
use serde_json::json;

use crate::image::lookup::resolve;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::output::line_reader::LineReader;
use crate::supervisor::say;
use crate::supervisor::spec::PullPolicy;
use crate::supervisor::writes::{self, WriteKind};

pub struct PullJob {
    pub reference: String,
    /// Containers to start once the image is there.
    pub waiting: Vec<String>,
    /// API requests (tokens) to tell about progress and the outcome.
    pub clients: Vec<u64>,
    stdout: Option<OwnedFd>,
    lines: LineReader,
    /// The pull's error output, read once it has exited (it is small).
    stderr: Option<ChildStderr>,
    /// When the last pull.progress event was recorded (one a second at most).
    last_progress_event: Option<std::time::Instant>,
    /// The helper's write_bytes already counted (sampled as it reports).
    write_bytes: u64,
}

/// A progress line for an API client.
#[derive(Debug, Clone)]
pub struct PullProgress {
    pub token: u64,
    pub reference: String,
    pub line: String,
}

/// The end of a pull an API client asked for.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub token: u64,
    pub reference: String,
    pub exit_code: i32,
    pub error: Option<String>,
}

/// A pull's use of the link, over berth.json's `pull` section (the
/// API's `pull` may set them; the flags of the helper's `berth pull`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkOptions {
    pub max_rate: Option<u64>,
    pub max_parallel: Option<u64>,
}

impl Supervisor {
    /// True when the container's image must be pulled before it starts
    /// (the CheckGates action asks).
    pub(crate) fn image_missing(&self, name: &str) -> bool {
        let Some(c) = self.containers.get(name) else {
            return false;
        };
        // Only "missing" (and "never" while the config's images/ are
        // being imported) needs to look in the store; the creation that
        // follows resolves the image anyway.
        let not_in_store = || {
            matches!(
                resolve(&self.store, c.image_ref()),
                Err(crate::image::ImageError::NotFound(_))
            )
        };
        match c.spec.pull {
            PullPolicy::Never => self.airgap_importing() && not_in_store(),
            PullPolicy::Missing => not_in_store(),
            PullPolicy::Always => !c.pulled,
        }
    }

    /// The StartPull action: join the pull of its image, or start one.
    pub(crate) fn start_pull_for(&mut self, name: &str) {
        if self.airgap_importing() {
            return self.wait_for_airgap(name);
        }
        let Some(reference) = self.containers.get(name).map(|c| c.image_ref().to_string()) else {
            return;
        };
        match self.join_or_start_pull(&reference, None, &LinkOptions::default()) {
            // A clock change may retry it while its timer still runs.
            Ok(job) if job.waiting.iter().any(|n| n == name) => {}
            Ok(job) => job.waiting.push(name.to_string()),
            Err(e) => {
                let message = format!("cannot start a pull of {reference}: {e}");
                say(format_args!("container {name}: {message}"));
                if let Some(c) = self.containers.get_mut(name) {
                    c.error = Some(message);
                }
                self.fire(name, Event::PullFailed);
            }
        }
    }

    /// The LeavePull action: it no longer waits for its image.
    pub(crate) fn leave_pull(&mut self, name: &str) {
        if let Some(c) = self.containers.get_mut(name) {
            c.pull_failures = None;
        }
        for job in self.pulls.values_mut() {
            job.waiting.retain(|n| n != name);
        }
        self.leave_airgap(name);
    }

    /// API `pull`: progress and the outcome go to `token`. Joining a pull
    /// of the same reference already running keeps that pull's options.
    pub fn pull_for_client(
        &mut self,
        reference: &str,
        platform: Option<&str>,
        link: &LinkOptions,
        token: u64,
    ) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        let job = self
            .join_or_start_pull(reference, platform, link)
            .map_err(|e| SupervisorError::Invalid(format!("cannot start a pull: {e}")))?;
        job.clients.push(token);
        Ok(())
    }

    pub(crate) fn join_or_start_pull(
        &mut self,
        reference: &str,
        platform: Option<&str>,
        link: &LinkOptions,
    ) -> std::io::Result<&mut PullJob> {
        let existing = self
            .pulls
            .iter()
            .find(|(_, j)| j.reference == reference)
            .map(|(pid, _)| *pid);
        let pid = match existing {
            Some(pid) => pid,
            None => {
                let (pid, job) = self.spawn_pull(reference, platform, link)?;
                say(format_args!("pulling {reference} (pid {pid})"));
                self.pulls.insert(pid, job);
                self.emit(kinds::PULL_STARTED, None, json!({"reference": reference}));
                pid
            }
        };
        Ok(self.pulls.get_mut(&pid).expect("inserted or found above"))
    }

    fn spawn_pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        link: &LinkOptions,
    ) -> std::io::Result<(Pid, PullJob)> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        // berth.json's registries (mirrors, credentials, CA, timeout) hold
        // for the daemon's pulls as for `berth pull --config`.
        cmd.args(["pull", reference, "--root"])
            .arg(self.store.root())
            .arg("--config")
            .arg(&self.options.config_dir);
        if let Some(p) = platform {
            cmd.args(["--platform", p]);
        }
        if let Some(rate) = link.max_rate {
            cmd.arg("--max-rate").arg(rate.to_string());
        }
        if let Some(n) = link.max_parallel {
            cmd.arg("--max-parallel").arg(n.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().map(OwnedFd::from);
        if let Some(fd) = &stdout {
            let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
            fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        // The reaper collects it like any child; its pid and pipes are kept.
        let pid = Pid::from_raw(child.id() as i32);
        let job = PullJob {
            reference: reference.to_string(),
            waiting: Vec::new(),
            clients: Vec::new(),
            stdout,
            lines: LineReader::default(),
            stderr: child.stderr.take(),
            last_progress_event: None,
            write_bytes: 0,
        };
        Ok((pid, job))
    }

    /// The pulls' progress pipes, for the poll loop.
    pub fn pull_output_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.pulls
            .values()
            .filter_map(|j| j.stdout.as_ref().map(|f| f.as_fd()))
            .collect()
    }

    /// Reads what a pull printed and hands each line to its clients.
    pub fn on_pull_output(&mut self, fd: RawFd) {
        let Some((pid, job)) = self
            .pulls
            .iter_mut()
            .find(|(_, j)| j.stdout.as_ref().is_some_and(|f| f.as_raw_fd() == fd))
        else {
            return;
        };
        // What the helper wrote to the store so far: read as it reports
        // (its last line comes after its last write), not after its exit.
        if let Some(now) = writes::proc_write_bytes(&pid.to_string()) {
            writes::count(WriteKind::Store, now.saturating_sub(job.write_bytes));
            job.write_bytes = job.write_bytes.max(now);
        }
        let Some(stdout) = job.stdout.as_ref() else {
            return;
        };
        let read = job.lines.read(stdout.as_fd());
        if read.end.is_closed() {
            job.stdout = None;
        }
        let mut last_line = None;
        for text in read.lines {
            last_line = Some(text.clone());
            for token in &job.clients {
                self.pull_progress.push(PullProgress {
                    token: *token,
                    reference: job.reference.clone(),
                    line: text.clone(),
                });
            }
        }
        // One pull.progress event a second at most, with the latest line.
        let now = std::time::Instant::now();
        let due = job
            .last_progress_event
            .is_none_or(|t| now.duration_since(t).as_secs() >= 1);
        if let Some(line) = last_line.filter(|_| due) {
            job.last_progress_event = Some(now);
            let data = json!({"reference": job.reference, "progress": line});
            self.emit(kinds::PULL_PROGRESS, None, data);
        }
    }

    /// A client went away: it no longer hears about its pull.
    pub(crate) fn forget_pull_client(&mut self, token: u64) {
        for job in self.pulls.values_mut() {
            job.clients.retain(|t| *t != token);
        }
    }

    /// A reaped child that was a pull: start (or fail) what waited on it.
    pub(crate) fn on_pull_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(fd) = self
            .pulls
            .get(&pid)
            .and_then(|j| j.stdout.as_ref().map(|f| f.as_raw_fd()))
        else {
            return self.finish_pull(pid, code);
        };
        self.on_pull_output(fd); // the last lines
        self.finish_pull(pid, code)
    }

    fn finish_pull(&mut self, pid: Pid, code: i32) -> bool {
        let Some(mut job) = self.pulls.remove(&pid) else {
            return false;
        };
        let mut output = String::new();
        if let Some(err) = job.stderr.take() {
            let _ = err.take(64 * 1024).read_to_string(&mut output);
        }
        // The pull's own last words ("berth: pull REF: why") name the cause.
        let reason = output
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("berth: ")
            .to_string();
        say(format_args!(
            "pull of {} exited with code {code} {reason}",
            job.reference
        ));
        let (kind, data) = if code == 0 {
            (kinds::PULL_DONE, json!({"reference": job.reference}))
        } else {
            (
                kinds::PULL_FAILED,
                json!({"reference": job.reference, "exit_code": code, "error": reason}),
            )
        };
        self.emit(kind, None, data);
        let error = (code != 0).then(|| {
            if reason.is_empty() {
                format!("pull of {} failed (exit {code})", job.reference)
            } else {
                reason.clone()
            }
        });
        for token in &job.clients {
            self.pull_outcomes.push(PullOutcome {
                token: *token,
                reference: job.reference.clone(),
                exit_code: code,
                error: error.clone(),
            });
        }
        for name in job.waiting {
            self.pull_ended_for(&name, code, error.as_deref());
        }
        self.update_pull_ended(&job.reference, error.as_deref());
        true
    }

    pub fn take_pull_events(&mut self) -> (Vec<PullProgress>, Vec<PullOutcome>) {
        (
            std::mem::take(&mut self.pull_progress),
            std::mem::take(&mut self.pull_outcomes),
        )
    }
}
