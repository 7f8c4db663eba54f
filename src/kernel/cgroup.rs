//! One cgroup per container, on cgroup v1 (every mounted controller) or v2,
//! through cgroups-rs. Creation, placement, killing what is left, removal.

use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroups_rs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::{Cgroup, CgroupPid, hierarchies};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The devices a container may use, on top of "deny everything": Docker's
/// list plus runc's always-allowed ones (FACTS.md §2). Creating any node
/// (m) is allowed; opening one that is not listed is not.
const ALLOWED_DEVICES: &[(DeviceType, i64, i64, &str)] = &[
    (DeviceType::Char, -1, -1, "m"),
    (DeviceType::Block, -1, -1, "m"),
    (DeviceType::Char, 1, 3, "rwm"),    // null
    (DeviceType::Char, 1, 5, "rwm"),    // zero
    (DeviceType::Char, 1, 7, "rwm"),    // full
    (DeviceType::Char, 1, 8, "rwm"),    // random
    (DeviceType::Char, 1, 9, "rwm"),    // urandom
    (DeviceType::Char, 5, 0, "rwm"),    // tty
    (DeviceType::Char, 5, 1, "rwm"),    // console
    (DeviceType::Char, 5, 2, "rwm"),    // ptmx
    (DeviceType::Char, 136, -1, "rwm"), // pts
    (DeviceType::Char, 10, 200, "rwm"), // tun
];

/// How long `remove` waits for killed processes to leave the cgroup.
const REMOVE_WAIT_MS: u64 = 2000;

#[derive(Debug, thiserror::Error)]
#[error("{op} cgroup {path}: {reason}")]
pub struct CgroupError {
    pub op: &'static str,
    pub path: String,
    pub reason: String,
}

pub struct ContainerCgroup {
    cg: Cgroup,
    path: String,
}

impl ContainerCgroup {
    /// Creates (or reuses, after a crash) the cgroup at `path`, relative to
    /// each hierarchy's root, e.g. "berth/web".
    pub fn create(path: &str) -> Result<Self, CgroupError> {
        let cg = Cgroup::new(hierarchies::auto(), path).map_err(|e| CgroupError {
            op: "create",
            path: path.to_string(),
            reason: error_chain(&e),
        })?;
        let this = Self {
            cg,
            path: path.to_string(),
        };
        this.restrict_devices()?;
        Ok(this)
    }

    /// Device access rules on cgroup v1's devices controller. cgroup v2
    /// has no devices file (it needs a BPF program); there the nodes in the
    /// container's /dev are the only ones it gets, and CAP_MKNOD lets it
    /// make more, so this is a v1-only layer of defence for now.
    fn restrict_devices(&self) -> Result<(), CgroupError> {
        let Some(devices) = self.cg.controller_of::<DevicesController>() else {
            return Ok(());
        };
        let fail = |e: cgroups_rs::error::Error| CgroupError {
            op: "restrict devices of",
            path: self.path.clone(),
            reason: error_chain(&e),
        };
        devices
            .deny_device(DeviceType::All, -1, -1, &DevicePermissions::all())
            .map_err(fail)?;
        for (kind, major, minor, perms) in ALLOWED_DEVICES {
            let perms = DevicePermissions::from_str(perms).map_err(fail)?;
            devices
                .allow_device(*kind, *major, *minor, &perms)
                .map_err(fail)?;
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
        let raw = u64::try_from(pid.as_raw()).unwrap_or_default();
        self.cg
            .add_task_by_tgid(CgroupPid::from(raw))
            .map_err(|e| CgroupError {
                op: "join",
                path: self.path.clone(),
                reason: error_chain(&e),
            })
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
                    return Err(CgroupError {
                        op: "remove",
                        path: self.path.clone(),
                        reason: error_chain(&e),
                    });
                }
                Err(_) => {}
            }
            sleep(Duration::from_millis(10));
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
