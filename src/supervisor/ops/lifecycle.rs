//! State changes of containers: start, stop, exit, restart, shutdown. Each
//! container moves Created → Running → (Stopping) → Restarting | Exited,
//! driven by API requests, child exits and timers.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::kernel::cgroup::ContainerCgroup;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::container::{Container, State};
use crate::supervisor::runtime::restart::{STABLE_RUN, backoff_delay, should_restart};
use crate::supervisor::runtime::timers::{Timer, TimerKind};
use crate::supervisor::say;
use crate::supervisor::spec::RestartPolicy;

/// Docker's exit code when the runtime itself could not start the container.
pub(crate) const EXIT_CANNOT_START: i32 = 125;
/// Bytes read from one output pipe per wake-up, so one chatty container
/// cannot starve the others.
const MAX_OUTPUT_READ_BYTES: usize = 256 * 1024;

impl Supervisor {
    pub fn start_all(&mut self) {
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            if self.stopped_by_request(&name) {
                say(format_args!(
                    "container {name}: stopped through the API earlier (unless-stopped); not starting it"
                ));
                if let Some(c) = self.containers.get_mut(&name) {
                    c.state = State::Exited;
                    c.stop_requested = true;
                }
                continue;
            }
            self.launch(&name);
        }
    }

    /// An `unless-stopped` container someone stopped stays stopped across
    /// daemon restarts: a marker in its directory says so.
    fn stopped_by_request(&self, name: &str) -> bool {
        self.containers.get(name).is_some_and(|c| {
            c.spec.restart.policy == RestartPolicy::UnlessStopped
                && c.dirs.stopped_marker().exists()
        })
    }

    /// API `stop`: like `stop`, and remembered for `unless-stopped`.
    pub fn stop_by_request(&mut self, name: &str) -> Result<(), SupervisorError> {
        let c = self.container(name)?;
        if c.spec.restart.policy == RestartPolicy::UnlessStopped {
            let marker = c.dirs.stopped_marker();
            if let Err(e) =
                std::fs::create_dir_all(&c.dirs.base).and_then(|_| std::fs::write(&marker, b""))
            {
                say(format_args!(
                    "container {name}: write {}: {e}",
                    marker.display()
                ));
            }
        }
        self.stop(name)
    }

    /// API `start`: runs a container that is not running. A no-op for one
    /// that is.
    pub fn start(&mut self, name: &str) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        let c = self.container_mut(name)?;
        if c.state.is_live() {
            return Ok(());
        }
        c.stop_requested = false;
        c.restarts = 0;
        c.backoff_step = 0;
        let _ = std::fs::remove_file(c.dirs.stopped_marker());
        self.launch(name);
        Ok(())
    }

    /// API `stop`: the stop signal now, SIGKILL after the stop timeout. No
    /// restart follows.
    pub fn stop(&mut self, name: &str) -> Result<(), SupervisorError> {
        let c = self.container_mut(name)?;
        c.stop_requested = true;
        match (c.state, c.pid) {
            (State::Running, Some(pid)) => {
                c.state = State::Stopping;
                let _ = kill(
                    pid,
                    Signal::try_from(c.stop_signal).unwrap_or(Signal::SIGTERM),
                );
                let at = Instant::now() + Duration::from_secs(c.spec.stop_timeout);
                let (name, run_id) = (c.name.clone(), c.run_id);
                self.timers.schedule(at, &name, run_id, TimerKind::Kill);
            }
            (State::Restarting | State::Pulling | State::Waiting, _) => c.state = State::Exited,
            _ => {}
        }
        Ok(())
    }

    pub fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        say(format_args!(
            "shutting down: stopping {} containers",
            self.containers.len()
        ));
        self.shutting_down = true;
        for pid in self.pulls.keys() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        // Not running: nothing to wait for. Running: dependents first.
        let idle: Vec<String> = self
            .containers
            .values()
            .filter(|c| c.state != State::Running)
            .map(|c| c.name.clone())
            .collect();
        for name in idle {
            let _ = self.stop(&name);
        }
        self.continue_shutdown();
    }

    /// Removes what is left of the containers' cgroups and their parent.
    pub fn finish_shutdown(&mut self) {
        for c in self.containers.values_mut() {
            if let Some(cg) = c.cgroup.take()
                && let Err(e) = cg.remove()
            {
                say(format_args!("container {}: {e}", c.name));
            }
        }
        let parent = ContainerCgroup::load(&self.options.cgroup_parent);
        if parent.exists() {
            let _ = parent.remove();
        }
    }

    /// Starts the container, unless its dependencies are not ready (it
    /// waits) or its image must be pulled first (the pull's exit starts it
    /// then).
    pub(crate) fn launch(&mut self, name: &str) {
        if self.dependencies_allow_start(name) && !self.needs_pull(name) {
            self.launch_now(name);
        }
    }

    pub(crate) fn launch_now(&mut self, name: &str) {
        match self.try_launch(name) {
            Ok(pid) => {
                let security = self
                    .containers
                    .get(name)
                    .and_then(|c| c.security.as_ref())
                    .map(|s| format!("; seccomp {}, landlock {}", s.seccomp, s.landlock))
                    .unwrap_or_default();
                say(format_args!(
                    "container {name}: started (pid {pid}{security})"
                ));
                let image = self.containers.get(name).map(|c| c.spec.image.clone());
                self.emit(
                    kinds::CONTAINER_STARTED,
                    Some(name),
                    json!({"pid": pid.as_raw(), "image": image}),
                );
                self.health_started(name);
                self.refresh_peer_hosts();
                self.run_after_hooks(name, "poststart");
                self.start_waiting_dependents();
            }
            Err((message, code)) => self.start_failed(name, message, code),
        }
    }

    /// A start that never reached exec: recorded like an exit with `code`.
    pub(crate) fn start_failed(&mut self, name: &str, message: String, code: i32) {
        say(format_args!("container {name}: {message}"));
        if let Some(c) = self.containers.get_mut(name) {
            c.exit_reason = Some("start_failed".into());
            let data = json!({"exit_code": code, "reason": "start_failed", "error": message});
            self.emit(kinds::CONTAINER_EXITED, Some(name), data);
            let Some(c) = self.containers.get_mut(name) else {
                return;
            };
            let _ = c.log.write_notice(&message);
            c.error = Some(message);
            c.started_at = Some(SystemTime::now());
            c.started_instant = Some(Instant::now());
        }
        self.after_run(name, code);
    }

    /// A reaped child: a container's main process, or (as PID 1) an orphan.
    pub fn on_exit(&mut self, pid: Pid, code: i32) {
        if self.on_pull_exit(pid, code)
            || self.on_health_exit(pid, code)
            || self.on_notifier_exit(pid, code)
        {
            return;
        }
        let Some(name) = self
            .containers
            .values()
            .find(|c| c.pid == Some(pid))
            .map(|c| c.name.clone())
        else {
            return;
        };
        // Whatever it wrote before exiting belongs in its log before anyone
        // waiting for the exit reads that log.
        self.drain_outputs(&name);
        if let Some(c) = self.containers.get_mut(&name) {
            c.pid = None;
            let oom_killed = c.cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
            let reason = exit_reason(code, oom_killed);
            say(format_args!(
                "container {name}: exited with code {code} ({reason})"
            ));
            if oom_killed {
                let _ = c
                    .log
                    .write_notice("killed: out of memory (the container's memory limit)");
            }
            c.exit_reason = Some(reason.to_string());
            let stopped = c.stop_requested;
            let data = json!({"exit_code": code, "reason": reason});
            self.emit(kinds::CONTAINER_EXITED, Some(&name), data);
            if oom_killed {
                self.emit(
                    kinds::CONTAINER_OOM_KILLED,
                    Some(&name),
                    json!({"exit_code": code}),
                );
            }
            if stopped {
                self.emit(
                    kinds::CONTAINER_STOPPED,
                    Some(&name),
                    json!({"exit_code": code}),
                );
            }
            let Some(c) = self.containers.get_mut(&name) else {
                return;
            };
            if let Some(cg) = c.cgroup.take()
                && let Err(e) = cg.remove()
            {
                say(format_args!("container {name}: {e}"));
            }
        }
        self.release_volumes(&name);
        self.detach_network(&name);
        self.run_after_hooks(&name, "poststop");
        self.after_run(&name, code);
    }

    /// Records the end of a run and applies the restart policy.
    fn after_run(&mut self, name: &str, code: i32) {
        let shutting_down = self.shutting_down;
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        c.exit_code = Some(code);
        c.finished_at = Some(SystemTime::now());
        if c.started_instant.is_some_and(|t| t.elapsed() >= STABLE_RUN) {
            c.backoff_step = 0;
        }
        let mut forced = std::mem::take(&mut c.force_restart);
        if let Some(spec) = c.pending_spec.take() {
            say(format_args!(
                "container {name}: starting again with its new spec"
            ));
            c.spec = spec;
            c.restarts = 0;
            c.backoff_step = 0;
            c.stop_requested = false;
            forced = true;
        }
        let restart = forced || should_restart(&c.spec.restart, code, c.restarts, c.stop_requested);
        if shutting_down || !restart {
            c.state = State::Exited;
            let remove = c.remove_on_exit;
            self.complete_waiters(name);
            if remove {
                self.remove_container(name);
            }
            if shutting_down {
                self.continue_shutdown();
            } else {
                self.start_waiting_dependents();
            }
            return;
        }
        c.state = State::Restarting;
        c.restarts += 1;
        let delay = backoff_delay(c.backoff_step);
        c.backoff_step += 1;
        let (name, run_id, restarts) = (c.name.clone(), c.run_id, c.restarts);
        self.timers
            .schedule(Instant::now() + delay, &name, run_id, TimerKind::Restart);
        let data =
            json!({"delay_ms": delay.as_millis() as u64, "restarts": restarts, "exit_code": code});
        self.emit(kinds::CONTAINER_RESTARTING, Some(&name), data);
        self.complete_waiters(&name);
    }

    pub fn on_timer(&mut self, timer: Timer) {
        if timer.kind == TimerKind::Notifier {
            self.start_notifier();
            return;
        }
        let Some(c) = self.containers.get(&timer.container) else {
            return;
        };
        if c.run_id != timer.run_id {
            return;
        }
        match (timer.kind, c.state, c.pid) {
            (TimerKind::Restart, State::Restarting, _) if !self.shutting_down => {
                self.launch(&timer.container)
            }
            (TimerKind::Health, State::Running, _) => self.run_health_check(&timer.container),
            (TimerKind::HealthTimeout, _, _) => self.health_timeout(&timer.container),
            (TimerKind::Kill, State::Stopping, Some(pid)) => {
                say(format_args!(
                    "container {}: stop timeout, sending SIGKILL",
                    c.name
                ));
                let _ = kill(pid, Signal::SIGKILL);
            }
            _ => {}
        }
    }

    pub fn fire_due_timers(&mut self) {
        for t in self.timers.pop_due(Instant::now()) {
            self.on_timer(t);
        }
    }

    /// Reads what an exited container left in its pipes before anyone
    /// waiting for the exit reads the log. The flood limit does not apply
    /// (the writers are gone, so it is at most what the pipes hold) but
    /// the bytes are still counted.
    fn drain_outputs(&mut self, name: &str) {
        let now = Instant::now();
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        c.log.set_limits(&c.spec.logging);
        let mut idx = 0;
        while idx < c.outputs.len() {
            if !copy_output(c, idx, MAX_OUTPUT_READ_BYTES, now) {
                idx += 1;
            }
        }
    }

    /// Copies what a container wrote on `fd` into its log, as much as its
    /// flood limit (`logging.rate`/`burst`) allows now; the event loop
    /// stops polling its pipes while the bucket is empty.
    pub fn on_output(&mut self, fd: RawFd) {
        let now = Instant::now();
        let Some(c) = self
            .containers
            .values_mut()
            .find(|c| c.outputs.iter().any(|o| o.fd.as_raw_fd() == fd))
        else {
            return;
        };
        let idx = c
            .outputs
            .iter()
            .position(|o| o.fd.as_raw_fd() == fd)
            .expect("found above");
        // The spec may have been reloaded since the last read.
        let logging = &c.spec.logging;
        c.log.set_limits(logging);
        c.log_bucket.set_limits(logging.rate.0, logging.burst.0);
        let budget = usize::try_from(c.log_bucket.available(now))
            .unwrap_or(usize::MAX)
            .min(MAX_OUTPUT_READ_BYTES);
        copy_output(c, idx, budget, now);
    }
}

/// Copies up to `budget` bytes from the container's output pipe `idx` into
/// its log, counting them against its flood limit; a pipe at EOF is
/// flushed and removed (true).
fn copy_output(c: &mut Container, idx: usize, budget: usize, now: Instant) -> bool {
    let stream = c.outputs[idx].stream;
    let copied = c.log.copy_pipe(c.outputs[idx].fd.as_fd(), stream, budget);
    c.log_bucket.take(copied.bytes as u64, now);
    if let Some(e) = copied.log_error {
        say(format_args!("container {}: write log: {e}", c.name));
    }
    if copied.closed {
        let _ = c.log.flush_partial(stream);
        c.outputs.remove(idx);
    }
    copied.closed
}

/// Why a run ended, in the words `list` and `inspect` use: "oom_killed"
/// when the memory cgroup killed it, "signal" for any other death by
/// signal (code 128+N), "exited" otherwise.
fn exit_reason(code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "oom_killed"
    } else if code > 128 {
        "signal"
    } else {
        "exited"
    }
}
