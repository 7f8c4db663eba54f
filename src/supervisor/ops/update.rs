//! Auto-update (docs/update.md), the first half: the check timer, the
//! registry check in a helper, the background pull, and the update lock
//! that may defer the replacement. update_watch.rs judges the new run
//! and rolls back.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::image::lookup::resolve;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::launch::update_lock::lock_file;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::jobs::{JobDone, JobKind};
use crate::supervisor::ops::pull::LinkOptions;
use crate::supervisor::ops::update_check::CheckWork;
use crate::supervisor::runtime::machine::State;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::runtime::update::{Phase, TagDigest, UpdateOutcome};
use crate::supervisor::say;

/// How often a held update lock is tried again.
pub(crate) const LOCK_RETRY: Duration = Duration::from_secs(1);

/// A random delay in [0, max]: the time's nanoseconds mixed with the pid
/// (splitmix64), enough to spread a fleet's checks.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(x.checked_rem(max_ms.saturating_add(1)).unwrap_or(0))
}

pub(crate) fn now_text() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl Supervisor {
    /// Queues the next check (interval + jitter) unless one is queued.
    pub(crate) fn arm_update_check(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if !c.spec.update.enabled() || c.update.armed || c.ephemeral {
            return;
        }
        c.update.armed = true;
        let delay = c.spec.update.interval.0 + jitter(c.spec.update.jitter.0);
        self.timers
            .schedule_in(Instant::now(), delay, name, 0, TimerKind::UpdateCheck);
    }

    /// The update timers: they belong to the container, not to one run,
    /// except UpdateStable (update_watch.rs).
    pub(crate) fn on_update_timer(&mut self, name: &str, kind: TimerKind, run_id: u64) {
        match kind {
            TimerKind::UpdateCheck => {
                if let Some(c) = self.containers.get_mut(name) {
                    c.update.armed = false;
                }
                self.start_update_check(name);
                self.arm_update_check(name);
            }
            TimerKind::UpdateRetry => self.retry_update(name),
            TimerKind::UpdateStable => self.judge_new_run(name, run_id),
            _ => {}
        }
    }

    /// Starts a check in a helper when the container runs and no update
    /// is under way; false when none was started.
    pub(crate) fn start_update_check(&mut self, name: &str) -> bool {
        let Some(c) = self.containers.get_mut(name) else {
            return false;
        };
        if self.shutting_down || c.update.phase != Phase::Idle || c.state() != State::Running {
            return false;
        }
        let dry_run = !c.update.waiters.is_empty() && c.update.waiters.iter().all(|w| w.dry_run);
        let work = CheckWork {
            config_dir: self.options.config_dir.clone(),
            reference: c.spec.image.clone(),
            known: c.update.seen.clone(),
            pin: !dry_run && c.update.current.is_some(),
            current: c.update.current.clone(),
            failed: c.update.failed.clone(),
            store: self.store.clone(),
            container_dir: c.dirs.base.clone(),
        };
        let owner = Some((name.to_string(), c.run_id()));
        match self
            .jobs
            .start(JobKind::UpdateCheck, owner, &[], move || work.run())
        {
            Ok(_) => {
                c.update.phase = Phase::Checking;
                true
            }
            Err(e) => {
                say(format_args!("container {name}: update check: {e}"));
                false
            }
        }
    }

    /// The check helper answered.
    pub(crate) fn update_checked(&mut self, done: JobDone) {
        let Some((name, _)) = done.container.clone() else {
            return;
        };
        let Some(c) = self.containers.get_mut(&name) else {
            return;
        };
        c.update.phase = Phase::Idle;
        let waiters = std::mem::take(&mut c.update.waiters);
        let dry_run = !waiters.is_empty() && waiters.iter().all(|w| w.dry_run);
        if let Some(e) = Self::job_error(&done) {
            say(format_args!("container {name}: update check failed: {e}"));
            c.update.last = Some(outcome("check_failed", Some(e.clone()), None, None));
            let reply = json!({"name": name, "error": e});
            return self.answer_update_waiters(&waiters, reply);
        }
        let text = |k: &str| done.answer.get(k).and_then(Value::as_str).map(String::from);
        let (Some(top), Some(available)) = (text("top"), text("platform")) else {
            let reply = json!({"name": name, "error": "the update check answered nothing"});
            return self.answer_update_waiters(&waiters, reply);
        };
        let ms = done.answer.get("ms").and_then(Value::as_u64).unwrap_or(0);
        let fetched = done.answer.get("fetched").and_then(Value::as_bool) == Some(true);
        c.update.last_check = Some((now_text(), ms, fetched));
        c.update.seen = Some(TagDigest {
            top,
            platform: available.clone(),
        });
        let current = c.update.current.clone();
        let changed = current.as_deref() != Some(available.as_str());
        let skipped = c.update.failed.as_deref() == Some(available.as_str());
        let mut reply = json!({"name": name, "current": current, "available": available,
            "changed": changed, "check_ms": ms});
        let action = match (changed, skipped, dry_run) {
            (false, _, _) => "none",
            (true, true, _) => "skipped: this digest was rolled back",
            (true, false, true) => "none (dry run)",
            (true, false, false) => "updating",
        };
        reply["action"] = json!(action);
        self.answer_update_waiters(&waiters, reply);
        if action == "updating" {
            self.update_available(&name, available);
        }
    }

    /// The tag moved: event, then the pull in the background.
    fn update_available(&mut self, name: &str, to: String) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let from = c.update.current.clone();
        let reference = c.spec.image.clone();
        c.update.phase = Phase::Pulling { to: to.clone() };
        say(format_args!(
            "container {name}: update available: {reference} is {to} (runs {})",
            from.as_deref().unwrap_or("?")
        ));
        let data = json!({"reference": reference, "from": from, "to": to});
        self.emit(kinds::UPDATE_AVAILABLE, Some(name), data);
        if let Err(e) = self.join_or_start_pull(&reference, None, &LinkOptions::default()) {
            self.update_failed(name, format!("cannot start a pull of {reference}: {e}"));
        }
    }

    /// A pull ended (ops/pull.rs): the containers whose update waited on
    /// it go on to the lock, or record the failure.
    pub(crate) fn update_pull_ended(&mut self, reference: &str, error: Option<&str>) {
        let names: Vec<String> = self
            .containers
            .values()
            .filter(|c| {
                c.spec.image == reference && matches!(c.update.phase, Phase::Pulling { .. })
            })
            .map(|c| c.name.clone())
            .collect();
        for name in names {
            if let Some(c) = self.containers.get_mut(&name) {
                c.pulled = true;
            }
            match error {
                Some(e) => self.update_failed(&name, format!("pull failed: {e}")),
                None => self.retry_update(&name),
            }
        }
    }

    /// After the pull, and on each lock retry: replace the container once
    /// berth holds its update lock (or `max_defer` ran out).
    fn retry_update(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if self.shutting_down {
            return;
        }
        // Stopped by request meanwhile: an update must not start it.
        let waiting = matches!(
            c.update.phase,
            Phase::Pulling { .. } | Phase::Deferred { .. }
        );
        if c.stop_requested() && waiting {
            let why = "the container was stopped".to_string();
            c.update.phase = Phase::Idle;
            c.update.last = Some(outcome("failed", Some(why), c.update.current.clone(), None));
            return;
        }
        let (to, since) = match &c.update.phase {
            Phase::Pulling { to } => (to.clone(), Instant::now()),
            Phase::Deferred { to, since } => (to.clone(), *since),
            Phase::Replacing { .. } => return self.judge_new_run(name, u64::MAX),
            _ => return,
        };
        // What the pull brought is what runs next, whatever the check saw.
        let to = match resolve(&self.store, &c.spec.image) {
            Ok(image) => image.record.manifest.to_string(),
            Err(_) => to,
        };
        if c.update.current.as_deref() == Some(to.as_str()) {
            c.update.phase = Phase::Idle;
            c.update.last = Some(outcome("unchanged", None, None, Some(to)));
            return;
        }
        match try_lock(&c.dirs.base) {
            Ok(Some(lock)) => {
                c.update.lock = Some(lock);
                self.replace_image(name, to, false);
            }
            Ok(None) => self.defer_update(name, to, since),
            Err(e) => {
                say(format_args!("container {name}: update lock: {e}; updating"));
                self.replace_image(name, to, false);
            }
        }
    }

    /// The app holds its lock: wait, up to `max_defer`.
    fn defer_update(&mut self, name: &str, to: String, since: Instant) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let waited = since.elapsed();
        if c.spec.update.max_defer.is_some_and(|m| waited >= m.0) {
            say(format_args!(
                "container {name}: update lock still held after {waited:?}; updating anyway"
            ));
            return self.replace_image(name, to, true);
        }
        let first = !matches!(c.update.phase, Phase::Deferred { .. });
        c.update.phase = Phase::Deferred {
            to: to.clone(),
            since,
        };
        let run_id = c.run_id();
        self.retry_update_soon(name, run_id);
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        if first {
            let why = "the app holds its update lock";
            say(format_args!("container {name}: update deferred: {why}"));
            let from = c.update.current.clone();
            c.update.last = Some(outcome(
                "deferred",
                Some(why.into()),
                from,
                Some(to.clone()),
            ));
            let data = json!({"to": to, "reason": why});
            self.emit(kinds::UPDATE_DEFERRED, Some(name), data);
        }
    }

    /// An update that could not go on: recorded, and the container keeps
    /// what it runs.
    pub(crate) fn update_failed(&mut self, name: &str, reason: String) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        say(format_args!("container {name}: update failed: {reason}"));
        let to = match &c.update.phase {
            Phase::Pulling { to } | Phase::Deferred { to, .. } => Some(to.clone()),
            Phase::Replacing { to, .. } => Some(to.clone()),
            _ => None,
        };
        c.update.phase = Phase::Idle;
        c.update.lock = None;
        let from = c.update.current.clone();
        c.update.last = Some(outcome(
            "failed",
            Some(reason.clone()),
            from.clone(),
            to.clone(),
        ));
        let data = json!({"from": from, "to": to, "reason": reason});
        self.emit(kinds::UPDATE_FAILED, Some(name), data);
        self.save_update_record(name);
    }
}

/// Tries the container's update lock without waiting: Some(lock) when
/// berth has it now, None while the app holds it.
fn try_lock(base: &std::path::Path) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, String> {
    use nix::fcntl::{Flock, FlockArg};
    let path = lock_file(base);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("flock {}: {e}", path.display())),
    }
}

pub(crate) fn outcome(
    result: &str,
    reason: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> UpdateOutcome {
    UpdateOutcome {
        time: now_text(),
        result: result.to_string(),
        reason,
        from,
        to,
    }
}

impl Supervisor {
    /// Another look in LOCK_RETRY: at a held lock, or at a new run whose
    /// health has no verdict yet.
    pub(crate) fn retry_update_soon(&mut self, name: &str, run_id: u64) {
        self.timers.schedule_in(
            Instant::now(),
            LOCK_RETRY,
            name,
            run_id,
            TimerKind::UpdateRetry,
        );
    }
}
