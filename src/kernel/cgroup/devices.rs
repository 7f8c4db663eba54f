//! The cgroup v1 device allow-list: deny everything, then allow Docker's
//! list plus runc's always-allowed devices (FACTS.md §2), then the
//! container's own rules (its devices, its extra rules, or everything).
//! Not the /dev nodes themselves; those are `kernel/devices.rs`.

use std::fmt;

use cgroups_rs::devices::{DevicePermissions, DeviceType, DevicesController};

use super::{CgroupError, ContainerCgroup, describe};

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

    fn permissions(self) -> Vec<DevicePermissions> {
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

/// The devices every container may use, on top of "deny everything".
/// Creating any node (m) is allowed; opening one that is not listed is not.
const ALLOWED_DEVICES: &[(DeviceType, i64, i64, &str)] = &[
    (DeviceType::Char, -1, -1, "m"),
    (DeviceType::Block, -1, -1, "m"),
    (DeviceType::Char, 1, 3, "rwm"),    // null
    (DeviceType::Char, 1, 5, "rwm"),    // zero
    (DeviceType::Char, 1, 7, "rwm"),    // full
    (DeviceType::Char, 1, 8, "rwm"),    // random
    (DeviceType::Char, 1, 9, "rwm"),    // urandom
    (DeviceType::Char, 5, 0, "rwm"),    // tty
    (DeviceType::Char, 5, 1, "rwm"),    // console
    (DeviceType::Char, 5, 2, "rwm"),    // ptmx
    (DeviceType::Char, 136, -1, "rwm"), // pts
    (DeviceType::Char, 10, 200, "rwm"), // tun
];

impl ContainerCgroup {
    /// Device access rules on cgroup v1's devices controller, rebuilt from
    /// nothing (a cgroup left by a crashed daemon keeps none of its old
    /// rules): deny all, the defaults, then `extra` in order. cgroup v2
    /// has no devices file (it needs a BPF program); there the nodes in
    /// the container's /dev are the only ones it gets, and CAP_MKNOD lets
    /// it make more, so this is a v1-only layer of defence for now.
    pub(super) fn restrict_devices(&self, extra: &[DeviceRule]) -> Result<(), CgroupError> {
        let Some(devices) = self.cg.controller_of::<DevicesController>() else {
            return Ok(());
        };
        let fail = |e: cgroups_rs::error::Error| CgroupError::Op {
            op: "restrict devices of",
            path: self.path.clone(),
            reason: describe(&e),
        };
        devices
            .deny_device(DeviceType::All, -1, -1, &DevicePermissions::all())
            .map_err(fail)?;
        for (kind, major, minor, perms) in ALLOWED_DEVICES {
            let perms = DevicePermissions::from_str(perms).map_err(fail)?;
            devices
                .allow_device(*kind, *major, *minor, &perms)
                .map_err(fail)?;
        }
        for rule in extra.iter().filter(|r| !r.access.is_empty()) {
            let kind = match rule.kind {
                DeviceKind::All => DeviceType::All,
                DeviceKind::Char => DeviceType::Char,
                DeviceKind::Block => DeviceType::Block,
            };
            let number = |n: Option<u32>| n.map_or(-1, i64::from);
            devices
                .allow_device(
                    kind,
                    number(rule.major),
                    number(rule.minor),
                    &rule.access.permissions(),
                )
                .map_err(fail)?;
        }
        Ok(())
    }
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
