//! Whether this network namespace is online, as a `{"network": "online"}`
//! gate means it: an address that is not loopback nor IPv6 link-local, and
//! a default route; and a netlink socket that wakes the loop when links,
//! addresses or routes change.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket,
};

use super::error::SysError;

/// An address and a default route (IPv4 or IPv6).
pub fn online() -> bool {
    has_global_address() && has_default_route()
}

fn has_global_address() -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs.filter_map(|a| a.address).any(|a| {
        if let Some(v4) = a.as_sockaddr_in() {
            !v4.ip().is_loopback()
        } else if let Some(v6) = a.as_sockaddr_in6() {
            let ip = v6.ip();
            // fe80::/10 needs no network at all.
            !ip.is_loopback() && (ip.segments()[0] & 0xffc0) != 0xfe80
        } else {
            false
        }
    })
}

fn has_default_route() -> bool {
    // /proc/net/route: "Iface Destination Gateway Flags ..." in hex; the
    // default route has destination 00000000 and RTF_UP (1) set.
    let v4 = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v4_default = v4.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3
            && f[1] == "00000000"
            && u32::from_str_radix(f[3], 16).is_ok_and(|flags| flags & 1 != 0)
    });
    // /proc/net/ipv6_route: destination, prefix length first; ::/0 over a
    // device other than lo.
    let v6 = fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let v6_default = v6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 10 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo"
    });
    v4_default || v6_default
}

/// Link, address and route changes (RTMGRP_LINK, *_IFADDR, *_ROUTE).
pub struct RouteEvents {
    fd: OwnedFd,
}

impl RouteEvents {
    pub fn open() -> Result<RouteEvents, SysError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| SysError::new("socket(NETLINK_ROUTE)", e))?;
        let groups = libc::RTMGRP_LINK
            | libc::RTMGRP_IPV4_IFADDR
            | libc::RTMGRP_IPV4_ROUTE
            | libc::RTMGRP_IPV6_IFADDR
            | libc::RTMGRP_IPV6_ROUTE;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups as u32))
            .map_err(|e| SysError::new("bind(NETLINK_ROUTE)", e))?;
        Ok(RouteEvents { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every pending message; their content does not matter, only
    /// that something changed (an overrun, ENOBUFS, counts as a change).
    pub fn drain(&self) {
        let mut buf = [0u8; 8192];
        while nix::unistd::read(self.fd.as_fd(), &mut buf).is_ok_and(|n| n > 0) {}
    }
}
