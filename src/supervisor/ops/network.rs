//! `network: "cni"` in the lifecycle: attach at start (inside the
//! placement step, before the container runs), the /etc files it sees,
//! keeping every container's /etc/hosts current so they reach each other
//! by name, detach at exit, and cleaning up after a crash.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::supervisor::ops::Supervisor;
use crate::supervisor::plugins::network::{self, Attachment, NetworkSettings, STATE_FILE};
use crate::supervisor::runtime::container::State;
use crate::supervisor::say;
use crate::supervisor::spec::Spec;

/// Runs the CNI ADD chain for a just-cloned container and writes its
/// /etc files with its address and its peers'.
pub fn attach_container(
    settings: &NetworkSettings,
    name: &str,
    hostname: &str,
    pid: i32,
    spec: &Spec,
    base: &Path,
    peers: &[(String, IpAddr)],
) -> Result<Attachment, String> {
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let att = network::attach(settings, name, &netns, &spec.ports, &base.join(STATE_FILE))
        .map_err(|e| e.to_string())?;
    network::write_etc_files(base, hostname, att.ip, peers, &att.dns)
        .map_err(|e| format!("write /etc files in {}: {e}", base.display()))?;
    Ok(att)
}

impl Supervisor {
    /// Running CNI containers other than `except`, with their addresses.
    pub(crate) fn cni_peers(&self, except: &str) -> Vec<(String, IpAddr)> {
        self.containers
            .values()
            .filter(|c| c.name != except && c.state().is_live())
            .filter_map(|c| Some((c.name.clone(), c.ip?)))
            .collect()
    }

    /// Every running CNI container's /etc/hosts, rewritten in place with
    /// the current set of peers.
    pub(crate) fn refresh_peer_hosts(&self) {
        for c in self
            .containers
            .values()
            .filter(|c| c.state().is_live() && c.ip.is_some())
        {
            let hostname = c.spec.hostname.clone().unwrap_or_else(|| c.name.clone());
            let peers = self.cni_peers(&c.name);
            let path = c.dirs.base.join("hosts");
            if let Err(e) = network::rewrite_hosts(&path, &hostname, c.ip, &peers) {
                say(format_args!(
                    "container {}: rewrite {}: {e}",
                    c.name,
                    path.display()
                ));
            }
        }
    }

    /// At daemon start: DEL whatever a crash left attached.
    pub fn cleanup_stale_networks(&mut self) {
        let dir = self.store.containers_dir();
        let live = |name: &str| {
            self.containers
                .get(name)
                .is_some_and(|c| matches!(c.state(), State::Running | State::Stopping))
        };
        for (name, result) in network::cleanup_stale(&self.options.network, &dir, &live) {
            match result {
                Ok(()) => say(format_args!(
                    "container {name}: released the network a crash left attached"
                )),
                Err(e) => say(format_args!(
                    "container {name}: releasing its old network: {e}"
                )),
            }
        }
    }
}
