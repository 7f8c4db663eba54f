//! Pulling a container's image from the daemon without blocking its loop:
//! `berth pull` runs as a child process (the network and the registry's
//! bytes stay out of the supervisor); its exit, reaped like any child,
//! starts the containers that were waiting for it.

use std::process::{Command, Stdio};

use nix::unistd::Pid;

use super::container::State;
use super::manager::{Supervisor, say};
use super::spec::PullPolicy;
use crate::image::lookup::resolve;

pub struct PullJob {
    pub reference: String,
    pub waiting: Vec<String>,
}

impl Supervisor {
    /// True when the container must wait for a pull first (one is started
    /// or already running for its image).
    pub(super) fn needs_pull(&mut self, name: &str) -> bool {
        let Some(c) = self.containers.get(name) else {
            return false;
        };
        let missing = matches!(
            resolve(&self.store, &c.spec.image),
            Err(crate::image::ImageError::NotFound(_))
        );
        let wanted = match c.spec.pull {
            PullPolicy::Never => false,
            PullPolicy::Missing => missing,
            PullPolicy::Always => !c.pulled,
        };
        if !wanted {
            return false;
        }
        let reference = c.spec.image.clone();
        if let Some(job) = self.pulls.values_mut().find(|j| j.reference == reference) {
            job.waiting.push(name.to_string());
        } else {
            match self.spawn_pull(&reference) {
                Ok(pid) => {
                    say(format_args!(
                        "container {name}: pulling {reference} (pid {pid})"
                    ));
                    self.pulls.insert(
                        pid,
                        PullJob {
                            reference,
                            waiting: vec![name.to_string()],
                        },
                    );
                }
                Err(e) => {
                    say(format_args!(
                        "container {name}: cannot start a pull of {reference}: {e}"
                    ));
                    return false;
                }
            }
        }
        if let Some(c) = self.containers.get_mut(name) {
            c.state = State::Pulling;
        }
        true
    }

    fn spawn_pull(&self, reference: &str) -> std::io::Result<Pid> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["pull", reference, "--root"])
            .arg(self.store.root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Pid::from_raw(child.id() as i32))
    }

    /// A reaped child that was a pull: start (or fail) what waited on it.
    pub(super) fn on_pull_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(job) = self.pulls.remove(&pid) else {
            return false;
        };
        say(format_args!(
            "pull of {} exited with code {code}",
            job.reference
        ));
        for name in job.waiting {
            let Some(c) = self.containers.get_mut(&name) else {
                continue;
            };
            if c.state != State::Pulling {
                continue; // stopped meanwhile
            }
            c.pulled = true;
            if code == 0 || resolve(&self.store, &c.spec.image).is_ok() {
                self.launch_now(&name);
            } else {
                let message = format!(
                    "pull of {} failed (exit {code}); see the daemon log",
                    job.reference
                );
                self.start_failed(&name, message, 125);
            }
        }
        true
    }
}
