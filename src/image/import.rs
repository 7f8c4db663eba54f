//! `berth import`: an OCI layout directory, a docker-archive or an
//! oci-archive tarball into the store, as one transaction (see staging.rs).

use std::fs;
use std::io::Read;
use std::path::Path;

use super::docker_archive::import_docker_archive;
use super::error::ImageError;
use super::layer_stream::{BlobInput, Progress};
use super::layout::import_layout;
use super::oci::{Descriptor, ImageConfig, Manifest, parse_json, validate_config};
use super::oci_archive::import_oci_archive;
use super::refs::ImageRecord;
use super::stage_layers::LayerToAdd;
use super::staging::Staging;
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
        match import_docker_archive(&mut staging, path, name.as_ref())? {
            Some(named) => named,
            None => import_oci_archive(&mut staging, path, name.as_ref())?,
        }
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

/// Brings one image's config and layers into `staging`: `fetch_config`
/// makes the config blob available there, `layer_input` says where each
/// layer's bytes come from; the config is checked against the manifest
/// and the layers are streamed in, up to `workers` at once.
pub fn stage_image<'a>(
    staging: &mut Staging<'_>,
    manifest: &Manifest,
    manifest_digest: super::digest::Digest,
    fetch_config: impl FnOnce(&mut Staging<'_>, &Descriptor, &str) -> Result<(), ImageError>,
    layer_input: impl Fn(&Staging<'_>, &Descriptor) -> BlobInput<'a>,
    workers: usize,
    progress: Progress<'_>,
) -> Result<ImageRecord, ImageError> {
    let config_what = format!("config {}", manifest.config.digest);
    fetch_config(staging, &manifest.config, &config_what)?;
    let config_path = staging.blob_path(&manifest.config.digest);
    let config: ImageConfig = parse_json(&read_limited(&config_path)?, &config_what)?;
    validate_config(&config, &config_what, manifest.layers.len())?;
    let layers = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(layer, diff_id)| LayerToAdd {
            blob: layer.digest.clone(),
            size: Some(layer.size),
            diff_id: diff_id.clone(),
            what: format!("layer {}", layer.digest),
            input: layer_input(staging, layer),
        })
        .collect();
    staging.add_layers(layers, workers, progress)?;
    Ok(ImageRecord {
        manifest: manifest_digest,
        config: manifest.config.digest.clone(),
    })
}

/// Layers unpacked at once by an import: decompression and hashing are
/// CPU-bound, so one per core.
pub fn import_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
