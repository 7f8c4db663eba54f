//! The state machine's vocabulary: a container's states, the events that
//! move it, and the actions a transition asks for, with the names the
//! documented table uses.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Known, never started by this daemon.
    Created,
    /// Held back by `depends_on` until its dependencies are ready.
    Waiting,
    /// Waiting for its image to be pulled.
    Pulling,
    /// Being set up: volumes, cgroup, the paused child, network and
    /// prestart hooks (slow steps run in helper processes).
    Creating,
    Running,
    /// Asked to stop, waiting for it to exit.
    Stopping,
    /// Its run ended; cgroup, network, volumes and poststop hooks are
    /// being released before anything else happens to it.
    Cleaning,
    /// Waiting out the backoff before running again.
    Restarting,
    /// Finished, and not going to run again by itself.
    Exited,
    /// Deleted (record, writable layer, log); the record is dropped.
    Removed,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Created,
        State::Waiting,
        State::Pulling,
        State::Creating,
        State::Running,
        State::Stopping,
        State::Cleaning,
        State::Restarting,
        State::Exited,
        State::Removed,
    ];

    /// Has a process (or is about to have one) that must end before the
    /// container is at rest.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            State::Creating | State::Running | State::Stopping | State::Cleaning
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Waiting => "waiting",
            State::Pulling => "pulling",
            State::Creating => "creating",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Cleaning => "cleaning",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Removed => "removed",
        }
    }
}

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Run it: at boot, by the API, by a reload that added it.
    Start,
    /// The gates were checked: a dependency is not ready yet.
    DependenciesPending,
    /// The gates were checked: a dependency can never be met.
    DependenciesFailed,
    /// The gates were checked: its image must be pulled first.
    ImageMissing,
    /// The gates were checked: nothing holds it back.
    Ready,
    PullDone,
    PullFailed,
    /// Its process has exec'd.
    Spawned,
    /// A step of creating it failed, with the exit code to record.
    StartFailed(i32),
    /// Its main process exited with this code (128+N for signal N).
    Exited(i32),
    /// Stop it and keep it stopped (API stop, shutdown, a removed spec).
    Stop,
    /// Stop it and run it again (API restart, unhealthy, a changed spec).
    Restart,
    /// The stop timeout ran out.
    KillTimeout,
    /// The restart backoff ran out.
    BackoffDone,
    /// Everything its run held has been released.
    CleanedUp,
    /// Delete it once it is at rest.
    Remove,
}

impl Event {
    /// One of each, for the table in docs/lifecycle.md and its test.
    pub const ALL: [Event; 16] = [
        Event::Start,
        Event::DependenciesPending,
        Event::DependenciesFailed,
        Event::ImageMissing,
        Event::Ready,
        Event::PullDone,
        Event::PullFailed,
        Event::Spawned,
        Event::StartFailed(125),
        Event::Exited(1),
        Event::Stop,
        Event::Restart,
        Event::KillTimeout,
        Event::BackoffDone,
        Event::CleanedUp,
        Event::Remove,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::DependenciesPending => "dependencies_pending",
            Event::DependenciesFailed => "dependencies_failed",
            Event::ImageMissing => "image_missing",
            Event::Ready => "ready",
            Event::PullDone => "pull_done",
            Event::PullFailed => "pull_failed",
            Event::Spawned => "spawned",
            Event::StartFailed(_) => "start_failed",
            Event::Exited(_) => "exited",
            Event::Stop => "stop",
            Event::Restart => "restart",
            Event::KillTimeout => "kill_timeout",
            Event::BackoffDone => "backoff_done",
            Event::CleanedUp => "cleaned_up",
            Event::Remove => "remove",
        }
    }
}

/// What the operations must do after a transition, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Check dependencies and the image; the answer comes back as
    /// DependenciesPending, DependenciesFailed, ImageMissing or Ready.
    CheckGates,
    /// Start (or join) a pull of its image.
    StartPull,
    /// No longer wait for the pull it was waiting for.
    LeavePull,
    /// Begin creating it (a new run: timers of the old one are void).
    Create,
    /// Kill the helper or the paused child of a creation in progress.
    AbortCreate,
    /// Record the run: pid, start time, health checks, poststart hooks,
    /// dependents.
    RecordStart,
    /// Send the stop signal and arm the stop timeout.
    SignalStop,
    /// SIGKILL.
    Kill,
    /// Release what the run held (cgroup, network, volumes, poststop).
    Cleanup,
    /// A reload changed its spec while it ran: the new one applies now.
    TakePendingSpec,
    /// Run again after this backoff.
    ScheduleRestart(Duration),
    /// At rest: answer waiters, let dependents (or the shutdown) go on.
    Finish,
    /// Delete it.
    Remove,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::CheckGates => "check_gates",
            Action::StartPull => "start_pull",
            Action::LeavePull => "leave_pull",
            Action::Create => "create",
            Action::AbortCreate => "abort_create",
            Action::RecordStart => "record_start",
            Action::SignalStop => "signal_stop",
            Action::Kill => "kill",
            Action::Cleanup => "cleanup",
            Action::TakePendingSpec => "take_pending_spec",
            Action::ScheduleRestart(_) => "schedule_restart",
            Action::Finish => "finish",
            Action::Remove => "remove",
        }
    }
}
