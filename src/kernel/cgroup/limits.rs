//! Limit values without I/O: the limit names, validation against what the
//! kernel would refuse, which file carries each limit, and the unit
//! conversions between cgroup v1 and v2. Writing them is `resources.rs`.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::Ctl;
use super::resources::{Resources, SwapLimit};

/// Every limit's name, as used in errors and in [`Resources::optional`].
pub const LIMIT_NAMES: &[&str] = &[
    "memory",
    "memory_reservation",
    "memory_swap",
    "cpus",
    "cpu_shares",
    "pids_limit",
    "cpuset_cpus",
    "cpuset_mems",
    "io_weight",
];

/// Docker's floor: below it the runtime's own pre-exec work can be
/// OOM-killed (or hang) inside the container's cgroup.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The kernel's CFS bounds (min/max_cfs_quota_period, max_cfs_runtime);
/// outside them it answers EINVAL.
const PERIOD_US: RangeInclusive<u64> = 1000..=1_000_000;
const QUOTA_US: RangeInclusive<u64> = 1000..=(1 << 44) - 1;
/// cpu.shares outside this is silently clamped by the kernel.
const SHARES: RangeInclusive<u64> = 2..=262_144;
/// pids.max above PID_MAX_LIMIT is EINVAL. 0 would forbid every fork.
const PIDS: RangeInclusive<u64> = 1..=4_194_304;
/// Docker's --blkio-weight range (blkio.weight's).
const IO_WEIGHT: RangeInclusive<u16> = 10..=1000;

/// A limit's controller, the files that can carry it (the first present
/// wins) and what the kernel needs to provide them.
pub(super) fn interface(
    limit: &str,
    v2: bool,
) -> (Ctl, &'static [&'static str], Option<&'static str>) {
    const SWAP: Option<&str> = Some("swap accounting");
    const IO: Option<&str> = Some("a proportional-weight I/O scheduler such as BFQ");
    match (limit, v2) {
        ("memory", false) => (Ctl::Memory, &["memory.limit_in_bytes"], None),
        ("memory", true) => (Ctl::Memory, &["memory.max"], None),
        ("memory_reservation", false) => (Ctl::Memory, &["memory.soft_limit_in_bytes"], None),
        ("memory_reservation", true) => (Ctl::Memory, &["memory.low"], None),
        ("memory_swap", false) => (Ctl::Memory, &["memory.memsw.limit_in_bytes"], SWAP),
        ("memory_swap", true) => (Ctl::Memory, &["memory.swap.max"], SWAP),
        ("cpus", false) => (
            Ctl::Cpu,
            &["cpu.cfs_quota_us"],
            Some("CFS bandwidth control"),
        ),
        ("cpus", true) => (Ctl::Cpu, &["cpu.max"], None),
        ("cpu_shares", false) => (Ctl::Cpu, &["cpu.shares"], None),
        ("cpu_shares", true) => (Ctl::Cpu, &["cpu.weight"], None),
        ("pids_limit", _) => (Ctl::Pids, &["pids.max"], None),
        ("cpuset_cpus", _) => (Ctl::CpuSet, &["cpuset.cpus"], None),
        ("cpuset_mems", _) => (Ctl::CpuSet, &["cpuset.mems"], None),
        ("io_weight", true) => (Ctl::Io, &["io.weight"], None),
        // io_weight on v1; the only name left, as callers pass LIMIT_NAMES.
        _ => (Ctl::Io, &["blkio.weight", "blkio.bfq.weight"], IO),
    }
}

pub(super) fn is_set(r: &Resources, limit: &str) -> bool {
    match limit {
        "memory" => r.memory_limit.is_some(),
        "memory_reservation" => r.memory_reservation.is_some(),
        "memory_swap" => r.memory_swap.is_some(),
        "cpus" => r.cpu_quota.is_some(),
        "cpu_shares" => r.cpu_shares.is_some(),
        "pids_limit" => r.pids_limit.is_some(),
        "cpuset_cpus" => r.cpuset_cpus.is_some(),
        "cpuset_mems" => r.cpuset_mems.is_some(),
        "io_weight" => r.io_weight.is_some(),
        _ => false,
    }
}

/// Rejects what the kernel would refuse with a bare EINVAL (or silently
/// clamp), naming the limit.
pub(super) fn validate(r: &Resources) -> Result<(), (&'static str, String)> {
    if let Some(bad) = r
        .optional
        .iter()
        .find(|o| !LIMIT_NAMES.contains(&o.as_str()))
    {
        return Err((
            "optional",
            format!(
                "{bad:?} is not a limit name (known: {})",
                LIMIT_NAMES.join(", ")
            ),
        ));
    }
    validate_memory(r)?;
    if let Some(q) = r.cpu_quota {
        in_range("cpus", "period_us", q.period_us, &PERIOD_US)?;
        in_range("cpus", "quota_us", q.quota_us, &QUOTA_US)?;
    }
    if let Some(s) = r.cpu_shares {
        in_range("cpu_shares", "shares", s, &SHARES)?;
    }
    if let Some(n) = r.pids_limit {
        in_range("pids_limit", "the limit", n, &PIDS)?;
    }
    if let Some(w) = r.io_weight {
        in_range("io_weight", "the weight", w, &IO_WEIGHT)?;
    }
    for (limit, list) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        if let Some(list) = list {
            check_list(list).map_err(|why| (limit, why))?;
        }
    }
    Ok(())
}

fn validate_memory(r: &Resources) -> Result<(), (&'static str, String)> {
    let max = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    if let Some(m) = r.memory_limit {
        in_range("memory", "the limit", m, &(MIN_MEMORY..=max))?;
    }
    if let Some(res) = r.memory_reservation {
        let top = r.memory_limit.unwrap_or(max);
        in_range("memory_reservation", "the reservation", res, &(0..=top))?;
    }
    match (r.memory_swap, r.memory_limit) {
        (None, _) | (Some(SwapLimit::Unlimited), Some(_)) => Ok(()),
        (Some(_), None) => Err((
            "memory_swap",
            "needs a memory limit too (it is the memory+swap total)".into(),
        )),
        (Some(SwapLimit::Bytes(total)), Some(m)) => {
            in_range("memory_swap", "the memory+swap total", total, &(m..=max))
        }
    }
}

fn in_range<T: PartialOrd + Display>(
    limit: &'static str,
    what: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), (&'static str, String)> {
    if range.contains(&value) {
        return Ok(());
    }
    Err((
        limit,
        format!(
            "{what} {value} is outside {}..={}",
            range.start(),
            range.end()
        ),
    ))
}

/// The kernel's list syntax: "0-3,5,8-15:2/4" (ranges may have a stride).
fn check_list(list: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{list:?} is not a list like \"0-1,3\": {why}"));
    if list.trim().is_empty() {
        return bad("it is empty");
    }
    for item in list.trim().split(',') {
        let (range, stride) = item.split_once(':').unwrap_or((item, "1/1"));
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let numbers = [lo, hi].map(|n| n.parse::<u32>().ok());
        let [Some(lo), Some(hi)] = numbers else {
            return bad(&format!("{item:?} is not N or N-M"));
        };
        if lo > hi {
            return bad(&format!("{item:?} runs backwards"));
        }
        let stride_ok = stride
            .split_once('/')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !stride_ok {
            return bad(&format!("{item:?} has a bad stride"));
        }
    }
    Ok(())
}

/// runc's cpu.shares → cpu.weight: maps 2..=262144 onto 1..=10000.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's blkio weight → io.weight: maps 10..=1000 onto 1..=10000.
pub(super) fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// v2's memory.swap.max counts swap alone: the total minus memory, -1
/// (cgroups-rs writes "max") when unlimited.
pub(super) fn swap_max_v2(total: SwapLimit, memory: u64) -> i64 {
    match total {
        SwapLimit::Unlimited => -1,
        SwapLimit::Bytes(t) => i64::try_from(t.saturating_sub(memory)).unwrap_or(i64::MAX),
    }
}

/// v1's memory.memsw.limit_in_bytes is the total itself; -1 is unlimited.
pub(super) fn memsw_v1(total: SwapLimit) -> i64 {
    match total {
        SwapLimit::Unlimited => -1,
        SwapLimit::Bytes(t) => i64::try_from(t).unwrap_or(i64::MAX),
    }
}

/// Whether memsw must be written before memory: when the current memory
/// limit is below the new total (raising), memory first could exceed the
/// old memsw; otherwise (lowering) memsw first could undercut the old
/// memory limit. Valid start and end states make one order always work.
pub(super) fn memsw_first(current_memory_limit: u64, total: SwapLimit) -> bool {
    match total {
        SwapLimit::Unlimited => true,
        SwapLimit::Bytes(t) => current_memory_limit < t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cgroup::CpuQuota;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn shares_and_io_weights_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_a_total_on_v1_and_the_excess_on_v2() {
        let total = SwapLimit::Bytes(48 * MIB);
        assert_eq!(memsw_v1(total), 48 * 1024 * 1024);
        assert_eq!(swap_max_v2(total, 16 * MIB), 32 * 1024 * 1024);
        assert_eq!(swap_max_v2(SwapLimit::Bytes(16 * MIB), 16 * MIB), 0);
        assert_eq!(memsw_v1(SwapLimit::Unlimited), -1);
        assert_eq!(swap_max_v2(SwapLimit::Unlimited, 16 * MIB), -1);
    }

    #[test]
    fn memsw_goes_first_only_when_raising() {
        // Fresh cgroup: memory unlimited (huge), so lowering: memory first.
        assert!(!memsw_first(u64::MAX / 2, SwapLimit::Bytes(32 * MIB)));
        assert!(memsw_first(16 * MIB, SwapLimit::Bytes(64 * MIB)));
        assert!(!memsw_first(64 * MIB, SwapLimit::Bytes(32 * MIB)));
        assert!(memsw_first(64 * MIB, SwapLimit::Unlimited));
    }

    fn invalid(r: Resources) -> (&'static str, String) {
        validate(&r).expect_err("should be invalid")
    }

    #[test]
    fn validation_names_the_limit_and_the_bound() {
        let quota = |quota_us, period_us| {
            Some(CpuQuota {
                quota_us,
                period_us,
            })
        };
        let (limit, why) = invalid(Resources {
            cpu_quota: quota(50_000, 500),
            ..Default::default()
        });
        assert_eq!(limit, "cpus");
        assert!(
            why.contains("period_us 500 is outside 1000..=1000000"),
            "{why}"
        );
        let cases = [
            (
                "cpus",
                Resources {
                    cpu_quota: quota(999, 100_000),
                    ..Default::default()
                },
            ),
            (
                "cpu_shares",
                Resources {
                    cpu_shares: Some(1),
                    ..Default::default()
                },
            ),
            (
                "pids_limit",
                Resources {
                    pids_limit: Some(0),
                    ..Default::default()
                },
            ),
            (
                "io_weight",
                Resources {
                    io_weight: Some(5),
                    ..Default::default()
                },
            ),
            (
                "memory",
                Resources {
                    memory_limit: Some(MIB),
                    ..Default::default()
                },
            ),
            (
                "optional",
                Resources {
                    optional: vec!["memroy".into()],
                    ..Default::default()
                },
            ),
        ];
        for (limit, r) in cases {
            assert_eq!(invalid(r).0, limit);
        }
    }

    #[test]
    fn a_full_sensible_set_is_valid() {
        let full = Resources {
            memory_limit: Some(64 * MIB),
            memory_reservation: Some(32 * MIB),
            memory_swap: Some(SwapLimit::Bytes(64 * MIB)),
            cpu_quota: Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            cpu_shares: Some(512),
            pids_limit: Some(100),
            cpuset_cpus: Some("0-1,3".into()),
            cpuset_mems: Some("0".into()),
            io_weight: Some(300),
            optional: vec!["io_weight".into()],
        };
        assert_eq!(validate(&full), Ok(()));
    }

    #[test]
    fn swap_needs_memory_and_covers_it() {
        let swap_only = Resources {
            memory_swap: Some(SwapLimit::Unlimited),
            ..Default::default()
        };
        assert_eq!(invalid(swap_only).0, "memory_swap");
        let below = Resources {
            memory_limit: Some(64 * MIB),
            memory_swap: Some(SwapLimit::Bytes(32 * MIB)),
            ..Default::default()
        };
        assert_eq!(invalid(below).0, "memory_swap");
        let reserve_above = Resources {
            memory_limit: Some(64 * MIB),
            memory_reservation: Some(65 * MIB),
            ..Default::default()
        };
        assert_eq!(invalid(reserve_above).0, "memory_reservation");
    }

    #[test]
    fn cpu_lists_follow_the_kernel_syntax() {
        for good in ["0", "0-1,3", "0-15:2/4", " 2 "] {
            assert_eq!(check_list(good), Ok(()), "{good}");
        }
        for bad in ["", "a", "3-1", "0,,1", "1-", "0-3:x"] {
            assert!(check_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_limit_has_its_files_on_both_versions() {
        for limit in LIMIT_NAMES {
            for v2 in [false, true] {
                assert!(!interface(limit, v2).1.is_empty());
            }
        }
        assert_eq!(
            interface("io_weight", false).1,
            ["blkio.weight", "blkio.bfq.weight"]
        );
        assert_eq!(interface("memory_swap", true).1, ["memory.swap.max"]);
        assert_eq!(interface("cpu_shares", true).1, ["cpu.weight"]);
    }
}
