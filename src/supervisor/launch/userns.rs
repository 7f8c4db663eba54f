//! A container's user namespace at launch: the id maps from the spec
//! ("auto" or explicit), and an upper layer that belongs to the mapped
//! root (reset when the mapping changes).

use std::fs;
use std::path::Path;

use crate::kernel::userns::{IdMap, UsernsConfig};
use crate::supervisor::launch::ContainerDirs;
use crate::supervisor::launch::userns_ranges;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::hardening::{IdMapSpec, UsernsSpec};

pub fn userns_config(
    spec: &Spec,
    name: &str,
    store_root: &Path,
) -> Result<Option<UsernsConfig>, String> {
    let to_maps = |v: &[IdMapSpec]| -> Vec<IdMap> {
        v.iter()
            .map(|m| IdMap {
                container_id: m.container_id,
                host_id: m.host_id,
                size: m.size,
            })
            .collect()
    };
    Ok(match &spec.userns {
        None => None,
        Some(UsernsSpec::Auto) => Some(userns_ranges::auto_config(userns_ranges::range_for(
            store_root, name,
        )?)),
        Some(UsernsSpec::Maps { uid_map, gid_map }) => Some(UsernsConfig {
            uid_map: to_maps(uid_map),
            gid_map: to_maps(gid_map),
        }),
    })
}

/// The upper layer holds files under the ids of whichever mapping wrote
/// them; a container whose mapping changed starts from a fresh upper
/// layer rather than one full of ids it cannot use. With a user namespace
/// the upper directory belongs to the container's mapped root.
pub fn prepare_upper(dirs: &ContainerDirs, userns: Option<&UsernsConfig>) -> Result<(), String> {
    let record = dirs.base.join("idmap");
    let current = match userns {
        Some(u) => format!("uid {:?} gid {:?}\n", u.uid_map, u.gid_map),
        None => "host\n".to_string(),
    };
    let previous = fs::read_to_string(&record).unwrap_or_else(|_| "host\n".into());
    if previous != current {
        for d in [dirs.upper(), dirs.work()] {
            fs::remove_dir_all(&d).map_err(|e| format!("reset {}: {e}", d.display()))?;
            fs::create_dir_all(&d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        fs::write(&record, &current).map_err(|e| format!("write {}: {e}", record.display()))?;
    }
    let (uid, gid) = match userns {
        Some(u) => (u.host_uid(0), u.host_gid(0)),
        None => (Some(0), Some(0)),
    };
    std::os::unix::fs::lchown(dirs.upper(), uid, gid)
        .map_err(|e| format!("chown {}: {e}", dirs.upper().display()))
}
