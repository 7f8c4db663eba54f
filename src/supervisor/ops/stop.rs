//! Stopping containers: by the API (stop, kill, restart), when unhealthy,
//! and at shutdown in reverse dependency order. The signals are sent
//! here; what a stop means for the container's state is the machine's.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};

use crate::kernel::cgroup::ContainerCgroup;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::runtime::ordering::stoppable;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::RestartPolicy;

impl Supervisor {
    /// API `stop`: like `stop`, and remembered for `unless-stopped`.
    pub fn stop_by_request(&mut self, name: &str) -> Result<(), SupervisorError> {
        let c = self.container(name)?;
        if c.spec.restart.policy == RestartPolicy::UnlessStopped {
            let marker = c.dirs.stopped_marker();
            if let Err(e) = std::fs::create_dir_all(&c.dirs.base).and_then(|_| {
                crate::supervisor::writes::write_file(
                    &marker,
                    b"",
                    crate::supervisor::writes::WriteKind::State,
                )
            }) {
                say(format_args!(
                    "container {name}: write {}: {e}",
                    marker.display()
                ));
            }
        }
        self.stop(name)
    }

    /// The stop signal now, SIGKILL after the stop timeout. No restart
    /// follows.
    pub fn stop(&mut self, name: &str) -> Result<(), SupervisorError> {
        self.container(name)?;
        self.fire(name, Event::Stop);
        Ok(())
    }

    /// API `restart`: stop (if running) and run again.
    pub fn restart(&mut self, name: &str) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        let c = self.container(name)?;
        let _ = std::fs::remove_file(c.dirs.stopped_marker());
        self.fire(name, Event::Restart);
        Ok(())
    }

    /// `on_unhealthy: restart`.
    pub(crate) fn restart_unhealthy(&mut self, name: &str) {
        say(format_args!("container {name}: unhealthy, restarting it"));
        self.fire(name, Event::Restart);
    }

    /// The SignalStop action.
    pub(crate) fn signal_stop(&mut self, name: &str) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let Some(pid) = c.pid else {
            return;
        };
        let _ = kill(
            pid,
            Signal::try_from(c.stop_signal).unwrap_or(Signal::SIGTERM),
        );
        let timeout = Duration::from_secs(c.spec.stop_timeout);
        let run_id = c.run_id();
        self.timers
            .schedule_in(Instant::now(), timeout, name, run_id, TimerKind::Kill);
    }

    /// The Kill action.
    pub(crate) fn kill_now(&mut self, name: &str) {
        if let Some(pid) = self.containers.get(name).and_then(|c| c.pid) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }

    pub fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        say(format_args!(
            "shutting down: stopping {} containers",
            self.containers.len()
        ));
        self.shutting_down = true;
        for pid in self.pulls.keys() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        // Not running: nothing to wait for. Running: dependents first.
        let idle: Vec<String> = self
            .containers
            .values()
            .filter(|c| c.state() != State::Running)
            .map(|c| c.name.clone())
            .collect();
        for name in idle {
            self.fire(&name, Event::Stop);
        }
        self.continue_shutdown();
    }

    /// Stops the running containers nothing live depends on any more.
    pub(crate) fn continue_shutdown(&mut self) {
        for name in stoppable(&self.containers) {
            self.fire(&name, Event::Stop);
        }
    }

    /// Removes what is left of the containers' cgroups and their parent.
    pub fn finish_shutdown(&mut self) {
        for c in self.containers.values_mut() {
            if let Some(cg) = c.cgroup.take()
                && let Err(e) = cg.remove()
            {
                say(format_args!("container {}: {e}", c.name));
            }
        }
        let parent = ContainerCgroup::load(&self.options.cgroup_parent);
        if parent.exists() {
            let _ = parent.remove();
        }
    }
}
