//! Creating a container (the machine's Create action), in steps that never
//! wait: its image pinned; its plugin volumes mounted by a helper; its
//! config built, its cgroup made and limited, its child cloned and paused;
//! its network attached and prestart hooks run by a helper while the child
//! waits; then "go", and the child's error pipe polled until it execs.
//! Each step's end is an event for the machine (Spawned, StartFailed).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::image::lookup::{ResolvedImage, image_id, resolve};
use crate::image::refs;
use crate::image::usage::record_use;
use crate::kernel::cgroup::ContainerCgroup;
use crate::kernel::start_clock::{Mark, monotonic_ns};
use crate::kernel::{PausedContainer, Starting, spawn_paused};
use crate::supervisor::launch::devices::{GivenDevice, needs_lookup};
use crate::supervisor::launch::{Launch, LaunchContext, SecuritySummary, prepare_launch};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::ops::network::attach_container;
use crate::supervisor::plugins::cdi::CdiEdits;
use crate::supervisor::plugins::hooks::{HookState, HookStatus, run_hooks};
use crate::supervisor::plugins::volumes;
use crate::supervisor::runtime::container::Container;
use crate::supervisor::runtime::health::ExecTemplate;
use crate::supervisor::runtime::machine::{EXIT_CANNOT_START, Event};
use crate::supervisor::spec::service::NetworkMode;

/// A creation in progress: which step it waits on.
#[derive(Debug)]
pub enum Creation {
    /// A helper pins its image (when a pull holds the store's lock) and
    /// mounts its plugin volumes.
    Volumes { image: Option<Box<ResolvedImage>> },
    /// The child waits for "go" while a helper attaches its network and
    /// runs its prestart hooks.
    Placing {
        paused: PausedContainer,
        prepared: Box<Prepared>,
    },
    /// Released: its error pipe says when it has exec'd.
    Starting {
        starting: Starting,
        prepared: Box<Prepared>,
    },
}

/// What a created run hands to the container's record once it runs.
#[derive(Debug)]
pub struct Prepared {
    pub(crate) image_id: String,
    pub(crate) stop_signal: i32,
    pub(crate) summary: SecuritySummary,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    pub(crate) cgroup: ContainerCgroup,
    pub(crate) exec_template: ExecTemplate,
    pub(crate) ip: Option<std::net::IpAddr>,
    /// Where the start spent its time (kernel/start_clock.rs), filled in
    /// once the child has exec'd; the started event carries it.
    pub(crate) start_stages: Vec<(&'static str, std::time::Duration)>,
}

/// A failed step: the message, and the exit code recorded for it.
pub(crate) type StepError = (String, i32);

pub(crate) fn cannot_start(e: impl ToString) -> StepError {
    (e.to_string(), EXIT_CANNOT_START)
}

impl Supervisor {
    /// The Create action: pin the image, then volumes (a helper when a
    /// plugin is involved) and the spawn.
    pub(crate) fn create(&mut self, name: &str) {
        if let Err((message, code)) = self.begin_create(name) {
            self.creation_failed(name, message, code);
        }
    }

    fn begin_create(&mut self, name: &str) -> Result<(), StepError> {
        let c = self
            .containers
            .get_mut(name)
            .ok_or_else(|| cannot_start(format!("no container {name}")))?;
        c.exec_done = false;
        c.error = None;
        // Shared: a GC cannot take this image's layers away between the
        // lookup and the record that keeps them alive. Held by a pull that
        // commits: then a helper waits for it instead of the loop.
        let pinned = match refs::try_lock_shared(&self.store).map_err(cannot_start)? {
            Some(_lock) => {
                let image = resolve(&self.store, c.image_ref()).map_err(cannot_start)?;
                record_use(&c.dirs.base, &image, !c.ephemeral).map_err(cannot_start)?;
                Some(image)
            }
            None => None,
        };
        let plugins = volumes::uses_plugins(&c.spec);
        // Host devices may sit on any filesystem (and privileged walks all
        // of /dev): a helper looks them up.
        let devices = needs_lookup(&c.spec);
        if let (Some(image), false, false) = (&pinned, plugins, devices) {
            let paths = volumes::mount_volumes_with(
                self.store.root(),
                name,
                &c.spec,
                &self.options.volume_plugins,
            )
            .map_err(cannot_start)?;
            return self.spawn_step(name, image, &paths, &[], &CdiEdits::default());
        }
        self.prepare_in_helper(name, pinned, plugins)
    }

    /// Config, cgroup with limits, and the paused clone; then placement by
    /// a helper if the network or prestart hooks need one, else "go".
    pub(crate) fn spawn_step(
        &mut self,
        name: &str,
        image: &ResolvedImage,
        volume_paths: &BTreeMap<String, PathBuf>,
        devices: &[GivenDevice],
        cdi: &CdiEdits,
    ) -> Result<(), StepError> {
        let begin = monotonic_ns();
        let ctx = LaunchContext {
            config_dir: &self.options.config_dir,
            store_root: self.store.root(),
            volume_paths,
            devices,
            cdi,
        };
        let cgroup_path = format!("{}/{name}", self.options.cgroup_parent);
        let c = self
            .containers
            .get_mut(name)
            .ok_or_else(|| cannot_start(format!("no container {name}")))?;
        c.cdi_hooks = cdi.hooks.clone();
        let mut launch =
            prepare_launch(name, &c.spec, image, &c.dirs, &ctx).map_err(cannot_start)?;
        if let Some(console) = c.console.take() {
            console.attach(&mut launch.config.stdio);
        }
        let cgroup = limited_cgroup(c, &cgroup_path, &launch)?;
        let paused = spawn_paused(&launch.config);
        // Our copies of the container's pipe ends close with the config.
        let exec_template = ExecTemplate {
            process: launch.config.process.clone(),
            security: launch.config.security.clone(),
            userns: launch.config.userns.is_some(),
        };
        drop(launch.config);
        let paused = match paused {
            Ok(p) => p,
            Err(e) => {
                c.cgroup = Some(cgroup);
                return Err((e.to_string(), e.exit_code()));
            }
        };
        paused.clock().mark_at(Mark::Begin, begin);
        c.pid = Some(paused.pid());
        let joined = cgroup.add_process(paused.pid());
        let prepared = Box::new(Prepared {
            image_id: image_id(&image.record).to_string(),
            stop_signal: launch.stop_signal,
            summary: launch.summary,
            stdout: launch.stdout,
            stderr: launch.stderr,
            cgroup,
            exec_template,
            ip: None,
            start_stages: Vec::new(),
        });
        if let Err(e) = joined {
            paused.abort();
            return Err(cannot_start(e));
        }
        self.place(name, paused, prepared)
    }

    /// CNI ADD and prestart hooks in a helper while the child waits, or
    /// straight to "go" when there are none.
    fn place(
        &mut self,
        name: &str,
        paused: PausedContainer,
        prepared: Box<Prepared>,
    ) -> Result<(), StepError> {
        let Some(c) = self.containers.get(name) else {
            paused.abort();
            return Err(cannot_start(format!("no container {name}")));
        };
        let cni = c.spec.network == NetworkMode::Cni;
        let hooks = c.hooks().prestart;
        let hooks_wanted = !hooks.is_empty();
        if !cni && !hooks_wanted {
            return self.release(name, paused, prepared);
        }
        let peers = if cni {
            self.cni_peers(name)
        } else {
            Vec::new()
        };
        let settings = self.options.network.clone();
        let (spec, bundle) = (c.spec.clone(), c.dirs.base.clone());
        let hostname = spec.hostname.clone().unwrap_or_else(|| name.to_string());
        let (container, pid) = (name.to_string(), paused.pid().as_raw());
        let owner = Some((name.to_string(), c.run_id()));
        let started = self.jobs.start(JobKind::Place, owner, &[], move || {
            let mut ip = None;
            if cni {
                match attach_container(
                    &settings, &container, &hostname, pid, &spec, &bundle, &peers,
                ) {
                    Ok(att) => ip = att.ip,
                    Err(e) => return json!({ "error": e }),
                }
            }
            let state = HookState::new(&container, HookStatus::Creating, Some(pid), &bundle);
            match run_hooks("prestart", &hooks, &state) {
                Ok(()) => json!({ "ip": ip }),
                Err(e) => json!({ "error": e, "ip": ip }),
            }
        });
        if let Err(e) = started {
            paused.abort();
            return Err(cannot_start(e));
        }
        let what = match (cni, hooks_wanted) {
            (true, true) => "network (CNI ADD) and prestart hooks",
            (true, false) => "network (CNI ADD)",
            _ => "prestart hooks",
        };
        if let Some(c) = self.containers.get_mut(name) {
            c.waiting_for = Some(what.into());
        }
        self.creations
            .insert(name.to_string(), Creation::Placing { paused, prepared });
        Ok(())
    }

    /// The placement helper answered.
    pub(crate) fn placed(&mut self, done: JobDone) {
        let Some(name) = self.current_run(&done) else {
            return;
        };
        let Some(Creation::Placing {
            paused,
            mut prepared,
        }) = self.creations.remove(&name)
        else {
            return;
        };
        prepared.ip = done
            .answer
            .get("ip")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        if let Some(c) = self.containers.get_mut(&name) {
            c.ip = prepared.ip; // so the cleanup releases it
        }
        if let Some(e) = Self::job_error(&done) {
            paused.abort();
            return self.creation_failed(&name, e, EXIT_CANNOT_START);
        }
        if let Err((message, code)) = self.release(&name, paused, prepared) {
            self.creation_failed(&name, message, code);
        }
    }

    /// The AbortCreate action: stop the helper or the paused child.
    pub(crate) fn abort_creation(&mut self, name: &str) {
        match self.creations.remove(name) {
            Some(Creation::Volumes { .. }) => {
                // No child yet: nothing else would tell the machine.
                self.jobs.cancel_for(name, JobKind::MountVolumes);
                self.fire(name, Event::StartFailed(EXIT_CANNOT_START));
            }
            Some(Creation::Placing { paused, prepared }) => {
                self.jobs.cancel_for(name, JobKind::Place);
                paused.abort();
                self.keep_cgroup(name, prepared);
            }
            Some(Creation::Starting { starting, prepared }) => {
                let _ = nix::sys::signal::kill(starting.pid(), nix::sys::signal::SIGKILL);
                self.keep_cgroup(name, prepared);
            }
            None => {}
        }
    }

    /// An aborted creation's cgroup still needs removing by the cleanup.
    fn keep_cgroup(&mut self, name: &str, prepared: Box<Prepared>) {
        if let Some(c) = self.containers.get_mut(name) {
            c.cgroup = Some(prepared.cgroup);
        }
    }

    /// A step failed: record why, and tell the machine.
    pub(crate) fn creation_failed(&mut self, name: &str, message: String, code: i32) {
        crate::supervisor::say(format_args!("container {name}: {message}"));
        self.abort_creation(name);
        if let Some(c) = self.containers.get_mut(name) {
            c.waiting_for = None;
            // A client waiting for its terminal learns there is none.
            (c.console, c.console_hold) = (None, None);
            let _ = c.log.write_notice(&message);
            c.error = Some(message.clone());
            c.exit_reason = Some("start_failed".into());
            c.exit_code = Some(code);
            c.finished_at = Some(std::time::SystemTime::now());
            c.started_at = Some(std::time::SystemTime::now());
            c.started_instant = Some(std::time::Instant::now());
        }
        let data = json!({"exit_code": code, "reason": "start_failed", "error": message});
        self.emit(
            crate::supervisor::events::journal::kinds::CONTAINER_EXITED,
            Some(name),
            data,
        );
        self.fire(name, Event::StartFailed(code));
    }

    /// The container a job worked for, if that run is still the current
    /// one (an answer for an older run is stale).
    pub(crate) fn current_run(&self, done: &JobDone) -> Option<String> {
        let (name, run_id) = done.container.as_ref()?;
        let c = self.containers.get(name)?;
        (c.run_id() == *run_id).then(|| name.clone())
    }
}

/// The container's cgroup with its device rules and limits in place
/// before the container's first instruction. On failure the record keeps
/// it, for the cleanup.
fn limited_cgroup(
    c: &mut Container,
    path: &str,
    launch: &Launch,
) -> Result<ContainerCgroup, StepError> {
    let cgroup =
        ContainerCgroup::create_with_devices(path, &launch.device_rules).map_err(cannot_start)?;
    match cgroup.apply_resources(&launch.resources) {
        Ok(warnings) => {
            for w in warnings {
                crate::supervisor::say(format_args!("container {}: warning: {w}", c.name));
                let _ = c.log.write_notice(&format!("warning: {w}"));
            }
            Ok(cgroup)
        }
        Err(e) => {
            c.cgroup = Some(cgroup);
            Err(cannot_start(e))
        }
    }
}
