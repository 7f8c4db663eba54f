//! A spec's devices on this host: looked up at each start, in a helper
//! (a path may sit on any filesystem, and a privileged container walks
//! all of /dev), then turned into the nodes the child makes, the cgroup
//! rules that let the container open them, and the Landlock rights that
//! keep them usable in a read-only tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kernel::cgroup::{DeviceKind, DeviceRule};
use crate::kernel::config::DeviceNode;
use crate::kernel::host_devices::{self, Found, HostNode, NodeKind};
use crate::kernel::landlock::DeviceFile;
use crate::kernel::userns::UsernsConfig;
use crate::supervisor::launch::cdi::find_cdi_devices;
use crate::supervisor::launch::device_match;
use crate::supervisor::plugins::cdi::CdiEdits;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::bounds::DEVICE_NODES;
use crate::supervisor::spec::device_match::DeviceMatch;
use crate::supervisor::spec::device_rules::{parse_device_rule, parse_permissions};
use crate::supervisor::spec::devices::{DEFAULT_PERMISSIONS, DeviceSpec};

/// One device node a container gets, as found on the host at its start
/// (also what `inspect` shows, and what the helper that found it answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenDevice {
    pub container_path: PathBuf,
    /// The node itself, symlinks resolved.
    pub host_path: PathBuf,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    /// Octal permission bits, e.g. "0660".
    #[serde(with = "octal")]
    pub mode: u32,
    /// The host node's owner (a user namespace maps it; see `nodes`).
    pub uid: u32,
    pub gid: u32,
    /// What the cgroup lets the container do with it (of r, w, m).
    pub permissions: String,
}

/// The devices found, and the optional ones that were not there.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FoundDevices {
    pub devices: Vec<GivenDevice>,
    pub warnings: Vec<String>,
    /// What the CDI devices add beyond their nodes (launch/cdi.rs).
    #[serde(default)]
    pub cdi: CdiEdits,
}

/// Whether starting `spec` means looking at the host's devices.
pub fn needs_lookup(spec: &Spec) -> bool {
    spec.privileged || !spec.devices.is_empty()
}

/// The spec's devices on this host (with a privileged container's every
/// host node first): a missing one fails with its path named, unless it
/// is `optional`; a later entry for a container path wins. Blocking: run
/// it in a helper.
pub fn find_devices(spec: &Spec, cdi_dirs: &[PathBuf]) -> Result<FoundDevices, String> {
    let limit = DEVICE_NODES.max;
    let mut found = FoundDevices::default();
    if spec.privileged {
        let nodes = host_devices::all_host_devices(limit)
            .map_err(|e| format!("privileged: the host's devices: {e}"))?;
        found.devices.extend(
            nodes
                .iter()
                .map(|n| given(n.path.clone(), n, DEFAULT_PERMISSIONS)),
        );
    }
    for d in spec.devices.iter().filter(|d| !d.cdi) {
        let room = limit.saturating_sub(found.devices.len());
        if let Some(m) = &d.device_match {
            find_by_match(d, m, room, &mut found)?;
            continue;
        }
        match host_devices::find(Path::new(&d.path), room) {
            Ok(Found::Node(n)) if room > 0 => {
                let at = PathBuf::from(&d.container_path);
                found.devices.push(given(at, &n, &d.permissions));
            }
            Ok(Found::Node(_)) => {
                return Err(format!("device {}: more than {limit} device nodes", d.path));
            }
            Ok(Found::Dir(nodes)) => {
                let base = Path::new(&d.container_path);
                let each = nodes
                    .iter()
                    .map(|(rel, n)| given(base.join(rel), n, &d.permissions));
                found.devices.extend(each);
            }
            Err(e) if e.missing && d.optional => found
                .warnings
                .push(format!("optional device {} skipped: {}", d.path, e.reason)),
            Err(e) => return Err(format!("device {e}")),
        }
    }
    find_cdi_devices(spec, cdi_dirs, &mut found)?;
    found.devices = last_per_container_path(found.devices);
    Ok(found)
}

/// A `match` entry: the device sysfs lists that matches it.
fn find_by_match(
    d: &DeviceSpec,
    m: &DeviceMatch,
    room: usize,
    found: &mut FoundDevices,
) -> Result<(), String> {
    let sys = Path::new(device_match::SYS_ROOT);
    match device_match::find_match(m, sys, &device_match::dev_root()) {
        Some(_) if room == 0 => Err(format!(
            "device {}: too many device nodes",
            d.container_path
        )),
        Some(n) => {
            let at = PathBuf::from(&d.container_path);
            found.devices.push(given(at, &n, &d.permissions));
            Ok(())
        }
        None if d.optional => {
            let what = device_match::describe(m);
            found
                .warnings
                .push(format!("optional device {what} skipped: no such device"));
            Ok(())
        }
        None => Err(format!(
            "device {}: no such device",
            device_match::describe(m)
        )),
    }
}

fn given(container_path: PathBuf, n: &HostNode, permissions: &str) -> GivenDevice {
    GivenDevice {
        container_path,
        host_path: n.path.clone(),
        kind: n.kind,
        major: n.major,
        minor: n.minor,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        permissions: permissions.to_string(),
    }
}

fn last_per_container_path(devices: Vec<GivenDevice>) -> Vec<GivenDevice> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<GivenDevice> = devices
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.container_path.clone()))
        .collect();
    out.reverse();
    out
}

/// The nodes to make. With a user namespace the host owner's ids are read
/// as container ids and mapped, so the container sees the host's owner
/// (`0:6`, root:disk); an id the maps lack becomes the container's root.
pub fn nodes(given: &[GivenDevice], userns: Option<&UsernsConfig>) -> Vec<DeviceNode> {
    let uid = |id: u32| userns.map_or(Some(id), |u| u.host_uid(id).or(u.host_uid(0)));
    let gid = |id: u32| userns.map_or(Some(id), |u| u.host_gid(id).or(u.host_gid(0)));
    given
        .iter()
        .map(|d| DeviceNode {
            path: d.container_path.clone(),
            kind: d.kind,
            major: d.major,
            minor: d.minor,
            mode: d.mode,
            // Maps always hold 0 (checked at load); the fallbacks never
            // apply.
            uid: uid(d.uid).unwrap_or(d.uid),
            gid: gid(d.gid).unwrap_or(d.gid),
        })
        .collect()
}

/// The cgroup rules beyond the defaults: each device with its
/// permissions, then the spec's `device_cgroup_rules`; every device for a
/// privileged container.
pub fn cgroup_rules(spec: &Spec, given: &[GivenDevice]) -> Result<Vec<DeviceRule>, String> {
    if spec.privileged {
        return Ok(vec![DeviceRule::ALLOW_ALL]);
    }
    let mut rules = Vec::new();
    for d in given {
        let access = parse_permissions(&d.permissions)
            .ok_or_else(|| format!("device {}: bad permissions", d.container_path.display()))?;
        rules.push(DeviceRule {
            kind: match d.kind {
                NodeKind::Char => DeviceKind::Char,
                NodeKind::Block => DeviceKind::Block,
            },
            major: Some(d.major),
            minor: Some(d.minor),
            access,
        });
    }
    for text in &spec.device_cgroup_rules {
        let rule = parse_device_rule(text).map_err(|e| format!("device_cgroup_rules: {e}"))?;
        rules.push(rule);
    }
    rules.dedup();
    Ok(rules)
}

/// Landlock rights on each node: what its permissions let it do.
pub fn landlock_files(given: &[GivenDevice]) -> Vec<DeviceFile> {
    given
        .iter()
        .map(|d| {
            let access = parse_permissions(&d.permissions).unwrap_or_default();
            DeviceFile {
                path: d.container_path.clone(),
                read: access.read,
                write: access.write,
            }
        })
        .collect()
}

/// Permission bits as "0660" (what `ls -l` shows, not 432).
mod octal {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(&text, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| de::Error::custom(format!("bad mode {text:?}")))
    }
}

#[cfg(test)]
mod tests;
