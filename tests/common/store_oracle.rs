//! An oracle for the store that shares no code with berth: what an image
//! built by scripts/mkimage.sh must look like once imported or pulled,
//! checked with this file's own sha256 (sha2), gzip reader (flate2) and
//! directory walk. `berth store verify` is berth judging itself; these
//! checks compare the store with what the test built.
//!
//! - every blob under `blobs/sha256/` hashes to its file name;
//! - the image's config blob is there, byte for byte the layout's;
//! - each layer's diff_id (sha256 of the layer tar, inflated here) names
//!   a directory under `layers/sha256/` whose tree equals the directory
//!   the layer was built from: the same paths, kinds, modes, owners, file
//!   contents and link targets.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::layers::sha256_hex;

/// What a layout holds, worked out from its bytes.
pub struct ExpectedImage {
    pub config_hex: String,
    pub config: Vec<u8>,
    /// (diff_id hex, the directory the layer was built from), base first.
    pub layers: Vec<(String, PathBuf)>,
}

fn read_blob(layout: &Path, digest: &str) -> Result<(String, Vec<u8>)> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("digest {digest}"))?
        .to_string();
    let bytes = fs::read(layout.join("blobs/sha256").join(&hex))
        .with_context(|| format!("layout blob {hex}"))?;
    ensure!(
        sha256_hex(&bytes) == hex,
        "layout blob {hex} is not what its name says"
    );
    Ok((hex, bytes))
}

/// The layout's first image (as mkimage.sh writes it: one manifest in
/// index.json), paired with the directories its layers were built from.
pub fn expected_image(layout: &Path, sources: &[&Path]) -> Result<ExpectedImage> {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json without a manifest")?;
    let (_, manifest) = read_blob(layout, manifest_digest)?;
    let manifest: Value = serde_json::from_slice(&manifest)?;
    let config_digest = manifest["config"]["digest"].as_str().context("config")?;
    let (config_hex, config) = read_blob(layout, config_digest)?;
    let config_json: Value = serde_json::from_slice(&config)?;
    let descriptors = manifest["layers"].as_array().context("layers")?;
    ensure!(
        descriptors.len() == sources.len(),
        "{} layers in the layout, {} source directories",
        descriptors.len(),
        sources.len()
    );
    let mut layers = Vec::new();
    for (i, (desc, source)) in descriptors.iter().zip(sources).enumerate() {
        let (_, blob) = read_blob(layout, desc["digest"].as_str().context("digest")?)?;
        let tar = if blob.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut out)?;
            out
        } else {
            blob
        };
        let diff_id = sha256_hex(&tar);
        ensure!(
            config_json["rootfs"]["diff_ids"][i] == format!("sha256:{diff_id}"),
            "layer {i}: the config's diff_id is not the inflated blob's sha256"
        );
        layers.push((diff_id, source.to_path_buf()));
    }
    Ok(ExpectedImage {
        config_hex,
        config,
        layers,
    })
}

/// Every blob in the store hashes to its name; returns how many there are.
pub fn blobs_match_their_names(root: &Path) -> Result<usize> {
    let mut count = 0;
    for e in fs::read_dir(root.join("blobs/sha256"))? {
        let path = e?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let actual = sha256_hex(&fs::read(&path)?);
        ensure!(
            actual == name,
            "blob {name} holds bytes whose sha256 is {actual}"
        );
        count += 1;
    }
    Ok(count)
}

/// relative path -> what it is, for every entry beneath `dir` (not `dir`
/// itself): kind, permission bits, owner, and content hash or link target.
pub fn tree(dir: &Path) -> Result<BTreeMap<PathBuf, String>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) -> Result<()> {
        for e in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
            let path = e?.path();
            let meta = fs::symlink_metadata(&path)?;
            let head = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
            let what = if meta.is_dir() {
                walk(base, &path, out)?;
                format!("dir {head}")
            } else if meta.is_file() {
                format!("file {head} {}", sha256_hex(&fs::read(&path)?))
            } else if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path)?.display())
            } else {
                format!("other {:o} {head}", meta.mode() & 0o170000)
            };
            out.insert(path.strip_prefix(base)?.to_path_buf(), what);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The unpacked layer `diff_id` is the tree of `source`, entry for entry.
pub fn layer_matches(root: &Path, diff_id: &str, source: &Path) -> Result<()> {
    let unpacked = root.join("layers/sha256").join(diff_id);
    ensure!(
        root.join("layers/sha256")
            .join(format!("{diff_id}.json"))
            .is_file(),
        "layer {diff_id} has no record: not complete"
    );
    let (want, got) = (tree(source)?, tree(&unpacked)?);
    if want == got {
        return Ok(());
    }
    let mut diffs: Vec<String> = Vec::new();
    for (path, w) in &want {
        match got.get(path) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{}: built {w}, unpacked {g}", path.display())),
            None => diffs.push(format!("{}: missing ({w})", path.display())),
        }
    }
    for (path, g) in &got {
        if !want.contains_key(path) {
            diffs.push(format!("{}: not in the layer ({g})", path.display()));
        }
    }
    diffs.truncate(20);
    bail!(
        "layer {diff_id} differs from {}:\n  {}",
        source.display(),
        diffs.join("\n  ")
    )
}

/// The store holds `image` whole and uncorrupted (see the module doc).
pub fn assert_store_holds(root: &Path, image: &ExpectedImage) -> Result<()> {
    blobs_match_their_names(root)?;
    let config = fs::read(root.join("blobs/sha256").join(&image.config_hex))
        .with_context(|| format!("config blob {} not in the store", image.config_hex))?;
    ensure!(config == image.config, "the config blob differs");
    for (diff_id, source) in &image.layers {
        layer_matches(root, diff_id, source)?;
    }
    Ok(())
}
