//! Usage read back from a container's cgroup: CPU time, memory, pids and
//! OOM kills, on cgroup v1 or v2. Best effort: a missing or unreadable
//! file reads as zero or None, never as an error, because stats must not
//! fail a `ps`. The file formats are parsed by the pure functions below.

use std::fs;
use std::path::Path;

use serde::Serialize;

use super::{ContainerCgroup, Ctl};

/// At or above this a v1 memory limit means "unlimited": the kernel shows
/// PAGE_COUNTER_MAX pages as bytes, i64::MAX rounded down to a page
/// (9223372036854771712 with 4 KiB pages), and no real limit is 4 EiB.
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupStats {
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    /// High-water mark; None on v2 kernels before 5.19 (no memory.peak).
    pub memory_peak_bytes: Option<u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
}

impl ContainerCgroup {
    pub fn stats(&self) -> CgroupStats {
        if self.v2() {
            let dir = self.unified_dir();
            let read = |file: &str| read(&dir, file);
            CgroupStats {
                cpu_usage_ns: keyed(&read("cpu.stat"), "usage_usec")
                    .map_or(0, |us| us.saturating_mul(1000)),
                memory_usage_bytes: number(&read("memory.current")).unwrap_or(0),
                memory_limit_bytes: max_or_number(&read("memory.max")),
                memory_peak_bytes: number(&read("memory.peak")),
                pids_current: number(&read("pids.current")).unwrap_or(0),
                pids_limit: max_or_number(&read("pids.max")),
            }
        } else {
            let memory = |file: &str| self.read_v1(Ctl::Memory, file);
            let pids = |file: &str| self.read_v1(Ctl::Pids, file);
            CgroupStats {
                cpu_usage_ns: number(&self.read_v1(Ctl::CpuAcct, "cpuacct.usage")).unwrap_or(0),
                memory_usage_bytes: number(&memory("memory.usage_in_bytes")).unwrap_or(0),
                memory_limit_bytes: v1_limit(&memory("memory.limit_in_bytes")),
                memory_peak_bytes: number(&memory("memory.max_usage_in_bytes")),
                pids_current: number(&pids("pids.current")).unwrap_or(0),
                pids_limit: max_or_number(&pids("pids.max")),
            }
        }
    }

    /// How many processes the kernel's OOM killer has killed in this
    /// cgroup (v2: and below it).
    pub fn oom_kills(&self) -> u64 {
        let text = if self.v2() {
            read(&self.unified_dir(), "memory.events")
        } else {
            self.read_v1(Ctl::Memory, "memory.oom_control")
        };
        keyed(&text, "oom_kill").unwrap_or(0)
    }

    fn read_v1(&self, ctl: Ctl, file: &str) -> String {
        self.ctl_dir(ctl)
            .map(|dir| read(&dir, file))
            .unwrap_or_default()
    }
}

/// The file's text, or "" when it cannot be read.
fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_default()
}

/// A single-number file such as memory.current or cpuacct.usage.
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A v2 limit file (memory.max, pids.max; also v1's pids.max): "max" is
/// no limit.
fn max_or_number(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => None,
        other => number(other),
    }
}

/// v1 memory.limit_in_bytes: a huge number stands for "unlimited".
fn v1_limit(text: &str) -> Option<u64> {
    number(text).filter(|&bytes| bytes < V1_UNLIMITED)
}

/// One value of a flat-keyed file ("key value" lines: cpu.stat,
/// memory.events, v1's memory.oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        if k == key { number(v) } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_files() {
        assert_eq!(number("123456789\n"), Some(123_456_789));
        assert_eq!(number(""), None);
        assert_eq!(v1_limit("9223372036854771712\n"), None);
        assert_eq!(v1_limit("9223372036854710272\n"), None); // 64 KiB pages
        assert_eq!(v1_limit("16777216\n"), Some(16 * 1024 * 1024));
        assert_eq!(max_or_number("max\n"), None);
        assert_eq!(max_or_number("8\n"), Some(8));
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom_control, "oom_kill"), Some(3));
        assert_eq!(keyed(oom_control, "oom_kill_disable"), Some(0));
        // Kernels before 4.13 have no oom_kill line.
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), None);
    }

    #[test]
    fn v2_files() {
        let cpu_stat = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n";
        assert_eq!(keyed(cpu_stat, "usage_usec"), Some(2500));
        assert_eq!(keyed(cpu_stat, "usage"), None);
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(2));
        assert_eq!(max_or_number("max\n"), None);
        assert_eq!(max_or_number("16777216\n"), Some(16_777_216));
        assert_eq!(max_or_number("garbage"), None);
    }

    #[test]
    fn missing_files_read_as_zero() {
        let dir = Path::new("/nonexistent/berth-cgroup");
        assert_eq!(read(dir, "memory.current"), "");
        assert_eq!(keyed("", "oom_kill"), None);
        assert_eq!(number(&read(dir, "pids.current")), None);
    }
}
