//! How a container's pull ends for it: the image is there, or the start
//! fails (exit 125), or — after a failure that may pass (no network yet at
//! boot, the registry down, a certificate the unsynchronized clock calls
//! not yet valid) — the pull is tried again: backoff from a second,
//! doubling to five minutes, for ever or until berth.json's
//! `pull.give_up_after` has passed since the first failure.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::image::lookup::resolve;
use crate::image::pull::{EXIT_CLOCK, EXIT_TRANSIENT};
use crate::supervisor::events::journal::kinds;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::machine::Event;
use crate::supervisor::runtime::restart::doubling_delay;
use crate::supervisor::runtime::timers::TimerKind;

impl Supervisor {
    /// A container that waited for a pull hears how it ended. A pull that
    /// may pass (no network yet, the registry down) is tried again with
    /// backoff, the container staying `pulling` with the error to show,
    /// until `pull.give_up_after` (docs/edge.md).
    pub(crate) fn pull_ended_for(&mut self, name: &str, code: i32, error: Option<&str>) {
        let give_up_after = self.options.pull_give_up_after;
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        c.pulled = true;
        if code == 0 || resolve(&self.store, c.image_ref()).is_ok() {
            c.pull_failures = None;
            return self.fire(name, Event::PullDone);
        }
        let message = error.unwrap_or_default().to_string();
        let clock = code == EXIT_CLOCK;
        // `berth run` answers at once, as `docker run` does: a person waits.
        let retry = ((code == EXIT_TRANSIENT || clock) && !c.ephemeral)
            .then(|| next_pull_retry(&mut c.pull_failures, give_up_after))
            .flatten();
        let Some(delay) = retry else {
            c.pull_failures = None;
            return self.fail_without_image(name, message);
        };
        let message = format!(
            "{message} (trying again in {})",
            humantime::format_duration(delay)
        );
        let _ = c.log.write_notice(&message);
        c.error = Some(message);
        let (run_id, image) = (c.run_id(), c.image_ref().to_string());
        let now = std::time::Instant::now();
        self.timers
            .schedule_in(now, delay, name, run_id, TimerKind::PullRetry);
        if clock {
            // Also tried again as soon as the clock is set (clock_retry.rs).
            let data = json!({"reference": image, "error": error.unwrap_or_default()});
            self.emit(kinds::CLOCK_UNSYNCHRONIZED, Some(name), data);
        }
    }

    /// A container whose image could not be had: it ends as a failed start
    /// (exit 125, Docker's code for it), with the reason in its log.
    pub(crate) fn fail_without_image(&mut self, name: &str, message: String) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let _ = c.log.write_notice(&message);
        c.error = Some(message.clone());
        c.exit_reason = Some("start_failed".into());
        c.exit_code = Some(125);
        c.finished_at = Some(std::time::SystemTime::now());
        let data = json!({"exit_code": 125, "reason": "start_failed", "error": message});
        self.emit(kinds::CONTAINER_EXITED, Some(name), data);
        self.fire(name, Event::PullFailed);
    }
}

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
    Some(doubling_delay(PULL_RETRY_FIRST, *count - 1, PULL_RETRY_MAX))
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
