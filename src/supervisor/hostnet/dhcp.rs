//! A DHCPv4 client for one link (RFC 2131): INIT (discover, offer,
//! request, ack), BOUND until T1, RENEWING (unicast to the server) until
//! T2, REBINDING (broadcast) until the lease ends; a NAK or the end of the
//! lease removes the address and starts over. The exchanges go through
//! `Wire`, so tests drive them against a fake server; `run` adds the
//! socket, the clock and the kernel (addresses, routes).

use std::io;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::dhcp_packet::{Lease, MessageType, Reply, Request, classful_prefix, parse_reply};
use super::{Note, log};
use crate::kernel::rtnetlink::{LinkAddress, RTPROT_DHCP, Route, Rtnl};

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
/// Retransmissions of a request: 2 s doubling to 16 s (RFC 2131 4.1
/// starts at 4 s; a device's boot should not wait that long for a lost
/// first packet).
const FIRST_WAIT: Duration = Duration::from_secs(2);
const MAX_WAIT: Duration = Duration::from_secs(16);
const TRIES: u32 = 4;

/// How a client sends and receives: a UDP socket bound to its link.
pub trait Wire {
    /// To the server, or to everyone (None).
    fn send(&mut self, packet: &[u8], to: Option<Ipv4Addr>) -> io::Result<()>;
    /// The next datagram before `deadline`; None when it passed.
    fn recv(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>>;
}

impl Wire for UdpSocket {
    fn send(&mut self, packet: &[u8], to: Option<Ipv4Addr>) -> io::Result<()> {
        let to = to.unwrap_or(Ipv4Addr::BROADCAST);
        self.send_to(packet, (to, SERVER_PORT)).map(drop)
    }

    fn recv(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        self.set_read_timeout(Some(left))?;
        let mut buf = vec![0u8; 1500];
        match self.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A lease as bound: what the link gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub server: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub ntp: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub lease: Lease,
}

impl Bound {
    fn from_ack(ack: &Reply, server: Ipv4Addr) -> Option<Bound> {
        Some(Bound {
            address: ack.yiaddr,
            prefix: ack.prefix.unwrap_or_else(|| classful_prefix(ack.yiaddr)),
            server: ack.server.unwrap_or(server),
            router: ack.router,
            dns: ack.dns.clone(),
            ntp: ack.ntp.clone(),
            domain: ack.domain.clone(),
            lease: ack.lease?,
        })
    }
}

pub enum Renewal {
    Ack(Bound),
    Nak,
    NoAnswer,
}

pub struct Client<W: Wire> {
    pub wire: W,
    pub mac: [u8; 6],
    pub hostname: Option<String>,
    pub xid: u32,
}

impl<W: Wire> Client<W> {
    fn request(&self, kind: MessageType) -> Request {
        Request {
            kind,
            xid: self.xid,
            mac: self.mac,
            secs: 0,
            ciaddr: None,
            requested: None,
            server: None,
            hostname: self.hostname.clone(),
        }
    }

    /// Sends `req` (to `to`, or broadcast) and retransmits until an answer
    /// of one of `kinds` arrives or the tries run out.
    fn exchange(
        &mut self,
        req: &Request,
        to: Option<Ipv4Addr>,
        kinds: &[MessageType],
    ) -> io::Result<Option<Reply>> {
        let mut wait = FIRST_WAIT;
        for _ in 0..TRIES {
            self.wire.send(&req.encode(), to)?;
            let deadline = Instant::now() + wait;
            while let Some(packet) = self.wire.recv(deadline)? {
                if let Some(r) = parse_reply(&packet, self.xid, &self.mac)
                    && kinds.contains(&r.kind)
                {
                    return Ok(Some(r));
                }
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
        Ok(None)
    }

    /// INIT to BOUND: discover, take the first offer, request it. None:
    /// no server answered, or it refused.
    pub fn obtain(&mut self) -> io::Result<Option<Bound>> {
        let discover = self.request(MessageType::Discover);
        let Some(offer) = self.exchange(&discover, None, &[MessageType::Offer])? else {
            return Ok(None);
        };
        let Some(server) = offer.server else {
            return Ok(None);
        };
        let mut req = self.request(MessageType::Request);
        req.requested = Some(offer.yiaddr);
        req.server = Some(server);
        let answer = self.exchange(&req, None, &[MessageType::Ack, MessageType::Nak])?;
        Ok(answer
            .filter(|a| a.kind == MessageType::Ack)
            .and_then(|a| Bound::from_ack(&a, server)))
    }

    /// RENEWING (to the server) or REBINDING (broadcast): the lease again.
    pub fn renew(&mut self, bound: &Bound, broadcast: bool) -> io::Result<Renewal> {
        let mut req = self.request(MessageType::Request);
        req.ciaddr = Some(bound.address);
        let to = (!broadcast).then_some(bound.server);
        let kinds = [MessageType::Ack, MessageType::Nak];
        Ok(match self.exchange(&req, to, &kinds)? {
            Some(a) if a.kind == MessageType::Nak => Renewal::Nak,
            Some(a) => match Bound::from_ack(&a, bound.server) {
                Some(b) => Renewal::Ack(b),
                None => Renewal::NoAnswer,
            },
            None => Renewal::NoAnswer,
        })
    }
}

/// A fresh transaction id: the kernel's randomness, else the clock.
pub fn new_xid() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == 4 {
        return u32::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ std::process::id()
}

/// The link's client, forever: obtains a lease, keeps it, starts over
/// when it is lost. Errors of the socket or the kernel are logged and
/// retried after a pause.
pub fn run(link: String, index: u32, mac: [u8; 6], hostname: Option<String>, notes: Sender<Note>) {
    let mut pause = Duration::from_secs(1);
    loop {
        match serve(&link, index, mac, hostname.clone(), &notes) {
            Ok(()) => pause = Duration::from_secs(1),
            Err(e) => {
                log(format_args!(
                    "{link}: DHCP: {e}; again in {} s",
                    pause.as_secs()
                ));
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// One lease's life on the link: returns when it is lost (Ok) or on an
/// error of the socket or the kernel.
fn serve(
    link: &str,
    index: u32,
    mac: [u8; 6],
    hostname: Option<String>,
    notes: &Sender<Note>,
) -> Result<(), String> {
    let socket =
        crate::kernel::net::udp_socket_on_link(link, CLIENT_PORT).map_err(|e| e.to_string())?;
    let mut rtnl = Rtnl::open().map_err(|e| e.to_string())?;
    let mut client = Client {
        wire: socket,
        mac,
        hostname,
        xid: new_xid(),
    };
    let mut bound = loop {
        if let Some(b) = client.obtain().map_err(|e| e.to_string())? {
            break b;
        }
        client.xid = new_xid();
    };
    loop {
        apply(&mut rtnl, index, &bound)?;
        let _ = notes.send(Note::Lease {
            link: link.to_string(),
            bound: bound.clone(),
        });
        match keep(&mut client, &bound).map_err(|e| e.to_string())? {
            Some(next) => {
                if (next.address, next.prefix) != (bound.address, bound.prefix) {
                    let old = LinkAddress {
                        index,
                        addr: IpAddr::V4(bound.address),
                        prefix: bound.prefix,
                    };
                    let _ = rtnl.delete_address(&old);
                }
                bound = next;
            }
            None => {
                let addr = LinkAddress {
                    index,
                    addr: IpAddr::V4(bound.address),
                    prefix: bound.prefix,
                };
                let _ = rtnl.delete_address(&addr);
                let _ = notes.send(Note::Lost {
                    link: link.to_string(),
                });
                return Ok(());
            }
        }
    }
}

/// BOUND, RENEWING, REBINDING: the renewed lease, or None once it is
/// refused or runs out.
fn keep<W: Wire>(client: &mut Client<W>, bound: &Bound) -> io::Result<Option<Bound>> {
    let start = Instant::now();
    let at = |d: Duration| start.checked_add(d).unwrap_or(start);
    std::thread::sleep(bound.lease.renew);
    while Instant::now() < at(bound.lease.total) {
        client.xid = new_xid();
        let broadcast = Instant::now() >= at(bound.lease.rebind);
        match client.renew(bound, broadcast)? {
            Renewal::Ack(b) => return Ok(Some(b)),
            Renewal::Nak => return Ok(None),
            Renewal::NoAnswer => {
                // RFC 2131 4.4.5: half the time left, at least a minute.
                let next = if broadcast {
                    bound.lease.total
                } else {
                    bound.lease.rebind
                };
                let left = at(next).saturating_duration_since(Instant::now());
                std::thread::sleep((left / 2).max(Duration::from_secs(60)).min(left));
            }
        }
    }
    Ok(None)
}

/// The lease's address (with the lease as its lifetime: the kernel drops
/// it if this client dies and nobody renews) and default route.
fn apply(rtnl: &mut Rtnl, index: u32, b: &Bound) -> Result<(), String> {
    let addr = LinkAddress {
        index,
        addr: IpAddr::V4(b.address),
        prefix: b.prefix,
    };
    let lifetime = u32::try_from(b.lease.total.as_secs()).unwrap_or(u32::MAX - 1);
    rtnl.replace_address(&addr, lifetime)
        .map_err(|e| format!("address {}/{}: {e}", b.address, b.prefix))?;
    if let Some(router) = b.router {
        let route = Route {
            index,
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
            gateway: Some(IpAddr::V4(router)),
            protocol: RTPROT_DHCP,
        };
        rtnl.replace_route(&route)
            .map_err(|e| format!("default route via {router}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "dhcp_tests.rs"]
mod tests;
