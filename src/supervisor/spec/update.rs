//! The `update` field of a spec: whether berth follows the image's tag in
//! its registry (policy "digest"), how often it asks, how long a new
//! version must stay up before it counts, and what a failure does
//! (docs/update.md). Bounds live in bounds.rs; no I/O here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::{UPDATE_INTERVAL, UPDATE_JITTER, UPDATE_MAX_DEFER, UPDATE_STABLE_FOR};
use super::service::Seconds;
use super::validate_bounds::BoundsCheck;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdatePolicy {
    /// The image is never replaced by berth on its own.
    #[default]
    None,
    /// The tag's digest is checked on each interval; a new one is pulled
    /// and replaces the container.
    Digest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Start the previous image again, pinned by its digest.
    #[default]
    Rollback,
    /// Leave the new image as it is (the restart policy applies).
    Stay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    #[serde(default)]
    pub policy: UpdatePolicy,
    /// Between two checks of the registry.
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    /// A random delay up to this much is added to each interval, so a
    /// fleet does not ask the registry at the same second.
    #[serde(default = "default_jitter")]
    pub jitter: Seconds,
    /// How long the new version must run (and be healthy, with a
    /// healthcheck) before the update counts as done.
    #[serde(default = "default_stable_for")]
    pub stable_for: Seconds,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The longest the container's update lock may defer an update;
    /// absent: as long as the lock is held.
    #[serde(default)]
    pub max_defer: Option<Seconds>,
}

impl Default for UpdateSpec {
    fn default() -> Self {
        UpdateSpec {
            policy: UpdatePolicy::None,
            interval: default_interval(),
            jitter: default_jitter(),
            stable_for: default_stable_for(),
            on_failure: OnFailure::Rollback,
            max_defer: None,
        }
    }
}

impl UpdateSpec {
    pub fn enabled(&self) -> bool {
        self.policy == UpdatePolicy::Digest
    }
}

fn default_interval() -> Seconds {
    Seconds(Duration::from_secs(6 * 3600))
}
fn default_jitter() -> Seconds {
    Seconds(Duration::from_secs(600))
}
fn default_stable_for() -> Seconds {
    Seconds(Duration::from_secs(60))
}

/// Every duration of `update` within its range.
pub fn check_update_bounds(u: &UpdateSpec, c: &mut BoundsCheck<'_>) {
    c.value("interval", &UPDATE_INTERVAL, u.interval.0);
    c.value("jitter", &UPDATE_JITTER, u.jitter.0);
    c.value("stable_for", &UPDATE_STABLE_FOR, u.stable_for.0);
    if let Some(d) = u.max_defer {
        c.value("max_defer", &UPDATE_MAX_DEFER, d.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_text_durations() {
        let u: UpdateSpec = serde_json::from_str(r#"{"policy": "digest"}"#).unwrap();
        assert!(u.enabled());
        assert_eq!(u.interval.0, Duration::from_secs(6 * 3600));
        assert_eq!(u.on_failure, OnFailure::Rollback);
        let u: UpdateSpec = serde_json::from_str(
            r#"{"policy": "digest", "interval": "500ms", "stable_for": 2, "on_failure": "stay", "max_defer": "1h"}"#,
        )
        .unwrap();
        assert_eq!(u.interval.0, Duration::from_millis(500));
        assert_eq!(u.max_defer, Some(Seconds(Duration::from_secs(3600))));
        assert!(serde_json::from_str::<UpdateSpec>(r#"{"policy": "latest"}"#).is_err());
        assert!(serde_json::from_str::<UpdateSpec>(r#"{"intervall": 1}"#).is_err());
        assert!(!UpdateSpec::default().enabled());
    }

    #[test]
    fn durations_out_of_range_are_named() {
        let spec: crate::supervisor::spec::Spec = serde_json::from_str(
            r#"{"image": "x:1", "update": {"policy": "digest", "interval": "10ms", "stable_for": "2d"}}"#,
        )
        .unwrap();
        let problems = crate::supervisor::spec::validate::check_spec(&spec);
        let fields: Vec<String> = problems.iter().map(|p| p.0.join(".")).collect();
        assert!(
            fields.contains(&"update.interval".to_string()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"update.stable_for".to_string()),
            "{fields:?}"
        );
    }
}
