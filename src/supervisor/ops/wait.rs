//! Clients waiting for a container's run to end (`wait`, `run` with
//! wait): registered with a token from the API layer, completed when the
//! run ends, and handed back to the API layer to answer.

use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::output::logs::LogEntry;
use crate::supervisor::runtime::container::{ContainerInfo, State};

#[derive(Debug, Clone)]
pub struct Waiter {
    pub token: u64,
    pub container: String,
    /// Include the container's output in the completion (a removed
    /// container's log is gone afterwards).
    pub with_logs: bool,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub token: u64,
    pub info: ContainerInfo,
    pub logs: Option<Vec<LogEntry>>,
}

impl Supervisor {
    /// Waits for the end of the container's current run; a container that
    /// is not running (and not about to restart) completes at once.
    pub fn add_waiter(
        &mut self,
        name: &str,
        token: u64,
        with_logs: bool,
    ) -> Result<(), SupervisorError> {
        let state = self.container(name)?.state();
        self.waiters.push(Waiter {
            token,
            container: name.to_string(),
            with_logs,
        });
        if matches!(state, State::Exited | State::Created) {
            self.complete_waiters(name);
        }
        Ok(())
    }

    /// A client went away: forget what it was waiting for.
    pub fn cancel_waiter(&mut self, token: u64) {
        self.waiters.retain(|w| w.token != token);
        self.forget_pull_client(token);
        self.forget_update_client(token);
        self.forget_apply_client(token);
    }

    pub(crate) fn complete_waiters(&mut self, name: &str) {
        let (done, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.container == name);
        self.waiters = rest;
        let Ok(c) = self.container(name) else { return };
        let info = c.info();
        for w in done {
            let logs = w
                .with_logs
                .then(|| self.logs(name, None).unwrap_or_default());
            self.completions.push(Completion {
                token: w.token,
                info: info.clone(),
                logs,
            });
        }
    }

    pub fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.completions)
    }
}
