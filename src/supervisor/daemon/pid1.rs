//! PID 1 duties (policy): whether berth is a machine's init, a PID
//! namespace's init or a service; bringing the machine up before anything
//! else; which signal means which ending; and how PID 1 ends: containers
//! stopped by the supervisor first, then every other process, sync,
//! unmount, reboot(2). PID 1 never returns: a fatal error or a panic ends
//! in a power-off or reboot (`shutdown.on_fatal`), never in a kernel panic.
//! The mechanism is `kernel::machine`; docs/pid1.md is the user's view.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use libc::{SIGINT, SIGPWR, SIGTERM, SIGUSR1, SIGUSR2};

use crate::kernel::machine::{self, boot_steps, boot_steps::BootStep};
use crate::supervisor::say;
use crate::supervisor::spec::settings::{Settings, ShutdownSettings};

/// cgroup v2 leaf holding PID 1 itself (systemd's init.scope).
const INIT_CGROUP: &str = "init";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What berth is to the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An ordinary process (a systemd service, a shell's child).
    Service,
    /// PID 1 of a PID namespace that is not the machine's: reaps and maps
    /// signals; reboot(2) ends only that namespace; never mounts anything.
    NamespaceInit,
    /// The machine's init: also mounts, cgroups, hostname, modules.
    Machine,
}

impl Mode {
    pub fn is_pid1(self) -> bool {
        self != Mode::Service
    }
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// This process's mode, decided once. Deciding may mount /proc when berth
/// is PID 1 and nothing is mounted there (the machine's first moments).
pub fn mode() -> Mode {
    *MODE.get_or_init(detect_mode)
}

fn detect_mode() -> Mode {
    if std::process::id() != 1 {
        return Mode::Service;
    }
    if let Err(e) = machine::mount_proc_if_missing() {
        say(format_args!("PID 1: {e}"));
    }
    match machine::is_initial_pid_namespace() {
        Ok(true) => Mode::Machine,
        Ok(false) => Mode::NamespaceInit,
        // Without /proc nothing can be told; leaving the machine alone is
        // the safe guess.
        Err(e) => {
            say(format_args!("PID 1: {e}; acting as a namespace init"));
            Mode::NamespaceInit
        }
    }
}

pub use crate::supervisor::spec::settings::ShutdownAction;

/// busybox init's convention (init/init.c), with SIGPWR as a power-off as
/// LXC uses it to shut a container down: SIGTERM reboots, SIGINT (what the
/// kernel sends on Ctrl-Alt-Del once CAD is routed to init) reboots,
/// SIGUSR1 halts, SIGUSR2 and SIGPWR power off. None: not a shutdown
/// signal.
pub fn action_for_signal(sig: i32) -> Option<ShutdownAction> {
    match sig {
        SIGTERM | SIGINT => Some(ShutdownAction::Reboot),
        SIGUSR1 => Some(ShutdownAction::Halt),
        SIGUSR2 | SIGPWR => Some(ShutdownAction::Poweroff),
        _ => None,
    }
}

/// The action of the shutdown in progress: 0 = none asked, else action+1.
/// A process-wide cell because both the signal path (event loop) and the
/// API (`shutdown` method) ask, and only the first ask counts.
static REQUESTED: AtomicU8 = AtomicU8::new(0);

/// Records `action` unless a shutdown was already asked for; returns the
/// action the shutdown will end in.
pub fn request_shutdown(action: ShutdownAction) -> ShutdownAction {
    let first = REQUESTED.compare_exchange(0, action as u8 + 1, Ordering::SeqCst, Ordering::SeqCst);
    match first {
        Ok(_) => action,
        Err(earlier) => ShutdownAction::from_u8(earlier).unwrap_or(action),
    }
}

/// The action asked for; power-off when a shutdown began some other way.
pub fn requested_shutdown() -> ShutdownAction {
    ShutdownAction::from_u8(REQUESTED.load(Ordering::SeqCst)).unwrap_or(ShutdownAction::Poweroff)
}

/// PID 1's state: the mode and how to end.
#[derive(Clone)]
pub struct Init {
    mode: Mode,
    shutdown: ShutdownSettings,
}

impl Init {
    /// None for a service. As the machine's init, first mounts the early
    /// filesystems and attaches the console, before anything opens a file,
    /// and installs the panic hook with the default settings.
    pub fn enter() -> Option<Init> {
        boot_steps::stamp(BootStep::Exec);
        let mode = mode();
        if mode == Mode::Service {
            return None;
        }
        if mode == Mode::Machine {
            bring_up_machine();
        }
        boot_steps::stamp(BootStep::EarlyMounts);
        let init = Init {
            mode,
            shutdown: ShutdownSettings::default(),
        };
        install_panic_hook(&init.shutdown);
        Some(init)
    }

    /// How to end (berth.json's `shutdown`), also for the panic hook.
    pub fn set_shutdown(&mut self, shutdown: &ShutdownSettings) {
        self.shutdown = shutdown.clone();
        install_panic_hook(&self.shutdown);
    }

    /// Applies berth.json: `shutdown` and, as the machine's init, hostname,
    /// modules, loopback, Ctrl-Alt-Del and cgroups.
    pub fn configure(&mut self, settings: &Settings) {
        self.set_shutdown(&settings.shutdown);
        if self.mode == Mode::Machine {
            configure_machine(settings);
        }
    }

    /// After the supervisor stopped every container: the rest of the
    /// processes, sync, unmount, and `action`. Never returns.
    pub fn finish(&self, action: ShutdownAction) -> ! {
        let grace = Duration::from_secs(self.shutdown.kill_grace_secs);
        let t = machine::terminate_all_processes(grace);
        if !t.reaped.is_empty() || t.killed {
            say(format_args!(
                "stopped {} other processes{}",
                t.reaped.len(),
                if t.killed {
                    " (SIGKILL after the grace period)"
                } else {
                    ""
                }
            ));
        }
        self.end_machine(action)
    }

    /// A fatal error in PID 1: printed, left on the console for
    /// `fatal_delay_secs`, then the machine goes down by `on_fatal`.
    pub fn fatal(&self, message: &str) -> ! {
        let action = self.shutdown.on_fatal;
        say(format_args!(
            "FATAL: {message}; {} in {} s",
            action.verb(),
            self.shutdown.fatal_delay_secs
        ));
        machine::sync_filesystems();
        std::thread::sleep(Duration::from_secs(self.shutdown.fatal_delay_secs));
        self.finish(action)
    }

    fn end_machine(&self, action: ShutdownAction) -> ! {
        machine::sync_filesystems();
        if self.mode == Mode::Machine {
            for e in machine::unmount_all() {
                say(format_args!("{e}"));
            }
            machine::sync_filesystems();
        }
        say(format_args!("{}", action.verb()));
        let e = machine::reboot(action.command());
        say(format_args!("{e}; halting here instead"));
        park()
    }
}

/// PID 1 may not exit (the kernel would panic); when even reboot(2) fails,
/// it waits, still reaping, for someone to pull the plug.
fn park() -> ! {
    loop {
        let _ = machine::terminate_all_processes(Duration::ZERO);
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The first moments of the machine: filesystems, then the console (it
/// lives on /dev), then a root containers can pivot_root away from.
fn bring_up_machine() {
    match machine::make_root_pivotable() {
        Ok(true) => say(format_args!(
            "initramfs root: covered / with a bind of itself"
        )),
        Ok(false) => {}
        Err(e) => say(format_args!("{e}; containers may fail to pivot_root")),
    }
    let early = machine::mount_early_filesystems();
    if let Err(e) = machine::attach_console() {
        say(format_args!("{e}"));
    }
    for e in &early.failed {
        say(format_args!("{e}"));
    }
    if !early.mounted.is_empty() {
        say(format_args!("mounted {}", early.mounted.join(" ")));
    }
}

fn configure_machine(settings: &Settings) {
    if let Some(name) = &settings.hostname
        && let Err(e) = machine::set_hostname(name)
    {
        say(format_args!("{e}"));
    }
    for m in &settings.modules {
        match machine::load_module(m) {
            Ok(_) => say(format_args!("module {} loaded", m.display())),
            Err(e) => say(format_args!("{e}")),
        }
    }
    if let Err(e) = machine::bring_up_loopback() {
        say(format_args!("{e}"));
    }
    if let Err(e) = machine::route_ctrl_alt_del_to_init() {
        say(format_args!("{e}"));
    }
    set_up_cgroups();
}

/// cgroup v2 with every controller for the containers, when this init
/// mounted the hierarchy (one mounted before us belongs to someone else).
fn set_up_cgroups() {
    match machine::mount_cgroup2_if_missing() {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return say(format_args!("{e}")),
    }
    match machine::delegate_cgroup_controllers(Path::new(CGROUP_ROOT), INIT_CGROUP) {
        Ok((enabled, refused)) => {
            say(format_args!("cgroup v2 controllers: {}", enabled.join(" ")));
            for e in refused {
                say(format_args!("{e}"));
            }
        }
        Err(e) => say(format_args!("{e}; containers get no resource limits")),
    }
}

/// A panic in PID 1 cannot stop the containers (the supervisor's state is
/// unknown), so the hook only prints, syncs, waits and reboots or powers
/// off; the kernel then stops everything.
fn install_panic_hook(settings: &ShutdownSettings) {
    let (action, delay) = (settings.on_fatal, settings.fatal_delay_secs);
    std::panic::set_hook(Box::new(move |info| {
        eprintln!(
            "berth: PANIC in PID 1: {info}; {} in {delay} s",
            action.verb()
        );
        machine::sync_filesystems();
        std::thread::sleep(Duration::from_secs(delay));
        let e = machine::reboot(action.command());
        eprintln!("berth: {e}");
        park()
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_busybox_actions() {
        assert_eq!(action_for_signal(SIGTERM), Some(ShutdownAction::Reboot));
        assert_eq!(action_for_signal(SIGINT), Some(ShutdownAction::Reboot));
        assert_eq!(action_for_signal(SIGUSR1), Some(ShutdownAction::Halt));
        assert_eq!(action_for_signal(SIGUSR2), Some(ShutdownAction::Poweroff));
        assert_eq!(action_for_signal(SIGPWR), Some(ShutdownAction::Poweroff));
        assert_eq!(action_for_signal(libc::SIGHUP), None);
    }

    #[test]
    fn actions_round_trip_through_the_cell_encoding() {
        for a in [
            ShutdownAction::Poweroff,
            ShutdownAction::Reboot,
            ShutdownAction::Halt,
        ] {
            assert_eq!(ShutdownAction::from_u8(a as u8 + 1), Some(a));
        }
        assert_eq!(ShutdownAction::from_u8(0), None);
        assert_eq!(
            serde_json::to_string(&ShutdownAction::Poweroff).unwrap(),
            "\"poweroff\""
        );
    }

    #[test]
    fn a_test_process_is_a_service() {
        assert_eq!(mode(), Mode::Service);
    }
}
