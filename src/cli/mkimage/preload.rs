//! The images an image boots with: imported into a store that becomes
//! the image's /var/lib/berth — from an OCI layout or an archive by path,
//! or from the local store by reference (saved to an archive and imported
//! again, so the same verified transaction brings every image in). Each
//! must be for the target's platform; for an initramfs the layers'
//! extended attributes must be none, since a cpio archive cannot carry
//! them (a disk image's ext4 can).

use std::path::{Path, PathBuf};

use super::arch::Arch;
use crate::fetch::reference::Reference;
use crate::image::Store;
use crate::image::import::import_path;
use crate::image::lookup::{ResolvedImage, list};
use crate::image::save::{SaveFormat, save_to_path};

/// Brings every `--image` into `store`; `host_root` is the local store
/// references are read from, `work` a scratch directory.
pub fn preload(
    store: &Store,
    images: &[String],
    host_root: &Path,
    work: &Path,
) -> Result<Vec<String>, String> {
    let mut named = Vec::new();
    for (n, image) in images.iter().enumerate() {
        let path = Path::new(image);
        let imported = if path.exists() {
            import_path(store, path, None).map_err(|e| format!("--image {image}: {e}"))?
        } else {
            let archive = from_local_store(image, host_root, &work.join(format!("image-{n}.tar")))?;
            let imported = import_path(store, &archive, Some(image));
            let _ = std::fs::remove_file(&archive);
            imported.map_err(|e| format!("--image {image}: {e}"))?
        };
        named.extend(imported.into_iter().map(|i| i.reference));
    }
    Ok(named)
}

/// Saves `reference` from the store at `root` to `archive`.
fn from_local_store(reference: &str, root: &Path, archive: &Path) -> Result<PathBuf, String> {
    let not_found = || {
        format!(
            "--image {reference}: no such file, and not an image in the store {} (berth images --root {0})",
            root.display()
        )
    };
    Reference::parse(reference)
        .map_err(|e| format!("--image {reference}: no such file, and not a reference: {e}"))?;
    // Opening a store creates its directories: look before touching it.
    if !root.join("images/refs.json").is_file() {
        return Err(not_found());
    }
    let store = Store::open(root).map_err(|e| e.to_string())?;
    match save_to_path(
        &store,
        &[reference.to_string()],
        SaveFormat::Docker,
        archive,
    ) {
        Ok(_) => Ok(archive.to_path_buf()),
        Err(crate::image::ImageError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(format!("--image {reference}: {e}")),
    }
}

/// Every image in `store`, refused unless its platform is `linux/arch`.
pub fn check_platforms(store: &Store, arch: &Arch) -> Result<Vec<ResolvedImage>, String> {
    let images = list(store).map_err(|e| e.to_string())?;
    for i in &images {
        let (os, a) = (&i.config.os, &i.config.architecture);
        if (!os.is_empty() && os != "linux") || (!a.is_empty() && a != arch) {
            return Err(format!(
                "image {} is for {os}/{a} but the kernel is linux/{arch}",
                i.reference
            ));
        }
    }
    Ok(images)
}

/// Refuses a layer holding extended attributes (file capabilities, an
/// overlayfs opaque marker): the kernel unpacks an initramfs without them,
/// and the image would run differently from what was built.
pub fn check_no_xattrs(images: &[ResolvedImage]) -> Result<(), String> {
    for image in images {
        for layer in &image.layer_dirs {
            if let Some((file, name)) = first_xattr(layer)? {
                return Err(format!(
                    "image {}: {} has the extended attribute {name}, which an initramfs cannot carry; build --format disk, or put the image in the config's images/ directory instead (imported at boot: docs/config.md)",
                    image.reference,
                    file.display()
                ));
            }
        }
    }
    Ok(())
}

fn first_xattr(dir: &Path) -> Result<Option<(PathBuf, String)>, String> {
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    if let Some(name) = carried_xattr(dir).map_err(err)? {
        return Ok(Some((dir.to_path_buf(), name)));
    }
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let t = entry.file_type().map_err(err)?;
        let path = entry.path();
        if t.is_dir() {
            if let Some(found) = first_xattr(&path)? {
                return Ok(Some(found));
            }
        } else if !t.is_symlink()
            && let Some(name) = carried_xattr(&path).map_err(err)?
        {
            return Ok(Some((path, name)));
        }
    }
    Ok(None)
}

/// The first attribute of `path` that belongs to the image (those a layer
/// may set: docs/store.md); a host's own labels (SELinux) are not.
fn carried_xattr(path: &Path) -> std::io::Result<Option<String>> {
    Ok(xattr::list(path)?
        .map(|n| n.to_string_lossy().into_owned())
        .find(|n| {
            n.starts_with("user.") || n.starts_with("trusted.") || n == "security.capability"
        }))
}

/// The containers whose image is not preloaded: pulled at boot, which needs
/// a network the image may not have.
pub fn missing_images(specs: &[(String, String)], preloaded: &[ResolvedImage]) -> Vec<String> {
    let have: Vec<&str> = preloaded.iter().map(|i| i.reference.as_str()).collect();
    specs
        .iter()
        .filter(|(_, image)| {
            let normal = Reference::parse(image).map(|r| r.to_string());
            !normal.is_ok_and(|r| have.contains(&r.as_str()))
        })
        .map(|(name, image)| format!("container {name}: image {image} is not preloaded; it is pulled at boot (a network is needed)"))
        .collect()
}
