//! Device nodes made and removed in a *running* container's tree, from
//! the supervisor (hotplug). The container owns that tree: any directory
//! on the way may be a symlink it planted, absolute ("/dev/x" ->
//! "/etc") or through /proc ("/proc/self/root"). A normal path walk of
//! /proc/PID/root/dev/x would resolve an absolute link against the
//! *host's* root, so a mknod or unlink there is an escape.
//!
//! Every path is therefore resolved with openat2(2) on a descriptor of
//! the container's root, RESOLVE_IN_ROOT (absolute links and ".." stay
//! inside it, as they would for the container itself) and
//! RESOLVE_NO_MAGICLINKS (no /proc/*/root or fd links out of it); the
//! node is then made with mknodat(2) in the resolved parent, and the last
//! component is never followed (fchownat and fstatat with
//! AT_SYMLINK_NOFOLLOW, unlinkat). This was chosen over a helper process
//! that joins the mount namespace: it is a handful of system calls on the
//! container's /dev tmpfs (microseconds, nothing that can block, so the
//! supervisor's loop may call it), where a helper costs a fork per
//! device and a pipe round trip, i.e. hotplug latency, for the same
//! guarantee. The root descriptor comes from /proc/PID/root of the
//! container's init, a child of the caller that is not yet reaped, so
//! the pid cannot have been reused.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, makedev, mkdirat, mknodat, umask};
use nix::unistd::{Gid, Pid, Uid, UnlinkatFlags, fchownat, unlinkat};

use super::config::DeviceNode;
use super::error::SysError;
use super::host_devices::NodeKind;

/// Directories on the way are at most this deep (/dev/bus/usb/001/002).
const MAX_DEPTH: usize = 16;

/// What making a node did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// A new node is there.
    Created,
    /// The same device's node was there already (not berth's to remove).
    AlreadyThere,
}

/// A descriptor of the container's root (as its init sees it).
pub fn open_container_root(pid: Pid) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/{pid}/root");
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    open(path.as_str(), flags, Mode::empty()).map_err(|e| SysError::at("open", path, e))
}

fn in_root(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // "." for the root itself: openat2 wants a non-empty path.
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root.as_fd(), rel, how)
}

/// The names of `path`'s directories and its last component: absolute,
/// no "." or "..", at most MAX_DEPTH deep.
fn split(path: &Path) -> Result<(Vec<&OsStr>, &OsStr), SysError> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => names.push(n),
            _ => return Err(SysError::at("resolve in container", path, Errno::EINVAL)),
        }
    }
    let last = names.pop();
    match last {
        Some(last) if path.is_absolute() && names.len() < MAX_DEPTH => Ok((names, last)),
        _ => Err(SysError::at("resolve in container", path, Errno::EINVAL)),
    }
}

/// The parent directory of `path` in the container, made (0755) where
/// missing, each level resolved from the root.
fn parent_dir(root: &OwnedFd, path: &Path, dirs: &[&OsStr]) -> Result<OwnedFd, SysError> {
    let fail = |op: &'static str, e: Errno| SysError::at(op, path, e);
    let mut at = in_root(root, Path::new("/")).map_err(|e| fail("open container root", e))?;
    let mut prefix = std::path::PathBuf::from("/");
    for name in dirs {
        prefix.push(name);
        at = match in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(at.as_fd(), *name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fail("make directory in container for", e)),
                }
                in_root(root, &prefix).map_err(|e| fail("open in container", e))?
            }
            Err(e) => return Err(fail("open in container", e)),
        };
    }
    Ok(at)
}

fn is_node(st: &FileStat, kind: NodeKind, major: u32, minor: u32) -> bool {
    let want = match kind {
        NodeKind::Char => SFlag::S_IFCHR,
        NodeKind::Block => SFlag::S_IFBLK,
    };
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == want
        && st.st_rdev == makedev(u64::from(major), u64::from(minor))
}

/// Makes `node` in the container whose root is `root`: its type,
/// numbers, exact mode (the umask is lifted around mknodat: the
/// supervisor is single-threaded) and owner. Anything else already at
/// the path is left alone and reported (EEXIST): the container may keep
/// its own files.
pub fn make_node_in_root(root: &OwnedFd, node: &DeviceNode) -> Result<Made, SysError> {
    let (dirs, name) = split(&node.path)?;
    let parent = parent_dir(root, &node.path, &dirs)?;
    let fail = |op: &'static str, e: Errno| SysError::at(op, node.path.clone(), e);
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    match fstatat(parent.as_fd(), name, nofollow) {
        Ok(st) if is_node(&st, node.kind, node.major, node.minor) => return Ok(Made::AlreadyThere),
        Ok(_) => return Err(fail("make device node", Errno::EEXIST)),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail("stat in container", e)),
    }
    let kind = match node.kind {
        NodeKind::Char => SFlag::S_IFCHR,
        NodeKind::Block => SFlag::S_IFBLK,
    };
    let dev = makedev(u64::from(node.major), u64::from(node.minor));
    let mode = Mode::from_bits_truncate(node.mode & 0o777);
    let old = umask(Mode::empty());
    let made = mknodat(parent.as_fd(), name, kind, mode, dev);
    umask(old);
    made.map_err(|e| fail("make device node", e))?;
    let (uid, gid) = (Uid::from_raw(node.uid), Gid::from_raw(node.gid));
    if let Err(e) = fchownat(parent.as_fd(), name, Some(uid), Some(gid), nofollow) {
        let _ = unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir);
        return Err(fail("chown device node", e));
    }
    Ok(Made::Created)
}

/// Removes the node at `path` in the container if it is still that
/// device's node; true if it was removed. Anything else there (the
/// container replaced it, or it is already gone) is left alone.
pub fn remove_node_in_root(
    root: &OwnedFd,
    path: &Path,
    kind: NodeKind,
    major: u32,
    minor: u32,
) -> Result<bool, SysError> {
    let (dirs, name) = split(path)?;
    let parent = match in_root(root, &dirs.iter().collect::<std::path::PathBuf>()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(SysError::at("open in container", path, e)),
    };
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    match fstatat(parent.as_fd(), name, nofollow) {
        Ok(st) if is_node(&st, kind, major, minor) => {}
        Ok(_) | Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(SysError::at("stat in container", path, e)),
    }
    unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir)
        .map_err(|e| SysError::at("remove device node", path, e))?;
    Ok(true)
}

#[cfg(test)]
mod tests;
