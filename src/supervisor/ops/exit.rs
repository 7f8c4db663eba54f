//! The end of a run: a reaped container process is reported, and what the
//! run held (cgroup, network, plugin volumes, poststop hooks) is released
//! — by a helper when a plugin or hook is involved — before the machine
//! decides between a restart and rest.

use std::path::PathBuf;

use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::kernel::cgroup::ContainerCgroup;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::create::Creation;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::plugins::hooks::{HookState, HookStatus, run_hooks};
use crate::supervisor::plugins::network::{self, NetworkSettings, STATE_FILE};
use crate::supervisor::plugins::volumes::{self, PluginSettings};
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::say;
use crate::supervisor::spec::Spec;

impl Supervisor {
    /// A reaped child: a container's main process, a helper, or (as PID 1)
    /// an orphan.
    pub fn on_exit(&mut self, pid: Pid, code: i32) {
        if self.on_job_exit(pid, code)
            || self.on_pull_exit(pid, code)
            || self.on_health_exit(pid, code)
            || self.on_exec_exit(pid, code)
            || self.on_notifier_exit(pid, code)
            || self.on_host_network_exit(pid, code)
        {
            return;
        }
        let Some(name) = self
            .containers
            .values()
            .find(|c| c.pid == Some(pid))
            .map(|c| c.name.clone())
        else {
            return;
        };
        let starting = self.containers.get(&name).map(|c| c.state()) == Some(State::Creating)
            && matches!(self.creations.get(&name), Some(Creation::Starting { .. }));
        if starting && !self.poll_starting(&name) {
            // Released and gone before its verdict was read: it is there
            // now. If it exec'd, its record and pipes are attached.
            self.creations.remove(&name);
        }
        // Whatever it wrote before exiting belongs in its log before anyone
        // waiting for the exit reads that log.
        self.drain_outputs(&name);
        if let Some(c) = self.containers.get_mut(&name) {
            c.pid = None;
            // The run's terminal ends with it.
            (c.console, c.console_hold) = (None, None);
        }
        let ran = matches!(
            self.containers.get(&name).map(|c| c.state()),
            Some(State::Running | State::Stopping)
        );
        if ran {
            self.report_exit(&name, code);
        }
        self.fire(&name, Event::Exited(code));
    }

    /// Logs and journals the end of a run that had started.
    fn report_exit(&mut self, name: &str, code: i32) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let oom_killed = c.cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
        let reason = exit_reason(code, oom_killed);
        say(format_args!(
            "container {name}: exited with code {code} ({reason})"
        ));
        if oom_killed {
            let _ = c
                .log
                .write_notice("killed: out of memory (the container's memory limit)");
        }
        c.exit_reason = Some(reason.to_string());
        c.exit_code = Some(code);
        c.finished_at = Some(std::time::SystemTime::now());
        let stopped = c.stop_requested();
        self.emit(
            kinds::CONTAINER_EXITED,
            Some(name),
            json!({"exit_code": code, "reason": reason}),
        );
        if oom_killed {
            self.emit(
                kinds::CONTAINER_OOM_KILLED,
                Some(name),
                json!({"exit_code": code}),
            );
        }
        if stopped {
            self.emit(
                kinds::CONTAINER_STOPPED,
                Some(name),
                json!({"exit_code": code}),
            );
        }
    }

    /// The Cleanup action. Without plugins or hooks to call, and with a
    /// cgroup that goes at once, the run is released here; otherwise a
    /// helper does it and the machine hears CleanedUp when it is done.
    pub(crate) fn cleanup(&mut self, name: &str) {
        self.abort_creation(name);
        self.health_stopped(name);
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if c.exit_code.is_none() {
            c.finished_at = Some(std::time::SystemTime::now());
        }
        let cgroup = c.cgroup.take();
        let had_ip = c.ip.take().is_some();
        let cni_state = c.dirs.base.join(STATE_FILE);
        let plugins = volumes::uses_plugins(&c.spec);
        let poststop = c.exec_done && !c.hooks().poststop.is_empty();
        let needs_helper = plugins || poststop || cni_state.exists();
        if had_ip {
            self.refresh_peer_hosts();
        }
        if !needs_helper && cgroup.as_ref().is_none_or(|cg| cg.remove_now()) {
            return self.fire(name, Event::CleanedUp);
        }
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let release = Release {
            container: name.to_string(),
            spec: Spec {
                hooks: c.hooks(),
                ..c.spec.clone()
            },
            base: c.dirs.base.clone(),
            store_root: self.store.root().to_path_buf(),
            volume_plugins: self.options.volume_plugins.clone(),
            network: self.options.network.clone(),
            cgroup,
            plugins,
            poststop,
        };
        let owner = Some((name.to_string(), c.run_id()));
        let started = self
            .jobs
            .start(JobKind::Cleanup, owner, &[], move || release.run());
        if let Err(e) = started {
            say(format_args!("container {name}: {e}"));
            self.fire(name, Event::CleanedUp);
        }
    }

    /// The cleanup helper answered (or died): the run is over either way.
    pub(crate) fn cleaned_up(&mut self, done: JobDone) {
        self.log_warnings(&done);
        let Some((name, _)) = done.container.clone() else {
            return;
        };
        if done.answer == Value::Null {
            say(format_args!(
                "container {name}: cleanup helper exited with code {} before it finished",
                done.exit_code
            ));
        }
        self.fire(&name, Event::CleanedUp);
    }
}

/// What a helper releases after a run: cgroup, plugin volumes, the CNI
/// attachment, poststop hooks. Failures are warnings.
struct Release {
    container: String,
    spec: Spec,
    base: PathBuf,
    store_root: PathBuf,
    volume_plugins: PluginSettings,
    network: NetworkSettings,
    cgroup: Option<ContainerCgroup>,
    plugins: bool,
    poststop: bool,
}

impl Release {
    fn run(self) -> Value {
        let mut warnings: Vec<String> = Vec::new();
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.remove()
        {
            warnings.push(e.to_string());
        }
        let (name, spec) = (&self.container, &self.spec);
        if self.plugins {
            let root = &self.store_root;
            warnings.extend(volumes::unmount_volumes_with(
                root,
                name,
                spec,
                &self.volume_plugins,
            ));
            let _ = std::fs::remove_file(self.base.join(volumes::MOUNTED_MARKER));
        }
        let cni_state = self.base.join(STATE_FILE);
        if cni_state.exists()
            && let Err(e) = network::detach(&self.network, name, None, &cni_state)
        {
            warnings.push(e.to_string());
        }
        if self.poststop {
            let state = HookState::new(name, HookStatus::Stopped, None, &self.base);
            if let Err(e) = run_hooks("poststop", &spec.hooks.poststop, &state) {
                warnings.push(e);
            }
        }
        json!({ "warnings": warnings })
    }
}

/// Why a run ended, in the words `list` and `inspect` use: "oom_killed"
/// when the memory cgroup killed it, "signal" for any other death by
/// signal (code 128+N), "exited" otherwise.
fn exit_reason(code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "oom_killed"
    } else if code > 128 {
        "signal"
    } else {
        "exited"
    }
}
