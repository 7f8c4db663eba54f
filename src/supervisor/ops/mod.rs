//! The supervisor's state: the containers it was told to run, the store
//! their images come from, and the timer queue. Queries live here; state
//! changes live in lifecycle.rs.

pub mod airgap;
pub mod apply;
mod apply_stage;
mod apply_watch;
mod clock_retry;
pub mod create;
mod create_prepare;
mod drive;
pub mod exec;
pub mod exec_wait;
pub mod exit;
pub mod first_boot;
mod first_boot_fetch;
mod first_boot_source;
mod gate_watch;
mod gates;
pub mod health;
pub mod helper_child;
pub mod hostnet;
mod hotplug;
pub mod hotplug_watch;
pub mod jobs;
pub mod network;
pub mod notifier;
pub mod output;
pub mod pull;
mod pull_retry;
mod recover;
pub mod reload;
pub mod run;
pub mod start;
pub mod stop;
mod timer;
pub mod update;
mod update_check;
mod update_record;
pub mod update_request;
mod update_watch;
pub mod wait;

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Instant;

use crate::image::Store;
use crate::supervisor::events::log::EventLog;
use crate::supervisor::launch::ContainerDirs;
use crate::supervisor::ops::create::Creation;
use crate::supervisor::ops::jobs::Jobs;
use crate::supervisor::ops::notifier::NotifierProcess;
use crate::supervisor::ops::pull::{PullJob, PullOutcome, PullProgress};
use crate::supervisor::ops::wait::{Completion, Waiter};
use crate::supervisor::output::follow::read_container_log;
use crate::supervisor::output::logs::LogEntry;
use crate::supervisor::runtime::container::{Container, ContainerInfo};
use crate::supervisor::runtime::machine::Event;
use crate::supervisor::runtime::timers::Timers;
use crate::supervisor::spec::load::LoadedSpec;

#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The active config directory: the applied generation in the store,
    /// else the seed.
    pub config_dir: PathBuf,
    /// `--config`: the config used while none was applied (`apply --reset`).
    pub seed_config_dir: PathBuf,
    /// Containers' cgroups are `<cgroup_parent>/<name>` in every hierarchy.
    pub cgroup_parent: String,
    /// Copy every container's output to /dev/console (PID 1 mode).
    pub console_logs: bool,
    /// Where Docker volume plugins are found, and their timeout.
    pub volume_plugins: crate::supervisor::plugins::volumes::PluginSettings,
    /// As the machine's init: say when the first container runs, in the
    /// kernel's clock (what the VM boot test reads).
    pub report_boot_time: bool,
    /// The machine's init (not a service, not a PID namespace's init):
    /// berth.json's `host_network` applies.
    pub machine_init: bool,
    /// CDI spec directories, the later winning (berth.json's
    /// `cdi.spec_dirs`, else /etc/cdi and /var/run/cdi).
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// The CNI network list and plugins for `network: "cni"`.
    pub network: crate::supervisor::plugins::network::NetworkSettings,
    /// berth.json's `pull.give_up_after`: how long a missing image's pull
    /// is retried after a transient failure (`None`: for ever).
    pub pull_give_up_after: Option<std::time::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no container named {0:?}")]
    NoSuchContainer(String),
    #[error("container {name}: {message}")]
    Container { name: String, message: String },
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Invalid(String),
}

pub struct Supervisor {
    store: Store,
    options: SupervisorOptions,
    containers: BTreeMap<String, Container>,
    timers: Timers,
    shutting_down: bool,
    waiters: Vec<Waiter>,
    completions: Vec<Completion>,
    /// `exec` processes running, and the answers of those that exited.
    execs: Vec<exec::RunningExec>,
    exec_answers: Vec<exec::ExecAnswer>,
    run_counter: u64,
    /// Image pulls in flight, by the pid of their `berth pull` child.
    pulls: BTreeMap<nix::unistd::Pid, PullJob>,
    pull_progress: Vec<PullProgress>,
    pull_outcomes: Vec<PullOutcome>,
    /// The event journal and its live tail.
    events: EventLog,
    notifier: NotifierProcess,
    /// The host network helper (hostnet.rs).
    hostnet: hostnet::HostNetProcess,
    /// Helper processes doing slow work for the loop.
    jobs: Jobs,
    /// Containers being created, by name: the step each waits on.
    creations: BTreeMap<String, Creation>,
    /// Events raised while another was being handled (drive.rs).
    queued: VecDeque<(String, Event)>,
    dispatching: bool,
    /// `update` API calls waiting for their checks.
    update_requests: crate::supervisor::ops::update_request::UpdateRequests,
    /// The config's images/ being imported at start (airgap.rs).
    airgap: airgap::Airgap,
    /// The hardware watchdog the loop pets, for `info`.
    watchdog_info: Option<crate::kernel::watchdog::WatchdogInfo>,
    /// Devices that come and go while containers run.
    hotplug: hotplug_watch::Hotplug,
    /// The whole-config apply under way (apply.rs).
    apply: Option<apply::Apply>,
    /// Specs a rolled-back apply had removed, added again once their
    /// container is gone.
    apply_restores: Vec<LoadedSpec>,
    /// Wakes the loop when the clock is set, so what waited on the clock
    /// (a registry certificate "not yet valid") is tried again at once.
    clock_changes: Option<crate::kernel::clock::ClockChanges>,
    /// What wakes containers waiting on `wait_for` gates.
    gate_watch: gate_watch::GateWatch,
}

impl Supervisor {
    pub fn new(store: Store, options: SupervisorOptions, specs: Vec<LoadedSpec>) -> Self {
        let containers_dir = store.containers_dir();
        let events = EventLog::open(store.root().join("events"));
        let containers: BTreeMap<String, Container> = specs
            .into_iter()
            .map(|s| {
                let dirs = ContainerDirs::new(&containers_dir, &s.name);
                (s.name.clone(), Container::new(s.name, s.spec, dirs))
            })
            .collect();
        let names: Vec<String> = containers.keys().cloned().collect();
        let mut sup = Supervisor {
            store,
            options,
            containers,
            timers: Timers::default(),
            shutting_down: false,
            waiters: Vec::new(),
            completions: Vec::new(),
            execs: Vec::new(),
            exec_answers: Vec::new(),
            run_counter: 0,
            pulls: BTreeMap::new(),
            pull_progress: Vec::new(),
            pull_outcomes: Vec::new(),
            events,
            notifier: NotifierProcess::default(),
            hostnet: Default::default(),
            jobs: Jobs::default(),
            creations: BTreeMap::new(),
            queued: VecDeque::new(),
            dispatching: false,
            update_requests: Default::default(),
            airgap: airgap::Airgap::default(),
            watchdog_info: None,
            hotplug: hotplug_watch::Hotplug::off(),
            gate_watch: Default::default(),
            apply: None,
            apply_restores: Vec::new(),
            clock_changes: crate::kernel::clock::ClockChanges::new()
                .map_err(|e| {
                    crate::supervisor::say(format_args!("clock changes will not be noticed: {e}"))
                })
                .ok(),
        };
        for name in names {
            sup.load_update_record(&name);
            sup.emit(
                crate::supervisor::events::journal::kinds::CONTAINER_CREATED,
                Some(&name),
                serde_json::Value::Null,
            );
        }
        sup
    }

    /// Follows devices that come and go (the daemon's loop; a supervisor
    /// used otherwise leaves it off).
    pub fn enable_hotplug(&mut self) {
        self.hotplug = hotplug_watch::Hotplug::open();
    }

    /// The hotplug sources to poll: the uevent socket, the inotify
    /// descriptor.
    pub fn hotplug_fds(&self) -> (Option<BorrowedFd<'_>>, Option<BorrowedFd<'_>>) {
        (self.hotplug.uevent_fd(), self.hotplug.inotify_fd())
    }

    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.values()
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn set_watchdog_info(&mut self, info: Option<crate::kernel::watchdog::WatchdogInfo>) {
        self.watchdog_info = info;
    }

    pub fn watchdog_info(&self) -> Option<&crate::kernel::watchdog::WatchdogInfo> {
        self.watchdog_info.as_ref()
    }

    pub fn options(&self) -> &SupervisorOptions {
        &self.options
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The journal's recent events and sequence numbers, for readers.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Makes every event durable now, waiting for the disk: for the very
    /// end of the daemon only.
    pub fn sync_events_now(&mut self) {
        self.events.sync();
    }

    /// Records one event (journal + live subscribers).
    pub fn emit(&mut self, kind: &str, container: Option<&str>, data: serde_json::Value) {
        if let Some(name) = container
            && kind.starts_with("container.")
        {
            self.observe_for_update(kind, name, &data);
            self.observe_for_apply(kind, name, &data);
        }
        self.events.append(kind, container, data);
    }

    pub fn container(&self, name: &str) -> Result<&Container, SupervisorError> {
        self.containers
            .get(name)
            .ok_or_else(|| SupervisorError::NoSuchContainer(name.to_string()))
    }

    pub fn container_mut(&mut self, name: &str) -> Result<&mut Container, SupervisorError> {
        self.containers
            .get_mut(name)
            .ok_or_else(|| SupervisorError::NoSuchContainer(name.to_string()))
    }

    pub fn list(&self) -> Vec<ContainerInfo> {
        self.containers.values().map(Container::info).collect()
    }

    pub fn logs(&self, name: &str, tail: Option<usize>) -> Result<Vec<LogEntry>, SupervisorError> {
        let c = self.container(name)?;
        match read_container_log(&c.log, None, tail, false) {
            Ok((entries, _)) => Ok(entries),
            Err(e) => Err(SupervisorError::Container {
                name: name.to_string(),
                message: format!("read log {}: {e}", c.log.path().display()),
            }),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        // While a sync runs its end wakes the loop; a past deadline then
        // would only spin it.
        let sync = if self.jobs.running(jobs::JobKind::SyncJournal, None) {
            None
        } else {
            self.events.sync_deadline()
        };
        self.timers.next_deadline().into_iter().chain(sync).min()
    }

    /// berth.json's `journal.sync` (the daemon sets it at start).
    pub fn set_journal_sync(
        &mut self,
        policy: crate::supervisor::spec::machine_settings::JournalSync,
    ) {
        self.events.set_sync_policy(policy);
    }

    /// True once a shutdown was asked for and no container is left running.
    pub fn shutdown_complete(&self) -> bool {
        self.shutting_down
            && !self.containers.values().any(|c| c.state().is_live())
            && self.jobs.is_empty()
    }
}
