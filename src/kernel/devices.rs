//! The minimal /dev every container gets (runtime-spec "default devices"),
//! created on the container's own tmpfs, and the nodes of the devices it
//! was given. Runs in the child only, as the host's root (before any user
//! namespace is joined), after pivot_root: every path is the container's.

use std::fs::{self, Permissions, set_permissions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, lchown, symlink};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::config::DeviceNode;
use super::error::SysError;
use super::host_devices::NodeKind;

struct Device {
    path: &'static str,
    major: u64,
    minor: u64,
}

const DEVICES: &[Device] = &[
    Device {
        path: "/dev/null",
        major: 1,
        minor: 3,
    },
    Device {
        path: "/dev/zero",
        major: 1,
        minor: 5,
    },
    Device {
        path: "/dev/full",
        major: 1,
        minor: 7,
    },
    Device {
        path: "/dev/random",
        major: 1,
        minor: 8,
    },
    Device {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
    },
    Device {
        path: "/dev/tty",
        major: 5,
        minor: 0,
    },
];

const LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

pub fn make_default_devices() -> Result<(), SysError> {
    let mode = Mode::from_bits_truncate(0o666);
    for d in DEVICES {
        mknod(d.path, SFlag::S_IFCHR, mode, makedev(d.major, d.minor))
            .map_err(|e| SysError::at("mknod", d.path, e))?;
        // mknod's mode is filtered by the umask; the nodes must be 0666.
        set_permissions(d.path, Permissions::from_mode(0o666))
            .map_err(|e| SysError::io("chmod", d.path, &e))?;
    }
    for (target, link) in LINKS {
        symlink(target, link).map_err(|e| SysError::io("symlink", *link, &e))?;
    }
    Ok(())
}

/// Makes each node with its type, numbers, owner and permission bits,
/// creating missing parent directories. A node already there for the same
/// device (a default one, or one an earlier run left in the upper layer)
/// is kept and given this owner and mode; anything else but a directory
/// there is replaced.
pub fn make_device_nodes(nodes: &[DeviceNode]) -> Result<(), SysError> {
    for node in nodes {
        let path = node.path.as_path();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| SysError::io("mkdir", parent, &e))?;
        }
        if clear_the_way(node)? {
            let kind = match node.kind {
                NodeKind::Char => SFlag::S_IFCHR,
                NodeKind::Block => SFlag::S_IFBLK,
            };
            let dev = makedev(u64::from(node.major), u64::from(node.minor));
            mknod(path, kind, Mode::empty(), dev)
                .map_err(|e| SysError::at("make device node", path, e))?;
        }
        lchown(path, Some(node.uid), Some(node.gid))
            .map_err(|e| SysError::io("chown device node", path, &e))?;
        // After the chown, which may clear set-id bits; mknod's mode would
        // have been filtered by the umask.
        set_permissions(path, Permissions::from_mode(node.mode))
            .map_err(|e| SysError::io("chmod device node", path, &e))?;
    }
    Ok(())
}

/// False when `node` is already there; removes whatever else is in its
/// way, except a directory.
fn clear_the_way(node: &DeviceNode) -> Result<bool, SysError> {
    let path = node.path.as_path();
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(true);
    };
    let t = meta.file_type();
    let kind_matches = match node.kind {
        NodeKind::Char => t.is_char_device(),
        NodeKind::Block => t.is_block_device(),
    };
    let rdev = makedev(u64::from(node.major), u64::from(node.minor));
    if kind_matches && meta.rdev() == rdev {
        return Ok(false);
    }
    if t.is_dir() {
        return Err(SysError::at("make device node", path, Errno::EISDIR));
    }
    remove(path)?;
    Ok(true)
}

fn remove(path: &Path) -> Result<(), SysError> {
    fs::remove_file(path).map_err(|e| SysError::io("replace with a device node", path, &e))
}
