//! /etc/resolv.conf from DHCP's or berth.json's name servers, written
//! atomically (a new file renamed over the old, so a reader never sees
//! half of one) and only when its text changes (flash wears with writes).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// glibc reads at most 3 name servers and 6 search domains.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH: usize = 6;

pub fn render(servers: &[IpAddr], search: &[String]) -> String {
    let mut out = String::from("# written by berth (berth.json host_network)\n");
    let mut seen: Vec<&String> = Vec::new();
    for s in search {
        if seen.len() < MAX_SEARCH && !seen.contains(&s) {
            seen.push(s);
        }
    }
    if !seen.is_empty() {
        let names: Vec<&str> = seen.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("search {}\n", names.join(" ")));
    }
    let mut listed: Vec<IpAddr> = Vec::new();
    for ip in servers {
        if listed.len() < MAX_NAMESERVERS && !listed.contains(ip) {
            listed.push(*ip);
            out.push_str(&format!("nameserver {ip}\n"));
        }
    }
    out
}

/// Writes `text` to `path` unless it holds it already; true if written.
/// A symbolic link at `path` is written through (its target replaced):
/// on a read-only root, /etc/resolv.conf links to a tmpfs
/// (`berth mkimage` makes it so), as systemd-resolved's does.
pub fn write_if_changed(path: &Path, text: &str) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let path = match std::fs::read_link(path) {
        Ok(target) => dir.join(target),
        Err(_) => path.to_path_buf(),
    };
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(".resolv.conf.berth");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bounded_and_deduplicated() {
        let ips: Vec<IpAddr> = ["10.0.2.3", "10.0.2.3", "1.1.1.1", "8.8.8.8", "9.9.9.9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let text = render(&ips, &["lan".into(), "lan".into()]);
        assert_eq!(
            text,
            "# written by berth (berth.json host_network)\nsearch lan\n\
             nameserver 10.0.2.3\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n"
        );
    }

    #[test]
    fn writes_only_changes_and_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        assert!(write_if_changed(&path, "nameserver 10.0.2.3\n").unwrap());
        assert!(!write_if_changed(&path, "nameserver 10.0.2.3\n").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "nameserver 10.0.2.3\n"
        );
        assert!(!dir.path().join(".resolv.conf.berth").exists());
    }

    #[test]
    fn writes_through_a_link_into_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (etc, run) = (dir.path().join("etc"), dir.path().join("run"));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let link = etc.join("resolv.conf");
        std::os::unix::fs::symlink("../run/resolv.conf", &link).unwrap();
        assert!(write_if_changed(&link, "nameserver 192.0.2.53\n").unwrap());
        // The link stays (renaming over it would need /etc writable).
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(!etc.join(".resolv.conf.berth").exists());
        assert_eq!(
            std::fs::read_to_string(run.join("resolv.conf")).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        assert!(!write_if_changed(&link, "nameserver 192.0.2.53\n").unwrap());
    }
}
