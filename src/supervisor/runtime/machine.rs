//! A container's life as one table: (state, event) → (new state, actions),
//! after s6-supervise's `actions[state][event]`. This is the only code
//! that assigns a container's state; the operations (ops/) feed it events
//! and carry out the actions it returns. No I/O here.
//!
//! The match in `Lifecycle::handle` has no catch-all arm on purpose: a new
//! state or event does not compile until every pair is decided.

use std::time::Duration;

use serde::Serialize;

use super::restart::{backoff_delay, should_restart};
use crate::supervisor::spec::RestartSpec;

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

/// What the table needs to know from outside the container.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub restart: &'a RestartSpec,
    pub shutting_down: bool,
    /// The run that just ended lasted long enough to reset the backoff.
    pub ran_long_enough: bool,
}

/// A container's lifecycle state and the counters its transitions use.
/// Only `handle` changes them.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: State,
    /// A stop was asked for: the run that ends must not restart.
    stop_requested: bool,
    /// A restart was asked for: the run that ends restarts whatever the
    /// restart policy says.
    restart_requested: bool,
    remove_requested: bool,
    restarts: u32,
    backoff_step: u32,
    /// Exit code of the run being cleaned up.
    last_exit: Option<i32>,
    /// Bumped at every Create so timers of an older run are ignored.
    run_id: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

type Outcome = (State, Vec<Action>);

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            state: State::Created,
            stop_requested: false,
            restart_requested: false,
            remove_requested: false,
            restarts: 0,
            backoff_step: 0,
            last_exit: None,
            run_id: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
    pub fn run_id(&self) -> u64 {
        self.run_id
    }
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }
    pub fn remove_requested(&self) -> bool {
        self.remove_requested
    }

    /// Applies one event; returns the actions to carry out, in order.
    pub fn handle(&mut self, event: Event, ctx: &Context<'_>) -> Vec<Action> {
        let (state, actions) = self.transition(event, ctx);
        self.state = state;
        if actions.contains(&Action::Create) {
            self.run_id += 1;
        }
        actions
    }

    fn transition(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        use State as S;
        let stay = (self.state, Vec::new());
        match (self.state, event) {
            // Asked to run.
            (S::Created | S::Exited | S::Waiting | S::Restarting, E::Start | E::Restart) => {
                self.start_request(ctx)
            }
            (S::Pulling | S::Creating | S::Running, E::Start) => stay,
            (S::Stopping | S::Cleaning, E::Start) => {
                // Run again once the current run has ended.
                self.stop_requested = false;
                self.restart_requested = true;
                stay
            }
            (S::Pulling, E::Restart) => stay,
            (S::Creating, E::Restart) => {
                self.restart_requested = true;
                (S::Creating, vec![Action::AbortCreate])
            }
            (S::Running, E::Restart) => {
                self.stop_requested = false;
                self.restart_requested = true;
                (S::Stopping, vec![Action::SignalStop])
            }
            (S::Stopping | S::Cleaning, E::Restart) => {
                self.stop_requested = false;
                self.restart_requested = true;
                stay
            }
            (S::Restarting, E::BackoffDone) => (S::Restarting, vec![Action::CheckGates]),

            // The gates' answers (stale ones, after a stop, are ignored).
            (
                S::Created | S::Exited | S::Waiting | S::Restarting | S::Pulling,
                E::DependenciesPending | E::DependenciesFailed | E::ImageMissing | E::Ready,
            ) if self.stop_requested || ctx.shutting_down => stay,
            (
                S::Created | S::Exited | S::Waiting | S::Restarting | S::Pulling,
                E::DependenciesPending,
            ) => (S::Waiting, Vec::new()),
            (
                S::Created | S::Exited | S::Waiting | S::Restarting | S::Pulling,
                E::DependenciesFailed,
            ) => {
                // It can never start: recorded as a failed start, no retry.
                self.stop_requested = true;
                self.last_exit = Some(EXIT_CANNOT_START);
                self.after_run(ctx)
            }
            (S::Pulling, E::ImageMissing) => stay,
            (S::Created | S::Exited | S::Waiting | S::Restarting, E::ImageMissing) => {
                (S::Pulling, vec![Action::StartPull])
            }
            (S::Created | S::Exited | S::Waiting | S::Restarting | S::Pulling, E::Ready) => {
                (S::Creating, vec![Action::Create])
            }

            // The pull.
            (S::Pulling, E::PullDone) => (S::Pulling, vec![Action::CheckGates]),
            (S::Pulling, E::PullFailed) => {
                self.last_exit = Some(EXIT_CANNOT_START);
                self.after_run(ctx)
            }

            // Creating.
            (S::Creating, E::Spawned) if self.stop_requested || self.restart_requested => {
                // Stopped while its last step ran: it never gets to run.
                (S::Stopping, vec![Action::RecordStart, Action::Kill])
            }
            (S::Creating, E::Spawned) => (S::Running, vec![Action::RecordStart]),
            (S::Creating, E::StartFailed(code) | E::Exited(code)) => {
                self.last_exit = Some(code);
                (S::Cleaning, vec![Action::Cleanup])
            }
            (S::Creating, E::Stop) => {
                self.stop_requested = true;
                self.restart_requested = false;
                (S::Creating, vec![Action::AbortCreate])
            }

            // Running and stopping.
            (S::Running | S::Stopping, E::Exited(code)) => {
                self.last_exit = Some(code);
                (S::Cleaning, vec![Action::Cleanup])
            }
            (S::Running, E::Stop) => {
                self.stop_requested = true;
                self.restart_requested = false;
                (S::Stopping, vec![Action::SignalStop])
            }
            (S::Stopping, E::Stop) => {
                self.stop_requested = true;
                self.restart_requested = false;
                stay
            }
            (S::Stopping, E::KillTimeout) => (S::Stopping, vec![Action::Kill]),

            // Cleaning.
            (S::Cleaning, E::CleanedUp) => self.after_run(ctx),
            (S::Cleaning, E::Stop) => {
                self.stop_requested = true;
                self.restart_requested = false;
                stay
            }

            // Stopping what is not running.
            (S::Created | S::Waiting | S::Restarting, E::Stop) => {
                self.stop_requested = true;
                (S::Exited, vec![Action::Finish])
            }
            (S::Pulling, E::Stop) => {
                self.stop_requested = true;
                (S::Exited, vec![Action::LeavePull, Action::Finish])
            }
            (S::Exited, E::Stop) => {
                self.stop_requested = true;
                stay
            }

            // Removal.
            (S::Created | S::Exited, E::Remove) => (S::Removed, vec![Action::Remove]),
            (S::Waiting | S::Restarting, E::Remove) => {
                (S::Removed, vec![Action::Finish, Action::Remove])
            }
            (S::Pulling, E::Remove) => (
                S::Removed,
                vec![Action::LeavePull, Action::Finish, Action::Remove],
            ),
            (S::Creating | S::Running | S::Stopping | S::Cleaning, E::Remove) => {
                self.remove_requested = true;
                self.transition(E::Stop, ctx)
            }

            // Everything else cannot happen in that state, or is stale (a
            // timer of a run that is over, a second exit): ignored.
            (
                S::Removed,
                E::Start
                | E::DependenciesPending
                | E::DependenciesFailed
                | E::ImageMissing
                | E::Ready
                | E::PullDone
                | E::PullFailed
                | E::Spawned
                | E::StartFailed(_)
                | E::Exited(_)
                | E::Stop
                | E::Restart
                | E::KillTimeout
                | E::BackoffDone
                | E::CleanedUp
                | E::Remove,
            )
            | (
                S::Created | S::Waiting | S::Exited | S::Restarting,
                E::PullDone | E::PullFailed | E::Spawned | E::StartFailed(_) | E::Exited(_),
            )
            | (
                S::Created | S::Waiting | S::Exited,
                E::KillTimeout | E::BackoffDone | E::CleanedUp,
            )
            | (S::Restarting, E::KillTimeout | E::CleanedUp)
            | (
                S::Pulling,
                E::Spawned | E::StartFailed(_) | E::Exited(_) | E::KillTimeout | E::BackoffDone,
            )
            | (S::Pulling, E::CleanedUp)
            | (
                S::Creating,
                E::PullDone | E::PullFailed | E::KillTimeout | E::BackoffDone | E::CleanedUp,
            )
            | (
                S::Creating | S::Running | S::Stopping | S::Cleaning,
                E::DependenciesPending | E::DependenciesFailed | E::ImageMissing | E::Ready,
            )
            | (
                S::Running,
                E::PullDone
                | E::PullFailed
                | E::Spawned
                | E::StartFailed(_)
                | E::KillTimeout
                | E::BackoffDone
                | E::CleanedUp,
            )
            | (
                S::Stopping,
                E::PullDone
                | E::PullFailed
                | E::Spawned
                | E::StartFailed(_)
                | E::BackoffDone
                | E::CleanedUp,
            )
            | (
                S::Cleaning,
                E::PullDone
                | E::PullFailed
                | E::Spawned
                | E::StartFailed(_)
                | E::Exited(_)
                | E::KillTimeout
                | E::BackoffDone,
            ) => stay,
        }
    }

    /// Start or Restart of a container at rest.
    fn start_request(&mut self, ctx: &Context<'_>) -> Outcome {
        if ctx.shutting_down {
            return (self.state, Vec::new());
        }
        if self.state != State::Restarting && self.state != State::Waiting {
            // A fresh start by request: the restart count starts over.
            self.restarts = 0;
            self.backoff_step = 0;
        }
        self.stop_requested = false;
        self.restart_requested = false;
        (self.state, vec![Action::CheckGates])
    }

    /// The end of a run (or of an attempt): run again, or rest.
    fn after_run(&mut self, ctx: &Context<'_>) -> Outcome {
        if ctx.ran_long_enough {
            self.backoff_step = 0;
        }
        let forced = std::mem::take(&mut self.restart_requested);
        let code = self.last_exit.unwrap_or(0);
        let wanted =
            forced || should_restart(ctx.restart, code, self.restarts, self.stop_requested);
        if self.remove_requested {
            return (State::Removed, vec![Action::Finish, Action::Remove]);
        }
        if ctx.shutting_down || !wanted {
            return (State::Exited, vec![Action::Finish]);
        }
        let mut actions = Vec::new();
        if forced {
            // Asked for: no backoff built up by earlier crashes applies.
            self.backoff_step = 0;
            actions.push(Action::TakePendingSpec);
        }
        self.restarts = self.restarts.saturating_add(1);
        let delay = backoff_delay(self.backoff_step);
        self.backoff_step = self.backoff_step.saturating_add(1);
        actions.push(Action::ScheduleRestart(delay));
        (State::Restarting, actions)
    }
}

/// Docker's exit code when the runtime itself could not start the container.
pub const EXIT_CANNOT_START: i32 = 125;

/// One row of the documented table.
#[derive(Debug, Clone)]
pub struct Row {
    pub from: State,
    pub event: Event,
    pub to: State,
    pub actions: Vec<Action>,
    /// The condition under which this row applies, when there are several.
    pub when: &'static str,
}

/// Every (state, event) pair under the conditions that change its
/// outcome, for docs/lifecycle.md and the test that keeps it true.
pub fn table() -> Vec<Row> {
    let always = RestartSpec {
        policy: crate::supervisor::spec::RestartPolicy::Always,
        max_retries: None,
    };
    let never = RestartSpec {
        policy: crate::supervisor::spec::RestartPolicy::No,
        max_retries: None,
    };
    let conditions: [(&'static str, &RestartSpec, bool); 3] = [
        ("policy restarts", &always, false),
        ("policy does not restart", &never, false),
        ("shutting down", &always, true),
    ];
    let mut rows = Vec::new();
    for from in State::ALL {
        for event in Event::ALL {
            let mut seen: Vec<Row> = Vec::new();
            for (when, restart, shutting_down) in conditions {
                let ctx = Context {
                    restart,
                    shutting_down,
                    ran_long_enough: false,
                };
                let mut m = Lifecycle {
                    state: from,
                    ..Lifecycle::new()
                };
                let actions = m.handle(event, &ctx);
                let row = Row {
                    from,
                    event,
                    to: m.state,
                    actions,
                    when,
                };
                if !seen
                    .iter()
                    .any(|r| r.to == row.to && r.actions == row.actions)
                {
                    seen.push(row);
                }
            }
            if seen.len() == 1 {
                seen[0].when = "";
            }
            rows.extend(seen);
        }
    }
    rows
}

/// The table as markdown: only the pairs that do something.
pub fn table_markdown() -> String {
    let mut out =
        String::from("| state | event | when | new state | actions |\n|---|---|---|---|---|\n");
    for r in table() {
        if r.to == r.from && r.actions.is_empty() {
            continue;
        }
        let actions: Vec<&str> = r.actions.iter().map(|a| a.name()).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.from.name(),
            r.event.name(),
            r.when,
            r.to.name(),
            actions.join(", ")
        ));
    }
    out
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
