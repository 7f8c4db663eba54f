//! As the machine's init: where the boot went, from berth's exec to the
//! first container running. Stamps are CLOCK_BOOTTIME, which counts from
//! the kernel's start, so the report also places berth's exec on the
//! machine's timeline (a slow emulated kernel boot before it is not
//! berth's time). Reported once, in the daemon's log.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The boot's steps, in order; each is stamped when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStep {
    /// berth's `daemon` began (the exec, as near as berth can see it).
    Exec = 0,
    /// Early filesystems and the console.
    EarlyMounts,
    /// berth.json and every spec read and checked.
    Config,
    /// Hostname, modules, loopback, cgroups.
    Machine,
    /// The image store opened.
    Store,
    /// The API socket bound.
    Api,
    /// Leftovers of a previous run recovered.
    Recovered,
    /// Images shipped in the config directory imported.
    Images,
    /// Every container's start begun (created, the child not yet exec'd).
    StartsBegun,
    /// The first container's process runs.
    FirstContainer,
}

const STEPS: usize = BootStep::FirstContainer as usize + 1;
const NAMES: [&str; STEPS] = [
    "exec",
    "early mounts",
    "config",
    "machine (hostname, modules, loopback, cgroups)",
    "store",
    "api",
    "recover",
    "image import",
    "container starts begun",
    "first container",
];

static STAMPS: [AtomicU64; STEPS] = [const { AtomicU64::new(0) }; STEPS];

fn boottime_ns() -> u64 {
    crate::kernel::start_clock::clock_ns(libc::CLOCK_BOOTTIME)
}

/// Marks `step` as done now (the first time only).
pub fn stamp(step: BootStep) {
    let _ = STAMPS[step as usize].compare_exchange(
        0,
        boottime_ns(),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// "berth exec'd 1.52 s after the kernel started; first container running
/// 118 ms later: early mounts 5 ms (4 %), ..." — None before the first
/// container ran.
pub fn report() -> Option<String> {
    let ns: Vec<u64> = STAMPS.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    report_from(&ns)
}

fn report_from(ns: &[u64]) -> Option<String> {
    let (exec, first) = (
        ns[BootStep::Exec as usize],
        ns[BootStep::FirstContainer as usize],
    );
    if exec == 0 || first < exec {
        return None;
    }
    let total = first - exec;
    let ms = |d: u64| d as f64 / 1e6;
    let mut out = format!(
        "boot: berth started {:.2} s after the kernel; first container running {:.0} ms later:",
        exec as f64 / 1e9,
        ms(total)
    );
    let mut previous = exec;
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        if ns[i] < previous {
            continue; // a step this boot skipped (or stamped out of order)
        }
        let d = ns[i] - previous;
        let share = if total == 0 {
            0.0
        } else {
            d as f64 * 100.0 / total as f64
        };
        let _ = write!(out, " {name} {:.1} ms ({share:.0} %),", ms(d));
        previous = ns[i];
    }
    out.pop();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_splits_exec_to_first_container_by_step() {
        let ms = 1_000_000;
        let ns = [
            2_000 * ms,
            2_010 * ms,
            2_020 * ms,
            2_060 * ms,
            2_070 * ms,
            2_075 * ms,
            2_076 * ms,
            2_077 * ms,
            2_080 * ms,
            2_100 * ms,
        ];
        let r = report_from(&ns).expect("a report");
        assert!(
            r.starts_with(
                "boot: berth started 2.00 s after the kernel; first container running 100 ms later:"
            ),
            "{r}"
        );
        assert!(
            r.contains(" machine (hostname, modules, loopback, cgroups) 40.0 ms (40 %)"),
            "{r}"
        );
        assert!(r.ends_with("first container 20.0 ms (20 %)"), "{r}");
        let mut none = ns;
        none[BootStep::FirstContainer as usize] = 0;
        assert_eq!(report_from(&none), None);
    }
}
