//! What berth itself writes to its filesystems since the daemon started,
//! by kind: counters bumped where the writes happen (a relaxed atomic add
//! each), read by the API's `writes` and `info` (docs/config.md, "Flash
//! wear"). Container logs are also counted per container by their writer.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Container log files (json-file driver).
    Logs,
    /// The event journal.
    Journal,
    /// The image store, by pull helpers (what the kernel counted as
    /// written for them) and by the daemon.
    Store,
    /// The daemon's small state files (markers, records).
    State,
}

static COUNTERS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

pub fn count(kind: WriteKind, bytes: u64) {
    COUNTERS[kind as usize].fetch_add(bytes, Ordering::Relaxed);
}

/// The counters now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteTotals {
    pub logs: u64,
    pub journal: u64,
    pub store: u64,
    pub state: u64,
    pub total: u64,
}

pub fn totals() -> WriteTotals {
    let get = |k: WriteKind| COUNTERS[k as usize].load(Ordering::Relaxed);
    let (logs, journal, store, state) = (
        get(WriteKind::Logs),
        get(WriteKind::Journal),
        get(WriteKind::Store),
        get(WriteKind::State),
    );
    WriteTotals {
        logs,
        journal,
        store,
        state,
        total: logs + journal + store + state,
    }
}

/// `std::fs::write`, counted as `kind`.
pub fn write_file(path: &std::path::Path, bytes: &[u8], kind: WriteKind) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    count(kind, bytes.len() as u64);
    Ok(())
}

/// The `write_bytes` of a process's /proc/PID/io: what the kernel
/// counted as sent (or to be sent) to storage for it. None when it cannot
/// be read (gone, or no task I/O accounting in the kernel).
pub fn proc_write_bytes(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}
