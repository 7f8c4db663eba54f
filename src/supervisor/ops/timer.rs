//! Due timers, turned into events: a restart backoff ran out, a stop
//! timeout ran out, a health check is due or overdue, the notifier may be
//! started again. A timer of an older run is ignored.

use std::time::Instant;

use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::runtime::timers::{Timer, TimerKind};

impl Supervisor {
    pub fn fire_due_timers(&mut self) {
        for t in self.timers.pop_due(Instant::now()) {
            self.on_timer(t);
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        if timer.kind == TimerKind::Notifier {
            self.start_notifier();
            return;
        }
        if timer.kind == TimerKind::HostNetwork {
            self.start_host_network();
            return;
        }
        if timer.kind == TimerKind::ApplyCheck {
            return self.judge_apply();
        }
        if matches!(
            timer.kind,
            TimerKind::UpdateCheck | TimerKind::UpdateRetry | TimerKind::UpdateStable
        ) {
            return self.on_update_timer(&timer.container, timer.kind, timer.run_id);
        }
        let Some(c) = self.containers.get(&timer.container) else {
            return;
        };
        if c.run_id() != timer.run_id {
            return;
        }
        let name = timer.container;
        match timer.kind {
            TimerKind::Restart => self.fire(&name, Event::BackoffDone),
            TimerKind::Kill if c.state() == State::Stopping => {
                crate::supervisor::say(format_args!(
                    "container {name}: stop timeout, sending SIGKILL"
                ));
                self.fire(&name, Event::KillTimeout);
            }
            TimerKind::Kill => {}
            TimerKind::Health if c.state() == State::Running => self.run_health_check(&name),
            TimerKind::Health => {}
            TimerKind::HealthTimeout => self.health_timeout(&name),
            TimerKind::PullRetry if c.state() == State::Pulling => self.start_pull_for(&name),
            TimerKind::PullRetry => {}
            TimerKind::GateCheck => self.on_gate_timer(&name, timer.at),
            TimerKind::Notifier
            | TimerKind::HostNetwork
            | TimerKind::UpdateCheck
            | TimerKind::UpdateRetry
            | TimerKind::UpdateStable
            | TimerKind::ApplyCheck => {}
        }
    }
}
