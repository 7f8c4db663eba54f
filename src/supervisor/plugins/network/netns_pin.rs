//! Keeping a container's network namespace alive until DEL has run: a bind
//! mount of /proc/PID/ns/net on a file beside the CNI state (what
//! `ip netns add` and CRI runtimes do with /run/netns).
//!
//! Why: when a container exits, its namespace, and with it the container
//! end of the veth, goes away. The bridge plugin of
//! containernetworking-plugins 1.1.x then skips its ipMasq teardown on DEL
//! (plugins/main/bridge/bridge.go cmdDel returns early when the interface
//! is gone), so its POSTROUTING rules would be left behind for every run.
//! With the namespace pinned, DEL finds eth0 and removes everything.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statfs::{NSFS_MAGIC, statfs};

/// The pin for a state file: `cni.json` → `cni.netns`.
pub(super) fn pin_path(state_file: &Path) -> PathBuf {
    state_file.with_extension("netns")
}

/// True when `path` is a namespace file (a live pin, or /proc/PID/ns/net).
pub(super) fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Bind-mounts `netns` on `pin`, replacing a stale pin.
pub(super) fn pin_netns(netns: &Path, pin: &Path) -> io::Result<()> {
    if !is_netns(netns) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a namespace file", netns.display()),
        ));
    }
    unpin_netns(pin)?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o444)
        .open(pin)?;
    mount(
        Some(netns),
        pin,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Unmounts (lazily: a plugin may still hold it open) and removes the pin;
/// a missing pin is fine.
pub(super) fn unpin_netns(pin: &Path) -> io::Result<()> {
    while is_netns(pin) {
        match umount2(pin, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) => break, // not a mount point
            Err(e) => return Err(e.into()),
        }
    }
    match fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
