//! Named volumes for `{"type": "volume"}` mounts: berth's built-in
//! `local` driver (directories under the store) and, through the Docker
//! volume plugin protocol, external drivers (docs/plugins.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::spec::Spec;
use super::spec_hardening::MountSpec;

pub const LOCAL_DRIVER: &str = "local";

/// The host path of each volume the spec mounts, creating local volumes
/// on first use. An unknown driver fails the start with its name.
pub fn mount_volumes(
    store_root: &Path,
    container: &str,
    spec: &Spec,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut paths = BTreeMap::new();
    for m in &spec.mounts {
        let MountSpec::Volume { name, driver, .. } = m else {
            continue;
        };
        let path = if driver == LOCAL_DRIVER {
            local_volume(store_root, name)?
        } else {
            return Err(format!(
                "volume {name}: driver {driver:?} is not available (container {container})"
            ));
        };
        paths.insert(name.clone(), path);
    }
    Ok(paths)
}

/// `ROOT/volumes/NAME/_data`, as Docker lays out its local volumes.
pub fn local_volume(store_root: &Path, name: &str) -> Result<PathBuf, String> {
    let path = store_root.join("volumes").join(name).join("_data");
    fs::create_dir_all(&path)
        .map_err(|e| format!("volume {name}: create {}: {e}", path.display()))?;
    Ok(path)
}
