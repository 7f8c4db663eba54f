//! Pulling a container's image from the daemon without blocking its loop:
//! `berth pull` runs as a child process (the network and the registry's
//! bytes stay out of the supervisor); its exit, reaped like any child,
//! starts the containers that were waiting for it.

use std::io::Read;
use std::process::{Command, Stdio};

use nix::unistd::Pid;

use super::container::State;
use super::manager::{Supervisor, say};
use super::spec::PullPolicy;
use crate::image::lookup::resolve;

pub struct PullJob {
    pub reference: String,
    pub waiting: Vec<String>,
    /// The pull's error output, read once it has exited (it is small: the
    /// progress lines go to /dev/null).
    stderr: Option<std::process::ChildStderr>,
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
                Ok((pid, stderr)) => {
                    say(format_args!(
                        "container {name}: pulling {reference} (pid {pid})"
                    ));
                    let waiting = vec![name.to_string()];
                    self.pulls.insert(
                        pid,
                        PullJob {
                            reference,
                            waiting,
                            stderr,
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

    fn spawn_pull(
        &self,
        reference: &str,
    ) -> std::io::Result<(Pid, Option<std::process::ChildStderr>)> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["pull", reference, "--root"])
            .arg(self.store.root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // The reaper collects it like any child; only its pid and stderr
        // are kept, so the Child handle may go.
        Ok((Pid::from_raw(child.id() as i32), child.stderr.take()))
    }

    /// A reaped child that was a pull: start (or fail) what waited on it.
    pub(super) fn on_pull_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(mut job) = self.pulls.remove(&pid) else {
            return false;
        };
        let mut output = String::new();
        if let Some(err) = job.stderr.take() {
            let _ = err.take(64 * 1024).read_to_string(&mut output);
        }
        // The pull's own last words ("berth: pull REF: why") name the cause.
        let reason = output
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("berth: ")
            .to_string();
        say(format_args!(
            "pull of {} exited with code {code}: {reason}",
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
            } else if reason.is_empty() {
                self.start_failed(
                    &name,
                    format!("pull of {} failed (exit {code})", job.reference),
                    125,
                );
            } else {
                self.start_failed(&name, reason.clone(), 125);
            }
        }
        true
    }
}
