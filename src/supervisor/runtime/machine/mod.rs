//! A container's life as one table: (state, event) → (new state, actions),
//! after s6-supervise's `actions[state][event]`. This is the only code
//! that assigns a container's state; the operations (ops/) feed it events
//! and carry out the actions it returns. No I/O here.
//!
//! `transition` picks the state's row (rows.rs); no row has a catch-all
//! arm, so a new state or event does not compile until every pair is
//! decided.

mod rows;
pub mod table;
mod words;

pub use words::{Action, Event, State};

use super::restart::{backoff_delay, should_restart};
use crate::supervisor::spec::RestartSpec;

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

pub(super) type Outcome = (State, Vec<Action>);

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

    /// A fresh machine placed in `state`, for the documented table.
    pub(super) fn in_state(state: State) -> Self {
        Lifecycle {
            state,
            ..Lifecycle::new()
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

    /// The table, one row per state: each row decides every event (no
    /// catch-all arm, so a new event does not compile until it is placed).
    fn transition(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        match self.state {
            State::Created | State::Exited => self.at_rest(event, ctx),
            State::Waiting => self.waiting(event, ctx),
            State::Pulling => self.pulling(event, ctx),
            State::Creating => self.creating(event, ctx),
            State::Running => self.running(event, ctx),
            State::Stopping => self.stopping(event, ctx),
            State::Cleaning => self.cleaning(event, ctx),
            State::Restarting => self.restarting(event, ctx),
            State::Removed => (State::Removed, Vec::new()),
        }
    }

    pub(super) fn stay(&self) -> Outcome {
        (self.state, Vec::new())
    }

    pub(super) fn ask_stop(&mut self) {
        self.stop_requested = true;
        self.restart_requested = false;
    }

    pub(super) fn ask_restart(&mut self) {
        self.stop_requested = false;
        self.restart_requested = true;
    }

    /// Stopped before it ran: at rest now, after `first`.
    pub(super) fn rest_now(&mut self, mut first: Vec<Action>) -> Outcome {
        self.stop_requested = true;
        first.push(Action::Finish);
        (State::Exited, first)
    }

    /// The gates' answer to CheckGates. One that arrives after a stop or
    /// during a shutdown is stale and changes nothing.
    pub(super) fn gate_answer(&mut self, gate: Event, ctx: &Context<'_>) -> Outcome {
        if self.stop_requested || ctx.shutting_down {
            return self.stay();
        }
        match gate {
            Event::DependenciesPending => (State::Waiting, Vec::new()),
            Event::DependenciesFailed => {
                // It can never start: recorded as a failed start, no retry.
                self.stop_requested = true;
                self.last_exit = Some(EXIT_CANNOT_START);
                self.after_run(ctx)
            }
            Event::ImageMissing => (State::Pulling, vec![Action::StartPull]),
            Event::Ready => (State::Creating, vec![Action::Create]),
            Event::Start
            | Event::PullDone
            | Event::PullFailed
            | Event::Spawned
            | Event::StartFailed(_)
            | Event::Exited(_)
            | Event::Stop
            | Event::Restart
            | Event::KillTimeout
            | Event::BackoffDone
            | Event::CleanedUp
            | Event::Remove => self.stay(),
        }
    }

    /// Start or Restart of a container at rest.
    pub(super) fn start_request(&mut self, ctx: &Context<'_>) -> Outcome {
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
    pub(super) fn after_run(&mut self, ctx: &Context<'_>) -> Outcome {
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

#[cfg(test)]
mod tests;
