//! Applying one layer tarball to an empty directory in overlayfs form:
//! OCI whiteouts become 0/0 character devices, opaque markers become the
//! trusted.overlay.opaque xattr. The uncompressed stream is hashed and must
//! equal the layer's diff_id.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::digest::{Digest, Hashing};
use super::error::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Detects compression from the first bytes, as containerd does, rather
/// than trusting a media type.
pub fn detect_compression(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

fn open_decompressed(blob: &Path) -> Result<Box<dyn Read>, ImageError> {
    let file = File::open(blob).map_err(ImageError::io("open layer blob", blob))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head =
        io::BufRead::fill_buf(&mut reader).map_err(ImageError::io("read layer blob", blob))?;
    Ok(match detect_compression(head) {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(GzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(ImageError::io("start zstd", blob))?,
        ),
    })
}

/// Unpacks `blob` into `target` (which must not exist yet) and checks the
/// uncompressed digest against `diff_id`.
pub fn unpack_layer(
    blob: &Path,
    target: &Path,
    diff_id: &Digest,
    what: &str,
) -> Result<(), ImageError> {
    fs::create_dir(target).map_err(ImageError::io("create layer directory", target))?;
    let mut stream = Hashing::new(open_decompressed(blob)?);
    {
        let mut archive = tar::Archive::new(&mut stream);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(true);
        archive.set_overwrite(true);
        let entries = archive.entries().map_err(|e| bad_tar(what, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad_tar(what, e))?;
            apply_entry(&mut entry, target, what)?;
        }
    }
    finish_diff_id(stream, diff_id, what)
}

/// Reads the rest of the stream (the diff_id covers all of it, tar's zero
/// padding included) and compares its digest with `diff_id`.
fn finish_diff_id(
    mut stream: Hashing<Box<dyn Read>>,
    diff_id: &Digest,
    what: &str,
) -> Result<(), ImageError> {
    io::copy(&mut stream, &mut io::sink()).map_err(|e| bad_tar(what, e))?;
    let (actual, _, _) = stream.finish();
    if &actual != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("{what} (uncompressed)"),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Checks that `blob` decompresses to `diff_id` without unpacking it, for a
/// layer the store already holds: the new blob must still be what the
/// image's config claims.
pub fn verify_diff_id(blob: &Path, diff_id: &Digest, what: &str) -> Result<(), ImageError> {
    finish_diff_id(Hashing::new(open_decompressed(blob)?), diff_id, what)
}

fn bad_tar(what: &str, e: io::Error) -> ImageError {
    ImageError::invalid(what, format!("corrupt layer: {e}"))
}

fn apply_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    target: &Path,
    what: &str,
) -> Result<(), ImageError> {
    let raw = entry.path().map_err(|e| bad_tar(what, e))?.into_owned();
    let rel = safe_relative_path(&raw).ok_or_else(|| {
        ImageError::invalid(
            what,
            format!(
                "entry {} escapes the layer (absolute or '..' path)",
                raw.display()
            ),
        )
    })?;
    let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(()); // "." or "/" itself
    };
    let parent = target.join(rel.parent().unwrap_or(Path::new("")));
    if name == OPAQUE_MARKER {
        ensure_dir(&parent, target, what)?;
        return xattr::set(&parent, "trusted.overlay.opaque", b"y")
            .map_err(ImageError::io("mark opaque directory", parent.clone()));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.starts_with(WHITEOUT_PREFIX) {
            return Ok(()); // AUFS metadata such as .wh..wh.plnk: not content
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(ImageError::invalid(
                what,
                format!("invalid whiteout {}", raw.display()),
            ));
        }
        ensure_dir(&parent, target, what)?;
        return make_whiteout(&parent.join(hidden));
    }
    let unpacked = entry
        .unpack_in(target)
        .map_err(|e| ImageError::invalid(what, format!("unpack {}: {e}", raw.display())))?;
    if !unpacked {
        return Err(ImageError::invalid(
            what,
            format!("entry {} escapes the layer", raw.display()),
        ));
    }
    Ok(())
}

/// The path with "." components dropped, or None when it is absolute or
/// climbs with "..". Tar paths are relative to the layer root.
fn safe_relative_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Creates `dir` below `root`, refusing to pass through a symlink (which
/// could point anywhere on the host).
fn ensure_dir(dir: &Path, root: &Path, what: &str) -> Result<(), ImageError> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ImageError::invalid(
                    what,
                    format!("{} is not a directory", cur.display()),
                ));
            }
            Err(_) => {
                fs::create_dir(&cur).map_err(ImageError::io("create directory", cur.clone()))?
            }
        }
    }
    Ok(())
}

/// overlayfs's whiteout: a character device 0/0 (moby go-archive).
fn make_whiteout(path: &Path) -> Result<(), ImageError> {
    if fs::symlink_metadata(path).is_ok() {
        remove_any(path)?;
    }
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .map_err(|e| ImageError::io("create whiteout", path)(e.into()))
}

fn remove_any(path: &Path) -> Result<(), ImageError> {
    let is_dir = fs::symlink_metadata(path)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let r = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.map_err(ImageError::io("remove", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(
            safe_relative_path(Path::new("./a/b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(safe_relative_path(Path::new("a/../b")), None);
        assert_eq!(safe_relative_path(Path::new("/etc/passwd")), None);
        assert_eq!(safe_relative_path(Path::new(".")), Some(PathBuf::new()));
    }

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"usr/"), Compression::None);
    }
}
