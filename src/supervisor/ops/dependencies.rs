//! `depends_on` at run time: holding a container back until its
//! dependencies meet their conditions, starting it when they do, failing
//! it when they never will, and stopping in reverse order at shutdown.

use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::container::State;
use crate::supervisor::runtime::ordering::{Readiness, readiness, stoppable};
use crate::supervisor::say;

/// Exit code recorded for a container whose dependency failed for good.
const EXIT_DEPENDENCY_FAILED: i32 = 125;

impl Supervisor {
    /// Whether `name` may start now; if not, it is left waiting (or failed).
    pub(crate) fn dependencies_allow_start(&mut self, name: &str) -> bool {
        let Some(c) = self.containers.get(name) else {
            return false;
        };
        match readiness(&c.spec.depends_on, &self.containers) {
            Readiness::Ready => true,
            Readiness::Waiting(on) => {
                let message = format!("waiting for {}", on.join(", "));
                if let Some(c) = self.containers.get_mut(name) {
                    if c.state != State::Waiting {
                        say(format_args!("container {name}: {message}"));
                    }
                    c.state = State::Waiting;
                    c.error = Some(message);
                }
                false
            }
            Readiness::Failed(why) => {
                // Retrying cannot help until someone starts it again.
                if let Some(c) = self.containers.get_mut(name) {
                    c.state = State::Waiting;
                    c.stop_requested = true;
                }
                self.start_failed(name, why, EXIT_DEPENDENCY_FAILED);
                false
            }
        }
    }

    /// Something changed (a start, an exit, a health verdict): start every
    /// waiting container whose dependencies are now met.
    pub(crate) fn start_waiting_dependents(&mut self) {
        if self.shutting_down {
            return;
        }
        loop {
            let waiting: Vec<String> = self
                .containers
                .values()
                .filter(|c| c.state == State::Waiting)
                .map(|c| c.name.clone())
                .collect();
            let before = self
                .containers
                .values()
                .filter(|c| c.state == State::Waiting)
                .count();
            for name in &waiting {
                if self.dependencies_allow_start(name) {
                    self.launch(name);
                }
            }
            let after = self
                .containers
                .values()
                .filter(|c| c.state == State::Waiting)
                .count();
            // A failure can release (fail) further dependents in turn.
            if after == before || after == 0 {
                return;
            }
        }
    }

    /// Shutdown in reverse dependency order: stop whatever nothing live
    /// depends on; called again after every exit until all are down.
    pub(crate) fn continue_shutdown(&mut self) {
        for name in stoppable(&self.containers) {
            let _ = self.stop(&name);
        }
    }

    /// API `restart`: a running container is stopped and started again
    /// (whatever its policy); one that is not running is started.
    pub fn restart(&mut self, name: &str) -> Result<(), SupervisorError> {
        let live = self.container(name)?.state.is_live();
        if !live {
            return self.start(name);
        }
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        self.stop(name)?;
        if let Some(c) = self.containers.get_mut(name) {
            c.stop_requested = false;
            c.force_restart = true;
            c.restarts = 0;
            c.backoff_step = 0;
        }
        Ok(())
    }

    /// `on_unhealthy: restart`: stop it (stop signal, then SIGKILL after
    /// its timeout) and run it again whatever its restart policy.
    pub(crate) fn restart_unhealthy(&mut self, name: &str) {
        say(format_args!("container {name}: unhealthy, restarting it"));
        if self.stop(name).is_ok()
            && let Some(c) = self.containers.get_mut(name)
        {
            c.stop_requested = false;
            c.force_restart = true;
        }
    }
}
