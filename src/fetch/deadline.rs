//! Time limits of registry requests, so that no registry can hold a pull.
//! Every request — a token, a manifest or index, a blob, the 401 that
//! asks for a token — has one deadline for the whole exchange (connect,
//! request, headers and body); connecting and the response headers take
//! at most the timeout each, and no single read waits longer. A document (token, manifest, index, error body) must be
//! complete within the timeout; a blob within the timeout plus what a
//! 64 KiB/s link needs for its bytes, and it must keep that rate up: in
//! each window of one timeout, 64 KiB/s worth of bytes (or what is left of
//! the blob) must arrive. A registry that trickles bytes thus fails the
//! rate floor within two timeouts, long before a large blob's deadline.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The slowest link a body may look like before it counts as stalled.
pub const MIN_BYTES_PER_SEC: u64 = 64 * 1024;
/// No request may be given longer than this, however large its body
/// claims to be (a size read from a manifest must not overflow an Instant).
const MAX_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// One request's time limits, counted from the moment it was sent.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    sent: Instant,
    /// The whole exchange, body included.
    limit: Duration,
    /// The longest one read may wait; also the rate floor's window.
    timeout: Duration,
    /// Bytes per second a body must keep up (MIN_BYTES_PER_SEC unless a
    /// rate cap leaves a stream less).
    floor: u64,
}

impl Deadline {
    /// A document: the whole exchange within `timeout`.
    pub fn document(timeout: Duration) -> Deadline {
        Deadline {
            sent: Instant::now(),
            limit: timeout.min(MAX_LIMIT),
            timeout,
            floor: MIN_BYTES_PER_SEC,
        }
    }

    /// A body of `bytes` (a blob): `timeout` plus what the slowest
    /// acceptable link (`floor` bytes per second) needs for them.
    pub fn body(timeout: Duration, bytes: u64, floor: u64) -> Deadline {
        let floor = floor.max(1);
        let slow = Duration::from_secs(bytes / floor);
        Deadline {
            sent: Instant::now(),
            limit: timeout.saturating_add(slow).min(MAX_LIMIT),
            timeout,
            floor,
        }
    }

    /// The budget of the whole exchange (the HTTP client's global timeout).
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// `body` read against this deadline; with `expected` bytes, also held
    /// to the rate floor.
    pub fn read<R: Read>(self, body: R, expected: Option<u64>) -> Paced<R> {
        Paced {
            body,
            deadline: self,
            expected,
            got: 0,
            window_start: Instant::now(),
            window_got: 0,
        }
    }

    /// Whether a request failed because its time ran out.
    pub fn is_timeout(e: &ureq::Error) -> bool {
        matches!(e, ureq::Error::Timeout(_))
    }

    /// Why a request failed before its headers were complete, in words.
    pub fn explain(&self, e: &ureq::Error) -> String {
        use ureq::Timeout as T;
        let t = secs(self.timeout);
        match e {
            ureq::Error::Timeout(T::PerRead) => format!("nothing received for {t}"),
            ureq::Error::Timeout(T::Resolve | T::Connect) => format!("no connection within {t}"),
            ureq::Error::Timeout(T::RecvResponse) => format!("no response headers within {t}"),
            ureq::Error::Timeout(T::Global | T::PerCall) => {
                format!("no response within {}", secs(self.limit))
            }
            ureq::Error::Timeout(other) => format!("timed out ({other}) after {t}"),
            e => e.to_string(),
        }
    }

    fn late(&self, got: u64) -> String {
        format!(
            "no complete response within {} (got {})",
            secs(self.limit),
            bytes(got)
        )
    }

    fn passed(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.sent) >= self.limit
    }
}

/// A response body read within its request's deadline and, when its size
/// is known, at the rate floor. Failures are `TimedOut` errors that say
/// what happened and how many bytes had come.
pub struct Paced<R> {
    body: R,
    deadline: Deadline,
    /// Bytes the body should carry, for the rate floor (None: no floor).
    expected: Option<u64>,
    got: u64,
    window_start: Instant,
    window_got: u64,
}

impl<R> Paced<R> {
    /// Before each read: the deadline, then the rate over the last window.
    fn check(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.deadline.passed(now) {
            return Err(timed_out(self.deadline.late(self.got)));
        }
        let Some(expected) = self.expected else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < self.deadline.timeout {
            return Ok(());
        }
        let left = expected.saturating_sub(self.got - self.window_got);
        let floor = (self.deadline.floor as f64 * elapsed.as_secs_f64()) as u64;
        if self.window_got < floor.min(left) {
            return Err(timed_out(format!(
                "{} in {}, slower than the floor of {} (got {} of {expected} bytes)",
                bytes(self.window_got),
                secs(elapsed),
                rate(self.deadline.floor),
                self.got
            )));
        }
        self.window_start = now;
        self.window_got = 0;
        Ok(())
    }

    /// A read error from the client, reworded when it is a timeout.
    fn explain(&self, e: io::Error) -> io::Error {
        let timeout = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .and_then(|u| match u {
                ureq::Error::Timeout(t) => Some(*t),
                _ => None,
            });
        match timeout {
            Some(ureq::Timeout::PerRead) => timed_out(format!(
                "nothing received for {} (got {})",
                secs(self.deadline.timeout),
                bytes(self.got)
            )),
            Some(_) => timed_out(self.deadline.late(self.got)),
            None => io::Error::new(e.kind(), format!("{e} (got {})", bytes(self.got))),
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        match self.body.read(buf) {
            Ok(n) => {
                self.got += n as u64;
                self.window_got += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.explain(e)),
        }
    }
}

fn timed_out(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, message)
}

/// "30 s", "1.5 s".
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s} s")
    } else {
        format!("{s:.1} s")
    }
}

/// "64 KiB/s", "1000 bytes/s".
fn rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec >= 1024 && bytes_per_sec.is_multiple_of(1024) {
        format!("{} KiB/s", bytes_per_sec / 1024)
    } else {
        format!("{bytes_per_sec} bytes/s")
    }
}

/// "1 byte", "12 bytes".
fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `chunk` bytes per read (at most), after `gap`.
    struct Trickle {
        gap: Duration,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.gap);
            let n = buf.len().min(self.chunk);
            buf[..n].fill(b'x');
            Ok(n)
        }
    }

    fn trickle(gap_ms: u64, chunk: usize) -> Trickle {
        Trickle {
            gap: Duration::from_millis(gap_ms),
            chunk,
        }
    }

    /// Reads `r` to its end or its first error, 64 KiB at a time.
    fn drain(r: &mut impl Read) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0;
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    #[test]
    fn a_trickled_document_ends_at_its_deadline() {
        let d = Deadline::document(Duration::from_millis(300));
        let mut r = d.read(trickle(100, 1), None);
        let started = Instant::now();
        let e = drain(&mut r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            e.to_string()
                .starts_with("no complete response within 0.3 s (got "),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_millis(600));
    }

    #[test]
    fn a_trickled_blob_fails_the_floor_long_before_its_deadline() {
        // 100 MiB: a deadline of about half an hour; the floor ends it at once.
        let d = Deadline::body(Duration::from_millis(200), 100 << 20, MIN_BYTES_PER_SEC);
        assert!(d.limit() > Duration::from_secs(1500));
        let mut r = d.read(trickle(50, 1), Some(100 << 20));
        let started = Instant::now();
        let e = drain(&mut r).unwrap_err();
        assert!(
            e.to_string().contains("slower than the floor of 64 KiB/s"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn a_body_above_the_floor_is_read_to_its_end() {
        // 64 KiB every 20 ms (about 3 MiB/s) through several windows.
        let size = 512 << 10;
        let d = Deadline::body(Duration::from_millis(100), size, MIN_BYTES_PER_SEC);
        let mut r = d.read(trickle(20, 64 << 10), Some(size)).take(size);
        assert_eq!(drain(&mut r).unwrap(), size);
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        assert_eq!(
            Deadline::body(Duration::from_secs(3600), u64::MAX, MIN_BYTES_PER_SEC).limit(),
            MAX_LIMIT
        );
        assert_eq!(secs(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(secs(Duration::from_secs(30)), "30 s");
    }
}
