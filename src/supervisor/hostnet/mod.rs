//! The machine's own network, name service and clock when berth is its
//! init (berth.json `host_network`, docs/config.md). All of it runs in a
//! helper process, `berth _hostnet` (cli/hostnet_cmd.rs), which the daemon
//! starts, restarts when it dies (ops/hostnet.rs) and never waits on: a
//! thread per DHCP link and one SNTP thread report to this main thread,
//! which writes /etc/resolv.conf and prints `network.up` and
//! `clock.synchronized` report lines on stderr; the daemon journals them
//! (it stays the journal's one writer).

pub mod dhcp;
pub mod dhcp_packet;
pub mod links;
pub mod ntp;
pub mod resolv;
pub mod sntp_packet;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use serde_json::{Value, json};

use crate::kernel::rtnetlink::Rtnl;
use crate::supervisor::events::journal::kinds;
use crate::supervisor::spec::host_network::{HostNetworkSettings, LinkSettings, parse_server};
use dhcp::Bound;

/// The hidden subcommand that runs the helper (cli/hostnet_cmd.rs).
pub const HOSTNET_COMMAND: &str = "_hostnet";
/// Prefix of every line the helper writes to stderr.
pub const LOG_PREFIX: &str = "berth-hostnet: ";
/// After LOG_PREFIX: `event KIND {json}`, a line the daemon journals.
const REPORT_WORD: &str = "event ";
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How often the links are looked at again (a USB adapter plugged in, a
/// driver loaded late).
const SCAN_INTERVAL: Duration = Duration::from_secs(3);

/// What the link and clock threads tell the main thread.
#[derive(Debug)]
pub enum Note {
    Lease {
        link: String,
        bound: Bound,
    },
    Lost {
        link: String,
    },
    Synced {
        server: String,
        offset_ns: i128,
        delay_ns: i128,
        stratum: u8,
        stepped: bool,
    },
}

pub fn log(message: std::fmt::Arguments<'_>) {
    eprintln!("{LOG_PREFIX}{message}");
}

fn report(kind: &str, data: &Value) {
    eprintln!("{LOG_PREFIX}{REPORT_WORD}{kind} {data}");
}

/// A report line from the helper: the two kinds it may send, and data.
pub fn parse_report(line: &str) -> Option<(&'static str, Value)> {
    let rest = line.strip_prefix(LOG_PREFIX)?.strip_prefix(REPORT_WORD)?;
    let (kind, data) = rest.split_once(' ')?;
    let kind = [kinds::NETWORK_UP, kinds::CLOCK_SYNCHRONIZED]
        .into_iter()
        .find(|k| *k == kind)?;
    Some((kind, serde_json::from_str(data).ok()?))
}

/// The main thread's state.
struct Host<'a> {
    settings: &'a HostNetworkSettings,
    started: BTreeSet<String>,
    missing_noted: BTreeSet<String>,
    leases: BTreeMap<String, Bound>,
    notes: Sender<Note>,
    ntp: Option<Sender<Vec<IpAddr>>>,
}

/// Runs until the process is killed; returns only on a setup error.
pub fn run_hostnet(settings: &HostNetworkSettings) -> Result<(), String> {
    let (notes, inbox) = mpsc::channel();
    let mut host = Host {
        settings,
        started: BTreeSet::new(),
        missing_noted: BTreeSet::new(),
        leases: BTreeMap::new(),
        notes: notes.clone(),
        ntp: None,
    };
    if settings.ntp.enabled {
        host.ntp = Some(start_ntp(settings, notes)?);
    }
    let mut rtnl = Rtnl::open().map_err(|e| e.to_string())?;
    host.write_resolv_conf();
    loop {
        host.start_links(&mut rtnl);
        match inbox.recv_timeout(SCAN_INTERVAL) {
            Ok(note) => host.on_note(note),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("every thread ended".into()),
        }
    }
}

fn start_ntp(s: &HostNetworkSettings, notes: Sender<Note>) -> Result<Sender<Vec<IpAddr>>, String> {
    let cfg = ntp::NtpConfig {
        servers: s
            .ntp
            .servers
            .iter()
            .filter_map(|t| parse_server(t))
            .collect(),
        poll_min: s.ntp.poll_min.0,
        poll_max: s.ntp.poll_max.0,
    };
    let (tx, rx): (Sender<Vec<IpAddr>>, Receiver<Vec<IpAddr>>) = mpsc::channel();
    std::thread::Builder::new()
        .name("ntp".into())
        .spawn(move || ntp::run(cfg, rx, notes))
        .map_err(|e| format!("start the NTP thread: {e}"))?;
    Ok(tx)
}

impl Host<'_> {
    fn wanted_links(&self) -> Vec<LinkSettings> {
        match &self.settings.links {
            Some(list) => list.clone(),
            None => links::ethernet_links()
                .iter()
                .map(|n| LinkSettings::named(n))
                .collect(),
        }
    }

    /// Brings up each wanted link not yet started: static addresses at
    /// once, DHCP in a thread of its own.
    fn start_links(&mut self, rtnl: &mut Rtnl) {
        for link in self.wanted_links() {
            if self.started.contains(&link.name) {
                continue;
            }
            if !links::exists(&link.name) {
                if self.missing_noted.insert(link.name.clone()) {
                    log(format_args!(
                        "{}: waiting for the link to appear",
                        link.name
                    ));
                }
                continue;
            }
            match self.start_link(rtnl, &link) {
                Ok(()) => {
                    self.started.insert(link.name.clone());
                }
                Err(e) => log(format_args!("{e}; trying again")),
            }
        }
    }

    fn start_link(&mut self, rtnl: &mut Rtnl, link: &LinkSettings) -> Result<(), String> {
        let index = links::prepare(link)?;
        links::apply_static(rtnl, index, link)?;
        if let Some(first) = link.addresses.first() {
            report(
                kinds::NETWORK_UP,
                &json!({"link": link.name, "address": first, "addresses": link.addresses,
                        "gateway": link.gateway, "dns": self.settings.dns, "source": "static"}),
            );
        }
        if link.uses_dhcp() {
            let mac = links::mac_of(&link.name)
                .ok_or_else(|| format!("{}: no MAC address", link.name))?;
            let (name, notes, hostname) = (link.name.clone(), self.notes.clone(), dhcp_hostname());
            std::thread::Builder::new()
                .name(format!("dhcp-{name}"))
                .spawn(move || dhcp::run(name, index, mac, hostname, notes))
                .map_err(|e| format!("{}: start the DHCP thread: {e}", link.name))?;
        }
        log(format_args!(
            "{}: up{}{}",
            link.name,
            if link.uses_dhcp() { ", DHCP" } else { "" },
            if link.slaac { ", SLAAC" } else { "" }
        ));
        Ok(())
    }

    fn on_note(&mut self, note: Note) {
        match note {
            Note::Lease { link, bound } => {
                if self
                    .leases
                    .get(&link)
                    .is_some_and(|old| same_config(old, &bound))
                {
                    self.leases.insert(link, bound);
                    return;
                }
                report(kinds::NETWORK_UP, &lease_data(&link, &bound));
                self.leases.insert(link, bound);
                self.lease_changed();
            }
            Note::Lost { link } => {
                log(format_args!("{link}: the DHCP lease ended; asking again"));
                self.leases.remove(&link);
                self.lease_changed();
            }
            Note::Synced {
                server,
                offset_ns,
                delay_ns,
                stratum,
                stepped,
            } => report(
                kinds::CLOCK_SYNCHRONIZED,
                &json!({"server": server, "offset": offset_ns as f64 / 1e9,
                        "delay": delay_ns as f64 / 1e9, "stratum": stratum, "stepped": stepped}),
            ),
        }
    }

    /// resolv.conf and the NTP thread's servers follow the leases.
    fn lease_changed(&mut self) {
        self.write_resolv_conf();
        let servers: Vec<IpAddr> = self
            .leases
            .values()
            .flat_map(|b| b.ntp.iter().map(|ip| IpAddr::V4(*ip)))
            .collect();
        if let Some(ntp) = &self.ntp {
            let _ = ntp.send(servers);
        }
    }

    fn write_resolv_conf(&self) {
        let s = self.settings;
        let servers: Vec<IpAddr> = if s.dns.is_empty() {
            self.leases
                .values()
                .flat_map(|b| b.dns.iter().map(|ip| IpAddr::V4(*ip)))
                .collect()
        } else {
            s.dns.iter().filter_map(|d| d.parse().ok()).collect()
        };
        if servers.is_empty() {
            return;
        }
        let mut search = s.search.clone();
        search.extend(self.leases.values().filter_map(|b| b.domain.clone()));
        match resolv::write_if_changed(Path::new(RESOLV_CONF), &resolv::render(&servers, &search)) {
            Ok(true) => log(format_args!("{RESOLV_CONF} written")),
            Ok(false) => {}
            Err(e) => log(format_args!("{RESOLV_CONF}: {e}")),
        }
    }
}

/// Whether a renewed lease changes nothing the link or resolv.conf use.
fn same_config(a: &Bound, b: &Bound) -> bool {
    (a.address, a.prefix, a.router, &a.dns, &a.ntp, &a.domain)
        == (b.address, b.prefix, b.router, &b.dns, &b.ntp, &b.domain)
}

fn lease_data(link: &str, b: &Bound) -> Value {
    json!({
        "link": link,
        "address": format!("{}/{}", b.address, b.prefix),
        "gateway": b.router.map(|r| r.to_string()),
        "dns": b.dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ntp": b.ntp.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "domain": b.domain,
        "lease_secs": b.lease.total.as_secs(),
        "source": "dhcp",
    })
}

/// The kernel's hostname (berth.json's `hostname`), sent in DHCP
/// requests so the server may register it; none while it is unset.
fn dhcp_hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    let ok = crate::supervisor::spec::host_network::valid_domain(&name);
    (ok && name != "(none)" && name != "localhost").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_reports_pass() {
        let line = format!("{LOG_PREFIX}event network.up {{\"link\":\"eth0\"}}");
        assert_eq!(
            parse_report(&line),
            Some((kinds::NETWORK_UP, json!({"link": "eth0"})))
        );
        let other = format!("{LOG_PREFIX}event container.exited {{}}");
        assert_eq!(parse_report(&other), None);
        assert_eq!(parse_report("berth-hostnet: eth0: up"), None);
        assert_eq!(
            parse_report(&format!("{LOG_PREFIX}event clock.synchronized nope")),
            None
        );
    }
}
