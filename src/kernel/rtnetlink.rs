//! Addresses and routes of the host's own links over rtnetlink, one
//! request and its acknowledgement at a time: what `ip address replace`,
//! `ip address del` and `ip route replace` send. Only the few messages the
//! host network helper needs (supervisor::hostnet), built by hand: each
//! is a header, a fixed struct and a few attributes.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use super::error::SysError;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
/// Who added a route, as `ip route` shows it ("proto dhcp", "proto static").
pub const RTPROT_STATIC: u8 = 4;
pub const RTPROT_DHCP: u8 = 16;
/// An address lifetime that never runs out.
pub const FOREVER: u32 = u32::MAX;

/// An address and prefix length on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddress {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A route through a link: to `dst/prefix` (0.0.0.0/0: the default),
/// via `gateway` or on the link itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub index: u32,
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub protocol: u8,
}

pub fn link_index(name: &str) -> Result<u32, SysError> {
    nix::net::if_::if_nametoindex(name).map_err(|e| SysError::new("if_nametoindex", e))
}

pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, SysError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| SysError::new("socket(NETLINK_ROUTE)", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| SysError::new("bind(NETLINK_ROUTE)", e))?;
        // The kernel answers at once; a timeout only guards against a
        // lost answer wedging the helper.
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(5, 0))
            .map_err(|e| SysError::new("SO_RCVTIMEO", e))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Adds the address or refreshes it (with `lifetime` seconds, so the
    /// kernel drops a DHCP lease's address itself if nobody renews it).
    pub fn replace_address(&mut self, a: &LinkAddress, lifetime: u32) -> Result<(), SysError> {
        let mut body = ifaddrmsg(a);
        let bytes = ip_bytes(&a.addr);
        attr(&mut body, IFA_LOCAL, &bytes);
        attr(&mut body, IFA_ADDRESS, &bytes);
        if let IpAddr::V4(v4) = a.addr
            && a.prefix < 31
        {
            let host_bits = u32::MAX.checked_shr(u32::from(a.prefix)).unwrap_or(0);
            let brd = u32::from(v4) | host_bits;
            attr(&mut body, IFA_BROADCAST, &brd.to_be_bytes());
        }
        let mut cache = Vec::with_capacity(16);
        for v in [lifetime, lifetime, 0, 0] {
            cache.extend_from_slice(&v.to_ne_bytes());
        }
        attr(&mut body, IFA_CACHEINFO, &cache);
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }

    pub fn delete_address(&mut self, a: &LinkAddress) -> Result<(), SysError> {
        let mut body = ifaddrmsg(a);
        attr(&mut body, IFA_LOCAL, &ip_bytes(&a.addr));
        self.request(RTM_DELADDR, 0, &body)
    }

    /// Adds the route or replaces the one to the same destination.
    pub fn replace_route(&mut self, r: &Route) -> Result<(), SysError> {
        let family = family_of(&r.dst);
        let scope = if r.gateway.is_some() {
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        };
        let mut body = vec![
            family,
            r.prefix,
            0,
            0,
            RT_TABLE_MAIN,
            r.protocol,
            scope,
            RTN_UNICAST,
        ];
        body.extend_from_slice(&0u32.to_ne_bytes());
        if r.prefix > 0 {
            attr(&mut body, RTA_DST, &ip_bytes(&r.dst));
        }
        if let Some(g) = &r.gateway {
            attr(&mut body, RTA_GATEWAY, &ip_bytes(g));
        }
        attr(&mut body, RTA_OIF, &r.index.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }

    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<(), SysError> {
        self.seq = self.seq.wrapping_add(1);
        let len = NLMSG_HDRLEN + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        sendto(
            self.fd.as_raw_fd(),
            &msg,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(|e| SysError::new("send to rtnetlink", e))?;
        self.ack()
    }

    /// Reads until the acknowledgement of the last request: its errno.
    fn ack(&self) -> Result<(), SysError> {
        let mut buf = [0u8; 8192];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(|e| SysError::new("receive from rtnetlink", e))?;
            if let Some(code) = find_ack(&buf[..n.min(buf.len())], self.seq) {
                return match code {
                    0 => Ok(()),
                    e => Err(SysError::new("rtnetlink request", Errno::from_raw(-e))),
                };
            }
        }
    }
}

/// The error code of the NLMSG_ERROR message for `seq` among the
/// messages in `buf` (0: success). Bounded by the lengths the messages
/// claim, never past `buf`.
fn find_ack(buf: &[u8], seq: u32) -> Option<i32> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let word = |o: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(
                buf.get(at + o..at + o + 4)?.try_into().ok()?,
            ))
        };
        let len = word(0)? as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if kind == NLMSG_ERROR && word(8)? == seq {
            return Some(word(16)? as i32);
        }
        if len < NLMSG_HDRLEN {
            return None;
        }
        at = at.checked_add((len + 3) & !3)?;
    }
    None
}

fn family_of(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ifaddrmsg(a: &LinkAddress) -> Vec<u8> {
    let mut body = vec![family_of(&a.addr), a.prefix, 0, RT_SCOPE_UNIVERSE];
    body.extend_from_slice(&a.index.to_ne_bytes());
    body
}

/// Appends an rtattr: length, type, data, padded to 4 bytes.
fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + ((4 - len % 4) % 4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_found_within_bounds() {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-17i32).to_ne_bytes());
        m.resize(36, 0);
        assert_eq!(find_ack(&m, 7), Some(-17));
        assert_eq!(find_ack(&m, 8), None);
        assert_eq!(find_ack(&m[..18], 7), None);
        let mut zero_len = m.clone();
        zero_len[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(find_ack(&zero_len, 8), None);
    }

    /// In a forked child with its own network namespace: the test harness
    /// is threaded, and the namespace must not leak into other tests.
    #[test]
    fn addresses_and_routes_in_a_private_network_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a network namespace");
            return;
        }
        // SAFETY: the child only runs the closure and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let ok = std::panic::catch_unwind(in_private_namespace).is_ok();
                // SAFETY: ends the child without unwinding into the harness.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    fn in_private_namespace() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        crate::kernel::net::bring_up_loopback().expect("lo up");
        let index = link_index("lo").expect("lo");
        let mut rtnl = Rtnl::open().expect("rtnetlink");
        let a = LinkAddress {
            index,
            addr: "10.77.0.1".parse().unwrap(),
            prefix: 24,
        };
        rtnl.replace_address(&a, 600).expect("add");
        rtnl.replace_address(&a, 600)
            .expect("replace is idempotent");
        let route = |dst: &str, prefix| Route {
            index,
            dst: dst.parse().unwrap(),
            prefix,
            gateway: None,
            protocol: RTPROT_STATIC,
        };
        rtnl.replace_route(&route("10.78.0.0", 16)).expect("route");
        rtnl.replace_route(&route("0.0.0.0", 0)).expect("default");
        let routes = std::fs::read_to_string("/proc/net/route").unwrap();
        assert!(routes.contains("lo\t00004E0A"), "{routes}");
        assert!(routes.contains("lo\t00000000"), "{routes}");
        assert!(
            crate::kernel::net_state::online(),
            "an address and a default route"
        );
        rtnl.delete_address(&a).expect("delete");
        let again = rtnl.delete_address(&a).expect_err("gone");
        assert_eq!(again.errno, Errno::EADDRNOTAVAIL);
    }

    #[test]
    fn attributes_are_padded() {
        let mut v = Vec::new();
        attr(&mut v, 1, &[1, 2, 3, 4, 5]);
        assert_eq!(v.len(), 12);
        assert_eq!(u16::from_ne_bytes([v[0], v[1]]), 9);
    }
}
