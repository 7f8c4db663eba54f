//! Garbage collection: `berth rmi` and `berth prune`. Content is live when
//! an image reference or a container's usage record reaches it; everything
//! else (and staging left by dead imports) goes, under the store's
//! exclusive lock, with the space reclaimed reported.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::digest::Digest;
use super::error::ImageError;
use super::oci::{ImageConfig, Manifest, parse_json};
use super::refs::{self, StoreLock};
use super::store::Store;
use super::usage::all_uses;
use crate::fetch::reference::Reference;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct GcReport {
    pub removed_references: Vec<String>,
    pub blobs: usize,
    pub layers: usize,
    pub staging_dirs: usize,
    pub bytes: u64,
}

/// Removes a reference, then collects what nothing else uses. Refuses when
/// a container uses the image, unless `force` (the container keeps its
/// layers either way: usage records keep them live).
pub fn remove_image(store: &Store, reference: &str, force: bool) -> Result<GcReport, ImageError> {
    let name = Reference::parse(reference)?.to_string();
    let guard = refs::lock(store, true)?;
    let table = refs::load(store)?;
    let record = table
        .get(&name)
        .cloned()
        .ok_or_else(|| ImageError::NotFound(name.clone()))?;
    let users: Vec<String> = all_uses(store)?
        .into_iter()
        .filter(|u| u.manifest == record.manifest)
        .map(|u| u.reference)
        .collect();
    if !users.is_empty() && !force {
        return Err(ImageError::invalid(
            format!("image {name}"),
            "a container uses it (remove it anyway with --force)",
        ));
    }
    refs::update_locked(store, &guard, |t| t.remove(&name))?;
    let mut report = collect(store, &guard)?;
    report.removed_references.push(name);
    Ok(report)
}

/// Collects unreferenced blobs and layers, and dead imports' staging.
pub fn prune(store: &Store) -> Result<GcReport, ImageError> {
    let guard = refs::lock(store, true)?;
    collect(store, &guard)
}

fn live_content(store: &Store) -> Result<(HashSet<Digest>, HashSet<Digest>), ImageError> {
    let (mut blobs, mut layers) = (HashSet::new(), HashSet::new());
    for record in refs::load(store)?.values() {
        blobs.insert(record.manifest.clone());
        blobs.insert(record.config.clone());
        // A reference whose manifest cannot be read keeps what it names
        // directly; `store verify` reports it.
        if let Ok(bytes) = store.read_blob(&record.manifest) {
            let manifest: Manifest = parse_json(&bytes, "manifest")?;
            blobs.extend(manifest.layers.iter().map(|l| l.digest.clone()));
        }
        if let Ok(bytes) = store.read_blob(&record.config) {
            let config: ImageConfig = parse_json(&bytes, "config")?;
            layers.extend(config.rootfs.diff_ids);
        }
    }
    for usage in all_uses(store)? {
        blobs.insert(usage.manifest);
        blobs.insert(usage.config);
        layers.extend(usage.layers);
    }
    Ok((blobs, layers))
}

fn collect(store: &Store, _held: &StoreLock) -> Result<GcReport, ImageError> {
    let (live_blobs, live_layers) = live_content(store)?;
    let mut report = GcReport::default();
    for entry in read_dir(&store.blobs_dir())? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if Digest::from_hex(&name).is_some_and(|d| !live_blobs.contains(&d)) {
            report.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).map_err(ImageError::io("remove blob", entry.path()))?;
            report.blobs += 1;
        }
    }
    for entry in read_dir(&store.layers_dir())? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let hex = name.strip_suffix(".json").unwrap_or(&name);
        if Digest::from_hex(hex).is_none_or(|d| live_layers.contains(&d)) {
            continue;
        }
        report.bytes += disk_usage(&entry.path());
        if name.ends_with(".json") {
            fs::remove_file(entry.path())
                .map_err(ImageError::io("remove layer record", entry.path()))?;
        } else {
            fs::remove_dir_all(entry.path())
                .map_err(ImageError::io("remove layer", entry.path()))?;
            report.layers += 1;
        }
    }
    for dir in dead_staging(store)? {
        report.bytes += disk_usage(&dir);
        fs::remove_dir_all(&dir).map_err(ImageError::io("remove staging", &dir))?;
        report.staging_dirs += 1;
    }
    Ok(report)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, ImageError> {
    Ok(fs::read_dir(dir)
        .map_err(ImageError::io("list", dir))?
        .flatten()
        .collect())
}

/// Staging directories (`purpose-PID-N`) whose process is gone.
pub fn dead_staging(store: &Store) -> Result<Vec<std::path::PathBuf>, ImageError> {
    let mut out = Vec::new();
    for entry in read_dir(&store.tmp_dir())? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok());
        let alive = pid
            .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
        if !alive {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Bytes of regular files below `path`, never following a symlink.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| disk_usage(&e.path()))
        .sum()
}
