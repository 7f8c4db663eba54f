//! Which images containers use: containers/NAME/image.json, written before
//! a container starts (under the store's shared lock) and read by GC, so
//! nothing a running or configured container uses is ever collected.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::lookup::ResolvedImage;
use super::store::{Store, replace_file, write_atomic};

const RECORD_FILE: &str = "image.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsageRecord {
    pub reference: String,
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

/// Notes that the container whose directory is `container_dir` uses
/// `image`. A record already saying so is left as it is (a restart writes
/// nothing). `durable: false` (an ephemeral `berth run`, which does not
/// outlive the daemon) skips the fsyncs: GC reads the record through the
/// page cache all the same, and after a crash recovery removes the
/// container with its record.
pub fn record_use(
    container_dir: &Path,
    image: &ResolvedImage,
    durable: bool,
) -> Result<(), ImageError> {
    fs::create_dir_all(container_dir).map_err(ImageError::io("create", container_dir))?;
    let record = UsageRecord {
        reference: image.reference.clone(),
        manifest: image.record.manifest.clone(),
        config: image.record.config.clone(),
        layers: image.config.rootfs.diff_ids.clone(),
    };
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| ImageError::invalid("usage record", e.to_string()))?;
    let path = container_dir.join(RECORD_FILE);
    if fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if durable {
        write_atomic(&path, &bytes)
    } else {
        replace_file(&path, &bytes)
    }
}

/// The record of the container whose directory is `container_dir`, if it
/// has a readable one.
pub fn read_use(container_dir: &Path) -> Option<UsageRecord> {
    let bytes = fs::read(container_dir.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every container's record. One that cannot be read is an error, so GC
/// refuses to run rather than collect what that container may use.
pub fn all_uses(store: &Store) -> Result<Vec<UsageRecord>, ImageError> {
    let dir = store.containers_dir();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let path = entry.path().join(RECORD_FILE);
        match fs::read(&path) {
            Ok(bytes) => out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ImageError::invalid(path.display().to_string(), e.to_string()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("read", path)(e)),
        }
    }
    Ok(out)
}
