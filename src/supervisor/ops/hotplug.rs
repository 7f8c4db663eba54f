//! Hotplug: a device that appears while a container runs and falls under
//! one of its `devices` entries, `device_cgroup_rules` or `privileged`
//! gets its node in the container (kernel::hotplug_node, safe against
//! the container's own symlinks), after its cgroup rule when it needs
//! one; when the device goes, the node berth made for it and that rule
//! go too. Each is journalled (device.added, device.removed) and shown
//! by `inspect`. Everything here is a few system calls on sysfs, the
//! host's /dev and the container's /dev (no helper: nothing can block).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::kernel::cgroup::device_rules_enforced;
use crate::kernel::host_devices::{self, Found, NodeKind};
use crate::kernel::hotplug_node::{
    Made, make_node_in_root, open_container_root, remove_node_in_root,
};
use crate::kernel::uevent::{Uevent, UeventAction};
use crate::supervisor::events::journal::kinds;
use crate::supervisor::launch::device_match::{dev_root, host_node, properties};
use crate::supervisor::launch::devices::{GivenDevice, nodes};
use crate::supervisor::launch::hotplug::{
    Arrival, Placement, given_device, needs_own_rule, placements, rules_now,
};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::container::Container;
use crate::supervisor::say;
use crate::supervisor::spec::devices::DeviceSpec;

/// Uevents read per loop turn at most; the rest wait for the next turn.
const UEVENTS_PER_TURN: usize = 256;

impl Supervisor {
    /// The uevent socket is readable.
    pub fn on_uevents(&mut self) {
        self.sync_hotplug();
        let Some(socket) = &self.hotplug.uevents else {
            return;
        };
        let batch = socket.read_pending(UEVENTS_PER_TURN);
        if batch.overflowed {
            say(format_args!(
                "hotplug: uevents were lost (socket buffer full)"
            ));
        }
        for event in batch.events {
            self.on_uevent(&event);
        }
    }

    fn on_uevent(&mut self, e: &Uevent) {
        let (Some((major, minor)), Some(name)) = (e.numbers, &e.devname) else {
            return;
        };
        let kind = if e.subsystem == "block" {
            NodeKind::Block
        } else {
            NodeKind::Char
        };
        match e.action {
            UeventAction::Add => self.on_device_added(e, name, kind, major, minor),
            UeventAction::Remove => self.on_device_removed(kind, major, minor, Instant::now()),
            UeventAction::Other => {}
        }
    }

    fn on_device_added(&mut self, e: &Uevent, name: &str, kind: NodeKind, major: u32, minor: u32) {
        if self.hotplug.runs.is_empty() {
            return;
        }
        let seen = Instant::now();
        let usb = self.hotplug.runs.keys().any(|n| {
            self.containers.get(n).is_some_and(|c| {
                c.spec
                    .devices
                    .iter()
                    .any(|d| d.device_match.as_ref().is_some_and(|m| m.wants_usb()))
            })
        });
        let node = host_node(&dev_root(), name, kind, major, minor);
        let arrival = Arrival {
            kind,
            major,
            minor,
            host_path: node.path.clone(),
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            properties: properties(&self.hotplug.sys_root, &e.devpath, &e.subsystem, name, usb),
        };
        // Entries that are symlinks to the node (udev made them before
        // the daemon saw the uevent).
        let resolve = |p: &Path| fs::canonicalize(p).ok();
        let names: Vec<String> = self.hotplug.runs.keys().cloned().collect();
        for container in names {
            let Some(c) = self.containers.get(&container) else {
                continue;
            };
            for place in placements(&c.spec, &arrival, &resolve) {
                self.add_device(&container, given_device(&arrival, &place), seen);
            }
        }
    }

    /// A path in a watched directory appeared: the entries naming it get
    /// the node it leads to.
    pub fn on_device_links(&mut self) {
        let seen = Instant::now();
        self.sync_hotplug();
        let mut links = self.read_device_links();
        let fresh = self.sync_device_watches();
        links.extend(self.entries_in(&fresh));
        let names: Vec<String> = self.hotplug.runs.keys().cloned().collect();
        for link in links {
            for container in &names {
                let Some(c) = self.containers.get(container) else {
                    continue;
                };
                let found: Vec<GivenDevice> = c
                    .spec
                    .devices
                    .iter()
                    .filter(|d| d.device_match.is_none() && Path::new(&d.path) == link)
                    .filter_map(|d| linked_device(&link, d))
                    .collect();
                for d in found {
                    self.add_device(container, d, seen);
                }
            }
        }
    }

    /// Gives `d` to the running container: its rule first (so the node
    /// is never there without it), then the node.
    fn add_device(&mut self, name: &str, d: GivenDevice, seen: Instant) {
        let Some(run) = self.hotplug.runs.get_mut(name) else {
            return;
        };
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let Some(had) = c.security.as_ref().map(|s| s.devices.clone()) else {
            return;
        };
        if had.iter().any(|g| g.container_path == d.container_path) {
            return;
        }
        let mut devices = had.clone();
        devices.push(d.clone());
        let own_rule = needs_own_rule(&c.spec, &d);
        if own_rule && let Err(e) = set_device_rules(c, &devices) {
            let at = d.container_path.display();
            say(format_args!("container {name}: device {at}: {e}"));
            return;
        }
        let made = nodes(std::slice::from_ref(&d), run.userns.as_ref())
            .first()
            .ok_or_else(|| "no node".to_string())
            .and_then(|node| {
                let root = open_container_root(run.pid).map_err(|e| e.to_string())?;
                make_node_in_root(&root, node).map_err(|e| e.to_string())
            });
        match made {
            Ok(Made::Created) => {}
            Ok(Made::AlreadyThere) => run.not_ours.push(d.container_path.clone()),
            Err(e) => {
                say(format_args!("container {name}: hotplug: {e}"));
                if own_rule && let Err(e) = set_device_rules(c, &had) {
                    say(format_args!("container {name}: {e}"));
                }
                return;
            }
        }
        if let Some(security) = c.security.as_mut() {
            security.devices = devices;
        }
        let what = describe(&d);
        let took = seen.elapsed().as_micros();
        say(format_args!(
            "container {name}: device added: {what} ({took} µs)"
        ));
        let _ = c.log.write_notice(&format!("device added: {what}"));
        self.emit(kinds::DEVICE_ADDED, Some(name), device_data(&d));
    }

    /// A device went: every container that has it loses its node (only a
    /// node that is still that device's, so never one of the
    /// container's own files) and the rule that came with it.
    fn on_device_removed(&mut self, kind: NodeKind, major: u32, minor: u32, seen: Instant) {
        let names: Vec<String> = self.hotplug.runs.keys().cloned().collect();
        for name in names {
            for d in self.drop_device(&name, (kind, major, minor), seen) {
                self.emit(kinds::DEVICE_REMOVED, Some(&name), device_data(&d));
            }
        }
    }

    /// Removes the container's nodes of (kind, major, minor) that berth
    /// made, and their rule; returns the devices it had.
    fn drop_device(
        &mut self,
        name: &str,
        (kind, major, minor): (NodeKind, u32, u32),
        seen: Instant,
    ) -> Vec<GivenDevice> {
        let Some(run) = self.hotplug.runs.get_mut(name) else {
            return Vec::new();
        };
        let Some(c) = self.containers.get_mut(name) else {
            return Vec::new();
        };
        let Some(had) = c.security.as_ref().map(|s| s.devices.clone()) else {
            return Vec::new();
        };
        let same = |g: &GivenDevice| g.kind == kind && g.major == major && g.minor == minor;
        let (gone, kept): (Vec<GivenDevice>, Vec<GivenDevice>) = had.into_iter().partition(same);
        if gone.is_empty() {
            return gone;
        }
        let root = open_container_root(run.pid).map_err(|e| e.to_string());
        for d in &gone {
            // A node that was there before berth's is the container's.
            if let Some(i) = run.not_ours.iter().position(|p| *p == d.container_path) {
                run.not_ours.swap_remove(i);
                continue;
            }
            let removed = root.as_ref().map_err(Clone::clone).and_then(|root| {
                remove_node_in_root(root, &d.container_path, kind, major, minor)
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = removed {
                say(format_args!("container {name}: hotplug: {e}"));
            }
        }
        if gone.iter().any(|d| needs_own_rule(&c.spec, d))
            && let Err(e) = set_device_rules(c, &kept)
        {
            say(format_args!("container {name}: {e}"));
        }
        if let Some(security) = c.security.as_mut() {
            security.devices = kept;
        }
        for d in &gone {
            let what = describe(d);
            let took = seen.elapsed().as_micros();
            say(format_args!(
                "container {name}: device removed: {what} ({took} µs)"
            ));
            let _ = c.log.write_notice(&format!("device removed: {what}"));
        }
        gone
    }
}

/// The container's cgroup rules for `devices` (allows first, then
/// denies; see ContainerCgroup::replace_device_rules), and what
/// `inspect` shows of them.
fn set_device_rules(c: &mut Container, devices: &[GivenDevice]) -> Result<(), String> {
    let rules = rules_now(&c.spec, devices).map_err(|e| format!("device rules: {e}"))?;
    if let Some(cgroup) = &c.cgroup {
        cgroup
            .replace_device_rules(&rules)
            .map_err(|e| e.to_string())?;
    }
    if let Some(security) = c.security.as_mut()
        && device_rules_enforced()
    {
        security.device_rules = rules.iter().map(|r| r.to_string()).collect();
    }
    Ok(())
}

/// The device node `link` leads to, for entry `d`.
fn linked_device(link: &Path, d: &DeviceSpec) -> Option<GivenDevice> {
    let Ok(Found::Node(n)) = host_devices::find(link, 1) else {
        return None;
    };
    let place = Placement {
        container_path: PathBuf::from(&d.container_path),
        permissions: d.permissions.clone(),
    };
    let arrival = Arrival {
        kind: n.kind,
        major: n.major,
        minor: n.minor,
        host_path: n.path.clone(),
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        properties: Default::default(),
    };
    Some(given_device(&arrival, &place))
}

fn describe(d: &GivenDevice) -> String {
    let kind = match d.kind {
        NodeKind::Char => 'c',
        NodeKind::Block => 'b',
    };
    format!(
        "{} ({} {kind} {}:{}) at {}",
        d.host_path.display(),
        d.permissions,
        d.major,
        d.minor,
        d.container_path.display()
    )
}

fn device_data(d: &GivenDevice) -> serde_json::Value {
    json!({
        "container_path": d.container_path,
        "host_path": d.host_path,
        "type": d.kind,
        "major": d.major,
        "minor": d.minor,
        "permissions": d.permissions,
    })
}
