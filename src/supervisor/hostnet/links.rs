//! Which of the host's links berth configures, and getting one ready:
//! IPv6 router advertisements accepted (the kernel then does SLAAC by
//! itself), the link up, and its static addresses and routes.

use std::net::IpAddr;
use std::path::Path;

use crate::kernel::net::bring_up_link;
use crate::kernel::rtnetlink::{FOREVER, LinkAddress, RTPROT_STATIC, Route, Rtnl, link_index};
use crate::supervisor::spec::host_network::{Cidr, LinkSettings};

const SYS_NET: &str = "/sys/class/net";
/// ARPHRD_ETHER in /sys/class/net/NAME/type.
const ETHERNET: &str = "1";
/// More links than any device has; the scan stops there.
const MAX_LINKS: usize = 64;

/// Ethernet links backed by a device: not loopback, and not the bridges,
/// veths and tunnels berth's own container networks make (they have no
/// `device` link in sysfs). Sorted by name.
pub fn ethernet_links() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(SYS_NET)
        .into_iter()
        .flatten()
        .flatten()
        .take(1024)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            let dir = Path::new(SYS_NET).join(name);
            let kind = std::fs::read_to_string(dir.join("type")).unwrap_or_default();
            kind.trim() == ETHERNET && dir.join("device").exists()
        })
        .collect();
    out.sort();
    out.truncate(MAX_LINKS);
    out
}

pub fn exists(name: &str) -> bool {
    Path::new(SYS_NET).join(name).exists()
}

/// The link's hardware address ("52:54:00:12:34:56").
pub fn mac_of(name: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(Path::new(SYS_NET).join(name).join("address")).ok()?;
    parse_mac(text.trim())
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// SLAAC's sysctls, then the link up (the kernel sends its router
/// solicitation when the link comes up). accept_ra 2: advertisements are
/// taken even with forwarding on, which container networks may turn on.
/// A kernel without IPv6 has no such files: then only the link comes up.
pub fn prepare(link: &LinkSettings) -> Result<u32, String> {
    let conf = Path::new("/proc/sys/net/ipv6/conf").join(&link.name);
    if conf.exists() {
        let (accept_ra, autoconf) = if link.slaac { ("2", "1") } else { ("0", "0") };
        for (key, value) in [("accept_ra", accept_ra), ("autoconf", autoconf)] {
            if let Err(e) = std::fs::write(conf.join(key), value) {
                return Err(format!("{}: {e}", conf.join(key).display()));
            }
        }
    }
    bring_up_link(&link.name).map_err(|e| format!("{}: {e}", link.name))?;
    link_index(&link.name).map_err(|e| format!("{}: {e}", link.name))
}

/// The link's static addresses, then its routes and gateway (a route
/// needs its next hop on a link that is already addressed). The values
/// were checked when berth.json was read.
pub fn apply_static(rtnl: &mut Rtnl, index: u32, link: &LinkSettings) -> Result<(), String> {
    for a in link.addresses.iter().filter_map(|a| Cidr::parse(a)) {
        let addr = LinkAddress {
            index,
            addr: a.addr,
            prefix: a.prefix,
        };
        rtnl.replace_address(&addr, FOREVER)
            .map_err(|e| format!("{}: address {a}: {e}", link.name))?;
    }
    let mut routes: Vec<(Cidr, Option<IpAddr>)> = link
        .routes
        .iter()
        .filter_map(|r| {
            Some((
                Cidr::parse(&r.to)?,
                r.via.as_deref().and_then(|v| v.parse().ok()),
            ))
        })
        .collect();
    if let Some(g) = link
        .gateway
        .as_deref()
        .and_then(|g| g.parse::<IpAddr>().ok())
    {
        let any = match g {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        routes.push((
            Cidr {
                addr: any,
                prefix: 0,
            },
            Some(g),
        ));
    }
    for (to, via) in routes {
        let route = Route {
            index,
            dst: to.addr,
            prefix: to.prefix,
            gateway: via,
            protocol: RTPROT_STATIC,
        };
        rtnl.replace_route(&route)
            .map_err(|e| format!("{}: route to {to}: {e}", link.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("52:54:00:12:34:5f"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x5f])
        );
        for bad in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "5:54:00:12:34:56",
            "zz:54:00:12:34:56",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_is_not_an_ethernet_link() {
        assert!(!ethernet_links().iter().any(|l| l == "lo"));
    }
}
