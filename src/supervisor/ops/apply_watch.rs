//! The watch of an apply (apply.rs): each container it added or changed
//! must run its `update.stable_for` (and be healthy when it has a
//! healthcheck), as an auto-update's new image must (update_watch.rs).
//! A task (restart "no" or "on-failure") that exits 0 is done too. The
//! first one that exits otherwise, turns unhealthy, or does not get there
//! in time undoes the whole apply. Events are only noted as they are emitted;
//! the judgement runs on the next timer turn.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::apply::APPLY_TICK;
use crate::supervisor::ops::update_watch::{exit_reason, start_limit};
use crate::supervisor::runtime::container::Container;
use crate::supervisor::runtime::health::HealthStatus;
use crate::supervisor::runtime::machine::State;
use crate::supervisor::spec::RestartPolicy;
use crate::supervisor::spec::load::LoadedSpec;

/// After `stable_for`, how much longer a healthcheck still "starting"
/// may take to give its first verdict (as update_watch.rs).
const HEALTH_GRACE: Duration = Duration::from_secs(60);

/// Where one watched container stands.
enum Verdict {
    Stable,
    Waiting,
    Failed(String),
}

impl Supervisor {
    /// Called for each container event as it is emitted.
    pub(crate) fn observe_for_apply(&mut self, kind: &str, name: &str, data: &Value) {
        if kind == kinds::CONTAINER_REMOVED && self.apply_restores.iter().any(|s| s.name == name) {
            return self.schedule_apply_check(Duration::ZERO);
        }
        let Some(c) = self.containers.get(name) else {
            return;
        };
        let run = c.run_id();
        let task = matches!(
            c.spec.restart.policy,
            RestartPolicy::No | RestartPolicy::OnFailure
        );
        let Some(w) = self
            .apply
            .as_mut()
            .filter(|a| a.switched && !a.committing)
            .and_then(|a| a.watched.get_mut(name))
        else {
            return;
        };
        let new_run = w.old_run != Some(run);
        let why = match kind {
            kinds::CONTAINER_STARTED if new_run => {
                w.started = Some(Instant::now());
                return;
            }
            kinds::CONTAINER_EXITED if new_run && task && exit_code(data) == Some(0) => {
                w.completed = true;
                return self.schedule_apply_check(Duration::ZERO);
            }
            kinds::CONTAINER_EXITED if new_run => exit_reason(data),
            kinds::CONTAINER_UNHEALTHY if new_run => "unhealthy".to_string(),
            kinds::CONTAINER_REMOVED => "removed".to_string(),
            _ => return,
        };
        w.failed.get_or_insert(why);
        self.schedule_apply_check(Duration::ZERO);
    }

    /// The watch's timer: roll back on the first failure, commit once
    /// every container is stable, else look again.
    pub(crate) fn judge_apply(&mut self) {
        self.restore_removed();
        if self.shutting_down {
            let why = "the daemon is shutting down".to_string();
            return self.roll_back(vec![("daemon".into(), why)]);
        }
        let Some(a) = self.apply.as_ref().filter(|a| a.switched && !a.committing) else {
            return;
        };
        let mut failed = Vec::new();
        let mut waiting = false;
        for (name, w) in &a.watched {
            let verdict = match (&w.failed, self.containers.get(name)) {
                (Some(why), _) => Verdict::Failed(why.clone()),
                (None, _) if w.completed => Verdict::Stable,
                (None, None) => Verdict::Failed("gone".into()),
                (None, Some(c)) => judge_one(c, w.started, a.since),
            };
            match verdict {
                Verdict::Failed(why) => failed.push((name.clone(), why)),
                Verdict::Waiting => waiting = true,
                Verdict::Stable => {}
            }
        }
        if !failed.is_empty() {
            return self.roll_back(failed);
        }
        if waiting {
            return self.schedule_apply_check(APPLY_TICK);
        }
        self.commit_apply();
    }
}

impl Supervisor {
    /// What a rolled-back apply removed is added again once its old
    /// container is gone; until then, looked at again.
    fn restore_removed(&mut self) {
        let (gone, waiting): (Vec<LoadedSpec>, Vec<LoadedSpec>) =
            std::mem::take(&mut self.apply_restores)
                .into_iter()
                .partition(|s| !self.containers.contains_key(&s.name));
        self.apply_restores = waiting;
        for spec in gone {
            self.add_from_config(spec);
        }
        if !self.apply_restores.is_empty() && self.apply.is_none() {
            self.schedule_apply_check(APPLY_TICK);
        }
    }
}

fn judge_one(c: &Container, started: Option<Instant>, since: Instant) -> Verdict {
    let stable_for = c.spec.update.stable_for.0;
    let Some(ran) = started.map(|t| t.elapsed()) else {
        let limit = start_limit(c);
        if since.elapsed() >= limit {
            return Verdict::Failed(format!("did not start within {limit:?}"));
        }
        return Verdict::Waiting;
    };
    if c.state() != State::Running || ran < stable_for {
        return Verdict::Waiting;
    }
    match c.spec.healthcheck.as_ref().map(|_| c.health.status) {
        None | Some(HealthStatus::Healthy) => Verdict::Stable,
        Some(HealthStatus::Unhealthy) => Verdict::Failed("unhealthy".into()),
        Some(_) if ran >= stable_for + HEALTH_GRACE => Verdict::Failed(format!(
            "not healthy within {:?}",
            stable_for + HEALTH_GRACE
        )),
        Some(_) => Verdict::Waiting,
    }
}

fn exit_code(data: &Value) -> Option<i64> {
    data.get("exit_code").and_then(Value::as_i64)
}
