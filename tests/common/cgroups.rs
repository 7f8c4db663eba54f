//! Cgroups and processes a test leaves behind: finding a test's cgroup
//! trees in every hierarchy, killing and removing them (also from a Drop
//! guard), finding live processes by command line, and a process's CPU
//! time.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// Every cgroup directory named `parent` (or below it) in any hierarchy.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let base = h.path().join(parent);
        if base.is_dir() {
            collect_dirs(&base, &mut out);
        }
    }
    if Path::new("/sys/fs/cgroup")
        .join(parent)
        .join("cgroup.procs")
        .exists()
    {
        collect_dirs(&Path::new("/sys/fs/cgroup").join(parent), &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            collect_dirs(&e.path(), out);
        }
    }
    out.push(dir.to_path_buf());
}

/// Kills whatever is in the tree and removes it, deepest first.
pub fn remove_cgroup_tree(parent: &str) {
    for _ in 0..100 {
        let dirs = cgroup_dirs(parent);
        if dirs.is_empty() {
            return;
        }
        for d in &dirs {
            for pid in fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(p) = pid.parse() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let mut sorted = dirs.clone();
        sorted.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in sorted {
            let _ = fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of live processes whose command line contains `token`.
pub fn processes_with(token: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(token)
        })
        .collect()
}

/// Removes a cgroup tree when a test ends, however it ends.
pub struct CgroupGuard(pub String);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.0);
    }
}

/// A process's CPU time (user + system), in clock ticks.
pub fn cpu_ticks(pid: i32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}
