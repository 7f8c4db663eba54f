//! A container's own cgroup namespace and its read-only view of the
//! cgroup filesystems at /sys/fs/cgroup, as Docker gives on cgroup v2
//! hosts: the container's cgroup is `/` there and in /proc/self/cgroup,
//! so runtimes that size themselves from their limits (JVMs, Go, Node
//! read memory.max or memory.limit_in_bytes) find them.
//!
//! The parent reads which cgroup filesystems the host has mounted
//! (`host_view`, once); the child, already placed in its cgroup, unshares
//! the namespace and mounts the same filesystems, which the kernel roots
//! at the container's cgroup. On a v1 or hybrid host that is a small
//! tmpfs holding one mount per hierarchy (and the host's symlinks, like
//! cpu -> cpu,cpuacct); on a pure v2 host one cgroup2 mount.

use std::ffi::CString;
use std::fs;
use std::sync::OnceLock;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::error::SysError;

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFs {
    /// The mount's directory under /sys/fs/cgroup; empty for a cgroup2
    /// mounted at /sys/fs/cgroup itself.
    pub dir: String,
    /// "cgroup" (v1) or "cgroup2".
    pub fstype: &'static str,
    /// v1: the hierarchy's controllers and name= (what selects it).
    pub options: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupView {
    pub mounts: Vec<CgroupFs>,
    /// Symlinks beside the v1 mounts: (name, target).
    pub symlinks: Vec<(String, String)>,
}

/// The host's cgroup filesystems under /sys/fs/cgroup, read once: they do
/// not change while the daemon runs.
pub fn host_view() -> &'static CgroupView {
    static VIEW: OnceLock<CgroupView> = OnceLock::new();
    VIEW.get_or_init(|| {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let controllers = fs::read_to_string("/proc/cgroups").unwrap_or_default();
        let mut view = parse_view(&mountinfo, &controllers);
        if view.mounts.iter().all(|m| !m.dir.is_empty()) {
            view.symlinks = host_symlinks();
        }
        view
    })
}

/// The cgroup and cgroup2 mounts at or directly under /sys/fs/cgroup, from
/// /proc/self/mountinfo; v1 options keep only the controllers (as
/// /proc/cgroups names them) and `name=`.
pub fn parse_view(mountinfo: &str, proc_cgroups: &str) -> CgroupView {
    let known: Vec<&str> = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (fstype, super_options) = match (right.next(), right.nth(1)) {
            (Some("cgroup"), Some(o)) => ("cgroup", o),
            (Some("cgroup2"), Some(o)) => ("cgroup2", o),
            _ => continue,
        };
        let dir = match point.strip_prefix(ROOT) {
            Some("") => String::new(),
            Some(rest) => match rest.strip_prefix('/') {
                Some(name) if !name.is_empty() && !name.contains('/') => name.to_string(),
                _ => continue,
            },
            None => continue,
        };
        let options = if fstype == "cgroup" {
            super_options
                .split(',')
                .filter(|o| o.starts_with("name=") || known.contains(o))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        mounts.push(CgroupFs {
            dir,
            fstype,
            options,
        });
    }
    CgroupView {
        mounts,
        symlinks: Vec::new(),
    }
}

fn host_symlinks() -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(ROOT) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let target = fs::read_link(e.path()).ok()?;
            Some((
                e.file_name().into_string().ok()?,
                target.into_os_string().into_string().ok()?,
            ))
        })
        .collect()
}

/// In the child, once it is in its cgroup and /sys is mounted: a new
/// cgroup namespace, and `view` mounted at /sys/fs/cgroup, read-only
/// unless `writable` (a privileged container's, as Docker mounts it).
pub fn enter_private(view: &CgroupView, writable: bool) -> Result<(), SysError> {
    unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| SysError::new("unshare cgroup", e))?;
    let locked = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let single = view.mounts.iter().find(|m| m.dir.is_empty());
    if let Some(unified) = single {
        return mount_cgroup(unified, ROOT, locked, writable);
    }
    if view.mounts.is_empty() {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        ROOT,
        Some("tmpfs"),
        locked,
        Some("mode=755,size=64k"),
    )
    .map_err(|e| SysError::at("mount tmpfs", ROOT, e))?;
    for m in &view.mounts {
        let target = format!("{ROOT}/{}", m.dir);
        fs::create_dir(&target).map_err(|e| SysError::io("mkdir", &target, &e))?;
        mount_cgroup(m, &target, locked, writable)?;
    }
    for (name, to) in &view.symlinks {
        let link = format!("{ROOT}/{name}");
        std::os::unix::fs::symlink(to, &link).map_err(|e| SysError::io("symlink", &link, &e))?;
    }
    if writable {
        return Ok(());
    }
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
    mount(
        None::<&str>,
        ROOT,
        None::<&str>,
        remount,
        Some("mode=755,size=64k"),
    )
    .map_err(|e| SysError::at("remount read-only", ROOT, e))
}

/// Mounts `m` at `target`, then, unless `writable`, makes that mount
/// read-only: a v1 hierarchy the host mounted read-write is the same
/// superblock, so only the mount (a bind remount) can be made read-only.
fn mount_cgroup(
    m: &CgroupFs,
    target: &str,
    locked: MsFlags,
    writable: bool,
) -> Result<(), SysError> {
    let data = CString::new(m.options.as_str()).ok();
    mount(
        Some(m.fstype),
        target,
        Some(m.fstype),
        locked,
        data.as_deref().filter(|d| !d.is_empty()),
    )
    .map_err(|e| SysError::at("mount cgroup", target, e))?;
    if writable {
        return Ok(());
    }
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked;
    mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
        .map_err(|e| SysError::at("remount read-only", target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROLLERS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpu\t2\t1\t1\nmemory\t5\t1\t1\npids\t9\t1\t1\n";

    #[test]
    fn a_hybrid_host_gives_each_hierarchy_and_the_unified_mount() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,xattr,memory,release_agent=/x
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:39 / /sys/fs/cgroup/a/b rw - cgroup cgroup rw,pids
51 23 0:40 / /mnt/cgroup rw - cgroup cgroup rw,pids
";
        let view = parse_view(mountinfo, CONTROLLERS);
        let got: Vec<(&str, &str, &str)> = view
            .mounts
            .iter()
            .map(|m| (m.dir.as_str(), m.fstype, m.options.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("cpu", "cgroup", "cpu"),
                ("memory", "cgroup", "memory"),
                ("systemd", "cgroup", "name=systemd"),
                ("unified", "cgroup2", ""),
            ]
        );
    }

    #[test]
    fn a_pure_v2_host_gives_one_mount_at_the_root() {
        let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let view = parse_view(mountinfo, CONTROLLERS);
        assert_eq!(view.mounts.len(), 1);
        assert!(view.mounts[0].dir.is_empty());
        assert_eq!(
            parse_view("garbage\n\n - \n", CONTROLLERS),
            CgroupView::default()
        );
    }
}
