//! When the loop has been idle a while, give back the code pages startup
//! and the last burst of work left resident, the heap it freed and the
//! stack it grew (kernel/memory.rs), so an
//! idle daemon's RSS is what it idles with, not what it once ran. At most
//! once per `BETWEEN`, so a health check every few seconds does not turn
//! into a fault storm.

use std::time::{Duration, Instant};

use crate::kernel::memory::{release_code_pages, release_free_heap, release_unused_stack};

const IDLE: Duration = Duration::from_secs(2);
const BETWEEN: Duration = Duration::from_secs(5);

pub struct IdleTrim {
    last_busy: Instant,
    last_trim: Option<Instant>,
}

impl IdleTrim {
    pub fn new(now: Instant) -> Self {
        IdleTrim {
            last_busy: now,
            last_trim: None,
        }
    }

    pub fn busy(&mut self, now: Instant) {
        self.last_busy = now;
    }

    /// When the loop should wake to trim (`None`: nothing ran since the
    /// last trim).
    pub fn deadline(&self) -> Option<Instant> {
        match self.last_trim {
            Some(t) if t >= self.last_busy => None,
            Some(t) => Some((self.last_busy + IDLE).max(t + BETWEEN)),
            None => Some(self.last_busy + IDLE),
        }
    }

    pub fn trim_if_due(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| d <= now) {
            release_unused_stack();
            release_free_heap();
            // Last: code run after it (reading smaps, parsing) is faulted
            // back in, with the kernel's fault-around neighbours.
            release_code_pages();
            self.last_trim = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_idle_then_waits_for_work_and_the_spacing() {
        assert!(IDLE < BETWEEN);
        let t0 = Instant::now();
        let mut trim = IdleTrim::new(t0);
        assert_eq!(trim.deadline(), Some(t0 + IDLE));
        trim.trim_if_due(t0 + IDLE);
        assert_eq!(trim.deadline(), None, "nothing ran since");
        let t1 = t0 + Duration::from_secs(5);
        trim.busy(t1);
        assert_eq!(trim.deadline(), Some(t1 + IDLE), "work, then 2 s idle");
        trim.busy(t0 + IDLE + Duration::from_millis(1));
        assert_eq!(trim.deadline(), Some(t0 + IDLE + BETWEEN), "spaced");
        trim.busy(t0 + Duration::from_secs(20));
        assert_eq!(trim.deadline(), Some(t0 + Duration::from_secs(22)));
    }
}
