//! berth as the machine's init brings up the host's own network, name
//! service and clock (berth.json `host_network`), in a qemu machine
//! (tests/common/vm.rs) with two virtio NICs:
//! - eth0 on qemu's user network in isolated mode (`restrict=on`: only
//!   its built-in DHCP answers, nothing leaves qemu). berth's DHCP client
//!   must get 10.0.2.15/24 (in isolated mode slirp's DHCP names no router
//!   and no DNS server), next to the static address 10.0.2.50/24 and an
//!   on-link static route berth.json gives the same link; slirp's router
//!   advertisement gives it an IPv6 address by SLAAC (fec0::/64).
//! - eth1 on a `-netdev socket` UDP tunnel to this test: qemu sends each
//!   Ethernet frame the guest writes as one datagram to the test's
//!   loopback socket and takes frames back the same way. The test answers
//!   ARP for 10.9.0.1, DHCP (10.9.0.2/24, router 10.9.0.1, DNS 10.9.0.53,
//!   NTP server 10.9.0.1 in option 42, domain berth.test) and SNTP on
//!   10.9.0.1:123 with its own time plus one day. Why not the user network
//!   for SNTP: slirp's `guestfwd` forwards TCP only, and `restrict=on`
//!   drops every guest UDP packet but DHCP and TFTP, so no SNTP answer can
//!   cross an isolated user network; a second, unrestricted one would let
//!   the guest reach the world. The tunnel reaches nothing but this test.
//!
//! A container on the host's network waits for `{"clock":
//! "synchronized"}` and `{"network": "online"}`, then prints the guest's
//! time, resolv.conf, addresses and routes and the `network.up` /
//! `clock.synchronized` events (through the static berth client), and
//! shuts the machine down. virtio_net is a module in Debian's cloud
//! kernel: it and its dependencies are copied into the initramfs and
//! loaded through berth.json's `modules`.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use common::vm::{Machine, vm_kernel};
use common::*;
use serde_json::json;

/// What the guest's clock is set to: the host's time plus this.
const SERVER_AHEAD_SECS: u64 = 86_400;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x09, 0x01];
/// What the test's DHCP server leases on the tunnel.
const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// In load order: virtio_net and what it needs, then the PCI transport.
const NET_MODULES: [&str; 8] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
];

/// Copies the modules of `kernel`'s version into DIR/lib/modules/.
fn copy_modules(kernel: &Path, dir: &Path) -> Result<Vec<String>> {
    let kver = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .context("kernel version")?;
    let out = dir.join("lib/modules");
    std::fs::create_dir_all(&out)?;
    let mut paths = vec!["/lib/modules/overlay.ko".to_string()];
    for m in NET_MODULES {
        let found = Command::new("modinfo")
            .args(["-k", kver, "-n", m])
            .output()?;
        let file = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        if !found.status.success() || file.extension().is_none_or(|e| e != "ko") {
            bail!("module {m}: {:?} (built in, missing or compressed?)", file);
        }
        std::fs::copy(&file, out.join(format!("{m}.ko")))?;
        paths.push(format!("/lib/modules/{m}.ko"));
    }
    Ok(paths)
}

/// The test's end of the tunnel: answers ARP for SERVER_IP, DHCP and SNTP.
fn serve_tunnel(sock: UdpSocket, qemu: std::net::SocketAddr, answered: Arc<AtomicUsize>) {
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        let frame = &buf[..n];
        let reply = match frame.get(12..14) {
            Some([0x08, 0x06]) => arp_reply(frame),
            _ => dhcp_reply(frame).or_else(|| {
                let r = sntp_reply(frame)?;
                answered.fetch_add(1, Ordering::SeqCst);
                Some(r)
            }),
        };
        if let Some(r) = reply {
            let _ = sock.send_to(&r, qemu);
        }
    }
}

fn arp_reply(f: &[u8]) -> Option<Vec<u8>> {
    let arp = f.get(14..42)?;
    if arp[6..8] != [0, 1] || arp[24..28] != SERVER_IP.octets() {
        return None;
    }
    let (mac, ip) = (&arp[8..14], &arp[14..18]);
    let mut r = Vec::with_capacity(42);
    r.extend_from_slice(mac);
    r.extend_from_slice(&SERVER_MAC);
    r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    r.extend_from_slice(&SERVER_MAC);
    r.extend_from_slice(&SERVER_IP.octets());
    r.extend_from_slice(mac);
    r.extend_from_slice(ip);
    Some(r)
}

fn ntp_now() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = t.as_secs() + SERVER_AHEAD_SECS + 2_208_988_800;
    let frac = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A guest's IPv4 UDP datagram.
struct Datagram<'a> {
    mac: [u8; 6],
    ip: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &'a [u8],
}

fn udp_in(f: &[u8]) -> Option<Datagram<'_>> {
    if f.get(12..14)? != [0x08, 0x00] || f.get(23) != Some(&17) {
        return None;
    }
    let ihl = usize::from(f.get(14)? & 0x0f) * 4;
    let udp = f.get(14 + ihl..)?;
    let port = |at: usize| Some(u16::from_be_bytes(udp.get(at..at + 2)?.try_into().ok()?));
    Some(Datagram {
        mac: f.get(6..12)?.try_into().ok()?,
        ip: f.get(26..30)?.try_into().ok()?,
        sport: port(0)?,
        dport: port(2)?,
        payload: udp.get(8..)?,
    })
}

/// An Ethernet frame with an IPv4 UDP datagram from the test's server.
fn udp_out(mac: [u8; 6], ip: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut hdr = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    hdr.extend_from_slice(&SERVER_IP.octets());
    hdr.extend_from_slice(&ip);
    hdr[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    let sum = checksum(&hdr);
    hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut r = Vec::new();
    r.extend_from_slice(&mac);
    r.extend_from_slice(&SERVER_MAC);
    r.extend_from_slice(&[0x08, 0x00]);
    r.extend_from_slice(&hdr);
    r.extend_from_slice(&sport.to_be_bytes());
    r.extend_from_slice(&dport.to_be_bytes());
    r.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0]); // no UDP checksum (IPv4 allows it)
    r.extend_from_slice(payload);
    r
}

/// SNTP on SERVER_IP:123: the test's time plus a day.
fn sntp_reply(f: &[u8]) -> Option<Vec<u8>> {
    let d = udp_in(f)?;
    if d.dport != 123 || f.get(30..34)? != SERVER_IP.octets() {
        return None;
    }
    let now = ntp_now().to_be_bytes();
    let mut ntp = vec![0x24, 1, 0, 0xe9];
    ntp.extend_from_slice(&[0; 8]);
    ntp.extend_from_slice(b"TEST");
    ntp.extend_from_slice(&now);
    ntp.extend_from_slice(d.payload.get(40..48)?);
    ntp.extend_from_slice(&now);
    ntp.extend_from_slice(&now);
    Some(udp_out(d.mac, d.ip, 123, d.sport, &ntp))
}

/// DHCP on the tunnel: GUEST_IP with a router, a name server, an NTP
/// server (option 42) and a domain, answered to broadcast.
fn dhcp_reply(f: &[u8]) -> Option<Vec<u8>> {
    let d = udp_in(f)?;
    let req = d.payload;
    if d.dport != 67 || req.len() < 243 || req.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let kind = match req.get(240..243)? {
        [53, 1, 1] => 2, // DISCOVER: OFFER
        [53, 1, 3] => 5, // REQUEST: ACK
        _ => return None,
    };
    let mut p = vec![0u8; 236];
    p[..4].copy_from_slice(&[2, 1, 6, 0]);
    p[4..8].copy_from_slice(req.get(4..8)?);
    p[16..20].copy_from_slice(&GUEST_IP.octets());
    p[28..44].copy_from_slice(req.get(28..44)?);
    p.extend_from_slice(&[99, 130, 83, 99, 53, 1, kind, 54, 4]);
    p.extend_from_slice(&SERVER_IP.octets());
    p.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 255, 255, 0, 3, 4]);
    p.extend_from_slice(&SERVER_IP.octets());
    p.extend_from_slice(&[6, 4, 10, 9, 0, 53, 42, 4]);
    p.extend_from_slice(&SERVER_IP.octets());
    p.extend_from_slice(&[15, 10]);
    p.extend_from_slice(b"berth.test");
    p.push(255);
    Some(udp_out([0xff; 6], [255; 4], 67, 68, &p))
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// "... (12.34 s after the kernel started)" on the first line with `what`.
fn seconds_after_boot(console: &str, what: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(what))?;
    let (_, tail) = line.rsplit_once('(')?;
    tail.split_whitespace().next()?.parse().ok()
}

#[test]
fn dhcp_resolv_conf_and_sntp_bring_the_machine_online() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let extra = tempfile::tempdir()?;
    let modules = copy_modules(&kernel, extra.path())?;
    let script = "echo \"probe time $(date -u +%s)\"; \
         sed 's/^/probe resolv /' /hostetc/resolv.conf; \
         ip -4 addr | sed 's/^/probe addr /'; ip route | sed 's/^/probe route /'; \
         for i in $(seq 50); do grep -q ^fec0 /proc/net/if_inet6 && break; sleep 0.1; done; \
         sed 's/^/probe inet6 /' /proc/net/if_inet6; \
         /berth events --kind network.up --kind clock.synchronized --json | sed 's/^/probe event /'; \
         /berth shutdown";
    let mut probe = json!({"image": DEMO_REF, "command": ["sh", "-c", script], "network": "host",
        "wait_for": [{"clock": "synchronized", "timeout": 50}, {"network": "online", "timeout": 50}]});
    probe["mounts"] = json!([
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/etc", "target": "/hostetc", "read_only": true}
    ]);
    let settings = json!({
        "modules": modules,
        "host_network": {
            "links": [{"name": "eth0", "dhcp": true, "addresses": ["10.0.2.50/24"],
                       "routes": [{"to": "192.0.2.0/24"}]},
                      {"name": "eth1", "slaac": false}],
            "ntp": {"poll_min": 2, "poll_max": 4}
        }
    });
    let machine = Machine::with_settings(&kernel, &[("probe", probe)], settings)?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let qemu_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let qemu_addr: std::net::SocketAddr = ([127, 0, 0, 1], qemu_port).into();
    let answered = Arc::new(AtomicUsize::new(0));
    let tunnel = sock.try_clone()?;
    let count = answered.clone();
    std::thread::spawn(move || serve_tunnel(tunnel, qemu_addr, count));
    let user = "user,id=n0,restrict=on".to_string();
    let socket = format!(
        "socket,id=n1,udp={},localaddr=127.0.0.1:{qemu_port}",
        sock.local_addr()?
    );
    let qemu = [
        "-netdev",
        user.as_str(),
        "-device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,addr=0x3",
        "-netdev",
        socket.as_str(),
        "-device",
        "virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57,addr=0x4",
    ];
    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let console = machine.boot_with(extra.path(), "", &qemu, |_| {})?;
    let after = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    for want in [
        "berth: module /lib/modules/virtio_net.ko loaded",
        "network up: eth0 10.0.2.50/24 gateway none",
        "network up: eth0 10.0.2.15/24 gateway none",
        "network up: eth1 10.9.0.2/24 gateway 10.9.0.1 dns 10.9.0.53",
        "clock synchronized with 10.9.0.1:123",
        "probe resolv search berth.test",
        "probe resolv nameserver 10.9.0.53",
        "inet 10.0.2.15/24",
        "inet 10.0.2.50/24",
        "probe route default via 10.9.0.1 dev eth1",
        "probe route 192.0.2.0/24 dev eth0",
        "\"kind\":\"network.up\"",
        "\"address\":\"10.0.2.15/24\"",
        "\"dns\":[\"10.9.0.53\"]",
        "\"kind\":\"clock.synchronized\"",
        "berth: powering off",
    ] {
        assert!(
            console.contains(want),
            "no {want:?} on the console:\n{console}"
        );
    }
    let guest: u64 = console
        .lines()
        .find_map(|l| l.split("probe time ").nth(1)?.trim().parse().ok())
        .context("no guest time")?;
    let (low, high) = (before + SERVER_AHEAD_SECS, after + SERVER_AHEAD_SECS);
    assert!(
        (low..=high).contains(&guest),
        "the guest's clock {guest} is not the server's ({low}..={high}):\n{console}"
    );
    assert!(answered.load(Ordering::SeqCst) >= 1);
    let slaac = console.lines().any(|l| l.contains("probe inet6 fec0"));
    assert!(slaac, "no SLAAC address on eth0:\n{console}");
    let up = seconds_after_boot(&console, "network up: eth0 10.0.2.15");
    let synced = seconds_after_boot(&console, "clock synchronized with");
    eprintln!(
        "vm hostnet: network.up {up:?} s, clock.synchronized {synced:?} s after the kernel started"
    );
    Ok(())
}
