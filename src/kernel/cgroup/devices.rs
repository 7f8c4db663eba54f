//! The cgroup v1 device allow-list: deny everything, then allow Docker's
//! list plus runc's always-allowed devices (FACTS.md §2). Not the /dev
//! nodes themselves; those are `kernel/devices.rs`.

use cgroups_rs::devices::{DevicePermissions, DeviceType, DevicesController};

use super::{CgroupError, ContainerCgroup, describe};

/// The devices a container may use, on top of "deny everything". Creating
/// any node (m) is allowed; opening one that is not listed is not.
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
    /// Device access rules on cgroup v1's devices controller. cgroup v2
    /// has no devices file (it needs a BPF program); there the nodes in the
    /// container's /dev are the only ones it gets, and CAP_MKNOD lets it
    /// make more, so this is a v1-only layer of defence for now.
    pub(super) fn restrict_devices(&self) -> Result<(), CgroupError> {
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
        Ok(())
    }
}
