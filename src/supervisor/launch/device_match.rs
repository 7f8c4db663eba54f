//! A `match` entry at a container's start: the devices sysfs lists
//! (/sys/dev/char and /sys/dev/block) are compared with it, and the
//! first that matches (by name, for a stable choice) is given. Runs in
//! the creation helper with the rest of the device lookup. Also the
//! properties of one device for hotplug (the uevent's, plus the USB ids
//! from sysfs when the entry asks for them).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::kernel::host_devices::{HostNode, NodeKind};
use crate::kernel::sysfs_devices::{SysDevice, scan_sys_dev, usb_ids};
use crate::supervisor::spec::device_match::{DeviceMatch, DeviceProperties};

/// Where the host's sysfs is; tests give a tree of their own.
pub const SYS_ROOT: &str = "/sys";
/// Devices with a node looked at, at most (a big machine has a few
/// thousand).
const MAX_SYS_DEVICES: usize = 1 << 16;

/// A device's properties: subsystem and name, and its USB ids if `usb`.
pub fn properties(
    sys_root: &Path,
    devpath: &str,
    subsystem: &str,
    name: &str,
    usb: bool,
) -> DeviceProperties {
    let ids = if usb {
        usb_ids(sys_root, devpath)
    } else {
        Default::default()
    };
    DeviceProperties {
        subsystem: subsystem.to_string(),
        name: name.to_string(),
        vendor: ids.vendor,
        product: ids.product,
        serial: ids.serial,
    }
}

/// The host's node of a device: /dev/NAME's mode and owner when that is
/// the device's node (udev may have changed them), else root's 0600.
pub fn host_node(dev_root: &Path, name: &str, kind: NodeKind, major: u32, minor: u32) -> HostNode {
    let path = dev_root.join(name);
    let rdev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
    let meta = fs::symlink_metadata(&path).ok().filter(|m| {
        let t = m.file_type();
        let same_kind = match kind {
            NodeKind::Char => t.is_char_device(),
            NodeKind::Block => t.is_block_device(),
        };
        same_kind && m.rdev() == rdev
    });
    HostNode {
        path,
        kind,
        major,
        minor,
        mode: meta.as_ref().map_or(0o600, |m| m.mode() & 0o7777),
        uid: meta.as_ref().map_or(0, |m| m.uid()),
        gid: meta.as_ref().map_or(0, |m| m.gid()),
    }
}

fn matches(m: &DeviceMatch, sys_root: &Path, d: &SysDevice) -> bool {
    let props = properties(
        sys_root,
        &d.devpath,
        &d.subsystem,
        &d.devname,
        m.wants_usb(),
    );
    m.matches(&props)
}

/// The device `m` names now, if one is there.
pub fn find_match(m: &DeviceMatch, sys_root: &Path, dev_root: &Path) -> Option<HostNode> {
    let mut found: Vec<SysDevice> = scan_sys_dev(sys_root, MAX_SYS_DEVICES)
        .into_iter()
        .filter(|d| matches(m, sys_root, d))
        .collect();
    found.sort_by(|a, b| a.devname.cmp(&b.devname));
    let d = found.first()?;
    Some(host_node(dev_root, &d.devname, d.kind, d.major, d.minor))
}

/// How an unmatched entry is named in messages.
pub fn describe(m: &DeviceMatch) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "match".into())
}

/// The host's /dev.
pub fn dev_root() -> PathBuf {
    PathBuf::from("/dev")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn a_match_is_found_in_a_sysfs_tree() {
        let sys = tempfile::tempdir().expect("tempdir");
        let root = sys.path();
        let tty = "devices/usb1/1-2/1-2:1.0/ttyUSB3/tty/ttyUSB3";
        fs::create_dir_all(root.join(tty)).expect("mkdir");
        fs::create_dir_all(root.join("class/tty")).expect("mkdir");
        fs::create_dir_all(root.join("dev/char")).expect("mkdir");
        for (f, v) in [
            ("idVendor", "0403"),
            ("idProduct", "6001"),
            ("serial", "A10K"),
        ] {
            fs::write(root.join("devices/usb1/1-2").join(f), v).expect("write");
        }
        fs::write(
            root.join(tty).join("uevent"),
            "MAJOR=188\nMINOR=3\nDEVNAME=ttyUSB3\n",
        )
        .expect("write");
        symlink(
            "../../../../../../class/tty",
            root.join(tty).join("subsystem"),
        )
        .expect("ln");
        symlink(format!("../../{tty}"), root.join("dev/char/188:3")).expect("ln");
        let m: DeviceMatch =
            serde_json::from_str(r#"{"subsystem": "tty", "vendor": "0403", "serial": "A10K"}"#)
                .expect("match");
        let dev = tempfile::tempdir().expect("tempdir");
        let n = find_match(&m, root, dev.path()).expect("found");
        assert_eq!((n.kind, n.major, n.minor), (NodeKind::Char, 188, 3));
        assert_eq!(
            (n.path, n.mode, n.uid),
            (dev.path().join("ttyUSB3"), 0o600, 0)
        );
        let other: DeviceMatch = serde_json::from_str(r#"{"serial": "B"}"#).expect("match");
        assert_eq!(find_match(&other, root, dev.path()), None);
        assert!(describe(&m).contains("\"vendor\":\"0403\""));
    }
}
