//! The `update` API method: checks started now for one container or all
//! that follow a tag; the answer (one entry per container: current and
//! available digests, what was done) waits until every check answered.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::update::{CheckWaiter, Phase};

/// One `update` call waiting for its checks.
#[derive(Debug, Default)]
pub struct UpdateRequest {
    remaining: usize,
    results: Vec<Value>,
}

/// Requests by token, and answers ready for the API layer.
#[derive(Debug, Default)]
pub struct UpdateRequests {
    waiting: BTreeMap<u64, UpdateRequest>,
    ready: Vec<(u64, Value)>,
}

impl UpdateRequests {
    /// An answer another request kind (`apply`) has ready for its client.
    pub(crate) fn push_ready(&mut self, token: u64, answer: Value) {
        self.ready.push((token, answer));
    }

    fn add_result(&mut self, token: u64, result: Value, counts: bool) {
        let Some(req) = self.waiting.get_mut(&token) else {
            return;
        };
        req.results.push(result);
        if counts {
            req.remaining = req.remaining.saturating_sub(1);
        }
        if req.remaining == 0
            && let Some(req) = self.waiting.remove(&token)
        {
            self.ready
                .push((token, json!({ "containers": req.results })));
        }
    }
}

impl Supervisor {
    /// API `update`: check `names` now (every container that follows a
    /// tag when empty). With `dry_run` nothing changes; otherwise a moved
    /// tag is pulled and replaces the container as a timer's check would.
    pub fn request_update(
        &mut self,
        names: &[String],
        dry_run: bool,
        token: u64,
    ) -> Result<(), SupervisorError> {
        let targets: Vec<String> = if names.is_empty() {
            self.containers
                .values()
                .filter(|c| c.spec.update.enabled() && !c.ephemeral)
                .map(|c| c.name.clone())
                .collect()
        } else {
            for n in names {
                self.container(n)?;
            }
            names.to_vec()
        };
        if targets.is_empty() {
            return Err(SupervisorError::Invalid(
                "no container follows a tag (update.policy \"digest\")".into(),
            ));
        }
        self.update_requests.waiting.insert(
            token,
            UpdateRequest {
                remaining: targets.len(),
                results: Vec::new(),
            },
        );
        for name in &targets {
            if let Some(why) = self.check_for_request(name, token, dry_run) {
                let result = json!({"name": name, "error": why});
                self.update_requests.add_result(token, result, true);
            }
        }
        Ok(())
    }

    /// Starts the check for one container of a request; why not, if not.
    fn check_for_request(&mut self, name: &str, token: u64, dry_run: bool) -> Option<String> {
        let c = self.containers.get_mut(name)?;
        if c.update.phase != Phase::Idle {
            return Some(format!(
                "an update is under way ({})",
                c.update.phase_name()
            ));
        }
        if !dry_run && !c.spec.update.enabled() {
            return Some("its update.policy is \"none\" (--check only reports)".into());
        }
        c.update.waiters.push(CheckWaiter { token, dry_run });
        if self.start_update_check(name) {
            return None;
        }
        let c = self.containers.get_mut(name)?;
        c.update.waiters.retain(|w| w.token != token);
        Some(format!("not running ({:?})", c.state()))
    }

    /// A check answered: each waiting request hears it.
    pub(crate) fn answer_update_waiters(&mut self, waiters: &[CheckWaiter], reply: Value) {
        for w in waiters {
            self.update_requests
                .add_result(w.token, reply.clone(), true);
        }
    }

    /// A client went away: its request is forgotten.
    pub(crate) fn forget_update_client(&mut self, token: u64) {
        self.update_requests.waiting.remove(&token);
        for c in self.containers.values_mut() {
            c.update.waiters.retain(|w| w.token != token);
        }
    }

    /// Answers ready for the API layer.
    pub fn take_update_answers(&mut self) -> Vec<(u64, Value)> {
        std::mem::take(&mut self.update_requests.ready)
    }
}
