//! The container's filesystem view, built inside its own mount namespace:
//! the overlay root, pivot_root, the kernel filesystems, masked and
//! read-only paths. Runs in the child only.

use std::ffi::CStr;
use std::fs;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use super::error::SysError;

/// Stops our mounts from propagating back to the host (and the host's into
/// us) before anything is mounted.
pub fn make_root_private() -> Result<(), SysError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SysError::at("make mount private", "/", e))
}

/// Makes `new_root` the container's `/` and detaches the host's root.
/// pivot_root(".", ".") stacks the old root on top of the new one, so no
/// put_old directory is needed inside the image (the runc technique).
pub fn pivot_into(new_root: &CStr) -> Result<(), SysError> {
    chdir(new_root)
        .map_err(|e| SysError::at("chdir", new_root.to_string_lossy().into_owned(), e))?;
    pivot_root(".", ".")
        .map_err(|e| SysError::at("pivot_root", new_root.to_string_lossy().into_owned(), e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| SysError::at("detach old root", "/", e))?;
    chdir("/").map_err(|e| SysError::at("chdir", "/", e))
}

struct KernelMount {
    target: &'static str,
    fstype: &'static str,
    source: &'static str,
    flags: MsFlags,
    data: &'static str,
}

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// Docker's default mounts (oci/defaults.go), except /dev/shm whose size is
/// configurable. Mounted after pivot_root, so a symlink the image placed at
/// e.g. /proc resolves inside the container, never onto a host path.
const KERNEL_MOUNTS: &[KernelMount] = &[
    KernelMount {
        target: "/proc",
        fstype: "proc",
        source: "proc",
        flags: NOSUID_NOEXEC_NODEV,
        data: "",
    },
    KernelMount {
        target: "/dev",
        fstype: "tmpfs",
        source: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_STRICTATIME),
        data: "mode=755,size=65536k",
    },
    KernelMount {
        target: "/dev/pts",
        fstype: "devpts",
        source: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "newinstance,ptmxmode=0666,mode=0620,gid=5",
    },
    KernelMount {
        target: "/dev/mqueue",
        fstype: "mqueue",
        source: "mqueue",
        flags: NOSUID_NOEXEC_NODEV,
        data: "",
    },
    KernelMount {
        target: "/sys",
        fstype: "sysfs",
        source: "sysfs",
        flags: NOSUID_NOEXEC_NODEV.union(MsFlags::MS_RDONLY),
        data: "",
    },
];

/// Host ids that own what the container may write on its kernel
/// filesystems: its root, and the group of terminals ("tty", gid 5). Only
/// set with a user namespace, where the host's root is nobody.
#[derive(Debug, Clone, Copy)]
pub struct FsOwner {
    pub uid: u32,
    pub gid: u32,
    pub tty_gid: u32,
}

/// The kernel filesystems; `writable_sysfs` leaves /sys read-write (a
/// privileged container's).
pub fn mount_kernel_filesystems(
    shm_size_bytes: u64,
    owner: Option<FsOwner>,
    writable_sysfs: bool,
) -> Result<(), SysError> {
    for m in KERNEL_MOUNTS {
        match (m.fstype, owner) {
            ("devpts", Some(o)) => {
                let data = format!("newinstance,ptmxmode=0666,mode=0620,gid={}", o.tty_gid);
                mount_at(m.source, m.target, m.fstype, m.flags, &data)?;
            }
            ("sysfs", _) if writable_sysfs => {
                let flags = m.flags.difference(MsFlags::MS_RDONLY);
                mount_at(m.source, m.target, m.fstype, flags, m.data)?;
            }
            _ => mount_at(m.source, m.target, m.fstype, m.flags, m.data)?,
        }
    }
    let shm_data = format!("mode=1777,size={shm_size_bytes}{}", owner_options(owner));
    mount_at("shm", "/dev/shm", "tmpfs", NOSUID_NOEXEC_NODEV, &shm_data)
}

/// ",uid=U,gid=G" for a tmpfs owned by the container's mapped root.
pub fn owner_options(owner: Option<FsOwner>) -> String {
    owner.map_or_else(String::new, |o| format!(",uid={},gid={}", o.uid, o.gid))
}

fn mount_at(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), SysError> {
    fs::create_dir_all(target).map_err(|e| SysError::io("mkdir", target, &e))?;
    let data = (!data.is_empty()).then_some(data);
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(|e| SysError::at("mount", target, e))
}

/// Hides each path: files behind /dev/null, directories behind an empty
/// read-only tmpfs (as runc does). Paths the kernel lacks are skipped.
pub fn mask_paths(paths: &[std::path::PathBuf]) -> Result<(), SysError> {
    for path in paths {
        let Ok(meta) = fs::symlink_metadata(path) else {
            continue;
        };
        let result = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                path.as_path(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                path.as_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.map_err(|e| SysError::at("mask", path, e))?;
    }
    Ok(())
}

/// Bind-mounts each path onto itself, then remounts it read-only.
pub fn make_paths_readonly(paths: &[std::path::PathBuf]) -> Result<(), SysError> {
    for path in paths {
        if !path_exists(path) {
            continue;
        }
        mount(
            Some(path.as_path()),
            path.as_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| SysError::at("bind read-only path", path, e))?;
        let flags =
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NOSUID_NOEXEC_NODEV;
        mount(
            None::<&str>,
            path.as_path(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| SysError::at("remount read-only", path, e))?;
    }
    Ok(())
}

fn path_exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
