//! Resource limits on a container's cgroup (memory, swap, CPU, pids,
//! cpusets, I/O weight) on cgroup v1 or v2: locating each limit's file and
//! writing it. Every value is validated (`limits.rs`) and every file
//! located before the first write, so a bad or unsupported limit fails
//! (or, if optional, is skipped) without leaving the others half-applied.

use std::fmt::Display;
use std::fs;
use std::path::PathBuf;

use cgroups_rs::MaxValue;
use cgroups_rs::cpu::CpuController;
use cgroups_rs::cpuset::CpuSetController;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;

use super::limits::{
    CpuQuota, LIMIT_NAMES, Resources, SwapLimit, blkio_to_io_weight, interface, is_set,
    memsw_first, memsw_v1, shares_to_weight, swap_max_v2, validate,
};
use super::{CgroupError, ContainerCgroup, Ctl, describe, io_cause};

impl ContainerCgroup {
    /// Applies every limit set in `r`. Returns warnings for optional
    /// limits this host cannot enforce.
    pub fn apply_resources(&self, r: &Resources) -> Result<Vec<String>, CgroupError> {
        validate(r)
            .map_err(|(limit, why)| self.limit_error(limit, format!("is invalid: {why}")))?;
        if !self.exists() {
            return Err(CgroupError::Op {
                op: "set limits on",
                path: self.path.clone(),
                reason: "it does not exist".into(),
            });
        }
        let (mut warnings, skip) = self.preflight(r)?;
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

    /// Locates every set limit's file before anything is written: a
    /// missing one is an error, or a warning and a skip when optional.
    fn preflight(&self, r: &Resources) -> Result<(Vec<String>, Vec<&'static str>), CgroupError> {
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
        Ok((warnings, skip))
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
        // On v2 a file is usually missing because the parent does not
        // delegate the controller, not because the kernel lacks it.
        let enabled = || fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if v2 && !enabled().split_whitespace().any(|c| c == name) {
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

fn to_i64(value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{value} is too large"))
}

fn write_failed(file: &str, value: impl Display, e: &cgroups_rs::error::Error) -> String {
    match io_cause(e) {
        Some(io) => format!("write {value} to {file}: {io}"),
        None => describe(e),
    }
}
