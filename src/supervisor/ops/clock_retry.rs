//! The clock was set (NTP's first sync, `date -s`): pulls that failed on a
//! registry certificate "not valid yet" or "expired" while the clock was
//! not synchronized are tried again now, not after their backoff.

use std::os::fd::BorrowedFd;

use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::machine::State;
use crate::supervisor::say;

impl Supervisor {
    pub fn clock_change_fd(&self) -> Option<BorrowedFd<'_>> {
        self.clock_changes.as_ref().map(|c| c.fd())
    }

    pub fn on_clock_changed(&mut self) {
        if !self.clock_changes.as_ref().is_some_and(|c| c.take()) {
            return;
        }
        let waiting: Vec<String> = self
            .containers
            .values()
            .filter(|c| c.state() == State::Pulling && c.pull_failures.is_some())
            .map(|c| c.name.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        say(format_args!(
            "the clock was set: pulling again for {}",
            waiting.join(", ")
        ));
        for name in waiting {
            self.start_pull_for(&name);
        }
    }
}
