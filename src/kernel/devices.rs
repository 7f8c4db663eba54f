//! The minimal /dev every container gets (runtime-spec "default devices"),
//! created on the container's own tmpfs. Runs in the child only.

use std::fs::{Permissions, set_permissions};
use std::os::unix::fs::{PermissionsExt, symlink};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::error::SysError;

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
