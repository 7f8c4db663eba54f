//! The container's /etc/hosts, /etc/resolv.conf and /etc/hostname, written
//! on the host in the container's directory for the launcher to bind-mount
//! (read-write, as Docker does). Text only: no namespaces, no mounts here.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Used when neither the host nor the CNI result has a nameserver that a
/// container can reach (Docker's fallback).
pub const DEFAULT_NAMESERVERS: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
];
/// The address of the container's own name when it has no network address
/// (Debian's convention for the host name).
pub const NO_NETWORK_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1));
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// What systemd-resolved's 127.0.0.53 stub forwards to (Docker reads it
/// too when the host file lists only the stub).
const RESOLVED_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The three files, in the directory given to `write_etc_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv: PathBuf,
    pub hostname: PathBuf,
}

/// Writes `dir/hosts`, `dir/resolv.conf` and `dir/hostname`, each replaced
/// whole (a new file: call before the container bind-mounts them).
/// `own` is the container's address (None without a network);
/// `peers` are the other containers (name, address) on its network;
/// `fallback_dns` are nameservers to use if the host has none usable from
/// inside the container (e.g. `Attachment::dns`).
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    own: Option<IpAddr>,
    peers: &[(String, IpAddr)],
    fallback_dns: &[IpAddr],
) -> io::Result<EtcFiles> {
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        resolv: dir.join("resolv.conf"),
        hostname: dir.join("hostname"),
    };
    let host = fs::read_to_string(HOST_RESOLV_CONF).ok();
    let resolved = fs::read_to_string(RESOLVED_RESOLV_CONF).ok();
    let resolv = resolv_conf_text(host.as_deref(), resolved.as_deref(), fallback_dns);
    replace(&files.hosts, &hosts_text(hostname, own, peers))?;
    replace(&files.resolv, &resolv)?;
    replace(&files.hostname, &format!("{hostname}\n"))?;
    Ok(files)
}

/// Rewrites the hosts file at `path` in place (same inode, so a bind
/// mount of it sees the change): the new text is written over the old and
/// the file cut to its length, so a reader never sees it empty.
pub fn rewrite_hosts(
    path: &Path,
    hostname: &str,
    own: Option<IpAddr>,
    peers: &[(String, IpAddr)],
) -> io::Result<()> {
    let text = hosts_text(hostname, own, peers);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)
}

fn replace(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// Container and host names are `[A-Za-z0-9_.-]`; anything else (a space
/// or newline would add entries) is left out.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn hosts_text(
    hostname: &str,
    own: Option<IpAddr>,
    peers: &[(String, IpAddr)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::\tip6-localnet\n\
         ff00::\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if is_host_name(hostname) {
        s.push_str(&format!("{}\t{hostname}\n", own.unwrap_or(NO_NETWORK_ADDR)));
    }
    let mut peers: Vec<&(String, IpAddr)> = peers
        .iter()
        .filter(|(name, _)| name != hostname && is_host_name(name))
        .collect();
    peers.sort();
    peers.dedup_by(|a, b| a.0 == b.0);
    for (name, ip) in peers {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

/// One resolv.conf, split into what berth keeps.
#[derive(Default)]
struct Resolv {
    nameservers: Vec<IpAddr>,
    /// `search`, `domain` and `options` lines, as written.
    other: Vec<String>,
}

fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // Loopback is the host's own resolver, unreachable from the
                // container's namespace; a zoned fe80::…%eth0 does not parse.
                let ip = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                if let Some(ip) = ip.filter(|ip| !ip.is_loopback()) {
                    r.nameservers.push(ip);
                }
            }
            Some("search" | "domain" | "options") => r.other.push(line.to_string()),
            _ => {}
        }
    }
    r
}

/// The host's nameservers without loopback ones; else systemd-resolved's
/// upstreams; else `fallback`; else `DEFAULT_NAMESERVERS`.
fn resolv_conf_text(host: Option<&str>, resolved: Option<&str>, fallback: &[IpAddr]) -> String {
    let host = parse_resolv(host.unwrap_or(""));
    let resolved = parse_resolv(resolved.unwrap_or(""));
    let (source, nameservers) = if !host.nameservers.is_empty() {
        ("the host's /etc/resolv.conf", &host.nameservers)
    } else if !resolved.nameservers.is_empty() {
        ("systemd-resolved's upstream servers", &resolved.nameservers)
    } else if !fallback.is_empty() {
        ("the CNI result", &fallback.to_vec())
    } else {
        ("berth's default", &DEFAULT_NAMESERVERS.to_vec())
    };
    let other = if host.nameservers.is_empty() && !resolved.nameservers.is_empty() {
        &resolved.other
    } else {
        &host.other
    };
    let mut s = format!("# Written by berth: nameservers from {source} (docs/network.md)\n");
    for line in other {
        s.push_str(line);
        s.push('\n');
    }
    for ns in nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_lists_self_and_peers() {
        let peers = vec![
            ("web".to_string(), ip("10.0.0.3")),
            ("db".to_string(), ip("10.0.0.4")),
            ("app".to_string(), ip("10.0.0.9")),
            ("bad name".to_string(), ip("10.0.0.5")),
        ];
        let t = hosts_text("app", Some(ip("10.0.0.2")), &peers);
        assert!(t.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            t.ends_with("10.0.0.2\tapp\n10.0.0.4\tdb\n10.0.0.3\tweb\n"),
            "{t}"
        );
        assert!(!t.contains("bad"));
        assert!(hosts_text("solo", None, &[]).ends_with("127.0.1.1\tsolo\n"));
    }

    #[test]
    fn resolv_drops_loopback_and_falls_back() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.1.1.1 # x\n\
                    search lan\noptions edns0 trust-ad\n";
        let t = resolv_conf_text(Some(host), None, &[]);
        assert!(
            t.contains("search lan\noptions edns0 trust-ad\nnameserver 10.1.1.1\n"),
            "{t}"
        );
        assert!(!t.contains("127.0.0.53") && !t.contains("::1"));
        let stub = "nameserver 127.0.0.53\nsearch home\n";
        let t = resolv_conf_text(Some(stub), Some("nameserver 192.0.2.53\nsearch up\n"), &[]);
        assert!(t.contains("search up\nnameserver 192.0.2.53\n"), "{t}");
        let t = resolv_conf_text(Some(stub), None, &[ip("10.9.9.9")]);
        assert!(t.contains("search home\nnameserver 10.9.9.9\n"), "{t}");
        let t = resolv_conf_text(None, None, &[]);
        assert!(
            t.ends_with("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
            "{t}"
        );
    }

    #[test]
    fn files_are_written_and_hosts_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = write_etc_files(dir.path(), "box", Some(ip("10.0.0.2")), &[], &[]).unwrap();
        assert_eq!(fs::read_to_string(&f.hostname).unwrap(), "box\n");
        assert!(
            fs::read_to_string(&f.resolv)
                .unwrap()
                .contains("nameserver ")
        );
        let inode = fs::metadata(&f.hosts).unwrap().ino();
        let many: Vec<_> = (0..50)
            .map(|i| (format!("peer{i}"), ip("10.0.0.7")))
            .collect();
        rewrite_hosts(&f.hosts, "box", Some(ip("10.0.0.2")), &many).unwrap();
        assert!(
            fs::read_to_string(&f.hosts)
                .unwrap()
                .contains("10.0.0.7\tpeer49\n")
        );
        rewrite_hosts(&f.hosts, "box", Some(ip("10.0.0.2")), &[]).unwrap();
        assert_eq!(
            fs::read_to_string(&f.hosts).unwrap(),
            hosts_text("box", Some(ip("10.0.0.2")), &[])
        );
        assert_eq!(fs::metadata(&f.hosts).unwrap().ino(), inode);
    }
}
