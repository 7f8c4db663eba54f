//! One cgroup per container, on cgroup v1 (every mounted controller) or v2,
//! through cgroups-rs: creation, placement, killing what is left, removal.
//! Device rules (`devices.rs`: v1 in `device_rules_v1.rs`, v2's BPF
//! program in `device_filter.rs` and `device_bpf.rs`), limits
//! (`limits.rs`, `resources.rs`) and statistics (`stats.rs`) live in the
//! submodules.

mod device_bpf;
mod device_filter;
mod device_rules_v1;
mod devices;
mod limits;
mod resources;
mod stats;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroups_rs::blkio::BlkIoController;
use cgroups_rs::cpu::CpuController;
use cgroups_rs::cpuacct::CpuAcctController;
use cgroups_rs::cpuset::CpuSetController;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{Cgroup, CgroupPid, Controller, hierarchies};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use device_bpf::{BpfError, device_programs_of};
pub use devices::{
    DeviceAccess, DeviceKind, DeviceRule, device_rules_enforced, install_device_filter,
};
pub use limits::{CpuQuota, LIMIT_NAMES, Resources, SwapLimit};
pub use stats::CgroupStats;

/// How long `remove` waits for killed processes to leave the cgroup.
const REMOVE_WAIT_MS: u64 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A lifecycle step (create, join, remove, ...) failed.
    #[error("{op} cgroup {path}: {reason}")]
    Op {
        op: &'static str,
        path: String,
        reason: String,
    },
    /// A resource limit is invalid, unsupported here, or refused by the
    /// kernel. `limit` is one of [`LIMIT_NAMES`] (or "optional").
    #[error("cgroup {path}: {limit} {reason}")]
    Limit {
        path: String,
        limit: &'static str,
        reason: String,
    },
}

/// The controllers berth sets limits on or reads statistics from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctl {
    Memory,
    Cpu,
    CpuAcct,
    CpuSet,
    Pids,
    Io,
}

impl Ctl {
    /// The controller's name as the kernel spells it on this version.
    pub(crate) fn name(self, v2: bool) -> &'static str {
        match self {
            Ctl::Memory => "memory",
            Ctl::Cpu => "cpu",
            Ctl::CpuAcct => "cpuacct",
            Ctl::CpuSet => "cpuset",
            Ctl::Pids => "pids",
            Ctl::Io if v2 => "io",
            Ctl::Io => "blkio",
        }
    }
}

impl std::fmt::Debug for ContainerCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerCgroup")
            .field("path", &self.path)
            .finish()
    }
}

pub struct ContainerCgroup {
    cg: Cgroup,
    path: String,
}

/// Whether the host uses cgroup v2 alone (the unified hierarchy at
/// /sys/fs/cgroup), rather than v1 or v1 beside a v2 mount (hybrid).
pub fn cgroup_v2() -> bool {
    hierarchies::is_cgroup2_unified_mode()
}

impl ContainerCgroup {
    /// Creates (or reuses, after a crash) the cgroup at `path`, relative to
    /// each hierarchy's root, e.g. "berth/web", with the default device
    /// rules only.
    pub fn create(path: &str) -> Result<Self, CgroupError> {
        Self::create_with_devices(path, &[])
    }

    /// As `create`, with `devices` allowed beyond the defaults.
    pub fn create_with_devices(path: &str, devices: &[DeviceRule]) -> Result<Self, CgroupError> {
        let cg = Cgroup::new(hierarchies::auto(), path)
            .map_err(|e| op_error("create", path, describe(&e)))?;
        let this = Self {
            cg,
            path: path.to_string(),
        };
        if !this.cg.v2() {
            this.check_v1_dirs()?;
            this.fill_cpusets()?;
        }
        this.restrict_devices(devices)?;
        Ok(this)
    }

    /// cgroups-rs only logs a failed mkdir on v1 and carries on; retry it
    /// here so that the caller gets the real error instead of a join
    /// failure later.
    fn check_v1_dirs(&self) -> Result<(), CgroupError> {
        for sub in self.cg.subsystems() {
            let dir = sub.to_controller().path();
            if !dir.is_dir() {
                fs::create_dir_all(dir).map_err(|e| {
                    op_error(
                        "create",
                        &self.path,
                        format!("mkdir {}: {e}", dir.display()),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// A new v1 cpuset cgroup starts with empty cpuset.cpus and .mems, and
    /// no process can join it until both are filled. cgroups-rs copies the
    /// parent's values on creation but only logs a failure, so check every
    /// level from the top down and fill what is still empty.
    fn fill_cpusets(&self) -> Result<(), CgroupError> {
        let Some(leaf) = self.ctl_dir(Ctl::CpuSet) else {
            return Ok(());
        };
        let depth = Path::new(&self.path).components().count();
        let mut levels: Vec<&Path> = leaf.ancestors().take(depth).collect();
        levels.reverse();
        for level in levels {
            let Some(parent) = level.parent() else {
                continue;
            };
            for file in ["cpuset.cpus", "cpuset.mems"] {
                copy_if_empty(parent, level, file)
                    .map_err(|reason| op_error("create", &self.path, reason))?;
            }
        }
        Ok(())
    }

    /// A handle on a cgroup that may exist, without creating it.
    pub fn load(path: &str) -> Self {
        Self {
            cg: Cgroup::load(hierarchies::auto(), path),
            path: path.to_string(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.cg.exists()
    }

    pub fn add_process(&self, pid: Pid) -> Result<(), CgroupError> {
        let raw = u64::try_from(pid.as_raw())
            .map_err(|_| op_error("join", &self.path, format!("invalid pid {pid}")))?;
        self.cg
            .add_task_by_tgid(CgroupPid::from(raw))
            .map_err(|e| op_error("join", &self.path, describe(&e)))
    }

    pub fn process_ids(&self) -> Vec<u64> {
        self.cg.procs().into_iter().map(|p| p.pid).collect()
    }

    /// SIGKILLs every process still in the cgroup.
    pub fn kill_all(&self) {
        if self.cg.kill().is_ok() {
            return;
        }
        // cgroup v1 has no cgroup.kill: signal each pid. A fork racing with
        // this loop is caught by the next pass in `remove`.
        for pid in self.process_ids() {
            if let Ok(raw) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
    }

    /// One attempt that never waits: kills whatever is left and removes
    /// the cgroup. False while killed processes are still going away (the
    /// caller then uses `remove` where waiting is fine, e.g. a helper).
    pub fn remove_now(&self) -> bool {
        if !self.cg.exists() {
            return true;
        }
        self.kill_all();
        self.cg.delete().is_ok() && !self.cg.exists()
    }

    /// Kills whatever is left and removes the cgroup, waiting briefly for
    /// killed processes to be gone (rmdir fails while any remain).
    pub fn remove(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + Duration::from_millis(REMOVE_WAIT_MS);
        loop {
            if !self.cg.exists() {
                return Ok(());
            }
            self.kill_all();
            match self.cg.delete() {
                Ok(()) if !self.cg.exists() => return Ok(()),
                Ok(()) => {}
                Err(e) if Instant::now() >= deadline => {
                    return Err(op_error("remove", &self.path, describe(&e)));
                }
                Err(_) => {}
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// The names of the cgroups directly below this one (containers' under
    /// the daemon's parent), read from one hierarchy: v1 keeps the same
    /// tree under every controller.
    pub fn child_names(&self) -> Vec<String> {
        let dir = if self.v2() {
            Some(self.unified_dir())
        } else {
            self.ctl_dir(Ctl::Pids)
                .or_else(|| self.ctl_dir(Ctl::Memory))
        };
        let Some(Ok(entries)) = dir.map(fs::read_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    pub(crate) fn v2(&self) -> bool {
        self.cg.v2()
    }

    /// The directory holding `ctl`'s files for this cgroup, or None when
    /// the controller is not mounted (v1) or not available (v2). The
    /// directory itself may be missing; callers check the files they need.
    pub(crate) fn ctl_dir(&self, ctl: Ctl) -> Option<PathBuf> {
        let dir = match ctl {
            Ctl::Memory => self.cg.controller_of::<MemController>()?.path(),
            Ctl::Cpu => self.cg.controller_of::<CpuController>()?.path(),
            Ctl::CpuAcct => self.cg.controller_of::<CpuAcctController>()?.path(),
            Ctl::CpuSet => self.cg.controller_of::<CpuSetController>()?.path(),
            Ctl::Pids => self.cg.controller_of::<PidController>()?.path(),
            Ctl::Io => self.cg.controller_of::<BlkIoController>()?.path(),
        };
        Some(dir.to_path_buf())
    }

    /// On v2, the cgroup's one directory; its core files (cpu.stat,
    /// cgroup.procs) exist whether or not a controller is enabled.
    pub(crate) fn unified_dir(&self) -> PathBuf {
        Path::new(hierarchies::UNIFIED_MOUNTPOINT).join(&self.path)
    }
}

/// What a sweep found in one leftover cgroup.
#[derive(Debug)]
pub struct Leftover {
    pub name: String,
    /// Processes that were still running in it (now killed).
    pub killed: Vec<u64>,
    pub removed: Result<(), CgroupError>,
}

/// Kills every process in the cgroups below `parent` and removes them:
/// what a daemon that died left behind, before anything is started under
/// the same names. All are killed first, then each removal waits (at most
/// REMOVE_WAIT_MS each) for its processes to be gone.
pub fn sweep_children(parent: &str) -> Vec<Leftover> {
    let parent_cg = ContainerCgroup::load(parent);
    if !parent_cg.exists() {
        return Vec::new();
    }
    let children: Vec<(String, ContainerCgroup, Vec<u64>)> = parent_cg
        .child_names()
        .into_iter()
        .map(|name| {
            let cg = ContainerCgroup::load(&format!("{parent}/{name}"));
            let pids = cg.process_ids();
            cg.kill_all();
            (name, cg, pids)
        })
        .collect();
    children
        .into_iter()
        .map(|(name, cg, killed)| Leftover {
            name,
            killed,
            removed: cg.remove(),
        })
        .collect()
}

/// Copies `file` from `parent` into `dir` when `dir`'s copy is empty.
fn copy_if_empty(parent: &Path, dir: &Path, file: &str) -> Result<(), String> {
    let target = dir.join(file);
    let current =
        fs::read_to_string(&target).map_err(|e| format!("read {}: {e}", target.display()))?;
    if !current.trim().is_empty() {
        return Ok(());
    }
    let source = parent.join(file);
    let value =
        fs::read_to_string(&source).map_err(|e| format!("read {}: {e}", source.display()))?;
    fs::write(&target, value.trim())
        .map_err(|e| format!("copy {} into {}: {e}", source.display(), target.display()))
}

fn op_error(op: &'static str, path: &str, reason: String) -> CgroupError {
    CgroupError::Op {
        op,
        path: path.to_string(),
        reason,
    }
}

/// A cgroups-rs error as "what it did: the OS error". Its Display repeats
/// the cause in Debug form, so build the text from the parts instead.
pub(crate) fn describe(e: &cgroups_rs::error::Error) -> String {
    match io_cause(e) {
        Some(io) => format!("{}: {io}", e.kind()),
        None => e.to_string(),
    }
}

/// The I/O error under a cgroups-rs error, if that is what it was.
pub(crate) fn io_cause(e: &cgroups_rs::error::Error) -> Option<&io::Error> {
    std::error::Error::source(e)?.downcast_ref::<io::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cpuset_file_gets_the_parents_value() {
        let parent = tempfile::tempdir().expect("tempdir");
        let child = parent.path().join("c1");
        fs::create_dir(&child).expect("mkdir");
        fs::write(parent.path().join("cpuset.cpus"), "0-1\n").expect("write");
        fs::write(child.join("cpuset.cpus"), "\n").expect("write");
        fs::write(parent.path().join("cpuset.mems"), "0\n").expect("write");
        fs::write(child.join("cpuset.mems"), "1\n").expect("write");
        for file in ["cpuset.cpus", "cpuset.mems"] {
            copy_if_empty(parent.path(), &child, file).expect("copy");
        }
        let read = |f: &str| fs::read_to_string(child.join(f)).expect("read");
        assert_eq!(read("cpuset.cpus"), "0-1");
        assert_eq!(read("cpuset.mems"), "1\n", "a filled file is left alone");
        let missing = copy_if_empty(parent.path(), &child.join("gone"), "cpuset.cpus");
        assert!(missing.is_err_and(|e| e.contains("gone/cpuset.cpus")));
    }
}
