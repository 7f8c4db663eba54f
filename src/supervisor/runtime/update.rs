//! A container's auto-update record (docs/update.md): where its update
//! stands, the digests it ran and runs, the last registry answer, the
//! image it is pinned to after a rollback, and the last outcome. Plain
//! data: ops/update.rs and ops/update_watch.rs drive it.

use std::fs::File;
use std::time::Instant;

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

/// A manifest digest, "sha256:…" (runtime/ holds no fetch types).
pub type Digest = String;

/// The registry's answer: the tag's top document (an index or a manifest)
/// and this platform's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDigest {
    pub top: Digest,
    pub platform: Digest,
}

/// Where an update stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Idle,
    /// A helper asks the registry.
    Checking,
    /// The new image is being pulled (a `berth pull` child).
    Pulling {
        to: Digest,
    },
    /// The app holds its update lock: tried again each retry.
    Deferred {
        to: Digest,
        since: Instant,
    },
    /// The new image runs (or starts) and is watched for `stable_for`;
    /// `old_run` is the run it replaces (its exit is expected).
    Replacing {
        from: Option<Digest>,
        to: Digest,
        old_run: u64,
        since: Instant,
    },
    /// The previous image is starting again; `failed_run` is the run
    /// being stopped (its exit is expected).
    RollingBack {
        since: Instant,
        failed_run: u64,
    },
}

/// The last update's end, for `inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOutcome {
    /// RFC 3339.
    pub time: String,
    /// "done", "rolled_back", "failed", "deferred" or "unchanged".
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Digest>,
}

/// A client of the `update` method waiting for a check's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckWaiter {
    pub token: u64,
    /// Only report: change nothing.
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct UpdateState {
    pub phase: Phase,
    /// The manifest the current run's image came from.
    pub current: Option<Digest>,
    /// The manifest it ran before the last update.
    pub previous: Option<Digest>,
    /// The registry's last answer for the tag.
    pub seen: Option<TagDigest>,
    /// A digest that was rolled back: not tried again while the tag
    /// still names it.
    pub failed: Option<Digest>,
    /// Started from this reference (`repo@sha256:…`) instead of the
    /// spec's tag, after a rollback.
    pub pin: Option<String>,
    /// The spec's image when it was pinned: a spec naming another image
    /// (a reload) is not pinned.
    pub pin_for: Option<String>,
    pub last: Option<UpdateOutcome>,
    /// A check timer is queued.
    pub armed: bool,
    /// The update lock, held by berth from before the stop until the new
    /// run is judged.
    pub lock: Option<Flock<File>>,
    /// The `update` method's callers waiting for this check.
    pub waiters: Vec<CheckWaiter>,
    /// When the new run under watch started.
    pub run_started: Option<Instant>,
    /// Why the new run under watch failed, noted when it was seen (an
    /// exit, an unhealthy verdict) and acted on by the next timer turn.
    pub verdict: Option<String>,
    /// When the registry was last asked, and what it cost (ms, top
    /// document fetched).
    pub last_check: Option<(String, u64, bool)>,
}

impl Default for UpdateState {
    fn default() -> Self {
        UpdateState {
            phase: Phase::Idle,
            current: None,
            previous: None,
            seen: None,
            failed: None,
            pin: None,
            pin_for: None,
            last: None,
            armed: false,
            lock: None,
            waiters: Vec::new(),
            run_started: None,
            verdict: None,
            last_check: None,
        }
    }
}

impl UpdateState {
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::Checking => "checking",
            Phase::Pulling { .. } => "pulling",
            Phase::Deferred { .. } => "deferred",
            Phase::Replacing { .. } => "replacing",
            Phase::RollingBack { .. } => "rolling_back",
        }
    }

    /// What `inspect` shows.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "phase": self.phase_name(),
            "current_digest": self.current,
            "previous_digest": self.previous,
            "available_digest": self.seen.as_ref().map(|s| &s.platform),
            "pinned": self.pin,
            "failed_digest": self.failed,
            "lock_held_by_berth": self.lock.is_some(),
            "last_check": self.last_check.as_ref().map(|(t, ms, fetched)| serde_json::json!({
                "time": t, "ms": ms, "fetched_index": fetched,
            })),
            "last": self.last,
        })
    }
}

/// What survives a restart of the daemon (containers/NAME/update.json):
/// the digests, the pin and the failed digest, the last outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRecord {
    pub image: String,
    pub current: Option<Digest>,
    pub previous: Option<Digest>,
    pub seen: Option<TagDigest>,
    pub failed: Option<Digest>,
    pub pin: Option<String>,
    pub last: Option<UpdateOutcome>,
    /// A replacement on trial when the record was saved: (from, to).
    #[serde(default)]
    pub trial: Option<(Option<Digest>, Digest)>,
}

impl UpdateState {
    pub fn record(&self, image: &str) -> UpdateRecord {
        let trial = match &self.phase {
            Phase::Replacing { from, to, .. } => Some((from.clone(), to.clone())),
            _ => None,
        };
        UpdateRecord {
            image: image.to_string(),
            current: self.current.clone(),
            previous: self.previous.clone(),
            seen: self.seen.clone(),
            failed: self.failed.clone(),
            pin: self.pin.clone(),
            last: self.last.clone(),
            trial,
        }
    }

    /// Takes a saved record back, if it was saved for `image`.
    pub fn restore(&mut self, r: UpdateRecord, image: &str) {
        if r.image != image {
            return;
        }
        self.current = r.current;
        self.previous = r.previous;
        self.seen = r.seen;
        self.failed = r.failed;
        self.pin_for = r.pin.as_ref().map(|_| r.image.clone());
        self.pin = r.pin;
        self.last = r.last;
        // A daemon that died mid-trial: the run it starts now (from the
        // tag, the new image) is the trial's, judged as any.
        if let Some((from, to)) = r.trial {
            self.phase = Phase::Replacing {
                from,
                to,
                old_run: 0,
                since: Instant::now(),
            };
        }
    }
}

/// `repo@digest` for a tag reference's repository.
pub fn pinned_reference(repository: &str, digest: &str) -> String {
    format!("{repository}@{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_comes_back_only_for_the_image_it_was_saved_for() {
        let mut state = UpdateState {
            current: Some("sha256:aa".into()),
            pin: Some("r.io/app@sha256:aa".into()),
            failed: Some("sha256:bb".into()),
            ..UpdateState::default()
        };
        state.pin_for = Some("r.io/app:1".into());
        let record = state.record("r.io/app:1");
        let mut back = UpdateState::default();
        back.restore(record.clone(), "r.io/other:1");
        assert_eq!(back.pin, None);
        back.restore(record, "r.io/app:1");
        assert_eq!(back.pin.as_deref(), Some("r.io/app@sha256:aa"));
        assert_eq!(back.pin_for.as_deref(), Some("r.io/app:1"));
        assert_eq!(back.failed.as_deref(), Some("sha256:bb"));
        assert_eq!(back.phase, Phase::Idle);
        assert_eq!(back.view()["pinned"], "r.io/app@sha256:aa");
    }
}
