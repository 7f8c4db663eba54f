//! Auto-update (docs/update.md), the second half: stop the old run and
//! start the new image, watch it for `stable_for` (running, and healthy
//! with a healthcheck), then call it done, or stop it and start the
//! previous image again pinned by digest. What is seen (a start, an exit,
//! an unhealthy verdict) is only noted when the event is emitted; the
//! reaction runs on the next timer turn, never inside another operation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::image::usage::read_use;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::jobs::JobKind;
use crate::supervisor::ops::update::outcome;
use crate::supervisor::ops::update_check::{pin_name, unpin};
use crate::supervisor::runtime::health::HealthStatus;
use crate::supervisor::runtime::machine::{Event, State};
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::runtime::update::Phase;
use crate::supervisor::say;
use crate::supervisor::spec::update::OnFailure;

/// After `stable_for`, how much longer a healthcheck still "starting"
/// may take to give its first verdict.
const HEALTH_GRACE: Duration = Duration::from_secs(60);

impl Supervisor {
    /// Stops the old run and starts the new image (the tag now names it).
    pub(crate) fn replace_image(&mut self, name: &str, to: String, lock_overridden: bool) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let from = c.update.current.clone();
        c.update.pin = None;
        c.update.verdict = None;
        c.update.run_started = None;
        c.update.phase = Phase::Replacing {
            from: from.clone(),
            to: to.clone(),
            old_run: c.run_id(),
            since: Instant::now(),
        };
        say(format_args!(
            "container {name}: update started: {} -> {to}",
            from.as_deref().unwrap_or("?")
        ));
        let limit = start_limit(c);
        let data = json!({"from": from, "to": to, "lock_overridden": lock_overridden});
        self.timers
            .schedule_in(Instant::now(), limit, name, 0, TimerKind::UpdateRetry);
        // On disk before the stop: a daemon that dies now judges the
        // new image after its restart.
        self.save_update_record(name);
        self.emit(kinds::UPDATE_STARTED, Some(name), data);
        self.fire(name, Event::Restart);
    }

    /// Called for each container event as it is emitted: notes what an
    /// update needs to know, and queues the reaction.
    pub(crate) fn observe_for_update(&mut self, kind: &str, name: &str, data: &Value) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if !c.spec.update.enabled() && c.update.phase == Phase::Idle {
            return;
        }
        let new_run = match &c.update.phase {
            Phase::Replacing { old_run, .. } => c.run_id() != *old_run,
            // The previous image could not start again either: give up
            // the lock and the watch; its restart policy decides.
            Phase::RollingBack { failed_run, .. }
                if kind == kinds::CONTAINER_EXITED && c.run_id() != *failed_run =>
            {
                say(format_args!(
                    "container {name}: the previous image failed too: {}",
                    exit_reason(data)
                ));
                c.update.phase = Phase::Idle;
                c.update.lock = None;
                return;
            }
            _ => false,
        };
        let why = match kind {
            kinds::CONTAINER_STARTED => return self.update_run_started(name),
            kinds::CONTAINER_EXITED if new_run => exit_reason(data),
            kinds::CONTAINER_UNHEALTHY if new_run => "unhealthy".to_string(),
            _ => return,
        };
        if c.update.verdict.is_none() {
            c.update.verdict = Some(why);
        }
        let run_id = c.run_id();
        self.timers.schedule_in(
            Instant::now(),
            Duration::ZERO,
            name,
            run_id,
            TimerKind::UpdateRetry,
        );
    }

    /// A run started: which image it came from; the watch of a new image
    /// begins, or a rollback is over.
    fn update_run_started(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let running = read_use(&c.dirs.base).map(|u| u.manifest.to_string());
        let moved = running.is_some() && running != c.update.current;
        if moved {
            c.update.previous = c.update.current.take();
            c.update.current = running;
        }
        match &c.update.phase {
            Phase::Replacing { .. } => {
                c.update.run_started = Some(Instant::now());
                let (delay, run_id) = (c.spec.update.stable_for.0, c.run_id());
                self.timers.schedule_in(
                    Instant::now(),
                    delay,
                    name,
                    run_id,
                    TimerKind::UpdateStable,
                );
            }
            Phase::RollingBack { since, .. } => {
                say(format_args!(
                    "container {name}: rolled back, running again after {} ms",
                    since.elapsed().as_millis()
                ));
                c.update.phase = Phase::Idle;
                c.update.lock = None;
            }
            _ => {}
        }
        if moved {
            self.save_update_record(name);
        }
        self.arm_update_check(name);
    }

    /// Judges the new run: failed as noted, done once it ran (healthy)
    /// for `stable_for`, or not yet. `run_id` is the stable timer's run
    /// (u64::MAX from a retry).
    pub(crate) fn judge_new_run(&mut self, name: &str, run_id: u64) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if !matches!(c.update.phase, Phase::Replacing { .. }) {
            return;
        }
        if let Some(why) = c.update.verdict.take() {
            return self.new_run_failed(name, why);
        }
        if run_id != u64::MAX && run_id != c.run_id() {
            return;
        }
        let stable_for = c.spec.update.stable_for.0;
        let Some(ran) = c.update.run_started.map(|t| t.elapsed()) else {
            // Not started yet: its start or its failure comes, unless a
            // slow step never ends.
            let limit = start_limit(c);
            if let Phase::Replacing { since, .. } = c.update.phase
                && since.elapsed() >= limit
            {
                let why = format!("did not start within {limit:?}");
                return self.new_run_failed(name, why);
            }
            return;
        };
        if c.state() != State::Running || ran < stable_for {
            return;
        }
        let health = c.spec.healthcheck.as_ref().map(|_| c.health.status);
        match health {
            None | Some(HealthStatus::Healthy) => self.update_done(name),
            Some(HealthStatus::Unhealthy) => self.new_run_failed(name, "unhealthy".into()),
            Some(_) if ran >= stable_for + HEALTH_GRACE => {
                let why = format!("not healthy within {:?}", stable_for + HEALTH_GRACE);
                self.new_run_failed(name, why)
            }
            Some(_) => {
                let run_id = c.run_id();
                self.retry_update_soon(name, run_id);
            }
        }
    }

    fn update_done(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let Phase::Replacing {
            from, to, since, ..
        } = c.update.phase.clone()
        else {
            return;
        };
        c.update.phase = Phase::Idle;
        c.update.lock = None;
        c.update.failed = None;
        c.update.last = Some(outcome("done", None, from.clone(), Some(to.clone())));
        say(format_args!(
            "container {name}: update done: {to} stable after {} ms",
            since.elapsed().as_millis()
        ));
        // The previous image is no longer a rollback target.
        let old_pin = from.as_deref().and_then(|d| pin_name(&c.spec.image, d));
        let data = json!({"from": from, "to": to});
        self.emit(kinds::UPDATE_DONE, Some(name), data);
        self.save_update_record(name);
        if let Some(pin) = old_pin {
            let store = self.store.clone();
            let started = self
                .jobs
                .start(JobKind::UpdateUnpin, None, &[], move || unpin(&store, &pin));
            if let Err(e) = started {
                say(format_args!("container {name}: {e}"));
            }
        }
    }

    /// The new run failed: back to the previous image (pinned by digest),
    /// or with `on_failure: "stay"` (or nothing to go back to) keep it.
    fn new_run_failed(&mut self, name: &str, why: String) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let Phase::Replacing { from, to, .. } = c.update.phase.clone() else {
            return;
        };
        let pin = from.as_deref().and_then(|d| pin_name(&c.spec.image, d));
        let (Some(from), Some(pin), OnFailure::Rollback) = (from, pin, c.spec.update.on_failure)
        else {
            return self.update_failed(name, format!("the new image failed: {why}"));
        };
        say(format_args!(
            "container {name}: update to {to} failed ({why}); rolling back to {from}"
        ));
        c.update.pin = Some(pin);
        c.update.pin_for = Some(c.spec.image.clone());
        c.update.failed = Some(to.clone());
        c.update.phase = Phase::RollingBack {
            since: Instant::now(),
            failed_run: c.run_id(),
        };
        c.update.last = Some(outcome(
            "rolled_back",
            Some(why.clone()),
            Some(to.clone()),
            Some(from.clone()),
        ));
        let data = json!({"from": to, "to": from, "reason": why});
        self.emit(kinds::UPDATE_ROLLED_BACK, Some(name), data);
        self.save_update_record(name);
        self.fire(name, Event::Restart);
    }
}

/// How long a replacement may take to start the new run: the old run's
/// stop timeout, then as long as a run is judged.
pub(crate) fn start_limit(c: &crate::supervisor::runtime::container::Container) -> Duration {
    Duration::from_secs(c.spec.stop_timeout)
        .saturating_add(c.spec.update.stable_for.0)
        .saturating_add(HEALTH_GRACE)
}

/// An exit event's words: "exited with code N", "did not start: …".
pub(crate) fn exit_reason(data: &Value) -> String {
    let code = data.get("exit_code").and_then(Value::as_i64).unwrap_or(-1);
    match data.get("reason").and_then(Value::as_str) {
        Some("start_failed") => {
            let error = data.get("error").and_then(Value::as_str).unwrap_or("");
            format!("did not start: {error}")
        }
        Some("oom_killed") => format!("killed for lack of memory (exit code {code})"),
        _ => format!("exited with code {code}"),
    }
}
