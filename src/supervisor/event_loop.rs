//! The supervisor's one loop: poll(2) over the signal pipe, container
//! output pipes and the control plane's sockets, with the timer queue
//! setting the timeout (s6's iopause loop). Single-threaded by design, so
//! cloning a container is always safe.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use libc::{SIGCHLD, SIGHUP, SIGINT, SIGPWR, SIGTERM, SIGUSR2};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::manager::{Supervisor, say};
use super::reaper::reap_children;
use super::signals::SignalPipe;

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
}

#[derive(Clone, Copy)]
enum Source {
    Signals,
    Output,
    PullOutput,
    Control,
}

/// Runs until a shutdown completes; returns the daemon's exit code.
pub fn run(sup: &mut Supervisor, control: &mut dyn ControlPlane, signals: &mut SignalPipe) -> i32 {
    loop {
        let ready = match wait_for_events(sup, control, signals) {
            Ok(r) => r,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                say(format_args!("poll: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        for (fd, revents, source) in ready {
            match source {
                Source::Signals => handle_signals(sup, signals),
                Source::Output => sup.on_output(fd),
                Source::PullOutput => sup.on_pull_output(fd),
                Source::Control => control.on_ready(fd, revents, sup),
            }
        }
        sup.fire_due_timers();
        control.after_turn(sup);
        if sup.shutdown_complete() {
            sup.finish_shutdown();
            say(format_args!("all containers stopped; exiting"));
            return 0;
        }
    }
}

fn wait_for_events(
    sup: &Supervisor,
    control: &dyn ControlPlane,
    signals: &SignalPipe,
) -> Result<Vec<(RawFd, PollFlags, Source)>, Errno> {
    let mut fds = vec![PollFd::new(signals.fd(), PollFlags::POLLIN)];
    let mut sources = vec![Source::Signals];
    for o in sup.containers.values().flat_map(|c| &c.outputs) {
        fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
        sources.push(Source::Output);
    }
    for fd in sup.pull_output_fds() {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        sources.push(Source::PullOutput);
    }
    for (fd, events) in control.watched() {
        fds.push(PollFd::new(fd, events));
        sources.push(Source::Control);
    }
    poll(&mut fds, poll_timeout(sup.next_deadline()))?;
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

fn handle_signals(sup: &mut Supervisor, signals: &mut SignalPipe) {
    for sig in signals.take_raised() {
        match sig {
            SIGCHLD => {
                for (pid, code) in reap_children() {
                    sup.on_exit(pid, code);
                }
            }
            SIGTERM | SIGINT | SIGPWR | SIGUSR2 => sup.begin_shutdown(),
            // Errors were logged by reload; the running set is unchanged.
            SIGHUP => {
                let _ = sup.reload();
            }
            _ => {}
        }
    }
}
