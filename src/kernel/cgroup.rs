//! One cgroup per container, on cgroup v1 (every mounted controller) or v2,
//! through cgroups-rs. Creation, placement, killing what is left, removal.

use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroups_rs::{Cgroup, CgroupPid, hierarchies};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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
        Ok(Self {
            cg,
            path: path.to_string(),
        })
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
