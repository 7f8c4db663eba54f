//! A container's device rules: deny everything, then allow Docker's list
//! plus runc's always-allowed devices (FACTS.md §2), then the container's
//! own rules (its devices, its extra rules, or everything). The rule types
//! and the one default table; applying them is cgroup v1's devices
//! controller (`device_rules_v1.rs`) or cgroup v2's BPF program
//! (`device_filter.rs`, `device_bpf.rs`). Not the /dev nodes themselves;
//! those are `kernel/devices.rs`.

use std::fmt;
use std::path::Path;

use cgroups_rs::devices::{DevicePermissions, DevicesController};

use super::device_filter::device_program;
use super::{CgroupError, ContainerCgroup, device_bpf};

/// Which devices a rule covers: every device, or character or block ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// What a rule lets the container do: open for reading, for writing,
/// make the node (mknod).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceAccess {
    pub read: bool,
    pub write: bool,
    pub mknod: bool,
}

impl DeviceAccess {
    pub const ALL: DeviceAccess = DeviceAccess {
        read: true,
        write: true,
        mknod: true,
    };

    pub fn is_empty(self) -> bool {
        !(self.read || self.write || self.mknod)
    }

    /// The bits of `self` that `other` lacks.
    pub(super) fn minus(self, other: DeviceAccess) -> DeviceAccess {
        DeviceAccess {
            read: self.read && !other.read,
            write: self.write && !other.write,
            mknod: self.mknod && !other.mknod,
        }
    }

    pub(super) fn union(self, other: DeviceAccess) -> DeviceAccess {
        DeviceAccess {
            read: self.read || other.read,
            write: self.write || other.write,
            mknod: self.mknod || other.mknod,
        }
    }

    pub(super) fn permissions(self) -> Vec<DevicePermissions> {
        [
            (self.read, DevicePermissions::Read),
            (self.write, DevicePermissions::Write),
            (self.mknod, DevicePermissions::MkNod),
        ]
        .into_iter()
        .filter_map(|(on, p)| on.then_some(p))
        .collect()
    }
}

/// "rwm", "r", ...: the letters of devices.allow.
impl fmt::Display for DeviceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, letter) in [(self.read, "r"), (self.write, "w"), (self.mknod, "m")] {
            if on {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// One line of devices.allow; `None` is any number ("*").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: DeviceAccess,
}

impl DeviceRule {
    /// Every device, every access: a privileged container's rule.
    pub const ALLOW_ALL: DeviceRule = DeviceRule {
        kind: DeviceKind::All,
        major: None,
        minor: None,
        access: DeviceAccess::ALL,
    };
}

/// The kernel's (and Docker's) form: "c 188:* rwm", "a *:* rwm".
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        write!(
            f,
            "{kind} {}:{} {}",
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// Whether containers get a devices allow-list: cgroup v1's devices
/// controller, or on cgroup v2 a BPF device program (the kernel loads
/// one: CONFIG_CGROUP_BPF, and berth may).
pub fn device_rules_enforced() -> bool {
    if super::cgroup_v2() {
        device_bpf::device_filter_supported()
    } else {
        cgroups_rs::hierarchies::auto()
            .subsystems()
            .iter()
            .any(|s| matches!(s, cgroups_rs::Subsystem::Devices(_)))
    }
}

/// A rule allowing `access` to the devices it names.
const fn allow(
    kind: DeviceKind,
    major: Option<u32>,
    minor: Option<u32>,
    access: DeviceAccess,
) -> DeviceRule {
    DeviceRule {
        kind,
        major,
        minor,
        access,
    }
}

const MKNOD: DeviceAccess = DeviceAccess {
    read: false,
    write: false,
    mknod: true,
};
const RWM: DeviceAccess = DeviceAccess::ALL;
const CHAR: DeviceKind = DeviceKind::Char;

/// The devices every container may use, on top of "deny everything", on
/// both cgroup versions (v1's allow-list, v2's BPF program). Creating any
/// node (m) is allowed; opening one that is not listed is not.
pub(super) const DEFAULT_RULES: &[DeviceRule] = &[
    allow(CHAR, None, None, MKNOD),
    allow(DeviceKind::Block, None, None, MKNOD),
    allow(CHAR, Some(1), Some(3), RWM),    // null
    allow(CHAR, Some(1), Some(5), RWM),    // zero
    allow(CHAR, Some(1), Some(7), RWM),    // full
    allow(CHAR, Some(1), Some(8), RWM),    // random
    allow(CHAR, Some(1), Some(9), RWM),    // urandom
    allow(CHAR, Some(5), Some(0), RWM),    // tty
    allow(CHAR, Some(5), Some(1), RWM),    // console
    allow(CHAR, Some(5), Some(2), RWM),    // ptmx
    allow(CHAR, Some(136), None, RWM),     // pts
    allow(CHAR, Some(10), Some(200), RWM), // tun
];

impl ContainerCgroup {
    /// The container's device rules, set before any of its processes
    /// joins: the defaults, then `extra`. On cgroup v1 the devices
    /// controller's allow-list, rebuilt from nothing (a cgroup left by a
    /// crashed daemon keeps none of its old rules); on cgroup v2 a BPF
    /// program attached to the cgroup (`device_bpf.rs`) in place of any
    /// left there. Where neither exists (no devices hierarchy mounted, a
    /// kernel without cgroup BPF), nothing: [`device_rules_enforced`] says
    /// so, and launch drops CAP_MKNOD where Landlock is off too.
    pub(super) fn restrict_devices(&self, extra: &[DeviceRule]) -> Result<(), CgroupError> {
        if let Some(devices) = self.cg.controller_of::<DevicesController>() {
            return self.reset_v1_rules(devices, extra);
        }
        if self.v2() && device_bpf::device_filter_supported() {
            return self.install_device_filter(extra);
        }
        Ok(())
    }

    /// Changes a running container's device rules to the defaults plus
    /// `extra`, its whole list as `create_with_devices` took it (with a
    /// hotplugged device added or a removed one gone), without a moment in
    /// which the container has no rules or loses one it keeps: on v1 what
    /// is new is allowed before what was dropped is denied; on v2 the new
    /// program is attached before the old one is detached.
    pub fn replace_device_rules(&self, extra: &[DeviceRule]) -> Result<(), CgroupError> {
        if let Some(devices) = self.cg.controller_of::<DevicesController>() {
            return self.update_v1_rules(devices, extra);
        }
        if self.v2() && device_bpf::device_filter_supported() {
            return self.install_device_filter(extra);
        }
        Ok(())
    }

    /// cgroup v2: the program for the defaults and `extra`, in place of
    /// the cgroup's current one.
    fn install_device_filter(&self, extra: &[DeviceRule]) -> Result<(), CgroupError> {
        install_device_filter(&self.unified_dir(), extra).map_err(|reason| CgroupError::Op {
            op: "install the device filter on",
            path: self.path.clone(),
            reason,
        })
    }
}

/// Attaches the device program for the defaults and `extra` to the cgroup
/// v2 directory `dir`, in place of the device programs it had (new first,
/// then the old ones detached). `ContainerCgroup` does this on a v2 host;
/// this is for a cgroup2 hierarchy mounted anywhere (a hybrid host's
/// /sys/fs/cgroup/unified, in tests).
pub fn install_device_filter(dir: &Path, extra: &[DeviceRule]) -> Result<(), String> {
    let program = device_program(DEFAULT_RULES.iter().chain(extra)).map_err(|e| e.to_string())?;
    device_bpf::replace_device_filter(dir, &program).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_in_the_kernels_form() {
        let rule = DeviceRule {
            kind: DeviceKind::Char,
            major: Some(188),
            minor: None,
            access: DeviceAccess {
                read: true,
                write: false,
                mknod: true,
            },
        };
        assert_eq!(rule.to_string(), "c 188:* rm");
        assert_eq!(DeviceRule::ALLOW_ALL.to_string(), "a *:* rwm");
        assert!(DeviceAccess::default().is_empty());
    }
}
