//! The container's own mounts (tmpfs and host binds), its read-only root,
//! and its sysctls. Runs in the child only.
//!
//! A bind source is a host path, gone once the child has pivoted, while a
//! target must be resolved inside the container (so an image's symlink can
//! never aim a mount at a host path). The new mount API splits the two:
//! `open_tree` clones the source into a detached mount before the pivot,
//! `move_mount` attaches it at its target after.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::fstat;

use super::config::{MountConfig, MountFlags, Propagation};
use super::error::SysError;
use super::rootfs::{FsOwner, owner_options};
use super::tmpfs_files;

/// `struct mount_attr` from linux/mount.h (version 0).
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

fn cpath(path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SysError::at("path", path, Errno::EINVAL))
}

/// Clones every bind source into a detached mount with its flags and
/// propagation already set, in `mounts` order (one entry per bind).
/// Runs before the root is made private, so a "slave" clone still has a
/// host peer group to follow.
pub fn open_bind_sources(mounts: &[MountConfig]) -> Result<Vec<OwnedFd>, SysError> {
    let mut fds = Vec::new();
    for m in mounts {
        let MountConfig::Bind {
            source,
            flags,
            propagation,
            ..
        } = m
        else {
            continue;
        };
        let fd = clone_tree(source)?;
        set_attributes(&fd, *flags, *propagation)
            .map_err(|e| SysError::at("set bind mount options", source, e))?;
        fds.push(fd);
    }
    Ok(fds)
}

/// A detached recursive copy of the mount tree at `source` (open_tree
/// with OPEN_TREE_CLONE), to be adjusted and attached elsewhere.
pub fn clone_tree(source: &Path) -> Result<OwnedFd, SysError> {
    let c = cpath(source)?;
    let open_flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: `c` is a NUL-terminated path that outlives the call;
    // open_tree returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), open_flags) };
    if fd < 0 {
        return Err(SysError::at("open mount tree", source, Errno::last()));
    }
    // SAFETY: open_tree just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Makes the detached tree `fd` show ids through `userns`'s mapping:
/// on-disk id N appears as the host id the namespace maps N to.
pub fn idmap_tree(fd: &OwnedFd, userns: RawFd) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns as u64,
        ..MountAttr::default()
    };
    mount_setattr(fd, &attr)
}

fn set_attributes(fd: &OwnedFd, flags: MountFlags, propagation: Propagation) -> Result<(), Errno> {
    let mut attr = MountAttr::default();
    for (on, bit) in [
        (flags.read_only, MOUNT_ATTR_RDONLY),
        (flags.nosuid, MOUNT_ATTR_NOSUID),
        (flags.nodev, MOUNT_ATTR_NODEV),
        (flags.noexec, MOUNT_ATTR_NOEXEC),
    ] {
        if on {
            attr.attr_set |= bit;
        }
    }
    attr.propagation = match propagation {
        Propagation::Private => libc::MS_PRIVATE,
        Propagation::Slave => libc::MS_SLAVE,
    };
    mount_setattr(fd, &attr)
}

fn mount_setattr(fd: &OwnedFd, attr: &MountAttr) -> Result<(), Errno> {
    let empty = c"";
    // SAFETY: `attr` is a live mount_attr of the size passed; `empty` is a
    // NUL-terminated string; AT_EMPTY_PATH makes the call act on `fd`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// Mounts every tmpfs (filled ones too) and attaches every bind opened by
/// [`open_bind_sources`], creating missing targets inside the container.
pub fn mount_all(
    mounts: &[MountConfig],
    mut binds: Vec<OwnedFd>,
    owner: Option<FsOwner>,
) -> Result<(), SysError> {
    binds.reverse();
    for m in mounts {
        match m {
            MountConfig::Tmpfs {
                target,
                size_bytes,
                mode,
                flags,
            } => mount_tmpfs(target, *size_bytes, *mode, *flags, owner)?,
            MountConfig::Bind { target, .. } => {
                let fd = binds
                    .pop()
                    .ok_or_else(|| SysError::at("attach bind mount", target, Errno::EBADF))?;
                attach_bind(&fd, target)?;
            }
            MountConfig::Files {
                target,
                size_bytes,
                mode,
                files,
            } => tmpfs_files::mount_files(target, *size_bytes, *mode, files, owner)?,
        }
    }
    Ok(())
}

fn mount_tmpfs(
    target: &Path,
    size: u64,
    mode: u32,
    flags: MountFlags,
    owner: Option<FsOwner>,
) -> Result<(), SysError> {
    fs::create_dir_all(target).map_err(|e| SysError::io("mkdir", target, &e))?;
    let data = format!("mode={mode:o},size={size}{}", owner_options(owner));
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        ms_flags(flags),
        Some(data.as_str()),
    )
    .map_err(|e| SysError::at("mount tmpfs", target, e))
}

fn ms_flags(flags: MountFlags) -> MsFlags {
    let mut ms = MsFlags::empty();
    for (on, bit) in [
        (flags.read_only, MsFlags::MS_RDONLY),
        (flags.nosuid, MsFlags::MS_NOSUID),
        (flags.nodev, MsFlags::MS_NODEV),
        (flags.noexec, MsFlags::MS_NOEXEC),
    ] {
        if on {
            ms |= bit;
        }
    }
    ms
}

fn attach_bind(fd: &OwnedFd, target: &Path) -> Result<(), SysError> {
    let is_dir = fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map_err(|e| SysError::at("stat bind source for", target, e))?;
    create_target(target, is_dir)?;
    let dest = open_in_root(target)?;
    move_mount_to(fd, dest.as_raw_fd(), c"", MOVE_MOUNT_T_EMPTY_PATH)
        .map_err(|e| SysError::at("attach mount", target, e))
}

/// `target` opened O_PATH with the process's root (the container's, after
/// pivot_root) as the root of the lookup: an image's symlinks are followed
/// as the container sees them and can never lead above its root, and magic
/// links (`/proc/self/fd/N`) are refused. move_mount(2) itself would not
/// follow a symlink at the target at all, so a bind aimed through one
/// failed with EINVAL while a tmpfs, mounted with mount(2), followed it.
fn open_in_root(target: &Path) -> Result<OwnedFd, SysError> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SysError::at("open", "/", e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(&root, target, how).map_err(|e| SysError::at("resolve mount target", target, e))
}

/// Attaches the detached tree `fd` at `target` (which must exist; a
/// symlink there is not followed).
pub fn attach_tree(fd: &OwnedFd, target: &Path) -> Result<(), SysError> {
    let c = cpath(target)?;
    move_mount_to(fd, libc::AT_FDCWD, &c, 0).map_err(|e| SysError::at("attach mount", target, e))
}

/// move_mount(2) of the detached tree `fd` to `to` relative to `dir`
/// (AT_FDCWD or a descriptor; `to_flags`: MOVE_MOUNT_T_EMPTY_PATH when
/// `dir` is the target itself and `to` is empty).
fn move_mount_to(
    fd: &OwnedFd,
    dir: RawFd,
    to: &std::ffi::CStr,
    to_flags: libc::c_uint,
) -> Result<(), Errno> {
    let empty = c"";
    // SAFETY: both strings are NUL-terminated and live across the call;
    // MOVE_MOUNT_F_EMPTY_PATH makes the source the detached tree `fd`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            empty.as_ptr(),
            dir,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | to_flags,
        )
    };
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// A bind target must be of the source's kind: a directory for a
/// directory, a file for anything else.
fn create_target(target: &Path, is_dir: bool) -> Result<(), SysError> {
    if is_dir {
        return fs::create_dir_all(target).map_err(|e| SysError::io("mkdir", target, &e));
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| SysError::io("mkdir", parent, &e))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(target)
        .map(drop)
        .map_err(|e| SysError::io("create bind target", target, &e))
}

/// Makes the container's `/` read-only; the mounts on top of it (/proc,
/// /dev, tmpfs, binds) keep their own flags.
pub fn make_root_readonly() -> Result<(), SysError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| SysError::at("remount read-only", "/", e))
}

/// Writes each sysctl under /proc/sys (needs /proc mounted, and must run
/// before /proc/sys is made read-only). Keys were checked against the
/// namespaced allow-list by the supervisor.
pub fn write_sysctls(sysctls: &[(String, String)]) -> Result<(), SysError> {
    for (key, value) in sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value.as_bytes()).map_err(|e| SysError::io("write sysctl", &path, &e))?;
    }
    Ok(())
}
