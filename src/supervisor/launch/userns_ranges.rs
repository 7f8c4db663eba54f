//! Host id ranges for containers with `"userns": "auto"`: 65536 ids each,
//! one range per container name, remembered in the store so a container
//! keeps its range (and its upper layer's ownership) across restarts.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::image::store::write_atomic;
use crate::kernel::userns::{IdMap, UsernsConfig};

/// Ids per container: a full 16-bit range, as /etc/subuid entries use.
pub const RANGE_SIZE: u32 = 65536;
/// Far above any uid a distribution hands out (and above the
/// 100000-based /etc/subuid ranges of rootless tools).
const FIRST_HOST_ID: u32 = 1 << 30;
const FILE: &str = "userns-ranges.json";

/// The first host id of `name`'s range, allocating the lowest free one.
pub fn range_for(store_root: &Path, name: &str) -> Result<u32, String> {
    let path = store_root.join(FILE);
    let mut ranges: BTreeMap<String, u32> = match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if let Some(start) = ranges.get(name) {
        return Ok(*start);
    }
    let used: Vec<u32> = ranges.values().copied().collect();
    let start = (0u32..)
        .map_while(|slot| slot.checked_mul(RANGE_SIZE)?.checked_add(FIRST_HOST_ID))
        .take_while(|s| s.checked_add(RANGE_SIZE).is_some())
        .find(|s| !used.contains(s))
        .ok_or("no free user namespace range left")?;
    ranges.insert(name.to_string(), start);
    let json = serde_json::to_vec_pretty(&ranges).map_err(|e| e.to_string())?;
    write_atomic(&path, &json).map_err(|e| e.to_string())?;
    Ok(start)
}

/// The same range for uids and gids, container id 0 at `start`.
pub fn auto_config(start: u32) -> UsernsConfig {
    let map = vec![IdMap {
        container_id: 0,
        host_id: start,
        size: RANGE_SIZE,
    }];
    UsernsConfig {
        uid_map: map.clone(),
        gid_map: map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_keeps_its_own_range() {
        let dir = tempfile::tempdir().unwrap();
        let a = range_for(dir.path(), "a").unwrap();
        let b = range_for(dir.path(), "b").unwrap();
        assert_eq!(a, FIRST_HOST_ID);
        assert_eq!(b, FIRST_HOST_ID + RANGE_SIZE);
        assert_eq!(range_for(dir.path(), "a").unwrap(), a);
    }
}
