//! Devices as sysfs describes them: every device with a node
//! (/sys/dev/char and /sys/dev/block, the kernel's own index by
//! major:minor) with its subsystem and name, and the USB ids and serial
//! of the USB device a node belongs to (walking up from /sys/DEVPATH to
//! the `usb_device` parent, as udev's usb_id does). The sysfs root is a
//! parameter so tests can give a tree of their own. Bounded: no walk,
//! file or listing grows without limit.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::host_devices::NodeKind;
use super::uevent::clean_devname;

/// sysfs attributes read here are short ("0403", a serial number).
const MAX_ATTRIBUTE_BYTES: u64 = 256;
/// A `uevent` file is at most a page.
const MAX_UEVENT_FILE_BYTES: u64 = 4096;
/// Levels walked up from a device to its USB parent (a USB tty sits
/// about 8 below /sys/devices).
const MAX_PARENT_LEVELS: usize = 32;

/// The USB device a node belongs to (each field only if read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsbIds {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// One device with a node, from /sys/dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysDevice {
    /// Beneath the sysfs root, starting with "/devices/".
    pub devpath: String,
    pub subsystem: String,
    /// Beneath /dev.
    pub devname: String,
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
}

/// A short attribute, trimmed; `None` if absent, unreadable, too long or
/// not text.
pub fn read_attribute(path: &Path) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_ATTRIBUTE_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_ATTRIBUTE_BYTES {
        return None;
    }
    Some(text.trim().to_string())
}

/// The idVendor, idProduct and serial of the nearest ancestor of
/// `/sys{devpath}` that has an idVendor (the usb_device); empty for a
/// device on no USB bus.
pub fn usb_ids(sys_root: &Path, devpath: &str) -> UsbIds {
    if devpath.split('/').any(|c| c == "..") {
        return UsbIds::default();
    }
    let mut dir = sys_root.join(devpath.trim_start_matches('/'));
    for _ in 0..MAX_PARENT_LEVELS {
        if !dir.starts_with(sys_root) || dir == sys_root {
            break;
        }
        if let Some(vendor) = read_attribute(&dir.join("idVendor")) {
            return UsbIds {
                vendor: Some(vendor),
                product: read_attribute(&dir.join("idProduct")),
                serial: read_attribute(&dir.join("serial")),
            };
        }
        if !dir.pop() {
            break;
        }
    }
    UsbIds::default()
}

/// Every device with a node under `sys_root`/dev/{char,block}, at most
/// `limit`; entries that do not read as a device are skipped.
pub fn scan_sys_dev(sys_root: &Path, limit: usize) -> Vec<SysDevice> {
    let mut out = Vec::new();
    for (dir, kind) in [("char", NodeKind::Char), ("block", NodeKind::Block)] {
        let Ok(entries) = fs::read_dir(sys_root.join("dev").join(dir)) else {
            continue;
        };
        for entry in entries.flatten().take(limit) {
            if out.len() >= limit {
                return out;
            }
            if let Some(d) = sys_device(sys_root, &entry.path(), kind) {
                out.push(d);
            }
        }
    }
    out
}

/// One /sys/dev/{char,block}/MAJOR:MINOR link: its device's uevent file
/// names it, its subsystem link gives the subsystem.
fn sys_device(sys_root: &Path, link: &Path, kind: NodeKind) -> Option<SysDevice> {
    let real = fs::canonicalize(link).ok()?;
    let devpath = format!("/{}", real.strip_prefix(sys_root).ok()?.to_str()?);
    let mut text = String::new();
    fs::File::open(real.join("uevent"))
        .ok()?
        .take(MAX_UEVENT_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let devname = value("DEVNAME").filter(|n| clean_devname(n))?.to_string();
    let major = value("MAJOR")?.parse().ok()?;
    let minor = value("MINOR")?.parse().ok()?;
    let subsystem: PathBuf = fs::read_link(real.join("subsystem")).ok()?;
    Some(SysDevice {
        devpath,
        subsystem: subsystem.file_name()?.to_str()?.to_string(),
        devname,
        kind,
        major,
        minor,
    })
}

#[cfg(test)]
mod tests;
