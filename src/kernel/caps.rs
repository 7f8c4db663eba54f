//! Capability sets: Docker's default set, name parsing, and the drop done
//! in the child before exec.

use std::collections::HashSet;

use caps::{CapSet, Capability};
use nix::errno::Errno;

use super::error::SysError;

/// Docker's default capabilities (moby daemon/pkg/oci/caps/defaults.go).
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Parses "NET_RAW", "CAP_NET_RAW" or "net_raw".
pub fn parse_capability(name: &str) -> Option<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse().ok()
}

/// Empties the bounding set of everything not in `keep`. Needs
/// CAP_SETPCAP, so it runs while the child is still uid 0.
pub fn drop_bounding(keep: &[Capability]) -> Result<(), SysError> {
    let keep: HashSet<Capability> = keep.iter().copied().collect();
    for cap in caps::all() {
        if keep.contains(&cap) || !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            continue;
        }
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|_| SysError::new("drop bounding capability", Errno::EPERM))?;
    }
    Ok(())
}

/// Sets the remaining sets after the uid change: inheritable and ambient
/// empty; for uid 0 permitted = effective = `keep`. A non-root user keeps
/// none (the kernel already cleared them at setresuid), as in Docker.
pub fn set_process_capabilities(keep: &[Capability], uid: u32) -> Result<(), SysError> {
    let keep: caps::CapsHashSet = keep.iter().copied().collect();
    let none = caps::CapsHashSet::new();
    caps::clear(None, CapSet::Ambient)
        .map_err(|_| SysError::new("clear ambient capabilities", Errno::EPERM))?;
    caps::set(None, CapSet::Inheritable, &none)
        .map_err(|_| SysError::new("clear inheritable capabilities", Errno::EPERM))?;
    let (permitted, effective) = if uid == 0 {
        (&keep, &keep)
    } else {
        (&none, &none)
    };
    caps::set(None, CapSet::Effective, effective)
        .map_err(|_| SysError::new("set effective capabilities", Errno::EPERM))?;
    caps::set(None, CapSet::Permitted, permitted)
        .map_err(|_| SysError::new("set permitted capabilities", Errno::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix() {
        assert_eq!(parse_capability("NET_RAW"), Some(Capability::CAP_NET_RAW));
        assert_eq!(
            parse_capability("cap_sys_admin"),
            Some(Capability::CAP_SYS_ADMIN)
        );
        assert_eq!(parse_capability("CAP_CHOWN"), Some(Capability::CAP_CHOWN));
        assert_eq!(parse_capability("NOPE"), None);
    }
}
