//! Slow work off the loop: a job is a forked helper process (kernel::
//! helper) that runs one closure — a plugin call, hooks, a sync, a big
//! deletion — and answers with a JSON value on a pipe. The loop polls the
//! pipes and reaps the helpers; a finished job comes back to the
//! operations as an event for its container.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, read};
use serde_json::Value;

use crate::kernel::helper::fork_helper;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::say;
use crate::supervisor::writes::{WriteKind, count, proc_write_bytes};

/// The most a helper may answer; more is cut (answers are small).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What a job does, and so where its answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Pin a container's image while a pull holds the store, look up its
    /// host devices, create and mount its volumes.
    MountVolumes,
    /// Attach the paused container's network and run its prestart hooks.
    Place,
    /// Release what a finished run held.
    Cleanup,
    /// Poststart hooks: warnings only.
    PostStart,
    /// fdatasync of the event journal.
    SyncJournal,
    /// Delete a directory tree (a removed container's).
    RemoveTree,
    /// Ask the registry where a container's tag points (ops/update.rs).
    UpdateCheck,
    /// Drop a reference that pinned a rollback target.
    UpdateUnpin,
    /// Import the config's images/ at daemon start (ops/airgap.rs).
    ImportImages,
    /// Resolve a name or connect to a port for a `wait_for` gate.
    GateProbe,
    /// Copy and check a config to apply (ops/apply.rs).
    ApplyStage,
    /// Move the applied config's pointer, fsynced.
    ApplyCommit,
    /// Find, fetch, copy and check the kernel command line's
    /// `berth.config=` source (first_boot.rs).
    FirstBoot,
}

impl JobKind {
    fn name(self) -> &'static str {
        match self {
            JobKind::MountVolumes => "image, devices and volumes",
            JobKind::Place => "network and prestart hooks",
            JobKind::Cleanup => "cleanup",
            JobKind::PostStart => "poststart hooks",
            JobKind::SyncJournal => "journal sync",
            JobKind::RemoveTree => "remove",
            JobKind::UpdateCheck => "update check",
            JobKind::UpdateUnpin => "update unpin",
            JobKind::ImportImages => "image import",
            JobKind::GateProbe => "wait_for probe",
            JobKind::ApplyStage => "config staging",
            JobKind::ApplyCommit => "config switch",
            JobKind::FirstBoot => "first-boot config",
        }
    }
}

/// A job in flight.
/// The key of a helper's answer that carries its /proc/self/io
/// write_bytes (taken out before the answer is handled).
const HELPER_WRITE_BYTES: &str = "_helper_write_bytes";

#[derive(Debug)]
pub struct Job {
    pub kind: JobKind,
    /// The container it works for, and that container's run.
    pub container: Option<(String, u64)>,
    output: Option<OwnedFd>,
    answer: Vec<u8>,
}

/// A job's end: its answer (Null if it wrote none, e.g. it was killed).
#[derive(Debug)]
pub struct JobDone {
    pub kind: JobKind,
    pub container: Option<(String, u64)>,
    pub exit_code: i32,
    pub answer: Value,
}

#[derive(Debug, Default)]
pub struct Jobs {
    running: BTreeMap<Pid, Job>,
}

impl Jobs {
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Starts `work` in a helper; `keep` are descriptors it needs.
    pub fn start(
        &mut self,
        kind: JobKind,
        container: Option<(String, u64)>,
        keep: &[RawFd],
        work: impl FnOnce() -> Value,
    ) -> Result<Pid, String> {
        let helper = fork_helper(keep, || {
            let mut answer = work();
            // What the helper wrote to storage, for the daemon's counters.
            if let (Value::Object(map), Some(bytes)) = (&mut answer, proc_write_bytes("self")) {
                map.insert(HELPER_WRITE_BYTES.into(), bytes.into());
            }
            serde_json::to_vec(&answer).unwrap_or_default()
        })
        .map_err(|e| format!("start a helper for {}: {e}", kind.name()))?;
        self.running.insert(
            helper.pid,
            Job {
                kind,
                container,
                output: Some(helper.output),
                answer: Vec::new(),
            },
        );
        Ok(helper.pid)
    }

    /// Kills the jobs working for `container` (their whole process group).
    pub fn cancel_for(&mut self, container: &str, kind: JobKind) {
        for (pid, job) in &self.running {
            if job.kind == kind && job.container.as_ref().is_some_and(|(n, _)| n == container) {
                let _ = killpg(*pid, Signal::SIGKILL);
            }
        }
    }

    /// True while a job of this kind (for this container) runs.
    pub fn running(&self, kind: JobKind, container: Option<&str>) -> bool {
        self.running
            .values()
            .any(|j| j.kind == kind && j.container.as_ref().map(|(n, _)| n.as_str()) == container)
    }

    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.running
            .values()
            .filter_map(|j| j.output.as_ref().map(|f| f.as_fd()))
    }

    /// Reads what a helper wrote so far.
    pub fn on_output(&mut self, fd: RawFd) {
        if let Some(job) = self
            .running
            .values_mut()
            .find(|j| j.output.as_ref().is_some_and(|f| f.as_raw_fd() == fd))
        {
            drain(job);
        }
    }

    /// A reaped child that was a helper: its answer, read to the end.
    pub fn on_exit(&mut self, pid: Pid, exit_code: i32) -> Option<JobDone> {
        let mut job = self.running.remove(&pid)?;
        // The helper is gone: whatever it wrote is in the pipe now.
        drain(&mut job);
        let mut answer = serde_json::from_slice(&job.answer).unwrap_or(Value::Null);
        if let Some(bytes) = answer
            .as_object_mut()
            .and_then(|m| m.remove(HELPER_WRITE_BYTES))
            .and_then(|v| v.as_u64())
        {
            let kind = match job.kind {
                JobKind::SyncJournal => WriteKind::Journal,
                _ => WriteKind::Store,
            };
            count(kind, bytes);
        }
        Some(JobDone {
            kind: job.kind,
            container: job.container,
            exit_code,
            answer,
        })
    }
}

fn drain(job: &mut Job) {
    let Some(fd) = job.output.as_ref() else {
        return;
    };
    let mut buf = [0u8; 8192];
    loop {
        match read(fd.as_fd(), &mut buf) {
            Ok(0) => {
                job.output = None;
                return;
            }
            Ok(n) => {
                let room = MAX_ANSWER_BYTES.saturating_sub(job.answer.len());
                job.answer.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return,
            Err(_) => {
                job.output = None;
                return;
            }
        }
    }
}

impl Supervisor {
    /// The poll loop's view of the helpers' pipes.
    pub fn job_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.jobs.fds().collect()
    }

    pub fn on_job_output(&mut self, fd: RawFd) {
        self.jobs.on_output(fd);
    }

    /// A reaped child that was a helper: hand its answer on. True if it
    /// was one.
    pub(crate) fn on_job_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(done) = self.jobs.on_exit(pid, code) else {
            return false;
        };
        match done.kind {
            JobKind::MountVolumes => self.volumes_mounted(done),
            JobKind::Place => self.placed(done),
            JobKind::Cleanup => self.cleaned_up(done),
            JobKind::PostStart => self.hooks_warned(done),
            JobKind::GateProbe => self.gate_probed(done),
            JobKind::SyncJournal => self.journal_synced(done),
            JobKind::UpdateCheck => self.update_checked(done),
            JobKind::ImportImages => self.airgap_imported(done),
            JobKind::ApplyStage => self.apply_staged(done),
            JobKind::ApplyCommit => self.apply_committed(done),
            JobKind::FirstBoot => self.first_boot_staged(done),
            JobKind::RemoveTree | JobKind::UpdateUnpin => {
                if let Some(e) = done.answer.get("error").and_then(Value::as_str) {
                    say(format_args!("{e}"));
                }
            }
        }
        true
    }

    /// The answer's "error", or a description of a helper that died
    /// without answering.
    pub(crate) fn job_error(done: &JobDone) -> Option<String> {
        if let Some(e) = done.answer.get("error").and_then(Value::as_str) {
            return Some(e.to_string());
        }
        if done.answer.is_null() {
            return Some(format!(
                "{} did not finish (helper exit code {})",
                done.kind.name(),
                done.exit_code
            ));
        }
        None
    }

    /// Warnings a helper reported, logged and written to the container's log.
    pub(crate) fn log_warnings(&mut self, done: &JobDone) {
        let Some((name, _)) = &done.container else {
            return;
        };
        let warnings = done.answer.get("warnings").and_then(Value::as_array);
        for w in warnings.into_iter().flatten().filter_map(Value::as_str) {
            say(format_args!("container {name}: warning: {w}"));
            if let Some(c) = self.containers.get_mut(name) {
                let _ = c.log.write_notice(&format!("warning: {w}"));
            }
        }
    }

    fn hooks_warned(&mut self, done: JobDone) {
        self.log_warnings(&done);
        if let Some(e) = Self::job_error(&done) {
            let Some((name, _)) = &done.container else {
                return;
            };
            say(format_args!("container {name}: warning: {e}"));
        }
    }
}

impl Supervisor {
    /// Starts a journal sync in a helper when events were appended, none
    /// is running and berth.json's `journal.sync` allows one now: by
    /// default events become durable within one sync's time of being
    /// written; the loop never waits on the disk (an interval's next sync
    /// is a deadline of the loop's poll, `next_deadline`).
    pub fn sync_events(&mut self) {
        if self.jobs.running(JobKind::SyncJournal, None) {
            return;
        }
        let Some(work) = self.events.take_sync(std::time::Instant::now()) else {
            return;
        };
        let keep: Vec<RawFd> = work.files.iter().map(AsRawFd::as_raw_fd).collect();
        let started = self.jobs.start(JobKind::SyncJournal, None, &keep, move || {
            match work.run() {
                Ok(()) => serde_json::json!({}),
                Err(e) => serde_json::json!({ "error": e }),
            }
        });
        if let Err(e) = started {
            self.events.sync_result(Some(&e));
        }
    }

    fn journal_synced(&mut self, done: JobDone) {
        let error = Self::job_error(&done);
        self.events.sync_result(error.as_deref());
    }
}
