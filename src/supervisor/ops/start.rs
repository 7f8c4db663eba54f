//! Starting containers: at boot, by the API, once their gates open. The
//! gates (dependencies, the image) are checked here and answered to the
//! state machine; a container that runs gets its record, health checks,
//! poststart hooks and peers' /etc/hosts updated.

use std::os::unix::fs::OpenOptionsExt;
use std::time::{Instant, SystemTime};

use serde_json::json;

use crate::kernel::machine::boot_steps::{self, BootStep};
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::create::Prepared;
use crate::supervisor::ops::gates::Verdict;
use crate::supervisor::ops::jobs::JobKind;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::output::logs::Stream;
use crate::supervisor::plugins::hooks::{HookState, HookStatus, run_hooks};
use crate::supervisor::runtime::container::OutputPipe;
use crate::supervisor::runtime::machine::Event;
use crate::supervisor::runtime::ordering::{Readiness, readiness};
use crate::supervisor::say;
use crate::supervisor::spec::RestartPolicy;

impl Supervisor {
    /// At daemon start: every container from the config directory.
    pub fn start_all(&mut self) {
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            if self.stopped_by_request(&name) {
                say(format_args!(
                    "container {name}: stopped through the API earlier (unless-stopped); not starting it"
                ));
                self.fire(&name, Event::Stop);
                continue;
            }
            self.fire(&name, Event::Start);
            // Children released earlier may have exec'd while this one
            // was set up: record them now rather than after the last
            // container's setup (the first container of a boot runs that
            // much sooner; a read of an error pipe, never a wait).
            self.poll_released();
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

    /// API `start`: runs a container that is not running. A no-op for one
    /// that is.
    pub fn start(&mut self, name: &str) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        let c = self.container(name)?;
        let _ = std::fs::remove_file(c.dirs.stopped_marker());
        self.fire(name, Event::Start);
        Ok(())
    }

    /// The CheckGates action: dependencies first, then the image.
    pub(crate) fn check_gates(&mut self, name: &str) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let verdict = match readiness(&c.spec.depends_on, &self.containers) {
            Readiness::Ready => self.gate_verdict(name),
            Readiness::Waiting(on) => Verdict::Wait(format!("waiting for {}", on.join(", "))),
            Readiness::Failed(why) => Verdict::Fail(why),
        };
        match verdict {
            Verdict::Open => {}
            Verdict::Wait(message) => {
                if let Some(c) = self.containers.get_mut(name) {
                    if c.error.as_deref() != Some(message.as_str()) {
                        say(format_args!("container {name}: {message}"));
                    }
                    c.error = Some(message);
                }
                return self.fire(name, Event::DependenciesPending);
            }
            Verdict::Fail(why) => return self.fail_before_start(name, why),
        }
        let event = if self.image_missing(name) {
            Event::ImageMissing
        } else {
            Event::Ready
        };
        self.fire(name, event);
    }

    /// A dependency or a gate can never be met: the start fails (exit 125).
    fn fail_before_start(&mut self, name: &str, why: String) {
        say(format_args!("container {name}: {why}"));
        if let Some(c) = self.containers.get_mut(name) {
            let _ = c.log.write_notice(&why);
            c.error = Some(why.clone());
            c.waiting_for = None;
            c.exit_reason = Some("start_failed".into());
            c.exit_code = Some(125);
            c.finished_at = Some(SystemTime::now());
        }
        let data = json!({"exit_code": 125, "reason": "start_failed", "error": why});
        self.emit(kinds::CONTAINER_EXITED, Some(name), data);
        self.fire(name, Event::DependenciesFailed);
    }

    /// Waiting containers whose dependencies may have moved: check again.
    pub(crate) fn start_waiting_dependents(&mut self) {
        if self.shutting_down {
            return;
        }
        let waiting: Vec<String> = self
            .containers
            .values()
            .filter(|c| c.state() == crate::supervisor::runtime::machine::State::Waiting)
            .map(|c| c.name.clone())
            .collect();
        for name in waiting {
            self.fire(&name, Event::Start);
        }
    }

    /// The container's run began (the RecordStart action's second half).
    pub(crate) fn record_run(&mut self, name: &str, p: Prepared) {
        let console_logs = self.options.console_logs;
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        c.ip = p.ip;
        c.waiting_for = None;
        c.image_id = Some(p.image_id);
        c.error = None;
        c.exit_code = None;
        c.exit_reason = None;
        c.exec_done = true;
        c.started_at = Some(SystemTime::now());
        c.started_instant = Some(Instant::now());
        c.stop_signal = p.stop_signal;
        if console_logs {
            let console = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open("/dev/console");
            c.log.set_console(&c.name, console.ok());
        }
        let security = format!(
            "; seccomp {}, landlock {}",
            p.summary.seccomp, p.summary.landlock
        );
        c.security = Some(p.summary);
        c.outputs = vec![
            OutputPipe {
                fd: p.stdout,
                stream: Stream::Stdout,
            },
            OutputPipe {
                fd: p.stderr,
                stream: Stream::Stderr,
            },
        ];
        c.cgroup = Some(p.cgroup);
        c.exec_template = Some(p.exec_template);
        let pid = c.pid.map(|p| p.as_raw());
        let image = c.image_ref().to_string();
        let stages: serde_json::Map<String, serde_json::Value> = p
            .start_stages
            .iter()
            .map(|(stage, d)| (stage.to_string(), json!(d.as_micros() as u64)))
            .collect();
        say(format_args!(
            "container {name}: started (pid {}{security})",
            pid.unwrap_or_default()
        ));
        self.emit(
            kinds::CONTAINER_STARTED,
            Some(name),
            json!({"pid": pid, "image": image, "start_us": stages}),
        );
        if std::mem::take(&mut self.options.report_boot_time) {
            report_boot_time(name, &p.start_stages);
        }
        self.health_started(name);
        self.refresh_peer_hosts();
        self.run_poststart_hooks(name);
        self.start_waiting_dependents();
    }

    /// OCI poststart hooks, in a helper: a failure is a warning, the
    /// container's fate is unchanged (runtime-spec's rule).
    fn run_poststart_hooks(&mut self, name: &str) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let hooks = c.hooks().poststart;
        if hooks.is_empty() {
            return;
        }
        let pid = c.pid.map(|p| p.as_raw());
        let state = HookState::new(name, HookStatus::Running, pid, &c.dirs.base);
        let owner = Some((name.to_string(), c.run_id()));
        let started = self.jobs.start(JobKind::PostStart, owner, &[], move || {
            match run_hooks("poststart", &hooks, &state) {
                Ok(()) => json!({}),
                Err(e) => json!({ "warnings": [e] }),
            }
        });
        if let Err(e) = started {
            say(format_args!("container {name}: warning: {e}"));
        }
    }
}

/// As the machine's init: how long after the kernel started the first
/// container runs (/proc/uptime, the clock of the kernel's `printk.time`
/// stamps), the share of each of berth's boot steps in it, and where that
/// container's own start went.
fn report_boot_time(name: &str, stages: &[(&'static str, std::time::Duration)]) {
    boot_steps::stamp(BootStep::FirstContainer);
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok());
    if let Some(at) = uptime {
        say(format_args!(
            "first container running {at:.2} s after the kernel started"
        ));
    }
    if let Some(report) = boot_steps::report() {
        say(format_args!("{report}"));
    }
    let stages: Vec<String> = stages
        .iter()
        .map(|(stage, d)| format!("{stage} {:.1} ms", d.as_secs_f64() * 1e3))
        .collect();
    say(format_args!(
        "boot: container {name}'s start: {}",
        stages.join(", ")
    ));
}
