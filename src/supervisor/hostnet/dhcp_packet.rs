//! DHCPv4 messages (RFC 2131, options RFC 2132): the requests a client
//! sends, and the parse of a server's answer. The answer is outside input
//! from anyone on the link: every length is checked against the packet,
//! lists are capped, times are clamped, and nothing panics (fuzzed:
//! fuzz/fuzz_targets/dhcp_packet.rs).

use std::net::Ipv4Addr;
use std::time::Duration;

const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
/// op .. file: the fixed part before the magic cookie.
const FIXED_LEN: usize = 236;
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Asks the server to broadcast its answer: a link without an address
/// cannot receive a unicast one (kernel::net::udp_socket_on_link).
const FLAG_BROADCAST: u16 = 0x8000;

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOSTNAME: u8 = 12;
const OPT_DOMAIN: u8 = 15;
const OPT_NTP: u8 = 42;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE: u8 = 51;
const OPT_MSG_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMS: u8 = 55;
const OPT_MAX_SIZE: u8 = 57;
const OPT_T1: u8 = 58;
const OPT_T2: u8 = 59;
const OPT_END: u8 = 255;

/// Servers kept from one list option (DNS, NTP): more is noise.
pub const MAX_SERVERS: usize = 4;
/// The shortest lease honoured: a shorter one would make renewals a busy
/// loop; the longest: a year, so every deadline fits an `Instant`.
pub const MIN_LEASE: Duration = Duration::from_secs(30);
pub const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<MessageType> {
        use MessageType::*;
        [Discover, Offer, Request, Decline, Ack, Nak, Release]
            .into_iter()
            .find(|t| *t as u8 == v)
    }
}

/// What a client asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: MessageType,
    pub xid: u32,
    pub mac: [u8; 6],
    /// Seconds since the client began (the `secs` field).
    pub secs: u16,
    /// The client's current address (renewing, rebinding).
    pub ciaddr: Option<Ipv4Addr>,
    /// The offered address it selects (option 50).
    pub requested: Option<Ipv4Addr>,
    /// The server it selects (option 54).
    pub server: Option<Ipv4Addr>,
    pub hostname: Option<String>,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![0u8; FIXED_LEN];
        p[0] = OP_REQUEST;
        p[1] = HTYPE_ETHERNET;
        p[2] = 6;
        p[4..8].copy_from_slice(&self.xid.to_be_bytes());
        p[8..10].copy_from_slice(&self.secs.to_be_bytes());
        // A client that has its address takes unicast answers.
        if self.ciaddr.is_none() {
            p[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
        }
        if let Some(c) = self.ciaddr {
            p[12..16].copy_from_slice(&c.octets());
        }
        p[28..34].copy_from_slice(&self.mac);
        p.extend_from_slice(&COOKIE);
        p.extend_from_slice(&[OPT_MSG_TYPE, 1, self.kind as u8]);
        for (code, ip) in [
            (OPT_REQUESTED_IP, self.requested),
            (OPT_SERVER_ID, self.server),
        ] {
            if let Some(ip) = ip {
                p.extend_from_slice(&[code, 4]);
                p.extend_from_slice(&ip.octets());
            }
        }
        if let Some(h) = self.hostname.as_deref().filter(|h| h.len() <= 63) {
            p.extend_from_slice(&[OPT_HOSTNAME, h.len() as u8]);
            p.extend_from_slice(h.as_bytes());
        }
        p.extend_from_slice(&[OPT_MAX_SIZE, 2, 0x05, 0xdc]); // 1500
        let params = [
            OPT_SUBNET_MASK,
            OPT_ROUTER,
            OPT_DNS,
            OPT_DOMAIN,
            OPT_NTP,
            OPT_LEASE,
            OPT_T1,
            OPT_T2,
        ];
        p.extend_from_slice(&[OPT_PARAMS, params.len() as u8]);
        p.extend_from_slice(&params);
        p.push(OPT_END);
        // Some old servers drop a BOOTP message under 300 bytes.
        if p.len() < 300 {
            p.resize(300, OPT_PAD);
        }
        p
    }
}

/// A server's answer, as far as berth uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    pub yiaddr: Ipv4Addr,
    pub server: Option<Ipv4Addr>,
    pub prefix: Option<u8>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub ntp: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Lease, renewal (T1) and rebinding (T2) times, clamped to
    /// `MIN_LEASE`..`MAX_LEASE` and ordered T1 <= T2 <= lease. None:
    /// the server gave no lease time (a NAK, say).
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub total: Duration,
    pub renew: Duration,
    pub rebind: Duration,
}

/// The options of a reply, read field by field; any length past the end
/// stops the walk (what came before stays).
#[derive(Default)]
struct Options {
    kind: Option<u8>,
    server: Option<Ipv4Addr>,
    mask: Option<Ipv4Addr>,
    router: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
    ntp: Vec<Ipv4Addr>,
    domain: Option<String>,
    lease: Option<u32>,
    t1: Option<u32>,
    t2: Option<u32>,
}

/// Parses a server's answer to transaction `xid` for the link with `mac`;
/// None for anything else or malformed.
pub fn parse_reply(packet: &[u8], xid: u32, mac: &[u8; 6]) -> Option<Reply> {
    let reply = parse_any_reply(packet)?;
    (reply.0.xid == xid && reply.1 == *mac).then_some(reply.0)
}

/// Parses any well-formed answer, and the hardware address it is for.
pub fn parse_any_reply(packet: &[u8]) -> Option<(Reply, [u8; 6])> {
    if packet.len() < FIXED_LEN + COOKIE.len() || packet[0] != OP_REPLY {
        return None;
    }
    if packet[1] != HTYPE_ETHERNET || packet[2] != 6 || packet[FIXED_LEN..FIXED_LEN + 4] != COOKIE {
        return None;
    }
    let xid = u32::from_be_bytes(packet[4..8].try_into().ok()?);
    let yiaddr = Ipv4Addr::from(<[u8; 4]>::try_from(&packet[16..20]).ok()?);
    let mac: [u8; 6] = packet[28..34].try_into().ok()?;
    let o = read_options(&packet[FIXED_LEN + 4..]);
    let kind = MessageType::from_u8(o.kind?)?;
    let reply = Reply {
        kind,
        xid,
        yiaddr,
        server: o.server,
        prefix: o.mask.and_then(mask_prefix).filter(|p| *p > 0),
        router: o.router,
        dns: o.dns,
        ntp: o.ntp,
        domain: o.domain,
        lease: o.lease.map(|l| lease_times(l, o.t1, o.t2)),
    };
    Some((reply, mac))
}

fn read_options(mut rest: &[u8]) -> Options {
    let mut o = Options::default();
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            OPT_PAD => {
                rest = tail;
                continue;
            }
            OPT_END => break,
            _ => {}
        }
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let Some(data) = tail.get(..usize::from(len)) else {
            break;
        };
        rest = &tail[usize::from(len)..];
        apply_option(&mut o, code, data);
    }
    o
}

fn apply_option(o: &mut Options, code: u8, data: &[u8]) {
    let one_ip = || <[u8; 4]>::try_from(data).ok().map(Ipv4Addr::from);
    let first_ip = || {
        data.get(..4)
            .and_then(|d| <[u8; 4]>::try_from(d).ok())
            .map(Ipv4Addr::from)
    };
    let secs = || <[u8; 4]>::try_from(data).ok().map(u32::from_be_bytes);
    let ips = |list: &mut Vec<Ipv4Addr>| {
        for chunk in data.chunks_exact(4) {
            let ip = Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]);
            if list.len() < MAX_SERVERS && !ip.is_unspecified() && !ip.is_broadcast() {
                list.push(ip);
            }
        }
    };
    match code {
        OPT_MSG_TYPE if data.len() == 1 => o.kind = Some(data[0]),
        OPT_SERVER_ID => o.server = one_ip(),
        OPT_SUBNET_MASK => o.mask = one_ip(),
        OPT_ROUTER => o.router = first_ip().filter(|ip| !ip.is_unspecified()),
        OPT_DNS => ips(&mut o.dns),
        OPT_NTP => ips(&mut o.ntp),
        OPT_DOMAIN => {
            // Some servers end the name with a NUL.
            let text = std::str::from_utf8(data)
                .ok()
                .map(|t| t.trim_end_matches('\0'));
            o.domain = text
                .filter(|t| crate::supervisor::spec::host_network::valid_domain(t))
                .map(str::to_string);
        }
        OPT_LEASE => o.lease = secs(),
        OPT_T1 => o.t1 = secs(),
        OPT_T2 => o.t2 = secs(),
        _ => {}
    }
}

/// A netmask's prefix length; None unless its ones are contiguous.
fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8; both are
/// kept inside the lease and in order whatever the server says, and
/// 0xffffffff ("infinite") becomes `MAX_LEASE`.
fn lease_times(lease: u32, t1: Option<u32>, t2: Option<u32>) -> Lease {
    let total = Duration::from_secs(u64::from(lease)).clamp(MIN_LEASE, MAX_LEASE);
    let t2 = t2
        .map(|s| Duration::from_secs(u64::from(s)))
        .filter(|d| *d <= total && !d.is_zero())
        .unwrap_or(total * 7 / 8);
    let t1 = t1
        .map(|s| Duration::from_secs(u64::from(s)))
        .filter(|d| *d <= t2 && !d.is_zero())
        .unwrap_or(total / 2)
        .min(t2);
    Lease {
        total,
        renew: t1,
        rebind: t2,
    }
}

/// A guess for a server that sends no subnet mask: the old class's.
pub fn classful_prefix(ip: Ipv4Addr) -> u8 {
    match ip.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

#[cfg(test)]
#[path = "dhcp_packet_tests.rs"]
mod tests;
