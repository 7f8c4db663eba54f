//! What confines a container's process (capabilities, seccomp, Landlock,
//! rlimits), a privileged container's lack of it, and the summary of both
//! that `inspect` and the start log line show.

use std::path::Path;

use caps::Capability;

use crate::kernel::cgroup::{DeviceRule, device_rules_enforced};
use crate::kernel::config::{MountConfig, SecurityConfig};
use crate::kernel::landlock::{CONTAINER_ABI_NUMBER, enforced_abi, kernel_abi};
use crate::kernel::seccomp::Filters;
use crate::supervisor::launch::devices::{GivenDevice, landlock_files};
use crate::supervisor::launch::{hardening, seccomp};
use crate::supervisor::spec::Spec;

/// What a container was given, for `inspect` and the start log line.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SecuritySummary {
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// "default", "unconfined" or the profile path, with the number of
    /// filters and BPF instructions installed.
    pub seccomp: String,
    /// The Landlock ABI enforced (0 = none), and what berth asked for.
    pub landlock_abi: u32,
    pub landlock: String,
    pub read_only: bool,
    /// Docker's --privileged: no seccomp, no Landlock, every capability
    /// and host device, /sys and /proc writable.
    pub privileged: bool,
    /// The device nodes made besides the default ones.
    pub devices: Vec<GivenDevice>,
    /// The cgroup device rules added to the default allow-list ("c 1:5
    /// r"), cgroup v1's devices controller or cgroup v2's BPF program;
    /// empty where neither is enforced.
    pub device_rules: Vec<String>,
}

/// The process's confinement for `spec`, and its summary. `devices` are
/// the nodes it gets and `rules` their cgroup rules.
pub fn security_config(
    spec: &Spec,
    config_dir: &Path,
    mounts: &[MountConfig],
    devices: &[GivenDevice],
    rules: &[DeviceRule],
) -> Result<(SecurityConfig, SecuritySummary), String> {
    let mut capabilities = hardening::effective_capabilities(spec);
    hardening::check_capabilities_held(&capabilities)?;
    let landlock = hardening::landlock_config(spec, mounts).map(|mut ll| {
        ll.devices = landlock_files(devices);
        ll
    });
    let landlock_abi = if landlock.is_some() {
        enforced_abi()
    } else {
        0
    };
    // Without device rules (no v1 devices hierarchy, no cgroup BPF) and
    // without Landlock, CAP_MKNOD would let the container make and open
    // any host device node.
    if landlock_abi == 0
        && !device_rules_enforced()
        && !spec.privileged
        && !hardening::explicitly_added(spec, Capability::CAP_MKNOD)
    {
        capabilities.retain(|c| *c != Capability::CAP_MKNOD);
    }
    let seccomp = seccomp::seccomp_filters(spec, config_dir, &capabilities)?;
    let summary = SecuritySummary {
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        no_new_privileges: spec.no_new_privileges,
        seccomp: seccomp_words(spec, seccomp.as_deref()),
        landlock_abi,
        landlock: landlock_words(spec, landlock.is_some(), landlock_abi),
        read_only: spec.read_only,
        privileged: spec.privileged,
        devices: devices.to_vec(),
        device_rules: if device_rules_enforced() {
            rules.iter().map(|r| r.to_string()).collect()
        } else {
            Vec::new()
        },
    };
    let security = SecurityConfig {
        capabilities,
        no_new_privs: spec.no_new_privileges,
        seccomp,
        landlock,
        rlimits: hardening::rlimits(spec),
    };
    Ok((security, summary))
}

/// "default (3 filters, 1630 instructions)", "unconfined", a profile path.
fn seccomp_words(spec: &Spec, filters: Option<&Filters>) -> String {
    match filters {
        Some(f) => format!(
            "{} ({} filters, {} instructions)",
            spec.seccomp,
            f.programs.len(),
            f.instruction_count()
        ),
        None if spec.privileged => "unconfined (privileged)".into(),
        None => spec.seccomp.clone(),
    }
}

/// "ABI 6 (kernel 7, berth 6)", "disabled", "not supported by this kernel".
fn landlock_words(spec: &Spec, wanted: bool, abi: u32) -> String {
    match (wanted, abi) {
        (false, _) if spec.privileged => "disabled (privileged)".into(),
        (false, _) => "disabled".into(),
        (true, 0) => "not supported by this kernel".into(),
        (true, abi) => format!(
            "ABI {abi} (kernel {}, berth {CONTAINER_ABI_NUMBER})",
            kernel_abi()
        ),
    }
}
