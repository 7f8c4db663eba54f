//! Reading the store for running and listing: an image by reference, with
//! its config and the layer directories an overlay needs.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::error::ImageError;
use super::import::read_limited;
use super::oci::{ImageConfig, Manifest, parse_json, validate_config};
use super::refs::{self, ImageRecord};
use super::store::Store;
use crate::fetch::reference::Reference;

#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub reference: String,
    pub record: ImageRecord,
    pub config: ImageConfig,
    /// Unpacked layers, topmost first (overlayfs lowerdir order).
    pub layer_dirs: Vec<PathBuf>,
    /// Bytes of the config and layer blobs.
    pub size: u64,
}

pub fn resolve(store: &Store, reference: &str) -> Result<ResolvedImage, ImageError> {
    let normalized = Reference::parse(reference)?.to_string();
    let table = refs::load(store)?;
    let record = table
        .get(&normalized)
        .cloned()
        .ok_or_else(|| ImageError::NotFound(normalized.clone()))?;
    load_image(store, normalized, record)
}

fn load_image(
    store: &Store,
    reference: String,
    record: ImageRecord,
) -> Result<ResolvedImage, ImageError> {
    let manifest: Manifest = parse_json(
        &store.read_blob(&record.manifest)?,
        &format!("manifest {}", record.manifest),
    )?;
    let config_path = store.blob_path(&record.config);
    let config: ImageConfig = parse_json(
        &read_limited(&config_path)?,
        &format!("config {}", record.config),
    )?;
    validate_config(
        &config,
        &format!("config {}", record.config),
        manifest.layers.len(),
    )?;
    let mut layer_dirs = Vec::with_capacity(config.rootfs.diff_ids.len());
    for diff_id in config.rootfs.diff_ids.iter().rev() {
        let dir = store.layer_path(diff_id);
        if !store.has_layer(diff_id) {
            return Err(ImageError::invalid(
                format!("image {reference}"),
                format!("layer {diff_id} is missing from the store"),
            ));
        }
        layer_dirs.push(dir);
    }
    let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
    Ok(ResolvedImage {
        reference,
        record,
        config,
        layer_dirs,
        size,
    })
}

/// Every named image, sorted by reference.
pub fn list(store: &Store) -> Result<Vec<ResolvedImage>, ImageError> {
    refs::load(store)?
        .into_iter()
        .map(|(reference, record)| load_image(store, reference, record))
        .collect()
}

pub fn image_id(record: &ImageRecord) -> &Digest {
    &record.config
}

/// Reads `path` (relative, e.g. "etc/passwd") as the merged image shows it:
/// from the topmost layer that has it, never through a symlink, and not at
/// all when a higher layer whited it out.
pub fn read_image_file(layer_dirs: &[PathBuf], path: &Path, max_bytes: u64) -> Option<Vec<u8>> {
    for layer in layer_dirs {
        let full = layer.join(path);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_char_device() => return None, // whiteout
            Ok(m) if m.is_file() && m.len() <= max_bytes && !has_symlink_parent(layer, path) => {
                return fs::read(&full).ok();
            }
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

fn has_symlink_parent(layer: &Path, path: &Path) -> bool {
    let mut cur = layer.to_path_buf();
    let parents: Vec<_> = path
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    parents.into_iter().any(|c| {
        cur.push(c);
        fs::symlink_metadata(&cur)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
    })
}
