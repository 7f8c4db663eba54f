//! berth.json's `host_network`: the machine's own links, name service and
//! clock when berth is its init (docs/config.md, docs/pid1.md). Absent:
//! berth configures none of them. Every value is checked here, so the
//! helper that applies them (supervisor::hostnet) only meets valid ones.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::bounds::{LIST_ENTRIES, NTP_POLL, TEXT_BYTES};
use crate::supervisor::spec::service::Seconds;
use crate::supervisor::spec::validate::{Problem, problem};
use crate::supervisor::spec::validate_bounds::BoundsCheck;

/// The kernel's IFNAMSIZ less the terminating NUL.
const MAX_LINK_NAME: usize = 15;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostNetworkSettings {
    /// The links to bring up; none listed: every Ethernet link of a
    /// device (not bridges or veths, which berth's own networks make),
    /// with DHCPv4 and SLAAC.
    #[serde(default)]
    pub links: Option<Vec<LinkSettings>>,
    /// Name servers for /etc/resolv.conf instead of DHCP's.
    #[serde(default)]
    pub dns: Vec<String>,
    /// Search domains for /etc/resolv.conf (added to DHCP's domain).
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub ntp: NtpSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// The kernel's name of the link ("eth0", "enp1s0").
    pub name: String,
    /// DHCPv4 on this link; default: when it has no static address.
    #[serde(default)]
    pub dhcp: Option<bool>,
    /// Accept router advertisements (the kernel's SLAAC).
    #[serde(default = "yes")]
    pub slaac: bool,
    /// Static addresses, "ADDRESS/PREFIX".
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The default route's next hop (static).
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
}

impl LinkSettings {
    pub fn named(name: &str) -> LinkSettings {
        LinkSettings {
            name: name.to_string(),
            dhcp: None,
            slaac: true,
            addresses: Vec::new(),
            gateway: None,
            routes: Vec::new(),
        }
    }

    pub fn uses_dhcp(&self) -> bool {
        self.dhcp.unwrap_or(self.addresses.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// "ADDRESS/PREFIX".
    pub to: String,
    /// The next hop; none: the destination is on the link.
    #[serde(default)]
    pub via: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtpSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// "HOST" or "HOST:PORT" (port 123 by default), asked before DHCP's
    /// (option 42).
    #[serde(default)]
    pub servers: Vec<String>,
    /// The first interval between polls once synchronized; it doubles up
    /// to `poll_max` while the clock stays close.
    #[serde(default = "default_poll_min")]
    pub poll_min: Seconds,
    #[serde(default = "default_poll_max")]
    pub poll_max: Seconds,
}

impl Default for NtpSettings {
    fn default() -> Self {
        NtpSettings {
            enabled: true,
            servers: Vec::new(),
            poll_min: default_poll_min(),
            poll_max: default_poll_max(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_poll_min() -> Seconds {
    Seconds(Duration::from_secs(64))
}
fn default_poll_max() -> Seconds {
    Seconds(Duration::from_secs(1024))
}

/// An address with its prefix length ("10.0.2.15/24").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An NTP server as written: "HOST", "HOST:PORT", "IP", "[IPV6]:PORT".
/// Returns the host (resolved later) and port.
pub fn parse_server(text: &str) -> Option<(String, u16)> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip.to_string(), 123));
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return (sa.port() != 0).then(|| (sa.ip().to_string(), sa.port()));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => (text, 123),
    };
    valid_domain(host).then(|| (host.to_string(), port))
}

/// RFC 1123 names: labels of letters, digits and '-', at most 253 bytes.
pub fn valid_domain(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// The sizes of every list and string, then what each value means.
pub fn check_host_network(h: &HostNetworkSettings, c: &mut BoundsCheck<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut hn = c.at("host_network");
    let dns_ok = hn.count("dns", &LIST_ENTRIES, h.dns.len());
    let search_ok = hn.count("search", &LIST_ENTRIES, h.search.len());
    for (i, d) in h.dns.iter().enumerate().filter(|_| dns_ok) {
        if d.parse::<IpAddr>().is_err() {
            out.push(problem(
                &["host_network", "dns", &i.to_string()],
                "expected an IP address",
            ));
        }
    }
    for (i, s) in h.search.iter().enumerate().filter(|_| search_ok) {
        if !valid_domain(s) {
            out.push(problem(
                &["host_network", "search", &i.to_string()],
                "expected a domain name",
            ));
        }
    }
    let mut ntp = hn.at("ntp");
    ntp.value("poll_min", &NTP_POLL, h.ntp.poll_min.0);
    ntp.value("poll_max", &NTP_POLL, h.ntp.poll_max.0);
    if h.ntp.poll_min.0 > h.ntp.poll_max.0 {
        out.push(problem(
            &["host_network", "ntp", "poll_min"],
            "must not exceed poll_max",
        ));
    }
    if ntp.count("servers", &LIST_ENTRIES, h.ntp.servers.len()) {
        for (i, s) in h.ntp.servers.iter().enumerate() {
            if s.len() > TEXT_BYTES.max || parse_server(s).is_none() {
                out.push(problem(
                    &["host_network", "ntp", "servers", &i.to_string()],
                    "expected HOST or HOST:PORT",
                ));
            }
        }
    }
    if let Some(links) = &h.links
        && hn.count("links", &LIST_ENTRIES, links.len())
    {
        for (i, l) in links.iter().enumerate() {
            out.extend(check_link(l, &i.to_string()));
            if links[..i].iter().any(|o| o.name == l.name) {
                out.push(problem(
                    &["host_network", "links", &i.to_string(), "name"],
                    format!("link {:?} is listed twice", l.name),
                ));
            }
        }
    }
    out
}

fn check_link(l: &LinkSettings, i: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = |rest: &[&str], message: &str| {
        let mut path = vec!["host_network", "links", i];
        path.extend_from_slice(rest);
        problem(&path, message)
    };
    let bad_name = l.name.is_empty()
        || l.name.len() > MAX_LINK_NAME
        || l.name == "."
        || l.name == ".."
        || l.name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b <= b' ' || b >= 0x7f);
    if bad_name {
        out.push(at(&["name"], "expected a link name of 1-15 bytes"));
    }
    for (field, n) in [("addresses", l.addresses.len()), ("routes", l.routes.len())] {
        if n > LIST_ENTRIES.max {
            let message = format!("too many entries: at most {}", LIST_ENTRIES.max);
            out.push(at(&[field], &message));
            return out;
        }
    }
    for (j, a) in l.addresses.iter().enumerate() {
        if Cidr::parse(a).is_none() {
            out.push(at(
                &["addresses", &j.to_string()],
                "expected ADDRESS/PREFIX",
            ));
        }
    }
    if let Some(g) = &l.gateway
        && g.parse::<IpAddr>().is_err()
    {
        out.push(at(&["gateway"], "expected an IP address"));
    }
    for (j, r) in l.routes.iter().enumerate() {
        let j = j.to_string();
        if Cidr::parse(&r.to).is_none() {
            out.push(at(&["routes", &j, "to"], "expected ADDRESS/PREFIX"));
        } else if r.via.as_ref().is_some_and(|v| v.parse::<IpAddr>().is_err()) {
            out.push(at(&["routes", &j, "via"], "expected an IP address"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::spec::settings::parse_settings;
    use std::path::Path;

    fn errors(text: &str) -> Vec<String> {
        parse_settings(Path::new("berth.json"), text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_and_values() {
        let s = parse_settings(Path::new("berth.json"), r#"{"host_network": {}}"#).unwrap();
        let h = s.host_network.unwrap();
        assert!(h.links.is_none() && h.ntp.enabled);
        assert_eq!(h.ntp.poll_min.0, Duration::from_secs(64));
        assert!(LinkSettings::named("eth0").uses_dhcp());
        assert_eq!(
            Cidr::parse("10.0.2.15/24").map(|c| c.to_string()),
            Some("10.0.2.15/24".into())
        );
        for bad in [
            "10.0.2.15",
            "10.0.2.15/33",
            "fe80::1/129",
            "x/1",
            "1.2.3.4/-1",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
        assert_eq!(
            parse_server("pool.ntp.org"),
            Some(("pool.ntp.org".into(), 123))
        );
        assert_eq!(
            parse_server("10.9.0.1:1123"),
            Some(("10.9.0.1".into(), 1123))
        );
        assert_eq!(parse_server("[::1]:5"), Some(("::1".into(), 5)));
        for bad in ["", "a..b", "host:0", "host:x", "-a.b", "a b"] {
            assert_eq!(parse_server(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = errors(
            r#"{"host_network": {"dns": ["x"], "search": ["a..b"],
                "ntp": {"servers": ["a:0"], "poll_min": 100, "poll_max": 10},
                "links": [{"name": "eth0/x", "addresses": ["1.2.3.4"], "gateway": "g",
                           "routes": [{"to": "10.0.0.0/8", "via": "v"}]},
                          {"name": "eth0/x"}]}}"#,
        );
        for want in [
            "host_network.dns.0: expected an IP address",
            "host_network.search.0: expected a domain name",
            "host_network.ntp.servers.0: expected HOST or HOST:PORT",
            "host_network.ntp.poll_min: must not exceed poll_max",
            "host_network.links.0.name: expected a link name",
            "host_network.links.0.addresses.0: expected ADDRESS/PREFIX",
            "host_network.links.0.gateway: expected an IP address",
            "host_network.links.0.routes.0.via: expected an IP address",
            "host_network.links.1.name: link \"eth0/x\" is listed twice",
        ] {
            assert!(e.iter().any(|x| x.contains(want)), "{want}: {e:?}");
        }
    }
}
