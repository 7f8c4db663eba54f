//! The bridge between the state machine (runtime/machine/) and the
//! operations: `fire` hands an event to a container's machine and carries
//! out the actions it returns. Events raised while actions run are queued
//! and handled in order, so no transition ever runs inside another.

use std::time::Instant;

use serde_json::json;

use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::machine::{Action, Event};
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;

impl Supervisor {
    /// Hands `event` to the container's state machine and runs what it
    /// asks for. Safe to call from inside an action: the event waits its
    /// turn.
    pub(crate) fn fire(&mut self, name: &str, event: Event) {
        self.queued.push_back((name.to_string(), event));
        if self.dispatching {
            return;
        }
        self.dispatching = true;
        while let Some((name, event)) = self.queued.pop_front() {
            let shutting_down = self.shutting_down;
            let Some(c) = self.containers.get_mut(&name) else {
                continue;
            };
            let actions = c.handle(event, shutting_down);
            for action in actions {
                self.execute(&name, action);
            }
        }
        self.dispatching = false;
    }

    fn execute(&mut self, name: &str, action: Action) {
        match action {
            Action::CheckGates => self.check_gates(name),
            Action::StartPull => self.start_pull_for(name),
            Action::LeavePull => self.leave_pull(name),
            Action::Create => self.create(name),
            Action::AbortCreate => self.abort_creation(name),
            Action::RecordStart => self.record_start(name),
            Action::SignalStop => self.signal_stop(name),
            Action::Kill => self.kill_now(name),
            Action::Cleanup => self.cleanup(name),
            Action::TakePendingSpec => self.take_pending_spec(name),
            Action::ScheduleRestart(delay) => self.schedule_restart(name, delay),
            Action::Finish => self.finish(name),
            Action::Remove => self.remove_container(name),
        }
    }

    fn take_pending_spec(&mut self, name: &str) {
        if let Some(c) = self.containers.get_mut(name)
            && let Some(spec) = c.pending_spec.take()
        {
            say(format_args!(
                "container {name}: starting again with its new spec"
            ));
            c.spec = spec;
        }
    }

    fn schedule_restart(&mut self, name: &str, delay: std::time::Duration) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let (run_id, restarts, code) = (c.run_id(), c.restarts(), c.exit_code);
        self.timers
            .schedule_in(Instant::now(), delay, name, run_id, TimerKind::Restart);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let data = json!({"delay_ms": delay_ms, "restarts": restarts, "exit_code": code});
        self.emit(kinds::CONTAINER_RESTARTING, Some(name), data);
        self.complete_waiters(name);
    }

    /// At rest: waiters get their answer; an ephemeral `--rm` container
    /// goes; dependents (or the shutdown) move on.
    fn finish(&mut self, name: &str) {
        self.complete_waiters(name);
        if self.containers.get(name).is_some_and(|c| {
            c.remove_on_exit && c.state() != crate::supervisor::runtime::machine::State::Removed
        }) {
            self.fire(name, Event::Remove);
        }
        if self.shutting_down {
            self.continue_shutdown();
        } else {
            self.start_waiting_dependents();
        }
    }
}
