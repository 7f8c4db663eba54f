//! Import of a docker-archive tarball, what `docker save` writes: either the
//! legacy `<id>/layer.tar` + `<id>.json` form or Docker 25's OCI-shaped one,
//! both described by manifest.json. The archive may itself be gzipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use serde::Deserialize;

use super::digest::Digest;
use super::error::ImageError;
use super::import::{NamedManifest, import_workers, read_json_bytes, stage_image};
use super::layer_stream::BlobInput;
use super::oci::{self, Descriptor, Manifest};
use super::staging::{Expected, Staging};
use super::unpack::{Compression, detect_compression};
use crate::fetch::reference::Reference;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// None: the tarball has no manifest.json but an `oci-layout` — an
/// oci-archive, for oci_archive.rs.
pub fn import_docker_archive(
    staging: &mut Staging<'_>,
    archive: &Path,
    name: Option<&Reference>,
) -> Result<Option<Vec<NamedManifest>>, ImageError> {
    let what = archive.display().to_string();
    let Some((entries, links)) = read_manifest(archive)? else {
        return Ok(None);
    };
    if name.is_some() && entries.len() != 1 {
        return Err(ImageError::invalid(
            &what,
            format!("holds {} images; --name needs exactly one", entries.len()),
        ));
    }
    let resolve = |p: &str| resolve_link(&links, &normalize(p));
    let wanted: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| std::iter::once(&e.config).chain(&e.layers))
        .map(|p| resolve(p))
        .collect();
    let staged = stage_files(staging, archive, &wanted)?;
    let mut out = Vec::new();
    for entry in &entries {
        let lookup = |p: &str| {
            staged.get(&resolve(p)).cloned().ok_or_else(|| {
                ImageError::invalid(
                    &what,
                    format!("manifest.json names {p}, which the archive lacks"),
                )
            })
        };
        let manifest = synthesise_manifest(staging, entry, &lookup)?;
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::invalid(&what, e.to_string()))?;
        let manifest_digest = staging.add_blob_bytes(&bytes, "synthesised manifest")?;
        // The archive is read once, in order: its blobs are staged already.
        let record = stage_image(
            staging,
            &manifest,
            manifest_digest,
            |_, _, _| Ok(()),
            |staging, d| BlobInput::Stored(staging.blob_path(&d.digest)),
            import_workers(),
            &|_| {},
        )?;
        out.extend(
            entry_names(entry, name, &what)?
                .into_iter()
                .map(|reference| NamedManifest {
                    reference,
                    record: record.clone(),
                }),
        );
    }
    Ok(Some(out))
}

/// A file staged from the archive: its digest and size.
type StagedFile = (Digest, u64);

/// An OCI manifest for one manifest.json entry, its config and layers
/// found through `lookup` among the staged files; a layer's media type
/// is sniffed from its first bytes.
fn synthesise_manifest(
    staging: &Staging<'_>,
    entry: &ArchiveEntry,
    lookup: &dyn Fn(&str) -> Result<StagedFile, ImageError>,
) -> Result<Manifest, ImageError> {
    let config = lookup(&entry.config)?;
    let mut layers = Vec::new();
    for l in &entry.layers {
        let (digest, size) = lookup(l)?;
        layers.push(descriptor(
            layer_media_type(staging, &digest)?,
            digest,
            size,
        ));
    }
    Ok(Manifest {
        schema_version: 2,
        media_type: Some(oci::MT_OCI_MANIFEST.into()),
        config: descriptor(oci::MT_OCI_CONFIG, config.0, config.1),
        layers,
    })
}

/// The references to record an entry under: `--name` when given, else
/// its RepoTags, of which there must be at least one.
fn entry_names(
    entry: &ArchiveEntry,
    name: Option<&Reference>,
    what: &str,
) -> Result<Vec<String>, ImageError> {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => entry
            .repo_tags
            .iter()
            .flatten()
            .map(|t| Reference::parse(t).map(|r| r.to_string()))
            .collect::<Result<_, _>>()?,
    };
    if names.is_empty() {
        return Err(ImageError::invalid(
            what,
            "an image in the archive has no RepoTags; pass --name REF",
        ));
    }
    Ok(names)
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

fn layer_media_type(staging: &Staging<'_>, d: &Digest) -> Result<&'static str, ImageError> {
    let path = staging.blob_path(d);
    let mut head = [0u8; 4];
    let n = File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(ImageError::io("read", &path))?;
    Ok(match detect_compression(&head[..n]) {
        Compression::None => oci::MT_OCI_LAYER,
        Compression::Gzip => oci::MT_OCI_LAYER_GZIP,
        Compression::Zstd => oci::MT_OCI_LAYER_ZSTD,
    })
}

pub(super) fn open_archive(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, ImageError> {
    let mut file = BufReader::new(File::open(path).map_err(ImageError::io("open archive", path))?);
    let head =
        std::io::BufRead::fill_buf(&mut file).map_err(ImageError::io("read archive", path))?;
    let reader: Box<dyn Read> = match detect_compression(head) {
        Compression::Gzip => Box::new(GzDecoder::new(file)),
        _ => Box::new(file),
    };
    Ok(tar::Archive::new(reader))
}

pub(super) fn normalize(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// Follows archive-internal symlinks (legacy archives link duplicate
/// layers); a link leaving the archive resolves to nothing.
fn resolve_link(links: &BTreeMap<String, String>, path: &str) -> String {
    let mut cur = path.to_string();
    for _ in 0..8 {
        let Some(target) = links.get(&cur) else { break };
        let base = Path::new(&cur).parent().unwrap_or(Path::new(""));
        let mut parts: Vec<String> = base
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p.to_string()),
            }
        }
        cur = parts.join("/");
    }
    cur
}

type Links = BTreeMap<String, String>;

/// Pass one: manifest.json and the symlink table; None when there is no
/// manifest.json but an `oci-layout`.
fn read_manifest(archive: &Path) -> Result<Option<(Vec<ArchiveEntry>, Links)>, ImageError> {
    let what = archive.display().to_string();
    let bad = |e: std::io::Error| ImageError::invalid(&what, format!("corrupt archive: {e}"));
    let mut tar = open_archive(archive)?;
    let mut manifest = None;
    let mut links = Links::new();
    let mut oci_layout = false;
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = normalize(&entry.path().map_err(bad)?.to_string_lossy());
        if entry.header().entry_type().is_symlink() {
            if let Ok(Some(target)) = entry.link_name() {
                links.insert(path, target.to_string_lossy().into_owned());
            }
        } else if path == "oci-layout" {
            oci_layout = true;
        } else if path == "manifest.json" {
            manifest = Some(read_json_bytes(
                &mut entry,
                &format!("{what}: manifest.json"),
            )?);
        }
    }
    if manifest.is_none() && oci_layout {
        return Ok(None);
    }
    let bytes = manifest.ok_or_else(|| {
        ImageError::invalid(
            &what,
            "neither a docker-archive nor an oci-archive: no manifest.json or oci-layout",
        )
    })?;
    let entries: Vec<ArchiveEntry> = oci::parse_json(&bytes, &format!("{what}: manifest.json"))?;
    if entries.is_empty() {
        return Err(ImageError::invalid(&what, "manifest.json lists no images"));
    }
    Ok(Some((entries, links)))
}

/// Pass two: stream each wanted file into staging. Files named by digest
/// (`blobs/sha256/<hex>`, legacy `<hex>.json`) are verified against it.
fn stage_files(
    staging: &mut Staging<'_>,
    archive: &Path,
    wanted: &BTreeSet<String>,
) -> Result<BTreeMap<String, (Digest, u64)>, ImageError> {
    let what = archive.display().to_string();
    let bad = |e: std::io::Error| ImageError::invalid(&what, format!("corrupt archive: {e}"));
    let mut tar = open_archive(archive)?;
    let mut staged = BTreeMap::new();
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let path = normalize(&entry.path().map_err(bad)?.to_string_lossy());
        if !wanted.contains(&path)
            || !entry.header().entry_type().is_file()
            || staged.contains_key(&path)
        {
            continue;
        }
        let named = digest_in_name(&path);
        let size = entry.size();
        let expected = Expected {
            digest: named.as_ref(),
            size: Some(size),
        };
        let staged_blob = staging.add_blob(entry, expected, &format!("{what}: {path}"))?;
        staged.insert(path, staged_blob);
    }
    Ok(staged)
}

fn digest_in_name(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    let by_dir = path.starts_with("blobs/sha256/");
    (by_dir || file.ends_with(".json"))
        .then(|| Digest::from_hex(hex))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_relative_to_their_directory() {
        let mut links = Links::new();
        links.insert("b/layer.tar".into(), "../a/layer.tar".into());
        assert_eq!(resolve_link(&links, "b/layer.tar"), "a/layer.tar");
        assert_eq!(resolve_link(&links, "c/layer.tar"), "c/layer.tar");
    }

    #[test]
    fn digests_are_read_from_names() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name("abc/layer.tar").is_none());
    }
}
