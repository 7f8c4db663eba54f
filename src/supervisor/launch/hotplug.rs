//! Hotplug decisions, without I/O: which of a running container's
//! `devices` entries, `device_cgroup_rules` or `privileged` a device that
//! just appeared falls under, where its node goes in the container, and
//! which cgroup rules the container's devices need now. The supervisor
//! (ops/hotplug.rs) reads the uevents, sysfs and the host's nodes and
//! makes the nodes.

use std::path::{Path, PathBuf};

use crate::kernel::cgroup::{DeviceAccess, DeviceKind, DeviceRule};
use crate::kernel::host_devices::NodeKind;
use crate::supervisor::launch::devices::{GivenDevice, cgroup_rules};
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::device_match::DeviceProperties;
use crate::supervisor::spec::device_rules::{parse_device_rule, parse_permissions};
use crate::supervisor::spec::devices::DEFAULT_PERMISSIONS;

/// A device that appeared, as the host has it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    /// Its node on the host, /dev/DEVNAME.
    pub host_path: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub properties: DeviceProperties,
}

/// Where a container gets one device, and with which permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub container_path: PathBuf,
    pub permissions: String,
}

/// The spec's rules that cover (kind, major, minor), their access merged;
/// `None` if no rule does.
pub fn rules_access(spec: &Spec, kind: NodeKind, major: u32, minor: u32) -> Option<DeviceAccess> {
    let mut access: Option<DeviceAccess> = None;
    let rules = spec
        .device_cgroup_rules
        .iter()
        .filter_map(|r| parse_device_rule(r).ok());
    for rule in rules.filter(|r| covers(r, kind, major, minor)) {
        let a = access.get_or_insert_default();
        a.read |= rule.access.read;
        a.write |= rule.access.write;
        a.mknod |= rule.access.mknod;
    }
    access.filter(|a| !a.is_empty())
}

fn covers(rule: &DeviceRule, kind: NodeKind, major: u32, minor: u32) -> bool {
    let kind_ok = match rule.kind {
        DeviceKind::All => true,
        DeviceKind::Char => kind == NodeKind::Char,
        DeviceKind::Block => kind == NodeKind::Block,
    };
    kind_ok && rule.major.is_none_or(|m| m == major) && rule.minor.is_none_or(|m| m == minor)
}

/// Where `dev` goes in a container with `spec`: the first `devices`
/// entry it falls under (by `match`, by its node's path, beneath a
/// directory entry, or as the target of an entry's symlink, which
/// `resolve` follows on the host), else /dev/DEVNAME if a rule covers it
/// or the container is privileged. A later entry for the same container
/// path does not add a second node.
pub fn placements(
    spec: &Spec,
    dev: &Arrival,
    resolve: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Vec<Placement> {
    let mut out: Vec<Placement> = Vec::new();
    let host = dev.host_path.as_path();
    // CDI names come from the host's spec files at start, not from paths.
    for d in spec.devices.iter().filter(|d| !d.cdi) {
        let at = match &d.device_match {
            Some(m) if m.matches(&dev.properties) => Some(PathBuf::from(&d.container_path)),
            Some(_) => None,
            None => path_entry_place(&d.path, &d.container_path, host, resolve),
        };
        if let Some(container_path) = at
            && !out.iter().any(|p| p.container_path == container_path)
        {
            out.push(Placement {
                container_path,
                permissions: d.permissions.clone(),
            });
        }
    }
    if !out.is_empty() || own_to_the_container(host) {
        return out;
    }
    let by_rule = rules_access(spec, dev.kind, dev.major, dev.minor).map(|a| a.to_string());
    let permissions = if spec.privileged {
        Some(DEFAULT_PERMISSIONS.to_string())
    } else {
        by_rule
    };
    permissions
        .map(|permissions| Placement {
            container_path: host.to_path_buf(),
            permissions,
        })
        .into_iter()
        .collect()
}

/// Nodes the container has its own of (as for a privileged start,
/// host_devices.rs): never replaced by the host's at their own name.
fn own_to_the_container(host: &Path) -> bool {
    let rel = host.strip_prefix("/dev").unwrap_or(host);
    ["console", "ptmx"].iter().any(|n| rel == Path::new(n))
        || ["pts", "shm", "mqueue", "fd"]
            .iter()
            .any(|d| rel.starts_with(d))
}

fn path_entry_place(
    entry: &str,
    container_path: &str,
    host: &Path,
    resolve: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Option<PathBuf> {
    let entry = Path::new(entry);
    if entry == host {
        return Some(PathBuf::from(container_path));
    }
    if let Ok(rel) = host.strip_prefix(entry) {
        return Some(Path::new(container_path).join(rel));
    }
    // A symlink entry (/dev/serial/by-id/…) that already leads to the node.
    (resolve(entry).as_deref() == Some(host)).then(|| PathBuf::from(container_path))
}

/// The device as the container gets it.
pub fn given_device(dev: &Arrival, place: &Placement) -> GivenDevice {
    GivenDevice {
        container_path: place.container_path.clone(),
        host_path: dev.host_path.clone(),
        kind: dev.kind,
        major: dev.major,
        minor: dev.minor,
        mode: dev.mode,
        uid: dev.uid,
        gid: dev.gid,
        permissions: place.permissions.clone(),
    }
}

/// Whether the container's rules must change for `d`: not if a
/// `device_cgroup_rules` entry already allows all its permissions, or the
/// container is privileged.
pub fn needs_own_rule(spec: &Spec, d: &GivenDevice) -> bool {
    if spec.privileged {
        return false;
    }
    let want = parse_permissions(&d.permissions).unwrap_or(DeviceAccess::ALL);
    let have = rules_access(spec, d.kind, d.major, d.minor).unwrap_or_default();
    (want.read && !have.read) || (want.write && !have.write) || (want.mknod && !have.mknod)
}

/// The rules beyond the defaults for the devices the container has now:
/// the spec's rules, and one per device no rule covers.
pub fn rules_now(spec: &Spec, devices: &[GivenDevice]) -> Result<Vec<DeviceRule>, String> {
    let own: Vec<GivenDevice> = devices
        .iter()
        .filter(|d| needs_own_rule(spec, d))
        .cloned()
        .collect();
    cgroup_rules(spec, &own)
}

#[cfg(test)]
mod tests;
