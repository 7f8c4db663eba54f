//! A throwaway network namespace for a DEL whose container namespace is
//! gone (a pin lost with a crashed daemon's private mount namespace, as
//! under systemd's ProtectSystem=): it holds an interface named like the
//! container's, carrying the addresses the stored result gave it.
//!
//! Why: bridge 1.1.x (plugins/main/bridge/bridge.go cmdDel) removes its
//! ipMasq rules only for the addresses it finds on that interface; with
//! no namespace it leaves them, and the container's next DEL then fails
//! deleting the still-referenced chain. Given this namespace, the plugin
//! finds "eth0", deletes it and tears its rules down as usual.
//! Built with iproute2's `ip` (a recovery path only; without `ip` the DEL
//! runs with no namespace, as before).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The interface's peer: bridge looks only at the one it is told about.
const PEER_IFNAME: &str = "berth-peer";

/// Deleted (with everything in it) on drop.
pub(super) struct ScratchNetns {
    name: String,
    path: PathBuf,
}

impl ScratchNetns {
    /// `ifname` with `addrs` (CIDR, e.g. `10.213.77.5/24`) in a new
    /// namespace.
    pub fn create(ifname: &str, addrs: &[String]) -> io::Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "berth-del-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &name])?;
        let ns = Self {
            path: Path::new("/run/netns").join(&name),
            name,
        };
        let link = [
            "link",
            "add",
            ifname,
            "type",
            "veth",
            "peer",
            "name",
            PEER_IFNAME,
        ];
        ns.run_in(&link)?;
        for a in addrs {
            ns.run_in(&["addr", "add", a, "dev", ifname])?;
        }
        Ok(ns)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run_in(&self, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all)
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = run_ip(&["netns", "del", &self.name]);
    }
}

fn run_ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        err.trim()
    )))
}
