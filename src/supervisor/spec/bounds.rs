//! The limits every number, size, duration, count and string length read
//! from outside must respect (spec files, berth.json, API params), as named
//! constants, and the one range check they all go through. No field walks
//! here: `validate_bounds` applies these to specs and settings, `api::params`
//! to request params. docs/spec.md, docs/config.md and docs/api.md list them.
//!
//! Why bounds at all: the daemon adds these values to `Instant`s, multiplies
//! them into cgroup units and loops over these lists; as PID 1 a panic or a
//! hang there is a reboot loop driven by one config value. A value that
//! passes validation must be safe in every later use.

use std::fmt;
use std::time::Duration;

/// An inclusive range, with the unit shown in messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound<T> {
    pub min: T,
    pub max: T,
    pub unit: &'static str,
}

impl<T: BoundValue> Bound<T> {
    pub const fn new(min: T, max: T, unit: &'static str) -> Self {
        Bound { min, max, unit }
    }

    pub fn contains(&self, value: T) -> bool {
        // Written so that a NaN (never in JSON, but computed values could
        // be) is outside every range.
        value >= self.min && value <= self.max
    }

    /// "expected 0 to 86400 seconds, got 90000" when out of range.
    pub fn check(&self, value: T) -> Result<(), String> {
        if self.contains(value) {
            return Ok(());
        }
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        Err(format!(
            "expected {} to {}{unit}, got {}",
            Show(self.min),
            Show(self.max),
            Show(value)
        ))
    }
}

/// The value types bounds apply to: ordered, copyable, printable.
pub trait BoundValue: PartialOrd + Copy {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

macro_rules! integer_bound_value {
    ($($t:ty),*) => {$(
        impl BoundValue for $t {
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{self}")
            }
        }
    )*};
}
integer_bound_value!(u16, u32, u64, usize, f64);

impl BoundValue for Duration {
    /// In seconds, as the specs write durations ("0.01", "86400").
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_secs_f64())
    }
}

struct Show<T>(T);

impl<T: BoundValue> fmt::Display for Show<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(f)
    }
}

// ---- Time. ----

/// The longest anything may be waited for: a typo must not park a
/// container (or the machine) for years, and `Instant + Duration` must
/// never overflow (it panics).
pub const MAX_WAIT_SECS: u64 = 24 * 60 * 60;
const MAX_WAIT: Duration = Duration::from_secs(MAX_WAIT_SECS);
/// The shortest repeating interval: below it a health check is a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub const STOP_TIMEOUT_SECS: Bound<u64> = Bound::new(0, MAX_WAIT_SECS, "seconds");
pub const HEALTH_INTERVAL: Bound<Duration> = Bound::new(MIN_INTERVAL, MAX_WAIT, "seconds");
pub const HEALTH_TIMEOUT: Bound<Duration> = Bound::new(MIN_INTERVAL, MAX_WAIT, "seconds");
pub const HEALTH_START_PERIOD: Bound<Duration> = Bound::new(Duration::ZERO, MAX_WAIT, "seconds");
/// A spec's `update` durations. The interval may be as short as 100 ms so
/// tests need not wait; on a device it is hours.
pub const UPDATE_INTERVAL: Bound<Duration> = Bound::new(
    Duration::from_millis(100),
    Duration::from_secs(30 * 24 * 3600),
    "seconds",
);
pub const UPDATE_JITTER: Bound<Duration> = Bound::new(Duration::ZERO, MAX_WAIT, "seconds");
pub const UPDATE_STABLE_FOR: Bound<Duration> = Bound::new(Duration::ZERO, MAX_WAIT, "seconds");
pub const UPDATE_MAX_DEFER: Bound<Duration> = Bound::new(Duration::ZERO, MAX_WAIT, "seconds");
/// A `wait_for` entry's `timeout`: as long as an update's interval.
pub const GATE_TIMEOUT: Bound<Duration> = Bound::new(
    Duration::ZERO,
    Duration::from_secs(30 * 24 * 3600),
    "seconds",
);
/// berth.json's `pull.give_up_after`: a month at most, like an update's
/// interval.
pub const PULL_GIVE_UP_AFTER: Bound<Duration> = Bound::new(
    Duration::ZERO,
    Duration::from_secs(30 * 24 * 3600),
    "seconds",
);
/// berth.json's `shutdown` delays (PID 1 mode): a typo must not hang the
/// machine's shutdown for days.
pub const SHUTDOWN_DELAY_SECS: Bound<u64> = Bound::new(0, 3600, "seconds");
/// A webhook delivery (connect, send, answer), in the notifier process.
pub const WEBHOOK_TIMEOUT: Bound<Duration> = Bound::new(
    Duration::from_millis(100),
    Duration::from_secs(300),
    "seconds",
);
/// `berth pull --timeout`: one registry request's timeout (a document's
/// whole exchange, any one read, a blob's base allowance). An hour is far
/// past any registry worth waiting for.
pub const REGISTRY_TIMEOUT_SECS: Bound<u64> = Bound::new(1, 3600, "seconds");
/// A pull's rate cap: from a poor GPRS link up to far beyond any NIC.
pub const PULL_MAX_RATE: Bound<u64> = Bound::new(1 << 10, 1 << 40, "bytes per second");
/// The store's reserve of free space: none, up to 1 TiB.
pub const STORE_RESERVE: Bound<u64> = Bound::new(0, 1 << 40, "bytes");
/// A hardware watchdog's timeout (drivers take 1 s to minutes).
pub const WATCHDOG_TIMEOUT: Bound<Duration> =
    Bound::new(Duration::from_secs(1), Duration::from_secs(3600), "seconds");
/// berth.json's `host_network.ntp` poll intervals: from a second (tests)
/// to 8 hours: the kernel grows a clock's maximum error by 500 µs a second
/// and counts it unsynchronized past 16 s, about 8.9 h after the last poll.
pub const NTP_POLL: Bound<Duration> = Bound::new(
    Duration::from_secs(1),
    Duration::from_secs(8 * 3600),
    "seconds",
);
/// Layers downloaded at once.
pub const PULL_MAX_PARALLEL: Bound<u64> = Bound::new(1, 16, "layers");
/// Volume plugin calls block the daemon's loop: at most 5 minutes each.
pub const PLUGIN_TIMEOUT: Bound<Duration> =
    Bound::new(MIN_INTERVAL, Duration::from_secs(300), "seconds");

// ---- Counts of retries. ----

/// `restart.max_retries`: with the 30 s backoff cap, about a year.
pub const RESTART_MAX_RETRIES: Bound<u32> = Bound::new(0, 1_000_000, "restarts");
pub const HEALTH_RETRIES: Bound<u32> = Bound::new(1, 10_000, "failures");

// ---- Sizes. ----

/// The largest memory-like size: far beyond any machine, and still leaves
/// headroom (×4) before a u64 overflows when added or rounded to pages.
pub const MAX_MEMORY_BYTES: u64 = 1 << 62;
/// Docker's floor for a memory limit: below it a container cannot start.
pub const MIN_MEMORY_BYTES: u64 = 6 << 20;
/// One page: tmpfs rounds any size up to it.
const MIN_TMPFS_BYTES: u64 = 4096;

pub const MEMORY_BYTES: Bound<u64> = Bound::new(MIN_MEMORY_BYTES, MAX_MEMORY_BYTES, "bytes");
pub const MEMORY_RESERVATION_BYTES: Bound<u64> = Bound::new(0, MAX_MEMORY_BYTES, "bytes");
pub const MEMORY_SWAP_BYTES: Bound<u64> = Bound::new(MIN_MEMORY_BYTES, MAX_MEMORY_BYTES, "bytes");
pub const TMPFS_BYTES: Bound<u64> = Bound::new(MIN_TMPFS_BYTES, MAX_MEMORY_BYTES, "bytes");
/// A log file and the output rate: 1 TiB leaves `max_size × max_files`
/// (≤ 100) far from overflowing.
pub const LOG_MAX_SIZE_BYTES: Bound<u64> = Bound::new(4 << 10, 1 << 40, "bytes");
/// The RAM ring of a container with `logging.driver` "memory".
pub const MEMORY_LOG_BYTES: Bound<u64> = Bound::new(4 << 10, 64 << 20, "bytes");
/// berth.json's `journal.sync` "interval:…".
pub const JOURNAL_SYNC_INTERVAL: Bound<Duration> = Bound::new(
    Duration::from_millis(100),
    Duration::from_secs(3600),
    "seconds",
);
pub const LOG_RATE_BYTES: Bound<u64> = Bound::new(1 << 10, 1 << 40, "bytes per second");
pub const LOG_BURST_BYTES: Bound<u64> = Bound::new(1 << 10, 1 << 40, "bytes");
/// One secret file, checked at start (Docker's and Podman's limit is
/// 500 KiB; a CA bundle can be larger). The tmpfs holding a container's
/// secrets is charged to its memory cgroup.
pub const SECRET_FILE_BYTES: Bound<u64> = Bound::new(0, 1 << 20, "bytes");

// ---- Kernel counts. ----

/// PID_MAX_LIMIT on 64-bit kernels (include/linux/threads.h); 0 = unlimited.
pub const PIDS_LIMIT: Bound<u64> = Bound::new(0, 1 << 22, "processes");
/// cpu.shares as the kernel accepts it (runc's range).
pub const CPU_SHARES: Bound<u64> = Bound::new(2, 262_144, "shares");
/// blkio.weight's range (Docker's --blkio-weight).
pub const IO_WEIGHT: Bound<u16> = Bound::new(10, 1000, "");
pub const PORT: Bound<u16> = Bound::new(1, 65_535, "");

// ---- Devices. ----

/// A device's major number: 12 bits of the kernel's dev_t.
pub const DEVICE_MAJOR: Bound<u64> = Bound::new(0, (1 << 12) - 1, "");
/// Its minor number: 20 bits.
pub const DEVICE_MINOR: Bound<u64> = Bound::new(0, (1 << 20) - 1, "");
/// Device nodes one container gets, its `devices`' directories walked (or
/// a privileged container's whole /dev): each is a node made, a cgroup
/// rule and a Landlock rule in the child before exec, and the list passes
/// through a helper's answer (1 MiB at most).
pub const DEVICE_NODES: Bound<usize> = Bound::new(0, 4096, "device nodes");

// ---- Lengths and counts of lists (a spec file is at most 1 MiB anyway;
// these keep each field sane and the work per field small). ----

/// MAX_ARG_STRLEN (32 pages) less its NUL: execve refuses longer strings.
pub const ARG_BYTES: Bound<usize> = Bound::new(0, 128 * 1024 - 1, "bytes");
/// PATH_MAX, its NUL included.
pub const PATH_BYTES: Bound<usize> = Bound::new(0, 4095, "bytes");
/// Names, references, signals, globs and other short text.
pub const TEXT_BYTES: Bound<usize> = Bound::new(0, 4096, "bytes");
/// A container name given to the API (real ones are at most 63).
pub const NAME_BYTES: Bound<usize> = Bound::new(0, 255, "bytes");
/// One path component (NAME_MAX): a secret's source and target.
pub const FILE_NAME_BYTES: Bound<usize> = Bound::new(0, 255, "bytes");

pub const ARGV_ENTRIES: Bound<usize> = Bound::new(0, 4096, "entries");
pub const ENV_ENTRIES: Bound<usize> = Bound::new(0, 4096, "entries");
pub const MOUNT_ENTRIES: Bound<usize> = Bound::new(0, 256, "entries");
/// Every other list or map (capabilities, sysctls, ports, groups, …).
pub const LIST_ENTRIES: Bound<usize> = Bound::new(0, 256, "entries");
/// Landlock port rules: one syscall each in the child before exec.
pub const PORT_LIST_ENTRIES: Bound<usize> = Bound::new(0, 1024, "entries");
/// Hooks run one after another, each up to its timeout.
pub const HOOK_ENTRIES: Bound<usize> = Bound::new(0, 16, "entries");
pub const WEBHOOK_ENTRIES: Bound<usize> = Bound::new(0, 64, "entries");

// ---- API params. ----

/// `logs` `tail`: entries kept in memory while the log is read.
pub const LOG_TAIL_ENTRIES: Bound<usize> = Bound::new(0, 1_000_000, "entries");
/// `events` `since`: seqs are u64, but seq + 1 must stay representable.
pub const EVENT_SEQ: Bound<u64> = Bound::new(0, i64::MAX as u64, "");
pub const EVENTS_LIMIT: Bound<usize> = Bound::new(1, 10_000, "events");

/// Semantic problems are located in the text one by one; past this many
/// the rest are summed up, so a file of 20 000 bad entries is still
/// checked in linear time.
pub const MAX_REPORTED_PROBLEMS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_name_their_unit() {
        assert!(STOP_TIMEOUT_SECS.check(0).is_ok());
        assert!(STOP_TIMEOUT_SECS.check(86_400).is_ok());
        assert_eq!(
            STOP_TIMEOUT_SECS.check(u64::MAX).unwrap_err(),
            "expected 0 to 86400 seconds, got 18446744073709551615"
        );
        assert_eq!(
            HEALTH_INTERVAL.check(Duration::from_millis(1)).unwrap_err(),
            "expected 0.01 to 86400 seconds, got 0.001"
        );
        let cpus = Bound::new(0.01, 4.0, "CPUs");
        assert!(!cpus.contains(f64::NAN));
    }

    #[test]
    fn memory_sizes_leave_room_for_arithmetic() {
        // Page rounding and swap = memory + swap must not overflow.
        assert!(MAX_MEMORY_BYTES.checked_add(MAX_MEMORY_BYTES).is_some());
        assert!(LOG_MAX_SIZE_BYTES.max.checked_mul(100).is_some());
    }
}
