//! The per-container flood limit on output: a token bucket of bytes, and
//! which output pipes the event loop may poll now. A container whose
//! bucket is empty simply is not read for a while, so its writer blocks in
//! write(2) once the pipe fills: nothing is lost, the supervisor never
//! waits, and other containers are not slowed. No log formatting here.

use std::time::{Duration, Instant};

use crate::supervisor::spec::service::LoggingSpec;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// A drained bucket is polled again once it holds this much time's worth
/// of its rate, so a flooding container wakes the loop at most ~4 times a
/// second (fewer, larger reads: the soak measured the loop's wake-ups as
/// the flood's main cost).
const RESUME_FRACTION_OF_RATE: u64 = 4;
/// ... or at least this many bytes (capped by the burst).
const MIN_RESUME_BYTES: u64 = 16 * 1024;

/// `rate` bytes per second on average, up to `burst` at once. Time is
/// passed in, so tests need no clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    /// The instant up to which refills have been credited to `tokens`;
    /// the fraction of a token earned since is kept by not advancing it.
    credited: Instant,
}

impl TokenBucket {
    /// A full bucket. Zero rate or burst are raised to 1 (validation
    /// refuses them; a bucket that never refills would hang the writer).
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let burst = burst.max(1);
        TokenBucket {
            rate: rate.max(1),
            burst,
            tokens: burst,
            credited: now,
        }
    }

    pub fn from_logging(logging: &LoggingSpec, now: Instant) -> Self {
        Self::new(logging.rate.0, logging.burst.0, now)
    }

    /// Follows a changed spec; the tokens already earned stay (capped).
    pub fn set_limits(&mut self, rate: u64, burst: u64) {
        self.rate = rate.max(1);
        self.burst = burst.max(1);
        self.tokens = self.tokens.min(self.burst);
    }

    /// Bytes that may be read at `now`.
    pub fn available(&self, now: Instant) -> u64 {
        self.refilled(now).0
    }

    /// Spends `n` bytes (more than available empties the bucket).
    pub fn take(&mut self, n: u64, now: Instant) {
        let (tokens, credited) = self.refilled(now);
        self.tokens = tokens.saturating_sub(n);
        self.credited = credited;
    }

    /// Whether the container's pipes should be polled at `now`.
    pub fn may_read(&self, now: Instant) -> bool {
        self.available(now) >= self.resume_threshold()
    }

    /// When `may_read` turns true; None when it already is.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        let (tokens, credited) = self.refilled(now);
        let missing = self.resume_threshold().checked_sub(tokens)?;
        if missing == 0 {
            return None;
        }
        // Round up, so the loop never wakes a hair early and spins.
        let nanos = (u128::from(missing) * NANOS_PER_SEC).div_ceil(u128::from(self.rate));
        Some(credited + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    fn resume_threshold(&self) -> u64 {
        (self.rate / RESUME_FRACTION_OF_RATE)
            .max(MIN_RESUME_BYTES)
            .min(self.burst)
    }

    /// (tokens, credited) as they are at `now`.
    fn refilled(&self, now: Instant) -> (u64, Instant) {
        if self.tokens >= self.burst {
            return (self.burst, now);
        }
        let elapsed = now.saturating_duration_since(self.credited).as_nanos();
        let earned = elapsed * u128::from(self.rate) / NANOS_PER_SEC;
        let tokens = u128::from(self.tokens) + earned;
        if tokens >= u128::from(self.burst) {
            return (self.burst, now);
        }
        // Credit only the time those whole tokens took, keeping the rest.
        let used = earned * NANOS_PER_SEC / u128::from(self.rate);
        let credited = self.credited + Duration::from_nanos(u64::try_from(used).unwrap_or(0));
        (u64::try_from(tokens).unwrap_or(self.burst), credited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_allows_the_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(64 * 1024, 128 * 1024, t0);
        assert_eq!(b.available(t0), 128 * 1024);
        b.take(128 * 1024, t0);
        assert_eq!(b.available(t0), 0);
        assert!(!b.may_read(t0));
        // 64 KiB/s: 500 ms earn 32 KiB, 1 s earns 64 KiB.
        assert_eq!(b.available(t0 + 500 * MS), 32 * 1024);
        assert_eq!(b.available(t0 + 1000 * MS), 64 * 1024);
        // Never more than the burst, however long it rests.
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 128 * 1024);
    }

    #[test]
    fn fractions_of_a_token_are_not_lost_between_takes() {
        let t0 = Instant::now();
        // 3 bytes/s: one token every 333.3 ms.
        let mut b = TokenBucket::new(3, 100, t0);
        b.take(100, t0);
        let mut got = 0;
        for i in 1..=300 {
            let now = t0 + 10 * i * MS;
            let n = b.available(now);
            got += n;
            b.take(n, now);
        }
        // 3 s at 3 bytes/s, read in 10 ms steps: exactly 9.
        assert_eq!(got, 9);
    }

    #[test]
    fn a_drained_bucket_says_when_to_poll_again() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(64 * 1024, 64 * 1024, t0);
        assert_eq!(b.ready_at(t0), None);
        b.take(64 * 1024, t0);
        // Resumes at 1/4 of the rate (16 KiB) or 16 KiB, the larger:
        // 16 KiB at 64 KiB/s is 250 ms.
        let at = b.ready_at(t0).unwrap();
        assert_eq!(at - t0, Duration::from_millis(250));
        assert!(!b.may_read(at - MS));
        assert!(b.may_read(at));
        assert_eq!(b.ready_at(at), None);
    }

    #[test]
    fn the_resume_threshold_never_exceeds_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1024, 1024, t0);
        b.take(1024, t0);
        assert_eq!(b.ready_at(t0).unwrap() - t0, Duration::from_secs(1));
    }

    #[test]
    fn limits_follow_a_changed_spec() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1000, t0);
        b.set_limits(10, 10);
        assert_eq!(b.available(t0), 10);
        b.take(10, t0);
        assert_eq!(b.available(t0 + Duration::from_secs(1)), 10);
        // Zero would never refill: raised to 1.
        b.set_limits(0, 0);
        assert_eq!(b.available(t0 + Duration::from_secs(5)), 1);
    }

    #[test]
    fn time_going_backwards_earns_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1000, 1000, t0);
        b.take(1000, t0);
        assert_eq!(b.available(t0 - Duration::from_secs(1)), 0);
    }
}
