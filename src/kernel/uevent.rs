//! Kernel uevents: a NETLINK_KOBJECT_UEVENT socket on the kernel's own
//! multicast group (1), and the parser of its messages ("add@/devices/…"
//! then NUL-separated KEY=VALUE pairs, see the kernel's
//! lib/kobject_uevent.c). Only what a device appearing or going needs is
//! kept; everything is bounded and nothing from the socket can panic.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, setsockopt,
    socket, sockopt,
};

use super::error::SysError;

/// The kernel's group; udev re-broadcasts on group 2 (with a "libudev"
/// header), which is never joined: its messages come from a process.
const KERNEL_GROUP: u32 = 1;
/// A uevent's environment is at most 2048 bytes (UEVENT_BUFFER_SIZE) plus
/// the "ACTION@DEVPATH" header; anything longer is not the kernel's.
pub const MAX_UEVENT_BYTES: usize = 8192;
/// Bounds of the fields kept (PATH_MAX-sized paths, short names).
const MAX_DEVPATH_BYTES: usize = 1024;
const MAX_DEVNAME_BYTES: usize = 256;
const MAX_SUBSYSTEM_BYTES: usize = 64;
/// Device numbers as the kernel has them: 12-bit majors, 20-bit minors.
const MAX_MAJOR: u32 = (1 << 12) - 1;
const MAX_MINOR: u32 = (1 << 20) - 1;
/// Socket receive buffer: a burst of uevents (a USB hub with many
/// functions) must not overflow it before the loop turns.
const RECEIVE_BUFFER_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UeventAction {
    Add,
    Remove,
    /// change, move, bind, unbind, online, offline: nothing for hotplug.
    Other,
}

/// One kernel uevent, the fields hotplug needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: UeventAction,
    /// Beneath /sys, starting with "/" and without "..".
    pub devpath: String,
    pub subsystem: String,
    /// The node's name beneath /dev ("ttyUSB0", "bus/usb/001/002"):
    /// relative, without "." or ".." components.
    pub devname: Option<String>,
    /// Both numbers, or none (not every device has a node).
    pub numbers: Option<(u32, u32)>,
}

/// Parses one message from the kernel's group. `None` for anything that
/// is not a well-formed kernel uevent: udev's "libudev" messages, a
/// missing ACTION or DEVPATH, a header that disagrees with them, bad
/// numbers, names with "..", non-UTF-8, oversized fields.
pub fn parse_uevent(bytes: &[u8]) -> Option<Uevent> {
    if bytes.len() > MAX_UEVENT_BYTES {
        return None;
    }
    let mut parts = bytes.split(|b| *b == 0).filter(|p| !p.is_empty());
    let header = std::str::from_utf8(parts.next()?).ok()?;
    let (head_action, head_path) = header.split_once('@')?;
    let (mut action, mut devpath, mut subsystem) = (None, None, None);
    let (mut devname, mut major, mut minor) = (None, None, None);
    for part in parts {
        let text = std::str::from_utf8(part).ok()?;
        let Some((key, value)) = text.split_once('=') else {
            continue;
        };
        match key {
            "ACTION" => action = Some(value),
            "DEVPATH" => devpath = Some(value),
            "SUBSYSTEM" => subsystem = Some(value),
            "DEVNAME" => devname = Some(value),
            "MAJOR" => major = Some(number(value, MAX_MAJOR)?),
            "MINOR" => minor = Some(number(value, MAX_MINOR)?),
            _ => {}
        }
    }
    let (action, devpath) = (action?, devpath?);
    if action != head_action || devpath != head_path || !clean_devpath(devpath) {
        return None;
    }
    let subsystem = subsystem.unwrap_or_default();
    if subsystem.len() > MAX_SUBSYSTEM_BYTES || subsystem.contains('/') {
        return None;
    }
    let devname = match devname {
        Some(name) if clean_devname(name) => Some(name.to_string()),
        Some(_) => return None,
        None => None,
    };
    Some(Uevent {
        action: match action {
            "add" => UeventAction::Add,
            "remove" => UeventAction::Remove,
            _ => UeventAction::Other,
        },
        devpath: devpath.to_string(),
        subsystem: subsystem.to_string(),
        devname,
        numbers: major.zip(minor),
    })
}

/// Decimal, no sign, at most `max`.
fn number(text: &str, max: u32) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|n| *n <= max)
}

fn clean_devpath(path: &str) -> bool {
    path.len() <= MAX_DEVPATH_BYTES
        && path.starts_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Relative, components neither empty nor "." or "..", no control bytes.
pub fn clean_devname(name: &str) -> bool {
    name.len() <= MAX_DEVNAME_BYTES
        && !name.bytes().any(|b| b.is_ascii_control())
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A non-blocking socket on the kernel's uevent group.
pub struct UeventSocket {
    fd: OwnedFd,
}

/// What one read of the socket gave.
#[derive(Debug, Default)]
pub struct UeventBatch {
    pub events: Vec<Uevent>,
    /// The kernel dropped messages (ENOBUFS): some devices may have come
    /// or gone unseen.
    pub overflowed: bool,
}

impl UeventSocket {
    pub fn open() -> Result<UeventSocket, SysError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(|e| SysError::new("uevent socket", e))?;
        // As root the buffer may exceed rmem_max; a refusal keeps the
        // default, which only makes an overflow likelier.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &RECEIVE_BUFFER_BYTES);
        // Port 0: the kernel picks a unique one.
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, KERNEL_GROUP),
        )
        .map_err(|e| SysError::new("bind uevent socket", e))?;
        Ok(UeventSocket { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads at most `max` pending messages without blocking. Messages
    /// whose sender is not the kernel (port id 0) are dropped: any
    /// process may send to a netlink socket.
    pub fn read_pending(&self, max: usize) -> UeventBatch {
        let mut batch = UeventBatch::default();
        let mut buf = vec![0u8; MAX_UEVENT_BYTES + 1];
        for _ in 0..max {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
            match recvfrom::<NetlinkAddr>(raw, &mut buf) {
                Ok((len, Some(from))) if from.pid() == 0 => {
                    if let Some(e) = buf.get(..len).and_then(parse_uevent) {
                        batch.events.push(e);
                    }
                }
                Ok(_) => {}
                Err(Errno::ENOBUFS) => batch.overflowed = true,
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests;
