//! The supervisor's one loop: poll(2) over the signal pipe, container
//! output pipes and the control plane's sockets, with the timer queue
//! setting the timeout (s6's iopause loop). Single-threaded by design, so
//! cloning a container is always safe.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use libc::{SIGCHLD, SIGHUP, SIGINT, SIGPWR, SIGTERM, SIGUSR1, SIGUSR2};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::supervisor::daemon::hw_watchdog::HardwareWatchdog;
use crate::supervisor::daemon::idle_trim::IdleTrim;
use crate::supervisor::daemon::notify::Notifier;
use crate::supervisor::daemon::pid1::{self, Init};
use crate::supervisor::daemon::reaper::reap_children;
use crate::supervisor::daemon::signals::SignalPipe;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::say;

/// What the API layer plugs into the loop (it sits above the supervisor,
/// so the supervisor only knows it through this trait).
pub trait ControlPlane {
    /// Descriptors to watch and for what.
    fn watched(&self) -> Vec<(BorrowedFd<'_>, PollFlags)>;
    /// One of them is ready.
    fn on_ready(&mut self, fd: RawFd, revents: PollFlags, sup: &mut Supervisor);
    /// Called once per loop turn, after everything else: answers what the
    /// supervisor completed (e.g. a waited-for exit).
    fn after_turn(&mut self, sup: &mut Supervisor);
    /// Work is left for the next turn even if no descriptor becomes ready
    /// (an events subscriber still behind): the loop must not sleep.
    fn has_pending_work(&self) -> bool {
        false
    }
}

/// What surrounds the daemon: a service manager to notify (notify.rs) and,
/// as PID 1, the machine or namespace to bring down at the end (pid1.rs).
pub struct Host {
    pub notifier: Notifier,
    pub init: Option<Init>,
    /// berth.json's hardware watchdog, petted every turn when due.
    pub watchdog: Option<HardwareWatchdog>,
}

#[derive(Clone, Copy)]
enum Source {
    Signals,
    Output,
    PullOutput,
    NotifierOutput,
    HostNetOutput,
    Job,
    Starting,
    Uevents,
    DeviceLinks,
    ClockChange,
    Gates,
    Control,
}

/// Runs until a shutdown completes; returns the daemon's exit code.
pub fn run(
    sup: &mut Supervisor,
    control: &mut dyn ControlPlane,
    signals: &mut SignalPipe,
    host: &mut Host,
) -> i32 {
    let mut trim = IdleTrim::new(Instant::now());
    sup.enable_hotplug();
    loop {
        let dog = host.watchdog.as_ref().map(HardwareWatchdog::deadline);
        let wake = [host.notifier.next_watchdog(), trim.deadline(), dog]
            .into_iter()
            .flatten()
            .min();
        let ready = match wait_for_events(sup, control, signals, wake) {
            Ok(r) => r,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                say(format_args!("poll: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let idle_turn = ready.is_empty();
        if !idle_turn {
            trim.busy(Instant::now());
        }
        dispatch(ready, sup, control, signals, host.init.is_some());
        sup.fire_due_timers();
        sup.sync_hotplug();
        control.after_turn(sup);
        // A helper makes the turn's events durable; the loop never waits
        // on the disk.
        sup.sync_events();
        host.notifier.tick();
        if let Some(dog) = &mut host.watchdog {
            dog.tick(Instant::now());
        }
        // Last in the turn, so nothing this turn ran is left resident.
        if idle_turn {
            trim.trim_if_due(Instant::now());
        }
        if sup.is_shutting_down() {
            host.notifier.stopping();
        }
        if sup.shutdown_complete() {
            return finish(sup, host);
        }
    }
}

/// Hands each ready descriptor to whoever owns it.
fn dispatch(
    ready: Vec<(RawFd, PollFlags, Source)>,
    sup: &mut Supervisor,
    control: &mut dyn ControlPlane,
    signals: &mut SignalPipe,
    pid1: bool,
) {
    for (fd, revents, source) in ready {
        match source {
            Source::Signals => handle_signals(sup, signals, pid1),
            Source::Output => sup.on_output(fd),
            Source::PullOutput => sup.on_pull_output(fd),
            Source::NotifierOutput => sup.on_notifier_output(fd),
            Source::HostNetOutput => sup.on_host_network_output(fd),
            Source::Job => sup.on_job_output(fd),
            Source::Starting => sup.on_starting_fd(fd),
            Source::Uevents => sup.on_uevents(),
            Source::DeviceLinks => sup.on_device_links(),
            Source::ClockChange => sup.on_clock_changed(),
            Source::Gates => sup.on_gate_watch(),
            Source::Control => control.on_ready(fd, revents, sup),
        }
    }
}

/// Every container has stopped: the journal made durable and the
/// watchdog disarmed. As PID 1 the caller then closes the supervisor's
/// files and brings the machine down (`Init::finish`).
fn finish(sup: &mut Supervisor, host: &mut Host) -> i32 {
    sup.finish_shutdown();
    sup.sync_events_now();
    if let Some(dog) = host.watchdog.take() {
        dog.disarm();
    }
    if host.init.is_some() {
        say(format_args!("all containers stopped"));
    } else {
        say(format_args!("all containers stopped; exiting"));
    }
    0
}

/// Everything the loop listens to this turn, each tagged with its owner.
struct PollSet<'a> {
    fds: Vec<PollFd<'a>>,
    sources: Vec<Source>,
}

impl<'a> PollSet<'a> {
    fn add(&mut self, fd: BorrowedFd<'a>, events: PollFlags, source: Source) {
        self.fds.push(PollFd::new(fd, events));
        self.sources.push(source);
    }

    fn add_all(&mut self, fds: impl IntoIterator<Item = BorrowedFd<'a>>, source: Source) {
        for fd in fds {
            self.add(fd, PollFlags::POLLIN, source);
        }
    }
}

fn poll_set<'a>(
    sup: &'a Supervisor,
    control: &'a dyn ControlPlane,
    signals: &'a SignalPipe,
    now: Instant,
) -> PollSet<'a> {
    let mut set = PollSet {
        fds: Vec::new(),
        sources: Vec::new(),
    };
    set.add(signals.fd(), PollFlags::POLLIN, Source::Signals);
    // A container over its output rate is not polled until its bucket
    // refills (ratelimit.rs): its writer waits, nobody else does.
    set.add_all(sup.output_fds_ready(now), Source::Output);
    set.add_all(sup.notifier_fd(), Source::NotifierOutput);
    set.add_all(sup.host_network_fd(), Source::HostNetOutput);
    set.add_all(sup.pull_output_fds(), Source::PullOutput);
    set.add_all(sup.job_fds(), Source::Job);
    set.add_all(sup.starting_fds(), Source::Starting);
    let (uevents, links) = sup.hotplug_fds();
    set.add_all(uevents, Source::Uevents);
    set.add_all(links, Source::DeviceLinks);
    set.add_all(sup.clock_change_fd(), Source::ClockChange);
    set.add_all(sup.gate_watch_fds(), Source::Gates);
    for (fd, events) in control.watched() {
        set.add(fd, events, Source::Control);
    }
    set
}

fn wait_for_events(
    sup: &Supervisor,
    control: &dyn ControlPlane,
    signals: &SignalPipe,
    host_deadline: Option<Instant>,
) -> Result<Vec<(RawFd, PollFlags, Source)>, Errno> {
    let now = Instant::now();
    let PollSet { mut fds, sources } = poll_set(sup, control, signals, now);
    let busy = control.has_pending_work().then_some(now);
    let deadline = [
        sup.next_deadline(),
        sup.output_refill_deadline(now),
        host_deadline,
        busy,
    ]
    .into_iter()
    .flatten()
    .min();
    poll(&mut fds, poll_timeout(deadline))?;
    Ok(fds
        .iter()
        .zip(sources)
        .filter_map(|(p, s)| {
            let revents = p.revents().unwrap_or(PollFlags::empty());
            (!revents.is_empty()).then(|| (p.as_fd().as_raw_fd(), revents, s))
        })
        .collect())
}

fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            // Round up so we never wake a hair early and spin.
            let wait = d.saturating_duration_since(Instant::now()) + Duration::from_micros(999);
            PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX)
        }
    }
}

fn handle_signals(sup: &mut Supervisor, signals: &mut SignalPipe, pid1: bool) {
    for sig in signals.take_raised() {
        match sig {
            SIGCHLD => {
                for (pid, code) in reap_children() {
                    sup.on_exit(pid, code);
                }
            }
            SIGTERM | SIGINT | SIGPWR | SIGUSR1 | SIGUSR2 => on_shutdown_signal(sup, sig, pid1),
            // Errors were logged by reload; the running set is unchanged.
            SIGHUP => {
                let _ = sup.reload();
            }
            _ => {}
        }
    }
}

/// Every shutdown signal stops the containers; as PID 1 the signal also
/// picks how the machine ends (pid1::action_for_signal: SIGTERM and SIGINT
/// reboot, SIGUSR1 halts, SIGUSR2 and SIGPWR power off). The first request
/// of a shutdown decides.
fn on_shutdown_signal(sup: &mut Supervisor, sig: i32, pid1: bool) {
    let name = nix::sys::signal::Signal::try_from(sig).map_or("signal", |s| s.as_str());
    let action = pid1::action_for_signal(sig).map(pid1::request_shutdown);
    if !sup.is_shutting_down() {
        match (pid1, action) {
            (true, Some(a)) => say(format_args!("{name}: shutting down, then {}", a.name())),
            _ => say(format_args!("{name}: shutting down")),
        }
    }
    sup.begin_shutdown();
}
