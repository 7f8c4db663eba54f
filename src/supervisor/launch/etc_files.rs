//! The /etc files a CNI container sees (hosts, resolv.conf, hostname):
//! first versions written before it starts, bind-mounted from its
//! directory; the network attach rewrites them with its address.

use std::path::{Path, PathBuf};

use crate::kernel::config::{MountConfig, MountFlags, Propagation};
use crate::supervisor::plugins::network;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::service::NetworkMode;

/// The /etc files a CNI container gets, bind-mounted from its directory.
const ETC_FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
];

/// Writes first versions of the /etc files (no address yet) and returns
/// the mounts that put them in place; the attach rewrites them before the
/// container mounts anything.
pub fn etc_mounts(spec: &Spec, base: &Path, hostname: &str) -> Result<Vec<MountConfig>, String> {
    if spec.network != NetworkMode::Cni {
        return Ok(Vec::new());
    }
    network::write_etc_files(base, hostname, None, &[], &[])
        .map_err(|e| format!("write /etc files in {}: {e}", base.display()))?;
    Ok(ETC_FILES
        .iter()
        .map(|(file, target)| MountConfig::Bind {
            source: base.join(file),
            target: PathBuf::from(target),
            flags: MountFlags {
                read_only: false,
                nosuid: true,
                nodev: true,
                noexec: true,
            },
            propagation: Propagation::Private,
        })
        .collect())
}
