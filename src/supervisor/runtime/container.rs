//! One supervised container's runtime record, and the view of it the API
//! shows.

use std::os::fd::OwnedFd;
use std::time::{Instant, SystemTime};

use nix::unistd::Pid;
use serde::Serialize;

use super::health::{ExecTemplate, Health, HealthStatus};
use crate::kernel::cgroup::ContainerCgroup;
use crate::supervisor::launch::{ContainerDirs, SecuritySummary};
use crate::supervisor::output::logs::{LogWriter, Stream};
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::service::HooksSpec;

pub use super::machine::State;
use super::machine::{Context, Event, Lifecycle};

/// A read end of the container's stdout or stderr pipe.
pub struct OutputPipe {
    pub fd: OwnedFd,
    pub stream: Stream,
}

pub struct Container {
    pub name: String,
    pub spec: Spec,
    pub dirs: ContainerDirs,
    /// Its state and the counters its transitions use (runtime/machine/).
    life: Lifecycle,
    pub pid: Option<Pid>,
    pub exit_code: Option<i32>,
    /// Why the last start failed, in words.
    pub error: Option<String>,
    /// While creating: the slow step it waits for (e.g. "prestart hooks").
    pub waiting_for: Option<String>,
    /// "exited", "signal", "oom_killed" or "start_failed".
    pub exit_reason: Option<String>,
    /// What the current (or last) run was given, for `inspect`.
    pub security: Option<SecuritySummary>,
    pub image_id: Option<String>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub started_instant: Option<Instant>,
    pub stop_signal: i32,
    pub outputs: Vec<OutputPipe>,
    pub log: LogWriter,
    pub log_bucket: crate::supervisor::output::ratelimit::TokenBucket,
    pub cgroup: Option<ContainerCgroup>,
    /// Started through the API, not from a spec file.
    pub ephemeral: bool,
    /// Deleted (record, upper layer, log) once it has exited for good.
    pub remove_on_exit: bool,
    /// This daemon already pulled its image (for pull policy "always").
    pub pulled: bool,
    /// Failed pulls of its missing image in a row, and when the first
    /// failed: the retry's backoff and `pull.give_up_after` count from them.
    pub pull_failures: Option<(u32, std::time::Instant)>,
    /// Its `wait_for` gates during this start attempt (ops/gates.rs).
    pub gates: super::gate_state::GateState,
    pub health: Health,
    /// How its health checks run (set at each start).
    pub exec_template: Option<ExecTemplate>,
    /// The current run got as far as exec (poststop hooks are due).
    pub exec_done: bool,
    /// Its CDI devices' hooks for the current run (set at each start).
    pub cdi_hooks: HooksSpec,
    /// A reload changed the spec: it applies when the current run ends.
    pub pending_spec: Option<Spec>,
    /// Its address on the CNI network while it runs.
    pub ip: Option<std::net::IpAddr>,
    /// Its auto-update (docs/update.md).
    pub update: super::update::UpdateState,
    /// `run -i`/`-t`: the client's stdin pipe or terminal channels, for
    /// its first start only.
    pub console: Option<Console>,
    /// `run -t`: the daemon's end of a channel whose unread queue holds the
    /// pty master, so the terminal stays open (never read) while no client
    /// is attached; closed when the run ends.
    pub console_hold: Option<std::os::fd::OwnedFd>,
}

/// What `berth run -i`/`-t` connects to the container's first process.
pub struct Console {
    /// The read end of the client's stdin pipe (`-i` without `-t`).
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// Sockets the pty master is sent on (`-t`).
    pub terminal: Vec<std::os::fd::OwnedFd>,
}

impl Console {
    /// Into the kernel's stdio of the container's first process.
    pub fn attach(self, stdio: &mut crate::kernel::config::Stdio) {
        if let Some(stdin) = self.stdin {
            stdio.stdin = stdin;
        }
        stdio.terminal = self.terminal;
    }
}

impl Container {
    pub fn new(name: String, spec: Spec, dirs: ContainerDirs) -> Self {
        let log = LogWriter::new(dirs.log_file()).with_limits(&spec.logging);
        let log_bucket = crate::supervisor::output::ratelimit::TokenBucket::from_logging(
            &spec.logging,
            Instant::now(),
        );
        Container {
            name,
            spec,
            dirs,
            life: Lifecycle::new(),
            pid: None,
            exit_code: None,
            error: None,
            waiting_for: None,
            exit_reason: None,
            security: None,
            image_id: None,
            started_at: None,
            finished_at: None,
            started_instant: None,
            stop_signal: libc::SIGTERM,
            outputs: Vec::new(),
            log,
            log_bucket,
            cgroup: None,
            ephemeral: false,
            remove_on_exit: false,
            pulled: false,
            pull_failures: None,
            gates: Default::default(),
            health: Health::default(),
            exec_template: None,
            exec_done: false,
            cdi_hooks: HooksSpec::default(),
            pending_spec: None,
            ip: None,
            update: super::update::UpdateState::default(),
            console: None,
            console_hold: None,
        }
    }

    /// The image its next run starts from: the spec's, or the digest an
    /// update rollback pinned it to.
    pub fn image_ref(&self) -> &str {
        let pinned = self.spec.update.enabled()
            && self.update.pin_for.as_deref() == Some(self.spec.image.as_str());
        match &self.update.pin {
            Some(pin) if pinned => pin,
            _ => &self.spec.image,
        }
    }

    /// The spec's hooks, then its CDI devices' for each stage.
    pub fn hooks(&self) -> HooksSpec {
        self.spec.hooks.merged(&self.cdi_hooks)
    }

    pub fn state(&self) -> State {
        self.life.state()
    }
    pub fn restarts(&self) -> u32 {
        self.life.restarts()
    }
    /// Bumped at every new run so timers of an older run are ignored.
    pub fn run_id(&self) -> u64 {
        self.life.run_id()
    }
    pub fn stop_requested(&self) -> bool {
        self.life.stop_requested()
    }
    /// Going once it has stopped (a reload or apply removed its spec).
    pub fn remove_requested(&self) -> bool {
        self.life.remove_requested()
    }

    /// Feeds one event to its state machine; returns the actions due.
    pub fn handle(&mut self, event: Event, shutting_down: bool) -> Vec<super::machine::Action> {
        let ran_long_enough = self
            .started_instant
            .is_some_and(|t| t.elapsed() >= super::restart::STABLE_RUN);
        let ctx = Context {
            restart: &self.spec.restart,
            shutting_down,
            ran_long_enough,
        };
        self.life.handle(event, &ctx)
    }

    pub fn info(&self) -> ContainerInfo {
        let time =
            |t: Option<SystemTime>| t.map(|t| humantime::format_rfc3339_nanos(t).to_string());
        ContainerInfo {
            name: self.name.clone(),
            state: self.state(),
            pid: self.pid.map(|p| p.as_raw()),
            restarts: self.restarts(),
            exit_code: self.exit_code,
            exit_reason: self.exit_reason.clone(),
            health: (self.health.status != HealthStatus::None).then_some(self.health.status),
            image: self.spec.image.clone(),
            image_id: self.image_id.clone(),
            started_at: time(self.started_at),
            finished_at: time(self.finished_at),
            error: self.error.clone(),
            waiting_for: self.waiting_for.clone(),
        }
    }
}

/// What `list` returns for each container (docs/api.md).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    pub state: State,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub exit_reason: Option<String>,
    /// "starting", "healthy" or "unhealthy"; absent without a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    pub image: String,
    pub image_id: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// While `creating`: the step it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}
