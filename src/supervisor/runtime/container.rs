//! One supervised container's runtime record, and the view of it the API
//! shows.

use std::os::fd::OwnedFd;
use std::time::{Instant, SystemTime};

use nix::unistd::Pid;
use serde::Serialize;

use crate::kernel::cgroup::ContainerCgroup;
use crate::supervisor::launch::{ContainerDirs, SecuritySummary};
use crate::supervisor::ops::health::{ExecTemplate, Health, HealthStatus};
use crate::supervisor::output::logs::{LogWriter, Stream};
use crate::supervisor::spec::Spec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Known, not started yet.
    Created,
    /// Waiting for its image to be pulled.
    Pulling,
    Running,
    /// Asked to stop, waiting for it to exit.
    Stopping,
    /// Waiting for its dependencies (`depends_on`) before it starts.
    Waiting,
    /// Exited; waiting out the backoff before running again.
    Restarting,
    /// Finished, and not going to run again by itself.
    Exited,
}

impl State {
    pub fn is_live(self) -> bool {
        matches!(self, State::Running | State::Stopping)
    }
}

/// A read end of the container's stdout or stderr pipe.
pub struct OutputPipe {
    pub fd: OwnedFd,
    pub stream: Stream,
}

pub struct Container {
    pub name: String,
    pub spec: Spec,
    pub dirs: ContainerDirs,
    pub state: State,
    pub pid: Option<Pid>,
    pub restarts: u32,
    pub exit_code: Option<i32>,
    /// Why the last start failed, in words.
    pub error: Option<String>,
    /// "exited", "signal", "oom_killed" or "start_failed".
    pub exit_reason: Option<String>,
    /// What the current (or last) run was given, for `inspect`.
    pub security: Option<SecuritySummary>,
    pub image_id: Option<String>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub started_instant: Option<Instant>,
    /// Someone asked for this stop; it must not restart.
    pub stop_requested: bool,
    /// Bumped at every start so timers of an older run are ignored.
    pub run_id: u64,
    pub backoff_step: u32,
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
    pub health: Health,
    /// How its health checks run (set at each start).
    pub exec_template: Option<ExecTemplate>,
    /// Run again when it exits whatever the restart policy says (an
    /// unhealthy container with `on_unhealthy: restart`, a changed spec).
    pub force_restart: bool,
    /// A reload changed the spec: it applies when the current run ends.
    pub pending_spec: Option<Spec>,
    /// Its address on the CNI network while it runs.
    pub ip: Option<std::net::IpAddr>,
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
            state: State::Created,
            pid: None,
            restarts: 0,
            exit_code: None,
            error: None,
            exit_reason: None,
            security: None,
            image_id: None,
            started_at: None,
            finished_at: None,
            started_instant: None,
            stop_requested: false,
            run_id: 0,
            backoff_step: 0,
            stop_signal: libc::SIGTERM,
            outputs: Vec::new(),
            log,
            log_bucket,
            cgroup: None,
            ephemeral: false,
            remove_on_exit: false,
            pulled: false,
            health: Health::default(),
            exec_template: None,
            force_restart: false,
            pending_spec: None,
            ip: None,
        }
    }

    pub fn info(&self) -> ContainerInfo {
        let time =
            |t: Option<SystemTime>| t.map(|t| humantime::format_rfc3339_nanos(t).to_string());
        ContainerInfo {
            name: self.name.clone(),
            state: self.state,
            pid: self.pid.map(|p| p.as_raw()),
            restarts: self.restarts,
            exit_code: self.exit_code,
            exit_reason: self.exit_reason.clone(),
            health: (self.health.status != HealthStatus::None).then_some(self.health.status),
            image: self.spec.image.clone(),
            image_id: self.image_id.clone(),
            started_at: time(self.started_at),
            finished_at: time(self.finished_at),
            error: self.error.clone(),
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
}
