//! Limit values without I/O: what a container asks for (`Resources`), the
//! limit names, validation against what the kernel would refuse, which
//! file carries each limit, and the unit conversions between cgroup v1 and
//! v2. Writing them is `resources.rs`.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::Ctl;

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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Bytes: v1 memory.limit_in_bytes, v2 memory.max.
    pub memory_limit: Option<u64>,
    /// Bytes: v1 memory.soft_limit_in_bytes, v2 memory.low.
    pub memory_reservation: Option<u64>,
    /// Docker semantics: memory plus swap, so it needs `memory_limit`.
    pub memory_swap: Option<SwapLimit>,
    pub cpu_quota: Option<CpuQuota>,
    /// v1 cpu.shares (2..=262144); v2 cpu.weight, converted as runc does.
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<u64>,
    /// A kernel cpu list such as "0-1,3".
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Docker's blkio weight (10..=1000): v1 blkio.weight or
    /// blkio.bfq.weight as is, v2 io.weight converted as runc does.
    pub io_weight: Option<u16>,
    /// Limits (from [`LIMIT_NAMES`]) that are skipped with a warning when
    /// this host lacks their controller or file.
    pub optional: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapLimit {
    /// Memory plus swap, in bytes; equal to the memory limit means no swap.
    Bytes(u64),
    Unlimited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

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
mod tests;
