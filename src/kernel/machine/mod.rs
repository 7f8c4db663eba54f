//! The machine as its init sees it: the early filesystems, the console,
//! the cgroup v2 root, hostname, kernel modules; the way down (kill
//! everything, sync, unmount, reboot(2)) is `shutdown.rs`. Mechanism only:
//! what to do and when is decided in `supervisor/pid1.rs`; nothing here
//! knows of specs.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use nix::sys::statfs::{FsType, statfs};
use nix::unistd::{chdir, chroot, dup2_stderr, dup2_stdin, dup2_stdout};

use crate::kernel::error::SysError;

pub mod boot_steps;
mod shutdown;

pub use shutdown::{
    PowerCommand, Termination, reboot, sync_filesystems, terminate_all_processes, unmount_all,
};

/// `PROC_PID_INIT_INO` (include/linux/proc_ns.h): the fixed inode number of
/// the initial PID namespace, so `/proc/self/ns/pid` tells the machine's
/// init from the init of a PID namespace (which may not touch the machine).
const INITIAL_PID_NS_INO: u64 = 0xEFFF_FFFC;
/// Where the root bind mount is staged before it is moved over `/`.
const ROOT_STAGING_DIR: &str = "/.berth-root";

/// One early filesystem: mounted only where nothing is mounted yet.
struct EarlyMount {
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: &'static str,
    /// The filesystem's magic when it alone can tell "already mounted"
    /// (a tmpfs target cannot: the initramfs root may itself be a tmpfs).
    magic: Option<FsType>,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The order matters: /dev/pts and /dev/shm live on the devtmpfs, and the
/// cgroup root under /sys.
const EARLY_MOUNTS: &[EarlyMount] = &[
    EarlyMount {
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        magic: Some(FsType(libc::PROC_SUPER_MAGIC)),
    },
    EarlyMount {
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        magic: Some(FsType(libc::SYSFS_MAGIC)),
    },
    EarlyMount {
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
        magic: None,
    },
    EarlyMount {
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "gid=5,mode=0620,ptmxmode=0666",
        magic: Some(FsType(libc::DEVPTS_SUPER_MAGIC)),
    },
    EarlyMount {
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=1777",
        magic: None,
    },
    EarlyMount {
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: "mode=0755",
        magic: None,
    },
];

/// Mounts /proc unless a proc filesystem is already there. Needed before
/// anything else can be decided (`is_initial_pid_namespace`). True when it
/// mounted it.
pub fn mount_proc_if_missing() -> Result<bool, SysError> {
    maybe_mount(&EARLY_MOUNTS[0])
}

/// True when this process lives in the machine's own PID namespace (not a
/// container's or a test's). Needs /proc.
pub fn is_initial_pid_namespace() -> Result<bool, SysError> {
    let meta = fs::metadata("/proc/self/ns/pid")
        .map_err(|e| SysError::io("stat", "/proc/self/ns/pid", &e))?;
    Ok(meta.ino() == INITIAL_PID_NS_INO)
}

/// What [`mount_early_filesystems`] did.
#[derive(Debug, Default)]
pub struct EarlyMounts {
    pub mounted: Vec<&'static str>,
    /// Each failure; the others are still tried (a machine without /dev/shm
    /// still boots).
    pub failed: Vec<SysError>,
}

/// Mounts /proc, /sys, /dev, /dev/pts, /dev/shm and /run where missing.
pub fn mount_early_filesystems() -> EarlyMounts {
    let mut out = EarlyMounts::default();
    for m in EARLY_MOUNTS {
        match maybe_mount(m) {
            Ok(true) => out.mounted.push(m.target),
            Ok(false) => {}
            Err(e) => out.failed.push(e),
        }
    }
    out
}

/// Mounts cgroup2 at /sys/fs/cgroup when the kernel has it and nothing is
/// mounted there. True when it mounted it (then this init owns the tree).
pub fn mount_cgroup2_if_missing() -> Result<bool, SysError> {
    let known = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !known
        .lines()
        .any(|l| l.split_whitespace().last() == Some("cgroup2"))
    {
        return Ok(false);
    }
    maybe_mount(&EarlyMount {
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        magic: Some(FsType(libc::CGROUP2_SUPER_MAGIC)),
    })
}

fn maybe_mount(m: &EarlyMount) -> Result<bool, SysError> {
    let target = Path::new(m.target);
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(target)
    {
        return Err(SysError::io("create mount point", target, &e));
    }
    let present = match m.magic {
        Some(magic) => statfs(target).is_ok_and(|s| s.filesystem_type() == magic),
        None => is_mount_point(target),
    };
    if present {
        return Ok(false);
    }
    let data = (!m.data.is_empty()).then_some(m.data);
    mount(Some(m.fstype), target, Some(m.fstype), m.flags, data)
        .map_err(|e| SysError::at("mount", target, e))?;
    Ok(true)
}

/// A directory on another device than its parent is a mount point (a bind
/// of the same filesystem is not noticed, which early mounts never are).
fn is_mount_point(path: &Path) -> bool {
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (fs::metadata(path), fs::metadata(parent)) {
        (Ok(p), Ok(q)) => p.dev() != q.dev(),
        _ => false,
    }
}

/// pivot_root(2) refuses to move away from the initramfs's rootfs (it has
/// no parent mount), so no container could start. Covering `/` with a bind
/// of itself, as switch_root does (chdir, MS_MOVE onto /, chroot "."),
/// gives the containers a root that can be pivoted away from. A no-op
/// unless `/` is the rootfs. True when it did it.
pub fn make_root_pivotable() -> Result<bool, SysError> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| SysError::io("read", "/proc/self/mountinfo", &e))?;
    let root_is_rootfs = info.lines().any(|l| {
        let mut halves = l.splitn(2, " - ");
        let mount_point = halves.next().and_then(|h| h.split(' ').nth(4));
        let fstype = halves.next().and_then(|h| h.split(' ').next());
        mount_point == Some("/") && fstype == Some("rootfs")
    });
    if !root_is_rootfs {
        return Ok(false);
    }
    let staging = Path::new(ROOT_STAGING_DIR);
    if let Err(e) = fs::DirBuilder::new().mode(0o700).create(staging)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(SysError::io("create", staging, &e));
    }
    let rec_bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some("/"), staging, None::<&str>, rec_bind, None::<&str>)
        .map_err(|e| SysError::at("bind mount / on", staging, e))?;
    chdir(staging).map_err(|e| SysError::at("chdir", staging, e))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| SysError::at("move root bind onto", "/", e))?;
    chroot(".").map_err(|e| SysError::at("chroot", staging, e))?;
    chdir("/").map_err(|e| SysError::at("chdir", "/", e))?;
    // The staging directory is an ordinary, empty directory again.
    let _ = fs::remove_dir(staging);
    Ok(true)
}

/// Points fds 0, 1 and 2 at /dev/console where they are closed or
/// /dev/null (Rust's runtime puts /dev/null on a closed one), so the
/// daemon's log lines reach the console. Needs /proc and /dev.
pub fn attach_console() -> Result<bool, SysError> {
    let unusable = |fd: RawFd| match fs::metadata(format!("/proc/self/fd/{fd}")) {
        Err(_) => true,
        // /dev/null is char device 1:3 (Documentation/admin-guide/devices.txt).
        Ok(m) => m.file_type().is_char_device() && m.rdev() == libc::makedev(1, 3),
    };
    let fds: Vec<RawFd> = (0..=2).filter(|fd| unusable(*fd)).collect();
    if fds.is_empty() {
        return Ok(false);
    }
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let console = open("/dev/console", flags, Mode::empty())
        .map_err(|e| SysError::at("open", "/dev/console", e))?;
    for fd in fds {
        // dup2 clears FD_CLOEXEC on the copy: stdio must be inherited.
        let dup = match fd {
            0 => dup2_stdin(&console),
            1 => dup2_stdout(&console),
            _ => dup2_stderr(&console),
        };
        dup.map_err(|e| SysError::at("dup2", "/dev/console", e))?;
    }
    Ok(true)
}

/// Moves this process into `root/leaf` (cgroup v2's "no internal
/// processes" rule: a cgroup that hands controllers to its children holds
/// no process itself), then enables every available controller in the
/// root's subtree_control. Returns the controllers enabled and those the
/// kernel refused.
pub fn delegate_cgroup_controllers(
    root: &Path,
    leaf: &str,
) -> Result<(Vec<String>, Vec<SysError>), SysError> {
    let leaf_dir = root.join(leaf);
    if let Err(e) = fs::create_dir(&leaf_dir)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(SysError::io("create cgroup", &leaf_dir, &e));
    }
    let procs = leaf_dir.join("cgroup.procs");
    fs::write(&procs, std::process::id().to_string())
        .map_err(|e| SysError::io("move init into", &procs, &e))?;
    let available = root.join("cgroup.controllers");
    let controllers =
        fs::read_to_string(&available).map_err(|e| SysError::io("read", &available, &e))?;
    let subtree = root.join("cgroup.subtree_control");
    let (mut enabled, mut refused) = (Vec::new(), Vec::new());
    for c in controllers.split_whitespace() {
        // One at a time, so one the kernel refuses does not hold back the rest.
        match fs::write(&subtree, format!("+{c}")) {
            Ok(()) => enabled.push(c.to_string()),
            Err(e) => refused.push(SysError::io("enable controller in", &subtree, &e)),
        }
    }
    Ok((enabled, refused))
}

/// Steps the real-time clock to `t` (CLOCK_REALTIME; needs CAP_SYS_TIME).
pub fn set_realtime(t: std::time::SystemTime) -> Result<(), SysError> {
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| SysError::new("clock_settime", nix::errno::Errno::EINVAL))?;
    let ts = libc::timespec {
        tv_sec: since.as_secs() as libc::time_t,
        tv_nsec: since.subsec_nanos() as libc::c_long,
    };
    // SAFETY: clock_settime reads one timespec we own.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(SysError::new("clock_settime", nix::errno::Errno::last()));
    }
    Ok(())
}

pub fn set_hostname(name: &str) -> Result<(), SysError> {
    nix::unistd::sethostname(name).map_err(|e| SysError::new("sethostname", e))
}

pub fn bring_up_loopback() -> Result<(), SysError> {
    crate::kernel::net::bring_up_loopback()
}

/// Loads one module with finit_module(2) (from its file, so the kernel can
/// check its signature against the file). True when it was loaded now;
/// false when the kernel already had it.
pub fn load_module(path: &Path) -> Result<bool, SysError> {
    let file = fs::File::open(path).map_err(|e| SysError::io("open module", path, &e))?;
    let params = CString::default();
    // SAFETY: finit_module reads from a live fd and a NUL-terminated empty
    // parameter string; flags 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            0 as libc::c_int,
        )
    };
    match (rc, Errno::last()) {
        (0, _) => Ok(true),
        (_, Errno::EEXIST) => Ok(false),
        // The file was opened: ENOENT here is the kernel's "unknown
        // symbol", a module it needs (modules.dep) not loaded before it.
        (_, Errno::ENOENT) => Err(SysError::at(
            "load module (unknown symbol: load the modules it depends on first)",
            path,
            Errno::ENOENT,
        )),
        (_, e) => Err(SysError::at("load module", path, e)),
    }
}

/// Ctrl-Alt-Del then sends SIGINT to init instead of rebooting at once
/// (reboot(2), LINUX_REBOOT_CMD_CAD_OFF). Only valid in the initial PID
/// namespace.
pub fn route_ctrl_alt_del_to_init() -> Result<(), SysError> {
    // SAFETY: reboot(2) with CAD_OFF only flips a kernel flag.
    if unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_CAD_OFF) } < 0 {
        return Err(SysError::new("reboot(CAD_OFF)", Errno::last()));
    }
    Ok(())
}
