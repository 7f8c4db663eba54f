//! A container's `wait_for` gates (spec/wait_for.rs), checked when its
//! dependencies are ready: a path (inotify on its nearest directory), the
//! network online (netlink), the clock synchronized (rechecked every
//! second, and at once when the clock is set), a name that resolves or a
//! TCP port that accepts (probed in helper processes with backoff). The
//! loop never waits on any of them; a gate's timeout fails the start or,
//! with `"then": "start"`, lets it through.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kernel::{clock, net_state};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::runtime::container::Container;
use crate::supervisor::runtime::gate_state::GateState;
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::runtime::restart::doubling_delay;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::say;
use crate::supervisor::spec::wait_for::{AfterTimeout, Gate};

/// adjtimex has no notification for a slewed sync: asked this often.
const CLOCK_RECHECK: Duration = Duration::from_secs(1);
/// A failed probe is tried again after this, doubling up to the cap.
const PROBE_RETRY_FIRST: Duration = Duration::from_millis(100);
const PROBE_RETRY_MAX: Duration = Duration::from_secs(5);
/// One probe's connect timeout.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) enum Verdict {
    Open,
    Wait(String),
    Fail(String),
}

/// What one look at the gates found.
#[derive(Default)]
struct Look {
    pending: Vec<String>,
    wake: Option<Instant>,
    probe: Vec<(usize, Gate)>,
    watch: Vec<std::path::PathBuf>,
    network: bool,
}

impl Look {
    fn wake_by(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

impl Supervisor {
    /// The gates of `name`'s start; called once its dependencies are ready.
    pub(crate) fn gate_verdict(&mut self, name: &str) -> Verdict {
        let now = Instant::now();
        let Some(c) = self.containers.get_mut(name) else {
            return Verdict::Open;
        };
        if c.spec.wait_for.is_empty() {
            return Verdict::Open;
        }
        if c.state() != State::Waiting {
            c.gates = GateState::default(); // a new start attempt
        }
        let look = match look_at_gates(c, now) {
            Ok(look) => look,
            Err(why) => return Verdict::Fail(why),
        };
        if look.pending.is_empty() {
            c.gates = GateState::default();
            c.waiting_for = None;
            return Verdict::Open;
        }
        let waiting = look.pending.join(", ");
        c.waiting_for = Some(waiting.clone());
        let run_id = c.run_id();
        let wake = look
            .wake
            .filter(|w| c.gates.wake_at.is_none_or(|at| *w < at || at <= now));
        if let Some(at) = wake {
            c.gates.wake_at = Some(at);
            self.timers.schedule(at, name, run_id, TimerKind::GateCheck);
        }
        for path in &look.watch {
            self.gate_watch.watch_path(path);
        }
        if look.network {
            self.gate_watch.watch_network();
        }
        for (i, gate) in look.probe {
            self.start_gate_probe(name, run_id, i, gate);
        }
        Verdict::Wait(waiting)
    }

    pub(crate) fn on_gate_timer(&mut self, name: &str, at: Instant) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if c.gates.wake_at == Some(at) {
            c.gates.wake_at = None;
        }
        if c.state() == State::Waiting {
            self.fire(name, Event::Start);
        }
    }

    /// A path appeared or the network changed: look again at every
    /// container waiting on gates.
    pub fn on_gate_watch(&mut self) {
        self.gate_watch.drain();
        let waiting: Vec<String> = self
            .containers
            .values()
            .filter(|c| c.state() == State::Waiting && !c.spec.wait_for.is_empty())
            .map(|c| c.name.clone())
            .collect();
        for name in waiting {
            self.fire(&name, Event::Start);
        }
    }

    fn start_gate_probe(&mut self, name: &str, run_id: u64, index: usize, gate: Gate) {
        let owner = Some((name.to_string(), run_id));
        let started = self.jobs.start(
            JobKind::GateProbe,
            owner,
            &[],
            move || json!({"index": index, "ok": probe(&gate)}),
        );
        match started {
            Ok(_) => {
                if let Some(c) = self.containers.get_mut(name) {
                    c.gates.probing.insert(index);
                }
            }
            Err(e) => say(format_args!("container {name}: {e}")),
        }
    }

    /// A probe answered: remember it, and look again.
    pub(crate) fn gate_probed(&mut self, done: JobDone) {
        let Some(name) = self.current_run(&done) else {
            return;
        };
        let index = done.answer.get("index").and_then(Value::as_u64);
        let ok = done.answer.get("ok").and_then(Value::as_bool) == Some(true);
        let (Some(index), Some(c)) = (index, self.containers.get_mut(&name)) else {
            return;
        };
        let index = index as usize;
        c.gates.probing.remove(&index);
        if ok {
            c.gates.probed.insert(index);
            c.gates.retry.remove(&index);
        } else {
            let failures = c.gates.retry.get(&index).map_or(0, |r| r.1) + 1;
            let delay = doubling_delay(PROBE_RETRY_FIRST, failures - 1, PROBE_RETRY_MAX);
            let at = Instant::now() + delay;
            c.gates.retry.insert(index, (at, failures));
        }
        if c.state() == State::Waiting {
            self.fire(&name, Event::Start);
        }
    }
}

fn gate_met(gate: &Gate, index: usize, state: &GateState) -> bool {
    match gate {
        Gate::Path(p) => p.exists(),
        Gate::NetworkOnline => net_state::online(),
        Gate::ClockSynchronized => clock::synchronized(),
        Gate::Dns(_) | Gate::Tcp { .. } => state.probed.contains(&index),
    }
}

/// Each gate of `c`'s start: met, timed out (Err: fail the start; with
/// `then: start` it counts as met from then on), or pending with what
/// will wake the next look.
fn look_at_gates(c: &mut Container, now: Instant) -> Result<Look, String> {
    let since = *c.gates.since.get_or_insert(now);
    let mut look = Look::default();
    for (i, entry) in c.spec.wait_for.iter().enumerate() {
        let Ok(gate) = entry.gate() else {
            continue; // refused at load
        };
        if c.gates.let_through.contains(&i) || gate_met(&gate, i, &c.gates) {
            continue;
        }
        if let Some(t) = entry.timeout {
            let deadline = since.checked_add(t.0).unwrap_or(now);
            if now >= deadline {
                let limit = humantime::format_duration(t.0);
                let what = format!("{} not met within {limit}", gate.describe());
                if entry.then == AfterTimeout::Fail {
                    return Err(what);
                }
                let _ = c.log.write_notice(&format!("{what}: starting anyway"));
                c.gates.let_through.insert(i);
                continue;
            }
            look.wake_by(deadline);
        }
        plan_wake(&gate, i, &c.gates, now, &mut look);
        look.pending.push(gate.describe());
    }
    Ok(look)
}

/// What wakes the check of an unmet gate.
fn plan_wake(gate: &Gate, index: usize, state: &GateState, now: Instant, look: &mut Look) {
    match gate {
        Gate::Path(p) => look.watch.push(p.clone()),
        Gate::NetworkOnline => look.network = true,
        Gate::ClockSynchronized => look.wake_by(now + CLOCK_RECHECK),
        Gate::Dns(_) | Gate::Tcp { .. } if !state.probing.contains(&index) => {
            match state.retry.get(&index) {
                Some((at, _)) if *at > now => look.wake_by(*at),
                _ => look.probe.push((index, gate.clone())),
            }
        }
        Gate::Dns(_) | Gate::Tcp { .. } => {} // its probe answers
    }
}

/// In a helper: does the name resolve, does the port accept?
fn probe(gate: &Gate) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    match gate {
        Gate::Dns(name) => (name.as_str(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut a| a.next().is_some()),
        Gate::Tcp { host, port } => (host.as_str(), *port).to_socket_addrs().is_ok_and(|addrs| {
            addrs
                .into_iter()
                .any(|a| TcpStream::connect_timeout(&a, PROBE_CONNECT_TIMEOUT).is_ok())
        }),
        _ => false,
    }
}
