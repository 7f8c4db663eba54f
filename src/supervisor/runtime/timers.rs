//! The timer queue that sets the event loop's poll timeout: restart
//! backoffs and stop-timeout kills. A timer names its container and the
//! run it belongs to, so a timer outliving its run is simply ignored.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Where a timer whose delay overflows `Instant` goes: a year away.
const FAR_FUTURE_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// Start the container again after its backoff.
    Restart,
    /// The stop timeout passed: SIGKILL.
    Kill,
    /// Time for the next health check.
    Health,
    /// A health check ran past its timeout.
    HealthTimeout,
    /// Start the webhook notifier again (not tied to a container).
    Notifier,
    /// Start the host network helper again (not tied to a container).
    HostNetwork,
    /// Ask the registry whether the container's tag moved (any run).
    UpdateCheck,
    /// Try the update lock again, or judge a new image's health again.
    UpdateRetry,
    /// The new image ran `stable_for`: judge it (this run only).
    UpdateStable,
    /// Look at the containers a whole-config apply changed (any run).
    ApplyCheck,
    /// Try the pull of a container's missing image again.
    PullRetry,
    /// Look at a waiting container's `wait_for` gates again (a timeout,
    /// a probe's backoff, the clock).
    GateCheck,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub at: Instant,
    pub container: String,
    pub run_id: u64,
    pub kind: TimerKind,
    seq: u64,
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Timer>,
    next_seq: u64,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, container: &str, run_id: u64, kind: TimerKind) {
        self.next_seq += 1;
        self.heap.push(Timer {
            at,
            container: container.to_string(),
            run_id,
            kind,
            seq: self.next_seq,
        });
    }

    /// `schedule` at `now + delay`; a delay past what `Instant` can hold
    /// (never, once parsing bounds every duration) fires in a year.
    pub fn schedule_in(
        &mut self,
        now: Instant,
        delay: Duration,
        container: &str,
        run_id: u64,
        kind: TimerKind,
    ) {
        let at = now
            .checked_add(delay)
            .or_else(|| now.checked_add(Duration::from_secs(FAR_FUTURE_SECS)))
            .unwrap_or(now);
        self.schedule(at, container, run_id, kind);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|t| t.at)
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|t| t.at <= now) {
            due.extend(self.heap.pop());
        }
        due
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_out_in_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.schedule(now + Duration::from_millis(30), "c", 1, TimerKind::Kill);
        t.schedule(now + Duration::from_millis(10), "a", 1, TimerKind::Restart);
        t.schedule(now + Duration::from_millis(10), "b", 1, TimerKind::Restart);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        let due: Vec<_> = t
            .pop_due(now + Duration::from_millis(20))
            .into_iter()
            .map(|t| t.container)
            .collect();
        assert_eq!(due, ["a", "b"]);
        assert_eq!(t.len(), 1);
    }
}
