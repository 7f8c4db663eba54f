//! Import of an OCI image layout directory (oci-layout, index.json,
//! blobs/sha256/…), as skopeo, umoci and buildah write it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::digest::Digest;
use super::error::ImageError;
use super::import::{MAX_JSON_BYTES, NamedManifest, import_workers, read_limited, stage_image};
use super::layer_stream::{Progress, RangeFetch};
use super::oci::{self, Descriptor, Index, parse_json};
use super::staging::{Expected, Staging};
use crate::fetch::reference::Reference;

/// Copies the images named by `dir`'s index.json into `staging`, returning
/// the reference each should get.
pub fn import_layout(
    staging: &mut Staging<'_>,
    dir: &Path,
    name: Option<&Reference>,
) -> Result<Vec<NamedManifest>, ImageError> {
    check_layout_version(dir)?;
    let index_path = dir.join("index.json");
    let index: Index = parse_json(
        &read_limited(&index_path)?,
        &index_path.display().to_string(),
    )?;
    let mut candidates = Vec::new();
    for desc in &index.manifests {
        collect_manifests(dir, desc, desc, &mut candidates, 0)?;
    }
    let chosen = choose(candidates, name, dir)?;
    let mut out = Vec::new();
    for (reference, desc) in chosen {
        let what = format!("manifest {} in {}", desc.digest, dir.display());
        let bytes = copy_blob(staging, dir, &desc, &what)?;
        let manifest = parse_json(&bytes, &what)?;
        let source = LayoutBlobs { dir };
        let record = stage_image(
            staging,
            &manifest,
            desc.digest.clone(),
            |staging, d: &Descriptor, what: &str| copy_blob(staging, dir, d, what).map(|_| ()),
            |staging, d: &Descriptor| staging.blob_input(&d.digest, &source),
            import_workers(),
            &|_| {},
        )?;
        out.push(NamedManifest { reference, record });
    }
    Ok(out)
}

fn check_layout_version(dir: &Path) -> Result<(), ImageError> {
    let path = dir.join("oci-layout");
    let v: serde_json::Value = parse_json(&read_limited(&path)?, &path.display().to_string())?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(ver) if ver.starts_with("1.") => Ok(()),
        other => Err(ImageError::invalid(
            path.display().to_string(),
            format!("unsupported imageLayoutVersion {other:?}"),
        )),
    }
}

const MAX_INDEX_DEPTH: usize = 4;

/// Follows nested indexes down to manifests for this machine's platform,
/// keeping the top-level descriptor (which carries the name annotations).
fn collect_manifests(
    dir: &Path,
    top: &Descriptor,
    desc: &Descriptor,
    out: &mut Vec<(Descriptor, Descriptor)>,
    depth: usize,
) -> Result<(), ImageError> {
    if !platform_matches(desc) {
        return Ok(());
    }
    match desc.media_type.as_str() {
        oci::MT_OCI_MANIFEST | oci::MT_DOCKER_MANIFEST => out.push((top.clone(), desc.clone())),
        oci::MT_OCI_INDEX | oci::MT_DOCKER_LIST if depth < MAX_INDEX_DEPTH => {
            let what = format!("index {} in {}", desc.digest, dir.display());
            let bytes = read_blob_file(dir, desc, &what)?;
            let nested: Index = parse_json(&bytes, &what)?;
            for d in &nested.manifests {
                collect_manifests(dir, top, d, out, depth + 1)?;
            }
        }
        // Unknown media types in an index must be skipped, not refused.
        _ => {}
    }
    Ok(())
}

fn platform_matches(desc: &Descriptor) -> bool {
    let host = oci::host_platform();
    desc.platform
        .as_ref()
        .is_none_or(|p| p.os == host.os && p.architecture == host.architecture)
}

fn annotated_name(top: &Descriptor) -> Option<Reference> {
    let full = top.annotations.get(oci::ANNOTATION_IMAGE_NAME);
    let tag = top.annotations.get(oci::ANNOTATION_REF_NAME);
    full.or(tag)
        .and_then(|n| Reference::parse(n).ok())
        .filter(|_| {
            // A bare tag ("latest") parses as docker.io/library/latest: not a name.
            full.is_some() || tag.is_some_and(|t| t.contains('/'))
        })
}

fn choose(
    candidates: Vec<(Descriptor, Descriptor)>,
    name: Option<&Reference>,
    dir: &Path,
) -> Result<Vec<(String, Descriptor)>, ImageError> {
    let what = dir.display().to_string();
    if candidates.is_empty() {
        return Err(ImageError::invalid(
            what,
            "index.json lists no image for this platform",
        ));
    }
    if let Some(name) = name {
        let tag = name.tag.as_deref().unwrap_or("latest");
        let matching: Vec<_> = candidates
            .iter()
            .filter(|(top, _)| {
                annotated_name(top).as_ref() == Some(name)
                    || top
                        .annotations
                        .get(oci::ANNOTATION_REF_NAME)
                        .map(String::as_str)
                        == Some(tag)
            })
            .collect();
        let pick = match (matching.as_slice(), candidates.len()) {
            ([one], _) => (*one).clone(),
            ([], 1) => candidates[0].clone(),
            _ => {
                return Err(ImageError::invalid(
                    what,
                    format!("several images in the layout; none is clearly {name}"),
                ));
            }
        };
        return Ok(vec![(name.to_string(), pick.1)]);
    }
    candidates
        .into_iter()
        .map(|(top, m)| match annotated_name(&top) {
            Some(r) => Ok((r.to_string(), m)),
            None => Err(ImageError::invalid(
                &what,
                "the layout does not name its image; pass --name REF",
            )),
        })
        .collect()
}

/// Bytes read from a layout's blob at once (io::copy's 8 KiB would mean
/// a pipe write, and a wake-up of the helper, per 8 KiB).
const COPY_BUFFER_BYTES: usize = 1 << 20;

/// A layout's blobs as a source for layer streams (copied into the
/// staging area as they are unpacked).
struct LayoutBlobs<'d> {
    dir: &'d Path,
}

impl RangeFetch for LayoutBlobs<'_> {
    fn fetch(
        &self,
        blob: &Digest,
        size: u64,
        offset: u64,
        out: &mut dyn Write,
        _progress: Progress<'_>,
    ) -> Result<(), ImageError> {
        let path = blob_file(self.dir, blob);
        let mut file = File::open(&path).map_err(ImageError::io("open blob", &path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(ImageError::io("seek blob", &path))?;
        // One more byte than declared: a longer file is caught by the size check.
        let mut rest = file.take(size.saturating_sub(offset).saturating_add(1));
        let mut buf = vec![0u8; COPY_BUFFER_BYTES];
        loop {
            let n = match rest.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ImageError::io("read blob", &path)(e)),
            };
            out.write_all(&buf[..n])
                .map_err(ImageError::io("copy blob", &path))?;
        }
    }
}

fn blob_file(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

fn read_blob_file(dir: &Path, desc: &Descriptor, what: &str) -> Result<Vec<u8>, ImageError> {
    if desc.size > MAX_JSON_BYTES {
        return Err(ImageError::invalid(
            what,
            format!("{} bytes is too large for a JSON document", desc.size),
        ));
    }
    let bytes = fs::read(blob_file(dir, &desc.digest))
        .map_err(ImageError::io("read", blob_file(dir, &desc.digest)))?;
    let actual = Digest::of_bytes(&bytes);
    if actual != desc.digest {
        return Err(ImageError::DigestMismatch {
            what: what.into(),
            expected: desc.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

/// Streams one blob into staging, verified against its descriptor; returns
/// its bytes only when it is small JSON (manifest, config), else empty.
fn copy_blob(
    staging: &mut Staging<'_>,
    dir: &Path,
    desc: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, ImageError> {
    let path = blob_file(dir, &desc.digest);
    let file = File::open(&path).map_err(ImageError::io("open blob", &path))?;
    let expected = Expected {
        digest: Some(&desc.digest),
        size: Some(desc.size),
    };
    staging.add_blob(file, expected, what)?;
    if desc.size <= MAX_JSON_BYTES && !desc.media_type.contains("layer") {
        return fs::read(staging.blob_path(&desc.digest))
            .map_err(ImageError::io("read", staging.blob_path(&desc.digest)));
    }
    Ok(Vec::new())
}
