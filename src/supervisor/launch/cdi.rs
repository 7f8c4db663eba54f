//! A container's CDI devices on this host (in the creation helper, with
//! the other devices): the spec files read and the names resolved
//! (plugins/cdi/), each node asked for completed from the host node where
//! the spec leaves its type, numbers, mode or owner out; then the edits
//! applied to the launch: env, bind mounts, groups.

use std::path::{Path, PathBuf};

use crate::kernel::config::{MountConfig, MountFlags, ProcessConfig, Propagation};
use crate::kernel::host_devices::{self, Found, NodeKind};
use crate::supervisor::launch::devices::{FoundDevices, GivenDevice};
use crate::supervisor::plugins::cdi::nodes::CdiNode;
use crate::supervisor::plugins::cdi::{self, CdiEdits};
use crate::supervisor::spec::Spec;

/// The OCI default for a node whose spec gives no mode.
const DEFAULT_NODE_MODE: u32 = 0o666;

/// The spec's CDI device names.
pub fn cdi_names(spec: &Spec) -> Vec<&str> {
    let cdi = spec.devices.iter().filter(|d| d.cdi);
    cdi.map(|d| d.path.as_str()).collect()
}

/// Resolves the spec's CDI names in `dirs`: their nodes join `found`'s
/// devices, the rest of their edits its `cdi`. Blocking: in a helper.
pub fn find_cdi_devices(
    spec: &Spec,
    dirs: &[PathBuf],
    found: &mut FoundDevices,
) -> Result<(), String> {
    let names = cdi_names(spec);
    if names.is_empty() {
        return Ok(());
    }
    let mut edits = cdi::resolve_devices(dirs, &names)?;
    for node in std::mem::take(&mut edits.nodes) {
        found.devices.push(given_node(&node)?);
    }
    found.cdi = edits;
    Ok(())
}

/// A node as the spec asks, the host node filling what it leaves out
/// (the reference runtime's rule: type and numbers from the host path
/// unless all are given; mode too unless given).
fn given_node(n: &CdiNode) -> Result<GivenDevice, String> {
    let host = Path::new(&n.host_path);
    let complete = n.block.is_some() && n.numbers.is_some();
    let from_host = if complete {
        None
    } else {
        match host_devices::find(host, 1) {
            Ok(Found::Node(h)) => Some(h),
            Ok(Found::Dir(_)) => {
                return Err(format!(
                    "CDI device node {}: is a directory",
                    host.display()
                ));
            }
            Err(e) => return Err(format!("CDI device node {e}")),
        }
    };
    let kind = match (n.block, &from_host) {
        (Some(true), _) => NodeKind::Block,
        (Some(false), _) => NodeKind::Char,
        (None, Some(h)) => h.kind,
        (None, None) => NodeKind::Char,
    };
    let (major, minor) = match (n.numbers, &from_host) {
        (Some(numbers), _) => numbers,
        (None, Some(h)) => (h.major, h.minor),
        (None, None) => (0, 0),
    };
    let host_mode = from_host.as_ref().map(|h| h.mode);
    Ok(GivenDevice {
        container_path: PathBuf::from(&n.container_path),
        host_path: from_host
            .as_ref()
            .map_or_else(|| host.to_path_buf(), |h| h.path.clone()),
        kind,
        major,
        minor,
        mode: n.mode.or(host_mode).unwrap_or(DEFAULT_NODE_MODE),
        uid: n.uid.or(from_host.as_ref().map(|h| h.uid)).unwrap_or(0),
        gid: n.gid.or(from_host.as_ref().map(|h| h.gid)).unwrap_or(0),
        permissions: n.permissions.clone(),
    })
}

/// The CDI env and groups on the process (the search path follows a
/// PATH the CDI env sets).
pub fn apply_process_edits(process: &mut ProcessConfig, edits: &CdiEdits) {
    apply_env(&mut process.env, edits);
    if let Some(path) = process.env.iter().find_map(|e| e.strip_prefix("PATH=")) {
        process.search_path = path.to_string();
    }
    for g in &edits.additional_gids {
        if !process.additional_gids.contains(g) {
            process.additional_gids.push(*g);
        }
    }
}

/// The CDI env over the rest: a later entry for a key wins.
pub fn apply_env(env: &mut Vec<String>, edits: &CdiEdits) {
    for kv in &edits.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    env.sort();
}

/// The CDI mounts, as recursive binds.
pub fn mounts(edits: &CdiEdits) -> Vec<MountConfig> {
    edits
        .mounts
        .iter()
        .map(|m| MountConfig::Bind {
            source: PathBuf::from(&m.source),
            target: PathBuf::from(&m.target),
            flags: MountFlags {
                read_only: m.flags.read_only,
                nosuid: m.flags.nosuid,
                nodev: m.flags.nodev,
                noexec: m.flags.noexec,
            },
            propagation: if m.flags.slave {
                Propagation::Slave
            } else {
                Propagation::Private
            },
        })
        .collect()
}

#[cfg(test)]
mod tests;
