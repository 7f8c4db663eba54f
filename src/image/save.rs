//! `berth save`: images from the store into one archive that `berth
//! import`, `docker load`, `podman load` and skopeo read — the way images
//! travel to a device without network. The layer blobs are the store's
//! own (compressed as pulled), re-verified as they are written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::ImageError;
use super::oci::{self, Descriptor, Manifest, parse_json};
use super::refs::{self, ImageRecord};
use super::save_archive::{
    ArchiveDocs, BlobRef, DockerEntry, blob_name, index_json, verify_blobs, write_archive,
};
use super::store::{Store, sync_dir};
use crate::fetch::reference::Reference;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// Docker 25's archive: an OCI layout plus manifest.json.
    Docker,
    /// An oci-archive: the OCI layout alone, tarred.
    Oci,
}

impl SaveFormat {
    pub fn parse(text: &str) -> Option<SaveFormat> {
        match text {
            "docker" | "docker-archive" => Some(SaveFormat::Docker),
            "oci" | "oci-archive" => Some(SaveFormat::Oci),
            _ => None,
        }
    }
}

/// One reference saved, and the image it names.
#[derive(Debug, Clone)]
pub struct SavedImage {
    pub reference: String,
    pub record: ImageRecord,
}

/// One image (several references may name it), read from the store.
struct Image {
    references: Vec<String>,
    record: ImageRecord,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
}

/// Writes `references` to `dest`: to a temporary file beside it, renamed
/// over `dest` only once the archive is complete and fsynced, so a failed
/// save leaves no partial archive (and an older `dest` untouched).
pub fn save_to_path(
    store: &Store,
    references: &[String],
    format: SaveFormat,
    dest: &Path,
) -> Result<Vec<SavedImage>, ImageError> {
    if dest.is_dir() {
        return Err(ImageError::invalid(
            dest.display().to_string(),
            "is a directory; -o names the archive file to write",
        ));
    }
    let _lock = refs::lock(store, false)?;
    let images = read_images(store, references)?;
    let (docs, blobs) = archive_contents(&images, format)?;
    let (tmp, file) = TempOutput::create(dest)?;
    let file = write_archive(store, &docs, &blobs, BufWriter::new(file), dest)?;
    let file = file
        .into_inner()
        .map_err(|e| ImageError::io("write archive", dest)(e.into_error()))?;
    file.sync_all().map_err(ImageError::io("fsync", dest))?;
    tmp.persist()?;
    Ok(saved(images))
}

/// Writes `references` to `out` (stdout): every blob is verified first,
/// since bytes already written cannot be taken back.
pub fn save_to_writer(
    store: &Store,
    references: &[String],
    format: SaveFormat,
    out: impl Write,
) -> Result<Vec<SavedImage>, ImageError> {
    let _lock = refs::lock(store, false)?;
    let images = read_images(store, references)?;
    let (docs, blobs) = archive_contents(&images, format)?;
    verify_blobs(store, &blobs)?;
    let dest = Path::new("standard output");
    let mut out = write_archive(store, &docs, &blobs, BufWriter::new(out), dest)?;
    out.flush().map_err(ImageError::io("write archive", dest))?;
    Ok(saved(images))
}

fn saved(images: Vec<Image>) -> Vec<SavedImage> {
    images
        .into_iter()
        .flat_map(|i| {
            let record = i.record;
            i.references.into_iter().map(move |reference| SavedImage {
                reference,
                record: record.clone(),
            })
        })
        .collect()
}

/// The images `references` name, each once, in the order first named.
fn read_images(store: &Store, references: &[String]) -> Result<Vec<Image>, ImageError> {
    if references.is_empty() {
        return Err(ImageError::invalid("save", "no image named"));
    }
    let table = refs::load(store)?;
    let mut images: Vec<Image> = Vec::new();
    for reference in references {
        let name = Reference::parse(reference)?.to_string();
        let record = table
            .get(&name)
            .cloned()
            .ok_or_else(|| ImageError::NotFound(name.clone()))?;
        if let Some(image) = images.iter_mut().find(|i| i.record == record) {
            if !image.references.contains(&name) {
                image.references.push(name);
            }
            continue;
        }
        let manifest_bytes = store.read_blob(&record.manifest)?;
        let manifest: Manifest =
            parse_json(&manifest_bytes, &format!("manifest {}", record.manifest))?;
        images.push(Image {
            references: vec![name],
            record,
            manifest,
            manifest_bytes,
        });
    }
    Ok(images)
}

/// The archive's documents and the blobs (configs and layers, each once).
fn archive_contents(
    images: &[Image],
    format: SaveFormat,
) -> Result<(ArchiveDocs, Vec<BlobRef>), ImageError> {
    let mut blobs = BTreeSet::new();
    let mut index = Vec::new();
    let mut entries = Vec::new();
    let mut manifests = BTreeMap::new();
    for image in images {
        let m = &image.manifest;
        blobs.insert(BlobRef {
            digest: m.config.digest.clone(),
            size: m.config.size,
        });
        blobs.extend(m.layers.iter().map(|l| BlobRef {
            digest: l.digest.clone(),
            size: l.size,
        }));
        manifests.insert(image.record.manifest.clone(), image.manifest_bytes.clone());
        for reference in &image.references {
            index.push(index_entry(image, reference));
        }
        entries.push(DockerEntry {
            config: blob_name(&m.config.digest),
            repo_tags: image
                .references
                .iter()
                .filter(|r| !r.contains('@'))
                .cloned()
                .collect(),
            layers: m.layers.iter().map(|l| blob_name(&l.digest)).collect(),
        });
    }
    let docker_manifest = match format {
        SaveFormat::Docker => Some(
            serde_json::to_vec(&entries)
                .map_err(|e| ImageError::invalid("manifest.json", e.to_string()))?,
        ),
        SaveFormat::Oci => None,
    };
    let docs = ArchiveDocs {
        index: index_json(index)?,
        docker_manifest,
        manifests: manifests.into_iter().collect(),
    };
    Ok((docs, blobs.into_iter().collect()))
}

/// index.json's entry for one reference: containerd's full-name
/// annotation, and the OCI ref.name (the full name too, which skopeo,
/// podman and `berth import` all read; a digest is not a valid ref.name).
fn index_entry(image: &Image, reference: &str) -> Descriptor {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        oci::ANNOTATION_IMAGE_NAME.to_string(),
        reference.to_string(),
    );
    if !reference.contains('@') {
        annotations.insert(oci::ANNOTATION_REF_NAME.to_string(), reference.to_string());
    }
    Descriptor {
        media_type: image
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| oci::MT_OCI_MANIFEST.into()),
        digest: image.record.manifest.clone(),
        size: image.manifest_bytes.len() as u64,
        annotations,
        platform: None,
    }
}

/// A hidden temporary file beside the destination, removed unless
/// `persist` renames it into place.
struct TempOutput {
    path: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl TempOutput {
    fn create(dest: &Path) -> Result<(TempOutput, File), ImageError> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        let name = dest
            .file_name()
            .ok_or_else(|| ImageError::invalid(dest.display().to_string(), "not a file name"))?;
        let tmp_name = format!(".{}.save-{}", name.to_string_lossy(), std::process::id());
        let path = dir.map_or_else(|| PathBuf::from(&tmp_name), |d| d.join(&tmp_name));
        let file = File::create(&path).map_err(ImageError::io("create", &path))?;
        let tmp = TempOutput {
            path,
            dest: dest.to_path_buf(),
            done: false,
        };
        Ok((tmp, file))
    }

    fn persist(mut self) -> Result<(), ImageError> {
        fs::rename(&self.path, &self.dest)
            .map_err(ImageError::io("rename into place", &self.dest))?;
        self.done = true;
        let dir = self.dest.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(dir.unwrap_or(Path::new(".")))
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;

    fn blob_digests(images: &[Image]) -> Vec<Digest> {
        archive_contents(images, SaveFormat::Docker)
            .map(|(_, b)| b.into_iter().map(|b| b.digest).collect())
            .unwrap_or_default()
    }

    fn image(config: &[u8], layers: &[&[u8]], refs: &[&str]) -> Image {
        let d = |b: &[u8], mt: &str| Descriptor {
            media_type: mt.into(),
            digest: Digest::of_bytes(b),
            size: b.len() as u64,
            annotations: BTreeMap::new(),
            platform: None,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MT_OCI_MANIFEST.into()),
            config: d(config, oci::MT_OCI_CONFIG),
            layers: layers
                .iter()
                .map(|l| d(l, oci::MT_OCI_LAYER_GZIP))
                .collect(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        Image {
            references: refs.iter().map(|r| r.to_string()).collect(),
            record: ImageRecord {
                manifest: Digest::of_bytes(&manifest_bytes),
                config: Digest::of_bytes(config),
            },
            manifest,
            manifest_bytes,
        }
    }

    #[test]
    fn shared_layers_are_written_once_and_every_reference_is_named() {
        let images = [
            image(
                b"c1",
                &[b"base", b"top1"],
                &["localhost/a:1", "localhost/a:2"],
            ),
            image(b"c2", &[b"base", b"top2"], &["localhost/b@sha256:0"]),
        ];
        assert_eq!(blob_digests(&images).len(), 5);
        let (docs, _) = archive_contents(&images, SaveFormat::Docker).unwrap();
        let entries: serde_json::Value =
            serde_json::from_slice(docs.docker_manifest.as_ref().unwrap()).unwrap();
        assert_eq!(
            entries[0]["RepoTags"],
            serde_json::json!(["localhost/a:1", "localhost/a:2"])
        );
        assert_eq!(entries[1]["RepoTags"], serde_json::json!([]));
        let index: oci::Index = serde_json::from_slice(&docs.index).unwrap();
        assert_eq!(index.manifests.len(), 3);
        assert_eq!(
            index.manifests[1].annotations[oci::ANNOTATION_REF_NAME],
            "localhost/a:2"
        );
        assert!(
            !index.manifests[2]
                .annotations
                .contains_key(oci::ANNOTATION_REF_NAME)
        );
        let (docs, _) = archive_contents(&images, SaveFormat::Oci).unwrap();
        assert!(docs.docker_manifest.is_none());
    }
}
