//! The update lock's mount: a directory of the container's own under the
//! store, bind-mounted read-only at /run/berth-lock, holding the file
//! `updates.lock`. The app takes a flock on it (read access is enough for
//! flock) while an update would hurt; berth tries the same lock before
//! stopping the container (docs/update.md). Only for containers whose
//! spec follows its tag.

use std::fs;
use std::path::{Path, PathBuf};

use crate::kernel::config::{MountConfig, MountFlags, Propagation};
use crate::supervisor::spec::Spec;

/// Where the container sees the lock's directory.
pub const LOCK_DIR_IN_CONTAINER: &str = "/run/berth-lock";
/// The lock file's name in that directory.
pub const LOCK_FILE: &str = "updates.lock";

/// The host directory of a container's lock, below its own directory.
pub fn lock_dir(base: &Path) -> PathBuf {
    base.join("update-lock")
}

/// The host path of the lock file.
pub fn lock_file(base: &Path) -> PathBuf {
    lock_dir(base).join(LOCK_FILE)
}

/// The mount, the lock file made first; None without `update.policy`.
pub fn update_lock_mount(spec: &Spec, base: &Path) -> Result<Option<MountConfig>, String> {
    if !spec.update.enabled() {
        return Ok(None);
    }
    let dir = lock_dir(base);
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = lock_file(base);
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file)
        .map_err(|e| format!("create {}: {e}", file.display()))?;
    Ok(Some(MountConfig::Bind {
        source: dir,
        target: PathBuf::from(LOCK_DIR_IN_CONTAINER),
        flags: MountFlags {
            read_only: true,
            nosuid: true,
            nodev: true,
            noexec: true,
        },
        propagation: Propagation::Private,
    }))
}
