//! Starting one container: its image resolved and pinned, its volumes
//! mounted, its config built, its cgroup made and limited, the prestart
//! hooks and the CNI attach run in the placement step, the spawn, and
//! what is recorded of the run. Poststart/poststop hooks too.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use nix::unistd::Pid;

use crate::image::lookup::{ResolvedImage, image_id, resolve};
use crate::image::refs;
use crate::image::usage::record_use;
use crate::kernel::cgroup::ContainerCgroup;
use crate::kernel::spawn_container;
use crate::supervisor::launch::{LaunchContext, SecuritySummary, prepare_launch};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::health::ExecTemplate;
use crate::supervisor::ops::lifecycle::EXIT_CANNOT_START;
use crate::supervisor::ops::network;
use crate::supervisor::output::logs::Stream;
use crate::supervisor::plugins::hooks::{HookState, HookStatus, run_hooks};
use crate::supervisor::plugins::volumes;
use crate::supervisor::runtime::container::{Container, OutputPipe, State};
use crate::supervisor::say;
use crate::supervisor::spec::service::NetworkMode;

impl Supervisor {
    pub(crate) fn try_launch(&mut self, name: &str) -> Result<Pid, (String, i32)> {
        let c = self
            .containers
            .get_mut(name)
            .ok_or_else(|| (format!("no container {name}"), EXIT_CANNOT_START))?;
        c.run_id += 1;
        // Shared: a GC cannot take this image's layers away between the
        // lookup and the record that keeps them alive.
        let cannot_start = |e: crate::image::ImageError| (e.to_string(), EXIT_CANNOT_START);
        let store_lock = refs::lock(&self.store, false).map_err(cannot_start)?;
        let image = resolve(&self.store, &c.spec.image).map_err(cannot_start)?;
        record_use(&c.dirs.base, &image).map_err(cannot_start)?;
        drop(store_lock);
        let plugins = &self.options.volume_plugins;
        let volume_paths = volumes::mount_volumes_with(self.store.root(), name, &c.spec, plugins)
            .map_err(|e| (e, EXIT_CANNOT_START))?;
        let started = self.spawn_prepared(name, &image, &volume_paths);
        if started.is_err() {
            self.release_volumes(name);
        }
        started
    }

    /// Plugin volumes are unmounted after every run (local ones need
    /// nothing); failures are warnings.
    pub(crate) fn release_volumes(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let plugins = &self.options.volume_plugins;
        for e in volumes::unmount_volumes_with(self.store.root(), name, &c.spec, plugins) {
            say(format_args!("container {name}: warning: {e}"));
            let _ = c.log.write_notice(&format!("warning: {e}"));
        }
    }

    /// From a resolved image and mounted volumes to a running container:
    /// its config, its cgroup with limits, the prestart hooks (run once it
    /// exists and before it runs anything), and the spawn.
    fn spawn_prepared(
        &mut self,
        name: &str,
        image: &ResolvedImage,
        volume_paths: &BTreeMap<String, PathBuf>,
    ) -> Result<Pid, (String, i32)> {
        let cgroup_path = format!("{}/{name}", self.options.cgroup_parent);
        let ctx = LaunchContext {
            config_dir: &self.options.config_dir,
            store_root: self.store.root(),
            volume_paths,
        };
        let c = self
            .containers
            .get_mut(name)
            .ok_or_else(|| (format!("no container {name}"), EXIT_CANNOT_START))?;
        let launch = prepare_launch(name, &c.spec, image, &c.dirs, &ctx)
            .map_err(|e| (e, EXIT_CANNOT_START))?;
        let cgroup = ContainerCgroup::create(&cgroup_path)
            .map_err(|e| (e.to_string(), EXIT_CANNOT_START))?;
        // Limits are in place before the container's first instruction.
        match cgroup.apply_resources(&launch.resources) {
            Ok(warnings) => {
                for w in warnings {
                    say(format_args!("container {name}: warning: {w}"));
                    let _ = c.log.write_notice(&format!("warning: {w}"));
                }
            }
            Err(e) => {
                let _ = cgroup.remove();
                return Err((e.to_string(), EXIT_CANNOT_START));
            }
        }
        let hooks = c.spec.hooks.prestart.clone();
        let bundle = c.dirs.base.clone();
        let cni = c.spec.network == NetworkMode::Cni;
        let hostname = launch.config.hostname.clone();
        let spec = c.spec.clone();
        let peers = if cni {
            self.cni_peers(name)
        } else {
            Vec::new()
        };
        let net_settings = &self.options.network;
        let mut attached = None;
        let c = self
            .containers
            .get_mut(name)
            .ok_or_else(|| (format!("no container {name}"), EXIT_CANNOT_START))?;
        let spawned = spawn_container(&launch.config, |pid| {
            cgroup.add_process(pid).map_err(|e| e.to_string())?;
            if cni {
                let att = network::attach_container(
                    net_settings,
                    name,
                    &hostname,
                    pid.as_raw(),
                    &spec,
                    &bundle,
                    &peers,
                )?;
                attached = Some(att);
            }
            let state = HookState::new(name, HookStatus::Creating, Some(pid.as_raw()), &bundle);
            run_hooks("prestart", &hooks, &state)
        });
        c.exec_template = Some(ExecTemplate {
            process: launch.config.process.clone(),
            security: launch.config.security.clone(),
            userns: launch.config.userns.is_some(),
        });
        drop(launch.config); // closes our copies of the container's pipe ends
        let pid = match spawned {
            Ok(pid) => pid,
            Err(e) => {
                let _ = cgroup.remove();
                self.detach_network(name);
                return Err((e.to_string(), e.exit_code()));
            }
        };
        let started = Started {
            pid,
            image_id: image_id(&image.record).to_string(),
            stop_signal: launch.stop_signal,
            summary: launch.summary,
            outputs: vec![
                OutputPipe {
                    fd: launch.stdout,
                    stream: Stream::Stdout,
                },
                OutputPipe {
                    fd: launch.stderr,
                    stream: Stream::Stderr,
                },
            ],
            cgroup,
            ip: attached.and_then(|a| a.ip),
        };
        let console_logs = self.options.console_logs;
        if let Some(c) = self.containers.get_mut(name) {
            record_start(c, started, console_logs);
        }
        Ok(pid)
    }

    /// OCI poststart/poststop hooks: a failure is a warning, the
    /// container's fate is unchanged (runtime-spec's rule).
    pub(crate) fn run_after_hooks(&mut self, name: &str, stage: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let (hooks, status) = match stage {
            "poststart" => (&c.spec.hooks.poststart, HookStatus::Running),
            _ => (&c.spec.hooks.poststop, HookStatus::Stopped),
        };
        if hooks.is_empty() {
            return;
        }
        let pid = c.pid.map(|p| p.as_raw());
        let state = HookState::new(name, status, pid, &c.dirs.base);
        if let Err(e) = run_hooks(stage, hooks, &state) {
            say(format_args!("container {name}: warning: {e}"));
            let _ = c.log.write_notice(&format!("warning: {e}"));
        }
    }
}

/// What a successful spawn hands to the container's record.
struct Started {
    pid: Pid,
    image_id: String,
    stop_signal: i32,
    summary: SecuritySummary,
    outputs: Vec<OutputPipe>,
    cgroup: ContainerCgroup,
    ip: Option<std::net::IpAddr>,
}

/// The container is running: its record says so, from its pid and
/// pipes to what isolation it was given.
fn record_start(c: &mut Container, s: Started, console_logs: bool) {
    c.ip = s.ip;
    c.state = State::Running;
    c.pid = Some(s.pid);
    c.image_id = Some(s.image_id);
    c.error = None;
    c.exit_code = None;
    c.exit_reason = None;
    c.started_at = Some(SystemTime::now());
    c.started_instant = Some(Instant::now());
    c.stop_signal = s.stop_signal;
    if console_logs {
        let console = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/console");
        c.log.set_console(&c.name, console.ok());
    }
    c.security = Some(s.summary);
    c.outputs = s.outputs;
    c.cgroup = Some(s.cgroup);
}
