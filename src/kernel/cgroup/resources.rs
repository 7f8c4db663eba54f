//! Resource limits on a container's cgroup (memory, swap, CPU, pids,
//! cpusets, I/O weight) on cgroup v1 or v2. Every value is validated and
//! every interface file located before the first write, so a bad or
//! unsupported limit fails (or, if optional, is skipped) without leaving
//! the others half-applied. Reading usage back is `stats.rs`.

use std::fmt::Display;
use std::fs;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use cgroups_rs::MaxValue;
use cgroups_rs::cpu::CpuController;
use cgroups_rs::cpuset::CpuSetController;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;

use super::{CgroupError, ContainerCgroup, Ctl, describe, io_cause};

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

impl ContainerCgroup {
    /// Applies every limit set in `r`. Returns warnings for optional
    /// limits this host cannot enforce.
    pub fn apply_resources(&self, r: &Resources) -> Result<Vec<String>, CgroupError> {
        validate(r)
            .map_err(|(limit, why)| self.limit_error(limit, format!("is invalid: {why}")))?;
        let mut warnings = Vec::new();
        let mut skip = Vec::new();
        for &limit in LIMIT_NAMES.iter().filter(|l| is_set(r, l)) {
            let Err(reason) = self.locate(limit) else {
                continue;
            };
            let err = self.limit_error(limit, reason);
            if !r.optional.iter().any(|o| o == limit) {
                return Err(err);
            }
            warnings.push(format!("{err}; skipped, as it is optional"));
            skip.push(limit);
        }
        let wanted = |limit: &str| is_set(r, limit) && !skip.contains(&limit);
        let wrote = |limit: &'static str, result: Result<(), String>| {
            result.map_err(|why| self.limit_error(limit, format!("could not be set: {why}")))
        };
        let memory = r.memory_limit.filter(|_| wanted("memory"));
        let swap = r.memory_swap.filter(|_| wanted("memory_swap"));
        self.write_memory(memory, swap, r.memory_limit, &mut warnings)?;
        if let Some(bytes) = r
            .memory_reservation
            .filter(|_| wanted("memory_reservation"))
        {
            wrote("memory_reservation", self.write_reservation(bytes))?;
        }
        if let Some(q) = r.cpu_quota.filter(|_| wanted("cpus")) {
            wrote("cpus", self.write_cpu_quota(q))?;
        }
        if let Some(shares) = r.cpu_shares.filter(|_| wanted("cpu_shares")) {
            wrote("cpu_shares", self.write_shares(shares))?;
        }
        if let Some(n) = r.pids_limit.filter(|_| wanted("pids_limit")) {
            wrote("pids_limit", self.write_pids(n))?;
        }
        if let Some(list) = r.cpuset_cpus.as_deref().filter(|_| wanted("cpuset_cpus")) {
            wrote("cpuset_cpus", self.write_cpuset("cpus", list))?;
        }
        if let Some(list) = r.cpuset_mems.as_deref().filter(|_| wanted("cpuset_mems")) {
            wrote("cpuset_mems", self.write_cpuset("mems", list))?;
        }
        if let Some(w) = r.io_weight.filter(|_| wanted("io_weight")) {
            wrote("io_weight", self.write_io_weight(w))?;
        }
        Ok(warnings)
    }

    fn limit_error(&self, limit: &'static str, reason: String) -> CgroupError {
        CgroupError::Limit {
            path: self.path.clone(),
            limit,
            reason,
        }
    }

    /// The file that carries `limit` here, or why there is none.
    fn locate(&self, limit: &str) -> Result<PathBuf, String> {
        let v2 = self.v2();
        let (ctl, files, needs) = interface(limit, v2);
        let name = ctl.name(v2);
        let Some(dir) = self.ctl_dir(ctl) else {
            let where_ = if v2 {
                "available (cgroup.controllers)"
            } else {
                "mounted"
            };
            return Err(format!(
                "needs the {name} controller, which is not {where_} on this host"
            ));
        };
        if !dir.is_dir() {
            return Err(format!(
                "needs the {name} controller, which this cgroup is not in ({} is missing)",
                dir.display()
            ));
        }
        if let Some(found) = files.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
            return Ok(found);
        }
        let enabled = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if v2 && !enabled.split_whitespace().any(|c| c == name) {
            return Err(format!(
                "needs the {name} controller, which is not enabled for this cgroup (the parent's cgroup.subtree_control)"
            ));
        }
        let needs = needs.map(|n| format!(" ({n})")).unwrap_or_default();
        Err(format!(
            "needs {}{needs}, which this kernel does not provide",
            files.join(" or ")
        ))
    }

    /// Memory and swap together, because v1 insists on memsw >= memory at
    /// every step: whichever write keeps that true goes first (runc's
    /// order). `memory_total` is the spec's memory limit, for v2's swap
    /// arithmetic even if the memory write itself was skipped.
    fn write_memory(
        &self,
        memory: Option<u64>,
        swap: Option<SwapLimit>,
        memory_total: Option<u64>,
        warnings: &mut Vec<String>,
    ) -> Result<(), CgroupError> {
        let Some(mc) = self.cg.controller_of::<MemController>() else {
            return Ok(());
        };
        let v2 = self.v2();
        let set_memory = |m: u64| {
            let file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            let result =
                to_i64(m).and_then(|v| mc.set_limit(v).map_err(|e| write_failed(file, m, &e)));
            result.map_err(|why| self.limit_error("memory", format!("could not be set: {why}")))
        };
        let set_swap = |s: SwapLimit| {
            let (file, value) = if v2 {
                ("memory.swap.max", swap_max_v2(s, memory_total.unwrap_or(0)))
            } else {
                ("memory.memsw.limit_in_bytes", memsw_v1(s))
            };
            let result = mc
                .set_memswap_limit(value)
                .map_err(|e| write_failed(file, value, &e));
            result
                .map_err(|why| self.limit_error("memory_swap", format!("could not be set: {why}")))
        };
        match (memory, swap) {
            (Some(m), Some(s)) if !v2 => {
                let current = self.current_v1_memory_limit().map_err(|why| {
                    self.limit_error("memory", format!("could not be set: {why}"))
                })?;
                if memsw_first(current, s) {
                    set_swap(s).and_then(|()| set_memory(m))?;
                } else {
                    set_memory(m).and_then(|()| set_swap(s))?;
                }
            }
            _ => {
                if let Some(m) = memory {
                    set_memory(m)?;
                }
                if let Some(s) = swap {
                    set_swap(s)?;
                }
            }
        }
        if v2 && memory.is_some() {
            self.set_oom_group(warnings)?;
        }
        Ok(())
    }

    fn current_v1_memory_limit(&self) -> Result<u64, String> {
        let file = self.locate("memory")?;
        let text =
            fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
        text.trim()
            .parse()
            .map_err(|_| format!("{} holds {:?}, not a number", file.display(), text.trim()))
    }

    /// v2 only: without memory.oom.group the OOM killer takes one process
    /// and leaves the container running in a broken state; with it, the
    /// whole cgroup goes. cgroups-rs has no setter for it. Kernels before
    /// 4.19 lack the file: a warning, since the limit itself still holds.
    fn set_oom_group(&self, warnings: &mut Vec<String>) -> Result<(), CgroupError> {
        let file = self.unified_dir().join("memory.oom.group");
        if !file.exists() {
            warnings.push(format!(
                "cgroup {}: memory.oom.group is missing (kernel before 4.19): an OOM kill takes one process, not the whole container",
                self.path
            ));
            return Ok(());
        }
        fs::write(&file, "1").map_err(|e| {
            self.limit_error(
                "memory",
                format!("could not be set: write 1 to memory.oom.group: {e}"),
            )
        })
    }

    fn write_reservation(&self, bytes: u64) -> Result<(), String> {
        let mc = self
            .cg
            .controller_of::<MemController>()
            .ok_or("no memory controller")?;
        let file = if self.v2() {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        mc.set_soft_limit(to_i64(bytes)?)
            .map_err(|e| write_failed(file, bytes, &e))
    }

    /// v1 follows runc: the period first, unless the kernel refuses it
    /// (EINVAL: old quota over new period would break a parent's limit),
    /// in which case it is retried after the quota.
    fn write_cpu_quota(&self, q: CpuQuota) -> Result<(), String> {
        let cpu = self
            .cg
            .controller_of::<CpuController>()
            .ok_or("no cpu controller")?;
        let quota = to_i64(q.quota_us)?;
        if self.v2() {
            return cpu
                .set_cfs_quota_and_period(Some(quota), Some(q.period_us))
                .map_err(|e| {
                    write_failed("cpu.max", format!("{} {}", q.quota_us, q.period_us), &e)
                });
        }
        let set_period = || {
            cpu.set_cfs_period(q.period_us)
                .map_err(|e| write_failed("cpu.cfs_period_us", q.period_us, &e))
        };
        let retry_period = match cpu.set_cfs_period(q.period_us) {
            Ok(()) => false,
            Err(e) if io_cause(&e).and_then(|io| io.raw_os_error()) == Some(libc::EINVAL) => true,
            Err(e) => return Err(write_failed("cpu.cfs_period_us", q.period_us, &e)),
        };
        cpu.set_cfs_quota(quota)
            .map_err(|e| write_failed("cpu.cfs_quota_us", q.quota_us, &e))?;
        if retry_period { set_period() } else { Ok(()) }
    }

    fn write_shares(&self, shares: u64) -> Result<(), String> {
        let cpu = self
            .cg
            .controller_of::<CpuController>()
            .ok_or("no cpu controller")?;
        // cgroups-rs writes the number as given; converting is ours to do.
        let (file, value) = if self.v2() {
            ("cpu.weight", shares_to_weight(shares))
        } else {
            ("cpu.shares", shares)
        };
        cpu.set_shares(value)
            .map_err(|e| write_failed(file, value, &e))
    }

    fn write_pids(&self, n: u64) -> Result<(), String> {
        let pids = self
            .cg
            .controller_of::<PidController>()
            .ok_or("no pids controller")?;
        pids.set_pid_max(MaxValue::Value(to_i64(n)?))
            .map_err(|e| write_failed("pids.max", n, &e))
    }

    /// On EINVAL, names what the parent allows: the kernel only accepts a
    /// subset of it, and says no more than "Invalid argument".
    fn write_cpuset(&self, which: &str, list: &str) -> Result<(), String> {
        let cs = self
            .cg
            .controller_of::<CpuSetController>()
            .ok_or("no cpuset controller")?;
        let result = if which == "cpus" {
            cs.set_cpus(list)
        } else {
            cs.set_mems(list)
        };
        let file = format!("cpuset.{which}");
        result.map_err(|e| {
            let mut why = write_failed(&file, list, &e);
            let effective = if self.v2() {
                format!("{file}.effective")
            } else {
                format!("cpuset.effective_{which}")
            };
            let parent = self
                .ctl_dir(Ctl::CpuSet)
                .and_then(|d| Some(d.parent()?.join(&effective)));
            if let Some(allowed) = parent.and_then(|p| fs::read_to_string(p).ok()) {
                why.push_str(&format!(
                    " (the parent cgroup has {which} {})",
                    allowed.trim()
                ));
            }
            why
        })
    }

    /// Written directly: cgroups-rs writes blkio.weight on v1 (gone with
    /// CFQ in 5.0) and io.bfq.weight on v2, never blkio.bfq.weight or
    /// io.weight.
    fn write_io_weight(&self, weight: u16) -> Result<(), String> {
        let file = self.locate("io_weight")?;
        let value = if self.v2() {
            format!("default {}", blkio_to_io_weight(weight))
        } else {
            weight.to_string()
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fs::write(&file, &value).map_err(|e| format!("write {value} to {name}: {e}"))
    }
}

/// A limit's controller, the files that can carry it (the first present
/// wins) and what the kernel needs to provide them.
fn interface(limit: &str, v2: bool) -> (Ctl, &'static [&'static str], Option<&'static str>) {
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

fn is_set(r: &Resources, limit: &str) -> bool {
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
fn validate(r: &Resources) -> Result<(), (&'static str, String)> {
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

fn to_i64(value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{value} is too large"))
}

fn write_failed(file: &str, value: impl Display, e: &cgroups_rs::error::Error) -> String {
    match io_cause(e) {
        Some(io) => format!("write {value} to {file}: {io}"),
        None => describe(e),
    }
}

/// runc's cpu.shares → cpu.weight: maps 2..=262144 onto 1..=10000.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's blkio weight → io.weight: maps 10..=1000 onto 1..=10000.
pub(crate) fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// v2's memory.swap.max counts swap alone: the total minus memory, -1
/// (cgroups-rs writes "max") when unlimited.
pub(crate) fn swap_max_v2(total: SwapLimit, memory: u64) -> i64 {
    match total {
        SwapLimit::Unlimited => -1,
        SwapLimit::Bytes(t) => i64::try_from(t.saturating_sub(memory)).unwrap_or(i64::MAX),
    }
}

/// v1's memory.memsw.limit_in_bytes is the total itself; -1 is unlimited.
pub(crate) fn memsw_v1(total: SwapLimit) -> i64 {
    match total {
        SwapLimit::Unlimited => -1,
        SwapLimit::Bytes(t) => i64::try_from(t).unwrap_or(i64::MAX),
    }
}

/// Whether memsw must be written before memory: when the current memory
/// limit is below the new total (raising), memory first could exceed the
/// old memsw; otherwise (lowering) memsw first could undercut the old
/// memory limit. Valid start and end states make one order always work.
pub(crate) fn memsw_first(current_memory_limit: u64, total: SwapLimit) -> bool {
    match total {
        SwapLimit::Unlimited => true,
        SwapLimit::Bytes(t) => current_memory_limit < t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            invalid(Resources {
                cpu_quota: quota(999, 100_000),
                ..Default::default()
            })
            .0,
            "cpus"
        );
        assert_eq!(
            invalid(Resources {
                cpu_shares: Some(1),
                ..Default::default()
            })
            .0,
            "cpu_shares"
        );
        assert_eq!(
            invalid(Resources {
                pids_limit: Some(0),
                ..Default::default()
            })
            .0,
            "pids_limit"
        );
        assert_eq!(
            invalid(Resources {
                io_weight: Some(5),
                ..Default::default()
            })
            .0,
            "io_weight"
        );
        assert_eq!(
            invalid(Resources {
                memory_limit: Some(MIB),
                ..Default::default()
            })
            .0,
            "memory"
        );
        let bad_optional = Resources {
            optional: vec!["memroy".into()],
            ..Default::default()
        };
        assert_eq!(invalid(bad_optional).0, "optional");
        let full = Resources {
            memory_limit: Some(64 * MIB),
            memory_reservation: Some(32 * MIB),
            memory_swap: Some(SwapLimit::Bytes(64 * MIB)),
            cpu_quota: quota(50_000, 100_000),
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
