//! When a container's missing image is pulled again after a failure that
//! may pass (no network yet at boot, the registry down): backoff from a
//! second, doubling to five minutes, for ever or until berth.json's
//! `pull.give_up_after` has passed since the first failure.

use std::time::{Duration, Instant};

/// The first retry after a second, doubling to five minutes.
const PULL_RETRY_FIRST: Duration = Duration::from_secs(1);
const PULL_RETRY_MAX: Duration = Duration::from_secs(300);

/// Counts one more failure and says when to try again, or None once
/// `give_up_after` has passed since the first.
pub(crate) fn next_pull_retry(
    failures: &mut Option<(u32, Instant)>,
    give_up_after: Option<Duration>,
) -> Option<Duration> {
    let now = Instant::now();
    let (count, since) = failures.get_or_insert((0, now));
    if give_up_after.is_some_and(|limit| now.duration_since(*since) >= limit) {
        return None;
    }
    *count = count.saturating_add(1);
    let doublings = (*count - 1).min(16);
    Some((PULL_RETRY_FIRST * (1u32 << doublings)).min(PULL_RETRY_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_to_five_minutes_and_stop_after_give_up_after() {
        let mut failures = None;
        let delays: Vec<u64> = (0..12)
            .map(|_| next_pull_retry(&mut failures, None).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        let mut failures = None;
        assert_eq!(next_pull_retry(&mut failures, Some(Duration::ZERO)), None);
        let mut failures = None;
        let hour = Some(Duration::from_secs(3600));
        assert!(next_pull_retry(&mut failures, hour).is_some());
        let since = Instant::now().checked_sub(Duration::from_secs(3601));
        failures = since.map(|t| (1, t));
        assert_eq!(next_pull_retry(&mut failures, hour), None);
    }
}
