//! Restart policy and backoff: whether an exited container runs again, and
//! after how long.

use std::time::Duration;

use crate::supervisor::spec::{RestartPolicy, RestartSpec};

pub const INITIAL_BACKOFF_MS: u64 = 100;
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// A run at least this long counts as stable and resets the backoff.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// Whether a container that exited with `exit_code` after `restarts`
/// restarts should run again. A stop someone asked for never restarts.
pub fn should_restart(
    spec: &RestartSpec,
    exit_code: i32,
    restarts: u32,
    stop_requested: bool,
) -> bool {
    if stop_requested {
        return false;
    }
    match spec.policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure => {
            exit_code != 0 && spec.max_retries.is_none_or(|max| restarts < max)
        }
    }
}

/// Exponential backoff: 100 ms, 200 ms, 400 ms … capped at 30 s.
pub fn backoff_delay(step: u32) -> Duration {
    let first = Duration::from_millis(INITIAL_BACKOFF_MS);
    doubling_delay(first, step, Duration::from_millis(MAX_BACKOFF_MS))
}

/// `first` doubled `step` times, at most `cap`: the one backoff shape the
/// restarts, the pulls that wait for the network and the gates' probes use.
pub fn doubling_delay(first: Duration, step: u32, cap: Duration) -> Duration {
    first.saturating_mul(1u32 << step.min(20)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: RestartPolicy, max_retries: Option<u32>) -> RestartSpec {
        RestartSpec {
            policy,
            max_retries,
        }
    }

    #[test]
    fn on_failure_counts_retries() {
        let s = spec(RestartPolicy::OnFailure, Some(2));
        assert!(should_restart(&s, 3, 0, false));
        assert!(should_restart(&s, 3, 1, false));
        assert!(!should_restart(&s, 3, 2, false));
        assert!(!should_restart(&s, 0, 0, false));
        assert!(should_restart(
            &spec(RestartPolicy::OnFailure, None),
            1,
            1000,
            false
        ));
    }

    #[test]
    fn policies_and_manual_stops() {
        assert!(!should_restart(&spec(RestartPolicy::No, None), 1, 0, false));
        assert!(should_restart(
            &spec(RestartPolicy::Always, None),
            0,
            5,
            false
        ));
        assert!(!should_restart(
            &spec(RestartPolicy::Always, None),
            0,
            5,
            true
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_delay(0), Duration::from_millis(100));
        assert_eq!(backoff_delay(3), Duration::from_millis(800));
        assert_eq!(backoff_delay(40), Duration::from_millis(MAX_BACKOFF_MS));
    }
}
