//! Links as the machine's init brings them up: loopback always (a
//! container with its own network namespace needs it too), the host's
//! own links when berth.json's `host_network` asks, and the socket a DHCP
//! client sends from before its link has an address.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
};

use super::error::SysError;

pub fn bring_up_loopback() -> Result<(), SysError> {
    bring_up_link("lo")
}

/// Sets IFF_UP on the link `name` (at most 15 bytes, as the kernel's).
pub fn bring_up_link(name: &str) -> Result<(), SysError> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SysError::new("socket for a link's flags", e))?;
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(SysError::new("link name", Errno::EINVAL));
    }
    // SAFETY: ifreq is a plain C struct for which all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: req is a live ifreq with a NUL-terminated name (zeroed past
    // the name, which is shorter than IFNAMSIZ); the ioctl writes the
    // flags into its union.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(SysError::new("read a link's flags", Errno::last()));
    }
    // SAFETY: SIOCGIFFLAGS filled ifru_flags, the union member read here.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS reads the flags from the same struct.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(SysError::new("set a link up", Errno::last()));
    }
    Ok(())
}

/// A UDP socket on 0.0.0.0:`port` that only sends and receives through
/// link `name` (SO_BINDTODEVICE), broadcasts allowed: what a DHCP client
/// uses. Linux routes a send to 255.255.255.255 out of the bound link even
/// when it has no address yet, and delivers a broadcast answer to it, so
/// a client asking for broadcast answers (the BROADCAST flag) needs no
/// packet socket (AF_PACKET would mean building IP and UDP headers by
/// hand, and CAP_NET_RAW, for nothing more). SO_REUSEADDR: one client per
/// link, each bound to its own device, share the port.
pub fn udp_socket_on_link(name: &str, port: u16) -> Result<UdpSocket, SysError> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SysError::new("socket for DHCP", e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| SysError::new("SO_REUSEADDR", e))?;
    setsockopt(&fd, sockopt::Broadcast, &true).map_err(|e| SysError::new("SO_BROADCAST", e))?;
    setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(name))
        .map_err(|e| SysError::new("SO_BINDTODEVICE", e))?;
    let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    bind(fd.as_raw_fd(), &addr).map_err(|e| SysError::new("bind for DHCP", e))?;
    Ok(UdpSocket::from(fd))
}
