//! Import of an oci-archive: an OCI image layout in a tarball (what
//! `berth save --format oci` and skopeo's `oci-archive:` write). The
//! layout's files are unpacked into the import's staging area and read
//! from there as a layout directory (layout.rs, which verifies every
//! blob), so an archive costs its size again in staging while it imports.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use super::digest::Digest;
use super::docker_archive::{normalize, open_archive};
use super::error::ImageError;
use super::import::NamedManifest;
use super::layout::import_layout;
use super::staging::Staging;
use crate::fetch::reference::Reference;

pub fn import_oci_archive(
    staging: &mut Staging<'_>,
    archive: &Path,
    name: Option<&Reference>,
) -> Result<Vec<NamedManifest>, ImageError> {
    let dir = staging.dir.join("oci-archive");
    fs::create_dir_all(dir.join("blobs/sha256"))
        .map_err(ImageError::io("create staging directory", &dir))?;
    unpack_layout(archive, &dir)?;
    import_layout(staging, &dir, name)
}

/// Unpacks the layout's own files, and nothing else: `oci-layout`,
/// `index.json` and `blobs/sha256/<hex>`, regular files only, each once.
/// Other entries are skipped, so no name in the archive chooses a path.
fn unpack_layout(archive: &Path, dir: &Path) -> Result<(), ImageError> {
    let what = archive.display().to_string();
    let bad = |e: io::Error| ImageError::invalid(&what, format!("corrupt archive: {e}"));
    let mut tar = open_archive(archive)?;
    let mut seen = BTreeSet::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = normalize(&entry.path().map_err(bad)?.to_string_lossy());
        if !entry.header().entry_type().is_file() || !layout_file(&path) {
            continue;
        }
        if !seen.insert(path.clone()) {
            return Err(ImageError::invalid(&what, format!("{path} appears twice")));
        }
        let target = dir.join(&path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(ImageError::io("create", &target))?;
        io::copy(&mut entry, &mut file).map_err(bad)?;
    }
    Ok(())
}

fn layout_file(path: &str) -> bool {
    match path.strip_prefix("blobs/sha256/") {
        Some(hex) => Digest::from_hex(hex).is_some(),
        None => path == "oci-layout" || path == "index.json",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_layouts_own_names_are_unpacked() {
        let hex = "a".repeat(64);
        assert!(super::layout_file(&format!("blobs/sha256/{hex}")));
        assert!(super::layout_file("index.json"));
        assert!(!super::layout_file("blobs/sha256/../../etc/passwd"));
        assert!(!super::layout_file(&format!("blobs/sha256/{hex}/x")));
        assert!(!super::layout_file("manifest.json"));
    }
}
