//! `berth import`: an OCI layout directory or a docker-archive tarball into
//! the store, as one transaction (see staging.rs).

use std::fs;
use std::io::Read;
use std::path::Path;

use super::docker_archive::import_docker_archive;
use super::error::ImageError;
use super::layout::import_layout;
use super::oci::{Descriptor, ImageConfig, Manifest, parse_json, validate_config};
use super::refs::ImageRecord;
use super::staging::{LayerToAdd, Staging};
use super::store::Store;
use crate::fetch::reference::Reference;

/// Manifests, indexes and configs are small; anything larger is refused
/// rather than read into memory.
pub const MAX_JSON_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone)]
pub struct NamedManifest {
    pub reference: String,
    pub record: ImageRecord,
}

/// Imports `path` and returns what was named. With `name`, the image gets
/// that reference instead of the one the archive carries.
pub fn import_path(
    store: &Store,
    path: &Path,
    name: Option<&str>,
) -> Result<Vec<NamedManifest>, ImageError> {
    let name = name.map(Reference::parse).transpose()?;
    let meta = fs::metadata(path).map_err(ImageError::io("stat", path))?;
    let mut staging = Staging::new(store)?;
    let named = if meta.is_dir() {
        import_layout(&mut staging, path, name.as_ref())?
    } else {
        import_docker_archive(&mut staging, path, name.as_ref())?
    };
    let refs = named
        .iter()
        .map(|n| (n.reference.clone(), n.record.clone()))
        .collect();
    staging.commit(refs)?;
    Ok(named)
}

/// Reads a small JSON file, refusing one over `MAX_JSON_BYTES`.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, ImageError> {
    let file = fs::File::open(path).map_err(ImageError::io("open", path))?;
    read_json_bytes(file, &path.display().to_string()).map_err(|e| match e {
        ImageError::Io { op, source, .. } => ImageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        },
        other => other,
    })
}

pub fn read_json_bytes(reader: impl Read, what: &str) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::io("read", what))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(ImageError::invalid(
            what,
            format!("larger than {MAX_JSON_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Brings one image's config and layers into `staging`, verifies the
/// config against the manifest and unpacks every layer. `fetch` makes a
/// blob available in staging (copying it from the source).
pub fn stage_image(
    staging: &mut Staging<'_>,
    manifest: &Manifest,
    manifest_digest: super::digest::Digest,
    mut fetch: impl FnMut(&mut Staging<'_>, &Descriptor, &str) -> Result<(), ImageError>,
) -> Result<ImageRecord, ImageError> {
    let config_what = format!("config {}", manifest.config.digest);
    fetch(staging, &manifest.config, &config_what)?;
    let config_path = staging.blob_path(&manifest.config.digest);
    let config: ImageConfig = parse_json(&read_limited(&config_path)?, &config_what)?;
    validate_config(&config, &config_what, manifest.layers.len())?;
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let what = format!("layer {}", layer.digest);
        fetch(staging, layer, &what)?;
        layers.push(LayerToAdd {
            blob: layer.digest.clone(),
            diff_id: diff_id.clone(),
            what,
        });
    }
    staging.add_layers(&layers)?;
    Ok(ImageRecord {
        manifest: manifest_digest,
        config: manifest.config.digest.clone(),
    })
}
