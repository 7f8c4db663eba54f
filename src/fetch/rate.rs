//! A pull's download rate cap (`pull.max_rate`, `berth pull --max-rate`):
//! one token bucket shared by every stream of the pull, so that three
//! layers at once still stay under the cap together. Bytes are charged
//! after they are read (the bucket may go into debt by one read), and the
//! reader sleeps until the debt is paid: the socket is then not read, so
//! TCP's window holds the sender back and the link itself stays under the
//! cap, not only berth's count of it. Pulls run in a helper process, never
//! in the supervisor's loop, so sleeping here stalls nothing else.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this much time's worth of bytes may arrive at once after an
/// idle spell (the bucket's depth).
const BURST: Duration = Duration::from_millis(250);
/// The bucket is never shallower than this, so one read fits.
const MIN_BURST_BYTES: f64 = 16.0 * 1024.0;

#[derive(Debug)]
pub struct RateLimit {
    bytes_per_sec: f64,
    depth: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// A cap of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        let rate = bytes_per_sec.max(1) as f64;
        let depth = (rate * BURST.as_secs_f64()).max(MIN_BURST_BYTES);
        RateLimit {
            bytes_per_sec: rate,
            depth,
            state: Mutex::new(Bucket {
                tokens: depth,
                refilled: Instant::now(),
            }),
        }
    }

    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec as u64
    }

    /// How large one read should be: about a tenth of a second's worth,
    /// so that sleeps are short and the rate smooth.
    pub fn read_size(&self, most: usize) -> usize {
        ((self.bytes_per_sec / 10.0) as usize).clamp(1024, most.max(1024))
    }

    /// Charges `n` bytes just read; sleeps until the bucket is no longer
    /// in debt.
    pub fn charge(&self, n: usize) {
        if let Some(wait) = self.debit(n, Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    /// The bookkeeping of `charge`: how long to wait, if at all.
    fn debit(&self, n: usize, now: Instant) -> Option<Duration> {
        let mut b = match self.state.lock() {
            Ok(b) => b,
            // A thread panicked holding it: the numbers are still numbers.
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.bytes_per_sec).min(self.depth);
        b.refilled = now;
        b.tokens -= n as f64;
        (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / self.bytes_per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_the_burst_cost_time_at_the_rate() {
        let limit = RateLimit::new(1 << 20);
        let t0 = Instant::now();
        // The first quarter second's worth is free (the bucket starts full).
        assert_eq!(limit.debit(256 << 10, t0), None);
        let wait = limit.debit(512 << 10, t0).expect("in debt");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Half a second later the debt is paid; the next read waits again.
        let later = t0 + Duration::from_millis(500);
        let wait = limit.debit(1 << 20, later).expect("in debt");
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn an_idle_spell_refills_no_more_than_the_depth() {
        let limit = RateLimit::new(1000);
        let t0 = Instant::now();
        assert_eq!(limit.debit(16 * 1024, t0), None);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limit.debit(16 * 1024, later), None);
        assert!(limit.debit(1, later).is_some());
        assert_eq!(limit.read_size(256 << 10), 1024);
        assert_eq!(RateLimit::new(10 << 20).read_size(256 << 10), 256 << 10);
    }
}
