//! Containers started through the API (`berth run`) rather than from the
//! config directory: named on the fly, optionally removed when they exit.

use std::fs;
use std::os::fd::OwnedFd;

use crate::supervisor::events::journal::kinds;
use crate::supervisor::launch::ContainerDirs;
use crate::supervisor::ops::jobs::JobKind;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::container::{Console, Container};
use crate::supervisor::say;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::validate::valid_container_name;

pub struct RunRequest {
    pub name: Option<String>,
    pub spec: Spec,
    /// Delete the container (record, writable layer, log) once it exits.
    pub remove_on_exit: bool,
    /// Register a waiter before starting, so even an immediate failure is
    /// reported to it: (token, include output).
    pub wait: Option<(u64, bool)>,
    /// `run -i`/`-t`: what the client attaches, and (with `-t`) the
    /// daemon's end that holds the terminal open.
    pub console: Option<(Console, Option<OwnedFd>)>,
}

impl Supervisor {
    /// Creates and starts an ephemeral container; returns its name.
    pub fn run_ephemeral(&mut self, req: RunRequest) -> Result<String, SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        let name = match req.name {
            Some(n) if !valid_container_name(&n) => {
                return Err(SupervisorError::Invalid(format!(
                    "container name {n:?} must be 1-63 letters, digits, '_', '.' or '-'"
                )));
            }
            Some(n) if self.containers.contains_key(&n) => {
                return Err(SupervisorError::Invalid(format!(
                    "a container named {n:?} already exists"
                )));
            }
            Some(n) => n,
            None => self.next_run_name(),
        };
        let dirs = ContainerDirs::new(&self.store.containers_dir(), &name);
        let mut container = Container::new(name.clone(), req.spec, dirs);
        container.remove_on_exit = req.remove_on_exit;
        container.ephemeral = true;
        if let Some((console, hold)) = req.console {
            container.console = Some(console);
            container.console_hold = hold;
        }
        self.containers.insert(name.clone(), container);
        self.emit(
            kinds::CONTAINER_CREATED,
            Some(&name),
            serde_json::json!({"ephemeral": true}),
        );
        if let Some((token, with_logs)) = req.wait {
            self.waiters.push(crate::supervisor::ops::wait::Waiter {
                token,
                container: name.clone(),
                with_logs,
            });
        }
        self.start(&name)?;
        Ok(name)
    }

    fn next_run_name(&mut self) -> String {
        loop {
            self.run_counter += 1;
            let name = format!("run-{}", self.run_counter);
            if !self.containers.contains_key(&name)
                && !self.store.containers_dir().join(&name).exists()
            {
                return name;
            }
        }
    }

    /// The Remove action: forgets the container and deletes its directory.
    /// The directory is renamed aside at once (a new container may take
    /// the name now) and deleted by a helper (a big writable layer takes
    /// a while).
    pub(crate) fn remove_container(&mut self, name: &str) {
        let Some(c) = self.containers.remove(name) else {
            return;
        };
        self.creations.remove(name);
        let base = c.dirs.base.clone();
        drop(c);
        self.emit(
            kinds::CONTAINER_REMOVED,
            Some(name),
            serde_json::Value::Null,
        );
        self.discard_dir(name, &base);
    }

    /// Moves a container's directory aside at once (a new container may
    /// take the name now) and deletes it in a helper (a big writable layer
    /// takes a while).
    pub(crate) fn discard_dir(&mut self, name: &str, base: &std::path::Path) {
        self.run_counter += 1;
        let trash = base.with_file_name(format!(".removed-{name}-{}", self.run_counter));
        match fs::rename(base, &trash) {
            Ok(()) => self.remove_tree(trash),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => say(format_args!(
                "container {name}: move {} aside: {e}",
                base.display()
            )),
        }
    }

    /// Deletes `dir` in a helper; a failure is logged when it answers.
    pub(crate) fn remove_tree(&mut self, dir: std::path::PathBuf) {
        let started =
            self.jobs.start(
                JobKind::RemoveTree,
                None,
                &[],
                move || match fs::remove_dir_all(&dir) {
                    Ok(()) => serde_json::json!({}),
                    Err(e) => {
                        serde_json::json!({"error": format!("remove {}: {e}", dir.display())})
                    }
                },
            );
        if let Err(e) = started {
            say(format_args!("{e}"));
        }
    }
}
