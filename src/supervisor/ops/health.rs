//! Health checks: the spec's command run inside the container on an
//! interval (kernel::exec), with a timeout, retries and a start period;
//! the result shown in `list`/`inspect`, waited on by `depends_on:
//! healthy`, and acted on with `on_unhealthy: restart`.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, read};

use crate::kernel::exec::{ExecConfig, ExecStdio, exec_in_container};
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::output::logs::rfc3339_now;
use crate::supervisor::runtime::container::State;
use crate::supervisor::runtime::health::{CheckRun, Health, HealthStatus};
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::service::OnUnhealthy;

/// Bytes of a check's output kept for `inspect`.
const MAX_OUTPUT_BYTES: usize = 4096;

impl Supervisor {
    /// A container started: its first check comes after one interval.
    pub(crate) fn health_started(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let Some(hc) = &c.spec.healthcheck else {
            c.health = Health::default();
            return;
        };
        // A new run starts its verdict over, but the last check's result
        // stays visible in `inspect`: after an unhealthy restart it says
        // why the container was restarted.
        c.health.status = HealthStatus::Starting;
        c.health.failing_streak = 0;
        let (n, run, every) = (c.name.clone(), c.run_id(), hc.interval.0);
        self.timers
            .schedule_in(Instant::now(), every, &n, run, TimerKind::Health);
    }

    /// The Health timer: run the check (unless one is still running).
    pub(crate) fn run_health_check(&mut self, name: &str) {
        let cgroup_path = format!("{}/{name}", self.options.cgroup_parent);
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let (Some(hc), Some(pid), Some(tpl)) = (&c.spec.healthcheck, c.pid, &c.exec_template)
        else {
            return;
        };
        if c.state() != State::Running || c.health.running.is_some() {
            return;
        }
        let mut process = tpl.process.clone();
        process.args = hc.command.clone();
        let cfg = ExecConfig {
            process: &process,
            security: &tpl.security,
            userns: tpl.userns,
            stdio: ExecStdio::Combined,
        };
        let cgroup = crate::kernel::cgroup::ContainerCgroup::load(&cgroup_path);
        match exec_in_container(pid, &cfg, |p| {
            cgroup.add_process(p).map_err(|e| e.to_string())
        }) {
            Ok(handle) => {
                c.health.running = Some(CheckRun {
                    pid: handle.pid,
                    output: handle.output,
                    timed_out: false,
                });
                let (n, run, timeout) = (c.name.clone(), c.run_id(), hc.timeout.0);
                self.timers
                    .schedule_in(Instant::now(), timeout, &n, run, TimerKind::HealthTimeout);
            }
            Err(e) => {
                let message = format!("health check could not start: {e}");
                self.record_check(name, -1, message);
            }
        }
    }

    /// The run ended: a check still running is killed (its result, when
    /// reaped, no longer matters).
    pub(crate) fn health_stopped(&mut self, name: &str) {
        if let Some(run) = self
            .containers
            .get_mut(name)
            .and_then(|c| c.health.running.as_mut())
        {
            run.timed_out = true;
            let _ = kill(run.pid, Signal::SIGKILL);
        }
    }

    /// The HealthTimeout timer: a check still running has failed.
    pub(crate) fn health_timeout(&mut self, name: &str) {
        self.health_stopped(name);
    }

    /// A reaped child that was a health check: true if it was one.
    pub(crate) fn on_health_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(name) = self
            .containers
            .values()
            .find(|c| c.health.running.as_ref().is_some_and(|r| r.pid == pid))
            .map(|c| c.name.clone())
        else {
            return false;
        };
        let Some(run) = self
            .containers
            .get_mut(&name)
            .and_then(|c| c.health.running.take())
        else {
            return true;
        };
        let mut output = read_output(&run.output);
        let code = if run.timed_out {
            output.push_str("health check timed out\n");
            -1
        } else {
            code
        };
        self.record_check(&name, code, output);
        true
    }

    /// Applies one check result, schedules the next, and acts on a turn
    /// to unhealthy.
    fn record_check(&mut self, name: &str, code: i32, output: String) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let Some(hc) = c.spec.healthcheck.clone() else {
            return;
        };
        let in_start_period = c
            .started_instant
            .is_some_and(|t| t.elapsed() < hc.start_period.0);
        let h = &mut c.health;
        h.last_exit_code = Some(code);
        h.last_output = output;
        h.last_check_at = Some(rfc3339_now());
        let before = h.status;
        if code == 0 {
            h.failing_streak = 0;
            h.status = HealthStatus::Healthy;
        } else if !(in_start_period && before == HealthStatus::Starting) {
            h.failing_streak += 1;
            if h.failing_streak >= hc.retries.max(1) {
                h.status = HealthStatus::Unhealthy;
            }
        }
        let after = h.status;
        if c.state() == State::Running {
            let (n, run, every) = (c.name.clone(), c.run_id(), hc.interval.0);
            self.timers
                .schedule_in(Instant::now(), every, &n, run, TimerKind::Health);
        }
        if before != after {
            say(format_args!(
                "container {name}: health {before:?} -> {after:?}"
            ));
            let kind = match after {
                HealthStatus::Unhealthy => Some(kinds::CONTAINER_UNHEALTHY),
                HealthStatus::Healthy => Some(kinds::CONTAINER_HEALTHY),
                _ => None,
            };
            if let Some(kind) = kind {
                let data = serde_json::json!({"exit_code": code});
                self.emit(kind, Some(name), data);
            }
            self.start_waiting_dependents();
            if after == HealthStatus::Unhealthy && hc.on_unhealthy == OnUnhealthy::Restart {
                self.restart_unhealthy(name);
            }
        }
    }
}

/// What the check wrote, up to MAX_OUTPUT_BYTES (the pipe is non-blocking
/// and the writer has exited).
fn read_output(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while out.len() < MAX_OUTPUT_BYTES {
        match read(fd.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out.truncate(MAX_OUTPUT_BYTES);
    String::from_utf8_lossy(&out).into_owned()
}
